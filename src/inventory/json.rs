//! The JSON a dynamic inventory prints for `--list` (and `ansible-inventory --list`): groups
//! as `{"hosts": [...], "vars": {...}, "children": [...]}` or a bare list of hosts, and
//! `_meta.hostvars` with every host's vars. Loads into [`super::model::Model`].

use super::model::{At, Model, Var, Vars};
use super::value::Value;
use super::{InventoryError, range};
use std::sync::Arc;

/// Whether `text` is this format rather than YAML-shaped JSON: a top-level object with
/// `_meta`, a group given as a list, or a group whose `hosts` or `children` is a list.
pub(super) fn is_script_json(text: &str) -> bool {
    let Ok(serde_json::Value::Object(top)) = serde_json::from_str::<serde_json::Value>(text) else {
        return false;
    };
    top.iter().any(|(k, v)| {
        k == "_meta"
            || v.is_array()
            || v.as_object().is_some_and(|g| {
                g.get("hosts").is_some_and(|h| h.is_array())
                    || g.get("children").is_some_and(|c| c.is_array())
            })
    })
}

fn json_err(label: &str, e: &serde_json::Error) -> InventoryError {
    InventoryError {
        source: label.to_string(),
        line: Some(e.line() as u64),
        column: Some(e.column() as u64),
        message: format!("invalid inventory JSON: {e}"),
    }
}

/// A JSON object of vars.
pub(super) fn vars_of(file: &Arc<str>, v: serde_json::Value) -> Result<Vars, String> {
    let serde_json::Value::Object(map) = v else {
        return Err(format!("expected an object of vars, found {}", kind(&v)));
    };
    map.into_iter()
        .map(|(k, v)| {
            let value: Value = serde_json::from_value(v).map_err(|e| e.to_string())?;
            Ok((
                k,
                Var {
                    value,
                    at: At::file(file),
                },
            ))
        })
        .collect()
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

fn names(label: &str, what: &str, v: serde_json::Value) -> Result<Vec<String>, InventoryError> {
    let serde_json::Value::Array(items) = v else {
        return Err(InventoryError::new(
            label,
            format!("{what} must be a list of names, found {}", kind(&v)),
        ));
    };
    items
        .into_iter()
        .map(|i| match i {
            serde_json::Value::String(s) if !s.trim().is_empty() => Ok(s),
            other => Err(InventoryError::new(
                label,
                format!("{what} must be a list of names, found {}", kind(&other)),
            )),
        })
        .collect()
}

/// Parse `text` into `model`. Returns the hosts without `_meta.hostvars` when there is no
/// `_meta` (a script is then asked `--host NAME` for each).
pub(super) fn load(
    model: &mut Model,
    label: &str,
    text: &str,
) -> Result<Option<Vec<String>>, InventoryError> {
    let top: serde_json::Value = serde_json::from_str(text).map_err(|e| json_err(label, &e))?;
    let serde_json::Value::Object(top) = top else {
        return Err(InventoryError::new(
            label,
            format!(
                "inventory JSON must be an object of groups, found {}",
                kind(&top)
            ),
        ));
    };
    let file: Arc<str> = Arc::from(label);
    model.ensure_group("all");
    let mut meta = None;
    for (group, def) in top {
        if group == "_meta" {
            meta = Some(def);
            continue;
        }
        model.ensure_group(&group);
        match def {
            serde_json::Value::Array(_) => {
                for h in names(label, &format!("group '{group}'"), def)? {
                    add_hosts(model, label, &group, &h)?;
                }
            }
            serde_json::Value::Object(mut g) => {
                if let Some(h) = g.remove("hosts") {
                    for h in names(label, &format!("hosts of group '{group}'"), h)? {
                        add_hosts(model, label, &group, &h)?;
                    }
                }
                if let Some(v) = g.remove("vars") {
                    let vars = vars_of(&file, v).map_err(|e| {
                        InventoryError::new(label, format!("vars of group '{group}': {e}"))
                    })?;
                    model.add_group_vars(&group, vars);
                }
                if let Some(c) = g.remove("children") {
                    for c in names(label, &format!("children of group '{group}'"), c)? {
                        model.add_child(&group, &c);
                    }
                }
            }
            serde_json::Value::Null => {}
            other => {
                return Err(InventoryError::new(
                    label,
                    format!(
                        "group '{group}' must be an object or a list of hosts, found {}",
                        kind(&other)
                    ),
                ));
            }
        }
    }
    let hostvars = match meta {
        None => {
            return Ok(Some(model.host_names().map(str::to_string).collect()));
        }
        Some(serde_json::Value::Object(mut m)) => m.remove("hostvars"),
        Some(other) => {
            return Err(InventoryError::new(
                label,
                format!("_meta must be an object, found {}", kind(&other)),
            ));
        }
    };
    if let Some(hv) = hostvars {
        let serde_json::Value::Object(hv) = hv else {
            return Err(InventoryError::new(
                label,
                format!("_meta.hostvars must be an object, found {}", kind(&hv)),
            ));
        };
        for (host, vars) in hv {
            let vars = vars_of(&file, vars).map_err(|e| {
                InventoryError::new(label, format!("_meta.hostvars of '{host}': {e}"))
            })?;
            // vars for a host no group lists make it a host of `all`, as in Ansible
            model.add_host("all", &host, &vars);
        }
    }
    Ok(None)
}

fn add_hosts(
    model: &mut Model,
    label: &str,
    group: &str,
    pattern: &str,
) -> Result<(), InventoryError> {
    for h in range::expand(pattern.trim()).map_err(|e| InventoryError::new(label, e.to_string()))? {
        model.add_host(group, &h, &[]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Inventory;

    const LIST: &str = r#"{
      "_meta": {"hostvars": {"web1": {"ansible_host": "10.0.0.1", "ansible_port": 2222},
                             "db1": {"ansible_user": "pg"}}},
      "all": {"children": ["ungrouped", "web", "db"], "vars": {"ansible_user": "deploy"}},
      "web": {"hosts": ["web1", "web2"], "vars": {"tier": "front"}},
      "db": ["db1"],
      "ungrouped": {}
    }"#;

    #[test]
    fn script_json_resolves() {
        assert!(super::is_script_json(LIST));
        assert!(!super::is_script_json(r#"{"all": {"hosts": {"a": null}}}"#));
        let mut inv = Inventory::default();
        inv.load_str("inv.json", LIST).unwrap();
        let w1 = inv.get("web1").unwrap();
        assert_eq!(
            (w1.address.as_deref(), w1.port, w1.user.as_deref()),
            (Some("10.0.0.1"), Some(2222), Some("deploy"))
        );
        assert_eq!(inv.get("db1").unwrap().user.as_deref(), Some("pg"));
        assert_eq!(inv.groups["web"].len(), 2);
        assert_eq!(
            inv.get("web2").unwrap().vars["tier"],
            super::Value::Str("front".into())
        );
    }

    #[test]
    fn bad_json_is_named() {
        let mut inv = Inventory::default();
        let e = inv
            .load_str("inv.json", r#"{"web": {"hosts": ["a"]}, "db": 5}"#)
            .unwrap_err();
        assert!(e.message.contains("group 'db'"), "{e}");
        let mut inv = Inventory::default();
        let e = inv
            .load_str("inv.json", "{\"web\": [\"a\"],\n \"x\": [1}")
            .unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }
}
