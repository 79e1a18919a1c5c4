//! The mirror passes of a planned handover (demote, maintenance, the
//! application's maintenance signal, automatic failback) when the
//! configuration has `[[mirror]]` sections: a pass while the application
//! still serves (Syncing), then the application stops, then a final pass
//! of only the changes since (FinalSync), then the VIP goes. A pass that
//! fails or runs out of time calls the handover off and this node serves
//! on (a stopped application is started again), unless the administrator
//! forced the move.

use std::time::Instant;

use super::mode::{Ending, MirrorPasses, Mode, Serve};
use super::{Cause, Core, MoveNote, Outcome, State};

impl Core {
    /// A planned handover: with mirrors, through the passes; otherwise as
    /// any handover.
    pub(super) fn hand_over_planned(&mut self, now: Instant, cause: Cause, forced: bool) {
        let serving = matches!(self.state(), State::Active | State::Draining);
        if !self.settings.mirrors || !serving {
            self.hand_over(now, cause);
            return;
        }
        let passes = MirrorPasses { forced };
        self.release_with(now, cause, Ending::HandOver, true, Some(passes));
    }

    /// A pass ended: the handover goes on, or is called off.
    pub(super) fn on_mirror_passed(&mut self, now: Instant, outcome: Outcome) {
        let last = self.state() == State::FinalSync;
        let forced = self
            .machine
            .mode()
            .release()
            .and_then(|r| r.mirror)
            .is_some_and(|p| p.forced);
        let next = if last {
            State::Releasing
        } else {
            State::StoppingApp
        };
        let why = match outcome {
            Ok(()) => {
                MoveNote::MirrorPassDone { last }.log();
                return self.change_state(now, next, Cause::StepDone);
            }
            Err(why) => why,
        };
        if forced || self.admin.shutdown {
            MoveNote::MirrorPassFailedGoingOn { last, why: &why }.log();
            return self.change_state(now, next, Cause::StepDone);
        }
        MoveNote::MirrorPassFailedCalledOff { last, why: &why }.log();
        // Maintenance asked for is off again: it was not entered.
        self.admin.maintenance = false;
        self.record.last_move = Some(now);
        let cause = Cause::MirrorPassFailed(why);
        if last {
            // The application was stopped for the final pass: it starts
            // again here, and no peer takes over meanwhile.
            let serve = Serve {
                resuming: true,
                ..Serve::default()
            };
            self.enter(now, State::RestartingApp, cause, Some(Mode::Serve(serve)));
        } else {
            self.change_state(now, State::Active, cause);
        }
    }
}
