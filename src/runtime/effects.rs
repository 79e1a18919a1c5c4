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
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::config::{Config, Failback, FenceCommand, Node, Url};
use crate::core::{millis, Action, Input};
use crate::io::app::Supervisor;
use crate::io::group::Group;
use crate::io::neighbours;
use crate::io::netlink::Netlink;
use crate::io::probe::{Check, Prober};

use super::watchdog::Watchdog;

/// The least time the GET through the VIP gets during a look.
const MIN_GET: Duration = Duration::from_millis(20);

pub struct Effects {
    /// The interrupt count, raised by [`crate::core::Action::Interrupt`].
    pub interrupts: watch::Receiver<u64>,
    /// The common addresses, placed on their NICs.
    pub group: Group,
    /// The group was added by a claim and not removed since: a new
    /// addition restores it (no rollback).
    pub claimed: bool,
    pub announce_count: u32,
    pub announce_interval: Duration,
    pub supervisor: Supervisor,
    pub prober: Prober,
    /// Our application URL with the VIP as host: does the service answer
    /// through the common IP?
    pub via_vip: Check,
    /// The background announcement repeats of the current claim, one per NIC.
    pub repeats: Vec<JoinHandle<()>>,
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
        netlink: Netlink,
        prober: Prober,
        interrupts: watch::Receiver<u64>,
    ) -> Effects {
        Effects {
            interrupts,
            group: Group::new(config, node, netlink),
            claimed: false,
            announce_count: config.announce.count,
            announce_interval: config.announce.interval,
            supervisor: supervisor(config, node, &prober),
            via_vip: Check::App(url_via(
                &node.url,
                config.cluster.vip_like(Some(node.address)),
            )),
            prober,
            repeats: Vec::new(),
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
        self.stop_repeats();
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
    /// interrupt watch, the repeats in flight, the started process group).
    fn reconfigure(&mut self, fresh: Effects) {
        self.announce_count = fresh.announce_count;
        self.announce_interval = fresh.announce_interval;
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
            Action::AddVip => {
                // Armed first: a holder must never be unguarded.
                let armed = self.watchdog.as_ref().map_or(Ok(()), Watchdog::arm);
                let outcome = match armed {
                    Ok(()) => self.group.add_all(!self.claimed).await,
                    Err(why) => Err(why),
                };
                self.claimed = self.claimed || outcome.is_ok();
                info!(
                    ms = ms(),
                    ok = outcome.is_ok(),
                    addresses = self.group.placed.len(),
                    "common IP added"
                );
                Input::VipAdded(outcome)
            }
            Action::Announce => {
                let outcome = self.announce().await;
                info!(ms = ms(), ok = outcome.is_ok(), "first announcement sent");
                Input::Announced(outcome)
            }
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
            Action::RemoveVip => {
                self.stop_repeats();
                let outcome = self.group.remove_all().await;
                self.claimed = false;
                info!(
                    ms = ms(),
                    ok = outcome.is_ok(),
                    addresses = self.group.placed.len(),
                    "common IP removed"
                );
                Input::VipRemoved(outcome)
            }
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
            | Action::Lease(_) => return None,
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
                Err(_) => Err(format!("no answer through the common IP within {window:?}").into()),
            }
        };
        let deadline = crate::clock::later(began.into_std(), window);
        let arp = async {
            // One probe per NIC, at once; the first holder seen answers.
            let probes = self
                .group
                .by_nic()
                .into_iter()
                .map(|(nic, addresses)| async move {
                    neighbours::probe(&nic, addresses, deadline).await
                });
            let answers = futures::future::join_all(probes).await;
            debug!(
                ms = millis(began.elapsed()),
                "probe of the common IP's neighbours done"
            );
            let mut holder = Ok(None);
            for answer in answers {
                match answer {
                    Ok(Some(mac)) => return Ok(Some(mac)),
                    Ok(None) => {}
                    Err(e) => holder = Err(e),
                }
            }
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
            Ok(holder) => holder.map(|m| m.to_string()),
            Err(e) => {
                warn!(error = %e, "ARP probe failed; assuming no other holder");
                None
            }
        };
        let via_vip = via.map_err(|f| f.reason);
        info!(
            ms = millis(began.elapsed()),
            holder = holder.as_deref().unwrap_or("none"),
            via_vip = via_vip.as_ref().err().map_or("answers", String::as_str),
            "looked at the common IP"
        );
        Input::VipChecked { holder, via_vip }
    }

    /// The first round of announcements on every NIC of the group; the
    /// others go on in the background until the VIP is removed.
    async fn announce(&mut self) -> Result<(), String> {
        self.stop_repeats();
        for (nic, addresses) in self.group.by_nic() {
            let repeats =
                neighbours::announce(&nic, addresses, self.announce_count, self.announce_interval)
                    .await
                    .map_err(|e| e.to_string())?;
            self.repeats.extend(repeats);
        }
        Ok(())
    }

    fn stop_repeats(&mut self) {
        for task in self.repeats.drain(..) {
            task.abort();
        }
    }
}
