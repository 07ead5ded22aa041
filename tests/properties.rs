//! Property tests for every parser of user input: host ranges, `--limit` patterns, YAML
//! inventories and plain host lists, ssh_config, known_hosts, durations, `--env`, the option
//! check before the command, plus the text escaper and the sudo prompt filter. Each runs on
//! arbitrary input of bounded size and asserts no panic (a panic fails the case) and the
//! invariants that make the result safe to use. Time is bounded by input size: each property
//! runs a fixed number of small cases, so a blow-up shows as a run that never ends.

use proptest::prelude::*;
use prun::inventory::{Inventory, pattern, range};
use prun::ssh::KnownHosts;
use prun::ssh::sudo::{Action, SudoFilter};
use prun::sshconfig::SshConfig;
use std::path::PathBuf;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text made of the characters a grammar cares about, plus anything.
fn syntaxy(chars: &'static str, max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::collection::vec(proptest::sample::select(chars.chars().collect::<Vec<_>>()), 0..max)
            .prop_map(|v| v.into_iter().collect::<String>()),
        1 => proptest::string::string_regex(&format!(".{{0,{max}}}")).unwrap(),
    ]
}

fn small_inventory() -> Inventory {
    let mut inv = Inventory::default();
    inv.load_str(
        "inv.yaml",
        "all:\n  children:\n    web:\n      hosts:\n        web[01:04]:\n    db:\n      hosts:\n        db1:\n        web01:\n",
    )
    .unwrap();
    inv
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn ranges_never_panic_and_stay_within_the_maximum(p in syntaxy("ab01239[]:-,", 24)) {
        if let Ok(names) = range::expand(&p) {
            prop_assert!(names.len() <= range::MAX_EXPANSION);
            prop_assert!(!names.is_empty());
        }
    }

    #[test]
    fn limit_patterns_never_panic(p in syntaxy("web0db1*?[]:!&~@^$.,()|-", 32)) {
        let inv = small_inventory();
        if let Ok(sel) = pattern::select(&inv, &p) {
            prop_assert!(sel.iter().all(|&i| i < inv.hosts.len()));
            prop_assert!(sel.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn host_lists_never_panic(p in syntaxy("ab1[]:-,@.%2 \n#", 40)) {
        let mut inv = Inventory::default();
        let _ = inv.add_host_list_arg(&p);
        let mut inv = Inventory::default();
        let _ = inv.load_host_list("list", &p);
    }

    #[test]
    fn durations_are_bounded(s in syntaxy("0123456789.smhdyµn ", 16)) {
        if let Ok(d) = prun::cli::parse_duration(&s) {
            prop_assert!(d <= prun::cli::MAX_DURATION && !d.is_zero());
        }
    }

    #[test]
    fn env_assignments_never_panic(s in syntaxy("AB_1=x ='\"", 16)) {
        if let Ok((k, _)) = prun::cli::parse_env(&s) {
            prop_assert!(!k.is_empty() && !k.contains('='));
        }
    }

    #[test]
    fn the_option_check_never_panics(words in proptest::collection::vec(syntaxy("-ptH=5a", 8), 0..6)) {
        let args: Vec<std::ffi::OsString> = std::iter::once("prun".to_string())
            .chain(words)
            .map(Into::into)
            .collect();
        let _ = prun::cli::unknown_option(&prun::cli::subcommand_first(args));
    }

    #[test]
    fn escaped_text_has_no_control_characters(s in ".{0,64}") {
        let out = prun::text::one_line(&s);
        prop_assert!(!out.chars().any(|c| c.is_control()), "{out:?}");
    }

    #[test]
    fn sudo_answers_only_a_prompt_that_comes_first(
        stream in proptest::collection::vec(any::<u8>(), 0..64),
        cuts in proptest::collection::vec(0usize..64, 0..6),
        with_prompt in any::<bool>(),
    ) {
        let marker = "[prun:sudo:00ff]";
        let mut data = Vec::new();
        if with_prompt {
            data.extend_from_slice(marker.as_bytes());
        }
        data.extend_from_slice(&stream);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
        cuts.sort_unstable();
        let mut f = SudoFilter::new(marker);
        let (mut answers, mut at) = (0, 0);
        for c in cuts.into_iter().chain([data.len()]) {
            let (_, a) = f.stderr(&data[at..c]);
            if a == Action::Answer {
                answers += 1;
            }
            at = c;
        }
        prop_assert!(answers <= 1);
        if answers == 1 {
            prop_assert!(data.starts_with(marker.as_bytes()));
        }
        if with_prompt {
            prop_assert_eq!(answers, 1);
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn yaml_inventories_never_panic(
        lines in proptest::collection::vec(
            syntaxy("allchildrenhostsvarsweb01[:]port: user-&*!\"'{},", 24), 0..12),
        indents in proptest::collection::vec(0usize..4, 12),
    ) {
        let text: String = lines
            .iter()
            .zip(indents)
            .map(|(l, i)| format!("{}{l}\n", "  ".repeat(i)))
            .collect();
        let mut inv = Inventory::default();
        if inv.load_str("prop.yaml", &text).is_ok() {
            for h in &inv.hosts {
                prop_assert!(!h.name.is_empty());
            }
        }
    }

    #[test]
    fn ssh_config_never_panics(
        lines in proptest::collection::vec(
            (
                proptest::sample::select(vec![
                    "Host", "Match", "HostName", "User", "Port", "IdentityFile",
                    "IdentitiesOnly", "ProxyJump", "ConnectTimeout", "StrictHostKeyChecking",
                    "HostKeyAlias", "UserKnownHostsFile", "Bogus", "  ", "#",
                ]),
                syntaxy("ab*!%h%r ,:=0129yesno", 16),
            ),
            0..10,
        ),
    ) {
        let text: String = lines.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
        let mut c = SshConfig::default();
        if c.add_text(&text, "prop.conf", PathBuf::from("/nonexistent")).is_ok() {
            let _ = c.query("web01", "me");
        }
    }

    #[test]
    fn known_hosts_never_panic(
        lines in proptest::collection::vec(
            syntaxy("|1|@revoked cert-authority[]:,*!?h0 ssh-ed25519 AAAAC3Nz=", 40), 0..8),
        blob in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let dir = std::env::temp_dir();
        let mut k = KnownHosts::load(&[], dir.join("prun-prop-never-written")).unwrap();
        k.parse("prop", &lines.join("\n"));
        let _ = k.check("[h0]:22", &blob);
        let _ = k.known_algorithms("h0");
    }
}
