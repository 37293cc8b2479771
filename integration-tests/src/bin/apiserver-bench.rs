//! apiserver-bench: throughput, latency, memory and watch fan-out of the
//! kube-apiserver binary against a raw etcd baseline, on loopback only.
//!
//! `KUBE_APISERVER_BIN=target/release/kube-apiserver cargo run --release -p integration-tests --bin apiserver-bench -- --objects 10000`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::StreamExt;
use integration_tests::Cluster;
use integration_tests::process::{CpuSnapshot, rss_kib};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::json;

const NAMESPACE: &str = "default";
const TARGET_RATIO: f64 = 0.60;
const TARGET_IDLE_RSS_MIB: f64 = 40.0;
const TARGET_LOADED_RSS_MIB: f64 = 150.0;
const TARGET_LOADED_OBJECTS: usize = 10_000;

#[derive(Debug, Parser)]
#[command(about = "Benchmark kube-apiserver against raw etcd (loopback only)")]
struct Args {
    /// ConfigMaps created through the apiserver.
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Concurrent clients (and concurrent etcd put tasks).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Raw etcd puts for the baseline (default: same as --objects).
    #[arg(long)]
    etcd_puts: Option<usize>,
    /// Concurrent watchers during the update burst.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Updates in the burst seen by the watchers.
    #[arg(long, default_value_t = 500)]
    updates: usize,
    /// Bytes of data in each ConfigMap.
    #[arg(long, default_value_t = 256)]
    value_size: usize,
    /// Upper bound for each phase, in seconds.
    #[arg(long, default_value_t = 600)]
    phase_timeout: u64,
    /// Exit with status 1 when a target is missed.
    #[arg(long)]
    strict: bool,
}

fn configmap(name: &str, value_size: usize) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([("bench".to_string(), "true".to_string())])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            ("value".to_string(), "v".repeat(value_size)),
            ("round".to_string(), "0".to_string()),
        ])),
        ..Default::default()
    }
}

/// What the apiserver would store for such a ConfigMap: the object plus the
/// metadata the server fills in.
fn stored_json(name: &str, value_size: usize) -> Vec<u8> {
    let mut value = serde_json::to_value(configmap(name, value_size)).expect("serializable");
    value["apiVersion"] = json!("v1");
    value["kind"] = json!("ConfigMap");
    value["metadata"]["namespace"] = json!(NAMESPACE);
    value["metadata"]["uid"] = json!("5c3b7a1e-0d6f-4b8e-9a51-3f2a7c9d4e10");
    value["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
    serde_json::to_vec(&value).expect("serializable")
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

async fn phase<T>(
    name: &str,
    secs: u64,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    eprintln!("bench: {name}...");
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .with_context(|| format!("{name} did not finish within {secs}s"))?
}

/// (a) raw etcd puts from `concurrency` tasks.
async fn etcd_put_rate(
    cluster: &Cluster,
    puts: usize,
    concurrency: usize,
    value_size: usize,
) -> Result<f64> {
    let client = cluster.etcd_client().await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let mut kv = client.kv_client();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= puts {
                    return anyhow::Ok(());
                }
                let name = format!("raw-{i}");
                let key = format!("/bench-raw/configmaps/{NAMESPACE}/{name}");
                kv.put(key, stored_json(&name, value_size), None).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let rate = puts as f64 / started.elapsed().as_secs_f64();
    // Leave etcd as the apiserver expects it.
    let mut kv = client.kv_client();
    kv.delete(
        "/bench-raw/",
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await?;
    Ok(rate)
}

struct CreateStats {
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// (b) ConfigMap creates through the apiserver from `concurrency` clients.
async fn create_objects(
    cluster: &Cluster,
    objects: usize,
    concurrency: usize,
    value_size: usize,
) -> Result<CreateStats> {
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        clients.push(cluster.client().await);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in clients {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let api: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
            let mut latencies = Vec::new();
            let mut errors = 0;
            let mut first_error = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= objects {
                    return (latencies, errors, first_error);
                }
                let cm = configmap(&format!("bench-{i}"), value_size);
                let t = Instant::now();
                match api.create(&PostParams::default(), &cm).await {
                    Ok(_) => latencies.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
        }));
    }
    let mut stats = CreateStats {
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(objects),
    };
    for task in tasks {
        let (latencies, errors, first_error) = task.await?;
        stats.ok += latencies.len();
        stats.latencies.extend(latencies);
        stats.errors += errors;
        if stats.first_error.is_none() {
            stats.first_error = first_error;
        }
    }
    stats.elapsed = started.elapsed();
    stats.latencies.sort();
    Ok(stats)
}

/// (d) one unpaginated list of everything.
async fn full_list(cluster: &Cluster) -> Result<(usize, Duration)> {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await, NAMESPACE);
    let started = Instant::now();
    let list = api
        .list(&ListParams::default().labels("bench=true"))
        .await?;
    Ok((list.items.len(), started.elapsed()))
}

struct WatchStats {
    expected: u64,
    received: u64,
    burst: Duration,
    delivery: Duration,
}

/// Patches `bench-0..updates` (setting `data.round`) from `writers` clients.
async fn update_burst(writers: &[kube::Client], updates: usize, round: u32) -> Result<Duration> {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for client in writers.iter().take(updates.max(1)) {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let patch = Patch::Merge(json!({"data": {"round": round.to_string()}}));
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= updates {
                    return anyhow::Ok(());
                }
                api.patch(&format!("bench-{i}"), &PatchParams::default(), &patch)
                    .await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}

/// (e) `watchers` open watches while `updates` ConfigMaps are patched.
async fn watch_fanout(
    cluster: &Cluster,
    writers: &[kube::Client],
    watchers: usize,
    updates: usize,
    deadline: Duration,
) -> Result<WatchStats> {
    let watch_client = cluster.client().await;
    let api: Api<ConfigMap> = Api::namespaced(watch_client.clone(), NAMESPACE);
    let rv = api
        .list(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .context("list resourceVersion")?;
    let received = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let params = WatchParams::default()
            .labels("bench=true")
            .timeout(deadline.as_secs() as u32);
        let stream = api.watch(&params, &rv).await?;
        let received = received.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = stream.boxed();
            let mut seen = 0usize;
            while let Some(event) = stream.next().await {
                if let Ok(WatchEvent::Modified(_)) = event {
                    received.fetch_add(1, Ordering::Relaxed);
                    seen += 1;
                    if seen >= updates {
                        break;
                    }
                }
            }
        }));
    }

    let started = Instant::now();
    update_burst(writers, updates, 2).await?;
    let burst = started.elapsed();
    let expected = (watchers * updates) as u64;
    let wait_until = Instant::now() + Duration::from_secs(30);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivery = started.elapsed();
    for task in tasks {
        task.abort();
    }
    Ok(WatchStats {
        expected,
        received: received.load(Ordering::Relaxed),
        burst,
        delivery,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 || args.objects == 0 {
        bail!("--objects and --concurrency must be positive");
    }
    let puts = args.etcd_puts.unwrap_or(args.objects);
    let secs = args.phase_timeout;
    let bin = integration_tests::apiserver::locate_binary()?;
    let cluster = phase("starting etcd and kube-apiserver", secs, Cluster::start()).await?;
    let pid = cluster.apiserver_pid().context("apiserver pid")?;

    // Let startup work (bootstrap objects, caches) settle before measuring idle memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss = rss_kib(pid)?;

    let etcd_pid = cluster.etcd_pid().context("etcd pid")?;
    let cpu = CpuSnapshot::take(pid, etcd_pid);
    let put_rate = phase(
        "raw etcd puts",
        secs,
        etcd_put_rate(&cluster, puts, args.concurrency, args.value_size),
    )
    .await?;
    let put_cpu = cpu.since(pid, etcd_pid);
    let cpu = CpuSnapshot::take(pid, etcd_pid);
    let creates = phase(
        "apiserver creates",
        secs,
        create_objects(&cluster, args.objects, args.concurrency, args.value_size),
    )
    .await?;
    let create_cpu = cpu.since(pid, etcd_pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let loaded_rss = rss_kib(pid)?;
    // A failing list or watch phase is reported, not fatal: the other numbers still count.
    let list = phase("full list", secs, full_list(&cluster)).await;
    let list_warm = phase("full list again", secs, full_list(&cluster)).await;
    let updates = args.updates.min(creates.ok);
    let mut writers = Vec::new();
    for _ in 0..args.concurrency {
        writers.push(cluster.client().await);
    }
    let plain_updates = phase(
        "updates without watchers",
        secs,
        update_burst(&writers, updates, 1),
    )
    .await;
    let cpu = CpuSnapshot::take(pid, etcd_pid);
    let watch = phase(
        "watch fan-out",
        secs,
        watch_fanout(
            &cluster,
            &writers,
            args.watchers,
            updates,
            Duration::from_secs(secs),
        ),
    )
    .await;
    let watch_cpu = cpu.since(pid, etcd_pid);
    let final_rss = rss_kib(pid)?;
    let etcd_rss = rss_kib(etcd_pid).unwrap_or(0);

    let create_rate = creates.ok as f64 / creates.elapsed.as_secs_f64();
    let ratio = create_rate / put_rate;
    let p50 = percentile(&creates.latencies, 0.50);
    let p99 = percentile(&creates.latencies, 0.99);
    let ratio_ok = ratio >= TARGET_RATIO;
    let idle_ok = mib(idle_rss) <= TARGET_IDLE_RSS_MIB;
    let loaded_ok = mib(loaded_rss) <= TARGET_LOADED_RSS_MIB;
    let watch_ok = watch.as_ref().is_ok_and(|w| w.received == w.expected);
    let list_ok = list.is_ok();

    println!("==================== kube-apiserver benchmark ====================");
    println!("binary            {}", bin.display());
    println!(
        "settings          objects={} concurrency={} etcd-puts={} watchers={} updates={} value-size={}B",
        args.objects, args.concurrency, puts, args.watchers, args.updates, args.value_size
    );
    println!(
        "(a) raw etcd      {puts} puts: {put_rate:.0} puts/s (etcd CPU {:.1}s, this client {:.1}s)",
        put_cpu.etcd, put_cpu.client
    );
    println!(
        "(b) creates       {} ok, {} errors in {:.2}s: {create_rate:.0} creates/s, p50 {:.1} ms, p99 {:.1} ms",
        creates.ok,
        creates.errors,
        creates.elapsed.as_secs_f64(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
    );
    if let Some(e) = &creates.first_error {
        println!("                  first error: {e}");
    }
    println!(
        "    ratio         creates/s vs etcd puts/s = {:.0}%   (target >= {:.0}%)  {}",
        ratio * 100.0,
        TARGET_RATIO * 100.0,
        verdict(ratio_ok)
    );
    println!(
        "(c) RSS idle      {:.1} MiB   (target <= {TARGET_IDLE_RSS_MIB} MiB)  {}",
        mib(idle_rss),
        verdict(idle_ok)
    );
    let note = if args.objects == TARGET_LOADED_OBJECTS {
        String::new()
    } else {
        format!("  [target is for {TARGET_LOADED_OBJECTS} objects]")
    };
    println!(
        "    RSS loaded    {:.1} MiB with {} objects   (target <= {TARGET_LOADED_RSS_MIB} MiB)  {}{note}",
        mib(loaded_rss),
        creates.ok,
        verdict(loaded_ok)
    );
    println!(
        "    RSS final     {:.1} MiB after the watch phase; etcd RSS {:.1} MiB",
        mib(final_rss),
        mib(etcd_rss)
    );
    println!(
        "    CPU           during creates: apiserver {:.1}s, etcd {:.1}s, this client {:.1}s (of {:.1}s wall x {} cores)",
        create_cpu.apiserver,
        create_cpu.etcd,
        create_cpu.client,
        creates.elapsed.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    match (&list, &list_warm) {
        (Ok((listed, first)), Ok((_, again))) => println!(
            "(d) full list     {listed} items in {:.1} ms (again: {:.1} ms)",
            first.as_secs_f64() * 1e3,
            again.as_secs_f64() * 1e3
        ),
        (Err(e), _) | (_, Err(e)) => println!("(d) full list     FAILED: {e:#}"),
    }
    match &plain_updates {
        Ok(took) => println!(
            "(e) updates       {updates} patches without watchers: {:.0} updates/s",
            updates as f64 / took.as_secs_f64()
        ),
        Err(e) => println!("(e) updates       FAILED: {e:#}"),
    }
    match &watch {
        Ok(watch) => println!(
            "    watch fan-out {} watchers x {updates} patches: received {}/{} events ({:.1}%), patches took {:.2}s ({:.0}/s), all delivered by {:.2}s  {}",
            args.watchers,
            watch.received,
            watch.expected,
            100.0 * watch.received as f64 / watch.expected.max(1) as f64,
            watch.burst.as_secs_f64(),
            updates as f64 / watch.burst.as_secs_f64(),
            watch.delivery.as_secs_f64(),
            verdict(watch_ok)
        ),
        Err(e) => println!("    watch fan-out FAILED: {e:#}"),
    }
    println!(
        "    CPU           during fan-out: apiserver {:.1}s, etcd {:.1}s, this client {:.1}s",
        watch_cpu.apiserver, watch_cpu.etcd, watch_cpu.client
    );
    println!("==================================================================");

    let all_ok = plain_updates.is_ok()
        && ratio_ok
        && idle_ok
        && loaded_ok
        && list_ok
        && watch_ok
        && creates.errors == 0;
    drop(cluster);
    if args.strict && !all_ok {
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_cases() {
        let ms = |n: u64| Duration::from_millis(n);
        let data: Vec<Duration> = (1..=100).map(ms).collect();
        let cases = [
            ("p50", 0.50, ms(50)),
            ("p99", 0.99, ms(99)),
            ("p100", 1.0, ms(100)),
            ("p0 is the minimum", 0.0, ms(1)),
        ];
        for (name, q, want) in cases {
            assert_eq!(percentile(&data, q), want, "{name}");
        }
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn stored_json_looks_like_a_configmap() {
        let bytes = stored_json("x", 10);
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["kind"], "ConfigMap");
        assert_eq!(value["data"]["value"], "v".repeat(10));
        assert_eq!(value["metadata"]["namespace"], NAMESPACE);
    }
}
