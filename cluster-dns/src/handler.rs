//! One query to one answer, whatever the transport: names in the cluster
//! domain from the index (authoritative, with the zone's SOA on negative
//! answers), PTR of the addresses the zone names, the rest upstream.
//! Answers that do not fit the client's UDP size lose their additional
//! records first, then everything but the question, with TC set.

use crate::forward::{Forwarder, rcode};
use crate::metrics::{self, Metrics, Request};
use crate::records::{Index, Lookup, Records};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// CNAMEs followed at most within the zone (a loop of ExternalNames ends).
const MAX_CHAIN: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        }
    }
}

pub struct Handler {
    zone: Name,
    /// The `zone` metrics label.
    zone_label: String,
    /// The `server` metrics label, `dns://<listen address>` as CoreDNS's.
    server: String,
    records: Arc<Records>,
    forwarder: Forwarder,
    metrics: Arc<Metrics>,
}

impl Handler {
    pub fn new(
        zone: Name,
        listen: SocketAddr,
        records: Arc<Records>,
        forwarder: Forwarder,
        metrics: Arc<Metrics>,
    ) -> Self {
        Handler {
            zone_label: zone.to_string(),
            zone,
            server: format!("dns://{listen}"),
            records,
            forwarder,
            metrics,
        }
    }

    /// The wire answer to the wire `query` from `from`, or None when there
    /// is nothing to answer (not a query, or too short to carry an ID).
    pub async fn handle(&self, query: &[u8], from: SocketAddr, proto: Proto) -> Option<Vec<u8>> {
        let started = Instant::now();
        let request = match Message::from_vec(query) {
            Ok(r) => r,
            Err(_) => return format_error(query),
        };
        if request.message_type() != MessageType::Query {
            return None;
        }
        let [question] = request.queries() else {
            return Some(encode(reply(&request, ResponseCode::FormErr)));
        };
        let local = self.zone.zone_of(question.name());
        let labels = Request {
            server: &self.server,
            zone: if local { &self.zone_label } else { "." },
            proto: proto.name(),
            family: if from.is_ipv4() { "1" } else { "2" },
            qtype: metrics::qtype_name(question.query_type()),
        };
        self.metrics.request(&labels);
        let (answer, plugin) = self.answer(&request, question, query, local, proto).await;
        let limit = match proto {
            // The client's EDNS size, at least 512 (RFC 6891).
            Proto::Udp => request.max_payload() as usize,
            Proto::Tcp => u16::MAX as usize,
        };
        let answer = fit(answer, limit);
        self.metrics
            .response(&labels, rcode(&answer), plugin, started.elapsed());
        Some(answer)
    }

    /// The answer and the metrics' `plugin` label of who gave it.
    async fn answer(
        &self,
        request: &Message,
        question: &Query,
        raw: &[u8],
        local: bool,
        proto: Proto,
    ) -> (Vec<u8>, &'static str) {
        if request.op_code() != OpCode::Query {
            return (encode(reply(request, ResponseCode::NotImp)), "");
        }
        if local {
            return (encode(self.local(request, question).await), "kubernetes");
        }
        if question.query_type() == RecordType::PTR {
            let index = self.records.get();
            if let Some(ptrs) = index.and_then(|i| i.reverse(question.name())) {
                let mut m = reply(request, ResponseCode::NoError);
                m.set_authoritative(true).add_answers(ptrs);
                return (encode(m), "kubernetes");
            }
        }
        match self.forwarder.forward(raw, proto == Proto::Tcp).await {
            Ok(answer) => (answer, "forward"),
            Err(e) => {
                tracing::debug!(name = %question.name(), error = %e, "forwarding failed");
                (encode(reply(request, ResponseCode::ServFail)), "forward")
            }
        }
    }

    async fn local(&self, request: &Message, question: &Query) -> Message {
        let Some(index) = self.records.get() else {
            // As CoreDNS: no answers from caches that have not synced yet.
            return reply(request, ResponseCode::ServFail);
        };
        if question.query_class() != DNSClass::IN {
            return reply(request, ResponseCode::Refused);
        }
        let mut m = reply(request, ResponseCode::NoError);
        m.set_authoritative(true);
        match index.lookup(question.name(), question.query_type()) {
            Lookup::NxDomain => {
                m.set_response_code(ResponseCode::NXDomain)
                    .add_name_server(index.soa());
            }
            Lookup::Found {
                answers,
                additionals,
            } => {
                if answers.is_empty() {
                    m.add_name_server(index.soa());
                }
                let chased = self.chase(&index, &answers, question.query_type()).await;
                m.add_answers(answers)
                    .add_answers(chased)
                    .add_additionals(additionals);
            }
        }
        m
    }

    /// What a CNAME answer (an ExternalName Service) leads to, so that stub
    /// resolvers get addresses: from the zone, or upstream for a target
    /// outside it, as CoreDNS's kubernetes plugin does. A failure upstream
    /// leaves the CNAME alone.
    async fn chase(&self, index: &Index, answers: &[Record], qtype: RecordType) -> Vec<Record> {
        let mut chased = Vec::new();
        if matches!(qtype, RecordType::CNAME | RecordType::ANY) {
            return chased;
        }
        let mut target = match cname(answers) {
            Some(t) => t,
            None => return chased,
        };
        for _ in 0..MAX_CHAIN {
            if !self.zone.zone_of(&target) {
                match self.forwarder.resolve(&target, qtype).await {
                    Ok(records) => chased.extend(records),
                    Err(e) => {
                        tracing::debug!(%target, error = %e, "resolving a CNAME target failed")
                    }
                }
                break;
            }
            let Lookup::Found { answers, .. } = index.lookup(&target, qtype) else {
                break;
            };
            let next = cname(&answers);
            chased.extend(answers);
            match next {
                Some(n) => target = n,
                None => break,
            }
        }
        chased
    }
}

fn cname(answers: &[Record]) -> Option<Name> {
    match answers.last().map(Record::data) {
        Some(RData::CNAME(c)) => Some(c.0.clone()),
        _ => None,
    }
}

/// A response to `request` with `rcode`: its question, its RD and CD bits,
/// and an OPT record when it had one.
fn reply(request: &Message, rcode: ResponseCode) -> Message {
    let mut m = Message::new();
    m.set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .set_checking_disabled(request.checking_disabled())
        .set_response_code(rcode)
        .add_queries(request.queries().iter().cloned());
    if let Some(edns) = request.extensions() {
        let mut ours = Edns::new();
        ours.set_max_payload(edns.max_payload().max(512));
        m.set_edns(ours);
    }
    m
}

fn encode(m: Message) -> Vec<u8> {
    m.to_vec().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "encoding an answer failed");
        let failed = Message::error_msg(m.id(), m.op_code(), ResponseCode::ServFail);
        failed.to_vec().expect("a bare header encodes")
    })
}

/// FORMERR for a message that does not parse, when it has a query's header.
fn format_error(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    let id = u16::from_be_bytes([query[0], query[1]]);
    let m = Message::error_msg(
        id,
        OpCode::from_u8(query[2] >> 3 & 0x0F),
        ResponseCode::FormErr,
    );
    Some(encode(m))
}

/// `answer` within `limit` bytes: without its additional records (which
/// needs no TC, RFC 2181 9), else with the question only and TC set.
fn fit(answer: Vec<u8>, limit: usize) -> Vec<u8> {
    if answer.len() <= limit {
        return answer;
    }
    let Ok(mut m) = Message::from_vec(&answer) else {
        return answer;
    };
    m.take_additionals();
    match m.to_vec() {
        Ok(smaller) if smaller.len() <= limit => smaller,
        _ => encode(m.truncate()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use std::time::Duration;

    fn handler(index: Option<Index>) -> Handler {
        let zone = Name::from_ascii("cluster.local.").unwrap();
        let records = Arc::new(Records::default());
        if let Some(i) = index {
            records.set(i);
        }
        let metrics = Arc::new(Metrics::new());
        let forwarder = Forwarder::new(vec![], Duration::from_millis(100), metrics.clone());
        Handler::new(
            zone,
            "127.0.0.1:53".parse().unwrap(),
            records,
            forwarder,
            metrics,
        )
    }

    fn zone_with(services: &[k8s_openapi::api::core::v1::Service]) -> Index {
        Index::build(
            &Name::from_ascii("cluster.local.").unwrap(),
            5,
            1,
            services,
            &[],
        )
    }

    fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
        let mut q = Message::new();
        q.set_id(7)
            .set_recursion_desired(true)
            .add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            q.set_edns(e);
        }
        q.to_vec().unwrap()
    }

    async fn ask(h: &Handler, raw: &[u8], proto: Proto) -> Message {
        let from = "127.0.0.1:9999".parse().unwrap();
        let answer = h.handle(raw, from, proto).await.expect("an answer");
        Message::from_vec(&answer).unwrap()
    }

    #[tokio::test]
    async fn response_codes() {
        let h = handler(Some(zone_with(&[service("default", "web", "10.96.0.10")])));
        let cases = [
            (
                "found",
                "web.default.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NoError,
                1,
                0,
            ),
            (
                "no data",
                "web.default.svc.cluster.local.",
                RecordType::AAAA,
                ResponseCode::NoError,
                0,
                1,
            ),
            (
                "no such name",
                "nope.default.svc.cluster.local.",
                RecordType::A,
                ResponseCode::NXDomain,
                0,
                1,
            ),
            // Outside the zone with no upstream: SERVFAIL, no SOA.
            (
                "forward fails",
                "example.com.",
                RecordType::A,
                ResponseCode::ServFail,
                0,
                0,
            ),
        ];
        for (what, name, qtype, rcode, answers, authority) in cases {
            let m = ask(&h, &query(name, qtype, None), Proto::Udp).await;
            assert_eq!(m.response_code(), rcode, "{what}");
            assert_eq!(m.answers().len(), answers, "{what}");
            assert_eq!(m.name_servers().len(), authority, "{what}");
            assert_eq!(m.id(), 7, "{what}");
            assert!(m.recursion_desired(), "{what}");
            assert_eq!(m.message_type(), MessageType::Response, "{what}");
        }
    }

    #[tokio::test]
    async fn not_synced_is_servfail() {
        let h = handler(None);
        let m = ask(
            &h,
            &query("web.default.svc.cluster.local.", RecordType::A, None),
            Proto::Udp,
        )
        .await;
        assert_eq!(m.response_code(), ResponseCode::ServFail);
    }

    #[tokio::test]
    async fn malformed_queries() {
        let h = handler(Some(zone_with(&[])));
        let from = "127.0.0.1:9999".parse().unwrap();
        assert_eq!(
            h.handle(&[1, 2, 3], from, Proto::Udp).await,
            None,
            "shorter than a header"
        );
        let garbage = [0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff];
        let m = Message::from_vec(&h.handle(&garbage, from, Proto::Udp).await.unwrap()).unwrap();
        assert_eq!((m.id(), m.response_code()), (9, ResponseCode::FormErr));
        let mut response = Message::from_vec(&query("a.", RecordType::A, None)).unwrap();
        response.set_message_type(MessageType::Response);
        let raw = response.to_vec().unwrap();
        assert_eq!(
            h.handle(&raw, from, Proto::Udp).await,
            None,
            "responses are not answered"
        );
        let mut two = Message::from_vec(&query("a.", RecordType::A, None)).unwrap();
        two.add_query(Query::query(Name::from_ascii("b.").unwrap(), RecordType::A));
        let m = ask(&h, &two.to_vec().unwrap(), Proto::Udp).await;
        assert_eq!(m.response_code(), ResponseCode::FormErr);
        let mut notify = Message::from_vec(&query("a.", RecordType::A, None)).unwrap();
        notify.set_op_code(OpCode::Notify);
        let m = ask(&h, &notify.to_vec().unwrap(), Proto::Udp).await;
        assert_eq!(m.response_code(), ResponseCode::NotImp);
    }

    #[tokio::test]
    async fn big_answers_truncate_over_udp_only() {
        // 60 ready endpoints: 60 A records, about 1 KB.
        let mut slice = slice("default", "big", "big-1");
        for i in 0..60 {
            slice = slice.endpoint(&format!("10.1.0.{i}"), Some(true), None);
        }
        let index = Index::build(
            &Name::from_ascii("cluster.local.").unwrap(),
            5,
            1,
            &[headless("default", "big")],
            &[slice],
        );
        let h = handler(Some(index));
        let name = "big.default.svc.cluster.local.";
        let udp = ask(&h, &query(name, RecordType::A, None), Proto::Udp).await;
        assert!(udp.truncated());
        assert_eq!((udp.answers().len(), udp.queries().len()), (0, 1));
        let edns = ask(&h, &query(name, RecordType::A, Some(4096)), Proto::Udp).await;
        assert!(!edns.truncated());
        assert_eq!(edns.answers().len(), 60);
        assert_eq!(edns.max_payload(), 4096, "OPT echoed");
        let tcp = ask(&h, &query(name, RecordType::A, None), Proto::Tcp).await;
        assert!(!tcp.truncated());
        assert_eq!(tcp.answers().len(), 60);
    }

    #[tokio::test]
    async fn additionals_go_first() {
        let mut slice = slice("default", "db", "db-1").port("pg", 5432);
        // 8 SRV records (uncompressed targets, RFC 2782) fit in 512 bytes,
        // their 8 addresses too do not.
        for i in 0..8 {
            slice = slice.endpoint(&format!("10.1.0.{i}"), Some(true), Some(&format!("db-{i}")));
        }
        let index = Index::build(
            &Name::from_ascii("cluster.local.").unwrap(),
            5,
            1,
            &[headless("default", "db")],
            &[slice],
        );
        let h = handler(Some(index));
        let q = query(
            "_pg._tcp.db.default.svc.cluster.local.",
            RecordType::SRV,
            None,
        );
        let tcp = ask(&h, &q, Proto::Tcp).await;
        assert_eq!((tcp.answers().len(), tcp.additionals().len()), (8, 8));
        let udp = ask(&h, &q, Proto::Udp).await;
        assert!(!udp.truncated());
        assert_eq!((udp.answers().len(), udp.additionals().len()), (8, 0));
    }

    #[tokio::test]
    async fn external_name_chases_in_zone_targets() {
        let h = handler(Some(zone_with(&[
            service("default", "web", "10.96.0.10"),
            external("default", "alias", "web.default.svc.cluster.local"),
            external("default", "loop-a", "loop-b.default.svc.cluster.local"),
            external("default", "loop-b", "loop-a.default.svc.cluster.local"),
        ])));
        let m = ask(
            &h,
            &query("alias.default.svc.cluster.local.", RecordType::A, None),
            Proto::Udp,
        )
        .await;
        let got: Vec<String> = m.answers().iter().map(|r| r.data().to_string()).collect();
        assert_eq!(got, ["web.default.svc.cluster.local.", "10.96.0.10"]);
        let m = ask(
            &h,
            &query("loop-a.default.svc.cluster.local.", RecordType::A, None),
            Proto::Udp,
        )
        .await;
        assert_eq!(m.answers().len(), 1 + MAX_CHAIN, "a loop ends");
    }
}
