//! Forwarding to the upstream resolvers, as CoreDNS's `forward` plugin:
//! the client's query goes out as-is under a fresh ID from a fresh socket
//! (a random source port: a spoofed answer must guess both), the answer
//! comes back as-is with the client's ID. Upstreams are tried in turn from
//! a rotating start, each for `timeout`; a truncated UDP answer is retried
//! over TCP when the client can take a big one.

use crate::metrics::Metrics;
use hickory_proto::op::{Edns, Message, MessageType, Query};
use hickory_proto::rr::{Name, Record, RecordType};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Semaphore;

/// Queries in flight upstream at most (CoreDNS's recommended
/// `max_concurrent`): beyond that a flood gets SERVFAIL instead of
/// exhausting sockets.
const MAX_IN_FLIGHT: usize = 1000;

/// What an answer over UDP may be at most when the query had no EDNS.
const EDNS_PAYLOAD: u16 = 1232;

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("no upstream resolver is configured")]
    NoUpstreams,
    #[error("{MAX_IN_FLIGHT} queries are already in flight upstream")]
    Busy,
    #[error("the query is shorter than a DNS header")]
    Malformed,
    /// Retryable: every upstream failed or timed out this time.
    #[error("no upstream answered, last error: {0}")]
    Exchange(#[source] io::Error),
    #[error("the upstream's answer does not parse: {0}")]
    Answer(#[source] hickory_proto::ProtoError),
}

pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
    /// `to` label values, as CoreDNS writes them.
    labels: Vec<String>,
    timeout: Duration,
    next: AtomicUsize,
    in_flight: Semaphore,
    metrics: Arc<Metrics>,
}

impl Forwarder {
    pub fn new(upstreams: Vec<SocketAddr>, timeout: Duration, metrics: Arc<Metrics>) -> Self {
        let labels = upstreams.iter().map(|u| u.to_string()).collect();
        Forwarder {
            upstreams,
            labels,
            timeout,
            next: AtomicUsize::new(0),
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
            metrics,
        }
    }

    /// The upstream's answer to the wire-format `query`, with the query's
    /// ID. `tcp_fallback`: a truncated UDP answer is asked again over TCP.
    pub async fn forward(&self, query: &[u8], tcp_fallback: bool) -> Result<Vec<u8>, ForwardError> {
        if self.upstreams.is_empty() {
            return Err(ForwardError::NoUpstreams);
        }
        if query.len() < 12 {
            return Err(ForwardError::Malformed);
        }
        let _permit = self
            .in_flight
            .try_acquire()
            .map_err(|_| ForwardError::Busy)?;
        let id: u16 = rand::random();
        let mut ours = query.to_vec();
        ours[..2].copy_from_slice(&id.to_be_bytes());
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last = io::Error::other("no upstream tried");
        for i in 0..self.upstreams.len() {
            let at = (start + i) % self.upstreams.len();
            let (to, label) = (self.upstreams[at], &self.labels[at]);
            self.metrics.forward_request(label);
            match self.exchange(to, &ours, id, tcp_fallback).await {
                Ok(mut answer) => {
                    self.metrics.forward_response(label, rcode(&answer));
                    answer[..2].copy_from_slice(&query[..2]);
                    return Ok(answer);
                }
                Err(e) => {
                    tracing::debug!(upstream = %to, error = %e, "upstream failed");
                    last = e;
                }
            }
        }
        Err(ForwardError::Exchange(last))
    }

    /// The answer records upstream for `name` `qtype` (chasing an
    /// ExternalName's target).
    pub async fn resolve(
        &self,
        name: &Name,
        qtype: RecordType,
    ) -> Result<Vec<Record>, ForwardError> {
        let mut query = Message::new();
        query
            .set_message_type(MessageType::Query)
            .set_recursion_desired(true)
            .add_query(Query::query(name.clone(), qtype));
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        query.set_edns(edns);
        let bytes = query.to_vec().map_err(ForwardError::Answer)?;
        let answer = self.forward(&bytes, true).await?;
        let mut answer = Message::from_vec(&answer).map_err(ForwardError::Answer)?;
        Ok(answer.take_answers())
    }

    async fn exchange(
        &self,
        to: SocketAddr,
        query: &[u8],
        id: u16,
        tcp_fallback: bool,
    ) -> io::Result<Vec<u8>> {
        let answer = within(self.timeout, udp_exchange(to, query, id)).await?;
        if tcp_fallback && truncated(&answer) {
            return within(self.timeout, tcp_exchange(to, query, id)).await;
        }
        Ok(answer)
    }
}

async fn within<T>(limit: Duration, f: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "upstream timed out"))?
}

async fn udp_exchange(to: SocketAddr, query: &[u8], id: u16) -> io::Result<Vec<u8>> {
    let any: SocketAddr = match to {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(any).await?;
    // Connected: datagrams from anyone else are not delivered to it.
    socket.connect(to).await?;
    socket.send(query).await?;
    let mut buf = vec![0; 65535];
    loop {
        let n = socket.recv(&mut buf).await?;
        if is_answer(&buf[..n], id) {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn tcp_exchange(to: SocketAddr, query: &[u8], id: u16) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(to).await?;
    let len = u16::try_from(query.len()).map_err(|_| io::Error::other("query too long"))?;
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(query).await?;
    let len = stream.read_u16().await?;
    let mut buf = vec![0; len as usize];
    stream.read_exact(&mut buf).await?;
    if !is_answer(&buf, id) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an answer to the query",
        ));
    }
    Ok(buf)
}

/// A response (QR set) with our ID.
fn is_answer(message: &[u8], id: u16) -> bool {
    message.len() >= 12 && message[..2] == id.to_be_bytes() && message[2] & 0x80 != 0
}

fn truncated(message: &[u8]) -> bool {
    message.len() >= 12 && message[2] & 0x02 != 0
}

/// The header's rcode (the low 4 bits; extended rcodes live in the OPT
/// record and are counted as their low bits here).
pub fn rcode(message: &[u8]) -> u16 {
    message.get(3).map_or(0, |b| (b & 0x0F) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::A;

    /// An upstream on loopback that answers A 192.0.2.1 to every query,
    /// truncated over UDP when the name starts with "big".
    async fn upstream() -> SocketAddr {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
        let answer = |query: &[u8], tcp: bool| -> Vec<u8> {
            let query = Message::from_vec(query).unwrap();
            let mut reply = Message::error_msg(query.id(), query.op_code(), ResponseCode::NoError);
            reply.add_queries(query.queries().to_vec());
            let name = query.queries()[0].name().clone();
            if name.to_string().starts_with("big") && !tcp {
                reply.set_truncated(true);
            } else {
                reply.add_answer(Record::from_rdata(name, 60, RData::A(A::new(192, 0, 2, 1))));
            }
            reply.to_vec().unwrap()
        };
        tokio::spawn(async move {
            let mut buf = [0; 512];
            loop {
                let (n, from) = udp.recv_from(&mut buf).await.unwrap();
                udp.send_to(&answer(&buf[..n], false), from).await.unwrap();
            }
        });
        tokio::spawn(async move {
            loop {
                let (mut s, _) = tcp.accept().await.unwrap();
                let len = s.read_u16().await.unwrap();
                let mut q = vec![0; len as usize];
                s.read_exact(&mut q).await.unwrap();
                let a = answer(&q, true);
                s.write_all(&(a.len() as u16).to_be_bytes()).await.unwrap();
                s.write_all(&a).await.unwrap();
            }
        });
        addr
    }

    /// A loopback address nothing answers on.
    async fn silent() -> (UdpSocket, SocketAddr) {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let a = s.local_addr().unwrap();
        (s, a)
    }

    fn query(name: &str, id: u16) -> Vec<u8> {
        let mut q = Message::new();
        q.set_id(id)
            .add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        q.to_vec().unwrap()
    }

    fn forwarder(upstreams: Vec<SocketAddr>) -> Forwarder {
        Forwarder::new(
            upstreams,
            Duration::from_millis(300),
            Arc::new(Metrics::new()),
        )
    }

    #[tokio::test]
    async fn relays_with_the_client_id() {
        let f = forwarder(vec![upstream().await]);
        let answer = f
            .forward(&query("example.com.", 4242), false)
            .await
            .unwrap();
        let answer = Message::from_vec(&answer).unwrap();
        assert_eq!(answer.id(), 4242);
        assert_eq!(answer.answers()[0].data().to_string(), "192.0.2.1");
    }

    #[tokio::test]
    async fn next_upstream_after_a_timeout() {
        let (_keep, dead) = silent().await;
        let f = forwarder(vec![dead, upstream().await]);
        for id in 0..2 {
            let answer = f.forward(&query("example.com.", id), false).await.unwrap();
            assert_eq!(Message::from_vec(&answer).unwrap().answers().len(), 1);
        }
    }

    #[tokio::test]
    async fn truncated_goes_to_tcp_when_allowed() {
        let f = forwarder(vec![upstream().await]);
        let udp_only = f.forward(&query("big.example.", 1), false).await.unwrap();
        assert!(truncated(&udp_only));
        let records = f
            .resolve(&Name::from_ascii("big.example.").unwrap(), RecordType::A)
            .await
            .unwrap();
        assert_eq!(records.len(), 1, "over TCP");
    }

    #[tokio::test]
    async fn failures() {
        let (_keep, dead) = silent().await;
        let err = forwarder(vec![dead])
            .forward(&query("example.com.", 1), false)
            .await;
        assert!(matches!(err, Err(ForwardError::Exchange(_))), "{err:?}");
        let err = forwarder(vec![])
            .forward(&query("example.com.", 1), false)
            .await;
        assert!(matches!(err, Err(ForwardError::NoUpstreams)), "{err:?}");
        let err = forwarder(vec![dead]).forward(&[0; 5], false).await;
        assert!(matches!(err, Err(ForwardError::Malformed)), "{err:?}");
    }
}
