//! Patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and
//! strategic merge patch for the built-in kinds (`strategic`).

pub mod strategic;

use crate::error::ApiError;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Built-in groups whose types the patch table lacks (their Go types live
/// outside k8s.io/api): strategic merge patch still applies, with only
/// `metadata` known.
const UNTABLED_BUILT_IN_GROUPS: [&str; 2] = ["apiextensions.k8s.io", "apiregistration.k8s.io"];

/// Applies `patch` (raw body) to `current`. A strategic merge patch follows
/// the patch metadata of `current`'s type, found from its `apiVersion` and
/// `kind`; for custom resources it is refused as upstream refuses it.
pub fn apply(kind: PatchType, current: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let field = |f: &str| current.get(f).and_then(Value::as_str).unwrap_or("");
    let (api_version, type_kind) = (field("apiVersion"), field("kind"));
    let root = strategic::root_type(api_version, type_kind);
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    if kind == PatchType::Strategic && root.is_none() && !UNTABLED_BUILT_IN_GROUPS.contains(&group)
    {
        return Err(ApiError::unsupported_media_type(
            "application/strategic-merge-patch+json",
        ));
    }
    apply_typed(kind, current, patch, root.unwrap_or(""))
}

/// Like `apply`, with the OpenAPI type name of `current` given, e.g.
/// "io.k8s.api.autoscaling.v1.Scale" (a name the table lacks: only `metadata`
/// is known, other lists are replaced).
pub fn apply_typed(
    kind: PatchType,
    current: &Value,
    patch: &[u8],
    openapi_type: &str,
) -> Result<Value, ApiError> {
    match kind {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_slice(patch)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            let mut doc = current.clone();
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
            Ok(doc)
        }
        PatchType::Merge => {
            let p: Value = parse(patch)?;
            let mut doc = current.clone();
            json_patch::merge(&mut doc, &p);
            Ok(doc)
        }
        PatchType::Strategic => {
            let p: Value = parse(patch)?;
            strategic::apply(current, &p, Some(openapi_type))
        }
        // The resource handler applies through the field manager; only the
        // scale subresource gets here, and it does not take apply patches yet.
        PatchType::Apply => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "server-side apply (application/apply-patch+yaml) of the scale subresource is not implemented by this apiserver yet",
        )),
    }
}

fn parse(patch: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(patch)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "error decoding patch: a merge patch must be a JSON object",
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_follows_the_objects_kind() {
        let pod =
            json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "a"}]}});
        let patch = br#"{"spec":{"containers":[{"name":"b"}]}}"#;
        let cases = [
            ("built-in kind merges by key", pod.clone(), 200),
            (
                "unknown kind is refused",
                json!({"apiVersion": "example.com/v1", "kind": "Widget"}),
                415,
            ),
        ];
        for (name, cur, code) in cases {
            let got = apply(PatchType::Strategic, &cur, patch).map_or_else(|e| e.code, |_| 200);
            assert_eq!(got, code, "{name}");
        }
        let merged = apply(PatchType::Strategic, &pod, patch).unwrap();
        assert_eq!(
            merged["spec"]["containers"],
            json!([{"name": "b"}, {"name": "a"}])
        );
        let typed = apply_typed(
            PatchType::Strategic,
            &json!({}),
            patch,
            "io.k8s.api.core.v1.Pod",
        );
        assert_eq!(
            typed.unwrap(),
            json!({"spec": {"containers": [{"name": "b"}]}})
        );
    }

    #[test]
    fn merge_and_json_patch() {
        let cur = json!({"spec": {"replicas": 1}, "metadata": {"labels": {"a": "b"}}});
        let merged = apply(PatchType::Merge, &cur, br#"{"spec":{"replicas":3}}"#).unwrap();
        assert_eq!(merged["spec"]["replicas"], 3);
        let patched = apply(
            PatchType::Json,
            &cur,
            br#"[{"op":"replace","path":"/metadata/labels/a","value":"c"}]"#,
        )
        .unwrap();
        assert_eq!(patched["metadata"]["labels"]["a"], "c");
        assert_eq!(
            apply(PatchType::Merge, &cur, b"{not json")
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            apply(
                PatchType::Json,
                &cur,
                br#"[{"op":"remove","path":"/nope"}]"#
            )
            .unwrap_err()
            .code,
            422
        );
    }
}
