//! Running the real kubectl against a test cluster, always with a timeout.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// kubectl is preinstalled on the project's machines; `KUBECTL_BIN` overrides it.
pub const DEFAULT_KUBECTL: &str = "/usr/bin/kubectl";

/// Upper bound for one kubectl invocation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    home: PathBuf,
    timeout: Duration,
    env: Vec<(String, String)>,
}

impl Kubectl {
    /// `home` becomes `$HOME`, so kubectl's discovery and OpenAPI caches stay
    /// inside the test's directory and never leak between clusters.
    pub fn new(kubeconfig: &Path, home: &Path) -> Self {
        let bin = std::env::var_os("KUBECTL_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_KUBECTL));
        Self {
            bin,
            kubeconfig: kubeconfig.to_path_buf(),
            home: home.to_path_buf(),
            timeout: DEFAULT_TIMEOUT,
            env: Vec::new(),
        }
    }

    /// The same kubectl with `key=value` in its environment (e.g.
    /// `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false` to force SPDY).
    pub fn with_env(&self, key: &str, value: &str) -> Self {
        let mut k = self.clone();
        k.env.push((key.into(), value.into()));
        k
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(args)
            .env("HOME", &self.home)
            .env_remove("KUBECONFIG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs a script a README tells users to run (e.g. an example's
    /// `deploy.sh`) with this kubectl as `$KUBECTL` and its cluster as
    /// `$KUBECONFIG`, to completion within the timeout.
    pub async fn script(&self, path: &Path) -> Output {
        let mut cmd = Command::new(path);
        cmd.env("KUBECTL", &self.bin)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => panic!("waiting for {}: {e}", path.display()),
            Err(_) => panic!(
                "{} did not finish within {:?}",
                path.display(),
                self.timeout
            ),
        }
    }

    /// Runs kubectl to completion. Panics (failing the test) if it cannot be
    /// started or does not finish within the timeout.
    pub async fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None).await
    }

    /// Runs kubectl with `stdin` as its standard input (for `-f -`).
    pub async fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        self.run_with_stdin(args, Some(stdin)).await
    }

    async fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} {args:?}: {e}", self.bin.display()));
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            pipe.write_all(input.as_bytes())
                .await
                .unwrap_or_else(|e| panic!("writing stdin of kubectl {args:?}: {e}"));
            drop(pipe);
        }
        match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => panic!("waiting for kubectl {args:?}: {e}"),
            Err(_) => panic!("kubectl {args:?} did not finish within {:?}", self.timeout),
        }
    }

    /// Starts kubectl in the background (`get -w`, `wait`), collecting its output.
    pub fn spawn(&self, args: &[&str]) -> Background {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} {args:?}: {e}", self.bin.display()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().expect("piped"), stdout.clone()),
            collect(child.stderr.take().expect("piped"), stderr.clone()),
        ];
        Background {
            args: args.iter().map(|a| a.to_string()).collect(),
            child,
            stdout,
            stderr,
            readers,
        }
    }
}

fn collect(
    mut pipe: impl AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<String>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            into.lock()
                .expect("output buffer")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
}

/// A kubectl process running in the background; killed when dropped.
#[derive(Debug)]
pub struct Background {
    args: Vec<String>,
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Background {
    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("stdout buffer").clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// Waits until the stdout seen so far satisfies `done`. On timeout returns
    /// an error carrying everything the process printed.
    pub async fn wait_for_stdout(
        &self,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.stdout();
            if done(&out) {
                return Ok(out);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "kubectl {:?}: condition not met within {timeout:?}\nstdout:\n{out}\nstderr:\n{}",
                    self.args,
                    self.stderr()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to exit by itself. Panics after `timeout`.
    pub async fn wait(mut self, timeout: Duration) -> Output {
        let status = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.expect("waiting for kubectl"),
            Err(_) => panic!(
                "kubectl {:?} did not exit within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                self.args,
                self.stdout(),
                self.stderr()
            ),
        };
        self.finish(status).await
    }

    /// Kills the process and returns what it printed.
    pub async fn stop(mut self) -> Output {
        let _ = self.child.start_kill();
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("killed kubectl did not exit")
            .expect("waiting for kubectl");
        self.finish(status).await
    }

    async fn finish(&mut self, status: ExitStatus) -> Output {
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
        Output {
            status,
            stdout: self.stdout().into_bytes(),
            stderr: self.stderr().into_bytes(),
        }
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts kubectl succeeded and returns its stdout.
#[track_caller]
pub fn expect_success(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what}: kubectl failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

/// Asserts kubectl failed and returns its stderr.
#[track_caller]
pub fn expect_failure(output: &Output, what: &str) -> String {
    assert!(
        !output.status.success(),
        "{what}: kubectl unexpectedly succeeded\nstdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
    stderr(output)
}

/// Splits a kubectl table into rows of whitespace-separated cells (header
/// first). Cells that contain spaces, like `NOMINATED NODE`, come out split.
pub fn table_rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

/// The row of a kubectl table whose first cell is `name`.
pub fn table_row(table: &str, name: &str) -> Option<Vec<String>> {
    table_rows(table)
        .into_iter()
        .find(|row| row.first().map(String::as_str) == Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_helpers() {
        let table = "NAME   READY   UP-TO-DATE   AVAILABLE   AGE\nweb    0/2     0            0           5s\n\n";
        let cases = [
            (
                "header",
                table_rows(table)[0].join(" "),
                "NAME READY UP-TO-DATE AVAILABLE AGE",
            ),
            (
                "row",
                table_row(table, "web").unwrap().join(" "),
                "web 0/2 0 0 5s",
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "{name}");
        }
        assert!(table_row(table, "db").is_none());
    }
}
