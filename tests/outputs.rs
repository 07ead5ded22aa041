//! Output modes against real sshd: `--output json`, `--out-dir`, `--failed-hosts` + `-l @FILE`,
//! on 20 hosts plus one unreachable host and one host writing 64 KiB of random bytes.

mod common;

use base64::Engine;
use common::{Fleet, closed_port};
use std::collections::BTreeMap;

/// 20 hosts `h01…h20`, `bin` (whose command output is random bytes) and `dead` (closed port).
fn fleet() -> (Fleet, std::path::PathBuf, Vec<u8>) {
    let f = Fleet::new(2);
    f.trust_all();
    let mut hosts: Vec<(String, u16)> = (1..=20)
        .map(|h| (format!("h{h:02}"), f.port(h % 2)))
        .collect();
    hosts.push(("bin".into(), f.port(0)));
    hosts.push(("dead".into(), closed_port()));
    let inv = f.inventory_of("inv.yaml", &hosts);
    // 64 KiB of random bytes, served to the `bin` host's command from a file
    let mut bytes = vec![0u8; 64 * 1024];
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for b in bytes.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(f.dir.path().join("random.bin"), &bytes).unwrap();
    (f, inv, bytes)
}

/// The text hosts' command: the same line on stdout and on stderr everywhere.
fn cmd_text() -> &'static str {
    "echo same-for-all; echo err-line >&2"
}

#[test]
fn json_lines_are_lossless_and_complete() {
    let (f, inv, bytes) = fleet();
    let bin_cmd = format!("cat {}", f.dir.path().join("random.bin").display());
    for (limit, cmd) in [("h*:dead", cmd_text().to_string()), ("bin", bin_cmd)] {
        let r = f.run_inv(
            &inv,
            &["-l", limit, "--output", "json", "--retries", "0", &cmd],
        );
        let mut out: BTreeMap<(String, String), Vec<u8>> = BTreeMap::new();
        let mut types = Vec::new();
        let mut ends = BTreeMap::new();
        for line in r.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).expect("one JSON per line");
            let t = v["type"].as_str().unwrap().to_string();
            if t == "output" {
                let key = (
                    v["host"].as_str().unwrap().to_string(),
                    v["stream"].as_str().unwrap().to_string(),
                );
                let chunk = match (v.get("text"), v.get("bytes")) {
                    (Some(t), None) => t.as_str().unwrap().as_bytes().to_vec(),
                    (None, Some(b)) => base64::engine::general_purpose::STANDARD
                        .decode(b.as_str().unwrap())
                        .unwrap(),
                    other => panic!("output without text or bytes: {other:?}"),
                };
                out.entry(key).or_default().extend(chunk);
            }
            if t == "host_end" {
                ends.insert(v["host"].as_str().unwrap().to_string(), v.clone());
            }
            types.push(t);
        }
        assert_eq!(
            types.first().map(String::as_str),
            Some("run_start"),
            "{r:?}"
        );
        assert_eq!(types.last().map(String::as_str), Some("summary"), "{r:?}");
        if limit == "bin" {
            assert_eq!(r.code, 0, "{r:?}");
            assert!(
                out[&("bin".into(), "stdout".into())] == bytes,
                "binary output differs"
            );
            assert_eq!(ends["bin"]["stdout_bytes"], 64 * 1024);
        } else {
            assert_eq!(r.code, 4, "{r:?}");
            assert_eq!(ends.len(), 21);
            for h in 1..=20 {
                let name = format!("h{h:02}");
                assert_eq!(out[&(name.clone(), "stdout".into())], b"same-for-all\n");
                assert_eq!(out[&(name.clone(), "stderr".into())], b"err-line\n");
                assert_eq!(ends[&name]["status"], "ok");
                assert!(ends[&name]["timings_ms"]["auth"].is_number());
            }
            assert_eq!(ends["dead"]["status"], "error");
            assert_eq!(ends["dead"]["failure_kind"], "refused");
        }
    }
}

#[test]
fn out_dir_holds_each_hosts_streams_byte_exact() {
    let (f, inv, bytes) = fleet();
    let dir = f.dir.path().join("out");
    let bin_cmd = format!("cat {}", f.dir.path().join("random.bin").display());
    let r = f.run_inv(
        &inv,
        &[
            "-l",
            "bin",
            "-q",
            "--out-dir",
            dir.to_str().unwrap(),
            &bin_cmd,
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.is_empty(), "-q prints nothing");
    assert!(std::fs::read(dir.join("bin.out")).unwrap() == bytes);
    assert_eq!(std::fs::read(dir.join("bin.err")).unwrap(), b"");
    let r = f.run_inv(
        &inv,
        &["-l", "h*", "--out-dir", dir.to_str().unwrap(), cmd_text()],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        !r.stdout.is_empty(),
        "--out-dir is in addition to the output mode"
    );
    for h in 1..=20 {
        assert_eq!(
            std::fs::read(dir.join(format!("h{h:02}.out"))).unwrap(),
            b"same-for-all\n"
        );
        assert_eq!(
            std::fs::read(dir.join(format!("h{h:02}.err"))).unwrap(),
            b"err-line\n"
        );
    }
}

#[test]
fn failed_hosts_then_limit_at_file_reruns_only_the_failures() {
    let (f, inv, _) = fleet();
    let failed = f.dir.path().join("failed.txt");
    let r = f.run_inv(
        &inv,
        &[
            "-l",
            "h*:dead",
            "--retries",
            "0",
            "--failed-hosts",
            failed.to_str().unwrap(),
            "true",
        ],
    );
    assert_eq!(r.code, 4, "{r:?}");
    assert_eq!(std::fs::read_to_string(&failed).unwrap(), "dead\n");
    let list = f.run_inv(
        &inv,
        &["-l", &format!("@{}", failed.display()), "--list-hosts"],
    );
    assert_eq!(list.code, 0, "{list:?}");
    assert_eq!(list.stdout_text().lines().count(), 1);
    assert!(
        list.stdout_text().starts_with("dead\t127.0.0.1\t"),
        "{list:?}"
    );
    let again = f.run_inv(
        &inv,
        &[
            "-l",
            &format!("@{}", failed.display()),
            "--retries",
            "0",
            "true",
        ],
    );
    assert_eq!(again.code, 4, "{again:?}");
    assert!(again.stderr.contains("prun: 1 host in"), "{again:?}");
}

#[test]
fn gather_groups_identical_outputs_under_one_folded_header() {
    let (f, inv, _) = fleet();
    let r = f.run_inv(
        &inv,
        &[
            "-l",
            "h*:dead",
            "--output",
            "gather",
            "--retries",
            "0",
            cmd_text(),
        ],
    );
    assert_eq!(r.code, 4, "{r:?}");
    assert_eq!(
        r.stdout_text(),
        "── h[01-20] (20) ── ok · exit 0\nsame-for-all\n── dead (1) ── error · connect refused\n",
        "{r:?}"
    );
    assert!(
        r.stderr
            .starts_with("── h[01-20] (20) ── ok · exit 0\nerr-line\n"),
        "{r:?}"
    );
}

#[test]
fn block_prints_each_host_contiguously_under_a_header() {
    let (f, inv, _) = fleet();
    let r = f.run_inv(
        &inv,
        &[
            "-l",
            "h*:dead",
            "--retries",
            "0",
            "--output",
            "block",
            "echo one; sleep 0.2; echo two; printf three",
        ],
    );
    assert_eq!(r.code, 4, "{r:?}");
    let out = r.stdout_text();
    for h in 1..=20 {
        let header = format!("── h{h:02} ── ok · exit 0 · ");
        let at = out
            .find(&header)
            .unwrap_or_else(|| panic!("{header} missing: {out}"));
        let rest = &out[at..];
        let body_start = rest.find('\n').unwrap() + 1;
        assert!(
            rest[body_start..].starts_with("one\ntwo\nthree\n"),
            "h{h:02} not contiguous: {out}"
        );
    }
    assert!(
        out.contains("── dead ── error · connect refused · "),
        "{out}"
    );
}

#[test]
fn remote_control_sequences_are_escaped_on_a_terminal_only() {
    let (f, inv, _) = fleet();
    let cmd = r"printf 'a\033[2Jb\rc\n'";
    // a pipe: byte-exact
    let r = f.run_inv(&inv, &["-l", "h01", cmd]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, b"h01 | a\x1b[2Jb\rc\n");
    // a terminal (script(1) gives prun a pty): escaped
    let line = format!(
        "{} -i {} -l h01 --color never --progress never \"{}\"",
        env!("CARGO_BIN_EXE_prun"),
        inv.display(),
        cmd.replace('"', "\\\"")
    );
    let mut c = std::process::Command::new("script");
    c.args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("HOME", &f.home)
        .env_remove("SSH_AUTH_SOCK")
        .stdin(std::process::Stdio::null());
    let r = common::run(c);
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.stdout_text();
    assert!(out.contains("h01 | a^[[2Jb^Mc"), "{out:?}");
    assert!(!out.contains("\x1b[2J"), "{out:?}");
}

/// `c` with its open-file limit (soft and hard) set to `n`, so prun cannot raise it.
fn with_nofile(c: &mut std::process::Command, n: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn a_low_open_file_limit_caps_parallelism_instead_of_losing_output() {
    let f = Fleet::new(2);
    f.trust_all();
    let inv = f.inventory(100);
    let od = f.dir.path().join("od");
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["-p", "100", "--out-dir"])
        .arg(&od)
        .args([
            "--output",
            "gather",
            "-q",
            "echo out-$((6*7)); echo err >&2",
        ]);
    with_nofile(&mut c, 200);
    let r = common::run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("does not fit the open-file limit"),
        "{r:?}"
    );
    for h in 1..=100 {
        let out = std::fs::read_to_string(od.join(format!("h{h:02}.out"))).unwrap();
        assert_eq!(out, "out-42\n", "h{h:02}");
    }
    // output that cannot be written is an error, not a silent exit 0
    let mut c = f.prun();
    c.arg("-i")
        .arg(&inv)
        .args(["-l", "h01", "--out-dir", "/proc/version/x", "true"]);
    let r = common::run(c);
    assert_eq!(r.code, 2, "{r:?}");
    // remote output that cannot be written (a full disk) is lost: exit 1, said so
    let mut c = f.prun();
    c.arg("-i").arg(&inv).args(["-l", "h01", "echo hi"]).stdout(
        std::fs::File::options()
            .write(true)
            .open("/dev/full")
            .unwrap(),
    );
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("NOT written"), "{err}");
}
