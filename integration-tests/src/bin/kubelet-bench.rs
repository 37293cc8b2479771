//! kubelet benchmark (not a test): pod startup latency, from the create
//! request to the pod seen Running by a watch, with the image present, on
//! one real node (containerd in its own network namespace, CNI bridge):
//! `--rounds` pods one at a time, then `--burst` pods at once
//! (`--burst-rounds` times); p50 and p99 of each, the kubelet's RSS with the
//! burst running, and, as the reference measured in the same run, the same
//! sandbox and container started straight through CRI (no apiserver, no
//! kubelet). Targets: p99 <= 2 s (upstream's SLO is 5 s), RSS <= 60 MiB.
//!
//! Release binaries: KUBE_APISERVER_BIN=target/release/kube-apiserver
//! KUBELET_BIN=target/release/kubelet target/release/kubelet-bench

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::StreamExt;
use integration_tests::Cluster;
use integration_tests::node::{BUSYBOX_IMAGE, NodeBuilder};
use integration_tests::process::rss_kib;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kubelet::cri::api;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TARGET_P99: Duration = Duration::from_secs(2);
const SLO_P99: Duration = Duration::from_secs(5);
const TARGET_RSS_MIB: f64 = 60.0;

#[derive(Parser)]
struct Args {
    /// Pods started one at a time.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Pods started at once.
    #[arg(long, default_value_t = 30)]
    burst: usize,
    #[arg(long, default_value_t = 3)]
    burst_rounds: usize,
}

fn pod(name: &str) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "startup"}},
        "spec": {
            "nodeName": "bench",
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"]}]
        }
    }))?)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// When each pod was first seen Running.
type Seen = Arc<Mutex<HashMap<String, Instant>>>;

fn watch_running(pods: Api<Pod>) -> Seen {
    let seen: Seen = Arc::default();
    let out = seen.clone();
    tokio::spawn(async move {
        let config = watcher::Config::default().labels("bench=startup");
        let mut stream = watcher(pods, config).applied_objects().boxed();
        while let Some(Ok(p)) = stream.next().await {
            let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            if running && let Some(name) = p.metadata.name {
                out.lock()
                    .expect("seen")
                    .entry(name)
                    .or_insert_with(Instant::now);
            }
        }
    });
    seen
}

async fn start_pods(pods: &Api<Pod>, seen: &Seen, names: &[String]) -> Result<Vec<Duration>> {
    let created: Vec<Instant> = futures::future::try_join_all(names.iter().map(|n| async move {
        let t = Instant::now();
        pods.create(&PostParams::default(), &pod(n)?).await?;
        Ok::<_, anyhow::Error>(t)
    }))
    .await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done: Vec<Option<Instant>> = {
            let s = seen.lock().expect("seen");
            names.iter().map(|n| s.get(n).copied()).collect()
        };
        if done.iter().all(Option::is_some) {
            let mut out: Vec<Duration> = done
                .iter()
                .zip(&created)
                .map(|(r, c)| r.expect("seen").saturating_duration_since(*c))
                .collect();
            out.sort();
            return Ok(out);
        }
        if Instant::now() > deadline {
            bail!("pods not Running within 120s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn delete_all(pods: &Api<Pod>) -> Result<()> {
    let lp = ListParams::default().labels("bench=startup");
    pods.delete_collection(&DeleteParams::default(), &lp)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !pods.list(&lp).await?.items.is_empty() {
        if Instant::now() > deadline {
            bail!("pods not gone within 120s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The reference: a sandbox and a container started straight through CRI.
async fn direct(
    runtime: &kubelet::cri::Runtime,
    i: usize,
    log_dir: &std::path::Path,
) -> Result<Duration> {
    let uid = format!("direct-{i}");
    let sandbox = api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: uid.clone(),
            uid: uid.clone(),
            namespace: "bench".into(),
            attempt: 0,
        }),
        hostname: uid.clone(),
        log_directory: log_dir.join(&uid).to_string_lossy().into_owned(),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: format!("/kubepods/besteffort/pod{uid}"),
            ..Default::default()
        }),
        ..Default::default()
    };
    let started = Instant::now();
    let config = sandbox.clone();
    let id = runtime
        .run("run_podsandbox", |mut c| async move {
            c.run_pod_sandbox(api::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await
        })
        .await?
        .pod_sandbox_id;
    let container = api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: "c".into(),
            attempt: 0,
        }),
        image: Some(api::ImageSpec {
            image: BUSYBOX_IMAGE.into(),
            ..Default::default()
        }),
        command: vec!["sleep".into(), "3600".into()],
        log_path: "c.log".into(),
        ..Default::default()
    };
    let sid = id.clone();
    let created = runtime
        .run("create_container", |mut c| async move {
            c.create_container(api::CreateContainerRequest {
                pod_sandbox_id: sid,
                config: Some(container),
                sandbox_config: Some(sandbox),
            })
            .await
        })
        .await?
        .container_id;
    runtime
        .run("start_container", |mut c| async move {
            c.start_container(api::StartContainerRequest {
                container_id: created,
            })
            .await
        })
        .await?;
    let took = started.elapsed();
    runtime.stop_sandbox(&id).await?;
    runtime.remove_sandbox(&id).await?;
    kubelet::pods::cgroups::remove(&format!("/kubepods/besteffort/pod{uid}"));
    Ok(took)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let cluster = Cluster::start().await?;
    let node = NodeBuilder::new("bench")
        .config_line(format!("maxPods: {}", args.burst.max(10) + 10))
        .start(&cluster)
        .await?;
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    let seen = watch_running(pods.clone());
    let kubelet_pid = node.kubelet_pid().context("the kubelet's pid")?;

    // Warm-up: the first sandbox also brings the CNI bridge up.
    start_pods(&pods, &seen, &["warmup".into()]).await?;
    delete_all(&pods).await?;

    let runtime = node.runtime()?;
    let log_dir = node.dir.join("direct-logs");
    let mut reference = Vec::new();
    for i in 0..args.rounds {
        reference.push(direct(&runtime, i, &log_dir).await?);
    }
    reference.sort();
    // The same burst straight through CRI: the runtime's own floor.
    let mut reference_burst = Vec::new();
    for r in 0..args.burst_rounds {
        let runs = (0..args.burst).map(|i| direct(&runtime, 1000 * (r + 1) + i, &log_dir));
        reference_burst.extend(futures::future::try_join_all(runs).await?);
    }
    reference_burst.sort();

    let mut single = Vec::new();
    for i in 0..args.rounds {
        single.extend(start_pods(&pods, &seen, &[format!("one-{i}")]).await?);
        delete_all(&pods).await?;
    }
    single.sort();

    let mut burst = Vec::new();
    let mut rss_mib: f64 = 0.0;
    for r in 0..args.burst_rounds {
        let names: Vec<String> = (0..args.burst).map(|i| format!("burst-{r}-{i}")).collect();
        burst.extend(start_pods(&pods, &seen, &names).await?);
        // Let the workers settle into their steady state before sampling.
        tokio::time::sleep(Duration::from_secs(3)).await;
        rss_mib = rss_mib.max(rss_kib(kubelet_pid)? as f64 / 1024.0);
        delete_all(&pods).await?;
    }
    burst.sort();

    let (s50, s99) = (percentile(&single, 0.5), percentile(&single, 0.99));
    let (b50, b99) = (percentile(&burst, 0.5), percentile(&burst, 0.99));
    let r50 = percentile(&reference, 0.5);
    println!("kubelet pod startup (create -> Running seen by watch, image present)");
    println!(
        "  reference, sandbox + container straight through CRI: p50 {} ({} runs)",
        ms(r50),
        reference.len()
    );
    println!(
        "  1 pod at a time ({} pods): p50 {}  p99 {}  = {:.2}x the CRI reference at p50",
        single.len(),
        ms(s50),
        ms(s99),
        s50.as_secs_f64() / r50.as_secs_f64().max(1e-9)
    );
    let (rb50, rb99) = (
        percentile(&reference_burst, 0.5),
        percentile(&reference_burst, 0.99),
    );
    println!(
        "  reference, {} at once straight through CRI: p50 {}  p99 {}",
        args.burst,
        ms(rb50),
        ms(rb99)
    );
    println!(
        "  {} pods at once ({} pods): p50 {}  p99 {}  = {:.2}x the CRI reference at p99",
        args.burst,
        burst.len(),
        ms(b50),
        ms(b99),
        b99.as_secs_f64() / rb99.as_secs_f64().max(1e-9)
    );
    let worst = s99.max(b99);
    println!(
        "  p99 {} = {:.2}x the 2 s target, {:.2}x upstream's 5 s SLO: {}",
        ms(worst),
        worst.as_secs_f64() / TARGET_P99.as_secs_f64(),
        worst.as_secs_f64() / SLO_P99.as_secs_f64(),
        if worst <= TARGET_P99 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  kubelet RSS with {} pods: {:.1} MiB = {:.2}x the 60 MiB target: {}",
        args.burst,
        rss_mib,
        rss_mib / TARGET_RSS_MIB,
        if rss_mib <= TARGET_RSS_MIB {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}
