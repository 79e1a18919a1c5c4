//! Command-line interface: the subcommands and what each one runs.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use understudy::config::{Config, Problem, Problems};
use understudy::io::iflist;
use understudy::io::netlink::Netlink;
use understudy::runtime::Overrides;
use understudy::terminal::harmless;

#[derive(Parser)]
#[command(
    name = "understudy",
    version,
    about = "Keeps an application reachable at one common IP when its machine fails"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run {
        /// The configuration file (the same on every node).
        #[arg(long, short)]
        config: PathBuf,
        /// This node's name; by default the node whose address is local.
        #[arg(long)]
        node: Option<String>,
        /// Control socket (overrides control.socket).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// State file (overrides control.state_file).
        #[arg(long)]
        state_file: Option<PathBuf>,
    },
    /// Show every node: role, status, last heartbeat, failing cause, time
    /// left before takeover, term, configuration match; and the VIP's holder.
    Status {
        #[command(flatten)]
        to: Target,
        /// Machine-readable output (the shape is documented in the README).
        #[arg(long)]
        json: bool,
    },
    /// Allow this node to take over again.
    Enable {
        #[command(flatten)]
        to: Target,
    },
    /// Never take over (kept across restarts).
    Disable {
        #[command(flatten)]
        to: Target,
        /// Also when this node is Active: hand over first.
        #[arg(long)]
        force: bool,
    },
    /// Make this node Active through a coordinated handover.
    Promote {
        #[command(flatten)]
        to: Target,
        /// Skip the safety checks (this node unhealthy, peer silent).
        #[arg(long)]
        force: bool,
    },
    /// Hand the common IP over to the peer.
    Demote {
        #[command(flatten)]
        to: Target,
        /// Release even if the peer cannot take over.
        #[arg(long)]
        force: bool,
    },
    /// Maintenance mode: `on` hands over and keeps this node Passive until `off`.
    Maintenance {
        /// on: hand the common IP over and stay out; off: may take over again.
        #[arg(value_parser = ["on", "off"])]
        mode: String,
        #[command(flatten)]
        to: Target,
        /// Hand over even if the peer cannot take over.
        #[arg(long)]
        force: bool,
    },
    /// Probe everything now; announce the common IP again if Active.
    Refresh {
        #[command(flatten)]
        to: Target,
    },
    /// Forget the moves counted towards the flap limit: automatic moves
    /// resume (after fixing what made the pair flap).
    ResetFlapping {
        #[command(flatten)]
        to: Target,
    },
    /// Print a shell completion script: `understudy completions bash >
    /// /etc/bash_completion.d/understudy` (also zsh, fish, elvish,
    /// powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Re-execute the running daemon's binary as found on disk (after an
    /// upgrade, or to read a changed configuration) without moving the
    /// common IP or restarting the application; same PID. The new binary
    /// must accept the configuration first.
    Restart {
        #[command(flatten)]
        to: Target,
    },
    /// Read the configuration file again and apply it without moving the
    /// common IP or restarting the application (as SIGHUP and `systemctl
    /// reload` do). A file with problems, or one that changes what cannot
    /// change live (node names, the VIP, a NIC, the heartbeat port), is
    /// refused whole with the reasons; the running configuration stays.
    Reload {
        #[command(flatten)]
        to: Target,
    },
    /// Work with the configuration file shared by the nodes.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Write the manual pages and completion scripts into DIR (for
    /// packaging).
    #[command(hide = true)]
    Manual { dir: PathBuf },
    /// The application's files that follow the common IP: `setup NODE`
    /// (a first full copy), `now [NAME]`, `status`.
    Mirror {
        #[command(subcommand)]
        action: crate::mirror_cli::MirrorCommand,
    },
    /// Drop a departed node's record from the status table.
    Forget {
        /// The departed node's name.
        node: String,
        #[command(flatten)]
        to: Target,
        /// Even if it still sends heartbeats.
        #[arg(long)]
        force: bool,
    },
    /// Validate a configuration file without changing anything.
    CheckConfig {
        /// The configuration file to check.
        file: PathBuf,
        /// Check as this node (its NIC must exist here).
        #[arg(long)]
        node: Option<String>,
    },
    /// Write a new random heartbeat key (32 bytes, hex) readable by root
    /// only; with --add or --activate, change an existing key file to
    /// rotate keys without a failover (README: "Changing the heartbeat key").
    Keygen {
        /// Where to write it (the path in `heartbeat.secret_file`).
        file: PathBuf,
        /// Replace an existing file.
        #[arg(long, conflicts_with_all = ["add", "activate"])]
        force: bool,
        /// Append a new key, accepted but not yet sent with.
        #[arg(long, conflicts_with = "activate")]
        add: bool,
        /// Send with the key of this id from now on (all listed stay accepted).
        #[arg(long, value_name = "ID")]
        activate: Option<u32>,
    },
    /// List network interfaces with their state and addresses.
    Iflist {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Mark the NIC whose subnet holds this IP.
        #[arg(long = "for", value_name = "IP")]
        for_ip: Option<IpAddr>,
    },
}

/// Which daemon to talk to.
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Send this node's configuration file to the peer, which checks it,
    /// writes it in place of its own (keeping that as FILE.bak) and reloads
    /// it; refused whole, with the reasons, otherwise. Authenticated with
    /// the heartbeat key, over TCP to the peer's heartbeat port.
    Push {
        /// The file to send (also where the peer's copy is, by its own
        /// daemon's --config).
        #[arg(default_value = "/etc/understudy/understudy.toml")]
        file: PathBuf,
        /// This node's name; by default the node whose address is local.
        #[arg(long)]
        node: Option<String>,
    },
}

#[derive(clap::Args)]
pub struct Target {
    /// Control socket [default: control.socket from --config, else /run/understudy/understudy.sock]
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Read the socket path from this configuration.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

impl Target {
    pub fn socket(&self) -> anyhow::Result<PathBuf> {
        if let Some(s) = &self.socket {
            return Ok(s.clone());
        }
        match &self.config {
            Some(path) => Ok(Config::load(path)
                .map_err(|p| anyhow::anyhow!("{p}"))?
                .control
                .socket),
            None => Ok(PathBuf::from(understudy::config::DEFAULT_SOCKET)),
        }
    }
}

pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    use understudy::control::Request as R;
    match cli.command {
        Command::Run {
            config,
            node,
            socket,
            state_file,
        } => {
            let overrides = Overrides {
                socket,
                state_file,
                handover: take_handover(),
                config_file: config.clone(),
            };
            run(config, node, overrides).await
        }
        Command::Status { to, json } => control(&to, R::Status, json).await,
        Command::Enable { to } => control(&to, R::Enable, false).await,
        Command::Disable { to, force } => control(&to, R::Disable { force }, false).await,
        Command::Promote { to, force } => control(&to, R::Promote { force }, false).await,
        Command::Demote { to, force } => control(&to, R::Demote { force }, false).await,
        Command::Maintenance { mode, to, force } => {
            let request = if mode == "on" {
                R::MaintenanceOn { force }
            } else {
                R::MaintenanceOff
            };
            control(&to, request, false).await
        }
        Command::Refresh { to } => control(&to, R::Refresh, false).await,
        Command::ResetFlapping { to } => control(&to, R::ResetFlapping, false).await,
        Command::Restart { to } => restart(&to).await,
        Command::Config {
            command: ConfigCommand::Push { file, node },
        } => config_push(&file, node).await,
        Command::Manual { dir } => {
            crate::manual::write_all(&dir)
                .with_context(|| format!("writing the manual pages into {}", dir.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reload { to } => control(&to, understudy::control::Request::Reload, false).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cli = Cli::command();
            clap_complete::generate(shell, &mut cli, "understudy", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Forget { node, to, force } => control(&to, R::Forget { node, force }, false).await,
        Command::Mirror { action } => crate::mirror_cli::run(action).await,
        Command::CheckConfig { file, node } => check_config(file, node).await,
        Command::Iflist { json, for_ip } => iflist_cmd(json, for_ip).await,
        Command::Keygen {
            file,
            force,
            add,
            activate,
        } => match (add, activate) {
            (true, _) => rotate(&file, None),
            (_, Some(id)) => rotate(&file, Some(id)),
            _ => keygen(&file, force),
        },
    }
}

/// The hand-over a re-executing predecessor left in the environment (see
/// `understudy::runtime::restart`), removed so that the application's
/// commands do not inherit it.
fn take_handover() -> Option<understudy::runtime::restart::Handover> {
    use understudy::runtime::restart::{Handover, ENV};
    let value = std::env::var(ENV).ok()?;
    // Before the daemon's tasks start: nothing reads the environment yet.
    std::env::remove_var(ENV);
    Handover::parse(&value)
}

fn keygen(path: &std::path::Path, force: bool) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    use understudy::config::keyfile;
    let secret = keyfile::random_secret().map_err(anyhow::Error::msg)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).with_context(|| {
        format!(
            "cannot create {} (use --force to replace it, --add to add a key to it)",
            path.display()
        )
    })?;
    // An existing file keeps its mode when truncated; make sure of 0600.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let ring = understudy::proto::keyring::Keyring::single(secret);
    file.write_all(keyfile::format(&ring).as_bytes())?;
    println!(
        "wrote a new heartbeat key to {} (mode 0600); copy it to the other node",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `keygen --add` (`activate: None`) or `keygen --activate ID`: rewrites
/// the key file with one key more, or another key sending.
fn rotate(path: &std::path::Path, activate: Option<u32>) -> anyhow::Result<ExitCode> {
    use understudy::config::keyfile;
    let ring = keyfile::read_keys(path).map_err(anyhow::Error::msg)?;
    let (ring, said) = match activate {
        None => {
            let secret = keyfile::random_secret().map_err(anyhow::Error::msg)?;
            let (ring, id) = keyfile::with_new_key(&ring, secret);
            let said = format!(
                "added key {id} to {} (accepted, not yet sent with); copy the file to the other \
                 node and reload both, then `understudy keygen --activate {id}`",
                path.display()
            );
            (ring, said)
        }
        Some(id) => {
            let ring = keyfile::activated(&ring, id).map_err(anyhow::Error::msg)?;
            let said = format!(
                "key {id} now sends ({}); copy the file to the other node and reload both",
                path.display()
            );
            (ring, said)
        }
    };
    keyfile::write_atomically(path, &ring)
        .with_context(|| format!("cannot rewrite {}", path.display()))?;
    println!("{said}");
    Ok(ExitCode::SUCCESS)
}

/// Sends one request to the daemon and prints its answer: the message and
/// the status table (or the whole answer as JSON).
pub async fn control(
    to: &Target,
    request: understudy::control::Request,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let response = understudy::control::client::call(&to.socket()?, &request)
        .await
        .map_err(anyhow::Error::msg)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&response.status)?);
    } else {
        if !response.message.is_empty() {
            let prefix = if response.ok { "" } else { "refused: " };
            println!("{prefix}{}", harmless(&response.message));
        }
        if let Some(status) = &response.status {
            if !response.message.is_empty() {
                println!();
            }
            print!("{}", understudy::control::report::render(status));
        }
    }
    Ok(if response.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Asks the daemon to re-execute itself, then waits (at most 30 s) until
/// the new process answers on the control socket and shows its status.
async fn restart(to: &Target) -> anyhow::Result<ExitCode> {
    use understudy::control::{client, Request};
    let socket = to.socket()?;
    // The daemon answers, then re-executes; its answer may be cut short.
    match client::call(&socket, &Request::Restart).await {
        Ok(r) if !r.ok => {
            println!("refused: {}", harmless(&r.message));
            return Ok(ExitCode::FAILURE);
        }
        Ok(r) => println!("{}", harmless(&r.message)),
        Err(_) => println!("restarting"),
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Give the old process time to let go of the socket.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut answered = None;
    while std::time::Instant::now() < deadline {
        if let Ok(r) = client::call(&socket, &Request::Status).await {
            let heard_peer = r.status.as_ref().is_some_and(|s| {
                s.nodes
                    .iter()
                    .any(|n| !n.local && n.last_heartbeat.is_some())
            });
            let since = *answered.get_or_insert_with(std::time::Instant::now);
            // Show the table once the new process has heard its peer (at
            // most 5 s: a silent peer is shown as it is).
            if heard_peer || since.elapsed() > std::time::Duration::from_secs(5) {
                println!("restarted\n");
                if let Some(status) = &r.status {
                    print!("{}", understudy::control::report::render(status));
                }
                return Ok(ExitCode::SUCCESS);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    anyhow::bail!(
        "the daemon did not answer on {} within 30 s of its restart",
        socket.display()
    )
}

async fn run(
    path: PathBuf,
    node: Option<String>,
    overrides: Overrides,
) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(problems) => {
            eprintln!("{problems}");
            return Ok(ExitCode::from(2));
        }
    };
    let netlink = Netlink::open().context("opening netlink")?;
    let addrs = netlink
        .local_addresses()
        .await
        .context("listing local addresses")?;
    let me = config
        .identify(node.as_deref(), &addrs)
        .map_err(anyhow::Error::msg)?;
    understudy::runtime::run(config, me, overrides).await?;
    Ok(ExitCode::SUCCESS)
}

/// `config push`: the file, checked here first, to the peer; prints the
/// peer's answer.
async fn config_push(path: &std::path::Path, node: Option<String>) -> anyhow::Result<ExitCode> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(problems) => {
            eprintln!("{problems}");
            eprintln!("not pushed: fix the file first");
            return Ok(ExitCode::FAILURE);
        }
    };
    let netlink = Netlink::open().context("opening netlink")?;
    let addrs = netlink.local_addresses().await.unwrap_or_default();
    let me = config
        .identify(node.as_deref(), &addrs)
        .map_err(anyhow::Error::msg)?;
    let keys =
        understudy::config::read_keys(&config.heartbeat.secret_file).map_err(anyhow::Error::msg)?;
    let text = std::fs::read_to_string(path)?;
    // Every peer in turn; one that cannot be reached or refuses does not
    // stop the others, but fails the command.
    let mut all_ok = true;
    let key = &keys.sending().secret;
    for (peer, answer) in understudy::control::push_client::to_peers(&config, me, key, &text).await
    {
        match answer {
            Ok(answer) if answer.ok => println!("{peer}: {}", harmless(&answer.message)),
            Ok(answer) => {
                println!("refused by {peer}: {}", harmless(&answer.message));
                all_ok = false;
            }
            Err(why) if config.nodes.len() == 2 => return Err(anyhow::Error::msg(why)),
            Err(why) => {
                println!("not pushed to {peer}: {}", harmless(&why));
                all_ok = false;
            }
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn check_config(path: PathBuf, node: Option<String>) -> anyhow::Result<ExitCode> {
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(problems) => {
            eprintln!("{problems}");
            eprintln!("{} problem(s) found", problems.list.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    let netlink = Netlink::open().context("opening netlink")?;
    let addrs = netlink.local_addresses().await.unwrap_or_default();
    let me = match config.identify(node.as_deref(), &addrs) {
        Ok(me) => me,
        Err(why) if node.is_some() => {
            eprintln!("{}: {why}", path.display());
            return Ok(ExitCode::FAILURE);
        }
        Err(_) => {
            println!(
                "{}: OK (cluster {:?}, common IP {}); no configured address is local, so this node's NIC and the key file were not checked (run it on each node, or pass --node NAME)",
                path.display(),
                config.cluster.name,
                config.cluster.shown(),
            );
            print_not_checked(&config);
            return Ok(ExitCode::SUCCESS);
        }
    };
    let local = &config.nodes[me];
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut problems = Problems {
        file: path.clone(),
        list: Vec::new(),
    };
    if let Err(why) = understudy::config::read_keys(&config.heartbeat.secret_file) {
        problems.list.push(Problem::new(
            Config::locate_key(&text, &["heartbeat", "secret_file"]),
            "heartbeat.secret_file",
            why,
        ));
    }
    // One read of the interfaces serves the node's NIC and the group's.
    let links = netlink.links().await.context("reading interfaces")?;
    if links.iter().any(|l| l.name == local.nic) {
        problems
            .list
            .extend(group_problems(&config, local, &links, &text));
    } else {
        problems.list.push(Problem::new(
            Config::locate_node_key(&text, me, "nic"),
            format!("node #{}.nic", me + 1),
            format!(
                "no interface named {:?} on this machine (run `understudy iflist --for {}`)",
                local.nic,
                config.cluster.vip_like(None)
            ),
        ));
    }
    problems
        .list
        .extend(crate::mirror_cli::host_problems(&config, me, &text));
    if !problems.list.is_empty() {
        eprintln!("{problems}");
        eprintln!("{} problem(s) found", problems.list.len());
        return Ok(ExitCode::FAILURE);
    }
    crate::mirror_cli::print_commands(&config, me);
    println!(
        "{}: OK (cluster {:?}, common IP {}; this machine is {} ({}) with NIC {})",
        path.display(),
        config.cluster.name,
        config.cluster.shown(),
        local.name,
        local.role,
        local.nic
    );
    print_not_checked(&config);
    Ok(ExitCode::SUCCESS)
}

/// On this node: every common address's NIC exists and has an address of
/// its own in the common address's subnet (else clients on that link
/// could not reach it, and the kernel would route it nowhere useful).
fn group_problems(
    config: &Config,
    local: &understudy::config::Node,
    links: &[understudy::io::netlink::Link],
    text: &str,
) -> Vec<Problem> {
    let line = Config::locate_key(text, &["cluster", "vip"]);
    let mut problems = Vec::new();
    for vip in &config.cluster.vips {
        let nic = vip.nic_for(&local.nic);
        let Some(link) = links.iter().find(|l| l.name == nic) else {
            problems.push(Problem::new(
                line,
                "cluster.vip",
                format!("{vip}: no interface named {nic:?} on this machine"),
            ));
            continue;
        };
        let inside = link.addresses.iter().any(|(own, prefix)| {
            *own != vip.address && understudy::config::subnet_contains(*own, *prefix, vip.address)
        });
        if !inside {
            problems.push(Problem::new(
                line,
                "cluster.vip",
                format!(
                    "{vip}: outside every subnet of {nic} on this machine (run `understudy iflist --for {}`)",
                    vip.address
                ),
            ));
        }
    }
    problems
}

/// What check-config leaves to the running daemon, and why: it never
/// touches the network or runs the application's commands.
fn print_not_checked(config: &Config) {
    if config.nodes.len() > 2 {
        let mut order: Vec<&understudy::config::Node> = config.nodes.iter().collect();
        order.sort_by_key(|n| n.preference);
        let names: Vec<&str> = order.iter().map(|n| n.name.as_str()).collect();
        println!(
            "{} nodes, preferred in this order: {}",
            config.nodes.len(),
            names.join(", ")
        );
    }
    println!("not checked (check-config changes nothing and probes nothing):");
    println!("  - the application URLs and the peer's heartbeats: the running daemon probes them");
    if config.monitor.data.is_some() {
        println!(
            "  - monitor.data: the daemon probes it; no takeover while this node cannot reach it"
        );
    }
    if config.application.start.is_some() || config.application.stop.is_some() {
        println!("  - application.start/stop: not run here; they run when this node takes over or releases");
    }
    if let Some(w) = &config.witness {
        println!(
            "  - witness {}: not asked here; the daemon asks it before every claim (lease {:?}, on_loss {})",
            w.backend.shown(),
            w.lease,
            w.on_loss
        );
    }
    if let Some(f) = &config.fence {
        println!(
            "  - fencing fence command: not run here; the daemon runs it before claiming from a silent peer (timeout {:?})",
            f.timeout
        );
    }
    if let Some(w) = &config.watchdog {
        println!(
            "  - fencing watchdog {} ({}, {}s): not opened here; the daemon arms it before every claim and disarms it after every release",
            w.device.display(),
            w.mode,
            w.timeout.as_secs()
        );
    }
    println!(
        "  - that the other nodes run the same file: compare `understudy status` (CONFIG column)"
    );
}

async fn iflist_cmd(json: bool, for_ip: Option<IpAddr>) -> anyhow::Result<ExitCode> {
    let netlink = Netlink::open().context("opening netlink")?;
    let links = netlink.links().await.context("listing interfaces")?;
    let list = iflist::build(&links, for_ip);
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print!("{}", iflist::render_table(&list));
    }
    let missing = for_ip.is_some() && list.r#for.as_ref().and_then(|f| f.nic.as_ref()).is_none();
    Ok(if missing {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
