//! The kubelet against the real apiserver and etcd, running pods for real
//! on the real containerd (in a network namespace made by the test) with
//! runc and the CNI bridge: pods bound to the node start and report their
//! status as upstream, crash loops back off, init containers run first,
//! env and volumes come from ConfigMaps and Secrets, deleted pods stop
//! within their grace period, and a restarted kubelet adopts its pods.

use integration_tests::node::{BUSYBOX_IMAGE, Node, NodeBuilder};
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use k8s_openapi::api::core::v1::{Node as NodeObject, Pod};
use kube::api::{Api, PostParams};
use serde_json::json;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(30);

async fn start() -> (Cluster, Node) {
    let cluster = Cluster::start().await.expect("cluster");
    let node = NodeBuilder::new("n1").start(&cluster).await.expect("node");
    (cluster, node)
}

async fn create(pods: &Api<Pod>, pod: serde_json::Value) -> Pod {
    let pod: Pod = serde_json::from_value(pod).unwrap();
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod")
}

fn busybox(name: &str, script: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": "n1",
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "main", "image": BUSYBOX_IMAGE, "command": ["sh", "-c", script]}]
        }
    })
}

/// The text containerd wrote to the container's CRI log (attempt `n`).
fn log_of(node: &Node, pod: &Pod, container: &str, n: u32) -> String {
    let dir = node.dir.join("pod-logs").join(format!(
        "default_{}_{}",
        pod.metadata.name.as_deref().unwrap(),
        pod.metadata.uid.as_deref().unwrap()
    ));
    std::fs::read_to_string(dir.join(container).join(format!("{n}.log")))
        .unwrap_or_default()
        .lines()
        // CRI format: "<time> <stream> <P|F> <text>".
        .filter_map(|l| l.splitn(4, ' ').nth(3))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn phase_of(pods: &Api<Pod>, name: &str) -> (String, Pod) {
    let pod = pods.get(name).await.expect("get pod");
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    (phase, pod)
}

#[tokio::test(flavor = "multi_thread")]
async fn node_registers_and_a_pod_runs_with_its_status() {
    let (cluster, node) = start().await;
    let client = cluster.client().await;
    let nodes: Api<NodeObject> = Api::all(client.clone());
    let n = nodes.get("n1").await.unwrap();
    let labels = n.metadata.labels.clone().unwrap();
    assert_eq!(labels["kubernetes.io/hostname"], "n1");
    assert_eq!(labels["kubernetes.io/os"], "linux");
    let status = n.status.clone().unwrap();
    let info = status.node_info.unwrap();
    assert!(
        info.container_runtime_version.starts_with("containerd://"),
        "{info:?}"
    );
    assert_eq!(info.kubelet_version, "v1.33.0");
    assert!(status.capacity.unwrap().contains_key("ephemeral-storage"));
    assert_eq!(n.spec.unwrap().pod_cidr.as_deref(), Some("10.244.0.0/24"));
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "kube-node-lease");
    let lease = leases.get("n1").await.expect("node lease");
    assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some("n1"));

    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    create(
        &pods,
        busybox("hello", "echo hello from $(hostname); sleep 3600"),
    )
    .await;
    let pod = eventually("the pod runs", WITHIN, async || {
        let (phase, pod) = phase_of(&pods, "hello").await;
        (phase == "Running", pod)
    })
    .await;
    let status = pod.status.clone().unwrap();
    let ip: std::net::Ipv4Addr = status.pod_ip.clone().unwrap().parse().unwrap();
    assert_eq!(
        ip.octets()[..3],
        [10, 244, 0],
        "pod IP from the node's podCIDR"
    );
    assert_eq!(status.host_ip.as_deref(), Some("127.0.0.1"));
    let cs = &status.container_statuses.clone().unwrap()[0];
    assert!(cs.ready && cs.started == Some(true));
    assert!(
        cs.container_id
            .as_deref()
            .unwrap()
            .starts_with("containerd://")
    );
    assert!(!cs.image_id.is_empty());
    let ready = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
    let table = expect_success(
        &cluster.kubectl(&["get", "pod", "hello"]).await,
        "kubectl get pod",
    );
    let row = table
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>();
    assert_eq!(&row[..4], ["hello", "1/1", "Running", "0"], "{table}");
    let log = eventually("the container's output", WITHIN, async || {
        let log = log_of(&node, &pod, "main", 0);
        (log.contains("hello from hello"), log)
    })
    .await;
    assert!(log.contains("hello from hello"));
    // The pod answers inside the node's network namespace.
    let ping = node
        .netns_exec(&["busybox", "ping", "-c1", "-W2", &ip.to_string()])
        .unwrap();
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let metrics = node.kubelet_metrics().await.unwrap();
    assert!(
        metrics.contains("kubelet_runtime_operations_total{operation_type=\"run_podsandbox\"}")
    );
}
