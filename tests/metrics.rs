//! `--metrics` against a real InfluxDB 1.x that the test starts on loopback ports with a
//! temporary configuration (HTTP on, the Graphite listener on): 20 hosts' phases arrive with
//! the values of the `--report` JSON; a line-protocol file holds the same points; a sink
//! that is down costs a warning and a bounded delay, not the exit status. HTTPS with basic
//! authentication runs against influxd too (a certificate made with `openssl`); InfluxDB 2.x's
//! `/api/v2/write` against a listener that records the request, as this machine's package
//! registries have no InfluxDB 2.x to start.

mod common;

use common::{Fleet, free_port};
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INFLUXD: &str = "/usr/bin/influxd";

/// A throwaway influxd; killed (by PID) on drop.
struct Influx {
    child: Child,
    http: u16,
    graphite: u16,
}

impl Drop for Influx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(port: u16, path_and_query: &str) -> (u16, String) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |b| b.1).to_string();
    (code, body)
}

/// A self-signed certificate for 127.0.0.1 (cert.pem, key.pem in `dir`), made by `openssl`.
fn make_cert(dir: &Path) -> std::path::PathBuf {
    let openssl = Path::new("/usr/bin/openssl");
    assert!(
        openssl.exists(),
        "/usr/bin/openssl not found: the HTTPS metrics test needs it (scripts/deps.sh installs \
         Debian's openssl)"
    );
    let st = Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-days",
            "2",
            "-keyout",
        ])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    dir.join("cert.pem")
}

/// An HTTPS client of the test's own that trusts `cert`.
fn https_agent(cert: &Path) -> ureq::Agent {
    let pem = std::fs::read(cert).unwrap();
    let c = ureq::tls::Certificate::from_pem(&pem).unwrap().to_owned();
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::NativeTls)
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[c]))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .build()
        .into()
}

fn start_influx(dir: &Path) -> Influx {
    start_influx_with(dir, "")
}

/// influxd with `http_extra` lines added to its `[http]` section.
fn start_influx_with(dir: &Path, http_extra: &str) -> Influx {
    assert!(
        Path::new(INFLUXD).exists(),
        "{INFLUXD} not found: the metrics tests need InfluxDB 1.x (scripts/deps.sh installs \
         Debian's influxdb package)"
    );
    let (http, rpc, graphite) = (free_port(), free_port(), free_port());
    let conf = dir.join("influxdb.conf");
    std::fs::write(
        &conf,
        format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
             [meta]\n  dir = \"{d}/meta\"\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
             [monitor]\n  store-enabled = false\n\
             [http]\n  enabled = true\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n{http_extra}\n\
             [[graphite]]\n  enabled = true\n  bind-address = \"127.0.0.1:{graphite}\"\n  database = \"graphite\"\n  \
             batch-timeout = \"100ms\"\n  templates = [\"measurement.host.phase\"]\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let child = Command::new(INFLUXD)
        .arg("-config")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let influx = Influx {
        child,
        http,
        graphite,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", http)).is_err() {
        assert!(Instant::now() < deadline, "influxd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    if http_extra.is_empty() {
        let (code, body) = http_get(http, "/query?q=CREATE%20DATABASE%20prun");
        assert_eq!(code, 200, "{body}");
    }
    influx
}

#[test]
fn twenty_hosts_phases_arrive_in_influxdb_as_in_the_report() {
    let f = Fleet::new(2);
    f.trust_all();
    let inv = f.inventory(20);
    let db = tempfile::tempdir().unwrap();
    let influx = start_influx(db.path());
    let rep = f.dir.path().join("r.json");
    let lp = f.dir.path().join("m.lp");
    let r = f.run_inv(
        &inv,
        &[
            "--metrics",
            &format!("influx://127.0.0.1:{}/prun", influx.http),
            "--metrics",
            &format!("file:{}", lp.display()),
            "--report",
            rep.to_str().unwrap(),
            "cat /etc/hostname",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("--metrics"), "{r:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rep).unwrap()).unwrap();
    let (code, body) = http_get(
        influx.http,
        "/query?db=prun&q=SELECT%20host%2Cphase%2Cms%20FROM%20prun_phase",
    );
    assert_eq!(code, 200, "{body}");
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rows = j["results"][0]["series"][0]["values"].as_array().unwrap();
    let mut got = std::collections::BTreeMap::new();
    for row in rows {
        got.insert(
            (
                row[1].as_str().unwrap().to_string(),
                row[2].as_str().unwrap().to_string(),
            ),
            row[3].as_f64().unwrap(),
        );
    }
    let mut want = std::collections::BTreeMap::new();
    for h in report["hosts"].as_array().unwrap() {
        for (phase, ms) in h["timings_ms"].as_object().unwrap() {
            want.insert(
                (h["name"].as_str().unwrap().to_string(), phase.clone()),
                ms.as_f64().unwrap(),
            );
        }
    }
    assert_eq!(got.len(), want.len(), "every host's every phase: {body}");
    for (k, w) in &want {
        let g = got[k];
        assert!((g - w).abs() < 0.001, "{k:?}: influx {g} vs report {w}");
    }
    let (_, body) = http_get(
        influx.http,
        "/query?db=prun&q=SELECT%20ok%2Chosts%20FROM%20prun_run",
    );
    assert!(body.contains("20,20") || body.contains(",20,20]"), "{body}");
    // the file holds the same points
    let text = std::fs::read_to_string(&lp).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("prun_phase,"))
            .count(),
        want.len()
    );
    // every query of the Grafana dashboard in docs/ runs on these points
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/grafana-prun.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for panel in dash["panels"].as_array().unwrap() {
        let q = panel["targets"][0]["query"]
            .as_str()
            .unwrap()
            .replace("$timeFilter", "time > 0")
            .replace("$__interval", "1h");
        let enc: String = q
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let (code, body) = http_get(influx.http, &format!("/query?db=prun&q={enc}"));
        assert_eq!(code, 200, "{q}: {body}");
        assert!(!body.contains("\"error\":"), "{q}: {body}");
        // every host succeeded, so the failures panel has nothing to show
        if !q.contains("!= 'ok'") {
            assert!(body.contains("\"series\""), "{q} found nothing: {body}");
        }
    }
    // the study's path: Graphite plaintext into InfluxDB's Graphite listener
    let r = f.run_inv(
        &inv,
        &[
            "--metrics",
            &format!("graphite://127.0.0.1:{}", influx.graphite),
            "--metrics-prefix",
            "prungraphite",
            "true",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("--metrics"), "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, body) = http_get(
            influx.http,
            "/query?db=graphite&q=SELECT%20count(value)%20FROM%20prungraphite%20WHERE%20phase%3D%27total%27",
        );
        if body.contains(",20]") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "graphite points never arrived: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // prun bench: each level's medians, as it is measured
    let mut c = f.prun();
    c.arg("-i").arg(&inv).args([
        "bench",
        "--levels",
        "1,2",
        "--rounds",
        "1",
        "--csv",
        f.dir.path().join("b.csv").to_str().unwrap(),
        "--svg",
        f.dir.path().join("b.svg").to_str().unwrap(),
        "--metrics",
        &format!("influx://127.0.0.1:{}/prun", influx.http),
        "true",
    ]);
    let r = common::run(c);
    assert_eq!(r.code, 0, "{r:?}");
    let (_, body) = http_get(
        influx.http,
        "/query?db=prun&q=SELECT%20count(p50_ms)%20FROM%20prun_bench%20GROUP%20BY%20%22level%22",
    );
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    let series = j["results"][0]["series"].as_array().unwrap();
    assert_eq!(series.len(), 2, "two levels: {body}");
    for s in series {
        assert_eq!(s["values"][0][1], 7, "seven operations per level: {body}");
    }
    // a sink that is down: a warning, a bounded delay, the same exit status
    let start = Instant::now();
    let r = f.run_inv(
        &inv,
        &[
            "--metrics",
            &format!("influx://127.0.0.1:{}/prun", common::closed_port()),
            "true",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("prun: warning: --metrics:"), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(30));
}

/// `prun --local` on three names with `--metrics URL` and the environment `env`.
fn local_run(url: &str, env: &[(&str, &str)]) -> common::Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_prun"));
    c.args(["--local", "-H", "a,b,c", "--metrics", url, "true"])
        .env("NO_COLOR", "1")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env_remove("PRUN_INFLUX_TOKEN")
        .env_remove("PRUN_INFLUX_USER")
        .env_remove("PRUN_INFLUX_PASSWORD")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    common::run(c)
}

#[test]
fn https_and_basic_authentication_against_a_real_influxd() {
    let dir = tempfile::tempdir().unwrap();
    let cert = make_cert(dir.path());
    let influx = start_influx_with(
        dir.path(),
        &format!(
            "  auth-enabled = true\n  https-enabled = true\n  https-certificate = \"{c}\"\n  \
             https-private-key = \"{k}\"",
            c = cert.display(),
            k = dir.path().join("key.pem").display()
        ),
    );
    let base = format!("https://127.0.0.1:{}", influx.http);
    let agent = https_agent(&cert);
    let query = |q: &str, auth: bool| -> (u16, String) {
        let mut r = agent.post(format!("{base}/query?db=prun"));
        if auth {
            r = r.header("Authorization", "Basic YWRtaW46czNjcmV0IHB3"); // admin:s3cret pw
        }
        let mut resp = r
            .content_type("application/x-www-form-urlencoded")
            .send(format!("q={}", q.replace(' ', "+")))
            .unwrap();
        let code = resp.status().as_u16();
        (code, resp.body_mut().read_to_string().unwrap())
    };
    // the first user may be made without credentials
    let (code, body) = query(
        "CREATE USER admin WITH PASSWORD 's3cret pw' WITH ALL PRIVILEGES",
        false,
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = query("CREATE DATABASE prun", true);
    assert_eq!(code, 200, "{body}");
    let url = format!("influx+https://127.0.0.1:{}/prun", influx.http);
    let ca = cert.to_str().unwrap();

    // a certificate prun does not trust: a warning naming why, the exit status unchanged
    let r = local_run(&url, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("prun: warning: --metrics: https://127.0.0.1:")
            && r.stderr.contains("certificate verify failed"),
        "{r:?}"
    );
    // trusted (SSL_CERT_FILE), no credentials: the server's refusal, and what to set
    let r = local_run(&url, &[("SSL_CERT_FILE", ca)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("HTTP 401") && r.stderr.contains("no credentials: PRUN_INFLUX_TOKEN"),
        "{r:?}"
    );
    let as_admin = |password: &str| {
        local_run(
            &url,
            &[
                ("SSL_CERT_FILE", ca),
                ("PRUN_INFLUX_USER", "admin"),
                ("PRUN_INFLUX_PASSWORD", password),
            ],
        )
    };
    // a wrong password: refused, and never echoed
    let r = as_admin("wrong-pw-7731");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("check the credentials"), "{r:?}");
    assert!(!r.stderr.contains("wrong-pw-7731"), "{r:?}");
    let (_, body) = query("SELECT count(total_ms) FROM prun_host", true);
    assert!(!body.contains("\"series\""), "nothing written yet: {body}");
    // right: every host's point arrives
    let r = as_admin("s3cret pw");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("--metrics"), "{r:?}");
    let (code, body) = query("SELECT count(total_ms) FROM prun_host", true);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(",3]"), "three hosts: {body}");
}

/// One HTTP request, read by a listener of the test's own: (request line and headers, body).
fn record_one_request(l: TcpListener) -> std::thread::JoinHandle<(String, String)> {
    std::thread::spawn(move || {
        use std::io::Write;
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "closed before the headers ended");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().unwrap())
            })
            .expect("a content-length");
        while buf.len() < head_end + len {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0);
            buf.extend_from_slice(&chunk[..n]);
        }
        s.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
        (head, body)
    })
}

#[test]
fn influxdb2_gets_the_token_the_org_and_the_bucket() {
    // without a token the run does not start
    let r = local_run("influx2://127.0.0.1:1/my org/b", &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("InfluxDB 2.x at http://127.0.0.1:1 (org my org, bucket b) needs a token in PRUN_INFLUX_TOKEN"),
        "{r:?}"
    );
    // credentials never go in the URL
    let r = local_run("influx://admin:pw-8812@127.0.0.1/db", &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("credentials do not go in the URL"),
        "{r:?}"
    );
    assert!(
        !r.stderr.contains("pw-8812"),
        "the password is not repeated: {r:?}"
    );
    // nor in a URL of a scheme prun does not know
    let r = local_run("https://admin:pw-8813@127.0.0.1/db", &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("credentials do not go in the URL"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("pw-8813"), "{r:?}");

    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = record_one_request(l);
    let r = local_run(
        &format!("influx2://127.0.0.1:{port}/my org/b"),
        &[("PRUN_INFLUX_TOKEN", "tok-5521")],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("--metrics"), "{r:?}");
    assert!(!r.stderr.contains("tok-5521"), "{r:?}");
    let (head, body) = got.join().unwrap();
    assert!(
        head.starts_with("POST /api/v2/write?org=my%20org&bucket=b&precision=ns HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains("\r\nauthorization: Token tok-5521\r\n")
            || head.contains("\r\nAuthorization: Token tok-5521\r\n"),
        "{head}"
    );
    assert_eq!(
        body.lines().filter(|l| l.starts_with("prun_host,")).count(),
        3,
        "{body}"
    );
}
