//! cluster-bench: the whole cluster's figures, on loopback and in a node
//! namespace of its own: the time from nothing to a Ready node (etcd,
//! certificates, apiserver, controller-manager, scheduler, containerd,
//! kubelet; binaries already built), and the control plane's RSS
//! (apiserver + scheduler + controller-manager + etcd) idle and with 1,000
//! pods, beside etcd alone as the reference measured in the same run.
//!
//! `KUBE_APISERVER_BIN=target/release/kube-apiserver KUBE_SCHEDULER_BIN=target/release/kube-scheduler KUBE_CONTROLLER_MANAGER_BIN=target/release/kube-controller-manager KUBELET_BIN=target/release/kubelet target/release/cluster-bench`

use anyhow::{Context, Result};
use clap::Parser;
use integration_tests::Cluster;
use integration_tests::daemon::{ControllerManager, Scheduler};
use integration_tests::node::NodeBuilder;
use integration_tests::process::rss_kib;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::time::{Duration, Instant};

const TARGET_UP_SECS: f64 = 10.0;
const TARGET_IDLE_MIB: f64 = 150.0;

#[derive(Debug, Parser)]
#[command(
    about = "Benchmark a whole cluster's start and memory (loopback and a test namespace only)"
)]
struct Args {
    /// Pods of the loaded measurement (pending: they select no node).
    #[arg(long, default_value_t = 1000)]
    pods: usize,
    /// How long the cluster settles before each RSS reading.
    #[arg(long, default_value_t = 5)]
    settle: u64,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// RSS of each control-plane process, in KiB: (name, kib).
fn control_plane(
    cluster: &Cluster,
    pids: &[(&'static str, u32)],
) -> Result<Vec<(&'static str, u64)>> {
    let mut out = vec![("etcd", rss_kib(cluster.etcd_pid().context("etcd pid")?)?)];
    out.push((
        "kube-apiserver",
        rss_kib(cluster.apiserver_pid().context("apiserver pid")?)?,
    ));
    for (name, pid) in pids {
        out.push((name, rss_kib(*pid)?));
    }
    Ok(out)
}

fn print_rss(label: &str, rss: &[(&str, u64)]) -> f64 {
    let total: u64 = rss.iter().map(|(_, k)| k).sum();
    let etcd = rss
        .iter()
        .find(|(n, _)| *n == "etcd")
        .map_or(0, |(_, k)| *k);
    let parts: Vec<String> = rss
        .iter()
        .map(|(n, k)| format!("{n} {:.1}", mib(*k)))
        .collect();
    println!(
        "control-plane RSS {label}: {:.1} MiB ({}) = {:.2}x etcd alone",
        mib(total),
        parts.join(", "),
        total as f64 / etcd.max(1) as f64
    );
    mib(total)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let cluster = Cluster::start().await?;
    let apiserver_ready = started.elapsed();
    let cm = ControllerManager::start(&cluster, &["--leader-elect=false"]).await?;
    let scheduler = Scheduler::start(&cluster, &["--leader-elect=false"]).await?;
    let node = NodeBuilder::new("n1").start(&cluster).await?;
    let up = started.elapsed();
    println!(
        "up: etcd + apiserver ready in {:.2} s, a Ready node (controller-manager, scheduler, containerd, kubelet) in {:.2} s (target ≤ {TARGET_UP_SECS} s)",
        apiserver_ready.as_secs_f64(),
        up.as_secs_f64()
    );
    let pids = [
        (
            "kube-controller-manager",
            cm.pid().context("controller-manager pid")?,
        ),
        ("kube-scheduler", scheduler.pid().context("scheduler pid")?),
    ];

    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let idle = print_rss("idle", &control_plane(&cluster, &pids)?);
    println!(
        "  target: idle ≤ {TARGET_IDLE_MIB} MiB including etcd: {}",
        if idle <= TARGET_IDLE_MIB {
            "met"
        } else {
            "not met"
        }
    );

    // Load: a Deployment of pending pods (they select no node), so every
    // controller, the scheduler's queue and the watch cache hold them.
    let manifest = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: load}}\nspec:\n  replicas: {}\n  selector: {{matchLabels: {{app: load}}}}\n  template:\n    metadata: {{labels: {{app: load}}}}\n    spec:\n      nodeSelector: {{bench: nowhere}}\n      containers: [{{name: c, image: localhost/busybox:1.35, resources: {{requests: {{cpu: 10m}}}}}}]\n",
        args.pods
    );
    let out = cluster
        .kubectl_stdin(&["apply", "-f", "-"], &manifest)
        .await;
    anyhow::ensure!(
        out.status.success(),
        "apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    let load_started = Instant::now();
    let deadline = load_started + Duration::from_secs(600);
    loop {
        let n = pods
            .list_metadata(&ListParams::default().labels("app=load"))
            .await?
            .items
            .len();
        if n >= args.pods {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {n} of {} pods after 10 minutes",
            args.pods
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "{} pods created by the controller-manager in {:.2} s",
        args.pods,
        load_started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    print_rss(
        &format!("with {} pods", args.pods),
        &control_plane(&cluster, &pids)?,
    );
    drop(node);
    Ok(())
}
