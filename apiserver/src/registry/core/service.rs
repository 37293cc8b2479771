//! Services (pkg/registry/core/service/strategy.go). ClusterIP and nodePort
//! allocation happen in the store; this file defaults, normalizes and
//! validates what the user wrote.

use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{
    child, index, invalid_each, is_dns1035_label, is_dns1123_label, is_valid_ip, is_valid_port_num,
    validate_dns1123_label, validate_dns1123_subdomain, validate_labels, validate_port_num_or_name,
    validate_qualified_name,
};
use k8s_openapi::api::core::v1::{ClientIPConfig, Service, ServiceSpec, SessionAffinityConfig};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeSet;

pub const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const TRAFFIC_POLICIES: &[&str] = &["Cluster", "Local"];
const IP_FAMILY_POLICIES: &[&str] = &["SingleStack", "PreferDualStack", "RequireDualStack"];
const IP_FAMILIES: &[&str] = &["IPv4", "IPv6"];
/// DefaultClientIPServiceAffinitySeconds (3 hours).
const DEFAULT_AFFINITY_TIMEOUT: i32 = 10800;
const MAX_AFFINITY_TIMEOUT: i32 = 86400;

pub struct ServiceStrategy;

impl Strategy for ServiceStrategy {
    type Object = Service;

    fn defaults(&self, svc: &mut Service) {
        default_service_spec(svc.spec.get_or_insert_with(Default::default));
    }

    fn prepare_for_create(&self, svc: &mut Service) {
        svc.status = None;
        init_ip_families(svc.spec.get_or_insert_with(Default::default), None);
    }

    fn validate(&self, svc: &Service) -> Vec<FieldError> {
        let mut errs = Vec::new();
        // Service names must be DNS-1035 labels (start with a letter) so they
        // can be environment variable prefixes; the store checks RFC 1123.
        if let Some(name) = svc.metadata.name.as_deref()
            && is_dns1123_label(name).is_empty()
        {
            errs.extend(invalid_each("metadata.name", name, is_dns1035_label(name)));
        }
        errs.extend(validate_service_spec(&svc.spec.clone().unwrap_or_default()));
        errs
    }

    fn validate_update(&self, svc: &Service, old: &Service) -> Vec<FieldError> {
        let mut errs = self.validate(svc);
        let new = svc.spec.clone().unwrap_or_default();
        let old = old.spec.clone().unwrap_or_default();
        let is_external = |s: &ServiceSpec| s.type_.as_deref() == Some("ExternalName");
        if !is_external(&new) && !is_external(&old) {
            let old_ips = old.cluster_ips.clone().unwrap_or_default();
            let new_ips = new.cluster_ips.clone().unwrap_or_default();
            if let Some(first) = old_ips.first()
                && new_ips.first() != Some(first)
            {
                errs.push(FieldError::invalid(
                    "spec.clusterIPs[0]",
                    new_ips.first().cloned().unwrap_or_default(),
                    "may not change once set",
                ));
            }
            if old_ips.len() == 2 && new_ips.len() == 2 && old_ips[1] != new_ips[1] {
                errs.push(FieldError::invalid(
                    "spec.clusterIPs[1]",
                    new_ips[1].as_str(),
                    "may not change once set",
                ));
            }
            let old_fam = old.ip_families.clone().unwrap_or_default();
            let new_fam = new.ip_families.clone().unwrap_or_default();
            if let Some(first) = old_fam.first()
                && new_fam.first() != Some(first)
            {
                errs.push(FieldError::invalid(
                    "spec.ipFamilies[0]",
                    new_fam.first().cloned().unwrap_or_default(),
                    "may not change once set",
                ));
            }
        }
        errs
    }

    /// Upstream's PrepareForUpdate plus the store's patchAllocatedValues:
    /// status is kept, allocated values the client left out are carried over,
    /// and fields the new type cannot have are dropped (dropTypeDependentFields).
    fn prepare_for_update(&self, svc: &mut Service, old: &Service) {
        svc.status = old.status.clone();
        let Some(old_spec) = old.spec.as_ref() else {
            return;
        };
        let spec = svc.spec.get_or_insert_with(Default::default);
        let needs_ip = |s: &ServiceSpec| s.type_.as_deref() != Some("ExternalName");
        if needs_ip(spec) && needs_ip(old_spec) {
            if spec.cluster_ip.as_deref().unwrap_or("").is_empty()
                && spec.cluster_ips.as_ref().is_none_or(Vec::is_empty)
            {
                spec.cluster_ip = old_spec.cluster_ip.clone();
                spec.cluster_ips = old_spec.cluster_ips.clone();
            }
            if spec.ip_families.as_ref().is_none_or(Vec::is_empty) {
                spec.ip_families = old_spec.ip_families.clone();
            }
            if spec.ip_family_policy.is_none() {
                spec.ip_family_policy = old_spec.ip_family_policy.clone();
            }
        }
        let has_node_ports =
            |s: &ServiceSpec| matches!(s.type_.as_deref(), Some("NodePort" | "LoadBalancer"));
        if has_node_ports(spec) && has_node_ports(old_spec) {
            for p in spec.ports.iter_mut().flatten() {
                if p.node_port.is_none() {
                    let same = old_spec
                        .ports
                        .iter()
                        .flatten()
                        .find(|o| o.port == p.port && o.protocol == p.protocol);
                    p.node_port = same.and_then(|o| o.node_port);
                }
            }
        }
        // Type changes drop what the new type may not carry, unless the client changed it.
        if !has_node_ports(spec) && has_node_ports(old_spec) {
            for p in spec.ports.iter_mut().flatten() {
                let same = old_spec
                    .ports
                    .iter()
                    .flatten()
                    .find(|o| o.port == p.port && o.protocol == p.protocol);
                if same.is_some_and(|o| o.node_port == p.node_port) {
                    p.node_port = None;
                }
            }
        }
        if !needs_ip(spec) && needs_ip(old_spec) {
            if spec.cluster_ips == old_spec.cluster_ips {
                spec.cluster_ip = None;
                spec.cluster_ips = None;
            }
            if spec.ip_families == old_spec.ip_families {
                spec.ip_families = None;
            }
            if spec.ip_family_policy == old_spec.ip_family_policy {
                spec.ip_family_policy = None;
            }
        }
        if !externally_accessible(spec)
            && externally_accessible(old_spec)
            && spec.external_traffic_policy == old_spec.external_traffic_policy
        {
            spec.external_traffic_policy = None;
        }
        if spec.type_.as_deref() != Some("LoadBalancer")
            && old_spec.type_.as_deref() == Some("LoadBalancer")
        {
            if spec.allocate_load_balancer_node_ports == old_spec.allocate_load_balancer_node_ports
            {
                spec.allocate_load_balancer_node_ports = None;
            }
            if spec.health_check_node_port == old_spec.health_check_node_port {
                spec.health_check_node_port = None;
            }
        }
        init_ip_families(spec, Some(old_spec));
    }
}

fn externally_accessible(spec: &ServiceSpec) -> bool {
    match spec.type_.as_deref() {
        Some("LoadBalancer" | "NodePort") => true,
        Some("ClusterIP") => spec
            .external_ips
            .as_ref()
            .is_some_and(|ips| !ips.is_empty()),
        _ => false,
    }
}

fn is_headless(spec: &ServiceSpec) -> bool {
    spec.cluster_ip.as_deref() == Some("None")
}

fn family_of(ip: &str) -> Option<&'static str> {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => Some("IPv4"),
        Ok(std::net::IpAddr::V6(_)) => Some("IPv6"),
        Err(_) => None,
    }
}

/// SetDefaults_Service, plus keeping clusterIP and clusterIPs[0] in step
/// (upstream's NormalizeClusterIPs).
pub fn default_service_spec(spec: &mut ServiceSpec) {
    let affinity = spec
        .session_affinity
        .get_or_insert_with(|| "None".into())
        .clone();
    match affinity.as_str() {
        "None" => spec.session_affinity_config = None,
        "ClientIP" => {
            let timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds);
            if timeout.is_none() {
                spec.session_affinity_config = Some(SessionAffinityConfig {
                    client_ip: Some(ClientIPConfig {
                        timeout_seconds: Some(DEFAULT_AFFINITY_TIMEOUT),
                    }),
                });
            }
        }
        _ => {}
    }
    spec.type_.get_or_insert_with(|| "ClusterIP".into());
    for p in spec.ports.iter_mut().flatten() {
        p.protocol.get_or_insert_with(|| "TCP".into());
        if matches!(&p.target_port, None | Some(IntOrString::Int(0)))
            || p.target_port == Some(IntOrString::String(String::new()))
        {
            p.target_port = Some(IntOrString::Int(p.port));
        }
    }
    if externally_accessible(spec)
        && spec
            .external_traffic_policy
            .as_deref()
            .unwrap_or("")
            .is_empty()
    {
        spec.external_traffic_policy = Some("Cluster".into());
    }
    let ty = spec.type_.clone().unwrap_or_default();
    if spec.internal_traffic_policy.is_none()
        && matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer")
    {
        spec.internal_traffic_policy = Some("Cluster".into());
    }
    if ty == "LoadBalancer" {
        spec.allocate_load_balancer_node_ports.get_or_insert(true);
    }

    // clusterIP and clusterIPs[0] are the same field in two shapes.
    match (
        spec.cluster_ip.as_deref().unwrap_or(""),
        spec.cluster_ips.as_deref().unwrap_or_default(),
    ) {
        ("", [first, ..]) => spec.cluster_ip = Some(first.clone()),
        (ip, []) if !ip.is_empty() => spec.cluster_ips = Some(vec![ip.to_string()]),
        _ => {}
    }
}

/// Upstream's initIPFamilyFields (service REST storage) for a single-stack
/// IPv4 cluster: the policy defaults to the old one on update, else to
/// SingleStack (RequireDualStack for headless services without a selector);
/// families are inferred from clusterIPs, else the cluster default. A
/// RequireDualStack service other than headless+selectorless is left to the
/// allocator to reject ("this cluster is not configured for dual-stack services").
pub fn init_ip_families(spec: &mut ServiceSpec, old: Option<&ServiceSpec>) {
    if spec.type_.as_deref() == Some("ExternalName") {
        return;
    }
    let headless_without_selector =
        is_headless(spec) && spec.selector.as_ref().is_none_or(|s| s.is_empty());
    if spec.ip_family_policy.is_none() {
        spec.ip_family_policy = Some(match old.and_then(|o| o.ip_family_policy.clone()) {
            Some(p) => p,
            None if headless_without_selector => "RequireDualStack".into(),
            None => "SingleStack".into(),
        });
    }
    let families = spec.ip_families.get_or_insert_with(Vec::new);
    for (i, ip) in spec.cluster_ips.iter().flatten().enumerate() {
        let Some(fam) = family_of(ip) else { break };
        if i >= families.len() {
            families.push(fam.into());
        }
    }
    if families.is_empty() {
        families.push("IPv4".into());
    }
    // Headless+selectorless services may carry both families even here.
    if headless_without_selector
        && families.len() < 2
        && spec.ip_family_policy.as_deref() != Some("SingleStack")
    {
        let alt = if families[0] == "IPv4" {
            "IPv6"
        } else {
            "IPv4"
        };
        families.push(alt.into());
    }
}

fn validate_service_spec(spec: &ServiceSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ty = spec.type_.as_deref().unwrap_or("");
    match ty {
        "" => errs.push(FieldError::required("spec.type", "")),
        t if !SERVICE_TYPES.contains(&t) => {
            errs.push(FieldError::not_supported("spec.type", t, SERVICE_TYPES))
        }
        _ => {}
    }
    let ports = spec.ports.as_deref().unwrap_or_default();
    if ports.is_empty() && !is_headless(spec) && ty != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let mut names = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index("spec.ports", i);
        let name = p.name.as_deref().unwrap_or("");
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(child(&pp, "name"), ""));
        } else if !name.is_empty() {
            errs.extend(validate_dns1123_label(name, &child(&pp, "name")));
            if !names.insert(name) {
                errs.push(FieldError::duplicate(child(&pp, "name"), name));
            }
        }
        for m in is_valid_port_num(p.port) {
            errs.push(FieldError::invalid(child(&pp, "port"), p.port, m));
        }
        let proto = p.protocol.as_deref().unwrap_or("");
        match proto {
            "" => errs.push(FieldError::required(child(&pp, "protocol"), "")),
            pr if !PROTOCOLS.contains(&pr) => errs.push(FieldError::not_supported(
                child(&pp, "protocol"),
                pr,
                PROTOCOLS,
            )),
            _ => {}
        }
        if let Some(t) = &p.target_port {
            errs.extend(validate_port_num_or_name(t, &child(&pp, "targetPort")));
        }
        if let Some(np) = p.node_port.filter(|n| *n != 0) {
            if ty == "ClusterIP" {
                errs.push(FieldError::forbidden(
                    child(&pp, "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
            for m in is_valid_port_num(np) {
                errs.push(FieldError::invalid(child(&pp, "nodePort"), np, m));
            }
        }
        if let Some(ap) = p.app_protocol.as_deref() {
            errs.extend(validate_qualified_name(ap, &child(&pp, "appProtocol")));
        }
        if !keys.insert((p.port, proto)) {
            errs.push(FieldError::duplicate(
                &pp,
                serde_json::json!({ "port": p.port, "protocol": proto }),
            ));
        }
    }

    match spec.session_affinity.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required("spec.sessionAffinity", "")),
        "None" => {
            if spec.session_affinity_config.is_some() {
                errs.push(FieldError::forbidden(
                    "spec.sessionAffinityConfig",
                    "must not be set when `sessionAffinity` is None",
                ));
            }
        }
        "ClientIP" => {
            let t = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds);
            match t {
                Some(t) if t > 0 && t <= MAX_AFFINITY_TIMEOUT => {}
                t => errs.push(FieldError::invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    t.unwrap_or(0),
                    format!("must be greater than 0 and less than {MAX_AFFINITY_TIMEOUT}"),
                )),
            }
        }
        a => errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            a,
            &["ClientIP", "None"],
        )),
    }

    let cluster_ip = spec.cluster_ip.as_deref().unwrap_or("");
    let cluster_ips = spec.cluster_ips.as_deref().unwrap_or_default();
    if ty == "ExternalName" {
        if !cluster_ip.is_empty() || !cluster_ips.is_empty() {
            errs.push(FieldError::forbidden(
                "spec.clusterIPs",
                "may not be set for ExternalName services",
            ));
        }
        let name = spec.external_name.as_deref().unwrap_or("");
        if name.is_empty() {
            errs.push(FieldError::required("spec.externalName", ""));
        } else {
            errs.extend(validate_dns1123_subdomain(
                name.strip_suffix('.').unwrap_or(name),
                "spec.externalName",
            ));
        }
    } else {
        if let Some(first) = cluster_ips.first()
            && first != cluster_ip
        {
            errs.push(FieldError::invalid(
                "spec.clusterIPs",
                cluster_ips.to_vec(),
                "first value must match `clusterIP`",
            ));
        }
        for (i, ip) in cluster_ips.iter().enumerate() {
            let ok = (ip == "None" && i == 0) || is_valid_ip(ip).is_empty();
            if !ok {
                errs.push(FieldError::invalid(
                    index("spec.clusterIPs", i),
                    ip.as_str(),
                    "must be empty, 'None', or a valid IP address",
                ));
            }
        }
        if cluster_ips.len() > 2 {
            errs.push(FieldError::invalid(
                "spec.clusterIPs",
                cluster_ips.to_vec(),
                "may only hold up to 2 values",
            ));
        }
        if is_headless(spec) && matches!(ty, "NodePort" | "LoadBalancer") {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                "None",
                format!("may not be set to 'None' for {ty} services"),
            ));
        }
    }

    errs.extend(validate_labels(spec.selector.as_ref(), "spec.selector"));
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        errs.extend(invalid_each(
            &index("spec.externalIPs", i),
            ip,
            is_valid_ip(ip),
        ));
    }
    let ranges = spec
        .load_balancer_source_ranges
        .as_deref()
        .unwrap_or_default();
    if !ranges.is_empty() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.loadBalancerSourceRanges",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    for (i, r) in ranges.iter().enumerate() {
        if !is_cidr(r.trim()) {
            errs.push(FieldError::invalid(
                index("spec.loadBalancerSourceRanges", i),
                r.as_str(),
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            ));
        }
    }

    if let Some(p) = spec
        .external_traffic_policy
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        if !externally_accessible(spec) {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                p,
                "may only be set for externally-accessible services",
            ));
        } else if !TRAFFIC_POLICIES.contains(&p) {
            errs.push(FieldError::not_supported(
                "spec.externalTrafficPolicy",
                p,
                TRAFFIC_POLICIES,
            ));
        }
    }
    if ty != "ExternalName" {
        match spec.internal_traffic_policy.as_deref() {
            None if matches!(ty, "ClusterIP" | "NodePort" | "LoadBalancer") => {
                errs.push(FieldError::required("spec.internalTrafficPolicy", ""))
            }
            None => {}
            Some(p) if !TRAFFIC_POLICIES.contains(&p) => errs.push(FieldError::not_supported(
                "spec.internalTrafficPolicy",
                p,
                TRAFFIC_POLICIES,
            )),
            _ => {}
        }
        errs.extend(validate_ip_families(spec));
    }
    if ty == "LoadBalancer" {
        if spec.allocate_load_balancer_node_ports.is_none() {
            errs.push(FieldError::required(
                "spec.allocateLoadBalancerNodePorts",
                "",
            ));
        }
    } else if spec.allocate_load_balancer_node_ports.is_some() {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    errs
}

fn validate_ip_families(spec: &ServiceSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let policy = spec.ip_family_policy.as_deref();
    let families = spec.ip_families.as_deref().unwrap_or_default();
    if let Some(p) = policy.filter(|p| !IP_FAMILY_POLICIES.contains(p)) {
        errs.push(FieldError::not_supported(
            "spec.ipFamilyPolicy",
            p,
            IP_FAMILY_POLICIES,
        ));
    }
    if policy == Some("SingleStack") {
        if spec.cluster_ips.as_ref().is_some_and(|ips| ips.len() == 2) {
            errs.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                "SingleStack",
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
            ));
        }
        if families.len() == 2 {
            errs.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                "SingleStack",
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, f) in families.iter().enumerate() {
        let p = index("spec.ipFamilies", i);
        if !IP_FAMILIES.contains(&f.as_str()) {
            errs.push(FieldError::not_supported(&p, f.as_str(), IP_FAMILIES));
        } else if !seen.insert(f.as_str()) {
            errs.push(FieldError::duplicate(&p, f.as_str()));
        }
    }
    if families.len() > 2 {
        errs.push(FieldError::invalid(
            "spec.ipFamilies",
            families.to_vec(),
            "may only hold up to 2 values",
        ));
    }
    // Each clusterIP must belong to the family at the same position.
    for (i, ip) in spec.cluster_ips.iter().flatten().enumerate() {
        if let (Some(fam), Some(want)) = (family_of(ip), families.get(i))
            && fam != want
        {
            errs.push(FieldError::invalid(
                index("spec.clusterIPs", i),
                ip.as_str(),
                format!("expected an {want} value as indicated by `ipFamilies[{i}]`"),
            ));
        }
    }
    errs
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, len)) = s.split_once('/') else {
        return false;
    };
    let max = match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => 32,
        Ok(std::net::IpAddr::V6(_)) => 128,
        Err(_) => return false,
    };
    len.parse::<u8>().is_ok_and(|l| l <= max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServicePort;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn port(name: Option<&str>, port: i32) -> ServicePort {
        ServicePort {
            name: name.map(Into::into),
            port,
            ..Default::default()
        }
    }

    fn svc(f: impl FnOnce(&mut ServiceSpec)) -> Service {
        let mut s = Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some(BTreeMap::from([("app".into(), "web".into())])),
                ports: Some(vec![port(None, 80)]),
                ..Default::default()
            }),
            status: None,
        };
        f(s.spec.as_mut().unwrap());
        ServiceStrategy.defaults(&mut s);
        ServiceStrategy.prepare_for_create(&mut s);
        s
    }

    fn fields(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn defaults_applied() {
        let s = svc(|_| {}).spec.unwrap();
        assert_eq!(s.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(s.session_affinity.as_deref(), Some("None"));
        assert_eq!(s.internal_traffic_policy.as_deref(), Some("Cluster"));
        assert_eq!(s.ip_family_policy.as_deref(), Some("SingleStack"));
        assert_eq!(s.ip_families, Some(vec!["IPv4".to_string()]));
        assert_eq!(s.external_traffic_policy, None);
        let p = &s.ports.unwrap()[0];
        assert_eq!(p.protocol.as_deref(), Some("TCP"));
        assert_eq!(p.target_port, Some(IntOrString::Int(80)));

        let lb = svc(|s| {
            s.type_ = Some("LoadBalancer".into());
            s.session_affinity = Some("ClientIP".into());
        })
        .spec
        .unwrap();
        assert_eq!(lb.external_traffic_policy.as_deref(), Some("Cluster"));
        assert_eq!(lb.allocate_load_balancer_node_ports, Some(true));
        assert_eq!(
            lb.session_affinity_config
                .unwrap()
                .client_ip
                .unwrap()
                .timeout_seconds,
            Some(10800)
        );

        let v6 = svc(|s| s.cluster_ip = Some("fd00::10".into()))
            .spec
            .unwrap();
        assert_eq!(v6.cluster_ips, Some(vec!["fd00::10".to_string()]));
        assert_eq!(v6.ip_families, Some(vec!["IPv6".to_string()]));

        let headless = svc(|s| {
            s.cluster_ip = Some("None".into());
            s.selector = None;
        })
        .spec
        .unwrap();
        assert_eq!(
            headless.ip_family_policy.as_deref(),
            Some("RequireDualStack")
        );

        let ext = svc(|s| {
            s.type_ = Some("ExternalName".into());
            s.external_name = Some("example.com".into());
        })
        .spec
        .unwrap();
        assert_eq!((ext.ip_families, ext.internal_traffic_policy), (None, None));
    }

    #[test]
    fn validate_cases() {
        let cases: Vec<(&str, Service, Vec<&str>)> = vec![
            ("valid", svc(|_| {}), vec![]),
            (
                "valid headless without ports",
                svc(|s| {
                    s.cluster_ip = Some("None".into());
                    s.ports = None;
                }),
                vec![],
            ),
            (
                "valid external name",
                svc(|s| {
                    s.type_ = Some("ExternalName".into());
                    s.external_name = Some("db.example.com.".into());
                    s.ports = None;
                }),
                vec![],
            ),
            ("no ports", svc(|s| s.ports = None), vec!["spec.ports"]),
            (
                "bad type",
                svc(|s| s.type_ = Some("Magic".into())),
                vec!["spec.type"],
            ),
            (
                "unnamed ports",
                svc(|s| s.ports = Some(vec![port(None, 80), port(Some("b"), 81)])),
                vec!["spec.ports[0].name"],
            ),
            (
                "duplicate ports",
                svc(|s| s.ports = Some(vec![port(Some("a"), 80), port(Some("a"), 80)])),
                vec!["spec.ports[1].name", "spec.ports[1]"],
            ),
            (
                "bad port",
                svc(|s| s.ports = Some(vec![port(None, 0)])),
                vec!["spec.ports[0].port", "spec.ports[0].targetPort"],
            ),
            (
                "bad protocol",
                svc(|s| s.ports.as_mut().unwrap()[0].protocol = Some("ICMP".into())),
                vec!["spec.ports[0].protocol"],
            ),
            (
                "nodePort on ClusterIP",
                svc(|s| s.ports.as_mut().unwrap()[0].node_port = Some(30080)),
                vec!["spec.ports[0].nodePort"],
            ),
            (
                "bad clusterIP",
                svc(|s| s.cluster_ip = Some("10.0.0".into())),
                vec!["spec.clusterIPs[0]"],
            ),
            (
                "headless NodePort",
                svc(|s| {
                    s.type_ = Some("NodePort".into());
                    s.cluster_ip = Some("None".into());
                }),
                vec!["spec.clusterIPs[0]"],
            ),
            (
                "externalName missing",
                svc(|s| s.type_ = Some("ExternalName".into())),
                vec!["spec.externalName"],
            ),
            (
                "externalName with clusterIP",
                svc(|s| {
                    s.type_ = Some("ExternalName".into());
                    s.external_name = Some("a.b".into());
                    s.cluster_ip = Some("10.0.0.1".into());
                }),
                vec!["spec.clusterIPs"],
            ),
            (
                "bad affinity",
                svc(|s| s.session_affinity = Some("Sticky".into())),
                vec!["spec.sessionAffinity"],
            ),
            (
                "affinity timeout",
                svc(|s| {
                    s.session_affinity = Some("ClientIP".into());
                    s.session_affinity_config = Some(SessionAffinityConfig {
                        client_ip: Some(ClientIPConfig {
                            timeout_seconds: Some(0),
                        }),
                    });
                }),
                vec!["spec.sessionAffinityConfig.clientIP.timeoutSeconds"],
            ),
            (
                "etp on ClusterIP",
                svc(|s| s.external_traffic_policy = Some("Local".into())),
                vec!["spec.externalTrafficPolicy"],
            ),
            (
                "bad selector",
                svc(|s| s.selector = Some(BTreeMap::from([("a".into(), "b c".into())]))),
                vec!["spec.selector"],
            ),
            (
                "single stack with two families",
                svc(|s| {
                    s.ip_family_policy = Some("SingleStack".into());
                    s.ip_families = Some(vec!["IPv4".into(), "IPv6".into()]);
                }),
                vec!["spec.ipFamilyPolicy"],
            ),
            (
                "bad family",
                svc(|s| s.ip_families = Some(vec!["IPv5".into()])),
                vec!["spec.ipFamilies[0]"],
            ),
            (
                "source ranges on ClusterIP",
                svc(|s| s.load_balancer_source_ranges = Some(vec!["10.0.0.0/8".into()])),
                vec!["spec.loadBalancerSourceRanges"],
            ),
        ];
        for (name, s, want) in cases {
            assert_eq!(fields(ServiceStrategy.validate(&s)), want, "{name}");
        }
        let mut bad_name = svc(|_| {});
        bad_name.metadata.name = Some("1web".into());
        assert_eq!(
            fields(ServiceStrategy.validate(&bad_name)),
            vec!["metadata.name"]
        );
        let e = ServiceStrategy.validate(&svc(|s| s.ports = None));
        assert_eq!(e[0].to_string(), "spec.ports: Required value");
    }

    #[test]
    fn update_cases() {
        let old = svc(|s| s.cluster_ip = Some("10.96.0.10".into()));
        let cases: Vec<(&str, Service, Vec<&str>)> = vec![
            ("unchanged", old.clone(), vec![]),
            (
                "port change",
                svc(|s| {
                    s.cluster_ip = Some("10.96.0.10".into());
                    s.ports = Some(vec![port(None, 8080)]);
                }),
                vec![],
            ),
            (
                "clusterIP change",
                svc(|s| s.cluster_ip = Some("10.96.0.11".into())),
                vec!["spec.clusterIPs[0]"],
            ),
            (
                "to ExternalName",
                svc(|s| {
                    s.type_ = Some("ExternalName".into());
                    s.external_name = Some("a.b".into());
                }),
                vec![],
            ),
        ];
        for (name, new, want) in cases {
            assert_eq!(
                fields(ServiceStrategy.validate_update(&new, &old)),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn prepare_for_update_carries_allocations() {
        let mut old = svc(|s| {
            s.type_ = Some("NodePort".into());
            s.cluster_ip = Some("10.96.0.10".into());
        });
        old.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = Some(30080);
        // A PUT that leaves out the allocated values keeps them.
        let mut new = svc(|s| s.type_ = Some("NodePort".into()));
        ServiceStrategy.prepare_for_update(&mut new, &old);
        let spec = new.spec.as_ref().unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.10"));
        assert_eq!(spec.ports.as_ref().unwrap()[0].node_port, Some(30080));
        assert!(ServiceStrategy.validate_update(&new, &old).is_empty());
        // Switching to ClusterIP drops the unchanged nodePort.
        let mut to_cluster_ip = old.clone();
        to_cluster_ip.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
        ServiceStrategy.prepare_for_update(&mut to_cluster_ip, &old);
        assert_eq!(
            to_cluster_ip.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].node_port,
            None
        );
        assert!(
            ServiceStrategy
                .validate_update(&to_cluster_ip, &old)
                .is_empty()
        );
    }
}
