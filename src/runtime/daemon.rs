//! The daemon's life in three parts: [`Daemon::open`] takes every resource
//! (each failure says which), [`Daemon::run`] is the loop (inputs in, actions
//! out), and [`Background::shutdown`] waits for the workers and drains the
//! notifier within a bound.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info};

use super::config_sync::SharedPending;
use super::effects::{self, Effects, Queued};
use super::history_file::HistoryFile;
use super::panic::Emergency;
use super::probes::Checks;
use super::role_file::RoleFile;
use super::systemd::Systemd;
use super::watchdog::Watchdog;
use super::{
    boot_epoch, failpoint, mirror, now, reload, restart, watch as watches, wire, witness,
    Overrides, RuntimeError,
};
use crate::config::{read_keys, Config, Node};
use crate::control::history::{self, SharedHistory};
use crate::control::metrics::Metrics;
use crate::control::server::{self as control_server, ControlRequest};
use crate::control::{http, report, state_file, Request, Response};
use crate::core::{Action, Core, EventKind, Input, PeerStatus, Settings, StatusWord};
use crate::io::claim::Claim;
use crate::io::nic::Links;
use crate::io::probe::Prober;
use crate::notify::Notifier;
use crate::replay;

/// The loop's state: the core and every channel it reads or writes.
pub struct Daemon {
    config: Config,
    me: usize,
    node: Node,
    core: Core,
    inputs: mpsc::UnboundedReceiver<Input>,
    input_tx: mpsc::UnboundedSender<Input>,
    control_rx: mpsc::Receiver<ControlRequest>,
    effect_tx: mpsc::UnboundedSender<Queued>,
    /// Raised by `Action::Interrupt`; the worker's waits watch it.
    interrupts: watch::Sender<u64>,
    wire: wire::Wire,
    /// The heartbeat sockets and their checks, until the loop's own
    /// runtime takes them (see [`Daemon::run`]).
    receiver: Option<(wire::Sockets, wire::Expect)>,
    checks: Checks,
    notifier: Notifier,
    role: RoleFile,
    metrics: Arc<Metrics>,
    state_path: PathBuf,
    /// Kept up to date for the emergency release.
    holding: Arc<AtomicBool>,
    /// The core's time zero, for the replay log (see [`crate::replay`]).
    origin: std::time::Instant,
    /// What systemd was last told (readiness, status line).
    systemd: Systemd,
    /// The heartbeat keys and the API's tokens, which a reload replaces.
    keys: wire::SharedKeys,
    tokens: Option<http::SharedTokens>,
    /// Reloads, read and checked off the loop, to apply or refuse.
    reloads: mpsc::Receiver<reload::Ask>,
    /// The machine's links, from which a reload makes the claim anew.
    links: Links,
    /// The console's timeline and events, and the last sample's key.
    history: SharedHistory,
    /// Where the history is kept across restarts.
    history_file: HistoryFile,
    sampled: Option<SampleKey>,
    /// The witness task's side, with a `[witness]`.
    witness: Option<witness::WitnessLink>,
    /// The watchdog of `[fencing]`, fed while the core allows it.
    watchdog: Option<Watchdog>,
    /// The mirror task's side, with `[[mirror]]` sections, and what it
    /// asks the notifier to tell.
    mirror: Option<mirror::MirrorLink>,
    mirror_notes: mpsc::UnboundedReceiver<mirror::MirrorNote>,
    /// A file written but not applied (`cluster.sync_config`), for status.
    pending: SharedPending,
}

/// What a timeline sample depends on: a new sample is taken when it
/// changes. Every node's word is in it, not only the watched one's: in a
/// cluster of three, a backup that goes away is a change of the timeline.
#[derive(PartialEq, Eq)]
struct SampleKey {
    word: crate::core::StatusWord,
    holder: crate::core::Holder,
    failing: Option<crate::core::FailureCause>,
    peers: Vec<crate::core::StatusWord>,
}

/// The mirror task, with `[[mirror]]` sections, and what it asks the loop
/// to tell people.
fn start_mirror(
    config: &Config,
    me: usize,
    (inputs, metrics): (&mpsc::UnboundedSender<Input>, &Arc<Metrics>),
    tasks: &mut Vec<JoinHandle<()>>,
) -> (
    Option<mirror::MirrorLink>,
    mpsc::UnboundedReceiver<mirror::MirrorNote>,
) {
    let (notes, notes_rx) = mpsc::unbounded_channel();
    let link = mirror::start(config, me, notes, inputs, metrics).map(|(link, task)| {
        tasks.push(task);
        link
    });
    (link, notes_rx)
}

/// How long the exit waits for the witness task's last hand-back.
const WITNESS_DRAIN: Duration = Duration::from_secs(3);

/// How long a notifier replaced by a reload may take to send what it holds.
const NOTIFY_DRAIN_ON_RELOAD: Duration = Duration::from_secs(30);

/// The tasks beside the loop, stopped by [`Background::shutdown`] or, after
/// a panic, by [`Background::abort`].
pub struct Background {
    worker: JoinHandle<()>,
    /// The witness task: it hands the lease back after the last release.
    witness: Option<JoinHandle<()>>,
    others: Vec<JoinHandle<()>>,
    socket_path: PathBuf,
}

impl Daemon {
    /// Takes every resource the daemon needs; the first that cannot be had
    /// ends the start with an error that names it. Nothing on the network
    /// has changed yet when this fails.
    pub async fn open(
        config: Config,
        me: usize,
        overrides: Overrides,
        exe: PathBuf,
    ) -> Result<(Daemon, Background, Emergency), RuntimeError> {
        let (handover, config_file) = (overrides.handover, overrides.config_file.clone());
        let r = Resources::open(&config, me, overrides).await?;
        let settings = core_settings(&config, me, &r, handover);
        log_start(&config, me, &settings, &r);
        let node = config.nodes[me].clone();
        let addresses = config.cluster.vips.iter().map(|v| v.to_string()).collect();
        let metrics = Arc::new(Metrics::new(&node.name, &config.cluster.name, addresses));
        let keys = r.keys.clone();
        let (input_tx, inputs) = mpsc::unbounded_channel::<Input>();
        let (history, history_file) = HistoryFile::open(&r.state_path);
        let (wire, receiver) = heartbeats(&config, me, r.heartbeat, &r.keys, &settings)?;
        let listening = Listening {
            control: r.control_listener,
            push: r.push_listener,
            socket_path: r.socket_path.clone(),
            exe,
            config_file,
            history: history.clone(),
        };
        let outside = Outside::open(
            &config, me, listening, &r.keys, &r.links, &input_tx, &metrics,
        )
        .await?;
        let mut others = outside.tasks;
        let (worker, effect_tx, interrupts, watchdog) =
            spawn_worker(&config, &node, (&r.claim, &r.prober), &input_tx);
        others.extend(watches::start(&r.claim, &node.nic, &input_tx));
        let notifier =
            Notifier::start(&config.notify, metrics.clone()).map_err(RuntimeError::Notify)?;
        let holding = Arc::new(AtomicBool::new(r.vip_present));
        let emergency = Emergency {
            claim: r.claim.clone(),
            stop: effects::supervisor(&config, &node, &r.prober),
            wire: wire.clone(),
            socket_path: r.socket_path.clone(),
            holding: holding.clone(),
            watchdog: watchdog.clone(),
        };
        let (witness, witness_task) = witness::start(&config, me, &r.prober, &input_tx)?;
        let (mirror, mirror_notes) = start_mirror(&config, me, (&input_tx, &metrics), &mut others);
        let checks = Checks::new(&config, me, r.links.clone(), r.prober)?;
        let origin = now();
        let core = start_core(settings, r.vip_present, origin);
        let daemon = Daemon {
            role: RoleFile::new(config.application.role_file.clone()),
            receiver: Some(receiver),
            config,
            me,
            node,
            core,
            inputs,
            input_tx,
            control_rx: outside.control_rx,
            effect_tx,
            interrupts,
            wire,
            checks,
            notifier,
            metrics,
            state_path: r.state_path,
            holding,
            origin,
            systemd: Systemd::new(),
            keys,
            tokens: outside.tokens,
            reloads: outside.reloads,
            links: r.links,
            history,
            history_file,
            sampled: None,
            witness,
            watchdog,
            mirror,
            mirror_notes,
            pending: outside.pending,
        };
        let background = Background {
            worker,
            witness: witness_task,
            others,
            socket_path: r.socket_path,
        };
        Ok((daemon, background, emergency))
    }

    /// The loop: hand out the core's actions, then wait for the next input,
    /// control request or timer. Returns once the core has released
    /// everything and says `Exit`; the notifier comes back to be drained.
    ///
    /// It runs on a thread of its own (see [`super::run`]), with the
    /// heartbeat sockets, so that heartbeats never wait behind probes,
    /// notifications, the API or the control socket.
    pub async fn run(mut self) -> (Notifier, Option<restart::Handover>) {
        if let Some((sockets, expect)) = self.receiver.take() {
            let (inputs, metrics) = (self.input_tx.clone(), self.metrics.clone());
            let input_tx = self.input_tx.clone();
            let wire = self.wire.clone();
            tokio::spawn(async move {
                if let Err(e) = wire::receive(sockets, expect, wire, inputs, metrics).await {
                    tracing::error!(error = %e, "cannot listen for heartbeats; stopping");
                    let _ = input_tx.send(Input::Shutdown);
                }
            });
        }
        // WATCHDOG=1 from this loop itself: a stalled loop is restarted.
        let mut watchdog = Systemd::watchdog_every().map(tokio::time::interval);
        loop {
            while let Some(action) = self.core.poll_action() {
                if action == Action::Exit {
                    self.save_history_now();
                    info!("released everything; exiting");
                    if let Some(watchdog) = &self.watchdog {
                        watchdog.disarm();
                    }
                    return (self.notifier, None);
                }
                if let Action::Exec { term, holding } = action {
                    self.save_history_now();
                    restart::hold_signals(|| self.unread_signals());
                    let watchdog_fd = self.watchdog.as_ref().and_then(Watchdog::keep_across_exec);
                    let handover = restart::Handover {
                        term,
                        holding,
                        watchdog_fd,
                    };
                    return (self.notifier, Some(handover));
                }
                self.dispatch(action);
            }
            let status = self.core.status(now());
            self.metrics.update(&status, &self.node.name);
            self.sample(&status);
            if let Some(witness) = &self.witness {
                witness.set_record(status.word(), status.term, self.config.checksum);
            }
            if let Some(mirror) = &self.mirror {
                mirror.set_view(mirror::View {
                    holding: matches!(status.word(), StatusWord::Active | StatusWord::Draining),
                    term: status.term,
                    up: status
                        .peers
                        .iter()
                        .filter(|p| p.available)
                        .map(|p| p.name.clone())
                        .collect(),
                });
            }
            if let Some(watchdog) = &self.watchdog {
                watchdog.allow_until(self.core.watchdog_feed_until(now()));
                if self.core.done_with_vip() {
                    watchdog.disarm();
                }
                let (armed, fed) = watchdog.state();
                self.metrics.watchdog(armed, fed);
            }
            let holding = status.state.wire().holding();
            self.holding.store(holding, Ordering::SeqCst);
            self.role.update(holding);
            let (config, me) = (&self.config, self.me);
            self.systemd
                .update(&status, || report::one_line(config, me, &status));
            let deadline = self.core.poll_timeout().map(Instant::from_std);
            tokio::select! {
                Some(input) = self.inputs.recv() => self.input(input),
                Some(req) = self.control_rx.recv() => {
                    failpoint::hit("loop");
                    let response = self.answer(req.request, &req.who);
                    let _ = req.reply.send(response);
                }
                Some((prepared, reply)) = self.reloads.recv() => {
                    let _ = reply.send(self.reload(*prepared));
                }
                Some(note) = self.mirror_notes.recv() => {
                    let term = self.core.term();
                    self.tell((note.kind, note.kind.severity()), note.cause, term, None);
                }
                () = sleep_until(deadline) => self.core.handle_timeout(now()),
                _ = tick(&mut watchdog) => Systemd::watchdog(),
            }
        }
    }

    /// What signals asked of the loop and it will not read now that it
    /// stops for a re-exec: a stop (SIGTERM) or a reload (SIGHUP) queued.
    fn unread_signals(&mut self) -> Vec<libc::c_int> {
        let mut unread = Vec::new();
        while let Ok(input) = self.inputs.try_recv() {
            if input == Input::Shutdown {
                unread.push(libc::SIGTERM);
            }
        }
        while self.reloads.try_recv().is_ok() {
            unread.push(libc::SIGHUP);
        }
        unread
    }

    /// Every input goes to the core through here, and into the replay log
    /// (`UNDERSTUDY_LOG=info,understudy::replay=debug`).
    fn input(&mut self, input: Input) {
        let at = now();
        replay_log(self.origin, at, replay::format_input(&input, self.origin));
        self.core.handle_input(at, input);
    }

    /// Heartbeats go straight to the socket, probes to their own tasks,
    /// interrupts to the worker's watch, notifications to the notifier;
    /// everything that changes the machine to the one ordered worker.
    fn dispatch(&mut self, action: Action) {
        match action {
            Action::SendHeartbeat(hb) => self.wire.send(&hb),
            Action::WatchPeer(id) => self.checks.watch(id),
            Action::Notify(event) => self.notify(&event),
            Action::Probe(target) => self.checks.spawn(target, &self.input_tx, &self.metrics),
            Action::Interrupt => self.interrupts.send_modify(|n| *n += 1),
            Action::Lease(ask) => {
                if let Some(witness) = &self.witness {
                    witness.ask(ask);
                }
            }
            Action::MirrorPass { last } => match &self.mirror {
                Some(mirror) => mirror.pass(last),
                None => {
                    let why = "no [[mirror]] is configured".to_owned();
                    let _ = self.input_tx.send(Input::MirrorPassed(Err(why)));
                }
            },
            other => {
                // The worker lives as long as `effect_tx`; a send can only
                // fail if it panicked, and then the panic hook acts.
                let queued = Queued::Act(other, *self.interrupts.borrow(), self.core.term());
                let _ = self.effect_tx.send(queued);
            }
        }
    }

    fn notify(&mut self, event: &crate::core::Event) {
        self.tell(
            (event.kind, event.severity()),
            event.cause.to_string(),
            event.term,
            event.duration,
        );
    }

    /// Records an event in the console's history and hands it to the
    /// notifier, with the status at this moment.
    fn tell(
        &mut self,
        (kind, severity): (EventKind, &'static str),
        cause: String,
        term: u64,
        took: Option<Duration>,
    ) {
        {
            let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
            history.event(kind.name(), cause.clone(), term, took);
            if kind == EventKind::Takeover {
                history.took_over(history::LastTakeover {
                    node: self.node.name.clone(),
                    at_ms: history::now_ms(),
                    cause: cause.clone(),
                    duration_ms: took.map(crate::core::millis),
                    term,
                });
            }
            self.history_file.save_later();
        }
        if !self.notifier.wants(kind) {
            return;
        }
        let at = now();
        let status = self.core.status(at);
        let report = self.report(&status, at);
        let table = report::render(&report);
        let watched = status.peers.iter().find(|p| p.watched);
        let peer = watched.map_or("", |p| p.name.as_str());
        let envelope = crate::notify::Envelope::new(
            (kind, severity),
            &cause,
            (term, took),
            (&self.node.name, peer),
            (report, table),
        );
        self.notifier.send(kind, &cause, envelope);
    }

    /// Answers a control request from the core itself; an admin command is
    /// an input to the core, and a change to Disabled or maintenance is saved.
    fn answer(&mut self, request: Request, who: &str) -> Response {
        let at = now();
        if let Request::MirrorNow { name } = request {
            let (ok, message) = self.mirror_now(name, who);
            return self.reply(ok, message);
        }
        let (ok, mut message) = match request.admin() {
            None => (true, String::new()),
            Some((cmd, force)) => {
                info!(%who, %cmd, force, "admin request");
                replay_log(self.origin, at, replay::format_admin(&cmd, force));
                match self.core.handle_admin(at, cmd, force) {
                    Ok(done) => (true, done.to_string()),
                    Err(why) => (false, why.to_string()),
                }
            }
        };
        let status = self.core.status(at);
        if ok && request.admin().is_some() {
            let persisted = state_file::Persisted {
                disabled: status.disabled,
                maintenance: status.maintenance,
            };
            if let Err(e) = state_file::save(&self.state_path, persisted) {
                tracing::error!(error = %e, "cannot save the administrator's settings");
                message.push_str(&format!(" (warning: not saved: {e})"));
            }
        }
        self.reply(ok, message)
    }
}

impl Daemon {
    /// `understudy mirror now [NAME]`: only the holder sends.
    fn mirror_now(&mut self, name: Option<String>, who: &str) -> (bool, String) {
        let Some(mirror) = &self.mirror else {
            return (false, "no [[mirror]] in the configuration".to_owned());
        };
        if let Some(name) = name.as_deref() {
            if !self.config.mirrors.iter().any(|m| m.name == name) {
                let known: Vec<&str> = self
                    .config
                    .mirrors
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect();
                return (
                    false,
                    format!(
                        "no mirror named {name:?} (the configuration has: {})",
                        known.join(", ")
                    ),
                );
            }
        }
        if !mirror.holding() {
            return (
                false,
                "this node does not hold the common IP; only the holder sends: run it there"
                    .to_owned(),
            );
        }
        info!(%who, mirror = name.as_deref().unwrap_or("all"), "mirror run asked");
        mirror.run_now(name.clone());
        (
            true,
            format!(
                "mirror {} runs now",
                name.as_deref().unwrap_or("(every one)")
            ),
        )
    }

    /// Writes the history before the process ends or re-executes.
    fn save_history_now(&self) {
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        self.history_file.save_now(&history);
    }

    /// A timeline sample for the console when what it shows changed.
    fn sample(&mut self, status: &crate::core::Status) {
        let key = SampleKey {
            word: status.word(),
            holder: status.holder,
            failing: status.failure(),
            peers: status.peers.iter().map(PeerStatus::word).collect(),
        };
        if self.sampled.as_ref() == Some(&key) {
            return;
        }
        // Who held before, as this run saw it (none at the first sample).
        let held_before = self.sampled.as_ref().map(|k| k.holder);
        self.sampled = Some(key);
        let at = now();
        let report = report::build(&self.config, self.me, status, at);
        let sample = history::Sample {
            at_ms: history::now_ms(),
            nodes: report
                .nodes
                .iter()
                .map(|n| (n.name.clone(), n.status.clone()))
                .collect(),
            holder: report.holder.node.clone(),
            failing: report.nodes.iter().find_map(|n| n.failing.clone()),
        };
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        history.sample(sample);
        // A peer holding with a term above the last takeover's took over
        // since: the last takeover in the cluster is its (its cause is in
        // its own status).
        let holder = status
            .peers
            .iter()
            .find(|p| crate::core::Holder::Peer(p.id) == status.holder);
        // A term above the last takeover known (kept from before a
        // restart), or a move from another holder this run saw; a peer
        // that held already when this node started (nobody, then it, as
        // the first heartbeats come) did not take over now.
        let seen_change =
            held_before.is_some_and(|h| h != status.holder && h != crate::core::Holder::Nobody);
        if let Some((peer, hb)) = holder.and_then(|p| Some((p, p.heartbeat?))) {
            let known = history.last_takeover().map(|last| last.term);
            let newer = known.is_none_or(|term| hb.term > term);
            if newer && (seen_change || known.is_some()) {
                history.took_over(history::LastTakeover {
                    node: peer.name.clone(),
                    at_ms: history::now_ms(),
                    cause: format!(
                        "seen from {}: {} holds the common IP with term {} (its own status says why)",
                        self.node.name, peer.name, hb.term
                    ),
                    duration_ms: None,
                    term: hb.term,
                });
            }
        }
        self.history_file.save_later();
    }

    /// Applies a prepared reload whole (checked off the loop, see
    /// [`reload`]); the VIP and the application stay. systemd hears
    /// `RELOADING=1` and then `READY=1` again.
    fn reload(&mut self, p: reload::Prepared) -> Response {
        Systemd::reloading();
        let answer = self.apply(p);
        self.systemd.reloaded();
        answer
    }

    fn apply(&mut self, p: reload::Prepared) -> Response {
        let (who, mut changed) = (p.who, p.changed);
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if *keys != p.keys {
            changed.push("heartbeat keys");
            *keys = p.keys;
        }
        drop(keys);
        if let (Some(tokens), Some(fresh)) = (&self.tokens, p.tokens) {
            *tokens.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        }
        let (config, me) = (p.config, p.me);
        let node = &config.nodes[me];
        let fresh = Effects::new(
            &config,
            node,
            Claim::new(&config, node, &self.links),
            p.prober,
            self.interrupts.subscribe(),
        );
        let _ = self.effect_tx.send(Queued::Reconfigure(Box::new(fresh)));
        let watched = self.checks.watched();
        self.checks = p.checks;
        self.checks.watch(watched);
        if let Some(fresh) = p.notifier {
            let old = std::mem::replace(&mut self.notifier, fresh);
            tokio::spawn(old.close(NOTIFY_DRAIN_ON_RELOAD));
        }
        self.role = RoleFile::new(config.application.role_file.clone());
        self.node = node.clone();
        let settings = config.core_settings(me, 0);
        replay_log(self.origin, now(), replay::format_settings(&settings));
        self.core.reconfigure(now(), settings);
        self.config = config;
        let list = if changed.is_empty() {
            "nothing changed".to_owned()
        } else {
            changed.join(", ")
        };
        info!(%who, changed = %list, config = format!("{:016x}", self.config.checksum), "configuration reloaded");
        self.reply(true, format!("reloaded: {list}"))
    }

    /// An answer with the status after it.
    fn reply(&self, ok: bool, message: String) -> Response {
        let at = now();
        Response {
            ok,
            message,
            status: Some(self.report(&self.core.status(at), at)),
            not_applied: false,
        }
    }

    /// The status report, with the witness's view when there is one.
    fn report(&self, status: &crate::core::Status, at: std::time::Instant) -> report::StatusReport {
        let mut r = report::build(&self.config, self.me, status, at);
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        r.last_takeover = history.last_takeover().map(report::takeover_view);
        drop(history);
        if let Some(witness) = &self.witness {
            let view = witness.view.lock().unwrap_or_else(|p| p.into_inner());
            report::add_witness(&mut r, status, &view, at);
        }
        r.watchdog = self.watchdog.as_ref().map(|w| w.report(at));
        if let Some(mirror) = &self.mirror {
            let state = mirror.state.lock().unwrap_or_else(|p| p.into_inner());
            r.mirrors = crate::control::mirror_report::reports(&state);
        }
        r.restart_to_apply = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        r
    }
}

impl Background {
    /// After a clean exit: the worker finishes (its channel closed with the
    /// loop), the listeners stop, queued notifications go out within a
    /// bound, and the control socket is removed.
    pub async fn shutdown(self, notifier: Notifier, drain: Duration) {
        let _ = self.worker.await;
        if let Some(witness) = self.witness {
            // The last release's hand-back is bounded by a quarter lease;
            // never wait long for a witness that is gone.
            let _ = tokio::time::timeout(WITNESS_DRAIN, witness).await;
        }
        for task in &self.others {
            task.abort();
        }
        notifier.close(drain).await;
        let _ = std::fs::remove_file(&self.socket_path);
    }

    /// After a panic: every task stops now, the worker first, so that no
    /// action of theirs can run after the emergency release.
    pub async fn abort(self) {
        self.worker.abort();
        let _ = self.worker.await;
        for task in self.others {
            task.abort();
        }
    }
}

/// The effects worker, the queue to it, the interrupt count it watches,
/// and the watchdog it arms (with `[fencing]`), whose feeder starts here.
fn spawn_worker(
    config: &Config,
    node: &Node,
    (claim, prober): (&Claim, &Prober),
    input_tx: &mpsc::UnboundedSender<Input>,
) -> (
    JoinHandle<()>,
    mpsc::UnboundedSender<Queued>,
    watch::Sender<u64>,
    Option<Watchdog>,
) {
    let (effect_tx, effect_rx) = mpsc::unbounded_channel::<Queued>();
    let (interrupts, interrupt_rx) = watch::channel(0u64);
    let watchdog = config.watchdog.clone().map(Watchdog::start);
    let mut effects = Effects::new(config, node, claim.clone(), prober.clone(), interrupt_rx);
    effects.watchdog = watchdog.clone();
    let worker = tokio::spawn(effects.serve(effect_rx, input_tx.clone()));
    (worker, effect_tx, interrupts, watchdog)
}

/// What the listeners need that only the start knows.
struct Listening {
    control: tokio::net::UnixListener,
    push: tokio::net::TcpListener,
    socket_path: PathBuf,
    /// The binary and the file a `restart` checks, the file a reload reads.
    exe: PathBuf,
    config_file: PathBuf,
    /// The console's past, which the loop records and the API serves.
    history: SharedHistory,
}

/// The tasks that take requests from outside the loop (signals, the
/// control socket, the HTTP API, configuration pushes), with the reloader
/// they share, and the loop's ends of their channels.
struct Outside {
    tasks: Vec<JoinHandle<()>>,
    control_rx: mpsc::Receiver<ControlRequest>,
    reloads: mpsc::Receiver<reload::Ask>,
    tokens: Option<http::SharedTokens>,
    /// A file written but not applied (`cluster.sync_config`).
    pending: SharedPending,
}

impl Outside {
    async fn open(
        config: &Config,
        me: usize,
        l: Listening,
        keys: &wire::SharedKeys,
        links: &Links,
        input_tx: &mpsc::UnboundedSender<Input>,
        metrics: &Arc<Metrics>,
    ) -> Result<Outside, RuntimeError> {
        let node = &config.nodes[me];
        let (control_tx, control_rx) = mpsc::channel::<ControlRequest>(16);
        let (reload_tx, reloads) = mpsc::channel::<reload::Ask>(1);
        let pending = SharedPending::default();
        let reloader = Arc::new(reload::Reloader {
            path: l.config_file.clone(),
            node: node.name.clone(),
            links: links.clone(),
            metrics: metrics.clone(),
            to_loop: reload_tx,
            running: tokio::sync::Mutex::new(config.clone()),
            keys: keys.clone(),
            pending: pending.clone(),
        });
        let hooks = control_server::Hooks {
            restart: restart_check(l.exe, l.config_file, node.name.clone()),
            reload: reloader.clone().hook(),
        };
        let pushes = super::push::Receiver {
            peers: config
                .peers_of(me)
                .map(|p| (p.address, p.name.clone()))
                .collect(),
            cluster_id: crate::proto::heartbeat::cluster_id(&config.cluster.name),
            keys: keys.clone(),
            reloader: reloader.clone(),
        };
        super::restart::catch_signals().map_err(RuntimeError::Signal)?;
        let signals = forward_signals(input_tx.clone(), reloader)?;
        // Our handlers are in place: what a restarting predecessor held
        // for us (or anything sent since exec) is delivered to them now.
        super::restart::deliver_held_signals();
        let mut tasks = vec![tokio::spawn(signals), tokio::spawn(pushes.serve(l.push))];
        let (api, tokens) = open_api(config, control_tx.clone(), metrics.clone(), l.history)
            .await?
            .unzip();
        tasks.extend(api);
        tasks.push(tokio::spawn(control_server::serve(
            l.control,
            l.socket_path,
            control_tx,
            hooks,
        )));
        Ok(Outside {
            tasks,
            control_rx,
            reloads,
            tokens,
            pending,
        })
    }
}

/// What the daemon takes from the machine before it starts anything.
struct Resources {
    keys: wire::SharedKeys,
    links: Links,
    /// How the common addresses are placed, for the worker, the watch
    /// and the emergency release.
    claim: Claim,
    /// The VIP is on our NIC already (left by an earlier run).
    vip_present: bool,
    prober: Prober,
    heartbeat: wire::Sockets,
    socket_path: PathBuf,
    state_path: PathBuf,
    persisted: state_file::Persisted,
    control_listener: tokio::net::UnixListener,
    /// `understudy config push` from the peer (TCP, the heartbeat port).
    push_listener: tokio::net::TcpListener,
}

impl Resources {
    async fn open(
        config: &Config,
        me: usize,
        overrides: Overrides,
    ) -> Result<Resources, RuntimeError> {
        let node = &config.nodes[me];
        let keys = read_keys(&config.heartbeat.secret_file).map_err(RuntimeError::Secret)?;
        let keys = Arc::new(std::sync::RwLock::new(keys));
        let links = Links::open()?;
        // The node's NIC must exist; the claim's may hold an earlier run's
        // addresses.
        links.require(&node.nic).await?;
        let claim = Claim::new(config, node, &links);
        let vip_present = claim.present().await?;
        let prober = super::probes::prober(config, config.monitor.timeout)?;
        let heartbeat = open_heartbeat(config, me)?;
        let push_addr = SocketAddr::new(node.address, config.heartbeat.port);
        let push_listener = tokio::net::TcpListener::bind(push_addr)
            .await
            .map_err(|source| RuntimeError::Push {
                addr: push_addr,
                source,
            })?;
        let socket_path = overrides
            .socket
            .unwrap_or_else(|| config.control.socket.clone());
        let state_path = overrides
            .state_file
            .unwrap_or_else(|| config.control.state_file.clone());
        let persisted = state_file::load(&state_path).map_err(RuntimeError::State)?;
        let control_listener =
            control_server::bind(&socket_path)
                .await
                .map_err(|source| RuntimeError::Control {
                    path: socket_path.clone(),
                    source,
                })?;
        Ok(Resources {
            keys,
            claim,
            links,
            vip_present,
            prober,
            heartbeat,
            socket_path,
            state_path,
            persisted,
            control_listener,
            push_listener,
        })
    }
}

fn log_start(config: &Config, me: usize, settings: &Settings, r: &Resources) {
    let node = &config.nodes[me];
    let peers: Vec<&str> = config.peers_of(me).map(|p| p.name.as_str()).collect();
    info!(
        node = %node.name, role = %node.role, nic = %node.nic, vip = %config.cluster.shown(), peers = %peers.join(","),
        grace = %humantime::format_duration(config.monitor.grace),
        interval = %humantime::format_duration(config.monitor.interval),
        heartbeat = %humantime::format_duration(config.heartbeat.interval),
        peer_timeout = %humantime::format_duration(config.heartbeat.peer_timeout),
        epoch = settings.epoch, config = format!("{:016x}", config.checksum),
        vip_present = r.vip_present, disabled = r.persisted.disabled, maintenance = r.persisted.maintenance,
        socket = %r.socket_path.display(), "understudy starting"
    );
}

/// The core's settings: the file's, with what the state file kept and
/// what a re-executed predecessor handed over.
fn core_settings(
    config: &Config,
    me: usize,
    r: &Resources,
    handover: Option<restart::Handover>,
) -> Settings {
    let mut settings = config.core_settings(me, boot_epoch());
    settings.disabled = r.persisted.disabled;
    settings.maintenance = r.persisted.maintenance;
    settings.adopt = handover.filter(|h| h.holding).map(|h| h.term);
    settings
}

/// The next tick of the watchdog interval; never, without a watchdog.
async fn tick(watchdog: &mut Option<tokio::time::Interval>) {
    match watchdog {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// What a `restart` must pass first: the binary found at start accepts the
/// configuration file as this node.
fn restart_check(exe: PathBuf, config_file: PathBuf, node: String) -> control_server::RestartCheck {
    Arc::new(move || restart::precheck(&exe, &config_file, &node))
}

/// The heartbeat sockets' two sides: the sender the loop uses, and the
/// sockets and checks its receiver will use.
fn heartbeats(
    config: &Config,
    me: usize,
    sockets: wire::Sockets,
    keys: &wire::SharedKeys,
    settings: &Settings,
) -> Result<(wire::Wire, (wire::Sockets, wire::Expect)), RuntimeError> {
    let senders = sockets.senders().map_err(|source| RuntimeError::Socket {
        addr: SocketAddr::new(config.nodes[me].address, config.heartbeat.port),
        source,
    })?;
    let echoes = wire::Echoes::default();
    let wire = wire::Wire {
        peers: Arc::new(senders),
        keys: keys.clone(),
        last: Arc::default(),
        echoes: echoes.clone(),
    };
    let expect = wire::Expect {
        cluster_id: settings.cluster_id,
        peers: config
            .peers_of(me)
            .map(|p| (config.id_of(p), p.address))
            .collect(),
        keys: keys.clone(),
        epoch: settings.epoch,
        echoes,
    };
    Ok((wire, (sockets, expect)))
}

/// SIGTERM and SIGINT become [`Input::Shutdown`] (stop the application,
/// release the VIP, exit), from the main runtime; SIGHUP is a reload.
fn forward_signals(
    inputs: mpsc::UnboundedSender<Input>,
    reloader: Arc<reload::Reloader>,
) -> Result<impl std::future::Future<Output = ()>, RuntimeError> {
    let mut term = signal(SignalKind::terminate()).map_err(RuntimeError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(RuntimeError::Signal)?;
    let mut hup = signal(SignalKind::hangup()).map_err(RuntimeError::Signal)?;
    Ok(async move {
        loop {
            let (name, number) = tokio::select! {
                _ = term.recv() => ("SIGTERM", libc::SIGTERM),
                _ = int.recv() => ("SIGINT", libc::SIGINT),
                _ = hup.recv() => ("SIGHUP", libc::SIGHUP),
            };
            if number == libc::SIGHUP {
                // The reload logs its own outcome; during a restart the
                // new process reloads (it reads the file anyway).
                let mut reload = None;
                restart::forward_or_hold(number, || reload = Some(reloader.clone()));
                if let Some(reloader) = reload {
                    reloader.reload("SIGHUP".into()).await;
                }
                continue;
            }
            let mut sent = true;
            restart::forward_or_hold(number, || {
                info!(
                    signal = name,
                    "stopping: the application is stopped and the common IP released if this node holds them"
                );
                Systemd::stopping();
                sent = inputs.send(Input::Shutdown).is_ok();
            });
            if !sent {
                return;
            }
        }
    })
}

/// The core, started, with its settings and first input in the replay log.
fn start_core(settings: Settings, vip_present: bool, origin: std::time::Instant) -> Core {
    replay_log(origin, origin, replay::format_settings(&settings));
    let mut core = Core::new(settings);
    let started = Input::Started { vip_present };
    replay_log(origin, origin, replay::format_input(&started, origin));
    core.handle_input(origin, started);
    core
}

/// One line of the replay log (target `understudy::replay`, at debug): what
/// `tests/golden/log2input.py` turns back into a scenario.
fn replay_log(origin: std::time::Instant, at: std::time::Instant, line: String) {
    debug!(
        target: "understudy::replay",
        ms = at.saturating_duration_since(origin).as_millis() as u64,
        %line
    );
}

/// The heartbeat port's sockets on our address, one connected to each
/// peer's.
fn open_heartbeat(config: &Config, me: usize) -> Result<wire::Sockets, RuntimeError> {
    let port = config.heartbeat.port;
    let listen = SocketAddr::new(config.nodes[me].address, port);
    let peers: Vec<(u16, SocketAddr)> = config
        .peers_of(me)
        .map(|p| (config.id_of(p), SocketAddr::new(p.address, port)))
        .collect();
    wire::Sockets::open(listen, &peers).map_err(|source| RuntimeError::Socket {
        addr: listen,
        source,
    })
}

/// Starts the HTTP API when one is configured.
async fn open_api(
    config: &Config,
    control_tx: mpsc::Sender<ControlRequest>,
    metrics: Arc<Metrics>,
    history: SharedHistory,
) -> Result<Option<(JoinHandle<()>, http::SharedTokens)>, RuntimeError> {
    let Some(api) = &config.api else {
        return Ok(None);
    };
    let tokens = http::Tokens::load(&api.tokens_file).map_err(RuntimeError::Api)?;
    let tokens = Arc::new(std::sync::RwLock::new(tokens));
    let tls = match &api.tls {
        Some((cert, key)) => Some(http::tls_acceptor(cert, key).map_err(RuntimeError::Api)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(api.listen)
        .await
        .map_err(|e| RuntimeError::Api(format!("cannot listen on {}: {e}", api.listen)))?;
    info!(listen = %api.listen, tls = tls.is_some(), "HTTP API listening");
    let server = tokio::spawn(http::serve(
        listener,
        tls,
        tokens.clone(),
        control_tx,
        metrics,
        history,
    ));
    Ok(Some((server, tokens)))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
