//! The data each phase of a node's life needs, held in the phase's variant
//! so that leaving the phase drops it: nothing is reset by hand. A phase
//! groups the states that share data (the claim's start instant and cause
//! flow from Claiming through Announcing to StartingApp); what must cross
//! from one phase to the next (a hold-down after a release, a handover the
//! peer must finish) is handed over explicitly in `Core::change_state`.

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

/// An empty watch, read outside the Watch phase.
pub(super) static NO_WATCH: Watch = Watch {
    since: None,
    requesting_release: false,
    deferring: false,
    handover_pending: false,
    promote: None,
    holddown_until: None,
    no_holder_since: None,
    countdown_logged: None,
    takeover_blocked: None,
    vip_check_not_before: None,
    look: None,
    acquiring: None,
};

/// Standby: what the node has asked, granted and decided.
#[derive(Debug, Default)]
pub struct Watch {
    /// Since when this watch of the peer's application runs: probe results
    /// launched earlier are about an earlier watch and are dropped.
    pub since: Option<Instant>,
    /// We ask for the VIP (flag in our heartbeats): the holding peer should
    /// release, or the idle primary should let us claim.
    pub requesting_release: bool,
    /// We hold nothing and let the peer claim (it asked, we handed over,
    /// or we are Disabled or in maintenance).
    pub deferring: bool,
    /// We handed the VIP over on purpose; tell the peer to claim at once
    /// until it holds it.
    pub handover_pending: bool,
    /// An administrator's promotion is under way, and how.
    pub promote: Option<Promotion>,
    /// After a release for our own failure (or on request), wait before
    /// claiming again so that the peer gets its turn.
    pub holddown_until: Option<Instant>,
    /// Since when the peer has reported that nobody holds the VIP.
    pub no_holder_since: Option<Instant>,
    /// The takeover instant last announced in the log.
    pub countdown_logged: Option<Instant>,
    /// The takeover is due but held back by this reason.
    pub takeover_blocked: Option<Blocker>,
    /// Pace of the VIP check while the service answers through the VIP.
    pub vip_check_not_before: Option<Instant>,
    /// The look at the VIP under way or just made (state Checking).
    pub look: Option<Box<Look>>,
    /// Since when we ask the witness for the lease, to claim for this
    /// cause once it is granted (state Acquiring).
    pub acquiring: Option<(Instant, Cause)>,
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
}

/// A release under way.
#[derive(Debug)]
pub(super) struct Release {
    pub started: Instant,
    pub cause: Cause,
    pub after: After,
    /// Tell the peer to claim at once (a handover on purpose).
    pub handover: bool,
    /// Hold back our own claims until then (given to the next watch).
    pub holddown_until: Option<Instant>,
    /// The VIP goes first, then the application stops (the lease was
    /// lost: clients must stop reaching us before it runs out).
    pub stop_app_after: bool,
}

/// The phase a state belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Idle,
    Watch,
    Claim,
    Serve,
    Release,
}

impl Phase {
    pub fn of(state: State) -> Phase {
        match state {
            State::Init | State::Stopped => Phase::Idle,
            State::Starting | State::Checking | State::Acquiring | State::Passive => Phase::Watch,
            State::Claiming | State::Announcing | State::StartingApp => Phase::Claim,
            State::Active | State::Draining | State::Restoring | State::RestartingApp => {
                Phase::Serve
            }
            State::StoppingApp | State::Releasing => Phase::Release,
        }
    }
}

impl Mode {
    pub fn phase(&self) -> Phase {
        match self {
            Mode::Idle => Phase::Idle,
            Mode::Watch(_) => Phase::Watch,
            Mode::Claim(_) => Phase::Claim,
            Mode::Serve(_) => Phase::Serve,
            Mode::Release(_) => Phase::Release,
        }
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

    /// Our application's recovery (serving when we hold nothing).
    pub fn recovery(&self) -> AppRecovery {
        self.serve().map_or(AppRecovery::Serving, |s| s.recovery)
    }
}
