#!/bin/sh
# Install what building and testing prun needs on Debian, when missing:
# openssh-server (the tests and the demo start their own sshd), libssl-dev + pkg-config
# (ssh2 links the system OpenSSL), and /run/sshd (sshd's privilege-separation directory).
set -eu
need=""
[ -x /usr/sbin/sshd ] || need="$need openssh-server"
[ -x /usr/bin/sudo ] || need="$need sudo"   # the --sudo tests run sudo on the test hosts
command -v ssh-keygen >/dev/null 2>&1 || need="$need openssh-client"
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
pkg-config --exists openssl 2>/dev/null || need="$need libssl-dev"
if [ -n "$need" ]; then
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    echo "deps: installing$need" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
fi
if [ ! -d /run/sshd ]; then
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO mkdir -p /run/sshd && $SUDO chmod 0755 /run/sshd
fi
