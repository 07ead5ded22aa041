//! `--metrics URL`: the run's per-host timings (and each `prun bench` level's medians), sent
//! at the end of the run (and of each level) as InfluxDB line protocol to an InfluxDB 1.x
//! HTTP(S) `/write` endpoint (`influx[+https]://HOST:PORT/DB`) or InfluxDB 2.x's
//! `/api/v2/write` (`influx2[+https]://HOST:PORT/ORG/BUCKET`), through the ureq crate
//! (system OpenSSL via native-tls, bounded in time, batched; credentials from the
//! environment, never from the URL), or to a file (`file:PATH`), or as Graphite
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
    /// InfluxDB 1.x (or 2.x's 1.x-compatible API): `BASE/write?db=DB`, `BASE` being
    /// `http(s)://HOST:PORT`.
    Influx { base: String, db: String },
    /// InfluxDB 2.x: `BASE/api/v2/write?org=ORG&bucket=BUCKET`, with `PRUN_INFLUX_TOKEN`.
    Influx2 {
        base: String,
        org: String,
        bucket: String,
    },
    /// Line protocol appended to a file.
    File(std::path::PathBuf),
    /// Graphite plaintext over TCP to `HOST:PORT`.
    Graphite(String),
    /// A URL with credentials in it: refused by [`check_sink`] before the run, with a
    /// message that does not repeat them (a parse error would: clap echoes the value).
    Refused(String),
}

/// The environment variable that holds an InfluxDB token (2.x, or 1.8+ as `USER:PASSWORD`).
pub const TOKEN_ENV: &str = crate::secret::INFLUX_TOKEN_ENV;
/// The environment variables of InfluxDB 1.x basic authentication.
pub const USER_ENV: &str = "PRUN_INFLUX_USER";
pub const PASSWORD_ENV: &str = crate::secret::INFLUX_PASSWORD_ENV;

/// `influx[+https]://HOST[:PORT]/DB`, `influx2[+https]://HOST[:PORT]/ORG/BUCKET` (the port
/// defaults to 8086), `graphite://HOST[:PORT]` (2003) or `file:PATH`.
pub fn parse_sink(s: &str) -> Result<Sink, String> {
    // a URL of any scheme with `user:password@` is refused here, before clap could echo the
    // value in a parse error
    if let Some((scheme, after)) = s.split_once("://")
        && !s.starts_with("file:")
    {
        let authority = after.split('/').next().unwrap_or_default();
        if let Some((_, host)) = authority.rsplit_once('@') {
            let known = [
                "influx",
                "influx+https",
                "influx2",
                "influx2+https",
                "graphite",
            ];
            let also = if known.contains(&scheme) {
                String::new()
            } else {
                " (and the scheme must be influx, influx+https, influx2, influx2+https or \
                 graphite)"
                    .to_string()
            };
            return Ok(Sink::Refused(format!(
                "--metrics …@{host}: credentials do not go in the URL: set {TOKEN_ENV}, or \
                 {USER_ENV} and {PASSWORD_ENV}{also}"
            )));
        }
    }
    if let Some(a) = s.strip_prefix("graphite://") {
        let a = a.trim_end_matches('/');
        if a.is_empty() || a.contains('/') {
            return Err(format!("'{s}': expected graphite://HOST:PORT"));
        }
        return Ok(Sink::Graphite(with_port(a, 2003)));
    }
    if let Some(p) = s.strip_prefix("file:") {
        if p.is_empty() {
            return Err(format!("'{s}': file: needs a path (file:metrics.lp)"));
        }
        return Ok(Sink::File(p.into()));
    }
    let (scheme, v2, rest) = if let Some(r) = s.strip_prefix("influx://") {
        ("http", false, r)
    } else if let Some(r) = s.strip_prefix("influx+https://") {
        ("https", false, r)
    } else if let Some(r) = s.strip_prefix("influx2://") {
        ("http", true, r)
    } else if let Some(r) = s.strip_prefix("influx2+https://") {
        ("https", true, r)
    } else {
        return Err(format!(
            "'{s}': expected influx[+https]://HOST:PORT/DB, influx2[+https]://HOST:PORT/ORG/BUCKET, \
             graphite://HOST:PORT or file:PATH"
        ));
    };
    if rest.contains(['@', '?', '#']) {
        let shown = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
        return Ok(Sink::Refused(format!(
            "--metrics …{shown}: credentials and options do not go in the URL: set \
             {TOKEN_ENV}, or {USER_ENV} and {PASSWORD_ENV}"
        )));
    }
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let want = if v2 { 3 } else { 2 };
    if parts.len() != want || parts.iter().any(|p| p.is_empty()) {
        return Err(if v2 {
            format!("'{s}': expected influx2[+https]://HOST:PORT/ORG/BUCKET")
        } else {
            format!("'{s}': expected influx[+https]://HOST:PORT/DB")
        });
    }
    let base = format!("{scheme}://{}", with_port(parts[0], 8086));
    Ok(if v2 {
        Sink::Influx2 {
            base,
            org: parts[1].to_string(),
            bucket: parts[2].to_string(),
        }
    } else {
        Sink::Influx {
            base,
            db: parts[1].to_string(),
        }
    })
}

/// `host` with `:port` added when it names none (`[::1]` and `::1`-style literals too).
fn with_port(host: &str, port: u16) -> String {
    let has_port = match host.rsplit_once(':') {
        Some((h, p)) => p.parse::<u16>().is_ok() && (h.ends_with(']') || !h.contains(':')),
        None => false,
    };
    if has_port {
        host.to_string()
    } else if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// What a sink needs from the environment before the run starts: `influx2` takes a token.
pub fn check_sink(sink: &Sink) -> Result<(), String> {
    if let Sink::Refused(why) = sink {
        return Err(why.clone());
    }
    if let Sink::Influx2 { base, org, bucket } = sink
        && std::env::var_os(TOKEN_ENV).is_none_or(|t| t.is_empty())
    {
        return Err(format!(
            "--metrics: InfluxDB 2.x at {base} (org {org}, bucket {bucket}) needs a token in \
             {TOKEN_ENV}"
        ));
    }
    Ok(())
}

/// The `Authorization` header for InfluxDB, from the environment: `Token T` from
/// [`TOKEN_ENV`], else basic authentication from [`USER_ENV`] and [`PASSWORD_ENV`].
fn authorization() -> Option<zeroize::Zeroizing<String>> {
    use base64::Engine as _;
    if let Some(t) = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty()) {
        let t = zeroize::Zeroizing::new(t);
        return Some(zeroize::Zeroizing::new(format!("Token {}", t.as_str())));
    }
    let user = std::env::var(USER_ENV).ok().filter(|u| !u.is_empty())?;
    let pass = zeroize::Zeroizing::new(std::env::var(PASSWORD_ENV).unwrap_or_default());
    let pair = zeroize::Zeroizing::new(format!("{user}:{}", pass.as_str()));
    Some(zeroize::Zeroizing::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
    )))
}

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
        Sink::Refused(why) => Err(why.clone()),
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
        Sink::Influx { .. } | Sink::Influx2 { .. } => {
            let start = std::time::Instant::now();
            // native-tls: the system's OpenSSL and its trust store (SSL_CERT_FILE and
            // SSL_CERT_DIR name others)
            let tls = ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::NativeTls)
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build();
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .tls_config(tls)
                .timeout_global(Some(Duration::from_secs(5)))
                .http_status_as_error(false)
                .build()
                .into();
            let url = match sink {
                Sink::Influx { base, db } => {
                    format!("{base}/write?db={}&precision=ns", query_value(db))
                }
                Sink::Influx2 { base, org, bucket } => format!(
                    "{base}/api/v2/write?org={}&bucket={}&precision=ns",
                    query_value(org),
                    query_value(bucket)
                ),
                _ => unreachable!(),
            };
            let auth = authorization();
            for chunk in lines.chunks(BATCH) {
                let body = chunk.join("\n");
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let mut req = agent
                        .post(&url)
                        .header("Content-Type", "text/plain; charset=utf-8");
                    if let Some(a) = &auth {
                        req = req.header("Authorization", a.as_str());
                    }
                    let why = match req.send(body.as_str()) {
                        Ok(resp) if resp.status().is_success() => break,
                        Ok(mut resp) => {
                            let text = resp.body_mut().read_to_string().unwrap_or_default();
                            let mut msg = format!("{url}: HTTP {}: {}", resp.status(), text.trim());
                            if matches!(resp.status().as_u16(), 401 | 403) {
                                let _ = write!(
                                    msg,
                                    " ({} credentials: {TOKEN_ENV}, or {USER_ENV} and \
                                     {PASSWORD_ENV})",
                                    if auth.is_some() { "check the" } else { "no" }
                                );
                            }
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

/// `s` percent-encoded for a URL's query (database, org and bucket names).
fn query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
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
        // credentials in any URL: refused without repeating them (clap would echo an Err)
        for url in [
            "http://admin:pw-77@metrics.example/db",
            "graphite://admin:pw-77@127.0.0.1:2003",
            "influx://admin:pw-77@127.0.0.1/db",
            "influx2+https://:pw-77@h/o/b",
        ] {
            match parse_sink(url) {
                Ok(Sink::Refused(why)) => {
                    assert!(!why.contains("pw-77"), "{why}");
                    assert!(why.contains("credentials do not go in the URL"), "{why}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        assert!(
            matches!(parse_sink("http://a:b@h/db"), Ok(Sink::Refused(w)) if w.contains("the scheme must be"))
        );
        // an @ in a file name is a file name
        assert!(matches!(parse_sink("file:/tmp/a@b.lp"), Ok(Sink::File(_))));
        assert_eq!(
            parse_sink("influx+https://db.example:9999/p").unwrap(),
            Sink::Influx {
                base: "https://db.example:9999".into(),
                db: "p".into()
            }
        );
        assert_eq!(
            parse_sink("influx://db.example/p/").unwrap(),
            Sink::Influx {
                base: "http://db.example:8086".into(),
                db: "p".into()
            }
        );
        assert_eq!(
            parse_sink("influx2+https://[::1]/acme/ops").unwrap(),
            Sink::Influx2 {
                base: "https://[::1]:8086".into(),
                org: "acme".into(),
                bucket: "ops".into()
            }
        );
        assert_eq!(
            parse_sink("influx2://::1/o/b").unwrap(),
            Sink::Influx2 {
                base: "http://[::1]:8086".into(),
                org: "o".into(),
                bucket: "b".into()
            }
        );
        assert!(parse_sink("influx2://h/o").is_err());
        assert!(parse_sink("influx://h/a/b").is_err());
        let e = check_sink(&parse_sink("influx://u:secret@h/db").unwrap()).unwrap_err();
        assert!(
            e.contains("PRUN_INFLUX_USER") && !e.contains("secret"),
            "{e}"
        );
        assert!(check_sink(&parse_sink("influx://h/db?u=x").unwrap()).is_err());
        assert_eq!(query_value("my org/é"), "my%20org%2F%C3%A9");
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
