//! What a DELETE does to an object (upstream's `BeforeDelete` and the
//! graceful/finalizer logic of the generic store): remove it now, or only
//! mark it with `deletionTimestamp` and let finalizers, the kubelet (pods)
//! or the namespace controller (namespaces) finish the job.

use crate::error::ApiError;
use crate::registry::ResourceInfo;
use serde_json::{Value, json};

pub const ORPHAN: &str = "orphan";
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer a namespace's content removal holds in `spec.finalizers`.
pub const NAMESPACE_FINALIZER: &str = "kubernetes";

#[derive(Debug, PartialEq)]
pub enum Plan {
    /// Delete from storage now.
    Remove,
    /// Keep, marked as being deleted (the new object to store).
    Mark(Value),
}

fn is(info: &ResourceInfo, resource: &str) -> bool {
    info.group.is_empty() && info.resource == resource
}

fn timestamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The DeleteOptions' propagation: Some(true) orphan, Some(false) foreground,
/// None for background or unspecified.
fn propagation(opts: &Value) -> Result<Option<&'static str>, ApiError> {
    match (
        opts["propagationPolicy"].as_str(),
        opts["orphanDependents"].as_bool(),
    ) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "orphanDependents and propagationPolicy cannot be both set",
        )),
        (Some("Orphan"), _) | (None, Some(true)) => Ok(Some(ORPHAN)),
        (Some("Foreground"), _) => Ok(Some(FOREGROUND)),
        (Some("Background"), _) | (None, Some(false)) => Ok(Some("")),
        (Some(other), _) => Err(ApiError::bad_request(format!(
            "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
        ))),
        (None, None) => Ok(None),
    }
}

/// `gracePeriodSeconds` of the request (a number, or a string from the query).
fn requested_grace(opts: &Value) -> Result<Option<i64>, ApiError> {
    match &opts["gracePeriodSeconds"] {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_i64()),
        Value::String(s) => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds: {s:?}"))),
        other => Err(ApiError::bad_request(format!(
            "invalid gracePeriodSeconds: {other}"
        ))),
    }
}

/// Decides what deleting `old` with DeleteOptions `opts` does at `now`.
pub fn plan(
    info: &ResourceInfo,
    old: &Value,
    opts: &Value,
    now: jiff::Timestamp,
) -> Result<Plan, ApiError> {
    let mut obj = old.clone();
    let marked = !old["metadata"]["deletionTimestamp"].is_null();

    // Propagation policy becomes finalizers for the garbage collector.
    let mut finalizers = strings(&old["metadata"]["finalizers"]);
    if let Some(wanted) = propagation(opts)? {
        finalizers.retain(|f| f != ORPHAN && f != FOREGROUND);
        if !wanted.is_empty() {
            finalizers.push(wanted.to_string());
        }
    }
    if finalizers.is_empty() {
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("finalizers");
        }
    } else {
        obj["metadata"]["finalizers"] = json!(finalizers);
    }

    // Pods bound to a node get time to stop; the kubelet deletes them for good.
    let mut grace = 0;
    if is(info, "pods") {
        let bound = old["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty());
        let terminal = matches!(
            old["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        );
        let default = old["spec"]["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(30);
        grace = if bound && !terminal {
            requested_grace(opts)?.unwrap_or(default).max(0)
        } else {
            0
        };
        let current = old["metadata"]["deletionGracePeriodSeconds"].as_i64();
        // A second delete may only shorten the grace period.
        if let Some(current) = current.filter(|_| marked) {
            grace = grace.min(current);
        }
    }

    // Namespaces wait for their content to go (spec.finalizers).
    let namespace_pending =
        is(info, "namespaces") && !strings(&old["spec"]["finalizers"]).is_empty();

    if finalizers.is_empty() && grace == 0 && !namespace_pending {
        return Ok(Plan::Remove);
    }
    let keep_time = marked && old["metadata"]["deletionGracePeriodSeconds"].as_i64() == Some(grace);
    if !keep_time {
        let at = if grace > 0 {
            now + jiff::SignedDuration::from_secs(grace)
        } else {
            now
        };
        obj["metadata"]["deletionTimestamp"] = json!(timestamp(at));
        obj["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
    }
    if is(info, "namespaces") {
        obj["status"]["phase"] = json!("Terminating");
    }
    Ok(Plan::Mark(obj))
}

/// Whether an object written by an update is done: marked for deletion with
/// nothing left to wait for (finalizers gone, grace period over, for a
/// namespace its content removed). The store then deletes it.
pub fn finished(info: &ResourceInfo, obj: &Value) -> bool {
    let m = &obj["metadata"];
    !m["deletionTimestamp"].is_null()
        && strings(&m["finalizers"]).is_empty()
        && m["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) == 0
        && (!is(info, "namespaces") || strings(&obj["spec"]["finalizers"]).is_empty())
}

/// Upstream: no new finalizers can be added once deletion has begun.
pub fn check_finalizers(info: &ResourceInfo, old: &Value, new: &Value) -> Result<(), ApiError> {
    if old["metadata"]["deletionTimestamp"].is_null() {
        return Ok(());
    }
    let before = strings(&old["metadata"]["finalizers"]);
    let added: Vec<String> = strings(&new["metadata"]["finalizers"])
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    let name = new["metadata"]["name"].as_str().unwrap_or("");
    Err(ApiError::invalid(
        info.group,
        info.kind,
        name,
        &[crate::error::FieldError::forbidden(
            "metadata.finalizers",
            format!(
                "no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
            ),
        )],
    ))
}
