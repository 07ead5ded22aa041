//! `--limit` patterns, Ansible style: `web:db` (union), `web:&prod` (intersection),
//! `all:!web03` (exclusion), globs (`web*`), regexes (`~web0[1-3]`), ranges (`web[01:03]`)
//! and `@FILE` (host names listed in a file, one per line).
//!
//! Terms are separated by `,` when the pattern has one, else by `:`. As in Ansible, unions
//! apply first, then intersections, then exclusions, whatever their order in the pattern.

use super::{Inventory, range, split_outside_brackets};
use std::fmt;

/// A `--limit` pattern that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub pattern: String,
    pub message: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--limit '{}': {}", self.pattern, self.message)
    }
}

impl std::error::Error for PatternError {}

/// Indices (ascending, inventory order) of the hosts selected by `pattern`.
pub fn select(inv: &Inventory, pattern: &str) -> Result<Vec<usize>, PatternError> {
    let fail = |message: String| PatternError {
        pattern: pattern.to_string(),
        message,
    };
    let terms: Vec<&str> = if pattern.contains(',') {
        split_outside_brackets(pattern, ',')
    } else {
        split_outside_brackets(pattern, ':')
    };
    let mut unions = Vec::new();
    let mut inters = Vec::new();
    let mut excludes = Vec::new();
    for t in terms.iter().map(|t| t.trim()) {
        if t.is_empty() {
            return Err(fail("empty term (two separators in a row?)".into()));
        }
        if let Some(rest) = t.strip_prefix('!') {
            excludes.push(rest);
        } else if let Some(rest) = t.strip_prefix('&') {
            inters.push(rest);
        } else {
            unions.push(t);
        }
    }
    if unions.is_empty() {
        unions.push("all");
    }
    let n = inv.hosts.len();
    let mut selected = vec![false; n];
    for t in unions {
        for i in term_hosts(inv, t).map_err(fail)? {
            selected[i] = true;
        }
    }
    for t in inters {
        let mut keep = vec![false; n];
        for i in term_hosts(inv, t).map_err(fail)? {
            keep[i] = true;
        }
        for (s, k) in selected.iter_mut().zip(keep) {
            *s &= k;
        }
    }
    for t in excludes {
        for i in term_hosts(inv, t).map_err(fail)? {
            selected[i] = false;
        }
    }
    Ok((0..n).filter(|&i| selected[i]).collect())
}

/// The hosts one term names; an error when it names nothing at all.
fn term_hosts(inv: &Inventory, term: &str) -> Result<Vec<usize>, String> {
    if term.is_empty() {
        return Err("empty term after '!' or '&'".into());
    }
    if let Some(path) = term.strip_prefix('@') {
        return file_hosts(inv, path);
    }
    if let Some(members) = inv.groups.get(term) {
        return Ok(members.clone());
    }
    if let Some(i) = inv.position(term) {
        return Ok(vec![i]);
    }
    let mut out = Vec::new();
    if let Some(re) = term.strip_prefix('~') {
        let re = regex::Regex::new(re).map_err(|e| format!("bad regex '{re}': {e}"))?;
        for (g, members) in &inv.groups {
            if re.is_match(g) {
                out.extend(members);
            }
        }
        out.extend((0..inv.hosts.len()).filter(|&i| re.is_match(&inv.hosts[i].name)));
    } else if term.contains(['*', '?']) {
        let glob = wildmatch::WildMatch::new(term);
        for (g, members) in &inv.groups {
            if glob.matches(g) {
                out.extend(members);
            }
        }
        out.extend((0..inv.hosts.len()).filter(|&i| glob.matches(&inv.hosts[i].name)));
    } else if range::has_range(term) {
        let names = range::expand(term).map_err(|e| e.to_string())?;
        for name in names {
            if let Some(i) = inv.position(&name) {
                out.push(i);
            } else if let Some(m) = inv.groups.get(&name) {
                out.extend(m);
            }
        }
    }
    if out.is_empty() {
        return Err(no_match(inv, term));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn no_match(inv: &Inventory, term: &str) -> String {
    let near = inv
        .groups
        .keys()
        .map(String::as_str)
        .chain(inv.hosts.iter().map(|h| h.name.as_str()))
        .filter(|c| strsim::damerau_levenshtein(c, term) <= 2)
        .take(3)
        .collect::<Vec<_>>();
    let mut msg = format!("no group or host matches '{term}'");
    if !near.is_empty() {
        msg.push_str(&format!(" (did you mean {}?)", near.join(", ")));
    } else {
        let groups: Vec<&str> = inv.groups.keys().map(String::as_str).take(12).collect();
        msg.push_str(&format!("; groups are: {}", groups.join(", ")));
    }
    msg
}

fn file_hosts(inv: &Inventory, path: &str) -> Result<Vec<usize>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read '{path}': {e}"))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let name = line.split('#').next().unwrap_or("").trim();
        if name.is_empty() {
            continue;
        }
        match inv.position(name) {
            Some(i) => out.push(i),
            None => {
                return Err(format!(
                    "{path}:{}: host '{name}' is not in the inventory",
                    n + 1
                ));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Inventory {
        let mut inv = Inventory::default();
        inv.load_str(
            "t.yaml",
            "all:\n  children:\n    web:\n      hosts:\n        web[01:04]:\n    db:\n      hosts:\n        db1:\n        db2:\n    prod:\n      hosts:\n        web01:\n        db1:\n",
        )
        .unwrap();
        inv
    }

    fn names(inv: &Inventory, p: &str) -> Vec<String> {
        select(inv, p)
            .unwrap()
            .into_iter()
            .map(|i| inv.hosts[i].name.clone())
            .collect()
    }

    #[test]
    fn unions_intersections_exclusions() {
        let inv = inv();
        assert_eq!(names(&inv, "web"), ["web01", "web02", "web03", "web04"]);
        assert_eq!(
            names(&inv, "db:web03"),
            ["web03", "db1", "db2"],
            "inventory order"
        );
        assert_eq!(names(&inv, "web:!web03"), ["web01", "web02", "web04"]);
        assert_eq!(names(&inv, "all:!db"), ["web01", "web02", "web03", "web04"]);
        assert_eq!(names(&inv, "web:&prod"), ["web01"]);
        assert_eq!(names(&inv, "!web03:web"), ["web01", "web02", "web04"]);
        assert_eq!(names(&inv, "&prod"), ["web01", "db1"]);
        assert_eq!(names(&inv, "web,db"), names(&inv, "web:db"));
    }

    #[test]
    fn globs_regex_ranges() {
        let inv = inv();
        assert_eq!(names(&inv, "db*"), ["db1", "db2"]);
        assert_eq!(names(&inv, "~web0[12]"), ["web01", "web02"]);
        assert_eq!(names(&inv, "web[02:03]"), ["web02", "web03"]);
        assert_eq!(names(&inv, "pro?"), ["web01", "db1"]);
    }

    #[test]
    fn unknown_terms_are_errors() {
        let inv = inv();
        let e = select(&inv, "nosuchgroup").unwrap_err();
        assert!(
            e.to_string()
                .contains("no group or host matches 'nosuchgroup'")
        );
        let e = select(&inv, "wbe").unwrap_err();
        assert!(e.message.contains("did you mean web"), "{e}");
        assert!(select(&inv, "web::db").is_err());
        assert!(select(&inv, "~(").is_err());
    }

    #[test]
    fn at_file_selects_named_hosts() {
        let inv = inv();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("failed.txt");
        std::fs::write(&p, "db2\n# note\nweb02\n").unwrap();
        assert_eq!(names(&inv, &format!("@{}", p.display())), ["web02", "db2"]);
        std::fs::write(&p, "nope\n").unwrap();
        assert!(select(&inv, &format!("@{}", p.display())).is_err());
    }
}
