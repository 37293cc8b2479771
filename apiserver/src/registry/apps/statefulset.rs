//! apps/v1 StatefulSet (upstream `pkg/registry/apps/statefulset/strategy.go`).
//! Its name must be an RFC 1123 label (`NameRule::Label`): pods are named
//! `<name>-<ordinal>` and use it as their hostname.

use super::{
    as_selector, selector_given, validate_always_restart, validate_required_selector,
    validate_selector_matches,
};
use crate::error::FieldError;
use crate::registry::core::persistentvolumeclaim::PersistentVolumeClaimStrategy;
use crate::registry::core::pod::{default_pod_template_spec, validate_pod_template_spec};
use crate::registry::strategy::Strategy;
use crate::registry::validation::{child, invalid_each, is_dns1123_label, validate_nonnegative};
use crate::registry::validation::{
    int_or_percent_value, is_not_more_than_100_percent, validate_positive_int_or_percent,
};
use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetSpec,
};
use serde_json::json;

pub struct StatefulSetStrategy;

/// Upstream's StatefulSetValidationOptions: what an update may keep invalid.
#[derive(Default, Clone, Copy)]
struct Options {
    /// serviceName is immutable, so a stored invalid one must not block updates.
    allow_invalid_service_name: bool,
    /// A stored template that predates template validation stays updatable.
    skip_template: bool,
}

impl Strategy for StatefulSetStrategy {
    type Object = StatefulSet;

    fn defaults(&self, obj: &mut StatefulSet) {
        let spec = obj.spec.get_or_insert_with(Default::default);
        spec.pod_management_policy
            .get_or_insert_with(|| "OrderedReady".into());
        let strategy = spec.update_strategy.get_or_insert_with(Default::default);
        if strategy.type_.is_none() {
            strategy.type_ = Some("RollingUpdate".into());
            strategy.rolling_update.get_or_insert_with(Default::default);
        }
        if strategy.type_.as_deref() == Some("RollingUpdate")
            && let Some(ru) = strategy.rolling_update.as_mut()
        {
            // maxUnavailable is only defaulted behind the alpha MaxUnavailableStatefulSet gate.
            ru.partition.get_or_insert(0);
        }
        let retention = spec
            .persistent_volume_claim_retention_policy
            .get_or_insert_with(Default::default);
        for policy in [&mut retention.when_deleted, &mut retention.when_scaled] {
            if policy.as_deref().is_none_or(str::is_empty) {
                *policy = Some("Retain".into());
            }
        }
        spec.replicas.get_or_insert(1);
        spec.revision_history_limit.get_or_insert(10);
        default_pod_template_spec(&mut spec.template);
        // The generated defaulter runs the PersistentVolumeClaim defaults on templates.
        for pvc in spec.volume_claim_templates.iter_mut().flatten() {
            PersistentVolumeClaimStrategy.defaults(pvc);
        }
    }

    fn prepare_for_create(&self, obj: &mut StatefulSet) {
        obj.status = None;
    }

    fn validate(&self, obj: &StatefulSet) -> Vec<FieldError> {
        validate_spec(spec_of(obj), "spec", Options::default())
    }

    fn validate_update(&self, obj: &StatefulSet, old: &StatefulSet) -> Vec<FieldError> {
        let (new_spec, old_spec) = (spec_of(obj), spec_of(old));
        let opts = Options {
            allow_invalid_service_name: true,
            skip_template: new_spec.template == old_spec.template
                && !validate_pod_template_spec(&old_spec.template, "spec.template").is_empty(),
        };
        let mut errs = validate_spec(new_spec, "spec", opts);
        // Only these fields may change; compare the rest.
        let mut probe = new_spec.clone();
        probe.replicas = old_spec.replicas;
        probe.ordinals = old_spec.ordinals.clone();
        probe.template = old_spec.template.clone();
        probe.update_strategy = old_spec.update_strategy.clone();
        probe.revision_history_limit = old_spec.revision_history_limit;
        probe.persistent_volume_claim_retention_policy =
            old_spec.persistent_volume_claim_retention_policy.clone();
        probe.min_ready_seconds = old_spec.min_ready_seconds;
        if probe != *old_spec {
            errs.push(FieldError::forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', \
                 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and \
                 'minReadySeconds' are forbidden",
            ));
        }
        errs
    }
}

fn spec_of(obj: &StatefulSet) -> &StatefulSetSpec {
    static EMPTY: std::sync::LazyLock<StatefulSetSpec> =
        std::sync::LazyLock::new(StatefulSetSpec::default);
    obj.spec.as_ref().unwrap_or(&EMPTY)
}

fn validate_spec(spec: &StatefulSetSpec, path: &str, opts: Options) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let policy_path = child(path, "podManagementPolicy");
    match spec.pod_management_policy.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(policy_path, "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            policy_path,
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    errs.extend(validate_update_strategy(
        spec,
        &child(path, "updateStrategy"),
    ));
    if let Some(policy) = &spec.persistent_volume_claim_retention_policy {
        errs.extend(validate_retention_policy(
            policy,
            &child(path, "persistentVolumeClaimRetentionPolicy"),
        ));
    }
    errs.extend(validate_nonnegative(
        spec.replicas.unwrap_or(0).into(),
        &child(path, "replicas"),
    ));
    errs.extend(validate_nonnegative(
        spec.min_ready_seconds.unwrap_or(0).into(),
        &child(path, "minReadySeconds"),
    ));
    if let Some(ordinals) = &spec.ordinals {
        errs.extend(validate_nonnegative(
            ordinals.start.unwrap_or(0).into(),
            &child(path, "ordinals.start"),
        ));
    }
    if let Some(name) = spec.service_name.as_deref().filter(|n| !n.is_empty())
        && !opts.allow_invalid_service_name
    {
        errs.extend(invalid_each(
            &child(path, "serviceName"),
            name,
            is_dns1123_label(name),
        ));
    }
    let selector = selector_given(&spec.selector);
    let sel_path = child(path, "selector");
    errs.extend(validate_required_selector(
        selector,
        &sel_path,
        "statefulset",
    ));
    let template_path = child(path, "template");
    match as_selector(selector) {
        None => errs.push(FieldError::invalid(&sel_path, json!(spec.selector), "")),
        Some(sel) => {
            errs.extend(validate_selector_matches(
                &sel,
                &spec.template,
                &template_path,
            ));
            if !opts.skip_template {
                errs.extend(validate_pod_template_spec(&spec.template, &template_path));
            }
        }
    }
    errs.extend(validate_always_restart(
        &spec.template,
        &template_path,
        "StatefulSet",
    ));
    errs
}

fn validate_update_strategy(spec: &StatefulSetSpec, path: &str) -> Vec<FieldError> {
    let strategy = spec.update_strategy.as_ref();
    let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
    match strategy.and_then(|s| s.type_.as_deref()).unwrap_or("") {
        "" => vec![FieldError::required(path, "")],
        "OnDelete" => match rolling {
            Some(ru) => vec![FieldError::invalid(
                child(path, "rollingUpdate"),
                json!(ru),
                "only allowed for updateStrategy 'RollingUpdate'",
            )],
            None => Vec::new(),
        },
        "RollingUpdate" => rolling
            .map(|ru| validate_rolling_update(ru, &child(path, "rollingUpdate")))
            .unwrap_or_default(),
        other => vec![FieldError::invalid(
            path,
            other,
            "must be 'RollingUpdate' or 'OnDelete'",
        )],
    }
}

fn validate_rolling_update(ru: &RollingUpdateStatefulSetStrategy, path: &str) -> Vec<FieldError> {
    let mut errs =
        validate_nonnegative(ru.partition.unwrap_or(0).into(), &child(path, "partition"));
    if let Some(max) = &ru.max_unavailable {
        let p = child(path, "maxUnavailable");
        errs.extend(validate_positive_int_or_percent(max, &p));
        if int_or_percent_value(max) == 0 {
            errs.push(FieldError::invalid(&p, json!(max), "cannot be 0"));
        }
        errs.extend(is_not_more_than_100_percent(max, &p));
    }
    errs
}

fn validate_retention_policy(
    policy: &StatefulSetPersistentVolumeClaimRetentionPolicy,
    path: &str,
) -> Vec<FieldError> {
    [
        ("whenDeleted", &policy.when_deleted),
        ("whenScaled", &policy.when_scaled),
    ]
    .into_iter()
    .filter_map(|(name, value)| {
        let value = value.as_deref().unwrap_or("");
        (!matches!(value, "Retain" | "Delete"))
            .then(|| FieldError::not_supported(child(path, name), value, &["Retain", "Delete"]))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::{fields, merged, template};
    use serde_json::{Value, from_value};

    fn stateful_set(spec: Value) -> StatefulSet {
        let mut s: StatefulSet =
            from_value(json!({"metadata": {"name": "db", "namespace": "default"}, "spec": spec}))
                .unwrap();
        StatefulSetStrategy.defaults(&mut s);
        s
    }

    fn valid() -> Value {
        json!({"serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": template("db")})
    }

    #[test]
    fn defaults_are_upstreams() {
        let spec = stateful_set(merged(
            valid(),
            json!({"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}),
        ))
        .spec
        .unwrap();
        assert_eq!(spec.pod_management_policy.as_deref(), Some("OrderedReady"));
        let strategy = spec.update_strategy.unwrap();
        assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
        assert_eq!(strategy.rolling_update.unwrap().partition, Some(0));
        let retention = spec.persistent_volume_claim_retention_policy.unwrap();
        assert_eq!(retention.when_deleted.as_deref(), Some("Retain"));
        assert_eq!(retention.when_scaled.as_deref(), Some("Retain"));
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.revision_history_limit, Some(10));
        let pvc = &spec.volume_claim_templates.unwrap()[0];
        assert_eq!(
            pvc.spec.as_ref().unwrap().volume_mode.as_deref(),
            Some("Filesystem")
        );
        assert_eq!(
            pvc.status.as_ref().unwrap().phase.as_deref(),
            Some("Pending")
        );
        // An explicit OnDelete gets no rollingUpdate.
        let s = stateful_set(merged(
            valid(),
            json!({"updateStrategy": {"type": "OnDelete"}}),
        ));
        assert!(
            s.spec
                .unwrap()
                .update_strategy
                .unwrap()
                .rolling_update
                .is_none()
        );
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            ("valid", valid(), vec![]),
            (
                "no service name",
                json!({"selector": {"matchLabels": {"app": "db"}}, "template": template("db")}),
                vec![],
            ),
            (
                "bad service name",
                merged(valid(), json!({"serviceName": "Db_1"})),
                vec!["spec.serviceName"],
            ),
            (
                "bad policy",
                merged(valid(), json!({"podManagementPolicy": "Random"})),
                vec!["spec.podManagementPolicy"],
            ),
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
                "on delete with rolling update",
                merged(
                    valid(),
                    json!({"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}}),
                ),
                vec!["spec.updateStrategy.rollingUpdate"],
            ),
            (
                "negative partition",
                merged(
                    valid(),
                    json!({"updateStrategy": {"rollingUpdate": {"partition": -1}}}),
                ),
                vec!["spec.updateStrategy.rollingUpdate.partition"],
            ),
            (
                "zero max unavailable",
                merged(
                    valid(),
                    json!({"updateStrategy": {"rollingUpdate": {"maxUnavailable": 0}}}),
                ),
                vec!["spec.updateStrategy.rollingUpdate.maxUnavailable"],
            ),
            (
                "retention policy",
                merged(
                    valid(),
                    json!({"persistentVolumeClaimRetentionPolicy": {"whenScaled": "Keep"}}),
                ),
                vec!["spec.persistentVolumeClaimRetentionPolicy.whenScaled"],
            ),
            (
                "ordinals",
                merged(valid(), json!({"ordinals": {"start": -2}})),
                vec!["spec.ordinals.start"],
            ),
            (
                "active deadline",
                merged(
                    valid(),
                    json!({"template": {"spec": {"activeDeadlineSeconds": 1}}}),
                ),
                vec!["spec.template.spec.activeDeadlineSeconds"],
            ),
            (
                "invalid template",
                merged(valid(), json!({"template": {"spec": {"containers": []}}})),
                vec!["spec.template.spec.containers"],
            ),
        ];
        for (name, spec, want) in cases {
            let errs = StatefulSetStrategy.validate(&stateful_set(spec));
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }

    #[test]
    fn update_allows_only_listed_fields() {
        let old = stateful_set(valid());
        let allowed = stateful_set(merged(
            valid(),
            json!({"replicas": 3, "minReadySeconds": 5, "revisionHistoryLimit": 2, "ordinals": {"start": 1}}),
        ));
        assert!(
            StatefulSetStrategy
                .validate_update(&allowed, &old)
                .is_empty()
        );
        for patch in [
            json!({"serviceName": "other"}),
            json!({"podManagementPolicy": "Parallel"}),
        ] {
            let new = stateful_set(merged(valid(), patch.clone()));
            assert_eq!(
                fields(&StatefulSetStrategy.validate_update(&new, &old)),
                ["spec"],
                "{patch}"
            );
        }
    }

    #[test]
    fn update_ratchets_stored_invalid_values() {
        let old = stateful_set(merged(
            valid(),
            json!({"serviceName": "Bad_Name", "template": {"spec": {"containers": []}}}),
        ));
        let mut new = old.clone();
        new.spec.as_mut().unwrap().replicas = Some(4);
        assert!(StatefulSetStrategy.validate_update(&new, &old).is_empty());
        // Changing the template validates it again.
        let mut new = old.clone();
        let t = &mut new.spec.as_mut().unwrap().template;
        t.spec.as_mut().unwrap().restart_policy = Some("Always".into());
        t.metadata.as_mut().unwrap().annotations =
            Some([("a".to_string(), "b".to_string())].into());
        assert_eq!(
            fields(&StatefulSetStrategy.validate_update(&new, &old)),
            ["spec.template.spec.containers"]
        );
    }
}
