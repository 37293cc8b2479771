//! The kubelet's endpoints: plain-HTTP `/healthz` on
//! `--healthz-bind-address:--healthz-port` (127.0.0.1:10248), and the
//! HTTPS kubelet API on `--address:--port` (10250): `/healthz`,
//! `/metrics`, `/metrics/cadvisor`, `/pods`, `/containerLogs/...`, and the
//! streaming endpoints (`streaming.rs`).
//!
//! Authentication is by client certificate against
//! `authentication.x509.clientCAFile`; without it (or with
//! `anonymous.enabled`) requests without a certificate are served too, as
//! `system:anonymous`. Authorization is `authz.rs`.

pub mod authz;
pub mod cadvisor;
pub mod logs;
pub mod streaming;

use crate::RunError;
use crate::options::Settings;
use crate::pods::Ctx;
use bytes::Bytes;
use common::serving::Health;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

pub type Body = BoxBody<Bytes, Infallible>;

/// What the handlers share; the pods part is there once the node is
/// registered.
pub struct State {
    pub health: Arc<Health>,
    pub ctx: tokio::sync::OnceCell<Arc<Ctx>>,
    pub anonymous: bool,
    pub authorizer: authz::Authorizer,
    pub client: kube::Client,
}

pub fn full(code: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()).boxed())
        .expect("valid response")
}

/// A request refused with a status and why (kept small: a Response is
/// built only at the end).
#[derive(Debug)]
pub struct Refusal(pub StatusCode, pub String);

impl Refusal {
    pub fn into_response(self) -> Response<Body> {
        text(self.0, self.1)
    }
}

pub fn text(code: StatusCode, body: impl Into<String>) -> Response<Body> {
    full(code, "text/plain; charset=utf-8", body.into())
}

/// A streamed body fed by `rx`.
pub fn streamed(content_type: &str, rx: tokio::sync::mpsc::Receiver<Bytes>) -> Response<Body> {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("valid response")
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, RunError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| RunError::Listen(addr, e))
}

fn tls(settings: &Settings) -> Result<Arc<rustls::ServerConfig>, RunError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (certs, key) = match (&settings.tls_cert_file, &settings.tls_private_key_file) {
        (Some(cert), Some(key)) => {
            common::serving::read_pem(cert, key).map_err(RunError::Config)?
        }
        _ => {
            let hosts = vec![
                settings.node_name.clone(),
                "localhost".into(),
                "127.0.0.1".into(),
            ];
            common::serving::self_signed_pem(&hosts, "kubelet")
                .map_err(|e| RunError::Config(e.to_string()))?
        }
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| RunError::Config(e.to_string()))?;
    let builder = match &settings.client_ca_file {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in common::serving::read_certs(ca).map_err(RunError::Config)? {
                roots
                    .add(c)
                    .map_err(|e| RunError::Config(format!("{}: {e}", ca.display())))?;
            }
            // A certificate is optional at the handshake: /healthz is open,
            // the rest checks for one.
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .allow_unauthenticated()
            .build()
            .map_err(|e| RunError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| RunError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Binds both listeners (failing at start if a port is taken) and serves
/// them in `tasks` until `stop`.
pub async fn spawn(
    settings: &Settings,
    state: Arc<State>,
    stop: tokio::sync::watch::Receiver<bool>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Result<(), RunError> {
    if settings.healthz_port != 0 {
        let addr = SocketAddr::new(settings.healthz_bind_address, settings.healthz_port);
        let l = bind(addr).await?;
        let mut stop = stop.clone();
        tasks.spawn(common::serving::serve(
            l,
            None,
            state.health.clone(),
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        ));
    }
    if settings.port != 0 {
        let l = bind(SocketAddr::new(settings.address, settings.port)).await?;
        let acceptor = tokio_rustls::TlsAcceptor::from(tls(settings)?);
        tasks.spawn(serve(l, acceptor, state, stop));
    }
    Ok(())
}

async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    state: Arc<State>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (tcp, _) = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp));
            let Ok(Ok(tls)) = handshake.await else { return };
            let user = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| common::serving::certificate_identity(c))
                .map(|(name, groups)| authz::User { name, groups });
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                let user = user.clone();
                async move { Ok::<_, Infallible>(route(state, user, req).await) }
            });
            let io = hyper_util::rt::TokioIo::new(tls);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades()
                .await;
        });
    }
}

async fn route(
    state: Arc<State>,
    user: Option<authz::User>,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == "/healthz" || path.starts_with("/healthz/") {
        return text(StatusCode::OK, "ok");
    }
    let user = match user {
        Some(u) => u,
        None if state.anonymous => authz::User::anonymous(),
        None => return text(StatusCode::UNAUTHORIZED, "Unauthorized"),
    };
    if let Err(why) = state
        .authorizer
        .check(Some(&state.client), &user, req.method(), &path)
        .await
    {
        return text(StatusCode::FORBIDDEN, why);
    }
    if path == "/metrics" {
        let r = state.health.respond(&path);
        let (parts, body) = r.into_parts();
        return Response::from_parts(parts, body.boxed());
    }
    let Some(ctx) = state.ctx.get().cloned() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the kubelet is starting: the node is not registered yet",
        );
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let query = req.uri().query().unwrap_or_default().to_string();
    match segments.as_slice() {
        ["pods"] | ["pods", ""] => pods(&ctx),
        ["metrics", "cadvisor"] => cadvisor::render(&ctx).await,
        ["containerLogs", ns, pod, container] => {
            container_logs(&ctx, ns, pod, container, &query).await
        }
        ["exec", ..] | ["attach", ..] | ["portForward", ..] => {
            streaming::handle(&ctx, req, &segments).await
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

fn pods(ctx: &Ctx) -> Response<Body> {
    let items: Vec<serde_json::Value> = ctx
        .pods
        .read()
        .expect("pods")
        .values()
        .map(|p| serde_json::to_value(p.as_ref()).unwrap_or_default())
        .collect();
    let list =
        serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items});
    full(StatusCode::OK, "application/json", list.to_string())
}

/// The newest instance of `container` in pod `ns/pod` (or the one before
/// it), as (id, log path, running).
pub async fn find_container(
    ctx: &Ctx,
    ns: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Result<(String, String, bool), Refusal> {
    use crate::cri::{api, labels};
    let filter = api::ContainerFilter {
        label_selector: std::collections::HashMap::from([
            (labels::POD_NAMESPACE.to_string(), ns.to_string()),
            (labels::POD_NAME.to_string(), pod.to_string()),
            (labels::CONTAINER_NAME.to_string(), container.to_string()),
        ]),
        ..Default::default()
    };
    let mut found = ctx
        .runtime
        .containers(Some(filter))
        .await
        .map_err(|e| Refusal(StatusCode::INTERNAL_SERVER_ERROR, e.message().to_string()))?;
    found.sort_by_key(|c| {
        std::cmp::Reverse((c.metadata.as_ref().map_or(0, |m| m.attempt), c.created_at))
    });
    let pick = found.get(usize::from(previous)).ok_or_else(|| {
        let why = if previous {
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")
        } else {
            format!("container \"{container}\" in pod \"{pod}\" is not available")
        };
        Refusal(StatusCode::NOT_FOUND, why)
    })?;
    let status = ctx
        .runtime
        .container_status(&pick.id)
        .await
        .map_err(|e| Refusal(StatusCode::INTERNAL_SERVER_ERROR, e.message().to_string()))?;
    let running = status.state == api::ContainerState::ContainerRunning as i32;
    Ok((pick.id.clone(), status.log_path, running))
}

async fn container_logs(
    ctx: &Arc<Ctx>,
    ns: &str,
    pod: &str,
    container: &str,
    query: &str,
) -> Response<Body> {
    let options = match logs::Options::parse(query) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let (id, path, _) = match find_container(ctx, ns, pod, container, options.previous).await {
        Ok(found) => found,
        Err(r) => return r.into_response(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let runtime = ctx.runtime.clone();
    let running = move || -> futures::future::BoxFuture<'static, bool> {
        let runtime = runtime.clone();
        let id = id.clone();
        Box::pin(async move {
            runtime
                .container_status(&id)
                .await
                .is_ok_and(|s| s.state == crate::cri::api::ContainerState::ContainerRunning as i32)
        })
    };
    tokio::spawn(logs::stream(path.into(), options, running, tx));
    streamed("text/plain", rx)
}
