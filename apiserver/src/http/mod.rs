//! HTTPS serving: TLS, authentication, routing of non-resource paths; the
//! resource verbs are in [`resource`].

pub mod audit;
pub mod connect;
pub mod request;
pub mod resource;
pub mod response;
pub mod review;

use crate::auth::{TokenFile, UserInfo, user_from_certificate};
use crate::discovery::{AGGREGATED_V2, Discovery};
use crate::error::ApiError;
use crate::openapi::OpenApi;
use crate::registry::Registry;
use crate::registry::store::Store;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use request::{Route, parse_path};
use response::{Body, error_response, full, json_bytes};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

/// Everything a request handler needs, shared by all connections.
pub struct App {
    pub registry: &'static Registry,
    /// The resources CustomResourceDefinitions add.
    pub custom: Arc<crate::apiextensions::CustomResources>,
    pub store: Store,
    pub discovery: Discovery,
    /// Rebuilt when CustomResourceDefinitions change what is served.
    pub openapi: std::sync::RwLock<Arc<OpenApi>>,
    pub tokens: TokenFile,
    /// `--enable-bootstrap-token-auth`.
    pub bootstrap_tokens: Option<crate::auth::bootstrap_token::BootstrapTokens>,
    /// `--anonymous-auth` (and an authorizer other than AlwaysAllow).
    pub anonymous: bool,
    /// Shared with admission (CEL's `authorizer`).
    pub authorizer: Arc<crate::authz::Authorizer>,
    pub sa_tokens: crate::serviceaccount::Tokens,
    pub version: Bytes,
    pub shutdown: watch::Receiver<bool>,
    /// Watches without timeoutSeconds last between this and twice this.
    pub min_request_timeout: u64,
    pub readonly_slots: Semaphore,
    pub mutating_slots: Semaphore,
    pub kubelet: crate::kubelet::KubeletClient,
    /// `--audit-policy-file` and `--audit-log-path`, when both are given.
    pub auditor: Option<Arc<crate::audit::Auditor>>,
}

/// What the audit event of a request needs from the connection.
struct Received {
    peer: Option<std::net::IpAddr>,
    at: jiff::Timestamp,
    audit_id: String,
}

/// Paths anyone may read (upstream's system:public-info-viewer).
fn is_public(route: &Route) -> bool {
    matches!(
        route,
        Route::Healthz | Route::Livez | Route::Readyz | Route::Version
    )
}

/// The object a POST of a computed (never stored) kind carries.
async fn object_of(
    req: Request<Incoming>,
    expected: (&str, &str),
) -> Result<serde_json::Value, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let body = resource::read_body(req).await?;
    let obj = resource::decode_body(&content_type, &body, expected)?;
    audit::note_request_object(&obj);
    Ok(obj)
}

fn bearer_token(req: &Request<Incoming>) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl App {
    pub fn openapi(&self) -> Arc<OpenApi> {
        self.openapi.read().expect("openapi lock").clone()
    }

    /// Serves one request; every response carries its `Audit-ID`.
    async fn handle(
        self: Arc<Self>,
        cert_user: Option<UserInfo>,
        peer: Option<std::net::IpAddr>,
        req: Request<Incoming>,
    ) -> Response<Body> {
        let header = req.headers().get("Audit-ID").and_then(|v| v.to_str().ok());
        let got = Received {
            peer,
            at: jiff::Timestamp::now(),
            audit_id: crate::audit::new_audit_id(header),
        };
        let id = http::HeaderValue::from_str(&got.audit_id).ok();
        let mut response = self.authenticated(cert_user, &got, req).await;
        if let Some(id) = id {
            response.headers_mut().insert("Audit-ID", id);
        }
        response
    }

    async fn bootstrap_token(&self, token: &str) -> Option<Result<UserInfo, &'static str>> {
        self.bootstrap_tokens.as_ref()?.authenticate(token).await
    }

    /// The audit event of a request, when the policy records it.
    fn audit_begin(
        &self,
        attrs: &crate::authz::Attributes,
        route: &Route,
        uid: &str,
        got: &Received,
        req: &Request<Incoming>,
    ) -> Option<audit::Recording> {
        let auditor = self.auditor.as_ref()?;
        let version = match route {
            Route::Resource(p) => p.version.as_str(),
            _ => "",
        };
        let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
        let ips =
            crate::audit::source_ips(header("X-Forwarded-For"), header("X-Real-Ip"), got.peer);
        let uri = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let meta = crate::audit::RequestMeta {
            audit_id: &got.audit_id,
            request_uri: uri,
            user_uid: uid,
            source_ips: &ips,
            user_agent: header("User-Agent").unwrap_or(""),
            received: got.at,
        };
        let rattrs = crate::audit::RequestAttributes::from_authz(attrs, version);
        let ev = auditor.begin(&rattrs, &meta)?;
        Some(audit::Recording::new(auditor.clone(), ev))
    }

    /// Authentication, authorization and auditing, then the route.
    async fn authenticated(
        self: Arc<Self>,
        cert_user: Option<UserInfo>,
        got: &Received,
        req: Request<Incoming>,
    ) -> Response<Body> {
        let route = parse_path(req.uri().path());
        let user = match (cert_user, bearer_token(&req)) {
            (Some(u), _) => Some(u),
            (None, Some(t)) => match self.tokens.authenticate(t) {
                Some(u) => Some(u),
                None if let Some(result) = self.bootstrap_token(t).await => match result {
                    Ok(u) => Some(u),
                    Err(why) => {
                        tracing::debug!(%why, "bootstrap token refused");
                        return self.unauthorized(&route, got, &req);
                    }
                },
                None => match self
                    .sa_tokens
                    .authenticate(&self.store, self.registry, t)
                    .await
                {
                    Some(Ok(u)) => Some(u),
                    Some(Err(why)) => {
                        tracing::debug!(%why, "service account token refused");
                        return self.unauthorized(&route, got, &req);
                    }
                    None => return self.unauthorized(&route, got, &req),
                },
            },
            (None, None) if self.anonymous => Some(UserInfo::anonymous()),
            (None, None) => None,
        };
        // Health and version stay readable without credentials even when
        // anonymous requests are off (upstream would answer 401).
        if user.is_none() && !is_public(&route) {
            return self.unauthorized(&route, got, &req);
        }
        let Some(u) = &user else {
            return self.route(user, route, req).await;
        };
        let attrs =
            crate::authz::attributes(u, req.method(), &route, req.uri().path(), req.uri().query());
        let recording = self.audit_begin(&attrs, &route, &u.uid, got, &req);
        let decision = self.authorizer.authorize(&attrs);
        if let Some(r) = &recording {
            let (allowed, why) = match &decision {
                crate::authz::Decision::Allow => (true, ""),
                crate::authz::Decision::Deny(w) | crate::authz::Decision::NoOpinion(w) => {
                    (false, w.as_str())
                }
            };
            r.with(|ev| ev.set_authorization(allowed, why));
            r.emit(crate::audit::Stage::RequestReceived);
        }
        let response = match decision {
            crate::authz::Decision::Allow => match &recording {
                Some(r) => r.clone().scope(self.route(user, route, req)).await,
                None => self.route(user, route, req).await,
            },
            crate::authz::Decision::Deny(why) | crate::authz::Decision::NoOpinion(why) => {
                let e = crate::authz::forbidden(&attrs, &why);
                if let Some(r) = &recording {
                    r.with(|ev| ev.set_response_object(&e.status()));
                }
                error_response(&e)
            }
        };
        let long_running = attrs.verb == "watch"
            || matches!(
                attrs.subresource.as_str(),
                "exec" | "attach" | "portforward" | "proxy" | "log"
            );
        match recording {
            Some(r) => r.finish(response, long_running),
            None => response,
        }
    }

    /// 401, audited as upstream's failed authentication (one
    /// `ResponseStarted` event, no user).
    fn unauthorized(
        &self,
        route: &Route,
        got: &Received,
        req: &Request<Incoming>,
    ) -> Response<Body> {
        let anonymous = UserInfo {
            name: String::new(),
            uid: String::new(),
            groups: Vec::new(),
        };
        let attrs = crate::authz::attributes(
            &anonymous,
            req.method(),
            route,
            req.uri().path(),
            req.uri().query(),
        );
        if let Some(r) = self.audit_begin(&attrs, route, "", got, req) {
            r.with(|ev| {
                ev.set_failed_authentication(&crate::audit::failed_authentication_message(&[
                    "x509", "bearer",
                ]));
                ev.set_response_code(401);
            });
            r.emit(crate::audit::Stage::ResponseStarted);
        }
        error_response(&ApiError::unauthorized())
    }

    /// Serves an authenticated, authorized request.
    async fn route(
        self: &Arc<Self>,
        user: Option<UserInfo>,
        route: Route,
        req: Request<Incoming>,
    ) -> Response<Body> {
        match route {
            Route::Healthz | Route::Livez => text(StatusCode::OK, "ok"),
            Route::Readyz => {
                if *self.shutdown.borrow() {
                    text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "[-]shutdown failed: reason withheld\nreadyz check failed",
                    )
                } else if self.store.storage().healthy().await {
                    text(StatusCode::OK, "ok")
                } else {
                    text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "[-]etcd failed: reason withheld\nreadyz check failed",
                    )
                }
            }
            Route::Version => json_bytes(StatusCode::OK, self.version.clone()),
            Route::Metrics => Response::builder()
                .header(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )
                .body(full(crate::metrics::render()))
                .expect("valid response"),
            Route::OpenApiV2 => self.openapi_response(&req, self.openapi().v2().clone()),
            Route::OpenApiV3Index => json_bytes(StatusCode::OK, self.openapi().v3_index().clone()),
            Route::OpenApiV3(path) => match self.openapi().v3(&path) {
                Some(doc) => self.openapi_response(&req, doc.clone()),
                None => error_response(&ApiError::no_route()),
            },
            Route::CoreVersions => {
                let docs = self.discovery.docs();
                self.discovery_response(&req, &docs.api, &docs.api_aggregated)
            }
            Route::Groups => {
                let docs = self.discovery.docs();
                self.discovery_response(&req, &docs.apis, &docs.apis_aggregated)
            }
            Route::Group(g) => match self.discovery.docs().groups.get(&g) {
                Some(doc) => json_bytes(StatusCode::OK, doc.clone()),
                None => error_response(&ApiError::no_route()),
            },
            Route::ResourceList(path) => match self.discovery.docs().resource_lists.get(&path) {
                Some(doc) => json_bytes(StatusCode::OK, doc.clone()),
                None => error_response(&ApiError::no_route()),
            },
            Route::Resource(path)
                if path.group == "authentication.k8s.io"
                    && path.resource == "selfsubjectreviews" =>
            {
                match (req.method(), &user) {
                    (&Method::POST, Some(u)) => review::self_subject_review(u),
                    _ => error_response(&ApiError::method_not_supported(
                        &path.group,
                        &path.resource,
                        req.method().as_str(),
                    )),
                }
            }
            Route::OpenIdConfiguration => json_bytes(
                StatusCode::OK,
                self.sa_tokens.openid_configuration().to_string().into(),
            ),
            Route::Jwks => json_bytes(StatusCode::OK, self.sa_tokens.jwks().to_string().into()),
            Route::Resource(path)
                if path.group.is_empty()
                    && path.resource == "serviceaccounts"
                    && path.subresource.as_deref() == Some("token") =>
            {
                if req.method() != Method::POST {
                    return error_response(&ApiError::method_not_supported(
                        "",
                        "serviceaccounts/token",
                        req.method().as_str(),
                    ));
                }
                let body = match object_of(req, ("authentication.k8s.io/v1", "TokenRequest")).await
                {
                    Ok(b) => b,
                    Err(e) => return error_response(&e),
                };
                let ns = path.namespace.clone().unwrap_or_default();
                let name = path.name.clone().unwrap_or_default();
                match self
                    .sa_tokens
                    .token_request(&self.store, self.registry, &ns, &name, body)
                    .await
                {
                    Ok(v) => response::object(StatusCode::CREATED, &v, response::Format::Json, &[]),
                    Err(e) => error_response(&e),
                }
            }
            Route::Resource(path)
                if path.group == "authorization.k8s.io"
                    && review::AccessReview::of(&path.resource).is_some() =>
            {
                let (kind_of, kind) = review::AccessReview::of(&path.resource).expect("checked");
                let (Some(u), &Method::POST) = (&user, req.method()) else {
                    return error_response(&ApiError::method_not_supported(
                        &path.group,
                        &path.resource,
                        req.method().as_str(),
                    ));
                };
                let u = u.clone();
                let body = match object_of(req, ("authorization.k8s.io/v1", kind)).await {
                    Ok(b) => b,
                    Err(e) => return error_response(&e),
                };
                review::access_review(
                    &self.authorizer,
                    &u,
                    kind_of,
                    kind,
                    path.namespace.as_deref(),
                    body,
                )
            }
            Route::Resource(path) => {
                let started = Instant::now();
                resource::handle(self, user.map(Arc::new), path, req, started).await
            }
            Route::NotFound => error_response(&ApiError::no_route()),
        }
    }

    fn discovery_response(
        &self,
        req: &Request<Incoming>,
        plain: &Bytes,
        aggregated: &Bytes,
    ) -> Response<Body> {
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if accept.contains("g=apidiscovery.k8s.io;v=v2")
            && accept.contains("as=APIGroupDiscoveryList")
        {
            Response::builder()
                .header(header::CONTENT_TYPE, AGGREGATED_V2)
                .header(header::VARY, "Accept")
                .body(full(aggregated.clone()))
                .expect("valid response")
        } else {
            json_bytes(StatusCode::OK, plain.clone())
        }
    }

    /// OpenAPI documents are immutable per hash: let clients cache them.
    fn openapi_response(&self, req: &Request<Incoming>, doc: Bytes) -> Response<Body> {
        let etag = format!("\"{:016x}\"", fxhash(&doc));
        if req
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            == Some(etag.as_str())
        {
            return Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .body(full(Bytes::new()))
                .expect("valid");
        }
        let cache = if req.uri().query().is_some_and(|q| q.contains("hash=")) {
            "public, immutable"
        } else {
            "no-cache, private"
        };
        Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ETAG, etag)
            .header(header::CACHE_CONTROL, cache)
            .body(full(doc))
            .expect("valid response")
    }
}

fn fxhash(data: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("X-Content-Type-Options", "nosniff")
        .body(full(Bytes::from_static(body.as_bytes())))
        .expect("valid response")
}

/// Answers one request of a connection whose client certificate (if any)
/// named `user`.
pub async fn respond(
    app: Arc<App>,
    user: Option<UserInfo>,
    peer: Option<std::net::IpAddr>,
    req: Request<Incoming>,
) -> Response<Body> {
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let _inflight = crate::metrics::InflightGuard::new(mutating);
    app.handle(user, peer, req).await
}

/// Accepts TLS connections until `shutdown` flips, serving HTTP/1.1 and
/// HTTP/2 (ALPN). In-flight requests get `grace` to finish.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    mut shutdown: watch::Receiver<bool>,
    grace: std::time::Duration,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = Arc::new(hyper_util::server::conn::auto::Builder::new(
        hyper_util::rt::TokioExecutor::new(),
    ));
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(
                std::time::Duration::from_secs(10),
                acceptor.accept(tcp),
            )
            .await
            {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let user = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|c| user_from_certificate(c.as_ref()));
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                let user = user.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(
                        respond(app, user, Some(peer.ip()), req).await,
                    )
                }
            });
            let io = hyper_util::rt::TokioIo::new(tls);
            let conn = builder.serve_connection_with_upgrades(io, service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections drained"),
        _ = tokio::time::sleep(grace) => tracing::warn!("shutdown grace expired with connections open"),
    }
}
