//! A hostile server: plain TCP listeners in this file that speak just enough (or too much)
//! SSH to attack the client before any host key is checked. Each case bounds prun's run and
//! asserts what it reports. No sshd is needed.

mod common;

use common::wait_at_most;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A listener on 127.0.0.1 that runs `serve` on each connection (one thread each) until the
/// value is dropped; every thread gives up after 30 s on its own.
struct Hostile {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Hostile {
    fn start(serve: fn(TcpStream, &AtomicBool)) -> Hostile {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(30);
            while !s.load(Ordering::Relaxed) && Instant::now() < end {
                match l.accept() {
                    Ok((c, _)) => {
                        let _ = c.set_nonblocking(false);
                        let _ = c.set_write_timeout(Some(Duration::from_secs(2)));
                        let s = Arc::clone(&s);
                        std::thread::spawn(move || serve(c, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Hostile { port, stop }
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Write `chunk` until the client goes away, the listener stops, or 30 s pass.
fn write_forever(mut c: TcpStream, stop: &AtomicBool, chunk: &[u8]) {
    let end = Instant::now() + Duration::from_secs(30);
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        if c.write_all(chunk).is_err() {
            return;
        }
    }
}

fn banner(c: &mut TcpStream) {
    let _ = c.write_all(b"SSH-2.0-hostile_0.1\r\n");
}

/// Read what the client sends for up to `d` (so it sees our bytes before we act).
fn drain_for(c: &mut TcpStream, d: Duration) {
    let _ = c.set_read_timeout(Some(Duration::from_millis(50)));
    let end = Instant::now() + d;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        if let Ok(0) = c.read(&mut buf) {
            return;
        }
    }
}

/// An unencrypted SSH packet carrying `payload`.
fn packet(payload: &[u8]) -> Vec<u8> {
    let mut pad = 8 - (payload.len() + 5) % 8;
    if pad < 4 {
        pad += 8;
    }
    let len = (1 + payload.len() + pad) as u32;
    let mut p = len.to_be_bytes().to_vec();
    p.push(pad as u8);
    p.extend_from_slice(payload);
    p.extend(std::iter::repeat_n(0u8, pad));
    p
}

fn prun(port: u16, home: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_prun"));
    c.env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .args(["-F", "none", "-H"])
        .arg(format!("127.0.0.1:{port}"));
    if !args.contains(&"--retries") {
        c.args(["--retries", "0"]);
    }
    c.args(args);
    c
}

/// Run to the end within `limit` (else fail the test): exit code and stderr.
fn finish_within(mut c: Command, limit: Duration) -> (i32, String) {
    let mut child = c.spawn().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let st = wait_at_most(&mut child, limit);
    let stderr = reader.join().unwrap();
    let st = st.unwrap_or_else(|| panic!("prun did not finish within {limit:?}:\n{stderr}"));
    (st.code().unwrap_or(-1), stderr)
}

/// Start `c`, send it `sig` after `delay`, and wait (10 s at most, else fail the test) for
/// its exit code and stderr.
fn signalled_after(mut c: Command, sig: libc::c_int, delay: Duration) -> (i32, String) {
    let mut child = c.spawn().unwrap();
    std::thread::sleep(delay);
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(child.id() as i32, sig) };
    let st = wait_at_most(&mut child, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("prun did not stop after signal {sig}"));
    let err = common::drain(child.stderr.take());
    (st.code().unwrap_or(-1), err)
}

fn endless_banner(c: TcpStream, stop: &AtomicBool) {
    let mut line = vec![b'x'; 200];
    line.extend_from_slice(b"\r\n");
    write_forever(c, stop, &line.repeat(64));
}

#[test]
fn an_endless_banner_is_bounded_by_the_connect_timeout() {
    let h = Hostile::start(endless_banner);
    let home = tempfile::tempdir().unwrap();
    let (code, err) = finish_within(
        prun(h.port, home.path(), &["--connect-timeout", "1", "true"]),
        Duration::from_secs(15),
    );
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("handshake") && err.contains("timeout"),
        "{err}"
    );
}

#[test]
fn ctrl_c_sigterm_and_sighup_are_honoured_during_an_endless_banner() {
    let h = Hostile::start(endless_banner);
    let home = tempfile::tempdir().unwrap();
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let c = prun(h.port, home.path(), &["--connect-timeout", "120", "true"]);
        let (code, err) = signalled_after(c, sig, Duration::from_millis(1500));
        assert_eq!(code, 130, "signal {sig}: {err}");
        assert!(err.contains("partial summary"), "signal {sig}: {err}");
    }
}

#[test]
fn endless_ignore_packets_during_key_exchange_are_bounded() {
    let h = Hostile::start(|mut c, stop| {
        banner(&mut c);
        // valid framing, never a KEXINIT
        let mut ignore = vec![2u8, 0, 0, 0, 200];
        ignore.extend(std::iter::repeat_n(b'i', 200));
        write_forever(c, stop, &packet(&ignore).repeat(64));
    });
    let home = tempfile::tempdir().unwrap();
    let (code, err) = finish_within(
        prun(h.port, home.path(), &["--connect-timeout", "1", "true"]),
        Duration::from_secs(15),
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("timeout"), "{err}");
}

#[test]
fn garbage_and_resets_during_key_exchange_are_io_failures_and_retried() {
    let garbage = Hostile::start(|mut c, stop| {
        banner(&mut c);
        drain_for(&mut c, Duration::from_millis(100));
        write_forever(c, stop, &[0xA5; 4096]);
    });
    let home = tempfile::tempdir().unwrap();
    let (code, err) = finish_within(
        prun(
            garbage.port,
            home.path(),
            &["--connect-timeout", "2", "true"],
        ),
        Duration::from_secs(15),
    );
    assert_eq!(code, 4, "{err}");
    assert!(!err.contains("no common algorithm"), "{err}");

    // a reset right after the banner: a network failure, retried like one
    let reset = Hostile::start(|mut c, _| {
        banner(&mut c);
        drain_for(&mut c, Duration::from_millis(100));
        let _ = socket_reset(&c);
    });
    let cmd = prun(
        reset.port,
        home.path(),
        &["--connect-timeout", "2", "--retries", "1", "true"],
    );
    let (code, err) = finish_within(cmd, Duration::from_secs(20));
    assert_eq!(code, 4, "{err}");
    assert!(!err.contains("no common algorithm"), "{err}");
    assert!(err.contains("kind io") || err.contains(" io"), "{err}");
}

/// Close with a TCP reset (SO_LINGER 0).
fn socket_reset(c: &TcpStream) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setting a plain option on our own socket.
    unsafe {
        libc::setsockopt(
            c.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    c.shutdown(std::net::Shutdown::Both)
}

#[test]
fn a_huge_packet_length_fails_fast_without_allocating_it() {
    let h = Hostile::start(|mut c, stop| {
        banner(&mut c);
        drain_for(&mut c, Duration::from_millis(100));
        let _ = c.write_all(&[0xff, 0xff, 0xff, 0xf0, 4]);
        write_forever(c, stop, &[0u8; 4096]);
    });
    let home = tempfile::tempdir().unwrap();
    let (code, err) = finish_within(
        prun(h.port, home.path(), &["--connect-timeout", "5", "true"]),
        Duration::from_secs(20),
    );
    assert_eq!(code, 4, "{err}");
}

#[test]
fn ctrl_c_is_honoured_during_a_connect_that_never_completes() {
    // a listener that never accepts, with a full queue: the kernel drops further SYNs, so a
    // connect to it neither succeeds nor fails (like a host behind a dropping firewall)
    use socket2::{Domain, Socket, Type};
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    l.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&addr.into());
        fillers.push(s);
    }
    std::thread::sleep(Duration::from_millis(200));
    let home = tempfile::tempdir().unwrap();
    let c = prun(
        addr.port(),
        home.path(),
        &["--connect-timeout", "120", "true"],
    );
    let (code, err) = signalled_after(c, libc::SIGINT, Duration::from_millis(1500));
    assert_eq!(code, 130, "{err}");
    assert!(err.contains("connect cancelled"), "{err}");
    drop(fillers);
}
