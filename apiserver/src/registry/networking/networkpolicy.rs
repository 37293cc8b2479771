//! networking.k8s.io/v1 NetworkPolicy (upstream `pkg/registry/networking/networkpolicy/strategy.go`).

use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{
    child, index, invalid_each, is_valid_port_name, is_valid_port_num, validate_label_selector,
};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;
use std::net::IpAddr;

pub struct NetworkPolicyStrategy;

impl Strategy for NetworkPolicyStrategy {
    type Object = NetworkPolicy;

    fn defaults(&self, obj: &mut NetworkPolicy) {
        let spec = obj.spec.get_or_insert_with(Default::default);
        let ports = spec
            .ingress
            .iter_mut()
            .flatten()
            .flat_map(|r| r.ports.iter_mut().flatten())
            .chain(
                spec.egress
                    .iter_mut()
                    .flatten()
                    .flat_map(|r| r.ports.iter_mut().flatten()),
            );
        for port in ports {
            port.protocol.get_or_insert_with(|| "TCP".into());
        }
        // Every policy is an ingress policy; one with egress rules also egress.
        if spec.policy_types.as_ref().is_none_or(Vec::is_empty) {
            let mut types = vec!["Ingress".to_string()];
            if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
                types.push("Egress".into());
            }
            spec.policy_types = Some(types);
        }
    }

    fn validate(&self, obj: &NetworkPolicy) -> Vec<FieldError> {
        validate_spec(
            obj.spec.as_ref().unwrap_or(&NetworkPolicySpec::default()),
            "spec",
        )
    }
}

fn validate_spec(spec: &NetworkPolicySpec, path: &str) -> Vec<FieldError> {
    let mut errs = validate_label_selector(spec.pod_selector.as_ref(), &child(path, "podSelector"));
    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        let p = index(&child(path, "ingress"), i);
        errs.extend(validate_ports(rule.ports.as_deref(), &child(&p, "ports")));
        errs.extend(validate_peers(rule.from.as_deref(), &child(&p, "from")));
    }
    for (i, rule) in spec.egress.iter().flatten().enumerate() {
        let p = index(&child(path, "egress"), i);
        errs.extend(validate_ports(rule.ports.as_deref(), &child(&p, "ports")));
        errs.extend(validate_peers(rule.to.as_deref(), &child(&p, "to")));
    }
    let types = spec.policy_types.as_deref().unwrap_or_default();
    let types_path = child(path, "policyTypes");
    if types.len() > 2 {
        errs.push(FieldError::invalid(
            types_path,
            json!(types),
            "may not specify more than two policyTypes",
        ));
        return errs;
    }
    for (i, t) in types.iter().enumerate() {
        if t != "Ingress" && t != "Egress" {
            errs.push(FieldError::not_supported(
                index(&types_path, i),
                t.as_str(),
                &["Ingress", "Egress"],
            ));
        }
    }
    errs
}

fn validate_ports(ports: Option<&[NetworkPolicyPort]>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, port) in ports.unwrap_or_default().iter().enumerate() {
        errs.extend(validate_port(port, &index(path, i)));
    }
    errs
}

fn validate_port(port: &NetworkPolicyPort, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(proto) = port
        .protocol
        .as_deref()
        .filter(|p| !matches!(*p, "TCP" | "UDP" | "SCTP"))
    {
        errs.push(FieldError::not_supported(
            child(path, "protocol"),
            proto,
            &["TCP", "UDP", "SCTP"],
        ));
    }
    let (port_path, end_path) = (child(path, "port"), child(path, "endPort"));
    match (&port.port, port.end_port) {
        (Some(IntOrString::Int(n)), end) => {
            errs.extend(
                is_valid_port_num(*n)
                    .into_iter()
                    .map(|m| FieldError::invalid(&port_path, *n, m)),
            );
            if let Some(end) = end {
                if end < *n {
                    errs.push(FieldError::invalid(
                        &end_path,
                        *n,
                        "must be greater than or equal to `port`",
                    ));
                }
                errs.extend(
                    is_valid_port_num(end)
                        .into_iter()
                        .map(|m| FieldError::invalid(&end_path, end, m)),
                );
            }
        }
        (Some(IntOrString::String(name)), end) => {
            if let Some(end) = end {
                errs.push(FieldError::invalid(
                    &end_path,
                    end,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            errs.extend(invalid_each(&port_path, name, is_valid_port_name(name)));
        }
        (None, Some(end)) => {
            errs.push(FieldError::invalid(
                end_path,
                end,
                "may not be specified when `port` is not specified",
            ));
        }
        (None, None) => {}
    }
    errs
}

fn validate_peers(peers: Option<&[NetworkPolicyPeer]>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, peer) in peers.unwrap_or_default().iter().enumerate() {
        let p = index(path, i);
        errs.extend(validate_label_selector(
            peer.pod_selector.as_ref(),
            &child(&p, "podSelector"),
        ));
        errs.extend(validate_label_selector(
            peer.namespace_selector.as_ref(),
            &child(&p, "namespaceSelector"),
        ));
        if let Some(block) = &peer.ip_block {
            errs.extend(validate_ip_block(block, &child(&p, "ipBlock")));
        }
        let count = [
            peer.pod_selector.is_some(),
            peer.namespace_selector.is_some(),
            peer.ip_block.is_some(),
        ]
        .into_iter()
        .filter(|b| *b)
        .count();
        if count == 0 {
            errs.push(FieldError::required(&p, "must specify a peer"));
        } else if count > 1 && peer.ip_block.is_some() {
            errs.push(FieldError::forbidden(
                &p,
                "may not specify both ipBlock and another peer",
            ));
        }
    }
    errs
}

const INVALID_CIDR: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// Parses `ip/prefix` as Go's ParseCIDR does, host bits allowed.
fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits: u8 = bits
        .parse()
        .ok()
        .filter(|b| *b <= max && !bits.starts_with('+'))?;
    Some((ip, bits))
}

/// The address as a 128-bit number and its family's width, for masking.
fn bits_of(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

/// Whether `net/prefix` contains `ip` (same family only).
fn contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    let ((n, width), (i, other)) = (bits_of(net), bits_of(ip));
    if width != other {
        return false;
    }
    let shift = u32::from(width - prefix);
    shift >= 128 || (n >> shift) == (i >> shift)
}

fn validate_ip_block(block: &IPBlock, path: &str) -> Vec<FieldError> {
    let cidr_path = child(path, "cidr");
    if block.cidr.is_empty() {
        return vec![FieldError::required(cidr_path, "")];
    }
    let Some((net, prefix)) = parse_cidr(&block.cidr) else {
        return vec![FieldError::invalid(
            cidr_path,
            block.cidr.as_str(),
            INVALID_CIDR,
        )];
    };
    let mut errs = Vec::new();
    for (i, except) in block.except.iter().flatten().enumerate() {
        let p = index(&child(path, "except"), i);
        match parse_cidr(except) {
            None => errs.push(FieldError::invalid(p, except.as_str(), INVALID_CIDR)),
            Some((ip, bits)) if !contains(net, prefix, ip) || prefix >= bits => errs.push(
                FieldError::invalid(p, except.as_str(), "must be a strict subset of `cidr`"),
            ),
            Some(_) => {}
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::fields;
    use serde_json::{Value, from_value};

    fn policy(spec: Value) -> NetworkPolicy {
        let mut p: NetworkPolicy =
            from_value(json!({"metadata": {"name": "deny", "namespace": "default"}, "spec": spec}))
                .unwrap();
        NetworkPolicyStrategy.defaults(&mut p);
        p
    }

    #[test]
    fn defaults_are_upstreams() {
        let spec = policy(json!({"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}))
            .spec
            .unwrap();
        assert_eq!(spec.policy_types.unwrap(), ["Ingress"]);
        assert_eq!(
            spec.ingress.unwrap()[0].ports.as_ref().unwrap()[0]
                .protocol
                .as_deref(),
            Some("TCP")
        );
        let spec = policy(json!({"podSelector": {}, "egress": [{}]}))
            .spec
            .unwrap();
        assert_eq!(spec.policy_types.unwrap(), ["Ingress", "Egress"]);
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "valid",
                json!({"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{
                    "from": [{"podSelector": {}}, {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                    "ports": [{"port": 5432, "endPort": 5440}, {"port": "http"}],
                }]}),
                vec![],
            ),
            (
                "empty peer",
                json!({"ingress": [{"from": [{}]}]}),
                vec!["spec.ingress[0].from[0]"],
            ),
            (
                "ipBlock and selector",
                json!({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]}),
                vec!["spec.egress[0].to[0]"],
            ),
            (
                "bad cidr",
                json!({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]}),
                vec!["spec.egress[0].to[0].ipBlock.cidr"],
            ),
            (
                "except outside",
                json!({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24", "10.0.0.0/16"]}}]}]}),
                vec![
                    "spec.egress[0].to[0].ipBlock.except[0]",
                    "spec.egress[0].to[0].ipBlock.except[1]",
                ],
            ),
            (
                "protocol",
                json!({"ingress": [{"ports": [{"protocol": "ICMP"}]}]}),
                vec!["spec.ingress[0].ports[0].protocol"],
            ),
            (
                "port range",
                json!({"ingress": [{"ports": [{"port": 90, "endPort": 80}]}]}),
                vec!["spec.ingress[0].ports[0].endPort"],
            ),
            (
                "named port range",
                json!({"ingress": [{"ports": [{"port": "web", "endPort": 80}]}]}),
                vec!["spec.ingress[0].ports[0].endPort"],
            ),
            (
                "port 0",
                json!({"ingress": [{"ports": [{"port": 0}]}]}),
                vec!["spec.ingress[0].ports[0].port"],
            ),
            (
                "policy type",
                json!({"policyTypes": ["Sideways"]}),
                vec!["spec.policyTypes[0]"],
            ),
            (
                "three types",
                json!({"policyTypes": ["Ingress", "Egress", "Ingress"]}),
                vec!["spec.policyTypes"],
            ),
        ];
        for (name, spec, want) in cases {
            let errs = NetworkPolicyStrategy.validate(&policy(spec));
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }

    #[test]
    fn cidr_containment() {
        let (net, prefix) = parse_cidr("2001:db8::/32").unwrap();
        assert!(contains(net, prefix, "2001:db8:1::".parse().unwrap()));
        assert!(!contains(net, prefix, "2001:db9::".parse().unwrap()));
        assert!(!contains(net, prefix, "10.0.0.1".parse().unwrap()));
        let (net, prefix) = parse_cidr("0.0.0.0/0").unwrap();
        assert!(contains(net, prefix, "1.2.3.4".parse().unwrap()));
    }
}
