//! admissionregistration.k8s.io/v1 MutatingWebhookConfiguration and
//! ValidatingWebhookConfiguration, ported from upstream 1.33's
//! `pkg/apis/admissionregistration/{v1/defaults.go,validation/validation.go}`
//! and `pkg/registry/admissionregistration/*/strategy.go`.
//!
//! Both kinds hold webhooks that differ only in `reinvocationPolicy`, so
//! the checks here take a [`Hook`] borrowed from either. [`policy`] holds
//! ValidatingAdmissionPolicy and its bindings, which share the rule and
//! match condition checks.

pub mod mutating;
pub mod policy;
pub mod validating;

pub use mutating::MutatingWebhookConfigurationStrategy;
pub use policy::{ValidatingAdmissionPolicyBindingStrategy, ValidatingAdmissionPolicyStrategy};
pub use validating::ValidatingWebhookConfigurationStrategy;

use crate::error::FieldError;
use crate::registry::validation::{
    child, index, invalid_each, is_dns1035_label, is_dns1123_subdomain, is_valid_port_num,
    validate_label_selector, validate_qualified_name,
};
use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, RuleWithOperations, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::HashSet;

/// The fields the two webhook kinds share, borrowed for validation.
pub(crate) struct Hook<'a> {
    pub name: &'a str,
    pub rules: &'a [RuleWithOperations],
    pub failure_policy: Option<&'a str>,
    pub match_policy: Option<&'a str>,
    pub side_effects: &'a str,
    pub timeout_seconds: Option<i32>,
    pub namespace_selector: Option<&'a LabelSelector>,
    pub object_selector: Option<&'a LabelSelector>,
    pub client_config: &'a WebhookClientConfig,
    pub admission_review_versions: &'a [String],
    pub match_conditions: &'a [MatchCondition],
}

/// What an update relaxes, as upstream's validationOptions: values the old
/// object already had stay acceptable so old objects can still be changed.
#[derive(Clone, Copy)]
pub(crate) struct Options {
    pub require_no_side_effects: bool,
    pub require_recognized_review_version: bool,
    pub require_unique_names: bool,
}

impl Options {
    pub const CREATE: Options = Options {
        require_no_side_effects: true,
        require_recognized_review_version: true,
        require_unique_names: true,
    };

    /// The options of an update whose old object holds `old`.
    pub fn update(old: &[Hook<'_>]) -> Options {
        let mut names = HashSet::new();
        Options {
            require_no_side_effects: old
                .iter()
                .all(|h| NO_SIDE_EFFECTS.contains(&h.side_effects)),
            require_recognized_review_version: old.iter().all(|h| {
                h.admission_review_versions.is_empty()
                    || h.admission_review_versions
                        .iter()
                        .any(|v| REVIEW_VERSIONS.contains(&v.as_str()))
            }),
            require_unique_names: old.iter().all(|h| names.insert(h.name)),
        }
    }
}

/// AdmissionReview versions this apiserver can send.
pub const REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];
const FAILURE_POLICIES: &[&str] = &["Fail", "Ignore"];
const MATCH_POLICIES: &[&str] = &["Equivalent", "Exact"];
const SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun", "Some", "Unknown"];
const NO_SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun"];
const OPERATIONS: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
const SCOPES: &[&str] = &["*", "Cluster", "Namespaced"];
const MAX_MATCH_CONDITIONS: usize = 64;
pub(crate) const REINVOCATION_POLICIES: &[&str] = &["IfNeeded", "Never"];

/// The [`Hook`] view of a `MutatingWebhook` or a `ValidatingWebhook`: two
/// k8s-openapi types with these fields in common.
macro_rules! hook_view {
    ($h:expr) => {{
        let h = $h;
        $crate::registry::admissionregistration::Hook {
            name: &h.name,
            rules: h.rules.as_deref().unwrap_or_default(),
            failure_policy: h.failure_policy.as_deref(),
            match_policy: h.match_policy.as_deref(),
            side_effects: &h.side_effects,
            timeout_seconds: h.timeout_seconds,
            namespace_selector: h.namespace_selector.as_ref(),
            object_selector: h.object_selector.as_ref(),
            client_config: &h.client_config,
            admission_review_versions: &h.admission_review_versions,
            match_conditions: h.match_conditions.as_deref().unwrap_or_default(),
        }
    }};
}
pub(crate) use hook_view;

/// upstream's SetDefaults_{Validating,Mutating}Webhook, _Rule and
/// _ServiceReference, on the fields both kinds share.
macro_rules! default_hook {
    ($h:expr) => {{
        let h = $h;
        h.failure_policy.get_or_insert_with(|| "Fail".into());
        h.match_policy.get_or_insert_with(|| "Equivalent".into());
        h.namespace_selector.get_or_insert_with(Default::default);
        h.object_selector.get_or_insert_with(Default::default);
        h.timeout_seconds.get_or_insert(10);
        for rule in h.rules.iter_mut().flatten() {
            rule.scope.get_or_insert_with(|| "*".into());
        }
        if let Some(service) = &mut h.client_config.service {
            service.port.get_or_insert(443);
        }
    }};
}
pub(crate) use default_hook;

/// Every webhook of a configuration, with upstream's per-configuration checks.
pub(crate) fn validate_hooks(
    hooks: &[Hook<'_>],
    reinvocation: &[Option<&str>],
    opts: Options,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = HashSet::new();
    for (i, hook) in hooks.iter().enumerate() {
        let path = index("webhooks", i);
        errs.extend(validate_hook(hook, opts, &path));
        if let Some(Some(policy)) = reinvocation.get(i)
            && !REINVOCATION_POLICIES.contains(policy)
        {
            errs.push(FieldError::not_supported(
                child(&path, "reinvocationPolicy"),
                *policy,
                REINVOCATION_POLICIES,
            ));
        }
        errs.extend(validate_review_versions(
            hook.admission_review_versions,
            opts.require_recognized_review_version,
            &child(&path, "admissionReviewVersions"),
        ));
        if opts.require_unique_names && !hook.name.is_empty() && !names.insert(hook.name) {
            errs.push(FieldError::duplicate(child(&path, "name"), hook.name));
        }
    }
    errs
}

fn validate_hook(hook: &Hook<'_>, opts: Options, path: &str) -> Vec<FieldError> {
    let mut errs = fully_qualified_name(hook.name, &child(path, "name"));
    for (i, rule) in hook.rules.iter().enumerate() {
        errs.extend(validate_rule(rule, &index(&child(path, "rules"), i)));
    }
    if let Some(p) = hook.failure_policy
        && !FAILURE_POLICIES.contains(&p)
    {
        errs.push(FieldError::not_supported(
            child(path, "failurePolicy"),
            p,
            FAILURE_POLICIES,
        ));
    }
    if let Some(p) = hook.match_policy
        && !MATCH_POLICIES.contains(&p)
    {
        errs.push(FieldError::not_supported(
            child(path, "matchPolicy"),
            p,
            MATCH_POLICIES,
        ));
    }
    let allowed = if opts.require_no_side_effects {
        NO_SIDE_EFFECTS
    } else {
        SIDE_EFFECTS
    };
    // k8s-openapi reads an absent sideEffects as "".
    if hook.side_effects.is_empty() {
        errs.push(FieldError::required(
            child(path, "sideEffects"),
            format!("must specify one of {}", allowed.join(", ")),
        ));
    } else if !allowed.contains(&hook.side_effects) {
        errs.push(FieldError::not_supported(
            child(path, "sideEffects"),
            hook.side_effects,
            allowed,
        ));
    }
    if let Some(t) = hook.timeout_seconds
        && !(1..=30).contains(&t)
    {
        errs.push(FieldError::invalid(
            child(path, "timeoutSeconds"),
            t,
            "the timeout value must be between 1 and 30 seconds",
        ));
    }
    errs.extend(validate_label_selector(
        hook.namespace_selector,
        &child(path, "namespaceSelector"),
    ));
    errs.extend(validate_label_selector(
        hook.object_selector,
        &child(path, "objectSelector"),
    ));
    errs.extend(validate_client_config(
        hook.client_config,
        &child(path, "clientConfig"),
    ));
    errs.extend(validate_match_conditions(
        hook.match_conditions,
        &crate::admission::cel::Declarations::WEBHOOK,
        &child(path, "matchConditions"),
    ));
    errs
}

/// upstream's validateMatchConditions: at most 64, names qualified and
/// unique, expressions that compile to a bool against `decls`.
pub(crate) fn validate_match_conditions(
    conditions: &[MatchCondition],
    decls: &crate::admission::cel::Declarations,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if conditions.len() > MAX_MATCH_CONDITIONS {
        errs.push(FieldError::too_many(
            path,
            conditions.len(),
            MAX_MATCH_CONDITIONS,
        ));
    }
    let mut names = HashSet::new();
    for (i, c) in conditions.iter().enumerate() {
        let at = index(path, i);
        let expression = c.expression.trim();
        if expression.is_empty() {
            errs.push(FieldError::required(child(&at, "expression"), ""));
        } else {
            errs.extend(validate_expression(
                expression,
                decls,
                crate::apiextensions::cel::Want::Bool,
                &child(&at, "expression"),
            ));
        }
        if c.name.is_empty() {
            errs.push(FieldError::required(child(&at, "name"), ""));
        } else {
            errs.extend(validate_qualified_name(&c.name, &child(&at, "name")));
            if !names.insert(c.name.as_str()) {
                errs.push(FieldError::duplicate(child(&at, "name"), c.name.as_str()));
            }
        }
    }
    errs
}

/// upstream's validateCELCondition: the compiler's detail, as an Invalid
/// error whose value is the expression.
pub(crate) fn validate_expression(
    expression: &str,
    decls: &crate::admission::cel::Declarations,
    want: crate::apiextensions::cel::Want,
    path: &str,
) -> Vec<FieldError> {
    match crate::admission::cel::compile(expression, decls, Some(want)) {
        Ok(_) => Vec::new(),
        Err(detail) => vec![FieldError::invalid(path, expression, detail)],
    }
}

/// upstream's utilvalidation.IsFullyQualifiedName.
fn fully_qualified_name(name: &str, path: &str) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let errs = is_dns1123_subdomain(name);
    if !errs.is_empty() {
        return vec![FieldError::invalid(path, name, errs.join(","))];
    }
    if name.split('.').count() < 3 {
        return vec![FieldError::invalid(
            path,
            name,
            "should be a domain with at least three segments separated by dots",
        )];
    }
    Vec::new()
}

fn validate_review_versions(versions: &[String], require: bool, path: &str) -> Vec<FieldError> {
    if versions.is_empty() {
        return vec![FieldError::required(
            path,
            format!("must specify one of {}", REVIEW_VERSIONS.join(", ")),
        )];
    }
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    for (i, v) in versions.iter().enumerate() {
        if !seen.insert(v) {
            errs.push(FieldError::invalid(
                index(path, i),
                v.as_str(),
                "duplicate version",
            ));
            continue;
        }
        errs.extend(invalid_each(&index(path, i), v, is_dns1035_label(v)));
    }
    if require
        && !versions
            .iter()
            .any(|v| REVIEW_VERSIONS.contains(&v.as_str()))
    {
        errs.push(FieldError::invalid(
            path,
            serde_json::json!(versions),
            format!(
                "must include at least one of {}",
                REVIEW_VERSIONS.join(", ")
            ),
        ));
    }
    errs
}

fn has_wildcard(v: &[String]) -> bool {
    v.iter().any(|s| s == "*")
}

pub(crate) fn validate_rule(rule: &RuleWithOperations, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ops = rule.operations.as_deref().unwrap_or_default();
    let ops_path = child(path, "operations");
    if ops.is_empty() {
        errs.push(FieldError::required(&ops_path, ""));
    }
    if ops.len() > 1 && has_wildcard(ops) {
        errs.push(FieldError::invalid(
            &ops_path,
            serde_json::json!(ops),
            "if '*' is present, must not specify other operations",
        ));
    }
    for (i, op) in ops.iter().enumerate() {
        if !OPERATIONS.contains(&op.as_str()) {
            errs.push(FieldError::not_supported(
                index(&ops_path, i),
                op.as_str(),
                OPERATIONS,
            ));
        }
    }
    let groups = rule.api_groups.as_deref().unwrap_or_default();
    if groups.is_empty() {
        errs.push(FieldError::required(child(path, "apiGroups"), ""));
    }
    if groups.len() > 1 && has_wildcard(groups) {
        errs.push(FieldError::invalid(
            child(path, "apiGroups"),
            serde_json::json!(groups),
            "if '*' is present, must not specify other API groups",
        ));
    }
    let versions = rule.api_versions.as_deref().unwrap_or_default();
    let versions_path = child(path, "apiVersions");
    if versions.is_empty() {
        errs.push(FieldError::required(&versions_path, ""));
    }
    if versions.len() > 1 && has_wildcard(versions) {
        errs.push(FieldError::invalid(
            &versions_path,
            serde_json::json!(versions),
            "if '*' is present, must not specify other API versions",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        if v.is_empty() {
            errs.push(FieldError::required(index(&versions_path, i), ""));
        }
    }
    errs.extend(validate_resources(
        rule.resources.as_deref().unwrap_or_default(),
        &child(path, "resources"),
    ));
    if let Some(scope) = &rule.scope
        && !SCOPES.contains(&scope.as_str())
    {
        errs.push(FieldError::not_supported(
            child(path, "scope"),
            scope.as_str(),
            SCOPES,
        ));
    }
    errs
}

/// upstream's validateResources: `res/sub` with wildcards that must not
/// overlap what another entry already covers.
fn validate_resources(resources: &[String], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if resources.is_empty() {
        errs.push(FieldError::required(path, ""));
    }
    let mut wildcard_sub = HashSet::new();
    let mut wildcard_res = HashSet::new();
    let (mut double, mut single, mut plain) = (false, false, false);
    for (i, res_sub) in resources.iter().enumerate() {
        if res_sub.is_empty() {
            errs.push(FieldError::required(index(path, i), ""));
            continue;
        }
        double |= res_sub == "*/*";
        single |= res_sub == "*";
        let Some((res, sub)) = res_sub.split_once('/') else {
            // As upstream: the last entry without a subresource decides.
            plain = res_sub != "*";
            continue;
        };
        if wildcard_sub.contains(res) {
            errs.push(FieldError::invalid(
                index(path, i),
                res_sub.as_str(),
                format!("if '{res}/*' is present, must not specify {res_sub}"),
            ));
        }
        if wildcard_res.contains(sub) {
            errs.push(FieldError::invalid(
                index(path, i),
                res_sub.as_str(),
                format!("if '*/{sub}' is present, must not specify {res_sub}"),
            ));
        }
        if sub == "*" {
            wildcard_sub.insert(res);
        }
        if res == "*" {
            wildcard_res.insert(sub);
        }
    }
    if resources.len() > 1 && double {
        errs.push(FieldError::invalid(
            path,
            serde_json::json!(resources),
            "if '*/*' is present, must not specify other resources",
        ));
    }
    if single && plain {
        errs.push(FieldError::invalid(
            path,
            serde_json::json!(resources),
            "if '*' is present, must not specify other resources without subresources",
        ));
    }
    errs
}

pub(crate) fn validate_client_config(cc: &WebhookClientConfig, path: &str) -> Vec<FieldError> {
    match (&cc.url, &cc.service) {
        (Some(url), None) => validate_url(url, &child(path, "url")),
        (None, Some(s)) => validate_service(
            &child(path, "service"),
            &s.name,
            &s.namespace,
            s.path.as_deref(),
            s.port.unwrap_or(443),
        ),
        _ => vec![FieldError::required(
            path,
            "exactly one of url or service is required",
        )],
    }
}

/// upstream's webhook.ValidateWebhookURL with forceHttps.
fn validate_url(raw: &str, path: &str) -> Vec<FieldError> {
    const FORM: &str = "; desired format: https://host[/path]";
    let u = match url::Url::parse(raw) {
        Ok(u) => u,
        Err(e) => {
            return vec![FieldError::required(
                path,
                format!("url must be a valid URL: {e}{FORM}"),
            )];
        }
    };
    let mut errs = Vec::new();
    if u.scheme() != "https" {
        errs.push(FieldError::invalid(
            path,
            u.scheme(),
            format!("'https' is the only allowed URL scheme{FORM}"),
        ));
    }
    let host = u.host_str().unwrap_or("");
    if host.is_empty() {
        errs.push(FieldError::invalid(
            path,
            host,
            format!("host must be provided{FORM}"),
        ));
    }
    if !u.username().is_empty() || u.password().is_some() {
        errs.push(FieldError::invalid(
            path,
            u.username(),
            "user information is not permitted in the URL",
        ));
    }
    if let Some(f) = u.fragment() {
        errs.push(FieldError::invalid(
            path,
            f,
            "fragments are not permitted in the URL",
        ));
    }
    if let Some(q) = u.query() {
        errs.push(FieldError::invalid(
            path,
            q,
            "query parameters are not permitted in the URL",
        ));
    }
    errs
}

/// upstream's webhook.ValidateWebhookService. Upstream calls it with the
/// service's name and namespace swapped against its parameters, so a
/// missing name is reported at `namespace` and vice versa; kept so the
/// messages are the ones clients see from upstream.
fn validate_service(
    path: &str,
    name: &str,
    namespace: &str,
    url_path: Option<&str>,
    port: i32,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if name.is_empty() {
        errs.push(FieldError::required(
            child(path, "namespace"),
            "service namespace is required",
        ));
    }
    if namespace.is_empty() {
        errs.push(FieldError::required(
            child(path, "name"),
            "service name is required",
        ));
    }
    let port_errs = is_valid_port_num(port);
    if !port_errs.is_empty() {
        errs.push(FieldError::invalid(
            child(path, "port"),
            port,
            format!("port is not valid: {}", port_errs.join(", ")),
        ));
    }
    let Some(p) = url_path.filter(|p| !p.is_empty() && *p != "/") else {
        return errs;
    };
    let at = child(path, "path");
    if p == "//" {
        errs.push(FieldError::invalid(&at, p, "segment[0] may not be empty"));
        return errs;
    }
    if !p.starts_with('/') {
        errs.push(FieldError::invalid(&at, p, "must start with a '/'"));
    }
    let inner = p.strip_prefix('/').unwrap_or(p);
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    for (i, step) in inner.split('/').enumerate() {
        if step.is_empty() {
            errs.push(FieldError::invalid(
                &at,
                p,
                format!("segment[{i}] may not be empty"),
            ));
            continue;
        }
        for failure in is_dns1123_subdomain(step) {
            errs.push(FieldError::invalid(
                &at,
                p,
                format!("segment[{i}]: {failure}"),
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests;
