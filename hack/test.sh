#!/usr/bin/env bash
# Runs every check and test: formatting, lints, unit tests, and the
# integration tests that start real etcd and kube-apiserver processes and
# drive them with the real kubectl.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The integration tests run the built binaries, so build them first.
cargo build --workspace --bins
cargo test --workspace
