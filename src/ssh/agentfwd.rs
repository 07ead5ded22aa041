//! Agent forwarding (`-A`, `ForwardAgent yes`): the remote command can use the local
//! ssh-agent (`git pull`, `ssh` onwards) without a key ever leaving this machine.
//!
//! The bundled libssh2 (1.11.2-dev) sends the `auth-agent-req@openssh.com` request
//! (`libssh2_channel_request_auth_agent`) and accepts the `auth-agent@openssh.com` channels
//! the server then opens, handing each to a callback (`LIBSSH2_CALLBACK_AUTHAGENT`); the ssh2
//! crate binds neither, so this module declares them. The callback runs inside libssh2's
//! packet handling and only records the channel; the command's read loop ([`super::exec`])
//! then [`Forwarder::pump`]s every recorded channel of its session: whole agent requests go
//! to the local agent at `SSH_AUTH_SOCK`, its answers back into the channel. Nothing here
//! waits on the network; the local agent answers within its own short bound.

use libssh2_sys as raw;
use ssh2::Session;
use std::io::{Read, Write};
use std::os::raw::{c_char, c_int, c_void};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::io::EAGAIN;

const LIBSSH2_CALLBACK_AUTHAGENT: c_int = 7;

/// The longest agent message prun relays (OpenSSH's agent allows 256 KiB).
const MAX_MESSAGE: usize = 256 * 1024;

/// How long the local agent may take to answer one request.
const AGENT_WAIT: Duration = Duration::from_secs(5);

unsafe extern "C" {
    fn libssh2_channel_request_auth_agent(channel: *mut raw::LIBSSH2_CHANNEL) -> c_int;
    fn libssh2_session_callback_set2(
        session: *mut raw::LIBSSH2_SESSION,
        cbtype: c_int,
        callback: *const c_void,
    ) -> *const c_void;
}

/// Agent channels the servers opened and no pump has taken yet: (session, channel).
static OPENED: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

/// libssh2's callback for a new `auth-agent@openssh.com` channel: remember it.
unsafe extern "C" fn on_agent_channel(
    session: *mut raw::LIBSSH2_SESSION,
    channel: *mut raw::LIBSSH2_CHANNEL,
    _abstract: *mut *mut c_void,
) {
    if let Ok(mut v) = OPENED.lock() {
        v.push((session as usize, channel as usize));
    }
}

fn raw_session(sess: &Session) -> *mut raw::LIBSSH2_SESSION {
    let guard = sess.raw();
    &*guard as *const raw::LIBSSH2_SESSION as *mut raw::LIBSSH2_SESSION
}

/// One forwarded agent connection.
struct Relay {
    channel: *mut raw::LIBSSH2_CHANNEL,
    /// Bytes of requests from the server not yet complete.
    request: Vec<u8>,
    /// Answers not yet written to the channel.
    answer: Vec<u8>,
    agent: Option<UnixStream>,
    done: bool,
    /// Our EOF is sent and `libssh2_channel_free` has begun (it waits for the server's
    /// close without blocking: EAGAIN until then).
    closing: bool,
}

impl Relay {
    fn new(channel: *mut raw::LIBSSH2_CHANNEL) -> Relay {
        Relay {
            channel,
            request: Vec::new(),
            answer: Vec::new(),
            agent: None,
            done: false,
            closing: false,
        }
    }
}

/// The agent channels of one session, pumped from its command's read loop. A finished
/// channel is closed and freed (a held login runs many commands: their channels must not
/// pile up in the session); when the forwarder is dropped the session stops accepting agent
/// channels, so none is recorded for it afterwards.
pub(crate) struct Forwarder {
    sess: Session,
    sess_ptr: usize,
    socket: PathBuf,
    relays: Vec<Relay>,
    /// Read buffer (on the heap: on the stack its 16 KB were in every exec's stack frame,
    /// where this code is inlined, resident on every fiber's stack; see `ssh::memory`).
    buf: Vec<u8>,
}

// SAFETY: the channel pointers are used only with the session's lock held, like ExecChannel.
unsafe impl Send for Forwarder {}

impl Forwarder {
    pub(crate) fn new(sess: &Session, socket: PathBuf) -> Forwarder {
        Forwarder {
            sess: sess.clone(),
            sess_ptr: raw_session(sess) as usize,
            socket,
            relays: Vec::new(),
            buf: vec![0; 16 * 1024],
        }
    }

    /// Ask for agent forwarding on `channel` (before its exec request) and accept the agent
    /// channels the server opens from now until this is dropped. Non-blocking: EAGAIN comes
    /// back as an error with that code. Once per connection: sshd honours only the first
    /// request of a connection (OpenSSH's `session_auth_agent_req`) and gives every later
    /// command on it the same forwarded socket, so a command on a held login that had it
    /// calls [`Forwarder::accept`] instead.
    pub(crate) fn request(&self, channel: *mut raw::LIBSSH2_CHANNEL) -> Result<(), ssh2::Error> {
        self.accept();
        let _g = self.sess.raw();
        // SAFETY: the session's live channel, under the session lock.
        let rc = unsafe { libssh2_channel_request_auth_agent(channel) };
        match rc {
            0 => Ok(()),
            EAGAIN => Err(ssh2::Error::new(
                ssh2::ErrorCode::Session(EAGAIN),
                "would block",
            )),
            _ => Err(ssh2::Error::new(
                ssh2::ErrorCode::Session(rc),
                "the server refused agent forwarding",
            )),
        }
    }

    /// Accept the agent channels the server opens for this session, until dropped.
    pub(crate) fn accept(&self) {
        let _g = self.sess.raw();
        // SAFETY: the live session, under its lock; the callback is a plain function that
        // only takes a mutex.
        unsafe {
            libssh2_session_callback_set2(
                self.sess_ptr as *mut raw::LIBSSH2_SESSION,
                LIBSSH2_CALLBACK_AUTHAGENT,
                on_agent_channel as *const c_void,
            );
        }
    }

    /// Move what is there: new channels taken on, requests to the agent, answers back.
    /// True when anything moved.
    pub(crate) fn pump(&mut self) -> bool {
        if let Ok(mut v) = OPENED.lock() {
            let me = self.sess_ptr;
            v.retain(|&(s, c)| {
                if s == me {
                    self.relays.push(Relay::new(c as *mut raw::LIBSSH2_CHANNEL));
                    false
                } else {
                    true
                }
            });
        }
        let mut moved = false;
        let buf = &mut self.buf;
        for r in &mut self.relays {
            if r.closing {
                continue;
            }
            // the server's requests
            while !r.done {
                let n = {
                    let _g = self.sess.raw();
                    // SAFETY: a live channel of this session, under its lock.
                    unsafe {
                        raw::libssh2_channel_read_ex(
                            r.channel,
                            0,
                            buf.as_mut_ptr() as *mut c_char,
                            buf.len(),
                        )
                    }
                };
                if n > 0 {
                    r.request.extend_from_slice(&buf[..n as usize]);
                    moved = true;
                } else if n == EAGAIN as isize {
                    break;
                } else if n == 0 {
                    let _g = self.sess.raw();
                    // SAFETY: as above.
                    if unsafe { raw::libssh2_channel_eof(r.channel) } == 1 {
                        r.done = true;
                    }
                    break;
                } else {
                    r.done = true;
                }
                if r.request.len() > MAX_MESSAGE + 4 {
                    r.done = true;
                }
            }
            // each whole request: to the agent, its answer queued
            while r.request.len() >= 4 {
                let len =
                    u32::from_be_bytes([r.request[0], r.request[1], r.request[2], r.request[3]])
                        as usize;
                if len > MAX_MESSAGE {
                    r.done = true;
                    break;
                }
                if r.request.len() < 4 + len {
                    break;
                }
                let msg: Vec<u8> = r.request.drain(..4 + len).collect();
                let answer = ask_agent(&mut r.agent, &self.socket, &msg)
                    // SSH_AGENT_FAILURE
                    .unwrap_or_else(|| vec![0, 0, 0, 1, 5]);
                r.answer.extend_from_slice(&answer);
                moved = true;
            }
            // answers back to the server
            while !r.answer.is_empty() {
                let n = {
                    let _g = self.sess.raw();
                    // SAFETY: as above; the buffer outlives the call.
                    unsafe {
                        raw::libssh2_channel_write_ex(
                            r.channel,
                            0,
                            r.answer.as_ptr() as *const c_char,
                            r.answer.len(),
                        )
                    }
                };
                if n > 0 {
                    r.answer.drain(..n as usize);
                    moved = true;
                } else {
                    if n != EAGAIN as isize {
                        r.answer.clear();
                        r.done = true;
                    }
                    break;
                }
            }
            if r.done && r.answer.is_empty() {
                let _g = self.sess.raw();
                // SAFETY: as above. Best effort: an EOF that cannot be sent now is implied
                // by the close that freeing sends.
                unsafe { raw::libssh2_channel_send_eof(r.channel) };
                r.agent = None;
                r.closing = true;
            }
        }
        // free the finished channels whose close the server has answered
        let sess = &self.sess;
        self.relays
            .retain(|r| !(r.closing && free_channel(sess, r.channel)));
        moved
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        // no agent channels for this session any more: the server's next ones are refused
        {
            let _g = self.sess.raw();
            // SAFETY: the live session (self.sess keeps it), under its lock.
            unsafe {
                libssh2_session_callback_set2(
                    self.sess_ptr as *mut raw::LIBSSH2_SESSION,
                    LIBSSH2_CALLBACK_AUTHAGENT,
                    std::ptr::null(),
                );
            }
        }
        // channels opened but never taken, and those still open: freed when the server has
        // closed them already, else left with the session (it frees them when it ends)
        let mut left: Vec<*mut raw::LIBSSH2_CHANNEL> =
            self.relays.iter().map(|r| r.channel).collect();
        if let Ok(mut v) = OPENED.lock() {
            let me = self.sess_ptr;
            v.retain(|&(s, c)| {
                if s == me {
                    left.push(c as *mut raw::LIBSSH2_CHANNEL);
                    false
                } else {
                    true
                }
            });
        }
        for c in left {
            free_channel(&self.sess, c);
        }
    }
}

/// Close and free an agent channel of `sess` without waiting: true when it is freed (the
/// pointer is then dead), false while the server's close has not arrived (EAGAIN; try
/// again later, or leave it to the session).
fn free_channel(sess: &Session, channel: *mut raw::LIBSSH2_CHANNEL) -> bool {
    let _g = sess.raw();
    // SAFETY: a live channel of this session, under its lock; after a return other than
    // EAGAIN libssh2 has freed it and the caller drops the pointer.
    unsafe { raw::libssh2_channel_free(channel) != EAGAIN }
}

/// One request to the local agent and its whole answer; `None` when the agent cannot be
/// reached or does not answer in time (the server then gets SSH_AGENT_FAILURE).
fn ask_agent(conn: &mut Option<UnixStream>, socket: &PathBuf, msg: &[u8]) -> Option<Vec<u8>> {
    if conn.is_none() {
        let s = UnixStream::connect(socket).ok()?;
        s.set_read_timeout(Some(AGENT_WAIT)).ok()?;
        s.set_write_timeout(Some(AGENT_WAIT)).ok()?;
        *conn = Some(s);
    }
    let s = conn.as_mut()?;
    let r = (|| -> std::io::Result<Vec<u8>> {
        s.write_all(msg)?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len)?;
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_MESSAGE {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
        let mut body = vec![0u8; n];
        s.read_exact(&mut body)?;
        let mut out = len.to_vec();
        out.extend_from_slice(&body);
        Ok(out)
    })();
    match r {
        Ok(a) => Some(a),
        Err(_) => {
            *conn = None;
            None
        }
    }
}
