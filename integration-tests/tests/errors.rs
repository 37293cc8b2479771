//! Raw HTTPS requests that must fail with the right `metav1.Status`, plus
//! the authentication boundary (anonymous, bearer tokens).

use http::{Method, Request, StatusCode};
use integration_tests::Cluster;
use kube::client::Body;
use serde_json::{Value, json};

async fn start() -> Cluster {
    Cluster::start().await.expect("cluster starts")
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {} body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    /// Asserts a complete Failure `metav1.Status` whose code matches the HTTP
    /// status, and returns it.
    #[track_caller]
    fn expect_status(&self, code: u16, reason: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            code,
            "HTTP status; body: {}",
            self.text()
        );
        assert!(
            self.content_type.starts_with("application/json"),
            "content type {:?}",
            self.content_type
        );
        let status = self.json();
        assert_eq!(status["kind"], "Status", "{status}");
        assert_eq!(status["apiVersion"], "v1", "{status}");
        assert_eq!(status["status"], "Failure", "{status}");
        assert_eq!(status["code"], code, "{status}");
        assert_eq!(status["reason"], reason, "{status}");
        assert!(
            status["message"].as_str().is_some_and(|m| !m.is_empty()),
            "message: {status}"
        );
        // The typed form parses too.
        let typed: kube::core::Status =
            serde_json::from_value(status.clone()).expect("parses as kube Status");
        assert_eq!(typed.code, code);
        status
    }
}

async fn send(
    client: &kube::Client,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        request = request.header(http::header::CONTENT_TYPE, ct);
    }
    let request = request.body(Body::from(body)).expect("request");
    let response = tokio::time::timeout(std::time::Duration::from_secs(30), client.send(request))
        .await
        .unwrap_or_else(|_| panic!("{path}: no response within 30s"))
        .unwrap_or_else(|e| panic!("{path}: request failed: {e}"));
    let status = response.status();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response
        .into_body()
        .collect_bytes()
        .await
        .expect("response body")
        .to_vec();
    Reply {
        status,
        content_type,
        body,
    }
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn malformed_and_mismatched_bodies_are_bad_requests() {
    let cluster = start().await;
    let client = cluster.client().await;
    let json_ct = Some("application/json");

    let cases: &[(&str, &str, Vec<u8>)] = &[
        ("truncated JSON", CONFIGMAPS, br#"{"apiVersion": "v1", "kind": "#.to_vec()),
        ("not JSON at all", CONFIGMAPS, b"<html>".to_vec()),
        (
            "kind of another resource",
            CONFIGMAPS,
            serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}))
                .unwrap(),
        ),
        (
            "apiVersion of another group",
            CONFIGMAPS,
            serde_json::to_vec(
                &json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            )
            .unwrap(),
        ),
        (
            "ConfigMap posted to deployments",
            "/apis/apps/v1/namespaces/default/deployments",
            serde_json::to_vec(
                &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            )
            .unwrap(),
        ),
        (
            "wrong type for a field",
            CONFIGMAPS,
            serde_json::to_vec(
                &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": 1}}),
            )
            .unwrap(),
        ),
    ];
    for (name, path, body) in cases {
        let reply = send(&client, Method::POST, path, json_ct, body.clone()).await;
        eprintln!("{name}: {}", reply.text());
        reply.expect_status(400, "BadRequest");
    }

    // Namespace in the body different from the URL.
    let reply = send(
        &client,
        Method::POST,
        CONFIGMAPS,
        json_ct,
        serde_json::to_vec(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "kube-system"}
        }))
        .unwrap(),
    )
    .await;
    let status = reply.expect_status(400, "BadRequest");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("does not match the namespace"),
        "{status}"
    );

    // Name in the body different from the URL on update.
    send(
        &client,
        Method::POST,
        CONFIGMAPS,
        json_ct,
        serde_json::to_vec(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
        )
        .unwrap(),
    )
    .await;
    let reply = send(
        &client,
        Method::PUT,
        &format!("{CONFIGMAPS}/a"),
        json_ct,
        serde_json::to_vec(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}),
        )
        .unwrap(),
    )
    .await;
    reply.expect_status(400, "BadRequest");

    // An unsupported content type.
    let reply = send(
        &client,
        Method::POST,
        CONFIGMAPS,
        Some("text/plain"),
        b"hello".to_vec(),
    )
    .await;
    reply.expect_status(415, "UnsupportedMediaType");

    // A malformed merge patch.
    let reply = send(
        &client,
        Method::PATCH,
        &format!("{CONFIGMAPS}/a"),
        Some("application/merge-patch+json"),
        b"{not json".to_vec(),
    )
    .await;
    reply.expect_status(400, "BadRequest");
}

#[tokio::test]
async fn yaml_bodies_are_accepted() {
    let cluster = start().await;
    let client = cluster.client().await;
    let reply = send(
        &client,
        Method::POST,
        CONFIGMAPS,
        Some("application/yaml"),
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n".to_vec(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let created = reply.json();
    assert_eq!(created["metadata"]["name"], "from-yaml");
    assert_eq!(created["data"]["k"], "v");
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let cluster = start().await;
    let client = cluster.client().await;
    let not_found = [
        "/api/v1/namespaces/default/frobnicators",
        "/api/v1/frobnicators",
        "/apis/nope.example.com/v1/things",
        "/apis/apps/v1/namespaces/default/frobnicators",
        "/apis/apps/v9/deployments",
    ];
    for path in not_found {
        let reply = send(&client, Method::GET, path, None, Vec::new()).await;
        eprintln!("{path}: {}", reply.text());
        reply.expect_status(404, "NotFound");
    }

    let reply = send(
        &client,
        Method::GET,
        &format!("{CONFIGMAPS}/missing"),
        None,
        Vec::new(),
    )
    .await;
    let status = reply.expect_status(404, "NotFound");
    assert_eq!(status["message"], "configmaps \"missing\" not found");
    assert_eq!(status["details"]["name"], "missing");
    assert_eq!(status["details"]["kind"], "configmaps");

    // POST to a named object is not a route.
    let reply = send(
        &client,
        Method::POST,
        &format!("{CONFIGMAPS}/x"),
        Some("application/json"),
        b"{}".to_vec(),
    )
    .await;
    reply.expect_status(405, "MethodNotAllowed");
}

#[tokio::test]
async fn oversized_body_is_rejected() {
    let cluster = start().await;
    let client = cluster.client().await;
    // 3.5 MiB of data in an otherwise valid ConfigMap; the limit is 3 MiB.
    let big = "x".repeat(3 * 1024 * 1024 + 512 * 1024);
    let body = serde_json::to_vec(&json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "big"},
        "data": {"k": big}
    }))
    .unwrap();
    // kubectl (HTTP/2) prints the Status message.
    let file = cluster.dir().join("big.json");
    std::fs::write(&file, &body).unwrap();
    let out = cluster
        .kubectl(&["create", "-f", file.to_str().unwrap()])
        .await;
    let stderr = integration_tests::expect_failure(&out, "kubectl create of 3.5 MiB");
    assert!(
        stderr.contains("Error from server (RequestEntityTooLarge)")
            && stderr.contains("Request entity too large: limit is 3145728"),
        "{stderr}"
    );

    // kube-rs (HTTP/1.1) gets the Status too, not a dropped connection.
    let reply = send(
        &client,
        Method::POST,
        CONFIGMAPS,
        Some("application/json"),
        body,
    )
    .await;
    reply.expect_status(413, "RequestEntityTooLarge");

    // The server is still fine afterwards.
    let reply = send(&client, Method::GET, CONFIGMAPS, None, Vec::new()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn authentication_boundary() {
    let cluster = start().await;
    let anonymous = cluster.anonymous_client().await;

    for path in [
        "/api",
        "/api/v1/namespaces",
        "/apis",
        CONFIGMAPS,
        "/metrics",
    ] {
        let reply = send(&anonymous, Method::GET, path, None, Vec::new()).await;
        let status = reply.expect_status(401, "Unauthorized");
        assert_eq!(status["message"], "Unauthorized", "{path}");
    }
    for path in ["/healthz", "/livez", "/readyz"] {
        let reply = send(&anonymous, Method::GET, path, None, Vec::new()).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
        assert_eq!(reply.text(), "ok", "{path}");
    }
    let reply = send(&anonymous, Method::GET, "/version", None, Vec::new()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let version = reply.json();
    for field in ["major", "minor", "gitVersion", "platform", "goVersion"] {
        assert!(version[field].is_string(), "{field} in {version}");
    }
    assert!(
        version["gitVersion"].as_str().unwrap().starts_with("v1."),
        "{version}"
    );

    // Bearer tokens from --token-auth-file.
    let admin = cluster.token_client(&cluster.pki().admin_token).await;
    let reply = send(&admin, Method::GET, CONFIGMAPS, None, Vec::new()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let bogus = cluster.token_client("not-a-real-token").await;
    let reply = send(&bogus, Method::GET, CONFIGMAPS, None, Vec::new()).await;
    reply.expect_status(401, "Unauthorized");
}

#[tokio::test]
async fn anonymous_requests_are_authorized_as_system_anonymous() {
    // With an authorizer other than AlwaysAllow, anonymous requests are
    // on by default: RBAC lets them read health and version only.
    let cluster = Cluster::builder()
        .apiserver_arg("--authorization-mode=RBAC")
        .start()
        .await
        .expect("cluster");
    let anonymous = cluster.anonymous_client().await;
    let reply = send(&anonymous, Method::GET, "/api", None, Vec::new()).await;
    let status = reply.expect_status(403, "Forbidden");
    assert_eq!(
        status["message"], "forbidden: User \"system:anonymous\" cannot get path \"/api\"",
        "{status}"
    );
    let reply = send(&anonymous, Method::GET, CONFIGMAPS, None, Vec::new()).await;
    reply.expect_status(403, "Forbidden");
    let reply = send(&anonymous, Method::GET, "/version", None, Vec::new()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    // --anonymous-auth=false: no credentials, no entry.
    let cluster = Cluster::builder()
        .apiserver_arg("--authorization-mode=RBAC")
        .apiserver_arg("--anonymous-auth=false")
        .start()
        .await
        .expect("cluster");
    let anonymous = cluster.anonymous_client().await;
    let reply = send(&anonymous, Method::GET, "/api", None, Vec::new()).await;
    reply.expect_status(401, "Unauthorized");
}

/// POSTs a SelfSubjectReview and returns `status.userInfo`.
async fn whoami(client: &kube::Client) -> Value {
    let reply = send(
        client,
        Method::POST,
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        Some("application/json"),
        serde_json::to_vec(&json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"
        }))
        .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    reply.json()["status"]["userInfo"].clone()
}

/// `kubectl auth whoami` reads SelfSubjectReview: the identities the
/// authenticators produce (certificate CN/O, token file user/uid/groups).
#[tokio::test]
async fn identity_from_certificates_and_tokens() {
    let cluster = start().await;
    struct Case {
        name: &'static str,
        client: kube::Client,
        user: &'static str,
        uid: Option<&'static str>,
        groups: &'static [&'static str],
    }
    let cases = [
        Case {
            name: "admin certificate",
            client: cluster.client().await,
            user: "admin",
            uid: None,
            groups: &["system:masters", "system:authenticated"],
        },
        Case {
            name: "token file user",
            client: cluster.token_client(&cluster.pki().user_token).await,
            user: "alice",
            uid: Some("uid-alice"),
            groups: &["developers", "qa", "system:authenticated"],
        },
        Case {
            name: "fresh certificate",
            client: cluster.cert_client("bob", Some("devs")).await,
            user: "bob",
            uid: None,
            groups: &["devs", "system:authenticated"],
        },
    ];
    for Case {
        name,
        client,
        user,
        uid,
        groups,
    } in cases
    {
        let info = whoami(&client).await;
        assert_eq!(info["username"], user, "{name}: {info}");
        if let Some(uid) = uid {
            assert_eq!(info["uid"], uid, "{name}: {info}");
        }
        let got = info["groups"].as_array().cloned().unwrap_or_default();
        for group in groups {
            assert!(got.contains(&json!(group)), "{name}: {group} in {info}");
        }
    }
}

/// fieldValidation: duplicate JSON fields are refused when Strict, accepted
/// (last one wins) when Ignore.
#[tokio::test]
async fn duplicate_fields_follow_field_validation() {
    let cluster = start().await;
    let client = cluster.client().await;
    let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","name":"dup"},"data":{"k":"1","k":"2"}}"#;
    let strict = send(
        &client,
        Method::POST,
        &format!("{CONFIGMAPS}?fieldValidation=Strict"),
        Some("application/json"),
        body.to_vec(),
    )
    .await;
    let status = strict.expect_status(400, "BadRequest");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.contains("duplicate field \"metadata.name\""),
        "{message}"
    );
    assert!(message.contains("duplicate field \"data.k\""), "{message}");
    let ignored = send(
        &client,
        Method::POST,
        &format!("{CONFIGMAPS}?fieldValidation=Ignore"),
        Some("application/json"),
        body.to_vec(),
    )
    .await;
    assert_eq!(ignored.status, StatusCode::CREATED, "{}", ignored.text());
    assert_eq!(ignored.json()["data"]["k"], "2");
}
