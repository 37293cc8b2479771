//! kube-proxy in both modes against the real apiserver, etcd and
//! controller-manager, with real pods on the real containerd in a node
//! network namespace made by the test: kube-proxy runs inside that
//! namespace (as on a node) and programs it with the real nft or
//! iptables. A client pod reaches a Service by ClusterIP, node port, an
//! external IP and a load-balancer address from the pool, a pod reaches
//! itself through its Service (hairpin); load spreads over every ready
//! endpoint, an unready one stops getting connections, ClientIP affinity
//! sticks, a Service without endpoints refuses at once, an established
//! connection survives syncs, and `--cleanup`
//! leaves nothing behind. All traffic stays inside the namespace.

use integration_tests::daemon::ControllerManager;
use integration_tests::node::{BUSYBOX_IMAGE, NodeBuilder};
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use std::collections::BTreeSet;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(60);
const POOL: &str = "10.96.200.0/29";

fn server(name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: web}}}}
spec:
  nodeName: n1
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: {BUSYBOX_IMAGE}
    imagePullPolicy: Never
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && touch /tmp/ready && exec httpd -f -p 8080 -h /www"]
    ports: [{{name: http, containerPort: 8080}}]
    readinessProbe:
      exec: {{command: ["cat", "/tmp/ready"]}}
      periodSeconds: 1
      failureThreshold: 1
---
"#
    )
}

fn echo(name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: echo}}}}
spec:
  nodeName: n1
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: nc, image: {BUSYBOX_IMAGE}, imagePullPolicy: Never, command: [nc, -ll, -p, "9000", -e, cat]}}
---
"#
    )
}

const CLIENT_AND_SERVICES: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: n1
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: localhost/busybox:1.35
    imagePullPolicy: Never
    command: ["sleep", "3600"]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  externalIPs: [10.96.201.1]
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: sticky}
spec:
  selector: {app: web}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 300}}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{port: 9000}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  selector: {app: nothing}
  ports: [{port: 80, targetPort: 8080}]
"#;

/// `n` HTTP GETs of `host port` from the client pod.
async fn fetch(cluster: &Cluster, target: &str, n: usize) -> Vec<String> {
    cluster.http_from_pod("client", target, n).await
}

fn distinct(answers: &[String]) -> BTreeSet<String> {
    answers.iter().cloned().collect()
}

async fn scenario(mode: &str) {
    let cluster = Cluster::start().await.expect("cluster");
    let _cm = ControllerManager::start(&cluster, &[&format!("--loadbalancer-ip-pool={POOL}")])
        .await
        .expect("controller-manager");
    let mut node = NodeBuilder::new("n1").start(&cluster).await.expect("node");
    node.start_kube_proxy(&[
        &format!("--proxy-mode={mode}"),
        "--cluster-cidr=10.244.0.0/16",
        "--nodeport-addresses=0.0.0.0/0",
        "--min-sync-period=100ms",
    ])
    .await
    .expect("kube-proxy");

    let mut manifest: String = (0..3).map(|i| server(&format!("web-{i}"))).collect();
    manifest.push_str(&echo("echo-0"));
    manifest.push_str(CLIENT_AND_SERVICES);
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], &manifest)
            .await,
        "apply",
    );
    eventually("3 ready endpoints of web", WITHIN, async || {
        let ready = cluster
            .get_jsonpath(
                &["endpointslices", "-l", "kubernetes.io/service-name=web"],
                "{range .items[*].endpoints[?(@.conditions.ready==true)]}{.targetRef.name} {end}",
            )
            .await;
        (ready.split_whitespace().count() == 3, ready)
    })
    .await;
    eventually("the client runs", WITHIN, async || {
        let phase = cluster
            .get_jsonpath(&["pod", "client"], "{.status.phase}")
            .await;
        (phase == "Running", phase)
    })
    .await;
    let ip_of = async |svc: &str| {
        cluster
            .get_jsonpath(&["svc", svc], "{.spec.clusterIP}")
            .await
    };
    let web = ip_of("web").await;
    let all: BTreeSet<String> = (0..3).map(|i| format!("web-{i}")).collect();

    // ClusterIP: every ready endpoint gets connections.
    let seen = eventually(
        "web's ClusterIP spreads over all endpoints",
        WITHIN,
        async || {
            let answers = fetch(&cluster, &format!("{web} 80"), 40).await;
            (distinct(&answers) == all, answers)
        },
    )
    .await;
    assert_eq!(seen.len(), 40);

    // Hairpin: a pod reaching its own Service, sometimes itself.
    let answers = cluster
        .http_from_pod("web-0", &format!("{web} 80"), 30)
        .await;
    assert!(
        distinct(&answers).is_subset(&all) && answers.iter().any(|a| a == "web-0"),
        "hairpin: {answers:?}"
    );

    // NodePort on the node's address (the bridge's gateway, seen from the pod).
    let node_port = cluster
        .get_jsonpath(&["svc", "web"], "{.spec.ports[0].nodePort}")
        .await;
    let answers = fetch(&cluster, &format!("10.244.0.1 {node_port}"), 10).await;
    assert!(distinct(&answers).is_subset(&all), "node port: {answers:?}");
    if mode == "iptables" {
        // Localhost node ports (route_localnet), from the node itself.
        let body = node
            .http_get(&format!("http://127.0.0.1:{node_port}/"))
            .expect("localhost node port");
        assert!(all.contains(body.trim()), "{body}");
    }

    // LoadBalancer: an address from the pool, answered on.
    let lb = eventually("web gets a load-balancer address", WITHIN, async || {
        let ip = cluster
            .get_jsonpath(&["svc", "web"], "{.status.loadBalancer.ingress[0].ip}")
            .await;
        (ip.starts_with("10.96.200."), ip)
    })
    .await;
    let table = cluster.kubectl(&["get", "svc", "web"]).await;
    assert!(expect_success(&table, "get svc").contains(&lb));
    let answers = eventually("the load-balancer address answers", WITHIN, async || {
        let answers = fetch(&cluster, &format!("{lb} 80"), 5).await;
        (answers.iter().all(|a| all.contains(a)), answers)
    })
    .await;
    assert_eq!(answers.len(), 5);

    // An external IP answers as the Service.
    let answers = fetch(&cluster, "10.96.201.1 80", 5).await;
    assert!(
        answers.iter().all(|a| all.contains(a)),
        "external IP: {answers:?}"
    );

    // ClientIP affinity: one client, one endpoint.
    let sticky = ip_of("sticky").await;
    let answers = fetch(&cluster, &format!("{sticky} 80"), 20).await;
    assert_eq!(distinct(&answers).len(), 1, "affinity: {answers:?}");
    assert!(all.contains(&answers[0]), "{answers:?}");

    // An established connection survives syncs: it stays open while its
    // own Service gains an endpoint and another Service appears.
    let echo_ip = ip_of("echo").await;
    let talk = format!("(echo one; sleep 8; echo two; sleep 1) | nc {echo_ip} 9000");
    let talk_args = ["exec", "client", "--", "sh", "-c", &talk];
    let conversation = cluster.kubectl(&talk_args);
    let change = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let more = format!(
            "{}apiVersion: v1\nkind: Service\nmetadata: {{name: extra}}\nspec:\n  selector: {{app: echo}}\n  ports: [{{port: 9001, targetPort: 9000}}]\n",
            echo("echo-1")
        );
        expect_success(
            &cluster.kubectl_stdin(&["apply", "-f", "-"], &more).await,
            "apply",
        );
        eventually(
            "the new endpoint and Service are programmed",
            Duration::from_secs(6),
            async || {
                let extra = cluster
                    .get_jsonpath(&["svc", "extra"], "{.spec.clusterIP}")
                    .await;
                let ip = cluster
                    .get_jsonpath(&["pod", "echo-1"], "{.status.podIP}")
                    .await;
                let rules = [vec!["nft", "list", "ruleset"], vec!["iptables-save"]]
                    .iter()
                    .map(|c| {
                        String::from_utf8_lossy(&node.netns_exec(c).unwrap().stdout).into_owned()
                    })
                    .collect::<String>();
                let done = !extra.is_empty()
                    && !ip.is_empty()
                    && rules.contains(&extra)
                    && rules.contains(&ip);
                (done, (extra, ip))
            },
        )
        .await;
    };
    let (out, ()) = tokio::join!(conversation, change);
    assert_eq!(
        expect_success(&out, "echo conversation")
            .lines()
            .collect::<Vec<_>>(),
        ["one", "two"]
    );

    // No endpoints: refused at once, not a timeout.
    let empty = ip_of("empty").await;
    let out = cluster
        .kubectl(&["exec", "client", "--", "nc", "-w", "10", &empty, "80"])
        .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("refused"),
        "a Service without endpoints must refuse: {err}"
    );

    // An endpoint going unready stops getting new connections.
    expect_success(
        &cluster
            .kubectl(&["exec", "web-0", "--", "rm", "/tmp/ready"])
            .await,
        "unready web-0",
    );
    let answers = eventually("web-0 gets no more connections", WITHIN, async || {
        let answers = fetch(&cluster, &format!("{web} 80"), 30).await;
        let expected: BTreeSet<String> = ["web-1".to_string(), "web-2".to_string()].into();
        (distinct(&answers) == expected, answers)
    })
    .await;
    assert_eq!(answers.len(), 30);

    // Health and upstream's metrics, inside the node.
    let health = node
        .http_get("http://127.0.0.1:10256/healthz")
        .expect("healthz");
    assert!(health.contains("\"lastUpdated\""), "{health}");
    let metrics = node
        .http_get("http://127.0.0.1:10249/metrics")
        .expect("metrics");
    for name in [
        "kubeproxy_sync_proxy_rules_duration_seconds_count",
        "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
        "kubeproxy_network_programming_duration_seconds_count",
        "kubeproxy_sync_partial_proxy_rules_duration_seconds_count",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    let programmed = metrics
        .lines()
        .find_map(|l| l.strip_prefix("kubeproxy_network_programming_duration_seconds_count "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        programmed > 0,
        "network programming latency is measured:\n{metrics}"
    );

    // --cleanup removes every rule; the Service stops answering.
    node.stop_daemon("kube-proxy");
    let bin = integration_tests::process::locate_binary("kube-proxy", "KUBE_PROXY_BIN").unwrap();
    let out = node
        .netns_exec(&[bin.to_str().unwrap(), "--cleanup", "--hostname-override=n1"])
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nft = node.netns_exec(&["nft", "list", "ruleset"]).unwrap();
    assert!(!String::from_utf8_lossy(&nft.stdout).contains("kube-proxy"));
    let save = node.netns_exec(&["iptables-save"]).unwrap();
    assert!(!String::from_utf8_lossy(&save.stdout).contains("KUBE-"));
    let answers = fetch(&cluster, &format!("{web} 80"), 1).await;
    assert_eq!(answers, ["FAIL"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nftables_mode() {
    scenario("nftables").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iptables_mode() {
    scenario("iptables").await;
}
