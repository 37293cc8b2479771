//! The apiserver reaches an etcd that serves TLS and requires client
//! certificates (`--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`).

use integration_tests::Cluster;
use integration_tests::kubectl::expect_success;

#[tokio::test]
async fn apiserver_works_over_tls_to_etcd() {
    let cluster = Cluster::builder()
        .etcd_tls()
        .start()
        .await
        .expect("cluster with TLS etcd starts");
    assert!(
        cluster.etcd_endpoint().starts_with("https://"),
        "{}",
        cluster.etcd_endpoint()
    );
    let out = cluster
        .kubectl(&["create", "configmap", "over-tls", "--from-literal=k=v"])
        .await;
    expect_success(&out, "create over TLS etcd");
    let out = cluster
        .kubectl(&["get", "configmap", "over-tls", "-o", "jsonpath={.data.k}"])
        .await;
    assert_eq!(expect_success(&out, "get over TLS etcd"), "v");
    let out = cluster.kubectl(&["get", "namespaces", "-o", "name"]).await;
    assert!(expect_success(&out, "namespaces").contains("namespace/kube-system"));
}
