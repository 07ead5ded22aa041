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
