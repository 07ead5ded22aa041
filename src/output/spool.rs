//! A per-host output buffer with bounded memory: bytes stay in memory up to a cap, then the
//! whole buffer moves to an anonymous temporary file. Also keeps a SHA-256 of everything
//! written, so identical outputs can be grouped without comparing them byte by byte.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

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
    file: Option<File>,
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
            len: 0,
            hash: Sha256::new(),
        }
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.hash.update(data);
        self.len += data.len() as u64;
        if let Some(f) = &mut self.file {
            return f.write_all(data);
        }
        if self.mem.len() + data.len() > self.cap {
            let mut f = tempfile::tempfile()?;
            f.write_all(&self.mem)?;
            f.write_all(data)?;
            self.mem = Vec::new();
            self.file = Some(f);
        } else {
            self.mem.extend_from_slice(data);
        }
        Ok(())
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
            Some(f) => {
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
            Some(f) => {
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
}
