//! Which webhooks a write goes to (upstream's `predicates/{rules,namespace,object}`
//! and `generic.Webhook.ShouldCallHook`, match conditions last).

use super::conditions::{self, Outcome};
use super::{Converted, Deps, Hook, Request, review};
use crate::admission::cel::{Activation, Input, authorizer_of};
use crate::admission::{Attributes, Operation};
use crate::authz::Authorizer;
use crate::error::ApiError;
use crate::storage::view::View;
use common::selectors::LabelSelector;
use k8s_openapi::api::admissionregistration::v1::RuleWithOperations;
use serde_json::Value;
use std::sync::Arc;

pub fn is_namespaces(attrs: &Attributes<'_>) -> bool {
    attrs.info.group.is_empty() && attrs.info.resource == "namespaces"
}

/// The namespace the write is in as upstream's attributes say it: a
/// namespace's own name for writes of an existing namespace.
pub fn namespace_of<'a>(attrs: &'a Attributes<'a>) -> &'a str {
    if is_namespaces(attrs) && attrs.operation != Operation::Create {
        attrs.name
    } else {
        attrs.namespace
    }
}

fn exact_or_wildcard(items: Option<&Vec<String>>, requested: &str) -> bool {
    items
        .into_iter()
        .flatten()
        .any(|i| i == "*" || i == requested)
}

/// upstream's rules.Matcher.Matches.
pub fn rule_matches(rule: &RuleWithOperations, attrs: &Attributes<'_>) -> bool {
    rule_matches_in(rule, attrs, attrs.info.version)
}

/// The version a webhook sees the write in (upstream's WebhookInvocation):
/// the write's own when a rule matches it; else, under `matchPolicy:
/// Equivalent`, the first other served version of the resource a rule
/// matches, earlier rules first; None when nothing matches. Only custom
/// resources are served in several versions here.
pub fn invocation_version(
    rules: &[RuleWithOperations],
    equivalent: bool,
    attrs: &Attributes<'_>,
) -> Option<&'static str> {
    matched_version(rules, equivalent, attrs, |r, v| {
        rule_matches_in(r, attrs, v)
    })
}

/// [`invocation_version`] with `matches(rule, version)` saying whether a
/// rule matches the write in a version (policies add resource names).
pub fn matched_version<R>(
    rules: &[R],
    equivalent: bool,
    attrs: &Attributes<'_>,
    matches: impl Fn(&R, &str) -> bool,
) -> Option<&'static str> {
    let own = attrs.info.version;
    if rules.iter().any(|r| matches(r, own)) {
        return Some(own);
    }
    let others = attrs
        .info
        .custom
        .as_ref()
        .filter(|_| equivalent)
        .map(|c| &c.served_versions[..])
        .unwrap_or_default();
    rules
        .iter()
        .find_map(|r| others.iter().copied().find(|v| *v != own && matches(r, v)))
}

/// [`rule_matches`] for the write's resource in `version`.
pub fn rule_matches_in(rule: &RuleWithOperations, attrs: &Attributes<'_>, version: &str) -> bool {
    let scope = match rule.scope.as_deref() {
        None | Some("*") => true,
        // A namespace object is cluster-scoped though it names a namespace.
        Some("Namespaced") => !is_namespaces(attrs) && !attrs.namespace.is_empty(),
        Some("Cluster") => is_namespaces(attrs) || attrs.namespace.is_empty(),
        Some(_) => false,
    };
    let op = match attrs.operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
    };
    let operation = rule
        .operations
        .iter()
        .flatten()
        .any(|o| o == "*" || o == op);
    let resource = rule.resources.iter().flatten().any(|r| {
        let (res, sub) = r.split_once('/').unwrap_or((r, ""));
        (res == "*" || res == attrs.info.resource) && (sub == "*" || sub == attrs.subresource)
    });
    scope
        && operation
        && exact_or_wildcard(rule.api_groups.as_ref(), attrs.info.group)
        && exact_or_wildcard(rule.api_versions.as_ref(), version)
        && resource
}

/// upstream's MatchObjectSelector: the new or the old object's labels.
pub fn object_selected(hook: &Hook, req: &Request<'_>) -> Result<bool, ApiError> {
    object_selector_matches(&hook.object_selector, req)
}

/// [`object_selected`] for any selector (policies have them too).
pub fn object_selector_matches(
    selector: &Result<LabelSelector, String>,
    req: &Request<'_>,
) -> Result<bool, ApiError> {
    let selector = selector.as_ref().map_err(ApiError::internal)?;
    if selector.is_empty() {
        return Ok(true);
    }
    let labels = |o: Option<&Value>| o.map(|o| selector.matches_json(o["metadata"].get("labels")));
    Ok(labels(req.object).unwrap_or(false) || labels(req.old).unwrap_or(false))
}

/// upstream's MatchNamespaceSelector: cluster-scoped writes always match;
/// a namespace's own create or update is judged by its new labels (the
/// stored ones are not there yet, or are about to change).
pub async fn namespace_selected(
    hook: &Hook,
    req: &Request<'_>,
    deps: &Deps,
) -> Result<bool, ApiError> {
    namespace_selector_matches(&hook.namespace_selector, req, &deps.namespaces).await
}

/// [`namespace_selected`] for any selector, namespaces read from `namespaces`.
pub async fn namespace_selector_matches(
    selector: &Result<LabelSelector, String>,
    req: &Request<'_>,
    namespaces: &View,
) -> Result<bool, ApiError> {
    let attrs = req.attrs;
    let namespace = namespace_of(attrs);
    if namespace.is_empty() && !is_namespaces(attrs) {
        return Ok(true);
    }
    let selector = selector.as_ref().map_err(ApiError::internal)?;
    if selector.is_empty() {
        return Ok(true);
    }
    if is_namespaces(attrs) && attrs.main() && attrs.operation != Operation::Delete {
        let labels = req.object.and_then(|o| o["metadata"].get("labels"));
        return Ok(selector.matches_json(labels));
    }
    match namespaces.fetch(namespace).await {
        Some(ns) => Ok(selector.matches_json(ns["metadata"].get("labels"))),
        None => Err(ApiError::not_found("", "namespaces", namespace)),
    }
}

/// upstream's ShouldCallHook: the selectors decide first, but their errors
/// only count for webhooks whose rules match the write. The version the
/// webhook is called in, or None when it is not called.
pub async fn should_call(
    hook: &Hook,
    req: &Request<'_>,
    deps: &Deps,
) -> Result<Option<&'static str>, ApiError> {
    let namespace = namespace_selected(hook, req, deps).await;
    if let Ok(false) = namespace {
        return Ok(None);
    }
    let object = object_selected(hook, req);
    if let Ok(false) = object {
        return Ok(None);
    }
    let Some(version) = invocation_version(&hook.rules, hook.match_equivalent, req.attrs) else {
        return Ok(None);
    };
    namespace?;
    object?;
    // The conditions see what the webhook would.
    let seen = Converted::new(req, version)?;
    Ok(conditions_match(hook, &seen.request(), Some(&deps.authorizer))?.then_some(version))
}

/// upstream's ShouldCallHook on `matchConditions`: a false condition skips
/// the webhook; an error refuses the write (Forbidden) unless the failure
/// policy ignores it.
pub fn conditions_match(
    hook: &Hook,
    req: &Request<'_>,
    authorizer: Option<&Arc<Authorizer>>,
) -> Result<bool, ApiError> {
    if hook.match_conditions.is_empty() {
        return Ok(true);
    }
    let activation = Activation::new(
        Input {
            object: req.object,
            old_object: req.old,
            request: review::request_fields(req, true),
            params: None,
            namespace: None,
            authorizer: authorizer.map(|a| authorizer_of(a, req.attrs)),
        },
        Vec::new(),
    );
    match conditions::evaluate(&hook.match_conditions, &activation) {
        Outcome::Match => Ok(true),
        Outcome::NoMatch(_) => Ok(false),
        Outcome::Error(_) if hook.ignore_failures => Ok(false),
        Outcome::Error(e) => {
            tracing::warn!(webhook = %hook.name, error = %e, "failed evaluating match conditions, failing closed");
            Err(req.attrs.forbidden(&e))
        }
    }
}
