//! Raw configuration → [`Config`]: types, defaults and the rules that span
//! several keys (one primary, unique names, the VIP inside every node's
//! subnet, timeout < interval ≤ grace). Never panics on any input.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use super::locate::{Locator, Seg};
use super::raw::{RawConfig, RawNetmask, RawNode};
use super::{
    Announce, Api, Application, Cluster, Config, Control, DataService, Email, Expect, Failback,
    HeartbeatConfig, Hook, Monitor, Node, Notify, Problem, Role, SmtpSecurity, Url, Webhook,
    DEFAULT_SOCKET, DEFAULT_STATE_FILE,
};

const DEFAULT_PREFIX: u8 = 24;
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Three minutes, like the failover modules understudy replaces.
const DEFAULT_GRACE: Duration = Duration::from_secs(180);
const DEFAULT_RISE: u32 = 2;
const DEFAULT_APP_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_ANNOUNCE_COUNT: u32 = 5;
const DEFAULT_ANNOUNCE_INTERVAL: Duration = Duration::from_millis(500);
const DEFAULT_PROBE: Duration = Duration::from_millis(300);
const DEFAULT_HEARTBEAT_PORT: u16 = 7046;
const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
const DEFAULT_FAILBACK_HOLD: Duration = Duration::from_secs(300);
/// Restarts in place of a failed application while no peer can serve.
const DEFAULT_RESTART_ATTEMPTS: u32 = 3;
const DEFAULT_RESTART_BACKOFF: Duration = Duration::from_secs(2);
/// Pacemaker's migration-threshold and failure-timeout are the model: six
/// automatic moves in ten minutes is a pair fighting itself, not failing
/// over (at the default grace of 3 minutes, failures cannot move it that
/// often).
const DEFAULT_FLAP_LIMIT: u32 = 6;
const DEFAULT_FLAP_WINDOW: Duration = Duration::from_secs(600);
/// The longest duration any key accepts: seven days. Longer values mean a
/// typo, and every instant the core computes (`now + grace × 2`) must stay
/// far from overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Linux limits interface names to 15 bytes (IFNAMSIZ - 1).
const MAX_NIC_NAME: usize = 15;

/// Collects problems while reading values, each tagged with its place.
struct Checker {
    locator: Locator,
    problems: Vec<Problem>,
}

impl Checker {
    fn report(&mut self, path: &[Seg], message: impl Into<String>) {
        let line = self.locator.line(path);
        self.problems
            .push(Problem::new(line, key_name(path), message));
    }

    fn required<T: Clone>(&mut self, value: &Option<T>, path: &[Seg]) -> Option<T> {
        if value.is_none() {
            self.report(path, "is required");
        }
        value.clone()
    }

    fn duration(&mut self, value: &Option<String>, path: &[Seg], default: Duration) -> Duration {
        let Some(text) = value else { return default };
        match humantime::parse_duration(text.trim()) {
            Ok(d) if d > MAX_DURATION => {
                self.report(
                    path,
                    format!("{text:?} is too long; the longest accepted is 7 days (\"7d\")"),
                );
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.report(
                    path,
                    format!(
                        "{text:?} is not a duration ({e}); write e.g. \"200ms\", \"10s\", \"3m\""
                    ),
                );
                default
            }
        }
    }

    fn count(&mut self, value: Option<i64>, path: &[Seg], default: u32, range: (u32, u32)) -> u32 {
        let Some(n) = value else { return default };
        if n < i64::from(range.0) || n > i64::from(range.1) {
            self.report(
                path,
                format!("{n} is out of range (allowed {}..={})", range.0, range.1),
            );
            return default;
        }
        n as u32
    }
}

/// Readable key for a path: `cluster.vip`, `node #2.url`.
fn key_name(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!(" #{}", i + 1)),
        }
    }
    out
}

pub fn validate(text: &str) -> Result<Config, Vec<Problem>> {
    let locator = Locator::new(text);
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let line = e.span().map(|s| locator.line_at(s.start));
            return Err(vec![Problem::new(line, "", e.message().trim().to_owned())]);
        }
    };
    let mut ck = Checker {
        locator,
        problems: Vec::new(),
    };

    let raw_cluster = raw.cluster.unwrap_or_default();
    let c = |k| [Seg::Key("cluster"), Seg::Key(k)];
    let name = ck
        .required(&raw_cluster.name, &c("name"))
        .unwrap_or_default();
    if raw_cluster.name.as_deref() == Some("") {
        ck.report(&c("name"), "must not be empty");
    }
    let vip = ck
        .required(&raw_cluster.vip, &c("vip"))
        .and_then(|v| parse_v4(&mut ck, &v, &c("vip")));
    let prefix_len = match &raw_cluster.netmask {
        None => DEFAULT_PREFIX,
        Some(mask) => parse_netmask(mask).unwrap_or_else(|msg| {
            ck.report(&c("netmask"), msg);
            DEFAULT_PREFIX
        }),
    };
    if let Some(alias) = &raw_cluster.alias {
        if Url::parse(alias).is_err() {
            ck.report(&c("alias"), format!("{alias:?} is not a URL"));
        }
    }

    if let Some(v) = vip {
        if let Some(which) = network_or_broadcast(v, prefix_len) {
            ck.report(
                &c("vip"),
                format!("{v} is the {which} address of {v}/{prefix_len}; hosts cannot use it"),
            );
        }
    }
    let nodes = validate_nodes(&mut ck, raw.node.as_deref().unwrap_or(&[]), vip, prefix_len);

    let m = raw.monitor.unwrap_or_default();
    let mk = |k| [Seg::Key("monitor"), Seg::Key(k)];
    let interval = ck.duration(&m.interval, &mk("interval"), DEFAULT_INTERVAL);
    let timeout = ck.duration(&m.timeout, &mk("timeout"), DEFAULT_TIMEOUT);
    let grace = ck.duration(&m.grace, &mk("grace"), DEFAULT_GRACE);
    let rise = ck.count(m.rise, &mk("rise"), DEFAULT_RISE, (1, 100));
    if interval.is_zero() {
        ck.report(&mk("interval"), "must be greater than zero");
    }
    if timeout.is_zero() {
        ck.report(&mk("timeout"), "must be greater than zero");
    }
    if timeout >= interval {
        ck.report(
            &mk("timeout"),
            format!(
                "must be shorter than the interval ({:?} >= {:?})",
                timeout, interval
            ),
        );
    }
    if grace < interval {
        ck.report(
            &mk("grace"),
            format!(
                "must be at least the interval ({:?} < {:?})",
                grace, interval
            ),
        );
    }
    let fall = ck.count(m.fall, &mk("fall"), 1, (1, 100));
    let dwell = ck.duration(&m.dwell, &mk("dwell"), Duration::ZERO);
    let flap_limit = ck.count(
        m.flap_limit,
        &mk("flap_limit"),
        DEFAULT_FLAP_LIMIT,
        (0, 1000),
    );
    let flap_window = ck.duration(&m.flap_window, &mk("flap_window"), DEFAULT_FLAP_WINDOW);
    if flap_limit > 0 && flap_window.is_zero() {
        ck.report(
            &mk("flap_window"),
            "must be greater than zero (or set flap_limit = 0)",
        );
    }
    let data_probe = super::ProbeTiming {
        interval: ck.duration(&m.data_interval, &mk("data_interval"), interval),
        timeout: ck.duration(&m.data_timeout, &mk("data_timeout"), timeout),
        rise: ck.count(m.data_rise, &mk("data_rise"), rise, (1, 100)),
        fall: ck.count(m.data_fall, &mk("data_fall"), fall, (1, 100)),
    };
    let own_data_timing = m.data_interval.is_some() || m.data_timeout.is_some();
    if own_data_timing && data_probe.timeout >= data_probe.interval {
        ck.report(&mk("data_timeout"), "must be shorter than data_interval");
    }
    let data_query = m.data_query.clone().unwrap_or_else(|| "SELECT 1".into());
    let data = m.data.as_deref().and_then(|d| match parse_data_service(d) {
        Ok(DataService::Postgres { conn, .. }) => Some(DataService::Postgres {
            conn,
            query: data_query.clone(),
        }),
        Ok(ds) => Some(ds),
        Err(msg) => {
            ck.report(&mk("data"), msg);
            None
        }
    });

    let mut expect = Expect::default();
    if let Some(raw_status) = &m.expect_status {
        match parse_status_range(raw_status) {
            Ok(range) => expect.status = range,
            Err(msg) => ck.report(&mk("expect_status"), msg),
        }
    }
    expect.body = m.expect_body.clone();
    if let Some(re) = &m.expect_body_regex {
        match regex::Regex::new(re) {
            Ok(r) => expect.body_regex = Some(r),
            Err(e) => ck.report(
                &mk("expect_body_regex"),
                format!("not a regular expression: {e}"),
            ),
        }
    }
    if let Some(h) = &m.expect_header {
        let (name, value) = match h.split_once(':') {
            Some((n, v)) => (n.trim(), Some(v.trim().to_owned())),
            None => (h.trim(), None),
        };
        if name.is_empty() || reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            ck.report(
                &mk("expect_header"),
                format!("{h:?}: write \"Name\" or \"Name: value\""),
            );
        } else {
            expect.header = Some((name.to_owned(), value));
        }
    }
    let signal = super::MaintenanceSignal {
        status: m.maintenance_status.and_then(|n| match u16::try_from(n) {
            Ok(code) if (100..=599).contains(&code) => Some(code),
            _ => {
                ck.report(
                    &mk("maintenance_status"),
                    format!("{n} is not an HTTP status"),
                );
                None
            }
        }),
        header: m.maintenance_header.clone(),
        body: m.maintenance_body.clone(),
    };
    if signal.status.is_some() || signal.header.is_some() || signal.body.is_some() {
        expect.maintenance = Some(signal);
    }
    let a = raw.application.unwrap_or_default();
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
    let unit_cmd = |verb: &str| unit.map(|u| format!("systemctl {verb} '{u}'"));
    let application = Application {
        start: a
            .start
            .clone()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| unit_cmd("start")),
        stop: a
            .stop
            .clone()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| unit_cmd("stop")),
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

    let n = raw.announce.unwrap_or_default();
    let nk = |k| [Seg::Key("announce"), Seg::Key(k)];
    let announce = Announce {
        count: ck.count(n.count, &nk("count"), DEFAULT_ANNOUNCE_COUNT, (1, 100)),
        interval: ck.duration(&n.interval, &nk("interval"), DEFAULT_ANNOUNCE_INTERVAL),
        probe: ck.duration(&n.probe, &nk("probe"), DEFAULT_PROBE),
        refresh: None,
    };
    if announce.probe > Duration::from_secs(10) {
        ck.report(
            &nk("probe"),
            "must be at most 10s (it delays the primary's start)",
        );
    }

    let refresh = ck.duration(&n.refresh, &nk("refresh"), Duration::ZERO);
    let announce = Announce {
        refresh: (!refresh.is_zero()).then_some(refresh),
        ..announce
    };

    let h = raw.heartbeat.unwrap_or_default();
    let hk = |k| [Seg::Key("heartbeat"), Seg::Key(k)];
    let port = ck.count(
        h.port,
        &hk("port"),
        u32::from(DEFAULT_HEARTBEAT_PORT),
        (1, 65535),
    ) as u16;
    let hb_interval = ck.duration(&h.interval, &hk("interval"), DEFAULT_HEARTBEAT_INTERVAL);
    let peer_timeout = ck.duration(&h.peer_timeout, &hk("peer_timeout"), hb_interval * 3);
    let startup = ck.duration(&h.startup, &hk("startup"), peer_timeout);
    if hb_interval.is_zero() {
        ck.report(&hk("interval"), "must be greater than zero");
    }
    if peer_timeout < hb_interval * 2 {
        ck.report(
            &hk("peer_timeout"),
            format!("must be at least twice the heartbeat interval ({peer_timeout:?} < 2 x {hb_interval:?})"),
        );
    }
    let secret_file = ck
        .required(&h.secret_file, &hk("secret_file"))
        .unwrap_or_default();

    let f = raw.failback.unwrap_or_default();
    let fk = |k| [Seg::Key("failback"), Seg::Key(k)];
    let hold = ck.duration(&f.hold, &fk("hold"), DEFAULT_FAILBACK_HOLD);
    let failback = match f.mode.as_deref() {
        None | Some("manual") => Failback::Manual,
        Some("automatic") => Failback::Automatic {
            hold,
            drain_timeout: ck.duration(
                &f.drain_timeout,
                &fk("drain_timeout"),
                Duration::from_secs(30),
            ),
        },
        Some(other) => {
            ck.report(
                &fk("mode"),
                format!("{other:?} is not a failback mode; use \"manual\" or \"automatic\""),
            );
            Failback::Manual
        }
    };

    let control = validate_control(&mut ck, raw.control.unwrap_or_default());
    let notify = validate_notify(&mut ck, raw.notify.unwrap_or_default());
    let api = raw.api.and_then(|a| {
        let k = |key| [Seg::Key("api"), Seg::Key(key)];
        let listen = ck.required(&a.listen, &k("listen"))?;
        let listen = match listen.parse() {
            Ok(addr) => addr,
            Err(_) => {
                ck.report(&k("listen"), format!("{listen:?} is not ADDRESS:PORT"));
                return None;
            }
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
    });

    if !ck.problems.is_empty() {
        return Err(ck.problems);
    }
    let (Some(vip), Some(nodes)) = (vip, nodes) else {
        return Err(vec![Problem::new(None, "", "incomplete configuration")]);
    };
    Ok(Config {
        cluster: Cluster {
            name,
            vip,
            prefix_len,
            alias: raw_cluster.alias,
        },
        nodes,
        monitor: Monitor {
            interval,
            timeout,
            grace,
            rise,
            data,
            ca_file: m.ca_file.map(PathBuf::from),
            client_cert: m.client_cert.map(PathBuf::from),
            expect,
            fall,
            data_probe,
            dwell,
            flap_limit,
            flap_window,
        },
        application,
        announce,
        heartbeat: HeartbeatConfig {
            port,
            interval: hb_interval,
            peer_timeout,
            startup,
            secret_file: PathBuf::from(secret_file),
        },
        failback,
        control,
        api,
        notify,
        checksum: crate::proto::heartbeat::config_checksum(text),
    })
}

/// The control socket and state file paths: an empty path would make `run`
/// fail long after check-config said yes.
fn validate_control(ck: &mut Checker, raw: super::raw::RawControl) -> Control {
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

fn validate_nodes(
    ck: &mut Checker,
    raw: &[RawNode],
    vip: Option<Ipv4Addr>,
    prefix_len: u8,
) -> Option<Vec<Node>> {
    if raw.len() != 2 {
        ck.report(
            &[Seg::Key("node")],
            format!(
                "exactly two [[node]] entries are needed (a primary and a secondary); found {}",
                raw.len()
            ),
        );
    }
    let mut nodes = Vec::new();
    let mut names = HashSet::new();
    let mut addresses = HashSet::new();
    for (i, r) in raw.iter().enumerate() {
        let k = |key| [Seg::Key("node"), Seg::Index(i), Seg::Key(key)];
        let name = ck.required(&r.name, &k("name"));
        if let Some(name) = &name {
            if name.is_empty() {
                ck.report(&k("name"), "must not be empty");
            } else if !names.insert(name.clone()) {
                ck.report(&k("name"), format!("{name:?} is used by another node"));
            }
        }
        let role = ck
            .required(&r.role, &k("role"))
            .and_then(|role| match role.as_str() {
                "primary" => Some(Role::Primary),
                "secondary" => Some(Role::Secondary),
                other => {
                    ck.report(
                        &k("role"),
                        format!("{other:?} is not a role; use \"primary\" or \"secondary\""),
                    );
                    None
                }
            });
        let nic = ck.required(&r.nic, &k("nic"));
        if let Some(nic) = &nic {
            if nic.is_empty() || nic.len() > MAX_NIC_NAME || nic.contains(['/', ' ']) {
                ck.report(&k("nic"), format!("{nic:?} is not a valid interface name"));
            }
        }
        let address = ck
            .required(&r.address, &k("address"))
            .and_then(|a| parse_v4(ck, &a, &k("address")));
        if let Some(address) = address {
            if !addresses.insert(address) {
                ck.report(&k("address"), format!("{address} is used by another node"));
            }
            if let Some(vip) = vip {
                if address == vip {
                    ck.report(
                        &k("address"),
                        "must differ from the common IP (cluster.vip)",
                    );
                } else if !super::subnet_contains(IpAddr::V4(address), prefix_len, IpAddr::V4(vip))
                {
                    ck.report(
                        &k("address"),
                        format!("the common IP {vip}/{prefix_len} is not in this node's subnet ({address}/{prefix_len})"),
                    );
                }
            }
        }
        let url = ck
            .required(&r.url, &k("url"))
            .and_then(|u| match parse_http_url(&u) {
                Ok(url) => Some(url),
                Err(msg) => {
                    ck.report(&k("url"), msg);
                    None
                }
            });
        if let (Some(name), Some(role), Some(nic), Some(address), Some(url)) =
            (name, role, nic, address, url)
        {
            nodes.push(Node {
                name,
                role,
                nic,
                address,
                url,
            });
        }
    }
    let primaries = raw
        .iter()
        .filter(|r| r.role.as_deref() == Some("primary"))
        .count();
    if !raw.is_empty() && primaries != 1 {
        ck.report(
            &[Seg::Key("node")],
            format!("exactly one node must have role = \"primary\"; found {primaries}"),
        );
    }
    (nodes.len() == raw.len() && raw.len() == 2).then_some(nodes)
}

fn validate_notify(ck: &mut Checker, n: super::raw::RawNotify) -> Notify {
    use crate::core::EventKind;
    let k = |key| [Seg::Key("notify"), Seg::Key(key)];
    let events = match &n.events {
        None => EventKind::ALL
            .into_iter()
            .filter(|e| e.on_by_default())
            .collect(),
        Some(names) => names
            .iter()
            .filter_map(|name| {
                let kind = EventKind::from_name(name);
                if kind.is_none() {
                    let known: Vec<&str> = EventKind::ALL.iter().map(|e| e.name()).collect();
                    ck.report(
                        &k("events"),
                        format!("{name:?} is not an event; known: {}", known.join(", ")),
                    );
                }
                kind
            })
            .collect(),
    };
    let dedup_window = ck.duration(
        &n.dedup_window,
        &k("dedup_window"),
        Duration::from_secs(600),
    );
    let queue = ck.count(n.queue, &k("queue"), 64, (1, 10_000)) as usize;
    let email = n.email.and_then(|e| {
        let ek = |key| [Seg::Key("notify"), Seg::Key("email"), Seg::Key(key)];
        let server = ck.required(&e.server, &ek("server"))?;
        let security = match e.security.as_deref().unwrap_or("starttls") {
            "starttls" => SmtpSecurity::StartTls,
            "tls" => SmtpSecurity::Tls,
            "plain" => SmtpSecurity::Plain,
            other => {
                ck.report(&ek("security"), format!("{other:?}: use \"starttls\", \"tls\" or \"plain\""));
                SmtpSecurity::StartTls
            }
        };
        let loopback = server == "localhost" || server.parse::<IpAddr>().is_ok_and(|a| a.is_loopback());
        if security == SmtpSecurity::Plain && !loopback && e.allow_plain != Some(true) {
            ck.report(
                &ek("security"),
                "plain SMTP sends mail (and any password) in clear; it is allowed only to a loopback server unless allow_plain = true",
            );
        }
        let default_port = match security {
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Plain => 25,
        };
        let port = ck.count(e.port, &ek("port"), default_port, (1, 65535)) as u16;
        let from = ck.required(&e.from, &ek("from"))?;
        let to = ck.required(&e.to, &ek("to"))?;
        for addr in std::iter::once(&from).chain(&to) {
            if addr.parse::<lettre::message::Mailbox>().is_err() {
                ck.report(&ek(if *addr == from { "from" } else { "to" }), format!("{addr:?} is not a mail address"));
            }
        }
        if to.is_empty() {
            ck.report(&ek("to"), "needs at least one recipient");
        }
        if e.user.is_some() != e.password_file.is_some() {
            ck.report(&ek("password_file"), "user and password_file go together");
        }
        Some(Email {
            server,
            port,
            security,
            user: e.user,
            password_file: e.password_file.map(PathBuf::from),
            from,
            to,
            timeout: ck.duration(&e.timeout, &ek("timeout"), Duration::from_secs(10)),
            retries: ck.count(e.retries, &ek("retries"), 2, (0, 10)),
        })
    });
    let webhook = n.webhook.and_then(|w| {
        let wk = |key| [Seg::Key("notify"), Seg::Key("webhook"), Seg::Key(key)];
        let urls: Vec<Url> = ck
            .required(&w.urls, &wk("urls"))?
            .iter()
            .filter_map(|u| match parse_http_url(u) {
                Ok(url) => Some(url),
                Err(msg) => {
                    ck.report(&wk("urls"), msg);
                    None
                }
            })
            .collect();
        Some(Webhook {
            urls,
            timeout: ck.duration(&w.timeout, &wk("timeout"), Duration::from_secs(5)),
            retries: ck.count(w.retries, &wk("retries"), 3, (0, 10)),
            secret_file: w.secret_file.map(PathBuf::from),
        })
    });
    let hook = n.hook.and_then(|h| {
        let hk = |key| [Seg::Key("notify"), Seg::Key("hook"), Seg::Key(key)];
        Some(Hook {
            commands: ck.required(&h.commands, &hk("commands"))?,
            timeout: ck.duration(&h.timeout, &hk("timeout"), Duration::from_secs(10)),
        })
    });
    Notify {
        events,
        dedup_window,
        queue,
        email,
        webhook,
        hook,
    }
}

/// Is `ip` the network or broadcast address of its /`prefix_len` subnet?
/// (/31 and /32 have neither: RFC 3021.)
fn network_or_broadcast(ip: Ipv4Addr, prefix_len: u8) -> Option<&'static str> {
    if prefix_len >= 31 {
        return None;
    }
    let host_bits = u32::MAX >> prefix_len;
    match u32::from(ip) & host_bits {
        0 => Some("network"),
        h if h == host_bits => Some("broadcast"),
        _ => None,
    }
}

fn parse_v4(ck: &mut Checker, text: &str, path: &[Seg]) -> Option<Ipv4Addr> {
    match text.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => Some(a),
        Ok(IpAddr::V6(_)) => {
            ck.report(
                path,
                format!("{text:?}: IPv6 addresses are not supported yet"),
            );
            None
        }
        Err(_) => {
            ck.report(path, format!("{text:?} is not an IPv4 address"));
            None
        }
    }
}

/// Accepts `24`, `"24"`, `"/24"` and `"255.255.255.0"`.
fn parse_netmask(raw: &RawNetmask) -> Result<u8, String> {
    let prefix = |n: i64| {
        if (1..=32).contains(&n) {
            Ok(n as u8)
        } else {
            Err(format!("prefix length {n} is out of range (1..=32)"))
        }
    };
    match raw {
        RawNetmask::Prefix(n) => prefix(*n),
        RawNetmask::Text(t) => {
            let t = t.trim().trim_start_matches('/');
            if let Ok(n) = t.parse::<i64>() {
                return prefix(n);
            }
            let mask: Ipv4Addr = t.parse().map_err(|_| {
                format!("{t:?} is neither a netmask (255.255.255.0) nor a prefix length (24)")
            })?;
            let bits = u32::from(mask);
            let len = bits.leading_ones();
            if bits.checked_shl(len).unwrap_or(0) != 0 || len == 0 {
                return Err(format!("{t} is not a contiguous netmask"));
            }
            Ok(len as u8)
        }
    }
}

fn parse_http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "{text:?} must be an http:// or https:// URL with a host"
        ));
    }
    Ok(url)
}

/// `200`, `"200"` or `"200-299"`.
fn parse_status_range(raw: &super::raw::RawStatus) -> Result<(u16, u16), String> {
    let code = |n: i64| {
        if (100..=599).contains(&n) {
            Ok(n as u16)
        } else {
            Err(format!("{n} is not an HTTP status (100..=599)"))
        }
    };
    match raw {
        super::raw::RawStatus::Code(n) => code(*n).map(|c| (c, c)),
        super::raw::RawStatus::Text(t) => {
            let parse = |s: &str| {
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("{t:?}: write 200 or \"200-299\""))
            };
            match t.split_once('-') {
                Some((lo, hi)) => {
                    let (lo, hi) = (code(parse(lo)?)?, code(parse(hi)?)?);
                    if lo > hi {
                        return Err(format!("{t:?}: the range is empty"));
                    }
                    Ok((lo, hi))
                }
                None => code(parse(t)?).map(|c| (c, c)),
            }
        }
    }
}

fn parse_data_service(text: &str) -> Result<DataService, String> {
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        let url =
            Url::parse(text).map_err(|e| format!("{text:?} is not a PostgreSQL URL ({e})"))?;
        if url.host().is_none() {
            return Err(format!(
                "{text:?}: write postgres://USER@HOST[:PORT]/DATABASE"
            ));
        }
        return Ok(DataService::Postgres {
            conn: text.to_owned(),
            query: String::new(),
        });
    }
    if let Some(cmd) = text.strip_prefix("exec:") {
        if cmd.trim().is_empty() {
            return Err(format!("{text:?}: write exec:COMMAND"));
        }
        return Ok(DataService::Command(cmd.trim().to_owned()));
    }
    if let Some(rest) = text.strip_prefix("tcp://") {
        let rest = rest.trim_end_matches('/');
        let ok = rest.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !ok {
            return Err(format!("{text:?}: write tcp://HOST:PORT"));
        }
        return Ok(DataService::Tcp(rest.to_owned()));
    }
    if text.starts_with("http://") || text.starts_with("https://") {
        return parse_http_url(text).map(DataService::Http);
    }
    Err(format!(
        "{text:?}: the data service must be tcp://HOST:PORT or an http(s):// URL"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const GOOD: &str = r#"
[cluster]
name = "helpdesk"
vip = "192.0.2.10"

[[node]]
name = "m1"
role = "primary"
nic = "eth0"
address = "192.0.2.11"
url = "http://192.0.2.11/"

[[node]]
name = "m2"
role = "secondary"
nic = "eth0"
address = "192.0.2.12"
url = "http://192.0.2.12/"

[heartbeat]
secret_file = "/etc/understudy/secret"
"#;

    fn problems(text: &str) -> Vec<Problem> {
        validate(text).expect_err("should be rejected")
    }

    #[test]
    fn good_config_gets_defaults() {
        let c = validate(GOOD).unwrap();
        assert_eq!(c.cluster.prefix_len, 24);
        assert_eq!(c.monitor.grace, Duration::from_secs(180));
        assert_eq!(c.monitor.rise, 2);
        assert_eq!(c.nodes[1].role, Role::Secondary);
    }

    #[test]
    fn netmask_forms() {
        assert_eq!(
            parse_netmask(&RawNetmask::Text("255.255.255.0".into())),
            Ok(24)
        );
        assert_eq!(
            parse_netmask(&RawNetmask::Text("255.255.0.0".into())),
            Ok(16)
        );
        assert_eq!(parse_netmask(&RawNetmask::Text("/28".into())), Ok(28));
        assert_eq!(parse_netmask(&RawNetmask::Prefix(32)), Ok(32));
        assert!(parse_netmask(&RawNetmask::Text("255.0.255.0".into())).is_err());
        assert!(parse_netmask(&RawNetmask::Prefix(33)).is_err());
        assert!(parse_netmask(&RawNetmask::Text("0.0.0.0".into())).is_err());
    }

    #[test]
    fn every_problem_has_key_and_line() {
        let text = GOOD
            .replace("vip = \"192.0.2.10\"", "vip = \"192.0.2.300\"")
            .replace("role = \"secondary\"", "role = \"primary\"")
            .replace("url = \"http://192.0.2.12/\"", "url = \"ftp://x\"")
            + "[monitor]\ninterval = \"1s\"\ntimeout = \"2s\"\ngrace = \"soon\"\n";
        let text = text.replace(
            "[heartbeat]\nsecret_file",
            "[heartbeat]\npeer_timeout = \"1s\"\nsecret_file",
        );
        let p = problems(&text);
        let find = |key: &str| {
            p.iter()
                .find(|p| p.key == key)
                .unwrap_or_else(|| panic!("no {key} in {p:?}"))
        };
        assert_eq!(find("cluster.vip").line, Some(4));
        assert_eq!(find("node #2.url").line, Some(18));
        assert!(find("node").message.contains("exactly one"));
        assert_eq!(find("monitor.timeout").line, Some(25));
        assert_eq!(find("heartbeat.peer_timeout").line, Some(21));
        assert!(find("monitor.grace").message.contains("not a duration"));
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_located() {
        let p = problems(&GOOD.replace(
            "nic = \"eth0\"\naddress = \"192.0.2.12\"",
            "nic = \"eth0\"\nadress = \"192.0.2.12\"",
        ));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, Some(17));
        assert!(p[0].message.contains("adress"), "{p:?}");
        let p = problems(&format!("{GOOD}[announce]\ncount = \"five\"\n"));
        assert_eq!(p[0].line, Some(23));
    }

    #[test]
    fn vip_outside_subnet_is_rejected() {
        let p = problems(&GOOD.replace("address = \"192.0.2.12\"", "address = \"198.51.100.12\""));
        assert!(p[0].message.contains("not in this node's subnet"), "{p:?}");
    }

    #[test]
    fn data_service_forms() {
        assert_eq!(
            parse_data_service("tcp://db:5432"),
            Ok(DataService::Tcp("db:5432".into()))
        );
        assert!(parse_data_service("tcp://db").is_err());
        assert!(parse_data_service("https://db/health").is_ok());
        assert!(parse_data_service("postgres://understudy@db/helpdesk").is_ok());
        assert!(parse_data_service("mysql://db").is_err());
        assert_eq!(
            parse_data_service("exec:pg_isready -q"),
            Ok(DataService::Command("pg_isready -q".into()))
        );
        assert!(parse_data_service("exec: ").is_err());
    }

    #[test]
    fn notification_settings_are_checked() {
        let text = format!(
            "{GOOD}[notify]\nevents = [\"takeover\", \"tea_time\"]\n[notify.email]\nserver = \"198.51.100.25\"\nsecurity = \"plain\"\nfrom = \"a@example.com\"\nto = [\"not an address\"]\n"
        );
        let p = problems(&text);
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"notify.events"), "{p:?}");
        assert!(
            p.iter()
                .any(|p| p.key == "notify.email.security" && p.message.contains("loopback")),
            "{p:?}"
        );
        assert!(keys.contains(&"notify.email.to"), "{p:?}");
        let ok = format!(
            "{GOOD}[notify.email]\nserver = \"127.0.0.1\"\nsecurity = \"plain\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n"
        );
        let c = validate(&ok).unwrap();
        assert_eq!(c.notify.email.unwrap().port, 25);
        assert!(
            !c.notify
                .events
                .contains(&crate::core::EventKind::ProbeFailing),
            "off by default"
        );
    }

    #[test]
    fn durations_past_the_maximum_are_refused_with_their_line() {
        for (section, key, value) in [
            ("monitor", "grace", "10000000000000000000s"),
            ("heartbeat", "peer_timeout", "10000000000000000000s"),
            ("heartbeat", "startup", "10000000000000000000s"),
            ("heartbeat", "interval", "7000000000000000000s"),
            ("application", "ready_timeout", "10000000000000000000s"),
            ("monitor", "dwell", "8d"),
        ] {
            let text = if section == "heartbeat" {
                GOOD.replace(
                    "[heartbeat]\n",
                    &format!("[heartbeat]\n{key} = \"{value}\"\n"),
                )
            } else {
                format!("{GOOD}[{section}]\n{key} = \"{value}\"\n")
            };
            let p = problems(&text);
            let hit = p
                .iter()
                .find(|p| p.key == format!("{section}.{key}"))
                .unwrap_or_else(|| panic!("{section}.{key} = {value} accepted: {p:?}"));
            assert!(hit.message.contains("too long"), "{hit:?}");
            assert!(hit.line.is_some(), "{hit:?}");
        }
        let seven_days = format!("{GOOD}[monitor]\ngrace = \"7d\"\n");
        assert_eq!(validate(&seven_days).unwrap().monitor.grace, MAX_DURATION);
    }

    #[test]
    fn a_bad_dwell_is_reported_not_read_as_zero() {
        let p = problems(&format!("{GOOD}[monitor]\ndwell = \"soon\"\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "monitor.dwell");
        assert_eq!(p[0].line, Some(23));
    }

    #[test]
    fn vip_on_the_network_or_broadcast_address_is_refused() {
        for (vip, mask, word) in [
            ("192.0.2.0", "24", "network"),
            ("192.0.2.255", "24", "broadcast"),
            ("192.0.2.15", "28", "broadcast"),
        ] {
            let text = GOOD.replace(
                "vip = \"192.0.2.10\"",
                &format!("vip = \"{vip}\"\nnetmask = {mask}"),
            );
            let p = problems(&text);
            assert!(
                p.iter().any(|p| p.key == "cluster.vip"
                    && p.message.contains(word)
                    && p.line == Some(4)),
                "{vip}/{mask}: {p:?}"
            );
        }
        assert_eq!(
            network_or_broadcast("192.0.2.10".parse().unwrap(), 24),
            None
        );
        assert_eq!(network_or_broadcast("192.0.2.0".parse().unwrap(), 31), None);
    }

    #[test]
    fn empty_control_paths_are_refused() {
        for key in ["socket", "state_file"] {
            let p = problems(&format!("{GOOD}[control]\n{key} = \"\"\n"));
            assert_eq!(p.len(), 1, "{p:?}");
            assert_eq!(p[0].key, format!("control.{key}"));
            assert_eq!(p[0].line, Some(23));
        }
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            "[",
            "node = 3",
            "[[cluster]]",
            "[cluster]\nvip = 1",
            "\u{0}",
        ] {
            assert!(validate(text).is_err());
        }
    }
}
