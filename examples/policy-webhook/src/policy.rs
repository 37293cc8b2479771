//! The policy itself, on one AdmissionRequest: no I/O, so every rule is
//! unit-tested here.
//!
//! * Every container's image must come from an allowed registry (an image
//!   reference prefix such as `localhost/`); otherwise the Deployment is
//!   refused, naming the container and the image.
//! * Containers without resource requests get the default ones; where a
//!   limit is set and its request is not, the request is the limit (a
//!   request above its limit would be invalid).
//! * Labels missing from the Deployment get their default values.
//!
//! What is added is returned as a JSONPatch with a warning, which kubectl
//! prints.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Container;
use kube_core::admission::{AdmissionRequest, AdmissionResponse};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What the webhook enforces (from its flags).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Image reference prefixes allowed, e.g. `localhost/`.
    pub allowed_registries: Vec<String>,
    /// Default requests, by resource name (`cpu`, `memory`).
    pub default_requests: BTreeMap<String, String>,
    /// Labels a Deployment gets when it lacks them.
    pub default_labels: BTreeMap<String, String>,
}

/// The decision on one Deployment.
#[derive(Debug, PartialEq)]
pub enum Decision {
    Deny(String),
    /// Allowed, with the operations to apply (maybe none) and what they did.
    Allow {
        patch: Vec<PatchOperation>,
        warnings: Vec<String>,
    },
}

impl Policy {
    /// Answers an AdmissionReview's request.
    pub fn review(&self, request: &AdmissionRequest<Deployment>) -> AdmissionResponse {
        let response = AdmissionResponse::from(request);
        let Some(deployment) = &request.object else {
            // A DELETE, or a request without an object: nothing to enforce.
            return response;
        };
        match self.decide(deployment) {
            Decision::Deny(message) => {
                // Recorded in the audit log as `<webhook name>/denied`.
                let mut response = response.deny(&message);
                response.audit_annotations.insert("denied".into(), message);
                response
            }
            Decision::Allow { patch, warnings } => {
                let mut response = if patch.is_empty() {
                    response
                } else {
                    match response.with_patch(Patch(patch)) {
                        Ok(r) => r,
                        Err(e) => return AdmissionResponse::invalid(e),
                    }
                };
                if !warnings.is_empty() {
                    response.warnings = Some(warnings);
                }
                response
            }
        }
    }

    /// The decision on `deployment`.
    pub fn decide(&self, deployment: &Deployment) -> Decision {
        let pod = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref());
        let lists: [(&str, &[Container]); 2] = [
            (
                "initContainers",
                pod.and_then(|p| p.init_containers.as_deref())
                    .unwrap_or_default(),
            ),
            (
                "containers",
                pod.map(|p| &p.containers[..]).unwrap_or_default(),
            ),
        ];
        for (_, containers) in &lists {
            for c in *containers {
                let image = c.image.as_deref().unwrap_or("");
                if !self.image_allowed(image) {
                    return Decision::Deny(format!(
                        "image {image:?} of container {:?} is not from an allowed registry ({})",
                        c.name,
                        self.allowed_registries.join(", ")
                    ));
                }
            }
        }
        let mut patch = Vec::new();
        let mut warnings = Vec::new();
        let labels = deployment.metadata.labels.as_ref();
        let missing: BTreeMap<&String, &String> = self
            .default_labels
            .iter()
            .filter(|(k, _)| labels.is_none_or(|l| !l.contains_key(*k)))
            .collect();
        if !missing.is_empty() {
            if labels.is_none() {
                patch.push(add(&["metadata", "labels"], json!(missing)));
            } else {
                for (k, v) in &missing {
                    patch.push(add(&["metadata", "labels", k], json!(v)));
                }
            }
            let shown: Vec<String> = missing.iter().map(|(k, v)| format!("{k}={v}")).collect();
            warnings.push(format!("policy-webhook: labelled {}", shown.join(", ")));
        }
        let mut defaulted = Vec::new();
        for (field, containers) in lists {
            for (i, c) in containers.iter().enumerate() {
                let at = ["spec", "template", "spec", field, &i.to_string()].map(String::from);
                if self.default_container(c, &at, &mut patch) {
                    defaulted.push(c.name.clone());
                }
            }
        }
        if !defaulted.is_empty() {
            warnings.push(format!(
                "policy-webhook: default resource requests set on containers {}",
                defaulted.join(", ")
            ));
        }
        Decision::Allow { patch, warnings }
    }

    fn image_allowed(&self, image: &str) -> bool {
        self.allowed_registries
            .iter()
            .any(|prefix| image.starts_with(prefix.as_str()))
    }

    /// Adds to `patch` the requests container `c` (at `at`) lacks; true if
    /// it lacked any.
    fn default_container(
        &self,
        c: &Container,
        at: &[String],
        patch: &mut Vec<PatchOperation>,
    ) -> bool {
        let resources = c.resources.as_ref();
        let requests = resources.and_then(|r| r.requests.as_ref());
        let limits = resources.and_then(|r| r.limits.as_ref());
        let missing: BTreeMap<&String, Value> = self
            .default_requests
            .iter()
            .filter(|(name, _)| requests.is_none_or(|r| !r.contains_key(*name)))
            .map(|(name, value)| {
                let limit = limits.and_then(|l| l.get(name)).map(|q| q.0.as_str());
                (name, json!(limit.unwrap_or(value)))
            })
            .collect();
        if missing.is_empty() {
            return false;
        }
        let path = |tail: &[&str]| -> Vec<String> {
            at.iter()
                .cloned()
                .chain(tail.iter().map(|s| s.to_string()))
                .collect()
        };
        if resources.is_none() {
            patch.push(add(&path(&["resources"]), json!({ "requests": missing })));
        } else if requests.is_none() {
            patch.push(add(&path(&["resources", "requests"]), json!(missing)));
        } else {
            for (name, value) in missing {
                patch.push(add(&path(&["resources", "requests", name]), value));
            }
        }
        true
    }
}

/// An `add` of `value` at the path of `tokens` (escaped as JSON Pointer).
fn add<S: AsRef<str>>(tokens: &[S], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(tokens.iter().map(|t| t.as_ref())),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            allowed_registries: vec!["localhost/".into(), "registry.example.com/".into()],
            default_requests: [("cpu", "100m"), ("memory", "64Mi")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
            default_labels: [("team".to_string(), "unassigned".to_string())].into(),
        }
    }

    fn deployment(v: Value) -> Deployment {
        serde_json::from_value(v).unwrap()
    }

    /// The deployment after applying the decision's patch.
    fn patched(d: Value) -> (Value, Vec<String>) {
        match policy().decide(&deployment(d.clone())) {
            Decision::Allow { patch, warnings } => {
                let mut doc = d;
                json_patch::patch(&mut doc, &patch).unwrap();
                (doc, warnings)
            }
            deny => panic!("{deny:?}"),
        }
    }

    fn with_containers(containers: Value) -> Value {
        json!({
            "metadata": {"name": "web"},
            "spec": {"selector": {}, "template": {"spec": {"containers": containers}}}
        })
    }

    #[test]
    fn refuses_an_image_from_elsewhere() {
        let d = with_containers(json!([
            {"name": "ok", "image": "localhost/busybox:1.35"},
            {"name": "web", "image": "docker.io/library/nginx:1.27"}
        ]));
        assert_eq!(
            policy().decide(&deployment(d)),
            Decision::Deny(
                "image \"docker.io/library/nginx:1.27\" of container \"web\" is not from an \
                 allowed registry (localhost/, registry.example.com/)"
                    .into()
            )
        );
    }

    #[test]
    fn init_containers_are_checked_too() {
        let mut d = with_containers(json!([{"name": "ok", "image": "localhost/busybox:1.35"}]));
        d["spec"]["template"]["spec"]["initContainers"] =
            json!([{"name": "setup", "image": "quay.io/x"}]);
        assert!(
            matches!(policy().decide(&deployment(d)), Decision::Deny(m) if m.contains("\"setup\""))
        );
    }

    #[test]
    fn defaults_requests_and_labels() {
        let (d, warnings) = patched(with_containers(json!([
            {"name": "a", "image": "localhost/a"},
            {"name": "b", "image": "localhost/b", "resources": {"limits": {"cpu": "50m"}}},
            {"name": "c", "image": "localhost/c", "resources": {"requests": {"memory": "1Gi"}}},
            {"name": "d", "image": "localhost/d", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}
        ])));
        let c = &d["spec"]["template"]["spec"]["containers"];
        assert_eq!(
            c[0]["resources"],
            json!({"requests": {"cpu": "100m", "memory": "64Mi"}})
        );
        // The request follows the limit where there is one.
        assert_eq!(
            c[1]["resources"],
            json!({"limits": {"cpu": "50m"}, "requests": {"cpu": "50m", "memory": "64Mi"}})
        );
        assert_eq!(
            c[2]["resources"],
            json!({"requests": {"cpu": "100m", "memory": "1Gi"}})
        );
        assert_eq!(
            c[3]["resources"],
            json!({"requests": {"cpu": "1", "memory": "1Gi"}})
        );
        assert_eq!(d["metadata"]["labels"], json!({"team": "unassigned"}));
        assert_eq!(
            warnings,
            [
                "policy-webhook: labelled team=unassigned",
                "policy-webhook: default resource requests set on containers a, b, c"
            ]
        );
    }

    #[test]
    fn keeps_what_is_set_and_escapes_label_keys() {
        let mut p = policy();
        p.default_labels
            .insert("example.com/tier".into(), "web".into());
        let mut d = with_containers(json!([{"name": "a", "image": "localhost/a",
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]));
        d["metadata"]["labels"] = json!({"team": "payments"});
        let Decision::Allow { patch, .. } = p.decide(&deployment(d.clone())) else {
            panic!()
        };
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            json!([{"op": "add", "path": "/metadata/labels/example.com~1tier", "value": "web"}])
        );
        json_patch::patch(&mut d, &patch).unwrap();
        assert_eq!(d["metadata"]["labels"]["team"], "payments");
    }

    #[test]
    fn a_compliant_deployment_is_left_alone() {
        let mut d = with_containers(json!([{"name": "a", "image": "localhost/a",
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]));
        d["metadata"]["labels"] = json!({"team": "payments"});
        assert_eq!(
            policy().decide(&deployment(d)),
            Decision::Allow {
                patch: vec![],
                warnings: vec![]
            }
        );
    }

    #[test]
    fn review_answers_with_the_patch() {
        let review: kube_core::admission::AdmissionReview<Deployment> =
            serde_json::from_value(json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                    "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                    "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                    "requestKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                    "requestResource": {"group": "apps", "version": "v1", "resource": "deployments"},
                    "name": "web", "namespace": "default", "operation": "CREATE",
                    "userInfo": {"username": "admin"},
                    "object": with_containers(json!([{"name": "a", "image": "localhost/a"}])),
                    "dryRun": false
                }
            }))
            .unwrap();
        let request: AdmissionRequest<Deployment> = review.try_into().unwrap();
        let out = serde_json::to_value(policy().review(&request).into_review()).unwrap();
        let response = &out["response"];
        assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(response["allowed"], true);
        assert_eq!(response["patchType"], "JSONPatch");
        // kube-core sends the patch's bytes as an array of numbers.
        let bytes: Vec<u8> = serde_json::from_value(response["patch"].clone()).unwrap();
        let ops: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(ops.as_array().unwrap().len(), 2, "{ops}");
        assert_eq!(response["warnings"].as_array().unwrap().len(), 2);
    }
}
