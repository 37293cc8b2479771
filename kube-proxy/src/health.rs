//! The proxier's health as upstream's /healthz on port 10256 reports it:
//! healthy once the rules were synced, and as long as no queued change has
//! waited longer than twice the sync period.

use bytes::Bytes;
use http_body_util::Full;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

pub struct ProxierHealth {
    timeout: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last_updated: Option<SystemTime>,
    /// The oldest change not yet in the rules.
    oldest_queued: Option<SystemTime>,
}

impl ProxierHealth {
    pub fn new(sync_period: Duration) -> Self {
        ProxierHealth {
            timeout: sync_period * 2,
            state: Mutex::default(),
        }
    }

    pub fn queued(&self) {
        let mut s = self.state.lock().expect("not poisoned");
        s.oldest_queued.get_or_insert_with(SystemTime::now);
    }

    /// The rules now hold every change queued before `started`.
    pub fn updated(&self, started: SystemTime) {
        let mut s = self.state.lock().expect("not poisoned");
        s.last_updated = Some(SystemTime::now());
        if s.oldest_queued.is_some_and(|q| q <= started) {
            s.oldest_queued = None;
        }
    }

    pub fn healthy(&self, now: SystemTime) -> bool {
        let s = self.state.lock().expect("not poisoned");
        s.last_updated.is_some()
            && s.oldest_queued
                .is_none_or(|q| now.duration_since(q).unwrap_or_default() < self.timeout)
    }

    pub fn respond(&self, path: &str) -> http::Response<Full<Bytes>> {
        let now = SystemTime::now();
        let (code, body) = match path {
            "/healthz" | "/livez" => {
                let ts = |t: Option<SystemTime>| {
                    t.and_then(|t| jiff::Timestamp::try_from(t).ok())
                        .map(|t| t.to_string())
                        .unwrap_or_default()
                };
                let last = self.state.lock().expect("not poisoned").last_updated;
                let body = serde_json::json!({
                    "lastUpdated": ts(last),
                    "currentTime": ts(Some(now)),
                    "nodeEligible": true,
                });
                let code = if self.healthy(now) { 200 } else { 503 };
                (code, body.to_string())
            }
            _ => (404, "404 page not found".into()),
        };
        http::Response::builder()
            .status(code)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("X-Content-Type-Options", "nosniff")
            .body(Full::new(Bytes::from(body)))
            .expect("valid response")
    }
}

/// Serves `health` on `listener` (plain HTTP, as upstream) until `stop`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    health: std::sync::Arc<ProxierHealth>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let respond = std::sync::Arc::new(move |path: &str| health.respond(path));
    common::serving::serve_with(listener, None, respond, async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhealthy_until_synced_and_when_a_change_waits_too_long() {
        let h = ProxierHealth::new(Duration::from_secs(30));
        let now = SystemTime::now();
        assert!(!h.healthy(now));
        h.updated(now);
        assert!(h.healthy(now));
        h.queued();
        assert!(h.healthy(SystemTime::now()));
        assert!(!h.healthy(SystemTime::now() + Duration::from_secs(61)));
        h.updated(SystemTime::now());
        assert!(h.healthy(SystemTime::now() + Duration::from_secs(61)));
        assert_eq!(h.respond("/healthz").status(), 200);
        assert_eq!(h.respond("/nope").status(), 404);
    }
}
