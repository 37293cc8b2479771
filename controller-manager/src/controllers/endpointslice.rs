//! The EndpointSlice controller (upstream's `endpointslice/`): a Service
//! with a selector gets EndpointSlices (labelled with its name, owned by
//! it) listing the pods it selects with their ready, serving and
//! terminating conditions, at most `--max-endpoints-per-slice` each, one
//! group of slices per set of resolved ports and address family.

use super::controller_utils::{controller_ref, moot};
use super::endpoint_util::{
    ResolvedPort, hostname_under, in_endpoints, pod_ref, queue_services_of_pods, ready,
    resolved_ports, selector, selects,
};
use super::{Context, Controller, SyncError};
use crate::informers::{Informer, key_of, split_key};
use crate::workqueue::WorkQueue;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const NAME: &str = "endpointslice";
pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER: &str = "endpointslice-controller.k8s.io";

pub struct EndpointSliceController {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    services: Arc<Informer<Service>>,
    pods: Arc<Informer<Pod>>,
    slices: Arc<Informer<EndpointSlice>>,
    per_slice: usize,
}

/// (address type, ports) a group of slices shares.
type GroupKey = (String, Vec<ResolvedPort>);

impl EndpointSliceController {
    pub fn start(ctx: &Arc<Context>, per_slice: usize) -> Arc<dyn Controller> {
        let queue = WorkQueue::new(NAME, ctx.queue_metrics.clone());
        let services = ctx.informers.get::<Service>();
        let pods = ctx.informers.get::<Pod>();
        let slices = ctx.informers.get::<EndpointSlice>();
        let q = queue.clone();
        services.on_change(move |old, new| {
            if let Some(s) = new.or(old) {
                q.add(&key_of(s));
            }
        });
        let q = queue.clone();
        slices.on_change(move |old, new| {
            // Someone else touched a slice of ours: put it right.
            if let Some(s) = new.or(old)
                && let Some(labels) = s.metadata.labels.as_ref()
                && labels.get(MANAGED_BY).map(String::as_str) == Some(CONTROLLER)
                && let Some(svc) = labels.get(SERVICE_NAME)
            {
                q.add(&format!(
                    "{}/{svc}",
                    s.metadata.namespace.as_deref().unwrap_or("")
                ));
            }
        });
        queue_services_of_pods(&pods, services.clone(), queue.clone());
        Arc::new(EndpointSliceController {
            ctx: ctx.clone(),
            queue,
            services,
            pods,
            slices,
            per_slice: per_slice.max(1),
        })
    }

    /// The slices this controller manages for service `name` in `ns`, by name.
    fn ours(&self, ns: &str, name: &str) -> Vec<Arc<EndpointSlice>> {
        let mut v: Vec<Arc<EndpointSlice>> = self
            .slices
            .in_namespace(ns)
            .into_iter()
            .filter(|s| {
                let l = s.metadata.labels.as_ref();
                l.and_then(|l| l.get(SERVICE_NAME)).map(String::as_str) == Some(name)
                    && l.and_then(|l| l.get(MANAGED_BY)).map(String::as_str) == Some(CONTROLLER)
            })
            .collect();
        v.sort_by_key(|s| s.metadata.name.clone());
        v
    }
}

/// The endpoints of `svc` from `pods`, grouped by address type and ports.
pub fn desired(svc: &Service, pods: &[Arc<Pod>]) -> BTreeMap<GroupKey, Vec<Endpoint>> {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    let svc_name = svc.metadata.name.clone().unwrap_or_default();
    let mut groups: BTreeMap<GroupKey, Vec<Endpoint>> = BTreeMap::new();
    for pod in pods {
        // Terminating pods stay, marked so, for graceful draining.
        if !in_endpoints(pod, true) {
            continue;
        }
        let ports = resolved_ports(pod, spec.ports.as_deref().unwrap_or_default());
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default();
        let family = if ip.contains(':') { "IPv6" } else { "IPv4" };
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let serving = publish_not_ready || ready(pod);
        let pod_spec = pod.spec.as_ref();
        let endpoint = Endpoint {
            addresses: vec![ip],
            conditions: Some(EndpointConditions {
                ready: Some(serving && !terminating),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            hostname: hostname_under(pod, &svc_name),
            node_name: pod_spec.and_then(|s| s.node_name.clone()),
            target_ref: Some(pod_ref(pod)),
            ..Default::default()
        };
        groups
            .entry((family.to_string(), ports))
            .or_default()
            .push(endpoint);
    }
    for eps in groups.values_mut() {
        eps.sort_by(|a, b| a.addresses.cmp(&b.addresses));
    }
    groups
}

fn ports_of(key: &GroupKey) -> Vec<EndpointPort> {
    key.1
        .iter()
        .map(|(name, port, protocol)| EndpointPort {
            name: Some(name.clone()),
            port: Some(*port),
            protocol: Some(protocol.clone()),
            app_protocol: None,
        })
        .collect()
}

#[async_trait::async_trait]
impl Controller for EndpointSliceController {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue(&self) -> &Arc<WorkQueue> {
        &self.queue
    }

    async fn sync(&self, key: &str) -> Result<Option<Duration>, SyncError> {
        let (ns, name) = split_key(key);
        let api: Api<EndpointSlice> = Api::namespaced(self.ctx.client.clone(), ns);
        let mut existing = self.ours(ns, name);
        let svc = self.services.get(key);
        let Some((svc, sel)) = svc
            .as_ref()
            .and_then(|s| Some((s.clone(), selector(s)?.clone())))
        else {
            // No Service (or no selector): none of our slices should be left.
            for s in existing {
                let n = s.metadata.name.clone().unwrap_or_default();
                moot(api.delete(&n, &DeleteParams::default()).await)?;
            }
            return Ok(None);
        };
        let pods: Vec<Arc<Pod>> = self
            .pods
            .in_namespace(ns)
            .into_iter()
            .filter(|p| selects(&sel, p))
            .collect();
        let mut labels = svc.metadata.labels.clone().unwrap_or_default();
        labels.insert(SERVICE_NAME.into(), name.into());
        labels.insert(MANAGED_BY.into(), CONTROLLER.into());
        let mut keep = Vec::new();
        for (group, endpoints) in desired(&svc, &pods) {
            let ports = ports_of(&group);
            for chunk in endpoints.chunks(self.per_slice) {
                // Reuse a slice of the same family and ports, if any is left.
                let reuse = existing.iter().position(|s| {
                    s.address_type == group.0 && s.ports.clone().unwrap_or_default() == ports
                });
                let mut slice = match reuse {
                    Some(i) => (*existing.remove(i)).clone(),
                    None => EndpointSlice {
                        metadata: ObjectMeta {
                            generate_name: Some(format!("{name}-")),
                            namespace: Some(ns.into()),
                            owner_references: Some(vec![controller_ref(svc.as_ref())]),
                            ..Default::default()
                        },
                        address_type: group.0.clone(),
                        endpoints: Vec::new(),
                        ports: Some(ports.clone()),
                    },
                };
                if slice.endpoints == chunk && slice.metadata.labels.as_ref() == Some(&labels) {
                    keep.push(slice);
                    continue;
                }
                slice.endpoints = chunk.to_vec();
                slice.metadata.labels = Some(labels.clone());
                let written = match &slice.metadata.name {
                    Some(n) => moot(api.replace(n, &PostParams::default(), &slice).await)?,
                    None => moot(api.create(&PostParams::default(), &slice).await)?,
                };
                keep.extend(written);
            }
        }
        for s in existing {
            let n = s.metadata.name.clone().unwrap_or_default();
            moot(api.delete(&n, &DeleteParams::default()).await)?;
        }
        Ok(None)
    }
}
