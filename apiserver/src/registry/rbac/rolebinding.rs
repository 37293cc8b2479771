//! rbac.authorization.k8s.io/v1 RoleBinding (upstream `pkg/registry/rbac/rolebinding/strategy.go`).

use super::{default_binding, validate_binding, validate_role_ref_update};
use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use k8s_openapi::api::rbac::v1::RoleBinding;

pub struct RoleBindingStrategy;

impl Strategy for RoleBindingStrategy {
    type Object = RoleBinding;

    fn defaults(&self, obj: &mut RoleBinding) {
        default_binding(&mut obj.role_ref, obj.subjects.as_mut());
    }

    fn validate(&self, obj: &RoleBinding) -> Vec<FieldError> {
        validate_binding(
            &obj.role_ref,
            obj.subjects.as_deref(),
            &["Role", "ClusterRole"],
            true,
        )
    }

    fn validate_update(&self, obj: &RoleBinding, old: &RoleBinding) -> Vec<FieldError> {
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

    fn binding(role_ref: Value, subjects: Value) -> RoleBinding {
        let mut b: RoleBinding = from_value(json!({
            "metadata": {"name": "read-pods", "namespace": "default"},
            "roleRef": role_ref,
            "subjects": subjects,
        }))
        .unwrap();
        RoleBindingStrategy.defaults(&mut b);
        b
    }

    #[test]
    fn defaults_api_groups() {
        let b = binding(
            json!({"kind": "Role", "name": "r"}),
            json!([{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "sa"}]),
        );
        assert_eq!(b.role_ref.api_group, "rbac.authorization.k8s.io");
        let subjects = b.subjects.unwrap();
        assert_eq!(
            subjects[0].api_group.as_deref(),
            Some("rbac.authorization.k8s.io")
        );
        assert_eq!(subjects[1].api_group, None);
    }

    #[test]
    fn validation_table() {
        let role = json!({"kind": "Role", "name": "pod-reader"});
        let cases: Vec<(&str, RoleBinding, Vec<&str>)> = vec![
            (
                "valid",
                binding(
                    role.clone(),
                    json!([{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "default"}]),
                ),
                vec![],
            ),
            (
                "cluster role",
                binding(json!({"kind": "ClusterRole", "name": "view"}), json!([])),
                vec![],
            ),
            (
                "bad kind",
                binding(json!({"kind": "Policy", "name": "x"}), json!([])),
                vec!["roleRef.kind"],
            ),
            (
                "bad group",
                binding(
                    json!({"apiGroup": "example.com", "kind": "Role", "name": "x"}),
                    json!([]),
                ),
                vec!["roleRef.apiGroup"],
            ),
            (
                "no name",
                binding(json!({"kind": "Role", "name": ""}), json!([])),
                vec!["roleRef.name"],
            ),
            (
                "path name",
                binding(json!({"kind": "Role", "name": "a/b"}), json!([])),
                vec!["roleRef.name"],
            ),
            (
                "subject kind",
                binding(role.clone(), json!([{"kind": "Robot", "name": "r2"}])),
                vec!["subjects[0].kind"],
            ),
            (
                "subject name",
                binding(role.clone(), json!([{"kind": "User", "name": ""}])),
                vec!["subjects[0].name"],
            ),
            (
                "service account group",
                binding(
                    role.clone(),
                    json!([{"kind": "ServiceAccount", "name": "Bad_SA", "apiGroup": "x"}]),
                ),
                vec!["subjects[0].name", "subjects[0].apiGroup"],
            ),
            (
                "user group",
                binding(
                    role.clone(),
                    json!([{"kind": "Group", "name": "devs", "apiGroup": "x"}]),
                ),
                vec!["subjects[0].apiGroup"],
            ),
        ];
        for (name, b, want) in cases {
            let errs = RoleBindingStrategy.validate(&b);
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }

    #[test]
    fn role_ref_is_immutable() {
        let old = binding(json!({"kind": "Role", "name": "a"}), json!([]));
        let mut new = binding(
            json!({"kind": "Role", "name": "a"}),
            json!([{"kind": "User", "name": "bob"}]),
        );
        assert!(RoleBindingStrategy.validate_update(&new, &old).is_empty());
        new.role_ref.name = "b".into();
        let errs = RoleBindingStrategy.validate_update(&new, &old);
        assert_eq!(fields(&errs), ["roleRef"]);
        assert!(errs[0].to_string().ends_with("cannot change roleRef"));
    }
}
