//! The DaemonSet controller against the real apiserver and etcd, with
//! Node objects written by the test and pods marked Ready by it (no
//! scheduler or kubelet): a pod per eligible node (a tainted node gets
//! none), pinned to its node; a new node gets one, a removed node's goes;
//! a new template rolls out to every node (`kubectl rollout status`), and
//! `kubectl rollout history` / `undo` work on its ControllerRevisions.

use integration_tests::daemon::ControllerManager;
use integration_tests::pod_status::ReadyEveryPod;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(20);

const AGENT: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - {name: agent, image: example.com/agent:v1}
";

async fn add_node(nodes: &Api<Node>, name: &str, taint: bool) {
    let mut node =
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {}});
    if taint {
        node["spec"]["taints"] =
            json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]);
    }
    let node: Node = serde_json::from_value(node).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    // Ready, as a kubelet would report it (the node lifecycle controller
    // taints nodes that are not).
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True",
        "lastHeartbeatTime": now, "lastTransitionTime": now}]}});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
}

/// The nodes the agent's live pods are for, with their images.
async fn placement(pods: &Api<Pod>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = pods
        .list(&ListParams::default().labels("app=agent"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            let spec = p.spec.unwrap_or_default();
            let node = spec
                .affinity
                .and_then(|a| a.node_affinity)
                .and_then(|n| n.required_during_scheduling_ignored_during_execution)
                .and_then(|r| r.node_selector_terms.into_iter().next())
                .and_then(|t| t.match_fields)
                .and_then(|f| f.into_iter().next())
                .and_then(|f| f.values)
                .and_then(|v| v.into_iter().next())
                .unwrap_or_default();
            (node, spec.containers[0].image.clone().unwrap_or_default())
        })
        .collect();
    out.sort();
    out
}

fn on(nodes: &[&str], image: &str) -> Vec<(String, String)> {
    nodes
        .iter()
        .map(|n| (n.to_string(), image.to_string()))
        .collect()
}

#[tokio::test]
async fn a_daemon_set_runs_a_pod_per_eligible_node_and_rolls_out() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let _cm = ControllerManager::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("controller-manager starts");
    let client = cluster.client().await;
    let _kubelet = ReadyEveryPod::start(client.clone(), "default");
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    add_node(&nodes, "n1", false).await;
    add_node(&nodes, "n2", false).await;
    add_node(&nodes, "db", true).await;
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], AGENT).await,
        "apply",
    );
    let v1 = "example.com/agent:v1";
    eventually(
        "a pod on n1 and n2, none on the tainted node",
        WITHIN,
        async || {
            let p = placement(&pods).await;
            (p == on(&["n1", "n2"], v1), p)
        },
    )
    .await;

    add_node(&nodes, "n3", false).await;
    nodes.delete("n2", &DeleteParams::default()).await.unwrap();
    eventually("n3 gains one, n2's goes", WITHIN, async || {
        let p = placement(&pods).await;
        (p == on(&["n1", "n3"], v1), p)
    })
    .await;

    expect_success(
        &cluster
            .kubectl(&[
                "set",
                "image",
                "daemonset/agent",
                "agent=example.com/agent:v2",
            ])
            .await,
        "set image",
    );
    let out = cluster
        .kubectl(&["rollout", "status", "daemonset/agent", "--timeout=30s"])
        .await;
    let text = expect_success(&out, "rollout status");
    assert!(text.contains("successfully rolled out"), "{text}");
    assert_eq!(
        placement(&pods).await,
        on(&["n1", "n3"], "example.com/agent:v2")
    );

    // Its templates are ControllerRevisions: history lists both, undo goes back.
    let history = expect_success(
        &cluster
            .kubectl(&["rollout", "history", "daemonset/agent"])
            .await,
        "history",
    );
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    expect_success(
        &cluster
            .kubectl(&["rollout", "undo", "daemonset/agent"])
            .await,
        "undo",
    );
    eventually("back on v1", WITHIN, async || {
        let p = placement(&pods).await;
        (p == on(&["n1", "n3"], v1), p)
    })
    .await;
}
