//! The administrator's commands and the process's requests, as rules:
//! what each does from each state, and what it is refused for (the types
//! are in [`super`]).

use std::time::Instant;

use super::super::{Action, Cause, Core, Ending, InputNote, Promotion, State, Target, Yielding};
use super::{AdminCommand, AdminReply, Done, Refusal};
use crate::proto::heartbeat::WireState;

impl Core {
    /// Applies `cmd` now. `force` skips the safety checks.
    pub fn handle_admin(&mut self, now: Instant, cmd: AdminCommand, force: bool) -> AdminReply {
        let reply = self.admin(now, &cmd, force);
        match &reply {
            Ok(done) => InputNote::AdminApplied {
                cmd: &cmd,
                force,
                done,
            }
            .log(),
            Err(why) => InputNote::AdminRefused {
                cmd: &cmd,
                force,
                why,
            }
            .log(),
        }
        self.decide(now);
        self.tell_peer(now);
        reply
    }

    fn admin(&mut self, now: Instant, cmd: &AdminCommand, force: bool) -> AdminReply {
        let holding = self.state() == State::Active;
        let changes_hands = matches!(
            cmd,
            AdminCommand::Disable
                | AdminCommand::Promote
                | AdminCommand::Demote
                | AdminCommand::MaintenanceOn
        );
        let settled = matches!(
            self.state(),
            State::Active | State::Passive | State::Starting
        );
        if *cmd == AdminCommand::Promote && self.state().wire() == WireState::Claiming {
            return Ok(Done::AlreadyTakingOver);
        }
        if (changes_hands || *cmd == AdminCommand::Restart) && !settled {
            return Err(Refusal::Busy(self.state()));
        }
        match cmd {
            AdminCommand::Enable => {
                self.admin.disabled = false;
                Ok(Done::Enabled)
            }
            AdminCommand::Disable => self.disable(now, holding, force),
            AdminCommand::Promote => self.promote(now, holding, force),
            AdminCommand::Demote => {
                if !holding {
                    return Err(Refusal::NotHolding);
                }
                if !force {
                    self.peer_can_serve(now)?;
                }
                self.hand_over_planned(now, Cause::Demoted, force);
                Ok(Done::Demoting)
            }
            AdminCommand::MaintenanceOn => {
                if holding && !force {
                    self.peer_can_serve(now)?;
                }
                self.admin.maintenance = true;
                if holding {
                    self.hand_over_planned(now, Cause::Maintenance, force);
                }
                Ok(Done::MaintenanceOn)
            }
            AdminCommand::MaintenanceOff => {
                self.admin.maintenance = false;
                Ok(Done::MaintenanceOff)
            }
            AdminCommand::Refresh => Ok(self.refresh()),
            AdminCommand::ResetFlapping => {
                let was = self.record.flaps.since().is_some();
                self.record.flaps.reset();
                Ok(Done::FlappingReset { was })
            }
            AdminCommand::Forget { node } => self.forget(now, node, force),
            AdminCommand::Restart => Ok(self.restart(now)),
        }
    }

    /// Tells the peer we are restarting (so that the silence until the new
    /// process speaks is not a failure), then asks the runtime to re-exec.
    fn restart(&mut self, now: Instant) -> Done {
        let holding = self.state() == State::Active;
        self.admin.restarting = true;
        self.send_heartbeat(now);
        self.timers.stop_all();
        self.actions.push_back(Action::Exec {
            term: self.teller.term,
            holding,
        });
        Done::Restarting { holding }
    }

    fn disable(&mut self, now: Instant, holding: bool, force: bool) -> AdminReply {
        if holding && !force {
            return Err(Refusal::HoldsDemoteFirst);
        }
        self.admin.disabled = true;
        if holding {
            self.hand_over(now, Cause::Disabled);
        }
        Ok(Done::Disabled)
    }

    fn promote(&mut self, now: Instant, holding: bool, force: bool) -> AdminReply {
        if holding {
            return Ok(Done::AlreadyHolding);
        }
        if !force {
            self.can_serve()?;
            // We told the peer it may claim (it asked, or we handed over):
            // its claim may be in flight, and claiming now could make two
            // holders. Once it holds, a promotion asks it to release.
            let yielding = self.watch().map_or(Yielding::No, |w| w.yielding);
            let granted = yielding.defers()
                && self.peer_available(now)
                && !self.peer().holding()
                && (yielding == Yielding::HandingOver
                    || self.peer().last.is_some_and(|h| h.flags.release_request));
            if granted {
                return Err(Refusal::PeerTakingOver);
            }
            if !self.peer_available(now) {
                return Err(Refusal::PeerSilent);
            }
        }
        self.admin.disabled = false;
        self.admin.maintenance = false;
        let promotion = if force {
            Promotion::Forced
        } else {
            Promotion::Asked
        };
        self.with_watch(|w| w.promote = Some(promotion));
        Ok(Done::Promoting)
    }

    fn refresh(&mut self) -> Done {
        for target in [Target::Peer, Target::Data, Target::Nic] {
            self.actions.push_back(super::super::Action::Probe(target));
        }
        if self.state() == State::Active {
            self.actions
                .push_back(super::super::Action::Probe(Target::Local));
            self.actions.push_back(super::super::Action::Announce);
            return Done::Probing { announce: true };
        }
        Done::Probing { announce: false }
    }

    fn forget(&mut self, now: Instant, node: &str, force: bool) -> AdminReply {
        if node == self.settings.name {
            return Err(Refusal::CannotForgetSelf);
        }
        let timeout = self.settings.silence();
        let Some(peer) = self.peers.by_name(node) else {
            return Err(Refusal::NoSuchNode(node.to_owned()));
        };
        if peer.view.available(now, timeout) && !force {
            return Err(Refusal::StillHeard(node.to_owned()));
        }
        let (id, watched) = (peer.info.id, peer.info.id == self.peers.watched().info.id);
        if let Some(peer) = self.peers.by_id_mut(id) {
            peer.view = super::super::PeerView::default();
        }
        if watched {
            self.peers.reported_down = None;
        }
        Ok(Done::Forgot(node.to_owned()))
    }

    /// Can this node serve if it takes over?
    fn can_serve(&self) -> Result<(), Refusal> {
        match self.takeover_blocker() {
            Some(why) => Err(Refusal::CannotServe(why)),
            None => Ok(()),
        }
    }

    /// Can the peer take over from us?
    fn peer_can_serve(&self, now: Instant) -> Result<(), Refusal> {
        if !self.peer_available(now) {
            return Err(Refusal::PeerUnavailable);
        }
        if !self.peer_ready_to_take_over(now) {
            return Err(Refusal::PeerCannotTakeOver);
        }
        Ok(())
    }

    /// Releases on purpose (from Active), telling the peer to claim at once.
    pub(in crate::core) fn hand_over(&mut self, now: Instant, cause: Cause) {
        self.release(now, cause, Ending::HandOver, true);
    }
}
