//! `examples/policy-webhook/` as its README tells a user to deploy it: the
//! webhook runs in the cluster as a Deployment behind a Service, with its
//! certificate in a Secret; the apiserver calls it through the Service for
//! every new Deployment. Its defaults reach the stored Deployment and its
//! pods, an image from elsewhere is refused with its message, the
//! namespaces it excludes are left alone, the audit log records the
//! mutation and the webhook's own annotation, and with the webhook gone
//! `failurePolicy: Fail` refuses.

use integration_tests::daemon::{ControllerManager, Scheduler};
use integration_tests::node::{NodeBuilder, binary_image};
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_failure, expect_success};
use std::path::Path;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(90);
/// A pod CIDR of its own: the machine routes it to this test's node.
const POD_CIDR: &str = "10.247.0.0/24";

fn deployment(name: &str, namespace: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: {namespace}}}\n\
         spec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    \
         metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers:\n      - name: main\n        \
         image: {image}\n        command: [sleep, '3600']\n"
    )
}

/// Deployments' writes at Metadata level, where the webhooks' annotations go.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n\
    rules:\n- level: Metadata\n  resources: [{group: apps, resources: [deployments]}]\n- level: None\n";

/// The audit events of writes to the Deployment `name`.
fn audited(log: &Path, verb: &str, name: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["verb"] == verb && e["objectRef"]["name"] == name)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_policy_webhook_defaults_and_refuses_deployments_from_inside_the_cluster() {
    let audit = tempfile::tempdir().unwrap();
    let policy = audit.path().join("policy.yaml");
    std::fs::write(&policy, AUDIT_POLICY).unwrap();
    let log = audit.path().join("audit.log");
    let cluster = Cluster::builder()
        .apiserver_arg("--disable-admission-plugins=")
        .apiserver_arg(format!("--audit-policy-file={}", policy.display()))
        .apiserver_arg(format!("--audit-log-path={}", log.display()))
        .start()
        .await
        .expect("cluster");
    let _cm = ControllerManager::start(&cluster, &[])
        .await
        .expect("controller-manager");
    let _scheduler = Scheduler::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("scheduler");
    let node = NodeBuilder::new("n1")
        .pod_cidr(POD_CIDR)
        .start(&cluster)
        .await
        .expect("node");
    node.route_from_machine(0).expect("a route to the pods");
    // The README's first step: the image onto the node.
    let image = binary_image(
        "policy-webhook",
        "POLICY_WEBHOOK_BIN",
        &cluster.dir().join("images"),
    )
    .expect("the image");
    node.import_image(&image).expect("import");

    // The README's second: deploy.sh.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policy-webhook");
    let kubectl = cluster
        .kubectl_runner()
        .clone()
        .with_timeout(Duration::from_secs(240));
    let out = kubectl.script(&example.join("deploy.sh")).await;
    expect_success(&out, "deploy.sh");

    // A Deployment without requests or a team label gets both, with
    // warnings kubectl prints; so do its pods.
    expect_success(
        &cluster.kubectl(&["create", "namespace", "shop"]).await,
        "ns",
    );
    let out = cluster
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &deployment("web", "shop", "localhost/busybox:1.35"),
        )
        .await;
    expect_success(&out, "apply web");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Warning: policy-webhook: labelled team=unassigned")
            && stderr.contains("default resource requests set on containers main"),
        "{stderr}"
    );
    let get = |path: &'static str| {
        let cluster = &cluster;
        async move {
            cluster
                .get_jsonpath(&["-n", "shop", "deployment", "web"], path)
                .await
        }
    };
    assert_eq!(get("{.metadata.labels.team}").await, "unassigned");
    assert_eq!(
        get("{.spec.template.spec.containers[0].resources.requests}").await,
        r#"{"cpu":"100m","memory":"64Mi"}"#
    );
    eventually("the pod runs with the defaulted requests", WITHIN, async || {
        let out = cluster
            .kubectl(&[
                "-n",
                "shop",
                "get",
                "pods",
                "-l",
                "app=web",
                "-o",
                "jsonpath={.items[*].status.phase} {.items[*].spec.containers[0].resources.requests.cpu}",
            ])
            .await;
        let seen = String::from_utf8_lossy(&out.stdout).into_owned();
        (seen == "Running 100m", seen)
    })
    .await;

    // The audit log says which webhook mutated the Deployment.
    let created = audited(&log, "create", "web");
    assert_eq!(
        created[0]["annotations"]["mutation.webhook.admission.k8s.io/round_0_index_0"],
        r#"{"configuration":"deployment-policy.example.com","webhook":"deployment-policy.example.com","mutated":true}"#,
        "{created:?}"
    );

    // What the Deployment sets is kept: a second apply changes nothing.
    let out = cluster
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &deployment("web", "shop", "localhost/busybox:1.35"),
        )
        .await;
    expect_success(&out, "apply web again");

    // An image from another registry is refused with the webhook's message.
    let out = cluster
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &deployment("nginx", "shop", "docker.io/library/nginx:1.27"),
        )
        .await;
    let stderr = expect_failure(&out, "an image from elsewhere");
    assert!(
        stderr.contains(
            "admission webhook \"deployment-policy.example.com\" denied the request: image \
             \"docker.io/library/nginx:1.27\" of container \"main\" is not from an allowed \
             registry (localhost/)"
        ),
        "{stderr}"
    );
    // The webhook's own audit annotation, under its name.
    let refused = audited(&log, "create", "nginx");
    assert!(
        refused[0]["annotations"]["deployment-policy.example.com/denied"]
            .as_str()
            .is_some_and(|d| d.contains("docker.io/library/nginx:1.27")),
        "{refused:?}"
    );
    // Updating an allowed Deployment to such an image is refused too.
    let out = cluster
        .kubectl(&[
            "-n",
            "shop",
            "set",
            "image",
            "deployment/web",
            "main=quay.io/busybox:1",
        ])
        .await;
    let stderr = expect_failure(&out, "set image");
    assert!(
        stderr.contains("is not from an allowed registry"),
        "{stderr}"
    );

    // kube-system is excluded by the namespaceSelector.
    let mut excluded = deployment("elsewhere", "kube-system", "docker.io/library/nginx:1.27");
    excluded = excluded.replace("replicas: 1", "replicas: 0");
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], &excluded)
            .await,
        "kube-system is not checked",
    );
    assert_eq!(
        cluster
            .get_jsonpath(
                &["-n", "kube-system", "deployment", "elsewhere"],
                "{.metadata.labels.team}"
            )
            .await,
        ""
    );

    // With the webhook gone, failurePolicy Fail refuses.
    expect_success(
        &cluster
            .kubectl(&[
                "-n",
                "policy-webhook",
                "scale",
                "deployment/policy-webhook",
                "--replicas=0",
            ])
            .await,
        "scale the webhook down",
    );
    eventually("new Deployments are refused", WITHIN, async || {
        let out = cluster
            .kubectl_stdin(
                &["apply", "-f", "-"],
                &deployment("later", "shop", "localhost/busybox:1.35"),
            )
            .await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let refused = !out.status.success()
            && stderr.contains("failed calling webhook \"deployment-policy.example.com\"");
        (refused, stderr)
    })
    .await;
}
