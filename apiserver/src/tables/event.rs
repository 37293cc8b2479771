//! Events, core/v1 and events.k8s.io/v1. Upstream serves both from one
//! storage of internal `core.Event`s, so both get the core printer; the
//! events.k8s.io field names are mapped as the v1 conversion does.

use serde_json::Value;

use super::format::translate_timestamp_since;
use super::{Column, Ctx, Printer, Row, col, get, int_at, opt_str, s, str_at, wide};

pub(super) static EVENTS: Printer = Printer {
    columns: &[
        col(
            "Last Seen",
            "string",
            "The time at which the most recent occurrence of this event was recorded.",
        ),
        col(
            "Type",
            "string",
            "Type of this event (Normal, Warning), new types could be added in the future",
        ),
        col(
            "Reason",
            "string",
            "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
        ),
        col("Object", "string", "The object that this event is about."),
        wide(
            "Subobject",
            "string",
            "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].",
        ),
        wide("Source", "string", "The component reporting this event."),
        col(
            "Message",
            "string",
            "A human-readable description of the status of this operation.",
        ),
        wide(
            "First Seen",
            "string",
            "The time at which the event was first recorded.",
        ),
        wide(
            "Count",
            "string",
            "The number of times this event has occurred.",
        ),
        Column {
            name: "Name",
            ty: "string",
            format: "name",
            description: super::NAME_DESC,
            priority: 1,
        },
    ],
    row: event_row,
};

/// JSON field names of one event API version.
struct Fields {
    regarding: &'static str,
    message: &'static str,
    source: &'static str,
    first: &'static str,
    last: &'static str,
    count: &'static str,
    reporting_controller: &'static str,
}

const CORE_V1: Fields = Fields {
    regarding: "involvedObject",
    message: "message",
    source: "source",
    first: "firstTimestamp",
    last: "lastTimestamp",
    count: "count",
    reporting_controller: "reportingComponent",
};

const EVENTS_V1: Fields = Fields {
    regarding: "regarding",
    message: "note",
    source: "deprecatedSource",
    first: "deprecatedFirstTimestamp",
    last: "deprecatedLastTimestamp",
    count: "deprecatedCount",
    reporting_controller: "reportingController",
};

fn event_row(obj: &Value, ctx: &Ctx) -> Row {
    let f = if str_at(obj, &["apiVersion"]).starts_with("events.k8s.io/") {
        &EVENTS_V1
    } else {
        &CORE_V1
    };
    let since = |ts: Option<&str>| translate_timestamp_since(ts, ctx.now);

    let first_seen = match opt_str(obj, &[f.first]).filter(|t| !t.is_empty()) {
        Some(t) => since(Some(t)),
        None => since(opt_str(obj, &["eventTime"])),
    };
    let mut last_seen = match opt_str(obj, &[f.last]).filter(|t| !t.is_empty()) {
        Some(t) => since(Some(t)),
        None => first_seen.clone(),
    };
    let mut count = int_at(obj, &[f.count]).unwrap_or(0);
    if let Some(series) = get(obj, &["series"]) {
        last_seen = since(opt_str(series, &["lastObservedTime"]));
        count = int_at(series, &["count"]).unwrap_or(0);
    } else if count == 0 {
        // Singleton events don't have a count set in the new API.
        count = 1;
    }

    let kind = str_at(obj, &[f.regarding, "kind"]).to_lowercase();
    let regarding_name = str_at(obj, &[f.regarding, "name"]);
    let target = if regarding_name.is_empty() {
        kind
    } else {
        format!("{kind}/{regarding_name}")
    };

    vec![
        s(last_seen),
        s(str_at(obj, &["type"])),
        s(str_at(obj, &["reason"])),
        s(target),
        s(str_at(obj, &[f.regarding, "fieldPath"])),
        s(event_source(obj, f)),
        s(str_at(obj, &[f.message]).trim()),
        s(first_seen),
        Value::from(count),
        s(super::name(obj)),
    ]
    .into()
}

/// Upstream `formatEventSource`: "component, host", falling back to the
/// reporting controller and instance.
fn event_source(obj: &Value, f: &Fields) -> String {
    let first_non_empty = |a: &'static str, b: &'static str| {
        let v = str_at(obj, &[f.source, a]);
        if v.is_empty() { str_at(obj, &[b]) } else { v }
    };
    let component = first_non_empty("component", f.reporting_controller);
    let instance = first_non_empty("host", "reportingInstance");
    if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tables::testutil::check;

    const COLS: [&str; 10] = [
        "Last Seen",
        "Type",
        "Reason",
        "Object",
        "Subobject",
        "Source",
        "Message",
        "First Seen",
        "Count",
        "Name",
    ];

    #[test]
    fn core_events() {
        let ev = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "web-1.17c0", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{nginx}"},
            "reason": "Pulled", "type": "Normal", "message": "Container image pulled \n",
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": "2024-05-01T09:00:00Z", "lastTimestamp": "2024-05-01T11:54:50Z", "count": 4
        });
        check(
            "",
            "events",
            ev,
            &COLS,
            json!([
                "5m10s",
                "Normal",
                "Pulled",
                "pod/web-1",
                "spec.containers{nginx}",
                "kubelet, n1",
                "Container image pulled",
                "3h",
                4,
                "web-1.17c0"
            ]),
        );

        // New-style event written through core/v1: eventTime, series, reporting*.
        let ev = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "e2"},
            "involvedObject": {"kind": "Node"},
            "reason": "Scheduled", "type": "Normal", "message": "m",
            "eventTime": "2024-05-01T11:00:00.000000Z",
            "series": {"count": 7, "lastObservedTime": "2024-05-01T11:58:00.123456Z"},
            "reportingComponent": "default-scheduler", "reportingInstance": "sched-1"
        });
        check(
            "",
            "events",
            ev,
            &COLS,
            json!([
                "119s",
                "Normal",
                "Scheduled",
                "node",
                "",
                "default-scheduler, sched-1",
                "m",
                "60m",
                7,
                "e2"
            ]),
        );

        let ev = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e3"},
                        "involvedObject": {"kind": "Pod", "name": "x"}});
        check(
            "",
            "events",
            ev,
            &COLS,
            json!([
                "<unknown>",
                "",
                "",
                "pod/x",
                "",
                "",
                "",
                "<unknown>",
                1,
                "e3"
            ]),
        );
    }

    #[test]
    fn events_k8s_io_events() {
        let ev = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "default"},
            "regarding": {"kind": "Deployment", "name": "web"},
            "reason": "ScalingReplicaSet", "type": "Normal", "note": "Scaled up replica set web-1 to 3",
            "eventTime": "2024-05-01T11:54:50.000000Z",
            "reportingController": "deployment-controller", "reportingInstance": "",
            "deprecatedCount": 2, "deprecatedLastTimestamp": "2024-05-01T11:58:00Z"
        });
        check(
            "events.k8s.io",
            "events",
            ev,
            &COLS,
            json!([
                "2m",
                "Normal",
                "ScalingReplicaSet",
                "deployment/web",
                "",
                "deployment-controller",
                "Scaled up replica set web-1 to 3",
                "5m10s",
                2,
                "web.1"
            ]),
        );
    }
}
