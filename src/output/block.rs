//! `--output block` (pssh `-i`) and `--output gather` (clush `-b`, dshbak `-c`): output held
//! per host in bounded [`Spool`]s. Block prints each host's output as one contiguous block
//! under a header when the host finishes; gather prints, at the end, one block per group of
//! hosts with byte-identical stdout, stderr and outcome, the group's hosts folded into range
//! form (`web[01-03,07],db1`), largest group first. Stdout blocks go to stdout, stderr blocks
//! to stderr under the same header.

use super::sanitize::Sanitizer;
use super::spool::{SharedSpill, Spool, cap_for};
use crate::event::{Event, HostResult, Printer, Status, Stream};
use crate::inventory::range::fold;
use crate::text::fmt_duration;
use std::collections::HashMap;
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Block,
    Gather,
}

pub struct BlockPrinter<O: Write, E: Write> {
    mode: Mode,
    out: O,
    err: E,
    color: bool,
    sanitize: [Sanitizer; 2],
    names: Vec<String>,
    spools: Vec<[Spool; 2]>,
    results: Vec<Option<HostResult>>,
}

/// One line on how a host ended, for block headers.
fn outcome(r: &HostResult) -> String {
    let mut s = r.status.name().to_string();
    if let Some(f) = &r.failure {
        s.push_str(&format!(" · {} {}", f.phase, f.kind));
    } else if let Some(sig) = &r.signal {
        s.push_str(&format!(" · signal {sig}"));
    } else if let Some(c) = r.exit_code {
        s.push_str(&format!(" · exit {c}"));
    }
    s
}

impl<O: Write, E: Write> BlockPrinter<O, E> {
    /// `sanitize`: escape control sequences for (stdout, stderr) — set for terminals only.
    pub fn new(mode: Mode, out: O, err: E, color: bool, sanitize: (bool, bool)) -> Self {
        BlockPrinter {
            mode,
            out,
            err,
            color,
            sanitize: [Sanitizer::new(sanitize.0), Sanitizer::new(sanitize.1)],
            names: Vec::new(),
            spools: Vec::new(),
            results: Vec::new(),
        }
    }

    fn header(&self, title: &str, detail: &str) -> Vec<u8> {
        if self.color {
            format!("\x1b[1;36m── {title} ──\x1b[0m \x1b[2m{detail}\x1b[0m\n").into_bytes()
        } else {
            format!("── {title} ── {detail}\n").into_bytes()
        }
    }

    /// Write one block (header + the spool of `host`'s `stream`) to its writer.
    fn block(&mut self, host: usize, stream: Stream, header: &[u8]) -> io::Result<()> {
        let i = stream as usize;
        let spool = &mut self.spools[host][i];
        if spool.is_empty() && stream == Stream::Stderr {
            return Ok(());
        }
        let newline = spool.is_empty() || spool.ends_with_newline()?;
        let w: &mut dyn Write = match stream {
            Stream::Stdout => &mut self.out,
            Stream::Stderr => &mut self.err,
        };
        w.write_all(header)?;
        // Stream the spool (it may be a spilled file) through the sanitiser, never whole.
        spool.copy_to(&mut Sanitizing {
            w,
            s: self.sanitize[i],
        })?;
        if !newline {
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    pub fn handle(&mut self, ev: &Event) -> io::Result<()> {
        match ev {
            Event::RunStarted { hosts, .. } => {
                let cap = cap_for(hosts.len());
                self.names = hosts.iter().map(|h| h.name.clone()).collect();
                // gather keeps every host's output to the end: one shared spill file, so the
                // descriptors it needs do not grow with the number of hosts
                let shared = SharedSpill::default();
                let gather = self.mode == Mode::Gather;
                let spool = || match gather {
                    true => Spool::sharing(cap, &shared),
                    false => Spool::with_cap(cap),
                };
                self.spools = (0..hosts.len()).map(|_| [spool(), spool()]).collect();
                self.results = vec![None; hosts.len()];
            }
            Event::Output { host, stream, data } => {
                self.spools[*host][*stream as usize].write(data)?;
            }
            Event::HostFinished { host, result } => {
                if self.mode == Mode::Block {
                    let detail = format!(
                        "{} · {}",
                        outcome(result),
                        fmt_duration(result.timings.total)
                    );
                    let header = self.header(&self.names[*host].clone(), &detail);
                    self.block(*host, Stream::Stdout, &header)?;
                    self.block(*host, Stream::Stderr, &header)?;
                    self.spools[*host] = Default::default();
                } else {
                    self.results[*host] = Some((**result).clone());
                }
            }
            Event::RunFinished { .. } if self.mode == Mode::Gather => self.gather()?,
            _ => {}
        }
        Ok(())
    }

    fn gather(&mut self) -> io::Result<()> {
        type Key = ([u8; 32], [u8; 32], Status, Option<i32>, String);
        let mut groups: HashMap<Key, Vec<usize>> = HashMap::new();
        for (i, r) in self.results.iter().enumerate() {
            let outcome = r.as_ref().map_or("cancelled".to_string(), outcome);
            let key = (
                self.spools[i][0].digest(),
                self.spools[i][1].digest(),
                r.as_ref().map_or(Status::Cancelled, |r| r.status),
                r.as_ref().and_then(|r| r.exit_code),
                outcome,
            );
            groups.entry(key).or_default().push(i);
        }
        let mut groups: Vec<(Key, Vec<usize>)> = groups.into_iter().collect();
        groups.sort_by_key(|(_, members)| (std::cmp::Reverse(members.len()), members[0]));
        for (key, members) in groups {
            let names: Vec<&str> = members.iter().map(|&i| self.names[i].as_str()).collect();
            let title = format!("{} ({})", fold(&names), members.len());
            let header = self.header(&title, &key.4);
            let first = members[0];
            self.block(first, Stream::Stdout, &header)?;
            self.block(first, Stream::Stderr, &header)?;
            for &m in &members {
                self.spools[m] = Default::default();
            }
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.err.flush()
    }
}

/// A writer that sanitises what passes through it (see [`Sanitizer`]).
struct Sanitizing<'a> {
    w: &'a mut dyn Write,
    s: Sanitizer,
}

impl Write for Sanitizing<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.w.write_all(&self.s.clean(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

impl<O: Write, E: Write> Printer for BlockPrinter<O, E> {
    fn handle(&mut self, ev: &Event) -> io::Result<()> {
        BlockPrinter::handle(self, ev)
    }
    fn flush(&mut self) -> io::Result<()> {
        BlockPrinter::flush(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::fixtures::{end, finished, out, start};

    fn run(mode: Mode, events: &[Event]) -> (String, String) {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        {
            let mut p = BlockPrinter::new(mode, &mut o, &mut e, false, (false, false));
            for ev in events {
                Printer::handle(&mut p, ev).unwrap();
            }
            Printer::flush(&mut p).unwrap();
        }
        (String::from_utf8(o).unwrap(), String::from_utf8(e).unwrap())
    }

    #[test]
    fn block_prints_each_host_whole_when_it_ends() {
        let events = [
            start(&["web01", "web02"]),
            out(0, Stream::Stdout, b"a1\n"),
            out(1, Stream::Stdout, b"b1\n"),
            out(0, Stream::Stdout, b"a2"),
            out(1, Stream::Stderr, b"oops\n"),
            finished(1, Status::Failed),
            finished(0, Status::Ok),
            end(),
        ];
        let (o, e) = run(Mode::Block, &events);
        assert_eq!(
            o,
            "── web02 ── failed · exit 1 · 5.00ms\nb1\n── web01 ── ok · exit 0 · 5.00ms\na1\na2\n"
        );
        assert_eq!(e, "── web02 ── failed · exit 1 · 5.00ms\noops\n");
    }

    #[test]
    fn gather_groups_identical_output_in_range_form() {
        let mut events = vec![start(&["web01", "web02", "web03", "db1"])];
        for h in 0..3 {
            events.push(out(h, Stream::Stdout, b"same\n"));
        }
        events.push(out(3, Stream::Stdout, b"other\n"));
        for h in 0..4 {
            events.push(finished(h, Status::Ok));
        }
        events.push(end());
        let (o, _) = run(Mode::Gather, &events);
        assert_eq!(
            o,
            "── web[01-03] (3) ── ok · exit 0\nsame\n── db1 (1) ── ok · exit 0\nother\n"
        );
    }
}
