//! The user's existing SSH set-up, against real sshd: password logins, passphrase-protected
//! keys (decrypted once per run), ssh_config and jump hosts.

mod common;

use common::{Fleet, run};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

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
    // host key checking off and the key changed: connect, say so, but never send the
    // password (as OpenSSH does); an unknown key under off is noted too
    let other = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    f.write_known_hosts(&format!("[127.0.0.1]:{port} ssh-ed25519 {other}\n"));
    let mut c = f.prun();
    c.args(["-H", &hosts, "-u", user, "--retries", "0"])
        .args(["--host-key-check", "off", "id -un"])
        .env("PRUN_PASSWORD", common::TEST_PASSWORD);
    let r = run(c);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("HOST KEY CHANGED"), "{r:?}");
    assert!(
        r.stderr.contains("password authentication disabled"),
        "{r:?}"
    );
    f.write_known_hosts("");
    let mut c = f.prun();
    c.args([
        "-H",
        &hosts,
        "-u",
        user,
        "--host-key-check",
        "off",
        "id -un",
    ])
    .env("PRUN_PASSWORD", common::TEST_PASSWORD);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("NOT verified"), "{r:?}");
    f.trust_all();
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

    // the same key as the default ~/.ssh/id_ed25519: a wrong passphrase is a usage error
    // too, and without one every host's error names the locked key
    let home_key = f.home.join(".ssh/id_ed25519");
    std::fs::create_dir_all(f.home.join(".ssh")).unwrap();
    std::fs::copy(&key, &home_key).unwrap();
    let hosts = format!("127.0.0.1:{}", f.port(0));
    let mut c = f.prun();
    c.args(["-H", &hosts, "true"])
        .env("PRUN_KEY_PASSPHRASE", "wrong");
    let r = run(c);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("wrong passphrase"), "{r:?}");
    assert!(r.stderr.contains(".ssh/id_ed25519"), "{r:?}");
    let mut c = f.prun();
    c.args(["-H", &hosts, "--retries", "0", "true"]);
    common::without_terminal(&mut c);
    let r = run(c);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr
            .contains("~/.ssh/id_ed25519 is passphrase-protected"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("create ~/.ssh/id_ed25519"), "{r:?}");
    std::fs::remove_file(&home_key).unwrap();
}

#[test]
fn ssh_config_hosts_work_with_no_other_flags() {
    let f = Fleet::new(2);
    let ssh = f.home.join(".ssh");
    std::fs::create_dir_all(ssh.join("conf.d")).unwrap();
    let me = common::whoami();
    std::fs::write(
        ssh.join("config"),
        format!(
            "Include conf.d/*.conf\n\
             Host web* aliased\n  HostName 127.0.0.1\n  User {me}\n  IdentityFile {key}\n  \
             IdentitiesOnly yes\n  UserKnownHostsFile ~/.ssh/fleet_known_hosts\n\
             Host aliased\n  Port {p0}\n  HostKeyAlias fleet-alias\n\
             Host newhost\n  HostName 127.0.0.1\n  Port {p1}\n  User {me}\n  \
             IdentityFile {key}\n  StrictHostKeyChecking accept-new\n",
            key = f.key.display(),
            p0 = f.port(0),
            p1 = f.port(1),
        ),
    )
    .unwrap();
    std::fs::write(
        ssh.join("conf.d/ports.conf"),
        format!(
            "Match host web01\n  Port {}\nMatch originalhost web02\n  Port {}\n\
             Match user nobody\n  Port 1\n",
            f.port(0),
            f.port(1)
        ),
    )
    .unwrap();
    // the keys are only in the file UserKnownHostsFile names, plus one under the alias
    std::fs::write(
        ssh.join("fleet_known_hosts"),
        format!(
            "{}{}fleet-alias {}\n",
            f.known_hosts_line(0),
            f.known_hosts_line(1),
            f.host_key
        ),
    )
    .unwrap();

    let mut c = f.prun();
    c.args(["-H", "web01,web02,aliased", "echo hi"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    let mut lines: Vec<String> = r
        .stdout_text()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    lines.sort();
    assert_eq!(lines, ["aliased | hi", "web01 | hi", "web02 | hi"], "{r:?}");
    // the unsupported Match block is named, with its file and line
    assert!(
        r.stderr.contains("ports.conf:5: 'Match user nobody'"),
        "{r:?}"
    );

    // where each value came from
    let mut c = f.prun();
    c.args(["-H", "web02", "--list-hosts"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    let cols: Vec<String> = r
        .stdout_text()
        .trim_end()
        .split('\t')
        .map(String::from)
        .collect();
    assert_eq!(
        cols[..5],
        ["web02", "127.0.0.1", &f.port(1).to_string(), &me, "-"],
        "{r:?}"
    );
    for s in [
        "address=ssh_config:~/.ssh/config",
        "port=ssh_config:~/.ssh/config",
        "user=ssh_config:~/.ssh/config",
        "known_hosts=ssh_config:~/.ssh/config",
    ] {
        assert!(cols[5].contains(s), "{s} in {cols:?}");
    }
    // the command line beats ssh_config
    let mut c = f.prun();
    c.args(["-H", "web02", "--list-hosts", "-u", "other", "--port", "2"]);
    let r = run(c);
    assert!(
        r.stdout_text().starts_with("web02\t127.0.0.1\t2\tother\t"),
        "{r:?}"
    );

    // StrictHostKeyChecking accept-new from ssh_config records the new key
    let mut c = f.prun();
    c.args(["-H", "newhost", "echo new"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        std::fs::read_to_string(f.known_hosts_path())
            .unwrap()
            .contains(&format!("[127.0.0.1]:{}", f.port(1)))
    );

    // -F none: the names mean nothing any more
    let mut c = f.prun();
    c.args(["-F", "none", "-H", "web01", "--retries", "0", "echo hi"]);
    let r = run(c);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stdout_text().is_empty(), "{r:?}");
    // -F FILE reads that file instead
    let other = f.file(
        "other.conf",
        &format!(
            "Host web01\n  HostName 127.0.0.1\n  Port {}\n  User {me}\n  IdentityFile {}\n",
            f.port(0),
            f.key.display()
        ),
    );
    f.trust_all();
    let mut c = f.prun();
    c.arg("-F").arg(&other).args(["-H", "web01", "echo via-F"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text(), "web01 | via-F\n");
}

/// A bastion sshd (default MaxSessions 10, DEBUG1 log to see forwarded channels) that
/// accepts the fleet's user key, and known_hosts trusting both.
fn bastion_for(f: &Fleet, extra: &str) -> Fleet {
    let b = Fleet::with_config(1, &format!("MaxSessions 10\nLogLevel DEBUG1\n{extra}"));
    std::fs::copy(
        f.key.with_extension("pub"),
        b.dir.path().join("authorized_keys"),
    )
    .unwrap();
    let mut kh: String = (0..f.servers.len())
        .map(|i| f.known_hosts_line(i))
        .collect();
    kh.push_str(&b.known_hosts_line(0));
    f.write_known_hosts(&kh);
    b
}

fn count(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(needle)
        .count()
}

#[test]
fn fifty_targets_behind_one_bastion_login() {
    let f = Fleet::new(2);
    let b = bastion_for(&f, "");
    let inv = f.inventory(50);
    let jump = format!("{}@127.0.0.1:{}", common::whoami(), b.port(0));
    let mut c = f.prun();
    c.arg("-i").arg(&inv).args([
        "-J",
        &jump,
        "--identity",
        f.key.to_str().unwrap(),
        "-p",
        "50",
        "--report",
    ]);
    c.arg(f.dir.path().join("r.json")).arg("echo through");
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text().lines().count(), 50, "{r:?}");
    assert!(r.stderr.contains("50 ok"), "{r:?}");
    let log = &b.servers[0].log;
    // one login to the bastion, fifty channels through it
    assert_eq!(count(log, "Accepted publickey"), 1, "bastion log");
    assert_eq!(count(log, "server_request_direct_tcpip"), 50, "bastion log");
    // per-target timings are still there, connect included
    let report = std::fs::read_to_string(f.dir.path().join("r.json")).unwrap();
    assert!(report.contains("\"connect\""), "{report}");

    // the same through the inventory's `jump` and through ssh_config's ProxyJump
    let inv2 = f.file(
        "jump.yaml",
        &format!(
            "all:\n  vars:\n    address: 127.0.0.1\n    user: {}\n    identity_file: {}\n    jump: bastion\n  hosts:\n    t1:\n      port: {}\n",
            common::whoami(),
            f.key.display(),
            f.port(0)
        ),
    );
    let cfg = f.file(
        "ssh.conf",
        &format!(
            "Host bastion\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n\
             Host via-config\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n  \
             ProxyJump bastion\n",
            b.port(0),
            common::whoami(),
            f.key.display(),
            f.port(1),
            common::whoami(),
            f.key.display()
        ),
    );
    let mut c = f.prun();
    c.arg("-F")
        .arg(&cfg)
        .arg("-i")
        .arg(&inv2)
        .args(["-H", "via-config", "echo ok"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        count(log, "Accepted publickey"),
        2,
        "one more run, one more login"
    );
    assert_eq!(count(log, "server_request_direct_tcpip"), 52, "bastion log");
    // files go through the bastion too
    let src = f.file("through.txt", "pushed through the bastion\n");
    let dst = f.dir.path().join("jumped");
    let mut c = f.prun();
    c.arg("-F")
        .arg(&cfg)
        .args(["-H", "via-config", "push", "--mkdir", "--checksum"]);
    c.arg(&src).arg(&dst);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(dst.join("through.txt")).unwrap(),
        "pushed through the bastion\n"
    );
    assert_eq!(count(log, "server_request_direct_tcpip"), 53, "bastion log");
    let mut c = f.prun();
    c.arg("-F")
        .arg(&cfg)
        .args(["-H", "via-config", "--list-hosts"]);
    let r = run(c);
    let jump_col = format!("{}@127.0.0.1:{}", common::whoami(), b.port(0));
    assert!(r.stdout_text().contains(&jump_col), "{r:?}");
    assert!(r.stdout_text().contains("jump=ssh_config:"), "{r:?}");
}

#[test]
fn bastion_failures_are_named_and_paid_once() {
    let f = Fleet::new(1);
    let b = bastion_for(&f, "AllowTcpForwarding no");
    let inv = f.inventory(5);
    let jump = format!("{}@127.0.0.1:{}", common::whoami(), b.port(0));
    let key = f.key.to_str().unwrap().to_string();
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["-J", &jump, "--identity", &key, "--retries", "0", "true"]);
    let r = run(c);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("jump host 127.0.0.1"), "{r:?}");
    assert!(r.stderr.contains("refused the channel"), "{r:?}");

    // an unknown bastion host key: refused before any credential, one attempt for all hosts
    f.write_known_hosts(&f.known_hosts_line(0));
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["-J", &jump, "--identity", &key, "true"]);
    let r = run(c);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("host key for"), "{r:?}");
    assert_eq!(
        count(&b.servers[0].log, "Accepted publickey"),
        1,
        "only the first run logged in"
    );
}

#[test]
fn a_plain_key_under_only_a_certificate_authority_is_refused_clearly() {
    let f = Fleet::new(1);
    // only a CA line covers the host (its key stands in for a CA key here)
    f.write_known_hosts(&format!("@cert-authority [127.0.0.1]:* {}\n", f.host_key));
    let inv = f.inventory(1);
    let r = f.run_inv(&inv, &["true"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("certificate authority"), "{r:?}");
    assert!(r.stderr.contains("known_hosts:1"), "{r:?}");
    assert!(!r.stderr.contains("CHANGED"), "{r:?}");
}

#[test]
fn a_bastion_in_the_inventory_keeps_its_inventory_settings() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.yaml");
    std::fs::write(
        &inv,
        "all:\n  hosts:\n    gw:\n      address: 10.9.9.9\n      port: 2200\n      user: jumper\n  \
         children:\n    db:\n      vars:\n        jump: gw\n      hosts:\n        db1:\n        db2:\n          jump: none\n",
    )
    .unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_prun"));
    c.env("HOME", dir.path())
        .args(["-F", "none", "--list-hosts", "-l", "db", "-i"])
        .arg(&inv);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<Vec<String>> = r
        .stdout_text()
        .lines()
        .map(|l| l.split('\t').map(String::from).collect())
        .collect();
    assert_eq!(lines[0][4], "jumper@10.9.9.9:2200", "{r:?}");
    assert_eq!(lines[1][4], "-", "{r:?}");
    // -J on the command line beats the inventory; a bad spec is a usage error
    let mut c = Command::new(env!("CARGO_BIN_EXE_prun"));
    c.env("HOME", dir.path())
        .args([
            "-F",
            "none",
            "--list-hosts",
            "-l",
            "db1",
            "-J",
            "ops@other:2022",
            "-i",
        ])
        .arg(&inv);
    let r = run(c);
    assert!(r.stdout_text().contains("\tops@other:2022\t"), "{r:?}");
    let mut c = Command::new(env!("CARGO_BIN_EXE_prun"));
    c.env("HOME", dir.path())
        .args(["-F", "none", "--list-hosts", "-J", "a:b:c:x", "-i"])
        .arg(&inv);
    let r = run(c);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("jump host 'a:b:c:x'"), "{r:?}");
}

#[test]
fn a_chain_of_two_bastions() {
    let f = Fleet::new(1);
    let b1 = bastion_for(&f, "");
    let b2 = bastion_for(&f, "");
    f.write_known_hosts(&format!(
        "{}{}{}",
        f.known_hosts_line(0),
        b1.known_hosts_line(0),
        b2.known_hosts_line(0)
    ));
    let inv = f.inventory(3);
    let me = common::whoami();
    let chain = format!(
        "{me}@127.0.0.1:{},{me}@127.0.0.1:{}",
        b1.port(0),
        b2.port(0)
    );
    let mut c = f.prun();
    c.arg("-i").arg(&inv).args([
        "-J",
        &chain,
        "--identity",
        f.key.to_str().unwrap(),
        "echo far",
    ]);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text().lines().count(), 3, "{r:?}");
    // one login to each hop; the first carries one channel (to the second), the second three
    let (l1, l2) = (&b1.servers[0].log, &b2.servers[0].log);
    assert_eq!(count(l1, "Accepted publickey"), 1);
    assert_eq!(count(l1, "server_request_direct_tcpip"), 1);
    assert_eq!(count(l2, "Accepted publickey"), 1);
    assert_eq!(count(l2, "server_request_direct_tcpip"), 3);
    // a repeated hop is refused before anything runs
    let mut c = f.prun();
    let bad = format!("{me}@127.0.0.1:{p},{me}@127.0.0.1:{p}", p = b1.port(0));
    c.arg("-i").arg(&inv).args(["-J", &bad, "true"]);
    let r = run(c);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("repeated hop"), "{r:?}");
}

#[test]
fn a_bastion_that_stops_answering_fails_its_hosts_instead_of_hanging() {
    use std::io::Read;
    let f = Fleet::new(1);
    let b = bastion_for(&f, "");
    let inv = f.inventory(1);
    let jump = format!("{}@127.0.0.1:{}", common::whoami(), b.port(0));
    let mut c = f.prun();
    c.arg("-i").arg(&inv).args([
        "-J",
        &jump,
        "--identity",
        f.key.to_str().unwrap(),
        "--keepalive",
        "1s",
        "echo start; sleep 20.7",
    ]);
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut first = [0u8; 11];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    assert_eq!(&first, b"h01 | start");
    // freeze the bastion's side of the connection
    let frozen = common::freeze_sessions(&b.servers[0]);
    let start = Instant::now();
    let status = common::wait_at_most(&mut child, Duration::from_secs(25));
    drop(frozen);
    for pid in common::pids_of("sleep 20.7") {
        // SAFETY: the remote command this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let err = common::drain(child.stderr.take());
    let status = status.expect("prun hung behind a frozen bastion");
    assert_ne!(status.code(), Some(0), "{err}");
    assert!(err.contains("stopped answering"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(20), "{err}");
}

#[test]
fn a_protected_key_the_agent_holds_needs_no_passphrase() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fleet::new(1);
    f.trust_all();
    let key = protected_key(f.dir.path(), "16");
    std::fs::copy(
        key.with_extension("pub"),
        f.dir.path().join("authorized_keys"),
    )
    .unwrap();
    let agent = common::start_agent(f.dir.path());
    let sock = &agent.sock;
    // ssh-add takes the passphrase from an askpass program
    let askpass = f.file("askpass.sh", "#!/bin/sh\necho 'correct horse'\n");
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut add = Command::new("ssh-add");
    add.arg("-q")
        .arg(&key)
        .env("SSH_AUTH_SOCK", sock)
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(std::process::Stdio::null());
    common::without_terminal(&mut add);
    assert!(add.status().unwrap().success(), "ssh-add failed");

    let inv = f.inventory(2);
    let mut c = f.prun();
    c.env("SSH_AUTH_SOCK", sock).arg("-i").arg(&inv).args([
        "--identity",
        key.to_str().unwrap(),
        "echo agent",
    ]);
    common::without_terminal(&mut c);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("skipping passphrase-protected"), "{r:?}");
    assert!(!r.stderr.contains("passphrase for key"), "{r:?}");
}

#[test]
fn unusable_ssh_config_is_a_usage_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let list = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_prun"));
        c.env("HOME", dir.path())
            .args(args)
            .args(["-H", "web01", "--list-hosts"]);
        run(c)
    };
    let r = list(&["-F", "/nonexistent/ssh_config"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("-F /nonexistent/ssh_config: no such ssh_config file"),
        "{r:?}"
    );
    let bad = dir.path().join("bad.conf");
    std::fs::write(&bad, "Host web*\n  User deploy\n  Port notaport\n").unwrap();
    let r = list(&["-F", bad.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("bad.conf:3"), "{r:?}");
    assert!(r.stderr.contains("-F none"), "{r:?}");
    // ~/.ssh/config is read by default, and a broken one is reported the same way
    std::fs::create_dir_all(dir.path().join(".ssh")).unwrap();
    std::fs::copy(&bad, dir.path().join(".ssh/config")).unwrap();
    let r = list(&[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("~/.ssh/config:3"), "{r:?}");
    let r = list(&["-F", "none"]);
    assert_eq!(r.code, 0, "{r:?}");
}
