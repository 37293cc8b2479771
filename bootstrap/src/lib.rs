//! `kube-bootstrap pki`: the cluster's certificates, kubeconfigs,
//! service-account key and encryption config, as kubeadm's `certs` and
//! `kubeconfig` phases and "Kubernetes the hard way" make them.
//!
//! ```text
//! kube-bootstrap pki --config cluster.yaml --out DIR
//!     [--renew-before 720h] [--validity 8760h] [--ca-validity 87600h]
//! ```
//!
//! # cluster.yaml
//!
//! ```yaml
//! clusterName: kubernetes        # the cluster of every kubeconfig (default kubernetes)
//! clusterDomain: cluster.local   # default cluster.local
//! serviceCIDR: 10.96.0.0/24      # its first IP (10.96.0.1) is an apiserver SAN
//! apiserver:
//!   addresses: [127.0.0.1, 10.240.0.10]  # IP SANs
//!   names: [controller-0]                # DNS SANs
//!   url: https://127.0.0.1:6443          # every kubeconfig's server; its host is a SAN
//! etcd:
//!   members: [{name: controller-0, addresses: [127.0.0.1, 10.240.0.10]}]
//! nodes:
//!   - {name: worker-0, addresses: [10.240.0.20]}
//!   - {name: worker-1, addresses: [10.240.0.21]}
//! ```
//!
//! Names are DNS-1123 subdomains (they are node names and file names);
//! unknown fields are errors. `etcd` and `nodes` may be left out.
//!
//! # What DIR holds
//!
//! | file | subject | SANs, usage | signed by |
//! |---|---|---|---|
//! | `ca.crt/key` | CN=kubernetes-ca | CA | itself |
//! | `admin.crt/key` | O=system:masters, CN=admin | client | ca |
//! | `<node>.crt/key` | O=system:nodes, CN=system:node:`<node>` | its name and addresses; client and server (kubelet) | ca |
//! | `kube-controller-manager.crt/key` | CN=system:kube-controller-manager | client | ca |
//! | `kube-scheduler.crt/key` | CN=system:kube-scheduler | client | ca |
//! | `kube-proxy.crt/key` | CN=system:kube-proxy | client | ca |
//! | `cluster-dns.crt/key` | CN=system:kube-dns | client | ca |
//! | `apiserver.crt/key` | CN=kube-apiserver | apiserver names, url host, `kubernetes`, `kubernetes.default`, `kubernetes.default.svc`, `kubernetes.default.svc.<domain>`, localhost; apiserver addresses, first service IP, 127.0.0.1; server | ca |
//! | `apiserver-kubelet-client.crt/key` | O=system:masters, CN=kube-apiserver-kubelet-client | client | ca |
//! | `etcd/ca.crt/key` | CN=etcd-ca | CA | itself |
//! | `etcd/<member>/server.crt/key`, `etcd/<member>/peer.crt/key` | CN=`<member>` | its name, localhost, its addresses, 127.0.0.1, ::1; client and server | etcd/ca |
//! | `apiserver-etcd-client.crt/key` | CN=kube-apiserver-etcd-client | client | etcd/ca |
//! | `front-proxy-ca.crt/key` | CN=front-proxy-ca | CA | itself |
//! | `front-proxy-client.crt/key` | CN=front-proxy-client | client | front-proxy-ca |
//! | `sa.key`, `sa.pub` | service-account signing key: ECDSA P-256 PKCS#8, SPKI | | |
//! | `admin.kubeconfig`, `kube-controller-manager.kubeconfig`, `kube-scheduler.kubeconfig`, `kube-proxy.kubeconfig`, `cluster-dns.kubeconfig`, `<node>.kubeconfig` | the certificate of the same name and ca.crt embedded, server = apiserver.url | | |
//! | `encryption-config.yaml` | `aescbc` key `key1` (32 random bytes) for `secrets`, then `identity` | | |
//!
//! Private keys, kubeconfigs and the encryption config are mode 0600.
//!
//! # Re-running
//!
//! Every line of output is `created`, `kept` or `renewed (why)` and a file.
//! A CA, `sa.key` and the encryption config are never made again over
//! existing ones. A leaf certificate is issued again, with its existing key
//! and by the existing CA, when it expires within `--renew-before`, or no
//! longer matches the config (subject, SANs, usages), its key or its CA.
//! A kubeconfig is rewritten when what it embeds changed. An existing file
//! that cannot be parsed stops the run, naming the file, before anything
//! is written.
#![forbid(unsafe_code)]

pub mod apply;
pub mod config;
pub mod encryption;
pub mod error;
pub mod files;
pub mod kubeconfig;
pub mod pki;
pub mod plan;

pub use apply::{Action, FileReport, Options, Report, run};
pub use config::ClusterConfig;
pub use error::Error;
