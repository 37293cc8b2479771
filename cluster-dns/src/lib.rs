//! cluster-dns: the cluster's DNS add-on. It answers the names of the
//! Kubernetes DNS specification (as CoreDNS's `kubernetes` plugin with
//! `pods insecure`) from Services and EndpointSlices it watches through
//! the apiserver, and forwards every other name to the upstream resolvers.
//!
//! `options` has the flags; `records` the zone built from the objects;
//! `handler` turns a query into an answer; `server` the UDP and TCP loops;
//! `forward` the upstream exchange; `metrics` CoreDNS's metrics.
#![forbid(unsafe_code)]

pub mod fixtures;
pub mod forward;
pub mod handler;
pub mod metrics;
pub mod options;
pub mod records;
pub mod server;
pub mod udp;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Notify;

/// The sockets `run` serves on, bound by the caller.
pub struct Listeners {
    pub udp: UdpSocket,
    pub tcp: TcpListener,
    /// /healthz, /readyz and /metrics over plain HTTP, if any.
    pub metrics: Option<TcpListener>,
}

/// Watches Services and EndpointSlices and answers DNS until `shutdown`
/// resolves. Until both caches have synced, names in the cluster domain
/// get SERVFAIL and /readyz says not ready.
pub async fn run(
    settings: options::Settings,
    client: kube::Client,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) {
    let metrics = Arc::new(metrics::Metrics::new());
    let health = common::serving::Health::new(metrics.registry.clone());
    let records = Arc::new(records::Records::default());
    if settings.upstreams.is_empty() {
        tracing::warn!("no upstream resolver: names outside the cluster domain get SERVFAIL");
    }
    let forwarder = forward::Forwarder::new(
        settings.upstreams.clone(),
        settings.forward_timeout,
        metrics.clone(),
    );
    let handler = Arc::new(handler::Handler::new(
        settings.zone.clone(),
        settings.listen,
        records.clone(),
        forwarder,
        metrics,
    ));

    let mut tasks = tokio::task::JoinSet::new();
    if let Some(listener) = listeners.metrics {
        let health = health.clone();
        tasks.spawn(common::serving::serve(
            listener,
            None,
            health,
            std::future::pending(),
        ));
    }
    tracing::info!(listen = %settings.listen, zone = %settings.zone, "serving DNS");
    let changed = Arc::new(Notify::new());
    let services = follow::<Service>(client.clone(), changed.clone(), &mut tasks);
    let slices = follow::<EndpointSlice>(client, changed.clone(), &mut tasks);
    tasks.spawn(async move {
        // No answers from a half-listed cluster: wait for both lists.
        let _ = services.wait_until_ready().await;
        let _ = slices.wait_until_ready().await;
        let rebuild = || {
            let started = Instant::now();
            let index = records::Index::build(
                &settings.zone,
                settings.ttl,
                unix_now(),
                services.state().iter().map(AsRef::as_ref),
                slices.state().iter().map(AsRef::as_ref),
            );
            tracing::debug!(names = index.len(), took = ?started.elapsed(), "zone rebuilt");
            records.set(index);
        };
        rebuild();
        tracing::info!(
            services = services.len(),
            endpoint_slices = slices.len(),
            "caches synced, answering"
        );
        health.set_ready();
        loop {
            // Changes during a rebuild leave one permit: they coalesce.
            changed.notified().await;
            rebuild();
        }
    });
    server::serve(handler, listeners.udp, listeners.tcp, shutdown).await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

/// A cache of every `K` in the cluster, kept by a watch in `tasks`;
/// `changed` is notified on every change and once the first list is in.
fn follow<K>(
    client: kube::Client,
    changed: Arc<Notify>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let on = move |event: &watcher::Event<K>| {
        if matches!(
            event,
            watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone
        ) {
            changed.notify_one();
        }
    };
    common::watch::follow(Api::<K>::all(client), watcher::Config::default(), on, tasks)
}

/// The SOA serial: the time of the last change, as CoreDNS's.
fn unix_now() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    secs as u32
}
