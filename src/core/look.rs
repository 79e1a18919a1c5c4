//! The look at the VIP before a claim without the peer's word (state
//! Checking): an ARP probe (RFC 5227 §2.1) and a GET through the VIP.
//!
//! A takeover's look runs *while the peer goes silent*: it starts once a
//! heartbeat is overdue (or one window before the takeover falls due, if
//! that is later) and lasts until the takeover falls due, so that the
//! answer is known at that instant and the claim follows at once, instead
//! of a whole window later. The safety is the one of a look made after the
//! silence: a host that answers for the VIP during the look stops or shapes
//! the claim, a peer that speaks during it cancels it, and everything the
//! takeover depends on (the peer's failure, this node's NIC and data
//! service, an administrator's word) is checked again when it falls due.

use std::time::Instant;

use super::mode::{Ending, Look, Yielding};
use super::timer::later;
use super::{Cause, Core, EventKind, Outcome, PeerNote, Promotion, State};
use crate::proto::heartbeat::WireState;

impl Core {
    /// When a takeover without the peer's word falls due if the peer stays
    /// silent: once the peer is gone (now, or when its heartbeats run out)
    /// and its application has failed for the grace period. `None` while
    /// its application answers, or while this node stands by.
    pub(super) fn check_due(&self, now: Instant) -> Option<Instant> {
        if self.admin.disabled || self.in_maintenance() {
            return None;
        }
        let since = match self.probes.peer_app.failing_since() {
            Some(since) => since,
            None => self.silent_non_holder_since(now)?,
        };
        let not_before = self.watch().and_then(|w| w.vip_check_not_before);
        let due = later(since, self.settings.grace).max(not_before.unwrap_or(since));
        let due = if self.peer_available(now) {
            due.max(self.peer_gone_at()?)
        } else {
            due
        };
        // After a failed claim, the look (and the claim after it) waits
        // for the back-off too.
        let due = self
            .record
            .flaps
            .claim_backoff(now)
            .map_or(due, |until| due.max(until));
        Some(self.behind_a_silent_holder(now, self.deferred(now, due)))
    }

    /// Since when the watched peer has been gone, if its last word was that
    /// it was giving the VIP up or held nothing (releasing, standing by):
    /// then it serves nobody through the VIP, whatever its own URL answers
    /// (a daemon that died while releasing leaves an application it did
    /// not get to stop), and the look decides. The simulation found three
    /// nodes waiting for ever on such a peer.
    fn silent_non_holder_since(&self, now: Instant) -> Option<Instant> {
        let peer = self.peer();
        let serving = |s: WireState| matches!(s, WireState::Claiming | WireState::Active);
        let held_nothing = peer.last.is_some_and(|h| !serving(h.state));
        // A node that handed the VIP over on purpose (demote) waits for
        // the peer it handed it to, as before.
        if self.peer_available(now) || !held_nothing || self.yielding() == Yielding::HandingOver {
            return None;
        }
        peer.expires(self.settings.silence())
    }

    /// With a witness, a node behind more preferred ready peers does not
    /// ask for the lease of the silent holder it watches before that lease
    /// has surely run out, plus one deferral step per node ahead: the most
    /// preferred, asking all along, gets it first (a pair: unchanged).
    fn behind_a_silent_holder(&self, now: Instant, due: Instant) -> Instant {
        let timeout = self.settings.silence();
        let ahead = self
            .peers
            .outranking(self.settings.preference, now, timeout);
        let ends = self.silent_holder_lease_end(self.peers.watched(), now);
        match ends.filter(|_| ahead > 0) {
            Some(ends) => due.max(later(ends, self.defer_step().saturating_mul(ahead))),
            None => due,
        }
    }

    /// Starts a look at the VIP (state Checking). `due`: the takeover's
    /// instant (the look lasts until then); `None` at start-up.
    pub(super) fn look(&mut self, now: Instant, due: Option<Instant>, cause: Cause) {
        self.with_watch(|w| {
            w.look = Some(Box::new(Look {
                began: now,
                due,
                cause: cause.clone(),
                answer: None,
                fencing: false,
            }))
        });
        self.change_state(now, State::Checking, cause);
    }

    /// Starts the look ahead of a takeover once the peer goes silent (a
    /// heartbeat is overdue by half an interval, or the peer is gone) and
    /// the takeover falls due within one look window. Wakes up when that
    /// will be. Returns whether it started one.
    pub(super) fn look_ahead(&mut self, now: Instant) -> bool {
        let standing_by = self.promotion().is_some() || self.takeover_blocker().is_some();
        let (Some(due), Some(seen)) = (self.check_due(now), self.peer().last_seen) else {
            return false;
        };
        if standing_by || due <= now {
            // Nothing to look ahead of: the plan acts (or holds back) now.
            return false;
        }
        let available = self.peer_available(now);
        if available && !self.peer().holding() {
            // A live peer that holds nothing: the VIP is free by its word.
            return false;
        }
        let interval = self.settings.heartbeat_interval;
        let going = if available {
            later(seen, interval + interval / 2)
        } else {
            now
        };
        let start = going.max(due.checked_sub(self.settings.look_window).unwrap_or(due));
        if now < start {
            self.wake(start);
            return false;
        }
        let failure = self.peer_failure_now(now);
        PeerNote::LookingAhead {
            left: due.saturating_duration_since(now),
        }
        .log();
        self.look(now, Some(due), Cause::PeerFailed(failure));
        true
    }

    pub(super) fn on_vip_checked(
        &mut self,
        now: Instant,
        holder: Option<String>,
        via_vip: Outcome,
    ) {
        if self.admin.shutdown {
            if self.vip.held {
                self.release(now, Cause::Shutdown, Ending::Exit, true);
            } else {
                self.change_state(now, State::Stopped, Cause::Shutdown);
            }
            return;
        }
        self.with_watch(|w| {
            if let Some(look) = &mut w.look {
                look.answer = Some((holder, via_vip));
            }
        });
    }

    /// In Checking: once the answer is in and the takeover is due, claim
    /// (or not) on the answer; go back to Passive if the takeover is no
    /// longer wanted.
    pub(super) fn decide_checking(&mut self, now: Instant) {
        let Some(look) = self.watch().and_then(|w| w.look.clone()) else {
            return;
        };
        let Some((holder, via_vip)) = look.answer.filter(|_| !look.fencing) else {
            return;
        };
        if look.due.is_none() {
            self.act_on_answer(now, holder, via_vip);
            return;
        }
        // The look was made because the peer went silent. If it spoke
        // since, its word decides, not the look: an Active peer heard
        // while we listened holds the VIP.
        if self.peer().last_seen.is_some_and(|seen| seen >= look.began) {
            PeerNote::PeerReportedDuringLook {
                peer_state: self.peer().state(),
            }
            .log();
            self.back_to_passive(now, Cause::PeerHeard);
            return;
        }
        let Some(due) = self.check_due(now) else {
            self.back_to_passive(now, Cause::NoLongerDue);
            return;
        };
        if now < due {
            self.wake(due);
            return;
        }
        if self.takeover_blocker().is_some() && self.promotion() != Some(Promotion::Forced) {
            self.back_to_passive(now, Cause::NoLongerDue);
            return;
        }
        // Judged when the look began, the peer may have been failing only
        // in its application; say what it is now.
        let cause = Cause::PeerFailed(self.peer_failure_now(now));
        self.with_watch(|w| {
            if let Some(look) = &mut w.look {
                look.cause = cause;
            }
        });
        self.act_on_answer(now, holder, via_vip);
    }

    fn back_to_passive(&mut self, now: Instant, cause: Cause) {
        self.change_state(now, State::Passive, cause);
        self.decide_passive(now);
    }

    /// Claims, or not, on what the look found.
    fn act_on_answer(&mut self, now: Instant, holder: Option<String>, via_vip: Outcome) {
        // At start-up, a heartbeat during the look decides instead.
        if self.peer_available(now) {
            PeerNote::PeerReportedDuringLook {
                peer_state: self.peer().state(),
            }
            .log();
            self.change_state(now, State::Passive, Cause::PeerHeard);
            return;
        }
        // With the VIP on our own NIC, a GET through it reaches ourselves,
        // so only the ARP answer of another host tells anything.
        match (holder, via_vip, self.vip.held) {
            (Some(mac), _, true) => {
                self.release(now, Cause::OtherHolder(mac), Ending::Passive, true)
            }
            (None, _, true) => self.claim(now, Cause::Resume),
            (_, Ok(()), false) => {
                PeerNote::ServiceUpViaVip.log();
                let next_look = later(now, self.settings.interval);
                self.with_watch(|w| w.vip_check_not_before = Some(next_look));
                self.change_state(now, State::Passive, Cause::ServiceUpViaVip);
            }
            (Some(mac), Err(why), false) => {
                PeerNote::ConflictClaiming {
                    mac: &mac,
                    why: &why,
                    witness: self.settings.witness.is_some(),
                    quiet: self.retrying_held_back(),
                }
                .log();
                self.notify(EventKind::Conflict, Cause::Conflict(mac.clone()), None);
                self.fence_then_claim(now, Cause::Conflict(mac));
            }
            (None, Err(_), false) => self.fence_then_claim(now, Cause::VipFree),
        }
    }
}
