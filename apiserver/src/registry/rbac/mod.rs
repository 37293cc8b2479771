//! rbac.authorization.k8s.io/v1: Role, ClusterRole and their bindings,
//! ported from upstream 1.33's `pkg/apis/rbac/{v1/defaults.go,validation}`.
//! Names are path segments (`NameRule::PathSegment`), so `system:node` is
//! a valid role name.
//!
//! Not here: upstream's escalation check (a user may only grant what they
//! hold, unless they may `escalate`/`bind`), which needs the authorizer.

pub mod clusterrole;
pub mod clusterrolebinding;
pub mod role;
pub mod rolebinding;

pub use clusterrole::ClusterRoleStrategy;
pub use clusterrolebinding::ClusterRoleBindingStrategy;
pub use role::RoleStrategy;
pub use rolebinding::RoleBindingStrategy;

use crate::error::FieldError;
use crate::registry::validation::{
    child, index, invalid_each, is_dns1123_subdomain, is_valid_path_segment_name,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef, Subject};

pub const GROUP: &str = "rbac.authorization.k8s.io";

/// Upstream's ValidatePolicyRule. Namespaced roles cannot grant
/// non-resource URLs.
pub(crate) fn validate_rules(rules: Option<&[PolicyRule]>, namespaced: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, rule) in rules.unwrap_or_default().iter().enumerate() {
        let path = index("rules", i);
        if rule.verbs.is_empty() {
            errs.push(FieldError::required(
                child(&path, "verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = rule.non_resource_urls.as_deref().unwrap_or_default();
        let non_empty = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
        if !urls.is_empty() {
            let p = child(&path, "nonResourceURLs");
            if namespaced {
                errs.push(FieldError::invalid(
                    &p,
                    urls.to_vec(),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if non_empty(&rule.api_groups)
                || non_empty(&rule.resources)
                || non_empty(&rule.resource_names)
            {
                errs.push(FieldError::invalid(
                    &p,
                    urls.to_vec(),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if !non_empty(&rule.api_groups) {
            errs.push(FieldError::required(
                child(&path, "apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if !non_empty(&rule.resources) {
            errs.push(FieldError::required(
                child(&path, "resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    errs
}

/// The roleRef and subjects of a binding; `kinds` are the role kinds it may name.
pub(crate) fn validate_binding(
    role_ref: &RoleRef,
    subjects: Option<&[Subject]>,
    kinds: &[&str],
    namespaced: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if role_ref.api_group != GROUP {
        errs.push(FieldError::not_supported(
            "roleRef.apiGroup",
            role_ref.api_group.as_str(),
            &[GROUP],
        ));
    }
    if !kinds.contains(&role_ref.kind.as_str()) {
        errs.push(FieldError::not_supported(
            "roleRef.kind",
            role_ref.kind.as_str(),
            kinds,
        ));
    }
    if role_ref.name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        errs.extend(invalid_each(
            "roleRef.name",
            &role_ref.name,
            is_valid_path_segment_name(&role_ref.name),
        ));
    }
    for (i, subject) in subjects.unwrap_or_default().iter().enumerate() {
        errs.extend(validate_subject(subject, namespaced, &index("subjects", i)));
    }
    errs
}

fn validate_subject(subject: &Subject, namespaced: bool, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if subject.name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    }
    let api_group = subject.api_group.as_deref().unwrap_or("");
    match subject.kind.as_str() {
        "ServiceAccount" => {
            if !subject.name.is_empty() {
                errs.extend(invalid_each(
                    &child(path, "name"),
                    &subject.name,
                    is_dns1123_subdomain(&subject.name),
                ));
            }
            if !api_group.is_empty() {
                errs.push(FieldError::not_supported(
                    child(path, "apiGroup"),
                    api_group,
                    &[""],
                ));
            }
            if !namespaced && subject.namespace.as_deref().unwrap_or("").is_empty() {
                errs.push(FieldError::required(child(path, "namespace"), ""));
            }
        }
        "User" | "Group" => {
            if api_group != GROUP {
                errs.push(FieldError::not_supported(
                    child(path, "apiGroup"),
                    api_group,
                    &[GROUP],
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            child(path, "kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
    errs
}

/// Upstream's SetDefaults_RoleBinding / ClusterRoleBinding / Subject.
pub(crate) fn default_binding(role_ref: &mut RoleRef, subjects: Option<&mut Vec<Subject>>) {
    if role_ref.api_group.is_empty() {
        role_ref.api_group = GROUP.into();
    }
    for subject in subjects.into_iter().flatten() {
        if subject.api_group.as_deref().unwrap_or("").is_empty()
            && matches!(subject.kind.as_str(), "User" | "Group")
        {
            subject.api_group = Some(GROUP.into());
        }
    }
}

/// An update may not point a binding at another role: that would change
/// what its subjects may do without the escalation check.
pub(crate) fn validate_role_ref_update(new: &RoleRef, old: &RoleRef) -> Vec<FieldError> {
    if new == old {
        return Vec::new();
    }
    vec![FieldError::invalid(
        "roleRef",
        serde_json::json!(new),
        "cannot change roleRef",
    )]
}
