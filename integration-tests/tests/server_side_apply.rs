//! Server-side apply through the real kubectl and raw HTTPS: managedFields
//! per manager and operation, conflicts (409 with the managers and fields)
//! unless forced, pruning of what an applier stops applying, shared
//! ownership, dry-run, and the PatchOptions errors.

use http::{Method, Request, StatusCode};
use integration_tests::{Cluster, expect_failure, expect_success};
use kube::client::Body;
use serde_json::{Value, json};

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
";

async fn start() -> Cluster {
    Cluster::start().await.expect("cluster starts")
}

async fn get_json(cluster: &Cluster, target: &[&str]) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(target);
    args.extend(["-o", "json", "--show-managed-fields"]);
    let out = expect_success(&cluster.kubectl(&args).await, "get -o json");
    serde_json::from_str(&out).expect("kubectl prints JSON")
}

/// (manager, operation) of every managedFields entry.
fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or("").to_string(),
                e["operation"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn fields_of<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|all| all.iter().find(|e| e["manager"] == manager))
        .map(|e| &e["fieldsV1"])
        .unwrap_or(&Value::Null)
}

async fn apply(cluster: &Cluster, extra: &[&str], yaml: &str) -> std::process::Output {
    let mut args = vec!["apply", "--server-side", "-f", "-"];
    args.extend_from_slice(extra);
    cluster.kubectl_stdin(&args, yaml).await
}

#[tokio::test]
async fn kubectl_apply_server_side_conflicts_and_force() {
    let cluster = start().await;
    let out = apply(&cluster, &[], DEPLOYMENT).await;
    let stdout = expect_success(&out, "first server-side apply");
    assert!(
        stdout.contains("deployment.apps/web serverside-applied"),
        "{stdout}"
    );
    let first = get_json(&cluster, &["deployment", "web"]).await;
    assert_eq!(managers(&first), [("kubectl".into(), "Apply".into())]);
    let owned = fields_of(&first, "kubectl");
    assert_eq!(owned["f:spec"]["f:replicas"], json!({}));
    assert_eq!(
        owned["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]["f:ports"]
            ["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"],
        json!({".": {}, "f:containerPort": {}})
    );
    // Defaults are there, owned by no one.
    assert_eq!(first["spec"]["strategy"]["type"], "RollingUpdate");

    // The same configuration again writes nothing.
    let out = apply(&cluster, &[], DEPLOYMENT).await;
    expect_success(&out, "second server-side apply");
    let second = get_json(&cluster, &["deployment", "web"]).await;
    assert_eq!(
        second["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );

    // Someone else changes a field the applier owns ...
    let out = cluster
        .kubectl(&[
            "patch",
            "deployment",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":5}}"#,
        ])
        .await;
    expect_success(&out, "patch replicas");
    let patched = get_json(&cluster, &["deployment", "web"]).await;
    assert_eq!(
        fields_of(&patched, "kubectl-patch")["f:spec"]["f:replicas"],
        json!({})
    );
    assert!(
        fields_of(&patched, "kubectl")["f:spec"]
            .get("f:replicas")
            .is_none()
    );

    // ... so applying the old value conflicts, naming manager and field.
    let out = apply(&cluster, &[], DEPLOYMENT).await;
    let stderr = expect_failure(&out, "conflicting apply");
    assert!(
        stderr.contains(
            "Apply failed with 1 conflict: conflict with \"kubectl-patch\" using apps/v1: .spec.replicas"
        ),
        "{stderr}"
    );
    let unchanged = get_json(&cluster, &["deployment", "web"]).await;
    assert_eq!(unchanged["spec"]["replicas"], 5);

    // --force-conflicts takes the field over.
    let out = apply(&cluster, &["--force-conflicts"], DEPLOYMENT).await;
    expect_success(&out, "forced apply");
    let forced = get_json(&cluster, &["deployment", "web"]).await;
    assert_eq!(forced["spec"]["replicas"], 2);
    assert!(fields_of(&forced, "kubectl-patch").is_null(), "{forced}");

    // A field left out of the configuration is removed (and defaulted again),
    // a container left out goes.
    let two_containers = DEPLOYMENT.replace(
        "        - containerPort: 80\n",
        "        - containerPort: 80\n      - name: sidecar\n        image: busybox\n",
    );
    expect_success(
        &apply(&cluster, &[], &two_containers).await,
        "apply a sidecar",
    );
    let with_sidecar = get_json(&cluster, &["deployment", "web"]).await;
    assert_eq!(
        with_sidecar["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let fewer = DEPLOYMENT.replace("  replicas: 2\n", "");
    expect_success(
        &apply(&cluster, &[], &fewer).await,
        "apply without replicas",
    );
    let pruned = get_json(&cluster, &["deployment", "web"]).await;
    assert_eq!(pruned["spec"]["replicas"], 1, "{pruned}");
    let containers = pruned["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["name"], "nginx");
}

#[tokio::test]
async fn managers_share_and_split_a_configmap() {
    let cluster = start().await;
    let alice = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\ndata:\n  a: \"1\"\n  common: x\n";
    let bob = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\ndata:\n  b: \"2\"\n  common: x\n";
    expect_success(
        &apply(&cluster, &["--field-manager=alice"], alice).await,
        "alice applies",
    );
    expect_success(
        &apply(&cluster, &["--field-manager=bob"], bob).await,
        "bob applies the same common value",
    );
    let cm = get_json(&cluster, &["configmap", "shared"]).await;
    assert_eq!(cm["data"], json!({"a": "1", "common": "x", "b": "2"}));
    for who in ["alice", "bob"] {
        assert_eq!(
            fields_of(&cm, who)["f:data"]["f:common"],
            json!({}),
            "{who}"
        );
    }
    // Alice drops her key and the shared one: hers goes, the shared one
    // stays (Bob still applies it).
    let alice_less = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\ndata: {}\n";
    expect_success(
        &apply(&cluster, &["--field-manager=alice"], alice_less).await,
        "alice drops her keys",
    );
    let cm = get_json(&cluster, &["configmap", "shared"]).await;
    assert_eq!(cm["data"], json!({"common": "x", "b": "2"}));

    // Ordinary writes are recorded as Update operations.
    let out = cluster
        .kubectl(&["create", "configmap", "plain", "--from-literal=k=v"])
        .await;
    expect_success(&out, "create configmap");
    let plain = get_json(&cluster, &["configmap", "plain"]).await;
    assert_eq!(
        managers(&plain),
        [("kubectl-create".into(), "Update".into())]
    );
    assert_eq!(
        fields_of(&plain, "kubectl-create"),
        &json!({"f:data": {".": {}, "f:k": {}}})
    );
}

struct Reply {
    status: StatusCode,
    body: Value,
}

async fn patch(client: &kube::Client, path: &str, content_type: &str, body: &str) -> Reply {
    let request = Request::builder()
        .method(Method::PATCH)
        .uri(path)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Body::from(body.as_bytes().to_vec()))
        .expect("request");
    let response = tokio::time::timeout(std::time::Duration::from_secs(30), client.send(request))
        .await
        .expect("a response in time")
        .expect("request sent");
    let status = response.status();
    let bytes = response.into_body().collect_bytes().await.expect("body");
    Reply {
        status,
        body: serde_json::from_slice(&bytes).expect("a JSON body"),
    }
}

#[tokio::test]
async fn apply_over_http_errors_and_dry_run() {
    let cluster = start().await;
    let client = cluster.client().await;
    let path = "/api/v1/namespaces/default/configmaps/raw";
    let apply_ct = "application/apply-patch+yaml";
    let config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: raw\ndata:\n  k: v\n";

    let no_manager = patch(&client, path, apply_ct, config).await;
    assert_eq!(no_manager.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_manager.body["reason"], "Invalid");
    assert_eq!(
        no_manager.body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );

    let dry = patch(
        &client,
        &format!("{path}?fieldManager=m&dryRun=All"),
        apply_ct,
        config,
    )
    .await;
    assert_eq!(dry.status, StatusCode::CREATED, "{}", dry.body);
    let gone = cluster.kubectl(&["get", "configmap", "raw"]).await;
    expect_failure(&gone, "a dry-run apply creates nothing");

    let created = patch(&client, &format!("{path}?fieldManager=m"), apply_ct, config).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["metadata"]["managedFields"][0]["manager"], "m");
    assert_eq!(
        created.body["metadata"]["managedFields"][0]["operation"],
        "Apply"
    );

    let wrong_kind = patch(
        &client,
        &format!("{path}?fieldManager=m"),
        apply_ct,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: raw\n",
    )
    .await;
    assert_eq!(
        wrong_kind.status,
        StatusCode::BAD_REQUEST,
        "{}",
        wrong_kind.body
    );

    let force_on_merge = patch(
        &client,
        &format!("{path}?force=true"),
        "application/merge-patch+json",
        r#"{"data":{"k":"w"}}"#,
    )
    .await;
    assert_eq!(force_on_merge.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Another manager's change, then a conflicting apply: the Status names both.
    let other = patch(
        &client,
        &format!("{path}?fieldManager=other"),
        "application/merge-patch+json",
        r#"{"data":{"k":"changed"}}"#,
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);
    let conflict = patch(&client, &format!("{path}?fieldManager=m"), apply_ct, config).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(conflict.body["kind"], "Status");
    assert_eq!(conflict.body["reason"], "Conflict");
    assert_eq!(conflict.body["code"], 409);
    assert_eq!(
        conflict.body["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"other\" using v1", "field": ".data.k"}])
    );
    let forced = patch(
        &client,
        &format!("{path}?fieldManager=m&force=true"),
        apply_ct,
        config,
    )
    .await;
    assert_eq!(forced.status, StatusCode::OK);
    assert_eq!(forced.body["data"]["k"], "v");
}

#[tokio::test]
async fn client_side_applied_objects_move_to_server_side_apply() {
    let cluster = start().await;
    let v1 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: moved\ndata:\n  a: \"1\"\n  b: \"2\"\n";
    let out = cluster.kubectl_stdin(&["apply", "-f", "-"], v1).await;
    expect_success(&out, "client-side apply");
    let csa = get_json(&cluster, &["configmap", "moved"]).await;
    assert_eq!(
        managers(&csa),
        [("kubectl-client-side-apply".into(), "Update".into())]
    );
    // kubectl hands the client-side applier's fields to its server-side one.
    expect_success(&apply(&cluster, &[], v1).await, "server-side apply");
    let ssa = get_json(&cluster, &["configmap", "moved"]).await;
    assert!(
        managers(&ssa).contains(&("kubectl".into(), "Apply".into())),
        "{:?}",
        managers(&ssa)
    );
    // So a key dropped from the file now goes.
    let v2 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: moved\ndata:\n  a: \"1\"\n";
    expect_success(&apply(&cluster, &[], v2).await, "apply without b");
    let dropped = get_json(&cluster, &["configmap", "moved"]).await;
    assert_eq!(dropped["data"], json!({"a": "1"}));

    // fieldValidation=Strict refuses unknown fields of an applied configuration.
    let unknown =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: moved\ndata:\n  a: \"1\"\nbogus: 1\n";
    let out = apply(&cluster, &["--validate=strict"], unknown).await;
    let stderr = expect_failure(&out, "strict apply with an unknown field");
    assert!(stderr.contains("unknown field \"bogus\""), "{stderr}");
}
