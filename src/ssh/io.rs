//! The one way prun waits on a session: a libssh2 call that answered EAGAIN is repeated
//! after [`wait_socket`] polled the socket (in the direction libssh2 is blocked on) together
//! with the run's cancel pipe, against a deadline ([`nonblocking`]); every read inside is
//! bounded by [`super::bound`]. Also the small socket helpers around it (TCP_QUICKACK,
//! TCP_INFO) and the guard that keeps a dropped session from blocking.

use crate::cancel::Cancel;
use ssh2::{BlockDirections, ErrorCode, Session};
use std::io;
use std::os::unix::io::RawFd;
use std::time::{Duration, Instant};

pub(crate) const EAGAIN: i32 = -37;
pub(crate) const LIBSSH2_TIMEOUT: i32 = -9;

pub(crate) fn code(e: &ssh2::Error) -> i32 {
    match e.code() {
        ErrorCode::Session(c) => c,
        ErrorCode::SFTP(c) => c,
    }
}

/// Sleep, waking early on cancel; true when the whole sleep passed.
pub(crate) fn sleep_unless_cancelled(d: Duration, cancel: &Cancel) -> bool {
    let _ = poll_or_cancel(None, d, Some(cancel));
    !cancel.is_cancelled()
}

/// THE wait: until `fd` is ready for `events` (when given), the run is cancelled (when a
/// cancel is given: its pipe becomes readable), or `timeout` passes. Every other wait in the
/// ssh layer is built on this one (or on [`recv_or_cancel`] for a reply from another
/// thread). `Ok(true)`: the fd is ready (or may be); `Ok(false)`: timed out.
pub(crate) fn poll_or_cancel(
    fd: Option<(RawFd, libc::c_short)>,
    timeout: Duration,
    cancel: Option<&Cancel>,
) -> Result<bool, WaitError> {
    if super::fiber::in_fiber() {
        // the event engine: the fiber waits, its thread runs the others
        let w = super::fiber::Wait {
            fd,
            until: Instant::now() + timeout,
            cancel: cancel.map(Cancel::fd),
        };
        return match super::fiber::suspend(w) {
            super::fiber::Woke::Ready => Ok(true),
            super::fiber::Woke::TimedOut => Ok(false),
            super::fiber::Woke::Cancelled => Err(WaitError::Cancelled),
        };
    }
    let (fd, events) = fd.unwrap_or((-1, 0));
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
    poll_fds(&mut pfds, timeout).map_err(WaitError::Io)?;
    if pfds[1].revents != 0 {
        return Err(WaitError::Cancelled);
    }
    Ok(pfds[0].revents != 0)
}

/// poll(2) over `fds` for at most `timeout`, repeated when a signal interrupts it: under
/// [`poll_or_cancel`], and the form a loop over many descriptors (the bastion pump) uses.
/// Returns how many are ready.
pub(crate) fn poll_fds(fds: &mut [libc::pollfd], timeout: Duration) -> io::Result<usize> {
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    loop {
        // SAFETY: a valid slice of pollfds (negative fds are ignored by poll).
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        super::bound::waited();
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Whether a TCP socket is still established (Linux TCP_INFO), if known: a connection the
/// peer closed or reset is not.
pub(crate) fn tcp_established(fd: RawFd) -> Option<bool> {
    // TCP_ESTABLISHED is 1 in the kernel's tcp_states
    tcp_info(fd).map(|i| i.tcpi_state == 1)
}

/// The kernel's TCP_INFO for a socket (None for a socket that is not TCP).
fn tcp_info(fd: RawFd) -> Option<libc::tcp_info> {
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
        (rc == 0).then_some(info)
    }
}

/// The poll events for the direction libssh2 is blocked on (POLLIN when it names none).
pub(crate) fn blocked_events(sess: &Session) -> libc::c_short {
    match sess.block_directions() {
        BlockDirections::Inbound | BlockDirections::None => libc::POLLIN,
        BlockDirections::Outbound => libc::POLLOUT,
        BlockDirections::Both => libc::POLLIN | libc::POLLOUT,
    }
}

/// Wait for a reply from another thread (the name resolver, a bastion's pump) until the
/// deadline or the cancel, looking at the cancel every 100 ms.
pub(crate) fn recv_or_cancel<T>(
    rx: &crossbeam_channel::Receiver<T>,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<T, RecvError> {
    loop {
        if cancel.is_cancelled() {
            return Err(RecvError::Cancelled);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(RecvError::TimedOut);
        }
        if super::fiber::in_fiber() {
            // a fiber must not block its thread: look every 2 ms
            match rx.try_recv() {
                Ok(v) => return Ok(v),
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    return Err(RecvError::Gone);
                }
                Err(crossbeam_channel::TryRecvError::Empty) => {
                    super::fiber::pause(left.min(Duration::from_millis(2)), Some(cancel.fd()));
                    continue;
                }
            }
        }
        let reply = rx.recv_timeout(left.min(Duration::from_millis(100)));
        super::bound::waited();
        match reply {
            Ok(v) => return Ok(v),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(RecvError::Gone);
            }
        }
    }
}

/// Why [`recv_or_cancel`] got no reply.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RecvError {
    TimedOut,
    Cancelled,
    /// The other thread is gone.
    Gone,
}

/// The two-idle-passes rule, for every loop that drives several libssh2 streams: reading one
/// stream can make libssh2 decode (and queue) data or an EOF for another after that one was
/// drained, which no poll would announce; so a loop waits on the socket only after two
/// passes in a row made no progress.
#[derive(Debug, Default)]
pub(crate) struct IdlePasses(u32);

impl IdlePasses {
    /// Record a pass; true when the loop should now wait on the socket.
    pub(crate) fn wait_now(&mut self, progressed: bool) -> bool {
        self.0 = if progressed { 0 } else { self.0 + 1 };
        if self.0 >= 2 {
            self.0 = 0;
            return true;
        }
        false
    }
}

/// Sets the session non-blocking when dropped, so freeing it never waits on the network.
pub(crate) struct NonBlockingOnDrop(pub(crate) Session);

impl Drop for NonBlockingOnDrop {
    fn drop(&mut self) {
        self.0.set_blocking(false);
    }
}

/// How long a server may stay silent while it is sent keepalives every `keepalive_secs`
/// before it counts as having stopped answering: three intervals and a half second (libssh2
/// sends keepalives at least 2 s apart: it turns 1 s into 2 s). The rule for a running
/// command ([`super::exec`]) and for an idle held login ([`super::pool`]).
pub(crate) fn silence_limit(keepalive_secs: u32) -> Duration {
    Duration::from_millis(3 * u64::from(keepalive_secs.max(2)) * 1000 + 500)
}

/// Milliseconds since the socket last received data (Linux TCP_INFO), if known. Out of line:
/// the 232-byte `tcp_info` stays off the frames a fiber waits under ([`super::fiber`]).
#[inline(never)]
pub(crate) fn ms_since_data_received(fd: RawFd) -> Option<u32> {
    tcp_info(fd).map(|i| i.tcpi_last_data_recv)
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
pub(crate) fn wait_socket_or(
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
    let timeout = Duration::from_millis(left.min(cap) as u64);
    poll_or_cancel(Some((fd, events)), timeout, cancel).map(drop)
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

/// When a step gives up. A fixed deadline (`From<Instant>`), or the patience of a login and
/// of a command's channel open, exec and close ([`Patience::answering`]): `--connect-timeout`
/// of silence from the server, never more than [`LOGIN_CAP`] times that in all.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Patience {
    /// The deadline as it stands.
    at: Instant,
    /// How long the server may be silent (zero: `at` is fixed).
    stall: Duration,
    /// The hard end, also for a server that never stops sending.
    cap: Instant,
}

/// A login (and a command's channel open and exec, and its close) may take at most this many
/// times `--connect-timeout` in all, however steadily the server answers (a hostile one can
/// trickle bytes for ever).
pub(crate) const LOGIN_CAP: u32 = 3;

impl From<Instant> for Patience {
    fn from(at: Instant) -> Self {
        Patience {
            at,
            stall: Duration::ZERO,
            cap: at,
        }
    }
}

impl Patience {
    /// Steps that started at `start` (a login; a channel open and exec; a close): they fail when the
    /// server has sent nothing for `timeout` (the first `timeout` counts from `start`, which
    /// covers a login's connect), or at [`LOGIN_CAP`] × `timeout`. A server too busy to
    /// finish a login quickly (a thousand logins at once on a small machine) keeps
    /// answering, and its logins are not given up and started again, which only made it
    /// busier.
    pub(crate) fn answering(start: Instant, timeout: Duration) -> Self {
        Patience {
            at: start + timeout,
            stall: timeout,
            cap: start + timeout.saturating_mul(LOGIN_CAP),
        }
    }

    /// The deadline as it stands (for waits outside libssh2: connect, a bastion's channel).
    pub(crate) fn deadline(&self) -> Instant {
        self.at
    }

    /// At `now`, past the deadline: move it to `stall` after the server last sent bytes
    /// (`since_read` ago), when that is still ahead and before the cap. False: time is up.
    fn extend(&mut self, now: Instant, since_read: Option<Duration>) -> bool {
        let Some(ago) = since_read.filter(|_| !self.stall.is_zero()) else {
            return false;
        };
        let Some(last) = now.checked_sub(ago) else {
            return false;
        };
        let at = (last + self.stall).min(self.cap);
        if at <= now {
            return false;
        }
        self.at = at;
        true
    }
}

/// One libssh2 step, non-blocking: repeated after waiting for the socket each time it
/// answers EAGAIN, until it completes, `patience` runs out or the run is cancelled.
pub(crate) fn nonblocking<T>(
    fd: RawFd,
    sess: &Session,
    patience: impl Into<Patience>,
    cancel: &Cancel,
    op: impl FnMut() -> Result<T, ssh2::Error>,
) -> Result<T, StepError> {
    step(fd, sess, patience.into(), Some(cancel), op)
}

/// [`nonblocking`] for cleaning up after the run stopped (a push's temporary files after
/// Ctrl-C, `--fail-fast` or `--timeout`): bounded by `deadline` only, not by the run's
/// cancel, which has already fired; a stopping command's signal is awaited the same way.
pub(crate) fn nonblocking_grace<T>(
    fd: RawFd,
    sess: &Session,
    deadline: Instant,
    op: impl FnMut() -> Result<T, ssh2::Error>,
) -> Result<T, StepError> {
    step(fd, sess, deadline.into(), None, op)
}

/// The loop of both: reads bounded by the patience's cap (and the cancel, when given).
fn step<T>(
    fd: RawFd,
    sess: &Session,
    mut patience: Patience,
    cancel: Option<&Cancel>,
    mut op: impl FnMut() -> Result<T, ssh2::Error>,
) -> Result<T, StepError> {
    let _bound = super::bound::enter(Some(patience.cap), cancel.map(Cancel::flag));
    loop {
        // libssh2's frames (and the crypto under them) on the thread's scratch stack: a
        // fiber's own stack then only holds prun's frames, a page or two
        match super::fiber::deep(&mut op) {
            Ok(v) => return Ok(v),
            Err(e) if code(&e) == EAGAIN => {
                let now = Instant::now();
                if now >= patience.at && !patience.extend(now, super::bound::since_read(sess)) {
                    return Err(StepError::TimedOut);
                }
                quickack(fd);
                match wait_socket_or(fd, sess, Some(patience.at), cancel) {
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
    fn a_login_waits_while_the_server_answers_but_never_past_its_cap() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut p = Patience::answering(t0, s(10));
        assert_eq!(p.deadline(), t0 + s(10));
        // at 10 s, bytes 2 s ago: 8 s more
        assert!(p.extend(t0 + s(10), Some(s(2))));
        assert_eq!(p.deadline(), t0 + s(18));
        // never past 3 × the timeout
        assert!(p.extend(t0 + s(25), Some(s(1))));
        assert_eq!(p.deadline(), t0 + s(30));
        assert!(!p.extend(t0 + s(30), Some(Duration::ZERO)));
        // silent for the whole timeout, or never heard from: time is up
        let mut p = Patience::answering(t0, s(10));
        assert!(!p.extend(t0 + s(10), Some(s(10))));
        assert!(!p.extend(t0 + s(10), None));
        // a fixed deadline never moves
        let mut p = Patience::from(t0 + s(10));
        assert!(!p.extend(t0 + s(10), Some(Duration::ZERO)));
    }

    #[test]
    fn waits_only_after_two_idle_passes() {
        let mut p = IdlePasses::default();
        assert!(!p.wait_now(false));
        assert!(p.wait_now(false));
        assert!(!p.wait_now(false), "counting starts again after a wait");
        assert!(!p.wait_now(true));
        assert!(!p.wait_now(false));
        assert!(p.wait_now(false));
    }

    #[test]
    fn a_cancel_ends_a_wait_and_a_reply_arrives() {
        let c = Cancel::new().unwrap();
        assert!(matches!(
            poll_or_cancel(None, Duration::from_millis(1), Some(&c)),
            Ok(false)
        ));
        let (tx, rx) = crossbeam_channel::bounded(1);
        tx.send(7).unwrap();
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(recv_or_cancel(&rx, far, &c), Ok(7));
        c.trigger(crate::cancel::Reason::FailFast);
        assert!(matches!(
            poll_or_cancel(None, Duration::from_secs(60), Some(&c)),
            Err(WaitError::Cancelled)
        ));
        assert_eq!(recv_or_cancel(&rx, far, &c), Err(RecvError::Cancelled));
        let near = Instant::now();
        let c2 = Cancel::new().unwrap();
        assert_eq!(recv_or_cancel(&rx, near, &c2), Err(RecvError::TimedOut));
        drop(tx);
        assert_eq!(recv_or_cancel(&rx, far, &c2), Err(RecvError::Gone));
    }
}
