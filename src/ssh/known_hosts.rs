//! OpenSSH-compatible known_hosts checking, done by prun rather than libssh2 (which compares
//! names case-sensitively, ignores key types and ports, and knows no wildcards or markers).
//!
//! Files are parsed once per run with `ssh-key`; lookups use OpenSSH's key: the address,
//! written `[address]:port` when the port is not 22. `accept-new` appends whole plain lines
//! to one file, once per new key, under a lock, and never rewrites the file.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Digest;
use ssh_key::known_hosts::{Entry, HostPatterns, Marker};
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

/// `--host-key-check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Strict,
    AcceptNew,
    Off,
}

/// What a check of a presented host key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A matching entry has this key.
    Known,
    /// No entry for this host has a key of this type.
    Unknown,
    /// An entry for this host has a different key of the same type (`where_` is file:line).
    Changed { where_: String },
    /// The key is marked `@revoked` (`where_` is file:line).
    Revoked { where_: String },
}

enum Hosts {
    /// (negated, lowercase pattern)
    Patterns(Vec<(bool, String)>),
    Hashed {
        salt: Vec<u8>,
        hash: [u8; 20],
    },
}

struct KhEntry {
    revoked: bool,
    /// `@cert-authority`: trusts host certificates signed by this key (see
    /// `login::check_host_cert`).
    ca: bool,
    hosts: Hosts,
    alg: String,
    blob: Vec<u8>,
    source: String,
}

impl std::fmt::Debug for KnownHosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownHosts")
            .field("entries", &self.entries.len())
            .field("write_path", &self.write_path)
            .finish_non_exhaustive()
    }
}

/// Parsed known_hosts files plus the keys accepted during this run.
pub struct KnownHosts {
    entries: Vec<KhEntry>,
    /// Exact lowercase names (of entries without wildcards or negation) → entry indices.
    exact: HashMap<String, Vec<usize>>,
    /// Entries that need a scan (wildcards, negation, hashed names).
    scan: Vec<usize>,
    write_path: PathBuf,
    added: Mutex<HashMap<String, Vec<u8>>>,
    /// Lines that could not be parsed (file:line), reported once.
    pub skipped: Vec<String>,
}

/// The known_hosts entries that match one host.
pub struct HostKeys<'a> {
    kh: &'a KnownHosts,
    lookup: &'a str,
    entries: Vec<&'a KhEntry>,
}

impl HostKeys<'_> {
    /// Key algorithms known for the host, in file order, without duplicates.
    pub fn algorithms(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in self.entries.iter().filter(|e| !e.revoked && !e.ca) {
            if !out.contains(&e.alg) {
                out.push(e.alg.clone());
            }
        }
        if let Some(blob) = self.kh.added.lock().unwrap().get(self.lookup)
            && let Some(a) = blob_algorithm(blob)
            && !out.iter().any(|o| o == a)
        {
            out.push(a.to_string());
        }
        out
    }

    /// The `@cert-authority` line (file:line) that covers this host, if any.
    pub fn cert_authority(&self) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.ca)
            .map(|e| e.source.as_str())
    }

    /// The `@cert-authority` keys (wire format) for this host, with their file:line.
    pub fn cert_authorities(&self) -> Vec<(&[u8], &str)> {
        self.entries
            .iter()
            .filter(|e| e.ca && !e.revoked)
            .map(|e| (e.blob.as_slice(), e.source.as_str()))
            .collect()
    }

    /// The `@revoked` line (file:line) for `blob`, if the key is revoked for this host.
    pub fn revoked(&self, blob: &[u8]) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.revoked && e.blob == blob)
            .map(|e| e.source.as_str())
    }

    /// Check a presented key (wire-format `blob`).
    pub fn check(&self, blob: &[u8]) -> Verdict {
        let alg = blob_algorithm(blob).unwrap_or("");
        let mut changed = None;
        for e in self.entries.iter().filter(|e| !e.ca) {
            if e.revoked {
                if e.blob == blob {
                    return Verdict::Revoked {
                        where_: e.source.clone(),
                    };
                }
                continue;
            }
            if e.blob == blob {
                return Verdict::Known;
            }
            if e.alg == alg && changed.is_none() {
                changed = Some(e.source.clone());
            }
        }
        if let Some(where_) = changed {
            return Verdict::Changed { where_ };
        }
        match self.kh.added.lock().unwrap().get(self.lookup) {
            Some(b) if b == blob => Verdict::Known,
            Some(b) if blob_algorithm(b) == Some(alg) => Verdict::Changed {
                where_: format!("{} (added by this run)", self.kh.write_path.display()),
            },
            _ => Verdict::Unknown,
        }
    }
}

/// OpenSSH's lookup name for an address and port.
pub fn lookup_name(address: &str, port: u16) -> String {
    let a = address.to_ascii_lowercase();
    if port == 22 {
        a
    } else {
        format!("[{a}]:{port}")
    }
}

/// The algorithm name at the start of an SSH wire-format public key blob.
pub fn blob_algorithm(blob: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    std::str::from_utf8(blob.get(4..4 + len)?).ok()
}

/// `SHA256:…` fingerprint of a key blob, as `ssh-keygen -l` prints it.
pub fn fingerprint(blob: &[u8]) -> String {
    let d = sha2::Sha256::digest(blob);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(d)
    )
}

fn hashed_matches(salt: &[u8], hash: &[u8; 20], name: &str) -> bool {
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(hash).is_ok()
}

impl Hosts {
    fn matches(&self, name: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => hashed_matches(salt, hash, name),
            Hosts::Patterns(pats) => {
                let mut hit = false;
                for (neg, p) in pats {
                    let m = if p.contains(['*', '?']) {
                        wildmatch::WildMatch::new(p).matches(name)
                    } else {
                        p == name
                    };
                    if m && *neg {
                        return false;
                    }
                    hit |= m;
                }
                hit
            }
        }
    }
}

impl KnownHosts {
    /// Read `files` (missing ones are skipped); `write_path` receives accepted keys.
    pub fn load(files: &[PathBuf], write_path: PathBuf) -> io::Result<Self> {
        let mut kh = KnownHosts {
            entries: Vec::new(),
            exact: HashMap::new(),
            scan: Vec::new(),
            write_path,
            added: Mutex::new(HashMap::new()),
            skipped: Vec::new(),
        };
        for f in files {
            match fs::read_to_string(f) {
                Ok(text) => kh.parse(&f.display().to_string(), &text),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot read known_hosts file {}: {e}", f.display()),
                    ));
                }
            }
        }
        Ok(kh)
    }

    /// Add the entries of one file's text.
    pub fn parse(&mut self, label: &str, text: &str) {
        for (n, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let source = format!("{label}:{}", n + 1);
            let entry = match Entry::from_str(t) {
                Ok(e) => e,
                Err(_) => {
                    self.skipped.push(source);
                    continue;
                }
            };
            let Ok(blob) = entry.public_key().to_bytes() else {
                self.skipped.push(source);
                continue;
            };
            let alg = entry.public_key().algorithm().as_str().to_string();
            let hosts = match entry.host_patterns() {
                HostPatterns::HashedName { salt, hash } => Hosts::Hashed {
                    salt: salt.clone(),
                    hash: *hash,
                },
                HostPatterns::Patterns(ps) => Hosts::Patterns(
                    ps.iter()
                        .map(|p| match p.strip_prefix('!') {
                            Some(rest) => (true, rest.to_ascii_lowercase()),
                            None => (false, p.to_ascii_lowercase()),
                        })
                        .collect(),
                ),
            };
            let idx = self.entries.len();
            match &hosts {
                Hosts::Patterns(ps)
                    if ps.iter().all(|(neg, p)| !neg && !p.contains(['*', '?'])) =>
                {
                    for (_, p) in ps {
                        self.exact.entry(p.clone()).or_default().push(idx);
                    }
                }
                _ => self.scan.push(idx),
            }
            self.entries.push(KhEntry {
                revoked: entry.marker() == Some(&Marker::Revoked),
                ca: entry.marker() == Some(&Marker::CertAuthority),
                hosts,
                alg,
                blob,
                source,
            });
        }
    }

    fn matching(&self, lookup: &str) -> impl Iterator<Item = &KhEntry> {
        let exact = self.exact.get(lookup).map(Vec::as_slice).unwrap_or(&[]);
        exact.iter().map(|&i| &self.entries[i]).chain(
            self.scan
                .iter()
                .map(|&i| &self.entries[i])
                .filter(move |e| e.hosts.matches(lookup)),
        )
    }

    /// The entries for `lookup`, found once (hashed names cost an HMAC each) and used both to
    /// order the host key algorithms before the handshake and to check the key after it.
    pub fn for_host<'a>(&'a self, lookup: &'a str) -> HostKeys<'a> {
        HostKeys {
            kh: self,
            lookup,
            entries: self.matching(lookup).collect(),
        }
    }

    /// Key algorithms known for `lookup` (see [`HostKeys::algorithms`]).
    pub fn known_algorithms(&self, lookup: &str) -> Vec<String> {
        self.for_host(lookup).algorithms()
    }

    /// Check a presented key for `lookup` (see [`HostKeys::check`]).
    pub fn check(&self, lookup: &str, blob: &[u8]) -> Verdict {
        self.for_host(lookup).check(blob)
    }

    /// Record a new key for `lookup` (accept-new): appends one plain line to the user's
    /// known_hosts unless this run already did. Returns the verdict under the lock, so two
    /// hosts of the same address:port presenting different keys cannot both be accepted.
    pub fn accept(&self, lookup: &str, blob: &[u8]) -> io::Result<Verdict> {
        let mut added = self.added.lock().unwrap();
        if let Some(b) = added.get(lookup) {
            return Ok(if b == blob {
                Verdict::Known
            } else {
                Verdict::Changed {
                    where_: format!("{} (added by this run)", self.write_path.display()),
                }
            });
        }
        let alg = blob_algorithm(blob).unwrap_or("unknown");
        let line = format!(
            "{lookup} {alg} {}\n",
            base64::engine::general_purpose::STANDARD.encode(blob)
        );
        append_line(&self.write_path, &line)?;
        added.insert(lookup.to_string(), blob.to_vec());
        Ok(Verdict::Unknown)
    }

    /// Where accepted keys go.
    pub fn write_path(&self) -> &Path {
        &self.write_path
    }
}

/// Append one whole line, creating the directory (0700) and file (0600) when missing and
/// adding a newline first if the file does not end with one.
fn append_line(path: &Path, line: &str) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    // created exclusively when missing; an existing file (which may be the user's own
    // symlink, as OpenSSH allows) is appended to
    let mut f = match OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            OpenOptions::new().read(true).append(true).open(path)?
        }
        r => r?,
    };
    // other prun (or ssh) processes appending at the same moment: one writer at a time, so
    // lines never interleave and the newline check below sees the real end of the file
    let _lock = Flock::exclusive(&f)?;
    let len = f.metadata()?.len();
    let mut buf = String::new();
    if len > 0 {
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            buf.push('\n');
        }
    }
    buf.push_str(line);
    f.write_all(buf.as_bytes())
}

/// An exclusive `flock` on an open file, released when dropped.
struct Flock(std::os::unix::io::RawFd);

impl Flock {
    fn exclusive(f: &fs::File) -> io::Result<Flock> {
        use std::os::unix::io::AsRawFd;
        let fd = f.as_raw_fd();
        // SAFETY: flock on a file descriptor we hold open.
        while unsafe { libc::flock(fd, libc::LOCK_EX) } != 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(Flock(fd))
    }
}

impl Drop for Flock {
    fn drop(&mut self) {
        // SAFETY: unlocking the descriptor locked in `exclusive`, still open (the lock is
        // dropped before the file).
        unsafe { libc::flock(self.0, libc::LOCK_UN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIDkQuXdUf2Yyo6FxXRSU7laprT7bO6I2Yw2Z4dnIajzN";
    const K2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIF4VoPmUGl6JRKREL7MnX3/ebMFbqaB5lqpHDu8lBxLk";

    fn blob(k: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(k).unwrap()
    }

    fn kh(text: &str) -> KnownHosts {
        let mut kh = KnownHosts::load(&[], PathBuf::from("/nonexistent/kh")).unwrap();
        kh.parse("kh", text);
        kh
    }

    #[test]
    fn lookup_names() {
        assert_eq!(lookup_name("Web01", 22), "web01");
        assert_eq!(lookup_name("127.0.0.1", 2201), "[127.0.0.1]:2201");
    }

    #[test]
    fn plain_port_case_and_type() {
        let k = kh(&format!(
            "[127.0.0.1]:2201 ssh-ed25519 {K1}\nWEB01,web02 ssh-ed25519 {K1}\n"
        ));
        assert_eq!(k.check("[127.0.0.1]:2201", &blob(K1)), Verdict::Known);
        assert_eq!(k.check("[127.0.0.1]:2202", &blob(K1)), Verdict::Unknown);
        assert_eq!(
            k.check("web01", &blob(K1)),
            Verdict::Known,
            "case-insensitive"
        );
        // a plain name does not match another port (libssh2 gets this wrong)
        assert_eq!(k.check("[web01]:2222", &blob(K1)), Verdict::Unknown);
        assert!(matches!(
            k.check("web02", &blob(K2)),
            Verdict::Changed { .. }
        ));
        assert_eq!(k.known_algorithms("web02"), vec!["ssh-ed25519"]);
    }

    #[test]
    fn wildcards_negation_revoked() {
        let k = kh(&format!(
            "*.example.com,!bad.example.com ssh-ed25519 {K1}\n@revoked * ssh-ed25519 {K2}\n"
        ));
        assert_eq!(k.check("a.example.com", &blob(K1)), Verdict::Known);
        assert_eq!(k.check("bad.example.com", &blob(K1)), Verdict::Unknown);
        assert!(matches!(
            k.check("a.example.com", &blob(K2)),
            Verdict::Revoked { .. }
        ));
    }

    #[test]
    fn cert_authority_lines_are_found_but_never_match_a_plain_key() {
        let k = kh(&format!(
            "# CA\n@cert-authority *.example.com ssh-ed25519 {K1}\n"
        ));
        let hk = k.for_host("a.example.com");
        // the CA's own key presented as a host key is not "known", and nothing is "changed"
        assert_eq!(hk.check(&blob(K1)), Verdict::Unknown);
        assert_eq!(hk.check(&blob(K2)), Verdict::Unknown);
        assert_eq!(hk.cert_authority(), Some("kh:2"));
        assert!(hk.algorithms().is_empty());
        assert_eq!(k.for_host("other.org").cert_authority(), None);
    }

    #[test]
    fn hashed_names() {
        // |1|salt|hash for "[127.0.0.1]:2299" computed with HMAC-SHA1
        let salt = b"0123456789abcdefghij";
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(salt).unwrap();
        mac.update(b"[127.0.0.1]:2299");
        let hash = mac.finalize().into_bytes();
        let e = base64::engine::general_purpose::STANDARD;
        let line = format!(
            "|1|{}|{} ssh-ed25519 {K1}\n",
            e.encode(salt),
            e.encode(hash)
        );
        let k = kh(&line);
        assert_eq!(k.check("[127.0.0.1]:2299", &blob(K1)), Verdict::Known);
        assert_eq!(k.check("[127.0.0.1]:2298", &blob(K1)), Verdict::Unknown);
    }

    #[test]
    fn bad_lines_are_skipped() {
        let k = kh(&format!("garbage\n\n# c\nh ssh-ed25519 {K1}\n"));
        assert_eq!(k.skipped, vec!["kh:1"]);
        assert_eq!(k.check("h", &blob(K1)), Verdict::Known);
    }

    #[test]
    fn concurrent_appends_from_separate_runs_keep_whole_lines() {
        // each thread stands for a separate prun process: its own KnownHosts, its own file
        // descriptor, so only the file lock keeps their lines apart
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, "# no newline at the end").unwrap();
        std::thread::scope(|s| {
            for t in 0..8 {
                let path = path.clone();
                s.spawn(move || {
                    let k = KnownHosts::load(std::slice::from_ref(&path), path.clone()).unwrap();
                    for i in 0..25 {
                        k.accept(&format!("[h{t}-{i}]:22"), &blob(K1)).unwrap();
                    }
                });
            }
        });
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 8 * 25, "{text}");
        assert!(
            lines[1..]
                .iter()
                .all(|l| l.ends_with(K1) && l.starts_with("[h"))
        );
    }

    #[test]
    fn accept_appends_once_and_detects_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/.ssh/known_hosts");
        let k = KnownHosts::load(std::slice::from_ref(&path), path.clone()).unwrap();
        assert_eq!(k.accept("[h]:2", &blob(K1)).unwrap(), Verdict::Unknown);
        assert_eq!(k.accept("[h]:2", &blob(K1)).unwrap(), Verdict::Known);
        assert!(matches!(
            k.accept("[h]:2", &blob(K2)).unwrap(),
            Verdict::Changed { .. }
        ));
        assert_eq!(k.check("[h]:2", &blob(K1)), Verdict::Known);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("[h]:2 ssh-ed25519 {K1}\n"));
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn append_adds_missing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kh");
        fs::write(&path, "# no newline").unwrap();
        append_line(&path, "x y z\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "# no newline\nx y z\n");
    }
}
