//! `spec.conversion.strategy: Webhook` against the real apiserver and etcd,
//! driven by the real kubectl: this process serves an HTTPS conversion
//! webhook on loopback (its own CA, handed over as `caBundle`) that moves
//! v1's `spec.size` to v2's `spec.dimensions.size` and back. Objects
//! created in either version are stored in v1 and read, listed and
//! watched in v2 converted, and an admission webhook for v2 sees a write
//! at v1 converted; with the webhook gone, v2 reads and writes
//! fail with upstream's conversion error (a watch gets an ERROR event)
//! while v1 still reads, and the CRD can still be deleted.

use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use integration_tests::kubectl::stderr;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_failure, expect_success};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, WatchEvent, WatchParams};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(20);

struct Webhook {
    port: u16,
    ca_bundle: String,
    /// Aborting it closes the listener: the webhook is down.
    server: tokio::task::JoinHandle<()>,
}

/// Starts the webhook server: a CA, a certificate for 127.0.0.1, hyper over rustls.
async fn serve() -> Webhook {
    let (config, ca_pem) = integration_tests::pki::loopback_server_tls();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(convert);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Webhook {
        port,
        ca_bundle: base64::engine::general_purpose::STANDARD.encode(ca_pem),
        server,
    }
}

/// Converts each object of a ConversionReview between v1 and v2.
async fn convert(
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let review: Value = serde_json::from_slice(&body).unwrap_or_default();
    let request = &review["request"];
    if path == "/validate" {
        // Refuses, saying what it saw.
        let answer = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {
                "uid": request["uid"],
                "allowed": false,
                "status": {"code": 400, "message": format!("saw {} {}", request["object"]["apiVersion"], request["object"]["spec"])},
            },
        });
        return Ok(hyper::Response::new(Full::new(Bytes::from(
            answer.to_string(),
        ))));
    }
    let desired = request["desiredAPIVersion"].as_str().unwrap_or("");
    let converted: Vec<Value> = request["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            let mut o = o.clone();
            let size = o["spec"]["size"]
                .as_i64()
                .or(o["spec"]["dimensions"]["size"].as_i64());
            o["spec"] = match desired {
                "example.com/v2" => json!({"dimensions": {"size": size}}),
                _ => json!({"size": size}),
            };
            o["apiVersion"] = json!(desired);
            o
        })
        .collect();
    let answer = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "response": {
            "uid": request["uid"],
            "result": {"status": "Success"},
            "convertedObjects": converted,
        },
    });
    Ok(hyper::Response::new(Full::new(Bytes::from(
        answer.to_string(),
    ))))
}

fn crd(port: u16, ca: &str) -> String {
    format!(
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: gadgets.example.com}}
spec:
  group: example.com
  scope: Namespaced
  names: {{plural: gadgets, singular: gadget, kind: Gadget}}
  conversion:
    strategy: Webhook
    webhook:
      clientConfig: {{url: \"https://127.0.0.1:{port}/convert\", caBundle: \"{ca}\"}}
      conversionReviewVersions: [v1]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {{type: object, properties: {{size: {{type: integer}}}}}}
  - name: v2
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              dimensions: {{type: object, properties: {{size: {{type: integer}}}}}}
"
    )
}

/// The resourceVersion of a list at v1 (no conversion): a watch from there
/// sees only what comes next.
async fn latest(cluster: &Cluster) -> String {
    let out = cluster
        .kubectl(&[
            "get",
            "--raw",
            "/apis/example.com/v1/namespaces/default/gadgets",
        ])
        .await;
    expect_success(&out, "list at v1");
    let list: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string()
}

async fn get_json(cluster: &Cluster, resource: &str, name: &str) -> Value {
    let out = cluster
        .kubectl(&["get", resource, name, "-o", "json"])
        .await;
    expect_success(&out, &format!("get {resource} {name}"));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversion_webhook_converts_reads_writes_lists_and_watches() {
    let webhook = serve().await;
    let cluster = Cluster::start().await.expect("cluster starts");

    // The CRD's validation: Webhook needs a client config and review versions.
    let bare = crd(webhook.port, &webhook.ca_bundle)
        .replace(
            &format!(
                "      clientConfig: {{url: \"https://127.0.0.1:{}/convert\", caBundle: \"{}\"}}\n",
                webhook.port, webhook.ca_bundle
            ),
            "",
        )
        .replace("[v1]", "[v9]");
    let err = expect_failure(
        &cluster.kubectl_stdin(&["create", "-f", "-"], &bare).await,
        "a Webhook conversion without a client config",
    );
    assert!(
        err.contains(
            "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook"
        ),
        "{err}"
    );
    assert!(
        err.contains("must include at least one of v1, v1beta1"),
        "{err}"
    );

    expect_success(
        &cluster
            .kubectl_stdin(
                &["apply", "-f", "-"],
                &crd(webhook.port, &webhook.ca_bundle),
            )
            .await,
        "crd",
    );
    cluster.crd_established("gadgets.example.com", WITHIN).await;
    eventually("v2 is served", WITHIN, async || {
        let out = cluster.kubectl(&["get", "gadgets.v2.example.com"]).await;
        (out.status.success(), stderr(&out))
    })
    .await;

    // A watch at v2, from now.
    let client = cluster.client().await;
    let gvk = GroupVersionKind::gvk("example.com", "v2", "Gadget");
    let v2: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &ApiResource::from_gvk(&gvk));
    let mut watch = v2
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch at v2")
        .boxed();

    // Created at v1, read at v2.
    let small = "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: small, namespace: default, labels: {a: b}}\nspec: {size: 3}\n";
    expect_success(
        &cluster.kubectl_stdin(&["create", "-f", "-"], small).await,
        "create small at v1",
    );
    let got = get_json(&cluster, "gadgets.v2.example.com", "small").await;
    assert_eq!(got["apiVersion"], "example.com/v2");
    assert_eq!(got["spec"], json!({"dimensions": {"size": 3}}), "{got}");
    assert_eq!(got["metadata"]["labels"], json!({"a": "b"}));
    assert!(got["metadata"]["uid"].is_string(), "{got}");

    // The watch at v2 sees it converted.
    let event = integration_tests::wait::next_event(&mut watch, WITHIN).await;
    match event {
        WatchEvent::Added(o) => {
            assert_eq!(
                o.types.as_ref().map(|t| t.api_version.as_str()),
                Some("example.com/v2")
            );
            assert_eq!(o.data["spec"], json!({"dimensions": {"size": 3}}));
        }
        other => panic!("{other:?}"),
    }

    // An admission webhook for v2 only (matchPolicy Equivalent) sees a
    // write at v1 converted by the conversion webhook.
    let validating = format!(
        "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {{name: gadgets-v2}}
webhooks:
- name: gadgets-v2.example.com
  clientConfig: {{url: \"https://127.0.0.1:{}/validate\", caBundle: \"{}\"}}
  rules:
  - {{operations: [CREATE], apiGroups: [example.com], apiVersions: [v2], resources: [gadgets]}}
  objectSelector: {{matchLabels: {{check: \"yes\"}}}}
  sideEffects: None
  admissionReviewVersions: [v1]
",
        webhook.port, webhook.ca_bundle
    );
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], &validating)
            .await,
        "validating webhook",
    );
    let checked = "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: checked, namespace: default, labels: {check: \"yes\"}}\nspec: {size: 5}\n";
    eventually("the admission webhook sees v2", WITHIN, async || {
        let out = cluster.kubectl_stdin(&["create", "-f", "-"], checked).await;
        let err = stderr(&out);
        (
            !out.status.success()
                && err.contains(r#"saw "example.com/v2" {"dimensions":{"size":5}}"#),
            err,
        )
    })
    .await;
    expect_success(
        &cluster
            .kubectl(&["delete", "validatingwebhookconfiguration", "gadgets-v2"])
            .await,
        "remove the validating webhook",
    );

    // Created at v2, read at v1, stored as v1.
    let big = "apiVersion: example.com/v2\nkind: Gadget\nmetadata: {name: big, namespace: default}\nspec: {dimensions: {size: 7}}\n";
    let out = cluster
        .kubectl_stdin(&["create", "-f", "-", "-o", "json"], big)
        .await;
    expect_success(&out, "create big at v2");
    let created: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(created["apiVersion"], "example.com/v2");
    assert_eq!(created["spec"], json!({"dimensions": {"size": 7}}));
    let got = get_json(&cluster, "gadgets.v1.example.com", "big").await;
    assert_eq!(got["apiVersion"], "example.com/v1");
    assert_eq!(got["spec"], json!({"size": 7}), "{got}");
    let mut etcd = cluster.etcd_client().await.expect("etcd client");
    let stored = etcd
        .get("/registry/example.com/gadgets/default/big", None)
        .await
        .expect("etcd get");
    let stored: Value = serde_json::from_slice(stored.kvs()[0].value()).expect("JSON in etcd");
    assert_eq!(stored["apiVersion"], "example.com/v1");
    assert_eq!(stored["spec"], json!({"size": 7}), "{stored}");

    // A list at v2: every item converted.
    let out = cluster
        .kubectl(&["get", "gadgets.v2.example.com", "-o", "json"])
        .await;
    expect_success(&out, "list at v2");
    let list: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut sizes: Vec<(String, Value)> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            assert_eq!(i["apiVersion"], "example.com/v2", "{i}");
            (
                i["metadata"]["name"].as_str().unwrap_or("").to_string(),
                i["spec"]["dimensions"]["size"].clone(),
            )
        })
        .collect();
    sizes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        sizes,
        [
            ("big".to_string(), json!(7)),
            ("small".to_string(), json!(3))
        ]
    );
    // The watch saw big too, converted (it was stored as v1).
    let event = integration_tests::wait::next_event(&mut watch, WITHIN).await;
    match event {
        WatchEvent::Added(o) => assert_eq!(o.data["spec"], json!({"dimensions": {"size": 7}})),
        other => panic!("{other:?}"),
    }
    drop(watch);

    // The webhook down: v2 fails with the conversion error, v1 still reads.
    let mut watch = v2
        .watch(&WatchParams::default(), &latest(&cluster).await)
        .await
        .expect("watch at v2")
        .boxed();
    webhook.server.abort();
    let _ = webhook.server.await;
    let lonely = small.replace("name: small", "name: lonely");
    expect_success(
        &cluster.kubectl_stdin(&["create", "-f", "-"], &lonely).await,
        "create at v1 without the webhook",
    );
    // A change the watch cannot convert is an ERROR event, not lost.
    let event = integration_tests::wait::next_event(&mut watch, WITHIN).await;
    match event {
        WatchEvent::Error(e) => assert!(
            e.message
                .contains("conversion webhook for example.com/v1, Kind=Gadget failed"),
            "{e:?}"
        ),
        WatchEvent::Added(o) | WatchEvent::Modified(o) => {
            panic!("{:?} {}", o.metadata.name, o.data)
        }
        other => panic!("{other:?}"),
    }
    drop(watch);
    let out = cluster
        .kubectl(&["get", "gadgets.v2.example.com", "small", "-o", "json"])
        .await;
    let err = expect_failure(&out, "read at v2 without the webhook");
    assert!(
        err.contains(
            "conversion webhook for example.com/v1, Kind=Gadget failed: Post \"https://127.0.0.1:"
        ),
        "{err}"
    );
    let got = get_json(&cluster, "gadgets.v1.example.com", "small").await;
    assert_eq!(got["spec"], json!({"size": 3}));
    let out = cluster
        .kubectl_stdin(
            &["create", "-f", "-"],
            &big.replace("name: big", "name: refused"),
        )
        .await;
    let err = expect_failure(&out, "create at v2 without the webhook");
    assert!(
        err.contains("conversion webhook for example.com/v2, Kind=Gadget failed"),
        "{err}"
    );
    let out = cluster
        .kubectl(&["get", "gadgets.v1.example.com", "refused"])
        .await;
    expect_failure(&out, "nothing was stored");

    // The CRD still goes: its objects are deleted in the storage version.
    expect_success(
        &cluster
            .kubectl(&[
                "delete",
                "crd",
                "gadgets.example.com",
                "--wait=true",
                "--timeout=30s",
            ])
            .await,
        "delete the CRD without the webhook",
    );
}
