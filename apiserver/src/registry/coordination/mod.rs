//! coordination.k8s.io/v1: Lease, the lock object of leader election and
//! node heartbeats (upstream 1.33 `pkg/apis/coordination/validation`).

pub mod lease;

pub use lease::LeaseStrategy;
