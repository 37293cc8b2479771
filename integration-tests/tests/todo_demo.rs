//! `examples/todo/` as its README tells a user to run it, on a whole
//! cluster (upstream's default admission, controller-manager, scheduler,
//! a node with kube-proxy and cluster DNS): applied with kubectl, reached by
//! name from another pod and through its NodePort, scaled, updated with a
//! rolling update during which no request fails, its logs read.

use integration_tests::daemon::{ControllerManager, Scheduler};
use integration_tests::node::NodeBuilder;
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(90);
const DNS_IP: &str = "10.96.0.10";

/// The README's `todo` function: a GET of the front end by its name.
async fn todo(cluster: &Cluster, query: &str) -> String {
    let script = format!(
        "ip=$(nslookup todo-web | awk '/^Address/ {{a=$NF}} END {{print a}}'); printf 'GET /cgi-bin/todos?{query} HTTP/1.0\\r\\n\\r\\n' | nc -w 3 $ip 80"
    );
    let out = cluster
        .kubectl(&["-n", "todo", "exec", "client", "--", "sh", "-c", &script])
        .await;
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_todo_app_runs_scales_and_updates_without_failed_requests() {
    // Upstream's default admission plugins, as a user's cluster runs them.
    let cluster = Cluster::builder()
        .apiserver_arg("--disable-admission-plugins=")
        .start()
        .await
        .expect("cluster");
    let _cm = ControllerManager::start(&cluster, &[])
        .await
        .expect("controller-manager");
    let _scheduler = Scheduler::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("scheduler");
    let mut node = NodeBuilder::new("n1")
        .kubelet_arg(format!("--cluster-dns={DNS_IP}"))
        .start(&cluster)
        .await
        .expect("node");
    node.start_kube_proxy(&[
        "--cluster-cidr=10.244.0.0/16",
        "--nodeport-addresses=0.0.0.0/0",
        "--min-sync-period=100ms",
    ])
    .await
    .expect("kube-proxy");
    let kubeconfig = format!("--kubeconfig={}", cluster.kubeconfig_path().display());
    node.start_daemon(
        "cluster-dns",
        "cluster-dns",
        "CLUSTER_DNS_BIN",
        &[
            kubeconfig,
            "--listen=0.0.0.0:53".into(),
            "--metrics-bind-address=127.0.0.1:9153".into(),
            "--upstream=127.0.0.1:9".into(),
        ],
    )
    .expect("cluster-dns");
    let dns = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: kube-dns, namespace: kube-system}}\nspec:\n  clusterIP: {DNS_IP}\n  ports: [{{name: dns, port: 53, protocol: UDP}}, {{name: dns-tcp, port: 53, protocol: TCP}}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: kube-dns-n1, namespace: kube-system, labels: {{kubernetes.io/service-name: kube-dns}}}}\naddressType: IPv4\nports: [{{name: dns, port: 53, protocol: UDP}}, {{name: dns-tcp, port: 53, protocol: TCP}}]\nendpoints: [{{addresses: [10.244.0.1], nodeName: n1}}]\n"
    );
    expect_success(
        &cluster.kubectl_stdin(&["apply", "-f", "-"], &dns).await,
        "dns",
    );

    // The README's steps.
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/todo/");
    expect_success(&cluster.kubectl(&["apply", "-f", examples]).await, "apply");
    expect_success(
        &cluster
            .kubectl(&[
                "-n",
                "todo",
                "wait",
                "--for=condition=Available",
                "deployment",
                "--all",
                "--timeout=120s",
            ])
            .await,
        "available",
    );
    expect_success(
        &cluster
            .kubectl(&[
                "-n",
                "todo",
                "run",
                "client",
                "--image=localhost/busybox:1.35",
                "--restart=Never",
                "--",
                "sleep",
                "3600",
            ])
            .await,
        "client",
    );
    expect_success(
        &cluster
            .kubectl(&[
                "-n",
                "todo",
                "wait",
                "--for=condition=Ready",
                "pod/client",
                "--timeout=60s",
            ])
            .await,
        "client ready",
    );
    eventually("milk is added through the front end", WITHIN, async || {
        let got = todo(&cluster, "add=milk").await;
        (
            got.contains("milk") && got.contains("served by todo-web-"),
            got,
        )
    })
    .await;
    let list = todo(&cluster, "add=eggs").await;
    assert!(list.contains("milk\neggs"), "{list}");
    assert!(list.contains(" v1"), "{list}");

    // The NodePort, from the node.
    let via_node = node
        .http_get("http://10.244.0.1:30080/cgi-bin/todos")
        .expect("the node port answers");
    assert!(via_node.contains("milk\neggs"), "{via_node}");

    // Scale out.
    expect_success(
        &cluster
            .kubectl(&[
                "-n",
                "todo",
                "scale",
                "deployment",
                "todo-web",
                "--replicas=3",
            ])
            .await,
        "scale",
    );
    eventually("three ready front ends", WITHIN, async || {
        let ready = cluster
            .get_jsonpath(
                &["-n", "todo", "deployment", "todo-web"],
                "{.status.readyReplicas}",
            )
            .await;
        (ready == "3", ready)
    })
    .await;

    // A rolling update while the client keeps asking: no request fails.
    let web_ip = cluster
        .get_jsonpath(&["-n", "todo", "svc", "todo-web"], "{.spec.clusterIP}")
        .await;
    let probe = format!(
        "for i in $(seq 150); do r=$(printf 'GET /cgi-bin/todos HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {web_ip} 80 | tail -n 1); echo \"${{r:-FAIL}}\"; sleep 0.1; done"
    );
    let asking = cluster.kubectl_spawn(&["-n", "todo", "exec", "client", "--", "sh", "-c", &probe]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    expect_success(
        &cluster
            .kubectl(&[
                "-n",
                "todo",
                "set",
                "env",
                "deployment/todo-web",
                "VERSION=v2",
            ])
            .await,
        "update",
    );
    expect_success(
        &cluster
            .kubectl(&[
                "-n",
                "todo",
                "rollout",
                "status",
                "deployment/todo-web",
                "--timeout=120s",
            ])
            .await,
        "rollout",
    );
    let answers = asking.wait(Duration::from_secs(120)).await;
    let answers = String::from_utf8_lossy(&answers.stdout).into_owned();
    let lines: Vec<&str> = answers.lines().collect();
    assert_eq!(lines.len(), 150, "{answers}");
    assert!(
        lines.iter().all(|l| l.starts_with("served by todo-web-")),
        "a failed request:\n{answers}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with(" v1"))
            && lines.last().is_some_and(|l| l.ends_with(" v2")),
        "{answers}"
    );

    // The logs.
    let logs = expect_success(
        &cluster
            .kubectl(&["-n", "todo", "logs", "deployment/todo-api"])
            .await,
        "logs",
    );
    assert!(
        logs.contains("added milk") && logs.contains("added eggs"),
        "{logs}"
    );
    drop(node);
}
