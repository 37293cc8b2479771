//! The everyday kubectl workflow against the real apiserver binary: create,
//! apply, every `get` output format, watch, label/annotate/scale/patch,
//! replace, delete, explain, discovery and wait. Expectations are what
//! kubectl v1.32 prints against an upstream apiserver.

use std::path::PathBuf;
use std::time::Duration;

use integration_tests::kubectl::{table_row, table_rows};
use integration_tests::{Cluster, expect_failure, expect_success};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
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

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 80
";

const CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  color: blue
  size: large
";

fn all_manifests() -> String {
    format!("{DEPLOYMENT}---\n{SERVICE}---\n{CONFIGMAP}")
}

async fn start() -> Cluster {
    Cluster::start().await.expect("cluster starts")
}

fn write_manifest(cluster: &Cluster, name: &str, yaml: &str) -> PathBuf {
    let path = cluster.dir().join(name);
    std::fs::write(&path, yaml).expect("write manifest");
    path
}

/// `kubectl create -f file` for the three manifests, asserting the output.
async fn create_all(cluster: &Cluster) -> PathBuf {
    let file = write_manifest(cluster, "all.yaml", &all_manifests());
    let out = cluster
        .kubectl(&["create", "-f", file.to_str().unwrap()])
        .await;
    let stdout = expect_success(&out, "create -f");
    for line in [
        "deployment.apps/web created",
        "service/web created",
        "configmap/web-config created",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    file
}

async fn jsonpath(cluster: &Cluster, target: &[&str], path: &str) -> String {
    let mut args = vec!["get"];
    args.extend_from_slice(target);
    let expr = format!("-o=jsonpath={path}");
    args.push(&expr);
    expect_success(
        &cluster.kubectl(&args).await,
        &format!("get {target:?} {path}"),
    )
}

#[track_caller]
fn assert_header(table: &str, want: &[&str]) {
    let rows = table_rows(table);
    let header = rows.first().unwrap_or_else(|| panic!("empty table"));
    assert_eq!(header, want, "table header of:\n{table}");
}

/// Runs kubectl, asserting success and that stdout contains `want`.
async fn expect_kubectl(cluster: &Cluster, args: &[&str], want: &str) {
    let stdout = expect_success(&cluster.kubectl(args).await, &format!("{args:?}"));
    assert!(
        stdout.contains(want),
        "{args:?}: want {want:?}, got:\n{stdout}"
    );
}

#[tokio::test]
async fn create_then_apply_three_way() {
    let cluster = start().await;
    let file = create_all(&cluster).await;

    let again = cluster
        .kubectl(&["create", "-f", file.to_str().unwrap()])
        .await;
    let stderr = expect_failure(&again, "second create -f");
    assert!(
        stderr.contains("Error from server (AlreadyExists)")
            && stderr.contains("deployments.apps \"web\" already exists"),
        "{stderr}"
    );

    // Apply over objects made by `create`: kubectl warns, then patches.
    let changed = all_manifests()
        .replace("replicas: 2", "replicas: 3")
        .replace("color: blue", "color: red")
        + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  k: v\n";
    let changed_file = write_manifest(&cluster, "changed.yaml", &changed);
    let out = cluster
        .kubectl(&["apply", "-f", changed_file.to_str().unwrap()])
        .await;
    let stdout = expect_success(&out, "first apply");
    for line in [
        "deployment.apps/web configured",
        "service/web configured",
        "configmap/web-config configured",
        "configmap/extra created",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("missing the kubectl.kubernetes.io/last-applied-configuration annotation"),
        "{stderr}"
    );
    assert_eq!(
        jsonpath(&cluster, &["deployment", "web"], "{.spec.replicas}").await,
        "3"
    );
    assert_eq!(
        jsonpath(&cluster, &["configmap", "web-config"], "{.data.color}").await,
        "red"
    );
    let last_applied = jsonpath(
        &cluster,
        &["configmap", "web-config"],
        "{.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}",
    )
    .await;
    let last_applied: Value = serde_json::from_str(&last_applied)
        .unwrap_or_else(|e| panic!("last-applied is not JSON ({e}): {last_applied:?}"));
    assert_eq!(last_applied["data"]["color"], "red");

    // Same input again: nothing to do.
    let out = cluster
        .kubectl(&["apply", "-f", changed_file.to_str().unwrap()])
        .await;
    let stdout = expect_success(&out, "second apply");
    for line in [
        "deployment.apps/web unchanged",
        "service/web unchanged",
        "configmap/web-config unchanged",
        "configmap/extra unchanged",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }

    // A key dropped from the manifest is removed (it was in last-applied).
    let out = cluster
        .kubectl_stdin(
            &["apply", "-f", "-"],
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  color: red\n",
        )
        .await;
    let stdout = expect_success(&out, "apply dropping a key");
    assert!(
        stdout.contains("configmap/web-config configured"),
        "{stdout}"
    );
    let data = jsonpath(&cluster, &["configmap", "web-config"], "{.data}").await;
    let data: Value = serde_json::from_str(&data).expect("data is JSON");
    assert_eq!(data, json!({"color": "red"}));
}

#[tokio::test]
async fn get_json_yaml_and_name() {
    let cluster = start().await;
    create_all(&cluster).await;

    // -o json: one object, then a list wrapped as kind List.
    let one: Value = serde_json::from_str(&expect_success(
        &cluster
            .kubectl(&["get", "deployment", "web", "-o", "json"])
            .await,
        "get -o json",
    ))
    .expect("json");
    assert_eq!(one["kind"], "Deployment");
    assert_eq!(one["apiVersion"], "apps/v1");
    assert_eq!(one["metadata"]["name"], "web");
    assert_eq!(one["spec"]["replicas"], 2);
    assert!(
        one["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty())
    );
    assert!(one["metadata"]["creationTimestamp"].is_string());
    let list: Value = serde_json::from_str(&expect_success(
        &cluster.kubectl(&["get", "deployments", "-o", "json"]).await,
        "get list -o json",
    ))
    .expect("json");
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["kind"], "Deployment");

    // -o yaml.
    let yaml = expect_success(
        &cluster
            .kubectl(&["get", "configmap", "web-config", "-o", "yaml"])
            .await,
        "get -o yaml",
    );
    let cm: Value = serde_yaml_ng::from_str(&yaml).expect("yaml");
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["data"]["color"], "blue");

    // -o name.
    let names = expect_success(
        &cluster
            .kubectl(&[
                "get",
                "deployment/web",
                "service/web",
                "configmap/web-config",
                "-o",
                "name",
            ])
            .await,
        "get -o name",
    );
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        ["deployment.apps/web", "service/web", "configmap/web-config"]
    );
}

#[tokio::test]
async fn get_default_tables() {
    let cluster = start().await;
    create_all(&cluster).await;

    // Default tables (server-side Table printing).
    let table = expect_success(
        &cluster.kubectl(&["get", "deployments"]).await,
        "get deploy",
    );
    assert_header(&table, &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    let row = table_row(&table, "web").expect("web row");
    assert_eq!(&row[1..4], ["0/2", "0", "0"], "{table}");

    let wide = expect_success(
        &cluster.kubectl(&["get", "deploy", "-o", "wide"]).await,
        "wide",
    );
    assert_header(
        &wide,
        &[
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR",
        ],
    );
    let row = table_row(&wide, "web").expect("web row");
    assert_eq!(&row[5..], ["nginx", "nginx:1.25", "app=web"], "{wide}");

    let svcs = expect_success(
        &cluster.kubectl(&["get", "services", "-o", "wide"]).await,
        "svc",
    );
    assert_header(
        &svcs,
        &[
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR",
        ],
    );
    let web = table_row(&svcs, "web").expect("web service row");
    assert_eq!(web[1], "ClusterIP");
    assert!(
        web[2].starts_with("10.96.0."),
        "cluster IP {} in 10.96.0.0/24",
        web[2]
    );
    assert_eq!(web[3], "<none>");
    assert_eq!(web[4], "80/TCP");
    assert_eq!(web[6], "app=web");
    let kubernetes = table_row(&svcs, "kubernetes").expect("kubernetes service row");
    assert_eq!(
        &kubernetes[1..5],
        ["ClusterIP", "10.96.0.1", "<none>", "443/TCP"]
    );

    let cms = expect_success(&cluster.kubectl(&["get", "cm"]).await, "get cm");
    assert_header(&cms, &["NAME", "DATA", "AGE"]);
    assert_eq!(table_row(&cms, "web-config").expect("row")[1], "2");

    let namespaces = expect_success(&cluster.kubectl(&["get", "namespaces"]).await, "get ns");
    assert_header(&namespaces, &["NAME", "STATUS", "AGE"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let row = table_row(&namespaces, ns).unwrap_or_else(|| panic!("{ns} in:\n{namespaces}"));
        assert_eq!(row[1], "Active");
    }

    let all_ns = expect_success(&cluster.kubectl(&["get", "deployments", "-A"]).await, "-A");
    assert_header(
        &all_ns,
        &[
            "NAMESPACE",
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
        ],
    );
    assert_eq!(table_row(&all_ns, "default").expect("row")[1], "web");

    let labels = expect_success(
        &cluster
            .kubectl(&["get", "deploy", "web", "--show-labels"])
            .await,
        "--show-labels",
    );
    assert_eq!(
        table_rows(&labels)[0].last().map(String::as_str),
        Some("LABELS")
    );
    assert_eq!(
        table_row(&labels, "web")
            .expect("row")
            .last()
            .map(String::as_str),
        Some("app=web")
    );
}

#[tokio::test]
async fn get_pod_tables() {
    let cluster = start().await;
    let out = cluster
        .kubectl(&["run", "nginx", "--image=nginx:1.25", "--labels=app=nginx"])
        .await;
    assert!(expect_success(&out, "run").contains("pod/nginx created"));

    let pods = expect_success(&cluster.kubectl(&["get", "po"]).await, "get po");
    assert_header(&pods, &["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(
        &table_row(&pods, "nginx").expect("row")[1..4],
        ["0/1", "Pending", "0"]
    );
    let pods = expect_success(
        &cluster.kubectl(&["get", "pods", "-o", "wide"]).await,
        "pods wide",
    );
    // NOMINATED NODE and READINESS GATES split into two cells each.
    assert_header(
        &pods,
        &[
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED",
            "NODE",
            "READINESS",
            "GATES",
        ],
    );
    assert_eq!(&table_row(&pods, "nginx").expect("row")[5..], ["<none>"; 4]);
}

#[tokio::test]
async fn get_jsonpath_custom_columns_and_selectors() {
    let cluster = start().await;
    create_all(&cluster).await;

    // jsonpath and custom columns.
    assert_eq!(
        jsonpath(&cluster, &["deployment", "web"], "{.spec.replicas}").await,
        "2"
    );
    assert_eq!(
        jsonpath(
            &cluster,
            &["deployment", "web"],
            "{.spec.template.spec.containers[0].image}"
        )
        .await,
        "nginx:1.25"
    );
    let names = jsonpath(&cluster, &["configmaps"], "{.items[*].metadata.name}").await;
    assert!(
        names.split_whitespace().any(|n| n == "web-config"),
        "{names}"
    );
    let custom = expect_success(
        &cluster
            .kubectl(&[
                "get",
                "deployment",
                "web",
                "-o",
                "custom-columns=NAME:.metadata.name,IMAGE:.spec.template.spec.containers[0].image",
            ])
            .await,
        "custom-columns",
    );
    assert_eq!(
        table_rows(&custom),
        [["NAME", "IMAGE"], ["web", "nginx:1.25"]]
    );

    // Selectors through kubectl.
    let selected = expect_success(
        &cluster
            .kubectl(&["get", "deploy,cm,po", "-l", "app=web", "-o", "name"])
            .await,
        "-l",
    );
    assert_eq!(selected.trim(), "deployment.apps/web");
    let none = cluster.kubectl(&["get", "deploy", "-l", "app=other"]).await;
    expect_success(&none, "-l no match");
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("No resources found in default namespace."),
        "{none:?}"
    );
    let by_field = expect_success(
        &cluster
            .kubectl(&[
                "get",
                "cm",
                "--field-selector",
                "metadata.name=web-config",
                "-o",
                "name",
            ])
            .await,
        "--field-selector",
    );
    assert_eq!(by_field.trim(), "configmap/web-config");

    // Not found.
    let missing = cluster.kubectl(&["get", "configmap", "missing"]).await;
    let stderr = expect_failure(&missing, "get missing");
    assert!(
        stderr.contains("Error from server (NotFound): configmaps \"missing\" not found"),
        "{stderr}"
    );
}

#[tokio::test]
async fn describe_reads_objects_and_events() {
    let cluster = start().await;
    create_all(&cluster).await;

    // describe reads the object and its events.
    let described = expect_success(
        &cluster.kubectl(&["describe", "deployment", "web"]).await,
        "describe deployment",
    );
    assert!(
        described.contains("Name:") && described.contains("web"),
        "{described}"
    );
    assert!(described.contains("2 desired"), "{described}");
    let described = expect_success(
        &cluster
            .kubectl(&["describe", "configmap", "web-config"])
            .await,
        "describe configmap",
    );
    assert!(described.contains("color"), "{described}");
}

#[tokio::test]
async fn get_watch_sees_changes() {
    let cluster = start().await;
    let out = cluster
        .kubectl_stdin(
            &["create", "-f", "-"],
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\ndata:\n  a: \"1\"\n",
        )
        .await;
    assert!(expect_success(&out, "create cm").contains("configmap/watched created"));

    let events = cluster.kubectl_spawn(&["get", "configmaps", "-w", "--output-watch-events"]);
    let named = cluster.kubectl_spawn(&["get", "configmap", "watched", "-w"]);
    let initial = |out: &str| out.lines().any(|l| l.contains("watched"));
    events
        .wait_for_stdout(Duration::from_secs(20), initial)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    named
        .wait_for_stdout(Duration::from_secs(20), initial)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let out = cluster
        .kubectl(&[
            "patch",
            "configmap",
            "watched",
            "--type=merge",
            "-p",
            r#"{"data":{"b":"2"}}"#,
        ])
        .await;
    expect_success(&out, "patch");
    let modified = |out: &str| {
        out.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.starts_with(&["MODIFIED", "watched", "2"])
        })
    };
    let seen = events
        .wait_for_stdout(Duration::from_secs(20), modified)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let table = table_rows(&seen);
    assert_eq!(table[0][..3], ["EVENT", "NAME", "DATA"], "{seen}");
    assert_eq!(table[1][..3], ["ADDED", "watched", "1"], "{seen}");
    named
        .wait_for_stdout(Duration::from_secs(20), |out| {
            out.lines()
                .filter(|l| l.split_whitespace().next() == Some("watched"))
                .any(|l| l.split_whitespace().nth(1) == Some("2"))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let out = cluster.kubectl(&["delete", "configmap", "watched"]).await;
    expect_success(&out, "delete");
    events
        .wait_for_stdout(Duration::from_secs(20), |out| {
            out.lines().any(|l| {
                l.split_whitespace()
                    .collect::<Vec<_>>()
                    .starts_with(&["DELETED", "watched"])
            })
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let out = events.stop().await;
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("error"),
        "watch printed an error: {out:?}"
    );
    named.stop().await;
}

/// Imperative generators (`create configmap`, `create deployment`, `expose`...)
/// use client-go's typed clients, which send protobuf request bodies.
#[tokio::test]
async fn imperative_generators() {
    let cluster = start().await;
    let cases: &[(&[&str], &str)] = &[
        (
            &["create", "namespace", "gen-ns"],
            "namespace/gen-ns created",
        ),
        (
            &["create", "configmap", "gen-cm", "--from-literal=a=1"],
            "configmap/gen-cm created",
        ),
        (
            &[
                "create",
                "secret",
                "generic",
                "gen-secret",
                "--from-literal=p=s",
            ],
            "secret/gen-secret created",
        ),
        (
            &[
                "create",
                "deployment",
                "gen-deploy",
                "--image=nginx:1.25",
                "--replicas=2",
            ],
            "deployment.apps/gen-deploy created",
        ),
        (
            &["create", "service", "clusterip", "gen-svc", "--tcp=80:8080"],
            "service/gen-svc created",
        ),
        (
            &["expose", "deployment", "gen-deploy", "--port=80"],
            "service/gen-deploy exposed",
        ),
        (
            &["create", "serviceaccount", "gen-sa"],
            "serviceaccount/gen-sa created",
        ),
    ];
    for (args, want) in cases {
        expect_kubectl(&cluster, args, want).await;
    }
    assert_eq!(
        jsonpath(&cluster, &["configmap", "gen-cm"], "{.data.a}").await,
        "1"
    );
    assert_eq!(
        jsonpath(&cluster, &["secret", "gen-secret"], "{.data.p}").await,
        "cw==",
        "base64 of \"s\""
    );
    assert_eq!(
        jsonpath(&cluster, &["service", "gen-deploy"], "{.spec.selector.app}").await,
        "gen-deploy"
    );
}

#[tokio::test]
async fn label_and_annotate() {
    let cluster = start().await;
    create_all(&cluster).await;

    // label
    expect_kubectl(
        &cluster,
        &["label", "deployment", "web", "tier=frontend"],
        "deployment.apps/web labeled",
    )
    .await;
    let out = cluster
        .kubectl(&["get", "deploy", "-l", "tier=frontend", "-o", "name"])
        .await;
    assert_eq!(expect_success(&out, "get -l").trim(), "deployment.apps/web");
    let clash = cluster
        .kubectl(&["label", "deployment", "web", "tier=backend"])
        .await;
    assert!(expect_failure(&clash, "label without --overwrite").contains("--overwrite is false"));
    expect_kubectl(
        &cluster,
        &["label", "deployment", "web", "tier=backend", "--overwrite"],
        "deployment.apps/web labeled",
    )
    .await;
    expect_kubectl(
        &cluster,
        &["label", "deployment", "web", "tier-"],
        "deployment.apps/web unlabeled",
    )
    .await;
    assert_eq!(
        jsonpath(&cluster, &["deployment", "web"], "{.metadata.labels}").await,
        r#"{"app":"web"}"#
    );

    // annotate
    expect_kubectl(
        &cluster,
        &["annotate", "deployment", "web", "team=platform"],
        "deployment.apps/web annotated",
    )
    .await;
    assert_eq!(
        jsonpath(
            &cluster,
            &["deployment", "web"],
            "{.metadata.annotations.team}"
        )
        .await,
        "platform"
    );
}

#[tokio::test]
async fn scale_with_preconditions() {
    let cluster = start().await;
    create_all(&cluster).await;

    // scale (the scale subresource), with and without a precondition
    expect_kubectl(
        &cluster,
        &["scale", "deployment", "web", "--replicas=3"],
        "deployment.apps/web scaled",
    )
    .await;
    assert_eq!(
        jsonpath(&cluster, &["deployment", "web"], "{.spec.replicas}").await,
        "3"
    );
    let wrong = cluster
        .kubectl(&[
            "scale",
            "deployment",
            "web",
            "--current-replicas=2",
            "--replicas=4",
        ])
        .await;
    assert!(
        expect_failure(&wrong, "scale precondition").contains("Expected replicas to be 2, was 3")
    );
    assert_eq!(
        jsonpath(&cluster, &["deployment", "web"], "{.spec.replicas}").await,
        "3"
    );
}

#[tokio::test]
async fn patch_merge_json_and_strategic() {
    let cluster = start().await;
    create_all(&cluster).await;

    // patch: merge, JSON, strategic (default), and a no-op
    expect_kubectl(
        &cluster,
        &[
            "patch",
            "deployment",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":5}}"#,
        ],
        "deployment.apps/web patched",
    )
    .await;
    assert_eq!(
        jsonpath(&cluster, &["deployment", "web"], "{.spec.replicas}").await,
        "5"
    );
    expect_kubectl(
        &cluster,
        &[
            "patch",
            "deployment",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":5}}"#,
        ],
        "deployment.apps/web patched (no change)",
    )
    .await;
    expect_kubectl(
        &cluster,
        &[
            "patch",
            "configmap",
            "web-config",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/data/color","value":"green"},{"op":"add","path":"/data/shape","value":"round"}]"#,
        ],
        "configmap/web-config patched",
    )
    .await;
    let data: Value =
        serde_json::from_str(&jsonpath(&cluster, &["configmap", "web-config"], "{.data}").await)
            .expect("json");
    assert_eq!(
        data,
        json!({"color": "green", "shape": "round", "size": "large"})
    );
    let failed_test = cluster
        .kubectl(&[
            "patch",
            "configmap",
            "web-config",
            "--type=json",
            "-p",
            r#"[{"op":"test","path":"/data/color","value":"purple"},{"op":"remove","path":"/data/color"}]"#,
        ])
        .await;
    expect_failure(&failed_test, "json patch with a failing test op");
    assert_eq!(
        jsonpath(&cluster, &["configmap", "web-config"], "{.data.color}").await,
        "green"
    );

    expect_kubectl(
        &cluster,
        &[
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.26"}]}}}}"#,
        ],
        "deployment.apps/web patched",
    )
    .await;
    let containers: Value = serde_json::from_str(
        &jsonpath(
            &cluster,
            &["deployment", "web"],
            "{.spec.template.spec.containers}",
        )
        .await,
    )
    .expect("json");
    assert_eq!(containers.as_array().map(Vec::len), Some(1), "{containers}");
    assert_eq!(containers[0]["image"], "nginx:1.26");
    assert_eq!(
        containers[0]["ports"][0]["containerPort"], 80,
        "merged by name: {containers}"
    );
    expect_kubectl(
        &cluster,
        &[
            "patch",
            "deployment",
            "web",
            "--type=strategic",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#,
        ],
        "deployment.apps/web patched",
    )
    .await;
    // Upstream's mergeSortedSlice puts a patch item the live list does not
    // have before the live items (no $setElementOrder was sent).
    assert_eq!(
        jsonpath(
            &cluster,
            &["deployment", "web"],
            "{.spec.template.spec.containers[*].name}"
        )
        .await,
        "sidecar nginx"
    );
}

#[tokio::test]
async fn generation_follows_spec_and_annotations() {
    let cluster = start().await;
    create_all(&cluster).await;

    // Upstream bumps a Deployment's generation on spec and annotation
    // changes, not on label changes or no-op patches.
    let generation = || jsonpath(&cluster, &["deployment", "web"], "{.metadata.generation}");
    assert_eq!(generation().await, "1", "after create");
    expect_kubectl(&cluster, &["label", "deployment", "web", "x=y"], "labeled").await;
    assert_eq!(generation().await, "1", "after a label change");
    expect_kubectl(
        &cluster,
        &["annotate", "deployment", "web", "note=n"],
        "annotated",
    )
    .await;
    assert_eq!(generation().await, "2", "after an annotation change");
    expect_kubectl(
        &cluster,
        &["scale", "deployment", "web", "--replicas=4"],
        "scaled",
    )
    .await;
    assert_eq!(generation().await, "3", "after scale");
    let same = r#"{"spec":{"replicas":4}}"#;
    expect_kubectl(
        &cluster,
        &["patch", "deployment", "web", "--type=merge", "-p", same],
        "patched (no change)",
    )
    .await;
    assert_eq!(generation().await, "3", "after a no-op patch");
}

#[tokio::test]
async fn replace_from_file() {
    let cluster = start().await;
    create_all(&cluster).await;

    // replace -f: the whole object is replaced.
    let replacement = write_manifest(
        &cluster,
        "replace.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  color: yellow\n",
    );
    let out = cluster
        .kubectl(&["replace", "-f", replacement.to_str().unwrap()])
        .await;
    assert!(expect_success(&out, "replace").contains("configmap/web-config replaced"));
    let data: Value =
        serde_json::from_str(&jsonpath(&cluster, &["configmap", "web-config"], "{.data}").await)
            .expect("json");
    assert_eq!(data, json!({"color": "yellow"}));
    let ghost = write_manifest(
        &cluster,
        "ghost.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ghost\ndata:\n  a: b\n",
    );
    let out = cluster
        .kubectl(&["replace", "-f", ghost.to_str().unwrap()])
        .await;
    let stderr = expect_failure(&out, "replace missing");
    assert!(
        stderr.contains("(NotFound)") && stderr.contains("configmaps \"ghost\" not found"),
        "{stderr}"
    );
}

#[tokio::test]
async fn delete_objects() {
    let cluster = start().await;
    let file = create_all(&cluster).await;

    // delete
    expect_kubectl(
        &cluster,
        &["delete", "deployment", "web"],
        "deployment.apps \"web\" deleted",
    )
    .await;
    let out = cluster.kubectl(&["get", "deployment", "web"]).await;
    assert!(
        expect_failure(&out, "get deleted")
            .contains("Error from server (NotFound): deployments.apps \"web\" not found")
    );
    let out = cluster
        .kubectl(&["delete", "-f", file.to_str().unwrap(), "--ignore-not-found"])
        .await;
    let stdout = expect_success(&out, "delete -f");
    assert!(stdout.contains("service \"web\" deleted"), "{stdout}");
    assert!(
        stdout.contains("configmap \"web-config\" deleted"),
        "{stdout}"
    );
    let out = cluster.kubectl(&["delete", "configmap", "ghost"]).await;
    assert!(
        expect_failure(&out, "delete missing")
            .contains("Error from server (NotFound): configmaps \"ghost\" not found")
    );
    let out = cluster
        .kubectl(&["delete", "configmap", "ghost", "--ignore-not-found"])
        .await;
    assert_eq!(expect_success(&out, "delete --ignore-not-found"), "");
}

#[tokio::test]
async fn explain_and_discovery() {
    let cluster = start().await;
    create_all(&cluster).await;

    let explain = expect_success(
        &cluster.kubectl(&["explain", "pod.spec.containers"]).await,
        "explain pod.spec.containers",
    );
    let lines: Vec<&str> = explain.lines().collect();
    assert!(lines.contains(&"KIND:       Pod"), "{explain}");
    assert!(lines.contains(&"VERSION:    v1"), "{explain}");
    assert!(
        lines.contains(&"FIELD: containers <[]Container>"),
        "{explain}"
    );
    assert!(lines.contains(&"DESCRIPTION:"), "{explain}");
    assert!(lines.contains(&"FIELDS:"), "{explain}");
    assert!(lines.contains(&"  image\t<string>"), "{explain}");
    assert!(lines.contains(&"  name\t<string> -required-"), "{explain}");
    assert!(lines.contains(&"  ports\t<[]ContainerPort>"), "{explain}");

    let explain = expect_success(
        &cluster
            .kubectl(&["explain", "deployment.spec.replicas"])
            .await,
        "explain deployment.spec.replicas",
    );
    assert!(
        explain.lines().any(|l| l == "GROUP:      apps"),
        "{explain}"
    );
    assert!(
        explain.lines().any(|l| l == "FIELD: replicas <integer>"),
        "{explain}"
    );

    // api-resources: NAME SHORTNAMES APIVERSION NAMESPACED KIND
    let resources = expect_success(&cluster.kubectl(&["api-resources"]).await, "api-resources");
    assert_header(
        &resources,
        &["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"],
    );
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        ("pods", "po", "v1", "true", "Pod"),
        ("services", "svc", "v1", "true", "Service"),
        ("configmaps", "cm", "v1", "true", "ConfigMap"),
        ("namespaces", "ns", "v1", "false", "Namespace"),
        ("nodes", "no", "v1", "false", "Node"),
        ("serviceaccounts", "sa", "v1", "true", "ServiceAccount"),
        ("endpoints", "ep", "v1", "true", "Endpoints"),
        ("deployments", "deploy", "apps/v1", "true", "Deployment"),
        ("replicasets", "rs", "apps/v1", "true", "ReplicaSet"),
        ("daemonsets", "ds", "apps/v1", "true", "DaemonSet"),
        ("statefulsets", "sts", "apps/v1", "true", "StatefulSet"),
    ];
    for (name, short, version, namespaced, kind) in cases {
        let row = table_row(&resources, name).unwrap_or_else(|| panic!("{name} in:\n{resources}"));
        assert_eq!(row, [*name, *short, *version, *namespaced, *kind], "{name}");
    }
    let secrets = table_row(&resources, "secrets").expect("secrets row");
    assert_eq!(secrets, ["secrets", "v1", "true", "Secret"]);
    let cluster_scoped = expect_success(
        &cluster
            .kubectl(&["api-resources", "--namespaced=false", "-o", "name"])
            .await,
        "api-resources --namespaced=false",
    );
    for name in ["namespaces", "nodes"] {
        assert!(
            cluster_scoped.lines().any(|l| l == name),
            "{cluster_scoped}"
        );
    }
    assert!(
        !cluster_scoped.lines().any(|l| l == "pods"),
        "{cluster_scoped}"
    );
    let wide = expect_success(
        &cluster.kubectl(&["api-resources", "-o", "wide"]).await,
        "-o wide",
    );
    let pods = table_row(&wide, "pods").expect("pods row");
    let verbs = pods[5..].join(" ");
    for verb in [
        "create", "delete", "get", "list", "patch", "update", "watch",
    ] {
        assert!(verbs.contains(verb), "pods verbs {verbs}");
    }
    assert_eq!(
        pods.last().map(String::as_str),
        Some("all"),
        "pods category: {pods:?}"
    );

    let versions = expect_success(&cluster.kubectl(&["api-versions"]).await, "api-versions");
    for gv in [
        "v1",
        "apps/v1",
        "batch/v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
    ] {
        assert!(versions.lines().any(|l| l == gv), "{gv} in:\n{versions}");
    }

    let version = expect_success(&cluster.kubectl(&["version"]).await, "version");
    assert!(version.contains("Server Version: v1."), "{version}");

    // `get all` walks the `all` category.
    let all = expect_success(&cluster.kubectl(&["get", "all"]).await, "get all");
    for name in ["service/kubernetes", "service/web", "deployment.apps/web"] {
        assert!(all.contains(name), "{name} in:\n{all}");
    }
    let by_short = expect_success(
        &cluster
            .kubectl(&["get", "deploy,svc,cm", "-o", "name"])
            .await,
        "short names",
    );
    for name in ["deployment.apps/web", "service/web", "configmap/web-config"] {
        assert!(
            by_short.lines().any(|l| l == name),
            "{name} in:\n{by_short}"
        );
    }
}

#[tokio::test]
async fn wait_for_status_condition() {
    let cluster = start().await;
    create_all(&cluster).await;
    let client = cluster.client().await;
    let deployments: Api<Deployment> = Api::namespaced(client, "default");

    let available = cluster.kubectl_spawn(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "--timeout=30s",
    ]);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let generation = deployments
        .get("web")
        .await
        .expect("get web")
        .metadata
        .generation
        .expect("generation set");
    let now = "2025-01-01T00:00:00Z";
    let status = json!({
        "status": {
            "observedGeneration": generation,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability.",
                 "lastUpdateTime": now, "lastTransitionTime": now}
            ]
        }
    });
    let patched = deployments
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("patch_status");
    assert_eq!(patched.status.and_then(|s| s.available_replicas), Some(2));
    assert_eq!(
        patched.spec.and_then(|s| s.replicas),
        Some(2),
        "status patch kept the spec"
    );

    let out = available.wait(Duration::from_secs(40)).await;
    assert!(
        expect_success(&out, "background wait").contains("deployment.apps/web condition met"),
        "{out:?}"
    );
    let out = cluster
        .kubectl(&[
            "wait",
            "--for=condition=Available",
            "deployment/web",
            "--timeout=10s",
        ])
        .await;
    assert!(expect_success(&out, "wait").contains("deployment.apps/web condition met"));
    let out = cluster
        .kubectl(&[
            "wait",
            "--for=condition=Progressing",
            "deployment/web",
            "--timeout=2s",
        ])
        .await;
    assert!(
        expect_failure(&out, "wait for a false condition")
            .contains("timed out waiting for the condition on deployments/web")
    );
    let out = cluster
        .kubectl(&[
            "wait",
            "--for=jsonpath={.status.readyReplicas}=2",
            "deployment/web",
            "--timeout=10s",
        ])
        .await;
    assert!(expect_success(&out, "wait jsonpath").contains("deployment.apps/web condition met"));

    let table = expect_success(&cluster.kubectl(&["get", "deployment", "web"]).await, "get");
    assert_eq!(
        &table_row(&table, "web").expect("row")[1..4],
        ["2/2", "2", "2"]
    );
    let out = cluster
        .kubectl(&["rollout", "status", "deployment/web", "--timeout=10s"])
        .await;
    assert!(
        expect_success(&out, "rollout status")
            .contains("deployment \"web\" successfully rolled out")
    );

    let deleted =
        cluster.kubectl_spawn(&["wait", "--for=delete", "deployment/web", "--timeout=30s"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    expect_success(
        &cluster.kubectl(&["delete", "deployment", "web"]).await,
        "delete",
    );
    let out = deleted.wait(Duration::from_secs(40)).await;
    assert!(
        expect_success(&out, "wait --for=delete").contains("condition met"),
        "{out:?}"
    );
}
