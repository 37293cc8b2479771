//! cluster-dns-bench: the DNS server's throughput and latency on loopback.
//!
//! It starts two child processes of itself: a cluster-dns server (the real
//! handler and UDP loop) with a zone of `--services` Services, forwarding
//! to the second, a trivial UDP echo responder. Then it sends queries over
//! `--concurrency` sockets, each waiting for its answer before the next, in
//! three phases: a cluster name answered by the server, a name the server
//! forwards to the echo responder, and the echo responder alone as the
//! floor of what loopback UDP costs on this machine. Each phase stops after
//! `--queries` answers or `--seconds`, whichever comes first.
//!
//! The client runs on one thread, so on a small machine the server gets
//! the other cores.

use anyhow::{Context, Result, bail};
use clap::Parser;
use cluster_dns::fixtures::{ServiceFixture, SliceFixture, headless, service, slice};
use cluster_dns::forward::Forwarder;
use cluster_dns::handler::Handler;
use cluster_dns::metrics::Metrics;
use cluster_dns::records::{Index, Records};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

#[derive(Parser)]
#[command(
    name = "cluster-dns-bench",
    about = "cluster-dns on loopback: queries/s, latency, RSS"
)]
struct Options {
    /// Services in the zone.
    #[arg(long, default_value_t = 1000)]
    services: usize,
    /// Answers per phase at most.
    #[arg(long, default_value_t = 200_000)]
    queries: u64,
    /// Sockets sending at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds per phase at most.
    #[arg(long, default_value_t = 6)]
    seconds: u64,
    /// Internal: run as the server or the echo child.
    #[arg(long, hide = true)]
    role: Option<String>,
    /// Internal: the server child's upstream.
    #[arg(long, hide = true)]
    upstream: Option<SocketAddr>,
}

fn main() -> Result<()> {
    let opts = Options::parse();
    match opts.role.as_deref() {
        Some("server") => multi_thread()?.block_on(serve(opts.services, opts.upstream)),
        Some("echo") => multi_thread()?.block_on(echo()),
        Some(other) => bail!("unknown role {other}"),
        None => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(bench(&opts)),
    }
}

fn multi_thread() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The server child: the zone of `services` Services (and one headless
/// Service with 10 endpoints), on a loopback port it prints.
async fn serve(services: usize, upstream: Option<SocketAddr>) -> Result<()> {
    let zone = Name::from_ascii("cluster.local.")?;
    let mut objects: Vec<_> = (0..services)
        .map(|i| {
            let ip = format!("10.96.{}.{}", i / 250, i % 250 + 1);
            service("bench", &format!("svc-{i}"), &ip).port("http", 80, "TCP")
        })
        .collect();
    objects.push(headless("bench", "db"));
    let mut endpoints = slice("bench", "db", "db-1").port("pg", 5432);
    for i in 0..10 {
        endpoints =
            endpoints.endpoint(&format!("10.1.0.{i}"), Some(true), Some(&format!("db-{i}")));
    }
    let started = Instant::now();
    let index = Index::build(&zone, 5, 1, &objects, &[endpoints]);
    let build = started.elapsed();
    let records = Arc::new(Records::default());
    records.set(index);
    let metrics = Arc::new(Metrics::new());
    let upstreams = upstream.into_iter().collect();
    let forwarder = Forwarder::new(upstreams, Duration::from_secs(2), metrics.clone());
    let (udp, tcp) = cluster_dns::server::bind("127.0.0.1:0".parse()?).await?;
    let addr = udp.local_addr()?;
    let handler = Arc::new(Handler::new(zone, addr, records, forwarder, metrics));
    println!("{addr} {}", build.as_micros());
    cluster_dns::server::serve(handler, udp, tcp, std::future::pending()).await;
    Ok(())
}

/// The echo child: every datagram back with the QR bit set.
async fn echo() -> Result<()> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    println!("{} 0", socket.local_addr()?);
    let mut buf = vec![0; 65535];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await?;
        if n >= 12 {
            buf[2] |= 0x80;
            let _ = socket.send_to(&buf[..n], from).await;
        }
    }
}

/// A child process of this binary in `role`, and the address (and zone
/// build time in µs) it printed.
struct ChildServer {
    child: Child,
    addr: SocketAddr,
    build_micros: u64,
}

impl ChildServer {
    fn spawn(role: &str, extra: &[String]) -> Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg(format!("--role={role}"))
            .args(extra)
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning the {role} child"))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        let mut words = line.split_whitespace();
        let addr = words
            .next()
            .with_context(|| format!("the {role} child printed no address"))?
            .parse()?;
        let build_micros = words.next().unwrap_or("0").parse()?;
        Ok(ChildServer {
            child,
            addr,
            build_micros,
        })
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()));
        status
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Outcome {
    answered: u64,
    lost: u64,
    elapsed: Duration,
    /// Round trips in µs, sorted.
    latencies: Vec<u32>,
}

impl Outcome {
    fn qps(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(i).copied().unwrap_or(0) as f64
    }
}

/// `names` asked of `to` in turn over `concurrency` sockets until
/// `queries` answers or `limit` elapsed.
async fn load(to: SocketAddr, names: &[Name], opts: &Options) -> Result<Outcome> {
    let queries: Arc<Vec<Vec<u8>>> = Arc::new(
        names
            .iter()
            .map(|n| {
                let mut m = Message::new();
                m.set_recursion_desired(true)
                    .add_query(Query::query(n.clone(), RecordType::A));
                m.to_vec()
            })
            .collect::<Result<_, _>>()?,
    );
    let sent = Arc::new(AtomicU64::new(0));
    let lost = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(opts.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..opts.concurrency {
        let (queries, sent, lost, total) =
            (queries.clone(), sent.clone(), lost.clone(), opts.queries);
        tasks.spawn(async move {
            let socket = UdpSocket::bind("127.0.0.1:0").await?;
            socket.connect(to).await?;
            let mut latencies = Vec::new();
            let mut buf = vec![0; 4096];
            let mut i = worker;
            while sent.fetch_add(1, Ordering::Relaxed) < total && Instant::now() < deadline {
                let mut q = queries[i % queries.len()].clone();
                i += 1;
                let id = (i as u16).to_be_bytes();
                q[..2].copy_from_slice(&id);
                let asked = Instant::now();
                socket.send(&q).await?;
                let answered = async {
                    loop {
                        let n = socket.recv(&mut buf).await?;
                        if n >= 12 && buf[..2] == id {
                            return Ok::<_, std::io::Error>(());
                        }
                    }
                };
                match tokio::time::timeout(Duration::from_secs(1), answered).await {
                    Ok(r) => {
                        r?;
                        latencies.push(asked.elapsed().as_micros() as u32);
                    }
                    Err(_) => {
                        lost.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Ok::<_, std::io::Error>(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(Outcome {
        answered: latencies.len() as u64,
        lost: lost.load(Ordering::Relaxed),
        elapsed,
        latencies,
    })
}

async fn bench(opts: &Options) -> Result<()> {
    let echo = ChildServer::spawn("echo", &[])?;
    let server = ChildServer::spawn(
        "server",
        &[
            format!("--services={}", opts.services),
            format!("--upstream={}", echo.addr),
        ],
    )?;
    let idle_rss = server.rss_kib();
    println!(
        "cluster-dns-bench: {} services (zone built in {:.1} ms), {} sockets, up to {} queries or {} s per phase",
        opts.services,
        server.build_micros as f64 / 1000.0,
        opts.concurrency,
        opts.queries,
        opts.seconds
    );
    println!("server RSS idle: {} KiB", idle_rss);
    let cluster_names: Vec<Name> = (0..opts.services.max(1))
        .map(|i| Name::from_ascii(format!("svc-{i}.bench.svc.cluster.local.")))
        .collect::<Result<_, _>>()?;
    let external = vec![Name::from_ascii("example.com.")?];
    let phases = [
        ("cluster name", server.addr, &cluster_names, Some(&server)),
        ("forwarded", server.addr, &external, Some(&server)),
        ("echo floor", echo.addr, &external, None),
    ];
    println!(
        "{:<14} {:>9} {:>6} {:>11} {:>9} {:>9} {:>12}",
        "phase", "answers", "lost", "queries/s", "p50 µs", "p99 µs", "server RSS"
    );
    let mut rates = Vec::new();
    for (name, to, names, rss_of) in phases {
        let outcome = load(to, names, opts).await?;
        let rss = rss_of.map_or("-".to_string(), |s| format!("{} KiB", s.rss_kib()));
        println!(
            "{:<14} {:>9} {:>6} {:>11.0} {:>9.0} {:>9.0} {:>12}",
            name,
            outcome.answered,
            outcome.lost,
            outcome.qps(),
            outcome.percentile(0.5),
            outcome.percentile(0.99),
            rss
        );
        rates.push(outcome.qps());
    }
    println!(
        "ratio to the echo floor: cluster name {:.2}, forwarded {:.2}",
        rates[0] / rates[2],
        rates[1] / rates[2]
    );
    Ok(())
}
