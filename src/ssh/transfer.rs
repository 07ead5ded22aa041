//! File transfer over SFTP on an authenticated session (`prun push` / `prun pull`): files are
//! streamed in bounded chunks, written under a temporary name and renamed into place (so an
//! interrupted transfer never leaves a truncated target; an existing target is replaced with
//! `mv -f`, see `Xfer::replace`), with modes (and with `--preserve`
//! times) carried over, sizes checked and, with `--checksum`, SHA-256 compared against the
//! remote `sha256sum`.
//!
//! SFTP runs non-blocking: every call waits through the session's one wait primitive, bounded
//! by the stall limit (`--connect-timeout` without progress), the `--timeout` deadline and the
//! run's cancel, so a stalled or hostile server fails the host instead of hanging it. Remote
//! helper commands (`sha256sum`, `mv`) run the same way, bounded by `--timeout` (none by
//! default), not by the stall limit. A `pull -r` listing is bounded in depth and entries.
//! Timings: `open`
//! (directories and file opens), `transfer` (the data), `close` (close, attributes, rename,
//! checksums), each summed over the host's files.

use super::Ctx;
use super::channel::ExecChannel;
use super::fail::{Clock, Done, Fail, fail, step_fail};
use super::io::{IdlePasses, StepError, WaitError, nonblocking, nonblocking_grace, wait_socket};
use crate::cancel::Cancel;
use crate::event::{FailureKind, HostResult, Phase, Status};
use crate::localtree::LocalTree;
use crate::target::{PullSpec, PushItem, PushSpec, Target, shell_quote};
use sha2::{Digest, Sha256};
use ssh2::{ErrorCode, FileStat, OpenFlags, OpenType, Session, Sftp};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::io::RawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

/// Bytes per read or write call: bounds memory per host (libssh2 pipelines the SFTP packets
/// of one call).
/// How long removing a stopped push's temporary files may take in all.
const CLEANUP_GRACE: Duration = Duration::from_secs(2);

const CHUNK: usize = 256 * 1024;
/// Files per remote `sha256sum` call.
const CHECKSUM_BATCH: usize = 100;
/// How deep a `pull -r` walks, and how many entries it lists at most.
pub const MAX_PULL_DEPTH: usize = 64;
pub const MAX_PULL_ENTRIES: usize = 1_000_000;
/// What a remote helper command may print before it is cut off (a hostile host could print
/// forever).
const MAX_HELPER_OUTPUT: usize = 16 * 1024 * 1024;
/// The error code prun gives an SFTP call stopped by the run's cancel.
const CANCELLED: i32 = -10_000;
const SFTP_NO_SUCH_FILE: i32 = 2;

/// Time spent per transfer phase, summed over files.
#[derive(Default)]
struct Acc {
    open: Duration,
    transfer: Duration,
    close: Duration,
}

/// Per-host transfer state.
struct Xfer<'a> {
    sess: &'a Session,
    /// The session's socket (waited on; TCP_QUICKACK is re-armed while waiting, or every
    /// small SFTP request-reply waits out a ~40 ms delayed ACK, ssh2-notes §7).
    fd: RawFd,
    /// The longest one call may go without completing (--connect-timeout).
    stall: Duration,
    /// Taken by `Drop` (see [`release`]).
    sftp: std::mem::ManuallyDrop<Sftp>,
    shared: &'a Ctx<'a>,
    deadline: Option<Instant>,
    acc: Acc,
    buf: Vec<u8>,
    /// The SFTP server's directory, once asked (for absolute paths).
    cwd: Option<String>,
}

fn sftp_msg(e: &ssh2::Error) -> String {
    match e.code() {
        ErrorCode::SFTP(2) => "no such file or directory".into(),
        ErrorCode::SFTP(3) => "permission denied".into(),
        ErrorCode::SFTP(4) => "failure (exists already, or not allowed)".into(),
        ErrorCode::Session(-9) => "stalled: no progress within --connect-timeout".into(),
        _ => e.message().to_string(),
    }
}

/// A non-blocking step's failure as the ssh2 error the SFTP code reports.
fn step_error(e: StepError) -> ssh2::Error {
    match e {
        StepError::Ssh(e) => e,
        StepError::TimedOut => ssh2::Error::new(ErrorCode::Session(-9), "timed out"),
        StepError::Cancelled => ssh2::Error::new(ErrorCode::Session(CANCELLED), "cancelled"),
        StepError::Io(_) => ssh2::Error::new(ErrorCode::Session(-7), "socket error"),
    }
}

impl Xfer<'_> {
    /// Fail in `phase` with `msg`; the host's status is `failed` (it connected; the transfer
    /// did not succeed), or `timeout` / `cancelled` when that is why the call stopped.
    fn fail(&self, phase: Phase, msg: String) -> Fail {
        if let Err(f) = self.check(phase) {
            return f;
        }
        fail(phase, FailureKind::Io, msg).with_status(Status::Failed)
    }

    /// The deadline of the next call: the stall limit, or the --timeout deadline if sooner.
    fn call_deadline(&self) -> Instant {
        let stall = Instant::now() + self.stall;
        self.deadline.map_or(stall, |d| d.min(stall))
    }

    /// One SFTP call, non-blocking, repeated on EAGAIN after waiting for the socket, until
    /// [`Xfer::call_deadline`] or the run's cancel.
    fn nb<T>(&self, op: impl FnMut() -> Result<T, ssh2::Error>) -> Result<T, ssh2::Error> {
        let deadline = self.call_deadline();
        nonblocking(self.fd, self.sess, deadline, self.shared.cancel, op).map_err(step_error)
    }

    /// Remove the temporary files this push made (best effort), also when the run was
    /// stopped: every removal within one [`CLEANUP_GRACE`] that the run's cancel does not
    /// cut short, so a push stopped by Ctrl-C, `--fail-fast` or `--timeout` leaves no
    /// temporary file while the connection works.
    fn remove_temps<'t>(&self, temps: impl IntoIterator<Item = &'t str>) {
        let until = Instant::now() + CLEANUP_GRACE;
        for t in temps {
            let _ = nonblocking_grace(self.fd, self.sess, until, || self.sftp.unlink(Path::new(t)));
        }
    }

    /// [`Xfer::nb`] for the file calls that report EAGAIN as `io::ErrorKind::WouldBlock`.
    fn nb_io<T>(&self, mut op: impl FnMut() -> std::io::Result<T>) -> Result<T, String> {
        let deadline = self.call_deadline();
        loop {
            match op() {
                Ok(v) => return Ok(v),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(sftp_msg(&step_error(StepError::TimedOut)));
                    }
                    match wait_socket(self.fd, self.sess, Some(deadline), self.shared.cancel) {
                        Ok(()) => {}
                        Err(WaitError::Cancelled) => return Err("cancelled".into()),
                        Err(WaitError::Io(e)) => return Err(e.to_string()),
                    }
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Between chunks: stop on Ctrl-C / --fail-fast and at the --timeout deadline.
    fn check(&self, phase: Phase) -> Result<(), Fail> {
        if self.shared.cancel.is_cancelled() {
            return Err(fail(phase, FailureKind::Cancelled, "transfer cancelled"));
        }
        if let Some(d) = self.deadline
            && Instant::now() >= d
        {
            return Err(fail(
                phase,
                FailureKind::Timeout,
                "transfer did not finish within --timeout",
            )
            .with_status(Status::Timeout));
        }
        Ok(())
    }

    fn timed<T>(&mut self, phase: Phase, f: impl FnOnce(&mut Self) -> T) -> T {
        let t = Instant::now();
        let r = f(self);
        let d = t.elapsed();
        match phase {
            Phase::Open => self.acc.open += d,
            Phase::Transfer => self.acc.transfer += d,
            _ => self.acc.close += d,
        }
        r
    }

    /// `mkdir -p` of an absolute or relative remote path.
    fn mkdir_p(&self, dir: &str, mode: i32) -> Result<(), String> {
        let mut path = String::new();
        for (i, part) in dir.split('/').enumerate() {
            if part.is_empty() {
                if i == 0 {
                    path.push('/');
                }
                continue;
            }
            if !path.is_empty() && !path.ends_with('/') {
                path.push('/');
            }
            path.push_str(part);
            self.mkdir_one(&path, mode)?;
        }
        Ok(())
    }

    /// Create one directory; one that exists already is fine, anything else there is not.
    fn mkdir_one(&self, path: &str, mode: i32) -> Result<(), String> {
        match self.nb(|| self.sftp.stat(Path::new(path))) {
            Ok(st) if st.is_dir() => return Ok(()),
            Ok(_) => return Err(format!("{path} exists and is not a directory")),
            Err(e) if e.code() == ErrorCode::SFTP(SFTP_NO_SUCH_FILE) => {}
            Err(e) => return Err(format!("{path}: {}", sftp_msg(&e))),
        }
        match self.nb(|| self.sftp.mkdir(Path::new(path), mode)) {
            Ok(()) => Ok(()),
            // made meanwhile by someone else (another host of the run on a shared file
            // system, say): fine if it is a directory now
            Err(e) => match self.nb(|| self.sftp.stat(Path::new(path))) {
                Ok(st) if st.is_dir() => Ok(()),
                _ => Err(format!("cannot create directory {path}: {}", sftp_msg(&e))),
            },
        }
    }

    /// Run a small shell command on the host: its stdout, or the first line of its stderr as
    /// the error. Non-blocking: the channel opens within the stall limit; the command may run
    /// until --timeout (none by default: hashing a large file takes what it takes) and stops
    /// on the run's cancel. Output past [`MAX_HELPER_OUTPUT`] is an error.
    fn run_remote(&self, cmd: &str) -> Result<String, String> {
        let cancel = self.shared.cancel;
        let ch = self
            .nb(|| ExecChannel::open(self.sess))
            .map_err(|e| format!("cannot open a channel: {}", sftp_msg(&e)))?;
        self.nb(|| ch.exec(cmd))
            .map_err(|e| format!("cannot run a command: {}", sftp_msg(&e)))?;
        let _ = self.nb(|| ch.send_eof());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        // on the heap, and libssh2's reads on the scratch stack: this function waits, and a
        // fiber keeps every stack page it touched (32 KB more a host at -p 1000 was 32 MB)
        let mut buf = vec![0u8; 32 * 1024];
        let mut idle = IdlePasses::default();
        loop {
            let mut progressed = false;
            for (id, sink) in [(0, &mut out), (1, &mut err)] {
                loop {
                    match super::fiber::deep(|| ch.read(id, &mut buf)) {
                        Ok(0) => break,
                        Ok(n) => {
                            sink.extend_from_slice(&buf[..n]);
                            progressed = true;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(format!("reading its output: {e}")),
                    }
                }
            }
            if out.len() + err.len() > MAX_HELPER_OUTPUT {
                return Err(format!("its output passed {MAX_HELPER_OUTPUT} bytes"));
            }
            if ch.eof() && !progressed {
                break;
            }
            if idle.wait_now(progressed) {
                if self.deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err("did not finish within --timeout".into());
                }
                match wait_socket(self.fd, self.sess, self.deadline, cancel) {
                    Ok(()) => {}
                    Err(WaitError::Cancelled) => return Err("cancelled".into()),
                    Err(WaitError::Io(e)) => return Err(format!("waiting for it: {e}")),
                }
            }
        }
        self.nb(|| ch.close())
            .and_then(|()| self.nb(|| ch.wait_close()))
            .map_err(|e| format!("closing its channel: {}", sftp_msg(&e)))?;
        if ch.exit_signal().is_some() || ch.exit_status() != 0 {
            let err = String::from_utf8_lossy(&err);
            return Err(err.lines().next().unwrap_or("(no message)").to_string());
        }
        String::from_utf8(out).map_err(|_| "its output is not UTF-8".to_string())
    }

    /// The entries of remote directory `dir` (names and attributes, without `.`, `..` and
    /// names a server should never send: empty or with a `/`), one SFTP call at a time, each
    /// bounded; at most `room` of them. Checks the cancel and `--timeout` between entries.
    fn list_dir(&self, dir: &str, room: usize) -> Result<Vec<(String, FileStat)>, String> {
        let msg = |e: &ssh2::Error| format!("listing {dir}: {}", sftp_msg(e));
        let mut handle = self
            .nb(|| self.sftp.opendir(Path::new(dir)))
            .map(|h| Handle::new(h, self))
            .map_err(|e| msg(&e))?;
        let mut out = Vec::new();
        loop {
            if self.shared.cancel.is_cancelled() {
                return Err("cancelled".into());
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(format!("listing {dir}: did not finish within --timeout"));
            }
            match self.nb(|| handle.readdir()) {
                Ok((name, st)) => {
                    let name = name.to_string_lossy().into_owned();
                    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
                        continue;
                    }
                    if out.len() >= room {
                        return Err(format!(
                            "remote {dir}: more than {MAX_PULL_ENTRIES} entries to pull"
                        ));
                    }
                    out.push((name, st));
                }
                // LIBSSH2_ERROR_FILE: the end of the listing
                Err(e) if e.code() == ErrorCode::Session(-16) => break,
                Err(e) => return Err(msg(&e)),
            }
        }
        let _ = handle.close(self);
        Ok(out)
    }

    /// `p` as an absolute path: relative SFTP paths start at the SFTP server's directory,
    /// which need not be the shell's (`internal-sftp -d`).
    fn absolute(&mut self, p: &str) -> Result<String, String> {
        if p.starts_with('/') {
            return Ok(p.to_string());
        }
        if self.cwd.is_none() {
            let cwd = self
                .nb(|| self.sftp.realpath(Path::new(".")))
                .map_err(|e| format!("cannot resolve the remote directory: {}", sftp_msg(&e)))?;
            self.cwd = Some(cwd.to_string_lossy().trim_end_matches('/').to_string());
        }
        Ok(format!("{}/{p}", self.cwd.as_deref().unwrap_or("")))
    }

    /// Move temporary files over existing targets. SFTP v3 cannot rename over a file, so this
    /// runs `mv -f` (one atomic rename(2) each) in batches; where that is not possible (no
    /// shell, say) the target is removed and the file renamed over SFTP (the target is then
    /// briefly absent, never partial).
    fn replace(&mut self, pending: &[(String, String)]) -> Result<(), String> {
        let mut abs = Vec::with_capacity(pending.len());
        for (tmp, dst) in pending {
            abs.push((self.absolute(tmp)?, self.absolute(dst)?));
        }
        for batch in abs.chunks(CHECKSUM_BATCH) {
            let cmd = batch
                .iter()
                .map(|(t, d)| format!("mv -f -- {} {}", shell_quote(t), shell_quote(d)))
                .collect::<Vec<_>>()
                .join(" && ");
            let _ = self.run_remote(&cmd);
        }
        for (tmp, dst) in &abs {
            if self.nb(|| self.sftp.stat(Path::new(tmp))).is_err() {
                continue; // moved
            }
            let _ = self.nb(|| self.sftp.unlink(Path::new(dst)));
            self.nb(|| self.sftp.rename(Path::new(tmp), Path::new(dst), None))
                .map_err(|e| format!("renaming into {dst}: {}", sftp_msg(&e)))?;
        }
        Ok(())
    }

    /// Remote `sha256sum` of `paths`: path → hex digest.
    fn remote_sha256(&self, paths: &[String]) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        for batch in paths.chunks(CHECKSUM_BATCH) {
            let cmd = format!(
                "sha256sum -- {}",
                batch
                    .iter()
                    .map(|p| shell_quote(p))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            let text = self
                .run_remote(&cmd)
                .map_err(|e| format!("--checksum: remote sha256sum: {e}"))?;
            out.extend(parse_sha256sum(&text));
        }
        Ok(out)
    }

    fn verify(&mut self, local: &[(String, String)]) -> Result<(), Fail> {
        let mut full = Vec::with_capacity(local.len());
        for (p, _) in local {
            let a = self
                .absolute(p)
                .map_err(|m| self.fail(Phase::Close, format!("--checksum: {m}")))?;
            full.push(a);
        }
        let remote = self
            .timed(Phase::Close, |x| x.remote_sha256(&full))
            .map_err(|m| self.fail(Phase::Close, m))?;
        let remote: std::collections::HashMap<&str, &str> = remote
            .iter()
            .map(|(p, h)| (p.as_str(), h.as_str()))
            .collect();
        for ((path, hash), abs) in local.iter().zip(&full) {
            match remote.get(abs.as_str()) {
                Some(h) if h == hash => {}
                Some(_) => {
                    return Err(self.fail(Phase::Close, format!("checksum mismatch for {path}")));
                }
                None => {
                    return Err(self.fail(
                        Phase::Close,
                        format!("--checksum: no sha256sum result for {path}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn record(&self, clock: &mut Clock, failing: Option<Phase>) {
        let sums = [
            (Phase::Open, self.acc.open),
            (Phase::Transfer, self.acc.transfer),
            (Phase::Close, self.acc.close),
        ];
        clock.record_sums(&sums, failing);
    }
}

/// `sha256sum` output as (path, hex digest). GNU sha256sum escapes a name holding a newline
/// or a backslash (`\n`, `\\`) and then starts its line with a backslash.
fn parse_sha256sum(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let (escaped, line) = match line.strip_prefix('\\') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let Some((hash, path)) = line.split_once("  ").or_else(|| line.split_once(" *")) else {
            continue;
        };
        let path = if escaped {
            let mut p = String::with_capacity(path.len());
            let mut chars = path.chars();
            while let Some(c) = chars.next() {
                match (c, chars.clone().next()) {
                    ('\\', Some('n')) => {
                        p.push('\n');
                        chars.next();
                    }
                    ('\\', Some('\\')) => {
                        p.push('\\');
                        chars.next();
                    }
                    _ => p.push(c),
                }
            }
            p
        } else {
            path.to_string()
        };
        out.push((path, hash.to_string()));
    }
    out
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn temp_name(dir: &str, name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let sep = if dir.is_empty() || dir.ends_with('/') {
        ""
    } else {
        "/"
    };
    format!(
        "{dir}{sep}.{name}.prun-{}-{nanos:08x}.tmp",
        std::process::id()
    )
}

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
        if f.failure.kind == FailureKind::Channel {
            f.failure.message = format!(
                "cannot start SFTP: {} (does the server enable the sftp subsystem?)",
                f.failure.message
            );
        }
        f
    })
}

fn start<'a>(
    sess: &'a Session,
    fd: RawFd,
    target: &Target,
    shared: &'a Ctx<'a>,
    clock: &mut Clock,
) -> Result<Xfer<'a>, Fail> {
    let sftp = start_sftp(sess, fd, target, shared.cancel)?;
    // Non-blocking from here on. The ssh2 crate closes SFTP handles left open (on a failure
    // path) in blocking mode when they are dropped: bounded by this per-call timeout.
    sess.set_timeout(
        target
            .connect_timeout
            .as_millis()
            .clamp(1, u32::MAX as u128) as u32,
    );
    clock.mark(Phase::ChannelOpen);
    Ok(Xfer {
        sess,
        fd,
        stall: target.connect_timeout,
        sftp: std::mem::ManuallyDrop::new(sftp),
        shared,
        deadline: shared.settings.command_timeout.map(|t| Instant::now() + t),
        acc: Acc::default(),
        buf: vec![0; CHUNK],
        cwd: None,
    })
}

impl Drop for Xfer<'_> {
    fn drop(&mut self) {
        // SAFETY: taken once, here; the field is not used after.
        let sftp = unsafe { std::mem::ManuallyDrop::take(&mut self.sftp) };
        release(sftp, self.stall, self.shared.cancel);
    }
}

/// Drop `value`, whose drop blocks on the server (the ssh2 crate closes SFTP and SFTP file
/// handles in blocking mode, one round trip, bounded by `--connect-timeout`), without
/// stalling a fiber's thread: on the event engine a short-lived thread drops it while the
/// fiber waits suspended, bounded by the same timeout and Ctrl-C. Elsewhere, or when no
/// thread can be started, it is dropped in place. (Dropping the SFTP session in place held
/// up every session of the thread once per host: 200 pushes at 50 ms round trips took 9.2 s
/// on events against 4.5 s on threads.)
fn release<T: Send + 'static>(value: T, stall: Duration, cancel: &Cancel) {
    if !super::fiber::in_fiber() {
        drop(value);
        return;
    }
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    let spawned = std::thread::Builder::new()
        .name("prun-sftp-close".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            drop(value);
            let _ = tx.send(());
        });
    if spawned.is_ok() {
        let _ =
            super::io::recv_or_cancel(&rx, Instant::now() + stall + Duration::from_secs(1), cancel);
    }
}

/// An open SFTP file or directory handle. Closed with [`Handle::close`] on the way that
/// worked (non-blocking, bounded like every SFTP call); a handle left open by a failure
/// (a write error, `--timeout`, Ctrl-C, a server that stopped answering) is closed by
/// [`release`] when dropped, so it cannot stall a fiber's thread either.
struct Handle<'c> {
    file: std::mem::ManuallyDrop<ssh2::File>,
    closed: bool,
    stall: Duration,
    cancel: &'c Cancel,
}

impl<'c> Handle<'c> {
    fn new(file: ssh2::File, x: &Xfer<'c>) -> Self {
        Handle {
            file: std::mem::ManuallyDrop::new(file),
            closed: false,
            stall: x.stall,
            cancel: x.shared.cancel,
        }
    }

    /// Close it, non-blocking on `x`'s session.
    fn close(&mut self, x: &Xfer<'_>) -> Result<(), ssh2::Error> {
        let r = x.nb(|| self.file.close());
        self.closed = r.is_ok();
        r
    }
}

impl std::ops::Deref for Handle<'_> {
    type Target = ssh2::File;
    fn deref(&self) -> &ssh2::File {
        &self.file
    }
}

impl std::ops::DerefMut for Handle<'_> {
    fn deref_mut(&mut self) -> &mut ssh2::File {
        &mut self.file
    }
}

impl Drop for Handle<'_> {
    fn drop(&mut self) {
        // SAFETY: taken once, here; the field is not used after.
        let file = unsafe { std::mem::ManuallyDrop::take(&mut self.file) };
        if self.closed {
            drop(file); // nothing left to close: no round trip
        } else {
            release(file, self.stall, self.cancel);
        }
    }
}

/// Push `spec` to one host.
#[allow(clippy::too_many_arguments)]
#[inline(never)] // its state stays off the login's frames (see super::fiber)
pub(crate) fn push(
    sess: &Session,
    fd: RawFd,
    target: &Target,
    shared: &Ctx<'_>,
    spec: &PushSpec,
    clock: &mut Clock,
    result: &mut HostResult,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<Done, Fail> {
    let mut x = start(sess, fd, target, shared, clock)?;
    let r = push_items(&mut x, spec, result, on_bytes);
    x.record(clock, r.as_ref().err().map(|f| f.failure.phase));
    r.map(|()| Done::Transferred)
}

fn push_items(
    x: &mut Xfer<'_>,
    spec: &PushSpec,
    result: &mut HostResult,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<(), Fail> {
    let base = spec.remote_dir.trim_end_matches('/');
    let base = if base.is_empty() && spec.remote_dir.starts_with('/') {
        "/"
    } else {
        base
    };
    // the remote directory
    let ready = x.timed(Phase::Open, |x| {
        match x.nb(|| x.sftp.stat(Path::new(base))) {
            Ok(st) if st.is_dir() => Ok(()),
            Ok(_) => Err(format!("remote {base} is not a directory")),
            Err(e) if e.code() == ErrorCode::SFTP(SFTP_NO_SUCH_FILE) && spec.mkdir => {
                x.mkdir_p(base, 0o755)
            }
            Err(e) if e.code() == ErrorCode::SFTP(SFTP_NO_SUCH_FILE) => Err(format!(
                "remote directory {base} does not exist (give --mkdir to create it)"
            )),
            Err(e) => Err(format!("remote {base}: {}", sftp_msg(&e))),
        }
    });
    ready.map_err(|m| x.fail(Phase::Open, m))?;
    let join = |rel: &str| {
        if base == "/" {
            format!("/{rel}")
        } else {
            format!("{base}/{rel}")
        }
    };
    let mut sums: Vec<(String, String)> = Vec::new();
    // (temporary file, existing target) pairs to swap once every file is written
    let mut pending: Vec<(String, String)> = Vec::new();
    for it in &spec.items {
        if let Err(f) = x.check(Phase::Transfer) {
            x.remove_temps(pending.iter().map(|(t, _)| t.as_str()));
            return Err(f);
        }
        let dst = join(&it.rel);
        if it.dir {
            let made = x.timed(Phase::Open, |x| x.mkdir_one(&dst, it.mode as i32));
            made.map_err(|m| x.fail(Phase::Open, m))?;
            continue;
        }
        let (dir, name) = dst.rsplit_once('/').unwrap_or(("", dst.as_str()));
        let tmp = temp_name(dir, name);
        let r = push_file(x, it, &tmp, &dst, spec, result, on_bytes, &mut pending);
        match r {
            Ok(Some(hash)) => sums.push((dst, hash)),
            Ok(None) => {}
            Err(f) => {
                // never leave temporary files behind when the connection still works
                let temps = std::iter::once(tmp.as_str());
                x.remove_temps(temps.chain(pending.iter().map(|(t, _)| t.as_str())));
                return Err(f);
            }
        }
        result.files += 1;
    }
    if !pending.is_empty() {
        let replaced = x.timed(Phase::Close, |x| x.replace(&pending));
        if let Err(m) = replaced {
            x.remove_temps(pending.iter().map(|(t, _)| t.as_str()));
            return Err(x.fail(Phase::Close, m));
        }
    }
    if spec.checksum && !sums.is_empty() {
        x.verify(&sums)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn push_file(
    x: &mut Xfer<'_>,
    it: &PushItem,
    tmp: &str,
    dst: &str,
    spec: &PushSpec,
    result: &mut HostResult,
    on_bytes: &mut dyn FnMut(u64),
    pending: &mut Vec<(String, String)>,
) -> Result<Option<String>, Fail> {
    let mut local = fs::File::open(&it.local)
        .map_err(|e| x.fail(Phase::Open, format!("{}: {e}", it.local.display())))?;
    let opened = x.timed(Phase::Open, |x| {
        x.nb(|| {
            x.sftp.open_mode(
                Path::new(tmp),
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                0o600,
                OpenType::File,
            )
        })
    });
    let mut remote = opened.map(|f| Handle::new(f, x)).map_err(|e| {
        x.fail(
            Phase::Open,
            format!("cannot create {tmp}: {}", sftp_msg(&e)),
        )
    })?;
    let mut hasher = spec.checksum.then(Sha256::new);
    let mut sent = 0u64;
    loop {
        x.check(Phase::Transfer)?;
        let n = local
            .read(&mut x.buf)
            .map_err(|e| x.fail(Phase::Transfer, format!("{}: {e}", it.local.display())))?;
        if n == 0 {
            break;
        }
        if let Some(h) = hasher.as_mut() {
            h.update(&x.buf[..n]);
        }
        let t = Instant::now();
        let mut off = 0;
        let mut w = Ok(());
        while off < n && w.is_ok() {
            // libssh2 wants the same data again after EAGAIN, minus what it acknowledged
            w = x.nb_io(|| remote.write(&x.buf[off..n])).map(|k| off += k);
        }
        x.acc.transfer += t.elapsed();
        w.map_err(|e| x.fail(Phase::Transfer, format!("writing {dst}: {e}")))?;
        sent += n as u64;
        result.bytes_transferred += n as u64;
        on_bytes(n as u64);
    }
    let closed = x.timed(Phase::Close, |x| -> Result<(), String> {
        // fsync@openssh.com when offered; not every server has it
        let _ = x.nb(|| remote.fsync());
        remote
            .close(x)
            .map_err(|e| format!("closing {tmp}: {}", sftp_msg(&e)))?;
        drop(remote);
        let st = x
            .nb(|| x.sftp.stat(Path::new(tmp)))
            .map_err(|e| format!("{tmp}: {}", sftp_msg(&e)))?;
        if st.size != Some(sent) {
            return Err(format!(
                "{dst}: size check failed: sent {sent} bytes, the server has {:?}",
                st.size
            ));
        }
        let mut attrs = FileStat {
            size: None,
            uid: None,
            gid: None,
            perm: Some(it.mode),
            atime: None,
            mtime: None,
        };
        if spec.preserve {
            attrs.atime = Some(it.atime);
            attrs.mtime = Some(it.mtime);
        }
        x.nb(|| x.sftp.setstat(Path::new(tmp), attrs.clone()))
            .map_err(|e| format!("setting the mode of {dst}: {}", sftp_msg(&e)))?;
        // SFTP v3 rename refuses an existing target: replace it at the end (`replace`)
        if x.nb(|| x.sftp.rename(Path::new(tmp), Path::new(dst), None))
            .is_err()
        {
            match x.nb(|| x.sftp.stat(Path::new(dst))) {
                Ok(st) if st.is_dir() => return Err(format!("{dst} is a directory")),
                Ok(_) => pending.push((tmp.to_string(), dst.to_string())),
                Err(e) => return Err(format!("renaming into {dst}: {}", sftp_msg(&e))),
            }
        }
        Ok(())
    });
    closed.map_err(|m| x.fail(Phase::Close, m))?;
    Ok(hasher.map(|h| hex(&h.finalize())))
}

/// A remote file found by a pull: remote path, local relative path, size, mode, times.
struct Found {
    remote: String,
    rel: PathBuf,
    dir: bool,
    size: u64,
    mode: u32,
    atime: u64,
    mtime: u64,
}

fn found(remote: String, rel: PathBuf, st: &FileStat) -> Found {
    Found {
        remote,
        rel,
        dir: st.is_dir(),
        size: st.size.unwrap_or(0),
        // permission bits only: a setuid/setgid/sticky bit from the server is never kept
        mode: st.perm.unwrap_or(0o644) & 0o777,
        atime: st.atime.unwrap_or(0),
        mtime: st.mtime.unwrap_or(0),
    }
}

/// Pull `spec` from one host into `LOCAL_DIR/<host>/`.
#[allow(clippy::too_many_arguments)]
#[inline(never)] // its state stays off the login's frames (see super::fiber)
pub(crate) fn pull(
    sess: &Session,
    fd: RawFd,
    target: &Target,
    shared: &Ctx<'_>,
    spec: &PullSpec,
    clock: &mut Clock,
    result: &mut HostResult,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<Done, Fail> {
    let mut x = start(sess, fd, target, shared, clock)?;
    let r = pull_items(&mut x, target, spec, result, on_bytes);
    x.record(clock, r.as_ref().err().map(|f| f.failure.phase));
    r.map(|()| Done::Transferred)
}

fn pull_items(
    x: &mut Xfer<'_>,
    target: &Target,
    spec: &PullSpec,
    result: &mut HostResult,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<(), Fail> {
    let remote = spec.remote.trim_end_matches('/');
    let remote = if remote.is_empty() { "/" } else { remote };
    let name = remote
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("root");
    let host_dir = spec
        .local_dir
        .join(crate::paths::host_file_name(&target.name));
    // what to fetch
    let listed = x.timed(Phase::Open, |x| -> Result<Vec<Found>, String> {
        let st = x
            .nb(|| x.sftp.stat(Path::new(remote)))
            .map_err(|e| format!("remote {remote}: {}", sftp_msg(&e)))?;
        let top = found(remote.to_string(), PathBuf::from(name), &st);
        if !top.dir {
            return Ok(vec![top]);
        }
        if !spec.recursive {
            return Err(format!("remote {remote} is a directory (use -r)"));
        }
        let mut out = vec![top];
        let mut i = 0;
        while i < out.len() {
            if out[i].dir {
                let (dir, rel) = (out[i].remote.clone(), out[i].rel.clone());
                if rel.components().count() > MAX_PULL_DEPTH {
                    return Err(format!(
                        "remote {dir} is more than {MAX_PULL_DEPTH} directories deep"
                    ));
                }
                let mut entries = x.list_dir(&dir, MAX_PULL_ENTRIES - out.len())?;
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                for (fname, st) in entries {
                    let p = format!("{}/{fname}", dir.trim_end_matches('/'));
                    if st.is_dir() || st.is_file() {
                        out.push(found(p, rel.join(&fname), &st));
                    }
                }
            }
            i += 1;
        }
        Ok(out)
    });
    let items = listed.map_err(|m| x.fail(Phase::Open, m))?;
    // every local step relative to directory descriptors, never through a link
    let mut tree = LocalTree::open(&host_dir).map_err(|m| x.fail(Phase::Open, m))?;
    let mut sums: Vec<(String, String)> = Vec::new();
    for it in &items {
        x.check(Phase::Transfer)?;
        if it.dir {
            tree.dir(&it.rel).map_err(|m| x.fail(Phase::Open, m))?;
            continue;
        }
        let hash = pull_file(x, it, &mut tree, spec, result, on_bytes)?;
        if let Some(h) = hash {
            sums.push((it.remote.clone(), h));
        }
        result.files += 1;
    }
    // directory modes last (a read-only directory would refuse its own files)
    for it in items.iter().filter(|i| i.dir) {
        if let Ok(d) = tree.dir(&it.rel) {
            set_local_attrs(d, it, spec.preserve);
        }
    }
    if spec.checksum && !sums.is_empty() {
        x.verify(&sums)?;
    }
    Ok(())
}

/// The mode (and with `--preserve` the times) a pulled file or directory gets, set through
/// its descriptor.
fn set_local_attrs(f: &fs::File, it: &Found, preserve: bool) {
    use std::os::unix::fs::PermissionsExt;
    let mode = crate::paths::local_mode(it.mode, it.dir);
    let _ = f.set_permissions(fs::Permissions::from_mode(mode));
    if preserve {
        let times = fs::FileTimes::new()
            .set_accessed(UNIX_EPOCH + Duration::from_secs(it.atime))
            .set_modified(UNIX_EPOCH + Duration::from_secs(it.mtime));
        let _ = f.set_times(times);
    }
}

fn pull_file(
    x: &mut Xfer<'_>,
    it: &Found,
    tree: &mut LocalTree,
    spec: &PullSpec,
    result: &mut HostResult,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<Option<String>, Fail> {
    let opened = x.timed(Phase::Open, |x| x.nb(|| x.sftp.open(Path::new(&it.remote))));
    let mut remote = opened.map(|f| Handle::new(f, x)).map_err(|e| {
        x.fail(
            Phase::Open,
            format!("cannot open remote {}: {}", it.remote, sftp_msg(&e)),
        )
    })?;
    // exclusive, 0600, random name; renamed over the file's place when complete (a link
    // there is replaced, never followed); removed on every failure path when dropped
    let dst = tree.shown(&it.rel);
    let mut local = tree.create(&it.rel).map_err(|m| x.fail(Phase::Open, m))?;
    let mut hasher = spec.checksum.then(Sha256::new);
    let mut got = 0u64;
    let mut buf = std::mem::take(&mut x.buf);
    buf.resize(CHUNK, 0);
    let r = (|| -> Result<(), Fail> {
        loop {
            x.check(Phase::Transfer)?;
            let t = Instant::now();
            let n = x.nb_io(|| remote.read(&mut buf));
            x.acc.transfer += t.elapsed();
            let n =
                n.map_err(|e| x.fail(Phase::Transfer, format!("reading {}: {e}", it.remote)))?;
            if n == 0 {
                break;
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&buf[..n]);
            }
            local
                .file
                .write_all(&buf[..n])
                .map_err(|e| x.fail(Phase::Transfer, format!("writing {}: {e}", dst.display())))?;
            got += n as u64;
            result.bytes_transferred += n as u64;
            on_bytes(n as u64);
        }
        let t = Instant::now();
        let _ = remote.close(x);
        let done = (|| -> Result<(), String> {
            if got != it.size {
                return Err(format!(
                    "{}: size check failed: the server listed {} bytes, {got} arrived \
                     (did it change during the pull?)",
                    it.remote, it.size
                ));
            }
            local
                .file
                .sync_all()
                .map_err(|e| format!("{}: {e}", dst.display()))?;
            set_local_attrs(&local.file, it, spec.preserve);
            Ok(())
        })();
        x.acc.close += t.elapsed();
        done.map_err(|m| x.fail(Phase::Close, m))
    })();
    r?;
    let t = Instant::now();
    let persisted = local.persist();
    x.acc.close += t.elapsed();
    persisted.map_err(|e| {
        x.fail(
            Phase::Close,
            format!("renaming into {}: {e}", dst.display()),
        )
    })?;
    Ok(hasher.map(|h| hex(&h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256sum_escapes_are_undone() {
        let text = "aa  /plain name\n\\bb  /a\\nb\n\\cc  /back\\\\slash\\n\ndd */bin\n";
        assert_eq!(
            parse_sha256sum(text),
            [
                ("/plain name".to_string(), "aa".to_string()),
                ("/a\nb".into(), "bb".into()),
                ("/back\\slash\n".into(), "cc".into()),
                ("/bin".into(), "dd".into()),
            ]
        );
    }
}
