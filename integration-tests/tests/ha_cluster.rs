//! The whole topology, as the seed project ran it: two controllers and two
//! workers. A three-member etcd cluster and two apiservers behind a TCP
//! load balancer, two schedulers and two controller-managers with leader
//! election, and two worker nodes, each in a network namespace of its own
//! with its own pod CIDR and routes to the other's; everything (kubectl,
//! kubelets, kube-proxy, the daemons) goes through the balancer.
//!
//! A Deployment spreads over both workers; pods reach each other across
//! nodes by pod IP and through a Service. Then the faults: the leading
//! scheduler and controller-manager, one apiserver, one etcd member and
//! one worker's kubelet go; the leases move, no object is lost, and the
//! lost node's pods are recreated on the other. Last, everything stops
//! for longer than the node grace period and starts again: the cluster
//! comes back to the same objects and the same running containers.

use integration_tests::daemon::{ControllerManager, Daemon, Scheduler};
use integration_tests::node::{BUSYBOX_IMAGE, Node, NodeBuilder};
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use std::collections::BTreeSet;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(60);

/// Short leases, so a crashed leader is replaced within seconds.
const FAST_ELECTION: [&str; 4] = [
    "--leader-elect=true",
    "--leader-elect-lease-duration=2s",
    "--leader-elect-renew-deadline=1500ms",
    "--leader-elect-retry-period=200ms",
];

/// A silent node is noticed after this (upstream's default is 40 s).
const NODE_GRACE: Duration = Duration::from_secs(20);

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

/// (pod, node, IP) of each ready web pod that is not being deleted.
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

/// The holder of kube-system/`lease`, once there is one.
async fn holder(cluster: &Cluster, lease: &str) -> String {
    eventually(&format!("somebody holds {lease}"), WITHIN, async || {
        let h = cluster
            .get_jsonpath(
                &["-n", "kube-system", "lease", lease],
                "{.spec.holderIdentity}",
            )
            .await;
        (!h.is_empty(), h)
    })
    .await
}

/// Creates ConfigMaps `cm-N` for N in `range`, retrying each (a request
/// in flight when an apiserver or etcd member goes may fail).
async fn create_configmaps(cluster: &Cluster, range: std::ops::Range<usize>) {
    for n in range {
        let cm = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{n}, labels: {{ha: 'yes'}}}}\ndata: {{n: '{n}'}}\n"
        );
        eventually(&format!("cm-{n} is created"), WITHIN, async || {
            let out = cluster.kubectl_stdin(&["apply", "-f", "-"], &cm).await;
            (out.status.success(), out)
        })
        .await;
    }
}

async fn configmaps(cluster: &Cluster) -> usize {
    eventually("the ConfigMaps are listed", WITHIN, async || {
        let out = cluster
            .kubectl(&["get", "configmaps", "-l", "ha=yes", "-o", "name"])
            .await;
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).lines().count(),
        )
    })
    .await
}

/// Every object of the test with its uid (and a pod's node), one per line:
/// what must be the same after a restart of everything.
async fn objects(cluster: &Cluster) -> String {
    cluster
        .get_jsonpath(
            &["configmaps,deployments,replicasets,services,pods"],
            "{range .items[*]}{.kind}/{.metadata.name} {.metadata.uid} {.spec.nodeName} {.metadata.deletionTimestamp}\n{end}",
        )
        .await
}

/// Each pod's container ID and restart count, and its Ready condition.
async fn containers(cluster: &Cluster) -> String {
    cluster
        .get_jsonpath(
            &["pods"],
            "{range .items[*]}{.metadata.name} {.status.containerStatuses[0].containerID} {.status.containerStatuses[0].restartCount} {.status.conditions[?(@.type==\"Ready\")].status}\n{end}",
        )
        .await
}

async fn node_ready(cluster: &Cluster, node: &str) -> String {
    cluster
        .get_jsonpath(
            &["node", node],
            "{.status.conditions[?(@.type==\"Ready\")].status}",
        )
        .await
}

struct ControlPlane {
    schedulers: Vec<Daemon>,
    controller_managers: Vec<Daemon>,
}

/// Two schedulers and two controller-managers; the first of each leads.
/// Returns them with the first leaders' identities.
async fn control_plane(cluster: &Cluster) -> (ControlPlane, String, String) {
    let grace = format!("--node-monitor-grace-period={}s", NODE_GRACE.as_secs());
    let mut cm_args = FAST_ELECTION.to_vec();
    cm_args.extend(["--node-monitor-period=500ms", &grace]);
    let scheduler = Scheduler::start(cluster, &FAST_ELECTION)
        .await
        .expect("scheduler");
    let first_scheduler = holder(cluster, "kube-scheduler").await;
    let cm = ControllerManager::start(cluster, &cm_args)
        .await
        .expect("controller-manager");
    let first_cm = holder(cluster, "kube-controller-manager").await;
    let standby_scheduler = Scheduler::start(cluster, &FAST_ELECTION)
        .await
        .expect("standby scheduler");
    let standby_cm = ControllerManager::start(cluster, &cm_args)
        .await
        .expect("standby controller-manager");
    let plane = ControlPlane {
        schedulers: vec![scheduler, standby_scheduler],
        controller_managers: vec![cm, standby_cm],
    };
    (plane, first_scheduler, first_cm)
}

const PROXY_ARGS: [&str; 2] = ["--cluster-cidr=10.244.0.0/16", "--min-sync-period=100ms"];

#[tokio::test(flavor = "multi_thread")]
async fn two_controllers_and_two_workers_survive_faults_and_a_full_restart() {
    let mut cluster = Cluster::builder().ha().start().await.expect("HA cluster");
    let (mut plane, first_scheduler, first_cm) = control_plane(&cluster).await;
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
        node.start_kube_proxy(&PROXY_ARGS)
            .await
            .expect("kube-proxy");
    }
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], &manifest())
            .await,
        "apply",
    );
    create_configmaps(&cluster, 0..10).await;

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
    let service_reaches = async |cluster: &Cluster, pods: &[(String, String, String)]| {
        let names: BTreeSet<String> = pods.iter().map(|(p, _, _)| p.clone()).collect();
        eventually("the Service reaches every web pod", WITHIN, async || {
            let answers: BTreeSet<String> = cluster
                .http_from_pod("client", &format!("{ip} 80"), 20)
                .await
                .into_iter()
                .collect();
            (answers == names, answers)
        })
        .await;
    };
    service_reaches(&cluster, &pods).await;

    // The leaders crash without releasing their leases: the standbys take
    // over once the leases run out, and a scale-up still gets done.
    plane.schedulers[0].kill();
    plane.controller_managers[0].kill();
    expect_success(
        &cluster
            .kubectl(&["scale", "deployment", "web", "--replicas=4"])
            .await,
        "scale",
    );
    eventually("four ready web pods", WITHIN, async || {
        let pods = web_pods(&cluster).await;
        (pods.len() == 4, pods)
    })
    .await;
    assert_ne!(holder(&cluster, "kube-scheduler").await, first_scheduler);
    assert_ne!(holder(&cluster, "kube-controller-manager").await, first_cm);

    // One apiserver goes: the balancer sends everything to the other.
    cluster.stop_apiserver_at(0);
    create_configmaps(&cluster, 10..20).await;
    // One etcd member goes: the other two keep a quorum.
    cluster.kill_etcd_member(0);
    create_configmaps(&cluster, 20..30).await;
    assert_eq!(configmaps(&cluster).await, 30);

    // n2's kubelet goes silent: its pods are evicted and come back on n1.
    n2.stop_kubelet();
    eventually(
        "every replica runs on n1",
        NODE_GRACE + WITHIN,
        async || {
            let pods = web_pods(&cluster).await;
            let ok = pods.len() == 4 && pods.iter().all(|(_, n, _)| n == "n1");
            (ok, pods)
        },
    )
    .await;

    // Everything lost comes back; n2's kubelet removes its evicted pods.
    cluster
        .restart_etcd_member(0)
        .await
        .expect("the member rejoins");
    cluster
        .start_apiserver()
        .await
        .expect("apiserver 0 is back");
    n2.start_kubelet().await.expect("n2's kubelet is back");
    eventually("n2 is Ready", WITHIN, async || {
        let ready = node_ready(&cluster, "n2").await;
        (ready == "True", ready)
    })
    .await;
    let before = eventually("no pod is being deleted", WITHIN, async || {
        let objects = objects(&cluster).await;
        let done = objects.lines().all(|l| l.split_whitespace().count() <= 3);
        (done, objects)
    })
    .await;
    let running = containers(&cluster).await;
    assert_eq!(configmaps(&cluster).await, 30);

    // Restart everything, in the order of a power cut: the node daemons
    // and the control plane all stop, stay down past the node grace
    // period, and come back control plane first.
    for node in [&mut n1, &mut n2] {
        node.stop_daemon("kube-proxy");
        node.stop_kubelet();
    }
    drop(plane);
    cluster.stop_apiserver();
    cluster.stop_etcd_members();
    tokio::time::sleep(NODE_GRACE + Duration::from_secs(2)).await;
    cluster.start_etcd_members().await.expect("etcd is back");
    cluster
        .start_apiserver()
        .await
        .expect("the apiservers are back");
    let (_plane, _, _) = control_plane(&cluster).await;
    for node in [&mut n1, &mut n2] {
        restart_node(node).await;
    }

    // The same objects, the same containers, nothing restarted, and the
    // Service reaches every pod again.
    for node in ["n1", "n2"] {
        eventually(&format!("{node} is Ready"), WITHIN, async || {
            let ready = node_ready(&cluster, node).await;
            (ready == "True", ready)
        })
        .await;
    }
    eventually("the containers run on as before", WITHIN, async || {
        let now = containers(&cluster).await;
        (now == running, (now, running.clone()))
    })
    .await;
    let after = objects(&cluster).await;
    assert_eq!(after, before, "the objects changed across the restart");
    assert_eq!(configmaps(&cluster).await, 30);
    let pods = web_pods(&cluster).await;
    assert_eq!(pods.len(), 4, "{pods:?}");
    service_reaches(&cluster, &pods).await;
}

/// containerd, the kubelet and kube-proxy of `node` start again.
async fn restart_node(node: &mut Node) {
    node.restart_containerd().expect("containerd");
    node.start_kubelet().await.expect("kubelet");
    node.start_kube_proxy(&PROXY_ARGS)
        .await
        .expect("kube-proxy");
}
