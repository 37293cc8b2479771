//! What CRD validation checks on the raw `openAPIV3Schema` (upstream's
//! ValidateCustomResourceDefinitionOpenAPISchema and specStandardValidatorV3
//! in pkg/apis/apiextensions/validation), without compiling CEL rules.
//!
//! These are the rules for a new CRD: upstream relaxes some of them on
//! update when the stored CRD already broke them (ratcheting); that is the
//! caller's business.

use crate::error::FieldError;
use crate::registry::validation::{child, index, key};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool, JSONSchemaPropsOrStringArray,
    ValidationRule,
};
use serde_json::{Value, json};

const OPENAPI_V3_TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];
const META_FIELDS: [&str; 3] = ["metadata", "kind", "apiVersion"];
const VALIDATION_REASONS: [&str; 4] = [
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

/// What the parent decided for the subtree.
#[derive(Clone, Default)]
struct Ctx {
    /// Why defaults are forbidden here, if they are.
    no_defaults: Option<String>,
    inside_resource_meta: bool,
}

/// Every OpenAPI problem of a CRD schema rooted at `path`.
pub fn validate(schema: &JSONSchemaProps, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if schema.nullable == Some(true) {
        errs.push(FieldError::forbidden(
            child(path, "nullable"),
            "nullable cannot be true at the root",
        ));
    }
    errs.extend(node(schema, path, &Ctx::default(), true));
    errs
}

fn node(s: &JSONSchemaProps, path: &str, ctx: &Ctx, is_root: bool) -> Vec<FieldError> {
    let mut errs = standard(s, path, ctx);
    if s.unique_items == Some(true) {
        errs.push(FieldError::forbidden(
            child(path, "uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    errs.extend(children(s, path, ctx, is_root));
    if s.x_kubernetes_preserve_unknown_fields == Some(false) {
        errs.push(FieldError::invalid(
            child(path, "x-kubernetes-preserve-unknown-fields"),
            false,
            "must be true or undefined",
        ));
    }
    errs.extend(map_type(s, path));
    errs.extend(list_type(s, path));
    errs.extend(list_map_keys(s, path));
    errs.extend(map_list_keys_and_sets(s, path));
    errs.extend(rules(
        s.x_kubernetes_validations.as_deref().unwrap_or(&[]),
        path,
    ));
    errs
}

/// The OpenAPI features Kubernetes does not take.
fn standard(s: &JSONSchemaProps, path: &str, ctx: &Ctx) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let type_ = s.type_.as_deref().unwrap_or("");
    if !type_.is_empty() && !OPENAPI_V3_TYPES.contains(&type_) {
        errs.push(FieldError::not_supported(
            child(path, "type"),
            type_,
            &OPENAPI_V3_TYPES,
        ));
    }
    if s.default.is_some()
        && let Some(reason) = &ctx.no_defaults
    {
        errs.push(FieldError::forbidden(
            child(path, "default"),
            format!("must not be set {reason}").trim_end(),
        ));
    }
    let unsupported = [
        (s.id.as_deref().is_some_and(|i| !i.is_empty()), "id"),
        (s.additional_items.is_some(), "additionalItems"),
        (
            s.pattern_properties.as_ref().is_some_and(|p| !p.is_empty()),
            "patternProperties",
        ),
        (
            s.definitions.as_ref().is_some_and(|d| !d.is_empty()),
            "definitions",
        ),
        (s.dependencies.is_some(), "dependencies"),
        (s.ref_path.is_some(), "$ref"),
    ];
    for (_, name) in unsupported.iter().filter(|(set, _)| *set) {
        errs.push(FieldError::forbidden(
            child(path, name),
            format!("{name} is not supported"),
        ));
    }
    if type_ == "null" {
        errs.push(FieldError::forbidden(
            child(path, "type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if matches!(&s.items, Some(JSONSchemaPropsOrArray::Schemas(list)) if !list.is_empty()) {
        errs.push(FieldError::forbidden(
            child(path, "items"),
            "items must be a schema object and not an array",
        ));
    }
    if ctx.inside_resource_meta && s.x_kubernetes_embedded_resource == Some(true) {
        errs.push(FieldError::forbidden(
            child(path, "x-kubernetes-embedded-resource"),
            "must not be used inside of resource meta",
        ));
    }
    errs
}

fn children(s: &JSONSchemaProps, path: &str, ctx: &Ctx, is_root: bool) -> Vec<FieldError> {
    let mut errs = additional_properties(s, path, ctx);
    let embedded = s.x_kubernetes_embedded_resource == Some(true);
    for (name, prop) in s.properties.iter().flatten() {
        let mut sub = ctx.clone();
        if (is_root || embedded) && META_FIELDS.contains(&name.as_str()) {
            sub.inside_resource_meta = true;
            if is_root {
                sub.no_defaults = Some(format!("in top-level {name}"));
            }
        }
        errs.extend(node(
            prop,
            &key(&child(path, "properties"), name),
            &sub,
            false,
        ));
    }
    if let Some(not) = &s.not {
        errs.extend(node(not, &child(path, "not"), ctx, false));
    }
    for (name, list) in [
        ("allOf", &s.all_of),
        ("oneOf", &s.one_of),
        ("anyOf", &s.any_of),
    ] {
        for (i, sub) in list.iter().flatten().enumerate() {
            errs.extend(node(sub, &index(&child(path, name), i), ctx, false));
        }
    }
    for (name, sub) in s.definitions.iter().flatten() {
        errs.extend(node(
            sub,
            &key(&child(path, "definitions"), name),
            ctx,
            false,
        ));
    }
    match &s.items {
        Some(JSONSchemaPropsOrArray::Schema(one)) => {
            errs.extend(node(one, &child(path, "items"), ctx, false));
        }
        Some(JSONSchemaPropsOrArray::Schemas(list)) => {
            for (i, sub) in list.iter().enumerate() {
                errs.extend(node(sub, &index(&child(path, "items"), i), ctx, false));
            }
        }
        None => {}
    }
    for (name, dep) in s.dependencies.iter().flatten() {
        if let JSONSchemaPropsOrStringArray::Schema(sub) = dep {
            errs.extend(node(
                sub,
                &key(&child(path, "dependencies"), name),
                ctx,
                false,
            ));
        }
    }
    errs
}

/// `properties` describe structs and `additionalProperties` maps; both at
/// once would contradict the convention of ignoring unknown fields.
fn additional_properties(s: &JSONSchemaProps, path: &str, ctx: &Ctx) -> Vec<FieldError> {
    let Some(ap) = &s.additional_properties else {
        return Vec::new();
    };
    let ap_path = child(path, "additionalProperties");
    let mut errs = Vec::new();
    let has_properties = s.properties.as_ref().is_some_and(|p| !p.is_empty());
    if has_properties && !matches!(ap, JSONSchemaPropsOrBool::Bool(true)) {
        errs.push(FieldError::forbidden(
            &ap_path,
            "additionalProperties and properties are mutual exclusive",
        ));
    }
    if let JSONSchemaPropsOrBool::Schema(sub) = ap {
        let mut sub_ctx = ctx.clone();
        if ctx.inside_resource_meta {
            // Pruning a default without the actual keys would be ambiguous.
            sub_ctx.no_defaults =
                Some("inside additionalProperties applying to object metadata".into());
        }
        errs.extend(node(sub, &ap_path, &sub_ctx, false));
    }
    errs
}

fn map_type(s: &JSONSchemaProps, path: &str) -> Vec<FieldError> {
    let Some(mt) = &s.x_kubernetes_map_type else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    let type_ = s.type_.as_deref().unwrap_or("");
    let msg = "must be object if x-kubernetes-map-type is specified";
    if type_ != "object" {
        errs.push(type_error(path, type_, msg));
    }
    if mt != "atomic" && mt != "granular" {
        errs.push(FieldError::not_supported(
            child(path, "x-kubernetes-map-type"),
            mt.as_str(),
            &["atomic", "granular"],
        ));
    }
    errs
}

/// Required when `type` is missing, Invalid when it is something else.
fn type_error(path: &str, type_: &str, msg: &str) -> FieldError {
    if type_.is_empty() {
        FieldError::required(child(path, "type"), msg)
    } else {
        FieldError::invalid(child(path, "type"), type_, msg)
    }
}

fn item_schema(s: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match &s.items {
        Some(JSONSchemaPropsOrArray::Schema(one)) => Some(one),
        _ => None,
    }
}

fn list_type(s: &JSONSchemaProps, path: &str) -> Vec<FieldError> {
    let Some(lt) = &s.x_kubernetes_list_type else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    let type_ = s.type_.as_deref().unwrap_or("");
    if type_ != "array" {
        errs.push(type_error(
            path,
            type_,
            "must be array if x-kubernetes-list-type is specified",
        ));
    } else if lt == "set"
        && let Some(is) = item_schema(s)
    {
        errs.extend(atomic_set_items(is, path));
    }
    if !["atomic", "set", "map"].contains(&lt.as_str()) {
        errs.push(FieldError::not_supported(
            child(path, "x-kubernetes-list-type"),
            lt.as_str(),
            &["atomic", "set", "map"],
        ));
    }
    errs
}

/// Set elements are compared whole, so compound elements must be atomic.
fn atomic_set_items(is: &JSONSchemaProps, path: &str) -> Vec<FieldError> {
    let msg = "must be atomic as item of a list with x-kubernetes-list-type=set";
    let items = child(path, "items");
    // Upstream shows the items' list type as the value in both cases.
    let shown = is
        .x_kubernetes_list_type
        .clone()
        .map_or(Value::Null, Value::from);
    match is.type_.as_deref() {
        Some("array")
            if is
                .x_kubernetes_list_type
                .as_deref()
                .is_some_and(|t| t != "atomic") =>
        {
            vec![FieldError::invalid(
                child(&items, "x-kubernetes-list-type"),
                shown,
                msg,
            )]
        }
        Some("object") if is.x_kubernetes_map_type.as_deref() != Some("atomic") => {
            vec![FieldError::invalid(
                child(&items, "x-kubernetes-map-type"),
                shown,
                msg,
            )]
        }
        _ => Vec::new(),
    }
}

fn list_map_keys(s: &JSONSchemaProps, path: &str) -> Vec<FieldError> {
    let keys = s.x_kubernetes_list_map_keys.as_deref().unwrap_or(&[]);
    let lt = s.x_kubernetes_list_type.as_deref();
    let mut errs = Vec::new();
    let lt_path = child(path, "x-kubernetes-list-type");
    let msg = "must be map if x-kubernetes-list-map-keys is non-empty";
    match lt {
        _ if keys.is_empty() => {}
        None => errs.push(FieldError::required(&lt_path, msg)),
        Some(t) if t != "map" => errs.push(FieldError::invalid(&lt_path, t, msg)),
        Some(_) => {}
    }
    if lt == Some("map") {
        errs.extend(map_list(s, keys, path));
    }
    errs
}

fn map_list(s: &JSONSchemaProps, keys: &[String], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let items_path = child(path, "items");
    let keys_path = child(path, "x-kubernetes-list-map-keys");
    if keys.is_empty() {
        errs.push(FieldError::required(
            &keys_path,
            "must not be empty if x-kubernetes-list-type is map",
        ));
    }
    let is = match &s.items {
        None => {
            errs.push(FieldError::required(
                &items_path,
                "must have a schema if x-kubernetes-list-type is map",
            ));
            return errs;
        }
        Some(JSONSchemaPropsOrArray::Schemas(list)) => {
            errs.push(FieldError::invalid(
                &items_path,
                serde_json::to_value(list).unwrap_or(Value::Null),
                "must only have a single schema if x-kubernetes-list-type is map",
            ));
            return errs;
        }
        Some(JSONSchemaPropsOrArray::Schema(one)) => one,
    };
    let item_type = is.type_.as_deref().unwrap_or("");
    if item_type != "object" {
        errs.push(FieldError::invalid(
            child(&items_path, "type"),
            item_type,
            "must be object if parent array's x-kubernetes-list-type is map",
        ));
        return errs;
    }
    let mut seen = std::collections::BTreeSet::new();
    for k in keys {
        match is.properties.as_ref().and_then(|p| p.get(k)) {
            Some(p) if matches!(p.type_.as_deref(), Some("array" | "object")) => {
                // Upstream shows the item's type ("object") as the value.
                errs.push(FieldError::invalid(
                    child(&key(&child(&items_path, "properties"), k), "type"),
                    item_type,
                    "must be a scalar type if parent array's x-kubernetes-list-type is map",
                ));
            }
            Some(_) => {}
            None => errs.push(FieldError::invalid(
                &keys_path,
                json!(keys),
                "entries must all be names of item properties",
            )),
        }
        if !seen.insert(k) {
            errs.push(FieldError::invalid(
                &keys_path,
                json!(keys),
                "must not contain duplicate entries",
            ));
        }
    }
    errs
}

/// Elements of sets and maps are identified by value, so they cannot be
/// null, and map keys must always be there.
fn map_list_keys_and_sets(s: &JSONSchemaProps, path: &str) -> Vec<FieldError> {
    let (Some(is), Some(lt)) = (item_schema(s), s.x_kubernetes_list_type.as_deref()) else {
        return Vec::new();
    };
    if lt != "set" && lt != "map" {
        return Vec::new();
    }
    let items_path = child(path, "items");
    let mut errs = Vec::new();
    if is.nullable == Some(true) {
        errs.push(FieldError::forbidden(
            child(&items_path, "nullable"),
            format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
        ));
    }
    if lt != "map" {
        return errs;
    }
    let required = is.required.as_deref().unwrap_or(&[]);
    for k in s.x_kubernetes_list_map_keys.iter().flatten() {
        let Some(p) = is.properties.as_ref().and_then(|p| p.get(k)) else {
            continue; // reported by map_list
        };
        let p_path = key(&child(&items_path, "properties"), k);
        if !required.contains(k) && p.default.is_none() {
            errs.push(FieldError::required(
                child(&p_path, "default"),
                "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
            ));
        }
        if p.nullable == Some(true) {
            errs.push(FieldError::forbidden(
                child(&p_path, "nullable"),
                "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
            ));
        }
    }
    errs
}

fn has_newlines(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

/// The static part of `x-kubernetes-validations` checks; compiling the rules
/// (and checking `fieldPath` against the schema) is the CEL code's job.
fn rules(list: &[ValidationRule], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let at = |f: &str| child(&index(&child(path, "x-kubernetes-validations"), i), f);
        let rule = r.rule.trim();
        let message = r.message.as_deref().unwrap_or("");
        let msg = message.trim();
        if rule.is_empty() {
            errs.push(FieldError::required(at("rule"), "rule is not specified"));
        } else if !message.is_empty() && msg.is_empty() {
            errs.push(FieldError::invalid(
                at("message"),
                message,
                "must be non-empty if specified",
            ));
        } else if has_newlines(msg) {
            errs.push(FieldError::invalid(
                at("message"),
                message,
                "must not contain line breaks",
            ));
        } else if has_newlines(rule) && msg.is_empty() {
            errs.push(FieldError::required(
                at("message"),
                "message must be specified if rule contains line breaks",
            ));
        }
        let expr = r.message_expression.as_deref().unwrap_or("");
        if !expr.is_empty() && expr.trim().is_empty() {
            errs.push(FieldError::required(
                at("messageExpression"),
                "messageExpression must be non-empty if specified",
            ));
        }
        if let Some(reason) = &r.reason
            && !VALIDATION_REASONS.contains(&reason.as_str())
        {
            errs.push(FieldError::not_supported(
                at("reason"),
                reason.as_str(),
                &VALIDATION_REASONS,
            ));
        }
        let fp = r.field_path.as_deref().unwrap_or("");
        if !fp.is_empty() && fp.trim().is_empty() {
            errs.push(FieldError::invalid(
                at("fieldPath"),
                fp,
                "must be non-empty if specified",
            ));
        }
        if has_newlines(fp) {
            errs.push(FieldError::invalid(
                at("fieldPath"),
                fp,
                "must not contain line breaks",
            ));
        }
    }
    errs
}

/// The JSON fields upstream allows at the root when the status subresource
/// is on (so that `properties[status]` alone carries all of status' checks),
/// in upstream's Go field order, with upstream's Go names for the message.
const ROOT_FIELDS: [(&str, &str); 44] = [
    ("id", ""),
    ("$schema", ""),
    ("$ref", ""),
    ("description", "Description"),
    ("type", "Type"),
    ("format", "Format"),
    ("title", "Title"),
    ("default", ""),
    ("maximum", "Maximum"),
    ("exclusiveMaximum", "ExclusiveMaximum"),
    ("minimum", "Minimum"),
    ("exclusiveMinimum", "ExclusiveMinimum"),
    ("maxLength", "MaxLength"),
    ("minLength", "MinLength"),
    ("pattern", "Pattern"),
    ("maxItems", "MaxItems"),
    ("minItems", "MinItems"),
    ("uniqueItems", "UniqueItems"),
    ("multipleOf", "MultipleOf"),
    ("enum", ""),
    ("maxProperties", ""),
    ("minProperties", ""),
    ("required", "Required"),
    ("items", "Items"),
    ("allOf", ""),
    ("oneOf", ""),
    ("anyOf", ""),
    ("not", ""),
    ("properties", "Properties"),
    ("additionalProperties", ""),
    ("patternProperties", ""),
    ("dependencies", ""),
    ("additionalItems", ""),
    ("definitions", ""),
    ("externalDocs", "ExternalDocs"),
    ("example", "Example"),
    ("nullable", ""),
    (
        "x-kubernetes-preserve-unknown-fields",
        "XPreserveUnknownFields",
    ),
    ("x-kubernetes-embedded-resource", ""),
    ("x-kubernetes-int-or-string", ""),
    ("x-kubernetes-list-map-keys", ""),
    ("x-kubernetes-list-type", ""),
    ("x-kubernetes-map-type", ""),
    ("x-kubernetes-validations", "XValidations"),
];

/// Fields that are pointers in upstream's internal type: set means non-zero.
const POINTER_FIELDS: [&str; 11] = [
    "$ref",
    "default",
    "example",
    "items",
    "not",
    "additionalProperties",
    "additionalItems",
    "externalDocs",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
];

/// Go's zero values: a field that is "not set" in upstream's internal type.
fn is_zero(field: &str, v: &Value) -> bool {
    if POINTER_FIELDS.contains(&field) {
        return v.is_null();
    }
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) => false,
    }
}

/// Upstream's root restriction for CRDs with the status subresource; the
/// caller runs it for such versions, with the same `path` as [`validate`].
/// It stops at the first offending field, as upstream does.
pub fn validate_status_root(schema: &JSONSchemaProps, path: &str) -> Vec<FieldError> {
    let Ok(Value::Object(fields)) = serde_json::to_value(schema) else {
        return Vec::new();
    };
    let allowed: Vec<&str> = ROOT_FIELDS
        .iter()
        .filter(|(_, go)| !go.is_empty())
        .map(|(_, go)| *go)
        .collect();
    for (json_name, go_name) in ROOT_FIELDS {
        let Some(v) = fields.get(json_name).filter(|v| !is_zero(json_name, v)) else {
            continue;
        };
        if json_name == "type" {
            if v != "object" {
                return vec![FieldError::invalid(
                    child(path, "type"),
                    v.clone(),
                    "only \"object\" is allowed as the type at the root of the schema if the status subresource is enabled",
                )];
            }
            continue;
        }
        if go_name.is_empty() {
            return vec![FieldError::invalid(
                path,
                Value::Object(fields.clone()),
                format!(
                    "only [{}] fields are allowed at the root of the schema if the status subresource is enabled",
                    allowed.join(" ")
                ),
            )];
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::super::props;
    use super::*;

    fn shown(schema: Value) -> Vec<String> {
        validate(&props(schema), "s")
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn allowed_schemas_pass() {
        let ok = [json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "list": {"type": "array", "x-kubernetes-list-type": "map",
                         "x-kubernetes-list-map-keys": ["name", "port"],
                         "items": {"type": "object", "required": ["name"], "properties": {
                             "name": {"type": "string"},
                             "port": {"type": "integer", "default": 80}}}},
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "m": {"type": "object", "x-kubernetes-map-type": "atomic",
                      "additionalProperties": {"type": "string"}},
                "both": {"type": "object", "properties": {"a": {"type": "string"}},
                         "additionalProperties": true}
            },
            "x-kubernetes-validations": [{"rule": "self.a == 1", "reason": "FieldValueForbidden"}]}
        }})];
        for schema in ok {
            assert_eq!(shown(schema.clone()), Vec::<String>::new(), "{schema}");
        }
    }

    #[test]
    fn rejections_read_like_upstream() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"type": "object", "nullable": true}),
                vec!["s.nullable: Forbidden: nullable cannot be true at the root"],
            ),
            (
                json!({"type": "null"}),
                vec![
                    "s.type: Unsupported value: \"null\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\"",
                    "s.type: Forbidden: type cannot be set to null, use nullable as an alternative",
                ],
            ),
            (
                json!({"type": "object", "properties": {"metadata": {"type": "object", "default": {}}}}),
                vec![
                    "s.properties[metadata].default: Forbidden: must not be set in top-level metadata",
                ],
            ),
            (
                json!({"type": "object", "properties": {"r": {"type": "object", "x-kubernetes-embedded-resource": true,
                "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"metadata": {"type": "object", "properties": {
                    "labels": {"type": "object", "additionalProperties": {"type": "string", "default": "x"}},
                    "x": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}}}}}}),
                vec![
                    "s.properties[r].properties[metadata].properties[labels].additionalProperties.default: Forbidden: must not be set inside additionalProperties applying to object metadata",
                    "s.properties[r].properties[metadata].properties[x].x-kubernetes-embedded-resource: Forbidden: must not be used inside of resource meta",
                ],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "object",
                "properties": {"b": {"type": "string"}}, "additionalProperties": {"type": "string"}}}}),
                vec![
                    "s.properties[a].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
                ],
            ),
            (
                json!({"type": "object", "properties": {"a": {"$ref": "#/x", "patternProperties": {"x": {}}}}}),
                vec![
                    "s.properties[a].patternProperties: Forbidden: patternProperties is not supported",
                    "s.properties[a].$ref: Forbidden: $ref is not supported",
                ],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "string", "x-kubernetes-preserve-unknown-fields": false}}}),
                vec![
                    "s.properties[a].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined",
                ],
            ),
            (
                json!({"type": "object", "properties": {"a": {"x-kubernetes-map-type": "weird"}}}),
                vec![
                    "s.properties[a].type: Required value: must be object if x-kubernetes-map-type is specified",
                    "s.properties[a].x-kubernetes-map-type: Unsupported value: \"weird\": supported values: \"atomic\", \"granular\"",
                ],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "string", "x-kubernetes-list-type": "bag"}}}),
                vec![
                    "s.properties[a].type: Invalid value: \"string\": must be array if x-kubernetes-list-type is specified",
                    "s.properties[a].x-kubernetes-list-type: Unsupported value: \"bag\": supported values: \"atomic\", \"set\", \"map\"",
                ],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "array", "x-kubernetes-list-type": "set",
                "items": {"type": "object", "nullable": true}}}}),
                vec![
                    "s.properties[a].items.x-kubernetes-map-type: Invalid value: null: must be atomic as item of a list with x-kubernetes-list-type=set",
                    "s.properties[a].items.nullable: Forbidden: cannot be nullable when x-kubernetes-list-type is set",
                ],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "array", "x-kubernetes-list-map-keys": ["k"],
                "items": {"type": "object", "properties": {"k": {"type": "string"}}}}}}),
                vec![
                    "s.properties[a].x-kubernetes-list-type: Required value: must be map if x-kubernetes-list-map-keys is non-empty",
                ],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["k", "o", "z", "k"],
                "items": {"type": "object", "required": ["k"], "properties": {
                    "k": {"type": "string"}, "o": {"type": "object", "nullable": true}}}}}}),
                vec![
                    "s.properties[a].items.properties[o].type: Invalid value: \"object\": must be a scalar type if parent array's x-kubernetes-list-type is map",
                    "s.properties[a].x-kubernetes-list-map-keys: Invalid value: [\"k\",\"o\",\"z\",\"k\"]: entries must all be names of item properties",
                    "s.properties[a].x-kubernetes-list-map-keys: Invalid value: [\"k\",\"o\",\"z\",\"k\"]: must not contain duplicate entries",
                    "s.properties[a].items.properties[o].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                    "s.properties[a].items.properties[o].nullable: Forbidden: this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                ],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "array", "x-kubernetes-list-type": "map"}}}),
                vec![
                    "s.properties[a].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map",
                    "s.properties[a].items: Required value: must have a schema if x-kubernetes-list-type is map",
                ],
            ),
            (
                json!({"type": "object", "x-kubernetes-validations": [
                {"rule": " "}, {"rule": "a", "message": " "}, {"rule": "a\nb"},
                {"rule": "a", "reason": "Nope", "fieldPath": "x\ny"}]}),
                vec![
                    "s.x-kubernetes-validations[0].rule: Required value: rule is not specified",
                    "s.x-kubernetes-validations[1].message: Invalid value: \" \": must be non-empty if specified",
                    "s.x-kubernetes-validations[2].message: Required value: message must be specified if rule contains line breaks",
                    "s.x-kubernetes-validations[3].reason: Unsupported value: \"Nope\": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\"",
                    "s.x-kubernetes-validations[3].fieldPath: Invalid value: \"x\ny\": must not contain line breaks",
                ],
            ),
        ];
        for (schema, want) in cases {
            assert_eq!(shown(schema.clone()), want, "{schema}");
        }
    }

    #[test]
    fn status_root_allows_only_some_fields() {
        let ok = props(
            json!({"type": "object", "description": "d", "properties": {}, "x-kubernetes-preserve-unknown-fields": true}),
        );
        assert!(validate_status_root(&ok, "s").is_empty());
        let bad_type = props(json!({"type": "array"}));
        assert_eq!(
            validate_status_root(&bad_type, "s")[0].to_string(),
            "s.type: Invalid value: \"array\": only \"object\" is allowed as the type at the root of the schema if the status subresource is enabled"
        );
        let extra = props(json!({"type": "object", "anyOf": [{"required": ["a"]}]}));
        let errs = validate_status_root(&extra, "s");
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .detail
                .starts_with("only [Description Type Format Title Maximum"),
            "{}",
            errs[0].detail
        );
        assert!(errs[0].detail.ends_with("XPreserveUnknownFields XValidations] fields are allowed at the root of the schema if the status subresource is enabled"));
    }
}
