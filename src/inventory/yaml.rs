//! Ansible-shaped YAML inventories: groups with `hosts`, `vars` and `children`, host ranges,
//! prun's short var names and their `ansible_*` spellings, and var precedence
//! (host > nearest group > parent groups > `all`). Errors carry file, line and column.

use super::value::Value;
use super::{Host, Inventory, InventoryError, range};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

/// Inventory input is trusted, so a fast non-DoS-resistant hasher is fine here.
type State = foldhash::fast::RandomState;
type HashMap<K, V> = std::collections::HashMap<K, V, State>;
type HashSet<K> = std::collections::HashSet<K, State>;
type IndexMap<K, V> = indexmap::IndexMap<K, V, State>;
type IndexSet<K> = indexmap::IndexSet<K, State>;

type Vars = IndexMap<String, Spanned<Value>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GroupDef {
    #[serde(default)]
    hosts: Option<IndexMap<Spanned<String>, Option<Vars>>>,
    #[serde(default)]
    vars: Option<Vars>,
    #[serde(default)]
    children: Option<IndexMap<Spanned<String>, Option<GroupDef>>>,
}

/// The settings prun reads from vars: canonical name first, then accepted aliases.
const KEYS: &[(&str, &[&str])] = &[
    ("user", &["ansible_user", "ansible_ssh_user"]),
    ("address", &["ansible_host", "ansible_ssh_host"]),
    ("port", &["ansible_port", "ansible_ssh_port"]),
    ("identity_file", &["ansible_ssh_private_key_file"]),
    ("jump", &[]),
];

fn canonical(key: &str) -> Option<&'static str> {
    KEYS.iter()
        .find(|(c, aliases)| *c == key || aliases.contains(&key))
        .map(|(c, _)| *c)
}

#[derive(Default)]
struct GroupInfo {
    order: usize,
    vars: Vec<(String, Spanned<Value>)>,
    children: Vec<String>,
    hosts: IndexSet<String>,
}

struct Builder<'a> {
    label: &'a str,
    groups: IndexMap<String, GroupInfo>,
    /// host name → its own vars, in order of appearance (a host may be listed in several groups).
    host_vars: IndexMap<String, Vec<(String, Spanned<Value>)>>,
    warnings: Vec<String>,
}

fn loc_err(label: &str, loc: &Location, msg: impl Into<String>) -> InventoryError {
    InventoryError {
        source: label.to_string(),
        line: Some(loc.line()),
        column: Some(loc.column()),
        message: msg.into(),
    }
}

/// Overlay one layer of vars (prun's own spelling beats an ansible_* alias in the same layer).
fn merge_layer<'a>(
    merged: &mut HashMap<&'static str, &'a Spanned<Value>>,
    layer: &'a [(String, Spanned<Value>)],
) {
    let mut canon: Vec<(&'static str, &Spanned<Value>)> = Vec::new();
    for (k, v) in layer {
        if let Some(c) = canonical(k) {
            if c == k {
                canon.push((c, v));
            } else {
                merged.insert(c, v);
            }
        }
    }
    merged.extend(canon);
}

/// Overlay one layer of vars onto every var seen so far (later layers win).
fn merge_all<'a>(merged: &mut IndexMap<&'a str, &'a Value>, layer: &'a [(String, Spanned<Value>)]) {
    for (k, v) in layer {
        merged.insert(k.as_str(), &v.value);
    }
}

/// Parse `text` as a YAML inventory and add its hosts and groups to `inv`.
pub(super) fn load(inv: &mut Inventory, label: &str, text: &str) -> Result<(), InventoryError> {
    let root: Option<IndexMap<Spanned<String>, Option<GroupDef>>> =
        serde_saphyr::from_str(text).map_err(|e| yaml_error(label, &e))?;
    let root = root.unwrap_or_default();
    if root.is_empty() {
        return Err(InventoryError::new(
            label,
            "inventory is empty: expected groups such as `all:` with `hosts:`",
        ));
    }
    let mut b = Builder {
        label,
        groups: IndexMap::default(),
        host_vars: IndexMap::default(),
        warnings: Vec::new(),
    };
    b.group("all");
    for (name, def) in root {
        b.define(&name, def, None)?;
    }
    b.finish(inv)
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

impl Builder<'_> {
    fn group(&mut self, name: &str) -> &mut GroupInfo {
        if let Some(i) = self.groups.get_index_of(name) {
            return &mut self.groups[i];
        }
        let n = self.groups.len();
        self.groups
            .entry(name.to_string())
            .or_insert_with(|| GroupInfo {
                order: n,
                ..Default::default()
            })
    }

    fn define(
        &mut self,
        name: &Spanned<String>,
        def: Option<GroupDef>,
        parent: Option<&str>,
    ) -> Result<(), InventoryError> {
        let gname = name.value.trim().to_string();
        if gname.is_empty() || gname.contains(char::is_whitespace) {
            return Err(loc_err(
                self.label,
                &name.referenced,
                format!("'{}' is not a valid group name", name.value),
            ));
        }
        self.group(&gname);
        let parent = parent.unwrap_or("all");
        if gname != "all" {
            let p = self.group(parent);
            if !p.children.contains(&gname) {
                p.children.push(gname.clone());
            }
        }
        let Some(def) = def else { return Ok(()) };
        if let Some(vars) = def.vars {
            let vars = self.check_vars(vars);
            self.group(&gname).vars.extend(vars);
        }
        if let Some(hosts) = def.hosts {
            for (pattern, vars) in hosts {
                let names = range::expand(pattern.value.trim())
                    .map_err(|e| loc_err(self.label, &pattern.referenced, e.to_string()))?;
                let vars = vars.map(|v| self.check_vars(v)).unwrap_or_default();
                for n in names {
                    if n.is_empty() || n.contains(char::is_whitespace) {
                        return Err(loc_err(
                            self.label,
                            &pattern.referenced,
                            format!("'{n}' is not a valid host name"),
                        ));
                    }
                    self.host_vars
                        .entry(n.clone())
                        .or_default()
                        .extend(vars.iter().cloned());
                    self.group(&gname).hosts.insert(n);
                }
            }
        }
        if let Some(children) = def.children {
            for (child, cdef) in children {
                self.define(&child, cdef, Some(&gname))?;
            }
        }
        Ok(())
    }

    /// Keep every var; warn about likely typos of prun's own keys.
    fn check_vars(&mut self, vars: Vars) -> Vec<(String, Spanned<Value>)> {
        for (k, v) in &vars {
            if canonical(k).is_some() || k.starts_with("ansible_") || k.len() < 3 {
                continue;
            }
            if let Some((known, _)) = KEYS
                .iter()
                .find(|(c, _)| strsim::damerau_levenshtein(k, c) <= 2)
            {
                self.warnings.push(format!(
                    "{}:{}:{}: unknown var '{k}' (kept); did you mean '{known}'?",
                    self.label,
                    v.referenced.line(),
                    v.referenced.column()
                ));
            }
        }
        vars.into_iter().collect()
    }

    /// Depth of each group below `all` (longest path), rejecting cycles. Linear in groups
    /// and edges: one depth-first walk for a topological order (each group expanded once,
    /// so diamond-shaped hierarchies cost no more than trees), then one relaxation pass.
    fn depths(&self) -> Result<HashMap<String, usize>, InventoryError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let index = |g: &str| self.groups.get_index_of(g);
        let n = self.groups.len();
        let mut mark = vec![Mark::New; n];
        let mut post: Vec<usize> = Vec::with_capacity(n);
        let Some(root) = index("all") else {
            return Ok(HashMap::default());
        };
        // iterative DFS: (group, next child to look at)
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::Open;
        while let Some(&mut (g, ref mut next)) = stack.last_mut() {
            let children = &self.groups[g].children;
            if *next < children.len() {
                let c = index(&children[*next]).expect("children are defined groups");
                *next += 1;
                match mark[c] {
                    Mark::New => {
                        mark[c] = Mark::Open;
                        stack.push((c, 0));
                    }
                    Mark::Open => {
                        let at = stack.iter().position(|(s, _)| *s == c).unwrap_or(0);
                        let mut path: Vec<&str> = stack[at..]
                            .iter()
                            .map(|(s, _)| self.groups.get_index(*s).expect("index").0.as_str())
                            .collect();
                        let name = path[0];
                        path.push(name);
                        return Err(InventoryError::new(
                            self.label,
                            format!("group '{name}' is its own ancestor ({})", path.join(" → ")),
                        ));
                    }
                    Mark::Done => {}
                }
            } else {
                mark[g] = Mark::Done;
                post.push(g);
                stack.pop();
            }
        }
        let mut depth = vec![0usize; n];
        for &g in post.iter().rev() {
            for c in &self.groups[g].children {
                let c = index(c).expect("children are defined groups");
                depth[c] = depth[c].max(depth[g] + 1);
            }
        }
        Ok(post
            .iter()
            .map(|&g| (self.groups.get_index(g).expect("index").0.clone(), depth[g]))
            .collect())
    }

    fn finish(self, inv: &mut Inventory) -> Result<(), InventoryError> {
        let depths = self.depths()?;
        // host → groups that list it directly; then every ancestor of those.
        let mut parents: HashMap<&str, Vec<&str>> = HashMap::default();
        for (g, info) in &self.groups {
            for c in &info.children {
                parents.entry(c.as_str()).or_default().push(g.as_str());
            }
        }
        let mut direct: HashMap<&str, Vec<&str>> = HashMap::default();
        for (g, info) in &self.groups {
            for h in &info.hosts {
                direct.entry(h.as_str()).or_default().push(g.as_str());
            }
        }
        // Hosts with the same direct groups share the ordered group chain and group vars.
        type Chain<'g> = (
            Vec<&'g str>,
            HashMap<&'static str, &'g Spanned<Value>>,
            IndexMap<&'g str, &'g Value>,
        );
        let mut chains: HashMap<Vec<&str>, Chain<'_>> = HashMap::default();
        let no_groups: Vec<&str> = Vec::new();
        for (name, own_vars) in &self.host_vars {
            let key = direct.get(name.as_str()).unwrap_or(&no_groups);
            if !chains.contains_key(key) {
                let mut groups: HashSet<&str> = HashSet::default();
                let mut todo: Vec<&str> = key.clone();
                todo.push("all");
                while let Some(g) = todo.pop() {
                    if groups.insert(g)
                        && let Some(ps) = parents.get(g)
                    {
                        todo.extend(ps.iter().copied());
                    }
                }
                let mut ordered: Vec<&str> = groups.iter().copied().collect();
                ordered
                    .sort_by_key(|g| (depths.get(*g).copied().unwrap_or(0), self.groups[*g].order));
                let mut merged = HashMap::default();
                let mut all = IndexMap::default();
                for g in &ordered {
                    merge_layer(&mut merged, &self.groups[*g].vars);
                    merge_all(&mut all, &self.groups[*g].vars);
                }
                chains.insert(key.clone(), (ordered, merged, all));
            }
            let (ordered, group_vars, all_group_vars) = &chains[key];
            let mut merged = group_vars.clone();
            merge_layer(&mut merged, own_vars);
            let mut all = all_group_vars.clone();
            merge_all(&mut all, own_vars);
            let mut host = self.to_host(name, &merged)?;
            host.vars = all
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            let idx = inv.upsert(host);
            for g in ordered {
                inv.add_to_group(g, idx);
            }
            if direct
                .get(name.as_str())
                .is_none_or(|d| d.iter().all(|g| *g == "all"))
            {
                inv.add_to_group("ungrouped", idx);
            }
        }
        // Groups with no hosts still exist (so `--limit empty_group` is "no hosts", not "unknown").
        for g in self.groups.keys() {
            inv.groups.entry(g.clone()).or_default();
        }
        inv.warnings.extend(self.warnings);
        Ok(())
    }

    fn to_host(
        &self,
        name: &str,
        vars: &HashMap<&'static str, &Spanned<Value>>,
    ) -> Result<Host, InventoryError> {
        let text = |key: &str| -> Result<Option<String>, InventoryError> {
            let Some(v) = vars.get(key) else {
                return Ok(None);
            };
            match &v.value {
                Value::Null => Ok(None),
                Value::Str(s) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
                other => Err(loc_err(
                    self.label,
                    &v.referenced,
                    format!(
                        "{key} of host '{name}' must be a non-empty string, found {}",
                        other.kind()
                    ),
                )),
            }
        };
        let port = match vars.get("port") {
            None => None,
            Some(v) => {
                let p = match &v.value {
                    Value::Null => None,
                    Value::Int(i) => u16::try_from(*i).ok().filter(|p| *p > 0).map(Some),
                    Value::Str(s) => s.trim().parse::<u16>().ok().filter(|p| *p > 0).map(Some),
                    _ => None,
                };
                p.ok_or_else(|| {
                    loc_err(
                        self.label,
                        &v.referenced,
                        format!(
                            "port of host '{name}' must be a number from 1 to 65535, found {}{}",
                            v.value.kind(),
                            v.value
                                .as_text()
                                .map(|t| format!(" '{t}'"))
                                .unwrap_or_default()
                        ),
                    )
                })?
            }
        };
        let identity_files = match vars.get("identity_file") {
            None => Vec::new(),
            Some(v) => match &v.value {
                Value::Null => Vec::new(),
                Value::Str(s) => vec![s.clone()],
                Value::Seq(items) if items.iter().all(|i| matches!(i, Value::Str(_))) => {
                    items.iter().filter_map(|i| i.as_text()).collect()
                }
                other => {
                    return Err(loc_err(
                        self.label,
                        &v.referenced,
                        format!(
                            "identity_file of host '{name}' must be a path or a list of paths, found {}",
                            other.kind()
                        ),
                    ));
                }
            },
        };
        Ok(Host {
            name: name.to_string(),
            address: text("address")?,
            port,
            user: text("user")?,
            identity_files,
            jump: text("jump")?,
            vars: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
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
        load(&mut inv, "inv.yaml", text)?;
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
        let mut inv = super::Inventory::default();
        super::load(
            &mut inv,
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
