//! Shared validators (k8s.io/apimachinery/pkg/util/validation and
//! pkg/apis/core/validation): names, labels, annotations, quantities.
//! Each returns field errors so callers can collect all of them.
//!
//! The `is_*` functions return upstream's bare messages (no field path); the
//! `validate_*` functions wrap them into [`FieldError`]s at a path.

use crate::error::FieldError;
use crate::registry::strategy::NameRule;
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
pub const DNS1035_LABEL_MAX_LENGTH: usize = 63;
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// Upstream's TotalAnnotationSizeLimitB: keys plus values.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

pub const FIELD_IMMUTABLE: &str = "field is immutable";
pub const IS_NEGATIVE: &str = "must be greater than or equal to 0";
pub const QUANTITY_FORMAT: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_ERR: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";

// ---------------------------------------------------------------------------
// Message builders (validation.go's RegexError, MaxLenError, EmptyError).

/// `msg (e.g. 'a', or 'b', regex used for validation is 'fmt')`, spelled as upstream.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

pub fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

pub fn empty_error() -> String {
    "must be non-empty".to_string()
}

// ---------------------------------------------------------------------------
// Hand-written matchers for upstream's regexes (no regex dependency).

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

fn matches_dns1123_subdomain(v: &str) -> bool {
    v.split('.').all(matches_dns1123_label)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn matches_qualified_name(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

// ---------------------------------------------------------------------------
// String validators: upstream messages, no field path.

pub fn is_dns1123_label(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(v) {
        if matches_dns1123_subdomain(v) {
            // A valid subdomain that is not a label: it must be the dots.
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

pub fn is_dns1123_subdomain(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain(v) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// RFC 1035 label (service names): like an RFC 1123 label but starts with a letter.
pub fn is_dns1035_label(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > DNS1035_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1035_LABEL_MAX_LENGTH));
    }
    if !(matches_dns1123_label(v) && v.as_bytes()[0].is_ascii_lowercase()) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// A label key / annotation key / finalizer: `[prefix/]name`, prefix a DNS subdomain.
pub fn is_qualified_name(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = v.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !matches_qualified_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

pub fn is_valid_label_value(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !(v.is_empty() || matches_qualified_name(v)) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// A key of a ConfigMap's or Secret's data.
pub fn is_config_map_key(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if v.is_empty()
        || !v
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
    {
        errs.push(regex_error(
            CONFIG_MAP_KEY_ERR,
            CONFIG_MAP_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    match v {
        "." => errs.push("must not be '.'".to_string()),
        ".." => errs.push("must not be '..'".to_string()),
        _ if v.starts_with("..") => errs.push("must not start with '..'".to_string()),
        _ => {}
    }
    errs
}

/// An IANA service name, as a named container or service port.
pub fn is_valid_port_name(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 15 {
        errs.push(max_len_error(15));
    }
    if v.is_empty() || !v.bytes().all(|c| is_lower_alnum(c) || c == b'-') {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !v.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if v.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if v.starts_with('-') || v.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

pub fn is_valid_port_num(port: i32) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".to_string()]
    }
}

/// Environment variable names, with upstream 1.33's (default-on)
/// RelaxedEnvironmentVariableValidation: any printable ASCII but '='.
pub fn is_env_var_name(v: &str) -> Vec<String> {
    if v.is_empty() {
        return vec![format!("environment variable name {}", empty_error())];
    }
    if v.bytes().all(|c| (b' '..=b'~').contains(&c) && c != b'=') {
        Vec::new()
    } else {
        vec!["a valid environment variable name must consist only of printable ASCII characters other than '='"
            .to_string()]
    }
}

pub fn is_valid_ip(v: &str) -> Vec<String> {
    if v.parse::<std::net::IpAddr>().is_ok() {
        Vec::new()
    } else {
        vec!["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".to_string()]
    }
}

/// A name that is one URL path segment (upstream's IsValidPathSegmentName).
pub fn is_valid_path_segment_name(v: &str) -> Vec<String> {
    if v == "." || v == ".." {
        return vec![format!("may not be '{v}'")];
    }
    ["/", "%"]
        .iter()
        .filter(|bad| v.contains(*bad))
        .map(|bad| format!("may not contain '{bad}'"))
        .collect()
}

/// `metadata.name` by the resource's rule.
pub fn validate_name(name: &str, rule: NameRule) -> Vec<String> {
    match rule {
        NameRule::Subdomain => is_dns1123_subdomain(name),
        NameRule::Label => is_dns1123_label(name),
        NameRule::PathSegment => is_valid_path_segment_name(name),
    }
}

/// `generateName` is a prefix: a trailing '-' is fine because random
/// characters follow it (upstream's maskTrailingDash).
fn validate_name_prefix(prefix: &str, rule: NameRule) -> Vec<String> {
    let masked = match prefix.strip_suffix('-') {
        Some(head) if !head.is_empty() => format!("{head}a"),
        _ => prefix.to_string(),
    };
    validate_name(&masked, rule)
}

// ---------------------------------------------------------------------------
// Field-error helpers.

/// Turns bare messages into Invalid errors at `path` for `value`.
pub fn invalid_each(path: &str, value: &str, msgs: Vec<String>) -> Vec<FieldError> {
    msgs.into_iter()
        .map(|m| FieldError::invalid(path, value, m))
        .collect()
}

/// Joins a child onto a path: `child("spec", "containers")` is `spec.containers`.
pub fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// `index("spec.containers", 0)` is `spec.containers[0]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// `key("data", "a")` is `data[a]`, as upstream's Path.Key.
pub fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

/// Upstream's `field.NotFound`. error.rs has no NotFound kind yet, so this is
/// an Invalid error with upstream's wording; one place to change once it has.
pub fn not_found(path: &str, value: &str) -> FieldError {
    FieldError::not_found(path, value)
}

/// A short, readable diff of two JSON values (which paths changed), standing
/// in for the `cmp.Diff` upstream appends to "may not change" messages.
pub fn json_diff(old: &Value, new: &Value) -> String {
    fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
        match (old, new) {
            (Value::Object(a), Value::Object(b)) => {
                let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for k in keys {
                    let (x, y) = (
                        a.get(k).unwrap_or(&Value::Null),
                        b.get(k).unwrap_or(&Value::Null),
                    );
                    walk(&child(path, k), x, y, out);
                }
            }
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    walk(&index(path, i), x, y, out);
                }
            }
            _ if old != new => out.push(format!("  {path}: {old} -> {new}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", old, new, &mut out);
    out.join("\n")
}

pub fn validate_dns1123_label(v: &str, path: &str) -> Vec<FieldError> {
    invalid_each(path, v, is_dns1123_label(v))
}

pub fn validate_dns1123_subdomain(v: &str, path: &str) -> Vec<FieldError> {
    invalid_each(path, v, is_dns1123_subdomain(v))
}

pub fn validate_qualified_name(v: &str, path: &str) -> Vec<FieldError> {
    invalid_each(path, v, is_qualified_name(v))
}

pub fn validate_nonnegative(value: i64, path: &str) -> Vec<FieldError> {
    if value < 0 {
        vec![FieldError::invalid(path, value, IS_NEGATIVE)]
    } else {
        Vec::new()
    }
}

/// Upstream's ValidatePositiveField message.
pub fn validate_positive(value: i64, path: &str) -> Vec<FieldError> {
    if value <= 0 {
        vec![FieldError::invalid(
            path,
            value,
            "must be greater than zero",
        )]
    } else {
        Vec::new()
    }
}

pub fn validate_immutable<T: PartialEq + serde::Serialize>(
    new: &T,
    old: &T,
    path: &str,
) -> Vec<FieldError> {
    if new == old {
        Vec::new()
    } else {
        let shown = serde_json::to_value(new).unwrap_or(Value::Null);
        vec![FieldError::invalid(path, shown, FIELD_IMMUTABLE)]
    }
}

/// A port given by number or IANA name (e.g. a service's targetPort).
pub fn validate_port_num_or_name(port: &IntOrString, path: &str) -> Vec<FieldError> {
    match port {
        IntOrString::Int(n) => is_valid_port_num(*n)
            .into_iter()
            .map(|m| FieldError::invalid(path, *n, m))
            .collect(),
        IntOrString::String(s) => invalid_each(path, s, is_valid_port_name(s)),
    }
}

// ---------------------------------------------------------------------------
// Metadata.

pub fn validate_labels(labels: Option<&BTreeMap<String, String>>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels.into_iter().flatten() {
        errs.extend(invalid_each(path, k, is_qualified_name(k)));
        errs.extend(invalid_each(path, v, is_valid_label_value(v)));
    }
    errs
}

pub fn validate_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations.into_iter().flatten() {
        // Annotation keys are qualified names in any case.
        errs.extend(invalid_each(path, k, is_qualified_name(&k.to_lowercase())));
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

pub fn validate_owner_references(
    refs: Option<&Vec<OwnerReference>>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    for r in refs.into_iter().flatten() {
        // apiVersion is "group/version" or just "version" for the core group.
        let version = r.api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "apiVersion"),
                r.api_version.as_str(),
                "version must not be empty",
            ));
        }
        if r.kind.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "kind"),
                "",
                "must not be empty",
            ));
        }
        if r.name.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "name"),
                "",
                "must not be empty",
            ));
        }
        if r.uid.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "uid"),
                "",
                "must not be empty",
            ));
        }
        if r.api_version == "v1" && r.kind == "Event" {
            let shown = serde_json::to_value(r).unwrap_or(Value::Null);
            errs.push(FieldError::invalid(
                path,
                shown,
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.controller == Some(true) {
            let this = format!("{}/{}", r.kind, r.name);
            match &first_controller {
                Some(first) => {
                    let shown = serde_json::to_value(refs).unwrap_or(Value::Null);
                    errs.push(FieldError::invalid(
                        path,
                        shown,
                        format!(
                            "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"
                        ),
                    ));
                }
                None => first_controller = Some(this),
            }
        }
    }
    errs
}

pub fn validate_finalizers(finalizers: Option<&Vec<String>>, path: &str) -> Vec<FieldError> {
    let list = finalizers.map(Vec::as_slice).unwrap_or_default();
    let mut errs: Vec<FieldError> = list
        .iter()
        .flat_map(|f| validate_qualified_name(f, path))
        .collect();
    if list.iter().any(|f| f == "orphan") && list.iter().any(|f| f == "foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            list.to_vec(),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// Metadata checks the store runs on every create (upstream's ValidateObjectMeta).
pub fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    rule: NameRule,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(g) = meta.generate_name.as_deref().filter(|g| !g.is_empty()) {
        errs.extend(invalid_each(
            &child(path, "generateName"),
            g,
            validate_name_prefix(g, rule),
        ));
    }
    match meta.name.as_deref().filter(|n| !n.is_empty()) {
        None => errs.push(FieldError::required(
            child(path, "name"),
            "name or generateName is required",
        )),
        Some(n) => errs.extend(invalid_each(
            &child(path, "name"),
            n,
            validate_name(n, rule),
        )),
    }
    let ns = meta.namespace.as_deref().unwrap_or("");
    match (namespaced, ns.is_empty()) {
        (true, true) => errs.push(FieldError::required(child(path, "namespace"), "")),
        (true, false) => errs.extend(validate_dns1123_label(ns, &child(path, "namespace"))),
        (false, false) => errs.push(FieldError::forbidden(
            child(path, "namespace"),
            "not allowed on this type",
        )),
        (false, true) => {}
    }
    errs.extend(validate_nonnegative(
        meta.generation.unwrap_or(0),
        &child(path, "generation"),
    ));
    errs.extend(validate_labels(
        meta.labels.as_ref(),
        &child(path, "labels"),
    ));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        &child(path, "annotations"),
    ));
    errs.extend(validate_owner_references(
        meta.owner_references.as_ref(),
        &child(path, "ownerReferences"),
    ));
    errs.extend(validate_finalizers(
        meta.finalizers.as_ref(),
        &child(path, "finalizers"),
    ));
    errs
}

/// Metadata checks on update: identity fields are immutable, no finalizer may
/// be added once deletion started, plus everything [`validate_object_meta`] checks.
/// The store must copy the old deletionTimestamp/deletionGracePeriodSeconds in
/// (upstream's BeforeUpdate) and set them itself outside validation.
pub fn validate_object_meta_update(
    new: &ObjectMeta,
    old: &ObjectMeta,
    namespaced: bool,
    rule: NameRule,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old.deletion_timestamp.is_some() {
        let old_f: BTreeSet<&String> = old.finalizers.iter().flatten().collect();
        let extra: BTreeSet<&String> = new
            .finalizers
            .iter()
            .flatten()
            .filter(|f| !old_f.contains(f))
            .collect();
        if !extra.is_empty() {
            let list = extra
                .iter()
                .map(|f| format!("{f:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            errs.push(FieldError::forbidden(
                child(path, "finalizers"),
                format!("no new finalizers can be added if the object is being deleted, found new finalizers []string{{{list}}}"),
            ));
        }
    }
    if new.generation.unwrap_or(0) < old.generation.unwrap_or(0) {
        errs.push(FieldError::invalid(
            child(path, "generation"),
            new.generation.unwrap_or(0),
            "must not be decremented",
        ));
    }
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    errs.extend(validate_immutable(
        &s(&new.name),
        &s(&old.name),
        &child(path, "name"),
    ));
    errs.extend(validate_immutable(
        &s(&new.namespace),
        &s(&old.namespace),
        &child(path, "namespace"),
    ));
    errs.extend(validate_immutable(
        &s(&new.uid),
        &s(&old.uid),
        &child(path, "uid"),
    ));
    errs.extend(validate_immutable(
        &new.creation_timestamp,
        &old.creation_timestamp,
        &child(path, "creationTimestamp"),
    ));
    errs.extend(validate_immutable(
        &new.deletion_timestamp,
        &old.deletion_timestamp,
        &child(path, "deletionTimestamp"),
    ));
    errs.extend(validate_immutable(
        &new.deletion_grace_period_seconds,
        &old.deletion_grace_period_seconds,
        &child(path, "deletionGracePeriodSeconds"),
    ));
    errs.extend(validate_object_meta(new, namespaced, rule, path));
    errs
}

/// metav1.LabelSelector: matchLabels valid, and each expression's operator
/// decides whether values are required or forbidden.
pub fn validate_label_selector(sel: Option<&LabelSelector>, path: &str) -> Vec<FieldError> {
    let Some(sel) = sel else { return Vec::new() };
    let mut errs = validate_labels(sel.match_labels.as_ref(), &child(path, "matchLabels"));
    for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
        let p = index(&child(path, "matchExpressions"), i);
        let values = req.values.as_deref().unwrap_or_default();
        match req.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                child(&p, "values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
                child(&p, "values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => errs.push(FieldError::invalid(
                child(&p, "operator"),
                op,
                "not a valid selector operator",
            )),
        }
        errs.extend(validate_qualified_name(&req.key, &child(&p, "key")));
        for (j, v) in values.iter().enumerate() {
            errs.extend(invalid_each(
                &index(&child(&p, "values"), j),
                v,
                is_valid_label_value(v),
            ));
        }
    }
    errs
}

// ---------------------------------------------------------------------------
// Quantities.

/// Parses Kubernetes quantity syntax (`500m`, `1.5Gi`, `1e3`, `-2k`) into
/// nano-units (value × 10⁹), rounding sub-nano precision up like upstream.
/// Values beyond i128 saturate; the error is upstream's ErrFormatWrong text.
pub fn parse_quantity(s: &str) -> Result<i128, String> {
    let err = || QUANTITY_FORMAT.to_string();
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(num_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
        return Err(err());
    }
    // (base, exponent): the multiplier is base^exponent.
    let (base, exp): (i128, i32) = match suffix {
        "" => (10, 0),
        "n" => (10, -9),
        "u" => (10, -6),
        "m" => (10, -3),
        "k" => (10, 3),
        "M" => (10, 6),
        "G" => (10, 9),
        "T" => (10, 12),
        "P" => (10, 15),
        "E" => (10, 18),
        "Ki" => (2, 10),
        "Mi" => (2, 20),
        "Gi" => (2, 30),
        "Ti" => (2, 40),
        "Pi" => (2, 50),
        "Ei" => (2, 60),
        _ => {
            let e = suffix.strip_prefix(['e', 'E']).ok_or_else(err)?;
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return Err(err());
            }
            (10, e.parse::<i32>().map_err(|_| err())?)
        }
    };
    // Mantissa as an integer over 10^frac_len, clamped to keep i128 arithmetic exact.
    let digits: String = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0);
    }
    if digits.len() > 36 {
        return Ok(if neg { i128::MIN } else { i128::MAX });
    }
    let mantissa: i128 = digits.parse().map_err(|_| err())?;
    // value = mantissa * base^exp * 10^(9 - frac_len), in nano-units.
    let mut ten_exp = 9 - frac_part.len() as i32;
    let mut num = mantissa;
    let mut den: i128 = 1;
    let scale = |v: i128, by: i128, times: u32| -> Option<i128> {
        (0..times).try_fold(v, |a, _| a.checked_mul(by))
    };
    if base == 10 {
        ten_exp += exp;
    } else {
        num = scale(num, 2, exp as u32).unwrap_or(i128::MAX);
    }
    if ten_exp >= 0 {
        num = scale(num, 10, ten_exp as u32).unwrap_or(i128::MAX);
    } else if ten_exp < -38 {
        // Below one nano-unit: rounds up to 1n (upstream rounds away from zero).
        return Ok(if neg { -1 } else { 1 });
    } else {
        den = scale(1, 10, (-ten_exp) as u32).unwrap_or(i128::MAX);
    }
    let value = num / den + i128::from(num % den != 0);
    Ok(if neg { -value } else { value })
}

/// A quantity must parse and be non-negative (upstream's ValidateNonnegativeQuantity).
pub fn validate_resource_quantity(q: &Quantity, path: &str) -> Vec<FieldError> {
    match parse_quantity(&q.0) {
        Err(msg) => vec![FieldError::invalid(path, q.0.as_str(), msg)],
        Ok(v) if v < 0 => vec![FieldError::invalid(path, q.0.as_str(), IS_NEGATIVE)],
        Ok(_) => Vec::new(),
    }
}

/// A container's resources (upstream's ValidateResourceRequirements, the
/// rules users hit): standard or qualified names, valid non-negative
/// quantities, and no request above its limit.
pub fn validate_resource_requirements(
    r: Option<&ResourceRequirements>,
    path: &str,
) -> Vec<FieldError> {
    let Some(r) = r else { return Vec::new() };
    let mut errs = Vec::new();
    let limits = r.limits.as_ref();
    for (name, q) in limits.into_iter().flatten() {
        let p = key(&child(path, "limits"), name);
        errs.extend(validate_container_resource_name(name, &p));
        errs.extend(validate_resource_quantity(q, &p));
    }
    for (name, q) in r.requests.iter().flatten() {
        let p = key(&child(path, "requests"), name);
        errs.extend(validate_container_resource_name(name, &p));
        errs.extend(validate_resource_quantity(q, &p));
        let Some(limit) = limits.and_then(|l| l.get(name)) else {
            continue;
        };
        if let (Ok(req), Ok(lim)) = (parse_quantity(&q.0), parse_quantity(&limit.0))
            && req > lim
        {
            errs.push(FieldError::invalid(
                &p,
                q.0.as_str(),
                format!("must be less than or equal to {name} limit of {}", limit.0),
            ));
        }
    }
    errs
}

/// Upstream's standardResources (IsStandardResourceName).
pub fn is_standard_resource_name(name: &str) -> bool {
    matches!(
        name,
        "cpu"
            | "memory"
            | "ephemeral-storage"
            | "requests.cpu"
            | "requests.memory"
            | "requests.ephemeral-storage"
            | "limits.cpu"
            | "limits.memory"
            | "limits.ephemeral-storage"
            | "pods"
            | "resourcequotas"
            | "services"
            | "replicationcontrollers"
            | "secrets"
            | "configmaps"
            | "persistentvolumeclaims"
            | "storage"
            | "requests.storage"
            | "services.nodeports"
            | "services.loadbalancers"
    ) || is_huge_page_quota_name(name)
}

fn is_huge_page_quota_name(name: &str) -> bool {
    name.starts_with("hugepages-") || name.starts_with("requests.hugepages-")
}

/// `vendor.com/gpu`: prefixed, not in the kubernetes.io domain, not `requests.`.
pub fn is_extended_resource_name(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    !native
        && !name.starts_with("requests.")
        && is_qualified_name(&format!("requests.{name}")).is_empty()
}

/// Resources counted in whole units (IsIntegerResourceName).
pub fn is_integer_resource_name(name: &str) -> bool {
    matches!(
        name,
        "pods"
            | "resourcequotas"
            | "services"
            | "replicationcontrollers"
            | "secrets"
            | "configmaps"
            | "persistentvolumeclaims"
            | "services.nodeports"
            | "services.loadbalancers"
    ) || is_extended_resource_name(name)
}

/// A resource name: qualified, and standard unless prefixed (validateResourceName).
pub fn validate_resource_name(name: &str, path: &str) -> Vec<FieldError> {
    let errs = validate_qualified_name(name, path);
    if errs.is_empty() && !name.contains('/') && !is_standard_resource_name(name) {
        return vec![FieldError::invalid(
            path,
            name,
            "must be a standard resource type or fully qualified",
        )];
    }
    errs
}

/// A container resource name (validateContainerResourceName): cpu, memory,
/// ephemeral-storage, hugepages-*, or an extended resource.
pub fn validate_container_resource_name(name: &str, path: &str) -> Vec<FieldError> {
    let mut errs = validate_resource_name(name, path);
    if !name.contains('/') {
        let standard = matches!(name, "cpu" | "memory" | "ephemeral-storage")
            || name.starts_with("hugepages-");
        if !standard {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !name.contains("kubernetes.io/") && !is_extended_resource_name(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

/// Non-negative, and whole for integer resources (ValidateResourceQuantityValue).
pub fn validate_resource_quantity_value(name: &str, q: &Quantity, path: &str) -> Vec<FieldError> {
    let mut errs = validate_resource_quantity(q, path);
    if errs.is_empty()
        && is_integer_resource_name(name)
        && parse_quantity(&q.0).is_ok_and(|v| v % 1_000_000_000 != 0)
    {
        errs.push(FieldError::invalid(
            path,
            q.0.as_str(),
            "must be an integer",
        ));
    }
    errs
}

/// Upstream's ValidatePositiveQuantityValue.
pub fn validate_positive_quantity(q: &Quantity, path: &str) -> Vec<FieldError> {
    match parse_quantity(&q.0) {
        Err(msg) => vec![FieldError::invalid(path, q.0.as_str(), msg)],
        Ok(v) if v <= 0 => vec![FieldError::invalid(
            path,
            q.0.as_str(),
            "must be greater than zero",
        )],
        Ok(_) => Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// Int-or-percent values (maxSurge, maxUnavailable, minAvailable).

fn percent_value(v: &IntOrString) -> Option<i64> {
    match v {
        IntOrString::String(s) if is_valid_percent(s) => s[..s.len() - 1].parse().ok(),
        _ => None,
    }
}

fn is_valid_percent(s: &str) -> bool {
    s.strip_suffix('%')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

/// Upstream's getIntOrPercentValue: a percentage's number, an int, or the
/// int a string parses as (0 when it does not).
pub fn int_or_percent_value(v: &IntOrString) -> i64 {
    match v {
        IntOrString::Int(i) => i64::from(*i),
        IntOrString::String(s) => percent_value(v).unwrap_or_else(|| s.parse().unwrap_or(0)),
    }
}

pub fn validate_positive_int_or_percent(v: &IntOrString, path: &str) -> Vec<FieldError> {
    match v {
        IntOrString::String(s) if !is_valid_percent(s) => vec![FieldError::invalid(
            path,
            s.as_str(),
            regex_error(
                "a valid percent string must be a numeric string followed by an ending '%'",
                "[0-9]+%",
                &["1%", "93%"],
            ),
        )],
        IntOrString::String(_) => Vec::new(),
        IntOrString::Int(i) => validate_nonnegative(i64::from(*i), path),
    }
}

pub fn is_not_more_than_100_percent(v: &IntOrString, path: &str) -> Vec<FieldError> {
    match percent_value(v) {
        Some(p) if p > 100 => vec![FieldError::invalid(
            path,
            json!(v),
            "must not be greater than 100%",
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn fields(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(|e| e.field.clone()).collect()
    }

    #[test]
    fn dns1123_label() {
        let cases: &[(&str, bool)] = &[
            ("a", true),
            ("my-name", true),
            ("123-abc", true),
            ("", false),
            ("A", false),
            ("-a", false),
            ("a-", false),
            ("a.b", false),
            ("a_b", false),
        ];
        for (v, ok) in cases {
            assert_eq!(is_dns1123_label(v).is_empty(), *ok, "{v:?}");
        }
        assert_eq!(is_dns1123_label("a.b"), vec!["must not contain dots"]);
        assert_eq!(
            is_dns1123_label("A")[0],
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        );
        assert_eq!(
            is_dns1123_label(&"a".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
    }

    #[test]
    fn dns1123_subdomain() {
        for (v, ok) in [
            ("a.b.c", true),
            ("example.com", true),
            ("a..b", false),
            (".a", false),
            ("a.", false),
            ("A.b", false),
        ] {
            assert_eq!(is_dns1123_subdomain(v).is_empty(), ok, "{v:?}");
        }
        assert_eq!(is_dns1123_subdomain(&"a".repeat(254)).len(), 1);
        assert!(is_dns1123_subdomain("Ab")[0].contains("(e.g. 'example.com', regex used"));
    }

    #[test]
    fn dns1035_label() {
        for (v, ok) in [
            ("abc", true),
            ("a-1", true),
            ("1abc", false),
            ("", false),
            ("a.b", false),
        ] {
            assert_eq!(is_dns1035_label(v).is_empty(), ok, "{v:?}");
        }
    }

    #[test]
    fn qualified_name() {
        let cases: &[(&str, usize)] = &[
            ("app", 0),
            ("MyName", 0),
            ("example.com/my_name", 0),
            ("kubernetes.io/os", 0),
            ("/a", 1),
            ("a/", 2),
            ("a/b/c", 1),
            ("Example.com/a", 1),
            ("-a", 1),
        ];
        for (v, n) in cases {
            assert_eq!(
                is_qualified_name(v).len(),
                *n,
                "{v:?}: {:?}",
                is_qualified_name(v)
            );
        }
        assert_eq!(is_qualified_name("/a")[0], "prefix part must be non-empty");
        assert!(
            is_qualified_name(&"a".repeat(64))[0].starts_with("name part must be no more than 63")
        );
    }

    #[test]
    fn label_values() {
        for (v, ok) in [
            ("", true),
            ("v1.2_3-x", true),
            ("-x", false),
            ("a b", false),
        ] {
            assert_eq!(is_valid_label_value(v).is_empty(), ok, "{v:?}");
        }
        assert_eq!(
            is_valid_label_value(&"a".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
    }

    #[test]
    fn other_string_rules() {
        assert!(is_config_map_key("key.name_1-x").is_empty());
        assert_eq!(is_config_map_key("..a"), vec!["must not start with '..'"]);
        assert_eq!(is_config_map_key("a/b").len(), 1);
        assert!(is_valid_port_name("http").is_empty());
        assert_eq!(is_valid_port_name("123").len(), 1);
        assert_eq!(
            is_valid_port_name("a--b"),
            vec!["must not contain consecutive hyphens"]
        );
        assert_eq!(is_valid_port_name("toolongportname1").len(), 1);
        assert!(is_env_var_name("MY VAR.1").is_empty());
        assert_eq!(is_env_var_name("A=B").len(), 1);
        assert!(is_valid_ip("10.0.0.1").is_empty() && is_valid_ip("::1").is_empty());
        assert_eq!(is_valid_ip("10.0.0").len(), 1);
        assert_eq!(
            validate_name("a/b", NameRule::PathSegment),
            vec!["may not contain '/'"]
        );
        assert_eq!(
            validate_name("..", NameRule::PathSegment),
            vec!["may not be '..'"]
        );
        assert!(validate_name("system:admin", NameRule::PathSegment).is_empty());
    }

    fn meta(name: &str, ns: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: ns.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn object_meta_cases() {
        let big = BTreeMap::from([("a".to_string(), "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT))]);
        let cases: Vec<(&str, ObjectMeta, bool, NameRule, Vec<&str>)> = vec![
            (
                "valid namespaced",
                meta("web", Some("default")),
                true,
                NameRule::Subdomain,
                vec![],
            ),
            (
                "valid cluster",
                meta("n1.example.com", None),
                false,
                NameRule::Subdomain,
                vec![],
            ),
            (
                "no name",
                ObjectMeta {
                    namespace: Some("d".into()),
                    ..Default::default()
                },
                true,
                NameRule::Subdomain,
                vec!["metadata.name"],
            ),
            (
                "generateName prefix with dash",
                ObjectMeta {
                    name: Some("web-x1".into()),
                    generate_name: Some("web-".into()),
                    ..meta("", Some("d"))
                },
                true,
                NameRule::Subdomain,
                vec![],
            ),
            (
                "bad name",
                meta("Web", Some("d")),
                true,
                NameRule::Subdomain,
                vec!["metadata.name"],
            ),
            (
                "label rule rejects dots",
                meta("a.b", None),
                false,
                NameRule::Label,
                vec!["metadata.name"],
            ),
            (
                "missing namespace",
                meta("a", None),
                true,
                NameRule::Subdomain,
                vec!["metadata.namespace"],
            ),
            (
                "bad namespace",
                meta("a", Some("A_B")),
                true,
                NameRule::Subdomain,
                vec!["metadata.namespace"],
            ),
            (
                "forbidden namespace",
                meta("a", Some("d")),
                false,
                NameRule::Subdomain,
                vec!["metadata.namespace"],
            ),
            (
                "bad labels",
                ObjectMeta {
                    labels: Some(BTreeMap::from([
                        ("a/b/c".into(), "ok".into()),
                        ("k".into(), "-bad".into()),
                    ])),
                    ..meta("a", Some("d"))
                },
                true,
                NameRule::Subdomain,
                vec!["metadata.labels", "metadata.labels"],
            ),
            (
                "annotations too big",
                ObjectMeta {
                    annotations: Some(big),
                    ..meta("a", Some("d"))
                },
                true,
                NameRule::Subdomain,
                vec!["metadata.annotations"],
            ),
            (
                "annotation keys ignore case",
                ObjectMeta {
                    annotations: Some(BTreeMap::from([("Example.COM/Key".into(), "".into())])),
                    ..meta("a", Some("d"))
                },
                true,
                NameRule::Subdomain,
                vec![],
            ),
            (
                "bad finalizer",
                ObjectMeta {
                    finalizers: Some(vec!["a/b/c".into(), "example.com/ok".into()]),
                    ..meta("a", Some("d"))
                },
                true,
                NameRule::Subdomain,
                vec!["metadata.finalizers"],
            ),
            (
                "owner refs",
                ObjectMeta {
                    owner_references: Some(vec![
                        OwnerReference {
                            api_version: "apps/v1".into(),
                            kind: "ReplicaSet".into(),
                            name: "rs".into(),
                            uid: "u1".into(),
                            controller: Some(true),
                            ..Default::default()
                        },
                        OwnerReference {
                            api_version: "".into(),
                            kind: "".into(),
                            name: "".into(),
                            uid: "".into(),
                            controller: Some(true),
                            ..Default::default()
                        },
                    ]),
                    ..meta("a", Some("d"))
                },
                true,
                NameRule::Subdomain,
                vec![
                    "metadata.ownerReferences.apiVersion",
                    "metadata.ownerReferences.kind",
                    "metadata.ownerReferences.name",
                    "metadata.ownerReferences.uid",
                    "metadata.ownerReferences",
                ],
            ),
        ];
        for (name, m, namespaced, rule, want) in cases {
            let errs = validate_object_meta(&m, namespaced, rule, "metadata");
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
        let e = &validate_object_meta(
            &ObjectMeta::default(),
            false,
            NameRule::Subdomain,
            "metadata",
        )[0];
        assert_eq!(
            e.to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
    }

    #[test]
    fn object_meta_update() {
        let old = ObjectMeta {
            uid: Some("u1".into()),
            generation: Some(2),
            ..meta("a", Some("d"))
        };
        let cases: Vec<(&str, ObjectMeta, Vec<&str>)> = vec![
            ("unchanged", old.clone(), vec![]),
            (
                "label change ok",
                ObjectMeta {
                    labels: Some(BTreeMap::from([("a".into(), "b".into())])),
                    ..old.clone()
                },
                vec![],
            ),
            (
                "rename",
                ObjectMeta {
                    name: Some("b".into()),
                    ..old.clone()
                },
                vec!["metadata.name"],
            ),
            (
                "move",
                ObjectMeta {
                    namespace: Some("e".into()),
                    ..old.clone()
                },
                vec!["metadata.namespace"],
            ),
            (
                "uid",
                ObjectMeta {
                    uid: Some("u2".into()),
                    ..old.clone()
                },
                vec!["metadata.uid"],
            ),
            (
                "generation down",
                ObjectMeta {
                    generation: Some(1),
                    ..old.clone()
                },
                vec!["metadata.generation"],
            ),
        ];
        for (name, new, want) in cases {
            let errs =
                validate_object_meta_update(&new, &old, true, NameRule::Subdomain, "metadata");
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
        let e = &validate_object_meta_update(
            &ObjectMeta {
                name: Some("b".into()),
                ..old.clone()
            },
            &old,
            true,
            NameRule::Subdomain,
            "metadata",
        )[0];
        assert_eq!(
            e.to_string(),
            "metadata.name: Invalid value: \"b\": field is immutable"
        );

        let deleting = ObjectMeta {
            deletion_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                Default::default(),
            )),
            finalizers: Some(vec!["a.io/x".into()]),
            ..old.clone()
        };
        let added = ObjectMeta {
            finalizers: Some(vec!["a.io/x".into(), "a.io/y".into()]),
            ..deleting.clone()
        };
        let errs =
            validate_object_meta_update(&added, &deleting, true, NameRule::Subdomain, "metadata");
        assert_eq!(fields(&errs), vec!["metadata.finalizers"]);
        assert!(
            errs[0].detail.ends_with("[]string{\"a.io/y\"}"),
            "{}",
            errs[0].detail
        );
    }

    #[test]
    fn label_selector() {
        let req = |key: &str, op: &str, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: if values.is_empty() {
                None
            } else {
                Some(values.iter().map(|v| v.to_string()).collect())
            },
        };
        let sel = |reqs: Vec<LabelSelectorRequirement>| LabelSelector {
            match_expressions: Some(reqs),
            match_labels: None,
        };
        let cases: Vec<(&str, LabelSelector, Vec<&str>)> = vec![
            (
                "valid",
                sel(vec![req("a", "In", &["x"]), req("b", "Exists", &[])]),
                vec![],
            ),
            (
                "in without values",
                sel(vec![req("a", "In", &[])]),
                vec!["s.matchExpressions[0].values"],
            ),
            (
                "exists with values",
                sel(vec![req("a", "Exists", &["x"])]),
                vec!["s.matchExpressions[0].values"],
            ),
            (
                "bad operator",
                sel(vec![req("a", "Has", &[])]),
                vec!["s.matchExpressions[0].operator"],
            ),
            (
                "bad key and value",
                sel(vec![req("-a", "NotIn", &["-x"])]),
                vec![
                    "s.matchExpressions[0].key",
                    "s.matchExpressions[0].values[0]",
                ],
            ),
            (
                "bad matchLabels",
                LabelSelector {
                    match_labels: Some(BTreeMap::from([("a".into(), "b c".into())])),
                    match_expressions: None,
                },
                vec!["s.matchLabels"],
            ),
        ];
        for (name, s, want) in cases {
            assert_eq!(
                fields(&validate_label_selector(Some(&s), "s")),
                want,
                "{name}"
            );
        }
        assert!(validate_label_selector(None, "s").is_empty());
    }

    #[test]
    fn quantities() {
        let cases: &[(&str, Option<i128>)] = &[
            ("0", Some(0)),
            ("1", Some(1_000_000_000)),
            ("500m", Some(500_000_000)),
            ("1.5", Some(1_500_000_000)),
            (".5", Some(500_000_000)),
            ("1.", Some(1_000_000_000)),
            ("1Ki", Some(1_024_000_000_000)),
            ("1Mi", Some(1_048_576_000_000_000)),
            ("2k", Some(2_000_000_000_000)),
            ("1e3", Some(1_000_000_000_000)),
            ("1E3", Some(1_000_000_000_000)),
            ("1E", Some(1_000_000_000_000_000_000_000_000_000)),
            ("1e-3", Some(1_000_000)),
            ("10n", Some(10)),
            ("0.1n", Some(1)),
            ("-1", Some(-1_000_000_000)),
            ("+1", Some(1_000_000_000)),
            ("", None),
            ("abc", None),
            ("1x", None),
            ("1.2.3", None),
            ("1e", None),
            ("Ki", None),
            ("1 Gi", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_quantity(s).ok(), *want, "{s:?}");
        }
        assert!(validate_resource_quantity(&Quantity("1Gi".into()), "q").is_empty());
        let e = validate_resource_quantity(&Quantity("-1".into()), "q");
        assert_eq!(
            e[0].to_string(),
            "q: Invalid value: \"-1\": must be greater than or equal to 0"
        );
        assert_eq!(
            validate_resource_quantity(&Quantity("x".into()), "q")[0].detail,
            QUANTITY_FORMAT
        );
    }

    #[test]
    fn resource_requirements() {
        let q = |s: &str| Quantity(s.into());
        let r = ResourceRequirements {
            limits: Some(BTreeMap::from([
                ("cpu".into(), q("1")),
                ("memory".into(), q("1Gi")),
            ])),
            requests: Some(BTreeMap::from([
                ("cpu".into(), q("2")),
                ("memory".into(), q("1Mi")),
                ("gpu".into(), q("1")),
            ])),
            ..Default::default()
        };
        let errs = validate_resource_requirements(Some(&r), "r");
        assert_eq!(
            fields(&errs),
            vec!["r.requests[cpu]", "r.requests[gpu]", "r.requests[gpu]"]
        );
        assert_eq!(
            errs[0].detail,
            "must be less than or equal to cpu limit of 1"
        );
    }

    #[test]
    fn resource_names() {
        assert!(validate_resource_name("requests.cpu", "p").is_empty());
        assert!(validate_resource_name("example.com/foo", "p").is_empty());
        assert_eq!(
            validate_resource_name("foo", "p")[0].detail,
            "must be a standard resource type or fully qualified"
        );
        assert!(validate_container_resource_name("nvidia.com/gpu", "p").is_empty());
        assert_eq!(validate_container_resource_name("pods", "p").len(), 1);
        assert!(is_integer_resource_name("count/pods") && is_integer_resource_name("pods"));
        assert!(!is_integer_resource_name("cpu") && !is_integer_resource_name("kubernetes.io/x"));
        let q = |s: &str| Quantity(s.into());
        assert!(validate_resource_quantity_value("pods", &q("10"), "p").is_empty());
        assert_eq!(
            validate_resource_quantity_value("pods", &q("1500m"), "p")[0].detail,
            "must be an integer"
        );
        assert!(validate_resource_quantity_value("cpu", &q("1500m"), "p").is_empty());
        assert_eq!(
            validate_positive_quantity(&q("0"), "p")[0].detail,
            "must be greater than zero"
        );
    }

    #[test]
    fn small_helpers() {
        assert_eq!(fields(&validate_nonnegative(-1, "x")), vec!["x"]);
        assert!(validate_nonnegative(0, "x").is_empty());
        assert!(validate_immutable(&"a", &"a", "x").is_empty());
        assert_eq!(
            validate_immutable(&Some(1), &None, "x")[0].to_string(),
            "x: Invalid value: 1: field is immutable"
        );
        assert_eq!(
            fields(&validate_port_num_or_name(&IntOrString::Int(0), "p")),
            vec!["p"]
        );
        assert!(validate_port_num_or_name(&IntOrString::String("http".into()), "p").is_empty());
    }

    #[test]
    fn int_or_percent() {
        let cases: &[(IntOrString, i64, usize, usize)] = &[
            (IntOrString::Int(3), 3, 0, 0),
            (IntOrString::Int(-1), -1, 1, 0),
            (IntOrString::String("25%".into()), 25, 0, 0),
            (IntOrString::String("150%".into()), 150, 0, 1),
            (IntOrString::String("abc".into()), 0, 1, 0),
            (IntOrString::String("5".into()), 5, 1, 0),
        ];
        for (v, value, positive_errs, percent_errs) in cases {
            assert_eq!(int_or_percent_value(v), *value, "{v:?}");
            assert_eq!(
                validate_positive_int_or_percent(v, "p").len(),
                *positive_errs,
                "{v:?}"
            );
            assert_eq!(
                is_not_more_than_100_percent(v, "p").len(),
                *percent_errs,
                "{v:?}"
            );
        }
    }
}
