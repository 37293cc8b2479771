//! The watch cache (upstream's `storage/cacher`): one etcd watch per
//! resource, fed into memory, serving every client watch and the lists that
//! may be served slightly stale (`resourceVersion=0`, or `NotOlderThan` a
//! revision the cache has reached).
//!
//! A feed per resource prefix starts with a list from etcd, then follows an
//! etcd watch from that revision, keeping the current objects and a window
//! of recent events. A client watch replays what it missed from the window
//! and follows live events; one from before the window gets its own etcd
//! watch (which also reports compaction as upstream does). A watcher that
//! falls too far behind is cut off and logged, never slowing the others.
//! Everything else passes through to the inner storage.

use super::{
    Event, KeyValue, ListOptions, ListResult, Memo, Storage, StorageError, StorageEvent,
    WatchStream,
};
use async_trait::async_trait;
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Events kept per resource for watches that start a little in the past.
const WINDOW: usize = 8192;
/// Live events a watcher may fall behind by before it is cut off (it
/// re-watches from its last revision, as clients do after any end).
const LAG: usize = 16384;

pub struct Cacher {
    inner: Arc<dyn Storage>,
    /// Feeds by resource prefix; the async lock is held while one starts.
    feeds: tokio::sync::Mutex<HashMap<String, Arc<Feed>>>,
}

type Shared = Result<Arc<Event>, StorageError>;

struct Feed {
    resource: String,
    live: broadcast::Sender<Shared>,
    state: Mutex<FeedState>,
}

struct FeedState {
    /// Every event after this revision is in `window` (or still to come).
    since: i64,
    window: VecDeque<Arc<Event>>,
    /// The objects as of `revision`, each with the memo of its encodings.
    objects: BTreeMap<String, (KeyValue, Arc<Memo>)>,
    revision: i64,
    /// The feed's etcd watch ended; a new feed is needed.
    closed: bool,
}

/// `/registry/<resource>/` of any key prefix under it.
fn resource_prefix(prefix: &str) -> Option<String> {
    let mut parts = prefix.trim_start_matches('/').splitn(3, '/');
    let (root, resource) = (parts.next()?, parts.next()?);
    (!root.is_empty() && !resource.is_empty()).then(|| format!("/{root}/{resource}/"))
}

impl FeedState {
    fn apply(&mut self, ev: &Arc<Event>) {
        match &ev.change {
            StorageEvent::Put { kv, .. } => {
                self.objects
                    .insert(kv.key.clone(), (kv.clone(), Arc::default()));
            }
            StorageEvent::Delete { prev, .. } => {
                self.objects.remove(&prev.key);
            }
            StorageEvent::Progress { .. } => {}
        }
        self.revision = self.revision.max(ev.change.revision());
        if ev.change.key().is_some() {
            if self.window.len() == WINDOW
                && let Some(old) = self.window.pop_front()
            {
                self.since = old.change.revision();
            }
            self.window.push_back(ev.clone());
        }
    }
}

impl Cacher {
    pub fn new(inner: Arc<dyn Storage>) -> Self {
        Cacher {
            inner,
            feeds: tokio::sync::Mutex::default(),
        }
    }

    /// The live feed of `prefix`, started (list, then watch) if there is none.
    async fn feed(&self, prefix: &str) -> Result<Arc<Feed>, StorageError> {
        let mut feeds = self.feeds.lock().await;
        if let Some(f) = feeds.get(prefix)
            && !f.state.lock().expect("never poisoned").closed
        {
            return Ok(f.clone());
        }
        let page = self.inner.list(prefix, &ListOptions::default()).await?;
        let events = self.inner.watch(prefix, page.revision).await?;
        let resource = prefix
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let feed = Arc::new(Feed {
            resource,
            live: broadcast::channel(LAG).0,
            state: Mutex::new(FeedState {
                since: page.revision,
                window: VecDeque::new(),
                objects: page
                    .items
                    .into_iter()
                    .map(|kv| (kv.key.clone(), (kv, Arc::default())))
                    .collect(),
                revision: page.revision,
                closed: false,
            }),
        });
        feeds.insert(prefix.to_string(), feed.clone());
        tokio::spawn(run_feed(events, feed.clone()));
        Ok(feed)
    }
}

/// Applies one etcd watch to the feed's state and broadcasts its events.
async fn run_feed(mut events: WatchStream, feed: Arc<Feed>) {
    let end = |feed: &Feed, err: StorageError| {
        let mut state = feed.state.lock().expect("never poisoned");
        state.closed = true;
        let _ = feed.live.send(Err(err));
    };
    while let Some(ev) = events.next().await {
        match ev {
            Ok(ev) => {
                crate::metrics::WATCH_CACHE_EVENTS_RECEIVED
                    .with_label_values(&[&feed.resource])
                    .inc();
                let mut state = feed.state.lock().expect("never poisoned");
                state.apply(&ev);
                // Sent under the lock, so a subscriber joining now sees each event once.
                let _ = feed.live.send(Ok(ev));
            }
            Err(e) => return end(&feed, e),
        }
    }
    end(&feed, StorageError::Unavailable("etcd watch ended".into()));
}

#[async_trait]
impl Storage for Cacher {
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StorageError> {
        self.inner.create(key, value).await
    }
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str, opts: &ListOptions) -> Result<ListResult, StorageError> {
        let (Some(min), Some(resource)) = (opts.cached, resource_prefix(prefix)) else {
            return self.inner.list(prefix, opts).await;
        };
        if opts.revision != 0 {
            return self.inner.list(prefix, opts).await;
        }
        let feed = self.feed(&resource).await?;
        let served = {
            let state = feed.state.lock().expect("never poisoned");
            // Not caught up with what the client has seen: etcd answers instead.
            (state.revision >= min).then(|| {
                let start = opts.start_key.clone().unwrap_or_else(|| prefix.to_string());
                let mut matching = state
                    .objects
                    .range(start..)
                    .take_while(|(k, _)| k.starts_with(prefix));
                let take = if opts.limit > 0 {
                    opts.limit as usize
                } else {
                    usize::MAX
                };
                let (items, memos) = matching
                    .by_ref()
                    .take(take)
                    .map(|(_, (kv, memo))| (kv.clone(), memo.clone()))
                    .unzip();
                ListResult {
                    items,
                    revision: state.revision,
                    remaining: matching.count() as i64,
                    memos,
                }
            })
        };
        match served {
            Some(page) => Ok(page),
            None => {
                self.inner
                    .list(
                        prefix,
                        &ListOptions {
                            cached: None,
                            ..opts.clone()
                        },
                    )
                    .await
            }
        }
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
        let feed = self.feed(&resource).await?;
        let shared = {
            let state = feed.state.lock().expect("never poisoned");
            (revision >= state.since).then(|| {
                let backlog: Vec<Arc<Event>> = state
                    .window
                    .iter()
                    .filter(|e| {
                        e.change.revision() > revision
                            && e.change.key().is_some_and(|k| k.starts_with(prefix))
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
        let resource = feed.resource.clone();
        Ok(super::etcd::async_stream(move |tx| async move {
            let mut last = revision;
            for e in backlog {
                last = e.change.revision();
                if tx.send(Ok(e)).await.is_err() {
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
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(%resource, behind = n, "cutting off a watcher that fell too far behind");
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let rev = ev.change.revision();
                // The backlog and the live events never overlap (subscribed under
                // the feed's lock), and one etcd transaction may write several
                // keys at one revision: so compare with the start, not the last.
                let wanted = match ev.change.key() {
                    Some(k) => rev > revision && k.starts_with(&prefix),
                    // Progress: everything up to it has been seen.
                    None => rev >= last,
                };
                if !wanted {
                    continue;
                }
                last = last.max(rev);
                if tx.send(Ok(ev)).await.is_err() {
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
        ev.change.key().unwrap().to_string()
    }

    fn cached(min: i64) -> ListOptions {
        ListOptions {
            cached: Some(min),
            ..Default::default()
        }
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
        let c = Cacher::new(mem.clone());
        let r0 = mem
            .create("/registry/cms/a/x", b"0".to_vec())
            .await
            .unwrap();
        let mut first = c.watch("/registry/cms/", r0).await.unwrap();
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
        let mut second = c.watch("/registry/cms/b/", r1).await.unwrap();
        assert_eq!(next_key(&mut second).await, "/registry/cms/b/z");
        assert_eq!(c.feeds.lock().await.len(), 1, "one feed per resource");
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
        let c = Cacher::new(mem.clone());
        let r0 = mem.current_revision().await.unwrap();
        let mut w = c.watch("/registry/cms/", r0).await.unwrap();
        let feed = c.feeds.lock().await.get("/registry/cms/").unwrap().clone();
        for k in ["a", "b"] {
            let kv = KeyValue {
                key: format!("/registry/cms/ns/{k}"),
                value: bytes::Bytes::new(),
                mod_revision: r0 + 1,
                stale: false,
            };
            let _ = feed
                .live
                .send(Ok(Event::new(StorageEvent::Put { kv, prev: None })));
        }
        assert_eq!(next_key(&mut w).await, "/registry/cms/ns/a");
        assert_eq!(next_key(&mut w).await, "/registry/cms/ns/b");
    }

    #[tokio::test]
    async fn a_watch_from_before_the_cache_gets_its_own() {
        let mem: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let c = Cacher::new(mem.clone());
        let r0 = mem
            .create("/registry/cms/a/x", b"0".to_vec())
            .await
            .unwrap();
        mem.create("/registry/cms/a/y", b"1".to_vec())
            .await
            .unwrap();
        let mut old = c.watch("/registry/cms/", r0 - 1).await.unwrap();
        assert_eq!(next_key(&mut old).await, "/registry/cms/a/x");
        assert_eq!(next_key(&mut old).await, "/registry/cms/a/y");
    }

    #[tokio::test]
    async fn cached_lists_follow_writes_and_page() {
        let mem: Arc<dyn Storage> = Arc::new(MemoryStorage::default());
        let c = Cacher::new(mem.clone());
        for k in ["a", "b", "c"] {
            mem.create(&format!("/registry/cms/ns/{k}"), k.as_bytes().to_vec())
                .await
                .unwrap();
        }
        let first = c.list("/registry/cms/ns/", &cached(0)).await.unwrap();
        assert_eq!(first.items.len(), 3);
        mem.delete("/registry/cms/ns/b", None).await.unwrap();
        let rev = mem
            .create("/registry/cms/ns/d", b"d".to_vec())
            .await
            .unwrap();
        // The cache follows: a list not older than `rev` sees both changes.
        let mut page = c.list("/registry/cms/ns/", &cached(rev)).await.unwrap();
        for _ in 0..100 {
            if page.revision >= rev {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            page = c.list("/registry/cms/ns/", &cached(rev)).await.unwrap();
        }
        let keys: Vec<&str> = page.items.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "/registry/cms/ns/a",
                "/registry/cms/ns/c",
                "/registry/cms/ns/d"
            ]
        );
        let limited = c
            .list(
                "/registry/cms/ns/",
                &ListOptions {
                    limit: 2,
                    ..cached(0)
                },
            )
            .await
            .unwrap();
        assert_eq!((limited.items.len(), limited.remaining), (2, 1));
    }
}
