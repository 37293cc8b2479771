use super::matching::{object_selected, rule_matches};
use super::review::{denial, response};
use super::*;
use crate::registry::Registry;
use base64::Engine;
use serde_json::json;

fn attrs<'a>(
    info: &'a crate::registry::ResourceInfo,
    op: Operation,
    sub: &'a str,
    ns: &'a str,
) -> Attributes<'a> {
    Attributes {
        operation: op,
        info,
        subresource: sub,
        namespace: ns,
        name: "x",
        user: None,
        dry_run: false,
        warnings: Default::default(),
    }
}

fn rule(v: Value) -> RuleWithOperations {
    serde_json::from_value(v).unwrap()
}

#[test]
fn rules_match_groups_versions_operations_resources_and_scope() {
    let reg = Registry::new();
    let pods = reg.get("", "v1", "pods").unwrap();
    let namespaces = reg.get("", "v1", "namespaces").unwrap();
    let create = attrs(pods, Operation::Create, "", "default");
    let status = attrs(pods, Operation::Update, "status", "default");
    let r = |ops: &str, res: &str, scope: &str| {
        rule(
            json!({"operations": [ops], "apiGroups": [""], "apiVersions": ["v1"], "resources": [res], "scope": scope}),
        )
    };
    assert!(rule_matches(&r("CREATE", "pods", "*"), &create));
    assert!(rule_matches(&r("*", "*", "*"), &create));
    assert!(!rule_matches(&r("UPDATE", "pods", "*"), &create));
    assert!(!rule_matches(&r("CREATE", "configmaps", "*"), &create));
    // A subresource is only matched by rules naming it.
    assert!(!rule_matches(&r("*", "pods", "*"), &status));
    assert!(!rule_matches(&r("*", "*", "*"), &status));
    assert!(rule_matches(&r("*", "pods/status", "*"), &status));
    assert!(rule_matches(&r("*", "pods/*", "*"), &status));
    assert!(rule_matches(&r("*", "*/*", "*"), &status));
    assert!(rule_matches(&r("*", "*/status", "*"), &status));
    assert!(!rule_matches(&r("*", "*/scale", "*"), &status));
    assert!(rule_matches(&r("*", "pods", "Namespaced"), &create));
    assert!(!rule_matches(&r("*", "pods", "Cluster"), &create));
    // Namespaces are cluster-scoped even though they name a namespace.
    let ns = attrs(namespaces, Operation::Update, "", "");
    assert!(rule_matches(&r("*", "namespaces", "Cluster"), &ns));
    assert!(!rule_matches(&r("*", "namespaces", "Namespaced"), &ns));
    let other_group = rule(
        json!({"operations": ["*"], "apiGroups": ["apps"], "apiVersions": ["*"], "resources": ["*"]}),
    );
    assert!(!rule_matches(&other_group, &create));
}

fn hook(extra: Value) -> Hook {
    let mut raw = json!({
        "name": "a.example.com",
        "clientConfig": {"url": "https://127.0.0.1:1/x"},
        "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "namespaceSelector": {},
        "objectSelector": {},
    });
    if let (Some(r), Value::Object(e)) = (raw.as_object_mut(), extra) {
        r.extend(e);
    }
    Hook::decode("c", 0, &raw).unwrap()
}

#[test]
fn object_selectors_match_the_new_or_the_old_labels() {
    let reg = Registry::new();
    let cms = reg.get("", "v1", "configmaps").unwrap();
    let a = attrs(cms, Operation::Update, "", "default");
    let h = hook(json!({"objectSelector": {"matchLabels": {"hook": "yes"}}}));
    let yes = json!({"metadata": {"labels": {"hook": "yes"}}});
    let no = json!({"metadata": {}});
    for (object, old, want) in [
        (Some(&yes), None, true),
        (Some(&no), Some(&yes), true),
        (Some(&no), Some(&no), false),
        (None, None, false),
    ] {
        let r = Request::new(&a, object, old);
        assert_eq!(object_selected(&h, &r).unwrap(), want);
    }
    assert!(object_selected(&hook(json!({})), &Request::new(&a, None, None)).unwrap());
}

#[test]
fn decoding_reads_policies_and_the_review_version() {
    let h = hook(
        json!({"failurePolicy": "Ignore", "timeoutSeconds": 3, "reinvocationPolicy": "IfNeeded", "admissionReviewVersions": ["v2", "v1beta1", "v1"]}),
    );
    assert!(h.ignore_failures && h.reinvoke_if_needed);
    assert_eq!(h.timeout, Duration::from_secs(3));
    assert_eq!(h.review_version, Some("v1beta1"));
    let h = hook(json!({"admissionReviewVersions": ["v9"]}));
    assert_eq!(h.review_version, None);
}

#[test]
fn v1_responses_are_checked_v1beta1_ones_are_lenient() {
    let ok = |v: Value| serde_json::to_vec(&v).unwrap();
    let good = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "u", "allowed": true, "warnings": ["careful"], "auditAnnotations": {"checked": "yes"}}});
    let r = response(&ok(good), "v1", "u", false).unwrap();
    assert!(r.allowed);
    assert_eq!(r.warnings, ["careful"]);
    assert_eq!(r.audit_annotations, [("checked".into(), "yes".into())]);
    let cases = [
        (
            json!({"apiVersion": "v1", "kind": "AdmissionReview", "response": {}}),
            "expected webhook response of admission.k8s.io/v1, got v1",
        ),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "Nope"}),
            "expected webhook response of kind AdmissionReview, got Nope",
        ),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
            "webhook response was absent",
        ),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "x"}}),
            "expected response.uid=\"u\", got \"x\"",
        ),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "u", "patch": "W10="}}),
            "webhook returned response.patch but not response.patchType",
        ),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "u", "patch": "W10=", "patchType": "JSONPatch"}}),
            "validating webhook may not return response.patch",
        ),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "u", "patchType": "Merge"}}),
            "webhook returned invalid response.patchType of \"Merge\"",
        ),
    ];
    for (body, want) in cases {
        assert_eq!(
            response(&ok(body.clone()), "v1", "u", false).unwrap_err(),
            want,
            "{body}"
        );
    }
    assert!(response(b"not json", "v1", "u", true).is_err());
    let beta = json!({"response": {"allowed": true, "patch": "W10="}});
    let r = response(&ok(beta), "v1beta1", "u", true).unwrap();
    assert_eq!(r.patch.as_deref(), Some(&b"[]"[..]));
}

#[test]
fn a_patch_may_come_as_an_array_of_bytes() {
    // What kube-rs's AdmissionResponse serializes, and Go decodes.
    let review = |patch: Value| {
        let v = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": "u", "allowed": true, "patch": patch, "patchType": "JSONPatch"}});
        response(&serde_json::to_vec(&v).unwrap(), "v1", "u", true)
    };
    let r = review(json!([91, 93])).unwrap();
    assert_eq!(r.patch.as_deref(), Some(&b"[]"[..]));
    assert_eq!(
        review(json!([91, 300])).unwrap_err(),
        "response.patch: an array that is not of bytes"
    );
}

#[test]
fn denials_carry_the_webhooks_status() {
    let e = denial(
        "a.example.com",
        &json!({"code": 403, "reason": "Forbidden", "message": "no labels"}),
    );
    assert_eq!((e.code, e.reason), (403, "Forbidden"));
    assert_eq!(
        e.message,
        "admission webhook \"a.example.com\" denied the request: no labels"
    );
    let e = denial("a.example.com", &Value::Null);
    assert_eq!(e.code, 400);
    assert_eq!(
        e.message,
        "admission webhook \"a.example.com\" denied the request without explanation"
    );
    let e = denial("a.example.com", &json!({"code": 200, "reason": "Made Up"}));
    assert_eq!((e.code, e.reason), (400, ""));
    assert_eq!(
        e.message,
        "admission webhook \"a.example.com\" denied the request: Made Up"
    );
}

#[test]
fn patches_apply_in_order_and_bad_ones_are_internal_errors() {
    let mut obj = json!({"metadata": {"name": "x"}});
    let patch = br#"[{"op":"add","path":"/metadata/labels","value":{}},{"op":"add","path":"/metadata/labels/a","value":"b"}]"#;
    assert!(mutating::apply(&mut obj, patch).unwrap());
    assert_eq!(obj["metadata"]["labels"]["a"], "b");
    assert!(
        !mutating::apply(
            &mut obj,
            br#"[{"op":"replace","path":"/metadata/labels/a","value":"b"}]"#
        )
        .unwrap()
    );
    let e = mutating::apply(&mut obj, br#"[{"op":"remove","path":"/nope"}]"#).unwrap_err();
    assert_eq!(e.code, 500);
    assert!(mutating::apply(&mut obj, br#"[{"op":"replace","path":"","value":3}]"#).is_err());
    assert!(mutating::apply(&mut obj, b"{").is_err());
    assert_eq!(obj["metadata"]["labels"]["a"], "b");
}

#[test]
fn dry_runs_reach_only_webhooks_without_side_effects() {
    let reg = Registry::new();
    let cms = reg.get("", "v1", "configmaps").unwrap();
    let mut a = attrs(cms, Operation::Create, "", "default");
    a.dry_run = true;
    assert!(check_dry_run(&hook(json!({"sideEffects": "NoneOnDryRun"})), &a).is_ok());
    match check_dry_run(&hook(json!({"sideEffects": "Some"})), &a) {
        Err(Failure::Refuse(e)) => {
            assert_eq!(e.code, 400);
            assert_eq!(
                e.message,
                "admission webhook \"a.example.com\" does not support dry run"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn call_failures_follow_the_failure_policy() {
    let fail = hook(json!({}));
    let e = Failure::Call("boom".into()).into_error(&fail).unwrap();
    assert_eq!(e.code, 500);
    assert_eq!(
        e.message,
        "Internal error occurred: failed calling webhook \"a.example.com\": boom"
    );
    assert!(
        Failure::Call("boom".into())
            .into_error(&hook(json!({"failurePolicy": "Ignore"})))
            .is_none()
    );
    let denied = Failure::Refuse(ApiError::bad_request("no"));
    assert!(
        denied
            .into_error(&hook(json!({"failurePolicy": "Ignore"})))
            .is_some()
    );
}

#[test]
fn services_resolve_to_an_endpoint_of_the_port_else_the_cluster_ip() {
    let svc = json!({"metadata": {"name": "hook"}, "spec": {"clusterIP": "10.0.0.9", "ports": [{"name": "https", "port": 443, "targetPort": 8443}]}});
    let eps = json!({"subsets": [{"addresses": [{"ip": "10.1.0.5"}], "ports": [{"name": "https", "port": 8443}]}]});
    assert_eq!(
        client::pick_address(&svc, Some(&eps), 443).unwrap(),
        ("10.1.0.5".into(), 8443)
    );
    assert_eq!(
        client::pick_address(&svc, None, 443).unwrap(),
        ("10.0.0.9".into(), 443)
    );
    assert_eq!(
        client::pick_address(&svc, None, 80).unwrap_err(),
        "no service port 80 found for service \"hook\""
    );
    let headless = json!({"metadata": {"name": "hook"}, "spec": {"clusterIP": "None", "ports": [{"port": 443}]}});
    assert!(client::pick_address(&headless, None, 443).is_err());
}

#[test]
fn url_targets_carry_the_timeout_and_the_server_name() {
    let cc: WebhookClientConfig =
        serde_json::from_value(json!({"url": "https://[::1]:8443/a/b"})).unwrap();
    let storage: Arc<dyn crate::storage::Storage> =
        Arc::new(crate::storage::memory::MemoryStorage::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = rt.block_on(async {
        let deps = Deps::new(&Context {
            storage,
            root: "/registry".into(),
            toleration_seconds: (300, 300),
            served: Default::default(),
        });
        client::target(&cc, Duration::from_secs(5), &deps)
            .await
            .unwrap()
    });
    assert_eq!(t.url, "https://[::1]:8443/a/b?timeout=5s");
    assert_eq!(
        (t.host.as_str(), t.port, t.path.as_str()),
        ("::1", 8443, "/a/b?timeout=5s")
    );
    assert_eq!(t.server_name, "::1");
}

#[test]
fn configuration_writes_are_exempt() {
    let reg = Registry::new();
    let info = reg
        .get(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
        )
        .unwrap();
    assert!(exempt(&attrs(info, Operation::Create, "", "")));
    assert!(!exempt(&attrs(
        reg.get("", "v1", "configmaps").unwrap(),
        Operation::Create,
        "",
        "a"
    )));
}

/// An HTTPS server on loopback answering every POST with `answer` after
/// `delay`, its certificate for `name`; returns its port and CA (PEM).
async fn https_server(name: &str, answer: Value, delay: Duration) -> (u16, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let ca = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, answer) = (acceptor.clone(), answer.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |_req| {
                    let answer = answer.clone();
                    async move {
                        tokio::time::sleep(delay).await;
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from(answer.to_string())),
                        ))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, ca_pem)
}

async fn deps_with(objects: &[(&str, Value)]) -> Deps {
    let storage: Arc<dyn crate::storage::Storage> =
        Arc::new(crate::storage::memory::MemoryStorage::default());
    for (key, v) in objects {
        storage
            .create(key, serde_json::to_vec(v).unwrap())
            .await
            .unwrap();
    }
    Deps::new(&Context {
        storage,
        root: "/registry".into(),
        toleration_seconds: (300, 300),
        served: Default::default(),
    })
}

#[tokio::test]
async fn services_are_called_through_their_endpoints_as_name_namespace_svc() {
    let (port, ca) = https_server("hook.team.svc", json!({"ok": true}), Duration::ZERO).await;
    let deps = deps_with(&[
        (
            "/registry/services/team/hook",
            json!({"metadata": {"name": "hook", "namespace": "team"}, "spec": {"clusterIP": "10.0.0.1", "ports": [{"name": "https", "port": 443}]}}),
        ),
        (
            "/registry/endpoints/team/hook",
            json!({"subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": port}]}]}),
        ),
    ])
    .await;
    let cc: WebhookClientConfig = serde_json::from_value(json!({
        "service": {"name": "hook", "namespace": "team", "path": "/check"},
        "caBundle": base64::engine::general_purpose::STANDARD.encode(&ca),
    }))
    .unwrap();
    let t = client::target(&cc, Duration::from_secs(5), &deps)
        .await
        .unwrap();
    assert_eq!(t.url, "https://hook.team.svc:443/check?timeout=5s");
    assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", port));
    let body = deps
        .client
        .post(&t, b"{}".to_vec(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(body, br#"{"ok":true}"#);
    // Another CA is not trusted.
    let (_, other_ca) = https_server("x", json!({}), Duration::ZERO).await;
    let mut untrusted = t.clone();
    untrusted.ca_bundle = Some(other_ca.into_bytes());
    let err = deps
        .client
        .post(&untrusted, b"{}".to_vec(), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        err.starts_with("Post \"https://hook.team.svc:443/check?timeout=5s\": tls:"),
        "{err}"
    );
    let missing: WebhookClientConfig =
        serde_json::from_value(json!({"service": {"name": "gone", "namespace": "team"}})).unwrap();
    let err = client::target(&missing, Duration::from_secs(5), &deps)
        .await
        .unwrap_err();
    assert!(err.ends_with("service \"gone\" not found"), "{err}");
}

#[tokio::test]
async fn slow_webhooks_fail_by_the_timeout() {
    let (port, ca) = https_server("127.0.0.1", json!({}), Duration::from_secs(5)).await;
    let deps = deps_with(&[]).await;
    let cc: WebhookClientConfig = serde_json::from_value(json!({
        "url": format!("https://127.0.0.1:{port}/"),
        "caBundle": base64::engine::general_purpose::STANDARD.encode(&ca),
    }))
    .unwrap();
    let t = client::target(&cc, Duration::from_secs(1), &deps)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = deps
        .client
        .post(&t, b"{}".to_vec(), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(
        err,
        format!("Post \"https://127.0.0.1:{port}/?timeout=1s\": context deadline exceeded")
    );
}

#[test]
fn match_conditions_skip_or_fail_by_the_failure_policy() {
    use super::matching::conditions_match;
    let reg = Registry::new();
    let cms = reg.get("", "v1", "configmaps").unwrap();
    let a = attrs(cms, Operation::Create, "", "default");
    let obj = json!({"metadata": {"name": "x", "labels": {"skip": "yes"}}});
    let r = Request::new(&a, Some(&obj), None);
    let conds =
        |c: Value, policy: &str| hook(json!({"matchConditions": c, "failurePolicy": policy}));
    let skip = json!([{"name": "skip", "expression": "!('skip' in object.metadata.labels)"}]);
    assert!(!conditions_match(&conds(skip, "Fail"), &r, None).unwrap());
    // The apiserver's own writes are system:apiserver's; the request is the review's.
    let me = json!([{"name": "me", "expression": "request.userInfo.username == 'system:apiserver' && request.operation == 'CREATE' && request.namespace == 'default' && oldObject == null"}]);
    assert!(conditions_match(&conds(me, "Fail"), &r, None).unwrap());
    let broken = json!([{"name": "broken", "expression": "object.spec.x == 1"}]);
    let e = conditions_match(&conds(broken.clone(), "Fail"), &r, None).unwrap_err();
    assert_eq!(e.code, 403);
    assert!(
        e.message
            .contains("configmaps \"x\" is forbidden: expression 'object.spec.x == 1' resulted in error: no such key: spec"),
        "{}",
        e.message
    );
    assert!(!conditions_match(&conds(broken, "Ignore"), &r, None).unwrap());
}

/// Two served versions of a custom resource, v1 and v1beta1.
fn gadgets() -> Vec<crate::registry::ResourceInfo> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let version = |name: &str, storage: bool| {
        json!({"name": name, "served": true, "storage": storage,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}})
    };
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "kind": "Gadget"},
            "versions": [version("v1beta1", false), version("v1", true)]}
    }))
    .unwrap();
    crate::apiextensions::crd::describe(&crd, &crd.spec.names, None).unwrap()
}

#[test]
fn equivalent_rules_match_other_versions_and_see_the_write_there() {
    let infos = gadgets();
    let v1 = infos.iter().find(|i| i.version == "v1").unwrap();
    let a = attrs(v1, Operation::Create, "", "default");
    let r = |version: &str| {
        rule(
            json!({"operations": ["CREATE"], "apiGroups": ["example.com"], "apiVersions": [version], "resources": ["gadgets"]}),
        )
    };
    use super::matching::invocation_version;
    assert_eq!(invocation_version(&[r("v1")], true, &a), Some("v1"));
    assert_eq!(
        invocation_version(&[r("v1beta1")], true, &a),
        Some("v1beta1")
    );
    assert_eq!(invocation_version(&[r("v1beta1")], false, &a), None);
    assert_eq!(invocation_version(&[r("v2")], true, &a), None);
    // An earlier rule naming the other version does not shadow one naming the own.
    assert_eq!(
        invocation_version(&[r("v1beta1"), r("v1")], true, &a),
        Some("v1")
    );

    let obj = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "x"}});
    let own = Request::new(&a, Some(&obj), None);
    let seen = Converted::new(&own, "v1beta1").unwrap();
    let review: Value =
        serde_json::from_slice(&review::request("v1", "u", &seen.request())).unwrap();
    let req = &review["request"];
    assert_eq!(req["object"]["apiVersion"], "example.com/v1beta1");
    assert_eq!(req["kind"]["version"], "v1beta1");
    assert_eq!(req["resource"]["version"], "v1beta1");
    assert_eq!(req["requestKind"]["version"], "v1");
    assert_eq!(req["requestResource"]["version"], "v1");
}
