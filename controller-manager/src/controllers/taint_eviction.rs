//! The taint eviction controller (upstream's `tainteviction/`, once the
//! NoExecute taint manager): a pod on a node with a NoExecute taint it
//! does not tolerate is deleted; one that tolerates it for
//! `tolerationSeconds` is deleted that long after the taint was added.

use super::controller_utils::{moot, now_secs};
use super::{Context, Controller, SyncError};
use crate::informers::{Informer, key_of, split_key};
use crate::workqueue::WorkQueue;
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use kube::api::{Api, DeleteParams};
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "taint-eviction-controller";

pub struct TaintEviction {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    nodes: Arc<Informer<Node>>,
    pods: Arc<Informer<Pod>>,
}

use common::taints::tolerates;

/// How long `pod` may stay on a node with `taints`: None forever, or the
/// time left (zero: evict now), from when each taint was added.
pub fn time_left(pod: &Pod, taints: &[Taint], now: jiff::Timestamp) -> Option<Duration> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut left: Option<Duration> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(Duration::ZERO);
        }
        // The shortest of the matching tolerations' bounds, if all have one.
        let Some(secs) = matching
            .iter()
            .map(|t| t.toleration_seconds)
            .collect::<Option<Vec<i64>>>()
            .and_then(|v| v.into_iter().min())
        else {
            continue;
        };
        let added = taint.time_added.as_ref().map(|t| t.0).unwrap_or(now);
        let remaining = (secs.max(0) - now.duration_since(added).as_secs()).max(0) as u64;
        let remaining = Duration::from_secs(remaining);
        left = Some(left.map_or(remaining, |l| l.min(remaining)));
    }
    left
}

impl TaintEviction {
    pub fn start(ctx: &Arc<Context>) -> Arc<dyn Controller> {
        let queue = WorkQueue::new(NAME, ctx.queue_metrics.clone());
        let nodes = ctx.informers.get::<Node>();
        let pods = ctx.informers.get::<Pod>();
        let (q, p) = (queue.clone(), pods.clone());
        nodes.on_change(move |old, new| {
            let Some(n) = new else { return };
            let taints = |n: &Node| n.spec.as_ref().and_then(|s| s.taints.clone());
            if old.is_some_and(|o| taints(o) == taints(n)) {
                return;
            }
            let name = n.metadata.name.as_deref();
            for pod in p.store().state() {
                if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == name {
                    q.add(&key_of(pod.as_ref()));
                }
            }
        });
        let q = queue.clone();
        pods.on_change(move |_, new| {
            if let Some(p) = new.filter(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some()))
            {
                q.add(&key_of(p));
            }
        });
        Arc::new(TaintEviction {
            ctx: ctx.clone(),
            queue,
            nodes,
            pods,
        })
    }
}

#[async_trait::async_trait]
impl Controller for TaintEviction {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, SyncError> {
        let Some(pod) = self.pods.get(key) else {
            return Ok(None);
        };
        if pod.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let Some(node) = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .and_then(|n| self.nodes.get(&n))
        else {
            return Ok(None);
        };
        let taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        match time_left(&pod, &taints, now_secs()) {
            None => Ok(None),
            Some(d) if !d.is_zero() => Ok(Some(d)),
            Some(_) => {
                let (ns, name) = split_key(key);
                self.ctx.recorder.record(
                    "taint-eviction-controller",
                    pod.as_ref(),
                    "Normal",
                    "TaintManagerEviction",
                    format!("Marking for deletion Pod {key}"),
                );
                let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
                moot(api.delete(name, &DeleteParams::default()).await).map(|_| None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn toleration_seconds_bound_the_stay() {
        let taints: Vec<Taint> = serde_json::from_value(json!([
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"}])).unwrap();
        let pod = |tolerations: serde_json::Value| -> Pod {
            serde_json::from_value(json!({"spec": {"containers": [], "tolerations": tolerations}}))
                .unwrap()
        };
        let now: jiff::Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        assert_eq!(
            time_left(&pod(json!([])), &taints, now),
            Some(Duration::ZERO)
        );
        let five_minutes = pod(
            json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]),
        );
        assert_eq!(
            time_left(&five_minutes, &taints, now),
            Some(Duration::from_secs(240))
        );
        let forever = pod(json!([{"operator": "Exists"}]));
        assert_eq!(time_left(&forever, &taints, now), None);
    }
}
