//! `understudy restart`: the daemon re-executes its binary as found on
//! disk, in the same process (same PID, so systemd and package upgrades
//! follow it, as nginx upgrades its binary), without removing the VIP or
//! stopping the application.
//!
//! The old process checks the new binary against the configuration first
//! (`check-config`, run by the new binary itself), tells the peer
//! "restarting" in a last heartbeat, and execs with [`ENV`] saying which
//! term it held the VIP with. The new process takes that over through its
//! start-up: the VIP is on the NIC, so it adopts it, and an application
//! that answers its URL is adopted as it runs (see `Supervisor::adopt`).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// What the old process hands the new one: `TERM:holding` or `TERM:passive`.
pub const ENV: &str = "UNDERSTUDY_ADOPT";

/// The hand-over from a re-executed predecessor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handover {
    pub term: u64,
    /// It held the VIP (Active) when it re-executed.
    pub holding: bool,
}

impl Handover {
    fn to_env(self) -> String {
        format!(
            "{}:{}",
            self.term,
            if self.holding { "holding" } else { "passive" }
        )
    }

    /// Reads a hand-over from [`ENV`]'s value; anything else is no
    /// hand-over (a fresh start).
    pub fn parse(value: &str) -> Option<Handover> {
        let (term, state) = value.split_once(':')?;
        Some(Handover {
            term: term.parse().ok()?,
            holding: match state {
                "holding" => true,
                "passive" => false,
                _ => return None,
            },
        })
    }
}

/// Runs the binary at `exe` as `check-config FILE --node NAME`: the new
/// binary must start and accept the configuration before this process
/// gives itself up. `Err` carries what it printed.
pub fn precheck(exe: &Path, config: &Path, node: &str) -> Result<(), String> {
    let out = Command::new(exe)
        .arg("check-config")
        .arg(config)
        .arg("--node")
        .arg(node)
        .env_remove(ENV)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let text = if text.is_empty() {
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    } else {
        text
    };
    Err(format!(
        "{} check-config {} failed ({}): {text}",
        exe.display(),
        config.display(),
        out.status
    ))
}

/// Replaces this process with `exe` run with `args` (this process's own
/// arguments) and the hand-over in its environment. Returns only if the
/// exec failed.
pub fn exec(exe: &Path, args: &[OsString], handover: Handover) -> std::io::Error {
    Command::new(exe)
        .args(args)
        .env(ENV, handover.to_env())
        .exec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_over_reads_back_and_nothing_else_is_one() {
        for h in [
            Handover {
                term: 7,
                holding: true,
            },
            Handover {
                term: 0,
                holding: false,
            },
        ] {
            assert_eq!(Handover::parse(&h.to_env()), Some(h));
        }
        for bad in ["", "7", "x:holding", "7:active", "7:holding:1"] {
            assert_eq!(Handover::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_binary_that_refuses_the_configuration_stops_the_restart() {
        let why = precheck(
            Path::new("/bin/false"),
            Path::new("/nonexistent.toml"),
            "m1",
        )
        .unwrap_err();
        assert!(
            why.contains("check-config /nonexistent.toml failed"),
            "{why}"
        );
        let why = precheck(Path::new("/nonexistent/understudy"), Path::new("x"), "m1").unwrap_err();
        assert!(why.contains("cannot run /nonexistent/understudy"), "{why}");
        assert!(precheck(Path::new("/bin/true"), Path::new("x"), "m1").is_ok());
    }
}
