//! The administrator's commands. Each goes into the core like any other
//! input (through [`Core::handle_admin`]) and is answered at once: applied,
//! or refused with the reason when it is unsafe now and not forced.

use std::time::Instant;

use super::{Action, Blocker, Cause, Core, Ending, InputNote, Promotion, State, Target};
use crate::proto::heartbeat::WireState;

/// What the administrator and the process asked of the core, as one part
/// of it: the administrator's settings (kept across restarts by the
/// runtime) and the process's own stop and restart.
pub(super) struct Asked {
    pub disabled: bool,
    pub maintenance: bool,
    /// SIGTERM arrived: finish the step in flight, then release and exit.
    pub shutdown: bool,
    /// `understudy restart` was accepted: the process is about to re-exec;
    /// nothing more is decided.
    pub restarting: bool,
}

impl Asked {
    pub fn new(disabled: bool, maintenance: bool) -> Asked {
        Asked {
            disabled,
            maintenance,
            shutdown: false,
            restarting: false,
        }
    }
}

/// What an administrator can ask of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    /// Allow this node to take over again. Always legal.
    Enable,
    /// Never take over (kept across restarts by the runtime's state file).
    /// On the Active node it is refused unless forced; forced, the node
    /// hands the VIP over first.
    Disable,
    /// Make this node Active through a coordinated handover: the holder is
    /// asked to release, then this node claims. Refused while this node is
    /// Disabled, in maintenance, or cannot serve (NIC down, data service
    /// unreachable), or when the peer is silent, unless forced.
    Promote,
    /// Hand the VIP over to the peer. Refused unless this node is Active and
    /// the peer is available and can serve, unless forced (then the VIP is
    /// released even with nobody to take it).
    Demote,
    /// Maintenance on: hand the VIP over (as `Demote`) and never take it
    /// until maintenance is off. Kept across restarts.
    MaintenanceOn,
    MaintenanceOff,
    /// Probe everything now, and announce again if Active.
    Refresh,
    /// Forget the automatic moves counted towards the flap limit, so that
    /// automatic moves resume. Always legal.
    ResetFlapping,
    /// Drop what is known of a departed node (its last heartbeat).
    Forget {
        node: String,
    },
    /// Re-execute the daemon's binary (an upgrade) without moving the VIP
    /// or restarting the application: the peer is told "restarting" and the
    /// new process adopts what this one holds. Refused between states.
    Restart,
}

/// What an admin command did (worded in [`crate::words`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Enabled,
    Disabled,
    AlreadyTakingOver,
    AlreadyHolding,
    Promoting,
    Demoting,
    MaintenanceOn,
    MaintenanceOff,
    /// Probing now, and announcing again when Active.
    Probing {
        announce: bool,
    },
    /// The flap count was reset; `was` flapping.
    FlappingReset {
        was: bool,
    },
    Forgot(String),
    /// Re-executing now; `holding`: the VIP and application stay.
    Restarting {
        holding: bool,
    },
}

/// Why an admin command was refused (worded in [`crate::words`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Between states; try again.
    Busy(State),
    NotHolding,
    /// Disable on the Active node without force.
    HoldsDemoteFirst,
    /// The peer claims at this node's word.
    PeerTakingOver,
    /// Promote with a silent peer, without force.
    PeerSilent,
    CannotServe(Blocker),
    PeerUnavailable,
    PeerCannotTakeOver,
    CannotForgetSelf,
    NoSuchNode(String),
    StillHeard(String),
}

/// Answer to an admin command: what was done, or why it was refused.
pub type AdminReply = Result<Done, Refusal>;

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
        let holding = self.state == State::Active;
        let changes_hands = matches!(
            cmd,
            AdminCommand::Disable
                | AdminCommand::Promote
                | AdminCommand::Demote
                | AdminCommand::MaintenanceOn
        );
        let settled = matches!(self.state, State::Active | State::Passive | State::Starting);
        if *cmd == AdminCommand::Promote && self.state.wire() == WireState::Claiming {
            return Ok(Done::AlreadyTakingOver);
        }
        if (changes_hands || *cmd == AdminCommand::Restart) && !settled {
            return Err(Refusal::Busy(self.state));
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
                self.hand_over(now, Cause::Demoted);
                Ok(Done::Demoting)
            }
            AdminCommand::MaintenanceOn => {
                if holding && !force {
                    self.peer_can_serve(now)?;
                }
                self.admin.maintenance = true;
                if holding {
                    self.hand_over(now, Cause::Maintenance);
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
        let holding = self.state == State::Active;
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
            let w = self.w();
            let granted = w.deferring
                && self.peer_available(now)
                && !self.peer().holding()
                && (w.handover_pending
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
            self.actions.push_back(super::Action::Probe(target));
        }
        if self.state == State::Active {
            self.actions.push_back(super::Action::Probe(Target::Local));
            self.actions.push_back(super::Action::Announce);
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
            peer.view = super::PeerView::default();
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
    pub(super) fn hand_over(&mut self, now: Instant, cause: Cause) {
        self.release(now, cause, Ending::HandOver, true);
    }
}
