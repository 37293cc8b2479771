//! ValidatingAdmissionPolicy (upstream's `admission/plugin/policy/validating`
//! on `policy/generic`): every binding of a policy whose `matchConstraints`
//! (and the binding's `matchResources`) select the write evaluates the
//! policy's `matchConditions`, then its `validations`, with `object`,
//! `oldObject`, `request`, `namespaceObject`, `params`, `variables` and
//! `authorizer` (the requesting user's checks, see
//! [`crate::admission::cel`]). A failed
//! validation is acted on by the binding's `validationActions`: Deny
//! refuses the write with upstream's message (the code from its reason),
//! Warn adds a warning, Audit records upstream's
//! `validation.policy.admission.k8s.io/validation_failure` annotation (a
//! JSON list of `{message, policy, binding, expressionIndex,
//! validationActions}`) in the request's audit event. `auditAnnotations`
//! are evaluated with the validations (unless a matchCondition is false):
//! a non-blank string is recorded as `<policy>/<key>` (distinct values of
//! several bindings joined by ", "), null skips it. An evaluation error
//! follows the policy's `failurePolicy`.
//!
//! A policy's `paramKind` names a served resource, built-in or a
//! CustomResourceDefinition's (one not served is upstream's "failed to
//! find resource referenced by paramKind" configuration error); a
//! binding's `paramRef` reads its objects from storage at admission time:
//! by `name`, or every object its `selector` matches (each a separate
//! evaluation, all must pass), in `paramRef.namespace` or else the write's
//! namespace for a namespaced kind. None found is upstream's "no params
//! found ..." under `parameterNotFoundAction: Deny`, and no evaluation
//! under Allow. `params` is null for bindings without a `paramRef`.
//!
//! Under `matchPolicy: Equivalent` (the default) a policy whose rules name
//! another served version of a custom resource sees the write converted
//! to that version, as the webhooks do.
//!
//! Policies and bindings are followed from etcd by views, as the webhook
//! configurations are; each policy's CEL is compiled once per
//! resourceVersion.
//!
//! Not covered:
//! * `status.typeChecking` (no type checking of expressions against the
//!   matched resources' schemas is written back).

use crate::admission::cel::{
    Activation, Declarations, Expression, Input, authorizer_of, compile, result_type,
};
use crate::admission::webhook::conditions::{self, Conditions, Outcome};
use crate::admission::webhook::matching::{
    matched_version, namespace_selector_matches, object_selector_matches, rule_matches_in,
};
use crate::admission::webhook::{Converted, Request, Versioned, review};
use crate::admission::{Attributes, Context, Operation, Plugin, Served, not_ready};
use crate::apiextensions::cel::Want;
use crate::error::ApiError;
use crate::registry::ResourceInfo;
use crate::registry::store::ListQuery;
use crate::registry::store::Store;
use crate::storage::view::View;
use async_trait::async_trait;
use common::selectors::LabelSelector;
use k8s_openapi::api::admissionregistration::v1::RuleWithOperations;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Upstream's MaxEvaluatedMessageExpressionSizeBytes.
const MAX_MESSAGE_BYTES: usize = 5 * 1024;

pub struct ValidatingAdmissionPolicy {
    policies: Arc<View>,
    bindings: Arc<View>,
    namespaces: Arc<View>,
    served: Served,
    /// Each policy compiled, by name, with the resourceVersion compiled.
    compiled: Mutex<HashMap<String, Versioned<Arc<Policy>>>>,
}

/// What a policy or binding selects.
struct Match {
    rules: Vec<(RuleWithOperations, Vec<String>)>,
    exclude: Vec<(RuleWithOperations, Vec<String>)>,
    namespace_selector: Result<LabelSelector, String>,
    object_selector: Result<LabelSelector, String>,
    /// `matchPolicy: Equivalent` (the default).
    equivalent: bool,
}

struct Check {
    expression: Result<Expression, String>,
    source: String,
    message: Option<String>,
    message_expression: Option<Result<Expression, String>>,
    reason: Option<String>,
}

/// One of `auditAnnotations`, compiled.
struct AuditAnnotation {
    key: String,
    expression: Result<Expression, String>,
}

/// One policy, compiled.
struct Policy {
    name: String,
    ignore_failures: bool,
    constraints: Match,
    /// `paramKind`: (apiVersion, kind).
    param_kind: Option<(String, String)>,
    conditions: Conditions,
    variables: Vec<(String, Arc<Expression>)>,
    /// A variable that does not compile: the policy cannot be evaluated.
    configuration_error: Option<String>,
    checks: Vec<Check>,
    audit_annotations: Vec<AuditAnnotation>,
}

struct Binding {
    name: String,
    actions: Vec<String>,
    match_resources: Option<Match>,
    param_ref: Option<ParamRef>,
}

/// A binding's `paramRef`.
struct ParamRef {
    name: String,
    namespace: String,
    selector: Option<Value>,
    /// `parameterNotFoundAction: Deny`.
    deny: bool,
}

/// A failed validation (or an error the failure policy makes one).
#[derive(Debug, PartialEq)]
struct Decision {
    /// The validation's index (0 for a failed matchCondition).
    index: usize,
    message: String,
    reason: Option<String>,
}

/// What one evaluation of a policy's auditAnnotations made (upstream's
/// PolicyAuditAnnotation; excluded ones are left out).
#[derive(Debug, PartialEq)]
enum Annotation {
    Publish {
        key: String,
        value: String,
    },
    /// An error under failurePolicy Fail: refuses the write.
    Error(String),
}

/// One evaluation of a policy for one binding (and params).
#[derive(Debug, Default, PartialEq)]
struct Evaluation {
    decisions: Vec<Decision>,
    annotations: Vec<Annotation>,
}

/// Upstream's maxAuditAnnotationValueLength.
const MAX_ANNOTATION_VALUE: usize = 10 * 1024;

/// The value of `validation.policy.admission.k8s.io/validation_failure`
/// (upstream's ValidationFailureValue, its field order).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ValidationFailure<'a> {
    message: &'a str,
    policy: &'a str,
    binding: &'a str,
    expression_index: usize,
    validation_actions: &'a [String],
}

/// The audit annotation of a failed validation under an Audit action.
const VALIDATION_FAILURE: &str = "validation.policy.admission.k8s.io/validation_failure";

fn validation_failure(policy: &str, binding: &Binding, d: &Decision) -> String {
    serde_json::to_string(&[ValidationFailure {
        message: &d.message,
        policy,
        binding: &binding.name,
        expression_index: d.index,
        validation_actions: &binding.actions,
    }])
    .unwrap_or_default()
}

/// Upstream's auditAnnotationCollector: one policy's annotation values by
/// key, duplicates (of several bindings or params) dropped, published as
/// `<policy>/<key>` with distinct values joined by ", ".
#[derive(Default)]
struct Collector {
    values: Vec<(String, Vec<String>)>,
}

impl Collector {
    fn add(&mut self, key: &str, value: String) {
        match self.values.iter_mut().find(|(k, _)| k == key) {
            Some((_, vs)) if vs.contains(&value) => {}
            Some((_, vs)) => vs.push(value),
            None => self.values.push((key.to_string(), vec![value])),
        }
    }

    fn annotations(self, policy: &str) -> Vec<(String, String)> {
        self.values
            .into_iter()
            .map(|(k, vs)| (format!("{policy}/{k}"), vs.join(", ")))
            .collect()
    }
}

/// The first `max` bytes of `s`, cut at a character boundary.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
    s
}

fn selector(v: &Value) -> Result<LabelSelector, String> {
    match v {
        Value::Null => Ok(LabelSelector::everything()),
        v => LabelSelector::from_label_selector_json(v),
    }
}

fn named_rules(v: &Value) -> Vec<(RuleWithOperations, Vec<String>)> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let rule: RuleWithOperations = serde_json::from_value(r.clone()).ok()?;
            let names = r["resourceNames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(String::from))
                .collect();
            Some((rule, names))
        })
        .collect()
}

impl Match {
    fn decode(v: &Value) -> Match {
        Match {
            rules: named_rules(&v["resourceRules"]),
            exclude: named_rules(&v["excludeResourceRules"]),
            namespace_selector: selector(&v["namespaceSelector"]),
            object_selector: selector(&v["objectSelector"]),
            equivalent: v["matchPolicy"].as_str() != Some("Exact"),
        }
    }

    /// upstream's matching.Matches: selectors, then excluded rules, then
    /// rules (a binding without rules does not narrow its policy's). The
    /// version the write matched in (an equivalent one under `matchPolicy:
    /// Equivalent`), or None.
    async fn matches(
        &self,
        req: &Request<'_>,
        namespaces: &View,
        need_rules: bool,
    ) -> Result<Option<&'static str>, ApiError> {
        let namespace = namespace_selector_matches(&self.namespace_selector, req, namespaces).await;
        if let Ok(false) = namespace {
            return Ok(None);
        }
        let object = object_selector_matches(&self.object_selector, req);
        if let Ok(false) = object {
            return Ok(None);
        }
        let hit = |rules: &[(RuleWithOperations, Vec<String>)]| {
            matched_version(rules, self.equivalent, req.attrs, |(rule, names), v| {
                rule_matches_in(rule, req.attrs, v)
                    && (names.is_empty() || names.iter().any(|n| n == req.attrs.name))
            })
        };
        if hit(&self.exclude).is_some() {
            return Ok(None);
        }
        let version = if need_rules || !self.rules.is_empty() {
            match hit(&self.rules) {
                Some(v) => v,
                None => return Ok(None),
            }
        } else {
            req.version
        };
        namespace?;
        object?;
        Ok(Some(version))
    }
}

impl Policy {
    fn compile(obj: &Value) -> Policy {
        let spec = &obj["spec"];
        let has_params = spec["paramKind"].is_object();
        let mut decls = Declarations {
            params: has_params,
            variables: Some(Vec::new()),
            authorizer: true,
        };
        // Upstream's message expressions never see the authorizer.
        let message_decls = |d: &Declarations| Declarations {
            authorizer: false,
            ..d.clone()
        };
        let mut variables = Vec::new();
        let mut configuration_error = None;
        for v in spec["variables"].as_array().into_iter().flatten() {
            let name = v["name"].as_str().unwrap_or("").to_string();
            let source = v["expression"].as_str().unwrap_or("");
            match compile(source, &decls, None) {
                Ok(e) => variables.push((name.clone(), Arc::new(e))),
                Err(e) => {
                    configuration_error.get_or_insert(format!("variable {name}: {e}"));
                }
            }
            let ty = result_type(source, &decls);
            if let Some(vars) = &mut decls.variables {
                vars.push((name, ty));
            }
        }
        let checks = spec["validations"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| {
                let source = v["expression"].as_str().unwrap_or("").to_string();
                Check {
                    expression: compile(&source, &decls, Some(Want::Bool))
                        .map_err(|e| format!("compilation error: {e}")),
                    source,
                    message: v["message"].as_str().map(String::from),
                    message_expression: v["messageExpression"]
                        .as_str()
                        .filter(|m| !m.trim().is_empty())
                        .map(|m| compile(m, &message_decls(&decls), Some(Want::String))),
                    reason: v["reason"].as_str().map(String::from),
                }
            })
            .collect();
        // As upstream, audit annotations see neither variables' authorizer
        // nor anything the validations do not.
        let audit_annotations = spec["auditAnnotations"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| AuditAnnotation {
                key: a["key"].as_str().unwrap_or("").to_string(),
                expression: compile(a["valueExpression"].as_str().unwrap_or(""), &decls, None)
                    .map_err(|e| format!("compilation error: {e}")),
            })
            .collect();
        Policy {
            name: obj["metadata"]["name"].as_str().unwrap_or("").to_string(),
            ignore_failures: spec["failurePolicy"].as_str() == Some("Ignore"),
            constraints: Match::decode(&spec["matchConstraints"]),
            param_kind: has_params.then(|| {
                let kind = &spec["paramKind"];
                let s = |v: &Value| v.as_str().unwrap_or("").to_string();
                (s(&kind["apiVersion"]), s(&kind["kind"]))
            }),
            conditions: conditions::compile_all(
                &spec["matchConditions"],
                &Declarations {
                    params: has_params,
                    variables: None,
                    authorizer: true,
                },
            ),
            variables,
            configuration_error,
            checks,
            audit_annotations,
        }
    }

    /// upstream's validator.Validate for one binding: the failed
    /// validations (errors count as failures under failurePolicy Fail)
    /// and the audit annotations.
    fn evaluate(&self, activation: &Activation) -> Evaluation {
        let failed = |index: usize, message: String| -> Vec<Decision> {
            if self.ignore_failures {
                Vec::new()
            } else {
                vec![Decision {
                    index,
                    message,
                    reason: None,
                }]
            }
        };
        match conditions::evaluate(&self.conditions, activation) {
            Outcome::Match => {}
            Outcome::NoMatch(_) => return Evaluation::default(),
            Outcome::Error(e) => {
                return Evaluation {
                    decisions: failed(0, e),
                    annotations: Vec::new(),
                };
            }
        }
        let mut decisions = Vec::new();
        for (index, check) in self.checks.iter().enumerate() {
            let result = match &check.expression {
                Ok(e) => activation.eval_bool(e),
                Err(e) => Err(e.clone()),
            };
            match result {
                Ok(true) => {}
                Ok(false) => decisions.push(Decision {
                    index,
                    message: self.message(check, activation),
                    reason: check.reason.clone(),
                }),
                Err(e) => decisions.extend(failed(index, e)),
            }
        }
        let annotations = self
            .audit_annotations
            .iter()
            .filter_map(|a| self.annotation(a, activation))
            .collect();
        Evaluation {
            decisions,
            annotations,
        }
    }

    /// One audit annotation: a non-blank string is published, blank or
    /// null excluded, anything else an error (excluded under Ignore).
    fn annotation(&self, a: &AuditAnnotation, activation: &Activation) -> Option<Annotation> {
        let result = match &a.expression {
            Ok(e) => activation.eval(e).and_then(|v| match v {
                cel::Value::String(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
                cel::Value::Null => Ok(None),
                other => Err(format!(
                    "valueExpression '{}' resulted in unsupported return type: {}. Return type must be either string or null.",
                    e.source,
                    other.type_of()
                )),
            }),
            Err(e) => Err(e.clone()),
        };
        match result {
            Ok(Some(value)) => Some(Annotation::Publish {
                key: a.key.clone(),
                value: truncate(value, MAX_ANNOTATION_VALUE),
            }),
            Ok(None) => None,
            Err(_) if self.ignore_failures => None,
            Err(e) => Some(Annotation::Error(e)),
        }
    }

    /// The failure's message: messageExpression's when it makes a usable
    /// one, else `message`, else `failed expression: <expression>`.
    fn message(&self, check: &Check, activation: &Activation) -> String {
        if let Some(Ok(e)) = &check.message_expression
            && let Ok(cel::Value::String(s)) = activation.eval(e)
        {
            let trimmed = s.trim();
            if !trimmed.is_empty()
                && trimmed.len() <= MAX_MESSAGE_BYTES
                && !trimmed.contains(['\n', '\r'])
            {
                return trimmed.to_string();
            }
        }
        match check
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            Some(m) => m.to_string(),
            None => format!("failed expression: {}", check.source.trim()),
        }
    }
}

impl Binding {
    fn decode(obj: &Value) -> Binding {
        let spec = &obj["spec"];
        Binding {
            name: obj["metadata"]["name"].as_str().unwrap_or("").to_string(),
            actions: spec["validationActions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(String::from))
                .collect(),
            match_resources: spec["matchResources"]
                .is_object()
                .then(|| Match::decode(&spec["matchResources"])),
            param_ref: spec["paramRef"].is_object().then(|| {
                let r = &spec["paramRef"];
                let s = |v: &Value| v.as_str().unwrap_or("").to_string();
                ParamRef {
                    name: s(&r["name"]),
                    namespace: s(&r["namespace"]),
                    selector: r["selector"].is_object().then(|| r["selector"].clone()),
                    deny: r["parameterNotFoundAction"].as_str() == Some("Deny"),
                }
            }),
        }
    }
}

/// upstream's reasonToCode.
fn code_of(reason: &str) -> (u16, &'static str) {
    match reason {
        "Forbidden" => (403, "Forbidden"),
        "Unauthorized" => (401, "Unauthorized"),
        "RequestEntityTooLarge" => (413, "RequestEntityTooLarge"),
        _ => (422, "Invalid"),
    }
}

/// The refusal: upstream's admission.NewForbidden on the write, with the
/// code and reason of the first denial and every denial as a cause.
fn refusal(attrs: &Attributes<'_>, denials: &[(String, Option<String>)]) -> ApiError {
    let (message, reason) = &denials[0];
    let info = attrs.info;
    let forbidden = ApiError::forbidden(info.group, info.resource, attrs.name, message);
    let (code, reason) = code_of(reason.as_deref().unwrap_or("Invalid"));
    let mut details = json!({"name": attrs.name, "kind": info.resource});
    if !info.group.is_empty() {
        details["group"] = json!(info.group);
    }
    details["causes"] = json!(
        denials
            .iter()
            .map(|(m, _)| json!({"message": m}))
            .collect::<Vec<_>>()
    );
    ApiError::new(code, reason, forbidden.message).with_details(details)
}

impl ValidatingAdmissionPolicy {
    pub fn new(ctx: &Context) -> Self {
        ValidatingAdmissionPolicy {
            policies: ctx.view("validatingadmissionpolicies"),
            bindings: ctx.view("validatingadmissionpolicybindings"),
            namespaces: ctx.view("namespaces"),
            served: ctx.served.clone(),
            compiled: Mutex::default(),
        }
    }

    /// Every policy with its bindings, both by name.
    fn hooks(&self) -> Vec<(Arc<Policy>, Vec<Binding>)> {
        let policies = self.policies.list("");
        let bindings = self.bindings.list("");
        let mut compiled = self.compiled.lock().expect("never poisoned");
        compiled.retain(|name, _| {
            policies
                .iter()
                .any(|p| p["metadata"]["name"].as_str() == Some(name))
        });
        policies
            .iter()
            .map(|p| {
                let name = p["metadata"]["name"].as_str().unwrap_or("").to_string();
                let version = p["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let policy = match compiled.get(&name) {
                    Some((v, policy)) if *v == version && !version.is_empty() => policy.clone(),
                    _ => {
                        let policy = Arc::new(Policy::compile(p));
                        compiled.insert(name.clone(), (version, policy.clone()));
                        policy
                    }
                };
                let own = bindings
                    .iter()
                    .filter(|b| b["spec"]["policyName"].as_str() == Some(&name))
                    .map(|b| Binding::decode(b))
                    .collect();
                (policy, own)
            })
            .filter(|(_, b): &(Arc<Policy>, Vec<Binding>)| !b.is_empty())
            .collect()
    }

    /// The namespace object of a namespaced write (never a namespace's own).
    async fn namespace_object(&self, attrs: &Attributes<'_>) -> Option<Arc<Value>> {
        if attrs.namespace.is_empty()
            || (attrs.info.group.is_empty() && attrs.info.resource == "namespaces")
        {
            return None;
        }
        self.namespaces.fetch(attrs.namespace).await
    }
}

/// The resource a policy's paramKind names, or upstream's configuration
/// error (a kind not served, e.g. a CRD not yet established).
fn param_resource(
    served: &Served,
    (api_version, kind): &(String, String),
) -> Result<&'static ResourceInfo, String> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    served
        .by_kind(group, version, kind)
        .filter(|_| !version.contains('/'))
        .ok_or_else(|| {
            format!(
                "failed to find resource referenced by paramKind: '{group}/{version}, Kind={kind}'"
            )
        })
}

/// Upstream's CollectParams: the param objects one binding is evaluated
/// with, each a separate evaluation (None: `params` is null). Empty when
/// none is found and the binding allows that; an error is the binding's
/// configuration error.
async fn collect_params(
    info: &ResourceInfo,
    (api_version, kind): &(String, String),
    param_ref: &ParamRef,
    namespace: &str,
    store: &Store,
) -> Result<Vec<Option<Value>>, String> {
    let namespace = if info.namespaced {
        match (param_ref.namespace.as_str(), namespace) {
            ("", "") => {
                return Err(
                    "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources"
                        .into(),
                );
            }
            ("", ns) | (ns, _) => Some(ns),
        }
    } else if !param_ref.namespace.is_empty() {
        return Err(
            "paramRef.namespace must not be provided for a cluster-scoped `paramKind`".into(),
        );
    } else {
        None
    };
    let found = if !param_ref.name.is_empty() {
        if param_ref.selector.is_some() {
            return Err("paramRef.name and paramRef.selector are mutually exclusive".into());
        }
        match store
            .get(info, namespace.unwrap_or(""), &param_ref.name)
            .await
        {
            Ok(obj) => vec![obj],
            Err(e) if e.code == 404 => Vec::new(),
            Err(e) => return Err(e.message),
        }
    } else if let Some(selector) = &param_ref.selector {
        let q = ListQuery {
            labels: LabelSelector::from_label_selector_json(selector)?,
            ..Default::default()
        };
        store
            .list(info, namespace, &q)
            .await
            .map_err(|e| e.message)?
            .items
    } else {
        return Err("one of name or selector must be provided".into());
    };
    if found.is_empty() && param_ref.deny {
        return Err(
            "no params found for policy binding with `Deny` parameterNotFoundAction".into(),
        );
    }
    Ok(found
        .into_iter()
        .map(|mut p| {
            // As upstream, params carry their type.
            if p["apiVersion"].is_null() {
                p["apiVersion"] = json!(api_version);
                p["kind"] = json!(kind);
            }
            Some(p)
        })
        .collect())
}

/// Upstream's isPolicyResource: writes of the policies and their bindings
/// are never subject to policies, so a bad one can always be removed.
fn exempt(attrs: &Attributes<'_>) -> bool {
    attrs.info.group == "admissionregistration.k8s.io"
        && matches!(
            attrs.info.resource,
            "validatingadmissionpolicies"
                | "validatingadmissionpolicybindings"
                | "mutatingadmissionpolicies"
                | "mutatingadmissionpolicybindings"
        )
}

#[async_trait]
impl Plugin for ValidatingAdmissionPolicy {
    fn name(&self) -> &'static str {
        "ValidatingAdmissionPolicy"
    }

    async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        old: Option<&Value>,
        store: &Store,
    ) -> Result<(), ApiError> {
        if exempt(attrs) {
            return Ok(());
        }
        if !self.policies.synced().await || !self.bindings.synced().await {
            return Err(not_ready(attrs));
        }
        let hooks = self.hooks();
        if hooks.is_empty() {
            return Ok(());
        }
        let req = if attrs.operation == Operation::Delete {
            Request::new(attrs, None, Some(obj))
        } else {
            Request::new(attrs, Some(obj), old)
        };
        // In policy and binding order, as upstream's dispatcher.
        let mut denials: Vec<(String, Option<String>)> = Vec::new();
        let deny = |policy: &Policy, binding: &str, message: String, reason: Option<String>| {
            (
                format!(
                    "ValidatingAdmissionPolicy '{}' with binding '{binding}' denied request: {message}",
                    policy.name
                ),
                reason,
            )
        };
        // Fetched when a first binding is evaluated.
        let mut namespace: Option<Option<Arc<Value>>> = None;
        for (policy, bindings) in &hooks {
            let matched = policy
                .constraints
                .matches(&req, &self.namespaces, true)
                .await;
            let version = match matched {
                Ok(m) => m,
                Err(e) if policy.ignore_failures => {
                    tracing::warn!(policy = %policy.name, error = %e.message, "failed matching policy, failing open");
                    None
                }
                Err(e) => {
                    denials.push((format!("ValidatingAdmissionPolicy '{}' denied request: failed to configure policy: {}", policy.name, e.message), None));
                    None
                }
            };
            let Some(version) = version else {
                continue;
            };
            // The policy sees the write in the version it matched.
            let converted = Converted::new(&req, version)?;
            let seen = converted.request();
            if let Some(e) = &policy.configuration_error {
                if !policy.ignore_failures {
                    denials.push((format!("ValidatingAdmissionPolicy '{}' denied request: failed to configure policy: {e}", policy.name), None));
                }
                continue;
            }
            let param_info = match policy
                .param_kind
                .as_ref()
                .map(|k| param_resource(&self.served, k))
                .transpose()
            {
                Ok(info) => info,
                Err(e) => {
                    if !policy.ignore_failures {
                        denials.push((format!("ValidatingAdmissionPolicy '{}' denied request: failed to configure policy: {e}", policy.name), None));
                    }
                    continue;
                }
            };
            let mut collector = Collector::default();
            for binding in bindings {
                if let Some(m) = &binding.match_resources {
                    match m.matches(&req, &self.namespaces, false).await {
                        Ok(Some(_)) => {}
                        Ok(None) => continue,
                        Err(e) => {
                            if !policy.ignore_failures {
                                denials.push(deny(
                                    policy,
                                    &binding.name,
                                    format!("failed to configure binding: {}", e.message),
                                    None,
                                ));
                            }
                            continue;
                        }
                    }
                }
                let params = match (&policy.param_kind, param_info, &binding.param_ref) {
                    (Some(kind), Some(info), Some(r)) => {
                        match collect_params(info, kind, r, attrs.namespace, store).await {
                            Ok(p) => p,
                            Err(e) => {
                                if !policy.ignore_failures {
                                    denials.push(deny(
                                        policy,
                                        &binding.name,
                                        format!("failed to configure binding: {e}"),
                                        None,
                                    ));
                                }
                                continue;
                            }
                        }
                    }
                    // No paramKind, or a binding without a paramRef: null.
                    _ => vec![None],
                };
                if namespace.is_none() {
                    namespace = Some(self.namespace_object(attrs).await);
                }
                for param in &params {
                    let activation = Activation::new(
                        Input {
                            object: seen.object,
                            old_object: seen.old,
                            request: review::request_fields(&seen, true),
                            params: param.as_ref(),
                            namespace: namespace.as_ref().and_then(|n| n.as_deref()),
                            authorizer: Some(authorizer_of(&self.served.authorizer, attrs)),
                        },
                        policy.variables.clone(),
                    );
                    let evaluation = policy.evaluate(&activation);
                    for d in &evaluation.decisions {
                        for action in &binding.actions {
                            match action.as_str() {
                            "Deny" => denials.push(deny(policy, &binding.name, d.message.clone(), d.reason.clone())),
                            "Warn" => attrs.warn(format!(
                                "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {}",
                                policy.name, binding.name, d.message
                            )),
                            "Audit" => crate::http::audit::note_annotation(
                                VALIDATION_FAILURE,
                                &validation_failure(&policy.name, binding, d),
                            ),
                            _ => {}
                        }
                        }
                    }
                    for a in evaluation.annotations {
                        match a {
                            Annotation::Publish { key, value } => collector.add(&key, value),
                            Annotation::Error(e) => {
                                denials.push(deny(policy, &binding.name, e, None))
                            }
                        }
                    }
                }
            }
            for (key, value) in collector.annotations(&policy.name) {
                crate::http::audit::note_annotation(&key, &value);
            }
        }
        if denials.is_empty() {
            Ok(())
        } else {
            Err(refusal(attrs, &denials))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn attrs<'a>(info: &'a crate::registry::ResourceInfo, name: &'a str) -> Attributes<'a> {
        Attributes {
            operation: Operation::Create,
            info,
            subresource: "",
            namespace: "default",
            name,
            user: None,
            dry_run: false,
            warnings: Default::default(),
        }
    }

    fn policy(spec: Value) -> Policy {
        Policy::compile(&json!({"metadata": {"name": "demo-policy.example.com"}, "spec": spec}))
    }

    fn activation(obj: &Value, a: &Attributes<'_>, p: &Policy) -> Activation {
        let req = Request::new(a, Some(obj), None);
        Activation::new(
            Input {
                object: Some(obj),
                old_object: None,
                request: review::request_fields(&req, true),
                params: None,
                namespace: None,
                authorizer: None,
            },
            p.variables.clone(),
        )
    }

    #[test]
    fn validations_fail_with_messages_reasons_and_failure_policies() {
        let reg = Registry::new();
        let deployments = reg.get("apps", "v1", "deployments").unwrap();
        let a = attrs(deployments, "web");
        let obj = json!({"metadata": {"name": "web"}, "spec": {"replicas": 6}});
        type Case<'a> = (&'a str, Value, Vec<(&'a str, Option<&'a str>)>);
        let cases: Vec<Case> = vec![
            (
                "pass",
                json!({"validations": [{"expression": "object.spec.replicas <= 10"}]}),
                vec![],
            ),
            (
                "default message",
                json!({"validations": [{"expression": "object.spec.replicas <= 5"}]}),
                vec![("failed expression: object.spec.replicas <= 5", None)],
            ),
            (
                "message and reason",
                json!({"validations": [{"expression": "object.spec.replicas <= 5", "message": "too many", "reason": "Forbidden"}]}),
                vec![("too many", Some("Forbidden"))],
            ),
            (
                "message expression",
                json!({"validations": [{"expression": "object.spec.replicas <= 5", "message": "m", "messageExpression": "'replicas ' + string(object.spec.replicas) + ' > 5'"}]}),
                vec![("replicas 6 > 5", None)],
            ),
            (
                "empty message expression falls back",
                json!({"validations": [{"expression": "false", "message": "m", "messageExpression": "' '"}]}),
                vec![("m", None)],
            ),
            (
                "error fails",
                json!({"validations": [{"expression": "object.spec.nope > 1"}]}),
                vec![(
                    "expression 'object.spec.nope > 1' resulted in error: no such key: nope",
                    None,
                )],
            ),
            (
                "error ignored",
                json!({"failurePolicy": "Ignore", "validations": [{"expression": "object.spec.nope > 1"}, {"expression": "false"}]}),
                vec![("failed expression: false", None)],
            ),
            (
                "conditions exclude",
                json!({"matchConditions": [{"name": "small", "expression": "object.spec.replicas < 3"}], "validations": [{"expression": "false"}]}),
                vec![],
            ),
            (
                "variables",
                json!({"variables": [{"name": "r", "expression": "object.spec.replicas"}], "validations": [{"expression": "variables.r < 5", "messageExpression": "'r=' + string(variables.r)"}]}),
                vec![("r=6", None)],
            ),
        ];
        for (name, spec, want) in cases {
            let p = policy(spec);
            assert!(p.configuration_error.is_none(), "{name}");
            let got: Vec<(String, Option<String>)> = p
                .evaluate(&activation(&obj, &a, &p))
                .decisions
                .into_iter()
                .map(|d| (d.message, d.reason))
                .collect();
            let want: Vec<(String, Option<String>)> = want
                .into_iter()
                .map(|(m, r)| (m.to_string(), r.map(String::from)))
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn refusals_carry_upstreams_text_and_the_reasons_code() {
        let reg = Registry::new();
        let deployments = reg.get("apps", "v1", "deployments").unwrap();
        let a = attrs(deployments, "web");
        let msg = "ValidatingAdmissionPolicy 'demo-policy.example.com' with binding 'demo-binding-test.example.com' denied request: failed expression: object.spec.replicas <= 5";
        let e = refusal(&a, &[(msg.to_string(), None)]);
        assert_eq!((e.code, e.reason), (422, "Invalid"));
        assert_eq!(
            e.message,
            format!("deployments.apps \"web\" is forbidden: {msg}")
        );
        assert_eq!(e.details.unwrap()["causes"][0]["message"], msg);
        let e = refusal(&a, &[(msg.to_string(), Some("Forbidden".into()))]);
        assert_eq!((e.code, e.reason), (403, "Forbidden"));
    }

    #[test]
    fn audit_annotations_publish_strings_skip_null_and_fail_per_policy() {
        let reg = Registry::new();
        let deployments = reg.get("apps", "v1", "deployments").unwrap();
        let a = attrs(deployments, "web");
        let obj = json!({"metadata": {"name": "web"}, "spec": {"replicas": 6}});
        let publish = |key: &str, value: &str| Annotation::Publish {
            key: key.into(),
            value: value.into(),
        };
        let cases: Vec<(&str, Value, Vec<Annotation>)> = vec![
            (
                "string published, trimmed",
                json!({"auditAnnotations": [{"key": "replicas", "valueExpression": "' r' + string(object.spec.replicas) + ' '"}]}),
                vec![publish("replicas", "r6")],
            ),
            (
                "null and blank excluded",
                json!({"auditAnnotations": [{"key": "a", "valueExpression": "null"}, {"key": "b", "valueExpression": "'  '"}]}),
                vec![],
            ),
            (
                "wrong type fails",
                json!({"auditAnnotations": [{"key": "a", "valueExpression": "object.spec.replicas"}]}),
                vec![Annotation::Error("valueExpression 'object.spec.replicas' resulted in unsupported return type: int. Return type must be either string or null.".into())],
            ),
            (
                "error fails",
                json!({"auditAnnotations": [{"key": "a", "valueExpression": "object.nope"}]}),
                vec![Annotation::Error("expression 'object.nope' resulted in error: no such key: nope".into())],
            ),
            (
                "error ignored",
                json!({"failurePolicy": "Ignore", "auditAnnotations": [{"key": "a", "valueExpression": "object.nope"}, {"key": "b", "valueExpression": "'x'"}]}),
                vec![publish("b", "x")],
            ),
            (
                "evaluated whether or not validations pass",
                json!({"validations": [{"expression": "false"}], "auditAnnotations": [{"key": "a", "valueExpression": "'x'"}]}),
                vec![publish("a", "x")],
            ),
            (
                "not when a matchCondition is false",
                json!({"matchConditions": [{"name": "n", "expression": "false"}], "auditAnnotations": [{"key": "a", "valueExpression": "'x'"}]}),
                vec![],
            ),
        ];
        for (name, spec, want) in cases {
            let p = policy(spec);
            let got = p.evaluate(&activation(&obj, &a, &p)).annotations;
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn a_validation_failure_is_recorded_in_upstreams_shape() {
        let binding = Binding::decode(&json!({
            "metadata": {"name": "b"},
            "spec": {"policyName": "p", "validationActions": ["Audit", "Warn"]}
        }));
        let p = policy(
            json!({"validations": [{"expression": "true"}, {"expression": "object.spec.replicas <= 5"}]}),
        );
        let reg = Registry::new();
        let deployments = reg.get("apps", "v1", "deployments").unwrap();
        let a = attrs(deployments, "web");
        let obj = json!({"spec": {"replicas": 6}});
        let d = p.evaluate(&activation(&obj, &a, &p)).decisions;
        assert_eq!(d.len(), 1);
        assert_eq!(
            validation_failure("p", &binding, &d[0]),
            r#"[{"message":"failed expression: object.spec.replicas <= 5","policy":"p","binding":"b","expressionIndex":1,"validationActions":["Audit","Warn"]}]"#
        );
    }

    #[test]
    fn collected_annotations_drop_duplicates_and_join_distinct_values() {
        let mut c = Collector::default();
        c.add("k", "a".into());
        c.add("k", "a".into());
        c.add("k", "b".into());
        c.add("other", "x".into());
        assert_eq!(
            c.annotations("p"),
            vec![
                ("p/k".to_string(), "a, b".to_string()),
                ("p/other".to_string(), "x".to_string())
            ]
        );
        assert_eq!(truncate("héllo".into(), 2), "h");
    }

    fn param_ref(name: &str, namespace: &str, selector: Option<Value>, deny: bool) -> ParamRef {
        ParamRef {
            name: name.into(),
            namespace: namespace.into(),
            selector,
            deny,
        }
    }

    #[tokio::test]
    async fn params_are_found_by_name_or_selector_in_their_namespace() {
        use crate::registry::store::WriteOptions;
        let storage: Arc<dyn crate::storage::Storage> =
            Arc::new(crate::storage::memory::MemoryStorage::default());
        let allocator = crate::allocator::Allocator::new(
            storage.clone(),
            "/registry".into(),
            "10.96.0.0/24".parse().unwrap(),
            30000..=30010,
        );
        let store = Store::new(storage, "/registry".into(), allocator);
        let served = Served::default();
        let kind = ("v1".to_string(), "ConfigMap".to_string());
        let configmaps = param_resource(&served, &kind).unwrap();
        let namespaces = served.registry.get("", "v1", "namespaces").unwrap();
        for ns in ["default", "limits"] {
            store
                .create(
                    namespaces,
                    "",
                    json!({"metadata": {"name": ns}}),
                    &WriteOptions::default(),
                )
                .await
                .unwrap();
        }
        for (name, tier) in [("a", "gold"), ("b", "silver")] {
            store
                .create(
                    configmaps,
                    "limits",
                    json!({"metadata": {"name": name, "labels": {"tier": tier}}, "data": {"maxReplicas": "3"}}),
                    &WriteOptions::default(),
                )
                .await
                .unwrap();
        }
        let names = |found: Result<Vec<Option<Value>>, String>| {
            found.map(|ps| {
                ps.into_iter()
                    .map(|p| p.unwrap()["metadata"]["name"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            })
        };
        let deny_msg = "no params found for policy binding with `Deny` parameterNotFoundAction";
        type Case<'a> = (&'a str, ParamRef, &'a str, Result<Vec<&'a str>, &'a str>);
        let cases: Vec<Case> = vec![
            (
                "by name in the request's namespace",
                param_ref("a", "", None, true),
                "limits",
                Ok(vec!["a"]),
            ),
            (
                "by name in paramRef's namespace",
                param_ref("b", "limits", None, true),
                "default",
                Ok(vec!["b"]),
            ),
            (
                "missing, Allow",
                param_ref("c", "limits", None, false),
                "",
                Ok(vec![]),
            ),
            (
                "missing, Deny",
                param_ref("a", "default", None, true),
                "",
                Err(deny_msg),
            ),
            (
                "by selector",
                param_ref(
                    "",
                    "limits",
                    Some(json!({"matchLabels": {"tier": "gold"}})),
                    true,
                ),
                "",
                Ok(vec!["a"]),
            ),
            (
                "every object",
                param_ref("", "", Some(json!({})), true),
                "limits",
                Ok(vec!["a", "b"]),
            ),
            (
                "no namespace",
                param_ref("a", "", None, true),
                "",
                Err(
                    "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources",
                ),
            ),
            (
                "neither",
                param_ref("", "", None, true),
                "limits",
                Err("one of name or selector must be provided"),
            ),
        ];
        for (name, r, ns, want) in cases {
            let got = names(collect_params(configmaps, &kind, &r, ns, &store).await);
            let want = want
                .map(|v| v.into_iter().map(String::from).collect::<Vec<_>>())
                .map_err(String::from);
            assert_eq!(got, want, "{name}");
        }
        let ns_kind = ("v1".to_string(), "Namespace".to_string());
        assert_eq!(
            names(
                collect_params(
                    namespaces,
                    &ns_kind,
                    &param_ref("limits", "x", None, true),
                    "",
                    &store
                )
                .await
            ),
            Err("paramRef.namespace must not be provided for a cluster-scoped `paramKind`".into())
        );
        let found = collect_params(
            namespaces,
            &ns_kind,
            &param_ref("limits", "", None, true),
            "x",
            &store,
        )
        .await
        .unwrap();
        assert_eq!(found[0].as_ref().unwrap()["kind"], "Namespace");
    }

    #[test]
    fn param_kinds_resolve_to_served_resources() {
        let served = Served::default();
        let k = |v: &str, k: &str| (v.to_string(), k.to_string());
        assert_eq!(
            param_resource(&served, &k("apps/v1", "Deployment"))
                .unwrap()
                .resource,
            "deployments"
        );
        assert_eq!(
            param_resource(&served, &k("v1", "ConfigMap"))
                .unwrap()
                .resource,
            "configmaps"
        );
        assert_eq!(
            param_resource(&served, &k("example.com/v1", "Limit"))
                .err()
                .unwrap(),
            "failed to find resource referenced by paramKind: 'example.com/v1, Kind=Limit'"
        );
        assert_eq!(
            param_resource(&served, &k("v1", "Nope")).err().unwrap(),
            "failed to find resource referenced by paramKind: '/v1, Kind=Nope'"
        );
    }

    #[test]
    fn params_are_bound_in_cel() {
        let reg = Registry::new();
        let deployments = reg.get("apps", "v1", "deployments").unwrap();
        let a = attrs(deployments, "web");
        let obj = json!({"spec": {"replicas": 6}});
        let p = policy(json!({
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "validations": [{"expression": "object.spec.replicas <= int(params.data.maxReplicas)",
                "messageExpression": "'at most ' + params.data.maxReplicas"}]
        }));
        let req = Request::new(&a, Some(&obj), None);
        let evaluate = |max: &str| {
            let params = json!({"data": {"maxReplicas": max}});
            let activation = Activation::new(
                Input {
                    object: Some(&obj),
                    old_object: None,
                    request: review::request_fields(&req, true),
                    params: Some(&params),
                    namespace: None,
                    authorizer: None,
                },
                p.variables.clone(),
            );
            p.evaluate(&activation)
                .decisions
                .into_iter()
                .map(|d| d.message)
                .collect::<Vec<_>>()
        };
        assert_eq!(evaluate("10"), Vec::<String>::new());
        assert_eq!(evaluate("5"), vec!["at most 5".to_string()]);
    }
}
