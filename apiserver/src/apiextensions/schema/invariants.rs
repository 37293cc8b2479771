//! Is a converted schema structural? (upstream's schema/validation.go,
//! ValidateStructural, and complete.go.)
//!
//! Structural means: every node has a `type` (with the int-or-string and
//! preserve-unknown-fields exceptions), junctors only add value checks, each
//! value check under a junctor names a field the structure also names, and
//! `metadata` at the root restricts at most `name` and `generateName`.

use super::{AdditionalProperties, Forbidden, NestedValueValidation, Structural, ValueValidation};
use crate::error::FieldError;
use crate::registry::validation::{child, index, key};

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Root,
    Item,
    Field,
}

/// Every structural violation under `path`, sorted as upstream sorts them
/// (by message, so the list is stable however the maps iterate).
pub fn validate(s: &Structural, path: &str) -> Vec<FieldError> {
    let mut errs = invariants(s, Level::Root, path);
    errs.extend(completeness(&s.value_validation, s, path, path));
    errs.sort_by_key(|e| e.to_string());
    errs
}

fn properties_key(path: &str, k: &str) -> String {
    key(&child(path, "properties"), k)
}

fn invariants(s: &Structural, lvl: Level, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if s.type_ == "array" && s.items.is_none() {
        errs.push(FieldError::required(
            child(path, "items"),
            "must be specified",
        ));
    }
    if let Some(items) = &s.items {
        errs.extend(invariants(items, Level::Item, &child(path, "items")));
    }
    for (k, v) in &s.properties {
        errs.extend(invariants(v, Level::Field, &properties_key(path, k)));
    }
    if let Some(ap) = &s.additional_properties {
        if lvl == Level::Root {
            errs.push(FieldError::forbidden(
                child(path, "additionalProperties"),
                "must not be used at the root",
            ));
        }
        if let AdditionalProperties::Schema(a) = ap {
            errs.extend(invariants(
                a,
                Level::Field,
                &child(path, "additionalProperties"),
            ));
        }
    }
    errs.extend(extensions(s, path));
    errs.extend(value_validation(
        &s.value_validation,
        is_int_or_string_any_of(&s.value_validation),
        is_int_or_string_all_of(&s.value_validation),
        path,
    ));
    errs.extend(type_rules(s, lvl, path));
    errs.extend(meta_rules(s, lvl, path));
    errs
}

/// `type` must be there unless something else says what the value is.
fn type_rules(s: &Structural, lvl: Level, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let type_path = child(path, "type");
    let embedded_msg = "must be object if x-kubernetes-embedded-resource is true";
    if s.embedded_resource && s.type_ != "object" {
        errs.push(if s.type_.is_empty() {
            FieldError::required(&type_path, embedded_msg)
        } else {
            FieldError::invalid(&type_path, s.type_.as_str(), embedded_msg)
        });
    } else if s.type_.is_empty() && !s.int_or_string && !s.preserve_unknown_fields {
        let detail = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(FieldError::required(&type_path, detail));
    }
    if s.embedded_resource && s.additional_properties.is_some() {
        errs.push(FieldError::forbidden(
            child(path, "additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !s.type_.is_empty() && s.type_ != "object" {
        errs.push(FieldError::invalid(
            &type_path,
            s.type_.as_str(),
            "must be object at the root",
        ));
    }
    if s.embedded_resource && !s.preserve_unknown_fields && s.properties.is_empty() {
        errs.push(FieldError::required(
            child(path, "properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
    errs
}

/// TypeMeta and ObjectMeta of a resource (the root or an embedded one)
/// have fixed types, and the root's metadata is the server's, not the CRD's.
fn meta_rules(s: &Structural, lvl: Level, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let check_meta = lvl == Level::Root || s.embedded_resource;
    for name in ["kind", "apiVersion"] {
        if let Some(p) = s.properties.get(name).filter(|_| check_meta)
            && p.type_ != "string"
        {
            errs.push(FieldError::invalid(
                child(&properties_key(path, name), "type"),
                p.type_.as_str(),
                "must be string",
            ));
        }
    }
    if let Some(meta) = s.properties.get("metadata") {
        let meta_path = properties_key(path, "metadata");
        if check_meta && meta.type_ != "object" {
            errs.push(FieldError::invalid(
                child(&meta_path, "type"),
                meta.type_.as_str(),
                "must be object",
            ));
        }
        if lvl == Level::Root && !only_names(meta) {
            errs.push(FieldError::forbidden(
                meta_path,
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
    errs
}

/// The root metadata schema may restrict `name` and `generateName` and say
/// `type: object` (and a default, which the OpenAPI checks forbid), nothing else.
fn only_names(meta: &Structural) -> bool {
    let mut rest = meta.clone();
    let names = rest.properties.contains_key("name") as usize
        + rest.properties.contains_key("generateName") as usize;
    if names > 0 && names == rest.properties.len() {
        rest.properties.clear();
    }
    rest.type_.clear();
    rest.default = None;
    rest == Structural::default()
}

fn extensions(s: &Structural, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if s.int_or_string && s.preserve_unknown_fields {
        errs.push(FieldError::invalid(
            child(path, "x-kubernetes-preserve-unknown-fields"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if s.int_or_string && s.embedded_resource {
        errs.push(FieldError::invalid(
            child(path, "x-kubernetes-embedded-resource"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    errs
}

/// `{type: integer}` or `{type: string}` and nothing else.
fn is_only_type(n: &NestedValueValidation, t: &str) -> bool {
    *n == NestedValueValidation {
        forbidden: Forbidden {
            type_: t.to_string(),
            ..Forbidden::default()
        },
        ..NestedValueValidation::default()
    }
}

fn is_int_or_string_pair(any_of: &[NestedValueValidation]) -> bool {
    matches!(any_of, [a, b] if is_only_type(a, "integer") && is_only_type(b, "string"))
}

/// The first allowed spelling of int-or-string: `anyOf: [{type: integer}, {type: string}]`.
fn is_int_or_string_any_of(v: &ValueValidation) -> bool {
    is_int_or_string_pair(&v.any_of)
}

/// The second: that anyOf as the first allOf entry.
fn is_int_or_string_all_of(v: &ValueValidation) -> bool {
    v.all_of
        .first()
        .is_some_and(|first| is_int_or_string_pair(&first.value_validation.any_of))
}

fn value_validation(
    v: &ValueValidation,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !skip_any_of {
        for (i, n) in v.any_of.iter().enumerate() {
            errs.extend(nested(n, false, &index(&child(path, "anyOf"), i)));
        }
    }
    for (i, n) in v.all_of.iter().enumerate() {
        let skip = skip_first_all_of_any_of && i == 0;
        errs.extend(nested(n, skip, &index(&child(path, "allOf"), i)));
    }
    for (i, n) in v.one_of.iter().enumerate() {
        errs.extend(nested(n, false, &index(&child(path, "oneOf"), i)));
    }
    if let Some(n) = &v.not {
        errs.extend(nested(n, false, &child(path, "not")));
    }
    if let Some(p) = &v.pattern
        && let Err(e) = p.regex()
    {
        errs.push(FieldError::invalid(
            child(path, "pattern"),
            p.source.as_str(),
            format!("must be a valid regular expression, but isn't: {e}"),
        ));
    }
    errs
}

/// A schema under a junctor may only check values.
fn nested(v: &NestedValueValidation, skip_any_of: bool, path: &str) -> Vec<FieldError> {
    let mut errs = value_validation(&v.value_validation, skip_any_of, false, path);
    if let Some(items) = &v.items {
        errs.extend(nested(items, false, &child(path, "items")));
    }
    for (k, p) in &v.properties {
        errs.extend(nested(p, false, &properties_key(path, k)));
    }
    if v.additional_properties.is_some() {
        errs.push(FieldError::forbidden(
            child(path, "additionalProperties"),
            "must be undefined to be structural",
        ));
    }
    errs.extend(forbidden(&v.forbidden, path));
    if !v.x_validations.is_empty() {
        errs.push(FieldError::forbidden(
            child(path, "x-kubernetes-validations"),
            "must be empty to be structural",
        ));
    }
    // Reasoning about metadata in a junctor could restrict it in ways the server does not know.
    if v.properties.contains_key("metadata") {
        errs.push(FieldError::forbidden(
            properties_key(path, "metadata"),
            "must not be specified in a nested context",
        ));
    }
    errs
}

fn forbidden(f: &Forbidden, path: &str) -> Vec<FieldError> {
    let checks: [(bool, &str, &str); 11] = [
        (
            !f.type_.is_empty(),
            "type",
            "must be empty to be structural",
        ),
        (
            f.default.is_some(),
            "default",
            "must be undefined to be structural",
        ),
        (
            !f.title.is_empty(),
            "title",
            "must be empty to be structural",
        ),
        (
            !f.description.is_empty(),
            "description",
            "must be empty to be structural",
        ),
        (f.nullable, "nullable", "must be false to be structural"),
        (
            f.preserve_unknown_fields,
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        ),
        (
            f.embedded_resource,
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        ),
        (
            f.int_or_string,
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        ),
        (
            !f.list_map_keys.is_empty(),
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        ),
        (
            f.list_type.is_some(),
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        ),
        (
            f.map_type.is_some(),
            "x-kubernetes-map-type",
            "must be undefined to be structural",
        ),
    ];
    checks
        .iter()
        .filter(|(bad, _, _)| *bad)
        .map(|(_, name, detail)| FieldError::forbidden(child(path, name), *detail))
        .collect()
}

// ---------------------------------------------------------------------------
// Completeness: a value check under a junctor must apply to a value the
// structure knows, or it would check fields that pruning already dropped.

fn completeness(
    v: &ValueValidation,
    s: &Structural,
    s_path: &str,
    v_path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(n) = &v.not {
        errs.extend(nested_completeness(
            n,
            Some(s),
            s_path,
            &child(v_path, "not"),
        ));
    }
    for (name, list) in [
        ("allOf", &v.all_of),
        ("anyOf", &v.any_of),
        ("oneOf", &v.one_of),
    ] {
        for (i, n) in list.iter().enumerate() {
            errs.extend(nested_completeness(
                n,
                Some(s),
                s_path,
                &index(&child(v_path, name), i),
            ));
        }
    }
    errs
}

fn nested_completeness(
    v: &NestedValueValidation,
    s: Option<&Structural>,
    s_path: &str,
    v_path: &str,
) -> Vec<FieldError> {
    let Some(s) = s else {
        return vec![FieldError::required(
            s_path,
            format!("because it is defined in {v_path}"),
        )];
    };
    let mut errs = completeness(&v.value_validation, s, s_path, v_path);
    if let Some(items) = &v.items {
        errs.extend(nested_completeness(
            items,
            s.items.as_deref(),
            &child(s_path, "items"),
            &child(v_path, "items"),
        ));
    }
    for (k, vf) in &v.properties {
        let sk = properties_key(s_path, k);
        let vk = properties_key(v_path, k);
        match s.properties.get(k) {
            Some(sf) => errs.extend(nested_completeness(vf, Some(sf), &sk, &vk)),
            None => errs.push(FieldError::required(
                sk,
                format!("because it is defined in {vk}"),
            )),
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::super::structural;
    use super::*;
    use serde_json::json;

    fn shown(schema: serde_json::Value) -> Vec<String> {
        validate(&structural(schema), "openAPIV3Schema")
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn structural_schemas_pass() {
        let ok = [
            json!({"type": "object"}),
            json!({"type": "object", "properties": {
                "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}},
                "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                "spec": {"type": "object", "properties": {
                    "a": {"type": "string"},
                    "port": {"x-kubernetes-int-or-string": true,
                             "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "port2": {"x-kubernetes-int-or-string": true,
                              "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]},
                                        {"maxLength": 3}]},
                    "any": {"x-kubernetes-preserve-unknown-fields": true},
                    "m": {"type": "object", "additionalProperties": {"type": "string"}},
                    "res": {"type": "object", "x-kubernetes-embedded-resource": true,
                            "x-kubernetes-preserve-unknown-fields": true}
                },
                "anyOf": [{"required": ["a"]}, {"properties": {"a": {"pattern": "^x"}}}]}
            }}),
        ];
        for schema in ok {
            assert_eq!(shown(schema.clone()), Vec::<String>::new(), "{schema}");
        }
    }

    #[test]
    fn violations_read_like_upstream() {
        let p = "openAPIV3Schema";
        let cases = [
            (
                json!({}),
                vec![format!(
                    "{p}.type: Required value: must not be empty at the root"
                )],
            ),
            (
                json!({"type": "string"}),
                vec![format!(
                    "{p}.type: Invalid value: \"string\": must be object at the root"
                )],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "array"}}}),
                vec![format!(
                    "{p}.properties[a].items: Required value: must be specified"
                )],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "array", "items": {}}}}),
                vec![format!(
                    "{p}.properties[a].items.type: Required value: must not be empty for specified array items"
                )],
            ),
            (
                json!({"type": "object", "additionalProperties": {"type": "string"}}),
                vec![format!(
                    "{p}.additionalProperties: Forbidden: must not be used at the root"
                )],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "object",
                    "anyOf": [{"type": "string", "default": "x", "nullable": true,
                               "x-kubernetes-list-type": "set"}]}}}),
                vec![
                    format!(
                        "{p}.properties[a].anyOf[0].default: Forbidden: must be undefined to be structural"
                    ),
                    format!(
                        "{p}.properties[a].anyOf[0].nullable: Forbidden: must be false to be structural"
                    ),
                    format!(
                        "{p}.properties[a].anyOf[0].type: Forbidden: must be empty to be structural"
                    ),
                    format!(
                        "{p}.properties[a].anyOf[0].x-kubernetes-list-type: Forbidden: must be undefined to be structural"
                    ),
                ],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "object",
                    "allOf": [{"properties": {"b": {"maxLength": 1}, "metadata": {}}}]}}}),
                // Completeness is only checked for the root's junctors, as upstream.
                vec![format!(
                    "{p}.properties[a].allOf[0].properties[metadata]: Forbidden: must not be specified in a nested context"
                )],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "object"}},
                    "anyOf": [{"properties": {"a": {"properties": {"b": {"maxLength": 1}}}, "c": {}}}],
                    "not": {"items": {}}}),
                vec![
                    format!("{p}.items: Required value: because it is defined in {p}.not.items"),
                    format!(
                        "{p}.properties[a].properties[b]: Required value: because it is defined in {p}.anyOf[0].properties[a].properties[b]"
                    ),
                    format!(
                        "{p}.properties[c]: Required value: because it is defined in {p}.anyOf[0].properties[c]"
                    ),
                ],
            ),
            (
                json!({"type": "object", "properties": {"metadata": {"type": "object",
                    "properties": {"labels": {"type": "object"}}}}}),
                vec![format!(
                    "{p}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
                )],
            ),
            (
                json!({"type": "object", "properties": {"kind": {"type": "integer"}, "metadata": {"type": "string"}}}),
                vec![
                    format!(
                        "{p}.properties[kind].type: Invalid value: \"integer\": must be string"
                    ),
                    format!(
                        "{p}.properties[metadata].type: Invalid value: \"string\": must be object"
                    ),
                ],
            ),
            (
                json!({"type": "object", "properties": {"r": {"type": "object", "x-kubernetes-embedded-resource": true}}}),
                vec![format!(
                    "{p}.properties[r].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"
                )],
            ),
            (
                json!({"type": "object", "properties": {"r": {"type": "string", "x-kubernetes-embedded-resource": true,
                    "x-kubernetes-preserve-unknown-fields": true}}}),
                vec![format!(
                    "{p}.properties[r].type: Invalid value: \"string\": must be object if x-kubernetes-embedded-resource is true"
                )],
            ),
            (
                json!({"type": "object", "properties": {"i": {"x-kubernetes-int-or-string": true,
                    "x-kubernetes-preserve-unknown-fields": true}}}),
                vec![format!(
                    "{p}.properties[i].x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if x-kubernetes-int-or-string is true"
                )],
            ),
            (
                // The int-or-string anyOf is only exempt in exactly upstream's spelling.
                json!({"type": "object", "properties": {"i": {"x-kubernetes-int-or-string": true,
                    "anyOf": [{"type": "string"}, {"type": "integer"}]}}}),
                vec![
                    format!(
                        "{p}.properties[i].anyOf[0].type: Forbidden: must be empty to be structural"
                    ),
                    format!(
                        "{p}.properties[i].anyOf[1].type: Forbidden: must be empty to be structural"
                    ),
                ],
            ),
            (
                json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "a("}}}),
                vec![format!(
                    "{p}.properties[s].pattern: Invalid value: \"a(\": must be a valid regular expression, but isn't: error parsing regexp: unclosed group"
                )],
            ),
        ];
        for (schema, want) in cases {
            assert_eq!(shown(schema.clone()), want, "{schema}");
        }
    }

    #[test]
    fn root_metadata_may_restrict_names() {
        let schema = json!({"type": "object", "properties": {"metadata": {"type": "object",
            "properties": {"name": {"type": "string", "pattern": "^a"}, "generateName": {"type": "string"}}}}});
        assert!(shown(schema).is_empty());
    }
}
