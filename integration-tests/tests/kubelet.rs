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
    // kubectl logs goes through the apiserver to the kubelet.
    let logs = expect_success(&cluster.kubectl(&["logs", "hello"]).await, "kubectl logs");
    assert_eq!(logs, "hello from hello\n");
    let stamped = expect_success(
        &cluster.kubectl(&["logs", "hello", "--timestamps"]).await,
        "logs",
    );
    assert!(
        stamped.starts_with("20") && stamped.ends_with(" hello from hello\n"),
        "{stamped}"
    );
    let missing = cluster.kubectl(&["logs", "hello", "-c", "nope"]).await;
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("container nope is not valid for pod hello"),
        "{missing:?}"
    );
    // The kubelet API wants a client certificate.
    let anonymous = std::process::Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("https://127.0.0.1:{}/pods", node.kubelet_port))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&anonymous.stdout), "401");
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

fn container_status(pod: &Pod) -> k8s_openapi::api::core::v1::ContainerStatus {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first().cloned())
        .unwrap_or_default()
}

fn waiting_reason(pod: &Pod) -> Option<String> {
    container_status(pod)
        .state
        .and_then(|s| s.waiting)
        .and_then(|w| w.reason)
}

/// The STATUS and RESTARTS columns kubectl prints for `name`.
async fn kubectl_status(cluster: &Cluster, name: &str) -> (String, String) {
    let table = expect_success(&cluster.kubectl(&["get", "pod", name]).await, "get pod");
    let row: Vec<String> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    (
        row.get(2).cloned().unwrap_or_default(),
        row.get(3).cloned().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashing_container_backs_off_with_growing_restarts() {
    let (cluster, _node) = start().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    create(&pods, busybox("crasher", "echo boom; exit 3")).await;
    let pod = eventually("CrashLoopBackOff", WITHIN, async || {
        let (_, pod) = phase_of(&pods, "crasher").await;
        (
            waiting_reason(&pod).as_deref() == Some("CrashLoopBackOff"),
            pod,
        )
    })
    .await;
    let cs = container_status(&pod);
    let last = cs.last_state.unwrap().terminated.unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (3, Some("Error")));
    let (status, _) = kubectl_status(&cluster, "crasher").await;
    assert_eq!(status, "CrashLoopBackOff");
    // The instance before the current one, and the current one's last line.
    let previous = expect_success(
        &cluster.kubectl(&["logs", "crasher", "--previous"]).await,
        "logs --previous",
    );
    assert_eq!(previous, "boom\n");
    let tail = expect_success(
        &cluster.kubectl(&["logs", "crasher", "--tail=1"]).await,
        "logs --tail",
    );
    assert_eq!(tail, "boom\n");
    // The first restart is at once, the next after 10 s of back-off.
    let pod = eventually(
        "a second restart after the back-off",
        Duration::from_secs(40),
        async || {
            let (_, pod) = phase_of(&pods, "crasher").await;
            (container_status(&pod).restart_count >= 2, pod)
        },
    )
    .await;
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Running"));
    let msg = eventually("the back-off message", WITHIN, async || {
        let (_, pod) = phase_of(&pods, "crasher").await;
        let msg = container_status(&pod)
            .state
            .and_then(|s| s.waiting)
            .and_then(|w| w.message)
            .unwrap_or_default();
        (
            msg.starts_with("back-off 20s restarting failed container=main"),
            msg,
        )
    })
    .await;
    assert!(msg.contains("pod=crasher_default("), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn init_containers_env_and_volumes_from_configmaps_and_secrets() {
    let (cluster, node) = start().await;
    let client = cluster.client().await;
    expect_success(
        &cluster
            .kubectl(&[
                "create",
                "configmap",
                "cfg",
                "--from-literal=greeting=hello",
                "--from-literal=file.txt=first",
            ])
            .await,
        "create configmap",
    );
    expect_success(
        &cluster
            .kubectl(&[
                "create",
                "secret",
                "generic",
                "sec",
                "--from-literal=password=s3cret",
            ])
            .await,
        "create secret",
    );
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let pod = create(
        &pods,
        json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "labels": {"tier": "web"}},
            "spec": {
                "nodeName": "n1",
                "terminationGracePeriodSeconds": 1,
                "initContainers": [
                    {"name": "first", "image": BUSYBOX_IMAGE, "command": ["sh", "-c", "echo first > /work/order"],
                     "volumeMounts": [{"name": "work", "mountPath": "/work"}]},
                    {"name": "second", "image": BUSYBOX_IMAGE, "command": ["sh", "-c", "echo second >> /work/order"],
                     "volumeMounts": [{"name": "work", "mountPath": "/work"}]}
                ],
                "containers": [{
                    "name": "main", "image": BUSYBOX_IMAGE,
                    "command": ["sh", "-c", "cat /work/order; echo \"G=$GREETING P=$PASS N=$NODE T=$TIER M=$(MSG)\"; cat /cfg/file.txt; echo; cat /sec/password; echo; cat /info/labels; echo; sleep 3600"],
                    "env": [
                        {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
                        {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
                        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                        {"name": "TIER", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier']"}}},
                        {"name": "MSG", "value": "$(GREETING)-world"}
                    ],
                    "volumeMounts": [
                        {"name": "work", "mountPath": "/work"},
                        {"name": "cfg", "mountPath": "/cfg"},
                        {"name": "sec", "mountPath": "/sec"},
                        {"name": "info", "mountPath": "/info"},
                        {"name": "mem", "mountPath": "/mem"}
                    ]
                }],
                "volumes": [
                    {"name": "work", "emptyDir": {}},
                    {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                    {"name": "cfg", "configMap": {"name": "cfg"}},
                    {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 256}},
                    {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}
                ]
            }
        }),
    )
    .await;
    let running = eventually(
        "the pod runs after its init containers",
        WITHIN,
        async || {
            let (phase, pod) = phase_of(&pods, "app").await;
            (phase == "Running", pod)
        },
    )
    .await;
    let init = running
        .status
        .as_ref()
        .unwrap()
        .init_container_statuses
        .clone()
        .unwrap();
    assert!(init.iter().all(|s| {
        s.state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code
            == 0
    }));
    let log = eventually("the container's output", WITHIN, async || {
        let log = log_of(&node, &pod, "main", 0);
        (log.contains("tier="), log)
    })
    .await;
    assert!(
        log.starts_with("first\nsecond\n"),
        "init containers ran in order: {log}"
    );
    assert!(
        log.contains("G=hello P=s3cret N=n1 T=web M=hello-world"),
        "{log}"
    );
    assert!(log.contains("\nfirst\n"), "configMap volume: {log}");
    assert!(log.contains("\ns3cret\n"), "secret volume: {log}");
    assert!(log.contains("tier=\"web\""), "downwardAPI volume: {log}");
    // A ConfigMap update reaches the running container's volume.
    expect_success(
        &cluster
            .kubectl(&[
                "patch",
                "configmap",
                "cfg",
                "-p",
                r#"{"data":{"file.txt":"second"}}"#,
            ])
            .await,
        "patch configmap",
    );
    let runtime = node.runtime().unwrap();
    let id = container_status(&running)
        .container_id
        .unwrap()
        .trim_start_matches("containerd://")
        .to_string();
    let updated = eventually(
        "the updated file inside the container",
        WITHIN,
        async || {
            let out = runtime
                .exec_sync(
                    &id,
                    vec!["cat".into(), "/cfg/file.txt".into()],
                    Duration::from_secs(5),
                )
                .await
                .map(|r| String::from_utf8_lossy(&r.stdout).into_owned())
                .map_err(|e| e.message().to_string());
            (out.as_deref() == Ok("second"), out)
        },
    )
    .await;
    assert_eq!(updated.as_deref(), Ok("second"));
    let mode = runtime
        .exec_sync(
            &id,
            vec![
                "stat".into(),
                "-L".into(),
                "-c".into(),
                "%a".into(),
                "/sec/password".into(),
            ],
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&mode.stdout).trim(), "400");
    let df = runtime
        .exec_sync(
            &id,
            vec![
                "sh".into(),
                "-c".into(),
                "grep ' /mem ' /proc/mounts".into(),
            ],
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&df.stdout).starts_with("tmpfs"),
        "{df:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_configmap_is_a_config_error_until_it_exists() {
    let (cluster, _node) = start().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    let mut pod = busybox("needs-cfg", "echo $X; sleep 3600");
    pod["spec"]["containers"][0]["env"] =
        json!([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "x"}}}]);
    create(&pods, pod).await;
    let pod = eventually("CreateContainerConfigError", WITHIN, async || {
        let (_, pod) = phase_of(&pods, "needs-cfg").await;
        (
            waiting_reason(&pod).as_deref() == Some("CreateContainerConfigError"),
            pod,
        )
    })
    .await;
    let msg = container_status(&pod)
        .state
        .unwrap()
        .waiting
        .unwrap()
        .message
        .unwrap();
    assert_eq!(msg, "configmap \"later\" not found");
    expect_success(
        &cluster
            .kubectl(&["create", "configmap", "later", "--from-literal=x=1"])
            .await,
        "create configmap",
    );
    eventually(
        "the pod runs once the configmap exists",
        WITHIN,
        async || {
            let (phase, pod) = phase_of(&pods, "needs-cfg").await;
            (phase == "Running", pod.status)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jobs_pod_completes() {
    let (cluster, _node) = start().await;
    let _cm = integration_tests::daemon::ControllerManager::start(&cluster, &["--controllers=job"])
        .await
        .unwrap();
    let job = format!(
        "apiVersion: batch/v1
kind: Job
metadata: {{name: once}}
spec:
  backoffLimit: 0
  template:
    spec:
      nodeName: n1
      restartPolicy: Never
      containers:
      - {{name: work, image: {BUSYBOX_IMAGE}, command: [sh, -c, 'echo done']}}
"
    );
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], &job).await,
        "apply job",
    );
    let out = eventually("the job completes", Duration::from_secs(60), async || {
        let out = cluster
            .kubectl(&["get", "job", "once", "-o", "jsonpath={.status.succeeded}"])
            .await;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text == "1", text)
    })
    .await;
    assert_eq!(out, "1");
    let pods = expect_success(
        &cluster
            .kubectl(&["get", "pods", "-l", "job-name=once"])
            .await,
        "get pods",
    );
    let row: Vec<&str> = pods.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[1..4], ["0/1", "Completed", "0"], "{pods}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_pod_stops_its_containers_within_the_grace_period() {
    let (cluster, node) = start().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    // sh as PID 1 ignores SIGTERM: only the SIGKILL after the grace period ends it.
    let mut pod = busybox("stubborn", "sleep 3600");
    pod["spec"]["containers"][0]["lifecycle"] =
        json!({"preStop": {"exec": {"command": ["sh", "-c", "echo bye > /proc/1/fd/1"]}}});
    let created = create(&pods, pod).await;
    eventually("the pod runs", WITHIN, async || {
        let (phase, _) = phase_of(&pods, "stubborn").await;
        (phase == "Running", phase)
    })
    .await;
    let started = std::time::Instant::now();
    expect_success(
        &cluster
            .kubectl(&["delete", "pod", "stubborn", "--wait=false"])
            .await,
        "delete",
    );
    let (status, _) = kubectl_status(&cluster, "stubborn").await;
    assert_eq!(status, "Terminating");
    eventually("the pod is gone", Duration::from_secs(20), async || {
        let gone = pods.get_opt("stubborn").await.unwrap().is_none();
        (gone, started.elapsed())
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited for the grace period"
    );
    let runtime = node.runtime().unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    let left = eventually(
        "its containers and sandbox are removed",
        WITHIN,
        async || {
            let sandboxes = runtime.sandboxes(None).await.unwrap();
            let mine = sandboxes
                .iter()
                .filter(|s| s.labels.get(kubelet::cri::labels::POD_UID) == Some(&uid))
                .count();
            (mine == 0, mine)
        },
    )
    .await;
    assert_eq!(left, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_kubelet_adopts_its_running_pods() {
    let (cluster, mut node) = start().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    create(&pods, busybox("survivor", "sleep 3600")).await;
    create(&pods, busybox("doomed", "sleep 3600")).await;
    let before = eventually("the pods run", WITHIN, async || {
        let (a, pa) = phase_of(&pods, "survivor").await;
        let (b, _) = phase_of(&pods, "doomed").await;
        (a == "Running" && b == "Running", pa)
    })
    .await;
    node.kill_kubelet();
    // Deleted for good while the kubelet is down: nobody stops its containers.
    expect_success(
        &cluster
            .kubectl(&["delete", "pod", "doomed", "--grace-period=0", "--force"])
            .await,
        "force delete",
    );
    node.start_kubelet().await.unwrap();
    let runtime = node.runtime().unwrap();
    eventually(
        "the orphaned pod's sandbox is removed",
        WITHIN,
        async || {
            let left: Vec<String> = runtime
                .sandboxes(None)
                .await
                .unwrap()
                .into_iter()
                .filter_map(|s| s.labels.get(kubelet::cri::labels::POD_NAME).cloned())
                .collect();
            (left == ["survivor"], left)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (phase, after) = phase_of(&pods, "survivor").await;
    assert_eq!(phase, "Running");
    let (b, a) = (container_status(&before), container_status(&after));
    assert_eq!(
        a.container_id, b.container_id,
        "the same container, not a new one"
    );
    assert_eq!(a.restart_count, 0);
    assert_eq!(
        runtime.containers(None).await.unwrap().len(),
        1,
        "no container was started again"
    );
}

fn condition(pod: &Pod, kind: &str) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == kind))
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_drive_readiness_and_restart_on_liveness_failure() {
    let (cluster, node) = start().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    let mut pod = busybox(
        "web",
        "mkdir -p /www && echo ok > /www/healthz && exec httpd -f -p 8080 -h /www",
    );
    pod["spec"]["containers"][0]["ports"] = json!([{"name": "http", "containerPort": 8080}]);
    pod["spec"]["containers"][0]["startupProbe"] =
        json!({"tcpSocket": {"port": "http"}, "periodSeconds": 1, "failureThreshold": 30});
    pod["spec"]["containers"][0]["readinessProbe"] = json!({"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1, "failureThreshold": 1});
    pod["spec"]["containers"][0]["livenessProbe"] = json!({"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1, "failureThreshold": 2});
    create(&pods, pod).await;
    let pod = eventually("running and started, not ready", WITHIN, async || {
        let (phase, pod) = phase_of(&pods, "web").await;
        let started = container_status(&pod).started == Some(true);
        (phase == "Running" && started, pod)
    })
    .await;
    assert_eq!(condition(&pod, "Ready"), "False");
    assert!(!container_status(&pod).ready);
    let (_, ready_col) = {
        let table = expect_success(&cluster.kubectl(&["get", "pod", "web"]).await, "get");
        let row: Vec<String> = table
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .map(String::from)
            .collect();
        (row[0].clone(), row[1].clone())
    };
    assert_eq!(ready_col, "0/1");
    let runtime = node.runtime().unwrap();
    let id = container_status(&pod)
        .container_id
        .unwrap()
        .trim_start_matches("containerd://")
        .to_string();
    let sh = |script: &str| vec!["sh".to_string(), "-c".to_string(), script.to_string()];
    runtime
        .exec_sync(&id, sh("touch /tmp/ready"), Duration::from_secs(5))
        .await
        .unwrap();
    eventually("readiness turns Ready", WITHIN, async || {
        let (_, pod) = phase_of(&pods, "web").await;
        (condition(&pod, "Ready") == "True", pod.status)
    })
    .await;
    runtime
        .exec_sync(&id, sh("rm /tmp/ready"), Duration::from_secs(5))
        .await
        .unwrap();
    eventually("readiness turns unready", WITHIN, async || {
        let (_, pod) = phase_of(&pods, "web").await;
        (condition(&pod, "Ready") == "False", pod.status)
    })
    .await;
    // httpd answers 404 without the file: the liveness probe fails twice.
    runtime
        .exec_sync(&id, sh("rm /www/healthz"), Duration::from_secs(5))
        .await
        .unwrap();
    let pod = eventually("the container is restarted", WITHIN, async || {
        let (_, pod) = phase_of(&pods, "web").await;
        let cs = container_status(&pod);
        (cs.restart_count == 1 && cs.started == Some(true), pod)
    })
    .await;
    let cs = container_status(&pod);
    assert_ne!(
        cs.container_id.as_deref(),
        Some(format!("containerd://{id}").as_str())
    );
    assert!(cs.last_state.unwrap().terminated.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_attach_and_port_forward_through_the_apiserver() {
    let (cluster, node) = start().await;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    let mut web = busybox(
        "web",
        "mkdir -p /www; echo served-by-busybox > /www/index.html; (while true; do echo tick; sleep 0.3; done) & exec httpd -f -p 8080 -h /www",
    );
    web["spec"]["containers"][0]["ports"] = json!([{"containerPort": 8080}]);
    create(&pods, web).await;
    eventually("the pod runs", WITHIN, async || {
        let (phase, _) = phase_of(&pods, "web").await;
        (phase == "Running", phase)
    })
    .await;
    let spdy = cluster
        .kubectl_runner()
        .with_env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false");
    for (how, kubectl) in [
        ("websocket", cluster.kubectl_runner().clone()),
        ("spdy", spdy),
    ] {
        let out = kubectl
            .run(&[
                "exec",
                "web",
                "--",
                "sh",
                "-c",
                "echo out; echo err >&2; exit 7",
            ])
            .await;
        assert_eq!(out.status.code(), Some(7), "{how}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n", "{how}");
        if how == "websocket" {
            let log = node.kubelet_log_tail(400);
            assert!(
                log.contains("relaying a v5.channel.k8s.io WebSocket"),
                "kubectl's WebSocket was served, not refused"
            );
        }
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("err"),
            "{how}: {out:?}"
        );
        // Piped stdin reaches the command and its end ends it.
        let cat = kubectl
            .run_stdin(
                &["exec", "-i", "web", "--", "sh", "-c", "cat; echo done"],
                "line one\nline two\n",
            )
            .await;
        assert!(cat.status.success(), "{how}: {cat:?}");
        assert_eq!(
            String::from_utf8_lossy(&cat.stdout),
            "line one\nline two\ndone\n",
            "{how}"
        );
    }
    // exec -it with a terminal (script gives kubectl one): the command gets a tty.
    let kubeconfig = cluster.kubeconfig_path().display().to_string();
    let tty = tokio::process::Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "kubectl --kubeconfig={kubeconfig} exec -it web -- sh -c 'tty; exit 3'"
        ))
        .arg("/dev/null")
        .env("HOME", cluster.dir())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&tty.stdout);
    assert!(
        text.contains("/dev/pts/"),
        "a terminal inside: {text:?} {tty:?}"
    );
    assert_eq!(tty.status.code(), Some(3), "{tty:?}");
    // nodes/proxy reaches the kubelet API.
    let listed = expect_success(
        &cluster
            .kubectl(&["get", "--raw", "/api/v1/nodes/n1/proxy/pods"])
            .await,
        "proxy",
    );
    let list: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(list["items"][0]["metadata"]["name"], "web");
    let cadvisor = expect_success(
        &cluster
            .kubectl(&["get", "--raw", "/api/v1/nodes/n1/proxy/metrics/cadvisor"])
            .await,
        "cadvisor",
    );
    assert!(
        cadvisor.contains("container_cpu_usage_seconds_total{container=\"main\""),
        "{cadvisor}"
    );
    // logs -f follows the running container.
    let follow = cluster.kubectl_spawn(&["logs", "-f", "web"]);
    follow
        .wait_for_stdout(Duration::from_secs(20), |o| o.matches("tick").count() >= 5)
        .await
        .unwrap();
    drop(follow);
    // attach streams the container's output.
    let attach = cluster.kubectl_spawn(&["attach", "web"]);
    attach
        .wait_for_stdout(Duration::from_secs(20), |o| o.contains("tick"))
        .await
        .unwrap();
    drop(attach);
    // port-forward, over the WebSocket tunnel and over SPDY.
    let ws = cluster.kubectl_runner().clone();
    let plain = cluster
        .kubectl_runner()
        .with_env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false");
    for (how, kubectl) in [("websocket", ws), ("spdy", plain)] {
        let local = integration_tests::process::free_port().unwrap();
        let spec = format!("{local}:8080");
        let pf = kubectl.spawn(&["port-forward", "pod/web", &spec]);
        pf.wait_for_stdout(Duration::from_secs(20), |o| o.contains("Forwarding from"))
            .await
            .unwrap_or_else(|e| panic!("{how}: {e}"));
        for _ in 0..3 {
            let out = tokio::process::Command::new("curl")
                .args(["-sf", "--max-time", "5"])
                .arg(format!("http://127.0.0.1:{local}/index.html"))
                .output()
                .await
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "served-by-busybox\n",
                "{how}: {}",
                pf.stderr()
            );
        }
        if how == "websocket" {
            let log = node.kubelet_log_tail(400);
            assert!(
                log.contains("tunnelling SPDY port-forward from a WebSocket"),
                "the tunnel was used"
            );
        }
        drop(pf);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_beyond_max_pods_are_rejected_and_events_are_recorded() {
    let cluster = Cluster::start().await.expect("cluster");
    let _node = NodeBuilder::new("n1")
        .config_line("maxPods: 2")
        .kubelet_arg("--node-labels=tier=edge,zone=z1")
        .kubelet_arg("--register-with-taints=dedicated=edge:NoSchedule")
        .kubelet_arg("--kube-reserved=cpu=100m,memory=100Mi")
        .start(&cluster)
        .await
        .expect("node");
    let client = cluster.client().await;
    let n = Api::<NodeObject>::all(client.clone())
        .get("n1")
        .await
        .unwrap();
    let labels = n.metadata.labels.clone().unwrap();
    assert_eq!(
        (labels["tier"].as_str(), labels["zone"].as_str()),
        ("edge", "z1")
    );
    let taint = &n.spec.clone().unwrap().taints.unwrap()[0];
    assert_eq!(
        (
            taint.key.as_str(),
            taint.value.as_deref(),
            taint.effect.as_str()
        ),
        ("dedicated", Some("edge"), "NoSchedule")
    );
    let status = n.status.unwrap();
    let cpu = |m: &std::collections::BTreeMap<
        String,
        k8s_openapi::apimachinery::pkg::api::resource::Quantity,
    >| { common::quantity::parse("cpu", &m["cpu"].0).unwrap() };
    assert_eq!(
        cpu(&status.capacity.unwrap()) - cpu(&status.allocatable.clone().unwrap()),
        100
    );
    assert_eq!(status.allocatable.unwrap()["pods"].0, "2");
    let pods: Api<Pod> = Api::default_namespaced(client);
    for name in ["one", "two"] {
        create(&pods, busybox(name, "sleep 3600")).await;
        eventually("the pod runs", WITHIN, async || {
            let (phase, _) = phase_of(&pods, name).await;
            (phase == "Running", phase)
        })
        .await;
    }
    create(&pods, busybox("three", "sleep 3600")).await;
    let pod = eventually("the third pod is rejected", WITHIN, async || {
        let (phase, pod) = phase_of(&pods, "three").await;
        (phase == "Failed", pod)
    })
    .await;
    let status = pod.status.unwrap();
    assert_eq!(status.reason.as_deref(), Some("OutOfpods"));
    assert!(status.message.unwrap().contains("capacity: 2"));
    let events = eventually("the kubelet's events", WITHIN, async || {
        let out = cluster
            .kubectl(&[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=one",
                "-o",
                "jsonpath={.items[*].reason}",
            ])
            .await;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text.contains("Started"), text)
    })
    .await;
    assert!(
        events.contains("Pulled") && events.contains("Created"),
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn static_pods_run_from_manifests_with_mirror_pods() {
    let cluster = Cluster::start().await.expect("cluster");
    let manifests = cluster.dir().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let manifest = manifests.join("web.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web, namespace: kube-system}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {{name: web, image: {BUSYBOX_IMAGE}, command: [sleep, '3600']}}\n"
        ),
    )
    .unwrap();
    let node = NodeBuilder::new("n1")
        .config_line(format!("staticPodPath: {}", manifests.display()))
        .config_line("fileCheckFrequency: 1s")
        .start(&cluster)
        .await
        .expect("node");
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "kube-system");
    let mirror = eventually(
        "the mirror pod shows the static pod running",
        WITHIN,
        async || {
            let pod = pods.get_opt("web-n1").await.unwrap();
            let running = pod.as_ref().is_some_and(|p| {
                p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            });
            (running, pod)
        },
    )
    .await
    .unwrap();
    let annotations = mirror.metadata.annotations.clone().unwrap();
    assert!(annotations.contains_key("kubernetes.io/config.mirror"));
    let owner = &mirror.metadata.owner_references.clone().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Node", "n1"));
    let first = container_status(&mirror).container_id;
    // Deleting the mirror does not stop the static pod: it comes back.
    expect_success(
        &cluster
            .kubectl(&["delete", "pod", "-n", "kube-system", "web-n1"])
            .await,
        "delete mirror",
    );
    let back = eventually("the mirror pod is recreated", WITHIN, async || {
        let pod = pods.get_opt("web-n1").await.unwrap();
        let ok = pod.as_ref().is_some_and(|p| {
            p.metadata.uid != mirror.metadata.uid
                && p.metadata.deletion_timestamp.is_none()
                && container_status(p).container_id.is_some()
        });
        (ok, pod)
    })
    .await
    .unwrap();
    assert_eq!(
        container_status(&back).container_id,
        first,
        "the same container kept running"
    );
    // Removing the manifest stops the pod and removes its mirror.
    std::fs::remove_file(&manifest).unwrap();
    eventually("the mirror pod is gone", WITHIN, async || {
        let pod = pods.get_opt("web-n1").await.unwrap();
        (pod.is_none(), pod.map(|p| p.metadata.name))
    })
    .await;
    let runtime = node.runtime().unwrap();
    eventually("its sandbox is removed", WITHIN, async || {
        let n = runtime.sandboxes(None).await.unwrap().len();
        (n == 0, n)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn images_are_pulled_from_a_registry_and_missing_ones_back_off() {
    let (cluster, mut node) = start().await;
    node.start_registry("busybox.tar", "tools/busybox", "1.35")
        .unwrap();
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    let mut pulled = busybox("pulled", "echo pulled; sleep 3600");
    pulled["spec"]["containers"][0]["image"] = json!("127.0.0.1:5000/tools/busybox:1.35");
    pulled["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
    create(&pods, pulled).await;
    let mut missing = busybox("missing", "true");
    missing["spec"]["containers"][0]["image"] = json!("127.0.0.1:5000/tools/nothing:9");
    create(&pods, missing).await;
    let pod = eventually(
        "the pulled image runs",
        Duration::from_secs(60),
        async || {
            let (phase, pod) = phase_of(&pods, "pulled").await;
            (phase == "Running", pod)
        },
    )
    .await;
    let image_id = container_status(&pod).image_id;
    assert!(
        image_id.starts_with("127.0.0.1:5000/tools/busybox@sha256:"),
        "{image_id}"
    );
    let runtime = node.runtime().unwrap();
    assert!(
        runtime
            .image_present("127.0.0.1:5000/tools/busybox:1.35")
            .await
            .unwrap()
            .is_some()
    );
    let pod = eventually("ImagePullBackOff", Duration::from_secs(60), async || {
        let (_, pod) = phase_of(&pods, "missing").await;
        (
            waiting_reason(&pod).as_deref() == Some("ImagePullBackOff"),
            pod,
        )
    })
    .await;
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Pending"));
    let (status, _) = kubectl_status(&cluster, "missing").await;
    assert!(
        matches!(status.as_str(), "ImagePullBackOff" | "ErrImagePull"),
        "{status}"
    );
    let events = expect_success(
        &cluster
            .kubectl(&[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=pulled",
                "-o",
                "jsonpath={.items[*].message}",
            ])
            .await,
        "events",
    );
    assert!(
        events.contains("Successfully pulled image \"127.0.0.1:5000/tools/busybox:1.35\""),
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_authorization_asks_the_apiserver() {
    // RBAC decides in the apiserver; the kubelet asks it by SubjectAccessReview.
    let cluster = Cluster::builder()
        .apiserver_arg("--authorization-mode=RBAC")
        .start()
        .await
        .expect("cluster");
    let node = NodeBuilder::new("n1")
        .authorization_mode("Webhook")
        .start(&cluster)
        .await
        .expect("node");
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    create(&pods, busybox("quiet", "echo hi; sleep 3600")).await;
    eventually("the pod runs", WITHIN, async || {
        let (phase, _) = phase_of(&pods, "quiet").await;
        (phase == "Running", phase)
    })
    .await;
    // The apiserver's kubelet client (system:masters here) is allowed.
    let logs = cluster.kubectl(&["logs", "quiet"]).await;
    assert_eq!(
        expect_success(&logs, "logs through the apiserver").trim(),
        "hi"
    );
    // Straight to the kubelet: a user without a binding is refused, one
    // bound to a role with nodes/proxy is let in.
    let get = |user: &'static str| {
        let cert = cluster.pki().client_cert(user, None).expect("client cert");
        let dir = cluster.dir().join(format!("kubelet-user-{user}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tls.crt"), cert.cert_pem).unwrap();
        std::fs::write(dir.join("tls.key"), cert.key_pem).unwrap();
        let url = format!("https://127.0.0.1:{}/pods", node.kubelet_port);
        async move {
            let out = tokio::process::Command::new("curl")
                .args(["-sk", "--max-time", "5", "-w", "\n%{http_code}", "--cert"])
                .arg(dir.join("tls.crt"))
                .arg("--key")
                .arg(dir.join("tls.key"))
                .arg(url)
                .output()
                .await
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let denied = get("eve").await;
    assert!(
        denied.ends_with("403")
            && denied.contains("Forbidden (user=eve, verb=get, resource=nodes, subresource=proxy)"),
        "{denied}"
    );
    expect_success(
        &cluster
            .kubectl(&[
                "create",
                "clusterrole",
                "node-reader",
                "--verb=get",
                "--resource=nodes/proxy",
            ])
            .await,
        "role",
    );
    expect_success(
        &cluster
            .kubectl(&[
                "create",
                "clusterrolebinding",
                "frank-nodes",
                "--clusterrole=node-reader",
                "--user=frank",
            ])
            .await,
        "binding",
    );
    let allowed = eventually("frank may read the kubelet's pods", WITHIN, async || {
        let body = get("frank").await;
        (body.ends_with("200"), body)
    })
    .await;
    assert!(allowed.contains("quiet"), "{allowed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn projected_service_account_tokens_come_from_the_token_request_api() {
    let (cluster, _node) = start().await;
    expect_success(
        &cluster
            .kubectl(&["create", "serviceaccount", "default"])
            .await,
        "the default service account (no controller-manager here)",
    );
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    let mut pod = busybox(
        "tokened",
        "cat /var/run/secrets/tokens/token; echo; sleep 3600",
    );
    pod["spec"]["volumes"] = json!([{"name": "token", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}
    ]}}]);
    pod["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "token", "mountPath": "/var/run/secrets/tokens"}]);
    create(&pods, pod).await;
    let token = eventually("the pod prints its token", WITHIN, async || {
        let out = cluster.kubectl(&["logs", "tokened"]).await;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (text.split('.').count() == 3, text)
    })
    .await;
    // The token authenticates as the pod's service account.
    let whoami = cluster.token_kubectl(&token).run(&["auth", "whoami"]).await;
    let whoami = expect_success(&whoami, "whoami with the projected token");
    assert!(
        whoami.contains("system:serviceaccount:default:default"),
        "{whoami}"
    );
}
