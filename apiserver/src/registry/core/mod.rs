//! Strategies of the core/v1 group, one resource per file.

pub mod configmap;
pub mod namespace;
pub mod pod;
pub mod secret;
pub mod service;
pub mod serviceaccount;
