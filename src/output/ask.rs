//! The question between batches (`--canary`, `--pause ask`), put on the controlling
//! terminal (`/dev/tty`, so it works with stdout and stdin redirected) and answered there.
//! The wait for the answer also ends when the run is cancelled (Ctrl-C at the prompt).

use crate::cancel::Cancel;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;

/// The controlling terminal, if prun has one.
pub fn terminal() -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open("/dev/tty")
}

/// Whether `line` says yes (`y`, `yes`, any case); anything else, and nothing, is no.
pub fn is_yes(line: &str) -> bool {
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Write `text` (the question, ending in a prompt) on the terminal and read one line.
/// `Ok(false)` when the answer is not yes, when the terminal closes, or on cancel.
pub fn ask(text: &str, cancel: &Cancel) -> io::Result<bool> {
    let mut tty = terminal()?;
    tty.write_all(text.as_bytes())?;
    tty.flush()?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: tty.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: cancel.fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        crate::ssh::io::poll_fds(&mut fds, std::time::Duration::from_secs(3600))?;
        if fds[1].revents != 0 {
            let _ = tty.write_all(b"\n");
            return Ok(false);
        }
        if fds[0].revents == 0 {
            continue;
        }
        match tty.read(&mut byte) {
            Ok(0) => return Ok(false),
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if line.len() > 1024 {
            break;
        }
    }
    Ok(is_yes(&String::from_utf8_lossy(&line)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_yes_is_yes() {
        for y in ["y", "Y", "yes", " YES \r"] {
            assert!(super::is_yes(y), "{y:?}");
        }
        for n in ["", "n", "no", "yes please", "1"] {
            assert!(!super::is_yes(n), "{n:?}");
        }
    }
}
