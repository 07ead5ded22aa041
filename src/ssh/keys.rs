//! Private key files, read once per run and handed to libssh2 from memory for every host
//! (so 1000 hosts cost one file read per key, not 1000 `fopen`s).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A private key file loaded into memory. Its contents never appear in Debug output.
pub struct KeyFile {
    pub path: PathBuf,
    /// The path as the user wrote it (for messages).
    pub display: String,
    pub(crate) private: String,
    /// Passphrase-protected: prun cannot use it without a passphrase (use an agent).
    pub encrypted: bool,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile")
            .field("path", &self.path)
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

/// Expand a leading `~` to `$HOME`.
pub fn expand_tilde(p: &str) -> PathBuf {
    if p == "~" {
        return home();
    }
    if let Some(rest) = p.strip_prefix("~/") {
        return home().join(rest);
    }
    PathBuf::from(p)
}

/// `$HOME`, or `/` when unset.
pub fn home() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

impl KeyFile {
    /// Read a private key file; the error says which file and why.
    pub fn load(display: &str) -> Result<KeyFile, String> {
        let path = expand_tilde(display);
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
        let private = String::from_utf8(bytes).map_err(|_| {
            format!(
                "key file {} is not a text (PEM/OpenSSH) private key",
                path.display()
            )
        })?;
        if !private.contains("PRIVATE KEY-----") {
            return Err(format!(
                "key file {} is not a private key (expected a '-----BEGIN … PRIVATE KEY-----' file; \
                 is this the .pub file?)",
                path.display()
            ));
        }
        let encrypted = is_encrypted(&private);
        Ok(KeyFile {
            path,
            display: display.to_string(),
            private,
            encrypted,
        })
    }
}

fn is_encrypted(text: &str) -> bool {
    if text.contains("BEGIN OPENSSH PRIVATE KEY") {
        return ssh_key::PrivateKey::from_openssh(text).is_ok_and(|k| k.is_encrypted());
    }
    text.contains("ENCRYPTED")
}

/// Every key file of the run, loaded once and shared by all hosts.
#[derive(Debug, Default)]
pub struct KeyStore {
    by_path: HashMap<PathBuf, Arc<KeyFile>>,
    /// `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa` that exist and are usable.
    pub defaults: Vec<Arc<KeyFile>>,
}

impl KeyStore {
    /// Load (or reuse) a key the user named; unreadable files are errors.
    pub fn named(&mut self, display: &str) -> Result<Arc<KeyFile>, String> {
        let path = expand_tilde(display);
        if let Some(k) = self.by_path.get(&path) {
            return Ok(k.clone());
        }
        let k = Arc::new(KeyFile::load(display)?);
        self.by_path.insert(path, k.clone());
        Ok(k)
    }

    /// Load the default keys that exist; returns warnings for ones that cannot be used.
    pub fn load_defaults(&mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
            let display = format!("~/.ssh/{name}");
            let path = expand_tilde(&display);
            if !Path::new(&path).exists() {
                continue;
            }
            match self.named(&display) {
                Ok(k) if k.encrypted => warnings.push(format!(
                    "skipping passphrase-protected key {display}: add it to ssh-agent to use it"
                )),
                Ok(k) => self.defaults.push(k),
                Err(e) => warnings.push(format!("skipping default key: {e}")),
            }
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_checks_and_never_prints_secret() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, "ssh-ed25519 AAAA comment\n").unwrap();
        let e = KeyFile::load(p.to_str().unwrap()).unwrap_err();
        assert!(e.contains("not a private key"), "{e}");
        let e = KeyFile::load("/nonexistent/key").unwrap_err();
        assert!(e.contains("/nonexistent/key"), "{e}");

        std::fs::write(
            &p,
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nSECRET\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap();
        let k = KeyFile::load(p.to_str().unwrap()).unwrap();
        assert!(k.encrypted);
        assert!(!format!("{k:?}").contains("SECRET"));
    }

    #[test]
    fn tilde_uses_home() {
        let p = expand_tilde("~/.ssh/x");
        assert!(p.ends_with(".ssh/x"));
        assert!(!p.to_string_lossy().starts_with('~'));
        assert_eq!(expand_tilde("/a/b"), PathBuf::from("/a/b"));
    }
}
