//! The inventory every source loads into before hosts are resolved: groups (vars, children,
//! hosts), each host's own vars, and the vars of `group_vars/` and `host_vars/` files —
//! then Ansible's precedence over all of it, once, when every source is in ([`Model::finish`]):
//!
//! the inventory's group vars (`all`'s, then every other group's) < `group_vars/all` <
//! the other groups' `group_vars/` files < the host's inventory vars < its `host_vars/`
//! files (files beside the inventories, then those of `--playbook-dir`), groups in each
//! layer ordered by depth below `all` (parents before children), then
//! `ansible_group_priority`, then name — Ansible's `sort_groups` and the default
//! `VARIABLE_PRECEDENCE` of its variable manager. Within one layer prun's own spelling of a
//! key beats the `ansible_*` one.
//! Pure: the sources' parsers and the vars-file reader feed it.

use super::value::Value;
use super::{Host, Inventory, InventoryError};
use std::sync::Arc;

type State = foldhash::fast::RandomState;
type HashMap<K, V> = std::collections::HashMap<K, V, State>;
type HashSet<K> = std::collections::HashSet<K, State>;
type IndexMap<K, V> = indexmap::IndexMap<K, V, State>;
type IndexSet<K> = indexmap::IndexSet<K, State>;

/// Where a value was written: file, line, column when known.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct At {
    pub file: Arc<str>,
    pub line: Option<u64>,
    pub column: Option<u64>,
}

impl At {
    pub fn file(file: &Arc<str>) -> Option<At> {
        Some(At {
            file: file.clone(),
            line: None,
            column: None,
        })
    }
    pub fn line(file: &Arc<str>, line: usize) -> Option<At> {
        Some(At {
            file: file.clone(),
            line: Some(line as u64),
            column: None,
        })
    }
}

/// A var's value and where it was set.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Var {
    pub value: Value,
    pub at: Option<At>,
}

pub(crate) type Vars = Vec<(String, Var)>;

/// The settings prun reads from vars: canonical name first, then accepted aliases.
pub(crate) const KEYS: &[(&str, &[&str])] = &[
    ("user", &["ansible_user", "ansible_ssh_user"]),
    ("address", &["ansible_host", "ansible_ssh_host"]),
    ("port", &["ansible_port", "ansible_ssh_port"]),
    ("identity_file", &["ansible_ssh_private_key_file"]),
    ("jump", &[]),
    ("become", &["ansible_become", "ansible_sudo"]),
    ("become_user", &["ansible_become_user", "ansible_sudo_user"]),
    ("become_method", &["ansible_become_method"]),
    ("ssh_common_args", &["ansible_ssh_common_args"]),
    ("ssh_extra_args", &["ansible_ssh_extra_args"]),
];

pub(crate) fn canonical(key: &str) -> Option<&'static str> {
    KEYS.iter()
        .find(|(c, aliases)| *c == key || aliases.contains(&key))
        .map(|(c, _)| *c)
}

#[derive(Default)]
struct GroupInfo {
    /// Definition order (kept for listings; precedence sorts by depth, priority, name).
    #[allow(dead_code)]
    order: usize,
    vars: Vars,
    children: Vec<String>,
    hosts: IndexSet<String>,
}

/// Groups, hosts and vars from every source, before precedence.
#[derive(Default)]
pub(crate) struct Model {
    groups: IndexMap<String, GroupInfo>,
    /// host name → its own inventory vars, in order of appearance (hosts in the order they
    /// were first seen).
    host_vars: IndexMap<String, Vars>,
    /// `group_vars/NAME…` files, by group, in the order they were read: next to the
    /// inventories (tier 0), then in `--playbook-dir` (tier 1), which wins.
    group_files: [HashMap<String, Vars>; 2],
    /// `host_vars/NAME…` files, by host, in the same two tiers.
    host_files: [HashMap<String, Vars>; 2],
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Model({} groups, {} hosts pending)",
            self.groups.len(),
            self.host_vars.len()
        )
    }
}

fn err_at(at: Option<&At>, fallback: &str, msg: impl Into<String>) -> InventoryError {
    InventoryError {
        source: at.map_or_else(|| fallback.to_string(), |a| a.file.to_string()),
        line: at.and_then(|a| a.line),
        column: at.and_then(|a| a.column),
        message: msg.into(),
    }
}

/// Overlay one layer of vars (prun's own spelling beats an ansible_* alias in the same layer).
fn merge_layer<'a>(merged: &mut HashMap<&'static str, &'a Var>, layer: &'a [(String, Var)]) {
    let mut canon: Vec<(&'static str, &Var)> = Vec::new();
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

/// Overlay one layer onto every var seen so far (later layers win).
fn merge_all<'a>(merged: &mut IndexMap<&'a str, &'a Value>, layer: &'a [(String, Var)]) {
    for (k, v) in layer {
        merged.insert(k.as_str(), &v.value);
    }
}

impl Model {
    /// The group `name`, created (under nothing yet) when new.
    pub fn ensure_group(&mut self, name: &str) {
        self.group(name);
    }

    fn group(&mut self, name: &str) -> &mut GroupInfo {
        if !self.groups.contains_key(name) {
            let n = self.groups.len();
            self.groups.insert(
                name.to_string(),
                GroupInfo {
                    order: n,
                    ..Default::default()
                },
            );
        }
        self.groups.get_mut(name).expect("just inserted")
    }

    /// Make `child` a child of `parent` (both created when new).
    pub fn add_child(&mut self, parent: &str, child: &str) {
        self.group(child);
        let p = self.group(parent);
        if !p.children.iter().any(|c| c == child) {
            p.children.push(child.to_string());
        }
    }

    /// Add vars to a group's inventory vars (later ones win).
    pub fn add_group_vars(&mut self, group: &str, vars: Vars) {
        self.group(group).vars.extend(vars);
    }

    /// Put `host` in `group` with these inventory vars (merged into any it has).
    pub fn add_host(&mut self, group: &str, host: &str, vars: &[(String, Var)]) {
        self.host_vars
            .entry(host.to_string())
            .or_default()
            .extend(vars.iter().cloned());
        self.group(group).hosts.insert(host.to_string());
    }

    /// Group names, in order of definition.
    pub fn group_names(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    /// Host names, in order of first appearance.
    pub fn host_names(&self) -> impl Iterator<Item = &str> {
        self.host_vars.keys().map(String::as_str)
    }

    /// Vars from a `group_vars/` file for `group` (later files win); `tier` 0 beside an
    /// inventory, 1 in the playbook directory.
    pub fn add_group_file_vars(&mut self, tier: usize, group: &str, vars: Vars) {
        self.group_files[tier.min(1)]
            .entry(group.to_string())
            .or_default()
            .extend(vars);
    }

    /// Vars from a `host_vars/` file for `host` (later files win).
    pub fn add_host_file_vars(&mut self, tier: usize, host: &str, vars: Vars) {
        self.host_files[tier.min(1)]
            .entry(host.to_string())
            .or_default()
            .extend(vars);
    }

    /// Warn about likely typos of prun's own keys.
    pub fn check_vars(&mut self, vars: &[(String, Var)]) {
        for (k, v) in vars {
            if canonical(k).is_some() || k.starts_with("ansible_") || k.len() < 3 {
                continue;
            }
            if let Some((known, _)) = KEYS
                .iter()
                .find(|(c, _)| strsim::damerau_levenshtein(k, c) <= 2)
            {
                let place = match &v.at {
                    Some(At {
                        file,
                        line: Some(l),
                        column: Some(c),
                    }) => format!("{file}:{l}:{c}"),
                    Some(At {
                        file,
                        line: Some(l),
                        ..
                    }) => format!("{file}:{l}"),
                    Some(a) => a.file.to_string(),
                    None => "inventory".into(),
                };
                self.warnings.push(format!(
                    "{place}: unknown var '{k}' (kept); did you mean '{known}'?"
                ));
            }
        }
    }

    /// Depth of each group below `all` (longest path), rejecting cycles. Linear in groups
    /// and edges: one depth-first walk for a topological order (each group expanded once,
    /// so diamond-shaped hierarchies cost no more than trees), then one relaxation pass.
    fn depths(&self, label: &str) -> Result<Vec<usize>, InventoryError> {
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
        let mut depth = vec![0usize; n];
        let Some(root) = index("all") else {
            return Ok(depth);
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
                            label,
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
        for &g in post.iter().rev() {
            for c in &self.groups[g].children {
                let c = index(c).expect("children are defined groups");
                depth[c] = depth[c].max(depth[g] + 1);
            }
        }
        Ok(depth)
    }

    /// `ansible_group_priority` of a group (from its inventory vars; default 1).
    fn priority(&self, g: usize) -> i128 {
        self.groups[g]
            .vars
            .iter()
            .rev()
            .find(|(k, _)| k == "ansible_group_priority")
            .and_then(|(_, v)| match &v.value {
                Value::Int(i) => Some(*i),
                Value::Str(s) => s.trim().parse().ok(),
                _ => None,
            })
            .unwrap_or(1)
    }

    /// Apply precedence and add every host (with its groups) to `inv`. `label` names the
    /// inventory in errors that have no better place.
    pub fn finish(mut self, inv: &mut Inventory, label: &str) -> Result<(), InventoryError> {
        if !self.groups.contains_key("all") {
            self.group("all");
        }
        // every group is under `all`; top-level groups were put there by their source
        let orphans: Vec<String> = {
            let mut has_parent: HashSet<&str> = HashSet::default();
            for g in self.groups.values() {
                for c in &g.children {
                    has_parent.insert(c.as_str());
                }
            }
            self.groups
                .keys()
                .filter(|g| *g != "all" && !has_parent.contains(g.as_str()))
                .cloned()
                .collect()
        };
        for g in orphans {
            self.add_child("all", &g);
        }
        let depths = self.depths(label)?;
        let all_idx = self.groups.get_index_of("all").expect("all exists");
        // host → groups that list it directly; then every ancestor of those.
        let mut parents: HashMap<usize, Vec<usize>> = HashMap::default();
        for (gi, info) in self.groups.values().enumerate() {
            for c in &info.children {
                let ci = self.groups.get_index_of(c).expect("defined");
                parents.entry(ci).or_default().push(gi);
            }
        }
        let mut direct: HashMap<&str, Vec<usize>> = HashMap::default();
        for (gi, info) in self.groups.values().enumerate() {
            for h in &info.hosts {
                direct.entry(h.as_str()).or_default().push(gi);
            }
        }
        let empty: Vars = Vec::new();
        let group_name = |gi: usize| self.groups.get_index(gi).expect("index").0.as_str();
        let group_file = |tier: usize, gi: usize| -> &Vars {
            self.group_files[tier].get(group_name(gi)).unwrap_or(&empty)
        };
        // Hosts with the same direct groups share the ordered group chain and group vars.
        type Chain<'g> = (
            Vec<usize>,
            HashMap<&'static str, &'g Var>,
            Arc<indexmap::IndexMap<String, Value>>,
        );
        let mut chains: HashMap<Vec<usize>, Chain<'_>> = HashMap::default();
        let mut ssh_warnings: IndexSet<String> = IndexSet::default();
        let no_groups: Vec<usize> = Vec::new();
        for (name, own_vars) in &self.host_vars {
            let key = direct.get(name.as_str()).unwrap_or(&no_groups);
            if !chains.contains_key(key) {
                let mut groups: HashSet<usize> = HashSet::default();
                let mut todo: Vec<usize> = key.clone();
                todo.push(all_idx);
                while let Some(g) = todo.pop() {
                    if groups.insert(g)
                        && let Some(ps) = parents.get(&g)
                    {
                        todo.extend(ps.iter().copied());
                    }
                }
                let mut ordered: Vec<usize> = groups.into_iter().collect();
                ordered.sort_by(|a, b| {
                    (depths[*a], self.priority(*a), group_name(*a)).cmp(&(
                        depths[*b],
                        self.priority(*b),
                        group_name(*b),
                    ))
                });
                // the inventory's group vars (all's, then the others'), group_vars/all
                // (beside the inventory, then the playbook's), the other groups'
                // group_vars files
                let mut merged = HashMap::default();
                let mut every = IndexMap::default();
                let others: Vec<usize> =
                    ordered.iter().copied().filter(|g| *g != all_idx).collect();
                let mut layers: Vec<&Vars> = vec![&self.groups[all_idx].vars];
                layers.extend(others.iter().map(|g| &self.groups[*g].vars));
                layers.push(group_file(0, all_idx));
                layers.push(group_file(1, all_idx));
                layers.extend(others.iter().map(|g| group_file(0, *g)));
                layers.extend(others.iter().map(|g| group_file(1, *g)));
                for l in layers {
                    merge_layer(&mut merged, l);
                    merge_all(&mut every, l);
                }
                let shared: indexmap::IndexMap<String, Value> = every
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect();
                chains.insert(key.clone(), (ordered, merged, Arc::new(shared)));
            }
            let (ordered, group_vars, shared) = &chains[key];
            let mut merged = group_vars.clone();
            let mut every: IndexMap<&str, &Value> = IndexMap::default();
            let files0 = self.host_files[0].get(name).unwrap_or(&empty);
            let files1 = self.host_files[1].get(name).unwrap_or(&empty);
            for l in [own_vars, files0, files1] {
                merge_layer(&mut merged, l);
                merge_all(&mut every, l);
            }
            let mut host = to_host(label, name, &merged, &mut ssh_warnings)?;
            host.vars = super::HostVars::new(
                shared.clone(),
                every
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            );
            let idx = inv.upsert(host);
            for g in ordered {
                inv.add_to_group(group_name(*g), idx);
            }
            if key
                .iter()
                .all(|g| *g == all_idx || group_name(*g) == "ungrouped")
            {
                inv.add_to_group("ungrouped", idx);
            }
        }
        // Groups with no hosts still exist (so `--limit empty_group` is "no hosts", not "unknown").
        for g in self.groups.keys() {
            inv.groups.entry(g.clone()).or_default();
        }
        inv.warnings.append(&mut self.warnings);
        inv.warnings.extend(ssh_warnings);
        Ok(())
    }
}

/// A host's prun settings from its merged vars.
/// An Ansible boolean (`true`, `yes`, `on`, `1`, any case; a YAML/INI boolean or number).
fn truthy(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Int(i) => Some(*i != 0),
        Value::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" | "y" => Some(true),
            "false" | "no" | "off" | "0" | "n" | "" => Some(false),
            _ => None,
        },
        Value::Null => Some(false),
        _ => None,
    }
}

/// The bastion that OpenSSH options in `ansible_ssh_common_args`/`_extra_args` name: `-J X`,
/// `-o ProxyJump=X`, or `-o ProxyCommand=ssh … -W %h:%p [user@]host` (with `-p`/`-l`).
/// Other options are listed in `ignored`.
pub(crate) fn jump_from_ssh_args(args: &str, ignored: &mut Vec<String>) -> Option<String> {
    let words = shlex::split(args)?;
    let mut jump = None;
    let mut i = 0;
    let take = |i: &mut usize| -> Option<String> {
        *i += 1;
        words.get(*i).cloned()
    };
    while i < words.len() {
        let w = &words[i];
        let opt = if let Some(v) = w.strip_prefix("-J") {
            Some((
                "proxyjump".to_string(),
                if v.is_empty() {
                    take(&mut i)?
                } else {
                    v.to_string()
                },
            ))
        } else if let Some(v) = w.strip_prefix("-o") {
            let kv = if v.is_empty() {
                take(&mut i)?
            } else {
                v.to_string()
            };
            let (k, v) = match kv.split_once('=') {
                Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
                None => match kv.trim().split_once(char::is_whitespace) {
                    Some((k, v)) => (k.to_string(), v.trim().to_string()),
                    None => (kv.clone(), String::new()),
                },
            };
            Some((k.to_ascii_lowercase(), v))
        } else {
            ignored.push(w.clone());
            None
        };
        if let Some((k, v)) = opt {
            match k.as_str() {
                "proxyjump" => jump = Some(v),
                "proxycommand" => match ssh_w_target(&v) {
                    Some(j) => jump = Some(j),
                    None => ignored.push(format!("ProxyCommand={v}")),
                },
                _ => ignored.push(format!("-o {k}={v}")),
            }
        }
        i += 1;
    }
    jump
}

/// `ssh [-q] [-p PORT] [-l USER] -W %h:%p [user@]host` → `user@host:port`.
fn ssh_w_target(cmd: &str) -> Option<String> {
    let w = shlex::split(cmd)?;
    if w.first().map(|p| p.rsplit('/').next().unwrap_or(p)) != Some("ssh") {
        return None;
    }
    let (mut port, mut user, mut host, mut forwards) = (None, None, None, false);
    let mut i = 1;
    while i < w.len() {
        match w[i].as_str() {
            "-W" => {
                forwards = w.get(i + 1).is_some_and(|t| t == "%h:%p" || t == "[%h]:%p");
                i += 1;
            }
            "-p" => {
                port = w.get(i + 1).cloned();
                i += 1;
            }
            "-l" => {
                user = w.get(i + 1).cloned();
                i += 1;
            }
            "-i" | "-F" | "-o" => i += 1,
            o if o.starts_with('-') => {}
            h => host = Some(h.to_string()),
        }
        i += 1;
    }
    let host = host?;
    if !forwards {
        return None;
    }
    let mut spec = match (user, host.contains('@')) {
        (Some(u), false) => format!("{u}@{host}"),
        _ => host,
    };
    if let Some(p) = port {
        spec.push_str(&format!(":{p}"));
    }
    Some(spec)
}

fn to_host(
    label: &str,
    name: &str,
    vars: &HashMap<&'static str, &Var>,
    warnings: &mut IndexSet<String>,
) -> Result<Host, InventoryError> {
    let text = |key: &str| -> Result<Option<String>, InventoryError> {
        let Some(v) = vars.get(key) else {
            return Ok(None);
        };
        match &v.value {
            Value::Null => Ok(None),
            Value::Str(s) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            other => Err(err_at(
                v.at.as_ref(),
                label,
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
                err_at(
                    v.at.as_ref(),
                    label,
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
                return Err(err_at(
                    v.at.as_ref(),
                    label,
                    format!(
                        "identity_file of host '{name}' must be a path or a list of paths, found {}",
                        other.kind()
                    ),
                ));
            }
        },
    };
    // become → sudo (the only method prun has)
    let become_user = match vars.get("become") {
        Some(v) if truthy(&v.value) == Some(true) => {
            if let Some(m) = vars.get("become_method")
                && let Some(method) = m.value.as_text()
                && method.trim() != "sudo"
            {
                return Err(err_at(
                    m.at.as_ref(),
                    label,
                    format!(
                        "host '{name}' becomes with '{method}', and prun runs sudo only; set \
                         ansible_become_method: sudo, or select the host out"
                    ),
                ));
            }
            Some(text("become_user")?.unwrap_or_else(|| "root".into()))
        }
        Some(v) if truthy(&v.value).is_none() => {
            return Err(err_at(
                v.at.as_ref(),
                label,
                format!(
                    "become of host '{name}' must be true or false, found {}",
                    v.value.kind()
                ),
            ));
        }
        _ => None,
    };
    // a bastion from the OpenSSH options Ansible passes
    let mut jump = text("jump")?;
    if jump.is_none() {
        let mut ignored = Vec::new();
        for key in ["ssh_common_args", "ssh_extra_args"] {
            if let Some(v) = vars.get(key)
                && let Some(args) = v.value.as_text()
                && let Some(j) = jump_from_ssh_args(&args, &mut ignored)
            {
                jump = Some(j);
            }
        }
        if !ignored.is_empty() {
            warnings.insert(format!(
                "ansible_ssh_common_args/extra_args: prun reads -J, ProxyJump and \
                 'ProxyCommand=ssh -W %h:%p HOST' there; ignored: {}",
                ignored.join(" ")
            ));
        }
    }
    Ok(Host {
        name: name.to_string(),
        address: text("address")?,
        port,
        user: text("user")?,
        identity_files,
        jump,
        become_user,
        vars: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bastions_from_ansible_ssh_args() {
        let mut ign = Vec::new();
        assert_eq!(
            jump_from_ssh_args("-o ProxyJump=ops@bastion:2222", &mut ign).as_deref(),
            Some("ops@bastion:2222")
        );
        assert_eq!(
            jump_from_ssh_args("-J b1,b2", &mut ign).as_deref(),
            Some("b1,b2")
        );
        assert_eq!(
            jump_from_ssh_args(
                "-o ProxyCommand=\"ssh -W %h:%p -q -p 2200 ops@bastion.example\"",
                &mut ign
            )
            .as_deref(),
            Some("ops@bastion.example:2200")
        );
        assert!(ign.is_empty(), "{ign:?}");
        assert_eq!(
            jump_from_ssh_args(
                "-o StrictHostKeyChecking=no -o 'ProxyCommand nc -X 5 %h %p'",
                &mut ign
            ),
            None
        );
        assert_eq!(ign.len(), 2, "{ign:?}");
    }

    #[test]
    fn become_is_sudo() {
        let mut inv = Inventory::default();
        inv.load_str(
            "hosts",
            "[db]\nd1 ansible_become=yes ansible_become_user=postgres\nd2 ansible_become=True\nd3\n",
        )
        .unwrap();
        assert_eq!(
            inv.get("d1").unwrap().become_user.as_deref(),
            Some("postgres")
        );
        assert_eq!(inv.get("d2").unwrap().become_user.as_deref(), Some("root"));
        assert_eq!(inv.get("d3").unwrap().become_user, None);
        let mut inv = Inventory::default();
        let e = inv
            .load_str(
                "hosts",
                "[db]\nd1 ansible_become=yes ansible_become_method=su\n",
            )
            .unwrap_err();
        assert!(e.message.contains("sudo only"), "{e}");
    }
}
