#!/bin/sh
# Install what the tests need (if missing), then check formatting and lints and run every
# test: unit tests and end-to-end tests against real OpenSSH servers that the test suite
# starts itself on 127.0.0.1; then the end-to-end tests once more on the thread engine, and
# the transfer and basic end-to-end tests in a release build (its ChaCha20 is prun's own,
# src/ssh/crypto.rs; a debug build keeps libssh2's).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked "$@"
# the end-to-end tests again on the thread engine (--engine threads): the same behaviour
PRUN_ENGINE=threads cargo test --locked --test e2e --test engine --test exec_options \
  --test faults --test outputs --test persist --test reach --test report --test rollout --test shell --test ssh_setup \
  --test transfer "$@"
# release builds run ChaCha20 in Rust (src/ssh/crypto.rs): their bulk path end to end
cargo test --release --locked --test transfer --test e2e "$@"
