//! Wall-time bounds on libssh2 calls, even while data keeps arriving.
//!
//! libssh2 keeps calling `recv` for as long as the socket has data: a server that sends an
//! endless banner (one byte per `recv`), or floods `SSH_MSG_IGNORE` packets during key
//! exchange or auth, keeps one libssh2 call busy forever, and no deadline or Ctrl-C check
//! between calls ever runs. prun therefore installs its own receive function on every
//! session ([`install`]): before each `recv` it checks the bound of the calling thread
//! ([`enter`]): once the deadline has passed or the run is cancelled it answers `EAGAIN`
//! without reading, so the libssh2 call returns to prun's wait loop, which then times the
//! host out or cancels it. The unread bytes stay in the kernel's buffer (bounded by the TCP
//! window), and a state machine left at `EAGAIN` is one libssh2 resumes correctly.
//!
//! A bound is per thread and scoped: code outside any bound (the bastion pump) reads as
//! libssh2 would. Checking costs one clock read per `recv`.
//!
//! The same receive function saves the system calls of the banner: libssh2 reads the
//! server's identification line (and any lines before it) one byte per `recv` — ~40 calls
//! a login. A one-byte read instead fetches what has arrived (up to [`AHEAD`] bytes) in one
//! `recv` into the session's [`Ahead`] buffer, and every read hands out what that buffer
//! holds before it reads the socket again: libssh2 sees the same bytes in the same order,
//! and waits on the socket only when the buffer is empty (it answers `EAGAIN` only then).
//!
//! And the system calls of an empty socket: a read that found nothing marks the session dry
//! until its thread next waits ([`waited`], called by every wait of the ssh layer: a
//! fiber's suspension, `poll`), and while it is dry, reads answer `EAGAIN` without asking
//! the kernel. One libssh2 call often reads a drained socket several times in a row, and a
//! command's read loop makes two passes over stdout and stderr before it waits: ~20 empty
//! `recv`s per host. A reply that arrives meanwhile is not missed: the wait that follows an
//! `EAGAIN` (for readable, as libssh2 then names) finds it at once. A caller that retried
//! without waiting (libssh2 in blocking mode, which prun does not use) gets a real read after
//! [`DRY_ANSWERS`] of them.

use std::cell::Cell;
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

unsafe extern "C" {
    // libssh2.h (1.11): libssh2_cb_generic *libssh2_session_callback_set2(
    //     LIBSSH2_SESSION *session, int cbtype, libssh2_cb_generic *callback);
    fn libssh2_session_callback_set2(
        session: *mut libssh2_sys::LIBSSH2_SESSION,
        cbtype: c_int,
        callback: *const c_void,
    ) -> *const c_void;
}

const LIBSSH2_CALLBACK_RECV: c_int = 6;

#[derive(Clone, Copy)]
struct Bound {
    deadline: Option<Instant>,
    /// The run's cancel flag, when a cancel should end the call too.
    cancel: *const AtomicBool,
}

thread_local! {
    static BOUND: Cell<Option<Bound>> = const { Cell::new(None) };
    /// How many times this thread has waited, from a start of its own (threads never share
    /// a value): a session marked dry at one count is dry only until the count moves.
    static WAITS: Cell<u64> = Cell::new(thread_base());
    /// Whether a read on this thread found the connection closed or reset by the peer.
    static CLOSED: Cell<bool> = const { Cell::new(false) };
}

/// Whether a read on this thread found the peer gone (end of stream, reset) since the last
/// call; clears the mark. Tells a dropped connection from a protocol failure, which libssh2
/// reports alike (key exchange: both are "Unable to exchange encryption keys").
pub fn take_closed() -> bool {
    CLOSED.with(|c| c.replace(false))
}

/// Restores the thread's previous bound when dropped.
pub struct Scope<'a> {
    previous: Option<Bound>,
    _cancel: std::marker::PhantomData<&'a AtomicBool>,
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        BOUND.with(|b| b.set(self.previous));
    }
}

/// Bound every libssh2 read on this thread, until the scope is dropped: after `deadline`,
/// and (when `cancel` is given) once that flag is set, reads answer `EAGAIN`.
pub fn enter<'a>(deadline: Option<Instant>, cancel: Option<&'a AtomicBool>) -> Scope<'a> {
    let new = Bound {
        deadline,
        cancel: cancel.map_or(std::ptr::null(), |c| c as *const AtomicBool),
    };
    let previous = BOUND.with(|b| b.replace(Some(new)));
    Scope {
        previous,
        _cancel: std::marker::PhantomData,
    }
}

/// A fiber's read bound and closed mark, kept while it is suspended (see [`super::fiber`]):
/// another fiber runs on the thread meanwhile.
pub(crate) struct Saved(Option<Bound>, bool);

/// Take the thread's bound and mark, leaving none.
pub(crate) fn save() -> Saved {
    Saved(BOUND.with(|b| b.take()), CLOSED.with(|c| c.replace(false)))
}

/// Put back what [`save`] took.
pub(crate) fn restore(s: Saved) {
    BOUND.with(|b| b.set(s.0));
    CLOSED.with(|c| c.set(s.1));
}

/// A fresh range of wait counts for a thread (2^32 apart; never 0, which means "not dry").
fn thread_base() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1 << 32, Ordering::Relaxed)
}

/// The calling thread has waited (on a socket, a timer, a pipe, another thread): every
/// session it marked dry may have data now.
pub(crate) fn waited() {
    WAITS.with(|w| w.set(w.get() + 1));
}

/// Reads a dry session answers `EAGAIN` in a row before it asks the kernel again anyway.
pub(crate) const DRY_ANSWERS: u8 = 16;

/// True when the calling thread's bound says stop.
fn exhausted() -> bool {
    BOUND.with(|b| match b.get() {
        None => false,
        Some(Bound { deadline, cancel }) => {
            // SAFETY: the pointer was taken from a reference that outlives the scope that
            // set it (`Scope<'a>`), and the scope is restored before that reference ends.
            let cancelled = !cancel.is_null() && unsafe { (*cancel).load(Ordering::Relaxed) };
            cancelled || deadline.is_some_and(|d| Instant::now() >= d)
        }
    })
}

/// Bytes a one-byte read fetches at most.
pub(crate) const AHEAD: usize = 256;

/// Bytes read from a session's socket ahead of libssh2 (see the module doc). One per
/// session, in the session's own block ([`super::memory::ahead_of`]).
#[repr(C)]
pub(crate) struct Ahead {
    pos: u16,
    len: u16,
    bytes: [u8; AHEAD],
    /// When this session's socket last gave bytes ([`since_epoch_ms`]; 0: never): the
    /// liveness of a session whose socket is not TCP (a ProxyCommand's socket pair), where
    /// the kernel's TCP_INFO cannot tell.
    last_rx_ms: u64,
    /// The thread's wait count when a read last found the socket empty (0: it did not).
    dry_at: u64,
    /// `EAGAIN`s answered since then without a read.
    dry_answers: u8,
}

impl Ahead {
    pub(crate) const EMPTY: Ahead = Ahead {
        pos: 0,
        len: 0,
        bytes: [0; AHEAD],
        last_rx_ms: 0,
        dry_at: 0,
        dry_answers: 0,
    };

    /// Whether a read can answer `EAGAIN` without asking the kernel (counting the answer):
    /// nothing buffered, and the socket was found empty since the thread last waited.
    fn still_dry(&mut self, waits: u64) -> bool {
        if self.pos < self.len || self.dry_at != waits || self.dry_answers >= DRY_ANSWERS {
            return false;
        }
        self.dry_answers += 1;
        true
    }

    /// Note what a read of the socket gave: empty (`EAGAIN`) at wait count `waits`, or not.
    fn note_read(&mut self, rc: libc::ssize_t, errno: i32, waits: u64) {
        let empty = rc < 0 && (errno == libc::EAGAIN || errno == libc::EWOULDBLOCK);
        self.dry_at = if empty { waits } else { 0 };
        self.dry_answers = 0;
    }

    /// Hand out up to `out.len()` buffered bytes; how many.
    fn take(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(usize::from(self.len - self.pos));
        let at = usize::from(self.pos);
        out[..n].copy_from_slice(&self.bytes[at..at + n]);
        self.pos += n as u16;
        n
    }
}

/// One read for libssh2 of up to `out.len()` bytes: from `ahead` while it holds bytes; else
/// a one-byte read fills `ahead` with one `read` of up to [`AHEAD`] bytes first; else `read`
/// straight into `out`. Returns what `read` returned when it was the answer (its errors).
fn read_through(
    ahead: Option<&mut Ahead>,
    out: &mut [u8],
    mut read: impl FnMut(&mut [u8]) -> libc::ssize_t,
) -> libc::ssize_t {
    let Some(a) = ahead else {
        return read(out);
    };
    if a.pos == a.len && out.len() == 1 {
        let rc = read(&mut a.bytes);
        if rc <= 0 {
            return rc;
        }
        a.pos = 0;
        a.len = rc as u16;
    }
    if a.pos < a.len {
        return a.take(out) as libc::ssize_t;
    }
    read(out)
}

/// libssh2's receive function with the thread's bound checked first (negative errno on
/// failure, `-EAGAIN` for "nothing now", as libssh2 expects), reading ahead for the banner.
unsafe extern "C" fn bounded_recv(
    socket: c_int,
    buffer: *mut c_void,
    length: libc::size_t,
    flags: c_int,
    abstract_: *mut *mut c_void,
) -> libc::ssize_t {
    if exhausted() {
        return -(libc::EAGAIN as libc::ssize_t);
    }
    // SAFETY: libssh2 passes `&session->abstract` of the live session it reads for, one
    // call at a time per session; every session of prun is made by super::memory.
    let mut ahead = unsafe { super::memory::ahead_of(abstract_) };
    let waits = WAITS.with(Cell::get);
    if ahead.as_deref_mut().is_some_and(|a| a.still_dry(waits)) {
        return -(libc::EAGAIN as libc::ssize_t);
    }
    // SAFETY: libssh2 passes a buffer of `length` bytes.
    let out = unsafe { std::slice::from_raw_parts_mut(buffer.cast::<u8>(), length) };
    let mut read = None;
    // SAFETY: libssh2's own socket, into a buffer of the given length.
    let rc = read_through(ahead.as_deref_mut(), out, |into| {
        let rc = unsafe { libc::recv(socket, into.as_mut_ptr().cast(), into.len(), flags) };
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        read = Some((rc, errno));
        rc
    });
    if let (Some((got, errno)), Some(a)) = (read, ahead) {
        a.note_read(got, errno, waits);
        if got > 0 {
            a.last_rx_ms = since_epoch_ms();
        }
    }
    if rc < 0 {
        let e = read.map_or(0, |(_, errno)| errno);
        if e == libc::EINTR || e == libc::EWOULDBLOCK || e == libc::ENOENT {
            return -(libc::EAGAIN as libc::ssize_t);
        }
        CLOSED.with(|c| c.set(true));
        return -(e as libc::ssize_t);
    }
    if rc == 0 && length > 0 {
        CLOSED.with(|c| c.set(true));
    }
    rc
}

/// Milliseconds since this process's first call, plus one (never 0), monotonic.
fn since_epoch_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    // +1: 0 means "never"
    epoch.elapsed().as_millis() as u64 + 1
}

/// Milliseconds since `sess`'s socket last gave bytes to libssh2, if it ever did: how long
/// the server has been silent, for a session whose socket is not TCP. Only meaningful while
/// libssh2 is being asked to read (a running command's loop), as it counts bytes read, not
/// bytes arrived.
pub(crate) fn ms_since_read(sess: &ssh2::Session) -> Option<u32> {
    let guard = sess.raw();
    let raw = &*guard as *const libssh2_sys::LIBSSH2_SESSION as *mut libssh2_sys::LIBSSH2_SESSION;
    // SAFETY: a live session under its lock; its abstract field's address, as libssh2 passes
    // it to the receive function.
    let ahead = unsafe { super::memory::ahead_of(libssh2_sys::libssh2_session_abstract(raw)) }?;
    let last = ahead.last_rx_ms;
    (last != 0).then(|| since_epoch_ms().saturating_sub(last).min(u32::MAX as u64) as u32)
}

/// How long ago `sess`'s socket last gave bytes, if it ever did ([`ms_since_read`]).
pub(crate) fn since_read(sess: &ssh2::Session) -> Option<Duration> {
    ms_since_read(sess).map(|ms| Duration::from_millis(ms.into()))
}

/// Make `sess` read through [`bounded_recv`]. Call before the handshake.
pub fn install(sess: &ssh2::Session) {
    let guard = sess.raw();
    let raw = &*guard as *const libssh2_sys::LIBSSH2_SESSION as *mut libssh2_sys::LIBSSH2_SESSION;
    // SAFETY: a valid session under its lock; the callback has libssh2's RECV signature and
    // lives for the whole program.
    unsafe {
        libssh2_session_callback_set2(raw, LIBSSH2_CALLBACK_RECV, bounded_recv as *const c_void);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A socket that has `data` in chunks as they arrived; `None` is EAGAIN.
    fn reader(chunks: Vec<Option<&'static [u8]>>) -> impl FnMut(&mut [u8]) -> libc::ssize_t {
        let mut chunks = chunks.into_iter();
        let mut rest: &[u8] = &[];
        move |into: &mut [u8]| {
            if rest.is_empty() {
                match chunks.next() {
                    Some(Some(c)) => rest = c,
                    Some(None) => return -(libc::EAGAIN as libc::ssize_t),
                    None => return 0,
                }
            }
            let n = into.len().min(rest.len());
            into[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            n as libc::ssize_t
        }
    }

    #[test]
    fn banner_reads_come_from_one_read_and_the_rest_follows_in_order() {
        let mut a = Ahead::EMPTY;
        let calls = Cell::new(0);
        let mut sock = reader(vec![
            Some(b"hello\r\nSSH-2.0-x\r\n\x00\x00\x01"),
            None,
            Some(b"\x10rest"),
        ]);
        let mut read = |into: &mut [u8]| {
            calls.set(calls.get() + 1);
            sock(into)
        };
        // libssh2's banner loop: a byte at a time up to each newline
        let mut line = Vec::new();
        for _ in 0..2 {
            loop {
                let mut b = [0u8];
                assert_eq!(read_through(Some(&mut a), &mut b, &mut read), 1);
                line.push(b[0]);
                if b[0] == b'\n' {
                    break;
                }
            }
        }
        assert_eq!(line, b"hello\r\nSSH-2.0-x\r\n");
        // then a packet read: first what was fetched ahead, then EAGAIN, then the socket
        let mut big = [0u8; 100];
        assert_eq!(read_through(Some(&mut a), &mut big, &mut read), 3);
        assert_eq!(&big[..3], b"\x00\x00\x01");
        assert_eq!(
            read_through(Some(&mut a), &mut big, &mut read),
            -(libc::EAGAIN as libc::ssize_t)
        );
        assert_eq!(read_through(Some(&mut a), &mut big, &mut read), 5);
        assert_eq!(&big[..5], b"\x10rest");
        assert_eq!(calls.get(), 3, "one read for both banner lines");
        // end of stream and errors pass through as they are
        assert_eq!(read_through(Some(&mut a), &mut [0u8], &mut read), 0);
    }

    #[test]
    fn an_empty_socket_is_not_read_again_until_the_thread_waits() {
        let eagain = -(libc::EAGAIN as libc::ssize_t);
        let mut a = Ahead::EMPTY;
        assert!(!a.still_dry(7), "never read: read");
        a.note_read(eagain, libc::EAGAIN, 7);
        for _ in 0..DRY_ANSWERS {
            assert!(
                a.still_dry(7),
                "no wait since the empty read: answer EAGAIN"
            );
        }
        assert!(!a.still_dry(7), "so many in a row: read anyway");
        a.note_read(eagain, libc::EAGAIN, 7);
        assert!(!a.still_dry(8), "the thread waited since: read");
        a.note_read(5, 0, 8);
        assert!(!a.still_dry(8), "it gave bytes: read");
        a.note_read(0, 0, 8);
        assert!(!a.still_dry(8), "end of stream is not empty");
        a.note_read(-1, libc::ECONNRESET, 8);
        assert!(!a.still_dry(8), "an error is not empty");
        // bytes held ahead are handed out even when the socket was empty
        a.note_read(eagain, libc::EAGAIN, 9);
        a.len = 3;
        assert!(!a.still_dry(9));
        // every thread counts from its own base, and waiting moves the count
        let here = WAITS.with(Cell::get);
        waited();
        assert_eq!(WAITS.with(Cell::get), here + 1);
        let there = std::thread::spawn(|| WAITS.with(Cell::get)).join().unwrap();
        assert!(there.abs_diff(here) >= 1 << 31);
    }

    #[test]
    fn without_a_buffer_reads_go_straight_to_the_socket() {
        let mut read = reader(vec![Some(b"ab"), None]);
        let mut b = [0u8];
        assert_eq!(read_through(None, &mut b, &mut read), 1);
        assert_eq!(read_through(None, &mut b, &mut read), 1);
        assert_eq!(&b, b"b");
        assert_eq!(
            read_through(None, &mut b, &mut read),
            -(libc::EAGAIN as libc::ssize_t)
        );
    }

    #[test]
    fn bounds_nest_and_restore() {
        assert!(!exhausted());
        {
            let _a = enter(Some(Instant::now() + Duration::from_secs(60)), None);
            assert!(!exhausted());
            {
                let _b = enter(Some(Instant::now() - Duration::from_millis(1)), None);
                assert!(exhausted());
            }
            assert!(!exhausted());
            let flag = AtomicBool::new(false);
            let _c = enter(None, Some(&flag));
            assert!(!exhausted());
            flag.store(true, Ordering::Relaxed);
            assert!(exhausted());
        }
        assert!(!exhausted());
    }
}
