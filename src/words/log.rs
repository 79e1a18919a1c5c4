//! The core's log notes in words, at their levels: one impl per group of
//! notes (see `core/note.rs`). Every line keeps the target
//! `understudy::core`, which is what `UNDERSTUDY_LOG` filters on.

use std::fmt;

use tracing::{debug, error, info, warn};

use super::countdown::{self, humanize};
use crate::core::{
    millis, AppNote, Cancelled, Cause, FailureCause, FenceNote, InputNote, LeaseNote, MoveNote,
    PeerNote, ProbeNote, Target,
};
use crate::proto::heartbeat::WireState;

/// The log target of the core's notes (what `UNDERSTUDY_LOG` filters on).
const CORE: &str = "understudy::core";

/// The peer's wire state, as the log names it.
impl fmt::Display for WireState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireState::Starting => "Starting",
            WireState::Passive => "Passive",
            WireState::Claiming => "Claiming",
            WireState::Active => "Active",
            WireState::Releasing => "Releasing",
            WireState::Stopped => "Stopped",
        })
    }
}

fn or_unknown(state: Option<WireState>) -> String {
    state.map_or_else(|| "unknown".to_owned(), |s| s.to_string())
}

impl MoveNote<'_> {
    /// Writes this note (how the VIP moves) to the log, at its level.
    pub fn log(&self) {
        match self {
            Self::StateChange {
                from,
                to,
                cause,
                term,
                quiet,
            } => match cause {
                _ if *quiet => debug!(target: CORE, %cause, term, "state change: {from} -> {to}"),
                // Steps within a claim or release, and the start (the
                // runtime's "understudy starting" line says it).
                Cause::StepDone | Cause::Startup => {
                    debug!(target: CORE, "state change: {from} -> {to}")
                }
                _ => info!(target: CORE, %cause, term, "state change: {from} -> {to}"),
            },
            Self::Claimed {
                took,
                term,
                app_failed,
            } => {
                let ms = millis(*took);
                if *app_failed {
                    warn!(target: CORE, ms, term, "claimed the common IP; the application failed to start")
                } else {
                    info!(target: CORE, ms, term, "claimed the common IP; application healthy")
                }
            }
            Self::Released { took } => {
                info!(target: CORE, ms = millis(*took), "released the common IP")
            }
            Self::Adopted { took, term } => info!(
                target: CORE,
                ms = millis(*took),
                term,
                "restarted without a failover: the common IP and the application are held again"
            ),
            Self::PeerLetGo => {
                info!(target: CORE, "the peer let go of the common IP; announcing again so that clients follow")
            }
            Self::SplitBrainWon { ours, theirs } => warn!(
                target: CORE,
                ours,
                theirs,
                "split brain: the peer holds the common IP too; we outrank it and announce again"
            ),
            Self::FailbackHeldBack { wait } => info!(
                target: CORE,
                wait = %humanize(*wait),
                "failback held back: the common IP moved recently"
            ),
            Self::Drained { remaining } => {
                info!(target: CORE, remaining, "connections drained; handing the common IP back")
            }
            Self::PrimaryNoLongerReady => {
                info!(target: CORE, "the primary is no longer ready; staying Active")
            }
            Self::YieldingToReadyPeer { state, cause } => info!(
                target: CORE,
                %state,
                %cause,
                "a peer that can serve is ready while our application is not; handing over"
            ),
            Self::FlappingStarted { cause } => error!(target: CORE, %cause, "flapping"),
            Self::FlappingOver => {
                info!(target: CORE, "the common IP has not moved too often lately; automatic moves again")
            }
            _ => self.log_failure(),
        }
    }
}

impl MoveNote<'_> {
    /// The notes of a step that failed (the rest are [`Self::log`]'s).
    fn log_failure(&self) {
        match self {
            Self::GarpFailed { why } => warn!(
                target: CORE,
                %why,
                "gratuitous ARP failed; the kernel still answers ARP for the common IP"
            ),
            Self::StopFailed { why } => {
                warn!(target: CORE, %why, "stop command failed; removing the common IP anyway")
            }
            Self::MirrorPassDone { last: false } => info!(
                target: CORE,
                "mirror pass done while the application serves; stopping it for the final pass"
            ),
            Self::MirrorPassDone { last: true } => info!(
                target: CORE,
                "final mirror pass done; the others have the last write"
            ),
            Self::MirrorPassFailedGoingOn { last, why } => warn!(
                target: CORE,
                last,
                %why,
                "mirror pass failed; handing over anyway (forced): the others may lack the latest files"
            ),
            Self::MirrorPassFailedCalledOff { last, why } => warn!(
                target: CORE,
                last,
                %why,
                "mirror pass failed; the handover is called off and this node serves on (force it to hand over anyway)"
            ),
            Self::RestoreFailed { why } => {
                error!(target: CORE, %why, "could not restore the common IP")
            }
            Self::ClaimBackingOff { failed, wait, why } => warn!(
                target: CORE,
                failed,
                retry_in = %humantime::format_duration(*wait),
                %why,
                "the claim failed; backing off before the next one"
            ),
            Self::ClaimWentThrough { failed } => info!(
                target: CORE,
                failed,
                "the claim went through after failed ones"
            ),
            Self::RemoveFailed { why } => {
                error!(target: CORE, %why, "could not remove the common IP")
            }
            Self::VipRemovedRestoring => warn!(
                target: CORE,
                "the common IP was removed from the NIC by something else; restoring it"
            ),
            _ => {}
        }
    }
}

impl PeerNote<'_> {
    /// Writes this note (the peer and the decisions about it) to the log, at its level.
    pub fn log(&self) {
        match self {
            Self::PeerState {
                peer,
                from,
                to,
                term,
            } => match from {
                // The first heartbeat: "peer available" says the state.
                None => debug!(target: CORE, %peer, %to, term, "peer state"),
                Some(from) => info!(target: CORE, %peer, %from, %to, term, "peer state"),
            },
            Self::Watching { peer, state } => {
                info!(target: CORE, %peer, state = %or_unknown(*state), "watching peer")
            }
            Self::PeerAvailable { peer, state, term } => {
                info!(target: CORE, %peer, state = %or_unknown(*state), term, "peer available")
            }
            Self::PeerUnavailable { peer, signal } => warn!(
                target: CORE,
                %peer,
                %signal,
                "peer unavailable"
            ),
            Self::LookingAhead { left } => info!(
                target: CORE,
                left = %humanize(*left),
                "the peer is going silent while failing; looking at the common IP until the takeover is due"
            ),
            Self::ConfigDiffers { peer, ours, theirs } => warn!(
                target: CORE,
                %peer,
                ours = format!("{ours:016x}"),
                theirs = format!("{theirs:016x}"),
                "the peer runs a different configuration"
            ),
            Self::ConfigAgrees { peer } => info!(
                target: CORE,
                %peer,
                "the peer runs the same configuration again"
            ),
            Self::PeerHealthyAgain => {
                info!(target: CORE, "the peer is healthy again; withdrawing the release request")
            }
            Self::PeerAsksToClaim => {
                info!(target: CORE, "the peer asks for the common IP; letting it claim")
            }
            Self::AskingRelease {
                peer,
                failure,
                promoted,
            } => match (promoted, failure.cause) {
                (true, _) => info!(
                    target: CORE,
                    "promoted by the administrator; asking {peer} to hand the common IP over"
                ),
                (false, FailureCause::Maintenance) => info!(
                    target: CORE,
                    "{peer} is in maintenance; asking it to hand the common IP over"
                ),
                (false, _) => info!(
                    target: CORE,
                    why = %failure,
                    "{peer} failed for the grace period; asking it to release the common IP"
                ),
            },
            Self::AskingToClaim => {
                info!(target: CORE, "nobody holds the common IP; asking the primary to let us claim it")
            }
            Self::Countdown { .. }
            | Self::HandedOverWaiting { .. }
            | Self::CountdownCancelled { .. }
            | Self::StillHeldBack { .. }
            | Self::NoLongerHeldBack { .. }
            | Self::TakeoverHeldBack { .. } => self.log_countdown(),
            Self::PeerReportedDuringLook { .. }
            | Self::ServiceUpViaVip
            | Self::ConflictClaiming { .. } => self.log_look(),
        }
    }

    /// The notes of a countdown to a takeover, and of what holds it back.
    fn log_countdown(&self) {
        match self {
            Self::Countdown { peer, reason, left } => {
                warn!(target: CORE, %peer, cause = %reason, "{}", countdown::takeover_in(*left))
            }
            Self::HandedOverWaiting { peer, left } => info!(
                target: CORE,
                "handed the common IP over; waiting for {peer} to claim it ({})",
                countdown::claim_back_in(*left)
            ),
            Self::CountdownCancelled { peer, why } => match why {
                Cancelled::PeerAnswers | Cancelled::PeerClaims => {
                    info!(target: CORE, "takeover cancelled: {peer} {why}")
                }
                _ => info!(target: CORE, %peer, "takeover cancelled: {why}"),
            },
            Self::StillHeldBack { blocker, since } => info!(
                target: CORE,
                why = %blocker,
                "takeover still held back after {}",
                countdown::ago(*since)
            ),
            Self::NoLongerHeldBack { blocker, after } => info!(
                target: CORE,
                was = %blocker,
                "takeover no longer held back after {}",
                countdown::ago(*after)
            ),
            Self::TakeoverHeldBack { blocker } => {
                if blocker.waits_for_first_probe() {
                    info!(target: CORE, why = %blocker, "no takeover until this node's first probe")
                } else {
                    warn!(target: CORE, why = %blocker, "takeover held back")
                }
            }
            // Logged by `log` and `log_look`.
            _ => {}
        }
    }

    /// The notes of the look at the common IP before a claim.
    fn log_look(&self) {
        match self {
            Self::PeerReportedDuringLook { peer_state } => info!(
                target: CORE,
                peer_state = %or_unknown(*peer_state),
                "the peer reported in while we looked at the common IP; not claiming on the look"
            ),
            Self::ServiceUpViaVip => {
                warn!(target: CORE, "the application answers through the common IP; not claiming, watching on")
            }
            Self::ConflictClaiming { quiet: true, .. } => {
                debug!(target: CORE, "{}", conflict_words(self))
            }
            Self::ConflictClaiming { mac, why, .. } => {
                warn!(target: CORE, %mac, %why, "{}", conflict_words(self))
            }
            // Logged by `log` and `log_countdown`.
            _ => {}
        }
    }
}

/// The words of [`PeerNote::ConflictClaiming`]: with a witness the claim
/// only asks for the lease, and says so.
fn conflict_words(note: &PeerNote<'_>) -> &'static str {
    match note {
        PeerNote::ConflictClaiming { witness: true, .. } => {
            "another host answers for the common IP but the application does not; claiming it if the witness grants the lease"
        }
        _ => "another host answers for the common IP but the application does not; claiming it",
    }
}

impl AppNote<'_> {
    /// Writes this note (our own application) to the log, at its level.
    pub fn log(&self) {
        match self {
            Self::AppRestarted => info!(target: CORE, "application restarted"),
            Self::AppServesAgain => info!(target: CORE, "the application serves again"),
            Self::StartFailedHandingOver { why } => error!(
                target: CORE,
                %why,
                "application failed to start; releasing the common IP to the peer"
            ),
            Self::KeepingVip { cause } => warn!(target: CORE, %cause, "keeping the common IP"),
            Self::MaintenanceSignalChanged { on } => {
                info!(target: CORE, on, "the application's maintenance signal changed")
            }
        }
    }
}

impl FenceNote<'_> {
    /// Writes this note (the fence command) to the log, at its level.
    pub fn log(&self) {
        match self {
            Self::Fencing { peer, term } => warn!(
                target: CORE,
                peer,
                term,
                "fencing the silent peer before claiming (running the fence command)"
            ),
            Self::Fenced { peer } => info!(target: CORE, peer, "the peer is fenced; claiming"),
            Self::Failed {
                peer,
                why,
                failed,
                wait,
            } => error!(
                target: CORE,
                peer,
                %why,
                failed,
                retry_in = %humantime::format_duration(*wait),
                "the fence command failed; not claiming from a peer that may still serve"
            ),
            Self::Unasked => debug!(target: CORE, "a fence result for no fence asked"),
        }
    }
}

impl LeaseNote<'_> {
    /// Writes this note (the witness's lease) to the log, at its level.
    pub fn log(&self) {
        match self {
            Self::Granted { term } => info!(target: CORE, term, "the witness granted the lease"),
            Self::Refused { refusal } => warn!(target: CORE, %refusal, "no lease"),
            Self::Lost { kept: true } => warn!(
                target: CORE,
                "the witness's lease ran out; keeping the common IP while the peer is heard (on_loss = keep)"
            ),
            Self::Lost { kept: false } => error!(
                target: CORE,
                "the witness's lease is lost; removing the common IP before it can run out"
            ),
            Self::Unasked { reply } => debug!(target: CORE, ?reply, "a witness reply to no ask"),
        }
    }
}

impl ProbeNote<'_> {
    /// Writes this note (probe results) to the log, at its level.
    pub fn log(&self) {
        match self {
            Self::ProbeCannotRun { target, why } => error!(
                target: CORE,
                probe = %target,
                %why,
                "this node cannot run its probe; it will not take over until it can"
            ),
            Self::ProbeRunsAgain { target } => {
                info!(target: CORE, probe = %target, "this node can run its probe again")
            }
            Self::StaleProbe { target } => {
                debug!(target: CORE, probe = %target, "probe result from an earlier watch; dropped")
            }
            Self::PeerAppNotAnswering { why, peer_holds } => {
                if *peer_holds {
                    warn!(target: CORE, probe = "peer", %why, "peer application not answering")
                } else {
                    debug!(target: CORE, probe = "peer", %why, "peer application not answering (the peer does not hold the common IP)")
                }
            }
            Self::FirstHealthy { target } => match target {
                Target::Peer => {
                    debug!(target: CORE, probe = "peer", "peer application healthy (first probe)")
                }
                _ => debug!(target: CORE, probe = %target, "first probe healthy"),
            },
            Self::PeerAppHealthy => info!(target: CORE, probe = "peer", "peer application healthy"),
            Self::LocalFailing { why, left } => warn!(
                target: CORE,
                probe = "local",
                %why,
                "this node is failing; release in {}",
                humanize(*left)
            ),
            Self::LocalHealthy => info!(
                target: CORE,
                probe = "local",
                "this node's application answers again; release cancelled"
            ),
            Self::DataUnreachable { why } => {
                warn!(target: CORE, probe = "data", %why, "data service unreachable from here")
            }
            Self::DataReachable => info!(target: CORE, probe = "data", "data service reachable"),
            Self::NicUnusable { why } => {
                warn!(target: CORE, probe = "nic", %why, "this node's NIC is unusable")
            }
            Self::NicUsable => info!(target: CORE, probe = "nic", "this node's NIC is usable"),
        }
    }
}

impl InputNote<'_> {
    /// Writes this note (what came in) to the log, at its level.
    pub fn log(&self) {
        match self {
            Self::AdminApplied { cmd, force, done } => {
                info!(target: CORE, %cmd, force, %done, "admin command applied")
            }
            Self::AdminRefused { cmd, force, why } => {
                info!(target: CORE, %cmd, force, %why, "admin command refused")
            }
            Self::InputIgnored { state, input } => {
                debug!(target: CORE, %state, ?input, "input does not apply in this state; ignored")
            }
            Self::UnknownPeer { id } => {
                debug!(target: CORE, id, "heartbeat from a node id with no peer; ignored")
            }
            Self::TimerIgnored { timer, state } => {
                debug!(target: CORE, ?timer, %state, "timer does not apply in this state")
            }
        }
    }
}
