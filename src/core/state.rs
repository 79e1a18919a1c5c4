//! The node's states and the causes that move it between them.

use std::fmt;

use crate::proto::heartbeat::WireState;

/// Where the node stands. The states between `Passive` and `Active` each
/// wait for exactly one action to complete, which keeps the order
/// claim → announce → start and stop → release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the runtime's `Started` report.
    Init,
    /// The start-up window: listening for the peer before claiming anything.
    Starting,
    /// About to claim without the peer's word: looking at the VIP itself
    /// (ARP, and the application through it).
    Checking,
    /// Standby: watching the peer, ready to take over.
    Passive,
    /// The VIP is being added.
    Claiming,
    /// Gratuitous ARP is going out.
    Announcing,
    /// The application is starting.
    StartingApp,
    /// Holds the VIP and runs the application.
    Active,
    /// Active, waiting for the application's connections to drain before a
    /// planned failback.
    Draining,
    /// Active, re-adding a VIP that something else removed.
    Restoring,
    /// Active, restarting our failed application in place (no peer could
    /// take over).
    RestartingApp,
    /// The application is being stopped (first step of a release).
    StoppingApp,
    /// The VIP is being removed.
    Releasing,
    /// Released everything; the daemon exits.
    Stopped,
}

impl State {
    /// The runtime status word administrators know.
    pub fn status_word(self) -> &'static str {
        match self {
            State::Init | State::Starting | State::Checking | State::Passive => "Passive",
            State::Claiming | State::Announcing | State::StartingApp => "Active (claiming)",
            State::Active | State::Restoring => "Active",
            State::Draining => "Active (draining)",
            State::RestartingApp => "Active (restarting application)",
            State::StoppingApp | State::Releasing => "Active (releasing)",
            State::Stopped => "Stopped",
        }
    }

    /// What the peer is told.
    pub fn wire(self) -> WireState {
        match self {
            State::Init | State::Starting => WireState::Starting,
            State::Checking | State::Passive => WireState::Passive,
            State::Claiming | State::Announcing | State::StartingApp => WireState::Claiming,
            State::Active | State::Restoring | State::Draining | State::RestartingApp => {
                WireState::Active
            }
            State::StoppingApp | State::Releasing => WireState::Releasing,
            State::Stopped => WireState::Stopped,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why a state changed; shown in logs (and later in status and mail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The daemon started.
    Startup,
    /// The start-up window passed without a word from the peer.
    PeerSilent,
    /// The peer reported in.
    PeerHeard,
    /// No other host answers for the VIP.
    VipFree,
    /// Another host (this MAC) answers for the VIP.
    OtherHolder(String),
    /// Another host answers ARP for the VIP but the application does not
    /// answer through it (a crashed holder kept the address).
    Conflict(String),
    /// The application answers through the VIP: the service is up, only
    /// the peer's daemon is silent.
    ServiceUpViaVip,
    /// The VIP was on our NIC from an earlier run, and we should not hold it.
    StaleVip,
    /// The VIP was on our NIC from an earlier run and nobody else holds it.
    Resume,
    /// The peer failed for the whole grace period.
    PeerFailed(String),
    /// Nobody holds the VIP and it is our turn.
    NoHolder,
    /// The peer released at our request.
    PeerReleased,
    /// Our own application (or our NIC) failed for the whole grace period.
    LocalAppFailed(String),
    /// Our NIC lost carrier or went down.
    NicDown(String),
    /// We lost the data service for the grace period; the peer reaches it.
    DataLost(String),
    ClaimFailed(String),
    AppStartFailed(String),
    /// Our application failed and no peer can take over: restart it here.
    RestartApp {
        attempt: u32,
    },
    /// Both nodes held the VIP and the peer outranks us.
    SplitBrain {
        ours: u64,
        theirs: u64,
    },
    /// The peer asked us to release and can serve.
    PeerAsked,
    /// Automatic failback: the primary is ready again.
    Failback,
    /// The administrator disabled this node while it held the VIP.
    Disabled,
    /// The administrator demoted this node.
    Demoted,
    /// The administrator put this node in maintenance.
    Maintenance,
    /// The application's URL answers the maintenance signal.
    MaintenanceSignal,
    /// The administrator promoted this node.
    Promoted,
    /// A step of a claim or release completed.
    StepDone,
    /// Something else removed the VIP from our NIC.
    VipRemoved,
    /// SIGTERM or SIGINT.
    Shutdown,
}

impl Cause {
    /// Does a release for this cause count towards the flap limit? The
    /// administrator's moves, shutdowns and releases of an address that
    /// was never served do not.
    pub fn is_automatic_move(&self) -> bool {
        !matches!(
            self,
            Cause::Demoted
                | Cause::Maintenance
                | Cause::Disabled
                | Cause::Shutdown
                | Cause::StaleVip
                | Cause::ClaimFailed(_)
        )
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Startup => f.write_str("daemon started"),
            Cause::PeerSilent => f.write_str("start-up window passed without a heartbeat from the peer"),
            Cause::PeerHeard => f.write_str("heard from the peer"),
            Cause::VipFree => f.write_str("no other host holds the common IP"),
            Cause::OtherHolder(mac) => write!(f, "another host ({mac}) answers for the common IP"),
            Cause::Conflict(mac) => write!(
                f,
                "conflict: {mac} answers ARP for the common IP but the application does not answer through it"
            ),
            Cause::ServiceUpViaVip => {
                f.write_str("the application answers through the common IP; only the peer's daemon is silent")
            }
            Cause::StaleVip => f.write_str("common IP left on the NIC by an earlier run"),
            Cause::Resume => f.write_str("resuming the common IP left on the NIC by an earlier run"),
            Cause::PeerFailed(why) => write!(f, "peer failed for the grace period: {why}"),
            Cause::NoHolder => f.write_str("nobody holds the common IP"),
            Cause::PeerReleased => f.write_str("the peer released the common IP at our request"),
            Cause::LocalAppFailed(why) => write!(f, "this node failed for the grace period: {why}"),
            Cause::NicDown(why) => write!(f, "this node's NIC failed: {why}"),
            Cause::DataLost(why) => write!(f, "this node lost the data service for the grace period ({why}); the peer reaches it"),
            Cause::ClaimFailed(why) => write!(f, "could not add the common IP: {why}"),
            Cause::AppStartFailed(why) => write!(f, "application failed to start: {why}"),
            Cause::RestartApp { attempt } => write!(
                f,
                "the application failed and no peer can take over: restart {attempt}"
            ),
            Cause::SplitBrain { ours, theirs } => {
                write!(f, "split brain: both hold the common IP and the peer outranks us (terms {ours} vs {theirs})")
            }
            Cause::PeerAsked => f.write_str("the peer asked for the common IP and can serve"),
            Cause::Failback => f.write_str("automatic failback: the primary is ready"),
            Cause::Disabled => f.write_str("disabled by the administrator"),
            Cause::Demoted => f.write_str("demoted by the administrator"),
            Cause::Maintenance => f.write_str("maintenance mode on"),
            Cause::MaintenanceSignal => f.write_str("the application answers its maintenance signal"),
            Cause::Promoted => f.write_str("promoted by the administrator"),
            Cause::StepDone => f.write_str("step done"),
            Cause::VipRemoved => f.write_str("the common IP was removed by something else"),
            Cause::Shutdown => f.write_str("shutdown requested"),
        }
    }
}
