//! `--engine events`: many sessions per thread. The whole suite also runs with
//! `PRUN_ENGINE=events` (scripts/test.sh); these tests check what is the event engine's own:
//! hundreds of sessions in flight on a handful of threads, the same bytes as the thread
//! engine, and a host that stops answering does not hold up the others on its thread.

mod common;

use common::Fleet;
use std::time::{Duration, Instant};

/// Threads of a running process, from /proc.
fn threads_of(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn two_hundred_sessions_in_flight_on_a_few_threads_byte_exact() {
    let f = Fleet::new(4);
    f.trust_all();
    let n = 200;
    let inv = f.inventory(n);
    // every session stays open a while, so all of them are in flight at once
    let cmd = "sleep 1; printf '%s\\n' \"$(head -c 3000 /etc/services | base64 -w 76)\"";
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args([
            "--engine",
            "events",
            "-p",
            "200",
            "--progress",
            "never",
            cmd,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let pid = child.id();
    let out_pipe = child.stdout.take();
    let reader = std::thread::spawn(move || common::drain(out_pipe));
    let mut most = 0;
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(60) {
        most = most.max(threads_of(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = common::wait_at_most(&mut child, Duration::from_secs(60)).expect("prun hung");
    let out = reader.join().unwrap();
    let err = common::drain(child.stderr.take());
    assert_eq!(st.code(), Some(0), "{err}");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // the workers (one per core), main, the printer, the signal handler, a DNS helper or two
    assert!(
        most <= cores + 6,
        "{most} threads for 200 sessions on {cores} cores"
    );
    // the same bytes as the thread engine, host by host
    let r = f.run_inv(&inv, &["--engine", "threads", "-p", "50", cmd]);
    assert_eq!(r.code, 0, "{r:?}");
    let sorted = |s: &str| {
        let mut v: Vec<&str> = s.lines().collect();
        v.sort();
        v.join("\n")
    };
    assert_eq!(sorted(&out), sorted(&r.stdout_text()));
    let hosts: std::collections::BTreeSet<&str> =
        out.lines().filter_map(|l| l.split(" | ").next()).collect();
    assert_eq!(hosts.len(), n, "every host answered");
}

#[test]
fn a_frozen_server_does_not_hold_up_the_sessions_sharing_its_thread() {
    let f = Fleet::new(2);
    f.trust_all();
    let inv = f.inventory(20); // odd hosts on server 0, even ones on server 1
    // log in to both once so that the frozen server has something to freeze
    let r = f.run_inv(&inv, &["--engine", "events", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    let _frozen = common::freeze_listener(&f.servers[0]);
    let start = Instant::now();
    let r = f.run_inv(
        &inv,
        &[
            "--engine",
            "events",
            "-p",
            "20",
            "--connect-timeout",
            "3s",
            "--retries",
            "0",
            "echo up",
        ],
    );
    let took = start.elapsed();
    // the 10 hosts of the live server answered; the 10 others timed out
    assert_eq!(
        r.stdout_text()
            .lines()
            .filter(|l| l.ends_with("| up"))
            .count(),
        10,
        "{r:?}"
    );
    assert_eq!(r.code, 4, "{r:?}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

#[test]
fn ctrl_c_stops_every_session_of_the_event_engine() {
    let f = Fleet::new(1);
    f.trust_all();
    let user = common::ensure_test_user(); // OpenSSH ignores signal requests for root
    let inv = f.inventory(6);
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["-u", user, "--engine", "events", "sleep 49.99"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    common::wait_for_processes("sleep 49.99", 6);
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let st = common::wait_at_most(&mut child, Duration::from_secs(20)).expect("prun hung");
    assert_eq!(st.code(), Some(130));
    let left = common::leftovers_killed("sleep 49.99");
    assert!(left.is_empty(), "remote sleeps still running: {left:?}");
}

#[test]
fn prun_fiber_pages_reports_the_stack_pages_each_fiber_touched() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = f.inventory(6);
    let mut c = f.prun();
    c.env("PRUN_FIBER_PAGES", "1")
        .arg("-i")
        .arg(&inv)
        .args(["--engine", "events", "-p", "3", "echo hi"]);
    let r = common::run(c);
    assert_eq!(r.code, 0, "{r:?}");
    // one line, after the summary, counting the 3 fibers (lanes) of the run; how many
    // pages each touched is the benchmark's to report (bench/core.py), not a test's
    let line = r
        .stderr
        .lines()
        .find(|l| l.starts_with("prun: fiber stack pages: "))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no fiber pages line: {r:?}"));
    let counted: usize = line
        .split(", ")
        .filter_map(|part| part.rsplit(": ").next())
        .filter_map(|n| n.split_whitespace().next()?.parse::<usize>().ok())
        .sum();
    assert_eq!(counted, 3, "{line}");
    // not set: no line; the threads engine has no fibers to count
    let r = f.run_inv(&inv, &["--engine", "events", "echo hi"]);
    assert!(!r.stderr.contains("fiber stack pages"), "{r:?}");
    let mut c = f.prun();
    c.env("PRUN_FIBER_PAGES", "1")
        .arg("-i")
        .arg(&inv)
        .args(["--engine", "threads", "echo hi"]);
    let r = common::run(c);
    assert!(
        r.stderr
            .contains("prun: fiber stack pages: no fibers in this process"),
        "{r:?}"
    );
}
