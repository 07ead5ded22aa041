//! The end-of-run summary on stderr: counts by status, min/p50/p95/max of each phase, the
//! slowest hosts with their slowest step, and every host that did not succeed with the phase
//! and a one-line reason. Built from events; rendered as text.

use super::stats::spread;
use crate::event::{Event, FailureKind, HostInfo, HostResult, Phase, Status, Stop};
use crate::text::fmt_duration;
use std::fmt::Write;
use std::time::Duration;

/// How many non-ok hosts are listed one per line before the rest are counted.
const MAX_LISTED: usize = 50;
/// How many slowest hosts are shown.
const SLOWEST: usize = 5;

/// Collects host results from the event stream (also the source of the reports).
pub struct Summary {
    pub(crate) hosts: Vec<HostInfo>,
    pub(crate) results: Vec<Option<HostResult>>,
    pub(crate) elapsed: Duration,
    pub(crate) command: String,
    pub(crate) parallel: usize,
    pub(crate) started: std::time::SystemTime,
    /// Why the run ended early, if it did.
    pub stopped: Option<Stop>,
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            hosts: Vec::new(),
            results: Vec::new(),
            elapsed: Duration::ZERO,
            command: String::new(),
            parallel: 0,
            started: std::time::SystemTime::now(),
            stopped: None,
        }
    }
}

impl Summary {
    pub fn handle(&mut self, ev: &Event) {
        match ev {
            Event::RunStarted {
                hosts,
                command,
                parallel,
                started,
                ..
            } => {
                self.hosts = hosts.clone();
                self.results = vec![None; hosts.len()];
                self.command = command.clone();
                self.parallel = *parallel;
                self.started = *started;
            }
            Event::HostFinished { host, result } => self.results[*host] = Some((**result).clone()),
            Event::RunFinished { elapsed, stopped } => {
                self.elapsed = *elapsed;
                self.stopped = stopped.clone();
            }
            _ => {}
        }
    }

    /// Status of every host; hosts without a result count as cancelled.
    pub fn statuses(&self) -> Vec<Status> {
        self.results
            .iter()
            .map(|r| r.as_ref().map_or(Status::Cancelled, |r| r.status))
            .collect()
    }

    /// Names of the hosts that did not succeed (for `--failed-hosts`), in inventory order.
    pub fn not_ok_names(&self) -> Vec<&str> {
        self.hosts
            .iter()
            .zip(self.statuses())
            .filter(|(_, st)| *st != Status::Ok)
            .map(|(h, _)| h.name.as_str())
            .collect()
    }

    fn finished(&self) -> impl Iterator<Item = (&HostInfo, &HostResult)> {
        self.hosts
            .iter()
            .zip(&self.results)
            .filter_map(|(h, r)| r.as_ref().map(|r| (h, r)))
            // hosts never started have no timings to show
            .filter(|(_, r)| r.status != Status::Skipped)
    }

    /// The summary text, ending with a newline.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let n = self.hosts.len();
        let statuses = self.statuses();
        let counts: Vec<String> = Status::ALL
            .iter()
            .filter_map(|st| {
                let c = statuses.iter().filter(|x| *x == st).count();
                (c > 0).then(|| format!("{c} {st}"))
            })
            .collect();
        let retried = self.finished().filter(|(_, r)| r.attempts > 1).count();
        let why = retry_reasons(self.finished().map(|(_, r)| r));
        let reused = self.finished().filter(|(_, r)| r.reused).count();
        let _ = writeln!(
            s,
            "prun: {n} host{} in {}: {}{}{}",
            if n == 1 { "" } else { "s" },
            fmt_duration(self.elapsed),
            counts.join(", "),
            if retried > 0 {
                format!(" ({retried} needed more than one attempt{why})")
            } else {
                String::new()
            },
            if reused > 0 {
                format!(" ({reused} on held logins)")
            } else {
                String::new()
            }
        );

        // phase table
        let rows: Vec<(&str, Option<super::stats::Spread>)> = Phase::ALL
            .iter()
            .map(|p| {
                let v: Vec<Duration> = self
                    .finished()
                    .filter_map(|(_, r)| r.timings.get(*p))
                    .collect();
                (p.name(), spread(v))
            })
            .chain(std::iter::once((
                "total",
                spread(self.finished().map(|(_, r)| r.timings.total).collect()),
            )))
            .collect();
        if rows.iter().any(|(_, sp)| sp.is_some()) {
            let _ = writeln!(
                s,
                "  {:<13}{:>6} {:>10} {:>10} {:>10} {:>10}",
                "phase", "hosts", "min", "p50", "p95", "max"
            );
            for (name, sp) in rows {
                if let Some(sp) = sp {
                    let _ = writeln!(
                        s,
                        "  {:<13}{:>6} {:>10} {:>10} {:>10} {:>10}",
                        name,
                        sp.count,
                        fmt_duration(sp.min),
                        fmt_duration(sp.p50),
                        fmt_duration(sp.p95),
                        fmt_duration(sp.max)
                    );
                }
            }
        }

        // slowest hosts
        let mut by_total: Vec<(&HostInfo, &HostResult)> = self.finished().collect();
        if by_total.len() > 1 {
            by_total.sort_by_key(|h| std::cmp::Reverse(h.1.timings.total));
            let width = by_total
                .iter()
                .take(SLOWEST)
                .map(|(h, _)| h.name.len())
                .max()
                .unwrap_or(0);
            let _ = writeln!(s, "  slowest:");
            for (h, r) in by_total.iter().take(SLOWEST) {
                // max_by_key keeps the last of equals: scan backwards to report the earliest.
                let worst = Phase::ALL
                    .iter()
                    .rev()
                    .filter(|p| **p != Phase::FirstByte)
                    .filter_map(|p| r.timings.get(*p).map(|d| (*p, d)))
                    .max_by_key(|(_, d)| *d);
                let detail = worst
                    .map(|(p, d)| format!(" (most in {p}: {})", fmt_duration(d)))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "    {:<width$}  {:>9}{detail}",
                    h.name,
                    fmt_duration(r.timings.total)
                );
            }
        }

        // batches: counts per batch (only the batches that were not all ok, past ten)
        let nbatches = self.hosts.iter().filter_map(|h| h.batch).max().unwrap_or(0);
        if nbatches > 1 {
            let mut parts = Vec::new();
            for b in 1..=nbatches {
                let in_batch: Vec<Status> = self
                    .hosts
                    .iter()
                    .zip(&statuses)
                    .filter(|(h, _)| h.batch == Some(b))
                    .map(|(_, st)| *st)
                    .collect();
                if nbatches > 10 && in_batch.iter().all(|st| *st == Status::Ok) {
                    continue;
                }
                let counts: Vec<String> = Status::ALL
                    .iter()
                    .filter_map(|st| {
                        let c = in_batch.iter().filter(|x| *x == st).count();
                        (c > 0).then(|| format!("{c} {st}"))
                    })
                    .collect();
                parts.push(format!("{b}: {}", counts.join(", ")));
            }
            let shown = if nbatches > 10 {
                format!(
                    " (those not all ok){}",
                    if parts.is_empty() { ": none" } else { "" }
                )
            } else {
                String::new()
            };
            let _ = writeln!(s, "  batches: {nbatches}{shown}");
            for p in parts {
                let _ = writeln!(s, "    {p}");
            }
        }

        // hosts that did not succeed (and those never started), and notes
        let bad: Vec<(usize, Status)> = statuses
            .iter()
            .enumerate()
            .filter(|(_, st)| **st != Status::Ok && **st != Status::Skipped)
            .map(|(i, st)| (i, *st))
            .collect();
        let skipped: Vec<&str> = self
            .hosts
            .iter()
            .zip(&statuses)
            .filter(|(_, st)| **st == Status::Skipped)
            .map(|(h, _)| h.name.as_str())
            .collect();
        if !bad.is_empty() {
            let width = bad
                .iter()
                .take(MAX_LISTED)
                .map(|(i, _)| self.hosts[*i].name.len())
                .max()
                .unwrap_or(0);
            let _ = writeln!(s, "  not ok:");
            for (i, st) in bad.iter().take(MAX_LISTED) {
                let name = &self.hosts[*i].name;
                let why = match &self.results[*i] {
                    None => "not started (run cancelled)".to_string(),
                    Some(r) => describe(r),
                };
                let batch = match self.hosts[*i].batch {
                    Some(b) if nbatches > 1 => format!("[batch {b}] "),
                    _ => String::new(),
                };
                let _ = writeln!(s, "    {name:<width$}  {:<9} {batch}{why}", st.name());
            }
            if bad.len() > MAX_LISTED {
                let _ = writeln!(s, "    … and {} more", bad.len() - MAX_LISTED);
            }
        }
        if !skipped.is_empty() {
            let _ = writeln!(
                s,
                "  not started ({}): {}{}",
                skipped.len(),
                skipped
                    .iter()
                    .take(MAX_LISTED)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
                if skipped.len() > MAX_LISTED {
                    format!(", … and {} more", skipped.len() - MAX_LISTED)
                } else {
                    String::new()
                }
            );
        }
        let notes: Vec<String> = self
            .finished()
            .flat_map(|(h, r)| r.notes.iter().map(move |n| format!("    {}: {n}", h.name)))
            .collect();
        if !notes.is_empty() {
            let _ = writeln!(s, "  notes:");
            for n in notes.iter().take(MAX_LISTED) {
                let _ = writeln!(s, "{n}");
            }
            if notes.len() > MAX_LISTED {
                let _ = writeln!(s, "    … and {} more", notes.len() - MAX_LISTED);
            }
        }
        s
    }
}

/// One line on why a host is not ok.
fn describe(r: &HostResult) -> String {
    if let Some(f) = &r.failure {
        let attempts = if r.attempts > 1 {
            format!(" (after {} attempts)", r.attempts)
        } else {
            String::new()
        };
        return format!("{f}{attempts}");
    }
    if let Some(sig) = &r.signal {
        return format!("killed by signal {sig}");
    }
    match r.exit_code {
        Some(c) => format!("exit {c}"),
        None => r.status.name().to_string(),
    }
}

/// What made hosts try again, for the summary line: ": 30 handshake io, 4 connect timeout"
/// (the phase and kind of each retried host's first failed attempt, the three commonest),
/// or nothing when no result says.
fn retry_reasons<'a>(results: impl Iterator<Item = &'a HostResult>) -> String {
    let mut counts: Vec<((Phase, FailureKind), usize)> = Vec::new();
    for r in results {
        let Some(first) = r.retried.first() else {
            continue;
        };
        let what = (first.phase, first.kind);
        match counts.iter_mut().find(|(w, _)| *w == what) {
            Some((_, n)) => *n += 1,
            None => counts.push((what, 1)),
        }
    }
    let name = |(p, k): (Phase, FailureKind)| (p.name(), k.name());
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(name(a.0).cmp(&name(b.0))));
    let shown: Vec<String> = counts
        .iter()
        .take(3)
        .map(|((phase, kind), n)| format!("{n} {phase} {kind}"))
        .collect();
    if shown.is_empty() {
        return String::new();
    }
    let more = if counts.len() > 3 { ", …" } else { "" };
    format!(": {}{more}", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Failure, FailureKind};

    #[test]
    fn retry_reasons_name_the_commonest_first_failures() {
        let f = |phase, kind| Failure {
            phase,
            kind,
            message: "m".into(),
        };
        let with = |why: &[Failure]| {
            let mut r = HostResult::new(Status::Ok);
            r.retried = why.to_vec();
            r
        };
        let connect = f(Phase::Connect, FailureKind::Timeout);
        let kex_io = f(Phase::Handshake, FailureKind::Io);
        let rs = [
            with(std::slice::from_ref(&connect)),
            with(&[kex_io.clone(), connect.clone()]),
            with(std::slice::from_ref(&kex_io)),
            with(&[]),
        ];
        assert_eq!(
            retry_reasons(rs.iter()),
            ": 2 handshake io, 1 connect timeout"
        );
        let more = [
            with(&[f(Phase::Auth, FailureKind::Timeout)]),
            with(&[f(Phase::ChannelOpen, FailureKind::Channel)]),
            with(std::slice::from_ref(&connect)),
            with(std::slice::from_ref(&kex_io)),
        ];
        assert_eq!(
            retry_reasons(more.iter()),
            ": 1 auth timeout, 1 channel_open channel, 1 connect timeout, …"
        );
        assert_eq!(retry_reasons(rs[3..].iter()), "");
    }

    fn info(n: &str) -> HostInfo {
        HostInfo {
            name: n.into(),
            address: "127.0.0.1".into(),
            port: 22,
            user: "u".into(),
            batch: None,
            group: None,
        }
    }

    fn ok(total_ms: u64) -> HostResult {
        let mut r = HostResult::new(Status::Ok);
        r.exit_code = Some(0);
        for p in Phase::ALL {
            r.timings.set(p, Duration::from_millis(total_ms / 10));
        }
        r.timings.total = Duration::from_millis(total_ms);
        r
    }

    #[test]
    fn summary_counts_phases_slowest_and_failures() {
        let mut s = Summary::default();
        s.handle(&Event::RunStarted {
            hosts: vec![info("a"), info("bb"), info("c"), info("d")],
            command: "true".into(),
            parallel: 4,
            started: std::time::SystemTime::now(),
            bytes_total: None,
        });
        s.handle(&Event::HostFinished {
            host: 0,
            result: Box::new(ok(100)),
        });
        let mut failed = ok(300);
        failed.status = Status::Failed;
        failed.exit_code = Some(3);
        s.handle(&Event::HostFinished {
            host: 1,
            result: Box::new(failed),
        });
        let mut err = HostResult::new(Status::Error);
        err.failure = Some(Failure {
            phase: Phase::Connect,
            kind: FailureKind::Refused,
            message: "connection refused by 127.0.0.1:1".into(),
        });
        err.timings.set(Phase::Connect, Duration::from_millis(1));
        err.timings.total = Duration::from_millis(1);
        s.handle(&Event::HostFinished {
            host: 2,
            result: Box::new(err),
        });
        s.handle(&Event::RunFinished {
            elapsed: Duration::from_millis(1500),
            stopped: None,
        });

        let text = s.render();
        assert!(
            text.starts_with("prun: 4 hosts in 1.50s: 1 ok, 1 failed, 1 error, 1 cancelled\n"),
            "{text}"
        );
        assert!(text.contains("  connect           3 "), "{text}");
        assert!(text.contains("  auth              2 "), "{text}");
        assert!(
            text.contains("    bb    300.0ms (most in connect: 30.0ms)"),
            "{text}"
        );
        assert!(text.contains("    bb  failed    exit 3"), "{text}");
        assert!(
            text.contains("    c   error     connect refused: connection refused by 127.0.0.1:1"),
            "{text}"
        );
        assert!(text.contains("    d   cancelled not started"), "{text}");
        assert_eq!(
            s.statuses(),
            vec![Status::Ok, Status::Failed, Status::Error, Status::Cancelled]
        );
    }
}
