//! Configuration: one TOML file shared by every node of the cluster.
//!
//! Loading is two-phase (as in ripgrep): [`raw`] mirrors the file with every
//! field optional, [`validate`] checks it as a whole and builds a [`Config`]
//! in which every value is typed and sane. Each problem carries the key and
//! the line it was found at ([`locate`]), and all problems are reported
//! together.

mod check;
pub mod keyfile;
mod leaves;
mod locate;
mod raw;
pub mod reload;
mod sections;
mod validate;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::core::Settings;
pub use crate::core::{Failback, OnLoss, Role};
pub use reqwest::Url;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub cluster: Cluster,
    pub nodes: Vec<Node>,
    pub monitor: Monitor,
    pub application: Application,
    pub announce: Announce,
    pub heartbeat: HeartbeatConfig,
    pub failback: Failback,
    pub control: Control,
    pub process: Process,
    /// The optional HTTP API.
    pub api: Option<Api>,
    /// Who is told about failovers, and how.
    pub notify: Notify,
    /// The lease authority, if any: only its lease holder may hold the VIP.
    pub witness: Option<Witness>,
    /// The watchdog armed while this node may hold the VIP (`[fencing]`).
    pub watchdog: Option<Watchdog>,
    /// The command that fences a silent peer before a claim from it.
    pub fence: Option<FenceCommand>,
    /// The application's files the holder copies to the others.
    pub mirrors: Vec<Mirror>,
    /// Checksum of the file's text, announced to the peer so that a node
    /// running a different configuration is noticed.
    pub checksum: u64,
}

/// One `[[mirror]]`: files the holder copies to every other node that is
/// up, with rsync over SSH (see [`crate::io::mirror`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub name: String,
    /// Absolute paths, each copied to the same path on the receiver.
    pub paths: Vec<std::path::PathBuf>,
    /// rsync patterns left out.
    pub exclude: Vec<String>,
    pub every: Duration,
    /// Files deleted on the holder are deleted on the receiver too.
    pub delete: bool,
    /// The SSH private key the holder logs in with.
    pub key: std::path::PathBuf,
    /// The receivers' host keys, pinned (no key is ever accepted unseen).
    pub known_hosts: std::path::PathBuf,
    /// The user the holder logs in as on the receiver.
    pub user: String,
    /// On the receiver: where a run that may overwrite its own writes keeps
    /// what it replaces or deletes, in a dated folder per run.
    pub backup_dir: std::path::PathBuf,
    /// One run's limit.
    pub timeout: Duration,
    /// The final pass of a planned move's limit.
    pub final_timeout: Duration,
    /// Failing this long is told once (and then the recovery).
    pub alert_after: Duration,
}

#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    /// The common addresses, one group that moves as one; never empty.
    pub vips: Vec<Vip>,
    /// The URL users reach; shown in logs, never probed.
    pub alias: Option<String>,
    /// Every accepted reload pushes the file to the other nodes, and a
    /// change that needs a restart is written on every node all the same.
    pub sync_config: bool,
}

/// One common address and the prefix it is added with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub address: IpAddr,
    pub prefix_len: u8,
    /// The NIC it goes on when not the node's own `nic` (`ADDRESS/PREFIX@NIC`).
    pub nic: Option<String>,
}

impl Vip {
    /// The NIC this address goes on for a node whose NIC is `node_nic`.
    pub fn nic_for<'a>(&'a self, node_nic: &'a str) -> &'a str {
        self.nic.as_deref().unwrap_or(node_nic)
    }
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)?;
        if let Some(nic) = &self.nic {
            write!(f, "@{nic}")?;
        }
        Ok(())
    }
}

impl Cluster {
    /// Every address, for logs, status and notifications:
    /// `192.0.2.10/24, 2001:db8::10/64`.
    pub fn shown(&self) -> String {
        let all: Vec<String> = self.vips.iter().map(Vip::to_string).collect();
        all.join(", ")
    }

    /// The address a look through the VIP and the application's GET use:
    /// the first of the family `like` is in, else the first.
    pub fn vip_like(&self, like: Option<IpAddr>) -> IpAddr {
        let same = |v: &&Vip| like.is_none_or(|l| l.is_ipv4() == v.address.is_ipv4());
        self.vips.iter().find(same).unwrap_or(&self.vips[0]).address
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub role: Role,
    /// The interface the VIP goes on when this node holds it.
    pub nic: String,
    /// The node's own address (IPv4 or IPv6; heartbeats go to it); also
    /// how a daemon recognises itself.
    pub address: IpAddr,
    /// The node's application URL, probed by its peer and by itself.
    pub url: Url,
    /// Its place in the order of preference: 0 for the primary, then the
    /// secondaries by `priority` (higher first), then by their order in
    /// the file. Who takes over first, and who a failback goes to.
    pub preference: u8,
}

#[derive(Debug, Clone)]
pub struct Monitor {
    pub interval: Duration,
    pub timeout: Duration,
    /// Continuous failure needed before a takeover (or a self-release).
    pub grace: Duration,
    /// Consecutive successes that end a failing streak.
    pub rise: u32,
    /// Consecutive failures that start one (dated from the first).
    pub fall: u32,
    /// The data service probe's own period, limit and counts.
    pub data_probe: ProbeTiming,
    pub data: Option<DataService>,
    /// Extra CA certificate (PEM) trusted by HTTPS probes.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (one PEM file) HTTPS probes present.
    pub client_cert: Option<PathBuf>,
    /// What an application URL must answer to count as healthy.
    pub expect: Expect,
    /// After the VIP moves, a voluntary move back (automatic failback) waits
    /// at least this long, so that a flapping primary does not bounce it.
    /// A failing holder is always replaced; admin commands are not held.
    pub dwell: Duration,
    /// More than this many automatic moves of the VIP within
    /// `flap_window` stop automatic moves (0: no limit).
    pub flap_limit: u32,
    pub flap_window: Duration,
}

/// Expectations on an application URL's answer.
#[derive(Debug, Clone)]
pub struct Expect {
    /// Accepted status codes, inclusive (default 200-399).
    pub status: (u16, u16),
    /// A substring the body must contain.
    pub body: Option<String>,
    /// A regular expression the body must match.
    pub body_regex: Option<regex::Regex>,
    /// A header that must be present, and its value if given.
    pub header: Option<(String, Option<String>)>,
    /// The application's way of saying "maintenance": the node then hands
    /// over at once, as with `understudy maintenance on`.
    pub maintenance: Option<MaintenanceSignal>,
}

/// Any of these in the answer means maintenance.
#[derive(Debug, Clone, Default)]
pub struct MaintenanceSignal {
    pub status: Option<u16>,
    /// A header whose presence says maintenance.
    pub header: Option<String>,
    /// Text in the body that says maintenance.
    pub body: Option<String>,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            status: (200, 399),
            body: None,
            body_regex: None,
            header: None,
            maintenance: None,
        }
    }
}

/// One probe's period, time limit and counts.
#[derive(Debug, Clone, Copy)]
pub struct ProbeTiming {
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
}

/// The service the application needs (usually its database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataService {
    /// A TCP connect to `host:port` succeeds.
    Tcp(String),
    /// An HTTP(S) GET answers with a status below 400.
    Http(Url),
    /// A command (`sh -c`) exits with status 0 within the probe timeout.
    Command(String),
    /// A PostgreSQL connection (URL or key=value string) runs the query.
    Postgres { conn: String, query: String },
}

impl fmt::Display for DataService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataService::Tcp(addr) => write!(f, "tcp://{addr}"),
            DataService::Http(url) => write!(f, "{url}"),
            DataService::Command(cmd) => write!(f, "exec:{cmd}"),
            DataService::Postgres { conn, .. } => write!(f, "{}", redact_password(conn)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Application {
    /// Shell command that starts the application and returns.
    pub start: Option<String>,
    /// Shell command that stops it.
    pub stop: Option<String>,
    /// Limit for one start or stop command.
    pub timeout: Duration,
    /// How long a started application may take to answer its URL.
    pub ready_timeout: Duration,
    /// Restarts of a failed application in place, while no peer can take
    /// over, before giving up (the VIP stays).
    pub restart_attempts: u32,
    /// The wait before the first restart, doubled for each next one.
    pub restart_backoff: Duration,
    /// A file the application can read to know this node's role:
    /// `active` or `passive` (written on every change).
    pub role_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Announce {
    /// Gratuitous ARP rounds (each sends a request and a reply).
    pub count: u32,
    pub interval: Duration,
    /// How long the primary listens for another holder of the VIP at start
    /// (RFC 5227 probe); zero skips the probe.
    pub probe: Duration,
    /// Re-announce periodically while Active; `None` (the default) sends
    /// gratuitous ARP only when the VIP moves.
    pub refresh: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct HeartbeatConfig {
    /// UDP port the nodes send heartbeats to and listen on.
    pub port: u16,
    pub interval: Duration,
    /// A peer without a valid heartbeat for this long is Unavailable.
    pub peer_timeout: Duration,
    /// How long a peer that said it re-executes itself (`understudy
    /// restart`) may stay silent before it is replaced.
    pub restart_allowance: Duration,
    /// How long a starting node listens for its peer before claiming.
    pub startup: Duration,
    /// File holding the shared HMAC key (`understudy keygen` writes one).
    pub secret_file: PathBuf,
}

/// Where the daemon listens for the CLI and keeps the administrator's
/// settings.
#[derive(Debug, Clone)]
pub struct Control {
    /// Unix socket, mode 0600.
    pub socket: PathBuf,
    /// Disabled / maintenance, kept across restarts.
    pub state_file: PathBuf,
}

/// The HTTP API: where it listens, who may call it, and TLS.
/// `[process]`: what keepalived offers for the same reason, so that the
/// heartbeat and the decisions keep their pace on a loaded host. Both off
/// by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Process {
    /// Real-time priority (SCHED_RR, 1–99) of the thread that runs the
    /// heartbeats and the decisions; `None`: the normal scheduler.
    pub rt_priority: Option<u8>,
    /// Lock the daemon's memory (`mlockall`), so that it is never paged out.
    pub lock_memory: bool,
}

#[derive(Debug, Clone)]
pub struct Api {
    pub listen: std::net::SocketAddr,
    /// `NAME TOKEN` lines; callers send `Authorization: Bearer TOKEN`.
    pub tokens_file: PathBuf,
    /// PEM certificate chain and key; both or neither.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// `[witness]`: who grants the lease, for how long, and what the holder
/// does when it cannot renew it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witness {
    pub backend: WitnessBackend,
    pub lease: Duration,
    pub on_loss: OnLoss,
    /// How this node proves itself to the witness, and checks it.
    pub access: WitnessAccess,
}

/// `[witness]`'s TLS and credentials. Secrets come from files only, which
/// nobody but their owner may read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WitnessAccess {
    /// The CA that signed the witness's certificate: the witness is then
    /// asked over TLS (etcd: https; PostgreSQL: `sslmode=verify-full`).
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key (etcd `--client-cert-auth`).
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// A user of the witness, with its password in `password_file`.
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
}

/// `[fencing]`'s watchdog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watchdog {
    pub device: PathBuf,
    pub mode: WatchdogMode,
    /// Whole seconds (see `core::fencing` for how it relates to the lease).
    pub timeout: Duration,
}

/// `[fencing]`'s fence command: run (with `sh -c`) before claiming from a
/// silent peer; the claim goes ahead only if it exits 0 within `timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceCommand {
    pub command: String,
    pub timeout: std::time::Duration,
}

/// Whether a claim may go ahead without the watchdog armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchdogMode {
    /// Armed when it can be; a claim goes ahead (with a warning) when not.
    Automatic,
    /// No claim without it armed.
    Required,
}

impl std::fmt::Display for WatchdogMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WatchdogMode::Automatic => "automatic",
            WatchdogMode::Required => "required",
        })
    }
}

/// Where the lease is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WitnessBackend {
    /// A PostgreSQL connection URL (`postgres://user@host/db`).
    Postgres(String),
    /// etcd members' client endpoints (`host:port`), tried in order.
    Etcd(Vec<String>),
}

impl WitnessBackend {
    /// The backend for logs and status, without any password.
    pub fn shown(&self) -> String {
        match self {
            WitnessBackend::Postgres(url) => redact_password(url),
            WitnessBackend::Etcd(endpoints) => format!("etcd://{}", endpoints.join(",")),
        }
    }
}

/// Notifications: which events, and the channels.
#[derive(Debug, Clone, Default)]
pub struct Notify {
    pub events: Vec<crate::core::EventKind>,
    /// The same event for the same cause is not resent within this window.
    pub dedup_window: Duration,
    /// Events waiting per channel; beyond it they are dropped and counted.
    pub queue: usize,
    pub email: Option<Email>,
    pub webhook: Option<Webhook>,
    pub hook: Option<Hook>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    StartTls,
    Tls,
    Plain,
}

#[derive(Debug, Clone)]
pub struct Email {
    pub server: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    pub from: String,
    pub to: Vec<String>,
    pub timeout: Duration,
    pub retries: u32,
}

#[derive(Debug, Clone)]
pub struct Webhook {
    pub urls: Vec<Url>,
    pub timeout: Duration,
    pub retries: u32,
    /// Shared secret for the `X-Understudy-Signature` HMAC header.
    pub secret_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Hook {
    pub commands: Vec<String>,
    pub timeout: Duration,
}

pub const DEFAULT_SOCKET: &str = "/run/understudy/understudy.sock";
pub const DEFAULT_STATE_FILE: &str = "/var/lib/understudy/state.json";

/// The shortest look at the VIP that is not made ahead of a takeover.
const MIN_LOOK_WINDOW: Duration = Duration::from_millis(100);

impl Config {
    /// The core's settings for node `me`, with this run's boot epoch.
    pub fn core_settings(&self, me: usize, epoch: u64) -> Settings {
        let config = self;
        let peers = (0..config.nodes.len()).filter(|&i| i != me);
        Settings {
            name: config.nodes[me].name.clone(),
            role: config.nodes[me].role,
            node_id: me as u16,
            preference: config.nodes[me].preference,
            peers: peers
                .map(|i| crate::core::PeerInfo {
                    name: config.nodes[i].name.clone(),
                    id: i as u16,
                    preference: config.nodes[i].preference,
                })
                .collect(),
            interval: config.monitor.interval,
            grace: config.monitor.grace,
            rise: config.monitor.rise,
            fall: config.monitor.fall,
            data_interval: config.monitor.data_probe.interval,
            data_rise: config.monitor.data_probe.rise,
            data_fall: config.monitor.data_probe.fall,
            watch_data: config.monitor.data.is_some(),
            watch_nic: true,
            heartbeat_interval: config.heartbeat.interval,
            peer_timeout: config.heartbeat.peer_timeout,
            restart_allowance: config.heartbeat.restart_allowance,
            startup: config.heartbeat.startup,
            // Even with `announce.probe = "0s"` a claim without the
            // peer's word looks first.
            look_window: config.announce.probe.max(MIN_LOOK_WINDOW),
            failback: config.failback,
            refresh: config.announce.refresh,
            dwell: config.monitor.dwell,
            flap_limit: config.monitor.flap_limit,
            flap_window: config.monitor.flap_window,
            restart_attempts: config.application.restart_attempts,
            restart_backoff: config.application.restart_backoff,
            cluster_id: crate::proto::heartbeat::cluster_id(&config.cluster.name),
            config_checksum: config.checksum,
            epoch,
            disabled: false,
            maintenance: false,
            adopt: None,
            witness: config.witness.as_ref().map(|w| crate::core::LeaseSettings {
                length: w.lease,
                on_loss: w.on_loss,
            }),
            watchdog: config.watchdog.as_ref().map(|w| w.timeout),
            fence: config.fence.is_some(),
            mirrors: !config.mirrors.is_empty(),
        }
    }
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Config, Problems> {
        Config::load_with_text(path).map(|(config, _)| config)
    }

    /// [`Config::load`], with the text that was checked (to pass on the
    /// very file that was read, not whatever the file holds later).
    pub fn load_with_text(path: &Path) -> Result<(Config, String), Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| Problems {
            file: path.to_owned(),
            list: vec![Problem::new(None, "", format!("cannot read the file: {e}"))],
        })?;
        Ok((Config::parse(path, &text)?, text))
    }

    /// Validates `text`, read from `path` (used in messages only).
    pub fn parse(path: &Path, text: &str) -> Result<Config, Problems> {
        validate::validate(text).map_err(|list| Problems {
            file: path.to_owned(),
            list,
        })
    }

    /// Finds the local node: by name when given, else the node whose
    /// `address` is among `local_addrs`.
    pub fn identify(&self, name: Option<&str>, local_addrs: &[IpAddr]) -> Result<usize, String> {
        if let Some(name) = name {
            return self
                .nodes
                .iter()
                .position(|n| n.name == name)
                .ok_or_else(|| {
                    let known: Vec<_> = self.nodes.iter().map(|n| n.name.as_str()).collect();
                    format!(
                        "no node named {name:?} in the configuration (nodes: {})",
                        known.join(", ")
                    )
                });
        }
        let found: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| local_addrs.contains(&self.nodes[i].address))
            .collect();
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err("no configured node address is on this machine; pass --node NAME".into()),
            _ => Err(
                "several configured node addresses are on this machine; pass --node NAME".into(),
            ),
        }
    }

    /// Every node but `me` (a pair: the one peer), in the file's order.
    pub fn peers_of(&self, me: usize) -> impl Iterator<Item = &Node> {
        self.nodes
            .iter()
            .enumerate()
            .filter(move |(i, _)| *i != me)
            .map(|(_, n)| n)
    }

    /// The heartbeat id of a node: its index in the file.
    pub fn id_of(&self, node: &Node) -> u16 {
        let index = self.nodes.iter().position(|n| n.name == node.name);
        index.unwrap_or(0) as u16
    }

    /// The most preferred node but `me`: the one watched first.
    pub fn first_peer(&self, me: usize) -> &Node {
        let most_preferred = self.peers_of(me).min_by_key(|n| n.preference);
        most_preferred.unwrap_or(&self.nodes[me])
    }

    /// Where the line of a node's key is, for problems found after
    /// validation (a missing NIC, say).
    /// The line of a key in a section (`["heartbeat", "secret_file"]`).
    pub fn locate_key(text: &str, path: &[&str]) -> Option<usize> {
        let segs: Vec<locate::Seg> = path.iter().map(|k| locate::Seg::Key(k)).collect();
        locate::Locator::new(text).line(&segs)
    }

    pub fn locate_node_key(text: &str, index: usize, key: &str) -> Option<usize> {
        Config::locate_in_array(text, "node", index, key)
    }

    /// The line of `key` in the `index`-th `[[array]]` table.
    pub fn locate_in_array(text: &str, array: &str, index: usize, key: &str) -> Option<usize> {
        locate::Locator::new(text).line(&[
            locate::Seg::Key(array),
            locate::Seg::Index(index),
            locate::Seg::Key(key),
        ])
    }
}

/// Does the network of `address/prefix_len` contain `ip`?
pub fn subnet_contains(address: IpAddr, prefix_len: u8, ip: IpAddr) -> bool {
    match (address, ip) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix_len.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix_len.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// A connection string with any password replaced by `***`, for logs.
pub fn redact_password(conn: &str) -> String {
    match Url::parse(conn) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => conn.to_owned(),
    }
}

pub use keyfile::read_keys;

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when the place is known.
    pub line: Option<usize>,
    /// The key in readable form (`cluster.vip`, `node "m2".url`).
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(line: Option<usize>, key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            line,
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone)]
pub struct Problems {
    pub file: PathBuf,
    pub list: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.list.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file.display())?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
            }
            if p.key.is_empty() {
                write!(f, ": {}", p.message)?;
            } else {
                write!(f, ": {}: {}", p.key, p.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}
