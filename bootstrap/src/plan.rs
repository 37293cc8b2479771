//! What to write: every CA, certificate, kubeconfig and key file the cluster
//! config asks for, as plain data (file names, subjects, SANs, usages).
//! Nothing here touches the disk or does cryptography, so the subjects and
//! SANs are tested on their own.

use crate::config::ClusterConfig;
use std::fmt;
use std::net::IpAddr;

/// The service-account signing key (PKCS#8 PEM) and its public half (SPKI PEM).
pub const SA_KEY: &str = "sa.key";
pub const SA_PUB: &str = "sa.pub";
/// The apiserver's `--encryption-provider-config`.
pub const ENCRYPTION_CONFIG: &str = "encryption-config.yaml";

/// The three CAs, as kubeadm has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Authority {
    /// Signs the apiserver's serving certificate and every client of the
    /// apiserver (`--client-ca-file`) and the kubelets' certificates.
    Cluster,
    /// Signs etcd's serving and peer certificates and its clients.
    Etcd,
    /// Signs the aggregation layer's client (`--requestheader-client-ca-file`).
    FrontProxy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaSpec {
    pub authority: Authority,
    /// The path without `.crt`/`.key`, relative to the output directory.
    pub stem: &'static str,
    pub common_name: &'static str,
}

/// The extended key usages of a leaf certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Client,
    Server,
    ClientAndServer,
}

impl Usage {
    pub fn client(self) -> bool {
        matches!(self, Usage::Client | Usage::ClientAndServer)
    }

    pub fn server(self) -> bool {
        matches!(self, Usage::Server | Usage::ClientAndServer)
    }
}

/// A subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum San {
    Dns(String),
    Ip(IpAddr),
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(name) => write!(f, "DNS:{name}"),
            San::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

/// A leaf certificate and its key: `<stem>.crt`, `<stem>.key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSpec {
    pub stem: String,
    pub ca: Authority,
    pub common_name: String,
    /// At most one organization: no identity here needs more.
    pub organization: Option<String>,
    pub sans: Vec<San>,
    pub usage: Usage,
}

/// A kubeconfig with the cluster CA and a client certificate embedded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigSpec {
    pub path: String,
    /// The stem of the [`CertSpec`] whose certificate and key it embeds.
    pub cert_stem: String,
    /// The user entry's name: the certificate's common name.
    pub user: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub cluster_name: String,
    pub server: String,
    pub cas: Vec<CaSpec>,
    pub certs: Vec<CertSpec>,
    pub kubeconfigs: Vec<KubeconfigSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{path} would be written twice (by {first} and by {second}): rename one of them")]
    Collision {
        path: String,
        first: String,
        second: String,
    },
}

/// The organization of the apiserver's kubelet client certificate. kubeadm
/// (1.29+) uses `kubeadm:cluster-admins`, which only works with the
/// ClusterRoleBinding kubeadm creates; `system:masters` is a superuser to
/// every authorizer without any object in the cluster.
pub const KUBELET_CLIENT_GROUP: &str = "system:masters";

impl Plan {
    pub fn new(config: &ClusterConfig) -> Result<Plan, PlanError> {
        let mut certs = Vec::new();
        let mut kubeconfigs = Vec::new();
        let mut client = |stem: &str, cn: &str, org: Option<&str>, kubeconfig: bool| {
            certs.push(CertSpec {
                stem: stem.into(),
                ca: Authority::Cluster,
                common_name: cn.into(),
                organization: org.map(String::from),
                sans: Vec::new(),
                usage: Usage::Client,
            });
            if kubeconfig {
                kubeconfigs.push(KubeconfigSpec {
                    path: format!("{stem}.kubeconfig"),
                    cert_stem: stem.into(),
                    user: cn.into(),
                });
            }
        };
        client("admin", "admin", Some("system:masters"), true);
        client(
            "kube-controller-manager",
            "system:kube-controller-manager",
            None,
            true,
        );
        client("kube-scheduler", "system:kube-scheduler", None, true);
        client("kube-proxy", "system:kube-proxy", None, true);
        client("cluster-dns", "system:kube-dns", None, true);
        client(
            "apiserver-kubelet-client",
            "kube-apiserver-kubelet-client",
            Some(KUBELET_CLIENT_GROUP),
            false,
        );

        for node in &config.nodes {
            let user = format!("system:node:{}", node.name);
            let mut sans = Vec::new();
            push(&mut sans, San::Dns(node.name.clone()));
            for ip in &node.addresses {
                push(&mut sans, San::Ip(*ip));
            }
            certs.push(CertSpec {
                stem: node.name.clone(),
                ca: Authority::Cluster,
                common_name: user.clone(),
                organization: Some("system:nodes".into()),
                sans,
                usage: Usage::ClientAndServer,
            });
            kubeconfigs.push(KubeconfigSpec {
                path: format!("{}.kubeconfig", node.name),
                cert_stem: node.name.clone(),
                user,
            });
        }

        certs.push(CertSpec {
            stem: "apiserver".into(),
            ca: Authority::Cluster,
            common_name: "kube-apiserver".into(),
            organization: None,
            sans: apiserver_sans(config),
            usage: Usage::Server,
        });

        for member in &config.etcd.members {
            let mut sans = Vec::new();
            push(&mut sans, San::Dns(member.name.clone()));
            push(&mut sans, San::Dns("localhost".into()));
            for ip in &member.addresses {
                push(&mut sans, San::Ip(*ip));
            }
            for ip in [
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
            ] {
                push(&mut sans, San::Ip(ip));
            }
            for kind in ["server", "peer"] {
                certs.push(CertSpec {
                    stem: format!("etcd/{}/{kind}", member.name),
                    ca: Authority::Etcd,
                    common_name: member.name.clone(),
                    organization: None,
                    sans: sans.clone(),
                    usage: Usage::ClientAndServer,
                });
            }
        }
        certs.push(CertSpec {
            stem: "apiserver-etcd-client".into(),
            ca: Authority::Etcd,
            common_name: "kube-apiserver-etcd-client".into(),
            organization: None,
            sans: Vec::new(),
            usage: Usage::Client,
        });
        certs.push(CertSpec {
            stem: "front-proxy-client".into(),
            ca: Authority::FrontProxy,
            common_name: "front-proxy-client".into(),
            organization: None,
            sans: Vec::new(),
            usage: Usage::Client,
        });

        let plan = Plan {
            cluster_name: config.cluster_name.clone(),
            server: config.apiserver.url.clone(),
            cas: vec![
                CaSpec {
                    authority: Authority::Cluster,
                    stem: "ca",
                    common_name: "kubernetes-ca",
                },
                CaSpec {
                    authority: Authority::Etcd,
                    stem: "etcd/ca",
                    common_name: "etcd-ca",
                },
                CaSpec {
                    authority: Authority::FrontProxy,
                    stem: "front-proxy-ca",
                    common_name: "front-proxy-ca",
                },
            ],
            certs,
            kubeconfigs,
        };
        plan.check_collisions()?;
        Ok(plan)
    }

    pub fn ca(&self, authority: Authority) -> &CaSpec {
        self.cas
            .iter()
            .find(|c| c.authority == authority)
            .expect("every authority is planned")
    }

    pub fn cert(&self, stem: &str) -> Option<&CertSpec> {
        self.certs.iter().find(|c| c.stem == stem)
    }

    /// Every file written, relative to the output directory, with what it is for.
    pub fn files(&self) -> Vec<(String, String)> {
        let mut files = Vec::new();
        for ca in &self.cas {
            let what = format!("the {}", ca.common_name);
            files.push((format!("{}.crt", ca.stem), what.clone()));
            files.push((format!("{}.key", ca.stem), what));
        }
        for c in &self.certs {
            let what = format!("the certificate of {}", c.common_name);
            files.push((format!("{}.crt", c.stem), what.clone()));
            files.push((format!("{}.key", c.stem), what));
        }
        for k in &self.kubeconfigs {
            files.push((k.path.clone(), format!("the kubeconfig of {}", k.user)));
        }
        files.push((SA_KEY.into(), "the service-account key".into()));
        files.push((SA_PUB.into(), "the service-account key".into()));
        files.push((ENCRYPTION_CONFIG.into(), "the encryption config".into()));
        files
    }

    /// A node named `admin` or `apiserver` would overwrite a component's files.
    fn check_collisions(&self) -> Result<(), PlanError> {
        let mut seen = std::collections::HashMap::new();
        for (path, what) in self.files() {
            if let Some(first) = seen.insert(path.clone(), what.clone()) {
                return Err(PlanError::Collision {
                    path,
                    first,
                    second: what,
                });
            }
        }
        Ok(())
    }
}

/// kubeadm's apiserver SANs plus loopback: the configured names and
/// addresses, the host of `apiserver.url`, the in-cluster names of the
/// `kubernetes` Service and its ClusterIP.
fn apiserver_sans(config: &ClusterConfig) -> Vec<San> {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in &config.apiserver.names {
        push(&mut dns, San::Dns(name.clone()));
    }
    match config.apiserver_url_host() {
        Ok(url::Host::Domain(name)) => push(&mut dns, San::Dns(name.to_ascii_lowercase())),
        Ok(url::Host::Ipv4(ip)) => push(&mut ips, San::Ip(ip.into())),
        Ok(url::Host::Ipv6(ip)) => push(&mut ips, San::Ip(ip.into())),
        Err(_) => {} // rejected by the config's validation
    }
    let domain = &config.cluster_domain;
    for name in [
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        format!("kubernetes.default.svc.{domain}"),
        "localhost".to_string(),
    ] {
        push(&mut dns, San::Dns(name));
    }
    for ip in &config.apiserver.addresses {
        push(&mut ips, San::Ip(*ip));
    }
    if let Ok(ip) = config.first_service_ip() {
        push(&mut ips, San::Ip(ip));
    }
    push(&mut ips, San::Ip([127, 0, 0, 1].into()));
    dns.into_iter().chain(ips).collect()
}

fn push(sans: &mut Vec<San>, san: San) {
    if !sans.contains(&san) {
        sans.push(san);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::fixtures::EXAMPLE;

    fn plan(yaml: &str) -> Plan {
        Plan::new(&ClusterConfig::from_yaml(yaml).unwrap()).unwrap()
    }

    fn names(sans: &[San]) -> Vec<String> {
        sans.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn apiserver_sans() {
        let p = plan(EXAMPLE);
        let api = p.cert("apiserver").unwrap();
        assert_eq!(api.common_name, "kube-apiserver");
        assert_eq!(api.usage, Usage::Server);
        assert_eq!(
            names(&api.sans),
            [
                "DNS:controller-0",
                "DNS:kubernetes",
                "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster.local",
                "DNS:localhost",
                "IP:127.0.0.1",
                "IP:10.240.0.10",
                "IP:10.96.0.1",
            ]
        );
    }

    #[test]
    fn url_host_and_domain_are_sans() {
        let p = plan(
            "clusterDomain: k8s.internal\nserviceCIDR: 10.32.0.0/16\n\
             apiserver: {url: 'https://API.example.com:443'}\n",
        );
        let sans = names(&p.cert("apiserver").unwrap().sans);
        assert!(sans.contains(&"DNS:api.example.com".into()), "{sans:?}");
        assert!(sans.contains(&"DNS:kubernetes.default.svc.k8s.internal".into()));
        assert!(sans.contains(&"IP:10.32.0.1".into()));
    }

    #[test]
    fn subjects() {
        let p = plan(EXAMPLE);
        let cases = [
            ("admin", "admin", Some("system:masters"), Usage::Client),
            (
                "worker-0",
                "system:node:worker-0",
                Some("system:nodes"),
                Usage::ClientAndServer,
            ),
            ("kube-proxy", "system:kube-proxy", None, Usage::Client),
            (
                "kube-controller-manager",
                "system:kube-controller-manager",
                None,
                Usage::Client,
            ),
            (
                "kube-scheduler",
                "system:kube-scheduler",
                None,
                Usage::Client,
            ),
            ("cluster-dns", "system:kube-dns", None, Usage::Client),
            (
                "apiserver-kubelet-client",
                "kube-apiserver-kubelet-client",
                Some("system:masters"),
                Usage::Client,
            ),
            (
                "etcd/controller-0/server",
                "controller-0",
                None,
                Usage::ClientAndServer,
            ),
            (
                "etcd/controller-0/peer",
                "controller-0",
                None,
                Usage::ClientAndServer,
            ),
            (
                "apiserver-etcd-client",
                "kube-apiserver-etcd-client",
                None,
                Usage::Client,
            ),
            (
                "front-proxy-client",
                "front-proxy-client",
                None,
                Usage::Client,
            ),
        ];
        for (stem, cn, org, usage) in cases {
            let c = p.cert(stem).unwrap_or_else(|| panic!("{stem} planned"));
            assert_eq!(c.common_name, cn, "{stem}");
            assert_eq!(c.organization.as_deref(), org, "{stem}");
            assert_eq!(c.usage, usage, "{stem}");
        }
        assert_eq!(
            names(&p.cert("worker-1").unwrap().sans),
            ["DNS:worker-1", "IP:10.240.0.21"]
        );
        assert_eq!(
            names(&p.cert("etcd/controller-0/peer").unwrap().sans),
            [
                "DNS:controller-0",
                "DNS:localhost",
                "IP:127.0.0.1",
                "IP:10.240.0.10",
                "IP:::1"
            ]
        );
        let cas = |a| p.certs.iter().filter(move |c| c.ca == a).count();
        assert_eq!(cas(Authority::Etcd), 3);
        assert_eq!(cas(Authority::FrontProxy), 1);
    }

    #[test]
    fn kubeconfigs() {
        let p = plan(EXAMPLE);
        let got: Vec<_> = p
            .kubeconfigs
            .iter()
            .map(|k| (k.path.as_str(), k.user.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("admin.kubeconfig", "admin"),
                (
                    "kube-controller-manager.kubeconfig",
                    "system:kube-controller-manager"
                ),
                ("kube-scheduler.kubeconfig", "system:kube-scheduler"),
                ("kube-proxy.kubeconfig", "system:kube-proxy"),
                ("cluster-dns.kubeconfig", "system:kube-dns"),
                ("worker-0.kubeconfig", "system:node:worker-0"),
                ("worker-1.kubeconfig", "system:node:worker-1"),
            ]
        );
    }

    #[test]
    fn a_node_named_like_a_component_is_refused() {
        for name in ["admin", "apiserver", "front-proxy-ca", "sa"] {
            let yaml = format!(
                "serviceCIDR: 10.96.0.0/24\napiserver: {{url: 'https://127.0.0.1'}}\nnodes: [{{name: {name}}}]\n"
            );
            let err = Plan::new(&ClusterConfig::from_yaml(&yaml).unwrap()).unwrap_err();
            assert!(
                err.to_string().contains(&format!("{name}.")),
                "{name}: {err}"
            );
        }
    }
}
