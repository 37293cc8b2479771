//! The daemons' own HTTPS endpoint (`--secure-port`): `/healthz`,
//! `/livez`, `/readyz` and `/metrics`, served with a self-signed
//! certificate made at start, as upstream's components do without
//! `--tls-cert-file`.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    #[error("making the self-signed serving certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("building the TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// A certificate chain and its key.
pub type Identity = (
    Vec<rustls_pki_types::CertificateDer<'static>>,
    rustls_pki_types::PrivateKeyDer<'static>,
);

/// A fresh self-signed certificate for `hosts`.
pub fn self_signed_pem(hosts: &[String], name: &str) -> Result<Identity, ServingError> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(hosts.to_vec())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} self-signed"));
    let cert = params.self_signed(&key)?;
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    Ok((vec![cert.der().clone()], key))
}

/// A TLS configuration with a fresh self-signed certificate for `hosts`.
pub fn self_signed(
    hosts: &[String],
    name: &str,
) -> Result<Arc<rustls::ServerConfig>, ServingError> {
    let (certs, key) = self_signed_pem(hosts, name)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The certificates of a PEM file.
pub fn read_certs(
    path: &std::path::Path,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", path.display()));
    }
    Ok(certs)
}

/// A certificate chain and key from PEM files (`--tls-cert-file`,
/// `--tls-private-key-file`).
pub fn read_pem(cert: &std::path::Path, key: &std::path::Path) -> Result<Identity, String> {
    let certs = read_certs(cert)?;
    let key_pem = std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| format!("{}: {e}", key.display()))?
        .ok_or_else(|| format!("{}: no private key found", key.display()))?;
    Ok((certs, key_der))
}

/// The user a client certificate (DER) names: its CN and, as groups, its
/// O entries, as Kubernetes reads x509 identities.
pub fn certificate_identity(der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(String::from))
        .collect();
    Some((name, groups))
}

/// What the endpoint reports: readiness (caches synced, leader or not) and
/// the metrics registry.
pub struct Health {
    pub ready: AtomicBool,
    pub registry: prometheus::Registry,
}

impl Health {
    pub fn new(registry: prometheus::Registry) -> Arc<Self> {
        Arc::new(Health {
            ready: AtomicBool::new(false),
            registry,
        })
    }

    /// Marks the daemon ready; the first time, systemd is told too.
    pub fn set_ready(&self) {
        if !self.ready.swap(true, Ordering::SeqCst) {
            crate::systemd::ready();
        }
    }

    pub fn respond(&self, path: &str) -> Response<Full<Bytes>> {
        let text = |code: StatusCode, body: String, ct: &'static str| {
            Response::builder()
                .status(code)
                .header(header::CONTENT_TYPE, ct)
                .body(Full::new(Bytes::from(body)))
                .expect("valid response")
        };
        match path {
            "/healthz" | "/livez" => text(StatusCode::OK, "ok".into(), "text/plain"),
            "/readyz" if self.ready.load(Ordering::SeqCst) => {
                text(StatusCode::OK, "ok".into(), "text/plain")
            }
            "/readyz" => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: caches are not synced yet".into(),
                "text/plain",
            ),
            "/metrics" => {
                let mut out = String::new();
                let families = self.registry.gather();
                let _ = prometheus::TextEncoder::new().encode_utf8(&families, &mut out);
                text(StatusCode::OK, out, "text/plain; version=0.0.4")
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "404 page not found".into(),
                "text/plain",
            ),
        }
    }
}

/// Serves `health` on `listener` (if any) in `tasks`, over TLS with a
/// certificate for `name` made now, until `stop` turns true.
pub fn spawn(
    listener: Option<TcpListener>,
    name: &str,
    health: Arc<Health>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Result<(), ServingError> {
    let Some(listener) = listener else {
        return Ok(());
    };
    let tls = self_signed(&["localhost".into(), "127.0.0.1".into()], name)?;
    tasks.spawn(serve(listener, Some(tls), health, async move {
        let _ = stop.wait_for(|s| *s).await;
    }));
    Ok(())
}

/// Serves `health` on `listener` until `shutdown` resolves: over TLS, or
/// plain HTTP without `tls` (the kubelet's localhost healthz port).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    serve_with(
        listener,
        tls,
        Arc::new(move |path: &str| health.respond(path)),
        shutdown,
    )
    .await
}

/// What answers a GET of a path.
pub type Responder = Arc<dyn Fn(&str) -> Response<Full<Bytes>> + Send + Sync>;

/// Serves `respond` on `listener` until `shutdown` resolves (see [`serve`]).
pub async fn serve_with(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    respond: Responder,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let respond = respond.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let response = respond(req.uri().path());
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
            let http = hyper::server::conn::http1::Builder::new();
            match acceptor {
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        acceptor.accept(tcp),
                    );
                    if let Ok(Ok(tls)) = handshake.await {
                        let io = hyper_util::rt::TokioIo::new(tls);
                        let _ = http.serve_connection(io, service).await;
                    }
                }
                None => {
                    let io = hyper_util::rt::TokioIo::new(tcp);
                    let _ = http.serve_connection(io, service).await;
                }
            }
        });
    }
}
