//! The Deployment controller with the ReplicaSet controller, against the
//! real apiserver and etcd, driven with kubectl (the test marks pods Ready
//! as a kubelet would): a rollout from v1 to v2 within maxSurge and
//! maxUnavailable at every step, `rollout status`, `history`, `undo`,
//! `pause` / `resume`, and the status and conditions.

use integration_tests::daemon::ControllerManager;
use integration_tests::pod_status::{ReadyEveryPod, ready};
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::time::{Duration, Instant};

const WITHIN: Duration = Duration::from_secs(30);

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 4
  selector:
    matchLabels: {app: web}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: example.com/web:v1
";

/// (active pods, ready active pods, images of active pods).
async fn census(pods: &Api<Pod>) -> (usize, usize, Vec<String>) {
    let list = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let active: Vec<&Pod> = list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let mut images: Vec<String> = active
        .iter()
        .filter_map(|p| p.spec.as_ref()?.containers.first()?.image.clone())
        .collect();
    images.sort();
    (
        active.len(),
        active.iter().filter(|p| ready(p)).count(),
        images,
    )
}

async fn complete(deployments: &Api<Deployment>) -> bool {
    let d = deployments.get("web").await.unwrap();
    let s = d.status.unwrap_or_default();
    s.observed_generation == d.metadata.generation
        && s.updated_replicas == Some(4)
        && s.replicas == Some(4)
        && s.available_replicas == Some(4)
}

#[tokio::test]
async fn a_rollout_keeps_within_surge_and_unavailability_and_rolls_back() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let _cm = ControllerManager::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("controller-manager starts");
    let client = cluster.client().await;
    let _kubelet = ReadyEveryPod::start(client.clone(), "default");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");

    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], WEB).await,
        "apply",
    );
    let status = cluster
        .kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
        .await;
    let out = expect_success(&status, "rollout status");
    assert!(out.contains("successfully rolled out"), "{out}");
    let d = deployments.get("web").await.unwrap();
    let conditions: Vec<(String, String, Option<String>)> = d
        .status
        .unwrap()
        .conditions
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.type_, c.status, c.reason))
        .collect();
    assert!(
        conditions.contains(&(
            "Available".into(),
            "True".into(),
            Some("MinimumReplicasAvailable".into())
        )),
        "{conditions:?}"
    );
    assert!(
        conditions.contains(&(
            "Progressing".into(),
            "True".into(),
            Some("NewReplicaSetAvailable".into())
        )),
        "{conditions:?}"
    );
    let first = sets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(first.len(), 1);
    let first_name = first[0].metadata.name.clone().unwrap();
    let hash = first[0].metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
    assert_eq!(first_name, format!("web-{hash}"));

    // v1 -> v2: never more than 5 pods, never fewer than 4 ready.
    expect_success(
        &cluster
            .kubectl(&["set", "image", "deployment/web", "web=example.com/web:v2"])
            .await,
        "set image",
    );
    let deadline = Instant::now() + WITHIN;
    let mut steps = Vec::new();
    loop {
        let (active, ready_n, images) = census(&pods).await;
        assert!(
            active <= 5,
            "maxSurge 1 exceeded: {active} pods ({images:?})"
        );
        assert!(
            ready_n >= 4 || active < 4,
            "maxUnavailable 0 broken: {ready_n} ready of {active}"
        );
        if steps.last() != Some(&images) {
            steps.push(images.clone());
        }
        if images.iter().all(|i| i.ends_with(":v2"))
            && images.len() == 4
            && complete(&deployments).await
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rollout did not finish: {steps:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(steps.len() >= 3, "the rollout went step by step: {steps:?}");
    let history = expect_success(
        &cluster
            .kubectl(&["rollout", "history", "deployment/web"])
            .await,
        "history",
    );
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");

    // Undo: back to v1's ReplicaSet, now revision 3.
    expect_success(
        &cluster
            .kubectl(&["rollout", "undo", "deployment/web"])
            .await,
        "undo",
    );
    eventually("back on v1", WITHIN, async || {
        let (active, _, images) = census(&pods).await;
        let done = active == 4
            && images.iter().all(|i| i.ends_with(":v1"))
            && complete(&deployments).await;
        (done, images)
    })
    .await;
    let v1 = sets.get(&first_name).await.unwrap();
    assert_eq!(
        v1.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "3"
    );
    assert_eq!(
        sets.list(&ListParams::default()).await.unwrap().items.len(),
        2,
        "v1's set was reused"
    );

    // Paused: a new template makes no ReplicaSet until resumed.
    expect_success(
        &cluster
            .kubectl(&["rollout", "pause", "deployment/web"])
            .await,
        "pause",
    );
    expect_success(
        &cluster
            .kubectl(&["set", "image", "deployment/web", "web=example.com/web:v3"])
            .await,
        "set image",
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sets.list(&ListParams::default()).await.unwrap().items.len(),
        2,
        "paused"
    );
    let paused = deployments
        .get("web")
        .await
        .unwrap()
        .status
        .unwrap()
        .conditions
        .unwrap();
    assert!(
        paused
            .iter()
            .any(|c| c.reason.as_deref() == Some("DeploymentPaused")),
        "{paused:?}"
    );
    expect_success(
        &cluster
            .kubectl(&["rollout", "resume", "deployment/web"])
            .await,
        "resume",
    );
    let out = expect_success(
        &cluster
            .kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
            .await,
        "rollout status",
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let (_, _, images) = census(&pods).await;
    assert!(images.iter().all(|i| i.ends_with(":v3")), "{images:?}");

    // Scaling is not a rollout: the current set is resized.
    expect_success(
        &cluster
            .kubectl(&["scale", "deployment/web", "--replicas=2"])
            .await,
        "scale",
    );
    eventually("two pods", WITHIN, async || {
        let (active, _, images) = census(&pods).await;
        (active == 2, images)
    })
    .await;
    let events = expect_success(
        &cluster
            .kubectl(&[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=web",
                "-o",
                "custom-columns=R:.reason,M:.message",
                "--no-headers",
            ])
            .await,
        "events",
    );
    assert!(
        events.contains("ScalingReplicaSet") && events.contains("Scaled down replica set"),
        "{events}"
    );
}

#[tokio::test]
async fn restart_rolls_out_anew_and_a_stuck_rollout_exceeds_its_deadline() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let _cm = ControllerManager::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("controller-manager starts");
    let client = cluster.client().await;
    let _kubelet = ReadyEveryPod::start(client.clone(), "default");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], WEB).await,
        "apply",
    );
    expect_success(
        &cluster
            .kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
            .await,
        "rollout",
    );
    expect_success(
        &cluster
            .kubectl(&["rollout", "restart", "deployment/web"])
            .await,
        "restart",
    );
    expect_success(
        &cluster
            .kubectl(&["rollout", "status", "deployment/web", "--timeout=30s"])
            .await,
        "rollout",
    );
    assert_eq!(
        sets.list(&ListParams::default()).await.unwrap().items.len(),
        2,
        "the restart made a new set"
    );

    // Nobody makes these pods ready (no kubelet in this namespace).
    expect_success(
        &cluster.kubectl(&["create", "namespace", "stuck"]).await,
        "create ns",
    );
    let stuck = WEB.replace(
        "name: web\nspec:",
        "name: web\n  namespace: stuck\nspec:\n  progressDeadlineSeconds: 2",
    );
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], &stuck).await,
        "apply",
    );
    let out = cluster
        .kubectl(&[
            "rollout",
            "status",
            "deployment/web",
            "-n",
            "stuck",
            "--timeout=30s",
        ])
        .await;
    let err = integration_tests::expect_failure(&out, "rollout status of a stuck deployment");
    assert!(err.contains("exceeded its progress deadline"), "{err}");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "stuck");
    let d = deployments.get("web").await.unwrap();
    let progressing = d
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_deref()),
        ("False", Some("ProgressDeadlineExceeded"))
    );
}
