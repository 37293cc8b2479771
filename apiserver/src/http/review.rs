//! `SelfSubjectReview` (authentication.k8s.io/v1): tells the caller who the
//! authenticators say they are (`kubectl auth whoami`). Nothing is stored.

use super::response::{Body, Format, object};
use crate::auth::UserInfo;
use http::{Response, StatusCode};
use serde_json::json;

pub fn self_subject_review(user: &UserInfo) -> Response<Body> {
    let mut info = json!({ "username": user.name, "groups": user.groups });
    if !user.uid.is_empty() {
        info["uid"] = json!(user.uid);
    }
    let review = json!({
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": { "creationTimestamp": null },
        "status": { "userInfo": info },
    });
    object(StatusCode::CREATED, &review, Format::Json, &[])
}

/// The access reviews of authorization.k8s.io/v1, answered by the
/// authorizer chain and never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessReview {
    /// Any subject (subjectaccessreviews).
    Subject,
    /// Any subject, in the URL's namespace (localsubjectaccessreviews).
    Local,
    /// The caller (selfsubjectaccessreviews).
    SelfSubject,
    /// The caller's rules in a namespace (selfsubjectrulesreviews).
    Rules,
}

impl AccessReview {
    pub fn of(resource: &str) -> Option<(AccessReview, &'static str)> {
        Some(match resource {
            "subjectaccessreviews" => (AccessReview::Subject, "SubjectAccessReview"),
            "localsubjectaccessreviews" => (AccessReview::Local, "LocalSubjectAccessReview"),
            "selfsubjectaccessreviews" => (AccessReview::SelfSubject, "SelfSubjectAccessReview"),
            "selfsubjectrulesreviews" => (AccessReview::Rules, "SelfSubjectRulesReview"),
            _ => return None,
        })
    }
}

fn str_of<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_default()
}

/// The attributes a review's spec asks about, for `user`.
fn review_attributes(spec: &serde_json::Value, user: &UserInfo) -> crate::authz::Attributes {
    let mut a = crate::authz::Attributes {
        user: user.name.clone(),
        groups: user.groups.clone(),
        ..Default::default()
    };
    if let Some(r) = spec.get("resourceAttributes").filter(|r| r.is_object()) {
        a.resource_request = true;
        a.verb = str_of(r, "verb").into();
        a.namespace = str_of(r, "namespace").into();
        a.api_group = str_of(r, "group").into();
        a.resource = str_of(r, "resource").into();
        a.subresource = str_of(r, "subresource").into();
        a.name = str_of(r, "name").into();
    } else if let Some(n) = spec.get("nonResourceAttributes").filter(|n| n.is_object()) {
        a.verb = str_of(n, "verb").into();
        a.path = str_of(n, "path").into();
    }
    a
}

pub fn access_review(
    authorizer: &crate::authz::Authorizer,
    caller: &UserInfo,
    review: AccessReview,
    kind: &str,
    url_namespace: Option<&str>,
    mut body: serde_json::Value,
) -> Response<Body> {
    use super::response::error_response;
    use crate::authz::Decision;
    use crate::error::ApiError;
    let invalid = |field: &str, detail: &str| {
        error_response(&ApiError::invalid(
            "authorization.k8s.io",
            kind,
            "",
            &[crate::error::FieldError::required(field, detail)],
        ))
    };
    let spec = body["spec"].clone();
    if review == AccessReview::Rules {
        let ns = str_of(&spec, "namespace");
        let probe = review_attributes(&json!({}), caller);
        let rules = authorizer
            .rbac
            .as_ref()
            .map(|r| r.rules_for(&probe, ns))
            .unwrap_or_default();
        let (resource, non_resource): (Vec<_>, Vec<_>) = rules
            .into_iter()
            .partition(|r| r.non_resource_urls.as_ref().is_none_or(|u| u.is_empty()));
        let resource: Vec<serde_json::Value> = resource
            .iter()
            .map(|r| {
                json!({"verbs": r.verbs, "apiGroups": r.api_groups.clone().unwrap_or_default(),
                       "resources": r.resources.clone().unwrap_or_default(),
                       "resourceNames": r.resource_names.clone().unwrap_or_default()})
            })
            .collect();
        let non_resource: Vec<serde_json::Value> = non_resource
            .iter()
            .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls.clone().unwrap_or_default()}))
            .collect();
        // Only RBAC can list what it allows.
        let incomplete = authorizer.rbac.is_none() || authorizer.has_other_modes();
        body["status"] = json!({"resourceRules": resource, "nonResourceRules": non_resource, "incomplete": incomplete});
    } else {
        let subject = match review {
            AccessReview::SelfSubject => caller.clone(),
            _ => {
                let name = str_of(&spec, "user");
                let groups: Vec<String> = spec["groups"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|g| g.as_str().map(String::from))
                    .collect();
                if name.is_empty() && groups.is_empty() {
                    return invalid(
                        "spec.user",
                        "at least one of user or group must be specified",
                    );
                }
                UserInfo {
                    name: name.into(),
                    uid: str_of(&spec, "uid").into(),
                    groups,
                }
            }
        };
        let has_resource = spec
            .get("resourceAttributes")
            .is_some_and(|r| r.is_object());
        let has_path = spec
            .get("nonResourceAttributes")
            .is_some_and(|r| r.is_object());
        if has_resource == has_path {
            return invalid(
                "spec.resourceAttributes",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            );
        }
        if review == AccessReview::Local {
            let want = url_namespace.unwrap_or_default();
            if str_of(&spec["resourceAttributes"], "namespace") != want {
                return invalid(
                    "spec.resourceAttributes.namespace",
                    "must match metadata.namespace",
                );
            }
        }
        let attrs = review_attributes(&spec, &subject);
        body["status"] = match authorizer.authorize(&attrs) {
            Decision::Allow => json!({"allowed": true, "reason": allow_reason(authorizer, &attrs)}),
            Decision::Deny(why) => json!({"allowed": false, "denied": true, "reason": why}),
            Decision::NoOpinion(why) => json!({"allowed": false, "reason": why}),
        };
    }
    body["apiVersion"] = json!("authorization.k8s.io/v1");
    body["kind"] = json!(kind);
    if body["metadata"].is_null() {
        body["metadata"] = json!({});
    }
    body["metadata"]["creationTimestamp"] = serde_json::Value::Null;
    object(StatusCode::CREATED, &body, Format::Json, &[])
}

fn allow_reason(authorizer: &crate::authz::Authorizer, a: &crate::authz::Attributes) -> String {
    if a.groups.iter().any(|g| g == "system:masters") {
        return String::new();
    }
    if authorizer.rbac.is_some() {
        "RBAC: allowed".into()
    } else {
        String::new()
    }
}
