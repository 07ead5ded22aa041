//! `prun shell` against real sshd: commands read from a pipe (rustyline reads plain lines
//! when stdin is not a terminal), each host logged in to once across many commands (counted
//! in sshd's own log), built-ins, and Ctrl-C stopping a running command but not the shell.

mod common;

use common::Fleet;
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
            b"echo one\n:limit h01\n:hosts\necho two\n:sessions\n:limit\necho three-{host}\n\
              echo {nope}\necho four\n:quit\n",
        )
        .unwrap();
    let (code, out, err) = finish(child);
    assert_eq!(code, 0, "{out}\n{err}");
    // lines piped in are not kept in the history (only a shell on a terminal keeps it)
    assert!(
        !f.home.join(".local/state/prun/shell_history").exists(),
        "a piped shell wrote history"
    );
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "h01",
            "h01 | four",
            "h01 | one",
            "h01 | three-h01",
            "h01 | two",
            "h02 | four",
            "h02 | one",
            "h02 | three-h02"
        ],
        "{err}"
    );
    assert!(err.contains("2 login(s) held"), "{err}");
    assert!(err.contains("1 ok (1 on held logins)"), "{err}");
    assert!(err.contains("2 ok (2 on held logins)"), "{err}");
    assert!(err.contains("2 command(s)"), "{err}");
    // a line may use {name}; an unknown one is said and the shell goes on
    assert!(
        err.contains("uses {nope}, but host 'h01' has no var 'nope'"),
        "{err}"
    );
    // four commands on h01, three on h02: one login each
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
    common::wait_for_processes("sleep 47.77", 2);
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let left = common::leftovers_killed("sleep 47.77");
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

#[test]
fn on_a_terminal_lines_edit_history_recalls_and_ctrl_c_returns_to_the_prompt() {
    let f = Fleet::new(1);
    f.trust_all();
    let user = common::ensure_test_user(); // OpenSSH ignores signal requests for root
    let inv = f.inventory(2);
    let history = f.dir.path().join("history");
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["-u", user, "--progress", "never", "shell"])
        .env("PRUN_HISTORY", &history);
    let mut t = common::Terminal::spawn(c);
    t.expect("prun (2 hosts)> ", 1);
    t.type_keys("echo one\r");
    t.expect("h01 | one", 1);
    t.expect("h02 | one", 1);
    t.expect("prun (2 hosts)> ", 2);
    // a selection change, then a line edited with backspace and the arrow keys
    t.type_keys(":limit h02\r");
    t.expect("prun (1 hosts)> ", 1);
    t.type_keys("echo twx\x7fo\x1b[D\x1b[D\x1b[Dl \x1b[F\r"); // → "echo l two"
    // (the prompt itself is redrawn while the line is edited: wait for the output)
    t.expect("h02 | l two", 1);
    let shown = t.text();
    assert!(shown.contains("h02 | l two"), "{shown}");
    assert!(!shown.contains("h01 | l two"), "{shown}");
    // the up arrow recalls the last line
    t.type_keys("\x1b[A\r");
    t.expect("h02 | l two", 2);
    t.expect("prun (1 hosts)> ", 3);
    // Ctrl-C typed on the terminal stops the remote command and the prompt returns
    t.type_keys(":limit\r");
    t.expect("prun (2 hosts)> ", 3);
    t.type_keys("sleep 48.88\r");
    common::wait_for_processes("sleep 48.88", 2);
    t.type_keys("\x03");
    t.expect("prun (2 hosts)> ", 4);
    let left = common::leftovers_killed("sleep 48.88");
    assert!(left.is_empty(), "remote sleeps still running: {left:?}");
    // Ctrl-D at an empty prompt leaves
    t.type_keys("\x04");
    let st = common::wait_at_most(&mut t.child, Duration::from_secs(20)).expect("shell hung");
    assert_eq!(
        st.code(),
        Some(130),
        "the last command was interrupted: {}",
        t.text()
    );
    // one login per host for all of it, and the history kept for the next shell
    assert_eq!(logins(&f, 0), 2, "{}", t.text());
    let kept = std::fs::read_to_string(&history).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&history).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the history is private");
    for line in ["echo one", ":limit h02", "echo l two", "sleep 48.88"] {
        assert!(kept.contains(line), "{line:?} not in the history:\n{kept}");
    }
}

#[test]
fn sigterm_at_the_prompt_ends_the_shell() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = f.inventory(1);
    let mut child = spawn_shell(&f, &inv, &[]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"echo one\n").unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while logins(&f, 0) < 1 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = common::wait_at_most(&mut child, Duration::from_secs(10));
    assert!(st.is_some(), "the shell ignored SIGTERM at its prompt");
    assert_eq!(st.unwrap().code(), Some(130));
}
