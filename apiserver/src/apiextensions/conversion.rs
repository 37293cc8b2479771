//! `spec.conversion.strategy: Webhook` (upstream's
//! `apiextensions-apiserver/pkg/apiserver/conversion/webhook_converter.go`):
//! an object whose apiVersion is not the one wanted is sent in a
//! ConversionReview to the CRD's webhook, and the answer is checked as
//! upstream checks it: the request's uid, `result.status` Success, one
//! object per object sent, of the desired apiVersion and the same kind,
//! name, namespace and uid; of the metadata only labels and annotations may
//! change (upstream's restoreObjectMeta puts the rest back).
//!
//! The store decodes and encodes synchronously (in gets, lists, updates
//! and watch streams alike), so [`WebhookConverter::convert_blocking`]
//! waits for the call with `block_in_place` on the multi-thread runtime the
//! apiserver runs; on a current-thread runtime it refuses instead.
//! Objects go one per call, where upstream sends a list's in one review.

use crate::admission::webhook::{Deps, client};
use crate::error::ApiError;
use crate::registry::validation::{validate_annotations, validate_labels};
use k8s_openapi::api::admissionregistration::v1 as admreg;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::WebhookConversion;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Upstream's conversion webhook client timeout.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The ConversionReview versions this apiserver speaks.
pub const REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];

/// One CRD's conversion webhook.
pub struct WebhookConverter {
    client_config: admreg::WebhookClientConfig,
    /// The first of `conversionReviewVersions` spoken here.
    review_version: Option<&'static str>,
    deps: Arc<Deps>,
}

impl WebhookConverter {
    pub fn new(webhook: &WebhookConversion, deps: Arc<Deps>) -> WebhookConverter {
        let cc = webhook.client_config.clone().unwrap_or_default();
        WebhookConverter {
            client_config: admreg::WebhookClientConfig {
                ca_bundle: cc.ca_bundle,
                url: cc.url,
                service: cc.service.map(|s| admreg::ServiceReference {
                    name: s.name,
                    namespace: s.namespace,
                    path: s.path,
                    port: s.port,
                }),
            },
            review_version: webhook
                .conversion_review_versions
                .iter()
                .find_map(|v| REVIEW_VERSIONS.iter().find(|k| **k == v.as_str()).copied()),
            deps,
        }
    }

    /// `obj` as `desired` (`group/version`); as it is when it already is.
    /// Waits for the webhook (see the module's note).
    pub fn convert_blocking(&self, obj: Value, desired: &str) -> Result<Value, ApiError> {
        if obj["apiVersion"].as_str() == Some(desired) || is_empty_object(&obj) {
            return Ok(obj);
        }
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| failure(gvk(&obj), "no async runtime to call the webhook on"))?;
        if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
            return Err(failure(
                gvk(&obj),
                "the webhook cannot be waited for on a current-thread runtime",
            ));
        }
        tokio::task::block_in_place(|| handle.block_on(self.convert(&obj, desired)))
            .map_err(|m| ApiError::new(500, "", m))
    }

    async fn convert(&self, obj: &Value, desired: &str) -> Result<Value, String> {
        let kind = gvk(obj);
        let version = self
            .review_version
            .ok_or_else(|| "no supported conversion review versions".to_string())?;
        let uid = uuid::Uuid::new_v4().to_string();
        let body = review_request(version, &uid, desired, obj);
        let target = client::target(&self.client_config, TIMEOUT, &self.deps)
            .await
            .map_err(|e| format!("conversion webhook for {kind} failed: {e}"))?;
        let answer = self
            .deps
            .client
            .post(&target, body, TIMEOUT)
            .await
            .map_err(|e| format!("conversion webhook for {kind} failed: {e}"))?;
        converted_object(&answer, version, &uid, obj, desired)
    }
}

fn failure(kind: String, why: &str) -> ApiError {
    ApiError::new(
        500,
        "",
        format!("conversion webhook for {kind} failed: {why}"),
    )
}

/// Upstream's isEmptyUnstructuredObject: only apiVersion and kind.
fn is_empty_object(obj: &Value) -> bool {
    obj.as_object()
        .is_some_and(|m| m.len() == 2 && m.contains_key("apiVersion") && m.contains_key("kind"))
}

/// The object's GroupVersionKind as Go prints it (`example.com/v1, Kind=Gadget`).
fn gvk(obj: &Value) -> String {
    format!(
        "{}, Kind={}",
        obj["apiVersion"].as_str().unwrap_or("/"),
        obj["kind"].as_str().unwrap_or("")
    )
}

/// The ConversionReview sent.
pub fn review_request(version: &str, uid: &str, desired: &str, obj: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": format!("apiextensions.k8s.io/{version}"),
        "kind": "ConversionReview",
        "request": {
            "uid": uid,
            "desiredAPIVersion": desired,
            "objects": [obj],
        },
    }))
    .expect("JSON values serialize")
}

/// Reads the webhook's answer to the review `uid` (of `version`) about
/// `input`, and returns the converted object; errors are upstream's texts.
pub fn converted_object(
    answer: &[u8],
    version: &str,
    uid: &str,
    input: &Value,
    desired: &str,
) -> Result<Value, String> {
    let kind = gvk(input);
    let failed = |why: String| format!("conversion webhook for {kind} failed: {why}");
    let review: Value = serde_json::from_slice(answer).map_err(|e| failed(e.to_string()))?;
    if version == "v1" {
        let got = format!(
            "{}, Kind={}",
            review["apiVersion"].as_str().unwrap_or(""),
            review["kind"].as_str().unwrap_or("")
        );
        if got != "apiextensions.k8s.io/v1, Kind=ConversionReview" {
            return Err(failed(format!(
                "expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got {got}"
            )));
        }
    }
    let response = &review["response"];
    if !response.is_object() {
        return Err(failed("no response provided".into()));
    }
    // v1beta1 answers were never checked for their uid (upstream keeps that).
    let got_uid = response["uid"].as_str().unwrap_or("");
    if version == "v1" && got_uid != uid {
        return Err(failed(format!(
            "expected response.uid={uid:?}, got {got_uid:?}"
        )));
    }
    let result = &response["result"];
    let status = result["status"].as_str().unwrap_or("");
    if status != "Success" {
        return Err(failed(match result["message"].as_str() {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => format!("response.result.status was '{status}', not 'Success'"),
        }));
    }
    let objects = response["convertedObjects"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if objects.len() != 1 {
        return Err(format!(
            "conversion webhook for {kind} returned {} objects, expected 1",
            objects.len()
        ));
    }
    let mut converted = objects[0].clone();
    let invalid = |why: String| {
        format!("conversion webhook for {kind} returned invalid object at index 0: {why}")
    };
    let got_version = converted["apiVersion"].as_str().unwrap_or("");
    if got_version != desired {
        return Err(invalid(format!(
            "invalid groupVersion (expected {desired}, received {got_version})"
        )));
    }
    let (want_kind, got_kind) = (
        input["kind"].as_str().unwrap_or(""),
        converted["kind"].as_str().unwrap_or(""),
    );
    if want_kind != got_kind {
        return Err(invalid(format!(
            "invalid kind (expected {want_kind}, received {got_kind})"
        )));
    }
    for (field, what) in [("name", "name"), ("namespace", "namespace"), ("uid", "UID")] {
        let a = input["metadata"][field].as_str().unwrap_or("");
        let b = converted["metadata"][field].as_str().unwrap_or("");
        if a != b {
            return Err(format!(
                "conversion webhook for {kind} returned invalid object: must have the same {what}: {a} != {b}"
            ));
        }
    }
    restore_object_meta(input, &mut converted)
        .map_err(|e| format!("conversion webhook for {kind} returned invalid metadata: {e}"))?;
    Ok(converted)
}

/// Upstream's restoreObjectMeta: the input's metadata, with the labels and
/// annotations of the converted object (validated when they changed).
fn restore_object_meta(original: &Value, converted: &mut Value) -> Result<(), String> {
    let answered = match &converted["metadata"] {
        Value::Object(m) => m.clone(),
        Value::Null => return Err("missing metadata in converted object".into()),
        other => {
            return Err(format!(
                "invalid metadata of type {} in converted object",
                go_type(other)
            ));
        }
    };
    let mut meta = match &original["metadata"] {
        Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    for field in ["labels", "annotations"] {
        let given = match answered.get(field) {
            None | Some(Value::Null) => {
                meta.remove(field);
                continue;
            }
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(format!(
                    "invalid metadata.{field} of type {} in converted object",
                    go_type(other)
                ));
            }
        };
        let mut strings = BTreeMap::new();
        for (k, v) in given {
            let Some(s) = v.as_str() else {
                return Err(format!(
                    "metadata.{field}[{k}] must be a string, but is {} in converted object",
                    go_type(v)
                ));
            };
            strings.insert(k.clone(), s.to_string());
        }
        let before = meta.get(field).and_then(Value::as_object);
        let changed = before.is_none_or(|b| b != given);
        if changed {
            let errs = if field == "labels" {
                validate_labels(Some(&strings), "metadata.labels")
            } else {
                // (sic: upstream's path)
                validate_annotations(Some(&strings), "metadata.annotation")
            };
            match errs.as_slice() {
                [] => {}
                [one] => return Err(one.to_string()),
                many => {
                    let all: Vec<String> = many.iter().map(ToString::to_string).collect();
                    return Err(format!("[{}]", all.join(", ")));
                }
            }
        }
        meta.insert(field.into(), Value::Object(given.clone()));
    }
    converted["metadata"] = Value::Object(meta);
    Ok(())
}

/// The Go type a JSON value decodes to, for upstream's `%T`.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> Value {
        json!({
            "apiVersion": "example.com/v1",
            "kind": "Gadget",
            "metadata": {
                "name": "g", "namespace": "default", "uid": "u-1",
                "resourceVersion": "7", "labels": {"a": "1"},
            },
            "spec": {"size": 3},
        })
    }

    fn converted() -> Value {
        json!({
            "apiVersion": "example.com/v2",
            "kind": "Gadget",
            "metadata": {"name": "g", "namespace": "default", "uid": "u-1", "labels": {"a": "1"}},
            "spec": {"dimensions": {"size": 3}},
        })
    }

    fn answer(version: &str, uid: &str, result: Value, objects: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": format!("apiextensions.k8s.io/{version}"),
            "kind": "ConversionReview",
            "response": {"uid": uid, "result": result, "convertedObjects": objects},
        }))
        .unwrap()
    }

    fn with(mut v: Value, path: &[&str], value: Value) -> Value {
        let mut cur = &mut v;
        for p in path {
            cur = &mut cur[*p];
        }
        *cur = value;
        v
    }

    /// A name, the webhook's answer, the review version, what comes of it.
    type Case = (&'static str, Vec<u8>, &'static str, Result<(), String>);

    #[test]
    fn responses_are_checked_as_upstream() {
        let ok = json!({"status": "Success"});
        let prefix = "conversion webhook for example.com/v1, Kind=Gadget";
        let cases: Vec<Case> = vec![
            (
                "a good answer",
                answer("v1", "id", ok.clone(), vec![converted()]),
                "v1",
                Ok(()),
            ),
            (
                "another uid",
                answer("v1", "other", ok.clone(), vec![converted()]),
                "v1",
                Err(format!(
                    "{prefix} failed: expected response.uid=\"id\", got \"other\""
                )),
            ),
            (
                "v1beta1 answers are not checked for their uid",
                answer("v1beta1", "other", ok.clone(), vec![converted()]),
                "v1beta1",
                Ok(()),
            ),
            (
                "a failure with a message",
                answer(
                    "v1",
                    "id",
                    json!({"status": "Failure", "message": "cannot"}),
                    vec![],
                ),
                "v1",
                Err(format!("{prefix} failed: cannot")),
            ),
            (
                "a failure without one",
                answer("v1", "id", json!({"status": "Failure"}), vec![]),
                "v1",
                Err(format!(
                    "{prefix} failed: response.result.status was 'Failure', not 'Success'"
                )),
            ),
            (
                "two objects",
                answer("v1", "id", ok.clone(), vec![converted(), converted()]),
                "v1",
                Err(format!("{prefix} returned 2 objects, expected 1")),
            ),
            (
                "the wrong version",
                answer(
                    "v1",
                    "id",
                    ok.clone(),
                    vec![with(converted(), &["apiVersion"], json!("example.com/v1"))],
                ),
                "v1",
                Err(format!(
                    "{prefix} returned invalid object at index 0: invalid groupVersion (expected example.com/v2, received example.com/v1)"
                )),
            ),
            (
                "another kind",
                answer(
                    "v1",
                    "id",
                    ok.clone(),
                    vec![with(converted(), &["kind"], json!("Gizmo"))],
                ),
                "v1",
                Err(format!(
                    "{prefix} returned invalid object at index 0: invalid kind (expected Gadget, received Gizmo)"
                )),
            ),
            (
                "another name",
                answer(
                    "v1",
                    "id",
                    ok.clone(),
                    vec![with(converted(), &["metadata", "name"], json!("h"))],
                ),
                "v1",
                Err(format!(
                    "{prefix} returned invalid object: must have the same name: g != h"
                )),
            ),
            (
                "an invalid label",
                answer(
                    "v1",
                    "id",
                    ok.clone(),
                    vec![with(
                        converted(),
                        &["metadata", "labels"],
                        json!({"a": "not valid!"}),
                    )],
                ),
                "v1",
                Err(format!(
                    "{prefix} returned invalid metadata: metadata.labels: Invalid value: \"not valid!\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
                )),
            ),
            (
                "a label of another type",
                answer(
                    "v1",
                    "id",
                    ok.clone(),
                    vec![with(converted(), &["metadata", "labels"], json!({"a": 1}))],
                ),
                "v1",
                Err(format!(
                    "{prefix} returned invalid metadata: metadata.labels[a] must be a string, but is int64 in converted object"
                )),
            ),
            (
                "not a ConversionReview",
                br#"{"apiVersion":"v1","kind":"Status"}"#.to_vec(),
                "v1",
                Err(format!(
                    "{prefix} failed: expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got v1, Kind=Status"
                )),
            ),
            (
                "no response",
                br#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview"}"#.to_vec(),
                "v1",
                Err(format!("{prefix} failed: no response provided")),
            ),
        ];
        for (name, body, version, want) in cases {
            let got = converted_object(&body, version, "id", &input(), "example.com/v2");
            assert_eq!(got.map(|_| ()), want, "{name}");
        }
    }

    #[test]
    fn only_labels_and_annotations_of_the_answer_are_kept() {
        let mut answered = converted();
        answered["metadata"]["labels"] = json!({"b": "2"});
        answered["metadata"]["annotations"] = json!({"note": "x"});
        answered["metadata"]["resourceVersion"] = json!("99");
        answered["metadata"]["generation"] = json!(5);
        let body = answer("v1", "id", json!({"status": "Success"}), vec![answered]);
        let got = converted_object(&body, "v1", "id", &input(), "example.com/v2").unwrap();
        assert_eq!(
            got["metadata"],
            json!({
                "name": "g", "namespace": "default", "uid": "u-1", "resourceVersion": "7",
                "labels": {"b": "2"}, "annotations": {"note": "x"},
            })
        );
        assert_eq!(got["spec"], json!({"dimensions": {"size": 3}}));
    }

    #[test]
    fn dropped_labels_are_dropped() {
        let mut answered = converted();
        answered["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("labels");
        let body = answer("v1", "id", json!({"status": "Success"}), vec![answered]);
        let got = converted_object(&body, "v1", "id", &input(), "example.com/v2").unwrap();
        assert!(got["metadata"].get("labels").is_none());
    }

    #[test]
    fn the_review_sent_names_the_desired_version() {
        let body = review_request("v1beta1", "id", "example.com/v2", &input());
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["apiVersion"], "apiextensions.k8s.io/v1beta1");
        assert_eq!(v["request"]["desiredAPIVersion"], "example.com/v2");
        assert_eq!(v["request"]["uid"], "id");
        assert_eq!(v["request"]["objects"][0], input());
    }
}
