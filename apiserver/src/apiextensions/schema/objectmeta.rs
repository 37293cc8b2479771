//! TypeMeta and ObjectMeta inside custom resources (upstream's
//! schema/objectmeta): `x-kubernetes-embedded-resource` objects carry
//! `apiVersion`, `kind` and `metadata` the server understands, whatever the
//! schema says about them. [`coerce`] makes their metadata what a Go
//! ObjectMeta would round-trip to; [`validate`] checks them.
//!
//! `is_resource_root` treats the top value as a resource too (for defaults
//! of metadata fields); the custom resource's own root metadata is checked
//! by the store, as for every resource.

use super::Structural;
use crate::error::FieldError;
use crate::registry::strategy::NameRule;
use crate::registry::validation::{child, index, is_dns1035_label, key, validate_object_meta};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value};

const META_FIELDS: [&str; 15] = [
    "annotations",
    "creationTimestamp",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
    "finalizers",
    "generateName",
    "generation",
    "labels",
    "managedFields",
    "name",
    "namespace",
    "ownerReferences",
    "resourceVersion",
    "selfLink",
    "uid",
];
const OWNER_REFERENCE_FIELDS: [&str; 6] = [
    "apiVersion",
    "blockOwnerDeletion",
    "controller",
    "kind",
    "name",
    "uid",
];
const MANAGED_FIELDS_FIELDS: [&str; 7] = [
    "apiVersion",
    "fieldsType",
    "fieldsV1",
    "manager",
    "operation",
    "subresource",
    "time",
];

/// Decodes metadata as Go's json.Unmarshal into ObjectMeta would (null is empty).
fn decode(v: &Value) -> Result<ObjectMeta, String> {
    if v.is_null() {
        return Ok(ObjectMeta::default());
    }
    serde_json::from_value(v.clone()).map_err(|e| e.to_string())
}

/// Keys a strict decode of ObjectMeta would reject, as paths under `prefix`.
fn unknown_meta_fields(v: &Value, prefix: &str) -> Vec<String> {
    let Some(m) = v.as_object() else {
        return Vec::new();
    };
    let mut out = unknown_keys(m, &META_FIELDS, prefix);
    for (list, known) in [
        ("ownerReferences", &OWNER_REFERENCE_FIELDS[..]),
        ("managedFields", &MANAGED_FIELDS_FIELDS[..]),
    ] {
        for (i, item) in m
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(obj) = item.as_object() {
                out.extend(unknown_keys(obj, known, &index(&child(prefix, list), i)));
            }
        }
    }
    out
}

fn unknown_keys(m: &Map<String, Value>, known: &[&str], prefix: &str) -> Vec<String> {
    m.keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| child(prefix, k))
        .collect()
}

/// What survives of malformed metadata when dropping the malformed fields:
/// each field that decodes on its own.
fn decode_lenient(v: &Value) -> Result<ObjectMeta, String> {
    let Some(m) = v.as_object() else {
        return Err(format!(
            "invalid metadata: expected object, got {}",
            json_type(v)
        ));
    };
    let good: Map<String, Value> = m
        .iter()
        .filter(|(k, v)| {
            decode(&Value::Object(Map::from_iter([(
                (*k).clone(),
                (*v).clone(),
            )])))
            .is_ok()
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    decode(&Value::Object(good))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Normalises embedded resources' TypeMeta and ObjectMeta (upstream's
/// CoerceWithOptions): `apiVersion` and `kind` must be strings, `metadata`
/// is rewritten as a decoded ObjectMeta, dropping unknown fields. Returns
/// those unknown fields' paths (for warnings), or the first malformed field
/// unless `drop_invalid` drops it instead.
pub fn coerce(
    s: &Structural,
    value: &mut Value,
    path: &str,
    is_resource_root: bool,
    drop_invalid: bool,
) -> Result<Vec<String>, Box<FieldError>> {
    let mut unknown = Vec::new();
    walk(s, value, path, is_resource_root, drop_invalid, &mut unknown)?;
    unknown.sort();
    Ok(unknown)
}

fn walk(
    s: &Structural,
    x: &mut Value,
    path: &str,
    embedded: bool,
    drop_invalid: bool,
    unknown: &mut Vec<String>,
) -> Result<(), Box<FieldError>> {
    match x {
        Value::Object(map) => {
            if embedded || s.embedded_resource {
                coerce_type_and_meta(map, path, drop_invalid, unknown)?;
            }
            for (k, v) in map.iter_mut() {
                if let Some(p) = s.properties.get(k) {
                    walk(p, v, &child(path, k), false, drop_invalid, unknown)?;
                } else if let Some(a) = s.additional_properties.as_ref().and_then(|a| a.schema()) {
                    walk(a, v, &key(path, k), false, drop_invalid, unknown)?;
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = &s.items {
                for (i, v) in items.iter_mut().enumerate() {
                    walk(
                        item_schema,
                        v,
                        &index(path, i),
                        false,
                        drop_invalid,
                        unknown,
                    )?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn coerce_type_and_meta(
    map: &mut Map<String, Value>,
    path: &str,
    drop_invalid: bool,
    unknown: &mut Vec<String>,
) -> Result<(), Box<FieldError>> {
    for k in ["apiVersion", "kind"] {
        match map.get(k) {
            Some(v) if !v.is_string() && drop_invalid => {
                map.remove(k);
            }
            Some(v) if !v.is_string() => {
                return Err(Box::new(FieldError::invalid(
                    child(path, k),
                    v.clone(),
                    "must be a string",
                )));
            }
            _ => {}
        }
    }
    let Some(meta) = map.get("metadata") else {
        return Ok(());
    };
    let meta_path = child(path, "metadata");
    let decoded = match decode(meta) {
        Ok(m) => {
            unknown.extend(unknown_meta_fields(meta, &meta_path));
            Ok(m)
        }
        Err(_) if drop_invalid => decode_lenient(meta).inspect(|_| {
            unknown.extend(unknown_meta_fields(meta, &meta_path));
        }),
        Err(e) => return Err(Box::new(FieldError::invalid(meta_path, meta.clone(), e))),
    };
    // With drop_invalid a hopeless metadata (not even an object) passes through as it is.
    if let Ok(m) = decoded {
        let written = serde_json::to_value(&m)
            .map_err(|e| Box::new(FieldError::invalid(&meta_path, "", e.to_string())))?;
        map.insert("metadata".into(), written);
    }
    Ok(())
}

/// Checks embedded resources (upstream's objectmeta.Validate): `apiVersion`
/// and `kind` are required and well-formed, `metadata` decodes and passes
/// the usual ObjectMeta checks (a missing name is fine: it is filled in later).
pub fn validate(
    s: &Structural,
    value: &Value,
    path: &str,
    is_resource_root: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    check(s, value, path, is_resource_root, &mut errs);
    errs
}

fn check(s: &Structural, x: &Value, path: &str, embedded: bool, errs: &mut Vec<FieldError>) {
    match x {
        Value::Object(map) => {
            if embedded || s.embedded_resource {
                errs.extend(embedded_resource(map, path));
            }
            for (k, v) in map {
                if let Some(p) = s.properties.get(k) {
                    check(p, v, &child(path, k), false, errs);
                } else if let Some(a) = s.additional_properties.as_ref().and_then(|a| a.schema()) {
                    check(a, v, &key(path, k), false, errs);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = &s.items {
                for (i, v) in items.iter().enumerate() {
                    check(item_schema, v, &index(path, i), false, errs);
                }
            }
        }
        _ => {}
    }
}

/// apimachinery's ParseGroupVersion: at most one slash.
fn parse_group_version(gv: &str) -> Result<(), String> {
    if gv.matches('/').count() > 1 {
        Err(format!("unexpected GroupVersion string: {gv}"))
    } else {
        Ok(())
    }
}

fn embedded_resource(x: &Map<String, Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for k in ["apiVersion", "kind"] {
        if !x.contains_key(k) {
            errs.push(FieldError::required(child(path, k), ""));
        }
    }
    for (k, v) in x {
        let p = child(path, k);
        match (k.as_str(), v) {
            ("apiVersion" | "kind", v) if !v.is_string() => {
                errs.push(FieldError::invalid(p, v.clone(), "must be a string"));
            }
            ("apiVersion" | "kind", Value::String(s)) if s.is_empty() => {
                errs.push(FieldError::invalid(p, "", "must not be empty"));
            }
            ("apiVersion", Value::String(gv)) => {
                if let Err(e) = parse_group_version(gv) {
                    errs.push(FieldError::invalid(p, gv.as_str(), e));
                }
            }
            ("kind", Value::String(kind)) => {
                let msgs = is_dns1035_label(&kind.to_lowercase());
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        p,
                        kind.as_str(),
                        format!(
                            "may have mixed case, but should otherwise match: {}",
                            msgs.join(",")
                        ),
                    ));
                }
            }
            ("metadata", v) => match decode(v) {
                Err(e) => errs.push(FieldError::invalid(p, v.clone(), e)),
                Ok(mut meta) => {
                    if meta.name.as_deref().unwrap_or("").is_empty() {
                        meta.name = Some("fakename".into()); // the name is not required here
                    }
                    let namespaced = meta.namespace.as_deref().is_some_and(|n| !n.is_empty());
                    errs.extend(validate_object_meta(
                        &meta,
                        namespaced,
                        NameRule::PathSegment,
                        &p,
                    ));
                }
            },
            _ => {}
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::super::structural;
    use super::*;
    use serde_json::json;

    fn embedded_schema() -> Structural {
        structural(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
                "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                             "x-kubernetes-preserve-unknown-fields": true},
                "list": {"type": "array", "items": {"type": "object", "x-kubernetes-embedded-resource": true,
                         "x-kubernetes-preserve-unknown-fields": true}}
            }}}}),
        )
    }

    #[test]
    fn embedded_resources_need_type_meta() {
        let s = embedded_schema();
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}}}),
                vec![],
            ),
            (
                json!({"spec": {"template": {}}}),
                vec![
                    "spec.template.apiVersion: Required value",
                    "spec.template.kind: Required value",
                ],
            ),
            (
                json!({"spec": {"template": {"apiVersion": "a/b/c", "kind": "my_kind"}}}),
                vec![
                    "spec.template.apiVersion: Invalid value: \"a/b/c\": unexpected GroupVersion string: a/b/c",
                    "spec.template.kind: Invalid value: \"my_kind\": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                ],
            ),
            (
                json!({"spec": {"list": [{"apiVersion": 1, "kind": ""}]}}),
                vec![
                    "spec.list[0].apiVersion: Invalid value: 1: must be a string",
                    "spec.list[0].kind: Invalid value: \"\": must not be empty",
                ],
            ),
            (
                json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "Bad_NS", "labels": {"a": "b c"}}}}}),
                vec![
                    "spec.template.metadata.namespace: Invalid value: \"Bad_NS\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                    "spec.template.metadata.labels: Invalid value: \"b c\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                ],
            ),
        ];
        for (value, want) in cases {
            let got: Vec<String> = validate(&s, &value, "", false)
                .iter()
                .map(|e| e.to_string())
                .collect();
            assert_eq!(got, want, "{value}");
        }
        let bad_meta = json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": "x"}}}});
        let errs = validate(&s, &bad_meta, "", false);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.template.metadata");
    }

    #[test]
    fn the_root_counts_only_when_asked() {
        let s = structural(json!({"type": "object"}));
        assert!(validate(&s, &json!({}), "", false).is_empty());
        assert_eq!(validate(&s, &json!({}), "", true).len(), 2);
    }

    #[test]
    fn coerce_drops_unknown_metadata_fields() {
        let s = embedded_schema();
        let mut v = json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "foo": 1, "ownerReferences": [{"apiVersion": "v1", "kind": "K", "name": "n", "uid": "u", "bar": 2}]},
            "spec": {"keep": true}}}});
        let unknown = coerce(&s, &mut v, "", false, false).expect("coerces");
        assert_eq!(
            unknown,
            [
                "spec.template.metadata.foo",
                "spec.template.metadata.ownerReferences[0].bar"
            ]
        );
        assert_eq!(
            v["spec"]["template"]["metadata"],
            json!({"name": "p", "ownerReferences": [{"apiVersion": "v1", "kind": "K", "name": "n", "uid": "u"}]})
        );
        assert_eq!(v["spec"]["template"]["spec"], json!({"keep": true}));
    }

    #[test]
    fn coerce_rejects_or_drops_malformed_fields() {
        let s = embedded_schema();
        let value = json!({"spec": {"template": {"apiVersion": 1, "kind": "Pod",
            "metadata": {"name": "p", "labels": "x"}}}});
        let err = coerce(&s, &mut value.clone(), "", false, false).expect_err("malformed");
        assert_eq!(
            err.to_string(),
            "spec.template.apiVersion: Invalid value: 1: must be a string"
        );
        let mut dropped = value.clone();
        coerce(&s, &mut dropped, "", false, true).expect("drops");
        assert_eq!(
            dropped["spec"]["template"],
            json!({"kind": "Pod", "metadata": {"name": "p"}})
        );
        let mut only_meta = json!({"spec": {"template": {"metadata": {"generation": "x"}}}});
        let err = coerce(&s, &mut only_meta, "", false, false).expect_err("bad generation");
        assert_eq!(err.field, "spec.template.metadata");
    }
}
