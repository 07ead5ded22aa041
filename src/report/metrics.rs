//! `--metrics URL`: the run's per-host timings (and each `prun bench` level's medians), sent
//! at the end of the run (and of each level) as InfluxDB line protocol to an InfluxDB 1.x HTTP `/write` endpoint (`influx://HOST:PORT/DB`, through the
//! ureq crate, bounded in time, batched) or to a file (`file:PATH`), or as Graphite
//! plaintext (`graphite://HOST:PORT`: `PREFIX.HOST.PHASE MS TIMESTAMP`, the 2017 study's
//! path into InfluxDB). A sink that fails costs a warning, never the run. Built from the
//! [`Summary`]; never touches a host.
//!
//! Points: `prun_phase` (tags run, host, group, phase, status; field ms), `prun_host` (tags
//! run, host, group, status; fields total_ms, attempts, stdout_bytes, stderr_bytes and
//! exit_code when there is one), `prun_run` (tag run; fields hosts, wall_ms, command, one
//! count per status), `prun_bench` (a bench level). Every point of a run has its start time.

use super::Summary;
use crate::event::{Phase, Status};
use std::fmt::Write as _;
use std::time::Duration;

/// Lines per HTTP request (InfluxDB advises 5,000).
const BATCH: usize = 5000;
/// The whole time a sink may take, retries included.
const SINK_BUDGET: Duration = Duration::from_secs(10);

/// Where metrics go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// InfluxDB 1.x: `http://HOST:PORT/write?db=DB`.
    Influx { base: String, db: String },
    /// Line protocol appended to a file.
    File(std::path::PathBuf),
    /// Graphite plaintext over TCP to `HOST:PORT`.
    Graphite(String),
}

/// `influx://HOST:PORT/DB` (plain HTTP: this build has no TLS client), `graphite://HOST:PORT`
/// or `file:PATH`.
pub fn parse_sink(s: &str) -> Result<Sink, String> {
    if let Some(a) = s.strip_prefix("graphite://") {
        let a = a.trim_end_matches('/');
        if a.is_empty() || a.contains('/') {
            return Err(format!("'{s}': expected graphite://HOST:PORT"));
        }
        return Ok(Sink::Graphite(if a.contains(':') {
            a.to_string()
        } else {
            format!("{a}:2003")
        }));
    }
    if let Some(p) = s.strip_prefix("file:") {
        if p.is_empty() {
            return Err(format!("'{s}': file: needs a path (file:metrics.lp)"));
        }
        return Ok(Sink::File(p.into()));
    }
    let (scheme, rest) = if let Some(r) = s.strip_prefix("influx://") {
        ("http", r)
    } else {
        return Err(format!(
            "'{s}': expected influx://HOST:PORT/DB, graphite://HOST:PORT or file:PATH"
        ));
    };
    let (host, db) = rest
        .split_once('/')
        .filter(|(h, d)| !h.is_empty() && !d.is_empty() && !d.contains('/'))
        .ok_or_else(|| format!("'{s}': expected influx://HOST:PORT/DB"))?;
    Ok(Sink::Influx {
        base: format!("{scheme}://{host}"),
        db: db.to_string(),
    })
}

/// A tag key or value, or a measurement, escaped for line protocol.
fn tag(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ',' | '=' | ' ' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    if out.is_empty() { "-".into() } else { out }
}

/// A string field value.
fn string_field(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The run's points as line protocol, one line each.
pub fn lines(s: &Summary) -> Vec<String> {
    let ts = s
        .started
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let (run, _) = run_id(s.started);
    let mut out = Vec::new();
    for (h, r) in s.hosts.iter().zip(&s.results) {
        let Some(r) = r else { continue };
        let host = tag(&h.name);
        let group = tag(h.group.as_deref().unwrap_or("-"));
        let status = r.status.name();
        for p in Phase::ALL {
            if let Some(d) = r.timings.get(p) {
                out.push(format!(
                    "prun_phase,run={run},host={host},group={group},phase={},status={status} \
                     ms={} {ts}",
                    p.name(),
                    d.as_secs_f64() * 1000.0
                ));
            }
        }
        let mut line = format!(
            "prun_host,run={run},host={host},group={group},status={status} total_ms={},attempts={}i,\
             stdout_bytes={}i,stderr_bytes={}i",
            r.timings.total.as_secs_f64() * 1000.0,
            r.attempts,
            r.bytes_stdout,
            r.bytes_stderr
        );
        if let Some(c) = r.exit_code {
            let _ = write!(line, ",exit_code={c}i");
        }
        let _ = write!(line, " {ts}");
        out.push(line);
    }
    let statuses = s.statuses();
    let mut line = format!(
        "prun_run,run={run} hosts={}i,wall_ms={},command={}",
        s.hosts.len(),
        s.elapsed.as_secs_f64() * 1000.0,
        string_field(&s.command)
    );
    for st in Status::ALL {
        let _ = write!(
            line,
            ",{}={}i",
            st.name(),
            statuses.iter().filter(|x| **x == st).count()
        );
    }
    let _ = write!(line, " {ts}");
    out.push(line);
    out
}

/// One Graphite path segment: anything but letters, digits, `-` and `_` becomes `_`.
fn segment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The run's timings as Graphite plaintext: `PREFIX.HOST.PHASE MS SECONDS`, and
/// `PREFIX.HOST.total`.
pub fn graphite_lines(s: &Summary, prefix: &str) -> Vec<String> {
    let ts = s
        .started
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let prefix: Vec<String> = prefix.split('.').map(segment).collect();
    let prefix = prefix.join(".");
    let mut out = Vec::new();
    for (h, r) in s.hosts.iter().zip(&s.results) {
        let Some(r) = r else { continue };
        let host = segment(&h.name);
        for p in Phase::ALL {
            if let Some(d) = r.timings.get(p) {
                out.push(format!(
                    "{prefix}.{host}.{} {} {ts}",
                    p.name(),
                    d.as_secs_f64() * 1000.0
                ));
            }
        }
        out.push(format!(
            "{prefix}.{host}.total {} {ts}",
            r.timings.total.as_secs_f64() * 1000.0
        ));
    }
    out
}

/// A run id and timestamp (ns) for the points of a run that started at `started`.
pub fn run_id(started: std::time::SystemTime) -> (String, u128) {
    (
        tag(&format!(
            "{}-{}",
            humantime::format_rfc3339_seconds(started),
            std::process::id()
        )),
        started
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    )
}

/// One `prun bench` level: `prun_bench` points (tags run, engine, level, op; fields p50_ms,
/// p90_ms, sessions, ok, wall_s) as line protocol, and the same as Graphite plaintext
/// (`PREFIX.bench.ENGINE.LEVEL.OP.p50` and `.p90`).
pub fn bench_lines(
    l: &super::bench::Level,
    run: &str,
    ts: u128,
    prefix: &str,
) -> (Vec<String>, Vec<String>) {
    let (mut lp, mut gr) = (Vec::new(), Vec::new());
    let secs = ts / 1_000_000_000;
    let prefix: Vec<String> = prefix.split('.').map(segment).collect();
    let prefix = prefix.join(".");
    for (op, o) in super::bench::OPS.iter().zip(&l.ops) {
        let Some((p50, p90)) = o else { continue };
        let (p50, p90) = (p50.as_secs_f64() * 1000.0, p90.as_secs_f64() * 1000.0);
        lp.push(format!(
            "prun_bench,run={run},engine={},level={},op={op} p50_ms={p50},p90_ms={p90},\
             sessions={}i,ok={}i,wall_s={} {ts}",
            l.engine,
            l.level,
            l.sessions,
            l.ok,
            l.wall.as_secs_f64()
        ));
        for (q, v) in [("p50", p50), ("p90", p90)] {
            gr.push(format!(
                "{prefix}.bench.{}.{}.{op}.{q} {v} {secs}",
                l.engine, l.level
            ));
        }
    }
    (lp, gr)
}

/// Send the run's metrics to `sink`; `Err` says why not (a warning for the user).
pub fn send_summary(sink: &Sink, s: &Summary, prefix: &str) -> Result<(), String> {
    deliver(sink, &lines(s), &graphite_lines(s, prefix))
}

/// Send points to `sink`: `lp` (line protocol) to InfluxDB and files, `graphite` to Graphite.
pub fn deliver(sink: &Sink, lp: &[String], graphite: &[String]) -> Result<(), String> {
    match sink {
        Sink::Graphite(addr) => {
            use std::io::Write;
            use std::net::ToSocketAddrs;
            let mut text = graphite.join("\n");
            text.push('\n');
            let a = addr
                .to_socket_addrs()
                .map_err(|e| format!("graphite://{addr}: {e}"))?
                .next()
                .ok_or_else(|| format!("graphite://{addr}: no address"))?;
            let mut c = std::net::TcpStream::connect_timeout(&a, Duration::from_secs(5))
                .map_err(|e| format!("graphite://{addr}: {e}"))?;
            c.set_write_timeout(Some(SINK_BUDGET)).ok();
            c.write_all(text.as_bytes())
                .map_err(|e| format!("graphite://{addr}: {e}"))
        }
        other => send(other, lp),
    }
}

/// Send `lines` (line protocol) to `sink`; `Err` says why not.
pub fn send(sink: &Sink, lines: &[String]) -> Result<(), String> {
    match sink {
        Sink::Graphite(_) => Err("graphite takes its own format (send_summary)".into()),
        Sink::File(path) => {
            use std::io::Write;
            let mut text = lines.join("\n");
            text.push('\n');
            // appended: a file collects runs (and bench levels) like a log
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(|e| format!("{}: {e}", path.display()))
        }
        Sink::Influx { base, db } => {
            let start = std::time::Instant::now();
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(5)))
                .http_status_as_error(false)
                .build()
                .into();
            let url = format!("{base}/write?db={db}&precision=ns");
            for chunk in lines.chunks(BATCH) {
                let body = chunk.join("\n");
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let why = match agent
                        .post(&url)
                        .header("Content-Type", "text/plain; charset=utf-8")
                        .send(body.as_str())
                    {
                        Ok(resp) if resp.status().is_success() => break,
                        Ok(mut resp) => {
                            let text = resp.body_mut().read_to_string().unwrap_or_default();
                            let msg = format!("{url}: HTTP {}: {}", resp.status(), text.trim());
                            // a client error will not go away by retrying
                            if resp.status().is_client_error() {
                                return Err(msg);
                            }
                            msg
                        }
                        Err(e) => format!("{url}: {e}"),
                    };
                    if attempt >= 3 || start.elapsed() + Duration::from_secs(1) > SINK_BUDGET {
                        return Err(why);
                    }
                    std::thread::sleep(Duration::from_millis(300 * attempt));
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::event::fixtures::{end, finished, start};

    #[test]
    fn sinks_parse() {
        assert_eq!(
            parse_sink("influx://127.0.0.1:8086/prun").unwrap(),
            Sink::Influx {
                base: "http://127.0.0.1:8086".into(),
                db: "prun".into()
            }
        );
        assert!(matches!(parse_sink("file:/tmp/x.lp"), Ok(Sink::File(_))));
        assert!(parse_sink("influx://host").is_err());
        assert_eq!(
            parse_sink("graphite://127.0.0.1").unwrap(),
            Sink::Graphite("127.0.0.1:2003".into())
        );
        assert!(parse_sink("carbon://x").is_err());
    }

    #[test]
    fn names_with_spaces_commas_and_equals_survive() {
        let mut s = Summary::default();
        s.handle(&start(&["web 1,a=b"]));
        s.handle(&finished(0, Status::Ok));
        s.handle(&end());
        let l = lines(&s);
        assert!(
            l.iter()
                .any(|x| x.starts_with("prun_host,run=")
                    && x.contains(",host=web\\ 1\\,a\\=b,group=-,")),
            "{l:?}"
        );
        assert!(l.last().unwrap().contains("command=\"x\""), "{l:?}");
        let g = graphite_lines(&s, "ops.prun");
        assert!(
            g.iter().any(|x| x.starts_with("ops.prun.web_1_a_b.total ")),
            "{g:?}"
        );
        let _ = Event::Warning {
            message: String::new(),
        };
    }
}
