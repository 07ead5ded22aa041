#!/bin/sh
# Install what building and testing prun needs on Debian, when missing:
# openssh-server (the tests and the demo start their own sshd), netcat-openbsd (nc, for the
# ProxyCommand tests), influxdb (InfluxDB 1.x, for the --metrics tests), openssl (the HTTPS
# metrics test makes a certificate with it), libssl-dev + pkg-config
# (ssh2 links the system OpenSSL), /run/sshd (sshd's privilege-separation directory), and
# target/ansible-venv (ansible-core and ClusterShell, the references of the inventory tests).
set -eu
need=""
[ -x /usr/sbin/sshd ] || need="$need openssh-server"
[ -x /usr/bin/sudo ] || need="$need sudo"   # the --sudo tests run sudo on the test hosts
command -v ssh-keygen >/dev/null 2>&1 || need="$need openssh-client"
command -v nc >/dev/null 2>&1 || need="$need netcat-openbsd"   # ProxyCommand tests: nc %h %p
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
pkg-config --exists openssl 2>/dev/null || need="$need libssl-dev"
[ -x /usr/bin/influxd ] || need="$need influxdb"   # the --metrics tests start their own influxd
[ -x /usr/bin/openssl ] || need="$need openssl"
if [ -n "$need" ]; then
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    echo "deps: installing$need" >&2
    $SUDO apt-get update -qq
    # no package may start a system service here (influxdb would): the tests start their own
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
fi
if [ ! -d /run/sshd ]; then
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO mkdir -p /run/sshd && $SUDO chmod 0755 /run/sshd
fi
# ansible-core and ClusterShell in a throwaway venv (target/ansible-venv, from PyPI): the
# references the inventory tests (tests/inventories.rs) compare prun's parsing with
# (ansible-inventory, nodeset). Nothing else uses them.
VENV="$(cd "$(dirname "$0")/.." && pwd)/target/ansible-venv"
if [ ! -x "$VENV/bin/ansible-inventory" ] || [ ! -x "$VENV/bin/nodeset" ]; then
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
        echo "deps: installing python3-venv" >&2
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    fi
    echo "deps: creating $VENV with ansible-core and ClusterShell" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check 'ansible-core==2.17.14' \
        'ClusterShell==1.9.3'
fi
