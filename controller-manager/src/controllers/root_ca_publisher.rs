//! The root CA publisher (upstream's `root-ca-cert-publisher`): a
//! `kube-root-ca.crt` ConfigMap in every active namespace with the CA
//! bundle pods verify the apiserver with, kept as configured.

use super::controller_utils::moot;
use super::{Context, Controller, SyncError};
use crate::informers::{Informer, key_of};
use crate::workqueue::WorkQueue;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "root-ca-cert-publisher";
pub const CONFIGMAP: &str = "kube-root-ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

pub struct RootCaPublisher {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    namespaces: Arc<Informer<Namespace>>,
    configmaps: Arc<Informer<ConfigMap>>,
}

impl RootCaPublisher {
    pub fn start(ctx: &Arc<Context>) -> Arc<dyn Controller> {
        let queue = WorkQueue::new(NAME, ctx.queue_metrics.clone());
        let namespaces = ctx.informers.get::<Namespace>();
        let configmaps = ctx.informers.get::<ConfigMap>();
        let q = queue.clone();
        namespaces.on_change(move |_, new| {
            if let Some(ns) = new {
                q.add(&key_of(ns));
            }
        });
        let q = queue.clone();
        configmaps.on_change(move |old, new| {
            if let Some(cm) = new.or(old)
                && cm.metadata.name.as_deref() == Some(CONFIGMAP)
            {
                q.add(cm.metadata.namespace.as_deref().unwrap_or(""));
            }
        });
        Arc::new(RootCaPublisher {
            ctx: ctx.clone(),
            queue,
            namespaces,
            configmaps,
        })
    }
}

#[async_trait::async_trait]
impl Controller for RootCaPublisher {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, ns: &str) -> Result<Option<Duration>, SyncError> {
        let Some(ca) = self.ctx.root_ca.clone() else {
            return Ok(None);
        };
        let active = self
            .namespaces
            .get(ns)
            .is_some_and(|n| n.metadata.deletion_timestamp.is_none());
        if !active {
            return Ok(None);
        }
        let data = BTreeMap::from([("ca.crt".to_string(), ca)]);
        let api: Api<ConfigMap> = Api::namespaced(self.ctx.client.clone(), ns);
        let r = match self.configmaps.get(&format!("{ns}/{CONFIGMAP}")) {
            Some(cm) if cm.data.as_ref() == Some(&data) => return Ok(None),
            Some(cm) => {
                let mut cm = (*cm).clone();
                cm.data = Some(data);
                api.replace(CONFIGMAP, &PostParams::default(), &cm).await
            }
            None => {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(CONFIGMAP.into()),
                        annotations: Some(BTreeMap::from([(
                            "kubernetes.io/description".to_string(),
                            DESCRIPTION.to_string(),
                        )])),
                        ..Default::default()
                    },
                    data: Some(data),
                    ..Default::default()
                };
                match api.create(&PostParams::default(), &cm).await {
                    // Made meanwhile: the next sync compares it.
                    Err(kube::Error::Api(s)) if s.code == 409 => return Ok(Some(Duration::ZERO)),
                    r => r,
                }
            }
        };
        match r {
            Err(kube::Error::Api(s)) if s.code == 403 => Ok(None),
            r => moot(r).map(|_| None),
        }
    }
}
