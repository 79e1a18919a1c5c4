//! The decisions: from Passive, when to ask the holding peer to release,
//! when to claim, and when to look at the VIP first; from Active, when to
//! give way (split brain lost, peer's request, failback). Runs after every
//! input and timeout, and arms [`Timer::Decide`] for the next instant at
//! which its answer could change.

use std::time::{Duration, Instant};

use super::flap::FlapChange;
use super::mode::{HeldBack, Yielding};
use super::peer::{outranks, rank, reported_down, FailureCause};
use super::timer::{later, Timer};
use super::Failback;
use super::{
    AppFailure, Blocker, Cancelled, Cause, Core, Ending, Failure, GoneSignal, Health, Holder,
    LetGo, MoveNote, PeerNote, Promotion, State,
};
use crate::proto::heartbeat::WireState;

/// Heartbeats missed in a row that, with the peer's application refusing
/// connections, make the peer gone before its timeout.
const MISSED: u32 = 2;

/// How often a lasting hold-back is said again in the log.
const HELD_BACK_EVERY: Duration = Duration::from_secs(60);

/// What a Passive node will do once the takeover is due.
enum Want {
    /// Ask the holding peer to release (it is alive; we never claim over it).
    RequestRelease,
    /// Claim on the peer's word that nobody holds the VIP.
    Claim(Cause),
    /// The peer is silent: look at the VIP, then claim or not.
    Check,
    /// Nobody holds the VIP and we are the secondary: ask for it, and
    /// claim once the primary answers that it defers (so that the two
    /// never claim at the same moment).
    AskToClaim,
}

impl Core {
    pub(super) fn decide(&mut self, now: Instant) {
        self.refocus(now);
        self.note_two_signals(now);
        self.timers.stop(Timer::Decide);
        self.note_peer_availability(now);
        self.note_flapping(now);
        self.decide_lease(now);
        match self.state() {
            State::Passive => self.decide_passive(now),
            State::Checking => self.decide_checking(now),
            State::Active => self.decide_active(now),
            State::StartingApp | State::RestartingApp => self.decide_starting(now),
            _ => {}
        }
        if let Some(at) = self.peer().expires(self.settings.silence()) {
            if at > now {
                self.wake(at);
            }
        }
        self.note_holder(now);
    }

    /// Tracks who holds the VIP (for status) and counts the peer's failing
    /// streaks by cause (for metrics).
    fn note_holder(&mut self, now: Instant) {
        // Claiming to releasing, the VIP may be on our NIC.
        let holder = if self.state().wire().holding() {
            Holder::Local
        } else if self.peer_available(now) && self.peer().holding() {
            Holder::Peer(self.peers.watched().info.id)
        } else {
            Holder::Nobody
        };
        if self.vip.holder.map(|(h, _)| h) != Some(holder) {
            self.vip.holder = Some((holder, now));
        }
        // In our start-up window a silent peer has not failed: it may be
        // starting a moment after us (a cold start), and a claim once it
        // is heard is not a takeover for its failure.
        let listening = self.state() == State::Starting;
        let failure = self.failure_cause(now).filter(|_| !listening);
        if let Some(cause) = failure.filter(|c| Some(*c) != self.record.last_failure) {
            self.record.counters.count_failure(cause);
            let failure = self.peer_failure(cause);
            self.record.peer_failure = Some(failure.clone());
            self.notify(
                super::EventKind::PeerDown,
                Cause::PeerFailing(failure),
                None,
            );
        }
        let peer_serving =
            self.peer_available(now) && self.peer().state() == Some(WireState::Active);
        if failure.is_none() && peer_serving {
            self.record.peer_failure = None;
        }
        self.record.last_failure = failure;
    }

    /// The peer's failure with the reason of our last failed probe of it.
    fn peer_failure(&self, cause: FailureCause) -> Failure {
        let detail = self
            .probes
            .peer_app
            .last_error()
            .filter(|_| self.probes.peer_app.failing_since().is_some());
        Failure {
            cause,
            detail: detail.map(str::to_owned),
        }
    }

    /// Ends the flapping once the moves age out of the window.
    fn note_flapping(&mut self, now: Instant) {
        let (limit, window) = (self.settings.flap_limit, self.settings.flap_window);
        if self.record.flaps.update(now, limit, window) == FlapChange::Ended {
            MoveNote::FlappingOver.log();
        }
        if let Some(at) = self.record.flaps.next_expiry(window) {
            self.wake(at);
        }
    }

    /// Our application is starting (a claim) or restarting (in place) and
    /// does not serve yet. A peer that can serve gets the VIP at once: after
    /// a restart, as soon as it is ready; during a first claim, when it asks
    /// (a healthy slow start must not bounce the VIP).
    fn decide_starting(&mut self, now: Instant) {
        let resuming = self.machine.mode().serve().is_some_and(|s| s.resuming);
        if resuming || self.yield_to().is_some() || self.admin.shutdown {
            return;
        }
        if !self.peer_can_take_over(now) {
            return;
        }
        let asks = self.peer().last.is_some_and(|h| h.flags.release_request);
        let cause = if self.state() == State::RestartingApp {
            let why = self.probes.local_failure();
            Cause::LocalAppFailed(AppFailure::Restart(why))
        } else if asks {
            Cause::PeerAsked
        } else {
            return;
        };
        MoveNote::YieldingToReadyPeer {
            state: self.state(),
            cause: &cause,
        }
        .log();
        if !self.machine.set_yield_to(cause) {
            return;
        }
        self.actions.push_back(super::Action::Interrupt);
    }

    pub(super) fn wake(&mut self, at: Instant) {
        if self.timers.get(Timer::Decide).is_none_or(|cur| at < cur) {
            self.timers.set(Timer::Decide, at);
        }
    }

    /// Is the peer's daemon heard from? Not after its heartbeats ran out
    /// (the peer timeout), nor once it was found gone on another signal
    /// (see [`GoneSignal`]).
    pub(super) fn peer_available(&self, now: Instant) -> bool {
        self.peer().available(now, self.settings.silence())
    }

    /// While watching, two heartbeats missing in a row and an application
    /// that refuses connections are two independent signals that the peer
    /// failed: it is gone without waiting for its timeout. Wakes up when
    /// that will be.
    fn note_two_signals(&mut self, now: Instant) {
        if !self.two_signals() || !self.peer_available(now) {
            return;
        }
        let Some(gone) = self.peer_gone_at() else {
            return;
        };
        if now >= gone {
            let signal = GoneSignal::MissedAndAppRefuses { missed: MISSED };
            if let Some(peer) = self.peers.watched_mut() {
                peer.view.gone = Some((now, signal));
            }
        } else {
            self.wake(gone);
        }
    }

    /// When the peer counts as gone if nothing more arrives.
    pub(super) fn peer_gone_at(&self) -> Option<Instant> {
        let expiry = self.peer().expires(self.settings.silence())?;
        let seen = self.peer().last_seen?;
        if self.two_signals() {
            let missed = later(
                seen,
                self.settings.heartbeat_interval.saturating_mul(MISSED),
            );
            return Some(expiry.min(missed));
        }
        Some(expiry)
    }

    /// While watching a peer that holds the VIP, its application refuses
    /// connections: with its heartbeats missing, a second signal that it
    /// failed. (A Passive peer's application does not run at all.)
    fn two_signals(&self) -> bool {
        self.machine.mode().watch().is_some()
            && self.peer().holding()
            && self.probes.peer_app.refusing()
            && !self.peer().restarting()
    }

    /// What told us the peer is gone (for the log).
    fn gone_signal(&self) -> GoneSignal {
        self.peer().gone_by().unwrap_or(GoneSignal::Silent(
            self.settings.silence().for_view(self.peer()),
        ))
    }

    pub(super) fn peer_ready_to_take_over(&self, now: Instant) -> bool {
        self.peer().ready_to_take_over(now, self.settings.silence())
    }

    /// Is this node preferred over the watched peer (in a pair: is it the
    /// primary)? The preferred one claims a free VIP at once; the other
    /// asks first.
    pub(super) fn preferred_over_watched(&self) -> bool {
        self.settings.preference < self.peers.watched().info.preference
    }

    /// When a claim due at `due` may be made: one step later for every
    /// other heard, ready peer more preferred than this node, so that the
    /// most preferred healthy node claims first and the others see it
    /// claiming (a pair never waits here). A step covers the skew of the
    /// nodes' probes (an interval), a heartbeat, and one witness ask.
    pub(super) fn deferred(&self, now: Instant, due: Instant) -> Instant {
        let ahead = self
            .peers
            .outranking(self.settings.preference, now, self.settings.silence());
        if ahead == 0 {
            return due;
        }
        later(due, self.defer_step().saturating_mul(ahead))
    }

    /// One step of [`Self::deferred`]: the skew of two nodes' probes (an
    /// interval), a heartbeat, and one witness ask (a quarter lease).
    pub(super) fn defer_step(&self) -> Duration {
        let ask = self
            .settings
            .witness
            .map_or(Duration::ZERO, |w| w.length / 4);
        self.settings.interval + self.settings.heartbeat_interval + ask
    }

    /// Watches the peer [`super::Peers::choose`] names, if it changed:
    /// its application is judged afresh (probes of the one watched before
    /// are stale), and the runtime probes its URL from now on.
    pub(super) fn refocus(&mut self, now: Instant) {
        let we_hold = self.state().wire().holding();
        let id = self.peers.choose(now, self.settings.silence(), we_hold);
        if id == self.peers.watched().info.id {
            return;
        }
        self.peers.watch(id);
        PeerNote::Watching {
            peer: self.peer_name(),
            state: self.peer().state(),
        }
        .log();
        self.probes.peer_app = Health::new(self.settings.rise, self.settings.fall);
        self.with_watch(|w| w.since = Some(now));
        self.peers.reported_down = self.peer().last.and_then(reported_down).map(|c| (now, c));
        self.peers.was_available = self.peer_available(now);
        self.actions.push_back(super::Action::WatchPeer(id));
    }

    fn note_peer_availability(&mut self, now: Instant) {
        let available = self.peer_available(now);
        if available == self.peers.was_available {
            return;
        }
        self.peers.was_available = available;
        let peer = self.peer_name();
        if available {
            PeerNote::PeerAvailable {
                peer,
                state: self.peer().state(),
                term: self.peer().term(),
            }
            .log();
            // What our probes saw of its application while its daemon was
            // out of reach was the network as much as the application (a
            // healed partition): watch it afresh, as its heartbeats now
            // speak for it.
            if self.machine.mode().watch().is_some()
                && self.probes.peer_app.failing_since().is_some()
            {
                self.probes.peer_app = Health::new(self.settings.rise, self.settings.fall);
                self.with_watch(|w| w.since = Some(now));
            }
        } else {
            PeerNote::PeerUnavailable {
                peer,
                signal: self.gone_signal(),
            }
            .log();
            self.peers.reported_down = None;
        }
    }

    /// When the watched peer's failure began, by our probe or its report.
    fn peer_failing_since(&self) -> Option<Instant> {
        let report = self.peers.reported_down.map(|(since, _)| since);
        match (self.probes.peer_app.failing_since(), report) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Why the peer counts as failing, in the four causes users know.
    pub(super) fn failure_cause(&self, now: Instant) -> Option<FailureCause> {
        if self.peer_available(now) {
            if let Some((_, cause)) = self.peers.reported_down {
                return Some(cause);
            }
            let watched = self.peer().state() == Some(WireState::Active);
            (watched && self.probes.peer_app.failing_since().is_some())
                .then_some(FailureCause::WebService)
        } else {
            self.probes
                .peer_app
                .failing_since()
                .map(|_| FailureCause::HostOrNetwork)
        }
    }

    /// When a takeover (or a release request) becomes due, and what it
    /// will be; `None` while nothing is failing.
    fn plan(&self, now: Instant) -> Option<(Instant, Want)> {
        let (due, want) = self.plan_moves(now)?;
        if self.promotion().is_some() {
            // The administrator's promote does not wait for a back-off.
            return Some((due, want));
        }
        let backoff = self.record.flaps.claim_backoff(now);
        Some((backoff.map_or(due, |until| due.max(until)), want))
    }

    /// What to do next and when, before a failed claim's back-off.
    fn plan_moves(&self, now: Instant) -> Option<(Instant, Want)> {
        let grace = self.settings.grace;
        if self.admin.disabled || self.in_maintenance() {
            return None;
        }
        if let Some(promotion) = self.promotion() {
            let forced = promotion == Promotion::Forced;
            let want = match (
                self.peer_available(now),
                self.peer().holding(),
                self.preferred_over_watched(),
            ) {
                (true, true, _) => Want::RequestRelease,
                (true, false, true) => Want::Claim(Cause::Promoted),
                (true, false, false) => Want::AskToClaim,
                (false, _, _) if forced => Want::Claim(Cause::Promoted),
                (false, _, _) => Want::Check,
            };
            return Some((now, want));
        }
        if self.peer_available(now) {
            if self.peer().holding() && self.record.flaps.since().is_some() {
                // Flapping: a live holder keeps the VIP (only the
                // administrator moves it now).
                return None;
            }
            if self.peer().holding() {
                // Only a peer that finished claiming is judged: one that is
                // still starting its application has its own ready timeout.
                if self.peer().state() != Some(WireState::Active) {
                    return None;
                }
                let since = self.peer_failing_since()?;
                let maintenance = matches!(
                    self.peers.reported_down,
                    Some((_, FailureCause::Maintenance))
                );
                let due = if maintenance {
                    since
                } else {
                    later(since, grace)
                };
                return Some((due, Want::RequestRelease));
            }
            return self.plan_no_holder(now);
        }
        Some((self.check_due(now)?, Want::Check))
    }

    /// Nobody holds the VIP, by the peer's word: who claims, and when
    /// (deferred to more preferred ready peers, see [`Self::deferred`]).
    fn plan_no_holder(&self, now: Instant) -> Option<(Instant, Want)> {
        let (due, want) = self.plan_no_holder_with_watched(now)?;
        // Held down after a release for our own failure, with another peer
        // ready to take the VIP (more than two nodes): the hold-down holds
        // even if the watched peer hands over, so that the two that failed
        // do not pass the VIP back and forth.
        let held_down = self.holddown_until().filter(|&t| now < t);
        let others = self.peers.outranking(u8::MAX, now, self.settings.silence());
        let due = match held_down {
            Some(until) if others > 0 => due.max(until),
            _ => due,
        };
        Some((self.deferred(now, due), want))
    }

    /// Between this node and the watched peer: the preferred one claims at
    /// once, the other asks it first.
    fn plan_no_holder_with_watched(&self, now: Instant) -> Option<(Instant, Want)> {
        let grace = self.settings.grace;
        let nobody = self.watch()?.no_holder_since?;
        if self.peer().state() == Some(WireState::Stopped) {
            // It left for good: nobody to race with.
            return Some((nobody, Want::Claim(Cause::NoHolder)));
        }
        let held_down = self.holddown_until().filter(|&t| now < t);
        match self.preferred_over_watched() {
            // The preferred node claims at once, unless it was just
            // held down, or the other asks (then it defers).
            true => {
                let asked = self.peers.asking(now, self.settings.silence());
                let cause = if self.asking() {
                    Cause::PeerReleased
                } else {
                    Cause::NoHolder
                };
                // A peer that hands over on purpose needs no hold-down
                // (but see `plan_no_holder`).
                let peer_defers = self.peer().last.is_some_and(|h| h.flags.deferring);
                let due = if peer_defers {
                    nobody
                } else {
                    held_down.unwrap_or(nobody)
                };
                (!asked).then_some((due, Want::Claim(cause)))
            }
            // The other gives the preferred node the grace period first,
            // unless it already asked the holder to release.
            false => {
                let peer_defers = self.peer().last.is_some_and(|h| h.flags.deferring);
                let due = if self.asking() || peer_defers {
                    nobody
                } else {
                    let since = self
                        .probes
                        .peer_app
                        .failing_since()
                        .map_or(nobody, |f| f.min(nobody));
                    later(since, grace).max(held_down.unwrap_or(since))
                };
                Some((due, Want::AskToClaim))
            }
        }
    }

    /// Until when our own claims are held back after a release.
    fn holddown_until(&self) -> Option<Instant> {
        self.watch().and_then(|w| w.holddown_until)
    }

    pub(super) fn takeover_due_at(&self, now: Instant) -> Option<Instant> {
        self.plan(now).map(|(due, _)| due)
    }

    /// A claim on the peer's word after it failed is a takeover for that
    /// failure; say so (in logs, status and notifications).
    fn because_peer_failed(&self, cause: Cause) -> Cause {
        if self.promotion().is_some() {
            // The peer released because the administrator asked for it.
            return Cause::Promoted;
        }
        let let_go = self.watch().and_then(|w| w.peer_let_go);
        match (&cause, &self.record.peer_failure, let_go) {
            // Maintenance is one of the four causes a peer "fails" for, but
            // the move is planned: say so.
            (Cause::NoHolder | Cause::PeerReleased, Some(failure), _)
                if failure.cause == FailureCause::Maintenance =>
            {
                Cause::PeerHandedOver(LetGo::Maintenance)
            }
            (Cause::NoHolder | Cause::PeerReleased, Some(failure), _) => {
                Cause::PeerFailedAndReleased(failure.clone())
            }
            (Cause::NoHolder | Cause::PeerReleased, None, Some(why)) => Cause::PeerHandedOver(why),
            _ => cause,
        }
    }

    /// Why taking over now would not help, if it would not.
    pub(super) fn takeover_blocker(&self) -> Option<Blocker> {
        let reason = |h: &super::Health| h.last_error().map(str::to_owned);
        if let Some(blocker) = self.lease_blocker() {
            return Some(blocker);
        }
        if let Some((target, why)) = self.probes.not_probed.first() {
            return Some(Blocker::CannotJudge {
                target: *target,
                why: why.clone(),
            });
        }
        if !self.nic_ok() {
            return Some(Blocker::NicDown(reason(&self.probes.nic)));
        }
        if !self.data_ok() {
            return Some(Blocker::NoData(reason(&self.probes.data)));
        }
        None
    }

    pub(super) fn decide_passive(&mut self, now: Instant) {
        let available = self.peer_available(now);
        if self.vip.held && available {
            // A VIP found on our NIC at start: keep it only if the peer
            // does not hold one (and we may hold it).
            if self.peer().holding() || self.admin.disabled || self.in_maintenance() {
                self.release(now, Cause::StaleVip, Ending::Passive, true);
            } else {
                self.claim(now, Cause::Resume);
            }
            return;
        }
        self.note_grants(now, available);
        if self.look_ahead(now) {
            return;
        }
        let Some((due, want)) = self.plan(now) else {
            // A peer that is releasing (or still claiming) is not healthy
            // again; only an Active peer that no longer fails is.
            let healthy_again = self.asking() && self.peer().state() == Some(WireState::Active);
            if healthy_again {
                PeerNote::PeerHealthyAgain.log();
            }
            // A peer releasing (on its own, or because we asked) is the
            // takeover going ahead, not a cancelled one; a withdrawn request
            // says so itself (PeerHealthyAgain).
            let releasing = self.peer().state() == Some(WireState::Releasing);
            let cancelled = !releasing && !self.asking();
            // A node claiming answers our request: the holder we asked let
            // go, or nobody held and another node takes the VIP. Asking on
            // would make the claimer, still starting its application, hand
            // the VIP to us, even if we cannot take it (the witness).
            let answered = self.peer().state() == Some(WireState::Claiming);
            self.end_held_back_unless_asking_again(now);
            if self.watch().is_some_and(|w| w.countdown_logged.is_some()) && cancelled {
                PeerNote::CountdownCancelled {
                    peer: self.peer_name(),
                    why: self.why_no_takeover(),
                }
                .log();
            }
            self.with_watch(|w| {
                if cancelled || healthy_again {
                    w.countdown_logged = None;
                }
                w.takeover_blocked = None;
                w.asking &= !(healthy_again || answered);
            });
            return;
        };
        if now < due {
            self.count_down(now, due, &want);
            return;
        }
        if self.held_back(now) {
            self.with_watch(|w| w.asking = false);
            return;
        }
        self.with_watch(|w| w.takeover_blocked = None);
        self.act_on(now, due, want);
    }

    /// Would a takeover be held back now (this node could not serve, and no
    /// forced promotion overrides that)? The reason is kept for status and
    /// logged when it starts, once a minute while it lasts, and when it
    /// ends ([`Self::end_held_back`]).
    fn held_back(&mut self, now: Instant) -> bool {
        let forced = self.promotion() == Some(Promotion::Forced);
        let Some(blocker) = self.takeover_blocker().filter(|_| !forced) else {
            self.end_held_back_unless_asking_again(now);
            return false;
        };
        let held = self.watch().and_then(|w| w.held_back.clone());
        let next = match held {
            Some(mut held) if held.blocker.same_as(&blocker) => {
                if now.saturating_duration_since(held.said) >= HELD_BACK_EVERY {
                    PeerNote::StillHeldBack {
                        blocker: &blocker,
                        since: now.saturating_duration_since(held.since),
                    }
                    .log();
                    held.said = now;
                }
                held
            }
            _ => {
                PeerNote::TakeoverHeldBack { blocker: &blocker }.log();
                HeldBack {
                    blocker: blocker.clone(),
                    since: now,
                    said: now,
                }
            }
        };
        self.with_watch(|w| {
            w.takeover_blocked = Some(blocker);
            w.held_back = Some(next);
        });
        true
    }

    /// A hold-back's blocker is gone for now: it ends, unless it is the
    /// witness's refusal while nobody holds the VIP. A refused lease is
    /// asked again (the look, the ask) with the refusal lifted meanwhile,
    /// and the plan may waver between asks: the answer, the claim, or a
    /// holder ends it.
    pub(super) fn end_held_back_unless_asking_again(&mut self, now: Instant) {
        let asking_again = self
            .watch()
            .and_then(|w| w.held_back.as_ref())
            .is_some_and(|h| matches!(h.blocker, Blocker::Lease(_)));
        if !asking_again || (self.peer_available(now) && self.peer().holding()) {
            self.end_held_back(now);
        }
    }

    /// A hold-back that was said ends (the claim goes ahead, or is no
    /// longer due): say so once.
    pub(super) fn end_held_back(&mut self, now: Instant) {
        let Some(held) = self.machine.watch_mut().and_then(|w| w.held_back.take()) else {
            return;
        };
        PeerNote::NoLongerHeldBack {
            blocker: &held.blocker,
            after: now.saturating_duration_since(held.since),
        }
        .log();
    }

    /// Are the steps of a held-back takeover's retries (the look, the ask)
    /// repeats that the log has said already?
    pub(super) fn retrying_held_back(&self) -> bool {
        self.watch().is_some_and(|w| w.held_back.is_some())
    }

    /// Who may claim when nobody holds the VIP: since when nobody has, and
    /// whether we let the peer (it asked, we handed over, or we stand by).
    fn note_grants(&mut self, now: Instant, available: bool) {
        let holding = available && self.peer().holding();
        // Asked by any heard peer that holds nothing (a pair: the peer),
        // whether or not the watched one is heard (a silent holder).
        let asked = !holding && self.peers.asking(now, self.settings.silence());
        let stand_by = self.admin.disabled || self.in_maintenance();
        // The preferred node lets an asking peer claim (a pair: the
        // primary); so does one that could not serve now (its NIC, data
        // service or the witness), whatever its rank: beyond a pair, a
        // less preferred peer may be waiting for its word.
        let primary = self.preferred_over_watched() || self.takeover_blocker().is_some();
        let was_deferring = self.yielding().defers();
        self.with_watch(|w| {
            if available && !holding {
                w.no_holder_since.get_or_insert(now);
            } else {
                w.no_holder_since = None;
            }
            // The peer holds it now: our handover is done.
            w.yielding = match w.yielding {
                Yielding::HandingOver if !holding => Yielding::HandingOver,
                _ if (primary && asked) || stand_by => Yielding::ToOthers,
                _ => Yielding::No,
            };
        });
        if self.yielding().defers() && !was_deferring && asked {
            PeerNote::PeerAsksToClaim.log();
        }
    }

    /// Why [`Self::plan`] has no takeover to count down to.
    fn why_no_takeover(&self) -> Cancelled {
        if self.admin.disabled {
            Cancelled::Disabled
        } else if self.in_maintenance() {
            Cancelled::Maintenance
        } else if self.record.flaps.since().is_some() && self.peer().holding() {
            Cancelled::Flapping
        } else if self.peer().state() == Some(WireState::Claiming) {
            Cancelled::PeerClaims
        } else {
            Cancelled::PeerAnswers
        }
    }

    /// Logs the countdown once when it starts (a countdown that could not
    /// end in a takeover is logged as held back instead) and wakes up at
    /// the due instant.
    fn count_down(&mut self, now: Instant, due: Instant, want: &Want) {
        let left = due.saturating_duration_since(now);
        let no_holder = matches!(want, Want::Claim(_) | Want::AskToClaim);
        if no_holder && self.yielding() == Yielding::HandingOver {
            // Let go on purpose: the claim is only a fallback, not a
            // takeover for anybody's failure (nor cancelled when the peer
            // claims: that is the plan).
            if self.watch().is_some_and(|w| !w.handover_wait_logged) {
                PeerNote::HandedOverWaiting {
                    peer: self.peer_name(),
                    left,
                }
                .log();
                self.with_watch(|w| w.handover_wait_logged = true);
            }
        } else if !self.held_back(now) && self.watch().is_some_and(|w| w.countdown_logged.is_none())
        {
            self.with_watch(|w| w.countdown_logged = Some(due));
            let reason = match no_holder {
                true => "nobody holds the common IP".to_owned(),
                false => self
                    .failure_cause(now)
                    .map_or("failing".to_owned(), |c| c.to_string()),
            };
            PeerNote::Countdown {
                peer: self.peer_name(),
                reason,
                left,
            }
            .log();
        }
        self.wake(due);
    }

    /// The peer's failure as this node judges it now.
    pub(super) fn peer_failure_now(&self, now: Instant) -> Failure {
        let cause = self
            .failure_cause(now)
            .unwrap_or(FailureCause::HostOrNetwork);
        self.peer_failure(cause)
    }

    /// The takeover is due (at `due`) and nothing holds it back.
    fn act_on(&mut self, now: Instant, due: Instant, want: Want) {
        let why = || self.peer_failure_now(now);
        let asking = self.asking();
        match want {
            Want::RequestRelease => {
                if !asking {
                    PeerNote::AskingRelease {
                        peer: self.peer_name(),
                        failure: &why(),
                        promoted: self.promotion().is_some(),
                    }
                    .log();
                    self.with_watch(|w| w.asking = true);
                }
            }
            Want::Claim(cause) => {
                let cause = self.because_peer_failed(cause);
                self.claim(now, cause)
            }
            Want::AskToClaim => {
                let defers = self.peer().last.is_some_and(|h| h.flags.deferring);
                if !asking {
                    // A peer that defers already lets us claim: nothing to
                    // ask (it may have just handed the VIP over to us).
                    if !defers {
                        PeerNote::AskingToClaim.log();
                    }
                    self.with_watch(|w| w.asking = true);
                }
                if defers {
                    let cause = self.because_peer_failed(Cause::NoHolder);
                    self.claim(now, cause);
                }
            }
            Want::Check => {
                let why = why();
                self.look(now, Some(due), Cause::PeerFailed(why));
            }
        }
    }

    fn decide_active(&mut self, now: Instant) {
        if std::mem::take(&mut self.vip.reannounce_pending) {
            MoveNote::PeerLetGo.log();
            self.with_serve(|s| s.last_reannounce = Some(now));
            self.actions.push_back(super::Action::Announce);
        }
        let hb = self.peer().last.filter(|_| self.peer_available(now));
        let Some(hb) = hb else {
            self.with_serve(|s| s.primary_ready_since = None);
            return;
        };
        if matches!(hb.state, WireState::Claiming | WireState::Active) {
            self.settle_split_brain(now, hb.term);
            return;
        }
        let peer_ready = self.peer_can_take_over(now);
        if self.machine.mode().recovery().failed() && peer_ready {
            // Our application failed and is being restarted (or was given
            // up): a peer that can serve is better at once.
            let why = self.probes.local_failure();
            self.hand_over(now, Cause::LocalAppFailed(AppFailure::ForGrace(why)));
            return;
        }
        if hb.flags.release_request && peer_ready {
            self.release(now, Cause::PeerAsked, Ending::HeldDown, true);
            return;
        }
        if peer_ready && self.data_lost_for_grace(now) {
            let why = self
                .probes
                .data
                .last_error()
                .unwrap_or("unreachable")
                .to_owned();
            self.hand_over(now, Cause::DataLost(why));
            return;
        }
        match (self.preferred_over_watched(), self.settings.failback) {
            // Back to the most preferred ready node (in a pair, the primary).
            (false, Failback::Automatic { hold, .. }) if peer_ready => {
                self.fail_back_when_due(now, hold)
            }
            _ => self.with_serve(|s| s.primary_ready_since = None),
        }
    }

    /// Both hold the VIP: the lower rank releases, the higher announces
    /// again (at most once per heartbeat interval) so that clients follow.
    fn settle_split_brain(&mut self, now: Instant, theirs: u64) {
        let last = self.machine.mode().serve().and_then(|s| s.last_reannounce);
        let due = last.is_none_or(|t| now >= later(t, self.settings.heartbeat_interval));
        if due {
            let cause = Cause::BothHold {
                ours: self.teller.term,
                theirs,
            };
            self.notify(super::EventKind::SplitBrain, cause, None);
        }
        let ours = rank(
            self.teller.term,
            self.settings.preference,
            &self.settings.name,
        );
        let preference = self.peers.watched().info.preference;
        let peers = rank(theirs, preference, self.peer_name());
        if !outranks(ours, peers) {
            let cause = Cause::SplitBrain {
                ours: self.teller.term,
                theirs,
            };
            self.release(now, cause, Ending::HeldDown, true);
        } else if due {
            MoveNote::SplitBrainWon {
                ours: self.teller.term,
                theirs,
            }
            .log();
            self.with_serve(|s| s.last_reannounce = Some(now));
            self.actions.push_back(super::Action::Announce);
        }
    }

    /// Has this node lost the data service for the grace period (and the
    /// peer still reaches it)? Wakes up when it will have.
    fn data_lost_for_grace(&mut self, now: Instant) -> bool {
        let Some(since) = self
            .probes
            .data
            .failing_since()
            .filter(|_| self.settings.watch_data)
        else {
            return false;
        };
        let due = later(since, self.settings.grace);
        if now < due {
            self.wake(due);
        }
        now >= due
    }

    /// Automatic failback: once the primary has been ready for `hold` (and
    /// the dwell time since the last move has passed), drain, then hand back.
    fn fail_back_when_due(&mut self, now: Instant, hold: std::time::Duration) {
        let Some(serve) = self.machine.serve_mut() else {
            return;
        };
        let since = *serve.primary_ready_since.get_or_insert(now);
        let ready = later(since, hold);
        // A voluntary move waits for the dwell time after the last one.
        let due = self
            .record
            .last_move
            .map_or(ready, |m| ready.max(later(m, self.settings.dwell)));
        if due > ready && now >= ready && serve.dwell_counted != Some(due) {
            serve.dwell_counted = Some(due);
            self.record.counters.dwell_delays += 1;
            MoveNote::FailbackHeldBack {
                wait: due.saturating_duration_since(now),
            }
            .log();
        }
        if now >= due {
            // Let the users' open connections finish first.
            self.change_state(now, State::Draining, Cause::Failback);
        } else {
            self.wake(due);
        }
    }
}
