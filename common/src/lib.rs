//! What the daemons share: apiserver clients, the health and metrics
//! endpoint, selectors, logging setup and shutdown signals.
#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod selectors;
pub mod serving;
pub mod shutdown;
pub mod telemetry;
