//! The user's OpenSSH client configuration (`~/.ssh/config`, `/etc/ssh/ssh_config`, or
//! `-F FILE`): parsed by the ssh2-config crate, queried once per selected host, with the file
//! each value came from kept for `--list-hosts`.
//!
//! Before the crate sees a file, prun inlines its `Include`s and turns `Match host` /
//! `Match originalhost` / `Match all` blocks into the equivalent `Host` lines (the crate knows
//! neither `Match` nor block scoping of included files). `Match` blocks with other criteria
//! (`user`, `exec`, …) cannot be evaluated here: they are skipped with a warning.

use crate::paths::{expand_tilde, home};
use ssh2_config::{HostParams, ParseRule, SshConfig as Parsed};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A host pattern that no host name can match (for `Match` blocks prun cannot evaluate).
const NEVER: &str = "prun.unsupported-match.invalid";
/// Include nesting limit (OpenSSH's).
const MAX_DEPTH: usize = 16;

/// Merged params by (file index, addresses of the matching blocks).
type QueryCache = std::collections::HashMap<(usize, Vec<usize>), std::rc::Rc<HostParams>>;

/// The parsed configuration files, first file first (its values win).
#[derive(Debug, Default)]
pub struct SshConfig {
    files: Vec<(String, Parsed)>,
    /// (file index, the blocks that match a name) → the merged params. Hosts matched by the
    /// same blocks share one merge: building a `HostParams` copies the crate's default
    /// algorithm lists, which for 10,000 hosts cost more than the rest of the query.
    cache: std::cell::RefCell<QueryCache>,
    /// Non-fatal problems, with file and line.
    pub warnings: Vec<String>,
}

/// A value and the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From<T> {
    pub value: T,
    pub file: String,
}

/// What the configuration says about one host (only what prun uses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    pub host_name: Option<From<String>>,
    pub user: Option<From<String>>,
    pub port: Option<From<u16>>,
    /// Every `IdentityFile` of every matching block, in order (they accumulate).
    pub identity_files: Vec<From<String>>,
    pub identities_only: Option<From<bool>>,
    /// `ProxyJump` hops; `none` gives an empty list.
    pub proxy_jump: Option<From<Vec<String>>>,
    pub connect_timeout: Option<From<Duration>>,
    pub user_known_hosts_files: Option<From<Vec<String>>>,
    pub strict_host_key_checking: Option<From<String>>,
    pub host_key_alias: Option<From<String>>,
    /// `ProxyCommand`, its words joined by single spaces, tokens not yet expanded (`none`
    /// as written).
    pub proxy_command: Option<From<String>>,
    /// `ForwardAgent yes|no`.
    pub forward_agent: Option<From<bool>>,
    /// `CertificateFile` (the first that applies), tokens not yet expanded.
    pub certificate_file: Option<From<String>>,
}

impl SshConfig {
    /// Load the configuration: `-F FILE` (`none`: nothing), else `~/.ssh/config` and
    /// `/etc/ssh/ssh_config` when they exist. A file that cannot be read or parsed is an
    /// error naming it.
    pub fn load(choice: Option<&str>) -> Result<SshConfig, String> {
        let mut cfg = SshConfig::default();
        match choice {
            Some("none") => {}
            Some(f) => {
                let path = expand_tilde(f);
                if !path.is_file() {
                    return Err(format!("-F {f}: no such ssh_config file"));
                }
                cfg.add_file(&path, f, home().join(".ssh"))?;
            }
            None => {
                let user = home().join(".ssh/config");
                if user.is_file() {
                    cfg.add_file(&user, "~/.ssh/config", home().join(".ssh"))?;
                }
                let system = Path::new("/etc/ssh/ssh_config");
                if system.is_file() {
                    cfg.add_file(system, "/etc/ssh/ssh_config", PathBuf::from("/etc/ssh"))?;
                }
            }
        }
        Ok(cfg)
    }

    /// Parse configuration text as if read from `display` (for tests and `-F`).
    pub fn add_text(&mut self, text: &str, display: &str, base: PathBuf) -> Result<(), String> {
        let mut flat = String::new();
        let mut state = Flatten {
            base,
            depth: 0,
            warnings: Vec::new(),
            origin: Vec::new(),
        };
        state.flatten(text, display, &mut flat)?;
        self.warnings.append(&mut state.warnings);
        let parse = |text: &str| {
            Parsed::default().home_dir(home()).parse(
                &mut BufReader::new(text.as_bytes()),
                ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
            )
        };
        let parsed = parse(&flat).map_err(|e| {
            // The parser does not say where. Its errors are about one line (a bad value, an
            // unsupported keyword), so parse each line alone: linear. Should none fail alone,
            // find the shortest failing prefix by bisection (a failing prefix stays failing).
            let lines: Vec<&str> = flat.lines().collect();
            let alone = (1..=lines.len()).find(|&k| parse(&format!("{}\n", lines[k - 1])).is_err());
            let bisect = || {
                let (mut good, mut bad) = (0usize, lines.len());
                while bad - good > 1 {
                    let mid = good + (bad - good) / 2;
                    if parse(&(lines[..mid].join("\n") + "\n")).is_err() {
                        bad = mid;
                    } else {
                        good = mid;
                    }
                }
                Some(bad)
            };
            let at = alone
                .or_else(bisect)
                .and_then(|k| state.origin.get(k - 1))
                .map(|(f, l)| format!("{f}:{l}"))
                .unwrap_or_else(|| display.to_string());
            format!("ssh_config {at}: {e} (use -F none to ignore it)")
        })?;
        self.files.push((display.to_string(), parsed));
        Ok(())
    }

    fn add_file(&mut self, path: &Path, display: &str, base: PathBuf) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read ssh_config {}: {e}", path.display()))?;
        self.add_text(&text, display, base)
    }

    /// The settings for host `name` (the name as given: the inventory name or `-H` entry).
    /// Tokens `%h` (the name), `%r` (remote user), `%u` (local user), `%d` (home) and `%%` are
    /// expanded in HostName and IdentityFile.
    pub fn query(&self, name: &str, local_user: &str) -> HostConfig {
        let mut out = HostConfig::default();
        let lower = name.to_ascii_lowercase();
        for (index, (file, parsed)) in self.files.iter().enumerate() {
            let blocks: Vec<usize> = parsed
                .intersecting_hosts(&lower)
                .map(|h| h as *const _ as usize)
                .collect();
            let p = self
                .cache
                .borrow_mut()
                .entry((index, blocks))
                .or_insert_with(|| std::rc::Rc::new(parsed.query(&lower)))
                .clone();
            let from = |value| {
                Some(From {
                    value,
                    file: file.clone(),
                })
            };
            let extra = |key: &str| p.unsupported_fields.get(key).filter(|v| !v.is_empty());
            if out.host_name.is_none()
                && let Some(h) = &p.host_name
            {
                out.host_name = from(expand_tokens(h, name, "", local_user));
            }
            if out.user.is_none()
                && let Some(u) = &p.user
            {
                out.user = from(u.clone());
            }
            if out.port.is_none()
                && let Some(v) = p.port
            {
                out.port = Some(From {
                    value: v,
                    file: file.clone(),
                });
            }
            for f in p.identity_file.iter().flatten() {
                out.identity_files.push(From {
                    value: f.to_string_lossy().into_owned(),
                    file: file.clone(),
                });
            }
            if out.identities_only.is_none()
                && let Some(v) = extra("identitiesonly")
            {
                out.identities_only = Some(From {
                    value: v[0].eq_ignore_ascii_case("yes"),
                    file: file.clone(),
                });
            }
            if out.proxy_jump.is_none()
                && let Some(j) = &p.proxy_jump
            {
                let hops: Vec<String> = if j.len() == 1 && j[0].eq_ignore_ascii_case("none") {
                    Vec::new()
                } else {
                    j.clone()
                };
                out.proxy_jump = Some(From {
                    value: hops,
                    file: file.clone(),
                });
            }
            if out.connect_timeout.is_none()
                && let Some(t) = p.connect_timeout
            {
                out.connect_timeout = Some(From {
                    value: t,
                    file: file.clone(),
                });
            }
            if out.user_known_hosts_files.is_none()
                && let Some(v) = extra("userknownhostsfile")
            {
                out.user_known_hosts_files = Some(From {
                    value: v.clone(),
                    file: file.clone(),
                });
            }
            if out.strict_host_key_checking.is_none()
                && let Some(v) = extra("stricthostkeychecking")
            {
                out.strict_host_key_checking = from(v[0].to_ascii_lowercase());
            }
            if out.host_key_alias.is_none()
                && let Some(v) = extra("hostkeyalias")
            {
                out.host_key_alias = from(v[0].clone());
            }
            if out.proxy_command.is_none()
                && let Some(v) = extra("proxycommand")
            {
                out.proxy_command = from(v.join(" "));
            }
            if out.certificate_file.is_none()
                && let Some(c) = &p.certificate_file
            {
                out.certificate_file = from(c.to_string_lossy().into_owned());
            }
            if out.forward_agent.is_none()
                && let Some(v) = p.forward_agent
            {
                out.forward_agent = Some(From {
                    value: v,
                    file: file.clone(),
                });
            }
        }
        out
    }
}

/// The ssh_config keywords prun reads (what `-o` may set), as OpenSSH spells them.
pub const KEYWORDS: &[&str] = &[
    "HostName",
    "User",
    "Port",
    "IdentityFile",
    "IdentitiesOnly",
    "CertificateFile",
    "ProxyJump",
    "ProxyCommand",
    "ForwardAgent",
    "ConnectTimeout",
    "UserKnownHostsFile",
    "StrictHostKeyChecking",
    "HostKeyAlias",
];

/// `-o` options as a configuration of their own (one `Host *` block), checked: each is
/// `Key=Value` or `Key Value` with a keyword of [`KEYWORDS`] (any case).
pub fn from_options(options: &[String]) -> Result<SshConfig, String> {
    let mut text = String::from("Host *\n");
    for o in options {
        let (k, v) = match o.split_once('=') {
            Some((k, v)) if !k.trim().contains(char::is_whitespace) => (k.trim(), v.trim()),
            _ => o
                .trim()
                .split_once(char::is_whitespace)
                .map(|(k, v)| (k, v.trim()))
                .ok_or_else(|| format!("-o {o}: expected Key=Value"))?,
        };
        let Some(kw) = KEYWORDS.iter().find(|kw| kw.eq_ignore_ascii_case(k)) else {
            return Err(format!(
                "-o {o}: prun does not use {k} (it reads {})",
                KEYWORDS.join(", ")
            ));
        };
        if v.is_empty() || v.contains('\n') {
            return Err(format!("-o {o}: {kw} needs a value"));
        }
        text.push_str(&format!("  {kw} {v}\n"));
    }
    let mut cfg = SshConfig::default();
    cfg.add_text(&text, "-o", home().join(".ssh"))
        .map_err(|e| {
            e.replace("ssh_config -o:2", "-o")
                .replace("(use -F none to ignore it)", "")
        })?;
    Ok(cfg)
}

/// Expand a `ProxyCommand`'s tokens: `%h` the address to reach (HostName), `%p` the port,
/// `%r` the remote user, `%n` the name as given, `%u` the local user, `%d` the home
/// directory, `%%` a `%`.
pub fn expand_proxy_tokens(
    s: &str,
    address: &str,
    port: u16,
    remote_user: &str,
    name: &str,
    local_user: &str,
) -> String {
    let port = port.to_string();
    expand(s, |t| match t {
        'h' => Some(address.into()),
        'p' => Some(port.as_str().into()),
        'r' => Some(remote_user.into()),
        'n' => Some(name.into()),
        'u' => Some(local_user.into()),
        'd' => Some(home().to_string_lossy().into_owned().into()),
        _ => None,
    })
}

/// Expand ssh_config `%` tokens prun knows; others are left as written.
pub fn expand_tokens(s: &str, host: &str, remote_user: &str, local_user: &str) -> String {
    expand(s, |t| match t {
        'h' | 'n' => Some(host.into()),
        'r' => Some(remote_user.into()),
        'u' => Some(local_user.into()),
        'd' => Some(home().to_string_lossy().into_owned().into()),
        _ => None,
    })
}

/// `s` with each `%X` replaced by `value(X)` (`%%` is `%`; unknown tokens stay as written).
fn expand<'a>(s: &str, value: impl Fn(char) -> Option<std::borrow::Cow<'a, str>>) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(t) => match value(t) {
                Some(v) => out.push_str(&v),
                None => {
                    out.push('%');
                    out.push(t);
                }
            },
            None => out.push('%'),
        }
    }
    out
}

/// Inlines `Include`s and rewrites `Match` lines into `Host` lines.
struct Flatten {
    /// Where relative Include paths are looked up (`~/.ssh` or `/etc/ssh`).
    base: PathBuf,
    depth: usize,
    warnings: Vec<String>,
    /// For every line written out: the file and line it came from (for error messages).
    origin: Vec<(String, usize)>,
}

impl Flatten {
    fn flatten(&mut self, text: &str, display: &str, out: &mut String) -> Result<(), String> {
        // The current block's header, re-emitted after an Include so the lines after it stay
        // in this block (an included file may open blocks of its own).
        let mut header: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let (keyword, rest) = split_keyword(line);
            match keyword.to_ascii_lowercase().as_str() {
                "host" => {
                    let h = format!("Host {}", rest.to_ascii_lowercase());
                    out.push_str(&h);
                    out.push('\n');
                    self.origin.push((display.to_string(), i + 1));
                    header = Some(h);
                }
                "match" => {
                    let h = match match_to_host(rest) {
                        Ok(patterns) => format!("Host {patterns}"),
                        Err(why) => {
                            self.warnings.push(format!(
                                "ssh_config {display}:{}: 'Match {rest}': {why}; prun skips this block",
                                i + 1
                            ));
                            format!("Host {NEVER}")
                        }
                    };
                    out.push_str(&h);
                    out.push('\n');
                    self.origin.push((display.to_string(), i + 1));
                    header = Some(h);
                }
                "include" => {
                    if self.depth >= MAX_DEPTH {
                        return Err(format!(
                            "ssh_config {display}:{}: Include nested more than {MAX_DEPTH} deep",
                            i + 1
                        ));
                    }
                    for arg in rest.split_whitespace() {
                        for path in self.include_paths(arg.trim_matches('"')) {
                            let Ok(inc) = std::fs::read_to_string(&path) else {
                                continue; // like OpenSSH: unreadable includes are skipped
                            };
                            self.depth += 1;
                            self.flatten(&inc, &path.display().to_string(), out)?;
                            self.depth -= 1;
                        }
                    }
                    if let Some(h) = &header {
                        out.push_str(h);
                        out.push('\n');
                    } else {
                        // back to the options before the first block: they apply to every host
                        out.push_str("Host *\n");
                    }
                    self.origin.push((display.to_string(), i + 1));
                }
                _ => {
                    out.push_str(raw);
                    out.push('\n');
                    self.origin.push((display.to_string(), i + 1));
                }
            }
        }
        Ok(())
    }

    /// The files an Include argument names (globs expanded, sorted like OpenSSH).
    fn include_paths(&self, arg: &str) -> Vec<PathBuf> {
        let p = if arg.starts_with('~') {
            expand_tilde(arg)
        } else if Path::new(arg).is_absolute() {
            PathBuf::from(arg)
        } else {
            self.base.join(arg)
        };
        let Ok(paths) = glob::glob(&p.to_string_lossy()) else {
            return Vec::new();
        };
        let mut v: Vec<PathBuf> = paths.flatten().filter(|p| p.is_file()).collect();
        v.sort();
        v
    }
}

/// `Keyword rest` or `Keyword=rest`.
fn split_keyword(line: &str) -> (&str, &str) {
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let rest = line[end..].trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    (&line[..end], rest)
}

/// The Host patterns equivalent to a `Match` line, when prun can evaluate it: `all`, one
/// `host` or `originalhost` list (prun matches both against the name as given), optionally
/// negated, and `final` (prun resolves in one pass, which is the final one).
fn match_to_host(criteria: &str) -> Result<String, String> {
    let words: Vec<&str> = criteria.split_whitespace().collect();
    let mut patterns: Option<String> = None;
    let mut all = false;
    let mut i = 0;
    while i < words.len() {
        let w = words[i].to_ascii_lowercase();
        let (neg, w) = match w.strip_prefix('!') {
            Some(r) => (true, r.to_string()),
            None => (false, w),
        };
        match w.as_str() {
            "all" if !neg => all = true,
            "final" if !neg => {}
            "host" | "originalhost" => {
                let Some(list) = words.get(i + 1) else {
                    return Err(format!("'{w}' needs a pattern list"));
                };
                if patterns.is_some() {
                    return Err("more than one host criterion".into());
                }
                let list = list.to_ascii_lowercase();
                let pats: Vec<&str> = list.split(',').filter(|p| !p.is_empty()).collect();
                patterns = Some(if neg {
                    let mut s = String::from("*");
                    for p in pats {
                        // `!host a,!b` would be a double negation: keep it simple and refuse
                        if p.starts_with('!') {
                            return Err("negated pattern inside a negated criterion".into());
                        }
                        s.push_str(&format!(" !{p}"));
                    }
                    s
                } else {
                    pats.join(" ")
                });
                i += 1;
            }
            other => {
                return Err(format!(
                    "the '{other}' criterion is not supported (prun evaluates only host, \
                     originalhost and all)"
                ));
            }
        }
        i += 1;
    }
    match (patterns, all) {
        (Some(p), _) => Ok(p),
        (None, true) => Ok("*".into()),
        (None, false) => Err("no criterion prun can evaluate".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> SshConfig {
        let mut c = SshConfig::default();
        c.add_text(text, "test.conf", PathBuf::from("/nonexistent"))
            .unwrap();
        c
    }

    #[test]
    fn a_syntax_error_deep_in_a_long_file_is_located_quickly() {
        let mut text = String::new();
        for i in 0..8000 {
            text.push_str(&format!("Host h{i}\n  Port {}\n", 1000 + i % 50000));
        }
        text.push_str("Host bad\n  Port notaport\n");
        let mut c = SshConfig::default();
        let e = c
            .add_text(&text, "big.conf", PathBuf::from("/nonexistent"))
            .unwrap_err();
        assert!(e.contains("big.conf:16002"), "{e}");
    }

    #[test]
    fn host_patterns_first_value_wins_and_sources() {
        let c = cfg(
            "Host web*\n  HostName %h.example.com\n  Port 2201\n  User deploy\n  \
             IdentityFile /k/web\n  IdentitiesOnly yes\nHost *\n  Port 22\n  User other\n  \
             IdentityFile /k/all\n  ConnectTimeout 7\n  StrictHostKeyChecking accept-new\n",
        );
        let h = c.query("WEB01", "me");
        assert_eq!(h.host_name.unwrap().value, "WEB01.example.com");
        assert_eq!(h.port.as_ref().unwrap().value, 2201);
        assert_eq!(h.port.unwrap().file, "test.conf");
        assert_eq!(h.user.unwrap().value, "deploy");
        let ids: Vec<_> = h.identity_files.iter().map(|f| f.value.as_str()).collect();
        assert_eq!(ids, ["/k/web", "/k/all"]);
        assert!(h.identities_only.unwrap().value);
        assert_eq!(h.connect_timeout.unwrap().value, Duration::from_secs(7));
        assert_eq!(h.strict_host_key_checking.unwrap().value, "accept-new");
        let db = c.query("db1", "me");
        assert_eq!(db.port.unwrap().value, 22);
        assert!(db.host_name.is_none());
    }

    #[test]
    fn match_host_and_unsupported_match() {
        let c = cfg("Match host db*,cache*\n  User dba\n\
             Match user root\n  Port 1\n\
             Match !host web*\n  HostKeyAlias other\n\
             Match all\n  ProxyJump bastion:2222\n");
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("test.conf:3"), "{:?}", c.warnings);
        let db = c.query("db7", "me");
        assert_eq!(db.user.unwrap().value, "dba");
        assert!(db.port.is_none());
        assert_eq!(db.host_key_alias.unwrap().value, "other");
        assert_eq!(db.proxy_jump.unwrap().value, ["bastion:2222"]);
        let web = c.query("web1", "me");
        assert!(web.user.is_none() && web.host_key_alias.is_none());
        let c = cfg("Host x\n  ProxyJump none\n");
        assert_eq!(
            c.query("x", "me").proxy_jump.unwrap().value,
            Vec::<String>::new()
        );
    }

    #[test]
    fn include_inlines_files_and_keeps_the_block() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf.d")).unwrap();
        std::fs::write(
            dir.path().join("conf.d/a.conf"),
            "Host app*\n  User appuser\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("conf.d/b.conf"), "Port 2022\n").unwrap();
        let mut c = SshConfig::default();
        c.add_text(
            "Host app1\n  Include conf.d/*.conf\n  HostName after-include\n",
            "main",
            dir.path().to_path_buf(),
        )
        .unwrap();
        let h = c.query("app1", "me");
        assert_eq!(h.user.unwrap().value, "appuser");
        assert_eq!(h.port.unwrap().value, 2022);
        assert_eq!(h.host_name.unwrap().value, "after-include");
        // a self-include stops at the depth limit with an error naming the file
        std::fs::write(dir.path().join("loop.conf"), "Include loop.conf\n").unwrap();
        let mut c = SshConfig::default();
        let e = c
            .add_text("Include loop.conf\n", "main", dir.path().to_path_buf())
            .unwrap_err();
        assert!(e.contains("loop.conf"), "{e}");
    }

    #[test]
    fn parse_errors_name_the_line() {
        let mut c = SshConfig::default();
        let e = c
            .add_text(
                "Host a\n  User x\n\nHost b\n  Port nope\n",
                "cfg",
                PathBuf::from("/nonexistent"),
            )
            .unwrap_err();
        assert!(e.contains("cfg:5"), "{e}");
    }

    #[test]
    fn tokens() {
        assert_eq!(expand_tokens("%h-%r-%u-%%", "h", "r", "u"), "h-r-u-%");
        assert_eq!(expand_tokens("plain", "h", "r", "u"), "plain");
    }
}
