//! `prun shell`: an interactive prompt that runs each line on the selected hosts, like
//! `clush` interactive mode. Every host is logged in to at its first command and the login
//! is held for the next ones ([`crate::ssh::Pool`]), so later commands cost a channel open
//! and an exec. Each command runs through the same runner, printers and summary as a normal
//! run. Built-ins start with `:`. Ctrl-C stops the running command on every host (its own
//! cancel, the SSH signal request) and returns to the prompt; at the prompt it clears the
//! line. Line editing and history by rustyline, drawn on the terminal, never on stdout; the
//! history is kept in a file between shells ([`history_file`]).

use crate::app;
use crate::cancel::{Cancel, Reason};
use crate::cli::{Cli, OutputMode};
use crate::event::Status;
use crate::exit;
use crate::runner::Job;
use crate::ssh::{RunState, Work};
use rustyline::error::ReadlineError;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

const HELP: &str = "\
  COMMAND                run COMMAND on the selected hosts
  :limit PATTERN         select hosts again (a --limit pattern; :limit alone: all of them)
  :hosts                 list the selected hosts
  :output MODE           stream, block, gather or json
  :sessions              the held logins (host, where, held, idle, commands)
  :help                  this text
  :quit                  leave (also Ctrl-D)";

/// Run the shell until `:quit` or end of input; the exit status is that of the last command.
pub fn run(cli: Cli) -> u8 {
    let mut cli = cli;
    if cli.inventory.iter().any(|i| i.as_os_str() == "-") {
        eprintln!("prun: error: prun shell reads its lines from stdin; give -i a file, not -");
        return exit::USAGE;
    }
    let Some(mut plan) = app::plan_or_say(&cli) else {
        return exit::USAGE;
    };
    let parallel = match app::raise_nofile_limit() {
        Some(limit) => plan.parallel.min((limit.saturating_sub(32) / 2).max(1)),
        None => plan.parallel,
    };
    let state = Arc::new(RunState::holding(parallel));
    // while the prompt waits: keepalives for the held logins, dead ones dropped (only the idle
    // ones are in the pool; a running command has taken its login out)
    let tender = Arc::downgrade(&state);
    std::thread::spawn(move || {
        while let Some(state) = tender.upgrade() {
            state.tend();
            drop(state);
            std::thread::sleep(std::time::Duration::from_secs(2));
        }
    });
    // Ctrl-C cancels the command that runs, if any; a second one during it exits. At the
    // prompt a typed Ctrl-C reaches the line editor, not this handler: what arrives here then
    // is SIGTERM, SIGHUP or a SIGINT from elsewhere, and ends the shell (terminal restored).
    let current: Arc<Mutex<Option<Arc<Cancel>>>> = Arc::default();
    let handler_current = Arc::clone(&current);
    let terminal = TerminalMode::save();
    if let Err(e) = ctrlc::set_handler(move || match handler_current.lock().unwrap().as_ref() {
        Some(c) if !c.is_interrupted() => c.trigger(Reason::Interrupted),
        _ => {
            terminal.restore();
            std::process::exit(exit::INTERRUPTED as i32);
        }
    }) {
        eprintln!("prun: warning: cannot handle Ctrl-C ({e}); it will end the shell");
    }
    let config = rustyline::Config::builder()
        .behavior(rustyline::config::Behavior::PreferTerm)
        .auto_add_history(true)
        .history_ignore_space(true)
        .max_history_size(HISTORY_LINES)
        .map(|b| b.build())
        .unwrap_or_default();
    let mut editor = match rustyline::DefaultEditor::with_config(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("prun: error: cannot start the prompt: {e}");
            return exit::INTERNAL;
        }
    };
    // like bash, only an interactive shell keeps history: lines piped in by a script are not
    // written to the user's history file
    let history = std::io::stdin().is_terminal().then(history_file).flatten();
    if let Some(path) = &history {
        load_history(&mut editor, path);
    }
    let mut history_failed = false;
    let Ok(mut out_dir) = app::open_out_dir(&cli) else {
        return exit::USAGE;
    };
    let mut status = exit::OK;
    loop {
        let prompt = format!("prun ({} hosts)> ", plan.targets.len());
        let line = match editor.readline(&prompt) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("prun: error: reading the prompt: {e}");
                return exit::INTERNAL;
            }
        };
        if let Some(path) = &history
            && !history_failed
            && let Err(e) = editor.append_history(path)
        {
            eprintln!(
                "prun: warning: cannot save the history to {}: {e}",
                path.display()
            );
            history_failed = true;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(builtin) = line.strip_prefix(':') {
            let (word, arg) = builtin
                .split_once(char::is_whitespace)
                .map_or((builtin, ""), |(w, a)| (w, a.trim()));
            match word {
                "quit" | "q" | "exit" => break,
                "help" | "h" | "?" => eprintln!("{HELP}"),
                "hosts" => {
                    let mut out = std::io::stdout().lock();
                    for t in &plan.targets {
                        let _ = writeln!(out, "{}", t.name);
                    }
                }
                "sessions" => {
                    let held = state.held();
                    eprintln!("prun: {} login(s) held", held.len());
                    for h in &held {
                        eprintln!("  {}", crate::holder::held_line(h));
                    }
                }
                "output" => match arg {
                    "stream" => cli.output = OutputMode::Stream,
                    "block" => cli.output = OutputMode::Block,
                    "gather" => cli.output = OutputMode::Gather,
                    "json" => cli.output = OutputMode::Json,
                    _ => eprintln!("prun: :output takes stream, block, gather or json"),
                },
                "limit" => {
                    let mut next = cli.clone();
                    next.limit = (!arg.is_empty()).then(|| arg.to_string());
                    // the same settings, hosts and keys; only the selection changes
                    match crate::plan::build(&next) {
                        Ok(p) => {
                            let settings = std::mem::replace(&mut plan.settings, p.settings);
                            plan = crate::plan::Plan { settings, ..p };
                            cli = next;
                            eprintln!("prun: {} host(s) selected", plan.targets.len());
                        }
                        Err(e) => eprintln!("prun: error: {e}"),
                    }
                }
                other => eprintln!("prun: unknown built-in ':{other}' (:help lists them)"),
            }
            continue;
        }
        let cancel = match Cancel::new() {
            Ok(c) => Arc::new(c),
            Err(e) => {
                eprintln!("prun: error: cannot set up cancellation: {e}");
                return exit::INTERNAL;
            }
        };
        *current.lock().unwrap() = Some(Arc::clone(&cancel));
        let work = Work::Command(line.to_string());
        // {host}, {rack}: each host's own command
        let vars: Vec<_> = plan.host_vars.iter().collect();
        if let Err(e) = crate::perhost::apply(
            &mut plan.targets,
            &plan.batches,
            &vars,
            &work,
            &cli.env,
            cli.literal,
            &mut |_| Err("no push in the shell".into()),
        ) {
            eprintln!("prun: error: {e}");
            continue;
        }
        // every line is rolled out as the command line says, without questions (a canary
        // that fails stops the line's run, as with --yes)
        let rollout = crate::rollout::Rollout {
            ask: crate::rollout::Ask::Never,
            ..plan.rollout.clone()
        };
        let job = Job {
            targets: &plan.targets,
            command: line,
            work: &work,
            parallel,
            engine: cli.engine(),
            shared: state.shared(&plan.settings, &plan.default_keys, &cancel),
            rollout: &rollout,
            answers: None,
        };
        let (summary, lost) = app::drive(
            |tx| crate::runner::run(&job, tx),
            cli.output,
            cli.quiet,
            app::color_of(&cli),
            app::progress_target(&cli),
            &mut out_dir,
            None,
        );
        *current.lock().unwrap() = None;
        // one line when all went well; the whole summary when not
        let statuses = summary.statuses();
        let text = summary.render();
        if !cli.quiet {
            let all_ok = statuses.iter().all(|s| *s == Status::Ok);
            let shown = if all_ok {
                text.lines()
                    .next()
                    .map(|l| format!("{l}\n"))
                    .unwrap_or_default()
            } else {
                text
            };
            eprint!("{shown}");
        }
        status = if cancel.is_interrupted() {
            exit::INTERRUPTED
        } else if lost {
            exit::INTERNAL
        } else {
            exit::for_statuses(statuses)
        };
    }
    status
}

/// Lines of history kept.
const HISTORY_LINES: usize = 1000;

/// Where the shell keeps its history: `PRUN_HISTORY` (empty: nowhere), else
/// `$XDG_STATE_HOME/prun/shell_history`, else `~/.local/state/prun/shell_history`.
fn history_file() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("PRUN_HISTORY") {
        return (!p.is_empty()).then(|| crate::paths::expand_tilde(&p.to_string_lossy()));
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map_or_else(
            || crate::paths::home().join(".local/state"),
            std::path::PathBuf::from,
        );
    Some(state.join("prun/shell_history"))
}

/// Read the history file into the editor, creating its directory (0700) when missing. A file
/// that is not there yet is fine; one that cannot be read is said once.
fn load_history(editor: &mut rustyline::DefaultEditor, path: &std::path::Path) {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    match editor.load_history(path) {
        Ok(()) => {}
        Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => eprintln!(
            "prun: warning: cannot read the history {}: {e}",
            path.display()
        ),
    }
}

/// The terminal's mode as the shell found it (stdin a terminal), to put back when a signal
/// ends the shell while the line editor has the terminal in raw mode.
struct TerminalMode(Option<libc::termios>);

impl TerminalMode {
    fn save() -> TerminalMode {
        // SAFETY: termios is plain data; tcgetattr fills it or fails (stdin not a terminal).
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            TerminalMode((libc::tcgetattr(0, &mut t) == 0).then_some(t))
        }
    }

    fn restore(&self) {
        if let Some(t) = &self.0 {
            // SAFETY: restoring attributes read from the same descriptor.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, t);
            }
        }
    }
}
