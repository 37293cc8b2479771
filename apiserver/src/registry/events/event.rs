//! events.k8s.io/v1 Event (upstream `pkg/apis/core/validation/events.go`).

use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{
    invalid_each, is_dns1123_subdomain, validate_immutable, validate_qualified_name,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

const REPORTING_INSTANCE_LENGTH_LIMIT: usize = 128;
const ACTION_LENGTH_LIMIT: usize = 128;
const REASON_LENGTH_LIMIT: usize = 128;
const NOTE_LENGTH_LIMIT: usize = 1024;

pub struct EventStrategy;

impl Strategy for EventStrategy {
    type Object = Event;

    fn validate(&self, obj: &Event) -> Vec<FieldError> {
        let mut errs = validate_legacy(obj);
        errs.extend(validate_series(obj));
        if obj.event_time.is_none() {
            errs.push(FieldError::required("eventTime", ""));
        }
        let kind = obj.type_.as_deref().unwrap_or("");
        if kind != "Normal" && kind != "Warning" {
            errs.push(FieldError::invalid(
                "type",
                "",
                format!("has invalid value: {kind}"),
            ));
        }
        for (unset, path) in [
            (obj.deprecated_first_timestamp.is_none(), "firstTimestamp"),
            (obj.deprecated_last_timestamp.is_none(), "lastTimestamp"),
            (obj.deprecated_count.unwrap_or(0) == 0, "count"),
        ] {
            if !unset {
                errs.push(FieldError::invalid(path, "", "needs to be unset"));
            }
        }
        let source = obj.deprecated_source.clone().unwrap_or_default();
        if !source.component.unwrap_or_default().is_empty()
            || !source.host.unwrap_or_default().is_empty()
        {
            errs.push(FieldError::invalid("source", "", "needs to be unset"));
        }
        errs
    }

    fn validate_update(&self, obj: &Event, old: &Event) -> Vec<FieldError> {
        let mut errs = validate_legacy(obj);
        if obj.series != old.series {
            errs.extend(validate_series(obj));
        }
        errs.extend(validate_immutable(
            &obj.regarding,
            &old.regarding,
            "involvedObject",
        ));
        errs.extend(validate_immutable(&obj.reason, &old.reason, "reason"));
        errs.extend(validate_immutable(&obj.note, &old.note, "message"));
        errs.extend(validate_immutable(
            &obj.deprecated_source,
            &old.deprecated_source,
            "source",
        ));
        errs.extend(validate_immutable(
            &obj.deprecated_first_timestamp,
            &old.deprecated_first_timestamp,
            "firstTimestamp",
        ));
        errs.extend(validate_immutable(
            &obj.deprecated_last_timestamp,
            &old.deprecated_last_timestamp,
            "lastTimestamp",
        ));
        errs.extend(validate_immutable(
            &obj.deprecated_count,
            &old.deprecated_count,
            "count",
        ));
        errs.extend(validate_immutable(&obj.type_, &old.type_, "type"));
        // Clients that truncate to microseconds must not trip over sub-microsecond changes.
        if micros(&obj.event_time) != micros(&old.event_time) {
            errs.extend(validate_immutable(
                &obj.event_time,
                &old.event_time,
                "eventTime",
            ));
        }
        errs.extend(validate_immutable(&obj.action, &old.action, "action"));
        errs.extend(validate_immutable(&obj.related, &old.related, "related"));
        errs.extend(validate_immutable(
            &obj.reporting_controller,
            &old.reporting_controller,
            "reportingController",
        ));
        errs.extend(validate_immutable(
            &obj.reporting_instance,
            &old.reporting_instance,
            "reportingInstance",
        ));
        errs
    }
}

fn micros(t: &Option<MicroTime>) -> Option<i128> {
    t.as_ref().map(|t| t.0.as_microsecond().into())
}

/// Upstream's legacyValidateEvent: what every Event must satisfy, whatever
/// API version wrote it. Events with an eventTime are "new" events.
fn validate_legacy(e: &Event) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let namespace = e.metadata.namespace.as_deref().unwrap_or("");
    let involved_namespace = e
        .regarding
        .as_ref()
        .and_then(|r| r.namespace.as_deref())
        .unwrap_or("");
    let mismatch = || {
        FieldError::invalid(
            "involvedObject.namespace",
            involved_namespace,
            "does not match event.namespace",
        )
    };
    if e.event_time.is_none() {
        let ok = if involved_namespace.is_empty() {
            namespace.is_empty() || namespace == "default"
        } else {
            namespace == involved_namespace
        };
        if !ok {
            errs.push(mismatch());
        }
    } else {
        if involved_namespace.is_empty() && namespace != "default" && namespace != "kube-system" {
            errs.push(mismatch());
        }
        let controller = e.reporting_controller.as_deref().unwrap_or("");
        if controller.is_empty() {
            errs.push(FieldError::required("reportingController", ""));
        }
        errs.extend(validate_qualified_name(controller, "reportingController"));
        let instance = e.reporting_instance.as_deref().unwrap_or("");
        for (value, path, limit) in [
            (
                instance,
                "reportingInstance",
                REPORTING_INSTANCE_LENGTH_LIMIT,
            ),
            (
                e.action.as_deref().unwrap_or(""),
                "action",
                ACTION_LENGTH_LIMIT,
            ),
            (
                e.reason.as_deref().unwrap_or(""),
                "reason",
                REASON_LENGTH_LIMIT,
            ),
        ] {
            if value.is_empty() {
                errs.push(FieldError::required(path, ""));
            }
            if value.len() > limit {
                errs.push(FieldError::invalid(
                    path,
                    "",
                    format!("can have at most {limit} characters"),
                ));
            }
        }
        if e.note.as_deref().unwrap_or("").len() > NOTE_LENGTH_LIMIT {
            errs.push(FieldError::invalid(
                "message",
                "",
                format!("can have at most {NOTE_LENGTH_LIMIT} characters"),
            ));
        }
    }
    errs.extend(invalid_each(
        "namespace",
        namespace,
        is_dns1123_subdomain(namespace),
    ));
    errs
}

fn validate_series(e: &Event) -> Vec<FieldError> {
    let Some(series) = &e.series else {
        return Vec::new();
    };
    if series.count < 2 {
        return vec![FieldError::invalid(
            "series.count",
            "",
            "should be at least 2",
        )];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fixtures::{fields, merged};
    use serde_json::{Value, from_value, json};

    fn event(patch: Value) -> Event {
        from_value(merged(
            json!({
                "metadata": {"name": "web.17a", "namespace": "default"},
                "eventTime": "2024-05-01T10:00:00.123456Z",
                "reportingController": "example.com/controller",
                "reportingInstance": "controller-1",
                "action": "Scale",
                "reason": "ScaledUp",
                "type": "Normal",
                "note": "scaled to 3",
                "regarding": {"kind": "Deployment", "name": "web", "namespace": "default"},
            }),
            patch,
        ))
        .unwrap()
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            ("valid", json!({}), vec![]),
            (
                "series",
                json!({"series": {"count": 2, "lastObservedTime": "2024-05-01T10:00:01.000000Z"}}),
                vec![],
            ),
            (
                "no event time",
                json!({"eventTime": null}),
                vec!["eventTime"],
            ),
            (
                "no controller",
                json!({"reportingController": null}),
                vec!["reportingController"; 3],
            ),
            (
                "no instance",
                json!({"reportingInstance": ""}),
                vec!["reportingInstance"],
            ),
            ("no action", json!({"action": null}), vec!["action"]),
            ("no reason", json!({"reason": null}), vec!["reason"]),
            (
                "long note",
                json!({"note": "x".repeat(1025)}),
                vec!["message"],
            ),
            ("type", json!({"type": "Info"}), vec!["type"]),
            (
                "deprecated fields",
                json!({"deprecatedCount": 3, "deprecatedSource": {"component": "kubelet"}}),
                vec!["count", "source"],
            ),
            (
                "namespace mismatch",
                json!({"metadata": {"namespace": "other"}, "regarding": {"namespace": ""}}),
                vec!["involvedObject.namespace"],
            ),
            (
                "short series",
                json!({"series": {"count": 1, "lastObservedTime": "2024-05-01T10:00:01.000000Z"}}),
                vec!["series.count"],
            ),
        ];
        for (name, patch, want) in cases {
            let errs = EventStrategy.validate(&event(patch));
            assert_eq!(fields(&errs), want, "{name}: {errs:?}");
        }
    }

    #[test]
    fn update_keeps_the_record() {
        let old = event(json!({}));
        let series =
            json!({"series": {"count": 2, "lastObservedTime": "2024-05-01T10:00:05.000000Z"}});
        assert!(
            EventStrategy
                .validate_update(&event(series), &old)
                .is_empty()
        );
        let new = event(json!({"note": "changed", "reason": "Other", "regarding": {"name": "db"}}));
        assert_eq!(
            fields(&EventStrategy.validate_update(&new, &old)),
            ["involvedObject", "reason", "message"]
        );
    }
}
