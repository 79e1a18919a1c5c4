//! The last line of defence: a panic anywhere in the daemon (the loop, the
//! effects worker, a probe) must not leave it half-alive, holding the VIP
//! with nobody driving it. The panic hook wakes [`panicked`]; the daemon
//! then stops its tasks and [`Emergency::release`] stops the application,
//! removes the VIP and tells the peer "stopped" directly, without the core
//! or the worker (either may be what panicked), before exiting non-zero.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;
use tracing::{error, info};

use super::wire::Wire;
use crate::io::app::Supervisor;
use crate::io::claim::Claim;

static PANICKED: Notify = Notify::const_new();

/// Logs every panic and wakes [`panicked`]; the default hook still prints.
pub fn install_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        error!(panic = %info, "a task panicked: releasing everything and exiting");
        default(info);
        PANICKED.notify_one();
    }));
}

/// Resolves once any task has panicked.
pub async fn panicked() {
    PANICKED.notified().await;
}

/// What a release needs when the core and the worker cannot be trusted.
pub struct Emergency {
    /// How the common addresses were placed, to take them off.
    pub claim: Claim,
    /// A supervisor of its own, for the stop command only.
    pub stop: Supervisor,
    pub wire: Wire,
    pub socket_path: PathBuf,
    /// Kept true by the loop while this node holds or is taking the VIP.
    pub holding: Arc<AtomicBool>,
    /// Disarmed once the VIP is off the NIC; left armed (the host resets)
    /// if it could not be removed.
    pub watchdog: Option<super::watchdog::Watchdog>,
}

impl Emergency {
    /// Stops the application and removes the VIP if this node may hold
    /// it (by the loop's word or the kernel's), then says "stopped".
    pub async fn release(mut self) {
        let on_nic = self.claim.present().await.unwrap_or(true);
        if self.holding.load(Ordering::SeqCst) || on_nic {
            if let Err(why) = self.stop.stop().await {
                error!(%why, "emergency stop of the application failed");
            }
            match self.claim.remove().await {
                Ok(()) => info!("emergency release: common IP removed"),
                Err(why) => {
                    error!(why = %why, "emergency release: cannot remove the common IP");
                    self.watchdog = None;
                }
            }
        }
        if let Some(watchdog) = &self.watchdog {
            watchdog.disarm();
        }
        // Twice: one lost datagram must not leave the peer waiting out its
        // timeout.
        self.wire.send_stopped();
        self.wire.send_stopped();
        let _ = std::fs::remove_file(&self.socket_path);
    }
}
