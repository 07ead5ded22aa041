//! The user's existing SSH set-up, against real sshd: password logins, passphrase-protected
//! keys (decrypted once per run), ssh_config and jump hosts.

mod common;

use common::{Fleet, run};
use std::path::Path;
use std::process::Command;

/// Run a command to completion and return its exit code and CPU seconds (user + system) of
/// that process alone (wait4), so tests running in parallel do not count.
fn cpu_of(mut c: Command) -> (i32, f64, String) {
    use std::process::Stdio;
    #[allow(clippy::zombie_processes)] // reaped by wait4 below, for its rusage
    let child = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut stderr = child.stderr.unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    let mut status = 0;
    // SAFETY: rusage is plain data written by wait4 for our own child.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut ru), pid);
        ru
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (
        code,
        secs(ru.ru_utime) + secs(ru.ru_stime),
        reader.join().unwrap(),
    )
}

#[test]
fn password_login_with_prun_password_and_never_shown() {
    let f = Fleet::with_config(1, "PasswordAuthentication yes");
    f.trust_all();
    let user = common::ensure_test_user();
    let port = f.port(0).to_string();
    let hosts = format!("127.0.0.1:{port}");
    // no key at all in HOME, so only the password can work
    let mut c = f.prun();
    c.args(["-H", &hosts, "-u", user, "--report"])
        .arg(f.dir.path().join("r.json"))
        .arg("id -un")
        .env("PRUN_PASSWORD", common::TEST_PASSWORD);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text(), format!("127.0.0.1 | {user}\n"));
    let report = std::fs::read_to_string(f.dir.path().join("r.json")).unwrap();
    assert!(report.contains("\"password\""), "{report}");
    for text in [&r.stderr, &r.stdout_text(), &report] {
        assert!(!text.contains(common::TEST_PASSWORD));
    }
    // a wrong password: refused, exit 5-class failure, the password not echoed
    let mut c = f.prun();
    c.args(["-H", &hosts, "-u", user, "--retries", "0", "id -un"])
        .env("PRUN_PASSWORD", "not-the-password");
    let r = run(c);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("permission denied"), "{r:?}");
    assert!(r.stderr.contains("password"), "{r:?}");
    assert!(!r.stderr.contains("not-the-password"), "{r:?}");
    // --ask-pass with no terminal: a clear usage error before any host is contacted
    let mut c = f.prun();
    c.args(["-H", &hosts, "-u", user, "--ask-pass", "true"]);
    common::without_terminal(&mut c);
    let r = run(c);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("--ask-pass: cannot read a password"),
        "{r:?}"
    );
}

/// An OpenSSH-format key protected by a passphrase with `rounds` bcrypt rounds.
fn protected_key(dir: &Path, rounds: &str) -> std::path::PathBuf {
    let p = dir.join("id_protected");
    common::sh(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-a",
            rounds,
            "-N",
            "correct horse",
            "-C",
            "protected",
            "-f",
            p.to_str().unwrap(),
        ],
    );
    p
}

#[test]
fn passphrase_key_is_decrypted_once_for_twenty_hosts() {
    let f = Fleet::new(2);
    f.trust_all();
    let key = protected_key(f.dir.path(), "64");
    std::fs::copy(
        key.with_extension("pub"),
        f.dir.path().join("authorized_keys"),
    )
    .unwrap();
    let inv = f.inventory(20);

    // what one decryption costs on this machine: ssh-keygen -y decrypts the key once
    let mut one = Command::new("ssh-keygen");
    one.args(["-y", "-P", "correct horse", "-f"]).arg(&key);
    let (code, unit, err) = cpu_of(one);
    assert_eq!(code, 0, "{err}");

    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["--identity", key.to_str().unwrap(), "true"])
        .env("PRUN_KEY_PASSPHRASE", "correct horse");
    let (code, cpu, err) = cpu_of(c);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("20 ok"), "{err}");
    assert!(!err.contains("correct horse"), "{err}");
    eprintln!("one decryption: {unit:.3}s CPU; prun, 20 hosts: {cpu:.3}s CPU");
    // one bcrypt per host would cost at least 20 units; decrypting once costs about one
    assert!(
        cpu < unit * 8.0 + 1.0,
        "prun used {cpu:.2}s CPU for 20 hosts; one decryption costs {unit:.2}s: \
         the key is being decrypted per host"
    );

    // a wrong passphrase is a usage error naming the key, before any host is contacted
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["--identity", key.to_str().unwrap(), "true"])
        .env("PRUN_KEY_PASSPHRASE", "wrong");
    let r = run(c);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("wrong passphrase"), "{r:?}");
    assert!(r.stderr.contains("id_protected"), "{r:?}");

    // no passphrase and no terminal: the key is skipped with a warning, and auth fails
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["--identity", key.to_str().unwrap(), "-l", "h01", "true"]);
    common::without_terminal(&mut c);
    let r = run(c);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("skipping passphrase-protected key"),
        "{r:?}"
    );
}
