//! Fault behaviour against real sshd: hosts that never send a banner, sshd's MaxStartups
//! drops (retries), huge output on both streams, Ctrl-C and --fail-fast.

mod common;

use common::{Fleet, ensure_test_user, pids_of, whoami};
use std::io::Read;
use std::time::{Duration, Instant};

fn inventory_with(f: &Fleet, n: usize, extra_hosts: &str) -> std::path::PathBuf {
    let mut y = format!(
        "all:\n  vars:\n    address: 127.0.0.1\n    user: {}\n    identity_file: {}\n    port: {}\n  hosts:\n",
        whoami(),
        f.key.display(),
        f.port(0)
    );
    for h in 1..=n {
        y.push_str(&format!("    h{h:03}:\n"));
    }
    y.push_str(extra_hosts);
    f.file("faults.yaml", &y)
}

/// Remote commands still running after up to `settle`, if any.
fn leftovers_after(cmdline: &str, settle: Duration) -> Vec<i32> {
    let end = Instant::now() + settle;
    loop {
        let p = pids_of(cmdline);
        if p.is_empty() || Instant::now() >= end {
            return p;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kill leftover remote processes whose command line is exactly `cmdline` (a unique string
/// the test itself started), by PID.
fn kill_leftovers(cmdline: &str) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cl) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cl: Vec<&[u8]> = cl.split(|b| *b == 0).filter(|p| !p.is_empty()).collect();
        let joined = cl
            .iter()
            .map(|p| String::from_utf8_lossy(p))
            .collect::<Vec<_>>()
            .join(" ");
        if joined == cmdline {
            // SAFETY: signalling a process this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            n += 1;
        }
    }
    n
}

#[test]
fn a_listener_that_never_sends_a_banner_costs_only_its_deadline() {
    let f = Fleet::new(1);
    f.trust_all();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    // Accept and hold connections without ever writing.
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        silent.set_nonblocking(true).unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            match silent.accept() {
                Ok((c, _)) => conns.push(c),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
            if conns.len() >= 2 {
                break;
            }
        }
        conns
    });
    let inv = inventory_with(&f, 5, &format!("    mute:\n      port: {silent_port}\n"));
    let report = f.dir.path().join("mute.json");
    let start = Instant::now();
    let r = f.run_inv(
        &inv,
        &[
            "--connect-timeout",
            "1s",
            "--retries",
            "1",
            "--report",
            report.to_str().unwrap(),
            "echo fine",
        ],
    );
    let took = start.elapsed();
    assert_eq!(r.code, 4, "{r:?}");
    assert!(took < Duration::from_secs(8), "took {took:?}: {r:?}");
    let out = r.stdout_text();
    for h in 1..=5 {
        assert!(out.contains(&format!("h{h:03} | fine\n")), "{r:?}");
    }
    assert!(
        r.stderr
            .contains("mute  error     handshake timeout: timed out in handshake (--connect-timeout) (after 2 attempts)"),
        "{r:?}"
    );
    // the summary and the report say why the first attempt failed
    assert!(
        r.stderr
            .contains("(1 needed more than one attempt: 1 handshake timeout)"),
        "{r:?}"
    );
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let hosts = rep["hosts"].as_array().unwrap();
    let mute = hosts.iter().find(|h| h["name"] == "mute").unwrap();
    assert_eq!(
        mute["retried"],
        serde_json::json!(["handshake timeout: timed out in handshake (--connect-timeout)"]),
        "{mute}"
    );
    let fine = hosts.iter().find(|h| h["name"] == "h001").unwrap();
    assert!(fine.get("retried").is_none(), "{fine}");
    drop(held.join());
}

/// A relay to `port` that holds every chunk for `delay` before passing it on, both ways
/// (a far-away or very busy server); its listening port. Serves connections until the test
/// process ends.
fn slow_relay(port: u16, delay: Duration) -> u16 {
    use std::io::Write;
    use std::net::{Shutdown, TcpListener, TcpStream};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_port = l.local_addr().unwrap().port();
    let pass = move |mut from: TcpStream, mut to: TcpStream| {
        let mut buf = vec![0u8; 65536];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    std::thread::sleep(delay);
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    };
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let Ok(s) = TcpStream::connect(("127.0.0.1", port)) else {
                continue;
            };
            let (c2, s2) = (c.try_clone().unwrap(), s.try_clone().unwrap());
            std::thread::spawn(move || pass(c, s));
            std::thread::spawn(move || pass(s2, c2));
        }
    });
    relay_port
}

#[test]
fn a_login_slower_than_the_connect_timeout_succeeds_while_the_server_answers() {
    // 250 ms each way on every chunk: the login takes several seconds, but the server is
    // never silent for --connect-timeout (2s), so it is not given up (and started again)
    let f = Fleet::new(1);
    let relay = slow_relay(f.port(0), Duration::from_millis(250));
    f.write_known_hosts(&f.known_hosts_line(0).replace(
        &format!("[127.0.0.1]:{}", f.port(0)),
        &format!("[127.0.0.1]:{relay}"),
    ));
    let inv = f.file(
        "slow.yaml",
        &format!(
            "all:\n  hosts:\n    far:\n      address: 127.0.0.1\n      port: {relay}\n      user: {}\n      identity_file: {}\n",
            whoami(),
            f.key.display()
        ),
    );
    let start = Instant::now();
    let r = f.run_inv(
        &inv,
        &["--connect-timeout", "2s", "--retries", "0", "echo far"],
    );
    let took = start.elapsed();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text(), "far | far\n", "{r:?}");
    assert!(
        took > Duration::from_secs(2),
        "the relay did not slow the login past --connect-timeout ({took:?}): the test proves nothing"
    );
}

#[test]
fn sshd_maxstartups_drops_are_retried_until_every_host_succeeds() {
    // sshd's default MaxStartups: beyond 10 unauthenticated connections it drops new ones
    // before the banner. 100 hosts at -p 100 must all succeed with the default --retries.
    let f = Fleet::with_config(1, "MaxStartups 10:30:100");
    f.trust_all();
    let inv = inventory_with(&f, 100, "");
    let r = f.run_inv(&inv, &["-p", "100", "echo ok"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text().matches(" | ok\n").count(), 100, "{r:?}");
    assert!(r.stderr.contains("100 ok"), "{r:?}");
    // sshd did drop connections, and prun says some hosts needed retries
    let log = std::fs::read_to_string(&f.servers[0].log).unwrap();
    if log.contains("MaxStartups") || log.contains("drop connection") {
        assert!(r.stderr.contains("needed more than one attempt"), "{r:?}");
    }
}

fn pattern(tag: &str, len: usize) -> Vec<u8> {
    let line = format!("{tag}-abcdefghijklmnopqrstuvwxyz\n");
    line.as_bytes().iter().copied().cycle().take(len).collect()
}

#[test]
fn twenty_megabytes_on_each_stream_at_once_while_100_hosts_run() {
    let f = Fleet::new(2);
    f.trust_all();
    let inv = inventory_with(&f, 100, "    big:\n");
    const SIZE: usize = 20 * 1024 * 1024;
    let cmd = format!(
        "(yes ERR-abcdefghijklmnopqrstuvwxyz | head -c {SIZE} >&2) & \
         yes OUT-abcdefghijklmnopqrstuvwxyz | head -c {SIZE}; wait"
    );
    // one prun runs the big host while another runs 100 small ones against the same sshd
    let r_small = std::thread::scope(|s| {
        let small = s.spawn(|| f.run_inv(&inv, &["-l", "h*", "echo small"]));
        let big = f.run_inv(&inv, &["-l", "big", &cmd]);
        (small.join().unwrap(), big)
    });
    let (small, big) = r_small;
    assert_eq!(small.code, 0, "{small:?}");
    assert_eq!(small.stdout_text().matches(" | small\n").count(), 100);
    assert_eq!(
        big.code,
        0,
        "exit {} stderr tail: {}",
        big.code,
        &big.stderr[big.stderr.len().saturating_sub(2000)..]
    );
    let strip = |bytes: &[u8], prefix: &[u8]| -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        for line in bytes.split_inclusive(|b| *b == b'\n') {
            if let Some(rest) = line.strip_prefix(prefix) {
                out.extend_from_slice(rest);
            }
        }
        out
    };
    let mut want_out = pattern("OUT", SIZE);
    let mut want_err = pattern("ERR", SIZE);
    // prun ends an unterminated last line with a newline
    for w in [&mut want_out, &mut want_err] {
        if w.last() != Some(&b'\n') {
            w.push(b'\n');
        }
    }
    let got_out = strip(&big.stdout, b"big | ");
    let got_err = strip(big.stderr.as_bytes(), b"big | ");
    assert_eq!(got_out.len(), want_out.len());
    assert!(got_out == want_out, "stdout differs");
    assert_eq!(got_err.len(), want_err.len());
    assert!(got_err == want_err, "stderr differs");
}

#[test]
fn ctrl_c_stops_the_run_prints_a_partial_summary_and_exits_130() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = inventory_with(&f, 10, "");
    let user = ensure_test_user();
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["-u", user, "-p", "5", "--report"])
        .arg(f.dir.path().join("partial.json"))
        .arg("sleep 47.31")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: signalling the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let start = Instant::now();
    let status = child.wait().unwrap();
    let stopped_in = start.elapsed();
    let stderr = common::drain(child.stderr.take());
    let left = leftovers_after("sleep 47.31", Duration::from_secs(1));
    kill_leftovers("sleep 47.31");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stopped_in < Duration::from_secs(4), "{stopped_in:?}");
    assert!(
        left.is_empty(),
        "remote sleeps left running: {left:?}\n{stderr}"
    );
    // the report is written after Ctrl-C too
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.dir.path().join("partial.json")).unwrap()).unwrap();
    assert_eq!(report["counts"]["cancelled"], 10, "{report}");
    assert_eq!(
        stderr.matches("remote command stopped (SIGTERM)").count(),
        5,
        "{stderr}"
    );
    assert!(
        stderr.contains("interrupted (Ctrl-C/SIGTERM/SIGHUP); partial summary"),
        "{stderr}"
    );
    assert!(stderr.contains("10 cancelled"), "{stderr}");
    assert!(
        stderr.contains("not started"),
        "five hosts never started: {stderr}"
    );
    assert!(
        stderr.contains("read cancelled: stopped: run interrupted (Ctrl-C/SIGTERM/SIGHUP)"),
        "{stderr}"
    );
}

#[test]
fn fail_fast_stops_at_the_first_failure() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = inventory_with(&f, 6, "");
    let r = f.run_inv(&inv, &["-p", "2", "--fail-fast", "exit 7"]);
    assert!(r.stderr.contains("more than --fail-fast allows"), "{r:?}");
    // the hosts already running finish; the others never start
    assert!(r.stderr.contains("not started ("), "{r:?}");
    assert_eq!(r.code, 6, "stopped by the threshold: {r:?}");
}

#[test]
fn timeout_stops_the_remote_command() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = inventory_with(&f, 5, "");
    let user = ensure_test_user();
    let start = Instant::now();
    let r = f.run_inv(&inv, &["-u", user, "--timeout", "2s", "sleep 61.7"]);
    let took = start.elapsed();
    let left = leftovers_after("sleep 61.7", Duration::from_secs(1));
    kill_leftovers("sleep 61.7");
    assert_eq!(r.code, 3, "{r:?}");
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(
        left.is_empty(),
        "remote sleeps left running: {left:?}\n{r:?}"
    );
    let timed_out = "timeout   read timeout: command did not finish within --timeout 2s";
    assert_eq!(r.stderr.matches(timed_out).count(), 5, "{r:?}");
    assert_eq!(
        r.stderr.matches("remote command stopped (SIGTERM)").count(),
        5,
        "{r:?}"
    );
}

#[test]
fn timeout_as_root_says_the_command_may_still_run() {
    // OpenSSH ignores signal requests for root logins: prun must not claim it stopped it.
    let f = Fleet::new(1);
    f.trust_all();
    let inv = inventory_with(&f, 1, "");
    let r = f.run_inv(&inv, &["-u", "root", "--timeout", "1s", "sleep 61.8"]);
    kill_leftovers("sleep 61.8");
    assert_eq!(r.code, 3, "{r:?}");
    let note = "remote command may still be running: the server did not confirm SIGTERM or SIGKILL";
    assert!(r.stderr.contains(note), "{r:?}");
}

#[test]
fn parallel_is_lowered_to_fit_the_open_file_limit() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = inventory_with(&f, 40, "");
    // a hard limit of 64 open files cannot hold 100 sessions: prun lowers -p and says so,
    // instead of failing hosts with misleading errors
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg(format!(
            "ulimit -n 64 && exec {} -i {} -p 100 'echo ok'",
            env!("CARGO_BIN_EXE_prun"),
            inv.display()
        ))
        .env("HOME", &f.home)
        .env_remove("SSH_AUTH_SOCK");
    let r = common::run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains(
            "--parallel 100 does not fit the open-file limit (64, 2 per running host with \
             these options); using 16"
        ),
        "{r:?}"
    );
    assert_eq!(r.stdout_text().matches(" | ok\n").count(), 40, "{r:?}");
}

#[test]
fn a_server_that_stops_answering_is_detected_by_keepalives() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = inventory_with(&f, 1, "");
    // directly (the kernel's TCP_INFO tells the silence), and through a ProxyCommand (a
    // socket pair: what prun last read tells it)
    for proxy in [None, Some("ProxyCommand=nc 127.0.0.1 %p")] {
        let mut c = f.prun();
        c.arg("-i").arg(&inv);
        if let Some(o) = proxy {
            c.args(["-o", o]);
        }
        c.args(["--keepalive", "1s", "echo start; sleep 30.9"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 12];
        stdout.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"h001 | start", "{proxy:?}");
        // Freeze the server side of the session (the per-connection sshd processes).
        let frozen = common::freeze_sessions(&f.servers[0]);
        let start = Instant::now();
        let status = common::wait_at_most(&mut child, Duration::from_secs(30));
        drop(frozen);
        kill_leftovers("sleep 30.9");
        let stderr = common::drain(child.stderr.take());
        let status = status.expect("prun hung on a server that stopped answering");
        assert_eq!(status.code(), Some(4), "{proxy:?}: {stderr}");
        // 3 silent keepalive intervals (libssh2 makes 1 s into 2 s), plus slack
        assert!(
            start.elapsed() < Duration::from_secs(12),
            "{proxy:?}: {:?}",
            start.elapsed()
        );
        assert!(
            stderr.contains("read io: server stopped answering: nothing received for"),
            "{proxy:?}: {stderr}"
        );
    }
}

#[test]
fn a_silent_command_on_a_live_server_is_not_mistaken_for_a_dead_one() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = inventory_with(&f, 2, "");
    let r = f.run_inv(&inv, &["--keepalive", "1s", "sleep 4.5; echo done"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text().matches(" | done\n").count(), 2, "{r:?}");
    // the same through a ProxyCommand, where silence is what prun last read
    let r = f.run_inv(
        &inv,
        &[
            "-o",
            "ProxyCommand=nc 127.0.0.1 %p",
            "--keepalive",
            "1s",
            "sleep 4.5; echo done",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text().matches(" | done\n").count(), 2, "{r:?}");
}
