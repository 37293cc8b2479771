//! kube-scheduler: places pods on nodes. Not built yet (see the issue
//! "kube-scheduler: a plugin framework"); this crate only reserves its place
//! in the workspace so that no binary pretends to work.
#![forbid(unsafe_code)]
