//! The administrator's commands. Each goes into the core like any other
//! input (through [`Core::handle_admin`]) and is answered at once: applied,
//! or refused with the reason when it is unsafe now and not forced.

use std::time::Instant;

use super::{Cause, Core, Ending, Note, State, Target};
use crate::proto::heartbeat::WireState;

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
}

/// Answer to an admin command: what was done, or why it was refused.
pub type AdminReply = Result<String, String>;

impl Core {
    /// Applies `cmd` now. `force` skips the safety checks.
    pub fn handle_admin(&mut self, now: Instant, cmd: AdminCommand, force: bool) -> AdminReply {
        let reply = self.admin(now, &cmd, force);
        match &reply {
            Ok(done) => Note::AdminApplied {
                cmd: &cmd,
                force,
                done,
            }
            .log(),
            Err(why) => Note::AdminRefused {
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
            return Ok("this node is already taking over".into());
        }
        if changes_hands && !settled {
            return Err(format!(
                "this node is busy ({}); try again in a moment",
                self.state
            ));
        }
        match cmd {
            AdminCommand::Enable => {
                self.disabled = false;
                Ok("enabled: this node may take over".into())
            }
            AdminCommand::Disable => self.disable(now, holding, force),
            AdminCommand::Promote => self.promote(now, holding, force),
            AdminCommand::Demote => {
                if !holding {
                    return Err("this node does not hold the common IP".into());
                }
                if !force {
                    self.peer_can_serve(now)?;
                }
                self.hand_over(now, Cause::Demoted);
                Ok("demoting: handing the common IP over to the peer".into())
            }
            AdminCommand::MaintenanceOn => {
                if holding && !force {
                    self.peer_can_serve(now)?;
                }
                self.maintenance = true;
                if holding {
                    self.hand_over(now, Cause::Maintenance);
                }
                Ok("maintenance on: this node will not hold the common IP until maintenance is off".into())
            }
            AdminCommand::MaintenanceOff => {
                self.maintenance = false;
                Ok("maintenance off".into())
            }
            AdminCommand::Refresh => Ok(self.refresh()),
            AdminCommand::ResetFlapping => {
                let was = self.flaps.since().is_some();
                self.flaps.reset();
                Ok(if was {
                    "flapping reset: automatic moves resume".into()
                } else {
                    "not flapping; move count reset".into()
                })
            }
            AdminCommand::Forget { node } => self.forget(now, node, force),
        }
    }

    fn disable(&mut self, now: Instant, holding: bool, force: bool) -> AdminReply {
        if holding && !force {
            return Err("this node holds the common IP; demote it first (or --force to hand over and disable)".into());
        }
        self.disabled = true;
        if holding {
            self.hand_over(now, Cause::Disabled);
        }
        Ok("disabled: this node will not take over".into())
    }

    fn promote(&mut self, now: Instant, holding: bool, force: bool) -> AdminReply {
        if holding {
            return Ok("this node already holds the common IP".into());
        }
        if !force {
            self.can_serve()?;
            // We told the peer it may claim (it asked, or we handed over):
            // its claim may be in flight, and claiming now could make two
            // holders. Once it holds, a promotion asks it to release.
            let w = self.w();
            let granted = w.deferring
                && self.peer_available(now)
                && !self.peer.holding()
                && (w.handover_pending || self.peer.last.is_some_and(|h| h.flags.release_request));
            if granted {
                return Err(
                    "the peer is taking over at this node's word; try again in a moment".into(),
                );
            }
            if !self.peer_available(now) {
                return Err(
                    "the peer is silent; promoting would claim without its word (use --force)"
                        .into(),
                );
            }
        }
        self.disabled = false;
        self.maintenance = false;
        self.with_watch(|w| w.promote = Some(force));
        Ok("promoting: asking the peer to hand over".into())
    }

    fn refresh(&mut self) -> String {
        for target in [Target::Peer, Target::Data, Target::Nic] {
            self.actions.push_back(super::Action::Probe(target));
        }
        if self.state == State::Active {
            self.actions.push_back(super::Action::Probe(Target::Local));
            self.actions.push_back(super::Action::Announce);
            return "probing now; announcing the common IP again".into();
        }
        "probing now".into()
    }

    fn forget(&mut self, now: Instant, node: &str, force: bool) -> AdminReply {
        if node == self.settings.name {
            return Err("a node cannot forget itself".into());
        }
        if node != self.settings.peer_name {
            return Err(format!("no node named {node:?} in the configuration"));
        }
        if self.peer_available(now) && !force {
            return Err(format!("{node} is still sending heartbeats (use --force)"));
        }
        self.peer = super::PeerView::default();
        self.peer_reported_down = None;
        Ok(format!("forgot {node}"))
    }

    /// Can this node serve if it takes over?
    fn can_serve(&self) -> Result<(), String> {
        match self.takeover_blocker() {
            Some(why) => Err(format!("this node cannot serve: {why} (use --force)")),
            None => Ok(()),
        }
    }

    /// Can the peer take over from us?
    fn peer_can_serve(&self, now: Instant) -> Result<(), String> {
        if !self.peer_available(now) {
            return Err("the peer is not available to take over (use --force)".into());
        }
        if !self.peer_ready_to_take_over(now) {
            return Err("the peer cannot take over now (disabled, in maintenance, or unhealthy; use --force)".into());
        }
        Ok(())
    }

    /// Releases on purpose (from Active), telling the peer to claim at once.
    pub(super) fn hand_over(&mut self, now: Instant, cause: Cause) {
        self.release(now, cause, Ending::HandOver, true);
    }
}
