//! A daemon's informer: a cache of every object a watch selects, kept by
//! kube-runtime's reflector with its default backoff, and a callback for
//! each change (to wake whatever rebuilds from the cache).

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};

/// Follows `api` with `config` in `tasks`; `on` sees every event.
/// managedFields are dropped: no daemon reads them.
pub fn follow<K>(
    api: Api<K>,
    config: watcher::Config,
    mut on: impl FnMut(&watcher::Event<K>) + Send + 'static,
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
    let (store, writer) = reflector::store();
    let events = watcher(api, config)
        .default_backoff()
        .modify(|o: &mut K| o.meta_mut().managed_fields = None)
        .reflect(writer);
    tasks.spawn(async move {
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            match event {
                Ok(e) => on(&e),
                Err(e) => {
                    tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying")
                }
            }
        }
    });
    store
}
