//! The event engine (`--engine events`): many hosts per thread, each host's session code
//! running as a fiber (a stackful coroutine, corosensei) on one event loop per thread
//! (readiness from the `polling` crate: epoll here).
//!
//! Every wait of the ssh layer goes through [`super::io::poll_or_cancel`] (and
//! [`super::io::recv_or_cancel`]); inside a fiber, those waits [`suspend`] the fiber with
//! what it waits for (a socket and direction, a deadline, the run's cancel pipe) instead of
//! blocking the thread, and the loop ([`run`]) resumes it when that happens. The session code
//! is the same on both engines: the non-blocking contract of libssh2 (wait for the
//! direction it names, bounded waits when it names none) is kept by that code, and only the
//! way of waiting changes — as gevent did for the 2017 study's second setup.
//!
//! What a fiber must not do is block its thread: the start gate and replies from other
//! threads are polled with short timed suspensions in fibers ([`pause`]); the event queue to
//! the printers may block (that is back-pressure, the printers run on their own thread).

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use std::cell::Cell;
use std::collections::HashSet;
use std::os::fd::BorrowedFd;
use std::os::unix::io::RawFd;
use std::time::{Duration, Instant};

/// Stack of each fiber: the size of a thread-engine worker's stack. Only the pages a fiber
/// touches cost memory.
const STACK: usize = 512 * 1024;

/// What a suspended fiber waits for: whichever comes first.
pub(crate) struct Wait {
    /// A socket and the poll events (POLLIN/POLLOUT) it waits for.
    pub fd: Option<(RawFd, libc::c_short)>,
    pub until: Instant,
    /// The run's cancel pipe (readable once cancelled).
    pub cancel: Option<RawFd>,
}

/// Why a fiber was resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woke {
    Ready,
    TimedOut,
    Cancelled,
}

type Fiber = Coroutine<Woke, Wait, (), DefaultStack>;

thread_local! {
    /// The running fiber's yielder: set only while a fiber's own code runs on this thread.
    static CURRENT: Cell<Option<*const Yielder<Woke, Wait>>> = const { Cell::new(None) };
}

/// Whether the calling code runs in a fiber (and must suspend rather than block).
pub(crate) fn in_fiber() -> bool {
    CURRENT.with(|c| c.get().is_some())
}

/// Size of each loop thread's scratch stack (see [`deep`]): every libssh2 call of a fiber
/// runs on it, OpenSSL's RSA signing included. Only the pages touched are resident, once per
/// thread; a guard page below it.
const SCRATCH: usize = 256 * 1024;

thread_local! {
    /// The stack that [`deep`] runs calls on: one per thread, made on first use.
    static SCRATCH_STACK: std::cell::RefCell<Option<DefaultStack>> =
        const { std::cell::RefCell::new(None) };
}

/// Run `f` — a call that never suspends and needs more stack than the rest of a session —
/// on this thread's scratch stack when called in a fiber, else right here.
///
/// Every libssh2 call of a non-blocking step ([`super::io::nonblocking`]), the command's
/// reads and its output callback, and the crypto libssh2 calls (X25519, the host key's
/// Ed25519 check, ChaCha20 and Poly1305 of every packet, also from libssh2 calls made
/// elsewhere) run here, as does the host-key check. A fiber's own stack then holds only
/// prun's frames down to a wait: 1 page touched on a login and a command (measured at
/// `-p 200` and `-p 1000`: the deepest wait just under 4 KB below the top, so keep what does
/// not wait off that path), where the key exchange's curve arithmetic once made it 5,
/// libssh2's frames 3 and prun's own 2. Each of the `--parallel` fibers in flight keeps its
/// pages: 4 MB at `-p 1000` per page.
pub(crate) fn deep<R>(f: impl FnOnce() -> R) -> R {
    if !in_fiber() {
        return f();
    }
    SCRATCH_STACK.with(|cell| {
        // never nested: on the scratch stack the code is not "in a fiber" (below), so a
        // nested call runs where it is; if there is no memory for the stack, run here
        let Ok(mut slot) = cell.try_borrow_mut() else {
            return f();
        };
        if slot.is_none() {
            *slot = DefaultStack::new(SCRATCH).ok();
        }
        match slot.as_mut() {
            Some(stack) => {
                // Off the fiber's stack the fiber must not suspend (another fiber of this
                // thread would run on the same scratch stack): while `f` runs, the code is
                // not in a fiber, so a wait in it blocks the thread instead — slower, never
                // wrong. The calls given here do not wait.
                let _off = OffFiber(CURRENT.with(|c| c.take()));
                corosensei::on_stack(stack, f)
            }
            None => f(),
        }
    })
}

/// Puts the fiber's yielder back when [`deep`]'s call ends (or unwinds).
struct OffFiber(Option<*const Yielder<Woke, Wait>>);

impl Drop for OffFiber {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// Suspend the calling fiber until `w` happens. Panics outside a fiber (callers check
/// [`in_fiber`]).
pub(crate) fn suspend(w: Wait) -> Woke {
    let y = CURRENT
        .with(|c| c.take())
        .expect("suspend is called in a fiber");
    // the read bound of this fiber's libssh2 call is thread-local: keep it across the switch
    let bound = super::bound::save();
    // SAFETY: the pointer is the yielder of the fiber running this code (set when it started
    // or last resumed, below); the fiber and its yielder outlive this call.
    let woke = unsafe { (*y).suspend(w) };
    super::bound::restore(bound);
    super::bound::waited();
    CURRENT.with(|c| c.set(Some(y)));
    woke
}

/// Suspend for `d` (or until cancelled); for polling what has no descriptor to wait on.
pub(crate) fn pause(d: Duration, cancel: Option<RawFd>) -> Woke {
    suspend(Wait {
        fd: None,
        until: Instant::now() + d,
        cancel,
    })
}

/// Lock `m`, the way a fiber may: a mutex held across a wait (a bastion's connection list
/// while logging in to it) may be held by another fiber of this same thread, which can only
/// let go when this thread runs it — so a fiber tries and pauses instead of blocking.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    if !in_fiber() {
        return m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    }
    loop {
        match m.try_lock() {
            Ok(g) => return g,
            Err(std::sync::TryLockError::Poisoned(p)) => return p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                pause(Duration::from_millis(1), None);
            }
        }
    }
}

/// One fiber and what it waits for.
struct Slot {
    fiber: Fiber,
    /// The top of the fiber's stack (for [`pages::count`]).
    top: usize,
    wait: Option<Wait>,
    /// The descriptor registered with the poller for this slot, if any.
    registered: Option<RawFd>,
}

/// Run jobs from `next` as fibers on this thread, at most `width` at a time, until `next`
/// has no more and every fiber has finished.
pub(crate) fn run<'a>(width: usize, mut next: impl FnMut() -> Option<Box<dyn FnOnce() + 'a>>) {
    let poller = match polling::Poller::new() {
        Ok(p) => p,
        Err(_) => {
            // no event loop: run the jobs one after another, blocking
            while let Some(job) = next() {
                job();
            }
            return;
        }
    };
    let mut slots: Vec<Option<Slot>> = (0..width.max(1)).map(|_| None).collect();
    let mut events = polling::Events::new();
    // cancel pipes seen readable (a cancel is never undone) and those registered
    let mut cancelled: HashSet<RawFd> = HashSet::new();
    let mut watched: HashSet<RawFd> = HashSet::new();
    let cancel_key = |fd: RawFd| usize::MAX - fd as usize;
    let mut more = true;
    loop {
        // start new fibers in free slots; each runs until its first wait
        for i in 0..slots.len() {
            if !more || slots[i].is_some() {
                continue;
            }
            let Some(job) = next() else {
                more = false;
                break;
            };
            let Ok(stack) = DefaultStack::new(STACK) else {
                job(); // no memory for a stack: run it here, blocking
                continue;
            };
            let top = corosensei::stack::Stack::base(&stack).get();
            // SAFETY: the fiber borrows data that lives for 'a; every fiber is dropped before
            // this function returns (the slots are local), also when it unwinds.
            let fiber = unsafe {
                Coroutine::with_stack_unchecked(stack, move |y: &Yielder<Woke, Wait>, _: Woke| {
                    CURRENT.with(|c| c.set(Some(y as *const _)));
                    job();
                    CURRENT.with(|c| c.set(None));
                })
            };
            slots[i] = Some(Slot {
                fiber,
                top,
                wait: None,
                registered: None,
            });
            resume(
                &poller,
                &mut slots,
                i,
                Woke::Ready,
                &mut watched,
                &cancel_key,
            );
        }
        if slots.iter().all(Option::is_none) {
            if more {
                continue;
            }
            break;
        }
        // wait for the first socket, deadline or cancel
        let now = Instant::now();
        let first = slots
            .iter()
            .flatten()
            .filter_map(|s| s.wait.as_ref().map(|w| w.until))
            .min();
        let timeout = first.map(|t| t.saturating_duration_since(now));
        let already = slots.iter().flatten().any(|s| {
            s.wait
                .as_ref()
                .and_then(|w| w.cancel)
                .is_some_and(|c| cancelled.contains(&c))
        });
        events.clear();
        if !already && timeout.is_none_or(|t| !t.is_zero()) {
            let _ = poller.wait(&mut events, timeout);
        }
        let mut ready: HashSet<usize> = HashSet::new();
        for ev in events.iter() {
            if ev.key >= usize::MAX - i32::MAX as usize {
                cancelled.insert((usize::MAX - ev.key) as RawFd);
            } else {
                ready.insert(ev.key);
            }
        }
        let now = Instant::now();
        for i in 0..slots.len() {
            let Some(slot) = slots[i].as_mut() else {
                continue;
            };
            let Some(w) = &slot.wait else {
                continue;
            };
            let woke = if w.cancel.is_some_and(|c| cancelled.contains(&c)) {
                Woke::Cancelled
            } else if ready.contains(&i) {
                Woke::Ready
            } else if now >= w.until {
                Woke::TimedOut
            } else {
                continue;
            };
            resume(&poller, &mut slots, i, woke, &mut watched, &cancel_key);
        }
    }
    for fd in watched {
        // SAFETY: the descriptor is the run's cancel pipe, alive for the run.
        let _ = poller.delete(unsafe { BorrowedFd::borrow_raw(fd) });
    }
}

/// Resume slot `i` with `woke`; arm what it waits for next, or free the slot when it ended.
fn resume(
    poller: &polling::Poller,
    slots: &mut [Option<Slot>],
    i: usize,
    woke: Woke,
    watched: &mut HashSet<RawFd>,
    cancel_key: &dyn Fn(RawFd) -> usize,
) {
    let Some(slot) = slots[i].as_mut() else {
        return;
    };
    slot.wait = None;
    match slot.fiber.resume(woke) {
        CoroutineResult::Yield(w) => {
            let want = w.fd;
            if let Some(c) = w.cancel
                && watched.insert(c)
            {
                // SAFETY: the cancel pipe outlives the run; removed at the end of `run`.
                let _ = unsafe { poller.add(c, polling::Event::readable(cancel_key(c))) };
            }
            match want {
                Some((fd, events)) => {
                    let mut interest = polling::Event::none(i);
                    interest.readable = events & libc::POLLIN != 0;
                    interest.writable = events & libc::POLLOUT != 0;
                    if slot.registered.is_some_and(|r| r != fd) {
                        forget(poller, slot);
                    }
                    // SAFETY: the fiber's socket is open while it waits on it.
                    let b = unsafe { BorrowedFd::borrow_raw(fd) };
                    let armed = if slot.registered == Some(fd) {
                        // re-arm (one-shot); a socket closed and reopened under the same
                        // number was dropped from the set: add it again
                        poller.modify(b, interest).is_ok()
                            // SAFETY: as above.
                            || unsafe { poller.add(fd, interest) }.is_ok()
                    } else {
                        // SAFETY: as above.
                        unsafe { poller.add(fd, interest) }.is_ok()
                    };
                    slot.registered = armed.then_some(fd);
                    if !armed {
                        // cannot watch it: let the fiber look again soon (a bounded wait)
                        slot.wait = Some(Wait {
                            fd: None,
                            until: Instant::now().min(w.until),
                            cancel: w.cancel,
                        });
                        return;
                    }
                }
                None => forget(poller, slot),
            }
            slot.wait = Some(w);
        }
        CoroutineResult::Return(()) => {
            if pages::counting() {
                pages::count(slot.top);
            }
            forget(poller, slot);
            slots[i] = None;
        }
    }
}

/// Stop watching the slot's descriptor (it may be closed already: then it left the set).
fn forget(poller: &polling::Poller, slot: &mut Slot) {
    if let Some(fd) = slot.registered.take() {
        // SAFETY: only used to name the descriptor to epoll; a closed one is an error we ignore.
        let _ = poller.delete(unsafe { BorrowedFd::borrow_raw(fd) });
    }
}

/// `PRUN_FIBER_PAGES`: how many stack pages each fiber touched, counted when it ends — a
/// check that prun's frames stay shallow (see [`deep`]: 1 page on a login and a command).
/// Read by the app layer at the end of a run ([`pages_touched`]); off, it costs nothing.
mod pages {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Pages looked at below a fiber's top; the last count is "that many or more".
    pub(super) const SEEN: usize = 16;
    pub(super) static FIBERS: [AtomicUsize; SEEN + 1] = [const { AtomicUsize::new(0) }; SEEN + 1];

    pub(super) fn counting() -> bool {
        static ON: OnceLock<bool> = OnceLock::new();
        *ON.get_or_init(|| std::env::var_os("PRUN_FIBER_PAGES").is_some())
    }

    /// Count the resident pages of the `SEEN` pages below `top` (a fiber's stack, still
    /// mapped: [`super::STACK`] is larger) with `mincore`.
    pub(super) fn count(top: usize) {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let len = SEEN * page;
        if len > super::STACK || top < len {
            return;
        }
        let mut resident = [0u8; SEEN];
        // SAFETY: [top - len, top) lies in the fiber's stack mapping, page-aligned (the top
        // of an mmap), and `resident` has one byte per page of it.
        let rc = unsafe { libc::mincore((top - len) as *mut _, len, resident.as_mut_ptr()) };
        if rc == 0 {
            let n = resident.iter().filter(|r| **r & 1 != 0).count();
            FIBERS[n].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// With `PRUN_FIBER_PAGES` set: how many fibers of this process ended having touched 0, 1,
/// 2, … stack pages (the last entry: 16 or more); `None` when it is not set.
pub fn pages_touched() -> Option<Vec<usize>> {
    pages::counting().then(|| {
        pages::FIBERS
            .iter()
            .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn deep_calls_leave_the_fiber_and_come_back() {
        let seen = RefCell::new(Vec::new());
        let jobs = RefCell::new(
            (0..3)
                .map(|i| {
                    let seen = &seen;
                    Box::new(move || {
                        assert!(in_fiber());
                        let here = 0u8;
                        let fiber_sp = &here as *const u8 as usize;
                        let (off, nested, deep_sp) = deep(|| {
                            let there = 0u8;
                            // a wait here blocks the thread (it is not in a fiber) ...
                            let _ = pause_or_sleep(Duration::from_millis(2));
                            // ... and a nested call runs where it is
                            (!in_fiber(), deep(|| 40 + i), &there as *const u8 as usize)
                        });
                        assert!(in_fiber(), "back in the fiber");
                        // the fiber still suspends after it
                        let _ = pause(Duration::from_millis(1), None);
                        seen.borrow_mut().push((off, nested, fiber_sp, deep_sp));
                    }) as Box<dyn FnOnce()>
                })
                .collect::<Vec<_>>(),
        );
        run(2, || jobs.borrow_mut().pop());
        drop(jobs);
        let mut seen = seen.into_inner();
        seen.sort();
        let flags: Vec<_> = seen.iter().map(|s| (s.0, s.1)).collect();
        assert_eq!(flags, vec![(true, 40), (true, 41), (true, 42)]);
        // every deep call ran at the same place (the thread's scratch stack), each fiber on
        // a stack of its own
        for a in &seen {
            for b in &seen {
                assert_eq!(a.3, b.3, "deep calls on different stacks: {seen:x?}");
                if a.2 != b.2 {
                    assert!(a.2.abs_diff(b.2) > 4096, "{seen:x?}");
                }
            }
        }
    }

    /// A wait as the ssh layer makes it: suspends in a fiber, sleeps elsewhere.
    fn pause_or_sleep(d: Duration) -> bool {
        if in_fiber() {
            pause(d, None);
        } else {
            std::thread::sleep(d);
        }
        true
    }
}
