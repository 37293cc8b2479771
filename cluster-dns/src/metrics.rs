//! Metrics under CoreDNS's names and labels, so its dashboards and alerts
//! apply unchanged (CoreDNS 1.11 also has a `view` label, always empty
//! without the view plugin; it is left out).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, exponential_buckets};
use std::time::Duration;

pub struct Metrics {
    pub registry: Registry,
    requests: IntCounterVec,
    responses: IntCounterVec,
    duration: HistogramVec,
    forward_requests: IntCounterVec,
    forward_responses: IntCounterVec,
}

/// What a request was: the labels CoreDNS's metrics plugin gives it.
pub struct Request<'a> {
    pub server: &'a str,
    /// The zone that answers it: the cluster domain, or "." for the rest.
    pub zone: &'a str,
    pub proto: &'a str,
    /// "1" for IPv4 clients, "2" for IPv6 (address family numbers).
    pub family: &'a str,
    pub qtype: &'a str,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let requests = counter(
            "coredns_dns_requests_total",
            "Counter of DNS requests made per zone, protocol and family.",
            &["server", "zone", "proto", "family", "type"],
        );
        let responses = counter(
            "coredns_dns_responses_total",
            "Counter of response status codes.",
            &["server", "zone", "rcode", "plugin"],
        );
        let forward_requests = counter(
            "coredns_forward_requests_total",
            "Counter of requests made per upstream.",
            &["to"],
        );
        let forward_responses = counter(
            "coredns_forward_responses_total",
            "Counter of responses received per upstream.",
            &["to", "rcode"],
        );
        // CoreDNS's plugin.TimeBuckets: 0.25 ms to about 8 s.
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "coredns_dns_request_duration_seconds",
                "Histogram of the time (in seconds) each request took per zone.",
            )
            .buckets(exponential_buckets(0.00025, 2.0, 16).expect("valid buckets")),
            &["server", "zone", "type"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(duration.clone()))
            .expect("registered once");
        Metrics {
            registry,
            requests,
            responses,
            duration,
            forward_requests,
            forward_responses,
        }
    }

    pub fn request(&self, r: &Request<'_>) {
        self.requests
            .with_label_values(&[r.server, r.zone, r.proto, r.family, r.qtype])
            .inc();
    }

    pub fn response(&self, r: &Request<'_>, rcode: u16, plugin: &str, took: Duration) {
        self.responses
            .with_label_values(&[r.server, r.zone, rcode_name(rcode), plugin])
            .inc();
        self.duration
            .with_label_values(&[r.server, r.zone, r.qtype])
            .observe(took.as_secs_f64());
    }

    pub fn forward_request(&self, to: &str) {
        self.forward_requests.with_label_values(&[to]).inc();
    }

    pub fn forward_response(&self, to: &str, rcode: u16) {
        self.forward_responses
            .with_label_values(&[to, rcode_name(rcode)])
            .inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The rcode as miekg/dns spells it (CoreDNS's label values).
pub fn rcode_name(rcode: u16) -> &'static str {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        16 => "BADVERS",
        _ => "other",
    }
}

/// The query type label: CoreDNS counts a fixed set of types by name, the
/// rest as "other", to bound the label's values.
pub fn qtype_name(qtype: hickory_proto::rr::RecordType) -> &'static str {
    use hickory_proto::rr::RecordType as T;
    match qtype {
        T::A => "A",
        T::AAAA => "AAAA",
        T::ANY => "ANY",
        T::AXFR => "AXFR",
        T::CNAME => "CNAME",
        T::DNSKEY => "DNSKEY",
        T::DS => "DS",
        T::HTTPS => "HTTPS",
        T::IXFR => "IXFR",
        T::MX => "MX",
        T::NS => "NS",
        T::NSEC => "NSEC",
        T::NSEC3 => "NSEC3",
        T::PTR => "PTR",
        T::RRSIG => "RRSIG",
        T::SOA => "SOA",
        T::SRV => "SRV",
        T::TXT => "TXT",
        _ => "other",
    }
}
