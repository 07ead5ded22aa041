//! Run cancellation (Ctrl-C, `--fail-fast`): a flag plus a pipe whose read end every
//! blocked session also polls, so a cancel wakes all of them at once instead of waiting for
//! their next timeout.

use std::io;
use std::os::unix::io::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why the run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Interrupted,
    FailFast,
}

pub struct Cancel {
    flag: AtomicBool,
    interrupted: AtomicBool,
    read_fd: RawFd,
    write_fd: RawFd,
}

impl Cancel {
    pub fn new() -> io::Result<Cancel> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two fds into the array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Cancel {
            flag: AtomicBool::new(false),
            interrupted: AtomicBool::new(false),
            read_fd: fds[0],
            write_fd: fds[1],
        })
    }

    /// Stop the run: no new hosts start, running sessions stop at their next wake-up (now).
    /// Safe to call from a signal-handling thread and more than once.
    pub fn trigger(&self, reason: Reason) {
        if reason == Reason::Interrupted {
            self.interrupted.store(true, Ordering::SeqCst);
        }
        if !self.flag.swap(true, Ordering::SeqCst) {
            // The pipe is never read, so it stays readable: every poll on it wakes.
            // SAFETY: writing one byte from a valid buffer to our own pipe.
            unsafe {
                libc::write(self.write_fd, b"x".as_ptr() as *const libc::c_void, 1);
            }
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// The flag itself, for code that must check it without a `Cancel` (the bounded reads
    /// of [`crate::ssh::bound`]).
    pub fn flag(&self) -> &AtomicBool {
        &self.flag
    }

    /// Why the run was cancelled, if it was.
    pub fn reason(&self) -> Option<Reason> {
        if !self.is_cancelled() {
            None
        } else if self.is_interrupted() {
            Some(Reason::Interrupted)
        } else {
            Some(Reason::FailFast)
        }
    }

    /// True when the cancel came from Ctrl-C.
    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// The fd to add to poll sets (readable once cancelled).
    pub fn fd(&self) -> RawFd {
        self.read_fd
    }
}

impl Drop for Cancel {
    fn drop(&mut self) {
        // SAFETY: closing our own fds once.
        unsafe {
            libc::close(self.read_fd);
            libc::close(self.write_fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_makes_the_fd_readable() {
        let c = Cancel::new().unwrap();
        let mut pfd = libc::pollfd {
            fd: c.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        assert_eq!(unsafe { libc::poll(&mut pfd, 1, 0) }, 0);
        c.trigger(Reason::FailFast);
        c.trigger(Reason::Interrupted);
        assert!(c.is_cancelled() && c.is_interrupted());
        // SAFETY: one valid pollfd.
        assert_eq!(unsafe { libc::poll(&mut pfd, 1, 0) }, 1);
    }
}
