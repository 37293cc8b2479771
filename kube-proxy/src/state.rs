//! What the proxier programs: every Service port with its virtual
//! addresses and the endpoints behind it, built from the Services and
//! EndpointSlices the informers hold. Pure data, so both proxiers (and
//! their tests) share one reading of the API.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Upstream's default ClientIP affinity timeout (3 hours).
pub const DEFAULT_AFFINITY_SECONDS: u32 = 10800;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    fn parse(s: Option<&str>) -> Option<Protocol> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    /// Lower case, as nft and iptables spell it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    /// On this node (`nodeName` is ours).
    pub local: bool,
}

impl Endpoint {
    /// `10.244.0.5/80`: the form endpoint chain names end with.
    pub fn key(&self) -> String {
        format!("{}/{}", self.ip, self.port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub namespace: String,
    pub name: String,
    /// The port's name ("" for an unnamed single port).
    pub port_name: String,
    pub protocol: Protocol,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub node_port: Option<u16>,
    /// spec.externalIPs and status.loadBalancer.ingress IPs: reached as
    /// external traffic.
    pub external_ips: Vec<Ipv4Addr>,
    pub load_balancer_ips: Vec<Ipv4Addr>,
    /// ClientIP session affinity timeout, when affinity is on.
    pub affinity_seconds: Option<u32>,
    pub internal_local: bool,
    pub external_local: bool,
    /// Every endpoint of every slice of the service for this port.
    pub endpoints: Vec<Endpoint>,
}

impl ServicePort {
    /// `ns/name/tcp/port-name`: unique, and the tail of chain names as
    /// upstream writes them.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.namespace, self.name, self.protocol, self.port_name
        )
    }

    /// Reached from outside the cluster network: node ports, external
    /// and load-balancer IPs.
    pub fn has_external(&self) -> bool {
        self.node_port.is_some()
            || !self.external_ips.is_empty()
            || !self.load_balancer_ips.is_empty()
    }

    /// The endpoints traffic may go to, as upstream's CategorizeEndpoints:
    /// the ready ones, or, when none is ready, those still serving while
    /// terminating (so connections drain instead of failing).
    pub fn usable(&self, only_local: bool) -> Vec<&Endpoint> {
        let candidates = || self.endpoints.iter().filter(|e| !only_local || e.local);
        let ready: Vec<&Endpoint> = candidates().filter(|e| e.ready).collect();
        if !ready.is_empty() {
            return ready;
        }
        candidates()
            .filter(|e| e.serving && e.terminating)
            .collect()
    }

    /// The endpoints of traffic from inside the cluster (ClusterIP).
    pub fn internal_endpoints(&self) -> Vec<&Endpoint> {
        self.usable(self.internal_local)
    }

    /// The endpoints of external traffic.
    pub fn external_endpoints(&self) -> Vec<&Endpoint> {
        self.usable(self.external_local)
    }

    /// Whether a separate chain of local endpoints is needed.
    pub fn needs_local_chain(&self) -> bool {
        self.internal_local || (self.external_local && self.has_external())
    }
}

/// Every proxied Service port, sorted by id, from the informers' objects.
/// Services without a cluster IP (headless, ExternalName) are not proxied.
pub fn build(
    services: &[Arc<Service>],
    slices: &[Arc<EndpointSlice>],
    node_name: &str,
) -> Vec<ServicePort> {
    // (namespace, service) -> slices
    let mut by_service: BTreeMap<(&str, &str), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        let (Some(ns), Some(svc)) = (
            slice.metadata.namespace.as_deref(),
            slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name")),
        ) else {
            continue;
        };
        by_service
            .entry((ns, svc.as_str()))
            .or_default()
            .push(slice);
    }
    let mut out = Vec::new();
    for svc in services {
        let (Some(ns), Some(name), Some(spec)) = (
            svc.metadata.namespace.as_deref(),
            svc.metadata.name.as_deref(),
            svc.spec.as_ref(),
        ) else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let Some(cluster_ip) = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        let ipv4 = |ips: Option<&Vec<String>>| -> Vec<Ipv4Addr> {
            ips.into_iter()
                .flatten()
                .filter_map(|ip| ip.parse().ok())
                .collect()
        };
        let external_ips = ipv4(spec.external_ips.as_ref());
        let load_balancer_ips: Vec<Ipv4Addr> = if spec.type_.as_deref() == Some("LoadBalancer") {
            svc.status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .into_iter()
                .flatten()
                // ipMode Proxy: the load balancer proxies, traffic arrives
                // at the node addresses; kube-proxy must not take the VIP.
                .filter(|i| i.ip_mode.as_deref() != Some("Proxy"))
                .filter_map(|i| i.ip.as_deref()?.parse().ok())
                .collect()
        } else {
            Vec::new()
        };
        let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or(DEFAULT_AFFINITY_SECONDS)
        });
        let service_slices = by_service.get(&(ns, name)).cloned().unwrap_or_default();
        for p in spec.ports.iter().flatten() {
            let Some(protocol) = Protocol::parse(p.protocol.as_deref()) else {
                continue;
            };
            let port_name = p.name.clone().unwrap_or_default();
            let Ok(port) = u16::try_from(p.port) else {
                continue;
            };
            out.push(ServicePort {
                namespace: ns.into(),
                name: name.into(),
                protocol,
                cluster_ip,
                port,
                node_port: p.node_port.and_then(|n| u16::try_from(n).ok()),
                external_ips: external_ips.clone(),
                load_balancer_ips: load_balancer_ips.clone(),
                affinity_seconds,
                internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
                external_local: spec.external_traffic_policy.as_deref() == Some("Local"),
                endpoints: endpoints_for(&service_slices, &port_name, protocol, node_name),
                port_name,
            });
        }
    }
    out.sort_by_key(|a| a.id());
    out
}

/// The endpoints of the slices' port named `port_name`, one per address
/// (the first address of an endpoint, as upstream), in a stable order.
fn endpoints_for(
    slices: &[&EndpointSlice],
    port_name: &str,
    protocol: Protocol,
    node_name: &str,
) -> Vec<Endpoint> {
    let mut by_key: BTreeMap<(Ipv4Addr, u16), Endpoint> = BTreeMap::new();
    for slice in slices {
        let Some(port) = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or("") == port_name
                && Protocol::parse(p.protocol.as_deref()) == Some(protocol)
        }) else {
            continue;
        };
        let Some(port) = port.port.and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        for e in &slice.endpoints {
            let Some(ip) = e.addresses.first().and_then(|a| a.parse::<Ipv4Addr>().ok()) else {
                continue;
            };
            let c = e.conditions.as_ref();
            let ready = c.and_then(|c| c.ready).unwrap_or(true);
            let endpoint = Endpoint {
                ip,
                port,
                ready,
                serving: c.and_then(|c| c.serving).unwrap_or(ready),
                terminating: c.and_then(|c| c.terminating).unwrap_or(false),
                local: e.node_name.as_deref() == Some(node_name),
            };
            // The same address in two slices (a slice being replaced):
            // the ready one wins.
            by_key
                .entry((ip, port))
                .and_modify(|old| {
                    if endpoint.ready && !old.ready {
                        *old = endpoint.clone();
                    }
                })
                .or_insert(endpoint);
        }
    }
    by_key.into_values().collect()
}

/// A short stable hash of `s` for chain names (FNV-1a, 16 hex digits).
pub fn hash(s: &str) -> String {
    format!("{:016X}", common::hash::fnv1a64(s.as_bytes()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub fn service(v: serde_json::Value) -> Arc<Service> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    pub fn slice(v: serde_json::Value) -> Arc<EndpointSlice> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    pub fn web() -> (Arc<Service>, Arc<EndpointSlice>) {
        (
            service(json!({
                "metadata": {"namespace": "default", "name": "web"},
                "spec": {"clusterIP": "10.96.0.10", "type": "NodePort",
                         "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}
            })),
            slice(json!({
                "metadata": {"namespace": "default", "name": "web-abc",
                             "labels": {"kubernetes.io/service-name": "web"}},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": [
                    {"addresses": ["10.244.0.5"], "conditions": {"ready": true}, "nodeName": "n1"},
                    {"addresses": ["10.244.0.6"], "conditions": {"ready": false}, "nodeName": "n2"},
                    {"addresses": ["10.244.0.7"], "nodeName": "n2"}
                ]
            })),
        )
    }

    #[test]
    fn reads_services_and_their_slices() {
        let (svc, slice) = web();
        let ports = build(&[svc], &[slice], "n1");
        assert_eq!(ports.len(), 1);
        let p = &ports[0];
        assert_eq!(p.id(), "default/web/tcp/http");
        assert_eq!(p.cluster_ip, Ipv4Addr::new(10, 96, 0, 10));
        assert_eq!(p.node_port, Some(30080));
        assert_eq!(p.endpoints.len(), 3);
        let usable: Vec<String> = p.internal_endpoints().iter().map(|e| e.key()).collect();
        assert_eq!(usable, ["10.244.0.5/8080", "10.244.0.7/8080"]);
        let local: Vec<String> = p.usable(true).iter().map(|e| e.key()).collect();
        assert_eq!(local, ["10.244.0.5/8080"]);
    }

    #[test]
    fn terminating_endpoints_serve_only_when_none_is_ready() {
        let svc = service(json!({
            "metadata": {"namespace": "default", "name": "db"},
            "spec": {"clusterIP": "10.96.0.11", "ports": [{"port": 5432}]}
        }));
        let s = |ready: bool| {
            slice(json!({
                "metadata": {"namespace": "default", "name": "db-1",
                             "labels": {"kubernetes.io/service-name": "db"}},
                "addressType": "IPv4",
                "ports": [{"port": 5432}],
                "endpoints": [
                    {"addresses": ["10.244.0.8"], "conditions": {"ready": false, "serving": true, "terminating": true}},
                    {"addresses": ["10.244.0.9"], "conditions": {"ready": ready}}
                ]
            }))
        };
        let ports = build(std::slice::from_ref(&svc), &[s(true)], "n1");
        assert_eq!(ports[0].internal_endpoints().len(), 1);
        assert_eq!(
            ports[0].internal_endpoints()[0].ip.to_string(),
            "10.244.0.9"
        );
        let ports = build(&[svc], &[s(false)], "n1");
        assert_eq!(
            ports[0].internal_endpoints()[0].ip.to_string(),
            "10.244.0.8"
        );
    }

    #[test]
    fn headless_and_external_name_services_are_not_proxied() {
        let headless = service(json!({
            "metadata": {"namespace": "default", "name": "h"},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]}
        }));
        let external = service(json!({
            "metadata": {"namespace": "default", "name": "e"},
            "spec": {"type": "ExternalName", "externalName": "example.com"}
        }));
        assert!(build(&[headless, external], &[], "n1").is_empty());
    }

    #[test]
    fn affinity_policies_and_load_balancer_addresses() {
        let svc = service(json!({
            "metadata": {"namespace": "default", "name": "lb"},
            "spec": {"clusterIP": "10.96.0.12", "type": "LoadBalancer",
                     "externalTrafficPolicy": "Local", "sessionAffinity": "ClientIP",
                     "externalIPs": ["192.168.77.1"],
                     "ports": [{"port": 80, "nodePort": 30081, "protocol": "UDP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.96.200.1"}, {"ip": "10.96.200.2", "ipMode": "Proxy"}]}}
        }));
        let p = &build(&[svc], &[], "n1")[0];
        assert_eq!(p.protocol, Protocol::Udp);
        assert_eq!(p.affinity_seconds, Some(DEFAULT_AFFINITY_SECONDS));
        assert_eq!(p.load_balancer_ips, [Ipv4Addr::new(10, 96, 200, 1)]);
        assert_eq!(p.external_ips, [Ipv4Addr::new(192, 168, 77, 1)]);
        assert!(p.external_local && !p.internal_local && p.needs_local_chain());
    }
}
