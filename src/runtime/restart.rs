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
//!
//! Signals that arrive meanwhile are neither lost nor left to their default
//! action (SIGHUP's would kill the daemon with the VIP on its NIC): from
//! the moment the loop stops for the exec ([`hold_signals`]), SIGHUP,
//! SIGTERM and SIGINT are remembered by a low-level handler
//! ([`catch_signals`]) instead of forwarded to the loop
//! ([`forward_or_hold`]), and those the loop was sent but will not read are
//! remembered too; just before the exec they are
//! blocked in the exec'ing thread and raised again there, so they wait,
//! pending, in the new process (a blocked signal stays pending across
//! `execve`, and the signal mask survives it; signal(7)). The new process
//! unblocks them once its own handlers are installed
//! ([`deliver_held_signals`]): a SIGTERM sent during a restart then stops
//! the daemon cleanly, a SIGHUP reloads it.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

/// What the old process hands the new one: `TERM:holding` or `TERM:passive`.
pub const ENV: &str = "UNDERSTUDY_ADOPT";

/// The hand-over from a re-executed predecessor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handover {
    pub term: u64,
    /// It held the VIP (Active) when it re-executed.
    pub holding: bool,
    /// The armed watchdog, left open across the exec (its own variable,
    /// [`super::watchdog::ENV`]).
    pub watchdog_fd: Option<std::os::fd::RawFd>,
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
            watchdog_fd: None,
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

/// The signals a restart holds for the new process.
const HELD_SIGNALS: [libc::c_int; 3] = [libc::SIGHUP, libc::SIGTERM, libc::SIGINT];

/// Set once a restart has begun: from then on the handler remembers.
static HOLDING: AtomicBool = AtomicBool::new(false);
/// The signals that arrived since, one bit per entry of [`HELD_SIGNALS`].
static HELD: AtomicU8 = AtomicU8::new(0);
/// Set once the exec'ing thread blocks the signals and carries them:
/// later ones, caught by another thread, are sent on to it.
static CARRYING: AtomicBool = AtomicBool::new(false);
/// That thread (a `pthread_t`, an unsigned long on Linux).
static CARRIER: AtomicU64 = AtomicU64::new(0);

/// Orders the daemon's own signal handling against the start of holding:
/// a signal is either forwarded to the running loop or held, never both
/// and never neither.
static GATE: Mutex<()> = Mutex::new(());

/// Installs, before the daemon's handlers (so that it runs first), the one
/// that marks every SIGHUP, SIGTERM and SIGINT until the daemon's handler
/// has read it. Call it at start.
pub fn catch_signals() -> std::io::Result<()> {
    for (bit, &signal) in HELD_SIGNALS.iter().enumerate() {
        let remember = move || {
            // Only atomics and pthread_kill here: this runs in a signal
            // handler. Every arrival is marked; the daemon's own handler
            // clears the mark when it forwards the signal to the loop, so
            // what is marked when a restart begins is what nobody read.
            HELD.fetch_or(1 << bit, Ordering::SeqCst);
            if CARRYING.load(Ordering::SeqCst) {
                // Another thread caught it while the exec'ing one blocks
                // it: make it pending there.
                // SAFETY: pthread_kill is async-signal-safe and the
                // carrier thread lives until the exec.
                unsafe {
                    libc::pthread_kill(CARRIER.load(Ordering::SeqCst) as libc::pthread_t, signal)
                };
            }
        };
        // SAFETY: the action only touches atomics and calls pthread_kill,
        // both async-signal-safe; it registers beside tokio's own handler
        // (both run), through the registry tokio itself uses.
        unsafe { signal_hook_registry::register(signal, remember) }?;
    }
    Ok(())
}

fn bit_of(signal: libc::c_int) -> u8 {
    HELD_SIGNALS
        .iter()
        .position(|&s| s == signal)
        .map_or(0, |bit| 1 << bit)
}

/// The daemon's handler of `signal`: runs `forward` (hand it to the loop)
/// unless a restart holds signals now, in which case it stays marked for
/// the new process instead.
pub fn forward_or_hold(signal: libc::c_int, forward: impl FnOnce()) {
    let _gate = GATE.lock().unwrap_or_else(|p| p.into_inner());
    if !HOLDING.load(Ordering::SeqCst) {
        HELD.fetch_and(!bit_of(signal), Ordering::SeqCst);
        forward();
    }
}

/// The loop calls this as it stops for a re-exec: from now on signals are
/// held for the new process. `unread` returns the signals that were
/// forwarded to the loop but that it will now never read (a stop or a
/// reload still in its queues): they are held too.
pub fn hold_signals(unread: impl FnOnce() -> Vec<libc::c_int>) {
    let _gate = GATE.lock().unwrap_or_else(|p| p.into_inner());
    HOLDING.store(true, Ordering::SeqCst);
    for signal in unread() {
        HELD.fetch_or(bit_of(signal), Ordering::SeqCst);
    }
}

/// The held signals as a set.
fn held_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set; sigaddset takes valid
    // signal numbers.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        for signal in HELD_SIGNALS {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// Blocks the held signals in this thread and raises again, in it, each
/// one that arrived during the restart: they wait, pending, for the
/// process that replaces this one. One that another thread catches from
/// here to the exec is sent on to this thread by the handler.
fn carry_held_signals() {
    let set = held_set();
    // SAFETY: a valid set; pthread_sigmask and pthread_kill on this very
    // thread have no other preconditions.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        CARRIER.store(libc::pthread_self() as u64, Ordering::SeqCst);
        CARRYING.store(true, Ordering::SeqCst);
        let held = HELD.swap(0, Ordering::SeqCst);
        for (bit, &signal) in HELD_SIGNALS.iter().enumerate() {
            if held & (1 << bit) != 0 {
                libc::pthread_kill(libc::pthread_self(), signal);
            }
        }
    }
}

/// execve(2) itself: std's `Command::exec` empties the signal mask first
/// (a clean start for ordinary children), which would deliver the held
/// signals here, to a process about to vanish.
fn execve(exe: &Path, args: &[OsString], env: &[(OsString, OsString)]) -> std::io::Error {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |bytes: &[u8]| {
        CString::new(bytes).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a NUL byte in an argument",
            )
        })
    };
    let built = (|| -> std::io::Result<(CString, Vec<CString>, Vec<CString>)> {
        let path = c(exe.as_os_str().as_bytes())?;
        let mut argv = vec![path.clone()];
        for a in args {
            argv.push(c(a.as_bytes())?);
        }
        let envp = env
            .iter()
            .map(|(k, v)| c(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok((path, argv, envp))
    })();
    let (path, argv, envp) = match built {
        Ok(b) => b,
        Err(e) => return e,
    };
    let pointers = |v: &[CString]| {
        v.iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect::<Vec<_>>()
    };
    let (argv, envp) = (pointers(&argv), pointers(&envp));
    // SAFETY: NUL-terminated strings and NULL-terminated arrays that
    // outlive the call; execve returns only on failure.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    std::io::Error::last_os_error()
}

/// Blocks SIGHUP, SIGTERM and SIGINT in this thread (and the threads it
/// starts) until [`deliver_held_signals`]: call it first thing in the
/// daemon's main thread, before any other thread exists. (Commands the
/// daemon runs start with an empty mask: std resets it in the child.)
pub fn hold_until_handled() {
    let set = held_set();
    // SAFETY: a valid set.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Unblocks SIGHUP, SIGTERM and SIGINT in this thread: call it once the
/// daemon's handlers for them are installed, from the thread that execs
/// ran in (the main thread), so that what a predecessor held is delivered
/// to them now. Harmless on a fresh start.
pub fn deliver_held_signals() {
    let set = held_set();
    // SAFETY: a valid set.
    unsafe {
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// Replaces this process with `exe` run with `args` (this process's own
/// arguments) and the hand-over in its environment, carrying the signals
/// held since [`hold_signals`]. Returns only if the exec failed (then the
/// signals are delivered here).
pub fn exec(exe: &Path, args: &[OsString], handover: Handover) -> std::io::Error {
    let watchdog = super::watchdog::ENV;
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| k != ENV && k != watchdog)
        .collect();
    env.push((ENV.into(), handover.to_env().into()));
    if let Some(fd) = handover.watchdog_fd {
        env.push((watchdog.into(), fd.to_string().into()));
    }
    carry_held_signals();
    let e = execve(exe, args, &env);
    HOLDING.store(false, Ordering::SeqCst);
    CARRYING.store(false, Ordering::SeqCst);
    deliver_held_signals();
    e
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
                watchdog_fd: None,
            },
            Handover {
                term: 0,
                holding: false,
                watchdog_fd: None,
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
