//! NodeRestriction: what a kubelet's identity (`system:node:NAME` in
//! `system:nodes`) may write: its own Node (not its taints, nor labels in
//! the kubernetes.io namespaces outside the kubelet's own), mirror pods
//! bound to itself, the status of and evictions of pods bound to itself,
//! and its own Lease. Everything else it is refused, so a stolen kubelet
//! credential cannot reach the rest of the cluster.

use super::{Attributes, MIRROR_ANNOTATION, Operation, Plugin};
use crate::auth::UserInfo;
use crate::error::ApiError;
use crate::registry::store::Store;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::BTreeSet;

pub struct NodeRestriction;

/// The node a user is, when it is a node.
pub fn node_name(user: &UserInfo) -> Option<&str> {
    crate::auth::node_identity(&user.name, &user.groups)
}

/// Labels in the kubernetes.io and k8s.io namespaces a kubelet may set on its Node.
fn kubelet_label(key: &str) -> bool {
    const ALLOWED: &[&str] = &[
        "kubernetes.io/hostname",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
    ];
    let ns = key.split_once('/').map(|(p, _)| p).unwrap_or("");
    ALLOWED.contains(&key)
        || ns == "kubelet.kubernetes.io"
        || ns.ends_with(".kubelet.kubernetes.io")
        || ns == "node.kubernetes.io"
        || ns.ends_with(".node.kubernetes.io")
}

/// New or changed labels a node may not set on itself.
fn forbidden_labels(new: &Value, old: Option<&Value>) -> BTreeSet<String> {
    let labels = |o: Option<&Value>| {
        o.and_then(|o| o["metadata"]["labels"].as_object().cloned())
            .unwrap_or_default()
    };
    let (new, old) = (labels(Some(new)), labels(old));
    let mut out = BTreeSet::new();
    for (k, v) in &new {
        if old.get(k) == Some(v) {
            continue;
        }
        let ns = k.split_once('/').map(|(p, _)| p).unwrap_or("");
        let restricted = ns == "node-restriction.kubernetes.io"
            || ns.ends_with(".node-restriction.kubernetes.io");
        let system = ["kubernetes.io", "k8s.io"]
            .iter()
            .any(|d| ns == *d || ns.ends_with(&format!(".{d}")));
        if restricted || (system && !kubelet_label(k)) {
            out.insert(k.clone());
        }
    }
    out
}

fn bound_to(pod: &Value) -> &str {
    pod["spec"]["nodeName"].as_str().unwrap_or("")
}

impl NodeRestriction {
    fn pods(
        &self,
        a: &Attributes<'_>,
        node: &str,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let deny = |why: String| Err(a.forbidden(&why));
        match (a.subresource, a.operation) {
            ("", Operation::Create) => {
                if obj["metadata"]["annotations"][MIRROR_ANNOTATION].is_null() {
                    return deny(format!(
                        "pod does not have \"{MIRROR_ANNOTATION}\" annotation, node \"{node}\" can only create mirror pods"
                    ));
                }
                if bound_to(obj) != node {
                    return deny(format!(
                        "node \"{node}\" can only create pods with spec.nodeName set to itself"
                    ));
                }
                let owners = obj["metadata"]["ownerReferences"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                if owners
                    .iter()
                    .any(|o| o["kind"] != "Node" || o["name"] != node)
                {
                    return deny(format!(
                        "node \"{node}\" can only create pods with an owner reference set to itself"
                    ));
                }
                Ok(())
            }
            ("", Operation::Delete) | ("status", _) | ("eviction", _) => {
                // The status and eviction writes carry the stored pod as `old`
                // (a delete, as `obj`).
                let pod = old.unwrap_or(obj);
                if bound_to(pod) != node {
                    let what = match a.subresource {
                        "status" => "update pod status",
                        "eviction" => "evict pods",
                        _ => "delete pods",
                    };
                    return deny(format!(
                        "node \"{node}\" can only {what} with spec.nodeName set to itself"
                    ));
                }
                Ok(())
            }
            ("", op) => deny(format!(
                "unexpected operation \"{}\", node \"{node}\" can only create and delete mirror pods",
                capitalized(op.verb())
            )),
            (sub, _) => deny(format!("unexpected subresource \"{sub}\", node \"{node}\"")),
        }
    }

    fn nodes(
        &self,
        a: &Attributes<'_>,
        node: &str,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if a.name != node {
            return Err(a.forbidden(&format!(
                "node \"{node}\" is not allowed to modify node \"{}\"",
                a.name
            )));
        }
        if a.operation == Operation::Delete {
            return Ok(());
        }
        if let Some(old) = old
            && a.main()
            && obj["spec"]["taints"] != old["spec"]["taints"]
        {
            return Err(a.forbidden(&format!("node \"{node}\" is not allowed to modify taints")));
        }
        let bad = forbidden_labels(obj, old);
        if !bad.is_empty() {
            let list: Vec<_> = bad.into_iter().collect();
            return Err(a.forbidden(&format!(
                "node \"{node}\" is not allowed to modify labels: {}",
                list.join(", ")
            )));
        }
        Ok(())
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[async_trait]
impl Plugin for NodeRestriction {
    fn name(&self) -> &'static str {
        "NodeRestriction"
    }

    async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        let Some(node) = attrs.user.and_then(node_name) else {
            return Ok(());
        };
        if attrs.is("", "pods") {
            self.pods(attrs, node, obj, old)
        } else if attrs.is("", "nodes") {
            self.nodes(attrs, node, obj, old)
        } else if attrs.is("coordination.k8s.io", "leases")
            && attrs.namespace == "kube-node-lease"
            && attrs.name != node
        {
            Err(attrs
                .forbidden("can only access node lease with the same name as the requesting node"))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nodes_are_known_by_name_and_group() {
        let u = |name: &str, groups: &[&str]| UserInfo {
            name: name.into(),
            uid: String::new(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        assert_eq!(
            node_name(&u("system:node:w1", &["system:nodes"])),
            Some("w1")
        );
        assert_eq!(node_name(&u("system:node:w1", &["developers"])), None);
        assert_eq!(node_name(&u("alice", &["system:nodes"])), None);
    }

    #[test]
    fn only_kubelet_labels_may_be_set() {
        let node = |labels: Value| json!({"metadata": {"labels": labels}});
        let old = node(json!({"node-role.kubernetes.io/worker": ""}));
        let new = node(json!({
            "kubernetes.io/hostname": "w1",
            "node.kubernetes.io/exclude-from-external-load-balancers": "",
            "node-role.kubernetes.io/worker": "",
            "node-role.kubernetes.io/control-plane": "",
            "node-restriction.kubernetes.io/pool": "a",
            "example.com/free": "x",
        }));
        let bad: Vec<_> = forbidden_labels(&new, Some(&old)).into_iter().collect();
        assert_eq!(
            bad,
            [
                "node-restriction.kubernetes.io/pool",
                "node-role.kubernetes.io/control-plane"
            ]
        );
    }
}
