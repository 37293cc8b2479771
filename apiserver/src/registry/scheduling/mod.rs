//! scheduling.k8s.io/v1: PriorityClass (upstream 1.33
//! `pkg/apis/scheduling/{v1/defaults.go,validation}`).
//!
//! Not here: that at most one class is `globalDefault`, which upstream's
//! Priority admission plugin enforces against the stored classes.

pub mod priorityclass;

pub use priorityclass::PriorityClassStrategy;
