//! The inventory: which hosts exist, how to reach them, and which groups they belong to.
//!
//! Sources, told apart by content: Ansible-shaped YAML ([`yaml`]), Ansible INI ([`ini`]), the
//! JSON of dynamic inventories ([`json`]), ClusterShell groups.d files ([`clush`]), plain
//! host lists (one `[user@]host[:port]` per
//! line) and `-H/--hosts` lists; directories, programs and stdin, and the `group_vars/` and
//! `host_vars/` beside them ([`sources`]). All of them load into one model ([`model`]),
//! resolved once with Ansible's precedence. Ranges expand everywhere ([`range`]); `--limit`
//! patterns select from the result ([`pattern`]). No network and no printing; only
//! [`sources`] reads files and runs dynamic inventories.

mod clush;
mod ini;
mod json;
mod model;
pub mod pattern;
pub mod range;
mod sources;
pub mod value;
mod yaml;

use indexmap::IndexMap;
use std::fmt;
use std::path::Path;

/// A host as the inventory describes it (before command-line overrides and defaults).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Host {
    /// The inventory name (what output is prefixed with and what `--limit` matches).
    pub name: String,
    /// Where to connect (`address` / `ansible_host`); the name when absent.
    pub address: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    /// `identity_file` / `ansible_ssh_private_key_file`, `~` not yet expanded.
    pub identity_files: Vec<String>,
    /// `jump`: the bastion to reach this host through, `[user@]host[:port]`, or `none`
    /// (also from `-J`/`ProxyJump`/`ProxyCommand ssh -W` in `ansible_ssh_common_args`).
    pub jump: Option<String>,
    /// `become` (`ansible_become`): run commands through sudo as this user
    /// (`become_user`, default root).
    pub become_user: Option<String>,
    /// Every var of the host after precedence (group vars, then its own), prun's keys and
    /// the rest alike: what `{name}` placeholders substitute ([`crate::template`]).
    pub vars: HostVars,
}

/// A host's vars: those it shares with every host of the same groups (one copy for all of
/// them), and its own on top.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostVars {
    shared: std::sync::Arc<IndexMap<String, value::Value>>,
    own: IndexMap<String, value::Value>,
}

impl HostVars {
    pub(crate) fn new(
        shared: std::sync::Arc<IndexMap<String, value::Value>>,
        own: IndexMap<String, value::Value>,
    ) -> HostVars {
        HostVars { shared, own }
    }

    /// The value of `name`, if the host has it.
    pub fn get(&self, name: &str) -> Option<&value::Value> {
        self.own.get(name).or_else(|| self.shared.get(name))
    }

    /// Set `name` for this host alone.
    pub fn insert(&mut self, name: String, v: value::Value) {
        self.own.insert(name, v);
    }
}

impl std::ops::Index<&str> for HostVars {
    type Output = value::Value;
    fn index(&self, name: &str) -> &value::Value {
        self.get(name).expect("no such var")
    }
}

/// Hosts plus group membership, in the order hosts were first seen.
#[derive(Debug, Default)]
pub struct Inventory {
    pub hosts: Vec<Host>,
    index: std::collections::HashMap<String, usize, foldhash::fast::RandomState>,
    /// Group name → indices of every host in the group or its descendants, ascending.
    pub groups: IndexMap<String, Vec<usize>>,
    /// Non-fatal problems (typos of prun keys), already formatted with file:line:col.
    pub warnings: Vec<String>,
    /// Sources loaded but not yet resolved ([`Inventory::finish`]).
    pending: model::Model,
    /// Directories whose `group_vars/` and `host_vars/` apply (beside each source).
    var_dirs: Vec<std::path::PathBuf>,
    /// `--playbook-dir`: its `group_vars/` and `host_vars/` win over the sources' own.
    playbook_dir: Option<std::path::PathBuf>,
}

/// An inventory problem, with the place it was found when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryError {
    /// File name, or a label like `--hosts`.
    pub source: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for InventoryError {}

impl InventoryError {
    pub(crate) fn new(source: &str, message: impl Into<String>) -> Self {
        InventoryError {
            source: source.to_string(),
            line: None,
            column: None,
            message: message.into(),
        }
    }
    pub(crate) fn at(source: &str, line: usize, message: impl Into<String>) -> Self {
        InventoryError {
            line: Some(line as u64),
            ..Self::new(source, message)
        }
    }
}

impl Inventory {
    /// Look a host up by inventory name.
    pub fn get(&self, name: &str) -> Option<&Host> {
        self.index.get(name).map(|&i| &self.hosts[i])
    }

    /// Index of a host by name.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Add a host, or merge the given settings into the existing host of the same name
    /// (settings that are `Some` win). Returns its index.
    pub fn upsert(&mut self, host: Host) -> usize {
        if let Some(&i) = self.index.get(&host.name) {
            let h = &mut self.hosts[i];
            if host.address.is_some() {
                h.address = host.address;
            }
            if host.port.is_some() {
                h.port = host.port;
            }
            if host.user.is_some() {
                h.user = host.user;
            }
            if !host.identity_files.is_empty() {
                h.identity_files = host.identity_files;
            }
            if host.jump.is_some() {
                h.jump = host.jump;
            }
            if host.become_user.is_some() {
                h.become_user = host.become_user;
            }
            for (k, v) in host.vars.shared.iter().chain(&host.vars.own) {
                h.vars.insert(k.clone(), v.clone());
            }
            i
        } else {
            let i = self.hosts.len();
            self.index.insert(host.name.clone(), i);
            self.hosts.push(host);
            i
        }
    }

    /// Add a host to a group's membership list.
    pub(crate) fn add_to_group(&mut self, group: &str, idx: usize) {
        let members = match self.groups.get_mut(group) {
            Some(m) => m,
            None => self.groups.entry(group.to_string()).or_default(),
        };
        if let Err(pos) = members.binary_search(&idx) {
            members.insert(pos, idx);
        }
    }

    /// Load one inventory file (YAML mapping, or else a plain host list) into `self`.
    pub fn load_file(&mut self, path: &Path) -> Result<(), InventoryError> {
        let label = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|e| InventoryError::new(&label, format!("cannot read inventory: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| InventoryError::new(&label, "inventory is not valid UTF-8 text"))?;
        self.add_text(&label, &text)
    }

    /// Load one source's text (any format, told by its content) and resolve the inventory
    /// at once: for a single source (tests, `-l @FILE`).
    pub fn load_str(&mut self, label: &str, text: &str) -> Result<(), InventoryError> {
        self.add_text(label, text)?;
        self.finish()
    }

    /// Add one source's text to the pending inventory: a plain host list, an Ansible INI
    /// file, or Ansible-shaped YAML.
    pub fn add_text(&mut self, label: &str, text: &str) -> Result<(), InventoryError> {
        match detect(text) {
            Format::HostList => self.load_host_list(label, text),
            Format::Ini => ini::load(&mut self.pending, label, text),
            Format::Yaml => yaml::load(&mut self.pending, label, text),
            Format::Json => json::load(&mut self.pending, label, text).map(|_| ()),
            Format::Clush => clush::load(&mut self.pending, label, text),
        }
    }

    /// `--playbook-dir`: read `DIR/group_vars/` and `DIR/host_vars/` too (they win).
    pub fn set_playbook_dir(&mut self, dir: &Path) {
        self.playbook_dir = Some(dir.to_path_buf());
    }

    /// Resolve everything added so far: the vars files beside the sources, then precedence
    /// over all of it, hosts and groups.
    pub fn finish(&mut self) -> Result<(), InventoryError> {
        self.load_vars_files()?;
        let model = std::mem::take(&mut self.pending);
        model.finish(self, "inventory")
    }

    /// Load a plain host list: one `[user@]host[:port]` per line (ranges allowed), `#` comments.
    pub fn load_host_list(&mut self, label: &str, text: &str) -> Result<(), InventoryError> {
        for (n, line) in text.lines().enumerate() {
            let line = strip_comment(line).trim();
            if line.is_empty() {
                continue;
            }
            for h in parse_host_spec(line).map_err(|m| InventoryError::at(label, n + 1, m))? {
                self.add_plain(h, label, n + 1);
            }
        }
        Ok(())
    }

    /// A host from a host list or `-H`: in `all`, with its user and port as its own vars.
    fn add_plain(&mut self, h: Host, label: &str, line: usize) {
        let file: std::sync::Arc<str> = std::sync::Arc::from(label);
        let at = (line > 0).then(|| model::At::line(&file, line)).flatten();
        let mut vars = Vec::new();
        if let Some(u) = h.user {
            vars.push((
                "user".to_string(),
                model::Var {
                    value: value::Value::Str(u),
                    at: at.clone(),
                },
            ));
        }
        if let Some(p) = h.port {
            vars.push((
                "port".to_string(),
                model::Var {
                    value: value::Value::Int(p.into()),
                    at,
                },
            ));
        }
        self.pending.ensure_group("all");
        self.pending.add_host("all", &h.name, &vars);
    }

    /// Add the hosts of a `-H/--hosts` list: comma-separated `[user@]host[:port]`, with
    /// ranges. Returns how many names it gave.
    pub fn add_host_list_arg(&mut self, list: &str) -> Result<usize, InventoryError> {
        let mut n = 0;
        for item in split_outside_brackets(list, ',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            for h in parse_host_spec(item).map_err(|m| InventoryError::new("--hosts", m))? {
                self.add_plain(h, "--hosts", 0);
                n += 1;
            }
        }
        if n == 0 {
            return Err(InventoryError::new("--hosts", "no host names given"));
        }
        Ok(n)
    }
}

/// What an inventory source is, told by its content (whatever the file is called).
#[derive(Debug, PartialEq)]
enum Format {
    HostList,
    Ini,
    Yaml,
    /// A dynamic inventory's `--list` output (`ansible-inventory --list`).
    Json,
    /// A ClusterShell groups.d file.
    Clush,
}

fn detect(text: &str) -> Format {
    if looks_like_host_list(text) {
        return Format::HostList;
    }
    if text.trim_start().starts_with('{') && json::is_script_json(text) {
        return Format::Json;
    }
    // A section header is INI (YAML has no top-level line like `[web]`); so is a file with no
    // line that YAML would read as a mapping key.
    let mut yaml_key = false;
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') || t == "---" {
            continue;
        }
        if !line.starts_with(char::is_whitespace) && t.starts_with('[') && ini::header(t).is_some()
        {
            return Format::Ini;
        }
        if is_yaml_key(t) {
            yaml_key = true;
        }
    }
    if yaml_key || text.trim_start().starts_with('{') {
        if clush::is_groups_file(text) {
            Format::Clush
        } else {
            Format::Yaml
        }
    } else {
        Format::Ini
    }
}

/// `key:` or `key: value` (YAML's mapping indicator: a colon followed by a space or the end).
fn is_yaml_key(t: &str) -> bool {
    let t = t.strip_prefix("- ").unwrap_or(t);
    t.ends_with(':') || t.contains(": ")
}

fn strip_comment(line: &str) -> &str {
    line.split_once('#').map_or(line, |(a, _)| a)
}

/// A plain host list has, on every non-comment line, one token without spaces or YAML syntax.
fn looks_like_host_list(text: &str) -> bool {
    let mut any = false;
    for line in text.lines() {
        let line = strip_comment(line).trim();
        if line.is_empty() {
            continue;
        }
        if line == "---" {
            return false;
        }
        if line.contains(char::is_whitespace)
            || line.ends_with(':')
            || line.starts_with('-')
            || (line.starts_with('[') && !is_ipv6_bracket(line))
            || line.contains(['{', '}', '"', '\''])
            || parse_host_spec(line).is_err()
        {
            return false;
        }
        any = true;
    }
    any
}

/// `[2001:db8::1]…`: a bracketed IPv6 literal rather than a YAML list or a range.
fn is_ipv6_bracket(s: &str) -> bool {
    s.strip_prefix('[')
        .and_then(|r| r.split(']').next())
        .is_some_and(|a| a.matches(':').count() >= 2)
}

/// Split `s` at `sep` where the separator is not inside `[...]`.
pub(crate) fn split_outside_brackets(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            c if c == sep && depth == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Parse `[user@]host[:port]` (host may carry ranges) into hosts.
pub fn parse_host_spec(spec: &str) -> Result<Vec<Host>, String> {
    let (user, rest) = match spec.split_once('@') {
        Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
        Some(_) => return Err(format!("'{spec}': empty user name before '@'")),
        None => (None, spec),
    };
    // An IPv6 literal in brackets: [2001:db8::1] or [::1]:2222 (no ranges).
    if is_ipv6_bracket(rest)
        && let Some((addr, after)) = rest[1..].split_once(']')
    {
        let port =
            match after.strip_prefix(':') {
                None if after.is_empty() => None,
                Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                    format!("'{spec}': port '{p}' is not a number from 1 to 65535")
                })?),
                None => return Err(format!("'{spec}': expected [ipv6-address]:port")),
            };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("'{spec}': '{addr}' is not an IPv6 address"));
        }
        return Ok(vec![Host {
            name: addr.to_string(),
            port,
            user,
            ..Host::default()
        }]);
    }
    // The port is after the last ':' that is outside brackets.
    let pieces = split_outside_brackets(rest, ':');
    let (host, port) = match pieces.len() {
        1 => (rest, None),
        2 => {
            let p = pieces[1];
            let port: u16 =
                p.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
                    format!("'{spec}': port '{p}' is not a number from 1 to 65535")
                })?;
            (pieces[0], Some(port))
        }
        _ => return Err(format!("'{spec}': expected [user@]host[:port]")),
    };
    if host.is_empty() {
        return Err(format!("'{spec}': empty host name"));
    }
    if host.contains(|c: char| c.is_whitespace() || c == '/')
        || split_outside_brackets(host, ',').len() > 1
    {
        return Err(format!("'{spec}': '{host}' is not a host name"));
    }
    let names = range::expand(host).map_err(|e| e.to_string())?;
    Ok(names
        .into_iter()
        .map(|name| Host {
            name,
            address: None,
            port,
            user: user.clone(),
            identity_files: Vec::new(),
            jump: None,
            become_user: None,
            vars: HostVars::default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(inv: &Inventory) -> Vec<&str> {
        inv.hosts.iter().map(|h| h.name.as_str()).collect()
    }

    #[test]
    fn host_spec_forms() {
        let h = parse_host_spec("deploy@web[01:02]:2222").unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[1].name, "web02");
        assert_eq!(h[1].port, Some(2222));
        assert_eq!(h[1].user.as_deref(), Some("deploy"));
        assert!(parse_host_spec("web:0").is_err());
        assert!(parse_host_spec("web:x").is_err());
        assert!(parse_host_spec("@web").is_err());
        assert!(parse_host_spec("a:b:c").is_err());
        let h = parse_host_spec("root@[::1]:2222").unwrap();
        assert_eq!((h[0].name.as_str(), h[0].port), ("::1", Some(2222)));
        assert_eq!(parse_host_spec("[fe80::1]").unwrap()[0].port, None);
        assert!(parse_host_spec("[::zz]").is_err());
    }

    #[test]
    fn plain_host_list_file() {
        let mut inv = Inventory::default();
        inv.load_str(
            "hosts.txt",
            "# fleet\nweb[1-2]\nroot@db1:2200  # primary\n\n10.0.0.5\n[::1]:2201\n",
        )
        .unwrap();
        assert_eq!(names(&inv), ["web1", "web2", "db1", "10.0.0.5", "::1"]);
        assert_eq!(inv.get("db1").unwrap().port, Some(2200));
        assert_eq!(inv.groups["all"], vec![0, 1, 2, 3, 4]);
        let mut inv = Inventory::default();
        assert!(
            inv.load_str("x", "[1,2]").is_err(),
            "a YAML list is not a host list"
        );
    }

    #[test]
    fn host_list_error_names_line() {
        let mut inv = Inventory::default();
        let e = inv
            .load_host_list("hosts.txt", "web1\nweb[3:1]\n")
            .unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.to_string().starts_with("hosts.txt:2: "), "{e}");
    }

    #[test]
    fn hosts_arg_with_ranges_and_merge() {
        let mut inv = Inventory::default();
        let n = inv.add_host_list_arg("web[01-03,07],db-[a:b]").unwrap();
        assert_eq!(n, 6);
        inv.add_host_list_arg("root@web02:2200").unwrap();
        inv.finish().unwrap();
        assert_eq!(
            names(&inv),
            ["web01", "web02", "web03", "web07", "db-a", "db-b"]
        );
        let w = inv.get("web02").unwrap();
        assert_eq!((w.user.as_deref(), w.port), (Some("root"), Some(2200)));
        assert!(inv.add_host_list_arg(",").is_err());
    }
}
