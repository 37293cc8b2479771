//! Priority: a new pod's `spec.priority` (and preemption policy) comes from
//! its PriorityClass, or from the class marked `globalDefault`, or is 0.
//! Also keeps PriorityClasses to one global default.

use super::{Attributes, Context, Operation, Plugin, not_ready};
use crate::error::ApiError;
use crate::registry::store::Store;
use crate::storage::view::View;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct Priority {
    classes: Arc<View>,
}

impl Priority {
    pub fn new(ctx: &Context) -> Self {
        Priority {
            classes: ctx.view("priorityclasses"),
        }
    }

    fn global_default(&self) -> Option<Arc<Value>> {
        // Several defaults can exist briefly (two creates racing); upstream
        // takes the lowest value then.
        self.classes
            .list("")
            .into_iter()
            .filter(|c| c["globalDefault"] == true)
            .min_by_key(|c| c["value"].as_i64().unwrap_or(0))
    }

    async fn admit_pod(&self, attrs: &Attributes<'_>, pod: &mut Value) -> Result<(), ApiError> {
        let spec = &mut pod["spec"];
        let wanted = spec["priorityClassName"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(String::from);
        let (name, value, policy) = match wanted {
            Some(name) => {
                let Some(class) = self.classes.fetch(&name).await else {
                    return Err(
                        attrs.forbidden(&format!("no PriorityClass with name {name} was found"))
                    );
                };
                (
                    Some(name),
                    class["value"].as_i64().unwrap_or(0),
                    class["preemptionPolicy"].clone(),
                )
            }
            None => match self.global_default() {
                Some(class) => (
                    class["metadata"]["name"].as_str().map(String::from),
                    class["value"].as_i64().unwrap_or(0),
                    class["preemptionPolicy"].clone(),
                ),
                None => (None, 0, Value::Null),
            },
        };
        if let Some(given) = spec["priority"].as_i64()
            && given != value
        {
            return Err(attrs.forbidden(&format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"
            )));
        }
        if let Some(name) = name {
            spec["priorityClassName"] = json!(name);
        }
        spec["priority"] = json!(value);
        if spec["preemptionPolicy"].is_null() {
            spec["preemptionPolicy"] = if policy.is_null() {
                json!("PreemptLowerPriority")
            } else {
                policy
            };
        }
        Ok(())
    }
}

#[async_trait]
impl Plugin for Priority {
    fn name(&self) -> &'static str {
        "Priority"
    }

    async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        if attrs.is("", "pods") && attrs.main() && attrs.operation == Operation::Create {
            if !self.classes.synced().await {
                return Err(not_ready(attrs));
            }
            return self.admit_pod(attrs, obj).await;
        }
        Ok(())
    }

    async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        _old: Option<&Value>,
        _store: &Store,
    ) -> Result<(), ApiError> {
        if !attrs.is("scheduling.k8s.io", "priorityclasses")
            || attrs.operation == Operation::Delete
            || obj["globalDefault"] != true
        {
            return Ok(());
        }
        if let Some(other) = self.global_default()
            && other["metadata"]["name"] != obj["metadata"]["name"]
        {
            return Err(attrs.forbidden(&format!(
                "PriorityClass {} is already marked as default. Only one default can exist",
                other["metadata"]["name"].as_str().unwrap_or("")
            )));
        }
        Ok(())
    }
}
