//! `prun bench` results: per concurrency level, the median and p90 of each SSH operation,
//! as a table, as CSV, and as an SVG chart (plotters) of median ms per operation against
//! concurrency — the chart of the 2017 study this project grew from.

use super::stats::percentile;
use crate::event::{HostResult, Phase, Status};
use crate::text::fmt_duration;
use plotters::prelude::*;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

/// The operations the study timed, with how to read each from a host's timings; the
/// handshake (key exchange) too, which explains most of `total`'s rise with concurrency.
pub const OPS: [&str; 7] = [
    "handshake",
    "auth",
    "channel_open",
    "exec",
    "read",
    "close",
    "total",
];

fn op_time(r: &HostResult, op: &str) -> Option<Duration> {
    match op {
        "handshake" => r.timings.get(Phase::Handshake),
        "auth" => r.timings.get(Phase::Auth),
        "channel_open" => r.timings.get(Phase::ChannelOpen),
        "exec" => r.timings.get(Phase::Exec),
        "read" => r.timings.get(Phase::Read),
        "close" => r.timings.get(Phase::Close),
        _ => Some(r.timings.total),
    }
}

/// One concurrency level's numbers.
#[derive(Debug, Clone)]
pub struct Level {
    /// The engine that ran it (`threads`, `events`).
    pub engine: &'static str,
    pub level: u32,
    pub sessions: usize,
    pub ok: usize,
    pub wall: Duration,
    /// (median, p90) per entry of [`OPS`], over the sessions that succeeded.
    pub ops: Vec<Option<(Duration, Duration)>>,
}

impl Level {
    /// Summarise the sessions of one level.
    pub fn from_results(
        engine: &'static str,
        level: u32,
        results: &[HostResult],
        wall: Duration,
    ) -> Level {
        let ok: Vec<&HostResult> = results.iter().filter(|r| r.status == Status::Ok).collect();
        let ops = OPS
            .iter()
            .map(|op| {
                let mut v: Vec<Duration> = ok.iter().filter_map(|r| op_time(r, op)).collect();
                v.sort_unstable();
                Some((percentile(&v, 50.0)?, percentile(&v, 90.0)?))
            })
            .collect();
        Level {
            engine,
            level,
            sessions: results.len(),
            ok: ok.len(),
            wall,
            ops,
        }
    }

    /// Successful sessions per second of wall time.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

fn ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

/// The table, for people.
pub fn table(levels: &[Level]) -> String {
    let mut s = format!(
        "{:>7} {:>6} {:>9} {:>9}",
        "engine", "conc", "sessions", "sess/s"
    );
    for op in OPS {
        s.push_str(&format!(" {:>21}", format!("{op} p50/p90")));
    }
    s.push('\n');
    for l in levels {
        s.push_str(&format!(
            "{:>7} {:>6} {:>9} {:>9.1}",
            l.engine,
            l.level,
            format!("{}/{}", l.ok, l.sessions),
            l.rate()
        ));
        for o in &l.ops {
            let cell = match o {
                Some((p50, p90)) => format!("{}/{}", fmt_duration(*p50), fmt_duration(*p90)),
                None => "-".into(),
            };
            s.push_str(&format!(" {cell:>21}"));
        }
        s.push('\n');
    }
    s
}

/// The table as CSV: one row per level, milliseconds with microsecond precision.
pub fn write_csv(levels: &[Level], w: &mut dyn Write) -> io::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    let mut header = vec![
        "engine".to_string(),
        "concurrency".to_string(),
        "sessions".into(),
        "ok".into(),
        "wall_s".into(),
        "sessions_per_s".into(),
    ];
    for op in OPS {
        header.push(format!("{op}_p50_ms"));
        header.push(format!("{op}_p90_ms"));
    }
    out.write_record(&header).map_err(io::Error::other)?;
    for l in levels {
        let mut row = vec![
            l.engine.to_string(),
            l.level.to_string(),
            l.sessions.to_string(),
            l.ok.to_string(),
            format!("{:.3}", l.wall.as_secs_f64()),
            format!("{:.2}", l.rate()),
        ];
        for o in &l.ops {
            match o {
                Some((p50, p90)) => {
                    row.push(format!("{:.3}", ms(*p50)));
                    row.push(format!("{:.3}", ms(*p90)));
                }
                None => {
                    row.push(String::new());
                    row.push(String::new());
                }
            }
        }
        out.write_record(&row).map_err(io::Error::other)?;
    }
    out.flush()
}

/// Draw median ms per operation against concurrency, one line per operation.
pub fn write_svg(levels: &[Level], title: &str, path: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let x_max = levels.iter().map(|l| l.level).max().unwrap_or(1) as f64;
    let y_max = levels
        .iter()
        .flat_map(|l| l.ops.iter().flatten().map(|(p50, _)| ms(*p50)))
        .fold(1.0f64, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max * 1.05, 0f64..y_max * 1.1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("concurrent sessions")
        .y_desc("median time (ms)")
        .draw()
        .map_err(|e| err(&e))?;
    let colors = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(90, 90, 90),
    ];
    for (i, op) in OPS.iter().enumerate() {
        let color = colors[i % colors.len()];
        let points: Vec<(f64, f64)> = levels
            .iter()
            .filter_map(|l| l.ops[i].map(|(p50, _)| (l.level as f64, ms(p50))))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(*op)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(total_ms: u64, ok: bool) -> HostResult {
        let mut r = HostResult::new(if ok { Status::Ok } else { Status::Error });
        for p in Phase::ALL {
            r.timings.set(p, Duration::from_millis(total_ms / 10));
        }
        r.timings.total = Duration::from_millis(total_ms);
        r
    }

    #[test]
    fn level_stats_table_csv_svg() {
        let rs: Vec<HostResult> = (1..=10).map(|i| res(i * 10, i != 10)).collect();
        let l = Level::from_results("events", 5, &rs, Duration::from_secs(1));
        assert_eq!((l.sessions, l.ok), (10, 9));
        assert_eq!(
            l.ops[6],
            Some((Duration::from_millis(50), Duration::from_millis(90)))
        );
        assert!((l.rate() - 9.0).abs() < 1e-9);
        let t = table(std::slice::from_ref(&l));
        assert!(
            t.contains("auth p50/p90") && t.contains("handshake p50/p90"),
            "{t}"
        );
        assert!(t.contains(" events "), "{t}");
        assert!(t.contains("9/10"), "{t}");
        let mut out = Vec::new();
        write_csv(std::slice::from_ref(&l), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "engine,concurrency,sessions,ok,wall_s,sessions_per_s,handshake_p50_ms"
            )
        );
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("events,5,10,9,1.000,9.00,5.000,9.000")
        );
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("c.svg");
        write_svg(&[l.clone(), Level { level: 10, ..l }], "t", &svg).unwrap();
        let s = std::fs::read_to_string(&svg).unwrap();
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("channel_open") && s.contains("concurrent sessions"));
    }
}
