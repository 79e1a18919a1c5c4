//! The event loop: the only place that owns tokio. It feeds the core with
//! inputs (probe results, action completions, signals, timer expiries) and
//! hands the core's actions to one sequential effects worker, so that the
//! order the core encodes (claim → announce → start; stop → release) holds
//! on the machine. Probes run concurrently in their own tasks.

use std::net::IpAddr;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::Config;
use crate::core::{Action, Core, Input, Settings, Target};
use crate::io::app::Supervisor;
use crate::io::arp;
use crate::io::netlink::{Netlink, NetlinkError};
use crate::io::probe::{Check, ProbeSetupError, Prober};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Probe(#[from] ProbeSetupError),
    #[error("cannot install a signal handler: {0}")]
    Signal(std::io::Error),
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Runs the daemon for node `me` until SIGTERM/SIGINT has released
/// everything.
pub async fn run(config: Config, me: usize) -> Result<(), RuntimeError> {
    let node = config.nodes[me].clone();
    let peer = config.nodes[config.peer_of(me)].clone();
    let vip = IpAddr::V4(config.cluster.vip);
    let netlink = Netlink::open()?;
    let link = netlink.link(&node.nic).await?;
    let vip_present = netlink.has_address(link.index, vip).await?;
    let prober = Prober::new(config.monitor.timeout, config.monitor.ca_file.as_deref())?;
    info!(
        node = %node.name, role = %node.role, nic = %node.nic, %vip,
        peer = %peer.name, grace = ?config.monitor.grace, interval = ?config.monitor.interval,
        vip_present, "understudy starting"
    );

    let (input_tx, mut inputs) = mpsc::unbounded_channel::<Input>();
    let (effect_tx, effect_rx) = mpsc::unbounded_channel::<Action>();
    let supervisor = Supervisor::new(
        config.application.start.clone(),
        config.application.stop.clone(),
        config.application.timeout,
        config.application.ready_timeout,
        Check::Http(node.url.clone()),
        prober.clone(),
        vec![
            ("UNDERSTUDY_CLUSTER".into(), config.cluster.name.clone()),
            ("UNDERSTUDY_NODE".into(), node.name.clone()),
            ("UNDERSTUDY_ROLE".into(), node.role.to_string()),
            ("UNDERSTUDY_VIP".into(), config.cluster.vip.to_string()),
        ],
    );
    let effects = Effects {
        netlink: netlink.clone(),
        nic: node.nic.clone(),
        vip: config.cluster.vip,
        prefix_len: config.cluster.prefix_len,
        announce_count: config.announce.count,
        announce_interval: config.announce.interval,
        probe_window: config.announce.probe,
        supervisor,
        repeats: None,
    };
    let worker = tokio::spawn(effects.serve(effect_rx, input_tx.clone()));

    let checks = Checks {
        peer: Check::Http(peer.url.clone()),
        local: Check::Http(node.url.clone()),
        data: config.monitor.data.as_ref().map(Check::from),
        nic: node.nic.clone(),
        netlink,
    };
    let mut sigterm = signal(SignalKind::terminate()).map_err(RuntimeError::Signal)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(RuntimeError::Signal)?;
    let mut core = Core::new(Settings::from_config(&config, me));
    core.handle_input(now(), Input::Started { vip_present });

    loop {
        while let Some(action) = core.poll_action() {
            match action {
                Action::Exit => {
                    drop(effect_tx);
                    let _ = worker.await;
                    info!("released everything; exiting");
                    return Ok(());
                }
                Action::Probe(target) => spawn_probe(&prober, &checks, target, &input_tx),
                other => {
                    // The worker lives as long as `effect_tx`; a send can
                    // only fail if it panicked, which it does not.
                    let _ = effect_tx.send(other);
                }
            }
        }
        let deadline = core.poll_timeout().map(Instant::from_std);
        tokio::select! {
            Some(input) = inputs.recv() => core.handle_input(now(), input),
            () = sleep_until(deadline) => core.handle_timeout(now()),
            _ = sigterm.recv() => {
                info!("SIGTERM: stopping the application and releasing the common IP");
                core.handle_input(now(), Input::Shutdown);
            }
            _ = sigint.recv() => {
                info!("SIGINT: stopping the application and releasing the common IP");
                core.handle_input(now(), Input::Shutdown);
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What each probe target means for this node.
struct Checks {
    peer: Check,
    local: Check,
    data: Option<Check>,
    /// Our NIC, checked before our own application: an Active node whose
    /// NIC is down or has lost carrier serves nobody, even if its
    /// application still answers on the local address.
    nic: String,
    netlink: Netlink,
}

fn spawn_probe(
    prober: &Prober,
    checks: &Checks,
    target: Target,
    tx: &mpsc::UnboundedSender<Input>,
) {
    // Which parts a target's probe is made of: our NIC, a check, or both.
    let (nic_first, check) = match target {
        Target::Nic => (true, None),
        Target::Local => (true, Some(checks.local.clone())),
        Target::Peer => (false, Some(checks.peer.clone())),
        Target::Data => match &checks.data {
            Some(c) => (false, Some(c.clone())),
            None => return,
        },
    };
    let (prober, netlink, nic, tx) = (
        prober.clone(),
        checks.netlink.clone(),
        checks.nic.clone(),
        tx.clone(),
    );
    tokio::spawn(async move {
        let started = now();
        let mut outcome = Ok(());
        if nic_first {
            outcome = nic_usable(&netlink, &nic).await;
        }
        if let (Ok(()), Some(check)) = (&outcome, check) {
            outcome = prober.check(&check).await;
        }
        tracing::trace!(?target, ?outcome, "probe done");
        let _ = tx.send(Input::Probed {
            target,
            started,
            outcome,
        });
    });
}

/// Is our NIC administratively up with carrier?
async fn nic_usable(netlink: &Netlink, nic: &str) -> Result<(), String> {
    let link = netlink.link(nic).await.map_err(|e| e.to_string())?;
    match (link.admin_up, link.carrier) {
        (true, true) => Ok(()),
        (false, _) => Err(format!("NIC {nic} is down")),
        (true, false) => Err(format!("NIC {nic} has no carrier")),
    }
}

/// Carries out the actions that change the machine, one at a time.
struct Effects {
    netlink: Netlink,
    nic: String,
    vip: std::net::Ipv4Addr,
    prefix_len: u8,
    announce_count: u32,
    announce_interval: Duration,
    probe_window: Duration,
    supervisor: Supervisor,
    /// The background gratuitous ARP repeats of the current claim.
    repeats: Option<JoinHandle<()>>,
}

impl Effects {
    async fn serve(
        mut self,
        mut actions: mpsc::UnboundedReceiver<Action>,
        inputs: mpsc::UnboundedSender<Input>,
    ) {
        while let Some(action) = actions.recv().await {
            if let Some(input) = self.execute(action).await {
                let _ = inputs.send(input);
            }
        }
        self.stop_repeats();
    }

    async fn execute(&mut self, action: Action) -> Option<Input> {
        let began = Instant::now();
        let ms = || crate::core::millis(began.elapsed());
        let input = match action {
            Action::ProbeArp => {
                let holder = match arp::probe(&self.nic, self.vip, self.probe_window).await {
                    Ok(holder) => holder.map(|m| m.to_string()),
                    Err(e) => {
                        warn!(error = %e, "ARP probe failed; assuming no other holder");
                        None
                    }
                };
                info!(
                    ms = ms(),
                    holder = holder.as_deref().unwrap_or("none"),
                    "ARP probe for the common IP done"
                );
                Input::ArpProbed { holder }
            }
            Action::AddVip => {
                let outcome = self.add_vip().await.map_err(|e| e.to_string());
                info!(ms = ms(), ok = outcome.is_ok(), vip = %self.vip, nic = %self.nic, "common IP added");
                Input::VipAdded(outcome)
            }
            Action::Announce => {
                self.stop_repeats();
                let outcome = match arp::announce(
                    &self.nic,
                    self.vip,
                    self.announce_count,
                    self.announce_interval,
                )
                .await
                {
                    Ok(repeats) => {
                        self.repeats = repeats;
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                };
                info!(ms = ms(), ok = outcome.is_ok(), "first gratuitous ARP sent");
                Input::Announced(outcome)
            }
            Action::StartApp => {
                let outcome = self.supervisor.start().await;
                info!(ms = ms(), ok = outcome.is_ok(), "application start");
                Input::AppStarted(outcome)
            }
            Action::StopApp => {
                let outcome = self.supervisor.stop().await;
                info!(ms = ms(), ok = outcome.is_ok(), "application stop");
                Input::AppStopped(outcome)
            }
            Action::RemoveVip => {
                self.stop_repeats();
                let outcome = self.remove_vip().await.map_err(|e| e.to_string());
                info!(ms = ms(), ok = outcome.is_ok(), vip = %self.vip, nic = %self.nic, "common IP removed");
                Input::VipRemoved(outcome)
            }
            Action::Probe(_) | Action::Exit => return None,
        };
        Some(input)
    }

    async fn add_vip(&self) -> Result<(), NetlinkError> {
        let link = self.netlink.link(&self.nic).await?;
        self.netlink
            .add_address(link.index, IpAddr::V4(self.vip), self.prefix_len)
            .await
    }

    async fn remove_vip(&self) -> Result<(), NetlinkError> {
        let link = self.netlink.link(&self.nic).await?;
        self.netlink
            .remove_address(link.index, IpAddr::V4(self.vip))
            .await
    }

    fn stop_repeats(&mut self) {
        if let Some(task) = self.repeats.take() {
            task.abort();
        }
    }
}
