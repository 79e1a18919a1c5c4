//! `understudy completions SHELL`: the scripts come from the clap
//! definitions, so they name every subcommand; the bash one is loaded into
//! a real bash and asked to complete, as a shell would on Tab.

use std::process::Command;

fn completions(shell: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_understudy"))
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What bash offers for `understudy WORDS…` with the cursor on the last word.
fn bash_completes(words: &[&str]) -> Vec<String> {
    let script = format!(
        "{}\nCOMP_WORDS=({})\nCOMP_CWORD={}\n_understudy understudy \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        completions("bash"),
        words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
        words.len() - 1
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_their_options() {
    let offered = bash_completes(&["understudy", "che"]);
    assert_eq!(offered, ["check-config"], "{offered:?}");
    let all = bash_completes(&["understudy", ""]);
    for sub in [
        "run",
        "status",
        "restart",
        "maintenance",
        "iflist",
        "completions",
    ] {
        assert!(all.iter().any(|w| w == sub), "{sub} not offered: {all:?}");
    }
    let options = bash_completes(&["understudy", "run", "--"]);
    for option in ["--config", "--node", "--socket", "--state-file"] {
        assert!(
            options.iter().any(|w| w == option),
            "{option} not offered: {options:?}"
        );
    }
}

#[test]
fn zsh_and_fish_scripts_name_every_subcommand() {
    for shell in ["zsh", "fish"] {
        let text = completions(shell);
        for sub in ["check-config", "restart", "reset-flapping", "forget"] {
            assert!(text.contains(sub), "{shell} script lacks {sub}");
        }
    }
}
