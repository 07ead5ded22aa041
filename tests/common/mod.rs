//! Test fixture: real OpenSSH servers started by the test on 127.0.0.1 with generated keys,
//! a private HOME for prun (its known_hosts and default keys), and helpers to run the built
//! `prun` binary. A missing sshd fails the test loudly; servers are killed by PID on drop.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

/// Run a program and panic with its output when it fails.
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Generate an ed25519 key pair at `path` (and `path.pub`).
pub fn keygen(path: &Path, comment: &str) {
    sh(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            comment,
            "-f",
            path.to_str().unwrap(),
        ],
    );
}

/// One running sshd.
pub struct Sshd {
    pub port: u16,
    child: Child,
    pub log: PathBuf,
}

impl Sshd {
    /// PID of the sshd master (its per-connection processes are its descendants).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fleet of local sshd sharing one host key and one authorized user key.
pub struct Fleet {
    pub dir: tempfile::TempDir,
    /// HOME for prun: `~/.ssh/known_hosts` lives here.
    pub home: PathBuf,
    /// Authorized private key.
    pub key: PathBuf,
    /// `ssh-ed25519 AAAA…` of the servers' host key.
    pub host_key: String,
    pub servers: Vec<Sshd>,
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Fleet {
    /// Start `n` sshd on free loopback ports.
    pub fn new(n: usize) -> Fleet {
        Self::with_config(n, "")
    }

    /// Start `n` sshd; `extra` is appended to each sshd_config (`{dir}` is replaced by the
    /// fleet's directory).
    pub fn with_config(n: usize, extra: &str) -> Fleet {
        Self::with_options(n, extra, false)
    }

    /// Like [`Fleet::with_config`]; `rsa` also gives the servers an RSA host key
    /// (`{dir}/host_rsa`, offered after the ed25519 one).
    pub fn with_options(n: usize, extra: &str, rsa: bool) -> Fleet {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} not found: the end-to-end tests need OpenSSH's server \
             (apt-get install openssh-server, or run scripts/test.sh)"
        );
        if !Path::new("/run/sshd").exists() {
            std::fs::create_dir_all("/run/sshd").unwrap_or_else(|e| {
                panic!("/run/sshd is missing and cannot be created ({e}); run scripts/deps.sh")
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("prun-test-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        // Readable by an ordinary account too (sshd reads authorized_keys as the user).
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let home = d.join("home");
        std::fs::create_dir_all(&home).unwrap();
        keygen(&d.join("host_ed25519"), "test-host");
        let mut extra = extra.replace("{dir}", &d.display().to_string());
        if rsa {
            let path = d.join("host_rsa");
            sh(
                "ssh-keygen",
                &[
                    "-q",
                    "-t",
                    "rsa",
                    "-b",
                    "2048",
                    "-N",
                    "",
                    "-f",
                    path.to_str().unwrap(),
                ],
            );
            extra.push_str(&format!("\nHostKey {}\n", path.display()));
        }
        keygen(&d.join("id_ed25519"), "test-user");
        std::fs::copy(d.join("id_ed25519.pub"), d.join("authorized_keys")).unwrap();
        let pubkey = std::fs::read_to_string(d.join("host_ed25519.pub")).unwrap();
        let host_key = pubkey
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let mut fleet = Fleet {
            key: d.join("id_ed25519"),
            home,
            host_key,
            servers: Vec::new(),
            dir,
        };
        for i in 0..n {
            fleet.servers.push(fleet.start_sshd(i, &extra));
        }
        fleet
    }

    fn start_sshd(&self, i: usize, extra: &str) -> Sshd {
        let d = self.dir.path();
        // `{i}`: the server's index, for per-server settings
        let extra = &extra.replace("{i}", &i.to_string());
        for _attempt in 0..10 {
            let port = free_port();
            let conf = d.join(format!("sshd-{i}.conf"));
            let log = d.join(format!("sshd-{i}.log"));
            std::fs::write(
                &conf,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\n\
                     AuthorizedKeysFile {d}/authorized_keys\nPidFile none\nStrictModes no\n\
                     KbdInteractiveAuthentication no\nUsePAM no\n{defaults}SetEnv SHLVL=1\n{extra}\n",
                    d = d.display(),
                    // sshd takes the first value of a keyword: leave it to `extra` if given
                    defaults = [
                        ("PasswordAuthentication", "no"),
                        ("MaxStartups", "1000:30:1000"),
                        ("MaxSessions", "100"),
                        ("Subsystem", "sftp internal-sftp"),
                    ]
                    .iter()
                    .filter(|(k, _)| !extra.contains(k))
                    .map(|(k, v)| format!("{k} {v}\n"))
                    .collect::<String>(),
                ),
            )
            .unwrap();
            let mut child = Command::new(SSHD)
                .arg("-D")
                .arg("-f")
                .arg(&conf)
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"));
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    if text.contains("Address already in use") {
                        break; // port race: try another
                    }
                    panic!("sshd exited with {status}: {text}");
                }
                if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                    let mut banner = [0u8; 4];
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    if s.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                        return Sshd { port, child, log };
                    }
                }
                assert!(Instant::now() < deadline, "sshd on {port} did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not start sshd on a free port");
    }

    pub fn port(&self, i: usize) -> u16 {
        self.servers[i].port
    }

    /// The known_hosts line OpenSSH would write for server `i`.
    pub fn known_hosts_line(&self, i: usize) -> String {
        format!("[127.0.0.1]:{} {}\n", self.port(i), self.host_key)
    }

    pub fn known_hosts_path(&self) -> PathBuf {
        self.home.join(".ssh/known_hosts")
    }

    /// Write `~/.ssh/known_hosts` trusting every server.
    pub fn trust_all(&self) {
        let text: String = (0..self.servers.len())
            .map(|i| self.known_hosts_line(i))
            .collect();
        self.write_known_hosts(&text);
    }

    pub fn write_known_hosts(&self, text: &str) {
        std::fs::create_dir_all(self.home.join(".ssh")).unwrap();
        std::fs::write(self.known_hosts_path(), text).unwrap();
    }

    /// Write a file in the fleet's directory and return its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A YAML inventory of `n` hosts `h01…` spread round-robin over the servers, user root
    /// (the tests run as root), the fleet key, plus `extra` appended under `all.children`.
    pub fn inventory(&self, n: usize) -> PathBuf {
        let mut y = format!(
            "all:\n  vars:\n    address: 127.0.0.1\n    user: {}\n    identity_file: {}\n  hosts:\n",
            whoami(),
            self.key.display()
        );
        for h in 0..n {
            y.push_str(&format!(
                "    h{:02}:\n      port: {}\n",
                h + 1,
                self.port(h % self.servers.len())
            ));
        }
        self.file("inventory.yaml", &y)
    }

    /// Run `prun -i INVENTORY ARGS…` (see [`Fleet::prun`]) to completion.
    pub fn run_inv(&self, inventory: &Path, args: &[&str]) -> Run {
        let mut c = self.prun();
        c.arg("-i").arg(inventory).args(args);
        run(c)
    }

    /// `prun` with HOME pointed at the fleet's home and no agent.
    pub fn prun(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_prun"));
        c.env("HOME", &self.home)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("XDG_STATE_HOME")
            .env_remove("PRUN_HISTORY")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }
}

/// The ordinary (non-root) account the tests log in as where root behaves differently
/// (OpenSSH ignores signal requests for root). Created when missing; needs root.
pub const TEST_USER: &str = "prun-test";
/// Its password (a throwaway account on a test machine; sudo asks for it).
pub const TEST_PASSWORD: &str = "prun-test-sudo-pw-1";

/// Let the test account use sudo with its password (a sudoers.d entry). Needs sudo installed
/// (`.ci/run` installs it) and root.
pub fn ensure_test_sudo() -> &'static str {
    let user = ensure_test_user();
    assert!(
        Path::new("/usr/bin/sudo").exists(),
        "/usr/bin/sudo not found: the --sudo tests need sudo (apt-get install sudo; .ci/run does)"
    );
    let entry = format!("{TEST_USER} ALL=(ALL) ALL\n");
    let path = Path::new("/etc/sudoers.d/prun-test");
    if std::fs::read_to_string(path).ok().as_deref() != Some(entry.as_str()) {
        std::fs::write(path, &entry).expect("write /etc/sudoers.d/prun-test (needs root)");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o440)).unwrap();
    }
    user
}

pub fn ensure_test_user() -> &'static str {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let exists = Command::new("id")
            .arg(TEST_USER)
            .output()
            .is_ok_and(|o| o.status.success());
        if !exists {
            let st = Command::new("useradd")
                .args(["-M", "-d", "/tmp", "-s", "/bin/sh", TEST_USER])
                .status()
                .unwrap_or_else(|e| panic!("cannot run useradd to create {TEST_USER}: {e}"));
            assert!(
                st.success(),
                "useradd {TEST_USER} failed: these tests need root to create an ordinary account"
            );
        }
        // a home that exists, and a known password: unlocked for public-key logins, and what
        // the sudo tests feed to sudo's prompt
        let st = Command::new("usermod")
            .args(["-d", "/tmp", TEST_USER])
            .status()
            .expect("usermod");
        assert!(st.success(), "usermod {TEST_USER} failed");
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("chpasswd");
        use std::io::Write;
        chpasswd
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{TEST_USER}:{TEST_PASSWORD}\n").as_bytes())
            .unwrap();
        assert!(chpasswd.wait().unwrap().success(), "chpasswd failed");
    });
    TEST_USER
}

pub fn whoami() -> String {
    sh("id", &["-un"]).trim().to_string()
}

/// Output of a finished prun run.
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        )
    }
}

/// Run a command to completion (with a generous safety deadline) and collect its output.
pub fn run(mut c: Command) -> Run {
    let out = c.output().expect("run prun");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Start `c` in a new session, with no controlling terminal: prompts fail instead of
/// waiting for someone to type.
pub fn without_terminal(c: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

/// PIDs of processes whose command line is exactly `cmdline`.
pub fn pids_of(cmdline: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cl) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let joined = cl
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        if joined == cmdline {
            out.push(pid);
        }
    }
    out
}

/// A loopback port with nothing listening (connections are refused).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

impl Fleet {
    /// A YAML inventory: the fleet's address, user and key under `all.vars`, then `hosts`
    /// (each `name: port`), written to `file` in the fleet's directory.
    pub fn inventory_of(&self, file: &str, hosts: &[(String, u16)]) -> PathBuf {
        let mut y = format!(
            "all:\n  vars:\n    address: 127.0.0.1\n    user: {}\n    identity_file: {}\n  hosts:\n",
            whoami(),
            self.key.display()
        );
        for (name, port) in hosts {
            y.push_str(&format!("    {name}:\n      port: {port}\n"));
        }
        self.file(file, &y)
    }
}

/// Descendants of `root` (PID, command name), from /proc.
pub fn descendants(root: u32) -> Vec<(i32, String)> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let ppid: i32 = stat[close + 2..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        parent_of.push((pid, ppid, comm));
    }
    let mut out = Vec::new();
    let mut frontier = vec![root as i32];
    while let Some(p) = frontier.pop() {
        for (pid, ppid, comm) in &parent_of {
            if *ppid == p {
                out.push((*pid, comm.clone()));
                frontier.push(*pid);
            }
        }
    }
    out
}

/// An sshd's per-connection processes, stopped with SIGSTOP (the server "stops answering").
/// Dropping it resumes and kills them.
pub struct Frozen(Vec<i32>);

/// Freeze every per-connection process of `sshd`.
pub fn freeze_sessions(sshd: &Sshd) -> Frozen {
    let pids: Vec<i32> = descendants(sshd.pid())
        .into_iter()
        .filter(|(_, comm)| comm.starts_with("sshd"))
        .map(|(pid, _)| pid)
        .collect();
    assert!(!pids.is_empty(), "no sshd session processes to freeze");
    for pid in &pids {
        // SAFETY: stopping processes of the sshd this test started.
        unsafe { libc::kill(*pid, libc::SIGSTOP) };
    }
    Frozen(pids)
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for pid in &self.0 {
            // SAFETY: resuming and ending processes of the sshd this test started.
            unsafe {
                libc::kill(*pid, libc::SIGCONT);
                libc::kill(*pid, libc::SIGKILL);
            }
        }
    }
}

/// Wait (at most 20 s) until `n` processes run exactly `cmdline`; panics when they do not.
pub fn wait_for_processes(cmdline: &str, n: usize) {
    let start = Instant::now();
    while pids_of(cmdline).len() < n && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        pids_of(cmdline).len(),
        n,
        "{cmdline:?} did not start {n} time(s)"
    );
}

/// Wait (at most 10 s) for every process running exactly `cmdline` to end; kill the ones
/// left (processes the test started) and return them.
pub fn leftovers_killed(cmdline: &str) -> Vec<i32> {
    let end = Instant::now() + Duration::from_secs(10);
    while !pids_of(cmdline).is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = pids_of(cmdline);
    for p in &left {
        // SAFETY: killing a leftover the test started.
        unsafe { libc::kill(*p, libc::SIGKILL) };
    }
    left
}

/// Freeze an sshd's listening process: new connections are accepted by the kernel but get
/// no banner (a server that stops answering at the start). Dropping it ends that sshd.
pub fn freeze_listener(sshd: &Sshd) -> Frozen {
    let pid = sshd.pid() as i32;
    // SAFETY: stopping the sshd this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    Frozen(vec![pid])
}

/// Wait for `child` at most `limit`; past it, kill it and return `None`.
pub fn wait_at_most(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private ssh-agent listening on `sock`; killed on drop.
pub struct Agent {
    pub sock: PathBuf,
    child: Child,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start an ssh-agent with its socket in `dir` and wait until it listens.
pub fn start_agent(dir: &Path) -> Agent {
    let sock = dir.join("agent.sock");
    let child = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .spawn()
        .expect("ssh-agent (openssh-client) is needed");
    let agent = Agent { sock, child };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !agent.sock.exists() {
        assert!(Instant::now() < deadline, "ssh-agent did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    agent
}

/// All that a finished child wrote on a piped stream (empty when it was not piped).
pub fn drain(stream: Option<impl std::io::Read>) -> String {
    let mut s = String::new();
    if let Some(mut r) = stream {
        let _ = r.read_to_string(&mut s);
    }
    s
}

/// prun on a pseudo-terminal, as a user's terminal runs it: its own session with
/// the terminal as controlling terminal (so Ctrl-C typed there is SIGINT to prun), answers
/// to cursor-position queries, and everything it writes collected.
pub struct Terminal {
    master: std::fs::File,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    pub child: Child,
}

impl Terminal {
    pub fn spawn(mut c: std::process::Command) -> Terminal {
        use std::os::fd::{FromRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: 40,
            ws_col: 160,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors this test then owns.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors are fresh and owned here.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        c.env("TERM", "xterm")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl are async-signal-safe; the child becomes the terminal's
        // session leader with it as controlling terminal.
        unsafe {
            c.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = c.spawn().unwrap();
        drop(c); // the parent's copies of the slave side
        let master = std::fs::File::from(master);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (mut reader, mut answer) = (master.try_clone().unwrap(), master.try_clone().unwrap());
        let sink = std::sync::Arc::clone(&seen);
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            // ends with EIO once the shell and its terminal are gone
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                let chunk = &buf[..n];
                if chunk.windows(4).any(|w| w == b"\x1b[6n") {
                    let _ = answer.write_all(b"\x1b[1;1R");
                }
                sink.lock().unwrap().extend_from_slice(chunk);
            }
        });
        Terminal {
            master,
            seen,
            child,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Wait until `needle` has appeared `times` times in all the terminal showed.
    pub fn expect(&self, needle: &str, times: usize) {
        let end = Instant::now() + Duration::from_secs(30);
        while self.text().matches(needle).count() < times {
            assert!(
                Instant::now() < end,
                "the terminal never showed {needle:?} {times} time(s):\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn type_keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // a failed test leaves no shell behind
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
