//! coordination.k8s.io/v1 Lease (upstream `pkg/registry/coordination/lease/strategy.go`).
//!
//! `spec.strategy` and `spec.preferredHolder` (coordinated leader election)
//! are kept and validated rather than dropped as upstream does while its
//! CoordinatedLeaderElection gate is off.

use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{child, invalid_each, is_qualified_name};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};

/// The only Kubernetes-defined coordinated lease strategy.
const LEASE_STRATEGIES: &[&str] = &["OldestEmulationVersion"];

pub struct LeaseStrategy;

impl Strategy for LeaseStrategy {
    type Object = Lease;

    fn validate(&self, obj: &Lease) -> Vec<FieldError> {
        obj.spec
            .as_ref()
            .map(|s| validate_spec(s, "spec"))
            .unwrap_or_default()
    }
}

fn validate_spec(spec: &LeaseSpec, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(d) = spec.lease_duration_seconds.filter(|d| *d <= 0) {
        errs.push(FieldError::invalid(
            child(path, "leaseDurationSeconds"),
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = spec.lease_transitions.filter(|t| *t < 0) {
        errs.push(FieldError::invalid(
            child(path, "leaseTransitions"),
            t,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(strategy) = &spec.strategy {
        // Upstream nests the child twice: spec.strategy.strategy.
        let p = child(&child(path, "strategy"), "strategy");
        if strategy.contains('/') {
            errs.extend(invalid_each(&p, strategy, is_qualified_name(strategy)));
        } else if !LEASE_STRATEGIES.contains(&strategy.as_str()) {
            errs.push(FieldError::not_supported(
                p,
                strategy.as_str(),
                LEASE_STRATEGIES,
            ));
        }
    }
    let has_strategy = spec.strategy.as_deref().is_some_and(|s| !s.is_empty());
    if spec
        .preferred_holder
        .as_deref()
        .is_some_and(|h| !h.is_empty())
        && !has_strategy
    {
        errs.push(FieldError::forbidden(
            child(path, "preferredHolder"),
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::fields;
    use serde_json::{Value, from_value, json};

    fn lease(spec: Value) -> Lease {
        from_value(
            json!({"metadata": {"name": "node-1", "namespace": "kube-node-lease"}, "spec": spec}),
        )
        .unwrap()
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "valid",
                json!({"holderIdentity": "node-1", "leaseDurationSeconds": 40, "renewTime": "2024-01-01T00:00:00.000000Z"}),
                vec![],
            ),
            (
                "zero duration",
                json!({"leaseDurationSeconds": 0}),
                vec!["spec.leaseDurationSeconds"],
            ),
            (
                "negative transitions",
                json!({"leaseTransitions": -1}),
                vec!["spec.leaseTransitions"],
            ),
            (
                "known strategy",
                json!({"strategy": "OldestEmulationVersion", "preferredHolder": "a"}),
                vec![],
            ),
            (
                "custom strategy",
                json!({"strategy": "example.com/mine"}),
                vec![],
            ),
            (
                "unknown strategy",
                json!({"strategy": "Newest"}),
                vec!["spec.strategy.strategy"],
            ),
            (
                "bad custom strategy",
                json!({"strategy": "example.com/-x"}),
                vec!["spec.strategy.strategy"],
            ),
            (
                "holder without strategy",
                json!({"preferredHolder": "a"}),
                vec!["spec.preferredHolder"],
            ),
        ];
        for (name, spec, want) in cases {
            let errs = LeaseStrategy.validate(&lease(spec));
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }
}
