//! Tells systemd how the daemon stands (`Type=notify`, the sd_notify
//! protocol through the `sd-notify` crate; nothing is sent when
//! `NOTIFY_SOCKET` is not set): `READY=1` once the start-up window has
//! ended and the node is Active or Passive, `STATUS=` with a one-line state
//! whenever it changes, `WATCHDOG=1` from the event loop itself (so a
//! stalled loop, which also stops heartbeating, is restarted by systemd),
//! `RELOADING=1` before `understudy restart` re-executes the binary (the new
//! process says `READY=1` again) and around a live reload (then `READY=1`),
//! and `STOPPING=1` on shutdown.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::debug;

use crate::core::{State, Status};

/// What systemd was last told, so that only changes are sent.
#[derive(Debug)]
pub struct Systemd {
    /// `NOTIFY_SOCKET` is set: without it the status line is not even
    /// worded (this runs after every event, on the heartbeat thread).
    listening: bool,
    ready: bool,
    status: String,
}

impl Systemd {
    pub fn new() -> Self {
        Systemd {
            listening: std::env::var_os("NOTIFY_SOCKET").is_some(),
            ready: false,
            status: String::new(),
        }
    }

    /// The watchdog interval systemd asks for (`WatchdogSec=`), if any:
    /// `WATCHDOG=1` goes out every half of it.
    pub fn watchdog_every() -> Option<Duration> {
        sd_notify::watchdog_enabled().map(|limit| limit / 2)
    }

    /// After every event: `READY=1` once settled, `STATUS=` when the line
    /// (worded by `line`) changes.
    pub fn update(&mut self, status: &Status, line: impl FnOnce() -> String) {
        if !self.listening {
            return;
        }
        let line = line();
        let settled = !matches!(
            status.state,
            State::Init
                | State::Starting
                | State::Checking
                | State::Acquiring
                | State::Claiming
                | State::Announcing
                | State::StartingApp
        );
        if settled && !self.ready {
            self.ready = true;
            self.status = line;
            send(&[NotifyState::Ready, NotifyState::Status(&self.status)]);
        } else if line != self.status {
            self.status = line;
            send(&[NotifyState::Status(&self.status)]);
        }
    }

    pub fn watchdog() {
        send(&[NotifyState::Watchdog]);
    }

    /// Before a re-exec: the new process will say `READY=1`.
    pub fn reloading() {
        match NotifyState::monotonic_usec_now() {
            Ok(now) => send(&[NotifyState::Reloading, now]),
            Err(_) => send(&[NotifyState::Reloading]),
        }
    }

    /// After a live reload (applied or refused): `READY=1` again, if it
    /// had been said; otherwise it comes once the node settles.
    pub fn reloaded(&self) {
        if self.ready {
            send(&[NotifyState::Ready, NotifyState::Status(&self.status)]);
        }
    }

    pub fn stopping() {
        send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        debug!(error = %e, "cannot notify systemd");
    }
}
