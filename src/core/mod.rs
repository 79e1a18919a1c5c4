//! The sans-IO decision core (in the style of quinn-proto).
//!
//! No sockets, no tokio, no clock: the caller passes `now` in. Call order:
//!
//! 1. [`Core::handle_input`] for every report from the world, and
//!    [`Core::handle_timeout`] when [`Core::poll_timeout`] is reached;
//! 2. then drain [`Core::poll_action`] and carry each action out; actions
//!    that change the machine report back with exactly one completion input.
//!
//! Every state's entry and exit actions live in [`Core::change_state`]. The
//! transition function is total: an input that does not apply to the
//! current state is logged and ignored.

mod action;
pub mod countdown;
mod health;
mod input;
mod state;
mod timer;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use action::Action;
pub use health::{Change, Health, Verdict};
pub use input::{Input, Outcome, Target};
pub use state::{Cause, State};
use timer::{Timer, Timers};
use tracing::{debug, error, info, warn};

use crate::config::{Config, Role};

/// The part of the configuration the core decides with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub role: Role,
    pub interval: Duration,
    pub grace: Duration,
    pub rise: u32,
    /// A data service is configured: probe it, and take over only when it
    /// answers from here (failing over would not help otherwise).
    pub watch_data: bool,
    /// Probe our own NIC, and take over only while it is up with carrier
    /// (claiming on a dead link would only make the node flap).
    pub watch_nic: bool,
    /// The primary listens for another VIP holder before claiming at start.
    pub probe_at_start: bool,
}

impl Settings {
    pub fn from_config(config: &Config, me: usize) -> Self {
        Settings {
            role: config.nodes[me].role,
            interval: config.monitor.interval,
            grace: config.monitor.grace,
            rise: config.monitor.rise,
            watch_data: config.monitor.data.is_some(),
            watch_nic: true,
            probe_at_start: !config.announce.probe.is_zero(),
        }
    }
}

/// Where a release ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Passive,
    Exit,
}

/// A snapshot for logs and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    /// Why the watched peer is failing, while it is.
    pub peer_failure: Option<String>,
    /// Time left before a takeover, while counting down.
    pub takeover_in: Option<Duration>,
    /// The takeover is due but held back, and why (this node's NIC is down,
    /// or it cannot reach the data service).
    pub takeover_blocked: Option<String>,
}

pub struct Core {
    settings: Settings,
    state: State,
    timers: Timers,
    actions: VecDeque<Action>,
    /// The peer's application, watched while Passive.
    peer: Health,
    /// Our own application, watched while Active.
    local: Health,
    /// The data service as seen from here.
    data: Health,
    /// Our own NIC (admin up and carrier).
    nic: Health,
    /// Probe results launched before this instant are about an earlier
    /// watch and are dropped (a stale failure must not start a countdown).
    peer_watch_since: Option<Instant>,
    local_watch_since: Option<Instant>,
    /// The kernel may hold the VIP on our NIC (we added it, or found it).
    vip_held: bool,
    /// SIGTERM arrived: finish the step in flight, then release and exit.
    shutdown: bool,
    after: After,
    /// When the current claim or release was decided, to log its duration.
    claim_started: Option<Instant>,
    release_started: Option<Instant>,
    /// The takeover is due but held back by this reason.
    takeover_blocked: Option<String>,
}

impl Core {
    pub fn new(settings: Settings) -> Self {
        let rise = settings.rise;
        Core {
            settings,
            state: State::Init,
            timers: Timers::default(),
            actions: VecDeque::new(),
            peer: Health::new(rise),
            local: Health::new(rise),
            data: Health::new(rise),
            nic: Health::new(1),
            peer_watch_since: None,
            local_watch_since: None,
            vip_held: false,
            shutdown: false,
            after: After::Passive,
            claim_started: None,
            release_started: None,
            takeover_blocked: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn status(&self, now: Instant) -> Status {
        let countdown = self.state == State::Passive;
        Status {
            state: self.state,
            peer_failure: countdown
                .then(|| self.peer.last_error().map(str::to_owned))
                .flatten(),
            takeover_in: countdown
                .then(|| self.peer.failing_since())
                .flatten()
                .map(|since| (since + self.settings.grace).saturating_duration_since(now)),
            takeover_blocked: self.takeover_blocked.clone(),
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
            (State::Probing, Input::ArpProbed { holder }) => self.on_arp_probed(now, holder),
            (State::Claiming, Input::VipAdded(outcome)) => {
                self.vip_held = true;
                match outcome {
                    Ok(()) if self.shutdown => {
                        self.release(now, Cause::Shutdown, After::Exit, false)
                    }
                    Ok(()) => self.change_state(now, State::Announcing, Cause::StepDone),
                    Err(why) => self.release(now, Cause::ClaimFailed(why), After::Passive, false),
                }
            }
            (State::Announcing, Input::Announced(outcome)) => {
                if let Err(why) = outcome {
                    warn!(%why, "gratuitous ARP failed; the kernel still answers ARP for the common IP");
                }
                if self.shutdown {
                    self.release(now, Cause::Shutdown, After::Exit, false);
                } else {
                    self.change_state(now, State::StartingApp, Cause::StepDone);
                }
            }
            (State::StartingApp, Input::AppStarted(outcome)) => match outcome {
                Ok(()) if self.shutdown => self.release(now, Cause::Shutdown, After::Exit, true),
                Ok(()) => self.change_state(now, State::Active, Cause::StepDone),
                Err(why) => {
                    error!(%why, "application failed to start; releasing the common IP");
                    self.release(now, Cause::AppStartFailed(why), After::Passive, true)
                }
            },
            (State::StoppingApp, Input::AppStopped(outcome)) => {
                if let Err(why) = outcome {
                    warn!(%why, "stop command failed; removing the common IP anyway");
                }
                self.change_state(now, State::Releasing, Cause::StepDone);
            }
            (State::Releasing, Input::VipRemoved(outcome)) => {
                if let Err(why) = &outcome {
                    error!(%why, "could not remove the common IP");
                }
                self.vip_held = outcome.is_err();
                let next = match self.after {
                    After::Passive => State::Passive,
                    After::Exit => State::Stopped,
                };
                self.change_state(now, next, Cause::StepDone);
            }
            (
                _,
                Input::Probed {
                    target,
                    started,
                    outcome,
                },
            ) => self.on_probe(now, target, started, outcome),
            (_, Input::Shutdown) => self.on_shutdown(now),
            (state, input) => debug!(
                ?state,
                ?input,
                "input does not apply in this state; ignored"
            ),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in self.timers.take_expired(now) {
            match (timer, self.state) {
                (Timer::ProbePeer, State::Passive) => {
                    self.probe_and_rearm(now, Target::Peer, Timer::ProbePeer)
                }
                (Timer::ProbeLocal, State::Active) => {
                    self.probe_and_rearm(now, Target::Local, Timer::ProbeLocal)
                }
                (Timer::ProbeData, state) if state != State::Stopped => {
                    self.probe_and_rearm(now, Target::Data, Timer::ProbeData)
                }
                (Timer::ProbeNic, state) if state != State::Stopped => {
                    self.probe_and_rearm(now, Target::Nic, Timer::ProbeNic)
                }
                (Timer::Takeover, State::Passive) => self.try_takeover(now),
                (Timer::SelfRelease, State::Active) => {
                    let why = self.local.last_error().unwrap_or("unhealthy").to_owned();
                    self.release(now, Cause::LocalAppFailed(why), After::Passive, true);
                }
                (timer, state) => debug!(?timer, ?state, "timer does not apply in this state"),
            }
        }
    }

    fn probe_and_rearm(&mut self, now: Instant, target: Target, timer: Timer) {
        self.actions.push_back(Action::Probe(target));
        self.timers.set(timer, now + self.settings.interval);
    }

    fn on_started(&mut self, now: Instant, vip_present: bool) {
        self.vip_held = vip_present;
        if self.settings.watch_data {
            self.timers.set(Timer::ProbeData, now);
        }
        if self.settings.watch_nic {
            self.timers.set(Timer::ProbeNic, now);
        }
        match self.settings.role {
            Role::Primary if self.settings.probe_at_start => {
                self.change_state(now, State::Probing, Cause::Startup)
            }
            Role::Primary => self.change_state(now, State::Claiming, Cause::Startup),
            Role::Secondary if vip_present => {
                self.release(now, Cause::StaleVip, After::Passive, true)
            }
            Role::Secondary => self.change_state(now, State::Passive, Cause::Startup),
        }
    }

    fn on_arp_probed(&mut self, now: Instant, holder: Option<String>) {
        match (holder, self.shutdown) {
            (_, true) if self.vip_held => self.release(now, Cause::Shutdown, After::Exit, true),
            (_, true) => self.change_state(now, State::Stopped, Cause::Shutdown),
            (None, false) => self.change_state(now, State::Claiming, Cause::VipFree),
            (Some(mac), false) if self.vip_held => {
                self.release(now, Cause::OtherHolder(mac), After::Passive, true)
            }
            (Some(mac), false) => self.change_state(now, State::Passive, Cause::OtherHolder(mac)),
        }
    }

    fn on_shutdown(&mut self, now: Instant) {
        self.shutdown = true;
        self.after = After::Exit;
        match self.state {
            State::Init | State::Passive if self.vip_held => {
                self.release(now, Cause::Shutdown, After::Exit, true)
            }
            State::Init | State::Passive => self.change_state(now, State::Stopped, Cause::Shutdown),
            State::Active => self.release(now, Cause::Shutdown, After::Exit, true),
            // A step is in flight; its completion routes to the release.
            State::Probing
            | State::Claiming
            | State::Announcing
            | State::StartingApp
            | State::StoppingApp
            | State::Releasing
            | State::Stopped => {}
        }
    }

    fn on_probe(&mut self, now: Instant, target: Target, started: Instant, outcome: Outcome) {
        let (health, watching) = match target {
            Target::Peer => (
                &mut self.peer,
                self.state == State::Passive && self.peer_watch_since.is_some_and(|s| started >= s),
            ),
            Target::Local => (
                &mut self.local,
                self.state == State::Active && self.local_watch_since.is_some_and(|s| started >= s),
            ),
            Target::Data => (&mut self.data, self.state != State::Stopped),
            Target::Nic => (&mut self.nic, self.state != State::Stopped),
        };
        if !watching {
            debug!(?target, "probe result from an earlier watch; dropped");
            return;
        }
        let change = health.record(started, &outcome);
        let grace = self.settings.grace;
        match (target, change) {
            (_, Change::None) => {}
            (Target::Peer, Change::StartedFailing(since)) => {
                let left = (since + grace).saturating_duration_since(now);
                warn!(
                    probe = "peer",
                    why = outcome.err().unwrap_or_default(),
                    "{}",
                    countdown::takeover_in(left)
                );
                self.timers.set(Timer::Takeover, since + grace);
            }
            (Target::Peer, Change::Recovered) => {
                info!(probe = "peer", "peer application healthy");
                self.timers.stop(Timer::Takeover);
                self.takeover_blocked = None;
            }
            (Target::Local, Change::StartedFailing(since)) => {
                let left = (since + grace).saturating_duration_since(now);
                warn!(
                    probe = "local",
                    why = outcome.err().unwrap_or_default(),
                    "this node is failing; release in {}",
                    countdown::humanize(left)
                );
                self.timers.set(Timer::SelfRelease, since + grace);
            }
            (Target::Local, Change::Recovered) => {
                info!(probe = "local", "this node is healthy");
                self.timers.stop(Timer::SelfRelease);
            }
            (Target::Data, Change::StartedFailing(_)) => {
                warn!(
                    probe = "data",
                    why = outcome.err().unwrap_or_default(),
                    "data service unreachable from here"
                );
            }
            (Target::Data, Change::Recovered) => {
                info!(probe = "data", "data service reachable");
                if self.takeover_blocked.is_some() {
                    self.try_takeover(now);
                }
            }
            (Target::Nic, Change::StartedFailing(_)) => {
                warn!(
                    probe = "nic",
                    why = outcome.err().unwrap_or_default(),
                    "this node's NIC is unusable"
                );
            }
            (Target::Nic, Change::Recovered) => {
                info!(probe = "nic", "this node's NIC is usable");
                if self.takeover_blocked.is_some() {
                    self.try_takeover(now);
                }
            }
        }
    }

    /// The grace period is over (or the data service came back while a
    /// takeover was due): claim unless failing over would not help.
    fn try_takeover(&mut self, now: Instant) {
        let Some(since) = self.peer.failing_since() else {
            return;
        };
        if self.state != State::Passive || now < since + self.settings.grace {
            return;
        }
        if let Some(blocker) = self.takeover_blocker() {
            if self.takeover_blocked.is_none() {
                warn!(why = %blocker, "takeover due but held back");
            }
            self.takeover_blocked = Some(blocker);
            return;
        }
        self.takeover_blocked = None;
        let why = self.peer.last_error().unwrap_or("unhealthy").to_owned();
        self.change_state(now, State::Claiming, Cause::PeerFailed(why));
    }

    /// Why taking over now would not help, if it would not.
    fn takeover_blocker(&self) -> Option<String> {
        let reason = |h: &Health| h.last_error().unwrap_or("not probed yet").to_owned();
        if self.settings.watch_nic && self.nic.verdict() != Verdict::Healthy {
            return Some(format!(
                "this node's NIC is unusable: {}",
                reason(&self.nic)
            ));
        }
        if self.settings.watch_data && self.data.verdict() != Verdict::Healthy {
            return Some(format!(
                "this node cannot reach the data service: {}",
                reason(&self.data)
            ));
        }
        None
    }

    /// Starts a release: stop the application (when one may run), then
    /// remove the VIP, then go to `after`.
    fn release(&mut self, now: Instant, cause: Cause, after: After, stop_app: bool) {
        self.after = if self.shutdown { After::Exit } else { after };
        let first = if stop_app {
            State::StoppingApp
        } else {
            State::Releasing
        };
        self.change_state(now, first, cause);
    }

    /// The one place where states are entered and left.
    fn change_state(&mut self, now: Instant, to: State, cause: Cause) {
        let from = self.state;
        if cause == Cause::StepDone {
            debug!(%from, %to, "state change");
        } else {
            info!(%from, %to, %cause, "state change");
        }
        // Exit actions.
        match from {
            State::Passive => {
                self.timers.stop(Timer::ProbePeer);
                self.timers.stop(Timer::Takeover);
                self.peer_watch_since = None;
                self.takeover_blocked = None;
            }
            State::Active => {
                self.timers.stop(Timer::ProbeLocal);
                self.timers.stop(Timer::SelfRelease);
                self.local_watch_since = None;
            }
            State::Releasing => {
                if let Some(t) = self.release_started.take() {
                    info!(ms = millis(now - t), "released the common IP");
                }
            }
            _ => {}
        }
        self.state = to;
        // Entry actions.
        match to {
            State::Init => {}
            State::Probing => self.actions.push_back(Action::ProbeArp),
            State::Passive => {
                self.peer = Health::new(self.settings.rise);
                self.peer_watch_since = Some(now);
                self.timers.set(Timer::ProbePeer, now);
            }
            State::Claiming => {
                self.claim_started = Some(now);
                self.actions.push_back(Action::AddVip);
            }
            State::Announcing => self.actions.push_back(Action::Announce),
            State::StartingApp => self.actions.push_back(Action::StartApp),
            State::Active => {
                if let Some(t) = self.claim_started.take() {
                    info!(
                        ms = millis(now - t),
                        "claimed the common IP; application healthy"
                    );
                }
                self.local = Health::new(self.settings.rise);
                self.local_watch_since = Some(now);
                self.timers
                    .set(Timer::ProbeLocal, now + self.settings.interval);
            }
            State::StoppingApp => {
                self.claim_started = None;
                self.release_started.get_or_insert(now);
                self.actions.push_back(Action::StopApp);
            }
            State::Releasing => {
                self.claim_started = None;
                self.release_started.get_or_insert(now);
                self.actions.push_back(Action::RemoveVip);
            }
            State::Stopped => {
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

#[cfg(test)]
mod tests;
