//! Ansible's INI inventory format (`/etc/ansible/hosts`), read the way Ansible's own `ini`
//! plugin reads it. It is INI in name only — host lines carry inline `key=value` vars with
//! shell-style quoting — so, like Ansible, a line is split by a shell-word lexer (the `shlex`
//! crate) and each value typed as Python's `ast.literal_eval` would (numbers, booleans,
//! `None`, quoted strings; anything else stays text). Sections: `[group]` (host lines),
//! `[group:vars]` (`key = value`), `[group:children]` (group names); lines before the first
//! section are hosts of `ungrouped`. Host patterns take ranges (`web[01:50]`, `db-[a:f]`) and
//! a `:port`. A `:vars` or `:children` section naming a group no section declares is an error,
//! as in Ansible. Loads into [`super::model::Model`].

use super::model::{At, Model, Var, Vars};
use super::value::Value;
use super::{InventoryError, parse_host_spec};
use std::sync::Arc;

/// Whether `line` (trimmed) is a section header: `[name]` or `[name:kind]`, optionally followed
/// by a comment.
pub(super) fn header(line: &str) -> Option<(&str, Option<&str>)> {
    let rest = line.strip_prefix('[')?;
    let (inner, after) = rest.split_once(']')?;
    let after = after.trim();
    if !(after.is_empty() || after.starts_with('#') || after.starts_with(';')) {
        return None;
    }
    let (name, kind) = match inner.split_once(':') {
        Some((n, k)) => (n, Some(k)),
        None => (inner, None),
    };
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ',' || c == '[') {
        return None;
    }
    if let Some(k) = kind
        && (k.is_empty() || !k.chars().all(|c| c.is_alphanumeric() || c == '_'))
    {
        return None;
    }
    Some((name, kind))
}

/// The line without a `#` comment that starts a word outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev_space = true;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            prev_space = false;
            continue;
        }
        match (quote, c) {
            (Some('"'), '\\') => escaped = true,
            (None, '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') if prev_space => return &line[..i],
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// A value as Ansible's INI plugin types it (`ast.literal_eval`, else the text).
pub(super) fn parse_value(v: &str) -> Value {
    let t = v.trim();
    match t {
        "True" => return Value::Bool(true),
        "False" => return Value::Bool(false),
        "None" => return Value::Null,
        _ => {}
    }
    if let Some(i) = parse_int(t) {
        return Value::Int(i);
    }
    if t.contains(['.', 'e', 'E'])
        && t.bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE_".contains(&b))
        && t.matches('.').count() <= 1
        && let Ok(f) = t.replace('_', "").parse::<f64>()
    {
        return Value::Float(f);
    }
    if t.len() >= 2
        && let Some(q) = t.chars().next().filter(|c| *c == '\'' || *c == '"')
        && t.ends_with(q)
        && let Some(s) = unquote(&t[1..t.len() - 1], q)
    {
        return Value::Str(s);
    }
    if (t.starts_with('[') && t.ends_with(']')) || (t.starts_with('{') && t.ends_with('}')) {
        // a Python list or dict literal: JSON covers the common forms
        if let Ok(v) = serde_json::from_str::<Value>(t) {
            return v;
        }
    }
    Value::Str(v.to_string())
}

/// A Python integer literal: decimal (no leading zeros), 0x/0o/0b, `_` between digits.
fn parse_int(t: &str) -> Option<i128> {
    let (neg, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return None;
    }
    let clean = body.replace('_', "");
    let lower = clean.to_ascii_lowercase();
    let n = if let Some(h) = lower.strip_prefix("0x") {
        i128::from_str_radix(h, 16).ok()?
    } else if let Some(o) = lower.strip_prefix("0o") {
        i128::from_str_radix(o, 8).ok()?
    } else if let Some(b) = lower.strip_prefix("0b") {
        i128::from_str_radix(b, 2).ok()?
    } else {
        if !clean.bytes().all(|b| b.is_ascii_digit()) || (clean.len() > 1 && clean.starts_with('0'))
        {
            return None;
        }
        clean.parse().ok()?
    };
    Some(if neg { -n } else { n })
}

/// The inside of a Python string literal quoted with `q`, escapes resolved (the common ones).
fn unquote(s: &str, q: char) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                c @ ('\\' | '\'' | '"') => out.push(c),
                c => {
                    out.push('\\');
                    out.push(c);
                }
            },
            c if c == q => return None, // an unescaped quote inside: not one literal
            c => out.push(c),
        }
    }
    Some(out)
}

/// `key=value` → the pair, the value typed.
fn pair(token: &str, at: &Option<At>) -> Option<(String, Var)> {
    let (k, v) = token.split_once('=')?;
    let k = k.trim();
    if k.is_empty() {
        return None;
    }
    Some((
        k.to_string(),
        Var {
            value: parse_value(v),
            at: at.clone(),
        },
    ))
}

/// Parse `text` (Ansible INI) into `model`.
pub(super) fn load(model: &mut Model, label: &str, text: &str) -> Result<(), InventoryError> {
    let file: Arc<str> = Arc::from(label);
    let err = |n: usize, m: String| InventoryError::at(label, n, m);
    model.ensure_group("all");
    model.ensure_group("ungrouped");
    model.add_child("all", "ungrouped");
    // groups declared by a section of their own, and references still waiting for one
    let mut declared: std::collections::HashSet<String> =
        ["all", "ungrouped"].iter().map(|s| s.to_string()).collect();
    let mut pending: indexmap::IndexMap<String, (usize, String)> = indexmap::IndexMap::new();
    let mut group = "ungrouped".to_string();
    let mut kind = "hosts".to_string();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[')
            && let Some((name, k)) = header(line)
        {
            group = name.to_string();
            kind = k.unwrap_or("hosts").to_string();
            match kind.as_str() {
                "hosts" | "children" => {
                    declared.insert(group.clone());
                    pending.shift_remove(&group);
                    model.ensure_group(&group);
                    if group != "all" && group != "ungrouped" {
                        model.add_child("all", &group);
                    }
                }
                "vars" => {
                    if !declared.contains(&group) && !pending.contains_key(&group) {
                        pending.insert(
                            group.clone(),
                            (
                                n,
                                format!(
                                    "section [{group}:vars] is for a group no section declares"
                                ),
                            ),
                        );
                    }
                    model.ensure_group(&group);
                }
                other => {
                    return Err(err(
                        n,
                        format!(
                            "section [{group}:{other}] has an unknown type (expected :vars or \
                             :children)"
                        ),
                    ));
                }
            }
            continue;
        }
        if line.starts_with('[') && !line.contains(' ') && line.ends_with(']') {
            return Err(err(n, format!("'{line}' is not a valid section header")));
        }
        let at = At::line(&file, n);
        match kind.as_str() {
            "vars" => {
                let Some(p) = pair(line, &at) else {
                    return Err(err(n, format!("expected key=value, got: {line}")));
                };
                let vars: Vars = vec![p];
                model.check_vars(&vars);
                model.add_group_vars(&group, vars);
            }
            "children" => {
                let child = strip_comment(line).trim();
                if child.is_empty() || child.contains(char::is_whitespace) {
                    return Err(err(n, format!("'{child}' is not a group name")));
                }
                if !declared.contains(child) && !pending.contains_key(child) {
                    pending.insert(
                        child.to_string(),
                        (
                            n,
                            format!(
                                "section [{group}:children] names group '{child}', which no \
                                 section declares"
                            ),
                        ),
                    );
                }
                model.add_child(&group, child);
            }
            _ => {
                let body = strip_comment(line);
                let tokens = shlex::split(body)
                    .ok_or_else(|| err(n, format!("unbalanced quotes in: {line}")))?;
                let Some((pattern, rest)) = tokens.split_first() else {
                    continue;
                };
                let hosts = parse_host_spec(pattern).map_err(|m| err(n, m))?;
                let mut vars: Vars = Vec::new();
                if let Some(port) = hosts.first().and_then(|h| h.port) {
                    vars.push((
                        "ansible_port".into(),
                        Var {
                            value: Value::Int(port.into()),
                            at: at.clone(),
                        },
                    ));
                }
                for t in rest {
                    let Some(p) = pair(t, &at) else {
                        return Err(err(
                            n,
                            format!("expected key=value host variable assignment, got: {t}"),
                        ));
                    };
                    vars.push(p);
                }
                model.check_vars(&vars);
                for h in hosts {
                    model.add_host(&group, &h.name, &vars);
                }
            }
        }
    }
    if let Some((_, (n, why))) = pending.into_iter().next() {
        return Err(err(n, why));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Inventory;
    use super::*;

    #[test]
    fn values_are_typed_as_ansible_does() {
        assert_eq!(parse_value("2222"), Value::Int(2222));
        assert_eq!(parse_value("0x10"), Value::Int(16));
        assert_eq!(parse_value("010"), Value::Str("010".into()));
        assert_eq!(parse_value("1.5"), Value::Float(1.5));
        assert_eq!(parse_value("10.0.0.1"), Value::Str("10.0.0.1".into()));
        assert_eq!(parse_value("True"), Value::Bool(true));
        assert_eq!(parse_value("yes"), Value::Str("yes".into()));
        assert_eq!(parse_value("'a b'"), Value::Str("a b".into()));
        assert_eq!(parse_value("\"it's\""), Value::Str("it's".into()));
        assert_eq!(parse_value("'a' 'b'"), Value::Str("'a' 'b'".into()));
        assert_eq!(
            parse_value("[1, \"x\"]"),
            Value::Seq(vec![Value::Int(1), Value::Str("x".into())])
        );
    }

    const INI: &str = "\
# fleet
bastion ansible_host=10.0.0.9   # ungrouped

[web]
web[01:03]  ansible_user=deploy
web04:2222 ansible_host=\"10.0.1.4\" note='a b # not a comment'

[db]
db-[a:b] ansible_port=5432

[prod:children]
web
db

[prod:vars]
ansible_user = ops
; semicolon comment
colour = blue
";

    #[test]
    fn an_ini_inventory_resolves() {
        let mut inv = Inventory::default();
        inv.load_str("hosts", INI).unwrap();
        let names: Vec<_> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "bastion", "web01", "web02", "web03", "web04", "db-a", "db-b"
            ]
        );
        let w1 = inv.get("web01").unwrap();
        assert_eq!(
            w1.user.as_deref(),
            Some("deploy"),
            "host var beats group var"
        );
        let w4 = inv.get("web04").unwrap();
        assert_eq!(
            (w4.user.as_deref(), w4.port, w4.address.as_deref()),
            (Some("ops"), Some(2222), Some("10.0.1.4"))
        );
        assert_eq!(
            w4.vars["note"],
            Value::Str("a b # not a comment".into()),
            "a quoted # is text"
        );
        assert_eq!(inv.get("db-b").unwrap().port, Some(5432));
        assert_eq!(inv.groups["prod"].len(), 6);
        assert_eq!(inv.groups["ungrouped"], vec![0]);
        assert_eq!(
            inv.get("bastion").unwrap().address.as_deref(),
            Some("10.0.0.9")
        );
    }

    #[test]
    fn ini_errors_name_the_line() {
        let mut inv = Inventory::default();
        let e = inv
            .load_str("hosts", "[web]\nw1\n[web:kids]\nx\n")
            .unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        let mut inv = Inventory::default();
        let e = inv.load_str("hosts", "[web]\nw1 oops\n").unwrap_err();
        assert!(e.message.contains("key=value"), "{e}");
        let mut inv = Inventory::default();
        let e = inv.load_str("hosts", "[a:vars]\nx=1\n").unwrap_err();
        assert!(e.message.contains("[a:vars]"), "{e}");
        let mut inv = Inventory::default();
        let e = inv
            .load_str("hosts", "[p:children]\nc\n[q]\nh\n")
            .unwrap_err();
        assert!(e.message.contains("'c'"), "{e}");
        let mut inv = Inventory::default();
        let e = inv.load_str("hosts", "[web]\nw1 a=\"b\n").unwrap_err();
        assert!(e.message.contains("quotes"), "{e}");
    }
}
