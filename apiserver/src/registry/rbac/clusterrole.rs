//! rbac.authorization.k8s.io/v1 ClusterRole (upstream `pkg/registry/rbac/clusterrole/strategy.go`).

use super::validate_rules;
use crate::error::FieldError;
use crate::registry::apps::as_selector;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{index, validate_label_selector};
use k8s_openapi::api::rbac::v1::ClusterRole;
use serde_json::json;

pub struct ClusterRoleStrategy;

impl Strategy for ClusterRoleStrategy {
    type Object = ClusterRole;

    fn validate(&self, obj: &ClusterRole) -> Vec<FieldError> {
        let mut errs = validate_rules(obj.rules.as_deref(), false);
        if let Some(rule) = &obj.aggregation_rule {
            let selectors = rule.cluster_role_selectors.as_deref().unwrap_or_default();
            let path = "aggregationRule.clusterRoleSelectors";
            if selectors.is_empty() {
                errs.push(FieldError::required(
                    path,
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                ));
            }
            for (i, sel) in selectors.iter().enumerate() {
                let p = index(path, i);
                errs.extend(validate_label_selector(Some(sel), &p));
                if as_selector(Some(sel)).is_none() {
                    errs.push(FieldError::invalid(
                        p,
                        json!(sel),
                        "invalid label selector.",
                    ));
                }
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::fields;
    use serde_json::{Value, from_value};

    fn cluster_role(v: Value) -> ClusterRole {
        let mut obj = json!({"metadata": {"name": "system:aggregate-to-view"}});
        obj.as_object_mut()
            .unwrap()
            .extend(v.as_object().unwrap().clone());
        from_value(obj).unwrap()
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "valid",
                json!({"rules": [{"nonResourceURLs": ["/healthz", "/api/*"], "verbs": ["get"]}]}),
                vec![],
            ),
            (
                "aggregated",
                json!({"aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate-to-view": "true"}}]}}),
                vec![],
            ),
            (
                "empty aggregation",
                json!({"aggregationRule": {}}),
                vec!["aggregationRule.clusterRoleSelectors"],
            ),
            (
                "bad selector",
                json!({"aggregationRule": {"clusterRoleSelectors": [{"matchExpressions": [{"key": "a", "operator": "In"}]}]}}),
                vec![
                    "aggregationRule.clusterRoleSelectors[0].matchExpressions[0].values",
                    "aggregationRule.clusterRoleSelectors[0]",
                ],
            ),
            (
                "mixed rule",
                json!({"rules": [{"nonResourceURLs": ["/x"], "resources": ["pods"], "verbs": ["get"]}]}),
                vec!["rules[0].nonResourceURLs"],
            ),
        ];
        for (name, v, want) in cases {
            let errs = ClusterRoleStrategy.validate(&cluster_role(v));
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }
}
