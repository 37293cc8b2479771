//! Test helpers shared by every group's strategy tests.
use crate::error::FieldError;
use serde_json::{Value, json};

/// `base` with `patch` merged in like a JSON merge patch, except that a
/// nested empty object replaces (so a test can ask for `matchLabels: {}`).
pub(crate) fn merged(mut base: Value, patch: Value) -> Value {
    if let (Value::Object(b), Value::Object(p)) = (&mut base, patch.clone()) {
        for (k, v) in p {
            merge(b.entry(k).or_insert(Value::Null), v);
        }
        return base;
    }
    patch
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) if !p.is_empty() => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

pub(crate) fn fields(errs: &[FieldError]) -> Vec<&str> {
    errs.iter().map(|e| e.field.as_str()).collect()
}

/// A valid pod template labelled `app: <app>`.
pub(crate) fn template(app: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    })
}
