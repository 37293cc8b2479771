//! events.k8s.io/v1 Events are stored as core/v1 Events, as upstream does
//! (pkg/apis/events/v1/conversion.go), so `kubectl get events` sees what
//! components record through either API.

use super::Codec;
use serde_json::{Map, Value, json};

pub static CODEC: Codec = Codec {
    to_storage,
    from_storage,
};

/// (events.k8s.io field, core/v1 field) pairs that differ only in name.
const RENAMED: [(&str, &str); 7] = [
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(obj: Value, api_version: &str, to_core: bool) -> Value {
    let Value::Object(mut m) = obj else {
        return obj;
    };
    let mut out = Map::new();
    for (k, v) in std::mem::take(&mut m) {
        let name = RENAMED
            .iter()
            .find(|(ev, core)| if to_core { ev == &k } else { core == &k })
            .map(|(ev, core)| if to_core { *core } else { *ev })
            .unwrap_or(&k)
            .to_string();
        out.insert(name, v);
    }
    out.insert("apiVersion".into(), json!(api_version));
    Value::Object(out)
}

fn to_storage(obj: Value) -> Value {
    rename(obj, "v1", true)
}

fn from_storage(obj: Value) -> Value {
    rename(obj, "events.k8s.io/v1", false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_core_form() {
        let ev = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "hello", "reason": "Scheduled",
            "reportingController": "default-scheduler", "eventTime": "2024-01-01T00:00:00.000000Z",
        });
        let core = to_storage(ev.clone());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["reportingComponent"], "default-scheduler");
        assert_eq!(from_storage(core), ev);
    }
}
