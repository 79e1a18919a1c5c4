//! What this node knows of its peer: its last valid heartbeat and when it
//! arrived, and the order that settles who keeps the VIP when both hold it.

use std::cmp::Ordering;
use std::time::{Duration, Instant};

use super::timer::later;
use super::{GoneSignal, Role};
use crate::proto::heartbeat::{Heartbeat, WireState};

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
    pub fn available(&self, now: Instant, timeout: Duration) -> bool {
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
    pub fn expires(&self, timeout: Duration) -> Option<Instant> {
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

    pub fn term(&self) -> u64 {
        self.last.map_or(0, |h| h.term)
    }

    /// Could the peer take the VIP over from us right now? Available,
    /// holding nothing (Passive), reaching its NIC and data service, and
    /// neither Disabled nor in maintenance.
    pub fn ready_to_take_over(&self, now: Instant, timeout: Duration) -> bool {
        let Some(hb) = self.last.filter(|_| self.available(now, timeout)) else {
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

/// A node's rank when both hold the VIP: higher term first, then the
/// primary, then the greater name. The lower one releases.
pub fn rank(term: u64, role: Role, name: &str) -> (u64, u8, &str) {
    (term, u8::from(role == Role::Primary), name)
}

/// Do we (`ours`) outrank the peer (`theirs`)?
pub fn outranks(ours: (u64, u8, &str), theirs: (u64, u8, &str)) -> bool {
    ours.cmp(&theirs) == Ordering::Greater
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_term_then_primary_then_name() {
        assert!(outranks(
            rank(3, Role::Secondary, "m2"),
            rank(2, Role::Primary, "m1")
        ));
        assert!(outranks(
            rank(3, Role::Primary, "m1"),
            rank(3, Role::Secondary, "m2")
        ));
        assert!(!outranks(
            rank(3, Role::Secondary, "m2"),
            rank(3, Role::Primary, "m1")
        ));
        assert!(outranks(
            rank(1, Role::Secondary, "b"),
            rank(1, Role::Secondary, "a")
        ));
    }
}
