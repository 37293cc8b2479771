//! What the store knows of namespaces without asking etcd: a map from name
//! to "terminating", fed by a list and a watch (upstream's NamespaceLifecycle
//! admission reads an informer the same way). A name missing from the map
//! is looked up live, so a namespace created a moment ago is never refused.

use crate::storage::Storage;
use crate::storage::follow::{Followed, follow};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Default)]
pub struct NamespaceCache {
    /// name -> whether it is terminating
    known: RwLock<HashMap<String, bool>>,
}

/// Whether a stored namespace is on its way out.
pub fn terminating(ns: &Value) -> bool {
    ns["status"]["phase"] == "Terminating" || !ns["metadata"]["deletionTimestamp"].is_null()
}

fn terminating_value(value: &[u8]) -> bool {
    terminating(&serde_json::from_slice(value).unwrap_or_default())
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

    /// Keeps the cache in step with etcd until the task is dropped.
    pub async fn run(self: Arc<Self>, storage: Arc<dyn Storage>, prefix: String) {
        follow(storage, prefix, |change| {
            let mut known = self.known.write().expect("never poisoned");
            match change {
                Followed::Listed(items) => {
                    *known = items
                        .iter()
                        .map(|kv| (name_of(&kv.key), terminating_value(&kv.value)))
                        .collect();
                }
                Followed::Put(kv) => {
                    known.insert(name_of(&kv.key), terminating_value(&kv.value));
                }
                Followed::Deleted(prev) => {
                    known.remove(&name_of(&prev.key));
                }
            }
        })
        .await
    }
}
