//! Endpoints (pkg/registry/core/endpoint/strategy.go).

use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{
    child, index, invalid_each, is_valid_ip, is_valid_port_num, validate_dns1123_label,
    validate_dns1123_subdomain, validate_qualified_name,
};
use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, Endpoints};
use std::net::IpAddr;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

pub struct EndpointsStrategy;

impl Strategy for EndpointsStrategy {
    type Object = Endpoints;

    fn defaults(&self, ep: &mut Endpoints) {
        let ports = ep
            .subsets
            .iter_mut()
            .flatten()
            .flat_map(|s| s.ports.iter_mut().flatten());
        for p in ports {
            p.protocol.get_or_insert_with(|| "TCP".into());
        }
    }

    fn validate(&self, ep: &Endpoints) -> Vec<FieldError> {
        let mut errs = Vec::new();
        for (i, ss) in ep.subsets.iter().flatten().enumerate() {
            let p = index("subsets", i);
            let ready = ss.addresses.as_deref().unwrap_or_default();
            let not_ready = ss.not_ready_addresses.as_deref().unwrap_or_default();
            if ready.is_empty() && not_ready.is_empty() {
                errs.push(FieldError::required(
                    &p,
                    "must specify `addresses` or `notReadyAddresses`",
                ));
            }
            for (field, list) in [("addresses", ready), ("notReadyAddresses", not_ready)] {
                for (j, a) in list.iter().enumerate() {
                    errs.extend(validate_address(a, &index(&child(&p, field), j)));
                }
            }
            let ports = ss.ports.as_deref().unwrap_or_default();
            for (j, port) in ports.iter().enumerate() {
                errs.extend(validate_port(
                    port,
                    ports.len() > 1,
                    &index(&child(&p, "ports"), j),
                ));
            }
        }
        errs
    }
}

fn validate_address(a: &EndpointAddress, path: &str) -> Vec<FieldError> {
    let ip_path = child(path, "ip");
    let mut errs = invalid_each(&ip_path, &a.ip, is_valid_ip(&a.ip));
    if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
        errs.extend(validate_dns1123_label(h, &child(path, "hostname")));
    }
    if let Some(n) = a.node_name.as_deref() {
        errs.extend(validate_dns1123_subdomain(n, &child(path, "nodeName")));
    }
    errs.extend(validate_endpoint_ip(&a.ip, &ip_path));
    errs
}

/// Unspecified, loopback and link-local addresses make no sense as endpoints
/// (upstream's ValidateNonSpecialIP, shared by Endpoints and EndpointSlices);
/// an IPv4-mapped IPv6 address is judged as the IPv4 one.
pub fn validate_endpoint_ip(ip: &str, path: &str) -> Vec<FieldError> {
    let Ok(addr) = ip.parse::<IpAddr>() else {
        return vec![FieldError::invalid(path, ip, "must be a valid IP address")];
    };
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    };
    let mut errs = Vec::new();
    let (unspecified, loopback, link_local, link_local_multicast) = match addr {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            (
                v4.is_unspecified(),
                v4.is_loopback(),
                v4.is_link_local(),
                o[0] == 224 && o[1] == 0 && o[2] == 0,
            )
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            (
                v6.is_unspecified(),
                v6.is_loopback(),
                (s[0] & 0xffc0) == 0xfe80,
                (s[0] & 0xff0f) == 0xff02,
            )
        }
    };
    if unspecified {
        errs.push(FieldError::invalid(
            path,
            ip,
            format!("may not be unspecified ({ip})"),
        ));
    }
    if loopback {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    if link_local {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if link_local_multicast {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

fn validate_port(port: &EndpointPort, require_name: bool, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = port.name.as_deref().unwrap_or("");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else if !name.is_empty() {
        errs.extend(validate_dns1123_label(name, &child(path, "name")));
    }
    for m in is_valid_port_num(port.port) {
        errs.push(FieldError::invalid(child(path, "port"), port.port, m));
    }
    match port.protocol.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(child(path, "protocol"), "")),
        p if !PROTOCOLS.contains(&p) => errs.push(FieldError::not_supported(
            child(path, "protocol"),
            p,
            PROTOCOLS,
        )),
        _ => {}
    }
    if let Some(ap) = port.app_protocol.as_deref() {
        errs.extend(validate_qualified_name(ap, &child(path, "appProtocol")));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::EndpointSubset;

    fn addr(ip: &str) -> EndpointAddress {
        EndpointAddress {
            ip: ip.into(),
            ..Default::default()
        }
    }

    fn port(name: Option<&str>, port: i32) -> EndpointPort {
        EndpointPort {
            name: name.map(Into::into),
            port,
            ..Default::default()
        }
    }

    fn ep(addresses: Vec<EndpointAddress>, ports: Vec<EndpointPort>) -> Endpoints {
        let mut e = Endpoints {
            subsets: Some(vec![EndpointSubset {
                addresses: Some(addresses),
                ports: Some(ports),
                ..Default::default()
            }]),
            ..Default::default()
        };
        EndpointsStrategy.defaults(&mut e);
        e
    }

    #[test]
    fn defaults_protocol() {
        let e = ep(vec![addr("10.0.0.1")], vec![port(None, 80)]);
        assert_eq!(
            e.subsets.unwrap()[0].ports.as_ref().unwrap()[0]
                .protocol
                .as_deref(),
            Some("TCP")
        );
    }

    #[test]
    fn validate_cases() {
        let cases: Vec<(&str, Endpoints, Vec<&str>)> = vec![
            (
                "valid",
                ep(
                    vec![addr("10.0.0.1"), addr("fd00::1")],
                    vec![port(Some("http"), 80), port(Some("https"), 443)],
                ),
                vec![],
            ),
            (
                "no ports is fine",
                ep(vec![addr("10.0.0.1")], vec![]),
                vec![],
            ),
            (
                "no addresses",
                ep(vec![], vec![port(None, 80)]),
                vec!["subsets[0]"],
            ),
            (
                "bad ip",
                ep(vec![addr("10.0.0")], vec![]),
                vec!["subsets[0].addresses[0].ip", "subsets[0].addresses[0].ip"],
            ),
            (
                "loopback",
                ep(vec![addr("127.0.0.1")], vec![]),
                vec!["subsets[0].addresses[0].ip"],
            ),
            (
                "link local",
                ep(vec![addr("169.254.169.254")], vec![]),
                vec!["subsets[0].addresses[0].ip"],
            ),
            (
                "unspecified",
                ep(vec![addr("::")], vec![]),
                vec!["subsets[0].addresses[0].ip"],
            ),
            (
                "unnamed ports",
                ep(
                    vec![addr("10.0.0.1")],
                    vec![port(None, 80), port(Some("b"), 81)],
                ),
                vec!["subsets[0].ports[0].name"],
            ),
            (
                "bad port",
                ep(vec![addr("10.0.0.1")], vec![port(None, 0)]),
                vec!["subsets[0].ports[0].port"],
            ),
        ];
        for (name, e, want) in cases {
            let got: Vec<String> = EndpointsStrategy
                .validate(&e)
                .into_iter()
                .map(|e| e.field)
                .collect();
            assert_eq!(got, want, "{name}");
        }
        let e = EndpointsStrategy.validate(&ep(vec![addr("127.0.0.1")], vec![]));
        assert_eq!(
            e[0].to_string(),
            "subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"
        );
    }
}
