//! The node lifecycle and taint eviction controllers against the real
//! apiserver and etcd, with a Node and its Lease written by the test (no
//! kubelet): while the lease is renewed the node stays Ready; once it
//! stops, the node goes Unknown, is tainted unreachable, and its pods are
//! evicted at once, after their tolerationSeconds, or never.

use integration_tests::apiserver::TEST_DISABLED_ADMISSION_PLUGINS;
use integration_tests::daemon::ControllerManager;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::{Duration, Instant};

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn pod(name: &str, tolerations: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: worker
  tolerations: {tolerations}
  containers: [{{name: c, image: busybox}}]
"
    )
}

async fn evicted(pods: &Api<Pod>, name: &str) -> bool {
    pods.get_opt(name)
        .await
        .unwrap()
        .is_none_or(|p| p.metadata.deletion_timestamp.is_some())
}

#[tokio::test]
async fn a_silent_node_goes_unknown_is_tainted_and_loses_its_pods() {
    // Without DefaultTolerationSeconds, a pod with no toleration goes at once.
    let cluster = Cluster::builder()
        .apiserver_arg(format!(
            "--disable-admission-plugins={TEST_DISABLED_ADMISSION_PLUGINS},DefaultTolerationSeconds"
        ))
        .start()
        .await
        .expect("cluster starts");
    let client = cluster.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker"}});
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(node).unwrap(),
        )
        .await
        .unwrap();
    let t = now();
    let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
        "lastHeartbeatTime": t, "lastTransitionTime": t}]}});
    nodes
        .patch_status("worker", &PatchParams::default(), &Patch::Merge(ready))
        .await
        .unwrap();
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "worker"},
        "spec": {"holderIdentity": "worker", "leaseDurationSeconds": 40, "renewTime": now()}});
    leases
        .create(
            &PostParams::default(),
            &serde_json::from_value(lease).unwrap(),
        )
        .await
        .unwrap();
    let _cm = ControllerManager::start(
        &cluster,
        &[
            "--leader-elect=false",
            "--node-monitor-period=500ms",
            "--node-monitor-grace-period=3s",
        ],
    )
    .await
    .expect("controller-manager starts");
    let unreachable = "[{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 4}]";
    for (name, tolerations) in [
        ("plain", "[]"),
        ("patient", unreachable),
        ("stubborn", "[{operator: Exists}]"),
    ] {
        expect_success(
            &cluster
                .kubectl_stdin(&["apply", "-f", "-"], &pod(name, tolerations))
                .await,
            "apply",
        );
    }

    // Renewing the lease (the kubelet's heartbeat) keeps it Ready past the grace period.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let renew = json!({"spec": {"renewTime": now()}});
        leases
            .patch("worker", &PatchParams::default(), &Patch::Merge(renew))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ready_status = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| {
                c.iter()
                    .find(|c| c.type_ == "Ready")
                    .map(|c| c.status.clone())
            })
    };
    assert_eq!(
        ready_status(&nodes.get("worker").await.unwrap()).as_deref(),
        Some("True")
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    assert!(!evicted(&pods, "plain").await);

    // Silence: Unknown, tainted, and the pod without a toleration goes.
    let node = eventually(
        "Ready Unknown and tainted",
        Duration::from_secs(15),
        async || {
            let n = nodes.get("worker").await.unwrap();
            let tainted = n
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|t| {
                    t.iter().any(|t| {
                        t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute"
                    })
                });
            (
                ready_status(&n).as_deref() == Some("Unknown") && tainted,
                n.spec,
            )
        },
    )
    .await;
    assert!(node.is_some());
    eventually("plain evicted", Duration::from_secs(10), async || {
        let gone = evicted(&pods, "plain").await;
        (gone, gone)
    })
    .await;
    assert!(!evicted(&pods, "patient").await, "tolerates for 4 s");
    eventually(
        "patient evicted after its tolerationSeconds",
        Duration::from_secs(15),
        async || {
            let gone = evicted(&pods, "patient").await;
            (gone, gone)
        },
    )
    .await;
    assert!(!evicted(&pods, "stubborn").await, "tolerates forever");
}
