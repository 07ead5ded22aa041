//! Reaching hosts the ways `ssh` does, against real sshd: `-o Key=Value` above the inventory
//! and ssh_config, and `ProxyCommand` (from `-o` and from ssh_config) carrying the session
//! through `nc` for 20 hosts — plus a command that exits at once and one that hangs, both
//! failing the host with the command's own words, bounded, and reaped.

mod common;

use common::{Fleet, pids_of, whoami};
use std::time::{Duration, Instant};

fn inventory(f: &Fleet, n: usize, port: u16) -> std::path::PathBuf {
    let mut y = format!(
        "all:\n  vars:\n    address: 127.0.0.1\n    user: {}\n    identity_file: {}\n    port: {port}\n  hosts:\n",
        whoami(),
        f.key.display(),
    );
    for h in 1..=n {
        y.push_str(&format!("    h{h:02}:\n"));
    }
    f.file("reach.yaml", &y)
}

#[test]
fn dash_o_beats_the_inventory_and_names_itself() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = inventory(&f, 2, common::closed_port());
    let port = f.port(0).to_string();
    let r = f.run_inv(
        &inv,
        &["-F", "none", "-o", &format!("Port={port}"), "echo up"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text().matches("| up").count(), 2, "{r:?}");
    let r = f.run_inv(
        &inv,
        &[
            "-F",
            "none",
            "-o",
            &format!("Port {port}"),
            "-o",
            "user=nobody2",
            "--list-hosts",
        ],
    );
    assert!(
        r.stdout_text().contains(&format!("\t{port}\tnobody2\t")),
        "{r:?}"
    );
    assert!(
        r.stdout_text().contains("port=-o") && r.stdout_text().contains("user=-o"),
        "{r:?}"
    );
    // the dedicated flags still win
    let r = f.run_inv(
        &inv,
        &[
            "-F",
            "none",
            "-o",
            "Port=1",
            "--port",
            &port,
            "--list-hosts",
        ],
    );
    assert!(r.stdout_text().contains("port=command-line"), "{r:?}");
    // a keyword prun does not use is refused, naming it and what it reads
    let r = f.run_inv(&inv, &["-o", "Compression=yes", "true"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("Compression") && r.stderr.contains("ProxyCommand"),
        "{r:?}"
    );
    let r = f.run_inv(&inv, &["-o", "Port", "true"]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn proxy_command_carries_twenty_hosts_through_nc_and_is_reaped() {
    let f = Fleet::new(1);
    f.trust_all();
    assert!(
        std::path::Path::new("/usr/bin/nc").exists() || std::path::Path::new("/bin/nc").exists(),
        "nc not found: run scripts/deps.sh (it installs netcat-openbsd)"
    );
    let port = f.port(0);
    let inv = inventory(&f, 20, common::closed_port());
    let log = f.dir.path().join("proxy.log");
    let script = f.file(
        "proxy.sh",
        &format!(
            "#!/bin/sh\necho \"$1 $2 $3\" >> {}\nexec nc 127.0.0.1 \"$2\"\n",
            log.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    // from -o, tokens expanded (%h the address, %p the port, %n the name)
    let r = f.run_inv(
        &inv,
        &[
            "-F",
            "none",
            "-p",
            "20",
            "--port",
            &port.to_string(),
            "-o",
            &format!("ProxyCommand={} %h %p %n", script.display()),
            "echo through",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text().matches("| through").count(), 20, "{r:?}");
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(lines.lines().count(), 20, "one command per host: {lines}");
    assert!(lines.contains(&format!("127.0.0.1 {port} h07")), "{lines}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        pids_of(&format!("nc 127.0.0.1 {port}")).is_empty(),
        "a proxy command outlived its session"
    );
    // from ssh_config; `-o ProxyCommand=none` turns it off again
    let cfg = f.file(
        "ssh_config",
        &format!("Host h*\n  ProxyCommand {} %h %p %n\n", script.display()),
    );
    let cfgs = cfg.to_string_lossy().into_owned();
    let ports = port.to_string();
    let r = f.run_inv(
        &inv,
        &[
            "-F",
            &cfgs,
            "--port",
            &ports,
            "-l",
            "h01",
            "echo via-config",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 21);
    let r = f.run_inv(&inv, &["-F", &cfgs, "-l", "h01", "--list-hosts"]);
    assert!(
        r.stdout_text().contains("proxy_command=ssh_config:"),
        "{r:?}"
    );
    let r = f.run_inv(
        &inv,
        &[
            "-F",
            &cfgs,
            "--port",
            &ports,
            "-o",
            "ProxyCommand=none",
            "-l",
            "h01",
            "true",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        21,
        "none: direct"
    );
}

#[test]
fn a_proxy_command_that_fails_or_hangs_fails_its_host_with_its_words() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = inventory(&f, 2, f.port(0));
    let script = f.file(
        "fails.sh",
        "#!/bin/sh\necho 'bastion says: no route' >&2\nexit 7\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = f.run_inv(
        &inv,
        &[
            "-F",
            "none",
            "--retries",
            "0",
            "-o",
            &format!("ProxyCommand={}", script.display()),
            "true",
        ],
    );
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("exited with status 7"), "{r:?}");
    assert!(r.stderr.contains("bastion says: no route"), "{r:?}");
    // a command that never speaks: bounded by --connect-timeout, then stopped and reaped
    let start = Instant::now();
    let r = f.run_inv(
        &inv,
        &[
            "-F",
            "none",
            "--retries",
            "0",
            "--connect-timeout",
            "2s",
            "-o",
            "ProxyCommand=sleep 37.75",
            "true",
        ],
    );
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr.contains("timeout") || r.stderr.contains("timed out"),
        "{r:?}"
    );
    assert!(r.stderr.contains("is still running"), "{r:?}");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        pids_of("sleep 37.75").is_empty(),
        "the hung command was left running"
    );
}

#[test]
fn host_certificates_signed_by_a_known_ca_are_verified() {
    let keys = tempfile::tempdir().unwrap();
    let k = |name: &str| keys.path().join(name);
    common::keygen(&k("ca"), "test-ca");
    common::keygen(&k("other-ca"), "other-ca");
    common::keygen(&k("certhost"), "cert-host");
    let sign = |validity: &str, principals: &str, ca: &str| {
        let _ = std::fs::remove_file(k("certhost-cert.pub"));
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(k(ca))
            .args(["-I", "test-host", "-h", "-n", principals, "-V", validity])
            .arg(k("certhost.pub"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sign("-1h:+1h", "127.0.0.1,web.example", "ca");
    let f = Fleet::with_config(
        1,
        &format!(
            "HostKey {}\nHostCertificate {}\n",
            k("certhost").display(),
            k("certhost-cert.pub").display()
        ),
    );
    let ca = std::fs::read_to_string(k("ca.pub")).unwrap();
    f.write_known_hosts(&format!("@cert-authority * {ca}"));
    let inv = inventory(&f, 1, f.port(0));
    let run = |f: &Fleet| f.run_inv(&inv, &["-F", "none", "--retries", "0", "echo certified"]);
    let r = run(&f);
    assert_eq!(r.code, 0, "a valid certificate from the trusted CA: {r:?}");
    assert!(r.stdout_text().contains("h01 | certified"), "{r:?}");
    // sshd re-reads its certificate for each connection: re-sign, and try again
    sign("-2d:-1d", "127.0.0.1", "ca");
    let r = run(&f);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr.contains("host certificate for") && r.stderr.contains("expired"),
        "{r:?}"
    );
    sign("-1h:+1h", "db.example,10.9.9.9", "ca");
    let r = run(&f);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr
            .contains("principals (db.example, 10.9.9.9) do not include 127.0.0.1"),
        "{r:?}"
    );
    sign("-1h:+1h", "127.0.0.1", "other-ca");
    let r = run(&f);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("which no @cert-authority line"), "{r:?}");
    // RSA and ECDSA certificate authorities too
    for (name, args) in [
        ("rsa-ca", ["-t", "rsa", "-b", "2048"]),
        ("ecdsa-ca", ["-t", "ecdsa", "-b", "256"]),
    ] {
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-N", "", "-C", name])
            .args(args)
            .arg("-f")
            .arg(k(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pubkey = std::fs::read_to_string(k(&format!("{name}.pub"))).unwrap();
        f.write_known_hosts(&format!("@cert-authority * {ca}@cert-authority * {pubkey}"));
        sign("-1h:+1h", "127.0.0.1", name);
        let r = run(&f);
        assert_eq!(r.code, 0, "{name}: {r:?}");
    }
    f.write_known_hosts(&format!("@cert-authority * {ca}"));
    // a revoked CA
    sign("-1h:+1h", "127.0.0.1", "ca");
    assert_eq!(run(&f).code, 0);
    f.write_known_hosts(&format!("@cert-authority * {ca}@revoked * {ca}"));
    let r = run(&f);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("REVOKED"), "{r:?}");
}

#[test]
fn a_user_certificate_beside_the_key_logs_in_where_only_the_ca_is_trusted() {
    let keys = tempfile::tempdir().unwrap();
    let k = |name: &str| keys.path().join(name);
    common::keygen(&k("user-ca"), "user-ca");
    common::keygen(&k("id_cert"), "certified-user");
    let me = whoami();
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(k("user-ca"))
        .args(["-I", "prun-test-user", "-n", &me, "-V", "-1h:+1h"])
        .arg(k("id_cert.pub"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = Fleet::with_config(
        1,
        &format!("TrustedUserCAKeys {}\n", k("user-ca.pub").display()),
    );
    f.trust_all();
    // the inventory names the certified key, which no authorized_keys lists
    let y = format!(
        "all:\n  vars:\n    address: 127.0.0.1\n    user: {me}\n    identity_file: {}\n    port: {}\n  hosts:\n    c1:\n",
        k("id_cert").display(),
        f.port(0)
    );
    let inv = f.file("cert-user.yaml", &y);
    let rep = f.dir.path().join("r.json");
    let r = f.run_inv(
        &inv,
        &[
            "-F",
            "none",
            "--report",
            rep.to_str().unwrap(),
            "echo by-cert",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout_text().contains("c1 | by-cert"), "{r:?}");
    let report = std::fs::read_to_string(&rep).unwrap();
    assert!(
        report.contains("\"auth_method\": \"certificate "),
        "{report}"
    );
    // the certificate elsewhere, named by ssh_config's CertificateFile
    std::fs::rename(k("id_cert-cert.pub"), k("elsewhere.cert")).unwrap();
    let r = f.run_inv(&inv, &["-F", "none", "--retries", "0", "true"]);
    assert_eq!(r.code, 4, "without a certificate the key is refused: {r:?}");
    let cfg = f.file(
        "cert_config",
        &format!(
            "Host *\n  CertificateFile {}\n",
            k("elsewhere.cert").display()
        ),
    );
    let r = f.run_inv(&inv, &["-F", cfg.to_str().unwrap(), "echo by-file"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout_text().contains("c1 | by-file"), "{r:?}");
    // an RSA key's certificate (libssh2 signs those)
    let out = std::process::Command::new("ssh-keygen")
        .args([
            "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "rsa-user", "-f",
        ])
        .arg(k("id_rsa_cert"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(k("user-ca"))
        .args(["-I", "rsa-user", "-n", &me, "-V", "-1h:+1h"])
        .arg(k("id_rsa_cert.pub"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = f.run_inv(
        &inv,
        &[
            "-F",
            "none",
            "--identity",
            k("id_rsa_cert").to_str().unwrap(),
            "echo by-rsa-cert",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout_text().contains("c1 | by-rsa-cert"), "{r:?}");
}

#[test]
fn agent_forwarding_lets_the_remote_command_use_the_local_agent() {
    let f = Fleet::new(1);
    f.trust_all();
    let agent = common::start_agent(f.dir.path());
    // an agent key no server trusts: only the remote ssh-add sees it, through the channel
    let keys = tempfile::tempdir().unwrap();
    common::keygen(&keys.path().join("forwarded"), "forwarded-key-7731");
    let added = std::process::Command::new("ssh-add")
        .arg(keys.path().join("forwarded"))
        .env("SSH_AUTH_SOCK", &agent.sock)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let inv = inventory(&f, 2, f.port(0));
    let run = |args: &[&str]| {
        let mut c = f.prun();
        c.arg("-i")
            .arg(&inv)
            .args(args)
            .env("SSH_AUTH_SOCK", &agent.sock);
        common::run(c)
    };
    let r = run(&["-F", "none", "-A", "ssh-add -l; ssh-add -l"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout_text().matches("forwarded-key-7731").count(),
        4,
        "each host lists the local agent's key, twice: {r:?}"
    );
    // off by default
    let r = run(&["-F", "none", "ssh-add -l"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(!r.stdout_text().contains("forwarded-key-7731"), "{r:?}");
    // ForwardAgent no in ssh_config wins over -A; -o ForwardAgent=yes turns it on
    let cfg = f.file("no-forward", "Host *\n  ForwardAgent no\n");
    let cfgs = cfg.to_string_lossy().into_owned();
    let r = run(&["-F", &cfgs, "-A", "ssh-add -l"]);
    assert!(!r.stdout_text().contains("forwarded-key-7731"), "{r:?}");
    let r = run(&[
        "-F",
        &cfgs,
        "-o",
        "ForwardAgent=yes",
        "-l",
        "h01",
        "ssh-add -l",
    ]);
    assert!(r.stdout_text().contains("forwarded-key-7731"), "{r:?}");
    // on held logins (prun shell), command after command: each command's agent channels are
    // closed and freed when done, and the next command gets the agent again
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["-F", "none", "-A", "--progress", "never", "shell"])
        .env("SSH_AUTH_SOCK", &agent.sock)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"ssh-add -l; ssh-add -l\nssh-add -l\nssh-add -l; ssh-add -l; ssh-add -l\n:quit\n",
        )
        .unwrap();
    let st = common::wait_at_most(&mut child, Duration::from_secs(60)).expect("shell hung");
    let out = common::drain(child.stdout.take());
    let err = common::drain(child.stderr.take());
    assert_eq!(st.code(), Some(0), "{out}\n{err}");
    assert_eq!(
        out.matches("forwarded-key-7731").count(),
        12,
        "2 hosts x 6 listings: {out}\n{err}"
    );
    assert!(err.contains("on held logins"), "{err}");
}

/// prun's secret variables stay with prun: a dynamic inventory, a ProxyCommand and a
/// `--local` command (each dumping its environment) see the rest of the environment but
/// none of `PRUN_PASSWORD`, `PRUN_SUDO_PASSWORD`, `PRUN_KEY_PASSPHRASE`,
/// `PRUN_INFLUX_PASSWORD`, `PRUN_INFLUX_TOKEN`.
#[test]
fn programs_prun_starts_do_not_inherit_its_secrets() {
    let f = Fleet::new(1);
    f.trust_all();
    let dir = f.dir.path();
    let dyn_env = dir.join("dyn.env");
    let proxy_env = dir.join("proxy.env");
    let host = format!(
        "{{\"ansible_host\": \"127.0.0.1\", \"ansible_port\": {}, \"ansible_user\": \"{}\", \
         \"ansible_ssh_private_key_file\": \"{}\"}}",
        f.port(0),
        whoami(),
        f.key.display()
    );
    let inv = f.file(
        "dyn.sh",
        &format!(
            "#!/bin/sh\nenv > {}\necho '{{\"all\": {{\"hosts\": [\"s1\"]}}, \"_meta\": \
             {{\"hostvars\": {{\"s1\": {host}}}}}}}'\n",
            dyn_env.display()
        ),
    );
    let proxy = f.file(
        "proxy.sh",
        &format!(
            "#!/bin/sh\nenv > {}\nexec nc 127.0.0.1 \"$1\"\n",
            proxy_env.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    for p in [&inv, &proxy] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let secrets = [
        ("PRUN_PASSWORD", "pw-7f3a-secret"),
        ("PRUN_SUDO_PASSWORD", "sudo-7f3a-secret"),
        ("PRUN_KEY_PASSPHRASE", "phrase-7f3a-secret"),
        ("PRUN_INFLUX_PASSWORD", "influx-7f3a-secret"),
        ("PRUN_INFLUX_TOKEN", "token-7f3a-secret"),
    ];
    let run = |args: &[&str]| {
        let mut c = f.prun();
        c.arg("-i").arg(&inv).args(args).env("PRUN_SEEN", "yes");
        for (k, v) in secrets {
            c.env(k, v);
        }
        common::run(c)
    };
    let unseen = |what: &str, text: &str| {
        assert!(
            text.contains("PRUN_SEEN=yes"),
            "{what}: no environment? {text}"
        );
        for (k, v) in secrets {
            assert!(
                !text.contains(v) && !text.contains(k),
                "{what} got {k}: {text}"
            );
        }
    };
    let r = run(&[
        "-o",
        &format!("ProxyCommand={} %p", proxy.display()),
        "echo through",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout_text().contains("s1 | through"), "{r:?}");
    unseen(
        "the dynamic inventory",
        &std::fs::read_to_string(&dyn_env).unwrap(),
    );
    unseen(
        "the ProxyCommand",
        &std::fs::read_to_string(&proxy_env).unwrap(),
    );
    let r = run(&["--local", "env"]);
    assert_eq!(r.code, 0, "{r:?}");
    unseen("the --local command", &r.stdout_text());
}
