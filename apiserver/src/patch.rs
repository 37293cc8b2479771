//! Patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and a
//! strategic merge patch for the built-in kinds (lists merged by their
//! `x-kubernetes-patch-merge-key`, `$patch` directives).

use crate::error::ApiError;
use serde_json::{Map, Value};

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

/// Applies `patch` (raw body) to `current`.
pub fn apply(kind: PatchType, current: &Value, patch: &[u8]) -> Result<Value, ApiError> {
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
            Ok(strategic_merge(current, &p, ""))
        }
        PatchType::Apply => ensure_supported(kind).map(|_| current.clone()),
    }
}

/// Server-side apply needs managedFields tracking, which is not built yet:
/// say so rather than half-apply.
pub fn ensure_supported(kind: PatchType) -> Result<(), ApiError> {
    match kind {
        PatchType::Apply => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "server-side apply (application/apply-patch+yaml) is not implemented by this apiserver yet",
        )),
        _ => Ok(()),
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

/// The merge key of a list field of the built-in kinds, by field name (the
/// names are unambiguous across the built-in types, `ports` aside: container
/// ports merge by containerPort, service ports by port). `item_has` tells
/// whether the list's items have a property. None: the list is replaced.
/// OpenAPI advertises the same keys, so kubectl and the server agree.
pub fn merge_key(field: &str, item_has: impl Fn(&str) -> bool) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "readinessGates" => "conditionType",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        "ports" if item_has("containerPort") => "containerPort",
        "ports" => "port",
        _ => return None,
    })
}

/// Lists of scalars whose patch strategy is "merge" (a union).
pub fn merges_primitives(field: &str) -> bool {
    field == "finalizers"
}

pub fn strategic_merge(current: &Value, patch: &Value, field: &str) -> Value {
    match (current, patch) {
        (Value::Object(cur), Value::Object(p)) => Value::Object(merge_maps(cur, p)),
        (Value::Array(cur), Value::Array(p)) => merge_lists(cur, p, field),
        (_, p) => strip_directives(p),
    }
}

fn merge_maps(cur: &Map<String, Value>, p: &Map<String, Value>) -> Map<String, Value> {
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        return strip_directives(&Value::Object(p.clone()))
            .as_object()
            .cloned()
            .unwrap_or_default();
    }
    let mut out = cur.clone();
    for (k, v) in p {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(list) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Value::Array(gone)) = (out.get_mut(list), v) {
                items.retain(|i| !gone.contains(i));
            }
            continue;
        }
        if v.is_null() {
            out.remove(k);
            continue;
        }
        if v.get("$patch").and_then(Value::as_str) == Some("delete") {
            out.remove(k);
            continue;
        }
        let merged = match out.get(k) {
            Some(existing) => strategic_merge(existing, v, k),
            None => strip_directives(v),
        };
        out.insert(k.clone(), merged);
    }
    out
}

fn merge_lists(cur: &[Value], p: &[Value], field: &str) -> Value {
    if merges_primitives(field) {
        let mut out = cur.to_vec();
        for v in p {
            if !out.contains(v) {
                out.push(v.clone());
            }
        }
        return Value::Array(out);
    }
    let items = if cur.is_empty() { p } else { cur };
    let Some(key) = merge_key(field, |prop| items.iter().any(|i| i.get(prop).is_some())) else {
        return Value::Array(p.iter().map(strip_directives).collect());
    };
    if p.iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Value::Array(
            p.iter()
                .filter(|i| i.get("$patch").is_none())
                .map(strip_directives)
                .collect(),
        );
    }
    let mut out: Vec<Value> = cur.to_vec();
    for item in p {
        let id = item.get(key);
        let pos = id.and_then(|id| out.iter().position(|o| o.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => out[i] = strategic_merge(&out[i], item, ""),
            (None, false) => out.push(strip_directives(item)),
        }
    }
    Value::Array(out)
}

/// Removes `$`-directives from a value that is inserted as a whole.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        v => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_cases() {
        let cases = [
            (
                "containers merge by name",
                json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}),
                json!({"spec": {"containers": [{"name": "b", "image": "z"}]}}),
                json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "z"}]}}),
            ),
            (
                "$patch delete removes a list element",
                json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
                json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
                json!({"spec": {"containers": [{"name": "b"}]}}),
            ),
            (
                "null deletes a map key",
                json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
                json!({"metadata": {"labels": {"a": null}}}),
                json!({"metadata": {"labels": {"b": "2"}}}),
            ),
            (
                "lists without a merge key are replaced",
                json!({"spec": {"args": ["a", "b"]}}),
                json!({"spec": {"args": ["c"]}}),
                json!({"spec": {"args": ["c"]}}),
            ),
            (
                "finalizers are a union",
                json!({"metadata": {"finalizers": ["a"]}}),
                json!({"metadata": {"finalizers": ["b"]}}),
                json!({"metadata": {"finalizers": ["a", "b"]}}),
            ),
            (
                "$deleteFromPrimitiveList",
                json!({"metadata": {"finalizers": ["a", "b"]}}),
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
                json!({"metadata": {"finalizers": ["b"]}}),
            ),
            (
                "$setElementOrder is ignored, ports merge by containerPort",
                json!({"ports": [{"containerPort": 80, "name": "http"}]}),
                json!({"$setElementOrder/ports": [{"containerPort": 80}], "ports": [{"containerPort": 80, "name": "web"}]}),
                json!({"ports": [{"containerPort": 80, "name": "web"}]}),
            ),
        ];
        for (name, cur, patch, want) in cases {
            assert_eq!(strategic_merge(&cur, &patch, ""), want, "{name}");
        }
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
