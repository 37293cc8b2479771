//! storage.k8s.io/v1: StorageClass (upstream 1.33
//! `pkg/apis/storage/{v1/defaults.go,validation}`).

pub mod storageclass;

pub use storageclass::StorageClassStrategy;
