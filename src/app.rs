//! The pipeline, top to bottom: plan → runner (its own thread) → events → printer, progress
//! bar and summary (this thread) → exit status. The only place that wires runner and sinks,
//! and where Ctrl-C and `--fail-fast` turn into a cancel of the run.

use crate::cancel::{Cancel, Reason};
use crate::cli::{BenchArgs, Cli, OutputMode, ReportFormat, Sub, When};
use crate::event::{Event, Printer, Status, Stop};
use crate::output::block::{BlockPrinter, Mode as BlockMode};
use crate::output::outdir::OutDir;
use crate::output::progress::Target as ProgressTarget;
use crate::output::{Progress, StreamPrinter};
use crate::report::Summary;
use crate::report::jsonl::JsonPrinter;
use crate::report::timing;
use crate::runner::{self, Job};
use crate::ssh::RunState;
use crate::{exit, plan};
use std::io::{self, IsTerminal, Write};
use std::sync::Arc;

/// Events in flight between the runner and the printers.
const EVENT_QUEUE: usize = 64;

/// Run prun with parsed arguments; returns the exit status.
pub fn run(cli: Cli) -> u8 {
    if !matches!(
        cli.sub,
        Some(Sub::Shell | Sub::Sessions { .. } | Sub::Completions { .. })
    ) {
        for sink in &cli.metrics {
            if let Err(e) = crate::report::metrics::check_sink(sink) {
                eprintln!("prun: error: {e}");
                return exit::USAGE;
            }
        }
    }
    match cli.sub.clone() {
        Some(Sub::Bench(args)) => return bench(cli, args),
        Some(Sub::Completions { shell }) => {
            let _ = io::stdout().write_all(&crate::cli::completion_script(shell));
            return exit::OK;
        }
        // push / pull run the normal pipeline; the plan turns them into the hosts' work
        Some(Sub::Shell) => return crate::shell::run(cli),
        Some(Sub::Sessions { stop }) => return crate::holder::sessions(stop),
        Some(Sub::Push(_)) | Some(Sub::Pull(_)) | None => {}
    }
    let Some(plan) = plan_or_say(&cli) else {
        return exit::USAGE;
    };
    let report = match &cli.report {
        None => None,
        Some(path) => {
            let format = match cli.report_format {
                Some(ReportFormat::Json) => Some(timing::Format::Json),
                Some(ReportFormat::Csv) => Some(timing::Format::Csv),
                None => timing::Format::from_path(path),
            };
            match format {
                Some(f) => Some((path.clone(), f)),
                None => {
                    eprintln!(
                        "prun: error: --report {}: name a .json or .csv file, or give \
                         --report-format json|csv",
                        path.display()
                    );
                    return exit::USAGE;
                }
            }
        }
    };
    if cli.list_hosts {
        return list_hosts(&plan);
    }
    if cli.dry_run {
        return dry_run(&plan);
    }

    let mut parallel = plan.parallel;
    if let Some(limit) = raise_nofile_limit() {
        // every descriptor a running host needs in this run: its connection (a socket, or
        // a socket pair through a jump host) plus a transient one (agent, DNS), the two
        // --out-dir files, and the two spill files of block mode (gather shares one)
        let per_host = 2
            + if cli.out_dir.is_some() { 2 } else { 0 }
            + if cli.output == OutputMode::Block && !cli.quiet {
                2
            } else {
                0
            }
            // a local command: three pipes, a pidfd and a poller
            + if cli.local { 4 } else { 0 };
        let cap = (limit.saturating_sub(RESERVED_FDS) / per_host).max(1);
        let fit = plan.targets.len().min(parallel);
        if fit > cap {
            eprintln!(
                "prun: warning: --parallel {parallel} does not fit the open-file limit \
                 ({limit}, {per_host} per running host with these options); using {cap}"
            );
            parallel = cap;
        }
    }

    let color = color_of(&cli);
    let progress_target = progress_target(&cli);

    let Some(cancel) = cancel_on_ctrlc() else {
        return exit::INTERNAL;
    };
    let state = RunState::new(parallel);
    let Ok(mut out_dir) = open_out_dir(&cli) else {
        return exit::USAGE;
    };
    let (answer_tx, answer_rx) = crossbeam_channel::unbounded::<bool>();
    let job = Job {
        targets: &plan.targets,
        command: &plan.command,
        work: &plan.work,
        parallel,
        engine: cli.engine(),
        shared: state.shared(&plan.settings, &plan.default_keys, &cancel),
        rollout: &plan.rollout,
        answers: Some(&answer_rx),
    };
    // --persist: the holder runs it over held logins, when it can
    let held = persist_of(&cli).and_then(|idle| {
        match plan.work {
            crate::ssh::Work::Command(_) => {}
            crate::ssh::Work::Local(_) => return None,
            _ => {
                eprintln!(
                    "prun: warning: --persist holds logins for commands, not push or pull; \
                     running this one directly"
                );
                return None;
            }
        }
        if cli.inventory.iter().any(|i| i.as_os_str() == "-") {
            eprintln!(
                "prun: warning: --persist: the inventory came from stdin (-i -), which the \
                 holder cannot read again; running this one directly"
            );
            return None;
        }
        if plan.rollout.ask != crate::rollout::Ask::Never {
            eprintln!(
                "prun: warning: --persist: the question between batches is asked here, not by \
                 the holder; running this one directly"
            );
            return None;
        }
        crate::holder::submit(idle, &plan.settings)
            .inspect_err(|why| {
                eprintln!("prun: warning: --persist: {why}; running this one directly")
            })
            .ok()
    });
    let (summary, output_lost) = drive(
        |tx| match held {
            Some((r, first)) => crate::holder::relay(r, first, tx, &cancel),
            None => runner::run(&job, tx),
        },
        cli.output,
        cli.quiet,
        color,
        progress_target,
        &mut out_dir,
        Some(Asker {
            answers: &answer_tx,
            cancel: &cancel,
        }),
    );
    if !cli.quiet {
        let mut text = String::new();
        match &summary.stopped {
            Some(Stop::Interrupted) => {
                text.push_str("prun: interrupted (Ctrl-C/SIGTERM/SIGHUP); partial summary:\n")
            }
            Some(stop) => text.push_str(&format!("prun: {}\n", stop.describe())),
            None => {}
        }
        text.push_str(&summary.render());
        let _ = io::stderr().write_all(text.as_bytes());
    }
    if let Some(pages) = crate::ssh::fiber::pages_touched() {
        eprintln!("prun: fiber stack pages: {}", fiber_pages_text(&pages));
    }
    if let Some(path) = &cli.failed_hosts {
        let names: String = summary
            .not_ok_names()
            .into_iter()
            .map(|n| format!("{n}\n"))
            .collect();
        if let Err(e) = std::fs::write(path, names) {
            eprintln!(
                "prun: error: cannot write --failed-hosts {}: {e}",
                path.display()
            );
            return exit::INTERNAL;
        }
    }
    if !cli.metrics.is_empty() {
        for sink in &cli.metrics {
            if let Err(e) =
                crate::report::metrics::send_summary(sink, &summary, &cli.metrics_prefix)
            {
                eprintln!(
                    "prun: warning: --metrics: {e}; the metrics of this run were not sent there"
                );
            }
        }
    }
    if let Some((path, format)) = &report
        && let Err(e) = timing::write_file(&summary, path, *format)
    {
        eprintln!("prun: error: cannot write report {}: {e}", path.display());
        return exit::INTERNAL;
    }
    if cancel.is_interrupted() {
        return exit::INTERRUPTED;
    }
    if output_lost {
        return exit::INTERNAL;
    }
    exit::for_statuses(summary.statuses())
}

/// `PRUN_FIBER_PAGES`'s line: how many fibers touched how many stack pages, e.g.
/// `1 page: 998 fibers, 2 pages: 2 fibers` (the last count of the list is "or more").
fn fiber_pages_text(pages: &[usize]) -> String {
    let last = pages.len().saturating_sub(1);
    let parts: Vec<String> = pages
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(p, n)| {
            format!(
                "{p}{} page{}: {n} fiber{}",
                if p == last { " or more" } else { "" },
                if p == 1 { "" } else { "s" },
                if *n == 1 { "" } else { "s" }
            )
        })
        .collect();
    if parts.is_empty() {
        "no fibers in this process (the threads engine, or a --persist holder's run)".into()
    } else {
        parts.join(", ")
    }
}

/// Run `source` on its own thread (the runner, or later anything that produces a run's
/// events, such as a process holding logins) and consume its events here: the `--output`
/// printer (none with `quiet`), `--out-dir`, the progress bar and the summary. Returns the
/// summary and whether remote output was lost (said on stderr).
pub(crate) fn drive(
    source: impl FnOnce(&crossbeam_channel::Sender<Event>) + Send,
    output: OutputMode,
    quiet: bool,
    color: bool,
    progress_target: Option<ProgressTarget>,
    out_dir: &mut Option<OutDir>,
    asker: Option<Asker<'_>>,
) -> (Summary, bool) {
    // Bounded: when the printer is slower than the hosts (a slow terminal or disk), sessions
    // wait instead of piling up output in memory. Output events carry up to 32 KiB each, so
    // the bound is also a memory bound (~2 MiB).
    let (tx, rx) = crossbeam_channel::bounded::<Event>(EVENT_QUEUE);
    let mut summary = Summary::default();
    let mut output_lost = false;
    let consumed = std::thread::scope(|s| {
        s.spawn(move || source(&tx));

        // Buffered, flushed after each batch; never hold the stdio locks across batches
        // (the progress bar's ticker thread writes to stderr too).
        let stdout = io::BufWriter::with_capacity(64 * 1024, io::stdout());
        let stderr = io::BufWriter::with_capacity(16 * 1024, io::stderr());
        // Remote text cannot drive a terminal: escape control sequences there only.
        let sanitize = (io::stdout().is_terminal(), io::stderr().is_terminal());
        let mut printer: Box<dyn Printer> = match output {
            OutputMode::Stream => Box::new(StreamPrinter::new(stdout, stderr, color, sanitize)),
            OutputMode::Block => Box::new(BlockPrinter::new(
                BlockMode::Block,
                stdout,
                stderr,
                color,
                sanitize,
            )),
            OutputMode::Gather => Box::new(BlockPrinter::new(
                BlockMode::Gather,
                stdout,
                stderr,
                color,
                sanitize,
            )),
            OutputMode::Json => Box::new(JsonPrinter::new(stdout)),
        };
        let mut progress = Progress::new(progress_target);
        let mut result = Ok(());
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            batch.extend(rx.try_iter().take(EVENT_QUEUE - 1));
            let finished = batch.iter().any(|e| matches!(e, Event::RunFinished { .. }));
            let r = progress.suspend(|| -> io::Result<()> {
                for ev in &batch {
                    match ev {
                        Event::Warning { message } => eprintln!("prun: warning: {message}"),
                        Event::BatchStarted {
                            batch,
                            batches,
                            hosts,
                        } if !quiet => eprintln!(
                            "prun: batch {batch} of {batches}: {hosts} host{}",
                            if *hosts == 1 { "" } else { "s" }
                        ),
                        _ => {}
                    }
                    if !quiet {
                        printer.handle(ev)?;
                    }
                    if let Some(d) = out_dir
                        && let Err(e) = d.handle(ev)
                    {
                        eprintln!(
                            "prun: error: --out-dir: {e}; output from here on is NOT written \
                             there (the run goes on; exit status 1)"
                        );
                        *out_dir = None;
                        output_lost = true;
                    }
                }
                printer.flush()
            });
            if let Err(e) = r
                && result.is_ok()
            {
                result = Err(e);
            }
            for ev in &batch {
                progress.handle(ev);
                summary.handle(ev);
            }
            // questions last: the printers have shown the batch's hosts by now
            for ev in &batch {
                if let Event::Question {
                    next,
                    done,
                    failed,
                    remaining,
                } = ev
                {
                    let text = question_text(&summary, *next, *done, failed, *remaining);
                    let yes = progress.suspend(|| match &asker {
                        Some(a) => crate::output::ask::ask(&text, a.cancel).unwrap_or_else(|e| {
                            eprintln!("prun: error: cannot ask on the terminal: {e}");
                            false
                        }),
                        None => false,
                    });
                    if let Some(a) = &asker {
                        let _ = a.answers.send(yes);
                    }
                }
            }
            // A small batch: let events gather for a moment instead of waking for each one
            // (every wake-up is a futex wake on the session thread and a context switch here,
            // a few per host); output is at most 2 ms later.
            if batch.len() < 32 && !finished {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
        progress.finish();
        result
    });
    if let Err(e) = consumed {
        output_lost = true;
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!(
                "prun: error: writing output: {e}; remote output after that was NOT written \
                 (exit status 1)"
            );
        }
    }
    (summary, output_lost)
}

/// Where the questions between batches are answered: the runner's answer channel, and the
/// run's cancel (which ends a wait for an answer).
pub(crate) struct Asker<'a> {
    pub answers: &'a crossbeam_channel::Sender<bool>,
    pub cancel: &'a Cancel,
}

/// The question before batch `next`: how the hosts so far did, and what is left.
fn question_text(
    summary: &Summary,
    next: u32,
    done: usize,
    failed: &[usize],
    remaining: usize,
) -> String {
    let batches = summary
        .hosts
        .iter()
        .filter_map(|h| h.batch)
        .max()
        .unwrap_or(next);
    let mut t = format!(
        "prun: {done} host{} done, {} ok",
        if done == 1 { "" } else { "s" },
        done - failed.len()
    );
    if !failed.is_empty() {
        let names: Vec<&str> = failed
            .iter()
            .take(10)
            .map(|&i| summary.hosts[i].name.as_str())
            .collect();
        t.push_str(&format!(
            ", {} failed: {}{}",
            failed.len(),
            names.join(", "),
            if failed.len() > 10 { ", …" } else { "" }
        ));
    }
    t.push_str(&format!(
        "\nprun: start batch {next} of {batches} ({remaining} host{} left)? [y/N] ",
        if remaining == 1 { "" } else { "s" }
    ));
    t
}

/// Build the plan and print its warnings; on a usage error, print it and return `None`.
pub(crate) fn plan_or_say(cli: &Cli) -> Option<plan::Plan> {
    if cli.engine.len() > 1 && !matches!(cli.sub, Some(Sub::Bench(_))) {
        eprintln!(
            "prun: error: --engine takes one engine (threads or events); a list is for prun bench"
        );
        return None;
    }
    let mut p = match plan::build(cli) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("prun: error: {e}");
            return None;
        }
    };
    for w in &p.warnings {
        eprintln!("prun: warning: {w}");
    }
    if !cli.list_hosts
        && let Err(e) = gather_inputs(cli, &mut p)
    {
        eprintln!("prun: error: {e}");
        return None;
    }
    Some(p)
}

/// What the plan needs from the user and the machine before the run, read once the plan
/// stands: the `--ask-pass` password (one terminal prompt, before any host is contacted; it
/// serves logins and, with --sudo, sudo's prompt), `--stdin`, and a pull's local directory.
fn gather_inputs(cli: &Cli, plan: &mut plan::Plan) -> Result<(), String> {
    if plan.rollout.ask != crate::rollout::Ask::Never
        && !cli.dry_run
        && let Err(e) = crate::output::ask::terminal()
    {
        let what = if plan.rollout.canary > 0 {
            "--canary asks on the terminal before the other hosts"
        } else {
            "--pause ask asks on the terminal before each batch"
        };
        return Err(format!(
            "{what}, and prun has no terminal (/dev/tty: {e}); give --yes to go on without \
             asking (after a canary only when every canary host succeeded)"
        ));
    }
    if cli.ask_pass {
        let p = rpassword::prompt_password("prun: password: ").map_err(|e| {
            format!(
                "--ask-pass: cannot read a password from the terminal: {e} \
                 (without a terminal, set PRUN_PASSWORD / PRUN_SUDO_PASSWORD)"
            )
        })?;
        let asked = crate::secret::Secret::new(p);
        if plan.uses_sudo() {
            plan.settings.sudo_password = Some(asked.clone());
        }
        plan.settings.password = Some(asked);
    }
    if cli.stdin {
        let data = crate::target::StdinData::read_from(&mut io::stdin().lock())
            .map_err(|e| format!("--stdin: cannot read standard input: {e}"))?;
        plan.settings.stdin = Some(Arc::new(data));
    }
    if let Some(Sub::Pull(a)) = &cli.sub {
        std::fs::create_dir_all(&a.local_dir)
            .map_err(|e| format!("pull: cannot create {}: {e}", a.local_dir.display()))?;
    }
    Ok(())
}

/// `--persist DUR`, else `PRUN_PERSIST` (an unusable value there is warned about).
fn persist_of(cli: &Cli) -> Option<std::time::Duration> {
    if cli.persist.is_some() {
        return cli.persist;
    }
    let v = std::env::var("PRUN_PERSIST")
        .ok()
        .filter(|v| !v.is_empty())?;
    crate::cli::parse_duration(&v)
        .inspect_err(|e| eprintln!("prun: warning: PRUN_PERSIST: {e}; not persisting"))
        .ok()
}

/// The `--out-dir` writer, if asked for; `Err` after saying why it cannot be created.
pub(crate) fn open_out_dir(cli: &Cli) -> Result<Option<OutDir>, ()> {
    match &cli.out_dir {
        None => Ok(None),
        Some(d) => OutDir::new(d).map(Some).map_err(|e| {
            eprintln!("prun: error: cannot create --out-dir {}: {e}", d.display());
        }),
    }
}

/// Whether to colour host names (`--color`, `NO_COLOR`).
pub(crate) fn color_of(cli: &Cli) -> bool {
    match cli.color {
        When::Always => true,
        When::Never => false,
        When::Auto => io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// Where the progress bar draws (`--progress`, `-q`), if anywhere.
pub(crate) fn progress_target(cli: &Cli) -> Option<ProgressTarget> {
    match cli.progress {
        _ if cli.quiet => None,
        When::Always => Some(ProgressTarget::Forced),
        When::Never => None,
        When::Auto => io::stderr()
            .is_terminal()
            .then_some(ProgressTarget::Terminal),
    }
}

/// The run's cancel, wired to Ctrl-C; `None` (after saying why) when it cannot be set up.
fn cancel_on_ctrlc() -> Option<Arc<Cancel>> {
    match Cancel::new() {
        Ok(c) => {
            let c = Arc::new(c);
            install_ctrlc(&c);
            Some(c)
        }
        Err(e) => {
            eprintln!("prun: error: cannot set up cancellation: {e}");
            None
        }
    }
}

/// First Ctrl-C: cancel the run (no new hosts, running ones stop, partial summary, exit 130).
/// Second Ctrl-C: exit at once with 130.
fn install_ctrlc(cancel: &Arc<Cancel>) {
    let c = Arc::clone(cancel);
    let r = ctrlc::set_handler(move || {
        if c.is_interrupted() {
            std::process::exit(exit::INTERRUPTED as i32);
        }
        c.trigger(Reason::Interrupted);
    });
    if let Err(e) = r {
        eprintln!("prun: warning: cannot handle Ctrl-C ({e}); it will kill prun without a summary");
    }
}

/// `--dry-run`: each host, its batch and what it would do, in run order.
fn dry_run(plan: &plan::Plan) -> u8 {
    let mut out = io::BufWriter::new(io::stdout().lock());
    for (i, t) in plan.targets.iter().enumerate() {
        let batch = plan.batches.get(i).copied().unwrap_or(1);
        if writeln!(
            out,
            "{}",
            crate::perhost::dry_run_line(t, batch, &plan.work)
        )
        .is_err()
        {
            break;
        }
    }
    let _ = out.flush();
    exit::OK
}

pub(crate) fn list_hosts(plan: &plan::Plan) -> u8 {
    let mut out = io::stdout().lock();
    for t in &plan.targets {
        let jump = t.jump.as_ref().map_or_else(
            || "-".to_string(),
            |b| format!("{}@{}:{}", b.user, b.address, b.port),
        );
        let sources: Vec<String> = t.sources.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}",
            t.name,
            t.address,
            t.port,
            t.user,
            jump,
            sources.join(" ")
        )
        .is_err()
        {
            break;
        }
    }
    exit::OK
}

/// Descriptors kept for prun itself (stdio, the cancel pipe, event and DNS threads, key
/// files, known_hosts, the report, a shared spill file).
const RESERVED_FDS: usize = 32;

/// Raise the open-file soft limit to the hard limit; return the limit in force.
pub(crate) fn raise_nofile_limit() -> Option<usize> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    Some(usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX))
}

/// Sessions one bench level may run (each is planned up front).
const MAX_BENCH_SESSIONS: u64 = 100_000;

/// `prun bench`: run the command at each concurrency level and report per-operation times.
fn bench(mut cli: Cli, args: BenchArgs) -> u8 {
    cli.command = args.command.clone();
    let rollout_opts = [
        (cli.batch.is_some(), "--batch"),
        (cli.max_fail.is_some(), "--max-fail"),
        (cli.fail_fast, "--fail-fast"),
        (cli.canary.is_some(), "--canary"),
        (cli.pause.is_some(), "--pause"),
        (cli.stagger.is_some(), "--stagger"),
        (cli.dry_run, "--dry-run"),
    ];
    if let Some((_, name)) = rollout_opts.iter().find(|(set, _)| *set) {
        eprintln!(
            "prun: error: bench: {name} does not apply (every level starts its sessions at once)"
        );
        return exit::USAGE;
    }
    if let Some(&level) = args
        .levels
        .iter()
        .find(|&&l| l as u64 * args.rounds as u64 > MAX_BENCH_SESSIONS)
    {
        eprintln!(
            "prun: error: bench: level {level} × --rounds {} is more than {MAX_BENCH_SESSIONS} \
             sessions in one level; lower --rounds or the level",
            args.rounds
        );
        return exit::USAGE;
    }
    let Some(plan) = plan_or_say(&cli) else {
        return exit::USAGE;
    };
    let Some(cancel) = cancel_on_ctrlc() else {
        return exit::INTERNAL;
    };
    let fd_cap =
        raise_nofile_limit().map_or(usize::MAX, |l| (l.saturating_sub(RESERVED_FDS) / 2).max(1));
    let bar = if let Some(target) = progress_target(&cli) {
        let b = indicatif::ProgressBar::with_draw_target(
            Some(args.levels.len() as u64),
            target.draw_target(),
        );
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30.cyan/blue} level {pos}/{len}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.enable_steady_tick(std::time::Duration::from_millis(200));
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut levels = Vec::new();
    let mut statuses = Vec::new();
    let bench_run = crate::report::metrics::run_id(std::time::SystemTime::now());
    // each engine once, in the order given
    let mut engines: Vec<crate::runner::Engine> = Vec::new();
    for e in cli.engine.iter().map(|e| e.engine()) {
        if !engines.contains(&e) {
            engines.push(e);
        }
    }
    for (engine, &level) in engines
        .iter()
        .flat_map(|e| args.levels.iter().map(move |l| (*e, l)))
    {
        if cancel.is_cancelled() {
            break;
        }
        let parallel = (level as usize).min(fd_cap);
        let n = (level as usize * args.rounds as usize).max(10);
        bar.set_message(format!(
            "{n} sessions at concurrency {level} ({} engine)",
            engine.name()
        ));
        let targets: Vec<_> = (0..n)
            .map(|i| plan.targets[i % plan.targets.len()].clone())
            .collect();
        let state = RunState::new(parallel);
        let job = Job {
            targets: &targets,
            command: &plan.command,
            work: &plan.work,
            parallel,
            engine,
            shared: state.shared(&plan.settings, &plan.default_keys, &cancel),
            rollout: &crate::rollout::Rollout::default(),
            answers: None,
        };
        let (tx, rx) = crossbeam_channel::bounded::<Event>(EVENT_QUEUE);
        let start = std::time::Instant::now();
        let results = std::thread::scope(|s| {
            let job = &job;
            s.spawn(move || runner::run(job, &tx));
            let mut results = Vec::with_capacity(n);
            for ev in rx.iter() {
                if let Event::HostFinished { result, .. } = ev {
                    results.push(*result);
                }
            }
            results
        });
        let wall = start.elapsed();
        statuses.extend(results.iter().map(|r| r.status));
        let failed: Vec<_> = results
            .iter()
            .filter_map(|r| r.failure.as_ref())
            .take(1)
            .collect();
        if let Some(f) = failed.first() {
            bar.suspend(|| {
                eprintln!(
                    "prun: warning: level {level}: {} of {n} sessions failed (first: {f})",
                    results.iter().filter(|r| r.status != Status::Ok).count(),
                )
            });
        }
        let l = crate::report::bench::Level::from_results(engine.name(), level, &results, wall);
        // each level's points, as soon as it is measured
        if !cli.metrics.is_empty() {
            let (lp, gr) = crate::report::metrics::bench_lines(
                &l,
                &bench_run.0,
                bench_run.1,
                &cli.metrics_prefix,
            );
            for sink in &cli.metrics {
                if let Err(e) = crate::report::metrics::deliver(sink, &lp, &gr) {
                    bar.suspend(|| {
                        eprintln!(
                            "prun: warning: --metrics: {e}; level {level}'s metrics were not sent \
                             there"
                        )
                    });
                }
            }
        }
        levels.push(l);
        bar.inc(1);
    }
    bar.finish_and_clear();
    use crate::report::bench as b;
    let table = b::table(&levels);
    let mut out = io::stdout().lock();
    let _ = out.write_all(table.as_bytes());
    let _ = out.flush();
    let mut failed_write = false;
    match std::fs::File::create(&args.csv).and_then(|mut f| b::write_csv(&levels, &mut f)) {
        Ok(()) => eprintln!("prun: wrote {}", args.csv.display()),
        Err(e) => {
            eprintln!("prun: error: cannot write {}: {e}", args.csv.display());
            failed_write = true;
        }
    }
    let title = format!(
        "prun bench: median time per operation ({} host{}, `{}`)",
        plan.targets.len(),
        if plan.targets.len() == 1 { "" } else { "s" },
        plan.command
    );
    // one chart per engine: FILE itself for one, FILE-ENGINE.svg for each of several
    for engine in &engines {
        let mine: Vec<_> = levels
            .iter()
            .filter(|l| l.engine == engine.name())
            .cloned()
            .collect();
        let path = if engines.len() == 1 {
            args.svg.clone()
        } else {
            let stem = args.svg.file_stem().unwrap_or_default().to_string_lossy();
            args.svg
                .with_file_name(format!("{stem}-{}.svg", engine.name()))
        };
        let title = format!("{title} · {} engine", engine.name());
        match b::write_svg(&mine, &title, &path) {
            Ok(()) => eprintln!("prun: wrote {}", path.display()),
            Err(e) => {
                eprintln!("prun: error: {e}");
                failed_write = true;
            }
        }
    }
    if failed_write {
        return exit::INTERNAL;
    }
    if cancel.is_interrupted() {
        return exit::INTERRUPTED;
    }
    exit::for_statuses(statuses)
}

#[cfg(test)]
mod tests {
    use super::fiber_pages_text;

    #[test]
    fn fiber_pages_text_names_each_count_and_the_open_end() {
        let mut pages = vec![0; 17];
        pages[1] = 998;
        pages[2] = 1;
        pages[16] = 1;
        assert_eq!(
            fiber_pages_text(&pages),
            "1 page: 998 fibers, 2 pages: 1 fiber, 16 or more pages: 1 fiber"
        );
        assert!(fiber_pages_text(&[0; 17]).starts_with("no fibers in this process"));
    }
}
