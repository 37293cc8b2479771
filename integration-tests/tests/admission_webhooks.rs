//! Dynamic admission control against the real apiserver and etcd, driven
//! by the real kubectl: this process serves HTTPS webhooks on loopback
//! (its own CA, handed over as `caBundle`) and registers them with
//! `url:`. A mutating webhook's JSONPatch is stored, with reinvocation; a
//! validating denial reaches kubectl; object and namespace selectors
//! exclude; unreachable and slow webhooks fail by their failure policy;
//! a dry run refuses webhooks with side effects.

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use integration_tests::fixtures::gadgets_crd;
use integration_tests::kubectl::stderr;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(20);
const LABEL: &str = "webhook.example.com/mutated";

/// Calls per path, for the reinvocation check.
type Calls = Arc<Mutex<HashMap<String, usize>>>;

struct Webhooks {
    port: u16,
    ca_bundle: String,
    calls: Calls,
}

/// Starts the webhook server: a CA, a certificate for 127.0.0.1, hyper over rustls.
async fn serve() -> Webhooks {
    let (config, ca_pem) = integration_tests::pki::loopback_server_tls();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let calls = Calls::default();
    let counted = calls.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, calls) = (acceptor.clone(), counted.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req| answer(req, calls.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Webhooks {
        port,
        ca_bundle: base64::engine::general_purpose::STANDARD.encode(ca_pem),
        calls,
    }
}

/// What each path does with an AdmissionReview.
async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    calls: Calls,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    *calls.lock().unwrap().entry(path.clone()).or_default() += 1;
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let review: Value = serde_json::from_slice(&body).unwrap_or_default();
    let request = &review["request"];
    let mut response = json!({"uid": request["uid"], "allowed": true});
    match path.as_str() {
        "/label" => {
            let patch = if request["object"]["metadata"]["labels"].is_object() {
                json!([{"op": "add", "path": format!("/metadata/labels/{}", LABEL.replace('/', "~1")), "value": "yes"}])
            } else {
                json!([{"op": "add", "path": "/metadata/labels", "value": {LABEL: "yes"}}])
            };
            response["patch"] =
                json!(base64::engine::general_purpose::STANDARD.encode(patch.to_string()));
            response["patchType"] = json!("JSONPatch");
            response["warnings"] = json!(["mutated by the test webhook"]);
        }
        "/deny" => {
            response["allowed"] = json!(false);
            response["status"] = json!({"code": 403, "reason": "Forbidden", "message": "the test webhook refuses this"});
        }
        "/sleep" => tokio::time::sleep(Duration::from_secs(4)).await,
        // Says which versions it was called with.
        "/versions" => {
            let message = format!(
                "kind={} resource={} requestKind={} object={}",
                request["kind"]["version"].as_str().unwrap_or(""),
                request["resource"]["version"].as_str().unwrap_or(""),
                request["requestKind"]["version"].as_str().unwrap_or(""),
                request["object"]["apiVersion"].as_str().unwrap_or(""),
            );
            response["allowed"] = json!(false);
            response["status"] = json!({"code": 400, "message": message});
        }
        _ => {}
    }
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
    Ok(hyper::Response::new(Full::new(Bytes::from(
        review.to_string(),
    ))))
}

/// One webhook of `kind` for configmaps in namespace `ns`, as YAML.
fn configuration(kind: &str, name: &str, ns: &str, url: &str, ca: &str, extra: &str) -> String {
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: {kind}\nmetadata: {{name: {name}}}\nwebhooks:\n- name: {name}.example.com\n  clientConfig: {{url: \"{url}\", caBundle: \"{ca}\"}}\n  rules:\n  - {{operations: [CREATE, UPDATE], apiGroups: [\"\"], apiVersions: [v1], resources: [configmaps]}}\n  namespaceSelector: {{matchLabels: {{webhook-test: {ns}}}}}\n  sideEffects: None\n  admissionReviewVersions: [v1]\n{extra}"
    )
}

async fn namespace(cluster: &Cluster, name: &str, labelled: bool) {
    let labels = if labelled {
        format!("labels: {{webhook-test: {name}}}")
    } else {
        String::new()
    };
    let yaml = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  {labels}\n");
    expect_success(
        &cluster.kubectl_stdin(&["create", "-f", "-"], &yaml).await,
        name,
    );
}

async fn apply(cluster: &Cluster, yaml: &str) {
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], yaml).await,
        "apply",
    );
}

async fn create_cm(cluster: &Cluster, ns: &str, name: &str, extra: &[&str]) -> Output {
    let mut args = vec!["create", "configmap", name, "-n", ns];
    args.extend_from_slice(extra);
    cluster.kubectl(&args).await
}

/// Creates configmaps `probe-N` in `ns` until one fails with (or, for an
/// empty `want`, is admitted) as a newly registered webhook makes it: the
/// apiserver sees configurations a moment after they are written.
async fn until_refused(cluster: &Cluster, ns: &str, want: &str) -> String {
    let mut n = 0;
    eventually(
        &format!("a write in {ns} refused with {want:?}"),
        WITHIN,
        async || {
            n += 1;
            let out = create_cm(cluster, ns, &format!("probe-{n}"), &[]).await;
            let err = stderr(&out);
            (!out.status.success() && err.contains(want), err)
        },
    )
    .await
}

async fn until_admitted(cluster: &Cluster, ns: &str) {
    let mut n = 100;
    eventually(&format!("a write in {ns} admitted"), WITHIN, async || {
        n += 1;
        let out = create_cm(cluster, ns, &format!("probe-{n}"), &[]).await;
        (out.status.success(), stderr(&out))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_mutate_validate_and_fail_by_their_policy() {
    let hooks = serve().await;
    let cluster = Cluster::start().await.expect("cluster starts");
    let url = |path: &str| format!("https://127.0.0.1:{}{path}", hooks.port);
    let ca = hooks.ca_bundle.as_str();
    for (ns, labelled) in [
        ("mutate", true),
        ("deny", true),
        ("other", false),
        ("down", true),
        ("slow", true),
        ("dry", true),
    ] {
        namespace(&cluster, ns, labelled).await;
    }

    // A mutating webhook's patch is stored; an IfNeeded webhook before it
    // is called again because the later one changed the object.
    let m = "MutatingWebhookConfiguration";
    apply(
        &cluster,
        &configuration(
            m,
            "a-count",
            "mutate",
            &url("/count"),
            ca,
            "  reinvocationPolicy: IfNeeded\n",
        ),
    )
    .await;
    apply(
        &cluster,
        &configuration(m, "b-label", "mutate", &url("/label"), ca, ""),
    )
    .await;
    let mut n = 0;
    eventually("configmaps are labelled", WITHIN, async || {
        n += 1;
        let name = format!("probe-{n}");
        expect_success(&create_cm(&cluster, "mutate", &name, &[]).await, "probe");
        let labels = cluster
            .get_jsonpath(&["configmap", &name, "-n", "mutate"], "{.metadata.labels}")
            .await;
        (labels.contains(LABEL), labels)
    })
    .await;
    hooks.calls.lock().unwrap().clear();
    let out = create_cm(&cluster, "mutate", "labelled", &[]).await;
    expect_success(&out, "labelled");
    assert!(
        stderr(&out).contains("mutated by the test webhook"),
        "the webhook's warning reaches kubectl: {}",
        stderr(&out)
    );
    let calls = hooks.calls.lock().unwrap().clone();
    assert_eq!(calls.get("/count"), Some(&2), "reinvoked once: {calls:?}");
    assert_eq!(calls.get("/label"), Some(&1), "{calls:?}");
    let stored = cluster
        .get_jsonpath(
            &["configmap", "labelled", "-n", "mutate"],
            "{.metadata.labels}",
        )
        .await;
    assert!(stored.contains(LABEL), "stored labels: {stored}");
    // A dry run reaches webhooks without side effects and shows their patch.
    let out = create_cm(
        &cluster,
        "mutate",
        "dry",
        &["--dry-run=server", "-o", "json"],
    )
    .await;
    let dry: Value = serde_json::from_str(&expect_success(&out, "dry run")).unwrap();
    assert_eq!(dry["metadata"]["labels"][LABEL], "yes");

    // A denial reaches kubectl with the webhook's message; the object
    // selector leaves out what it does not select, the namespace selector
    // other namespaces.
    let v = "ValidatingWebhookConfiguration";
    let skip = "  objectSelector: {matchExpressions: [{key: skip, operator: DoesNotExist}]}\n";
    apply(
        &cluster,
        &configuration(v, "deny", "deny", &url("/deny"), ca, skip),
    )
    .await;
    let err = until_refused(&cluster, "deny", "denied the request").await;
    assert!(
        err.contains("admission webhook \"deny.example.com\" denied the request: the test webhook refuses this"),
        "{err}"
    );
    let out = cluster
        .kubectl_stdin(
            &["create", "-f", "-"],
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: skipped, namespace: deny, labels: {skip: 'yes'}}\n",
        )
        .await;
    expect_success(&out, "the object selector excludes labelled configmaps");
    expect_success(
        &create_cm(&cluster, "other", "elsewhere", &[]).await,
        "other namespace",
    );
    // Updates are refused too, and deleting configurations is never sent to webhooks.
    let out = cluster
        .kubectl(&["label", "configmap", "skipped", "-n", "deny", "skip-"])
        .await;
    assert!(
        stderr(&out).contains("denied the request"),
        "{}",
        stderr(&out)
    );

    // An unreachable webhook refuses with failurePolicy Fail, admits with Ignore.
    let down = configuration(v, "down", "down", "https://127.0.0.1:1/", ca, "");
    apply(&cluster, &down).await;
    let err = until_refused(&cluster, "down", "failed calling webhook").await;
    assert!(
        err.contains("Internal error occurred: failed calling webhook \"down.example.com\": failed to call webhook: Post \"https://127.0.0.1:1/?timeout=10s\""),
        "{err}"
    );
    apply(&cluster, &format!("{down}  failurePolicy: Ignore\n")).await;
    until_admitted(&cluster, "down").await;

    // A webhook slower than its timeout fails by the timeout.
    apply(
        &cluster,
        &configuration(
            v,
            "slow",
            "slow",
            &url("/sleep"),
            ca,
            "  timeoutSeconds: 1\n",
        ),
    )
    .await;
    let err = until_refused(&cluster, "slow", "failed calling webhook").await;
    assert!(
        err.contains("?timeout=1s\": context deadline exceeded"),
        "the error says the call timed out: {err}"
    );

    // sideEffects Some cannot be written through the API any more, but
    // objects stored by older apiservers keep it: a dry run refuses them.
    let mut some: Value =
        serde_yaml_ng::from_str(&configuration(v, "some", "dry", &url("/allow"), ca, "")).unwrap();
    some["webhooks"][0]["sideEffects"] = json!("Some");
    some["webhooks"][0]["failurePolicy"] = json!("Fail");
    some["webhooks"][0]["timeoutSeconds"] = json!(10);
    some["metadata"]["uid"] = json!("6d6c5e8e-0000-4000-8000-000000000001");
    some["metadata"]["creationTimestamp"] = json!("2024-01-01T00:00:00Z");
    let mut etcd = cluster.etcd_client().await.expect("etcd client");
    etcd.put(
        "/registry/validatingwebhookconfigurations/some",
        some.to_string(),
        None,
    )
    .await
    .expect("etcd put");
    let mut n = 200;
    let err = eventually("a dry run refused", WITHIN, async || {
        n += 1;
        let out = create_cm(
            &cluster,
            "dry",
            &format!("probe-{n}"),
            &["--dry-run=server"],
        )
        .await;
        (!out.status.success(), stderr(&out))
    })
    .await;
    assert!(
        err.contains("admission webhook \"some.example.com\" does not support dry run"),
        "{err}"
    );
    expect_success(
        &create_cm(&cluster, "dry", "real", &[]).await,
        "not a dry run",
    );

    // The configurations go whatever their webhooks say.
    for (kind, name) in [
        ("validatingwebhookconfiguration", "down"),
        ("validatingwebhookconfiguration", "deny"),
        ("mutatingwebhookconfiguration", "b-label"),
    ] {
        expect_success(&cluster.kubectl(&["delete", kind, name]).await, name);
    }
    let table = expect_success(
        &cluster
            .kubectl(&["get", "mutatingwebhookconfigurations"])
            .await,
        "table",
    );
    assert!(
        table.contains("WEBHOOKS") && table.contains("a-count"),
        "{table}"
    );
}

/// A configmap named `name` in `ns` with `labels` (YAML flow map).
async fn create_labelled(cluster: &Cluster, ns: &str, name: &str, labels: &str) -> Output {
    let yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {ns}, labels: {labels}}}\n"
    );
    cluster.kubectl_stdin(&["create", "-f", "-"], &yaml).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_conditions_exclude_requests_from_webhooks() {
    let hooks = serve().await;
    let cluster = Cluster::start().await.expect("cluster starts");
    let url = format!("https://127.0.0.1:{}/deny", hooks.port);
    namespace(&cluster, "cond-skip", true).await;
    let v = "ValidatingWebhookConfiguration";
    // A condition that does not compile is refused with upstream's message.
    let bad = configuration(
        v,
        "cond-bad",
        "cond-skip",
        &url,
        &hooks.ca_bundle,
        "  matchConditions:\n  - {name: int, expression: '1 + 1'}\n",
    );
    let out = cluster.kubectl_stdin(&["apply", "-f", "-"], &bad).await;
    assert!(
        stderr(&out).contains("webhooks[0].matchConditions[0].expression: Invalid value: \"1 + 1\": must evaluate to bool but got int"),
        "{}",
        stderr(&out)
    );
    // The authorizer library is declared too (the admin may create).
    let conditions = "  matchConditions:\n  - {name: not-skipped, expression: \"!object.metadata.name.startsWith('skip-')\"}\n  \
        - {name: authorized, expression: \"authorizer.requestResource.check('create').allowed()\"}\n";
    apply(
        &cluster,
        &configuration(
            v,
            "cond-skip",
            "cond-skip",
            &url,
            &hooks.ca_bundle,
            conditions,
        ),
    )
    .await;
    // The condition is true for `probe-N`: the webhook is called and denies.
    until_refused(&cluster, "cond-skip", "denied the request").await;
    let calls = hooks.calls.lock().unwrap().get("/deny").copied();
    // False for `skip-...`: the webhook is not called at all.
    expect_success(
        &create_cm(&cluster, "cond-skip", "skip-me", &[]).await,
        "a configmap the condition excludes",
    );
    assert_eq!(hooks.calls.lock().unwrap().get("/deny").copied(), calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_conditions_that_match_call_the_webhook_and_errors_follow_the_failure_policy() {
    let hooks = serve().await;
    let cluster = Cluster::start().await.expect("cluster starts");
    let url = format!("https://127.0.0.1:{}/deny", hooks.port);
    namespace(&cluster, "cond-match", true).await;
    namespace(&cluster, "cond-error", true).await;
    let v = "ValidatingWebhookConfiguration";
    let gold = "  matchConditions:\n  - {name: gold, expression: \"has(object.metadata.labels) && object.metadata.labels.tier == 'gold'\"}\n";
    apply(
        &cluster,
        &configuration(v, "cond-match", "cond-match", &url, &hooks.ca_bundle, gold),
    )
    .await;
    let mut n = 0;
    let err = eventually("a gold configmap refused", WITHIN, async || {
        n += 1;
        let out =
            create_labelled(&cluster, "cond-match", &format!("gold-{n}"), "{tier: gold}").await;
        (!out.status.success(), stderr(&out))
    })
    .await;
    assert!(
        err.contains("admission webhook \"cond-match.example.com\" denied the request: the test webhook refuses this"),
        "{err}"
    );
    expect_success(
        &create_labelled(&cluster, "cond-match", "silver", "{tier: silver}").await,
        "a configmap the condition does not match",
    );

    // A condition that fails to evaluate refuses the write with failurePolicy
    // Fail (upstream's Forbidden), and skips the webhook with Ignore.
    let broken = "  matchConditions:\n  - {name: data, expression: \"object.data.key == 'x'\"}\n";
    let config = configuration(
        v,
        "cond-error",
        "cond-error",
        &url,
        &hooks.ca_bundle,
        broken,
    );
    apply(&cluster, &config).await;
    let err = until_refused(&cluster, "cond-error", "resulted in error").await;
    assert!(
        err.contains(
            "is forbidden: expression 'object.data.key == 'x'' resulted in error: no such key: data"
        ),
        "{err}"
    );
    apply(&cluster, &format!("{config}  failurePolicy: Ignore\n")).await;
    until_admitted(&cluster, "cond-error").await;
}

/// A webhook for gadgets in `versions`, on objects labelled `hook=<name>`.
fn gadget_hook(
    kind: &str,
    name: &str,
    url: &str,
    ca: &str,
    versions: &str,
    policy: &str,
) -> String {
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: {kind}\nmetadata: {{name: {name}}}\nwebhooks:\n- name: {name}.example.com\n  clientConfig: {{url: \"{url}\", caBundle: \"{ca}\"}}\n  rules:\n  - {{operations: [CREATE], apiGroups: [example.com], apiVersions: [{versions}], resources: [gadgets]}}\n  matchPolicy: {policy}\n  objectSelector: {{matchLabels: {{hook: {name}}}}}\n  sideEffects: None\n  admissionReviewVersions: [v1]\n"
    )
}

/// `matchPolicy: Equivalent` (the default): a webhook registered for a
/// custom resource's v1beta1 is called for writes in v1, with the object
/// converted to v1beta1 and `requestKind` saying v1; its patch lands on
/// the stored v1 object. `Exact` leaves such writes alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivalent_match_policy_calls_webhooks_in_their_version() {
    let hooks = serve().await;
    let cluster = Cluster::start().await.expect("cluster starts");
    let url = |path: &str| format!("https://127.0.0.1:{}{path}", hooks.port);
    let ca = hooks.ca_bundle.as_str();
    apply(&cluster, &gadgets_crd(&["v1", "v1beta1"])).await;
    cluster.crd_established("gadgets.example.com", WITHIN).await;
    for (kind, name, path, policy) in [
        (
            "ValidatingWebhookConfiguration",
            "versions",
            "/versions",
            "Equivalent",
        ),
        (
            "MutatingWebhookConfiguration",
            "label",
            "/label",
            "Equivalent",
        ),
        ("ValidatingWebhookConfiguration", "exact", "/deny", "Exact"),
    ] {
        apply(
            &cluster,
            &gadget_hook(kind, name, &url(path), ca, "v1beta1", policy),
        )
        .await;
    }
    let gadget = |name: &str, hook: &str| {
        format!(
            "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {{name: {name}, labels: {{hook: {hook}}}}}\n"
        )
    };
    let mut n = 0;
    let err = eventually("the v1beta1 webhook sees a v1 write", WITHIN, async || {
        n += 1;
        let out = cluster
            .kubectl_stdin(
                &["create", "-f", "-"],
                &gadget(&format!("v-{n}"), "versions"),
            )
            .await;
        let err = stderr(&out);
        (err.contains("denied the request"), err)
    })
    .await;
    assert!(
        err.contains("kind=v1beta1 resource=v1beta1 requestKind=v1 object=example.com/v1beta1"),
        "{err}"
    );
    eventually(
        "the v1beta1 webhook's patch is stored",
        WITHIN,
        async || {
            n += 1;
            let name = format!("l-{n}");
            let out = cluster
                .kubectl_stdin(&["create", "-f", "-"], &gadget(&name, "label"))
                .await;
            if !out.status.success() {
                return (false, stderr(&out));
            }
            let got = cluster
                .get_jsonpath(&["gadget", &name], "{.apiVersion} {.metadata.labels}")
                .await;
            (
                got.contains(LABEL) && got.starts_with("example.com/v1 "),
                got,
            )
        },
    )
    .await;
    // Exact: the v1beta1 rule does not match a v1 write (the webhook would deny).
    let out = cluster
        .kubectl_stdin(&["create", "-f", "-"], &gadget("e", "exact"))
        .await;
    expect_success(&out, "an Exact webhook of another version is not called");
    assert_eq!(hooks.calls.lock().unwrap().get("/deny"), None);
}
