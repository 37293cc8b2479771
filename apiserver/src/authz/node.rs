//! The Node authorizer (`--authorization-mode=Node`): a kubelet's identity
//! (`system:node:NAME` in `system:nodes`) reads a secret, configmap,
//! claim, volume or service account token only when a pod bound to that
//! node uses it, and its own Lease only. The graph of which node's pods
//! use what is kept from a watch of pods (and claims, for volumes). Other
//! requests of nodes are judged by the static node rules (upstream's
//! `NodeRules`, the rules of the `system:node` role).

use super::rbac::rule_allows;
use super::{Attributes, Decision};
use crate::auth::node_identity;
use crate::storage::Storage;
use crate::storage::follow::{Followed, follow};
use crate::storage::view::View;
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Secret,
    ConfigMap,
    Claim,
    ServiceAccount,
}

/// What one pod bound to a node uses: (kind, "namespace/name").
#[derive(Debug, Default)]
struct PodEdges {
    node: String,
    uses: Vec<(Kind, String)>,
}

#[derive(Default)]
struct Graph {
    pods: HashMap<String, PodEdges>,
    /// node -> what its pods use, with how many pods use it.
    nodes: HashMap<String, HashMap<(Kind, String), usize>>,
}

impl Graph {
    fn remove(&mut self, pod: &str) {
        let Some(old) = self.pods.remove(pod) else {
            return;
        };
        if let Some(uses) = self.nodes.get_mut(&old.node) {
            for u in old.uses {
                if let Some(n) = uses.get_mut(&u) {
                    *n -= 1;
                    if *n == 0 {
                        uses.remove(&u);
                    }
                }
            }
            if uses.is_empty() {
                self.nodes.remove(&old.node);
            }
        }
    }

    fn put(&mut self, pod: String, edges: PodEdges) {
        self.remove(&pod);
        if edges.node.is_empty() {
            return;
        }
        let uses = self.nodes.entry(edges.node.clone()).or_default();
        for u in &edges.uses {
            *uses.entry(u.clone()).or_default() += 1;
        }
        self.pods.insert(pod, edges);
    }
}

/// What a pod uses that its node must be able to read.
fn edges(pod: &Value) -> PodEdges {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
    let spec = &pod["spec"];
    let mut uses = Vec::new();
    let mut add = |kind, name: &Value| {
        if let Some(n) = name.as_str().filter(|n| !n.is_empty()) {
            let u = (kind, format!("{ns}/{n}"));
            if !uses.contains(&u) {
                uses.push(u);
            }
        }
    };
    add(
        Kind::ServiceAccount,
        if spec["serviceAccountName"].is_string() {
            &spec["serviceAccountName"]
        } else {
            &Value::Null
        },
    );
    for s in spec["imagePullSecrets"].as_array().into_iter().flatten() {
        add(Kind::Secret, &s["name"]);
    }
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or("");
    for v in spec["volumes"].as_array().into_iter().flatten() {
        add(Kind::Secret, &v["secret"]["secretName"]);
        add(Kind::ConfigMap, &v["configMap"]["name"]);
        add(Kind::Claim, &v["persistentVolumeClaim"]["claimName"]);
        for ref_ in [
            "csi",
            "flexVolume",
            "cephfs",
            "rbd",
            "iscsi",
            "azureFile",
            "scaleIO",
            "storageos",
        ] {
            add(Kind::Secret, &v[ref_]["secretRef"]["name"]);
            add(Kind::Secret, &v[ref_]["nodePublishSecretRef"]["name"]);
        }
        if !v["ephemeral"].is_null() {
            // A generic ephemeral volume's claim is named after the pod and volume.
            let claim = format!("{pod_name}-{}", v["name"].as_str().unwrap_or(""));
            add(Kind::Claim, &Value::String(claim));
        }
        for s in v["projected"]["sources"].as_array().into_iter().flatten() {
            add(Kind::Secret, &s["secret"]["name"]);
            add(Kind::ConfigMap, &s["configMap"]["name"]);
        }
    }
    for kind in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec[kind].as_array().into_iter().flatten() {
            for e in c["env"].as_array().into_iter().flatten() {
                add(Kind::Secret, &e["valueFrom"]["secretKeyRef"]["name"]);
                add(Kind::ConfigMap, &e["valueFrom"]["configMapKeyRef"]["name"]);
            }
            for e in c["envFrom"].as_array().into_iter().flatten() {
                add(Kind::Secret, &e["secretRef"]["name"]);
                add(Kind::ConfigMap, &e["configMapRef"]["name"]);
            }
        }
    }
    PodEdges {
        node: spec["nodeName"].as_str().unwrap_or("").to_string(),
        uses,
    }
}

fn pod_key(key: &str) -> String {
    let mut parts = key.rsplitn(3, '/');
    let name = parts.next().unwrap_or("");
    let ns = parts.next().unwrap_or("");
    format!("{ns}/{name}")
}

pub struct NodeAuthorizer {
    graph: RwLock<Graph>,
    claims: Arc<View>,
    rules: Vec<PolicyRule>,
}

fn no_relationship(node: &str) -> Decision {
    Decision::NoOpinion(format!(
        "no relationship found between node '{node}' and this object"
    ))
}

impl NodeAuthorizer {
    /// Starts following pods and claims under `root`.
    pub fn spawn(storage: Arc<dyn Storage>, root: &str, rules: Vec<PolicyRule>) -> Arc<Self> {
        let authz = Arc::new(NodeAuthorizer {
            graph: RwLock::default(),
            claims: View::spawn(storage.clone(), format!("{root}/persistentvolumeclaims/")),
            rules,
        });
        let feed = authz.clone();
        let prefix = format!("{root}/pods/");
        tokio::spawn(async move {
            follow(storage, prefix, |change| feed.apply(change)).await;
        });
        authz
    }

    fn apply(&self, change: Followed<'_>) {
        let decode = |v: &[u8]| serde_json::from_slice::<Value>(v).unwrap_or_default();
        let mut g = self.graph.write().expect("never poisoned");
        match change {
            Followed::Listed(items) => {
                *g = Graph::default();
                for kv in items {
                    g.put(pod_key(&kv.key), edges(&decode(&kv.value)));
                }
            }
            Followed::Put(kv) => g.put(pod_key(&kv.key), edges(&decode(&kv.value))),
            Followed::Deleted(prev) => g.remove(&pod_key(&prev.key)),
        }
    }

    fn uses(&self, node: &str, kind: Kind, ns: &str, name: &str) -> bool {
        let g = self.graph.read().expect("never poisoned");
        g.nodes
            .get(node)
            .is_some_and(|u| u.contains_key(&(kind, format!("{ns}/{name}"))))
    }

    /// Whether a claim the node's pods use is bound to volume `pv`.
    fn uses_volume(&self, node: &str, pv: &str) -> bool {
        let claims: Vec<String> = {
            let g = self.graph.read().expect("never poisoned");
            g.nodes
                .get(node)
                .into_iter()
                .flatten()
                .filter(|((k, _), _)| *k == Kind::Claim)
                .map(|((_, c), _)| c.clone())
                .collect()
        };
        claims
            .iter()
            .filter_map(|c| self.claims.get(c))
            .any(|c| c["spec"]["volumeName"] == pv)
    }

    fn read(&self, node: &str, kind: Kind, a: &Attributes, verbs: &[&str]) -> Decision {
        if !verbs.contains(&a.verb.as_str()) {
            return Decision::NoOpinion(format!(
                "can only {} individual resources of this type",
                verbs.join("/")
            ));
        }
        if a.name.is_empty() {
            return Decision::NoOpinion("can only get individual resources of this type".into());
        }
        if !a.subresource.is_empty() {
            return Decision::NoOpinion(format!("cannot get subresource {}", a.subresource));
        }
        if self.uses(node, kind, &a.namespace, &a.name) {
            Decision::Allow
        } else {
            no_relationship(node)
        }
    }

    pub fn authorize(&self, a: &Attributes) -> Decision {
        let Some(node) = node_identity(&a.user, &a.groups) else {
            return Decision::NoOpinion(String::new());
        };
        if a.resource_request {
            match (a.api_group.as_str(), a.resource.as_str()) {
                ("", "secrets") => {
                    return self.read(node, Kind::Secret, a, &["get", "list", "watch"]);
                }
                ("", "configmaps") => {
                    return self.read(node, Kind::ConfigMap, a, &["get", "list", "watch"]);
                }
                ("", "persistentvolumeclaims") if a.subresource.is_empty() => {
                    return self.read(node, Kind::Claim, a, &["get"]);
                }
                ("", "persistentvolumes") => {
                    if a.verb != "get" || a.name.is_empty() {
                        return Decision::NoOpinion(
                            "can only get individual resources of this type".into(),
                        );
                    }
                    return if self.uses_volume(node, &a.name) {
                        Decision::Allow
                    } else {
                        no_relationship(node)
                    };
                }
                ("", "serviceaccounts") => {
                    if a.verb != "create" || a.name.is_empty() {
                        return Decision::NoOpinion(
                            "can only create tokens for individual service accounts".into(),
                        );
                    }
                    if a.subresource != "token" {
                        return Decision::NoOpinion(
                            "can only create token subresource of serviceaccount".into(),
                        );
                    }
                    return if self.uses(node, Kind::ServiceAccount, &a.namespace, &a.name) {
                        Decision::Allow
                    } else {
                        no_relationship(node)
                    };
                }
                ("coordination.k8s.io", "leases") => {
                    if !matches!(
                        a.verb.as_str(),
                        "get" | "create" | "update" | "patch" | "delete"
                    ) {
                        return Decision::NoOpinion(
                            "can only get, create, update, patch, or delete a node lease".into(),
                        );
                    }
                    if a.namespace != "kube-node-lease" {
                        return Decision::NoOpinion(
                            "can only access leases in the kube-node-lease namespace".into(),
                        );
                    }
                    if a.verb != "create" && a.name != node {
                        return Decision::NoOpinion(
                            "can only access node lease with the same name as the requesting node"
                                .into(),
                        );
                    }
                    return Decision::Allow;
                }
                _ => {}
            }
        }
        if self.rules.iter().any(|r| rule_allows(a, r)) {
            Decision::Allow
        } else {
            Decision::NoOpinion(String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;
    use serde_json::json;

    fn attrs(user: &str, verb: &str, ns: &str, resource: &str, name: &str) -> Attributes {
        Attributes {
            user: user.into(),
            groups: vec!["system:nodes".into(), "system:authenticated".into()],
            verb: verb.into(),
            resource_request: true,
            namespace: ns.into(),
            resource: resource.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn pods_reference_what_their_node_may_read() {
        let pod = json!({
            "metadata": {"namespace": "ns", "name": "p"},
            "spec": {
                "nodeName": "w1",
                "serviceAccountName": "sa",
                "volumes": [
                    {"name": "s", "secret": {"secretName": "vol-secret"}},
                    {"name": "p", "projected": {"sources": [{"configMap": {"name": "kube-root-ca.crt"}}]}},
                    {"name": "c", "persistentVolumeClaim": {"claimName": "data"}},
                ],
                "containers": [{"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}}]}],
            },
        });
        let e = edges(&pod);
        assert_eq!(e.node, "w1");
        for want in [
            (Kind::ServiceAccount, "ns/sa"),
            (Kind::Secret, "ns/vol-secret"),
            (Kind::Secret, "ns/env-secret"),
            (Kind::ConfigMap, "ns/kube-root-ca.crt"),
            (Kind::Claim, "ns/data"),
        ] {
            assert!(e.uses.contains(&(want.0, want.1.to_string())), "{want:?}");
        }
    }

    #[tokio::test]
    async fn a_node_reads_only_what_its_pods_use() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let authz = NodeAuthorizer::spawn(storage, "/r", Vec::new());
        let pod = |node: &str, secret: &str| {
            json!({"metadata": {"namespace": "ns", "name": "p"}, "spec": {"nodeName": node,
                "volumes": [{"name": "s", "secret": {"secretName": secret}}]}})
        };
        let kv = |v: &Value| crate::storage::KeyValue {
            key: "/r/pods/ns/p".into(),
            value: serde_json::to_vec(v).unwrap().into(),
            mod_revision: 1,
            stale: false,
        };
        authz.apply(Followed::Listed(&[kv(&pod("w1", "mine"))]));
        let get =
            |user: &str, name: &str| authz.authorize(&attrs(user, "get", "ns", "secrets", name));
        assert_eq!(get("system:node:w1", "mine"), Decision::Allow);
        assert_eq!(get("system:node:w2", "mine"), no_relationship("w2"));
        assert_eq!(get("system:node:w1", "other"), no_relationship("w1"));
        // List without a name is not for nodes.
        assert!(matches!(
            authz.authorize(&attrs("system:node:w1", "list", "ns", "secrets", "")),
            Decision::NoOpinion(_)
        ));
        // The pod moves: the old node loses it.
        authz.apply(Followed::Put(&kv(&pod("w2", "mine"))));
        assert_eq!(get("system:node:w2", "mine"), Decision::Allow);
        assert_eq!(get("system:node:w1", "mine"), no_relationship("w1"));
        authz.apply(Followed::Deleted(&kv(&pod("w2", "mine"))));
        assert_eq!(get("system:node:w2", "mine"), no_relationship("w2"));
        // Only its own lease.
        let lease = |name: &str| {
            let mut a = attrs(
                "system:node:w1",
                "update",
                "kube-node-lease",
                "leases",
                name,
            );
            a.api_group = "coordination.k8s.io".into();
            authz.authorize(&a)
        };
        assert_eq!(lease("w1"), Decision::Allow);
        assert!(matches!(lease("w2"), Decision::NoOpinion(_)));
        // Not a node: no opinion.
        let mut alice = attrs("alice", "get", "ns", "secrets", "mine");
        alice.groups = vec!["system:authenticated".into()];
        assert_eq!(authz.authorize(&alice), Decision::NoOpinion(String::new()));
    }
}
