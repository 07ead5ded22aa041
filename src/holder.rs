//! `--persist DUR`: a holder process keeps each host's login between separate prun runs.
//!
//! The first run with `--persist` starts the holder (`prun __hold`, detached) and every such
//! run sends it its command line; the holder builds the plan as prun would, runs the hosts
//! over the logins it holds ([`crate::ssh::Pool`]: channel open + exec for a held host, a
//! fresh login for the others, which it then keeps) and streams the run's events back, one
//! JSON line each; the client's printers, reports and exit status consume them as they would
//! its own runner's. The event contract is the protocol.
//!
//! Safety: the socket lives in a directory only the user can enter (`$XDG_RUNTIME_DIR/prun`,
//! else `/tmp/prun-UID`, mode 0700, checked to be the user's own and not a link), the socket
//! is 0600, and every connection's peer uid is checked (`SO_PEERCRED`). The holder is
//! started without prun's secret variables; a run's passwords (`PRUN_PASSWORD`,
//! `PRUN_SUDO_PASSWORD`, `--ask-pass`) and `--stdin` bytes travel with its request and are
//! dropped when the run ends. The
//! holder serves runs one at a time: while it serves one, every other client is answered at
//! once that it is busy ([`turn_away`]; a run then runs directly, as without `--persist`),
//! never left waiting for the run to end. It ends after `DUR` without a run, on
//! `prun sessions --stop`, or when it cannot serve.

use crate::cancel::{Cancel, Reason};
use crate::event::Event;
use crate::runner::{self, Job};
use crate::secret::Secret;
use crate::ssh::{HeldInfo, RunState};
use crate::target::{STDIN_MEMORY_CAP, StdinData};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What a client asks.
#[derive(Serialize, Deserialize, Debug)]
enum Request {
    /// Run this command line (the words after the program name), from `cwd`.
    Run {
        argv: Vec<String>,
        cwd: PathBuf,
        /// HOME, USER, SSH_AUTH_SOCK as the client sees them: must match the holder's.
        env: Vec<(String, Option<String>)>,
        /// The run's passwords (`PRUN_PASSWORD`, `PRUN_SUDO_PASSWORD`, `--ask-pass`).
        password: Option<Secret>,
        sudo_password: Option<Secret>,
        /// `--stdin`: the bytes read by the client, base64 (at most [`STDIN_MEMORY_CAP`]).
        stdin: Option<String>,
    },
    /// Stop the running command (Ctrl-C on the client).
    Cancel,
    List,
    /// Close the logins of the hosts that match one of these patterns; every login (and the
    /// holder) when there are none.
    Stop(Vec<String>),
}

/// What the holder answers.
#[derive(Serialize, Deserialize, Debug)]
enum Reply {
    Event(Event),
    /// The holder cannot run this request (the client runs it itself).
    Refused(String),
    /// The held logins.
    Held(Vec<HeldInfo>),
    /// How many logins were closed, and whether the holder ended.
    Stopped {
        closed: usize,
        ended: bool,
    },
}

/// How often the idle holder looks after its logins.
const TEND_EVERY: Duration = Duration::from_secs(2);

/// Environment variables that decide what a run means; the holder serves only clients that
/// agree with it on these.
const SAME_ENV: [&str; 3] = ["HOME", "USER", "SSH_AUTH_SOCK"];

fn env_now() -> Vec<(String, Option<String>)> {
    SAME_ENV
        .iter()
        .map(|k| (k.to_string(), std::env::var(k).ok()))
        .collect()
}

/// The holder's directory: created 0700 when missing; refused unless it is a real directory
/// of this user that nobody else can enter.
fn socket_dir() -> Result<PathBuf, String> {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("prun"),
        None => PathBuf::from(format!("/tmp/prun-{uid}")),
    };
    if std::fs::symlink_metadata(&dir).is_err() {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let m = std::fs::symlink_metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !m.is_dir() || m.uid() != uid || m.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{} is not a directory of yours that only you can enter (mode 0700): refusing to \
             keep logins there",
            dir.display()
        ));
    }
    Ok(dir)
}

fn socket_path() -> Result<PathBuf, String> {
    Ok(socket_dir()?.join("holder.sock"))
}

/// The uid of the process at the other end of `s`.
fn peer_uid(s: &UnixStream) -> Option<u32> {
    use std::os::unix::io::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    (rc == 0).then_some(cred.uid)
}

fn send<T: Serialize>(w: &mut impl Write, v: &T) -> std::io::Result<()> {
    // the serialized copy may hold a secret (a run's password): wiped once written
    let mut line = zeroize::Zeroizing::new(serde_json::to_vec(v).map_err(std::io::Error::other)?);
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

/// A connection to the running holder, starting one (for `idle`) when none answers.
fn connect_or_start(idle: Duration) -> Result<UnixStream, String> {
    let path = socket_path()?;
    if let Ok(s) = UnixStream::connect(&path) {
        return Ok(s);
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find prun itself: {e}"))?;
    let mut c = std::process::Command::new(exe);
    crate::secret::without_secrets(&mut c)
        .arg(ENTRY)
        .arg("--idle")
        .arg(format!("{}ms", idle.as_millis().max(1)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe; the holder leaves the terminal's session, so
        // the client's Ctrl-C never reaches it.
        unsafe {
            c.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
    }
    c.spawn()
        .map_err(|e| format!("cannot start the holder: {e}"))?;
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        match UnixStream::connect(&path) {
            Ok(s) => return Ok(s),
            Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("the holder did not start ({e})")),
        }
    }
}

/// Send this run to the holder, with what the client gathered for it (passwords, `--stdin`).
/// `Ok`: the holder runs it; its first event and the stream of the others. `Err`: run it here
/// instead (the reason says why).
pub fn submit(
    idle: Duration,
    settings: &crate::target::Settings,
) -> Result<(BufReader<UnixStream>, Event), String> {
    use base64::Engine as _;
    let stdin = match settings.stdin.as_deref() {
        None => None,
        Some(StdinData::Memory(bytes)) => {
            Some(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        Some(StdinData::File { .. }) => {
            return Err(format!(
                "--stdin over {} MiB is not sent to the holder",
                STDIN_MEMORY_CAP >> 20
            ));
        }
    };
    let mut s = connect_or_start(idle)?;
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let cwd = std::env::current_dir().map_err(|e| format!("no current directory: {e}"))?;
    let req = Request::Run {
        argv,
        cwd,
        env: env_now(),
        password: settings.password.clone(),
        sudo_password: settings.sudo_password.clone(),
        stdin,
    };
    send(&mut s, &req).map_err(|e| format!("cannot talk to the holder: {e}"))?;
    let mut r = BufReader::new(s);
    match read_reply(&mut r)? {
        Reply::Event(ev) => Ok((r, ev)),
        Reply::Refused(why) => Err(why),
        other => Err(format!("unexpected answer from the holder: {other:?}")),
    }
}

fn read_reply(r: &mut BufReader<UnixStream>) -> Result<Reply, String> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) => Err("the holder closed the connection".into()),
        Ok(_) => {
            serde_json::from_str(&line).map_err(|e| format!("bad answer from the holder: {e}"))
        }
        Err(e) => Err(format!("reading from the holder: {e}")),
    }
}

/// Relay the holder's events for this run to `tx`; on the client's cancel, ask the holder to
/// stop the command. If the holder goes away mid-run, the run ends as it stands.
pub fn relay(
    mut r: BufReader<UnixStream>,
    first: Event,
    tx: &crossbeam_channel::Sender<Event>,
    cancel: &Cancel,
) {
    let mut w = r.get_ref().try_clone().ok();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if cancel.is_cancelled() {
                    if let Some(w) = w.as_mut() {
                        let _ = send(w, &Request::Cancel);
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let mut finished = matches!(first, Event::RunFinished { .. });
        let _ = tx.send(first);
        while !finished {
            match read_reply(&mut r) {
                Ok(Reply::Event(ev)) => {
                    finished = matches!(ev, Event::RunFinished { .. });
                    let _ = tx.send(ev);
                }
                Ok(_) | Err(_) => {
                    let _ = tx.send(Event::Warning {
                        message: "the --persist holder went away during the run; hosts \
                                  without a result are reported as cancelled"
                            .into(),
                    });
                    let _ = tx.send(Event::RunFinished {
                        elapsed: Duration::ZERO,
                        stopped: Some(crate::event::Stop::Interrupted),
                    });
                    break;
                }
            }
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

/// One held login as `prun sessions` prints it: host, where, held for, idle for, commands.
pub fn held_line(h: &HeldInfo) -> String {
    format!(
        "{}\t{}\theld {}\tidle {}\t{} command(s)",
        h.host,
        h.place,
        crate::text::fmt_duration(h.held),
        crate::text::fmt_duration(h.idle),
        h.commands
    )
}

/// Whether host `name` matches one of `patterns` (globs with `*`, `?` and `[...]`, as
/// `prun sessions --stop` takes them).
fn picks(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match glob::Pattern::new(p) {
        Ok(g) => g.matches(name),
        Err(_) => p == name,
    })
}

/// `prun sessions [--stop [PATTERN...]]`.
pub fn sessions(stop: Option<Vec<String>>) -> u8 {
    let path = match socket_path() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("prun: error: {e}");
            return crate::exit::USAGE;
        }
    };
    let Ok(mut s) = UnixStream::connect(&path) else {
        eprintln!("prun: no holder is running: no logins are held");
        return crate::exit::OK;
    };
    let req = match stop {
        Some(patterns) => Request::Stop(patterns),
        None => Request::List,
    };
    if let Err(e) = send(&mut s, &req) {
        eprintln!("prun: error: cannot talk to the holder: {e}");
        return crate::exit::INTERNAL;
    }
    let mut r = BufReader::new(s);
    match read_reply(&mut r) {
        Ok(Reply::Held(held)) => {
            let mut out = std::io::stdout().lock();
            for h in &held {
                let _ = writeln!(out, "{}", held_line(h));
            }
            eprintln!("prun: {} login(s) held", held.len());
            crate::exit::OK
        }
        Ok(Reply::Stopped { closed, ended }) => {
            if ended {
                eprintln!("prun: closed {closed} login(s); the holder ended");
            } else {
                eprintln!("prun: closed {closed} login(s); the holder keeps the others");
            }
            crate::exit::OK
        }
        Ok(Reply::Refused(why)) => {
            eprintln!("prun: error: {why}");
            crate::exit::INTERNAL
        }
        Ok(other) => {
            eprintln!("prun: error: unexpected answer from the holder: {other:?}");
            crate::exit::INTERNAL
        }
        Err(e) => {
            eprintln!("prun: error: {e}");
            crate::exit::INTERNAL
        }
    }
}

/// The first argument that makes the prun binary the holder: `prun __hold --idle DUR`.
pub const ENTRY: &str = "__hold";

/// The holder's own command line (after [`ENTRY`]): `--idle DUR`.
pub fn serve_from_args(args: &[std::ffi::OsString]) -> u8 {
    let words: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    match words.as_slice() {
        ["--idle", d] => match crate::cli::parse_duration(d) {
            Ok(idle) => serve(idle),
            Err(e) => {
                eprintln!("prun: error: {ENTRY}: --idle: {e}");
                crate::exit::USAGE
            }
        },
        _ => {
            eprintln!("prun: error: {ENTRY} is started by prun --persist and takes --idle DUR");
            crate::exit::USAGE
        }
    }
}

/// Serve runs until idle for `idle`.
fn serve(idle: Duration) -> u8 {
    let Ok(path) = socket_path() else {
        return crate::exit::USAGE;
    };
    if UnixStream::connect(&path).is_ok() {
        return crate::exit::OK; // another holder serves already
    }
    let _ = std::fs::remove_file(&path);
    let Ok(listener) = UnixListener::bind(&path) else {
        return crate::exit::INTERNAL;
    };
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    let _ = crate::app::raise_nofile_limit();
    // SAFETY: getuid cannot fail.
    let me = unsafe { libc::getuid() };
    let mine = env_now();
    // sized by the first run's --parallel
    let mut state: Option<RunState> = None;
    let _ = listener.set_nonblocking(true);
    let mut last = Instant::now();
    let mut tended = Instant::now();
    loop {
        // while idle: drop logins that died, keep the others alive; end when none is left
        if tended.elapsed() >= TEND_EVERY {
            if let Some(st) = &state {
                st.tend();
                if st.held().is_empty() {
                    break;
                }
            }
            tended = Instant::now();
        }
        let s = match listener.accept() {
            Ok((s, _)) => s,
            Err(_) => {
                if last.elapsed() >= idle {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let _ = s.set_nonblocking(false);
        if peer_uid(&s) != Some(me) {
            continue; // never serve another user
        }
        // a client that connects and sends nothing does not hold the holder up
        let _ = s.set_read_timeout(Some(REQUEST_WITHIN));
        last = Instant::now();
        let mut r = BufReader::new(s);
        let Ok(req) = read_request(&mut r) else {
            continue;
        };
        // from here a read waits for the client's Cancel, for as long as the run takes
        let _ = r.get_ref().set_read_timeout(None);
        match req {
            Request::Stop(patterns) => {
                let held = state.as_ref().map_or(0, |st| st.held().len());
                let closed = match &state {
                    Some(st) if !patterns.is_empty() => st.close(|name| picks(&patterns, name)),
                    _ => held,
                };
                let ended = closed == held;
                let _ = send(r.get_mut(), &Reply::Stopped { closed, ended });
                if ended {
                    break;
                }
            }
            Request::List => {
                let held = state.as_ref().map(RunState::held).unwrap_or_default();
                let _ = send(r.get_mut(), &Reply::Held(held));
            }
            Request::Cancel => {}
            Request::Run {
                argv,
                cwd,
                env,
                password,
                sudo_password,
                stdin,
            } => {
                if env != mine {
                    let _ = send(
                        r.get_mut(),
                        &Reply::Refused(
                            "the holder was started with another HOME, USER or SSH_AUTH_SOCK"
                                .into(),
                        ),
                    );
                    continue;
                }
                let given = Given {
                    password,
                    sudo_password,
                    stdin,
                };
                let done = std::sync::atomic::AtomicBool::new(false);
                std::thread::scope(|scope| {
                    scope.spawn(|| turn_away(&listener, me, &done));
                    run_one(&mut state, r, argv, cwd, given);
                    done.store(true, std::sync::atomic::Ordering::Relaxed);
                });
                // SAFETY: malloc_trim only returns free heap pages to the kernel.
                unsafe {
                    libc::malloc_trim(0);
                }
            }
        }
        last = Instant::now();
    }
    let _ = std::fs::remove_file(&path);
    crate::exit::OK
}

/// How long a client has to send its request once connected.
const REQUEST_WITHIN: Duration = Duration::from_secs(5);

/// What a client hears while the holder serves another run.
const BUSY: &str = "the holder is serving another run right now (one at a time)";

/// While a run is served (until `done`): answer every other client of this user at once
/// that the holder is busy. A run then runs directly (the client says so); `prun sessions`
/// says to ask again. Nobody waits for the run in progress to end.
fn turn_away(listener: &UnixListener, me: u32, done: &std::sync::atomic::AtomicBool) {
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        let Ok((s, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let _ = s.set_nonblocking(false);
        if peer_uid(&s) != Some(me) {
            continue;
        }
        let _ = s.set_read_timeout(Some(REQUEST_WITHIN));
        let mut r = BufReader::new(s);
        // read first, so the client is not cut off mid-request; its secrets are dropped here
        if let Ok(Request::Run { .. } | Request::List | Request::Stop(_)) = read_request(&mut r) {
            let _ = send(r.get_mut(), &Reply::Refused(BUSY.into()));
        }
    }
}

fn read_request(r: &mut BufReader<UnixStream>) -> Result<Request, String> {
    // the line may hold a run's password: wiped once parsed
    let mut line = zeroize::Zeroizing::new(String::new());
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    serde_json::from_str(&line).map_err(|e| e.to_string())
}

/// What the client gathered for a run.
struct Given {
    password: Option<Secret>,
    sudo_password: Option<Secret>,
    stdin: Option<String>,
}

/// Serve one run: build its plan as prun would, run it over the held logins, stream events.
fn run_one(
    state: &mut Option<RunState>,
    mut r: BufReader<UnixStream>,
    argv: Vec<String>,
    cwd: PathBuf,
    given: Given,
) {
    let refuse = |r: &mut BufReader<UnixStream>, why: String| {
        let _ = send(r.get_mut(), &Reply::Refused(why));
    };
    if let Err(e) = std::env::set_current_dir(&cwd) {
        return refuse(
            &mut r,
            format!("the holder cannot enter {}: {e}", cwd.display()),
        );
    }
    let words = std::iter::once("prun".to_string())
        .chain(argv)
        .map(Into::into)
        .collect();
    let cli = match crate::cli::try_parse_from(words) {
        Ok(c) => c,
        Err(e) => return refuse(&mut r, e),
    };
    let mut plan = match crate::plan::build(&cli) {
        Ok(p) => p,
        Err(e) => return refuse(&mut r, e.to_string()),
    };
    plan.settings.password = given.password;
    if plan.uses_sudo() {
        plan.settings.sudo_password = given.sudo_password;
    }
    if let Some(text) = given.stdin {
        use base64::Engine as _;
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(bytes) => plan.settings.stdin = Some(std::sync::Arc::new(StdinData::Memory(bytes))),
            Err(e) => return refuse(&mut r, format!("bad --stdin data: {e}")),
        }
    }
    let Ok(cancel) = Cancel::new() else {
        return refuse(&mut r, "the holder cannot set up cancellation".into());
    };
    let state = state.get_or_insert_with(|| RunState::holding(plan.parallel));
    let job = Job {
        targets: &plan.targets,
        command: &plan.command,
        work: &plan.work,
        parallel: plan.parallel,
        engine: cli.engine(),
        shared: state.shared(&plan.settings, &plan.default_keys, &cancel),
        rollout: &plan.rollout,
        answers: None,
    };
    let (tx, rx) = crossbeam_channel::bounded::<Event>(64);
    let reader = r.get_ref().try_clone();
    let mut w = std::io::BufWriter::new(r.into_inner());
    std::thread::scope(|s| {
        let job = &job;
        // the runner owns the sender: the channel ends with the run
        s.spawn(move || runner::run(job, &tx));
        // the client says Cancel (its Ctrl-C) or goes away: stop the command
        if let Ok(rs) = reader {
            let cancel = &cancel;
            s.spawn(move || {
                let mut rs = BufReader::new(rs);
                let mut line = String::new();
                let _ = rs.read_line(&mut line);
                cancel.trigger(Reason::Interrupted);
            });
        }
        for ev in rx.iter() {
            let end = matches!(ev, Event::RunFinished { .. });
            if send(&mut w, &Reply::Event(ev)).is_err() {
                cancel.trigger(Reason::Interrupted);
            }
            if end {
                break;
            }
        }
        // unblock the reader thread: the run is over
        let _ = w.get_ref().shutdown(std::net::Shutdown::Both);
        for _ in rx.iter() {}
    });
}
