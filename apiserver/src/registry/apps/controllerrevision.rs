//! apps/v1 ControllerRevision (upstream `pkg/registry/apps/controllerrevision/strategy.go`):
//! an immutable snapshot of a controller's template.

use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{validate_immutable, validate_nonnegative};
use k8s_openapi::api::apps::v1::ControllerRevision;

pub struct ControllerRevisionStrategy;

impl Strategy for ControllerRevisionStrategy {
    type Object = ControllerRevision;

    fn validate(&self, obj: &ControllerRevision) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if obj.data.is_none() {
            errs.push(FieldError::required("data", "data is mandatory"));
        }
        errs.extend(validate_nonnegative(obj.revision, "revision"));
        errs
    }

    fn validate_update(
        &self,
        obj: &ControllerRevision,
        old: &ControllerRevision,
    ) -> Vec<FieldError> {
        let mut errs = self.validate(obj);
        errs.extend(validate_immutable(&obj.data, &old.data, "data"));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::{fields, merged};
    use serde_json::{Value, from_value, json};

    fn revision(v: Value) -> ControllerRevision {
        from_value(merged(
            json!({"metadata": {"name": "r", "namespace": "default"}}),
            v,
        ))
        .unwrap()
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "valid",
                json!({"data": {"spec": {}}, "revision": 2}),
                vec![],
            ),
            ("no data", json!({"revision": 1}), vec!["data"]),
            (
                "negative revision",
                json!({"data": {}, "revision": -1}),
                vec!["revision"],
            ),
        ];
        for (name, v, want) in cases {
            assert_eq!(
                fields(&ControllerRevisionStrategy.validate(&revision(v))),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn data_is_immutable() {
        let old = revision(json!({"data": {"a": 1}, "revision": 1}));
        let mut new = old.clone();
        new.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
        assert!(
            ControllerRevisionStrategy
                .validate_update(&new, &old)
                .is_empty()
        );
        let new = revision(json!({"data": {"a": 2}, "revision": 1}));
        assert_eq!(
            fields(&ControllerRevisionStrategy.validate_update(&new, &old)),
            ["data"]
        );
    }
}
