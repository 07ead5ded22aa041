//! Per-host work: the run's command, `--env` values and transfer paths with their `{name}`
//! placeholders ([`crate::template`]) rendered for each host — from the host's resolved
//! address, port and user, its batch and place in the run, and its inventory vars. Every
//! name is checked on every host before anything connects. Pure: the plan calls it.

use crate::inventory::HostVars;
use crate::inventory::value::Value;
use crate::target::{PullSpec, PushSpec, Target, Work};
use crate::template::{Quoting, Template};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// Walks a push's local sources (the plan's `plan_push`).
pub type PushPlanner<'a> =
    dyn FnMut(&[std::path::PathBuf]) -> Result<Vec<crate::target::PushItem>, String> + 'a;

/// `--env` pairs.
type Env = Vec<(String, String)>;

/// The names every host has.
pub const BUILT_IN: [&str; 6] = ["host", "addr", "port", "user", "batch", "index"];

/// What a host's placeholders are filled from.
pub struct HostCtx<'a> {
    pub target: &'a Target,
    /// Its batch, from 1.
    pub batch: u32,
    /// Its place in the run order, from 1.
    pub index: usize,
    pub vars: &'a HostVars,
}

impl HostCtx<'_> {
    /// The value of `name` for this host (built-in names first, then inventory vars).
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        Some(match name {
            "host" => Cow::Borrowed(self.target.name.as_str()),
            "addr" => Cow::Borrowed(self.target.address.as_str()),
            "port" => Cow::Owned(self.target.port.to_string()),
            "user" => Cow::Borrowed(self.target.user.as_str()),
            "batch" => Cow::Owned(self.batch.to_string()),
            "index" => Cow::Owned(self.index.to_string()),
            _ => match self.vars.get(name)? {
                Value::Str(s) => Cow::Borrowed(s.as_str()),
                v => Cow::Owned(v.as_text()?),
            },
        })
    }
}

/// Check that every host has every name `t` uses, as a value that can be substituted.
fn check(t: &Template, what: &str, hosts: &[HostCtx<'_>]) -> Result<(), String> {
    for name in t.names() {
        if BUILT_IN.contains(&name) {
            continue;
        }
        for h in hosts {
            match h.vars.get(name) {
                None | Some(Value::Null) => {
                    return Err(format!(
                        "{what} uses {{{name}}}, but host '{}' has no var '{name}' (built in: \
                         {{host}} {{addr}} {{port}} {{user}} {{batch}} {{index}}; other names \
                         are inventory vars); write {{{{{name}}}}} for a literal {{{name}}}, or \
                         give --literal",
                        h.target.name
                    ));
                }
                Some(v @ (Value::Seq(_) | Value::Map(_))) => {
                    return Err(format!(
                        "{what} uses {{{name}}}, but var '{name}' of host '{}' is {}; only \
                         strings, numbers and booleans can be substituted",
                        h.target.name,
                        v.kind()
                    ));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

fn parse(s: &str, literal: bool) -> Template {
    if literal {
        Template::literal(s)
    } else {
        Template::parse(s)
    }
}

fn render(t: &Template, q: Quoting, h: &HostCtx<'_>) -> String {
    // every name was checked beforehand; a miss renders as nothing rather than panicking
    t.render(q, |n| h.get(n)).unwrap_or_default()
}

/// Fill in each target's own work and `--env` when placeholders make them differ by host.
/// `push_plan` walks a push's local sources (per distinct rendering).
pub fn apply(
    targets: &mut [Target],
    batches: &[u32],
    vars: &[&HostVars],
    work: &Work,
    env: &[(String, String)],
    literal: bool,
    push_plan: &mut PushPlanner<'_>,
) -> Result<(), String> {
    let env_t: Vec<(String, Template)> = env
        .iter()
        .map(|(k, v)| (k.clone(), parse(v, literal)))
        .collect();
    enum Kind {
        Same,
        Command(Template, bool),
        Push(Vec<Template>, Template, Arc<PushSpec>),
        Pull(Template, Arc<PullSpec>),
    }
    let kind = match work {
        Work::Command(c) => {
            let t = parse(c, literal);
            if t.is_constant() {
                Kind::Same
            } else {
                Kind::Command(t, false)
            }
        }
        Work::Local(c) => {
            let t = parse(c, literal);
            if t.is_constant() {
                Kind::Same
            } else {
                Kind::Command(t, true)
            }
        }
        Work::Push(spec) => {
            let srcs: Vec<Template> = spec
                .sources
                .iter()
                .map(|p| parse(&p.to_string_lossy(), literal))
                .collect();
            let dir = parse(&spec.remote_dir, literal);
            if dir.is_constant() && srcs.iter().all(Template::is_constant) {
                Kind::Same
            } else {
                Kind::Push(srcs, dir, spec.clone())
            }
        }
        Work::Pull(spec) => {
            let t = parse(&spec.remote, literal);
            if t.is_constant() {
                Kind::Same
            } else {
                Kind::Pull(t, spec.clone())
            }
        }
    };
    let env_same = env_t.iter().all(|(_, t)| t.is_constant());
    if matches!(kind, Kind::Same) && env_same {
        // (a shell line after one with placeholders: back to the run's work)
        for t in targets.iter_mut() {
            t.work = None;
            t.env = None;
        }
        return Ok(());
    }
    let ctxs: Vec<HostCtx<'_>> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| HostCtx {
            target: t,
            batch: batches.get(i).copied().unwrap_or(1),
            index: i + 1,
            vars: vars[i],
        })
        .collect();
    match &kind {
        Kind::Same => {}
        Kind::Command(t, _) => check(t, "the command", &ctxs)?,
        Kind::Push(srcs, dir, _) => {
            for s in srcs {
                check(s, "push: a local path", &ctxs)?;
            }
            check(dir, "push: REMOTE_DIR", &ctxs)?;
        }
        Kind::Pull(t, _) => check(t, "pull: REMOTE_PATH", &ctxs)?,
    }
    for (k, t) in &env_t {
        check(t, &format!("--env {k}"), &ctxs)?;
    }
    let mut pushes: HashMap<(Vec<String>, String), Arc<PushSpec>> = HashMap::new();
    let mut out: Vec<(Option<Work>, Option<Env>)> = Vec::new();
    for h in &ctxs {
        let work = match &kind {
            Kind::Same => None,
            Kind::Command(t, false) => Some(Work::Command(render(t, Quoting::Shell, h))),
            Kind::Command(t, true) => Some(Work::Local(render(t, Quoting::Shell, h))),
            Kind::Push(srcs, dir, spec) => {
                let srcs: Vec<String> = srcs.iter().map(|s| render(s, Quoting::Raw, h)).collect();
                let dir = render(dir, Quoting::Raw, h);
                let key = (srcs, dir);
                let spec = match pushes.get(&key) {
                    Some(s) => s.clone(),
                    None => {
                        let paths: Vec<std::path::PathBuf> =
                            key.0.iter().map(std::path::PathBuf::from).collect();
                        let items = push_plan(&paths)
                            .map_err(|e| format!("push (host '{}'): {e}", h.target.name))?;
                        let s = Arc::new(PushSpec {
                            items,
                            sources: paths,
                            remote_dir: key.1.clone(),
                            ..(**spec).clone()
                        });
                        pushes.insert(key, s.clone());
                        s
                    }
                };
                Some(Work::Push(spec))
            }
            Kind::Pull(t, spec) => {
                let remote = render(t, Quoting::Raw, h);
                crate::plan::check_pull_path(&remote)
                    .map_err(|e| format!("pull (host '{}'): {e}", h.target.name))?;
                Some(Work::Pull(Arc::new(PullSpec {
                    remote,
                    ..(**spec).clone()
                })))
            }
        };
        let env = (!env_same).then(|| {
            env_t
                .iter()
                .map(|(k, t)| (k.clone(), render(t, Quoting::Raw, h)))
                .collect()
        });
        out.push((work, env));
    }
    drop(ctxs);
    for (t, (work, env)) in targets.iter_mut().zip(out) {
        t.work = work;
        t.env = env;
    }
    Ok(())
}

/// One line per host for `--dry-run`: name, batch, and what it would do.
pub fn dry_run_line(t: &Target, batch: u32, run: &Work) -> String {
    let what = match t.work_or(run) {
        Work::Command(c) => c.clone(),
        Work::Local(c) => format!("local: {c}"),
        Work::Push(s) => format!(
            "push {} to {}",
            s.sources
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
            s.remote_dir
        ),
        Work::Pull(s) => format!(
            "pull {} into {}/{}/",
            s.remote,
            s.local_dir.display(),
            t.name
        ),
    };
    // one line per host, whatever the command holds
    format!(
        "{}\t{batch}\t{}",
        t.name,
        what.replace('\n', "\\n").replace('\t', "\\t")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::KnownHosts;

    fn target(name: &str) -> Target {
        let kh = Arc::new(KnownHosts::load(&[], "/dev/null".into()).unwrap());
        Target {
            user: "deploy".into(),
            ..Target::for_test(name, &format!("{name}.example"), 2222, kh)
        }
    }

    fn vars(pairs: &[(&str, Value)]) -> HostVars {
        let mut v = HostVars::default();
        for (k, x) in pairs {
            v.insert(k.to_string(), x.clone());
        }
        v
    }

    fn no_push(_: &[std::path::PathBuf]) -> Result<Vec<crate::target::PushItem>, String> {
        Err("no".into())
    }

    #[test]
    fn commands_and_env_are_rendered_per_host() {
        let mut ts = vec![target("web1"), target("web2")];
        let v1 = vars(&[("rack", Value::Str("r 1 $(x)".into()))]);
        let v2 = vars(&[("rack", Value::Int(7))]);
        apply(
            &mut ts,
            &[1, 2],
            &[&v1, &v2],
            &Work::Command("echo {host} {rack} {index}/{batch} {user}@{addr}:{port}".into()),
            &[("R".into(), "{rack}".into()), ("K".into(), "v".into())],
            false,
            &mut no_push,
        )
        .unwrap();
        let cmd = |t: &Target| match t.work.as_ref().unwrap() {
            Work::Command(c) => c.clone(),
            _ => unreachable!(),
        };
        assert_eq!(
            cmd(&ts[0]),
            "echo web1 'r 1 $(x)' 1/1 deploy@web1.example:2222"
        );
        assert_eq!(cmd(&ts[1]), "echo web2 7 2/2 deploy@web2.example:2222");
        assert_eq!(
            ts[0].env.as_ref().unwrap()[0],
            ("R".to_string(), "r 1 $(x)".to_string())
        );
    }

    #[test]
    fn a_missing_or_unusable_var_names_the_host() {
        let mut ts = vec![target("web1"), target("web2")];
        let v1 = vars(&[("rack", Value::Str("a".into()))]);
        let v2 = vars(&[]);
        let e = apply(
            &mut ts,
            &[1, 1],
            &[&v1, &v2],
            &Work::Command("echo {rack}".into()),
            &[],
            false,
            &mut no_push,
        )
        .unwrap_err();
        assert!(
            e.contains("{rack}") && e.contains("'web2'") && e.contains("{{rack}}"),
            "{e}"
        );
        let v2 = vars(&[("rack", Value::Seq(vec![]))]);
        let e = apply(
            &mut ts,
            &[1, 1],
            &[&v1, &v2],
            &Work::Command("echo {rack}".into()),
            &[],
            false,
            &mut no_push,
        )
        .unwrap_err();
        assert!(e.contains("a list"), "{e}");
        // --literal: no placeholders at all
        apply(
            &mut ts,
            &[1, 1],
            &[&v1, &v2],
            &Work::Command("awk '{print}'".into()),
            &[],
            true,
            &mut no_push,
        )
        .unwrap();
        assert!(ts[0].work.is_none());
    }

    #[test]
    fn dry_run_lines_stay_one_line() {
        let t = target("web1");
        assert_eq!(
            dry_run_line(&t, 3, &Work::Command("a\tb\nc".into())),
            "web1\t3\ta\\tb\\nc"
        );
    }
}
