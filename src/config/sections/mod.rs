//! One function per section of the file: each reads its raw section,
//! reports its problems (with line and key) into the [`Checker`] and
//! returns its part of the configuration with defaults filled in, whether
//! or not an earlier section had problems. `validate` assembles them.

mod fencing;
mod mirror;
mod monitor;
mod nodes;
mod notify;
mod vips;
mod witness;
mod witness_access;

use std::path::PathBuf;
use std::time::Duration;

use super::check::Checker;
use super::locate::Seg;
use super::raw::{
    RawAnnounce, RawApi, RawApplication, RawCluster, RawControl, RawFailback, RawHeartbeat,
    RawProcess,
};
use super::{
    Announce, Api, Application, Cluster, Control, Failback, HeartbeatConfig, Process, Url,
    DEFAULT_SOCKET, DEFAULT_STATE_FILE,
};
pub(super) use fencing::fencing;
pub(super) use mirror::mirrors;
pub(super) use monitor::monitor;
pub(super) use nodes::nodes;
pub(super) use notify::notify;
pub(super) use witness::{cluster_size, witness};

const DEFAULT_APP_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Restarts in place of a failed application while no peer can serve.
const DEFAULT_RESTART_ATTEMPTS: u32 = 3;
const DEFAULT_RESTART_BACKOFF: Duration = Duration::from_secs(2);
const DEFAULT_ANNOUNCE_COUNT: u32 = 5;
const DEFAULT_ANNOUNCE_INTERVAL: Duration = Duration::from_millis(500);
const DEFAULT_PROBE: Duration = Duration::from_millis(300);
const DEFAULT_HEARTBEAT_PORT: u16 = 7046;
const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// How long a restarting peer (`understudy restart`) may be silent.
const DEFAULT_RESTART_ALLOWANCE: Duration = Duration::from_secs(5);
/// The shortest heartbeat interval (README, Performance: the 20 ms soak
/// under full load kept every gap under ~30 ms).
const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(10);
const DEFAULT_FAILBACK_HOLD: Duration = Duration::from_secs(300);

/// `[cluster]`; `None` when the name or the VIP group is missing or
/// unusable. The group is returned on its own too, for the nodes' checks.
pub(super) fn cluster(
    ck: &mut Checker,
    raw: RawCluster,
) -> (Option<Cluster>, Option<Vec<super::Vip>>) {
    let c = |k| [Seg::Key("cluster"), Seg::Key(k)];
    let name = ck.required(&raw.name, &c("name"));
    if raw.name.as_deref() == Some("") {
        ck.report(&c("name"), "must not be empty");
    }
    let vips = vips::vips(ck, raw.vip.as_ref(), raw.netmask.as_ref());
    if let Some(alias) = &raw.alias {
        if Url::parse(alias).is_err() {
            ck.report(&c("alias"), format!("{alias:?} is not a URL"));
        }
    }
    let cluster = match (name, &vips) {
        (Some(name), Some(vips)) => Some(Cluster {
            name,
            vips: vips.clone(),
            alias: raw.alias,
            sync_config: raw.sync_config.unwrap_or(false),
        }),
        _ => None,
    };
    (cluster, vips)
}

/// Linux limits interface names to 15 bytes (IFNAMSIZ - 1).
const MAX_NIC_NAME: usize = 15;

/// Could the kernel have an interface by this name?
fn valid_nic_name(nic: &str) -> bool {
    !nic.is_empty() && nic.len() <= MAX_NIC_NAME && !nic.contains(['/', ' '])
}

/// `[application]`: the start and stop commands (or a systemd unit), their
/// limits, and the restarts in place.
pub(super) fn application(ck: &mut Checker, a: RawApplication) -> Application {
    let ak = |k| [Seg::Key("application"), Seg::Key(k)];
    // A systemd unit stands for its start and stop commands.
    let unit = a.unit.as_deref().map(str::trim).filter(|u| !u.is_empty());
    if let Some(u) = unit {
        if a.start.is_some() || a.stop.is_some() {
            ck.report(
                &ak("unit"),
                "give either unit or start/stop commands, not both",
            );
        }
        if !u
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._-:\\".contains(c))
        {
            ck.report(&ak("unit"), format!("{u:?} is not a systemd unit name"));
        }
    }
    let command = |given: &Option<String>, verb: &str| {
        given
            .clone()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| unit.map(|u| format!("systemctl {verb} '{u}'")))
    };
    let application = Application {
        start: command(&a.start, "start"),
        stop: command(&a.stop, "stop"),
        role_file: a.role_file.clone().map(PathBuf::from),
        timeout: ck.duration(&a.timeout, &ak("timeout"), DEFAULT_APP_TIMEOUT),
        ready_timeout: ck.duration(
            &a.ready_timeout,
            &ak("ready_timeout"),
            DEFAULT_READY_TIMEOUT,
        ),
        restart_attempts: ck.count(
            a.restart_attempts,
            &ak("restart_attempts"),
            DEFAULT_RESTART_ATTEMPTS,
            (0, 100),
        ),
        restart_backoff: ck.duration(
            &a.restart_backoff,
            &ak("restart_backoff"),
            DEFAULT_RESTART_BACKOFF,
        ),
    };
    if application.timeout.is_zero() {
        ck.report(&ak("timeout"), "must be greater than zero");
    }
    application
}

/// `[announce]`: gratuitous ARP and the look before a claim.
pub(super) fn announce(ck: &mut Checker, n: RawAnnounce) -> Announce {
    let nk = |k| [Seg::Key("announce"), Seg::Key(k)];
    let probe = ck.duration(&n.probe, &nk("probe"), DEFAULT_PROBE);
    if probe > Duration::from_secs(10) {
        ck.report(
            &nk("probe"),
            "must be at most 10s (it delays the primary's start)",
        );
    }
    let refresh = ck.duration(&n.refresh, &nk("refresh"), Duration::ZERO);
    Announce {
        count: ck.count(n.count, &nk("count"), DEFAULT_ANNOUNCE_COUNT, (1, 100)),
        interval: ck.duration(&n.interval, &nk("interval"), DEFAULT_ANNOUNCE_INTERVAL),
        probe,
        refresh: (!refresh.is_zero()).then_some(refresh),
    }
}

/// `[heartbeat]`: port, timing and the shared key.
pub(super) fn heartbeat(ck: &mut Checker, h: RawHeartbeat) -> HeartbeatConfig {
    let hk = |k| [Seg::Key("heartbeat"), Seg::Key(k)];
    let port = ck.count(
        h.port,
        &hk("port"),
        u32::from(DEFAULT_HEARTBEAT_PORT),
        (1, 65535),
    ) as u16;
    let interval = ck.duration(&h.interval, &hk("interval"), DEFAULT_HEARTBEAT_INTERVAL);
    let peer_timeout = ck.duration(&h.peer_timeout, &hk("peer_timeout"), interval * 3);
    let startup = ck.duration(&h.startup, &hk("startup"), peer_timeout);
    let restart_allowance = ck.duration(
        &h.restart_allowance,
        &hk("restart_allowance"),
        DEFAULT_RESTART_ALLOWANCE.max(peer_timeout),
    );
    if restart_allowance < peer_timeout {
        ck.report(
            &hk("restart_allowance"),
            format!(
                "must be at least peer_timeout ({restart_allowance:?} < {peer_timeout:?}): a restarting \
                 peer is given more time than a silent one, never less"
            ),
        );
    }
    if interval < MIN_HEARTBEAT_INTERVAL {
        ck.report(
            &hk("interval"),
            format!(
                "must be at least {MIN_HEARTBEAT_INTERVAL:?}: below it a loaded host's \
                 scheduling delays are a large part of the interval"
            ),
        );
    }
    if peer_timeout < interval * 2 {
        ck.report(
            &hk("peer_timeout"),
            format!("must be at least twice the heartbeat interval ({peer_timeout:?} < 2 x {interval:?})"),
        );
    }
    let secret_file = ck
        .required(&h.secret_file, &hk("secret_file"))
        .unwrap_or_default();
    HeartbeatConfig {
        port,
        interval,
        peer_timeout,
        restart_allowance,
        startup,
        secret_file: PathBuf::from(secret_file),
    }
}

/// `[failback]`: manual, or automatic after a hold and a drain.
pub(super) fn failback(ck: &mut Checker, f: RawFailback) -> Failback {
    let fk = |k| [Seg::Key("failback"), Seg::Key(k)];
    let hold = ck.duration(&f.hold, &fk("hold"), DEFAULT_FAILBACK_HOLD);
    let drain_timeout = ck.duration(
        &f.drain_timeout,
        &fk("drain_timeout"),
        Duration::from_secs(30),
    );
    match f.mode.as_deref() {
        None | Some("manual") => Failback::Manual,
        Some("automatic") => Failback::Automatic {
            hold,
            drain_timeout,
        },
        Some(other) => {
            ck.report(
                &fk("mode"),
                format!("{other:?} is not a failback mode; use \"manual\" or \"automatic\""),
            );
            Failback::Manual
        }
    }
}

/// `[control]`: the control socket and state file paths; an empty path
/// would make `run` fail long after check-config said yes.
pub(super) fn control(ck: &mut Checker, raw: RawControl) -> Control {
    let mut path = |value: Option<String>, key, default: &str| {
        let text = value.unwrap_or_else(|| default.into());
        if text.trim().is_empty() {
            ck.report(&[Seg::Key("control"), Seg::Key(key)], "must not be empty");
        }
        PathBuf::from(text)
    };
    Control {
        socket: path(raw.socket, "socket", DEFAULT_SOCKET),
        state_file: path(raw.state_file, "state_file", DEFAULT_STATE_FILE),
    }
}

/// `[process]`: real-time priority (1–99; 0 or absent: off) and locked
/// memory.
pub(super) fn process(ck: &mut Checker, raw: RawProcess) -> Process {
    let key = [Seg::Key("process"), Seg::Key("rt_priority")];
    let priority = ck.count(raw.rt_priority, &key, 0, (0, 99));
    Process {
        rt_priority: u8::try_from(priority).ok().filter(|p| *p > 0),
        lock_memory: raw.lock_memory.unwrap_or(false),
    }
}

/// `[api]`, when present: where it listens, its tokens, TLS.
pub(super) fn api(ck: &mut Checker, a: RawApi) -> Option<Api> {
    let k = |key| [Seg::Key("api"), Seg::Key(key)];
    let listen = ck.required(&a.listen, &k("listen"))?;
    let Ok(listen) = listen.parse() else {
        ck.report(&k("listen"), format!("{listen:?} is not ADDRESS:PORT"));
        return None;
    };
    let tokens_file = PathBuf::from(ck.required(&a.tokens_file, &k("tokens_file"))?);
    let tls = match (a.tls_cert, a.tls_key) {
        (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
        (None, None) => None,
        (Some(_), None) => {
            ck.report(&k("tls_key"), "is required with tls_cert");
            None
        }
        (None, Some(_)) => {
            ck.report(&k("tls_cert"), "is required with tls_key");
            None
        }
    };
    Some(Api {
        listen,
        tokens_file,
        tls,
    })
}
