//! `--local`: one host's command run on this machine (`sh -c`, pdsh's and clush's `-R exec`)
//! instead of over SSH, with the host's substitutions already made and `PRUN_HOST` & co. in
//! its environment. Output arrives as the same chunks a remote command's does, and the
//! result has the same statuses: exit code, signal, `--timeout`, Ctrl-C.
//!
//! Its waits are the ssh layer's ([`crate::ssh::io::poll_or_cancel`]) so that the event
//! engine's fibers suspend instead of blocking: the child's pipes (and a pidfd for its exit)
//! are watched by one `polling` poller whose own descriptor is what the wait is on. The child
//! runs in its own process group, which a timeout or cancel stops (SIGTERM, then SIGKILL).
//! Never prints.

use crate::cancel::Cancel;
use crate::event::{Failure, FailureKind, HostResult, Phase, Status, Stream};
use crate::ssh::io::{WaitError, poll_or_cancel};
use crate::target::{Settings, StdinData, Target};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a stopped command gets to exit after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(1);

const OUT: usize = 0;
const ERR: usize = 1;
const IN: usize = 2;
const EXITED: usize = 3;

/// Run `command` for `target` on this machine; output chunks go to `on_output`.
#[inline(never)] // its buffers and result stay off the lane's frame, under every ssh wait (crate::ssh::fiber)
pub fn run(
    target: &Target,
    command: &str,
    host_env: &[(String, String)],
    settings: &Settings,
    cancel: &Cancel,
    on_output: &mut dyn FnMut(Stream, &[u8]),
) -> Box<HostResult> {
    let start = Instant::now();
    let mut result = HostResult::boxed(Status::Error);
    result.attempts = 1;
    let mut cmd = Command::new("/bin/sh");
    crate::secret::without_secrets(&mut cmd)
        .arg("-c")
        .arg(command)
        .stdin(if settings.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in target.env.as_ref().unwrap_or(&settings.env) {
        cmd.env(k, v);
    }
    cmd.envs(host_env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &settings.cwd {
        cmd.current_dir(dir);
    }
    let child = cmd.spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            let what = match &settings.cwd {
                Some(d) if e.kind() == ErrorKind::NotFound => format!(" in --cwd {d}"),
                _ => String::new(),
            };
            return fail(
                result,
                start,
                Phase::Exec,
                FailureKind::Exec,
                format!("cannot start the local command{what}: {e}"),
            );
        }
    };
    result.timings.set(Phase::Exec, start.elapsed());
    let exec_done = Instant::now();
    let deadline = settings.command_timeout.map(|t| exec_done + t);
    let outcome = pump(
        &mut child,
        settings.stdin.as_deref(),
        deadline,
        cancel,
        &mut result,
        exec_done,
        on_output,
    );
    let read_done = Instant::now();
    result
        .timings
        .set(Phase::Read, read_done.duration_since(exec_done));
    match outcome {
        Ok(status) => {
            if let Some(code) = status.code() {
                result.exit_code = Some(code);
                result.status = if code == 0 {
                    Status::Ok
                } else {
                    Status::Failed
                };
            } else if let Some(sig) = status.signal() {
                result.status = Status::Signal;
                result.signal = Some(signal_name(sig));
            }
            result.timings.set(Phase::Close, read_done.elapsed());
        }
        Err(stop) => {
            let note = stop_group(&mut child);
            result.notes.push(note);
            let (status, message) = match stop {
                Stop::Timeout => (
                    Status::Timeout,
                    format!(
                        "local command did not finish within --timeout {}",
                        humantime::format_duration(settings.command_timeout.unwrap_or_default())
                    ),
                ),
                Stop::Cancelled => (
                    Status::Cancelled,
                    format!("stopped: {}", crate::ssh::fail::cancel_reason(cancel)),
                ),
                Stop::Io(e) => (
                    Status::Error,
                    format!("reading the local command's output: {e}"),
                ),
            };
            result.status = status;
            result.failure = Some(Failure {
                phase: Phase::Read,
                kind: match status {
                    Status::Timeout => FailureKind::Timeout,
                    Status::Cancelled => FailureKind::Cancelled,
                    _ => FailureKind::Io,
                },
                message,
            });
        }
    }
    result.timings.total = start.elapsed();
    result
}

fn fail(
    mut result: Box<HostResult>,
    start: Instant,
    phase: Phase,
    kind: FailureKind,
    message: String,
) -> Box<HostResult> {
    result.failure = Some(Failure {
        phase,
        kind,
        message,
    });
    result.timings.set(phase, start.elapsed());
    result.timings.total = start.elapsed();
    result
}

enum Stop {
    Timeout,
    Cancelled,
    Io(std::io::Error),
}

fn nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

/// A pidfd for the child (readable once it has exited), where the kernel has them.
fn pidfd(child: &Child) -> Option<OwnedFd> {
    // SAFETY: pidfd_open on our own child's pid; the result is a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    // SAFETY: a descriptor just returned to us, owned from here on.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Move output out and stdin in until both output pipes end and the child has exited.
fn pump(
    child: &mut Child,
    stdin: Option<&StdinData>,
    deadline: Option<Instant>,
    cancel: &Cancel,
    result: &mut HostResult,
    exec_done: Instant,
    on_output: &mut dyn FnMut(Stream, &[u8]),
) -> Result<std::process::ExitStatus, Stop> {
    let poller = polling::Poller::new().map_err(Stop::Io)?;
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let mut input = child.stdin.take();
    let exit_fd = pidfd(child);
    let level = polling::PollMode::Level;
    // SAFETY (each add): the descriptors stay open while registered; each is deleted from
    // the poller before it is closed (or the poller is dropped first).
    unsafe {
        if let Some(o) = &out {
            nonblocking(o.as_raw_fd());
            poller
                .add_with_mode(o.as_raw_fd(), polling::Event::readable(OUT), level)
                .map_err(Stop::Io)?;
        }
        if let Some(e) = &err {
            nonblocking(e.as_raw_fd());
            poller
                .add_with_mode(e.as_raw_fd(), polling::Event::readable(ERR), level)
                .map_err(Stop::Io)?;
        }
        if let Some(i) = &input {
            nonblocking(i.as_raw_fd());
            poller
                .add_with_mode(i.as_raw_fd(), polling::Event::writable(IN), level)
                .map_err(Stop::Io)?;
        }
        if let Some(p) = &exit_fd {
            poller
                .add_with_mode(p.as_raw_fd(), polling::Event::readable(EXITED), level)
                .map_err(Stop::Io)?;
        }
    }
    let mut buf = vec![0u8; 32 * 1024];
    let mut stdin_buf = vec![0u8; 32 * 1024];
    let mut stdin_pos = 0u64;
    let mut first_byte = false;
    let mut emit = |stream: Stream, d: &[u8]| {
        if !first_byte {
            first_byte = true;
            result.timings.set(Phase::FirstByte, exec_done.elapsed());
        }
        match stream {
            Stream::Stdout => result.bytes_stdout += d.len() as u64,
            Stream::Stderr => result.bytes_stderr += d.len() as u64,
        }
        on_output(stream, d)
    };
    let mut events = polling::Events::new();
    let mut status = None;
    loop {
        if out.is_none() && err.is_none() {
            if status.is_none() {
                status = child.try_wait().map_err(Stop::Io)?;
            }
            if let Some(s) = status {
                return Ok(s);
            }
        }
        if cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(Stop::Timeout);
        }
        // without a pidfd, an exited child is looked for every 10 ms once its pipes ended
        let mut wait = deadline.map_or(Duration::from_secs(3600), |d| d - now);
        if exit_fd.is_none() && out.is_none() && err.is_none() {
            wait = wait.min(Duration::from_millis(10));
        }
        match poll_or_cancel(Some((poller.as_raw_fd(), libc::POLLIN)), wait, Some(cancel)) {
            Ok(_) => {}
            Err(WaitError::Cancelled) => return Err(Stop::Cancelled),
            Err(WaitError::Io(e)) => return Err(Stop::Io(e)),
        }
        events.clear();
        poller
            .wait(&mut events, Some(Duration::ZERO))
            .map_err(Stop::Io)?;
        for ev in events.iter() {
            match ev.key {
                OUT => {
                    let ended = drain(out.as_mut().map(|p| p as &mut dyn Read), &mut buf, |d| {
                        emit(Stream::Stdout, d)
                    })
                    .map_err(Stop::Io)?;
                    if ended && let Some(o) = out.take() {
                        let _ = poller.delete(&o);
                    }
                }
                ERR => {
                    let ended = drain(err.as_mut().map(|p| p as &mut dyn Read), &mut buf, |d| {
                        emit(Stream::Stderr, d)
                    })
                    .map_err(Stop::Io)?;
                    if ended && let Some(e) = err.take() {
                        let _ = poller.delete(&e);
                    }
                }
                IN => {
                    let done = match (&mut input, stdin) {
                        (Some(pipe), Some(data)) => {
                            feed(pipe, data, &mut stdin_pos, &mut stdin_buf)
                        }
                        _ => true,
                    };
                    if done && let Some(i) = input.take() {
                        let _ = poller.delete(&i);
                        // dropping it closes the pipe: the command sees EOF
                    }
                }
                EXITED => {
                    if let Some(p) = &exit_fd {
                        let _ = poller.delete(p);
                    }
                    status = child.try_wait().map_err(Stop::Io)?;
                }
                _ => {}
            }
        }
    }
}

/// Read what is there; true at end of file. A pipe already gone reads as ended.
fn drain(
    pipe: Option<&mut dyn Read>,
    buf: &mut [u8],
    mut each: impl FnMut(&[u8]),
) -> std::io::Result<bool> {
    let Some(pipe) = pipe else { return Ok(true) };
    loop {
        match pipe.read(buf) {
            Ok(0) => return Ok(true),
            Ok(n) => each(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Write stdin data as the pipe takes it; true once all of it is written (or the command
/// closed its stdin).
fn feed(
    pipe: &mut std::process::ChildStdin,
    data: &StdinData,
    pos: &mut u64,
    buf: &mut [u8],
) -> bool {
    loop {
        let n = match data.read_at(*pos, buf) {
            Ok(0) => return true,
            Ok(n) => n,
            Err(_) => return true,
        };
        match pipe.write(&buf[..n]) {
            Ok(w) => *pos += w as u64,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // the command closed its stdin (EPIPE): it wants no more
            Err(_) => return true,
        }
    }
}

/// Stop the child's process group: SIGTERM, then SIGKILL after [`GRACE`]; reap it. Says
/// what it took.
fn stop_group(child: &mut Child) -> String {
    let pgid = child.id() as libc::pid_t;
    // SAFETY: signalling the process group we created for this child.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let until = Instant::now() + GRACE;
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return "local command stopped (SIGTERM)".into();
        }
        let _ = poll_or_cancel(None, Duration::from_millis(10), None);
    }
    // SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
    "local command stopped (SIGKILL)".into()
}

/// `TERM` for 15, as OpenSSH names exit signals.
fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "HUP",
        libc::SIGINT => "INT",
        libc::SIGQUIT => "QUIT",
        libc::SIGILL => "ILL",
        libc::SIGABRT => "ABRT",
        libc::SIGFPE => "FPE",
        libc::SIGKILL => "KILL",
        libc::SIGSEGV => "SEGV",
        libc::SIGPIPE => "PIPE",
        libc::SIGALRM => "ALRM",
        libc::SIGTERM => "TERM",
        libc::SIGUSR1 => "USR1",
        libc::SIGUSR2 => "USR2",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}
