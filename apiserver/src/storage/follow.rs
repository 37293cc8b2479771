//! An in-memory view of a key prefix kept in step with the store (the
//! apiserver's own informers: the namespace cache, the RBAC cache): a
//! list, then a watch from the list's revision; after a watch error a
//! fresh list replaces the whole view, so nothing deleted meanwhile stays.

use super::{KeyValue, ListOptions, Storage, StorageEvent};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// What the view hears.
pub enum Followed<'a> {
    /// Everything under the prefix: the view is replaced by it.
    Listed(&'a [KeyValue]),
    Put(&'a KeyValue),
    /// The last value of a deleted key.
    Deleted(&'a KeyValue),
}

/// Calls `on` with `prefix`'s changes until the task is dropped.
pub async fn follow(storage: Arc<dyn Storage>, prefix: String, mut on: impl FnMut(Followed<'_>)) {
    loop {
        let page = match storage.list(&prefix, &ListOptions::default()).await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(%prefix, error = %e, "listing for a cache failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        on(Followed::Listed(&page.items));
        let Ok(mut events) = storage.watch(&prefix, page.revision).await else {
            continue;
        };
        while let Some(ev) = events.next().await {
            match ev.as_ref().map(|e| &e.change) {
                Ok(StorageEvent::Put { kv, .. }) => on(Followed::Put(kv)),
                Ok(StorageEvent::Delete { prev, .. }) => on(Followed::Deleted(prev)),
                Ok(StorageEvent::Progress { .. }) => {}
                Err(_) => break,
            }
        }
    }
}
