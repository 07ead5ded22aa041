//! The committed man page (man/prun.1) must match the clap definition and the manual
//! sections in cli.rs it is generated from.
//! The same for the shell completions under completions/.
//! Regenerate with: PRUN_UPDATE_MAN=1 cargo test --test man

fn roff_escape(line: &str) -> String {
    let s = line.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

fn render() -> Vec<u8> {
    let cmd = prun::cli::command();
    let man = clap_mangen::Man::new(cmd).date("2026-11-27");
    let mut out = Vec::new();
    man.render_title(&mut out).unwrap();
    man.render_name_section(&mut out).unwrap();
    man.render_synopsis_section(&mut out).unwrap();
    man.render_description_section(&mut out).unwrap();
    man.render_options_section(&mut out).unwrap();
    man.render_subcommands_section(&mut out).unwrap();
    for (title, body) in prun::cli::SECTIONS {
        out.extend_from_slice(format!(".SH \"{title}\"\n").as_bytes());
        for para in body.split("\n\n") {
            if para.lines().all(|l| l.starts_with("  ")) {
                out.extend_from_slice(b".PP\n.nf\n.RS 4\n");
                for l in para.lines() {
                    out.extend_from_slice(roff_escape(&l[2..]).as_bytes());
                    out.push(b'\n');
                }
                out.extend_from_slice(b".RE\n.fi\n");
            } else {
                out.extend_from_slice(b".PP\n");
                let text = para.split_whitespace().collect::<Vec<_>>().join(" ");
                out.extend_from_slice(roff_escape(&text).as_bytes());
                out.push(b'\n');
            }
        }
    }
    man.render_version_section(&mut out).unwrap();
    out
}

/// Compare `fresh` with the committed file `man/NAME`, or rewrite it with PRUN_UPDATE_MAN set.
fn check(name: &str, fresh: &[u8]) {
    let path = format!("{}/man/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("PRUN_UPDATE_MAN").is_some() {
        std::fs::write(&path, fresh).unwrap();
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "man/{name} is stale: regenerate it with `PRUN_UPDATE_MAN=1 cargo test --test man` and commit it"
    );
}

#[test]
fn completions_are_up_to_date() {
    use prun::cli::CompletionShell as S;
    for (shell, file) in [
        (S::Bash, "prun.bash"),
        (S::Zsh, "_prun"),
        (S::Fish, "prun.fish"),
    ] {
        let fresh = prun::cli::completion_script(shell);
        let path = format!("{}/completions/{file}", env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("PRUN_UPDATE_MAN").is_some() {
            std::fs::create_dir_all(format!("{}/completions", env!("CARGO_MANIFEST_DIR"))).unwrap();
            std::fs::write(&path, &fresh).unwrap();
            continue;
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "completions/{file} is stale: regenerate with `PRUN_UPDATE_MAN=1 cargo test --test man`"
        );
    }
}

#[test]
fn man_page_is_up_to_date() {
    check("prun.1", &render());
}

#[test]
fn subcommand_man_pages_are_up_to_date() {
    let cmd = prun::cli::command();
    for (name, page) in [
        ("bench", "prun-bench"),
        ("push", "prun-push"),
        ("pull", "prun-pull"),
        ("shell", "prun-shell"),
        ("sessions", "prun-sessions"),
    ] {
        let sub = cmd
            .find_subcommand(name)
            .unwrap_or_else(|| panic!("{name} subcommand"))
            .clone()
            .name(page);
        let mut fresh = Vec::new();
        clap_mangen::Man::new(sub)
            .date("2026-11-27")
            .render(&mut fresh)
            .unwrap();
        check(&format!("prun-{name}.1"), &fresh);
    }
}
