//! The iptables proxier (upstream's `--proxy-mode=iptables`): KUBE-*
//! chains in the nat and filter tables written with `iptables-restore
//! --noflush`, so nothing outside them is touched. Each sync rewrites the
//! dispatch chains (KUBE-SERVICES, KUBE-NODEPORTS, ...) and only the
//! per-Service chains that changed, as upstream's partial syncs do.

use super::chains::{self, Chains};
use super::{Config, NodePortAddresses};
use crate::state::{Endpoint, ServicePort, hash};
use std::fmt::Write;

/// Chains in each table, nat and filter.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub nat: Chains,
    pub filter: Chains,
}

/// Jumps from the built-in chains into ours: (table, chain, rule).
pub const JUMPS: &[(&str, &str, &str)] = &[
    (
        "nat",
        "PREROUTING",
        "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    ),
    (
        "nat",
        "OUTPUT",
        "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    ),
    (
        "nat",
        "POSTROUTING",
        "-m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
    ),
    (
        "filter",
        "INPUT",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES",
    ),
    (
        "filter",
        "INPUT",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    ),
    (
        "filter",
        "FORWARD",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    ),
    (
        "filter",
        "FORWARD",
        "-m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD",
    ),
    (
        "filter",
        "OUTPUT",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    ),
];

/// The chains rewritten on every sync; the rest are per Service port.
const DISPATCH_NAT: &[&str] = &[
    "KUBE-SERVICES",
    "KUBE-NODEPORTS",
    "KUBE-POSTROUTING",
    "KUBE-MARK-MASQ",
];
const DISPATCH_FILTER: &[&str] = &["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD"];

/// Whether `chain` is one kube-proxy owns (for cleanup and stale chains).
pub fn is_ours(chain: &str) -> bool {
    DISPATCH_NAT.contains(&chain)
        || DISPATCH_FILTER.contains(&chain)
        || ["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-SEP-"]
            .iter()
            .any(|p| chain.starts_with(p))
}

fn chain(prefix: &str, s: &str) -> String {
    format!("{prefix}{}", hash(s))
}

fn endpoint_chain(p: &ServicePort, e: &Endpoint) -> String {
    chain("KUBE-SEP-", &format!("{}__{}", p.id(), e.key()))
}

pub fn render(cfg: &Config, ports: &[ServicePort]) -> Rendered {
    let mark = 1u32 << cfg.masquerade_bit;
    let mut r = Rendered::default();
    for c in DISPATCH_NAT {
        r.nat.insert(c.to_string(), Vec::new());
    }
    for c in DISPATCH_FILTER {
        r.filter.insert(c.to_string(), Vec::new());
    }
    for p in ports {
        render_port(cfg, p, &mut r);
    }
    let nodeports = match &cfg.nodeport_addresses {
        NodePortAddresses::All => vec![String::new()],
        NodePortAddresses::Cidrs(cidrs) => cidrs.iter().map(|c| format!("-d {c} ")).collect(),
    };
    let services = r.nat.get_mut("KUBE-SERVICES").expect("declared");
    for d in nodeports {
        services.push(format!(
            "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" {d}-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"
        ));
    }
    r.nat.insert(
        "KUBE-POSTROUTING".into(),
        vec![
            format!("-m mark ! --mark {mark:#x}/{mark:#x} -j RETURN"),
            format!("-j MARK --xor-mark {mark:#x}"),
            "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully".into(),
        ],
    );
    r.nat.insert(
        "KUBE-MARK-MASQ".into(),
        vec![format!("-j MARK --or-mark {mark:#x}")],
    );
    r.filter.insert(
        "KUBE-FORWARD".into(),
        vec![
            "-m conntrack --ctstate INVALID -j DROP".into(),
            format!(
                "-m comment --comment \"kubernetes forwarding rules\" -m mark --mark {mark:#x}/{mark:#x} -j ACCEPT"
            ),
            "-m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".into(),
        ],
    );
    r
}

fn render_port(cfg: &Config, p: &ServicePort, r: &mut Rendered) {
    let id = p.id();
    let svc = chain("KUBE-SVC-", &id);
    let local = chain("KUBE-SVL-", &id);
    let ext = chain("KUBE-EXT-", &id);
    let proto = p.protocol;
    let name = format!("{}/{}:{}", p.namespace, p.name, p.port_name);
    let dst =
        |ip: &std::net::Ipv4Addr| format!("-d {ip}/32 -p {proto} -m {proto} --dport {}", p.port);
    let cluster = p.usable(false);
    let local_eps = p.usable(true);

    let mut all: Vec<&Endpoint> = cluster.clone();
    all.extend(local_eps.iter().filter(|e| !cluster.contains(e)));
    for e in &all {
        let sep = endpoint_chain(p, e);
        let recent = if p.affinity_seconds.is_some() {
            format!("-m recent --name {sep} --mask 255.255.255.255 --rsource --set ")
        } else {
            String::new()
        };
        r.nat.insert(
            sep.clone(),
            vec![
                format!("-m comment --comment \"{name}\" -s {}/32 -j KUBE-MARK-MASQ", e.ip),
                format!(
                    "-m comment --comment \"{name}\" -p {proto} {recent}-m {proto} -j DNAT --to-destination {}:{}",
                    e.ip, e.port
                ),
            ],
        );
    }
    if !cluster.is_empty() {
        let mut rules = Vec::new();
        if cfg.masquerade_all {
            rules.push(format!(
                "-m comment --comment \"{name} cluster IP\" {} -j KUBE-MARK-MASQ",
                dst(&p.cluster_ip)
            ));
        } else if let Some(cidr) = cfg.cluster_cidr {
            rules.push(format!(
                "-m comment --comment \"{name} cluster IP\" ! -s {cidr} {} -j KUBE-MARK-MASQ",
                dst(&p.cluster_ip)
            ));
        }
        rules.extend(pick(p, &cluster, &name));
        r.nat.insert(svc.clone(), rules);
    }
    if p.needs_local_chain() && !local_eps.is_empty() {
        r.nat.insert(local.clone(), pick(p, &local_eps, &name));
    }

    let internal = p.internal_endpoints();
    let internal_chain = if p.internal_local { &local } else { &svc };
    if internal.is_empty() {
        r.filter
            .get_mut("KUBE-SERVICES")
            .expect("declared")
            .push(format!(
                "-m comment --comment \"{name} has no endpoints\" {} -j REJECT",
                dst(&p.cluster_ip)
            ));
    } else {
        r.nat
            .get_mut("KUBE-SERVICES")
            .expect("declared")
            .push(format!(
                "-m comment --comment \"{name} cluster IP\" {} -j {internal_chain}",
                dst(&p.cluster_ip)
            ));
    }
    if !p.has_external() {
        return;
    }
    let external = p.external_endpoints();
    let ips = p.external_ips.iter().chain(&p.load_balancer_ips);
    if external.is_empty() {
        let verdict = if p.external_local { "DROP" } else { "REJECT" };
        let filter = r
            .filter
            .get_mut("KUBE-EXTERNAL-SERVICES")
            .expect("declared");
        for ip in ips {
            filter.push(format!(
                "-m comment --comment \"{name} has no endpoints\" {} -j {verdict}",
                dst(ip)
            ));
        }
        if let Some(np) = p.node_port {
            filter.push(format!(
                "-m comment --comment \"{name} has no endpoints\" -m addrtype --dst-type LOCAL -p {proto} -m {proto} --dport {np} -j {verdict}"
            ));
        }
        return;
    }
    let mut rules = Vec::new();
    if p.external_local {
        if let Some(cidr) = cfg.cluster_cidr {
            rules.push(format!(
                "-m comment --comment \"pod traffic for {name} external destinations\" -s {cidr} -j {svc}"
            ));
        }
        rules.push(format!(
            "-m comment --comment \"masquerade LOCAL traffic for {name} external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ"
        ));
        rules.push(format!(
            "-m comment --comment \"route LOCAL traffic for {name} external destinations\" -m addrtype --src-type LOCAL -j {svc}"
        ));
        rules.push(format!("-j {local}"));
    } else {
        rules.push(format!(
            "-m comment --comment \"masquerade traffic for {name} external destinations\" -j KUBE-MARK-MASQ"
        ));
        rules.push(format!("-j {svc}"));
    }
    r.nat.insert(ext.clone(), rules);
    let services = r.nat.get_mut("KUBE-SERVICES").expect("declared");
    for ip in ips {
        services.push(format!(
            "-m comment --comment \"{name} external IP\" {} -j {ext}",
            dst(ip)
        ));
    }
    if let Some(np) = p.node_port {
        r.nat
            .get_mut("KUBE-NODEPORTS")
            .expect("declared")
            .push(format!(
                "-m comment --comment \"{name}\" -p {proto} -m {proto} --dport {np} -j {ext}"
            ));
    }
}

/// Affinity first, then a random endpoint: the i-th of n rules matches
/// with probability 1/(n-i), so each endpoint gets an equal share.
fn pick(p: &ServicePort, eps: &[&Endpoint], name: &str) -> Vec<String> {
    let mut rules = Vec::new();
    if let Some(timeout) = p.affinity_seconds {
        for e in eps {
            let sep = endpoint_chain(p, e);
            rules.push(format!(
                "-m comment --comment \"{name} -> {}\" -m recent --name {sep} --mask 255.255.255.255 --rsource --rcheck --seconds {timeout} --reap -j {sep}",
                e.key()
            ));
        }
    }
    let n = eps.len();
    for (i, e) in eps.iter().enumerate() {
        let sep = endpoint_chain(p, e);
        if i + 1 == n {
            rules.push(format!(
                "-m comment --comment \"{name} -> {}\" -j {sep}",
                e.key()
            ));
        } else {
            let probability = 1.0 / (n - i) as f64;
            rules.push(format!(
                "-m comment --comment \"{name} -> {}\" -m statistic --mode random --probability {probability:.11} -j {sep}",
                e.key()
            ));
        }
    }
    rules
}

/// The `iptables-restore --noflush` input taking the tables from `old`
/// to `new`. Without `old`, every chain is written and `stale` (chains of
/// ours found in the kernel) are removed; `missing_jumps` are inserted.
pub fn restore_input(
    old: Option<&Rendered>,
    new: &Rendered,
    stale: &[(String, String)],
    missing_jumps: &[(&str, &str, &str)],
) -> String {
    let empty = Rendered::default();
    let old = old.unwrap_or(&empty);
    let mut s = String::new();
    for (table, before, after, dispatch) in [
        ("filter", &old.filter, &new.filter, DISPATCH_FILTER),
        ("nat", &old.nat, &new.nat, DISPATCH_NAT),
    ] {
        let d = chains::diff(before, after);
        let _ = writeln!(s, "*{table}");
        // Declaring a chain creates or flushes it.
        let write: Vec<&str> = after
            .keys()
            .map(String::as_str)
            .filter(|c| dispatch.contains(c) || d.added.contains(c) || d.changed.contains(c))
            .collect();
        let gone: Vec<&str> = d
            .removed
            .iter()
            .copied()
            .chain(
                stale
                    .iter()
                    .filter(|(t, c)| t == table && !after.contains_key(c))
                    .map(|(_, c)| c.as_str()),
            )
            .collect();
        for c in write.iter().chain(&gone) {
            let _ = writeln!(s, ":{c} - [0:0]");
        }
        for c in &write {
            for rule in &after[*c] {
                let _ = writeln!(s, "-A {c} {rule}");
            }
        }
        for (t, builtin, rule) in missing_jumps {
            if *t == table {
                let _ = writeln!(s, "-I {builtin} 1 {rule}");
            }
        }
        for c in &gone {
            let _ = writeln!(s, "-X {c}");
        }
        let _ = writeln!(s, "COMMIT");
    }
    s
}

/// From `iptables-save` output of one table: the chains of ours and the
/// rules of the built-in chains.
pub fn parse_save(save: &str) -> (Vec<String>, Vec<String>) {
    let mut ours = Vec::new();
    let mut rules = Vec::new();
    for line in save.lines() {
        if let Some(decl) = line.strip_prefix(':') {
            let name = decl.split_whitespace().next().unwrap_or_default();
            if is_ours(name) {
                ours.push(name.to_string());
            }
        } else if line.starts_with("-A ") {
            rules.push(line.to_string());
        }
    }
    (ours, rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{build, tests::web};

    fn cfg() -> Config {
        Config {
            cluster_cidr: Some("10.244.0.0/16".parse().unwrap()),
            nodeport_addresses: NodePortAddresses::All,
            ..Config::default()
        }
    }

    #[test]
    fn renders_upstreams_chains() {
        let (svc, slice) = web();
        let r = render(&cfg(), &build(&[svc], &[slice], "n1"));
        let services = &r.nat["KUBE-SERVICES"];
        assert!(services[0].contains("-d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-"));
        assert!(
            services
                .last()
                .unwrap()
                .ends_with("--dst-type LOCAL -j KUBE-NODEPORTS")
        );
        let svc_chain = services[0].rsplit(' ').next().unwrap();
        let rules = &r.nat[svc_chain];
        assert!(rules[0].contains("! -s 10.244.0.0/16 -d 10.96.0.10/32"));
        assert!(rules[1].contains("--probability 0.50000000000 -j KUBE-SEP-"));
        assert!(!rules[2].contains("probability"));
        assert!(r.nat["KUBE-NODEPORTS"][0].contains("--dport 30080 -j KUBE-EXT-"));
    }

    #[test]
    fn no_endpoints_rejects_in_filter() {
        let (svc, _) = web();
        let r = render(&cfg(), &build(&[svc], &[], "n1"));
        assert!(r.filter["KUBE-SERVICES"][0].ends_with("--dport 80 -j REJECT"));
        assert!(r.filter["KUBE-EXTERNAL-SERVICES"][0].ends_with("--dport 30080 -j REJECT"));
        assert_eq!(r.nat["KUBE-SERVICES"].len(), 1, "only the node port jump");
    }

    #[test]
    fn an_update_writes_only_changed_service_chains() {
        let (svc, slice) = web();
        let before = render(
            &cfg(),
            &build(
                std::slice::from_ref(&svc),
                std::slice::from_ref(&slice),
                "n1",
            ),
        );
        let after = render(&cfg(), &build(&[svc], &[], "n1"));
        let input = restore_input(Some(&before), &after, &[], &[]);
        // The dispatch chains, plus the service's chains flushed and gone.
        assert!(input.contains(":KUBE-SERVICES - [0:0]"));
        assert_eq!(input.matches("-X KUBE-SEP-").count(), 2, "{input}");
        assert_eq!(input.matches("-X KUBE-SVC-").count(), 1, "{input}");
        assert_eq!(input.matches("-X KUBE-EXT-").count(), 1, "{input}");
        let same = restore_input(Some(&after), &after, &[], &[]);
        assert!(!same.contains("KUBE-SVC-"), "{same}");
    }

    #[test]
    fn external_local_policy_jumps_to_the_local_chain() {
        let (svc, slice) = web();
        let mut svc: k8s_openapi::api::core::v1::Service = (*svc).clone();
        svc.spec.as_mut().unwrap().external_traffic_policy = Some("Local".into());
        let r = render(&cfg(), &build(&[std::sync::Arc::new(svc)], &[slice], "n1"));
        let ext = r.nat["KUBE-NODEPORTS"][0].rsplit(' ').next().unwrap();
        let rules = &r.nat[ext];
        assert!(
            rules[0].contains("-s 10.244.0.0/16 -j KUBE-SVC-"),
            "{rules:?}"
        );
        assert!(
            rules.last().unwrap().starts_with("-j KUBE-SVL-"),
            "{rules:?}"
        );
        let local = rules.last().unwrap().trim_start_matches("-j ");
        assert_eq!(
            r.nat[local].len(),
            1,
            "only n1's endpoint: {:?}",
            r.nat[local]
        );
    }

    #[test]
    fn parses_iptables_save() {
        let save = "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SVC-ABC - [0:0]\n:DOCKER - [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n";
        let (ours, rules) = parse_save(save);
        assert_eq!(ours, ["KUBE-SVC-ABC"]);
        assert_eq!(rules, ["-A PREROUTING -j KUBE-SERVICES"]);
    }
}
