//! Failover between the members in `--etcd-servers`. etcd-client's
//! balanced channel goes on picking a member it cannot connect to, and
//! every call sent there fails ("tcp connect error"), so with one member of
//! three down a share of all requests would fail. As Go's clientv3 does,
//! the apiserver keeps one client per member, sends everything to the
//! current one, and moves on to the next when a call shows that the member
//! did not take the request: it could not be reached, or it has no leader.
//! Such a call is retried on the next member, so it is safe for writes; a
//! call that failed after the member took it is never retried.

use etcd_client::{Client, ConnectOptions, KvClient, WatchClient};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Responses may be as large as etcd itself allows (a list of every object
/// of a kind); gRPC's default 4 MiB cap would fail big lists. Upstream sets
/// the same limit.
const MAX_MESSAGE: usize = i32::MAX as usize;

pub struct Members {
    kv: Vec<KvClient>,
    watch: Vec<WatchClient>,
    current: AtomicUsize,
}

/// Whether `e` says the member never took the request.
pub fn not_taken(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) => true,
        etcd_client::Error::GRpcStatus(s) => {
            s.code() == tonic::Code::Unavailable
                && [
                    "tcp connect error",
                    "error trying to connect",
                    "no leader",
                    "not capable",
                ]
                .iter()
                .any(|m| s.message().contains(m))
        }
        _ => false,
    }
}

impl Members {
    /// A client per endpoint. Connections are made when first used, so a
    /// member that is down at start only costs a retry.
    pub async fn connect(
        endpoints: &[String],
        opts: ConnectOptions,
    ) -> Result<Self, etcd_client::Error> {
        let mut kv = Vec::new();
        let mut watch = Vec::new();
        for endpoint in endpoints {
            let client = Client::connect([endpoint], Some(opts.clone())).await?;
            kv.push(client.kv_client().max_decoding_message_size(MAX_MESSAGE));
            watch.push(client.watch_client().max_decoding_message_size(MAX_MESSAGE));
        }
        if kv.is_empty() {
            return Err(etcd_client::Error::InvalidArgs("no etcd servers".into()));
        }
        Ok(Members {
            kv,
            watch,
            current: AtomicUsize::new(0),
        })
    }

    /// Runs `op` on the current member's KV client, and on the next ones
    /// while the member did not take it; the last error if none did.
    pub async fn kv<T, F, Fut>(&self, op: F) -> Result<T, etcd_client::Error>
    where
        F: FnMut(KvClient) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.each(&self.kv, op).await
    }

    /// Like [`Members::kv`], for watches.
    pub async fn watch<T, F, Fut>(&self, op: F) -> Result<T, etcd_client::Error>
    where
        F: FnMut(WatchClient) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.each(&self.watch, op).await
    }

    async fn each<C: Clone, T, F, Fut>(
        &self,
        clients: &[C],
        mut op: F,
    ) -> Result<T, etcd_client::Error>
    where
        F: FnMut(C) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let start = self.current.load(Ordering::Relaxed);
        let mut last = None;
        for k in 0..clients.len() {
            let i = (start + k) % clients.len();
            match op(clients[i].clone()).await {
                Err(e) if not_taken(&e) => {
                    tracing::warn!(member = i, error = %e, "etcd member did not take the request; trying the next");
                    // Stay on the next member from now on, unless another
                    // call has moved on already.
                    let _ = self.current.compare_exchange(
                        i,
                        (i + 1) % clients.len(),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    last = Some(e);
                }
                result => return result,
            }
        }
        Err(last.expect("at least one member"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_a_member_never_took_are_retried() {
        let status =
            |code, msg: &str| etcd_client::Error::GRpcStatus(tonic::Status::new(code, msg));
        let cases = [
            (status(tonic::Code::Unavailable, "tcp connect error"), true),
            (
                status(tonic::Code::Unavailable, "etcdserver: no leader"),
                true,
            ),
            // Sent, then lost: it may have been applied.
            (
                status(tonic::Code::Unavailable, "connection reset by peer"),
                false,
            ),
            (status(tonic::Code::Unavailable, "h2 protocol error"), false),
            (status(tonic::Code::DeadlineExceeded, "timeout"), false),
            (
                status(
                    tonic::Code::InvalidArgument,
                    "etcdserver: mvcc: required revision has been compacted",
                ),
                false,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(not_taken(&e), want, "{e}");
        }
    }
}
