//! Kubernetes protobuf bodies to JSON, against real kubectl captures and
//! hand-built bodies.

use base64::Engine as _;
use prost::Message as _;
use prost_reflect::DynamicMessage;
use proto::k8s::{descriptor_pool, protobuf_to_json, protobuf_to_json_as};
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Bodies kubectl v1.32 sent for `kubectl create ...`, next to the JSON the
/// same command prints with `--dry-run=client -o json` (Go's encoding/json of
/// the same object). Compared as text, so key order counts too.
#[test]
fn kubectl_captures() {
    let names = [
        "configmap",
        "namespace",
        "secret",
        "service",
        "deployment",
        "resourcequota",
        "cronjob",
        "rolebinding",
        "job",
        "role",
        "poddisruptionbudget",
        "priorityclass",
        "ingress",
        "serviceaccount",
    ];
    for name in names {
        let got = protobuf_to_json(&fixture(&format!("{name}.pb"))).unwrap();
        let want: Value = serde_json::from_slice(&fixture(&format!("{name}.json"))).unwrap();
        assert_eq!(got.to_string(), want.to_string(), "{name}");
    }
}

/// A protobuf body for `message` given in protobuf's own JSON mapping.
fn body(api_version: &str, kind: &str, message: &str, proto_json: Value) -> Vec<u8> {
    let pool = descriptor_pool().unwrap();
    let encode = |name: &str, value: Value| {
        let desc = pool.get_message_by_name(name).unwrap();
        DynamicMessage::deserialize(desc, value)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .encode_to_vec()
    };
    let raw = encode(message, proto_json);
    let unknown = json!({
        "typeMeta": {"apiVersion": api_version, "kind": kind},
        "raw": base64::engine::general_purpose::STANDARD.encode(raw),
    });
    let mut out = b"k8s\0".to_vec();
    out.extend(encode("k8s.io.apimachinery.pkg.runtime.Unknown", unknown));
    out
}

const T: &str = "1704164645"; // 2024-01-02T03:04:05Z

#[test]
fn built_bodies() {
    let cases = [
        (
            "deployment with resources, probes and volumes",
            ("apps/v1", "Deployment", "k8s.io.api.apps.v1.Deployment"),
            json!({
                "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                             "creationTimestamp": {"seconds": T}},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {
                            "containers": [{
                                "name": "c", "image": "busybox", "args": ["sleep", "1d"],
                                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                "resources": {
                                    "requests": {"cpu": {"string": "100m"}, "memory": {"string": "64Mi"}},
                                    "limits": {"memory": {"string": "128Mi"}},
                                },
                                "readinessProbe": {
                                    "handler": {"httpGet": {"path": "/", "port": {"type": 1, "strVal": "http"}}},
                                    "periodSeconds": 5,
                                },
                                "livenessProbe": {"handler": {"tcpSocket": {"port": {"type": 0, "intVal": 8080}}}},
                            }],
                            "volumes": [
                                {"name": "data", "volumeSource": {"emptyDir": {"sizeLimit": {"string": "1Gi"}}}},
                                {"name": "cfg", "volumeSource": {"configMap": {
                                    "localObjectReference": {"name": "cfg"}, "defaultMode": 420}}},
                            ],
                            "terminationGracePeriodSeconds": 0,
                        },
                    },
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                        "maxUnavailable": {"type": 1, "strVal": "25%"}, "maxSurge": {"intVal": 1}}},
                },
            }),
            json!({
                "kind": "Deployment", "apiVersion": "apps/v1",
                "metadata": {"name": "web", "namespace": "default",
                             "creationTimestamp": "2024-01-02T03:04:05Z", "labels": {"app": "web"}},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                        "spec": {
                            "volumes": [
                                {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                                {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}},
                            ],
                            "containers": [{
                                "name": "c", "image": "busybox", "args": ["sleep", "1d"],
                                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                "resources": {"limits": {"memory": "128Mi"},
                                              "requests": {"cpu": "100m", "memory": "64Mi"}},
                                "livenessProbe": {"tcpSocket": {"port": 8080}},
                                "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
                            }],
                            "terminationGracePeriodSeconds": 0,
                        },
                    },
                    "strategy": {"type": "RollingUpdate",
                                 "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}},
                },
                "status": {},
            }),
        ),
        (
            "configmap with binaryData, immutable=false and managedFields",
            ("v1", "ConfigMap", "k8s.io.api.core.v1.ConfigMap"),
            json!({
                "metadata": {"name": "cm", "managedFields": [{
                    "manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                    "time": {"seconds": T}, "fieldsType": "FieldsV1",
                    "fieldsV1": {"Raw": base64::engine::general_purpose::STANDARD.encode(br#"{"f:data":{}}"#)},
                }]},
                "immutable": false,
                "data": {"z": "1", "a": ""},
                "binaryData": {"b": "AAE="},
            }),
            json!({
                "kind": "ConfigMap", "apiVersion": "v1",
                "metadata": {"name": "cm", "creationTimestamp": null, "managedFields": [{
                    "manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                    "time": "2024-01-02T03:04:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}},
                }]},
                "immutable": false,
                "data": {"a": "", "z": "1"},
                "binaryData": {"b": "AAE="},
            }),
        ),
        (
            "binding",
            ("v1", "Binding", "k8s.io.api.core.v1.Binding"),
            json!({"metadata": {"name": "p1", "namespace": "default"},
                   "target": {"kind": "Node", "name": "n1"}}),
            json!({"kind": "Binding", "apiVersion": "v1",
                   "metadata": {"name": "p1", "namespace": "default", "creationTimestamp": null},
                   "target": {"kind": "Node", "name": "n1"}}),
        ),
        (
            // What kubectl drain sends as JSON: {"kind":"Eviction",...,"deleteOptions":{"gracePeriodSeconds":7}}
            "eviction as kubectl drain sends it",
            ("policy/v1", "Eviction", "k8s.io.api.policy.v1.Eviction"),
            json!({"metadata": {"name": "pcap", "namespace": "k8sproto-cap"},
                   "deleteOptions": {"gracePeriodSeconds": 7}}),
            json!({"kind": "Eviction", "apiVersion": "policy/v1",
                   "metadata": {"name": "pcap", "namespace": "k8sproto-cap", "creationTimestamp": null},
                   "deleteOptions": {"gracePeriodSeconds": 7}}),
        ),
        (
            "eviction with zero grace period and preconditions",
            ("policy/v1", "Eviction", "k8s.io.api.policy.v1.Eviction"),
            json!({"metadata": {"name": "p1", "namespace": "default"},
                   "deleteOptions": {"gracePeriodSeconds": 0, "preconditions": {"uid": "abc"},
                                     "propagationPolicy": "Background", "dryRun": ["All"]}}),
            json!({"kind": "Eviction", "apiVersion": "policy/v1",
                   "metadata": {"name": "p1", "namespace": "default", "creationTimestamp": null},
                   "deleteOptions": {"gracePeriodSeconds": 0, "preconditions": {"uid": "abc"},
                                     "propagationPolicy": "Background", "dryRun": ["All"]}}),
        ),
        (
            // kubectl's JSON DELETE body for the same options: {"gracePeriodSeconds":5,"propagationPolicy":"Foreground"}
            "delete options",
            (
                "apps/v1",
                "DeleteOptions",
                "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
            ),
            json!({"gracePeriodSeconds": 5, "propagationPolicy": "Foreground"}),
            json!({"kind": "DeleteOptions", "apiVersion": "apps/v1",
                   "gracePeriodSeconds": 5, "propagationPolicy": "Foreground"}),
        ),
        (
            "scale to zero",
            ("autoscaling/v1", "Scale", "k8s.io.api.autoscaling.v1.Scale"),
            json!({"metadata": {"name": "web", "namespace": "default", "resourceVersion": "7"},
                   "spec": {"replicas": 0}}),
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                   "metadata": {"name": "web", "namespace": "default", "resourceVersion": "7",
                                "creationTimestamp": null},
                   "spec": {}, "status": {"replicas": 0}}),
        ),
        (
            "lease with micro time",
            (
                "coordination.k8s.io/v1",
                "Lease",
                "k8s.io.api.coordination.v1.Lease",
            ),
            json!({"metadata": {"name": "n1", "namespace": "kube-node-lease"},
                   "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40,
                            "renewTime": {"seconds": T, "nanos": 123_456_789}}}),
            json!({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
                   "metadata": {"name": "n1", "namespace": "kube-node-lease", "creationTimestamp": null},
                   "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40,
                            "renewTime": "2024-01-02T03:04:05.123456Z"}}),
        ),
        (
            "controller revision with raw extension",
            (
                "apps/v1",
                "ControllerRevision",
                "k8s.io.api.apps.v1.ControllerRevision",
            ),
            json!({"metadata": {"name": "r1"},
                   "data": {"raw": base64::engine::general_purpose::STANDARD.encode(br#"{"spec":{}}"#)},
                   "revision": 2}),
            json!({"kind": "ControllerRevision", "apiVersion": "apps/v1",
                   "metadata": {"name": "r1", "creationTimestamp": null},
                   "data": {"spec": {}}, "revision": 2}),
        ),
        (
            "subject access review with extra",
            (
                "authorization.k8s.io/v1",
                "SubjectAccessReview",
                "k8s.io.api.authorization.v1.SubjectAccessReview",
            ),
            json!({"spec": {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"},
                            "user": "alice", "groups": ["g"],
                            "extra": {"scopes": {"items": ["a", "b"]}, "none": {}}}}),
            json!({"kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                   "metadata": {"creationTimestamp": null},
                   "spec": {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"},
                            "user": "alice", "groups": ["g"],
                            "extra": {"none": null, "scopes": ["a", "b"]}},
                   "status": {"allowed": false}}),
        ),
        (
            "events.k8s.io event: unset non-pointer structs are {} and times null",
            ("events.k8s.io/v1", "Event", "k8s.io.api.events.v1.Event"),
            json!({"metadata": {"name": "e1", "namespace": "default"},
                   "eventTime": {"seconds": T, "nanos": 5000},
                   "reportingController": "c", "reportingInstance": "i", "action": "A", "reason": "R",
                   "regarding": {"kind": "Pod", "name": "p"}, "type": "Normal"}),
            json!({"kind": "Event", "apiVersion": "events.k8s.io/v1",
                   "metadata": {"name": "e1", "namespace": "default", "creationTimestamp": null},
                   "eventTime": "2024-01-02T03:04:05.000005Z",
                   "reportingController": "c", "reportingInstance": "i", "action": "A", "reason": "R",
                   "regarding": {"kind": "Pod", "name": "p"}, "type": "Normal",
                   "deprecatedSource": {}, "deprecatedFirstTimestamp": null,
                   "deprecatedLastTimestamp": null}),
        ),
        (
            "endpoint slice: nil slices without omitempty are null",
            (
                "discovery.k8s.io/v1",
                "EndpointSlice",
                "k8s.io.api.discovery.v1.EndpointSlice",
            ),
            json!({"metadata": {"name": "s"}, "addressType": "IPv4"}),
            json!({"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
                   "metadata": {"name": "s", "creationTimestamp": null},
                   "addressType": "IPv4", "endpoints": null, "ports": null}),
        ),
    ];
    for (name, (api_version, kind, message), input, want) in cases {
        let got = protobuf_to_json(&body(api_version, kind, message, input)).unwrap();
        assert_eq!(got.to_string(), want.to_string(), "{name}");
    }
}

/// Captures of commands that have no `--dry-run` (`kubectl create token`,
/// `kubectl auth can-i`); the JSON follows from the Go types' tags.
#[test]
fn kubectl_captures_without_dry_run() {
    let cases = [
        (
            "tokenrequest",
            json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                   "metadata": {"creationTimestamp": null},
                   "spec": {"audiences": null, "expirationSeconds": 3600, "boundObjectRef": null},
                   "status": {"token": "", "expirationTimestamp": null}}),
        ),
        (
            "selfsubjectaccessreview",
            json!({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                   "metadata": {"creationTimestamp": null},
                   "spec": {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}},
                   "status": {"allowed": false}}),
        ),
    ];
    for (name, want) in cases {
        let got = protobuf_to_json(&fixture(&format!("{name}.pb"))).unwrap();
        assert_eq!(got.to_string(), want.to_string(), "{name}");
    }
}

#[test]
fn envelope_errors() {
    let no_kind = body("", "", "k8s.io.api.core.v1.Namespace", json!({}));
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("empty", vec![], "empty data"),
        ("magic only", b"k8s\0".to_vec(), "empty body"),
        (
            "json",
            br#"{"kind":"Pod"}"#.to_vec(),
            "does not appear to be a protobuf message",
        ),
        (
            "unknown kind",
            body("v1", "Widget", "k8s.io.api.core.v1.Namespace", json!({})),
            r#"no kind "Widget" is registered for version "v1""#,
        ),
        (
            "unknown group",
            body(
                "example.com/v1",
                "Namespace",
                "k8s.io.api.core.v1.Namespace",
                json!({}),
            ),
            r#"no kind "Namespace" is registered for version "example.com/v1""#,
        ),
        ("no kind", no_kind, "'Kind' is missing"),
    ];
    for (name, input, want) in cases {
        let err = protobuf_to_json(&input).unwrap_err();
        assert!(err.contains(want), "{name}: {err}");
    }
    let mut garbage = body("v1", "Namespace", "k8s.io.api.core.v1.Namespace", json!({}));
    garbage.extend([0x0a, 0xff]);
    assert!(protobuf_to_json(&garbage).is_err());
}

#[test]
fn missing_type_meta_takes_the_endpoint_kind() {
    let input = body(
        "",
        "",
        "k8s.io.api.core.v1.Namespace",
        json!({"metadata": {"name": "x"}}),
    );
    let got = protobuf_to_json_as(&input, "v1", "Namespace").unwrap();
    let want = json!({"kind": "Namespace", "apiVersion": "v1",
                      "metadata": {"name": "x", "creationTimestamp": null}, "spec": {}, "status": {}});
    assert_eq!(got.to_string(), want.to_string());
}
