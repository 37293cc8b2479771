//! DNS over UDP and TCP (RFC 1035 4.2, RFC 7766) on one address: a task
//! per UDP query (an answer from upstream may take seconds; the socket
//! keeps reading meanwhile), a task per TCP connection answering its
//! queries in turn.

use crate::handler::{Handler, Proto};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;

/// How long an idle TCP connection is kept (miekg/dns's default, which
/// CoreDNS serves with).
const TCP_IDLE: Duration = Duration::from_secs(8);

/// The UDP and TCP sockets on `addr`, the TCP one on the UDP one's port
/// (so that port 0 picks one port for both).
pub async fn bind(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    // A port free for UDP may be taken for TCP: port 0 tries a few.
    let attempts = if addr.port() == 0 { 10 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(addr).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one attempt"))
}

/// Answers on `udp` and `tcp` until `shutdown` resolves; open TCP
/// connections are closed then, UDP queries in flight finish on their own.
pub async fn serve(
    handler: Arc<Handler>,
    udp: UdpSocket,
    tcp: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop) = watch::channel(false);
    tokio::select! {
        _ = shutdown => {}
        _ = serve_udp(handler.clone(), udp) => {}
        _ = serve_tcp(handler, tcp, stop) => {}
    }
    let _ = stop_tx.send(true);
}

async fn serve_udp(handler: Arc<Handler>, socket: UdpSocket) {
    let socket = match crate::udp::Socket::new(socket) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(error = %e, "UDP socket setup failed");
            return;
        }
    };
    let mut buf = vec![0; 65535];
    loop {
        let (n, from, arrival) = match socket.recv(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "UDP receive failed");
                continue;
            }
        };
        let query = buf[..n].to_vec();
        let (handler, socket) = (handler.clone(), socket.clone());
        tokio::spawn(async move {
            if let Some(answer) = handler.handle(&query, from, Proto::Udp).await
                && let Err(e) = socket.send(&answer, from, arrival).await
            {
                tracing::debug!(%from, error = %e, "UDP send failed");
            }
        });
    }
}

async fn serve_tcp(handler: Arc<Handler>, listener: TcpListener, stop: watch::Receiver<bool>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let (handler, mut stop) = (handler.clone(), stop.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = connection(&handler, stream, peer) => {}
                        _ = stop.wait_for(|s| *s) => {}
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "TCP accept failed");
                // Out of file descriptors, most likely: let some close.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Length-prefixed queries until the client closes or idles.
async fn connection(handler: &Handler, mut stream: TcpStream, peer: SocketAddr) {
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(len)) => len,
            _ => return,
        };
        let mut query = vec![0; len as usize];
        if !matches!(
            tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut query)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        let Some(answer) = handler.handle(&query, peer, Proto::Tcp).await else {
            continue;
        };
        let mut framed = Vec::with_capacity(answer.len() + 2);
        framed.extend_from_slice(&(answer.len() as u16).to_be_bytes());
        framed.extend_from_slice(&answer);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use crate::forward::Forwarder;
    use crate::metrics::Metrics;
    use crate::records::{Index, Records};
    use hickory_proto::op::{Message, Query, ResponseCode};
    use hickory_proto::rr::{Name, RData, Record, RecordType, rdata::A};

    /// A resolver on loopback that answers every A query with 192.0.2.7.
    async fn fake_upstream() -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0; 512];
            loop {
                let (n, from) = socket.recv_from(&mut buf).await.unwrap();
                let q = Message::from_vec(&buf[..n]).unwrap();
                let mut a = Message::error_msg(q.id(), q.op_code(), ResponseCode::NoError);
                a.add_queries(q.queries().to_vec());
                let name = q.queries()[0].name().clone();
                a.add_answer(Record::from_rdata(name, 60, RData::A(A::new(192, 0, 2, 7))));
                socket.send_to(&a.to_vec().unwrap(), from).await.unwrap();
            }
        });
        addr
    }

    /// A server on 127.0.0.1 with a small zone, forwarding to `upstream`.
    async fn start(
        upstream: SocketAddr,
    ) -> (SocketAddr, Arc<Metrics>, tokio::sync::oneshot::Sender<()>) {
        let zone = Name::from_ascii("cluster.local.").unwrap();
        let services = [
            service("default", "web", "10.96.0.10").port("http", 80, "TCP"),
            headless("default", "db"),
        ];
        let slices = [slice("default", "db", "db-1")
            .endpoint("10.1.0.1", Some(true), Some("db-0"))
            .endpoint("10.1.0.2", Some(false), None)];
        let records = Arc::new(Records::default());
        records.set(Index::build(&zone, 5, 1, &services, &slices));
        let metrics = Arc::new(Metrics::new());
        let forwarder = Forwarder::new(vec![upstream], Duration::from_secs(1), metrics.clone());
        let (udp, tcp) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = udp.local_addr().unwrap();
        let handler = Arc::new(Handler::new(
            zone,
            addr,
            records,
            forwarder,
            metrics.clone(),
        ));
        let (stop_tx, stop) = tokio::sync::oneshot::channel();
        tokio::spawn(serve(handler, udp, tcp, async {
            let _ = stop.await;
        }));
        (addr, metrics, stop_tx)
    }

    fn query(name: &str, qtype: RecordType, id: u16) -> Vec<u8> {
        let mut q = Message::new();
        q.set_id(id)
            .set_recursion_desired(true)
            .add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        q.to_vec().unwrap()
    }

    async fn over_udp(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket
            .send_to(&query(name, qtype, 11), server)
            .await
            .unwrap();
        let mut buf = [0; 4096];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        let m = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(m.id(), 11);
        m
    }

    fn data(m: &Message) -> Vec<String> {
        m.answers().iter().map(|r| r.data().to_string()).collect()
    }

    #[tokio::test]
    async fn answers_over_udp() {
        let (server, metrics, _stop) = start(fake_upstream().await).await;
        let cases = [
            (
                "service",
                "web.default.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NoError,
                vec!["10.96.0.10"],
            ),
            (
                "headless, ready only",
                "db.default.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NoError,
                vec!["10.1.0.1"],
            ),
            (
                "hostname",
                "db-0.db.default.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NoError,
                vec!["10.1.0.1"],
            ),
            (
                "srv",
                "_http._tcp.web.default.svc.cluster.local.",
                RecordType::SRV,
                ResponseCode::NoError,
                vec!["0 100 80 web.default.svc.cluster.local."],
            ),
            (
                "pod",
                "10-244-0-9.default.pod.cluster.local.",
                RecordType::A,
                ResponseCode::NoError,
                vec!["10.244.0.9"],
            ),
            (
                "nxdomain",
                "nope.default.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NXDomain,
                vec![],
            ),
            (
                "ptr",
                "10.0.96.10.in-addr.arpa.",
                RecordType::PTR,
                ResponseCode::NoError,
                vec!["web.default.svc.cluster.local."],
            ),
            (
                "forwarded",
                "example.com.",
                RecordType::A,
                ResponseCode::NoError,
                vec!["192.0.2.7"],
            ),
            (
                "unknown ptr forwarded",
                "9.9.9.9.in-addr.arpa.",
                RecordType::PTR,
                ResponseCode::NoError,
                vec!["192.0.2.7"],
            ),
        ];
        for (what, name, qtype, rcode, want) in cases {
            let m = over_udp(server, name, qtype).await;
            assert_eq!(m.response_code(), rcode, "{what}");
            assert_eq!(data(&m), want, "{what}");
        }
        let text = {
            let mut out = String::new();
            prometheus::TextEncoder::new()
                .encode_utf8(&metrics.registry.gather(), &mut out)
                .unwrap();
            out
        };
        let server = format!("dns://{server}");
        for line in [
            format!(
                "coredns_dns_requests_total{{family=\"1\",proto=\"udp\",server=\"{server}\",type=\"A\",zone=\"cluster.local.\"}} 5"
            ),
            format!(
                "coredns_dns_responses_total{{plugin=\"kubernetes\",rcode=\"NXDOMAIN\",server=\"{server}\",zone=\"cluster.local.\"}} 1"
            ),
            format!(
                "coredns_dns_responses_total{{plugin=\"forward\",rcode=\"NOERROR\",server=\"{server}\",zone=\".\"}} 2"
            ),
        ] {
            assert!(text.contains(&line), "{line} in\n{text}");
        }
        assert!(
            text.contains("coredns_forward_requests_total{to=\""),
            "{text}"
        );
    }

    #[tokio::test]
    async fn answers_over_tcp_on_one_connection() {
        let (server, _metrics, _stop) = start(fake_upstream().await).await;
        let mut stream = TcpStream::connect(server).await.unwrap();
        for (i, (name, want)) in [
            ("web.default.svc.cluster.local.", "10.96.0.10"),
            ("example.org.", "192.0.2.7"),
        ]
        .into_iter()
        .enumerate()
        {
            let q = query(name, RecordType::A, i as u16);
            stream
                .write_all(&(q.len() as u16).to_be_bytes())
                .await
                .unwrap();
            stream.write_all(&q).await.unwrap();
            let len = stream.read_u16().await.unwrap();
            let mut buf = vec![0; len as usize];
            stream.read_exact(&mut buf).await.unwrap();
            let m = Message::from_vec(&buf).unwrap();
            assert_eq!(m.id(), i as u16);
            assert_eq!(data(&m), [want], "{name}");
        }
    }

    #[tokio::test]
    async fn shutdown_closes_tcp_connections() {
        let (server, _metrics, stop) = start(fake_upstream().await).await;
        let mut stream = TcpStream::connect(server).await.unwrap();
        // One answer first: the connection is being served.
        let q = query("web.default.svc.cluster.local.", RecordType::A, 1);
        stream
            .write_all(&(q.len() as u16).to_be_bytes())
            .await
            .unwrap();
        stream.write_all(&q).await.unwrap();
        let len = stream.read_u16().await.unwrap();
        stream.read_exact(&mut vec![0; len as usize]).await.unwrap();
        stop.send(()).unwrap();
        let mut buf = [0; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed: {read:?}");
    }
}
