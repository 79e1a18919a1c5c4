//! How each input from the world changes the node: probe results,
//! heartbeats, completions of the actions it asked for, signals.

use std::time::Instant;

use super::health::{Change, Verdict};
use super::mode::{After, Ending};
use super::peer::reported_down;
use super::timer::{later, Timer};
use super::{
    Action, AppNote, AppRecovery, Cause, Core, EventKind, Failback, Health, InputNote, LetGo,
    MoveNote, Outcome, PeerNote, ProbeNote, Role, State, Target,
};
use crate::proto::heartbeat::{self, Heartbeat, WireState};

impl Core {
    pub(super) fn on_started(&mut self, now: Instant, vip_present: bool) {
        self.vip.held = vip_present;
        if self.settings.watch_data {
            self.timers.set(Timer::ProbeData, now);
        }
        if self.settings.watch_nic {
            self.timers.set(Timer::ProbeNic, now);
        }
        let stand_by = self.admin.disabled || self.in_maintenance();
        let witness = self.settings.witness.is_some();
        if vip_present && witness && self.settings.adopt.is_none() && !stand_by {
            // A VIP left by an earlier run may stay only if its lease is
            // still ours: ask at once instead of holding it through the
            // start-up window (a refusal releases it).
            self.claim(now, Cause::Resume);
            return;
        }
        if let Some(term) = self.settings.adopt {
            self.teller.term = term;
            if vip_present && !self.admin.disabled && !self.in_maintenance() {
                // Our previous process held the VIP and told the peer it
                // restarts: take it back at once, without the start-up
                // window (the peer still counts us as holding).
                self.claim(now, Cause::Adopted);
                return;
            }
        }
        self.change_state(now, State::Starting, Cause::Startup);
        if self.settings.startup.is_zero() {
            self.end_startup(now);
        } else {
            self.timers
                .set(Timer::Startup, later(now, self.settings.startup));
        }
    }

    /// The start-up window passed without a heartbeat. A VIP we found on our
    /// NIC is kept only if no other host answers for it; otherwise the
    /// primary looks at the VIP and claims, and the secondary watches.
    pub(super) fn end_startup(&mut self, now: Instant) {
        if self.state() != State::Starting {
            return;
        }
        let stand_by = self.admin.disabled || self.in_maintenance();
        if self.vip.held && stand_by {
            self.release(now, Cause::StaleVip, Ending::Passive, true);
        } else if stand_by {
            self.change_state(now, State::Passive, Cause::PeerSilent);
        } else if self.vip.held || self.settings.role == Role::Primary {
            self.look(now, None, Cause::PeerSilent);
        } else {
            self.change_state(now, State::Passive, Cause::PeerSilent);
        }
    }

    /// The VIP is on the NIC (a claim's first step, or a restoration).
    pub(super) fn on_vip_added(&mut self, now: Instant, outcome: Outcome) {
        if self.state() == State::Restoring {
            match &outcome {
                Err(why) => MoveNote::RestoreFailed { why }.log(),
                Ok(()) => self.notify(EventKind::VipRestored, Cause::VipRemoved, None),
            }
            self.change_state(now, State::Active, Cause::StepDone);
            self.actions.push_back(Action::Announce);
            return;
        }
        self.vip.held = true;
        if outcome.is_ok() {
            let failed = self.record.flaps.claim_succeeded();
            if failed > 0 {
                MoveNote::ClaimWentThrough { failed }.log();
            }
        }
        match outcome {
            Ok(()) if self.admin.shutdown => self.stop_mid_claim(now),
            Ok(()) => self.change_state(now, State::Announcing, Cause::StepDone),
            Err(why) => {
                let failed = self.record.flaps.claim_failed(now, &why);
                MoveNote::ClaimBackingOff {
                    failed: failed.count,
                    wait: failed.wait,
                    why: &why,
                }
                .log();
                // A claim that fails again and again is the pair fighting
                // a fault: it counts toward the flap limit.
                self.record_move(now);
                self.release(now, Cause::ClaimFailed(why), Ending::Passive, false);
            }
        }
    }

    /// A stop asked while a claim's step was in flight, now that it is
    /// done. The application is stopped only if it runs: it does when a
    /// re-executed daemon was taking back what its predecessor held
    /// (`understudy restart`); a fresh claim has not started it yet.
    pub(super) fn stop_mid_claim(&mut self, now: Instant) {
        let stop_app = self.machine.mode().adopting();
        self.release(now, Cause::Shutdown, Ending::Exit, stop_app);
    }

    /// The application stopped in a release: the VIP goes next, after the
    /// final mirror pass of a planned handover.
    pub(super) fn on_app_stopped(&mut self, now: Instant, outcome: Outcome) {
        if let Err(why) = outcome {
            MoveNote::StopFailed { why: &why }.log();
        }
        let passes = self.machine.mode().release().and_then(|r| r.mirror);
        if passes.is_some() && self.vip.held {
            self.change_state(now, State::FinalSync, Cause::StepDone);
        } else if self.vip.held {
            self.change_state(now, State::Releasing, Cause::StepDone);
        } else {
            // Fenced: the VIP went first.
            self.end_release(now);
        }
    }

    /// The release's last step: where it ends was decided when it began.
    pub(super) fn on_vip_removed(&mut self, now: Instant, outcome: Outcome) {
        if let Err(why) = &outcome {
            MoveNote::RemoveFailed { why }.log();
        }
        self.vip.held = outcome.is_err();
        if self.settings.witness.is_some() && !self.vip.held {
            self.give_back_lease();
        }
        if let Some(release) = self.machine.release_mut().filter(|r| r.stop_app_after) {
            // Fenced: the VIP went first; now the application stops.
            release.stop_app_after = false;
            self.change_state(now, State::StoppingApp, Cause::StepDone);
            return;
        }
        self.end_release(now);
    }

    /// Where the release goes once the VIP is off and the application
    /// stopped: decided when it began.
    pub(super) fn end_release(&mut self, now: Instant) {
        let next = match self
            .machine
            .mode()
            .release()
            .map_or(After::Passive, |r| r.after)
        {
            After::Passive => State::Passive,
            After::Exit => State::Stopped,
        };
        self.change_state(now, next, Cause::StepDone);
    }

    /// Only the node that holds the VIP probes its own application, so the
    /// signal is known (and acted on) there alone.
    pub(super) fn on_maintenance_signal(&mut self, now: Instant, on: bool) {
        if let Some(serve) = self.machine.serve_mut() {
            if on != serve.maintenance_signal {
                AppNote::MaintenanceSignalChanged { on }.log();
            }
            serve.maintenance_signal = on;
        }
        if on && self.state() == State::Active {
            self.hand_over_planned(now, Cause::MaintenanceSignal, false);
        }
    }

    /// The failback's drain ended: hand back, unless the primary is no
    /// longer ready.
    pub(super) fn on_drained(&mut self, now: Instant, remaining: usize) {
        MoveNote::Drained { remaining }.log();
        if self.admin.shutdown {
            self.release(now, Cause::Shutdown, Ending::Exit, true);
        } else if self.peer_ready_to_take_over(now) {
            self.hand_over_planned(now, Cause::Failback, false);
        } else {
            MoveNote::PrimaryNoLongerReady.log();
            self.change_state(now, State::Active, Cause::StepDone);
        }
    }

    pub(super) fn on_shutdown(&mut self, now: Instant) {
        self.admin.shutdown = true;
        match self.state() {
            State::Init | State::Starting | State::Acquiring | State::Passive if self.vip.held => {
                self.release(now, Cause::Shutdown, Ending::Exit, true)
            }
            State::Init | State::Starting | State::Acquiring | State::Passive => {
                self.change_state(now, State::Stopped, Cause::Shutdown)
            }
            State::Active => self.release(now, Cause::Shutdown, Ending::Exit, true),
            // A wait is in flight (the look, the application's start, a
            // drain): cut it short; its completion routes to the release.
            State::Checking | State::StartingApp | State::RestartingApp | State::Draining => {
                self.actions.push_back(Action::Interrupt)
            }
            // A step is in flight; its completion routes to the release.
            State::Claiming
            | State::Announcing
            | State::Restoring
            | State::Syncing
            | State::StoppingApp
            | State::FinalSync
            | State::Releasing
            | State::Stopped => {}
        }
    }

    /// This node could not run a probe: nothing is learnt of the target,
    /// and the node cannot judge until that probe runs again.
    pub(super) fn on_probe_not_run(&mut self, target: Target, why: String) {
        self.probes.not_run(target, why);
    }

    pub(super) fn on_probe(
        &mut self,
        now: Instant,
        target: Target,
        started: Instant,
        outcome: Outcome,
        refused: bool,
    ) {
        self.probes.ran(target);
        let since = |s: Option<Instant>| s.is_some_and(|s| started >= s);
        let peer_watch = since(self.watch().and_then(|w| w.since));
        let state = self.state();
        let local_watch = state == State::Active
            && since(self.machine.mode().serve().and_then(|s| s.local_since));
        let (health, watching) = match target {
            Target::Peer => (&mut self.probes.peer_app, peer_watch),
            Target::Local => (&mut self.probes.local, local_watch),
            Target::Data => (&mut self.probes.data, state != State::Stopped),
            Target::Nic => (&mut self.probes.nic, state != State::Stopped),
        };
        if !watching {
            ProbeNote::StaleProbe { target }.log();
            return;
        }
        let first = health.verdict() == Verdict::Unknown;
        let change = health.record_probe(started, &outcome, refused);
        let grace = self.settings.grace;
        let why = outcome.err().unwrap_or_default();
        match (target, change) {
            (_, Change::None) => {}
            (Target::Peer, Change::StartedFailing(_)) => ProbeNote::PeerAppNotAnswering {
                why: &why,
                // A claiming peer's application is still starting.
                peer_holds: self.peer().state() == Some(WireState::Active),
            }
            .log(),
            // A first verdict of healthy is how things should be, not news.
            (_, Change::Recovered) if first => {
                ProbeNote::FirstHealthy { target }.log();
                self.on_recovered(target);
            }
            (Target::Peer, Change::Recovered) => ProbeNote::PeerAppHealthy.log(),
            (Target::Local, Change::StartedFailing(since)) => {
                let left = later(since, grace).saturating_duration_since(now);
                ProbeNote::LocalFailing { why: &why, left }.log();
                self.timers.set(Timer::SelfRelease, later(since, grace));
            }
            (Target::Local, Change::Recovered) => {
                ProbeNote::LocalHealthy.log();
                self.on_recovered(target);
            }
            (Target::Data, Change::StartedFailing(_)) => {
                ProbeNote::DataUnreachable { why: &why }.log()
            }
            (Target::Data, Change::Recovered) => ProbeNote::DataReachable.log(),
            (Target::Nic, Change::StartedFailing(_)) => {
                ProbeNote::NicUnusable { why: &why }.log();
                // A VIP on a dead link serves nobody: hand it over at once.
                if self.state() == State::Active {
                    self.release(now, Cause::NicDown(why), Ending::HeldDown, true);
                }
            }
            (Target::Nic, Change::Recovered) => ProbeNote::NicUsable.log(),
        }
        if matches!(target, Target::Nic | Target::Data) {
            self.end_startup_early(now);
        }
    }

    /// What a target that counts as healthy again changes (however it is
    /// logged): our own application's release is called off, and a failed
    /// application that serves again ends its recovery.
    fn on_recovered(&mut self, target: Target) {
        if target != Target::Local {
            return;
        }
        self.timers.stop(Timer::SelfRelease);
        let restarting = self.timers.get(Timer::RestartApp).is_some();
        if let Some(serve) = self.machine.serve_mut().filter(|s| s.recovery.failed()) {
            if !restarting {
                AppNote::AppServesAgain.log();
                serve.recovery = AppRecovery::Serving;
            }
        }
    }

    /// The peer's host refused a heartbeat (ICMP port unreachable): its
    /// daemon is gone, which the peer view now says until it speaks again.
    pub(super) fn on_heartbeat_refused(&mut self, now: Instant, node: u16) {
        if let Some(peer) = self.peers.by_id_mut(node) {
            peer.view.refused(now);
        }
    }

    /// A valid heartbeat from peer `hb.node_id`: its view is updated, the
    /// watched peer chosen again, and what the watched peer reports (its
    /// application or data service down, maintenance) noted.
    pub(super) fn on_heartbeat(&mut self, now: Instant, hb: Heartbeat) {
        let Some(peer) = self.peers.by_id(hb.node_id) else {
            InputNote::UnknownPeer { id: hb.node_id }.log();
            return;
        };
        let (name, before) = (peer.info.name.clone(), peer.view.state());
        let was_holding = peer.view.holding();
        if before != Some(hb.state) {
            PeerNote::PeerState {
                peer: &name,
                from: before,
                to: hb.state,
                term: hb.term,
            }
            .log();
        }
        self.note_checksum(&name, hb.config_checksum);
        let we_hold = matches!(
            self.state().wire(),
            heartbeat::WireState::Claiming | heartbeat::WireState::Active
        );
        if we_hold && was_holding && !hb.state.holding() {
            self.vip.reannounce_pending = true;
        }
        if let Some(peer) = self.peers.by_id_mut(hb.node_id) {
            peer.view.last_seen = Some(now);
            peer.view.last = Some(hb);
        }
        self.refocus(now);
        if self.peers.watched().info.id == hb.node_id {
            self.note_watched_report(now, hb, before);
        }
        self.end_startup_early(now);
    }

    /// Ends the start-up window before its timer once what this node heard
    /// and knows of itself allow it: a heartbeat from a more preferred node
    /// or a holder (from any node, if none is more preferred than us), and
    /// our own NIC and data service judged. A node that heard only less
    /// preferred nodes listens for the whole window, so that a cold start
    /// of several nodes claims in order of preference (a backup that had
    /// heard only the other backup asked for the lease before the
    /// primary's first heartbeat reached it); and one whose first probes
    /// are still out says "starting", not "Passive, NIC down", so that the
    /// others wait for it rather than claim past it.
    pub(super) fn end_startup_early(&mut self, now: Instant) {
        if self.state() != State::Starting || !self.own_checks_known() {
            return;
        }
        let (ours, silence) = (self.settings.preference, self.settings.silence());
        let most_preferred = self.peers.iter().all(|p| p.info.preference > ours);
        let heard = self.peers.iter().any(|p| {
            p.view.available(now, silence)
                && (most_preferred || p.info.preference < ours || p.view.holding())
        });
        if heard {
            self.change_state(now, State::Passive, Cause::PeerHeard);
        }
    }

    /// A peer's configuration checksum: drift is reported once, and its
    /// end too.
    fn note_checksum(&mut self, peer: &str, theirs: u64) {
        let ours = self.settings.config_checksum;
        if theirs != ours && !self.peers.config_mismatch {
            PeerNote::ConfigDiffers { peer, ours, theirs }.log();
            let cause = Cause::ConfigDrift {
                peer: peer.to_owned(),
                theirs,
                ours,
            };
            self.notify(EventKind::ConfigDrift, cause, None);
        }
        if theirs == ours && self.peers.config_mismatch {
            PeerNote::ConfigAgrees { peer }.log();
        }
        self.peers.config_mismatch = theirs != ours;
    }

    /// What the watched peer's heartbeat says of its own failure.
    fn note_watched_report(&mut self, now: Instant, hb: Heartbeat, before: Option<WireState>) {
        self.note_let_go(hb, before);
        let down = reported_down(hb);
        self.peers.reported_down = match (self.peers.reported_down, down) {
            (Some((since, old)), Some(cause)) if old == cause => Some((since, cause)),
            (_, Some(cause)) => Some((now, cause)),
            (_, None) => None,
        };
        if hb.state == heartbeat::WireState::Active
            && before != Some(hb.state)
            && self.watch().is_some_and(|w| w.since.is_some())
        {
            // The peer just finished claiming: judge its application from
            // now on, not by failures seen while it was starting.
            self.probes.peer_app = Health::new(self.settings.rise, self.settings.fall);
            self.with_watch(|w| w.since = Some(now));
        }
    }

    /// Remembers why the watched peer let go of the VIP, when it stops
    /// holding it while heard (a planned move, told as one when this node
    /// claims); forgotten once it holds again. A peer failing by our
    /// judgement is not planned: that is told by its failure.
    fn note_let_go(&mut self, hb: Heartbeat, before: Option<WireState>) {
        let was_holding = before.is_some_and(WireState::holding);
        let let_go = match (was_holding, hb.state.holding()) {
            (_, true) => None,
            (true, false) if hb.flags.maintenance => Some(LetGo::Maintenance),
            (true, false) if hb.flags.disabled => Some(LetGo::Disabled),
            (true, false) if !hb.flags.data_ok || !hb.flags.nic_ok => None,
            (true, false) => Some(match self.settings.failback {
                Failback::Automatic { .. } if self.preferred_over_watched() => LetGo::Failback,
                // A witness lease that could not be renewed looks the same.
                _ if self.settings.witness.is_some() => LetGo::DemotedOrLeaseLost,
                _ => LetGo::Demoted,
            }),
            (false, false) => return,
        };
        self.with_watch(|w| w.peer_let_go = let_go);
    }
}
