//! Our own application's failures while we hold the VIP: hand over to a
//! peer that can serve, or keep the VIP and restart the application in
//! place (see [`super::recovery`]).

use std::time::Instant;

use super::mode::Ending;
use super::timer::{later, Timer};
use super::{AppFailure, AppNote, AppRecovery, Cause, Core, EventKind, Outcome, State};

impl Core {
    /// The application's start (in a claim) or restart (in place) ended.
    pub(super) fn on_app_started(&mut self, now: Instant, outcome: Outcome) {
        match outcome {
            _ if self.admin.shutdown => self.release(now, Cause::Shutdown, Ending::Exit, true),
            _ if self.yield_to().is_some() => {
                let cause = self.yield_to().unwrap_or(Cause::PeerAsked);
                self.hand_over(now, cause);
            }
            Ok(()) => {
                if self.state() == State::RestartingApp {
                    AppNote::AppRestarted.log();
                }
                self.change_state(now, State::Active, Cause::StepDone);
            }
            Err(why) if self.state() == State::StartingApp && self.peer_can_take_over(now) => {
                AppNote::StartFailedHandingOver { why: &why }.log();
                let failure = AppFailure::Start(why.clone());
                self.notify(
                    EventKind::ApplicationFailed,
                    Cause::LocalAppFailed(failure),
                    None,
                );
                // The peer can serve: tell it to claim at once.
                self.hand_over(now, Cause::AppStartFailed(why))
            }
            Err(why) => {
                // No peer can serve: releasing would leave nobody serving
                // and re-claiming would churn. Keep the VIP, restart here.
                let first = self.state() == State::StartingApp;
                let cause = if first {
                    Cause::AppStartFailed(why.clone())
                } else {
                    Cause::StepDone
                };
                self.change_state(now, State::Active, cause);
                let failure = if first {
                    AppFailure::Start(why)
                } else {
                    AppFailure::Restart(why)
                };
                self.on_own_app_failed(now, failure);
            }
        }
    }

    /// The cause to hand over with once the (re)start in flight ends, if a
    /// peer that can serve is waiting for it.
    pub(super) fn yield_to(&self) -> Option<Cause> {
        self.machine.mode().yield_to()
    }

    /// Could the peer take the VIP from us now, and may it (the flap limit
    /// stops automatic moves)?
    pub(super) fn peer_can_take_over(&self, now: Instant) -> bool {
        self.peer_ready_to_take_over(now) && self.record.flaps.since().is_none()
    }

    /// Our own application has failed while we hold the VIP. A peer that
    /// can serve takes over at once; with none, the VIP stays and the
    /// application is restarted here, a bounded number of times.
    pub(super) fn on_own_app_failed(&mut self, now: Instant, failure: AppFailure) {
        if self.peer_can_take_over(now) {
            let cause = Cause::LocalAppFailed(failure);
            self.notify(EventKind::ApplicationFailed, cause.clone(), None);
            // The peer can serve: tell it to claim at once.
            self.hand_over(now, cause);
            return;
        }
        let Some(serve) = self.machine.serve_mut() else {
            return;
        };
        serve.recovery = serve.recovery.next(self.settings.restart_attempts);
        let recovery = serve.recovery;
        let AppRecovery::Restarting { attempt, fast } = recovery else {
            return;
        };
        let wait = recovery.wait(self.settings.restart_backoff);
        let cause = Cause::RestartingInPlace {
            failure,
            attempt,
            fast,
            wait,
        };
        AppNote::KeepingVip { cause: &cause }.log();
        // Told once when the restarts begin, and once when they slow down.
        if attempt == 1 || attempt == fast + 1 {
            self.notify(EventKind::ApplicationFailed, cause, None);
        }
        self.timers.set(Timer::RestartApp, later(now, wait));
    }
}
