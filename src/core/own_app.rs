//! Our own application's failures while we hold the VIP: hand over to a
//! peer that can serve, or keep the VIP and restart the application in
//! place (see [`super::recovery`]).

use std::time::Instant;

use tracing::{error, info, warn};

use super::mode::{Ending, Mode};
use super::timer::{later, Timer};
use super::{countdown, AppRecovery, Cause, Core, EventKind, Outcome, State};

impl Core {
    /// The application's start (in a claim) or restart (in place) ended.
    pub(super) fn on_app_started(&mut self, now: Instant, outcome: Outcome) {
        match outcome {
            _ if self.shutdown => self.release(now, Cause::Shutdown, Ending::Exit, true),
            _ if self.yield_to().is_some() => {
                let cause = self.yield_to().unwrap_or(Cause::PeerAsked);
                self.hand_over(now, cause);
            }
            Ok(()) => {
                if self.state == State::RestartingApp {
                    info!(after = ?self.mode.recovery(), "application restarted");
                }
                self.change_state(now, State::Active, Cause::StepDone);
            }
            Err(why) if self.state == State::StartingApp && self.peer_can_take_over(now) => {
                error!(%why, "application failed to start; releasing the common IP to the peer");
                self.notify(
                    EventKind::ApplicationFailed,
                    format!("failed to start: {why}"),
                    None,
                );
                // The peer can serve: tell it to claim at once.
                self.hand_over(now, Cause::AppStartFailed(why))
            }
            Err(why) => {
                // No peer can serve: releasing would leave nobody serving
                // and re-claiming would churn. Keep the VIP, restart here.
                let first = self.state == State::StartingApp;
                let cause = if first {
                    Cause::AppStartFailed(why.clone())
                } else {
                    Cause::StepDone
                };
                self.change_state(now, State::Active, cause);
                let what = if first {
                    "failed to start"
                } else {
                    "restart failed"
                };
                self.on_own_app_failed(now, format!("{what}: {why}"));
            }
        }
    }

    /// The cause to hand over with once the (re)start in flight ends, if a
    /// peer that can serve is waiting for it.
    pub(super) fn yield_to(&self) -> Option<Cause> {
        match &self.mode {
            Mode::Claim(c) => c.yield_to.clone(),
            Mode::Serve(s) => s.yield_to.clone(),
            _ => None,
        }
    }

    /// Could the peer take the VIP from us now, and may it (the flap limit
    /// stops automatic moves)?
    pub(super) fn peer_can_take_over(&self, now: Instant) -> bool {
        self.peer_ready_to_take_over(now) && self.flaps.since().is_none()
    }

    /// Our own application has failed while we hold the VIP. A peer that
    /// can serve takes over at once; with none, the VIP stays and the
    /// application is restarted here, a bounded number of times.
    pub(super) fn on_own_app_failed(&mut self, now: Instant, why: String) {
        if self.peer_can_take_over(now) {
            self.notify(EventKind::ApplicationFailed, why.clone(), None);
            // The peer can serve: tell it to claim at once.
            self.hand_over(now, Cause::LocalAppFailed(why));
            return;
        }
        let Some(serve) = self.mode.serve_mut() else {
            return;
        };
        serve.recovery = serve.recovery.next(self.settings.restart_attempts);
        let recovery = serve.recovery;
        let AppRecovery::Restarting { attempt, fast } = recovery else {
            return;
        };
        let wait = recovery.wait(self.settings.restart_backoff);
        warn!(%why, attempt, fast, wait = ?wait, "the application failed and no peer can take over; keeping the common IP and restarting it");
        if attempt == 1 || attempt == fast + 1 {
            let text = if attempt == 1 {
                format!("{why}; no peer can take over: restarting it here")
            } else {
                format!("{why}; {fast} restarts failed: retrying every {}, the common IP stays until it serves or a peer can", countdown::humanize(wait))
            };
            self.notify(EventKind::ApplicationFailed, text, None);
        }
        self.timers.set(Timer::RestartApp, later(now, wait));
    }
}
