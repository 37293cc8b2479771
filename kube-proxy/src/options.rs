//! Flags and the `--config` file (KubeProxyConfiguration,
//! kubeproxy.config.k8s.io/v1alpha1): the file gives the base, flags given
//! on the command line win.

use crate::proxier::{Mode, NodePortAddresses};
use ipnet::Ipv4Net;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Parser)]
#[command(
    name = "kube-proxy",
    version,
    about = "Routes Services to their endpoints with nftables or iptables"
)]
pub struct Options {
    /// A KubeProxyConfiguration file; flags given here override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// nftables (default) or iptables.
    #[arg(long)]
    pub proxy_mode: Option<String>,
    /// The pods' CIDR: traffic to a ClusterIP from outside it is masqueraded.
    #[arg(long)]
    pub cluster_cidr: Option<String>,
    #[arg(long)]
    pub hostname_override: Option<String>,
    /// Comma-separated CIDRs, or `primary`: where node ports answer.
    #[arg(long, value_delimiter = ',')]
    pub nodeport_addresses: Option<Vec<String>>,
    /// `ip:port` of /healthz (empty: off).
    #[arg(long)]
    pub healthz_bind_address: Option<String>,
    /// `ip:port` of /metrics (empty: off).
    #[arg(long)]
    pub metrics_bind_address: Option<String>,
    /// The longest time between two syncs of the rules.
    #[arg(long, alias = "iptables-sync-period", value_parser = common::cli::parse_duration)]
    pub sync_period: Option<Duration>,
    /// The shortest time between two syncs: changes within it are batched.
    #[arg(long, alias = "iptables-min-sync-period", value_parser = common::cli::parse_duration)]
    pub min_sync_period: Option<Duration>,
    /// Masquerade all traffic to Service IPs.
    #[arg(long)]
    pub masquerade_all: Option<bool>,
    #[arg(long)]
    pub iptables_masquerade_bit: Option<u8>,
    /// iptables mode: node ports also answer on 127.0.0.1.
    #[arg(long)]
    pub iptables_localhost_nodeports: Option<bool>,
    /// Remove every rule kube-proxy made, then exit.
    #[arg(long)]
    pub cleanup: bool,
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
}

/// The fields of KubeProxyConfiguration this kube-proxy reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileConfig {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub client_connection: Option<ClientConnection>,
    pub mode: Option<String>,
    #[serde(rename = "clusterCIDR")]
    pub cluster_cidr: Option<String>,
    pub hostname_override: Option<String>,
    pub node_port_addresses: Option<Vec<String>>,
    pub healthz_bind_address: Option<String>,
    pub metrics_bind_address: Option<String>,
    pub sync_period: Option<String>,
    pub min_sync_period: Option<String>,
    pub iptables: Option<ModeConfig>,
    pub nftables: Option<ModeConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConnection {
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModeConfig {
    pub sync_period: Option<String>,
    pub min_sync_period: Option<String>,
    pub masquerade_all: Option<bool>,
    pub masquerade_bit: Option<u8>,
    pub localhost_node_ports: Option<bool>,
}

/// Where node ports answer, before the node's addresses are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodePorts {
    /// The node's primary addresses (from its Node object).
    Primary,
    Addresses(NodePortAddresses),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub kubeconfig: Option<PathBuf>,
    pub mode: Mode,
    pub node_name: String,
    pub cluster_cidr: Option<Ipv4Net>,
    pub nodeports: NodePorts,
    pub healthz_bind_address: Option<SocketAddr>,
    pub metrics_bind_address: Option<SocketAddr>,
    pub sync_period: Duration,
    pub min_sync_period: Duration,
    pub masquerade_all: bool,
    pub masquerade_bit: u8,
    pub localhost_nodeports: bool,
    pub cleanup: bool,
}

fn address(what: &str, s: &str) -> Result<Option<SocketAddr>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| format!("{what} {s:?}: want ip:port"))
}

fn duration(what: &str, s: Option<&str>) -> Result<Option<Duration>, String> {
    s.map(|s| common::cli::parse_duration(s).map_err(|e| format!("{what}: {e}")))
        .transpose()
}

fn nodeports(list: &[String]) -> Result<NodePorts, String> {
    if list.iter().any(|s| s == "primary") {
        if list.len() > 1 {
            return Err("--nodeport-addresses: \"primary\" cannot be combined with CIDRs".into());
        }
        return Ok(NodePorts::Primary);
    }
    let mut cidrs = Vec::new();
    for s in list {
        let cidr: ipnet::IpNet = s
            .parse()
            .map_err(|_| format!("--nodeport-addresses: {s:?} is not a CIDR"))?;
        match cidr {
            ipnet::IpNet::V4(c) if c.prefix_len() == 0 => {
                return Ok(NodePorts::Addresses(NodePortAddresses::All));
            }
            ipnet::IpNet::V4(c) => cidrs.push(c),
            // Single-stack IPv4: IPv6 node ports are not programmed.
            ipnet::IpNet::V6(_) => {}
        }
    }
    Ok(NodePorts::Addresses(NodePortAddresses::Cidrs(cidrs)))
}

impl Options {
    pub fn settings(&self) -> Result<Settings, String> {
        let file: FileConfig = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                let f: FileConfig = serde_yaml_ng::from_str(&text)
                    .map_err(|e| format!("parsing {}: {e}", path.display()))?;
                if f.kind
                    .as_deref()
                    .is_some_and(|k| k != "KubeProxyConfiguration")
                {
                    return Err(format!(
                        "{}: kind must be KubeProxyConfiguration",
                        path.display()
                    ));
                }
                if let Some(v) = f.api_version.as_deref()
                    && v != "kubeproxy.config.k8s.io/v1alpha1"
                {
                    return Err(format!(
                        "{}: apiVersion {v:?} is not kubeproxy.config.k8s.io/v1alpha1",
                        path.display()
                    ));
                }
                f
            }
            None => FileConfig::default(),
        };
        let mode: Mode = self
            .proxy_mode
            .as_deref()
            .or(file.mode.as_deref())
            .unwrap_or("")
            .parse()?;
        let per_mode = match mode {
            Mode::Nftables => file.nftables.as_ref(),
            Mode::Iptables => file.iptables.as_ref(),
        };
        let node_name = self
            .hostname_override
            .clone()
            .or(file.hostname_override.clone())
            .filter(|h| !h.is_empty())
            .or_else(common::leader::hostname)
            .ok_or("cannot tell the node's name: set --hostname-override")?
            .to_lowercase();
        let cluster_cidr = match self
            .cluster_cidr
            .as_deref()
            .or(file.cluster_cidr.as_deref())
        {
            None | Some("") => None,
            Some(s) => {
                // A dual-stack list: the IPv4 one.
                let v4 = s.split(',').find(|c| !c.contains(':')).unwrap_or(s);
                Some(
                    v4.trim()
                        .parse()
                        .map_err(|_| format!("--cluster-cidr {s:?} is not an IPv4 CIDR"))?,
                )
            }
        };
        let nodeports = match self
            .nodeport_addresses
            .as_ref()
            .or(file.node_port_addresses.as_ref())
        {
            Some(list) if !list.is_empty() => nodeports(list)?,
            // Upstream's defaults: nftables the primary addresses, iptables all.
            _ => match mode {
                Mode::Nftables => NodePorts::Primary,
                Mode::Iptables => NodePorts::Addresses(NodePortAddresses::All),
            },
        };
        let sync_period = self
            .sync_period
            .or(duration(
                "syncPeriod",
                per_mode.and_then(|m| m.sync_period.as_deref()),
            )?)
            .or(duration("syncPeriod", file.sync_period.as_deref())?)
            .unwrap_or(Duration::from_secs(30));
        let min_sync_period = self
            .min_sync_period
            .or(duration(
                "minSyncPeriod",
                per_mode.and_then(|m| m.min_sync_period.as_deref()),
            )?)
            .or(duration("minSyncPeriod", file.min_sync_period.as_deref())?)
            .unwrap_or(Duration::from_secs(1));
        if sync_period.is_zero() {
            return Err("syncPeriod must be greater than 0".into());
        }
        if min_sync_period > sync_period {
            return Err(format!(
                "minSyncPeriod ({min_sync_period:?}) must not exceed syncPeriod ({sync_period:?})"
            ));
        }
        let masquerade_bit = self
            .iptables_masquerade_bit
            .or(per_mode.and_then(|m| m.masquerade_bit))
            .unwrap_or(14);
        if masquerade_bit > 31 {
            return Err(format!(
                "masqueradeBit {masquerade_bit} must be within 0..31"
            ));
        }
        Ok(Settings {
            kubeconfig: self
                .kubeconfig
                .clone()
                .or(file.client_connection.and_then(|c| c.kubeconfig)),
            mode,
            node_name,
            cluster_cidr,
            nodeports,
            healthz_bind_address: address(
                "--healthz-bind-address",
                self.healthz_bind_address
                    .as_deref()
                    .or(file.healthz_bind_address.as_deref())
                    .unwrap_or("0.0.0.0:10256"),
            )?,
            metrics_bind_address: address(
                "--metrics-bind-address",
                self.metrics_bind_address
                    .as_deref()
                    .or(file.metrics_bind_address.as_deref())
                    .unwrap_or("127.0.0.1:10249"),
            )?,
            sync_period,
            min_sync_period,
            masquerade_all: self
                .masquerade_all
                .or(per_mode.and_then(|m| m.masquerade_all))
                .unwrap_or(false),
            masquerade_bit,
            localhost_nodeports: self
                .iptables_localhost_nodeports
                .or(file.iptables.as_ref().and_then(|m| m.localhost_node_ports))
                .unwrap_or(true),
            cleanup: self.cleanup,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(args: &[&str]) -> Result<Settings, String> {
        let mut argv = vec!["kube-proxy", "--hostname-override=n1"];
        argv.extend(args);
        Options::parse_from(argv).settings()
    }

    #[test]
    fn upstreams_defaults() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.mode, Mode::Nftables);
        assert_eq!(s.nodeports, NodePorts::Primary);
        assert_eq!(
            s.healthz_bind_address,
            Some("0.0.0.0:10256".parse().unwrap())
        );
        assert_eq!(
            s.metrics_bind_address,
            Some("127.0.0.1:10249".parse().unwrap())
        );
        assert_eq!(s.sync_period, Duration::from_secs(30));
        assert_eq!(s.min_sync_period, Duration::from_secs(1));
        let s = settings(&["--proxy-mode=iptables"]).unwrap();
        assert_eq!(s.nodeports, NodePorts::Addresses(NodePortAddresses::All));
    }

    #[test]
    fn the_config_file_is_the_base_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kube-proxy.yaml");
        std::fs::write(
            &path,
            "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: iptables\nclusterCIDR: 10.244.0.0/16\nclientConnection:\n  kubeconfig: /etc/kubernetes/kube-proxy.kubeconfig\nnodePortAddresses: [10.0.0.0/8]\niptables:\n  syncPeriod: 10s\n  minSyncPeriod: 100ms\n  masqueradeAll: true\nconntrack: {maxPerCore: 0}\n",
        )
        .unwrap();
        let config = format!("--config={}", path.display());
        let s = settings(&[&config]).unwrap();
        assert_eq!(s.mode, Mode::Iptables);
        assert_eq!(s.cluster_cidr, Some("10.244.0.0/16".parse().unwrap()));
        assert_eq!(s.sync_period, Duration::from_secs(10));
        assert_eq!(s.min_sync_period, Duration::from_millis(100));
        assert!(s.masquerade_all);
        assert_eq!(
            s.nodeports,
            NodePorts::Addresses(NodePortAddresses::Cidrs(vec![
                "10.0.0.0/8".parse().unwrap()
            ]))
        );
        let s = settings(&[
            &config,
            "--proxy-mode=nftables",
            "--min-sync-period=2s",
            "--sync-period=5s",
        ])
        .unwrap();
        assert_eq!(s.mode, Mode::Nftables);
        assert_eq!(s.min_sync_period, Duration::from_secs(2));
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(
            settings(&["--proxy-mode=ipvs"])
                .unwrap_err()
                .contains("IPVS")
        );
        assert!(settings(&["--cluster-cidr=nope"]).is_err());
        assert!(settings(&["--nodeport-addresses=primary,10.0.0.0/8"]).is_err());
        assert!(settings(&["--min-sync-period=1m"]).is_err());
        assert_eq!(
            settings(&["--nodeport-addresses=0.0.0.0/0"])
                .unwrap()
                .nodeports,
            NodePorts::Addresses(NodePortAddresses::All)
        );
        assert_eq!(
            settings(&["--healthz-bind-address="])
                .unwrap()
                .healthz_bind_address,
            None
        );
    }
}
