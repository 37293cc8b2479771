//! ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding
//! (upstream `pkg/registry/admissionregistration/validatingadmissionpolicy*`,
//! defaults from `v1/defaults.go`, checks from `validation.go`): every CEL
//! expression must compile, against the variables it will be given.
//!
//! Not checked: the status's `typeChecking` (this apiserver writes none),
//! and the relaxed environment upstream grants expressions already stored.

use super::{validate_expression, validate_match_conditions, validate_rule};
use crate::admission::cel::{Declarations, result_type};
use crate::apiextensions::cel::Want;
use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{
    child, index, is_dns1035_label, is_dns1123_subdomain, is_valid_path_segment_name,
    validate_label_selector, validate_qualified_name,
};
use k8s_openapi::api::admissionregistration::v1::{
    MatchResources, NamedRuleWithOperations, ParamKind, ParamRef, RuleWithOperations,
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    ValidatingAdmissionPolicyBindingSpec, ValidatingAdmissionPolicySpec, Validation, Variable,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::HashSet;

const FAILURE_POLICIES: &[&str] = &["Fail", "Ignore"];
const MATCH_POLICIES: &[&str] = &["Equivalent", "Exact"];
const REASONS: &[&str] = &[
    "Forbidden",
    "Invalid",
    "RequestEntityTooLarge",
    "Unauthorized",
];
const ACTIONS: &[&str] = &["Audit", "Deny", "Warn"];
const PARAMETER_NOT_FOUND_ACTIONS: &[&str] = &["Deny", "Allow"];
const MAX_AUDIT_ANNOTATIONS: usize = 20;
const MAX_AUDIT_ANNOTATION_EXPRESSION: usize = 5 * 1024;

pub struct ValidatingAdmissionPolicyStrategy;
pub struct ValidatingAdmissionPolicyBindingStrategy;

/// upstream's SetDefaults_MatchResources and SetDefaults_Rule.
fn default_match_resources(m: &mut MatchResources) {
    m.match_policy.get_or_insert_with(|| "Equivalent".into());
    m.namespace_selector
        .get_or_insert_with(LabelSelector::default);
    m.object_selector.get_or_insert_with(LabelSelector::default);
    for rule in m
        .resource_rules
        .iter_mut()
        .flatten()
        .chain(m.exclude_resource_rules.iter_mut().flatten())
    {
        rule.scope.get_or_insert_with(|| "*".into());
    }
}

impl Strategy for ValidatingAdmissionPolicyStrategy {
    type Object = ValidatingAdmissionPolicy;

    fn defaults(&self, obj: &mut ValidatingAdmissionPolicy) {
        let spec = obj.spec.get_or_insert_with(Default::default);
        spec.failure_policy.get_or_insert_with(|| "Fail".into());
        if let Some(m) = &mut spec.match_constraints {
            default_match_resources(m);
        }
    }

    fn prepare_for_create(&self, obj: &mut ValidatingAdmissionPolicy) {
        obj.status = None;
    }

    fn validate(&self, obj: &ValidatingAdmissionPolicy) -> Vec<FieldError> {
        let name = obj.metadata.name.as_deref().unwrap_or("");
        validate_policy_spec(
            name,
            obj.spec.as_ref().unwrap_or(&Default::default()),
            "spec",
        )
    }
}

impl Strategy for ValidatingAdmissionPolicyBindingStrategy {
    type Object = ValidatingAdmissionPolicyBinding;

    fn defaults(&self, obj: &mut ValidatingAdmissionPolicyBinding) {
        if let Some(m) = obj.spec.as_mut().and_then(|s| s.match_resources.as_mut()) {
            default_match_resources(m);
        }
    }

    fn validate(&self, obj: &ValidatingAdmissionPolicyBinding) -> Vec<FieldError> {
        validate_binding_spec(obj.spec.as_ref().unwrap_or(&Default::default()), "spec")
    }
}

/// The declarations a policy's expressions compile with: `params` when it
/// has a paramKind; `variables` holding the variables before `upto`.
pub(crate) fn declarations(spec: &ValidatingAdmissionPolicySpec, upto: usize) -> Declarations {
    let mut decls = Declarations {
        params: spec.param_kind.is_some(),
        variables: Some(Vec::new()),
        authorizer: true,
    };
    for v in spec.variables.iter().flatten().take(upto) {
        let ty = result_type(&v.expression, &decls);
        if let Some(vars) = &mut decls.variables {
            vars.push((v.name.clone(), ty));
        }
    }
    decls
}

fn validate_policy_spec(
    name: &str,
    spec: &ValidatingAdmissionPolicySpec,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match spec.failure_policy.as_deref() {
        None => errs.push(FieldError::required(child(path, "failurePolicy"), "")),
        Some(p) if !FAILURE_POLICIES.contains(&p) => errs.push(FieldError::not_supported(
            child(path, "failurePolicy"),
            p,
            FAILURE_POLICIES,
        )),
        Some(_) => {}
    }
    if let Some(kind) = &spec.param_kind {
        errs.extend(validate_param_kind(kind, &child(path, "paramKind")));
    }
    let constraints = child(path, "matchConstraints");
    match &spec.match_constraints {
        None => errs.push(FieldError::required(&constraints, "")),
        Some(m) => {
            errs.extend(validate_match_resources(m, &constraints));
            if m.resource_rules.as_deref().unwrap_or_default().is_empty() {
                errs.push(FieldError::required(
                    child(&constraints, "resourceRules"),
                    "",
                ));
            }
        }
    }
    let all = declarations(spec, usize::MAX);
    // Match conditions see params, never variables.
    let conditions = Declarations {
        params: all.params,
        variables: None,
        authorizer: true,
    };
    errs.extend(validate_match_conditions(
        spec.match_conditions.as_deref().unwrap_or_default(),
        &conditions,
        &child(path, "matchConditions"),
    ));
    for (i, v) in spec.variables.iter().flatten().enumerate() {
        errs.extend(validate_variable(
            v,
            &declarations(spec, i),
            &index(&child(path, "variables"), i),
        ));
    }
    let validations = spec.validations.as_deref().unwrap_or_default();
    let annotations = spec.audit_annotations.as_deref().unwrap_or_default();
    if validations.is_empty() && annotations.is_empty() {
        let why = "validations or auditAnnotations must contain at least one item";
        errs.push(FieldError::required(child(path, "validations"), why));
        errs.push(FieldError::required(child(path, "auditAnnotations"), why));
        return errs;
    }
    for (i, v) in validations.iter().enumerate() {
        errs.extend(validate_validation(
            v,
            &all,
            &index(&child(path, "validations"), i),
        ));
    }
    let at = child(path, "auditAnnotations");
    if annotations.len() > MAX_AUDIT_ANNOTATIONS {
        errs.push(FieldError::invalid(
            &at,
            serde_json::json!(annotations),
            format!("must not have more than {MAX_AUDIT_ANNOTATIONS} auditAnnotations"),
        ));
    }
    let mut keys = HashSet::new();
    for (i, a) in annotations.iter().enumerate() {
        let p = index(&at, i);
        if name.is_empty() {
            errs.push(FieldError::invalid(
                child(&p, "key"),
                a.key.as_str(),
                "requires metadata.name be non-empty",
            ));
        } else {
            errs.extend(validate_qualified_name(
                &format!("{name}/{}", a.key),
                &child(&p, "key"),
            ));
        }
        let expr = a.value_expression.trim();
        let vp = child(&p, "valueExpression");
        if expr.is_empty() {
            errs.push(FieldError::required(
                &vp,
                "valueExpression is not specified",
            ));
        } else if expr.len() > MAX_AUDIT_ANNOTATION_EXPRESSION {
            errs.push(FieldError::required(
                &vp,
                format!("must not exceed {MAX_AUDIT_ANNOTATION_EXPRESSION} bytes in length"),
            ));
        } else if let Err(detail) = crate::admission::cel::compile(expr, &all, None) {
            errs.push(FieldError::invalid(
                &vp,
                a.value_expression.as_str(),
                detail,
            ));
        }
        if !keys.insert(a.key.as_str()) {
            errs.push(FieldError::duplicate(child(&p, "key"), a.key.as_str()));
        }
    }
    errs
}

fn is_cel_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && !crate::apiextensions::cel::RESERVED.contains(&name)
}

fn validate_variable(v: &Variable, decls: &Declarations, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if v.name.trim().is_empty() {
        errs.push(FieldError::required(
            child(path, "name"),
            "name is not specified",
        ));
    } else if !is_cel_identifier(&v.name) {
        errs.push(FieldError::invalid(
            child(path, "name"),
            v.name.as_str(),
            "name is not a valid CEL identifier",
        ));
    }
    if v.expression.trim().is_empty() {
        errs.push(FieldError::required(
            child(path, "expression"),
            "expression is not specified",
        ));
    } else if let Err(detail) = crate::admission::cel::compile(&v.expression, decls, None) {
        errs.push(FieldError::invalid(
            child(path, "expression"),
            v.expression.as_str(),
            detail,
        ));
    }
    errs
}

fn validate_validation(v: &Validation, decls: &Declarations, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if v.expression.trim().is_empty() {
        errs.push(FieldError::required(
            child(path, "expression"),
            "expression is not specified",
        ));
    } else {
        errs.extend(validate_expression(
            &v.expression,
            decls,
            Want::Bool,
            &child(path, "expression"),
        ));
    }
    let message_expression = v.message_expression.as_deref().unwrap_or("");
    if !message_expression.is_empty() && message_expression.trim().is_empty() {
        errs.push(FieldError::invalid(
            child(path, "messageExpression"),
            message_expression,
            "must be non-empty if specified",
        ));
    } else if !message_expression.trim().is_empty() {
        // Upstream's message expressions never see the authorizer.
        errs.extend(validate_expression(
            message_expression,
            &Declarations {
                authorizer: false,
                ..decls.clone()
            },
            Want::String,
            &child(path, "messageExpression"),
        ));
    }
    let message = v.message.as_deref().unwrap_or("");
    if !message.is_empty() && message.trim().is_empty() {
        errs.push(FieldError::invalid(
            child(path, "message"),
            message,
            "message must be non-empty if specified",
        ));
    } else if message.trim().contains(['\n', '\r']) {
        errs.push(FieldError::invalid(
            child(path, "message"),
            message,
            "message must not contain line breaks",
        ));
    }
    if let Some(reason) = v.reason.as_deref()
        && !REASONS.contains(&reason)
    {
        errs.push(FieldError::not_supported(
            child(path, "reason"),
            reason,
            REASONS,
        ));
    }
    errs
}

fn validate_param_kind(kind: &ParamKind, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let av_path = child(path, "apiVersion");
    match kind.api_version.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(&av_path, "")),
        av => {
            let (group, version) = match av.matches('/').count() {
                0 => ("", av),
                1 => av.split_once('/').unwrap_or(("", av)),
                _ => {
                    errs.push(FieldError::invalid(
                        &av_path,
                        av,
                        format!("unexpected GroupVersion string: {av}"),
                    ));
                    ("", "")
                }
            };
            if av.matches('/').count() <= 1 {
                let group_errs = if group.is_empty() {
                    Vec::new()
                } else {
                    is_dns1123_subdomain(group)
                };
                if !group_errs.is_empty() {
                    errs.push(FieldError::invalid(&av_path, group, group_errs.join(",")));
                }
                if version.is_empty() {
                    errs.push(FieldError::invalid(
                        &av_path,
                        av,
                        "version must be specified",
                    ));
                } else {
                    let version_errs = is_dns1035_label(version);
                    if !version_errs.is_empty() {
                        errs.push(FieldError::invalid(
                            &av_path,
                            version,
                            version_errs.join(","),
                        ));
                    }
                }
            }
        }
    }
    match kind.kind.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(child(path, "kind"), "")),
        k => {
            let kind_errs = is_dns1035_label(&k.to_lowercase());
            if !kind_errs.is_empty() {
                errs.push(FieldError::invalid(
                    child(path, "kind"),
                    k,
                    format!(
                        "may have mixed case, but should otherwise match: {}",
                        kind_errs.join(",")
                    ),
                ));
            }
        }
    }
    errs
}

/// A NamedRuleWithOperations's rule, for the checks webhooks' rules share.
pub(crate) fn rule_of(n: &NamedRuleWithOperations) -> RuleWithOperations {
    RuleWithOperations {
        api_groups: n.api_groups.clone(),
        api_versions: n.api_versions.clone(),
        operations: n.operations.clone(),
        resources: n.resources.clone(),
        scope: n.scope.clone(),
    }
}

fn validate_named_rule(n: &NamedRuleWithOperations, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = HashSet::new();
    for (i, name) in n.resource_names.iter().flatten().enumerate() {
        let p = index(&child(path, "resourceNames"), i);
        for msg in is_valid_path_segment_name(name) {
            errs.push(FieldError::invalid(&p, name.as_str(), msg));
        }
        if !names.insert(name.as_str()) {
            errs.push(FieldError::duplicate(&p, name.as_str()));
        }
    }
    errs.extend(validate_rule(&rule_of(n), path));
    errs
}

fn validate_match_resources(m: &MatchResources, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match m.match_policy.as_deref() {
        None => errs.push(FieldError::required(child(path, "matchPolicy"), "")),
        Some(p) if !MATCH_POLICIES.contains(&p) => errs.push(FieldError::not_supported(
            child(path, "matchPolicy"),
            p,
            MATCH_POLICIES,
        )),
        Some(_) => {}
    }
    for (field, selector) in [
        ("namespaceSelector", &m.namespace_selector),
        ("objectSelector", &m.object_selector),
    ] {
        match selector {
            None => errs.push(FieldError::required(child(path, field), "")),
            Some(s) => errs.extend(validate_label_selector(Some(s), &child(path, field))),
        }
    }
    for (field, rules) in [
        ("resourceRules", &m.resource_rules),
        ("excludeResourceRules", &m.exclude_resource_rules),
    ] {
        for (i, r) in rules.iter().flatten().enumerate() {
            errs.extend(validate_named_rule(r, &index(&child(path, field), i)));
        }
    }
    errs
}

fn validate_binding_spec(
    spec: &ValidatingAdmissionPolicyBindingSpec,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match spec.policy_name.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(child(path, "policyName"), "")),
        name => {
            for msg in is_dns1123_subdomain(name) {
                errs.push(FieldError::invalid(child(path, "policyName"), name, msg));
            }
        }
    }
    if let Some(r) = &spec.param_ref {
        errs.extend(validate_param_ref(r, &child(path, "paramRef")));
    }
    if let Some(m) = &spec.match_resources {
        errs.extend(validate_match_resources(m, &child(path, "matchResources")));
    }
    errs.extend(validate_actions(
        spec.validation_actions.as_deref().unwrap_or_default(),
        &child(path, "validationActions"),
    ));
    errs
}

fn validate_param_ref(r: &ParamRef, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = r.name.as_deref().unwrap_or("");
    const EXCLUSIVE: &str = "name and selector are mutually exclusive";
    if !name.is_empty() {
        for msg in is_valid_path_segment_name(name) {
            errs.push(FieldError::invalid(child(path, "name"), name, msg));
        }
        if r.selector.is_some() {
            errs.push(FieldError::forbidden(child(path, "name"), EXCLUSIVE));
        }
    }
    if let Some(s) = &r.selector {
        errs.extend(validate_label_selector(Some(s), &child(path, "selector")));
        if !name.is_empty() {
            errs.push(FieldError::forbidden(child(path, "selector"), EXCLUSIVE));
        }
    }
    if name.is_empty() && r.selector.is_none() {
        errs.push(FieldError::required(
            path,
            "one of name or selector must be specified",
        ));
    }
    match r.parameter_not_found_action.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(
            child(path, "parameterNotFoundAction"),
            "",
        )),
        a if !PARAMETER_NOT_FOUND_ACTIONS.contains(&a) => errs.push(FieldError::not_supported(
            child(path, "parameterNotFoundAction"),
            a,
            PARAMETER_NOT_FOUND_ACTIONS,
        )),
        _ => {}
    }
    errs
}

fn validate_actions(actions: &[String], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    for (i, a) in actions.iter().enumerate() {
        if !ACTIONS.contains(&a.as_str()) {
            errs.push(FieldError::not_supported(
                index(path, i),
                a.as_str(),
                ACTIONS,
            ));
        }
        if !seen.insert(a.as_str()) {
            errs.push(FieldError::duplicate(index(path, i), a.as_str()));
        }
    }
    if seen.contains("Deny") && seen.contains("Warn") {
        errs.push(FieldError::invalid(
            path,
            serde_json::json!(actions),
            "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ));
    }
    if seen.is_empty() {
        errs.push(FieldError::required(
            path,
            "at least one validation action is required",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::fields;
    use serde_json::{Value, from_value, json};

    fn policy(spec: Value) -> ValidatingAdmissionPolicy {
        let mut p: ValidatingAdmissionPolicy =
            from_value(json!({"metadata": {"name": "demo-policy.example.com"}, "spec": spec}))
                .unwrap();
        ValidatingAdmissionPolicyStrategy.defaults(&mut p);
        p
    }

    fn demo(extra: Value) -> Value {
        let mut spec = json!({
            "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]},
            "validations": [{"expression": "object.spec.replicas <= 5"}],
        });
        if let (Some(s), Value::Object(e)) = (spec.as_object_mut(), extra) {
            s.extend(e);
        }
        spec
    }

    #[test]
    fn the_documented_example_is_valid_and_defaulted() {
        let p = policy(demo(json!({})));
        assert!(ValidatingAdmissionPolicyStrategy.validate(&p).is_empty());
        let spec = p.spec.unwrap();
        assert_eq!(spec.failure_policy.as_deref(), Some("Fail"));
        let m = spec.match_constraints.unwrap();
        assert_eq!(m.match_policy.as_deref(), Some("Equivalent"));
        assert!(m.namespace_selector.is_some() && m.object_selector.is_some());
        assert_eq!(m.resource_rules.unwrap()[0].scope.as_deref(), Some("*"));
    }

    #[test]
    fn policy_validation_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "no constraints",
                json!({"validations": [{"expression": "true"}]}),
                vec!["spec.matchConstraints"],
            ),
            (
                "no validations",
                json!({"validations": []}),
                vec!["spec.validations", "spec.auditAnnotations"],
            ),
            (
                "not bool",
                json!({"validations": [{"expression": "object.spec.replicas"}]}),
                vec!["spec.validations[0].expression"],
            ),
            (
                "syntax",
                json!({"validations": [{"expression": "object.spec.replicas <="}]}),
                vec!["spec.validations[0].expression"],
            ),
            (
                "params without paramKind",
                json!({"validations": [{"expression": "params.max > 1"}]}),
                vec!["spec.validations[0].expression"],
            ),
            (
                "params with paramKind",
                json!({"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}, "validations": [{"expression": "object.spec.replicas <= int(params.data.max)"}]}),
                vec![],
            ),
            (
                "bad paramKind",
                json!({"paramKind": {"apiVersion": "a/b/c", "kind": ""}}),
                vec!["spec.paramKind.apiVersion", "spec.paramKind.kind"],
            ),
            (
                "message expression not string",
                json!({"validations": [{"expression": "true", "messageExpression": "1"}]}),
                vec!["spec.validations[0].messageExpression"],
            ),
            (
                "message expression",
                json!({"validations": [{"expression": "true", "messageExpression": "'replicas: ' + string(object.spec.replicas)"}]}),
                vec![],
            ),
            (
                "reason",
                json!({"validations": [{"expression": "true", "reason": "Teapot"}]}),
                vec!["spec.validations[0].reason"],
            ),
            (
                "message newline",
                json!({"validations": [{"expression": "true", "message": "a\nb"}]}),
                vec!["spec.validations[0].message"],
            ),
            (
                "variables",
                json!({"variables": [{"name": "big", "expression": "object.spec.replicas > 5"}], "validations": [{"expression": "!variables.big"}]}),
                vec![],
            ),
            (
                "undeclared variable",
                json!({"validations": [{"expression": "variables.big"}]}),
                vec!["spec.validations[0].expression"],
            ),
            (
                "later variable",
                json!({"variables": [{"name": "a", "expression": "variables.b"}, {"name": "b", "expression": "true"}]}),
                vec!["spec.variables[0].expression"],
            ),
            (
                "variable name",
                json!({"variables": [{"name": "in", "expression": "1"}, {"name": "", "expression": ""}]}),
                vec![
                    "spec.variables[0].name",
                    "spec.variables[1].name",
                    "spec.variables[1].expression",
                ],
            ),
            (
                "match condition",
                json!({"matchConditions": [{"name": "c", "expression": "variables.x == 1"}]}),
                vec!["spec.matchConditions[0].expression"],
            ),
            (
                "rule",
                json!({"matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["POKE"], "resources": ["deployments"]}]}}),
                vec!["spec.matchConstraints.resourceRules[0].operations[0]"],
            ),
            (
                "failure policy",
                json!({"failurePolicy": "Maybe"}),
                vec!["spec.failurePolicy"],
            ),
            (
                "audit annotation",
                json!({"auditAnnotations": [{"key": "a", "valueExpression": "'x'"}, {"key": "a", "valueExpression": ""}]}),
                vec![
                    "spec.auditAnnotations[1].valueExpression",
                    "spec.auditAnnotations[1].key",
                ],
            ),
        ];
        for (name, extra, want) in cases {
            let mut spec = demo(extra.clone());
            if name == "no constraints" {
                spec.as_object_mut().unwrap().remove("matchConstraints");
            }
            let errs = ValidatingAdmissionPolicyStrategy.validate(&policy(spec));
            assert_eq!(
                fields(&errs),
                want,
                "{name}: {:?}",
                errs.iter().map(|e| e.to_string()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn binding_validation_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "ok",
                json!({"policyName": "p", "validationActions": ["Deny"]}),
                vec![],
            ),
            (
                "no policy",
                json!({"validationActions": ["Deny"]}),
                vec!["spec.policyName"],
            ),
            (
                "no actions",
                json!({"policyName": "p"}),
                vec!["spec.validationActions"],
            ),
            (
                "deny and warn",
                json!({"policyName": "p", "validationActions": ["Deny", "Warn"]}),
                vec!["spec.validationActions"],
            ),
            (
                "unknown and duplicate",
                json!({"policyName": "p", "validationActions": ["Audit", "Audit", "Shout"]}),
                vec!["spec.validationActions[1]", "spec.validationActions[2]"],
            ),
            (
                "param ref",
                json!({"policyName": "p", "validationActions": ["Deny"], "paramRef": {"name": "a", "selector": {}}}),
                vec![
                    "spec.paramRef.name",
                    "spec.paramRef.selector",
                    "spec.paramRef.parameterNotFoundAction",
                ],
            ),
            (
                "param ref empty",
                json!({"policyName": "p", "validationActions": ["Deny"], "paramRef": {"parameterNotFoundAction": "Deny"}}),
                vec!["spec.paramRef"],
            ),
            (
                "match resources",
                json!({"policyName": "p", "validationActions": ["Deny"], "matchResources": {"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}}),
                vec!["spec.matchResources.namespaceSelector.matchExpressions[0].values"],
            ),
        ];
        for (name, spec, want) in cases {
            let mut b: ValidatingAdmissionPolicyBinding =
                from_value(json!({"metadata": {"name": "b"}, "spec": spec})).unwrap();
            ValidatingAdmissionPolicyBindingStrategy.defaults(&mut b);
            let errs = ValidatingAdmissionPolicyBindingStrategy.validate(&b);
            assert_eq!(
                fields(&errs),
                want,
                "{name}: {:?}",
                errs.iter().map(|e| e.to_string()).collect::<Vec<_>>()
            );
        }
    }
}
