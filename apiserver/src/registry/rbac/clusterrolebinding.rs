//! rbac.authorization.k8s.io/v1 ClusterRoleBinding (upstream `pkg/registry/rbac/clusterrolebinding/strategy.go`).

use super::{default_binding, validate_binding, validate_role_ref_update};
use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;

pub struct ClusterRoleBindingStrategy;

impl Strategy for ClusterRoleBindingStrategy {
    type Object = ClusterRoleBinding;

    fn defaults(&self, obj: &mut ClusterRoleBinding) {
        default_binding(&mut obj.role_ref, obj.subjects.as_mut());
    }

    /// Only ClusterRoles, and service accounts must name their namespace.
    fn validate(&self, obj: &ClusterRoleBinding) -> Vec<FieldError> {
        validate_binding(
            &obj.role_ref,
            obj.subjects.as_deref(),
            &["ClusterRole"],
            false,
        )
    }

    fn validate_update(
        &self,
        obj: &ClusterRoleBinding,
        old: &ClusterRoleBinding,
    ) -> Vec<FieldError> {
        let mut errs = self.validate(obj);
        errs.extend(validate_role_ref_update(&obj.role_ref, &old.role_ref));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::fields;
    use serde_json::{Value, from_value, json};

    fn binding(role_ref: Value, subjects: Value) -> ClusterRoleBinding {
        let mut b: ClusterRoleBinding = from_value(
            json!({"metadata": {"name": "admins"}, "roleRef": role_ref, "subjects": subjects}),
        )
        .unwrap();
        ClusterRoleBindingStrategy.defaults(&mut b);
        b
    }

    #[test]
    fn validation_table() {
        let admin = json!({"kind": "ClusterRole", "name": "cluster-admin"});
        let cases: Vec<(&str, ClusterRoleBinding, Vec<&str>)> = vec![
            (
                "valid",
                binding(
                    admin.clone(),
                    json!([{"kind": "Group", "name": "system:masters"},
                                              {"kind": "ServiceAccount", "name": "ctl", "namespace": "kube-system"}]),
                ),
                vec![],
            ),
            (
                "role kind",
                binding(json!({"kind": "Role", "name": "x"}), json!([])),
                vec!["roleRef.kind"],
            ),
            (
                "service account needs namespace",
                binding(
                    admin.clone(),
                    json!([{"kind": "ServiceAccount", "name": "ctl"}]),
                ),
                vec!["subjects[0].namespace"],
            ),
        ];
        for (name, b, want) in cases {
            let errs = ClusterRoleBindingStrategy.validate(&b);
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }

    #[test]
    fn role_ref_is_immutable() {
        let old = binding(json!({"kind": "ClusterRole", "name": "view"}), json!([]));
        let new = binding(json!({"kind": "ClusterRole", "name": "edit"}), json!([]));
        assert_eq!(
            fields(&ClusterRoleBindingStrategy.validate_update(&new, &old)),
            ["roleRef"]
        );
    }
}
