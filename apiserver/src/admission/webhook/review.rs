//! The AdmissionReview a webhook gets and the answer it gives (upstream's
//! `request/admissionreview.go` and `errors/statuserror.go`).

use super::Request;
use super::matching::namespace_of;
use crate::admission::Operation;
use crate::error::ApiError;
use base64::Engine;
use serde_json::{Value, json};

/// The request body of one call, in `version` (v1 or v1beta1: the same
/// fields under another apiVersion).
pub fn request(version: &str, uid: &str, req: &Request<'_>) -> Vec<u8> {
    let mut request = request_fields(req, false);
    request["uid"] = json!(uid);
    request["object"] = json!(req.object);
    request["oldObject"] = json!(req.old);
    let review = json!({
        "apiVersion": format!("admission.k8s.io/{version}"),
        "kind": "AdmissionReview",
        "request": request,
    });
    serde_json::to_vec(&review).unwrap_or_default()
}

/// The AdmissionRequest's fields but `uid`, `object` and `oldObject`: what
/// a webhook gets, and CEL's `request` variable. `all` keeps the fields a
/// webhook gets only when set (`name`, `namespace`, `subResource`,
/// `requestSubResource`, `userInfo.uid`, `userInfo.extra`) even when empty,
/// as CEL sees a typed request's zero values.
pub fn request_fields(req: &Request<'_>, all: bool) -> Value {
    let attrs = req.attrs;
    let info = attrs.info;
    let (group, kind_version, kind) = kind_of(req);
    let request_kind = json!({"group": group, "version": kind_version, "kind": kind});
    let request_resource =
        json!({"group": info.group, "version": info.version, "resource": info.resource});
    // Called in an equivalent version, the webhook sees the write's kind
    // and resource in it; requestKind and requestResource stay the write's.
    let (kind, resource) = if req.version == info.version {
        (request_kind.clone(), request_resource.clone())
    } else {
        let at = |mut v: Value| {
            // Not a subresource's own kind (a Scale's group is another).
            if v["group"] == info.group {
                v["version"] = json!(req.version);
            }
            v
        };
        (at(request_kind.clone()), at(request_resource.clone()))
    };
    let (operation, options_kind) = match attrs.operation {
        Operation::Create => ("CREATE", "CreateOptions"),
        Operation::Update => ("UPDATE", "UpdateOptions"),
        Operation::Delete => ("DELETE", "DeleteOptions"),
    };
    let mut options = json!({"kind": options_kind, "apiVersion": "meta.k8s.io/v1"});
    if attrs.dry_run {
        options["dryRun"] = json!(["All"]);
    }
    let mut user = match attrs.user {
        Some(u) => {
            let mut v = json!({"username": u.name, "groups": u.groups});
            if !u.uid.is_empty() || all {
                v["uid"] = json!(u.uid);
            }
            v
        }
        // The apiserver's own writes, as upstream's loopback identity.
        None => {
            json!({"username": "system:apiserver", "groups": ["system:authenticated", "system:masters"]})
        }
    };
    if all {
        user["extra"] = json!({});
        if user.get("uid").is_none() {
            user["uid"] = json!("");
        }
    }
    let mut request = json!({
        "kind": kind,
        "resource": resource,
        "requestKind": request_kind,
        "requestResource": request_resource,
        "operation": operation,
        "userInfo": user,
        "dryRun": attrs.dry_run,
        "options": options,
    });
    for (field, value) in [
        ("subResource", attrs.subresource),
        ("requestSubResource", attrs.subresource),
        ("name", attrs.name),
        ("namespace", namespace_of(attrs)),
    ] {
        if !value.is_empty() || all {
            request[field] = json!(value);
        }
    }
    request
}

/// The kind written: the resource's, except for subresources with their own
/// kind (a pod's binding or eviction), which their object names.
fn kind_of(req: &Request<'_>) -> (String, String, String) {
    let info = req.attrs.info;
    let own = (
        info.group.to_string(),
        info.version.to_string(),
        info.kind.to_string(),
    );
    let Some(obj) = req.object.filter(|_| !req.attrs.subresource.is_empty()) else {
        return own;
    };
    match (obj["apiVersion"].as_str(), obj["kind"].as_str()) {
        (Some(av), Some(kind)) if kind != info.kind => {
            let (g, v) = av.rsplit_once('/').unwrap_or(("", av));
            (g.to_string(), v.to_string(), kind.to_string())
        }
        _ => own,
    }
}

/// What a webhook answered.
#[derive(Debug, Default)]
pub struct Response {
    pub allowed: bool,
    pub patch: Option<Vec<u8>>,
    /// The `status` of a denial (may be null).
    pub result: Value,
    pub warnings: Vec<String>,
    /// `auditAnnotations`, keys as the webhook gave them.
    pub audit_annotations: Vec<(String, String)>,
}

/// upstream's VerifyAdmissionResponse: v1 answers must say what they are
/// and echo the uid; v1beta1 ones were never checked, so are not here.
pub fn response(body: &[u8], version: &str, uid: &str, mutating: bool) -> Result<Response, String> {
    let review: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let strict = version == "v1";
    if strict {
        let want = "admission.k8s.io/v1";
        let got = review["apiVersion"].as_str().unwrap_or("");
        if got != want {
            return Err(format!("expected webhook response of {want}, got {got}"));
        }
        let kind = review["kind"].as_str().unwrap_or("");
        if kind != "AdmissionReview" {
            return Err(format!(
                "expected webhook response of kind AdmissionReview, got {kind}"
            ));
        }
    }
    let r = match &review["response"] {
        Value::Object(_) => &review["response"],
        _ => return Err("webhook response was absent".into()),
    };
    let got_uid = r["uid"].as_str().unwrap_or("");
    if strict && got_uid != uid {
        return Err(format!(
            "expected response.uid=\"{uid}\", got \"{got_uid}\""
        ));
    }
    // Go decodes a []byte from base64 or, as any slice, from an array of
    // numbers; kube-rs webhooks send the array.
    let patch = match &r["patch"] {
        Value::String(p) if !p.is_empty() => Some(
            base64::engine::general_purpose::STANDARD
                .decode(p)
                .map_err(|e| format!("response.patch: {e}"))?,
        ),
        Value::Array(bytes) if !bytes.is_empty() => Some(
            bytes
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Option<Vec<u8>>>()
                .ok_or("response.patch: an array that is not of bytes")?,
        ),
        _ => None,
    };
    let mut patch_type = r["patchType"].as_str().unwrap_or("");
    if patch.is_some() {
        if patch_type.is_empty() && !strict {
            // v1beta1 webhooks could leave the type out.
            patch_type = "JSONPatch";
        }
        if patch_type.is_empty() {
            return Err("webhook returned response.patch but not response.patchType".into());
        }
        if !mutating {
            return Err("validating webhook may not return response.patch".into());
        }
    }
    if !patch_type.is_empty() && patch_type != "JSONPatch" {
        return Err(format!(
            "webhook returned invalid response.patchType of \"{patch_type}\""
        ));
    }
    Ok(Response {
        allowed: r["allowed"].as_bool().unwrap_or(false),
        patch,
        result: r["status"].clone(),
        warnings: r["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w.as_str().map(String::from))
            .collect(),
        audit_annotations: r["auditAnnotations"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect(),
    })
}

/// upstream's ToStatusErr: the webhook's status, at least a 400, its
/// message prefixed with who denied.
pub fn denial(name: &str, result: &Value) -> ApiError {
    let denied_by = format!("admission webhook \"{name}\" denied the request");
    let code = result["code"]
        .as_u64()
        .filter(|c| (400..600).contains(c))
        .unwrap_or(400) as u16;
    let reason = known_reason(result["reason"].as_str().unwrap_or(""));
    let message = match (result["message"].as_str(), result["reason"].as_str()) {
        (Some(m), _) if !m.is_empty() => format!("{denied_by}: {m}"),
        (_, Some(r)) if !r.is_empty() => format!("{denied_by}: {r}"),
        _ => format!("{denied_by} without explanation"),
    };
    let mut e = ApiError::new(code, reason, message);
    if result["details"].is_object() {
        e = e.with_details(result["details"].clone());
    }
    e
}

/// The webhook's reason when it is one of upstream's (the error type holds
/// static reasons; anything else a webhook makes up is dropped).
fn known_reason(reason: &str) -> &'static str {
    const REASONS: &[&str] = &[
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "AlreadyExists",
        "Conflict",
        "Gone",
        "Invalid",
        "ServerTimeout",
        "StoreReadError",
        "Timeout",
        "TooManyRequests",
        "BadRequest",
        "MethodNotAllowed",
        "NotAcceptable",
        "RequestEntityTooLarge",
        "UnsupportedMediaType",
        "InternalError",
        "Expired",
        "ServiceUnavailable",
    ];
    REASONS
        .iter()
        .find(|r| **r == reason)
        .copied()
        .unwrap_or("")
}
