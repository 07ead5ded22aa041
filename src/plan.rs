//! Command line + inventory → a validated run plan: the selected targets with their resolved
//! address, port, user and keys, and the run-wide settings. Every problem here is a usage
//! error (exit 2) with a message that names what and where; nothing has been run yet.

use crate::cli::Sub;
use crate::cli::{Cli, HostKeyCheck, Order};
use crate::inventory::{Inventory, pattern};
use crate::paths::expand_tilde;
use crate::rollout::{Rollout, natural_cmp};
use crate::secret::Secret;
use crate::ssh::keys::{KeyFile, KeyStore};
use crate::ssh::{KnownHosts, Policy};
use crate::sshconfig::SshConfig;
use crate::target::{PullSpec, PushItem, PushSpec, Settings, Target, Work};
use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// `--connect-timeout` when neither the command line nor ssh_config sets one.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A problem with what the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Everything a run needs.
pub struct Plan {
    pub targets: Vec<Target>,
    /// The command, or a description of the transfer (for the run header and reports).
    pub command: String,
    pub work: Work,
    pub settings: Settings,
    pub default_keys: Vec<Arc<KeyFile>>,
    pub parallel: usize,
    pub warnings: Vec<String>,
    /// Batches, failure threshold, waits and questions (`--batch`, `--max-fail`, ...).
    pub rollout: Rollout,
    /// Each target's batch, from 1 (empty without batches).
    pub batches: Vec<u32>,
    /// Each target's inventory vars (for `{name}` in `prun shell` lines; empty otherwise).
    pub host_vars: Vec<crate::inventory::HostVars>,
}

/// The local user name, for hosts with no user set.
pub fn local_user() -> String {
    if let Ok(u) = std::env::var("USER")
        && !u.is_empty()
    {
        return u;
    }
    // SAFETY: getpwuid returns a pointer to static storage or null; we copy the name at once.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned();
        }
    }
    "root".to_string()
}

/// Load the inventory sources named on the command line.
pub fn inventory(cli: &Cli) -> Result<Inventory, UsageError> {
    if cli.inventory.is_empty() && cli.hosts.is_empty() {
        return Err(UsageError(
            "no hosts: give an inventory with -i FILE or hosts with -H LIST".into(),
        ));
    }
    let stdin_sources = cli
        .inventory
        .iter()
        .filter(|p| p.as_os_str() == "-")
        .count();
    if stdin_sources > 1 {
        return Err(UsageError("-i - (stdin) can be given once".into()));
    }
    if stdin_sources > 0 && cli.stdin {
        return Err(UsageError(
            "-i - and --stdin both read standard input; give the inventory as a file".into(),
        ));
    }
    let mut inv = Inventory::default();
    if let Some(d) = &cli.playbook_dir {
        if !d.is_dir() {
            return Err(UsageError(format!(
                "--playbook-dir {}: not a directory",
                d.display()
            )));
        }
        inv.set_playbook_dir(d);
    }
    for f in &cli.inventory {
        inv.add_source(f, cli.inventory_timeout)
            .map_err(|e| UsageError(e.to_string()))?;
    }
    for list in &cli.hosts {
        inv.add_host_list_arg(list)
            .map_err(|e| UsageError(e.to_string()))?;
    }
    inv.finish().map_err(|e| UsageError(e.to_string()))?;
    Ok(inv)
}

/// Build the plan: select hosts, resolve their settings, load keys and known_hosts.
pub fn build(cli: &Cli) -> Result<Plan, UsageError> {
    let plan = resolve(cli);
    // the inventory, its vars and the resolver's scratch are freed by now (~1.3 KB a host at
    // 10,000 hosts); what the main thread does not reuse would stay resident for the run
    give_back_freed_memory();
    plan
}

/// Return the allocator's free pages to the system (glibc keeps them otherwise, and the
/// event-loop threads allocate from arenas of their own, so they would stay resident for
/// the whole run).
fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator; no pointer is involved.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Put `v` in run order: `v[j]` becomes the old `v[order[j]]` (`order` is a permutation),
/// in place (a copy of every target would double the plan's peak memory at 10,000 hosts).
fn permute<T>(v: &mut [T], order: &[usize]) {
    let mut done = vec![false; v.len()];
    for start in 0..v.len() {
        if done[start] {
            continue;
        }
        let mut j = start;
        loop {
            done[j] = true;
            let k = order[j];
            if k == start {
                break;
            }
            v.swap(j, k);
            j = k;
        }
    }
}

fn resolve(cli: &Cli) -> Result<Plan, UsageError> {
    let inv = inventory(cli)?;
    let mut warnings = inv.warnings.clone();
    let selected = match &cli.limit {
        Some(p) => pattern::select(&inv, p).map_err(|e| UsageError(e.to_string()))?,
        None => (0..inv.hosts.len()).collect(),
    };
    if selected.is_empty() {
        return Err(UsageError(match &cli.limit {
            Some(p) => format!("--limit '{p}' selects no hosts"),
            None => "the inventory has no hosts".into(),
        }));
    }
    let (command, work) = work(cli, &mut warnings)?;

    let use_agent = std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty());
    let mut keys = KeyStore::default();
    keys.unlocker.use_agent = use_agent;
    keys.unlocker.prompt = !offline(cli);
    keys.unlocker.env = std::env::var(crate::secret::KEY_PASSPHRASE_ENV)
        .ok()
        .map(Secret::new);
    let mut cli_keys = Vec::new();
    for k in cli.identity.iter().filter(|_| !offline(cli)) {
        let key = keys
            .named(k)
            .map_err(|e| UsageError(format!("--identity: {e}")))?;
        cli_keys.push(key);
    }
    let ssh_config = SshConfig::load(cli.ssh_config.as_deref()).map_err(UsageError)?;
    let options = crate::sshconfig::from_options(&cli.ssh_options).map_err(UsageError)?;
    warnings.extend(ssh_config.warnings.iter().cloned());
    let mut r = Resolver {
        cli,
        inventory: &inv,
        ssh_config,
        options,
        keys,
        cli_keys,
        local_user: local_user(),
        known_hosts: HashMap::new(),
        bastions: HashMap::new(),
        missing_keys: Default::default(),
        certificates: HashMap::new(),
        warnings: Vec::new(),
    };
    let mut targets = Vec::with_capacity(selected.len());
    for &i in &selected {
        targets.push(r.target(&inv.hosts[i], false)?);
    }
    // each host's first group (for metrics)
    for (t, &i) in targets.iter_mut().zip(&selected) {
        t.group = inv
            .groups
            .iter()
            .find(|(g, m)| *g != "all" && *g != "ungrouped" && m.binary_search(&i).is_ok())
            .map(|(g, _)| g.clone());
    }
    // the run order, then the batches and every host's own work
    let mut order: Vec<usize> = (0..targets.len()).collect();
    match cli.order {
        Order::Inventory => {}
        Order::Reverse => order.reverse(),
        Order::Sorted => order.sort_by(|&a, &b| natural_cmp(&targets[a].name, &targets[b].name)),
        Order::ReverseSorted => {
            order.sort_by(|&a, &b| natural_cmp(&targets[b].name, &targets[a].name))
        }
        Order::Shuffle => fastrand::shuffle(&mut order),
    }
    permute(&mut targets, &order);
    let vars: Vec<&crate::inventory::HostVars> = order
        .iter()
        .map(|&k| &inv.hosts[selected[k]].vars)
        .collect();
    // kept for the lines of prun shell only
    let host_vars: Vec<crate::inventory::HostVars> = if matches!(cli.sub, Some(Sub::Shell)) {
        vars.iter().map(|v| (*v).clone()).collect()
    } else {
        Vec::new()
    };
    let rollout = rollout(cli, targets.len());
    let batches = crate::rollout::batch_numbers(&rollout.ends);
    crate::perhost::apply(
        &mut targets,
        &batches,
        &vars,
        &work,
        &cli.env,
        cli.literal,
        &mut |paths| {
            let recursive = matches!(&cli.sub, Some(Sub::Push(a)) if a.recursive);
            plan_push(paths, recursive, &mut Vec::new())
        },
    )
    .map_err(UsageError)?;
    let Resolver {
        mut keys,
        warnings: mut more,
        ..
    } = r;
    warnings.append(&mut more);
    if !offline(cli) {
        warnings.extend(keys.load_defaults().map_err(UsageError)?);
    }
    for k in &keys.locked {
        warnings.push(format!(
            "skipping passphrase-protected key {k}: no passphrase (give PRUN_KEY_PASSPHRASE, \
             run on a terminal, or add it to ssh-agent)"
        ));
    }
    warnings.sort();
    warnings.dedup();
    if cli.host_key_check == Some(HostKeyCheck::Off)
        || targets.iter().any(|t| t.host_key_policy == Policy::Off)
    {
        warnings.push(
            "host key checking is off (--host-key-check off or StrictHostKeyChecking no): host \
             keys are NOT verified; anyone on the path can impersonate these hosts"
                .into(),
        );
    }
    // bastions too: a jump host reached without checking its key sees every login after it
    let mut unchecked: Vec<String> = Vec::new();
    for t in &targets {
        let mut hop = t.jump.as_ref();
        while let Some(b) = hop {
            if b.host_key_policy == Policy::Off && !unchecked.contains(&b.name) {
                unchecked.push(b.name.clone());
            }
            hop = b.jump.as_ref();
        }
    }
    if !unchecked.is_empty() {
        warnings.push(format!(
            "host key checking is off for jump host {}: its key is NOT verified, and every \
             connection through it can be intercepted",
            unchecked.join(", ")
        ));
    }
    let sudo_user = cli
        .sudo_user
        .clone()
        .or_else(|| cli.sudo.then(|| "root".to_string()));
    // secrets from the environment; --ask-pass and --stdin are read by the app once the plan
    // stands (see `app::gather_inputs`)
    let env_secret = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret::new)
    };
    let password = env_secret(crate::secret::PASSWORD_ENV);
    let sudo_password = if targets.iter().all(|t| t.sudo_user.is_none()) || offline(cli) {
        None
    } else {
        env_secret(crate::secret::SUDO_PASSWORD_ENV)
    };
    Ok(Plan {
        targets,
        command,
        work,
        settings: Settings {
            command_timeout: cli.timeout,
            use_agent,
            retries: cli.retries,
            keepalive: cli.keepalive,
            env: cli.env.clone(),
            pty: cli.pty,
            cwd: cli.cwd.clone(),
            stdin: None,
            sudo_user,
            sudo_password,
            sudo_prompt: crate::ssh::sudo::random_marker(),
            locked_keys: keys.locked.clone(),
            password,
        },
        default_keys: keys.defaults.clone(),
        parallel: cli.parallel as usize,
        warnings,
        rollout,
        batches,
        host_vars,
    })
}

impl Plan {
    /// Whether some host runs its command through sudo (and may need sudo's password).
    pub fn uses_sudo(&self) -> bool {
        self.targets.iter().any(|t| t.sudo_user.is_some())
    }
}

/// Whether this invocation connects to nothing (so keys and known_hosts are not loaded):
/// `--list-hosts`, `--dry-run`, `--local`.
fn offline(cli: &Cli) -> bool {
    cli.list_hosts || cli.dry_run || cli.local
}

/// The rollout the command line asks for, over `total` hosts in run order.
fn rollout(cli: &Cli, total: usize) -> Rollout {
    use crate::rollout::{Ask, Pause};
    let canary = cli.canary.unwrap_or(0) as usize;
    let ends = match (&cli.batch, canary) {
        (None, 0) => Vec::new(),
        (sizes, _) => {
            crate::rollout::batch_ends(total, canary, sizes.as_ref().map_or(&[], |b| &b.0))
        }
    };
    let (max_fail, max_fail_text) = if cli.fail_fast {
        (Some(0), "--fail-fast".to_string())
    } else if let Some(c) = cli.max_fail {
        let n = c.of(total);
        let text = match c {
            crate::rollout::Count::Percent(_) => format!("--max-fail {c} ({n} of {total} hosts)"),
            _ => format!("--max-fail {c}"),
        };
        (Some(n), text)
    } else {
        (None, String::new())
    };
    let ask = match cli.pause {
        _ if cli.yes => Ask::Never,
        Some(Pause::Ask) => Ask::Always,
        _ if canary > 0 => Ask::AfterFirst,
        _ => Ask::Never,
    };
    Rollout {
        ends,
        max_fail,
        max_fail_text,
        canary,
        pause: match cli.pause {
            Some(Pause::For(d)) => d,
            _ => std::time::Duration::ZERO,
        },
        stagger: cli.stagger.unwrap_or_default(),
        ask,
    }
}

/// What every host does: the command, or a push / pull (whose local side is checked now).
fn work(cli: &Cli, warnings: &mut Vec<String>) -> Result<(String, Work), UsageError> {
    match &cli.sub {
        Some(Sub::Push(a)) => {
            let (dir, sources) = a.paths.split_last().expect("clap requires two paths");
            let remote_dir = dir.to_string_lossy().into_owned();
            // sources with {name} placeholders are walked per host, once rendered
            let per_host = !cli.literal
                && sources
                    .iter()
                    .any(|p| !crate::template::Template::parse(&p.to_string_lossy()).is_constant());
            let (items, desc) = if per_host {
                let names: Vec<String> = sources
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                (
                    Vec::new(),
                    format!("push {} to {remote_dir}", names.join(" ")),
                )
            } else {
                let items = plan_push(sources, a.recursive, warnings)
                    .map_err(|e| UsageError(format!("push: {e}")))?;
                let files = items.iter().filter(|i| !i.dir).count();
                let bytes: u64 = items.iter().map(|i| i.size).sum();
                let desc = format!("push {} file(s), {bytes} bytes, to {remote_dir}", files);
                (items, desc)
            };
            Ok((
                desc,
                Work::Push(Arc::new(PushSpec {
                    items,
                    sources: sources.to_vec(),
                    remote_dir,
                    mkdir: a.mkdir,
                    preserve: a.preserve,
                    checksum: a.checksum,
                })),
            ))
        }
        Some(Sub::Pull(a)) => {
            check_pull_path(&a.remote).map_err(|e| UsageError(format!("pull: {e}")))?;
            Ok((
                format!("pull {} into {}/<host>/", a.remote, a.local_dir.display()),
                Work::Pull(Arc::new(PullSpec {
                    remote: a.remote.clone(),
                    local_dir: a.local_dir.clone(),
                    recursive: a.recursive,
                    preserve: a.preserve,
                    checksum: a.checksum,
                })),
            ))
        }
        // each line of the shell is its own command
        Some(Sub::Shell) => Ok((String::new(), Work::Command(String::new()))),
        _ => {
            let command = cli.command.join(" ");
            if !cli.list_hosts && command.trim().is_empty() {
                return Err(UsageError(
                    "no command given: prun [OPTIONS] COMMAND (see prun --help)".into(),
                ));
            }
            if cli.local {
                return Ok((format!("local: {command}"), Work::Local(command)));
            }
            Ok((command.clone(), Work::Command(command)))
        }
    }
}

/// A pull's REMOTE_PATH: its last component names what lands in LOCAL_DIR/<host>/, so `..`
/// (outside it) and `.` (on top of it) are refused.
pub(crate) fn check_pull_path(remote: &str) -> Result<(), String> {
    if remote.is_empty() {
        return Err("REMOTE_PATH is empty".into());
    }
    let last = remote
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    if last == ".." || last == "." {
        return Err(format!(
            "REMOTE_PATH '{remote}' ends in '{last}': name the file or directory itself (its \
             last component becomes LOCAL_DIR/<host>/NAME)"
        ));
    }
    Ok(())
}

/// A user certificate: the key it certifies and the certificate, wire format.
type Cert = (Vec<u8>, Arc<Vec<u8>>);

/// Resolves each host's settings: command line > inventory > ssh_config > defaults.
struct Resolver<'a> {
    cli: &'a Cli,
    /// A bastion that is also an inventory host starts from its inventory settings.
    inventory: &'a Inventory,
    ssh_config: SshConfig,
    /// `-o Key=Value`: above the inventory and ssh_config, below the dedicated flags.
    options: SshConfig,
    keys: KeyStore,
    cli_keys: Vec<Arc<KeyFile>>,
    local_user: String,
    /// known_hosts files → loaded once, shared by every host that uses them.
    known_hosts: HashMap<Vec<PathBuf>, Arc<KnownHosts>>,
    /// Jump host spec → its resolved target, shared by every host behind it.
    bastions: HashMap<String, Arc<Target>>,
    /// CertificateFiles read so far (None: missing).
    certificates: HashMap<String, Option<Cert>>,
    /// ssh_config IdentityFiles found missing (warned about once).
    missing_keys: std::collections::HashSet<String>,
    warnings: Vec<String>,
}

/// A `[user@]host[:port]` jump host spec.
fn parse_jump(spec: &str) -> Result<(Option<String>, String, Option<u16>), String> {
    let (user, rest) = match spec.rsplit_once('@') {
        Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
        _ => (None, spec),
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        // [v6]:port
        let (h, after) = inner
            .split_once(']')
            .ok_or_else(|| format!("jump host '{spec}': missing ']'"))?;
        (h, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (rest, None),
        }
    };
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("jump host '{spec}': '{p}' is not a port"))?,
        ),
        None => None,
    };
    if host.is_empty()
        || host.contains(char::is_whitespace)
        || (host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err())
    {
        return Err(format!("jump host '{spec}': expected [user@]host[:port]"));
    }
    Ok((user, host.to_string(), port))
}

impl Resolver<'_> {
    /// One selected inventory host → its target.
    /// `bastion`: resolving a jump host, to which the command line's -u, --port and -J (meant
    /// for the targets, as with ssh -J) do not apply.
    fn target(&mut self, h: &crate::inventory::Host, bastion: bool) -> Result<Target, UsageError> {
        let cli = self.cli;
        let (cli_user, cli_port, cli_jump) = if bastion {
            (None, None, None)
        } else {
            (cli.user.as_ref(), cli.port, cli.jump.as_ref())
        };
        let mut sc = self.ssh_config.query(&h.name, &self.local_user);
        // -o: for the targets (as -u and --port), not their bastions
        let o = if bastion {
            Default::default()
        } else {
            self.options.query(&h.name, &self.local_user)
        };
        // where the inventory has no say, -o simply comes before ssh_config
        overlay(&mut sc, &o);
        let listing = cli.list_hosts;
        let mut sources: Vec<(&'static str, String)> = Vec::new();
        let mut note = |what: &'static str, src: &str| {
            if listing {
                sources.push((what, src.to_string()));
            }
        };
        let cfg = |file: &str| {
            if file == "-o" {
                "-o".to_string()
            } else {
                format!("ssh_config:{file}")
            }
        };

        let address = if let Some(a) = &o.host_name {
            note("address", "-o");
            a.value.clone()
        } else if let Some(a) = &h.address {
            note("address", "inventory");
            a.clone()
        } else if let Some(hn) = &sc.host_name {
            note("address", &cfg(&hn.file));
            hn.value.clone()
        } else {
            note("address", "name");
            h.name.clone()
        };
        let port = if let Some(p) = cli_port {
            note("port", "command-line");
            p
        } else if let Some(p) = &o.port {
            note("port", "-o");
            p.value
        } else if let Some(p) = h.port {
            note("port", "inventory");
            p
        } else if let Some(p) = &sc.port {
            note("port", &cfg(&p.file));
            p.value
        } else {
            note("port", "default");
            22
        };
        let user = if let Some(u) = cli_user {
            note("user", "command-line");
            u.clone()
        } else if let Some(u) = &o.user {
            note("user", "-o");
            u.value.clone()
        } else if let Some(u) = &h.user {
            note("user", "inventory");
            u.clone()
        } else if let Some(u) = &sc.user {
            note("user", &cfg(&u.file));
            u.value.clone()
        } else {
            note("user", "local-user");
            self.local_user.clone()
        };

        // keys: --identity, then the inventory's, then ssh_config's (all are tried)
        let mut identities = self.cli_keys.clone();
        if !offline(cli) {
            for f in &h.identity_files {
                let key = self
                    .keys
                    .named(f)
                    .map_err(|e| UsageError(format!("identity_file of host '{}': {e}", h.name)))?;
                if !identities.iter().any(|k| Arc::ptr_eq(k, &key)) {
                    identities.push(key);
                }
            }
            for f in &sc.identity_files {
                let path =
                    crate::sshconfig::expand_tokens(&f.value, &h.name, &user, &self.local_user);
                if self.missing_keys.contains(&path) {
                    continue;
                }
                // checked once per file, not per host (a `Host *` key applies to all of them)
                if !self.keys.is_loaded(&path) && !expand_tilde(&path).exists() {
                    // like ssh: a configured key that does not exist is skipped
                    self.warnings.push(format!(
                        "IdentityFile {path} ({}) does not exist; skipped",
                        f.file
                    ));
                    self.missing_keys.insert(path);
                    continue;
                }
                let key = self
                    .keys
                    .named(&path)
                    .map_err(|e| UsageError(format!("IdentityFile in {}: {e}", f.file)))?;
                if !identities.iter().any(|k| Arc::ptr_eq(k, &key)) {
                    identities.push(key);
                }
            }
        }
        if let Some(io) = &sc.identities_only {
            note("identities_only", &cfg(&io.file));
        }
        let identities_only = sc.identities_only.as_ref().is_some_and(|v| v.value);

        let connect_timeout = if let Some(t) = cli.connect_timeout {
            note("connect_timeout", "command-line");
            t
        } else if let Some(t) = &sc.connect_timeout {
            note("connect_timeout", &cfg(&t.file));
            if t.value > crate::cli::MAX_DURATION {
                return Err(UsageError(format!(
                    "{}: ConnectTimeout {} is longer than the longest duration prun accepts \
                     (365 days)",
                    t.file,
                    t.value.as_secs()
                )));
            }
            t.value
        } else {
            DEFAULT_CONNECT_TIMEOUT
        };
        let host_key_policy = if let Some(c) = cli.host_key_check {
            note("host_key_check", "command-line");
            match c {
                HostKeyCheck::Strict => Policy::Strict,
                HostKeyCheck::AcceptNew => Policy::AcceptNew,
                HostKeyCheck::Off => Policy::Off,
            }
        } else if let Some(v) = &sc.strict_host_key_checking {
            note("host_key_check", &cfg(&v.file));
            match v.value.as_str() {
                "accept-new" => Policy::AcceptNew,
                "no" | "off" => Policy::Off,
                // yes, ask (prun never asks: strict)
                _ => Policy::Strict,
            }
        } else {
            Policy::Strict
        };
        let known_hosts = if !cli.known_hosts.is_empty() {
            note("known_hosts", "command-line");
            let files: Vec<PathBuf> = cli
                .known_hosts
                .iter()
                .map(|p| expand_tilde(&p.to_string_lossy()))
                .collect();
            self.known_hosts_of(files)?
        } else if let Some(v) = &sc.user_known_hosts_files {
            note("known_hosts", &cfg(&v.file));
            let mut files: Vec<PathBuf> = v
                .value
                .iter()
                .filter(|f| !f.eq_ignore_ascii_case("none"))
                .map(|f| {
                    expand_tilde(&crate::sshconfig::expand_tokens(
                        f,
                        &h.name,
                        &user,
                        &self.local_user,
                    ))
                })
                .collect();
            if files.is_empty() {
                files.push(PathBuf::from("/dev/null"));
            }
            files.push(PathBuf::from("/etc/ssh/ssh_known_hosts"));
            self.known_hosts_of(files)?
        } else {
            self.known_hosts_of(vec![
                expand_tilde("~/.ssh/known_hosts"),
                PathBuf::from("/etc/ssh/ssh_known_hosts"),
            ])?
        };
        let host_key_name = match &sc.host_key_alias {
            Some(a) => {
                note("host_key_alias", &cfg(&a.file));
                a.value.clone()
            }
            None => crate::ssh::known_hosts::lookup_name(&address, port),
        };

        let jump_spec = if let Some(j) = cli_jump {
            note("jump", "command-line");
            Some(j.clone())
        } else if let Some(j) = &o.proxy_jump {
            note("jump", "-o");
            Some(j.value.join(","))
        } else if let Some(j) = &h.jump {
            note("jump", "inventory");
            Some(j.clone())
        } else if let Some(j) = &sc.proxy_jump {
            note("jump", &cfg(&j.file));
            Some(j.value.join(","))
        } else {
            None
        };
        let sudo_user = if bastion {
            None
        } else if let Some(u) = cli
            .sudo_user
            .clone()
            .or_else(|| cli.sudo.then(|| "root".to_string()))
        {
            note("sudo", "command-line");
            Some(u)
        } else if let Some(u) = &h.become_user {
            note("sudo", "inventory");
            Some(u.clone())
        } else {
            None
        };
        let jump = match jump_spec.filter(|j| !j.is_empty() && !j.eq_ignore_ascii_case("none")) {
            Some(spec) => Some(self.bastion(&spec, &h.name)?),
            None => None,
        };
        // CertificateFile: read once per file, offered with the key it certifies
        let mut certificates = Vec::new();
        if let Some(cf) = &sc.certificate_file
            && !offline(cli)
        {
            let path = crate::sshconfig::expand_tokens(&cf.value, &h.name, &user, &self.local_user);
            note("certificate_file", &cfg(&cf.file));
            if let Some(c) = self.certificate(&path, &cf.file)? {
                certificates.push(c);
            }
        }
        // agent forwarding: -o or ssh_config when they say (a "no" there wins over -A), else -A
        let forward_agent = match &sc.forward_agent {
            Some(v) if !bastion => {
                note("forward_agent", &cfg(&v.file));
                v.value
            }
            _ if !bastion && cli.forward_agent => {
                note("forward_agent", "command-line");
                true
            }
            _ => false,
        };
        // ProxyCommand (ssh_config or -o), unless a jump host is set or it says none
        let proxy_command = match &sc.proxy_command {
            Some(pc) if jump.is_none() && !pc.value.trim().eq_ignore_ascii_case("none") => {
                note("proxy_command", &cfg(&pc.file));
                Some(crate::sshconfig::expand_proxy_tokens(
                    &pc.value,
                    &address,
                    port,
                    &user,
                    &h.name,
                    &self.local_user,
                ))
            }
            _ => None,
        };
        Ok(Target {
            name: h.name.clone(),
            address,
            port,
            user,
            identities,
            identities_only,
            connect_timeout,
            host_key_policy,
            known_hosts,
            host_key_name,
            jump,
            sources,
            work: None,
            env: None,
            sudo_user,
            proxy_command,
            forward_agent,
            certificates,
            group: None,
        })
    }

    /// The bastion for `spec`, resolved once (through ssh_config like any host; the command
    /// line's -u/--port are for the targets, as with ssh -J).
    fn bastion(&mut self, spec: &str, for_host: &str) -> Result<Arc<Target>, UsageError> {
        if let Some(b) = self.bastions.get(spec) {
            return Ok(b.clone());
        }
        // A chain `a,b`: reach b through a (which is resolved, and cached, on its own).
        let (prev, last) = match spec.rsplit_once(',') {
            Some((prev, last)) => {
                let hops: Vec<&str> = spec.split(',').map(str::trim).collect();
                if hops.iter().any(|h| h.is_empty())
                    || hops.iter().enumerate().any(|(i, h)| hops[..i].contains(h))
                {
                    return Err(UsageError(format!(
                        "jump host chain '{spec}' of host '{for_host}': empty or repeated hop"
                    )));
                }
                (Some(self.bastion(prev.trim(), for_host)?), last.trim())
            }
            None => (None, spec),
        };
        let (user, host, port) = parse_jump(last).map_err(UsageError)?;
        let mut inv_host =
            self.inventory
                .get(&host)
                .cloned()
                .unwrap_or_else(|| crate::inventory::Host {
                    name: host.clone(),
                    ..Default::default()
                });
        inv_host.user = user.or(inv_host.user);
        inv_host.port = port.or(inv_host.port);
        // a bastion's own ProxyJump (e.g. from `Host *`) is not followed: the chain is
        // what the host's jump spec says
        inv_host.jump = Some("none".into());
        let mut t = self.target(&inv_host, true)?;
        t.jump = prev;
        let t = Arc::new(t);
        self.bastions.insert(spec.to_string(), t.clone());
        Ok(t)
    }

    /// A `CertificateFile`, read and parsed once: (certified key, certificate). A missing file
    /// is skipped with a warning (as ssh does); an unreadable one is a usage error.
    fn certificate(&mut self, path: &str, from: &str) -> Result<Option<Cert>, UsageError> {
        if let Some(c) = self.certificates.get(path) {
            return Ok(c.clone());
        }
        let full = expand_tilde(path);
        let c = if !full.exists() {
            self.warnings.push(format!(
                "CertificateFile {path} ({from}) does not exist; skipped"
            ));
            None
        } else {
            let text = fs::read_to_string(&full)
                .map_err(|e| UsageError(format!("CertificateFile {path} ({from}): {e}")))?;
            let cert = ssh_key::Certificate::from_openssh(text.trim()).map_err(|e| {
                UsageError(format!(
                    "CertificateFile {path} ({from}): not an OpenSSH certificate ({e})"
                ))
            })?;
            let key = ssh_key::PublicKey::from(cert.public_key().clone())
                .to_bytes()
                .map_err(|e| UsageError(format!("CertificateFile {path}: {e}")))?;
            let blob = cert
                .to_bytes()
                .map_err(|e| UsageError(format!("CertificateFile {path}: {e}")))?;
            Some((key, Arc::new(blob)))
        };
        self.certificates.insert(path.to_string(), c.clone());
        Ok(c)
    }

    fn known_hosts_of(&mut self, files: Vec<PathBuf>) -> Result<Arc<KnownHosts>, UsageError> {
        if let Some(k) = self.known_hosts.get(&files) {
            return Ok(k.clone());
        }
        // accept-new records keys in the first file (~/.ssh/known_hosts by default)
        let write_path = files[0].clone();
        let load: &[PathBuf] = if offline(self.cli) { &[] } else { &files };
        let kh = KnownHosts::load(load, write_path).map_err(|e| UsageError(e.to_string()))?;
        if !kh.skipped.is_empty() {
            self.warnings.push(format!(
                "ignored {} known_hosts line(s) prun cannot parse (first: {})",
                kh.skipped.len(),
                kh.skipped[0]
            ));
        }
        let kh = Arc::new(kh);
        self.known_hosts.insert(files, kh.clone());
        Ok(kh)
    }
}

/// Put the `-o` values (`o`) in front of ssh_config's (`sc`): they win, and `-o`
/// IdentityFiles are tried first.
fn overlay(sc: &mut crate::sshconfig::HostConfig, o: &crate::sshconfig::HostConfig) {
    macro_rules! take {
        ($($f:ident),*) => {$(
            if o.$f.is_some() {
                sc.$f = o.$f.clone();
            }
        )*};
    }
    take!(
        host_name,
        user,
        port,
        identities_only,
        proxy_jump,
        connect_timeout,
        user_known_hosts_files,
        strict_host_key_checking,
        host_key_alias,
        proxy_command,
        forward_agent,
        certificate_file
    );
    let mut ids = o.identity_files.clone();
    ids.append(&mut sc.identity_files);
    sc.identity_files = ids;
}

/// Walk the local sources of a push. Directories need `recursive`; special files (sockets,
/// devices, FIFOs) are skipped with a warning.
pub fn plan_push(
    sources: &[PathBuf],
    recursive: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<PushItem>, String> {
    let mut items = Vec::new();
    for src in sources {
        let meta = fs::metadata(src).map_err(|e| format!("{}: {e}", src.display()))?;
        let name = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| n != "." && n != "..")
            .or_else(|| {
                fs::canonicalize(src)
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            })
            .ok_or_else(|| format!("{}: cannot tell its name", src.display()))?;
        if meta.is_dir() && !recursive {
            return Err(format!("{} is a directory (use -r)", src.display()));
        }
        walk(src, &name, &meta, &mut items, warnings)?;
    }
    Ok(items)
}

fn item(local: &Path, rel: &str, meta: &fs::Metadata) -> PushItem {
    use std::os::unix::fs::MetadataExt;
    PushItem {
        local: local.to_path_buf(),
        rel: rel.to_string(),
        dir: meta.is_dir(),
        mode: meta.mode() & 0o7777,
        size: if meta.is_dir() { 0 } else { meta.len() },
        atime: meta.atime().max(0) as u64,
        mtime: meta.mtime().max(0) as u64,
    }
}

fn walk(
    path: &Path,
    rel: &str,
    meta: &fs::Metadata,
    items: &mut Vec<PushItem>,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    if meta.is_file() {
        items.push(item(path, rel, meta));
        return Ok(());
    }
    if !meta.is_dir() {
        warnings.push(format!(
            "skipping {}: not a regular file or directory",
            path.display()
        ));
        return Ok(());
    }
    items.push(item(path, rel, meta));
    let mut entries: Vec<_> = fs::read_dir(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let m = match fs::metadata(&p) {
            Ok(m) => m,
            Err(err) => {
                warnings.push(format!("skipping {}: {err}", p.display()));
                continue;
            }
        };
        let r = format!("{rel}/{}", e.file_name().to_string_lossy());
        walk(&p, &r, &m, items, warnings)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_puts_every_element_where_the_order_says() {
        let orders: [&[usize]; 5] = [
            &[0, 1, 2, 3, 4],
            &[4, 3, 2, 1, 0],
            &[1, 2, 3, 4, 0],
            &[2, 0, 1, 4, 3],
            &[3, 4, 0, 2, 1],
        ];
        for order in orders {
            let mut v: Vec<String> = (0..5).map(|i| format!("t{i}")).collect();
            permute(&mut v, order);
            let want: Vec<String> = order.iter().map(|k| format!("t{k}")).collect();
            assert_eq!(v, want, "order {order:?}");
        }
        for _ in 0..50 {
            let mut order: Vec<usize> = (0..37).collect();
            fastrand::shuffle(&mut order);
            let mut v: Vec<usize> = (0..37).collect();
            permute(&mut v, &order);
            assert_eq!(v, order);
        }
        permute::<u8>(&mut [], &[]);
    }

    #[test]
    fn push_plan_walks_directories_in_order_and_needs_r() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("tree");
        fs::create_dir_all(root.join("b/c")).unwrap();
        fs::write(root.join("z.txt"), "z").unwrap();
        fs::write(root.join("b/c/deep"), "deep").unwrap();
        let mut w = Vec::new();
        let e = plan_push(std::slice::from_ref(&root), false, &mut w).unwrap_err();
        assert!(e.contains("use -r"), "{e}");
        let items = plan_push(&[root], true, &mut w).unwrap();
        let rels: Vec<_> = items.iter().map(|i| (i.rel.as_str(), i.dir)).collect();
        assert_eq!(
            rels,
            [
                ("tree", true),
                ("tree/b", true),
                ("tree/b/c", true),
                ("tree/b/c/deep", false),
                ("tree/z.txt", false)
            ]
        );
        assert_eq!(items[3].size, 4);
        let e = plan_push(&[d.path().join("missing")], false, &mut w).unwrap_err();
        assert!(e.contains("missing"), "{e}");
    }
}
