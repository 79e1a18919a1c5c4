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
mod decide;
mod event;
mod fence;
mod fencing;
mod flap;
mod handlers;
mod health;
mod input;
mod lease;
mod look;
mod machine;
mod mirror_pass;
mod mode;
mod note;
mod own_app;
mod peer;
mod probes;
mod reconfigure;
mod record;
mod recovery;
mod settings;
mod state;
mod status;
mod tell;
mod timer;
mod vip;

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod lease_tests;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use action::Action;
use admin::Asked;
pub use admin::{AdminCommand, AdminReply, Done, Refusal};
pub use event::{Event, EventKind};
pub use fencing::{longest_timeout, safety_margin};
pub use health::{Change, Health, Verdict};
pub use input::{Input, Outcome, Target};
pub use lease::{LeaseAsk, LeaseRefusal, LeaseReply, LeaseSettings, LeaseStatus, OnLoss};
use machine::Machine;
use mode::{Ending, Promotion, Serve, Watch, Yielding};
pub use note::{
    AppNote, Cancelled, FenceNote, InputNote, LeaseNote, MoveNote, PeerNote, ProbeNote,
};
pub use peer::{FailureCause, GoneSignal, Peer, PeerInfo, PeerView, Peers};
use probes::Probes;
use record::Record;
pub use recovery::AppRecovery;
pub use settings::{Failback, Role, Settings};
pub use state::{AppFailure, Because, Blocker, Cause, Failure, LetGo, State, StatusWord};
pub use status::{Counters, Holder, PeerStatus, Status, Takeover};
use tell::Teller;
use timer::{later, Timer, Timers};
use vip::VipView;

/// The core: a few parts, each owning its data (see each part's module).
pub struct Core {
    settings: Settings,
    /// The state and its phase's data (see [`machine`] and [`mode`]).
    machine: Machine,
    timers: Timers,
    actions: VecDeque<Action>,
    /// What the probes say: the peer's application, our own, the data
    /// service, our NIC, and what could not be probed.
    probes: Probes,
    /// Every other node, the one watched, and what was heard of them.
    peers: Peers,
    /// What this node tells the others: term, sequence, last heartbeat.
    teller: Teller,
    /// What the administrator and the process asked: disabled,
    /// maintenance, shutdown, restart.
    admin: Asked,
    /// The common IP as this node knows it: on our NIC, who holds it.
    vip: VipView,
    /// The witness's lease as this node knows it (see [`lease`]).
    lease: lease::Lease,
    /// What happened: the last takeover and failure, moves, counters.
    record: Record,
}

impl Core {
    pub fn new(settings: Settings) -> Self {
        let probes = Probes::new(&settings);
        let admin = Asked::new(settings.disabled, settings.maintenance);
        let peers = Peers::new(&settings.peers);
        Core {
            settings,
            machine: Machine::new(),
            timers: Timers::default(),
            actions: VecDeque::new(),
            probes,
            peers,
            teller: Teller::default(),
            admin,
            vip: VipView::default(),
            lease: lease::Lease::default(),
            record: Record::default(),
        }
    }

    pub fn state(&self) -> State {
        self.machine.state()
    }

    /// The watched peer's view (see [`Peers::choose`]).
    pub(super) fn peer(&self) -> &PeerView {
        &self.peers.watched().view
    }

    /// The watched peer's name.
    pub(super) fn peer_name(&self) -> &str {
        &self.peers.watched().info.name
    }

    /// Our term (with a witness, the lease's while we hold it).
    pub fn term(&self) -> u64 {
        self.teller.term
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
        match (self.state(), input) {
            (State::Init, Input::Started { vip_present }) => self.on_started(now, vip_present),
            (State::Checking, Input::VipChecked { holder, via_vip }) => {
                self.on_vip_checked(now, holder, via_vip)
            }
            (State::Claiming | State::Restoring, Input::VipAdded(outcome)) => {
                self.on_vip_added(now, outcome)
            }
            (State::Announcing, Input::Announced(outcome)) => {
                if let Err(why) = outcome {
                    MoveNote::GarpFailed { why: &why }.log();
                }
                if self.admin.shutdown {
                    self.stop_mid_claim(now);
                } else {
                    self.change_state(now, State::StartingApp, Cause::StepDone);
                }
            }
            (State::StartingApp | State::RestartingApp, Input::AppStarted(outcome)) => {
                self.on_app_started(now, outcome)
            }
            (State::StoppingApp, Input::AppStopped(outcome)) => self.on_app_stopped(now, outcome),
            (State::Syncing | State::FinalSync, Input::MirrorPassed(outcome)) => {
                self.on_mirror_passed(now, outcome)
            }
            (State::Releasing, Input::VipRemoved(outcome)) => self.on_vip_removed(now, outcome),
            (_, Input::MaintenanceSignal(on)) => self.on_maintenance_signal(now, on),
            (State::Draining, Input::Drained { remaining }) => self.on_drained(now, remaining),
            (State::Active, Input::VipMissing) => {
                MoveNote::VipRemovedRestoring.log();
                self.change_state(now, State::Restoring, Cause::VipRemoved);
            }
            (
                _,
                Input::Probed {
                    target,
                    started,
                    outcome,
                    refused,
                },
            ) => self.on_probe(now, target, started, outcome, refused),
            (_, Input::HeartbeatRefused { node }) => self.on_heartbeat_refused(now, node),
            (_, Input::ProbeNotRun { target, why, .. }) => self.on_probe_not_run(target, why),
            (_, Input::Heartbeat(hb)) => self.on_heartbeat(now, hb),
            (_, Input::Shutdown) => self.on_shutdown(now),
            (_, Input::Lease(reply)) => self.on_lease(now, reply),
            (_, Input::Fenced(outcome)) => self.on_fenced(now, outcome),
            (state, input) => InputNote::InputIgnored {
                state,
                input: &input,
            }
            .log(),
        }
        self.decide(now);
        self.tell_peer(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in self.timers.take_expired(now) {
            let watching = matches!(
                self.state(),
                State::Starting | State::Checking | State::Acquiring | State::Passive
            );
            match (timer, self.state()) {
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
                        let why = self
                            .probes
                            .local
                            .last_error()
                            .unwrap_or("unhealthy")
                            .to_owned();
                        self.on_own_app_failed(now, AppFailure::ForGrace(why));
                    }
                }
                (Timer::RestartApp, State::Active) => {
                    if let AppRecovery::Restarting { attempt, .. } = self.machine.mode().recovery()
                    {
                        self.change_state(now, State::RestartingApp, Cause::RestartApp { attempt });
                    }
                }
                (Timer::Refresh, State::Active) => {
                    self.actions.push_back(Action::Announce);
                    if let Some(every) = self.settings.refresh {
                        self.timers.set(Timer::Refresh, later(now, every));
                    }
                }
                (Timer::LeaseRenew | Timer::LeaseEnds, _) => self.on_lease_timer(now, timer),
                // Decide runs below after every timeout anyway.
                (Timer::Decide, _) => {}
                (timer, state) => InputNote::TimerIgnored { timer, state }.log(),
            }
        }
        self.decide(now);
        self.tell_peer(now);
    }

    pub(super) fn probe_and_rearm(&mut self, now: Instant, target: Target, timer: Timer) {
        self.actions.push_back(Action::Probe(target));
        self.timers.set(timer, later(now, self.settings.interval));
    }

    /// The watch's data; `None` outside the Watch phase.
    pub(super) fn watch(&self) -> Option<&Watch> {
        self.machine.watch()
    }

    /// The administrator's promotion under way, if any.
    pub(super) fn promotion(&self) -> Option<Promotion> {
        self.watch().and_then(|w| w.promote)
    }

    /// Do we ask for the VIP (see [`Watch::asking`])?
    pub(super) fn asking(&self) -> bool {
        self.watch().is_some_and(|w| w.asking)
    }

    /// Do we let the others claim (see [`Yielding`])?
    pub(super) fn yielding(&self) -> Yielding {
        self.watch().map_or(Yielding::No, |w| w.yielding)
    }

    /// Changes the watch's data; nothing outside the Watch phase.
    pub(super) fn with_watch(&mut self, change: impl FnOnce(&mut Watch)) {
        if let Some(w) = self.machine.watch_mut() {
            change(w);
        }
    }

    /// Changes the serving data; nothing outside the Serve phase.
    pub(super) fn with_serve(&mut self, change: impl FnOnce(&mut Serve)) {
        if let Some(s) = self.machine.serve_mut() {
            change(s);
        }
    }

    /// The application's maintenance signal, as the holder last saw it.
    pub(super) fn maintenance_signal(&self) -> bool {
        self.machine
            .mode()
            .serve()
            .is_some_and(|s| s.maintenance_signal)
    }

    /// In maintenance by the administrator's word or the application's.
    pub(super) fn in_maintenance(&self) -> bool {
        self.admin.maintenance || self.maintenance_signal()
    }

    pub(super) fn data_ok(&self) -> bool {
        !self.settings.watch_data || self.probes.data.verdict() == Verdict::Healthy
    }

    pub(super) fn nic_ok(&self) -> bool {
        !self.settings.watch_nic || self.probes.nic.verdict() == Verdict::Healthy
    }

    /// Have our NIC and data service been judged (or are they not
    /// watched)? Until then our heartbeats could only say "not usable".
    pub(super) fn own_checks_known(&self) -> bool {
        let known = |watched: bool, h: &Health| !watched || h.verdict() != Verdict::Unknown;
        known(self.settings.watch_nic, &self.probes.nic)
            && known(self.settings.watch_data, &self.probes.data)
    }

    /// Queues an event for the notifier.
    pub(super) fn notify(
        &mut self,
        kind: EventKind,
        cause: impl Into<Because>,
        duration: Option<Duration>,
    ) {
        self.actions.push_back(Action::Notify(Event {
            kind,
            cause: cause.into(),
            term: self.teller.term,
            duration,
        }));
    }
}

/// A duration in milliseconds rounded to 0.1 ms, for logs.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}
