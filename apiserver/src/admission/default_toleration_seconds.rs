//! DefaultTolerationSeconds: a new pod that does not say how long it
//! survives a not-ready or unreachable node gets 300 s (flags
//! `--default-not-ready-toleration-seconds`, `--default-unreachable-toleration-seconds`),
//! after which the taint eviction controller moves it.

use super::{Attributes, Operation, Plugin};
use crate::error::ApiError;
use crate::registry::store::Store;
use async_trait::async_trait;
use serde_json::{Value, json};

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

pub struct DefaultTolerationSeconds {
    pub not_ready_seconds: i64,
    pub unreachable_seconds: i64,
}

impl Default for DefaultTolerationSeconds {
    fn default() -> Self {
        DefaultTolerationSeconds {
            not_ready_seconds: 300,
            unreachable_seconds: 300,
        }
    }
}

/// Whether some toleration already covers the NoExecute taint `key`
/// (an empty key or effect matches everything, as upstream counts it).
fn tolerated(tolerations: &[Value], key: &str) -> bool {
    tolerations.iter().any(|t| {
        let k = t["key"].as_str().unwrap_or("");
        let e = t["effect"].as_str().unwrap_or("");
        (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
    })
}

#[async_trait]
impl Plugin for DefaultTolerationSeconds {
    fn name(&self) -> &'static str {
        "DefaultTolerationSeconds"
    }

    async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        if !(attrs.is("", "pods") && attrs.main() && attrs.operation == Operation::Create) {
            return Ok(());
        }
        let existing = obj["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut added = Vec::new();
        for (key, seconds) in [
            (NOT_READY, self.not_ready_seconds),
            (UNREACHABLE, self.unreachable_seconds),
        ] {
            if !tolerated(&existing, key) {
                added.push(json!({
                    "key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds,
                }));
            }
        }
        if !added.is_empty() {
            let mut all = existing;
            all.extend(added);
            obj["spec"]["tolerations"] = Value::Array(all);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_tolerations_of_the_taints_are_kept() {
        let t = [
            json!({"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}),
        ];
        assert!(tolerated(&t, NOT_READY));
        assert!(!tolerated(&t, UNREACHABLE));
        assert!(tolerated(&[json!({"operator": "Exists"})], UNREACHABLE));
        assert!(!tolerated(
            &[json!({"key": UNREACHABLE, "effect": "NoSchedule"})],
            UNREACHABLE
        ));
    }
}
