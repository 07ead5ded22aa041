//! Inventory formats against the reference: for each fixture, the hosts, groups, address,
//! port and user prun resolves (`--list-hosts`, `-l GROUP`) equal what Ansible's own
//! `ansible-inventory --list` (ansible-core, in the throwaway venv scripts/deps.sh makes)
//! resolves from the same files — INI with odd spacing, ranges, nested children, group var
//! precedence and priorities, `group_vars/`/`host_vars/` files and directories, YAML, JSON,
//! a dynamic inventory script, several sources mixed, and stdin. Plus dynamic inventories
//! that fail, hang or print nonsense, and a real run through an INI inventory whose port and
//! user live only in `group_vars/`.

mod common;

use common::{Fleet, whoami};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `ansible-inventory`, from PRUN_ANSIBLE_INVENTORY or the venv scripts/deps.sh creates.
fn ansible_inventory() -> PathBuf {
    let p = std::env::var_os("PRUN_ANSIBLE_INVENTORY").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ansible-venv/bin/ansible-inventory"),
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "{} not found: these tests compare prun with Ansible's own inventory parser; run \
         scripts/deps.sh (it creates target/ansible-venv with ansible-core from PyPI) or set \
         PRUN_ANSIBLE_INVENTORY",
        p.display()
    );
    p
}

/// Host → (address, port, user), and group → hosts.
#[derive(Debug, PartialEq)]
struct Resolved {
    hosts: BTreeMap<String, (String, u16, String)>,
    groups: BTreeMap<String, BTreeSet<String>>,
}

fn ansible_json(sources: &[&Path], home: &Path) -> serde_json::Value {
    ansible_json_with(sources, home, None)
}

fn ansible_json_with(
    sources: &[&Path],
    home: &Path,
    playbook_dir: Option<&Path>,
) -> serde_json::Value {
    let mut c = Command::new(ansible_inventory());
    for s in sources {
        c.arg("-i").arg(s);
    }
    if let Some(d) = playbook_dir {
        c.arg("--playbook-dir").arg(d);
    }
    let out = c
        .arg("--list")
        .env("ANSIBLE_HOME", home)
        .env("ANSIBLE_LOCAL_TEMP", home)
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .env("ANSIBLE_NOCOLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run ansible-inventory");
    assert!(
        out.status.success(),
        "ansible-inventory failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ansible(sources: &[&Path], home: &Path) -> Resolved {
    ansible_with(sources, home, None)
}

fn ansible_with(sources: &[&Path], home: &Path, playbook_dir: Option<&Path>) -> Resolved {
    let j = ansible_json_with(sources, home, playbook_dir);
    let me = whoami();
    let top = j.as_object().unwrap();
    // every group's hosts, through its children
    fn members(
        top: &serde_json::Map<String, serde_json::Value>,
        g: &str,
        out: &mut BTreeSet<String>,
    ) {
        let Some(def) = top.get(g) else { return };
        for h in def["hosts"].as_array().into_iter().flatten() {
            out.insert(h.as_str().unwrap().to_string());
        }
        for c in def["children"].as_array().into_iter().flatten() {
            members(top, c.as_str().unwrap(), out);
        }
    }
    let mut groups = BTreeMap::new();
    for g in top.keys().filter(|k| *k != "_meta") {
        let mut m = BTreeSet::new();
        members(top, g, &mut m);
        groups.insert(g.clone(), m);
    }
    let hostvars = &j["_meta"]["hostvars"];
    let mut hosts = BTreeMap::new();
    for h in &groups["all"] {
        let v = &hostvars[h];
        let text = |k: &str| v[k].as_str().map(str::to_string);
        let port = match &v["ansible_port"] {
            serde_json::Value::Number(n) => n.as_u64().unwrap() as u16,
            serde_json::Value::String(s) => s.parse().unwrap(),
            _ => 22,
        };
        hosts.insert(
            h.clone(),
            (
                text("ansible_host").unwrap_or_else(|| h.clone()),
                port,
                text("ansible_user").unwrap_or_else(|| me.clone()),
            ),
        );
    }
    Resolved { hosts, groups }
}

fn prun_cmd(sources: &[&Path], extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_prun"));
    c.args(["-F", "none"]);
    for s in sources {
        c.arg("-i").arg(s);
    }
    c.args(extra).stdin(Stdio::null());
    c
}

/// name → (address, port, user) from `prun --list-hosts`.
fn prun_list(mut c: Command) -> BTreeMap<String, (String, u16, String)> {
    let out = c.arg("--list-hosts").output().unwrap();
    assert!(
        out.status.success(),
        "prun --list-hosts failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_string(),
                (f[1].to_string(), f[2].parse().unwrap(), f[3].to_string()),
            )
        })
        .collect()
}

fn prun(sources: &[&Path], extra: &[&str], groups: impl Iterator<Item = String>) -> Resolved {
    let hosts = prun_list(prun_cmd(sources, extra));
    let groups = groups
        .map(|g| {
            let mut args = extra.to_vec();
            args.extend(["-l", &g]);
            let members = prun_list(prun_cmd(sources, &args));
            (g, members.into_keys().collect())
        })
        .collect();
    Resolved { hosts, groups }
}

/// prun and Ansible agree on `sources`; returns what they resolved.
fn agree(sources: &[&Path], home: &Path) -> Resolved {
    agree_with(sources, home, None)
}

fn agree_with(sources: &[&Path], home: &Path, playbook_dir: Option<&Path>) -> Resolved {
    let a = ansible_with(sources, home, playbook_dir);
    // groups without hosts are not a host selection: prun says "no hosts" for them
    let groups = a
        .groups
        .iter()
        .filter(|(_, m)| !m.is_empty())
        .map(|(g, _)| g.clone());
    let pd = playbook_dir.map(|d| d.to_string_lossy().into_owned());
    let extra: Vec<&str> = match &pd {
        Some(d) => vec!["--playbook-dir", d],
        None => vec![],
    };
    let p = prun(sources, &extra, groups);
    let a_nonempty = Resolved {
        hosts: a.hosts.clone(),
        groups: a
            .groups
            .into_iter()
            .filter(|(_, m)| !m.is_empty())
            .collect(),
    };
    assert_eq!(
        p, a_nonempty,
        "prun (left) and ansible-inventory (right) differ"
    );
    p
}

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

const INI: &str = "\
# an INI inventory the way people write them
bastion   ansible_host=10.9.9.9      # ungrouped, first line

[web]
web[01:04]
web05:2205    ansible_user=\"web five\"   ansible_host='10.0.0.5'
  web06  ansible_port=2206 ; not a comment in a host line? it is a var-less token

[db]
db-[a:c]   ansible_port=5432

[alpha]
web01
db-a

[beta]
web01
db-a

[alpha:vars]
ansible_user=alpha_user
ansible_host=10.1.0.1

[beta:vars]
ansible_user =   beta_user
ansible_host = 10.2.0.1

[aprio]
db-b

[aprio:vars]
ansible_group_priority=10
ansible_host=10.7.7.7

[zlow]
db-b

[zlow:vars]
ansible_host=10.8.8.8

[prod:children]
web
db

[prod:vars]
ansible_user=ops
ansible_port=2200

[site:children]
prod

[site:vars]
ansible_port=2100

[all:vars]
ansible_user=everyone
";

#[test]
fn ini_with_group_and_host_vars_resolves_as_ansible_does() {
    let d = tempfile::tempdir().unwrap();
    // `;` does not start a comment in a host line: that token is no key=value. Keep the line
    // valid for both parsers:
    let ini = INI.replace(
        " ; not a comment in a host line? it is a var-less token",
        "",
    );
    let hosts = write(d.path(), "inv/hosts", &ini);
    write(d.path(), "inv/group_vars/all.yml", "ansible_port: 2000\n");
    write(
        d.path(),
        "inv/group_vars/web.yaml",
        "ansible_user: from_group_vars\n",
    );
    write(
        d.path(),
        "inv/group_vars/db/10.yml",
        "ansible_user: db_dir_first\nansible_port: 6000\n",
    );
    write(
        d.path(),
        "inv/group_vars/db/20.json",
        "{\"ansible_user\": \"db_dir_second\"}\n",
    );
    write(
        d.path(),
        "inv/host_vars/web02.yml",
        "ansible_host: 10.0.0.2\n",
    );
    write(
        d.path(),
        "inv/host_vars/db-c/a.yml",
        "ansible_user: c_first\n",
    );
    write(
        d.path(),
        "inv/host_vars/db-c/b.yml",
        "ansible_user: c_second\n",
    );
    write(
        d.path(),
        "inv/host_vars/nobody.yml",
        "ansible_user: ignored\n",
    );
    let r = agree(&[&hosts], d.path());
    // spot checks of what the comparison covered
    // group_vars/all (a file) beats [prod:vars] (the inventory's own group vars)
    assert_eq!(
        r.hosts["web02"],
        ("10.0.0.2".into(), 2000, "from_group_vars".into())
    );
    assert_eq!(
        r.hosts["db-c"].2, "c_second",
        "later file in host_vars/NAME/ wins"
    );
    assert_eq!(
        r.hosts["web05"],
        ("10.0.0.5".into(), 2205, "web five".into())
    );
    assert_eq!(r.groups["site"].len(), 9);
    assert_eq!(
        r.hosts["db-a"].0, "10.2.0.1",
        "same depth: the later name wins"
    );
    assert_eq!(
        r.hosts["db-b"].0, "10.7.7.7",
        "ansible_group_priority beats the name"
    );
    assert!(r.groups["ungrouped"].contains("bastion"));
    // a playbook directory's group_vars/host_vars win over the inventory's
    write(
        d.path(),
        "play/group_vars/web.yml",
        "ansible_user: from_playbook\n",
    );
    write(d.path(), "play/group_vars/all.yml", "ansible_port: 2999\n");
    write(
        d.path(),
        "play/host_vars/db-a.yml",
        "ansible_host: 10.4.4.4\n",
    );
    let r = agree_with(&[&hosts], d.path(), Some(&d.path().join("play")));
    assert_eq!(
        r.hosts["web03"],
        ("web03".into(), 2999, "from_playbook".into())
    );
    assert_eq!(r.hosts["db-a"].0, "10.4.4.4");
}

#[test]
fn clustershell_groups_resolve_as_nodeset_does() {
    let d = tempfile::tempdir().unwrap();
    let groups = write(
        d.path(),
        "cs/groups.d/site.yaml",
        concat!(
            "site:\n",
            "  compute: 'node[001-012]'\n",
            "  gpu: 'node[001-003],gpu[1-2]'\n",
            "  cpu: '@compute!@gpu'\n",
            "  both: '@compute&@gpu'\n",
            "  edge: 'login[1-2],@site:gpu^gpu1'\n",
        ),
    );
    write(
        d.path(),
        "cs/groups.conf",
        &format!(
            "[Main]\ndefault: site\ngroupsdir: {}\n",
            d.path().join("cs/groups.d").display()
        ),
    );
    let nodeset = ansible_inventory().with_file_name("nodeset");
    for g in ["compute", "gpu", "cpu", "both", "edge"] {
        let out = Command::new(&nodeset)
            .args(["-e", &format!("@{g}")])
            .env("CLUSTERSHELL_CFGDIR", d.path().join("cs"))
            .output()
            .expect("run nodeset");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want: BTreeSet<String> = String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let got: BTreeSet<String> = prun_list(prun_cmd(&[&groups], &["-l", g]))
            .into_keys()
            .collect();
        assert_eq!(got, want, "@{g}");
    }
}

#[test]
fn yaml_json_and_a_dynamic_script_resolve_as_ansible_does() {
    let d = tempfile::tempdir().unwrap();
    let yaml = write(
        d.path(),
        "y/inv.yml",
        "all:\n  children:\n    app:\n      hosts:\n        app[1:3]:\n      vars:\n        ansible_user: app\n      children:\n        canary:\n          hosts:\n            app1:\n              ansible_port: 2201\n",
    );
    write(
        d.path(),
        "y/group_vars/canary.yml",
        "ansible_user: canary_user\n",
    );
    agree(&[&yaml], d.path());
    // the JSON a dynamic inventory prints (Ansible reads it from a script; prun also from
    // a file)
    let listing = r#"{"_meta": {"hostvars": {"n1": {"ansible_host": "10.3.0.1", "ansible_port": 2301}}},
            "all": {"children": ["ungrouped", "nodes"], "vars": {"ansible_user": "j"}},
            "nodes": {"hosts": ["n1", "n2"], "children": ["gpu"]},
            "gpu": {"hosts": ["n3"], "vars": {"ansible_port": 2399}}}"#;
    let json_file = write(d.path(), "j/inv.json", listing);
    let json = write(
        d.path(),
        "j/list.sh",
        &format!(
            "#!/bin/sh
cat {}
",
            json_file.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&json, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = agree(&[&json], d.path());
    assert_eq!(prun_list(prun_cmd(&[&json_file], &[])), r.hosts);
    // a script without _meta: asked --host for each host
    let script = write(
        d.path(),
        "s/dyn.sh",
        "#!/bin/sh\ncase \"$1\" in\n--list) echo '{\"web\": {\"hosts\": [\"s1\", \"s2\"], \"vars\": {\"ansible_user\": \"dyn\"}}, \"db\": [\"s3\"]}';;\n--host) if [ \"$2\" = s2 ]; then echo '{\"ansible_port\": 2402}'; else echo '{}'; fi;;\nesac\n",
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = agree(&[&script], d.path());
    assert_eq!(r.hosts["s2"].1, 2402);
    // several sources of different kinds merge into one inventory
    let r = agree(&[&yaml, &json, &script], d.path());
    assert_eq!(r.hosts.len(), 9);
    // ansible-inventory's own output, through stdin, for anything Ansible reads
    let listed = ansible_json(&[&yaml, &script], d.path());
    let mut c = prun_cmd(&[Path::new("-")], &["--list-hosts"]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        serde_json::to_string(&listed).unwrap().as_bytes(),
    )
    .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let via_stdin: BTreeMap<String, (String, u16, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].into(),
                (f[1].into(), f[2].parse().unwrap(), f[3].into()),
            )
        })
        .collect();
    assert_eq!(via_stdin, ansible(&[&yaml, &script], d.path()).hosts);
}

#[test]
fn dynamic_inventories_that_fail_hang_or_print_nonsense_are_refused_clearly() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let script = |name: &str, body: &str| {
        let p = write(d.path(), name, &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    };
    let failing = script("fails.sh", "echo 'cloud says no' >&2; exit 3");
    let out = prun_cmd(&[&failing], &["--list-hosts"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("fails.sh") && err.contains("exited with status 3"),
        "{err}"
    );
    assert!(
        err.contains("cloud says no"),
        "its stderr is passed through: {err}"
    );

    let hanging = script("hangs.sh", "sleep 36.5");
    let start = std::time::Instant::now();
    let out = prun_cmd(&[&hanging], &["--inventory-timeout", "1s", "--list-hosts"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("did not finish within 1s"), "{err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
    assert!(
        common::pids_of("sleep 36.5").is_empty(),
        "the script was left running"
    );

    let nonsense = script("nonsense.sh", "echo '{\"web\": [\"a\",'");
    let out = prun_cmd(&[&nonsense], &["--list-hosts"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("nonsense.sh") && err.contains("invalid inventory JSON"),
        "{err}"
    );

    let text = script("text.sh", "echo hello");
    let out = prun_cmd(&[&text], &["--list-hosts"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no JSON object"), "{err}");

    // a vault-encrypted vars file: a warning naming it, the rest still read
    let inv = write(d.path(), "v/hosts", "[web]\nw1\n");
    write(
        d.path(),
        "v/group_vars/web.yml",
        "$ANSIBLE_VAULT;1.1;AES256\n3131\n",
    );
    write(d.path(), "v/group_vars/all.yml", "ansible_port: 2022\n");
    let out = prun_cmd(&[&inv], &["--list-hosts"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("group_vars/web.yml") && err.contains("Vault"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("w1\tw1\t2022\t"));
}

#[test]
fn a_run_through_an_ini_inventory_whose_port_and_user_live_in_group_vars() {
    // DEBUG1: the servers log each forwarded channel (server_request_direct_tcpip)
    let f = Fleet::with_config(2, "LogLevel DEBUG1\n");
    f.trust_all();
    let d = f.dir.path();
    let inv = write(
        d,
        "ini/hosts",
        "[web]\nw1\nw2\n\n[db]\nd1\n\n[prod:children]\nweb\ndb\n",
    );
    write(
        d,
        "ini/group_vars/all.yml",
        &format!(
            "ansible_host: 127.0.0.1\nansible_user: nobody-here\nansible_ssh_private_key_file: {}\n",
            f.key.display()
        ),
    );
    write(
        d,
        "ini/group_vars/prod.yml",
        &format!("ansible_user: {}\nansible_port: {}\n", whoami(), f.port(0)),
    );
    write(
        d,
        "ini/group_vars/db.yml",
        &format!("ansible_port: {}\n", f.port(1)),
    );
    let r = f.run_inv(&inv, &["-F", "none", "echo {host}:$SSH_CONNECTION"]);
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.stdout_text();
    for (h, port) in [("w1", f.port(0)), ("w2", f.port(0)), ("d1", f.port(1))] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("{h} ")) && l.ends_with(&format!(" {port}"))),
            "{h} on port {port}: {out}"
        );
    }
    // ansible_become runs the command through sudo; a ProxyJump in ansible_ssh_common_args
    // reaches the host through that bastion (here the fleet's other server)
    let user = common::ensure_test_user();
    write(
        d,
        "ini/group_vars/db.yml",
        &format!(
            "ansible_port: {}\nansible_become: yes\nansible_become_user: {user}\n",
            f.port(1)
        ),
    );
    write(
        d,
        "ini/group_vars/web.yml",
        &format!(
            "ansible_ssh_common_args: '-o ProxyJump={}@127.0.0.1:{} -o ControlMaster=auto'\n",
            whoami(),
            f.port(1)
        ),
    );
    let key = f.key.display().to_string();
    let r = f.run_inv(&inv, &["-F", "none", "--identity", &key, "id -un"]);
    assert_eq!(r.code, 0, "{r:?}");
    let out = r.stdout_text();
    assert!(out.contains(&format!("d1 | {user}")), "{r:?}");
    assert!(out.contains(&format!("w1 | {}", whoami())), "{r:?}");
    assert!(
        r.stderr.contains("ignored: -o controlmaster=auto"),
        "unread options are named: {r:?}"
    );
    let log = std::fs::read_to_string(d.join("sshd-1.log")).unwrap_or_default();
    assert_eq!(
        log.matches("server_request_direct_tcpip").count(),
        2,
        "w1 and w2 went through the bastion"
    );
}
