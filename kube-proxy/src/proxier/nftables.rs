//! The nftables proxier (upstream's `--proxy-mode=nftables`): one table,
//! `ip kube-proxy`, whose base chains and maps never change after the
//! first sync; a Service port is one verdict-map element pointing at its
//! chain, which picks an endpoint chain with `numgen random`. Every sync
//! after the first is one `nft -f` transaction of only what changed.

use super::chains::{self, Chains, Elements};
use super::{Config, NodePortAddresses};
use crate::state::{Endpoint, ServicePort, hash};
use std::collections::BTreeMap;
use std::fmt::Write;

pub const TABLE: &str = "ip kube-proxy";

/// What one sync renders: the chains of every Service port, the elements
/// of the table's maps and sets, and the ClientIP affinity sets (name ->
/// timeout in seconds).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub chains: Chains,
    pub maps: BTreeMap<&'static str, Elements>,
    pub affinity: BTreeMap<String, u32>,
}

impl Rendered {
    /// Adds `other`'s rules (of other Service ports: names never clash).
    pub fn merge(&mut self, other: &Rendered) {
        self.chains
            .extend(other.chains.iter().map(|(k, v)| (k.clone(), v.clone())));
        for (m, elements) in &other.maps {
            self.maps
                .entry(m)
                .or_default()
                .extend(elements.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        self.affinity
            .extend(other.affinity.iter().map(|(k, v)| (k.clone(), *v)));
    }

    fn map(&mut self, name: &'static str) -> &mut Elements {
        self.maps.entry(name).or_default()
    }
}

/// Names of the maps (and the set) the static table declares.
const SERVICE_IPS: &str = "service-ips";
const SERVICE_NODEPORTS: &str = "service-nodeports";
const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";
const CLUSTER_IPS: &str = "cluster-ips";

fn nodeport_match(cfg: &Config) -> String {
    // Localhost node ports are an iptables-only feature upstream.
    match &cfg.nodeport_addresses {
        NodePortAddresses::All => "fib daddr type local ip daddr != 127.0.0.0/8".into(),
        NodePortAddresses::Cidrs(cidrs) => {
            let list: Vec<String> = cidrs.iter().map(|c| c.to_string()).collect();
            format!(
                "fib daddr type local ip daddr != 127.0.0.0/8 ip daddr {{ {} }}",
                list.join(", ")
            )
        }
    }
}

/// The table's fixed part: base chains hooked into netfilter, the
/// dispatch chains and the maps they look up.
pub fn skeleton(cfg: &Config) -> String {
    let mark = 1u32 << cfg.masquerade_bit;
    let np = nodeport_match(cfg);
    let key = "type ipv4_addr . inet_proto . inet_service : verdict;";
    let port_key = "type inet_proto . inet_service : verdict;";
    format!(
        r#"table {TABLE} {{
	comment "rules for kube-proxy"
	set {CLUSTER_IPS} {{ type ipv4_addr; }}
	map {SERVICE_IPS} {{ {key} }}
	map {SERVICE_NODEPORTS} {{ {port_key} }}
	map {NO_ENDPOINT_SERVICES} {{ {key} }}
	map {NO_ENDPOINT_NODEPORTS} {{ {port_key} }}
	chain filter-input {{
		type filter hook input priority -10; policy accept;
		ct state new jump nodeport-endpoints-check
		ct state new jump service-endpoints-check
	}}
	chain filter-forward {{
		type filter hook forward priority -10; policy accept;
		ct state new jump service-endpoints-check
		ct state new jump cluster-ips-check
	}}
	chain filter-output {{
		type filter hook output priority -10; policy accept;
		ct state new jump service-endpoints-check
	}}
	chain filter-output-post-dnat {{
		type filter hook output priority -5; policy accept;
		ct state new jump cluster-ips-check
	}}
	chain nat-prerouting {{
		type nat hook prerouting priority -100; policy accept;
		jump services
	}}
	chain nat-output {{
		type nat hook output priority -100; policy accept;
		jump services
	}}
	chain nat-postrouting {{
		type nat hook postrouting priority 100; policy accept;
		jump masquerading
	}}
	chain services {{
		ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}
		{np} meta l4proto . th dport vmap @{SERVICE_NODEPORTS}
	}}
	chain service-endpoints-check {{
		ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}
	}}
	chain nodeport-endpoints-check {{
		{np} meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}
	}}
	chain cluster-ips-check {{
		ip daddr @{CLUSTER_IPS} reject comment "only ports of a Service are served on its ClusterIP"
	}}
	chain reject-chain {{
		reject
	}}
	chain mark-for-masquerade {{
		meta mark set meta mark | {mark:#x}
	}}
	chain masquerading {{
		meta mark & {mark:#x} == 0 return
		meta mark set meta mark ^ {mark:#x}
		masquerade fully-random
	}}
}}
"#
    )
}

struct Names {
    service: String,
    local: String,
    external: String,
}

/// The chain of the Service port `id` (`ns/name/proto/port-name`).
pub fn service_chain(id: &str) -> String {
    format!("service-{}-{id}", &hash(id)[..8])
}

fn names(p: &ServicePort) -> Names {
    let id = p.id();
    let h = &hash(&id)[..8];
    Names {
        service: service_chain(&id),
        local: format!("local-{h}-{id}"),
        external: format!("external-{h}-{id}"),
    }
}

fn endpoint_names(p: &ServicePort, e: &Endpoint) -> (String, String) {
    let tail = format!("{}__{}", p.id(), e.key());
    let h = &hash(&tail)[..8];
    let timeout = p.affinity_seconds.unwrap_or(0);
    let a = &hash(&format!("{tail}/{timeout}"))[..8];
    (
        format!("endpoint-{h}-{tail}"),
        format!("affinity-{a}-{tail}"),
    )
}

/// Every Service port's chains and map elements.
pub fn render(cfg: &Config, ports: &[ServicePort]) -> Rendered {
    let mut r = Rendered::default();
    for m in [
        SERVICE_IPS,
        SERVICE_NODEPORTS,
        NO_ENDPOINT_SERVICES,
        NO_ENDPOINT_NODEPORTS,
        CLUSTER_IPS,
    ] {
        r.maps.insert(m, Elements::new());
    }
    for p in ports {
        render_into(cfg, p, &mut r);
    }
    r
}

/// The chains and map elements of one Service port.
pub fn render_port(cfg: &Config, p: &ServicePort) -> Rendered {
    let mut r = Rendered::default();
    render_into(cfg, p, &mut r);
    r
}

fn render_into(cfg: &Config, p: &ServicePort, r: &mut Rendered) {
    let n = names(p);
    let proto = p.protocol;
    let key = |ip: &std::net::Ipv4Addr| format!("{ip} . {proto} . {}", p.port);
    let cluster = p.usable(false);
    let local = p.usable(true);
    r.map(CLUSTER_IPS)
        .insert(p.cluster_ip.to_string(), String::new());

    // With ClientIP affinity, an endpoint chain per endpoint remembers the
    // client (and masquerades hairpin traffic, then DNATs), as upstream.
    // Without it the Service chain DNATs through an anonymous map: an
    // endpoint change rewrites one chain and adds none, and the table keeps
    // few chains (nft reads them all before every transaction).
    let mut all: Vec<&Endpoint> = cluster.clone();
    all.extend(local.iter().filter(|e| !cluster.contains(e)));
    for e in all.iter().filter(|_| p.affinity_seconds.is_some()) {
        let (chain, affinity) = endpoint_names(p, e);
        let mut rules = vec![format!("ip saddr {} jump mark-for-masquerade", e.ip)];
        if let Some(timeout) = p.affinity_seconds {
            rules.push(format!("update @{affinity} {{ ip saddr }}"));
            r.affinity.insert(affinity, timeout);
        }
        rules.push(format!("meta l4proto {proto} dnat to {}:{}", e.ip, e.port));
        r.chains.insert(chain, rules);
    }

    if !cluster.is_empty() {
        let mut rules = Vec::new();
        let dst = format!("ip daddr {} {proto} dport {}", p.cluster_ip, p.port);
        if cfg.masquerade_all {
            rules.push(format!("{dst} jump mark-for-masquerade"));
        } else if let Some(cidr) = cfg.cluster_cidr {
            rules.push(format!("{dst} ip saddr != {cidr} jump mark-for-masquerade"));
        }
        rules.extend(pick(p, &cluster));
        r.chains.insert(n.service.clone(), rules);
    }
    if p.needs_local_chain() && !local.is_empty() {
        r.chains.insert(n.local.clone(), pick(p, &local));
    }

    let internal = p.internal_endpoints();
    let internal_chain = if p.internal_local {
        &n.local
    } else {
        &n.service
    };
    if internal.is_empty() {
        r.map(NO_ENDPOINT_SERVICES)
            .insert(key(&p.cluster_ip), "goto reject-chain".into());
    } else {
        r.map(SERVICE_IPS)
            .insert(key(&p.cluster_ip), format!("goto {internal_chain}"));
    }

    if !p.has_external() {
        return;
    }
    let external = p.external_endpoints();
    let (map, port_map, verdict) = if external.is_empty() {
        // No endpoint for external traffic: refuse it at once (or drop it,
        // for Local policy, so a load balancer's health check fails over).
        let v = if p.external_local {
            "drop".to_string()
        } else {
            "goto reject-chain".to_string()
        };
        (NO_ENDPOINT_SERVICES, NO_ENDPOINT_NODEPORTS, v)
    } else {
        let mut rules = Vec::new();
        if p.external_local {
            // Pods and the node itself still use every endpoint; traffic
            // from outside keeps its source address and stays on the node.
            if let Some(cidr) = cfg.cluster_cidr {
                rules.push(format!("ip saddr {cidr} goto {}", n.service));
            }
            rules.push("fib saddr type local jump mark-for-masquerade".into());
            rules.push(format!("fib saddr type local goto {}", n.service));
            rules.push(format!("goto {}", n.local));
        } else {
            rules.push("jump mark-for-masquerade".into());
            rules.push(format!("goto {}", n.service));
        }
        r.chains.insert(n.external.clone(), rules);
        (
            SERVICE_IPS,
            SERVICE_NODEPORTS,
            format!("goto {}", n.external),
        )
    };
    for ip in p.external_ips.iter().chain(&p.load_balancer_ips) {
        r.map(map).insert(key(ip), verdict.clone());
    }
    if let Some(np) = p.node_port {
        r.map(port_map).insert(format!("{proto} . {np}"), verdict);
    }
}

/// The rules choosing one of `eps`: a client with affinity goes back to
/// its endpoint, everyone else to a random one.
fn pick(p: &ServicePort, eps: &[&Endpoint]) -> Vec<String> {
    if p.affinity_seconds.is_none() {
        return dnat(p, eps);
    }
    let mut rules = Vec::new();
    let chains: Vec<String> = eps.iter().map(|e| endpoint_names(p, e).0).collect();
    if p.affinity_seconds.is_some() {
        for e in eps {
            let (chain, affinity) = endpoint_names(p, e);
            rules.push(format!("ip saddr @{affinity} goto {chain}"));
        }
    }
    if let [only] = chains.as_slice() {
        rules.push(format!("goto {only}"));
    } else {
        let arms: Vec<String> = chains
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{i} : goto {c}"))
            .collect();
        rules.push(format!(
            "numgen random mod {} vmap {{ {} }}",
            chains.len(),
            arms.join(", ")
        ));
    }
    rules
}

/// DNAT to a random one of `eps`. Traffic from one of them is masqueraded,
/// so a pod reaching itself through the Service (hairpin) gets the reply.
fn dnat(p: &ServicePort, eps: &[&Endpoint]) -> Vec<String> {
    let proto = p.protocol;
    let sources: std::collections::BTreeSet<String> =
        eps.iter().map(|e| e.ip.to_string()).collect();
    let sources: Vec<String> = sources.into_iter().collect();
    let hairpin = format!(
        "ip saddr {{ {} }} jump mark-for-masquerade",
        sources.join(", ")
    );
    let to = match eps {
        [only] => format!("meta l4proto {proto} dnat to {}:{}", only.ip, only.port),
        _ => {
            let arms: Vec<String> = eps
                .iter()
                .enumerate()
                .map(|(i, e)| format!("{i} : {} . {}", e.ip, e.port))
                .collect();
            format!(
                "meta l4proto {proto} dnat to numgen random mod {} map {{ {} }}",
                eps.len(),
                arms.join(", ")
            )
        }
    };
    vec![hairpin, to]
}

/// The `nft -f` script taking the table from `old` to `new`; without
/// `old` (first sync, or after a failure) the table is made anew.
pub fn script(cfg: &Config, old: Option<&Rendered>, new: &Rendered) -> String {
    let empty = Rendered::default();
    let mut s = String::new();
    let old = match old {
        Some(old) => old,
        None => {
            // `add` first, so `delete` works on a machine without it.
            let _ = writeln!(s, "add table {TABLE}\ndelete table {TABLE}");
            s.push_str(&skeleton(cfg));
            &empty
        }
    };
    let d = chains::diff(&old.chains, &new.chains);
    let (new_sets, gone_sets): (Vec<_>, Vec<_>) = (
        new.affinity
            .iter()
            .filter(|(n, _)| !old.affinity.contains_key(*n))
            .collect(),
        old.affinity
            .keys()
            .filter(|n| !new.affinity.contains_key(*n))
            .collect(),
    );
    // Order matters inside the transaction: what a rule or element names
    // must exist before it, and a chain must be empty and unreferenced
    // before it goes.
    for (name, timeout) in new_sets {
        let _ = writeln!(
            s,
            "add set {TABLE} {name} {{ type ipv4_addr; flags dynamic,timeout; timeout {timeout}s; }}"
        );
    }
    for c in &d.added {
        let _ = writeln!(s, "add chain {TABLE} {c}");
    }
    for c in d.changed.iter().chain(&d.removed) {
        let _ = writeln!(s, "flush chain {TABLE} {c}");
    }
    let no_elements = Elements::new();
    let mut additions = Vec::new();
    let names: std::collections::BTreeSet<&&str> = old.maps.keys().chain(new.maps.keys()).collect();
    for map in names {
        let before = old.maps.get(*map).unwrap_or(&no_elements);
        let after = new.maps.get(*map).unwrap_or(&no_elements);
        let (deleted, added) = chains::diff_elements(before, after);
        if !deleted.is_empty() {
            let keys: Vec<&str> = deleted.iter().map(|(k, _)| *k).collect();
            let _ = writeln!(s, "delete element {TABLE} {map} {{ {} }}", keys.join(", "));
        }
        if !added.is_empty() {
            let items: Vec<String> = added
                .iter()
                .map(|(k, v)| {
                    if v.is_empty() {
                        k.to_string()
                    } else {
                        format!("{k} : {v}")
                    }
                })
                .collect();
            additions.push(format!(
                "add element {TABLE} {map} {{ {} }}",
                items.join(", ")
            ));
        }
    }
    for c in d.added.iter().chain(&d.changed) {
        for rule in &new.chains[*c] {
            let _ = writeln!(s, "add rule {TABLE} {c} {rule}");
        }
    }
    for a in additions {
        s.push_str(&a);
        s.push('\n');
    }
    for c in &d.removed {
        let _ = writeln!(s, "delete chain {TABLE} {c}");
    }
    for name in gone_sets {
        let _ = writeln!(s, "delete set {TABLE} {name}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{build, tests::web};

    fn cfg() -> Config {
        Config {
            cluster_cidr: Some("10.244.0.0/16".parse().unwrap()),
            ..Config::default()
        }
    }

    #[test]
    fn a_service_port_is_a_map_element_and_chains() {
        let (svc, slice) = web();
        let r = render(&cfg(), &build(&[svc], &[slice], "n1"));
        let svc_chain = r.maps[SERVICE_IPS]["10.96.0.10 . tcp . 80"].clone();
        assert!(svc_chain.starts_with("goto service-"), "{svc_chain}");
        let rules = &r.chains[svc_chain.trim_start_matches("goto ")];
        assert_eq!(
            rules[0],
            "ip daddr 10.96.0.10 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade"
        );
        assert_eq!(
            rules[1],
            "ip saddr { 10.244.0.5, 10.244.0.7 } jump mark-for-masquerade"
        );
        // The unready endpoint gets no traffic.
        assert_eq!(
            rules[2],
            "meta l4proto tcp dnat to numgen random mod 2 map { 0 : 10.244.0.5 . 8080, 1 : 10.244.0.7 . 8080 }"
        );
        let ext = &r.maps[SERVICE_NODEPORTS]["tcp . 30080"];
        assert!(ext.starts_with("goto external-"));
        // Without affinity, no chain per endpoint.
        assert!(!r.chains.keys().any(|n| n.starts_with("endpoint-")));
    }

    #[test]
    fn no_endpoints_rejects() {
        let (svc, _) = web();
        let r = render(&cfg(), &build(&[svc], &[], "n1"));
        assert!(r.maps[SERVICE_IPS].is_empty());
        assert_eq!(
            r.maps[NO_ENDPOINT_SERVICES]["10.96.0.10 . tcp . 80"],
            "goto reject-chain"
        );
        assert_eq!(
            r.maps[NO_ENDPOINT_NODEPORTS]["tcp . 30080"],
            "goto reject-chain"
        );
        assert!(r.chains.is_empty());
    }

    #[test]
    fn an_endpoint_change_touches_only_its_service() {
        let (svc, slice) = web();
        let ports = build(
            std::slice::from_ref(&svc),
            std::slice::from_ref(&slice),
            "n1",
        );
        let before = render(&cfg(), &ports);
        let mut changed: k8s_openapi::api::discovery::v1::EndpointSlice = (*slice).clone();
        changed.endpoints[1].conditions.as_mut().unwrap().ready = Some(true);
        let after = render(
            &cfg(),
            &build(&[svc], &[std::sync::Arc::new(changed)], "n1"),
        );
        let s = script(&cfg(), Some(&before), &after);
        // The service chain rewritten, no chain added, no map element
        // touched, nothing else flushed.
        assert_eq!(s.matches("add chain").count(), 0, "{s}");
        assert_eq!(s.matches("flush chain").count(), 1, "{s}");
        assert!(s.contains("10.244.0.6 . 8080"), "{s}");
        assert!(!s.contains("element"), "{s}");
        assert!(!s.contains("table ip kube-proxy {"), "{s}");
        assert_eq!(script(&cfg(), Some(&after), &after), "");
    }

    #[test]
    fn removing_a_service_deletes_its_elements_then_its_chains() {
        let (svc, slice) = web();
        let before = render(&cfg(), &build(&[svc], &[slice], "n1"));
        let after = render(&cfg(), &[]);
        let s = script(&cfg(), Some(&before), &after);
        let del_elem = s.find("delete element").unwrap();
        let del_chain = s.find("delete chain").unwrap();
        let flush = s.find("flush chain").unwrap();
        assert!(flush < del_elem && del_elem < del_chain, "{s}");
        // The service chain and the external one.
        assert_eq!(s.matches("delete chain").count(), 2, "{s}");
    }

    fn with_policies(
        policy: &str,
        slice: std::sync::Arc<k8s_openapi::api::discovery::v1::EndpointSlice>,
    ) -> Rendered {
        let (svc, _) = web();
        let mut svc: k8s_openapi::api::core::v1::Service = (*svc).clone();
        let spec = svc.spec.as_mut().unwrap();
        spec.external_traffic_policy = Some(policy.into());
        spec.internal_traffic_policy = Some(policy.into());
        spec.external_ips = Some(vec!["192.168.77.1".into()]);
        render(&cfg(), &build(&[std::sync::Arc::new(svc)], &[slice], "n1"))
    }

    #[test]
    fn local_policies_keep_traffic_on_the_node() {
        let (_, slice) = web();
        let r = with_policies("Local", slice);
        // internalTrafficPolicy: the ClusterIP reaches only n1's endpoint.
        let internal = r.maps[SERVICE_IPS]["10.96.0.10 . tcp . 80"].trim_start_matches("goto ");
        assert!(internal.starts_with("local-"), "{internal}");
        let rules = &r.chains[internal];
        assert_eq!(
            rules[1], "meta l4proto tcp dnat to 10.244.0.5:8080",
            "{rules:?}"
        );
        // externalTrafficPolicy: pods and the node itself use every
        // endpoint; traffic from outside stays local, unmasqueraded.
        let external = r.maps[SERVICE_IPS]["192.168.77.1 . tcp . 80"].trim_start_matches("goto ");
        let rules = &r.chains[external];
        assert!(
            rules[0].starts_with("ip saddr 10.244.0.0/16 goto service-"),
            "{rules:?}"
        );
        assert_eq!(rules[1], "fib saddr type local jump mark-for-masquerade");
        assert!(rules[3].starts_with("goto local-"), "{rules:?}");
        assert_eq!(
            r.maps[SERVICE_NODEPORTS]["tcp . 30080"],
            format!("goto {external}")
        );
    }

    #[test]
    fn local_policy_without_a_local_endpoint_drops_external_traffic() {
        let (_, slice) = web();
        let mut remote: k8s_openapi::api::discovery::v1::EndpointSlice = (*slice).clone();
        remote
            .endpoints
            .retain(|e| e.node_name.as_deref() != Some("n1"));
        let r = with_policies("Local", std::sync::Arc::new(remote));
        assert_eq!(r.maps[NO_ENDPOINT_NODEPORTS]["tcp . 30080"], "drop");
        assert_eq!(
            r.maps[NO_ENDPOINT_SERVICES]["192.168.77.1 . tcp . 80"],
            "drop"
        );
        // No local endpoint for internal traffic either: refused.
        assert_eq!(
            r.maps[NO_ENDPOINT_SERVICES]["10.96.0.10 . tcp . 80"],
            "goto reject-chain"
        );
    }

    #[test]
    fn affinity_uses_a_timeout_set_per_endpoint() {
        let (svc, slice) = web();
        let mut svc: k8s_openapi::api::core::v1::Service = (*svc).clone();
        let spec = svc.spec.as_mut().unwrap();
        spec.session_affinity = Some("ClientIP".into());
        spec.session_affinity_config = Some(
            serde_json::from_value(serde_json::json!({"clientIP": {"timeoutSeconds": 60}}))
                .unwrap(),
        );
        let r = render(&cfg(), &build(&[std::sync::Arc::new(svc)], &[slice], "n1"));
        assert_eq!(r.affinity.len(), 2);
        assert!(r.affinity.values().all(|t| *t == 60));
        let s = script(&cfg(), None, &r);
        assert!(s.contains("flags dynamic,timeout; timeout 60s;"), "{s}");
        assert!(s.contains("update @affinity-"), "{s}");
    }
}
