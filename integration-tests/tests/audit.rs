//! Auditing (`--audit-policy-file`, `--audit-log-path`) on the real
//! apiserver driven by the real kubectl: events appear as JSON lines at the
//! level the first matching rule gives (bodies at RequestResponse, none at
//! Metadata, nothing at None), omitted stages are left out, and a request
//! without credentials is recorded as a failed authentication.

use integration_tests::{Cluster, expect_success};
use serde_json::Value;
use std::time::Duration;

const POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  nonResourceURLs: ["/readyz", "/healthz", "/livez", "/openapi/*", "/api", "/apis", "/apis/*", "/version"]
- level: RequestResponse
  resources: [{group: "", resources: ["configmaps"]}]
- level: Metadata
  resources: [{group: "", resources: ["secrets"]}]
- level: Metadata
"#;

fn events(log: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every audit line is JSON"))
        .collect()
}

fn find<'a>(events: &'a [Value], verb: &str, resource: &str, name: &str) -> Option<&'a Value> {
    events.iter().find(|e| {
        e["verb"] == verb
            && e["objectRef"]["resource"] == resource
            && e["objectRef"]["name"] == name
            && e["stage"] == "ResponseComplete"
    })
}

#[tokio::test]
async fn requests_are_audited_at_their_rules_level() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("audit-policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let log = dir.path().join("audit").join("audit.log");
    let cluster = Cluster::builder()
        .apiserver_arg(format!("--audit-policy-file={}", policy.display()))
        .apiserver_arg(format!("--audit-log-path={}", log.display()))
        .apiserver_arg("--audit-log-maxsize=1")
        .apiserver_arg("--audit-log-maxbackup=2")
        .start()
        .await
        .expect("cluster starts");
    expect_success(
        &cluster
            .kubectl(&["create", "configmap", "c1", "--from-literal=k=v"])
            .await,
        "configmap",
    );
    expect_success(
        &cluster
            .kubectl(&[
                "create",
                "secret",
                "generic",
                "s1",
                "--from-literal=password=hunter2",
            ])
            .await,
        "secret",
    );
    let anonymous = cluster.anonymous_client().await;
    let request = http::Request::get("/api/v1/namespaces")
        .body(Vec::new())
        .unwrap();
    assert!(
        anonymous.request_text(request).await.is_err(),
        "401 without credentials"
    );

    // The write is logged before the response is done; give it a moment.
    let mut all = Vec::new();
    for _ in 0..50 {
        all = events(&log);
        if find(&all, "create", "secrets", "s1").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cm = find(&all, "create", "configmaps", "c1").expect("the configmap create is audited");
    assert_eq!(cm["kind"], "Event");
    assert_eq!(cm["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(cm["level"], "RequestResponse");
    assert_eq!(cm["objectRef"]["namespace"], "default");
    assert_eq!(cm["objectRef"]["apiVersion"], "v1");
    assert_eq!(cm["requestObject"]["data"]["k"], "v");
    assert_eq!(cm["responseObject"]["metadata"]["name"], "c1");
    assert_eq!(cm["responseStatus"]["code"], 201);
    assert_eq!(cm["annotations"]["authorization.k8s.io/decision"], "allow");
    assert!(
        cm["user"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "system:masters"),
        "{cm}"
    );
    assert!(
        cm["auditID"].as_str().is_some_and(|id| !id.is_empty()),
        "{cm}"
    );
    assert!(cm["sourceIPs"][0] == "127.0.0.1", "{cm}");
    assert!(
        cm["userAgent"].as_str().unwrap().starts_with("kubectl"),
        "{cm}"
    );

    let secret = find(&all, "create", "secrets", "s1").expect("the secret create is audited");
    assert_eq!(secret["level"], "Metadata");
    assert!(secret.get("requestObject").is_none(), "{secret}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("aHVudGVyMg==") && !text.contains("hunter2"));

    assert!(
        all.iter().all(|e| e["stage"] != "RequestReceived"),
        "RequestReceived is omitted"
    );
    assert!(
        all.iter().all(|e| e["requestURI"] != "/readyz"),
        "level None is not logged"
    );
    let failed = all
        .iter()
        .find(|e| e["responseStatus"]["code"] == 401)
        .expect("the failed authentication is audited");
    assert_eq!(failed["stage"], "ResponseStarted");
    assert_eq!(failed["requestURI"], "/api/v1/namespaces");
}
