//! End-to-end tests: the built `prun` binary against real OpenSSH servers started by the
//! tests on 127.0.0.1 (see common/mod.rs). No mocked SSH.

mod common;

use common::{Fleet, Run, keygen, run, sh, whoami};
use std::collections::BTreeMap;
use std::path::Path;

/// Split prefixed stream output into host → concatenated line contents.
fn by_host(out: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut m: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for line in out.split_inclusive(|b| *b == b'\n') {
        let sep = line
            .windows(3)
            .position(|w| w == b" | ")
            .unwrap_or_else(|| panic!("no host prefix: {:?}", String::from_utf8_lossy(line)));
        let host = String::from_utf8_lossy(&line[..sep]).trim().to_string();
        m.entry(host)
            .or_default()
            .extend_from_slice(&line[sep + 3..]);
    }
    m
}

fn big_text() -> String {
    let mut s = String::new();
    let mut i = 0;
    while s.len() < 26 * 1024 {
        s.push_str(&format!(
            "{i:05} The quick brown fox jumps over the lazy dog; prun test line.\n"
        ));
        i += 1;
    }
    s
}

#[test]
fn twenty_hosts_cat_a_26k_file_byte_exact() {
    let f = Fleet::new(2);
    f.trust_all();
    let inv = f.inventory(20);
    let text = big_text();
    let file = f.file("payload.txt", &text);
    let r = f.run_inv(&inv, &[&format!("cat {}", file.display())]);
    assert_eq!(r.code, 0, "{r:?}");
    let hosts = by_host(&r.stdout);
    assert_eq!(hosts.len(), 20, "{r:?}");
    for (h, bytes) in &hosts {
        assert!(bytes == text.as_bytes(), "{h}: output differs");
    }
    // the summary on stderr, nothing of prun's on stdout
    assert!(r.stderr.contains("prun: 20 hosts in"), "{}", r.stderr);
    assert!(r.stderr.contains("20 ok"), "{}", r.stderr);
    for phase in [
        "connect",
        "handshake",
        "hostkey",
        "auth",
        "channel_open",
        "exec",
        "first_byte",
        "read",
        "close",
        "total",
    ] {
        assert!(
            r.stderr.contains(&format!("\n  {phase} ")),
            "missing {phase}: {}",
            r.stderr
        );
    }
    assert!(r.stderr.contains("slowest:"), "{}", r.stderr);
}

#[test]
fn stdout_and_stderr_are_kept_apart_and_prefixed() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = f.inventory(3);
    let r = f.run_inv(&inv, &["echo out; echo err >&2; printf tail"]);
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.stdout_text();
    for h in ["h01", "h02", "h03"] {
        assert!(out.contains(&format!("{h} | out\n")), "{r:?}");
        assert!(out.contains(&format!("{h} | tail\n")), "{r:?}");
        assert!(r.stderr.contains(&format!("{h} | err\n")), "{r:?}");
        assert!(!out.contains(&format!("{h} | err")), "{r:?}");
    }
}

#[test]
fn remote_nonzero_exit_is_status_5() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = f.inventory(3);
    let r = f.run_inv(&inv, &["-l", "h02", "exit 3"]);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.contains("h02  failed    exit 3"), "{r:?}");

    assert_eq!(f.run_inv(&inv, &["test $(hostname) = nothing"]).code, 5);
}

#[test]
fn closed_port_is_status_4_and_the_others_complete() {
    let f = Fleet::new(1);
    f.trust_all();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let inv = f.file(
        "inv.yaml",
        &format!(
            "all:\n  vars:\n    address: 127.0.0.1\n    user: {}\n    identity_file: {}\n    port: {}\n  hosts:\n    up[1:3]:\n    down:\n      port: {closed_port}\n",
            whoami(),
            f.key.display(),
            f.port(0)
        ),
    );
    let r = f.run_inv(&inv, &["echo alive"]);
    assert_eq!(r.code, 4, "{r:?}");
    let hosts = by_host(&r.stdout);
    for h in ["up1", "up2", "up3"] {
        assert_eq!(hosts[h], b"alive\n", "{r:?}");
    }
    assert!(!hosts.contains_key("down"));
    assert!(
        r.stderr
            .contains("down  error     connect refused: connection refused"),
        "{r:?}"
    );
}

#[test]
fn unknown_host_key_refuses_then_accept_new_records_it() {
    let f = Fleet::new(2);
    let inv = f.inventory(6);
    let marker = f.dir.path().join("marker");
    let cmd = format!("touch {}", marker.display());

    // strict (default), empty known_hosts: refused before auth, the command never runs
    let r = f.run_inv(&inv, &[&cmd]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(!marker.exists(), "command ran despite an unknown host key");
    assert!(r.stderr.contains("hostkey hostkey-unknown"), "{r:?}");
    assert!(r.stderr.contains("--host-key-check accept-new"), "{r:?}");

    // accept-new: runs, and appends exactly one line per address:port
    let r = f.run_inv(&inv, &["--host-key-check", "accept-new", &cmd]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(marker.exists());
    let kh = std::fs::read_to_string(f.known_hosts_path()).unwrap();
    let mut lines: Vec<&str> = kh.lines().collect();
    lines.sort();
    let mut want = [f.known_hosts_line(0), f.known_hosts_line(1)];
    want.sort();
    assert_eq!(
        lines,
        want.iter().map(|l| l.trim_end()).collect::<Vec<_>>(),
        "known_hosts: {kh}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(f.home.join(".ssh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);

    // now the default strict run passes
    std::fs::remove_file(&marker).unwrap();
    let r = f.run_inv(&inv, &[&cmd]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(marker.exists());
}

#[test]
fn changed_host_key_is_refused_even_with_accept_new() {
    let f = Fleet::new(2);
    let other = f.dir.path().join("other_host_key");
    keygen(&other, "impostor");
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let other_key: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    let original = format!(
        "# comment kept\n{}[127.0.0.1]:{} {}\n",
        f.known_hosts_line(0),
        f.port(1),
        other_key.join(" ")
    );
    f.write_known_hosts(&original);
    let inv = f.inventory(4); // h01,h03 on server 0; h02,h04 on server 1
    let r = f.run_inv(&inv, &["--host-key-check", "accept-new", "echo ran"]);
    assert_eq!(r.code, 4, "{r:?}");
    let hosts = by_host(&r.stdout);
    assert_eq!(hosts.keys().collect::<Vec<_>>(), ["h01", "h03"], "{r:?}");
    assert!(r.stderr.contains("hostkey-mismatch"), "{r:?}");
    assert!(r.stderr.contains("HOST KEY CHANGED"), "{r:?}");
    assert_eq!(
        std::fs::read_to_string(f.known_hosts_path()).unwrap(),
        original,
        "known_hosts must not be rewritten"
    );
}

#[test]
fn hashed_known_hosts_entries_match() {
    let f = Fleet::new(1);
    f.trust_all();
    sh(
        "ssh-keygen",
        &["-q", "-H", "-f", f.known_hosts_path().to_str().unwrap()],
    );
    let kh = std::fs::read_to_string(f.known_hosts_path()).unwrap();
    assert!(kh.starts_with("|1|"), "not hashed: {kh}");
    let inv = f.inventory(2);
    let r = f.run_inv(&inv, &["true"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn agent_identities_are_all_tried() {
    let f = Fleet::new(1);
    f.trust_all();
    let agent = common::start_agent(f.dir.path());
    let sock = &agent.sock;
    let wrong = f.dir.path().join("wrong_key");
    keygen(&wrong, "not-authorized");
    for k in [&wrong, &f.key] {
        let st = std::process::Command::new("ssh-add")
            .arg("-q")
            .arg(k)
            .env("SSH_AUTH_SOCK", sock)
            .status()
            .unwrap();
        assert!(st.success());
    }
    // No identity_file: only the agent can authenticate, and its first key is refused.
    let inv = f.file(
        "inv.yaml",
        &format!(
            "all:\n  vars:\n    address: 127.0.0.1\n    user: {}\n    port: {}\n  hosts:\n    a1:\n    a2:\n",
            whoami(),
            f.port(0)
        ),
    );
    let mut c = f.prun();
    c.env("SSH_AUTH_SOCK", sock)
        .arg("-i")
        .arg(&inv)
        .arg("echo via-agent");
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(by_host(&r.stdout)["a2"], b"via-agent\n");
}

#[test]
fn default_key_in_home_is_used() {
    let f = Fleet::new(1);
    f.trust_all();
    std::fs::copy(&f.key, f.home.join(".ssh/id_ed25519")).unwrap();
    let mut c = f.prun();
    c.args([
        "-H",
        &format!("{}@127.0.0.1:{}", whoami(), f.port(0)),
        "echo default-key",
    ]);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text(), "127.0.0.1 | default-key\n");
}

#[test]
fn rejected_key_is_an_auth_failure() {
    let f = Fleet::new(1);
    f.trust_all();
    let wrong = f.dir.path().join("wrong_key");
    keygen(&wrong, "not-authorized");
    let mut c = f.prun();
    c.args([
        "-H",
        &format!("{}@127.0.0.1:{}", whoami(), f.port(0)),
        "--identity",
        wrong.to_str().unwrap(),
        "true",
    ]);
    let r = run(c);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("auth auth: permission denied"), "{r:?}");
}

#[test]
fn command_timeout_is_status_3() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = f.inventory(2);
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["--timeout", "1s", "echo started; sleep 7.3"]);
    let start = std::time::Instant::now();
    let r = run(c);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(start.elapsed() < std::time::Duration::from_secs(6), "{r:?}");
    assert!(
        r.stderr
            .contains("read timeout: command did not finish within --timeout 1s"),
        "{r:?}"
    );
    assert_eq!(by_host(&r.stdout)["h01"], b"started\n");
}

// ---- usage errors: exit 2, a message naming what and where, no panic ----

fn no_panic(r: &Run) {
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    assert!(
        r.stderr.starts_with("prun: error: ") || r.stderr.starts_with("error: "),
        "{r:?}"
    );
}

fn prun_plain() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_prun"));
    c.env_remove("SSH_AUTH_SOCK");
    c
}

#[test]
fn malformed_yaml_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.yaml");
    std::fs::write(&p, "all:\n  hosts:\n    a: [unclosed\n    b:\n").unwrap();
    let mut c = prun_plain();
    c.arg("-i").arg(&p).arg("true");
    let r = run(c);
    assert_eq!(r.code, 2, "{r:?}");
    no_panic(&r);
    assert!(r.stderr.contains(&format!("{}:", p.display())), "{r:?}");
    assert!(
        r.stderr.contains("bad.yaml:4:") || r.stderr.contains("bad.yaml:3:"),
        "{r:?}"
    );

    std::fs::write(&p, "all:\n  hosts:\n    a:\n      port: 99999\n").unwrap();
    let mut c = prun_plain();
    c.arg("-i").arg(&p).arg("true");
    let r = run(c);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("bad.yaml:4:13: port of host 'a'"),
        "{r:?}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.yaml");
    std::fs::write(
        &inv,
        "all:\n  children:\n    web:\n      hosts:\n        web[1:2]:\n",
    )
    .unwrap();
    let inv = inv.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["-i", inv, "-l", "nosuchgroup", "true"],
            "no group or host matches 'nosuchgroup'",
        ),
        (&["-i", inv, "-l", "web:&nope", "true"], "nope"),
        (
            &["-i", inv, "--identity", "/nonexistent/key", "true"],
            "/nonexistent/key",
        ),
        (&["-i", inv], "no command given"),
        (&["true"], "no hosts"),
        (
            &["-i", "/nonexistent/inv.yaml", "true"],
            "/nonexistent/inv.yaml",
        ),
        (&["-H", "web[3:1]", "true"], "bad host range 'web[3:1]'"),
        (
            &["-H", "a", "--connect-timeout", "soon", "true"],
            "not a duration",
        ),
        (&["-H", "a", "-t", "0s", "true"], "zero"),
    ];
    for (args, want) in cases {
        let mut c = prun_plain();
        c.args(*args);
        let r = run(c);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        no_panic(&r);
        assert!(r.stderr.contains(want), "{args:?}: {r:?}");
    }
}

// ---- --list-hosts: selection and resolution, no connection ----

fn list(args: &[&str]) -> String {
    let mut c = prun_plain();
    c.env("USER", "tester").arg("--list-hosts").args(args);
    let r = run(c);
    assert_eq!(r.code, 0, "{args:?}: {r:?}");
    // name, address, port, user (the jump and sources columns are tested with ssh_config)
    r.stdout_text()
        .lines()
        .map(|l| l.split('\t').take(4).collect::<Vec<_>>().join("\t") + "\n")
        .collect()
}

#[test]
fn list_hosts_with_limits_ranges_and_host_lists() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.yaml");
    std::fs::write(
        &inv,
        "all:\n  vars:\n    user: deploy\n  children:\n    web:\n      vars:\n        port: 2222\n      hosts:\n        web[01:03]:\n        web04:\n          address: 10.0.0.4\n    db:\n      hosts:\n        db1:\n          ansible_host: 10.0.1.1\n          ansible_user: postgres\n",
    )
    .unwrap();
    let inv = inv.to_str().unwrap();
    assert_eq!(
        list(&["-i", inv, "-l", "web"]),
        "web01\tweb01\t2222\tdeploy\nweb02\tweb02\t2222\tdeploy\nweb03\tweb03\t2222\tdeploy\nweb04\t10.0.0.4\t2222\tdeploy\n"
    );
    assert_eq!(list(&["-i", inv, "-l", "all:!db"]).lines().count(), 4);
    assert_eq!(
        list(&["-i", inv, "-l", "all:!web"]),
        "db1\t10.0.1.1\t22\tpostgres\n"
    );
    assert_eq!(
        list(&["-i", inv, "-l", "web*:!web0[2:3]"]),
        "web01\tweb01\t2222\tdeploy\nweb04\t10.0.0.4\t2222\tdeploy\n"
    );
    // command line beats the inventory
    assert_eq!(
        list(&["-i", inv, "-l", "db1", "-u", "root", "--port", "2200"]),
        "db1\t10.0.1.1\t2200\troot\n"
    );
    // ranges in -H
    assert_eq!(
        list(&["-H", "ops@node[1-2,7]:2201"]),
        "node1\tnode1\t2201\tops\nnode2\tnode2\t2201\tops\nnode7\tnode7\t2201\tops\n"
    );
    // plain host list file
    let hl = dir.path().join("hosts.txt");
    std::fs::write(&hl, "# rack 1\nweb[1:2]\nadmin@db-a:2022\n").unwrap();
    assert_eq!(
        list(&["-i", hl.to_str().unwrap()]),
        "web1\tweb1\t22\ttester\nweb2\tweb2\t22\ttester\ndb-a\tdb-a\t2022\tadmin\n"
    );
    assert!(!Path::new(&dir.path().join("home")).exists());
}

#[test]
fn killed_by_signal_is_status_3() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = f.inventory(2);
    let r = f.run_inv(&inv, &["-l", "h01", "kill -KILL $$"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stderr.contains("h01  signal    killed by signal KILL"),
        "{r:?}"
    );
}

#[test]
fn progress_bar_only_when_asked_or_on_a_terminal_and_quiet_is_quiet() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = f.inventory(3);
    // stderr is a pipe here: no bar by default
    let r = f.run_inv(&inv, &["echo x"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("running,"), "{r:?}");
    // --progress always draws it anyway
    let r = f.run_inv(&inv, &["--progress", "always", "sleep 0.5"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("/3 hosts"), "{r:?}");
    assert!(r.stderr.contains("running,"), "{r:?}");
    // -q: no remote output, no summary; the exit status still tells
    let r = f.run_inv(&inv, &["-q", "echo x; exit 4"]);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stdout.is_empty() && r.stderr.is_empty(), "{r:?}");
}

#[test]
fn color_always_colours_host_names() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = f.inventory(1);
    let r = f.run_inv(&inv, &["--color", "always", "echo x"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout_text().contains("\x1b["), "{r:?}");
    assert!(r.stdout_text().ends_with("x\n"), "{r:?}");
}

#[test]
fn host_known_only_by_its_rsa_key_matches() {
    // The server offers ed25519 and RSA; known_hosts has only the RSA key (as OpenSSH would
    // after connecting with HostKeyAlgorithms restricted to RSA). libssh2 alone would report a
    // mismatch here; prun negotiates the known key type first.
    let f = Fleet::with_options(1, "", true);
    let rsa_pub = std::fs::read_to_string(f.dir.path().join("host_rsa.pub")).unwrap();
    let rsa: Vec<&str> = rsa_pub.split_whitespace().take(2).collect();
    f.write_known_hosts(&format!("[127.0.0.1]:{} {}\n", f.port(0), rsa.join(" ")));
    let inv = f.inventory(1);
    let r = f.run_inv(&inv, &["echo rsa-ok"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_text(), "h01 | rsa-ok\n");
}

#[test]
fn non_utf8_output_passes_through_byte_exact() {
    let f = Fleet::new(1);
    f.trust_all();
    let inv = f.inventory(1);
    let r = f.run_inv(&inv, &["printf '\\377\\376\\000bin\\n\\200tail'"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, b"h01 | \xff\xfe\x00bin\nh01 | \x80tail\n");
}

#[test]
fn output_targets_that_cannot_be_written_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let under_file = file.join("sub");
    let under = under_file.to_str().unwrap();
    let refused = ["-H", "127.0.0.1:1", "--retries", "0"];
    let run_with = |args: &[&str]| {
        let mut c = prun_plain();
        c.env("HOME", dir.path())
            .args(refused)
            .args(args)
            .arg("true");
        run(c)
    };
    // before the run: usage errors, exit 2
    let r = run_with(&["--out-dir", under]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("cannot create --out-dir"), "{r:?}");
    let r = run_with(&["--env", "1BAD=x"]);
    assert_eq!(r.code, 2, "{r:?}");
    // after the run: prun itself failed, exit 1, and it says which file
    let report = format!("{under}.json");
    let r = run_with(&["--report", &report]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("cannot write report"), "{r:?}");
    let r = run_with(&["--failed-hosts", under]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("cannot write --failed-hosts"), "{r:?}");
}
