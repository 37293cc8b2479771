//! scheduler-bench: kube-scheduler placing pods on many Node objects
//! through the real apiserver and etcd (no kubelets), on loopback only.
//!
//! `KUBE_APISERVER_BIN=target/release/kube-apiserver KUBE_SCHEDULER_BIN=target/release/kube-scheduler target/release/scheduler-bench --nodes 1000 --pods 10000`

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use integration_tests::Cluster;
use integration_tests::daemon::Scheduler;
use integration_tests::process::{cpu_seconds, rss_kib};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

/// Upstream's scheduler_perf threshold for SchedulingBasic at 5,000 nodes.
const UPSTREAM_THRESHOLD: f64 = 680.0;
const TARGET_PODS_PER_SEC: f64 = 1000.0;
const TARGET_RSS_MIB: f64 = 150.0;

#[derive(Debug, Parser)]
#[command(about = "Benchmark kube-scheduler against the real apiserver (loopback only)")]
struct Args {
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Concurrent clients creating nodes and pods.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Upper bound for scheduling every pod, in seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

async fn create_nodes(cluster: &Cluster, count: usize, concurrency: usize) -> Result<()> {
    let nodes: Api<Node> = Api::all(cluster.client().await);
    futures::stream::iter(0..count)
        .map(|i| {
            let nodes = nodes.clone();
            async move {
                let name = format!("node-{i}");
                let node: Node = serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                        "topology.kubernetes.io/zone": format!("zone-{}", i % 3)}},
                }))?;
                nodes.create(&PostParams::default(), &node).await?;
                let capacity = json!({"cpu": "32", "memory": "256Gi", "pods": "110"});
                let status = json!({"status": {"capacity": capacity, "allocatable": capacity}});
                nodes
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

async fn create_pods(cluster: &Cluster, count: usize, concurrency: usize) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    futures::stream::iter(0..count)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let pod: Pod = serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("pod-{i}")},
                    "spec": {"containers": [{"name": "c", "image": "busybox",
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]},
                }))?;
                pods.create(&PostParams::default(), &pod).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// Times from `origin` at which each pod was first seen bound.
async fn watch_bindings(
    cluster: &Cluster,
    want: usize,
    from: String,
    origin: Instant,
    timeout: Duration,
) -> Result<Vec<Duration>> {
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let mut seen = HashSet::new();
    let mut times = Vec::with_capacity(want);
    let deadline = Instant::now() + timeout;
    let mut rv = from;
    while seen.len() < want {
        if Instant::now() > deadline {
            bail!("{} of {want} pods bound within {timeout:?}", seen.len());
        }
        let mut stream = pods
            .watch(&WatchParams::default().timeout(60), &rv)
            .await?
            .boxed();
        while let Some(ev) = tokio::time::timeout_at(deadline.into(), stream.next())
            .await
            .ok()
            .flatten()
        {
            let pod = match ev? {
                WatchEvent::Added(p) | WatchEvent::Modified(p) => p,
                WatchEvent::Bookmark(b) => {
                    rv = b.metadata.resource_version;
                    continue;
                }
                WatchEvent::Deleted(_) => continue,
                WatchEvent::Error(e) => bail!("watch error: {e:?}"),
            };
            if let Some(v) = &pod.metadata.resource_version {
                rv = v.clone();
            }
            let bound = pod.spec.and_then(|s| s.node_name).is_some();
            if bound && seen.insert(pod.metadata.name.unwrap_or_default()) {
                times.push(origin.elapsed());
                if seen.len() == want {
                    break;
                }
            }
        }
    }
    Ok(times)
}

/// A quantile of a Prometheus histogram's cumulative `_bucket` lines
/// (those that contain every one of `labels`).
fn histogram_quantile(metrics: &str, name: &str, labels: &[&str], q: f64) -> Option<f64> {
    let mut buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter(|l| {
            l.starts_with(&format!("{name}_bucket{{")) && labels.iter().all(|x| l.contains(x))
        })
        .filter_map(|l| {
            // `le` is the last label (and "profile=" ends in le= too).
            let le = l.rsplit("le=\"").next()?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count: f64 = l.rsplit(' ').next()?.parse().ok()?;
            Some((le, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    let rank = q * total;
    buckets.iter().find(|(_, c)| *c >= rank).map(|(le, _)| *le)
}

/// What one run measured.
struct Figures {
    created: Duration,
    first: Duration,
    last: Duration,
    rate: f64,
    p99: Option<f64>,
    /// Of the algorithm alone (filter, score), without binding.
    p99_algorithm: Option<f64>,
    /// Of the apiserver serving pods/binding, by its own histogram.
    p99_binding_served: Option<f64>,
    cpu: (f64, f64, f64),
    rss_mib: f64,
}

/// A KubeSchedulerConfiguration with only the NodeResourcesFit filter and
/// score (plus the queue sort and the binder every profile needs), to show
/// what the rest of the framework costs.
const FIT_ONLY: &str = "apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection:
  leaderElect: false
profiles:
- schedulerName: default-scheduler
  plugins:
    multiPoint:
      disabled:
      - name: '*'
      enabled:
      - name: PrioritySort
      - name: NodeResourcesFit
      - name: DefaultBinder
";

/// One workload on a fresh cluster, with the given scheduler configuration.
async fn run_once(args: &Args, config: Option<&str>) -> Result<Figures> {
    let cluster = Cluster::start()
        .await
        .context("starting etcd and kube-apiserver")?;
    eprintln!("scheduler-bench: creating {} nodes...", args.nodes);
    let started = Instant::now();
    create_nodes(&cluster, args.nodes, args.concurrency).await?;
    eprintln!(
        "scheduler-bench: nodes created in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let flags = match config {
        Some(text) => {
            let path = cluster.dir().join("scheduler.yaml");
            std::fs::write(&path, text)?;
            vec![format!("--config={}", path.display())]
        }
        None => vec!["--leader-elect=false".to_string()],
    };
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let scheduler = Scheduler::start(&cluster, &flags).await?;
    let sched_pid = scheduler.pid().context("scheduler pid")?;
    let api_pid = cluster.apiserver_pid().context("apiserver pid")?;
    let etcd_pid = cluster.etcd_pid().context("etcd pid")?;
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let rv = pods
        .list(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let cpu_before = (
        cpu_seconds(sched_pid)?,
        cpu_seconds(api_pid)?,
        cpu_seconds(etcd_pid)?,
    );
    eprintln!("scheduler-bench: creating {} pods...", args.pods);
    let origin = Instant::now();
    let timeout = Duration::from_secs(args.timeout);
    let watcher = watch_bindings(&cluster, args.pods, rv, origin, timeout);
    let (bound, created) = tokio::join!(watcher, async {
        create_pods(&cluster, args.pods, args.concurrency).await?;
        anyhow::Ok(origin.elapsed())
    });
    let bound = bound?;
    let cpu = (
        cpu_seconds(sched_pid)? - cpu_before.0,
        cpu_seconds(api_pid)? - cpu_before.1,
        cpu_seconds(etcd_pid)? - cpu_before.2,
    );
    let metrics = scheduler.metrics().await?;
    let api_metrics = cluster
        .client()
        .await
        .request_text(http::Request::get("/metrics").body(Vec::new())?)
        .await?;
    let (first, last) = (bound[0], *bound.last().expect("every pod bound"));
    Ok(Figures {
        created: created?,
        first,
        last,
        rate: (bound.len() - 1) as f64 / (last - first).as_secs_f64().max(1e-9),
        p99: histogram_quantile(
            &metrics,
            "scheduler_scheduling_attempt_duration_seconds",
            &["result=\"scheduled\""],
            0.99,
        ),
        p99_algorithm: histogram_quantile(
            &metrics,
            "scheduler_scheduling_algorithm_duration_seconds",
            &[],
            0.99,
        ),
        p99_binding_served: histogram_quantile(
            &api_metrics,
            "apiserver_request_duration_seconds",
            &["subresource=\"binding\"", "verb=\"POST\""],
            0.99,
        ),
        cpu,
        rss_mib: rss_kib(sched_pid)? as f64 / 1024.0,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let full = run_once(&args, None).await?;
    let fit_only = run_once(&args, Some(FIT_ONLY)).await?;
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    let ms = |s: Option<f64>| s.map_or("n/a".into(), |s| format!("{:.1} ms", s * 1e3));
    println!("=================== kube-scheduler benchmark ===================");
    println!(
        "settings          nodes={} pods={} concurrency={} (each pod requests 100m cpu, 64Mi)",
        args.nodes, args.pods, args.concurrency
    );
    for (name, f) in [
        ("default plugins", &full),
        ("NodeResourcesFit only", &fit_only),
    ] {
        println!("-- {name}");
        println!(
            "pods created      {} in {:.2}s ({:.0}/s through the apiserver)",
            args.pods,
            f.created.as_secs_f64(),
            args.pods as f64 / f.created.as_secs_f64()
        );
        println!(
            "throughput        {:.0} pods/s from first to last binding ({:.2}s .. {:.2}s)",
            f.rate,
            f.first.as_secs_f64(),
            f.last.as_secs_f64()
        );
        println!(
            "attempt latency   p99 <= {} (scheduler_scheduling_attempt_duration_seconds: algorithm + binding, bucket bound)",
            ms(f.p99)
        );
        println!(
            "algorithm         p99 <= {} (scheduler_scheduling_algorithm_duration_seconds: filter + score, bucket bound)",
            ms(f.p99_algorithm)
        );
        println!(
            "binding served    p99 <= {} (the apiserver's apiserver_request_duration_seconds for POST pods/binding; the rest of the attempt is waiting for it)",
            ms(f.p99_binding_served)
        );
        println!(
            "CPU               scheduler {:.1}s, apiserver {:.1}s, etcd {:.1}s (2 cores shared with this client)",
            f.cpu.0, f.cpu.1, f.cpu.2
        );
    }
    println!("-- verdict");
    println!(
        "throughput        {:.0} pods/s with the default plugins (upstream scheduler_perf SchedulingBasic threshold at 5,000 nodes: {UPSTREAM_THRESHOLD:.0})   (target >= {TARGET_PODS_PER_SEC:.0})  {}",
        full.rate,
        verdict(full.rate >= TARGET_PODS_PER_SEC)
    );
    println!(
        "RSS               scheduler {:.1} MiB with {} nodes and {} pods   (target <= {TARGET_RSS_MIB:.0} MiB)  {}",
        full.rss_mib,
        args.nodes,
        args.pods,
        verdict(full.rss_mib <= TARGET_RSS_MIB)
    );
    println!("================================================================");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::histogram_quantile;

    #[test]
    fn quantiles_from_buckets() {
        let text = "x_bucket{profile=\"p\",result=\"scheduled\",le=\"0.001\"} 90\nx_bucket{profile=\"p\",result=\"scheduled\",le=\"0.002\"} 99\nx_bucket{profile=\"p\",result=\"scheduled\",le=\"+Inf\"} 100\n";
        let scheduled = ["result=\"scheduled\""];
        assert_eq!(histogram_quantile(text, "x", &scheduled, 0.5), Some(0.001));
        assert_eq!(histogram_quantile(text, "x", &scheduled, 0.99), Some(0.002));
        let error = ["result=\"error\""];
        assert_eq!(histogram_quantile(text, "x", &error, 0.99), None);
    }
}
