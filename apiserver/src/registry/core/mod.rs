//! Strategies of the core/v1 group, one resource per file.

pub mod configmap;
pub mod endpoints;
pub mod event;
pub mod limitrange;
pub mod namespace;
pub mod node;
pub mod persistentvolume;
pub mod persistentvolumeclaim;
pub mod pod;
pub mod resourcequota;
pub mod secret;
pub mod service;
pub mod serviceaccount;
