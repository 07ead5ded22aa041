//! Files prun creates on the operator's machine (pulled files, `--out-dir` files, reports):
//! each is created exclusively under a random name in its target directory (`O_EXCL`, mode
//! 0600, never through a link someone planted) and then renamed into place, so a name that
//! already exists there, symlink or not, is replaced and never written through. Also the
//! local modes of pulled files: never setuid, setgid or sticky, always within the umask.

use std::io;
use std::path::Path;
use std::sync::OnceLock;

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
