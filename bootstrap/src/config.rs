//! `cluster.yaml`: the machines and names the certificates are for.
//!
//! Field names are camelCase as in upstream's configuration files; unknown
//! fields are rejected so that a typo (`serviceCidr`) is an error, not a
//! silently missing SAN. [`ClusterConfig::from_yaml`] parses and validates,
//! collecting every invalid field with its path.

use serde::Deserialize;
use std::net::IpAddr;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing the cluster config: {0}")]
    Parse(#[source] serde_yaml_ng::Error),
    #[error("invalid cluster config:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterConfig {
    /// The cluster's name in every kubeconfig (default `kubernetes`).
    #[serde(default = "default_cluster_name")]
    pub cluster_name: String,
    /// The DNS domain of Services (default `cluster.local`).
    #[serde(default = "default_cluster_domain")]
    pub cluster_domain: String,
    /// The Service IP range; its first address is the `kubernetes` Service's
    /// ClusterIP and goes into the apiserver's SANs.
    #[serde(rename = "serviceCIDR")]
    pub service_cidr: String,
    pub apiserver: Apiserver,
    #[serde(default)]
    pub etcd: Etcd,
    #[serde(default)]
    pub nodes: Vec<Machine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Apiserver {
    /// Addresses clients reach the apiserver at (IP SANs).
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// Host names clients reach the apiserver at (DNS SANs).
    #[serde(default)]
    pub names: Vec<String>,
    /// The `server` of every kubeconfig; its host is a SAN too.
    pub url: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Etcd {
    #[serde(default)]
    pub members: Vec<Machine>,
}

/// A node or an etcd member: its name and the addresses it is reached at.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Machine {
    pub name: String,
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
}

fn default_cluster_name() -> String {
    "kubernetes".into()
}

fn default_cluster_domain() -> String {
    "cluster.local".into()
}

impl ClusterConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = serde_yaml_ng::from_str(text).map_err(ConfigError::Parse)?;
        let errors = config.validate();
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(errors))
        }
    }

    /// Every invalid field as `path: why`.
    fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.cluster_name.trim().is_empty() || self.cluster_name.contains(char::is_control) {
            errors.push(format!(
                "clusterName: {:?} is not a usable name",
                self.cluster_name
            ));
        }
        if let Err(e) = dns_subdomain(&self.cluster_domain) {
            errors.push(format!("clusterDomain: {e}"));
        }
        if let Err(e) = self.first_service_ip() {
            errors.push(format!("serviceCIDR: {e}"));
        }
        if let Err(e) = self.apiserver_url_host() {
            errors.push(format!("apiserver.url: {e}"));
        }
        for (i, name) in self.apiserver.names.iter().enumerate() {
            if let Err(e) = dns_subdomain(name) {
                errors.push(format!("apiserver.names[{i}]: {e}"));
            }
        }
        machines("etcd.members", &self.etcd.members, &mut errors);
        machines("nodes", &self.nodes, &mut errors);
        errors
    }

    /// The first address of `serviceCIDR` (10.96.0.1 for 10.96.0.0/24), as
    /// the apiserver allocates it to the `kubernetes` Service.
    pub fn first_service_ip(&self) -> Result<IpAddr, String> {
        let net: ipnet::IpNet = self
            .service_cidr
            .trim()
            .parse()
            .map_err(|_| format!("{:?} is not a CIDR", self.service_cidr))?;
        let first = match net.network() {
            IpAddr::V4(a) => u32::from(a).checked_add(1).map(|n| IpAddr::V4(n.into())),
            IpAddr::V6(a) => u128::from(a).checked_add(1).map(|n| IpAddr::V6(n.into())),
        };
        match first {
            Some(ip) if net.contains(&ip) => Ok(ip),
            _ => Err(format!("{net} has no address for the kubernetes Service")),
        }
    }

    /// The host of `apiserver.url`, which must be `https://HOST[:PORT]`.
    pub fn apiserver_url_host(&self) -> Result<url::Host<String>, String> {
        let url = url::Url::parse(&self.apiserver.url)
            .map_err(|e| format!("{:?}: {e}", self.apiserver.url))?;
        if url.scheme() != "https" {
            return Err(format!(
                "{:?}: the apiserver is served over https",
                url.as_str()
            ));
        }
        url.host()
            .map(|h| h.to_owned())
            .ok_or_else(|| format!("{:?} has no host", url.as_str()))
    }
}

fn machines(field: &str, list: &[Machine], errors: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    for (i, m) in list.iter().enumerate() {
        if let Err(e) = dns_subdomain(&m.name) {
            errors.push(format!("{field}[{i}].name: {e}"));
        }
        if !seen.insert(m.name.as_str()) {
            errors.push(format!("{field}[{i}].name: {:?} is listed twice", m.name));
        }
    }
}

/// A DNS-1123 subdomain, as Kubernetes requires of node names: lowercase
/// alphanumerics, `-` and `.`, starting and ending alphanumeric, at most 253
/// characters. It also keeps the name usable as a file name.
fn dns_subdomain(name: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!(
            "{name:?} is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')"
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod fixtures {
    /// The example of the crate documentation.
    pub const EXAMPLE: &str = "\
clusterName: kubernetes
clusterDomain: cluster.local
serviceCIDR: 10.96.0.0/24
apiserver: {addresses: [127.0.0.1, 10.240.0.10], names: [controller-0], url: https://127.0.0.1:6443}
etcd: {members: [{name: controller-0, addresses: [127.0.0.1, 10.240.0.10]}]}
nodes: [{name: worker-0, addresses: [10.240.0.20]}, {name: worker-1, addresses: [10.240.0.21]}]
";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_example() {
        let c = ClusterConfig::from_yaml(fixtures::EXAMPLE).unwrap();
        assert_eq!(c.cluster_name, "kubernetes");
        assert_eq!(c.first_service_ip().unwrap().to_string(), "10.96.0.1");
        assert_eq!(c.apiserver.names, ["controller-0"]);
        assert_eq!(c.etcd.members[0].addresses.len(), 2);
        assert_eq!(c.nodes[1].name, "worker-1");
        assert_eq!(c.nodes[1].addresses[0].to_string(), "10.240.0.21");
    }

    #[test]
    fn defaults() {
        let c = ClusterConfig::from_yaml(
            "serviceCIDR: fd00:10:96::/112\napiserver: {url: 'https://api.example.com'}\n",
        )
        .unwrap();
        assert_eq!(c.cluster_name, "kubernetes");
        assert_eq!(c.cluster_domain, "cluster.local");
        assert_eq!(c.first_service_ip().unwrap().to_string(), "fd00:10:96::1");
        assert!(c.nodes.is_empty() && c.etcd.members.is_empty());
        assert_eq!(
            c.apiserver_url_host().unwrap(),
            url::Host::Domain("api.example.com".to_string())
        );
    }

    #[test]
    fn invalid_configs() {
        let base = "apiserver: {url: 'https://127.0.0.1:6443'}\n";
        let cases = [
            (
                "unknown field",
                "serviceCidr: 10.96.0.0/24\n",
                "unknown field",
            ),
            ("not a cidr", "serviceCIDR: 10.96.0.0\n", "serviceCIDR"),
            ("no host left", "serviceCIDR: 10.96.0.1/32\n", "no address"),
            (
                "http",
                "serviceCIDR: 10.96.0.0/24\napiserver: {url: 'http://x:8080'}\n",
                "apiserver.url",
            ),
            (
                "node twice",
                "serviceCIDR: 10.96.0.0/24\nnodes: [{name: a}, {name: a}]\n",
                "nodes[1].name",
            ),
            (
                "uppercase node",
                "serviceCIDR: 10.96.0.0/24\nnodes: [{name: Worker}]\n",
                "nodes[0].name",
            ),
            (
                "path in a member name",
                "serviceCIDR: 10.96.0.0/24\netcd: {members: [{name: ../x}]}\n",
                "etcd.members[0].name",
            ),
            (
                "bad address",
                "serviceCIDR: 10.96.0.0/24\nnodes: [{name: a, addresses: [10.0.0.300]}]\n",
                "IP address",
            ),
        ];
        for (name, yaml, want) in cases {
            let yaml = if yaml.contains("apiserver") {
                yaml.to_string()
            } else {
                format!("{yaml}{base}")
            };
            let err = ClusterConfig::from_yaml(&yaml).unwrap_err().to_string();
            assert!(err.contains(want), "{name}: {err}");
        }
    }
}
