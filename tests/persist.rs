//! `--persist`: a holder process keeps logins between separate prun runs. Each test gives the
//! holder its own directory (XDG_RUNTIME_DIR) and stops it at the end; logins are counted in
//! sshd's own log.

mod common;

use common::{Fleet, run};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn logins(f: &Fleet, i: usize) -> usize {
    std::fs::read_to_string(f.dir.path().join(format!("sshd-{i}.log")))
        .unwrap_or_default()
        .matches("Accepted publickey")
        .count()
}

/// Stops the test's holder when dropped (also when the test fails).
struct Holder {
    runtime: PathBuf,
    home: PathBuf,
}

impl Holder {
    fn prun(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_prun"));
        c.env("HOME", &self.home)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env_remove("SSH_AUTH_SOCK")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null());
        c
    }

    fn socket(&self) -> PathBuf {
        self.runtime.join("prun/holder.sock")
    }

    fn gone_within(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while self.socket().exists() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        !self.socket().exists()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let mut c = self.prun();
        c.args(["sessions", "--stop"]);
        let _ = c.output();
    }
}

fn holder(f: &Fleet) -> Holder {
    let runtime = f.dir.path().join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    Holder {
        runtime,
        home: f.home.clone(),
    }
}

fn with_inv(h: &Holder, inv: &Path, args: &[&str]) -> common::Run {
    let mut c = h.prun();
    c.arg("-i").arg(inv).args(args);
    run(c)
}

#[test]
fn later_runs_reuse_the_held_logins_and_sessions_lists_and_stops_them() {
    let f = Fleet::new(2);
    f.trust_all();
    let inv = f.inventory(2);
    let h = holder(&f);
    let r = with_inv(&h, &inv, &["--persist", "30s", "echo one"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text().lines().count(), 2, "{r:?}");
    for word in ["two", "three"] {
        let r = with_inv(&h, &inv, &["--persist", "30s", &format!("echo {word}")]);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(r.stdout_text().contains(&format!("h02 | {word}")), "{r:?}");
        assert!(r.stderr.contains("(2 on held logins)"), "{r:?}");
    }
    // a failing command keeps its exit status through the holder
    let r = with_inv(&h, &inv, &["--persist", "30s", "-l", "h01", "exit 3"]);
    assert_eq!(r.code, 5, "{r:?}");
    // one login per host over four runs
    assert_eq!((logins(&f, 0), logins(&f, 1)), (1, 1));
    let mut c = h.prun();
    c.arg("sessions");
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text().lines().count(), 2, "{r:?}");
    assert!(r.stdout_text().contains("4 command(s)"), "{r:?}");
    let mut c = h.prun();
    c.args(["sessions", "--stop"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        h.gone_within(Duration::from_secs(5)),
        "the holder did not end"
    );
    let mut c = h.prun();
    c.arg("sessions");
    let r = run(c);
    assert!(r.stderr.contains("no holder is running"), "{r:?}");
}

#[test]
fn an_idle_holder_ends_by_itself_and_no_other_user_reaches_it() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = f.inventory(1);
    let h = holder(&f);
    let r = with_inv(&h, &inv, &["--persist", "2s", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(h.socket().exists());
    // another account: the directory is 0700 and the socket 0600, and prun refuses a
    // directory that is not the user's own
    let user = common::ensure_test_user();
    let uid: u32 = common::sh("id", &["-u", user]).trim().parse().unwrap();
    let mut c = h.prun();
    c.args(["sessions"]);
    {
        use std::os::unix::process::CommandExt;
        c.uid(uid);
    }
    let r = run(c);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("not a directory of yours"), "{r:?}");
    let mode = std::fs::metadata(h.runtime.join("prun")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o700);
    assert_eq!(
        std::fs::metadata(h.socket()).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        h.gone_within(Duration::from_secs(10)),
        "the idle holder did not end"
    );
}

#[test]
fn a_held_login_that_dies_while_idle_is_dropped_and_the_next_run_logs_in_once() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = f.inventory(1);
    let h = holder(&f);
    let r = with_inv(&h, &inv, &["--persist", "30s", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    // the server side of the held connection goes away (as on a server restart)
    for (pid, _) in common::descendants(f.servers[0].pid()) {
        // SAFETY: killing per-connection sshd processes of a server this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    // the idle holder notices and drops it; with its last login gone, it ends
    assert!(
        h.gone_within(Duration::from_secs(10)),
        "the dead login is still held"
    );
    let marker = f.dir.path().join("ran");
    let cmd = format!("echo x >> {}", marker.display());
    let r = with_inv(&h, &inv, &["--persist", "30s", &cmd]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "x\n",
        "ran exactly once"
    );
    assert_eq!(logins(&f, 0), 2, "one fresh login replaced the dead one");
}

fn sessions(h: &Holder, args: &[&str]) -> common::Run {
    let mut c = h.prun();
    c.arg("sessions").args(args);
    run(c)
}

#[test]
fn sessions_stop_pattern_closes_only_those_hosts_and_the_report_says_which_reused() {
    let f = Fleet::new(2);
    f.trust_all();
    let inv = f.inventory(3);
    let h = holder(&f);
    let r = with_inv(&h, &inv, &["--persist", "30s", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = sessions(&h, &[]);
    let lines: Vec<String> = r.stdout_text().lines().map(String::from).collect();
    assert_eq!(lines.len(), 3, "{r:?}");
    // host, where, held, idle, commands
    let cols: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(cols[0], "h01", "{r:?}");
    assert!(
        cols[1].ends_with(&format!("@127.0.0.1:{}", f.port(0))),
        "{r:?}"
    );
    assert!(
        cols[2].starts_with("held ") && cols[3].starts_with("idle "),
        "{r:?}"
    );
    assert_eq!(cols[4], "1 command(s)", "{r:?}");

    let r = sessions(&h, &["--stop", "h0[12]"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("closed 2 login(s); the holder keeps"),
        "{r:?}"
    );
    let r = sessions(&h, &[]);
    assert_eq!(r.stdout_text().lines().count(), 1, "{r:?}");
    assert!(r.stdout_text().starts_with("h03\t"), "{r:?}");

    // h01 and h02 log in afresh, h03 runs on its held login; the CSV report says which
    let csv = f.dir.path().join("r.csv");
    let csv_arg = csv.to_str().unwrap();
    let r = with_inv(&h, &inv, &["--persist", "30s", "--report", csv_arg, "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("(1 on held logins)"), "{r:?}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut rows = text.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    let reused = header
        .iter()
        .position(|c| *c == "reused")
        .expect("a reused column");
    let by_host: Vec<(String, String)> = rows
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[0].to_string(), c[reused].to_string())
        })
        .collect();
    assert_eq!(
        by_host,
        [("h01", "false"), ("h02", "false"), ("h03", "true")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .to_vec()
    );
    assert_eq!(
        logins(&f, 0) + logins(&f, 1),
        5,
        "3 first logins, 2 after the stop"
    );

    // closing the last logins ends the holder
    let r = sessions(&h, &["--stop", "h*"]);
    assert!(
        r.stderr.contains("closed 3 login(s); the holder ended"),
        "{r:?}"
    );
    assert!(
        h.gone_within(Duration::from_secs(5)),
        "the holder did not end"
    );
}

#[test]
fn a_held_login_whose_server_stops_answering_is_dropped_while_idle() {
    let f = Fleet::new(2);
    f.trust_all();
    let inv = f.inventory(2);
    let h = holder(&f);
    // keepalives every 2 s (libssh2's least): unanswered for 3 intervals means gone
    let r = with_inv(&h, &inv, &["--persist", "60s", "--keepalive", "2s", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    // h01's server stops answering without closing anything (no FIN, no reset)
    let _frozen = common::freeze_sessions(&f.servers[0]);
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let r = sessions(&h, &[]);
        if r.stderr.contains("1 login(s) held") {
            assert!(r.stdout_text().starts_with("h02\t"), "{r:?}");
            break;
        }
        assert!(
            Instant::now() < end,
            "the silent login is still held: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn stdin_and_a_password_login_go_through_the_holder() {
    let f = Fleet::with_config(1, "PasswordAuthentication yes");
    f.trust_all();
    let user = common::ensure_test_user();
    let hosts = format!("127.0.0.1:{}", f.port(0));
    let h = holder(&f);
    // no key in HOME: only the password logs in; the holder never had it in its environment
    for (i, data) in ["first input\n", "second input\n"].iter().enumerate() {
        let mut c = h.prun();
        c.args([
            "-H",
            &hosts,
            "-u",
            user,
            "--persist",
            "30s",
            "--stdin",
            "cat; id -un",
        ])
        .env("PRUN_PASSWORD", common::TEST_PASSWORD)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(data.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert_eq!(
            stdout,
            format!("127.0.0.1 | {data}127.0.0.1 | {user}\n"),
            "{stderr}"
        );
        assert!(!stderr.contains("running this one directly"), "{stderr}");
        if i == 1 {
            assert!(stderr.contains("(1 on held logins)"), "{stderr}");
        }
        assert!(!stderr.contains(common::TEST_PASSWORD));
    }
    let log = std::fs::read_to_string(f.dir.path().join("sshd-0.log")).unwrap_or_default();
    assert_eq!(log.matches("Accepted password").count(), 1, "{log}");
}

/// sshd forwards the agent per connection (one request honoured, every later command on it
/// given the same socket): on a held login, a later `-A` run relays the agent again, and a
/// run without `-A` gets its agent channels refused — it ends, it does not hang, and it
/// does not reach the agent.
#[test]
fn agent_forwarding_on_a_held_login_follows_each_run() {
    let f = Fleet::new(1);
    f.trust_all();
    let agent = common::start_agent(f.dir.path());
    let h = holder(&f);
    let inv = f.inventory(1);
    let go = |args: &[&str]| {
        let mut c = h.prun();
        c.env("SSH_AUTH_SOCK", &agent.sock)
            .arg("-i")
            .arg(&inv)
            .args(["--persist", "1m", "-F", "none", "--timeout", "20s"])
            .args(args)
            .arg("ssh-add -l 2>&1");
        run(c)
    };
    // what `ssh-add -l` says when it reached the (empty) agent
    let reached = "The agent has no identities";
    let r = go(&["-A"]);
    assert!(r.stdout_text().contains(reached), "{r:?}");
    for args in [&["-A"][..], &[], &["-A"]] {
        let r = go(args);
        assert!(r.stderr.contains("on held logins"), "{args:?}: {r:?}");
        assert_eq!(
            r.stdout_text().contains(reached),
            !args.is_empty(),
            "{args:?}: {r:?}"
        );
        assert!(!r.stderr.contains("timeout"), "{args:?}: {r:?}");
    }
}

/// Start `c` with its output piped.
fn spawn_piped(mut c: Command) -> std::process::Child {
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c.spawn().unwrap()
}

/// Wait for `child` at most a minute (killing it then): its exit code, stdout, stderr.
fn finish(mut child: std::process::Child) -> (Option<i32>, String, String) {
    let status = common::wait_at_most(&mut child, Duration::from_secs(60));
    let out = common::drain(child.stdout.take());
    let err = common::drain(child.stderr.take());
    (status.and_then(|s| s.code()), out, err)
}

#[test]
fn a_run_while_the_holder_serves_another_runs_directly_without_waiting() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = f.inventory(1);
    let h = holder(&f);
    let r = with_inv(&h, &inv, &["--persist", "30s", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    // a run through the holder that lasts until this test lets it end
    let started = f.dir.path().join("slow-started");
    let go = f.dir.path().join("slow-go");
    let slow_cmd = format!(
        "touch {s}; i=0; while [ ! -e {g} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; echo slow",
        s = started.display(),
        g = go.display()
    );
    let mut c = h.prun();
    c.arg("-i").arg(&inv).args(["--persist", "30s", &slow_cmd]);
    let slow = spawn_piped(c);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the slow run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // meanwhile another run: told at once that the holder is busy, it runs directly (were it
    // queued behind the slow run, it would wait for the go file that only comes after it),
    // and `prun sessions` is answered at once too
    let mut c = h.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["--persist", "30s", "echo quick"]);
    let (code, out, err) = finish(spawn_piped(c));
    let mut c = h.prun();
    c.arg("sessions");
    let (ls_code, _, ls_err) = finish(spawn_piped(c));
    std::fs::write(&go, "").unwrap();
    assert_eq!(ls_code, Some(1), "{ls_err}");
    assert!(ls_err.contains("serving another run"), "{ls_err}");
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("h01 | quick"), "{out}\n{err}");
    assert!(
        err.contains("serving another run") && err.contains("running this one directly"),
        "{err}"
    );
    assert!(!err.contains("on held logins"), "{err}");
    let (code, out, err) = finish(slow);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("h01 | slow"), "{out}\n{err}");
    assert!(err.contains("(1 on held logins)"), "{err}");
}
