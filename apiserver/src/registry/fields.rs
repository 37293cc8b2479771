//! Field selectors per resource: which labels a list/watch may use (upstream's
//! field label conversion funcs in `pkg/apis/<group>/<version>/conversion.go`,
//! else `runtime.DefaultMetaV1FieldSelectorConversion`) and what each field's
//! value is for an object (upstream's `GetAttrs` / `ToSelectableFields` in
//! `pkg/registry/<group>/<resource>/strategy.go`).
//!
//! The two sets differ on purpose, as upstream's do: e.g. ReplicaSet strategy
//! exposes `status.replicas`, but apps/v1 registers no conversion func, so
//! the apiserver rejects it (kubernetes/kubernetes#135136); Pod's conversion
//! func accepts `status.podIPs`, but no value is extracted, so it matches as "".

use crate::registry::ResourceInfo;
use common::selectors::{FieldSelector, quote};
use serde_json::Value;

/// How a kind's field label conversion func accepts labels.
enum Conversion {
    /// No conversion func: only `metadata.name` and `metadata.namespace`.
    Default,
    /// Only these labels; others get `field label not supported: <label>`.
    Listed(&'static [&'static str]),
    /// batch/v1 Job's func, which words its error differently.
    Job,
}

const POD_LABELS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
    // Old v1 clients' name for spec.nodeName.
    "spec.host",
];

const CORE_EVENT_LABELS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
    "metadata.namespace",
    "metadata.name",
];

/// events.k8s.io/v1 names, which upstream maps onto the core Event field set.
const EVENTS_V1_LABELS: &[&str] = &[
    "reason",
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reportingController",
    "source",
    "type",
    "metadata.namespace",
    "metadata.name",
];

fn conversion(group: &str, resource: &str) -> Conversion {
    match (group, resource) {
        ("", "pods") => Conversion::Listed(POD_LABELS),
        ("", "nodes") => Conversion::Listed(&["metadata.name", "spec.unschedulable"]),
        ("", "replicationcontrollers") => {
            Conversion::Listed(&["metadata.name", "metadata.namespace", "status.replicas"])
        }
        ("", "events") => Conversion::Listed(CORE_EVENT_LABELS),
        ("", "namespaces") => Conversion::Listed(&["status.phase", "metadata.name"]),
        ("", "secrets") => Conversion::Listed(&["type", "metadata.namespace", "metadata.name"]),
        ("", "services") => Conversion::Listed(&[
            "metadata.namespace",
            "metadata.name",
            "spec.clusterIP",
            "spec.type",
        ]),
        ("events.k8s.io", "events") => Conversion::Listed(EVENTS_V1_LABELS),
        ("certificates.k8s.io", "certificatesigningrequests") => {
            Conversion::Listed(&["metadata.name", "spec.signerName"])
        }
        ("batch", "jobs") => Conversion::Job,
        _ => Conversion::Default,
    }
}

/// Cluster-scoped resources have no `metadata.namespace` in their field set.
/// `None` for resources not known here (their objects tell).
fn cluster_scoped(group: &str, resource: &str) -> Option<bool> {
    let cluster = matches!(
        (group, resource),
        ("", "namespaces" | "nodes" | "persistentvolumes")
            | ("networking.k8s.io", "ingressclasses")
            | (
                "admissionregistration.k8s.io",
                "mutatingwebhookconfigurations"
                    | "validatingwebhookconfigurations"
                    | "validatingadmissionpolicies"
                    | "validatingadmissionpolicybindings"
            )
            | (
                "rbac.authorization.k8s.io",
                "clusterroles" | "clusterrolebindings"
            )
            | ("scheduling.k8s.io", "priorityclasses")
            | ("storage.k8s.io", "storageclasses")
            | ("certificates.k8s.io", "certificatesigningrequests")
    );
    let namespaced = matches!(
        (group, resource),
        (
            "",
            "pods"
                | "services"
                | "endpoints"
                | "configmaps"
                | "secrets"
                | "serviceaccounts"
                | "events"
                | "limitranges"
                | "resourcequotas"
                | "persistentvolumeclaims"
                | "replicationcontrollers"
        ) | (
            "apps",
            "deployments" | "replicasets" | "daemonsets" | "statefulsets" | "controllerrevisions"
        ) | ("batch", "jobs" | "cronjobs")
            | ("coordination.k8s.io", "leases")
            | ("discovery.k8s.io", "endpointslices")
            | ("networking.k8s.io", "ingresses" | "networkpolicies")
            | ("rbac.authorization.k8s.io", "roles" | "rolebindings")
            | ("events.k8s.io", "events")
            | ("policy", "poddisruptionbudgets")
    );
    match (cluster, namespaced) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

/// The legacy group is "" in URLs; accept its "core" spelling too.
fn canonical_group(group: &str) -> &str {
    if group == "core" { "" } else { group }
}

/// `Ok(())` if every field of `sel` is supported by (group, resource), else
/// upstream's message for the first one that is not (terms in selector order);
/// the caller answers 400 BadRequest with it.
/// [`check_supported`] for the resource `info` describes: a custom
/// resource takes its CRD version's `selectableFields` too.
pub fn check_supported_by(info: &ResourceInfo, sel: &FieldSelector) -> Result<(), String> {
    let Some(custom) = &info.custom else {
        return check_supported(info.group, info.resource, sel);
    };
    sel.fields().try_for_each(|field| {
        let known = ["metadata.name", "metadata.namespace"]
            .into_iter()
            .chain(custom.selectable.iter().map(String::as_str));
        if known.clone().any(|k| k == field) {
            return Ok(());
        }
        let list: Vec<String> = known.map(quote).collect();
        Err(format!(
            "{} is not a known field selector: only {}",
            quote(field),
            list.join(", ")
        ))
    })
}

/// [`field_value`] for the resource `info` describes.
pub fn value_of(info: &ResourceInfo, obj: &Value, field: &str) -> Option<String> {
    if info.custom.is_none() || field.starts_with("metadata.") {
        return field_value(info.group, info.resource, obj, field);
    }
    // A selectable field of a custom resource: its scalar value, "" if absent.
    let path = format!(".{field}");
    Some(match crate::tables::custom::find(obj, &path).first() {
        Some(Value::String(s)) => s.clone(),
        Some(v @ (Value::Bool(_) | Value::Number(_))) => v.to_string(),
        _ => String::new(),
    })
}

pub fn check_supported(group: &str, resource: &str, sel: &FieldSelector) -> Result<(), String> {
    let group = canonical_group(group);
    sel.fields()
        .try_for_each(|field| check_label(group, resource, field))
}

fn check_label(group: &str, resource: &str, label: &str) -> Result<(), String> {
    match conversion(group, resource) {
        Conversion::Default => match label {
            "metadata.name" | "metadata.namespace" => Ok(()),
            _ => Err(format!(
                "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                quote(label)
            )),
        },
        Conversion::Listed(labels) if labels.contains(&label) => Ok(()),
        Conversion::Listed(_) => Err(format!("field label not supported: {label}")),
        Conversion::Job => match label {
            "metadata.name" | "metadata.namespace" | "status.successful" => Ok(()),
            _ => Err(format!(
                "field label {} not supported for batchv1.Job",
                quote(label)
            )),
        },
    }
}

/// The value of a selectable field of `obj`, `None` if the resource has no
/// such field (a selector then matches it as ""). Booleans are "true"/"false",
/// counts are decimal.
pub fn field_value(group: &str, resource: &str, obj: &Value, field: &str) -> Option<String> {
    let group = canonical_group(group);
    match field {
        "metadata.name" => return Some(text(obj, &["metadata", "name"])),
        "metadata.namespace" => {
            return match cluster_scoped(group, resource) {
                Some(true) => None,
                Some(false) => Some(text(obj, &["metadata", "namespace"])),
                None => at(obj, &["metadata", "namespace"])
                    .and_then(Value::as_str)
                    .map(str::to_string),
            };
        }
        _ => {}
    }
    match (group, resource) {
        ("", "pods") => pod_field(obj, field),
        ("", "nodes") => match field {
            "spec.unschedulable" => Some(boolean(obj, &["spec", "unschedulable"])),
            _ => None,
        },
        ("", "namespaces") => match field {
            "status.phase" => Some(text(obj, &["status", "phase"])),
            _ => None,
        },
        ("", "secrets") => match field {
            "type" => Some(text(obj, &["type"])),
            _ => None,
        },
        ("", "services") => match field {
            "spec.clusterIP" => Some(text(obj, &["spec", "clusterIP"])),
            "spec.type" => Some(text(obj, &["spec", "type"])),
            _ => None,
        },
        ("", "replicationcontrollers") | ("apps", "replicasets") => match field {
            "status.replicas" => Some(count(obj, &["status", "replicas"])),
            _ => None,
        },
        ("batch", "jobs") => match field {
            "status.successful" => Some(count(obj, &["status", "succeeded"])),
            _ => None,
        },
        ("", "events") | ("events.k8s.io", "events") => event_field(obj, field),
        ("certificates.k8s.io", "certificatesigningrequests") => match field {
            "spec.signerName" => Some(text(obj, &["spec", "signerName"])),
            _ => None,
        },
        _ => None,
    }
}

/// upstream pod `ToSelectableFields` on a v1 Pod.
fn pod_field(obj: &Value, field: &str) -> Option<String> {
    Some(match field {
        "spec.nodeName" | "spec.host" => text(obj, &["spec", "nodeName"]),
        "spec.restartPolicy" => text(obj, &["spec", "restartPolicy"]),
        "spec.schedulerName" => text(obj, &["spec", "schedulerName"]),
        "spec.serviceAccountName" => text(obj, &["spec", "serviceAccountName"]),
        "spec.hostNetwork" => boolean(obj, &["spec", "hostNetwork"]),
        "status.phase" => text(obj, &["status", "phase"]),
        // The primary IP: the first of status.podIPs (v1 mirrors it in podIP).
        "status.podIP" => at(obj, &["status", "podIPs"])
            .and_then(Value::as_array)
            .and_then(|ips| ips.first())
            .and_then(|ip| ip.get("ip"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| text(obj, &["status", "podIP"])),
        "status.nominatedNodeName" => text(obj, &["status", "nominatedNodeName"]),
        _ => return None,
    })
}

/// upstream event `ToSelectableFields`. Both the core/v1 and the
/// events.k8s.io/v1 shape of an Event are read, under either field name, since
/// upstream serves both from one storage.
fn event_field(obj: &Value, field: &str) -> Option<String> {
    let reporting = || {
        let core = text(obj, &["reportingComponent"]);
        if core.is_empty() {
            text(obj, &["reportingController"])
        } else {
            core
        }
    };
    if let Some(sub) = field
        .strip_prefix("involvedObject.")
        .or_else(|| field.strip_prefix("regarding."))
    {
        if !matches!(
            sub,
            "kind" | "namespace" | "name" | "uid" | "apiVersion" | "resourceVersion" | "fieldPath"
        ) {
            return None;
        }
        let reference = obj.get("involvedObject").or_else(|| obj.get("regarding"));
        return Some(reference.map(|r| text(r, &[sub])).unwrap_or_default());
    }
    Some(match field {
        "reason" => text(obj, &["reason"]),
        "type" => text(obj, &["type"]),
        "reportingComponent" | "reportingController" => reporting(),
        "source" => {
            let mut source = text(obj, &["source", "component"]);
            if source.is_empty() {
                source = text(obj, &["deprecatedSource", "component"]);
            }
            if source.is_empty() {
                reporting()
            } else {
                source
            }
        }
        _ => return None,
    })
}

fn at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, key| v.get(key))
}

/// A string field, "" when absent (Go's zero value).
fn text(obj: &Value, path: &[&str]) -> String {
    at(obj, path)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn boolean(obj: &Value, path: &[&str]) -> String {
    at(obj, path)
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .to_string()
}

fn count(obj: &Value, path: &[&str]) -> String {
    at(obj, path)
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap()
    }

    #[test]
    fn supported_labels() {
        let ok = [
            (
                "",
                "pods",
                "metadata.name=a,metadata.namespace=b,spec.nodeName=n",
            ),
            ("", "pods", "spec.restartPolicy=Always,spec.schedulerName=s"),
            (
                "",
                "pods",
                "spec.serviceAccountName=x,spec.hostNetwork=true",
            ),
            ("", "pods", "status.phase=Running,status.podIP=1.2.3.4"),
            (
                "",
                "pods",
                "status.podIPs=1.2.3.4,status.nominatedNodeName=n",
            ),
            ("", "pods", "spec.host=n"),
            ("core", "pods", "spec.nodeName="),
            ("", "nodes", "metadata.name=n,spec.unschedulable=false"),
            ("", "namespaces", "metadata.name=n,status.phase=Active"),
            ("", "secrets", "type=Opaque,metadata.namespace=d"),
            ("", "services", "spec.clusterIP=None,spec.type=ClusterIP"),
            ("", "replicationcontrollers", "status.replicas=1"),
            (
                "",
                "events",
                "involvedObject.kind=Pod,involvedObject.name=p",
            ),
            (
                "",
                "events",
                "involvedObject.uid=u,involvedObject.fieldPath=f",
            ),
            (
                "",
                "events",
                "reason=r,reportingComponent=c,source=s,type=Normal",
            ),
            (
                "events.k8s.io",
                "events",
                "regarding.kind=Pod,reportingController=c",
            ),
            ("events.k8s.io", "events", "reason=r,source=s,type=Warning"),
            ("batch", "jobs", "status.successful=1,metadata.name=j"),
            ("batch", "cronjobs", "metadata.name=c,metadata.namespace=d"),
            ("apps", "deployments", "metadata.name=d"),
            (
                "rbac.authorization.k8s.io",
                "clusterroles",
                "metadata.namespace=",
            ),
            (
                "certificates.k8s.io",
                "certificatesigningrequests",
                "spec.signerName=s",
            ),
            ("", "configmaps", ""),
        ];
        for (group, resource, s) in ok {
            assert_eq!(
                check_supported(group, resource, &sel(s)),
                Ok(()),
                "{group}/{resource} {s}"
            );
        }
        let bad = [
            (
                "",
                "pods",
                "spec.foo=x",
                "field label not supported: spec.foo",
            ),
            (
                "",
                "nodes",
                "metadata.namespace=x",
                "field label not supported: metadata.namespace",
            ),
            (
                "",
                "namespaces",
                "metadata.namespace=",
                "field label not supported: metadata.namespace",
            ),
            ("", "secrets", "data=x", "field label not supported: data"),
            (
                "",
                "events",
                "regarding.kind=Pod",
                "field label not supported: regarding.kind",
            ),
            (
                "events.k8s.io",
                "events",
                "involvedObject.kind=Pod",
                "field label not supported: involvedObject.kind",
            ),
            (
                "batch",
                "jobs",
                "status.succeeded=1",
                "field label \"status.succeeded\" not supported for batchv1.Job",
            ),
            (
                "apps",
                "replicasets",
                "status.replicas=0",
                "\"status.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
            ),
            (
                "networking.k8s.io",
                "ingresses",
                "foo.bar=baz",
                "\"foo.bar\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
            ),
            // The first unsupported term in selector (sorted) order is reported.
            (
                "",
                "pods",
                "zzz=1,aaa=2,status.phase=x",
                "field label not supported: aaa",
            ),
        ];
        for (group, resource, s, want) in bad {
            assert_eq!(
                check_supported(group, resource, &sel(s)),
                Err(want.to_string()),
                "{group}/{resource} {s}"
            );
        }
    }

    #[test]
    fn pod_values() {
        let pod = json!({
            "metadata": {"name": "web-1", "namespace": "prod"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                     "serviceAccountName": "sa", "hostNetwork": true},
            "status": {"phase": "Running", "podIP": "10.0.0.9",
                       "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}], "nominatedNodeName": "n2"}
        });
        let bare = json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {}});
        let cases: &[(&Value, &str, Option<&str>)] = &[
            (&pod, "metadata.name", Some("web-1")),
            (&pod, "metadata.namespace", Some("prod")),
            (&pod, "spec.nodeName", Some("n1")),
            (&pod, "spec.host", Some("n1")),
            (&pod, "spec.restartPolicy", Some("Always")),
            (&pod, "spec.schedulerName", Some("default-scheduler")),
            (&pod, "spec.serviceAccountName", Some("sa")),
            (&pod, "spec.hostNetwork", Some("true")),
            (&pod, "status.phase", Some("Running")),
            (&pod, "status.podIP", Some("10.0.0.1")),
            (&pod, "status.podIPs", None),
            (&pod, "status.nominatedNodeName", Some("n2")),
            (&pod, "spec.containers", None),
            (&bare, "spec.nodeName", Some("")),
            (&bare, "spec.hostNetwork", Some("false")),
            (&bare, "status.podIP", Some("")),
            (&bare, "status.phase", Some("")),
        ];
        for (obj, field, want) in cases {
            assert_eq!(
                field_value("", "pods", obj, field).as_deref(),
                *want,
                "{field}"
            );
        }
    }

    #[test]
    fn other_values() {
        let cases: &[(&str, &str, Value, &str, Option<&str>)] = &[
            (
                "",
                "nodes",
                json!({"metadata": {"name": "n"}}),
                "spec.unschedulable",
                Some("false"),
            ),
            (
                "",
                "nodes",
                json!({"spec": {"unschedulable": true}}),
                "spec.unschedulable",
                Some("true"),
            ),
            (
                "",
                "nodes",
                json!({"metadata": {"name": "n"}}),
                "metadata.namespace",
                None,
            ),
            (
                "",
                "namespaces",
                json!({"status": {"phase": "Terminating"}}),
                "status.phase",
                Some("Terminating"),
            ),
            (
                "",
                "secrets",
                json!({"type": "kubernetes.io/tls"}),
                "type",
                Some("kubernetes.io/tls"),
            ),
            (
                "",
                "services",
                json!({"spec": {"clusterIP": "None", "type": "ClusterIP"}}),
                "spec.clusterIP",
                Some("None"),
            ),
            (
                "",
                "services",
                json!({"spec": {"type": "NodePort"}}),
                "spec.type",
                Some("NodePort"),
            ),
            (
                "",
                "replicationcontrollers",
                json!({"status": {"replicas": 3}}),
                "status.replicas",
                Some("3"),
            ),
            (
                "apps",
                "replicasets",
                json!({"status": {}}),
                "status.replicas",
                Some("0"),
            ),
            (
                "batch",
                "jobs",
                json!({"status": {"succeeded": 2}}),
                "status.successful",
                Some("2"),
            ),
            ("batch", "jobs", json!({}), "status.successful", Some("0")),
            (
                "certificates.k8s.io",
                "certificatesigningrequests",
                json!({"spec": {"signerName": "s"}}),
                "spec.signerName",
                Some("s"),
            ),
            (
                "apps",
                "deployments",
                json!({"metadata": {"name": "d", "namespace": "x"}}),
                "metadata.namespace",
                Some("x"),
            ),
            (
                "apps",
                "deployments",
                json!({"metadata": {"name": "d"}}),
                "status.replicas",
                None,
            ),
            (
                "rbac.authorization.k8s.io",
                "clusterroles",
                json!({"metadata": {"name": "r"}}),
                "metadata.name",
                Some("r"),
            ),
            (
                "rbac.authorization.k8s.io",
                "clusterroles",
                json!({"metadata": {"name": "r"}}),
                "metadata.namespace",
                None,
            ),
            (
                "example.com",
                "widgets",
                json!({"metadata": {"name": "w", "namespace": "a"}}),
                "metadata.namespace",
                Some("a"),
            ),
            (
                "example.com",
                "widgets",
                json!({"metadata": {"name": "w"}}),
                "metadata.namespace",
                None,
            ),
        ];
        for (group, resource, obj, field, want) in cases {
            assert_eq!(
                field_value(group, resource, obj, field).as_deref(),
                *want,
                "{group}/{resource} {field}"
            );
        }
    }

    #[test]
    fn event_values() {
        let core = json!({
            "metadata": {"name": "e", "namespace": "d"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "d", "uid": "u1",
                               "apiVersion": "v1", "resourceVersion": "7", "fieldPath": "spec.containers{c}"},
            "reason": "Started", "type": "Normal", "source": {"component": "kubelet"},
            "reportingComponent": "kubelet-rc"
        });
        let v1 = json!({
            "metadata": {"name": "e", "namespace": "d"},
            "regarding": {"kind": "Node", "name": "n"},
            "reason": "Ready", "type": "Warning", "reportingController": "ctrl"
        });
        let cases: &[(&str, &Value, &str, Option<&str>)] = &[
            ("", &core, "involvedObject.kind", Some("Pod")),
            ("", &core, "involvedObject.name", Some("p")),
            ("", &core, "involvedObject.namespace", Some("d")),
            ("", &core, "involvedObject.uid", Some("u1")),
            ("", &core, "involvedObject.apiVersion", Some("v1")),
            ("", &core, "involvedObject.resourceVersion", Some("7")),
            (
                "",
                &core,
                "involvedObject.fieldPath",
                Some("spec.containers{c}"),
            ),
            ("", &core, "involvedObject.other", None),
            ("", &core, "reason", Some("Started")),
            ("", &core, "type", Some("Normal")),
            ("", &core, "source", Some("kubelet")),
            ("", &core, "reportingComponent", Some("kubelet-rc")),
            ("events.k8s.io", &v1, "regarding.kind", Some("Node")),
            ("events.k8s.io", &v1, "regarding.uid", Some("")),
            ("events.k8s.io", &v1, "reportingController", Some("ctrl")),
            // No source component: upstream falls back to the reporting controller.
            ("events.k8s.io", &v1, "source", Some("ctrl")),
            ("events.k8s.io", &v1, "type", Some("Warning")),
            ("events.k8s.io", &v1, "note", None),
        ];
        for (group, obj, field, want) in cases {
            assert_eq!(
                field_value(group, "events", obj, field).as_deref(),
                *want,
                "{group} {field}"
            );
        }
    }

    #[test]
    fn selector_matches_objects() {
        let pods = [
            json!({"metadata": {"name": "a", "namespace": "d"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}),
            json!({"metadata": {"name": "b", "namespace": "d"}, "spec": {}, "status": {"phase": "Pending"}}),
            json!({"metadata": {"name": "c", "namespace": "e"}, "spec": {"nodeName": "n2", "hostNetwork": true}, "status": {"phase": "Running"}}),
        ];
        let cases = [
            ("", vec!["a", "b", "c"]),
            ("spec.nodeName=n1", vec!["a"]),
            ("spec.host=n2", vec!["c"]),
            ("spec.nodeName=", vec!["b"]),
            ("status.phase!=Running", vec!["b"]),
            ("status.phase=Running,metadata.namespace=d", vec!["a"]),
            ("spec.hostNetwork=true", vec!["c"]),
            ("spec.hostNetwork=false", vec!["a", "b"]),
            ("status.podIPs=", vec!["a", "b", "c"]),
            ("metadata.name==c", vec!["c"]),
        ];
        for (s, want) in cases {
            let selector = sel(s);
            check_supported("", "pods", &selector).unwrap();
            let got: Vec<&str> = pods
                .iter()
                .filter(|p| selector.matches(&|f| field_value("", "pods", p, f)))
                .map(|p| p["metadata"]["name"].as_str().unwrap())
                .collect();
            assert_eq!(got, want, "{s}");
        }
    }
}
