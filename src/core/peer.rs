//! What this node knows of its peers: each one's last valid heartbeat and
//! when it arrived; which of them it watches (see [`Peers::choose`]); and
//! the order that settles who keeps the VIP when two hold it.

use std::cmp::{Ordering, Reverse};
use std::time::{Duration, Instant};

use super::timer::later;
use crate::proto::heartbeat::{Heartbeat, WireState};

/// Who another node is, as the configuration says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub name: String,
    /// Its heartbeat id (its index in the configuration).
    pub id: u16,
    /// Its place in the order of preference (0: the primary).
    pub preference: u8,
}

/// How this node learnt that the peer's daemon is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoneSignal {
    /// No valid heartbeat for the peer timeout.
    Silent(std::time::Duration),
    /// Its host refused our heartbeat (ICMP port unreachable): nothing
    /// listens on the heartbeat port, the daemon is not running.
    Refused,
    /// `missed` heartbeats missed in a row, and its application refuses
    /// connections: two independent signals.
    MissedAndAppRefuses { missed: u32 },
}

/// One other node: who it is and what we know of it.
#[derive(Debug, Clone)]
pub struct Peer {
    pub info: PeerInfo,
    pub view: PeerView,
}

/// Every other node, and the one this node watches: the peer it would
/// take the VIP over from, or hand it to. A pair watches its one peer;
/// every decision about "the peer" is about the watched one, and the
/// others only defer a claim to a more preferred node (see
/// [`Peers::outranking`]).
#[derive(Debug, Clone)]
pub struct Peers {
    list: Vec<Peer>,
    watched: usize,
    /// Since when the holding peer has reported its application or data
    /// service down, and which.
    pub(super) reported_down: Option<(std::time::Instant, FailureCause)>,
    /// Was the watched peer available at the last decision?
    pub(super) was_available: bool,
    /// The watched peer announces a different configuration.
    pub(super) config_mismatch: bool,
}

impl Peers {
    /// Watching the most preferred peer first.
    pub fn new(infos: &[PeerInfo]) -> Peers {
        let list: Vec<Peer> = infos
            .iter()
            .map(|info| Peer {
                info: info.clone(),
                view: PeerView::default(),
            })
            .collect();
        let watched = (0..list.len())
            .min_by_key(|&i| list[i].info.preference)
            .unwrap_or(0);
        Peers {
            list,
            watched,
            reported_down: None,
            was_available: false,
            config_mismatch: false,
        }
    }

    /// The watched peer. (A configuration always has at least one peer;
    /// with none, a core built by hand sees an empty, silent one.)
    pub fn watched(&self) -> &Peer {
        self.list.get(self.watched).unwrap_or(&NOBODY)
    }

    pub fn watched_mut(&mut self) -> Option<&mut Peer> {
        self.list.get_mut(self.watched)
    }

    pub fn by_id(&self, id: u16) -> Option<&Peer> {
        self.list.iter().find(|p| p.info.id == id)
    }

    pub fn by_id_mut(&mut self, id: u16) -> Option<&mut Peer> {
        self.list.iter_mut().find(|p| p.info.id == id)
    }

    pub fn by_name(&self, name: &str) -> Option<&Peer> {
        self.list.iter().find(|p| p.info.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Peer> {
        self.list.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Peer> {
        self.list.iter_mut()
    }

    /// Watches peer `id` from now on.
    pub fn watch(&mut self, id: u16) {
        if let Some(i) = self.list.iter().position(|p| p.info.id == id) {
            self.watched = i;
        }
    }

    /// Which peer to watch now (its id):
    /// 1. a peer heard holding the VIP (the highest term, then the most
    ///    preferred, if several say so): the one to take over from;
    /// 2. else the watched peer, if it held the VIP when it went silent
    ///    and we do not hold it: its failure is what a takeover counts
    ///    the grace period from, until another node holds;
    /// 3. else the most preferred peer that is heard and ready to take
    ///    over (the one a handover or failback goes to), else the most
    ///    preferred one heard, else the watched one.
    pub fn choose(&self, now: Instant, timeout: Silence, we_hold: bool) -> u16 {
        let heard = |p: &&Peer| p.view.available(now, timeout);
        let holder = self
            .list
            .iter()
            .filter(heard)
            .filter(|p| p.view.holding())
            .max_by_key(|p| (p.view.term(), Reverse(p.info.preference)));
        if let Some(p) = holder {
            return p.info.id;
        }
        let current = self.watched();
        if !we_hold && current.view.holding() && !current.view.available(now, timeout) {
            return current.info.id;
        }
        let most_preferred = |ready: bool| {
            self.list
                .iter()
                .filter(heard)
                .filter(|p| !ready || p.view.ready_to_take_over(now, timeout))
                .min_by_key(|p| p.info.preference)
        };
        most_preferred(true)
            .or_else(|| most_preferred(false))
            .map_or(current.info.id, |p| p.info.id)
    }

    /// Does a heard peer that holds nothing ask for the VIP (its release
    /// request)? In a pair, the one peer; beyond, any of them: the
    /// preferred node then lets it claim.
    pub fn asking(&self, now: Instant, timeout: Silence) -> bool {
        self.list.iter().any(|p| {
            p.view.available(now, timeout)
                && !p.view.holding()
                && p.view.last.is_some_and(|h| h.flags.release_request)
        })
    }

    /// How many peers other than the watched one are heard, ready to take
    /// over or still starting, not deferring (handing over, standing by) and more preferred
    /// than `preference` (all of them: `u8::MAX`): a claim waits one step
    /// for each, so that the most preferred healthy node wins the lease.
    /// (A pair has no other peer: it never waits here.)
    pub fn outranking(&self, preference: u8, now: Instant, timeout: Silence) -> u32 {
        let n = self
            .list
            .iter()
            .enumerate()
            .filter(|(i, p)| {
                *i != self.watched
                    && p.info.preference < preference
                    && (p.view.ready_to_take_over(now, timeout) || p.view.starting(now, timeout))
                    && !p.view.last.is_some_and(|h| h.flags.deferring)
            })
            .count();
        n as u32
    }
}

/// How long a peer may be silent before it counts as gone: the peer
/// timeout, or, after a heartbeat that said its daemon re-executes itself,
/// the longer restart allowance (a bounded wait: a restart that does not
/// come back within it is a failure like any other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Silence {
    pub timeout: Duration,
    pub restart: Duration,
}

impl Silence {
    /// The bound for a peer whose last word was `view`'s.
    pub fn for_view(self, view: &PeerView) -> Duration {
        if view.restarting() {
            self.timeout.max(self.restart)
        } else {
            self.timeout
        }
    }
}

/// What an absent peer looks like: never heard.
static NOBODY: Peer = Peer {
    info: PeerInfo {
        name: String::new(),
        id: u16::MAX,
        preference: u8::MAX,
    },
    view: PeerView {
        last_seen: None,
        last: None,
        gone: None,
        last_sent: None,
    },
};

#[derive(Debug, Clone, Default)]
pub struct PeerView {
    /// When the last valid heartbeat arrived.
    pub last_seen: Option<Instant>,
    /// The last valid heartbeat.
    pub last: Option<Heartbeat>,
    /// When, and on which signal other than its timeout, the peer was
    /// found gone (its host refused a heartbeat; heartbeats missed while
    /// its application refuses). Holds until it speaks again.
    pub gone: Option<(Instant, GoneSignal)>,
    /// When we last sent it a heartbeat: a refusal answers that one.
    pub last_sent: Option<Instant>,
}

impl PeerView {
    /// Has a valid heartbeat arrived within `timeout`, and was the peer
    /// not found gone since?
    pub fn available(&self, now: Instant, silence: Silence) -> bool {
        let timeout = silence.for_view(self);
        self.last_seen.is_some_and(|t| now < later(t, timeout)) && self.gone_by().is_none()
    }

    /// Its host refused our last heartbeat at `now`, unless the peer spoke
    /// after we sent it (then the refusal is about an earlier run of its
    /// daemon, or a restart since, and its word is newer).
    pub fn refused(&mut self, now: Instant) {
        if self.restarting() {
            // Its daemon said it re-executes itself: the port is closed
            // until the new process opens it. Only its timeout counts.
            return;
        }
        let stale =
            matches!((self.last_seen, self.last_sent), (Some(seen), Some(sent)) if seen >= sent);
        if !stale {
            self.gone = Some((now, GoneSignal::Refused));
        }
    }

    /// The signal that found the peer gone after its last heartbeat.
    pub fn gone_by(&self) -> Option<GoneSignal> {
        let (at, signal) = self.gone?;
        self.last_seen
            .is_none_or(|seen| at > seen)
            .then_some(signal)
    }

    /// The instant the peer becomes Unavailable if nothing more arrives.
    pub fn expires(&self, silence: Silence) -> Option<Instant> {
        let timeout = silence.for_view(self);
        self.last_seen.map(|t| later(t, timeout))
    }

    /// The peer's last reported state, if it ever reported one.
    pub fn state(&self) -> Option<WireState> {
        self.last.map(|h| h.state)
    }

    /// Did its last heartbeat say its daemon is re-executing itself?
    pub fn restarting(&self) -> bool {
        self.last.is_some_and(|h| h.flags.restarting)
    }

    pub fn holding(&self) -> bool {
        self.state().is_some_and(WireState::holding)
    }

    /// Heard, and still in its start-up window: it will decide soon (a
    /// cold start of several nodes), so a less preferred node gives it a
    /// deferral step first. (The window is bounded, so is the wait.)
    pub fn starting(&self, now: Instant, silence: Silence) -> bool {
        self.available(now, silence) && self.state() == Some(WireState::Starting)
    }

    pub fn term(&self) -> u64 {
        self.last.map_or(0, |h| h.term)
    }

    /// Could the peer take the VIP over from us right now? Available,
    /// holding nothing (Passive), reaching its NIC and data service, and
    /// neither Disabled nor in maintenance.
    pub fn ready_to_take_over(&self, now: Instant, silence: Silence) -> bool {
        let Some(hb) = self.last.filter(|_| self.available(now, silence)) else {
            return false;
        };
        let f = hb.flags;
        hb.state == WireState::Passive && f.nic_ok && f.data_ok && !f.disabled && !f.maintenance
    }
}

/// Why the watched peer counts as failing, in the four causes the
/// products understudy replaces tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCause {
    /// No heartbeat and no answer from its application.
    HostOrNetwork,
    /// Its application is down (it says so, or it does not answer us).
    WebService,
    /// Its application is up but it cannot reach the data service.
    DataService,
    /// Its administrator put it in maintenance mode.
    Maintenance,
}

/// What a peer's heartbeat says of its own failure: maintenance, or
/// (while it holds the VIP) its application or data service down.
pub fn reported_down(hb: Heartbeat) -> Option<FailureCause> {
    match (hb.state, hb.flags) {
        (_, f) if f.maintenance => Some(FailureCause::Maintenance),
        (WireState::Active, f) if !f.app_ok => Some(FailureCause::WebService),
        (WireState::Active, f) if !f.data_ok => Some(FailureCause::DataService),
        _ => None,
    }
}

/// A node's rank when two hold the VIP: higher term first, then the more
/// preferred (the primary first), then the greater name. The lower one
/// releases.
pub fn rank(term: u64, preference: u8, name: &str) -> (u64, Reverse<u8>, &str) {
    (term, Reverse(preference), name)
}

/// Do we (`ours`) outrank the peer (`theirs`)?
pub fn outranks(ours: (u64, Reverse<u8>, &str), theirs: (u64, Reverse<u8>, &str)) -> bool {
    ours.cmp(&theirs) == Ordering::Greater
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_term_then_primary_then_name() {
        assert!(outranks(rank(3, 1, "m2"), rank(2, 0, "m1")));
        assert!(outranks(rank(3, 0, "m1"), rank(3, 1, "m2")));
        assert!(!outranks(rank(3, 1, "m2"), rank(3, 0, "m1")));
        assert!(outranks(rank(3, 1, "m2"), rank(3, 2, "m3")));
        assert!(outranks(rank(1, 1, "b"), rank(1, 1, "a")));
    }
}
