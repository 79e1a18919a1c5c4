//! The watchdog at the edge: armed by the effects worker just before the
//! VIP is added, fed by a thread of its own while the core says the node
//! may hold the VIP ([`crate::core::Core::watchdog_feed_until`], published
//! by the loop after every turn), and disarmed (magic close) by the loop
//! once the release is over ([`crate::core::Core::done_with_vip`]).
//!
//! The feeding thread never decides anything: it feeds while the deadline
//! the loop last published is ahead. A loop that stops turning (a frozen
//! or hung daemon) stops moving the deadline, and a lease that is not
//! renewed moves it no further, so the feeding stops and the device
//! resets the host one timeout later. A process that dies leaves the
//! device armed (the kernel's close is not a magic close): the host
//! resets too. `understudy restart` hands the open device to the new
//! process through the exec ([`ENV`]).

use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use crate::config::{self, WatchdogMode};
use crate::control::report::WatchdogReport;
use crate::io::watchdog::Device;

/// The open device's fd handed to a re-executed daemon.
pub const ENV: &str = "UNDERSTUDY_WATCHDOG_FD";

/// The longest wait between two feeds (a quarter of the timeout when that
/// is shorter).
const MAX_TICK: Duration = Duration::from_millis(250);

/// What status, metrics and logs show of the watchdog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchdogView {
    pub device: PathBuf,
    pub mode: WatchdogMode,
    pub timeout: Duration,
    /// The device is open and its timer runs.
    pub armed: bool,
    /// Fed now (the core's deadline is ahead).
    pub feeding: bool,
    pub last_fed: Option<Instant>,
    /// Why it could not be armed or fed, last time it was tried.
    pub error: Option<String>,
    /// A named pipe stands in for a device.
    pub stand_in: bool,
}

struct Shared {
    config: config::Watchdog,
    /// The instant the feed deadline is counted from.
    base: Instant,
    /// The feed deadline, in ms after `base` (0: do not feed).
    feed_until_ms: AtomicU64,
    device: Mutex<Option<Device>>,
    view: Mutex<WatchdogView>,
    stop: AtomicBool,
}

impl Shared {
    fn device(&self) -> MutexGuard<'_, Option<Device>> {
        self.device.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn view(&self) -> MutexGuard<'_, WatchdogView> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn feed_until(&self) -> Option<Instant> {
        match self.feed_until_ms.load(Ordering::SeqCst) {
            0 => None,
            ms => Some(self.base + Duration::from_millis(ms)),
        }
    }
}

/// The watchdog of `[fencing]`; cheap to clone (one device, one feeder).
#[derive(Clone)]
pub struct Watchdog {
    shared: Arc<Shared>,
}

impl Watchdog {
    /// Starts the feeder; the device stays closed until [`Watchdog::arm`],
    /// unless a re-executed predecessor handed it over through [`ENV`].
    pub fn start(config: config::Watchdog) -> Watchdog {
        let adopted = std::env::var(ENV)
            .ok()
            .and_then(|v| v.parse::<RawFd>().ok());
        std::env::remove_var(ENV);
        let tick = (config.timeout / 4).min(MAX_TICK);
        let view = WatchdogView {
            device: config.device.clone(),
            mode: config.mode,
            timeout: config.timeout,
            armed: false,
            feeding: false,
            last_fed: None,
            error: None,
            stand_in: false,
        };
        let shared = Arc::new(Shared {
            base: Instant::now(),
            feed_until_ms: AtomicU64::new(0),
            device: Mutex::new(None),
            view: Mutex::new(view),
            stop: AtomicBool::new(false),
            config,
        });
        if let Some(fd) = adopted {
            // SAFETY: our predecessor left this fd open for us, and
            // nothing else in this process knows it.
            let device = unsafe { Device::adopt(fd, &shared.config.device, shared.config.timeout) };
            info!(device = %shared.config.device.display(), "watchdog taken over from before the restart");
            shared.view().armed = true;
            shared.view().stand_in = device.stand_in();
            *shared.device() = Some(device);
        }
        let feeder = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || feed(&feeder, tick));
        if let Err(e) = spawned {
            error!(error = %e, "cannot start the watchdog's feeder");
            shared.view().error = Some(format!("no feeder thread: {e}"));
        }
        Watchdog { shared }
    }

    /// The core's feed deadline after this turn of the loop.
    pub fn allow_until(&self, until: Option<Instant>) {
        let ms = until.map_or(0, |t| {
            let ms = t.saturating_duration_since(self.shared.base).as_millis();
            u64::try_from(ms).unwrap_or(u64::MAX).max(1)
        });
        self.shared.feed_until_ms.store(ms, Ordering::SeqCst);
    }

    /// Arms the device before a claim adds the VIP. `Err` only when the
    /// mode is `required` and it cannot be armed: the claim must not go
    /// ahead. In `automatic` mode a failure is logged and the claim goes on.
    pub fn arm(&self) -> Result<(), String> {
        let s = &self.shared;
        let mut device = s.device();
        if device.is_some() {
            return Ok(());
        }
        match Device::arm(&s.config.device, s.config.timeout) {
            Ok(armed) => {
                info!(device = %s.config.device.display(), timeout_s = armed.timeout().as_secs(), "watchdog armed");
                let mut view = s.view();
                view.armed = true;
                view.error = None;
                view.stand_in = armed.stand_in();
                view.timeout = armed.timeout();
                view.last_fed = Some(Instant::now());
                *device = Some(armed);
                Ok(())
            }
            Err(e) => {
                let why = e.to_string();
                s.view().error = Some(why.clone());
                match s.config.mode {
                    WatchdogMode::Required => {
                        error!(error = %why, "the watchdog cannot be armed; not claiming (watchdog_mode = \"required\")");
                        Err(format!("the watchdog cannot be armed: {why}"))
                    }
                    WatchdogMode::Automatic => {
                        warn!(error = %why, "the watchdog cannot be armed; claiming without it (watchdog_mode = \"automatic\")");
                        Ok(())
                    }
                }
            }
        }
    }

    /// Disarms the device (the magic close); nothing if it is not armed.
    pub fn disarm(&self) {
        let Some(device) = self.shared.device().take() else {
            return;
        };
        let mut view = self.shared.view();
        view.armed = false;
        view.feeding = false;
        match device.disarm() {
            Ok(()) => info!(device = %self.shared.config.device.display(), "watchdog disarmed"),
            Err(e) => {
                warn!(error = %e, "the watchdog's magic close failed; it may still run");
                view.error = Some(e.to_string());
            }
        }
    }

    /// Leaves the armed device open for the re-executed process: the fd
    /// to name in [`ENV`], if armed. The feeder stops feeding.
    pub fn keep_across_exec(&self) -> Option<RawFd> {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.device().take().map(Device::keep_across_exec)
    }

    /// Takes the device back after an exec that failed, for the emergency
    /// release to disarm once the VIP is off (nothing feeds it meanwhile).
    pub fn take_back(&self, fd: RawFd) {
        let s = &self.shared;
        // SAFETY: the fd [`Watchdog::keep_across_exec`] gave up, unused
        // since: the exec did not happen.
        let device = unsafe { Device::adopt(fd, &s.config.device, s.config.timeout) };
        *s.device() = Some(device);
    }

    /// Armed, and fed now (for the metrics, at every turn of the loop:
    /// no copy of the whole view).
    pub fn state(&self) -> (bool, bool) {
        let view = self.shared.view();
        (view.armed, view.feeding)
    }

    /// The watchdog for status, as of `now`.
    pub fn report(&self, now: Instant) -> WatchdogReport {
        let v = self.shared.view().clone();
        WatchdogReport {
            device: v.device.display().to_string(),
            mode: v.mode.to_string(),
            timeout_s: v.timeout.as_secs(),
            armed: v.armed,
            feeding: v.feeding,
            fed_ago_ms: v.last_fed.map(|t| {
                u64::try_from(now.saturating_duration_since(t).as_millis()).unwrap_or(u64::MAX)
            }),
            error: v.error,
            stand_in: v.stand_in,
        }
    }
}

/// The feeder's loop: feeds while the deadline is ahead, until stopped
/// for a re-exec (the process ends otherwise).
fn feed(s: &Shared, tick: Duration) {
    let mut was_feeding = false;
    while !s.stop.load(Ordering::SeqCst) {
        std::thread::sleep(tick);
        let now = Instant::now();
        let allowed = s.feed_until().is_some_and(|until| now < until);
        let mut device = s.device();
        let Some(dev) = device.as_mut() else {
            was_feeding = false;
            continue;
        };
        let fed = if allowed { dev.feed() } else { Ok(()) };
        drop(device);
        let mut view = s.view();
        let fed = match fed {
            Ok(()) => allowed,
            Err(e) => {
                if view.error.is_none() {
                    warn!(error = %e, "cannot feed the watchdog");
                }
                view.error = Some(e.to_string());
                false
            }
        };
        view.feeding = fed;
        if fed {
            view.last_fed = Some(now);
        } else if was_feeding {
            let last = view.last_fed.map(|t| now.saturating_duration_since(t));
            let left = view.timeout.saturating_sub(last.unwrap_or_default());
            warn!(
                left_ms = left.as_millis() as u64,
                "the watchdog is no longer fed (this node may not hold the VIP now); the host resets unless the VIP is released first"
            );
        }
        was_feeding = fed;
    }
}
