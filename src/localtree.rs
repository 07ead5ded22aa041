//! The local side of `prun pull`: the tree under a host's directory, reached only through
//! directory descriptors opened without following links (`openat` with `O_NOFOLLOW`, from
//! the host's directory down), and files created in them exclusively under a temporary name
//! and renamed into place (`renameat`), their modes and times set through their descriptors.
//!
//! Checking a path and then writing to it by path leaves a window: someone with write access
//! to the destination could swap a checked directory for a link to anywhere in between. Here
//! every step after the host's directory is relative to a descriptor of a directory that was
//! opened as a directory and not through a link, so a link planted at any time is refused
//! ("refusing to write through the symlink …"), never written through.

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The host's directory and the directories under it opened so far (by path relative to it).
pub struct LocalTree {
    shown: PathBuf,
    dirs: HashMap<PathBuf, fs::File>,
}

impl LocalTree {
    /// Create `host_dir` (and the directories above it, which are the user's) or accept an
    /// existing directory — never one reached through a link.
    pub fn open(host_dir: &Path) -> Result<LocalTree, String> {
        let made = fs::create_dir_all(host_dir);
        let root = open_dir(rustix::fs::CWD, host_dir, host_dir).map_err(|m| match made {
            // nothing there: why it could not be made says more
            Err(e) if fs::symlink_metadata(host_dir).is_err() => {
                format!("cannot create {}: {e}", host_dir.display())
            }
            _ => m,
        })?;
        Ok(LocalTree {
            shown: host_dir.to_path_buf(),
            dirs: HashMap::from([(PathBuf::new(), root)]),
        })
    }

    /// `rel` under the host's directory, for messages.
    pub fn shown(&self, rel: &Path) -> PathBuf {
        self.shown.join(rel)
    }

    /// The directory `rel` (relative to the host's directory), made (umask applies) if
    /// missing, each of its components opened from the one above.
    pub fn dir(&mut self, rel: &Path) -> Result<&fs::File, String> {
        if !self.dirs.contains_key(rel) {
            let (parent, name) = split(rel)?;
            self.dir(parent)?;
            let shown = self.shown(rel);
            let above = &self.dirs[parent];
            match rustix::fs::mkdirat(above, name, Mode::from_raw_mode(0o777)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => {
                    return Err(format!(
                        "cannot create {}: {}",
                        shown.display(),
                        std::io::Error::from(e)
                    ));
                }
            }
            let d = open_dir(above, name, &shown)?;
            self.dirs.insert(rel.to_path_buf(), d);
        }
        Ok(&self.dirs[rel])
    }

    /// A new file for `rel`: exclusive, mode 0600, under a random name beside it; renamed
    /// over `rel` by [`Pending::persist`] (a link there is replaced, never followed), removed
    /// when dropped before that.
    pub fn create(&mut self, rel: &Path) -> Result<Pending<'_>, String> {
        let (parent, name) = split(rel)?;
        let shown = self.shown(rel);
        let dir = self.dir(parent)?;
        for _ in 0..16 {
            let mut tmp = OsString::from(".");
            tmp.push(name);
            tmp.push(format!(".{:016x}.prun-tmp", rand::random::<u64>()));
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            match rustix::fs::openat(dir, tmp.as_os_str(), flags, Mode::from_raw_mode(0o600)) {
                Ok(fd) => {
                    return Ok(Pending {
                        dir,
                        tmp,
                        name: name.to_os_string(),
                        file: fs::File::from(fd),
                        persisted: false,
                    });
                }
                Err(Errno::EXIST) => continue,
                Err(e) => {
                    return Err(format!(
                        "cannot create a temporary file beside {}: {}",
                        shown.display(),
                        std::io::Error::from(e)
                    ));
                }
            }
        }
        Err(format!(
            "cannot create a temporary file beside {}: names taken",
            shown.display()
        ))
    }
}

/// A file being written under its temporary name (see [`LocalTree::create`]).
pub struct Pending<'a> {
    dir: &'a fs::File,
    tmp: OsString,
    name: OsString,
    pub file: fs::File,
    persisted: bool,
}

impl Pending<'_> {
    /// Rename it into place.
    pub fn persist(mut self) -> std::io::Result<()> {
        rustix::fs::renameat(
            self.dir,
            self.tmp.as_os_str(),
            self.dir,
            self.name.as_os_str(),
        )?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = rustix::fs::unlinkat(self.dir, self.tmp.as_os_str(), AtFlags::empty());
        }
    }
}

/// `rel`'s directory and its last component; an empty or climbing path is refused (the
/// listing never makes one).
fn split(rel: &Path) -> Result<(&Path, &OsStr), String> {
    let name = rel
        .file_name()
        .filter(|n| !n.is_empty() && n.as_bytes() != b"..")
        .ok_or_else(|| format!("not a file name: {}", rel.display()))?;
    Ok((rel.parent().unwrap_or(Path::new("")), name))
}

/// Open `name` under `at` as a directory, not through a link.
fn open_dir(
    at: impl rustix::fd::AsFd,
    name: impl rustix::path::Arg + Copy,
    shown: &Path,
) -> Result<fs::File, String> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(&at, name, flags, Mode::empty()) {
        Ok(fd) => Ok(fs::File::from(fd)),
        Err(Errno::LOOP) => Err(format!(
            "refusing to write through the symlink {}",
            shown.display()
        )),
        Err(Errno::NOTDIR) => {
            let link = rustix::fs::statat(&at, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_symlink());
            Err(if link {
                format!("refusing to write through the symlink {}", shown.display())
            } else {
                format!("{} exists and is not a directory", shown.display())
            })
        }
        Err(e) => Err(format!(
            "cannot open {}: {}",
            shown.display(),
            std::io::Error::from(e)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn files_land_in_place_and_links_are_refused_at_every_depth() {
        let t = tempfile::tempdir().unwrap();
        let host = t.path().join("out/h1");
        let mut tree = LocalTree::open(&host).unwrap();
        let mut p = tree.create(Path::new("a/b/f")).unwrap();
        p.file.write_all(b"data").unwrap();
        p.persist().unwrap();
        assert_eq!(fs::read(host.join("a/b/f")).unwrap(), b"data");
        // an unfinished file leaves nothing behind
        let p = tree.create(Path::new("a/g")).unwrap();
        drop(p);
        let names: Vec<_> = fs::read_dir(host.join("a"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("b")]);
        // a directory swapped for a link after it was opened: the open descriptor still
        // names the real one, and a fresh walk refuses the link
        let elsewhere = t.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::rename(host.join("a/b"), t.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, host.join("a/b")).unwrap();
        let mut p = tree.create(Path::new("a/b/f2")).unwrap();
        p.file.write_all(b"x").unwrap();
        p.persist().unwrap();
        assert!(t.path().join("moved/f2").exists());
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
        let mut fresh = LocalTree::open(&host).unwrap();
        let e = fresh.create(Path::new("a/b/f3")).err().unwrap();
        assert!(e.contains("refusing to write through the symlink"), "{e}");
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
        // a link to a file where a file goes is replaced, not followed
        let victim = t.path().join("victim");
        fs::write(&victim, "untouched").unwrap();
        std::os::unix::fs::symlink(&victim, host.join("a/v")).unwrap();
        let mut p = fresh.create(Path::new("a/v")).unwrap();
        p.file.write_all(b"new").unwrap();
        p.persist().unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"untouched");
        assert_eq!(fs::read(host.join("a/v")).unwrap(), b"new");
        // a file where a directory goes, and the host's directory itself as a link
        fs::write(host.join("plain"), "").unwrap();
        let e = fresh.dir(Path::new("plain")).err().unwrap();
        assert!(e.contains("exists and is not a directory"), "{e}");
        std::os::unix::fs::symlink(&elsewhere, t.path().join("out/h2")).unwrap();
        let e = LocalTree::open(&t.path().join("out/h2")).err().unwrap();
        assert!(e.contains("refusing to write through the symlink"), "{e}");
        fs::write(t.path().join("out/h3"), "").unwrap();
        let e = LocalTree::open(&t.path().join("out/h3")).err().unwrap();
        assert!(e.contains("exists and is not a directory"), "{e}");
        let e = LocalTree::open(&t.path().join("out/h3/x")).err().unwrap();
        assert!(e.starts_with("cannot create"), "{e}");
    }
}
