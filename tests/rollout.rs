//! Rolling changes against real sshd: batches that start in order (timestamps the commands
//! write), the failure threshold and the hosts it leaves unstarted, the canary's question
//! (refused without a terminal, answered on a pseudo-terminal, skipped with --yes),
//! `--stagger` and `--pause`, `{name}` substitution (an inventory var full of shell syntax
//! arriving literally, unknown names refused before any connection, per-host push paths,
//! `--dry-run`), and `--local` on 50 hosts.

mod common;

use common::{Fleet, whoami};
use std::path::Path;

/// An inventory of `n` hosts h01… on the fleet's first server, with `extra` vars for all.
fn inventory(f: &Fleet, n: usize, extra: &str) -> std::path::PathBuf {
    let mut y = format!(
        "all:\n  vars:\n    address: 127.0.0.1\n    user: {}\n    identity_file: {}\n    port: {}\n{extra}  hosts:\n",
        whoami(),
        f.key.display(),
        f.port(0)
    );
    for h in 1..=n {
        y.push_str(&format!("    h{h:02}:\n"));
    }
    f.file("rollout.yaml", &y)
}

/// Nanoseconds since the epoch written by the command into `dir/<host>.<what>`.
fn stamp(dir: &Path, host: &str, what: &str) -> u128 {
    let p = dir.join(format!("{host}.{what}"));
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .parse()
        .unwrap()
}

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn batches_start_in_order_each_after_the_previous_one_ended() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = inventory(&f, 10, "");
    let marks = f.dir.path().join("marks");
    std::fs::create_dir(&marks).unwrap();
    let rep = f.dir.path().join("r.json");
    let cmd = format!(
        "date +%s%N > {m}/{{host}}.start; sleep 0.3; date +%s%N > {m}/{{host}}.end",
        m = marks.display()
    );
    let r = f.run_inv(
        &inv,
        &[
            "-p",
            "10",
            "--batch",
            "1,2,50%",
            "--report",
            rep.to_str().unwrap(),
            &cmd,
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    // 1, 2, then 50% (5) repeating: 1 + 2 + 5 + 2 hosts
    let batches: [&[usize]; 4] = [&[1], &[2, 3], &[4, 5, 6, 7, 8], &[9, 10]];
    for w in batches.windows(2) {
        let ended = w[0]
            .iter()
            .map(|h| stamp(&marks, &format!("h{h:02}"), "end"))
            .max()
            .unwrap();
        for h in w[1] {
            let started = stamp(&marks, &format!("h{h:02}"), "start");
            assert!(
                started > ended,
                "h{h:02} started before the previous batch ended\n{r:?}"
            );
        }
    }
    // a batch runs at once: its hosts overlap
    let b3: Vec<u128> = batches[2]
        .iter()
        .map(|h| stamp(&marks, &format!("h{h:02}"), "start"))
        .collect();
    let first_end = batches[2]
        .iter()
        .map(|h| stamp(&marks, &format!("h{h:02}"), "end"))
        .min()
        .unwrap();
    assert!(b3.iter().all(|s| *s < first_end), "batch 3 ran one by one");
    for (b, n) in [(1, 1), (2, 2), (3, 5), (4, 2)] {
        assert!(
            r.stderr
                .contains(&format!("prun: batch {b} of 4: {n} host")),
            "{r:?}"
        );
    }
    // the report names each host's batch
    let rep = report(&rep);
    let got: Vec<u64> = rep["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["batch"].as_u64().unwrap())
        .collect();
    assert_eq!(got, [1, 2, 2, 3, 3, 3, 3, 3, 4, 4]);
}

#[test]
fn max_fail_stops_new_hosts_and_names_the_unstarted_ones() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = inventory(&f, 20, "");
    let rep = f.dir.path().join("r.json");
    let csv = f.dir.path().join("r.csv");
    // h03, h06, h09, h12, h15 fail; one at a time, the third failure (h09) stops the run
    let cmd = "case {host} in h03|h06|h09|h12|h15) exit 1;; esac";
    let r = f.run_inv(
        &inv,
        &[
            "-p",
            "1",
            "--max-fail",
            "2",
            "--report",
            rep.to_str().unwrap(),
            cmd,
        ],
    );
    assert_eq!(r.code, 6, "stopped by the threshold: {r:?}");
    assert!(
        r.stderr
            .contains("stopped: 3 host(s) failed, more than --max-fail 2 allows"),
        "{r:?}"
    );
    let unstarted: Vec<String> = (10..=20).map(|h| format!("h{h:02}")).collect();
    assert!(
        r.stderr
            .contains(&format!("not started (11): {}", unstarted.join(", "))),
        "{r:?}"
    );
    let rep = report(&rep);
    let hosts = rep["hosts"].as_array().unwrap();
    for (i, h) in hosts.iter().enumerate() {
        let want = match i + 1 {
            3 | 6 | 9 => "failed",
            1..=9 => "ok",
            _ => "skipped",
        };
        assert_eq!(h["status"], want, "{h}");
    }
    assert_eq!(rep["counts"]["skipped"], 11);
    assert!(rep["stopped"].as_str().unwrap().contains("--max-fail 2"));
    // the same threshold as a percentage, hosts in batches: running hosts finish
    let r = f.run_inv(
        &inv,
        &[
            "-p",
            "4",
            "--batch",
            "4",
            "--max-fail",
            "10%",
            "--report",
            csv.to_str().unwrap(),
            &format!("sleep 0.5; {cmd}"),
        ],
    );
    assert_eq!(r.code, 6, "{r:?}");
    // 10% of 20 is 2: the third failure (h09, batch 3) stops it; h10-h12 ran to the end
    let text = std::fs::read_to_string(&csv).unwrap();
    let status = |h: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{h},")))
            .unwrap()
            .split(',')
            .nth(4)
            .unwrap()
            .to_string()
    };
    assert_eq!(status("h10"), "ok");
    assert_eq!(status("h12"), "failed");
    assert_eq!(status("h13"), "skipped");
    assert_eq!(status("h20"), "skipped");
    // --fail-fast is --max-fail 0
    let r = f.run_inv(&inv, &["-p", "1", "--fail-fast", cmd]);
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("more than --fail-fast allows"), "{r:?}");
    assert!(r.stderr.contains("not started (17)"), "{r:?}");
}

#[test]
fn the_canary_asks_on_a_terminal_and_yes_skips_the_question() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = inventory(&f, 6, "");
    // no terminal: refused before anything runs
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["--canary", "2", "echo ran-{host}"]);
    common::without_terminal(&mut c);
    let r = common::run(c);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--canary asks on the terminal"), "{r:?}");
    assert!(r.stderr.contains("--yes"), "{r:?}");
    assert!(!r.stdout_text().contains("ran-"), "{r:?}");
    // --yes: the canaries pass, the rest follow without a question
    let r = f.run_inv(&inv, &["--canary", "2", "--yes", "echo ran-{host}"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text().matches("ran-").count(), 6, "{r:?}");
    // --yes and a failing canary: the others never start
    let r = f.run_inv(
        &inv,
        &[
            "--canary",
            "2",
            "--yes",
            "test {host} != h02 && echo ran-{host}",
        ],
    );
    assert_eq!(r.code, 6, "{r:?}");
    assert!(r.stderr.contains("1 canary host(s) failed"), "{r:?}");
    assert_eq!(r.stdout_text().matches("ran-").count(), 1, "{r:?}");
    // on a terminal: the canaries' results, then the question; yes goes on
    for (answer, code, ran) in [("y\r", 0, 6), ("n\r", 6, 2)] {
        let mut c = f.prun();
        c.arg("-i")
            .arg(&inv)
            .args(["--progress", "never", "--canary", "2", "echo ran-{host}"]);
        let mut t = common::Terminal::spawn(c);
        t.expect("? [y/N] ", 1);
        let shown = t.text();
        assert!(
            shown.contains("h01 | ran-h01") && shown.contains("h02 | ran-h02"),
            "{shown}"
        );
        assert!(!shown.contains("ran-h03"), "{shown}");
        assert!(shown.contains("2 hosts done, 2 ok"), "{shown}");
        assert!(
            shown.contains("start batch 2 of 2 (4 hosts left)"),
            "{shown}"
        );
        t.type_keys(answer);
        let status = common::wait_at_most(&mut t.child, std::time::Duration::from_secs(30))
            .expect("prun ends after the answer");
        // what the terminal showed last may still be on its way
        std::thread::sleep(std::time::Duration::from_millis(200));
        let shown = t.text();
        assert_eq!(status.code(), Some(code), "{shown}");
        assert_eq!(shown.matches("| ran-").count(), ran, "{shown}");
    }
}

#[test]
fn stagger_spaces_starts_and_pause_waits_between_batches() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = inventory(&f, 4, "");
    let marks = f.dir.path().join("marks");
    std::fs::create_dir(&marks).unwrap();
    let cmd = format!(
        "date +%s%N > {m}/{{host}}.start; date +%s%N > {m}/{{host}}.end",
        m = marks.display()
    );
    // locally: a local command starts when its host does (an ssh login's own time varies)
    let r = f.run_inv(
        &inv,
        &[
            "--local",
            "-p",
            "4",
            "--batch",
            "2",
            "--stagger",
            "300ms",
            "--pause",
            "1s",
            &cmd,
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let ms = |h: usize, w: &str| stamp(&marks, &format!("h{h:02}"), w) / 1_000_000;
    assert!(ms(2, "start") >= ms(1, "start") + 280, "stagger");
    assert!(ms(4, "start") >= ms(3, "start") + 280, "stagger");
    assert!(ms(3, "start") >= ms(2, "end") + 990, "pause");
}

#[test]
fn inventory_vars_arrive_literally_and_unknown_names_stop_before_connecting() {
    let f = Fleet::new(1);
    f.trust_all();
    let nasty = r#"it's "quoted" $(touch /tmp/prun-pwned) `id` ; & | > * ~ {x}"#;
    let y = format!(
        "all:\n  vars:\n    address: 127.0.0.1\n    user: {}\n    identity_file: {}\n    port: {}\n\
         \x20 children:\n    web:\n      vars:\n        rack: '{}'\n        slot: 7\n\
         \x20     hosts:\n        h01:\n        h02:\n    other:\n      hosts:\n        h03:\n",
        whoami(),
        f.key.display(),
        f.port(0),
        nasty.replace('\'', "''")
    );
    let inv = f.file("vars.yaml", &y);
    let out = f.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let _ = std::fs::remove_file("/tmp/prun-pwned");
    let r = f.run_inv(
        &inv,
        &[
            "-l",
            "web",
            "--env",
            "RACK={rack}",
            &format!(
                "printf '%s\\n' {{rack}} > {o}/{{host}}.arg; printf '%s\\n' \"$RACK\" > {o}/{{host}}.env; echo {{slot}}{{index}}",
                o = out.display()
            ),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    for h in ["h01", "h02"] {
        let arg = std::fs::read_to_string(out.join(format!("{h}.arg"))).unwrap();
        assert_eq!(arg, format!("{nasty}\n"), "as an argument");
        let env = std::fs::read_to_string(out.join(format!("{h}.env"))).unwrap();
        assert_eq!(env, format!("{nasty}\n"), "through --env");
    }
    assert!(!Path::new("/tmp/prun-pwned").exists(), "a var ran as code");
    let so = r.stdout_text();
    assert!(so.contains("h01 | 71") && so.contains("h02 | 72"), "{r:?}");
    // h03 has no `rack`: refused with exit 2 naming it, and nothing connects
    let log = f.dir.path().join("sshd-0.log");
    let before = std::fs::read_to_string(&log).unwrap_or_default();
    let r = f.run_inv(&inv, &["echo {rack}"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("uses {rack}, but host 'h03' has no var 'rack'"),
        "{r:?}"
    );
    let after = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        before.matches("Connection from").count(),
        after.matches("Connection from").count(),
        "a host was contacted"
    );
    // --dry-run shows each host's rendered command and contacts nothing either
    let r = f.run_inv(
        &inv,
        &[
            "-l",
            "web",
            "--dry-run",
            "--batch",
            "1",
            "echo {host} {slot}",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text(), "h01\t1\techo h01 7\nh02\t2\techo h02 7\n");
    // --literal and doubled braces keep the braces
    let r = f.run_inv(&inv, &["--literal", "-l", "h03", "echo '{rack}'"]);
    assert!(r.stdout_text().contains("h03 | {rack}"), "{r:?}");
    let r = f.run_inv(&inv, &["-l", "h03", "echo '{{rack}}' {host}"]);
    assert!(r.stdout_text().contains("h03 | {rack} h03"), "{r:?}");
}

#[test]
fn push_takes_a_per_host_source_and_directory() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = inventory(&f, 3, "");
    let src = f.dir.path().join("cfg");
    std::fs::create_dir(&src).unwrap();
    for h in ["h01", "h02", "h03"] {
        std::fs::write(src.join(format!("{h}.conf")), format!("name={h}\n")).unwrap();
    }
    let dest = f.dir.path().join("dest");
    let r = f.run_inv(
        &inv,
        &[
            "push",
            "--mkdir",
            &format!("{}/{{host}}.conf", src.display()),
            &format!("{}/{{host}}", dest.display()),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    for h in ["h01", "h02", "h03"] {
        let got = std::fs::read_to_string(dest.join(h).join(format!("{h}.conf"))).unwrap();
        assert_eq!(got, format!("name={h}\n"));
    }
    // a host whose file is missing: refused before any host runs, naming it
    std::fs::remove_file(src.join("h02.conf")).unwrap();
    let r = f.run_inv(
        &inv,
        &[
            "push",
            &format!("{}/{{host}}.conf", src.display()),
            &format!("{}/{{host}}", dest.display()),
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("host 'h02'") && r.stderr.contains("h02.conf"),
        "{r:?}"
    );
}

#[test]
fn local_exec_runs_once_per_host_with_its_values() {
    let f = Fleet::new(1);
    let rep = f.dir.path().join("r.csv");
    let out = f.dir.path().join("out");
    let r = f.run_inv(
        &inventory(&f, 50, ""),
        &[
            "--local",
            "-p",
            "10",
            "--out-dir",
            out.to_str().unwrap(),
            "--report",
            rep.to_str().unwrap(),
            "echo {host} {addr} {port} $PRUN_HOST $PRUN_INDEX; test $PRUN_INDEX -ne 7",
        ],
    );
    assert_eq!(r.code, 5, "h07 exits 1: {r:?}");
    let port = f.port(0);
    for i in 1..=50 {
        let h = format!("h{i:02}");
        let got = std::fs::read_to_string(out.join(format!("{h}.out"))).unwrap();
        assert_eq!(got, format!("{h} 127.0.0.1 {port} {h} {i}\n"));
    }
    let text = std::fs::read_to_string(&rep).unwrap();
    assert_eq!(text.lines().count(), 51);
    assert!(
        text.lines()
            .any(|l| l.starts_with("h07,") && l.contains(",failed,1,")),
        "{text}"
    );
    // nothing went over ssh
    let log = std::fs::read_to_string(f.dir.path().join("sshd-0.log")).unwrap_or_default();
    assert!(!log.contains("Connection from"), "{log}");
    // a --timeout stops the local command (and its process group)
    let r = f.run_inv(
        &inventory(&f, 2, ""),
        &["--local", "--timeout", "1s", "sleep 47.25"],
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains("local command stopped (SIGTERM)"),
        "{r:?}"
    );
    assert!(common::pids_of("sleep 47.25").is_empty());
}
