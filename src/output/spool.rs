//! A per-host output buffer with bounded memory: bytes stay in memory up to a cap, then the
//! whole buffer moves to disk: an anonymous temporary file of its own, or (for spools that
//! live until the end of the run, as in gather mode) extents of one temporary file that all
//! of them share, so a run holds one descriptor for its spilled output however many hosts it
//! has. Also keeps a SHA-256 of everything written, so identical outputs can be grouped
//! without comparing them byte by byte.

use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::rc::Rc;

/// One temporary file shared by many spools, appended to; created on first use.
#[derive(Default, Clone)]
pub struct SharedSpill(Rc<RefCell<Option<(File, u64)>>>);

impl SharedSpill {
    /// Append `data`; returns where it went.
    fn append(&self, data: &[u8]) -> io::Result<u64> {
        let mut g = self.0.borrow_mut();
        if g.is_none() {
            *g = Some((tempfile::tempfile()?, 0));
        }
        let (f, end) = g.as_mut().expect("just created");
        let at = *end;
        f.write_all_at(data, at)?;
        *end += data.len() as u64;
        Ok(at)
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        match &*self.0.borrow() {
            Some((f, _)) => f.read_exact_at(buf, at),
            None => Err(io::Error::other("spill file missing")),
        }
    }
}

enum Disk {
    Own(File),
    /// (offset, length) extents in the shared file, in order.
    Shared(SharedSpill, Vec<(u64, u64)>),
}

/// Bytes a spool keeps in memory before it spills to disk, at most.
pub const MEMORY_CAP: usize = 1024 * 1024;
/// Memory all spools of a run may use together, roughly: the per-host cap shrinks with the
/// number of hosts (never below 4 KiB).
pub const RUN_BUDGET: usize = 64 * 1024 * 1024;

/// The per-host memory cap for a run of `hosts` hosts with two streams each.
pub fn cap_for(hosts: usize) -> usize {
    (RUN_BUDGET / (2 * hosts.max(1))).clamp(4096, MEMORY_CAP)
}

pub struct Spool {
    cap: usize,
    mem: Vec<u8>,
    file: Option<Disk>,
    /// Where to spill: a shared file, else a file of its own.
    shared: Option<SharedSpill>,
    len: u64,
    hash: Sha256,
}

impl Default for Spool {
    fn default() -> Self {
        Spool::with_cap(MEMORY_CAP)
    }
}

impl Spool {
    pub fn with_cap(cap: usize) -> Self {
        Spool {
            cap,
            mem: Vec::new(),
            file: None,
            shared: None,
            len: 0,
            hash: Sha256::new(),
        }
    }

    /// A spool that spills into `shared` instead of a file of its own.
    pub fn sharing(cap: usize, shared: &SharedSpill) -> Self {
        Spool {
            shared: Some(shared.clone()),
            ..Spool::with_cap(cap)
        }
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.hash.update(data);
        self.len += data.len() as u64;
        if self.file.is_none() && self.mem.len() + data.len() > self.cap {
            let mem = std::mem::take(&mut self.mem);
            self.file = Some(match &self.shared {
                Some(sh) => Disk::Shared(sh.clone(), Vec::new()),
                None => Disk::Own(tempfile::tempfile()?),
            });
            self.spill(&mem)?;
        }
        match self.file {
            Some(_) => self.spill(data),
            None => {
                self.mem.extend_from_slice(data);
                Ok(())
            }
        }
    }

    fn spill(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some(Disk::Own(f)) => f.write_all(data),
            Some(Disk::Shared(sh, extents)) => {
                if data.is_empty() {
                    return Ok(());
                }
                let at = sh.append(data)?;
                match extents.last_mut() {
                    // consecutive writes of one host usually land back to back
                    Some((o, l)) if *o + *l == at => *l += data.len() as u64,
                    _ => extents.push((at, data.len() as u64)),
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// SHA-256 of everything written so far.
    pub fn digest(&self) -> [u8; 32] {
        self.hash.clone().finalize().into()
    }

    /// Copy the contents to `w`.
    pub fn copy_to(&mut self, w: &mut dyn Write) -> io::Result<()> {
        match &mut self.file {
            None => w.write_all(&self.mem),
            Some(Disk::Shared(sh, extents)) => {
                let mut buf = vec![0u8; 64 * 1024];
                for &(at, len) in extents.iter() {
                    let mut done = 0u64;
                    while done < len {
                        let n = (len - done).min(buf.len() as u64) as usize;
                        sh.read_at(&mut buf[..n], at + done)?;
                        w.write_all(&buf[..n])?;
                        done += n as u64;
                    }
                }
                Ok(())
            }
            Some(Disk::Own(f)) => {
                f.seek(SeekFrom::Start(0))?;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        return Ok(());
                    }
                    w.write_all(&buf[..n])?;
                }
            }
        }
    }

    /// The last byte written, if any (to know whether output ended with a newline).
    pub fn ends_with_newline(&mut self) -> io::Result<bool> {
        match &mut self.file {
            None => Ok(self.mem.last() == Some(&b'\n')),
            Some(Disk::Shared(sh, extents)) => match extents.last() {
                None => Ok(false),
                Some(&(at, len)) => {
                    let mut b = [0u8; 1];
                    sh.read_at(&mut b, at + len - 1)?;
                    Ok(b[0] == b'\n')
                }
            },
            Some(Disk::Own(f)) => {
                if self.len == 0 {
                    return Ok(false);
                }
                f.seek(SeekFrom::Start(self.len - 1))?;
                let mut b = [0u8; 1];
                f.read_exact(&mut b)?;
                Ok(b[0] == b'\n')
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_shrinks_with_hosts() {
        assert_eq!(cap_for(1), MEMORY_CAP);
        assert_eq!(cap_for(1000), RUN_BUDGET / 2000);
        assert_eq!(cap_for(1_000_000), 4096);
    }

    #[test]
    fn spills_past_the_cap_and_reads_back() {
        let mut s = Spool::default();
        let chunk = vec![b'x'; MEMORY_CAP / 2 + 1];
        s.write(&chunk).unwrap();
        assert!(s.file.is_none());
        s.write(&chunk).unwrap();
        s.write(b"\n").unwrap();
        assert!(s.file.is_some() && s.mem.is_empty());
        assert_eq!(s.len(), 2 * chunk.len() as u64 + 1);
        let mut out = Vec::new();
        s.copy_to(&mut out).unwrap();
        assert_eq!(out.len() as u64, s.len());
        assert!(s.ends_with_newline().unwrap());
        let mut t = Spool::default();
        t.write(&out).unwrap();
        assert_eq!(t.digest(), s.digest());
    }

    #[test]
    fn spools_sharing_one_file_keep_their_own_bytes() {
        let shared = SharedSpill::default();
        let mut a = Spool::sharing(8, &shared);
        let mut b = Spool::sharing(8, &shared);
        for i in 0..50 {
            a.write(format!("a{i} ").as_bytes()).unwrap();
            b.write(format!("b{i}\n").as_bytes()).unwrap();
        }
        let (mut x, mut y) = (Vec::new(), Vec::new());
        a.copy_to(&mut x).unwrap();
        b.copy_to(&mut y).unwrap();
        let want_a: String = (0..50).map(|i| format!("a{i} ")).collect();
        let want_b: String = (0..50).map(|i| format!("b{i}\n")).collect();
        assert_eq!(String::from_utf8(x).unwrap(), want_a);
        assert_eq!(String::from_utf8(y).unwrap(), want_b);
        assert!(!a.ends_with_newline().unwrap() && b.ends_with_newline().unwrap());
    }
}
