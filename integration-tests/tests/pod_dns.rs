//! Cluster DNS as pods use it: cluster-dns runs inside the node's network
//! namespace (as a host-network daemon), behind the `kube-dns` Service at
//! 10.96.0.10 that kube-proxy routes; the kubelet's `--cluster-dns` puts
//! that address, the search path and ndots:5 into ClusterFirst pods. A
//! busybox pod's nslookup answers a Service's ClusterIP, a headless
//! Service's pod IPs and SRV records, and a name outside the cluster
//! domain is forwarded (to a second cluster-dns serving `example.test`
//! on the node's loopback: no traffic leaves the namespace).

use integration_tests::daemon::ControllerManager;
use integration_tests::node::{BUSYBOX_IMAGE, NodeBuilder};
use integration_tests::wait::eventually;
use integration_tests::{Cluster, expect_success};
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(60);
const DNS_IP: &str = "10.96.0.10";

fn manifest() -> String {
    format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: kube-dns, namespace: kube-system}}
spec:
  clusterIP: {DNS_IP}
  ports:
  - {{name: dns, port: 53, protocol: UDP}}
  - {{name: dns-tcp, port: 53, protocol: TCP}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-node
  namespace: kube-system
  labels: {{kubernetes.io/service-name: kube-dns}}
addressType: IPv4
ports:
- {{name: dns, port: 53, protocol: UDP}}
- {{name: dns-tcp, port: 53, protocol: TCP}}
endpoints:
- addresses: [10.244.0.1]
  nodeName: n1
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeName: n1
  terminationGracePeriodSeconds: 1
  containers:
  - {{name: main, image: {BUSYBOX_IMAGE}, imagePullPolicy: Never, command: [sleep, "3600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: db-0, labels: {{app: db}}}}
spec:
  nodeName: n1
  hostname: db-0
  subdomain: db
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {BUSYBOX_IMAGE}
    imagePullPolicy: Never
    command: [sleep, "3600"]
    ports: [{{name: sql, containerPort: 5432}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: nothing}}
  ports: [{{name: http, port: 80}}]
---
apiVersion: v1
kind: Service
metadata: {{name: db}}
spec:
  clusterIP: None
  selector: {{app: db}}
  ports: [{{name: sql, port: 5432}}]
"#
    )
}

async fn nslookup(cluster: &Cluster, args: &[&str]) -> String {
    let mut all = vec!["exec", "client", "--", "nslookup"];
    all.extend(args);
    let out = cluster.kubectl(&all).await;
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_resolve_services_through_cluster_dns() {
    let cluster = Cluster::start().await.expect("cluster");
    let _cm = ControllerManager::start(&cluster, &[])
        .await
        .expect("controller-manager");
    let mut node = NodeBuilder::new("n1")
        .kubelet_arg(format!("--cluster-dns={DNS_IP}"))
        .start(&cluster)
        .await
        .expect("node");
    node.start_kube_proxy(&["--cluster-cidr=10.244.0.0/16", "--min-sync-period=100ms"])
        .await
        .expect("kube-proxy");
    let kubeconfig = format!("--kubeconfig={}", cluster.kubeconfig_path().display());
    // The upstream resolver: a second instance for another domain, on the
    // node's loopback (it forwards nowhere reachable).
    node.start_daemon(
        "cluster-dns-upstream",
        "cluster-dns",
        "CLUSTER_DNS_BIN",
        &[
            kubeconfig.clone(),
            "--cluster-domain=example.test".into(),
            "--listen=127.0.0.1:5353".into(),
            "--metrics-bind-address=127.0.0.1:9154".into(),
            "--upstream=127.0.0.1:9".into(),
        ],
    )
    .expect("upstream dns");
    node.start_daemon(
        "cluster-dns",
        "cluster-dns",
        "CLUSTER_DNS_BIN",
        &[
            kubeconfig,
            "--listen=0.0.0.0:53".into(),
            "--metrics-bind-address=127.0.0.1:9153".into(),
            "--upstream=127.0.0.1:5353".into(),
        ],
    )
    .expect("cluster-dns");
    expect_success(
        &cluster
            .kubectl_stdin(&["apply", "-f", "-"], &manifest())
            .await,
        "apply",
    );
    eventually("the pods run", WITHIN, async || {
        let phases = cluster
            .get_jsonpath(&["pods"], "{.items[*].status.phase}")
            .await;
        (phases == "Running Running", phases)
    })
    .await;
    eventually("cluster-dns is ready", WITHIN, async || {
        let r = node.http_get("http://127.0.0.1:9153/readyz");
        (r.is_ok(), format!("{r:?}"))
    })
    .await;

    // ClusterFirst: the kubelet wrote the Service address and the search path.
    let resolv = cluster
        .kubectl(&["exec", "client", "--", "cat", "/etc/resolv.conf"])
        .await;
    let resolv = expect_success(&resolv, "resolv.conf");
    assert!(resolv.contains(&format!("nameserver {DNS_IP}")), "{resolv}");
    assert!(
        resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{resolv}"
    );
    assert!(resolv.contains("ndots:5"), "{resolv}");

    // A Service name answers its ClusterIP, through kube-proxy's DNAT.
    let web = cluster
        .get_jsonpath(&["svc", "web"], "{.spec.clusterIP}")
        .await;
    let answer = eventually("web resolves", WITHIN, async || {
        let a = nslookup(&cluster, &["web.default.svc.cluster.local"]).await;
        (a.contains(&format!("Address: {web}")), a)
    })
    .await;
    assert!(
        answer.contains(DNS_IP),
        "answered by the kube-dns Service: {answer}"
    );

    // A headless Service answers its ready pods' IPs, and the pod's own name.
    let db_ip = cluster
        .get_jsonpath(&["pod", "db-0"], "{.status.podIP}")
        .await;
    eventually("the headless service answers the pod", WITHIN, async || {
        let a = nslookup(&cluster, &["db.default.svc.cluster.local"]).await;
        (a.contains(&format!("Address: {db_ip}")), a)
    })
    .await;
    let a = nslookup(&cluster, &["db-0.db.default.svc.cluster.local"]).await;
    assert!(a.contains(&format!("Address: {db_ip}")), "{a}");

    // SRV for a named port.
    let a = nslookup(
        &cluster,
        &["-type=srv", "_http._tcp.web.default.svc.cluster.local"],
    )
    .await;
    assert!(
        a.contains("web.default.svc.cluster.local") && a.contains(" 80 "),
        "{a}"
    );

    // A missing name is NXDOMAIN, not forwarded.
    let a = nslookup(&cluster, &["nope.default.svc.cluster.local"]).await;
    assert!(a.contains("NXDOMAIN"), "{a}");

    // Outside the cluster domain: forwarded to the upstream resolver.
    let a = nslookup(&cluster, &["web.default.svc.example.test"]).await;
    assert!(a.contains(&format!("Address: {web}")), "forwarded: {a}");

    let metrics = node
        .http_get("http://127.0.0.1:9153/metrics")
        .expect("metrics");
    assert!(metrics.contains("coredns_dns_requests_total"), "{metrics}");
    let upstream = node
        .http_get("http://127.0.0.1:9154/metrics")
        .expect("upstream metrics");
    assert!(
        upstream.contains("coredns_dns_requests_total"),
        "{upstream}"
    );
}
