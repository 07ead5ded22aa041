//! The runner: a dedicated rayon pool of lanes (threads, or fibers on one event loop per
//! core), each taking the next host the rollout's schedule ([`crate::rollout::Sched`])
//! allows — in run order, batch by batch, until the failure threshold — and running it over
//! ssh (or locally, `--local`), every step reported as an [`Event`] on a crossbeam channel.
//! Hosts that never start are reported as cancelled (Ctrl-C) or skipped (the rollout
//! stopped) without connecting. Knows ssh and events; never prints.

use crate::event::{
    Event, Failure, FailureKind, HostInfo, HostResult, Phase, Status, Stop, Stream,
};
use crate::rollout::{Halt, Rollout, Sched, Take};
use crate::ssh::{self, Shared, Target, Work};
use crossbeam_channel::{Receiver, Sender};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What to run where.
pub struct Job<'a> {
    /// The hosts, in run order.
    pub targets: &'a [Target],
    /// What the run does, for the run header (the command, or a push/pull description).
    pub command: &'a str,
    /// What every host does, unless its target has its own ([`Target::work_or`]).
    pub work: &'a Work,
    pub parallel: usize,
    /// How hosts share threads.
    pub engine: Engine,
    pub shared: Shared<'a>,
    /// Batches, the failure threshold, waits and questions.
    pub rollout: &'a Rollout,
    /// Answers to [`Event::Question`]s (true: go on). Without it a question is answered
    /// yes when no host has failed, else no.
    pub answers: Option<&'a Receiver<bool>>,
}

/// How the hosts of a run share threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// One thread per running host (`--parallel` threads).
    Threads,
    /// A few threads (one per core), each running many hosts as fibers on an event loop
    /// ([`crate::ssh::fiber`]); `--parallel` counts sessions.
    Events,
}

impl Engine {
    /// The name `--engine` takes.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Threads => "threads",
            Engine::Events => "events",
        }
    }
}

/// How often a lane with nothing to start looks again (a batch is finishing, a question is
/// open); a known start time (`--pause`, `--stagger`) is waited for exactly.
const IDLE_LOOK: Duration = Duration::from_millis(20);

/// Run the job to completion, sending events to `tx`. Returns when every host is done.
pub fn run(job: &Job<'_>, tx: &Sender<Event>) {
    let start = Instant::now();
    let total = job.targets.len();
    let batches = job
        .rollout
        .batched()
        .then(|| crate::rollout::batch_numbers(&job.rollout.ends));
    let hosts = job
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| HostInfo {
            name: t.name.clone(),
            address: t.address.clone(),
            port: t.port,
            user: t.user.clone(),
            batch: batches.as_ref().map(|b| b[i]),
            group: t.group.clone(),
        })
        .collect();
    // lanes: hosts running at once, never more than a batch holds
    let lanes = job
        .parallel
        .min(job.rollout.widest(total))
        .clamp(1, total.max(1));
    crate::ssh::memory::expect_at_once(lanes);
    let _ = tx.send(Event::RunStarted {
        hosts,
        command: job.command.to_string(),
        parallel: lanes,
        started: std::time::SystemTime::now(),
        // a push knows its size: every item to every host
        bytes_total: job
            .targets
            .iter()
            .try_fold(0u64, |sum, t| match t.work_or(job.work) {
                Work::Push(spec) => Some(sum + spec.items.iter().map(|i| i.size).sum::<u64>()),
                _ => None,
            }),
    });
    // the event engine: one thread per core, each with its share of the lanes
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = match job.engine {
        Engine::Threads => lanes,
        Engine::Events => cores.min(lanes).max(1),
    };
    // lanes per event-engine worker: `lanes` in all, spread evenly
    let width = |k: usize| lanes / workers + usize::from(k < lanes % workers);
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("prun-{i}"))
        .stack_size(512 * 1024)
        .build()
    {
        Ok(p) => p,
        Err(e) => {
            let _ = tx.send(Event::Warning {
                message: format!("cannot start {workers} threads ({e}); running one at a time"),
            });
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .expect("a one-thread pool")
        }
    };
    // One long-lived lane per thread (or fiber), each taking the next host from the
    // schedule: hosts start in run order, batch by batch, and no per-host job is queued and
    // stolen through rayon's deques (whose epoch bookkeeping showed in profiles at 1000
    // hosts).
    let sched = Mutex::new(Sched::new(total, job.rollout));
    pool.scope(|s| {
        for k in 0..workers {
            let width = width(k);
            let tx = tx.clone();
            let sched = &sched;
            s.spawn(move |_| match job.engine {
                Engine::Threads => lane(job, sched, &tx),
                Engine::Events => {
                    let tx = &tx;
                    let mut left = width;
                    crate::ssh::fiber::run(width, || {
                        left = left.checked_sub(1)?;
                        Some(Box::new(move || lane(job, sched, tx)))
                    });
                }
            });
        }
    });
    let sched = sched.into_inner().unwrap_or_else(PoisonError::into_inner);
    let cancel = job.shared.cancel;
    let halt = sched.halt().cloned();
    // hosts that never started: cancelled (Ctrl-C) or skipped (the rollout stopped)
    for i in sched.not_started() {
        let (status, why) = if cancel.is_cancelled() {
            (
                Status::Cancelled,
                format!("not started: {}", crate::ssh::fail::cancel_reason(cancel)),
            )
        } else {
            (
                Status::Skipped,
                format!("not started: {}", halt_reason(halt.as_ref(), job.rollout)),
            )
        };
        let mut result = HostResult::new(status);
        result.failure = Some(Failure {
            phase: Phase::Connect,
            kind: if status == Status::Skipped {
                FailureKind::Skipped
            } else {
                FailureKind::Cancelled
            },
            message: why,
        });
        let _ = tx.send(Event::HostFinished {
            host: i,
            result: Box::new(result),
        });
    }
    let stopped = if cancel.is_interrupted() {
        Some(Stop::Interrupted)
    } else {
        match halt {
            Some(Halt::Threshold { failed }) => Some(Stop::Threshold {
                failed,
                limit: job.rollout.max_fail_text.clone(),
            }),
            Some(Halt::Canary { failed }) => Some(Stop::Canary { failed }),
            Some(Halt::Declined) => Some(Stop::Declined),
            None if cancel.is_cancelled() => Some(Stop::Interrupted),
            None => None,
        }
    };
    let _ = tx.send(Event::RunFinished {
        elapsed: start.elapsed(),
        stopped,
    });
}

/// Why hosts were skipped, for their failure message.
fn halt_reason(halt: Option<&Halt>, rollout: &Rollout) -> String {
    match halt {
        Some(Halt::Threshold { failed }) => format!(
            "{failed} host(s) failed, more than {} allows",
            rollout.max_fail_text
        ),
        Some(Halt::Canary { failed }) => format!("{failed} canary host(s) failed"),
        Some(Halt::Declined) => "the answer was no".into(),
        None => "run stopped".into(),
    }
}

/// One lane: take the next host the schedule allows, run it, report back; wait when the
/// schedule says so; end when it has nothing more (or the run is cancelled).
fn lane(job: &Job<'_>, sched: &Mutex<Sched>, tx: &Sender<Event>) {
    let cancel = job.shared.cancel;
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let now = Instant::now();
        let (take, question) = {
            let mut s = crate::ssh::fiber::lock(sched);
            let question = s.question();
            if question.is_none() && s.waiting_for_answer() {
                let answer = match job.answers {
                    Some(rx) => rx.try_recv().ok(),
                    None => Some(s.failed() == 0),
                };
                if let Some(a) = answer {
                    s.answer(a, now);
                }
            }
            (s.take(now), question)
        };
        if let Some(q) = question {
            let _ = tx.send(Event::Question {
                next: q.next,
                done: q.done,
                failed: q.failed,
                remaining: q.remaining,
            });
        }
        match take {
            Take::Start { i, batch_start } => {
                if let Some(batch) = batch_start.filter(|_| job.rollout.batched()) {
                    let _ = tx.send(Event::BatchStarted {
                        batch,
                        batches: job.rollout.ends.len() as u32,
                        hosts: batch_len(&job.rollout.ends, batch),
                    });
                }
                let batch = batch_of(&job.rollout.ends, i);
                let status = run_host(i, batch, &job.targets[i], job.work, &job.shared, tx);
                crate::ssh::fiber::lock(sched).finished(i, status == Status::Ok, Instant::now());
            }
            Take::Wait(until) => {
                let d = until.map_or(IDLE_LOOK, |t| t.saturating_duration_since(now));
                crate::ssh::io::sleep_unless_cancelled(d.min(Duration::from_secs(1)), cancel);
            }
            Take::Done => return,
        }
    }
}

/// The batch (from 1) of host `i`.
fn batch_of(ends: &[usize], i: usize) -> u32 {
    ends.partition_point(|&e| e <= i) as u32 + 1
}

/// Hosts in batch `batch` (from 1).
fn batch_len(ends: &[usize], batch: u32) -> usize {
    let b = batch as usize - 1;
    let start = if b == 0 { 0 } else { ends[b - 1] };
    ends.get(b).map_or(0, |e| e - start)
}

/// One host, start to finish, as events; returns its status.
fn run_host(
    i: usize,
    batch: u32,
    target: &Target,
    work: &Work,
    shared: &Shared<'_>,
    tx: &Sender<Event>,
) -> Status {
    if shared.cancel.is_cancelled() {
        let mut result = HostResult::boxed(Status::Cancelled);
        result.failure = Some(Failure {
            phase: Phase::Connect,
            kind: FailureKind::Cancelled,
            message: "not started: run cancelled".into(),
        });
        let _ = tx.send(Event::HostFinished { host: i, result });
        return Status::Cancelled;
    }
    let _ = tx.send(Event::HostStarted { host: i });
    let mut emit = |stream: Stream, data: &[u8]| {
        let _ = tx.send(Event::Output {
            host: i,
            stream,
            data: data.to_vec(),
        });
    };
    let mut bytes = |n: u64| {
        let _ = tx.send(Event::Transferred { host: i, bytes: n });
    };
    let result = match target.work_or(work) {
        Work::Local(command) => {
            let env = local_env(i, batch, target);
            crate::local::run(
                target,
                command,
                &env,
                shared.settings,
                shared.cancel,
                &mut emit,
            )
        }
        work => ssh::host::run(target, work, shared, &mut emit, &mut bytes),
    };
    let status = result.status;
    let _ = tx.send(Event::HostFinished { host: i, result });
    status
}

/// `PRUN_HOST` & co. for a local command.
fn local_env(i: usize, batch: u32, target: &Target) -> Vec<(String, String)> {
    vec![
        ("PRUN_BATCH".into(), batch.to_string()),
        ("PRUN_HOST".into(), target.name.clone()),
        ("PRUN_ADDR".into(), target.address.clone()),
        ("PRUN_PORT".into(), target.port.to_string()),
        ("PRUN_USER".into(), target.user.clone()),
        ("PRUN_INDEX".into(), (i + 1).to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::Cancel;
    use crate::ssh::{KnownHosts, RunState, Settings};
    use std::sync::Arc;
    use std::time::Duration;

    /// Hosts on a loopback port nobody listens on: each fails at once with "refused".
    fn refused_targets(n: usize) -> Vec<Target> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let kh = Arc::new(KnownHosts::load(&[], std::env::temp_dir().join("prun-none")).unwrap());
        (0..n)
            .map(|i| Target::for_test(&format!("h{i}"), "127.0.0.1", port, kh.clone()))
            .collect()
    }

    fn settings() -> Settings {
        Settings {
            command_timeout: None,
            use_agent: false,
            retries: 0,
            keepalive: Duration::from_secs(15),
            env: vec![],
            pty: false,
            cwd: None,
            stdin: None,
            sudo_user: None,
            sudo_password: None,
            sudo_prompt: String::new(),
            locked_keys: vec![],
            password: None,
        }
    }

    fn events(n: usize, parallel: usize, rollout: Rollout) -> Vec<Event> {
        let targets = refused_targets(n);
        let settings = settings();
        let cancel = Cancel::new().unwrap();
        let state = RunState::new(parallel);
        let work = Work::Command("true".into());
        let job = Job {
            targets: &targets,
            command: "true",
            work: &work,
            parallel,
            engine: Engine::Threads,
            shared: state.shared(&settings, &[], &cancel),
            rollout: &rollout,
            answers: None,
        };
        let (tx, rx) = crossbeam_channel::unbounded();
        run(&job, &tx);
        drop(tx);
        rx.into_iter().collect()
    }

    fn shape(evs: &[Event]) -> Vec<String> {
        evs.iter()
            .map(|e| match e {
                Event::RunStarted { hosts, .. } => format!("start {}", hosts.len()),
                Event::HostStarted { host } => format!("+{host}"),
                Event::HostFinished { host, result } => format!("-{host} {}", result.status),
                Event::BatchStarted { batch, hosts, .. } => format!("batch {batch} ({hosts})"),
                Event::RunFinished { stopped, .. } => format!("end {stopped:?}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn hosts_run_in_order_one_at_a_time_at_parallel_one() {
        assert_eq!(
            shape(&events(3, 1, Rollout::default())),
            [
                "start 3", "+0", "-0 error", "+1", "-1 error", "+2", "-2 error", "end None"
            ]
        );
    }

    #[test]
    fn fail_fast_starts_no_host_after_the_first_failure() {
        let r = Rollout {
            max_fail: Some(0),
            max_fail_text: "--fail-fast".into(),
            ..Default::default()
        };
        let shape = shape(&events(3, 1, r));
        assert_eq!(
            &shape[..5],
            ["start 3", "+0", "-0 error", "-1 skipped", "-2 skipped"]
        );
        assert!(shape[5].contains("Threshold { failed: 1"), "{shape:?}");
    }

    #[test]
    fn batches_start_in_order_and_never_overlap() {
        let r = Rollout {
            ends: vec![1, 3, 5],
            ..Default::default()
        };
        let evs = events(5, 8, r);
        let shape = shape(&evs);
        let pos = |s: &str| shape.iter().position(|x| x == s).unwrap();
        assert!(pos("batch 1 (1)") < pos("+0"));
        assert!(pos("-0 error") < pos("batch 2 (2)"), "{shape:?}");
        assert!(pos("-1 error") < pos("batch 3 (2)") && pos("-2 error") < pos("batch 3 (2)"));
        match &evs[0] {
            Event::RunStarted {
                hosts, parallel, ..
            } => {
                assert_eq!(*parallel, 2, "no more lanes than the widest batch");
                let b: Vec<_> = hosts.iter().map(|h| h.batch.unwrap()).collect();
                assert_eq!(b, [1, 2, 2, 3, 3]);
            }
            e => panic!("{e:?}"),
        }
    }
}
