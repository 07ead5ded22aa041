#!/bin/sh
# Install what the tests need (if missing), then run every test: unit tests and end-to-end
# tests against real OpenSSH servers that the test suite starts on 127.0.0.1.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo test --locked "$@"
