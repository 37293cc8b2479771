//! The Node's status as upstream's kubelet computes it (pure functions of
//! what the machine, the runtime and the settings say, so they are tested
//! without a node).

use super::machine::{Machine, go_arch};
use crate::options::Settings;
use k8s_openapi::api::core::v1::{
    ContainerImage, DaemonEndpoint, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Upstream's nodeStatusMaxImages.
const MAX_IMAGES: usize = 50;

/// What the container runtime reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeState {
    /// `containerd://1.6.20`.
    pub version: String,
    /// None when ready, else the reason the node is not.
    pub not_ready: Option<String>,
    pub images: Vec<ContainerImage>,
}

fn quantity(name: &str, amount: i64) -> Quantity {
    Quantity(common::quantity::format(name, amount.max(0)))
}

/// A threshold like `100Mi` or `10%` of `capacity`, in units.
fn threshold(value: Option<&String>, capacity: i64) -> i64 {
    match value {
        Some(v) if v.ends_with('%') => v
            .trim_end_matches('%')
            .parse::<f64>()
            .map_or(0, |p| (capacity as f64 * p / 100.0) as i64),
        Some(v) => common::quantity::parse("memory", v).unwrap_or(0),
        None => 0,
    }
}

/// Capacity and allocatable: allocatable is capacity less kube-reserved,
/// system-reserved and the hard eviction thresholds.
pub fn resources(
    machine: &Machine,
    settings: &Settings,
) -> (BTreeMap<String, Quantity>, BTreeMap<String, Quantity>) {
    let capacity: BTreeMap<&str, i64> = BTreeMap::from([
        ("cpu", machine.cpus * 1000),
        ("memory", machine.memory_bytes),
        ("ephemeral-storage", machine.disk_bytes),
        ("pods", settings.max_pods as i64),
        ("hugepages-1Gi", 0),
        ("hugepages-2Mi", 0),
    ]);
    let reserved = |name: &str| {
        [&settings.kube_reserved, &settings.system_reserved]
            .iter()
            .filter_map(|m| m.get(name))
            .filter_map(|q| common::quantity::parse(name, q))
            .sum::<i64>()
    };
    let mut allocatable = BTreeMap::new();
    for (name, cap) in &capacity {
        let eviction = match *name {
            "memory" => threshold(settings.eviction_hard.get("memory.available"), *cap),
            "ephemeral-storage" => threshold(settings.eviction_hard.get("nodefs.available"), *cap),
            _ => 0,
        };
        allocatable.insert(
            name.to_string(),
            quantity(name, cap - reserved(name) - eviction),
        );
    }
    let capacity = capacity
        .into_iter()
        .map(|(n, v)| (n.to_string(), quantity(n, v)))
        .collect();
    (capacity, allocatable)
}

fn condition(kind: &str, ok: bool, reasons: [(&str, &str); 2]) -> NodeCondition {
    let (reason, message) = reasons[usize::from(!ok)];
    NodeCondition {
        type_: kind.into(),
        status: if kind == "Ready" {
            if ok { "True" } else { "False" }
        } else if ok {
            "False"
        } else {
            "True"
        }
        .into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        ..Default::default()
    }
}

/// The four conditions, with upstream's reasons and messages.
pub fn conditions(
    machine: &Machine,
    settings: &Settings,
    runtime: &RuntimeState,
) -> Vec<NodeCondition> {
    let memory_ok = machine.memory_available_bytes
        >= threshold(
            settings.eviction_hard.get("memory.available"),
            machine.memory_bytes,
        );
    let disk_ok = machine.disk_available_bytes
        >= threshold(
            settings.eviction_hard.get("nodefs.available"),
            machine.disk_bytes,
        );
    let mut ready = condition(
        "Ready",
        runtime.not_ready.is_none(),
        [
            ("KubeletReady", "kubelet is posting ready status"),
            ("KubeletNotReady", ""),
        ],
    );
    if let Some(why) = &runtime.not_ready {
        ready.message = Some(why.clone());
    }
    vec![
        condition(
            "MemoryPressure",
            memory_ok,
            [
                (
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                (
                    "KubeletHasInsufficientMemory",
                    "kubelet has insufficient memory available",
                ),
            ],
        ),
        condition(
            "DiskPressure",
            disk_ok,
            [
                ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                ("KubeletHasDiskPressure", "kubelet has disk pressure"),
            ],
        ),
        condition(
            "PIDPressure",
            true,
            [
                (
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
                (
                    "KubeletHasInsufficientPID",
                    "kubelet has insufficient PID available",
                ),
            ],
        ),
        ready,
    ]
}

/// Carries lastTransitionTime over from `old` for conditions whose status
/// did not change, and stamps heartbeat and transition times with `now`.
pub fn stamp(new: &mut [NodeCondition], old: &[NodeCondition], now: &Time) {
    for c in new {
        c.last_heartbeat_time = Some(now.clone());
        c.last_transition_time = old
            .iter()
            .find(|o| o.type_ == c.type_ && o.status == c.status)
            .and_then(|o| o.last_transition_time.clone())
            .or_else(|| Some(now.clone()));
    }
}

/// The whole status the kubelet reports.
pub fn node_status(
    machine: &Machine,
    settings: &Settings,
    runtime: &RuntimeState,
    node_ip: IpAddr,
) -> NodeStatus {
    let (capacity, allocatable) = resources(machine, settings);
    let mut images = runtime.images.clone();
    // Upstream reports the largest images first.
    images.sort_by_key(|i| std::cmp::Reverse(i.size_bytes.unwrap_or(0)));
    images.truncate(MAX_IMAGES);
    NodeStatus {
        capacity: Some(capacity),
        allocatable: Some(allocatable),
        conditions: Some(conditions(machine, settings, runtime)),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: node_ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: settings.node_name.clone(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: settings.port as i32,
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: go_arch().into(),
            boot_id: machine.boot_id.clone(),
            container_runtime_version: runtime.version.clone(),
            kernel_version: machine.kernel_version.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: crate::KUBELET_VERSION.into(),
            machine_id: machine.machine_id.clone(),
            operating_system: "linux".into(),
            os_image: machine.os_image.clone(),
            system_uuid: machine.system_uuid.clone(),
            swap: None,
        }),
        images: Some(images),
        ..Default::default()
    }
}

/// Whether two statuses differ in more than heartbeat times (upstream
/// patches on a change at once, otherwise every nodeStatusReportFrequency).
pub fn changed(old: &NodeStatus, new: &NodeStatus) -> bool {
    let strip = |s: &NodeStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_heartbeat_time = None;
            c.last_transition_time = None;
        }
        // Free memory and disk move all the time; they are not reported.
        s
    };
    strip(old) != strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(extra: &[&str]) -> Settings {
        let mut args = vec!["kubelet", "--hostname-override=n1"];
        args.extend_from_slice(extra);
        crate::options::Options::parse_from(args)
            .settings()
            .unwrap()
    }

    fn machine() -> Machine {
        Machine {
            cpus: 2,
            memory_bytes: 4 << 30,
            memory_available_bytes: 3 << 30,
            disk_bytes: 100 << 30,
            disk_available_bytes: 50 << 30,
            ..Default::default()
        }
    }

    #[test]
    fn allocatable_subtracts_reservations_and_eviction() {
        let s = settings(&[
            "--kube-reserved=cpu=100m,memory=256Mi",
            "--system-reserved=cpu=150m",
        ]);
        let (cap, alloc) = resources(&machine(), &s);
        assert_eq!(cap["cpu"].0, "2");
        assert_eq!(cap["memory"].0, "4Gi");
        assert_eq!(cap["pods"].0, "110");
        assert_eq!(alloc["cpu"].0, "1750m");
        // 4Gi - 256Mi - 100Mi (eviction hard).
        assert_eq!(alloc["memory"].0, "3740Mi");
        // 100Gi less 10%.
        assert_eq!(alloc["ephemeral-storage"].0, "90Gi");
    }

    #[test]
    fn conditions_follow_the_runtime_and_the_machine() {
        let s = settings(&[]);
        let ok = conditions(&machine(), &s, &RuntimeState::default());
        let ready = ok.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("True", Some("KubeletReady"))
        );
        assert!(
            ok.iter()
                .filter(|c| c.type_ != "Ready")
                .all(|c| c.status == "False")
        );
        let mut tight = machine();
        tight.memory_available_bytes = 10 << 20;
        let runtime = RuntimeState {
            not_ready: Some("container runtime network not ready".into()),
            ..Default::default()
        };
        let bad = conditions(&tight, &s, &runtime);
        let get = |t: &str| bad.iter().find(|c| c.type_ == t).unwrap().clone();
        assert_eq!(get("Ready").status, "False");
        assert_eq!(get("Ready").reason.as_deref(), Some("KubeletNotReady"));
        assert_eq!(get("MemoryPressure").status, "True");
        assert_eq!(get("DiskPressure").status, "False");
    }

    #[test]
    fn transition_times_survive_unchanged_conditions() {
        let s = settings(&[]);
        let t0 = Time(jiff::Timestamp::from_second(1000).unwrap());
        let t1 = Time(jiff::Timestamp::from_second(2000).unwrap());
        let mut old = conditions(&machine(), &s, &RuntimeState::default());
        stamp(&mut old, &[], &t0);
        let mut new = conditions(&machine(), &s, &RuntimeState::default());
        new[3].status = "False".into();
        stamp(&mut new, &old, &t1);
        assert_eq!(new[0].last_transition_time, Some(t0.clone()));
        assert_eq!(new[0].last_heartbeat_time, Some(t1.clone()));
        assert_eq!(new[3].last_transition_time, Some(t1));
    }
}
