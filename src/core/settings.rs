//! What the core is told at start: its settings, the node's configured
//! role and the failback mode. The core owns these types; the
//! configuration converts into them ([`crate::config::Config::core_settings`]),
//! so that the core depends on nothing but the wire format.

use std::fmt;
use std::time::Duration;

use super::peer::PeerInfo;

/// The part of the configuration the core decides with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub name: String,
    pub role: Role,
    pub node_id: u16,
    /// This node's place in the order of preference (0: the primary).
    pub preference: u8,
    /// Every other node, in the order of the configuration (a pair has
    /// one; more than two elect through the witness).
    pub peers: Vec<PeerInfo>,
    pub interval: Duration,
    pub grace: Duration,
    pub rise: u32,
    /// Consecutive failures before a target counts as failing.
    pub fall: u32,
    /// The data service's own probe period and counts.
    pub data_interval: Duration,
    pub data_rise: u32,
    pub data_fall: u32,
    /// A data service is configured: probe it, and take over only when it
    /// answers from here (failing over would not help otherwise).
    pub watch_data: bool,
    /// Probe our own NIC, and take over only while it is up with carrier
    /// (claiming on a dead link would only make the node flap).
    pub watch_nic: bool,
    pub heartbeat_interval: Duration,
    pub peer_timeout: Duration,
    /// How long a peer whose last heartbeat said it re-executes itself
    /// (`understudy restart`) may stay silent before it counts as gone:
    /// its own bound, longer than `peer_timeout`, since a re-exec on a
    /// loaded machine takes longer than a few heartbeats.
    pub restart_allowance: Duration,
    pub startup: Duration,
    /// How long a look at the VIP before a claim lasts when it could not
    /// start ahead of the takeover (`announce.probe`).
    pub look_window: Duration,
    pub failback: Failback,
    pub refresh: Option<Duration>,
    /// Minimum time between two moves of the VIP (flapping protection).
    pub dwell: Duration,
    /// More than this many automatic moves within `flap_window` stop
    /// automatic moves (0: no limit).
    pub flap_limit: u32,
    pub flap_window: Duration,
    /// Restarts in place of our failed application while no peer can take
    /// over, and the first wait (doubled each time).
    pub restart_attempts: u32,
    pub restart_backoff: Duration,
    pub cluster_id: u64,
    pub config_checksum: u64,
    /// This run's boot epoch (see [`heartbeat::boot_epoch`]).
    pub epoch: u64,
    /// Administrator settings kept across restarts (the state file).
    pub disabled: bool,
    pub maintenance: bool,
    /// Set when this process was re-executed by `understudy restart` while
    /// it held the VIP: the term it held it with. The new process adopts
    /// the VIP and the application instead of starting over.
    pub adopt: Option<u64>,
    /// The witness's lease, when `[witness]` is configured.
    pub witness: Option<super::lease::LeaseSettings>,
    /// The watchdog's timeout, when `[fencing]` arms one (see
    /// [`super::fencing`]).
    pub watchdog: Option<Duration>,
    /// A fence command is configured: a claim from a silent peer waits
    /// for it to succeed (see [`super::fence`]).
    pub fence: bool,
    /// `[[mirror]]` sections are configured: a planned handover copies the
    /// files first (see [`super::mirror_pass`]).
    pub mirrors: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Secondary,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Primary => "primary",
            Role::Secondary => "secondary",
        })
    }
}

/// What happens when the primary is healthy again while the secondary
/// holds the VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failback {
    /// The administrator decides (as in the products understudy replaces).
    Manual,
    /// The secondary hands over once the primary has been ready this long,
    /// after the application's open connections drain (or `drain_timeout`).
    Automatic {
        hold: Duration,
        drain_timeout: Duration,
    },
}

impl Settings {
    /// How long each peer may be silent (see [`super::peer::Silence`]).
    pub fn silence(&self) -> super::peer::Silence {
        super::peer::Silence {
            timeout: self.peer_timeout,
            restart: self.restart_allowance,
        }
    }
}
