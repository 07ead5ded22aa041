//! `prun shell` against real sshd: commands read from a pipe (rustyline reads plain lines
//! when stdin is not a terminal), each host logged in to once across many commands (counted
//! in sshd's own log), built-ins, and Ctrl-C stopping a running command but not the shell.

mod common;

use common::{Fleet, pids_of};
use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn logins(f: &Fleet, i: usize) -> usize {
    std::fs::read_to_string(f.dir.path().join(format!("sshd-{i}.log")))
        .unwrap_or_default()
        .matches("Accepted publickey")
        .count()
}

fn spawn_shell(f: &Fleet, inv: &std::path::Path, args: &[&str]) -> Child {
    let mut c = f.prun();
    c.arg("-i")
        .arg(inv)
        .args(args)
        .arg("shell")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.spawn().unwrap()
}

fn finish(mut child: Child) -> (i32, String, String) {
    let st = common::wait_at_most(&mut child, Duration::from_secs(60)).expect("shell hung");
    let out = common::drain(child.stdout.take());
    let err = common::drain(child.stderr.take());
    (st.code().unwrap_or(-1), out, err)
}

#[test]
fn each_host_logs_in_once_across_commands_and_selection_changes() {
    let f = Fleet::new(2);
    f.trust_all();
    let inv = f.inventory(2); // h01 on server 0, h02 on server 1
    let mut child = spawn_shell(&f, &inv, &[]);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"echo one\n:limit h01\n:hosts\necho two\n:sessions\n:limit\necho three\n:quit\n",
        )
        .unwrap();
    let (code, out, err) = finish(child);
    assert_eq!(code, 0, "{out}\n{err}");
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "h01",
            "h01 | one",
            "h01 | three",
            "h01 | two",
            "h02 | one",
            "h02 | three"
        ],
        "{err}"
    );
    assert!(err.contains("2 login(s) held"), "{err}");
    assert!(err.contains("1 ok (1 on held logins)"), "{err}");
    assert!(err.contains("2 ok (2 on held logins)"), "{err}");
    assert!(err.contains("2 command(s)"), "{err}");
    // three commands on h01, two on h02: one login each
    assert_eq!((logins(&f, 0), logins(&f, 1)), (1, 1), "{err}");
}

#[test]
fn ctrl_c_stops_the_running_command_and_the_shell_goes_on() {
    let f = Fleet::new(1);
    f.trust_all();
    let user = common::ensure_test_user(); // OpenSSH ignores signal requests for root
    let inv = f.inventory(2);
    let mut child = spawn_shell(&f, &inv, &["-u", user]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"sleep 47.77\n").unwrap();
    let start = Instant::now();
    while pids_of("sleep 47.77").len() < 2 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(pids_of("sleep 47.77").len(), 2, "the sleeps did not start");
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let end = Instant::now() + Duration::from_secs(10);
    while !pids_of("sleep 47.77").is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = pids_of("sleep 47.77");
    for p in &left {
        // SAFETY: killing a leftover the test started.
        unsafe { libc::kill(*p, libc::SIGKILL) };
    }
    assert!(left.is_empty(), "remote sleeps still running: {left:?}");
    stdin.write_all(b"echo after\n:quit\n").unwrap();
    drop(stdin);
    let (code, out, err) = finish(child);
    assert!(
        out.contains("h01 | after") && out.contains("h02 | after"),
        "{out}\n{err}"
    );
    assert!(err.contains("remote command stopped"), "{err}");
    assert_eq!(code, 0, "the last command succeeded: {err}");
    // the interrupted command did not cost the logins: one per host in all
    assert_eq!(logins(&f, 0), 2, "{err}");
}

#[test]
fn a_held_connection_that_died_is_replaced_and_the_command_runs_once() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = f.inventory(1);
    let mut child = spawn_shell(&f, &inv, &[]);
    let mut stdin = child.stdin.take().unwrap();
    let marker = f.dir.path().join("ran");
    stdin.write_all(b"echo first\n").unwrap();
    // wait for the first command's login, then kill the server side of the held connection
    let end = Instant::now() + Duration::from_secs(20);
    while logins(&f, 0) < 1 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let sessions = common::descendants(f.servers[0].pid());
    assert!(
        !sessions.is_empty(),
        "no server process for the held connection"
    );
    for (pid, _) in &sessions {
        // SAFETY: killing the per-connection sshd processes of a server this test started.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    std::thread::sleep(Duration::from_millis(300));
    stdin
        .write_all(format!("echo x >> {}; echo second\n:quit\n", marker.display()).as_bytes())
        .unwrap();
    drop(stdin);
    let (code, out, err) = finish(child);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("h01 | second"), "{out}\n{err}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "x\n",
        "ran exactly once"
    );
    assert_eq!(
        logins(&f, 0),
        2,
        "a fresh login replaced the dead one: {err}"
    );
}
