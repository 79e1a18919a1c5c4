//! The event loop: the only place that owns tokio. It feeds the core with
//! inputs (probe results, heartbeats, address events, action completions,
//! signals, timer expiries) and hands the core's actions out: heartbeats go
//! straight to the socket, probes run concurrently in their own tasks, and
//! everything that changes the machine goes to one sequential effects
//! worker, so that the order the core encodes (claim → announce → start;
//! stop → release) holds on the machine. [`restart`] re-executes the
//! daemon in place (`understudy restart`) without moving the VIP.

mod config_sync;
mod daemon;
mod effects;
mod failpoint;
mod history_file;
pub mod mirror;
mod panic;
mod probes;
mod process;
mod push;
mod reload;
pub mod restart;
mod role_file;
mod systemd;
mod watch;
mod watchdog;
mod wire;
mod witness;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;
use tracing::info;

use crate::config::Config;
use crate::io::claim::ClaimError;
use crate::io::nic::LinkError;
use crate::io::probe::ProbeSetupError;
use crate::proto::heartbeat;
use daemon::Daemon;
pub use wire::accept;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Links(#[from] LinkError),
    #[error("cannot tell whether the common IP is placed here already: {0}")]
    Claim(#[from] ClaimError),
    #[error(transparent)]
    Probe(#[from] ProbeSetupError),
    #[error("{0}")]
    Secret(String),
    #[error("cannot open the heartbeat socket on {addr}: {source}")]
    Socket {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot install a signal handler: {0}")]
    Signal(std::io::Error),
    #[error("cannot listen for configuration pushes on {addr} (tcp): {source}")]
    Push {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the control socket {path}: {source}")]
    Control {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    State(String),
    #[error("HTTP API: {0}")]
    Api(String),
    #[error("notifications: {0}")]
    Notify(String),
    #[error("witness: {0}")]
    Witness(#[source] crate::io::witness::WitnessError),
    #[error("a task panicked; the application was stopped and the common IP released")]
    Panicked,
    #[error("{0}")]
    Process(String),
    #[error("cannot start the heartbeat and decision thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot re-execute the daemon: {0}")]
    Exec(std::io::Error),
}

/// Paths the command line may override (two daemons on one machine).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub socket: Option<std::path::PathBuf>,
    pub state_file: Option<std::path::PathBuf>,
    /// Set when `understudy restart` re-executed this process.
    pub handover: Option<restart::Handover>,
    /// The configuration file, which `understudy restart` checks with the
    /// new binary before re-executing.
    pub config_file: std::path::PathBuf,
}

/// The current instant, read through tokio so that paused test time works.
pub(crate) fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// This run's boot epoch: start time in ms and 16 random bits.
fn boot_epoch() -> u64 {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut random = [0u8; 2];
    // Without randomness two starts in the same millisecond could share an
    // epoch; the time part still orders them, so a failure is harmless.
    let _ = getrandom::getrandom(&mut random);
    heartbeat::boot_epoch(millis, u16::from_be_bytes(random))
}

/// Runs the daemon for node `me` until SIGTERM/SIGINT has released
/// everything. A panic in any task ends it the safe way instead: the
/// application stopped, the VIP removed, "stopped" told to the peer, and an
/// error returned (a non-zero exit).
pub async fn run(config: Config, me: usize, overrides: Overrides) -> Result<(), RuntimeError> {
    panic::install_hook();
    open_descriptor_limit();
    let settings = config.process.clone();
    process::lock_memory(&settings)?;
    // The binary as it was found at start: after an upgrade has replaced
    // the file, /proc/self/exe names the old, deleted one.
    let exe = std::env::current_exe().map_err(RuntimeError::Exec)?;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let (daemon, background, emergency) = Daemon::open(config, me, overrides, exe.clone()).await?;
    let halt = Arc::new(Notify::new());
    let (started, done) = match start_loop(daemon, settings, halt.clone()) {
        Ok(channels) => channels,
        Err(e) => {
            background.abort().await;
            return Err(e);
        }
    };
    // Nothing has touched the network until the loop runs: a refused
    // priority ends the start cleanly.
    if let Ok(Err(e)) = started.await {
        background.abort().await;
        return Err(e);
    }
    let notifier = tokio::select! {
        finished = done => finished.ok(),
        () = panic::panicked() => None,
    };
    match notifier {
        Some((notifier, None)) => {
            background.shutdown(notifier, NOTIFY_DRAIN).await;
            Ok(())
        }
        Some((notifier, Some(handover))) => {
            // The peer counts the silence from here: be quick.
            background.shutdown(notifier, RESTART_DRAIN).await;
            info!(exe = %exe.display(), term = handover.term, holding = handover.holding, "re-executing");
            systemd::Systemd::reloading();
            let e = restart::exec(&exe, &args, handover);
            tracing::error!(error = %e, "cannot re-execute; releasing everything");
            if let (Some(fd), Some(watchdog)) = (handover.watchdog_fd, &emergency.watchdog) {
                watchdog.take_back(fd);
            }
            emergency.release().await;
            Err(RuntimeError::Exec(e))
        }
        None => {
            halt.notify_one();
            background.abort().await;
            emergency.release().await;
            Err(RuntimeError::Panicked)
        }
    }
}

/// The loop's thread: its own single-threaded runtime (with the heartbeat
/// sockets and the core's timers) and, when configured, a real-time
/// priority. Says once whether it started, and hands the notifier back
/// when the loop ends; `halt` stops it at once (after a panic elsewhere).
type Started = oneshot::Receiver<Result<(), RuntimeError>>;
type Done = oneshot::Receiver<(crate::notify::Notifier, Option<restart::Handover>)>;

/// How long queued notifications may take to go out at exit.
const NOTIFY_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);
/// ... and before a re-exec, while the peer counts the silence.
const RESTART_DRAIN: std::time::Duration = std::time::Duration::from_millis(500);

fn start_loop(
    daemon: Daemon,
    settings: crate::config::Process,
    halt: Arc<Notify>,
) -> Result<(Started, Done), RuntimeError> {
    let (started_tx, started) = oneshot::channel();
    let (done_tx, done) = oneshot::channel();
    std::thread::Builder::new()
        .name("understudy-loop".into())
        .spawn(move || {
            let runtime = process::raise_priority(&settings).and_then(|()| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(RuntimeError::Thread)
            });
            let runtime = match runtime {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            let _ = started_tx.send(Ok(()));
            let looped = runtime.block_on(async {
                tokio::select! {
                    ended = daemon.run() => Some(ended),
                    () = halt.notified() => None,
                }
            });
            if let Some(ended) = looped {
                let _ = done_tx.send(ended);
            }
            // A stray task of this runtime must not hold the exit up.
            runtime.shutdown_timeout(std::time::Duration::from_millis(100));
        })
        .map_err(RuntimeError::Thread)?;
    Ok((started, done))
}

/// Raises the limit on open files, and warns when what is left after the
/// listeners' caps is too small a reserve for the daemon's own work.
fn open_descriptor_limit() {
    use crate::control::limits::{
        listener_descriptors, raise_descriptor_limit, RESERVED_DESCRIPTORS,
    };
    match raise_descriptor_limit() {
        Ok(limit) if limit < listener_descriptors() + RESERVED_DESCRIPTORS => tracing::warn!(
            limit,
            wanted = listener_descriptors() + RESERVED_DESCRIPTORS,
            "the open-file limit is low; raise LimitNOFILE"
        ),
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
    }
}
