//! TaintNodesByCondition: a node registers tainted not-ready (NoSchedule)
//! so nothing lands on it before the node lifecycle controller has seen it
//! Ready and lifted the taint.

use super::default_toleration_seconds::NOT_READY;
use super::{Attributes, Operation, Plugin};
use crate::error::ApiError;
use crate::registry::store::Store;
use async_trait::async_trait;
use serde_json::{Value, json};

pub struct TaintNodesByCondition;

#[async_trait]
impl Plugin for TaintNodesByCondition {
    fn name(&self) -> &'static str {
        "TaintNodesByCondition"
    }

    async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        if !(attrs.is("", "nodes") && attrs.main() && attrs.operation == Operation::Create) {
            return Ok(());
        }
        let mut taints = obj["spec"]["taints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !taints
            .iter()
            .any(|t| t["key"] == NOT_READY && t["effect"] == "NoSchedule")
        {
            taints.push(json!({ "key": NOT_READY, "effect": "NoSchedule" }));
            obj["spec"]["taints"] = Value::Array(taints);
        }
        Ok(())
    }
}
