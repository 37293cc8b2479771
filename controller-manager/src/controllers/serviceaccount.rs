//! The ServiceAccount controller (upstream's `serviceaccounts_controller`):
//! every active namespace has a `default` ServiceAccount, made again if
//! deleted.

use super::controller_utils::moot;
use super::{Context, Controller, SyncError};
use crate::informers::{Informer, key_of};
use crate::workqueue::WorkQueue;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "serviceaccount";
const DEFAULT: &str = "default";

pub struct ServiceAccountController {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    namespaces: Arc<Informer<Namespace>>,
    accounts: Arc<Informer<ServiceAccount>>,
}

impl ServiceAccountController {
    pub fn start(ctx: &Arc<Context>) -> Arc<dyn Controller> {
        let queue = WorkQueue::new(NAME, ctx.queue_metrics.clone());
        let namespaces = ctx.informers.get::<Namespace>();
        let accounts = ctx.informers.get::<ServiceAccount>();
        let q = queue.clone();
        namespaces.on_change(move |_, new| {
            if let Some(ns) = new {
                q.add(&key_of(ns));
            }
        });
        let q = queue.clone();
        accounts.on_change(move |old, new| {
            if let (Some(sa), None) = (old, new)
                && sa.metadata.name.as_deref() == Some(DEFAULT)
            {
                q.add(sa.metadata.namespace.as_deref().unwrap_or(""));
            }
        });
        Arc::new(ServiceAccountController {
            ctx: ctx.clone(),
            queue,
            namespaces,
            accounts,
        })
    }
}

#[async_trait::async_trait]
impl Controller for ServiceAccountController {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, ns: &str) -> Result<Option<Duration>, SyncError> {
        let active = self
            .namespaces
            .get(ns)
            .is_some_and(|n| n.metadata.deletion_timestamp.is_none());
        if !active || self.accounts.get(&format!("{ns}/{DEFAULT}")).is_some() {
            return Ok(None);
        }
        let api: Api<ServiceAccount> = Api::namespaced(self.ctx.client.clone(), ns);
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(DEFAULT.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &sa).await {
            // Terminating meanwhile (403) or made by someone else (409).
            Err(kube::Error::Api(s)) if s.code == 403 || s.code == 409 => Ok(None),
            r => moot(r).map(|_| None),
        }
    }
}
