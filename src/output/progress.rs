//! The progress bar on stderr (indicatif): hosts done/total, running, failed, elapsed, and
//! for file transfers the bytes moved and the rate.
//! Hidden unless enabled (stderr is a terminal, or `--progress always`); it appears when
//! the run starts.

use crate::event::{Event, Status};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    /// Where to draw once the run starts (`None`: never draw).
    target: Option<Target>,
    running: usize,
    failed: usize,
    /// Bytes moved by file transfers so far.
    bytes: u64,
    /// A push's total bytes (all hosts): the bar then counts bytes instead of hosts.
    bytes_total: Option<u64>,
    hosts_done: u64,
    hosts: u64,
}

/// Where the bar is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// stderr, only while it is a terminal.
    Terminal,
    /// stderr, even when it is not a terminal (`--progress always`).
    Forced,
}

impl Target {
    /// Where indicatif should draw for this target.
    pub fn draw_target(self) -> ProgressDrawTarget {
        match self {
            Target::Terminal => ProgressDrawTarget::stderr(),
            Target::Forced => ProgressDrawTarget::term_like(Box::new(console::Term::stderr())),
        }
    }
}

impl Progress {
    /// A bar that draws to `target` from the run's start; `None` draws nothing.
    pub fn new(target: Option<Target>) -> Self {
        let bar = ProgressBar::hidden();
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} hosts  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        Progress {
            bar,
            target,
            running: 0,
            failed: 0,
            bytes: 0,
            bytes_total: None,
            hosts_done: 0,
            hosts: 0,
        }
    }

    /// Count bytes: a push of `total` bytes over all hosts.
    fn expect_bytes(&mut self, total: u64) {
        self.bytes_total = Some(total.max(1));
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30.cyan/blue} {bytes}/{total_bytes} ({bytes_per_sec})  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        self.bar.set_style(style);
    }

    pub fn handle(&mut self, ev: &Event) {
        match ev {
            Event::RunStarted {
                hosts, bytes_total, ..
            } => {
                if let Some(total) = bytes_total {
                    self.expect_bytes(*total);
                }
                self.hosts = hosts.len() as u64;
                self.bar
                    .set_length(self.bytes_total.unwrap_or(hosts.len() as u64));
                let Some(target) = self.target else { return };
                self.bar.set_draw_target(target.draw_target());
                self.bar
                    .enable_steady_tick(std::time::Duration::from_millis(200));
            }
            Event::HostStarted { .. } => self.running += 1,
            Event::HostFinished { result, .. } => {
                self.running = self.running.saturating_sub(1);
                if result.status != Status::Ok {
                    self.failed += 1;
                }
                self.hosts_done += 1;
                if self.bytes_total.is_none() {
                    self.bar.inc(1);
                }
            }
            Event::Transferred { bytes, .. } => {
                self.bytes += bytes;
                if self.bytes_total.is_some() {
                    self.bar.inc(*bytes);
                    return; // the bar itself shows bytes and rate
                }
            }
            _ => return,
        }
        if self.bytes_total.is_some() {
            self.bar.set_message(format!(
                "{}/{} hosts, {} running, {} failed",
                self.hosts_done, self.hosts, self.running, self.failed
            ));
            return;
        }
        let moved = if self.bytes > 0 {
            let secs = self.bar.elapsed().as_secs_f64().max(0.001);
            format!(
                ", {} moved ({}/s)",
                indicatif::HumanBytes(self.bytes),
                indicatif::HumanBytes((self.bytes as f64 / secs) as u64)
            )
        } else {
            String::new()
        };
        self.bar.set_message(format!(
            "{} running, {} failed{moved}",
            self.running, self.failed
        ));
    }

    /// Run `f` with the bar cleared, so other output on the terminal does not garble it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.bar.is_hidden() {
            f()
        } else {
            self.bar.suspend(f)
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::fixtures::{end, finished, start};

    #[test]
    fn counts_follow_the_events() {
        let mut p = Progress::new(None);
        p.handle(&start(&["a", "b", "c"]));
        p.handle(&Event::HostStarted { host: 0 });
        p.handle(&Event::HostStarted { host: 1 });
        assert_eq!((p.running, p.failed, p.hosts_done, p.hosts), (2, 0, 0, 3));
        p.handle(&finished(0, Status::Ok));
        p.handle(&finished(1, Status::Error));
        assert_eq!((p.running, p.failed, p.hosts_done), (0, 1, 2));
        assert_eq!(p.bar.position(), 2);
        p.handle(&end());
        p.finish();
    }

    #[test]
    fn a_push_counts_bytes_from_the_run_start() {
        let mut p = Progress::new(None);
        let mut ev = start(&["a", "b"]);
        if let Event::RunStarted { bytes_total, .. } = &mut ev {
            *bytes_total = Some(1000);
        }
        p.handle(&ev);
        assert_eq!(p.bar.length(), Some(1000));
        p.handle(&Event::Transferred {
            host: 0,
            bytes: 300,
        });
        p.handle(&finished(0, Status::Ok));
        assert_eq!(p.bar.position(), 300, "hosts do not move a byte bar");
    }
}
