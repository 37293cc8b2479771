//! kube-proxy-bench: rule syncs for many Services, and the network
//! programming latency through the real apiserver and etcd. Everything
//! runs in network namespaces made here and on loopback.
//!
//! 1. Rules: 1,000 Services × 10 endpoints rendered and applied with the
//!    real nft / iptables-restore in a fresh namespace: one full sync,
//!    then incremental syncs of one endpoint change each. Reference, in
//!    the same namespace: nft (or iptables-restore) loading the same full
//!    ruleset unchanged, and a transaction that changes one element.
//! 2. Network programming latency: the real kube-proxy (in a namespace,
//!    reaching the apiserver over a loopback relay) follows the Services;
//!    an EndpointSlice is changed through the API and the time until its
//!    rule is in the kernel is measured. Reference: the time until a plain
//!    watch of EndpointSlices sees the same change.
//!
//! `KUBE_APISERVER_BIN=target/release/kube-apiserver KUBE_PROXY_BIN=target/release/kube-proxy target/release/kube-proxy-bench`

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use integration_tests::Cluster;
use integration_tests::netns::Relay;
use integration_tests::process::{ManagedChild, locate_binary, rss_kib};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube_proxy::proxier::{Config, Mode, NodePortAddresses, Proxier};
use kube_proxy::state::{self, ServicePort};
use serde_json::json;
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TARGET_INCREMENTAL_MS: f64 = 50.0;
/// Upstream's SLO for in-cluster network programming latency (p99, 5,000 nodes).
const UPSTREAM_SLO_SECS: f64 = 2.0;

#[derive(Debug, Parser)]
#[command(about = "Benchmark kube-proxy rule syncs and network programming latency")]
struct Args {
    #[arg(long, default_value_t = 1000)]
    services: usize,
    #[arg(long, default_value_t = 10)]
    endpoints: usize,
    /// Incremental changes measured (rules) and EndpointSlice changes (latency).
    #[arg(long, default_value_t = 30)]
    changes: usize,
    /// kube-proxy's --min-sync-period in the latency part.
    #[arg(long, default_value = "0s")]
    min_sync_period: String,
    /// Skip the latency part (no apiserver needed).
    #[arg(long)]
    rules_only: bool,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn summary(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

fn service(i: usize) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"namespace": "default", "name": format!("svc-{i}")},
        "spec": {"clusterIP": format!("10.96.{}.{}", 1 + i / 250, 1 + i % 250), "type": "NodePort",
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30000 + i}]}
    }))
    .expect("a service")
}

fn slice(i: usize, endpoints: usize, first: &str) -> EndpointSlice {
    let eps: Vec<_> = (0..endpoints)
        .map(|e| {
            let ip = if e == 0 {
                first.to_string()
            } else {
                format!("10.{}.{}.{}", 100 + e, i / 250, 1 + i % 250)
            };
            json!({"addresses": [ip], "conditions": {"ready": true}, "nodeName": "bench"})
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"namespace": "default", "name": format!("svc-{i}-a"),
                     "labels": {"kubernetes.io/service-name": format!("svc-{i}")},
                     "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": jiff::Timestamp::now().to_string()}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": eps
    }))
    .expect("a slice")
}

fn first_ip(i: usize, version: usize) -> String {
    format!("10.{}.{}.{}", 200 + version % 50, i / 250, 1 + i % 250)
}

fn objects(n: usize, endpoints: usize) -> (Vec<Arc<Service>>, Vec<Arc<EndpointSlice>>) {
    let services = (0..n).map(|i| Arc::new(service(i))).collect();
    let slices = (0..n)
        .map(|i| Arc::new(slice(i, endpoints, &first_ip(i, 0))))
        .collect();
    (services, slices)
}

/// A namespace made for the benchmark, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Result<Netns> {
        let name = format!("kp-bench-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()?
            .success();
        if !ok {
            bail!("ip netns add {name} failed");
        }
        let netns = Netns(name);
        let ok = Command::new("ip")
            .args(["-n", &netns.0, "link", "set", "lo", "up"])
            .status()?
            .success();
        if !ok {
            bail!("bringing up lo in {} failed", netns.0);
        }
        Ok(netns)
    }
    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

/// Runs `f` on a thread inside `netns` with a runtime of its own: the
/// rule tools it starts inherit that thread's namespace.
fn in_netns<T: Send + 'static>(
    netns: &Netns,
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>>>> + Send + 'static,
) -> Result<T> {
    let path = netns.path();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path)?;
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(f())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the benchmark thread panicked"))?
}

struct RuleFigures {
    full_ms: f64,
    full_reference_ms: f64,
    incremental: (f64, f64),
    incremental_reference: (f64, f64),
}

async fn timed(
    f: impl std::future::Future<Output = Result<(), kube_proxy::proxier::Error>>,
) -> Result<f64> {
    let t = Instant::now();
    f.await?;
    Ok(t.elapsed().as_secs_f64() * 1000.0)
}

async fn rules(mode: Mode, n: usize, endpoints: usize, changes: usize) -> Result<RuleFigures> {
    let cfg = Config {
        cluster_cidr: Some("10.244.0.0/16".parse()?),
        nodeport_addresses: NodePortAddresses::All,
        ..Config::default()
    };
    let (services, mut slices) = objects(n, endpoints);
    let ports = state::build(&services, &slices, "bench");
    let mut proxier = Proxier::new(mode, cfg.clone());
    let full_ms = timed(async { proxier.sync(&ports).await.map(|_| ()) }).await?;
    let mut incremental = Vec::new();
    let mut last: Vec<ServicePort> = ports;
    for c in 0..changes {
        let i = (c * 37) % n;
        let mut s = (*slices[i]).clone();
        s.endpoints[0].addresses = vec![first_ip(i, c + 1)];
        slices[i] = Arc::new(s);
        let t = Instant::now();
        last = state::build(&services, &slices, "bench");
        proxier.sync(&last).await?;
        incremental.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // Where an incremental sync's time goes besides the tool: reading
    // every object into Service ports (each sync) and rendering them all
    // (a full sync; an incremental one renders only the changed ports).
    let t = Instant::now();
    let again = state::build(&services, &slices, "bench");
    let build_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    match mode {
        Mode::Nftables => drop(kube_proxy::proxier::nftables::render(&cfg, &again)),
        Mode::Iptables => drop(kube_proxy::proxier::iptables::render(&cfg, &again)),
    }
    println!(
        "  ({mode:?}: reading the objects {build_ms:.1} ms, rendering every port {:.1} ms)",
        t.elapsed().as_secs_f64() * 1000.0
    );
    // References: the tool alone, loading the same full ruleset again, and
    // a transaction that changes a single element.
    let (full_reference_ms, mut one) = match mode {
        Mode::Nftables => {
            let r = kube_proxy::proxier::nftables::render(&cfg, &last);
            let script = kube_proxy::proxier::nftables::script(&cfg, None, &r);
            let full = timed(async {
                kube_proxy::proxier::run("nft", &["-f", "-"], Some(&script))
                    .await
                    .map(|_| ())
            })
            .await?;
            kube_proxy::proxier::run(
                "nft",
                &["add table ip bench-ref; add set ip bench-ref s { type ipv4_addr; }"],
                None,
            )
            .await?;
            let mut one = Vec::new();
            for c in 0..changes {
                let cmd = format!(
                    "add element ip bench-ref s {{ 10.0.{}.{} }}",
                    c / 250,
                    c % 250 + 1
                );
                one.push(
                    timed(async {
                        kube_proxy::proxier::run("nft", &["-f", "-"], Some(&cmd))
                            .await
                            .map(|_| ())
                    })
                    .await?,
                );
            }
            (full, one)
        }
        Mode::Iptables => {
            let r = kube_proxy::proxier::iptables::render(&cfg, &last);
            let input = kube_proxy::proxier::iptables::restore_input(None, &r, &[], &[]);
            let args = ["-w", "5", "--noflush"];
            let full = timed(async {
                kube_proxy::proxier::run("iptables-restore", &args, Some(&input))
                    .await
                    .map(|_| ())
            })
            .await?;
            let mut one = Vec::new();
            for c in 0..changes {
                let input = format!(
                    "*filter\n:BENCH-REF - [0:0]\n-A BENCH-REF -s 10.0.{}.{}/32 -j RETURN\nCOMMIT\n",
                    c / 250,
                    c % 250 + 1
                );
                one.push(
                    timed(async {
                        kube_proxy::proxier::run("iptables-restore", &args, Some(&input))
                            .await
                            .map(|_| ())
                    })
                    .await?,
                );
            }
            (full, one)
        }
    };
    one.sort_by(|a, b| a.total_cmp(b));
    Ok(RuleFigures {
        full_ms,
        full_reference_ms,
        incremental: summary(incremental),
        incremental_reference: summary(one),
    })
}

async fn latency(args: &Args) -> Result<()> {
    let cluster = Cluster::builder()
        .apiserver_arg("--service-cluster-ip-range=10.96.0.0/16")
        .apiserver_arg("--service-node-port-range=30000-32767")
        .start()
        .await?;
    let client = cluster.client().await;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let t = Instant::now();
    futures::stream::iter(0..args.services)
        .map(|i| {
            let (services, slices) = (services.clone(), slices.clone());
            let endpoints = args.endpoints;
            async move {
                services.create(&PostParams::default(), &service(i)).await?;
                slices
                    .create(
                        &PostParams::default(),
                        &slice(i, endpoints, &first_ip(i, 0)),
                    )
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    println!(
        "created {} Services and EndpointSlices in {:.1} s",
        args.services,
        t.elapsed().as_secs_f64()
    );

    let netns = Netns::new("latency")?;
    let port: u16 = cluster
        .apiserver_url()
        .rsplit(':')
        .next()
        .context("port")?
        .parse()?;
    let _relay = Relay::start(&netns.path(), port)?;
    let bin = locate_binary("kube-proxy", "KUBE_PROXY_BIN")?;
    let mut command = Command::new("nsenter");
    command
        .arg(format!("--net={}", netns.path()))
        .arg(bin)
        .arg(format!(
            "--kubeconfig={}",
            cluster.kubeconfig_path().display()
        ))
        .args([
            "--hostname-override=bench",
            "--cluster-cidr=10.244.0.0/16",
            "--nodeport-addresses=0.0.0.0/0",
            "--healthz-bind-address=127.0.0.1:10256",
            "--metrics-bind-address=127.0.0.1:10249",
        ])
        .arg(format!("--min-sync-period={}", args.min_sync_period))
        .env("RUST_LOG", "warn");
    let log = cluster.dir().join("kube-proxy.log");
    let mut proxy = ManagedChild::spawn("kube-proxy", command, &log)?;
    let list = |chain: &str| {
        Command::new("nsenter")
            .arg(format!("--net={}", netns.path()))
            .args(["nft", "list", "chain", "ip", "kube-proxy", chain])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let chain_of = |i: usize| {
        kube_proxy::proxier::nftables::service_chain(&format!("default/svc-{i}/tcp/http"))
    };
    let t = Instant::now();
    while !list(&chain_of(args.services - 1)).contains("numgen") {
        proxy.ensure_running()?;
        if t.elapsed() > Duration::from_secs(120) {
            bail!(
                "kube-proxy did not program the Services in 120 s:\n{}",
                integration_tests::process::tail(&log, 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "first sync of every Service live after {:.2} s",
        t.elapsed().as_secs_f64()
    );

    // The reference watcher, started before the changes.
    let rv = slices
        .list_metadata(&Default::default())
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let mut watch = slices.watch(&WatchParams::default(), &rv).await?.boxed();
    let mut programmed = Vec::new();
    let mut watched = Vec::new();
    for c in 0..args.changes {
        let i = (c * 37) % args.services;
        let ip = first_ip(i, c + 1);
        let patch = json!({
            "metadata": {"annotations": {"endpoints.kubernetes.io/last-change-trigger-time": jiff::Timestamp::now().to_string()}},
            "endpoints": slice(i, args.endpoints, &ip).endpoints,
        });
        let chain = chain_of(i);
        let t0 = Instant::now();
        slices
            .patch(
                &format!("svc-{i}-a"),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        // The watcher's event first (it is only a read), then the rules.
        loop {
            match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
                Ok(Some(Ok(WatchEvent::Modified(s))))
                    if s.metadata.name.as_deref() == Some(&format!("svc-{i}-a")) =>
                {
                    watched.push(t0.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                Ok(Some(Ok(_))) => continue,
                other => bail!("the reference watch ended: {other:?}"),
            }
        }
        while !list(&chain).contains(&ip) {
            proxy.ensure_running()?;
            if t0.elapsed() > Duration::from_secs(30) {
                bail!("change {c} not programmed in 30 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        programmed.push(t0.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss = proxy.pid().map(rss_kib).transpose()?.unwrap_or(0);
    let (p50, p99) = summary(programmed);
    let (w50, w99) = summary(watched);
    println!(
        "\nnetwork programming latency ({} EndpointSlice changes, --min-sync-period={}):",
        args.changes, args.min_sync_period
    );
    println!("  kube-proxy (API write -> rule in the kernel): p50 {p50:.1} ms, p99 {p99:.1} ms");
    println!("  reference (API write -> watch event):        p50 {w50:.1} ms, p99 {w99:.1} ms");
    println!(
        "  ratio p99: {:.1}x the watch; upstream SLO p99 <= {UPSTREAM_SLO_SECS} s: {}",
        p99 / w99,
        if p99 / 1000.0 <= UPSTREAM_SLO_SECS {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  kube-proxy RSS with {} Services x {} endpoints: {:.1} MiB",
        args.services,
        args.endpoints,
        rss as f64 / 1024.0
    );
    proxy.stop(Duration::from_secs(5));
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    println!(
        "kube-proxy-bench: {} Services x {} endpoints, {} changes",
        args.services, args.endpoints, args.changes
    );
    for mode in [Mode::Nftables, Mode::Iptables] {
        let netns = Netns::new("rules")?;
        let (n, e, c) = (args.services, args.endpoints, args.changes);
        let f = in_netns(&netns, move || Box::pin(rules(mode, n, e, c)))?;
        println!("\n{mode:?} rules:");
        println!(
            "  full sync: {:.1} ms (reference: the tool loading the same ruleset: {:.1} ms, ratio {:.2})",
            f.full_ms,
            f.full_reference_ms,
            f.full_ms / f.full_reference_ms
        );
        println!(
            "  incremental sync (one endpoint changed): p50 {:.1} ms, p99 {:.1} ms (reference: a one-element transaction p50 {:.1} ms, p99 {:.1} ms; ratio p99 {:.2})",
            f.incremental.0,
            f.incremental.1,
            f.incremental_reference.0,
            f.incremental_reference.1,
            f.incremental.1 / f.incremental_reference.1
        );
        if mode == Mode::Nftables {
            println!(
                "  target: one incremental sync <= {TARGET_INCREMENTAL_MS} ms with {} Services: {}",
                args.services,
                if f.incremental.1 <= TARGET_INCREMENTAL_MS {
                    "met"
                } else {
                    "NOT met"
                }
            );
        }
    }
    if !args.rules_only {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        rt.block_on(latency(&args))?;
    }
    Ok(())
}
