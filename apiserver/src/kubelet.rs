//! The apiserver's client of the kubelets: HTTPS to a node's address (by
//! `--kubelet-preferred-address-types`) and its daemonEndpoints port,
//! with `--kubelet-client-certificate`/`--kubelet-client-key`, verifying
//! the kubelet against `--kubelet-certificate-authority` (without it, as
//! upstream, the kubelet's certificate is not verified).

use anyhow::{Context, Result};
use rustls::pki_types::ServerName;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_ADDRESS_TYPES: &str = "Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP";

pub struct KubeletClient {
    tls: Arc<rustls::ClientConfig>,
    address_types: Vec<String>,
}

impl KubeletClient {
    pub fn new(
        cert: Option<&Path>,
        key: Option<&Path>,
        ca: Option<&Path>,
        address_types: &str,
    ) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in crate::tls::read_certs(ca)? {
                    roots.add(c).context("--kubelet-certificate-authority")?;
                }
                builder.with_root_certificates(roots)
            }
            // Upstream's behaviour without a kubelet CA.
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(common::tls::Unverified::new(provider)),
        };
        let mut config = match (cert, key) {
            (Some(c), Some(k)) => builder
                .with_client_auth_cert(crate::tls::read_certs(c)?, crate::tls::read_key(k)?)
                .context("--kubelet-client-certificate")?,
            (None, None) => builder.with_no_client_auth(),
            _ => anyhow::bail!("--kubelet-client-certificate and --kubelet-client-key go together"),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClient {
            tls: Arc::new(config),
            address_types: address_types
                .split(',')
                .map(|s| s.trim().to_string())
                .collect(),
        })
    }

    /// The node's kubelet as (host, port), by the preferred address types.
    pub fn location(&self, node: &Value) -> Option<(String, u16)> {
        let addresses = node["status"]["addresses"].as_array()?;
        let host = self.address_types.iter().find_map(|t| {
            addresses
                .iter()
                .find(|a| a["type"].as_str() == Some(t.as_str()))
                .and_then(|a| a["address"].as_str())
        })?;
        let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
            .as_u64()
            .filter(|p| *p > 0)
            .unwrap_or(10250) as u16;
        Some((host.to_string(), port))
    }

    /// A TLS connection to the kubelet at `host:port`.
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let tcp = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::net::TcpStream::connect(&addr),
        )
        .await
        .with_context(|| format!("dial tcp {addr}: i/o timeout"))?
        .with_context(|| format!("dial tcp {addr}"))?;
        let name = ServerName::try_from(host.to_string()).context("the kubelet's address")?;
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        connector
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with the kubelet at {addr}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_preferred_address_and_the_kubelet_port() {
        let c = KubeletClient::new(None, None, None, "InternalIP,Hostname").unwrap();
        let node = serde_json::json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 11250}}}});
        assert_eq!(c.location(&node), Some(("10.0.0.5".into(), 11250)));
        let d = KubeletClient::new(None, None, None, DEFAULT_ADDRESS_TYPES).unwrap();
        assert_eq!(d.location(&node), Some(("n1".into(), 11250)));
        assert_eq!(d.location(&serde_json::json!({})), None);
    }
}
