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
