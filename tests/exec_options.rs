//! `--env`, `--cwd`, `--stdin`, `--pty` against real sshd.

mod common;

use common::Fleet;
use std::io::Write;
use std::process::Stdio;

#[test]
fn env_is_seen_by_the_remote_command() {
    // The test sshd accepts FROM_REQUEST (AcceptEnv) and refuses the rest: both paths.
    let f = Fleet::with_config(1, "AcceptEnv FROM_REQUEST");
    f.trust_all();
    let inv = f.inventory(3);
    let r = f.run_inv(
        &inv,
        &[
            "--env",
            "FROM_REQUEST=a b",
            "--env",
            "FALLBACK=it's \"quoted\" $HOME",
            "printf '%s|%s\\n' \"$FROM_REQUEST\" \"$FALLBACK\"",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    for h in ["h01", "h02", "h03"] {
        assert!(
            r.stdout_text()
                .contains(&format!("{h} | a b|it's \"quoted\" $HOME\n")),
            "{r:?}"
        );
    }
}

#[test]
fn cwd_runs_the_command_there() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = f.inventory(1);
    let dir = f.dir.path().join("work dir");
    std::fs::create_dir(&dir).unwrap();
    let r = f.run_inv(&inv, &["--cwd", dir.to_str().unwrap(), "pwd"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text(), format!("h01 | {}\n", dir.display()));
}

#[test]
fn stdin_is_delivered_to_every_host_byte_exact() {
    let f = Fleet::new(2);
    f.trust_all();
    let inv = f.inventory(5);
    let out = f.dir.path().join("out");
    let mut data = Vec::new();
    let mut x: u32 = 7;
    for _ in 0..(300 * 1024) {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        data.push((x >> 16) as u8);
    }
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["--stdin", "-q", "--out-dir"])
        .arg(&out)
        .arg("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for h in 1..=5 {
        let got = std::fs::read(out.join(format!("h{h:02}.out"))).unwrap();
        assert!(
            got == data,
            "h{h:02}: {} bytes, want {}",
            got.len(),
            data.len()
        );
    }
}

#[test]
fn commands_get_an_empty_stdin_without_the_flag() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = f.inventory(1);
    let r = f.run_inv(&inv, &["--timeout", "5s", "cat; echo done"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text(), "h01 | done\n");
}

#[test]
fn pty_merges_streams_and_ends_root_commands_with_the_connection() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = f.inventory(1);
    let r = f.run_inv(&inv, &["--pty", "echo out; echo err >&2"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text(), "h01 | out\r\nh01 | err\r\n", "{r:?}");
    assert!(
        r.stderr.starts_with("prun: 1 host"),
        "nothing on stderr but the summary: {r:?}"
    );
    // as root, signals are ignored, but with a pty the command ends with the channel
    let r = f.run_inv(
        &inv,
        &["-u", "root", "--pty", "--timeout", "1s", "sleep 62.4"],
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr
            .contains("it is hung up (SIGHUP) as the connection closes (--pty; not confirmed)"),
        "{r:?}"
    );
    // ...and it is: nothing is left running
    let mut left = Vec::new();
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = common::pids_of("sleep 62.4");
        if left.is_empty() {
            break;
        }
    }
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn sudo_runs_as_root_with_the_password_fed_once_and_never_shown() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = f.inventory(2);
    let user = common::ensure_test_sudo();
    // with the password: root, and neither the password nor prun's prompt marker shows
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["-u", user, "--sudo", "--stdin", "id -un; cat"])
        .env("PRUN_SUDO_PASSWORD", common::TEST_PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"stdin-after-sudo\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    for h in ["h01", "h02"] {
        // lines of different hosts may interleave; each host's own lines are in order
        let mine: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with(&format!("{h} | ")))
            .collect();
        assert_eq!(
            mine,
            [format!("{h} | root"), format!("{h} | stdin-after-sudo")],
            "{out}"
        );
    }
    assert!(!out.contains(common::TEST_PASSWORD) && !err.contains(common::TEST_PASSWORD));
    assert!(!err.contains("[prun:sudo:"), "{err}");
    // --sudo-user, and without a password sudo -n fails at once instead of waiting
    let r = f.run_inv(&inv, &["-u", user, "--sudo-user", "nobody", "id -un"]);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stdout_text().is_empty(), "{r:?}");
    assert!(r.stderr.contains("sudo: a password is required"), "{r:?}");
    // a wrong password: sudo fails, prun does not hang
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["-u", user, "--sudo", "--timeout", "20s", "id -un"])
        .env("PRUN_SUDO_PASSWORD", "wrong");
    let r = common::run(c);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.contains("incorrect password"), "{r:?}");
    // a command that finds the prompt marker in sudo's argv and prints it once it runs gets
    // no password: it is believed only as the first thing sudo writes
    let steal = "id -un; sleep 0.3; \
                 m=$(ps -eo args= | grep -o '\\[prun:sudo:[0-9a-f]*\\]' | head -n 1); \
                 printf '%s' \"$m\" >&2; sleep 0.5; cat; echo; echo got-stdin-eof";
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["-l", "h01", "-u", user, "--sudo", "--timeout", "20s", steal])
        .env("PRUN_SUDO_PASSWORD", common::TEST_PASSWORD);
    let r = common::run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("[prun:sudo:"),
        "the marker passes as output: {r:?}"
    );
    assert!(r.stdout_text().contains("got-stdin-eof"), "{r:?}");
    assert!(!r.stdout_text().contains(common::TEST_PASSWORD), "{r:?}");
}
