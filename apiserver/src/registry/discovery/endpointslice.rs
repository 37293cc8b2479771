//! discovery.k8s.io/v1 EndpointSlice (upstream `pkg/registry/discovery/endpointslice/strategy.go`).

use crate::error::FieldError;
use crate::registry::core::endpoints::validate_endpoint_ip;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{
    child, index, invalid_each, is_dns1123_label, is_dns1123_subdomain, is_valid_label_value,
    validate_dns1123_label, validate_immutable, validate_labels, validate_qualified_name,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointHints, EndpointPort, EndpointSlice};
use std::collections::BTreeSet;
use std::net::IpAddr;

const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const MAX_TOPOLOGY_LABELS: usize = 16;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20_000;
const MAX_ENDPOINTS: usize = 1000;
const MAX_HINTS: usize = 8;
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

pub struct EndpointSliceStrategy;

impl Strategy for EndpointSliceStrategy {
    type Object = EndpointSlice;

    fn defaults(&self, obj: &mut EndpointSlice) {
        for port in obj.ports.iter_mut().flatten() {
            port.name.get_or_insert_with(String::new);
            port.protocol.get_or_insert_with(|| "TCP".into());
        }
    }

    /// The v1 API ignores writes of the deprecated topology map. Slices
    /// track a generation, which the EndpointSlice controller uses to spot
    /// stale reads.
    fn prepare_for_create(&self, obj: &mut EndpointSlice) {
        obj.metadata.generation = Some(1);
        drop_topology(obj, None);
    }

    fn prepare_for_update(&self, obj: &mut EndpointSlice, old: &EndpointSlice) {
        let labels = |s: &EndpointSlice| s.metadata.labels.clone().unwrap_or_default();
        let changed = obj.address_type != old.address_type
            || obj.endpoints != old.endpoints
            || obj.ports != old.ports
            || labels(obj) != labels(old);
        if changed {
            obj.metadata.generation = Some(old.metadata.generation.unwrap_or(0) + 1);
        }
        drop_topology(obj, Some(old));
    }

    fn validate(&self, obj: &EndpointSlice) -> Vec<FieldError> {
        validate_slice(obj, None)
    }

    fn validate_update(&self, obj: &EndpointSlice, old: &EndpointSlice) -> Vec<FieldError> {
        let mut errs = validate_slice(obj, Some(old));
        errs.extend(validate_immutable(
            &obj.address_type,
            &old.address_type,
            "addressType",
        ));
        errs
    }
}

/// Upstream's dropTopologyOnV1: clears `deprecatedTopology` on written
/// endpoints, keeping a node name the stored slice recorded there.
fn drop_topology(slice: &mut EndpointSlice, old: Option<&EndpointSlice>) {
    if old.is_some_and(|o| o.endpoints == slice.endpoints) {
        return;
    }
    let previous: BTreeSet<&str> = old
        .map(|o| o.endpoints.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|ep| ep.deprecated_topology.as_ref()?.get(HOSTNAME_LABEL))
        .map(String::as_str)
        .collect();
    for ep in &mut slice.endpoints {
        let recorded = ep
            .deprecated_topology
            .as_ref()
            .and_then(|t| t.get(HOSTNAME_LABEL))
            .filter(|n| previous.contains(n.as_str()) && is_dns1123_subdomain(n).is_empty());
        if ep.node_name.is_none() {
            ep.node_name = recorded.cloned();
        }
        ep.deprecated_topology = None;
    }
}

fn validate_slice(slice: &EndpointSlice, old: Option<&EndpointSlice>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match slice.address_type.as_str() {
        "" => errs.push(FieldError::required("addressType", "")),
        t if !ADDRESS_TYPES.contains(&t) => {
            errs.push(FieldError::not_supported("addressType", t, ADDRESS_TYPES))
        }
        _ => {}
    }
    errs.extend(validate_ports(
        slice.ports.as_deref().unwrap_or_default(),
        "ports",
    ));
    // Unchanged endpoints are not revalidated: they may hold addresses that
    // older, looser rules accepted.
    if old.is_none_or(|o| o.endpoints != slice.endpoints) {
        errs.extend(validate_endpoints(
            &slice.endpoints,
            &slice.address_type,
            "endpoints",
        ));
    }
    errs
}

fn validate_endpoints(endpoints: &[Endpoint], address_type: &str, path: &str) -> Vec<FieldError> {
    if endpoints.len() > MAX_ENDPOINTS {
        return vec![FieldError::too_many(path, endpoints.len(), MAX_ENDPOINTS)];
    }
    let mut errs = Vec::new();
    for (i, ep) in endpoints.iter().enumerate() {
        let p = index(path, i);
        let addresses_path = child(&p, "addresses");
        if ep.addresses.is_empty() {
            errs.push(FieldError::required(
                &addresses_path,
                "must contain at least 1 address",
            ));
        } else if ep.addresses.len() > MAX_ADDRESSES {
            errs.push(FieldError::too_many(
                &addresses_path,
                ep.addresses.len(),
                MAX_ADDRESSES,
            ));
        }
        for (j, address) in ep.addresses.iter().enumerate() {
            let ap = index(&addresses_path, j);
            // Unknown address types were already rejected; their addresses are not checked.
            match address_type {
                "IPv4" => {
                    if !parse_ip(address).is_some_and(is_ipv4) {
                        errs.push(FieldError::invalid(
                            &ap,
                            address.as_str(),
                            "must be a valid IPv4 address",
                        ));
                    }
                    errs.extend(validate_endpoint_ip(address, &ap));
                }
                "IPv6" => {
                    if parse_ip(address).is_none_or(is_ipv4) {
                        errs.push(FieldError::invalid(
                            &ap,
                            address.as_str(),
                            "must be a valid IPv6 address",
                        ));
                    }
                    errs.extend(validate_endpoint_ip(address, &ap));
                }
                "FQDN" => errs.extend(validate_fqdn(address, &ap)),
                _ => {}
            }
        }
        if let Some(node) = &ep.node_name {
            errs.extend(invalid_each(
                &child(&p, "nodeName"),
                node,
                is_dns1123_subdomain(node),
            ));
        }
        let topology_path = child(&p, "deprecatedTopology");
        let topology = ep.deprecated_topology.as_ref();
        if topology.is_some_and(|t| t.len() > MAX_TOPOLOGY_LABELS) {
            errs.push(FieldError::too_many(
                &topology_path,
                topology.map_or(0, |t| t.len()),
                MAX_TOPOLOGY_LABELS,
            ));
        }
        errs.extend(validate_labels(topology, &topology_path));
        if let Some(hostname) = &ep.hostname {
            errs.extend(validate_dns1123_label(hostname, &child(&p, "hostname")));
        }
        if let Some(hints) = &ep.hints {
            errs.extend(validate_hints(hints, &child(&p, "hints")));
        }
    }
    errs
}

/// Go's net.ParseIP view: IPv4-mapped IPv6 addresses count as IPv4.
fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

fn is_ipv4(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
    }
}

/// Upstream's IsFullyQualifiedDomainName: at least two labels, optional final dot.
fn validate_fqdn(name: &str, path: &str) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let errs = is_dns1123_subdomain(name);
    if !errs.is_empty() {
        return vec![FieldError::invalid(path, name, errs.join(","))];
    }
    if !name.contains('.') {
        return vec![FieldError::invalid(
            path,
            name,
            "should be a domain with at least two segments separated by dots",
        )];
    }
    for label in name.split('.') {
        let errs = is_dns1123_label(label);
        if !errs.is_empty() {
            return vec![FieldError::invalid(path, label, errs.join(","))];
        }
    }
    Vec::new()
}

fn validate_hints(hints: &EndpointHints, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let zones = hints.for_zones.as_deref().unwrap_or_default();
    let zones_path = child(path, "forZones");
    if zones.len() > MAX_HINTS {
        return vec![FieldError::too_many(zones_path, zones.len(), MAX_HINTS)];
    }
    let mut seen = BTreeSet::new();
    for (i, zone) in zones.iter().enumerate() {
        let p = child(&index(&zones_path, i), "name");
        if !seen.insert(&zone.name) {
            errs.push(FieldError::duplicate(&p, zone.name.as_str()));
        }
        errs.extend(invalid_each(
            &p,
            &zone.name,
            is_valid_label_value(&zone.name),
        ));
    }
    let nodes = hints.for_nodes.as_deref().unwrap_or_default();
    let nodes_path = child(path, "forNodes");
    if nodes.len() > MAX_HINTS {
        errs.push(FieldError::too_many(nodes_path, nodes.len(), MAX_HINTS));
        return errs;
    }
    let mut seen = BTreeSet::new();
    for (i, node) in nodes.iter().enumerate() {
        let p = child(&index(&nodes_path, i), "name");
        if !seen.insert(&node.name) {
            errs.push(FieldError::duplicate(&p, node.name.as_str()));
        }
        errs.extend(invalid_each(
            &p,
            &node.name,
            is_dns1123_subdomain(&node.name),
        ));
    }
    errs
}

fn validate_ports(ports: &[EndpointPort], path: &str) -> Vec<FieldError> {
    if ports.len() > MAX_PORTS {
        return vec![FieldError::too_many(path, ports.len(), MAX_PORTS)];
    }
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index(path, i);
        let name = port.name.as_deref().unwrap_or("");
        if !name.is_empty() {
            errs.extend(validate_dns1123_label(name, &child(&p, "name")));
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(child(&p, "name"), name));
        }
        match port.protocol.as_deref() {
            None => errs.push(FieldError::required(child(&p, "protocol"), "")),
            Some(proto) if !PROTOCOLS.contains(&proto) => errs.push(FieldError::not_supported(
                child(&p, "protocol"),
                proto,
                PROTOCOLS,
            )),
            Some(_) => {}
        }
        if let Some(app) = &port.app_protocol {
            errs.extend(validate_qualified_name(app, &child(&p, "appProtocol")));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::fields;
    use serde_json::{Value, from_value, json};

    fn slice(address_type: &str, endpoints: Value, ports: Value) -> EndpointSlice {
        let mut s: EndpointSlice = from_value(json!({
            "metadata": {"name": "web-abc", "namespace": "default"},
            "addressType": address_type,
            "endpoints": endpoints,
            "ports": ports,
        }))
        .unwrap();
        EndpointSliceStrategy.defaults(&mut s);
        s
    }

    #[test]
    fn defaults_ports() {
        let s = slice("IPv4", json!([]), json!([{"port": 80}]));
        let port = &s.ports.unwrap()[0];
        assert_eq!(port.name.as_deref(), Some(""));
        assert_eq!(port.protocol.as_deref(), Some("TCP"));
    }

    #[test]
    fn validation_table() {
        let ok_ports = json!([{"name": "http", "port": 80}]);
        let cases: Vec<(&str, EndpointSlice, Vec<&str>)> = vec![
            (
                "valid",
                slice(
                    "IPv4",
                    json!([{"addresses": ["10.0.0.1"], "nodeName": "node-1", "hostname": "web-0",
                            "hints": {"forZones": [{"name": "zone-a"}]}}]),
                    ok_ports.clone(),
                ),
                vec![],
            ),
            (
                "valid v6",
                slice("IPv6", json!([{"addresses": ["2001:db8::1"]}]), json!([])),
                vec![],
            ),
            (
                "valid fqdn",
                slice(
                    "FQDN",
                    json!([{"addresses": ["db.example.com"]}]),
                    json!([]),
                ),
                vec![],
            ),
            (
                "no type",
                slice("", json!([]), json!([])),
                vec!["addressType"],
            ),
            (
                "bad type",
                slice("IPv5", json!([{"addresses": ["x"]}]), json!([])),
                vec!["addressType"],
            ),
            (
                "no addresses",
                slice("IPv4", json!([{"addresses": []}]), json!([])),
                vec!["endpoints[0].addresses"],
            ),
            (
                "wrong family",
                slice("IPv4", json!([{"addresses": ["2001:db8::1"]}]), json!([])),
                vec!["endpoints[0].addresses[0]"],
            ),
            (
                "not an ip",
                slice("IPv6", json!([{"addresses": ["nope"]}]), json!([])),
                vec!["endpoints[0].addresses[0]", "endpoints[0].addresses[0]"],
            ),
            (
                "loopback",
                slice("IPv4", json!([{"addresses": ["127.0.0.1"]}]), json!([])),
                vec!["endpoints[0].addresses[0]"],
            ),
            (
                "link local",
                slice("IPv6", json!([{"addresses": ["fe80::1"]}]), json!([])),
                vec!["endpoints[0].addresses[0]"],
            ),
            (
                "short fqdn",
                slice("FQDN", json!([{"addresses": ["localhost"]}]), json!([])),
                vec!["endpoints[0].addresses[0]"],
            ),
            (
                "hostname",
                slice(
                    "IPv4",
                    json!([{"addresses": ["10.0.0.1"], "hostname": "a.b"}]),
                    json!([]),
                ),
                vec!["endpoints[0].hostname"],
            ),
            (
                "duplicate zone hint",
                slice(
                    "IPv4",
                    json!([{"addresses": ["10.0.0.1"], "hints": {"forZones": [{"name": "a"}, {"name": "a"}]}}]),
                    json!([]),
                ),
                vec!["endpoints[0].hints.forZones[1].name"],
            ),
            (
                "ports",
                slice(
                    "IPv4",
                    json!([]),
                    json!([{"name": "http"}, {"name": "http", "protocol": "ICMP"}, {"name": "Bad"}]),
                ),
                vec!["ports[1].name", "ports[1].protocol", "ports[2].name"],
            ),
        ];
        for (name, s, want) in cases {
            let errs = EndpointSliceStrategy.validate(&s);
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }

    #[test]
    fn update_rules() {
        let old = slice("IPv4", json!([{"addresses": ["127.0.0.1"]}]), json!([]));
        // Stored endpoints are not revalidated when unchanged.
        assert!(
            EndpointSliceStrategy
                .validate_update(&old, &old.clone())
                .is_empty()
        );
        let mut new = old.clone();
        new.address_type = "IPv6".into();
        new.endpoints.clear();
        assert_eq!(
            fields(&EndpointSliceStrategy.validate_update(&new, &old)),
            ["addressType"]
        );
    }

    #[test]
    fn create_drops_deprecated_topology() {
        let mut s = slice(
            "IPv4",
            json!([{"addresses": ["10.0.0.1"], "deprecatedTopology": {"a": "b"}}]),
            json!([]),
        );
        EndpointSliceStrategy.prepare_for_create(&mut s);
        assert!(s.endpoints[0].deprecated_topology.is_none());
        assert_eq!(s.metadata.generation, Some(1));
    }

    #[test]
    fn update_tracks_generation_and_keeps_recorded_node_names() {
        let topology = json!({"kubernetes.io/hostname": "node-1"});
        let mut old = slice(
            "IPv4",
            json!([{"addresses": ["10.0.0.1"], "deprecatedTopology": topology}]),
            json!([]),
        );
        old.metadata.generation = Some(4);
        let mut same = old.clone();
        EndpointSliceStrategy.prepare_for_update(&mut same, &old);
        assert_eq!(same.metadata.generation, Some(4));
        // Unchanged endpoints keep what they stored.
        assert!(same.endpoints[0].deprecated_topology.is_some());

        let mut new = slice(
            "IPv4",
            json!([{"addresses": ["10.0.0.2"], "deprecatedTopology": topology},
                   {"addresses": ["10.0.0.3"], "deprecatedTopology": {"kubernetes.io/hostname": "node-9"}}]),
            json!([]),
        );
        new.metadata.generation = Some(4);
        EndpointSliceStrategy.prepare_for_update(&mut new, &old);
        assert_eq!(new.metadata.generation, Some(5));
        assert_eq!(new.endpoints[0].node_name.as_deref(), Some("node-1"));
        assert_eq!(new.endpoints[1].node_name, None);
        assert!(
            new.endpoints
                .iter()
                .all(|e| e.deprecated_topology.is_none())
        );

        let mut relabeled = old.clone();
        relabeled.metadata.labels =
            Some([("kubernetes.io/service-name".to_string(), "web".to_string())].into());
        EndpointSliceStrategy.prepare_for_update(&mut relabeled, &old);
        assert_eq!(relabeled.metadata.generation, Some(5));
    }
}
