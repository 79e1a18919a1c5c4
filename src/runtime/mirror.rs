//! The mirror task: while this node holds the common IP, every
//! `[[mirror]]` is copied on its schedule to every other node that is up
//! (see [`crate::io::mirror`] for the run itself). Only the holder sends,
//! never to the holder; the direction turns with the holder.
//!
//! The first run to each node after this node claimed (or after that node
//! was not heard for a while) may overwrite what that node wrote while it
//! held the address or stood apart: that run keeps whatever it replaces or
//! deletes in a dated backup folder on the receiver, and says so (status,
//! a `mirror_backup` notification). A mirror failing to reach a node for
//! its `alert_after` is told once, and its recovery.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::{Config, Mirror};
use crate::control::metrics::Metrics;
use crate::core::{EventKind, Input};
use crate::io::mirror::{self as run, Towards, Transfer};

/// What the loop tells the task after every step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// This node holds the common IP and serves (Active, Draining).
    pub holding: bool,
    /// The term it holds with: a new one is a new claim.
    pub term: u64,
    /// The other nodes heard now, by name.
    pub up: Vec<String>,
}

pub type SharedMirrors = Arc<Mutex<Vec<Towards>>>;

/// Something worth telling a person, for the loop's notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorNote {
    pub kind: EventKind,
    pub cause: String,
}

/// What the loop asks of the task besides its schedule.
enum Ask {
    /// `understudy mirror now [NAME]`.
    Now(Option<String>),
    /// One pass of every mirror to every node up, answered with
    /// `Input::MirrorPassed` (a planned handover; `last`: the final one).
    Pass { last: bool },
}

/// The loop's side of the task.
pub struct MirrorLink {
    view: watch::Sender<View>,
    asks: mpsc::UnboundedSender<Ask>,
    pub state: SharedMirrors,
}

impl MirrorLink {
    /// What the loop saw after a step (sent only when it changed).
    pub fn set_view(&self, view: View) {
        self.view.send_if_modified(|old| {
            let changed = *old != view;
            *old = view;
            changed
        });
    }

    /// Does this node send now (it holds and serves, as the loop last saw)?
    pub fn holding(&self) -> bool {
        self.view.borrow().holding
    }

    /// `understudy mirror now [NAME]`: run now rather than on schedule.
    pub fn run_now(&self, name: Option<String>) {
        let _ = self.asks.send(Ask::Now(name));
    }

    /// A planned handover's pass; the answer comes as an input.
    pub fn pass(&self, last: bool) {
        let _ = self.asks.send(Ask::Pass { last });
    }
}

/// Starts the task when the configuration has mirrors.
pub fn start(
    config: &Config,
    me: usize,
    notes: mpsc::UnboundedSender<MirrorNote>,
    inputs: &mpsc::UnboundedSender<Input>,
    metrics: &Arc<Metrics>,
) -> Option<(MirrorLink, JoinHandle<()>)> {
    if config.mirrors.is_empty() {
        return None;
    }
    let (view, view_rx) = watch::channel(View::default());
    let (asks, asks_rx) = mpsc::unbounded_channel();
    let state = SharedMirrors::default();
    let addresses = config
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != me)
        .map(|(_, n)| (n.name.clone(), n.address.to_string()))
        .collect();
    let task = Task {
        mirrors: config.mirrors.clone(),
        addresses,
        state: state.clone(),
        notes,
        inputs: inputs.clone(),
        metrics: metrics.clone(),
        due: HashMap::new(),
        backup_due: HashMap::new(),
    };
    let handle = tokio::spawn(task.run(view_rx, asks_rx));
    Some((MirrorLink { view, asks, state }, handle))
}

struct Task {
    mirrors: Vec<Mirror>,
    /// Every other node's name and address.
    addresses: Vec<(String, String)>,
    state: SharedMirrors,
    notes: mpsc::UnboundedSender<MirrorNote>,
    inputs: mpsc::UnboundedSender<Input>,
    /// Updated after every run (the state changes only then).
    metrics: Arc<Metrics>,
    /// When each mirror runs next.
    due: HashMap<String, Instant>,
    /// (mirror, node) pairs whose next run keeps what it replaces.
    backup_due: HashMap<(String, String), bool>,
}

impl Task {
    async fn run(
        mut self,
        mut view: watch::Receiver<View>,
        mut asks: mpsc::UnboundedReceiver<Ask>,
    ) {
        let mut seen = View::default();
        loop {
            let next = self.due.values().min().copied();
            tokio::select! {
                asked = asks.recv() => match asked {
                    Some(Ask::Now(name)) => self.ask_now(name.as_deref()),
                    Some(Ask::Pass { last }) => {
                        let outcome = self.pass(&seen, last).await;
                        let _ = self.inputs.send(Input::MirrorPassed(outcome));
                    }
                    None => break,
                },
                changed = view.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let current = view.borrow_and_update().clone();
                    self.saw(&seen, &current);
                    seen = current;
                }
                () = sleep_until(next) => {}
            }
            if seen.holding {
                self.run_due(&seen).await;
            }
        }
    }

    /// A new claim sends at once, with backups to everyone; a node heard
    /// again after it was not gets a backup on its next run.
    fn saw(&mut self, old: &View, new: &View) {
        let claimed = new.holding && (!old.holding || old.term != new.term);
        for (node, _) in &self.addresses {
            let back = !old.up.contains(node) && new.up.contains(node);
            if claimed || back {
                for m in &self.mirrors {
                    self.backup_due.insert((m.name.clone(), node.clone()), true);
                }
            }
        }
        if claimed {
            let at = Instant::now();
            for m in &self.mirrors {
                self.due.insert(m.name.clone(), at);
            }
        }
        if !new.holding {
            self.due.clear();
        }
    }

    fn ask_now(&mut self, name: Option<&str>) {
        let at = Instant::now();
        for m in &self.mirrors {
            if name.is_none_or(|n| n == m.name) {
                self.due.insert(m.name.clone(), at);
            }
        }
    }

    /// Every mirror to every node up, once, within `final_timeout` for the
    /// final pass; the errors, if any, in one line.
    async fn pass(&mut self, view: &View, last: bool) -> Result<(), String> {
        let mut errors = Vec::new();
        for m in &self.mirrors.clone() {
            let limit = if last { m.final_timeout } else { m.timeout };
            errors.extend(self.run_to_all(m, view, limit).await);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    async fn run_due(&mut self, view: &View) {
        let at = Instant::now();
        let mirrors = self.mirrors.clone();
        for m in &mirrors {
            let due = *self.due.entry(m.name.clone()).or_insert(at);
            if due > at {
                continue;
            }
            let next = crate::clock::later(at.into_std(), m.every);
            self.due.insert(m.name.clone(), Instant::from_std(next));
            // Failures are in status and the log; the schedule goes on.
            let _ = self.run_to_all(m, view, m.timeout).await;
        }
    }

    /// One run of `m` to every node up, each within `limit`; what failed.
    async fn run_to_all(&mut self, m: &Mirror, view: &View, limit: Duration) -> Vec<String> {
        let mut errors = Vec::new();
        for (node, address) in self.addresses.clone() {
            if view.up.contains(&node) {
                if let Err(e) = self.run_one(m, &node, &address, limit).await {
                    errors.push(format!("{} to {node}: {e}", m.name));
                }
            }
        }
        errors
    }

    /// One run of `m` to `node`, and what status and people are told.
    async fn run_one(
        &mut self,
        m: &Mirror,
        node: &str,
        address: &str,
        limit: Duration,
    ) -> Result<(), run::MirrorError> {
        let key = (m.name.clone(), node.to_owned());
        let backup = self
            .backup_due
            .get(&key)
            .copied()
            .unwrap_or(true)
            .then(|| run::backup_folder(m, SystemTime::now()));
        let args = run::command(m, address, backup.as_deref());
        let outcome = match run::run(&args, limit).await {
            Ok(transfer) => {
                self.backup_due.insert(key, false);
                info!(mirror = %m.name, %node, files = transfer.files, bytes = transfer.bytes, replaced = transfer.replaced, ms = crate::core::millis(transfer.took), "mirror run done");
                self.succeeded(m, node, transfer, backup);
                Ok(())
            }
            Err(e) => {
                warn!(mirror = %m.name, %node, error = %e, "mirror run failed");
                self.failed(m, node, e.to_string());
                Err(e)
            }
        };
        self.metrics
            .mirrors(&self.state.lock().unwrap_or_else(|p| p.into_inner()));
        outcome
    }

    fn succeeded(&mut self, m: &Mirror, node: &str, t: Transfer, backup: Option<PathBuf>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let entry = towards(&mut state, &m.name, node);
        entry.failing_since = None;
        let told = std::mem::take(&mut entry.told);
        entry.last_success = Some(SystemTime::now());
        entry.last = Some(t);
        entry.error = None;
        let kept = backup.filter(|_| t.replaced > 0);
        if let Some(folder) = &kept {
            entry.backup = Some((folder.clone(), t.replaced));
        }
        drop(state);
        if told {
            self.note(
                EventKind::MirrorRecovered,
                format!("mirror {} reaches {node} again", m.name),
            );
        }
        if let Some(folder) = kept {
            self.note(
                EventKind::MirrorBackup,
                format!(
                    "mirror {} replaced or deleted {} file(s) on {node} that it may have written itself; they are kept in {} there",
                    m.name,
                    t.replaced,
                    folder.display()
                ),
            );
        }
    }

    fn failed(&mut self, m: &Mirror, node: &str, error: String) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let entry = towards(&mut state, &m.name, node);
        let since = *entry.failing_since.get_or_insert_with(SystemTime::now);
        entry.error = Some(error.clone());
        // Told once: the first run that finds it failing for long enough.
        let tell = !entry.told && elapsed(since) >= m.alert_after;
        entry.told |= tell;
        drop(state);
        if tell {
            self.note(
                EventKind::MirrorFailing,
                format!(
                    "mirror {} has not reached {node} for {}: {error}",
                    m.name,
                    humantime::format_duration(Duration::from_secs(elapsed(since).as_secs()))
                ),
            );
        }
    }

    fn note(&self, kind: EventKind, cause: String) {
        info!(event = kind.name(), %cause, "mirror event");
        let _ = self.notes.send(MirrorNote { kind, cause });
    }
}

/// The entry of `mirror` towards `node`, made if it is new.
fn towards<'a>(state: &'a mut Vec<Towards>, mirror: &str, node: &str) -> &'a mut Towards {
    let at = state
        .iter()
        .position(|t| t.mirror == mirror && t.node == node)
        .unwrap_or_else(|| {
            state.push(Towards {
                mirror: mirror.to_owned(),
                node: node.to_owned(),
                ..Towards::default()
            });
            state.len() - 1
        });
    &mut state[at]
}

fn elapsed(since: SystemTime) -> Duration {
    SystemTime::now().duration_since(since).unwrap_or_default()
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
