//! Rolling changes: which host starts when. The order of the hosts (`--order`), their
//! batches (`--batch`, `--canary`), the failure threshold (`--max-fail`, `--fail-fast`), the
//! waits between batches and starts (`--pause`, `--stagger`) and the question asked between
//! batches — as a pure state machine ([`Sched`]) that the runner's lanes drive with the
//! clock. No threads, no I/O.

use std::time::{Duration, Instant};

/// A size given as a number of hosts or a percentage of them (`5`, `25%`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Hosts(u32),
    Percent(u32),
}

impl Count {
    /// The number of hosts out of `total`: a percentage rounds down (Ansible's rule).
    pub fn of(self, total: usize) -> usize {
        match self {
            Count::Hosts(n) => n as usize,
            Count::Percent(p) => total * p as usize / 100,
        }
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Count::Hosts(n) => write!(f, "{n}"),
            Count::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// `N` or `N%` (0..=100 for a percentage).
pub fn parse_count(s: &str) -> Result<Count, String> {
    let t = s.trim();
    if let Some(p) = t.strip_suffix('%') {
        match p.trim().parse::<u32>() {
            Ok(p) if p <= 100 => Ok(Count::Percent(p)),
            _ => Err(format!("'{s}' is not a percentage from 0% to 100%")),
        }
    } else {
        t.parse::<u32>()
            .map(Count::Hosts)
            .map_err(|_| format!("'{s}' is not a number of hosts or a percentage (5, 10%)"))
    }
}

/// `--batch` sizes, in order (the last repeats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batches(pub Vec<Count>);

/// `--batch`: `N`, `N%` or a comma list of them; every size at least one host.
pub fn parse_batch_arg(s: &str) -> Result<Batches, String> {
    parse_batches(s).map(Batches)
}

/// The sizes of a `--batch` list.
pub fn parse_batches(s: &str) -> Result<Vec<Count>, String> {
    let mut out = Vec::new();
    for item in s.split(',') {
        let c = parse_count(item).map_err(|e| format!("batch size {e}"))?;
        if matches!(c, Count::Hosts(0) | Count::Percent(0)) {
            return Err(format!(
                "batch size '{}' is zero; every batch has at least one host",
                item.trim()
            ));
        }
        out.push(c);
    }
    Ok(out)
}

/// `--pause`: a duration, or `ask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    For(Duration),
    Ask,
}

pub fn parse_pause(s: &str) -> Result<Pause, String> {
    if s.trim().eq_ignore_ascii_case("ask") {
        return Ok(Pause::Ask);
    }
    crate::cli::parse_duration(s)
        .map(Pause::For)
        .map_err(|e| format!("{e}, or `ask`"))
}

/// Where each batch ends (exclusive indices into the run order, ascending, the last one
/// `total`): a canary batch first, then the `--batch` sizes over the rest, the last size
/// repeating (Ansible's `serial`), percentages of `total` with at least one host each.
pub fn batch_ends(total: usize, canary: usize, sizes: &[Count]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 0;
    if canary > 0 && total > 0 {
        at = canary.min(total);
        ends.push(at);
    }
    let sizes: Vec<usize> = sizes.iter().map(|c| c.of(total).max(1)).collect();
    let mut k = 0;
    while at < total {
        let size = match sizes.get(k).or(sizes.last()) {
            Some(&s) => s,
            None => total - at,
        };
        at = (at + size).min(total);
        ends.push(at);
        k += 1;
    }
    ends
}

/// The batch (from 1) of each host, from [`batch_ends`].
pub fn batch_numbers(ends: &[usize]) -> Vec<u32> {
    let mut out = Vec::with_capacity(ends.last().copied().unwrap_or(0));
    let mut start = 0;
    for (b, &end) in ends.iter().enumerate() {
        out.extend(std::iter::repeat_n(b as u32 + 1, end - start));
        start = end;
    }
    out
}

/// When to ask before the next batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ask {
    /// Never (no canary, or `--yes`).
    #[default]
    Never,
    /// After the canary batch only.
    AfterFirst,
    /// After every batch (`--pause ask`).
    Always,
}

/// How a run's hosts are started; `Rollout::default()` starts them all at once.
#[derive(Debug, Clone, Default)]
pub struct Rollout {
    /// Batch ends ([`batch_ends`]); empty: one batch.
    pub ends: Vec<usize>,
    /// Start no more hosts once more than this many have failed.
    pub max_fail: Option<usize>,
    /// The user's spelling of the threshold, for messages (`2`, `10%`, `--fail-fast`).
    pub max_fail_text: String,
    /// Hosts in the canary batch (0: none). With `--yes`, the run goes on after the canary
    /// only when every one of them succeeded.
    pub canary: usize,
    pub pause: Duration,
    pub stagger: Duration,
    pub ask: Ask,
}

impl Rollout {
    /// The largest batch (hosts that can run at once), for `total` hosts.
    pub fn widest(&self, total: usize) -> usize {
        let mut start = 0;
        let mut widest = 0;
        for &end in &self.ends {
            widest = widest.max(end - start);
            start = end;
        }
        if self.ends.is_empty() { total } else { widest }
    }

    /// Whether hosts are run in more than one batch.
    pub fn batched(&self) -> bool {
        self.ends.len() > 1
    }
}

/// Why no more hosts start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    /// More hosts failed than `--max-fail` allows.
    Threshold { failed: usize },
    /// A canary host failed (and the run did not ask: `--yes`).
    Canary { failed: usize },
    /// The question between batches was answered no.
    Declined,
}

/// What a lane does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    /// Start host `i`; `batch_start` when it is the first host of its batch (from 1).
    Start { i: usize, batch_start: Option<u32> },
    /// Nothing to start yet: look again at this time, or soon (a batch is finishing, or the
    /// question is open).
    Wait(Option<Instant>),
    /// No host will start any more: the lane ends.
    Done,
}

/// A question to put to the user before batch `next` (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub next: u32,
    pub done: usize,
    pub failed: Vec<usize>,
    pub remaining: usize,
}

/// The schedule of one run.
#[derive(Debug)]
pub struct Sched {
    total: usize,
    ends: Vec<usize>,
    /// Index into `ends` of the batch being started.
    batch: usize,
    next: usize,
    running: usize,
    failed: Vec<usize>,
    done: usize,
    max_fail: Option<usize>,
    canary: usize,
    pause: Duration,
    stagger: Duration,
    ask: Ask,
    not_before: Option<Instant>,
    /// The open question, once asked (no host starts until it is answered).
    asking: Option<Question>,
    /// Set when the question was raised and not yet handed out.
    to_ask: Option<Question>,
    halt: Option<Halt>,
}

impl Sched {
    pub fn new(total: usize, r: &Rollout) -> Sched {
        let ends = if r.ends.is_empty() {
            vec![total]
        } else {
            r.ends.clone()
        };
        Sched {
            total,
            ends,
            batch: 0,
            next: 0,
            running: 0,
            failed: Vec::new(),
            done: 0,
            max_fail: r.max_fail,
            canary: r.canary,
            pause: r.pause,
            stagger: r.stagger,
            ask: r.ask,
            not_before: None,
            asking: None,
            to_ask: None,
            halt: None,
        }
    }

    /// What a free lane does now.
    pub fn take(&mut self, now: Instant) -> Take {
        if self.halt.is_some() || self.next >= self.total {
            return Take::Done;
        }
        if self.asking.is_some() || self.to_ask.is_some() {
            return Take::Wait(None);
        }
        let end = self.ends[self.batch];
        if self.next >= end {
            // the batch's hosts have all started: wait for them to finish
            return Take::Wait(None);
        }
        if let Some(t) = self.not_before
            && now < t
        {
            return Take::Wait(Some(t));
        }
        let i = self.next;
        let batch_start = (self.batch == 0 && i == 0
            || self.batch > 0 && i == self.ends[self.batch - 1])
            .then_some(self.batch as u32 + 1);
        self.next += 1;
        self.running += 1;
        self.not_before = (!self.stagger.is_zero()).then(|| now + self.stagger);
        Take::Start { i, batch_start }
    }

    /// Host `i` finished (`ok`: it succeeded).
    pub fn finished(&mut self, i: usize, ok: bool, now: Instant) {
        self.running -= 1;
        self.done += 1;
        if !ok {
            self.failed.push(i);
        }
        if self.halt.is_none()
            && let Some(limit) = self.max_fail
            && self.failed.len() > limit
        {
            self.halt = Some(Halt::Threshold {
                failed: self.failed.len(),
            });
        }
        let end = self.ends[self.batch];
        if self.running > 0 || self.next < end || self.halt.is_some() || end >= self.total {
            return;
        }
        // the batch is over: the next one starts after the pause, the canary's verdict or
        // the answer
        let canary_done = self.batch == 0 && self.canary > 0;
        self.batch += 1;
        if !self.pause.is_zero() {
            self.not_before = Some(now + self.pause);
        }
        let question = Question {
            next: self.batch as u32 + 1,
            done: self.done,
            failed: self.failed.clone(),
            remaining: self.total - self.next,
        };
        match self.ask {
            Ask::Always => self.to_ask = Some(question),
            Ask::AfterFirst if canary_done => self.to_ask = Some(question),
            Ask::Never if canary_done && !self.failed.is_empty() => {
                self.halt = Some(Halt::Canary {
                    failed: self.failed.len(),
                });
            }
            _ => {}
        }
    }

    /// The question to ask now, once (the runner sends it to whoever asks the user).
    pub fn question(&mut self) -> Option<Question> {
        let q = self.to_ask.take()?;
        self.asking = Some(q.clone());
        Some(q)
    }

    /// Whether a question is out and not yet answered.
    pub fn waiting_for_answer(&self) -> bool {
        self.asking.is_some()
    }

    /// The user's answer to the open question.
    pub fn answer(&mut self, go_on: bool, now: Instant) {
        if self.asking.take().is_some() && !go_on {
            self.halt = Some(Halt::Declined);
        }
        // the pause runs from the answer, not from the end of the batch
        if !self.pause.is_zero() {
            self.not_before = Some(now + self.pause);
        }
    }

    /// Why the run stopped starting hosts, if it did.
    pub fn halt(&self) -> Option<&Halt> {
        self.halt.as_ref()
    }

    /// Hosts never started (after the run).
    pub fn not_started(&self) -> std::ops::Range<usize> {
        self.next..self.total
    }

    /// Hosts that failed so far.
    pub fn failed(&self) -> usize {
        self.failed.len()
    }
}

/// Sort names the way people count: digit runs compare as numbers (web2 before web10).
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let n = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let m = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (p, q) = (&x[..n], &y[..m]);
                let trim = |s: &[u8]| -> usize { s.iter().take_while(|c| **c == b'0').count() };
                let (p1, q1) = (&p[trim(p)..], &q[trim(q)..]);
                let o = p1.len().cmp(&q1.len()).then_with(|| p1.cmp(q1));
                if o != Ordering::Equal {
                    return o;
                }
                x = &x[n..];
                y = &y[m..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_batch_lists_parse() {
        assert_eq!(parse_count("5"), Ok(Count::Hosts(5)));
        assert_eq!(parse_count(" 25% "), Ok(Count::Percent(25)));
        assert!(parse_count("101%").is_err());
        assert!(parse_count("x").is_err());
        assert_eq!(
            parse_batches("1,2,50%").unwrap(),
            [Count::Hosts(1), Count::Hosts(2), Count::Percent(50)]
        );
        assert!(parse_batches("0").unwrap_err().contains("zero"));
        assert!(parse_batches("1,,2").is_err());
        assert_eq!(parse_pause("ask"), Ok(Pause::Ask));
        assert_eq!(parse_pause("2s"), Ok(Pause::For(Duration::from_secs(2))));
        assert!(parse_pause("soon").is_err());
    }

    #[test]
    fn batches_step_up_and_the_last_size_repeats() {
        let b = parse_batches("1,2,50%").unwrap();
        assert_eq!(batch_ends(10, 0, &b), [1, 3, 8, 10]);
        assert_eq!(
            batch_numbers(&batch_ends(10, 0, &b)),
            [1, 2, 2, 3, 3, 3, 3, 3, 4, 4]
        );
        // percentages round down, to at least one host
        assert_eq!(batch_ends(3, 0, &[Count::Percent(10)]), [1, 2, 3]);
        assert_eq!(batch_ends(5, 0, &[]), [5]);
        // a canary batch first, then the sizes over the rest
        assert_eq!(batch_ends(10, 2, &[]), [2, 10]);
        assert_eq!(batch_ends(10, 2, &[Count::Hosts(3)]), [2, 5, 8, 10]);
        assert_eq!(batch_ends(1, 5, &[]), [1]);
        assert_eq!(batch_ends(0, 2, &[Count::Hosts(3)]), Vec::<usize>::new());
    }

    fn rollout(ends: &[usize]) -> Rollout {
        Rollout {
            ends: ends.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn a_batch_starts_when_the_previous_one_finished() {
        let t = Instant::now();
        let mut s = Sched::new(4, &rollout(&[1, 4]));
        assert_eq!(
            s.take(t),
            Take::Start {
                i: 0,
                batch_start: Some(1)
            }
        );
        assert_eq!(s.take(t), Take::Wait(None));
        s.finished(0, true, t);
        assert_eq!(
            s.take(t),
            Take::Start {
                i: 1,
                batch_start: Some(2)
            }
        );
        assert_eq!(
            s.take(t),
            Take::Start {
                i: 2,
                batch_start: None
            }
        );
        assert_eq!(
            s.take(t),
            Take::Start {
                i: 3,
                batch_start: None
            }
        );
        assert_eq!(s.take(t), Take::Done);
    }

    #[test]
    fn the_threshold_stops_new_starts_and_names_the_rest() {
        let t = Instant::now();
        let mut r = rollout(&[]);
        r.max_fail = Some(1);
        let mut s = Sched::new(5, &r);
        for i in 0..3 {
            assert_eq!(
                s.take(t),
                Take::Start {
                    i,
                    batch_start: (i == 0).then_some(1)
                }
            );
        }
        s.finished(0, false, t);
        assert!(s.halt().is_none(), "one failure is allowed");
        s.finished(1, false, t);
        assert_eq!(s.halt(), Some(&Halt::Threshold { failed: 2 }));
        assert_eq!(s.take(t), Take::Done);
        s.finished(2, true, t);
        assert_eq!(s.not_started(), 3..5);
    }

    #[test]
    fn pause_and_stagger_hold_starts_back() {
        let t = Instant::now();
        let mut r = rollout(&[1, 3]);
        r.pause = Duration::from_secs(5);
        r.stagger = Duration::from_secs(1);
        let mut s = Sched::new(3, &r);
        assert!(matches!(s.take(t), Take::Start { i: 0, .. }));
        s.finished(0, true, t);
        assert_eq!(s.take(t), Take::Wait(Some(t + Duration::from_secs(5))));
        let t5 = t + Duration::from_secs(5);
        assert!(matches!(s.take(t5), Take::Start { i: 1, .. }));
        assert_eq!(s.take(t5), Take::Wait(Some(t5 + Duration::from_secs(1))));
        assert!(matches!(
            s.take(t5 + Duration::from_secs(1)),
            Take::Start { i: 2, .. }
        ));
    }

    #[test]
    fn the_canary_asks_once_and_a_no_stops_the_run() {
        let t = Instant::now();
        let mut r = rollout(&[1, 2, 3]);
        r.canary = 1;
        r.ask = Ask::AfterFirst;
        let mut s = Sched::new(3, &r);
        assert!(matches!(s.take(t), Take::Start { i: 0, .. }));
        s.finished(0, false, t);
        assert_eq!(s.take(t), Take::Wait(None));
        let q = s.question().unwrap();
        assert_eq!((q.next, q.done, q.remaining), (2, 1, 2));
        assert_eq!(q.failed, [0]);
        assert!(s.question().is_none(), "asked once");
        assert_eq!(s.take(t), Take::Wait(None));
        s.answer(true, t);
        assert!(matches!(s.take(t), Take::Start { i: 1, .. }));
        s.finished(1, true, t);
        assert!(s.question().is_none(), "only after the canary");
        assert!(matches!(s.take(t), Take::Start { i: 2, .. }));

        let mut s = Sched::new(3, &r);
        s.take(t);
        s.finished(0, true, t);
        s.question().unwrap();
        s.answer(false, t);
        assert_eq!(s.halt(), Some(&Halt::Declined));
        assert_eq!(s.take(t), Take::Done);
    }

    #[test]
    fn with_yes_a_failed_canary_stops_the_run() {
        let t = Instant::now();
        let mut r = rollout(&[2, 5]);
        r.canary = 2;
        let mut s = Sched::new(5, &r);
        s.take(t);
        s.take(t);
        s.finished(0, true, t);
        s.finished(1, false, t);
        assert_eq!(s.halt(), Some(&Halt::Canary { failed: 1 }));
        assert_eq!(s.take(t), Take::Done);
        // all ok: on without asking
        let mut s = Sched::new(5, &r);
        s.take(t);
        s.take(t);
        s.finished(0, true, t);
        s.finished(1, true, t);
        assert!(s.question().is_none());
        assert!(matches!(
            s.take(t),
            Take::Start {
                i: 2,
                batch_start: Some(2)
            }
        ));
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["web10", "web2", "db1", "web02", "web1", "a"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["a", "db1", "web1", "web02", "web2", "web10"]);
    }
}
