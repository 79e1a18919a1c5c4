//! What the world tells the core: probe results, heartbeats, completions of
//! the actions it asked for, and requests from outside.

use std::time::Instant;

use crate::proto::heartbeat::Heartbeat;

/// Something a probe looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// The peer's application URL.
    Peer,
    /// This node's own application URL (watched while Active).
    Local,
    /// The data service, as seen from this node.
    Data,
    /// This node's NIC: administratively up, with carrier.
    Nic,
}

impl Target {
    pub const ALL: [Target; 4] = [Target::Peer, Target::Local, Target::Data, Target::Nic];

    /// A stable name (metrics labels, the replay format).
    pub fn name(self) -> &'static str {
        match self {
            Target::Peer => "peer",
            Target::Local => "local",
            Target::Data => "data",
            Target::Nic => "nic",
        }
    }
}

/// The outcome of an action or probe: `Err` carries a reason for the logs.
pub type Outcome = Result<(), String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The daemon is up; `vip_present` is whether the kernel already has the
    /// VIP on our NIC (left by an earlier run).
    Started {
        vip_present: bool,
    },
    /// The look at the VIP finished: `holder` is the MAC of another host
    /// that answers ARP for it; `via_vip` is the application URL probed
    /// with the VIP as host.
    VipChecked {
        holder: Option<String>,
        via_vip: Outcome,
    },
    VipAdded(Outcome),
    Announced(Outcome),
    /// The start command ran and the application answered its URL.
    AppStarted(Outcome),
    AppStopped(Outcome),
    VipRemoved(Outcome),
    /// A probe that was launched at `started` finished. `refused`: the
    /// target's host answered that nothing listens (TCP reset, ICMP port
    /// unreachable) — a sure sign of a dead service, unlike a timeout.
    Probed {
        target: Target,
        started: Instant,
        outcome: Outcome,
        refused: bool,
    },
    /// Peer `node`'s host refused a heartbeat of ours (ICMP port
    /// unreachable on the heartbeat socket): its daemon is not running.
    HeartbeatRefused {
        node: u16,
    },
    /// A probe launched at `started` could not be carried out by this node
    /// (no file descriptor, no memory, a command that cannot start): it
    /// tells nothing about the target, only that this node cannot judge.
    ProbeNotRun {
        target: Target,
        started: Instant,
        why: String,
    },
    /// A heartbeat from the peer that passed the MAC, cluster, node and
    /// replay checks.
    Heartbeat(Heartbeat),
    /// The connections drained (or the drain timeout passed with
    /// `remaining` still open).
    Drained {
        remaining: usize,
    },
    /// The address watch saw our VIP disappear from our NIC.
    VipMissing,
    /// Our own application's URL answers (or stopped answering) the
    /// configured maintenance signal.
    MaintenanceSignal(bool),
    /// SIGTERM or SIGINT: stop the application, release the VIP, exit.
    Shutdown,
    /// The witness answered our acquire or renew (see [`super::lease`]).
    Lease(super::lease::LeaseReply),
    /// The fence command ran (`Ok`: the peer is fenced).
    Fenced(Outcome),
    /// A mirror pass of a planned handover ended.
    MirrorPassed(Outcome),
}
