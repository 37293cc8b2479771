//! API discovery: `/api`, `/apis`, per group and version, and the aggregated
//! v2 documents (apidiscovery.k8s.io/v2) client-go asks for first. The
//! documents are computed from the served resources, again whenever a
//! CustomResourceDefinition adds or removes some.

use crate::registry::{Registry, ResourceInfo, Subresource};
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Resources that are not stored: the server answers a create with a
/// computed object (group, version, resource, kind).
pub const REVIEWS: [(&str, &str, &str, &str); 5] = [
    (
        "authentication.k8s.io",
        "v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
    ),
    (
        "authorization.k8s.io",
        "v1",
        "subjectaccessreviews",
        "SubjectAccessReview",
    ),
    (
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
    ),
    (
        "authorization.k8s.io",
        "v1",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
    ),
    (
        "authorization.k8s.io",
        "v1",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
    ),
];

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn sub_verbs(s: Subresource) -> &'static [&'static str] {
    match s {
        Subresource::Status | Subresource::Scale => &["get", "patch", "update"],
        Subresource::Binding | Subresource::Eviction => &["create"],
        Subresource::Finalize => &["update"],
        Subresource::Log => &["get"],
        Subresource::Exec | Subresource::Attach | Subresource::PortForward => &["create", "get"],
        Subresource::Proxy => &["create", "delete", "get", "patch", "update"],
    }
}

/// (group, version, kind) a subresource answers with.
fn sub_kind(r: &ResourceInfo, s: Subresource) -> (&'static str, &'static str, &'static str) {
    match s {
        Subresource::Status | Subresource::Finalize => (r.group, r.version, r.kind),
        Subresource::Scale => ("autoscaling", "v1", "Scale"),
        Subresource::Binding => ("", "v1", "Binding"),
        Subresource::Eviction => ("policy", "v1", "Eviction"),
        Subresource::Log => ("", "v1", "Pod"),
        Subresource::Exec => ("", "v1", "PodExecOptions"),
        Subresource::Attach => ("", "v1", "PodAttachOptions"),
        Subresource::PortForward => ("", "v1", "PodPortForwardOptions"),
        Subresource::Proxy => ("", "v1", "NodeProxyOptions"),
    }
}

/// The current documents; readers take a snapshot.
pub struct Discovery {
    docs: RwLock<Arc<Docs>>,
}

pub struct Docs {
    pub api: Bytes,
    pub apis: Bytes,
    pub api_aggregated: Bytes,
    pub apis_aggregated: Bytes,
    /// `/apis/<group>` documents.
    pub groups: HashMap<String, Bytes>,
    /// `api/v1` or `apis/<group>/<version>` resource lists.
    pub resource_lists: HashMap<String, Bytes>,
}

fn bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).expect("JSON values serialize"))
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

fn resource_list(served: &[&ResourceInfo], group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in served
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut entry = json!({
            "name": r.resource,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        resources.push(entry);
        for &s in r.subresources {
            let (g, v, k) = sub_kind(r, s);
            let mut sub = json!({
                "name": format!("{}/{}", r.resource, s.name()),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": k,
                "verbs": sub_verbs(s),
            });
            if g != r.group || v != r.version {
                sub["group"] = json!(g);
                sub["version"] = json!(v);
            }
            resources.push(sub);
        }
    }
    for (_, _, resource, kind) in REVIEWS.iter().filter(|r| r.0 == group && r.1 == version) {
        resources.push(json!({
            "name": resource, "singularName": kind.to_lowercase(), "namespaced": false, "kind": kind, "verbs": ["create"],
        }));
    }
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(group, version),
        "resources": resources,
    })
}

fn aggregated_version(served: &[&ResourceInfo], group: &str, version: &str) -> Value {
    let mut resources: Vec<Value> = served
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| {
            let mut e = json!({
                "resource": r.resource,
                "responseKind": { "group": r.group, "version": r.version, "kind": r.kind },
                "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": r.singular,
                "verbs": VERBS,
            });
            if !r.short_names.is_empty() {
                e["shortNames"] = json!(r.short_names);
            }
            if !r.categories.is_empty() {
                e["categories"] = json!(r.categories);
            }
            if !r.subresources.is_empty() {
                e["subresources"] = r
                    .subresources
                    .iter()
                    .map(|&s| {
                        let (g, v, k) = sub_kind(r, s);
                        json!({
                            "subresource": s.name(),
                            "responseKind": { "group": g, "version": v, "kind": k },
                            "verbs": sub_verbs(s),
                        })
                    })
                    .collect();
            }
            e
        })
        .collect();
    for (g, v, resource, kind) in REVIEWS.iter().filter(|r| r.0 == group && r.1 == version) {
        resources.push(json!({
            "resource": resource,
            "responseKind": { "group": g, "version": v, "kind": kind },
            "scope": "Cluster",
            "singularResource": kind.to_lowercase(),
            "verbs": ["create"],
        }));
    }
    json!({ "version": version, "resources": resources, "freshness": "Current" })
}

impl Discovery {
    pub fn new(registry: &Registry) -> Self {
        let served: Vec<&ResourceInfo> = registry.resources.iter().collect();
        Discovery {
            docs: RwLock::new(Arc::new(Docs::build(&served))),
        }
    }

    pub fn docs(&self) -> Arc<Docs> {
        self.docs.read().expect("discovery lock").clone()
    }

    /// Recomputes the documents for `served` (built-in resources first).
    pub fn rebuild(&self, served: &[&ResourceInfo]) {
        *self.docs.write().expect("discovery lock") = Arc::new(Docs::build(served));
    }
}

impl Docs {
    fn build(served: &[&ResourceInfo]) -> Self {
        let mut gvs: Vec<(&str, &str)> = Vec::new();
        for r in served {
            if !gvs.contains(&(r.group, r.version)) {
                gvs.push((r.group, r.version));
            }
        }
        for (g, v, _, _) in REVIEWS {
            if !gvs.contains(&(g, v)) {
                gvs.push((g, v));
            }
        }
        let mut resource_lists = HashMap::new();
        for &(g, v) in &gvs {
            let path = if g.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{g}/{v}")
            };
            resource_lists.insert(path, bytes(&resource_list(served, g, v)));
        }
        // Groups in order of first appearance, each with its versions.
        let mut groups_ordered: Vec<(&str, Vec<&str>)> = Vec::new();
        for &(g, v) in gvs.iter().filter(|(g, _)| !g.is_empty()) {
            match groups_ordered.iter_mut().find(|(name, _)| *name == g) {
                Some((_, vs)) => vs.push(v),
                None => groups_ordered.push((g, vec![v])),
            }
        }
        let api_group = |g: &str, vs: &[&str]| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({ "groupVersion": group_version(g, v), "version": v }))
                .collect();
            json!({ "name": g, "versions": versions, "preferredVersion": versions[0] })
        };
        let mut groups = HashMap::new();
        for (g, vs) in &groups_ordered {
            let mut doc = api_group(g, vs);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            groups.insert(g.to_string(), bytes(&doc));
        }
        let apis = json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": groups_ordered.iter().map(|(g, vs)| api_group(g, vs)).collect::<Vec<_>>(),
        });
        let api = json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [],
        });
        let list = |items: Vec<Value>| {
            json!({
                "kind": "APIGroupDiscoveryList",
                "apiVersion": "apidiscovery.k8s.io/v2",
                "metadata": {},
                "items": items,
            })
        };
        let api_aggregated = list(vec![json!({
            "metadata": { "name": "" },
            "versions": [aggregated_version(served, "", "v1")],
        })]);
        let apis_aggregated = list(
            groups_ordered
                .iter()
                .map(|(g, vs)| {
                    json!({
                        "metadata": { "name": g },
                        "versions": vs.iter().map(|v| aggregated_version(served, g, v)).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        );
        Docs {
            api: bytes(&api),
            apis: bytes(&apis),
            api_aggregated: bytes(&api_aggregated),
            apis_aggregated: bytes(&apis_aggregated),
            groups,
            resource_lists,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_list_has_short_names_and_subresources() {
        let d = Discovery::new(&Registry::new()).docs();
        let core: Value = serde_json::from_slice(&d.resource_lists["api/v1"]).unwrap();
        let pods = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods")
            .unwrap();
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert!(
            core["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == "pods/binding")
        );
        let apps: Value = serde_json::from_slice(&d.resource_lists["apis/apps/v1"]).unwrap();
        let scale = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(scale["group"], "autoscaling");
    }

    #[test]
    fn aggregated_documents_list_every_group() {
        let d = Discovery::new(&Registry::new()).docs();
        let apis: Value = serde_json::from_slice(&d.apis_aggregated).unwrap();
        let names: Vec<&str> = apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"apps") && names.contains(&"rbac.authorization.k8s.io"));
        let api: Value = serde_json::from_slice(&d.api_aggregated).unwrap();
        let ns = &api["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "namespaces")
            .unwrap()
            .clone();
        assert_eq!(ns["scope"], "Cluster");
    }
}
