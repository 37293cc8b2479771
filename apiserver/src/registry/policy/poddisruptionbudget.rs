//! policy/v1 PodDisruptionBudget (upstream `pkg/registry/policy/poddisruptionbudget/strategy.go`).
//! The spec is mutable since 1.15, so update validates the new object only.

use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{child, validate_label_selector};
use crate::registry::validation::{is_not_more_than_100_percent, validate_positive_int_or_percent};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use serde_json::json;

const UNHEALTHY_POD_EVICTION_POLICIES: &[&str] = &["AlwaysAllow", "IfHealthyBudget"];

pub struct PodDisruptionBudgetStrategy;

impl Strategy for PodDisruptionBudgetStrategy {
    type Object = PodDisruptionBudget;

    fn prepare_for_create(&self, obj: &mut PodDisruptionBudget) {
        obj.status = None;
    }

    fn validate(&self, obj: &PodDisruptionBudget) -> Vec<FieldError> {
        validate_spec(
            obj.spec
                .as_ref()
                .unwrap_or(&PodDisruptionBudgetSpec::default()),
            "spec",
        )
    }
}

fn validate_spec(spec: &PodDisruptionBudgetSpec, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec.min_available.is_some() && spec.max_unavailable.is_some() {
        errs.push(FieldError::invalid(
            path,
            json!(spec),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for (name, value) in [
        ("minAvailable", &spec.min_available),
        ("maxUnavailable", &spec.max_unavailable),
    ] {
        if let Some(v) = value {
            let p = child(path, name);
            errs.extend(validate_positive_int_or_percent(v, &p));
            errs.extend(is_not_more_than_100_percent(v, &p));
        }
    }
    errs.extend(validate_label_selector(
        spec.selector.as_ref(),
        &child(path, "selector"),
    ));
    if let Some(policy) = spec.unhealthy_pod_eviction_policy.as_deref()
        && !UNHEALTHY_POD_EVICTION_POLICIES.contains(&policy)
    {
        errs.push(FieldError::not_supported(
            child(path, "unhealthyPodEvictionPolicy"),
            policy,
            UNHEALTHY_POD_EVICTION_POLICIES,
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::fields;
    use serde_json::{Value, from_value};

    fn pdb(spec: Value) -> PodDisruptionBudget {
        from_value(json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec}))
            .unwrap()
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "min available",
                json!({"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}),
                vec![],
            ),
            (
                "max unavailable percent",
                json!({"maxUnavailable": "30%"}),
                vec![],
            ),
            (
                "both",
                json!({"minAvailable": 1, "maxUnavailable": 1}),
                vec!["spec"],
            ),
            (
                "negative",
                json!({"minAvailable": -1}),
                vec!["spec.minAvailable"],
            ),
            (
                "over 100%",
                json!({"maxUnavailable": "120%"}),
                vec!["spec.maxUnavailable"],
            ),
            (
                "bad percent",
                json!({"minAvailable": "half"}),
                vec!["spec.minAvailable"],
            ),
            (
                "selector",
                json!({"selector": {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]}}),
                vec!["spec.selector.matchExpressions[0].values"],
            ),
            (
                "eviction policy",
                json!({"unhealthyPodEvictionPolicy": "Never"}),
                vec!["spec.unhealthyPodEvictionPolicy"],
            ),
        ];
        for (name, spec, want) in cases {
            let errs = PodDisruptionBudgetStrategy.validate(&pdb(spec));
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }

    #[test]
    fn spec_is_mutable() {
        let old = pdb(json!({"minAvailable": 1}));
        let new = pdb(json!({"maxUnavailable": 1, "selector": {"matchLabels": {"a": "b"}}}));
        assert!(
            PodDisruptionBudgetStrategy
                .validate_update(&new, &old)
                .is_empty()
        );
    }
}
