//! The namespace controller against the real apiserver and etcd:
//! `kubectl delete namespace` empties the namespace of every kind of
//! object, then the namespace itself goes.

use integration_tests::daemon::ControllerManager;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, ListParams};
use std::time::Duration;

const CONTENTS: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: doomed}
data: {a: b}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: doomed}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - {name: c, image: busybox}
";

#[tokio::test]
async fn deleting_a_namespace_deletes_everything_in_it() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let cm = ControllerManager::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("controller-manager starts");
    let client = cluster.client().await;
    expect_success(
        &cluster.kubectl(&["create", "namespace", "doomed"]).await,
        "create ns",
    );
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], CONTENTS).await,
        "apply",
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "doomed");
    eventually(
        "the deployment's pods",
        Duration::from_secs(15),
        async || {
            let n = pods.list(&ListParams::default()).await.unwrap().items.len();
            (n == 2, n)
        },
    )
    .await;

    expect_success(
        &cluster
            .kubectl(&["delete", "namespace", "doomed", "--wait=false"])
            .await,
        "delete ns",
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    eventually("the namespace gone", Duration::from_secs(30), async || {
        let ns = namespaces.get_opt("doomed").await.unwrap();
        let conditions = ns
            .as_ref()
            .and_then(|n| n.status.clone())
            .and_then(|s| s.conditions);
        (ns.is_none(), conditions)
    })
    .await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    assert!(
        configmaps
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "{}",
        cm.log_tail(20)
    );
}
