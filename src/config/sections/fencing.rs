//! `[fencing]`: what stops a holder that cannot be reached. `watchdog` is
//! the device's path, `watchdog_mode` whether to use it (`off`,
//! `automatic`: when it can be armed, `required`: never claim without it),
//! `watchdog_timeout` its timeout, in whole seconds, checked against the
//! witness's lease (see `core::fencing`). `fence` is a command run before
//! claiming from a silent peer, within `fence_timeout`.

use std::path::PathBuf;
use std::time::Duration;

use super::super::check::Checker;
use super::super::locate::Seg;
use super::super::raw::RawFencing;
use super::super::{FenceCommand, Watchdog, WatchdogMode, Witness};
use crate::core::{longest_timeout, safety_margin};

const DEFAULT_DEVICE: &str = "/dev/watchdog";
/// Without a witness: the host resets about this long after the peer
/// could have taken over from a stopped holder.
const DEFAULT_TIMEOUT_UNLEASED: Duration = Duration::from_secs(2);

fn key(k: &'static str) -> [Seg<'static>; 2] {
    [Seg::Key("fencing"), Seg::Key(k)]
}

/// How long a fence command may take by default: an IPMI power-off or a
/// hypervisor's API call answers within seconds, a PDU within a few more.
const DEFAULT_FENCE_TIMEOUT: Duration = Duration::from_secs(30);

/// The watchdog, if one is to be armed, and the fence command, if any.
pub(in crate::config) fn fencing(
    ck: &mut Checker,
    f: RawFencing,
    witness: Option<&Witness>,
) -> (Option<Watchdog>, Option<FenceCommand>) {
    let fence = fence(ck, &f);
    (watchdog(ck, f, witness), fence)
}

/// `fence` and `fence_timeout`.
fn fence(ck: &mut Checker, f: &RawFencing) -> Option<FenceCommand> {
    let command = f.fence.as_deref().map(str::trim)?;
    if command.is_empty() {
        ck.report(
            &key("fence"),
            "is empty; write the command that turns the peer's host off, or leave the key out",
        );
        return None;
    }
    let timeout = ck.duration(
        &f.fence_timeout,
        &key("fence_timeout"),
        DEFAULT_FENCE_TIMEOUT,
    );
    if timeout.is_zero() {
        ck.report(&key("fence_timeout"), "must be longer than 0s");
    }
    Some(FenceCommand {
        command: command.to_owned(),
        timeout,
    })
}

fn watchdog(ck: &mut Checker, f: RawFencing, witness: Option<&Witness>) -> Option<Watchdog> {
    let mode = match f.watchdog_mode.as_deref().map(str::trim) {
        // Naming a device is asking for it.
        None if f.watchdog.is_some() => WatchdogMode::Automatic,
        None | Some("off") => return None,
        Some("automatic") => WatchdogMode::Automatic,
        Some("required") => WatchdogMode::Required,
        Some(other) => {
            ck.report(
                &key("watchdog_mode"),
                format!("{other:?} is not a mode; write \"off\", \"automatic\" or \"required\""),
            );
            return None;
        }
    };
    let device = PathBuf::from(f.watchdog.as_deref().unwrap_or(DEFAULT_DEVICE).trim());
    if !device.is_absolute() {
        ck.report(
            &key("watchdog"),
            format!(
                "{} is not an absolute path; write e.g. \"/dev/watchdog\"",
                device.display()
            ),
        );
    }
    let timeout = timeout(ck, &f.watchdog_timeout, witness)?;
    Some(Watchdog {
        device,
        mode,
        timeout,
    })
}

/// The timeout: whole seconds, at least one, and with a witness no longer
/// than its lease allows (the reset must come before the lease can end).
fn timeout(
    ck: &mut Checker,
    value: &Option<String>,
    witness: Option<&Witness>,
) -> Option<Duration> {
    let longest = witness.map(|w| (w.lease, longest_timeout(w.lease)));
    if let Some((lease, Duration::ZERO)) = longest {
        ck.report(
            &[Seg::Key("witness"), Seg::Key("lease")],
            format!(
                "{lease:?} is too short for a watchdog: its timeout (1s at the least) and a margin of {:?} must fit in three quarters of the lease; make it at least 2s",
                safety_margin(lease)
            ),
        );
        return None;
    }
    let default = longest.map_or(DEFAULT_TIMEOUT_UNLEASED, |(_, t)| t);
    let timeout = ck.duration(value, &key("watchdog_timeout"), default);
    if timeout.subsec_nanos() != 0 || timeout < Duration::from_secs(1) {
        ck.report(
            &key("watchdog_timeout"),
            "drivers count in whole seconds: write a whole number of seconds, at least 1s",
        );
        return None;
    }
    if let Some((lease, longest)) = longest.filter(|(_, l)| timeout > *l) {
        ck.report(
            &key("watchdog_timeout"),
            format!(
                "{timeout:?} is too long for a {lease:?} lease: a holder that stops renewing must be reset before its lease can end at the witness; at most {longest:?} (three quarters of the lease, less a margin of {:?}, in whole seconds)",
                safety_margin(lease)
            ),
        );
        return None;
    }
    Some(timeout)
}
