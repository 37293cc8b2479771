//! The request path as a fuzz target: arbitrary bytes become an HTTP/1.1
//! request (method, path and query, headers, body) that the whole handler
//! chain (authentication, authorization, admission, the store) answers
//! over an in-memory connection, with the in-memory storage standing in
//! for etcd. The invariant: no panic, and every error our code answers
//! with is a `metav1.Status` whose code is the HTTP status.
//!
//! `fuzz/` runs it under cargo-fuzz (`hack/fuzz.sh`); the unit test below
//! runs a bounded, deterministic corpus on every `cargo test`.

use crate::admission::{self, Chain};
use crate::allocator::Allocator;
use crate::auth::TokenFile;
use crate::http::{self, App};
use crate::registry::Registry;
use crate::registry::store::Store;
use crate::storage::Storage;
use crate::storage::memory::MemoryStorage;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

pub const ADMIN_TOKEN: &str = "fuzz-admin-token";
pub const USER_TOKEN: &str = "fuzz-user-token";

pub struct Harness {
    rt: tokio::runtime::Runtime,
    app: Arc<App>,
    _shutdown: watch::Sender<bool>,
}

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// A request built from fuzz bytes: `[method byte] path?query \n headers
/// (name: value lines) \n\n body`.
pub struct FuzzRequest {
    pub method: &'static str,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl FuzzRequest {
    pub fn from_bytes(data: &[u8]) -> FuzzRequest {
        let (first, rest) = data.split_first().map(|(f, r)| (*f, r)).unwrap_or((0, &[]));
        let text_end = rest
            .windows(2)
            .position(|w| w == b"\n\n")
            .unwrap_or(rest.len());
        let head = String::from_utf8_lossy(&rest[..text_end]);
        let body = rest.get(text_end + 2..).unwrap_or_default().to_vec();
        let mut lines = head.split('\n');
        // Keep the request line parseable: no spaces or controls in the target.
        let target: String = lines
            .next()
            .unwrap_or("/")
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .collect();
        let target = if target.starts_with('/') {
            target
        } else {
            format!("/{target}")
        };
        let headers = lines
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                let n: String = n
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                let v: String = v.trim().chars().filter(|c| !c.is_control()).collect();
                (!n.is_empty()
                    && !n.eq_ignore_ascii_case("content-length")
                    && !n.eq_ignore_ascii_case("transfer-encoding"))
                .then_some((n, v))
            })
            .collect();
        FuzzRequest {
            method: METHODS[first as usize % METHODS.len()],
            target,
            headers,
            body,
        }
    }
}

impl Harness {
    pub fn new() -> Harness {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let (tx, rx) = watch::channel(false);
        let app = rt.block_on(async move {
            let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
            let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
            let root = "/registry".to_string();
            let allocator = Allocator::new(
                storage.clone(),
                root.clone(),
                "10.96.0.0/24".parse().expect("a CIDR"),
                30000..=30100,
            );
            let mut store = Store::new(storage.clone(), root.clone(), allocator);
            crate::bootstrap::ensure(
                &store,
                registry,
                "10.96.0.1".parse().expect("an IP"),
                "127.0.0.1".parse().expect("an IP"),
                6443,
            )
            .await
            .expect("bootstrap");
            // Webhooks would make the fuzzer's outcome depend on the
            // network (a configuration it writes may name any host).
            let webhooks = [
                "MutatingAdmissionWebhook".to_string(),
                "ValidatingAdmissionWebhook".to_string(),
            ];
            let (plugins, _) = admission::select(&[], &webhooks).expect("the defaults");
            let custom: Arc<crate::apiextensions::CustomResources> = Arc::default();
            let authorizer = Arc::new(crate::authz::Authorizer::new(vec![
                crate::authz::Mode::AlwaysAllow,
            ]));
            let ctx = admission::Context {
                storage: storage.clone(),
                root,
                toleration_seconds: (300, 300),
                served: admission::Served {
                    registry,
                    custom: custom.clone(),
                    authorizer: authorizer.clone(),
                },
            };
            store.set_admission(Chain::new(&plugins, &ctx));
            let tokens = TokenFile::parse(&format!(
                "{ADMIN_TOKEN},admin,1,system:masters\n{USER_TOKEN},alice,2,developers\n"
            ))
            .expect("tokens");
            Arc::new(App {
                registry,
                custom,
                store,
                discovery: crate::discovery::Discovery::new(registry),
                openapi: std::sync::RwLock::new(Arc::new(crate::openapi::OpenApi::build(
                    &crate::openapi_resources(registry),
                ))),
                tokens,
                bootstrap_tokens: None,
                anonymous: true,
                authorizer,
                sa_tokens: crate::serviceaccount::Tokens::new(
                    None,
                    &[],
                    Vec::new(),
                    Vec::new(),
                    None,
                )
                .expect("no keys"),
                version: Bytes::from_static(b"{}"),
                shutdown: rx,
                min_request_timeout: 1,
                readonly_slots: Semaphore::new(100),
                mutating_slots: Semaphore::new(100),
                kubelet: crate::kubelet::KubeletClient::new(None, None, None, "InternalIP")
                    .expect("a kubelet client"),
                auditor: None,
            })
        });
        Harness {
            rt,
            app,
            _shutdown: tx,
        }
    }

    /// Answers one request; panics when the invariant does not hold.
    /// Returns the status when a response came in time.
    pub fn one(&self, data: &[u8]) -> Option<u16> {
        let req = FuzzRequest::from_bytes(data);
        self.rt.block_on(async {
            // A watch would wait for events: bound every request.
            tokio::time::timeout(Duration::from_secs(2), self.exchange(&req))
                .await
                .ok()
                .flatten()
        })
    }

    /// One request over an in-memory connection. Nothing is spawned, so
    /// when `one` gives up on a request (a watch) everything it holds goes.
    async fn exchange(&self, r: &FuzzRequest) -> Option<u16> {
        let (client, server) = tokio::io::duplex(1 << 20);
        let app = self.app.clone();
        let service = hyper::service::service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, std::convert::Infallible>(http::respond(app, None, None, req).await) }
        });
        let served = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(server), service)
            .with_upgrades();
        let asked = async {
            let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(
                hyper_util::rt::TokioIo::new(client),
            )
            .await
            .ok()?;
            let answer = async {
                let mut builder = hyper::Request::builder().method(r.method).uri(&r.target);
                for (n, v) in &r.headers {
                    builder = builder.header(n.as_str(), v.as_str());
                }
                // Not a request hyper would send, or the connection went.
                let req = builder.body(Full::new(Bytes::from(r.body.clone()))).ok()?;
                let resp = sender.send_request(req).await.ok()?;
                let status = resp.status();
                let ours = resp.headers().contains_key("Audit-ID");
                let json = resp
                    .headers()
                    .get(hyper::header::CONTENT_TYPE)
                    .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
                let body = resp.into_body().collect().await.ok()?.to_bytes();
                Some((status, ours, json, body))
            };
            let got = tokio::select! {
                got = answer => got,
                _ = conn => None,
            };
            let (status, ours, json, body) = got?;
            if ours && status.as_u16() >= 400 && r.method != "HEAD" {
                assert!(
                    json,
                    "{} {}: a {status} that is not JSON",
                    r.method, r.target
                );
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
                    panic!(
                        "{} {}: a {status} body that is not JSON: {e}",
                        r.method, r.target
                    )
                });
                assert_eq!(v["kind"], "Status", "{} {}: {v}", r.method, r.target);
                assert_eq!(v["code"], status.as_u16(), "{} {}: {v}", r.method, r.target);
            }
            Some(status.as_u16())
        };
        // The server ends when the client side (dropped with `asked`) hangs up.
        let (status, _) = tokio::join!(asked, served);
        status
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// Requests a fuzzer would take long to find: every verb on real paths,
/// with credentials of each kind and bodies of each content type.
pub fn seeds() -> Vec<Vec<u8>> {
    let paths = [
        "/api/v1/namespaces/default/configmaps",
        "/api/v1/namespaces/default/configmaps/c1?fieldValidation=Strict&dryRun=All",
        "/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=1",
        "/api/v1/namespaces/default/pods/p/status",
        "/api/v1/namespaces/default/pods/p/binding",
        "/api/v1/namespaces/default/pods/p/eviction",
        "/apis/apps/v1/namespaces/default/deployments/d/scale",
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles?labelSelector=a%3Db,c!=d&limit=2&continue=abc",
        "/api/v1/nodes?fieldSelector=metadata.name%3Dn1",
        "/openapi/v3/apis/apps/v1",
        "/apis",
        "/healthz",
    ];
    let auths = [
        format!("Authorization: Bearer {ADMIN_TOKEN}"),
        format!("Authorization: Bearer {USER_TOKEN}"),
        "Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.e30.sig".to_string(),
        "Authorization: Basic YTpi".to_string(),
        String::new(),
    ];
    let bodies: [(&str, &[u8]); 6] = [
        ("application/json", br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c1"},"data":{"k":"v"}}"#),
        ("application/yaml", b"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x}]}\n"),
        ("application/merge-patch+json", br#"{"metadata":{"labels":{"a":null}}}"#),
        ("application/json-patch+json", br#"[{"op":"replace","path":"/data/k","value":1}]"#),
        ("application/apply-patch+yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c1}\n"),
        ("application/json", b"{\"kind\":\"Status\",\"metadata\":[]}"),
    ];
    let mut out = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        for (j, auth) in auths.iter().enumerate() {
            for (k, (ct, body)) in bodies.iter().enumerate() {
                // Each method once per path, each body with each credential.
                let method = (i + j + k) % METHODS.len();
                let mut seed = vec![method as u8];
                seed.extend_from_slice(format!("{path}\n{auth}\nContent-Type: {ct}\nAccept: application/json;as=Table;v=v1;g=meta.k8s.io\n\n").as_bytes());
                seed.extend_from_slice(body);
                out.push(seed);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small xorshift: the corpus is the same on every run.
    fn mutate(seed: &[u8], state: &mut u64) -> Vec<u8> {
        let mut next = || {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            *state
        };
        let mut out = seed.to_vec();
        for _ in 0..(next() % 4) {
            if out.is_empty() {
                break;
            }
            let at = (next() as usize) % out.len();
            match next() % 3 {
                0 => out[at] = next() as u8,
                1 => {
                    out.remove(at);
                }
                _ => {
                    const SPECIAL: &[u8] = b"{}[]:\"\\%\n=&?/.";
                    out.insert(at, SPECIAL[(next() as usize) % SPECIAL.len()])
                }
            }
        }
        out
    }

    #[test]
    fn the_request_path_answers_any_bytes_with_a_status() {
        let h = Harness::new();
        let mut state = 0x9e37_79b9_7f4a_7c15;
        let seeds = seeds();
        let mut codes = std::collections::BTreeMap::<u16, usize>::new();
        for seed in &seeds {
            *codes.entry(h.one(seed).unwrap_or(0)).or_default() += 1;
        }
        for n in 0..600 {
            *codes
                .entry(
                    h.one(&mutate(&seeds[n % seeds.len()], &mut state))
                        .unwrap_or(0),
                )
                .or_default() += 1;
        }
        // The corpus reaches the handlers: writes succeed and errors come back.
        for want in [200, 201, 400, 401, 404] {
            assert!(codes.contains_key(&want), "no {want} in {codes:?}");
        }
    }
}
