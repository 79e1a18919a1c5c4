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

use super::config_sync::{Pushed, SharedPending};
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
    /// With `cluster.sync_config`: the keys that sign a push to the
    /// others, and a file written here but not applied.
    pub keys: super::wire::SharedKeys,
    pub pending: SharedPending,
}

/// Why a file was not applied.
enum NotApplied {
    /// It cannot apply while the daemon runs: each reason says how;
    /// `sync`: the new file (`text`) has `cluster.sync_config`.
    NeedsRestart {
        sync: bool,
        reasons: Vec<String>,
        text: String,
    },
    /// It is not a usable configuration (or a file cannot be read).
    Problems(Vec<String>),
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
        let was_pushed = pushed.is_some();
        let prepared =
            tokio::task::spawn_blocking(move || reloader.prepare(&current, asked, pushed)).await;
        let (prepared, text) = match prepared {
            Ok(Ok(prepared)) => prepared,
            Ok(Err(NotApplied::NeedsRestart {
                sync: true,
                reasons,
                text,
            })) => {
                return self
                    .write_unapplied(&running, &who, (&text, was_pushed), reasons)
                    .await;
            }
            Ok(Err(
                NotApplied::NeedsRestart {
                    reasons: problems, ..
                }
                | NotApplied::Problems(problems),
            )) => return refusal(&who, &problems),
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
        let mut answer = answer
            .await
            .unwrap_or_else(|_| refuse("the daemon is shutting down"));
        if answer.ok {
            *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = None;
            if !was_pushed && applied.cluster.sync_config {
                // Ours was read from the file: the others get it too.
                answer.message.push_str(&self.sync(&applied, &text).await);
            }
            *running = applied;
        }
        answer
    }

    /// Pushes the file as applied here to the others; their answers.
    async fn sync(&self, config: &Config, text: &str) -> String {
        self.push_on(config, text)
            .await
            .map_or_else(String::new, |p| {
                format!("; synced: {}", p.answers.join("; "))
            })
    }

    /// Pushes `text` to the other nodes of `config`, as this node (none
    /// when it is not in `config`).
    async fn push_on(&self, config: &Config, text: &str) -> Option<Pushed> {
        let me = config.nodes.iter().position(|n| n.name == self.node)?;
        Some(super::config_sync::push_to_peers(config, me, &self.keys, text).await)
    }

    /// A change that needs a restart, with `sync_config`: written (a
    /// pushed one), and pushed on to the others (one read here), but not
    /// applied; status says who must restart.
    async fn write_unapplied(
        &self,
        running: &Config,
        who: &str,
        (text, was_pushed): (&str, bool),
        reasons: Vec<String>,
    ) -> Response {
        for why in &reasons {
            warn!(%who, %why, "configuration written but not applied: a restart applies it");
        }
        let (others, said) = if was_pushed {
            if let Err(e) = replace_keeping_backup(&self.path, text) {
                return refuse(&format!("cannot write {}: {e}", self.path.display()));
            }
            (Vec::new(), String::new())
        } else {
            match self.push_on(running, text).await {
                Some(p) => (p.unapplied, format!("; synced: {}", p.answers.join("; "))),
                None => (Vec::new(), String::new()),
            }
        };
        super::config_sync::mark(&self.pending, &self.node, reasons.clone(), others);
        Response {
            ok: true,
            message: format!(
                "written, not applied: restart to apply it ({}){said}",
                reasons.join("; ")
            ),
            status: None,
            not_applied: true,
        }
    }

    /// Everything that can fail, each problem worded with its place.
    fn prepare(
        &self,
        running: &Config,
        who: String,
        pushed: Option<String>,
    ) -> Result<(Prepared, String), NotApplied> {
        let lines = |problems: crate::config::Problems| {
            let text = problems.to_string();
            NotApplied::Problems(text.lines().map(str::to_owned).collect::<Vec<_>>())
        };
        let was_pushed = pushed.is_some();
        let (config, text) = match pushed {
            None => Config::load_with_text(&self.path).map_err(lines)?,
            Some(text) => (Config::parse(&self.path, &text).map_err(lines)?, text),
        };
        let changed = match crate::config::reload::compare(running, &config) {
            Ok(changed) => changed,
            Err(reasons) => {
                let sync = config.cluster.sync_config;
                return Err(NotApplied::NeedsRestart {
                    sync,
                    reasons,
                    text,
                });
            }
        };
        let prepared = self
            .prepare_applied(config, changed, who, was_pushed.then_some(text.as_str()))
            .map_err(NotApplied::Problems)?;
        Ok((prepared, text))
    }

    /// What an applicable file needs built before it reaches the loop.
    fn prepare_applied(
        &self,
        config: Config,
        changed: Vec<&'static str>,
        who: String,
        pushed: Option<&str>,
    ) -> Result<Prepared, Vec<String>> {
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
        if let Some(text) = pushed {
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
