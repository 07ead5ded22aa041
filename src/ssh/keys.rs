//! Private key files, read once per run and handed to libssh2 from memory for every host
//! (so 1000 hosts cost one file read per key, not 1000 `fopen`s). Passphrase-protected keys
//! are unlocked once, before the run: an OpenSSH-format key is decrypted here (one bcrypt for
//! the run instead of one per host, ssh2-notes §2); a key the agent already holds is left to
//! the agent and never prompts.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::paths::expand_tilde;
use crate::secret::Secret;

/// A private key file loaded into memory. Its contents never appear in Debug output.
pub struct KeyFile {
    pub path: PathBuf,
    /// The path as the user wrote it (for messages).
    pub display: String,
    pub(crate) private: String,
    /// Passphrase-protected and not unlocked: prun cannot use the file (the agent may).
    pub encrypted: bool,
    /// For a PEM/PKCS#8 key that libssh2 decrypts itself (cheaply, through OpenSSL).
    pub(crate) passphrase: Option<Secret>,
    /// The public key blob, when known (to tell whether the agent holds this key).
    public: Option<Vec<u8>>,
    /// The public key as an OpenSSH line (`ssh-ed25519 AAAA…`), handed to libssh2 so it does
    /// not derive it from the private key on every host.
    pub(crate) public_line: Option<String>,
    /// An unencrypted ed25519 key, parsed once: prun signs with it itself (see `sign.rs`).
    pub(crate) signer: Option<ed25519_dalek::SigningKey>,
    /// The key's OpenSSH user certificate (`KEY-cert.pub` beside it, as ssh finds it), wire
    /// format: offered before the plain key.
    pub(crate) cert: Option<Vec<u8>>,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile")
            .field("path", &self.path)
            .field("encrypted", &self.encrypted)
            .field("signs_in_process", &self.signer.is_some())
            .finish_non_exhaustive()
    }
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
        let mut signer = None;
        let (encrypted, mut public) = if private.contains("BEGIN OPENSSH PRIVATE KEY") {
            match ssh_key::PrivateKey::from_openssh(&private) {
                Ok(k) => {
                    let enc = k.is_encrypted();
                    let blob = k.public_key().to_bytes().ok();
                    if !enc {
                        signer = ed25519_signer(k);
                    }
                    (enc, blob)
                }
                Err(_) => (false, None),
            }
        } else {
            (private.contains("ENCRYPTED"), None)
        };
        if public.is_none() {
            // A PEM key's public half is only in the file next to it.
            let mut pub_path = path.clone().into_os_string();
            pub_path.push(".pub");
            public = std::fs::read_to_string(&pub_path)
                .ok()
                .and_then(|t| ssh_key::PublicKey::from_openssh(t.trim()).ok())
                .and_then(|k| k.to_bytes().ok());
        }
        let public_line = public
            .as_deref()
            .and_then(|b| ssh_key::PublicKey::from_bytes(b).ok())
            .and_then(|k| k.to_openssh().ok());
        // KEY-cert.pub, when it certifies this very key
        let cert = {
            let mut cert_path = path.clone().into_os_string();
            cert_path.push("-cert.pub");
            std::fs::read_to_string(&cert_path)
                .ok()
                .and_then(|t| ssh_key::Certificate::from_openssh(t.trim()).ok())
                .filter(|c| {
                    public.as_deref().is_some_and(|p| {
                        ssh_key::PublicKey::from(c.public_key().clone())
                            .to_bytes()
                            .is_ok_and(|b| b == p)
                    })
                })
                .and_then(|c| c.to_bytes().ok())
        };
        Ok(KeyFile {
            path,
            display: display.to_string(),
            private,
            encrypted,
            passphrase: None,
            public,
            public_line,
            signer,
            cert,
        })
    }

    /// The public key blob (wire format), when known.
    pub fn public_blob(&self) -> Option<&[u8]> {
        self.public.as_deref()
    }

    /// Unlock a passphrase-protected key. An OpenSSH-format key is decrypted now, once; other
    /// formats keep the passphrase for libssh2. A wrong passphrase is an error for OpenSSH keys
    /// (for PEM keys it shows as a refused key file at auth time).
    pub fn unlock(&mut self, passphrase: &Secret) -> Result<(), String> {
        if self.private.contains("BEGIN OPENSSH PRIVATE KEY") {
            let key = ssh_key::PrivateKey::from_openssh(&self.private)
                .map_err(|e| format!("key file {}: {e}", self.path.display()))?;
            let plain = key
                .decrypt(passphrase.expose().as_bytes())
                .map_err(|_| format!("wrong passphrase for key file {}", self.path.display()))?;
            let text = plain
                .to_openssh(ssh_key::LineEnding::LF)
                .map_err(|e| format!("key file {}: {e}", self.path.display()))?;
            self.private = text.to_string();
            self.signer = ed25519_signer(plain);
        } else {
            self.passphrase = Some(passphrase.clone());
        }
        self.encrypted = false;
        Ok(())
    }
}

/// Keep an ed25519 key for signing in-process (its expanded signing key built once: deriving
/// it costs as much as a signature); other types go through libssh2.
fn ed25519_signer(k: ssh_key::PrivateKey) -> Option<ed25519_dalek::SigningKey> {
    let kp = k.key_data().ed25519()?;
    Some(ed25519_dalek::SigningKey::from_bytes(
        &kp.private.to_bytes(),
    ))
}

/// How passphrase-protected keys are unlocked, decided once per run.
#[derive(Debug, Default)]
pub struct Unlocker {
    /// `PRUN_KEY_PASSPHRASE`: the passphrase for every protected key (non-interactive).
    pub env: Option<Secret>,
    /// Prompt on the terminal (false for `--list-hosts` and when told not to).
    pub prompt: bool,
    /// Public key blobs the ssh-agent holds (its keys need no passphrase); `None`: not asked yet.
    agent: Option<Vec<Vec<u8>>>,
    /// Ask the agent at all (`SSH_AUTH_SOCK` set).
    pub use_agent: bool,
}

impl Unlocker {
    fn agent_has(&mut self, blob: &[u8]) -> bool {
        if !self.use_agent {
            return false;
        }
        let blobs = self.agent.get_or_insert_with(agent_blobs);
        blobs.iter().any(|b| b == blob)
    }
}

/// The public key blobs of the agent's identities (empty when it cannot be asked).
fn agent_blobs() -> Vec<Vec<u8>> {
    let list = || -> Result<Vec<Vec<u8>>, ssh2::Error> {
        let sess = ssh2::Session::new()?;
        let mut agent = sess.agent()?;
        agent.connect()?;
        agent.list_identities()?;
        let ids = agent.identities()?;
        let _ = agent.disconnect();
        Ok(ids.iter().map(|i| i.blob().to_vec()).collect())
    };
    list().unwrap_or_default()
}

/// Every key file of the run, loaded once and shared by all hosts.
#[derive(Debug, Default)]
pub struct KeyStore {
    by_path: HashMap<PathBuf, Arc<KeyFile>>,
    /// `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa` that exist and are usable.
    pub defaults: Vec<Arc<KeyFile>>,
    pub unlocker: Unlocker,
    /// Protected keys left locked (no passphrase available), for one warning each.
    pub locked: Vec<String>,
}

impl KeyStore {
    /// Has this key file been loaded already?
    pub fn is_loaded(&self, display: &str) -> bool {
        self.by_path.contains_key(&expand_tilde(display))
    }

    /// Load (or reuse) a key the user named; unreadable files are errors.
    pub fn named(&mut self, display: &str) -> Result<Arc<KeyFile>, String> {
        let path = expand_tilde(display);
        if let Some(k) = self.by_path.get(&path) {
            return Ok(k.clone());
        }
        let mut k = KeyFile::load(display)?;
        if k.encrypted {
            self.unlock(&mut k)?;
        }
        let k = Arc::new(k);
        self.by_path.insert(path, k.clone());
        Ok(k)
    }

    /// Unlock a protected key once for the run: not at all when the agent holds it, else with
    /// `PRUN_KEY_PASSPHRASE`, else by asking on the terminal (three tries, like ssh).
    fn unlock(&mut self, k: &mut KeyFile) -> Result<(), String> {
        if let Some(blob) = k.public.clone()
            && self.unlocker.agent_has(&blob)
        {
            return Ok(()); // the agent signs with it; the file stays locked
        }
        if let Some(p) = self.unlocker.env.clone() {
            return k
                .unlock(&p)
                .map_err(|e| format!("{e} (from PRUN_KEY_PASSPHRASE)"));
        }
        if self.unlocker.prompt {
            let mut prompt = format!("prun: passphrase for key {}: ", k.display);
            for attempt in 1..=3 {
                let Ok(p) = rpassword::prompt_password(&prompt) else {
                    break; // no terminal: leave it locked
                };
                if p.is_empty() {
                    break;
                }
                match k.unlock(&Secret::new(p)) {
                    Ok(()) => return Ok(()),
                    Err(e) if attempt == 3 => return Err(e),
                    Err(_) => {
                        prompt = format!("prun: wrong passphrase, try again: {}: ", k.display)
                    }
                }
            }
        }
        self.locked.push(k.display.clone());
        Ok(())
    }

    /// Load the default keys that exist; returns warnings for ones that cannot be used. A
    /// wrong passphrase is an error, as for any key: the user meant to unlock it.
    pub fn load_defaults(&mut self) -> Result<Vec<String>, String> {
        let mut warnings = Vec::new();
        for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
            let display = format!("~/.ssh/{name}");
            let path = expand_tilde(&display);
            if !Path::new(&path).exists() {
                continue;
            }
            if let Some(k) = self.by_path.get(&path) {
                if !k.encrypted {
                    self.defaults.push(k.clone());
                }
                continue;
            }
            let mut k = match KeyFile::load(&display) {
                Ok(k) => k,
                Err(e) => {
                    warnings.push(format!("skipping default key: {e}"));
                    continue;
                }
            };
            if k.encrypted {
                self.unlock(&mut k)?;
            }
            let k = Arc::new(k);
            self.by_path.insert(path, k.clone());
            if !k.encrypted {
                self.defaults.push(k);
            }
        }
        Ok(warnings)
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
}
