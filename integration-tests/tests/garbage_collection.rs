//! The garbage collector with the workload controllers, against the real
//! apiserver and etcd, driven with kubectl: `kubectl delete deployment`
//! takes its ReplicaSets and pods with it, `--cascade=orphan` leaves them
//! without an owner, and `--cascade=foreground` removes the dependents
//! before the owner.

use integration_tests::daemon::ControllerManager;
use integration_tests::fixtures::gadgets_crd;
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

/// An object of `kind` owned by `owner` (apiVersion, kind, name, uid).
fn owned_by(api_version: &str, kind: &str, name: &str, owner: [&str; 4]) -> String {
    let [av, k, n, uid] = owner;
    format!(
        "apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: default\n  \
         ownerReferences: [{{apiVersion: {av}, kind: {k}, name: {n}, uid: {uid}}}]\n"
    )
}

async fn uid(cluster: &Cluster, target: &[&str]) -> String {
    cluster.get_jsonpath(target, "{.metadata.uid}").await
}

async fn gone(cluster: &Cluster, target: &[&str], within: Duration) {
    eventually(&format!("{target:?} is gone"), within, async || {
        let out = cluster.kubectl(&[&["get"], target].concat()).await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (stderr.contains("NotFound"), stderr)
    })
    .await;
}

/// Custom resources take part as any object: a Gadget's dependents go with
/// it (in the background or first, under foreground deletion), and a
/// Gadget owned by a ConfigMap goes with the ConfigMap. The collector finds
/// the new resource on its discovery rerun (every 30 s, as upstream's).
#[tokio::test]
async fn custom_resources_own_and_are_owned() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let _cm = ControllerManager::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("controller-manager starts");
    let within = Duration::from_secs(75);
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], &gadgets_crd(&["v1"]))
            .await,
        "crd",
    );
    cluster
        .crd_established("gadgets.example.com", Duration::from_secs(20))
        .await;
    for name in ["g1", "g2"] {
        let yaml =
            format!("apiVersion: example.com/v1\nkind: Gadget\nmetadata: {{name: {name}}}\n");
        expect_success(
            &cluster.kubectl_stdin(&["apply", "-f", "-"], &yaml).await,
            name,
        );
    }
    expect_success(
        &cluster.kubectl(&["create", "configmap", "parent"]).await,
        "parent",
    );
    for (gadget, dependent) in [("g1", "of-g1"), ("g2", "of-g2")] {
        let owner = uid(&cluster, &["gadget", gadget]).await;
        let yaml = owned_by(
            "v1",
            "ConfigMap",
            dependent,
            ["example.com/v1", "Gadget", gadget, &owner],
        );
        expect_success(
            &cluster.kubectl_stdin(&["apply", "-f", "-"], &yaml).await,
            dependent,
        );
    }
    let parent = uid(&cluster, &["configmap", "parent"]).await;
    let yaml = owned_by(
        "example.com/v1",
        "Gadget",
        "child",
        ["v1", "ConfigMap", "parent", &parent],
    );
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], &yaml).await,
        "child",
    );

    // Background: the Gadget goes at once, its ConfigMap after.
    expect_success(
        &cluster.kubectl(&["delete", "gadget", "g1"]).await,
        "delete g1",
    );
    gone(&cluster, &["configmap", "of-g1"], within).await;
    // A Gadget as the dependent.
    expect_success(
        &cluster.kubectl(&["delete", "configmap", "parent"]).await,
        "parent",
    );
    gone(&cluster, &["gadget", "child"], within).await;
    // Foreground: the ConfigMap goes first, then the Gadget.
    let out = cluster
        .kubectl(&[
            "delete",
            "gadget",
            "g2",
            "--cascade=foreground",
            "--wait=false",
        ])
        .await;
    expect_success(&out, "delete g2");
    gone(&cluster, &["gadget", "g2"], within).await;
    gone(&cluster, &["configmap", "of-g2"], Duration::from_secs(1)).await;
}
