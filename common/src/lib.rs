//! What the daemons share: apiserver clients, leader election, the health
//! and metrics endpoint, selectors, logging setup and shutdown signals.
#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod events;
pub mod hash;
pub mod leader;
pub mod node_affinity;
pub mod proxy;
pub mod quantity;
pub mod quota;
pub mod selectors;
pub mod serving;
pub mod shutdown;
pub mod systemd;
pub mod taints;
pub mod telemetry;
pub mod tls;
pub mod watch;
