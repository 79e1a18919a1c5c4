//! What the core has to say in its log, as data: every log line of the
//! core is one of these notes, grouped by what it is about, and
//! [`crate::words`] words and emits them (the model is holo's `debug.rs`),
//! so that wording and levels change in one place and decisions never
//! compose prose.

use std::time::Duration;

use super::timer::Timer;
use super::{
    AdminCommand, Blocker, Cause, Done, Failure, GoneSignal, Input, Refusal, State, Target,
};
use crate::proto::heartbeat::WireState;

/// The fence command, run before claiming from a silent peer.
#[derive(Debug)]
pub enum FenceNote<'a> {
    Fencing {
        peer: &'a str,
        term: u64,
    },
    Fenced {
        peer: &'a str,
    },
    Failed {
        peer: &'a str,
        why: &'a str,
        failed: u32,
        wait: Duration,
    },
    /// A fence answered while none was asked (or the look was dropped).
    Unasked,
}

/// The witness's lease: granted, refused, lost.
#[derive(Debug)]
pub enum LeaseNote<'a> {
    Granted {
        term: u64,
    },
    Refused {
        refusal: &'a super::LeaseRefusal,
    },
    /// The lease ran out unrenewed (or was found taken); `kept`: on_loss
    /// is keep and the peer is heard.
    Lost {
        kept: bool,
    },
    /// A reply to no ask (a witness answer after a restart of the loop).
    Unasked {
        reply: &'a super::LeaseReply,
    },
}

/// How the VIP moves: state changes, claims, releases, split brain,
/// failback, flapping, and the steps of a claim or release that failed.
#[derive(Debug)]
pub enum MoveNote<'a> {
    StateChange {
        from: State,
        to: State,
        cause: &'a Cause,
        term: u64,
        /// A step of a retry already said (logged at debug).
        quiet: bool,
    },
    Claimed {
        took: Duration,
        term: u64,
        app_failed: bool,
    },
    Released {
        took: Duration,
    },
    PeerLetGo,
    /// A re-executed daemon holds again what its previous process held.
    Adopted {
        took: Duration,
        term: u64,
    },
    SplitBrainWon {
        ours: u64,
        theirs: u64,
    },
    FailbackHeldBack {
        wait: Duration,
    },
    Drained {
        remaining: usize,
    },
    PrimaryNoLongerReady,
    YieldingToReadyPeer {
        state: State,
        cause: &'a Cause,
    },
    FlappingStarted {
        cause: &'a Cause,
    },
    /// A claim failed; the next waits `wait`.
    ClaimBackingOff {
        failed: u32,
        wait: Duration,
        why: &'a str,
    },
    /// A claim went through after `failed` failed ones.
    ClaimWentThrough {
        failed: u32,
    },
    FlappingOver,
    GarpFailed {
        why: &'a str,
    },
    StopFailed {
        why: &'a str,
    },
    /// A mirror pass of a planned handover went through (`last`: the
    /// final one, the application stopped).
    MirrorPassDone {
        last: bool,
    },
    /// It failed, and the move goes on (forced, or a shutdown).
    MirrorPassFailedGoingOn {
        last: bool,
        why: &'a str,
    },
    /// It failed, and the handover is called off.
    MirrorPassFailedCalledOff {
        last: bool,
        why: &'a str,
    },
    RestoreFailed {
        why: &'a str,
    },
    RemoveFailed {
        why: &'a str,
    },
    VipRemovedRestoring,
}

/// What the node learns of its peer and decides about it: its state
/// and availability, the countdown, requests, the look before a claim.
#[derive(Debug)]
pub enum PeerNote<'a> {
    PeerState {
        peer: &'a str,
        from: Option<WireState>,
        to: WireState,
        term: u64,
    },
    /// The peer this node watches changed (more than two nodes: the
    /// holder changed, or the one a handover would go to).
    Watching {
        peer: &'a str,
        state: Option<WireState>,
    },
    PeerAvailable {
        peer: &'a str,
        state: Option<WireState>,
        term: u64,
    },
    PeerUnavailable {
        peer: &'a str,
        signal: GoneSignal,
    },
    /// The peer goes silent while its application fails: look at the VIP
    /// now, so that the answer is in when the takeover falls due.
    LookingAhead {
        left: Duration,
    },
    ConfigDiffers {
        peer: &'a str,
        ours: u64,
        theirs: u64,
    },
    /// The drift ended (one of the nodes reloaded or restarted).
    ConfigAgrees {
        peer: &'a str,
    },
    PeerHealthyAgain,
    PeerAsksToClaim,
    /// Asking the holder to let go: the administrator promoted this node
    /// (`promoted`), or the holder failed for the grace period (or is in
    /// maintenance), as `failure` says.
    AskingRelease {
        peer: &'a str,
        failure: &'a Failure,
        promoted: bool,
    },
    AskingToClaim,
    /// A countdown to a takeover starts (logged once per countdown).
    Countdown {
        peer: &'a str,
        reason: String,
        left: Duration,
    },
    /// This node handed the VIP over on purpose and waits for the peer to
    /// claim it; it claims it back only if nobody has in `left`.
    HandedOverWaiting {
        peer: &'a str,
        left: Duration,
    },
    /// A countdown that was logged ended without a takeover.
    CountdownCancelled {
        peer: &'a str,
        why: Cancelled,
    },
    /// A hold-back still lasts (said once a minute).
    StillHeldBack {
        blocker: &'a Blocker,
        since: Duration,
    },
    /// A hold-back that was said is over.
    NoLongerHeldBack {
        blocker: &'a Blocker,
        after: Duration,
    },
    TakeoverHeldBack {
        blocker: &'a Blocker,
    },
    PeerReportedDuringLook {
        peer_state: Option<WireState>,
    },
    ServiceUpViaVip,
    ConflictClaiming {
        mac: &'a str,
        why: &'a str,
        /// The claim asks the witness first (it may refuse).
        witness: bool,
        /// A held-back takeover's retry: said once already.
        quiet: bool,
    },
}

/// Why a countdown to a takeover ended without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The peer no longer fails (it answers again, or reports healthy).
    PeerAnswers,
    /// The peer is claiming the VIP that nobody held.
    PeerClaims,
    /// The administrator disabled this node.
    Disabled,
    /// This node went into maintenance.
    Maintenance,
    /// The flap limit keeps the live holder.
    Flapping,
}

/// Our own application while we hold the VIP: restarts in place,
/// handing over after a failed start, the maintenance signal.
#[derive(Debug)]
pub enum AppNote<'a> {
    AppRestarted,
    AppServesAgain,
    StartFailedHandingOver { why: &'a str },
    KeepingVip { cause: &'a Cause },
    MaintenanceSignalChanged { on: bool },
}

/// Probe results that change a target's health, and probes this node
/// could not run.
#[derive(Debug)]
pub enum ProbeNote<'a> {
    ProbeCannotRun {
        target: Target,
        why: &'a str,
    },
    ProbeRunsAgain {
        target: Target,
    },
    StaleProbe {
        target: Target,
    },
    PeerAppNotAnswering {
        why: &'a str,
        /// Only a holding peer's application is expected to answer.
        peer_holds: bool,
    },
    PeerAppHealthy,
    /// A target's first verdict is healthy (at start, or a new watch).
    FirstHealthy {
        target: Target,
    },
    LocalFailing {
        why: &'a str,
        left: Duration,
    },
    LocalHealthy,
    DataUnreachable {
        why: &'a str,
    },
    DataReachable,
    NicUnusable {
        why: &'a str,
    },
    NicUsable,
}

/// What came in and how it was taken: admin commands applied or
/// refused, inputs and timers that do not apply.
#[derive(Debug)]
pub enum InputNote<'a> {
    AdminApplied {
        cmd: &'a AdminCommand,
        force: bool,
        done: &'a Done,
    },
    AdminRefused {
        cmd: &'a AdminCommand,
        force: bool,
        why: &'a Refusal,
    },
    InputIgnored {
        state: State,
        input: &'a Input,
    },
    /// A heartbeat with a node id the configuration has no peer for.
    UnknownPeer {
        id: u16,
    },
    TimerIgnored {
        timer: Timer,
        state: State,
    },
}
