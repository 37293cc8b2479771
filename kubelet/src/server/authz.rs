//! Authorization of kubelet API requests, as upstream's kubelet:
//! `AlwaysAllow`, or `Webhook`, which asks the apiserver with a
//! SubjectAccessReview whether the caller may `<verb>` the subresource of
//! `nodes/<this node>` the path maps to (`nodes/proxy` for pods, logs and
//! streaming, `nodes/metrics`, `nodes/stats`, `nodes/log`, ...). Answers are
//! cached (allowed 5 min, denied 30 s, as upstream's defaults).

use http::Method;
use kube::Client;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    AlwaysAllow,
    Webhook,
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    pub fn anonymous() -> User {
        User {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        }
    }
}

/// The verb and `nodes` subresource upstream checks for a request.
pub fn attributes(method: &Method, path: &str) -> (&'static str, &'static str) {
    let verb = match *method {
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "get",
    };
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    let sub = match first {
        "stats" => "stats",
        "metrics" => "metrics",
        "logs" => "log",
        "spec" => "spec",
        "checkpoint" => "checkpoint",
        "configz" => "configz",
        "healthz" => "healthz",
        _ => "proxy",
    };
    (verb, sub)
}

type Key = (User, &'static str, &'static str);

/// An answer and when it was given.
type Answer = (Result<(), String>, Instant);

pub struct Authorizer {
    pub mode: Mode,
    node: String,
    cache: Mutex<HashMap<Key, Answer>>,
}

const ALLOWED_TTL: Duration = Duration::from_secs(300);
const DENIED_TTL: Duration = Duration::from_secs(30);

impl Authorizer {
    pub fn new(mode: Mode, node: &str) -> Self {
        Authorizer {
            mode,
            node: node.into(),
            cache: Mutex::default(),
        }
    }

    /// Ok, or why not (upstream's `Forbidden (user=..., verb=..., ...)`).
    pub async fn check(
        &self,
        client: Option<&Client>,
        user: &User,
        method: &Method,
        path: &str,
    ) -> Result<(), String> {
        if self.mode == Mode::AlwaysAllow {
            return Ok(());
        }
        let (verb, sub) = attributes(method, path);
        let key = (user.clone(), verb, sub);
        if let Some((answer, at)) = self.cache.lock().expect("authz cache").get(&key) {
            let ttl = if answer.is_ok() {
                ALLOWED_TTL
            } else {
                DENIED_TTL
            };
            if at.elapsed() < ttl {
                return answer.clone();
            }
        }
        let forbidden = |why: &str| {
            format!(
                "Forbidden (user={}, verb={verb}, resource=nodes, subresource={sub}){why}",
                user.name
            )
        };
        let Some(client) = client else {
            return Err(forbidden(
                ": the kubelet is not connected to the apiserver yet",
            ));
        };
        let review = serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user.name,
                "groups": user.groups,
                "resourceAttributes": {"verb": verb, "resource": "nodes", "subresource": sub, "name": self.node},
            }
        });
        let request = http::Request::post("/apis/authorization.k8s.io/v1/subjectaccessreviews")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&review).unwrap_or_default())
            .map_err(|e| forbidden(&format!(": {e}")))?;
        let answer = match client.request::<serde_json::Value>(request).await {
            Ok(r) if r["status"]["allowed"].as_bool() == Some(true) => Ok(()),
            Ok(r) => {
                let reason = r["status"]["reason"].as_str().unwrap_or_default();
                Err(forbidden(&if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }))
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Err(forbidden(
                ": the apiserver does not serve SubjectAccessReview; use authorization mode AlwaysAllow until it does",
            )),
            // Not cached: the apiserver may be back on the next request.
            Err(e) => return Err(forbidden(&format!(": {e}"))),
        };
        self.cache
            .lock()
            .expect("authz cache")
            .insert(key, (answer.clone(), Instant::now()));
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_node_subresources() {
        assert_eq!(
            attributes(&Method::GET, "/metrics/cadvisor"),
            ("get", "metrics")
        );
        assert_eq!(attributes(&Method::GET, "/stats/summary"), ("get", "stats"));
        assert_eq!(
            attributes(&Method::POST, "/exec/ns/p/c"),
            ("create", "proxy")
        );
        assert_eq!(
            attributes(&Method::GET, "/containerLogs/ns/p/c"),
            ("get", "proxy")
        );
        assert_eq!(attributes(&Method::GET, "/pods"), ("get", "proxy"));
        assert_eq!(attributes(&Method::GET, "/logs/syslog"), ("get", "log"));
    }

    #[tokio::test]
    async fn always_allow_and_webhook_without_a_client() {
        let a = Authorizer::new(Mode::AlwaysAllow, "n1");
        assert!(
            a.check(None, &User::anonymous(), &Method::GET, "/pods")
                .await
                .is_ok()
        );
        let w = Authorizer::new(Mode::Webhook, "n1");
        let e = w
            .check(None, &User::anonymous(), &Method::GET, "/pods")
            .await
            .unwrap_err();
        assert!(
            e.starts_with(
                "Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource=proxy)"
            ),
            "{e}"
        );
    }
}
