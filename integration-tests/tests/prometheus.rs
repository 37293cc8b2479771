//! Observability with the real Prometheus: every daemon of a cluster
//! (apiserver with its client certificate, scheduler, controller-manager,
//! kubelet with `/metrics/cadvisor`, kube-proxy in its node's namespace,
//! cluster-dns, etcd) is a target that is `up`, the key series exist, and
//! `promtool check metrics` accepts each daemon's exposition.

use integration_tests::Cluster;
use integration_tests::daemon::{ControllerManager, Scheduler};
use integration_tests::netns::Relay;
use integration_tests::node::NodeBuilder;
use integration_tests::process::{ManagedChild, free_port, locate_binary};
use integration_tests::wait::eventually;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `promtool check metrics` on one exposition: its complaints, if any.
fn promtool(name: &str, text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn query(port: u16, q: &str) -> Value {
    let url = format!("http://127.0.0.1:{port}/api/v1/query");
    let out = Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "5",
            "--data-urlencode",
            &format!("query={q}"),
            &url,
        ])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_every_daemon() {
    let cluster = Cluster::start().await.expect("cluster starts");
    let scheduler = Scheduler::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("scheduler");
    let cm = ControllerManager::start(&cluster, &["--leader-elect=false"])
        .await
        .expect("controller-manager");
    let mut node = NodeBuilder::new("n1").start(&cluster).await.expect("node");
    node.start_kube_proxy(&[]).await.expect("kube-proxy");
    let proxy_port = free_port().unwrap();
    let _proxy_relay =
        Relay::inward(&format!("/run/netns/{}", node.netns), proxy_port, 10249).unwrap();
    let (dns_port, dns_metrics) = (free_port().unwrap(), free_port().unwrap());
    let mut dns = Command::new(locate_binary("cluster-dns", "CLUSTER_DNS_BIN").unwrap());
    dns.arg(format!(
        "--kubeconfig={}",
        cluster.kubeconfig_path().display()
    ))
    .arg(format!("--listen=127.0.0.1:{dns_port}"))
    .arg(format!("--metrics-bind-address=127.0.0.1:{dns_metrics}"));
    let _dns =
        ManagedChild::spawn("cluster-dns", dns, &cluster.dir().join("cluster-dns.log")).unwrap();

    let pki = &cluster.pki().files;
    let (cert, key) = (
        pki.admin_cert.display().to_string(),
        pki.admin_key.display().to_string(),
    );
    let apiserver = cluster.apiserver_url();
    let apiserver_port: u16 = apiserver.rsplit(':').next().unwrap().parse().unwrap();
    let etcd = cluster.etcd_metrics_url();
    let etcd_addr = etcd
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_string();
    // Every exposition passes promtool.
    let tls = ["-k", "--cert", &cert, "--key", &key];
    let mut exposed = vec![
        (
            "kube-apiserver",
            curl(
                &[
                    &tls[..],
                    &[&format!("https://127.0.0.1:{apiserver_port}/metrics")],
                ]
                .concat(),
            ),
        ),
        (
            "kube-scheduler",
            curl(&[
                "-k",
                &format!("https://127.0.0.1:{}/metrics", scheduler.port),
            ]),
        ),
        (
            "kube-controller-manager",
            curl(&["-k", &format!("https://127.0.0.1:{}/metrics", cm.port)]),
        ),
        (
            "kubelet",
            curl(
                &[
                    &tls[..],
                    &[&format!("https://127.0.0.1:{}/metrics", node.kubelet_port)],
                ]
                .concat(),
            ),
        ),
        (
            "kubelet cadvisor",
            curl(
                &[
                    &tls[..],
                    &[&format!(
                        "https://127.0.0.1:{}/metrics/cadvisor",
                        node.kubelet_port
                    )],
                ]
                .concat(),
            ),
        ),
        ("etcd", curl(&[&etcd])),
    ];
    let proxy = eventually("kube-proxy metrics", Duration::from_secs(20), async || {
        let out = Command::new("curl")
            .args([
                "-sf",
                "--max-time",
                "5",
                &format!("http://127.0.0.1:{proxy_port}/metrics"),
            ])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    })
    .await;
    exposed.push(("kube-proxy", proxy));
    let dns_text = eventually("cluster-dns metrics", Duration::from_secs(20), async || {
        let out = Command::new("curl")
            .args([
                "-sf",
                "--max-time",
                "5",
                &format!("http://127.0.0.1:{dns_metrics}/metrics"),
            ])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    })
    .await;
    exposed.push(("cluster-dns", dns_text));
    let complaints: Vec<String> = exposed
        .iter()
        .filter(|(n, _)| *n != "etcd")
        .filter_map(|(n, t)| promtool(n, t).err())
        .collect();
    assert!(
        complaints.is_empty(),
        "promtool:\n{}",
        complaints.join("\n")
    );

    // The real Prometheus scrapes them all.
    let dir = tempfile::tempdir().unwrap();
    let prom_port = free_port().unwrap();
    let job = |name: &str, scheme: &str, target: String, path: &str, client_cert: bool| {
        let certs = if client_cert {
            format!("\n      cert_file: {cert}\n      key_file: {key}")
        } else {
            String::new()
        };
        format!(
            "- job_name: {name}\n  scheme: {scheme}\n  metrics_path: {path}\n  tls_config:\n      insecure_skip_verify: true{certs}\n  static_configs: [{{targets: ['{target}']}}]\n"
        )
    };
    let config = format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs:\n{}{}{}{}{}{}{}{}",
        job(
            "apiserver",
            "https",
            format!("127.0.0.1:{apiserver_port}"),
            "/metrics",
            true
        ),
        job(
            "scheduler",
            "https",
            format!("127.0.0.1:{}", scheduler.port),
            "/metrics",
            false
        ),
        job(
            "controller-manager",
            "https",
            format!("127.0.0.1:{}", cm.port),
            "/metrics",
            false
        ),
        job(
            "kubelet",
            "https",
            format!("127.0.0.1:{}", node.kubelet_port),
            "/metrics",
            true
        ),
        job(
            "cadvisor",
            "https",
            format!("127.0.0.1:{}", node.kubelet_port),
            "/metrics/cadvisor",
            true
        ),
        job(
            "kube-proxy",
            "http",
            format!("127.0.0.1:{proxy_port}"),
            "/metrics",
            false
        ),
        job(
            "cluster-dns",
            "http",
            format!("127.0.0.1:{dns_metrics}"),
            "/metrics",
            false
        ),
        job("etcd", "http", etcd_addr, "/metrics", false),
    );
    std::fs::write(dir.path().join("prometheus.yml"), &config).unwrap();
    let mut prom = Command::new("prometheus");
    prom.arg(format!(
        "--config.file={}",
        dir.path().join("prometheus.yml").display()
    ))
    .arg(format!(
        "--storage.tsdb.path={}",
        dir.path().join("data").display()
    ))
    .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"));
    let _prom =
        ManagedChild::spawn("prometheus", prom, &dir.path().join("prometheus.log")).unwrap();
    let targets = eventually("every target is up", Duration::from_secs(40), async || {
        let out = Command::new("curl")
            .args([
                "-sf",
                "--max-time",
                "5",
                &format!("http://127.0.0.1:{prom_port}/api/v1/targets"),
            ])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let active = v["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let up = active.len() == 8 && active.iter().all(|t| t["health"] == "up");
        let summary: Vec<String> = active
            .iter()
            .map(|t| format!("{}={} {}", t["labels"]["job"], t["health"], t["lastError"]))
            .collect();
        (up, summary)
    })
    .await;
    assert_eq!(targets.len(), 8);
    // Something to schedule and run, for the scheduler's and kubelet's series.
    let run = cluster
        .kubectl(&[
            "run",
            "sleeper",
            &format!("--image={}", integration_tests::node::BUSYBOX_IMAGE),
            "--",
            "sleep",
            "3600",
        ])
        .await;
    assert!(run.status.success(), "{run:?}");
    for series in [
        "apiserver_request_total",
        "scheduler_schedule_attempts_total",
        "workqueue_depth",
        "kubelet_running_pods",
        "kubeproxy_sync_proxy_rules_duration_seconds_count",
        "container_memory_working_set_bytes",
        "etcd_server_has_leader",
    ] {
        eventually(series, Duration::from_secs(20), async || {
            let v = query(prom_port, series).await;
            let n = v["data"]["result"].as_array().map_or(0, Vec::len);
            (n > 0, v)
        })
        .await;
    }
    drop(node);
}
