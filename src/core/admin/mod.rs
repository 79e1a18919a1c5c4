//! The administrator's commands. Each goes into the core like any other
//! input (through [`Core::handle_admin`]) and is answered at once: applied,
//! or refused with the reason when it is unsafe now and not forced.

mod rules;

use super::state::{Blocker, State};

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
