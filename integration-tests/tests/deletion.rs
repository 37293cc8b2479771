//! Deletion as upstream does it: finalizers hold an object, a namespace
//! terminates until its content is gone, pods bound to a node get a grace
//! period. Driven with kubectl and raw requests.

use integration_tests::Cluster;
use integration_tests::kubectl::{expect_failure, expect_success};

#[tokio::test]
async fn finalizers_hold_objects_until_removed() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n";
    expect_success(
        &cluster.kubectl_stdin(&["create", "-f", "-"], yaml).await,
        "create",
    );
    expect_success(
        &cluster
            .kubectl(&["delete", "configmap", "held", "--wait=false"])
            .await,
        "delete",
    );
    let out = cluster
        .kubectl(&[
            "get",
            "configmap",
            "held",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ])
        .await;
    assert!(
        !expect_success(&out, "still there").is_empty(),
        "marked with a deletionTimestamp"
    );
    let patch = r#"{"metadata":{"finalizers":null}}"#;
    expect_success(
        &cluster
            .kubectl(&["patch", "configmap", "held", "--type=merge", "-p", patch])
            .await,
        "remove finalizer",
    );
    let gone = cluster.kubectl(&["get", "configmap", "held"]).await;
    assert!(expect_failure(&gone, "gone").contains("NotFound"));
}

#[tokio::test]
async fn namespaces_terminate_and_refuse_new_content() {
    let cluster = Cluster::start().await.expect("cluster starts");
    expect_success(
        &cluster.kubectl(&["create", "namespace", "doomed"]).await,
        "create ns",
    );
    expect_success(
        &cluster
            .kubectl(&["create", "configmap", "inside", "-n", "doomed"])
            .await,
        "create cm",
    );
    // No namespace controller runs here, so do not wait for the content to go.
    expect_success(
        &cluster
            .kubectl(&["delete", "namespace", "doomed", "--wait=false"])
            .await,
        "delete ns",
    );
    let table = expect_success(
        &cluster.kubectl(&["get", "namespace", "doomed"]).await,
        "get ns",
    );
    assert!(table.contains("Terminating"), "{table}");
    let refused = cluster
        .kubectl(&["create", "configmap", "late", "-n", "doomed"])
        .await;
    let stderr = expect_failure(&refused, "create in a terminating namespace");
    assert!(
        stderr.contains(
            "unable to create new content in namespace doomed because it is being terminated"
        ),
        "{stderr}"
    );
    // What the namespace controller does when the content is gone.
    let body = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"doomed"},"spec":{"finalizers":[]}}"#;
    let path = cluster.dir().join("finalize.json");
    std::fs::write(&path, body).unwrap();
    let out = cluster
        .kubectl(&[
            "replace",
            "--raw",
            "/api/v1/namespaces/doomed/finalize",
            "-f",
            path.to_str().unwrap(),
        ])
        .await;
    expect_success(&out, "finalize");
    let gone = cluster.kubectl(&["get", "namespace", "doomed"]).await;
    assert!(expect_failure(&gone, "namespace gone").contains("NotFound"));
}

#[tokio::test]
async fn bound_pods_get_a_grace_period() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  nodeName: node-1\n  terminationGracePeriodSeconds: 45\n  containers:\n  - name: c\n    image: busybox\n";
    expect_success(
        &cluster.kubectl_stdin(&["create", "-f", "-"], yaml).await,
        "create pod",
    );
    expect_success(
        &cluster
            .kubectl(&["delete", "pod", "p", "--wait=false"])
            .await,
        "delete pod",
    );
    let grace = cluster
        .kubectl(&[
            "get",
            "pod",
            "p",
            "-o",
            "jsonpath={.metadata.deletionGracePeriodSeconds}",
        ])
        .await;
    assert_eq!(expect_success(&grace, "terminating pod"), "45");
    let table = expect_success(&cluster.kubectl(&["get", "pod", "p"]).await, "get pod");
    assert!(table.contains("Terminating"), "{table}");
    // Force deletion removes it at once, as the kubelet's final delete does.
    expect_success(
        &cluster
            .kubectl(&["delete", "pod", "p", "--grace-period=0", "--force"])
            .await,
        "force delete",
    );
    let gone = cluster.kubectl(&["get", "pod", "p"]).await;
    assert!(expect_failure(&gone, "pod gone").contains("NotFound"));
}
