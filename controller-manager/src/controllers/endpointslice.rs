//! The EndpointSlice controller (upstream's `endpointslice/`): a Service
//! with a selector gets EndpointSlices (labelled with its name, owned by
//! it) listing the pods it selects with their ready, serving and
//! terminating conditions, at most `--max-endpoints-per-slice` each, one
//! group of slices per set of resolved ports and address family. Each
//! slice written carries, when known, the time of the change that made it so
//! (`endpoints.kubernetes.io/last-change-trigger-time`, upstream's
//! TriggerTimeTracker), from which kube-proxy measures how long network
//! programming takes.

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
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const NAME: &str = "endpointslice";
pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER: &str = "endpointslice-controller.k8s.io";
/// Upstream's EndpointsLastChangeTriggerTime annotation.
pub const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// What a Service's last sync saw of its trigger times: the Service's and
/// each selected pod's (by name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Triggers {
    service: Option<jiff::Timestamp>,
    pods: HashMap<String, jiff::Timestamp>,
}

/// Upstream's TriggerTimeTracker: per Service, the trigger times the last
/// successful sync saw, so that a sync can tell which changed since. A
/// pod's trigger time is when its Ready condition last changed, a
/// Service's its creation (the only change time an object carries).
/// Like upstream, a second change of one object between two syncs is
/// seen as the last one alone.
#[derive(Debug, Default)]
pub struct TriggerTimeTracker {
    services: Mutex<HashMap<String, Triggers>>,
}

impl TriggerTimeTracker {
    /// The trigger time of this sync of Service `key`, and what to
    /// `commit` once it succeeded: a Service not seen before gives its
    /// creation time; after that, the earliest of the trigger times that
    /// changed since the last sync (the oldest change not yet published,
    /// as upstream); None when nothing did (the annotation is left out).
    pub fn observe(
        &self,
        key: &str,
        svc: &Service,
        pods: &[Arc<Pod>],
    ) -> (Option<jiff::Timestamp>, Triggers) {
        let states = self.services.lock().expect("never poisoned");
        let last = states.get(key);
        let now = Triggers {
            service: svc.metadata.creation_timestamp.as_ref().map(|t| t.0),
            pods: pods
                .iter()
                .filter_map(|p| Some((p.metadata.name.clone()?, pod_trigger_time(p)?)))
                .collect(),
        };
        let Some(last) = last else {
            return (now.service, now);
        };
        let newer =
            |t: &jiff::Timestamp, before: Option<&jiff::Timestamp>| before.is_none_or(|b| t > b);
        let changed = now
            .pods
            .iter()
            .filter(|(name, t)| newer(t, last.pods.get(*name)))
            .map(|(_, t)| *t)
            .chain(now.service.filter(|t| newer(t, last.service.as_ref())));
        (changed.min(), now)
    }

    /// Records what a successful sync of `key` saw.
    pub fn commit(&self, key: &str, seen: Triggers) {
        self.services
            .lock()
            .expect("never poisoned")
            .insert(key.to_string(), seen);
    }

    /// Forgets Service `key` (it is gone).
    pub fn forget(&self, key: &str) {
        self.services.lock().expect("never poisoned").remove(key);
    }
}

/// When the pod's Ready condition last changed (upstream's getPodTriggerTime).
fn pod_trigger_time(pod: &Pod) -> Option<jiff::Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// Sets (or, unknown, removes) the trigger time annotation of a slice
/// about to be written, in RFC 3339 with nanoseconds as Go's RFC3339Nano.
pub fn set_trigger_time(meta: &mut ObjectMeta, at: Option<jiff::Timestamp>) {
    let annotations = meta.annotations.get_or_insert_with(Default::default);
    match at {
        Some(t) => {
            annotations.insert(TRIGGER_TIME.into(), t.to_string());
        }
        None => {
            annotations.remove(TRIGGER_TIME);
        }
    }
    if annotations.is_empty() {
        meta.annotations = None;
    }
}

pub struct EndpointSliceController {
    ctx: Arc<Context>,
    queue: Arc<WorkQueue>,
    services: Arc<Informer<Service>>,
    pods: Arc<Informer<Pod>>,
    slices: Arc<Informer<EndpointSlice>>,
    per_slice: usize,
    triggers: TriggerTimeTracker,
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
            triggers: TriggerTimeTracker::default(),
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
            self.triggers.forget(key);
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
        let (trigger_time, seen) = self.triggers.observe(key, &svc, &pods);
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
                set_trigger_time(&mut slice.metadata, trigger_time);
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
        // Only now: a failed sync publishes the same changes when retried.
        self.triggers.commit(key, seen);
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(created: &str) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": created},
            "spec": {"selector": {"app": "web"}},
        }))
        .unwrap()
    }

    /// A pod whose Ready condition last changed at `ready_changed`, if any.
    fn pod(name: &str, ready_changed: Option<&str>) -> Arc<Pod> {
        let conditions = match ready_changed {
            Some(t) => json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]),
            None => json!([]),
        };
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default",
                    "creationTimestamp": "2026-01-01T00:00:00Z"},
                "status": {"podIP": "10.1.0.1", "conditions": conditions},
            }))
            .unwrap(),
        )
    }

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_trigger_time_is_the_oldest_change_not_yet_published() {
        let svc = service("2026-01-01T00:00:00Z");
        // Each step: the pods a sync sees, the time it publishes.
        let steps = [
            (
                "first sight: the Service's creation",
                vec![pod("a", Some("2026-01-01T00:01:00Z"))],
                Some("2026-01-01T00:00:00Z"),
            ),
            (
                "nothing changed",
                vec![pod("a", Some("2026-01-01T00:01:00Z"))],
                None,
            ),
            (
                "a pod turned ready",
                vec![
                    pod("a", Some("2026-01-01T00:01:00Z")),
                    pod("b", Some("2026-01-01T00:02:00.123456789Z")),
                ],
                Some("2026-01-01T00:02:00.123456789Z"),
            ),
            (
                "two changed: the earlier",
                vec![
                    pod("a", Some("2026-01-01T00:04:00Z")),
                    pod("b", Some("2026-01-01T00:03:00Z")),
                ],
                Some("2026-01-01T00:03:00Z"),
            ),
            (
                "a pod left, one without a Ready condition came",
                vec![pod("a", Some("2026-01-01T00:04:00Z")), pod("c", None)],
                None,
            ),
        ];
        let tracker = TriggerTimeTracker::default();
        for (name, pods, want) in steps {
            let (got, seen) = tracker.observe("default/web", &svc, &pods);
            assert_eq!(got, want.map(at), "{name}");
            tracker.commit("default/web", seen);
        }
        // a changed again.
        assert_eq!(
            tracker
                .observe(
                    "default/web",
                    &svc,
                    &[pod("a", Some("2026-01-01T00:05:00Z"))]
                )
                .0,
            Some(at("2026-01-01T00:05:00Z"))
        );
        // An uncommitted (failed) sync changes nothing; a forgotten
        // Service is new again.
        let (again, _) = tracker.observe(
            "default/web",
            &svc,
            &[pod("a", Some("2026-01-01T00:05:00Z"))],
        );
        assert_eq!(again, Some(at("2026-01-01T00:05:00Z")));
        tracker.forget("default/web");
        assert_eq!(
            tracker.observe("default/web", &svc, &[]).0,
            Some(at("2026-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn the_annotation_is_rfc3339_with_nanoseconds_or_absent() {
        let cases = [
            (
                "nanoseconds",
                Some("2026-12-01T15:04:05.123456789Z"),
                Some("2026-12-01T15:04:05.123456789Z"),
            ),
            (
                "trailing zeros trimmed, as Go's RFC3339Nano",
                Some("2026-12-01T15:04:05.120Z"),
                Some("2026-12-01T15:04:05.12Z"),
            ),
            (
                "whole seconds",
                Some("2026-12-01T15:04:05Z"),
                Some("2026-12-01T15:04:05Z"),
            ),
            (
                "in UTC",
                Some("2026-12-01T16:04:05+01:00"),
                Some("2026-12-01T15:04:05Z"),
            ),
            ("unknown", None, None),
        ];
        for (name, time, want) in cases {
            let mut meta = ObjectMeta {
                annotations: Some([(TRIGGER_TIME.to_string(), "stale".to_string())].into()),
                ..Default::default()
            };
            set_trigger_time(&mut meta, time.map(at));
            let got = meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(TRIGGER_TIME))
                .map(String::as_str);
            assert_eq!(got, want, "{name}");
            if want.is_none() {
                assert_eq!(meta.annotations, None, "{name}: no empty map left");
            }
        }
    }
}
