//! kube-scheduler: places pods on nodes through a plugin framework, as
//! upstream's does. This is its first part: the framework's filter and
//! score extension points, resource accounting and the core plugins. The
//! daemon (queue, cache, binding, events, leader election) is not built yet.
#![forbid(unsafe_code)]

pub mod framework;
pub mod plugins;
pub mod resources;

#[cfg(test)]
mod fixtures;
