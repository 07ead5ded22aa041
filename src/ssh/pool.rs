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
use std::time::{Duration, Instant};

/// One logged-in connection.
pub(crate) struct Held {
    pub(crate) sess: Session,
    pub(crate) fd: RawFd,
    pub(crate) _guard: NonBlockingOnDrop,
    pub(crate) liveness: Option<Liveness>,
    pub(crate) kex: Option<String>,
    pub(crate) cipher: Option<String>,
    pub(crate) auth_method: Option<String>,
    /// The host's name (what `prun sessions` shows and `--stop PATTERN` matches).
    pub(crate) name: String,
    pub(crate) since: Instant,
    /// When its last command ended.
    pub(crate) last_used: Instant,
    pub(crate) commands: u64,
    /// The keepalive interval the session was given (`--keepalive`).
    pub(crate) keepalive_secs: u32,
    /// When the idle connection was first sent a keepalive that has not been answered yet.
    probe: Option<Instant>,
    /// sshd accepted agent forwarding on this connection (`-A`): it takes one request a
    /// connection, and later commands on it reach the same forwarded socket.
    pub(crate) agent_forwarded: bool,
}

impl Held {
    #[allow(clippy::too_many_arguments)]
    #[inline(never)] // see super::host::hold
    pub(crate) fn new(
        sess: Session,
        fd: RawFd,
        guard: NonBlockingOnDrop,
        liveness: Option<Liveness>,
        name: &str,
        keepalive_secs: u32,
        result: &crate::event::HostResult,
    ) -> Held {
        let now = Instant::now();
        Held {
            sess,
            fd,
            _guard: guard,
            liveness,
            kex: result.kex.clone(),
            cipher: result.cipher.clone(),
            auth_method: result.auth_method.clone(),
            name: name.to_string(),
            since: now,
            last_used: now,
            commands: 1,
            keepalive_secs,
            probe: None,
            agent_forwarded: false,
        }
    }

    /// Whether the connection can still carry a command, as far as the kernel knows: a TCP
    /// connection the peer closed or reset is not; a forwarded one is asked by the channel
    /// open itself.
    pub(crate) fn alive(&self) -> bool {
        if self.liveness.is_some() {
            return true;
        }
        super::io::tcp_established(self.fd).unwrap_or(true)
    }

    /// The connection ran another command and is back: idle from now.
    pub(crate) fn used(&mut self) {
        self.commands += 1;
        self.last_used = Instant::now();
        self.probe = None;
    }

    /// Milliseconds since the server last sent anything.
    fn silent_ms(&self) -> Option<u32> {
        super::io::ms_since_data_received(self.fd)
            .or_else(|| self.liveness.as_ref().map(Liveness::idle_ms))
    }

    /// Send a keepalive (libssh2 sends at most one per interval) and judge the answers to the
    /// earlier ones: a live server answers every keepalive, so one unanswered for longer than
    /// [`super::io::silence_limit`] (the rule a running command follows too) means the server
    /// stopped answering — gone without a FIN or a reset. `false`: drop the connection.
    fn probe(&mut self) -> bool {
        if let Some(sent) = self.probe {
            let waited = sent.elapsed();
            match self.silent_ms() {
                // something arrived after the probe was sent: answered
                Some(ms) if Duration::from_millis(ms.into()) < waited => self.probe = None,
                Some(_) if waited > super::io::silence_limit(self.keepalive_secs) => return false,
                _ => {}
            }
        }
        let _ = self.sess.keepalive_send();
        self.probe.get_or_insert_with(Instant::now);
        true
    }
}

/// One held connection, as `prun sessions` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeldInfo {
    pub host: String,
    /// `user@address:port`
    pub place: String,
    /// How long it has been held.
    pub held: Duration,
    /// How long since its last command ended.
    pub idle: Duration,
    pub commands: u64,
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
    #[inline(never)] // its formatting stays off the login's frames (see super::fiber)
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

    /// Each held connection, sorted by host name.
    pub fn describe(&self) -> Vec<HeldInfo> {
        let held = self.held.lock().unwrap();
        let mut out: Vec<_> = held
            .iter()
            .map(|(k, h)| HeldInfo {
                host: h.name.clone(),
                place: k.split(' ').next().unwrap_or(k).to_string(),
                held: h.since.elapsed(),
                idle: h.last_used.elapsed(),
                commands: h.commands,
            })
            .collect();
        out.sort_by(|a, b| (&a.host, &a.place).cmp(&(&b.host, &b.place)));
        out
    }

    /// Close the held connections whose host `pick` chooses; how many were closed.
    pub fn close(&self, pick: impl Fn(&str) -> bool) -> usize {
        let mut held = self.held.lock().unwrap();
        let before = held.len();
        held.retain(|_, h| !pick(&h.name));
        before - held.len()
    }

    /// Look after idle held connections: drop the ones the peer closed or reset and those
    /// whose server stopped answering keepalives, and send the others a keepalive (at most
    /// one per keepalive interval: libssh2 keeps the time), so a server or firewall that ends
    /// idle connections sees traffic.
    pub fn tend(&self) {
        let mut held = self.held.lock().unwrap();
        held.retain(|_, h| h.alive() && h.probe());
    }

    /// How many connections are held.
    pub fn len(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
