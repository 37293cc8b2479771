//! What the store knows of namespaces without asking etcd: a map from name
//! to "terminating", fed by a list and a watch (upstream's NamespaceLifecycle
//! admission reads an informer the same way). A name missing from the map
//! is looked up live, so a namespace created a moment ago is never refused.

use crate::storage::{ListOptions, Storage, StorageEvent};
use futures::StreamExt;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Default)]
pub struct NamespaceCache {
    /// name -> whether it is terminating
    known: RwLock<HashMap<String, bool>>,
}

/// Whether a stored namespace is on its way out.
pub fn terminating(ns: &Value) -> bool {
    ns["status"]["phase"] == "Terminating" || !ns["metadata"]["deletionTimestamp"].is_null()
}

fn name_of(key: &str) -> String {
    key.rsplit('/').next().unwrap_or_default().to_string()
}

impl NamespaceCache {
    /// `Some(terminating)` for a namespace the cache has seen, else None.
    pub fn get(&self, name: &str) -> Option<bool> {
        self.known
            .read()
            .expect("never poisoned")
            .get(name)
            .copied()
    }

    fn put(&self, key: &str, value: &[u8]) {
        let ns: Value = serde_json::from_slice(value).unwrap_or_default();
        self.known
            .write()
            .expect("never poisoned")
            .insert(name_of(key), terminating(&ns));
    }

    /// Keeps the cache in step with etcd until the task is dropped: list,
    /// then watch from the list's revision; relist after any watch error.
    pub async fn run(self: Arc<Self>, storage: Arc<dyn Storage>, prefix: String) {
        loop {
            let page = match storage.list(&prefix, &ListOptions::default()).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::debug!(error = %e, "namespace cache list failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let fresh: HashMap<String, bool> = page
                .items
                .iter()
                .map(|kv| {
                    (
                        name_of(&kv.key),
                        terminating(&serde_json::from_slice(&kv.value).unwrap_or_default()),
                    )
                })
                .collect();
            *self.known.write().expect("never poisoned") = fresh;
            let Ok(mut events) = storage.watch(&prefix, page.revision).await else {
                continue;
            };
            while let Some(ev) = events.next().await {
                match ev.as_ref().map(|e| &e.change) {
                    Ok(StorageEvent::Put { kv, .. }) => self.put(&kv.key, &kv.value),
                    Ok(StorageEvent::Delete { prev, .. }) => {
                        self.known
                            .write()
                            .expect("never poisoned")
                            .remove(&name_of(&prev.key));
                    }
                    Ok(StorageEvent::Progress { .. }) => {}
                    Err(_) => break,
                }
            }
        }
    }
}
