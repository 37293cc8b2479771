//! A worker node under test: a network namespace made for it, the real
//! containerd started inside that namespace with a config and root of its
//! own (CRI plugin, runc with cgroupfs, CNI from containernetworking-plugins),
//! the local pause and busybox images imported, and the real kubelet
//! (in the root namespace, on loopback) pointed at the cluster.
//!
//! Dropping it stops the kubelet, removes every sandbox through CRI, stops
//! containerd, deletes the namespace and unmounts what is left.

use crate::Cluster;
use crate::process::{ManagedChild, free_port, locate_binary, tail};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The images every node has, built by hack/images/build.sh.
pub const PAUSE_IMAGE: &str = "localhost/pause:3.10";
pub const BUSYBOX_IMAGE: &str = "localhost/busybox:1.35";

/// Routed to an empty bridge in every node: the tests' Service range
/// (10.96.0.0/24) and load-balancer pools (10.96.200.0/24).
pub const SERVICE_ROUTE: &str = "10.96.0.0/16";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the image tars once per test process (they are reproducible, so
/// a build left by an earlier run is reused).
pub fn images() -> Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = workspace().join("target/kube-images");
            if out.join("pause.tar").is_file() && out.join("busybox.tar").is_file() {
                return Ok(out);
            }
            let status = Command::new(workspace().join("hack/images/build.sh"))
                .arg(&out)
                .output()
                .map_err(|e| format!("running hack/images/build.sh: {e}"))?;
            if !status.status.success() {
                return Err(format!(
                    "hack/images/build.sh failed: {}",
                    String::from_utf8_lossy(&status.stderr)
                ));
            }
            Ok(out)
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// The image tar of a workspace binary (`localhost/NAME:local`, built by
/// hack/images/build.sh with `$ENV` naming the binary), written under `out`.
pub fn binary_image(name: &str, env: &str, out: &Path) -> Result<PathBuf> {
    let bin = locate_binary(name, env)?;
    run(Command::new(workspace().join("hack/images/build.sh"))
        .env(env, bin)
        .arg(out))?;
    Ok(out.join(format!("{name}.tar")))
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct NodeBuilder {
    name: String,
    pod_cidr: String,
    kubelet_args: Vec<String>,
    config: Vec<String>,
    authorization_mode: String,
}

impl NodeBuilder {
    pub fn new(name: &str) -> Self {
        NodeBuilder {
            name: name.into(),
            pod_cidr: "10.244.0.0/24".into(),
            kubelet_args: Vec::new(),
            config: Vec::new(),
            authorization_mode: "AlwaysAllow".into(),
        }
    }

    /// The kubelet API's authorization.mode (AlwaysAllow by default here;
    /// Webhook asks the apiserver with SubjectAccessReviews).
    pub fn authorization_mode(mut self, mode: &str) -> Self {
        self.authorization_mode = mode.into();
        self
    }

    pub fn pod_cidr(mut self, cidr: &str) -> Self {
        self.pod_cidr = cidr.into();
        self
    }

    pub fn kubelet_arg(mut self, arg: impl Into<String>) -> Self {
        self.kubelet_args.push(arg.into());
        self
    }

    /// A line added to the KubeletConfiguration (`key: value`).
    pub fn config_line(mut self, line: impl Into<String>) -> Self {
        self.config.push(line.into());
        self
    }

    pub async fn start(self, cluster: &Cluster) -> Result<Node> {
        Node::start(cluster, self).await
    }
}

pub struct Node {
    pub name: String,
    pub netns: String,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub kubelet_port: u16,
    pub healthz_port: u16,
    kubeconfig: PathBuf,
    /// The cluster CA (client certificates of the kubelet API) and the
    /// admin certificate the tests call the kubelet with.
    ca: PathBuf,
    admin: (PathBuf, PathBuf),
    builder: NodeBuilder,
    containerd: Option<ManagedChild>,
    kubelet: Option<ManagedChild>,
    kubelet_starts: usize,
    registry: Option<ManagedChild>,
    /// Daemons running inside the namespace (kube-proxy, cluster-dns), by name.
    daemons: Vec<(String, ManagedChild)>,
    /// The apiserver, reachable on the namespace's loopback.
    relay: Option<crate::netns::Relay>,
}

impl Node {
    async fn start(cluster: &Cluster, builder: NodeBuilder) -> Result<Node> {
        let images = images()?;
        let dir = cluster.dir().join(format!("node-{}", builder.name));
        std::fs::create_dir_all(dir.join("net.d"))?;
        // Network namespace names are global: make this one unique.
        let netns = format!(
            "kube-it-{}-{}",
            builder.name,
            dir.parent()
                .and_then(|p| p.file_name())
                .map(|n| n
                    .to_string_lossy()
                    .trim_start_matches("kube-it-")
                    .to_string())
                .unwrap_or_default()
        );
        run(Command::new("ip").args(["netns", "add", &netns]))?;
        let mut node = Node {
            name: builder.name.clone(),
            netns: netns.clone(),
            socket: dir.join("containerd.sock"),
            kubelet_port: free_port()?,
            healthz_port: free_port()?,
            kubeconfig: cluster.kubeconfig_path().to_path_buf(),
            ca: cluster.pki().files.ca_cert.clone(),
            admin: (
                cluster.pki().files.admin_cert.clone(),
                cluster.pki().files.admin_key.clone(),
            ),
            dir: dir.clone(),
            builder,
            containerd: None,
            kubelet: None,
            kubelet_starts: 0,
            registry: None,
            daemons: Vec::new(),
            relay: None,
        };
        run(Command::new("ip").args(["-n", &netns, "link", "set", "lo", "up"]))?;
        // Pod-to-Service-to-pod on one bridge: bridged packets must pass
        // the IP hooks, so replies are un-NATed (kubeadm's prerequisite).
        let _ = node.netns_exec(&["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"]);
        // A route for Service and load-balancer addresses (a real node has
        // a default route): without one, packets to them are refused by
        // routing before any proxy rule sees them. The empty bridge takes
        // them nowhere.
        run(Command::new("ip").args([
            "-n",
            &netns,
            "link",
            "add",
            "kube-services",
            "type",
            "bridge",
        ]))?;
        run(Command::new("ip").args(["-n", &netns, "link", "set", "kube-services", "up"]))?;
        run(Command::new("ip").args([
            "-n",
            &netns,
            "route",
            "add",
            SERVICE_ROUTE,
            "dev",
            "kube-services",
        ]))?;
        let port = cluster
            .apiserver_url()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .context("the apiserver URL has no port")?;
        node.relay = Some(crate::netns::Relay::start(
            &format!("/run/netns/{netns}"),
            port,
        )?);
        node.start_containerd()?;
        for image in ["pause.tar", "busybox.tar"] {
            node.import_image(&images.join(image))?;
        }
        node.start_kubelet().await?;
        Ok(node)
    }

    fn start_containerd(&mut self) -> Result<()> {
        let d = &self.dir;
        let config = include_str!("../../hack/containerd.toml.in")
            .replace("@DIR@", &d.display().to_string())
            .replace("@SOCKET@", &self.socket.display().to_string());
        std::fs::write(d.join("containerd.toml"), config)?;
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/run/netns/{}", self.netns))
            .arg("containerd")
            .arg("--config")
            .arg(d.join("containerd.toml"));
        let log = d.join("containerd.log");
        let mut child = ManagedChild::spawn("containerd", command, &log)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.socket.exists() {
            child.ensure_running()?;
            if Instant::now() > deadline {
                bail!("containerd did not start within 20s:\n{}", tail(&log, 30));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.containerd = Some(child);
        Ok(())
    }

    /// Stops containerd (SIGTERM) and starts it again; the containers run
    /// on under their shims meanwhile.
    pub fn restart_containerd(&mut self) -> Result<()> {
        if let Some(mut c) = self.containerd.take() {
            c.stop(Duration::from_secs(10));
        }
        let _ = std::fs::remove_file(&self.socket);
        self.start_containerd()
    }

    fn kubelet_log(&self) -> PathBuf {
        self.dir
            .join(format!("kubelet-{}.log", self.kubelet_starts))
    }

    /// Starts the kubelet and waits for its Node to be Ready.
    pub async fn start_kubelet(&mut self) -> Result<()> {
        let bin = locate_binary("kubelet", "KUBELET_BIN")?;
        let d = &self.dir;
        let mut config = format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\npodCIDR: {}\npodLogsDir: {}\nnodeStatusUpdateFrequency: 1s\nclusterDomain: cluster.local\nauthentication:\n  anonymous: {{enabled: false}}\n  x509: {{clientCAFile: {}}}\nauthorization: {{mode: {}}}\n",
            self.builder.pod_cidr,
            d.join("pod-logs").display(),
            self.ca.display(),
            self.builder.authorization_mode
        );
        for line in &self.builder.config {
            config.push_str(line);
            config.push('\n');
        }
        std::fs::write(d.join("kubelet.yaml"), config)?;
        let mut command = Command::new(bin);
        command
            .arg(format!("--config={}", d.join("kubelet.yaml").display()))
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!(
                "--container-runtime-endpoint=unix://{}",
                self.socket.display()
            ))
            .arg(format!("--root-dir={}", d.join("kubelet").display()))
            .arg(format!("--cni-conf-dir={}", d.join("net.d").display()))
            .arg(format!("--hostname-override={}", self.name))
            .arg("--node-ip=127.0.0.1")
            .arg("--address=127.0.0.1")
            .arg(format!("--port={}", self.kubelet_port))
            .arg(format!("--healthz-port={}", self.healthz_port))
            .args(&self.builder.kubelet_args)
            .env(
                "RUST_LOG",
                std::env::var("DAEMON_RUST_LOG").unwrap_or("info".into()),
            );
        self.kubelet_starts += 1;
        let log = self.kubelet_log();
        let mut child = ManagedChild::spawn("kubelet", command, &log)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            child.ensure_running()?;
            if self.ready().await {
                self.kubelet = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "node {} not Ready within 60s:\n{}",
                    self.name,
                    tail(&log, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Whether the Node reports Ready=True.
    async fn ready(&self) -> bool {
        let out = tokio::process::Command::new("kubectl")
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(["get", "node", &self.name, "-o"])
            .arg("jsonpath={.status.conditions[?(@.type==\"Ready\")].status}")
            .output()
            .await;
        out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "True")
    }

    pub fn kubelet_pid(&self) -> Option<u32> {
        self.kubelet.as_ref().and_then(|k| k.pid())
    }

    /// SIGTERM, as systemd stops it.
    pub fn stop_kubelet(&mut self) {
        if let Some(mut k) = self.kubelet.take() {
            k.stop(Duration::from_secs(10));
        }
    }

    /// SIGKILL, as a crash.
    pub fn kill_kubelet(&mut self) {
        if let Some(mut k) = self.kubelet.take() {
            k.kill();
        }
    }

    pub fn kubelet_log_tail(&self, lines: usize) -> String {
        tail(&self.kubelet_log(), lines)
    }

    pub fn containerd_log_tail(&self, lines: usize) -> String {
        tail(&self.dir.join("containerd.log"), lines)
    }

    /// The kubelet's /metrics over HTTPS (self-signed).
    pub async fn kubelet_metrics(&self) -> Result<String> {
        let out = tokio::process::Command::new("curl")
            .args(["-sfk", "--max-time", "5", "--cert"])
            .arg(&self.admin.0)
            .arg("--key")
            .arg(&self.admin.1)
            .arg(format!("https://127.0.0.1:{}/metrics", self.kubelet_port))
            .output()
            .await?;
        if !out.status.success() {
            bail!(
                "GET /metrics failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A CRI client of this node's containerd.
    pub fn runtime(&self) -> Result<kubelet::cri::Runtime> {
        Ok(kubelet::cri::Runtime::connect(
            &self.socket,
            Duration::from_secs(30),
        )?)
    }

    /// Runs `args` inside the node's network namespace.
    /// Wires this node's namespace to `other`'s with a veth pair
    /// (10.250.`link`.1 and .2) and routes each node's pod CIDR through it,
    /// as the routes between workers of a real cluster: pods reach pods of
    /// the other node by their IPs. Traffic stays in the two namespaces.
    pub fn connect(&self, other: &Node, link: u8) -> Result<()> {
        let (here, there) = (format!("to-{}", other.name), format!("to-{}", self.name));
        run(Command::new("ip").args([
            "link",
            "add",
            &here,
            "netns",
            &self.netns,
            "type",
            "veth",
            "peer",
            "name",
            &there,
            "netns",
            &other.netns,
        ]))?;
        for (ns, dev, addr, peer, cidr) in [
            (
                &self.netns,
                &here,
                format!("10.250.{link}.1/30"),
                format!("10.250.{link}.2"),
                &other.builder.pod_cidr,
            ),
            (
                &other.netns,
                &there,
                format!("10.250.{link}.2/30"),
                format!("10.250.{link}.1"),
                &self.builder.pod_cidr,
            ),
        ] {
            run(Command::new("ip").args(["-n", ns, "addr", "add", &addr, "dev", dev]))?;
            run(Command::new("ip").args(["-n", ns, "link", "set", dev, "up"]))?;
            run(Command::new("ip").args(["-n", ns, "route", "add", cidr, "via", &peer]))?;
            run(Command::new("ip").args([
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ]))?;
        }
        Ok(())
    }

    /// Routes this node's pod CIDR from the machine itself through a veth
    /// pair (10.251.`link`.1 here, .2 in the node), as a controller of the
    /// hard way routes each worker's pod CIDR: the apiserver reaches pods
    /// by their IPs (a webhook behind a Service). Traffic stays between the
    /// machine and the node's namespace; the pair goes with the namespace.
    pub fn route_from_machine(&self, link: u8) -> Result<()> {
        let here = format!("kit{}-{link}", std::process::id() % 100_000);
        let there = "to-machine";
        run(Command::new("ip").args([
            "link",
            "add",
            &here,
            "type",
            "veth",
            "peer",
            "name",
            there,
            "netns",
            &self.netns,
        ]))?;
        let (near, far) = (format!("10.251.{link}.1"), format!("10.251.{link}.2"));
        run(Command::new("ip").args(["addr", "add", &format!("{near}/30"), "dev", &here]))?;
        run(Command::new("ip").args(["link", "set", &here, "up"]))?;
        run(Command::new("ip").args([
            "-n",
            &self.netns,
            "addr",
            "add",
            &format!("{far}/30"),
            "dev",
            there,
        ]))?;
        run(Command::new("ip").args(["-n", &self.netns, "link", "set", there, "up"]))?;
        run(Command::new("ip").args(["route", "add", &self.builder.pod_cidr, "via", &far]))?;
        run(Command::new("ip").args([
            "netns",
            "exec",
            &self.netns,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]))
    }

    /// Imports an image tar (OCI layout, as [`images`] builds) into the
    /// node's containerd, as `ctr images import` on a real node.
    pub fn import_image(&self, tar: &Path) -> Result<()> {
        run(Command::new("ctr")
            .arg("-a")
            .arg(&self.socket)
            .args(["-n", "k8s.io", "images", "import"])
            .arg(tar))
    }

    pub fn netns_exec(&self, args: &[&str]) -> Result<std::process::Output> {
        Ok(Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.netns))
            .args(args)
            .output()?)
    }

    /// Starts a docker-registry on 127.0.0.1:5000 inside the node's
    /// namespace (where containerd pulls from) and pushes `image` (an OCI
    /// layout tar from [`images`]) to it as `repo:tag`.
    pub fn start_registry(&mut self, image: &str, repo: &str, tag: &str) -> Result<()> {
        let dir = self.dir.join("registry");
        std::fs::create_dir_all(dir.join("data"))?;
        std::fs::write(
            dir.join("config.yml"),
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:5000\n",
                dir.join("data").display()
            ),
        )?;
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/run/netns/{}", self.netns))
            .args(["docker-registry", "serve"])
            .arg(dir.join("config.yml"));
        let log = dir.join("registry.log");
        let mut child = ManagedChild::spawn("docker-registry", command, &log)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self
            .netns_exec(&["curl", "-sf", "http://127.0.0.1:5000/v2/"])?
            .status
            .success()
        {
            child.ensure_running()?;
            if Instant::now() > deadline {
                bail!("docker-registry did not start:\n{}", tail(&log, 20));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.registry = Some(child);
        // Push: every blob of the layout, then the manifest under its tag.
        let layout = dir.join("layout");
        std::fs::create_dir_all(&layout)?;
        run(Command::new("tar")
            .arg("-xf")
            .arg(images()?.join(image))
            .arg("-C")
            .arg(&layout))?;
        let index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(layout.join("index.json"))?)?;
        let manifest_digest = index["manifests"][0]["digest"]
            .as_str()
            .context("index.json names no manifest")?
            .to_string();
        let blob = |d: &str| {
            layout
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:"))
        };
        let manifest_path = blob(&manifest_digest);
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&manifest_path)?)?;
        let mut digests = vec![
            manifest["config"]["digest"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ];
        for l in manifest["layers"].as_array().into_iter().flatten() {
            digests.push(l["digest"].as_str().unwrap_or_default().to_string());
        }
        let base = format!("http://127.0.0.1:5000/v2/{repo}");
        for d in digests {
            let out = self.netns_exec(&[
                "curl",
                "-sf",
                "-o",
                "/dev/null",
                "-D",
                "-",
                "-X",
                "POST",
                &format!("{base}/blobs/uploads/"),
            ])?;
            let headers = String::from_utf8_lossy(&out.stdout).into_owned();
            let location = headers
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Location: ")
                        .or_else(|| l.strip_prefix("location: "))
                })
                .context("no upload location")?
                .trim()
                .to_string();
            let url = if location.starts_with("http") {
                location
            } else {
                format!("http://127.0.0.1:5000{location}")
            };
            let sep = if url.contains('?') { '&' } else { '?' };
            let file = blob(&d);
            let put = self.netns_exec(&[
                "curl",
                "-sf",
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                &format!("@{}", file.display()),
                &format!("{url}{sep}digest={d}"),
            ])?;
            if !put.status.success() {
                bail!("pushing blob {d}: {}", String::from_utf8_lossy(&put.stderr));
            }
        }
        let put = self.netns_exec(&[
            "curl",
            "-sf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
            "--data-binary",
            &format!("@{}", manifest_path.display()),
            &format!("{base}/manifests/{tag}"),
        ])?;
        if !put.status.success() {
            bail!(
                "pushing the manifest: {}",
                String::from_utf8_lossy(&put.stderr)
            );
        }
        Ok(())
    }

    /// Starts `binary` (from `bin_env` or the build) as daemon `name`
    /// inside the node's namespace with `args`; its log is `<name>.log` in
    /// the node's dir.
    pub fn start_daemon(
        &mut self,
        name: &str,
        binary: &str,
        bin_env: &str,
        args: &[String],
    ) -> Result<()> {
        self.stop_daemon(name);
        let bin = locate_binary(binary, bin_env)?;
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/run/netns/{}", self.netns))
            .arg(bin)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("DAEMON_RUST_LOG").unwrap_or("info".into()),
            );
        let child = ManagedChild::spawn(name, command, &self.daemon_log(name))?;
        self.daemons.push((name.to_string(), child));
        Ok(())
    }

    fn daemon_log(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    pub fn daemon_log_tail(&self, name: &str, lines: usize) -> String {
        tail(&self.daemon_log(name), lines)
    }

    /// Fails if daemon `name` has exited.
    pub fn ensure_daemon_running(&mut self, name: &str) -> Result<()> {
        match self.daemons.iter_mut().find(|(n, _)| n == name) {
            Some((_, child)) => child.ensure_running(),
            None => bail!("{name} is not started"),
        }
    }

    /// SIGTERM, then SIGKILL after the grace period.
    pub fn stop_daemon(&mut self, name: &str) {
        if let Some(i) = self.daemons.iter().position(|(n, _)| n == name) {
            let (_, mut child) = self.daemons.remove(i);
            child.stop(Duration::from_secs(10));
        }
    }

    /// kube-proxy inside the namespace with the cluster's kubeconfig,
    /// health on 127.0.0.1:10256 and metrics on 127.0.0.1:10249 there;
    /// waits until its rules are synced (/healthz 200).
    pub async fn start_kube_proxy(&mut self, extra: &[&str]) -> Result<()> {
        let mut args = vec![
            format!("--kubeconfig={}", self.kubeconfig.display()),
            format!("--hostname-override={}", self.name),
            "--healthz-bind-address=127.0.0.1:10256".to_string(),
            "--metrics-bind-address=127.0.0.1:10249".to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        self.start_daemon("kube-proxy", "kube-proxy", "KUBE_PROXY_BIN", &args)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.ensure_daemon_running("kube-proxy")?;
            if self.http_get("http://127.0.0.1:10256/healthz").is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "kube-proxy not healthy within 30s:\n{}",
                    self.daemon_log_tail("kube-proxy", 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// GET `url` from inside the node's namespace (curl, 5 s at most);
    /// the body of a 2xx answer.
    pub fn http_get(&self, url: &str) -> Result<String> {
        let out = self.netns_exec(&["curl", "-sf", "--max-time", "5", url])?;
        if !out.status.success() {
            bail!(
                "GET {url} from node {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn teardown(&mut self) {
        for (_, mut d) in std::mem::take(&mut self.daemons) {
            d.stop(Duration::from_secs(10));
        }
        self.stop_kubelet();
        if let Some(mut r) = self.registry.take() {
            r.stop(Duration::from_secs(5));
        }
        if self.containerd.is_some()
            && let Ok(runtime) = self.runtime()
        {
            // CRI calls from a thread of its own: Drop may run inside a
            // test's runtime.
            let handle = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                rt.block_on(async {
                    let uids: Vec<String> = runtime
                        .sandboxes(None)
                        .await
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|s| s.labels.get(kubelet::cri::labels::POD_UID).cloned())
                        .collect();
                    let _ = runtime.remove_everything().await;
                    uids
                })
            });
            if let Ok(uids) = handle.join() {
                for uid in uids {
                    for parent in kubelet::pods::qos::cgroup_parents(&uid, "/") {
                        kubelet::pods::cgroups::remove(&parent);
                    }
                }
            }
        }
        if let Some(mut c) = self.containerd.take() {
            c.stop(Duration::from_secs(10));
        }
        // Anything still mounted under the node's directory (sandbox shm,
        // rootfs, tmpfs volumes) would keep the temp dir from going.
        for m in kubelet::pods::volumes::mounts_under(&self.dir).iter().rev() {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        self.relay = None;
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.netns])
            .status();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- kubelet ({}) ---\n{}\n--- containerd ---\n{}",
                self.name,
                self.kubelet_log_tail(60),
                self.containerd_log_tail(20)
            );
            for (name, _) in &self.daemons {
                eprintln!("--- {name} ---\n{}", self.daemon_log_tail(name, 40));
            }
            if self.daemons.iter().any(|(n, _)| n == "kube-proxy")
                && let Ok(out) = self.netns_exec(&["nft", "list", "ruleset"])
            {
                eprintln!(
                    "--- nft list ruleset ---\n{}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
        }
        self.teardown();
    }
}
