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
