//! Structural schemas (work in progress on this branch).
