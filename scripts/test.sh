#!/bin/sh
# Install what the tests need (if missing), then check formatting and lints and run every
# test: unit tests and end-to-end tests against real OpenSSH servers that the test suite
# starts itself on 127.0.0.1.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked "$@"
