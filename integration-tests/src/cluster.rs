//! `Cluster`: a real etcd plus the real `kube-apiserver` binary, private to
//! one test, torn down on drop (also when the test panics).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::apiserver::{self, Apiserver, ApiserverConfig};
use crate::etcd::{Etcd, EtcdCluster, EtcdTls};
use crate::kubectl::{Background, Kubectl};
use crate::netns::Relay;
use crate::pki::{self, Pki};
use crate::process;

/// How long the apiserver may take to become ready.
pub const APISERVER_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Read timeout of the kube-rs clients handed to tests.
pub const CLIENT_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Attempts when the apiserver exits early (e.g. its port was taken meanwhile).
const APISERVER_START_ATTEMPTS: usize = 3;

/// Lines of each log printed when a test panics.
const FAILURE_LOG_LINES: usize = 80;

/// Set to keep the cluster's directory (logs, etcd data, certificates) after a failed test.
pub const KEEP_DIR_ENV: &str = "INTEGRATION_KEEP_DIR";

#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    apiserver_args: Vec<String>,
    ready_timeout: Duration,
    etcd_tls: bool,
    ha: bool,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        Self {
            apiserver_args: Vec::new(),
            ready_timeout: APISERVER_READY_TIMEOUT,
            etcd_tls: false,
            ha: false,
        }
    }
}

impl ClusterBuilder {
    /// An extra apiserver flag such as `--v=4`.
    pub fn apiserver_arg(mut self, arg: impl Into<String>) -> Self {
        self.apiserver_args.push(arg.into());
        self
    }

    /// etcd serves TLS and requires client certificates; the apiserver gets
    /// `--etcd-cafile`, `--etcd-certfile` and `--etcd-keyfile`.
    pub fn etcd_tls(mut self) -> Self {
        self.etcd_tls = true;
        self
    }

    /// An HA control plane: a three-member etcd cluster and two
    /// apiservers behind a TCP load balancer, which every client (the
    /// kubeconfig, kubelets, daemons) goes through.
    pub fn ha(mut self) -> Self {
        self.ha = true;
        self
    }

    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    pub async fn start(self) -> Result<Cluster> {
        let bin = apiserver::locate_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("kube-it-")
            .tempdir()
            .context("creating the cluster's temp dir")?;
        let pki = Pki::generate(dir.path())?;
        let mut apiserver_args = self.apiserver_args;
        let etcd = if self.ha {
            EtcdBackend::Members(EtcdCluster::start(dir.path(), HA_ETCD_MEMBERS).await?)
        } else if self.etcd_tls {
            // The serving certificate names 127.0.0.1; the admin certificate is a client one.
            let files = &pki.files;
            let tls = EtcdTls {
                ca: files.ca_cert.clone(),
                cert: files.serving_cert.clone(),
                key: files.serving_key.clone(),
            };
            apiserver_args.push(format!("--etcd-cafile={}", files.ca_cert.display()));
            apiserver_args.push(format!("--etcd-certfile={}", files.admin_cert.display()));
            apiserver_args.push(format!("--etcd-keyfile={}", files.admin_key.display()));
            EtcdBackend::One(Etcd::start_with(dir.path(), Some(&tls)).await?)
        } else {
            EtcdBackend::One(Etcd::start(dir.path()).await?)
        };
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home)?;
        let count = if self.ha { HA_APISERVERS } else { 1 };
        let mut configs = Vec::new();
        for i in 0..count {
            // The single apiserver keeps its historical file names.
            let suffix = if self.ha {
                format!("-{i}")
            } else {
                String::new()
            };
            let cert_dir = dir.path().join(format!("cert-dir{suffix}"));
            std::fs::create_dir_all(&cert_dir)?;
            configs.push(ApiserverConfig {
                bin: bin.clone(),
                port: process::free_port()?,
                etcd_servers: etcd.endpoints(),
                pki: pki.files.clone(),
                cert_dir,
                log: dir.path().join(format!("apiserver{suffix}.log")),
                extra_args: apiserver_args.clone(),
            });
        }
        let balancer = if self.ha {
            let port = process::free_port()?;
            let relay = Relay::balance(port, configs.iter().map(|c| c.port).collect())?;
            Some((port, relay))
        } else {
            None
        };
        let kubeconfig = dir.path().join("kubeconfig");
        let kubectl = Kubectl::new(&kubeconfig, &home);
        let mut cluster = Cluster {
            apiservers: configs.iter().map(|_| None).collect(),
            etcd,
            configs,
            balancer,
            pki,
            kubeconfig,
            kubectl,
            ready_timeout: self.ready_timeout,
            dir: Some(dir),
        };
        for i in 0..count {
            let mut last_err = None;
            for attempt in 0..APISERVER_START_ATTEMPTS {
                if attempt > 0 && cluster.balancer.is_none() {
                    cluster.configs[i].port = process::free_port()?;
                }
                cluster.write_kubeconfig()?;
                match cluster.start_apiserver_at(i).await {
                    Ok(()) => {
                        last_err = None;
                        break;
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            if let Some(e) = last_err {
                return Err(e);
            }
        }
        Ok(cluster)
    }
}

/// Members of an HA cluster's etcd.
pub const HA_ETCD_MEMBERS: usize = 3;

/// Apiservers of an HA cluster.
pub const HA_APISERVERS: usize = 2;

/// One etcd, or a cluster of members.
#[derive(Debug)]
enum EtcdBackend {
    One(Etcd),
    Members(EtcdCluster),
}

impl EtcdBackend {
    /// The value for `--etcd-servers`.
    fn endpoints(&self) -> String {
        match self {
            EtcdBackend::One(e) => e.endpoint(),
            EtcdBackend::Members(c) => c.endpoints(),
        }
    }

    fn one(&self) -> &Etcd {
        match self {
            EtcdBackend::One(e) => e,
            EtcdBackend::Members(_) => panic!("an HA cluster has several etcd members"),
        }
    }

    fn log_tail(&self, lines: usize) -> String {
        match self {
            EtcdBackend::One(e) => process::tail(e.log_path(), lines),
            EtcdBackend::Members(c) => c.log_tail(lines),
        }
    }

    fn stop(&mut self) {
        match self {
            EtcdBackend::One(e) => e.stop(),
            EtcdBackend::Members(c) => c.stop(),
        }
    }
}

#[derive(Debug)]
pub struct Cluster {
    apiservers: Vec<Option<Apiserver>>,
    etcd: EtcdBackend,
    configs: Vec<ApiserverConfig>,
    /// An HA cluster's load balancer: its port, and the relay.
    balancer: Option<(u16, Relay)>,
    pki: Pki,
    kubeconfig: PathBuf,
    kubectl: Kubectl,
    ready_timeout: Duration,
    // Last, so the directory is removed after the processes using it are gone.
    dir: Option<tempfile::TempDir>,
}

impl Cluster {
    /// etcd and the apiserver with the default flags, ready to serve.
    pub async fn start() -> Result<Self> {
        ClusterBuilder::default().start().await
    }

    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("dir lives until drop").path()
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// `https://127.0.0.1:PORT`: the apiserver, or an HA cluster's balancer.
    pub fn apiserver_url(&self) -> String {
        match &self.balancer {
            Some((port, _)) => format!("https://127.0.0.1:{port}"),
            None => self.configs[0].url(),
        }
    }

    pub fn apiserver_pid(&self) -> Option<u32> {
        self.apiservers[0].as_ref().and_then(Apiserver::pid)
    }

    pub fn etcd_pid(&self) -> Option<u32> {
        self.etcd.one().pid()
    }

    /// `http://127.0.0.1:PORT` of the cluster's etcd.
    pub fn etcd_endpoint(&self) -> String {
        self.etcd.one().endpoint()
    }

    /// `http://127.0.0.1:PORT/metrics` of the cluster's etcd.
    pub fn etcd_metrics_url(&self) -> String {
        self.etcd.one().metrics_url()
    }

    /// The text of etcd's Prometheus `/metrics`.
    pub async fn etcd_metrics(&self) -> Result<String> {
        self.etcd.one().metrics().await
    }

    pub async fn etcd_client(&self) -> Result<etcd_client::Client> {
        self.etcd.one().client().await
    }

    fn members(&mut self) -> &mut EtcdCluster {
        match &mut self.etcd {
            EtcdBackend::Members(c) => c,
            EtcdBackend::One(_) => panic!("not an HA cluster"),
        }
    }

    /// Kills etcd member `i` of an HA cluster (SIGKILL).
    pub fn kill_etcd_member(&mut self, i: usize) {
        self.members().kill(i);
    }

    /// Starts etcd member `i` of an HA cluster again and waits until it is healthy.
    pub async fn restart_etcd_member(&mut self, i: usize) -> Result<()> {
        self.members().restart(i).await
    }

    /// Stops every etcd member of an HA cluster (SIGTERM).
    pub fn stop_etcd_members(&mut self) {
        self.members().stop();
    }

    /// Starts every etcd member of an HA cluster again on its data; they
    /// need each other for a quorum, so all start before any is awaited.
    pub async fn start_etcd_members(&mut self) -> Result<()> {
        self.members().start_all().await
    }

    /// Compacts etcd (physically) up to its current revision, so every
    /// older resourceVersion is gone.
    pub async fn compact_etcd(&self) -> Result<()> {
        let mut etcd = self.etcd_client().await?;
        let revision = etcd
            .get("/", None)
            .await?
            .header()
            .context("etcd response without a header")?
            .revision();
        etcd.compact(
            revision,
            Some(etcd_client::CompactionOptions::new().with_physical()),
        )
        .await?;
        Ok(())
    }

    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// The last `lines` lines of the apiserver's log (all runs of it;
    /// each apiserver's, in an HA cluster).
    pub fn apiserver_log_tail(&self, lines: usize) -> String {
        self.configs
            .iter()
            .map(|c| process::tail(&c.log, lines))
            .collect::<Vec<_>>()
            .join("\n-----\n")
    }

    fn write_kubeconfig(&self) -> Result<()> {
        let files = &self.pki.files;
        let yaml = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: integration
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: {user}
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: integration
  context:
    cluster: integration
    user: {user}
    namespace: default
current-context: integration
",
            server = self.apiserver_url(),
            ca = files.ca_cert.display(),
            user = pki::ADMIN_USER,
            cert = files.admin_cert.display(),
            key = files.admin_key.display(),
        );
        std::fs::write(&self.kubeconfig, yaml).context("writing the kubeconfig")
    }

    /// Starts every apiserver that is stopped and waits for each `/readyz`.
    pub async fn start_apiserver(&mut self) -> Result<()> {
        for i in 0..self.configs.len() {
            if self.apiservers[i].is_none() {
                self.start_apiserver_at(i).await?;
            }
        }
        Ok(())
    }

    /// Starts apiserver `i` (stopped or never started) and waits for its
    /// own `/readyz`, not the balancer's.
    pub async fn start_apiserver_at(&mut self, i: usize) -> Result<()> {
        if let Some(running) = self.apiservers[i].as_mut()
            && running.is_running()
        {
            bail!("apiserver {i} is already running");
        }
        self.note_in_log(i, "starting kube-apiserver");
        let mut server = Apiserver::spawn(&self.configs[i])?;
        let mut probe = self.client_config().await?;
        probe.cluster_url = self.configs[i].url().parse()?;
        probe.default_retry = false;
        probe.connect_timeout = Some(Duration::from_secs(2));
        probe.read_timeout = Some(Duration::from_secs(5));
        let probe = kube::Client::try_from(probe).context("building the readiness client")?;
        server.wait_ready(&probe, self.ready_timeout).await?;
        self.apiservers[i] = Some(server);
        Ok(())
    }

    /// Stops every apiserver (SIGTERM, then SIGKILL after a grace period).
    pub fn stop_apiserver(&mut self) {
        for i in 0..self.configs.len() {
            self.stop_apiserver_at(i);
        }
    }

    /// Stops apiserver `i`; in an HA cluster the balancer sends its
    /// clients to the other.
    pub fn stop_apiserver_at(&mut self, i: usize) {
        if let Some(mut server) = self.apiservers[i].take() {
            self.note_in_log(i, "stopping kube-apiserver");
            server.stop();
        }
    }

    /// Stops and starts the apiserver on the same port, etcd and certificates.
    pub async fn restart_apiserver(&mut self) -> Result<()> {
        self.stop_apiserver();
        self.start_apiserver().await
    }

    fn note_in_log(&self, i: usize, what: &str) {
        if let Ok(mut log) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.configs[i].log)
        {
            let _ = writeln!(log, "===== integration-tests: {what} =====");
        }
    }

    async fn client_config(&self) -> Result<kube::Config> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)?;
        Ok(kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?)
    }

    /// A kube-rs client from the admin kubeconfig (client certificate,
    /// `system:masters`). A response that stalls for [`CLIENT_READ_TIMEOUT`]
    /// fails instead of hanging the test, so keep watches shorter than that
    /// (`timeoutSeconds`) or let events flow.
    pub async fn client(&self) -> kube::Client {
        let config = self.client_config().await.expect("admin kube config");
        test_client(config)
    }

    /// A client that trusts the cluster CA but presents no credentials.
    pub async fn anonymous_client(&self) -> kube::Client {
        self.client_from_user_yaml("{}").await
    }

    /// A client authenticating with a bearer token.
    pub async fn token_client(&self, token: &str) -> kube::Client {
        self.client_from_user_yaml(&format!("{{ token: \"{token}\" }}"))
            .await
    }

    /// A client with a fresh certificate for `user` in `group`, signed by the cluster CA.
    pub async fn cert_client(&self, user: &str, group: Option<&str>) -> kube::Client {
        let cert = self
            .pki
            .client_cert(user, group)
            .expect("client certificate");
        let dir = self.dir().join(format!("user-{user}"));
        std::fs::create_dir_all(&dir).expect("user dir");
        let (cert_path, key_path) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert_path, cert.cert_pem).expect("write cert");
        std::fs::write(&key_path, cert.key_pem).expect("write key");
        self.client_from_user_yaml(&format!(
            "{{ client-certificate: \"{}\", client-key: \"{}\" }}",
            cert_path.display(),
            key_path.display()
        ))
        .await
    }

    async fn client_from_user_yaml(&self, user: &str) -> kube::Client {
        let yaml = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: integration
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: u
  user: {user}
contexts:
- name: integration
  context: {{ cluster: integration, user: u, namespace: default }}
current-context: integration
",
            server = self.apiserver_url(),
            ca = self.pki.files.ca_cert.display(),
        );
        let kubeconfig = Kubeconfig::from_yaml(&yaml).expect("generated kubeconfig parses");
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("kube config");
        test_client(config)
    }

    pub fn kubectl_runner(&self) -> &Kubectl {
        &self.kubectl
    }

    /// Runs `/usr/bin/kubectl --kubeconfig=... ARGS` with a timeout.
    pub async fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl.run(args).await
    }

    /// Like [`Cluster::kubectl`], feeding `stdin` (e.g. YAML for `-f -`).
    pub async fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        self.kubectl.run_stdin(args, stdin).await
    }

    /// kubectl authenticating with bearer `token` only (its own kubeconfig).
    pub fn token_kubectl(&self, token: &str) -> Kubectl {
        let path = self
            .dir()
            .join(format!("token-{}.kubeconfig", &token[..token.len().min(8)]));
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: integration\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: u\n  user: {{ token: \"{token}\" }}\ncontexts:\n- name: integration\n  context: {{ cluster: integration, user: u, namespace: default }}\ncurrent-context: integration\n",
            self.apiserver_url(),
            self.pki.files.ca_cert.display(),
        );
        std::fs::write(&path, yaml).expect("writing a token kubeconfig");
        Kubectl::new(&path, &self.dir().join("home"))
    }

    /// `kubectl get TARGET -o jsonpath=PATH`, trimmed; empty when it
    /// fails (for polling: the object may not exist yet).
    pub async fn get_jsonpath(&self, target: &[&str], path: &str) -> String {
        let mut args = vec!["get"];
        args.extend_from_slice(target);
        let expr = format!("-o=jsonpath={path}");
        args.push(&expr);
        let out = self.kubectl(&args).await;
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `n` HTTP GETs of `target` ("host port") from inside `pod` with
    /// busybox's nc (the static busybox's wget crashes resolving): the last
    /// line of each answer (the body of a one-line page), or FAIL.
    pub async fn http_from_pod(&self, pod: &str, target: &str, n: usize) -> Vec<String> {
        let script = format!(
            "for i in $(seq {n}); do r=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {target} 2>/dev/null | tail -n 1); echo \"${{r:-FAIL}}\"; done"
        );
        let out = self
            .kubectl(&["exec", pod, "--", "sh", "-c", &script])
            .await;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .collect()
    }

    /// Waits until CustomResourceDefinition `crd` is Established.
    pub async fn crd_established(&self, crd: &str, within: Duration) {
        crate::wait::eventually(&format!("{crd} is Established"), within, async || {
            let s = self
                .get_jsonpath(
                    &["crd", crd],
                    "{.status.conditions[?(@.type==\"Established\")].status}",
                )
                .await;
            (s == "True", s)
        })
        .await;
    }

    /// Starts kubectl in the background (`get -w`, `wait`).
    pub fn kubectl_spawn(&self, args: &[&str]) -> Background {
        self.kubectl.spawn(args)
    }
}

fn test_client(mut config: kube::Config) -> kube::Client {
    config.read_timeout = Some(CLIENT_READ_TIMEOUT);
    // Count the timeout from each request, not from when a pooled connection went idle.
    config.reset_reader_on_write = true;
    kube::Client::try_from(config).expect("kube client")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed {
            eprintln!(
                "----- kube-apiserver log (last {FAILURE_LOG_LINES} lines, {}) -----\n{}\n\
                 ----- etcd log (last 20 lines) -----\n{}\n-----",
                self.configs[0].log.display(),
                self.apiserver_log_tail(FAILURE_LOG_LINES),
                self.etcd.log_tail(20),
            );
        }
        self.stop_apiserver();
        self.etcd.stop();
        if failed
            && std::env::var_os(KEEP_DIR_ENV).is_some()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("kept the cluster directory {}", dir.keep().display());
        }
    }
}
