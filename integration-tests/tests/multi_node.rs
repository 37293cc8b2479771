//! Two worker nodes, each in a network namespace of its own with its own
//! pod CIDR and routes to the other's: a Deployment spreads over both,
//! pods reach each other across nodes by pod IP and through a Service
//! (kube-proxy on each node), and when one node's kubelet goes silent its
//! pod is evicted and recreated on the other.

use integration_tests::daemon::{ControllerManager, Scheduler};
use integration_tests::node::{BUSYBOX_IMAGE, NodeBuilder};
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use std::collections::BTreeSet;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(60);

fn manifest() -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      tolerations:
      - {{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}}
      - {{key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 2}}
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm: {{labelSelector: {{matchLabels: {{app: web}}}}, topologyKey: kubernetes.io/hostname}}
      containers:
      - name: httpd
        image: {BUSYBOX_IMAGE}
        imagePullPolicy: Never
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe:
          tcpSocket: {{port: http}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: http}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeName: n1
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: main, image: {BUSYBOX_IMAGE}, imagePullPolicy: Never, command: [sleep, "3600"]}}
"#
    )
}

/// (pod, node, IP) of each ready web pod.
async fn web_pods(cluster: &Cluster) -> Vec<(String, String, String)> {
    let out = cluster
        .get_jsonpath(
            &["pods", "-l", "app=web"],
            "{range .items[*]}{.metadata.name} {.spec.nodeName} {.status.podIP} {.status.conditions[?(@.type==\"Ready\")].status} {.metadata.deletionTimestamp}\n{end}",
        )
        .await;
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[3] == "True")
                .then(|| (f[0].to_string(), f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_on_two_nodes_reach_each_other_and_move_off_a_lost_node() {
    let cluster = Cluster::start().await.expect("cluster");
    let _cm = ControllerManager::start(
        &cluster,
        &[
            "--node-monitor-period=500ms",
            "--node-monitor-grace-period=20s",
        ],
    )
    .await
    .expect("controller-manager");
    let _scheduler = Scheduler::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("scheduler");
    let mut n1 = NodeBuilder::new("n1")
        .pod_cidr("10.244.0.0/24")
        .start(&cluster)
        .await
        .expect("n1");
    let mut n2 = NodeBuilder::new("n2")
        .pod_cidr("10.244.1.0/24")
        .start(&cluster)
        .await
        .expect("n2");
    n1.connect(&n2, 0).expect("routes between the nodes");
    for node in [&mut n1, &mut n2] {
        node.start_kube_proxy(&["--cluster-cidr=10.244.0.0/16", "--min-sync-period=100ms"])
            .await
            .expect("kube-proxy");
    }
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], &manifest())
            .await,
        "apply",
    );

    // One replica on each node.
    let pods = eventually("a ready web pod on each node", WITHIN, async || {
        let pods = web_pods(&cluster).await;
        let nodes: BTreeSet<&str> = pods.iter().map(|(_, n, _)| n.as_str()).collect();
        (pods.len() == 2 && nodes.len() == 2, pods)
    })
    .await;
    eventually("the client runs", WITHIN, async || {
        let phase = cluster
            .get_jsonpath(&["pod", "client"], "{.status.phase}")
            .await;
        (phase == "Running", phase)
    })
    .await;
    // From n1 to the pod on n2, by its IP.
    let (remote, _, remote_ip) = pods.iter().find(|(_, n, _)| n == "n2").cloned().unwrap();
    let answers = cluster
        .http_from_pod("client", &format!("{remote_ip} 8080"), 3)
        .await;
    assert!(answers.iter().all(|a| *a == remote), "{answers:?}");
    // Through the Service: both pods answer.
    let ip = cluster
        .get_jsonpath(&["svc", "web"], "{.spec.clusterIP}")
        .await;
    let names: BTreeSet<String> = pods.iter().map(|(p, _, _)| p.clone()).collect();
    eventually("the Service reaches both nodes' pods", WITHIN, async || {
        let answers: BTreeSet<String> = cluster
            .http_from_pod("client", &format!("{ip} 80"), 20)
            .await
            .into_iter()
            .collect();
        (answers == names, answers)
    })
    .await;

    // n2's kubelet goes silent: its pod is evicted and comes back on n1.
    n2.stop_kubelet();
    let moved = eventually(
        "both replicas run on n1",
        Duration::from_secs(90),
        async || {
            let pods = web_pods(&cluster).await;
            let ok = pods.len() == 2
                && pods.iter().all(|(_, n, _)| n == "n1")
                && !pods.iter().any(|(p, _, _)| *p == remote);
            let all = cluster.kubectl(&["get", "pods", "-o", "wide"]).await;
            let nodes = cluster.kubectl(&["get", "nodes"]).await;
            let seen = format!(
                "{pods:?}\n{}\n{}",
                String::from_utf8_lossy(&all.stdout),
                String::from_utf8_lossy(&nodes.stdout)
            );
            (ok, (pods, seen))
        },
    )
    .await
    .0;
    assert_eq!(moved.len(), 2);
}
