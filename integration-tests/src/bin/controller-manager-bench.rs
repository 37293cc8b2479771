//! kube-controller-manager benchmark (not a test): `--deployments`
//! Deployments of `--replicas` each (default 100 x 50: 5,000 pods) created
//! at once against the real apiserver and etcd, the scheduler off and the
//! pods marked Ready by the benchmark as they appear; prints the seconds
//! until every Deployment reports all replicas updated and available, the
//! controller-manager's peak RSS, and, as the reference measured in the
//! same run, how long this client takes to create as many pods itself.

use anyhow::{Context, Result};
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use integration_tests::Cluster;
use integration_tests::daemon::ControllerManager;
use integration_tests::pod_status::{ready, ready_status};
use integration_tests::process::{cpu_seconds, rss_kib};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const TARGET_RSS_MIB: f64 = 150.0;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100)]
    deployments: usize,
    #[arg(long, default_value_t = 50)]
    replicas: usize,
    /// Concurrent clients creating objects and marking pods Ready.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Upper bound for the whole rollout, in seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

fn pod(i: usize) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("ref-{i}"), "labels": {"bench": "reference"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))?)
}

fn deployment(i: usize, replicas: usize) -> Result<Deployment> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("d-{i}")},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": format!("d-{i}")}},
                 "template": {"metadata": {"labels": {"app": format!("d-{i}")}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }))?)
}

/// The reference: this client creating `count` pods itself, then removing them.
async fn direct_creates(
    client: &kube::Client,
    count: usize,
    concurrency: usize,
) -> Result<Duration> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let started = Instant::now();
    futures::stream::iter(0..count)
        .map(|i| {
            let pods = pods.clone();
            async move {
                pods.create(&PostParams::default(), &pod(i)?).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let took = started.elapsed();
    pods.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("bench=reference"),
    )
    .await?;
    Ok(took)
}

/// Marks every pod Ready as it appears (the kubelet's part), `concurrency` at a time.
fn mark_ready(
    client: kube::Client,
    concurrency: usize,
    marked: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Pod> = Api::namespaced(client, "default");
        let events = watcher(api.clone(), watcher::Config::default().labels("app"));
        events
            .filter_map(|ev| async move {
                match ev {
                    Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p))
                        if !ready(&p) && p.metadata.deletion_timestamp.is_none() =>
                    {
                        p.metadata.name
                    }
                    _ => None,
                }
            })
            .for_each_concurrent(concurrency, |name| {
                let (api, marked) = (api.clone(), marked.clone());
                async move {
                    if api
                        .patch_status(
                            &name,
                            &PatchParams::default(),
                            &Patch::Merge(ready_status()),
                        )
                        .await
                        .is_ok()
                    {
                        marked.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
            .await;
    })
}

async fn all_rolled_out(api: &Api<Deployment>, replicas: i32) -> Result<usize> {
    let list = api.list(&ListParams::default()).await?;
    Ok(list
        .items
        .iter()
        .filter(|d| {
            let s = d.status.clone().unwrap_or_default();
            s.updated_replicas == Some(replicas) && s.available_replicas == Some(replicas)
        })
        .count())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let cluster = Cluster::start()
        .await
        .context("starting etcd and kube-apiserver")?;
    let client = cluster.client().await;
    let total = args.deployments * args.replicas;
    eprintln!("controller-manager-bench: reference, {total} pods created directly...");
    let reference = direct_creates(&client, total, args.concurrency).await?;

    let cm = ControllerManager::start(&cluster, &["--leader-elect=false"]).await?;
    let cm_pid = cm.pid().context("controller-manager pid")?;
    let api_pid = cluster.apiserver_pid().context("apiserver pid")?;
    let etcd_pid = cluster.etcd_pid().context("etcd pid")?;
    let before = (
        cpu_seconds(cm_pid)?,
        cpu_seconds(api_pid)?,
        cpu_seconds(etcd_pid)?,
    );
    let rss_idle = rss_kib(cm_pid)? as f64 / 1024.0;
    let marked = Arc::new(AtomicU64::new(0));
    let marker = mark_ready(client.clone(), args.concurrency, marked.clone());

    eprintln!(
        "controller-manager-bench: {} deployments x {} replicas...",
        args.deployments, args.replicas
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let started = Instant::now();
    futures::stream::iter(0..args.deployments)
        .map(|i| {
            let api = deployments.clone();
            let d = deployment(i, args.replicas);
            async move {
                api.create(&PostParams::default(), &d?).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(args.concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let mut peak_rss = rss_idle;
    let deadline = started + Duration::from_secs(args.timeout);
    let took = loop {
        peak_rss = peak_rss.max(rss_kib(cm_pid)? as f64 / 1024.0);
        let done = all_rolled_out(&deployments, args.replicas as i32).await?;
        if done == args.deployments {
            break started.elapsed();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {done} of {} deployments rolled out",
            args.deployments
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let cpu = (
        cpu_seconds(cm_pid)? - before.0,
        cpu_seconds(api_pid)? - before.1,
        cpu_seconds(etcd_pid)? - before.2,
    );
    marker.abort();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let created = pods
        .list(&ListParams::default().labels("app"))
        .await?
        .items
        .len();
    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    println!("================ kube-controller-manager benchmark ================");
    println!(
        "settings          {} deployments x {} replicas = {total} pods, {} clients",
        args.deployments, args.replicas, args.concurrency
    );
    println!(
        "rolled out        every deployment updated and available in {:.2}s ({:.0} pods/s)",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );
    println!(
        "reference         this client creating {total} pods itself: {:.2}s ({:.0} pods/s)",
        reference.as_secs_f64(),
        total as f64 / reference.as_secs_f64()
    );
    println!(
        "ratio             {:.2}x the reference's time (controllers create the pods, the benchmark marks them Ready: {} marks)",
        took.as_secs_f64() / reference.as_secs_f64(),
        marked.load(Ordering::Relaxed)
    );
    println!(
        "pods              {created} exist (want {total})   {}",
        verdict(created == total)
    );
    println!(
        "CPU               controller-manager {:.1}s, apiserver {:.1}s, etcd {:.1}s (2 cores shared with this client)",
        cpu.0, cpu.1, cpu.2
    );
    println!(
        "RSS               controller-manager {rss_idle:.1} MiB idle, {peak_rss:.1} MiB peak   (target <= {TARGET_RSS_MIB} MiB)  {}",
        verdict(peak_rss <= TARGET_RSS_MIB)
    );
    println!("===================================================================");
    Ok(())
}
