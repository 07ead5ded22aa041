//! ClusterShell group files (`/etc/clustershell/groups.d/*.yaml`): a group source name, then
//! group names mapped to node sets — `node[0001-0288]`, lists joined by `,`, `@group` and
//! `@source:group` references, and the set operators `!` (minus), `&` (and) and `^` (either
//! but not both), applied left to right as ClusterShell does. Each group becomes an
//! inventory group of that name (the groups of several sources merge by name). Loads into
//! [`super::model::Model`].

use super::model::Model;
use super::value::Value;
use super::{InventoryError, range, split_outside_brackets};
use indexmap::{IndexMap, IndexSet};

type Sources = IndexMap<String, IndexMap<String, Value>>;

/// Whether `text` has the shape of a groups.d file: sources of groups whose values are node
/// set strings (or lists of them), and none of Ansible's `hosts`/`vars`/`children`.
pub(super) fn is_groups_file(text: &str) -> bool {
    // an Ansible inventory says hosts:, vars: or children: somewhere; skip parsing it twice
    if text.lines().any(|l| {
        let t = l.trim_start();
        t.starts_with("hosts:") || t.starts_with("vars:") || t.starts_with("children:")
    }) {
        return false;
    }
    let Ok(Some(src)) = serde_saphyr::from_str::<Option<Sources>>(text) else {
        return false;
    };
    !src.is_empty()
        && src.values().all(|groups| {
            !groups.is_empty()
                && groups.iter().all(|(k, v)| {
                    !matches!(k.as_str(), "hosts" | "vars" | "children")
                        && match v {
                            Value::Str(_) => true,
                            Value::Seq(items) => items.iter().all(|i| matches!(i, Value::Str(_))),
                            _ => false,
                        }
                })
        })
}

/// The node set `expr` of group `name` (in `source`), references resolved.
fn resolve(
    label: &str,
    src: &Sources,
    source: &str,
    name: &str,
    stack: &mut Vec<(String, String)>,
    done: &mut IndexMap<(String, String), IndexSet<String>>,
) -> Result<IndexSet<String>, InventoryError> {
    let key = (source.to_string(), name.to_string());
    if let Some(s) = done.get(&key) {
        return Ok(s.clone());
    }
    if stack.contains(&key) {
        let path: Vec<String> = stack
            .iter()
            .chain(std::iter::once(&key))
            .map(|(s, g)| format!("@{s}:{g}"))
            .collect();
        return Err(InventoryError::new(
            label,
            format!("group '{name}' refers to itself ({})", path.join(" → ")),
        ));
    }
    let Some(value) = src.get(source).and_then(|g| g.get(name)) else {
        return Err(InventoryError::new(
            label,
            format!("@{source}:{name}: no such group"),
        ));
    };
    let exprs: Vec<&str> = match value {
        Value::Str(s) => vec![s.as_str()],
        Value::Seq(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::Str(s) => Some(s.as_str()),
                _ => None,
            })
            .collect(),
        _ => vec![],
    };
    stack.push(key.clone());
    let mut set = IndexSet::new();
    for expr in exprs {
        for n in eval(label, src, source, expr, stack, done)? {
            set.insert(n);
        }
    }
    stack.pop();
    done.insert(key, set.clone());
    Ok(set)
}

/// Evaluate one node set expression, operators left to right.
fn eval(
    label: &str,
    src: &Sources,
    source: &str,
    expr: &str,
    stack: &mut Vec<(String, String)>,
    done: &mut IndexMap<(String, String), IndexSet<String>>,
) -> Result<IndexSet<String>, InventoryError> {
    // split into (operator, term) outside brackets; the first term is a union
    let mut terms: Vec<(char, String)> = Vec::new();
    let mut depth = 0i32;
    let mut op = ',';
    let mut cur = String::new();
    for c in expr.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' | '!' | '&' | '^' if depth == 0 => {
                terms.push((op, std::mem::take(&mut cur)));
                op = c;
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    terms.push((op, cur));
    let mut set: IndexSet<String> = IndexSet::new();
    for (op, term) in terms {
        let term = term.trim();
        if term.is_empty() {
            continue;
        }
        let names: IndexSet<String> = if let Some(r) = term.strip_prefix('@') {
            let (s, g) = r.split_once(':').unwrap_or((source, r));
            resolve(label, src, s, g, stack, done)?
        } else {
            let mut out = IndexSet::new();
            for part in split_outside_brackets(term, ',') {
                for n in range::expand(part.trim())
                    .map_err(|e| InventoryError::new(label, format!("'{term}': {e}")))?
                {
                    out.insert(n);
                }
            }
            out
        };
        match op {
            ',' => set.extend(names),
            '!' => set.retain(|n| !names.contains(n)),
            '&' => set.retain(|n| names.contains(n)),
            _ => {
                let both: IndexSet<String> = set.intersection(&names).cloned().collect();
                set.extend(names);
                set.retain(|n| !both.contains(n));
            }
        }
    }
    Ok(set)
}

/// Parse a groups.d file into `model`: every group of every source, as an inventory group.
pub(super) fn load(model: &mut Model, label: &str, text: &str) -> Result<(), InventoryError> {
    let src: Sources = serde_saphyr::from_str::<Option<Sources>>(text)
        .map_err(|e| InventoryError::new(label, format!("invalid groups file: {e}")))?
        .unwrap_or_default();
    let mut done = IndexMap::new();
    model.ensure_group("all");
    for (source, groups) in &src {
        for name in groups.keys() {
            let hosts = resolve(label, &src, source, name, &mut Vec::new(), &mut done)?;
            model.ensure_group(name);
            if name != "all" {
                model.add_child("all", name);
            }
            for h in hosts {
                model.add_host(name, &h, &[]);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Inventory;

    const GROUPS: &str = "\
local:
  compute: 'node[01-08]'
  gpu: 'node[01-02],gpu[1-2]'
  cpu: '@compute!@gpu'
  both: '@compute&@local:gpu'
  odd: 'node[01-04]^node[03-06]'
  login: [login1, 'login[2-3]']
other:
  edge: '@local:login,edge1'
";

    #[test]
    fn node_sets_resolve_with_references_and_operators() {
        assert!(super::is_groups_file(GROUPS));
        assert!(!super::is_groups_file("all:\n  hosts:\n    a:\n"));
        let mut inv = Inventory::default();
        inv.load_str("local.yaml", GROUPS).unwrap();
        let names = |g: &str| -> Vec<&str> {
            inv.groups[g]
                .iter()
                .map(|&i| inv.hosts[i].name.as_str())
                .collect()
        };
        assert_eq!(
            names("cpu"),
            ["node03", "node04", "node05", "node06", "node07", "node08"]
        );
        assert_eq!(names("both"), ["node01", "node02"]);
        assert_eq!(names("odd"), ["node01", "node02", "node05", "node06"]);
        assert_eq!(names("login"), ["login1", "login2", "login3"]);
        assert_eq!(names("edge"), ["login1", "login2", "login3", "edge1"]);
        let mut inv = Inventory::default();
        let e = inv
            .load_str("x.yaml", "s:\n  a: '@b'\n  b: '@a'\n")
            .unwrap_err();
        assert!(e.message.contains("refers to itself"), "{e}");
    }
}
