//! The control interface: the typed requests an administrator sends (over
//! the Unix socket or the HTTP API), the JSON answers, and the status
//! report. The shapes here are the documented, stable JSON contract.

pub mod client;
pub mod console;
pub mod history;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod mirror_report;
pub mod push_client;
pub mod report;
pub mod server;
pub mod state_file;

use serde::{Deserialize, Serialize};

use crate::core::AdminCommand;
pub use report::StatusReport;

/// One request, as a JSON object on one line:
/// `{"command":"status"}`, `{"command":"promote","force":true}`,
/// `{"command":"forget","node":"m2"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Always legal; changes nothing.
    Status,
    /// See [`AdminCommand`] for when each of these is legal.
    Enable,
    Disable {
        #[serde(default)]
        force: bool,
    },
    Promote {
        #[serde(default)]
        force: bool,
    },
    Demote {
        #[serde(default)]
        force: bool,
    },
    MaintenanceOn {
        #[serde(default)]
        force: bool,
    },
    MaintenanceOff,
    Refresh,
    ResetFlapping,
    /// Re-execute the daemon's binary without moving the VIP (control
    /// socket only).
    Restart,
    /// Read the configuration file again and apply what may change live
    /// (control socket only; see [`crate::config::reload`]).
    Reload,
    Forget {
        node: String,
        #[serde(default)]
        force: bool,
    },
    /// Run the `[[mirror]]` named (every one without a name) now rather
    /// than on schedule; only the holder sends.
    MirrorNow {
        #[serde(default)]
        name: Option<String>,
    },
}

impl Request {
    /// The admin command and its force flag; `None` for `status`.
    pub fn admin(&self) -> Option<(AdminCommand, bool)> {
        Some(match self {
            // A reload never reaches the loop as a request: the control
            // server hands it to the reloader.
            Request::Status | Request::Reload | Request::MirrorNow { .. } => return None,
            Request::Enable => (AdminCommand::Enable, false),
            Request::Disable { force } => (AdminCommand::Disable, *force),
            Request::Promote { force } => (AdminCommand::Promote, *force),
            Request::Demote { force } => (AdminCommand::Demote, *force),
            Request::MaintenanceOn { force } => (AdminCommand::MaintenanceOn, *force),
            Request::MaintenanceOff => (AdminCommand::MaintenanceOff, false),
            Request::Refresh => (AdminCommand::Refresh, false),
            Request::ResetFlapping => (AdminCommand::ResetFlapping, false),
            Request::Restart => (AdminCommand::Restart, false),
            Request::Forget { node, force } => {
                (AdminCommand::Forget { node: node.clone() }, *force)
            }
        })
    }
}

/// The answer: `ok` false means refused (or a bad request), with the
/// reason in `message`; the status after the command is always included.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    pub message: String,
    pub status: Option<StatusReport>,
    /// A pushed file was written but not applied: it needs a restart
    /// (`cluster.sync_config`).
    #[serde(default)]
    pub not_applied: bool,
}
