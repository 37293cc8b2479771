//! Events in core/v1 (pkg/registry/core/event/strategy.go). Only upstream's
//! legacy checks apply to this version, on create and on update alike.

use crate::error::FieldError;
use crate::registry::strategy::Strategy;
use crate::registry::validation::{is_dns1123_subdomain, validate_qualified_name};
use k8s_openapi::api::core::v1::Event;

const REPORTING_INSTANCE_LIMIT: usize = 128;
const ACTION_LIMIT: usize = 128;
const REASON_LIMIT: usize = 128;
const NOTE_LIMIT: usize = 1024;

pub struct EventStrategy;

impl Strategy for EventStrategy {
    type Object = Event;

    fn validate(&self, ev: &Event) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let ns = ev.metadata.namespace.as_deref().unwrap_or("");
        let involved_ns = ev.involved_object.namespace.as_deref().unwrap_or("");
        let mismatch = || {
            FieldError::invalid(
                "involvedObject.namespace",
                involved_ns,
                "does not match event.namespace",
            )
        };
        if ev.event_time.is_none() {
            // Old-style events: the namespaces agree (or "default" for cluster-scoped objects).
            let ok = if involved_ns.is_empty() {
                ns.is_empty() || ns == "default"
            } else {
                ns == involved_ns
            };
            if !ok {
                errs.push(mismatch());
            }
        } else {
            if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
                errs.push(mismatch());
            }
            // Upstream names the reporting controller `source` in v1 errors,
            // although the value checked is reportingComponent.
            let controller = ev.reporting_component.as_deref().unwrap_or("");
            if controller.is_empty() {
                errs.push(FieldError::required("source", ""));
            }
            errs.extend(validate_qualified_name(controller, "source"));
            for (field, value, limit) in [
                (
                    "reportingInstance",
                    &ev.reporting_instance,
                    REPORTING_INSTANCE_LIMIT,
                ),
                ("action", &ev.action, ACTION_LIMIT),
                ("reason", &ev.reason, REASON_LIMIT),
            ] {
                let v = value.as_deref().unwrap_or("");
                if v.is_empty() {
                    errs.push(FieldError::required(field, ""));
                }
                if v.len() > limit {
                    errs.push(FieldError::invalid(
                        field,
                        "",
                        format!("can have at most {limit} characters"),
                    ));
                }
            }
            if ev.message.as_deref().unwrap_or("").len() > NOTE_LIMIT {
                errs.push(FieldError::invalid(
                    "message",
                    "",
                    format!("can have at most {NOTE_LIMIT} characters"),
                ));
            }
        }
        for m in is_dns1123_subdomain(ns) {
            errs.push(FieldError::invalid("namespace", ns, m));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};

    fn event(ns: &str, involved_ns: Option<&str>) -> Event {
        Event {
            metadata: ObjectMeta {
                name: Some("p.1".into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                kind: Some("Pod".into()),
                name: Some("p".into()),
                namespace: involved_ns.map(Into::into),
                ..Default::default()
            },
            reason: Some("Started".into()),
            message: Some("hello".into()),
            ..Default::default()
        }
    }

    fn new_style(ev: Event) -> Event {
        Event {
            event_time: Some(MicroTime(Default::default())),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some("node-1".into()),
            action: Some("Start".into()),
            ..ev
        }
    }

    #[test]
    fn validate_cases() {
        let cases: Vec<(&str, Event, Vec<&str>)> = vec![
            ("legacy valid", event("default", Some("default")), vec![]),
            (
                "legacy cluster object in default",
                event("default", None),
                vec![],
            ),
            (
                "legacy mismatch",
                event("a", Some("b")),
                vec!["involvedObject.namespace"],
            ),
            (
                "legacy cluster object elsewhere",
                event("a", None),
                vec!["involvedObject.namespace"],
            ),
            ("new style valid", new_style(event("a", Some("a"))), vec![]),
            (
                "new style cluster object in kube-system",
                new_style(event("kube-system", None)),
                vec![],
            ),
            (
                "new style missing fields",
                Event {
                    reporting_component: None,
                    action: None,
                    ..new_style(event("a", Some("a")))
                },
                vec!["source", "source", "source", "action"],
            ),
            (
                "new style long reason",
                Event {
                    reason: Some("x".repeat(129)),
                    ..new_style(event("a", Some("a")))
                },
                vec!["reason"],
            ),
        ];
        for (name, e, want) in cases {
            let got: Vec<String> = EventStrategy
                .validate(&e)
                .into_iter()
                .map(|e| e.field)
                .collect();
            assert_eq!(got, want, "{name}");
        }
        let e = event("a", Some("b"));
        assert!(
            EventStrategy
                .validate_update(&e, &e)
                .iter()
                .any(|e| e.field == "involvedObject.namespace")
        );
    }
}
