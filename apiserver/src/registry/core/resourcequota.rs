//! ResourceQuotas (pkg/registry/core/resourcequota/strategy.go).

use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{
    FIELD_IMMUTABLE, child, index, is_standard_resource_name, key, validate_resource_name,
    validate_resource_quantity_value,
};
use k8s_openapi::api::core::v1::{ResourceQuota, ResourceQuotaSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::{BTreeMap, BTreeSet};

pub const SCOPES: &[&str] = &[
    "BestEffort",
    "CrossNamespacePodAffinity",
    "NotBestEffort",
    "NotTerminating",
    "PriorityClass",
    "Terminating",
    "VolumeAttributesClass",
];
const SELECTOR_OPERATORS: &[&str] = &["DoesNotExist", "Exists", "In", "NotIn"];

pub struct ResourceQuotaStrategy;

impl Strategy for ResourceQuotaStrategy {
    type Object = ResourceQuota;

    fn prepare_for_create(&self, rq: &mut ResourceQuota) {
        rq.status = None;
    }

    fn validate(&self, rq: &ResourceQuota) -> Vec<FieldError> {
        let spec = rq.spec.clone().unwrap_or_default();
        let mut errs = validate_quantities(spec.hard.as_ref(), "spec.hard", true);
        errs.extend(validate_scopes(&spec));
        errs.extend(validate_scope_selector(&spec));
        if let Some(st) = &rq.status {
            errs.extend(validate_quantities(st.hard.as_ref(), "status.hard", true));
            errs.extend(validate_quantities(st.used.as_ref(), "status.used", false));
        }
        errs
    }

    fn validate_update(&self, rq: &ResourceQuota, old: &ResourceQuota) -> Vec<FieldError> {
        let mut errs = self.validate(rq);
        let scopes = |r: &ResourceQuota| -> BTreeSet<String> {
            r.spec
                .iter()
                .flat_map(|s| s.scopes.iter().flatten().cloned())
                .collect()
        };
        if scopes(rq) != scopes(old) {
            let shown = rq
                .spec
                .as_ref()
                .and_then(|s| s.scopes.clone())
                .unwrap_or_default();
            errs.push(FieldError::invalid("spec.scopes", shown, FIELD_IMMUTABLE));
        }
        errs
    }

    /// Upstream's PrepareForUpdate: status is written by the quota controller.
    fn prepare_for_update(&self, rq: &mut ResourceQuota, old: &ResourceQuota) {
        rq.status = old.status.clone();
    }
}

/// A quota resource name: unprefixed names must be standard quota resources.
pub fn validate_quota_resource_name(name: &str, path: &str) -> Vec<FieldError> {
    let mut errs = validate_resource_name(name, path);
    let standard_quota = is_standard_resource_name(name) && name != "storage";
    if !name.contains('/') && !standard_quota {
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a standard resource for quota",
        ));
    }
    errs
}

fn validate_quantities(
    list: Option<&BTreeMap<String, Quantity>>,
    path: &str,
    check_names: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, q) in list.into_iter().flatten() {
        let p = key(path, k);
        if check_names {
            errs.extend(validate_quota_resource_name(k, &p));
        }
        errs.extend(validate_resource_quantity_value(k, q, &p));
    }
    errs
}

/// Which standard resources a scope may constrain (IsResourceQuotaScopeValidForResource).
fn scope_allows(scope: &str, resource: &str) -> bool {
    let pod_resources = [
        "pods",
        "cpu",
        "memory",
        "limits.cpu",
        "limits.memory",
        "requests.cpu",
        "requests.memory",
    ];
    match scope {
        "Terminating"
        | "NotTerminating"
        | "NotBestEffort"
        | "PriorityClass"
        | "CrossNamespacePodAffinity" => pod_resources.contains(&resource),
        "BestEffort" => resource == "pods",
        "VolumeAttributesClass" => {
            matches!(resource, "persistentvolumeclaims" | "requests.storage")
        }
        _ => true,
    }
}

fn validate_scopes(spec: &ResourceQuotaSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let scopes = spec.scopes.clone().unwrap_or_default();
    if scopes.is_empty() {
        return errs;
    }
    let invalid = |msg: &str| FieldError::invalid("spec.scopes", scopes.clone(), msg);
    for scope in &scopes {
        if !SCOPES.contains(&scope.as_str()) {
            errs.push(invalid("unsupported scope"));
        }
        for k in spec.hard.iter().flat_map(|h| h.keys()) {
            if is_standard_resource_name(k) && !scope_allows(scope, k) {
                errs.push(invalid("unsupported scope applied to resource"));
            }
        }
    }
    let has = |s: &str| scopes.iter().any(|x| x == s);
    for (a, b) in [
        ("BestEffort", "NotBestEffort"),
        ("Terminating", "NotTerminating"),
    ] {
        if has(a) && has(b) {
            errs.push(invalid("conflicting scopes"));
        }
    }
    errs
}

fn validate_scope_selector(spec: &ResourceQuotaSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let exprs = spec
        .scope_selector
        .as_ref()
        .and_then(|s| s.match_expressions.as_deref())
        .unwrap_or_default();
    for (i, req) in exprs.iter().enumerate() {
        let p = index("spec.scopeSelector.matchExpressions", i);
        if !SCOPES.contains(&req.scope_name.as_str()) {
            errs.push(FieldError::invalid(
                child(&p, "scopeName"),
                req.scope_name.as_str(),
                "unsupported scope",
            ));
        }
        let values = req.values.as_deref().unwrap_or_default();
        match req.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                child(&p, "values"),
                "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::invalid(
                child(&p, "values"),
                values.to_vec(),
                "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
            )),
            op if !SELECTOR_OPERATORS.contains(&op) => errs.push(FieldError::invalid(
                child(&p, "operator"),
                op,
                "not a valid selector operator",
            )),
            _ => {}
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ResourceQuotaStatus, ScopeSelector, ScopedResourceSelectorRequirement,
    };

    fn rq(hard: &[(&str, &str)], scopes: &[&str]) -> ResourceQuota {
        ResourceQuota {
            spec: Some(ResourceQuotaSpec {
                hard: Some(
                    hard.iter()
                        .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                        .collect(),
                ),
                scopes: (!scopes.is_empty())
                    .then(|| scopes.iter().map(|s| s.to_string()).collect()),
                scope_selector: None,
            }),
            ..Default::default()
        }
    }

    fn fields(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn validate_cases() {
        let selector = |op: &str, values: &[&str]| ResourceQuota {
            spec: Some(ResourceQuotaSpec {
                scope_selector: Some(ScopeSelector {
                    match_expressions: Some(vec![ScopedResourceSelectorRequirement {
                        scope_name: "PriorityClass".into(),
                        operator: op.into(),
                        values: (!values.is_empty())
                            .then(|| values.iter().map(|s| s.to_string()).collect()),
                    }]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let cases: Vec<(&str, ResourceQuota, Vec<&str>)> = vec![
            (
                "valid",
                rq(
                    &[
                        ("pods", "10"),
                        ("requests.cpu", "4"),
                        ("count/deployments.apps", "5"),
                        ("example.com/gpu", "2"),
                    ],
                    &[],
                ),
                vec![],
            ),
            (
                "valid scope",
                rq(&[("pods", "10"), ("cpu", "1")], &["NotBestEffort"]),
                vec![],
            ),
            (
                "negative",
                rq(&[("cpu", "-1")], &[]),
                vec!["spec.hard[cpu]"],
            ),
            (
                "fractional pods",
                rq(&[("pods", "1.5")], &[]),
                vec!["spec.hard[pods]"],
            ),
            (
                "unknown resource",
                rq(&[("gpus", "1")], &[]),
                vec!["spec.hard[gpus]", "spec.hard[gpus]"],
            ),
            (
                "bad quantity",
                rq(&[("cpu", "lots")], &[]),
                vec!["spec.hard[cpu]"],
            ),
            (
                "unknown scope",
                rq(&[], &["Sometimes"]),
                vec!["spec.scopes"],
            ),
            (
                "conflicting scopes",
                rq(&[], &["Terminating", "NotTerminating"]),
                vec!["spec.scopes"],
            ),
            (
                "scope vs resource",
                rq(&[("cpu", "1")], &["BestEffort"]),
                vec!["spec.scopes"],
            ),
            (
                "selector In without values",
                selector("In", &[]),
                vec!["spec.scopeSelector.matchExpressions[0].values"],
            ),
            (
                "selector bad operator",
                selector("Has", &[]),
                vec!["spec.scopeSelector.matchExpressions[0].operator"],
            ),
            ("selector ok", selector("In", &["high"]), vec![]),
        ];
        for (name, r, want) in cases {
            assert_eq!(fields(ResourceQuotaStrategy.validate(&r)), want, "{name}");
        }
    }

    #[test]
    fn create_and_update() {
        let mut r = rq(&[("pods", "1")], &["Terminating"]);
        r.status = Some(ResourceQuotaStatus::default());
        ResourceQuotaStrategy.prepare_for_create(&mut r);
        assert_eq!(r.status, None);
        let changed = rq(&[("pods", "2")], &["NotTerminating"]);
        assert_eq!(
            fields(ResourceQuotaStrategy.validate_update(&changed, &r)),
            vec!["spec.scopes"]
        );
        assert!(
            ResourceQuotaStrategy
                .validate_update(&rq(&[("pods", "5")], &["Terminating"]), &r)
                .is_empty()
        );
    }
}
