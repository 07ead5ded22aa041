//! Local paths: `~` (which means `$HOME` everywhere, so a test or a user can point prun at
//! another home), and the files prun creates on the operator's machine (pulled files,
//! `--out-dir` files, reports):
//! each is created exclusively under a random name in its target directory (`O_EXCL`, mode
//! 0600, never through a link someone planted) and then renamed into place, so a name that
//! already exists there, symlink or not, is replaced and never written through. Also the
//! local modes of pulled files: never setuid, setgid or sticky, always within the umask.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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

/// A new file for `path`: created exclusively (0600) beside it, already renamed to `path`,
/// open for writing. What was at `path` before (a file, a symlink) is replaced, not followed.
pub fn create_replacing(path: &Path) -> io::Result<std::fs::File> {
    let tmp = temp_beside(path)?;
    tmp.persist(path).map_err(|e| e.error)
}

/// A temporary file (0600, exclusive, random name starting `.NAME.`) in `path`'s directory,
/// to be renamed onto `path` with `persist` once complete; removed if dropped before.
pub fn temp_beside(path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".prun-tmp")
        .tempfile_in(dir)
}

/// THE host name as a file or directory name, for `--out-dir` files and `pull` directories
/// alike: `/`, NUL, control characters and anything odd become `_`; a
/// leading dot is escaped so no file is hidden or climbs out of the directory.
pub fn host_file_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@' | ':' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
    }
    s
}

/// The process's umask (read from /proc, so no thread ever sees it changed; 022 if unknown).
pub fn umask() -> u32 {
    static UMASK: OnceLock<u32> = OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
            .unwrap_or(0o022)
    })
}

/// The local mode for a file or directory whose remote mode is `remote`: permission bits
/// only (no setuid, setgid or sticky), within the umask. Directories stay usable by their
/// owner (rwx), so a read-only remote directory cannot lock prun out of a later pull.
pub fn local_mode(remote: u32, dir: bool) -> u32 {
    let m = remote & 0o777 & !umask();
    if dir { m | 0o700 } else { m }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe() {
        assert_eq!(host_file_name("web01.example.com"), "web01.example.com");
        assert_eq!(host_file_name("../etc/passwd"), "_.._etc_passwd");
        assert_eq!(host_file_name("a b/c\u{1b}"), "a_b_c_");
        assert_eq!(host_file_name("::1"), "::1");
        assert_eq!(host_file_name(""), "_");
    }

    #[test]
    fn pull_directories_use_the_same_rule() {
        assert_eq!(host_file_name("web01"), "web01");
        assert_eq!(host_file_name("a/b"), "a_b");
        assert_eq!(host_file_name(".."), "_..");
        assert_eq!(host_file_name("::1"), "::1");
    }

    #[test]
    fn tilde_uses_home() {
        let p = expand_tilde("~/.ssh/x");
        assert!(p.ends_with(".ssh/x"));
        assert!(!p.to_string_lossy().starts_with('~'));
        assert_eq!(expand_tilde("/a/b"), PathBuf::from("/a/b"));
    }
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn modes_lose_special_bits_and_respect_the_umask() {
        let u = umask();
        assert_eq!(local_mode(0o4755, false), 0o755 & !u);
        assert_eq!(local_mode(0o7777, false), 0o777 & !u);
        assert_eq!(local_mode(0o1777, true), (0o777 & !u) | 0o700);
        assert_eq!(local_mode(0o500, true), 0o700);
    }

    #[test]
    fn created_files_replace_links_instead_of_following_them() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = d.path().join("out");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let mut f = create_replacing(&link).unwrap();
        f.write_all(b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "new");
        assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
        let mode = std::fs::metadata(&link).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // nothing else left behind
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
    }
}
