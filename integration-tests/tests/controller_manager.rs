//! kube-controller-manager as a daemon: a standby takes over when the
//! leader dies, and a controller-manager killed in the middle of a rollout
//! finishes it after a restart with no extra pods.

use integration_tests::daemon::ControllerManager;
use integration_tests::pod_status::{ReadyEveryPod, ready};
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::time::{Duration, Instant};

const FAST_LEASE: [&str; 4] = [
    "--leader-elect=true",
    "--leader-elect-lease-duration=2s",
    "--leader-elect-renew-deadline=1500ms",
    "--leader-elect-retry-period=200ms",
];

async fn holder(cluster: &Cluster) -> String {
    let leases: Api<Lease> = Api::namespaced(cluster.client().await, "kube-system");
    eventually("a leader", Duration::from_secs(20), async || {
        let h = leases
            .get_opt("kube-controller-manager")
            .await
            .unwrap()
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .filter(|h| !h.is_empty());
        (h.is_some(), h)
    })
    .await
    .unwrap()
}

fn replica_set(name: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: ReplicaSet
metadata: {{name: {name}}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - {{name: c, image: busybox}}
"
    )
}

async fn pods_of(client: &kube::Client, app: &str) -> usize {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .count()
}

#[tokio::test]
async fn a_standby_takes_over_when_the_leader_dies() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let client = cluster.client().await;
    let mut a = ControllerManager::start(&cluster, &FAST_LEASE)
        .await
        .expect("first");
    let first = holder(&cluster).await;
    let mut b = ControllerManager::start(&cluster, &FAST_LEASE)
        .await
        .expect("second");
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], &replica_set("before"))
            .await,
        "apply",
    );
    eventually(
        "pods from the leader",
        Duration::from_secs(15),
        async || {
            let n = pods_of(&client, "before").await;
            (n == 2, n)
        },
    )
    .await;
    // Only the leader works its queues.
    let worked = |m: &str| {
        m.lines()
            .any(|l| l.starts_with("workqueue_adds_total{name=\"replicaset\"}"))
    };
    let (leader, standby) = if worked(&a.metrics().await.unwrap()) {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert!(
        !worked(&standby.metrics().await.unwrap()),
        "the standby worked"
    );

    leader.kill();
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], &replica_set("after"))
            .await,
        "apply",
    );
    eventually(
        "pods from the new leader",
        Duration::from_secs(20),
        async || {
            let n = pods_of(&client, "after").await;
            (n == 2, n)
        },
    )
    .await;
    assert_ne!(holder(&cluster).await, first);
    assert!(worked(&standby.metrics().await.unwrap()));
}

const SLOW_ROLLOUT: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 10
  minReadySeconds: 1
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 2, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - {name: web, image: example.com/web:v1}
";

/// (active pods, of them on v2, ready).
async fn census(pods: &Api<Pod>) -> (usize, usize, usize) {
    let list = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items;
    let active: Vec<&Pod> = list
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let v2 = active
        .iter()
        .filter(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.containers[0].image.as_deref())
                == Some("example.com/web:v2")
        })
        .count();
    (active.len(), v2, active.iter().filter(|p| ready(p)).count())
}

#[tokio::test]
async fn a_rollout_survives_a_killed_controller_manager() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let client = cluster.client().await;
    let _kubelet = ReadyEveryPod::start(client.clone(), "default");
    let mut cm = ControllerManager::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("starts");
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], SLOW_ROLLOUT)
            .await,
        "apply",
    );
    let out = cluster
        .kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    expect_success(&out, "first rollout");
    expect_success(
        &cluster
            .kubectl(&["set", "image", "deployment/web", "web=example.com/web:v2"])
            .await,
        "set image",
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut killed = false;
    let mut restarted = None;
    loop {
        let (active, v2, _) = census(&pods).await;
        assert!(active <= 12, "more than replicas + maxSurge: {active}");
        if !killed && v2 > 0 && v2 < 10 {
            // In the middle of the rollout, without a chance to clean up.
            cm.kill();
            killed = true;
            tokio::time::sleep(Duration::from_millis(500)).await;
            restarted = Some(
                ControllerManager::start(&cluster, &["--leader-elect=false"])
                    .await
                    .expect("restarts"),
            );
        }
        if killed && v2 == 10 && active == 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rollout stuck at {active} pods, {v2} on v2"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(restarted.is_some(), "the kill happened mid-rollout");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    eventually(
        "the status says done",
        Duration::from_secs(20),
        async || {
            let s = deployments
                .get("web")
                .await
                .unwrap()
                .status
                .unwrap_or_default();
            let done = s.updated_replicas == Some(10)
                && s.available_replicas == Some(10)
                && s.replicas == Some(10);
            (done, s.replicas)
        },
    )
    .await;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        sets.list(&ListParams::default()).await.unwrap().items.len(),
        2,
        "one set per template"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(census(&pods).await.0, 10, "no extra pods after it settles");
}
