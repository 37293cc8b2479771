//! apps/v1 ReplicaSet (upstream `pkg/registry/apps/replicaset/strategy.go`).

use super::{
    as_selector, selector_given, validate_required_selector, validate_template_for_replica_set,
};
use crate::error::FieldError;
use crate::registry::core::pod::default_pod_template_spec;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{child, validate_immutable, validate_nonnegative};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use serde_json::json;

pub struct ReplicaSetStrategy;

impl Strategy for ReplicaSetStrategy {
    type Object = ReplicaSet;

    fn defaults(&self, obj: &mut ReplicaSet) {
        let spec = obj.spec.get_or_insert_with(Default::default);
        spec.replicas.get_or_insert(1);
        if let Some(t) = spec.template.as_mut() {
            default_pod_template_spec(t);
        }
    }

    fn prepare_for_create(&self, obj: &mut ReplicaSet) {
        obj.status = None;
    }

    fn validate(&self, obj: &ReplicaSet) -> Vec<FieldError> {
        validate_spec(
            obj.spec.as_ref().unwrap_or(&ReplicaSetSpec::default()),
            "spec",
        )
    }

    fn validate_update(&self, obj: &ReplicaSet, old: &ReplicaSet) -> Vec<FieldError> {
        let mut errs = self.validate(obj);
        let sel = |r: &ReplicaSet| r.spec.as_ref().map(|s| s.selector.clone());
        errs.extend(validate_immutable(&sel(obj), &sel(old), "spec.selector"));
        errs
    }
}

fn validate_spec(spec: &ReplicaSetSpec, path: &str) -> Vec<FieldError> {
    let mut errs =
        validate_nonnegative(spec.replicas.unwrap_or(0).into(), &child(path, "replicas"));
    errs.extend(validate_nonnegative(
        spec.min_ready_seconds.unwrap_or(0).into(),
        &child(path, "minReadySeconds"),
    ));
    let selector = selector_given(&spec.selector);
    let sel_path = child(path, "selector");
    // Upstream words the message "for deployment" here too.
    errs.extend(validate_required_selector(
        selector,
        &sel_path,
        "deployment",
    ));
    let template = spec.template.clone().unwrap_or_default();
    match as_selector(selector) {
        None => errs.push(FieldError::invalid(
            &sel_path,
            json!(spec.selector),
            "invalid label selector",
        )),
        Some(sel) => errs.extend(validate_template_for_replica_set(
            &template,
            &sel,
            &child(path, "template"),
        )),
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::{fields, merged, template};
    use serde_json::{Value, from_value};

    fn replica_set(spec: Value) -> ReplicaSet {
        let mut rs: ReplicaSet =
            from_value(json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec}))
                .unwrap();
        ReplicaSetStrategy.defaults(&mut rs);
        rs
    }

    fn valid() -> Value {
        json!({"selector": {"matchLabels": {"app": "web"}}, "template": template("web")})
    }

    #[test]
    fn defaults_replicas() {
        assert_eq!(replica_set(valid()).spec.unwrap().replicas, Some(1));
        assert_eq!(
            replica_set(merged(valid(), json!({"replicas": 0})))
                .spec
                .unwrap()
                .replicas,
            Some(0)
        );
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            ("valid", valid(), vec![]),
            (
                "mismatch",
                merged(valid(), json!({"selector": {"matchLabels": {"app": "x"}}})),
                vec!["spec.template.metadata.labels"],
            ),
            (
                "negative minReadySeconds",
                merged(valid(), json!({"minReadySeconds": -1})),
                vec!["spec.minReadySeconds"],
            ),
            (
                "bad operator",
                merged(
                    valid(),
                    json!({"selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}),
                ),
                vec![
                    "spec.selector.matchExpressions[0].operator",
                    "spec.selector",
                ],
            ),
        ];
        for (name, spec, want) in cases {
            let errs = ReplicaSetStrategy.validate(&replica_set(spec));
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }

    #[test]
    fn missing_template_is_an_empty_one() {
        let errs = ReplicaSetStrategy.validate(&replica_set(
            json!({"selector": {"matchLabels": {"app": "web"}}}),
        ));
        let got = fields(&errs);
        assert_eq!(got[0], "spec.template.metadata.labels");
        assert!(got.contains(&"spec.template.spec.containers"), "{got:?}");
    }

    #[test]
    fn selector_is_immutable() {
        let old = replica_set(valid());
        let mut new = old.clone();
        new.spec.as_mut().unwrap().selector.match_labels = None;
        new.spec.as_mut().unwrap().selector.match_expressions = Some(vec![
            from_value(json!({"key": "app", "operator": "Exists"})).unwrap(),
        ]);
        assert_eq!(
            fields(&ReplicaSetStrategy.validate_update(&new, &old)),
            ["spec.selector"]
        );
    }
}
