//! What the core shows: its status snapshot (its own state, every other
//! node in one list, the holder, counters) for logs, the status table,
//! metrics, mail and the console. Nothing here is "the peer": a pair is a
//! list of one other node, and the node this one watches is marked in it.

use std::time::{Duration, Instant};

use super::{
    AppRecovery, Because, Blocker, Core, FailureCause, State, StatusWord, Target, Verdict,
};
use crate::proto::heartbeat::{self, Heartbeat};

/// A snapshot for logs and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub term: u64,
    /// The takeover is due but held back, and why (this node's NIC is down,
    /// or it cannot reach the data service).
    pub takeover_blocked: Option<Blocker>,
    /// This node handed the VIP over on purpose and waits for the peer to
    /// claim it: the countdown is only its fallback (claiming it back).
    pub handing_over: bool,
    /// The peer announced a different configuration checksum.
    pub config_mismatch: bool,
    pub disabled: bool,
    /// Maintenance by the administrator (kept across restarts).
    pub maintenance: bool,
    /// Maintenance by the application's own signal.
    pub maintenance_signal: bool,
    /// Who holds the VIP as far as this node knows, and since when.
    pub holder: Holder,
    pub holder_since: Option<Instant>,
    pub last_takeover: Option<Takeover>,
    pub counters: Counters,
    /// Each probe target's current verdict.
    pub probes: Vec<(Target, Verdict)>,
    /// Why this node's own application fails its probe (its URL, or one
    /// of the common addresses), while it does.
    pub local_failing: Option<String>,
    /// Since when the flap limit has stopped automatic moves.
    pub flapping_since: Option<Instant>,
    /// The claims that failed in a row, when the last one did (the next
    /// waits for its back-off).
    pub failed_claims: Option<super::flap::FailedClaims>,
    /// Automatic moves within the flap window.
    pub recent_moves: usize,
    /// What is being done about our own failed application.
    pub recovery: AppRecovery,
    /// The witness's lease, with a `[witness]`.
    pub lease: Option<super::LeaseStatus>,
    /// Every other node as this node hears it, in the configuration's
    /// order.
    pub peers: Vec<PeerStatus>,
}

/// One other node as this node hears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub id: u16,
    pub name: String,
    /// Is a valid heartbeat from it recent (and it not found gone)?
    pub available: bool,
    pub last_seen: Option<Instant>,
    /// Its last heartbeat (state, term, flags), if any.
    pub heartbeat: Option<Heartbeat>,
    /// The node this one watches (see [`super::Peers::choose`]): the
    /// holder, or the one it would take over from.
    pub watched: bool,
    /// Why it counts as failing, while it does (only the watched node is
    /// judged).
    pub failing: Option<FailureCause>,
    /// Time left before this node takes over from it, while counting
    /// down.
    pub takeover_in: Option<Duration>,
}

impl PeerStatus {
    /// Its status word, from its last heartbeat.
    pub fn word(&self) -> StatusWord {
        word_of(self.heartbeat.filter(|_| self.available))
    }
}

/// A peer's status word from its last heartbeat, if it is heard.
fn word_of(heard: Option<Heartbeat>) -> StatusWord {
    match heard {
        Some(hb) => match hb.state {
            heartbeat::WireState::Active => StatusWord::Active,
            heartbeat::WireState::Claiming => StatusWord::Claiming,
            heartbeat::WireState::Releasing => StatusWord::Releasing,
            heartbeat::WireState::Stopped => StatusWord::Unavailable,
            _ if hb.flags.maintenance => StatusWord::Maintenance,
            _ if hb.flags.disabled => StatusWord::Disabled,
            _ => StatusWord::Passive,
        },
        None => StatusWord::Unavailable,
    }
}

impl Status {
    /// This node's status: Active (and its steps), Passive, Disabled,
    /// Maintenance.
    pub fn word(&self) -> StatusWord {
        match self.state.status_word() {
            StatusWord::Active => StatusWord::Active,
            _ if self.maintenance || self.maintenance_signal => StatusWord::Maintenance,
            _ if self.disabled => StatusWord::Disabled,
            word => word,
        }
    }

    /// The node this one watches (there is one while the cluster has
    /// another node).
    pub fn watched(&self) -> Option<&PeerStatus> {
        self.peers.iter().find(|p| p.watched)
    }

    /// Why the watched node counts as failing, while it does.
    pub fn failure(&self) -> Option<FailureCause> {
        self.peers.iter().find_map(|p| p.failing)
    }

    /// Time left before this node takes over, while counting down.
    pub fn takeover_in(&self) -> Option<Duration> {
        self.peers.iter().find_map(|p| p.takeover_in)
    }

    /// The name of the node holding the VIP (`local` is this node's).
    pub fn holder_name<'a>(&'a self, local: &'a str) -> Option<&'a str> {
        match self.holder {
            Holder::Local => Some(local),
            Holder::Peer(id) => self
                .peers
                .iter()
                .find(|p| p.id == id)
                .map(|p| p.name.as_str()),
            Holder::Nobody => None,
        }
    }
}

/// Who holds the VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    Local,
    /// The peer with this heartbeat id.
    Peer(u16),
    Nobody,
}

/// The last takeover by this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Takeover {
    pub at: Instant,
    pub cause: Because,
    /// From the decision to the application confirmed healthy.
    pub duration: Duration,
}

/// Running totals since start, for status and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub takeovers: u64,
    pub releases: u64,
    /// Failing streaks of the watched peer, by cause.
    pub failures: Vec<(FailureCause, u64)>,
    /// Takeovers or failbacks held back by the dwell time.
    pub dwell_delays: u64,
}

impl Counters {
    pub(super) fn count_failure(&mut self, cause: FailureCause) {
        match self.failures.iter_mut().find(|(c, _)| *c == cause) {
            Some((_, n)) => *n += 1,
            None => self.failures.push((cause, 1)),
        }
    }
}

impl Core {
    pub fn status(&self, now: Instant) -> Status {
        let watching = matches!(
            self.state(),
            State::Passive | State::Starting | State::Checking | State::Acquiring
        );
        let due = match self.state() {
            State::Passive | State::Starting => self.takeover_due_at(now),
            // Looking at the VIP until the takeover falls due.
            State::Checking => self
                .watch()
                .and_then(|w| w.look.as_ref())
                .map(|l| l.decided()),
            _ => None,
        };
        let failing = watching.then(|| self.failure_cause(now)).flatten();
        let takeover_in = due.map(|at| at.saturating_duration_since(now));
        let watched = self.peers.watched().info.id;
        Status {
            state: self.state(),
            term: self.teller.term,
            // A node that cannot run its probes says so at once, not only
            // when a takeover falls due.
            takeover_blocked: self
                .watch()
                .and_then(|w| w.takeover_blocked.clone())
                .or_else(|| {
                    (!self.probes.not_probed.is_empty())
                        .then(|| self.takeover_blocker())
                        .flatten()
                })
                .or_else(|| watching.then(|| self.lease_blocker()).flatten()),
            handing_over: self.yielding() == super::mode::Yielding::HandingOver,
            config_mismatch: self.peers.config_mismatch,
            disabled: self.admin.disabled,
            maintenance: self.admin.maintenance,
            maintenance_signal: self.maintenance_signal(),
            holder: self.vip.holder.map_or(Holder::Nobody, |(h, _)| h),
            holder_since: self.vip.holder.map(|(_, since)| since),
            last_takeover: self.record.last_takeover.clone(),
            counters: self.record.counters.clone(),
            probes: vec![
                (Target::Peer, self.probes.peer_app.verdict()),
                (Target::Local, self.probes.local.verdict()),
                (Target::Data, self.probes.data.verdict()),
                (Target::Nic, self.probes.nic.verdict()),
            ],
            local_failing: (self.probes.local.verdict() == Verdict::Failing)
                .then(|| self.probes.local.last_error().map(str::to_owned))
                .flatten(),
            flapping_since: self.record.flaps.since(),
            failed_claims: self.record.flaps.failed_claims().cloned(),
            recent_moves: self.record.flaps.count(),
            recovery: self.machine.mode().recovery(),
            lease: self.lease_status(now),
            peers: self
                .peers
                .iter()
                .map(|p| PeerStatus {
                    id: p.info.id,
                    name: p.info.name.clone(),
                    available: p.view.available(now, self.settings.silence()),
                    last_seen: p.view.last_seen,
                    heartbeat: p.view.last,
                    watched: p.info.id == watched,
                    failing: failing.filter(|_| p.info.id == watched),
                    takeover_in: takeover_in.filter(|_| p.info.id == watched),
                })
                .collect(),
        }
    }
}
