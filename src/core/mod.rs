//! The sans-IO decision core (in the style of quinn-proto).
//!
//! No sockets, no tokio, no clock, no randomness: the caller passes `now`
//! in and gives the boot epoch in [`Settings`]. Call order:
//!
//! 1. [`Core::handle_input`] for every report from the world, and
//!    [`Core::handle_timeout`] when [`Core::poll_timeout`] is reached;
//! 2. then drain [`Core::poll_action`] and carry each action out; actions
//!    that change the machine report back with exactly one completion input.
//!
//! Every state's entry and exit actions live in [`Core::change_state`];
//! what to do next from Passive and Active is decided in [`decide`] after
//! every input. The transition function is total: an input that does not
//! apply to the current state is logged and ignored.

mod action;
mod admin;
pub mod countdown;
mod decide;
mod event;
mod flap;
mod health;
mod input;
mod mode;
mod peer;
mod recovery;
mod settings;
mod state;
mod timer;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use action::Action;
pub use admin::{AdminCommand, AdminReply};
pub use event::{Event, EventKind};
pub use health::{Change, Health, Verdict};
pub use input::{Input, Outcome, Target};
use mode::{After, Claim, Ending, Mode, Phase, Release, Serve, Watch};
pub use peer::{FailureCause, PeerView};
pub use recovery::AppRecovery;
pub use settings::{Failback, Role, Settings};
pub use state::{Cause, State};
pub use timer::later;
use timer::{Timer, Timers};
use tracing::{debug, error, info, warn};

use crate::proto::heartbeat::{self, Flags, Heartbeat};

/// A snapshot for logs and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub term: u64,
    /// Is a valid heartbeat from the peer recent?
    pub peer_available: bool,
    pub peer_state: Option<heartbeat::WireState>,
    pub peer_last_seen: Option<Instant>,
    /// Why the peer counts as failing, while it does.
    pub failure: Option<FailureCause>,
    /// Time left before a takeover, while counting down.
    pub takeover_in: Option<Duration>,
    /// The takeover is due but held back, and why (this node's NIC is down,
    /// or it cannot reach the data service).
    pub takeover_blocked: Option<String>,
    /// The peer announced a different configuration checksum.
    pub config_mismatch: bool,
    pub disabled: bool,
    /// Maintenance by the administrator (kept across restarts).
    pub maintenance: bool,
    /// Maintenance by the application's own signal.
    pub maintenance_signal: bool,
    /// The last heartbeat's term and flags from the peer, if any.
    pub peer_heartbeat: Option<Heartbeat>,
    /// Who holds the VIP as far as this node knows, and since when.
    pub holder: Holder,
    pub holder_since: Option<Instant>,
    pub last_takeover: Option<Takeover>,
    pub counters: Counters,
    /// Each probe target's current verdict.
    pub probes: Vec<(Target, Verdict)>,
    /// Since when the flap limit has stopped automatic moves.
    pub flapping_since: Option<Instant>,
    /// Automatic moves within the flap window.
    pub recent_moves: usize,
    /// What is being done about our own failed application.
    pub recovery: AppRecovery,
}

impl Status {
    /// This node's status word: Active, Passive, Disabled, Maintenance.
    pub fn word(&self) -> &'static str {
        match self.state.status_word() {
            "Active" => "Active",
            _ if self.maintenance || self.maintenance_signal => "Maintenance",
            _ if self.disabled => "Disabled",
            word => word,
        }
    }

    /// The peer's status word, from its last heartbeat.
    pub fn peer_word(&self) -> &'static str {
        match self.peer_heartbeat {
            Some(hb) if self.peer_available => match hb.state {
                heartbeat::WireState::Active => "Active",
                heartbeat::WireState::Claiming => "Active (claiming)",
                heartbeat::WireState::Releasing => "Active (releasing)",
                heartbeat::WireState::Stopped => "Unavailable",
                _ if hb.flags.maintenance => "Maintenance",
                _ if hb.flags.disabled => "Disabled",
                _ => "Passive",
            },
            _ => "Unavailable",
        }
    }
}

/// Who holds the VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    Local,
    Peer,
    Nobody,
}

/// The last takeover by this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Takeover {
    pub at: Instant,
    pub cause: String,
    /// From the decision to the application confirmed healthy.
    pub duration: Duration,
}

/// Running totals since start, for status and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub takeovers: u64,
    pub releases: u64,
    /// Failing streaks of the watched peer, by cause.
    pub failures: Vec<(FailureCause, u64)>,
    /// Takeovers or failbacks held back by the dwell time.
    pub dwell_delays: u64,
}

impl Counters {
    fn count_failure(&mut self, cause: FailureCause) {
        match self.failures.iter_mut().find(|(c, _)| *c == cause) {
            Some((_, n)) => *n += 1,
            None => self.failures.push((cause, 1)),
        }
    }
}

pub struct Core {
    settings: Settings,
    state: State,
    /// The data of the current phase (see [`mode`]); dropped with it.
    mode: Mode,
    timers: Timers,
    actions: VecDeque<Action>,
    /// The peer's application, probed by URL while we are not Active.
    peer_app: Health,
    /// Our own application, watched while Active.
    local: Health,
    /// The data service as seen from here.
    data: Health,
    /// Our own NIC (admin up and carrier).
    nic: Health,
    /// Targets this node could not even probe, and why (out of file
    /// descriptors or memory). While any is listed the node cannot judge,
    /// so it neither takes over nor asks for the VIP.
    not_probed: Vec<(Target, String)>,
    peer: PeerView,
    /// Since when the holding peer has reported its application or data
    /// service down, and which.
    peer_reported_down: Option<(Instant, FailureCause)>,
    /// Our term: raised above every term we know at each claim.
    term: u64,
    seq: u64,
    /// What our last heartbeat said; a new one goes out when this changes.
    told: Option<(heartbeat::WireState, Flags, u64)>,
    /// The peer let go of the VIP while we held it (a split brain ended):
    /// announce again once Active, so that clients that the peer's kernel
    /// answered come back to us.
    reannounce_pending: bool,
    peer_was_available: bool,
    config_mismatch: bool,
    /// The kernel may hold the VIP on our NIC (we added it, or found it).
    vip_held: bool,
    /// SIGTERM arrived: finish the step in flight, then release and exit.
    shutdown: bool,
    /// Administrator settings (kept across restarts by the runtime).
    disabled: bool,
    maintenance: bool,
    holder: Holder,
    holder_since: Option<Instant>,
    last_takeover: Option<Takeover>,
    last_failure: Option<FailureCause>,
    /// The peer's failure in words, kept until a takeover that it caused
    /// (the claim itself may be made on the peer's word that it released).
    failure_text: Option<String>,
    /// When the VIP last moved to or from this node.
    last_move: Option<Instant>,
    /// When the VIP last moved automatically to or from this node, within
    /// the flap window, and since when that has been too often.
    flaps: flap::Flaps,
    counters: Counters,
}

impl Core {
    pub fn new(settings: Settings) -> Self {
        let (rise, fall) = (settings.rise, settings.fall);
        let (data_rise, data_fall) = (settings.data_rise, settings.data_fall);
        let (disabled, maintenance) = (settings.disabled, settings.maintenance);
        Core {
            settings,
            state: State::Init,
            mode: Mode::Idle,
            timers: Timers::default(),
            actions: VecDeque::new(),
            peer_app: Health::new(rise, fall),
            local: Health::new(rise, fall),
            data: Health::new(data_rise, data_fall),
            nic: Health::new(1, 1),
            not_probed: Vec::new(),
            peer: PeerView::default(),
            peer_reported_down: None,
            term: 0,
            seq: 0,
            told: None,
            reannounce_pending: false,
            peer_was_available: false,
            config_mismatch: false,
            vip_held: false,
            shutdown: false,
            disabled,
            maintenance,
            holder: Holder::Nobody,
            holder_since: None,
            last_takeover: None,
            last_failure: None,
            failure_text: None,
            last_move: None,
            flaps: flap::Flaps::default(),
            counters: Counters::default(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn status(&self, now: Instant) -> Status {
        let watching = matches!(self.state, State::Passive | State::Starting);
        let due = watching.then(|| self.takeover_due_at(now)).flatten();
        Status {
            state: self.state,
            term: self.term,
            peer_available: self.peer_available(now),
            peer_state: self.peer.state(),
            peer_last_seen: self.peer.last_seen,
            failure: watching.then(|| self.failure_cause(now)).flatten(),
            takeover_in: due.map(|at| at.saturating_duration_since(now)),
            // A node that cannot run its probes says so at once, not only
            // when a takeover falls due.
            takeover_blocked: self
                .mode
                .watch()
                .and_then(|w| w.takeover_blocked.clone())
                .or_else(|| {
                    (!self.not_probed.is_empty())
                        .then(|| self.takeover_blocker())
                        .flatten()
                }),
            config_mismatch: self.config_mismatch,
            disabled: self.disabled,
            maintenance: self.maintenance,
            maintenance_signal: self.maintenance_signal(),
            peer_heartbeat: self.peer.last,
            holder: self.holder,
            holder_since: self.holder_since,
            last_takeover: self.last_takeover.clone(),
            counters: self.counters.clone(),
            probes: vec![
                (Target::Peer, self.peer_app.verdict()),
                (Target::Local, self.local.verdict()),
                (Target::Data, self.data.verdict()),
                (Target::Nic, self.nic.verdict()),
            ],
            flapping_since: self.flaps.since(),
            recent_moves: self.flaps.count(),
            recovery: self.mode.recovery(),
        }
    }

    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    pub fn handle_input(&mut self, now: Instant, input: Input) {
        match (self.state, input) {
            (State::Init, Input::Started { vip_present }) => self.on_started(now, vip_present),
            (State::Checking, Input::VipChecked { holder, via_vip }) => {
                self.on_vip_checked(now, holder, via_vip)
            }
            (State::Claiming | State::Restoring, Input::VipAdded(outcome)) => {
                self.on_vip_added(now, outcome)
            }
            (State::Announcing, Input::Announced(outcome)) => {
                if let Err(why) = outcome {
                    warn!(%why, "gratuitous ARP failed; the kernel still answers ARP for the common IP");
                }
                if self.shutdown {
                    self.release(now, Cause::Shutdown, Ending::Exit, false);
                } else {
                    self.change_state(now, State::StartingApp, Cause::StepDone);
                }
            }
            (State::StartingApp | State::RestartingApp, Input::AppStarted(outcome)) => {
                self.on_app_started(now, outcome)
            }
            (State::StoppingApp, Input::AppStopped(outcome)) => {
                if let Err(why) = outcome {
                    warn!(%why, "stop command failed; removing the common IP anyway");
                }
                self.change_state(now, State::Releasing, Cause::StepDone);
            }
            (State::Releasing, Input::VipRemoved(outcome)) => self.on_vip_removed(now, outcome),
            (_, Input::MaintenanceSignal(on)) => self.on_maintenance_signal(now, on),
            (State::Draining, Input::Drained { remaining }) => self.on_drained(now, remaining),
            (State::Active, Input::VipMissing) => {
                warn!("the common IP was removed from the NIC by something else; restoring it");
                self.change_state(now, State::Restoring, Cause::VipRemoved);
            }
            (
                _,
                Input::Probed {
                    target,
                    started,
                    outcome,
                },
            ) => self.on_probe(now, target, started, outcome),
            (_, Input::ProbeNotRun { target, why, .. }) => self.on_probe_not_run(target, why),
            (_, Input::Heartbeat(hb)) => self.on_heartbeat(now, hb),
            (_, Input::Shutdown) => self.on_shutdown(now),
            (state, input) => debug!(
                ?state,
                ?input,
                "input does not apply in this state; ignored"
            ),
        }
        self.decide(now);
        self.tell_peer(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in self.timers.take_expired(now) {
            let watching = matches!(
                self.state,
                State::Starting | State::Checking | State::Passive
            );
            match (timer, self.state) {
                (_, State::Stopped) => {}
                (Timer::ProbePeer, _) if watching => {
                    self.probe_and_rearm(now, Target::Peer, Timer::ProbePeer)
                }
                (Timer::ProbeLocal, State::Active) => {
                    self.probe_and_rearm(now, Target::Local, Timer::ProbeLocal)
                }
                (Timer::ProbeData, _) => {
                    self.actions.push_back(Action::Probe(Target::Data));
                    self.timers
                        .set(Timer::ProbeData, later(now, self.settings.data_interval));
                }
                (Timer::ProbeNic, _) => self.probe_and_rearm(now, Target::Nic, Timer::ProbeNic),
                (Timer::Heartbeat, _) => self.send_heartbeat(now),
                (Timer::Startup, State::Starting) => self.end_startup(now),
                (Timer::SelfRelease, State::Active) => {
                    // While a restart is scheduled, its outcome decides.
                    if self.timers.get(Timer::RestartApp).is_none() {
                        let why = self.local.last_error().unwrap_or("unhealthy").to_owned();
                        self.on_own_app_failed(now, format!("failed for the grace period: {why}"));
                    }
                }
                (Timer::RestartApp, State::Active) => {
                    if let AppRecovery::Restarting { attempt, .. } = self.mode.recovery() {
                        self.change_state(now, State::RestartingApp, Cause::RestartApp { attempt });
                    }
                }
                (Timer::Refresh, State::Active) => {
                    self.actions.push_back(Action::Announce);
                    if let Some(every) = self.settings.refresh {
                        self.timers.set(Timer::Refresh, later(now, every));
                    }
                }
                // Decide runs below after every timeout anyway.
                (Timer::Decide, _) => {}
                (timer, state) => debug!(?timer, ?state, "timer does not apply in this state"),
            }
        }
        self.decide(now);
        self.tell_peer(now);
    }

    fn probe_and_rearm(&mut self, now: Instant, target: Target, timer: Timer) {
        self.actions.push_back(Action::Probe(target));
        self.timers.set(timer, later(now, self.settings.interval));
    }

    /// What the peer is told: our state, flags and term, computed in one
    /// place from the state and its data.
    fn wire_view(&self) -> (heartbeat::WireState, Flags, u64) {
        // A node that found the VIP on its NIC at start says it is claiming
        // until it has decided, so that the peer does not claim over an
        // address that is still in use.
        let state = match self.state {
            State::Starting | State::Checking | State::Passive if self.vip_held => {
                heartbeat::WireState::Claiming
            }
            state => state.wire(),
        };
        let watch = self.mode.watch();
        let flags = Flags {
            // A holder restarting a failed application does not serve.
            app_ok: state == heartbeat::WireState::Active
                && self.local.failing_since().is_none()
                && !self.mode.recovery().failed(),
            data_ok: self.data_ok(),
            nic_ok: self.nic_ok(),
            maintenance: self.in_maintenance(),
            release_request: watch.is_some_and(|w| w.requesting_release),
            deferring: watch.is_some_and(|w| w.deferring),
            disabled: self.disabled,
        };
        (state, flags, self.term)
    }

    /// Tells the peer at once when what we would tell it changed: it must
    /// not learn of a claim, a release or a request one interval late.
    fn tell_peer(&mut self, now: Instant) {
        if self.state != State::Init && self.told != Some(self.wire_view()) {
            self.send_heartbeat(now);
        }
    }

    /// Builds and queues a heartbeat now, and schedules the next one.
    fn send_heartbeat(&mut self, now: Instant) {
        self.seq += 1;
        let (state, flags, term) = self.wire_view();
        self.told = Some((state, flags, term));
        let hb = Heartbeat {
            cluster_id: self.settings.cluster_id,
            node_id: self.settings.node_id,
            epoch: self.settings.epoch,
            seq: self.seq,
            term,
            state,
            flags,
            config_checksum: self.settings.config_checksum,
        };
        self.actions.push_back(Action::SendHeartbeat(hb));
        if self.state != State::Stopped {
            self.timers.set(
                Timer::Heartbeat,
                later(now, self.settings.heartbeat_interval),
            );
        }
    }

    /// The watch's data (an empty one outside the Watch phase).
    fn w(&self) -> &Watch {
        self.mode.watch().unwrap_or(&mode::NO_WATCH)
    }

    /// Changes the watch's data; nothing outside the Watch phase.
    fn with_watch(&mut self, change: impl FnOnce(&mut Watch)) {
        if let Some(w) = self.mode.watch_mut() {
            change(w);
        }
    }

    /// The application's maintenance signal, as the holder last saw it.
    fn maintenance_signal(&self) -> bool {
        self.mode.serve().is_some_and(|s| s.maintenance_signal)
    }

    /// In maintenance by the administrator's word or the application's.
    fn in_maintenance(&self) -> bool {
        self.maintenance || self.maintenance_signal()
    }

    fn data_ok(&self) -> bool {
        !self.settings.watch_data || self.data.verdict() == Verdict::Healthy
    }

    fn nic_ok(&self) -> bool {
        !self.settings.watch_nic || self.nic.verdict() == Verdict::Healthy
    }

    /// Queues an event for the notifier.
    fn notify(&mut self, kind: EventKind, cause: impl Into<String>, duration: Option<Duration>) {
        self.actions.push_back(Action::Notify(Event {
            kind,
            cause: cause.into(),
            term: self.term,
            duration,
        }));
    }

    fn on_started(&mut self, now: Instant, vip_present: bool) {
        self.vip_held = vip_present;
        if self.settings.watch_data {
            self.timers.set(Timer::ProbeData, now);
        }
        if self.settings.watch_nic {
            self.timers.set(Timer::ProbeNic, now);
        }
        self.change_state(now, State::Starting, Cause::Startup);
        if self.settings.startup.is_zero() {
            self.end_startup(now);
        } else {
            self.timers
                .set(Timer::Startup, later(now, self.settings.startup));
        }
    }

    /// The start-up window passed without a heartbeat. A VIP we found on our
    /// NIC is kept only if no other host answers for it; otherwise the
    /// primary looks at the VIP and claims, and the secondary watches.
    fn end_startup(&mut self, now: Instant) {
        if self.state != State::Starting {
            return;
        }
        let stand_by = self.disabled || self.in_maintenance();
        if self.vip_held && stand_by {
            self.release(now, Cause::StaleVip, Ending::Passive, true);
        } else if stand_by {
            self.change_state(now, State::Passive, Cause::PeerSilent);
        } else if self.vip_held || self.settings.role == Role::Primary {
            self.change_state(now, State::Checking, Cause::PeerSilent);
        } else {
            self.change_state(now, State::Passive, Cause::PeerSilent);
        }
    }

    fn on_vip_checked(&mut self, now: Instant, holder: Option<String>, via_vip: Outcome) {
        if self.shutdown {
            if self.vip_held {
                self.release(now, Cause::Shutdown, Ending::Exit, true);
            } else {
                self.change_state(now, State::Stopped, Cause::Shutdown);
            }
            return;
        }
        // The look was made because the peer was silent. If it spoke during
        // the look, its word decides, not the look: an Active peer whose
        // heartbeat arrived while we listened holds the VIP, and claiming
        // over it would make two holders.
        if self.peer_available(now) {
            info!(peer_state = ?self.peer.state(), "the peer reported in while we looked at the common IP; not claiming on the look");
            self.change_state(now, State::Passive, Cause::PeerHeard);
            return;
        }
        // With the VIP on our own NIC, a GET through it reaches ourselves,
        // so only the ARP answer of another host tells anything.
        match (holder, via_vip, self.vip_held) {
            (Some(mac), _, true) => {
                self.release(now, Cause::OtherHolder(mac), Ending::Passive, true)
            }
            (None, _, true) => self.change_state(now, State::Claiming, Cause::Resume),
            (_, Ok(()), false) => {
                warn!("the application answers through the common IP; not claiming, watching on");
                let next_look = later(now, self.settings.interval);
                if let Some(w) = self.mode.watch_mut() {
                    w.vip_check_not_before = Some(next_look);
                }
                self.change_state(now, State::Passive, Cause::ServiceUpViaVip);
            }
            (Some(mac), Err(why), false) => {
                warn!(%mac, %why, "another host answers for the common IP but the application does not; claiming it");
                self.notify(
                    EventKind::Conflict,
                    Cause::Conflict(mac.clone()).to_string(),
                    None,
                );
                self.change_state(now, State::Claiming, Cause::Conflict(mac));
            }
            (None, Err(_), false) => self.change_state(now, State::Claiming, Cause::VipFree),
        }
    }

    /// The VIP is on the NIC (a claim's first step, or a restoration).
    fn on_vip_added(&mut self, now: Instant, outcome: Outcome) {
        if self.state == State::Restoring {
            match &outcome {
                Err(why) => error!(%why, "could not restore the common IP"),
                Ok(()) => self.notify(
                    EventKind::VipRestored,
                    "the common IP was removed by something else",
                    None,
                ),
            }
            self.change_state(now, State::Active, Cause::StepDone);
            self.actions.push_back(Action::Announce);
            return;
        }
        self.vip_held = true;
        match outcome {
            Ok(()) if self.shutdown => self.release(now, Cause::Shutdown, Ending::Exit, false),
            Ok(()) => self.change_state(now, State::Announcing, Cause::StepDone),
            Err(why) => self.release(now, Cause::ClaimFailed(why), Ending::Passive, false),
        }
    }

    /// The release's last step: where it ends was decided when it began.
    fn on_vip_removed(&mut self, now: Instant, outcome: Outcome) {
        if let Err(why) = &outcome {
            error!(%why, "could not remove the common IP");
        }
        self.vip_held = outcome.is_err();
        let next = match self.mode.release().map_or(After::Passive, |r| r.after) {
            After::Passive => State::Passive,
            After::Exit => State::Stopped,
        };
        self.change_state(now, next, Cause::StepDone);
    }

    /// Only the node that holds the VIP probes its own application, so the
    /// signal is known (and acted on) there alone.
    fn on_maintenance_signal(&mut self, now: Instant, on: bool) {
        if let Some(serve) = self.mode.serve_mut() {
            if on != serve.maintenance_signal {
                info!(on, "the application's maintenance signal changed");
            }
            serve.maintenance_signal = on;
        }
        if on && self.state == State::Active {
            self.hand_over(now, Cause::MaintenanceSignal);
        }
    }

    /// The failback's drain ended: hand back, unless the primary is no
    /// longer ready.
    fn on_drained(&mut self, now: Instant, remaining: usize) {
        info!(remaining, "connections drained; handing the common IP back");
        if self.shutdown {
            self.release(now, Cause::Shutdown, Ending::Exit, true);
        } else if self.peer_ready_to_take_over(now) {
            self.hand_over(now, Cause::Failback);
        } else {
            info!("the primary is no longer ready; staying Active");
            self.change_state(now, State::Active, Cause::StepDone);
        }
    }

    /// The application's start (in a claim) or restart (in place) ended.
    fn on_app_started(&mut self, now: Instant, outcome: Outcome) {
        match outcome {
            _ if self.shutdown => self.release(now, Cause::Shutdown, Ending::Exit, true),
            _ if self.yield_to().is_some() => {
                let cause = self.yield_to().unwrap_or(Cause::PeerAsked);
                self.hand_over(now, cause);
            }
            Ok(()) => {
                if self.state == State::RestartingApp {
                    info!(after = ?self.mode.recovery(), "application restarted");
                }
                self.change_state(now, State::Active, Cause::StepDone);
            }
            Err(why) if self.state == State::StartingApp && self.peer_can_take_over(now) => {
                error!(%why, "application failed to start; releasing the common IP to the peer");
                self.notify(
                    EventKind::ApplicationFailed,
                    format!("failed to start: {why}"),
                    None,
                );
                // The peer can serve: tell it to claim at once.
                self.hand_over(now, Cause::AppStartFailed(why))
            }
            Err(why) => {
                // No peer can serve: releasing would leave nobody serving
                // and re-claiming would churn. Keep the VIP, restart here.
                let first = self.state == State::StartingApp;
                let cause = if first {
                    Cause::AppStartFailed(why.clone())
                } else {
                    Cause::StepDone
                };
                self.change_state(now, State::Active, cause);
                let what = if first {
                    "failed to start"
                } else {
                    "restart failed"
                };
                self.on_own_app_failed(now, format!("{what}: {why}"));
            }
        }
    }

    /// A claim ended: count and tell the takeover.
    fn took_over(&mut self, now: Instant, claim: Claim, app_failed: bool) {
        self.last_move = Some(now);
        let took = now.saturating_duration_since(claim.started);
        if app_failed {
            warn!(
                ms = millis(took),
                term = self.term,
                "claimed the common IP; the application failed to start"
            );
        } else {
            info!(
                ms = millis(took),
                term = self.term,
                "claimed the common IP; application healthy"
            );
        }
        self.counters.takeovers += 1;
        self.notify(EventKind::Takeover, claim.cause.clone(), Some(took));
        self.last_takeover = Some(Takeover {
            at: now,
            cause: claim.cause,
            duration: took,
        });
        if !claim.promoted {
            self.record_move(now);
        }
    }

    /// Counts an automatic move of the VIP towards the flap limit.
    fn record_move(&mut self, now: Instant) {
        let (limit, window) = (self.settings.flap_limit, self.settings.flap_window);
        if self.flaps.record(now, limit, window) == flap::FlapChange::Started {
            let text = format!(
                "the common IP moved {} times within {}; automatic moves stop until the moves age out or `understudy reset-flapping`",
                self.flaps.count(),
                countdown::humanize(window)
            );
            error!(moves = self.flaps.count(), ?window, "flapping: {text}");
            self.notify(EventKind::Flapping, text, None);
        }
    }

    /// The cause to hand over with once the (re)start in flight ends, if a
    /// peer that can serve is waiting for it.
    fn yield_to(&self) -> Option<Cause> {
        match &self.mode {
            Mode::Claim(c) => c.yield_to.clone(),
            Mode::Serve(s) => s.yield_to.clone(),
            _ => None,
        }
    }

    /// Could the peer take the VIP from us now, and may it (the flap limit
    /// stops automatic moves)?
    fn peer_can_take_over(&self, now: Instant) -> bool {
        self.peer_ready_to_take_over(now) && self.flaps.since().is_none()
    }

    /// Our own application has failed while we hold the VIP. A peer that
    /// can serve takes over at once; with none, the VIP stays and the
    /// application is restarted here, a bounded number of times.
    fn on_own_app_failed(&mut self, now: Instant, why: String) {
        if self.peer_can_take_over(now) {
            self.notify(EventKind::ApplicationFailed, why.clone(), None);
            // The peer can serve: tell it to claim at once.
            self.hand_over(now, Cause::LocalAppFailed(why));
            return;
        }
        let Some(serve) = self.mode.serve_mut() else {
            return;
        };
        serve.recovery = serve.recovery.next(self.settings.restart_attempts);
        let recovery = serve.recovery;
        let AppRecovery::Restarting { attempt, fast } = recovery else {
            return;
        };
        let wait = recovery.wait(self.settings.restart_backoff);
        warn!(%why, attempt, fast, wait = ?wait, "the application failed and no peer can take over; keeping the common IP and restarting it");
        if attempt == 1 || attempt == fast + 1 {
            let text = if attempt == 1 {
                format!("{why}; no peer can take over: restarting it here")
            } else {
                format!("{why}; {fast} restarts failed: retrying every {}, the common IP stays until it serves or a peer can", countdown::humanize(wait))
            };
            self.notify(EventKind::ApplicationFailed, text, None);
        }
        self.timers.set(Timer::RestartApp, later(now, wait));
    }

    fn on_shutdown(&mut self, now: Instant) {
        self.shutdown = true;
        match self.state {
            State::Init | State::Starting | State::Passive if self.vip_held => {
                self.release(now, Cause::Shutdown, Ending::Exit, true)
            }
            State::Init | State::Starting | State::Passive => {
                self.change_state(now, State::Stopped, Cause::Shutdown)
            }
            State::Active => self.release(now, Cause::Shutdown, Ending::Exit, true),
            // A wait is in flight (the look, the application's start, a
            // drain): cut it short; its completion routes to the release.
            State::Checking | State::StartingApp | State::RestartingApp | State::Draining => {
                self.actions.push_back(Action::Interrupt)
            }
            // A step is in flight; its completion routes to the release.
            State::Claiming
            | State::Announcing
            | State::Restoring
            | State::StoppingApp
            | State::Releasing
            | State::Stopped => {}
        }
    }

    /// This node could not run a probe: nothing is learnt of the target,
    /// and the node cannot judge until that probe runs again.
    fn on_probe_not_run(&mut self, target: Target, why: String) {
        match self.not_probed.iter_mut().find(|(t, _)| *t == target) {
            Some((_, old)) => *old = why,
            None => {
                error!(probe = %target, %why, "this node cannot run its probe; it will not take over until it can");
                self.not_probed.push((target, why));
            }
        }
    }

    fn on_probe(&mut self, now: Instant, target: Target, started: Instant, outcome: Outcome) {
        if let Some(i) = self.not_probed.iter().position(|(t, _)| *t == target) {
            info!(probe = %target, "this node can run its probe again");
            self.not_probed.remove(i);
        }
        let since = |s: Option<Instant>| s.is_some_and(|s| started >= s);
        let peer_watch = since(self.mode.watch().and_then(|w| w.since));
        let local_watch =
            self.state == State::Active && since(self.mode.serve().and_then(|s| s.local_since));
        let (health, watching) = match target {
            Target::Peer => (&mut self.peer_app, peer_watch),
            Target::Local => (&mut self.local, local_watch),
            Target::Data => (&mut self.data, self.state != State::Stopped),
            Target::Nic => (&mut self.nic, self.state != State::Stopped),
        };
        if !watching {
            debug!(?target, "probe result from an earlier watch; dropped");
            return;
        }
        let change = health.record(started, &outcome);
        let grace = self.settings.grace;
        let why = outcome.err().unwrap_or_default();
        match (target, change) {
            (_, Change::None) => {}
            (Target::Peer, Change::StartedFailing(_)) => {
                warn!(probe = "peer", %why, "peer application not answering")
            }
            (Target::Peer, Change::Recovered) => info!(probe = "peer", "peer application healthy"),
            (Target::Local, Change::StartedFailing(since)) => {
                let left = later(since, grace).saturating_duration_since(now);
                warn!(probe = "local", %why, "this node is failing; release in {}", countdown::humanize(left));
                self.timers.set(Timer::SelfRelease, later(since, grace));
            }
            (Target::Local, Change::Recovered) => {
                info!(probe = "local", "this node is healthy");
                self.timers.stop(Timer::SelfRelease);
                let restarting = self.timers.get(Timer::RestartApp).is_some();
                if let Some(serve) = self.mode.serve_mut().filter(|s| s.recovery.failed()) {
                    if !restarting {
                        info!(after = ?serve.recovery, "the application serves again");
                        serve.recovery = AppRecovery::Serving;
                    }
                }
            }
            (Target::Data, Change::StartedFailing(_)) => {
                warn!(probe = "data", %why, "data service unreachable from here")
            }
            (Target::Data, Change::Recovered) => info!(probe = "data", "data service reachable"),
            (Target::Nic, Change::StartedFailing(_)) => {
                warn!(probe = "nic", %why, "this node's NIC is unusable");
                // A VIP on a dead link serves nobody: hand it over at once.
                if self.state == State::Active {
                    self.release(now, Cause::NicDown(why), Ending::HeldDown, true);
                }
            }
            (Target::Nic, Change::Recovered) => info!(probe = "nic", "this node's NIC is usable"),
        }
    }

    fn on_heartbeat(&mut self, now: Instant, hb: Heartbeat) {
        let before = self.peer.state();
        if before != Some(hb.state) {
            info!(peer = %self.settings.peer_name, from = ?before, to = ?hb.state, term = hb.term, "peer state");
        }
        if hb.config_checksum != self.settings.config_checksum && !self.config_mismatch {
            warn!(
                peer = %self.settings.peer_name,
                ours = format!("{:016x}", self.settings.config_checksum),
                theirs = format!("{:016x}", hb.config_checksum),
                "the peer runs a different configuration"
            );
            let text = format!(
                "{} announces configuration {:016x}, this node runs {:016x}",
                self.settings.peer_name, hb.config_checksum, self.settings.config_checksum
            );
            self.notify(EventKind::ConfigDrift, text, None);
        }
        self.config_mismatch = hb.config_checksum != self.settings.config_checksum;
        let down = match (hb.state, hb.flags) {
            (_, f) if f.maintenance => Some(FailureCause::Maintenance),
            (heartbeat::WireState::Active, f) if !f.app_ok => Some(FailureCause::WebService),
            (heartbeat::WireState::Active, f) if !f.data_ok => Some(FailureCause::DataService),
            _ => None,
        };
        self.peer_reported_down = match (self.peer_reported_down, down) {
            (Some((since, old)), Some(cause)) if old == cause => Some((since, cause)),
            (_, Some(cause)) => Some((now, cause)),
            (_, None) => None,
        };
        if hb.state == heartbeat::WireState::Active
            && before != Some(hb.state)
            && self.w().since.is_some()
        {
            // The peer just finished claiming: judge its application from
            // now on, not by failures seen while it was starting.
            self.peer_app = Health::new(self.settings.rise, self.settings.fall);
            self.with_watch(|w| w.since = Some(now));
        }
        let we_hold = matches!(
            self.state.wire(),
            heartbeat::WireState::Claiming | heartbeat::WireState::Active
        );
        if we_hold && self.peer.holding() && !hb.state.holding() {
            self.reannounce_pending = true;
        }
        self.peer.last_seen = Some(now);
        self.peer.last = Some(hb);
        if self.state == State::Starting {
            self.change_state(now, State::Passive, Cause::PeerHeard);
        }
    }

    /// Starts a release: stop the application (when one may run), then
    /// remove the VIP, then go where `ending` says.
    fn release(&mut self, now: Instant, cause: Cause, ending: Ending, stop_app: bool) {
        let ending = if self.shutdown { Ending::Exit } else { ending };
        let holddown = matches!(ending, Ending::HeldDown | Ending::HandOver);
        let release = Release {
            started: now,
            cause: cause.clone(),
            after: if ending == Ending::Exit {
                After::Exit
            } else {
                After::Passive
            },
            handover: ending == Ending::HandOver,
            holddown_until: holddown.then(|| later(now, self.settings.grace.saturating_mul(2))),
        };
        let first = if stop_app {
            State::StoppingApp
        } else {
            State::Releasing
        };
        self.enter(now, first, cause, Some(Mode::Release(release)));
    }

    /// The one place where states are entered and left.
    fn change_state(&mut self, now: Instant, to: State, cause: Cause) {
        self.enter(now, to, cause, None);
    }

    /// Leaves the current state for `to`: the state's exit actions, then,
    /// when the phase changes, the old phase's data is consumed and the new
    /// phase's made (`next` when the caller made it), then `to`'s entry
    /// actions.
    fn enter(&mut self, now: Instant, to: State, cause: Cause, next: Option<Mode>) {
        let from = self.state;
        if cause == Cause::StepDone {
            debug!(%from, %to, "state change");
        } else {
            info!(%from, %to, %cause, term = self.term, "state change");
        }
        if from == State::Active {
            self.timers.stop(Timer::ProbeLocal);
            self.timers.stop(Timer::SelfRelease);
            self.timers.stop(Timer::Refresh);
            if let Some(serve) = self.mode.serve_mut() {
                // Only the Active node probes its own application, so what
                // it saw of it is not known any longer.
                serve.local_since = None;
                serve.maintenance_signal = false;
            }
        }
        if Phase::of(to) != self.mode.phase() || next.is_some() {
            let old = std::mem::replace(&mut self.mode, Mode::Idle);
            let mode = next.unwrap_or_else(|| self.next_phase(now, &old, to, &cause));
            self.leave_phase(now, old, Phase::of(to), &cause);
            self.mode = mode;
        }
        self.state = to;
        self.entry(now, to, &cause);
    }

    /// Consumes the data of a phase that ends, on the way to phase `to`.
    fn leave_phase(&mut self, now: Instant, old: Mode, to: Phase, cause: &Cause) {
        match old {
            Mode::Watch(_) => self.timers.stop(Timer::ProbePeer),
            // A claim that reaches Active is a takeover (its application
            // may have failed to start and be restarted in place).
            Mode::Claim(claim) if to == Phase::Serve => {
                self.took_over(now, claim, matches!(cause, Cause::AppStartFailed(_)))
            }
            Mode::Serve(_) => self.timers.stop(Timer::RestartApp),
            Mode::Release(release) => self.released(now, release),
            Mode::Idle | Mode::Claim(_) => {}
        }
    }

    /// The data of the phase `to` begins, made from what the old phase
    /// hands over.
    fn next_phase(&mut self, now: Instant, old: &Mode, to: State, cause: &Cause) -> Mode {
        let mode = match (old, Phase::of(to)) {
            (_, Phase::Idle) => Mode::Idle,
            (Mode::Release(r), Phase::Watch) => Mode::Watch(Watch {
                since: Some(now),
                holddown_until: r.holddown_until,
                handover_pending: r.handover,
                ..Watch::default()
            }),
            (_, Phase::Watch) => Mode::Watch(Watch {
                since: Some(now),
                ..Watch::default()
            }),
            (Mode::Watch(w), Phase::Claim) => Mode::Claim(Claim {
                started: w.look.as_ref().map_or(now, |(t, _)| *t),
                cause: match &w.look {
                    Some((_, why)) => format!("{why}; {cause}"),
                    None => cause.to_string(),
                },
                promoted: w.promote.is_some(),
                yield_to: None,
            }),
            (_, Phase::Claim) => Mode::Claim(Claim {
                started: now,
                cause: cause.to_string(),
                promoted: false,
                yield_to: None,
            }),
            (_, Phase::Serve) => Mode::Serve(Serve::default()),
            (_, Phase::Release) => Mode::Release(Release {
                started: now,
                cause: cause.clone(),
                after: After::Passive,
                handover: false,
                holddown_until: None,
            }),
        };
        if let Mode::Watch(_) = mode {
            // A fresh watch of the peer's application: a failure seen
            // while we held the VIP must not count towards a takeover.
            self.peer_app = Health::new(self.settings.rise, self.settings.fall);
            self.timers.set(Timer::ProbePeer, now);
        }
        mode
    }

    /// A release finished: count it, and tell it.
    fn released(&mut self, now: Instant, release: Release) {
        self.counters.releases += 1;
        self.last_move = Some(now);
        let took = now.saturating_duration_since(release.started);
        info!(ms = millis(took), "released the common IP");
        if release.cause.is_automatic_move() {
            self.record_move(now);
        }
        let kind = match release.cause {
            Cause::Failback => EventKind::Failback,
            Cause::Demoted
            | Cause::Maintenance
            | Cause::MaintenanceSignal
            | Cause::PeerAsked
            | Cause::Disabled => EventKind::Handover,
            _ => EventKind::Release,
        };
        self.notify(kind, release.cause.to_string(), Some(took));
    }

    /// The entry actions of each state.
    fn entry(&mut self, now: Instant, to: State, cause: &Cause) {
        match to {
            State::Init | State::Starting | State::Passive => {}
            State::Checking => {
                // The decision to take over is made here; the claim follows
                // the look at the VIP.
                if let Some(w) = self.mode.watch_mut() {
                    w.look = Some((now, cause.to_string()));
                }
                self.actions.push_back(Action::CheckVip);
            }
            State::Claiming => {
                self.term = self.term.max(self.peer.term()) + 1;
                self.actions.push_back(Action::AddVip);
            }
            State::Announcing => self.actions.push_back(Action::Announce),
            State::StartingApp => self.actions.push_back(Action::StartApp),
            State::Active => {
                self.failure_text = None;
                self.local = Health::new(self.settings.rise, self.settings.fall);
                if let Some(serve) = self.mode.serve_mut() {
                    serve.local_since = Some(now);
                    serve.yield_to = None;
                }
                self.timers
                    .set(Timer::ProbeLocal, later(now, self.settings.interval));
                if let Some(every) = self.settings.refresh {
                    self.timers.set(Timer::Refresh, later(now, every));
                }
            }
            State::Restoring => self.actions.push_back(Action::AddVip),
            State::Draining => self.actions.push_back(Action::Drain),
            State::RestartingApp => self.actions.push_back(Action::RestartApp),
            State::StoppingApp => self.actions.push_back(Action::StopApp),
            State::Releasing => self.actions.push_back(Action::RemoveVip),
            State::Stopped => {
                self.send_heartbeat(now);
                self.timers.stop_all();
                self.actions.push_back(Action::Exit);
            }
        }
    }
}

/// A duration in milliseconds rounded to 0.1 ms, for logs.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}
