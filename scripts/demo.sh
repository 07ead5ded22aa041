#!/bin/sh
# Build prun and run the main job on a local demo fleet:
#   prun -i hosts.yaml 'cat LICENSE'   (six hosts behind three sshd on 127.0.0.1)
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo build --release --locked
scripts/demo-fleet.sh up
DIR=${PRUN_DEMO_DIR:-/tmp/prun-demo}
set -x
target/release/prun -i "$DIR/hosts.yaml" --known-hosts "$DIR/known_hosts" "cat $DIR/LICENSE"
