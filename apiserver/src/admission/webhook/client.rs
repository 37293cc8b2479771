//! The HTTPS call to a webhook (upstream's `util/webhook` client manager):
//! POST of the AdmissionReview to the configured `url`, or to a `service`
//! reached through its endpoints (else its cluster IP) and verified as
//! `<name>.<namespace>.svc`; the server is trusted by `caBundle`, else by
//! the system's roots. The whole call is bounded by `timeoutSeconds`.

use super::Deps;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use k8s_openapi::api::admissionregistration::v1::WebhookClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The most of a webhook's answer read (a patched object fits easily).
const MAX_RESPONSE_BYTES: usize = 10 << 20;

/// Where one call goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The URL as upstream's errors show it (with `?timeout=`).
    pub url: String,
    /// Whom the certificate must name.
    pub server_name: String,
    /// The address dialled.
    pub host: String,
    pub port: u16,
    /// Path and query of the request line.
    pub path: String,
    pub ca_bundle: Option<Vec<u8>>,
}

/// Resolves a webhook's client config to where its call goes.
pub async fn target(
    cc: &WebhookClientConfig,
    timeout: Duration,
    deps: &Deps,
) -> Result<Target, String> {
    let query = format!("timeout={}s", timeout.as_secs());
    let ca_bundle = cc
        .ca_bundle
        .as_ref()
        .map(|b| b.0.clone())
        .filter(|b| !b.is_empty());
    if let Some(raw) = &cc.url {
        let u = url::Url::parse(raw).map_err(|e| format!("invalid url {raw:?}: {e}"))?;
        let host = match u.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(h) => h.to_string(),
            None => return Err(format!("invalid url {raw:?}: no host")),
        };
        let port = u.port().unwrap_or(443);
        let path = format!("{}?{query}", u.path());
        return Ok(Target {
            url: format!("https://{}{path}", authority(&host, port)),
            server_name: host.clone(),
            host,
            port,
            path,
            ca_bundle,
        });
    }
    let Some(svc) = &cc.service else {
        return Err("neither url nor service is set".into());
    };
    let port = svc.port.unwrap_or(443);
    let server_name = format!("{}.{}.svc", svc.name, svc.namespace);
    let path = format!("{}?{query}", svc.path.as_deref().unwrap_or("/"));
    let url = format!("https://{server_name}:{port}{path}");
    let (host, port) = resolve_service(deps, &svc.namespace, &svc.name, port)
        .await
        .map_err(|e| format!("Post \"{url}\": {e}"))?;
    Ok(Target {
        url,
        server_name,
        host,
        port,
        path,
        ca_bundle,
    })
}

fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A service's address for `port`: a ready endpoint of the matching port
/// (as upstream's endpoint routing), else the cluster IP (its default).
/// Read through to etcd: a service created a moment ago is found.
async fn resolve_service(
    deps: &Deps,
    namespace: &str,
    name: &str,
    port: i32,
) -> Result<(String, u16), String> {
    let key = format!("{namespace}/{name}");
    let svc = deps
        .services
        .fetch(&key)
        .await
        .ok_or_else(|| format!("service \"{name}\" not found"))?;
    let endpoints = deps.endpoints.fetch(&key).await;
    pick_address(&svc, endpoints.as_deref(), port)
}

/// The choice [`resolve_service`] makes, on the objects themselves.
pub fn pick_address(
    svc: &Value,
    endpoints: Option<&Value>,
    port: i32,
) -> Result<(String, u16), String> {
    let name = svc["metadata"]["name"].as_str().unwrap_or("");
    let svc_port = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["port"].as_i64() == Some(port as i64))
        .ok_or_else(|| format!("no service port {port} found for service \"{name}\""))?;
    let port_name = svc_port["name"].as_str().unwrap_or("");
    let subsets = endpoints.and_then(|e| e["subsets"].as_array());
    for subset in subsets.into_iter().flatten() {
        let Some(ip) = subset["addresses"][0]["ip"].as_str() else {
            continue;
        };
        let found = subset["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"].as_str().unwrap_or("") == port_name);
        if let Some(p) = found
            .and_then(|p| p["port"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
        {
            return Ok((ip.to_string(), p));
        }
    }
    match svc["spec"]["clusterIP"].as_str() {
        Some(ip) if !ip.is_empty() && ip != "None" => Ok((
            ip.to_string(),
            u16::try_from(port).map_err(|e| e.to_string())?,
        )),
        Some("None") => Err("cannot route to service with ClusterIP \"None\"".into()),
        _ => Err(format!("no endpoints available for service \"{name}\"")),
    }
}

#[derive(Default)]
pub struct Client {
    system_roots: OnceLock<Arc<rustls::RootCertStore>>,
}

impl Client {
    fn roots(&self, ca_bundle: Option<&[u8]>) -> Result<Arc<rustls::RootCertStore>, String> {
        let Some(pem) = ca_bundle else {
            return Ok(self
                .system_roots
                .get_or_init(|| {
                    let mut roots = rustls::RootCertStore::empty();
                    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                    Arc::new(roots)
                })
                .clone());
        };
        let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &pem[..])
            .collect::<Result<_, _>>()
            .map_err(|e| format!("unable to load root certificates: {e}"))?;
        let mut roots = rustls::RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(
                "unable to load root certificates: no certificates found in caBundle".into(),
            );
        }
        Ok(Arc::new(roots))
    }

    /// POSTs `body` to `target` and returns the answer's body; errors read
    /// as upstream's (`Post "<url>": <cause>`).
    pub async fn post(
        &self,
        target: &Target,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, String> {
        let call = self.exchange(target, body);
        match tokio::time::timeout(timeout, call).await {
            Ok(r) => r.map_err(|e| format!("Post \"{}\": {e}", target.url)),
            Err(_) => Err(format!(
                "Post \"{}\": context deadline exceeded",
                target.url
            )),
        }
    }

    async fn exchange(&self, target: &Target, body: Vec<u8>) -> Result<Vec<u8>, String> {
        let roots = self.roots(target.ca_bundle.as_deref())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = ServerName::try_from(target.server_name.clone())
            .map_err(|e| format!("invalid server name {:?}: {e}", target.server_name))?;
        let addr = authority(&target.host, target.port);
        let tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("dial tcp {addr}: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(
            hyper_util::rt::TokioIo::new(tls),
        )
        .await
        .map_err(|e| e.to_string())?;
        // The connection is driven beside the request and ends with it,
        // also when the timeout drops this future.
        let _driven = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        let request = hyper::Request::post(&target.path)
            .header(
                hyper::header::HOST,
                authority(&target.server_name, target.port),
            )
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        async {
            let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if !status.is_success() {
                let text = String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned();
                return Err(format!(
                    "an error on the server ({text:?}) has prevented the request from succeeding (status {})",
                    status.as_u16()
                ));
            }
            Ok(body.to_vec())
        }
        .await
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
