//! One host's session, step by step, each step timed and bounded: connect → handshake →
//! host key check → auth → channel open → exec → read stdout+stderr → close + exit status.
//!
//! The session is non-blocking from the handshake on: each libssh2 call is repeated on
//! EAGAIN after polling the socket against the step's deadline (the connect timeout for
//! everything up to auth, then again for channel open and exec; `--timeout` for the
//! command), with TCP_QUICKACK re-armed while waiting so replies are not held back by a
//! delayed ACK. The read loop drains stdout and stderr together (ssh2-notes §3b), so both
//! streams flow without deadlock. Only the ssh-agent exchange runs blocking, under
//! `set_timeout`. A live channel is never dropped in blocking mode. No printing here: output
//! goes to a callback.

use super::channel::ExecChannel;
use super::gate::{Permit, StartGate};
use super::jump::JumpPool;
use super::keys::KeyFile;
use super::known_hosts::{self, KnownHosts, Policy, Verdict};
use super::sudo::{self, SudoFilter};
use super::transfer;
use crate::cancel::Cancel;
use crate::event::{Failure, FailureKind, HostResult, Phase, Status, Stream, Timings};
use ssh2::{BlockDirections, ErrorCode, MethodType, Session};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Settings shared by every host of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub command_timeout: Option<Duration>,
    /// Try the identities of the agent at `SSH_AUTH_SOCK`.
    pub use_agent: bool,
    /// Extra attempts for failures before the command could have started.
    pub retries: u32,
    /// Keepalive interval while a command runs; the server is declared dead after 3 silent
    /// intervals.
    pub keepalive: Duration,
    /// `--env K=V`: sent as env requests, else exported by a command prefix.
    pub env: Vec<(String, String)>,
    /// `--pty`: request a terminal (stdout and stderr merge; the command dies with the
    /// connection).
    pub pty: bool,
    /// `--cwd DIR`: run the command there.
    pub cwd: Option<String>,
    /// `--stdin`: what every host's command reads on its stdin (else it gets EOF at once).
    pub stdin: Option<Arc<StdinData>>,
    /// `--sudo`/`--sudo-user`: run the command through sudo as this user.
    pub sudo_user: Option<String>,
    /// The password for sudo's prompt, if one was given.
    pub sudo_password: Option<Secret>,
    /// This run's random marker for sudo's prompt (`sudo -p`).
    pub sudo_prompt: String,
    /// Passphrase-protected keys left locked (no passphrase was available), by name.
    pub locked_keys: Vec<String>,
    /// `--ask-pass` / `PRUN_PASSWORD`: for password and keyboard-interactive logins.
    pub password: Option<Secret>,
}

pub use crate::secret::Secret;

/// `command` wrapped to run through sudo as `user`: `-S` with prun's `prompt` marker when a
/// password will be fed, else `-n` (fail at once rather than wait for a password).
pub fn sudo_wrap(command: &str, user: &str, prompt: Option<&str>) -> String {
    let mode = if let Some(prompt) = prompt {
        format!("-S -p {}", shell_quote(prompt))
    } else {
        "-n".to_string()
    };
    format!(
        "sudo {mode} -u {} -- sh -c {}",
        shell_quote(user),
        shell_quote(command)
    )
}

/// Local stdin, read once and sent to every host: in memory, or spooled to a temporary file
/// past a cap so that memory stays bounded.
pub enum StdinData {
    Memory(Vec<u8>),
    File { file: std::fs::File, len: u64 },
}

/// Stdin bytes kept in memory before they are spooled to a temporary file.
pub const STDIN_MEMORY_CAP: usize = 8 * 1024 * 1024;

impl std::fmt::Debug for StdinData {
    /// Only the size: stdin may carry secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StdinData({} bytes)", self.len())
    }
}

impl StdinData {
    /// Read all of `r`.
    pub fn read_from(r: &mut dyn Read) -> io::Result<StdinData> {
        let mut mem = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(StdinData::Memory(mem));
            }
            mem.extend_from_slice(&buf[..n]);
            if mem.len() > STDIN_MEMORY_CAP {
                let mut file = tempfile::tempfile()?;
                file.write_all(&mem)?;
                let mut len = mem.len() as u64;
                drop(mem);
                loop {
                    let n = r.read(&mut buf)?;
                    if n == 0 {
                        return Ok(StdinData::File { file, len });
                    }
                    file.write_all(&buf[..n])?;
                    len += n as u64;
                }
            }
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            StdinData::Memory(m) => m.len() as u64,
            StdinData::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes at `offset` into `buf` (0 at the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            StdinData::Memory(m) => {
                let start = (offset as usize).min(m.len());
                let n = buf.len().min(m.len() - start);
                buf[..n].copy_from_slice(&m[start..start + n]);
                Ok(n)
            }
            StdinData::File { file, len } => {
                use std::os::unix::fs::FileExt;
                let n = buf.len().min(len.saturating_sub(offset) as usize);
                file.read_at(&mut buf[..n], offset)
            }
        }
    }
}

/// Quote `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// What to do on every host once logged in.
#[derive(Debug, Clone)]
pub enum Work {
    /// Run a shell command.
    Command(String),
    /// `prun push`: send files over SFTP.
    Push(Arc<transfer::PushSpec>),
    /// `prun pull`: fetch files over SFTP.
    Pull(Arc<transfer::PullSpec>),
}

/// Everything one host needs to run; built by the plan.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Keys to try before the agent: `--identity` files, the inventory's `identity_file`, then
    /// ssh_config's `IdentityFile`s.
    pub identities: Vec<Arc<KeyFile>>,
    /// ssh_config `IdentitiesOnly yes`: offer only `identities` (no agent, no default keys).
    pub identities_only: bool,
    /// Deadline for everything before the command starts.
    pub connect_timeout: Duration,
    pub host_key_policy: Policy,
    /// The known_hosts files for this host (shared by every host that uses the same files).
    pub known_hosts: Arc<KnownHosts>,
    /// The name looked up in known_hosts: `HostKeyAlias`, else `[address]:port`.
    pub host_key_name: String,
    /// The bastion to reach this host through (`-J`, inventory `jump`, `ProxyJump`).
    pub jump: Option<Arc<Target>>,
    /// Where each resolved value came from (filled for `--list-hosts` only).
    pub sources: Vec<(&'static str, String)>,
}

/// Read-only state shared by all sessions of a run.
pub struct Shared<'a> {
    pub settings: &'a Settings,
    /// Default keys, tried after the agent.
    pub default_keys: &'a [Arc<KeyFile>],
    pub cancel: &'a Cancel,
    pub gate: &'a StartGate,
    /// Connections to bastions, shared by every host behind them.
    pub jumps: &'a JumpPool,
}

/// Host key algorithms prun negotiates (no certificates: see ssh2-notes §4), best first.
const HOSTKEY_ALGS: [&str; 6] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
];

const EAGAIN: i32 = -37;
const LIBSSH2_TIMEOUT: i32 = -9;

pub(crate) struct Clock {
    start: Instant,
    pub(crate) last: Instant,
    pub(crate) timings: Timings,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let now = Instant::now();
        Clock {
            start: now,
            last: now,
            timings: Timings::default(),
        }
    }
    /// End the current phase as `p`.
    pub(crate) fn mark(&mut self, p: Phase) {
        let now = Instant::now();
        self.timings.set(p, now - self.last);
        self.last = now;
    }
}

/// A failed step, still open for the partial timing of the phase it failed in.
pub(crate) struct Fail(pub(crate) Failure);

pub(crate) fn fail(phase: Phase, kind: FailureKind, message: impl Into<String>) -> Fail {
    Fail(Failure {
        phase,
        kind,
        message: message.into(),
    })
}

fn code(e: &ssh2::Error) -> i32 {
    match e.code() {
        ErrorCode::Session(c) => c,
        ErrorCode::SFTP(c) => c,
    }
}

fn ssh_fail(phase: Phase, e: &ssh2::Error, default: FailureKind) -> Fail {
    let kind = match code(e) {
        LIBSSH2_TIMEOUT => FailureKind::Timeout,
        -5 => FailureKind::Kex,
        -43 if phase == Phase::Handshake => FailureKind::Banner,
        -13 | -7 | -43 => FailureKind::Io,
        _ => default,
    };
    let msg = match kind {
        FailureKind::Timeout => format!("timed out in {phase} (--connect-timeout)"),
        FailureKind::Banner => {
            "no SSH banner from server (connection dropped; sshd MaxStartups?)".to_string()
        }
        FailureKind::Kex => format!(
            "key exchange failed ({}): no algorithm in common with the server, or its reply \
             was not valid SSH",
            e.message()
        ),
        _ => format!("{} ({})", e.message(), code(e)),
    };
    fail(phase, kind, msg)
}

/// Run `command` on `target`; output chunks go to `on_output` as they arrive.
///
/// Failures before the exec request was sent are retried (`Settings::retries`) with
/// exponential backoff and jitter; a command that may have started is never run again.
/// The timings are those of the final attempt; `retry_wait` is the time before it began
/// (earlier attempts, backoff, waiting at the start gate), so the phases plus `retry_wait`
/// add up to `total`.
pub fn run(
    target: &Target,
    work: &Work,
    shared: &Shared<'_>,
    on_output: &mut dyn FnMut(Stream, &[u8]),
    on_bytes: &mut dyn FnMut(u64),
) -> HostResult {
    let host_start = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(permit) = shared.gate.acquire(shared.cancel) else {
            let mut r = HostResult::new(Status::Cancelled);
            r.failure = Some(Failure {
                phase: Phase::Connect,
                kind: FailureKind::Cancelled,
                message: format!("not started: {}", cancel_reason(shared.cancel)),
            });
            r.attempts = attempt - 1;
            r.retry_wait = host_start.elapsed();
            r.timings.total = r.retry_wait;
            return r;
        };
        let mut permit = Some(permit);
        let mut clock = Clock::new();
        let mut result = HostResult::new(Status::Error);
        let outcome = session(
            target,
            work,
            shared,
            &mut clock,
            &mut result,
            &mut permit,
            on_output,
            on_bytes,
        );
        drop(permit);
        result.attempts = attempt;
        if let Err(Fail(f)) = outcome {
            // The failed phase's time is what elapsed since the last completed phase.
            clock.mark(f.phase);
            // a transfer that failed after connecting has set `failed` itself
            if !matches!(
                result.status,
                Status::Timeout | Status::Cancelled | Status::Failed
            ) {
                result.status = if f.kind == FailureKind::Cancelled {
                    Status::Cancelled
                } else {
                    Status::Error
                };
            }
            let again = is_retryable(&f)
                && attempt <= shared.settings.retries
                && !shared.cancel.is_cancelled();
            if again && sleep_unless_cancelled(backoff(attempt), shared.cancel) {
                continue;
            }
            result.failure = Some(f);
        }
        result.retry_wait = clock.start - host_start;
        // Up to the end of the last phase (exit status known, or the failure): the session's
        // teardown after that (disconnect, free) is not part of the host's time.
        clock.timings.total = clock.last - host_start;
        result.timings = clock.timings;
        result.clean_remote_text();
        return result;
    }
}

/// The connected byte stream a session runs over.
pub(crate) enum Transport {
    Tcp(TcpStream),
    /// One end of a socket pair whose other end a bastion's connection pumps to and from a
    /// `direct-tcpip` channel (see [`super::jump`]).
    Forwarded(UnixStream, super::jump::Liveness),
}

/// Handshake, host key check and authentication over `transport`, each phase marked on
/// `clock`; the session is non-blocking from the handshake on. Also logs in to bastions.
pub(crate) fn secure(
    transport: Transport,
    target: &Target,
    shared: &Shared<'_>,
    deadline: Instant,
    clock: &mut Clock,
    result: &mut HostResult,
) -> Result<(Session, RawFd, NonBlockingOnDrop), Fail> {
    let cancel = shared.cancel;
    let mut sess = Session::new().map_err(|e| ssh_fail(Phase::Handshake, &e, FailureKind::Io))?;
    // every read bounded by the step's deadline and the cancel, even while data keeps coming
    super::bound::install(&sess);
    let fd = match transport {
        Transport::Tcp(tcp) => {
            let _ = tcp.set_nodelay(true);
            let fd = tcp.as_raw_fd();
            sess.set_tcp_stream(tcp);
            fd
        }
        Transport::Forwarded(sock, _) => {
            let fd = sock.as_raw_fd();
            sess.set_tcp_stream(sock);
            fd
        }
    };
    let lookup = target.host_key_name.as_str();
    let host_keys = target.known_hosts.for_host(lookup);
    let prefs = hostkey_prefs(&host_keys.algorithms());
    sess.method_pref(MethodType::HostKey, &prefs)
        .map_err(|e| ssh_fail(Phase::Handshake, &e, FailureKind::Kex))?;
    // Bounded drop on every early return: a failed blocking session must not hang in free().
    let guard = NonBlockingOnDrop(sess.clone());
    // Non-blocking from here on, each step driven by `nonblocking` against its deadline (the
    // agent exchange excepted, see `authenticate`).
    sess.set_blocking(false);
    let mut hs = sess.clone();
    super::bound::take_closed();
    nonblocking(fd, &sess, deadline, cancel, || hs.handshake()).map_err(|e| {
        let mut f = step_fail(Phase::Handshake, e, FailureKind::Kex, cancel);
        if f.0.kind == FailureKind::Kex && super::bound::take_closed() {
            // libssh2 says "key exchange failed" for a dropped connection too
            f = fail(
                Phase::Handshake,
                FailureKind::Io,
                "connection closed or reset by the server during key exchange",
            );
        }
        if matches!(f.0.kind, FailureKind::Banner | FailureKind::Io) {
            shared.gate.dropped(); // sshd MaxStartups: slow down new connections
        }
        f
    })?;
    result.kex = sess.methods(MethodType::Kex).map(str::to_string);
    result.cipher = sess.methods(MethodType::CryptCs).map(str::to_string);
    clock.mark(Phase::Handshake);

    // host key, before any credential is offered
    let changed = check_host_key(&sess, target, &host_keys, result)?;
    clock.mark(Phase::Hostkey);

    // auth: never a password to a host whose key changed (like OpenSSH)
    result.auth_method = Some(authenticate(&sess, fd, target, shared, deadline, !changed)?);
    clock.mark(Phase::Auth);
    Ok((sess, fd, guard))
}

/// May this failure be retried? Only when the command cannot have started: connection
/// refused or timed out, no banner (sshd MaxStartups), reset during the handshake, a timeout
/// before auth completed, or a channel that could not be opened. Not: unknown or changed host
/// keys, refused credentials, no common algorithms, name resolution, anything from exec on.
pub fn is_retryable(f: &Failure) -> bool {
    use FailureKind as K;
    match f.phase {
        Phase::Connect => match f.kind {
            K::Refused | K::Timeout => true,
            K::Unreachable => !f.message.starts_with("cannot resolve"),
            _ => false,
        },
        Phase::Handshake => matches!(f.kind, K::Banner | K::Io | K::Timeout),
        Phase::Auth => f.kind == K::Timeout,
        Phase::ChannelOpen => matches!(f.kind, K::Channel | K::Io | K::Timeout),
        _ => false,
    }
}

/// Backoff before attempt `attempt + 1`: 200 ms doubling per attempt (capped at 5 s), plus
/// up to as much again of random jitter so the retries of many hosts spread out.
pub fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(200) * 2u32.pow(attempt.saturating_sub(1).min(5));
    let base = base.min(Duration::from_secs(5));
    base + base.mul_f64(jitter())
}

/// A number in [0, 1) that differs between threads and calls (no cryptographic quality).
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Sleep, waking early on cancel; true when the whole sleep passed.
fn sleep_unless_cancelled(d: Duration, cancel: &Cancel) -> bool {
    let mut pfd = libc::pollfd {
        fd: cancel.fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, d.as_millis().min(i32::MAX as u128) as i32) };
    !cancel.is_cancelled()
}

fn cancel_reason(cancel: &Cancel) -> &'static str {
    if cancel.is_interrupted() {
        "run interrupted (Ctrl-C/SIGTERM/SIGHUP)"
    } else {
        "run stopped (--fail-fast)"
    }
}

fn remaining_ms(deadline: Instant) -> u32 {
    let left = deadline.saturating_duration_since(Instant::now());
    (left.as_millis() as u32).max(1)
}

#[allow(clippy::too_many_arguments)]
fn session(
    target: &Target,
    work: &Work,
    shared: &Shared<'_>,
    clock: &mut Clock,
    result: &mut HostResult,
    permit: &mut Option<Permit<'_>>,
    on_output: &mut dyn FnMut(Stream, &[u8]),
    on_bytes: &mut dyn FnMut(u64),
) -> Result<(), Fail> {
    let settings = shared.settings;
    let cancel = shared.cancel;
    let deadline = clock.start + target.connect_timeout;

    // connect (includes DNS), directly or through a channel of the bastion's connection
    let transport = match &target.jump {
        Some(bastion) => {
            let (sock, alive, notes) = shared.jumps.open(bastion, target, deadline, shared)?;
            result.notes.extend(notes);
            Transport::Forwarded(sock, alive)
        }
        None => Transport::Tcp(connect(
            &target.address,
            target.port,
            deadline,
            shared.cancel,
        )?),
    };
    let liveness = match &transport {
        Transport::Forwarded(_, alive) => Some(alive.clone()),
        Transport::Tcp(_) => None,
    };
    clock.mark(Phase::Connect);
    let (sess, fd, guard) = secure(transport, target, shared, deadline, clock, result)?;
    shared.gate.succeeded();
    permit.take();
    let keepalive_secs = settings.keepalive.as_secs().clamp(1, u32::MAX as u64) as u32;
    sess.set_keepalive(true, keepalive_secs);
    let command = match work {
        Work::Command(c) => c.as_str(),
        Work::Push(spec) => {
            let r = transfer::push(&sess, fd, target, shared, spec, clock, result, on_bytes);
            drop(guard);
            return r;
        }
        Work::Pull(spec) => {
            let r = transfer::pull(&sess, fd, target, shared, spec, clock, result, on_bytes);
            drop(guard);
            return r;
        }
    };

    // channel open and exec, non-blocking: bounded by the connect timeout again (a server
    // that stops answering here must not hang us), and with TCP_QUICKACK re-armed after each
    // request is sent, so the server's reply is not held back by a delayed ACK (Nagle on the
    // server side + delayed ACK on ours cost ~40 ms per channel open; ssh2-notes §7).
    let step_deadline = Instant::now() + target.connect_timeout;
    let ch = nonblocking(fd, &sess, step_deadline, cancel, || {
        ExecChannel::open(&sess)
    })
    .map_err(|e| step_fail(Phase::ChannelOpen, e, FailureKind::Channel, cancel))?;
    clock.mark(Phase::ChannelOpen);
    // --env as env requests; what the server refuses is exported by a command prefix instead
    // (always, under sudo, which resets the environment)
    let mut prefix = String::new();
    for (k, v) in &settings.env {
        let sent = settings.sudo_user.is_none()
            && nonblocking(fd, &sess, step_deadline, cancel, || ch.setenv(k, v)).is_ok();
        if !sent {
            prefix.push_str(&format!("export {k}={}; ", shell_quote(v)));
        }
    }
    if let Some(dir) = &settings.cwd {
        prefix.push_str(&format!("cd -- {} && ", shell_quote(dir)));
    }
    if settings.pty {
        nonblocking(fd, &sess, step_deadline, cancel, || ch.request_pty())
            .map_err(|e| step_fail(Phase::ChannelOpen, e, FailureKind::Channel, cancel))?;
    }
    let full_command;
    let command = match &settings.sudo_user {
        Some(user) => {
            full_command = sudo_wrap(
                &format!("{prefix}{command}"),
                user,
                settings
                    .sudo_password
                    .is_some()
                    .then_some(settings.sudo_prompt.as_str()),
            );
            &full_command
        }
        None if prefix.is_empty() => command,
        None => {
            full_command = format!("{prefix}{command}");
            &full_command
        }
    };
    nonblocking(fd, &sess, step_deadline, cancel, || ch.exec(command))
        .map_err(|e| step_fail(Phase::Exec, e, FailureKind::Exec, cancel))?;
    clock.mark(Phase::Exec);
    let exec_done = clock.last;
    // stdin: the --stdin data, streamed as the window allows; else EOF at once (like ssh -n),
    // so a command that reads stdin cannot wait forever. With a sudo password, stdin waits
    // until sudo's prompt was answered (or sudo clearly did not ask: output on stdout, or 3 s).
    let mut stdin_pos: Option<u64> = Some(0);
    // sudo's prompt: answered once, only as the first thing on stderr (see `sudo`)
    let mut sudo = match (&settings.sudo_user, &settings.sudo_password) {
        (Some(_), Some(_)) => Some(SudoFilter::new(&settings.sudo_prompt)),
        _ => None,
    };
    let mut stdin_buf = vec![0u8; 32 * 1024];

    // read both streams, non-blocking
    let cmd_deadline = settings.command_timeout.map(|t| exec_done + t);
    let mut buf = vec![0u8; 32 * 1024];
    let mut first_byte = None;
    let mut idle_passes = 0u32;
    // reads stop at the command's deadline and on cancel even while output keeps flowing
    let read_bound = super::bound::enter(cmd_deadline, Some(cancel.flag()));
    loop {
        let mut progressed = false;
        if let Some(f) = sudo.as_mut().filter(|f| f.waiting())
            && exec_done.elapsed() > Duration::from_secs(3)
        {
            // sudo did not ask in time: it had the credentials cached, or is not asking
            let held = f.finish();
            if !held.is_empty() {
                on_output(Stream::Stderr, &held);
            }
        }
        let sudo_waiting = sudo.as_ref().is_some_and(SudoFilter::waiting);
        if let (false, Some(pos)) = (sudo_waiting, stdin_pos) {
            let n = match &settings.stdin {
                Some(data) => data.read_at(pos, &mut stdin_buf).map_err(|e| {
                    fail(Phase::Read, FailureKind::Io, format!("reading stdin: {e}"))
                })?,
                None => 0,
            };
            if n == 0 {
                match ch.send_eof() {
                    Ok(()) => stdin_pos = None,
                    Err(e) if code(&e) == EAGAIN => {}
                    Err(_) => stdin_pos = None, // the command already closed its stdin
                }
            } else {
                match ch.write(&stdin_buf[..n]) {
                    Ok(w) => {
                        stdin_pos = Some(pos + w as u64);
                        progressed = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => stdin_pos = None, // the command does not read its stdin
                }
            }
        }
        for (id, stream) in [(0, Stream::Stdout), (1, Stream::Stderr)] {
            loop {
                match ch.read(id, &mut buf) {
                    // 0 is EOF only when ch.eof() agrees: libssh2 also returns 0 when it
                    // stopped decoding with complete packets still buffered (see wait_socket).
                    Ok(0) => break,
                    Ok(n) => {
                        if first_byte.is_none() {
                            first_byte = Some(exec_done.elapsed());
                        }
                        match stream {
                            Stream::Stdout => result.bytes_stdout += n as u64,
                            Stream::Stderr => result.bytes_stderr += n as u64,
                        }
                        let mut chunk: std::borrow::Cow<'_, [u8]> = (&buf[..n]).into();
                        if let Some(f) = sudo.as_mut() {
                            if stream == Stream::Stdout {
                                let held = f.stdout_seen();
                                if !held.is_empty() {
                                    on_output(Stream::Stderr, &held);
                                }
                            } else {
                                let (pass, action) = f.stderr(&buf[..n]);
                                chunk = pass.into_owned().into();
                                match action {
                                    sudo::Action::None => {}
                                    sudo::Action::Answer => {
                                        if let Some(pw) = &settings.sudo_password {
                                            send_secret_line(&ch, fd, &sess, pw, target);
                                        }
                                    }
                                    sudo::Action::CloseStdin => {
                                        // refused: sudo must fail, not wait for another try
                                        let _ = ch.send_eof();
                                        stdin_pos = None;
                                    }
                                }
                            }
                        }
                        if !chunk.is_empty() {
                            on_output(stream, &chunk);
                        }
                        progressed = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        return Err(fail(
                            Phase::Read,
                            FailureKind::Io,
                            format!("reading output: {e}"),
                        ));
                    }
                }
            }
        }
        if ch.eof() && !progressed {
            break;
        }
        if progressed {
            idle_passes = 0;
        } else {
            idle_passes += 1;
        }
        // A command whose output never pauses still meets its deadline and the cancel.
        let must_stop = cancel.is_cancelled() || cmd_deadline.is_some_and(|d| Instant::now() >= d);
        // Reading stderr can make libssh2 decode (and queue) stdout data or the EOF after
        // stdout was read in the same pass: a pass only counts as idle when the next one is
        // too. Otherwise we would wait on a socket the server has nothing more to send on.
        if must_stop || (!progressed && idle_passes >= 2) {
            idle_passes = 0;
            // A silent command is fine; a silent server is not: keepalives get a reply from
            // a live server, so nothing received for 3 intervals means it stopped answering.
            let _ = sess.keepalive_send();
            if let Some(idle) = ms_since_data_received(fd)
                .or_else(|| liveness.as_ref().map(|l| l.idle_ms()))
                // libssh2 sends keepalives at least 2 s apart (it turns 1 s into 2 s)
                && u128::from(idle) > 3 * u128::from(keepalive_secs.max(2)) * 1000 + 500
            {
                let _ = ch.close();
                return Err(fail(
                    Phase::Read,
                    FailureKind::Io,
                    format!(
                        "server stopped answering: nothing received for {}s despite keepalives \
                         (--keepalive {}s); remote command may still be running",
                        idle / 1000,
                        keepalive_secs
                    ),
                ));
            }
            let waited = if must_stop {
                Err(WaitError::Cancelled)
            } else {
                wait_socket(fd, &sess, cmd_deadline, cancel)
            };
            match waited {
                Ok(()) => {}
                Err(WaitError::Io(e)) => {
                    return Err(fail(
                        Phase::Read,
                        FailureKind::Io,
                        format!("waiting for output: {e}"),
                    ));
                }
                Err(WaitError::Cancelled) => {
                    if let Some(held) = sudo.as_mut().map(SudoFilter::finish)
                        && !held.is_empty()
                    {
                        on_output(Stream::Stderr, &held);
                    }
                    // Stop the remote command: signal it and wait briefly for the server to
                    // confirm (exit signal or close); say so when it cannot be confirmed.
                    let note =
                        stop_remote(&ch, fd, &sess, &mut buf, result, settings.pty, on_output);
                    result.notes.push(note);
                    if let Some(fb) = first_byte {
                        clock.timings.set(Phase::FirstByte, fb);
                    }
                    return Err(if cancel.is_cancelled() {
                        result.status = Status::Cancelled;
                        fail(
                            Phase::Read,
                            FailureKind::Cancelled,
                            format!("stopped: {}", cancel_reason(cancel)),
                        )
                    } else {
                        result.status = Status::Timeout;
                        fail(
                            Phase::Read,
                            FailureKind::Timeout,
                            format!(
                                "command did not finish within --timeout {}",
                                humantime::format_duration(
                                    settings.command_timeout.unwrap_or_default()
                                )
                            ),
                        )
                    });
                }
            }
        }
    }
    drop(read_bound);
    if let Some(held) = sudo.as_mut().map(SudoFilter::finish)
        && !held.is_empty()
    {
        on_output(Stream::Stderr, &held); // it was not a prompt after all
    }
    if let Some(fb) = first_byte {
        clock.timings.set(Phase::FirstByte, fb);
    }
    clock.mark(Phase::Read);

    // close and exit status
    let close_deadline = Instant::now() + target.connect_timeout;
    nonblocking(fd, &sess, close_deadline, cancel, || ch.close())
        .map_err(|e| step_fail(Phase::Close, e, FailureKind::Io, cancel))?;
    nonblocking(fd, &sess, close_deadline, cancel, || ch.wait_close())
        .map_err(|e| step_fail(Phase::Close, e, FailureKind::Io, cancel))?;
    let signal = ch.exit_signal();
    let status = ch.exit_status();
    clock.mark(Phase::Close);
    if let Some(sig) = signal {
        result.status = Status::Signal;
        result.signal = Some(sig);
    } else {
        result.exit_code = Some(status);
        result.status = if status == 0 {
            Status::Ok
        } else {
            Status::Failed
        };
    }
    // Best effort: tell the server we are leaving; do not wait for it.
    let _ = sess.disconnect(None, "done", None);
    drop(ch);
    drop(guard);
    Ok(())
}

/// Write `secret` and a newline to the command's stdin (sudo's prompt), within the connect
/// timeout; no copy of the secret is made.
fn send_secret_line(ch: &ExecChannel, fd: RawFd, sess: &Session, secret: &Secret, target: &Target) {
    let end = Instant::now() + target.connect_timeout;
    for part in [secret.expose().as_bytes(), b"\n"] {
        let mut sent = 0;
        while sent < part.len() && Instant::now() < end {
            match ch.write(&part[sent..]) {
                Ok(w) => sent += w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let _ = wait_socket_or(fd, sess, Some(end), None);
                }
                Err(_) => return,
            }
        }
    }
}

/// How long the server gets to confirm a signal before prun escalates or gives up.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Stop a running remote command: send SIGTERM through an SSH signal request, then SIGKILL,
/// each time waiting up to [`STOP_GRACE`] for the server to report the exit (an exit signal or
/// status, or the channel's close) while still forwarding any output. Returns the note for
/// the host's result. OpenSSH honours signal requests (7.9+) but ignores them for root
/// logins; then the command is not confirmed stopped and the note says so.
fn stop_remote(
    ch: &ExecChannel,
    fd: RawFd,
    sess: &Session,
    buf: &mut [u8],
    result: &mut HostResult,
    pty: bool,
    on_output: &mut dyn FnMut(Stream, &[u8]),
) -> String {
    for sig in ["TERM", "KILL"] {
        let deadline = Instant::now() + STOP_GRACE;
        // the run's cancel (or the passed --timeout) must not stop these reads
        let _bound = super::bound::enter(Some(deadline), None);
        // send the request (non-blocking)
        loop {
            match ch.signal(sig) {
                Ok(()) => break,
                Err(e) if code(&e) == EAGAIN && Instant::now() < deadline => {
                    let _ = wait_socket_or(fd, sess, Some(deadline), None);
                }
                Err(_) => {
                    return "remote command may still be running (could not send a signal)".into();
                }
            }
        }
        // drain until the server confirms or the grace period ends
        while Instant::now() < deadline {
            let mut progressed = false;
            for (id, stream) in [(0, Stream::Stdout), (1, Stream::Stderr)] {
                while let Ok(n) = ch.read(id, buf) {
                    if n == 0 {
                        break;
                    }
                    match stream {
                        Stream::Stdout => result.bytes_stdout += n as u64,
                        Stream::Stderr => result.bytes_stderr += n as u64,
                    }
                    on_output(stream, &buf[..n]);
                    progressed = true;
                }
            }
            if let Some(s) = ch.exit_signal() {
                result.signal = Some(s.clone());
                return format!("remote command stopped (SIG{s})");
            }
            if ch.eof() && !progressed {
                // The exit signal or status comes after EOF: wait for the close to read it.
                let _ = ch.close();
                while let Err(e) = ch.wait_close() {
                    if code(&e) != EAGAIN || Instant::now() >= deadline {
                        break;
                    }
                    let _ = wait_socket_or(fd, sess, Some(deadline), None);
                }
                if let Some(s) = ch.exit_signal() {
                    result.signal = Some(s.clone());
                    return format!("remote command stopped (SIG{s})");
                }
                return format!(
                    "remote command ended after SIG{sig} (exit status {})",
                    ch.exit_status()
                );
            }
            if !progressed {
                let _ = wait_socket_or(fd, sess, Some(deadline), None);
            }
        }
    }
    let _ = ch.close();
    if pty {
        // With a terminal, sshd hangs the command up (SIGHUP) when the connection closes,
        // which happens right after this; prun cannot see it happen.
        return "remote command ignored the signals; it is hung up (SIGHUP) as the connection \
                closes (--pty; not confirmed)"
            .into();
    }
    "remote command may still be running: the server did not confirm SIGTERM or SIGKILL \
     (OpenSSH ignores signal requests for root logins; --pty makes the command end with the \
     connection)"
        .into()
}

/// Sets the session non-blocking when dropped, so freeing it never waits on the network.
pub(crate) struct NonBlockingOnDrop(Session);

impl Drop for NonBlockingOnDrop {
    fn drop(&mut self) {
        self.0.set_blocking(false);
    }
}

fn hostkey_prefs(known: &[String]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for k in known {
        let algs: &[&str] = match k.as_str() {
            "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256"],
            other => match HOSTKEY_ALGS.iter().find(|a| **a == other) {
                Some(a) => std::slice::from_ref(a),
                None => &[],
            },
        };
        for a in algs {
            if !out.contains(a) {
                out.push(a);
            }
        }
    }
    for a in HOSTKEY_ALGS {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out.join(",")
}

/// Resolve `address` within the deadline. IP literals need no lookup; names are resolved
/// on a helper thread (getaddrinfo cannot be interrupted), which is abandoned on timeout or
/// cancel (checked every 100 ms).
fn resolve(
    address: &str,
    port: u16,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<Vec<SocketAddr>, Fail> {
    if let Ok(ip) = address.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    let name = address.to_string();
    let spawned = std::thread::Builder::new()
        .name("prun-dns".into())
        .stack_size(128 * 1024)
        .spawn(move || {
            let r = (name.as_str(), port)
                .to_socket_addrs()
                .map(|a| a.collect::<Vec<_>>());
            let _ = tx.send(r);
        });
    let r = match spawned {
        Ok(_) => loop {
            if cancel.is_cancelled() {
                return Err(cancelled(Phase::Connect, cancel));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(r) => break r,
                Err(_) if Instant::now() < deadline => {}
                Err(_) => {
                    return Err(fail(
                        Phase::Connect,
                        FailureKind::Timeout,
                        format!("timed out resolving '{address}' (--connect-timeout)"),
                    ));
                }
            }
        },
        Err(_) => (address, port).to_socket_addrs().map(|a| a.collect()),
    };
    r.map_err(|e| {
        fail(
            Phase::Connect,
            FailureKind::Unreachable,
            format!("cannot resolve '{address}': {e}"),
        )
    })
}

/// The failure of a step stopped by the run's cancel.
fn cancelled(phase: Phase, cancel: &Cancel) -> Fail {
    fail(
        phase,
        FailureKind::Cancelled,
        format!("stopped: {}", cancel_reason(cancel)),
    )
}

/// One non-blocking TCP connect to `a`, waiting for it through poll against the deadline
/// and the cancel pipe (a blocking connect to a host that drops SYNs would ignore Ctrl-C for
/// the whole connect timeout). `Ok(None)`: cancelled.
fn connect_one(
    a: &SocketAddr,
    deadline: Instant,
    cancel: &Cancel,
) -> io::Result<Option<TcpStream>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(*a), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_nonblocking(true)?;
    match sock.connect(&(*a).into()) {
        Ok(()) => return Ok(Some(sock.into())),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let mut pfds = [
        libc::pollfd {
            fd: sock.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        },
        libc::pollfd {
            fd: cancel.fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        // SAFETY: two valid pollfds.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), 2, left.as_millis().min(1000) as i32) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if pfds[1].revents != 0 {
            return Ok(None);
        }
        if pfds[0].revents != 0 {
            return match sock.take_error()? {
                Some(e) => Err(e),
                None => Ok(Some(sock.into())),
            };
        }
    }
}

pub(crate) fn connect(
    address: &str,
    port: u16,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<TcpStream, Fail> {
    let addrs = resolve(address, port, deadline, cancel)?;
    if addrs.is_empty() {
        return Err(fail(
            Phase::Connect,
            FailureKind::Unreachable,
            format!("'{address}' resolves to no address"),
        ));
    }
    let mut last = None;
    for a in &addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match connect_one(a, deadline, cancel) {
            Ok(Some(s)) => return Ok(s),
            Ok(None) => return Err(cancelled(Phase::Connect, cancel)),
            Err(e) => last = Some((*a, e)),
        }
    }
    let Some((a, e)) = last else {
        return Err(fail(
            Phase::Connect,
            FailureKind::Timeout,
            "timed out in connect (--connect-timeout)",
        ));
    };
    let kind = match e.kind() {
        io::ErrorKind::ConnectionRefused => FailureKind::Refused,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => FailureKind::Timeout,
        _ => FailureKind::Unreachable,
    };
    let msg = match kind {
        FailureKind::Refused => format!("connection refused by {a}"),
        FailureKind::Timeout => format!("timed out connecting to {a} (--connect-timeout)"),
        _ => format!("cannot connect to {a}: {e}"),
    };
    Err(fail(Phase::Connect, kind, msg))
}

/// Check the server's host key against known_hosts under the host's policy. `Ok(true)`: the
/// key does not match what known_hosts says, and the policy (`off`) lets the connection go
/// on anyway; then no password may be sent.
fn check_host_key(
    sess: &Session,
    target: &Target,
    host_keys: &known_hosts::HostKeys<'_>,
    result: &mut HostResult,
) -> Result<bool, Fail> {
    let policy = target.host_key_policy;
    let lookup = target.host_key_name.as_str();
    let Some((blob, _)) = sess.host_key() else {
        return Err(fail(
            Phase::Hostkey,
            FailureKind::Kex,
            "server presented no host key",
        ));
    };
    let kh = &*target.known_hosts;
    let alg = known_hosts::blob_algorithm(blob).unwrap_or("unknown");
    let fp = known_hosts::fingerprint(blob);
    let mut verdict = host_keys.check(blob);
    if verdict == Verdict::Unknown && policy == Policy::AcceptNew {
        verdict = kh.accept(lookup, blob).map_err(|e| {
            fail(
                Phase::Hostkey,
                FailureKind::Io,
                format!(
                    "cannot record host key in {}: {e}",
                    kh.write_path().display()
                ),
            )
        })?;
        if verdict == Verdict::Unknown {
            result.notes.push(format!(
                "added {lookup} {alg} {fp} to {}",
                kh.write_path().display()
            ));
            return Ok(false);
        }
    }
    match verdict {
        Verdict::Known => Ok(false),
        Verdict::Revoked { where_ } => Err(fail(
            Phase::Hostkey,
            FailureKind::HostkeyMismatch,
            format!("host key {alg} {fp} for {lookup} is REVOKED ({where_})"),
        )),
        Verdict::Unknown if policy == Policy::Off => {
            result.notes.push(format!(
                "host key {alg} {fp} for {lookup} NOT verified (host key checking is off)"
            ));
            Ok(false)
        }
        Verdict::Changed { where_ } if policy == Policy::Off => {
            result.notes.push(format!(
                "HOST KEY CHANGED for {lookup}: server sent {alg} {fp}, which does not match \
                 {where_}; connecting anyway (host key checking is off), with password and \
                 keyboard-interactive authentication disabled"
            ));
            Ok(true)
        }
        Verdict::Changed { where_ } => Err(fail(
            Phase::Hostkey,
            FailureKind::HostkeyMismatch,
            format!(
                "HOST KEY CHANGED for {lookup}: server sent {alg} {fp}, which does not match \
                 {where_}; refusing to connect (if the change is expected: ssh-keygen -R '{lookup}')"
            ),
        )),
        Verdict::Unknown => Err(fail(
            Phase::Hostkey,
            FailureKind::HostkeyUnknown,
            match host_keys.cert_authority() {
                Some(ca) => format!(
                    "host key for {lookup} is not known ({alg} {fp}): known_hosts trusts a \
                     certificate authority for it ({ca}), but prun cannot verify host \
                     certificates (libssh2 does not support them); add the host's plain key \
                     to known_hosts (ssh-keyscan) or run with --host-key-check accept-new"
                ),
                None => format!(
                    "host key for {lookup} is not known ({alg} {fp}); to trust it, \
                     run with --host-key-check accept-new or add it to known_hosts"
                ),
            },
        )),
    }
}

fn authenticate(
    sess: &Session,
    fd: RawFd,
    target: &Target,
    shared: &Shared<'_>,
    deadline: Instant,
    allow_password: bool,
) -> Result<String, Fail> {
    let user = target.user.as_str();
    let mut tried: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let on_err = |e: &ssh2::Error, what: &str, errors: &mut Vec<String>| -> Result<(), Fail> {
        match code(e) {
            LIBSSH2_TIMEOUT => Err(fail(
                Phase::Auth,
                FailureKind::Timeout,
                "timed out in auth (--connect-timeout)",
            )),
            // -18: key refused; -19: refused/unverified; -16: key file unusable
            -18 | -19 | -16 => {
                if code(e) == -16 {
                    errors.push(format!("{what}: {}", e.message()));
                }
                Ok(())
            }
            -13 | -7 | -43 => Err(fail(
                Phase::Auth,
                FailureKind::Auth,
                format!(
                    "server closed the connection during auth after {} key(s) were tried \
                     (too many keys for its MaxAuthTries?)",
                    errors.len() + 1
                ),
            )),
            _ => {
                errors.push(format!("{what}: {} ({})", e.message(), code(e)));
                Ok(())
            }
        }
    };
    // Offer one key file; Ok(true) when it authenticated.
    let try_key = |key: &KeyFile, errors: &mut Vec<String>| -> Result<bool, Fail> {
        match nonblocking(fd, sess, deadline, shared.cancel, || {
            super::sign::userauth(sess, user, key)
        }) {
            Ok(()) => Ok(sess.authenticated()),
            Err(StepError::Ssh(e)) => on_err(&e, &key.display, errors).map(|()| false),
            Err(e) => Err(step_fail(Phase::Auth, e, FailureKind::Auth, shared.cancel)),
        }
    };

    for key in target.identities.iter().filter(|k| !k.encrypted) {
        tried.push(key.display.clone());
        if try_key(key, &mut errors)? {
            return Ok(format!("publickey {}", key.display));
        }
    }
    if shared.settings.use_agent && !target.identities_only {
        // The agent exchange runs blocking (libssh2's agent code talks to a second socket),
        // in slices of at most half a second so that the deadline and a cancel are seen.
        sess.set_blocking(true);
        let r = {
            let _bound = super::bound::enter(Some(deadline), Some(shared.cancel.flag()));
            agent_auth(sess, user, deadline, shared.cancel)
        };
        sess.set_blocking(false);
        if shared.cancel.is_cancelled() {
            return Err(step_fail(
                Phase::Auth,
                StepError::Cancelled,
                FailureKind::Auth,
                shared.cancel,
            ));
        }
        match r {
            Ok((Some(m), _)) => return Ok(m),
            Ok((None, n)) => tried.push(format!("{n} agent key(s)")),
            Err(e) => {
                if code(&e) == LIBSSH2_TIMEOUT {
                    on_err(&e, "agent", &mut errors)?;
                }
                errors.push(format!("agent: {}", e.message()));
            }
        }
    }
    for key in shared
        .default_keys
        .iter()
        .filter(|_| !target.identities_only)
    {
        if target.identities.iter().any(|k| k.path == key.path) {
            continue;
        }
        tried.push(key.display.clone());
        if try_key(key, &mut errors)? {
            return Ok(format!("publickey {}", key.display));
        }
    }
    if shared.settings.password.is_some() && !allow_password {
        errors.push(
            "password authentication disabled: the host key changed (as OpenSSH does)".into(),
        );
    }
    if let Some(pw) = shared.settings.password.as_ref().filter(|_| allow_password) {
        // Password, then keyboard-interactive answered with the same password (what
        // PAM-backed servers offer instead); OpenSSH's order after public keys.
        tried.push("password".into());
        match nonblocking(fd, sess, deadline, shared.cancel, || {
            sess.userauth_password(user, pw.expose())
        }) {
            Ok(()) if sess.authenticated() => return Ok("password".into()),
            Ok(()) => {}
            Err(StepError::Ssh(e)) => on_err(&e, "password", &mut errors)?,
            Err(e) => return Err(step_fail(Phase::Auth, e, FailureKind::Auth, shared.cancel)),
        }
        tried.push("keyboard-interactive".into());
        let mut answer = PasswordPrompt(pw.expose());
        match nonblocking(fd, sess, deadline, shared.cancel, || {
            sess.userauth_keyboard_interactive(user, &mut answer)
        }) {
            Ok(()) if sess.authenticated() => return Ok("keyboard-interactive".into()),
            Ok(()) => {}
            Err(StepError::Ssh(e)) => on_err(&e, "keyboard-interactive", &mut errors)?,
            Err(e) => return Err(step_fail(Phase::Auth, e, FailureKind::Auth, shared.cancel)),
        }
    }
    let locked = &shared.settings.locked_keys;
    let mut msg = if tried.is_empty() && !locked.is_empty() {
        format!(
            "no keys to offer for {user}: {} passphrase-protected and no passphrase was \
             given (set PRUN_KEY_PASSPHRASE, run on a terminal, or add it to ssh-agent)",
            match locked.len() {
                1 => format!("{} is", locked[0]),
                _ => format!("{} are", locked.join(", ")),
            }
        )
    } else if tried.is_empty() {
        format!(
            "no keys to offer for {user}: give --identity FILE, set identity_file in the \
             inventory, start ssh-agent, or create ~/.ssh/id_ed25519"
        )
    } else {
        format!(
            "permission denied for {user}: no key was accepted (tried {})",
            tried.join(", ")
        )
    };
    if !errors.is_empty() {
        msg.push_str(&format!("; {}", errors.join("; ")));
    }
    Err(fail(Phase::Auth, FailureKind::Auth, msg))
}

/// Answers every keyboard-interactive prompt with the password.
struct PasswordPrompt<'a>(&'a str);

impl ssh2::KeyboardInteractivePrompt for PasswordPrompt<'_> {
    fn prompt<'b>(
        &mut self,
        _username: &str,
        _instructions: &str,
        prompts: &[ssh2::Prompt<'b>],
    ) -> Vec<String> {
        prompts.iter().map(|_| self.0.to_string()).collect()
    }
}

/// Try every agent identity in turn (libssh2's `userauth_agent` tries only the first).
fn agent_auth(
    sess: &Session,
    user: &str,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<(Option<String>, usize), ssh2::Error> {
    // One blocking call in slices: libssh2 resumes a call that timed out where it stopped.
    let sliced = |op: &mut dyn FnMut() -> Result<(), ssh2::Error>| loop {
        sess.set_timeout(remaining_ms(deadline).min(500));
        match op() {
            Err(e)
                if code(&e) == LIBSSH2_TIMEOUT
                    && !cancel.is_cancelled()
                    && Instant::now() < deadline => {}
            r => return r,
        }
    };
    let mut agent = sess.agent()?;
    agent.connect()?;
    agent.list_identities()?;
    let ids = agent.identities()?;
    let mut n = 0;
    for id in &ids {
        n += 1;
        match sliced(&mut || agent.userauth(user, id)) {
            Ok(()) if sess.authenticated() => {
                let _ = agent.disconnect();
                return Ok((Some(format!("agent {}", id.comment())), n));
            }
            Ok(()) => {}
            Err(e) if matches!(code(&e), -18 | -19) => {}
            Err(e) => {
                let _ = agent.disconnect();
                return Err(e);
            }
        }
    }
    let _ = agent.disconnect();
    Ok((None, n))
}

/// Milliseconds since the socket last received data (Linux TCP_INFO), if known.
fn ms_since_data_received(fd: RawFd) -> Option<u32> {
    // SAFETY: tcp_info is plain data; getsockopt writes at most `len` bytes into it.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut info as *mut _ as *mut libc::c_void,
            &mut len,
        );
        (rc == 0).then_some(info.tcpi_last_data_recv)
    }
}

/// Ask the kernel to ACK at once (avoids a 40 ms delayed-ACK stall on channel open; see
/// ssh2-notes §7). Best effort.
pub(crate) fn quickack(fd: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: fd is a live TCP socket owned by the session; the option value is a c_int.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// How long to wait when libssh2 made no progress but is not blocked on the socket.
const UNBLOCKED_WAIT_MS: u128 = 5;
/// Longest single wait even when libssh2 is blocked on the socket: libssh2 is called again
/// at least this often, so a state this code misreads costs a delay, never a hang.
const MAX_WAIT_MS: u128 = 1000;

/// Wait until the socket is ready in the direction libssh2 is blocked on, or the deadline.
///
/// When libssh2 reports no blocked direction, it may hold complete packets it has not decoded
/// yet (a read can return 0 or EAGAIN with bytes still in its buffer): the socket will not
/// wake us for those, so wait only briefly and let the caller call libssh2 again. Waiting for
/// POLLIN there could hang forever on a quiet connection.
pub(crate) fn wait_socket(
    fd: RawFd,
    sess: &Session,
    deadline: Option<Instant>,
    cancel: &Cancel,
) -> Result<(), WaitError> {
    wait_socket_or(fd, sess, deadline, Some(cancel))
}

/// [`wait_socket`], optionally without waking on cancel (for the stop grace period).
fn wait_socket_or(
    fd: RawFd,
    sess: &Session,
    deadline: Option<Instant>,
    cancel: Option<&Cancel>,
) -> Result<(), WaitError> {
    let (events, cap) = match sess.block_directions() {
        BlockDirections::Inbound => (libc::POLLIN, MAX_WAIT_MS),
        BlockDirections::Outbound => (libc::POLLOUT, MAX_WAIT_MS),
        BlockDirections::Both => (libc::POLLIN | libc::POLLOUT, MAX_WAIT_MS),
        BlockDirections::None => (libc::POLLIN, UNBLOCKED_WAIT_MS),
    };
    let left = deadline.map_or(cap, |d| {
        d.saturating_duration_since(Instant::now()).as_millis()
    });
    let timeout = left.min(cap) as i32;
    let mut pfds = [
        libc::pollfd {
            fd,
            events,
            revents: 0,
        },
        libc::pollfd {
            fd: cancel.map_or(-1, Cancel::fd),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: two valid pollfds (a negative fd is ignored by poll).
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), 2, timeout) };
        if r >= 0 {
            if pfds[1].revents != 0 {
                return Err(WaitError::Cancelled);
            }
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(WaitError::Io(e));
        }
    }
}

/// Why waiting for the socket ended without it being ready.
pub(crate) enum WaitError {
    Cancelled,
    Io(io::Error),
}

/// Why a non-blocking step did not complete.
pub(crate) enum StepError {
    Ssh(ssh2::Error),
    TimedOut,
    Cancelled,
    Io(io::Error),
}

fn step_fail(phase: Phase, e: StepError, default: FailureKind, cancel: &Cancel) -> Fail {
    match e {
        StepError::Ssh(e) => ssh_fail(phase, &e, default),
        StepError::TimedOut => fail(
            phase,
            FailureKind::Timeout,
            format!("timed out in {phase} (--connect-timeout)"),
        ),
        StepError::Cancelled => fail(
            phase,
            FailureKind::Cancelled,
            format!("stopped: {}", cancel_reason(cancel)),
        ),
        StepError::Io(e) => fail(phase, FailureKind::Io, format!("{phase}: {e}")),
    }
}

/// Drive a non-blocking libssh2 call to completion: on EAGAIN, re-arm TCP_QUICKACK (the
/// request has been sent; its reply should be ACKed at once) and wait for the socket.
/// Start the SFTP subsystem, non-blocking (so TCP_QUICKACK keeps the delayed-ACK stall of
/// the request-reply exchange away), within the connect timeout.
pub(crate) fn start_sftp(
    sess: &Session,
    fd: RawFd,
    target: &Target,
    cancel: &Cancel,
) -> Result<ssh2::Sftp, Fail> {
    sess.set_blocking(false);
    let deadline = Instant::now() + target.connect_timeout;
    nonblocking(fd, sess, deadline, cancel, || sess.sftp()).map_err(|e| {
        let mut f = step_fail(Phase::ChannelOpen, e, FailureKind::Channel, cancel);
        if f.0.kind == FailureKind::Channel {
            f.0.message = format!(
                "cannot start SFTP: {} (does the server enable the sftp subsystem?)",
                f.0.message
            );
        }
        f
    })
}

pub(crate) fn nonblocking<T>(
    fd: RawFd,
    sess: &Session,
    deadline: Instant,
    cancel: &Cancel,
    mut op: impl FnMut() -> Result<T, ssh2::Error>,
) -> Result<T, StepError> {
    let _bound = super::bound::enter(Some(deadline), Some(cancel.flag()));
    loop {
        match op() {
            Ok(v) => return Ok(v),
            Err(e) if code(&e) == EAGAIN => {
                if Instant::now() >= deadline {
                    return Err(StepError::TimedOut);
                }
                quickack(fd);
                match wait_socket(fd, sess, Some(deadline), cancel) {
                    Ok(()) => {}
                    Err(WaitError::Cancelled) => return Err(StepError::Cancelled),
                    Err(WaitError::Io(e)) => return Err(StepError::Io(e)),
                }
            }
            Err(e) => return Err(StepError::Ssh(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_before_the_command_are_retried() {
        let f = |phase, kind, message: &str| Failure {
            phase,
            kind,
            message: message.into(),
        };
        use FailureKind as K;
        assert!(is_retryable(&f(Phase::Connect, K::Refused, "")));
        assert!(is_retryable(&f(Phase::Connect, K::Timeout, "")));
        assert!(!is_retryable(&f(
            Phase::Connect,
            K::Unreachable,
            "cannot resolve 'x'"
        )));
        assert!(is_retryable(&f(Phase::Handshake, K::Banner, "")));
        assert!(is_retryable(&f(Phase::Handshake, K::Io, "")));
        assert!(!is_retryable(&f(Phase::Handshake, K::Kex, "")));
        assert!(!is_retryable(&f(Phase::Hostkey, K::HostkeyUnknown, "")));
        assert!(!is_retryable(&f(Phase::Auth, K::Auth, "")));
        assert!(is_retryable(&f(Phase::Auth, K::Timeout, "")));
        assert!(is_retryable(&f(Phase::ChannelOpen, K::Channel, "")));
        assert!(!is_retryable(&f(Phase::Exec, K::Timeout, "")));
        assert!(!is_retryable(&f(Phase::Read, K::Io, "")));
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        for attempt in 1..=8 {
            let base = Duration::from_millis(200 * 2u64.pow((attempt - 1).min(5)))
                .min(Duration::from_secs(5));
            let b = backoff(attempt);
            assert!(b >= base && b < base * 2, "{attempt}: {b:?}");
        }
    }

    #[test]
    fn hostkey_prefs_put_known_types_first() {
        assert!(hostkey_prefs(&[]).starts_with("ssh-ed25519,"));
        let p = hostkey_prefs(&["ssh-rsa".into()]);
        assert!(
            p.starts_with("rsa-sha2-512,rsa-sha2-256,ssh-ed25519"),
            "{p}"
        );
        assert!(!p.contains("cert"));
        assert_eq!(p.split(',').count(), HOSTKEY_ALGS.len());
    }
}
