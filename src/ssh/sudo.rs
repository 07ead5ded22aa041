//! sudo's password prompt, found in a command's stderr and answered at most once.
//!
//! prun runs `sudo -S -p MARKER`, where MARKER is random for each run, so a command cannot
//! know it in advance. Even so, anything on the host that can read sudo's argv could print
//! it, so the marker is believed only where sudo itself would put it: as the very first
//! bytes of stderr, before any output of the command. Once the command has started (any
//! other byte on stdout or stderr), the password is never sent. After the answer, a second
//! marker within sudo's own short reply ("Sorry, try again.") means the password was
//! refused: the caller closes stdin so that sudo fails instead of waiting. Pure byte
//! handling: no I/O here.

use crate::target::shell_quote;
use std::borrow::Cow;

/// What the session should do after a stderr chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    /// sudo asks: send the password (and a newline), once.
    Answer,
    /// sudo asks again: the password was refused; close stdin so that sudo gives up.
    CloseStdin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing but (a part of) the marker seen yet.
    Waiting,
    /// Answered; `n` stderr bytes seen since.
    Answered(usize),
    /// The command runs (or sudo did not ask): everything passes through.
    Done,
}

/// How many stderr bytes after the answer may still be sudo's own reply.
const SUDO_REPLY: usize = 256;

/// `command` wrapped to run through sudo as `user`: `-S` with prun's `prompt` marker when a
/// password will be fed, else `-n` (fail at once rather than wait for a password).
pub fn sudo_wrap(command: &str, user: &str, prompt: Option<&str>) -> String {
    let mode = if let Some(prompt) = prompt {
        format!("-S -p {}", shell_quote(prompt))
    } else {
        "-n".to_string()
    };
    format!(
        "sudo {mode} -u {} -- sh -c {}",
        shell_quote(user),
        shell_quote(command)
    )
}

/// A per-run random prompt marker for `sudo -p`.
pub fn random_marker() -> String {
    let mut b = [0u8; 12];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // no entropy source: the position rule still protects the password
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b.copy_from_slice(&t.to_le_bytes()[..12]);
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("[prun:sudo:{hex}]")
}

/// The prompt filter for one command.
pub struct SudoFilter {
    marker: Vec<u8>,
    state: State,
    /// stderr bytes held back: they may be the start of the marker
    carry: Vec<u8>,
}

impl SudoFilter {
    pub fn new(marker: &str) -> SudoFilter {
        SudoFilter {
            marker: marker.as_bytes().to_vec(),
            state: State::Waiting,
            carry: Vec::new(),
        }
    }

    /// True while sudo may still ask (stdin for the command is held back meanwhile).
    pub fn waiting(&self) -> bool {
        self.state == State::Waiting
    }

    /// Output on stdout: the command has started, so no prompt is believed from now on.
    /// Returns held-back stderr bytes to pass on.
    pub fn stdout_seen(&mut self) -> Vec<u8> {
        self.state = State::Done;
        std::mem::take(&mut self.carry)
    }

    /// Give up waiting (sudo did not ask in time): held-back bytes to pass on.
    pub fn finish(&mut self) -> Vec<u8> {
        if self.state == State::Waiting {
            self.state = State::Done;
        }
        std::mem::take(&mut self.carry)
    }

    /// A stderr chunk: what of it to pass on as output, and what to do.
    pub fn stderr<'a>(&mut self, chunk: &'a [u8]) -> (Cow<'a, [u8]>, Action) {
        let data: Cow<'a, [u8]> = if self.carry.is_empty() {
            Cow::Borrowed(chunk)
        } else {
            let mut v = std::mem::take(&mut self.carry);
            v.extend_from_slice(chunk);
            Cow::Owned(v)
        };
        match self.state {
            State::Done => (data, Action::None),
            State::Waiting => {
                if let Some(rest) = data.strip_prefix(self.marker.as_slice()) {
                    self.state = State::Answered(rest.len());
                    return (Cow::Owned(rest.to_vec()), Action::Answer);
                }
                if self.marker.starts_with(&data) {
                    self.carry = data.into_owned();
                    return (Cow::Borrowed(&[]), Action::None);
                }
                // the first stderr bytes are not the marker: sudo did not ask
                self.state = State::Done;
                (data, Action::None)
            }
            State::Answered(seen) => {
                let seen = seen + chunk.len();
                if seen > SUDO_REPLY + self.marker.len() {
                    self.state = State::Done;
                    return (data, Action::None);
                }
                self.state = State::Answered(seen);
                if let Some(at) = find(&data, &self.marker) {
                    self.state = State::Done;
                    let mut v = data[..at].to_vec();
                    v.extend_from_slice(&data[at + self.marker.len()..]);
                    return (Cow::Owned(v), Action::CloseStdin);
                }
                let keep = prefix_tail(&data, &self.marker);
                if keep > 0 {
                    self.carry = data[data.len() - keep..].to_vec();
                    let pass = data.len() - keep;
                    return match data {
                        Cow::Borrowed(b) => (Cow::Borrowed(&b[..pass]), Action::None),
                        Cow::Owned(mut v) => {
                            v.truncate(pass);
                            (Cow::Owned(v), Action::None)
                        }
                    };
                }
                (data, Action::None)
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The length of the longest tail of `hay` that is a proper prefix of `needle`.
fn prefix_tail(hay: &[u8], needle: &[u8]) -> usize {
    (1..needle.len().min(hay.len() + 1))
        .rev()
        .find(|&k| hay.ends_with(&needle[..k]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "[prun:sudo:0123]";

    fn feed(f: &mut SudoFilter, chunk: &[u8]) -> (Vec<u8>, Action) {
        let (out, a) = f.stderr(chunk);
        (out.into_owned(), a)
    }

    #[test]
    fn markers_are_random() {
        assert_ne!(random_marker(), random_marker());
        assert!(random_marker().starts_with("[prun:sudo:"));
    }

    #[test]
    fn the_prompt_is_answered_only_as_the_first_stderr_bytes() {
        let mut f = SudoFilter::new(M);
        assert_eq!(feed(&mut f, M.as_bytes()), (vec![], Action::Answer));
        assert_eq!(
            feed(&mut f, b"hello\n"),
            (b"hello\n".to_vec(), Action::None)
        );

        // split across chunks
        let mut f = SudoFilter::new(M);
        assert_eq!(feed(&mut f, b"[prun:su"), (vec![], Action::None));
        assert_eq!(feed(&mut f, b"do:0123]x"), (b"x".to_vec(), Action::Answer));

        // output first: the marker later is the command's, never answered
        let mut f = SudoFilter::new(M);
        assert_eq!(feed(&mut f, b"warming up\n").1, Action::None);
        let (out, a) = feed(&mut f, M.as_bytes());
        assert_eq!((out.as_slice(), a), (M.as_bytes(), Action::None));

        // stdout first: same
        let mut f = SudoFilter::new(M);
        assert!(f.stdout_seen().is_empty());
        assert_eq!(feed(&mut f, M.as_bytes()).1, Action::None);
        assert!(!f.waiting());
    }

    #[test]
    fn a_second_prompt_right_after_the_answer_closes_stdin_once() {
        let mut f = SudoFilter::new(M);
        assert_eq!(feed(&mut f, M.as_bytes()).1, Action::Answer);
        let mut again = b"Sorry, try again.\n".to_vec();
        again.extend_from_slice(M.as_bytes());
        let (out, a) = feed(&mut f, &again);
        assert_eq!(
            (out.as_slice(), a),
            (&b"Sorry, try again.\n"[..], Action::CloseStdin)
        );
        // and never again
        assert_eq!(feed(&mut f, M.as_bytes()).1, Action::None);

        // long after the answer, a marker is the command's output
        let mut f = SudoFilter::new(M);
        assert_eq!(feed(&mut f, M.as_bytes()).1, Action::Answer);
        assert_eq!(feed(&mut f, &[b'.'; 400]).1, Action::None);
        let (out, a) = feed(&mut f, M.as_bytes());
        assert_eq!((out.as_slice(), a), (M.as_bytes(), Action::None));
    }

    #[test]
    fn held_back_bytes_are_released() {
        let mut f = SudoFilter::new(M);
        assert_eq!(feed(&mut f, b"[prun").0, b"");
        assert_eq!(f.finish(), b"[prun");
        let mut f = SudoFilter::new(M);
        assert_eq!(feed(&mut f, b"[pr").0, b"");
        assert_eq!(f.stdout_seen(), b"[pr");
    }
}
