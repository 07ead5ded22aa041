//! A session channel driven through libssh2 directly, for the one thing the ssh2 crate
//! cannot do: send an SSH "signal" request (RFC 4254 §6.9) to stop a remote command on
//! `--timeout` or Ctrl-C. libssh2 1.11 exports `libssh2_channel_signal_ex`, but ssh2 0.9 neither
//! binds it nor exposes a channel's raw pointer, so prun opens and drives its exec channel
//! with these few calls. The session stays an `ssh2::Session`; every call holds its lock.
//! All calls are non-blocking (the session is non-blocking): EAGAIN comes back as an error
//! with code -37 or `io::ErrorKind::WouldBlock`.

use libssh2_sys as raw;
use ssh2::{Error, Session};
use std::io;
use std::os::raw::{c_char, c_int, c_uint};
use std::ptr;

unsafe extern "C" {
    // libssh2.h: int libssh2_channel_signal_ex(LIBSSH2_CHANNEL *channel,
    //                                          const char *signame, size_t signame_len);
    fn libssh2_channel_signal_ex(
        channel: *mut raw::LIBSSH2_CHANNEL,
        signame: *const c_char,
        signame_len: libc::size_t,
    ) -> c_int;
}

use super::io::EAGAIN;

/// An open session channel. Dropped channels are freed (the session must be non-blocking,
/// so freeing never waits on the network).
pub struct ExecChannel {
    sess: Session,
    ptr: *mut raw::LIBSSH2_CHANNEL,
}

// SAFETY: the pointer is only used with the session's lock held (Session::raw), like ssh2's
// own Channel, which is Send.
unsafe impl Send for ExecChannel {}

impl ExecChannel {
    fn err(&self, rc: c_int) -> Error {
        let guard = self.sess.raw();
        let raw_sess = &*guard as *const raw::LIBSSH2_SESSION as *mut raw::LIBSSH2_SESSION;
        Error::from_session_error_raw(raw_sess, rc)
    }

    /// Open a "session" channel (non-blocking: EAGAIN is an error with code -37).
    pub fn open(sess: &Session) -> Result<ExecChannel, Error> {
        let guard = sess.raw();
        let raw_sess = &*guard as *const raw::LIBSSH2_SESSION as *mut raw::LIBSSH2_SESSION;
        let kind = "session";
        // SAFETY: valid session pointer under its lock; the type string outlives the call.
        let ptr = unsafe {
            raw::libssh2_channel_open_ex(
                raw_sess,
                kind.as_ptr() as *const c_char,
                kind.len() as c_uint,
                raw::LIBSSH2_CHANNEL_WINDOW_DEFAULT,
                raw::LIBSSH2_CHANNEL_PACKET_DEFAULT,
                ptr::null(),
                0,
            )
        };
        if ptr.is_null() {
            return Err(Error::last_session_error_raw(raw_sess).unwrap_or_else(Error::unknown));
        }
        drop(guard);
        Ok(ExecChannel {
            sess: sess.clone(),
            ptr,
        })
    }

    /// The raw channel (for requests this module does not wrap: agent forwarding).
    pub(crate) fn ptr(&self) -> *mut raw::LIBSSH2_CHANNEL {
        self.ptr
    }

    /// Run one libssh2 call on this channel with the session's lock held; a negative
    /// result is an error. Every caller's SAFETY: `ch` is this live channel, used under the
    /// session lock, and the buffers passed along outlive the call.
    fn call(&self, f: impl FnOnce(*mut raw::LIBSSH2_CHANNEL) -> isize) -> Result<usize, Error> {
        let rc = {
            let _g = self.sess.raw();
            f(self.ptr)
        };
        match rc as c_int {
            // the hot path of a non-blocking read: no need to ask the session for a message
            EAGAIN if rc < 0 => Err(Error::new(ssh2::ErrorCode::Session(EAGAIN), "would block")),
            _ if rc < 0 => Err(self.err(rc as c_int)),
            _ => Ok(rc as usize),
        }
    }

    /// [`ExecChannel::call`] for calls that return only a status.
    fn status(&self, f: impl FnOnce(*mut raw::LIBSSH2_CHANNEL) -> c_int) -> Result<(), Error> {
        self.call(|ch| f(ch) as isize).map(|_| ())
    }

    /// Send the exec request.
    pub fn exec(&self, command: &str) -> Result<(), Error> {
        let req = "exec";
        // SAFETY: see `call`.
        self.status(|ch| unsafe {
            raw::libssh2_channel_process_startup(
                ch,
                req.as_ptr() as *const c_char,
                req.len() as c_uint,
                command.as_ptr() as *const c_char,
                command.len() as c_uint,
            )
        })
    }

    /// Send an "env" request (servers accept only the names their AcceptEnv/SetEnv allow).
    pub fn setenv(&self, name: &str, value: &str) -> Result<(), Error> {
        // SAFETY: see `call`.
        self.status(|ch| unsafe {
            raw::libssh2_channel_setenv_ex(
                ch,
                name.as_ptr() as *const c_char,
                name.len() as c_uint,
                value.as_ptr() as *const c_char,
                value.len() as c_uint,
            )
        })
    }

    /// Request a pseudo-terminal (`xterm`, 80×24, no terminal modes).
    pub fn request_pty(&self) -> Result<(), Error> {
        let term = "xterm";
        // SAFETY: see `call`.
        self.status(|ch| unsafe {
            raw::libssh2_channel_request_pty_ex(
                ch,
                term.as_ptr() as *const c_char,
                term.len() as c_uint,
                ptr::null(),
                0,
                80,
                24,
                0,
                0,
            )
        })
    }

    /// An EAGAIN error as `WouldBlock`, others as themselves.
    fn io_err(e: Error) -> io::Error {
        match e.code() {
            ssh2::ErrorCode::Session(EAGAIN) => io::ErrorKind::WouldBlock.into(),
            _ => io::Error::other(e),
        }
    }

    /// Write to the command's stdin.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: see `call`.
        self.call(|ch| unsafe {
            raw::libssh2_channel_write_ex(ch, 0, buf.as_ptr() as *const c_char, buf.len())
        })
        .map_err(Self::io_err)
    }

    /// Close the command's stdin (EOF).
    pub fn send_eof(&self) -> Result<(), Error> {
        // SAFETY: see `call`.
        self.status(|ch| unsafe { raw::libssh2_channel_send_eof(ch) })
    }

    /// Read from stream 0 (stdout) or 1 (stderr). `Ok(0)` is end of stream only when
    /// [`ExecChannel::eof`] agrees.
    pub fn read(&self, stream_id: c_int, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: see `call`.
        self.call(|ch| unsafe {
            raw::libssh2_channel_read_ex(ch, stream_id, buf.as_mut_ptr() as *mut c_char, buf.len())
        })
        .map_err(Self::io_err)
    }

    /// The server sent EOF and no data is left to read.
    pub fn eof(&self) -> bool {
        let _g = self.sess.raw();
        // SAFETY: this live channel, under the session lock.
        unsafe { raw::libssh2_channel_eof(self.ptr) == 1 }
    }

    /// Send a "signal" request (`TERM`, `KILL`, … without the SIG prefix).
    pub fn signal(&self, name: &str) -> Result<(), Error> {
        // SAFETY: see `call`.
        self.status(|ch| unsafe {
            libssh2_channel_signal_ex(ch, name.as_ptr() as *const c_char, name.len())
        })
    }

    /// Send our CLOSE.
    pub fn close(&self) -> Result<(), Error> {
        // SAFETY: see `call`.
        self.status(|ch| unsafe { raw::libssh2_channel_close(ch) })
    }

    /// Wait for the server's CLOSE.
    pub fn wait_close(&self) -> Result<(), Error> {
        // SAFETY: see `call`.
        self.status(|ch| unsafe { raw::libssh2_channel_wait_closed(ch) })
    }

    /// The exit status the server reported (0 when it reported none).
    pub fn exit_status(&self) -> i32 {
        let _g = self.sess.raw();
        // SAFETY: live channel under the session lock.
        unsafe { raw::libssh2_channel_get_exit_status(self.ptr) }
    }

    /// The signal that killed the command, if the server reported one (`TERM`, `KILL`, …).
    pub fn exit_signal(&self) -> Option<String> {
        let guard = self.sess.raw();
        let raw_sess = &*guard as *const raw::LIBSSH2_SESSION as *mut raw::LIBSSH2_SESSION;
        let mut sig: *mut c_char = ptr::null_mut();
        let mut len: libc::size_t = 0;
        // SAFETY: live channel under the session lock; NULL is allowed for the message and
        // language outputs; libssh2 allocates the signal name, which we copy and free with
        // libssh2_free.
        unsafe {
            let rc = raw::libssh2_channel_get_exit_signal(
                self.ptr,
                &mut sig,
                &mut len,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            );
            if rc != 0 || sig.is_null() {
                return None;
            }
            let name = std::slice::from_raw_parts(sig as *const u8, len).to_vec();
            raw::libssh2_free(raw_sess, sig as *mut libc::c_void);
            String::from_utf8(name).ok()
        }
    }
}

impl Drop for ExecChannel {
    fn drop(&mut self) {
        let _g = self.sess.raw();
        // SAFETY: freeing our channel once, under the session lock.
        unsafe {
            raw::libssh2_channel_free(self.ptr);
        }
    }
}
