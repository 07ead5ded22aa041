//! Where inventories come from, and the vars files beside them: a file (its format told by
//! its content), a directory of inventory files, an executable (a dynamic inventory, run
//! with `--list`, and `--host NAME` only when its output has no `_meta`), `-` (stdin), and
//! the `group_vars/` and `host_vars/` directories next to each source and in the playbook
//! directory. The one part of the inventory that reads files and runs programs; it never
//! prints (a script's stderr goes straight to prun's).

use super::model::Model;
use super::{Inventory, InventoryError};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The most a dynamic inventory may print (its output is held in memory).
const MAX_SCRIPT_OUTPUT: u64 = 256 * 1024 * 1024;

/// Names in an inventory directory that are not inventories (Ansible's ignore list).
const IGNORED_SUFFIXES: &[&str] = &[
    "~", ".orig", ".bak", ".cfg", ".retry", ".pyc", ".pyo", ".swp", ".md", ".txt.bak",
];

/// Whether `path` is a program to run: executable, and starting with `#!` or an ELF header.
fn is_program(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return false;
    }
    let mut head = [0u8; 4];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    head[..n].starts_with(b"#!") || head[..n].starts_with(b"\x7fELF")
}

/// Run `path` with `args`, bounded by `timeout`; its stdout, or why it failed.
fn run_program(path: &Path, args: &[&str], timeout: Duration) -> Result<Vec<u8>, String> {
    use std::os::unix::process::CommandExt;
    let mut child = crate::secret::without_secrets(&mut Command::new(path))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let mut out = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let r = (&mut out).take(MAX_SCRIPT_OUTPUT + 1).read_to_end(&mut buf);
        r.map(|_| buf)
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() >= deadline => {
                // SAFETY: signalling the process group made for this child.
                unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
                let _ = child.wait();
                let _ = reader.join();
                return Err(format!(
                    "did not finish within {} (--inventory-timeout); stopped",
                    humantime::format_duration(timeout)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
    };
    // the script is gone; a child of it still holding stdout is stopped with the group
    // SAFETY: as above.
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    let out = reader
        .join()
        .map_err(|_| "reading its output failed".to_string())?
        .map_err(|e| format!("reading its output: {e}"))?;
    if !status.success() {
        return Err(match status.code() {
            Some(c) => format!("exited with status {c}"),
            None => format!("was killed ({status})"),
        });
    }
    if out.len() as u64 > MAX_SCRIPT_OUTPUT {
        return Err("printed more than 256 MiB".into());
    }
    Ok(out)
}

impl Inventory {
    /// Add the source `-i SOURCE` names: `-` (stdin), a directory, a program, or a file.
    /// `timeout` bounds a program's run.
    pub fn add_source(&mut self, source: &Path, timeout: Duration) -> Result<(), InventoryError> {
        let label = source.display().to_string();
        if source == Path::new("-") {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| InventoryError::new("-i -", format!("cannot read stdin: {e}")))?;
            return self.add_text("-i - (stdin)", &text);
        }
        let meta = std::fs::metadata(source)
            .map_err(|e| InventoryError::new(&label, format!("cannot read inventory: {e}")))?;
        if meta.is_dir() {
            return self.add_dir(source, timeout);
        }
        self.var_dirs.push(
            source
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        );
        if is_program(source) {
            return self.add_program(source, timeout);
        }
        self.load_file(source)
    }

    /// Every inventory file of a directory, by name (hidden files, `group_vars`, `host_vars`
    /// and backup-like names skipped), and its `group_vars/`/`host_vars/`.
    fn add_dir(&mut self, dir: &Path, timeout: Duration) -> Result<(), InventoryError> {
        let label = dir.display().to_string();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| InventoryError::new(&label, format!("cannot read inventory: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                name.is_some_and(|n| {
                    !n.starts_with('.')
                        && n != "group_vars"
                        && n != "host_vars"
                        && !IGNORED_SUFFIXES.iter().any(|s| n.ends_with(s))
                })
            })
            .collect();
        entries.sort();
        for e in entries {
            if e.is_dir() {
                self.add_dir(&e, timeout)?;
            } else if is_program(&e) {
                self.add_program(&e, timeout)?;
            } else {
                self.load_file(&e)?;
            }
        }
        self.var_dirs.push(dir.to_path_buf());
        Ok(())
    }

    /// A dynamic inventory: `PROGRAM --list`, then `--host NAME` for each host when the
    /// output has no `_meta`.
    fn add_program(&mut self, path: &Path, timeout: Duration) -> Result<(), InventoryError> {
        let label = path.display().to_string();
        let out = run_program(path, &["--list"], timeout)
            .map_err(|e| InventoryError::new(&label, format!("dynamic inventory: {e}")))?;
        let text = String::from_utf8(out).map_err(|_| {
            InventoryError::new(&label, "dynamic inventory printed text that is not UTF-8")
        })?;
        if !text.trim_start().starts_with('{') {
            return Err(InventoryError::new(
                &label,
                format!(
                    "dynamic inventory printed no JSON object for --list (it starts: {:?})",
                    text.chars().take(40).collect::<String>()
                ),
            ));
        }
        let Some(hosts) = super::json::load(&mut self.pending, &label, &text)? else {
            return Ok(());
        };
        let file: std::sync::Arc<str> = std::sync::Arc::from(label.as_str());
        for h in hosts {
            let out = run_program(path, &["--host", &h], timeout).map_err(|e| {
                InventoryError::new(&label, format!("dynamic inventory --host {h}: {e}"))
            })?;
            let v: serde_json::Value = serde_json::from_slice(&out).map_err(|e| {
                InventoryError::new(&label, format!("dynamic inventory --host {h}: {e}"))
            })?;
            let vars = super::json::vars_of(&file, v).map_err(|e| {
                InventoryError::new(&label, format!("dynamic inventory --host {h}: {e}"))
            })?;
            self.pending.add_host("all", &h, &vars);
        }
        Ok(())
    }

    /// Read the `group_vars/` and `host_vars/` files of every source directory (tier 0)
    /// and of `playbook_dir` (tier 1) for the groups and hosts loaded so far.
    pub(super) fn load_vars_files(&mut self) -> Result<(), InventoryError> {
        let mut seen = std::collections::HashSet::new();
        let dirs: Vec<(usize, PathBuf)> = self
            .var_dirs
            .iter()
            .filter(|d| seen.insert(d.canonicalize().unwrap_or_else(|_| (*d).clone())))
            .map(|d| (0, d.clone()))
            .chain(self.playbook_dir.iter().map(|d| (1, d.clone())))
            .collect();
        for (tier, dir) in dirs {
            let mut warnings = Vec::new();
            vars_dir(&mut self.pending, tier, &dir, &mut warnings)?;
            self.warnings.extend(warnings);
        }
        Ok(())
    }
}

/// Load `dir/group_vars/*` and `dir/host_vars/*` for the model's groups and hosts.
fn vars_dir(
    model: &mut Model,
    tier: usize,
    dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<(), InventoryError> {
    for (sub, groups) in [("group_vars", true), ("host_vars", false)] {
        let d = dir.join(sub);
        if !d.is_dir() {
            continue;
        }
        let names: Vec<String> = if groups {
            model.group_names().map(str::to_string).collect()
        } else {
            model.host_names().map(str::to_string).collect()
        };
        for name in names {
            for file in files_for(&d, &name) {
                let vars = read_vars_file(&file, warnings)?;
                if groups {
                    model.add_group_file_vars(tier, &name, vars);
                } else {
                    model.add_host_file_vars(tier, &name, vars);
                }
            }
        }
    }
    Ok(())
}

/// The files holding `name`'s vars in a `group_vars`/`host_vars` directory, in the order
/// Ansible reads them: `name` (a file, or every file under the directory `name/`, sorted,
/// recursively), `name.yml`, `name.yaml`, `name.json`. Hidden files are skipped.
fn files_for(d: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let base = d.join(name);
    if base.is_dir() {
        walk(&base, &mut out);
    } else if base.is_file() {
        out.push(base);
    }
    for ext in ["yml", "yaml", "json"] {
        let p = d.join(format!("{name}.{ext}"));
        if p.is_file() {
            out.push(p);
        }
    }
    out
}

/// Files under `dir` with a vars extension (or none), sorted, recursively.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else if p
            .extension()
            .is_none_or(|e| matches!(e.to_str(), Some("yml" | "yaml" | "json")))
        {
            out.push(p);
        }
    }
}

/// One vars file (YAML or JSON). An Ansible Vault file is skipped with a warning naming it.
fn read_vars_file(
    path: &Path,
    warnings: &mut Vec<String>,
) -> Result<super::model::Vars, InventoryError> {
    let label = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|e| InventoryError::new(&label, format!("cannot read vars file: {e}")))?;
    if bytes.starts_with(b"$ANSIBLE_VAULT;") {
        warnings.push(format!(
            "{label}: encrypted with Ansible Vault; its vars are not read (prun does not \
             decrypt vault files: keep connection vars such as ansible_user outside them)"
        ));
        return Ok(Vec::new());
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| InventoryError::new(&label, "vars file is not valid UTF-8 text"))?;
    super::yaml::load_vars(&label, &text, warnings)
}
