//! Forwarding one HTTP/1.1 request to another server over a connection
//! the caller opened, streaming the answer back, and, when both sides
//! agree to upgrade (101: SPDY or WebSocket for exec, attach and
//! port-forward), splicing the two upgraded connections together. The
//! apiserver forwards to kubelets with it, the kubelet to the runtime's
//! streaming server.

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("{0}")]
    Request(#[from] http::Error),
}

/// Headers that belong to the user's connection, not to the hop.
const DROPPED: &[&str] = &[
    "authorization",
    "host",
    "proxy-authorization",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
];

/// Sends `req` (its method, headers except the hop's own, and body) to
/// `path_and_query` on `io`, naming `host`; returns the answer. An upgrade
/// both ends accept is spliced in the background until either side closes.
pub async fn forward<IO>(
    io: IO,
    mut req: Request<Incoming>,
    path_and_query: &str,
    host: &str,
) -> Result<Response<Incoming>, ProxyError>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "proxied connection ended");
        }
    });
    let wants_upgrade = req.headers().contains_key(header::UPGRADE);
    let client_upgrade = wants_upgrade.then(|| hyper::upgrade::on(&mut req));
    let mut out = Request::builder()
        .method(req.method().clone())
        .uri(path_and_query);
    for (name, value) in req.headers() {
        if DROPPED.contains(&name.as_str()) {
            continue;
        }
        if !wants_upgrade && (name == header::CONNECTION || name == header::UPGRADE) {
            continue;
        }
        out = out.header(name, value);
    }
    out = out.header(
        header::HOST,
        HeaderValue::from_str(host).unwrap_or(HeaderValue::from_static("localhost")),
    );
    let out = out.body(req.into_body())?;
    let mut resp = sender.send_request(out).await?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client) = client_upgrade
    {
        let server = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            match tokio::try_join!(client, server) {
                Ok((client, server)) => {
                    let mut client = TokioIo::new(client);
                    let mut server = TokioIo::new(server);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
                Err(e) => tracing::debug!(error = %e, "upgrade failed"),
            }
        });
    }
    Ok(resp)
}

/// A proxied body as one that cannot fail: it ends where the upstream
/// connection broke (the client sees a short body, as with any proxy).
pub fn infallible(
    body: Incoming,
) -> http_body_util::StreamBody<
    impl futures::Stream<Item = Result<hyper::body::Frame<Bytes>, std::convert::Infallible>>,
> {
    let frames = http_body_util::BodyStream::new(body)
        .take_while(|f| futures::future::ready(f.is_ok()))
        .filter_map(|f| futures::future::ready(f.ok().map(Ok)));
    http_body_util::StreamBody::new(frames)
}
