//! The HTTPS endpoint: `POST /mutate` takes an AdmissionReview and
//! answers one; `/healthz`, `/readyz` and `/metrics` as every daemon.

use crate::policy::Policy;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use k8s_openapi::api::apps::v1::Deployment;
use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use prometheus::IntCounterVec;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The largest AdmissionReview read (the apiserver sends objects up to
/// its own request limit of 3 MiB, twice for an update).
const MAX_REVIEW_BYTES: usize = 7 << 20;

pub struct Webhook {
    pub policy: Policy,
    pub health: Arc<common::serving::Health>,
    requests: IntCounterVec,
}

impl Webhook {
    pub fn new(policy: Policy) -> Arc<Webhook> {
        let registry = prometheus::Registry::new();
        let requests = IntCounterVec::new(
            prometheus::Opts::new(
                "policy_webhook_admission_requests_total",
                "AdmissionReviews answered, by decision (allowed, patched, denied, invalid).",
            ),
            &["decision"],
        )
        .expect("a valid metric");
        registry
            .register(Box::new(requests.clone()))
            .expect("registered once");
        let health = common::serving::Health::new(registry);
        health.set_ready();
        Arc::new(Webhook {
            policy,
            health,
            requests,
        })
    }

    /// The answer to one AdmissionReview body.
    pub fn answer(&self, body: &[u8]) -> Response<Full<Bytes>> {
        let review: AdmissionReview<Deployment> = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return self.invalid(format!("the body is not an AdmissionReview: {e}")),
        };
        let request: AdmissionRequest<Deployment> = match review.try_into() {
            Ok(r) => r,
            Err(e) => return self.invalid(format!("the AdmissionReview has no request: {e}")),
        };
        let response = self.policy.review(&request);
        let decision = match (response.allowed, response.patch.is_some()) {
            (false, _) => "denied",
            (true, true) => "patched",
            (true, false) => "allowed",
        };
        self.requests.with_label_values(&[decision]).inc();
        tracing::info!(
            namespace = request.namespace.as_deref().unwrap_or(""),
            name = %request.name,
            operation = ?request.operation,
            decision,
            "reviewed"
        );
        json(StatusCode::OK, &response.into_review())
    }

    fn invalid(&self, message: String) -> Response<Full<Bytes>> {
        self.requests.with_label_values(&["invalid"]).inc();
        tracing::warn!("{message}");
        json(
            StatusCode::BAD_REQUEST,
            &AdmissionResponse::invalid(message).into_review(),
        )
    }

    async fn handle(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        match (req.method(), req.uri().path()) {
            (&Method::POST, "/mutate") => {
                match Limited::new(req.into_body(), MAX_REVIEW_BYTES)
                    .collect()
                    .await
                {
                    Ok(body) => self.answer(&body.to_bytes()),
                    Err(e) => self.invalid(format!("reading the body: {e}")),
                }
            }
            (&Method::GET, path) => self.health.respond(path),
            _ => Response::builder()
                .status(StatusCode::METHOD_NOT_ALLOWED)
                .body(Full::new(Bytes::from_static(b"method not allowed\n")))
                .expect("a valid response"),
        }
    }
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).expect("serializable");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

/// Serves `webhook` over TLS on `listener` until `shutdown` resolves;
/// connections in flight are not waited for (the apiserver retries
/// nothing, but a rolling update replaces this pod only after its
/// successor is ready).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    webhook: Arc<Webhook>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let (acceptor, webhook) = (acceptor.clone(), webhook.clone());
        tokio::spawn(async move {
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp));
            let Ok(Ok(tls)) = handshake.await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let webhook = webhook.clone();
                async move { Ok::<_, std::convert::Infallible>(webhook.handle(req).await) }
            });
            let io = hyper_util::rt::TokioIo::new(tls);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(io, service)
                    .await;
        });
    }
}
