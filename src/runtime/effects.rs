//! The effects worker: carries out the actions that change the machine
//! (and the VIP check) one at a time, in the order the core queued them,
//! and reports each completion back as an input.
//!
//! The long waits (an application's start and readiness, a drain, the look
//! at the VIP) end early when the core interrupts them: each action comes
//! with the interrupt count at the moment it was queued, and a wait ends as
//! soon as the count passes it. A shutdown thus never waits out
//! `ready_timeout`.

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::config::{Config, Failback, FenceCommand, Node, Url};
use crate::core::{millis, Action, Input};
use crate::io::app::Supervisor;
use crate::io::claim::{Announcement, Claim};
use crate::io::probe::{Check, ProbeError, Prober};

use super::watchdog::Watchdog;

/// The least time the GET through the VIP gets during a look.
const MIN_GET: Duration = Duration::from_millis(20);

pub struct Effects {
    /// The interrupt count, raised by [`crate::core::Action::Interrupt`].
    pub interrupts: watch::Receiver<u64>,
    /// How the common addresses are placed, announced and looked for.
    pub claim: Claim,
    /// The addresses were placed by a claim and not removed since: a new
    /// placement restores them (no rollback).
    pub claimed: bool,
    pub supervisor: Supervisor,
    pub prober: Prober,
    /// Our application URL with the VIP as host: does the service answer
    /// through the common IP?
    pub via_vip: Check,
    /// The background announcements of the current claim.
    pub announcement: Option<Announcement>,
    /// The application's port, whose connections a failback drains.
    pub app_port: u16,
    pub drain_timeout: Duration,
    /// The watchdog of `[fencing]`: armed before the VIP is added (the
    /// loop disarms it once the release is over).
    pub watchdog: Option<Watchdog>,
    /// The fence command, and who the nodes are (by id) for its
    /// environment.
    pub fence: Option<Fencer>,
}

/// What running the fence command needs to know.
pub struct Fencer {
    pub command: FenceCommand,
    pub cluster: String,
    pub node: String,
    /// Every node's name and address, by id.
    pub nodes: Vec<(String, IpAddr)>,
}

impl Fencer {
    fn new(config: &Config, node: &Node) -> Option<Fencer> {
        Some(Fencer {
            command: config.fence.clone()?,
            cluster: config.cluster.name.clone(),
            node: node.name.clone(),
            nodes: config
                .nodes
                .iter()
                .map(|n| (n.name.clone(), n.address))
                .collect(),
        })
    }

    async fn fence(&self, peer: u16, term: u64) -> Result<(), String> {
        let (name, address) = self
            .nodes
            .get(usize::from(peer))
            .ok_or_else(|| format!("no node {peer}"))?;
        let target = crate::io::fence::Target {
            cluster: &self.cluster,
            node: &self.node,
            peer: name,
            peer_address: address.to_string(),
            term,
        };
        crate::io::fence::run(&self.command, &target).await
    }
}

/// The reason an interrupted wait reports.
pub const INTERRUPTED: &str = "interrupted";

/// Resolves once the interrupt count passes `queued_at`: the core asked to
/// cut short the action queued then. Never resolves if the loop is gone.
async fn interrupted_after(mut interrupts: watch::Receiver<u64>, queued_at: u64) {
    if interrupts.wait_for(|n| *n > queued_at).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Waits until the application's established connections reach zero or
/// `limit` passes; returns how many are still open.
async fn drain(port: u16, limit: Duration) -> usize {
    let deadline: Instant = crate::clock::later(Instant::now().into_std(), limit).into();
    let mut open = established(port);
    while open > 0 && Instant::now() < deadline {
        tokio::time::sleep(DRAIN_POLL).await;
        open = established(port);
    }
    open
}

/// How often open connections are counted while draining.
const DRAIN_POLL: Duration = Duration::from_millis(100);

/// Established TCP connections whose local port is `port`, in this
/// network namespace (/proc/net/tcp and tcp6; state 01 is ESTABLISHED).
pub fn established(port: u16) -> usize {
    let hex = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .map(|text| {
            text.lines()
                .skip(1)
                .filter(|l| {
                    let mut cols = l.split_whitespace();
                    let local = cols.nth(1).unwrap_or("");
                    let state = cols.nth(1).unwrap_or("");
                    local.ends_with(&hex) && state == "01"
                })
                .count()
        })
        .sum::<usize>()
}

/// `url` with its host replaced by the VIP.
pub fn url_via(url: &Url, vip: IpAddr) -> Url {
    let mut u = url.clone();
    // A URL that has a host (validated) accepts an IP host.
    let _ = u.set_ip_host(vip);
    u
}

/// The application supervisor for `node`, from the configuration.
pub fn supervisor(config: &Config, node: &Node, prober: &Prober) -> Supervisor {
    Supervisor::new(
        config.application.start.clone(),
        config.application.stop.clone(),
        config.application.timeout,
        config.application.ready_timeout,
        Check::App(node.url.clone()),
        prober.clone(),
        vec![
            ("UNDERSTUDY_CLUSTER".into(), config.cluster.name.clone()),
            ("UNDERSTUDY_NODE".into(), node.name.clone()),
            ("UNDERSTUDY_ROLE".into(), node.role.to_string()),
            // Every address of the group, space-separated.
            (
                "UNDERSTUDY_VIP".into(),
                config
                    .cluster
                    .vips
                    .iter()
                    .map(|v| v.address.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ],
    )
}

/// An application start (or adoption) and its wait until ready, cut short
/// if the core interrupts it.
async fn unless_interrupted(
    start: impl std::future::Future<Output = Result<(), String>>,
    interrupted: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    tokio::select! {
        started = start => started,
        () = interrupted => Err(INTERRUPTED.into()),
    }
}

/// What the worker is given, in order.
pub enum Queued {
    /// An action, with the interrupt count and the node's term when it
    /// was queued (the commands get the term as UNDERSTUDY_TERM: with a
    /// witness, the lease's fencing token).
    Act(Action, u64, u64),
    /// A reload's settings for the actions that follow (the announce
    /// counts, the application's commands, the URLs); the repeats of the
    /// current claim and the application's process group are kept.
    Reconfigure(Box<Effects>),
}

impl Effects {
    pub fn new(
        config: &Config,
        node: &Node,
        claim: Claim,
        prober: Prober,
        interrupts: watch::Receiver<u64>,
    ) -> Effects {
        Effects {
            interrupts,
            claim,
            claimed: false,
            supervisor: supervisor(config, node, &prober),
            via_vip: Check::App(url_via(
                &node.url,
                config.cluster.vip_like(Some(node.address)),
            )),
            prober,
            announcement: None,
            app_port: node.url.port_or_known_default().unwrap_or(80),
            drain_timeout: match config.failback {
                Failback::Automatic { drain_timeout, .. } => drain_timeout,
                Failback::Manual => Duration::ZERO,
            },
            watchdog: None,
            fence: Fencer::new(config, node),
        }
    }

    pub async fn serve(
        mut self,
        mut actions: mpsc::UnboundedReceiver<Queued>,
        inputs: mpsc::UnboundedSender<Input>,
    ) {
        while let Some(work) = actions.recv().await {
            let (action, queued_at) = match work {
                Queued::Act(action, queued_at, term) => {
                    self.supervisor.term = term;
                    (action, queued_at)
                }
                Queued::Reconfigure(fresh) => {
                    self.reconfigure(*fresh);
                    continue;
                }
            };
            super::failpoint::hit("effects");
            if let Some(input) = self.execute(action, queued_at).await {
                let _ = inputs.send(input);
            }
        }
        self.announcement = None;
    }

    /// Runs the fence command against `peer`, unless interrupted.
    async fn fence(
        &self,
        peer: u16,
        term: u64,
        interrupted: impl std::future::Future<Output = ()>,
    ) -> Result<(), String> {
        match &self.fence {
            Some(fencer) => unless_interrupted(fencer.fence(peer, term), interrupted).await,
            None => Err("no fence command is configured".to_owned()),
        }
    }

    /// Takes `fresh`'s settings; keeps what belongs to this run (the
    /// interrupt watch, the announcements in flight, the started process
    /// group).
    fn reconfigure(&mut self, fresh: Effects) {
        self.claim = fresh.claim;
        self.supervisor.reconfigure(fresh.supervisor);
        self.prober = fresh.prober;
        self.via_vip = fresh.via_vip;
        self.app_port = fresh.app_port;
        self.drain_timeout = fresh.drain_timeout;
    }

    async fn execute(&mut self, action: Action, queued_at: u64) -> Option<Input> {
        let began = Instant::now();
        let ms = || millis(began.elapsed());
        let interrupted = interrupted_after(self.interrupts.clone(), queued_at);
        let input = match action {
            Action::CheckVip { window } => self.check_vip(window, interrupted).await,
            Action::AddVip => self.place().await,
            Action::Announce => self.announce().await,
            Action::StartApp => {
                let outcome = unless_interrupted(self.supervisor.start(), interrupted).await;
                info!(ms = ms(), ok = outcome.is_ok(), "application start");
                Input::AppStarted(outcome)
            }
            Action::AdoptApp => {
                let outcome = unless_interrupted(self.supervisor.adopt(), interrupted).await;
                info!(ms = ms(), ok = outcome.is_ok(), "application adopted");
                Input::AppStarted(outcome)
            }
            Action::RestartApp => {
                if let Err(why) = self.supervisor.stop().await {
                    warn!(%why, "stop before the restart failed; starting anyway");
                }
                let outcome = unless_interrupted(self.supervisor.start(), interrupted).await;
                info!(ms = ms(), ok = outcome.is_ok(), "application restart");
                Input::AppStarted(outcome)
            }
            Action::StopApp => {
                // Never interrupted: stopping is what an interrupt is for.
                let outcome = self.supervisor.stop().await;
                info!(ms = ms(), ok = outcome.is_ok(), "application stop");
                Input::AppStopped(outcome)
            }
            Action::RemoveVip => self.remove().await,
            Action::Fence { peer, term } => {
                let outcome = self.fence(peer, term, interrupted).await;
                info!(ms = ms(), ok = outcome.is_ok(), peer, "fence done");
                Input::Fenced(outcome)
            }
            Action::Drain => {
                let open = tokio::select! {
                    open = drain(self.app_port, self.drain_timeout) => open,
                    () = interrupted => established(self.app_port),
                };
                info!(ms = ms(), open, port = self.app_port, "drain done");
                Input::Drained { remaining: open }
            }
            Action::Probe(_)
            | Action::WatchPeer(_)
            | Action::SendHeartbeat(_)
            | Action::Notify(_)
            | Action::Interrupt
            | Action::Exit
            | Action::Exec { .. }
            | Action::Lease(_)
            | Action::MirrorPass { .. } => return None,
        };
        Some(input)
    }

    /// Looks at the VIP for `window`: the RFC 5227 ARP probe and the
    /// application through the VIP, at the same time. The GET gets the
    /// window too (at least `MIN_GET`): an answer that has not come when
    /// the takeover falls due is no answer, and a GET to a holder that is
    /// gone would otherwise wait for the whole probe timeout.
    async fn check_vip(
        &self,
        window: Duration,
        interrupted: impl std::future::Future<Output = ()>,
    ) -> Input {
        let began = Instant::now();
        let get = async {
            match tokio::time::timeout(window.max(MIN_GET), self.prober.check(&self.via_vip)).await
            {
                Ok(answer) => answer,
                Err(_) => Err(ProbeError::ViaVipTimedOut(window)),
            }
        };
        let deadline = crate::clock::later(began.into_std(), window);
        let arp = async {
            let holder = self.claim.holder(deadline).await;
            debug!(
                ms = millis(began.elapsed()),
                "look for another holder of the common IP done"
            );
            holder
        };
        let get = async {
            let answer = get.await;
            debug!(
                ms = millis(began.elapsed()),
                "GET through the common IP done"
            );
            answer
        };
        let look = async { tokio::join!(arp, get) };
        let (arp, via) = tokio::select! {
            looked = look => looked,
            () = interrupted => {
                info!(ms = millis(began.elapsed()), "look at the common IP interrupted");
                return Input::VipChecked { holder: None, via_vip: Err(INTERRUPTED.into()) };
            }
        };
        let holder = match arp {
            Ok(holder) => holder,
            Err(e) => {
                warn!(error = %e, "cannot look for another holder; assuming there is none");
                None
            }
        };
        let via_vip = via.map_err(|f| f.to_string());
        // At debug: the core tells what the look decided (a claim, a
        // conflict, a hold-back), once; a node held back looks again and
        // again, and each look is not news.
        debug!(
            ms = millis(began.elapsed()),
            holder = holder.as_deref().unwrap_or("none"),
            via_vip = via_vip.as_ref().err().map_or("answers", String::as_str),
            "looked at the common IP"
        );
        Input::VipChecked { holder, via_vip }
    }

    /// Places the common addresses (the watchdog armed first: a holder
    /// must never be unguarded).
    async fn place(&mut self) -> Input {
        let began = Instant::now();
        let armed = self.watchdog.as_ref().map_or(Ok(()), Watchdog::arm);
        let outcome = match armed {
            Ok(()) => self
                .claim
                .place(self.claimed)
                .await
                .map_err(|e| e.to_string()),
            Err(why) => Err(why),
        };
        self.claimed = self.claimed || outcome.is_ok();
        info!(
            ms = millis(began.elapsed()),
            ok = outcome.is_ok(),
            addresses = self.claim.addresses(),
            "common IP added"
        );
        Input::VipAdded(outcome)
    }

    /// The claim's first announcement; its repeats go on in the background
    /// (an earlier claim's stop first).
    async fn announce(&mut self) -> Input {
        let began = Instant::now();
        self.announcement = None;
        let outcome = match self.claim.announce().await {
            Ok(announcement) => {
                self.announcement = Some(announcement);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        };
        info!(
            ms = millis(began.elapsed()),
            ok = outcome.is_ok(),
            "first announcement sent"
        );
        Input::Announced(outcome)
    }

    /// Takes the common addresses off, announcements first.
    async fn remove(&mut self) -> Input {
        let began = Instant::now();
        self.announcement = None;
        let outcome = self.claim.remove().await.map_err(|e| e.to_string());
        self.claimed = false;
        info!(
            ms = millis(began.elapsed()),
            ok = outcome.is_ok(),
            addresses = self.claim.addresses(),
            "common IP removed"
        );
        Input::VipRemoved(outcome)
    }
}
