//! What the core has to say in its log, as data: every log line of the
//! core is one of these, and [`crate::words`] words and emits them (the
//! model is holo's `debug.rs`), so that wording and levels change in one
//! place and decisions never compose prose.

use std::time::Duration;

use super::timer::Timer;
use super::{AdminCommand, Blocker, Cause, Done, Failure, Input, Refusal, State, Target};
use crate::proto::heartbeat::WireState;

/// One thing the core logs.
#[derive(Debug)]
pub enum Note<'a> {
    StateChange {
        from: State,
        to: State,
        cause: &'a Cause,
        term: u64,
    },
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
    PeerState {
        peer: &'a str,
        from: Option<WireState>,
        to: WireState,
        term: u64,
    },
    PeerAvailable {
        peer: &'a str,
        state: Option<WireState>,
        term: u64,
    },
    PeerUnavailable {
        peer: &'a str,
        timeout: Duration,
    },
    ConfigDiffers {
        peer: &'a str,
        ours: u64,
        theirs: u64,
    },
    PeerHealthyAgain,
    PeerAsksToClaim,
    AskingRelease {
        failure: &'a Failure,
    },
    AskingToClaim,
    Countdown {
        reason: String,
        left: Duration,
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
    FlappingOver,
    AppRestarted,
    AppServesAgain,
    StartFailedHandingOver {
        why: &'a str,
    },
    KeepingVip {
        cause: &'a Cause,
    },
    MaintenanceSignalChanged {
        on: bool,
    },
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
    },
    PeerAppHealthy,
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
    GarpFailed {
        why: &'a str,
    },
    StopFailed {
        why: &'a str,
    },
    RestoreFailed {
        why: &'a str,
    },
    RemoveFailed {
        why: &'a str,
    },
    VipRemovedRestoring,
    InputIgnored {
        state: State,
        input: &'a Input,
    },
    TimerIgnored {
        timer: Timer,
        state: State,
    },
}
