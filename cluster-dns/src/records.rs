//! The cluster zone in memory, as the Kubernetes DNS specification defines
//! it: every name built at once from the Services and their EndpointSlices,
//! then swapped in whole so that a query always sees one consistent
//! snapshot. A change rebuilds everything (level-triggered, like a
//! controller's reconcile): for thousands of Services that takes
//! milliseconds, and bursts of changes coalesce into one rebuild.
//!
//! Pod names (`<a-b-c-d>.<ns>.pod.<zone>`) are not stored: as CoreDNS's
//! `pods insecure`, any dashed address answers itself.

use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, RwLock};

/// The schema version CoreDNS answers at `dns-version.<zone>`.
pub const SCHEMA_VERSION: &str = "1.1.0";

/// The label EndpointSlices name their Service by.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// What a name holds, compact and ordered (so a node can be sorted and
/// deduplicated); turned into wire records per answer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Data {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(Name),
    /// Weights are spread over a name's SRV records when answering.
    Srv {
        port: u16,
        target: Name,
    },
    Txt(&'static str),
}

impl Data {
    fn record_type(&self) -> RecordType {
        match self {
            Data::A(_) => RecordType::A,
            Data::Aaaa(_) => RecordType::AAAA,
            Data::Cname(_) => RecordType::CNAME,
            Data::Srv { .. } => RecordType::SRV,
            Data::Txt(_) => RecordType::TXT,
        }
    }

    /// Port numbers are validated 1-65535 by the apiserver.
    fn srv(port: i32, target: &Name) -> Data {
        Data::Srv {
            port: port as u16,
            target: target.clone(),
        }
    }

    fn address(ip: IpAddr) -> Data {
        match ip {
            IpAddr::V4(ip) => Data::A(ip),
            IpAddr::V6(ip) => Data::Aaaa(ip),
        }
    }
}

/// The answer to a name in the zone.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    /// The name exists: its records of the asked type (none: NODATA), and
    /// the addresses of SRV targets for the additional section.
    Found {
        answers: Vec<Record>,
        additionals: Vec<Record>,
    },
    NxDomain,
}

/// One snapshot of the zone.
#[derive(Debug)]
pub struct Index {
    zone: Name,
    ttl: u32,
    serial: u32,
    /// Every name of the zone; an empty node is an empty non-terminal
    /// (it answers NODATA, not NXDOMAIN, RFC 8020).
    names: HashMap<Name, Vec<Data>>,
    /// PTR targets by `in-addr.arpa`/`ip6.arpa` name.
    reverse: HashMap<Name, Vec<Name>>,
}

impl Index {
    /// The zone `zone` (absolute) from these objects; `serial` is the SOA's
    /// (CoreDNS uses the time of the last change).
    pub fn build<'a>(
        zone: &Name,
        ttl: u32,
        serial: u32,
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> Index {
        let mut index = Index {
            zone: zone.clone(),
            ttl,
            serial,
            names: HashMap::new(),
            reverse: HashMap::new(),
        };
        index.names.insert(zone.clone(), vec![]);
        for label in ["svc", "pod"] {
            index.insert(child(zone, label), None);
        }
        index.insert(child(zone, "dns-version"), Some(Data::Txt(SCHEMA_VERSION)));
        let mut by_service: HashMap<(&str, &str), Vec<&EndpointSlice>> = HashMap::new();
        for slice in slices {
            let ns = slice.metadata.namespace.as_deref().unwrap_or_default();
            let labels = slice.metadata.labels.as_ref();
            if let Some(service) = labels.and_then(|l| l.get(SERVICE_NAME_LABEL)) {
                by_service.entry((ns, service)).or_default().push(slice);
            }
        }
        for service in services {
            let meta = &service.metadata;
            let (Some(ns), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref()) else {
                continue;
            };
            let slices = by_service.get(&(ns, name)).map_or(&[][..], Vec::as_slice);
            index.add_service(ns, name, service, slices);
        }
        for node in index.names.values_mut() {
            node.sort();
            node.dedup();
        }
        for targets in index.reverse.values_mut() {
            targets.sort();
            targets.dedup();
        }
        index
    }

    /// The number of names (for logs).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn add_service(&mut self, ns: &str, name: &str, service: &Service, slices: &[&EndpointSlice]) {
        let Some(spec) = &service.spec else { return };
        let Some(fqdn) = labels(&self.zone, &[name, ns, "svc"]) else {
            return;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            let target = spec.external_name.as_deref().and_then(absolute);
            if let Some(target) = target {
                self.insert(fqdn, Some(Data::Cname(target)));
            }
            return;
        }
        let ips: Vec<&str> = match (&spec.cluster_ips, &spec.cluster_ip) {
            (Some(ips), _) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
            (_, Some(ip)) => vec![ip.as_str()],
            _ => vec![],
        };
        if ips == ["None"] {
            let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
            return self.add_headless(&fqdn, slices, publish_not_ready);
        }
        for ip in ips.iter().filter_map(|ip| ip.parse::<IpAddr>().ok()) {
            self.insert(fqdn.clone(), Some(Data::address(ip)));
            self.add_reverse(ip, fqdn.clone());
        }
        for port in spec.ports.iter().flatten() {
            let proto = port.protocol.as_deref().unwrap_or("TCP");
            if let Some(srv) = srv_name(&fqdn, port.name.as_deref(), proto) {
                self.insert(srv, Some(Data::srv(port.port, &fqdn)));
            }
        }
    }

    /// A headless Service's names exist only while it has ready endpoints
    /// (the specification: no ready endpoint, NXDOMAIN).
    fn add_headless(&mut self, fqdn: &Name, slices: &[&EndpointSlice], publish_not_ready: bool) {
        for slice in slices {
            if slice.address_type == "FQDN" {
                continue;
            }
            for endpoint in &slice.endpoints {
                let ready = endpoint.conditions.as_ref().and_then(|c| c.ready);
                // An unset condition means ready (the EndpointSlice API's rule).
                if ready == Some(false) && !publish_not_ready {
                    continue;
                }
                for ip in endpoint.addresses.iter().filter_map(|a| a.parse().ok()) {
                    let host = endpoint.hostname.clone().unwrap_or_else(|| dashed(ip));
                    let Some(host) = prepend(fqdn, &host) else {
                        continue;
                    };
                    self.insert(fqdn.clone(), Some(Data::address(ip)));
                    self.insert(host.clone(), Some(Data::address(ip)));
                    self.add_reverse(ip, host.clone());
                    for port in slice.ports.iter().flatten() {
                        let proto = port.protocol.as_deref().unwrap_or("TCP");
                        let (Some(srv), Some(number)) =
                            (srv_name(fqdn, port.name.as_deref(), proto), port.port)
                        else {
                            continue;
                        };
                        self.insert(srv, Some(Data::srv(number, &host)));
                    }
                }
            }
        }
    }

    /// Adds `data` at `name`, and `name`'s ancestors up to the zone as
    /// empty non-terminals.
    fn insert(&mut self, name: Name, data: Option<Data>) {
        let mut parent = name.base_name();
        while !self.names.contains_key(&parent) && self.zone.zone_of(&parent) {
            let up = parent.base_name();
            self.names.insert(parent, vec![]);
            parent = up;
        }
        let node = self.names.entry(name).or_default();
        node.extend(data);
    }

    fn add_reverse(&mut self, ip: IpAddr, target: Name) {
        self.reverse.entry(Name::from(ip)).or_default().push(target);
    }

    /// The records of `name` (in the zone) of type `qtype`. A CNAME answers
    /// every type, as a CNAME stands alone at its name.
    pub fn lookup(&self, name: &Name, qtype: RecordType) -> Lookup {
        let pod;
        let data: &[Data] = match self.names.get(name) {
            Some(node) => node,
            None => match self.pod(name) {
                Some(address) => {
                    pod = address;
                    pod.as_slice()
                }
                None => return Lookup::NxDomain,
            },
        };
        let cname = data.iter().find(|d| matches!(d, Data::Cname(_)));
        let selected: Vec<&Data> = match (qtype, cname) {
            (RecordType::ANY, _) => data.iter().collect(),
            (RecordType::CNAME, _) => cname.into_iter().collect(),
            (_, Some(cname)) => vec![cname],
            (qtype, None) => data.iter().filter(|d| d.record_type() == qtype).collect(),
        };
        let mut answers: Vec<Record> = selected
            .iter()
            .map(|d| self.record(name, d, data))
            .collect();
        if qtype == RecordType::SOA && *name == self.zone {
            answers.push(self.soa());
        }
        let mut additionals = Vec::new();
        let mut targets: Vec<&Name> = Vec::new();
        for d in &selected {
            if let Data::Srv { target, .. } = d
                && !targets.contains(&target)
            {
                targets.push(target);
                let addresses = self.names.get(target).into_iter().flatten();
                additionals.extend(
                    addresses
                        .filter(|a| matches!(a, Data::A(_) | Data::Aaaa(_)))
                        .map(|a| self.record(target, a, &[])),
                );
            }
        }
        Lookup::Found {
            answers,
            additionals,
        }
    }

    /// `<a-b-c-d>.<ns>.pod.<zone>` answers its address; `<ns>.pod.<zone>`
    /// exists for any namespace (an empty non-terminal, as the pod names
    /// below it all do). None: no such name.
    fn pod(&self, name: &Name) -> Option<Vec<Data>> {
        if !self.zone.zone_of(name) {
            return None;
        }
        let depth = name.num_labels().checked_sub(self.zone.num_labels())?;
        let labels: Vec<&[u8]> = name.iter().collect();
        let is_pod = |i: usize| {
            labels
                .get(i)
                .is_some_and(|l| l.eq_ignore_ascii_case(b"pod"))
        };
        match depth {
            2 if is_pod(1) => Some(vec![]),
            3 if is_pod(2) => {
                undash(std::str::from_utf8(labels[0]).ok()?).map(|ip| vec![Data::address(ip)])
            }
            _ => None,
        }
    }

    /// The PTR records of an address the zone names, or None when it names
    /// none (the query then goes upstream, as CoreDNS's `fallthrough`).
    pub fn reverse(&self, name: &Name) -> Option<Vec<Record>> {
        let targets = self.reverse.get(name)?;
        Some(
            targets
                .iter()
                .map(|t| Record::from_rdata(name.clone(), self.ttl, RData::PTR(PTR(t.clone()))))
                .collect(),
        )
    }

    /// The zone's SOA, as CoreDNS writes it (for negative answers too: its
    /// minimum is the negative-caching TTL, RFC 2308).
    pub fn soa(&self) -> Record {
        let soa = SOA::new(
            labels(&self.zone, &["ns", "dns"]).expect("fixed labels"),
            child(&self.zone, "hostmaster"),
            self.serial,
            7200,
            1800,
            86400,
            self.ttl,
        );
        Record::from_rdata(self.zone.clone(), self.ttl, RData::SOA(soa))
    }

    fn record(&self, owner: &Name, d: &Data, node: &[Data]) -> Record {
        let rdata = match d {
            Data::A(ip) => RData::A(A(*ip)),
            Data::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
            Data::Cname(target) => RData::CNAME(CNAME(target.clone())),
            Data::Srv { port, target } => {
                // CoreDNS's split: priority 0, weights sharing 100.
                let n = node
                    .iter()
                    .filter(|d| matches!(d, Data::Srv { .. }))
                    .count();
                RData::SRV(SRV::new(0, (100 / n.max(1)) as u16, *port, target.clone()))
            }
            Data::Txt(text) => RData::TXT(TXT::new(vec![text.to_string()])),
        };
        Record::from_rdata(owner.clone(), self.ttl, rdata)
    }
}

/// The current snapshot, shared by the rebuilder and every query. None
/// until the caches have synced.
#[derive(Debug, Default)]
pub struct Records {
    current: RwLock<Option<Arc<Index>>>,
}

impl Records {
    pub fn get(&self) -> Option<Arc<Index>> {
        self.current.read().expect("never poisoned").clone()
    }

    pub fn set(&self, index: Index) {
        *self.current.write().expect("never poisoned") = Some(Arc::new(index));
    }
}

fn child(zone: &Name, label: &str) -> Name {
    prepend(zone, label).expect("a fixed label")
}

/// `label.name`, or None when `label` cannot be a DNS label.
fn prepend(name: &Name, label: &str) -> Option<Name> {
    if label.is_empty() {
        return None;
    }
    // Raw bytes: a dashed IPv6 address may start with '-'.
    name.prepend_label(label.to_ascii_lowercase().as_bytes())
        .ok()
}

/// `labels[0].labels[1]...zone`.
fn labels(zone: &Name, labels: &[&str]) -> Option<Name> {
    labels
        .iter()
        .rev()
        .try_fold(zone.clone(), |name, label| prepend(&name, label))
}

/// `_<port>._<proto>.<fqdn>` for a named port; unnamed ports have no SRV.
fn srv_name(fqdn: &Name, port: Option<&str>, proto: &str) -> Option<Name> {
    let port = port.filter(|p| !p.is_empty())?;
    labels(fqdn, &[&format!("_{port}"), &format!("_{proto}")])
}

/// An ExternalName as an absolute name.
fn absolute(name: &str) -> Option<Name> {
    let mut name = Name::from_ascii(name).ok().filter(|n| !n.is_root())?;
    name.set_fqdn(true);
    Some(name)
}

/// The endpoint name CoreDNS gives an address without a hostname:
/// `10-1-2-3`, or `fd00--1` for IPv6.
pub fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => ip.to_string().replace('.', "-"),
        IpAddr::V6(ip) => ip.to_string().replace(':', "-"),
    }
}

/// The address a dashed label spells.
fn undash(label: &str) -> Option<IpAddr> {
    let v4 = label.replace('-', ".").parse::<Ipv4Addr>().map(IpAddr::V4);
    v4.or_else(|_| label.replace('-', ":").parse::<Ipv6Addr>().map(IpAddr::V6))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;

    fn zone() -> Name {
        Name::from_ascii("cluster.local.").unwrap()
    }

    fn index() -> Index {
        let services = [
            service("default", "web", "10.96.0.10")
                .port("http", 80, "TCP")
                .port("", 81, "TCP"),
            service("default", "dual", "10.96.0.11")
                .cluster_ips(&["10.96.0.11", "fd00::11"])
                .port("dns", 53, "UDP"),
            headless("default", "db").port("pg", 5432, "TCP"),
            headless("default", "open").publish_not_ready(),
            headless("default", "empty"),
            external("default", "ext", "www.example.com"),
            service("kube-system", "kube-dns", "10.96.0.53"),
        ];
        let slices = [
            slice("default", "db", "db-abc")
                .endpoint("10.1.0.1", Some(true), Some("db-0"))
                .endpoint("10.1.0.2", None, None)
                .endpoint("10.1.0.3", Some(false), Some("db-2"))
                .port("pg", 5432),
            slice("default", "db", "db-v6")
                .ipv6()
                .endpoint("fd00::1", Some(true), Some("db-0"))
                .port("pg", 5432),
            slice("default", "open", "open-1").endpoint("10.2.0.1", Some(false), None),
            slice("default", "empty", "empty-1").endpoint("10.3.0.1", Some(false), None),
            // Slices of no Service, or of FQDNs, add nothing.
            slice("default", "gone", "gone-1").endpoint("10.4.0.1", Some(true), None),
            slice("default", "db", "db-fqdn")
                .fqdn()
                .endpoint("x.example", Some(true), None),
        ];
        Index::build(&zone(), 5, 42, &services, &slices)
    }

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// The answers' data as text, in order ("NXDOMAIN" for none).
    fn look(index: &Index, name: &str, qtype: RecordType) -> Vec<String> {
        match index.lookup(&n(name), qtype) {
            Lookup::Found { answers, .. } => answers
                .iter()
                .map(|r| {
                    assert_eq!(r.name(), &n(name));
                    assert_eq!(r.ttl(), 5);
                    r.data().to_string()
                })
                .collect(),
            Lookup::NxDomain => vec!["NXDOMAIN".into()],
        }
    }

    #[test]
    fn lookups() {
        use RecordType::*;
        let index = index();
        let cases: &[(&str, &str, RecordType, &[&str])] = &[
            (
                "cluster ip",
                "web.default.svc.cluster.local.",
                A,
                &["10.96.0.10"],
            ),
            (
                "case-insensitive",
                "WEB.Default.SVC.cluster.LOCAL.",
                A,
                &["10.96.0.10"],
            ),
            (
                "no AAAA: no data",
                "web.default.svc.cluster.local.",
                AAAA,
                &[],
            ),
            (
                "dual-stack A",
                "dual.default.svc.cluster.local.",
                A,
                &["10.96.0.11"],
            ),
            (
                "dual-stack AAAA",
                "dual.default.svc.cluster.local.",
                AAAA,
                &["fd00::11"],
            ),
            (
                "other namespace",
                "kube-dns.kube-system.svc.cluster.local.",
                A,
                &["10.96.0.53"],
            ),
            (
                "missing service",
                "nope.default.svc.cluster.local.",
                A,
                &["NXDOMAIN"],
            ),
            (
                "missing namespace",
                "web.nope.svc.cluster.local.",
                A,
                &["NXDOMAIN"],
            ),
            (
                "below a service",
                "x.web.default.svc.cluster.local.",
                A,
                &["NXDOMAIN"],
            ),
            ("namespace: no data", "default.svc.cluster.local.", A, &[]),
            ("svc: no data", "svc.cluster.local.", A, &[]),
            ("apex: no data", "cluster.local.", A, &[]),
            (
                "schema version",
                "dns-version.cluster.local.",
                TXT,
                &["1.1.0"],
            ),
            (
                "srv cluster ip",
                "_http._tcp.web.default.svc.cluster.local.",
                SRV,
                &["0 100 80 web.default.svc.cluster.local."],
            ),
            (
                "srv udp",
                "_dns._udp.dual.default.svc.cluster.local.",
                SRV,
                &["0 100 53 dual.default.svc.cluster.local."],
            ),
            (
                "srv wrong proto",
                "_http._udp.web.default.svc.cluster.local.",
                SRV,
                &["NXDOMAIN"],
            ),
            (
                "srv A: no data",
                "_http._tcp.web.default.svc.cluster.local.",
                A,
                &[],
            ),
            (
                "proto level: no data",
                "_tcp.web.default.svc.cluster.local.",
                SRV,
                &[],
            ),
            (
                "headless: ready endpoints",
                "db.default.svc.cluster.local.",
                A,
                &["10.1.0.1", "10.1.0.2"],
            ),
            (
                "headless AAAA",
                "db.default.svc.cluster.local.",
                AAAA,
                &["fd00::1"],
            ),
            (
                "hostname",
                "db-0.db.default.svc.cluster.local.",
                A,
                &["10.1.0.1"],
            ),
            (
                "hostname AAAA",
                "db-0.db.default.svc.cluster.local.",
                AAAA,
                &["fd00::1"],
            ),
            (
                "dashed endpoint",
                "10-1-0-2.db.default.svc.cluster.local.",
                A,
                &["10.1.0.2"],
            ),
            (
                "not-ready hostname",
                "db-2.db.default.svc.cluster.local.",
                A,
                &["NXDOMAIN"],
            ),
            (
                "srv headless",
                "_pg._tcp.db.default.svc.cluster.local.",
                SRV,
                &[
                    "0 50 5432 10-1-0-2.db.default.svc.cluster.local.",
                    "0 50 5432 db-0.db.default.svc.cluster.local.",
                ],
            ),
            (
                "publishNotReadyAddresses",
                "open.default.svc.cluster.local.",
                A,
                &["10.2.0.1"],
            ),
            (
                "headless without ready endpoints",
                "empty.default.svc.cluster.local.",
                A,
                &["NXDOMAIN"],
            ),
            (
                "external name",
                "ext.default.svc.cluster.local.",
                A,
                &["www.example.com."],
            ),
            (
                "external name CNAME",
                "ext.default.svc.cluster.local.",
                CNAME,
                &["www.example.com."],
            ),
            (
                "pod",
                "10-244-1-5.default.pod.cluster.local.",
                A,
                &["10.244.1.5"],
            ),
            (
                "pod other namespace",
                "10-244-1-5.any.pod.cluster.local.",
                A,
                &["10.244.1.5"],
            ),
            (
                "pod IPv6",
                "fd00--5.default.pod.cluster.local.",
                AAAA,
                &["fd00::5"],
            ),
            (
                "pod AAAA of IPv4: no data",
                "10-244-1-5.default.pod.cluster.local.",
                AAAA,
                &[],
            ),
            (
                "pod not an address",
                "web.default.pod.cluster.local.",
                A,
                &["NXDOMAIN"],
            ),
            (
                "pod bad octet",
                "10-244-1-256.default.pod.cluster.local.",
                A,
                &["NXDOMAIN"],
            ),
            (
                "pod namespace: no data",
                "default.pod.cluster.local.",
                A,
                &[],
            ),
            (
                "below a pod",
                "x.10-244-1-5.default.pod.cluster.local.",
                A,
                &["NXDOMAIN"],
            ),
        ];
        for (what, name, qtype, want) in cases {
            assert_eq!(look(&index, name, *qtype), *want, "{what}");
        }
    }

    #[test]
    fn srv_additionals_are_target_addresses() {
        let index = index();
        let Lookup::Found { additionals, .. } = index.lookup(
            &n("_pg._tcp.db.default.svc.cluster.local."),
            RecordType::SRV,
        ) else {
            panic!("no answer");
        };
        let got: Vec<String> = additionals
            .iter()
            .map(|r| format!("{} {}", r.name(), r.data()))
            .collect();
        assert_eq!(
            got,
            [
                "10-1-0-2.db.default.svc.cluster.local. 10.1.0.2",
                "db-0.db.default.svc.cluster.local. 10.1.0.1",
                "db-0.db.default.svc.cluster.local. fd00::1",
            ]
        );
    }

    #[test]
    fn soa_and_reverse() {
        let index = index();
        let soa = index.soa();
        assert_eq!(
            format!("{} {} {}", soa.name(), soa.ttl(), soa.data()),
            "cluster.local. 5 ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5"
        );
        assert_eq!(look(&index, "cluster.local.", RecordType::SOA).len(), 1);
        let ptr = |ip: &str| -> Option<Vec<String>> {
            let name = Name::from(ip.parse::<IpAddr>().unwrap());
            let records = index.reverse(&name)?;
            Some(records.iter().map(|r| r.data().to_string()).collect())
        };
        let want = |s: &str| Some(vec![s.to_string()]);
        assert_eq!(ptr("10.96.0.10"), want("web.default.svc.cluster.local."));
        assert_eq!(ptr("fd00::11"), want("dual.default.svc.cluster.local."));
        assert_eq!(ptr("10.1.0.1"), want("db-0.db.default.svc.cluster.local."));
        assert_eq!(ptr("10.1.0.3"), None, "not ready");
        assert_eq!(ptr("10.9.9.9"), None, "unknown");
        let upper = Name::from_ascii("10.0.96.10.IN-ADDR.ARPA.").unwrap();
        assert!(index.reverse(&upper).is_some(), "case-insensitive");
    }

    #[test]
    fn other_zone() {
        let zone = Name::from_ascii("corp.example.").unwrap();
        let services = [service("default", "web", "10.96.0.10")];
        let index = Index::build(&zone, 5, 1, &services, &[]);
        assert_eq!(
            look(&index, "web.default.svc.corp.example.", RecordType::A).len(),
            1
        );
        let cluster_local = index.lookup(&n("web.default.svc.cluster.local."), RecordType::A);
        assert_eq!(cluster_local, Lookup::NxDomain);
        let pod_elsewhere = index.lookup(&n("10-0-0-1.default.pod.cluster.local."), RecordType::A);
        assert_eq!(pod_elsewhere, Lookup::NxDomain);
    }

    #[test]
    fn dashed_names() {
        let cases = [
            ("10.1.2.3", "10-1-2-3"),
            ("fd00::1", "fd00--1"),
            ("::1", "--1"),
        ];
        for (ip, want) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(dashed(ip), want);
            assert_eq!(undash(want), Some(ip), "{want}");
        }
    }
}
