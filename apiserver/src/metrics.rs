//! Prometheus metrics with upstream's names and labels
//! (staging/src/k8s.io/apiserver/pkg/endpoints/metrics, storage/etcd3/metrics).

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::LazyLock;
use std::time::Instant;

pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

const REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];
const ETCD_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

fn register<T: prometheus::core::Collector + Clone + 'static>(c: T) -> T {
    REGISTRY
        .register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

pub static REQUEST_TOTAL: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new("apiserver_request_total", "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code."),
            &["verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component", "code"],
        )
        .expect("valid metric"),
    )
});

pub static REQUEST_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new("apiserver_request_duration_seconds", "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.")
                .buckets(REQUEST_BUCKETS.to_vec()),
            &["verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component"],
        )
        .expect("valid metric"),
    )
});

pub static INFLIGHT: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register(
        IntGaugeVec::new(
            Opts::new("apiserver_current_inflight_requests", "Maximal number of currently used inflight request limit of this apiserver per request kind in last second."),
            &["request_kind"],
        )
        .expect("valid metric"),
    )
});

pub static ETCD_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new(
                "etcd_request_duration_seconds",
                "Etcd request latency in seconds for each operation and object type.",
            )
            .buckets(ETCD_BUCKETS.to_vec()),
            &["operation", "type"],
        )
        .expect("valid metric"),
    )
});

pub static STORAGE_OBJECTS: LazyLock<GaugeVec> = LazyLock::new(|| {
    register(
        GaugeVec::new(
            Opts::new("apiserver_storage_objects", "Number of stored objects at the time of last check split by kind. In case of a fetching error, the value will be -1."),
            &["resource"],
        )
        .expect("valid metric"),
    )
});

pub static WATCH_CACHE_EVENTS_RECEIVED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "apiserver_watch_cache_events_received_total",
                "Counter of events received in watch cache broken by resource type.",
            ),
            &["resource"],
        )
        .expect("valid metric"),
    )
});

pub static WATCH_EVENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "apiserver_watch_events_total",
                "Number of events sent in watch clients",
            ),
            &["group", "version", "kind"],
        )
        .expect("valid metric"),
    )
});

pub static REGISTERED_WATCHERS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register(
        IntGaugeVec::new(
            Opts::new(
                "apiserver_registered_watchers",
                "Number of currently registered watchers for a given resources",
            ),
            &["group", "version", "kind"],
        )
        .expect("valid metric"),
    )
});

/// Labels of one API request, as upstream's `MonitorRequest` records them.
pub struct RequestLabels<'a> {
    pub verb: &'a str,
    pub dry_run: bool,
    pub group: &'a str,
    pub version: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub scope: &'a str,
}

pub fn observe_request(l: &RequestLabels<'_>, code: u16, started: Instant) {
    let dry = if l.dry_run { "All" } else { "" };
    let code = code.to_string();
    REQUEST_TOTAL
        .with_label_values(&[
            l.verb,
            dry,
            l.group,
            l.version,
            l.resource,
            l.subresource,
            l.scope,
            "apiserver",
            &code,
        ])
        .inc();
    // Upstream leaves long-running requests (watches) out of the latency histogram.
    if l.verb != "WATCH" {
        REQUEST_DURATION
            .with_label_values(&[
                l.verb,
                dry,
                l.group,
                l.version,
                l.resource,
                l.subresource,
                l.scope,
                "apiserver",
            ])
            .observe(started.elapsed().as_secs_f64());
    }
}

/// Records one etcd call; `key` gives the object type (`/registry/<resource>/...`).
pub fn etcd_request(operation: &str, key: &str, started: Instant) {
    let kind = key.trim_start_matches('/').split('/').nth(1).unwrap_or("");
    ETCD_DURATION
        .with_label_values(&[operation, kind])
        .observe(started.elapsed().as_secs_f64());
}

/// Counts a request in flight for as long as the guard lives.
pub struct InflightGuard(&'static str);

impl InflightGuard {
    pub fn new(mutating: bool) -> Self {
        let kind = if mutating { "mutating" } else { "readOnly" };
        INFLIGHT.with_label_values(&[kind]).inc();
        InflightGuard(kind)
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        INFLIGHT.with_label_values(&[self.0]).dec();
    }
}

/// Counts one client watch in `apiserver_registered_watchers` while it
/// lives, and the events sent to it in `apiserver_watch_events_total`.
pub struct WatcherGuard {
    labels: [&'static str; 3],
    events: prometheus::IntCounter,
}

impl WatcherGuard {
    pub fn new(group: &'static str, version: &'static str, kind: &'static str) -> Self {
        let labels = [group, version, kind];
        REGISTERED_WATCHERS.with_label_values(&labels).inc();
        WatcherGuard {
            labels,
            events: WATCH_EVENTS.with_label_values(&labels),
        }
    }

    pub fn sent(&self) {
        self.events.inc();
    }
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        REGISTERED_WATCHERS.with_label_values(&self.labels).dec();
    }
}

/// The text exposition of every metric.
pub fn render() -> Vec<u8> {
    // Touch the lazies so the families exist before the first request.
    LazyLock::force(&REQUEST_TOTAL);
    LazyLock::force(&REQUEST_DURATION);
    for kind in ["mutating", "readOnly"] {
        INFLIGHT.with_label_values(&[kind]);
    }
    LazyLock::force(&ETCD_DURATION);
    LazyLock::force(&STORAGE_OBJECTS);
    LazyLock::force(&WATCH_CACHE_EVENTS_RECEIVED);
    LazyLock::force(&WATCH_EVENTS);
    LazyLock::force(&REGISTERED_WATCHERS);
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&REGISTRY.gather(), &mut out)
        .expect("text encoding cannot fail");
    out
}
