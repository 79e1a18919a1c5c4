//! The state machine: the one place where states are entered and left
//! (`change_state`), with each state's entry and exit actions, the hand-over
//! of data between phases (see [`super::mode`]), and what a finished claim
//! or release leaves behind (counters, events, the flap count).

use std::time::Instant;

use super::flap::FlapChange;
use super::mode::{After, Claim, Ending, Mode, Phase, Release, Serve, Watch};
use super::timer::{later, Timer};
use super::{Action, Because, Cause, Core, EventKind, Health, MoveNote, State, Takeover};

impl Core {
    /// Starts a release: stop the application (when one may run), then
    /// remove the VIP, then go where `ending` says.
    pub(super) fn release(&mut self, now: Instant, cause: Cause, ending: Ending, stop_app: bool) {
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
            holddown_until: holddown.then(|| later(now, self.holddown())),
            stop_app_after: stop_app && self.lease_lapsed(),
        };
        let first = if stop_app && !release.stop_app_after {
            State::StoppingApp
        } else {
            State::Releasing
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
        let from = self.state;
        MoveNote::StateChange {
            from,
            to,
            cause: &cause,
            term: self.teller.term,
        }
        .log();
        if from == State::Active {
            self.timers.stop(Timer::ProbeLocal);
            self.timers.stop(Timer::SelfRelease);
            self.timers.stop(Timer::Refresh);
            if let Some(serve) = self.mode.serve_mut() {
                // Only the Active node probes its own application, so what
                // it saw of it is not known any longer.
                serve.local_since = None;
                serve.maintenance_signal = false;
            }
        }
        if Phase::of(to) != self.mode.phase() || next.is_some() {
            let old = std::mem::replace(&mut self.mode, Mode::Idle);
            let mode = next.unwrap_or_else(|| self.next_phase(now, &old, to, &cause));
            self.leave_phase(now, old, Phase::of(to), &cause);
            self.mode = mode;
        }
        self.state = to;
        self.entry(now, to);
    }

    /// Consumes the data of a phase that ends, on the way to phase `to`.
    pub(super) fn leave_phase(&mut self, now: Instant, old: Mode, to: Phase, cause: &Cause) {
        match old {
            Mode::Watch(_) => self.timers.stop(Timer::ProbePeer),
            // A claim that reaches Active is a takeover (its application
            // may have failed to start and be restarted in place).
            Mode::Claim(claim) if to == Phase::Serve && claim.adopting => MoveNote::Adopted {
                took: now.saturating_duration_since(claim.started),
                term: self.teller.term,
            }
            .log(),
            Mode::Claim(claim) if to == Phase::Serve => {
                self.took_over(now, claim, matches!(cause, Cause::AppStartFailed(_)))
            }
            Mode::Serve(_) => self.timers.stop(Timer::RestartApp),
            Mode::Release(release) => self.released(now, release),
            Mode::Idle | Mode::Claim(_) => {}
        }
    }

    /// The data of the phase `to` begins, made from what the old phase
    /// hands over.
    pub(super) fn next_phase(
        &mut self,
        now: Instant,
        old: &Mode,
        to: State,
        cause: &Cause,
    ) -> Mode {
        let mode = match (old, Phase::of(to)) {
            (_, Phase::Idle) => Mode::Idle,
            (Mode::Release(r), Phase::Watch) => Mode::Watch(Watch {
                since: Some(now),
                holddown_until: r.holddown_until,
                handover_pending: r.handover,
                ..Watch::default()
            }),
            (_, Phase::Watch) => Mode::Watch(Watch {
                since: Some(now),
                ..Watch::default()
            }),
            (Mode::Watch(w), Phase::Claim) => Mode::Claim(Claim {
                // The look, or else the lease's ask, began the claim.
                started: w.look.as_ref().map_or_else(
                    || w.acquiring.as_ref().map_or(now, |(since, _)| *since),
                    |l| l.decided(),
                ),
                cause: match &w.look {
                    Some(look) => Because(vec![look.cause.clone(), cause.clone()]),
                    None => cause.clone().into(),
                },
                promoted: w.promote.is_some(),
                yield_to: None,
                adopting: matches!(cause, Cause::Adopted),
            }),
            (_, Phase::Claim) => Mode::Claim(Claim {
                started: now,
                cause: cause.clone().into(),
                promoted: false,
                yield_to: None,
                adopting: matches!(cause, Cause::Adopted),
            }),
            (_, Phase::Serve) => Mode::Serve(Serve::default()),
            (_, Phase::Release) => Mode::Release(Release {
                started: now,
                cause: cause.clone(),
                after: After::Passive,
                handover: false,
                holddown_until: None,
                stop_app_after: false,
            }),
        };
        if let Mode::Watch(_) = mode {
            // A fresh watch of the peer's application: a failure seen
            // while we held the VIP must not count towards a takeover.
            self.probes.peer_app = Health::new(self.settings.rise, self.settings.fall);
            self.timers.set(Timer::ProbePeer, now);
        }
        mode
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
                let due = self.w().look.as_ref().and_then(|l| l.due);
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
                if !self.mode.adopting() && self.settings.witness.is_none() && !retry {
                    self.teller.term = self.teller.term.max(self.peer().term()) + 1;
                }
                self.actions.push_back(Action::AddVip);
            }
            State::Announcing => self.actions.push_back(Action::Announce),
            State::StartingApp if self.mode.adopting() => self.actions.push_back(Action::AdoptApp),
            State::StartingApp => self.actions.push_back(Action::StartApp),
            State::Active => {
                self.record.peer_failure = None;
                self.probes.local = Health::new(self.settings.rise, self.settings.fall);
                if let Some(serve) = self.mode.serve_mut() {
                    serve.local_since = Some(now);
                    serve.yield_to = None;
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
            State::StoppingApp => self.actions.push_back(Action::StopApp),
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
