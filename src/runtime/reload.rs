//! Live reload (`SIGHUP`, `understudy reload`, `systemctl reload`, a
//! configuration push): one at a time, off the event loop, the file is read,
//! compared with the running configuration
//! ([`crate::config::reload::compare`]) and everything that can fail is
//! built from it (keys, API tokens, probers, the notifier), and a pushed
//! file is written; only a reload that can no longer fail reaches the loop,
//! which applies it whole. The loop never waits for a disk: a write that
//! syncs can take hundreds of milliseconds, and a heartbeat must not.
//! Nothing here touches the network: the VIP stays where it is and the
//! application keeps running.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::probes::{self, Checks};
use crate::config::{read_keys, Config};
use crate::control::http::Tokens;
use crate::control::metrics::Metrics;
use crate::control::server::{refuse, ReloadHook};
use crate::control::Response;
use crate::io::nic::Links;
use crate::notify::Notifier;
use crate::proto::keyring::Keyring;

/// A checked file and what was built from it, ready for the loop.
pub struct Prepared {
    pub config: Config,
    pub me: usize,
    pub keys: Keyring,
    pub tokens: Option<Tokens>,
    pub prober: crate::io::probe::Prober,
    pub checks: Checks,
    /// A new notifier, only when the notifications changed.
    pub notifier: Option<Notifier>,
    /// Who asked (for the log).
    pub who: String,
    /// The sections that differ from the running configuration.
    pub changed: Vec<&'static str>,
}

/// A prepared reload on its way to the loop, and where its answer goes.
pub type Ask = (Box<Prepared>, oneshot::Sender<Response>);

/// Reads the file again on each call; shared by the control socket and
/// the SIGHUP handler.
pub struct Reloader {
    pub path: PathBuf,
    pub node: String,
    pub links: Links,
    pub metrics: Arc<Metrics>,
    pub to_loop: mpsc::Sender<Ask>,
    /// The configuration the loop runs, which only a reload changes; the
    /// lock makes reloads one at a time, so this copy is always exact.
    pub running: tokio::sync::Mutex<Config>,
}

impl Reloader {
    /// The control server's hook: a reload, answered.
    pub fn hook(self: Arc<Self>) -> ReloadHook {
        Arc::new(move |who| {
            let reloader = self.clone();
            Box::pin(async move { reloader.reload(who).await })
        })
    }

    /// Reads the file again: prepares on a blocking thread (file reads,
    /// certificate loads), then hands the result to the loop and waits for
    /// its answer.
    pub async fn reload(self: Arc<Self>, who: String) -> Response {
        self.submit(who, None).await
    }

    /// A file pushed by the peer: checked and applied as a reload of it
    /// would be, and written in place of ours (ours kept as `.bak`) only
    /// if it applies.
    pub async fn push(self: Arc<Self>, text: String, who: String) -> Response {
        self.submit(who, Some(text)).await
    }

    async fn submit(self: Arc<Self>, who: String, pushed: Option<String>) -> Response {
        let mut running = self.running.lock().await;
        let (reloader, current, asked) = (self.clone(), running.clone(), who.clone());
        let prepared =
            tokio::task::spawn_blocking(move || reloader.prepare(&current, asked, pushed)).await;
        let prepared = match prepared {
            Ok(Ok(prepared)) => prepared,
            Ok(Err(problems)) => return refusal(&who, &problems),
            Err(e) => return refuse(&format!("reload refused: its check did not finish: {e}")),
        };
        let applied = prepared.config.clone();
        let (reply, answer) = oneshot::channel();
        if self
            .to_loop
            .send((Box::new(prepared), reply))
            .await
            .is_err()
        {
            return refuse("the daemon is shutting down");
        }
        let answer = answer
            .await
            .unwrap_or_else(|_| refuse("the daemon is shutting down"));
        if answer.ok {
            *running = applied;
        }
        answer
    }

    /// Everything that can fail, each problem worded with its place.
    fn prepare(
        &self,
        running: &Config,
        who: String,
        pushed: Option<String>,
    ) -> Result<Prepared, Vec<String>> {
        let lines = |problems: crate::config::Problems| {
            let text = problems.to_string();
            text.lines().map(str::to_owned).collect::<Vec<_>>()
        };
        let config = match &pushed {
            None => Config::load(&self.path).map_err(lines)?,
            Some(text) => Config::parse(&self.path, text).map_err(lines)?,
        };
        let changed = crate::config::reload::compare(running, &config)?;
        let me = config
            .nodes
            .iter()
            .position(|n| n.name == self.node)
            .ok_or_else(|| {
                vec![format!(
                    "{}: no node named {:?} any more",
                    self.path.display(),
                    self.node
                )]
            })?;
        let mut problems = Vec::new();
        let keys = read_keys(&config.heartbeat.secret_file).map_err(|e| problems.push(e));
        let tokens = match &config.api {
            Some(api) => Tokens::load(&api.tokens_file)
                .map(Some)
                .map_err(|e| problems.push(e)),
            None => Ok(None),
        };
        let prober = probes::prober(&config, config.monitor.timeout)
            .map_err(|e| problems.push(e.to_string()));
        let (Ok(keys), Ok(tokens), Ok(prober)) = (keys, tokens, prober) else {
            return Err(problems);
        };
        let checks = Checks::new(&config, me, self.links.clone(), prober.clone())
            .map_err(|e| vec![e.to_string()])?;
        let notifier = if changed.contains(&crate::config::reload::NOTIFY) {
            let started = Notifier::start(&config.notify, self.metrics.clone());
            Some(started.map_err(|e| vec![format!("notifications: {e}")])?)
        } else {
            None
        };
        // Last, once nothing else can refuse it.
        if let Some(text) = &pushed {
            replace_keeping_backup(&self.path, text)
                .map_err(|e| vec![format!("cannot write {}: {e}", self.path.display())])?;
        }
        Ok(Prepared {
            config,
            me,
            keys,
            tokens,
            prober,
            checks,
            notifier,
            who,
            changed,
        })
    }
}

/// A refused reload, logged with every reason; the running configuration
/// stays.
fn refusal(who: &str, problems: &[String]) -> Response {
    for why in problems {
        warn!(%who, %why, "reload refused");
    }
    refuse(&format!(
        "reload refused; the running configuration stays:\n{}",
        problems.join("\n")
    ))
}

/// Copies the previous file to `path.bak`, then replaces it with `text`
/// whole, with the file's mode (see [`crate::atomic_file`]).
fn replace_keeping_backup(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut backup = path.as_os_str().to_owned();
    backup.push(".bak");
    std::fs::copy(path, &backup)?;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    crate::atomic_file::replace(path, text.as_bytes(), mode)
}
