//! Command line + inventory → a validated run plan: the selected targets with their resolved
//! address, port, user and keys, and the run-wide settings. Every problem here is a usage
//! error (exit 2) with a message that names what and where; nothing has been run yet.

use crate::cli::{Cli, HostKeyCheck};
use crate::inventory::{Inventory, pattern};
use crate::ssh::keys::{KeyFile, KeyStore, expand_tilde, home};
use crate::ssh::session::{Secret, StdinData};
use crate::ssh::{KnownHosts, Policy, Settings, Target};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

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
    pub command: String,
    pub settings: Settings,
    pub known_hosts: KnownHosts,
    pub default_keys: Vec<Arc<KeyFile>>,
    pub parallel: usize,
    pub warnings: Vec<String>,
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
    let mut inv = Inventory::default();
    for f in &cli.inventory {
        inv.load_file(f).map_err(|e| UsageError(e.to_string()))?;
    }
    for list in &cli.hosts {
        inv.add_host_list_arg(list)
            .map_err(|e| UsageError(e.to_string()))?;
    }
    Ok(inv)
}

/// Build the plan: select hosts, resolve their settings, load keys and known_hosts.
pub fn build(cli: &Cli) -> Result<Plan, UsageError> {
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
    let command = cli.command.join(" ");
    if !cli.list_hosts && command.trim().is_empty() {
        return Err(UsageError(
            "no command given: prun [OPTIONS] COMMAND (see prun --help)".into(),
        ));
    }

    let use_agent = std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty());
    let mut keys = KeyStore::default();
    keys.unlocker.use_agent = use_agent;
    keys.unlocker.prompt = !cli.list_hosts;
    keys.unlocker.env = std::env::var("PRUN_KEY_PASSPHRASE").ok().map(Secret);
    let mut cli_keys = Vec::new();
    for k in cli.identity.iter().filter(|_| !cli.list_hosts) {
        let key = keys
            .named(k)
            .map_err(|e| UsageError(format!("--identity: {e}")))?;
        cli_keys.push(key);
    }
    let default_user = cli.user.clone().unwrap_or_else(local_user);
    let mut targets = Vec::with_capacity(selected.len());
    for i in selected {
        let h = &inv.hosts[i];
        let mut identities = cli_keys.clone();
        // --list-hosts connects to nothing, so it reads no key files.
        let files: &[String] = if cli.list_hosts {
            &[]
        } else {
            &h.identity_files
        };
        for f in files {
            let key = keys
                .named(f)
                .map_err(|e| UsageError(format!("identity_file of host '{}': {e}", h.name)))?;
            if !identities.iter().any(|k| Arc::ptr_eq(k, &key)) {
                identities.push(key);
            }
        }
        targets.push(Target {
            name: h.name.clone(),
            address: h.address.clone().unwrap_or_else(|| h.name.clone()),
            port: cli.port.or(h.port).unwrap_or(22),
            user: cli
                .user
                .clone()
                .or_else(|| h.user.clone())
                .unwrap_or_else(|| default_user.clone()),
            identities,
        });
    }
    if !cli.list_hosts {
        warnings.extend(keys.load_defaults());
    }
    for k in &keys.locked {
        warnings.push(format!(
            "skipping passphrase-protected key {k}: no passphrase (give PRUN_KEY_PASSPHRASE, \
             run on a terminal, or add it to ssh-agent)"
        ));
    }
    warnings.sort();
    warnings.dedup();

    let (files, write_path): (Vec<PathBuf>, PathBuf) = if cli.known_hosts.is_empty() {
        (
            vec![
                expand_tilde("~/.ssh/known_hosts"),
                PathBuf::from("/etc/ssh/ssh_known_hosts"),
            ],
            home().join(".ssh/known_hosts"),
        )
    } else {
        let files: Vec<PathBuf> = cli
            .known_hosts
            .iter()
            .map(|p| expand_tilde(&p.to_string_lossy()))
            .collect();
        let first = files[0].clone();
        (files, first)
    };
    let known_hosts = if cli.list_hosts {
        KnownHosts::load(&[], write_path).map_err(|e| UsageError(e.to_string()))?
    } else {
        KnownHosts::load(&files, write_path).map_err(|e| UsageError(e.to_string()))?
    };
    if !known_hosts.skipped.is_empty() {
        warnings.push(format!(
            "ignored {} known_hosts line(s) prun cannot parse (first: {})",
            known_hosts.skipped.len(),
            known_hosts.skipped[0]
        ));
    }
    let host_key_policy = match cli.host_key_check {
        HostKeyCheck::Strict => Policy::Strict,
        HostKeyCheck::AcceptNew => Policy::AcceptNew,
        HostKeyCheck::Off => {
            warnings.push(
                "--host-key-check off: host keys are NOT verified; anyone on the path can \
                 impersonate these hosts"
                    .into(),
            );
            Policy::Off
        }
    };
    let sudo_user = cli
        .sudo_user
        .clone()
        .or_else(|| cli.sudo.then(|| "root".to_string()));
    // --ask-pass: one prompt, on the terminal, before any host is contacted; the password
    // serves password/keyboard-interactive logins and, with --sudo, sudo's prompt.
    let asked = if cli.ask_pass && !cli.list_hosts {
        let p = rpassword::prompt_password("prun: password: ").map_err(|e| {
            UsageError(format!(
                "--ask-pass: cannot read a password from the terminal: {e} \
                 (without a terminal, set PRUN_PASSWORD / PRUN_SUDO_PASSWORD)"
            ))
        })?;
        Some(Secret(p))
    } else {
        None
    };
    let env_secret = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret)
    };
    let password = asked.clone().or_else(|| env_secret("PRUN_PASSWORD"));
    let sudo_password = if sudo_user.is_none() || cli.list_hosts {
        None
    } else {
        asked.or_else(|| env_secret("PRUN_SUDO_PASSWORD"))
    };
    let stdin = if cli.stdin && !cli.list_hosts {
        let data = StdinData::read_from(&mut std::io::stdin().lock())
            .map_err(|e| UsageError(format!("--stdin: cannot read standard input: {e}")))?;
        Some(Arc::new(data))
    } else {
        None
    };
    Ok(Plan {
        targets,
        command,
        settings: Settings {
            connect_timeout: cli.connect_timeout,
            command_timeout: cli.timeout,
            host_key_policy,
            use_agent,
            retries: cli.retries,
            keepalive: cli.keepalive,
            env: cli.env.clone(),
            pty: cli.pty,
            cwd: cli.cwd.clone(),
            stdin,
            sudo_user,
            sudo_password,
            password,
        },
        known_hosts,
        default_keys: keys.defaults.clone(),
        parallel: cli.parallel as usize,
        warnings,
    })
}
