//! The runner: a dedicated rayon pool sized by `--parallel`, each worker taking hosts in order, every step
//! reported as an [`Event`] on a crossbeam channel. Once the run is cancelled, hosts not yet
//! started are reported as cancelled without connecting. Knows ssh and events; never prints.

use crate::cancel::Reason;
use crate::event::{
    Event, Failure, FailureKind, HostInfo, HostResult, Phase, Status, Stop, Stream,
};
use crate::ssh::{self, Shared, Target, Work};
use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// What to run where.
pub struct Job<'a> {
    pub targets: &'a [Target],
    /// What the run does, for the run header (the command, or a push/pull description).
    pub command: &'a str,
    pub work: &'a Work,
    pub parallel: usize,
    /// How hosts share threads.
    pub engine: Engine,
    pub shared: Shared<'a>,
    /// `--fail-fast`: cancel the run at the first host that does not succeed.
    pub fail_fast: bool,
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

/// Run the job to completion, sending events to `tx`. Returns when every host is done.
pub fn run(job: &Job<'_>, tx: &Sender<Event>) {
    let start = Instant::now();
    let hosts = job
        .targets
        .iter()
        .map(|t| HostInfo {
            name: t.name.clone(),
            address: t.address.clone(),
            port: t.port,
            user: t.user.clone(),
        })
        .collect();
    let threads = job.parallel.clamp(1, job.targets.len().max(1));
    let _ = tx.send(Event::RunStarted {
        hosts,
        command: job.command.to_string(),
        parallel: threads,
        started: std::time::SystemTime::now(),
        bytes_total: match job.work {
            // a push knows its size: every item to every host
            Work::Push(spec) => {
                Some(spec.items.iter().map(|i| i.size).sum::<u64>() * job.targets.len() as u64)
            }
            _ => None,
        },
    });
    // the event engine: one thread per core, each with its share of the sessions
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = match job.engine {
        Engine::Threads => threads,
        Engine::Events => cores.min(threads).max(1),
    };
    // sessions per event-engine worker: `threads` in all, spread evenly
    let width = |k: usize| threads / workers + usize::from(k < threads % workers);
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("prun-{i}"))
        .stack_size(512 * 1024)
        .build()
    {
        Ok(p) => p,
        Err(e) => {
            let _ = tx.send(Event::Warning {
                message: format!("cannot start {threads} threads ({e}); running one at a time"),
            });
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .expect("a one-thread pool")
        }
    };
    // One long-lived job per thread, each taking the next host in order from a shared
    // counter: hosts start in inventory order, and no per-host job is queued and stolen
    // through rayon's deques (whose epoch bookkeeping showed in profiles at 1000 hosts).
    let next = AtomicUsize::new(0);
    pool.scope(|s| {
        for k in 0..workers {
            let width = width(k);
            let tx = tx.clone();
            let next = &next;
            let shared = &job.shared;
            let work = job.work;
            s.spawn(move |_| match job.engine {
                Engine::Threads => loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(target) = job.targets.get(i) else {
                        break;
                    };
                    run_host(i, target, work, shared, job.fail_fast, &tx);
                },
                Engine::Events => {
                    let tx = &tx;
                    crate::ssh::fiber::run(width, || {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let target = job.targets.get(i)?;
                        Some(Box::new(move || {
                            run_host(i, target, work, shared, job.fail_fast, tx)
                        }))
                    });
                }
            });
        }
    });
    let cancel = job.shared.cancel;
    let stopped = cancel.is_cancelled().then(|| match cancel.reason() {
        Some(Reason::FailFast) => Stop::FailFast,
        _ => Stop::Interrupted,
    });
    let _ = tx.send(Event::RunFinished {
        elapsed: start.elapsed(),
        stopped,
    });
}

/// One host, start to finish, as events.
fn run_host(
    i: usize,
    target: &Target,
    work: &Work,
    shared: &Shared<'_>,
    fail_fast: bool,
    tx: &Sender<Event>,
) {
    if shared.cancel.is_cancelled() {
        let mut result = HostResult::new(Status::Cancelled);
        result.failure = Some(Failure {
            phase: Phase::Connect,
            kind: FailureKind::Cancelled,
            message: "not started: run cancelled".into(),
        });
        let _ = tx.send(Event::HostFinished {
            host: i,
            result: Box::new(result),
        });
        return;
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
    let result = ssh::host::run(target, work, shared, &mut emit, &mut bytes);
    // decided here, as the host ends, not by whoever reads the events
    if fail_fast && result.status != Status::Ok && !shared.cancel.is_cancelled() {
        shared.cancel.trigger(Reason::FailFast);
    }
    let _ = tx.send(Event::HostFinished {
        host: i,
        result: Box::new(result),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::Cancel;
    use crate::ssh::{KnownHosts, Policy, RunState, Settings};
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
            .map(|i| Target {
                name: format!("h{i}"),
                address: "127.0.0.1".into(),
                port,
                user: "u".into(),
                identities: vec![],
                identities_only: true,
                connect_timeout: Duration::from_secs(2),
                host_key_policy: Policy::Strict,
                known_hosts: kh.clone(),
                host_key_name: format!("[127.0.0.1]:{port}"),
                jump: None,
                sources: vec![],
            })
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

    fn events(n: usize, fail_fast: bool) -> Vec<Event> {
        let targets = refused_targets(n);
        let settings = settings();
        let cancel = Cancel::new().unwrap();
        let state = RunState::new(1);
        let work = Work::Command("true".into());
        let job = Job {
            targets: &targets,
            command: "true",
            work: &work,
            parallel: 1,
            engine: Engine::Threads,
            shared: state.shared(&settings, &[], &cancel),
            fail_fast,
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
                Event::RunFinished { stopped, .. } => format!("end {stopped:?}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn hosts_run_in_order_one_at_a_time_at_parallel_one() {
        assert_eq!(
            shape(&events(3, false)),
            [
                "start 3", "+0", "-0 error", "+1", "-1 error", "+2", "-2 error", "end None"
            ]
        );
    }

    #[test]
    fn fail_fast_stops_the_run_at_the_first_failure() {
        assert_eq!(
            shape(&events(3, true)),
            [
                "start 3",
                "+0",
                "-0 error",
                "-1 cancelled",
                "-2 cancelled",
                "end Some(FailFast)"
            ]
        );
    }
}
