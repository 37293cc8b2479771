//! Flags and the `--config` file (KubeletConfiguration,
//! kubelet.config.k8s.io/v1beta1), merged as upstream does: the file gives
//! the base, flags given on the command line win.

use k8s_openapi::api::core::v1::Taint;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Parser)]
#[command(
    name = "kubelet",
    version,
    about = "Runs the pods bound to this node through CRI"
)]
pub struct Options {
    /// A KubeletConfiguration file; flags given here override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The CRI endpoint, `unix:///run/containerd/containerd.sock`.
    #[arg(long)]
    pub container_runtime_endpoint: Option<String>,
    #[arg(long)]
    pub root_dir: Option<PathBuf>,
    /// Static pod manifests (a directory or one file).
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,
    /// Comma-separated DNS server IPs written into ClusterFirst pods.
    #[arg(long, value_delimiter = ',')]
    pub cluster_dns: Option<Vec<IpAddr>>,
    #[arg(long)]
    pub cluster_domain: Option<String>,
    #[arg(long)]
    pub max_pods: Option<u32>,
    #[arg(long)]
    pub hostname_override: Option<String>,
    /// The node's InternalIP; the first non-loopback address when unset.
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// `key=value,...` labels added at registration.
    #[arg(long)]
    pub node_labels: Option<String>,
    /// `key=value:Effect,...` taints added at registration.
    #[arg(long)]
    pub register_with_taints: Option<String>,
    #[arg(long)]
    pub register_node: Option<bool>,
    /// `cpu=100m,memory=256Mi,ephemeral-storage=1Gi,pid=100`.
    #[arg(long)]
    pub kube_reserved: Option<String>,
    #[arg(long)]
    pub system_reserved: Option<String>,
    /// The kubelet API's port (HTTPS).
    #[arg(long)]
    pub port: Option<u16>,
    #[arg(long)]
    pub address: Option<IpAddr>,
    /// The plain-HTTP /healthz port on --healthz-bind-address; 0 disables it.
    #[arg(long)]
    pub healthz_port: Option<u16>,
    #[arg(long)]
    pub healthz_bind_address: Option<IpAddr>,
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    /// The resolv.conf whose servers and search path `dnsPolicy: Default`
    /// pods get (and ClusterFirst pods append to).
    #[arg(long)]
    pub resolv_conf: Option<PathBuf>,
    /// Where the kubelet writes the CNI bridge config for the node's
    /// podCIDR (not an upstream flag: upstream leaves this to a setup step).
    #[arg(long)]
    pub cni_conf_dir: Option<PathBuf>,
    /// Client certificates of the kubelet API are verified against it.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// Serve kubelet API requests that carry no client certificate.
    #[arg(long)]
    pub anonymous_auth: Option<bool>,
    /// AlwaysAllow, or Webhook (SubjectAccessReview against the apiserver).
    #[arg(long)]
    pub authorization_mode: Option<String>,
    /// Log verbosity, as klog's -v.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
}

/// The subset of KubeletConfiguration this kubelet reads; unknown fields
/// are refused so that a typo is not silently ignored.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeletConfiguration {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub address: Option<IpAddr>,
    pub port: Option<u16>,
    pub healthz_port: Option<u16>,
    pub healthz_bind_address: Option<IpAddr>,
    #[serde(rename = "clusterDNS")]
    pub cluster_dns: Option<Vec<IpAddr>>,
    pub cluster_domain: Option<String>,
    pub max_pods: Option<u32>,
    #[serde(rename = "podCIDR")]
    pub pod_cidr: Option<String>,
    pub static_pod_path: Option<PathBuf>,
    pub resolv_conf: Option<PathBuf>,
    pub kube_reserved: Option<BTreeMap<String, String>>,
    pub system_reserved: Option<BTreeMap<String, String>>,
    pub eviction_hard: Option<BTreeMap<String, String>>,
    pub register_with_taints: Option<Vec<Taint>>,
    pub register_node: Option<bool>,
    pub node_status_update_frequency: Option<String>,
    pub node_status_report_frequency: Option<String>,
    pub node_lease_duration_seconds: Option<i32>,
    pub sync_frequency: Option<String>,
    pub file_check_frequency: Option<String>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
    pub pod_logs_dir: Option<PathBuf>,
    pub container_runtime_endpoint: Option<String>,
    pub cgroup_driver: Option<String>,
    pub cgroup_root: Option<String>,
    pub cgroups_per_qos: Option<bool>,
    pub serialize_image_pulls: Option<bool>,
    pub authentication: Option<serde_json::Value>,
    pub authorization: Option<serde_json::Value>,
    pub fail_swap_on: Option<bool>,
    pub runtime_request_timeout: Option<String>,
}

/// Everything the kubelet runs with, defaults applied.
#[derive(Debug, Clone)]
pub struct Settings {
    pub kubeconfig: Option<PathBuf>,
    pub runtime_endpoint: PathBuf,
    pub root_dir: PathBuf,
    pub pod_logs_dir: PathBuf,
    pub static_pod_path: Option<PathBuf>,
    pub cluster_dns: Vec<IpAddr>,
    pub cluster_domain: String,
    pub max_pods: u32,
    pub pod_cidr: Option<String>,
    pub node_name: String,
    pub node_ip: Option<IpAddr>,
    pub node_labels: BTreeMap<String, String>,
    pub register_with_taints: Vec<Taint>,
    pub register_node: bool,
    pub kube_reserved: BTreeMap<String, String>,
    pub system_reserved: BTreeMap<String, String>,
    pub eviction_hard: BTreeMap<String, String>,
    pub address: IpAddr,
    pub port: u16,
    pub healthz_port: u16,
    pub healthz_bind_address: IpAddr,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
    pub resolv_conf: PathBuf,
    pub cni_conf_dir: PathBuf,
    pub cgroup_root: String,
    pub node_status_update_frequency: Duration,
    pub node_status_report_frequency: Duration,
    pub node_lease_duration_seconds: i32,
    pub sync_frequency: Duration,
    pub file_check_frequency: Duration,
    pub runtime_request_timeout: Duration,
    /// authentication.x509.clientCAFile: client certificates of the
    /// kubelet API are verified against it.
    pub client_ca_file: Option<PathBuf>,
    /// authentication.anonymous.enabled: requests without a certificate
    /// are served (the default without a client CA).
    pub anonymous: bool,
    /// authorization.mode; upstream's defaults: AlwaysAllow for the flag,
    /// Webhook in a KubeletConfiguration.
    pub authorization_mode: crate::server::authz::Mode,
}

impl Options {
    /// Reads `--config` (if any) and merges the flags over it.
    pub fn settings(&self) -> Result<Settings, String> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("--config {}: {e}", path.display()))?;
                parse_config(&text).map_err(|e| format!("--config {}: {e}", path.display()))?
            }
            None => KubeletConfiguration::default(),
        };
        if let Some(driver) = &file.cgroup_driver
            && driver != "cgroupfs"
        {
            return Err(format!(
                "cgroupDriver {driver:?} is not supported: this kubelet drives cgroups with cgroupfs only"
            ));
        }
        if file.cgroups_per_qos == Some(false) {
            return Err("cgroupsPerQOS: false is not supported".into());
        }
        let duration = |v: &Option<String>, default: Duration, name: &str| match v {
            Some(s) => common::cli::parse_duration(s).map_err(|e| format!("{name}: {e}")),
            None => Ok(default),
        };
        let endpoint = self
            .container_runtime_endpoint
            .clone()
            .or(file.container_runtime_endpoint.clone())
            .unwrap_or("unix:///run/containerd/containerd.sock".into());
        let runtime_endpoint = PathBuf::from(endpoint.strip_prefix("unix://").ok_or_else(|| {
            format!("--container-runtime-endpoint {endpoint:?}: only unix:// endpoints are supported")
        })?);
        let node_name = match &self.hostname_override {
            Some(h) => h.trim().to_lowercase(),
            None => nix::unistd::gethostname()
                .map_err(|e| format!("reading the hostname: {e}"))?
                .to_string_lossy()
                .to_lowercase(),
        };
        let mut register_with_taints = file.register_with_taints.clone().unwrap_or_default();
        if let Some(t) = &self.register_with_taints {
            register_with_taints = parse_taints(t)?;
        }
        let reserved =
            |flag: &Option<String>, file: &Option<BTreeMap<String, String>>, name| match flag {
                Some(s) => parse_map(s, name),
                None => Ok(file.clone().unwrap_or_default()),
            };
        let kube_reserved = reserved(&self.kube_reserved, &file.kube_reserved, "--kube-reserved")?;
        let system_reserved = reserved(
            &self.system_reserved,
            &file.system_reserved,
            "--system-reserved",
        )?;
        for (name, q) in kube_reserved.iter().chain(&system_reserved) {
            if common::quantity::parse(name, q).is_none() {
                return Err(format!("reserved {name}={q}: not a quantity"));
            }
        }
        let auth = file.authentication.clone().unwrap_or_default();
        let client_ca_file = self.client_ca_file.clone().or_else(|| {
            auth["x509"]["clientCAFile"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        });
        let anonymous = self
            .anonymous_auth
            .or(auth["anonymous"]["enabled"].as_bool())
            .unwrap_or(client_ca_file.is_none());
        let default_mode = if self.config.is_some() {
            "Webhook"
        } else {
            "AlwaysAllow"
        };
        let mode = self
            .authorization_mode
            .clone()
            .or_else(|| {
                file.authorization
                    .as_ref()
                    .and_then(|a| a["mode"].as_str().map(String::from))
            })
            .unwrap_or(default_mode.into());
        let authorization_mode = match mode.as_str() {
            "AlwaysAllow" => crate::server::authz::Mode::AlwaysAllow,
            "Webhook" => crate::server::authz::Mode::Webhook,
            other => {
                return Err(format!(
                    "authorization mode {other:?}: AlwaysAllow or Webhook"
                ));
            }
        };
        let root_dir = self
            .root_dir
            .clone()
            .unwrap_or_else(|| "/var/lib/kubelet".into());
        Ok(Settings {
            kubeconfig: self.kubeconfig.clone(),
            runtime_endpoint,
            pod_logs_dir: file.pod_logs_dir.clone().unwrap_or("/var/log/pods".into()),
            static_pod_path: self
                .pod_manifest_path
                .clone()
                .or(file.static_pod_path.clone()),
            cluster_dns: self
                .cluster_dns
                .clone()
                .or(file.cluster_dns.clone())
                .unwrap_or_default(),
            cluster_domain: self
                .cluster_domain
                .clone()
                .or(file.cluster_domain.clone())
                .unwrap_or_default(),
            max_pods: self.max_pods.or(file.max_pods).unwrap_or(110),
            pod_cidr: file.pod_cidr.clone(),
            node_name,
            node_ip: self.node_ip,
            node_labels: match &self.node_labels {
                Some(s) => parse_map(s, "--node-labels")?,
                None => BTreeMap::new(),
            },
            register_with_taints,
            register_node: self.register_node.or(file.register_node).unwrap_or(true),
            kube_reserved,
            system_reserved,
            eviction_hard: file.eviction_hard.clone().unwrap_or_else(|| {
                BTreeMap::from([
                    ("memory.available".into(), "100Mi".into()),
                    ("nodefs.available".into(), "10%".into()),
                    ("imagefs.available".into(), "15%".into()),
                ])
            }),
            address: self
                .address
                .or(file.address)
                .unwrap_or(IpAddr::from([0, 0, 0, 0])),
            port: self.port.or(file.port).unwrap_or(10250),
            healthz_port: self.healthz_port.or(file.healthz_port).unwrap_or(10248),
            healthz_bind_address: self
                .healthz_bind_address
                .or(file.healthz_bind_address)
                .unwrap_or(IpAddr::from([127, 0, 0, 1])),
            tls_cert_file: self.tls_cert_file.clone().or(file.tls_cert_file.clone()),
            tls_private_key_file: self
                .tls_private_key_file
                .clone()
                .or(file.tls_private_key_file.clone()),
            resolv_conf: self
                .resolv_conf
                .clone()
                .or(file.resolv_conf.clone())
                .unwrap_or("/etc/resolv.conf".into()),
            cni_conf_dir: self.cni_conf_dir.clone().unwrap_or("/etc/cni/net.d".into()),
            cgroup_root: file.cgroup_root.clone().unwrap_or("/".into()),
            node_status_update_frequency: duration(
                &file.node_status_update_frequency,
                Duration::from_secs(10),
                "nodeStatusUpdateFrequency",
            )?,
            node_status_report_frequency: duration(
                &file.node_status_report_frequency,
                Duration::from_secs(300),
                "nodeStatusReportFrequency",
            )?,
            node_lease_duration_seconds: file.node_lease_duration_seconds.unwrap_or(40),
            sync_frequency: duration(
                &file.sync_frequency,
                Duration::from_secs(60),
                "syncFrequency",
            )?,
            file_check_frequency: duration(
                &file.file_check_frequency,
                Duration::from_secs(20),
                "fileCheckFrequency",
            )?,
            runtime_request_timeout: duration(
                &file.runtime_request_timeout,
                Duration::from_secs(120),
                "runtimeRequestTimeout",
            )?,
            root_dir,
            client_ca_file,
            anonymous,
            authorization_mode,
        })
    }
}

/// Parses a KubeletConfiguration document (YAML or JSON).
pub fn parse_config(text: &str) -> Result<KubeletConfiguration, String> {
    let config: KubeletConfiguration = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    match (config.api_version.as_deref(), config.kind.as_deref()) {
        (Some("kubelet.config.k8s.io/v1beta1"), Some("KubeletConfiguration")) => Ok(config),
        (v, k) => Err(format!(
            "expected apiVersion kubelet.config.k8s.io/v1beta1, kind KubeletConfiguration; got {v:?}, {k:?}"
        )),
    }
}

/// `a=b,c=d` into a map.
pub fn parse_map(s: &str, flag: &str) -> Result<BTreeMap<String, String>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("{flag}: {pair:?} is not key=value"))
        })
        .collect()
}

/// `key=value:Effect,key:Effect` into taints.
pub fn parse_taints(s: &str) -> Result<Vec<Taint>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|spec| {
            let (kv, effect) = spec
                .rsplit_once(':')
                .ok_or_else(|| format!("--register-with-taints: {spec:?} has no :Effect"))?;
            if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
                return Err(format!(
                    "--register-with-taints: {spec:?}: effect must be NoSchedule, PreferNoSchedule or NoExecute"
                ));
            }
            let (key, value) = match kv.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (kv, None),
            };
            Ok(Taint {
                key: key.trim().into(),
                value,
                effect: effect.into(),
                time_added: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn flags_override_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(
            &path,
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nclusterDNS: [10.32.0.10]\nclusterDomain: cluster.local\nmaxPods: 20\nregisterWithTaints:\n- {key: a, value: b, effect: NoSchedule}\n",
        )
        .unwrap();
        let opts = Options::parse_from([
            "kubelet",
            "--config",
            path.to_str().unwrap(),
            "--max-pods=30",
            "--hostname-override=Worker-0",
            "--node-labels=role=w,zone=a",
        ]);
        let s = opts.settings().unwrap();
        assert_eq!(s.max_pods, 30);
        assert_eq!(s.cluster_dns, vec![IpAddr::from([10, 32, 0, 10])]);
        assert_eq!(s.cluster_domain, "cluster.local");
        assert_eq!(s.node_name, "worker-0");
        assert_eq!(s.node_labels["zone"], "a");
        assert_eq!(s.register_with_taints[0].key, "a");
        assert_eq!(
            s.runtime_endpoint,
            PathBuf::from("/run/containerd/containerd.sock")
        );
    }

    #[test]
    fn bad_config_is_refused() {
        assert!(parse_config("apiVersion: v1\nkind: Pod\n").is_err());
        let typo =
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPod: 3\n";
        assert!(parse_config(typo).unwrap_err().contains("maxPod"));
    }

    #[test]
    fn taints_and_maps() {
        let t = parse_taints("dedicated=gpu:NoSchedule,spot:NoExecute").unwrap();
        assert_eq!(t[0].value.as_deref(), Some("gpu"));
        assert_eq!(t[1].key, "spot");
        assert_eq!(t[1].value, None);
        assert!(parse_taints("a=b:Sometimes").is_err());
        assert!(parse_map("a", "--x").is_err());
    }
}
