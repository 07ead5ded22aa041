//! Text helpers shared by every printer and report: the short duration style of tables
//! ([`fmt_duration`]), and making text from the network safe to show: control characters (C0 other than the kept
//! ones, DEL, and the C1 controls U+0080–U+009F) become visible (`^[`, `^M`, `^?`,
//! `\u{9b}`), so remote text cannot move the cursor, clear the screen or forge lines of
//! prun's own output. Used for remote output on terminals ([`crate::output::sanitize`]) and,
//! always, for every string a server chose that ends up in a host's result (exit-signal
//! names, remote file names and helper-command messages in failures and notes).

use std::borrow::Cow;
use std::time::Duration;

/// `data` with control characters made visible; `\n` and `\t` kept when `keep_lines`.
pub fn escape(data: &[u8], keep_lines: bool) -> Cow<'_, [u8]> {
    let kept = |b: u8| keep_lines && (b == b'\n' || b == b'\t');
    let bad = |i: usize, b: u8| {
        (b < 0x20 && !kept(b))
            || b == 0x7f
            || (b == 0xc2 && data.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)))
    };
    if !data.iter().enumerate().any(|(i, &b)| bad(i, b)) {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + 16);
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        match b {
            _ if kept(b) => out.push(b),
            0x00..=0x1f => {
                out.push(b'^');
                out.push(b + 0x40);
            }
            0x7f => out.extend_from_slice(b"^?"),
            0xc2 if i + 1 < data.len() && (0x80..=0x9f).contains(&data[i + 1]) => {
                out.extend_from_slice(format!("\\u{{{:x}}}", data[i + 1]).as_bytes());
                i += 1;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// A server-chosen string as one safe line: every control character made visible.
pub fn one_line(s: &str) -> Cow<'_, str> {
    match escape(s.as_bytes(), false) {
        Cow::Borrowed(_) => Cow::Borrowed(s),
        // escaping only replaces ASCII controls and whole C1 sequences: still UTF-8
        Cow::Owned(v) => Cow::Owned(String::from_utf8_lossy(&v).into_owned()),
    }
}

/// [`one_line`] in place.
pub fn clean_in_place(s: &mut String) {
    if let Cow::Owned(c) = one_line(s) {
        *s = c;
    }
}

/// `0.42ms`, `12.3ms`, `1.25s`, `2m05s`: short, fixed style for tables.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}ms")
    } else if ms < 1000.0 {
        format!("{ms:.1}ms")
    } else if ms < 60_000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else {
        let s = d.as_secs();
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_escapes_everything_that_could_forge_output() {
        assert_eq!(one_line("TERM"), "TERM");
        assert_eq!(one_line("KILL\n  h2 ok\x1b[2J\r"), "KILL^J  h2 ok^[[2J^M");
        assert_eq!(one_line("a\tb\u{9b}c"), "a^Ib\\u{9b}c");
        assert_eq!(one_line("é"), "é");
        assert_eq!(&*escape(b"x\n\ty\x07", true), b"x\n\ty^G");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(Duration::from_micros(420)), "0.42ms");
        assert_eq!(
            fmt_duration(Duration::from_millis(12) + Duration::from_micros(340)),
            "12.3ms"
        );
        assert_eq!(fmt_duration(Duration::from_millis(1250)), "1.25s");
        assert_eq!(fmt_duration(Duration::from_secs(125)), "2m05s");
    }
}
