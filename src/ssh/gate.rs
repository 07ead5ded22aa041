//! The start gate: how many connections may be between "TCP connect" and "authenticated" at
//! once. sshd's `MaxStartups` drops connections beyond a few unauthenticated ones before
//! sending its banner; prun treats such a drop as backpressure (the limit halves) and grows
//! the limit back slowly with each successful login (additive increase, as TCP does), so 100
//! hosts behind one default-configured sshd all get in with a couple of retries. Logins that
//! time out in the handshake or auth are the other sign of overload (servers too busy to
//! answer within `--connect-timeout`): when at least a quarter of recent login outcomes
//! (and at least [`TIMEOUTS_TO_CUT`] of them) are such timeouts, the limit halves too — one
//! hung host among many does not. Without drops or timeouts the limit stays at `--parallel`
//! and the gate costs nothing.

use crate::cancel::Cancel;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub struct StartGate {
    max: f64,
    state: Mutex<State>,
    cv: Condvar,
}

struct State {
    limit: f64,
    inflight: usize,
    /// Login outcomes (successes and timeouts) since the limit was last cut or the window
    /// was last started again, and how many of them were timeouts.
    outcomes: u32,
    timeouts: u32,
    /// Fibers waiting for room now (they look again after [`fiber_pause`]).
    waiting: usize,
}

/// Timed-out logins needed before they count as overload.
pub const TIMEOUTS_TO_CUT: u32 = 4;
/// Outcomes after which the window starts again (old ones stop counting).
const WINDOW: u32 = 100;

/// Held from connect until auth is done (or the attempt fails).
pub struct Permit<'a>(&'a StartGate);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().unwrap();
        s.inflight -= 1;
        drop(s);
        self.0.cv.notify_one();
    }
}

impl StartGate {
    pub fn new(max: usize) -> Self {
        let max = max.max(1) as f64;
        StartGate {
            max,
            state: Mutex::new(State {
                limit: max,
                inflight: 0,
                outcomes: 0,
                timeouts: 0,
                waiting: 0,
            }),
            cv: Condvar::new(),
        }
    }

    /// Wait for room to start a connection; `None` when the run is cancelled meanwhile.
    pub fn acquire<'a>(&'a self, cancel: &Cancel) -> Option<Permit<'a>> {
        let mut s = self.state.lock().unwrap();
        loop {
            if cancel.is_cancelled() {
                return None;
            }
            if (s.inflight as f64) < s.limit.floor().max(1.0) {
                s.inflight += 1;
                return Some(Permit(self));
            }
            if super::fiber::in_fiber() {
                // a fiber must not block its thread (the permits may be held by fibers of
                // this same thread): look again a little later
                s.waiting += 1;
                let pause = fiber_pause(s.waiting);
                drop(s);
                super::fiber::pause(pause, Some(cancel.fd()));
                s = self.state.lock().unwrap();
                s.waiting -= 1;
                continue;
            }
            s = self
                .cv
                .wait_timeout(s, Duration::from_millis(100))
                .unwrap()
                .0;
        }
    }

    /// A connection was dropped before the banner: halve the limit.
    pub fn dropped(&self) {
        let mut s = self.state.lock().unwrap();
        s.limit = (s.limit / 2.0).max(1.0);
    }

    /// A login timed out in the handshake or auth: halve the limit when such timeouts are a
    /// quarter of the recent outcomes (and at least [`TIMEOUTS_TO_CUT`]).
    pub fn timed_out(&self) {
        let mut s = self.state.lock().unwrap();
        s.outcomes += 1;
        s.timeouts += 1;
        if s.timeouts >= TIMEOUTS_TO_CUT && s.timeouts * 4 >= s.outcomes {
            s.limit = (s.limit / 2.0).max(1.0);
            s.outcomes = 0;
            s.timeouts = 0;
        }
    }

    /// A connection authenticated: grow the limit by 1/limit (about +1 per round of logins).
    pub fn succeeded(&self) {
        let mut s = self.state.lock().unwrap();
        s.outcomes += 1;
        if s.outcomes >= WINDOW {
            s.outcomes = 0;
            s.timeouts = 0;
        }
        if s.limit < self.max {
            s.limit = (s.limit + 1.0 / s.limit).min(self.max);
            drop(s);
            self.cv.notify_all();
        }
    }

    /// The current limit (for tests and diagnostics).
    pub fn limit(&self) -> usize {
        self.state.lock().unwrap().limit as usize
    }
}

/// How long a fiber waits before it looks at the gate again, when `waiting` fibers (itself
/// included) wait: 5 ms alone, longer in a crowd, so that all of them together look ~4000
/// times a second at most (some one of them still looks every ~0.25 ms). At `-p 1000` on a
/// 2-core machine the gate holds hundreds of fibers back, and 5 ms each was 200,000
/// wake-ups a second: a tenth of prun's CPU.
pub fn fiber_pause(waiting: usize) -> Duration {
    Duration::from_micros(250 * waiting as u64)
        .clamp(Duration::from_millis(5), Duration::from_millis(250))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_timeouts_cut_the_limit_only_when_they_are_many() {
        let g = StartGate::new(64);
        // a few hung hosts among many logins: no cut
        for i in 0..300 {
            if i % 40 == 0 {
                g.timed_out();
            } else {
                g.succeeded();
            }
        }
        assert_eq!(g.limit(), 64);
        // an overloaded server: timeouts in a row halve the limit once per four
        for _ in 0..4 {
            g.timed_out();
        }
        assert_eq!(g.limit(), 32);
        for _ in 0..8 {
            g.timed_out();
        }
        assert_eq!(g.limit(), 8);
        // a quarter of outcomes timing out is enough
        let g = StartGate::new(64);
        for _ in 0..4 {
            for _ in 0..3 {
                g.succeeded();
            }
            g.timed_out();
        }
        assert_eq!(g.limit(), 32);
    }

    #[test]
    fn fibers_in_a_crowd_look_less_often() {
        assert_eq!(fiber_pause(1), Duration::from_millis(5));
        assert_eq!(fiber_pause(20), Duration::from_millis(5));
        assert_eq!(fiber_pause(400), Duration::from_millis(100));
        assert_eq!(fiber_pause(100_000), Duration::from_millis(250));
    }

    #[test]
    fn halves_on_drops_and_grows_back_slowly() {
        let g = StartGate::new(64);
        let c = Cancel::new().unwrap();
        assert_eq!(g.limit(), 64);
        g.dropped();
        g.dropped();
        assert_eq!(g.limit(), 16);
        for _ in 0..20 {
            g.succeeded();
        }
        assert_eq!(g.limit(), 17, "about +1 per limit successes");
        for _ in 0..10 {
            g.dropped();
        }
        assert_eq!(g.limit(), 1);
        let p = g.acquire(&c).unwrap();
        // a second connection waits; cancelling releases the waiter with None
        std::thread::scope(|s| {
            let h = s.spawn(|| g.acquire(&c).is_none());
            std::thread::sleep(Duration::from_millis(50));
            c.trigger(crate::cancel::Reason::FailFast);
            assert!(h.join().unwrap());
        });
        drop(p);
    }
}
