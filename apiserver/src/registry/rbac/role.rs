//! rbac.authorization.k8s.io/v1 Role (upstream `pkg/registry/rbac/role/strategy.go`).

use super::validate_rules;
use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use k8s_openapi::api::rbac::v1::Role;

pub struct RoleStrategy;

impl Strategy for RoleStrategy {
    type Object = Role;

    fn validate(&self, obj: &Role) -> Vec<FieldError> {
        validate_rules(obj.rules.as_deref(), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::fields;
    use serde_json::{Value, from_value, json};

    fn role(rules: Value) -> Role {
        from_value(
            json!({"metadata": {"name": "system:reader", "namespace": "default"}, "rules": rules}),
        )
        .unwrap()
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "valid",
                json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]),
                vec![],
            ),
            ("no rules", json!([]), vec![]),
            (
                "no verbs",
                json!([{"apiGroups": [""], "resources": ["pods"], "verbs": []}]),
                vec!["rules[0].verbs"],
            ),
            (
                "no groups or resources",
                json!([{"verbs": ["get"]}]),
                vec!["rules[0].apiGroups", "rules[0].resources"],
            ),
            (
                "non-resource URL",
                json!([{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]),
                vec!["rules[0].nonResourceURLs"],
            ),
        ];
        for (name, rules, want) in cases {
            let errs = RoleStrategy.validate(&role(rules));
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }
}
