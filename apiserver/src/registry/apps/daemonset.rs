//! apps/v1 DaemonSet (upstream `pkg/registry/apps/daemonset/strategy.go`).

use super::{
    SELECTOR_MISMATCH, Selector, as_selector, selector_given, template_labels,
    validate_always_restart,
};
use crate::error::FieldError;
use crate::registry::core::pod::{default_pod_template_spec, validate_pod_template_spec};
use crate::registry::strategy::Strategy;
use crate::registry::validation::{
    child, validate_immutable, validate_label_selector, validate_nonnegative,
};
use crate::registry::validation::{
    int_or_percent_value, is_not_more_than_100_percent, validate_positive_int_or_percent,
};
use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

/// apps/v1 keeps the internal `spec.templateGeneration` in this annotation.
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

pub struct DaemonSetStrategy;

impl Strategy for DaemonSetStrategy {
    type Object = DaemonSet;

    fn defaults(&self, obj: &mut DaemonSet) {
        let spec = obj.spec.get_or_insert_with(Default::default);
        let strategy = spec.update_strategy.get_or_insert_with(Default::default);
        let kind = strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
        if kind == "RollingUpdate" {
            let ru = strategy.rolling_update.get_or_insert_with(Default::default);
            ru.max_unavailable.get_or_insert(IntOrString::Int(1));
            ru.max_surge.get_or_insert(IntOrString::Int(0));
        }
        spec.revision_history_limit.get_or_insert(10);
        default_pod_template_spec(&mut spec.template);
    }

    fn prepare_for_create(&self, obj: &mut DaemonSet) {
        obj.status = None;
        // Upstream sets TemplateGeneration to at least 1 on create.
        let annotations = obj
            .metadata
            .annotations
            .get_or_insert_with(Default::default);
        let current = annotations
            .get(TEMPLATE_GENERATION_ANNOTATION)
            .and_then(|g| g.parse::<i64>().ok());
        if current.is_none_or(|g| g < 1) {
            annotations.insert(TEMPLATE_GENERATION_ANNOTATION.into(), "1".into());
        }
    }

    /// The template generation is the server's: clients cannot set it, and
    /// it counts template changes.
    fn prepare_for_update(&self, obj: &mut DaemonSet, old: &DaemonSet) {
        let template = |d: &DaemonSet| d.spec.as_ref().map(|s| s.template.clone());
        let old_generation = template_generation(old);
        let generation = if template(obj) != template(old) {
            old_generation + 1
        } else {
            old_generation
        };
        obj.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(
                TEMPLATE_GENERATION_ANNOTATION.into(),
                generation.to_string(),
            );
    }

    fn validate(&self, obj: &DaemonSet) -> Vec<FieldError> {
        validate_spec(
            obj.spec.as_ref().unwrap_or(&DaemonSetSpec::default()),
            "spec",
        )
    }

    fn validate_update(&self, obj: &DaemonSet, old: &DaemonSet) -> Vec<FieldError> {
        let mut errs = self.validate(obj);
        let sel = |d: &DaemonSet| d.spec.as_ref().map(|s| s.selector.clone());
        errs.extend(validate_immutable(&sel(obj), &sel(old), "spec.selector"));
        errs
    }
}

fn template_generation(ds: &DaemonSet) -> i64 {
    ds.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TEMPLATE_GENERATION_ANNOTATION))
        .and_then(|g| g.parse().ok())
        .unwrap_or(0)
}

fn validate_spec(spec: &DaemonSetSpec, path: &str) -> Vec<FieldError> {
    let selector = selector_given(&spec.selector);
    let sel_path = child(path, "selector");
    let template_path = child(path, "template");
    let mut errs = validate_label_selector(selector, &sel_path);
    // Unlike the other controllers, a DaemonSet checks the match even for an
    // empty selector, and reports no error when the selector does not convert.
    let labels = template_labels(&spec.template);
    if as_selector(selector).is_some_and(|sel| !sel.matches(labels)) {
        errs.push(FieldError::invalid(
            child(&template_path, "metadata.labels"),
            json!(labels.cloned().unwrap_or_default()),
            SELECTOR_MISMATCH,
        ));
    }
    if let Some(s) = selector
        && Selector::Of(s).is_empty()
    {
        errs.push(FieldError::invalid(
            &sel_path,
            json!(s),
            "empty selector is invalid for daemonset",
        ));
    }
    errs.extend(validate_pod_template_spec(&spec.template, &template_path));
    errs.extend(validate_always_restart(
        &spec.template,
        &template_path,
        "DaemonSet",
    ));
    errs.extend(validate_nonnegative(
        spec.min_ready_seconds.unwrap_or(0).into(),
        &child(path, "minReadySeconds"),
    ));
    errs.extend(validate_update_strategy(
        spec.update_strategy.as_ref(),
        &child(path, "updateStrategy"),
    ));
    if let Some(limit) = spec.revision_history_limit {
        errs.extend(validate_nonnegative(
            limit.into(),
            &child(path, "revisionHistoryLimit"),
        ));
    }
    errs
}

fn validate_update_strategy(
    strategy: Option<&DaemonSetUpdateStrategy>,
    path: &str,
) -> Vec<FieldError> {
    let kind = strategy.and_then(|s| s.type_.as_deref()).unwrap_or("");
    match (kind, strategy.and_then(|s| s.rolling_update.as_ref())) {
        ("OnDelete", _) => Vec::new(),
        ("RollingUpdate", None) => vec![FieldError::required(child(path, "rollingUpdate"), "")],
        ("RollingUpdate", Some(ru)) => validate_rolling_update(ru, &child(path, "rollingUpdate")),
        (other, _) => vec![FieldError::not_supported(
            path,
            other,
            &["RollingUpdate", "OnDelete"],
        )],
    }
}

fn validate_rolling_update(ru: &RollingUpdateDaemonSet, path: &str) -> Vec<FieldError> {
    let zero = IntOrString::Int(0);
    let unavailable = ru.max_unavailable.as_ref().unwrap_or(&zero);
    let surge = ru.max_surge.as_ref().unwrap_or(&zero);
    let (unavailable_path, surge_path) = (child(path, "maxUnavailable"), child(path, "maxSurge"));
    let mut errs = validate_positive_int_or_percent(unavailable, &unavailable_path);
    errs.extend(validate_positive_int_or_percent(surge, &surge_path));
    errs.extend(is_not_more_than_100_percent(unavailable, &unavailable_path));
    errs.extend(is_not_more_than_100_percent(surge, &surge_path));
    // Exactly one of the two must be non-zero.
    match (
        int_or_percent_value(unavailable) != 0,
        int_or_percent_value(surge) != 0,
    ) {
        (true, true) => errs.push(FieldError::invalid(
            surge_path,
            json!(surge),
            "may not be set when maxUnavailable is non-zero",
        )),
        (false, false) => errs.push(FieldError::required(
            unavailable_path,
            "cannot be 0 when maxSurge is 0",
        )),
        _ => {}
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::{fields, merged, template};
    use serde_json::{Value, from_value};

    fn daemon_set(spec: Value) -> DaemonSet {
        let mut ds: DaemonSet = from_value(
            json!({"metadata": {"name": "agent", "namespace": "kube-system"}, "spec": spec}),
        )
        .unwrap();
        DaemonSetStrategy.defaults(&mut ds);
        ds
    }

    fn valid() -> Value {
        json!({"selector": {"matchLabels": {"app": "agent"}}, "template": template("agent")})
    }

    #[test]
    fn defaults_are_upstreams() {
        let spec = daemon_set(valid()).spec.unwrap();
        let strategy = spec.update_strategy.unwrap();
        assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
        let ru = strategy.rolling_update.unwrap();
        assert_eq!(ru.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(ru.max_surge, Some(IntOrString::Int(0)));
        assert_eq!(spec.revision_history_limit, Some(10));
    }

    #[test]
    fn create_sets_template_generation() {
        let mut ds = daemon_set(valid());
        ds.status = Some(Default::default());
        DaemonSetStrategy.prepare_for_create(&mut ds);
        assert!(ds.status.is_none());
        assert_eq!(
            ds.metadata.annotations.unwrap()[TEMPLATE_GENERATION_ANNOTATION],
            "1"
        );
    }

    #[test]
    fn update_counts_template_changes() {
        let mut old = daemon_set(valid());
        DaemonSetStrategy.prepare_for_create(&mut old);
        let generation = |d: &DaemonSet| template_generation(d);
        // A client cannot set it.
        let mut new = old.clone();
        new.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(TEMPLATE_GENERATION_ANNOTATION.into(), "9".into());
        DaemonSetStrategy.prepare_for_update(&mut new, &old);
        assert_eq!(generation(&new), 1);
        // A template change bumps it; other spec changes do not.
        let mut new = old.clone();
        new.spec.as_mut().unwrap().min_ready_seconds = Some(5);
        DaemonSetStrategy.prepare_for_update(&mut new, &old);
        assert_eq!(generation(&new), 1);
        let mut new = old.clone();
        new.spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .image = Some("v2".into());
        DaemonSetStrategy.prepare_for_update(&mut new, &old);
        assert_eq!(generation(&new), 2);
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
                "empty selector",
                merged(valid(), json!({"selector": {"matchLabels": {}}})),
                vec!["spec.selector"],
            ),
            (
                "missing selector",
                json!({"template": template("agent")}),
                vec!["spec.template.metadata.labels"],
            ),
            (
                "both set",
                merged(
                    valid(),
                    json!({"updateStrategy": {"rollingUpdate": {"maxSurge": 1}}}),
                ),
                vec!["spec.updateStrategy.rollingUpdate.maxSurge"],
            ),
            (
                "both zero",
                merged(
                    valid(),
                    json!({"updateStrategy": {"rollingUpdate": {"maxUnavailable": 0}}}),
                ),
                vec!["spec.updateStrategy.rollingUpdate.maxUnavailable"],
            ),
            (
                "on delete",
                merged(valid(), json!({"updateStrategy": {"type": "OnDelete"}})),
                vec![],
            ),
            (
                "bad type",
                merged(valid(), json!({"updateStrategy": {"type": "Sometimes"}})),
                vec!["spec.updateStrategy"],
            ),
            (
                "restart never",
                merged(
                    valid(),
                    json!({"template": {"spec": {"restartPolicy": "Never"}}}),
                ),
                vec!["spec.template.spec.restartPolicy"],
            ),
        ];
        for (name, spec, want) in cases {
            let errs = DaemonSetStrategy.validate(&daemon_set(spec));
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }

    #[test]
    fn selector_is_immutable() {
        let old = daemon_set(valid());
        let new = daemon_set(merged(
            valid(),
            json!({"selector": {"matchLabels": {"tier": "x"}}, "template": {"metadata": {"labels": {"tier": "x"}}}}),
        ));
        assert_eq!(
            fields(&DaemonSetStrategy.validate_update(&new, &old)),
            ["spec.selector"]
        );
    }
}
