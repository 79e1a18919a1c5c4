//! The node's states and the causes that move it between them.

use super::input::Target;
use super::peer::FailureCause;
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
    /// About to claim: asking the witness for the lease (only with a
    /// `[witness]`); the VIP is not touched until it is granted.
    Acquiring,
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
    /// Active, copying the application's files to the others before a
    /// planned handover (`[[mirror]]`), the application still serving.
    Syncing,
    /// The application is being stopped (first step of a release).
    StoppingApp,
    /// The application stopped: the last changes are copied to the others
    /// before the VIP goes (`[[mirror]]`).
    FinalSync,
    /// The VIP is being removed.
    Releasing,
    /// Released everything; the daemon exits.
    Stopped,
}

impl State {
    /// The runtime status administrators know.
    pub fn status_word(self) -> StatusWord {
        match self {
            State::Init | State::Starting | State::Checking | State::Acquiring | State::Passive => {
                StatusWord::Passive
            }
            State::Claiming | State::Announcing | State::StartingApp => StatusWord::Claiming,
            State::Active | State::Restoring | State::Syncing => StatusWord::Active,
            State::Draining => StatusWord::Draining,
            State::RestartingApp => StatusWord::Restarting,
            State::StoppingApp | State::FinalSync | State::Releasing => StatusWord::Releasing,
            State::Stopped => StatusWord::Stopped,
        }
    }

    /// What the peer is told.
    pub fn wire(self) -> WireState {
        match self {
            State::Init | State::Starting => WireState::Starting,
            State::Checking | State::Acquiring | State::Passive => WireState::Passive,
            State::Claiming | State::Announcing | State::StartingApp => WireState::Claiming,
            State::Active
            | State::Restoring
            | State::Draining
            | State::RestartingApp
            | State::Syncing => WireState::Active,
            State::StoppingApp | State::FinalSync | State::Releasing => WireState::Releasing,
            State::Stopped => WireState::Stopped,
        }
    }
}

/// A node's runtime status, as administrators know it (the words are in
/// [`crate::words`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWord {
    Active,
    /// Active, still claiming (adding the VIP, starting the application).
    Claiming,
    /// Active, draining connections before a failback.
    Draining,
    /// Active, restarting its failed application in place.
    Restarting,
    /// Active, releasing (stopping the application, removing the VIP).
    Releasing,
    Passive,
    Maintenance,
    Disabled,
    /// Not communicating.
    Unavailable,
    Stopped,
}

/// Why the peer failed, with the last probe's reason when one failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub cause: FailureCause,
    pub detail: Option<String>,
}

/// How our own application failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppFailure {
    /// Its URL failed for the whole grace period.
    ForGrace(String),
    /// Its start (in a claim) failed.
    Start(String),
    /// A restart in place failed.
    Restart(String),
}

/// Why a takeover is due but held back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    /// This node cannot even run its probe of this target.
    CannotJudge { target: Target, why: String },
    /// This node's NIC is down or has no carrier (or was not probed yet).
    NicDown(Option<String>),
    /// This node cannot reach the data service (or did not probe it yet).
    NoData(Option<String>),
    /// The witness does not give this node the lease (until the next ask).
    Lease(super::lease::LeaseRefusal),
}

impl Blocker {
    /// Held back only because this node has not probed its NIC or the data
    /// service yet (at start): a wait, not a fault to act on.
    pub fn waits_for_first_probe(&self) -> bool {
        matches!(self, Blocker::NicDown(None) | Blocker::NoData(None))
    }

    /// The same hold-back, for the log: the same kind for the same reason,
    /// whatever detail each retry's error text carries (a witness that
    /// cannot be asked fails with a slightly different message each time).
    pub fn same_as(&self, other: &Blocker) -> bool {
        match (self, other) {
            (Blocker::Lease(a), Blocker::Lease(b)) => a.same_as(b),
            (Blocker::NicDown(Some(_)), Blocker::NicDown(Some(_)))
            | (Blocker::NoData(Some(_)), Blocker::NoData(Some(_))) => true,
            (a, b) => a == b,
        }
    }
}

/// Several causes in a row ("the peer failed; no other host holds the
/// common IP"): a claim's decision and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Because(pub Vec<Cause>);

impl From<Cause> for Because {
    fn from(cause: Cause) -> Self {
        Because(vec![cause])
    }
}

/// Why a state changed, or an event happened; the words are in
/// [`crate::words`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The daemon started.
    Startup,
    /// The start-up window passed without a word from the peer.
    PeerSilent,
    /// The peer reported in.
    PeerHeard,
    /// A takeover looked ahead for is no longer wanted (the peer's
    /// application answers again, this node cannot serve, or stands by).
    NoLongerDue,
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
    /// `understudy restart`: the previous process of this daemon held the
    /// VIP and handed it over to this one.
    Adopted,
    /// The peer failed for the whole grace period.
    PeerFailed(Failure),
    /// The peer failed, then released the VIP (at our request).
    PeerFailedAndReleased(Failure),
    /// The watched peer started failing.
    PeerFailing(Failure),
    /// Nobody holds the VIP and it is our turn.
    NoHolder,
    /// The peer released at our request.
    PeerReleased,
    /// The peer handed the VIP over on purpose, as its heartbeats told it
    /// (not for a failure of its own).
    PeerHandedOver(LetGo),
    /// Our own application failed.
    LocalAppFailed(AppFailure),
    /// Our application failed and no peer can take over: it is restarted
    /// here, after `wait`.
    RestartingInPlace {
        failure: AppFailure,
        attempt: u32,
        fast: u32,
        wait: std::time::Duration,
    },
    /// Our NIC lost carrier or went down.
    NicDown(String),
    /// We lost the data service for the grace period; the peer reaches it.
    DataLost(String),
    ClaimFailed(String),
    /// The fence command against the silent peer failed: no claim.
    FenceFailed(String),
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
    /// Both nodes hold the VIP (the event; terms ours and theirs).
    BothHold {
        ours: u64,
        theirs: u64,
    },
    /// The peer runs another configuration.
    ConfigDrift {
        peer: String,
        theirs: u64,
        ours: u64,
    },
    /// The VIP moved more than the flap limit within the window.
    Flapping {
        moves: usize,
        window: std::time::Duration,
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
    /// The witness's lease could not be renewed in time.
    LeaseLost,
    /// The witness did not grant the lease (another holds it, or it could
    /// not be asked).
    LeaseRefused,
    /// A mirror pass before a planned handover failed (or ran out of
    /// time): the handover is called off and this node serves on.
    MirrorPassFailed(String),
}

/// Why a peer let go of the VIP on purpose, as this node tells it from
/// the peer's heartbeats (they carry its maintenance and disabled flags;
/// a failback is the less preferred holder handing back to us; what is
/// left is its administrator's `demote`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LetGo {
    Demoted,
    /// With a witness, a healthy holder that lets go without a flag may
    /// have been demoted or may have failed to renew its lease: the
    /// heartbeats do not tell the two apart, so neither is claimed.
    DemotedOrLeaseLost,
    Maintenance,
    Disabled,
    Failback,
}

impl Cause {
    /// Is a move for this cause one somebody planned (an administrator's
    /// command, maintenance, failback, a peer's request)? Planned moves
    /// are told as such: no failure words, no critical mail.
    pub fn is_planned(&self) -> bool {
        matches!(
            self,
            Cause::Demoted
                | Cause::Promoted
                | Cause::Maintenance
                | Cause::MaintenanceSignal
                | Cause::Disabled
                | Cause::Failback
                | Cause::PeerAsked
                | Cause::PeerHandedOver(
                    LetGo::Demoted | LetGo::Maintenance | LetGo::Disabled | LetGo::Failback
                )
        )
    }

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
                | Cause::FenceFailed(_)
        )
    }
}
