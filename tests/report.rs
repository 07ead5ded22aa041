//! `--report` JSON and CSV against real sshd, with one unreachable host.

mod common;

use common::{Fleet, closed_port};

const PHASES: [&str; 8] = [
    "connect",
    "handshake",
    "hostkey",
    "auth",
    "channel_open",
    "exec",
    "read",
    "close",
];

fn fleet_with_dead_host() -> (Fleet, std::path::PathBuf) {
    let f = Fleet::new(2);
    f.trust_all();
    let mut hosts: Vec<(String, u16)> = (1..=5).map(|h| (format!("h{h}"), f.port(h % 2))).collect();
    hosts.push(("dead".into(), closed_port()));
    let inv = f.inventory_of("inv.yaml", &hosts);
    (f, inv)
}

/// `prun -i INV --report PATH --retries N 'echo hi'`, which fails on the dead host (exit 4).
fn run_with_report(f: &Fleet, inv: &std::path::Path, path: &std::path::Path, retries: &str) {
    let r = f.run_inv(
        inv,
        &[
            "--report",
            path.to_str().unwrap(),
            "--retries",
            retries,
            "echo hi",
        ],
    );
    assert_eq!(r.code, 4, "{r:?}");
}

#[test]
fn json_report_has_every_phase_adding_up_and_the_failure() {
    let (f, inv) = fleet_with_dead_host();
    let path = f.dir.path().join("report.json");
    run_with_report(&f, &inv, &path, "1");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).expect("valid JSON");
    assert_eq!(v["version"], 1);
    assert_eq!(v["command"], "echo hi");
    assert_eq!(v["hosts_total"], 6);
    assert_eq!(v["counts"]["ok"], 5);
    assert_eq!(v["counts"]["error"], 1);
    let hosts = v["hosts"].as_array().unwrap();
    for h in hosts.iter().filter(|h| h["status"] == "ok") {
        let t = &h["timings_ms"];
        let mut sum = 0.0;
        for p in PHASES {
            let ms = t[p].as_f64().unwrap_or_else(|| panic!("{p} missing: {h}"));
            assert!(ms >= 0.0, "{p} negative: {h}");
            sum += ms;
        }
        assert!(t["first_byte"].as_f64().unwrap() <= t["read"].as_f64().unwrap());
        let total = h["total_ms"].as_f64().unwrap();
        let wait = h["retry_wait_ms"].as_f64().unwrap();
        assert!(
            (sum + wait - total).abs() <= 2.0 + total * 0.01,
            "phases {sum} + retry_wait {wait} != total {total}: {h}"
        );
        assert_eq!(h["exit_code"], 0);
        assert_eq!(h["stdout_bytes"], 3);
        assert_eq!(h["attempts"], 1);
        assert!(h["auth_method"].as_str().unwrap().starts_with("publickey"));
        assert!(h["kex"].is_string() && h["cipher"].is_string());
    }
    let dead = hosts.iter().find(|h| h["name"] == "dead").unwrap();
    assert_eq!(dead["status"], "error");
    assert_eq!(dead["failure_phase"], "connect");
    assert_eq!(dead["failure_kind"], "refused");
    assert_eq!(dead["attempts"], 2);
    assert!(dead["retry_wait_ms"].as_f64().unwrap() > 0.0);
    let mut phases: Vec<&str> = v["phases"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    phases.sort_unstable();
    let mut want = [
        "connect",
        "handshake",
        "hostkey",
        "auth",
        "channel_open",
        "exec",
        "first_byte",
        "read",
        "open",
        "transfer",
        "close",
        "total",
    ];
    want.sort_unstable();
    assert_eq!(phases, want);
}

#[test]
fn csv_report_has_one_row_per_host() {
    let (f, inv) = fleet_with_dead_host();
    let path = f.dir.path().join("report.csv");
    run_with_report(&f, &inv, &path, "0");
    let mut rd = csv::Reader::from_path(&path).unwrap();
    let header = rd.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 6);
    for row in rows.iter().filter(|r| &r[col("status")] == "ok") {
        let mut sum = 0.0;
        for p in PHASES {
            let v: f64 = row[col(&format!("{p}_ms"))].parse().unwrap();
            assert!(v >= 0.0);
            sum += v;
        }
        let total: f64 = row[col("total_ms")].parse().unwrap();
        assert!((sum - total).abs() <= 2.0 + total * 0.01, "{row:?}");
    }
    let dead = rows.iter().find(|r| &r[col("name")] == "dead").unwrap();
    assert_eq!(&dead[col("status")], "error");
    assert_eq!(&dead[col("failure_phase")], "connect");
    assert_eq!(&dead[col("failure_kind")], "refused");
    assert_eq!(&dead[col("handshake_ms")], "");
}

#[test]
fn report_needs_a_known_format() {
    let (f, inv) = fleet_with_dead_host();
    let path = f.dir.path().join("report.txt");
    let r = f.run_inv(&inv, &["--report", path.to_str().unwrap(), "true"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("name a .json or .csv file"), "{r:?}");
    let r = f.run_inv(
        &inv,
        &[
            "--report",
            path.to_str().unwrap(),
            "--report-format",
            "csv",
            "-l",
            "h1",
            "true",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(std::fs::read_to_string(&path).unwrap().starts_with("name,"));
}

#[test]
fn bench_writes_rows_for_each_level_and_a_well_formed_svg() {
    let (f, _) = fleet_with_dead_host();
    let inv = f.inventory(4);
    let file = f.file("payload.txt", &"x".repeat(26 * 1024));
    let csv_path = f.dir.path().join("bench.csv");
    let svg_path = f.dir.path().join("bench.svg");
    let mut c = f.prun();
    c.arg("bench")
        .arg("-i")
        .arg(&inv)
        .args(["--levels", "1,5", "--csv"])
        .arg(&csv_path)
        .arg("--svg")
        .arg(&svg_path)
        .arg(format!("cat {}", file.display()));
    let r = common::run(c);
    assert_eq!(r.code, 0, "{r:?}");
    let table = r.stdout_text();
    assert!(table.contains("auth p50/p90"), "{r:?}");
    let mut rd = csv::Reader::from_path(&csv_path).unwrap();
    let header = rd.headers().unwrap().clone();
    for col in [
        "concurrency",
        "sessions_per_s",
        "auth_p50_ms",
        "channel_open_p90_ms",
        "exec_p50_ms",
        "read_p50_ms",
        "close_p50_ms",
        "total_p90_ms",
    ] {
        assert!(header.iter().any(|h| h == col), "{col} missing: {header:?}");
    }
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][1], "1");
    assert_eq!(&rows[1][1], "5");
    assert_eq!(&rows[1][2], "15", "5 × 3 rounds");
    assert_eq!(&rows[1][3], "15", "all sessions ok");
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<svg").count(), 1);
    for label in [
        "handshake",
        "auth",
        "channel_open",
        "exec",
        "read",
        "close",
        "total",
        "concurrent sessions",
        "median time (ms)",
    ] {
        assert!(svg.contains(label), "{label} missing from the chart");
    }
}

#[test]
fn bench_measures_both_engines_in_one_run_as_the_study_did() {
    let f = Fleet::new(2);
    f.trust_all();
    let inv = f.inventory(4);
    let csv_path = f.dir.path().join("b.csv");
    let svg_path = f.dir.path().join("b.svg");
    let mut c = f.prun();
    c.arg("bench")
        .arg("-i")
        .arg(&inv)
        .args(["--engine", "threads,events", "--levels", "2,4", "--csv"])
        .arg(&csv_path)
        .arg("--svg")
        .arg(&svg_path)
        .arg("echo x");
    let r = common::run(c);
    assert_eq!(r.code, 0, "{r:?}");
    let mut rd = csv::Reader::from_path(&csv_path).unwrap();
    let rows: Vec<(String, String, String)> = rd
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].to_string(), r[3].to_string())
        })
        .collect();
    let want: Vec<(String, String, String)> = [
        ("threads", "2", "10"),
        ("threads", "4", "12"),
        ("events", "2", "10"),
        ("events", "4", "12"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(rows, want, "{r:?}");
    for engine in ["threads", "events"] {
        let svg = std::fs::read_to_string(f.dir.path().join(format!("b-{engine}.svg"))).unwrap();
        assert!(svg.contains(&format!("{engine} engine")), "{engine} chart");
    }
    // a normal run takes one engine
    let r = f.run_inv(&inv, &["--engine", "threads,events", "true"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("a list is for prun bench"), "{r:?}");
}
