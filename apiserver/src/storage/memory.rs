//! An in-memory [`Storage`] with etcd's revision semantics, for unit tests
//! only: a cluster always runs on etcd.

use super::{KeyValue, ListOptions, ListResult, Storage, StorageError, StorageEvent, WatchStream};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::sync::broadcast;

#[derive(Default)]
struct State {
    revision: i64,
    data: BTreeMap<String, KeyValue>,
    /// Every change ever made, for watches that start in the past.
    history: Vec<StorageEvent>,
}

pub struct MemoryStorage {
    state: Mutex<State>,
    events: broadcast::Sender<StorageEvent>,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        MemoryStorage {
            state: Mutex::default(),
            events: broadcast::channel(1024).0,
        }
    }
}

impl MemoryStorage {
    fn put(&self, state: &mut State, key: &str, value: Vec<u8>) -> i64 {
        state.revision += 1;
        let kv = KeyValue {
            key: key.to_string(),
            value: value.into(),
            mod_revision: state.revision,
            stale: false,
        };
        let prev = state.data.insert(key.to_string(), kv.clone());
        let event = StorageEvent::Put { kv, prev };
        state.history.push(event.clone());
        let _ = self.events.send(event);
        state.revision
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StorageError> {
        let mut state = self.state.lock().unwrap();
        if state.data.contains_key(key) {
            return Err(StorageError::AlreadyExists(key.to_string()));
        }
        Ok(self.put(&mut state, key, value))
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        Ok(self.state.lock().unwrap().data.get(key).cloned())
    }

    async fn list(&self, prefix: &str, opts: &ListOptions) -> Result<ListResult, StorageError> {
        let state = self.state.lock().unwrap();
        // Only the newest revision is kept: an old one reads as compacted.
        if opts.revision > 0 && opts.revision < state.revision {
            return Err(StorageError::Compacted {
                requested: opts.revision,
                compacted: state.revision,
            });
        }
        let start = opts.start_key.clone().unwrap_or_else(|| prefix.to_string());
        let all: Vec<&KeyValue> = state
            .data
            .range(start..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .collect();
        let take = if opts.limit > 0 {
            (opts.limit as usize).min(all.len())
        } else {
            all.len()
        };
        Ok(ListResult {
            items: all[..take].iter().map(|kv| (*kv).clone()).collect(),
            revision: state.revision,
            remaining: (all.len() - take) as i64,
            memos: Vec::new(),
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_revision: i64,
    ) -> Result<i64, StorageError> {
        let mut state = self.state.lock().unwrap();
        match state.data.get(key) {
            None => Err(StorageError::NotFound(key.to_string())),
            Some(cur) if cur.mod_revision != expected_revision => {
                Err(StorageError::Conflict(key.to_string()))
            }
            Some(_) => Ok(self.put(&mut state, key, value)),
        }
    }

    async fn delete(
        &self,
        key: &str,
        expected_revision: Option<i64>,
    ) -> Result<(KeyValue, i64), StorageError> {
        let mut state = self.state.lock().unwrap();
        match state.data.get(key) {
            None => return Err(StorageError::NotFound(key.to_string())),
            Some(cur) if expected_revision.is_some_and(|r| r != cur.mod_revision) => {
                return Err(StorageError::Conflict(key.to_string()));
            }
            Some(_) => {}
        }
        state.revision += 1;
        let revision = state.revision;
        let prev = state.data.remove(key).expect("checked above");
        let event = StorageEvent::Delete {
            prev: prev.clone(),
            revision,
        };
        state.history.push(event.clone());
        let _ = self.events.send(event);
        Ok((prev, revision))
    }

    async fn watch(&self, prefix: &str, revision: i64) -> Result<WatchStream, StorageError> {
        let (past, mut live) = {
            let state = self.state.lock().unwrap();
            let past: Vec<StorageEvent> = state
                .history
                .iter()
                .filter(|e| {
                    e.revision() > revision && e.key().unwrap_or_default().starts_with(prefix)
                })
                .cloned()
                .collect();
            (past, self.events.subscribe())
        };
        let prefix = prefix.to_string();
        Ok(super::etcd::async_stream(move |tx| async move {
            let mut last = revision;
            for e in past {
                last = e.revision();
                if tx.send(Ok(super::Event::new(e))).await.is_err() {
                    return;
                }
            }
            while let Ok(e) = live.recv().await {
                if e.revision() > last
                    && e.key().unwrap_or_default().starts_with(&prefix)
                    && tx.send(Ok(super::Event::new(e))).await.is_err()
                {
                    return;
                }
            }
        }))
    }

    async fn current_revision(&self) -> Result<i64, StorageError> {
        Ok(self.state.lock().unwrap().revision)
    }

    async fn healthy(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn revisions_and_conflicts_follow_etcd() {
        let s = MemoryStorage::default();
        let r1 = s.create("/registry/pods/a/x", b"1".to_vec()).await.unwrap();
        assert!(matches!(
            s.create("/registry/pods/a/x", b"1".to_vec()).await,
            Err(StorageError::AlreadyExists(_))
        ));
        let r2 = s
            .update("/registry/pods/a/x", b"2".to_vec(), r1)
            .await
            .unwrap();
        assert!(r2 > r1);
        assert!(matches!(
            s.update("/registry/pods/a/x", b"3".to_vec(), r1).await,
            Err(StorageError::Conflict(_))
        ));
        let (prev, _) = s.delete("/registry/pods/a/x", Some(r2)).await.unwrap();
        assert_eq!(prev.value, &b"2"[..]);
    }

    #[tokio::test]
    async fn guaranteed_update_retries_and_skips_noops() {
        let s = MemoryStorage::default();
        s.create("/k", b"1".to_vec()).await.unwrap();
        let (v, _) = s
            .guaranteed_update("/k", &mut |cur| {
                let n: i32 = String::from_utf8_lossy(&cur.unwrap().value)
                    .parse()
                    .unwrap();
                Ok((n + 1).to_string().into_bytes())
            })
            .await
            .unwrap();
        assert_eq!(v, b"2");
        let before = s.current_revision().await.unwrap();
        s.guaranteed_update("/k", &mut |cur| Ok(cur.unwrap().value.to_vec()))
            .await
            .unwrap();
        assert_eq!(
            s.current_revision().await.unwrap(),
            before,
            "an unchanged value is not written"
        );
    }

    #[tokio::test]
    async fn watch_replays_history_after_revision_then_follows() {
        let s = MemoryStorage::default();
        let r1 = s.create("/p/a", b"a".to_vec()).await.unwrap();
        s.create("/p/b", b"b".to_vec()).await.unwrap();
        s.create("/q/c", b"c".to_vec()).await.unwrap();
        let mut w = s.watch("/p/", r1).await.unwrap();
        s.delete("/p/a", None).await.unwrap();
        let first = w.next().await.unwrap().unwrap().change.clone();
        assert!(matches!(first, StorageEvent::Put { ref kv, .. } if kv.key == "/p/b"));
        let second = w.next().await.unwrap().unwrap().change.clone();
        assert!(matches!(second, StorageEvent::Delete { ref prev, .. } if prev.key == "/p/a"));
    }

    #[tokio::test]
    async fn list_pages_by_start_key() {
        let s = MemoryStorage::default();
        for k in ["a", "b", "c"] {
            s.create(&format!("/p/{k}"), vec![]).await.unwrap();
        }
        let page = s
            .list(
                "/p/",
                &ListOptions {
                    limit: 2,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.remaining, 1);
        let rest = s
            .list(
                "/p/",
                &ListOptions {
                    start_key: Some("/p/b\0".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            rest.items
                .iter()
                .map(|k| k.key.as_str())
                .collect::<Vec<_>>(),
            ["/p/c"]
        );
    }
}
