//! A decoded, in-memory copy of every object under a key prefix (what
//! upstream's admission plugins and the node authorizer read from
//! informers): fed by [`follow`], readable without awaiting etcd.

use super::Storage;
use super::follow::{Followed, follow};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

pub struct View {
    objects: RwLock<BTreeMap<String, Arc<Value>>>,
    synced: watch::Sender<bool>,
    storage: Arc<dyn Storage>,
    /// The key prefix, stripped from the keys the map holds.
    prefix: String,
    prefix_len: usize,
    /// What of each object is kept (all of it, or the fields a reader needs).
    project: fn(Value) -> Value,
}

/// How long a read waits for the first list before giving up (upstream's
/// admission refuses with "not yet ready to handle request" meanwhile).
const SYNC_WAIT: Duration = Duration::from_secs(10);

impl View {
    /// Starts following `prefix` (ending in '/'); the task lives as long as the process.
    pub fn spawn(storage: Arc<dyn Storage>, prefix: String) -> Arc<View> {
        View::spawn_projected(storage, prefix, |v| v)
    }

    /// A view keeping only `project` of each object: the memory of a view
    /// of every pod is then that of the fields kept.
    pub fn spawn_projected(
        storage: Arc<dyn Storage>,
        prefix: String,
        project: fn(Value) -> Value,
    ) -> Arc<View> {
        let view = Arc::new(View {
            objects: RwLock::default(),
            synced: watch::Sender::new(false),
            storage: storage.clone(),
            prefix: prefix.clone(),
            prefix_len: prefix.len(),
            project,
        });
        let feed = view.clone();
        tokio::spawn(async move {
            follow(storage, prefix, |change| feed.apply(change)).await;
        });
        view
    }

    fn apply(&self, change: Followed<'_>) {
        let decode = |v: &[u8]| {
            serde_json::from_slice::<Value>(v)
                .ok()
                .map(|v| Arc::new((self.project)(v)))
        };
        let mut objects = self.objects.write().expect("never poisoned");
        match change {
            Followed::Listed(items) => {
                *objects = items
                    .iter()
                    .filter_map(|kv| {
                        Some((kv.key[self.prefix_len..].to_string(), decode(&kv.value)?))
                    })
                    .collect();
                self.synced.send_replace(true);
            }
            Followed::Put(kv) => {
                if let Some(v) = decode(&kv.value) {
                    objects.insert(kv.key[self.prefix_len..].to_string(), v);
                }
            }
            Followed::Deleted(prev) => {
                objects.remove(&prev.key[self.prefix_len..]);
            }
        }
    }

    /// Waits for the first list; false when it did not come in time.
    pub async fn synced(&self) -> bool {
        let mut rx = self.synced.subscribe();
        tokio::time::timeout(SYNC_WAIT, rx.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The object at `rest` (the key after the prefix: `ns/name` or `name`).
    pub fn get(&self, rest: &str) -> Option<Arc<Value>> {
        self.objects
            .read()
            .expect("never poisoned")
            .get(rest)
            .cloned()
    }

    /// The object at `rest`, read from the store when the view has not
    /// (yet) seen it: something created a moment ago is never missed.
    pub async fn fetch(&self, rest: &str) -> Option<Arc<Value>> {
        if let Some(v) = self.get(rest) {
            return Some(v);
        }
        let kv = self
            .storage
            .get(&format!("{}{rest}", self.prefix))
            .await
            .ok()??;
        serde_json::from_slice(&kv.value)
            .ok()
            .map(|v| Arc::new((self.project)(v)))
    }

    /// Every object whose key (after the prefix) starts with `within`
    /// (`"ns/"` for one namespace, `""` for all).
    pub fn list(&self, within: &str) -> Vec<Arc<Value>> {
        self.objects
            .read()
            .expect("never poisoned")
            .range(within.to_string()..)
            .take_while(|(k, _)| k.starts_with(within))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;

    #[tokio::test]
    async fn follows_creates_and_deletes_under_its_prefix() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        storage
            .create("/r/things/a/x", br#"{"n":1}"#.to_vec())
            .await
            .unwrap();
        storage
            .create("/r/things/b/y", br#"{"n":2}"#.to_vec())
            .await
            .unwrap();
        storage
            .create("/r/other/z", br#"{"n":3}"#.to_vec())
            .await
            .unwrap();
        let view = View::spawn(storage.clone(), "/r/things/".into());
        assert!(view.synced().await);
        assert_eq!(view.get("a/x").unwrap()["n"], 1);
        assert_eq!(view.list("b/").len(), 1);
        assert_eq!(view.list("").len(), 2);
        storage.delete("/r/things/a/x", None).await.unwrap();
        storage
            .create("/r/things/b/w", br#"{"n":4}"#.to_vec())
            .await
            .unwrap();
        for _ in 0..100 {
            if view.get("a/x").is_none() && view.list("b/").len() == 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the view did not follow the changes");
    }
}
