//! `understudy mirror setup|now|status`: the seed's first full copy to a
//! node before it joins (run here, with backups on the receiver), and the
//! daemon's mirror runs asked for and shown.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use understudy::config::Config;
use understudy::control::client;
use understudy::control::mirror_report;
use understudy::control::Request;
use understudy::io::mirror;
use understudy::terminal::harmless;

#[derive(Subcommand)]
pub enum MirrorCommand {
    /// The first full copy of every mirror to NODE, from this node (the
    /// seed, which holds the application's files) before NODE joins; what
    /// it replaces on NODE is kept in a dated backup folder there.
    Setup {
        /// The receiving node, as `[[node]]` names it.
        node: String,
        /// The configuration file.
        #[arg(long, short)]
        config: std::path::PathBuf,
        /// Even if the daemon says NODE holds the common IP.
        #[arg(long)]
        force: bool,
    },
    /// Run the mirror named (every one without a name) now; only the node
    /// holding the common IP sends.
    Now {
        name: Option<String>,
        #[command(flatten)]
        to: crate::cli::Target,
    },
    /// Each mirror towards each node: last success, what it moved, errors.
    Status {
        #[command(flatten)]
        to: crate::cli::Target,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: MirrorCommand) -> anyhow::Result<ExitCode> {
    match command {
        MirrorCommand::Setup {
            node,
            config,
            force,
        } => setup(&node, &config, force).await,
        MirrorCommand::Now { name, to } => {
            crate::cli::control(&to, Request::MirrorNow { name }, false).await
        }
        MirrorCommand::Status { to, json } => status(&to, json).await,
    }
}

async fn status(to: &crate::cli::Target, json: bool) -> anyhow::Result<ExitCode> {
    let response = client::call(&to.socket()?, &Request::Status)
        .await
        .map_err(anyhow::Error::msg)?;
    let mirrors = response.status.map(|s| s.mirrors).unwrap_or_default();
    if json {
        println!("{}", serde_json::to_string_pretty(&mirrors)?);
    } else if mirrors.is_empty() {
        println!("no mirror run yet from this node (only the node holding the common IP sends)");
    } else {
        for m in &mirrors {
            println!("{}", harmless(&mirror_report::line(m)));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies every mirror to `node` now, from this process.
async fn setup(node: &str, path: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let config = Config::load(path).map_err(|p| anyhow::anyhow!("{p}"))?;
    let Some(target) = config.nodes.iter().find(|n| n.name == node) else {
        let names: Vec<&str> = config.nodes.iter().map(|n| n.name.as_str()).collect();
        anyhow::bail!(
            "no node named {node:?} (the configuration has: {})",
            names.join(", ")
        );
    };
    if config.mirrors.is_empty() {
        anyhow::bail!("no [[mirror]] in {}", path.display());
    }
    if !force && holds(&config, node).await {
        anyhow::bail!("{node} holds the common IP: its files are the live ones; run the setup from it to the others, or add --force");
    }
    let mut failed = false;
    for m in &config.mirrors {
        let folder = mirror::backup_folder(m, std::time::SystemTime::now());
        let args = mirror::command(m, &target.address.to_string(), Some(&folder));
        println!(
            "mirror {} to {node}: {}",
            m.name,
            harmless(&mirror::shown(&args))
        );
        match mirror::run(&args, m.timeout).await {
            Ok(t) => {
                println!(
                    "  done: {} files, {} bytes in {} ms; {} replaced file(s) kept in {} on {node}",
                    t.files,
                    t.bytes,
                    t.took.as_millis(),
                    t.replaced,
                    folder.display()
                );
            }
            Err(e) => {
                failed = true;
                println!("  failed: {}", harmless(&e.to_string()));
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Does the local daemon, if one answers, say `node` holds the common IP?
async fn holds(config: &Config, node: &str) -> bool {
    let Ok(response) = client::call(&config.control.socket, &Request::Status).await else {
        return false;
    };
    response
        .status
        .is_some_and(|s| s.holder.node.as_deref() == Some(node))
}

/// check-config on a node: each mirror's key (private), pinned host keys
/// (one for every other node's address), paths, and the tools it runs.
pub fn host_problems(config: &Config, me: usize, text: &str) -> Vec<understudy::config::Problem> {
    use std::os::unix::fs::PermissionsExt;
    let mut problems = Vec::new();
    for (i, m) in config.mirrors.iter().enumerate() {
        let mut report = |key: &str, why: String| {
            problems.push(understudy::config::Problem::new(
                Config::locate_in_array(text, "mirror", i, key),
                format!("mirror #{}.{key}", i + 1),
                why,
            ));
        };
        match std::fs::metadata(&m.key) {
            Err(e) => report(
                "key",
                format!(
                    "cannot read {}: {e} (make one with `ssh-keygen -t ed25519 -N \"\" -f {}`)",
                    m.key.display(),
                    m.key.display()
                ),
            ),
            // The same rule as the witness's secrets, as ssh refuses such a key.
            Ok(meta) => {
                let mode = meta.permissions().mode();
                if let Err(e) = understudy::io::witness::access::private(&m.key, mode) {
                    report("key", e.to_string());
                }
            }
        }
        match std::fs::read_to_string(&m.known_hosts) {
            Err(e) => report(
                "known_hosts",
                format!("cannot read {}: {e}", m.known_hosts.display()),
            ),
            Ok(known) => {
                for peer in config.peers_of(me) {
                    let address = peer.address.to_string();
                    let pinned = known.lines().any(|line| {
                        line.split_whitespace().next().is_some_and(|hosts| {
                            hosts
                                .split(',')
                                .any(|h| h == address || h == format!("[{address}]:22"))
                        })
                    });
                    if !pinned {
                        report(
                            "known_hosts",
                            format!("{} has no host key for {} ({address}); add it with `ssh-keyscan {address} >> {}` and check its fingerprint", m.known_hosts.display(), peer.name, m.known_hosts.display()),
                        );
                    }
                }
            }
        }
        for path in &m.paths {
            if !path.exists() {
                report(
                    "paths",
                    format!("{} does not exist on this node", path.display()),
                );
            }
        }
    }
    if !config.mirrors.is_empty() {
        for tool in ["rsync", "ssh"] {
            if !on_path(tool) {
                problems.push(understudy::config::Problem::new(
                    Config::locate_in_array(text, "mirror", 0, "name"),
                    "mirror",
                    format!(
                        "{tool} is not installed (Debian: apt-get install rsync openssh-client)"
                    ),
                ));
            }
        }
    }
    problems
}

/// The command each mirror runs to each other node, for check-config.
pub fn print_commands(config: &Config, me: usize) {
    for m in &config.mirrors {
        for peer in config.peers_of(me) {
            let args = mirror::command(m, &peer.address.to_string(), None);
            println!(
                "mirror {} to {}: {}",
                m.name,
                peer.name,
                harmless(&mirror::shown(&args))
            );
        }
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}
