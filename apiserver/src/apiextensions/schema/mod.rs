//! Structural schemas of CustomResourceDefinitions (upstream's
//! `apiextensions-apiserver/pkg/apiserver/schema`).
//!
//! A CRD's `openAPIV3Schema` is turned into a [`Structural`] once, when the
//! CRD is written ([`Structural::new`] runs every schema check upstream runs
//! then), and the custom resources of that CRD are then handled with it:
//!
//! 1. [`pruning::prune`] drops fields the schema does not know (its result
//!    feeds the `unknown field "..."` warnings, see [`unknown_field_warnings`]),
//! 2. [`defaulting::prune_non_nullable_nulls`] drops nulls nobody asked for,
//! 3. [`objectmeta::coerce`] normalises embedded `metadata`,
//! 4. [`defaulting::default`] fills in `default`s,
//! 5. [`validation::validate`] checks the result against the schema.
//!
//! The order is upstream's (decoding does 1-3, the defaulter 4, the strategy 5).

pub mod convert;
pub mod crd_checks;
pub mod defaulting;
pub mod formats;
pub mod invariants;
pub mod listtype;
pub mod objectmeta;
pub mod pruning;
pub mod validation;

use crate::error::FieldError;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    ExternalDocumentation, JSONSchemaProps, ValidationRule,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// The structural form of a schema: every node says what it is (`type`),
/// and the logical junctors (allOf/anyOf/oneOf/not) only add value checks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Structural {
    /// `object`, `array`, `string`, `integer`, `number`, `boolean`, or empty
    /// where int-or-string or preserve-unknown-fields make it optional.
    pub type_: String,
    pub description: String,
    pub title: String,
    pub default: Option<Value>,
    pub nullable: bool,
    pub example: Option<Value>,
    pub external_docs: Option<ExternalDocumentation>,

    pub properties: BTreeMap<String, Structural>,
    pub items: Option<Box<Structural>>,
    pub additional_properties: Option<AdditionalProperties>,

    pub preserve_unknown_fields: bool,
    pub embedded_resource: bool,
    pub int_or_string: bool,
    pub list_type: Option<String>,
    pub list_map_keys: Vec<String>,
    pub map_type: Option<String>,
    /// CEL rules (`x-kubernetes-validations`), evaluated by `apiextensions::cel`.
    pub x_validations: Vec<ValidationRule>,

    pub value_validation: ValueValidation,
}

/// `additionalProperties`: a schema for every other key, or just allowed/forbidden.
#[derive(Clone, Debug, PartialEq)]
pub enum AdditionalProperties {
    Bool(bool),
    Schema(Box<Structural>),
}

impl AdditionalProperties {
    /// The schema of the other keys, if there is one (upstream's `.Structural`).
    pub fn schema(&self) -> Option<&Structural> {
        match self {
            AdditionalProperties::Schema(s) => Some(s),
            AdditionalProperties::Bool(_) => None,
        }
    }
}

/// Every schema field that checks a value without shaping it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValueValidation {
    pub format: String,
    pub maximum: Option<f64>,
    pub exclusive_maximum: bool,
    pub minimum: Option<f64>,
    pub exclusive_minimum: bool,
    pub max_length: Option<i64>,
    pub min_length: Option<i64>,
    pub pattern: Option<Pattern>,
    pub max_items: Option<i64>,
    pub min_items: Option<i64>,
    pub unique_items: bool,
    pub multiple_of: Option<f64>,
    pub enum_: Vec<Value>,
    pub max_properties: Option<i64>,
    pub min_properties: Option<i64>,
    pub required: Vec<String>,
    pub all_of: Vec<NestedValueValidation>,
    pub one_of: Vec<NestedValueValidation>,
    pub any_of: Vec<NestedValueValidation>,
    pub not: Option<Box<NestedValueValidation>>,
}

/// A schema under allOf/anyOf/oneOf/not. It may check values and name
/// properties and items; anything structural it says is kept in
/// `forbidden` only so the structural checks can reject it (and so the
/// int-or-string `anyOf: [{type: integer}, {type: string}]` can be recognised).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NestedValueValidation {
    pub value_validation: ValueValidation,
    pub x_validations: Vec<ValidationRule>,
    pub items: Option<Box<NestedValueValidation>>,
    pub properties: BTreeMap<String, NestedValueValidation>,
    pub additional_properties: Option<Box<NestedValueValidation>>,
    pub forbidden: Forbidden,
}

/// Generic fields and extensions that make a nested schema non-structural.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Forbidden {
    pub type_: String,
    pub description: String,
    pub title: String,
    pub default: Option<Value>,
    pub nullable: bool,
    pub example: Option<Value>,
    pub external_docs: Option<ExternalDocumentation>,
    pub preserve_unknown_fields: bool,
    pub embedded_resource: bool,
    pub int_or_string: bool,
    pub list_type: Option<String>,
    pub list_map_keys: Vec<String>,
    pub map_type: Option<String>,
}

/// A `pattern`, compiled once. Upstream compiles Go (RE2) syntax; RE2's
/// `\d`, `\w`, `\s` and `\b` are ASCII-only, so they are rewritten to ASCII
/// classes before Rust's (Unicode-aware) regex compiles them.
#[derive(Clone, Debug)]
pub struct Pattern {
    pub source: String,
    compiled: Result<regex::Regex, String>,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Pattern {
    pub fn new(source: &str) -> Self {
        let compiled = regex::Regex::new(&re2_to_rust(source)).map_err(|e| regex_error(&e));
        Pattern {
            source: source.to_string(),
            compiled,
        }
    }

    /// The compiled expression, or why it does not compile.
    pub fn regex(&self) -> Result<&regex::Regex, &str> {
        self.compiled.as_ref().map_err(String::as_str)
    }
}

/// Rust's syntax errors draw the pattern over several lines; the last line
/// says what is wrong, which is what fits into a field error.
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text.lines().rev().find(|l| !l.trim().is_empty());
    format!(
        "error parsing regexp: {}",
        last.unwrap_or(&text).trim().trim_start_matches("error: ")
    )
}

/// Rewrites RE2's ASCII-only Perl classes; nested classes make the same
/// spelling work inside and outside brackets (`[\d_]` becomes `[[0-9]_]`).
fn re2_to_rust(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('W') => out.push_str("[^0-9A-Za-z_]"),
            Some('s') => out.push_str(r"[\t\n\f\r ]"),
            Some('S') => out.push_str(r"[^\t\n\f\r ]"),
            Some('b') => out.push_str(r"(?-u:\b)"),
            Some('B') => out.push_str(r"(?-u:\B)"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

impl Structural {
    /// Checks a CRD's `openAPIV3Schema` as upstream's CRD validation does
    /// (the OpenAPI subset Kubernetes allows, structurality, list and map
    /// extensions, defaults that validate and are pruned) and converts it.
    /// `path` is where the schema sits, e.g.
    /// `spec.versions[0].schema.openAPIV3Schema`. CEL rules are not compiled here.
    pub fn new(schema: &JSONSchemaProps, path: &str) -> Result<Structural, Vec<FieldError>> {
        let openapi_errs = crd_checks::validate(schema, path);
        let converted = convert::from_props(schema);
        let mut errs = match &converted {
            Ok(s) => {
                let structural = invariants::validate(s, path);
                if structural.is_empty() {
                    defaulting::validate_defaults(s, path)
                } else {
                    structural
                }
            }
            Err(_) => Vec::new(),
        };
        errs.extend(openapi_errs);
        match converted {
            Ok(s) if errs.is_empty() => Ok(s),
            // Conversion errors repeat what the OpenAPI checks say; upstream
            // shows them only when nothing else is wrong.
            Err(e) if errs.is_empty() => Err(vec![FieldError::invalid(path, "", e)]),
            _ => Err(errs),
        }
    }

    /// Converts without checking (upstream's NewStructural), for a schema
    /// that was checked when its CRD was written. Fails only on what the
    /// structural form cannot hold.
    pub fn from_props(schema: &JSONSchemaProps) -> Result<Structural, String> {
        convert::from_props(schema)
    }
}

/// The warnings upstream returns for pruned fields.
pub fn unknown_field_warnings(pruned: &[String]) -> Vec<String> {
    pruned
        .iter()
        .map(|p| format!("unknown field \"{p}\""))
        .collect()
}

/// Test helper: a schema from JSON, panicking on bad test input only.
#[cfg(test)]
pub(crate) fn props(v: Value) -> JSONSchemaProps {
    serde_json::from_value(v).expect("test schema")
}

/// Test helper: a structural schema from JSON, without the CRD checks.
#[cfg(test)]
pub(crate) fn structural(v: Value) -> Structural {
    convert::from_props(&props(v)).expect("test schema converts")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn re2_classes_are_ascii_only() {
        let cases = [
            (r"^\d+$", "123", true),
            (r"^\d+$", "١٢٣", false), // Arabic-Indic digits are \d in Rust, not in RE2
            (r"^[\d_]+$", "1_2", true),
            (r"^\w+$", "é", false),
            (r"^\s$", "\u{a0}", false),
            (r"^[^\d]+$", "abc", true),
            (r"\\d", r"\d", true), // an escaped backslash stays literal
            (r"^\bfoo\b", "foo bar", true),
        ];
        for (pattern, input, want) in cases {
            let p = Pattern::new(pattern);
            let re = p.regex().expect(pattern);
            assert_eq!(re.is_match(input), want, "{pattern} on {input:?}");
        }
    }

    #[test]
    fn bad_patterns_keep_the_reason() {
        let p = Pattern::new("a(");
        let e = p.regex().expect_err("unclosed group");
        assert!(e.starts_with("error parsing regexp: "), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn new_accepts_a_plain_schema() {
        let s = Structural::new(
            &props(json!({
                "type": "object",
                "properties": {"spec": {"type": "object", "properties": {
                    "replicas": {"type": "integer", "default": 1, "minimum": 0}
                }}}
            })),
            "spec.versions[0].schema.openAPIV3Schema",
        )
        .expect("valid");
        assert_eq!(
            s.properties["spec"].properties["replicas"].default,
            Some(json!(1))
        );
    }

    #[test]
    fn new_reports_every_problem_under_the_base_path() {
        let errs = Structural::new(
            &props(json!({
                "type": "object",
                "properties": {
                    "a": {"properties": {"b": {"type": "string"}}},
                    "c": {"type": "string", "uniqueItems": true}
                }
            })),
            "spec.versions[0].schema.openAPIV3Schema",
        )
        .expect_err("invalid");
        let shown: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [
                "spec.versions[0].schema.openAPIV3Schema.properties[a].type: Required value: must not be empty for specified object fields",
                "spec.versions[0].schema.openAPIV3Schema.properties[c].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            ]
        );
    }

    #[test]
    fn conversion_errors_show_only_alone() {
        // `items` as an array: the OpenAPI check says it, the conversion error is hidden.
        let errs = Structural::new(
            &props(json!({"type": "object", "properties": {"a": {"type": "array", "items": [{"type": "string"}]}}})),
            "s",
        )
        .expect_err("invalid");
        assert_eq!(
            errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            ["s.properties[a].items: Forbidden: items must be a schema object and not an array"]
        );
    }

    #[test]
    fn warnings_quote_each_path() {
        assert_eq!(
            unknown_field_warnings(&["spec.foo".into(), "spec.list[0].bar".into()]),
            [
                "unknown field \"spec.foo\"",
                "unknown field \"spec.list[0].bar\""
            ]
        );
    }

    /// The request path of a custom resource, in upstream's order.
    #[test]
    fn a_custom_resource_goes_through_the_whole_pipeline() {
        let s = Structural::new(
            &props(json!({
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "required": ["image"], "properties": {
                        "image": {"type": "string", "minLength": 1},
                        "replicas": {"type": "integer", "default": 1, "maximum": 5},
                        "ports": {"type": "array", "x-kubernetes-list-type": "map",
                                  "x-kubernetes-list-map-keys": ["name"],
                                  "items": {"type": "object", "required": ["name"], "properties": {
                                      "name": {"type": "string"},
                                      "protocol": {"type": "string", "default": "TCP", "enum": ["TCP", "UDP"]}}}},
                        "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                                     "x-kubernetes-preserve-unknown-fields": true}
                    }}
                }
            })),
            "spec.versions[0].schema.openAPIV3Schema",
        )
        .expect("valid CRD schema");
        let mut cr = json!({
            "apiVersion": "example.com/v1", "kind": "App", "metadata": {"name": "a"},
            "spec": {
                "image": "nginx", "replicas": null, "extra": true,
                "ports": [{"name": "http"}, {"name": "http", "protocol": "SCTP"}],
                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "bogus": 1}, "spec": {}}
            },
            "status": {"x": 1}
        });
        let pruned = pruning::prune(&s, &mut cr);
        assert_eq!(pruned, ["spec.extra", "status"]);
        defaulting::prune_non_nullable_nulls(&s, &mut cr);
        let meta_unknown = objectmeta::coerce(&s, &mut cr, "", false, false).expect("coerces");
        assert_eq!(meta_unknown, ["spec.template.metadata.bogus"]);
        defaulting::default(&s, &mut cr);
        assert_eq!(cr["spec"]["replicas"], json!(1));
        assert_eq!(cr["spec"]["ports"][0]["protocol"], json!("TCP"));
        assert_eq!(cr["spec"]["template"]["metadata"], json!({"name": "p"}));
        let errs: Vec<String> = validation::validate(&s, &cr, "")
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errs,
            [
                "spec.ports[1].protocol: Unsupported value: \"SCTP\": supported values: \"TCP\", \"UDP\"",
                "spec.ports[1]: Duplicate value: {\"name\":\"http\"}",
            ]
        );
    }

    #[test]
    fn new_checks_defaults_and_list_map_keys() {
        let p = "spec.versions[0].schema.openAPIV3Schema";
        let cases: Vec<(serde_json::Value, Vec<String>)> = vec![
            (
                json!({"type": "object", "properties": {"a": {"type": "string", "default": 5}}}),
                vec![format!(
                    "{p}.properties[a].default: Invalid value: \"integer\":  in body must be of type string: \"integer\""
                )],
            ),
            (
                json!({"type": "object", "properties": {"l": {"type": "array",
                    "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"],
                    "items": {"type": "object", "properties": {"k": {"type": "string"}}}}}}),
                vec![format!(
                    "{p}.properties[l].items.properties[k].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"
                )],
            ),
            (
                // Structural errors hide default errors, as upstream.
                json!({"type": "object", "properties": {"a": {"default": 5}}}),
                vec![format!(
                    "{p}.properties[a].type: Required value: must not be empty for specified object fields"
                )],
            ),
        ];
        for (schema, want) in cases {
            let got: Vec<String> = Structural::new(&props(schema.clone()), p)
                .expect_err("invalid")
                .iter()
                .map(|e| e.to_string())
                .collect();
            assert_eq!(got, want, "{schema}");
        }
    }

    /// Odd schemas and values: every algorithm must return, never panic.
    #[test]
    fn no_input_panics() {
        let schemas = [
            json!({"type": "object", "properties": {"a": {"type": "integer", "format": "int32",
                "minimum": -1e300, "maximum": 1e300, "multipleOf": 0}}}),
            json!({"type": "object", "properties": {"a": {"type": "number", "format": "float",
                "multipleOf": 0.1, "exclusiveMinimum": true, "minimum": 0}}}),
            json!({"type": "object", "properties": {"a": {"type": "string", "maxLength": -1,
                "minLength": 99999999999i64, "pattern": "(", "format": "date-time"}}}),
            json!({"type": "object", "properties": {"a": {"type": "array", "maxItems": -5, "minItems": 3,
                "uniqueItems": true, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [],
                "items": {"x-kubernetes-preserve-unknown-fields": true}}}}),
            json!({"type": "object", "maxProperties": -1, "minProperties": 100,
                "additionalProperties": false,
                "allOf": [{"not": {"anyOf": [{"oneOf": [{}, {}]}]}}],
                "properties": {"m": {"type": "object", "x-kubernetes-embedded-resource": true,
                    "x-kubernetes-preserve-unknown-fields": true,
                    "additionalProperties": {"type": "array", "items": {"type": "array"}}}}}),
            json!({"x-kubernetes-int-or-string": true, "enum": [1, "a", null, {"a": 1}, [1]],
                "x-kubernetes-preserve-unknown-fields": true}),
        ];
        let values = [
            json!(null),
            json!({"a": 1e308, "m": {"apiVersion": "/", "kind": 1, "metadata": "x", "k": [[1], null]}}),
            json!({"a": -9223372036854775808i64, "m": {"metadata": {"labels": null, "ownerReferences": [1]}}}),
            json!({"a": 18446744073709551615u64}),
            json!({"a": "x".repeat(1000), "m": []}),
            json!({"a": [null, 1, null, {"k": [1]}, {"k": [1]}]}),
            json!([[[]]]),
            json!("\u{0}"),
        ];
        for schema in &schemas {
            let p = props(schema.clone());
            let _ = Structural::new(&p, "s");
            let Ok(s) = Structural::from_props(&p) else {
                continue;
            };
            for value in &values {
                let mut v = value.clone();
                let _ = pruning::prune(&s, &mut v);
                defaulting::prune_non_nullable_nulls(&s, &mut v);
                let _ = objectmeta::coerce(&s, &mut v, "", true, true);
                let _ = objectmeta::coerce(&s, &mut value.clone(), "", true, false);
                defaulting::default(&s, &mut v);
                let _ = validation::validate(&s, &v, "");
                let _ = validation::validate(&s, value, "x");
                let _ = objectmeta::validate(&s, value, "", true);
            }
        }
    }
}
