//! NodePorts: a pod asking for host ports fits only where they are free.

use crate::framework::{ClusterEvent, FilterPlugin, NodeInfo, Plugin, PodInfo, Status};
use k8s_openapi::api::core::v1::Pod;

pub const NAME: &str = "NodePorts";
pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub struct NodePorts;

/// (hostIP, protocol, hostPort) of every container port with a host port.
fn host_ports(pod: &Pod) -> Vec<(String, String, i32)> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|h| *h > 0)?;
            let ip = p
                .host_ip
                .clone()
                .filter(|ip| !ip.is_empty())
                .unwrap_or("0.0.0.0".into());
            Some((ip, p.protocol.clone().unwrap_or("TCP".into()), port))
        })
        .collect()
}

/// Two host ports clash on the same protocol and port when either listens
/// on every address or both on the same one.
fn clash(a: &(String, String, i32), b: &(String, String, i32)) -> bool {
    a.1 == b.1 && a.2 == b.2 && (a.0 == b.0 || a.0 == "0.0.0.0" || b.0 == "0.0.0.0")
}

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }

    /// A new node, or a pod holding one of the wanted ports leaving.
    fn hint(&self, pod: &Pod, event: &ClusterEvent) -> bool {
        match event {
            ClusterEvent::NodeAdded(_) => true,
            ClusterEvent::PodRemoved(gone) => {
                let used = host_ports(gone);
                host_ports(pod)
                    .iter()
                    .any(|w| used.iter().any(|u| clash(w, u)))
            }
            _ => false,
        }
    }
}

impl FilterPlugin for NodePorts {
    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        let wanted = host_ports(pod);
        if wanted.is_empty() {
            return Status::success();
        }
        let used: Vec<_> = node.pods.iter().flat_map(|p| host_ports(p)).collect();
        if wanted.iter().any(|w| used.iter().any(|u| clash(w, u))) {
            Status::unschedulable(REASON)
        } else {
            Status::success()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{node, pod};
    use crate::plugins::test_util::info;
    use k8s_openapi::api::core::v1::ContainerPort;

    fn on_port(name: &str, port: i32, ip: Option<&str>, protocol: &str) -> Pod {
        let mut p = pod(name).container("100m", "1Mi").build();
        p.spec.as_mut().unwrap().containers[0].ports = Some(vec![ContainerPort {
            container_port: 80,
            host_port: Some(port),
            host_ip: ip.map(String::from),
            protocol: Some(protocol.into()),
            ..Default::default()
        }]);
        p
    }

    #[test]
    fn filter() {
        let cases = [
            (
                "no host ports",
                pod("p").build(),
                vec![on_port("a", 80, None, "TCP")],
                true,
            ),
            (
                "free port",
                on_port("p", 81, None, "TCP"),
                vec![on_port("a", 80, None, "TCP")],
                true,
            ),
            (
                "taken port",
                on_port("p", 80, None, "TCP"),
                vec![on_port("a", 80, None, "TCP")],
                false,
            ),
            (
                "other protocol",
                on_port("p", 80, None, "UDP"),
                vec![on_port("a", 80, None, "TCP")],
                true,
            ),
            (
                "different host IPs",
                on_port("p", 80, Some("10.0.0.1"), "TCP"),
                vec![on_port("a", 80, Some("10.0.0.2"), "TCP")],
                true,
            ),
            (
                "wildcard against one IP",
                on_port("p", 80, None, "TCP"),
                vec![on_port("a", 80, Some("10.0.0.2"), "TCP")],
                false,
            ),
        ];
        for (name, p, placed, fits) in cases {
            let status = NodePorts.filter(&PodInfo::from(&p), &info(node("n").build(), placed));
            assert_eq!(status.is_success(), fits, "{name}");
        }
    }
}
