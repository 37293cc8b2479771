//! policy-webhook: a mutating admission webhook that enforces a policy on
//! Deployments ([`policy`]), served over HTTPS ([`server`]) from a pod
//! behind a Service, as a third-party policy controller is deployed. See
//! the README next to this crate.

pub mod policy;
pub mod server;

use clap::Parser;
use policy::Policy;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(name = "policy-webhook", version, about)]
pub struct Options {
    /// The serving certificate (for <service>.<namespace>.svc).
    #[arg(long)]
    pub tls_cert_file: PathBuf,
    #[arg(long)]
    pub tls_private_key_file: PathBuf,
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    #[arg(long, default_value_t = 8443)]
    pub secure_port: u16,
    /// An image reference prefix containers may use (repeatable).
    #[arg(long = "allowed-registry", default_values_t = ["localhost/".to_string()])]
    pub allowed_registries: Vec<String>,
    /// The CPU request of containers that set none.
    #[arg(long, default_value = "100m")]
    pub default_cpu_request: String,
    /// The memory request of containers that set none.
    #[arg(long, default_value = "64Mi")]
    pub default_memory_request: String,
    /// KEY=VALUE: a label Deployments get when they lack KEY (repeatable).
    #[arg(long = "default-label", default_values_t = ["team=unassigned".to_string()])]
    pub default_labels: Vec<String>,
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
}

impl Options {
    /// The policy the flags describe, or what is wrong with them.
    pub fn policy(&self) -> Result<Policy, String> {
        let mut default_requests = BTreeMap::new();
        for (name, value) in [
            ("cpu", &self.default_cpu_request),
            ("memory", &self.default_memory_request),
        ] {
            if common::quantity::parse(name, value).is_none() {
                return Err(format!(
                    "--default-{name}-request: {value:?} is not a quantity"
                ));
            }
            default_requests.insert(name.to_string(), value.clone());
        }
        let default_labels = self
            .default_labels
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => Err(format!("--default-label: {kv:?} is not KEY=VALUE")),
            })
            .collect::<Result<_, _>>()?;
        Ok(Policy {
            allowed_registries: self.allowed_registries.clone(),
            default_requests,
            default_labels,
        })
    }

    /// The TLS configuration from the certificate files.
    pub fn tls(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        let (certs, key) =
            common::serving::read_pem(&self.tls_cert_file, &self.tls_private_key_file)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
            .map_err(|e| format!("the serving certificate: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    pub fn listen(&self) -> SocketAddr {
        SocketAddr::new(self.bind_address, self.secure_port)
    }
}
