//! apps/v1 Deployment (upstream `pkg/registry/apps/deployment/strategy.go`).

use super::{
    as_selector, selector_given, validate_required_selector, validate_template_for_replica_set,
};
use crate::error::FieldError;
use crate::registry::core::pod::default_pod_template_spec;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{child, validate_immutable, validate_nonnegative};
use crate::registry::validation::{
    int_or_percent_value, is_not_more_than_100_percent, validate_positive_int_or_percent,
};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy as UpdateStrategy, RollingUpdateDeployment,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

pub struct DeploymentStrategy;

impl Strategy for DeploymentStrategy {
    type Object = Deployment;

    fn defaults(&self, obj: &mut Deployment) {
        let spec = obj.spec.get_or_insert_with(Default::default);
        spec.replicas.get_or_insert(1);
        let strategy = spec.strategy.get_or_insert_with(Default::default);
        let kind = strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
        if kind == "RollingUpdate" {
            let ru = strategy.rolling_update.get_or_insert_with(Default::default);
            ru.max_unavailable
                .get_or_insert_with(|| IntOrString::String("25%".into()));
            ru.max_surge
                .get_or_insert_with(|| IntOrString::String("25%".into()));
        }
        spec.revision_history_limit.get_or_insert(10);
        spec.progress_deadline_seconds.get_or_insert(600);
        default_pod_template_spec(&mut spec.template);
    }

    fn prepare_for_create(&self, obj: &mut Deployment) {
        obj.status = None;
    }

    /// Annotations are copied onto the ReplicaSets, so changing them is a
    /// new generation too (the store bumps it for spec changes).
    fn prepare_for_update(&self, obj: &mut Deployment, old: &Deployment) {
        let annotations = |d: &Deployment| d.metadata.annotations.clone().unwrap_or_default();
        if annotations(obj) != annotations(old) {
            obj.metadata.generation = Some(old.metadata.generation.unwrap_or(0) + 1);
        }
    }

    fn validate(&self, obj: &Deployment) -> Vec<FieldError> {
        validate_spec(
            obj.spec.as_ref().unwrap_or(&DeploymentSpec::default()),
            "spec",
        )
    }

    fn validate_update(&self, obj: &Deployment, old: &Deployment) -> Vec<FieldError> {
        let mut errs = self.validate(obj);
        // apps/v1 forbids changing the selector (extensions/v1beta1 allowed it).
        let sel = |d: &Deployment| d.spec.as_ref().map(|s| s.selector.clone());
        errs.extend(validate_immutable(&sel(obj), &sel(old), "spec.selector"));
        errs
    }
}

fn validate_spec(spec: &DeploymentSpec, path: &str) -> Vec<FieldError> {
    let mut errs =
        validate_nonnegative(spec.replicas.unwrap_or(0).into(), &child(path, "replicas"));
    let selector = selector_given(&spec.selector);
    let sel_path = child(path, "selector");
    errs.extend(validate_required_selector(
        selector,
        &sel_path,
        "deployment",
    ));
    match as_selector(selector) {
        None => errs.push(FieldError::invalid(
            &sel_path,
            json!(spec.selector),
            "invalid label selector",
        )),
        Some(sel) => errs.extend(validate_template_for_replica_set(
            &spec.template,
            &sel,
            &child(path, "template"),
        )),
    }
    errs.extend(validate_strategy(
        spec.strategy.as_ref(),
        &child(path, "strategy"),
    ));
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    errs.extend(validate_nonnegative(
        min_ready.into(),
        &child(path, "minReadySeconds"),
    ));
    if let Some(limit) = spec.revision_history_limit {
        errs.extend(validate_nonnegative(
            limit.into(),
            &child(path, "revisionHistoryLimit"),
        ));
    }
    if let Some(deadline) = spec.progress_deadline_seconds {
        let p = child(path, "progressDeadlineSeconds");
        errs.extend(validate_nonnegative(deadline.into(), &p));
        if deadline <= min_ready {
            errs.push(FieldError::invalid(
                p,
                deadline,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

fn validate_strategy(strategy: Option<&UpdateStrategy>, path: &str) -> Vec<FieldError> {
    let kind = strategy.and_then(|s| s.type_.as_deref()).unwrap_or("");
    let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
    match (kind, rolling) {
        ("Recreate", Some(_)) => vec![FieldError::forbidden(
            child(path, "rollingUpdate"),
            "may not be specified when strategy `type` is 'Recreate'",
        )],
        ("Recreate", None) => Vec::new(),
        ("RollingUpdate", None) => vec![FieldError::required(
            child(path, "rollingUpdate"),
            "this should be defaulted and never be nil",
        )],
        ("RollingUpdate", Some(ru)) => validate_rolling_update(ru, &child(path, "rollingUpdate")),
        (other, _) => vec![FieldError::not_supported(
            path,
            other,
            &["Recreate", "RollingUpdate"],
        )],
    }
}

fn validate_rolling_update(ru: &RollingUpdateDeployment, path: &str) -> Vec<FieldError> {
    let zero = IntOrString::Int(0);
    let unavailable = ru.max_unavailable.as_ref().unwrap_or(&zero);
    let surge = ru.max_surge.as_ref().unwrap_or(&zero);
    let unavailable_path = child(path, "maxUnavailable");
    let mut errs = validate_positive_int_or_percent(unavailable, &unavailable_path);
    errs.extend(validate_positive_int_or_percent(
        surge,
        &child(path, "maxSurge"),
    ));
    if int_or_percent_value(unavailable) == 0 && int_or_percent_value(surge) == 0 {
        errs.push(FieldError::invalid(
            &unavailable_path,
            json!(unavailable),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    errs.extend(is_not_more_than_100_percent(unavailable, &unavailable_path));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::{fields, merged, template};
    use serde_json::{Value, from_value};

    fn deployment(spec: Value) -> Deployment {
        let mut d: Deployment = from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": spec,
        }))
        .unwrap();
        DeploymentStrategy.defaults(&mut d);
        d
    }

    fn valid() -> Value {
        json!({"selector": {"matchLabels": {"app": "web"}}, "template": template("web")})
    }

    fn with(patch: Value) -> Value {
        merged(valid(), patch)
    }

    #[test]
    fn defaults_are_upstreams() {
        let d = deployment(json!({"template": {"spec": {"containers": []}}}));
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.revision_history_limit, Some(10));
        assert_eq!(spec.progress_deadline_seconds, Some(600));
        let strategy = spec.strategy.unwrap();
        assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
        let ru = strategy.rolling_update.unwrap();
        assert_eq!(ru.max_surge, Some(IntOrString::String("25%".into())));
        assert_eq!(ru.max_unavailable, Some(IntOrString::String("25%".into())));
        // Recreate gets no rollingUpdate.
        let d = deployment(json!({"strategy": {"type": "Recreate"}}));
        assert!(d.spec.unwrap().strategy.unwrap().rolling_update.is_none());
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            ("valid", valid(), vec![]),
            (
                "selector mismatch",
                with(json!({"selector": {"matchLabels": {"app": "db"}}})),
                vec!["spec.template.metadata.labels"],
            ),
            (
                "missing selector",
                json!({"template": valid()["template"].clone()}),
                vec!["spec.selector", "spec.template.metadata.labels"],
            ),
            (
                "empty selector",
                with(json!({"selector": {"matchLabels": {}}})),
                vec!["spec.selector"],
            ),
            (
                "negative replicas",
                with(json!({"replicas": -1})),
                vec!["spec.replicas"],
            ),
            (
                "both zero",
                with(
                    json!({"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}}),
                ),
                vec!["spec.strategy.rollingUpdate.maxUnavailable"],
            ),
            (
                "over 100%",
                with(json!({"strategy": {"rollingUpdate": {"maxUnavailable": "101%"}}})),
                vec!["spec.strategy.rollingUpdate.maxUnavailable"],
            ),
            (
                "bad percent",
                with(json!({"strategy": {"rollingUpdate": {"maxSurge": "x"}}})),
                vec!["spec.strategy.rollingUpdate.maxSurge"],
            ),
            (
                "recreate with rolling update",
                with(json!({"strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}})),
                vec!["spec.strategy.rollingUpdate"],
            ),
            (
                "unknown strategy",
                with(json!({"strategy": {"type": "Blue"}})),
                vec!["spec.strategy"],
            ),
            (
                "restart policy",
                with(json!({"template": {"spec": {"restartPolicy": "Never"}}})),
                vec!["spec.template.spec.restartPolicy"],
            ),
            (
                "deadline",
                with(json!({"minReadySeconds": 700})),
                vec!["spec.progressDeadlineSeconds"],
            ),
            (
                "active deadline",
                with(json!({"template": {"spec": {"activeDeadlineSeconds": 5}}})),
                vec!["spec.template.spec.activeDeadlineSeconds"],
            ),
            (
                "invalid pod spec",
                with(json!({"template": {"spec": {"containers": []}}})),
                vec!["spec.template.spec.containers"],
            ),
        ];
        for (name, spec, want) in cases {
            let errs = DeploymentStrategy.validate(&deployment(spec));
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }

    #[test]
    fn mismatch_message_is_upstreams() {
        let errs = DeploymentStrategy.validate(&deployment(with(
            json!({"selector": {"matchLabels": {"app": "x"}}}),
        )));
        assert!(
            errs[0]
                .to_string()
                .ends_with("`selector` does not match template `labels`")
        );
    }

    #[test]
    fn selector_is_immutable() {
        let old = deployment(valid());
        let mut new = old.clone();
        new.spec.as_mut().unwrap().replicas = Some(5);
        assert!(DeploymentStrategy.validate_update(&new, &old).is_empty());
        let new = deployment(with(json!({
            "selector": {"matchLabels": {"app": "web", "v": "2"}},
            "template": {"metadata": {"labels": {"app": "web", "v": "2"}}},
        })));
        assert_eq!(
            fields(&DeploymentStrategy.validate_update(&new, &old)),
            ["spec.selector"]
        );
    }

    #[test]
    fn annotation_changes_bump_generation() {
        let mut old = deployment(valid());
        old.metadata.generation = Some(3);
        let mut new = old.clone();
        DeploymentStrategy.prepare_for_update(&mut new, &old);
        assert_eq!(new.metadata.generation, Some(3));
        new.metadata.annotations = Some([("note".to_string(), "x".to_string())].into());
        DeploymentStrategy.prepare_for_update(&mut new, &old);
        assert_eq!(new.metadata.generation, Some(4));
    }

    #[test]
    fn create_clears_status() {
        let mut d = deployment(valid());
        d.status = Some(Default::default());
        DeploymentStrategy.prepare_for_create(&mut d);
        assert!(d.status.is_none());
    }
}
