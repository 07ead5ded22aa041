//! `prun push` / `prun pull` over SFTP against real sshd. Each server's SFTP starts in its own
//! directory (`internal-sftp -d`), so relative remote paths give every "host" its own files
//! although they share this machine's filesystem.

mod common;

use common::{Fleet, run};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `n` servers, server `i` serving SFTP from `{dir}/srv{i}`.
fn fleet(n: usize) -> Fleet {
    let f = Fleet::with_config(n, "Subsystem sftp internal-sftp -d {dir}/srv{i}");
    for i in 0..n {
        std::fs::create_dir_all(srv(&f, i)).unwrap();
    }
    f.trust_all();
    f
}

fn srv(f: &Fleet, i: usize) -> PathBuf {
    f.dir.path().join(format!("srv{i}"))
}

fn random_file(path: &Path, len: usize) {
    // a cheap pseudo-random pattern that no chunk boundary can hide
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    std::fs::write(path, data).unwrap();
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Exit code, peak RSS in KiB and stderr of a command. The peak is VmHWM from
/// /proc/PID/status, sampled until the process ends: unlike getrusage's ru_maxrss it starts
/// afresh at exec, so the test process's own memory (forked into the child) does not count.
fn rss_of(mut c: Command) -> (i32, u64, String) {
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    let mut peak = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
            && let Some(kb) = line.split_whitespace().nth(1).and_then(|v| v.parse().ok())
        {
            peak = peak.max(kb);
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status.code().unwrap_or(-1), peak, reader.join().unwrap())
}

/// Names of prun's temporary files (`.NAME.prun-…`) left in `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".prun-"))
        .collect()
}

/// One inventory host per server.
fn one_per_server(f: &Fleet) -> PathBuf {
    let hosts: Vec<(String, u16)> = (0..f.servers.len())
        .map(|i| (format!("h{:02}", i + 1), f.port(i)))
        .collect();
    f.inventory_of("inv.yaml", &hosts)
}

#[test]
fn push_a_50mb_file_and_a_tree_to_20_hosts() {
    let f = fleet(20);
    let inv = one_per_server(&f);
    let local = f.dir.path().join("local");
    std::fs::create_dir_all(local.join("tree/bin")).unwrap();
    let big = local.join("big.bin");
    random_file(&big, 50 * 1024 * 1024);
    std::fs::write(local.join("tree/conf.txt"), "key = value\n").unwrap();
    std::fs::set_permissions(
        local.join("tree/conf.txt"),
        PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    std::fs::write(local.join("tree/bin/run.sh"), "#!/bin/sh\necho run\n").unwrap();
    std::fs::set_permissions(
        local.join("tree/bin/run.sh"),
        PermissionsExt::from_mode(0o750),
    )
    .unwrap();
    let want = std::fs::read(&big).unwrap();

    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["push", "-r", "--mkdir", "--checksum", "--preserve"]);
    c.arg(&big).arg(local.join("tree")).arg("deploy/v1");
    c.arg("--report").arg(f.dir.path().join("push.json"));
    let (code, rss_kib, err) = rss_of(c);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("20 ok"), "{err}");
    for i in 0..20 {
        let d = srv(&f, i).join("deploy/v1");
        let got = std::fs::read(d.join("big.bin")).unwrap();
        assert!(got == want, "server {i}: big.bin differs");
        assert_eq!(
            std::fs::read_to_string(d.join("tree/conf.txt")).unwrap(),
            "key = value\n"
        );
        assert_eq!(mode(&d.join("tree/conf.txt")), 0o640, "server {i}");
        assert_eq!(mode(&d.join("tree/bin/run.sh")), 0o750, "server {i}");
        // SFTP carries whole seconds
        let m = |p: &Path| {
            std::fs::metadata(p)
                .unwrap()
                .modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        assert_eq!(m(&d.join("big.bin")), m(&big), "--preserve keeps mtime");
        // no temporary files left behind
        let leftovers = temp_files(&d);
        assert!(leftovers.is_empty(), "server {i}: {leftovers:?}");
    }
    // 20 × 50 MB streamed, never whole files in memory
    eprintln!("peak RSS pushing 50 MB to 20 hosts: {} MiB", rss_kib / 1024);
    assert!(
        rss_kib < 80 * 1024,
        "peak RSS {} MiB pushing 50 MB to 20 hosts",
        rss_kib / 1024
    );
    // the report has the transfer phases and byte counts
    let report = std::fs::read_to_string(f.dir.path().join("push.json")).unwrap();
    let bytes = 50 * 1024 * 1024 + "key = value\n".len() + "#!/bin/sh\necho run\n".len();
    for k in [
        "\"transfer\"".to_string(),
        "\"open\"".to_string(),
        format!("\"transfer_bytes\": {bytes}"),
        "\"files\": 3".to_string(),
    ] {
        assert!(report.contains(&k), "{k} in {report}");
    }

    // without --mkdir a missing directory is a clear per-host failure (exit 5)
    let mut c = f.prun();
    c.arg("-i").arg(&inv).args(["-l", "h01", "push"]);
    c.arg(local.join("tree/conf.txt")).arg("not/there");
    let r = run(c);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.contains("does not exist (give --mkdir"), "{r:?}");
    // a directory without -r is a usage error before anything runs
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .arg("push")
        .arg(local.join("tree"))
        .arg("x");
    let r = run(c);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("is a directory (use -r)"), "{r:?}");
}

#[test]
fn an_interrupted_push_leaves_no_partial_target() {
    let f = fleet(1);
    let inv = one_per_server(&f);
    let big = f.dir.path().join("big.bin");
    random_file(&big, 200 * 1024 * 1024);
    let target = srv(&f, 0).join("big.bin");
    // an older version is in place: it must stay whole
    std::fs::write(&target, "old version\n").unwrap();
    let mut c = f.prun();
    c.arg("-i").arg(&inv).arg("push").arg(&big).arg(".");
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    // wait for the temporary file to appear and grow, then Ctrl-C
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let growing = std::fs::read_dir(srv(&f, 0)).unwrap().flatten().any(|e| {
            e.file_name().to_string_lossy().contains(".prun-")
                && e.metadata().map(|m| m.len() > 1024 * 1024).unwrap_or(false)
        });
        if growing {
            break;
        }
        assert!(Instant::now() < deadline, "the push never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old version\n");
    let left: Vec<_> = std::fs::read_dir(srv(&f, 0))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 1, "the temporary file is removed: {left:?}");
}

#[test]
fn pull_a_file_from_20_hosts_into_per_host_directories() {
    let f = fleet(20);
    let inv = one_per_server(&f);
    for i in 0..20 {
        std::fs::create_dir_all(srv(&f, i).join("logs")).unwrap();
        let p = srv(&f, i).join("logs/app.log");
        std::fs::write(&p, format!("log of server {i}\n").repeat(1000)).unwrap();
        std::fs::set_permissions(&p, PermissionsExt::from_mode(0o604)).unwrap();
    }
    let out = f.dir.path().join("pulled");
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["pull", "--checksum", "logs/app.log"])
        .arg(&out);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    for i in 0..20 {
        let p = out.join(format!("h{:02}/app.log", i + 1));
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text, format!("log of server {i}\n").repeat(1000), "{p:?}");
        assert_eq!(mode(&p), 0o604);
    }
    // a directory with -r; without it, a clear failure
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["-l", "h01", "pull", "-r", "logs"])
        .arg(&out);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(out.join("h01/logs/app.log").is_file());
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["-l", "h01", "pull", "logs"])
        .arg(&out);
    let r = run(c);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.contains("is a directory (use -r)"), "{r:?}");
    // a missing remote file names itself
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["-l", "h02", "pull", "nope.txt"])
        .arg(&out);
    let r = run(c);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.contains("nope.txt: no such file"), "{r:?}");
}

#[test]
fn push_replaces_existing_files() {
    let f = fleet(1);
    let inv = one_per_server(&f);
    let remote = srv(&f, 0).join("etc");
    std::fs::create_dir_all(remote.join("app.conf.d")).unwrap();
    std::fs::write(remote.join("app.conf"), "old\n").unwrap();
    let local = f.dir.path().join("local");
    std::fs::create_dir_all(&local).unwrap();
    for (round, text) in ["new\n", "newer\n"].iter().enumerate() {
        std::fs::write(local.join("app.conf"), text).unwrap();
        std::fs::set_permissions(local.join("app.conf"), PermissionsExt::from_mode(0o640)).unwrap();
        let mut c = f.prun();
        c.arg("-i").arg(&inv).args(["push", "--checksum"]);
        c.arg(local.join("app.conf")).arg("etc");
        let r = run(c);
        assert_eq!(r.code, 0, "round {round}: {r:?}");
        assert_eq!(
            std::fs::read_to_string(remote.join("app.conf")).unwrap(),
            *text
        );
        assert_eq!(mode(&remote.join("app.conf")), 0o640);
    }
    let left = temp_files(&remote);
    assert!(left.is_empty(), "{left:?}");
    // a directory in the way is a clear failure, and nothing is left behind
    std::fs::write(local.join("app.conf.d"), "a file now\n").unwrap();
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .arg("push")
        .arg(local.join("app.conf.d"))
        .arg("etc");
    let r = run(c);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.contains("is a directory"), "{r:?}");
    let left = temp_files(&remote);
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_hostile_host_cannot_plant_setuid_files_or_write_through_links() {
    let f = fleet(1);
    let inv = one_per_server(&f);
    let evil = srv(&f, 0).join("evil");
    std::fs::create_dir_all(evil.join("sub")).unwrap();
    for (name, m) in [("suid", 0o4755), ("sgid", 0o2775), ("sticky", 0o1777)] {
        std::fs::write(evil.join(name), name).unwrap();
        std::fs::set_permissions(evil.join(name), PermissionsExt::from_mode(m)).unwrap();
    }
    std::fs::write(evil.join("sub/link"), "from the host").unwrap();
    std::fs::set_permissions(evil.join("sub"), PermissionsExt::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&evil, PermissionsExt::from_mode(0o1777)).unwrap();
    // someone with write access to the pull's directory planted a link to a victim file
    let out = f.dir.path().join("pulled");
    std::fs::create_dir_all(out.join("h01/evil/sub")).unwrap();
    let victim = f.dir.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    std::os::unix::fs::symlink(&victim, out.join("h01/evil/sub/link")).unwrap();

    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["pull", "-r", "--preserve", "evil"])
        .arg(&out);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    let local = out.join("h01/evil");
    for name in ["suid", "sgid", "sticky"] {
        let m = mode(&local.join(name));
        assert_eq!(m & 0o7000, 0, "{name}: {m:o}");
        assert_eq!(m & 0o022, 0, "{name}: the umask applies: {m:o}");
    }
    assert_eq!(mode(&local), 0o755, "directory: {:o}", mode(&local));
    assert_eq!(mode(&local.join("sub")), 0o755);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    assert_eq!(
        std::fs::read_to_string(local.join("sub/link")).unwrap(),
        "from the host"
    );
    assert!(
        !std::fs::symlink_metadata(local.join("sub/link"))
            .unwrap()
            .is_symlink()
    );
    let leftovers: Vec<_> = std::fs::read_dir(local.join("sub"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("prun"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // a directory link planted where a pulled directory goes is refused, not followed
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::create_dir_all(out.join("h01")).unwrap();
    let elsewhere = f.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("h01/evil")).unwrap();
    let mut c = f.prun();
    c.arg("-i").arg(&inv).args(["pull", "-r", "evil"]).arg(&out);
    let r = run(c);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.contains("symlink"), "{r:?}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

    // names in failures are shown with their control characters made visible, whoever
    // chose them
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["pull", "evil/\x1b[2Jgone\r"])
        .arg(&out);
    let r = run(c);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.contains("evil/^[[2Jgone^M"), "{r:?}");
    assert!(!r.stderr.contains('\x1b'), "{r:?}");
    // a remote path ending in `..` would land outside LOCAL_DIR/<host>/
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["pull", "evil/sub/.."])
        .arg(&out);
    let r = run(c);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("ends in '..'"), "{r:?}");
}

#[test]
fn remote_helpers_are_bounded_by_timeout_not_the_connect_timeout() {
    // every exec goes through a wrapper that makes sha256sum slower than the connect timeout
    // (3 s: each SFTP step, the server's fsync of the file included, must finish within it,
    // and 1 s was too little for that on a loaded machine)
    let f = Fleet::with_config(1, "ForceCommand {dir}/force.sh");
    f.trust_all();
    std::fs::create_dir_all(srv(&f, 0)).unwrap();
    let wrapper = f.dir.path().join("force.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \"$SSH_ORIGINAL_COMMAND\" in\n\
             sha256sum*) sleep 5; exec sh -c \"$SSH_ORIGINAL_COMMAND\";;\n\
             ''|sftp|internal-sftp) exec /usr/lib/openssh/sftp-server -d {};;\n\
             *) exec sh -c \"$SSH_ORIGINAL_COMMAND\";;\nesac\n",
            srv(&f, 0).display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, PermissionsExt::from_mode(0o755)).unwrap();
    let inv = one_per_server(&f);
    let local = f.dir.path().join("data.bin");
    random_file(&local, 1 << 20);
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["--connect-timeout", "3", "push", "--checksum"])
        .arg(&local)
        .arg(".");
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read(srv(&f, 0).join("data.bin")).unwrap(),
        std::fs::read(&local).unwrap()
    );
    // --timeout does bound them
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["--timeout", "1500ms", "push", "--checksum"])
        .arg(&local)
        .arg(".");
    let r = run(c);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("--timeout"), "{r:?}");
}

#[test]
fn a_pull_listing_is_bounded_in_depth() {
    let f = fleet(1);
    let inv = one_per_server(&f);
    let mut deep = srv(&f, 0).join("deep");
    for i in 0..70 {
        deep = deep.join(format!("d{i}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    let out = f.dir.path().join("pulled");
    let mut c = f.prun();
    c.arg("-i").arg(&inv).args(["pull", "-r", "deep"]).arg(&out);
    let r = run(c);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(r.stderr.contains("directories deep"), "{r:?}");
}

#[test]
fn checksum_handles_names_with_newlines_and_backslashes() {
    let f = fleet(1);
    let inv = one_per_server(&f);
    let local = f.dir.path().join("odd");
    std::fs::create_dir_all(&local).unwrap();
    for name in ["new\nline", "back\\slash", "plain"] {
        std::fs::write(local.join(name), name.repeat(100)).unwrap();
    }
    let mut c = f.prun();
    c.arg("-i").arg(&inv).args(["push", "-r", "--checksum"]);
    c.arg(&local).arg(".");
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    for name in ["new\nline", "back\\slash", "plain"] {
        let got = std::fs::read_to_string(srv(&f, 0).join("odd").join(name)).unwrap();
        assert_eq!(got, name.repeat(100));
    }
}
