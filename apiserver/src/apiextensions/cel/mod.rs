//! CEL validation rules of CustomResourceDefinitions (`x-kubernetes-validations`),
//! upstream's apiextensions-apiserver `pkg/apiserver/schema/cel`.
//!
//! [`Validator::new`] compiles every rule of a schema once, reporting what
//! upstream's CRD validation reports about them; [`Validator::validate`]
//! walks an object along the schema and evaluates each node's rules with
//! `self` (and, on update, `oldSelf`).
//!
//! Covered: rules on objects, maps, lists and scalars; transition rules
//! (those naming `oldSelf`, evaluated only when an old value correlates:
//! through properties, map keys and the keys of `x-kubernetes-list-type:
//! map` lists, never other lists); `optionalOldSelf`; `message`,
//! `messageExpression`, `reason` and `fieldPath`; rules inside `allOf`;
//! ratcheting (errors of rules not naming `oldSelf` are dropped where the
//! value did not change); the runtime cost limits.
//!
//! The engine under the rules (the environment with Kubernetes' libraries,
//! [`compile_in`] against declared variables, [`Program::eval`] under the
//! cost meter) is also admission's: see `crate::admission::cel`.
//!
//! Gaps, where the crate has no counterpart of cel-go:
//! * No static type checker: compilation catches syntax errors, undeclared
//!   names and functions, fields an object's schema does not declare and
//!   results that are plainly not a bool (or, for `messageExpression`, not a
//!   string); any other type error shows when the rule runs.
//! * No static cost estimation (upstream's "estimated rule cost exceeds
//!   budget"): cost is only bounded at run time. The runtime meter charges
//!   every value handed to a call by its size (see `compile`), which bounds
//!   the work of an evaluation but is not cel-go's exact cost model, so
//!   limits trip at roughly, not exactly, the same points.
//! * `x-kubernetes-list-type: set`/`map` lists compare and concatenate as
//!   plain lists, not with set or map-merge semantics.
//! * Not implemented: the IP, CIDR, format, semver and image libraries, two-variable comprehensions, and `cel.bind`.

pub mod authz;
mod compile;
mod field_path;
mod library;
mod shape;
mod urls;

// The engine, for CEL outside CRDs (admission's match conditions and
// policies): one environment with the same libraries and cost meter.
pub use compile::{CompileError, Compiled, Decl, EvalError, Program, Want, compile_in, env};
pub use library::COST_EXCEEDED;
pub use shape::{Kind, RESERVED, Shape, dyn_value};

#[cfg(test)]
mod tests;

use crate::error::{FieldError, FieldErrorKind};
use crate::registry::validation::{child, index, key};
use cel::{Context, Value as Cel};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool, ValidationRule,
};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::Arc;

/// Upstream's PerCallLimit: the cost one evaluation may run up.
pub const PER_CALL_LIMIT: u64 = 1_000_000;
/// Upstream's RuntimeCELCostBudget: the cost all rules of one object may.
pub const RUNTIME_COST_BUDGET: i64 = 10_000_000;
/// Upstream's MaxEvaluatedMessageExpressionSizeBytes.
pub const MAX_MESSAGE_EXPRESSION_BYTES: usize = 5 * 1024;

const REASONS: &[&str] = &[
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

const OUT_OF_BUDGET: &str =
    "validation failed due to running out of cost budget, no further validation rules will be run";

/// The compiled rules of a structural schema, ready to validate objects.
#[derive(Debug)]
pub struct Validator {
    root: Option<Node>,
}

/// One schema node that has rules, or descendants with rules.
#[derive(Debug)]
struct Node {
    shape: Arc<Shape>,
    rules: Vec<Rule>,
    properties: Vec<(String, Node)>,
    additional: Option<Box<Node>>,
    items: Option<Box<Node>>,
    all_of: Vec<Node>,
}

#[derive(Debug)]
struct Rule {
    spec: ValidationRule,
    /// `None` for an empty rule, which upstream skips.
    program: Option<Program>,
    message: Option<Program>,
    /// The normalized `fieldPath`, appended to the node's path.
    field_path: Option<String>,
}

impl Rule {
    fn uses_old_self(&self) -> bool {
        self.program.as_ref().is_some_and(|p| p.uses_old_self)
    }

    fn optional_old_self(&self) -> bool {
        self.spec.optional_old_self == Some(true)
    }
}

impl Validator {
    /// Compiles the rules of `schema`, a resource's root schema found at
    /// `path` (e.g. `spec.versions[0].schema.openAPIV3Schema`). The errors
    /// are those upstream's CRD validation reports for the rules, at their
    /// paths under `path`.
    pub fn new(schema: &JSONSchemaProps, path: &str) -> Result<Validator, Vec<FieldError>> {
        let mut errs = Vec::new();
        let shape = Shape::resource_root(schema);
        let root = build(schema, &shape, path, None, &mut errs);
        if errs.is_empty() {
            Ok(Validator { root })
        } else {
            Err(errs)
        }
    }

    /// Whether there is any rule to evaluate.
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// Evaluates every rule against `new` (and `old`, the stored object, on
    /// update), reporting failures under `path` (empty for the object root).
    pub fn validate(&self, new: &Json, old: Option<&Json>, path: &str) -> Vec<FieldError> {
        let mut walk = Walk {
            errs: Vec::new(),
            budget: RUNTIME_COST_BUDGET,
        };
        if let Some(root) = &self.root {
            root.validate(&mut walk, new, old, path, false);
        }
        walk.errs
    }
}

// ---------------------------------------------------------------------------
// Building the validator tree.

/// Builds the node for `schema`, whose values CEL sees as `shape`; `None`
/// when nothing below has rules. `uncorrelatable` is the path of the
/// nearest list above whose items can't be matched to old ones.
fn build(
    schema: &JSONSchemaProps,
    shape: &Arc<Shape>,
    path: &str,
    uncorrelatable: Option<&str>,
    errs: &mut Vec<FieldError>,
) -> Option<Node> {
    let rules = schema
        .x_kubernetes_validations
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, rule)| {
            let rule_path = index(&child(path, "x-kubernetes-validations"), i);
            compile_rule(rule, schema, shape, &rule_path, uncorrelatable, errs)
        })
        .collect();
    let node = Node {
        shape: shape.clone(),
        rules,
        properties: build_properties(schema, shape, path, uncorrelatable, errs),
        additional: build_additional(schema, shape, path, uncorrelatable, errs),
        items: build_items(schema, shape, path, uncorrelatable, errs),
        all_of: build_all_of(schema, shape, path, uncorrelatable, errs),
    };
    node.has_rules().then_some(node)
}

fn build_properties(
    schema: &JSONSchemaProps,
    shape: &Arc<Shape>,
    path: &str,
    uncorrelatable: Option<&str>,
    errs: &mut Vec<FieldError>,
) -> Vec<(String, Node)> {
    let props_path = child(path, "properties");
    schema
        .properties
        .iter()
        .flatten()
        .filter_map(|(name, s)| {
            // A name CEL can't spell isn't in the parent's shape, yet its
            // own rules still run, on its own shape.
            let prop_shape = match shape.property(name) {
                Some(p) => p.shape.clone(),
                None => Shape::of(s),
            };
            let p = key(&props_path, name);
            build(s, &prop_shape, &p, uncorrelatable, errs).map(|n| (name.clone(), n))
        })
        .collect()
}

fn build_additional(
    schema: &JSONSchemaProps,
    shape: &Arc<Shape>,
    path: &str,
    uncorrelatable: Option<&str>,
    errs: &mut Vec<FieldError>,
) -> Option<Box<Node>> {
    let Some(JSONSchemaPropsOrBool::Schema(s)) = &schema.additional_properties else {
        return None;
    };
    let sub_shape = shape.additional.clone().unwrap_or_else(|| Shape::of(s));
    let p = child(path, "additionalProperties");
    build(s, &sub_shape, &p, uncorrelatable, errs).map(Box::new)
}

fn build_items(
    schema: &JSONSchemaProps,
    shape: &Arc<Shape>,
    path: &str,
    uncorrelatable: Option<&str>,
    errs: &mut Vec<FieldError>,
) -> Option<Box<Node>> {
    let Some(JSONSchemaPropsOrArray::Schema(s)) = &schema.items else {
        return None;
    };
    let sub_shape = shape.items.clone().unwrap_or_else(|| Shape::of(s));
    // Only map lists correlate items with old ones (by their keys).
    let uncorrelatable = match (uncorrelatable, schema.x_kubernetes_list_type.as_deref()) {
        (Some(u), _) => Some(u),
        (None, Some("map")) => None,
        (None, _) => Some(path),
    };
    let p = child(path, "items");
    build(s, &sub_shape, &p, uncorrelatable, errs).map(Box::new)
}

/// Rules inside `allOf` apply to the same value, seen with the node's shape.
fn build_all_of(
    schema: &JSONSchemaProps,
    shape: &Arc<Shape>,
    path: &str,
    uncorrelatable: Option<&str>,
    errs: &mut Vec<FieldError>,
) -> Vec<Node> {
    let all_of_path = child(path, "allOf");
    schema
        .all_of
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, s)| build(s, shape, &index(&all_of_path, i), uncorrelatable, errs))
        .collect()
}

impl Node {
    fn has_rules(&self) -> bool {
        !self.rules.is_empty()
            || !self.properties.is_empty()
            || self.additional.is_some()
            || self.items.is_some()
            || !self.all_of.is_empty()
    }
}

/// Upstream's newline check (`[\n\r]+`).
fn has_newlines(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

/// Upstream's static checks of one rule's fields, then its compilation.
fn compile_rule(
    rule: &ValidationRule,
    schema: &JSONSchemaProps,
    shape: &Shape,
    path: &str,
    uncorrelatable: Option<&str>,
    errs: &mut Vec<FieldError>,
) -> Rule {
    check_rule_fields(rule, path, errs);
    let field_path = check_field_path(rule, schema, path, errs);
    let mut compiled = Rule {
        spec: rule.clone(),
        program: None,
        message: None,
        field_path,
    };
    if rule.rule.trim().is_empty() {
        return compiled;
    }
    let rule_path = child(path, "rule");
    match compile::compile(&rule.rule, shape, Want::Bool) {
        Ok(p) => compiled.program = Some(p),
        Err(detail) => {
            errs.push(invalid_rule(&rule_path, rule, &detail));
            return compiled;
        }
    }
    compiled.message = compile_message(rule, shape, path, errs);
    check_old_self(&compiled, &rule_path, path, uncorrelatable, errs);
    compiled
}

fn check_rule_fields(rule: &ValidationRule, path: &str, errs: &mut Vec<FieldError>) {
    let message = rule.message.as_deref().unwrap_or("");
    let msg_path = child(path, "message");
    let trimmed_rule = rule.rule.trim();
    let trimmed_msg = message.trim();
    if trimmed_rule.is_empty() {
        errs.push(FieldError::required(
            child(path, "rule"),
            "rule is not specified",
        ));
    } else if !message.is_empty() && trimmed_msg.is_empty() {
        errs.push(FieldError::invalid(
            msg_path,
            message,
            "message must be non-empty if specified",
        ));
    } else if message.len() > 2048 {
        let shown: String = message.chars().take(10).collect();
        errs.push(FieldError::invalid(
            msg_path,
            format!("{shown}..."),
            "message must have a maximum length of 2048 characters",
        ));
    } else if has_newlines(trimmed_msg) {
        errs.push(FieldError::invalid(
            msg_path,
            message,
            "message must not contain line breaks",
        ));
    } else if has_newlines(trimmed_rule) && trimmed_msg.is_empty() {
        errs.push(FieldError::required(
            msg_path,
            "message must be specified if rule contains line breaks",
        ));
    }
    let expr = rule.message_expression.as_deref().unwrap_or("");
    if !expr.is_empty() && expr.trim().is_empty() {
        errs.push(FieldError::required(
            child(path, "messageExpression"),
            "messageExpression must be non-empty if specified",
        ));
    }
    if let Some(reason) = &rule.reason
        && !REASONS.contains(&reason.as_str())
    {
        errs.push(FieldError::not_supported(
            child(path, "reason"),
            reason.as_str(),
            REASONS,
        ));
    }
}

/// Checks `fieldPath` and returns its normalized form when valid.
fn check_field_path(
    rule: &ValidationRule,
    schema: &JSONSchemaProps,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Option<String> {
    let fp = rule.field_path.as_deref().filter(|f| !f.is_empty())?;
    let fp_path = child(path, "fieldPath");
    if fp.trim().is_empty() {
        errs.push(FieldError::invalid(
            &fp_path,
            fp,
            "fieldPath must be non-empty if specified",
        ));
    }
    if has_newlines(fp) {
        errs.push(FieldError::invalid(
            &fp_path,
            fp,
            "fieldPath must not contain line breaks",
        ));
    }
    match field_path::normalize(fp, schema) {
        Ok(normalized) => Some(normalized),
        Err(_) => {
            errs.push(FieldError::invalid(
                fp_path,
                fp,
                "fieldPath must be a valid path",
            ));
            None
        }
    }
}

fn compile_message(
    rule: &ValidationRule,
    shape: &Shape,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Option<Program> {
    let expr = rule
        .message_expression
        .as_deref()
        .filter(|e| !e.trim().is_empty())?;
    match compile::compile(expr, shape, Want::String) {
        Ok(p) => Some(p),
        Err(detail) => {
            errs.push(invalid_rule(
                &child(path, "messageExpression"),
                rule,
                &detail,
            ));
            None
        }
    }
}

fn check_old_self(
    rule: &Rule,
    rule_path: &str,
    path: &str,
    uncorrelatable: Option<&str>,
    errs: &mut Vec<FieldError>,
) {
    if rule.uses_old_self() {
        if let Some(u) = uncorrelatable {
            errs.push(FieldError::invalid(
                rule_path,
                rule.spec.rule.as_str(),
                format!(
                    "oldSelf cannot be used on the uncorrelatable portion of the schema within {u}"
                ),
            ));
        }
    } else if let Some(optional) = rule.spec.optional_old_self {
        errs.push(FieldError::invalid(
            child(path, "optionalOldSelf"),
            optional,
            "may not be set if oldSelf is not used in rule",
        ));
    }
}

/// An Invalid error whose value is the rule as upstream prints it, Go's
/// `%#v` of the internal `apiextensions.ValidationRule`. The text goes in
/// the detail, as a JSON value would be quoted or serialized.
fn invalid_rule(path: &str, rule: &ValidationRule, detail: &str) -> FieldError {
    FieldError {
        kind: FieldErrorKind::Invalid,
        field: path.to_string(),
        value: None,
        detail: format!("{}: {detail}", go_rule(rule)),
    }
}

fn go_rule(rule: &ValidationRule) -> String {
    let reason = match &rule.reason {
        None => "(*apiextensions.FieldValueErrorReason)(nil)".to_string(),
        Some(r) => format!("(*apiextensions.FieldValueErrorReason)({r:?})"),
    };
    let optional = match rule.optional_old_self {
        None => "(*bool)(nil)".to_string(),
        Some(b) => format!("(*bool)({b})"),
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{:?}, Message:{:?}, MessageExpression:{:?}, Reason:{reason}, FieldPath:{:?}, OptionalOldSelf:{optional}}}",
        rule.rule,
        rule.message.as_deref().unwrap_or(""),
        rule.message_expression.as_deref().unwrap_or(""),
        rule.field_path.as_deref().unwrap_or(""),
    )
}

// ---------------------------------------------------------------------------
// Validating.

struct Walk {
    errs: Vec<FieldError>,
    /// What is left of the object's cost budget; negative once spent, which
    /// stops every further evaluation.
    budget: i64,
}

impl Walk {
    fn stopped(&self) -> bool {
        self.budget < 0
    }

    fn stop(&mut self, e: FieldError) {
        self.errs.push(e);
        self.budget = -1;
    }
}

impl Node {
    /// `parent_unchanged`: the nearest correlated ancestor equals its old
    /// value, so errors here are ratcheted when this node has no old value
    /// of its own.
    fn validate(
        &self,
        walk: &mut Walk,
        new: &Json,
        old: Option<&Json>,
        path: &str,
        parent_unchanged: bool,
    ) {
        // Rules only see non-null values; a rule on the parent checks nulls.
        if new.is_null() || walk.stopped() {
            return;
        }
        let old = old.filter(|o| !o.is_null());
        let unchanged = match old {
            Some(o) => o == new,
            None => parent_unchanged,
        };
        if !self.rules.is_empty() {
            self.evaluate(walk, new, old, path, unchanged);
        }
        for all_of in &self.all_of {
            all_of.validate(walk, new, old, path, parent_unchanged);
        }
        match new {
            Json::Object(fields) => self.validate_fields(walk, fields, old, path, unchanged),
            Json::Array(items) => self.validate_items(walk, items, old, path, unchanged),
            _ => {}
        }
    }

    fn validate_fields(
        &self,
        walk: &mut Walk,
        fields: &serde_json::Map<String, Json>,
        old: Option<&Json>,
        path: &str,
        unchanged: bool,
    ) {
        let old_field = |k: &str| old.and_then(|o| o.get(k));
        if let Some(additional) = &self.additional {
            for (k, v) in fields {
                additional.validate(walk, v, old_field(k), &key(path, k), unchanged);
            }
        }
        for (name, node) in &self.properties {
            if let Some(v) = fields.get(name) {
                node.validate(walk, v, old_field(name), &child(path, name), unchanged);
            }
        }
    }

    fn validate_items(
        &self,
        walk: &mut Walk,
        items: &[Json],
        old: Option<&Json>,
        path: &str,
        unchanged: bool,
    ) {
        let Some(item_node) = &self.items else {
            return;
        };
        let old_items = old
            .and_then(Json::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let map_keys = match self.shape.list_type.as_deref() {
            Some("map") => Some(self.shape.list_map_keys.as_slice()),
            _ => None,
        };
        let by_key = map_keys.map(|keys| keyed_items(old_items, keys));
        for (i, item) in items.iter().enumerate() {
            let old_item = match (&by_key, map_keys) {
                (Some(by_key), Some(keys)) => by_key.get(&list_map_key(item, keys)).copied(),
                _ => None,
            };
            item_node.validate(walk, item, old_item, &index(path, i), unchanged);
        }
    }

    /// Evaluates this node's rules against `new`.
    fn evaluate(
        &self,
        walk: &mut Walk,
        new: &Json,
        old: Option<&Json>,
        path: &str,
        unchanged: bool,
    ) {
        if walk.budget == 0 {
            return walk.stop(self.invalid(path, OUT_OF_BUDGET));
        }
        let Some(env) = compile::env() else {
            return walk.stop(FieldError::invalid(
                path,
                self.type_name(),
                "rule compiler initialization error",
            ));
        };
        let self_val = self.shape.to_cel(new);
        let old_val = old.map(|o| self.shape.to_cel(o));
        let plain = activation(&env, &self_val, old_val.clone());
        // Only rules with optionalOldSelf see oldSelf as an optional.
        let optional = match self.rules.iter().any(Rule::optional_old_self) {
            true => activation(&env, &self_val, Some(library::optional(old_val))),
            false => None,
        };
        let Some(plain) = plain else {
            return walk
                .errs
                .push(self.invalid(path, "value could not be converted for CEL"));
        };
        for rule in &self.rules {
            let Some(program) = &rule.program else {
                continue;
            };
            if rule.uses_old_self() && old.is_none() && !rule.optional_old_self() {
                // Transition rules need an old value to compare with.
                continue;
            }
            let ctx = match (&optional, rule.optional_old_self()) {
                (Some(optional), true) => optional,
                _ => &plain,
            };
            self.run_rule(walk, rule, program, ctx, &plain, path, unchanged);
            if walk.stopped() {
                return;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_rule(
        &self,
        walk: &mut Walk,
        rule: &Rule,
        program: &Program,
        ctx: &Context<'_, '_>,
        plain: &Context<'_, '_>,
        path: &str,
        unchanged: bool,
    ) {
        let (result, cost) = program.eval(ctx, PER_CALL_LIMIT);
        if cost as i64 > walk.budget {
            return walk.stop(self.invalid(path, OUT_OF_BUDGET));
        }
        walk.budget -= cost as i64;
        let name = rule_error_string(&rule.spec);
        match result {
            Ok(Cel::Bool(true)) => {}
            Ok(Cel::Bool(false)) => {
                let field = match &rule.field_path {
                    Some(fp) => child(path, fp),
                    None => path.to_string(),
                };
                // Ratcheting: an unchanged value keeps passing rules that
                // don't compare it with its old self.
                if unchanged && !rule.uses_old_self() {
                    return;
                }
                let Some(detail) = self.message(walk, rule, plain, &field) else {
                    return;
                };
                walk.errs.push(self.error_for_reason(&field, detail, &rule.spec));
            }
            Ok(other) => walk.errs.push(self.invalid(
                path,
                &format!("rule evaluated to {}, not a bool, evaluating rule: {name}", other.type_of()),
            )),
            Err(EvalError::CostExceeded) => walk.stop(self.invalid(
                path,
                &format!("'{}': no further validation rules will be run due to call cost exceeds limit for rule: {name}", library::COST_EXCEEDED),
            )),
            Err(EvalError::NoSuchOverload(e)) => walk.errs.push(self.invalid(
                path,
                &format!("'{e}': call arguments did not match a supported operator, function or macro signature for rule: {name}"),
            )),
            Err(EvalError::Other(e)) => {
                walk.errs.push(self.invalid(path, &format!("{e} evaluating rule: {name}")))
            }
        }
    }

    /// The failed rule's message: `messageExpression`'s value when it
    /// evaluates to a usable string, else `message` or the default. `None`
    /// when the evaluation stopped the walk.
    fn message(
        &self,
        walk: &mut Walk,
        rule: &Rule,
        ctx: &Context<'_, '_>,
        field: &str,
    ) -> Option<String> {
        let fallback = || rule_message_or_default(&rule.spec);
        let Some(program) = &rule.message else {
            return Some(fallback());
        };
        let src = rule.spec.message_expression.as_deref().unwrap_or("");
        let (result, cost) = program.eval(ctx, PER_CALL_LIMIT);
        if cost as i64 > walk.budget {
            walk.stop(self.invalid(field, "messageExpression evaluation failed due to running out of cost budget, no further validation rules will be run"));
            return None;
        }
        walk.budget -= cost as i64;
        match result {
            Ok(Cel::String(s)) => Some(usable_message(&s).unwrap_or_else(fallback)),
            Err(EvalError::CostExceeded) => {
                walk.stop(self.invalid(field, &format!("no further validation rules will be run due to call cost exceeds limit for messageExpression: {src:?}")));
                None
            }
            // Upstream logs the failure and falls back to the message.
            _ => Some(fallback()),
        }
    }

    fn type_name(&self) -> &str {
        &self.shape.type_name
    }

    fn invalid(&self, path: &str, detail: &str) -> FieldError {
        FieldError::invalid(path, self.type_name(), detail)
    }

    /// Upstream's fieldErrorForReason: Invalid unless the rule says otherwise.
    fn error_for_reason(&self, path: &str, detail: String, rule: &ValidationRule) -> FieldError {
        match rule.reason.as_deref() {
            Some("FieldValueForbidden") => FieldError::forbidden(path, detail),
            Some("FieldValueRequired") => FieldError::required(path, detail),
            Some("FieldValueDuplicate") => FieldError::duplicate(path, self.type_name()),
            _ => FieldError::invalid(path, self.type_name(), detail),
        }
    }
}

/// A context binding `self`, and `oldSelf` when there is one.
fn activation<'p, 'v>(
    env: &Arc<cel::Env>,
    self_val: &Cel,
    old: Option<Cel>,
) -> Option<Context<'p, 'v>> {
    let mut ctx = Context::with_env(env.clone());
    let boxed: Box<dyn cel::common::value::Val> = self_val.clone().try_into().ok()?;
    ctx.add_variable_as_val("self", boxed);
    if let Some(v) = old {
        let boxed: Box<dyn cel::common::value::Val> = v.try_into().ok()?;
        ctx.add_variable_as_val("oldSelf", boxed);
    }
    Some(ctx)
}

/// The message a messageExpression's string makes, if upstream accepts it.
fn usable_message(s: &str) -> Option<String> {
    let trimmed = s.trim();
    let ok = !trimmed.is_empty()
        && trimmed.len() <= MAX_MESSAGE_EXPRESSION_BYTES
        && !trimmed.contains('\n');
    ok.then(|| trimmed.to_string())
}

fn rule_message_or_default(rule: &ValidationRule) -> String {
    match rule
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        Some(m) => m.to_string(),
        None => format!("failed rule: {}", rule_error_string(rule)),
    }
}

/// How upstream names a rule in errors: its message, else its text.
fn rule_error_string(rule: &ValidationRule) -> String {
    match rule
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        Some(m) => m.to_string(),
        None => rule.rule.trim().to_string(),
    }
}

/// The old items of a map list by their key values, to find each new
/// item's old self in one lookup.
fn keyed_items<'o>(old_items: &'o [Json], keys: &[String]) -> HashMap<String, &'o Json> {
    old_items
        .iter()
        .map(|o| (list_map_key(o, keys), o))
        .collect()
}

fn list_map_key(item: &Json, keys: &[String]) -> String {
    let values: Vec<&Json> = keys
        .iter()
        .map(|k| item.get(k).unwrap_or(&Json::Null))
        .collect();
    serde_json::to_string(&values).unwrap_or_default()
}
