//! Upstream's kube-proxy metrics (pkg/proxy/metrics).

use prometheus::{Gauge, Histogram, HistogramOpts, IntCounter, Opts, Registry};

pub struct Metrics {
    pub sync_duration: Histogram,
    pub full_sync_duration: Histogram,
    pub partial_sync_duration: Histogram,
    pub last_sync_timestamp: Gauge,
    pub last_queued_timestamp: Gauge,
    pub network_programming: Histogram,
    pub endpoint_changes: IntCounter,
    pub service_changes: IntCounter,
    pub sync_failures: IntCounter,
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid");
    r.register(Box::new(h.clone())).expect("registered once");
    h
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::with_opts(Opts::new(name, help)).expect("valid");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> Gauge {
    let g = Gauge::with_opts(Opts::new(name, help)).expect("valid");
    r.register(Box::new(g.clone())).expect("registered once");
    g
}

impl Metrics {
    pub fn new(r: &Registry, mode: crate::proxier::Mode) -> Metrics {
        let sync = || prometheus::exponential_buckets(0.001, 2.0, 15).expect("valid");
        // Upstream: 0.25 s steps to 1 s, then seconds to a minute, then
        // coarser to 5 minutes.
        let mut programming = vec![0.25, 0.5];
        programming.extend((1..=59).map(f64::from));
        programming.extend((0..12).map(|i| 60.0 + 5.0 * f64::from(i)));
        programming.extend((0..7).map(|i| 120.0 + 30.0 * f64::from(i)));
        programming.dedup();
        let failures = match mode {
            crate::proxier::Mode::Iptables => (
                "kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
                "Cumulative proxy iptables restore failures",
            ),
            crate::proxier::Mode::Nftables => (
                "kubeproxy_sync_proxy_rules_nftables_sync_failures_total",
                "Cumulative proxy nftables sync failures",
            ),
        };
        Metrics {
            sync_duration: histogram(
                r,
                "kubeproxy_sync_proxy_rules_duration_seconds",
                "SyncProxyRules latency in seconds",
                sync(),
            ),
            full_sync_duration: histogram(
                r,
                "kubeproxy_sync_full_proxy_rules_duration_seconds",
                "SyncProxyRules latency in seconds for full resyncs",
                sync(),
            ),
            partial_sync_duration: histogram(
                r,
                "kubeproxy_sync_partial_proxy_rules_duration_seconds",
                "SyncProxyRules latency in seconds for partial resyncs",
                sync(),
            ),
            last_sync_timestamp: gauge(
                r,
                "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                "The last time proxy rules were successfully synced",
            ),
            last_queued_timestamp: gauge(
                r,
                "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
                "The last time a sync of proxy rules was queued",
            ),
            network_programming: histogram(
                r,
                "kubeproxy_network_programming_duration_seconds",
                "In Cluster Network Programming Latency in seconds",
                programming,
            ),
            endpoint_changes: counter(
                r,
                "kubeproxy_sync_proxy_rules_endpoint_changes_total",
                "Cumulative proxy rules Endpoint changes",
            ),
            service_changes: counter(
                r,
                "kubeproxy_sync_proxy_rules_service_changes_total",
                "Cumulative proxy rules Service changes",
            ),
            sync_failures: counter(r, failures.0, failures.1),
        }
    }
}
