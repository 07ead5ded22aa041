//! Secrets (passwords, passphrases): one copy per run, shared, never shown by `Debug`, and
//! wiped from memory when the last holder drops it. While a secret is held, the process is
//! not dumpable (no core file, no ptrace by other processes of the same user): see
//! [`protect_process`].

use std::sync::Arc;
use zeroize::Zeroizing;

/// The password for password and keyboard-interactive logins.
pub const PASSWORD_ENV: &str = "PRUN_PASSWORD";
/// The password for sudo's prompt.
pub const SUDO_PASSWORD_ENV: &str = "PRUN_SUDO_PASSWORD";
/// The passphrase of protected key files.
pub const KEY_PASSPHRASE_ENV: &str = "PRUN_KEY_PASSPHRASE";
/// InfluxDB 1.x basic authentication's password (`--metrics`).
pub const INFLUX_PASSWORD_ENV: &str = "PRUN_INFLUX_PASSWORD";
/// An InfluxDB token (`--metrics`).
pub const INFLUX_TOKEN_ENV: &str = "PRUN_INFLUX_TOKEN";

/// prun's environment variables that carry secrets. prun reads them itself; no program it
/// starts gets them ([`without_secrets`]).
pub const ENV_SECRETS: &[&str] = &[
    PASSWORD_ENV,
    SUDO_PASSWORD_ENV,
    KEY_PASSPHRASE_ENV,
    INFLUX_PASSWORD_ENV,
    INFLUX_TOKEN_ENV,
];

/// `cmd` without [`ENV_SECRETS`] in its environment: for every program prun starts (a
/// ProxyCommand, a `--local` command, a dynamic inventory, the `--persist` holder), which
/// would otherwise inherit them.
pub fn without_secrets(cmd: &mut std::process::Command) -> &mut std::process::Command {
    for name in ENV_SECRETS {
        cmd.env_remove(name);
    }
    cmd
}

/// A secret string: never shown by Debug; cloning shares the one copy.
#[derive(Clone)]
pub struct Secret(Arc<Zeroizing<String>>);

impl Secret {
    pub fn new(s: String) -> Secret {
        protect_process();
        Secret(Arc::new(Zeroizing::new(s)))
    }

    /// The secret itself, for the one call that sends it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

/// A secret crosses the `--persist` holder's socket as a plain JSON string (the socket is the
/// user's own, see [`crate::holder`]); the sender wipes its serialized copy.
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// No core dumps and no ptrace by other processes of the user, for the rest of the run:
/// called as soon as prun holds a secret (a password, a passphrase, a decrypted key).
pub fn protect_process() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain process-attribute calls with valid arguments.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_not_shown_and_are_shared() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let t = s.clone();
        assert!(std::ptr::eq(s.expose(), t.expose()));
        let mut lim = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        // SAFETY: reading a limit into a valid struct.
        unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut lim) };
        assert_eq!(lim.rlim_cur, 0);
    }
}
