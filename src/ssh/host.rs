//! One host from start to finish: the start gate and retries around attempts, each attempt
//! connecting ([`super::transport`] or a bastion's channel), logging in ([`super::login`]) and
//! running the work ([`super::exec`], [`super::transfer`]); the result and its timings.

use super::fail::{Clock, Done, Fail, backoff, cancel_reason, is_retryable};
use super::gate::{Permit, StartGate};
use super::io::{Patience, sleep_unless_cancelled};
use super::jump::JumpPool;
use super::keys::KeyFile;
use super::pool::{Held, HeldInfo, Pool};
use super::transport::{self, Transport};
use super::{Ctx, exec, login, transfer};
use crate::cancel::Cancel;
use crate::event::{Failure, FailureKind, HostResult, Phase, Status, Stream};
use crate::target::{Settings, Target, Work};
use std::sync::Arc;
use std::time::Instant;

/// Read-only state shared by all sessions of a run.
pub struct Shared<'a> {
    pub settings: &'a Settings,
    /// Default keys, tried after the agent.
    pub default_keys: &'a [Arc<KeyFile>],
    pub cancel: &'a Cancel,
    pub gate: &'a StartGate,
    /// Connections to bastions, shared by every host behind them.
    pub jumps: &'a JumpPool,
    /// Held logins, when commands should reuse them (`prun shell`).
    pub pool: Option<&'a Pool>,
}

/// What the hosts of one run share besides the plan: the start gate (connection-rate
/// limit) and the bastion connections. Built once per run (per bench level).
pub struct RunState {
    gate: StartGate,
    jumps: JumpPool,
    /// Logged-in connections kept for the next command (`prun shell`).
    pool: Option<Pool>,
}

impl RunState {
    pub fn new(parallel: usize) -> RunState {
        RunState {
            gate: StartGate::new(parallel),
            jumps: JumpPool::default(),
            pool: None,
        }
    }

    /// A run state that keeps every login for the commands after the first.
    pub fn holding(parallel: usize) -> RunState {
        RunState {
            pool: Some(Pool::default()),
            ..RunState::new(parallel)
        }
    }

    /// Look after the idle held logins (see [`Pool::tend`]).
    pub fn tend(&self) {
        if let Some(p) = &self.pool {
            p.tend();
        }
    }

    /// The held logins (see [`Pool::describe`]).
    pub fn held(&self) -> Vec<HeldInfo> {
        self.pool.as_ref().map_or_else(Vec::new, Pool::describe)
    }

    /// Close the held logins of the hosts `pick` chooses; how many were closed.
    pub fn close(&self, pick: impl Fn(&str) -> bool) -> usize {
        self.pool.as_ref().map_or(0, |p| p.close(pick))
    }

    /// What every host of the run reads.
    pub fn shared<'a>(
        &'a self,
        settings: &'a Settings,
        default_keys: &'a [Arc<KeyFile>],
        cancel: &'a Cancel,
    ) -> Shared<'a> {
        Shared {
            settings,
            default_keys,
            cancel,
            gate: &self.gate,
            jumps: &self.jumps,
            pool: self.pool.as_ref(),
        }
    }
}

impl<'a> Shared<'a> {
    /// The part every step below the host needs (no bastion pool).
    pub(crate) fn ctx(&self) -> Ctx<'a> {
        Ctx {
            settings: self.settings,
            default_keys: self.default_keys,
            cancel: self.cancel,
            gate: self.gate,
        }
    }
}

/// Run `command` on `target`; output chunks go to `on_output` as they arrive.
///
/// Failures before the exec request was sent are retried (`Settings::retries`) with
/// exponential backoff and jitter; a command that may have started is never run again.
/// The timings are those of the final attempt; `retry_wait` is the time before it began
/// (earlier attempts, backoff, waiting at the start gate), so the phases plus `retry_wait`
/// add up to `total`.
pub fn run(
    target: &Target,
    work: &Work,
    shared: &Shared<'_>,
    on_output: &mut dyn FnMut(Stream, &[u8]),
    on_bytes: &mut dyn FnMut(u64),
) -> Box<HostResult> {
    let host_start = Instant::now();
    let mut attempt = 0;
    // why the earlier attempts failed, for the reports and the summary
    let mut retried = Vec::new();
    loop {
        attempt += 1;
        let Some(permit) = shared.gate.acquire(shared.cancel) else {
            let mut r = HostResult::boxed(Status::Cancelled);
            r.failure = Some(Failure {
                phase: Phase::Connect,
                kind: FailureKind::Cancelled,
                message: format!("not started: {}", cancel_reason(shared.cancel)),
            });
            r.attempts = attempt - 1;
            r.retried = retried;
            r.retry_wait = host_start.elapsed();
            r.timings.total = r.retry_wait;
            return r;
        };
        let mut permit = Some(permit);
        let mut clock = Clock::boxed();
        // on the heap: this frame is on every fiber's stack, down to each wait
        let mut result = HostResult::boxed(Status::Error);
        let mut failed = None;
        let outcome = one_attempt(
            target,
            work,
            shared,
            &mut clock,
            &mut result,
            &mut permit,
            on_output,
            on_bytes,
        );
        drop(permit);
        result.attempts = attempt;
        // the one place a host's status is decided
        match outcome {
            Ok(Done::Exited(code)) => {
                result.exit_code = Some(code);
                result.status = if code == 0 {
                    Status::Ok
                } else {
                    Status::Failed
                };
            }
            Ok(Done::Signalled(sig)) => {
                result.status = Status::Signal;
                result.signal = Some(sig);
            }
            Ok(Done::Transferred) => result.status = Status::Ok,
            Err(Fail {
                failure,
                status,
                permanent,
            }) => {
                result.status = status;
                failed = Some((failure, permanent));
            }
        }
        if let Some((f, permanent)) = failed.take() {
            // The failed phase's time is what elapsed since the last completed phase.
            clock.mark(f.phase);
            // a login the server was too slow to finish: a sign of overload for the gate
            if f.kind == FailureKind::Timeout
                && matches!(f.phase, Phase::Handshake | Phase::Hostkey | Phase::Auth)
            {
                shared.gate.timed_out();
            }
            let again = !permanent
                && is_retryable(&f)
                && attempt <= shared.settings.retries
                && !shared.cancel.is_cancelled();
            if again {
                retried.push(f.clone());
                if sleep_unless_cancelled(backoff(attempt), shared.cancel) {
                    continue;
                }
            }
            result.failure = Some(f);
        }
        result.retried = retried;
        result.retry_wait = clock.start - host_start;
        // Up to the end of the last phase (exit status known, or the failure): the session's
        // teardown after that (disconnect, free) is not part of the host's time.
        clock.timings.total = clock.last() - host_start;
        result.timings = clock.timings;
        result.clean_remote_text();
        return result;
    }
}

/// The work on a fresh login: a command (then the login is held for the next one, with
/// `--persist` or in `prun shell`, or closed) or a transfer. Out of line: its locals stay
/// off [`one_attempt`]'s frame, which every wait of a login stands on (see [`super::fiber`]).
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn logged_in(
    sess: ssh2::Session,
    fd: std::os::fd::RawFd,
    guard: super::io::NonBlockingOnDrop,
    liveness: Option<transport::Liveness>,
    key: Option<String>,
    target: &Target,
    work: &Work,
    shared: &Shared<'_>,
    clock: &mut Clock,
    result: &mut HostResult,
    on_output: &mut dyn FnMut(Stream, &[u8]),
    on_bytes: &mut dyn FnMut(u64),
) -> Result<Done, Fail> {
    let ctx = &shared.ctx();
    let keepalive_secs = shared
        .settings
        .keepalive
        .as_secs()
        .clamp(1, u32::MAX as u64) as u32;
    sess.set_keepalive(true, keepalive_secs);
    let command = match work {
        Work::Command(c) | Work::Local(c) => c.as_str(),
        Work::Push(spec) => {
            let r = transfer::push(&sess, fd, target, ctx, spec, clock, result, on_bytes);
            drop(guard);
            return r;
        }
        Work::Pull(spec) => {
            let r = transfer::pull(&sess, fd, target, ctx, spec, clock, result, on_bytes);
            drop(guard);
            return r;
        }
    };
    let mut agent_forwarded = false;
    let link = exec::Link {
        sess: &sess,
        fd,
        liveness: liveness.clone(),
        agent_forwarded: &mut agent_forwarded,
    };
    let r = exec::run(link, target, ctx, command, clock, result, on_output);
    match (shared.pool, key) {
        // keep the login for the next command
        (Some(pool), Some(key)) if keeps_connection(&r) => hold(
            pool,
            key,
            Held::new(
                sess,
                fd,
                guard,
                liveness,
                &target.name,
                keepalive_secs,
                result,
            ),
            agent_forwarded,
        ),
        _ => {
            // Best effort: tell the server we are leaving; do not wait for it.
            let _ = sess.disconnect(None, "done", None);
            drop(guard);
        }
    }
    r
}

/// Keep a fresh login for the next command. Out of line, with [`Held::new`]: a held login
/// is 192 bytes, and [`logged_in`]'s frame stands under every wait of the command.
#[inline(never)]
fn hold(pool: &Pool, key: String, mut held: Held, agent_forwarded: bool) {
    held.agent_forwarded = agent_forwarded;
    pool.put(key, held)
}

/// Whether the connection is fit for the next command after this outcome: the command ended
/// on its own, or prun stopped it (--timeout, Ctrl-C) and the connection itself is fine.
fn keeps_connection(r: &Result<Done, Fail>) -> bool {
    match r {
        Ok(_) => true,
        Err(f) => {
            f.failure.phase == Phase::Read
                && matches!(f.status, Status::Cancelled | Status::Timeout)
        }
    }
}

/// A command on the held connection of `key`, if there is a live one: channel open and exec
/// only. `None` when there is none, or when it was found dead before the exec request was
/// sent: then log in afresh (the command never ran). Out of line: [`one_attempt`]'s frame is
/// on every fiber's stack down to each wait, and a held login is 192 bytes.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn on_held(
    pool: &Pool,
    key: &str,
    permit: &mut Option<Permit<'_>>,
    target: &Target,
    ctx: &super::Ctx<'_>,
    command: &str,
    clock: &mut Clock,
    result: &mut HostResult,
    on_output: &mut dyn FnMut(Stream, &[u8]),
) -> Option<Result<Done, Fail>> {
    let mut held = pool.take(key).filter(Held::alive)?;
    permit.take(); // no new connection
    for p in [
        Phase::Connect,
        Phase::Handshake,
        Phase::Hostkey,
        Phase::Auth,
    ] {
        clock.mark(p);
    }
    result.reused = true;
    result.kex = held.kex.clone();
    result.cipher = held.cipher.clone();
    result.auth_method = held.auth_method.clone();
    let link = exec::Link {
        sess: &held.sess,
        fd: held.fd,
        liveness: held.liveness.clone(),
        agent_forwarded: &mut held.agent_forwarded,
    };
    let r = exec::run(link, target, ctx, command, clock, result, on_output);
    match r {
        r if keeps_connection(&r) => {
            held.used();
            pool.put(key.to_string(), held);
            Some(r)
        }
        // dead before the exec request was sent: log in afresh (the command never ran)
        Err(f) if f.failure.phase == Phase::ChannelOpen && f.status == Status::Error => {
            drop(held);
            *clock = Clock::new();
            result.reused = false;
            None
        }
        other => Some(other),
    }
}

/// One attempt: connect (directly or through a bastion), log in, then run the work.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn one_attempt(
    target: &Target,
    work: &Work,
    shared: &Shared<'_>,
    clock: &mut Clock,
    result: &mut HostResult,
    permit: &mut Option<Permit<'_>>,
    on_output: &mut dyn FnMut(Stream, &[u8]),
    on_bytes: &mut dyn FnMut(u64),
) -> Result<Done, Fail> {
    if let Work::Local(_) = work {
        // the runner runs these itself (crate::local); never over ssh
        return Err(Fail {
            failure: Failure {
                phase: Phase::Connect,
                kind: FailureKind::Exec,
                message: "a --local command is not run over SSH".into(),
            },
            status: Status::Error,
            permanent: true,
        });
    }
    let ctx = shared.ctx();
    // a command on a held connection: channel open and exec only
    let key = shared.pool.map(|_| Pool::key(target));
    if let (Some(pool), Some(key), Work::Command(command)) = (shared.pool, &key, work)
        && let Some(r) = on_held(
            pool, key, permit, target, &ctx, command, clock, result, on_output,
        )
    {
        return r;
    }
    // the connect by a fixed deadline; the login after it by the server's silence
    let patience = Patience::answering(clock.start, target.connect_timeout);
    let deadline = patience.deadline();

    // connect (includes DNS), directly or through a channel of the bastion's connection
    let transport = match &target.jump {
        Some(bastion) => {
            let (sock, alive, notes) = shared.jumps.open(bastion, target, deadline, &ctx)?;
            result.notes.extend(notes);
            Transport::Forwarded(sock, alive)
        }
        None => transport::open_direct(target, deadline, shared.cancel)?,
    };
    let (liveness, proxy) = match &transport {
        Transport::Forwarded(_, alive) => (Some(alive.clone()), None),
        Transport::Tcp(_) => (None, None),
        Transport::Proxied(p) => (None, Some(p.child.clone())),
    };
    clock.mark(Phase::Connect);
    // on the heap, as the result: this frame stands under every wait of the login
    let mut info = Box::<login::LoginInfo>::default();
    let secured = login::secure(
        transport,
        target,
        &ctx,
        patience,
        &mut |p| clock.mark(p),
        &mut info,
    );
    let info = *info;
    result.kex = info.kex;
    result.cipher = info.cipher;
    result.auth_method = info.auth_method;
    result.notes.extend(info.notes);
    let (sess, fd, guard) = secured.map_err(|mut f| {
        // through a ProxyCommand, how the command did says more than the session can
        if let Some(p) = &proxy
            && matches!(f.failure.phase, Phase::Handshake | Phase::Hostkey)
        {
            f.failure.message = format!("{} ({})", f.failure.message, p.describe());
        }
        f
    })?;
    drop(proxy);
    shared.gate.succeeded();
    permit.take();
    logged_in(
        sess, fd, guard, liveness, key, target, work, shared, clock, result, on_output, on_bytes,
    )
}
