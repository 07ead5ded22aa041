//! What a run does where, as plain data the plan builds and the ssh layer reads: each host's
//! [`Target`] (address, user, keys, host-key policy, bastion), the run's [`Settings`], the
//! [`Work`] (a command, or a push/pull spec) and the stdin data sent to every host. Nothing
//! here connects, waits or prints.

use crate::secret::Secret;
use crate::ssh::keys::KeyFile;
use crate::ssh::known_hosts::{KnownHosts, Policy};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Settings shared by every host of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub command_timeout: Option<Duration>,
    /// Try the identities of the agent at `SSH_AUTH_SOCK`.
    pub use_agent: bool,
    /// Extra attempts for failures before the command could have started.
    pub retries: u32,
    /// Keepalive interval while a command runs; the server is declared dead after 3 silent
    /// intervals.
    pub keepalive: Duration,
    /// `--env K=V`: sent as env requests, else exported by a command prefix.
    pub env: Vec<(String, String)>,
    /// `--pty`: request a terminal (stdout and stderr merge; the command dies with the
    /// connection).
    pub pty: bool,
    /// `--cwd DIR`: run the command there.
    pub cwd: Option<String>,
    /// `--stdin`: what every host's command reads on its stdin (else it gets EOF at once).
    pub stdin: Option<Arc<StdinData>>,
    /// `--sudo`/`--sudo-user`: run the command through sudo as this user (every host; a
    /// host's [`Target::sudo_user`] is what its command uses).
    pub sudo_user: Option<String>,
    /// The password for sudo's prompt, if one was given.
    pub sudo_password: Option<Secret>,
    /// This run's random marker for sudo's prompt (`sudo -p`).
    pub sudo_prompt: String,
    /// Passphrase-protected keys left locked (no passphrase was available), by name.
    pub locked_keys: Vec<String>,
    /// `--ask-pass` / `PRUN_PASSWORD`: for password and keyboard-interactive logins.
    pub password: Option<Secret>,
}

/// Local stdin, read once and sent to every host: in memory, or spooled to a temporary file
/// past a cap so that memory stays bounded.
pub enum StdinData {
    Memory(Vec<u8>),
    File { file: std::fs::File, len: u64 },
}

/// Stdin bytes kept in memory before they are spooled to a temporary file.
pub const STDIN_MEMORY_CAP: usize = 8 * 1024 * 1024;

impl std::fmt::Debug for StdinData {
    /// Only the size: stdin may carry secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StdinData({} bytes)", self.len())
    }
}

impl StdinData {
    /// Read all of `r`.
    pub fn read_from(r: &mut dyn Read) -> io::Result<StdinData> {
        let mut mem = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(StdinData::Memory(mem));
            }
            mem.extend_from_slice(&buf[..n]);
            if mem.len() > STDIN_MEMORY_CAP {
                let mut file = tempfile::tempfile()?;
                file.write_all(&mem)?;
                let mut len = mem.len() as u64;
                drop(mem);
                loop {
                    let n = r.read(&mut buf)?;
                    if n == 0 {
                        return Ok(StdinData::File { file, len });
                    }
                    file.write_all(&buf[..n])?;
                    len += n as u64;
                }
            }
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            StdinData::Memory(m) => m.len() as u64,
            StdinData::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes at `offset` into `buf` (0 at the end).
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            StdinData::Memory(m) => {
                let start = (offset as usize).min(m.len());
                let n = buf.len().min(m.len() - start);
                buf[..n].copy_from_slice(&m[start..start + n]);
                Ok(n)
            }
            StdinData::File { file, len } => {
                use std::os::unix::fs::FileExt;
                let n = buf.len().min(len.saturating_sub(offset) as usize);
                file.read_at(&mut buf[..n], offset)
            }
        }
    }
}

/// Quote `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// What to do on every host once logged in.
#[derive(Debug, Clone)]
pub enum Work {
    /// Run a shell command.
    Command(String),
    /// `prun push`: send files over SFTP.
    Push(Arc<PushSpec>),
    /// `prun pull`: fetch files over SFTP.
    Pull(Arc<PullSpec>),
    /// `--local`: run a command on this machine, once per host ([`crate::local`]).
    Local(String),
}

/// Everything one host needs to run; built by the plan.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Keys to try before the agent: `--identity` files, the inventory's `identity_file`, then
    /// ssh_config's `IdentityFile`s.
    pub identities: Vec<Arc<KeyFile>>,
    /// ssh_config `IdentitiesOnly yes`: offer only `identities` (no agent, no default keys).
    pub identities_only: bool,
    /// Deadline for everything before the command starts.
    pub connect_timeout: Duration,
    pub host_key_policy: Policy,
    /// The known_hosts files for this host (shared by every host that uses the same files).
    pub known_hosts: Arc<KnownHosts>,
    /// The name looked up in known_hosts: `HostKeyAlias`, else `[address]:port`.
    pub host_key_name: String,
    /// The bastion to reach this host through (`-J`, inventory `jump`, `ProxyJump`).
    pub jump: Option<Arc<Target>>,
    /// Where each resolved value came from (filled for `--list-hosts` only).
    pub sources: Vec<(&'static str, String)>,
    /// This host's own work when `{name}` placeholders made it differ from the run's.
    pub work: Option<Work>,
    /// This host's own `--env` values when placeholders made them differ from the run's.
    pub env: Option<Vec<(String, String)>>,
    /// Run the command through sudo as this user: `--sudo`/`--sudo-user`, else the
    /// inventory's `become`.
    pub sudo_user: Option<String>,
    /// `ProxyCommand` (tokens expanded): its stdin and stdout are the connection.
    pub proxy_command: Option<String>,
    /// `-A` / `ForwardAgent yes`: forward the local ssh-agent to the command.
    pub forward_agent: bool,
    /// `CertificateFile` certificates: (the certified public key, the certificate), both wire
    /// format; offered with the matching key before the plain key.
    pub certificates: Vec<(Vec<u8>, Arc<Vec<u8>>)>,
    /// The first inventory group that lists the host (besides `all`/`ungrouped`).
    pub group: Option<String>,
}

impl Target {
    /// A plain target for unit tests: `name` at `address:port`, user `u`, strict host keys
    /// against `known_hosts`, nothing else set.
    #[cfg(test)]
    pub(crate) fn for_test(
        name: &str,
        address: &str,
        port: u16,
        known_hosts: Arc<KnownHosts>,
    ) -> Target {
        Target {
            name: name.into(),
            address: address.into(),
            port,
            user: "u".into(),
            identities: vec![],
            identities_only: true,
            connect_timeout: Duration::from_secs(2),
            host_key_policy: Policy::Strict,
            known_hosts,
            host_key_name: crate::ssh::known_hosts::lookup_name(address, port),
            jump: None,
            sources: vec![],
            work: None,
            env: None,
            sudo_user: None,
            proxy_command: None,
            forward_agent: false,
            certificates: vec![],
            group: None,
        }
    }

    /// What this host does: its own work, else the run's.
    pub fn work_or<'a>(&'a self, run: &'a Work) -> &'a Work {
        self.work.as_ref().unwrap_or(run)
    }
}

/// One local file or directory to push, relative to the remote directory.
#[derive(Debug, Clone)]
pub struct PushItem {
    pub local: PathBuf,
    /// `/`-separated path under the remote directory.
    pub rel: String,
    pub dir: bool,
    pub mode: u32,
    pub size: u64,
    pub atime: u64,
    pub mtime: u64,
}

/// What `prun push` sends (the local side walked once, before the run).
#[derive(Debug, Clone)]
pub struct PushSpec {
    pub items: Vec<PushItem>,
    /// The local paths as given (after `{name}` substitution), for `--dry-run`.
    pub sources: Vec<PathBuf>,
    pub remote_dir: String,
    pub mkdir: bool,
    pub preserve: bool,
    pub checksum: bool,
}

/// What `prun pull` fetches.
#[derive(Debug, Clone)]
pub struct PullSpec {
    pub remote: String,
    pub local_dir: PathBuf,
    pub recursive: bool,
    pub preserve: bool,
    pub checksum: bool,
}
