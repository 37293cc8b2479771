//! What the daemons share: selectors, logging setup and shutdown signals.
#![forbid(unsafe_code)]

pub mod selectors;
pub mod shutdown;
pub mod telemetry;
