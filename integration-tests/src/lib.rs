#![forbid(unsafe_code)]
//! Test harness: a real etcd and the real `kube-apiserver` binary per test,
//! plus kubectl and kube-rs clients pointed at them.
//!
//! Environment:
//! - `KUBE_APISERVER_BIN`: the binary to test (default `target/debug/kube-apiserver`);
//! - `KUBE_SCHEDULER_BIN`, `KUBE_CONTROLLER_MANAGER_BIN`: the scheduler and
//!   controller-manager to test (default `target/debug/...`);
//! - `DAEMON_RUST_LOG`: `RUST_LOG` for them;
//! - `KUBELET_BIN`: the kubelet to test (default `target/debug/kubelet`); nodes
//!   also need containerd, runc, the CNI plugins and busybox-static (hack/install-deps.sh);
//! - `KUBECTL_BIN`: kubectl to run (default `/usr/bin/kubectl`);
//! - `APISERVER_RUST_LOG`: `RUST_LOG` for the apiserver;
//! - `INTEGRATION_KEEP_DIR`: keep a failed test's directory (logs, etcd data, certificates).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let cluster = integration_tests::Cluster::start().await?;
//! let out = cluster.kubectl(&["get", "namespaces"]).await;
//! assert!(out.status.success());
//! # Ok(()) }
//! ```

pub mod apiserver;
pub mod cluster;
pub mod daemon;
pub mod etcd;
pub mod fixtures;
pub mod kubectl;
pub mod netns;
pub mod node;
pub mod pki;
pub mod pod_status;
pub mod process;
pub mod wait;

pub use cluster::{Cluster, ClusterBuilder};
pub use kubectl::{expect_failure, expect_success};

/// The `metav1.Status` of a failed kube-rs call, or a panic naming `what`.
#[track_caller]
pub fn api_status(
    result: Result<impl std::fmt::Debug, kube::Error>,
    what: &str,
) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("{what}: expected an API error Status, got {other:?}"),
    }
}
