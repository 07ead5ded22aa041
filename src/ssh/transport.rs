//! The connected byte stream a session runs over: a TCP connection (name resolved on a
//! helper thread, connect non-blocking, both bounded by the deadline and the cancel), one
//! end of a socket pair that a bastion's connection pumps to a forwarded channel, or one end
//! of a socket pair whose other end is a `ProxyCommand`'s stdin and stdout.

use super::fail::{Fail, cancelled, fail};
use super::io::{RecvError, WaitError, poll_or_cancel, recv_or_cancel};
use crate::cancel::Cancel;
use crate::event::{FailureKind, Phase};
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The connected byte stream a session runs over.
pub(crate) enum Transport {
    Tcp(TcpStream),
    /// One end of a socket pair whose other end a bastion's connection pumps to and from a
    /// `direct-tcpip` channel (see [`super::jump`]).
    Forwarded(UnixStream, Liveness),
    /// A `ProxyCommand`'s end of the conversation: the process lives as long as the stream.
    Proxied(ProxyStream),
}

/// A socket whose far end is a `ProxyCommand` (its stdin and stdout). Dropping it stops the
/// command's process group (SIGTERM, SIGKILL) and reaps it.
pub(crate) struct ProxyStream {
    sock: UnixStream,
    pub(crate) child: Arc<ProxyChild>,
}

impl AsRawFd for ProxyStream {
    fn as_raw_fd(&self) -> std::os::unix::io::RawFd {
        self.sock.as_raw_fd()
    }
}

/// The running `ProxyCommand`: the process and the read end of its stderr.
pub(crate) struct ProxyChild {
    child: std::sync::Mutex<std::process::Child>,
    stderr: std::sync::Mutex<Option<std::process::ChildStderr>>,
    command: String,
}

impl ProxyChild {
    /// How the command did, for a failure message: its exit status if it has ended, and
    /// the last of what it wrote on stderr. Not inlined, and its buffer on the heap: only
    /// failures call it, and inlined into the login path it made every fiber's stack a page
    /// deeper.
    #[cold]
    #[inline(never)]
    pub(crate) fn describe(&self) -> String {
        // a command that fails usually exits right after the connection drops
        let mut status = None;
        for _ in 0..20 {
            status = self
                .child
                .lock()
                .ok()
                .and_then(|mut c| c.try_wait().ok().flatten());
            if status.is_some() {
                break;
            }
            let _ = poll_or_cancel(None, Duration::from_millis(5), None);
        }
        let mut err = Vec::new();
        if let Ok(mut guard) = self.stderr.lock()
            && let Some(pipe) = guard.as_mut()
        {
            use std::io::Read;
            let mut buf = vec![0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                err.extend_from_slice(&buf[..n]);
                if err.len() > 64 * 1024 {
                    err.drain(..err.len() - 4096);
                }
            }
        }
        let text = String::from_utf8_lossy(&err);
        let text = text.trim();
        let tail: String = {
            let t: Vec<char> = text.chars().collect();
            t[t.len().saturating_sub(300)..].iter().collect()
        };
        let mut out = format!("ProxyCommand '{}'", self.command);
        match status {
            Some(st) => match st.code() {
                Some(c) => out.push_str(&format!(" exited with status {c}")),
                None => out.push_str(&format!(" was killed ({st})")),
            },
            None => out.push_str(" is still running"),
        }
        if !tail.is_empty() {
            out.push_str(&format!("; it said: {}", tail.replace('\n', " / ")));
        }
        out
    }
}

impl Drop for ProxyChild {
    fn drop(&mut self) {
        let Ok(child) = self.child.get_mut() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            let pgid = child.id() as libc::pid_t;
            // SAFETY: signalling the process group made for this command.
            unsafe { libc::kill(-pgid, libc::SIGTERM) };
            for _ in 0..50 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            // SAFETY: as above.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
        }
    }
}

/// Start `command` (by `/bin/sh -c exec …`, as ssh does) with one end of a socket pair as
/// its stdin and stdout, stderr piped (kept for failure messages), in its own process group.
pub(crate) fn spawn_proxy(command: &str) -> Result<ProxyStream, Fail> {
    use std::os::unix::process::CommandExt;
    let (ours, theirs) = UnixStream::pair().map_err(|e| {
        fail(
            Phase::Connect,
            FailureKind::Io,
            format!("cannot make a socket pair for ProxyCommand: {e}"),
        )
    })?;
    let theirs2 = theirs.try_clone().map_err(|e| {
        fail(
            Phase::Connect,
            FailureKind::Io,
            format!("cannot make a socket pair for ProxyCommand: {e}"),
        )
    })?;
    let mut child = crate::secret::without_secrets(&mut std::process::Command::new("/bin/sh"))
        .arg("-c")
        .arg(format!("exec {command}"))
        .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
            theirs,
        )))
        .stdout(std::process::Stdio::from(std::os::fd::OwnedFd::from(
            theirs2,
        )))
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            fail(
                Phase::Connect,
                FailureKind::Unreachable,
                format!("cannot start ProxyCommand '{command}': {e}"),
            )
            .permanent()
        })?;
    let stderr = child.stderr.take();
    if let Some(e) = &stderr {
        // read without waiting when a failure is described
        // SAFETY: fcntl on a descriptor we own.
        unsafe {
            let fd = e.as_raw_fd();
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
    Ok(ProxyStream {
        sock: ours,
        child: Arc::new(ProxyChild {
            child: std::sync::Mutex::new(child),
            stderr: std::sync::Mutex::new(stderr),
            command: command.to_string(),
        }),
    })
}

/// The connection to `target` when it has no bastion: its `ProxyCommand`, else TCP.
pub(crate) fn open_direct(
    target: &crate::target::Target,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<Transport, Fail> {
    match &target.proxy_command {
        Some(cmd) => spawn_proxy(cmd).map(Transport::Proxied),
        None => connect(&target.address, target.port, deadline, cancel).map(Transport::Tcp),
    }
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
        Ok(_) => match recv_or_cancel(&rx, deadline, cancel) {
            Ok(r) => r,
            Err(RecvError::Cancelled) => return Err(cancelled(Phase::Connect, cancel)),
            Err(_) => {
                return Err(fail(
                    Phase::Connect,
                    FailureKind::Timeout,
                    format!("timed out resolving '{address}' (--connect-timeout)"),
                ));
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
        .permanent()
    })
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
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let fd = (sock.as_raw_fd(), libc::POLLOUT);
        match poll_or_cancel(Some(fd), left.min(Duration::from_secs(1)), Some(cancel)) {
            Ok(false) => {}
            Ok(true) => {
                return match sock.take_error()? {
                    Some(e) => Err(e),
                    None => Ok(Some(sock.into())),
                };
            }
            Err(WaitError::Cancelled) => return Ok(None),
            Err(WaitError::Io(e)) => return Err(e),
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

/// When a forwarded channel last delivered bytes from the far side. A session over a socket
/// pair cannot ask TCP when data last arrived (as direct sessions do for keepalives), so the
/// pump records it here and the session's keepalive check reads it.
#[derive(Clone, Debug)]
pub struct Liveness(Arc<std::sync::atomic::AtomicU64>);

fn now_ms() -> u64 {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl Liveness {
    pub(crate) fn new() -> Liveness {
        Liveness(Arc::new(std::sync::atomic::AtomicU64::new(now_ms())))
    }
    pub(crate) fn touch(&self) {
        self.0.store(now_ms(), Ordering::Relaxed);
    }
    /// Milliseconds since the far side last sent anything.
    pub fn idle_ms(&self) -> u32 {
        now_ms().saturating_sub(self.0.load(Ordering::Relaxed)) as u32
    }
}
