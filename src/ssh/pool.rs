//! Logged-in connections kept for later commands (`prun shell`): a host whose connection is
//! held runs its next command with a channel open and an exec only — no TCP connect, key
//! exchange or authentication. A held connection is taken out while a command uses it and
//! put back only when the command ended cleanly; one that turns out dead before the exec
//! request was sent is dropped and replaced by a fresh login (see [`super::host`]), so a
//! command never runs twice.

use super::io::NonBlockingOnDrop;
use super::known_hosts::Policy;
use super::transport::Liveness;
use crate::target::Target;
use ssh2::Session;
use std::collections::HashMap;
use std::os::unix::io::RawFd;
use std::sync::Mutex;
use std::time::Instant;

/// One logged-in connection.
pub(crate) struct Held {
    pub(crate) sess: Session,
    pub(crate) fd: RawFd,
    pub(crate) _guard: NonBlockingOnDrop,
    pub(crate) liveness: Option<Liveness>,
    pub(crate) kex: Option<String>,
    pub(crate) cipher: Option<String>,
    pub(crate) auth_method: Option<String>,
    pub(crate) since: Instant,
    pub(crate) commands: u64,
}

impl Held {
    /// Whether the connection can still carry a command, as far as the kernel knows: a TCP
    /// connection the peer closed or reset is not; a forwarded one is asked by the channel
    /// open itself.
    pub(crate) fn alive(&self) -> bool {
        if self.liveness.is_some() {
            return true;
        }
        super::io::tcp_established(self.fd).unwrap_or(true)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // best effort, never waiting: the session is non-blocking
        let _ = self.sess.disconnect(None, "done", None);
    }
}

/// The held connections of one process, by what a connection is bound to.
#[derive(Default)]
pub struct Pool {
    held: Mutex<HashMap<String, Held>>,
}

impl Pool {
    /// Everything a connection is bound to: the host (two names for one address each have
    /// their own, as each runs its own command), and a host whose user, port, route, keys or
    /// host-key policy changed does not use it.
    pub(crate) fn key(t: &Target) -> String {
        let mut k = format!("{}@{}:{} {}", t.user, t.address, t.port, t.name);
        let mut hop = t.jump.as_ref();
        while let Some(b) = hop {
            k.push_str(&format!(" via {}@{}:{}", b.user, b.address, b.port));
            hop = b.jump.as_ref();
        }
        for id in &t.identities {
            k.push_str(&format!(" key {}", id.path.display()));
        }
        let policy = match t.host_key_policy {
            Policy::Strict => "strict",
            Policy::AcceptNew => "accept-new",
            Policy::Off => "off",
        };
        k.push_str(&format!(" {policy} {}", t.host_key_name));
        k
    }

    pub(crate) fn take(&self, key: &str) -> Option<Held> {
        self.held.lock().unwrap().remove(key)
    }

    pub(crate) fn put(&self, key: String, held: Held) {
        self.held.lock().unwrap().insert(key, held);
    }

    /// Each held connection: where it goes (`user@address:port`), how long it has been held
    /// and how many commands it ran; sorted.
    pub fn describe(&self) -> Vec<(String, std::time::Duration, u64)> {
        let held = self.held.lock().unwrap();
        let mut out: Vec<_> = held
            .iter()
            .map(|(k, h)| {
                let place = k.split(' ').next().unwrap_or(k).to_string();
                (place, h.since.elapsed(), h.commands)
            })
            .collect();
        out.sort();
        out
    }

    /// Look after idle held connections: drop the ones the peer closed or reset, and send the
    /// others a keepalive (at most one per keepalive interval: libssh2 keeps the time), so a
    /// server or firewall that ends idle connections sees traffic.
    pub fn tend(&self) {
        let mut held = self.held.lock().unwrap();
        held.retain(|_, h| h.alive());
        for h in held.values() {
            let _ = h.sess.keepalive_send();
        }
    }

    /// How many connections are held.
    pub fn len(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
