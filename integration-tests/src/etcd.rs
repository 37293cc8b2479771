//! A single-member etcd on loopback ports with a throwaway data directory.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::process::{self, ManagedChild, STOP_GRACE};

/// How long a fresh etcd may take to answer `/health` (it needs ~0.1 s with
/// the short election timeout).
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Attempts when another process grabbed one of the chosen ports.
const START_ATTEMPTS: usize = 3;

#[derive(Debug)]
pub struct Etcd {
    child: ManagedChild,
    client_port: u16,
    /// Plain-HTTP port serving `/health` (and `/metrics`), also under TLS.
    health_port: u16,
    tls: bool,
    data_dir: PathBuf,
}

/// A cluster of etcd members on loopback (plain HTTP), for tests of a
/// control plane that loses a member and keeps serving.
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<Member>,
}

#[derive(Debug)]
struct Member {
    name: String,
    child: Option<ManagedChild>,
    args: Vec<String>,
    client_port: u16,
    health_port: u16,
    log: PathBuf,
}

impl Member {
    fn spawn(&mut self, bin: &Path) -> Result<()> {
        let mut cmd = Command::new(bin);
        cmd.args(&self.args);
        self.child = Some(ManagedChild::spawn(&self.name, cmd, &self.log)?);
        Ok(())
    }

    async fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.health_port));
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                c.ensure_running()?;
            }
            if let Ok((200, body)) = http_get(addr, "/health").await
                && body.contains("\"health\":\"true\"")
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "etcd member {} not healthy after {timeout:?}; log tail:\n{}",
            self.name,
            process::tail(&self.log, 30)
        )
    }
}

impl EtcdCluster {
    /// Starts `n` members together (they elect a leader among themselves)
    /// and waits until every one is healthy.
    pub async fn start(dir: &Path, n: usize) -> Result<Self> {
        let mut last_err = None;
        for attempt in 0..START_ATTEMPTS {
            match Self::start_once(&dir.join(format!("attempt-{attempt}")), n).await {
                Ok(c) => return Ok(c),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.expect("at least one attempt"))
    }

    /// One try: a port another process takes meanwhile fails it.
    async fn start_once(dir: &Path, n: usize) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let bin = process::find_on_path("etcd").context("etcd is not on PATH")?;
        // Three ports per member, all different (a freed port can come back).
        let mut seen = std::collections::HashSet::new();
        let mut port = || -> Result<u16> {
            loop {
                let p = process::free_port()?;
                if seen.insert(p) {
                    return Ok(p);
                }
            }
        };
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| Ok((port()?, port()?, port()?)))
            .collect::<Result<_>>()?;
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer, _))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect();
        let mut members = Vec::new();
        for (i, (client, peer, health)) in ports.iter().enumerate() {
            let client_url = format!("http://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let args = vec![
                format!("--name=m{i}"),
                format!("--data-dir={}", dir.join(format!("etcd-m{i}")).display()),
                "--logger=zap".into(),
                "--log-level=warn".into(),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster={}", initial.join(",")),
                "--initial-cluster-token=integration".into(),
                "--heartbeat-interval=50".into(),
                "--election-timeout=500".into(),
                format!("--listen-metrics-urls=http://127.0.0.1:{health}"),
            ];
            let mut m = Member {
                name: format!("etcd-m{i}"),
                child: None,
                args,
                client_port: *client,
                health_port: *health,
                log: dir.join(format!("etcd-m{i}.log")),
            };
            m.spawn(&bin)?;
            members.push(m);
        }
        let mut cluster = EtcdCluster { members };
        for m in &mut cluster.members {
            m.wait_healthy(READY_TIMEOUT).await?;
        }
        Ok(cluster)
    }

    /// Every member's client URL, comma separated (`--etcd-servers`).
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kills member `i` at once (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            c.kill();
        }
    }

    /// Starts member `i` again on its data and waits until it is healthy.
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        let bin = process::find_on_path("etcd").context("etcd is not on PATH")?;
        self.members[i].spawn(&bin)?;
        self.members[i].wait_healthy(READY_TIMEOUT).await
    }

    /// Stops every member (SIGTERM, then SIGKILL after a grace period).
    pub fn stop(&mut self) {
        for m in &mut self.members {
            if let Some(mut c) = m.child.take() {
                c.stop(STOP_GRACE);
            }
        }
    }

    /// Starts every stopped member on its data, then waits until all are
    /// healthy (none is before a quorum is back).
    pub async fn start_all(&mut self) -> Result<()> {
        let bin = process::find_on_path("etcd").context("etcd is not on PATH")?;
        for m in &mut self.members {
            if m.child.is_none() {
                m.spawn(&bin)?;
            }
        }
        for m in &mut self.members {
            m.wait_healthy(READY_TIMEOUT).await?;
        }
        Ok(())
    }

    /// The last `lines` lines of each member's log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.members
            .iter()
            .map(|m| format!("{}:\n{}", m.name, process::tail(&m.log, lines)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Files that make etcd serve TLS and require client certificates.
#[derive(Debug, Clone)]
pub struct EtcdTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Etcd {
    /// Starts etcd from `$PATH` with its data and log under `dir`, and waits
    /// until `/health` says true.
    pub async fn start(dir: &Path) -> Result<Self> {
        Self::start_with(dir, None).await
    }

    /// Like [`Etcd::start`], serving clients over TLS with client
    /// certificates when `tls` is given.
    pub async fn start_with(dir: &Path, tls: Option<&EtcdTls>) -> Result<Self> {
        let bin = process::find_on_path("etcd").context(
            "etcd is not on PATH: install it with `apt-get install -y etcd-server` \
             (the integration tests start a real etcd)",
        )?;
        let mut last_err = None;
        for attempt in 0..START_ATTEMPTS {
            match Self::start_once(&bin, dir, attempt, tls).await {
                Ok(etcd) => return Ok(etcd),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.expect("at least one attempt"))
    }

    async fn start_once(
        bin: &Path,
        dir: &Path,
        attempt: usize,
        tls: Option<&EtcdTls>,
    ) -> Result<Self> {
        let client_port = process::free_port()?;
        let peer_port = process::free_port()?;
        let health_port = process::free_port()?;
        let data_dir = dir.join(format!("etcd-data-{attempt}"));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let client_url = format!("{scheme}://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut cmd = Command::new(bin);
        cmd.arg("--name=n0")
            .arg(format!("--data-dir={}", data_dir.display()))
            .arg("--logger=zap")
            .arg("--log-level=warn")
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=n0={peer_url}"))
            .arg("--heartbeat-interval=10")
            .arg("--election-timeout=100")
            // Tests compact by hand; keep etcd from doing it behind their back.
            .arg("--auto-compaction-retention=0")
            .arg(format!(
                "--listen-metrics-urls=http://127.0.0.1:{health_port}"
            ));
        if let Some(tls) = tls {
            cmd.arg(format!("--cert-file={}", tls.cert.display()))
                .arg(format!("--key-file={}", tls.key.display()))
                .arg(format!("--trusted-ca-file={}", tls.ca.display()))
                .arg("--client-cert-auth");
        }
        let child = ManagedChild::spawn("etcd", cmd, &dir.join("etcd.log"))?;
        let mut etcd = Self {
            child,
            client_port,
            health_port,
            tls: tls.is_some(),
            data_dir,
        };
        etcd.wait_healthy(READY_TIMEOUT).await?;
        Ok(etcd)
    }

    async fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.health_port));
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            self.child.ensure_running()?;
            match http_get(addr, "/health").await {
                Ok((200, body)) if body.contains("\"health\":\"true\"") => return Ok(()),
                Ok((code, body)) => last = format!("HTTP {code}: {body}"),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!(
            "etcd on {addr} not healthy after {timeout:?} ({last}); log tail:\n{}",
            process::tail(self.child.log_path(), 30)
        )
    }

    /// `http(s)://127.0.0.1:PORT`, the value for `--etcd-servers`.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    /// `http://127.0.0.1:PORT/metrics`: etcd's Prometheus metrics, plain HTTP
    /// even when clients are served over TLS.
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.health_port)
    }

    /// The text of etcd's `/metrics`.
    pub async fn metrics(&self) -> Result<String> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.health_port));
        match http_get(addr, "/metrics").await? {
            (200, body) => Ok(body),
            (code, body) => bail!("etcd /metrics answered HTTP {code}: {body}"),
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn log_path(&self) -> &Path {
        self.child.log_path()
    }

    /// A fresh etcd v3 client.
    pub async fn client(&self) -> Result<etcd_client::Client> {
        let connect = etcd_client::Client::connect([self.endpoint()], None);
        tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .context("connecting to etcd timed out")?
            .context("connecting to etcd")
    }

    pub fn stop(&mut self) {
        self.child.stop(STOP_GRACE);
    }
}

/// A minimal HTTP/1.0 GET on loopback, enough for etcd's `/health` without
/// pulling in an HTTP client.
async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        anyhow::Ok(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .context("HTTP GET timed out")??;
    parse_response(&response)
}

fn parse_response(response: &str) -> Result<(u16, String)> {
    let code = response
        .lines()
        .next()
        .and_then(|status| status.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("malformed HTTP response: {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_response_cases() {
        let cases = [
            (
                "healthy",
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n{\"health\":\"true\"}",
                Some((200, "{\"health\":\"true\"}")),
            ),
            (
                "no body",
                "HTTP/1.1 503 Service Unavailable\r\n\r\n",
                Some((503, "")),
            ),
            ("garbage", "hello", None),
        ];
        for (name, input, want) in cases {
            let got = parse_response(input).ok();
            let got = got.as_ref().map(|(c, b)| (*c, b.as_str()));
            assert_eq!(got, want, "{name}");
        }
    }
}
