#!/usr/bin/env bash
# prun against the peer tools on the same local fleet, alternating rounds: wall, client CPU,
# server CPU, peak memory and hosts/s for each, then prun's ratio to the best peer on each
# measure and to the floor ((client CPU + server CPU) / cores). The harness is bench/peers/
# (see its README); this script installs what it needs, builds prun, starts the servers,
# runs it and stops them.
#
#   bench/side-by-side.sh                  # N=1000, P=100, 2 rounds, every peer that installs
#   bench/side-by-side.sh 100 100 --rounds 3
#   bench/side-by-side.sh 1000 100 --peers prun,bssh,asyncssh
#   BENCH_BSSH=1 bench/side-by-side.sh     # also build bssh 2.2.3 (cargo install, ~10 min)
#
# Extra arguments go to bench/peers/peers.sh (--rounds, --peers, --skip, --timeout, --tag).
# Results: bench/peers/runs/<id>/summary.md (not committed). Needs root (apt, sshd).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS="$ROOT/bench/peers"
N=${1:-1000}
P=${2:-100}
shift $(($# >= 2 ? 2 : $#))

BENCH_NO_ANSIBLE=${BENCH_NO_ANSIBLE:-1} "$PEERS/setup.sh"

if [ -z "${BSSH_BIN:-}" ] && ! command -v bssh >/dev/null; then
  tools=${PRUN_BENCH_TOOLS:-${TMPDIR:-/tmp}/prun-bench-tools}
  if [ -x "$tools/bin/bssh" ]; then
    export BSSH_BIN="$tools/bin/bssh"
  elif [ -n "${BENCH_BSSH:-}" ]; then
    cargo install bssh@2.2.3 --locked --root "$tools"
    export BSSH_BIN="$tools/bin/bssh"
  else
    echo "note: bssh not found; set BENCH_BSSH=1 to build it (cargo install bssh@2.2.3)" >&2
  fi
fi

(cd "$ROOT" && cargo build --release --locked)
export PRUN_BIN="$ROOT/target/release/prun"

"$PEERS/sshd-up.sh" -n "$N"
trap '"$PEERS/sshd-down.sh" >/dev/null 2>&1 || true' EXIT
"$PEERS/peers.sh" "$N" "$P" "$@"
