//! The garbage collector with the workload controllers, against the real
//! apiserver and etcd, driven with kubectl: `kubectl delete deployment`
//! takes its ReplicaSets and pods with it, `--cascade=orphan` leaves them
//! without an owner, and `--cascade=foreground` removes the dependents
//! before the owner.

use integration_tests::daemon::ControllerManager;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(20);

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: c
        image: busybox
"
    )
}

/// (ReplicaSets, pods) labelled app=`app`.
async fn owned(client: &kube::Client, app: &str) -> (Vec<ReplicaSet>, Vec<Pod>) {
    let lp = ListParams::default().labels(&format!("app={app}"));
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    (
        sets.list(&lp).await.unwrap().items,
        pods.list(&lp).await.unwrap().items,
    )
}

#[tokio::test]
async fn deleting_an_owner_cascades_orphans_or_waits_for_dependents() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let cm = ControllerManager::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("controller-manager starts");
    let client = cluster.client().await;
    for app in ["web", "api"] {
        expect_success(
            &cluster
                .kubectl_stdin(&["apply", "-f", "-"], &deployment(app))
                .await,
            "apply",
        );
        eventually("two pods", WITHIN, async || {
            let (sets, pods) = owned(&client, app).await;
            (sets.len() == 1 && pods.len() == 2, (sets.len(), pods.len()))
        })
        .await;
    }

    // Background (kubectl's default): the set and its pods follow.
    expect_success(
        &cluster.kubectl(&["delete", "deployment", "web"]).await,
        "delete",
    );
    eventually("web's set and pods collected", WITHIN, async || {
        let (sets, pods) = owned(&client, "web").await;
        (sets.is_empty() && pods.is_empty(), (sets.len(), pods.len()))
    })
    .await;

    // Orphan: the deployment goes, its set and pods stay, unowned.
    expect_success(
        &cluster
            .kubectl(&["delete", "deployment", "api", "--cascade=orphan"])
            .await,
        "orphan",
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    eventually("the deployment gone", WITHIN, async || {
        let gone = deployments.get_opt("api").await.unwrap().is_none();
        (gone, gone)
    })
    .await;
    let (sets, pods) = owned(&client, "api").await;
    assert_eq!((sets.len(), pods.len()), (1, 2), "{}", cm.log_tail(20));
    assert!(
        sets[0]
            .metadata
            .owner_references
            .clone()
            .unwrap_or_default()
            .is_empty(),
        "the set is orphaned"
    );

    // Foreground: the pods go before the set does.
    let set = sets[0].metadata.name.clone().unwrap();
    let out = cluster
        .kubectl(&[
            "delete",
            "replicaset",
            &set,
            "--cascade=foreground",
            "--wait=false",
        ])
        .await;
    expect_success(&out, "foreground");
    eventually("pods first, then the set", WITHIN, async || {
        let (sets, pods) = owned(&client, "api").await;
        let order_kept = pods.is_empty() || !sets.is_empty();
        assert!(order_kept, "the set went before its pods");
        (sets.is_empty() && pods.is_empty(), (sets.len(), pods.len()))
    })
    .await;
    let metrics = cm.metrics().await.unwrap();
    assert!(
        metrics.contains("workqueue_adds_total{name=\"garbagecollector\"}"),
        "{metrics}"
    );
}
