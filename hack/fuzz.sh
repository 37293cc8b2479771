#!/usr/bin/env bash
# Fuzzes the apiserver's request path (authentication headers, paths and
# query parameters, bodies) with cargo-fuzz for a bounded time:
#   hack/fuzz.sh [SECONDS]   (default 60)
# Needs a nightly toolchain and cargo-fuzz, installed here when missing.
# A crash leaves its input under fuzz/artifacts/request/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
corpus=fuzz/corpus/request
cargo +nightly run -q --manifest-path fuzz/Cargo.toml --bin seeds -- "$corpus"
cargo +nightly fuzz run request "$corpus" -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096
