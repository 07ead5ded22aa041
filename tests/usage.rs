//! Usage errors a careless command line can cause: each exits 2 with a message naming what
//! was wrong, before anything is run, and never panics. No sshd is needed.

use std::process::{Command, Stdio};

fn prun(args: &[&str]) -> (i32, String) {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_prun"))
        .env("HOME", home.path())
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_unknown_option_is_refused_not_run_as_the_command() {
    let (code, err) = prun(&["-H", "127.0.0.1:1", "--timout", "5", "true"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("'--timout'") && err.contains("--timeout"),
        "{err}"
    );
    let (code, err) = prun(&["-H", "127.0.0.1:1", "--serial", "1", "true"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'--serial'") && err.contains("'--'"), "{err}");
}

#[test]
fn numbers_too_large_are_refused() {
    let (code, err) = prun(&[
        "-H",
        "w[18446744073709551614-18446744073709551615]",
        "--list-hosts",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = prun(&["-H", "w[0-18446744073709551615]", "--list-hosts"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("more than 1000000"), "{err}");
    for args in [
        &["--connect-timeout", "10000000000000000000"][..],
        &["-t", "300000000000y"],
        &["--keepalive", "99999999999"],
    ] {
        let mut a = vec!["-H", "127.0.0.1:1"];
        a.extend_from_slice(args);
        a.push("true");
        let (code, err) = prun(&a);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("longest duration"), "{args:?}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config");
    std::fs::write(&cfg, "Host *\n  ConnectTimeout 18446744073709551615\n").unwrap();
    let (code, err) = prun(&["-F", cfg.to_str().unwrap(), "-H", "x", "true"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("ConnectTimeout") && err.contains("config"),
        "{err}"
    );
}

#[test]
fn a_bench_too_large_to_plan_is_refused() {
    let (code, err) = prun(&[
        "-H",
        "127.0.0.1:1",
        "bench",
        "--levels",
        "10000",
        "--rounds",
        "1000",
        "true",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("100000 sessions"), "{err}");
}

#[test]
fn a_jump_host_without_host_key_checking_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config");
    std::fs::write(&cfg, "Host bastion\n  StrictHostKeyChecking no\n").unwrap();
    let (code, err) = prun(&[
        "-F",
        cfg.to_str().unwrap(),
        "-J",
        "bastion",
        "-H",
        "target",
        "--list-hosts",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("host key checking is off for jump host bastion"),
        "{err}"
    );
}
