//! batch/v1 CronJob (upstream `pkg/registry/batch/cronjob/strategy.go`).
//! Schedules are checked like robfig/cron's ParseStandard, the parser the
//! CronJob controller uses.

use super::job::validate_job_spec_common;
use crate::error::FieldError;
use crate::registry::core::pod::default_pod_template_spec;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{child, max_len_error, validate_nonnegative};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobTemplateSpec};
use serde_json::json;

/// The controller appends an 11-character `-<timestamp>` to Job names,
/// which must stay within 63 characters.
const MAX_NAME_LENGTH: usize = 63 - 11;

pub struct CronJobStrategy;

impl Strategy for CronJobStrategy {
    type Object = CronJob;

    fn defaults(&self, obj: &mut CronJob) {
        let spec = obj.spec.get_or_insert_with(Default::default);
        spec.concurrency_policy
            .get_or_insert_with(|| "Allow".into());
        spec.suspend.get_or_insert(false);
        spec.successful_jobs_history_limit.get_or_insert(3);
        spec.failed_jobs_history_limit.get_or_insert(1);
        // Only the pod template is defaulted; the Job spec keeps its nils.
        let job = spec.job_template.spec.get_or_insert_with(Default::default);
        default_pod_template_spec(&mut job.template);
    }

    fn prepare_for_create(&self, obj: &mut CronJob) {
        obj.status = None;
    }

    fn validate(&self, obj: &CronJob) -> Vec<FieldError> {
        let mut errs = validate_spec(&spec_of(obj), None, "spec");
        let name = obj.metadata.name.as_deref().unwrap_or("");
        if name.len() > MAX_NAME_LENGTH {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                max_len_error(MAX_NAME_LENGTH),
            ));
        }
        errs
    }

    /// The name length limit is not rechecked, so older long names stay updatable.
    fn validate_update(&self, obj: &CronJob, old: &CronJob) -> Vec<FieldError> {
        validate_spec(&spec_of(obj), Some(&spec_of(old)), "spec")
    }
}

fn spec_of(obj: &CronJob) -> CronJobSpec {
    obj.spec.clone().unwrap_or_default()
}

fn validate_spec(spec: &CronJobSpec, old: Option<&CronJobSpec>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let schedule_path = child(path, "schedule");
    if spec.schedule.is_empty() {
        errs.push(FieldError::required(&schedule_path, ""));
    } else {
        // TZ= in the schedule is only tolerated where it was stored before.
        let allow_tz = old.is_some_and(|o| o.schedule.contains("TZ"));
        errs.extend(validate_schedule(
            &spec.schedule,
            allow_tz,
            spec.time_zone.is_some(),
            &schedule_path,
        ));
    }
    if let Some(d) = spec.starting_deadline_seconds {
        errs.extend(validate_nonnegative(
            d,
            &child(path, "startingDeadlineSeconds"),
        ));
    }
    if old.is_none_or(|o| o.time_zone != spec.time_zone) {
        errs.extend(validate_time_zone(
            spec.time_zone.as_deref(),
            &child(path, "timeZone"),
        ));
    }
    let policy_path = child(path, "concurrencyPolicy");
    match spec.concurrency_policy.as_deref().unwrap_or("") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required(policy_path, "")),
        other => errs.push(FieldError::not_supported(
            policy_path,
            other,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    errs.extend(validate_job_template(
        &spec.job_template,
        &child(path, "jobTemplate"),
    ));
    for (name, limit) in [
        (
            "successfulJobsHistoryLimit",
            spec.successful_jobs_history_limit,
        ),
        ("failedJobsHistoryLimit", spec.failed_jobs_history_limit),
    ] {
        if let Some(limit) = limit {
            errs.extend(validate_nonnegative(limit.into(), &child(path, name)));
        }
    }
    errs
}

/// Jobs created from the template always get a generated selector.
fn validate_job_template(template: &JobTemplateSpec, path: &str) -> Vec<FieldError> {
    let spec = template.spec.clone().unwrap_or_default();
    let spec_path = child(path, "spec");
    let mut errs = validate_job_spec_common(&spec, &spec_path);
    if let Some(sel) = &spec.selector {
        errs.push(FieldError::invalid(
            child(&spec_path, "selector"),
            json!(sel),
            "`selector` will be auto-generated",
        ));
    }
    if spec.manual_selector == Some(true) {
        errs.push(FieldError::not_supported(
            child(&spec_path, "manualSelector"),
            true,
            &["nil", "false"],
        ));
    }
    errs
}

fn validate_schedule(
    schedule: &str,
    allow_tz: bool,
    has_time_zone: bool,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Err(e) = parse_schedule(schedule) {
        errs.push(FieldError::invalid(path, schedule, e));
    }
    if schedule.contains("TZ") {
        if !allow_tz {
            errs.push(FieldError::invalid(
                path,
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        } else if has_time_zone {
            errs.push(FieldError::invalid(
                path,
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        }
    }
    errs
}

fn validate_time_zone(tz: Option<&str>, path: &str) -> Vec<FieldError> {
    let Some(tz) = tz else { return Vec::new() };
    if tz.is_empty() {
        return vec![FieldError::invalid(
            path,
            tz,
            "timeZone must be nil or non-empty string",
        )];
    }
    // IANA naming rules, with digits and '+' tolerated for legacy names.
    let part_ok = |p: &str| {
        p != "."
            && p != ".."
            && !p.starts_with('-')
            && (1..=14).contains(&p.len())
            && p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-_+".contains(&c))
    };
    if !tz.split('/').all(part_ok) {
        return vec![FieldError::invalid(
            path,
            tz,
            format!("unknown time zone {tz}"),
        )];
    }
    let mut errs = Vec::new();
    if tz.eq_ignore_ascii_case("Local") {
        errs.push(FieldError::invalid(
            path,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    if load_location(tz).is_err() {
        errs.push(FieldError::invalid(
            path,
            tz,
            format!("unknown time zone {tz}"),
        ));
    }
    errs
}

/// Go's time.LoadLocation, against the system's IANA database
/// ("UTC" and "Local" are built in).
fn load_location(tz: &str) -> Result<(), String> {
    if tz == "UTC" || tz == "Local" {
        return Ok(());
    }
    jiff::tz::db()
        .get(tz)
        .map(|_| ())
        .map_err(|_| format!("unknown time zone {tz}"))
}

/// A cron field's allowed range and names.
struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const FIELDS: [Bounds; 5] = [
    Bounds {
        min: 0,
        max: 59,
        names: &[],
    },
    Bounds {
        min: 0,
        max: 23,
        names: &[],
    },
    Bounds {
        min: 1,
        max: 31,
        names: &[],
    },
    Bounds {
        min: 1,
        max: 12,
        names: &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ],
    },
    Bounds {
        min: 0,
        max: 6,
        names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    },
];

/// robfig/cron v3's ParseStandard, reporting its error messages.
fn parse_schedule(spec: &str) -> Result<(), String> {
    let mut spec = spec.trim();
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let (head, rest) = spec.split_once(' ').unwrap_or((spec, ""));
        let (_, tz) = head.split_once('=').unwrap_or_default();
        load_location(tz).map_err(|e| format!("provided bad location {tz}: {e}"))?;
        spec = rest.trim();
    }
    if spec.starts_with('@') {
        return parse_descriptor(spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    for (field, bounds) in fields.iter().zip(&FIELDS) {
        for expr in field.split(',').filter(|e| !e.is_empty()) {
            parse_range(expr, bounds)?;
        }
    }
    Ok(())
}

fn parse_descriptor(spec: &str) -> Result<(), String> {
    match spec {
        "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly" => {
            Ok(())
        }
        _ => match spec.strip_prefix("@every ") {
            Some(d) => {
                parse_go_duration(d).map_err(|e| format!("failed to parse duration {spec}: {e}"))
            }
            None => Err(format!("unrecognized descriptor: {spec}")),
        },
    }
}

fn parse_range(expr: &str, b: &Bounds) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let (start, mut end) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        (b.min, b.max)
    } else {
        let start = parse_int_or_name(low_and_high[0], b)?;
        match low_and_high.len() {
            1 => (start, start),
            2 => (start, parse_int_or_name(low_and_high[1], b)?),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            // "N/step" means "N-max/step".
            if low_and_high.len() == 1 {
                end = b.max;
            }
            parse_uint(range_and_step[1])?
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

fn parse_int_or_name(expr: &str, b: &Bounds) -> Result<u32, String> {
    match b.names.iter().position(|n| n.eq_ignore_ascii_case(expr)) {
        Some(i) => Ok(b.min + i as u32),
        None => parse_uint(expr),
    }
}

fn parse_uint(expr: &str) -> Result<u32, String> {
    let n: i64 = expr.parse().map_err(|_| {
        format!("failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: invalid syntax")
    })?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    u32::try_from(n).map_err(|_| format!("failed to parse int from {expr}: value out of range"))
}

/// Checks the syntax of Go's time.ParseDuration (`1h30m`, `1.5s`, `300ms`).
fn parse_go_duration(s: &str) -> Result<(), String> {
    const UNITS: &[&str] = &["ns", "us", "µs", "μs", "ms", "s", "m", "h"];
    let invalid = || format!("time: invalid duration {s:?}");
    let mut rest = s.strip_prefix(['+', '-']).unwrap_or(s);
    if rest == "0" {
        return Ok(());
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let mut num_len = int_len;
        let mut frac_len = 0;
        if rest[num_len..].starts_with('.') {
            frac_len = rest[num_len + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            num_len += 1 + frac_len;
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {s:?}"));
        }
        if !UNITS.contains(&unit) {
            return Err(format!("time: unknown unit {unit:?} in duration {s:?}"));
        }
        rest = &rest[unit_len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::{fields, merged};
    use serde_json::{Value, from_value};

    fn cron_job(spec: Value) -> CronJob {
        let base = json!({
            "schedule": "*/5 * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure",
                "containers": [{"name": "c", "image": "busybox"}],
            }}}},
        });
        let mut c: CronJob =
            from_value(json!({"metadata": {"name": "nightly", "namespace": "default"}, "spec": merged(base, spec)}))
                .unwrap();
        CronJobStrategy.defaults(&mut c);
        c
    }

    #[test]
    fn defaults_are_upstreams() {
        let spec = cron_job(json!({})).spec.unwrap();
        assert_eq!(spec.concurrency_policy.as_deref(), Some("Allow"));
        assert_eq!(spec.suspend, Some(false));
        assert_eq!(spec.successful_jobs_history_limit, Some(3));
        assert_eq!(spec.failed_jobs_history_limit, Some(1));
        assert_eq!(spec.job_template.spec.unwrap().parallelism, None);
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            ("valid", json!({}), vec![]),
            ("descriptor", json!({"schedule": "@hourly"}), vec![]),
            ("every", json!({"schedule": "@every 1h30m"}), vec![]),
            (
                "names and lists",
                json!({"schedule": "0 9-17/2 * jan-mar MON,fri"}),
                vec![],
            ),
            ("utc", json!({"timeZone": "UTC"}), vec![]),
            (
                "empty schedule",
                json!({"schedule": ""}),
                vec!["spec.schedule"],
            ),
            (
                "four fields",
                json!({"schedule": "* * * *"}),
                vec!["spec.schedule"],
            ),
            (
                "minute 60",
                json!({"schedule": "60 * * * *"}),
                vec!["spec.schedule"],
            ),
            (
                "bad step",
                json!({"schedule": "*/0 * * * *"}),
                vec!["spec.schedule"],
            ),
            (
                "bad word",
                json!({"schedule": "* * * * funday"}),
                vec!["spec.schedule"],
            ),
            (
                "tz in schedule",
                json!({"schedule": "TZ=UTC 0 * * * *"}),
                vec!["spec.schedule"],
            ),
            (
                "unknown zone",
                json!({"timeZone": "Mars/Olympus"}),
                vec!["spec.timeZone"],
            ),
            (
                "local zone",
                json!({"timeZone": "Local"}),
                vec!["spec.timeZone"],
            ),
            ("empty zone", json!({"timeZone": ""}), vec!["spec.timeZone"]),
            (
                "policy",
                json!({"concurrencyPolicy": "Sometimes"}),
                vec!["spec.concurrencyPolicy"],
            ),
            (
                "deadline",
                json!({"startingDeadlineSeconds": -1}),
                vec!["spec.startingDeadlineSeconds"],
            ),
            (
                "history",
                json!({"failedJobsHistoryLimit": -1}),
                vec!["spec.failedJobsHistoryLimit"],
            ),
            (
                "selector given",
                json!({"jobTemplate": {"spec": {"selector": {"matchLabels": {"a": "b"}}}}}),
                vec!["spec.jobTemplate.spec.selector"],
            ),
            (
                "restart always",
                json!({"jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Always"}}}}}),
                vec!["spec.jobTemplate.spec.template.spec.restartPolicy"],
            ),
        ];
        for (name, spec, want) in cases {
            let errs = CronJobStrategy.validate(&cron_job(spec));
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }

    #[test]
    fn iana_zones_come_from_the_system_database() {
        // Like Go's time.LoadLocation without embedded tzdata.
        if std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
            assert!(
                CronJobStrategy
                    .validate(&cron_job(json!({"timeZone": "Europe/Berlin"})))
                    .is_empty()
            );
        }
    }

    #[test]
    fn name_limit_only_on_create() {
        let mut c = cron_job(json!({}));
        c.metadata.name = Some("x".repeat(53));
        assert_eq!(fields(&CronJobStrategy.validate(&c)), ["metadata.name"]);
        assert!(CronJobStrategy.validate_update(&c, &c.clone()).is_empty());
    }

    #[test]
    fn stored_tz_schedule_stays_updatable() {
        let old = cron_job(json!({"schedule": "CRON_TZ=UTC 0 * * * *"}));
        assert!(
            CronJobStrategy
                .validate_update(&old, &old.clone())
                .is_empty()
        );
        let new = cron_job(json!({"schedule": "CRON_TZ=UTC 0 * * * *", "timeZone": "UTC"}));
        assert_eq!(
            fields(&CronJobStrategy.validate_update(&new, &old)),
            ["spec.schedule"]
        );
    }

    #[test]
    fn schedule_messages_are_robfigs() {
        let cases = [
            ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
            ("61 * * * *", "end of range (61) above maximum (59): 61"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
            ("@often", "unrecognized descriptor: @often"),
        ];
        for (s, want) in cases {
            assert_eq!(parse_schedule(s), Err(want.to_string()), "{s}");
        }
        assert!(
            parse_schedule("@every 1x")
                .unwrap_err()
                .starts_with("failed to parse duration @every 1x")
        );
    }
}
