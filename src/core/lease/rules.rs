//! The lease's rules: when the core asks the witness, what a reply or a
//! lapse does to the state, and what status shows (the types are in
//! [`super`]).

use std::time::{Duration, Instant};

use super::super::mode::Ending;
use super::super::timer::{later, Timer};
use super::super::{Action, Blocker, Cause, Core, LeaseNote, Peer, State};
use super::{LeaseAsk, LeaseRefusal, LeaseReply, LeaseSettings, LeaseStatus, OnLoss};

/// The first wait before asking again while the peer hands the lease back.
const HANDBACK_RETRY: Duration = Duration::from_millis(10);

impl Core {
    fn witness(&self) -> Option<LeaseSettings> {
        self.settings.witness
    }

    /// Claims: at once without a witness or with a lease held; otherwise
    /// asks for the lease first (state Acquiring).
    pub(in crate::core) fn claim(&mut self, now: Instant, cause: Cause) {
        if self.witness().is_none() || self.lease_held(now) {
            self.change_state(now, State::Claiming, cause);
            return;
        }
        self.change_state(now, State::Acquiring, cause.clone());
        self.with_watch(|w| w.acquiring = Some((now, cause)));
        self.ask_lease(now, LeaseAsk::Acquire);
    }

    fn lease_held(&self, now: Instant) -> bool {
        self.lease.held.is_some_and(|(_, until)| now < until)
    }

    /// Asks to acquire or renew, unless an ask is already out.
    fn ask_lease(&mut self, now: Instant, ask: LeaseAsk) {
        if self.lease.asked.is_none() {
            self.lease.asked = Some(now);
            self.actions.push_back(Action::Lease(ask));
        }
    }

    /// The witness answered our acquire or renew.
    pub(in crate::core) fn on_lease(&mut self, now: Instant, reply: LeaseReply) {
        let (Some(settings), Some(asked)) = (self.witness(), self.lease.asked.take()) else {
            LeaseNote::Unasked { reply: &reply }.log();
            return;
        };
        match reply {
            LeaseReply::Granted { .. } if later(asked, settings.held_for()) <= now => {
                // Answered so late that the lease would already have ended
                // here: it does not count.
                let why = "the witness answered after the lease would have ended".to_owned();
                self.on_refused(now, LeaseRefusal::Unreachable(why), settings)
            }
            LeaseReply::Granted { term } => {
                let until = later(asked, settings.held_for());
                let first = self.lease.held.is_none();
                self.lease.held = Some((term, until));
                self.lease.last_term = Some(term);
                self.lease.refused = None;
                self.lease.handback_asks = 0;
                self.lease.lapsed = false;
                self.lease.interrupted = false;
                if std::mem::take(&mut self.lease.kept) || first {
                    LeaseNote::Granted { term }.log();
                }
                self.timers.set(Timer::LeaseEnds, until);
                self.timers
                    .set(Timer::LeaseRenew, later(asked, settings.renew_every()));
                self.on_granted(now, term);
            }
            LeaseReply::HeldBy { holder, term } => {
                let refusal = LeaseRefusal::HeldBy { holder, term };
                self.on_refused(now, refusal, settings);
            }
            LeaseReply::Failed(why) => {
                self.on_refused(now, LeaseRefusal::Unreachable(why), settings)
            }
        }
    }

    /// A granted lease: claim with it, serve on with it, or hand it back.
    fn on_granted(&mut self, now: Instant, term: u64) {
        match self.state() {
            // The peer holds the VIP again (it came back while we asked):
            // never claim over a live holder.
            State::Acquiring if self.peer_available(now) && self.peer().holding() => {
                self.change_state(now, State::Passive, Cause::PeerHeard);
                self.give_back_lease();
            }
            // Disabled or put in maintenance while it asked.
            State::Acquiring if self.admin.disabled || self.in_maintenance() => {
                self.change_state(now, State::Passive, Cause::NoLongerDue);
                self.give_back_lease();
            }
            State::Acquiring => {
                self.teller.term = term;
                let cause = self
                    .watch()
                    .and_then(|w| w.acquiring.clone())
                    .map(|(_, c)| c);
                self.change_state(now, State::Claiming, cause.unwrap_or(Cause::NoHolder));
            }
            _ if self.may_hold_vip() => self.teller.term = term,
            // No longer wanted (a shutdown, the peer came back).
            _ => self.give_back_lease(),
        }
    }

    /// When the lease we hold was last asked for (acquired or renewed).
    pub(in crate::core) fn lease_asked_at(&self) -> Option<Instant> {
        let (settings, (_, until)) = (self.witness()?, self.lease.held?);
        until.checked_sub(settings.held_for())
    }

    /// Serving on after the lease ran out (`on_loss = "keep"`).
    pub(in crate::core) fn lease_kept(&self) -> bool {
        self.lease.kept
    }

    /// Is the VIP (about to be) on our NIC: from a claim to a release?
    pub(in crate::core) fn may_hold_vip(&self) -> bool {
        self.machine.mode().may_hold_vip()
    }

    /// Held by a peer gone silent (its host died): the most preferred
    /// ready node asks again every heartbeat interval (it wins the lease
    /// as soon as it is free); every node behind it no sooner than one
    /// deferral step per node ahead after the silent holder's lease has
    /// surely run out (see [`Self::silent_holder_lease_end`]), so that the
    /// most preferred wins. For one lease past that end only: a holder
    /// still renewing lives (a partition). `None` otherwise.
    fn after_silent_holder(
        &self,
        now: Instant,
        refusal: &LeaseRefusal,
        settings: LeaseSettings,
    ) -> Option<Instant> {
        let LeaseRefusal::HeldBy { holder, .. } = refusal else {
            return None;
        };
        let ends = self.silent_holder_lease_end(self.peers.by_name(holder)?, now)?;
        let ahead = self
            .peers
            .outranking(self.settings.preference, now, self.settings.silence());
        let next = if ahead == 0 {
            later(now, self.settings.heartbeat_interval)
        } else {
            let ours = later(ends, self.defer_step().saturating_mul(ahead));
            later(now, settings.renew_every()).max(ours)
        };
        (next < later(ends, settings.length)).then_some(next)
    }

    /// When the lease of `peer`, silent since it last held the VIP, has
    /// surely run out at the witness: a lease after its last heartbeat, an
    /// interval more (it may have renewed just after sending it), and a
    /// renewal period more (the witness may take that long to let go of
    /// an expired lease: etcd sweeps every 500 ms). `None` while it is heard,
    /// or without a witness.
    pub(in crate::core) fn silent_holder_lease_end(
        &self,
        peer: &Peer,
        now: Instant,
    ) -> Option<Instant> {
        let settings = self.settings.witness?;
        let silent = !peer.view.available(now, self.settings.silence());
        let slack = self.settings.heartbeat_interval + settings.renew_every();
        let last = peer
            .view
            .last_seen
            .filter(|_| silent && peer.view.holding())?;
        Some(later(last, settings.length + slack))
    }

    fn on_refused(&mut self, now: Instant, refusal: LeaseRefusal, settings: LeaseSettings) {
        if !self
            .lease
            .refused
            .as_ref()
            .is_some_and(|(r, _)| r.same_as(&refusal))
        {
            LeaseNote::Refused { refusal: &refusal }.log();
        }
        // A peer that says it holds nothing is handing the lease back (its
        // release may reach the witness just after our ask): ask again at
        // once, backing off from 10 ms, rather than a quarter lease later.
        let handing_back = matches!(&refusal, LeaseRefusal::HeldBy { holder, .. }
            if self.peers.by_name(holder).is_some_and(|p| !p.view.holding()));
        let wait = if handing_back {
            let shift = self.lease.handback_asks.min(16);
            self.lease.handback_asks += 1;
            HANDBACK_RETRY
                .saturating_mul(1 << shift)
                .min(settings.renew_every())
        } else {
            self.lease.handback_asks = 0;
            settings.renew_every()
        };
        let retry = self
            .after_silent_holder(now, &refusal, settings)
            .unwrap_or_else(|| later(now, wait));
        self.lease.refused = Some((refusal.clone(), Some(retry)));
        self.wake(retry);
        let ours = self.lease.held.is_some() || self.lease.kept;
        match (self.state(), refusal) {
            (State::Acquiring, _) => self.change_state(now, State::Passive, Cause::LeaseRefused),
            // Someone else holds what we thought ours: it ran out at the
            // witness. Stop serving now.
            (_, LeaseRefusal::HeldBy { .. }) if ours => {
                self.lease.held = None;
                self.lease.kept = false;
                self.lease_lost(now, false);
            }
            // Unreachable while the lease lasts: renew again soon (a short
            // outage of the witness must not cost the lease); its end
            // decides otherwise (LeaseEnds).
            _ if self.lease.held.is_some() => {
                let soon = later(now, settings.renew_every() / 2);
                self.timers.set(Timer::LeaseRenew, soon);
            }
            _ => {}
        }
    }

    /// The lease ran out (or was found taken): `on_loss` decides, unless
    /// it was taken, which leaves nothing to keep.
    fn lease_lost(&mut self, now: Instant, may_keep: bool) {
        let keep = may_keep
            && self.witness().is_some_and(|s| s.on_loss == OnLoss::Keep)
            && self.may_keep_unleased(now);
        LeaseNote::Lost { kept: keep }.log();
        if keep {
            self.lease.kept = true;
        } else {
            self.lease.lapsed = true;
            self.notify(super::super::EventKind::LeaseLost, Cause::LeaseLost, None);
        }
    }

    /// The lease's timers: renew it, or see it run out.
    pub(in crate::core) fn on_lease_timer(&mut self, now: Instant, timer: Timer) {
        let Some((term, until)) = self.lease.held else {
            return;
        };
        match timer {
            Timer::LeaseRenew if self.lease.asked.is_some() => {
                // The last ask is still out; look again shortly.
                self.timers.set(
                    Timer::LeaseRenew,
                    later(now, self.settings.heartbeat_interval),
                );
            }
            Timer::LeaseRenew => self.ask_lease(now, LeaseAsk::Renew { term }),
            Timer::LeaseEnds if now >= until => {
                self.lease.held = None;
                self.timers.stop(Timer::LeaseRenew);
                if self.may_hold_vip() {
                    self.lease_lost(now, true);
                }
            }
            _ => {}
        }
    }

    /// After every input: retry when due, give back a lease no claim
    /// needs, and fence while the lease is lost.
    pub(in crate::core) fn decide_lease(&mut self, now: Instant) {
        if self.witness().is_none() {
            return;
        }
        if let Some((_, Some(retry))) = &self.lease.refused {
            if now >= *retry {
                self.lease.refused.as_mut().map(|(_, r)| r.take());
            } else {
                self.wake(*retry);
            }
        }
        if self.lease.kept {
            match self.keep_until() {
                Some(until) if self.may_keep_unleased(now) => self.wake(until),
                // Kept while the peer was heard; now it may not hear us
                // and take the lease: stop serving.
                _ => {
                    self.lease.kept = false;
                    self.lease_lost(now, false);
                }
            }
        }
        if self.lease.kept && self.lease.refused.as_ref().is_none_or(|(_, r)| r.is_none()) {
            self.ask_lease(now, LeaseAsk::Acquire);
        }
        if self.state() == State::Acquiring
            && self.vip.held
            && self.peer_available(now)
            && self.peer().holding()
        {
            // Asking for the lease over a VIP found at start, and the peer
            // holds it: ours is stale, whatever the witness will say.
            self.release(now, Cause::StaleVip, Ending::Passive, true);
            return;
        }
        let watching = !self.machine.mode().may_hold_vip();
        if watching && self.state() != State::Acquiring {
            if self.lease.held.is_some() {
                self.give_back_lease();
            }
            // A VIP found on our NIC at start may stay only with the lease.
            if self.vip.held && self.lease_blocker().is_some() && self.state() == State::Passive {
                self.release(now, Cause::StaleVip, Ending::Passive, true);
                return;
            }
        }
        if self.lease.lapsed {
            self.fence(now);
        }
    }

    /// May a VIP whose lease ran out stay (`on_loss = "keep"`)? Only while
    /// the peer is heard, before [`Self::keep_until`], and while our own
    /// application serves: a peer that misses two heartbeats from us while
    /// our application refuses counts us gone at once, without its peer
    /// timeout (the simulation found this with packet loss).
    fn may_keep_unleased(&self, now: Instant) -> bool {
        let app_serves =
            self.probes.local.failing_since().is_none() && !self.machine.mode().recovery().failed();
        self.peer_available(now) && app_serves && self.keep_until().is_some_and(|until| now < until)
    }

    /// How long a kept VIP may stay without news from the peer. The peer
    /// may claim once it has not heard us for its peer timeout; the last
    /// heartbeat it heard from us may be a heartbeat interval older than
    /// the last we heard from it (and it may decide at once, the look
    /// having run ahead): stop that much earlier, with half an interval to
    /// spare for the wire and the removal.
    fn keep_until(&self) -> Option<Instant> {
        let hb = self.settings.heartbeat_interval;
        let slack = hb.saturating_add(hb / 2);
        let last = self.peer().last_seen?;
        Some(later(
            last,
            self.settings.peer_timeout.saturating_sub(slack),
        ))
    }

    /// Stops serving because the lease is lost: a release from Active (the
    /// VIP first, see [`Core::release`]), or the wait in flight cut short
    /// so that its completion leads to one.
    fn fence(&mut self, now: Instant) {
        match self.state() {
            State::Active => {
                let ending = if self.peer_available(now) {
                    Ending::HandOver
                } else {
                    Ending::Passive
                };
                self.release(now, Cause::LeaseLost, ending, true);
            }
            State::StartingApp | State::RestartingApp | State::Draining
                if !self.lease.interrupted =>
            {
                self.lease.interrupted = true;
                self.machine.set_yield_to(Cause::LeaseLost);
                self.actions.push_back(Action::Interrupt);
            }
            // A step in flight; its completion comes back here.
            _ => {}
        }
    }

    /// Is the lease lost while we may hold the VIP (a release then takes
    /// the VIP off first)?
    pub(in crate::core) fn lease_lapsed(&self) -> bool {
        self.lease.lapsed
    }

    /// The VIP is off our NIC: hand the lease back (if it is still ours at
    /// the witness, the peer gets it at once).
    pub(in crate::core) fn give_back_lease(&mut self) {
        self.lease.held = None;
        self.lease.lapsed = false;
        self.lease.kept = false;
        self.lease.interrupted = false;
        self.timers.stop(Timer::LeaseRenew);
        self.timers.stop(Timer::LeaseEnds);
        if let Some(term) = self.lease.last_term.take() {
            self.actions
                .push_back(Action::Lease(LeaseAsk::Release { term }));
        }
    }

    /// Why a takeover waits for the witness, until the next ask.
    pub(in crate::core) fn lease_blocker(&self) -> Option<Blocker> {
        match &self.lease.refused {
            Some((refusal, Some(_))) => Some(Blocker::Lease(refusal.clone())),
            _ => None,
        }
    }

    pub(in crate::core) fn lease_status(&self, now: Instant) -> Option<LeaseStatus> {
        self.witness()?;
        Some(LeaseStatus {
            term: self
                .lease
                .held
                .filter(|_| self.lease_held(now))
                .map(|(t, _)| t),
            held_for: self
                .lease
                .held
                .map(|(_, until)| until.saturating_duration_since(now)),
            refused: self.lease.refused.as_ref().map(|(r, _)| r.clone()),
            kept: self.lease.kept,
        })
    }
}
