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

use std::cell::Cell;
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

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

/// libssh2's receive function with the thread's bound checked first (negative errno on
/// failure, `-EAGAIN` for "nothing now", as libssh2 expects).
unsafe extern "C" fn bounded_recv(
    socket: c_int,
    buffer: *mut c_void,
    length: libc::size_t,
    flags: c_int,
    _abstract: *mut *mut c_void,
) -> libc::ssize_t {
    if exhausted() {
        return -(libc::EAGAIN as libc::ssize_t);
    }
    // SAFETY: libssh2 passes its own socket and a buffer of `length` bytes.
    let rc = unsafe { libc::recv(socket, buffer, length, flags) };
    if rc < 0 {
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
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
