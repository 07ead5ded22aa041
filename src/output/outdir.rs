//! `--out-dir DIR`: each host's stdout and stderr streamed byte-exact to `DIR/<host>.out` and
//! `DIR/<host>.err` (pssh's `-o/-e`), in addition to the `--output` mode. Host names are made
//! safe as file names; both files exist for every host that started, even when empty.

use crate::event::{Event, Printer, Stream};
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub struct OutDir {
    dir: PathBuf,
    names: Vec<String>,
    open: Vec<Option<[File; 2]>>,
}

impl OutDir {
    /// Create (if needed) the directory.
    pub fn new(dir: &Path) -> io::Result<OutDir> {
        std::fs::create_dir_all(dir)?;
        Ok(OutDir {
            dir: dir.to_path_buf(),
            names: Vec::new(),
            open: Vec::new(),
        })
    }

    pub fn handle(&mut self, ev: &Event) -> io::Result<()> {
        match ev {
            Event::RunStarted { hosts, .. } => {
                let mut seen = HashSet::new();
                self.names = hosts
                    .iter()
                    .map(|h| {
                        let base = crate::paths::host_file_name(&h.name);
                        let mut n = base.clone();
                        let mut i = 1;
                        while !seen.insert(n.clone()) {
                            i += 1;
                            n = format!("{base}~{i}");
                        }
                        n
                    })
                    .collect();
                self.open = (0..hosts.len()).map(|_| None).collect();
            }
            Event::HostStarted { host } => {
                let base = self.dir.join(&self.names[*host]);
                // exclusive, 0600, renamed into place: never written through a planted link
                let open = |e: &str| {
                    let path = base.with_extension(ext(&base, e));
                    crate::paths::create_replacing(&path).map_err(|err| {
                        io::Error::new(err.kind(), format!("{}: {err}", path.display()))
                    })
                };
                let (out, err) = (open("out")?, open("err")?);
                self.open[*host] = Some([out, err]);
            }
            Event::Output { host, stream, data } => {
                if let Some(files) = &mut self.open[*host] {
                    let i = match stream {
                        Stream::Stdout => 0,
                        Stream::Stderr => 1,
                    };
                    files[i].write_all(data).map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!("writing {}'s output: {e}", self.names[*host]),
                        )
                    })?;
                }
            }
            Event::HostFinished { host, .. } => {
                // Closing the files is enough; an fsync per host would cost a disk flush each.
                self.open[*host] = None;
            }
            _ => {}
        }
        Ok(())
    }
}

/// `with_extension` would cut a name like `web01.example.com` at its last dot: keep it whole.
fn ext(base: &Path, e: &str) -> String {
    match base.extension() {
        Some(x) => format!("{}.{e}", x.to_string_lossy()),
        None => e.to_string(),
    }
}

impl Printer for OutDir {
    fn handle(&mut self, ev: &Event) -> io::Result<()> {
        OutDir::handle(self, ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_keeps_dotted_names() {
        let b = Path::new("/d/web01.example.com");
        assert_eq!(
            b.with_extension(ext(b, "out")),
            Path::new("/d/web01.example.com.out")
        );
        let b = Path::new("/d/web01");
        assert_eq!(b.with_extension(ext(b, "err")), Path::new("/d/web01.err"));
    }
}
