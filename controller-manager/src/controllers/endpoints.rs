//! The Endpoints controller (upstream's `endpoint/`): a Service with a
//! selector gets an Endpoints object of the same name listing the IPs of
//! the pods it selects, ready ones under `addresses` and the others under
//! `notReadyAddresses`, with each service port resolved to the pods' port.

use super::controller_utils::moot;
use super::endpoint_util::{
    ResolvedPort, hostname_under, in_endpoints, pod_ref, queue_services_of_pods, ready,
    resolved_ports, selector, selects,
};
use super::{Context, Controller, SyncError};
use crate::informers::{Informer, key_of, split_key};
use crate::workqueue::WorkQueue;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "endpoints";
/// At most this many addresses per Endpoints object, as upstream.
const MAX_ADDRESSES: usize = 1000;

pub struct EndpointsController {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    services: Arc<Informer<Service>>,
    pods: Arc<Informer<Pod>>,
    endpoints: Arc<Informer<Endpoints>>,
}

impl EndpointsController {
    pub fn start(ctx: &Arc<Context>) -> Arc<dyn Controller> {
        let queue = WorkQueue::new(NAME, ctx.queue_metrics.clone());
        let services = ctx.informers.get::<Service>();
        let pods = ctx.informers.get::<Pod>();
        let endpoints = ctx.informers.get::<Endpoints>();
        let q = queue.clone();
        services.on_change(move |old, new| {
            if let Some(s) = new.or(old) {
                q.add(&key_of(s));
            }
        });
        queue_services_of_pods(&pods, services.clone(), queue.clone());
        Arc::new(EndpointsController {
            ctx: ctx.clone(),
            queue,
            services,
            pods,
            endpoints,
        })
    }
}

/// Ready and not-ready addresses.
type Addresses = (Vec<EndpointAddress>, Vec<EndpointAddress>);

/// The subsets of `svc` from `pods`: one per distinct set of resolved
/// ports, addresses sorted (upstream's RepackSubsets, roughly).
pub fn subsets(svc: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    let svc_name = svc.metadata.name.clone().unwrap_or_default();
    // Ports (as a sorted key) to (ready, not ready) addresses.
    let mut groups: BTreeMap<Vec<ResolvedPort>, Addresses> = BTreeMap::new();
    let mut count = 0;
    for pod in pods {
        if count >= MAX_ADDRESSES || !in_endpoints(pod, publish_not_ready) {
            continue;
        }
        let ports = resolved_ports(pod, spec.ports.as_deref().unwrap_or_default());
        if spec.ports.as_ref().is_some_and(|p| !p.is_empty()) && ports.is_empty() {
            continue;
        }
        let pod_spec = pod.spec.as_ref();
        let hostname = hostname_under(pod, &svc_name);
        let address = EndpointAddress {
            ip: pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .unwrap_or_default(),
            hostname,
            node_name: pod_spec.and_then(|s| s.node_name.clone()),
            target_ref: Some(pod_ref(pod)),
        };
        let group = groups.entry(ports).or_default();
        if publish_not_ready || (ready(pod) && pod.metadata.deletion_timestamp.is_none()) {
            group.0.push(address);
        } else {
            group.1.push(address);
        }
        count += 1;
    }
    groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then(|| {
                    ports
                        .into_iter()
                        .map(|(name, port, protocol)| EndpointPort {
                            name: (!name.is_empty()).then_some(name),
                            port,
                            protocol: Some(protocol),
                            app_protocol: None,
                        })
                        .collect()
                }),
            }
        })
        .collect()
}

#[async_trait::async_trait]
impl Controller for EndpointsController {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, SyncError> {
        let (ns, name) = split_key(key);
        let api: Api<Endpoints> = Api::namespaced(self.ctx.client.clone(), ns);
        let Some(svc) = self.services.get(key) else {
            // The Service is gone: so are the endpoints it had.
            if self.endpoints.get(key).is_some() {
                moot(api.delete(name, &DeleteParams::default()).await)?;
            }
            return Ok(None);
        };
        let Some(sel) = selector(&svc) else {
            return Ok(None);
        };
        let pods: Vec<Arc<Pod>> = self
            .pods
            .in_namespace(ns)
            .into_iter()
            .filter(|p| selects(sel, p))
            .collect();
        let subsets = subsets(&svc, &pods);
        let mut labels = svc.metadata.labels.clone().unwrap_or_default();
        if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
            labels.insert("service.kubernetes.io/headless".into(), String::new());
        }
        let current = self.endpoints.get(key);
        let same = current.as_ref().is_some_and(|e| {
            e.subsets.clone().unwrap_or_default() == subsets
                && e.metadata.labels.clone().unwrap_or_default() == labels
        });
        if same {
            return Ok(None);
        }
        let mut desired = current.map(|e| (*e).clone()).unwrap_or_else(|| Endpoints {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            subsets: None,
        });
        desired.metadata.labels = Some(labels);
        desired.subsets = (!subsets.is_empty()).then_some(subsets);
        let r = if desired.metadata.resource_version.is_some() {
            api.replace(name, &PostParams::default(), &desired).await
        } else {
            api.create(&PostParams::default(), &desired).await
        };
        moot(r).map(|_| None)
    }
}
