//! The node's states and the causes that move it between them.

use std::fmt;

/// Where the node stands. The states between `Passive` and `Active` each
/// wait for exactly one action to complete, which keeps the order
/// claim → announce → start and stop → release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the runtime's `Started` report.
    Init,
    /// Primary at start: listening for another holder of the VIP.
    Probing,
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
            State::Init | State::Probing | State::Passive => "Passive",
            State::Claiming | State::Announcing | State::StartingApp => "Active (claiming)",
            State::Active => "Active",
            State::StoppingApp | State::Releasing => "Active (releasing)",
            State::Stopped => "Stopped",
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
    /// Primary at start: no other host answers for the VIP.
    VipFree,
    /// Another host (this MAC) answers ARP for the VIP.
    OtherHolder(String),
    /// The VIP was on our NIC from an earlier run, and we should not hold it.
    StaleVip,
    /// The peer failed for the whole grace period.
    PeerFailed(String),
    /// Our own application (or our NIC) failed for the whole grace period.
    LocalAppFailed(String),
    ClaimFailed(String),
    AppStartFailed(String),
    /// A step of a claim or release completed.
    StepDone,
    /// SIGTERM or SIGINT.
    Shutdown,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Startup => f.write_str("daemon started"),
            Cause::VipFree => f.write_str("no other host holds the common IP"),
            Cause::OtherHolder(mac) => write!(f, "another host ({mac}) answers for the common IP"),
            Cause::StaleVip => f.write_str("common IP left on the NIC by an earlier run"),
            Cause::PeerFailed(why) => write!(f, "peer failed for the grace period: {why}"),
            Cause::LocalAppFailed(why) => write!(f, "this node failed for the grace period: {why}"),
            Cause::ClaimFailed(why) => write!(f, "could not add the common IP: {why}"),
            Cause::AppStartFailed(why) => write!(f, "application failed to start: {why}"),
            Cause::StepDone => f.write_str("step done"),
            Cause::Shutdown => f.write_str("shutdown requested"),
        }
    }
}
