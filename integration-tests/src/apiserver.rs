//! The `kube-apiserver` binary under test, started with upstream flags.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::pki::PkiFiles;
use crate::process::{self, ManagedChild, STOP_GRACE};

/// Environment variable naming the binary to test (e.g. a release build).
pub const BIN_ENV: &str = "KUBE_APISERVER_BIN";

pub const SERVICE_CLUSTER_IP_RANGE: &str = "10.96.0.0/24";
pub const SERVICE_NODE_PORT_RANGE: &str = "30000-32767";
pub const SERVICE_ACCOUNT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
pub const ETCD_PREFIX: &str = "/registry";

/// Where the binary is: `$KUBE_APISERVER_BIN`, else the workspace's debug build.
pub fn locate_binary() -> Result<PathBuf> {
    process::locate_binary("kube-apiserver", BIN_ENV)
}

/// Everything needed to (re)start the apiserver with the same identity.
#[derive(Debug, Clone)]
pub struct ApiserverConfig {
    pub bin: PathBuf,
    pub port: u16,
    pub etcd_servers: String,
    pub pki: PkiFiles,
    pub cert_dir: PathBuf,
    pub log: PathBuf,
    pub extra_args: Vec<String>,
}

impl ApiserverConfig {
    pub fn args(&self) -> Vec<String> {
        let path = |p: &Path| p.display().to_string();
        let mut args = vec![
            format!("--etcd-servers={}", self.etcd_servers),
            format!("--etcd-prefix={ETCD_PREFIX}"),
            format!("--secure-port={}", self.port),
            "--bind-address=127.0.0.1".to_string(),
            format!("--tls-cert-file={}", path(&self.pki.serving_cert)),
            format!("--tls-private-key-file={}", path(&self.pki.serving_key)),
            format!("--cert-dir={}", path(&self.cert_dir)),
            format!("--client-ca-file={}", path(&self.pki.ca_cert)),
            format!("--token-auth-file={}", path(&self.pki.token_file)),
            format!("--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}"),
            format!(
                "--service-account-signing-key-file={}",
                path(&self.pki.service_account_key)
            ),
            format!("--service-account-issuer={SERVICE_ACCOUNT_ISSUER}"),
            format!("--service-node-port-range={SERVICE_NODE_PORT_RANGE}"),
            // Kubelets (integration_tests::node) serve on loopback with a
            // self-signed certificate; the admin certificate is accepted.
            format!(
                "--kubelet-client-certificate={}",
                path(&self.pki.admin_cert)
            ),
            format!("--kubelet-client-key={}", path(&self.pki.admin_key)),
            "--kubelet-preferred-address-types=InternalIP,Hostname".to_string(),
        ];
        // As upstream's integration framework: clusters without a
        // controller-manager would wait for service accounts and for the
        // not-ready taint to go. Tests of those plugins give their own list.
        if !self
            .extra_args
            .iter()
            .any(|a| a.starts_with("--disable-admission-plugins"))
        {
            args.push(format!(
                "--disable-admission-plugins={TEST_DISABLED_ADMISSION_PLUGINS}"
            ));
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

/// The default admission plugins test clusters run without.
pub const TEST_DISABLED_ADMISSION_PLUGINS: &str = "ServiceAccount,TaintNodesByCondition";

#[derive(Debug)]
pub struct Apiserver {
    child: ManagedChild,
}

impl Apiserver {
    pub fn spawn(config: &ApiserverConfig) -> Result<Self> {
        let mut cmd = Command::new(&config.bin);
        // Plain logs: they are read in files and test output, not terminals.
        cmd.args(config.args()).env("NO_COLOR", "1");
        // Lets a failing test be rerun with more apiserver logging.
        if let Ok(filter) = std::env::var("APISERVER_RUST_LOG") {
            cmd.env("RUST_LOG", filter);
        }
        let child = ManagedChild::spawn("kube-apiserver", cmd, &config.log)?;
        Ok(Self { child })
    }

    /// Polls `/readyz` with `probe` until it answers `ok`.
    pub async fn wait_ready(&mut self, probe: &kube::Client, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            self.child.ensure_running()?;
            let request = http::Request::get("/readyz").body(Vec::new())?;
            let attempt = tokio::time::timeout(Duration::from_secs(5), probe.request_text(request));
            match attempt.await {
                Ok(Ok(body)) if body.trim() == "ok" => return Ok(()),
                Ok(Ok(body)) => last = format!("/readyz answered {body:?}"),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "/readyz did not answer within 5s".to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "kube-apiserver not ready after {timeout:?} ({last}); log tail:\n{}",
            process::tail(self.child.log_path(), 40)
        )
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.exit_status().is_none()
    }

    pub fn stop(&mut self) {
        self.child.stop(STOP_GRACE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_carry_upstream_flags() {
        let files = PkiFiles {
            ca_cert: "/t/ca.crt".into(),
            serving_cert: "/t/s.crt".into(),
            serving_key: "/t/s.key".into(),
            admin_cert: "/t/a.crt".into(),
            admin_key: "/t/a.key".into(),
            token_file: "/t/tokens.csv".into(),
            service_account_key: "/t/sa.key".into(),
        };
        let config = ApiserverConfig {
            bin: "/bin/true".into(),
            port: 6443,
            etcd_servers: "http://127.0.0.1:2379".into(),
            pki: files,
            cert_dir: "/t/certs".into(),
            log: "/t/apiserver.log".into(),
            extra_args: vec!["--v=2".into()],
        };
        let args = config.args();
        let cases = [
            "--etcd-servers=http://127.0.0.1:2379",
            "--etcd-prefix=/registry",
            "--secure-port=6443",
            "--bind-address=127.0.0.1",
            "--tls-cert-file=/t/s.crt",
            "--tls-private-key-file=/t/s.key",
            "--client-ca-file=/t/ca.crt",
            "--token-auth-file=/t/tokens.csv",
            "--service-cluster-ip-range=10.96.0.0/24",
            "--service-node-port-range=30000-32767",
            "--service-account-signing-key-file=/t/sa.key",
            "--v=2",
        ];
        for want in cases {
            assert!(args.iter().any(|a| a == want), "missing {want} in {args:?}");
        }
        assert_eq!(config.url(), "https://127.0.0.1:6443");
    }
}
