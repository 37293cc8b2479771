//! The ResourceQuota controller (upstream's `resourcequota/` with the core
//! evaluators): each quota's `status.used` for the resources its
//! `spec.hard` names, counted over its namespace (pods that have not
//! finished, their requests and limits, object counts), within its
//! scopes, recalculated when what it counts changes and every
//! `--resource-quota-sync-period`. Admission that refuses what would
//! exceed a quota is the apiserver's (the security issue).

use super::controller_utils::moot;
use super::{Context, Controller, SyncError};
use crate::informers::{Informer, key_of, split_key};
use crate::workqueue::WorkQueue;
use common::quantity::format;
use common::quota::pod_usage;
use k8s_openapi::api::core::v1::{Pod, ResourceQuota, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "resourcequota";

pub struct ResourceQuotaController {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    quotas: Arc<Informer<ResourceQuota>>,
    pods: Arc<Informer<Pod>>,
    services: Arc<Informer<Service>>,
    period: Duration,
}

impl ResourceQuotaController {
    pub fn start(ctx: &Arc<Context>, period: Duration) -> Arc<dyn Controller> {
        let queue = WorkQueue::new(NAME, ctx.queue_metrics.clone());
        let quotas = ctx.informers.get::<ResourceQuota>();
        let q = queue.clone();
        quotas.on_change(move |_, new| {
            if let Some(rq) = new {
                q.add(&key_of(rq));
            }
        });
        let pods = ctx.informers.get::<Pod>();
        let services = ctx.informers.get::<Service>();
        // What is counted changed: the namespace's quotas recount.
        fn requeue_ns<K: kube::Resource>(
            quotas: &Arc<Informer<ResourceQuota>>,
            q: &Arc<WorkQueue>,
            obj: &K,
        ) {
            let ns = obj.meta().namespace.as_deref().unwrap_or("");
            for rq in quotas.in_namespace(ns) {
                q.add(&key_of(rq.as_ref()));
            }
        }
        let (q, qs) = (queue.clone(), quotas.clone());
        pods.on_change(move |old, new| {
            if let Some(p) = new.or(old) {
                requeue_ns(&qs, &q, p);
            }
        });
        let (q, qs) = (queue.clone(), quotas.clone());
        services.on_change(move |old, new| {
            if let Some(s) = new.or(old) {
                requeue_ns(&qs, &q, s);
            }
        });
        Arc::new(ResourceQuotaController {
            ctx: ctx.clone(),
            queue,
            quotas,
            pods,
            services,
            period,
        })
    }

    /// How many objects of `count/<resource>[.<group>]` the namespace holds.
    async fn count(&self, ns: &str, name: &str) -> Result<Option<i64>, SyncError> {
        let Some((resource, group)) = common::quota::counted(name) else {
            return Ok(None);
        };
        let kind = match (group, resource) {
            ("", "configmaps") => "ConfigMap",
            ("", "secrets") => "Secret",
            ("", "persistentvolumeclaims") => "PersistentVolumeClaim",
            ("", "replicationcontrollers") => "ReplicationController",
            ("", "resourcequotas") => "ResourceQuota",
            ("", "services") => "Service",
            ("apps", "deployments") => "Deployment",
            ("apps", "replicasets") => "ReplicaSet",
            ("apps", "statefulsets") => "StatefulSet",
            ("apps", "daemonsets") => "DaemonSet",
            ("batch", "jobs") => "Job",
            ("batch", "cronjobs") => "CronJob",
            _ => return Ok(None),
        };
        // Every kind counted here is served at v1 of its group.
        let ar =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), resource);
        let api: Api<DynamicObject> = Api::namespaced_with(self.ctx.client.clone(), ns, &ar);
        match api.list_metadata(&ListParams::default()).await {
            Ok(list) => Ok(Some(list.items.len() as i64)),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait::async_trait]
impl Controller for ResourceQuotaController {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, SyncError> {
        let Some(rq) = self.quotas.get(key) else {
            return Ok(None);
        };
        let (ns, name) = split_key(key);
        let spec = rq.spec.clone().unwrap_or_default();
        let hard = spec.hard.clone().unwrap_or_default();
        let scopes = spec.scopes.clone().unwrap_or_default();
        let mut used = pod_usage(&hard, &self.pods.in_namespace(ns), &scopes);
        let services = self.services.in_namespace(ns);
        for r in hard.keys() {
            let of_type = |t: &str| {
                services
                    .iter()
                    .filter(|s| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some(t))
                    .count() as i64
            };
            let v = match r.as_str() {
                "services" | "count/services" => Some(services.len() as i64),
                "services.nodeports" => Some(of_type("NodePort") + of_type("LoadBalancer")),
                "services.loadbalancers" => Some(of_type("LoadBalancer")),
                n if used.contains_key(n) => None,
                n => self.count(ns, n).await?,
            };
            if let Some(v) = v {
                used.insert(r.clone(), v);
            }
        }
        let used: BTreeMap<String, Quantity> = used
            .into_iter()
            .map(|(k, v)| {
                let unit = k.rsplit('.').next().unwrap_or(&k).to_string();
                (k, Quantity(format(&unit, v)))
            })
            .collect();
        let status = rq.status.clone().unwrap_or_default();
        if status.hard.as_ref() == Some(&hard) && status.used.as_ref() == Some(&used) {
            return Ok(Some(self.period));
        }
        let api: Api<ResourceQuota> = Api::namespaced(self.ctx.client.clone(), ns);
        let patch = json!({"status": {"hard": hard, "used": used}});
        moot(
            api.patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
                .await,
        )?;
        Ok(Some(self.period))
    }
}
