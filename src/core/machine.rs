//! The state machine: the one place where states are entered and left
//! (`change_state`), with each state's entry and exit actions, the hand-over
//! of data between phases (see [`super::mode`]), and what a finished claim
//! or release leaves behind (counters, events, the flap count).
//!
//! [`Machine`] is the part of the core that holds the state and its
//! phase's data. Its fields are private to this module: the rest of the
//! core reads the state and changes the current phase's data in place, but
//! only [`Core::enter`] moves either.

use std::time::Instant;

use super::flap::FlapChange;
use super::mode::{After, Claim, Ending, MirrorPasses, Mode, Release, Serve, Watch};
use super::timer::{later, Timer};
use super::{Action, Cause, Core, EventKind, Health, MoveNote, State, Takeover};

/// The state and the data of the phase it belongs to.
#[derive(Debug)]
pub(super) struct Machine {
    state: State,
    mode: Mode,
}

impl Machine {
    pub fn new() -> Machine {
        Machine {
            state: State::Init,
            mode: Mode::Idle,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The current phase's data, to read.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The watch's data; `None` outside the Watch phase.
    pub fn watch(&self) -> Option<&Watch> {
        self.mode.watch()
    }

    pub fn watch_mut(&mut self) -> Option<&mut Watch> {
        self.mode.watch_mut()
    }

    pub fn serve_mut(&mut self) -> Option<&mut Serve> {
        self.mode.serve_mut()
    }

    pub fn release_mut(&mut self) -> Option<&mut Release> {
        self.mode.release_mut()
    }

    /// See [`Mode::set_yield_to`].
    pub fn set_yield_to(&mut self, cause: Cause) -> bool {
        self.mode.set_yield_to(cause)
    }
}

impl Core {
    /// Starts a release: stop the application (when one may run), then
    /// remove the VIP, then go where `ending` says.
    pub(super) fn release(&mut self, now: Instant, cause: Cause, ending: Ending, stop_app: bool) {
        self.release_with(now, cause, ending, stop_app, None);
    }

    /// [`Core::release`], with the mirror passes of a planned handover
    /// (see [`super::mirror_pass`]).
    pub(super) fn release_with(
        &mut self,
        now: Instant,
        cause: Cause,
        ending: Ending,
        stop_app: bool,
        mirror: Option<MirrorPasses>,
    ) {
        let ending = if self.admin.shutdown {
            Ending::Exit
        } else {
            ending
        };
        let holddown = matches!(ending, Ending::HeldDown | Ending::HandOver);
        let release = Release {
            started: now,
            cause: cause.clone(),
            after: if ending == Ending::Exit {
                After::Exit
            } else {
                After::Passive
            },
            handover: ending == Ending::HandOver,
            holddown: holddown.then(|| self.holddown()),
            stop_app_after: stop_app && self.lease_lapsed(),
            mirror,
        };
        let first = match (stop_app && !release.stop_app_after, release.mirror) {
            (true, Some(_)) => State::Syncing,
            (true, None) => State::StoppingApp,
            (false, _) => State::Releasing,
        };
        self.enter(now, first, cause, Some(Mode::Release(release)));
    }

    /// How long a node that released for its own failure (or on request)
    /// waits before claiming again: twice the grace period, and, beyond a
    /// pair, one deferral step more for every other peer, so that each of
    /// them gets its turn before the VIP comes back here.
    fn holddown(&self) -> std::time::Duration {
        let others = self.settings.peers.len().saturating_sub(1) as u32;
        let grace = self.settings.grace.saturating_mul(2);
        grace + self.defer_step().saturating_mul(others)
    }

    /// The one place where states are entered and left.
    pub(super) fn change_state(&mut self, now: Instant, to: State, cause: Cause) {
        self.enter(now, to, cause, None);
    }

    /// Leaves the current state for `to`: the state's exit actions, then,
    /// when the phase changes, the old phase's data is consumed and the new
    /// phase's made (`next` when the caller made it), then `to`'s entry
    /// actions.
    pub(super) fn enter(&mut self, now: Instant, to: State, cause: Cause, next: Option<Mode>) {
        let from = self.machine.state;
        let watching = |s: State| matches!(s, State::Passive | State::Checking | State::Acquiring);
        if !watching(to) {
            self.end_held_back(now);
        }
        MoveNote::StateChange {
            from,
            to,
            cause: &cause,
            term: self.teller.term,
            // A held-back takeover's retry: its steps were said once.
            quiet: watching(from) && watching(to) && self.retrying_held_back(),
        }
        .log();
        if from == State::Active {
            self.timers.stop(Timer::ProbeLocal);
            self.timers.stop(Timer::SelfRelease);
            self.timers.stop(Timer::Refresh);
            if let Some(serve) = self.machine.mode.serve_mut() {
                // Only the Active node probes its own application, so what
                // it saw of it is not known any longer.
                serve.local_since = None;
                serve.maintenance_signal = false;
            }
        }
        let made = next.is_some();
        let mode = next.unwrap_or_else(|| Mode::begin(&self.machine.mode, to, now, &cause));
        if made || !mode.same_phase(&self.machine.mode) {
            let old = std::mem::replace(&mut self.machine.mode, mode);
            let serving = matches!(self.machine.mode, Mode::Serve(_));
            self.leave_phase(now, old, serving, &cause);
            if let Mode::Watch(_) = self.machine.mode {
                self.begin_watch(now);
            }
        }
        self.machine.state = to;
        self.entry(now, to);
    }

    /// Consumes the data of a phase that ends (`serving`: on the way to
    /// holding the VIP).
    fn leave_phase(&mut self, now: Instant, old: Mode, serving: bool, cause: &Cause) {
        match old {
            Mode::Watch(_) => self.timers.stop(Timer::ProbePeer),
            // A claim that reaches Active is a takeover (its application
            // may have failed to start and be restarted in place).
            Mode::Claim(claim) if serving && claim.adopting => MoveNote::Adopted {
                took: now.saturating_duration_since(claim.started),
                term: self.teller.term,
            }
            .log(),
            Mode::Claim(claim) if serving => {
                self.took_over(now, claim, matches!(cause, Cause::AppStartFailed(_)))
            }
            Mode::Serve(_) => self.timers.stop(Timer::RestartApp),
            // Back to serving: the release was called off (a failed mirror
            // pass), nothing was released.
            Mode::Release(_) if serving => {}
            Mode::Release(release) => self.released(now, release),
            Mode::Idle | Mode::Claim(_) => {}
        }
    }

    /// A fresh watch of the peer's application: a failure seen while we
    /// held the VIP must not count towards a takeover.
    fn begin_watch(&mut self, now: Instant) {
        self.probes.peer_app = Health::new(self.settings.rise, self.settings.fall);
        self.timers.set(Timer::ProbePeer, now);
    }

    /// A release finished: count it, and tell it.
    pub(super) fn released(&mut self, now: Instant, release: Release) {
        self.record.counters.releases += 1;
        self.record.last_move = Some(now);
        let took = now.saturating_duration_since(release.started);
        MoveNote::Released { took }.log();
        if release.cause.is_automatic_move() {
            self.record_move(now);
        }
        let retried = matches!(release.cause, Cause::ClaimFailed(_))
            && self
                .record
                .flaps
                .failed_claims()
                .is_some_and(|f| f.count > 1);
        if retried {
            // One notification for a streak of failed claims, at its start.
            return;
        }
        let kind = match release.cause {
            Cause::Failback => EventKind::Failback,
            Cause::Demoted
            | Cause::Maintenance
            | Cause::MaintenanceSignal
            | Cause::PeerAsked
            | Cause::Disabled => EventKind::Handover,
            _ => EventKind::Release,
        };
        self.notify(kind, release.cause, Some(took));
    }

    /// The entry actions of each state.
    pub(super) fn entry(&mut self, now: Instant, to: State) {
        match to {
            // The ask went out with the claim (see `Core::claim`).
            State::Init | State::Starting | State::Acquiring => {}
            State::Passive => self.with_watch(|w| w.look = None),
            State::Checking => {
                // Ahead of a takeover, the look lasts until it falls due;
                // otherwise the configured window.
                let due = self.watch().and_then(|w| w.look.as_ref()?.due);
                let window = match due {
                    Some(due) if due > now => due - now,
                    _ => self.settings.look_window,
                };
                self.actions.push_back(Action::CheckVip { window });
            }
            State::Claiming => {
                // An adopted VIP keeps the term it was held with; with a
                // witness, the lease's term is ours already.
                // A retry after a failed claim keeps that claim's term while
                // nobody has claimed with a higher one since.
                let retry = self.record.flaps.failed_claims().is_some()
                    && self.teller.term > self.peer().term();
                if !self.machine.mode.adopting() && self.settings.witness.is_none() && !retry {
                    self.teller.term = self.teller.term.max(self.peer().term()) + 1;
                }
                self.actions.push_back(Action::AddVip);
            }
            State::Announcing => self.actions.push_back(Action::Announce),
            State::StartingApp if self.machine.mode.adopting() => {
                self.actions.push_back(Action::AdoptApp)
            }
            State::StartingApp => self.actions.push_back(Action::StartApp),
            State::Active => {
                self.record.peer_failure = None;
                self.probes.local = Health::new(self.settings.rise, self.settings.fall);
                if let Some(serve) = self.machine.mode.serve_mut() {
                    serve.local_since = Some(now);
                    serve.yield_to = None;
                    serve.resuming = false;
                }
                self.timers
                    .set(Timer::ProbeLocal, later(now, self.settings.interval));
                if let Some(every) = self.settings.refresh {
                    self.timers.set(Timer::Refresh, later(now, every));
                }
            }
            State::Restoring => self.actions.push_back(Action::AddVip),
            State::Draining => self.actions.push_back(Action::Drain),
            State::RestartingApp => self.actions.push_back(Action::RestartApp),
            State::Syncing => self.actions.push_back(Action::MirrorPass { last: false }),
            State::StoppingApp => self.actions.push_back(Action::StopApp),
            State::FinalSync => self.actions.push_back(Action::MirrorPass { last: true }),
            State::Releasing => self.actions.push_back(Action::RemoveVip),
            State::Stopped => {
                self.send_heartbeat(now);
                self.timers.stop_all();
                self.actions.push_back(Action::Exit);
            }
        }
    }

    /// A claim ended: count and tell the takeover.
    pub(super) fn took_over(&mut self, now: Instant, claim: Claim, app_failed: bool) {
        self.record.last_move = Some(now);
        let took = now.saturating_duration_since(claim.started);
        MoveNote::Claimed {
            took,
            term: self.teller.term,
            app_failed,
        }
        .log();
        self.record.counters.takeovers += 1;
        self.notify(EventKind::Takeover, claim.cause.clone(), Some(took));
        self.record.last_takeover = Some(Takeover {
            at: now,
            cause: claim.cause,
            duration: took,
        });
        if !claim.promoted {
            self.record_move(now);
        }
    }

    /// Counts an automatic move of the VIP towards the flap limit.
    pub(super) fn record_move(&mut self, now: Instant) {
        let (limit, window) = (self.settings.flap_limit, self.settings.flap_window);
        if self.record.flaps.record(now, limit, window) == FlapChange::Started {
            let cause = Cause::Flapping {
                moves: self.record.flaps.count(),
                window,
            };
            MoveNote::FlappingStarted { cause: &cause }.log();
            self.notify(EventKind::Flapping, cause, None);
        }
    }
}
