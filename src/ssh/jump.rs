//! Jump hosts (bastions): one login per bastion for the whole run, and one `direct-tcpip`
//! channel through it per target.
//!
//! libssh2 runs a session over a socket, so each target gets one end of a Unix socket pair;
//! a pump thread per bastion connection moves bytes between the other ends and the channels
//! of that connection, non-blocking, waiting in poll(2) on the bastion's socket, every local
//! socket and a wake-up pipe. A target's own handshake, auth and command then run exactly as
//! for a direct connection, end to end encrypted to the target.
//!
//! OpenSSH's `MaxSessions` does not count `direct-tcpip` channels (only shells, commands and
//! subsystems), so one connection carries many targets; prun still caps channels per
//! connection at [`CHANNELS_PER_CONNECTION`], and when a bastion refuses a channel on a
//! connection that already carries some, that connection is treated as full and the next
//! target gets a new connection (one more login). A bastion behind another (a chain `a,b`)
//! is logged in to through a channel of the previous hop's connection, like any host.

use super::Ctx;
use super::fail::{Fail, fail};
use super::io::{
    EAGAIN, IdlePasses, NonBlockingOnDrop, Patience, RecvError, blocked_events, poll_fds,
    recv_or_cancel,
};
use super::login::{LoginInfo, secure};
use super::transport::{Liveness, Transport};
use crate::event::{FailureKind, Phase};
use crate::target::Target;
use crossbeam_channel::{Receiver, Sender};
use ssh2::{Channel, Session};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// At most this many targets share one bastion connection.
pub const CHANNELS_PER_CONNECTION: usize = 100;
const BUF: usize = 32 * 1024;

/// Every bastion of the run, by `user@address:port`.
#[derive(Default)]
pub struct JumpPool {
    bastions: Mutex<HashMap<String, Arc<Bastion>>>,
}

struct Bastion {
    /// Held while logging in, so hosts arriving together share one new connection.
    conns: Mutex<Vec<Arc<Conn>>>,
    /// A login failure, kept for the run: the hosts behind it fail at once with it instead of
    /// each trying (and timing out) again.
    failed: Mutex<Option<(FailureKind, String)>>,
}

/// One authenticated connection to a bastion and its pump thread.
struct Conn {
    requests: Sender<OpenRequest>,
    wake: OwnedFd,
    /// Channels open or being opened on it.
    active: AtomicUsize,
    /// How many it may carry (lowered when the bastion refuses one).
    cap: AtomicUsize,
    dead: AtomicBool,
    stop: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// What logging in to the bastion noted (an unverified or changed host key, a key
    /// added to known_hosts), with the hops before it: passed on to every host behind it.
    notes: Vec<String>,
}

impl Conn {
    fn wake(&self) {
        // SAFETY: writing one byte to a pipe we own; a full pipe already means "wake up".
        unsafe { libc::write(self.wake.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
    }
}

struct OpenRequest {
    host: String,
    port: u16,
    reply: Sender<Result<(UnixStream, Liveness), OpenError>>,
}

/// Why the pump could not give a target its channel.
#[derive(Debug, thiserror::Error)]
enum OpenError {
    /// The bastion refused one more channel on a connection that carries others: a
    /// per-connection limit, so the target tries another connection.
    #[error("the connection carries all the channels the jump host allows")]
    Full,
    #[error("the jump host refused the channel ({0})")]
    Refused(String),
    #[error("connection to the jump host was lost")]
    Lost,
    #[error("{0}")]
    Local(String),
}

impl JumpPool {
    /// A stream to `target` through `bastion`: the local end of a forwarded channel. Logs in
    /// to the bastion first when no connection to it has room.
    pub(crate) fn open(
        &self,
        bastion: &Arc<Target>,
        target: &Target,
        deadline: Instant,
        ctx: &Ctx<'_>,
    ) -> Result<(UnixStream, Liveness, Vec<String>), Fail> {
        let key = pool_key(bastion);
        let b = self
            .bastions
            .lock()
            .unwrap()
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Bastion {
                    conns: Mutex::new(Vec::new()),
                    failed: Mutex::new(None),
                })
            })
            .clone();
        let via = format!("jump host {}", bastion.name);
        for _ in 0..3 {
            let conn = {
                // held while logging in to the bastion: other hosts for it wait for that login
                let mut conns = super::fiber::lock(&b.conns);
                if let Some((kind, msg)) = b.failed.lock().unwrap().clone() {
                    return Err(fail(Phase::Connect, kind, msg));
                }
                conns.retain(|c| !c.dead.load(Ordering::Relaxed));
                let free = conns.iter().find(|c| {
                    let n = c.active.load(Ordering::Relaxed);
                    n < c.cap.load(Ordering::Relaxed)
                });
                match free {
                    Some(c) => {
                        c.active.fetch_add(1, Ordering::Relaxed);
                        c.clone()
                    }
                    None => {
                        let c = login(self, bastion, ctx, &via).inspect_err(|f| {
                            *b.failed.lock().unwrap() =
                                Some((f.failure.kind, f.failure.message.clone()));
                        })?;
                        c.active.fetch_add(1, Ordering::Relaxed);
                        conns.push(c.clone());
                        c
                    }
                }
            };
            let (tx, rx) = crossbeam_channel::bounded(1);
            let req = OpenRequest {
                host: target.address.clone(),
                port: target.port,
                reply: tx,
            };
            if conn.requests.send(req).is_err() {
                conn.dead.store(true, Ordering::Relaxed);
                continue;
            }
            conn.wake();
            // wait for the channel, watching the deadline and the cancel
            let reply = match recv_or_cancel(&rx, deadline, ctx.cancel) {
                Ok(r) => r,
                Err(RecvError::TimedOut) => {
                    return Err(fail(
                        Phase::Connect,
                        FailureKind::Timeout,
                        format!("timed out opening a channel through {via} (--connect-timeout)"),
                    ));
                }
                Err(RecvError::Cancelled) => {
                    return Err(fail(Phase::Connect, FailureKind::Cancelled, "cancelled"));
                }
                Err(RecvError::Gone) => Err(OpenError::Lost),
            };
            match reply {
                Ok((sock, alive)) => return Ok((sock, alive, conn.notes.clone())),
                Err(OpenError::Full) => continue, // try another connection
                Err(msg) => {
                    return Err(fail(
                        Phase::Connect,
                        FailureKind::Unreachable,
                        format!(
                            "{via} cannot reach {}:{}: {msg}",
                            target.address, target.port
                        ),
                    ));
                }
            }
        }
        Err(fail(
            Phase::Connect,
            FailureKind::Unreachable,
            format!("{via}: no connection to it would open a channel"),
        ))
    }
}

/// `user@address:port`, preceded by the hops it is reached through.
fn pool_key(b: &Target) -> String {
    let own = format!("{}@{}:{}", b.user, b.address, b.port);
    match &b.jump {
        Some(prev) => format!("{},{own}", pool_key(prev)),
        None => own,
    }
}

impl Drop for JumpPool {
    fn drop(&mut self) {
        let bastions = std::mem::take(&mut *self.bastions.lock().unwrap());
        for b in bastions.values() {
            for c in b.conns.lock().unwrap().iter() {
                c.stop.store(true, Ordering::Relaxed);
                c.wake();
                if let Some(t) = c.thread.lock().unwrap().take() {
                    let _ = t.join();
                }
            }
        }
    }
}

/// Log in to the bastion (connect, handshake, host key, auth — as for any host) and start
/// the connection's pump thread.
fn login(pool: &JumpPool, bastion: &Target, ctx: &Ctx<'_>, via: &str) -> Result<Arc<Conn>, Fail> {
    let patience = Patience::answering(Instant::now(), bastion.connect_timeout);
    let deadline = patience.deadline();
    let named = |f: Fail| {
        let mut f = f;
        f.failure.message = format!("{via}: {}", f.failure.message);
        f
    };
    // a bastion behind another (ProxyJump a,b) is reached through a channel of the previous
    // hop's connection, like any host
    let mut notes = Vec::new();
    let transport = match &bastion.jump {
        Some(prev) => {
            let (sock, alive, before) = pool.open(prev, bastion, deadline, ctx)?;
            notes = before;
            Transport::Forwarded(sock, alive)
        }
        None => super::transport::open_direct(bastion, deadline, ctx.cancel).map_err(named)?,
    };
    let mut info = LoginInfo::default();
    let (sess, fd, guard) =
        secure(transport, bastion, ctx, patience, &mut |_| {}, &mut info).map_err(named)?;
    notes.extend(info.notes.iter().map(|n| format!("{via}: {n}")));
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds on success; we own them from here.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(fail(
            Phase::Connect,
            FailureKind::Io,
            format!(
                "{via}: cannot create a pipe: {}",
                io::Error::last_os_error()
            ),
        ));
    }
    // SAFETY: fresh fds from pipe2, owned once each.
    let (wake_r, wake_w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let (tx, rx) = crossbeam_channel::unbounded();
    let conn = Arc::new(Conn {
        requests: tx,
        wake: wake_w,
        active: AtomicUsize::new(0),
        cap: AtomicUsize::new(CHANNELS_PER_CONNECTION),
        dead: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        thread: Mutex::new(None),
        notes,
    });
    let c = conn.clone();
    let thread = std::thread::Builder::new()
        .name("prun-jump".into())
        .spawn(move || Pump::new(sess, fd, guard, rx, wake_r, c).run())
        .map_err(|e| {
            fail(
                Phase::Connect,
                FailureKind::Io,
                format!("{via}: cannot start a thread: {e}"),
            )
        })?;
    *conn.thread.lock().unwrap() = Some(thread);
    Ok(conn)
}

/// One forwarded channel and its local socket.
struct Fwd {
    ch: Channel,
    local: UnixStream,
    alive: Liveness,
    /// local → bastion bytes not yet written to the channel
    up: Vec<u8>,
    up_off: usize,
    /// bastion → local bytes not yet written to the socket
    down: Vec<u8>,
    down_off: usize,
    local_eof: bool,
    eof_sent: bool,
    remote_eof: bool,
    /// Finished: close the channel (may take several passes non-blocking), then drop it.
    closing: bool,
}

struct Pump {
    sess: Session,
    fd: RawFd,
    _guard: NonBlockingOnDrop,
    requests: Receiver<OpenRequest>,
    wake: OwnedFd,
    conn: Arc<Conn>,
    queue: VecDeque<OpenRequest>,
    fwds: Vec<Fwd>,
    buf: Vec<u8>,
    broken: bool,
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

impl Pump {
    fn new(
        sess: Session,
        fd: RawFd,
        guard: NonBlockingOnDrop,
        requests: Receiver<OpenRequest>,
        wake: OwnedFd,
        conn: Arc<Conn>,
    ) -> Pump {
        Pump {
            sess,
            fd,
            _guard: guard,
            requests,
            wake,
            conn,
            queue: VecDeque::new(),
            fwds: Vec::new(),
            buf: vec![0; BUF],
            broken: false,
        }
    }

    fn run(mut self) {
        let mut idle = IdlePasses::default();
        loop {
            if self.conn.stop.load(Ordering::Relaxed) || self.broken {
                break;
            }
            let mut progress = self.take_requests();
            progress |= self.open_next();
            let mut i = 0;
            while i < self.fwds.len() {
                progress |= self.step(i);
                let f = &mut self.fwds[i];
                if f.closing {
                    match f.ch.close() {
                        Err(e) if e.code() == ssh2::ErrorCode::Session(EAGAIN) => {
                            i += 1;
                            continue;
                        }
                        _ => {}
                    }
                    self.fwds.swap_remove(i);
                    self.conn.active.fetch_sub(1, Ordering::Relaxed);
                    progress = true;
                    continue;
                }
                i += 1;
            }
            // see IdlePasses: one channel's read can queue another's data
            if !idle.wait_now(progress) {
                continue;
            }
            if !self.wait() {
                break; // the bastion connection is gone
            }
        }
        self.conn.dead.store(true, Ordering::Relaxed);
        for req in self.queue.drain(..) {
            let _ = req.reply.send(Err(OpenError::Lost));
        }
        while let Ok(req) = self.requests.try_recv() {
            let _ = req.reply.send(Err(OpenError::Lost));
        }
        for mut f in self.fwds.drain(..) {
            let _ = f.ch.close();
        }
        let _ = self.sess.disconnect(None, "done", None);
    }

    fn take_requests(&mut self) -> bool {
        let mut any = false;
        while let Ok(r) = self.requests.try_recv() {
            self.queue.push_back(r);
            any = true;
        }
        any
    }

    /// Open the first queued channel (libssh2 opens one at a time per session).
    fn open_next(&mut self) -> bool {
        let Some(req) = self.queue.front() else {
            return false;
        };
        match self.sess.channel_direct_tcpip(&req.host, req.port, None) {
            Ok(ch) => {
                let req = self.queue.pop_front().unwrap();
                match UnixStream::pair() {
                    Ok((mine, theirs)) => {
                        let _ = mine.set_nonblocking(true);
                        let alive = Liveness::new();
                        if req.reply.send(Ok((theirs, alive.clone()))).is_ok() {
                            self.fwds.push(Fwd {
                                ch,
                                local: mine,
                                alive,
                                up: Vec::new(),
                                up_off: 0,
                                down: Vec::new(),
                                down_off: 0,
                                local_eof: false,
                                eof_sent: false,
                                remote_eof: false,
                                closing: false,
                            });
                            return true;
                        }
                        // the host gave up waiting: close the channel again
                        let mut ch = ch;
                        let _ = ch.close();
                    }
                    Err(e) => {
                        let _ = req.reply.send(Err(OpenError::Local(format!(
                            "cannot create a socket pair: {e}"
                        ))));
                    }
                }
                self.conn.active.fetch_sub(1, Ordering::Relaxed);
                true
            }
            Err(e) if e.code() == ssh2::ErrorCode::Session(EAGAIN) => false,
            Err(e) if matches!(e.code(), ssh2::ErrorCode::Session(-7 | -13 | -43)) => {
                // the socket to the bastion failed: the connection is gone
                self.broken = true;
                true
            }
            Err(e) => {
                let req = self.queue.pop_front().unwrap();
                self.conn.active.fetch_sub(1, Ordering::Relaxed);
                let carried = self.fwds.len();
                let msg = if e.code() == ssh2::ErrorCode::Session(-21) && carried > 0 {
                    // refused while carrying others: a per-connection limit; use another one
                    self.conn.cap.store(carried, Ordering::Relaxed);
                    OpenError::Full
                } else {
                    OpenError::Refused(e.message().to_string())
                };
                let _ = req.reply.send(Err(msg));
                true
            }
        }
    }

    /// Move bytes both ways for forward `i`; true when anything moved or changed.
    fn step(&mut self, i: usize) -> bool {
        let f = &mut self.fwds[i];
        if f.closing {
            return false;
        }
        let mut progress = false;
        // local → channel
        if f.up_off == f.up.len() && !f.local_eof {
            f.up.clear();
            f.up_off = 0;
            match f.local.read(&mut self.buf) {
                Ok(0) => {
                    f.local_eof = true;
                    progress = true;
                }
                Ok(n) => {
                    f.up.extend_from_slice(&self.buf[..n]);
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => {
                    f.closing = true;
                    return true;
                }
            }
        }
        while f.up_off < f.up.len() {
            match f.ch.write(&f.up[f.up_off..]) {
                Ok(0) => break,
                Ok(n) => {
                    f.up_off += n;
                    progress = true;
                }
                Err(e) if would_block(&e) => break,
                Err(_) => {
                    f.closing = true;
                    return true;
                }
            }
        }
        if f.local_eof && f.up_off == f.up.len() && !f.eof_sent {
            match f.ch.send_eof() {
                Ok(()) => {
                    f.eof_sent = true;
                    progress = true;
                }
                Err(e) if e.code() == ssh2::ErrorCode::Session(EAGAIN) => {}
                Err(_) => f.eof_sent = true,
            }
        }
        // channel → local
        if f.down_off == f.down.len() && !f.remote_eof {
            f.down.clear();
            f.down_off = 0;
            match f.ch.read(&mut self.buf) {
                Ok(0) => {
                    if f.ch.eof() {
                        f.remote_eof = true;
                        let _ = f.local.shutdown(std::net::Shutdown::Write);
                        progress = true;
                    }
                }
                Ok(n) => {
                    f.down.extend_from_slice(&self.buf[..n]);
                    f.alive.touch();
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => {
                    f.closing = true;
                    return true;
                }
            }
        }
        while f.down_off < f.down.len() {
            match f.local.write(&f.down[f.down_off..]) {
                Ok(0) => break,
                Ok(n) => {
                    f.down_off += n;
                    progress = true;
                }
                Err(e) if would_block(&e) => break,
                Err(_) => {
                    // the host's session is gone
                    f.closing = true;
                    return true;
                }
            }
        }
        // the target's side is closed and everything it sent was delivered
        if f.remote_eof && f.down_off == f.down.len() {
            f.closing = true;
            progress = true;
        }
        progress
    }

    /// Wait for the bastion socket, a local socket or the wake pipe (at most 1 s: libssh2 is
    /// called again after that in any case). False when the bastion connection is gone.
    fn wait(&mut self) -> bool {
        let mut pfds = Vec::with_capacity(self.fwds.len() + 2);
        pfds.push(libc::pollfd {
            fd: self.fd,
            events: blocked_events(&self.sess),
            revents: 0,
        });
        pfds.push(libc::pollfd {
            fd: self.wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        for f in &self.fwds {
            let mut ev = 0;
            if f.up_off == f.up.len() && !f.local_eof {
                ev |= libc::POLLIN;
            }
            if f.down_off < f.down.len() {
                ev |= libc::POLLOUT;
            }
            pfds.push(libc::pollfd {
                fd: f.local.as_raw_fd(),
                events: ev,
                revents: 0,
            });
        }
        let timeout = Duration::from_millis(if self.queue.is_empty() { 1000 } else { 5 });
        let n = poll_fds(&mut pfds, timeout).unwrap_or(0);
        if n > 0 {
            if pfds[1].revents != 0 {
                let mut sink = [0u8; 64];
                // SAFETY: reading into a local buffer from our non-blocking pipe.
                while unsafe { libc::read(self.wake.as_raw_fd(), sink.as_mut_ptr().cast(), 64) } > 0
                {
                }
            }
            if pfds[0].revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                return false;
            }
        }
        true
    }
}
