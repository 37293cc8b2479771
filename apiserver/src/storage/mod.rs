//! Key/bytes storage under the registry (upstream's `storage.Interface`).
//! etcd is the implementation a cluster runs; the in-memory one exists for
//! unit tests only. Revisions are etcd revisions and become resourceVersions.

pub mod cacher;
pub mod encryption;
pub mod etcd;
pub mod etcd_members;
pub mod follow;
pub mod group_commit;
pub mod memory;
pub mod view;

use crate::error::ApiError;
use async_trait::async_trait;
use futures::stream::BoxStream;
use std::any::Any;
use std::sync::{Arc, OnceLock};

/// A stored value with the revision that last modified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    /// Shared, so reads from the watch cache hand out the bytes without copying.
    pub value: bytes::Bytes,
    pub mod_revision: i64,
    /// Stored with an encryption provider or key that writes no longer use
    /// (upstream's stale flag): an update writes it again even when the
    /// object did not change, which is how a key rotation rewrites values.
    pub stale: bool,
}

/// One page of a range read, all at one revision.
#[derive(Debug, Clone, Default)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    /// The store revision the page was read at.
    pub revision: i64,
    /// Keys left in the range after this page.
    pub remaining: i64,
    /// Served from memory: a memo per item (same order), shared by every
    /// list that returns the same version of the object.
    pub memos: Vec<Arc<Memo>>,
}

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Start at this key (inclusive) instead of the prefix itself.
    pub start_key: Option<String>,
    /// At most this many items; 0 is no limit.
    pub limit: i64,
    /// Read at this revision; 0 is the newest.
    pub revision: i64,
    /// May be served from the watch cache if it has reached this revision
    /// (Some(0): any); None reads etcd (a consistent read).
    pub cached: Option<i64>,
}

/// A change seen by a watch.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageEvent {
    /// A key was created or modified; `prev` is the value before (None on create).
    Put {
        kv: KeyValue,
        prev: Option<KeyValue>,
    },
    /// A key was deleted at `revision`; `prev` is its last value.
    Delete { prev: KeyValue, revision: i64 },
    /// Nothing changed under the prefix up to `revision` (becomes a BOOKMARK).
    Progress { revision: i64 },
}

/// Work derived from a stored value once and shared by everyone who reads
/// it (decodings, encodings), a slot per kind of work.
#[derive(Default)]
pub struct Memo([OnceLock<Arc<dyn Any + Send + Sync>>; 4]);

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memo")
    }
}

impl Memo {
    /// The value `f` computes, computed once per memo and `slot`; every
    /// later caller gets the same `Arc`.
    pub fn get<T: Any + Send + Sync>(&self, slot: usize, f: impl FnOnce() -> T) -> Arc<T> {
        let any = self.0[slot]
            .get_or_init(|| Arc::new(f()) as Arc<dyn Any + Send + Sync>)
            .clone();
        any.downcast::<T>().expect("a memo slot holds one type")
    }
}

/// A change as every watcher of it shares it: the change itself plus work
/// derived from it once (decoding, encoding) for all of its watchers.
pub struct Event {
    pub change: StorageEvent,
    memo: Memo,
}

impl Event {
    pub fn new(change: StorageEvent) -> Arc<Self> {
        Arc::new(Event {
            change,
            memo: Memo::default(),
        })
    }

    /// See [`Memo::get`].
    pub fn memo<T: Any + Send + Sync>(&self, slot: usize, f: impl FnOnce() -> T) -> Arc<T> {
        self.memo.get(slot, f)
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.change.fmt(f)
    }
}

impl StorageEvent {
    /// The revision the change happened at (for progress: seen up to).
    pub fn revision(&self) -> i64 {
        match self {
            StorageEvent::Put { kv, .. } => kv.mod_revision,
            StorageEvent::Delete { revision, .. } | StorageEvent::Progress { revision } => {
                *revision
            }
        }
    }

    /// The key that changed; None for progress.
    pub fn key(&self) -> Option<&str> {
        match self {
            StorageEvent::Put { kv, .. } => Some(&kv.key),
            StorageEvent::Delete { prev, .. } => Some(&prev.key),
            StorageEvent::Progress { .. } => None,
        }
    }
}

pub type WatchStream = BoxStream<'static, Result<Arc<Event>, StorageError>>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {0} not found")]
    NotFound(String),
    /// The key's revision is not the one the caller read (optimistic concurrency).
    #[error("key {0} was modified concurrently")]
    Conflict(String),
    /// The requested revision was compacted away.
    #[error("required revision {requested} has been compacted (oldest kept {compacted})")]
    Compacted { requested: i64, compacted: i64 },
    /// The store cannot be reached; retryable.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A guaranteed-update function refused the change, or a stored value
    /// could not be decrypted (an internal error); passed through as is.
    #[error("{0}")]
    Rejected(Box<ApiError>),
}

/// The update function of [`Storage::guaranteed_update`]: gets the current
/// value (None if the key does not exist) and returns the new bytes, or an
/// error that aborts the update.
pub type UpdateFn<'a> = dyn FnMut(Option<&KeyValue>) -> Result<Vec<u8>, ApiError> + Send + 'a;

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Creates `key`; fails with AlreadyExists. Returns the new revision.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StorageError>;
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError>;
    /// Keys under `prefix`, in key order.
    async fn list(&self, prefix: &str, opts: &ListOptions) -> Result<ListResult, StorageError>;
    /// Writes `value` if the key's revision is still `expected_revision`
    /// (Conflict otherwise, NotFound if it is gone). Returns the new revision.
    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_revision: i64,
    ) -> Result<i64, StorageError>;
    /// Deletes `key`, only at `expected_revision` when given. Returns the
    /// deleted value and the revision of the deletion.
    async fn delete(
        &self,
        key: &str,
        expected_revision: Option<i64>,
    ) -> Result<(KeyValue, i64), StorageError>;
    /// Changes under `prefix` after `revision` (exclusive), then live ones.
    async fn watch(&self, prefix: &str, revision: i64) -> Result<WatchStream, StorageError>;
    /// The newest revision of the store.
    async fn current_revision(&self) -> Result<i64, StorageError>;
    /// Whether the backend answers (for /readyz).
    async fn healthy(&self) -> bool;

    /// Reads, applies `f`, writes with a revision check, and retries from a
    /// fresh read when someone else wrote in between (upstream's
    /// GuaranteedUpdate). `f` sees None when the key does not exist, and its
    /// result is then created.
    async fn guaranteed_update(
        &self,
        key: &str,
        f: &mut UpdateFn<'_>,
    ) -> Result<(Vec<u8>, i64), StorageError> {
        // Bounded: a key rewritten by others this often is an outage, not contention.
        for _ in 0..64 {
            let current = self.get(key).await?;
            let new = f(current.as_ref()).map_err(|e| StorageError::Rejected(Box::new(e)))?;
            if let Some(cur) = &current
                && cur.value == new
                && !cur.stale
            {
                return Ok((new, cur.mod_revision));
            }
            let written = match &current {
                Some(cur) => self.update(key, new.clone(), cur.mod_revision).await,
                None => self.create(key, new.clone()).await,
            };
            match written {
                Ok(rev) => return Ok((new, rev)),
                Err(
                    StorageError::Conflict(_)
                    | StorageError::AlreadyExists(_)
                    | StorageError::NotFound(_),
                ) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StorageError::Conflict(key.to_string()))
    }
}

/// The end of the key range that holds every key starting with `prefix`.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}
