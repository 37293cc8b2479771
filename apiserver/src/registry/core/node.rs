//! Nodes (pkg/registry/core/node/strategy.go). Cluster-scoped; the kubelet
//! registers a node with its status, so create keeps status.

use super::pod::TAINT_EFFECTS;
use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{
    child, index, is_valid_label_value, validate_qualified_name, validate_resource_quantity_value,
};
use k8s_openapi::api::core::v1::{Node, NodeSpec, NodeStatus, Taint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::{BTreeMap, BTreeSet};

const UPDATE_FORBIDDEN: &str = "node updates may only change labels, taints, or capacity (or configSource, if the DynamicKubeletConfig feature gate is enabled)";
const POD_CIDR_FORBIDDEN: &str = "node updates may not change podCIDR except from \"\" to valid";

pub struct NodeStrategy;

impl Strategy for NodeStrategy {
    type Object = Node;

    /// SetDefaults_NodeStatus (allocatable defaults to capacity) and the v1
    /// conversion that keeps podCIDR == podCIDRs[0].
    fn defaults(&self, node: &mut Node) {
        if let Some(status) = node.status.as_mut()
            && status.allocatable.is_none()
        {
            status.allocatable = status.capacity.clone();
        }
        if let Some(spec) = node.spec.as_mut() {
            match (
                spec.pod_cidr.as_deref().unwrap_or(""),
                spec.pod_cidrs.as_deref().unwrap_or_default(),
            ) {
                ("", [first, ..]) => spec.pod_cidr = Some(first.clone()),
                (cidr, []) if !cidr.is_empty() => spec.pod_cidrs = Some(vec![cidr.to_string()]),
                _ => {}
            }
        }
    }

    /// Dynamic kubelet config is gone: drop its fields (dropDisabledFields).
    fn prepare_for_create(&self, node: &mut Node) {
        if let Some(spec) = node.spec.as_mut() {
            spec.config_source = None;
        }
        if let Some(status) = node.status.as_mut() {
            status.config = None;
        }
    }

    fn validate(&self, node: &Node) -> Vec<FieldError> {
        let spec = node.spec.clone().unwrap_or_default();
        let mut errs = validate_taints(spec.taints.as_deref().unwrap_or_default());
        errs.extend(validate_resources(node.status.as_ref()));
        let cidrs = spec.pod_cidrs.as_deref().unwrap_or_default();
        for (i, c) in cidrs.iter().enumerate() {
            if parse_cidr(c).is_none() {
                errs.push(FieldError::invalid(
                    index("spec.podCIDRs", i),
                    c.as_str(),
                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                ));
            }
        }
        if cidrs.len() > 1 {
            let families: BTreeSet<bool> = cidrs.iter().filter_map(|c| parse_cidr(c)).collect();
            if cidrs.len() > 2 || families.len() != 2 {
                errs.push(FieldError::invalid(
                    "spec.podCIDRs",
                    cidrs.to_vec(),
                    "may specify no more than one CIDR for each IP family",
                ));
            }
        }
        errs
    }

    fn validate_update(&self, node: &Node, old: &Node) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let spec = node.spec.clone().unwrap_or_default();
        let old_spec = old.spec.clone().unwrap_or_default();
        errs.extend(self.validate(node));
        let addresses = node
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_deref())
            .unwrap_or_default();
        for (i, a) in addresses.iter().enumerate() {
            if addresses[..i].contains(a) {
                errs.push(FieldError::duplicate(
                    index("status.addresses", i),
                    serde_json::to_value(a).unwrap_or_default(),
                ));
            }
        }
        let old_cidrs = old_spec.pod_cidrs.clone().unwrap_or_default();
        if !old_cidrs.is_empty() && spec.pod_cidrs.clone().unwrap_or_default() != old_cidrs {
            errs.push(FieldError::forbidden("spec.podCIDRs", POD_CIDR_FORBIDDEN));
        }
        let old_provider = old_spec.provider_id.clone().unwrap_or_default();
        if !old_provider.is_empty() && spec.provider_id.clone().unwrap_or_default() != old_provider
        {
            errs.push(FieldError::forbidden(
                "spec.providerID",
                "node updates may not change providerID except from \"\" to valid",
            ));
        }
        // Everything else in spec is fixed once set.
        let munged = NodeSpec {
            pod_cidr: spec.pod_cidr.clone(),
            pod_cidrs: spec.pod_cidrs.clone(),
            provider_id: spec.provider_id.clone(),
            unschedulable: spec.unschedulable,
            taints: spec.taints.clone(),
            config_source: spec.config_source.clone(),
            ..old_spec
        };
        if munged != spec {
            errs.push(FieldError::forbidden("", UPDATE_FORBIDDEN));
        }
        errs
    }

    /// Upstream's PrepareForUpdate: the main resource never writes status.
    fn prepare_for_update(&self, node: &mut Node, old: &Node) {
        node.status = old.status.clone();
        if old.spec.as_ref().is_none_or(|s| s.config_source.is_none())
            && let Some(spec) = node.spec.as_mut()
        {
            spec.config_source = None;
        }
    }
}

/// Taints: key qualified, value a label value, effect required, and each
/// key/effect pair at most once. Upstream reports them under
/// `metadata.taints` (it passes the metadata path), and so do we.
pub fn validate_taints(taints: &[Taint]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, t) in taints.iter().enumerate() {
        let p = index("metadata.taints", i);
        errs.extend(validate_qualified_name(&t.key, &child(&p, "key")));
        let value = t.value.as_deref().unwrap_or("");
        let msgs = is_valid_label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                child(&p, "value"),
                value,
                msgs.join(";"),
            ));
        }
        match t.effect.as_str() {
            "" => errs.push(FieldError::required(child(&p, "effect"), "")),
            e if !TAINT_EFFECTS.contains(&e) => errs.push(FieldError::not_supported(
                child(&p, "effect"),
                e,
                TAINT_EFFECTS,
            )),
            _ => {}
        }
        if !seen.insert((t.key.as_str(), t.effect.as_str())) {
            let mut e = FieldError::duplicate(&p, serde_json::to_value(t).unwrap_or_default());
            e.detail = "taints must be unique by key and effect pair".into();
            errs.push(e);
        }
    }
    errs
}

/// Capacity and allocatable quantities: non-negative, whole for integer resources.
fn validate_resources(status: Option<&NodeStatus>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let lists: [(&str, Option<&BTreeMap<String, Quantity>>); 2] = [
        ("status.capacity", status.and_then(|s| s.capacity.as_ref())),
        (
            "status.allocatable",
            status.and_then(|s| s.allocatable.as_ref()),
        ),
    ];
    for (path, list) in lists {
        for (k, q) in list.into_iter().flatten() {
            errs.extend(validate_resource_quantity_value(k, q, &child(path, k)));
        }
    }
    errs
}

/// Some(is_ipv4) for a valid CIDR.
fn parse_cidr(s: &str) -> Option<bool> {
    let (ip, len) = s.split_once('/')?;
    let ip: std::net::IpAddr = ip.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let v4 = ip.is_ipv4();
    (len <= if v4 { 32 } else { 128 }).then_some(v4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeAddress;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            ..Default::default()
        }
    }

    fn node(f: impl FnOnce(&mut NodeSpec, &mut NodeStatus)) -> Node {
        let mut spec = NodeSpec::default();
        let mut status = NodeStatus {
            capacity: Some(BTreeMap::from([
                ("cpu".into(), Quantity("4".into())),
                ("pods".into(), Quantity("110".into())),
            ])),
            ..Default::default()
        };
        f(&mut spec, &mut status);
        let mut n = Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                ..Default::default()
            },
            spec: Some(spec),
            status: Some(status),
        };
        NodeStrategy.defaults(&mut n);
        n
    }

    fn fields(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn defaults_applied() {
        let n = node(|s, _| s.pod_cidr = Some("10.244.0.0/24".into()));
        assert_eq!(
            n.status.as_ref().unwrap().allocatable,
            n.status.as_ref().unwrap().capacity
        );
        assert_eq!(
            n.spec.unwrap().pod_cidrs,
            Some(vec!["10.244.0.0/24".to_string()])
        );
    }

    #[test]
    fn validate_cases() {
        let cases: Vec<(&str, Node, Vec<&str>)> = vec![
            (
                "valid",
                node(|s, _| s.taints = Some(vec![taint("dedicated", "NoSchedule")])),
                vec![],
            ),
            (
                "dual stack",
                node(|s, _| s.pod_cidrs = Some(vec!["10.244.0.0/24".into(), "fd00::/64".into()])),
                vec![],
            ),
            (
                "bad effect",
                node(|s, _| s.taints = Some(vec![taint("k", "Sometimes")])),
                vec!["metadata.taints[0].effect"],
            ),
            (
                "no effect",
                node(|s, _| s.taints = Some(vec![taint("k", "")])),
                vec!["metadata.taints[0].effect"],
            ),
            (
                "bad key",
                node(|s, _| s.taints = Some(vec![taint("a/b/c", "NoSchedule")])),
                vec!["metadata.taints[0].key"],
            ),
            (
                "duplicate taint",
                node(|s, _| {
                    s.taints = Some(vec![
                        taint("k", "NoSchedule"),
                        taint("k", "NoSchedule"),
                        taint("k", "NoExecute"),
                    ])
                }),
                vec!["metadata.taints[1]"],
            ),
            (
                "bad cidr",
                node(|s, _| s.pod_cidrs = Some(vec!["10.0.0.0/33".into()])),
                vec!["spec.podCIDRs[0]"],
            ),
            (
                "two v4 cidrs",
                node(|s, _| s.pod_cidrs = Some(vec!["10.0.0.0/24".into(), "10.1.0.0/24".into()])),
                vec!["spec.podCIDRs"],
            ),
            (
                "negative capacity",
                node(|_, st| {
                    st.capacity = Some(BTreeMap::from([("cpu".into(), Quantity("-1".into()))]))
                }),
                vec!["status.capacity.cpu", "status.allocatable.cpu"],
            ),
            (
                "fractional pods",
                node(|_, st| {
                    st.capacity = Some(BTreeMap::from([("pods".into(), Quantity("1500m".into()))]))
                }),
                vec!["status.capacity.pods", "status.allocatable.pods"],
            ),
        ];
        for (name, n, want) in cases {
            assert_eq!(fields(NodeStrategy.validate(&n)), want, "{name}");
        }
    }

    #[test]
    fn update_cases() {
        let old = node(|s, _| {
            s.pod_cidrs = Some(vec!["10.244.0.0/24".into()]);
            s.provider_id = Some("kind://n1".into());
        });
        let change = |f: &dyn Fn(&mut NodeSpec, &mut NodeStatus)| {
            let mut n = old.clone();
            f(n.spec.as_mut().unwrap(), n.status.as_mut().unwrap());
            n
        };
        let cases: Vec<(&str, Node, Vec<&str>)> = vec![
            (
                "cordon and taint",
                change(&|s, _| {
                    s.unschedulable = Some(true);
                    s.taints = Some(vec![taint("k", "NoSchedule")]);
                }),
                vec![],
            ),
            (
                "change cidr",
                change(&|s, _| s.pod_cidrs = Some(vec!["10.245.0.0/24".into()])),
                vec!["spec.podCIDRs"],
            ),
            (
                "change provider",
                change(&|s, _| s.provider_id = Some("other".into())),
                vec!["spec.providerID"],
            ),
            (
                "change externalID",
                change(&|s, _| s.external_id = Some("x".into())),
                vec![""],
            ),
            (
                "duplicate addresses",
                change(&|_, st| {
                    let a = NodeAddress {
                        type_: "InternalIP".into(),
                        address: "10.0.0.1".into(),
                    };
                    st.addresses = Some(vec![a.clone(), a]);
                }),
                vec!["status.addresses[1]"],
            ),
        ];
        for (name, n, want) in cases {
            assert_eq!(
                fields(NodeStrategy.validate_update(&n, &old)),
                want,
                "{name}"
            );
        }
        // A node without a CIDR may get one.
        let bare = node(|_, _| {});
        let assigned = node(|s, _| s.pod_cidrs = Some(vec!["10.244.1.0/24".into()]));
        assert!(NodeStrategy.validate_update(&assigned, &bare).is_empty());
    }
}
