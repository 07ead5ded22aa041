//! Host range expansion: `web[01:04]`, `web[01-10]`, `db-[a:c]`, `node[1-3,7]`, `r[1:9:2]`.
//!
//! Pure string code, shared by the YAML inventory, plain host lists and `-H/--hosts`.

use std::fmt;

/// Expansion refuses to produce more names than this from one pattern.
pub const MAX_EXPANSION: usize = 1_000_000;

/// Why a range pattern could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeError {
    pub pattern: String,
    pub reason: String,
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad host range '{}': {}", self.pattern, self.reason)
    }
}

impl std::error::Error for RangeError {}

fn err(pattern: &str, reason: impl Into<String>) -> RangeError {
    RangeError {
        pattern: pattern.to_string(),
        reason: reason.into(),
    }
}

/// True when `s` contains a `[` and so would be expanded by [`expand`].
pub fn has_range(s: &str) -> bool {
    s.contains('[')
}

/// Expand every `[...]` group of `pattern` into the cartesian product of names, in order.
///
/// Inside brackets: comma-separated items, each a single value or `start:end` / `start-end`
/// with an optional `:step`. Numbers keep the zero padding of the start (`[01:10]` gives `01`
/// … `10`); letters range over single characters (`[a:c]`). A name without brackets expands
/// to itself.
pub fn expand(pattern: &str) -> Result<Vec<String>, RangeError> {
    let mut parts: Vec<Vec<String>> = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('[') {
        let close = rest[open..]
            .find(']')
            .map(|c| open + c)
            .ok_or_else(|| err(pattern, "'[' without a closing ']'"))?;
        if rest[..open].contains(']') {
            return Err(err(pattern, "']' without an opening '['"));
        }
        parts.push(vec![rest[..open].to_string()]);
        let inner = &rest[open + 1..close];
        if inner.contains('[') {
            return Err(err(pattern, "nested '['"));
        }
        parts.push(expand_bracket(pattern, inner)?);
        rest = &rest[close + 1..];
    }
    if rest.contains(']') {
        return Err(err(pattern, "']' without an opening '['"));
    }
    parts.push(vec![rest.to_string()]);

    let total = parts
        .iter()
        .try_fold(1usize, |acc, p| acc.checked_mul(p.len()))
        .filter(|n| *n <= MAX_EXPANSION)
        .ok_or_else(|| {
            err(
                pattern,
                format!("expands to more than {MAX_EXPANSION} names"),
            )
        })?;
    let mut out = Vec::with_capacity(total);
    out.push(String::new());
    for part in parts {
        if part.len() == 1 {
            for name in &mut out {
                name.push_str(&part[0]);
            }
            continue;
        }
        let mut next = Vec::with_capacity(out.len() * part.len());
        for prefix in &out {
            for p in &part {
                let mut s = String::with_capacity(prefix.len() + p.len());
                s.push_str(prefix);
                s.push_str(p);
                next.push(s);
            }
        }
        out = next;
    }
    Ok(out)
}

fn expand_bracket(pattern: &str, inner: &str) -> Result<Vec<String>, RangeError> {
    if inner.trim().is_empty() {
        return Err(err(pattern, "empty '[]'"));
    }
    let mut values = Vec::new();
    for item in inner.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(err(pattern, "empty item in '[...]'"));
        }
        let (bounds, step) = split_item(item);
        let step: usize = match step {
            None => 1,
            Some(s) => match s.parse() {
                Ok(n) if n > 0 => n,
                _ => return Err(err(pattern, format!("step '{s}' is not a positive number"))),
            },
        };
        match bounds {
            None => values.push(item.to_string()),
            Some((a, b)) => expand_span(pattern, a, b, step, &mut values)?,
        }
        if values.len() > MAX_EXPANSION {
            return Err(err(
                pattern,
                format!("expands to more than {MAX_EXPANSION} names"),
            ));
        }
    }
    Ok(values)
}

/// Split `a:b`, `a-b`, `a:b:step` into bounds and step; a single value has no bounds.
fn split_item(item: &str) -> (Option<(&str, &str)>, Option<&str>) {
    let colon: Vec<&str> = item.split(':').collect();
    match colon.len() {
        2 => return (Some((colon[0], colon[1])), None),
        3 => return (Some((colon[0], colon[1])), Some(colon[2])),
        _ => {}
    }
    if let Some((a, b)) = item.split_once('-') {
        return (Some((a, b)), None);
    }
    (None, None)
}

fn expand_span(
    pattern: &str,
    a: &str,
    b: &str,
    step: usize,
    out: &mut Vec<String>,
) -> Result<(), RangeError> {
    let is_num = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    let is_letter = |s: &str| s.len() == 1 && s.bytes().all(|c| c.is_ascii_alphabetic());
    if is_num(a) && is_num(b) {
        let start: u64 = a
            .parse()
            .map_err(|_| err(pattern, format!("'{a}' is too large")))?;
        let end: u64 = b
            .parse()
            .map_err(|_| err(pattern, format!("'{b}' is too large")))?;
        if start > end {
            return Err(err(pattern, format!("start {a} is after end {b}")));
        }
        if (end - start) / step as u64 > MAX_EXPANSION as u64 {
            return Err(err(
                pattern,
                format!("expands to more than {MAX_EXPANSION} names"),
            ));
        }
        let width = if a.len() > 1 && a.starts_with('0') {
            a.len()
        } else {
            0
        };
        // checked: a range ending near u64::MAX must not wrap around
        let mut n = Some(start);
        while let Some(v) = n.filter(|v| *v <= end) {
            out.push(format!("{v:0width$}"));
            n = v.checked_add(step as u64);
        }
        Ok(())
    } else if is_letter(a) && is_letter(b) {
        let (start, end) = (a.as_bytes()[0], b.as_bytes()[0]);
        if start.is_ascii_lowercase() != end.is_ascii_lowercase() {
            return Err(err(pattern, format!("'{a}' and '{b}' differ in case")));
        }
        if start > end {
            return Err(err(pattern, format!("start {a} is after end {b}")));
        }
        let mut c = start;
        while c <= end {
            out.push((c as char).to_string());
            c = match c.checked_add(step as u8) {
                Some(n) if step < 256 => n,
                _ => break,
            };
        }
        Ok(())
    } else {
        Err(err(
            pattern,
            format!("'{a}' to '{b}' is neither a number range nor a single-letter range"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_at_the_top_of_u64_do_not_wrap() {
        let max = u64::MAX;
        assert_eq!(
            expand(&format!("w[{max}-{max}]")).unwrap(),
            vec![format!("w{max}")]
        );
        let start = max - 2;
        assert_eq!(expand(&format!("w[{start}:{max}:2]")).unwrap().len(), 2);
        assert!(expand("w[1-18446744073709551616]").is_err());
        let e = expand("w[0-18446744073709551615]").unwrap_err();
        assert!(e.reason.contains("more than"), "{e}");
    }

    #[test]
    fn plain_name_is_itself() {
        assert_eq!(expand("web01").unwrap(), vec!["web01"]);
    }

    #[test]
    fn numeric_colon_and_dash_keep_padding() {
        assert_eq!(
            expand("web[01:04].example.com").unwrap(),
            vec![
                "web01.example.com",
                "web02.example.com",
                "web03.example.com",
                "web04.example.com"
            ]
        );
        assert_eq!(expand("web[8-10]").unwrap(), vec!["web8", "web9", "web10"]);
        assert_eq!(
            expand("web[08-10]").unwrap(),
            vec!["web08", "web09", "web10"]
        );
    }

    #[test]
    fn letters_lists_steps_and_products() {
        assert_eq!(expand("db-[a:c]").unwrap(), vec!["db-a", "db-b", "db-c"]);
        assert_eq!(
            expand("node[1-3,7]").unwrap(),
            vec!["node1", "node2", "node3", "node7"]
        );
        assert_eq!(expand("r[1:9:4]").unwrap(), vec!["r1", "r5", "r9"]);
        assert_eq!(expand("[a:b][1:2]").unwrap(), vec!["a1", "a2", "b1", "b2"]);
    }

    #[test]
    fn errors_name_the_problem() {
        for bad in [
            "web[01:04",
            "web01]",
            "web[]",
            "web[5:1]",
            "web[a:3]",
            "web[1:2:0]",
            "w[1:2,]",
            "w[0:9999999]",
        ] {
            let e = expand(bad).unwrap_err();
            assert_eq!(e.pattern, bad);
            assert!(!e.reason.is_empty());
        }
    }
}

/// Fold host names into range form, the inverse of [`expand`]: `web01, web02, web03, web07,
/// db1` → `db1,web[01-03,07]`. Names are grouped by what surrounds their last run of digits
/// (and its width when zero-padded); groups and names come out sorted.
pub fn fold(names: &[&str]) -> String {
    use std::collections::BTreeMap;
    // (prefix, suffix, width when padded) → numbers
    let mut groups: BTreeMap<(String, String, usize), Vec<u64>> = BTreeMap::new();
    let mut plain: Vec<&str> = Vec::new();
    let mut entries: Vec<(String, String, u64, usize, bool)> = Vec::new();
    for name in names {
        let bytes = name.as_bytes();
        let end = match bytes.iter().rposition(|b| b.is_ascii_digit()) {
            Some(e) => e + 1,
            None => {
                plain.push(name);
                continue;
            }
        };
        let start = bytes[..end]
            .iter()
            .rposition(|b| !b.is_ascii_digit())
            .map_or(0, |s| s + 1);
        let digits = &name[start..end];
        let Ok(n) = digits.parse::<u64>() else {
            plain.push(name);
            continue;
        };
        let padded = digits.len() > 1 && digits.starts_with('0');
        entries.push((
            name[..start].to_string(),
            name[end..].to_string(),
            n,
            digits.len(),
            padded,
        ));
    }
    // A number of the same length as a zero-padded one (`web100` next to `web099`) shares its
    // width; other numbers are unpadded.
    let padded_widths: std::collections::HashSet<(String, String, usize)> = entries
        .iter()
        .filter(|e| e.4)
        .map(|e| (e.0.clone(), e.1.clone(), e.3))
        .collect();
    for (prefix, suffix, n, len, _) in entries {
        let width = if padded_widths.contains(&(prefix.clone(), suffix.clone(), len)) {
            len
        } else {
            0
        };
        groups.entry((prefix, suffix, width)).or_default().push(n);
    }
    let mut parts: Vec<String> = plain.iter().map(|s| s.to_string()).collect();
    for ((prefix, suffix, width), mut nums) in groups {
        nums.sort_unstable();
        nums.dedup();
        if nums.len() == 1 {
            parts.push(format!("{prefix}{:0width$}{suffix}", nums[0]));
            continue;
        }
        let mut spans: Vec<String> = Vec::new();
        let mut i = 0;
        while i < nums.len() {
            let mut j = i;
            while j + 1 < nums.len() && nums[j + 1] == nums[j] + 1 {
                j += 1;
            }
            spans.push(if i == j {
                format!("{:0width$}", nums[i])
            } else {
                format!("{:0width$}-{:0width$}", nums[i], nums[j])
            });
            i = j + 1;
        }
        parts.push(format!("{prefix}[{}]{suffix}", spans.join(",")));
    }
    parts.sort();
    parts.join(",")
}

#[cfg(test)]
mod fold_tests {
    use super::*;

    #[test]
    fn folds_and_round_trips() {
        assert_eq!(
            fold(&["web01", "web02", "web03", "web07", "db1"]),
            "db1,web[01-03,07]"
        );
        assert_eq!(fold(&["n1", "n2", "n10", "n11"]), "n[1-2,10-11]");
        assert_eq!(fold(&["a.example.com", "b"]), "a.example.com,b");
        // only the last run of digits folds
        assert_eq!(fold(&["r1.dc2", "r2.dc2"]), "r1.dc2,r2.dc2");
        assert_eq!(fold(&["web1.dc", "web2.dc"]), "web[1-2].dc");
        let names: Vec<String> = expand("host[001:120]").unwrap();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(fold(&refs), "host[001-120]");
        assert_eq!(expand(&fold(&refs)).unwrap(), names);
    }
}
