//! A control-plane daemon under test (kube-scheduler,
//! kube-controller-manager), pointed at a cluster's apiserver with its
//! admin kubeconfig, serving its health and metrics over HTTPS on a free
//! loopback port.

use crate::Cluster;
use crate::process::{ManagedChild, STOP_GRACE, free_port, locate_binary};
use anyhow::{Result, bail};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Daemon {
    child: ManagedChild,
    pub port: u16,
}

/// kube-scheduler (binary from `KUBE_SCHEDULER_BIN` or the build).
pub struct Scheduler;

impl Scheduler {
    pub async fn start(cluster: &Cluster, extra: &[&str]) -> Result<Daemon> {
        Daemon::start(cluster, "kube-scheduler", "KUBE_SCHEDULER_BIN", extra).await
    }
}

/// kube-controller-manager (binary from `KUBE_CONTROLLER_MANAGER_BIN` or the build).
pub struct ControllerManager;

impl ControllerManager {
    pub async fn start(cluster: &Cluster, extra: &[&str]) -> Result<Daemon> {
        Daemon::start(
            cluster,
            "kube-controller-manager",
            "KUBE_CONTROLLER_MANAGER_BIN",
            extra,
        )
        .await
    }
}

impl Daemon {
    /// Starts binary `name` with the cluster's admin kubeconfig and
    /// `extra` flags, and waits for its /readyz (caches synced).
    pub async fn start(
        cluster: &Cluster,
        name: &str,
        bin_env: &str,
        extra: &[&str],
    ) -> Result<Self> {
        let bin = locate_binary(name, bin_env)?;
        let port = free_port()?;
        let mut command = Command::new(bin);
        command
            .arg(format!(
                "--kubeconfig={}",
                cluster.kubeconfig_path().display()
            ))
            .arg(format!("--secure-port={port}"))
            .arg("--bind-address=127.0.0.1")
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("DAEMON_RUST_LOG").unwrap_or("info".into()),
            );
        let log = cluster.dir().join(format!("{name}-{port}.log"));
        let mut child = ManagedChild::spawn(name, command, &log)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            child.ensure_running()?;
            if get(port, "/readyz").await.is_ok() {
                return Ok(Daemon { child, port });
            }
            if Instant::now() > deadline {
                bail!(
                    "{name} not ready within 30s:\n{}",
                    crate::process::tail(&log, 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of its /metrics.
    pub async fn metrics(&self) -> Result<String> {
        get(self.port, "/metrics").await
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    /// Ends it abruptly (SIGKILL), as a crash would: nothing is released.
    pub fn kill(&mut self) {
        if let Some(pid) = self.child.pid() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        self.child.stop(Duration::from_secs(1));
    }

    pub fn log_tail(&self, lines: usize) -> String {
        crate::process::tail(self.child.log_path(), lines)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.child.stop(STOP_GRACE);
    }
}

/// GET over HTTPS with curl: the daemon's certificate is self-signed,
/// made at its start (loopback only).
async fn get(port: u16, path: &str) -> Result<String> {
    let out = tokio::process::Command::new("curl")
        .args(["-sk", "--max-time", "5", "-w", "\n%{http_code}"])
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .await?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "000"));
    if code != "200" {
        bail!("GET {path}: HTTP {code}: {body}");
    }
    Ok(body.to_string())
}
