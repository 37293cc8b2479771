//! Liveness, readiness and startup probes: one task per probe of each
//! running container instance, with upstream's semantics (initial delay,
//! period, timeout, success and failure thresholds; readiness starts
//! false; liveness and readiness wait for the startup probe). Results are
//! shared with the pod's worker, which is woken on every change: readiness
//! feeds the Ready condition, a failed liveness or startup probe gets the
//! container killed and restarted per the restart policy.

use super::Ctx;
use k8s_openapi::api::core::v1::{Container, HTTPGetAction, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Liveness,
    Readiness,
    Startup,
}

#[derive(Debug, Default)]
pub struct Results {
    pub ready: HashMap<String, bool>,
    pub started: HashMap<String, bool>,
    /// Containers to kill, with why (liveness or startup failed).
    pub failed: HashMap<String, String>,
}

/// The probes of one pod.
pub struct Prober {
    pub results: Arc<Mutex<Results>>,
    pub wake: Arc<Notify>,
    tasks: HashMap<(String, Kind), tokio::task::JoinHandle<()>>,
}

impl Default for Prober {
    fn default() -> Self {
        Prober {
            results: Arc::default(),
            wake: Arc::new(Notify::new()),
            tasks: HashMap::new(),
        }
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        for t in self.tasks.values() {
            t.abort();
        }
    }
}

/// What a probe needs to know about its target.
#[derive(Clone)]
pub struct Target {
    pub container_id: String,
    pub container: Container,
    pub pod_ip: Option<IpAddr>,
}

impl Prober {
    /// Runs the probes of `running` (and only those): new instances get
    /// their tasks, gone ones lose them and their results.
    pub fn sync(&mut self, ctx: &Arc<Ctx>, running: &[Target]) {
        let live: std::collections::HashSet<&str> =
            running.iter().map(|t| t.container_id.as_str()).collect();
        self.tasks.retain(|(id, _), task| {
            let keep = live.contains(id.as_str());
            if !keep {
                task.abort();
            }
            keep
        });
        {
            let mut r = self.results.lock().expect("probe results");
            r.ready.retain(|id, _| live.contains(id.as_str()));
            r.started.retain(|id, _| live.contains(id.as_str()));
            r.failed.retain(|id, _| live.contains(id.as_str()));
        }
        for t in running {
            let c = &t.container;
            for (kind, probe) in [
                (Kind::Startup, &c.startup_probe),
                (Kind::Liveness, &c.liveness_probe),
                (Kind::Readiness, &c.readiness_probe),
            ] {
                let Some(probe) = probe.clone() else { continue };
                let key = (t.container_id.clone(), kind);
                if self.tasks.contains_key(&key) {
                    continue;
                }
                let task = tokio::spawn(run(
                    ctx.clone(),
                    t.clone(),
                    kind,
                    probe,
                    self.results.clone(),
                    self.wake.clone(),
                ));
                self.tasks.insert(key, task);
            }
        }
    }
}

fn secs(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(0) as u64)
}

async fn run(
    ctx: Arc<Ctx>,
    target: Target,
    kind: Kind,
    probe: Probe,
    results: Arc<Mutex<Results>>,
    wake: Arc<Notify>,
) {
    let id = target.container_id.clone();
    let has_startup = target.container.startup_probe.is_some();
    let period = secs(probe.period_seconds, 10).max(Duration::from_secs(1));
    let timeout = secs(probe.timeout_seconds, 1).max(Duration::from_secs(1));
    let success_threshold = probe.success_threshold.unwrap_or(1).max(1);
    let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1);
    if kind == Kind::Readiness {
        results
            .lock()
            .expect("probe results")
            .ready
            .insert(id.clone(), false);
    }
    tokio::time::sleep(secs(probe.initial_delay_seconds, 0)).await;
    let (mut successes, mut failures) = (0, 0);
    loop {
        let started = results
            .lock()
            .expect("probe results")
            .started
            .get(&id)
            .copied()
            .unwrap_or(false);
        if kind != Kind::Startup && has_startup && !started {
            tokio::time::sleep(period).await;
            continue;
        }
        let outcome = check(&ctx, &target, &probe, timeout).await;
        match &outcome {
            Ok(()) => {
                successes += 1;
                failures = 0;
            }
            Err(why) => {
                failures += 1;
                successes = 0;
                tracing::info!(container = %target.container.name, probe = ?kind, %why, "probe failed");
            }
        }
        let mut changed = false;
        {
            let mut r = results.lock().expect("probe results");
            match kind {
                Kind::Readiness => {
                    let before = r.ready.get(&id).copied();
                    if successes >= success_threshold {
                        r.ready.insert(id.clone(), true);
                    } else if failures >= failure_threshold {
                        r.ready.insert(id.clone(), false);
                    }
                    changed = before != r.ready.get(&id).copied();
                }
                Kind::Liveness | Kind::Startup => {
                    if kind == Kind::Startup && successes >= 1 {
                        r.started.insert(id.clone(), true);
                        changed = true;
                    } else if failures >= failure_threshold {
                        let what = if kind == Kind::Startup {
                            "startup"
                        } else {
                            "liveness"
                        };
                        r.failed.insert(
                            id.clone(),
                            format!(
                                "Container {} failed {what} probe, will be restarted: {}",
                                target.container.name,
                                outcome.clone().err().unwrap_or_default()
                            ),
                        );
                        changed = true;
                    }
                }
            }
        }
        if changed {
            wake.notify_one();
        }
        let done = match kind {
            Kind::Startup => successes >= 1 || failures >= failure_threshold,
            Kind::Liveness => failures >= failure_threshold,
            Kind::Readiness => false,
        };
        if done {
            return;
        }
        tokio::time::sleep(period).await;
    }
}

/// Resolves a probe's port: a number, or the name of a container port.
pub fn port(c: &Container, port: &IntOrString) -> Result<u16, String> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).map_err(|_| format!("invalid port {p}")),
        IntOrString::String(name) => {
            if let Ok(p) = name.parse::<u16>() {
                return Ok(p);
            }
            c.ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .map(|p| p.container_port as u16)
                .ok_or_else(|| format!("port {name:?} not found in the container's ports"))
        }
    }
}

/// One probe attempt.
pub async fn check(
    ctx: &Ctx,
    target: &Target,
    probe: &Probe,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(exec) = &probe.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        let out = ctx
            .runtime
            .exec_sync(&target.container_id, cmd, timeout)
            .await
            .map_err(|e| e.message().to_string())?;
        return if out.exit_code == 0 {
            Ok(())
        } else {
            Err(format!(
                "command exited with {}: {}",
                out.exit_code,
                String::from_utf8_lossy(&out.stdout).trim()
            ))
        };
    }
    if let Some(http) = &probe.http_get {
        let p = port(&target.container, &http.port)?;
        return http_get(&ctx.dialer, target.pod_ip, http, p, timeout)
            .await
            .map(|_| ());
    }
    if let Some(tcp) = &probe.tcp_socket {
        let p = port(&target.container, &tcp.port)?;
        let ip = host(tcp.host.as_deref(), target.pod_ip)?;
        return ctx
            .dialer
            .connect(SocketAddr::new(ip, p), timeout)
            .await
            .map(|_| ())
            .map_err(|e| format!("dial tcp {ip}:{p}: {e}"));
    }
    if probe.grpc.is_some() {
        return Err("gRPC probes are not supported by this kubelet yet".into());
    }
    Err("a probe without exec, httpGet or tcpSocket".into())
}

fn host(host: Option<&str>, pod_ip: Option<IpAddr>) -> Result<IpAddr, String> {
    match host.filter(|h| !h.is_empty()) {
        Some(h) => h
            .parse()
            .map_err(|_| format!("probe host {h:?} is not an IP address")),
        None => pod_ip.ok_or_else(|| "the pod has no IP yet".into()),
    }
}

/// An HTTP GET as upstream's prober sends it; Ok(status) for 200-399.
pub async fn http_get(
    dialer: &crate::netns::Dialer,
    pod_ip: Option<IpAddr>,
    http: &HTTPGetAction,
    port: u16,
    timeout: Duration,
) -> Result<u16, String> {
    let https = http.scheme.as_deref() == Some("HTTPS");
    let scheme = if https { "https" } else { "http" };
    let ip = host(http.host.as_deref(), pod_ip)?;
    let addr = SocketAddr::new(ip, port);
    let path = http.path.clone().unwrap_or("/".into());
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let headers = http.http_headers.clone().unwrap_or_default();
    let has = |name: &str| headers.iter().any(|h| h.name.eq_ignore_ascii_case(name));
    if !has("user-agent") {
        request.push_str("User-Agent: kube-probe/1.33\r\n");
    }
    if !has("accept") {
        request.push_str("Accept: */*\r\n");
    }
    for h in &headers {
        request.push_str(&format!("{}: {}\r\n", h.name, h.value));
    }
    request.push_str("\r\n");
    let attempt = async {
        let tcp = dialer
            .connect(addr, timeout)
            .await
            .map_err(|e| format!("dial tcp {addr}: {e}"))?;
        let line = if https {
            // Probes do not verify the pod's certificate (upstream neither).
            let connector = tokio_rustls::TlsConnector::from(common::tls::unverified_client());
            let name = rustls::pki_types::ServerName::IpAddress(ip.into());
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
            status_line(tls, &request).await?
        } else {
            status_line(tcp, &request).await?
        };
        let code: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("malformed HTTP response: {:?}", line.lines().next()))?;
        if (200..400).contains(&code) {
            Ok(code)
        } else {
            Err(format!("HTTP probe failed with statuscode: {code}"))
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| format!("Get \"{scheme}://{addr}{path}\": context deadline exceeded"))?
}

/// Sends `request` and reads the response's status line.
async fn status_line<S>(mut stream: S, request: &str) -> Result<String, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = vec![0u8; 1024];
    let mut n = 0;
    while n < head.len() && !head[..n].contains(&b'\n') {
        let read = stream
            .read(&mut head[n..])
            .await
            .map_err(|e| e.to_string())?;
        if read == 0 {
            break;
        }
        n += read;
    }
    Ok(String::from_utf8_lossy(&head[..n]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// An HTTPS server with a self-signed certificate answering `status`.
    async fn https_server(status: u16) -> u16 {
        let config = common::serving::self_signed(&["localhost".into()], "probe-test").unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = [0u8; 1024];
                    let _ = tls.read(&mut buf).await;
                    let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn https_probes_do_not_verify_and_read_the_status() {
        let dialer = crate::netns::Dialer::default();
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        let action = |port: u16| HTTPGetAction {
            scheme: Some("HTTPS".into()),
            path: Some("/healthz".into()),
            port: IntOrString::Int(port.into()),
            ..Default::default()
        };
        let ok = https_server(204).await;
        assert_eq!(
            http_get(&dialer, ip, &action(ok), ok, Duration::from_secs(5)).await,
            Ok(204)
        );
        let bad = https_server(503).await;
        let e = http_get(&dialer, ip, &action(bad), bad, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(e, "HTTP probe failed with statuscode: 503");
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(
            http_get(&dialer, ip, &action(closed), closed, Duration::from_secs(2))
                .await
                .is_err()
        );
    }

    #[test]
    fn named_ports() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "ports": [{"name": "http", "containerPort": 8080}]
        }))
        .unwrap();
        assert_eq!(port(&c, &IntOrString::String("http".into())), Ok(8080));
        assert_eq!(port(&c, &IntOrString::Int(81)), Ok(81));
        assert!(port(&c, &IntOrString::String("nope".into())).is_err());
    }
}
