//! `--report FILE`: the per-host timing report, as JSON (versioned, with a run header and
//! summary statistics) or CSV (one row per host). Durations are milliseconds as decimal
//! numbers with microsecond precision. Built from what the summary collected.

use super::stats::spread;
use super::summary::Summary;
use crate::event::{HostInfo, HostResult, Phase, Status};
use serde::Serialize;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

/// Schema version of the JSON report; bump on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Report file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    /// The format a file name asks for (`.json`, `.csv`), if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// Columns of the per-phase durations, in order: the phases, then `retry_wait` and `total`.
pub const TIME_COLUMNS: [&str; 13] = [
    "connect_ms",
    "handshake_ms",
    "hostkey_ms",
    "auth_ms",
    "channel_open_ms",
    "exec_ms",
    "first_byte_ms",
    "read_ms",
    "open_ms",
    "transfer_ms",
    "close_ms",
    "retry_wait_ms",
    "total_ms",
];

#[derive(Serialize)]
struct HostRecord<'a> {
    name: &'a str,
    address: &'a str,
    port: u16,
    user: &'a str,
    status: &'static str,
    exit_code: Option<i32>,
    signal: Option<&'a str>,
    failure_phase: Option<&'static str>,
    failure_kind: Option<&'static str>,
    failure_message: Option<&'a str>,
    attempts: u32,
    auth_method: Option<&'a str>,
    kex: Option<&'a str>,
    cipher: Option<&'a str>,
    stdout_bytes: u64,
    stderr_bytes: u64,
    /// File transfers (`prun push`/`pull`): files and bytes moved, and bytes per second of
    /// the transfer phase.
    files: u64,
    transfer_bytes: u64,
    transfer_bytes_per_s: Option<f64>,
    /// Phase name → milliseconds; absent when the phase was not reached.
    timings_ms: indexmap::IndexMap<&'static str, f64>,
    retry_wait_ms: f64,
    total_ms: f64,
    notes: &'a [String],
    /// Why each earlier attempt failed, oldest first; present only when there were any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    retried: Vec<String>,
    /// Present (true) only when the command ran on a held login (`prun shell`, `--persist`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    reused: bool,
    /// The host's batch (from 1); present only when the run had batches.
    #[serde(skip_serializing_if = "Option::is_none")]
    batch: Option<u32>,
}

fn record<'a>(h: &'a HostInfo, r: Option<&'a HostResult>) -> HostRecord<'a> {
    let empty: &'a [String] = &[];
    let Some(r) = r else {
        return HostRecord {
            name: &h.name,
            address: &h.address,
            port: h.port,
            user: &h.user,
            status: Status::Cancelled.name(),
            exit_code: None,
            signal: None,
            failure_phase: None,
            failure_kind: Some("cancelled"),
            failure_message: Some("not started"),
            attempts: 0,
            auth_method: None,
            kex: None,
            cipher: None,
            stdout_bytes: 0,
            stderr_bytes: 0,
            files: 0,
            transfer_bytes: 0,
            transfer_bytes_per_s: None,
            timings_ms: Default::default(),
            retry_wait_ms: 0.0,
            total_ms: 0.0,
            notes: empty,
            retried: Vec::new(),
            reused: false,
            batch: h.batch,
        };
    };
    HostRecord {
        name: &h.name,
        address: &h.address,
        port: h.port,
        user: &h.user,
        status: r.status.name(),
        exit_code: r.exit_code,
        signal: r.signal.as_deref(),
        failure_phase: r.failure.as_ref().map(|f| f.phase.name()),
        failure_kind: r.failure.as_ref().map(|f| f.kind.name()),
        failure_message: r.failure.as_ref().map(|f| f.message.as_str()),
        attempts: r.attempts,
        auth_method: r.auth_method.as_deref(),
        kex: r.kex.as_deref(),
        cipher: r.cipher.as_deref(),
        stdout_bytes: r.bytes_stdout,
        stderr_bytes: r.bytes_stderr,
        files: r.files,
        transfer_bytes: r.bytes_transferred,
        transfer_bytes_per_s: r
            .timings
            .get(Phase::Transfer)
            .filter(|d| !d.is_zero() && r.bytes_transferred > 0)
            .map(|d| (r.bytes_transferred as f64 / d.as_secs_f64()).round()),
        timings_ms: Phase::ALL
            .iter()
            .filter_map(|p| r.timings.get(*p).map(|d| (p.name(), ms(d))))
            .collect(),
        retry_wait_ms: ms(r.retry_wait),
        total_ms: ms(r.timings.total),
        notes: &r.notes,
        retried: r.retried.iter().map(ToString::to_string).collect(),
        reused: r.reused,
        batch: h.batch,
    }
}

#[derive(Serialize)]
struct PhaseStats {
    hosts: usize,
    min_ms: f64,
    p50_ms: f64,
    p95_ms: f64,
    max_ms: f64,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    prun_version: &'static str,
    command: &'a str,
    started: String,
    parallel: usize,
    elapsed_ms: f64,
    hosts_total: usize,
    counts: std::collections::BTreeMap<&'static str, usize>,
    /// Phase name (and "total") → statistics over the hosts that reached it.
    phases: indexmap::IndexMap<&'static str, Option<PhaseStats>>,
    /// Why the run stopped before every host ran, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped: Option<String>,
    hosts: Vec<HostRecord<'a>>,
}

fn phase_stats(s: &Summary) -> indexmap::IndexMap<&'static str, Option<PhaseStats>> {
    let finished = || s.results.iter().flatten();
    let stats = |v: Vec<Duration>| {
        spread(v).map(|sp| PhaseStats {
            hosts: sp.count,
            min_ms: ms(sp.min),
            p50_ms: ms(sp.p50),
            p95_ms: ms(sp.p95),
            max_ms: ms(sp.max),
        })
    };
    Phase::ALL
        .iter()
        .map(|p| {
            (
                p.name(),
                stats(finished().filter_map(|r| r.timings.get(*p)).collect()),
            )
        })
        .chain(std::iter::once((
            "total",
            stats(finished().map(|r| r.timings.total).collect()),
        )))
        .collect()
}

/// One host's record as a JSON object (for `--output json`'s `host_end` events).
pub fn host_json(info: &HostInfo, result: &HostResult) -> serde_json::Value {
    serde_json::to_value(record(info, Some(result))).unwrap_or(serde_json::Value::Null)
}

/// The run's counts and per-phase statistics as a JSON object (for `--output json`).
pub fn summary_json(s: &Summary) -> serde_json::Value {
    let mut counts = std::collections::BTreeMap::new();
    for st in s.statuses() {
        *counts.entry(st.name()).or_insert(0usize) += 1;
    }
    serde_json::json!({
        "hosts_total": s.hosts.len(),
        "elapsed_ms": ms(s.elapsed),
        "counts": counts,
        "phases": phase_stats(s),
        "stopped": s.stopped.as_ref().map(|st| st.describe()),
    })
}

/// Write the JSON report.
pub fn write_json(s: &Summary, w: &mut dyn Write) -> io::Result<()> {
    let mut counts = std::collections::BTreeMap::new();
    for st in s.statuses() {
        *counts.entry(st.name()).or_insert(0) += 1;
    }
    let report = JsonReport {
        version: SCHEMA_VERSION,
        prun_version: env!("CARGO_PKG_VERSION"),
        command: &s.command,
        started: humantime::format_rfc3339_micros(s.started).to_string(),
        parallel: s.parallel,
        elapsed_ms: ms(s.elapsed),
        hosts_total: s.hosts.len(),
        counts,
        phases: phase_stats(s),
        stopped: s.stopped.as_ref().map(|st| st.describe()),
        hosts: s
            .hosts
            .iter()
            .zip(&s.results)
            .map(|(h, r)| record(h, r.as_ref()))
            .collect(),
    };
    serde_json::to_writer_pretty(&mut *w, &report).map_err(io::Error::other)?;
    writeln!(w)
}

/// Write the CSV report: a header and one row per host.
pub fn write_csv(s: &Summary, w: &mut dyn Write) -> io::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    let mut header = vec![
        "name",
        "address",
        "port",
        "user",
        "status",
        "exit_code",
        "signal",
        "failure_phase",
        "failure_kind",
        "failure_message",
        "attempts",
        "auth_method",
        "kex",
        "cipher",
        "stdout_bytes",
        "stderr_bytes",
        "files",
        "transfer_bytes",
        "transfer_bytes_per_s",
    ];
    header.extend(TIME_COLUMNS);
    header.push("reused");
    header.push("batch");
    header.push("retried");
    out.write_record(&header).map_err(io::Error::other)?;
    let opt = |v: Option<String>| v.unwrap_or_default();
    for (h, r) in s.hosts.iter().zip(&s.results) {
        let rec = record(h, r.as_ref());
        let mut row = vec![
            rec.name.to_string(),
            rec.address.to_string(),
            rec.port.to_string(),
            rec.user.to_string(),
            rec.status.to_string(),
            opt(rec.exit_code.map(|c| c.to_string())),
            opt(rec.signal.map(str::to_string)),
            opt(rec.failure_phase.map(str::to_string)),
            opt(rec.failure_kind.map(str::to_string)),
            opt(rec.failure_message.map(str::to_string)),
            rec.attempts.to_string(),
            opt(rec.auth_method.map(str::to_string)),
            opt(rec.kex.map(str::to_string)),
            opt(rec.cipher.map(str::to_string)),
            rec.stdout_bytes.to_string(),
            rec.stderr_bytes.to_string(),
            rec.files.to_string(),
            rec.transfer_bytes.to_string(),
            opt(rec.transfer_bytes_per_s.map(|v| format!("{v:.0}"))),
        ];
        for p in Phase::ALL {
            row.push(opt(rec.timings_ms.get(p.name()).map(|v| format!("{v:.3}"))));
        }
        row.push(format!("{:.3}", rec.retry_wait_ms));
        row.push(format!("{:.3}", rec.total_ms));
        row.push(rec.reused.to_string());
        row.push(opt(rec.batch.map(|b| b.to_string())));
        row.push(rec.retried.join("; "));
        out.write_record(&row).map_err(io::Error::other)?;
    }
    out.flush()
}

/// Write the report to `path` in `format` (atomically: a temporary file renamed into place).
pub fn write_file(s: &Summary, path: &Path, format: Format) -> io::Result<()> {
    // exclusive temporary file beside the report, renamed over it when complete
    let mut tmp = crate::paths::temp_beside(path)?;
    {
        let mut f = io::BufWriter::new(tmp.as_file_mut());
        match format {
            Format::Json => write_json(s, &mut f)?,
            Format::Csv => write_csv(s, &mut f)?,
        }
        f.flush()?;
    }
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Failure, FailureKind};

    fn summary() -> Summary {
        let mut s = Summary::default();
        s.handle(&Event::RunStarted {
            hosts: vec![
                HostInfo {
                    name: "a".into(),
                    address: "10.0.0.1".into(),
                    port: 22,
                    user: "u".into(),
                    batch: None,
                    group: None,
                },
                HostInfo {
                    name: "b,\"x\"".into(),
                    address: "10.0.0.2".into(),
                    port: 2222,
                    user: "u".into(),
                    batch: Some(2),
                    group: None,
                },
            ],
            command: "uptime".into(),
            parallel: 2,
            started: std::time::SystemTime::UNIX_EPOCH,
            bytes_total: None,
        });
        let mut ok = HostResult::new(Status::Ok);
        ok.exit_code = Some(0);
        ok.attempts = 1;
        ok.timings.set(Phase::Connect, Duration::from_micros(1500));
        ok.timings.total = Duration::from_micros(1500);
        s.handle(&Event::HostFinished {
            host: 0,
            result: Box::new(ok),
        });
        let mut err = HostResult::new(Status::Error);
        err.attempts = 3;
        err.failure = Some(Failure {
            phase: Phase::Connect,
            kind: FailureKind::Refused,
            message: "connection refused".into(),
        });
        s.handle(&Event::HostFinished {
            host: 1,
            result: Box::new(err),
        });
        s
    }

    #[test]
    fn json_has_header_stats_and_hosts() {
        let mut out = Vec::new();
        write_json(&summary(), &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["command"], "uptime");
        assert_eq!(v["started"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(v["counts"]["ok"], 1);
        assert_eq!(v["counts"]["error"], 1);
        assert_eq!(v["hosts"][0]["timings_ms"]["connect"], 1.5);
        assert_eq!(v["hosts"][1]["failure_kind"], "refused");
        assert_eq!(v["hosts"][1]["attempts"], 3);
        assert_eq!(v["phases"]["connect"]["hosts"], 1);
        assert!(v["phases"]["handshake"].is_null());
        let keys: Vec<&String> = v["hosts"][0]["timings_ms"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, ["connect"]);
    }

    #[test]
    fn csv_quotes_and_has_one_row_per_host() {
        let mut out = Vec::new();
        write_csv(&summary(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("name,address,port,user,status,exit_code"));
        assert!(lines[0].ends_with("retry_wait_ms,total_ms,reused,batch,retried"));
        assert!(lines[1].starts_with("a,10.0.0.1,22,u,ok,0,,,,,1,"));
        assert!(lines[1].ends_with(",false,,"), "{}", lines[1]);
        assert!(lines[2].ends_with(",false,2,"), "{}", lines[2]);
        assert!(lines[2].starts_with("\"b,\"\"x\"\"\",10.0.0.2,2222,u,error,,,connect,refused,"));
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(Format::from_path(Path::new("r.JSON")), Some(Format::Json));
        assert_eq!(Format::from_path(Path::new("r.csv")), Some(Format::Csv));
        assert_eq!(Format::from_path(Path::new("r.txt")), None);
    }
}
