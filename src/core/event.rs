//! Events worth telling a person about: the core emits them as
//! [`super::Action::Notify`]; the runtime adds the cluster, node, VIP, time
//! and the status table, and the notifier delivers them off the core's path.

use std::fmt;
use std::time::Duration;

/// Each kind has a stable name (used in configuration, hook environment,
/// webhook JSON and mail subjects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The watched peer started failing (any of the four causes).
    PeerDown,
    /// This node took the VIP over.
    Takeover,
    /// This node released the VIP (own failure, shutdown, split brain lost).
    Release,
    /// This node handed the VIP back to the primary (automatic failback).
    Failback,
    /// This node handed the VIP over on purpose (demote, maintenance, the
    /// peer's request).
    Handover,
    /// Both nodes held the VIP.
    SplitBrain,
    /// Another host answered ARP for the VIP.
    Conflict,
    /// The peer runs a different configuration.
    ConfigDrift,
    /// The application failed to start, or failed while Active.
    ApplicationFailed,
    /// The peer's application stopped answering / answers again (optional).
    ProbeFailing,
    ProbeRecovered,
    /// The VIP had been removed under us and was put back.
    VipRestored,
    /// The VIP moved too often within the flap window: automatic moves
    /// stopped.
    Flapping,
    /// The holder could not renew the witness's lease in time.
    LeaseLost,
    /// A `[[mirror]]` has failed to reach a node for its `alert_after`.
    MirrorFailing,
    /// That mirror reaches the node again.
    MirrorRecovered,
    /// A mirror run replaced or deleted files on a node that may have
    /// written them itself (the first run after a move): they are kept in
    /// a dated backup folder there.
    MirrorBackup,
}

impl EventKind {
    pub const ALL: [EventKind; 17] = [
        EventKind::PeerDown,
        EventKind::Takeover,
        EventKind::Release,
        EventKind::Failback,
        EventKind::Handover,
        EventKind::SplitBrain,
        EventKind::Conflict,
        EventKind::ConfigDrift,
        EventKind::ApplicationFailed,
        EventKind::ProbeFailing,
        EventKind::ProbeRecovered,
        EventKind::VipRestored,
        EventKind::Flapping,
        EventKind::LeaseLost,
        EventKind::MirrorFailing,
        EventKind::MirrorRecovered,
        EventKind::MirrorBackup,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::PeerDown => "peer_down",
            EventKind::Takeover => "takeover",
            EventKind::Release => "release",
            EventKind::Failback => "failback",
            EventKind::Handover => "handover",
            EventKind::SplitBrain => "split_brain",
            EventKind::Conflict => "conflict",
            EventKind::ConfigDrift => "config_drift",
            EventKind::ApplicationFailed => "application_failed",
            EventKind::ProbeFailing => "probe_failing",
            EventKind::ProbeRecovered => "probe_recovered",
            EventKind::VipRestored => "vip_restored",
            EventKind::Flapping => "flapping",
            EventKind::LeaseLost => "lease_lost",
            EventKind::MirrorFailing => "mirror_failing",
            EventKind::MirrorRecovered => "mirror_recovered",
            EventKind::MirrorBackup => "mirror_backup",
        }
    }

    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// "critical", "warning" or "info".
    pub fn severity(self) -> &'static str {
        match self {
            EventKind::PeerDown
            | EventKind::Takeover
            | EventKind::SplitBrain
            | EventKind::ApplicationFailed
            | EventKind::Flapping
            | EventKind::LeaseLost => "critical",
            EventKind::Release
            | EventKind::Conflict
            | EventKind::ConfigDrift
            | EventKind::ProbeFailing
            | EventKind::MirrorFailing
            | EventKind::MirrorBackup => "warning",
            EventKind::Failback
            | EventKind::Handover
            | EventKind::ProbeRecovered
            | EventKind::VipRestored
            | EventKind::MirrorRecovered => "info",
        }
    }

    /// Off unless listed in `notify.events`.
    pub fn on_by_default(self) -> bool {
        !matches!(self, EventKind::ProbeFailing | EventKind::ProbeRecovered)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Event {
    /// The kind's severity, but a planned move (an administrator's
    /// command, maintenance, failback) is news, not an alarm: a takeover
    /// or a "peer down" it caused is "info".
    pub fn severity(&self) -> &'static str {
        let planned = self.cause.0.iter().any(|c| match c {
            super::Cause::PeerFailing(failure) => failure.cause == super::FailureCause::Maintenance,
            other => other.is_planned(),
        });
        match self.kind {
            EventKind::Takeover | EventKind::PeerDown if planned => "info",
            kind => kind.severity(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// Why (worded by [`crate::words`]: "web service down: connection
    /// refused").
    pub cause: super::Because,
    pub term: u64,
    /// How long it took, where that applies (takeover, release).
    pub duration: Option<Duration>,
}
