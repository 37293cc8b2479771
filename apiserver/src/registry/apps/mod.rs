//! apps/v1: the workload controllers' objects (Deployment, ReplicaSet,
//! DaemonSet, StatefulSet, ControllerRevision), ported from upstream 1.33's
//! `pkg/apis/apps/v1/defaults.go`, `pkg/apis/apps/validation` and
//! `pkg/registry/apps/*/strategy.go`.
//!
//! Also holds the helpers other groups share with apps: label selector
//! conversion and matching (batch) and int-or-percent checks (policy).

pub mod controllerrevision;
pub mod daemonset;
pub mod deployment;
pub mod replicaset;
pub mod statefulset;

pub use controllerrevision::ControllerRevisionStrategy;
pub use daemonset::DaemonSetStrategy;
pub use deployment::DeploymentStrategy;
pub use replicaset::ReplicaSetStrategy;
pub use statefulset::StatefulSetStrategy;

use crate::error::FieldError;
use crate::registry::core::pod::validate_pod_template_spec;
use crate::registry::validation::{
    child, is_qualified_name, is_valid_label_value, validate_label_selector,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::json;
use std::collections::BTreeMap;

pub(crate) const SELECTOR_MISMATCH: &str = "`selector` does not match template `labels`";

/// A label selector as upstream's `LabelSelectorAsSelector` returns it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Selector<'a> {
    /// A nil selector, which selects nothing (and is not "empty").
    Nothing,
    /// A selector with requirements; without any it selects everything.
    Of(&'a LabelSelector),
}

impl Selector<'_> {
    /// Upstream's `Selector.Empty()`: no requirements at all.
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Selector::Nothing => false,
            Selector::Of(s) => {
                s.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
                    && s.match_expressions.as_ref().is_none_or(Vec::is_empty)
            }
        }
    }

    pub(crate) fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let Selector::Of(sel) = self else {
            return false;
        };
        let get = |k: &str| labels.and_then(|l| l.get(k));
        let labels_ok = sel
            .match_labels
            .iter()
            .flatten()
            .all(|(k, v)| get(k) == Some(v));
        labels_ok
            && sel.match_expressions.iter().flatten().all(|req| {
                let values = req.values.as_deref().unwrap_or_default();
                match req.operator.as_str() {
                    "In" => get(&req.key).is_some_and(|v| values.contains(v)),
                    "NotIn" => get(&req.key).is_none_or(|v| !values.contains(v)),
                    "Exists" => get(&req.key).is_some(),
                    _ => get(&req.key).is_none(),
                }
            })
    }
}

/// Converts a selector as `LabelSelectorAsSelector` does; `None` when it
/// would fail (an unknown operator, wrong value counts, bad keys or values).
pub(crate) fn as_selector(sel: Option<&LabelSelector>) -> Option<Selector<'_>> {
    let Some(s) = sel else {
        return Some(Selector::Nothing);
    };
    let label_ok =
        |k: &str, v: &str| is_qualified_name(k).is_empty() && is_valid_label_value(v).is_empty();
    if !s.match_labels.iter().flatten().all(|(k, v)| label_ok(k, v)) {
        return None;
    }
    for req in s.match_expressions.iter().flatten() {
        let values = req.values.as_deref().unwrap_or_default();
        let count_ok = match req.operator.as_str() {
            "In" | "NotIn" => !values.is_empty(),
            "Exists" | "DoesNotExist" => values.is_empty(),
            _ => false,
        };
        if !count_ok
            || !values.iter().all(|v| label_ok(&req.key, v))
            || !is_qualified_name(&req.key).is_empty()
        {
            return None;
        }
    }
    Some(Selector::Of(s))
}

/// The typed API makes `spec.selector` a plain struct, so an omitted selector
/// decodes as an empty one; both fields unset is read as "not given".
pub(crate) fn selector_given(sel: &LabelSelector) -> Option<&LabelSelector> {
    (sel.match_labels.is_some() || sel.match_expressions.is_some()).then_some(sel)
}

/// A selector that must be present, valid and non-empty (Deployment,
/// ReplicaSet, StatefulSet); `kind` words the empty-selector message.
pub(crate) fn validate_required_selector(
    sel: Option<&LabelSelector>,
    path: &str,
    kind: &str,
) -> Vec<FieldError> {
    let Some(s) = sel else {
        return vec![FieldError::required(path, "")];
    };
    let mut errs = validate_label_selector(Some(s), path);
    if Selector::Of(s).is_empty() {
        errs.push(FieldError::invalid(
            path,
            json!(s),
            format!("empty selector is invalid for {kind}"),
        ));
    }
    errs
}

pub(crate) fn template_labels(t: &PodTemplateSpec) -> Option<&BTreeMap<String, String>> {
    t.metadata.as_ref().and_then(|m| m.labels.as_ref())
}

/// The selector-matches-template check of the apps controllers.
pub(crate) fn validate_selector_matches(
    sel: &Selector,
    t: &PodTemplateSpec,
    path: &str,
) -> Vec<FieldError> {
    if sel.is_empty() || sel.matches(template_labels(t)) {
        return Vec::new();
    }
    let labels = template_labels(t).cloned().unwrap_or_default();
    vec![FieldError::invalid(
        child(path, "metadata.labels"),
        json!(labels),
        SELECTOR_MISMATCH,
    )]
}

/// Controllers' pods restart in place and run forever.
pub(crate) fn validate_always_restart(
    t: &PodTemplateSpec,
    path: &str,
    kind: &str,
) -> Vec<FieldError> {
    let spec = t.spec.as_ref();
    let mut errs = Vec::new();
    let policy = spec.and_then(|s| s.restart_policy.as_deref()).unwrap_or("");
    if policy != "Always" {
        errs.push(FieldError::not_supported(
            child(path, "spec.restartPolicy"),
            policy,
            &["Always"],
        ));
    }
    if spec.is_some_and(|s| s.active_deadline_seconds.is_some()) {
        errs.push(FieldError::forbidden(
            child(path, "spec.activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    errs
}

/// Upstream's ValidatePodTemplateSpecForReplicaSet (Deployments use it too,
/// hence the "ReplicaSet" wording in both).
pub(crate) fn validate_template_for_replica_set(
    t: &PodTemplateSpec,
    sel: &Selector,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = validate_selector_matches(sel, t, path);
    errs.extend(validate_pod_template_spec(t, path));
    errs.extend(validate_always_restart(t, path, "ReplicaSet"));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::from_value;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selector_matching_follows_upstream() {
        let pod = labels(&[("app", "web"), ("tier", "fe")]);
        let cases: &[(&str, serde_json::Value, bool)] = &[
            ("match labels", json!({"matchLabels": {"app": "web"}}), true),
            (
                "label differs",
                json!({"matchLabels": {"app": "db"}}),
                false,
            ),
            (
                "in",
                json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]}),
                true,
            ),
            (
                "not in absent key",
                json!({"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["a"]}]}),
                true,
            ),
            (
                "not in present",
                json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["fe"]}]}),
                false,
            ),
            (
                "exists",
                json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]}),
                true,
            ),
            (
                "does not exist",
                json!({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}),
                false,
            ),
            ("empty matches all", json!({}), true),
        ];
        for (name, sel, want) in cases {
            let sel: LabelSelector = from_value(sel.clone()).unwrap();
            let s = as_selector(Some(&sel)).unwrap();
            assert_eq!(s.matches(Some(&pod)), *want, "{name}");
        }
        assert!(!Selector::Nothing.matches(Some(&pod)));
        assert!(!Selector::Nothing.is_empty());
    }

    #[test]
    fn malformed_selectors_do_not_convert() {
        for sel in [
            json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
            json!({"matchLabels": {"a": "not valid!"}}),
        ] {
            let sel: LabelSelector = from_value(sel.clone()).unwrap();
            assert!(as_selector(Some(&sel)).is_none(), "{sel:?}");
        }
    }
}
