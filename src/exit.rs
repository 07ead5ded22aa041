//! prun's exit status (pssh-compatible), and how host results map to it.

use crate::event::Status;

/// Every host ran the command and it exited 0.
pub const OK: u8 = 0;
/// prun itself failed (internal error).
pub const INTERNAL: u8 = 1;
/// Usage error or unusable inventory: nothing was run.
pub const USAGE: u8 = 2;
/// At least one host timed out, was killed by a signal, or was cancelled.
pub const TIMEOUT: u8 = 3;
/// Otherwise: at least one host failed at the SSH level.
pub const SSH: u8 = 4;
/// Otherwise: every host connected and at least one remote command exited non-zero.
pub const REMOTE: u8 = 5;
/// The rollout stopped before every host started: more hosts failed than --max-fail (or
/// --fail-fast) allows, a canary failed, or the question between batches was answered no.
pub const STOPPED: u8 = 6;
/// Interrupted by Ctrl-C.
pub const INTERRUPTED: u8 = 130;

/// The exit status for a finished run, from each host's status.
pub fn for_statuses(statuses: impl IntoIterator<Item = Status>) -> u8 {
    let mut code = OK;
    for s in statuses {
        let c = match s {
            Status::Ok => OK,
            Status::Timeout | Status::Signal | Status::Cancelled => TIMEOUT,
            Status::Skipped => STOPPED,
            Status::Error => SSH,
            Status::Failed => REMOTE,
        };
        code = worst(code, c);
    }
    code
}

/// 6 beats 3 beats 4 beats 5 beats 0.
fn worst(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        STOPPED => 4,
        TIMEOUT => 3,
        SSH => 2,
        REMOTE => 1,
        _ => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn mapping_follows_the_design_table() {
        assert_eq!(for_statuses([]), OK);
        assert_eq!(for_statuses([Ok, Ok]), OK);
        assert_eq!(for_statuses([Ok, Failed]), REMOTE);
        assert_eq!(for_statuses([Failed, Error, Ok]), SSH);
        assert_eq!(for_statuses([Error, Timeout, Failed]), TIMEOUT);
        assert_eq!(for_statuses([Signal]), TIMEOUT);
        assert_eq!(for_statuses([Cancelled, Ok]), TIMEOUT);
        assert_eq!(for_statuses([Failed, Error]), SSH);
        assert_eq!(for_statuses([Skipped, Timeout, Failed]), STOPPED);
    }
}
