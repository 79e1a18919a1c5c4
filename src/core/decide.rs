//! The decisions: from Passive, when to ask the holding peer to release,
//! when to claim, and when to look at the VIP first; from Active, when to
//! give way (split brain lost, peer's request, failback). Runs after every
//! input and timeout, and arms [`Timer::Decide`] for the next instant at
//! which its answer could change.

use std::time::Instant;

use tracing::{info, warn};

use super::flap::FlapChange;
use super::peer::{outranks, rank, FailureCause};
use super::timer::{later, Timer};
use super::{countdown, After, Cause, Core, Holder, State};
use super::{Failback, Role};
use crate::proto::heartbeat::WireState;

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
        self.timers.stop(Timer::Decide);
        self.note_peer_availability(now);
        self.note_flapping(now);
        match self.state {
            State::Passive => self.decide_passive(now),
            State::Active => self.decide_active(now),
            State::StartingApp | State::RestartingApp => self.decide_starting(now),
            _ => {}
        }
        if let Some(at) = self.peer.expires(self.settings.peer_timeout) {
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
        let holder = if self.state.wire().holding() {
            Holder::Local
        } else if self.peer_available(now) && self.peer.holding() {
            Holder::Peer
        } else {
            Holder::Nobody
        };
        if holder != self.holder || self.holder_since.is_none() {
            self.holder = holder;
            self.holder_since = Some(now);
        }
        let failure = self.failure_cause(now);
        if let Some(cause) = failure.filter(|c| Some(*c) != self.last_failure) {
            self.counters.count_failure(cause);
            let detail = self
                .peer_app
                .last_error()
                .filter(|_| self.peer_app.failing_since().is_some());
            let text = match detail {
                Some(d) => format!("{cause}: {d}"),
                None => cause.to_string(),
            };
            self.failure_text = Some(text.clone());
            self.notify(super::EventKind::PeerDown, text, None);
        }
        let peer_serving = self.peer_available(now) && self.peer.state() == Some(WireState::Active);
        if failure.is_none() && peer_serving {
            self.failure_text = None;
        }
        self.last_failure = failure;
    }

    /// Ends the flapping once the moves age out of the window.
    fn note_flapping(&mut self, now: Instant) {
        let (limit, window) = (self.settings.flap_limit, self.settings.flap_window);
        if self.flaps.update(now, limit, window) == FlapChange::Ended {
            info!("the common IP has not moved too often lately; automatic moves again");
        }
        if let Some(at) = self.flaps.next_expiry(window) {
            self.wake(at);
        }
    }

    /// Our application is starting (a claim) or restarting (in place) and
    /// does not serve yet. A peer that can serve gets the VIP at once: after
    /// a restart, as soon as it is ready; during a first claim, when it asks
    /// (a healthy slow start must not bounce the VIP).
    fn decide_starting(&mut self, now: Instant) {
        if self.yield_pending.is_some() || self.shutdown || !self.peer_can_take_over(now) {
            return;
        }
        let asks = self.peer.last.is_some_and(|h| h.flags.release_request);
        let cause = if self.state == State::RestartingApp {
            let why = self.local.last_error().unwrap_or("failed").to_owned();
            Cause::LocalAppFailed(why)
        } else if asks {
            Cause::PeerAsked
        } else {
            return;
        };
        info!(state = %self.state, %cause, "a peer that can serve is ready while our application is not; handing over");
        self.yield_pending = Some(cause);
        self.actions.push_back(super::Action::Interrupt);
    }

    fn wake(&mut self, at: Instant) {
        if self.timers.get(Timer::Decide).is_none_or(|cur| at < cur) {
            self.timers.set(Timer::Decide, at);
        }
    }

    pub(super) fn peer_available(&self, now: Instant) -> bool {
        self.peer.available(now, self.settings.peer_timeout)
    }

    pub(super) fn peer_ready_to_take_over(&self, now: Instant) -> bool {
        self.peer
            .ready_to_take_over(now, self.settings.peer_timeout)
    }

    fn peer_role(&self) -> Role {
        match self.settings.role {
            Role::Primary => Role::Secondary,
            Role::Secondary => Role::Primary,
        }
    }

    fn note_peer_availability(&mut self, now: Instant) {
        let available = self.peer_available(now);
        if available == self.peer_was_available {
            return;
        }
        self.peer_was_available = available;
        let peer = &self.settings.peer_name;
        if available {
            info!(%peer, state = ?self.peer.state(), term = self.peer.term(), "peer available");
        } else {
            warn!(%peer, timeout = ?self.settings.peer_timeout, "peer unavailable: no valid heartbeat");
            self.peer_reported_down = None;
        }
    }

    /// When the watched peer's failure began, by our probe or its report.
    fn peer_failing_since(&self) -> Option<Instant> {
        let report = self.peer_reported_down.map(|(since, _)| since);
        match (self.peer_app.failing_since(), report) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Why the peer counts as failing, in the four causes users know.
    pub(super) fn failure_cause(&self, now: Instant) -> Option<FailureCause> {
        if self.peer_available(now) {
            if let Some((_, cause)) = self.peer_reported_down {
                return Some(cause);
            }
            let watched = self.peer.state() == Some(WireState::Active);
            (watched && self.peer_app.failing_since().is_some()).then_some(FailureCause::WebService)
        } else {
            self.peer_app
                .failing_since()
                .map(|_| FailureCause::HostOrNetwork)
        }
    }

    /// When a takeover (or a release request) becomes due, and what it
    /// will be; `None` while nothing is failing.
    fn plan(&self, now: Instant) -> Option<(Instant, Want)> {
        let grace = self.settings.grace;
        if self.disabled || self.in_maintenance() {
            return None;
        }
        if let Some(forced) = self.promote {
            let want = match (
                self.peer_available(now),
                self.peer.holding(),
                self.settings.role,
            ) {
                (true, true, _) => Want::RequestRelease,
                (true, false, Role::Primary) => Want::Claim(Cause::Promoted),
                (true, false, Role::Secondary) => Want::AskToClaim,
                (false, _, _) if forced => Want::Claim(Cause::Promoted),
                (false, _, _) => Want::Check,
            };
            return Some((now, want));
        }
        if self.peer_available(now) {
            if self.peer.holding() && self.flaps.since().is_some() {
                // Flapping: a live holder keeps the VIP (only the
                // administrator moves it now).
                return None;
            }
            if self.peer.holding() {
                // Only a peer that finished claiming is judged: one that is
                // still starting its application has its own ready timeout.
                if self.peer.state() != Some(WireState::Active) {
                    return None;
                }
                let since = self.peer_failing_since()?;
                let maintenance = matches!(
                    self.peer_reported_down,
                    Some((_, FailureCause::Maintenance))
                );
                let due = if maintenance {
                    since
                } else {
                    later(since, grace)
                };
                return Some((due, Want::RequestRelease));
            }
            // Nobody holds the VIP, by the peer's word.
            let nobody = self.no_holder_since?;
            if self.peer.state() == Some(WireState::Stopped) {
                // It left for good: nobody to race with.
                return Some((nobody, Want::Claim(Cause::NoHolder)));
            }
            let held_down = self.holddown_until.filter(|&t| now < t);
            return match self.settings.role {
                // The preferred node claims at once, unless it was just
                // held down, or the secondary asks (then it defers).
                Role::Primary => {
                    let asked = self.peer.last.is_some_and(|h| h.flags.release_request);
                    let cause = if self.requesting_release {
                        Cause::PeerReleased
                    } else {
                        Cause::NoHolder
                    };
                    // A peer that hands over on purpose needs no hold-down.
                    let peer_defers = self.peer.last.is_some_and(|h| h.flags.deferring);
                    let due = if peer_defers {
                        nobody
                    } else {
                        held_down.unwrap_or(nobody)
                    };
                    (!asked).then_some((due, Want::Claim(cause)))
                }
                // The secondary gives the primary the grace period first,
                // unless it already asked the holder to release.
                Role::Secondary => {
                    let peer_defers = self.peer.last.is_some_and(|h| h.flags.deferring);
                    let due = if self.requesting_release || peer_defers {
                        nobody
                    } else {
                        let since = self
                            .peer_app
                            .failing_since()
                            .map_or(nobody, |f| f.min(nobody));
                        later(since, grace).max(held_down.unwrap_or(since))
                    };
                    Some((due, Want::AskToClaim))
                }
            };
        }
        let since = self.peer_app.failing_since()?;
        let due = later(since, grace).max(self.vip_check_not_before.unwrap_or(since));
        Some((due, Want::Check))
    }

    pub(super) fn takeover_due_at(&self, now: Instant) -> Option<Instant> {
        self.plan(now).map(|(due, _)| due)
    }

    /// A claim on the peer's word after it failed is a takeover for that
    /// failure; say so (in logs, status and notifications).
    fn because_peer_failed(&self, cause: Cause) -> Cause {
        if self.promote.is_some() {
            // The peer released because the administrator asked for it.
            return Cause::Promoted;
        }
        match (&cause, &self.failure_text) {
            (Cause::NoHolder | Cause::PeerReleased, Some(why)) => {
                Cause::PeerFailed(format!("{why}; the peer released the common IP"))
            }
            _ => cause,
        }
    }

    /// Why taking over now would not help, if it would not.
    pub(super) fn takeover_blocker(&self) -> Option<String> {
        let reason = |h: &super::Health| h.last_error().unwrap_or("not probed yet").to_owned();
        if let Some((target, why)) = self.not_probed.first() {
            return Some(format!(
                "this node cannot judge: its probe of the {target} could not run ({why})"
            ));
        }
        if !self.nic_ok() {
            return Some(format!(
                "this node's NIC is unusable: {}",
                reason(&self.nic)
            ));
        }
        if !self.data_ok() {
            return Some(format!(
                "this node cannot reach the data service: {}",
                reason(&self.data)
            ));
        }
        None
    }

    fn decide_passive(&mut self, now: Instant) {
        let available = self.peer_available(now);
        if self.vip_held && available {
            // A VIP found on our NIC at start: keep it only if the peer
            // does not hold one (and we may hold it).
            if self.peer.holding() || self.disabled || self.in_maintenance() {
                self.release(now, Cause::StaleVip, After::Passive, true);
            } else {
                self.change_state(now, State::Claiming, Cause::Resume);
            }
            return;
        }
        if available && !self.peer.holding() {
            self.no_holder_since.get_or_insert(now);
        } else {
            self.no_holder_since = None;
        }
        let asked = available
            && !self.peer.holding()
            && self.peer.last.is_some_and(|h| h.flags.release_request);
        if available && self.peer.holding() {
            self.handover_pending = false;
        }
        let defer = (self.settings.role == Role::Primary && asked)
            || self.handover_pending
            || self.disabled
            || self.in_maintenance();
        if defer != self.deferring {
            if defer && asked {
                info!("the peer asks for the common IP; letting it claim");
            }
            self.deferring = defer;
            self.send_heartbeat(now);
        }
        let Some((due, want)) = self.plan(now) else {
            self.countdown_logged = None;
            // A peer that is releasing (or still claiming) is not healthy
            // again; only an Active peer that no longer fails is.
            if self.requesting_release && self.peer.state() == Some(WireState::Active) {
                info!("the peer is healthy again; withdrawing the release request");
                self.requesting_release = false;
                self.send_heartbeat(now);
            }
            self.takeover_blocked = None;
            return;
        };
        if now < due {
            if self.countdown_logged != Some(due) {
                self.countdown_logged = Some(due);
                let reason = match &want {
                    Want::Claim(_) | Want::AskToClaim => "nobody holds the common IP".to_owned(),
                    _ => self
                        .failure_cause(now)
                        .map_or("failing".to_owned(), |c| c.to_string()),
                };
                warn!(cause = %reason, "{}", countdown::takeover_in(due.saturating_duration_since(now)));
            }
            self.wake(due);
            return;
        }
        if let Some(blocker) = self
            .takeover_blocker()
            .filter(|_| self.promote != Some(true))
        {
            if self.takeover_blocked.as_ref() != Some(&blocker) {
                warn!(why = %blocker, "takeover due but held back");
            }
            self.takeover_blocked = Some(blocker);
            if std::mem::take(&mut self.requesting_release) {
                self.send_heartbeat(now);
            }
            return;
        }
        self.takeover_blocked = None;
        let why = || {
            let cause = self
                .failure_cause(now)
                .map_or("failing".to_owned(), |c| c.to_string());
            match self.peer_app.last_error() {
                Some(detail) if self.peer_app.failing_since().is_some() => {
                    format!("{cause}: {detail}")
                }
                _ => cause,
            }
        };
        match want {
            Want::RequestRelease => {
                if !self.requesting_release {
                    info!(why = %why(), "peer failed for the grace period; asking it to release the common IP");
                    self.requesting_release = true;
                    self.send_heartbeat(now);
                }
            }
            Want::Claim(cause) => {
                let cause = self.because_peer_failed(cause);
                self.change_state(now, State::Claiming, cause)
            }
            Want::AskToClaim => {
                if !self.requesting_release {
                    info!("nobody holds the common IP; asking the primary to let us claim it");
                    self.requesting_release = true;
                    self.send_heartbeat(now);
                }
                if self.peer.last.is_some_and(|h| h.flags.deferring) {
                    let cause = self.because_peer_failed(Cause::NoHolder);
                    self.change_state(now, State::Claiming, cause);
                }
            }
            Want::Check => {
                let why = why();
                self.change_state(now, State::Checking, Cause::PeerFailed(why));
            }
        }
    }

    fn decide_active(&mut self, now: Instant) {
        if std::mem::take(&mut self.reannounce_pending) {
            info!("the peer let go of the common IP; announcing again so that clients follow");
            self.last_reannounce = Some(now);
            self.actions.push_back(super::Action::Announce);
        }
        if !self.peer_available(now) {
            self.primary_ready_since = None;
            return;
        }
        let Some(hb) = self.peer.last else { return };
        if matches!(hb.state, WireState::Claiming | WireState::Active) {
            let text = format!(
                "both nodes hold the common IP (terms {} and {})",
                self.term, hb.term
            );
            if self
                .last_reannounce
                .is_none_or(|t| now >= later(t, self.settings.heartbeat_interval))
            {
                self.notify(super::EventKind::SplitBrain, text, None);
            }
            let ours = rank(self.term, self.settings.role, &self.settings.name);
            let theirs = rank(hb.term, self.peer_role(), &self.settings.peer_name);
            if !outranks(ours, theirs) {
                self.holddown(now);
                let cause = Cause::SplitBrain {
                    ours: self.term,
                    theirs: hb.term,
                };
                self.release(now, cause, After::Passive, true);
            } else if self
                .last_reannounce
                .is_none_or(|t| now >= later(t, self.settings.heartbeat_interval))
            {
                warn!(
                    ours = self.term,
                    theirs = hb.term,
                    "split brain: the peer holds the common IP too; we outrank it and announce again"
                );
                self.last_reannounce = Some(now);
                self.actions.push_back(super::Action::Announce);
            }
            return;
        }
        let peer_ready = self.peer_can_take_over(now);
        if self.recovery.failed() && peer_ready {
            // Our application failed and is being restarted (or was given
            // up): a peer that can serve is better at once.
            self.holddown(now);
            let why = self.local.last_error().unwrap_or("failed").to_owned();
            self.hand_over(now, Cause::LocalAppFailed(why));
            return;
        }
        if hb.flags.release_request && peer_ready {
            self.holddown(now);
            self.release(now, Cause::PeerAsked, After::Passive, true);
            return;
        }
        // Lost the data service while the peer still reaches it: hand over.
        if let Some(since) = self
            .data
            .failing_since()
            .filter(|_| self.settings.watch_data)
        {
            if peer_ready && now >= later(since, self.settings.grace) {
                let why = self.data.last_error().unwrap_or("unreachable").to_owned();
                self.hand_over(now, Cause::DataLost(why));
                return;
            } else if peer_ready {
                self.wake(later(since, self.settings.grace));
            }
        }
        match (self.settings.role, self.settings.failback) {
            (Role::Secondary, Failback::Automatic { hold, .. }) if peer_ready => {
                let since = *self.primary_ready_since.get_or_insert(now);
                let ready = later(since, hold);
                // A voluntary move waits for the dwell time after the last one.
                let due = self
                    .last_move
                    .map_or(ready, |m| ready.max(later(m, self.settings.dwell)));
                if due > ready && now >= ready && self.dwell_counted != Some(due) {
                    self.dwell_counted = Some(due);
                    self.counters.dwell_delays += 1;
                    info!(wait = ?due.saturating_duration_since(now), "failback held back: the common IP moved recently");
                }
                if now >= due {
                    // Let the users' open connections finish first.
                    self.change_state(now, State::Draining, Cause::Failback);
                } else {
                    self.wake(due);
                }
            }
            _ => self.primary_ready_since = None,
        }
    }
}
