//! One etcd watch per resource, shared by every client watch of it.
//!
//! Without this each `?watch=1` opens its own etcd watch, and etcd does the
//! fan-out: 100 watchers cost etcd a hundred times the work of one. Here a
//! feed per resource prefix keeps a buffer of recent events; a client watch
//! replays what it missed from the buffer and then follows live events. A
//! watch from before the buffer falls back to its own etcd watch (which
//! also reports compaction as upstream does). Everything else passes through.

use super::{KeyValue, ListOptions, ListResult, Storage, StorageError, StorageEvent, WatchStream};
use async_trait::async_trait;
use futures::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Events kept per resource for watches that start a little in the past.
const BUFFER: usize = 8192;
/// Live events a slow client may fall behind by before its watch is ended
/// (it re-watches from its last revision, as clients do after any end).
const LAG: usize = 16384;

pub struct Multiplexed {
    inner: Arc<dyn Storage>,
    feeds: Mutex<HashMap<String, Arc<Feed>>>,
}

type Shared = Result<Arc<StorageEvent>, StorageError>;

struct Feed {
    live: broadcast::Sender<Shared>,
    state: Mutex<FeedState>,
}

struct FeedState {
    /// Every event after this revision is in `buffer` (or still to come).
    since: i64,
    buffer: VecDeque<Arc<StorageEvent>>,
    /// The feed's own watch ended; new client watches need a new feed.
    closed: bool,
}

fn event_revision(e: &StorageEvent) -> i64 {
    match e {
        StorageEvent::Put { kv, .. } => kv.mod_revision,
        StorageEvent::Delete { revision, .. } | StorageEvent::Progress { revision } => *revision,
    }
}

fn key(e: &StorageEvent) -> Option<&str> {
    match e {
        StorageEvent::Put { kv, .. } => Some(&kv.key),
        StorageEvent::Delete { prev, .. } => Some(&prev.key),
        StorageEvent::Progress { .. } => None,
    }
}

/// `/registry/<resource>/` of any key prefix under it.
fn resource_prefix(prefix: &str) -> Option<String> {
    let mut parts = prefix.trim_start_matches('/').splitn(3, '/');
    let (root, resource) = (parts.next()?, parts.next()?);
    (!root.is_empty() && !resource.is_empty()).then(|| format!("/{root}/{resource}/"))
}

impl Multiplexed {
    pub fn new(inner: Arc<dyn Storage>) -> Self {
        Multiplexed {
            inner,
            feeds: Mutex::default(),
        }
    }

    /// The live feed of `prefix`, started at `revision` if there is none.
    fn feed(&self, prefix: &str, revision: i64) -> Arc<Feed> {
        let mut feeds = self.feeds.lock().expect("never poisoned");
        if let Some(f) = feeds.get(prefix)
            && !f.state.lock().expect("never poisoned").closed
        {
            return f.clone();
        }
        let feed = Arc::new(Feed {
            live: broadcast::channel(LAG).0,
            state: Mutex::new(FeedState {
                since: revision,
                buffer: VecDeque::new(),
                closed: false,
            }),
        });
        feeds.insert(prefix.to_string(), feed.clone());
        tokio::spawn(run_feed(
            self.inner.clone(),
            prefix.to_string(),
            revision,
            feed.clone(),
        ));
        feed
    }
}

/// Follows one etcd watch, buffering and broadcasting its events.
async fn run_feed(inner: Arc<dyn Storage>, prefix: String, revision: i64, feed: Arc<Feed>) {
    let end = |feed: &Feed, err: StorageError| {
        let mut state = feed.state.lock().expect("never poisoned");
        state.closed = true;
        let _ = feed.live.send(Err(err));
    };
    let mut events = match inner.watch(&prefix, revision).await {
        Ok(e) => e,
        Err(e) => return end(&feed, e),
    };
    while let Some(ev) = events.next().await {
        match ev {
            Ok(ev) => {
                let ev = Arc::new(ev);
                let mut state = feed.state.lock().expect("never poisoned");
                if !matches!(*ev, StorageEvent::Progress { .. }) {
                    if state.buffer.len() == BUFFER
                        && let Some(old) = state.buffer.pop_front()
                    {
                        state.since = event_revision(&old);
                    }
                    state.buffer.push_back(ev.clone());
                }
                // Sent under the lock, so a subscriber joining now sees each event once.
                let _ = feed.live.send(Ok(ev));
            }
            Err(e) => return end(&feed, e),
        }
    }
    end(&feed, StorageError::Unavailable("etcd watch ended".into()));
}

#[async_trait]
impl Storage for Multiplexed {
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StorageError> {
        self.inner.create(key, value).await
    }
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str, opts: &ListOptions) -> Result<ListResult, StorageError> {
        self.inner.list(prefix, opts).await
    }
    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_revision: i64,
    ) -> Result<i64, StorageError> {
        self.inner.update(key, value, expected_revision).await
    }
    async fn delete(
        &self,
        key: &str,
        expected_revision: Option<i64>,
    ) -> Result<(KeyValue, i64), StorageError> {
        self.inner.delete(key, expected_revision).await
    }
    async fn current_revision(&self) -> Result<i64, StorageError> {
        self.inner.current_revision().await
    }
    async fn healthy(&self) -> bool {
        self.inner.healthy().await
    }

    async fn watch(&self, prefix: &str, revision: i64) -> Result<WatchStream, StorageError> {
        let Some(resource) = resource_prefix(prefix) else {
            return self.inner.watch(prefix, revision).await;
        };
        let feed = self.feed(&resource, revision);
        let shared = {
            let state = feed.state.lock().expect("never poisoned");
            (revision >= state.since).then(|| {
                let backlog: Vec<Arc<StorageEvent>> = state
                    .buffer
                    .iter()
                    .filter(|e| {
                        event_revision(e) > revision
                            && key(e).is_some_and(|k| k.starts_with(prefix))
                    })
                    .cloned()
                    .collect();
                (backlog, feed.live.subscribe())
            })
        };
        let Some((backlog, mut live)) = shared else {
            return self.inner.watch(prefix, revision).await;
        };
        let prefix = prefix.to_string();
        Ok(super::etcd::async_stream(move |tx| async move {
            let mut last = revision;
            for e in backlog {
                last = event_revision(&e);
                if tx.send(Ok((*e).clone())).await.is_err() {
                    return;
                }
            }
            loop {
                let ev = tokio::select! {
                    _ = tx.closed() => return,
                    ev = live.recv() => ev,
                };
                let ev = match ev {
                    Ok(Ok(ev)) => ev,
                    Ok(Err(e)) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx
                            .send(Err(StorageError::Unavailable(
                                "watcher fell too far behind".into(),
                            )))
                            .await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let rev = event_revision(&ev);
                // The backlog and the live events never overlap (subscribed under
                // the feed's lock), and one etcd transaction may write several
                // keys at one revision: so compare with the start, not the last.
                let wanted = match key(&ev) {
                    Some(k) => rev > revision && k.starts_with(&prefix),
                    // Progress: everything up to it has been seen.
                    None => rev >= last,
                };
                if !wanted {
                    continue;
                }
                if key(&ev).is_some() {
                    last = rev;
                }
                if tx.send(Ok((*ev).clone())).await.is_err() {
                    return;
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryStorage;
    use std::time::Duration;

    async fn next_key(w: &mut WatchStream) -> String {
        let ev = tokio::time::timeout(Duration::from_secs(5), w.next())
            .await
            .expect("an event in time")
            .unwrap()
            .unwrap();
        key(&ev).unwrap().to_string()
    }

    #[test]
    fn resource_prefixes() {
        assert_eq!(
            resource_prefix("/registry/pods/ns1/").as_deref(),
            Some("/registry/pods/")
        );
        assert_eq!(
            resource_prefix("/registry/nodes/").as_deref(),
            Some("/registry/nodes/")
        );
        assert_eq!(resource_prefix("/x"), None);
    }

    #[tokio::test]
    async fn watchers_share_one_feed_and_replay_from_their_revision() {
        let mem: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let m = Multiplexed::new(mem.clone());
        let r0 = mem
            .create("/registry/cms/a/x", b"0".to_vec())
            .await
            .unwrap();
        let mut first = m.watch("/registry/cms/", r0).await.unwrap();
        let r1 = mem
            .create("/registry/cms/a/y", b"1".to_vec())
            .await
            .unwrap();
        mem.create("/registry/cms/b/z", b"2".to_vec())
            .await
            .unwrap();
        assert_eq!(next_key(&mut first).await, "/registry/cms/a/y");
        assert_eq!(next_key(&mut first).await, "/registry/cms/b/z");
        // A second watcher, namespaced and from r1, replays only what it missed.
        let mut second = m.watch("/registry/cms/b/", r1).await.unwrap();
        assert_eq!(next_key(&mut second).await, "/registry/cms/b/z");
        assert_eq!(m.feeds.lock().unwrap().len(), 1, "one feed per resource");
        mem.create("/registry/cms/b/w", b"3".to_vec())
            .await
            .unwrap();
        assert_eq!(next_key(&mut second).await, "/registry/cms/b/w");
        assert_eq!(next_key(&mut first).await, "/registry/cms/b/w");
    }

    #[tokio::test]
    async fn events_sharing_a_revision_all_arrive() {
        // Two keys written by one transaction share a revision (group commit does that).
        let mem: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let m = Multiplexed::new(mem.clone());
        let r0 = mem.current_revision().await.unwrap();
        let mut w = m.watch("/registry/cms/", r0).await.unwrap();
        let feed = m
            .feeds
            .lock()
            .unwrap()
            .get("/registry/cms/")
            .unwrap()
            .clone();
        for k in ["a", "b"] {
            let kv = KeyValue {
                key: format!("/registry/cms/ns/{k}"),
                value: vec![],
                mod_revision: r0 + 1,
            };
            let _ = feed
                .live
                .send(Ok(Arc::new(StorageEvent::Put { kv, prev: None })));
        }
        assert_eq!(next_key(&mut w).await, "/registry/cms/ns/a");
        assert_eq!(next_key(&mut w).await, "/registry/cms/ns/b");
    }

    #[tokio::test]
    async fn a_watch_from_before_the_feed_gets_its_own() {
        let mem: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let m = Multiplexed::new(mem.clone());
        let r0 = mem
            .create("/registry/cms/a/x", b"0".to_vec())
            .await
            .unwrap();
        let r1 = mem
            .create("/registry/cms/a/y", b"1".to_vec())
            .await
            .unwrap();
        let _feed = m.watch("/registry/cms/", r1).await.unwrap();
        let mut old = m.watch("/registry/cms/", r0 - 1).await.unwrap();
        assert_eq!(next_key(&mut old).await, "/registry/cms/a/x");
        assert_eq!(next_key(&mut old).await, "/registry/cms/a/y");
    }
}
