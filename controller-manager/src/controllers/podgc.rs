//! The pod garbage collector (upstream's `podgc/`), every 20 seconds:
//! finished pods beyond `--terminated-pod-gc-threshold` go, oldest first;
//! pods bound to nodes that no longer exist go (after a check with the
//! apiserver that the node is really gone); pods being deleted that were
//! never scheduled go at once.

use super::controller_utils::moot;
use super::{Context, Controller, SyncError};
use crate::informers::Informer;
use crate::workqueue::WorkQueue;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "podgc";
const PERIOD: Duration = Duration::from_secs(20);
const KEY: &str = "podgc";

pub struct PodGc {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    threshold: usize,
}

fn terminated(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

impl PodGc {
    pub fn start(ctx: &Arc<Context>, threshold: usize) -> Arc<dyn Controller> {
        let queue = WorkQueue::new(NAME, ctx.queue_metrics.clone());
        queue.add(KEY);
        let (pods, nodes) = (ctx.informers.get::<Pod>(), ctx.informers.get::<Node>());
        // Besides the period: at once when a node goes, or a pod is bound
        // to a node nobody has seen.
        let q = queue.clone();
        nodes.on_change(move |_, new| {
            if new.is_none() {
                q.add(KEY);
            }
        });
        let (q, n) = (queue.clone(), nodes.clone());
        pods.on_change(move |_, new| {
            let node = new.and_then(|p| p.spec.as_ref()?.node_name.clone());
            if node.is_some_and(|node| n.get(&node).is_none()) {
                q.add(KEY);
            }
        });
        Arc::new(PodGc {
            ctx: ctx.clone(),
            queue,
            pods,
            nodes,
            threshold,
        })
    }

    async fn force_delete(&self, pod: &Pod, reason: &str, message: &str) -> Result<(), SyncError> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
        if !terminated(pod) {
            // Upstream marks the pod before it goes, so that its owner
            // (a Job's podFailurePolicy) knows why.
            let condition = json!({"status": {"phase": "Failed", "conditions": [{"type": "DisruptionTarget",
                "status": "True", "reason": reason, "message": message}]}});
            moot(
                api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(condition))
                    .await,
            )?;
        }
        tracing::info!(pod = %format!("{ns}/{name}"), reason, "garbage-collecting a pod");
        moot(
            api.delete(
                &name,
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..Default::default()
                },
            )
            .await,
        )
        .map(|_| ())
    }
}

#[async_trait::async_trait]
impl Controller for PodGc {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, _key: &str) -> Result<Option<Duration>, SyncError> {
        let pods = self.pods.store().state();
        // Finished pods beyond the threshold, oldest first.
        let mut finished: Vec<&Arc<Pod>> = pods.iter().filter(|p| terminated(p)).collect();
        if self.threshold > 0 && finished.len() > self.threshold {
            finished.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
            let excess = finished.len() - self.threshold;
            for p in &finished[..excess] {
                let ns = p.metadata.namespace.clone().unwrap_or_default();
                let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &ns);
                let name = p.metadata.name.clone().unwrap_or_default();
                moot(api.delete(&name, &DeleteParams::default()).await)?;
            }
        }
        // Bound to a node that is gone.
        let api_nodes: Api<Node> = Api::all(self.ctx.client.clone());
        for p in &pods {
            let Some(node) = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .filter(|n| !n.is_empty())
            else {
                continue;
            };
            if self.nodes.get(node).is_some() || api_nodes.get_opt(node).await?.is_some() {
                continue;
            }
            self.force_delete(p, "DeletionByPodGC", "PodGC: node no longer exists")
                .await?;
        }
        // Being deleted, never scheduled: nothing will finish the deletion.
        for p in &pods {
            let unbound = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_none_or(str::is_empty);
            if unbound && p.metadata.deletion_timestamp.is_some() {
                self.force_delete(
                    p,
                    "DeletionByPodGC",
                    "PodGC: pod is terminating and not scheduled",
                )
                .await?;
            }
        }
        Ok(Some(PERIOD))
    }
}
