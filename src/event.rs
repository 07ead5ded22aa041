//! The events a run emits: the only contract between the runner (and the ssh code under it)
//! and everything that prints or reports. Plain data, no behaviour beyond small helpers.

use std::fmt;
use std::time::Duration;

/// How a host is reached, as resolved by the plan; sent once per host at run start.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Its batch (from 1), when the run has batches (`--batch`, `--canary`).
    #[serde(default)]
    pub batch: Option<u32>,
    /// The first inventory group that lists it (besides `all` and `ungrouped`), for metrics.
    #[serde(default)]
    pub group: Option<String>,
}

/// Which remote stream a chunk of output came from.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One step of a host's session, in order. `FirstByte` lies inside `Read`. A command uses
/// `ChannelOpen`..`Read`; a file transfer (`prun push`/`pull`) uses `ChannelOpen` (the SFTP
/// subsystem), `Open` (directories and remote files), `Transfer` (the data) instead; both end
/// with `Close`.
#[derive(
    serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum Phase {
    Connect,
    Handshake,
    Hostkey,
    Auth,
    ChannelOpen,
    Exec,
    FirstByte,
    Read,
    Open,
    Transfer,
    Close,
}

impl Phase {
    /// The phases, in report order.
    pub const ALL: [Phase; 11] = [
        Phase::Connect,
        Phase::Handshake,
        Phase::Hostkey,
        Phase::Auth,
        Phase::ChannelOpen,
        Phase::Exec,
        Phase::FirstByte,
        Phase::Read,
        Phase::Open,
        Phase::Transfer,
        Phase::Close,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Handshake => "handshake",
            Phase::Hostkey => "hostkey",
            Phase::Auth => "auth",
            Phase::ChannelOpen => "channel_open",
            Phase::Exec => "exec",
            Phase::FirstByte => "first_byte",
            Phase::Read => "read",
            Phase::Open => "open",
            Phase::Transfer => "transfer",
            Phase::Close => "close",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Per-phase durations of one host (the final attempt), plus the whole host's time.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Timings {
    /// Indexed like [`Phase::ALL`]; `None` when the phase was not reached.
    pub phases: [Option<Duration>; 11],
    /// Start of the host to its end.
    pub total: Duration,
}

impl Timings {
    pub fn get(&self, p: Phase) -> Option<Duration> {
        self.phases[p as usize]
    }
    pub fn set(&mut self, p: Phase, d: Duration) {
        self.phases[p as usize] = Some(d);
    }
}

/// Why a host failed, classified.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    Refused,
    Unreachable,
    Timeout,
    Banner,
    Kex,
    HostkeyUnknown,
    HostkeyMismatch,
    Auth,
    Channel,
    Exec,
    Io,
    Cancelled,
    /// Never started: the rollout stopped first.
    Skipped,
}

impl FailureKind {
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Refused => "refused",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Timeout => "timeout",
            FailureKind::Banner => "banner",
            FailureKind::Kex => "kex",
            FailureKind::HostkeyUnknown => "hostkey-unknown",
            FailureKind::HostkeyMismatch => "hostkey-mismatch",
            FailureKind::Auth => "auth",
            FailureKind::Channel => "channel",
            FailureKind::Exec => "exec",
            FailureKind::Io => "io",
            FailureKind::Cancelled => "cancelled",
            FailureKind::Skipped => "skipped",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failure: where, what kind, and a one-line reason for a person.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Failure {
    pub phase: Phase,
    pub kind: FailureKind,
    pub message: String,
}

/// "handshake timeout: timed out in handshake (--connect-timeout)": the summary's,
/// the reports' and the warnings' one way of saying it.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.phase, self.kind, self.message)
    }
}

/// The outcome class of a host, which decides prun's exit status.
#[derive(
    serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum Status {
    /// The command ran and exited 0.
    Ok,
    /// The command ran and exited non-zero.
    Failed,
    /// SSH-level failure before the command ran (connect, handshake, host key, auth, channel).
    Error,
    /// The command outlived `--timeout`.
    Timeout,
    /// The command was killed by a signal.
    Signal,
    /// The host was never run, or stopped, because the run was cancelled.
    Cancelled,
    /// The host was never started: the rollout stopped first (`--max-fail`, `--fail-fast`,
    /// a failed canary, a "no" between batches).
    Skipped,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Ok,
        Status::Failed,
        Status::Error,
        Status::Timeout,
        Status::Signal,
        Status::Cancelled,
        Status::Skipped,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Error => "error",
            Status::Timeout => "timeout",
            Status::Signal => "signal",
            Status::Cancelled => "cancelled",
            Status::Skipped => "skipped",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything known about one host once it is done.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct HostResult {
    pub status: Status,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub failure: Option<Failure>,
    pub timings: Timings,
    pub attempts: u32,
    /// Time before the final attempt started: earlier attempts, retry backoff and waiting for
    /// the connection-rate limit. The final attempt's phases plus this add up to `total`.
    pub retry_wait: Duration,
    /// e.g. `publickey (/root/.ssh/id_ed25519)` or `agent (ED25519 …)`.
    pub auth_method: Option<String>,
    pub kex: Option<String>,
    pub cipher: Option<String>,
    pub bytes_stdout: u64,
    pub bytes_stderr: u64,
    /// File transfers: files and bytes moved (0 for commands).
    pub files: u64,
    pub bytes_transferred: u64,
    /// Notes for the user about this host that are not failures (e.g. remote command may
    /// still be running after a timeout).
    pub notes: Vec<String>,
    /// The command ran on a connection held from an earlier command (no login this time).
    pub reused: bool,
    /// Why each earlier attempt failed, oldest first; empty when the first attempt was the
    /// last.
    #[serde(default)]
    pub retried: Vec<Failure>,
}

impl HostResult {
    /// Make every string that may have come from the server safe to show anywhere (the
    /// summary, block headers, reports): the exit-signal name, the failure message (remote
    /// file names, helper commands' stderr) and the notes. Called once, where a host's
    /// result is completed.
    pub fn clean_remote_text(&mut self) {
        use crate::text::clean_in_place;
        for s in self
            .signal
            .iter_mut()
            .chain(self.kex.iter_mut())
            .chain(self.cipher.iter_mut())
            .chain(self.auth_method.iter_mut())
            .chain(self.notes.iter_mut())
            .chain(
                self.failure
                    .iter_mut()
                    .chain(&mut self.retried)
                    .map(|f| &mut f.message),
            )
        {
            clean_in_place(s);
        }
    }

    /// [`HostResult::new`] made straight on the heap: a session's code keeps it there, not
    /// in a frame that every wait of a fiber stands on (`crate::ssh::fiber`).
    #[inline(never)]
    pub fn boxed(status: Status) -> Box<Self> {
        Box::new(Self::new(status))
    }

    /// A result with nothing but a status, to be filled in.
    pub fn new(status: Status) -> Self {
        HostResult {
            status,
            exit_code: None,
            signal: None,
            failure: None,
            timings: Timings::default(),
            attempts: 0,
            retry_wait: Duration::ZERO,
            auth_method: None,
            kex: None,
            cipher: None,
            bytes_stdout: 0,
            bytes_stderr: 0,
            files: 0,
            bytes_transferred: 0,
            notes: Vec::new(),
            reused: false,
            retried: Vec::new(),
        }
    }
}

/// What flows from the runner to the sinks. `host` is an index into `RunStarted::hosts`.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub enum Event {
    RunStarted {
        hosts: Vec<HostInfo>,
        command: String,
        parallel: usize,
        /// Wall-clock start of the run (for reports).
        started: std::time::SystemTime,
        /// Bytes the run will move over all hosts when known beforehand (a push).
        bytes_total: Option<u64>,
    },
    HostStarted {
        host: usize,
    },
    Output {
        host: usize,
        stream: Stream,
        #[serde(with = "base64_bytes")]
        data: Vec<u8>,
    },
    /// File transfer progress: `bytes` more moved for `host`.
    Transferred {
        host: usize,
        bytes: u64,
    },
    HostFinished {
        host: usize,
        result: Box<HostResult>,
    },
    /// The first host of batch `batch` (from 1, of `batches`) starts; the batch has `hosts`.
    BatchStarted {
        batch: u32,
        batches: u32,
        hosts: usize,
    },
    /// Batch `next - 1` is over: ask whether to start batch `next` (answered through
    /// [`crate::runner::Job::answers`]). `done` hosts ran, `failed` (indices) did not succeed,
    /// `remaining` are left.
    Question {
        next: u32,
        done: usize,
        failed: Vec<usize>,
        remaining: usize,
    },
    /// Something prun wants the user to know that is not tied to one host's output.
    Warning {
        message: String,
    },
    RunFinished {
        elapsed: Duration,
        /// Why the run ended early, if it did.
        stopped: Option<Stop>,
    },
}

/// Output bytes as base64 when events are serialized (the contract between a process that
/// runs hosts and one that prints them), so any bytes travel as text.
mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// A consumer of the run's events that writes somewhere: every `--output` printer and the
/// `--out-dir` writer. It sees events only; `flush` is called after each batch of them.
pub trait Printer {
    fn handle(&mut self, ev: &Event) -> std::io::Result<()>;
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why a run stopped before every host ran.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Ctrl-C, SIGTERM or SIGHUP.
    Interrupted,
    /// More hosts failed than `limit` (`--max-fail N`, `--fail-fast`) allows.
    Threshold { failed: usize, limit: String },
    /// A canary host failed (with `--yes`, nobody was asked).
    Canary { failed: usize },
    /// The question between batches was answered no.
    Declined,
}

impl Stop {
    /// One line for people (the summary's first line, the reports' `stopped`).
    pub fn describe(&self) -> String {
        match self {
            Stop::Interrupted => "interrupted (Ctrl-C/SIGTERM/SIGHUP)".into(),
            Stop::Threshold { failed, limit } => format!(
                "stopped: {failed} host(s) failed, more than {limit} allows; no more hosts were \
                 started"
            ),
            Stop::Canary { failed } => {
                format!("stopped: {failed} canary host(s) failed; the other hosts were not started")
            }
            Stop::Declined => "stopped: answered no; the other hosts were not started".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_json_losslessly() {
        use super::fixtures::{end, finished, out, start};
        let mut r = HostResult::new(Status::Timeout);
        r.failure = Some(Failure {
            phase: Phase::Read,
            kind: FailureKind::Timeout,
            message: "command did not finish".into(),
        });
        r.timings.set(Phase::Connect, Duration::from_micros(1234));
        r.notes.push("remote command stopped (SIGTERM)".into());
        r.reused = true;
        let events = [
            start(&["web01", "db1"]),
            Event::HostStarted { host: 1 },
            out(0, Stream::Stderr, &[0, 159, 146, 150, b'\n', 0xff]),
            Event::Transferred { host: 0, bytes: 42 },
            finished(0, Status::Ok),
            Event::HostFinished {
                host: 1,
                result: Box::new(r),
            },
            Event::Warning {
                message: "w".into(),
            },
            Event::RunFinished {
                elapsed: Duration::from_millis(7),
                stopped: Some(Stop::Interrupted),
            },
            end(),
        ];
        for ev in events {
            let text = serde_json::to_string(&ev).unwrap();
            assert!(!text.contains('\n'), "one line per event: {text}");
            let back: Event = serde_json::from_str(&text).unwrap();
            assert_eq!(format!("{back:?}"), format!("{ev:?}"));
        }
    }

    #[test]
    fn remote_text_in_results_is_made_harmless() {
        let mut r = HostResult::new(Status::Signal);
        r.signal = Some("KILL\n  web02  ok\x1b[2J".into());
        r.notes
            .push("remote command stopped (SIG\x1b]0;pwned\x07)".into());
        r.failure = Some(Failure {
            phase: Phase::Open,
            kind: FailureKind::Io,
            message: "cannot open remote /srv/\x1b[31mevil\r: permission denied".into(),
        });
        r.clean_remote_text();
        assert_eq!(r.signal.as_deref(), Some("KILL^J  web02  ok^[[2J"));
        assert_eq!(r.notes[0], "remote command stopped (SIG^[]0;pwned^G)");
        let m = &r.failure.as_ref().unwrap().message;
        assert!(!m.contains('\x1b') && !m.contains('\r'), "{m}");
    }
}

/// Synthetic events for the printers' unit tests (no ssh, no sshd).
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub(crate) fn start(names: &[&str]) -> Event {
        Event::RunStarted {
            hosts: names
                .iter()
                .map(|n| HostInfo {
                    name: n.to_string(),
                    address: "a".into(),
                    port: 22,
                    user: "u".into(),
                    batch: None,
                    group: None,
                })
                .collect(),
            command: "x".into(),
            parallel: 1,
            started: std::time::SystemTime::UNIX_EPOCH,
            bytes_total: None,
        }
    }

    pub(crate) fn out(host: usize, stream: Stream, s: &[u8]) -> Event {
        Event::Output {
            host,
            stream,
            data: s.to_vec(),
        }
    }

    /// Host `host` ended with `status` (and exit code 0 or 1 for ok / failed).
    pub(crate) fn finished(host: usize, status: Status) -> Event {
        let mut r = HostResult::new(status);
        r.exit_code = match status {
            Status::Ok => Some(0),
            Status::Failed => Some(1),
            _ => None,
        };
        r.timings.total = Duration::from_millis(5);
        Event::HostFinished {
            host,
            result: Box::new(r),
        }
    }

    pub(crate) fn end() -> Event {
        Event::RunFinished {
            elapsed: Duration::from_millis(10),
            stopped: None,
        }
    }
}
