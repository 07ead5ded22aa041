#!/usr/bin/env bash
# A local demo fleet: three OpenSSH servers on 127.0.0.1 with generated keys, six host names
# spread over them, an inventory and a known_hosts file for them.
#   scripts/demo-fleet.sh up     start (or restart) it in $PRUN_DEMO_DIR (default /tmp/prun-demo)
#   scripts/demo-fleet.sh down   stop the servers this script started (by their PIDs)
set -eu
DIR=${PRUN_DEMO_DIR:-/tmp/prun-demo}
SSHD=/usr/sbin/sshd
PORTS="2221 2222 2223"
ROOT=$(cd "$(dirname "$0")/.." && pwd)

down() {
    for p in $PORTS; do
        f="$DIR/sshd-$p.pid"
        if [ -f "$f" ]; then
            kill "$(cat "$f")" 2>/dev/null || true
            rm -f "$f"
        fi
    done
}

up() {
    [ -x "$SSHD" ] || { echo "demo-fleet: $SSHD missing; run scripts/deps.sh" >&2; exit 1; }
    down
    mkdir -p "$DIR"
    chmod 0755 "$DIR"
    [ -f "$DIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C prun-demo-host -f "$DIR/host_ed25519"
    [ -f "$DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C prun-demo-user -f "$DIR/id_ed25519"
    cp "$DIR/id_ed25519.pub" "$DIR/authorized_keys"
    cp "$ROOT/LICENSE" "$DIR/LICENSE"
    : > "$DIR/known_hosts"
    for p in $PORTS; do
        cat > "$DIR/sshd-$p.conf" <<CONF
Port $p
ListenAddress 127.0.0.1
HostKey $DIR/host_ed25519
AuthorizedKeysFile $DIR/authorized_keys
PidFile none
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxStartups 1000:30:1000
MaxSessions 100
SetEnv SHLVL=1
Subsystem sftp internal-sftp
CONF
        "$SSHD" -D -f "$DIR/sshd-$p.conf" -E "$DIR/sshd-$p.log" </dev/null >/dev/null 2>&1 &
        echo $! > "$DIR/sshd-$p.pid"
        echo "[127.0.0.1]:$p $(cut -d' ' -f1,2 "$DIR/host_ed25519.pub")" >> "$DIR/known_hosts"
    done
    user=$(id -un)
    cat > "$DIR/hosts.yaml" <<YAML
# Demo inventory written by scripts/demo-fleet.sh: six hosts on three local sshd.
all:
  vars:
    address: 127.0.0.1
    user: $user
    identity_file: $DIR/id_ed25519
  children:
    web:
      vars:
        port: 2221
      hosts:
        web[01:02]:
        web03:
          port: 2222
    db:
      vars:
        port: 2223
      hosts:
        db[1:2]:
    edge:
      hosts:
        edge1:
          port: 2222
YAML
    for p in $PORTS; do
        i=0
        until (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; do
            i=$((i + 1)); [ $i -lt 50 ] || { echo "demo-fleet: sshd on $p did not start; see $DIR/sshd-$p.log" >&2; exit 1; }
            sleep 0.1
        done
    done
    echo "demo fleet up: $DIR/hosts.yaml (known_hosts: $DIR/known_hosts)" >&2
}

case "${1:-up}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
