//! Group commit of creates: creates that arrive while others are being
//! written go to etcd together, as one transaction that puts every key only
//! if none exists. etcd runs one multi-key transaction at about the cost of
//! a single one, so under load this multiplies create throughput, and a lone
//! create is sent at once, with no added wait.
//!
//! Objects created together share one etcd revision (their resourceVersion),
//! as keys written by one etcd transaction always do. If any key of a batch
//! exists, each create of it is retried on its own, so every caller gets its
//! own AlreadyExists or success.

use super::StorageError;
use super::etcd_members::Members;
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Creates in one transaction at most (etcd's default --max-txn-ops is 128).
const MAX_BATCH: usize = 64;
/// Transactions in flight at once.
const WORKERS: usize = 2;

struct Create {
    key: String,
    value: Vec<u8>,
    done: oneshot::Sender<Result<i64, StorageError>>,
}

#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Create>,
}

fn unavailable(e: etcd_client::Error) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

/// One create on its own: put `key` only if it does not exist.
pub async fn create_one(kv: &Members, key: &str, value: Vec<u8>) -> Result<i64, StorageError> {
    let txn = Txn::new()
        .when([Compare::create_revision(key, CompareOp::Equal, 0)])
        .and_then([TxnOp::put(key, value, None)]);
    let resp = kv
        .kv(async |mut kv| kv.txn(txn.clone()).await)
        .await
        .map_err(unavailable)?;
    if !resp.succeeded() {
        return Err(StorageError::AlreadyExists(key.to_string()));
    }
    Ok(resp.header().map(|h| h.revision()).unwrap_or_default())
}

impl GroupCommit {
    /// Starts the workers; they stop when every handle is dropped.
    pub fn start(kv: Arc<Members>) -> Self {
        let (queue, rx) = mpsc::channel::<Create>(4 * MAX_BATCH * WORKERS);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..WORKERS {
            tokio::spawn(worker(kv.clone(), rx.clone()));
        }
        GroupCommit { queue }
    }

    pub async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StorageError> {
        let (done, result) = oneshot::channel();
        let req = Create {
            key: key.to_string(),
            value,
            done,
        };
        self.queue
            .send(req)
            .await
            .map_err(|_| StorageError::Unavailable("create queue closed".into()))?;
        result
            .await
            .map_err(|_| StorageError::Unavailable("create worker stopped".into()))?
    }
}

async fn worker(kv: Arc<Members>, rx: Arc<Mutex<mpsc::Receiver<Create>>>) {
    loop {
        // Take what is waiting, up to a batch; wait only for the first.
        let mut batch = Vec::new();
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(first) => batch.push(first),
                None => return,
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
        }
        commit(&kv, batch).await;
    }
}

async fn commit(kv: &Members, batch: Vec<Create>) {
    if batch.len() == 1 {
        let c = batch.into_iter().next().expect("one");
        let _ = c.done.send(create_one(kv, &c.key, c.value).await);
        return;
    }
    // etcd refuses a transaction that writes one key twice: the later ones wait.
    let mut seen = HashSet::new();
    let (together, alone): (Vec<Create>, Vec<Create>) =
        batch.into_iter().partition(|c| seen.insert(c.key.clone()));
    let txn = Txn::new()
        .when(
            together
                .iter()
                .map(|c| Compare::create_revision(c.key.as_str(), CompareOp::Equal, 0))
                .collect::<Vec<_>>(),
        )
        .and_then(
            together
                .iter()
                .map(|c| TxnOp::put(c.key.as_str(), c.value.clone(), None))
                .collect::<Vec<_>>(),
        );
    match kv.kv(async |mut kv| kv.txn(txn.clone()).await).await {
        Ok(resp) if resp.succeeded() => {
            let rev = resp.header().map(|h| h.revision()).unwrap_or_default();
            for c in together {
                let _ = c.done.send(Ok(rev));
            }
        }
        // Some key exists: find out which, one create at a time.
        Ok(_) => {
            for c in together {
                let _ = c.done.send(create_one(kv, &c.key, c.value).await);
            }
        }
        Err(e) => {
            let err = unavailable(e);
            for c in together {
                let _ = c.done.send(Err(err.clone()));
            }
        }
    }
    for c in alone {
        let _ = c.done.send(create_one(kv, &c.key, c.value).await);
    }
}
