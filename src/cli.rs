//! Command-line interface: the subcommands and what each one runs.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use understudy::config::{Config, Problem, Problems};
use understudy::io::iflist;
use understudy::io::netlink::{Netlink, NetlinkError};

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
        #[arg(long, short)]
        config: PathBuf,
        /// This node's name; by default the node whose address is local.
        #[arg(long)]
        node: Option<String>,
    },
    /// Validate a configuration file without changing anything.
    CheckConfig {
        file: PathBuf,
        /// Check as this node (its NIC must exist here).
        #[arg(long)]
        node: Option<String>,
    },
    /// Write a new random heartbeat key (32 bytes, hex) readable by root only.
    Keygen {
        /// Where to write it (the path in `heartbeat.secret_file`).
        file: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
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

pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run { config, node } => run(config, node).await,
        Command::CheckConfig { file, node } => check_config(file, node).await,
        Command::Iflist { json, for_ip } => iflist_cmd(json, for_ip).await,
        Command::Keygen { file, force } => keygen(&file, force),
    }
}

fn keygen(path: &std::path::Path, force: bool) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).with_context(|| {
        format!(
            "cannot create {} (use --force to replace it)",
            path.display()
        )
    })?;
    // An existing file keeps its mode when truncated; make sure of 0600.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    writeln!(file, "{}", hex::encode(key))?;
    println!(
        "wrote a new heartbeat key to {} (mode 0600); copy it to the other node",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn run(path: PathBuf, node: Option<String>) -> anyhow::Result<ExitCode> {
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
    understudy::runtime::run(config, me).await?;
    Ok(ExitCode::SUCCESS)
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
                "{}: OK (cluster {:?}, common IP {}/{}); no configured address is local, so NICs were not checked",
                path.display(),
                config.cluster.name,
                config.cluster.vip,
                config.cluster.prefix_len
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    let local = &config.nodes[me];
    if let Err(why) = understudy::config::read_secret(&config.heartbeat.secret_file) {
        eprintln!("{}: heartbeat.secret_file: {why}", path.display());
        return Ok(ExitCode::FAILURE);
    }
    match netlink.link(&local.nic).await {
        Ok(_) => {
            println!(
                "{}: OK (cluster {:?}, common IP {}/{}; this machine is {} ({}) with NIC {})",
                path.display(),
                config.cluster.name,
                config.cluster.vip,
                config.cluster.prefix_len,
                local.name,
                local.role,
                local.nic
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(NetlinkError::NoSuchLink(_)) => {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let problems = Problems {
                file: path.clone(),
                list: vec![Problem::new(
                    Config::locate_node_key(&text, me, "nic"),
                    format!("node #{}.nic", me + 1),
                    format!(
                        "no interface named {:?} on this machine (run `understudy iflist --for {}`)",
                        local.nic, config.cluster.vip
                    ),
                )],
            };
            eprintln!("{problems}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e).context("reading interfaces"),
    }
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
