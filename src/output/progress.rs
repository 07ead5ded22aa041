//! The progress bar on stderr (indicatif): hosts done/total, running, failed, elapsed.
//! Hidden unless enabled (stderr is a terminal, or `--progress always`).

use crate::event::{Event, Status};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    running: usize,
    failed: usize,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        let bar = if enabled {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} hosts  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            b.set_style(style);
            b.enable_steady_tick(std::time::Duration::from_millis(200));
            b
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            running: 0,
            failed: 0,
        }
    }

    pub fn handle(&mut self, ev: &Event) {
        match ev {
            Event::RunStarted { hosts, .. } => self.bar.set_length(hosts.len() as u64),
            Event::HostStarted { .. } => self.running += 1,
            Event::HostFinished { result, .. } => {
                self.running = self.running.saturating_sub(1);
                if result.status != Status::Ok {
                    self.failed += 1;
                }
                self.bar.inc(1);
            }
            _ => return,
        }
        self.bar
            .set_message(format!("{} running, {} failed", self.running, self.failed));
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
