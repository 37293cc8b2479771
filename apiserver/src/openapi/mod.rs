//! `/openapi/v2` and `/openapi/v3` documents, generated once at startup from
//! the k8s-openapi JSON schemas of the served resources.
//!
//! kubectl reads the v3 index, then one document per group-version, for
//! `explain`, to decide that validation happens server-side (the PATCH
//! operation advertises `fieldValidation`) and to compute client-side apply
//! patches; v2 is its fallback. Both follow upstream's naming
//! (`io.k8s.api.core.v1.Pod`) and extensions (`x-kubernetes-group-version-kind`,
//! `x-kubernetes-action`).

mod patch_meta;
mod paths;
mod schemas;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hasher};

use bytes::Bytes;
use serde_json::{Map, Value, json};

/// One served resource, as the OpenAPI documents describe it.
pub struct OpenApiResource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    /// "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch".
    pub verbs: Vec<&'static str>,
    /// "status", "scale", "binding", "eviction", "ephemeralcontainers", "resize",
    /// "finalize", "token", "log", "exec", "attach", "portforward", "proxy".
    /// Other names are not documented.
    pub subresources: Vec<&'static str>,
    /// The kind's schema, e.g. `<Pod as schemars::JsonSchema>::json_schema`.
    pub schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
    /// A custom resource's schema (its CRD version's `openAPIV3Schema`),
    /// used instead of `schema`.
    pub custom: Option<Value>,
}

impl OpenApiResource {
    /// The definition's name: upstream's for built-in kinds, the reversed
    /// group for custom ones (`com.example.v1.Widget`).
    pub(crate) fn definition(&self) -> String {
        self.named(self.kind)
    }

    pub(crate) fn list_definition(&self) -> String {
        self.named(&format!("{}List", self.kind))
    }

    fn named(&self, kind: &str) -> String {
        match &self.custom {
            None => schemas::definition_name(self.group, self.version, kind),
            Some(_) => {
                let reversed: Vec<&str> = self.group.rsplit('.').collect();
                format!("{}.{}.{kind}", reversed.join("."), self.version)
            }
        }
    }
}

/// What the documents say of each of `served`.
pub fn resources(served: &[&crate::registry::ResourceInfo]) -> Vec<OpenApiResource> {
    served
        .iter()
        .map(|r| OpenApiResource {
            group: r.group,
            version: r.version,
            kind: r.kind,
            plural: r.resource,
            namespaced: r.namespaced,
            verbs: vec![
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            subresources: r.subresources.iter().map(|s| s.name()).collect(),
            schema: r.schema,
            custom: r.custom.as_ref().map(|c| c.openapi.clone()),
        })
        .collect()
}

/// The serialized documents, with a content hash for each.
pub struct OpenApi {
    v2: Bytes,
    v2_hash: String,
    v3_index: Bytes,
    v3: BTreeMap<String, (Bytes, String)>,
}

const SECURITY_SCHEME: &str = "BearerToken";

impl OpenApi {
    pub fn build(resources: &[OpenApiResource]) -> OpenApi {
        let support = paths::support_kinds(resources);
        let definitions = schemas::generate(resources, &support);
        let paths = paths::build(resources);

        let v2 = serialize(&v2_document(&definitions, &paths));
        let v2_hash = content_hash(&v2);

        let dependencies: BTreeMap<String, BTreeSet<String>> = definitions
            .iter()
            .map(|(name, schema)| {
                let mut refs = BTreeSet::new();
                schemas::collect_refs(schema, &mut refs);
                (name.clone(), refs)
            })
            .collect();
        let mut documents: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
        for (url, item) in &paths {
            documents
                .entry(item.document.as_str())
                .or_default()
                .insert(url.clone(), paths::render_v3(item));
        }
        let mut v3_cache: BTreeMap<&str, Value> = BTreeMap::new();
        let mut v3 = BTreeMap::new();
        for (document, doc_paths) in documents {
            let doc_paths = Value::Object(doc_paths);
            // Watch events and errors are part of every group-version's API
            // even without the deprecated /watch/ paths that reference them.
            let mut roots = BTreeSet::from([
                schemas::STATUS.to_owned(),
                schemas::DELETE_OPTIONS.to_owned(),
                schemas::WATCH_EVENT.to_owned(),
            ]);
            schemas::collect_refs(&doc_paths, &mut roots);
            let mut components = Map::new();
            for name in schemas::closure(roots, &dependencies) {
                let Some((key, schema)) = definitions.get_key_value(&name) else {
                    continue;
                };
                let converted = v3_cache
                    .entry(key.as_str())
                    .or_insert_with(|| schemas::to_v3(key, schema));
                components.insert(name, converted.clone());
            }
            let doc = json!({
                "components": {
                    "schemas": components,
                    "securitySchemes": {SECURITY_SCHEME: security_scheme()},
                },
                "info": {"title": "Kubernetes", "version": "unversioned"},
                "openapi": "3.0.0",
                "paths": doc_paths,
            });
            let bytes = serialize(&doc);
            let hash = content_hash(&bytes);
            v3.insert(document.to_owned(), (bytes, hash));
        }

        let index: Map<String, Value> = v3
            .iter()
            .map(|(path, (_, hash))| {
                (
                    path.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
                )
            })
            .collect();
        let v3_index = serialize(&json!({"paths": index}));

        OpenApi {
            v2,
            v2_hash,
            v3_index,
            v3,
        }
    }

    /// `/openapi/v2` as JSON.
    pub fn v2(&self) -> &Bytes {
        &self.v2
    }

    /// Content hash of the v2 document (for `ETag`).
    pub fn v2_hash(&self) -> &str {
        &self.v2_hash
    }

    /// `/openapi/v3`: the group-version documents and their hashed URLs.
    pub fn v3_index(&self) -> &Bytes {
        &self.v3_index
    }

    /// `/openapi/v3/<path>` for a path like "api/v1" or "apis/apps/v1".
    pub fn v3(&self, path: &str) -> Option<&Bytes> {
        self.v3.get(path).map(|(bytes, _)| bytes)
    }

    /// The `hash` query value the index advertises for `path` (for `ETag`;
    /// upstream answers a request with a stale hash by redirecting).
    pub fn v3_hash(&self, path: &str) -> Option<&str> {
        self.v3.get(path).map(|(_, hash)| hash.as_str())
    }
}

fn v2_document(
    definitions: &BTreeMap<String, Value>,
    paths: &BTreeMap<String, paths::PathItem>,
) -> Value {
    let paths: Map<String, Value> = paths
        .iter()
        .map(|(url, item)| (url.clone(), paths::render_v2(item)))
        .collect();
    let definitions: Map<String, Value> = definitions
        .iter()
        .map(|(name, schema)| (name.clone(), schema.clone()))
        .collect();
    json!({
        "definitions": definitions,
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "security": [{SECURITY_SCHEME: []}],
        "securityDefinitions": {SECURITY_SCHEME: security_scheme()},
        "swagger": "2.0",
    })
}

fn security_scheme() -> Value {
    json!({
        "description": "Bearer Token authentication",
        "in": "header",
        "name": "authorization",
        "type": "apiKey",
    })
}

fn serialize(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("a JSON value always serializes"))
}

/// 128-bit uppercase hex digest of the document (upstream uses SHA-512; any
/// stable digest works since clients only compare it).
fn content_hash(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(32);
    for seed in [0x6b38_7331_u64, 0x6f70_656e_6170_6933] {
        let mut hasher = DefaultHasher::new();
        hasher.write_u64(seed);
        hasher.write(bytes);
        let _ = write!(out, "{:016X}", hasher.finish());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::{apps, core};
    use schemars::JsonSchema;

    const ALL_VERBS: &[&str] = &[
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ];

    fn resources() -> Vec<OpenApiResource> {
        vec![
            OpenApiResource {
                group: "",
                version: "v1",
                kind: "Pod",
                plural: "pods",
                namespaced: true,
                verbs: ALL_VERBS.to_vec(),
                subresources: vec!["status", "binding", "eviction", "log", "exec", "proxy"],
                schema: core::v1::Pod::json_schema,
                custom: None,
            },
            OpenApiResource {
                group: "",
                version: "v1",
                kind: "Namespace",
                plural: "namespaces",
                namespaced: false,
                verbs: vec![
                    "create", "delete", "get", "list", "patch", "update", "watch",
                ],
                subresources: vec!["status", "finalize"],
                schema: core::v1::Namespace::json_schema,
                custom: None,
            },
            OpenApiResource {
                group: "",
                version: "v1",
                kind: "ServiceAccount",
                plural: "serviceaccounts",
                namespaced: true,
                verbs: ALL_VERBS.to_vec(),
                subresources: vec!["token"],
                schema: core::v1::ServiceAccount::json_schema,
                custom: None,
            },
            OpenApiResource {
                group: "apps",
                version: "v1",
                kind: "Deployment",
                plural: "deployments",
                namespaced: true,
                verbs: ALL_VERBS.to_vec(),
                subresources: vec!["status", "scale"],
                schema: apps::v1::Deployment::json_schema,
                custom: None,
            },
        ]
    }

    fn parse(bytes: &Bytes) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    fn gvk(group: &str, version: &str, kind: &str) -> Value {
        json!({"group": group, "kind": kind, "version": version})
    }

    #[test]
    fn definitions_carry_group_version_kind() {
        let api = OpenApi::build(&resources());
        let v2 = parse(api.v2());
        let core = parse(api.v3("api/v1").unwrap());
        let apps = parse(api.v3("apis/apps/v1").unwrap());
        let cases = [
            (
                &v2["definitions"],
                "io.k8s.api.core.v1.Pod",
                gvk("", "v1", "Pod"),
            ),
            (
                &core["components"]["schemas"],
                "io.k8s.api.core.v1.Pod",
                gvk("", "v1", "Pod"),
            ),
            (
                &core["components"]["schemas"],
                "io.k8s.api.core.v1.PodList",
                gvk("", "v1", "PodList"),
            ),
            (
                &core["components"]["schemas"],
                "io.k8s.api.core.v1.Binding",
                gvk("", "v1", "Binding"),
            ),
            (
                &core["components"]["schemas"],
                "io.k8s.api.policy.v1.Eviction",
                gvk("policy", "v1", "Eviction"),
            ),
            (
                &core["components"]["schemas"],
                schemas::STATUS,
                gvk("", "v1", "Status"),
            ),
            (
                &core["components"]["schemas"],
                schemas::DELETE_OPTIONS,
                gvk("", "v1", "DeleteOptions"),
            ),
            (
                &apps["components"]["schemas"],
                "io.k8s.api.apps.v1.Deployment",
                gvk("apps", "v1", "Deployment"),
            ),
            (
                &apps["components"]["schemas"],
                "io.k8s.api.autoscaling.v1.Scale",
                gvk("autoscaling", "v1", "Scale"),
            ),
            (
                &apps["components"]["schemas"],
                schemas::WATCH_EVENT,
                gvk("apps", "v1", "WatchEvent"),
            ),
            (
                &v2["definitions"],
                schemas::DELETE_OPTIONS,
                gvk("apps", "v1", "DeleteOptions"),
            ),
        ];
        for (schemas, name, want) in cases {
            let list = schemas[name]["x-kubernetes-group-version-kind"]
                .as_array()
                .unwrap_or_else(|| panic!("{name} has no group-version-kind"));
            assert!(list.contains(&want), "{name}: {list:?}");
        }
        // Each group-version document only holds what its paths reach.
        assert!(
            core["components"]["schemas"]
                .get("io.k8s.api.apps.v1.Deployment")
                .is_none()
        );
        assert!(
            apps["components"]["schemas"]
                .get("io.k8s.api.core.v1.Pod")
                .is_none()
        );
        assert!(
            apps["components"]["schemas"]
                .get("io.k8s.api.core.v1.PodSpec")
                .is_some()
        );
    }

    #[test]
    fn patch_operations_advertise_field_validation() {
        let api = OpenApi::build(&resources());
        let v2 = parse(api.v2());
        let core = parse(api.v3("api/v1").unwrap());
        let apps = parse(api.v3("apis/apps/v1").unwrap());
        let item = "/api/v1/namespaces/{namespace}/pods/{name}";
        let names = |op: &Value| -> Vec<String> {
            op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect()
        };
        for doc in [&v2, &core] {
            let patch = &doc["paths"][item]["patch"];
            assert_eq!(patch["x-kubernetes-action"], "patch");
            assert_eq!(
                patch["x-kubernetes-group-version-kind"],
                gvk("", "v1", "Pod")
            );
            let params = names(patch);
            for want in ["dryRun", "fieldManager", "fieldValidation", "force"] {
                assert!(params.contains(&want.to_owned()), "{params:?}");
            }
        }
        assert!(
            core["paths"][item]["patch"]["requestBody"]["content"]
                .get("application/strategic-merge-patch+json")
                .is_some()
        );
        assert_eq!(
            v2["paths"][item]["patch"]["consumes"],
            json!([
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
                "application/apply-patch+yaml"
            ])
        );
        // kubectl stops at the first PATCH of the kind it meets, in map
        // order: every PATCH operation must carry the parameter itself.
        for doc in [&v2, &core, &apps] {
            for (url, item) in doc["paths"].as_object().unwrap() {
                if let Some(patch) = item
                    .get("patch")
                    .filter(|p| p["x-kubernetes-action"] == "patch")
                {
                    assert!(
                        names(patch).contains(&"fieldValidation".to_owned()),
                        "{url}"
                    );
                }
            }
        }
    }

    #[test]
    fn operations_follow_upstream_naming() {
        let api = OpenApi::build(&resources());
        let core = parse(api.v3("api/v1").unwrap());
        let apps = parse(api.v3("apis/apps/v1").unwrap());
        let cases = [
            (
                &core,
                "/api/v1/namespaces/{namespace}/pods",
                "get",
                "listCoreV1NamespacedPod",
                "list",
            ),
            (
                &core,
                "/api/v1/namespaces/{namespace}/pods",
                "post",
                "createCoreV1NamespacedPod",
                "post",
            ),
            (
                &core,
                "/api/v1/namespaces/{namespace}/pods",
                "delete",
                "deleteCoreV1CollectionNamespacedPod",
                "deletecollection",
            ),
            (
                &core,
                "/api/v1/pods",
                "get",
                "listCoreV1PodForAllNamespaces",
                "list",
            ),
            (
                &core,
                "/api/v1/namespaces/{namespace}/pods/{name}",
                "put",
                "replaceCoreV1NamespacedPod",
                "put",
            ),
            (
                &core,
                "/api/v1/namespaces/{namespace}/pods/{name}/status",
                "patch",
                "patchCoreV1NamespacedPodStatus",
                "patch",
            ),
            (
                &core,
                "/api/v1/namespaces/{namespace}/pods/{name}/binding",
                "post",
                "createCoreV1NamespacedPodBinding",
                "post",
            ),
            (
                &core,
                "/api/v1/namespaces/{namespace}/pods/{name}/eviction",
                "post",
                "createCoreV1NamespacedPodEviction",
                "post",
            ),
            (
                &core,
                "/api/v1/namespaces/{namespace}/pods/{name}/log",
                "get",
                "readCoreV1NamespacedPodLog",
                "get",
            ),
            (
                &core,
                "/api/v1/namespaces/{namespace}/pods/{name}/exec",
                "post",
                "connectCoreV1PostNamespacedPodExec",
                "connect",
            ),
            (
                &core,
                "/api/v1/namespaces/{namespace}/pods/{name}/proxy/{path}",
                "head",
                "connectCoreV1HeadNamespacedPodProxyWithPath",
                "connect",
            ),
            (
                &core,
                "/api/v1/namespaces/{name}/finalize",
                "put",
                "replaceCoreV1NamespaceFinalize",
                "put",
            ),
            (
                &core,
                "/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
                "post",
                "createCoreV1NamespacedServiceAccountToken",
                "post",
            ),
            (
                &core,
                "/api/v1/namespaces/{name}",
                "delete",
                "deleteCoreV1Namespace",
                "delete",
            ),
            (
                &apps,
                "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
                "get",
                "readAppsV1NamespacedDeploymentScale",
                "get",
            ),
        ];
        for (doc, url, method, id, action) in cases {
            let op = &doc["paths"][url][method];
            assert_eq!(op["operationId"], id, "{url} {method}");
            assert_eq!(op["x-kubernetes-action"], action, "{url} {method}");
        }
        let scale = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
        assert_eq!(
            scale["put"]["x-kubernetes-group-version-kind"],
            gvk("autoscaling", "v1", "Scale")
        );
        assert_eq!(
            scale["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].clone())
                .collect::<Vec<_>>(),
            vec![json!("name"), json!("namespace"), json!("pretty")]
        );
    }

    #[test]
    fn every_ref_resolves() {
        let api = OpenApi::build(&resources());
        let v2 = parse(api.v2());
        let mut docs = vec![(v2.clone(), "#/definitions/", &v2["definitions"])];
        let v3: Vec<Value> = ["api/v1", "apis/apps/v1"]
            .iter()
            .map(|p| parse(api.v3(p).unwrap()))
            .collect();
        for doc in &v3 {
            docs.push((
                doc.clone(),
                "#/components/schemas/",
                &doc["components"]["schemas"],
            ));
        }
        for (doc, prefix, defined) in docs {
            let mut refs = Vec::new();
            all_refs(&doc, &mut refs);
            assert!(refs.len() > 100);
            for r in refs {
                let name = r
                    .strip_prefix(prefix)
                    .unwrap_or_else(|| panic!("{r} lacks {prefix}"));
                assert!(defined.get(name).is_some(), "{r} is not defined");
            }
        }
    }

    fn all_refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(s)) => out.push(s.clone()),
                        _ => all_refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| all_refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn v3_field_descriptions_survive_refs() {
        let api = OpenApi::build(&resources());
        let apps = parse(api.v3("apis/apps/v1").unwrap());
        let spec =
            &apps["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"];
        assert_eq!(
            spec["allOf"],
            json!([{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}])
        );
        assert!(
            spec["description"]
                .as_str()
                .unwrap()
                .starts_with("Specification of the desired behavior")
        );
        let v2 = parse(api.v2());
        let spec = &v2["definitions"]["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"];
        assert_eq!(
            spec["$ref"],
            "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
        );
        // Client-side apply reads the list merge keys from the same documents.
        let env =
            &apps["components"]["schemas"]["io.k8s.api.core.v1.Container"]["properties"]["env"];
        assert_eq!(env["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(env["x-kubernetes-patch-strategy"], "merge");
    }

    #[test]
    fn index_lists_documents_with_their_hash() {
        let api = OpenApi::build(&resources());
        let index = parse(api.v3_index());
        let paths = index["paths"].as_object().unwrap();
        assert_eq!(
            paths.keys().collect::<Vec<_>>(),
            vec!["api/v1", "apis/apps/v1"]
        );
        for (path, entry) in paths {
            let hash = content_hash(api.v3(path).unwrap());
            assert_eq!(api.v3_hash(path), Some(hash.as_str()));
            assert_eq!(
                entry["serverRelativeURL"],
                format!("/openapi/v3/{path}?hash={hash}")
            );
        }
        assert!(api.v3("apis/batch/v1").is_none());
        assert_eq!(api.v2_hash(), content_hash(api.v2()));
    }

    #[test]
    fn hash_depends_on_content() {
        let cases = [(&b""[..], &b"a"[..]), (b"{}", b"{ }"), (b"abc", b"abd")];
        for (a, b) in cases {
            assert_eq!(content_hash(a).len(), 32);
            assert_ne!(content_hash(a), content_hash(b));
            assert_eq!(content_hash(a), content_hash(a));
        }
    }
}
