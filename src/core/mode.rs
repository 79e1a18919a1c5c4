//! The data each phase of a node's life needs, held in the phase's variant
//! so that leaving the phase drops it: nothing is reset by hand. A phase
//! groups the states that share data (the claim's start instant and cause
//! flow from Claiming through Announcing to StartingApp); which states share
//! a phase is said once, in [`Mode::begin`]. What must cross from one phase
//! to the next (a hold-down after a release, a handover the peer must
//! finish) is handed over there too. Only the state machine
//! ([`super::machine`]) moves from one phase to the next.

use std::time::Instant;

use super::input::Outcome;
use super::recovery::AppRecovery;
use super::state::{Because, Blocker, Cause, State};

/// Where a release ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum After {
    Passive,
    Exit,
}

/// How a release ends and what it leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// Back to Passive.
    Passive,
    /// Back to Passive, holding back our own claims for twice the grace
    /// period so that the peer gets its turn (after our own failure, a
    /// lost split brain, the peer's request).
    HeldDown,
    /// Held down, and the peer is told to claim at once (a handover on
    /// purpose).
    HandOver,
    /// The daemon exits.
    Exit,
}

#[derive(Debug)]
pub(super) enum Mode {
    /// Init and Stopped: nothing to keep.
    Idle,
    /// Starting, Checking, Passive: watching the peer.
    Watch(Watch),
    /// Claiming, Announcing, StartingApp: a takeover under way.
    Claim(Claim),
    /// Active, Draining, Restoring, RestartingApp: holding the VIP.
    Serve(Serve),
    /// StoppingApp, Releasing: a release under way.
    Release(Release),
}

/// Standby: what the node has asked, granted and decided.
#[derive(Debug, Default)]
pub struct Watch {
    /// Since when this watch of the peer's application runs: probe results
    /// launched earlier are about an earlier watch and are dropped.
    pub since: Option<Instant>,
    /// We ask for the VIP (the release-request flag in our heartbeats): the
    /// holding peer should release, or the idle preferred one let us claim.
    pub asking: bool,
    /// Whether we let the others claim (the deferring flag).
    pub yielding: Yielding,
    /// An administrator's promotion is under way, and how.
    pub promote: Option<Promotion>,
    /// After a release for our own failure (or on request), wait before
    /// claiming again so that the peer gets its turn.
    pub holddown_until: Option<Instant>,
    /// Since when the peer has reported that nobody holds the VIP.
    pub no_holder_since: Option<Instant>,
    /// The watched peer let go of the VIP on purpose (its heartbeats said
    /// so when it stopped holding): a claim now is a planned move.
    pub peer_let_go: Option<super::LetGo>,
    /// The takeover instant last announced in the log.
    pub countdown_logged: Option<Instant>,
    /// After handing the VIP over on purpose, the wait for the peer's
    /// claim was said.
    pub handover_wait_logged: bool,
    /// The takeover is due but held back by this reason.
    pub takeover_blocked: Option<Blocker>,
    /// A hold-back that lasts across retries (the look and the witness's
    /// refusal, again and again): said when it starts, once a minute while
    /// it lasts, and when it ends; the retries' steps log at debug.
    pub held_back: Option<HeldBack>,
    /// Pace of the VIP check while the service answers through the VIP.
    pub vip_check_not_before: Option<Instant>,
    /// The look at the VIP under way or just made (state Checking).
    pub look: Option<Box<Look>>,
    /// Since when we ask the witness for the lease, to claim for this
    /// cause once it is granted (state Acquiring).
    pub acquiring: Option<(Instant, Cause)>,
}

/// A takeover held back for one reason across retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    pub blocker: Blocker,
    pub since: Instant,
    /// When it was last said in the log.
    pub said: Instant,
}

/// Whether a standby lets the others claim the VIP when nobody holds it
/// (our heartbeats' deferring flag). It may ask for the VIP at the same
/// time: a node that cannot serve yet lets an asking peer claim, and still
/// asks a failing holder to let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Yielding {
    /// We claim when our turn comes.
    #[default]
    No,
    /// A peer asked and we are preferred over it or cannot serve, or we
    /// stand by (disabled, maintenance): it may claim.
    ToOthers,
    /// We handed the VIP over on purpose: the peer is told to claim at once
    /// until it holds it (then this becomes [`Yielding::No`] or
    /// [`Yielding::ToOthers`]).
    HandingOver,
}

impl Yielding {
    /// Do our heartbeats say "claim, I will not"?
    pub fn defers(self) -> bool {
        self != Yielding::No
    }
}

/// An administrator's `promote`, while it is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promotion {
    /// Take the VIP over as a takeover would: only if this node can serve.
    Asked,
    /// `--force`: also from a silent peer, and whatever holds this node
    /// back.
    Forced,
}

/// A look at the VIP before a claim without the peer's word: an ARP probe
/// (RFC 5227) and a GET through the VIP. A takeover's look runs *ahead*
/// of it, while the peer goes silent, and ends when the takeover falls
/// due, so that the answer is known then instead of one window later.
#[derive(Debug, Clone)]
pub struct Look {
    pub began: Instant,
    /// When the takeover falls due (the look ends then, or at once plus
    /// the configured window if it is due already); `None` for the look
    /// at start-up, whose answer is acted on as it comes.
    pub due: Option<Instant>,
    pub cause: Cause,
    /// Another host's MAC that answered for the VIP, and the application
    /// through the VIP; `None` while looking.
    pub answer: Option<(Option<String>, Outcome)>,
    /// The answer says claim, and the fence command runs against the
    /// silent peer first (see [`super::fence`]).
    pub fencing: bool,
}

impl Look {
    /// When the takeover was decided: when it fell due, or when the look
    /// began if it was due already.
    pub fn decided(&self) -> Instant {
        self.due.map_or(self.began, |due| due.max(self.began))
    }
}

/// A takeover under way.
#[derive(Debug)]
pub(super) struct Claim {
    /// When the takeover was decided (the look before it included).
    pub started: Instant,
    pub cause: Because,
    /// The administrator promoted this node (the move is not counted
    /// towards the flap limit).
    pub promoted: bool,
    /// A peer that can serve asked for the VIP while our application was
    /// starting: release with this cause as soon as the start ends.
    pub yield_to: Option<Cause>,
    /// Not a takeover: a re-executed daemon taking back what its previous
    /// process held (`understudy restart`). The application is adopted if
    /// it answers, and nothing is counted or notified.
    pub adopting: bool,
}

impl Claim {
    /// A claim begins: from a watch, the look (or else the lease's ask)
    /// began it and gave its first cause.
    fn begin(old: &Mode, now: Instant, cause: &Cause) -> Claim {
        let adopting = matches!(cause, Cause::Adopted);
        let Mode::Watch(w) = old else {
            return Claim {
                started: now,
                cause: cause.clone().into(),
                promoted: false,
                yield_to: None,
                adopting,
            };
        };
        Claim {
            started: w.look.as_ref().map_or_else(
                || w.acquiring.as_ref().map_or(now, |(since, _)| *since),
                |l| l.decided(),
            ),
            cause: match &w.look {
                Some(look) => Because(vec![look.cause.clone(), cause.clone()]),
                None => cause.clone().into(),
            },
            promoted: w.promote.is_some(),
            yield_to: None,
            adopting,
        }
    }
}

/// Holding the VIP.
#[derive(Debug, Default)]
pub struct Serve {
    /// Since when our own application is watched (this Active stretch).
    pub local_since: Option<Instant>,
    /// Automatic failback: since when the primary has been ready.
    pub primary_ready_since: Option<Instant>,
    /// When we last announced again (split brain won, the peer let go).
    pub last_reannounce: Option<Instant>,
    /// The due instant already counted as held back by the dwell time.
    pub dwell_counted: Option<Instant>,
    /// What is being done about our own failed application.
    pub recovery: AppRecovery,
    /// The application's URL answers the configured maintenance signal.
    pub maintenance_signal: bool,
    /// A peer that can serve is ready while our application restarts:
    /// release with this cause as soon as the restart ends.
    pub yield_to: Option<Cause>,
    /// The application starts again after a planned handover was called
    /// off (its final mirror pass failed): no peer takes the VIP meanwhile,
    /// or it would serve without the last changes.
    pub resuming: bool,
}

/// A release under way.
#[derive(Debug)]
pub(super) struct Release {
    pub started: Instant,
    pub cause: Cause,
    pub after: After,
    /// Tell the peer to claim at once (a handover on purpose).
    pub handover: bool,
    /// Hold back our own claims this long once the release ends (given to
    /// the next watch): counted from the end, so that a release that took
    /// long (a planned handover's mirror passes) still leaves the peer its
    /// turn.
    pub holddown: Option<std::time::Duration>,
    /// The VIP goes first, then the application stops (the lease was
    /// lost: clients must stop reaching us before it runs out).
    pub stop_app_after: bool,
    /// A planned handover with `[[mirror]]`: a pass while the application
    /// serves, then a final one once it stopped, before the VIP goes.
    pub mirror: Option<MirrorPasses>,
}

/// The mirror passes of a planned handover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MirrorPasses {
    /// The administrator forced the move: a failed pass does not call it
    /// off.
    pub forced: bool,
}

impl Mode {
    /// The data of the phase state `to` belongs to, made from what the
    /// phase it comes from (`old`) hands over; the one place that says
    /// which states share a phase. The caller keeps the current data when
    /// `to` is in the same phase (the variant does not change).
    pub fn begin(old: &Mode, to: State, now: Instant, cause: &Cause) -> Mode {
        match to {
            State::Init | State::Stopped => Mode::Idle,
            State::Starting | State::Checking | State::Acquiring | State::Passive => {
                Mode::Watch(match old {
                    Mode::Release(r) => Watch {
                        since: Some(now),
                        holddown_until: r.holddown.map(|d| super::timer::later(now, d)),
                        yielding: if r.handover {
                            Yielding::HandingOver
                        } else {
                            Yielding::No
                        },
                        ..Watch::default()
                    },
                    _ => Watch {
                        since: Some(now),
                        ..Watch::default()
                    },
                })
            }
            State::Claiming | State::Announcing | State::StartingApp => {
                Mode::Claim(Claim::begin(old, now, cause))
            }
            State::Active | State::Draining | State::Restoring | State::RestartingApp => {
                Mode::Serve(Serve::default())
            }
            State::Syncing | State::StoppingApp | State::FinalSync | State::Releasing => {
                Mode::Release(Release {
                    started: now,
                    cause: cause.clone(),
                    after: After::Passive,
                    handover: false,
                    holddown: None,
                    stop_app_after: false,
                    mirror: None,
                })
            }
        }
    }

    /// Is `other` data of the same phase as this?
    pub fn same_phase(&self, other: &Mode) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    pub fn watch(&self) -> Option<&Watch> {
        match self {
            Mode::Watch(w) => Some(w),
            _ => None,
        }
    }

    pub fn watch_mut(&mut self) -> Option<&mut Watch> {
        match self {
            Mode::Watch(w) => Some(w),
            _ => None,
        }
    }

    pub fn serve(&self) -> Option<&Serve> {
        match self {
            Mode::Serve(s) => Some(s),
            _ => None,
        }
    }

    pub fn serve_mut(&mut self) -> Option<&mut Serve> {
        match self {
            Mode::Serve(s) => Some(s),
            _ => None,
        }
    }

    pub fn release(&self) -> Option<&Release> {
        match self {
            Mode::Release(r) => Some(r),
            _ => None,
        }
    }

    pub fn release_mut(&mut self) -> Option<&mut Release> {
        match self {
            Mode::Release(r) => Some(r),
            _ => None,
        }
    }

    /// Is this claim a re-executed daemon adopting what it held?
    pub fn adopting(&self) -> bool {
        matches!(self, Mode::Claim(c) if c.adopting)
    }

    /// The cause to hand over with once the (re)start in flight ends, if a
    /// peer that can serve is waiting for it.
    pub fn yield_to(&self) -> Option<Cause> {
        match self {
            Mode::Claim(c) => c.yield_to.clone(),
            Mode::Serve(s) => s.yield_to.clone(),
            _ => None,
        }
    }

    /// Hands over with `cause` once the (re)start in flight ends; `false`
    /// when nothing is starting (nothing to wait for).
    pub fn set_yield_to(&mut self, cause: Cause) -> bool {
        match self {
            Mode::Claim(c) => c.yield_to = Some(cause),
            Mode::Serve(s) => s.yield_to = Some(cause),
            _ => return false,
        }
        true
    }

    /// Is the VIP (about to be) on our NIC: from a claim to a release?
    pub fn may_hold_vip(&self) -> bool {
        matches!(self, Mode::Claim(_) | Mode::Serve(_) | Mode::Release(_))
    }

    /// Our application's recovery (serving when we hold nothing).
    pub fn recovery(&self) -> AppRecovery {
        self.serve().map_or(AppRecovery::Serving, |s| s.recovery)
    }
}
