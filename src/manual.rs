//! The manual pages, generated (`understudy manual DIR`, hidden; run by
//! packaging/build-deb.sh) so that nothing is copied by hand:
//! `understudy(8)` from the clap definitions (clap_mangen for the top,
//! then every subcommand with its options), and `understudy.toml(5)` from
//! the key table in README.md's "Configuration" section, the one place the
//! keys are documented. Also the shell completions the package installs.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;
use clap_mangen::roff::{bold, roman, Inline, Roff};
use clap_mangen::Man;

use crate::cli::Cli;

/// The README, whose "Configuration" section is the key table.
const README: &str = include_str!("../README.md");

/// Writes understudy.8, understudy.toml.5 and the bash, zsh and fish
/// completions into `dir`.
pub fn write_all(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut page = Vec::new();
    command_page(&mut page)?;
    std::fs::write(dir.join("understudy.8"), page)?;
    std::fs::write(dir.join("understudy.toml.5"), config_page().render())?;
    for (shell, file) in [
        (clap_complete::Shell::Bash, "understudy.bash"),
        (clap_complete::Shell::Zsh, "_understudy"),
        (clap_complete::Shell::Fish, "understudy.fish"),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "understudy", &mut script);
        std::fs::write(dir.join(file), script)?;
    }
    Ok(())
}

/// understudy(8): name, synopsis, description, the commands, and each
/// command's options.
fn command_page(w: &mut dyn Write) -> std::io::Result<()> {
    let mut cli = Cli::command();
    cli.build();
    let man = Man::new(cli.clone())
        .section("8")
        .date(MANUAL_DATE)
        .manual("System Administration");
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    let mut roff = Roff::new();
    roff.control("SH", ["DESCRIPTION"]);
    for (i, paragraph) in DESCRIPTION.iter().enumerate() {
        if i > 0 {
            roff.control("PP", []);
        }
        roff.text([roman(*paragraph)]);
    }
    roff.control("SH", ["COMMANDS"]);
    for sub in cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        command(&mut roff, sub, "understudy");
    }
    roff.control("SH", ["FILES"]);
    for (path, what) in [
        (
            "/etc/understudy/understudy.toml",
            "the configuration, the same on every node; see understudy.toml(5)",
        ),
        (
            "/run/understudy/understudy.sock",
            "the control socket the commands talk to",
        ),
        (
            "/var/lib/understudy/state.json",
            "Disabled and maintenance, kept across restarts",
        ),
        (
            "/etc/understudy/secret",
            "the heartbeats' HMAC key (heartbeat.secret_file, written by understudy keygen), the same on every node, mode 0600",
        ),
        (
            "/lib/systemd/system/understudy.service",
            "the systemd unit (Type=notify, WatchdogSec)",
        ),
    ] {
        roff.control("TP", [])
            .text([bold(path)])
            .text([roman(what)]);
    }
    tagged(&mut roff, "SIGNALS", SIGNALS);
    tagged(&mut roff, "EXIT STATUS", EXIT_STATUS);
    tagged(&mut roff, "ENVIRONMENT", ENVIRONMENT);
    roff.control("SH", ["EXAMPLES"]);
    for (i, (what, example)) in EXAMPLES.iter().enumerate() {
        if i > 0 {
            roff.control("PP", []);
        }
        roff.text([roman(*what)]);
        roff.control("PP", []).control("RS", ["4"]);
        roff.text([bold(*example)]).control("RE", []);
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([
        bold("understudy.toml"),
        roman("(5), "),
        bold("systemctl"),
        roman("(1), "),
        bold("journalctl"),
        roman("(1), "),
        bold("keepalived"),
        roman("(8). The README (/usr/share/doc/understudy/README.md) explains each part with examples."),
    ]);
    w.write_all(roff.render().as_bytes())?;
    man.render_version_section(w)
}

/// The date the pages carry (mandoc wants one it can read).
const MANUAL_DATE: &str = "2026-12-08";

/// understudy(8)'s description: what the daemon does, not its one-line name.
const DESCRIPTION: &[&str] = &[
    "understudy runs on every node of a cluster (two or more machines that can serve the same application). One node, the Active one, holds the common IP (the address clients use) and runs the application; the others watch it: its heartbeats, its application's URL and its data service.",
    "When the Active node has failed for the grace period (no heartbeat and no answer, its application down, its data service unreachable, or maintenance), the next node claims the common IP on its NIC through rtnetlink, sends gratuitous ARP (and IPv6 neighbour advertisements), starts the application and tells the administrators. With a witness (etcd or PostgreSQL) only the holder of its lease may claim, so a partition never leaves two holders.",
    "The commands below talk to the running daemon through its control socket; run starts it, check-config checks a file before it is used, iflist lists the NICs a node could use.",
];

/// A section of tagged paragraphs: each name in bold, then its meaning.
fn tagged(roff: &mut Roff, title: &str, entries: &[(&str, &str)]) {
    roff.control("SH", [title]);
    for (name, meaning) in entries {
        roff.control("TP", [])
            .text([bold(*name)])
            .text([roman(*meaning)]);
    }
}

const SIGNALS: &[(&str, &str)] = &[
    ("SIGHUP", "Reload the configuration file (as understudy reload): what may change live is applied at once; a file that changes anything else is refused whole, and nothing moves."),
    ("SIGTERM, SIGINT", "Stop: a wait in flight is cut short, the stop command runs, the common IP is removed, a last heartbeat says \"stopped\" (a peer takes over at once), queued notifications are sent (within 5 s), and the daemon exits 0."),
    ("SIGKILL", "Leaves the common IP on the NIC (nothing can remove it); the next start releases an address it may not hold. With [fencing] watchdog the armed watchdog resets the host."),
];

const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Success: the daemon stopped on a signal, or the command did what it was asked."),
    ("1", "Failure: the command was refused or could not reach the daemon, check-config found problems, or the daemon stopped on an error (it says which)."),
    ("2", "run: the configuration file could not be used (the problems are printed, each with its line)."),
];

const ENVIRONMENT: &[(&str, &str)] = &[
    ("UNDERSTUDY_LOG", "The log filter (tracing's EnvFilter syntax), for example understudy=debug; the default is info."),
    ("NOTIFY_SOCKET", "Set by systemd (Type=notify): the daemon reports READY=1, STATUS=, WATCHDOG=1, RELOADING=1 and STOPPING=1 there."),
    ("UNDERSTUDY_CLUSTER, UNDERSTUDY_NODE", "Given to the application's start and stop commands, the notification hooks and the fence command."),
    ("UNDERSTUDY_ROLE", "Given to the start and stop commands: this node's role (primary or secondary)."),
    ("UNDERSTUDY_VIP", "Given to the start and stop commands and the notification hooks: the common IP."),
    ("UNDERSTUDY_STATE", "Given to the start command (active) and the stop command (passive)."),
    ("UNDERSTUDY_TERM", "The node's term (with a witness, the lease's), given to the start and stop commands, the hooks and the fence command, so that the application can fence its own writes with it."),
    ("UNDERSTUDY_EVENT, UNDERSTUDY_SEVERITY, UNDERSTUDY_CAUSE, UNDERSTUDY_PEER, UNDERSTUDY_ALIAS, UNDERSTUDY_TIME, UNDERSTUDY_DURATION_MS, UNDERSTUDY_ACTION", "Given to a notification hook: the event's name, severity and cause, the watched peer, the alias URL, the time, how long the move took and what understudy did."),
    ("UNDERSTUDY_PEER, UNDERSTUDY_PEER_ADDRESS", "Given to the fence command: the silent peer to turn off."),
];

const EXAMPLES: &[(&str, &str)] = &[
    (
        "Check the file on each node before starting the daemon:",
        "understudy check-config /etc/understudy/understudy.toml",
    ),
    (
        "Start the daemon under systemd and watch it:",
        "systemctl enable --now understudy; understudy status",
    ),
    (
        "Move the common IP to the other node on purpose (the application starts there first):",
        "understudy demote",
    ),
    (
        "Keep a node out of the way while it is worked on, then bring it back:",
        "understudy maintenance on; understudy maintenance off",
    ),
    (
        "Apply an edited file without moving the common IP:",
        "understudy reload",
    ),
    (
        "Upgrade the binary in place (same PID, the common IP kept):",
        "understudy restart",
    ),
];

/// One command's heading, description and options; its own subcommands
/// follow it.
fn command(roff: &mut Roff, cmd: &clap::Command, parent: &str) {
    let name = format!("{parent} {}", cmd.get_name());
    if cmd.has_subcommands() {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            command(roff, sub, &name);
        }
        return;
    }
    let mut usage = name.clone();
    for arg in cmd.get_positionals() {
        usage.push_str(&format!(
            " {}",
            arg.get_value_names()
                .map_or(arg.get_id().as_str().to_uppercase(), |v| v.join(" "))
        ));
    }
    roff.control("SS", [usage.as_str()]);
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        roff.text([roman(about.to_string())]);
    }
    // Every command has --help; saying so each time says nothing.
    let shown = |a: &&clap::Arg| !a.is_hide_set() && a.get_id() != "help";
    for arg in cmd.get_arguments().filter(shown) {
        let mut flag = Vec::new();
        if let Some(short) = arg.get_short() {
            flag.push(format!("-{short}"));
        }
        if let Some(long) = arg.get_long() {
            flag.push(format!("--{long}"));
        }
        if flag.is_empty() {
            flag.push(arg.get_id().as_str().to_uppercase());
        }
        let takes_value =
            arg.get_num_args().is_some_and(|n| n.takes_values()) && arg.get_long().is_some();
        let mut head = vec![bold(flag.join(", "))];
        if takes_value {
            let value = arg
                .get_value_names()
                .map_or("VALUE".to_owned(), |v| v.join(" "));
            head.push(roman(format!(" {value}")));
        }
        roff.control("TP", []).text(head);
        if let Some(help) = arg.get_long_help().or(arg.get_help()) {
            roff.text([roman(help.to_string())]);
        }
    }
}

/// understudy.toml(5) from the README's "Configuration" section: its
/// opening paragraphs, every row of the key table, and the notes after it.
fn config_page() -> Roff {
    let section = README
        .split("\n## Configuration\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap_or_default();
    let mut roff = Roff::new();
    roff.control(
        "TH",
        [
            "UNDERSTUDY.TOML",
            "5",
            MANUAL_DATE,
            &format!("understudy {}", env!("CARGO_PKG_VERSION")),
            "File Formats",
        ],
    );
    roff.control("SH", ["NAME"]);
    roff.text([roman(
        "understudy.toml - the configuration of an understudy cluster",
    )]);
    roff.control("SH", ["SYNOPSIS"]);
    roff.text([bold("/etc/understudy/understudy.toml")]);
    roff.control("SH", ["DESCRIPTION"]);
    let mut keys = false;
    let mut fresh = true;
    for paragraph in section
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        if paragraph.starts_with("| key ") {
            roff.control("SH", ["KEYS"]);
            for row in paragraph.lines().skip(2) {
                let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
                if let [key, default, meaning] = cells.as_slice() {
                    roff.control("TP", []).text(inline(key));
                    let mut text = inline(meaning);
                    if default.starts_with("required") {
                        text.push(roman(format!(" ({default})")));
                    } else {
                        text.push(roman(" (default: "));
                        text.extend(inline(default));
                        text.push(roman(")"));
                    }
                    roff.text(text);
                }
            }
            keys = true;
            fresh = true;
            roff.control("SH", ["NOTES"]);
            continue;
        }
        if keys || !paragraph.starts_with('|') {
            // A paragraph right after a heading needs no .PP (mandoc warns).
            if std::mem::take(&mut fresh) {
                roff.text(inline(&paragraph.replace('\n', " ")));
            } else {
                roff.control("PP", [])
                    .text(inline(&paragraph.replace('\n', " ")));
            }
        }
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([bold("understudy"), roman("(8)")]);
    roff
}

/// Markdown's inline marks in roff fonts: `code` and **strong** in bold,
/// [text](link) as its text.
fn inline(markdown: &str) -> Vec<Inline> {
    let text = link_texts(markdown).replace("**", "`");
    // Odd pieces between backticks are code.
    text.split('`')
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(|(i, part)| if i % 2 == 1 { bold(part) } else { roman(part) })
        .collect()
}

/// `[text](link)` → `text`.
fn link_texts(markdown: &str) -> String {
    let mut out = String::new();
    let mut rest = markdown;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|c| open + c) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|e| close + e) else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}
