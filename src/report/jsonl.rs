//! `--output json`: JSON Lines on stdout, one event per line, each with a `type`:
//! `run_start`, `host_start`, `output`, `host_end`, `summary` (schema `version` in
//! `run_start`). Output is lossless: each `output` event carries one chunk as it arrived, as
//! `text` when it is valid UTF-8, else as base64 in `bytes`; concatenating a host's chunks of
//! one stream rebuilds it byte-exact.

use super::summary::Summary;
use super::timing;
use crate::event::{Event, Printer, Stream};
use base64::Engine;
use serde_json::json;
use std::io::{self, Write};

/// Schema version of the JSON Lines events.
pub const SCHEMA_VERSION: u32 = 1;

pub struct JsonPrinter<W: Write> {
    out: W,
    /// The run so far: the hosts' names, and the closing `summary` event.
    summary: Summary,
}

impl<W: Write> JsonPrinter<W> {
    pub fn new(out: W) -> Self {
        JsonPrinter {
            out,
            summary: Summary::default(),
        }
    }

    fn line(&mut self, v: serde_json::Value) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, &v).map_err(io::Error::other)?;
        self.out.write_all(b"\n")
    }
}

impl<W: Write> Printer for JsonPrinter<W> {
    fn handle(&mut self, ev: &Event) -> io::Result<()> {
        self.summary.handle(ev);
        match ev {
            Event::RunStarted {
                hosts,
                command,
                parallel,
                started,
                ..
            } => {
                let hosts: Vec<_> = hosts
                    .iter()
                    .map(|h| {
                        let mut v = json!({"name": h.name, "address": h.address, "port": h.port, "user": h.user});
                        if let (Some(b), Some(o)) = (h.batch, v.as_object_mut()) {
                            o.insert("batch".into(), json!(b));
                        }
                        v
                    })
                    .collect();
                self.line(json!({
                    "type": "run_start",
                    "version": SCHEMA_VERSION,
                    "prun_version": env!("CARGO_PKG_VERSION"),
                    "command": command,
                    "parallel": parallel,
                    "started": humantime::format_rfc3339_micros(*started).to_string(),
                    "hosts": hosts,
                }))
            }
            Event::HostStarted { host } => {
                let name = self.summary.hosts[*host].name.clone();
                self.line(json!({"type": "host_start", "host": name}))
            }
            Event::Output { host, stream, data } => {
                let name = self.summary.hosts[*host].name.clone();
                let stream = match stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                };
                let v = match std::str::from_utf8(data) {
                    Ok(text) => {
                        json!({"type": "output", "host": name, "stream": stream, "text": text})
                    }
                    Err(_) => json!({
                        "type": "output",
                        "host": name,
                        "stream": stream,
                        "bytes": base64::engine::general_purpose::STANDARD.encode(data),
                    }),
                };
                self.line(v)
            }
            Event::HostFinished { host, result } => {
                let rec = timing::host_json(&self.summary.hosts[*host], result);
                let mut v = json!({"type": "host_end"});
                if let (Some(obj), serde_json::Value::Object(fields)) = (v.as_object_mut(), rec) {
                    obj.insert("host".into(), json!(self.summary.hosts[*host].name));
                    obj.extend(fields);
                }
                self.line(v)
            }
            // the closing `summary` event, from the run's collected results
            Event::RunFinished { .. } => {
                let mut line = json!({"type": "summary"});
                if let (Some(obj), serde_json::Value::Object(fields)) =
                    (line.as_object_mut(), timing::summary_json(&self.summary))
                {
                    obj.extend(fields);
                }
                self.line(line)
            }
            Event::BatchStarted {
                batch,
                batches,
                hosts,
            } => self.line(
                json!({"type": "batch_start", "batch": batch, "batches": batches, "hosts": hosts}),
            ),
            // progress only: the byte counts are in host_end; questions are asked on the
            // terminal
            Event::Warning { .. } | Event::Transferred { .. } | Event::Question { .. } => Ok(()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Status;
    use crate::event::fixtures::{end, finished, out, start};

    #[test]
    fn json_lines_carry_every_event_and_a_closing_summary() {
        let mut buf = Vec::new();
        {
            let mut p = JsonPrinter::new(&mut buf);
            for ev in [
                start(&["web01", "web02"]),
                Event::HostStarted { host: 0 },
                out(0, Stream::Stdout, b"hello\n"),
                out(0, Stream::Stderr, &[0xff, 0x00]),
                finished(0, Status::Ok),
                finished(1, Status::Failed),
                end(),
            ] {
                p.handle(&ev).unwrap();
            }
            p.flush().unwrap();
        }
        let lines: Vec<serde_json::Value> = String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "run_start",
                "host_start",
                "output",
                "output",
                "host_end",
                "host_end",
                "summary"
            ]
        );
        assert_eq!(lines[0]["version"], SCHEMA_VERSION);
        assert_eq!(lines[2]["text"], "hello\n");
        assert_eq!(lines[3]["bytes"], "/wA=");
        assert_eq!(lines[5]["host"], "web02");
        assert_eq!(lines[6]["counts"]["ok"], 1);
        assert_eq!(lines[6]["counts"]["failed"], 1);
    }
}
