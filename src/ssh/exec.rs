//! Running a command on a logged-in session: channel open, --env / --cwd / --pty / sudo,
//! exec, stdin, the read loop over both streams (sudo's prompt answered through
//! [`super::sudo::SudoFilter`], keepalives, --timeout and cancel), stopping the remote
//! command with signal requests, and close with the exit status.

use super::Ctx;
use super::channel::ExecChannel;
use super::fail::{Clock, Done, Fail, cancel_reason, fail, step_fail};
use super::io::{
    EAGAIN, IdlePasses, Patience, WaitError, code, ms_since_data_received, nonblocking,
    wait_socket, wait_socket_or,
};
use super::sudo::{self, SudoFilter, sudo_wrap};
use super::transport::Liveness;
use crate::event::{FailureKind, HostResult, Phase, Status, Stream};
use crate::secret::Secret;
use crate::target::{Target, shell_quote};
use ssh2::Session;
use std::io;
use std::os::unix::io::RawFd;
use std::time::{Duration, Instant};

/// The logged-in connection a command runs on (fresh or held).
pub(crate) struct Link<'a> {
    pub(crate) sess: &'a Session,
    /// Its socket.
    pub(crate) fd: RawFd,
    /// When a socket that is not TCP (a ProxyCommand's) last gave bytes, for --keepalive.
    pub(crate) liveness: Option<Liveness>,
    /// Whether agent forwarding was asked for on it already: sshd honours one request per
    /// connection, so a later command's forwarding reuses it.
    pub(crate) agent_forwarded: &'a mut bool,
}

/// Run `command` on a logged-in session: open a channel, send --env / --pty requests, exec
/// (through sudo when asked), feed stdin, read both streams until EOF (answering sudo's
/// prompt, keeping the connection alive, stopping the command on --timeout or cancel), then
/// close and read the exit status. Output chunks go to `on_output` as they arrive.
pub(crate) fn run(
    link: Link<'_>,
    target: &Target,
    ctx: &Ctx<'_>,
    command: &str,
    clock: &mut Clock,
    result: &mut HostResult,
    on_output: &mut dyn FnMut(Stream, &[u8]),
) -> Result<Done, Fail> {
    let Link {
        sess,
        fd,
        liveness,
        agent_forwarded,
    } = link;
    let settings = ctx.settings;
    let cancel = ctx.cancel;
    let keepalive_secs = settings.keepalive.as_secs().clamp(1, u32::MAX as u64) as u32;
    // channel open and exec, non-blocking: bounded by the connect timeout again (a server
    // that stops answering here must not hang us), and with TCP_QUICKACK re-armed after each
    // request is sent, so the server's reply is not held back by a delayed ACK (Nagle on the
    // server side + delayed ACK on ours cost ~40 ms per channel open; ssh2-notes §7).
    let step_deadline = Patience::answering(Instant::now(), target.connect_timeout);
    let ch = nonblocking(fd, sess, step_deadline, cancel, || ExecChannel::open(sess))
        .map_err(|e| step_fail(Phase::ChannelOpen, e, FailureKind::Channel, cancel))?;
    clock.mark(Phase::ChannelOpen);
    // --env as env requests; what the server refuses is exported by a command prefix instead
    // (always, under sudo, which resets the environment)
    let mut prefix = String::new();
    for (k, v) in target.env.as_ref().unwrap_or(&settings.env) {
        let sent = target.sudo_user.is_none()
            && nonblocking(fd, sess, step_deadline, cancel, || ch.setenv(k, v)).is_ok();
        if !sent {
            prefix.push_str(&format!("export {k}={}; ", shell_quote(v)));
        }
    }
    if let Some(dir) = &settings.cwd {
        prefix.push_str(&format!("cd -- {} && ", shell_quote(dir)));
    }
    if settings.pty {
        nonblocking(fd, sess, step_deadline, cancel, || ch.request_pty())
            .map_err(|e| step_fail(Phase::ChannelOpen, e, FailureKind::Channel, cancel))?;
    }
    // -A / ForwardAgent: the server may open agent channels back to us while the command runs
    let mut forwarder = None;
    if target.forward_agent {
        match std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
            None => result.notes.push(
                "agent forwarding asked for, but SSH_AUTH_SOCK is not set: not forwarded".into(),
            ),
            Some(sock) => {
                // made first: dropped on any failure below, it leaves the session as it was
                let fwd = super::agentfwd::Forwarder::new(sess, sock.into());
                if *agent_forwarded {
                    // a held login that forwards already (sshd takes one request a connection)
                    fwd.accept();
                    forwarder = Some(fwd);
                } else {
                    match nonblocking(fd, sess, step_deadline, cancel, || fwd.request(ch.ptr())) {
                        Ok(()) => {
                            *agent_forwarded = true;
                            forwarder = Some(fwd);
                        }
                        Err(_) if cancel.is_cancelled() => {}
                        Err(_) => result.notes.push(
                            "the server refused agent forwarding (sshd AllowAgentForwarding?)"
                                .into(),
                        ),
                    }
                }
            }
        }
    }
    let full_command;
    let command = match &target.sudo_user {
        Some(user) => {
            full_command = sudo_wrap(
                &format!("{prefix}{command}"),
                user,
                settings
                    .sudo_password
                    .is_some()
                    .then_some(settings.sudo_prompt.as_str()),
            );
            &full_command
        }
        None if prefix.is_empty() => command,
        None => {
            full_command = format!("{prefix}{command}");
            &full_command
        }
    };
    nonblocking(fd, sess, step_deadline, cancel, || ch.exec(command))
        .map_err(|e| step_fail(Phase::Exec, e, FailureKind::Exec, cancel))?;
    clock.mark(Phase::Exec);
    let exec_done = clock.last();
    // stdin: the --stdin data, streamed as the window allows; else EOF at once (like ssh -n),
    // so a command that reads stdin cannot wait forever. With a sudo password, stdin waits
    // until sudo's prompt was answered (or sudo clearly did not ask: output on stdout, or 3 s).
    let mut stdin_pos: Option<u64> = Some(0);
    // sudo's prompt: answered once, only as the first thing on stderr (see `sudo`)
    let mut sudo = match (&target.sudo_user, &settings.sudo_password) {
        (Some(_), Some(_)) => Some(SudoFilter::new(&settings.sudo_prompt)),
        _ => None,
    };
    // only a run with --stdin needs the buffer (otherwise its 32 KB would sit in memory
    // beside the 32 KB read buffer while the command runs)
    let mut stdin_buf = Vec::new();

    // read both streams, non-blocking
    let cmd_deadline = settings.command_timeout.map(|t| exec_done + t);
    let mut buf = vec![0u8; 32 * 1024];
    let mut first_byte = None;
    let mut idle_passes = IdlePasses::default();
    // reads stop at the command's deadline and on cancel even while output keeps flowing
    let read_bound = super::bound::enter(cmd_deadline, Some(cancel.flag()));
    loop {
        let mut progressed = false;
        if let Some(f) = sudo.as_mut().filter(|f| f.waiting())
            && exec_done.elapsed() > Duration::from_secs(3)
        {
            // sudo did not ask in time: it had the credentials cached, or is not asking
            let held = f.finish();
            if !held.is_empty() {
                on_output(Stream::Stderr, &held);
            }
        }
        let sudo_waiting = sudo.as_ref().is_some_and(SudoFilter::waiting);
        if let (false, Some(pos)) = (sudo_waiting, stdin_pos) {
            let n = match &settings.stdin {
                Some(data) => {
                    stdin_buf.resize(32 * 1024, 0);
                    data.read_at(pos, &mut stdin_buf)
                }
                .map_err(|e| fail(Phase::Read, FailureKind::Io, format!("reading stdin: {e}")))?,
                None => 0,
            };
            if n == 0 {
                match super::fiber::deep(|| ch.send_eof()) {
                    Ok(()) => stdin_pos = None,
                    Err(e) if code(&e) == EAGAIN => {}
                    Err(_) => stdin_pos = None, // the command already closed its stdin
                }
            } else {
                match super::fiber::deep(|| ch.write(&stdin_buf[..n])) {
                    Ok(w) => {
                        stdin_pos = Some(pos + w as u64);
                        progressed = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => stdin_pos = None, // the command does not read its stdin
                }
            }
        }
        for (id, stream) in [(0, Stream::Stdout), (1, Stream::Stderr)] {
            loop {
                match super::fiber::deep(|| ch.read(id, &mut buf)) {
                    // 0 is EOF only when ch.eof() agrees: libssh2 also returns 0 when it
                    // stopped decoding with complete packets still buffered (see wait_socket).
                    Ok(0) => break,
                    Ok(n) => {
                        if first_byte.is_none() {
                            first_byte = Some(exec_done.elapsed());
                        }
                        match stream {
                            Stream::Stdout => result.bytes_stdout += n as u64,
                            Stream::Stderr => result.bytes_stderr += n as u64,
                        }
                        let mut chunk: std::borrow::Cow<'_, [u8]> = (&buf[..n]).into();
                        if let Some(f) = sudo.as_mut() {
                            if stream == Stream::Stdout {
                                let held = f.stdout_seen();
                                if !held.is_empty() {
                                    on_output(Stream::Stderr, &held);
                                }
                            } else {
                                let (pass, action) = f.stderr(&buf[..n]);
                                chunk = pass.into_owned().into();
                                match action {
                                    sudo::Action::None => {}
                                    sudo::Action::Answer => {
                                        if let Some(pw) = &settings.sudo_password {
                                            send_secret_line(&ch, fd, sess, pw, target);
                                        }
                                    }
                                    sudo::Action::CloseStdin => {
                                        // refused: sudo must fail, not wait for another try
                                        let _ = super::fiber::deep(|| ch.send_eof());
                                        stdin_pos = None;
                                    }
                                }
                            }
                        }
                        if !chunk.is_empty() {
                            super::fiber::deep(|| on_output(stream, &chunk));
                        }
                        progressed = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        return Err(fail(
                            Phase::Read,
                            FailureKind::Io,
                            format!("reading output: {e}"),
                        ));
                    }
                }
            }
        }
        if let Some(f) = forwarder.as_mut()
            && f.pump()
        {
            progressed = true;
        }
        if ch.eof() && !progressed {
            break;
        }
        // Reading stderr can make libssh2 decode (and queue) stdout data or the EOF after
        // stdout was read in the same pass: a pass only counts as idle when the next one is
        // too (IdlePasses). Otherwise we would wait on a socket with nothing more to come.
        let wait_now = idle_passes.wait_now(progressed);
        // A command whose output never pauses still meets its deadline and the cancel.
        let must_stop = cancel.is_cancelled() || cmd_deadline.is_some_and(|d| Instant::now() >= d);
        if must_stop || wait_now {
            // A silent command is fine; a silent server is not: keepalives get a reply from
            // a live server, so nothing received for 3 intervals means it stopped answering.
            let _ = super::fiber::deep(|| sess.keepalive_send());
            // how long the server has been silent: the kernel's TCP_INFO, a bastion channel's
            // pump, or (a ProxyCommand's socket pair) what the receive function last read
            if let Some(idle) = ms_since_data_received(fd)
                .or_else(|| liveness.as_ref().map(|l| l.idle_ms()))
                .or_else(|| super::bound::ms_since_read(sess))
                && Duration::from_millis(idle.into()) > super::io::silence_limit(keepalive_secs)
            {
                let _ = ch.close();
                return Err(went_silent(idle, keepalive_secs));
            }
            let waited = if must_stop {
                Err(WaitError::Cancelled)
            } else {
                wait_socket(fd, sess, cmd_deadline, cancel)
            };
            match waited {
                Ok(()) => {}
                Err(WaitError::Io(e)) => {
                    return Err(fail(
                        Phase::Read,
                        FailureKind::Io,
                        format!("waiting for output: {e}"),
                    ));
                }
                Err(WaitError::Cancelled) => {
                    if let Some(held) = sudo.as_mut().map(SudoFilter::finish)
                        && !held.is_empty()
                    {
                        on_output(Stream::Stderr, &held);
                    }
                    // Stop the remote command: signal it and wait briefly for the server to
                    // confirm (exit signal or close); say so when it cannot be confirmed.
                    let note =
                        stop_remote(&ch, fd, sess, &mut buf, result, settings.pty, on_output);
                    result.notes.push(note);
                    if let Some(fb) = first_byte {
                        clock.timings.set(Phase::FirstByte, fb);
                    }
                    return Err(stopped(cancel, settings.command_timeout));
                }
            }
        }
    }
    drop(read_bound);
    if let Some(held) = sudo.as_mut().map(SudoFilter::finish)
        && !held.is_empty()
    {
        on_output(Stream::Stderr, &held); // it was not a prompt after all
    }
    if let Some(fb) = first_byte {
        clock.timings.set(Phase::FirstByte, fb);
    }
    clock.mark(Phase::Read);

    // close and exit status
    let close_deadline = Patience::answering(Instant::now(), target.connect_timeout);
    nonblocking(fd, sess, close_deadline, cancel, || ch.close())
        .map_err(|e| step_fail(Phase::Close, e, FailureKind::Io, cancel))?;
    nonblocking(fd, sess, close_deadline, cancel, || ch.wait_close())
        .map_err(|e| step_fail(Phase::Close, e, FailureKind::Io, cancel))?;
    let signal = ch.exit_signal();
    let status = ch.exit_status();
    clock.mark(Phase::Close);
    drop(ch);
    Ok(match signal {
        Some(sig) => Done::Signalled(sig),
        None => Done::Exited(status),
    })
}

/// The failure of a command whose server stopped answering (see [`run`]). Cold, out of line
/// as [`stopped`]: their formatting stays off the frame a command's waits stand on
/// ([`super::fiber`]).
#[cold]
#[inline(never)]
fn went_silent(idle_ms: u32, keepalive_secs: u32) -> Fail {
    fail(
        Phase::Read,
        FailureKind::Io,
        format!(
            "server stopped answering: nothing received for {}s despite keepalives \
             (--keepalive {}s); remote command may still be running",
            idle_ms / 1000,
            keepalive_secs
        ),
    )
}

/// The failure of a command stopped by the cancel or by `--timeout`.
#[cold]
#[inline(never)]
fn stopped(cancel: &crate::cancel::Cancel, timeout: Option<Duration>) -> Fail {
    if cancel.is_cancelled() {
        fail(
            Phase::Read,
            FailureKind::Cancelled,
            format!("stopped: {}", cancel_reason(cancel)),
        )
    } else {
        fail(
            Phase::Read,
            FailureKind::Timeout,
            format!(
                "command did not finish within --timeout {}",
                humantime::format_duration(timeout.unwrap_or_default())
            ),
        )
        .with_status(Status::Timeout)
    }
}

/// Write `secret` and a newline to the command's stdin (sudo's prompt), within the connect
/// timeout; no copy of the secret is made.
fn send_secret_line(ch: &ExecChannel, fd: RawFd, sess: &Session, secret: &Secret, target: &Target) {
    let end = Instant::now() + target.connect_timeout;
    for part in [secret.expose().as_bytes(), b"\n"] {
        let mut sent = 0;
        while sent < part.len() && Instant::now() < end {
            match ch.write(&part[sent..]) {
                Ok(w) => sent += w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let _ = wait_socket_or(fd, sess, Some(end), None);
                }
                Err(_) => return,
            }
        }
    }
}

/// How long the server gets to confirm a signal before prun escalates or gives up.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Stop a running remote command: send SIGTERM through an SSH signal request, then SIGKILL,
/// each time waiting up to [`STOP_GRACE`] for the server to report the exit (an exit signal or
/// status, or the channel's close) while still forwarding any output. Returns the note for
/// the host's result. OpenSSH honours signal requests (7.9+) but ignores them for root
/// logins; then the command is not confirmed stopped and the note says so.
fn stop_remote(
    ch: &ExecChannel,
    fd: RawFd,
    sess: &Session,
    buf: &mut [u8],
    result: &mut HostResult,
    pty: bool,
    on_output: &mut dyn FnMut(Stream, &[u8]),
) -> String {
    for sig in ["TERM", "KILL"] {
        let deadline = Instant::now() + STOP_GRACE;
        // the run's cancel (or the passed --timeout) must not stop these reads
        let _bound = super::bound::enter(Some(deadline), None);
        // send the request (non-blocking)
        loop {
            match ch.signal(sig) {
                Ok(()) => break,
                Err(e) if code(&e) == EAGAIN && Instant::now() < deadline => {
                    let _ = wait_socket_or(fd, sess, Some(deadline), None);
                }
                Err(_) => {
                    return "remote command may still be running (could not send a signal)".into();
                }
            }
        }
        // drain until the server confirms or the grace period ends
        while Instant::now() < deadline {
            let mut progressed = false;
            for (id, stream) in [(0, Stream::Stdout), (1, Stream::Stderr)] {
                while let Ok(n) = ch.read(id, buf) {
                    if n == 0 {
                        break;
                    }
                    match stream {
                        Stream::Stdout => result.bytes_stdout += n as u64,
                        Stream::Stderr => result.bytes_stderr += n as u64,
                    }
                    on_output(stream, &buf[..n]);
                    progressed = true;
                }
            }
            if let Some(s) = ch.exit_signal() {
                result.signal = Some(s.clone());
                return format!("remote command stopped (SIG{s})");
            }
            if ch.eof() && !progressed {
                // The exit signal or status comes after EOF: wait for the close to read it.
                let _ = ch.close();
                while let Err(e) = ch.wait_close() {
                    if code(&e) != EAGAIN || Instant::now() >= deadline {
                        break;
                    }
                    let _ = wait_socket_or(fd, sess, Some(deadline), None);
                }
                if let Some(s) = ch.exit_signal() {
                    result.signal = Some(s.clone());
                    return format!("remote command stopped (SIG{s})");
                }
                return format!(
                    "remote command ended after SIG{sig} (exit status {})",
                    ch.exit_status()
                );
            }
            if !progressed {
                let _ = wait_socket_or(fd, sess, Some(deadline), None);
            }
        }
    }
    let _ = ch.close();
    if pty {
        // With a terminal, sshd hangs the command up (SIGHUP) when the connection closes,
        // which happens right after this; prun cannot see it happen.
        return "remote command ignored the signals; it is hung up (SIGHUP) as the connection \
                closes (--pty; not confirmed)"
            .into();
    }
    "remote command may still be running: the server did not confirm SIGTERM or SIGKILL \
     (OpenSSH ignores signal requests for root logins; --pty makes the command end with the \
     connection)"
        .into()
}
