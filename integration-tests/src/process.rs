//! Child processes owned by a test: spawned with their output in a log file,
//! stopped with SIGTERM then SIGKILL, never left behind.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a daemon gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// A loopback port that was free a moment ago. The listener is closed before
/// returning, so a daemon started right after can bind it; a collision with
/// another test is possible but rare, and callers retry on early exit.
pub fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Finds `name` in the directories of `$PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A workspace binary: `$env` if set, else the workspace's debug build.
pub fn locate_binary(name: &str, env: &str) -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os(env) {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            anyhow::bail!("{env}={} does not name a file", bin.display());
        }
        return Ok(bin);
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    };
    let bin = target.join("debug").join(name);
    if !bin.is_file() {
        anyhow::bail!(
            "{name} binary not found at {}: run `cargo build --bins` first (or point {env} at a build)",
            bin.display()
        );
    }
    Ok(bin)
}

/// A running daemon whose stdout and stderr are appended to `log`.
#[derive(Debug)]
pub struct ManagedChild {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl ManagedChild {
    /// Spawns `command` with its output appended to `log` (kept across restarts).
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Result<Self> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening log file {}", log.display()))?;
        let err = out.try_clone()?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .with_context(|| format!("spawning {name} ({command:?})"))?;
        Ok(Self {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// `Some(status)` once the process has exited on its own.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Fails with the log tail if the process is gone.
    pub fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.exit_status() {
            bail!(
                "{} exited early with {status}; last log lines:\n{}",
                self.name,
                tail(&self.log, 40)
            );
        }
        Ok(())
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL. Idempotent.
    /// SIGKILL at once, as a crash: the process cleans nothing up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        // std only offers SIGKILL; the `kill` utility sends SIGTERM without unsafe code.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ManagedChild {
    fn drop(&mut self) {
        self.stop(STOP_GRACE);
    }
}

/// The last `lines` lines of a log file (reads at most the last 64 KiB).
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("<no log at {}>", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    let mut buf = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut buf).is_err() {
        return format!("<unreadable log at {}>", path.display());
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Resident set size of a process in KiB, from `/proc/<pid>/status` VmRSS.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    parse_vm_rss(&status).with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// User plus system CPU time of a process in seconds, from `/proc/<pid>/stat`
/// (`/proc` reports clock ticks in USER_HZ, which Linux fixes at 100).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat)
        .map(|ticks| ticks as f64 / 100.0)
        .with_context(|| format!("malformed /proc/{pid}/stat"))
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// CPU seconds used so far by the apiserver, etcd and this process (for the
/// benchmarks' per-phase CPU figures).
pub struct CpuSnapshot {
    pub apiserver: f64,
    pub etcd: f64,
    pub client: f64,
}

impl CpuSnapshot {
    pub fn take(apiserver: u32, etcd: u32) -> Self {
        Self {
            apiserver: cpu_seconds(apiserver).unwrap_or(0.0),
            etcd: cpu_seconds(etcd).unwrap_or(0.0),
            client: cpu_seconds(std::process::id()).unwrap_or(0.0),
        }
    }

    /// The CPU used between this snapshot and now.
    pub fn since(&self, apiserver: u32, etcd: u32) -> Self {
        let now = Self::take(apiserver, etcd);
        Self {
            apiserver: now.apiserver - self.apiserver,
            etcd: now.etcd - self.etcd,
            client: now.client - self.client,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_vm_rss_cases() {
        let cases = [
            (
                "present",
                "Name:\tx\nVmRSS:\t   12345 kB\nVmSwap:\t0 kB\n",
                Some(12345),
            ),
            ("missing", "Name:\tx\n", None),
            ("garbage", "VmRSS:\tlots kB\n", None),
        ];
        for (name, input, want) in cases {
            assert_eq!(parse_vm_rss(input), want, "{name}");
        }
    }

    #[test]
    fn parse_cpu_ticks_cases() {
        let cases = [
            (
                "plain",
                "42 (etcd) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 100 0 0",
                Some(300),
            ),
            (
                "name with spaces and parens",
                "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0 0",
                Some(3),
            ),
            ("truncated", "7 (x) R 1 2", None),
        ];
        for (name, input, want) in cases {
            assert_eq!(parse_cpu_ticks(input), want, "{name}");
        }
    }

    #[test]
    fn tail_cases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "a\nb\nc\n").unwrap();
        let cases = [
            ("fewer", 2, "b\nc"),
            ("more", 10, "a\nb\nc"),
            ("none", 0, ""),
        ];
        for (name, n, want) in cases {
            assert_eq!(tail(&path, n), want, "{name}");
        }
        assert!(tail(&dir.path().join("absent"), 3).starts_with("<no log"));
    }
}
