//! `default` values (upstream's schema/defaulting): applying them to custom
//! resources, dropping the nulls that would otherwise hide them, and
//! checking at CRD time that every default is valid and already pruned.

use super::{Structural, objectmeta, pruning, validation};
use crate::error::FieldError;
use crate::registry::validation::{child, key};
use serde_json::{Map, Value};

/// Null where the schema does not allow null: it means "not set".
fn non_nullable_null(x: &Value, s: Option<&Structural>) -> bool {
    x.is_null() && s.is_some_and(|s| !s.nullable)
}

/// Fills in defaults (upstream's Default): a property missing from an
/// object that exists, or null though not nullable, gets its schema's
/// default; array items and map values that are such nulls get the items'
/// or values' default. Defaults are then defaulted inside, too.
pub fn default(s: &Structural, x: &mut Value) {
    match x {
        Value::Object(map) => {
            for (k, prop) in &s.properties {
                let Some(d) = &prop.default else { continue };
                if map.get(k).is_none_or(|v| non_nullable_null(v, Some(prop))) {
                    map.insert(k.clone(), d.clone());
                }
            }
            let values = s.additional_properties.as_ref().and_then(|a| a.schema());
            for (k, v) in map.iter_mut() {
                if let Some(prop) = s.properties.get(k) {
                    default(prop, v);
                } else if s.additional_properties.is_some() {
                    default_element(values, v);
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                default_element(s.items.as_deref(), v);
            }
        }
        _ => {}
    }
}

/// An array item or map value: a non-nullable null becomes the default, if any.
fn default_element(s: Option<&Structural>, v: &mut Value) {
    let Some(s) = s else { return };
    if non_nullable_null(v, Some(s))
        && let Some(d) = &s.default
    {
        *v = d.clone();
    }
    default(s, v);
}

/// Drops nulls the schema does not allow and has no default for
/// (upstream's PruneNonNullableNullsWithoutDefaults); those with a default
/// are left for [`default`].
pub fn prune_non_nullable_nulls(s: &Structural, x: &mut Value) {
    prune_nulls(Some(s), x);
}

fn field_schema<'a>(s: Option<&'a Structural>, k: &str) -> Option<&'a Structural> {
    let s = s?;
    s.properties
        .get(k)
        .or_else(|| s.additional_properties.as_ref().and_then(|a| a.schema()))
}

fn prune_nulls(s: Option<&Structural>, x: &mut Value) {
    match x {
        Value::Object(map) => {
            map.retain(|k, v| {
                let fs = field_schema(s, k);
                let drop = non_nullable_null(v, fs) && fs.is_some_and(|f| f.default.is_none());
                if !drop {
                    prune_nulls(fs, v);
                }
                !drop
            });
        }
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.items.as_deref());
            for v in items {
                prune_nulls(item_schema, v);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Checking defaults when a CRD is written (upstream's ValidateDefaults).

/// How to get from the nearest resource to the schema being checked, to
/// build a whole object around a default of e.g. `metadata.labels`.
#[derive(Clone)]
enum Step {
    Child(String),
    Index,
}

/// Where the check is: the resource it is in and the way down from it.
#[derive(Clone)]
struct Within<'a> {
    resource: &'a Structural,
    steps: Vec<Step>,
    inside_meta: bool,
}

/// Every default must validate against its schema (and CEL rules, which
/// are checked elsewhere), contain no field pruning would drop, and, under
/// `metadata`, `apiVersion` or `kind` of a resource, make valid metadata.
/// `path` is the schema's path, e.g. `spec.versions[0].schema.openAPIV3Schema`.
pub fn validate_defaults(s: &Structural, path: &str) -> Vec<FieldError> {
    let within = Within {
        resource: s,
        steps: Vec::new(),
        inside_meta: false,
    };
    let mut errs = Vec::new();
    walk(s, path, within, true, &mut errs);
    errs
}

fn walk<'a>(
    s: &'a Structural,
    path: &str,
    mut w: Within<'a>,
    is_root: bool,
    errs: &mut Vec<FieldError>,
) {
    let is_resource = is_root || s.embedded_resource;
    if s.embedded_resource && !is_root {
        w = Within {
            resource: s,
            steps: Vec::new(),
            inside_meta: false,
        };
    }
    if let Some(d) = &s.default {
        let at = child(path, "default");
        if w.inside_meta {
            errs.extend(meta_default(s, d, &w, &at));
        } else {
            errs.extend(plain_default(s, d, is_resource, &at));
        }
    }
    // additionalProperties are not followed, as upstream does not.
    if let Some(items) = &s.items {
        let mut sub = w.clone();
        sub.steps.push(Step::Index);
        walk(items, &child(path, "items"), sub, false, errs);
    }
    for (k, p) in &s.properties {
        let mut sub = w.clone();
        sub.steps.push(Step::Child(k.clone()));
        sub.inside_meta |= is_resource && ["metadata", "apiVersion", "kind"].contains(&k.as_str());
        walk(p, &key(&child(path, "properties"), k), sub, false, errs);
    }
}

/// A default outside TypeMeta/ObjectMeta: pruned, sound embedded
/// resources, and valid by the schema. Each check runs only if the
/// previous passed, as upstream's chain does.
fn plain_default(s: &Structural, d: &Value, is_resource: bool, at: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut pruned = d.clone();
    pruning::prune_with(s, &mut pruned, is_resource);
    if pruned != *d {
        errs.push(FieldError::invalid(
            at,
            d.clone(),
            "must not have unknown fields",
        ));
    }
    if let Err(e) = objectmeta::coerce(s, &mut d.clone(), at, is_resource, false) {
        errs.push(*e);
        return errs;
    }
    let meta = objectmeta::validate(s, d, at, is_resource);
    if !meta.is_empty() {
        errs.extend(meta);
        return errs;
    }
    errs.extend(validation::validate_schema(s, d, at));
    errs
}

/// Wraps a default in the object it would sit in, from the nearest resource
/// down, with the TypeMeta a validation object would have.
fn surround(d: &Value, steps: &[Step]) -> Option<Map<String, Value>> {
    let mut x = d.clone();
    for step in steps.iter().rev() {
        x = match step {
            Step::Child(k) => Value::Object(Map::from_iter([(k.clone(), x)])),
            Step::Index => Value::Array(vec![x]),
        };
    }
    let Value::Object(mut obj) = x else {
        return None;
    };
    obj.entry("kind").or_insert_with(|| "Validation".into());
    obj.entry("apiVersion")
        .or_insert_with(|| "validation/v1".into());
    Some(obj)
}

/// A default inside TypeMeta/ObjectMeta must make the surrounding object's
/// metadata valid, and be valid by its own schema.
fn meta_default(s: &Structural, d: &Value, w: &Within<'_>, at: &str) -> Vec<FieldError> {
    // The steps start at metadata/apiVersion/kind, so the surrounding value is an object.
    let Some(obj) = surround(d, &w.steps) else {
        return Vec::new();
    };
    let mut obj = Value::Object(obj);
    let invalid = |why: String| {
        vec![FieldError::invalid(
            at,
            d.clone(),
            format!("must result in valid metadata: {why}"),
        )]
    };
    // The resource (the CR root, or an embedded one) is checked as a resource root.
    if let Err(e) = objectmeta::coerce(w.resource, &mut obj, "", true, false) {
        return invalid(e.to_string());
    }
    let meta = objectmeta::validate(w.resource, &obj, "", true);
    if !meta.is_empty() {
        return invalid(aggregate(&meta));
    }
    validation::validate_schema(s, d, at)
}

/// apimachinery's aggregate error text: one message, or `[a, b]`.
fn aggregate(errs: &[FieldError]) -> String {
    let mut msgs: Vec<String> = Vec::new();
    for e in errs {
        let m = e.to_string();
        if !msgs.contains(&m) {
            msgs.push(m);
        }
    }
    match msgs.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::structural;
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_apply_like_upstream() {
        let schema = structural(json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "replicas": {"type": "integer", "default": 1},
                "mode": {"type": "string", "default": "A"},
                "opt": {"type": "string", "nullable": true, "default": "d"},
                "obj": {"type": "object", "default": {}, "properties": {"x": {"type": "integer", "default": 5}}},
                "list": {"type": "array", "items": {"type": "object", "default": {"n": 0},
                         "properties": {"n": {"type": "integer"}, "m": {"type": "string", "default": "z"}}}},
                "map": {"type": "object", "additionalProperties": {"type": "string", "default": "v"}}
            }},
            "status": {"type": "object", "properties": {"s": {"type": "string", "default": "x"}}}
        }}));
        let mut v = json!({"spec": {"mode": null, "opt": null,
            "list": [null, {"n": 1}], "map": {"a": null, "b": "b"}}});
        default(&schema, &mut v);
        assert_eq!(
            v,
            json!({"spec": {
                "mode": "A", "opt": null,
                "list": [{"n": 0, "m": "z"}, {"n": 1, "m": "z"}],
                "map": {"a": "v", "b": "b"},
                "replicas": 1, "obj": {"x": 5}
            }}),
            "status does not exist, so nothing is defaulted into it"
        );
    }

    #[test]
    fn nulls_without_defaults_are_dropped() {
        let schema = structural(json!({"type": "object", "properties": {
            "a": {"type": "string"},
            "b": {"type": "string", "nullable": true},
            "c": {"type": "string", "default": "x"},
            "l": {"type": "array", "items": {"type": "object", "properties": {"d": {"type": "string"}}}},
            "free": {"x-kubernetes-preserve-unknown-fields": true}
        }}));
        let mut v = json!({"a": null, "b": null, "c": null, "l": [{"d": null}], "free": {"e": null}, "unknown": null});
        prune_non_nullable_nulls(&schema, &mut v);
        assert_eq!(
            v,
            json!({"b": null, "c": null, "l": [{}], "free": {"e": null}, "unknown": null})
        );
    }

    fn shown(schema: Value) -> Vec<String> {
        validate_defaults(&structural(schema), "s")
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn defaults_are_checked() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"type": "object", "properties": {"a": {"type": "integer", "default": 1, "maximum": 5}}}),
                vec![],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "integer", "default": 10, "maximum": 5}}}),
                vec![
                    "s.properties[a].default: Invalid value: 10:  in body should be less than or equal to 5",
                ],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "integer", "default": "x"}}}),
                vec![
                    "s.properties[a].default: Invalid value: \"string\":  in body must be of type integer: \"string\"",
                ],
            ),
            (
                json!({"type": "object", "properties": {"o": {"type": "object", "default": {"a": "x", "b": 1},
                "properties": {"a": {"type": "string"}}}}}),
                vec![
                    "s.properties[o].default: Invalid value: {\"a\":\"x\",\"b\":1}: must not have unknown fields",
                ],
            ),
            (
                json!({"type": "object", "properties": {"o": {"type": "object", "default": {"a": 1},
                "required": ["b"], "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}}}),
                vec![
                    "s.properties[o].default.a: Invalid value: \"integer\": a in body must be of type string: \"integer\"",
                    "s.properties[o].default.b: Required value",
                ],
            ),
            (
                json!({"type": "object", "properties": {"l": {"type": "array",
                "items": {"type": "string", "default": 1}}}}),
                vec![
                    "s.properties[l].items.default: Invalid value: \"integer\":  in body must be of type string: \"integer\"",
                ],
            ),
        ];
        for (schema, want) in cases {
            assert_eq!(shown(schema.clone()), want, "{schema}");
        }
    }

    #[test]
    fn defaults_inside_embedded_metadata_must_make_valid_metadata() {
        let schema = |d: Value| {
            json!({"type": "object", "properties": {"t": {"type": "object",
                "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"metadata": {"type": "object", "properties": {
                    "name": {"type": "string", "default": d}}}}}}})
        };
        assert!(shown(schema(json!("good-name"))).is_empty());
        assert_eq!(
            shown(schema(json!("a/b"))),
            [
                "s.properties[t].properties[metadata].properties[name].default: Invalid value: \"a/b\": must result in valid metadata: metadata.name: Invalid value: \"a/b\": may not contain '/'"
            ]
        );
        let errs = shown(schema(json!(5)));
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].contains("must result in valid metadata: metadata: Invalid value"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn surround_builds_the_object_around_a_default() {
        let obj = surround(
            &json!("x"),
            &[Step::Child("metadata".into()), Step::Child("name".into())],
        );
        assert_eq!(
            obj.map(Value::Object),
            Some(
                json!({"metadata": {"name": "x"}, "kind": "Validation", "apiVersion": "validation/v1"})
            )
        );
        assert_eq!(surround(&json!("x"), &[Step::Index]), None);
    }
}
