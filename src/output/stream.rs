//! `--output stream`: each complete remote line as it arrives, prefixed with the host
//! (`web01 | …`, host column aligned). Remote stdout goes to stdout, remote stderr to stderr.
//! Only partial lines are held per host; a line longer than [`MAX_LINE`] is emitted in pieces.
//! A host's unterminated last line is emitted (with a newline) when the host finishes.

use super::sanitize::Sanitizer;
use crate::event::{Event, Printer, Stream};
use std::io::{self, Write};

/// Longest piece of a line held before it is written out anyway.
pub const MAX_LINE: usize = 64 * 1024;

const COLORS: [&str; 6] = [
    "\x1b[36m", "\x1b[32m", "\x1b[33m", "\x1b[35m", "\x1b[34m", "\x1b[96m",
];
const RESET: &str = "\x1b[0m";

/// Line-prefixing printer for remote output.
pub struct StreamPrinter<O: Write, E: Write> {
    out: O,
    err: E,
    color: bool,
    sanitize: [Sanitizer; 2],
    prefixes: Vec<Vec<u8>>,
    /// Per host: unterminated stdout and stderr bytes.
    partial: Vec<[Vec<u8>; 2]>,
    /// stdout was closed by the reader (`| head`): drop further stdout quietly.
    out_closed: bool,
}

impl<O: Write, E: Write> StreamPrinter<O, E> {
    /// `sanitize`: escape control sequences for (stdout, stderr) — set for terminals only.
    pub fn new(out: O, err: E, color: bool, sanitize: (bool, bool)) -> Self {
        StreamPrinter {
            out,
            err,
            color,
            sanitize: [Sanitizer::new(sanitize.0), Sanitizer::new(sanitize.1)],
            prefixes: Vec::new(),
            partial: Vec::new(),
            out_closed: false,
        }
    }

    /// Handle one event; I/O errors other than a closed stdout are returned.
    pub fn handle(&mut self, ev: &Event) -> io::Result<()> {
        match ev {
            Event::RunStarted { hosts, .. } => {
                let width = hosts
                    .iter()
                    .map(|h| h.name.chars().count())
                    .max()
                    .unwrap_or(0);
                self.prefixes = hosts
                    .iter()
                    .enumerate()
                    .map(|(i, h)| {
                        let pad = width - h.name.chars().count();
                        if self.color {
                            format!(
                                "{}{}{RESET}{} \x1b[2m|{RESET} ",
                                COLORS[i % COLORS.len()],
                                h.name,
                                " ".repeat(pad)
                            )
                        } else {
                            format!("{}{} | ", h.name, " ".repeat(pad))
                        }
                        .into_bytes()
                    })
                    .collect();
                self.partial = vec![[Vec::new(), Vec::new()]; hosts.len()];
            }
            Event::Output { host, stream, data } => self.output(*host, *stream, data)?,
            Event::HostFinished { host, .. } => {
                for stream in [Stream::Stdout, Stream::Stderr] {
                    let rest = std::mem::take(&mut self.partial[*host][stream as usize]);
                    if !rest.is_empty() {
                        self.write_line(*host, stream, &rest, true)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn output(&mut self, host: usize, stream: Stream, data: &[u8]) -> io::Result<()> {
        let mut rest = data;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            let line = &rest[..=nl];
            let held = std::mem::take(&mut self.partial[host][stream as usize]);
            if held.is_empty() {
                self.write_line(host, stream, line, false)?;
            } else {
                let mut joined = held;
                joined.extend_from_slice(line);
                self.write_line(host, stream, &joined, false)?;
            }
            rest = &rest[nl + 1..];
        }
        if !rest.is_empty() {
            self.partial[host][stream as usize].extend_from_slice(rest);
            while self.partial[host][stream as usize].len() >= MAX_LINE {
                let piece: Vec<u8> = self.partial[host][stream as usize]
                    .drain(..MAX_LINE)
                    .collect();
                self.write_line(host, stream, &piece, true)?;
            }
        }
        Ok(())
    }

    /// Write one output line with its host prefix (and a newline when the piece lacks one).
    fn write_line(
        &mut self,
        host: usize,
        stream: Stream,
        line: &[u8],
        add_newline: bool,
    ) -> io::Result<()> {
        if stream == Stream::Stdout && self.out_closed {
            return Ok(());
        }
        // One consumer thread writes, into buffered writers: prefix and line go in as separate
        // writes without a per-line allocation, and still never interleave with another host.
        let w: &mut dyn Write = match stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        let r = w
            .write_all(&self.prefixes[host])
            .and_then(|()| w.write_all(&self.sanitize[stream as usize].clean(line)))
            .and_then(|()| {
                if add_newline {
                    w.write_all(b"\n")
                } else {
                    Ok(())
                }
            });
        match r {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe && stream == Stream::Stdout => {
                self.out_closed = true;
                Ok(())
            }
            other => other,
        }
    }

    /// Flush both writers (called after each batch of events).
    pub fn flush(&mut self) -> io::Result<()> {
        match self.out.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => self.out_closed = true,
            other => other?,
        }
        self.err.flush()
    }
}

impl<O: Write, E: Write> Printer for StreamPrinter<O, E> {
    fn handle(&mut self, ev: &Event) -> io::Result<()> {
        StreamPrinter::handle(self, ev)
    }
    fn flush(&mut self) -> io::Result<()> {
        StreamPrinter::flush(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::fixtures::{out, start};
    use crate::event::{HostResult, Status};

    #[test]
    fn whole_lines_prefixed_and_aligned() {
        let mut p = StreamPrinter::new(Vec::new(), Vec::new(), false, (false, false));
        p.handle(&start(&["a", "web01"])).unwrap();
        p.handle(&out(0, Stream::Stdout, b"hel")).unwrap();
        p.handle(&out(1, Stream::Stdout, b"one\ntw")).unwrap();
        p.handle(&out(0, Stream::Stdout, b"lo\n")).unwrap();
        p.handle(&out(1, Stream::Stderr, b"oops\n")).unwrap();
        p.handle(&Event::HostFinished {
            host: 1,
            result: Box::new(HostResult::new(Status::Ok)),
        })
        .unwrap();
        assert_eq!(
            String::from_utf8(p.out.clone()).unwrap(),
            "web01 | one\na     | hello\nweb01 | tw\n"
        );
        assert_eq!(String::from_utf8(p.err.clone()).unwrap(), "web01 | oops\n");
    }

    #[test]
    fn long_lines_are_cut_into_bounded_pieces() {
        let mut p = StreamPrinter::new(Vec::new(), Vec::new(), false, (false, false));
        p.handle(&start(&["h"])).unwrap();
        let big = vec![b'x'; MAX_LINE * 2 + 10];
        p.handle(&out(0, Stream::Stdout, &big)).unwrap();
        assert_eq!(p.partial[0][0].len(), 10);
        assert_eq!(p.out.len(), 2 * (MAX_LINE + 5));
    }

    #[test]
    fn terminal_output_is_sanitised() {
        let mut p = StreamPrinter::new(Vec::new(), Vec::new(), false, (true, false));
        p.handle(&start(&["h"])).unwrap();
        p.handle(&out(0, Stream::Stdout, b"\x1b[2Jhi\n")).unwrap();
        p.handle(&out(0, Stream::Stderr, b"\x1b[2Jhi\n")).unwrap();
        assert_eq!(p.out, b"h | ^[[2Jhi\n");
        assert_eq!(p.err, b"h | \x1b[2Jhi\n");
    }

    #[test]
    fn binary_bytes_pass_through() {
        let mut p = StreamPrinter::new(Vec::new(), Vec::new(), false, (false, false));
        p.handle(&start(&["h"])).unwrap();
        p.handle(&out(0, Stream::Stdout, b"\xff\x00\xfe\n"))
            .unwrap();
        assert_eq!(p.out, b"h | \xff\x00\xfe\n");
    }
}
