//! Ansible-shaped YAML inventories: groups with `hosts`, `vars` and `children`, host ranges,
//! prun's short var names and their `ansible_*` spellings. Loads into the shared
//! [`super::model::Model`], which applies the precedence; values keep their file, line and
//! column for errors.

use super::model::{At, Model, Var, Vars};
use super::value::Value;
use super::{InventoryError, range};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};
use std::sync::Arc;

type State = foldhash::fast::RandomState;
type IndexMap<K, V> = indexmap::IndexMap<K, V, State>;

type YamlVars = IndexMap<String, Spanned<Value>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GroupDef {
    #[serde(default)]
    hosts: Option<IndexMap<Spanned<String>, Option<YamlVars>>>,
    #[serde(default)]
    vars: Option<YamlVars>,
    #[serde(default)]
    children: Option<IndexMap<Spanned<String>, Option<GroupDef>>>,
}

fn loc_err(label: &str, loc: &Location, msg: impl Into<String>) -> InventoryError {
    InventoryError {
        source: label.to_string(),
        line: Some(loc.line()),
        column: Some(loc.column()),
        message: msg.into(),
    }
}

/// The vars of a YAML mapping, each with its place.
pub(super) fn vars_of(file: &Arc<str>, vars: YamlVars) -> Vars {
    vars.into_iter()
        .map(|(k, v)| {
            let at = Some(At {
                file: file.clone(),
                line: Some(v.referenced.line()),
                column: Some(v.referenced.column()),
            });
            (k, Var { value: v.value, at })
        })
        .collect()
}

/// Parse `text` as a YAML inventory into `model`.
pub(super) fn load(model: &mut Model, label: &str, text: &str) -> Result<(), InventoryError> {
    let root: Option<IndexMap<Spanned<String>, Option<GroupDef>>> =
        serde_saphyr::from_str(text).map_err(|e| yaml_error(label, &e))?;
    let root = root.unwrap_or_default();
    if root.is_empty() {
        return Err(InventoryError::new(
            label,
            "inventory is empty: expected groups such as `all:` with `hosts:`",
        ));
    }
    let file: Arc<str> = Arc::from(label);
    model.ensure_group("all");
    for (name, def) in root {
        define(model, &file, &name, def, None)?;
    }
    Ok(())
}

/// A YAML mapping of vars (a `group_vars/` or `host_vars/` file). A value encrypted with
/// Ansible Vault (`!vault |`) is left out, with a warning naming it.
pub(super) fn load_vars(
    label: &str,
    text: &str,
    warnings: &mut Vec<String>,
) -> Result<Vars, InventoryError> {
    let vars: Option<YamlVars> = serde_saphyr::from_str(text).map_err(|e| {
        let mut e = yaml_error(label, &e);
        e.message = e.message.replace(
            " (an inventory maps group names to `hosts:`, `vars:` and `children:`; \
             `hosts:` maps host names to their vars)",
            " (a vars file maps var names to values)",
        );
        e
    })?;
    let mut vars = vars_of(&Arc::from(label), vars.unwrap_or_default());
    vars.retain(|(k, v)| {
        let vault =
            matches!(&v.value, Value::Str(s) if s.trim_start().starts_with("$ANSIBLE_VAULT;"));
        if vault {
            let line = v.at.as_ref().and_then(|a| a.line).unwrap_or(0);
            warnings.push(format!(
                "{label}:{line}: var '{k}' is encrypted with Ansible Vault; not read (prun does \
                 not decrypt vault values)"
            ));
        }
        !vault
    });
    Ok(vars)
}

fn yaml_error(label: &str, e: &serde_saphyr::Error) -> InventoryError {
    let loc = e.location();
    // The rendered message may carry a source snippet on later lines; keep the first.
    let text = e.to_string();
    let mut first = text.lines().next().unwrap_or("invalid YAML").trim();
    // serde-saphyr says "error: line L column C: what"; we print the place ourselves.
    if let Some(rest) = first.strip_prefix("error: ") {
        first = rest;
    }
    if first.starts_with("line ")
        && let Some((_, what)) = first.split_once(": ")
    {
        first = what;
    }
    let hint = if first.contains("expected a map")
        || first.contains("expected mapping")
        || first.contains("invalid type")
    {
        " (an inventory maps group names to `hosts:`, `vars:` and `children:`; \
          `hosts:` maps host names to their vars)"
    } else if first.contains("unknown field") {
        " (a group may only have `hosts`, `vars` and `children`)"
    } else {
        ""
    };
    InventoryError {
        source: label.to_string(),
        line: loc.map(|l| l.line()),
        column: loc.map(|l| l.column()),
        message: format!("invalid inventory: {first}{hint}"),
    }
}

fn define(
    model: &mut Model,
    file: &Arc<str>,
    name: &Spanned<String>,
    def: Option<GroupDef>,
    parent: Option<&str>,
) -> Result<(), InventoryError> {
    let label: &str = file;
    let gname = name.value.trim().to_string();
    if gname.is_empty() || gname.contains(char::is_whitespace) {
        return Err(loc_err(
            label,
            &name.referenced,
            format!("'{}' is not a valid group name", name.value),
        ));
    }
    model.ensure_group(&gname);
    let parent = parent.unwrap_or("all");
    if gname != "all" {
        model.add_child(parent, &gname);
    }
    let Some(def) = def else { return Ok(()) };
    if let Some(vars) = def.vars {
        let vars = vars_of(file, vars);
        model.check_vars(&vars);
        model.add_group_vars(&gname, vars);
    }
    if let Some(hosts) = def.hosts {
        for (pattern, vars) in hosts {
            let names = range::expand(pattern.value.trim())
                .map_err(|e| loc_err(label, &pattern.referenced, e.to_string()))?;
            let vars = vars.map(|v| vars_of(file, v)).unwrap_or_default();
            model.check_vars(&vars);
            for n in names {
                if n.is_empty() || n.contains(char::is_whitespace) {
                    return Err(loc_err(
                        label,
                        &pattern.referenced,
                        format!("'{n}' is not a valid host name"),
                    ));
                }
                model.add_host(&gname, &n, &vars);
            }
        }
    }
    if let Some(children) = def.children {
        for (child, cdef) in children {
            define(model, file, &child, cdef, Some(&gname))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Inventory;
    use super::*;

    const EXAMPLE: &str = r#"
all:
  vars:
    user: deploy
  hosts:
    bastion.example.com:
  children:
    web:
      vars:
        port: 2222
      hosts:
        web[01:04].example.com:
        web05:
          address: 10.0.1.15
          identity_file: ~/.ssh/web_ed25519
      children:
        canary:
          vars:
            ansible_user: canary
            ansible_port: 2200
          hosts:
            web01.example.com:
    db:
      hosts:
        db1.example.com:
          ansible_host: 10.0.2.1
          ansible_user: postgres
          user: dbadmin
        web05:
"#;

    fn load_str(text: &str) -> Result<Inventory, InventoryError> {
        let mut inv = Inventory::default();
        inv.load_str("inv.yaml", text)?;
        Ok(inv)
    }

    #[test]
    fn example_resolves_with_precedence() {
        let inv = load_str(EXAMPLE).unwrap();
        let names: Vec<_> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "bastion.example.com",
                "web01.example.com",
                "web02.example.com",
                "web03.example.com",
                "web04.example.com",
                "web05",
                "db1.example.com"
            ]
        );
        let b = inv.get("bastion.example.com").unwrap();
        assert_eq!((b.user.as_deref(), b.port), (Some("deploy"), None));
        // nearest group (canary) beats its parent (web) and all.
        let w1 = inv.get("web01.example.com").unwrap();
        assert_eq!((w1.user.as_deref(), w1.port), (Some("canary"), Some(2200)));
        let w2 = inv.get("web02.example.com").unwrap();
        assert_eq!((w2.user.as_deref(), w2.port), (Some("deploy"), Some(2222)));
        let w5 = inv.get("web05").unwrap();
        assert_eq!(w5.address.as_deref(), Some("10.0.1.15"));
        assert_eq!(w5.identity_files, vec!["~/.ssh/web_ed25519"]);
        // prun's spelling beats ansible_* in the same layer.
        let db = inv.get("db1.example.com").unwrap();
        assert_eq!(db.user.as_deref(), Some("dbadmin"));
        assert_eq!(db.address.as_deref(), Some("10.0.2.1"));
    }

    #[test]
    fn groups_include_descendants_and_hosts_count_once() {
        let inv = load_str(EXAMPLE).unwrap();
        assert_eq!(inv.groups["all"].len(), 7);
        assert_eq!(inv.groups["web"], vec![1, 2, 3, 4, 5]);
        assert_eq!(inv.groups["db"], vec![5, 6]);
        assert_eq!(inv.groups["canary"], vec![1]);
        assert_eq!(inv.groups["ungrouped"], vec![0]);
    }

    #[test]
    fn errors_have_line_and_column() {
        let e = load_str("all:\n  hosts:\n    a:\n      port: nope\n").unwrap_err();
        assert_eq!((e.line, e.column), (Some(4), Some(13)), "{e}");
        assert!(e.message.contains("port of host 'a'"), "{e}");

        let e = load_str("all:\n  hosts:\n    - a\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");

        let e = load_str("all:\n  hsts:\n    a:\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.contains("hsts"), "{e}");

        let e = load_str("all:\n  hosts:\n    a: [\n").unwrap_err();
        assert!(e.line.is_some(), "{e}");

        let e = load_str("all:\n  hosts:\n    web[3:1]:\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
    }

    #[test]
    fn unknown_vars_kept_and_typos_warned() {
        let inv =
            load_str("all:\n  vars:\n    usr: x\n    foo_bar: 1\n  hosts:\n    a:\n").unwrap();
        assert_eq!(inv.warnings.len(), 1, "{:?}", inv.warnings);
        assert!(inv.warnings[0].contains("did you mean 'user'"));
    }

    #[test]
    fn top_level_groups_are_children_of_all() {
        let inv = load_str("web:\n  hosts:\n    w1:\n  vars:\n    port: 2\n").unwrap();
        assert_eq!(inv.get("w1").unwrap().port, Some(2));
        assert_eq!(inv.groups["all"], vec![0]);
        assert_eq!(inv.groups["web"], vec![0]);
    }

    #[test]
    fn diamond_hierarchies_load_in_linear_time_and_cycles_are_named() {
        // 40 layers of two groups, each the child of both groups of the layer above: 2^40
        // paths from the top, 80 groups
        let mut y = String::from("all:\n  children:\n");
        for l in 0..40 {
            for side in ["a", "b"] {
                y.push_str(&format!("    g{l}{side}:\n      children:\n"));
                y.push_str(&format!("        g{}a:\n        g{}b:\n", l + 1, l + 1));
                if l == 0 && side == "a" {
                    y.push_str("      vars:\n        user: top\n");
                }
            }
        }
        y.push_str("    g40a:\n      hosts:\n        deep:\n          port: 2\n");
        y.push_str("      vars:\n        user: bottom\n");
        let inv = load_str(&y).unwrap();
        let h = inv.get("deep").unwrap();
        assert_eq!(h.user.as_deref(), Some("bottom"), "the deepest group wins");
        let e = load_str("all:\n  children:\n    a:\n      children:\n        b:\n    b:\n      children:\n        a:\n").unwrap_err();
        assert!(e.message.contains("its own ancestor"), "{e}");
        assert!(
            e.message.contains("a → b → a") || e.message.contains("b → a → b"),
            "{e}"
        );
    }

    #[test]
    fn alias_bomb_is_bounded() {
        let mut s = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            s.push_str(&format!(
                "{}: &{} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
                (b'a' + i) as char,
                (b'a' + i) as char,
                p = (b'a' + i - 1) as char
            ));
        }
        assert!(load_str(&s).is_err());
    }
}

#[cfg(test)]
mod example_tests {
    #[test]
    fn example_inventory_loads() {
        let mut inv = super::super::Inventory::default();
        inv.load_str(
            "inventory.example.yaml",
            include_str!("../../inventory.example.yaml"),
        )
        .unwrap();
        assert_eq!(inv.hosts.len(), 10);
        assert_eq!(inv.groups["prod"].len(), 2);
        assert_eq!(
            inv.get("db-a.example.com").unwrap().user.as_deref(),
            Some("postgres")
        );
        assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    }
}
