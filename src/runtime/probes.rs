//! Probe tasks: each [`crate::core::Action::Probe`] runs in its own task, so
//! that a slow target never holds up the loop, and reports back as
//! [`Input::Probed`], or as [`Input::ProbeNotRun`] when this node could not
//! run it at all.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::Config;
use crate::control::metrics::Metrics;
use crate::core::{Input, Target};
use crate::io::nic::Links;
use crate::io::probe::{Check, ProbeError, ProbeResult, ProbeSetupError, Prober};
use crate::runtime::effects::url_via;

/// What each probe target means for this node.
pub struct Checks {
    /// Each peer's application URL, by heartbeat id; the watched one's is
    /// probed (the core says which, see [`crate::core::Action::WatchPeer`]).
    peers: Vec<(u16, Check)>,
    watched: u16,
    local: Check,
    /// Our application through each common address (its URL with the
    /// address as host): healthy means it answers on every one of them,
    /// an IPv6 address through an IPv6 URL.
    local_vias: Vec<(IpAddr, Check)>,
    data: Option<Check>,
    /// Our NIC, checked before our own application: an Active node whose
    /// NIC is down or has lost carrier serves nobody, even if its
    /// application still answers on the local address.
    nic: String,
    links: Links,
    prober: Prober,
    /// The data service has its own time limit.
    data_prober: Prober,
    /// The runtime the probes run on: the main one, not the loop's, so
    /// that a TLS handshake never delays a heartbeat.
    work: tokio::runtime::Handle,
}

impl Checks {
    /// The checks of node `me`.
    pub fn new(
        config: &Config,
        me: usize,
        links: Links,
        prober: Prober,
    ) -> Result<Checks, ProbeSetupError> {
        let node = &config.nodes[me];
        Ok(Checks {
            peers: config
                .peers_of(me)
                .map(|p| (config.id_of(p), Check::App(p.url.clone())))
                .collect(),
            watched: config.id_of(config.first_peer(me)),
            local: Check::App(node.url.clone()),
            local_vias: config
                .cluster
                .vips
                .iter()
                .map(|v| (v.address, Check::App(url_via(&node.url, v.address))))
                .collect(),
            data: config.monitor.data.as_ref().map(Check::from),
            nic: node.nic.clone(),
            links,
            prober,
            data_prober: self::prober(config, config.monitor.data_probe.timeout)?,
            work: tokio::runtime::Handle::current(),
        })
    }

    /// Probes peer `id`'s application from now on.
    pub fn watch(&mut self, id: u16) {
        self.watched = id;
    }

    pub fn watched(&self) -> u16 {
        self.watched
    }

    fn watched_check(&self) -> Option<Check> {
        let found = self.peers.iter().find(|(id, _)| *id == self.watched);
        found.map(|(_, check)| check.clone())
    }

    /// Starts the probe of `target`; its result comes back as an input.
    pub fn spawn(&self, target: Target, tx: &mpsc::UnboundedSender<Input>, metrics: &Arc<Metrics>) {
        // Which parts a target's probe is made of: our NIC, a check, or both.
        let (nic_first, check) = match target {
            Target::Nic => (true, None),
            Target::Local => (true, Some(self.local.clone())),
            Target::Peer => match self.watched_check() {
                Some(c) => (false, Some(c)),
                None => return,
            },
            Target::Data => match &self.data {
                Some(c) => (false, Some(c.clone())),
                None => return,
            },
        };
        let prober = if target == Target::Data {
            self.data_prober.clone()
        } else {
            self.prober.clone()
        };
        let vias = match target {
            Target::Local => self.local_vias.clone(),
            _ => Vec::new(),
        };
        let (links, nic, tx) = (self.links.clone(), self.nic.clone(), tx.clone());
        let metrics = metrics.clone();
        self.work.spawn(async move {
            let started = super::now();
            let mut outcome: ProbeResult = Ok(());
            if nic_first {
                outcome = links.usable(&nic).await.map_err(ProbeError::Nic);
            }
            if let (Ok(()), Some(check)) = (&outcome, check) {
                outcome = match (target, &check) {
                    // Our own application may also say "maintenance".
                    (Target::Local, Check::App(url)) => {
                        let (outcome, maintenance) = prober.app_with_signal(url).await;
                        let _ = tx.send(Input::MaintenanceSignal(maintenance));
                        outcome
                    }
                    _ => prober.check(&check).await,
                };
            }
            if outcome.is_ok() {
                outcome = on_every_address(&prober, &vias).await;
            }
            metrics.probe_took(target, super::now().saturating_duration_since(started));
            tracing::trace!(?target, ?outcome, "probe done");
            let _ = tx.send(into_input(target, started, outcome));
        });
    }
}

/// Our application through each common address, all at once: the first
/// address it does not answer on (in the group's order) is the failure.
async fn on_every_address(prober: &Prober, vias: &[(IpAddr, Check)]) -> ProbeResult {
    let answers =
        futures::future::join_all(vias.iter().map(|(_, check)| prober.check(check))).await;
    for ((address, _), answer) in vias.iter().zip(answers) {
        if let Err(source) = answer {
            if source.is_local() {
                // This node could not run it: not the application's fault.
                return Err(source);
            }
            return Err(ProbeError::NotOnAddress {
                address: *address,
                source: Box::new(source),
            });
        }
    }
    Ok(())
}

/// A prober with the configured CA, client certificate and expectations,
/// and this time limit (the application's, or the data service's own).
pub fn prober(config: &Config, timeout: std::time::Duration) -> Result<Prober, ProbeSetupError> {
    Prober::with_identity(
        timeout,
        config.monitor.ca_file.as_deref(),
        config.monitor.client_cert.as_deref(),
        config.monitor.expect.clone(),
    )
}

/// Out of descriptors or memory, this node cannot judge: that must never
/// read as "the target failed".
fn into_input(target: Target, started: std::time::Instant, outcome: ProbeResult) -> Input {
    match outcome {
        Err(failure) if failure.is_local() => Input::ProbeNotRun {
            target,
            started,
            why: failure.to_string(),
        },
        outcome => Input::Probed {
            target,
            started,
            refused: outcome.as_ref().is_err_and(ProbeError::refused),
            outcome: outcome.map_err(|f| f.to_string()),
        },
    }
}
