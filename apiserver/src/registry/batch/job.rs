//! batch/v1 Job (upstream `pkg/registry/batch/job/strategy.go`).
//!
//! Unless `spec.manualSelector` is true, create generates the selector from
//! the Job's uid (set by the store before `prepare_for_create`) and labels
//! the pod template to match, as upstream's generateSelector does.

use crate::error::{FieldError, FieldErrorKind};
use crate::registry::apps::{SELECTOR_MISMATCH, as_selector, template_labels};
use crate::registry::core::pod::{default_pod_template_spec, validate_pod_template_spec};
use crate::registry::networking::validate_domain_prefixed_path;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{
    child, index, is_dns1123_label, key, validate_immutable, validate_label_selector,
    validate_nonnegative, validate_qualified_name,
};
use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyOnPodConditionsPattern,
    PodFailurePolicyRule, SuccessPolicyRule,
};
use k8s_openapi::api::core::v1::{Affinity, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";

const MAX_PARALLELISM_FOR_INDEXED_JOB: i32 = 100_000;
const MAX_FAILED_INDEXES_FOR_INDEXED_JOB: i32 = 100_000;
const COMPLETIONS_SOFT_LIMIT: i32 = 100_000;
const PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS: i32 = 10_000;
const MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS: i32 = 10_000;
const MAX_POD_FAILURE_POLICY_RULES: usize = 20;
const MAX_ON_EXIT_CODES_VALUES: usize = 255;
const MAX_ON_POD_CONDITIONS_PATTERNS: usize = 20;
const MAX_MANAGED_BY_LENGTH: usize = 63;
const MAX_SUCCEEDED_INDEXES_LENGTH: usize = 64 * 1024;
const MAX_SUCCESS_POLICY_RULES: usize = 20;

const POD_FAILURE_ACTIONS: &[&str] = &["Count", "FailIndex", "FailJob", "Ignore"];
const EXIT_CODE_OPERATORS: &[&str] = &["In", "NotIn"];
const CONDITION_STATUSES: &[&str] = &["False", "True", "Unknown"];
const POD_REPLACEMENT_POLICIES: &[&str] = &["Failed", "TerminatingOrFailed"];

pub struct JobStrategy;

/// Upstream's JobValidationOptions.
#[derive(Clone, Copy)]
struct Options {
    /// Require the `batch.kubernetes.io/` labels (always on create; on update
    /// only when the stored Job has them).
    require_prefixed_labels: bool,
    /// A suspended Job that never started may change its pods' scheduling.
    allow_mutable_scheduling_directives: bool,
}

impl Strategy for JobStrategy {
    type Object = Job;

    fn defaults(&self, obj: &mut Job) {
        let spec = obj.spec.get_or_insert_with(Default::default);
        if spec.completions.is_none() && spec.parallelism.is_none() {
            spec.completions = Some(1);
        }
        spec.parallelism.get_or_insert(1);
        let backoff = if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        };
        spec.backoff_limit.get_or_insert(backoff);
        if let Some(labels) = template_labels(&spec.template)
            && obj.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty)
        {
            obj.metadata.labels = Some(labels.clone());
        }
        spec.completion_mode
            .get_or_insert_with(|| "NonIndexed".into());
        spec.suspend.get_or_insert(false);
        if let Some(policy) = spec.pod_failure_policy.as_mut() {
            for pattern in policy
                .rules
                .iter_mut()
                .flat_map(|r| r.on_pod_conditions.iter_mut().flatten())
            {
                if pattern.status.is_empty() {
                    pattern.status = "True".into();
                }
            }
        }
        let replacement = if spec.pod_failure_policy.is_some() {
            "Failed"
        } else {
            "TerminatingOrFailed"
        };
        spec.pod_replacement_policy
            .get_or_insert_with(|| replacement.into());
        default_pod_template_spec(&mut spec.template);
    }

    fn prepare_for_create(&self, obj: &mut Job) {
        obj.status = None;
        if obj.spec.as_ref().and_then(|s| s.manual_selector) != Some(true) {
            generate_selector(obj);
        }
    }

    fn validate(&self, obj: &Job) -> Vec<FieldError> {
        let opts = Options {
            require_prefixed_labels: true,
            allow_mutable_scheduling_directives: false,
        };
        validate_job(obj, opts)
    }

    fn validate_update(&self, obj: &Job, old: &Job) -> Vec<FieldError> {
        let old_spec = spec_of(old);
        let old_labels = template_labels(&old_spec.template);
        let has = |k: &str| old_labels.is_some_and(|l| l.contains_key(k));
        let suspended = old_spec.suspend == Some(true);
        let not_started = old.status.as_ref().is_none_or(|s| s.start_time.is_none());
        let opts = Options {
            require_prefixed_labels: has(JOB_NAME_LABEL) && has(CONTROLLER_UID_LABEL),
            allow_mutable_scheduling_directives: suspended && not_started,
        };
        let mut errs = validate_job(obj, opts);
        errs.extend(validate_spec_update(spec_of(obj), old_spec, "spec", opts));
        errs
    }
}

fn spec_of(job: &Job) -> &JobSpec {
    static EMPTY: std::sync::LazyLock<JobSpec> = std::sync::LazyLock::new(JobSpec::default);
    job.spec.as_ref().unwrap_or(&EMPTY)
}

/// Upstream's generateSelector: label the pods with the Job's name and uid
/// (keeping labels the user set, which validation then checks) and select
/// them by uid.
fn generate_selector(job: &mut Job) {
    let name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let spec = job.spec.get_or_insert_with(Default::default);
    let labels = spec
        .template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default);
    for (k, v) in [
        (LEGACY_JOB_NAME_LABEL, &name),
        (JOB_NAME_LABEL, &name),
        (LEGACY_CONTROLLER_UID_LABEL, &uid),
        (CONTROLLER_UID_LABEL, &uid),
    ] {
        labels.entry(k.to_string()).or_insert_with(|| v.clone());
    }
    let selector = spec.selector.get_or_insert_with(Default::default);
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .entry(CONTROLLER_UID_LABEL.to_string())
        .or_insert(uid);
}

fn validate_job(job: &Job, opts: Options) -> Vec<FieldError> {
    let spec = spec_of(job);
    let mut errs = validate_generated_selector(job, opts.require_prefixed_labels);
    errs.extend(validate_job_spec(spec, "spec"));
    // Indexed pods are named `<job>-<index>`, which must stay a DNS label.
    if spec.completion_mode.as_deref() == Some("Indexed")
        && let Some(completions) = spec.completions.filter(|c| *c > 0)
    {
        let name = job.metadata.name.as_deref().unwrap_or("");
        let hostname = format!("{name}-{}", completions - 1);
        if !is_dns1123_label(&hostname).is_empty() {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                format!("will not able to create pod with invalid DNS label: {hostname}"),
            ));
        }
    }
    errs
}

/// A generated selector must select by this Job's uid and name, and the
/// template must carry the generated labels.
fn validate_generated_selector(job: &Job, require_prefixed_labels: bool) -> Vec<FieldError> {
    let spec = spec_of(job);
    if spec.manual_selector == Some(true) || spec.selector.is_none() {
        return Vec::new();
    }
    let mut errs = Vec::new();
    let uid = job.metadata.uid.as_deref().unwrap_or("");
    let name = job.metadata.name.as_deref().unwrap_or("");
    if uid.is_empty() {
        errs.push(FieldError::required("metadata.uid", ""));
    }
    let meta = spec.template.metadata.clone().unwrap_or_default();
    let mut expected = vec![
        (LEGACY_CONTROLLER_UID_LABEL, uid),
        (LEGACY_JOB_NAME_LABEL, name),
    ];
    if require_prefixed_labels {
        expected.extend([(CONTROLLER_UID_LABEL, uid), (JOB_NAME_LABEL, name)]);
    }
    for (k, v) in &expected {
        errs.extend(validate_has_label(&meta, "spec.template.metadata", k, v));
    }
    let expected: BTreeMap<String, String> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Some(sel) = as_selector(spec.selector.as_ref())
        && !sel.matches(Some(&expected))
    {
        errs.push(FieldError::invalid(
            "spec.selector",
            json!(spec.selector),
            "`selector` not auto-generated",
        ));
    }
    errs
}

fn validate_has_label(meta: &ObjectMeta, path: &str, k: &str, expected: &str) -> Vec<FieldError> {
    let p = key(&child(path, "labels"), k);
    match meta.labels.as_ref().and_then(|l| l.get(k)) {
        None => vec![FieldError::required(p, format!("must be '{expected}'"))],
        Some(v) if v != expected => vec![FieldError::invalid(
            p,
            json!(meta.labels),
            format!("must be '{expected}'"),
        )],
        Some(_) => Vec::new(),
    }
}

/// Upstream's ValidateJobSpec: the shared checks plus the selector.
fn validate_job_spec(spec: &JobSpec, path: &str) -> Vec<FieldError> {
    let mut errs = validate_job_spec_common(spec, path);
    let sel_path = child(path, "selector");
    match &spec.selector {
        None => errs.push(FieldError::required(&sel_path, "")),
        Some(s) => errs.extend(validate_label_selector(Some(s), &sel_path)),
    }
    if let Some(sel) = as_selector(spec.selector.as_ref())
        && !sel.matches(template_labels(&spec.template))
    {
        let labels = template_labels(&spec.template).cloned().unwrap_or_default();
        errs.push(FieldError::invalid(
            child(path, "template.metadata.labels"),
            json!(labels),
            SELECTOR_MISMATCH,
        ));
    }
    errs
}

/// Upstream's validateJobSpec, shared with CronJob's jobTemplate.
pub(crate) fn validate_job_spec_common(spec: &JobSpec, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let nonneg = |v: Option<i64>, name: &str| {
        v.map(|v| validate_nonnegative(v, &child(path, name)))
            .unwrap_or_default()
    };
    errs.extend(nonneg(spec.parallelism.map(i64::from), "parallelism"));
    errs.extend(nonneg(spec.completions.map(i64::from), "completions"));
    errs.extend(nonneg(
        spec.active_deadline_seconds,
        "activeDeadlineSeconds",
    ));
    errs.extend(nonneg(spec.backoff_limit.map(i64::from), "backoffLimit"));
    errs.extend(nonneg(
        spec.ttl_seconds_after_finished.map(i64::from),
        "ttlSecondsAfterFinished",
    ));
    errs.extend(nonneg(
        spec.backoff_limit_per_index.map(i64::from),
        "backoffLimitPerIndex",
    ));
    if let Some(max_failed) = spec.max_failed_indexes {
        errs.extend(validate_nonnegative(
            max_failed.into(),
            &child(path, "maxFailedIndexes"),
        ));
        if spec.backoff_limit_per_index.is_none() {
            errs.push(FieldError::required(
                child(path, "backoffLimitPerIndex"),
                "when maxFailedIndexes is specified",
            ));
        }
    }
    if let Some(managed_by) = &spec.managed_by {
        let p = child(path, "managedBy");
        errs.extend(validate_domain_prefixed_path(managed_by, &p));
        if managed_by.len() > MAX_MANAGED_BY_LENGTH {
            errs.push(FieldError::too_long(p, MAX_MANAGED_BY_LENGTH));
        }
    }
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    if let Some(mode) = spec.completion_mode.as_deref() {
        if mode != "NonIndexed" && mode != "Indexed" {
            errs.push(FieldError::not_supported(
                child(path, "completionMode"),
                mode,
                &["NonIndexed", "Indexed"],
            ));
        }
        if indexed {
            errs.extend(validate_indexed_limits(spec, path));
        }
    }
    if !indexed {
        for (name, value) in [
            ("backoffLimitPerIndex", spec.backoff_limit_per_index),
            ("maxFailedIndexes", spec.max_failed_indexes),
        ] {
            if let Some(v) = value {
                errs.push(FieldError::invalid(
                    child(path, name),
                    v,
                    "requires indexed completion mode",
                ));
            }
        }
    }
    if spec.pod_failure_policy.is_some() {
        errs.extend(validate_pod_failure_policy(
            spec,
            &child(path, "podFailurePolicy"),
        ));
    }
    if let Some(policy) = &spec.success_policy {
        let p = child(path, "successPolicy");
        if indexed {
            errs.extend(validate_success_policy(spec, &policy.rules, &p));
        } else {
            errs.push(FieldError::invalid(
                p,
                json!(policy),
                "requires indexed completion mode",
            ));
        }
    }
    errs.extend(validate_pod_replacement_policy(
        spec,
        &child(path, "podReplacementPolicy"),
    ));
    let template_path = child(path, "template");
    errs.extend(validate_pod_template_spec(&spec.template, &template_path));
    let restart_path = child(&template_path, "spec.restartPolicy");
    match spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("")
    {
        "" | "Always" => errs.push(FieldError::required(
            restart_path,
            "valid values: \"OnFailure\", \"Never\"",
        )),
        "OnFailure" | "Never" if spec.pod_failure_policy.is_none() => {}
        "Never" => {}
        "OnFailure" => errs.push(FieldError::invalid(
            restart_path,
            "OnFailure",
            "only \"Never\" is supported when podFailurePolicy is specified",
        )),
        other => errs.push(FieldError::not_supported(
            restart_path,
            other,
            &["OnFailure", "Never"],
        )),
    }
    errs
}

fn validate_indexed_limits(spec: &JobSpec, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (parallelism_path, max_failed_path) =
        (child(path, "parallelism"), child(path, "maxFailedIndexes"));
    if spec.completions.is_none() {
        errs.push(FieldError::required(
            child(path, "completions"),
            "when completion mode is Indexed",
        ));
    }
    if let Some(p) = spec
        .parallelism
        .filter(|p| *p > MAX_PARALLELISM_FOR_INDEXED_JOB)
    {
        errs.push(FieldError::invalid(
            &parallelism_path,
            p,
            format!("must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB} when completion mode is Indexed"),
        ));
    }
    if let (Some(c), Some(m)) = (spec.completions, spec.max_failed_indexes)
        && m > c
    {
        errs.push(FieldError::invalid(
            &max_failed_path,
            m,
            "must be less than or equal to completions",
        ));
    }
    if let Some(m) = spec
        .max_failed_indexes
        .filter(|m| *m > MAX_FAILED_INDEXES_FOR_INDEXED_JOB)
    {
        errs.push(FieldError::invalid(
            &max_failed_path,
            m,
            format!("must be less than or equal to {MAX_FAILED_INDEXES_FOR_INDEXED_JOB}"),
        ));
    }
    if spec.completions.is_some_and(|c| c > COMPLETIONS_SOFT_LIMIT)
        && spec.backoff_limit_per_index.is_some()
    {
        let high = format!(
            "when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index"
        );
        if spec.max_failed_indexes.is_none() {
            errs.push(FieldError::required(
                &max_failed_path,
                format!("must be specified when completions is above {COMPLETIONS_SOFT_LIMIT}"),
            ));
        }
        if let Some(p) = spec
            .parallelism
            .filter(|p| *p > PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS)
        {
            errs.push(FieldError::invalid(
                &parallelism_path,
                p,
                format!(
                    "must be less than or equal to {PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS} {high}"
                ),
            ));
        }
        if let Some(m) = spec
            .max_failed_indexes
            .filter(|m| *m > MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS)
        {
            errs.push(FieldError::invalid(
                &max_failed_path,
                m,
                format!("must be less than or equal to {MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS} {high}"),
            ));
        }
    }
    errs
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn quoted(values: &[&str]) -> String {
    format!(
        "[{}]",
        values
            .iter()
            .map(|v| format!("\"{v}\""))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// An Invalid error without a value (upstream's `field.OmitValueType{}`).
fn invalid_omitted(path: &str, detail: &str) -> FieldError {
    FieldError {
        kind: FieldErrorKind::Invalid,
        field: path.to_string(),
        value: None,
        detail: detail.to_string(),
    }
}

fn validate_pod_failure_policy(spec: &JobSpec, path: &str) -> Vec<FieldError> {
    let rules = spec
        .pod_failure_policy
        .as_ref()
        .map(|p| p.rules.as_slice())
        .unwrap_or_default();
    let rules_path = child(path, "rules");
    let mut errs = Vec::new();
    if rules.len() > MAX_POD_FAILURE_POLICY_RULES {
        errs.push(FieldError::too_many(
            &rules_path,
            rules.len(),
            MAX_POD_FAILURE_POLICY_RULES,
        ));
    }
    let pod = spec.template.spec.as_ref();
    let containers: BTreeSet<&str> = pod
        .map(|p| {
            p.containers
                .iter()
                .chain(p.init_containers.iter().flatten())
                .map(|c| c.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    for (i, rule) in rules.iter().enumerate() {
        errs.extend(validate_pod_failure_policy_rule(
            spec,
            rule,
            &index(&rules_path, i),
            &containers,
        ));
    }
    errs
}

fn validate_pod_failure_policy_rule(
    spec: &JobSpec,
    rule: &PodFailurePolicyRule,
    path: &str,
    containers: &BTreeSet<&str>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let action_path = child(path, "action");
    match rule.action.as_str() {
        "" => errs.push(FieldError::required(
            action_path,
            format!("valid values: {}", quoted(POD_FAILURE_ACTIONS)),
        )),
        "FailIndex" if spec.backoff_limit_per_index.is_none() => errs.push(FieldError::invalid(
            action_path,
            "FailIndex",
            "requires the backoffLimitPerIndex to be set",
        )),
        a if !POD_FAILURE_ACTIONS.contains(&a) => errs.push(FieldError::not_supported(
            action_path,
            a,
            POD_FAILURE_ACTIONS,
        )),
        _ => {}
    }
    if let Some(on_exit) = &rule.on_exit_codes {
        errs.extend(validate_on_exit_codes(
            on_exit,
            &child(path, "onExitCodes"),
            containers,
        ));
    }
    let conditions = rule.on_pod_conditions.as_deref().unwrap_or_default();
    if !conditions.is_empty() {
        errs.extend(validate_on_pod_conditions(
            conditions,
            &child(path, "onPodConditions"),
        ));
    }
    match (rule.on_exit_codes.is_some(), conditions.is_empty()) {
        (true, false) => errs.push(invalid_omitted(
            path,
            "specifying both OnExitCodes and OnPodConditions is not supported",
        )),
        (false, true) => errs.push(invalid_omitted(
            path,
            "specifying one of OnExitCodes and OnPodConditions is required",
        )),
        _ => {}
    }
    errs
}

fn validate_on_pod_conditions(
    patterns: &[PodFailurePolicyOnPodConditionsPattern],
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if patterns.len() > MAX_ON_POD_CONDITIONS_PATTERNS {
        errs.push(FieldError::too_many(
            path,
            patterns.len(),
            MAX_ON_POD_CONDITIONS_PATTERNS,
        ));
    }
    for (j, pattern) in patterns.iter().enumerate() {
        let p = index(path, j);
        errs.extend(validate_qualified_name(&pattern.type_, &child(&p, "type")));
        let status_path = child(&p, "status");
        match pattern.status.as_str() {
            "" => errs.push(FieldError::required(
                status_path,
                format!("valid values: {}", quoted(CONDITION_STATUSES)),
            )),
            s if !CONDITION_STATUSES.contains(&s) => errs.push(FieldError::not_supported(
                status_path,
                s,
                CONDITION_STATUSES,
            )),
            _ => {}
        }
    }
    errs
}

fn validate_on_exit_codes(
    req: &PodFailurePolicyOnExitCodesRequirement,
    path: &str,
    containers: &BTreeSet<&str>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let operator_path = child(path, "operator");
    match req.operator.as_str() {
        "" => errs.push(FieldError::required(
            operator_path,
            format!("valid values: {}", quoted(EXIT_CODE_OPERATORS)),
        )),
        op if !EXIT_CODE_OPERATORS.contains(&op) => errs.push(FieldError::not_supported(
            operator_path,
            op,
            EXIT_CODE_OPERATORS,
        )),
        _ => {}
    }
    if let Some(name) = req
        .container_name
        .as_deref()
        .filter(|n| !containers.contains(n))
    {
        errs.push(FieldError::invalid(
            child(path, "containerName"),
            name,
            "must be one of the container or initContainer names in the pod template",
        ));
    }
    let values_path = child(path, "values");
    if req.values.is_empty() {
        errs.push(FieldError::invalid(
            &values_path,
            json!(req.values),
            "at least one value is required",
        ));
    } else if req.values.len() > MAX_ON_EXIT_CODES_VALUES {
        errs.push(FieldError::too_many(
            &values_path,
            req.values.len(),
            MAX_ON_EXIT_CODES_VALUES,
        ));
    }
    let mut seen = BTreeSet::new();
    for (j, v) in req.values.iter().enumerate() {
        let p = index(&values_path, j);
        if req.operator == "In" && *v == 0 {
            errs.push(FieldError::invalid(
                &p,
                *v,
                "must not be 0 for the In operator",
            ));
        }
        if !seen.insert(*v) {
            errs.push(FieldError::duplicate(&p, *v));
        }
    }
    if req.values.windows(2).any(|w| w[0] > w[1]) {
        errs.push(FieldError::invalid(
            values_path,
            json!(req.values),
            "must be ordered",
        ));
    }
    errs
}

fn validate_success_policy(
    spec: &JobSpec,
    rules: &[SuccessPolicyRule],
    path: &str,
) -> Vec<FieldError> {
    let rules_path = child(path, "rules");
    let mut errs = Vec::new();
    if rules.is_empty() {
        errs.push(FieldError::required(
            &rules_path,
            "at least one rules must be specified when the successPolicy is specified",
        ));
    }
    if rules.len() > MAX_SUCCESS_POLICY_RULES {
        errs.push(FieldError::too_many(
            &rules_path,
            rules.len(),
            MAX_SUCCESS_POLICY_RULES,
        ));
    }
    let completions = spec.completions.unwrap_or(0);
    for (i, rule) in rules.iter().enumerate() {
        let p = index(&rules_path, i);
        if rule.succeeded_count.is_none() && rule.succeeded_indexes.is_none() {
            errs.push(FieldError::required(
                &p,
                "at least one of succeededCount or succeededIndexes must be specified",
            ));
        }
        let mut total = 0;
        if let Some(indexes) = &rule.succeeded_indexes {
            let ip = child(&p, "succeededIndexes");
            if indexes.len() > MAX_SUCCEEDED_INDEXES_LENGTH {
                errs.push(FieldError::too_long(&ip, MAX_SUCCEEDED_INDEXES_LENGTH));
            }
            match indexes_total(indexes, completions) {
                Ok(t) => total = t,
                Err(e) => errs.push(FieldError::invalid(
                    ip,
                    indexes.as_str(),
                    format!("error parsing succeededIndexes: {e}"),
                )),
            }
        }
        if let Some(count) = rule.succeeded_count {
            let cp = child(&p, "succeededCount");
            errs.extend(validate_nonnegative(count.into(), &cp));
            if count > completions {
                errs.push(FieldError::invalid(
                    &cp,
                    count,
                    format!("must be less than or equal to {completions} (the number of specified completions)"),
                ));
            }
            if rule.succeeded_indexes.is_some() && count > total {
                errs.push(FieldError::invalid(
                    &cp,
                    count,
                    format!("must be less than or equal to {total} (the number of indexes in the specified succeededIndexes field)"),
                ));
            }
        }
    }
    errs
}

/// Upstream's validateIndexesFormat: `1,3-5,7`, increasing, below completions.
fn indexes_total(indexes: &str, completions: i32) -> Result<i32, String> {
    if indexes.is_empty() {
        return Ok(0);
    }
    let mut last: Option<i64> = None;
    let mut total = 0;
    for interval in indexes.split(',') {
        let parts: Vec<&str> = interval.split('-').collect();
        if parts.len() > 2 {
            return Err(format!(
                "the fragment {interval:?} violates the requirement that an index interval can have at most two parts separated by '-'"
            ));
        }
        let parse = |s: &str| -> Result<i64, String> {
            let v: i64 = s
                .parse()
                .map_err(|_| format!("cannot convert string to integer for index: {s:?}"))?;
            if v >= i64::from(completions) {
                return Err(format!("too large index: {s:?}"));
            }
            Ok(v)
        };
        let x = parse(parts[0])?;
        let y = match parts.get(1) {
            Some(p) => {
                let y = parse(p)?;
                if x >= y {
                    return Err(format!("non-increasing order, previous: {x}, current: {y}"));
                }
                y
            }
            None => x,
        };
        if let Some(prev) = last.filter(|prev| *prev >= x) {
            return Err(format!(
                "non-increasing order, previous: {prev}, current: {x}"
            ));
        }
        total += (y - x + 1) as i32;
        last = Some(y);
    }
    Ok(total)
}

fn validate_pod_replacement_policy(spec: &JobSpec, path: &str) -> Vec<FieldError> {
    match spec.pod_replacement_policy.as_deref() {
        Some(p) if spec.pod_failure_policy.is_some() && p != "Failed" => {
            vec![FieldError::not_supported(path, p, &["Failed"])]
        }
        Some(p) if !POD_REPLACEMENT_POLICIES.contains(&p) => {
            vec![FieldError::not_supported(path, p, POD_REPLACEMENT_POLICIES)]
        }
        _ => Vec::new(),
    }
}

fn validate_spec_update(
    spec: &JobSpec,
    old: &JobSpec,
    path: &str,
    opts: Options,
) -> Vec<FieldError> {
    let mut errs = validate_completions_update(spec, old, &child(path, "completions"));
    errs.extend(validate_immutable(
        &spec.selector,
        &old.selector,
        &child(path, "selector"),
    ));
    errs.extend(validate_template_update(spec, old, path, opts));
    errs.extend(validate_immutable(
        &spec.completion_mode,
        &old.completion_mode,
        &child(path, "completionMode"),
    ));
    errs.extend(validate_immutable(
        &spec.pod_failure_policy,
        &old.pod_failure_policy,
        &child(path, "podFailurePolicy"),
    ));
    errs.extend(validate_immutable(
        &spec.backoff_limit_per_index,
        &old.backoff_limit_per_index,
        &child(path, "backoffLimitPerIndex"),
    ));
    errs.extend(validate_immutable(
        &spec.managed_by,
        &old.managed_by,
        &child(path, "managedBy"),
    ));
    errs.extend(validate_immutable(
        &spec.success_policy,
        &old.success_policy,
        &child(path, "successPolicy"),
    ));
    errs
}

/// Completions are fixed, except that an Indexed Job may scale them in
/// tandem with parallelism (ElasticIndexedJob, GA).
fn validate_completions_update(spec: &JobSpec, old: &JobSpec, path: &str) -> Vec<FieldError> {
    if spec.completion_mode.as_deref() != Some("Indexed") {
        return validate_immutable(&spec.completions, &old.completions, path);
    }
    match spec.completions {
        Some(c) if spec.completions != old.completions && Some(c) != spec.parallelism => {
            vec![FieldError::invalid(
                path,
                c,
                "can only be modified in tandem with spec.parallelism",
            )]
        }
        _ => Vec::new(),
    }
}

fn validate_template_update(
    spec: &JobSpec,
    old: &JobSpec,
    path: &str,
    opts: Options,
) -> Vec<FieldError> {
    let mut old_template = old.template.clone();
    if opts.allow_mutable_scheduling_directives {
        allow_scheduling_changes(&spec.template, &mut old_template);
    }
    validate_immutable(&spec.template, &old_template, &child(path, "template"))
}

/// Copies onto the old template what a suspended, never-started Job may
/// change: node affinity, node selector, tolerations, scheduling gates,
/// labels and annotations.
fn allow_scheduling_changes(new: &PodTemplateSpec, old: &mut PodTemplateSpec) {
    let new_spec = new.spec.clone().unwrap_or_default();
    let old_spec = old.spec.get_or_insert_with(Default::default);
    old_spec.affinity = match (new_spec.affinity.as_ref(), old_spec.affinity.take()) {
        // Clearing is allowed when node affinity was all the old one had.
        (None, Some(old_affinity)) => {
            let rest = Affinity {
                node_affinity: None,
                ..old_affinity
            };
            (rest != Affinity::default()).then_some(rest)
        }
        (Some(new_affinity), Some(old_affinity)) => Some(Affinity {
            node_affinity: new_affinity.node_affinity.clone(),
            ..old_affinity
        }),
        (Some(new_affinity), None) => Some(Affinity {
            node_affinity: new_affinity.node_affinity.clone(),
            ..Default::default()
        }),
        (None, None) => None,
    };
    old_spec.node_selector = new_spec.node_selector;
    old_spec.tolerations = new_spec.tolerations;
    old_spec.scheduling_gates = new_spec.scheduling_gates;
    let new_meta = new.metadata.clone().unwrap_or_default();
    let old_meta = old.metadata.get_or_insert_with(Default::default);
    old_meta.annotations = new_meta.annotations;
    old_meta.labels = new_meta.labels;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::{fields, merged};
    use serde_json::{Value, from_value};

    const UID: &str = "0d3f6a4e-1111-2222-3333-444455556666";

    fn template() -> Value {
        json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}})
    }

    /// A Job as the store hands it to the strategy on create.
    fn job(spec: Value) -> Job {
        let mut j: Job = from_value(json!({
            "metadata": {"name": "pi", "namespace": "default", "uid": UID},
            "spec": merged(json!({"template": template()}), spec),
        }))
        .unwrap();
        JobStrategy.defaults(&mut j);
        JobStrategy.prepare_for_create(&mut j);
        j
    }

    #[test]
    fn defaults_are_upstreams() {
        let spec = job(json!({})).spec.unwrap();
        assert_eq!((spec.completions, spec.parallelism), (Some(1), Some(1)));
        assert_eq!(spec.backoff_limit, Some(6));
        assert_eq!(spec.completion_mode.as_deref(), Some("NonIndexed"));
        assert_eq!(spec.suspend, Some(false));
        assert_eq!(
            spec.pod_replacement_policy.as_deref(),
            Some("TerminatingOrFailed")
        );
        let spec = job(json!({"parallelism": 3})).spec.unwrap();
        assert_eq!((spec.completions, spec.parallelism), (None, Some(3)));
        let spec =
            job(json!({"completionMode": "Indexed", "completions": 4, "backoffLimitPerIndex": 1}))
                .spec
                .unwrap();
        assert_eq!(spec.backoff_limit, Some(i32::MAX));
    }

    #[test]
    fn job_labels_default_from_template() {
        let j = job(json!({"template": {"metadata": {"labels": {"app": "pi"}}}}));
        assert_eq!(j.metadata.labels.unwrap()["app"], "pi");
    }

    #[test]
    fn create_generates_selector_and_labels() {
        let j = job(json!({}));
        let spec = j.spec.as_ref().unwrap();
        let sel = spec
            .selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap();
        assert_eq!(sel.len(), 1);
        assert_eq!(sel[CONTROLLER_UID_LABEL], UID);
        let labels = template_labels(&spec.template).unwrap();
        for (k, v) in [
            (CONTROLLER_UID_LABEL, UID),
            (LEGACY_CONTROLLER_UID_LABEL, UID),
            (JOB_NAME_LABEL, "pi"),
            (LEGACY_JOB_NAME_LABEL, "pi"),
        ] {
            assert_eq!(labels[k], v, "{k}");
        }
        assert!(
            JobStrategy.validate(&j).is_empty(),
            "{:?}",
            JobStrategy.validate(&j)
        );
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            ("valid", json!({}), vec![]),
            (
                "restart always",
                json!({"template": {"spec": {"restartPolicy": "Always"}}}),
                vec!["spec.template.spec.restartPolicy"],
            ),
            (
                "negative parallelism",
                json!({"parallelism": -1}),
                vec!["spec.parallelism"],
            ),
            (
                "negative backoff",
                json!({"backoffLimit": -1}),
                vec!["spec.backoffLimit"],
            ),
            (
                "user label conflicts",
                json!({"template": {"metadata": {"labels": {"controller-uid": "other"}}}}),
                vec!["spec.template.metadata.labels[controller-uid]"],
            ),
            (
                "selector not generated",
                json!({"selector": {"matchLabels": {"app": "x"}}, "template": {"metadata": {"labels": {"app": "x"}}}}),
                vec!["spec.selector"],
            ),
            (
                "indexed needs completions",
                json!({"completionMode": "Indexed", "parallelism": 2}),
                vec!["spec.completions"],
            ),
            (
                "unknown mode",
                json!({"completionMode": "Sometimes"}),
                vec!["spec.completionMode"],
            ),
            (
                "per-index limit needs indexed",
                json!({"backoffLimitPerIndex": 1}),
                vec!["spec.backoffLimitPerIndex"],
            ),
            (
                "max failed without per-index",
                json!({"completionMode": "Indexed", "completions": 3, "maxFailedIndexes": 1}),
                vec!["spec.backoffLimitPerIndex"],
            ),
            (
                "managedBy",
                json!({"managedBy": "nodomain"}),
                vec!["spec.managedBy"],
            ),
            (
                "pod failure policy",
                json!({"podFailurePolicy": {"rules": [
                    {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3, 0, 1]}},
                    {"action": "Explode", "onPodConditions": [{"type": "DisruptionTarget"}]},
                ]}}),
                vec![
                    "spec.podFailurePolicy.rules[0].onExitCodes.values[1]",
                    "spec.podFailurePolicy.rules[0].onExitCodes.values",
                    "spec.podFailurePolicy.rules[1].action",
                ],
            ),
            (
                "pod failure policy needs Never",
                json!({"podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
                       "template": {"spec": {"restartPolicy": "OnFailure"}}}),
                vec!["spec.template.spec.restartPolicy"],
            ),
            (
                "success policy needs indexed",
                json!({"successPolicy": {"rules": [{"succeededCount": 1}]}}),
                vec!["spec.successPolicy"],
            ),
            (
                "success policy indexes",
                json!({"completionMode": "Indexed", "completions": 5,
                       "successPolicy": {"rules": [{"succeededIndexes": "0-2,1", "succeededCount": 9}]}}),
                vec![
                    "spec.successPolicy.rules[0].succeededIndexes",
                    "spec.successPolicy.rules[0].succeededCount",
                    "spec.successPolicy.rules[0].succeededCount",
                ],
            ),
            (
                "replacement policy",
                json!({"podReplacementPolicy": "Never"}),
                vec!["spec.podReplacementPolicy"],
            ),
        ];
        for (name, spec, want) in cases {
            let errs = JobStrategy.validate(&job(spec));
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }

    #[test]
    fn indexed_hostnames_must_be_labels() {
        let mut j: Job = from_value(json!({
            "metadata": {"name": "a".repeat(62), "namespace": "default", "uid": UID},
            "spec": {"completionMode": "Indexed", "completions": 10, "template": template()},
        }))
        .unwrap();
        JobStrategy.defaults(&mut j);
        JobStrategy.prepare_for_create(&mut j);
        assert_eq!(fields(&JobStrategy.validate(&j)), ["metadata.name"]);
    }

    #[test]
    fn manual_selector_is_kept() {
        let j = job(
            json!({"manualSelector": true, "selector": {"matchLabels": {"app": "x"}},
                           "template": {"metadata": {"labels": {"app": "x"}}}}),
        );
        let spec = j.spec.as_ref().unwrap();
        assert_eq!(
            spec.selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()
                .len(),
            1
        );
        assert!(
            !template_labels(&spec.template)
                .unwrap()
                .contains_key(CONTROLLER_UID_LABEL)
        );
        assert!(JobStrategy.validate(&j).is_empty());
        let j = job(
            json!({"manualSelector": true, "selector": {"matchLabels": {"app": "y"}},
                           "template": {"metadata": {"labels": {"app": "x"}}}}),
        );
        assert_eq!(
            fields(&JobStrategy.validate(&j)),
            ["spec.template.metadata.labels"]
        );
    }

    #[test]
    fn update_rules() {
        let old = job(json!({}));
        let mut new = old.clone();
        new.spec.as_mut().unwrap().parallelism = Some(4);
        new.spec.as_mut().unwrap().suspend = Some(true);
        assert!(JobStrategy.validate_update(&new, &old).is_empty());

        let mut new = old.clone();
        new.spec.as_mut().unwrap().completions = Some(2);
        assert_eq!(
            fields(&JobStrategy.validate_update(&new, &old)),
            ["spec.completions"]
        );

        let mut new = old.clone();
        let pod = new.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
        pod.node_selector = Some([("zone".to_string(), "a".to_string())].into());
        assert_eq!(
            fields(&JobStrategy.validate_update(&new, &old)),
            ["spec.template"]
        );

        // A suspended Job that never started may change scheduling directives.
        let mut suspended = old.clone();
        suspended.spec.as_mut().unwrap().suspend = Some(true);
        new.spec.as_mut().unwrap().suspend = Some(true);
        assert!(JobStrategy.validate_update(&new, &suspended).is_empty());
        // But not the containers.
        new.spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .image = Some("other".into());
        assert_eq!(
            fields(&JobStrategy.validate_update(&new, &suspended)),
            ["spec.template"]
        );
    }

    #[test]
    fn indexed_completions_scale_with_parallelism() {
        let old = job(json!({"completionMode": "Indexed", "completions": 3, "parallelism": 3}));
        let mut new = old.clone();
        let spec = new.spec.as_mut().unwrap();
        (spec.completions, spec.parallelism) = (Some(5), Some(5));
        assert!(JobStrategy.validate_update(&new, &old).is_empty());
        new.spec.as_mut().unwrap().parallelism = Some(4);
        assert_eq!(
            fields(&JobStrategy.validate_update(&new, &old)),
            ["spec.completions"]
        );
    }

    #[test]
    fn index_intervals() {
        assert_eq!(indexes_total("0,2-4,6", 7), Ok(5));
        assert!(indexes_total("3-1", 7).is_err());
        assert!(indexes_total("1,1", 7).is_err());
        assert!(indexes_total("7", 7).is_err());
        assert!(indexes_total("1-2-3", 7).is_err());
        assert!(indexes_total("x", 7).is_err());
    }
}
