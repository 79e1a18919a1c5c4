//! The event loop: the only place that owns tokio. It feeds the core with
//! inputs (probe results, heartbeats, address events, action completions,
//! signals, timer expiries) and hands the core's actions out: heartbeats go
//! straight to the socket, probes run concurrently in their own tasks, and
//! everything that changes the machine goes to one sequential effects
//! worker, so that the order the core encodes (claim → announce → start;
//! stop → release) holds on the machine.

mod effects;
mod role_file;
mod watch;
mod wire;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::info;

use crate::config::{read_secret, Config};
use crate::control::metrics::Metrics;
use crate::control::server::{self as control_server, ControlRequest};
use crate::control::{http, report, state_file, Request, Response};
use crate::core::{Action, Core, Input, Settings, Target};
use crate::io::app::Supervisor;
use crate::io::netlink::{Netlink, NetlinkError};
use crate::io::probe::{Check, ProbeResult, ProbeSetupError, Prober};
use crate::proto::heartbeat;
use effects::Effects;
pub use wire::accept;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Probe(#[from] ProbeSetupError),
    #[error("{0}")]
    Secret(String),
    #[error("cannot open the heartbeat socket on {addr}: {source}")]
    Socket {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot install a signal handler: {0}")]
    Signal(std::io::Error),
    #[error("cannot open the control socket {path}: {source}")]
    Control {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    State(String),
    #[error("HTTP API: {0}")]
    Api(String),
    #[error("notifications: {0}")]
    Notify(String),
}

/// Paths the command line may override (two daemons on one machine).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub socket: Option<std::path::PathBuf>,
    pub state_file: Option<std::path::PathBuf>,
}

/// The current instant, read through tokio so that paused test time works.
pub(crate) fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// This run's boot epoch: start time in ms and 16 random bits.
fn boot_epoch() -> u64 {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut random = [0u8; 2];
    // Without randomness two starts in the same millisecond could share an
    // epoch; the time part still orders them, so a failure is harmless.
    let _ = getrandom::getrandom(&mut random);
    heartbeat::boot_epoch(millis, u16::from_be_bytes(random))
}

/// Runs the daemon for node `me` until SIGTERM/SIGINT has released
/// everything.
pub async fn run(config: Config, me: usize, overrides: Overrides) -> Result<(), RuntimeError> {
    let node = config.nodes[me].clone();
    let peer = config.nodes[config.peer_of(me)].clone();
    open_descriptor_limit();
    let vip = IpAddr::V4(config.cluster.vip);
    let key = Arc::new(read_secret(&config.heartbeat.secret_file).map_err(RuntimeError::Secret)?);
    let netlink = Netlink::open()?;
    let link = netlink.link(&node.nic).await?;
    let vip_present = netlink.has_address(link.index, vip).await?;
    let prober = Prober::with_identity(
        config.monitor.timeout,
        config.monitor.ca_file.as_deref(),
        config.monitor.client_cert.as_deref(),
        config.monitor.expect.clone(),
    )?;
    let listen = SocketAddr::new(IpAddr::V4(node.address), config.heartbeat.port);
    let socket =
        Arc::new(
            UdpSocket::bind(listen)
                .await
                .map_err(|source| RuntimeError::Socket {
                    addr: listen,
                    source,
                })?,
        );
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
    let mut settings = Settings::from_config(&config, me, boot_epoch());
    settings.disabled = persisted.disabled;
    settings.maintenance = persisted.maintenance;
    info!(
        node = %node.name, role = %node.role, nic = %node.nic, %vip, peer = %peer.name,
        grace = ?config.monitor.grace, interval = ?config.monitor.interval,
        heartbeat = ?config.heartbeat.interval, peer_timeout = ?config.heartbeat.peer_timeout,
        epoch = settings.epoch, config = format!("{:016x}", config.checksum),
        vip_present, disabled = persisted.disabled, maintenance = persisted.maintenance,
        socket = %socket_path.display(), "understudy starting"
    );
    let (control_tx, mut control_rx) = mpsc::channel::<ControlRequest>(16);
    let metrics = Arc::new(Metrics::new(&node.name, &config.cluster.name));
    let api = match &config.api {
        Some(api) => {
            let tokens = http::Tokens::load(&api.tokens_file).map_err(RuntimeError::Api)?;
            let tls = match &api.tls {
                Some((cert, key)) => {
                    Some(http::tls_acceptor(cert, key).map_err(RuntimeError::Api)?)
                }
                None => None,
            };
            let listener = tokio::net::TcpListener::bind(api.listen)
                .await
                .map_err(|e| RuntimeError::Api(format!("cannot listen on {}: {e}", api.listen)))?;
            info!(listen = %api.listen, tls = tls.is_some(), "HTTP API listening");
            Some(tokio::spawn(http::serve(
                listener,
                tls,
                tokens,
                control_tx.clone(),
                metrics.clone(),
            )))
        }
        None => None,
    };
    let control = tokio::spawn(control_server::serve(
        control_listener,
        socket_path.clone(),
        control_tx,
    ));

    let (input_tx, mut inputs) = mpsc::unbounded_channel::<Input>();
    let (effect_tx, effect_rx) = mpsc::unbounded_channel::<Action>();
    let effects = Effects {
        netlink: netlink.clone(),
        nic: node.nic.clone(),
        vip: config.cluster.vip,
        prefix_len: config.cluster.prefix_len,
        announce_count: config.announce.count,
        announce_interval: config.announce.interval,
        probe_window: config.announce.probe,
        supervisor: Supervisor::new(
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
                ("UNDERSTUDY_VIP".into(), config.cluster.vip.to_string()),
            ],
        ),
        prober: prober.clone(),
        via_vip: Check::App(effects::url_via(&node.url, config.cluster.vip)),
        repeats: None,
        app_port: node.url.port_or_known_default().unwrap_or(80),
        drain_timeout: match config.failback {
            crate::config::Failback::Automatic { drain_timeout, .. } => drain_timeout,
            crate::config::Failback::Manual => std::time::Duration::ZERO,
        },
    };
    let worker = tokio::spawn(effects.serve(effect_rx, input_tx.clone()));
    let wire = wire::Wire {
        socket: socket.clone(),
        peer: SocketAddr::new(IpAddr::V4(peer.address), config.heartbeat.port),
        key: key.clone(),
    };
    let expect = wire::Expect {
        cluster_id: settings.cluster_id,
        peer_id: config.peer_of(me) as u16,
        key,
    };
    let receiver = tokio::spawn(wire::receive(
        socket,
        expect,
        input_tx.clone(),
        metrics.clone(),
    ));
    let watcher = tokio::spawn(watch::watch(
        node.nic.clone(),
        config.cluster.vip,
        input_tx.clone(),
    ));

    let mut notifier = crate::notify::Notifier::start(&config.notify, metrics.clone())
        .map_err(RuntimeError::Notify)?;
    let mut role = role_file::RoleFile::new(config.application.role_file.clone());
    let checks = Checks {
        peer: Check::App(peer.url.clone()),
        local: Check::App(node.url.clone()),
        data: config.monitor.data.as_ref().map(Check::from),
        nic: node.nic.clone(),
        netlink,
        data_prober: Prober::with_identity(
            config.monitor.data_probe.timeout,
            config.monitor.ca_file.as_deref(),
            config.monitor.client_cert.as_deref(),
            config.monitor.expect.clone(),
        )?,
    };
    let mut sigterm = signal(SignalKind::terminate()).map_err(RuntimeError::Signal)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(RuntimeError::Signal)?;
    let mut core = Core::new(settings);
    core.handle_input(now(), Input::Started { vip_present });

    loop {
        while let Some(action) = core.poll_action() {
            match action {
                Action::Exit => {
                    drop(effect_tx);
                    let _ = worker.await;
                    receiver.abort();
                    watcher.abort();
                    control.abort();
                    if let Some(api) = &api {
                        api.abort();
                    }
                    let _ = std::fs::remove_file(&socket_path);
                    info!("released everything; exiting");
                    return Ok(());
                }
                Action::SendHeartbeat(hb) => wire.send(&hb),
                Action::Notify(event) => {
                    if notifier.wants(event.kind) {
                        let at = now();
                        let report = report::build(&config, me, &core.status(at), at);
                        let table = report::render(&report);
                        let envelope = crate::notify::Envelope::new(
                            &event, &node.name, &peer.name, report, table,
                        );
                        notifier.send(event.kind, &event.cause, envelope);
                    }
                }
                Action::Probe(target) => spawn_probe(&prober, &checks, target, &input_tx, &metrics),
                other => {
                    // The worker lives as long as `effect_tx`; a send can
                    // only fail if it panicked, which it does not.
                    let _ = effect_tx.send(other);
                }
            }
        }
        let status = core.status(now());
        metrics.update(&status, &node.name, &peer.name);
        role.update(status.state.wire().holding());
        let deadline = core.poll_timeout().map(Instant::from_std);
        tokio::select! {
            Some(input) = inputs.recv() => core.handle_input(now(), input),
            Some(req) = control_rx.recv() => {
                let response = answer(&mut core, &config, me, &state_path, req.request, &req.who);
                let _ = req.reply.send(response);
            }
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

/// Answers a control request from the core itself; an admin command is an
/// input to the core, and a change to Disabled or maintenance is saved.
fn answer(
    core: &mut Core,
    config: &Config,
    me: usize,
    state_path: &std::path::Path,
    request: Request,
    who: &str,
) -> Response {
    let at = now();
    let (ok, mut message) = match request.admin() {
        None => (true, String::new()),
        Some((cmd, force)) => {
            info!(%who, ?cmd, force, "admin request");
            match core.handle_admin(at, cmd, force) {
                Ok(done) => (true, done),
                Err(why) => (false, why),
            }
        }
    };
    let status = core.status(at);
    if ok && request.admin().is_some() {
        let persisted = state_file::Persisted {
            disabled: status.disabled,
            maintenance: status.maintenance,
        };
        if let Err(e) = state_file::save(state_path, persisted) {
            tracing::error!(error = %e, "cannot save the administrator's settings");
            message.push_str(&format!(" (warning: not saved: {e})"));
        }
    }
    Response {
        ok,
        message,
        status: Some(report::build(config, me, &status, at)),
    }
}

/// Raises the limit on open files, and warns when what is left after the
/// listeners' caps is too small a reserve for the daemon's own work.
fn open_descriptor_limit() {
    use crate::control::limits::{
        listener_descriptors, raise_descriptor_limit, RESERVED_DESCRIPTORS,
    };
    match raise_descriptor_limit() {
        Ok(limit) if limit < listener_descriptors() + RESERVED_DESCRIPTORS => tracing::warn!(
            limit,
            wanted = listener_descriptors() + RESERVED_DESCRIPTORS,
            "the open-file limit is low; raise LimitNOFILE"
        ),
        Ok(limit) => info!(limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
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
    /// The data service has its own time limit.
    data_prober: Prober,
}

fn spawn_probe(
    prober: &Prober,
    checks: &Checks,
    target: Target,
    tx: &mpsc::UnboundedSender<Input>,
    metrics: &Arc<Metrics>,
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
    let prober = if target == Target::Data {
        &checks.data_prober
    } else {
        prober
    };
    let (prober, netlink, nic, tx) = (
        prober.clone(),
        checks.netlink.clone(),
        checks.nic.clone(),
        tx.clone(),
    );
    let metrics = metrics.clone();
    tokio::spawn(async move {
        let started = now();
        let mut outcome: ProbeResult = Ok(());
        if nic_first {
            outcome = nic_usable(&netlink, &nic).await.map_err(Into::into);
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
        metrics.probe_took(target, now().saturating_duration_since(started));
        tracing::trace!(?target, ?outcome, "probe done");
        let input = match outcome {
            // Out of descriptors or memory: this node cannot judge, which
            // must never read as "the peer failed".
            Err(failure) if failure.local => Input::ProbeNotRun {
                target,
                started,
                why: failure.reason,
            },
            outcome => Input::Probed {
                target,
                started,
                outcome: outcome.map_err(|f| f.reason),
            },
        };
        let _ = tx.send(input);
    });
}

/// Is our NIC administratively up with carrier?
async fn nic_usable(netlink: &Netlink, nic: &str) -> Result<(), String> {
    let link = netlink.link(nic).await.map_err(|e| e.to_string())?;
    crate::io::netlink::nic_usable(nic, link.admin_up, link.carrier)
}
