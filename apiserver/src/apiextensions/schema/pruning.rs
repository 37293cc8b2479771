//! Dropping fields a structural schema does not specify (upstream's
//! schema/pruning/algorithm.go). This is what makes custom resources behave
//! like built-in types decoded into Go structs: unknown fields vanish.

use super::Structural;
use serde_json::Value;

/// TypeMeta and ObjectMeta belong to the server, not the schema.
const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Prunes a whole custom resource (its root keeps apiVersion, kind and
/// metadata) and returns the dropped fields' paths, sorted, e.g.
/// `spec.foo` and `spec.list[0].bar`.
pub fn prune(s: &Structural, value: &mut Value) -> Vec<String> {
    prune_with(s, value, true)
}

/// Prunes `value`; `is_resource_root` keeps TypeMeta and ObjectMeta at the
/// top as for an embedded resource (upstream's isResourceRoot).
pub fn prune_with(s: &Structural, value: &mut Value, is_resource_root: bool) -> Vec<String> {
    let mut pruned = Vec::new();
    let mut at = Pos {
        path: String::new(),
        out: &mut pruned,
    };
    node(Some(s), value, &mut at, is_resource_root);
    pruned.sort();
    pruned
}

/// Where the walk is, and what it dropped.
struct Pos<'a> {
    path: String,
    out: &'a mut Vec<String>,
}

impl Pos<'_> {
    fn key(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.path)
        }
    }

    /// Runs `f` one level down, then restores the path.
    fn down<R>(&mut self, seg: String, f: impl FnOnce(&mut Pos<'_>) -> R) -> R {
        let saved = std::mem::replace(&mut self.path, seg);
        let r = f(self);
        self.path = saved;
        r
    }
}

fn index_path(at: &Pos<'_>, i: usize) -> String {
    format!("{}[{i}]", at.path)
}

/// `s` is `None` where the schema says nothing: objects there are emptied,
/// which is how `additionalProperties: true` without a schema behaves upstream.
/// `as_resource` treats the node as an embedded resource whatever its schema says.
fn node(s: Option<&Structural>, x: &mut Value, at: &mut Pos<'_>, as_resource: bool) {
    if let Some(s) = s.filter(|s| s.preserve_unknown_fields) {
        return skip(s, x, at, as_resource);
    }
    match x {
        Value::Object(map) => {
            let Some(s) = s else {
                for k in map.keys() {
                    at.out.push(at.key(k));
                }
                map.clear();
                return;
            };
            let mut drop = Vec::new();
            for (k, v) in map.iter_mut() {
                if (as_resource || s.embedded_resource) && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(p) = s.properties.get(k) {
                    at.down(at.key(k), |at| node(Some(p), v, at, false));
                } else if let Some(ap) = &s.additional_properties {
                    at.down(at.key(k), |at| node(ap.schema(), v, at, false));
                } else {
                    // A meta field at the very top is the server's; dropping it is no news.
                    if !META_FIELDS.contains(&k.as_str()) || !at.path.is_empty() {
                        at.out.push(at.key(k));
                    }
                    drop.push(k.clone());
                }
            }
            for k in drop {
                map.remove(&k);
            }
        }
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.items.as_deref());
            for (i, v) in items.iter_mut().enumerate() {
                at.down(index_path(at, i), |at| node(item_schema, v, at, false));
            }
        }
        _ => {}
    }
}

/// Under `x-kubernetes-preserve-unknown-fields`: unknown fields stay, known
/// ones are still pruned by their own schemas.
fn skip(s: &Structural, x: &mut Value, at: &mut Pos<'_>, as_resource: bool) {
    match x {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if (as_resource || s.embedded_resource) && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(p) = s.properties.get(k) {
                    at.down(at.key(k), |at| node(Some(p), v, at, false));
                } else if let Some(ap) = &s.additional_properties {
                    at.down(at.key(k), |at| node(ap.schema(), v, at, false));
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.items.as_deref() {
                for (i, v) in items.iter_mut().enumerate() {
                    at.down(index_path(at, i), |at| skip(item_schema, v, at, false));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::structural;
    use super::*;
    use serde_json::json;

    #[test]
    fn prunes_like_upstream() {
        let cases = [
            (
                // Unknown fields go, at any depth; the root keeps TypeMeta and ObjectMeta.
                json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
                    "a": {"type": "string"},
                    "list": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"}}}}
                }}}}),
                json!({"apiVersion": "g/v1", "kind": "K", "metadata": {"name": "n", "foo": 1},
                       "spec": {"a": "x", "b": 1, "list": [{"x": 1, "y": 2}, "s"]}, "status": {}}),
                json!({"apiVersion": "g/v1", "kind": "K", "metadata": {"name": "n", "foo": 1},
                       "spec": {"a": "x", "list": [{"x": 1}, "s"]}}),
                vec!["spec.b", "spec.list[0].y", "status"],
            ),
            (
                // preserve-unknown-fields keeps what is unknown but prunes what is specified.
                json!({"type": "object", "properties": {"spec": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}}}}),
                json!({"spec": {"free": {"deep": [1, {"z": 1}]}, "known": {"a": "x", "b": "y"}}}),
                json!({"spec": {"free": {"deep": [1, {"z": 1}]}, "known": {"a": "x"}}}),
                vec!["spec.known.b"],
            ),
            (
                // Maps prune their values by additionalProperties.
                json!({"type": "object", "properties": {"m": {"type": "object",
                    "additionalProperties": {"type": "object", "properties": {"a": {"type": "string"}}}}}}),
                json!({"m": {"k1": {"a": "x", "b": 1}, "k2": {}}}),
                json!({"m": {"k1": {"a": "x"}, "k2": {}}}),
                vec!["m.k1.b"],
            ),
            (
                // Embedded resources keep their TypeMeta and ObjectMeta.
                json!({"type": "object", "properties": {"t": {"type": "object",
                    "x-kubernetes-embedded-resource": true,
                    "properties": {"spec": {"type": "object"}}}}}),
                json!({"t": {"apiVersion": "v1", "kind": "Pod", "metadata": {"x": 1}, "spec": {"y": 1}, "other": 1}}),
                json!({"t": {"apiVersion": "v1", "kind": "Pod", "metadata": {"x": 1}, "spec": {}}}),
                vec!["t.other", "t.spec.y"],
            ),
            (
                // An object where the schema says nothing is emptied.
                json!({"type": "object", "properties": {"l": {"type": "array"}}}),
                json!({"l": [{"a": 1}, 2]}),
                json!({"l": [{}, 2]}),
                vec!["l[0].a"],
            ),
        ];
        for (schema, mut value, want_value, want_paths) in cases {
            let pruned = prune(&structural(schema.clone()), &mut value);
            assert_eq!(value, want_value, "{schema}");
            assert_eq!(pruned, want_paths, "{schema}");
        }
    }

    #[test]
    fn outside_a_resource_root_meta_fields_go_silently() {
        let s = structural(json!({"type": "object", "properties": {"a": {"type": "string"}}}));
        let mut v = json!({"a": "x", "kind": "K", "b": 1});
        assert_eq!(prune_with(&s, &mut v, false), ["b"]);
        assert_eq!(v, json!({"a": "x"}));
    }
}
