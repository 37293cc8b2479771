//! What the Endpoints and EndpointSlice controllers share (upstream's
//! `endpointutil` and `podutil.FindPort`): which pods back a Service, the
//! pod port a service port reaches, and the handlers that queue the
//! Services a pod change concerns.

use crate::informers::{Informer, key_of};
use crate::workqueue::WorkQueue;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A Service's selector, if it has one (a selector-less Service's
/// endpoints are written by whoever owns it, such as `kubernetes`).
pub fn selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
}

pub fn selects(sel: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    sel.iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Whether `pod` belongs in a Service's endpoints at all (upstream's
/// ShouldPodBeInEndpoints): it has an IP, will run again, and is not
/// being deleted unless terminating pods are wanted.
pub fn in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let status = pod.status.as_ref();
    if status
        .and_then(|s| s.pod_ip.as_deref())
        .is_none_or(str::is_empty)
    {
        return false;
    }
    if !include_terminating && pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let phase = status.and_then(|s| s.phase.as_deref());
    match pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) {
        Some("Never") => !matches!(phase, Some("Failed" | "Succeeded")),
        Some("OnFailure") => phase != Some("Succeeded"),
        _ => true,
    }
}

pub fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pod port `port` sends to: its targetPort as a number, or the
/// container port of that name and protocol (upstream's FindPort).
pub fn target_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => pod
            .spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| {
                p.name.as_deref() == Some(name)
                    && p.protocol.as_deref().unwrap_or("TCP") == protocol
            })
            .map(|p| p.container_port),
    }
}

/// The pod's hostname, published only when its subdomain is the Service
/// (upstream's rule for hostname records).
pub fn hostname_under(pod: &Pod, service: &str) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    spec.hostname
        .clone()
        .filter(|_| spec.subdomain.as_deref() == Some(service))
}

/// The reference to `pod` an endpoint carries.
pub fn pod_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// A service port resolved for a pod: (name, pod port, protocol).
pub type ResolvedPort = (String, i32, String);

/// The service's ports as `pod` serves them; those it does not are left out.
pub fn resolved_ports(pod: &Pod, ports: &[ServicePort]) -> Vec<ResolvedPort> {
    ports
        .iter()
        .filter_map(|p| {
            let n = target_port(pod, p)?;
            Some((
                p.name.clone().unwrap_or_default(),
                n,
                p.protocol.clone().unwrap_or("TCP".into()),
            ))
        })
        .collect()
}

/// Queues the Services a pod change concerns: those selecting the pod
/// before or after.
pub fn queue_services_of_pods(
    pods: &Informer<Pod>,
    services: Arc<Informer<Service>>,
    queue: Arc<WorkQueue>,
) {
    pods.on_change(move |old, new| {
        if let (Some(o), Some(n)) = (old, new)
            && o.metadata.resource_version == n.metadata.resource_version
        {
            return;
        }
        let ns = new
            .or(old)
            .and_then(|p| p.metadata.namespace.clone())
            .unwrap_or_default();
        for svc in services.in_namespace(&ns) {
            let Some(sel) = selector(&svc) else { continue };
            if old.is_some_and(|p| selects(sel, p)) || new.is_some_and(|p| selects(sel, p)) {
                queue.add(&key_of(svc.as_ref()));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_ports_resolve_per_pod() {
        let pod: Pod = serde_json::from_value(json!({"spec": {"containers": [{"name": "c",
            "ports": [{"name": "http", "containerPort": 8080}, {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}]}})).unwrap();
        let port = |v: serde_json::Value| -> ServicePort { serde_json::from_value(v).unwrap() };
        assert_eq!(
            target_port(&pod, &port(json!({"port": 80, "targetPort": "http"}))),
            Some(8080)
        );
        assert_eq!(
            target_port(
                &pod,
                &port(json!({"port": 53, "targetPort": "dns", "protocol": "UDP"}))
            ),
            Some(53)
        );
        assert_eq!(
            target_port(&pod, &port(json!({"port": 53, "targetPort": "dns"}))),
            None,
            "TCP dns is not there"
        );
        assert_eq!(
            target_port(&pod, &port(json!({"port": 80, "targetPort": 9000}))),
            Some(9000)
        );
        assert_eq!(target_port(&pod, &port(json!({"port": 80}))), Some(80));
    }

    #[test]
    fn only_pods_with_an_ip_that_will_run_again() {
        let pod = |v: serde_json::Value| -> Pod { serde_json::from_value(v).unwrap() };
        assert!(!in_endpoints(&pod(json!({"status": {}})), false));
        assert!(in_endpoints(
            &pod(json!({"status": {"podIP": "10.0.0.1"}})),
            false
        ));
        let done = pod(
            json!({"spec": {"containers": [], "restartPolicy": "Never"}, "status": {"podIP": "10.0.0.1", "phase": "Succeeded"}}),
        );
        assert!(!in_endpoints(&done, false));
        let leaving = pod(
            json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"podIP": "10.0.0.1"}}),
        );
        assert!(!in_endpoints(&leaving, false));
        assert!(in_endpoints(&leaving, true));
    }
}
