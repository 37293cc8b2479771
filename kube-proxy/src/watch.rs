//! The Services and EndpointSlices kube-proxy follows, as upstream's
//! informers select them: not those of another proxy
//! (`service.kubernetes.io/service-proxy-name`), not headless ones. Each
//! change wakes the sync loop; an EndpointSlice change also brings the
//! time its cause happened (`endpoints.kubernetes.io/last-change-trigger-time`),
//! for the network programming latency.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::Notify;

pub const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// What changed since the last sync.
#[derive(Default)]
pub struct Pending {
    pub trigger_times: Vec<SystemTime>,
    pub service_changes: u64,
    pub endpoint_changes: u64,
}

pub struct Watched {
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub changed: Arc<Notify>,
    pub pending: Arc<Mutex<Pending>>,
}

impl Watched {
    /// Starts both watches in `tasks`.
    pub fn start(client: &kube::Client, tasks: &mut tokio::task::JoinSet<()>) -> Watched {
        let changed = Arc::new(Notify::new());
        let pending = Arc::new(Mutex::new(Pending::default()));
        let services = follow(
            Api::<Service>::all(client.clone()),
            "!service.kubernetes.io/service-proxy-name",
            changed.clone(),
            pending.clone(),
            |p, _| p.service_changes += 1,
            tasks,
        );
        let slices = follow(
            Api::<EndpointSlice>::all(client.clone()),
            "!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name",
            changed.clone(),
            pending.clone(),
            |p, slice: Option<&EndpointSlice>| {
                p.endpoint_changes += 1;
                if let Some(t) = slice.and_then(trigger_time) {
                    p.trigger_times.push(t);
                }
            },
            tasks,
        );
        Watched {
            services,
            slices,
            changed,
            pending,
        }
    }

    pub async fn wait_until_synced(&self) {
        let _ = self.services.wait_until_ready().await;
        let _ = self.slices.wait_until_ready().await;
    }

    pub fn take_pending(&self) -> Pending {
        std::mem::take(&mut *self.pending.lock().expect("not poisoned"))
    }
}

pub fn trigger_time(slice: &EndpointSlice) -> Option<SystemTime> {
    let text = slice.metadata.annotations.as_ref()?.get(TRIGGER_TIME)?;
    let ts: jiff::Timestamp = text.parse().ok()?;
    Some(SystemTime::from(ts))
}

fn follow<K>(
    api: Api<K>,
    labels: &str,
    changed: Arc<Notify>,
    pending: Arc<Mutex<Pending>>,
    count: fn(&mut Pending, Option<&K>),
    tasks: &mut tokio::task::JoinSet<()>,
) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let on = move |event: &watcher::Event<K>| {
        match event {
            watcher::Event::Apply(obj) => {
                count(&mut pending.lock().expect("not poisoned"), Some(obj))
            }
            watcher::Event::Delete(_) => count(&mut pending.lock().expect("not poisoned"), None),
            // A relist: the store is replaced once it is done.
            watcher::Event::InitDone => {}
            _ => return,
        }
        changed.notify_one();
    };
    common::watch::follow(api, watcher::Config::default().labels(labels), on, tasks)
}
