//! What the peer is told: one function computes the heartbeat's state,
//! flags and term from the node's state and data; a heartbeat goes out
//! whenever that changes, and every interval.

use std::time::Instant;

use super::timer::{later, Timer};
use super::{Action, Core, State};
use crate::proto::heartbeat::{self, Flags, Heartbeat};

/// What this node tells the others, as one part of the core.
#[derive(Default)]
pub(super) struct Teller {
    /// Our term: raised above every term we know at each claim.
    pub term: u64,
    pub seq: u64,
    /// What our last heartbeat said; a new one goes out when this changes.
    pub told: Option<(heartbeat::WireState, Flags, u64)>,
    /// When the next periodic heartbeat is due: the schedule advances by
    /// whole intervals from here, so that a timer that fires a little late
    /// does not stretch every interval after it.
    pub heartbeat_due: Option<Instant>,
}

impl Core {
    /// What the peer is told: our state, flags and term, computed in one
    /// place from the state and its data.
    pub(super) fn wire_view(&self) -> (heartbeat::WireState, Flags, u64) {
        // A node that found the VIP on its NIC at start says it is claiming
        // until it has decided, so that the peer does not claim over an
        // address that is still in use.
        let state = match self.state() {
            State::Starting | State::Checking | State::Acquiring | State::Passive
                if self.vip.held =>
            {
                heartbeat::WireState::Claiming
            }
            state => state.wire(),
        };
        let watch = self.watch();
        let flags = Flags {
            // A holder restarting a failed application does not serve.
            app_ok: state == heartbeat::WireState::Active
                && self.probes.local.failing_since().is_none()
                && !self.machine.mode().recovery().failed(),
            data_ok: self.data_ok(),
            nic_ok: self.nic_ok(),
            maintenance: self.in_maintenance(),
            release_request: watch.is_some_and(|w| w.asking),
            deferring: watch.is_some_and(|w| w.yielding.defers()),
            disabled: self.admin.disabled,
            restarting: self.admin.restarting,
        };
        (state, flags, self.teller.term)
    }

    /// Tells the peer at once when what we would tell it changed: it must
    /// not learn of a claim, a release or a request one interval late.
    pub(super) fn tell_peer(&mut self, now: Instant) {
        if self.state() != State::Init && self.teller.told != Some(self.wire_view()) {
            self.send_heartbeat(now);
        }
    }

    /// Builds and queues a heartbeat now, and schedules the next one.
    pub(super) fn send_heartbeat(&mut self, now: Instant) {
        self.teller.seq += 1;
        let (state, flags, term) = self.wire_view();
        self.teller.told = Some((state, flags, term));
        let hb = Heartbeat {
            cluster_id: self.settings.cluster_id,
            node_id: self.settings.node_id,
            epoch: self.settings.epoch,
            seq: self.teller.seq,
            term,
            state,
            flags,
            config_checksum: self.settings.config_checksum,
        };
        self.actions.push_back(Action::SendHeartbeat(hb));
        for peer in self.peers.iter_mut() {
            peer.view.last_sent = Some(now);
        }
        if self.state() != State::Stopped {
            let interval = self.settings.heartbeat_interval;
            // On schedule (or a little late): the next one an interval
            // after this one was due. Early (the view changed) or very
            // late: an interval from now.
            let next = self
                .teller
                .heartbeat_due
                .map(|due| later(due, interval))
                .filter(|&next| next > now && next <= later(now, interval))
                .unwrap_or_else(|| later(now, interval));
            self.teller.heartbeat_due = Some(next);
            self.timers.set(Timer::Heartbeat, next);
        }
    }
}
