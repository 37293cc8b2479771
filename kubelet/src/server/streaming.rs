//! `/exec`, `/attach` and `/portForward`: the kubelet asks the runtime
//! for a streaming URL (CRI Exec, Attach, PortForward) and proxies the
//! client's upgrade to it, as upstream does. containerd 1.6 speaks SPDY
//! (remotecommand v1-v4, portforward.k8s.io) and WebSocket v4; what kubectl
//! 1.32 offers first is bridged here:
//! - WebSocket `v5.channel.k8s.io` (exec, attach) is relayed frame by frame
//!   to the runtime's `v4.channel.k8s.io`; the two differ only in v5's
//!   stream-close signal, which v4 cannot carry, so a request with stdin
//!   and no tty is left to the runtime, which refuses it, and kubectl falls
//!   back to SPDY, which carries stdin's end;
//! - WebSocket `SPDY/3.1+portforward.k8s.io` (port-forward) is tunnelled:
//!   the SPDY bytes inside the WebSocket messages go to the runtime over an
//!   SPDY upgrade.
//!
//! Everything else (SPDY) is proxied unchanged.

use super::{Body, Refusal, find_container, logs::url_pairs};
use crate::cri::api;
use crate::pods::Ctx;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message, protocol::Role};

const V5: &str = "v5.channel.k8s.io";
const V4: &str = "v4.channel.k8s.io";
const TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";

fn offered(req: &Request<Incoming>) -> Vec<String> {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .collect()
}

fn is_websocket(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

struct Streams {
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

fn streams(query: &str) -> Result<Streams, String> {
    let pairs = url_pairs(query);
    let on = |k: &str| {
        pairs
            .iter()
            .any(|(n, v)| n == k && (v == "1" || v == "true"))
    };
    let tty = on("tty");
    let s = Streams {
        command: pairs
            .iter()
            .filter(|(k, _)| k == "command")
            .map(|(_, v)| v.clone())
            .collect(),
        stdin: on("stdin") || on("input"),
        stdout: on("stdout") || on("output"),
        // A terminal merges stderr into stdout.
        stderr: (on("stderr") || on("error")) && !tty,
        tty,
    };
    if !(s.stdin || s.stdout || s.stderr) {
        return Err("you must specify at least 1 of stdin, stdout, stderr".into());
    }
    Ok(s)
}

pub async fn handle(ctx: &Ctx, req: Request<Incoming>, segments: &[&str]) -> Response<Body> {
    let query = req.uri().query().unwrap_or_default().to_string();
    let result = match segments {
        ["exec", ns, pod, container] | ["exec", ns, pod, _, container] => {
            remote_command(ctx, req, ns, pod, container, &query, true).await
        }
        ["attach", ns, pod, container] | ["attach", ns, pod, _, container] => {
            remote_command(ctx, req, ns, pod, container, &query, false).await
        }
        ["portForward", ns, pod] | ["portForward", ns, pod, _] => {
            port_forward(ctx, req, ns, pod).await
        }
        _ => Err(Refusal(StatusCode::NOT_FOUND, "404 page not found".into())),
    };
    result.unwrap_or_else(Refusal::into_response)
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    Refusal(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn remote_command(
    ctx: &Ctx,
    req: Request<Incoming>,
    ns: &str,
    pod: &str,
    container: &str,
    query: &str,
    exec: bool,
) -> Result<Response<Body>, Refusal> {
    let s = streams(query).map_err(|e| Refusal(StatusCode::BAD_REQUEST, e))?;
    let (id, _, running) = find_container(ctx, ns, pod, container, false).await?;
    if !running {
        return Err(Refusal(
            StatusCode::NOT_FOUND,
            format!("container not found ({container:?})"),
        ));
    }
    let url = if exec {
        let r = api::ExecRequest {
            container_id: id,
            cmd: s.command.clone(),
            tty: s.tty,
            stdin: s.stdin,
            stdout: s.stdout,
            stderr: s.stderr,
        };
        ctx.runtime
            .run("exec", |mut c| async move { c.exec(r).await })
            .await
            .map(|r| r.url)
    } else {
        let r = api::AttachRequest {
            container_id: id,
            stdin: s.stdin,
            tty: s.tty,
            stdout: s.stdout,
            stderr: s.stderr,
        };
        ctx.runtime
            .run("attach", |mut c| async move { c.attach(r).await })
            .await
            .map(|r| r.url)
    }
    .map_err(|e| internal(e.message()))?;
    let url = url::Url::parse(&url).map_err(internal)?;
    if is_websocket(&req) && offered(&req).iter().any(|p| p == V5) && (!s.stdin || s.tty) {
        return relay_v5(ctx, req, &url).await;
    }
    forward(ctx, req, &url).await
}

async fn port_forward(
    ctx: &Ctx,
    req: Request<Incoming>,
    ns: &str,
    pod: &str,
) -> Result<Response<Body>, Refusal> {
    use crate::cri::labels;
    let filter = api::PodSandboxFilter {
        label_selector: std::collections::HashMap::from([
            (labels::POD_NAMESPACE.to_string(), ns.to_string()),
            (labels::POD_NAME.to_string(), pod.to_string()),
        ]),
        state: Some(api::PodSandboxStateValue {
            state: api::PodSandboxState::SandboxReady as i32,
        }),
        ..Default::default()
    };
    let sandboxes = ctx
        .runtime
        .sandboxes(Some(filter))
        .await
        .map_err(|e| internal(e.message()))?;
    let sandbox = sandboxes
        .iter()
        .max_by_key(|s| s.created_at)
        .ok_or_else(|| Refusal(StatusCode::NOT_FOUND, format!("pod not found ({pod:?})")))?;
    let r = api::PortForwardRequest {
        pod_sandbox_id: sandbox.id.clone(),
        port: Vec::new(),
    };
    let url = ctx
        .runtime
        .run(
            "port_forward",
            |mut c| async move { c.port_forward(r).await },
        )
        .await
        .map_err(|e| internal(e.message()))?
        .url;
    let url = url::Url::parse(&url).map_err(internal)?;
    if is_websocket(&req) && offered(&req).iter().any(|p| p == TUNNEL) {
        return tunnel(ctx, req, &url).await;
    }
    forward(ctx, req, &url).await
}

fn address(url: &url::Url) -> Result<SocketAddr, Refusal> {
    url.socket_addrs(|| Some(80))
        .ok()
        .and_then(|a| a.first().copied())
        .ok_or_else(|| internal(format!("the runtime's streaming URL {url} has no address")))
}

async fn dial(ctx: &Ctx, url: &url::Url) -> Result<tokio::net::TcpStream, Refusal> {
    let addr = address(url)?;
    ctx.dialer
        .connect(addr, Duration::from_secs(10))
        .await
        .map_err(|e| {
            internal(format!(
                "dialing the runtime's streaming server at {addr}: {e}"
            ))
        })
}

fn path_of(url: &url::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// SPDY (or a WebSocket the runtime handles itself): proxied as is.
async fn forward(
    ctx: &Ctx,
    req: Request<Incoming>,
    url: &url::Url,
) -> Result<Response<Body>, Refusal> {
    let io = dial(ctx, url).await?;
    let host = url.host_str().unwrap_or("127.0.0.1").to_string();
    let resp = common::proxy::forward(io, req, &path_of(url), &host)
        .await
        .map_err(internal)?;
    let (parts, body) = resp.into_parts();
    Ok(Response::from_parts(
        parts,
        BodyExt::boxed(common::proxy::infallible(body)),
    ))
}

/// The 101 answer to a client WebSocket handshake, choosing `protocol`;
/// the upgraded connection comes from `on`.
fn accept(
    req: &mut Request<Incoming>,
    protocol: &str,
) -> Result<(Response<Body>, hyper::upgrade::OnUpgrade), Refusal> {
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| Refusal(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key".into()))?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on = hyper::upgrade::on(req);
    let resp = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .header(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(protocol).map_err(internal)?,
        )
        .body(super::full(StatusCode::SWITCHING_PROTOCOLS, "text/plain", Bytes::new()).into_body())
        .map_err(internal)?;
    Ok((resp, on))
}

/// Relays a v5 WebSocket client to the runtime's v4 WebSocket.
async fn relay_v5(
    ctx: &Ctx,
    mut req: Request<Incoming>,
    url: &url::Url,
) -> Result<Response<Body>, Refusal> {
    let io = dial(ctx, url).await?;
    let mut ws_url = url.clone();
    let _ = ws_url.set_scheme(if url.scheme() == "https" { "wss" } else { "ws" });
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(ws_url.as_str())
        .map_err(internal)?;
    request
        .headers_mut()
        .insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(V4));
    let (upstream, _) = tokio_tungstenite::client_async(request, io)
        .await
        .map_err(|e| {
            internal(format!(
                "the runtime's streaming server refused the WebSocket: {e}"
            ))
        })?;
    let (resp, on) = accept(&mut req, V5)?;
    tracing::info!(url = %url.path(), "relaying a v5.channel.k8s.io WebSocket to the runtime's v4.channel.k8s.io");
    tokio::spawn(async move {
        let Ok(upgraded) = on.await else { return };
        let client =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let (mut client_tx, mut client_rx) = client.split();
        let (mut up_tx, mut up_rx) = upstream.split();
        let to_runtime = async {
            while let Some(Ok(m)) = client_rx.next().await {
                let sent = match m {
                    // v5's stream-close signal [255, id]: v4 has no such frame.
                    Message::Binary(ref b) if b.first() == Some(&255) => Ok(()),
                    Message::Binary(_) | Message::Text(_) => up_tx.send(m).await,
                    Message::Close(_) => break,
                    _ => Ok(()),
                };
                if sent.is_err() {
                    break;
                }
            }
            let _ = up_tx.close().await;
        };
        let to_client = async {
            while let Some(Ok(m)) = up_rx.next().await {
                let sent = match m {
                    Message::Binary(_) | Message::Text(_) => client_tx.send(m).await,
                    Message::Close(_) => break,
                    _ => Ok(()),
                };
                if sent.is_err() {
                    break;
                }
            }
            // A normal close is what tells the client the streams ended.
            let _ = client_tx
                .send(Message::Close(Some(tungstenite::protocol::CloseFrame {
                    code: tungstenite::protocol::frame::coding::CloseCode::Normal,
                    reason: "".into(),
                })))
                .await;
            let _ = client_tx.close().await;
        };
        tokio::pin!(to_client);
        tokio::select! {
            _ = to_runtime => {
                // The client went away: give the runtime's answer a moment.
                let _ = tokio::time::timeout(Duration::from_secs(1), &mut to_client).await;
            }
            _ = &mut to_client => {}
        }
    });
    Ok(resp)
}

/// Tunnels SPDY carried in WebSocket messages to the runtime's SPDY
/// port-forward, as upstream's apiserver does for kubectl 1.31+.
async fn tunnel(
    ctx: &Ctx,
    mut req: Request<Incoming>,
    url: &url::Url,
) -> Result<Response<Body>, Refusal> {
    let io = dial(ctx, url).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(internal)?;
    tokio::spawn(conn.with_upgrades());
    let upgrade = Request::builder()
        .method("POST")
        .uri(path_of(url))
        .header(header::HOST, url.host_str().unwrap_or("127.0.0.1"))
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header("X-Stream-Protocol-Version", "portforward.k8s.io")
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(internal)?;
    let mut upstream = sender.send_request(upgrade).await.map_err(internal)?;
    if upstream.status() != StatusCode::SWITCHING_PROTOCOLS {
        // Not upgraded: the client sees why and falls back to SPDY.
        let (parts, body) = upstream.into_parts();
        return Ok(Response::from_parts(
            parts,
            BodyExt::boxed(common::proxy::infallible(body)),
        ));
    }
    let negotiated = upstream
        .headers()
        .get("X-Stream-Protocol-Version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("portforward.k8s.io")
        .to_string();
    let upstream_io = hyper::upgrade::on(&mut upstream);
    let (resp, on) = accept(&mut req, &format!("SPDY/3.1+{negotiated}"))?;
    tracing::info!(url = %url.path(), "tunnelling SPDY port-forward from a WebSocket");
    tokio::spawn(async move {
        let (Ok(client), Ok(spdy)) = tokio::join!(on, upstream_io) else {
            return;
        };
        let client =
            WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, None).await;
        let (mut client_tx, mut client_rx) = client.split();
        let (mut spdy_rx, mut spdy_tx) = tokio::io::split(TokioIo::new(spdy));
        let up = async {
            while let Some(Ok(m)) = client_rx.next().await {
                match m {
                    Message::Binary(b) if spdy_tx.write_all(&b).await.is_err() => break,
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            let _ = spdy_tx.shutdown().await;
        };
        let down = async {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match spdy_rx.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if client_tx
                            .send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
            let _ = client_tx.close().await;
        };
        tokio::select! {
            _ = up => {}
            _ = down => {}
        }
    });
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_options() {
        let s = streams("command=sh&command=-c&command=echo%20hi&stdout=1&stderr=true").unwrap();
        assert_eq!(s.command, ["sh", "-c", "echo hi"]);
        assert!(s.stdout && s.stderr && !s.stdin && !s.tty);
        let t = streams("stdin=1&tty=1&stderr=1").unwrap();
        assert!(t.tty && t.stdin && !t.stderr);
        assert!(streams("command=ls").is_err());
    }
}
