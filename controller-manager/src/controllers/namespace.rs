//! The namespace controller (upstream's `namespace/deletion`): when a
//! namespace is being deleted, it deletes everything in it, resource by
//! resource, reports what remains in the namespace's conditions, and once
//! nothing is left removes the `kubernetes` finalizer through
//! `namespaces/<name>/finalize`, which lets the apiserver remove it.

use super::controller_utils::{moot, now_secs};
use super::{Context, Controller, SyncError};
use crate::discovery::Served;
use crate::informers::{Informer, key_of};
use crate::workqueue::WorkQueue;
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::verbs;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "namespace";
const FINALIZER: &str = "kubernetes";

pub struct NamespaceController {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    namespaces: Arc<Informer<Namespace>>,
}

impl NamespaceController {
    pub fn start(ctx: &Arc<Context>) -> Arc<dyn Controller> {
        let queue = WorkQueue::new(NAME, ctx.queue_metrics.clone());
        let namespaces = ctx.informers.get::<Namespace>();
        let q = queue.clone();
        namespaces.on_change(move |_, new| {
            if let Some(ns) = new.filter(|n| n.metadata.deletion_timestamp.is_some()) {
                q.add(&key_of(ns));
            }
        });
        Arc::new(NamespaceController {
            ctx: ctx.clone(),
            queue,
            namespaces,
        })
    }

    /// Deletes what `resource` holds in `ns`; returns how many remain.
    async fn empty(&self, ns: &str, s: &Served) -> Result<usize, SyncError> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.ctx.client.clone(), ns, &s.resource);
        if s.supports(verbs::DELETE_COLLECTION) {
            moot(
                api.delete_collection(&DeleteParams::background(), &ListParams::default())
                    .await,
            )?;
        } else {
            for o in api.list_metadata(&ListParams::default()).await?.items {
                let name = o.metadata.name.unwrap_or_default();
                moot(api.delete(&name, &DeleteParams::background()).await)?;
            }
        }
        Ok(api.list_metadata(&ListParams::default()).await?.items.len())
    }

    async fn set_condition(&self, ns: &Namespace, remaining: &[String]) -> Result<(), SyncError> {
        let (status, reason, message) = if remaining.is_empty() {
            (
                "False",
                "ContentDeleted",
                "All content successfully removed".to_string(),
            )
        } else {
            (
                "True",
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", remaining.join(", ")),
            )
        };
        let current = ns
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "NamespaceContentRemaining"));
        if current
            .is_some_and(|c| c.status == status && c.message.as_deref() == Some(message.as_str()))
        {
            return Ok(());
        }
        let condition = NamespaceCondition {
            type_: "NamespaceContentRemaining".into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                now_secs(),
            )),
        };
        let api: Api<Namespace> = Api::all(self.ctx.client.clone());
        let name = ns.metadata.name.clone().unwrap_or_default();
        let patch = json!({"status": {"conditions": [condition]}});
        moot(
            api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await,
        )
        .map(|_| ())
    }
}

#[async_trait::async_trait]
impl Controller for NamespaceController {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, SyncError> {
        let Some(ns) = self.namespaces.get(key) else {
            return Ok(None);
        };
        let finalizers = ns
            .spec
            .as_ref()
            .and_then(|s| s.finalizers.clone())
            .unwrap_or_default();
        if ns.metadata.deletion_timestamp.is_none() || !finalizers.iter().any(|f| f == FINALIZER) {
            return Ok(None);
        }
        let mut remaining = Vec::new();
        let served = crate::discovery::served(&self.ctx.client).await?;
        for s in served
            .iter()
            .filter(|s| s.namespaced && s.supports(verbs::LIST) && s.supports(verbs::DELETE))
        {
            let left = self.empty(key, s).await?;
            if left > 0 {
                remaining.push(format!(
                    "{} has {left} resource instances",
                    s.resource.plural
                ));
            }
        }
        self.set_condition(&ns, &remaining).await?;
        if !remaining.is_empty() {
            // Graceful deletions take their time; look again.
            return Ok(Some(Duration::from_secs(2)));
        }
        let mut finalized = (*ns).clone();
        finalized.spec.get_or_insert_default().finalizers =
            Some(finalizers.into_iter().filter(|f| f != FINALIZER).collect());
        let api: Api<Namespace> = Api::all(self.ctx.client.clone());
        moot(
            api.replace_subresource::<Namespace>(
                "finalize",
                key,
                &PostParams::default(),
                &finalized,
            )
            .await,
        )?;
        tracing::info!(namespace = key, "namespace emptied and finalized");
        Ok(None)
    }
}
