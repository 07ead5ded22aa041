//! A host's failures and timings while its steps run: the [`Clock`] that marks phases, the
//! [`Fail`] a step returns, how libssh2 errors and wait outcomes become failure kinds and
//! messages, which failures may be retried, and the backoff between attempts.

use super::io::{LIBSSH2_TIMEOUT, StepError, code};
use crate::cancel::Cancel;
use crate::event::{Failure, FailureKind, Phase, Status, Timings};
use std::time::{Duration, Instant};

/// A host attempt's phase timings: each phase is the time since the previous one ended.
pub(crate) struct Clock {
    pub(crate) start: Instant,
    last: Instant,
    pub(crate) timings: Timings,
}

impl Clock {
    /// [`Clock::new`] made on the heap: [`super::host::run`]'s frame stands under every wait
    /// of a fiber ([`super::fiber`]).
    #[inline(never)]
    pub(crate) fn boxed() -> Box<Self> {
        Box::new(Self::new())
    }

    pub(crate) fn new() -> Self {
        let now = Instant::now();
        Clock {
            start: now,
            last: now,
            timings: Timings::default(),
        }
    }
    /// End the current phase as `p`.
    pub(crate) fn mark(&mut self, p: Phase) {
        let now = Instant::now();
        self.timings.set(p, now - self.last);
        self.last = now;
    }

    /// When the last phase ended.
    pub(crate) fn last(&self) -> Instant {
        self.last
    }

    /// Phases measured as sums (a transfer's open, transfer and close, over its files):
    /// recorded as they are, and the next phase starts now, or, when `failing` is one of
    /// them, the final mark of that phase measures its sum (the failure's partial time).
    pub(crate) fn record_sums(&mut self, sums: &[(Phase, Duration)], failing: Option<Phase>) {
        let now = Instant::now();
        for &(p, d) in sums {
            if Some(p) == failing {
                self.last = now - d;
            } else if !d.is_zero() || p == Phase::Open {
                self.timings.set(p, d);
            }
        }
        if failing.is_none() {
            self.last = now;
        }
    }
}

/// A failed step, still open for the partial timing of the phase it failed in.
pub(crate) struct Fail {
    pub(crate) failure: Failure,
    /// The host's status if this failure ends it: `error` by default, `cancelled` for a
    /// cancel; a step that knows better (a --timeout, a transfer that failed after the
    /// login) says so with [`Fail::with_status`]. Only the host applies it.
    pub(crate) status: Status,
    /// Known not to change on a retry although its kind usually may (a name that does not
    /// resolve is `unreachable`, like a network that is down, but retrying will not help).
    pub(crate) permanent: bool,
}

impl Fail {
    pub(crate) fn with_status(mut self, status: Status) -> Fail {
        self.status = status;
        self
    }

    pub(crate) fn permanent(mut self) -> Fail {
        self.permanent = true;
        self
    }
}

/// How a host's work ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Done {
    /// The command exited with this status.
    Exited(i32),
    /// The command was killed by this signal.
    Signalled(String),
    /// Every file was transferred.
    Transferred,
}

pub(crate) fn fail(phase: Phase, kind: FailureKind, message: impl Into<String>) -> Fail {
    Fail {
        failure: Failure {
            phase,
            kind,
            message: message.into(),
        },
        status: if kind == FailureKind::Cancelled {
            Status::Cancelled
        } else {
            Status::Error
        },
        permanent: false,
    }
}

pub(crate) fn ssh_fail(phase: Phase, e: &ssh2::Error, default: FailureKind) -> Fail {
    let kind = match code(e) {
        LIBSSH2_TIMEOUT => FailureKind::Timeout,
        -5 => FailureKind::Kex,
        -43 if phase == Phase::Handshake => FailureKind::Banner,
        -13 | -7 | -43 => FailureKind::Io,
        _ => default,
    };
    let msg = match kind {
        FailureKind::Timeout => format!("timed out in {phase} (--connect-timeout)"),
        FailureKind::Banner => {
            "no SSH banner from server (connection dropped; sshd MaxStartups?)".to_string()
        }
        FailureKind::Kex => format!(
            "key exchange failed ({}): no algorithm in common with the server, or its reply \
             was not valid SSH",
            e.message()
        ),
        _ => format!("{} ({})", e.message(), code(e)),
    };
    fail(phase, kind, msg)
}

pub(crate) fn step_fail(phase: Phase, e: StepError, default: FailureKind, cancel: &Cancel) -> Fail {
    match e {
        StepError::Ssh(e) => ssh_fail(phase, &e, default),
        StepError::TimedOut => fail(
            phase,
            FailureKind::Timeout,
            format!("timed out in {phase} (--connect-timeout)"),
        ),
        StepError::Cancelled => fail(
            phase,
            FailureKind::Cancelled,
            format!("stopped: {}", cancel_reason(cancel)),
        ),
        StepError::Io(e) => fail(phase, FailureKind::Io, format!("{phase}: {e}")),
    }
}

/// The failure of a step stopped by the run's cancel.
pub(crate) fn cancelled(phase: Phase, cancel: &Cancel) -> Fail {
    fail(
        phase,
        FailureKind::Cancelled,
        format!("stopped: {}", cancel_reason(cancel)),
    )
}

pub(crate) fn cancel_reason(cancel: &Cancel) -> &'static str {
    if cancel.is_interrupted() {
        "run interrupted (Ctrl-C/SIGTERM/SIGHUP)"
    } else {
        "run stopped (--fail-fast)"
    }
}

/// May this failure be retried (unless its [`Fail`] is marked permanent)? Only when the command cannot have started: connection
/// refused or timed out, no banner (sshd MaxStartups), reset during the handshake, a timeout
/// before auth completed, or a channel that could not be opened. Not: unknown or changed host
/// keys, refused credentials, no common algorithms, name resolution, anything from exec on.
pub fn is_retryable(f: &Failure) -> bool {
    use FailureKind as K;
    match f.phase {
        Phase::Connect => matches!(f.kind, K::Refused | K::Timeout | K::Unreachable),
        Phase::Handshake => matches!(f.kind, K::Banner | K::Io | K::Timeout),
        Phase::Auth => f.kind == K::Timeout,
        Phase::ChannelOpen => matches!(f.kind, K::Channel | K::Io | K::Timeout),
        _ => false,
    }
}

/// Backoff before attempt `attempt + 1`: 200 ms doubling per attempt (capped at 5 s), plus
/// up to as much again of random jitter so the retries of many hosts spread out.
pub fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(200) * 2u32.pow(attempt.saturating_sub(1).min(5));
    let base = base.min(Duration::from_secs(5));
    base + base.mul_f64(jitter())
}

/// A number in [0, 1) that differs between threads and calls (no cryptographic quality).
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_before_the_command_are_retried() {
        let f = |phase, kind, message: &str| Failure {
            phase,
            kind,
            message: message.into(),
        };
        use FailureKind as K;
        assert!(is_retryable(&f(Phase::Connect, K::Refused, "")));
        assert!(is_retryable(&f(Phase::Connect, K::Timeout, "")));
        assert!(is_retryable(&f(Phase::Connect, K::Unreachable, "")));
        assert!(
            fail(Phase::Connect, K::Unreachable, "cannot resolve")
                .permanent()
                .permanent
        );
        assert!(is_retryable(&f(Phase::Handshake, K::Banner, "")));
        assert!(is_retryable(&f(Phase::Handshake, K::Io, "")));
        assert!(!is_retryable(&f(Phase::Handshake, K::Kex, "")));
        assert!(!is_retryable(&f(Phase::Hostkey, K::HostkeyUnknown, "")));
        assert!(!is_retryable(&f(Phase::Auth, K::Auth, "")));
        assert!(is_retryable(&f(Phase::Auth, K::Timeout, "")));
        assert!(is_retryable(&f(Phase::ChannelOpen, K::Channel, "")));
        assert!(!is_retryable(&f(Phase::Exec, K::Timeout, "")));
        assert!(!is_retryable(&f(Phase::Read, K::Io, "")));
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        for attempt in 1..=8 {
            let base = Duration::from_millis(200 * 2u64.pow((attempt - 1).min(5)))
                .min(Duration::from_secs(5));
            let b = backoff(attempt);
            assert!(b >= base && b < base * 2, "{attempt}: {b:?}");
        }
    }
}
