//! The etcd v3 storage. Writes are single transactions with a revision
//! compare, so nothing is acknowledged before etcd has committed it.
//! Values pass through the encryption-at-rest transformers on the way in
//! and out, so everything above (the watch cache too) sees plaintext.

use super::encryption::{TransformError, ValueTransformers};
use super::etcd_members::Members;
use super::group_commit::GroupCommit;
use super::{
    Event, KeyValue, ListOptions, ListResult, Storage, StorageError, StorageEvent, WatchStream,
    prefix_end,
};
use crate::error::ApiError;
use async_trait::async_trait;
use etcd_client::{
    Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, Identity, TlsOptions,
    Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often an idle watch asks etcd for its progress (a BOOKMARK to clients).
const PROGRESS_INTERVAL: Duration = Duration::from_secs(30);

pub struct EtcdStorage {
    members: Arc<Members>,
    creates: GroupCommit,
    /// Encryption at rest (`--encryption-provider-config`).
    values: Arc<ValueTransformers>,
}

/// TLS material for the etcd connection (`--etcd-cafile/certfile/keyfile`).
#[derive(Debug, Clone, Default)]
pub struct EtcdTls {
    pub ca: Option<Vec<u8>>,
    pub cert_and_key: Option<(Vec<u8>, Vec<u8>)>,
}

fn unavailable(e: etcd_client::Error) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

/// A value that does not encrypt or decrypt is an internal error, as upstream's.
fn transform_error(key: &str, e: TransformError) -> StorageError {
    StorageError::Rejected(Box::new(ApiError::internal(format!(
        "unable to transform key {key:?}: {e}"
    ))))
}

/// A stored value as the registry wrote it.
fn kv(values: &ValueTransformers, k: &etcd_client::KeyValue) -> Result<KeyValue, StorageError> {
    let key = String::from_utf8_lossy(k.key()).into_owned();
    let (value, stale) = values
        .transform_from_storage(&key, k.value())
        .map_err(|e| transform_error(&key, e))?;
    Ok(KeyValue {
        key,
        value,
        mod_revision: k.mod_revision(),
        stale,
    })
}

/// A watch event with its values decrypted; None for a deletion whose old
/// value was compacted away (nothing to tell a client).
fn event(
    values: &ValueTransformers,
    ev: &etcd_client::Event,
) -> Result<Option<StorageEvent>, StorageError> {
    let Some(cur) = ev.kv() else { return Ok(None) };
    Ok(match ev.event_type() {
        EventType::Put => Some(StorageEvent::Put {
            kv: kv(values, cur)?,
            prev: ev.prev_kv().map(|p| kv(values, p)).transpose()?,
        }),
        EventType::Delete => match ev.prev_kv() {
            Some(prev) => Some(StorageEvent::Delete {
                prev: kv(values, prev)?,
                revision: cur.mod_revision(),
            }),
            None => None,
        },
    })
}

/// etcd says "mvcc: required revision has been compacted" for reads below the
/// compaction point.
fn read_error(e: etcd_client::Error, requested: i64) -> StorageError {
    let text = e.to_string();
    if text.contains("compacted") {
        StorageError::Compacted {
            requested,
            compacted: 0,
        }
    } else {
        StorageError::Unavailable(text)
    }
}

impl EtcdStorage {
    pub async fn connect(endpoints: &[String], tls: EtcdTls) -> Result<Self, StorageError> {
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(30))
            .with_keep_alive(Duration::from_secs(30), Duration::from_secs(10))
            // A member cut off from the others says so at once, and the
            // call moves on to another member (upstream's WithRequireLeader).
            .with_require_leader(true);
        if tls.ca.is_some() || tls.cert_and_key.is_some() {
            let mut t = TlsOptions::new();
            if let Some(ca) = &tls.ca {
                t = t.ca_certificate(etcd_client::Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &tls.cert_and_key {
                t = t.identity(Identity::from_pem(cert, key));
            }
            opts = opts.with_tls(t);
        }
        let members = Arc::new(
            Members::connect(endpoints, opts)
                .await
                .map_err(unavailable)?,
        );
        Ok(EtcdStorage {
            creates: GroupCommit::start(members.clone()),
            members,
            values: Arc::default(),
        })
    }

    /// Encrypts values at rest as `values` says (none by default).
    pub fn with_encryption(mut self, values: ValueTransformers) -> Self {
        self.values = Arc::new(values);
        self
    }

    fn encrypt(&self, key: &str, value: Vec<u8>) -> Result<Vec<u8>, StorageError> {
        self.values
            .transform_to_storage(key, value)
            .map_err(|e| transform_error(key, e))
    }

    /// Compacts history up to `revision` (upstream's periodic compaction).
    pub async fn compact(&self, revision: i64) -> Result<(), StorageError> {
        self.members
            .kv(async |mut kv| kv.compact(revision, None).await)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[async_trait]
impl Storage for EtcdStorage {
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StorageError> {
        let value = self.encrypt(key, value)?;
        let started = Instant::now();
        let result = self.creates.create(key, value).await;
        crate::metrics::etcd_request("create", key, started);
        result
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        let started = Instant::now();
        let resp = self
            .members
            .kv(async |mut kv| kv.get(key, None).await)
            .await
            .map_err(unavailable);
        crate::metrics::etcd_request("get", key, started);
        resp?.kvs().first().map(|k| kv(&self.values, k)).transpose()
    }

    async fn list(&self, prefix: &str, opts: &ListOptions) -> Result<ListResult, StorageError> {
        let started = Instant::now();
        let start = opts.start_key.clone().unwrap_or_else(|| prefix.to_string());
        let mut get = GetOptions::new().with_range(prefix_end(prefix));
        if opts.limit > 0 {
            get = get.with_limit(opts.limit);
        }
        if opts.revision > 0 {
            get = get.with_revision(opts.revision);
        }
        let resp = self
            .members
            .kv(async |mut kv| kv.get(start.as_str(), Some(get.clone())).await)
            .await;
        crate::metrics::etcd_request("list", prefix, started);
        let resp = resp.map_err(|e| read_error(e, opts.revision))?;
        let items = resp
            .kvs()
            .iter()
            .map(|k| kv(&self.values, k))
            .collect::<Result<Vec<_>, _>>()?;
        let revision = resp.header().map(|h| h.revision()).unwrap_or_default();
        let remaining = (resp.count() - items.len() as i64).max(0);
        Ok(ListResult {
            items,
            revision: if opts.revision > 0 {
                opts.revision
            } else {
                revision
            },
            remaining,
            memos: Vec::new(),
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_revision: i64,
    ) -> Result<i64, StorageError> {
        let value = self.encrypt(key, value)?;
        let started = Instant::now();
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key,
                CompareOp::Equal,
                expected_revision,
            )])
            .and_then([TxnOp::put(key, value, None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = self
            .members
            .kv(async |mut kv| kv.txn(txn.clone()).await)
            .await
            .map_err(unavailable);
        crate::metrics::etcd_request("update", key, started);
        let resp = resp?;
        if resp.succeeded() {
            return Ok(resp.header().map(|h| h.revision()).unwrap_or_default());
        }
        let exists = resp
            .op_responses()
            .iter()
            .any(|r| matches!(r, TxnOpResponse::Get(g) if !g.kvs().is_empty()));
        Err(if exists {
            StorageError::Conflict(key.to_string())
        } else {
            StorageError::NotFound(key.to_string())
        })
    }

    async fn delete(
        &self,
        key: &str,
        expected_revision: Option<i64>,
    ) -> Result<(KeyValue, i64), StorageError> {
        let started = Instant::now();
        let compare = match expected_revision {
            Some(rev) => Compare::mod_revision(key, CompareOp::Equal, rev),
            None => Compare::create_revision(key, CompareOp::Greater, 0),
        };
        let txn = Txn::new()
            .when([compare])
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = self
            .members
            .kv(async |mut kv| kv.txn(txn.clone()).await)
            .await
            .map_err(unavailable);
        crate::metrics::etcd_request("delete", key, started);
        let resp = resp?;
        let revision = resp.header().map(|h| h.revision()).unwrap_or_default();
        for op in resp.op_responses() {
            match op {
                TxnOpResponse::Delete(d) if resp.succeeded() => {
                    if let Some(prev) = d.prev_kvs().first() {
                        return Ok((kv(&self.values, prev)?, revision));
                    }
                }
                TxnOpResponse::Get(g) if !g.kvs().is_empty() => {
                    return Err(StorageError::Conflict(key.to_string()));
                }
                _ => {}
            }
        }
        Err(StorageError::NotFound(key.to_string()))
    }

    async fn watch(&self, prefix: &str, revision: i64) -> Result<WatchStream, StorageError> {
        let opts = WatchOptions::new()
            .with_range(prefix_end(prefix))
            .with_prev_key()
            .with_start_revision(revision + 1);
        let stream = self
            .members
            .watch(async |mut w| w.watch(prefix, Some(opts.clone())).await)
            .await
            .map_err(unavailable)?;
        let (mut sender, mut responses) = stream.split();
        let values = self.values.clone();
        let out = async_stream(move |tx| async move {
            let mut progress = tokio::time::interval(PROGRESS_INTERVAL);
            progress.tick().await;
            loop {
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = progress.tick() => {
                        if sender.request_progress().await.is_err() {
                            let _ = tx.send(Err(StorageError::Unavailable("etcd watch closed".into()))).await;
                            return;
                        }
                    }
                    msg = responses.message() => {
                        let resp = match msg {
                            Ok(Some(resp)) => resp,
                            Ok(None) => {
                                let _ = tx.send(Err(StorageError::Unavailable("etcd watch closed".into()))).await;
                                return;
                            }
                            Err(e) => {
                                let _ = tx.send(Err(unavailable(e))).await;
                                return;
                            }
                        };
                        if resp.compact_revision() > 0 {
                            let _ = tx.send(Err(StorageError::Compacted { requested: revision, compacted: resp.compact_revision() })).await;
                            return;
                        }
                        if resp.canceled() {
                            let _ = tx.send(Err(StorageError::Unavailable(format!("etcd watch canceled: {}", resp.cancel_reason())))).await;
                            return;
                        }
                        let header_rev = resp.header().map(|h| h.revision()).unwrap_or_default();
                        if resp.events().is_empty() && !resp.created() {
                            if tx.send(Ok(Event::new(StorageEvent::Progress { revision: header_rev }))).await.is_err() {
                                return;
                            }
                            continue;
                        }
                        for ev in resp.events() {
                            let event = match event(&values, ev) {
                                Ok(Some(event)) => event,
                                Ok(None) => continue,
                                // Upstream ends the watch with the error too.
                                Err(e) => {
                                    let _ = tx.send(Err(e)).await;
                                    return;
                                }
                            };
                            if tx.send(Ok(Event::new(event))).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
        Ok(out)
    }

    async fn current_revision(&self) -> Result<i64, StorageError> {
        let resp = self
            .members
            .kv(async |mut kv| {
                kv.get(
                    "/",
                    Some(GetOptions::new().with_count_only().with_serializable()),
                )
                .await
            })
            .await
            .map_err(unavailable)?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or_default())
    }

    async fn healthy(&self) -> bool {
        let check = self.members.kv(async |mut kv| {
            kv.get("health", Some(GetOptions::new().with_count_only()))
                .await
        });
        matches!(
            tokio::time::timeout(Duration::from_secs(2), check).await,
            Ok(Ok(_))
        )
    }
}

/// A stream fed by a task; the task ends when the stream is dropped.
pub(crate) fn async_stream<F, Fut>(f: F) -> WatchStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Arc<Event>, StorageError>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(f(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx).boxed()
}
