//! The replay format: the core's inputs, settings, actions and status as
//! lines of text. The golden scenarios (`tests/golden/<scenario>/`) are
//! written in it, and the daemon logs every input in it (target
//! `understudy::replay`, at debug), so that a field incident becomes a
//! scenario: `tests/golden/log2input.py DAEMON.LOG > input.txt`.
//!
//! An input file is a header comment (what the scenario shows), one
//! `settings` line, then one step per line, at an instant since the start:
//!
//! ```text
//! # The secondary takes over from a primary whose host died.
//! settings role=secondary grace=1s
//! at 0ms started vip_present=false
//! at 100ms probe peer refused connection refused
//! at 1100ms tick
//! at 1100ms vip_checked holder=none err refused
//! at 1101ms complete
//! at 2s admin promote force
//! at 3s status
//! ```
//!
//! Before each step, every timer due by its instant fires, in order, as in
//! the daemon. `tick` only advances the clock; `complete` answers every
//! machine action still pending (and those that follow) with success;
//! `status` records a status snapshot. `#` starts a comment.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::clock::later;
use crate::config::{Failback, Role};
use crate::core::{
    Action, AdminCommand, AppRecovery, Holder, Input, LeaseAsk, LeaseReply, Outcome, PeerStatus,
    Settings, Status, StatusWord, Target,
};
use crate::proto::heartbeat::{Flags, Heartbeat, WireState};

/// One line of an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Input(Input),
    Admin { cmd: AdminCommand, force: bool },
    Tick,
    Complete,
    Status,
}

/// A step and the instant (since the start) it happens at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timed {
    pub at: Duration,
    pub step: Step,
}

/// The settings the golden scenarios start from; a `settings` line
/// changes some of them.
pub fn default_settings() -> Settings {
    Settings {
        name: "m2".into(),
        role: Role::Secondary,
        node_id: 1,
        preference: 1,
        peers: vec![scenario_peer(0)],
        interval: Duration::from_millis(100),
        grace: Duration::from_secs(1),
        rise: 2,
        fall: 1,
        data_interval: Duration::from_millis(100),
        data_rise: 2,
        data_fall: 1,
        watch_data: false,
        watch_nic: false,
        heartbeat_interval: Duration::from_millis(100),
        peer_timeout: Duration::from_millis(300),
        restart_allowance: Duration::from_secs(5),
        startup: Duration::ZERO,
        look_window: Duration::from_millis(100),
        failback: Failback::Manual,
        refresh: None,
        dwell: Duration::ZERO,
        flap_limit: 0,
        flap_window: Duration::from_secs(600),
        restart_attempts: 3,
        restart_backoff: Duration::from_millis(200),
        cluster_id: 7,
        config_checksum: 99,
        epoch: 1,
        disabled: false,
        maintenance: false,
        adopt: None,
        witness: None,
        watchdog: None,
        fence: false,
    }
}

/// Node `id` of the scenarios (and the simulation): named m1, m2, … in
/// the order of preference.
pub fn scenario_peer(id: u16) -> crate::core::PeerInfo {
    crate::core::PeerInfo {
        name: format!("m{}", id + 1),
        id,
        preference: id as u8,
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))
}

fn flag(text: &str) -> Result<bool, String> {
    match text {
        "true" | "on" | "yes" => Ok(true),
        "false" | "off" | "no" => Ok(false),
        _ => Err(format!("{text:?} is not true or false")),
    }
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Reads a `settings key=value …` line over the defaults.
pub fn parse_settings(line: &str) -> Result<Settings, String> {
    let mut s = default_settings();
    let rest = line
        .strip_prefix("settings")
        .ok_or_else(|| format!("expected a settings line, found {line:?}"))?;
    for pair in rest.split_whitespace() {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?}: write key=value"))?;
        set(&mut s, key, value)?;
    }
    Ok(s)
}

fn set(s: &mut Settings, key: &str, value: &str) -> Result<(), String> {
    match key {
        "role" => {
            s.role = match value {
                "primary" => Role::Primary,
                "secondary" => Role::Secondary,
                _ => return Err(format!("role {value:?}")),
            };
            let primary = s.role == Role::Primary;
            s.node_id = u16::from(!primary);
            s.preference = u8::from(!primary);
            s.name = if primary { "m1" } else { "m2" }.into();
            s.peers = vec![scenario_peer(u16::from(primary))];
        }
        // `node=3` (after `role=`, before `nodes=`): this node is m3.
        "node" => {
            let n: u16 = value.parse().map_err(|_| format!("node {value:?}"))?;
            let id = n.checked_sub(1).ok_or("node= counts from 1")?;
            s.node_id = id;
            s.name = format!("m{n}");
            s.preference = id as u8;
        }
        // `nodes=3` (after `role=`) makes a cluster of three, m1 to m3,
        // each preferred in the order of its number.
        "nodes" => {
            let n: u16 = value.parse().map_err(|_| format!("nodes {value:?}"))?;
            s.peers = (0..n)
                .filter(|&id| id != s.node_id)
                .map(scenario_peer)
                .collect();
        }
        "grace" => s.grace = duration(value)?,
        // `lease=2s` adds a witness (on_loss release); `on_loss=keep` after it.
        "lease" => {
            s.witness = Some(crate::core::LeaseSettings {
                length: duration(value)?,
                on_loss: crate::core::OnLoss::Release,
            })
        }
        "on_loss" => {
            let w = s.witness.as_mut().ok_or("on_loss needs lease= first")?;
            w.on_loss = match value {
                "release" => crate::core::OnLoss::Release,
                "keep" => crate::core::OnLoss::Keep,
                _ => return Err(format!("on_loss {value:?}")),
            };
        }
        "interval" => s.interval = duration(value)?,
        "data_interval" => s.data_interval = duration(value)?,
        "heartbeat" => s.heartbeat_interval = duration(value)?,
        "peer_timeout" => s.peer_timeout = duration(value)?,
        "restart_allowance" => s.restart_allowance = duration(value)?,
        "startup" => s.startup = duration(value)?,
        "look" => s.look_window = duration(value)?,
        "dwell" => s.dwell = duration(value)?,
        "flap_window" => s.flap_window = duration(value)?,
        "restart_backoff" => s.restart_backoff = duration(value)?,
        "refresh" => s.refresh = Some(duration(value)?).filter(|d| !d.is_zero()),
        "rise" => s.rise = value.parse().map_err(|_| format!("rise {value:?}"))?,
        "fall" => s.fall = value.parse().map_err(|_| format!("fall {value:?}"))?,
        "flap_limit" => {
            s.flap_limit = value.parse().map_err(|_| format!("flap_limit {value:?}"))?
        }
        "restart_attempts" => {
            s.restart_attempts = value
                .parse()
                .map_err(|_| format!("restart_attempts {value:?}"))?
        }
        "data" => s.watch_data = flag(value)?,
        "nic" => s.watch_nic = flag(value)?,
        "fence" => s.fence = flag(value)?,
        "disabled" => s.disabled = flag(value)?,
        "maintenance" => s.maintenance = flag(value)?,
        "adopt" => {
            s.adopt = match value {
                "-" => None,
                term => Some(term.parse().map_err(|_| format!("adopt {term:?}"))?),
            }
        }
        "failback" => s.failback = parse_failback(value)?,
        _ => return Err(format!("unknown setting {key:?}")),
    }
    Ok(())
}

/// `manual` or `automatic:HOLD:DRAIN`.
fn parse_failback(value: &str) -> Result<Failback, String> {
    let mut parts = value.split(':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("manual"), None, None) => Ok(Failback::Manual),
        (Some("automatic"), Some(hold), Some(drain)) => Ok(Failback::Automatic {
            hold: duration(hold)?,
            drain_timeout: duration(drain)?,
        }),
        _ => Err(format!(
            "failback {value:?}: manual or automatic:HOLD:DRAIN"
        )),
    }
}

/// The settings as a `settings` line (logged by the daemon at start).
pub fn format_settings(s: &Settings) -> String {
    let failback = match s.failback {
        Failback::Manual => "manual".to_owned(),
        Failback::Automatic {
            hold,
            drain_timeout,
        } => format!("automatic:{}:{}", ms(hold), ms(drain_timeout)),
    };
    format!(
        "settings role={} grace={} interval={} data_interval={} heartbeat={} peer_timeout={} restart_allowance={} startup={} \
         look={} rise={} fall={} data={} nic={} failback={failback} dwell={} flap_limit={} flap_window={} \
         restart_attempts={} restart_backoff={} refresh={} disabled={} maintenance={} adopt={}",
        s.role,
        ms(s.grace),
        ms(s.interval),
        ms(s.data_interval),
        ms(s.heartbeat_interval),
        ms(s.peer_timeout),
        ms(s.restart_allowance),
        ms(s.startup),
        ms(s.look_window),
        s.rise,
        s.fall,
        s.watch_data,
        s.watch_nic,
        ms(s.dwell),
        s.flap_limit,
        ms(s.flap_window),
        s.restart_attempts,
        ms(s.restart_backoff),
        ms(s.refresh.unwrap_or_default()),
        s.disabled,
        s.maintenance,
        s.adopt.map_or("-".to_owned(), |t| t.to_string()),
    ) + if s.fence { " fence=true" } else { "" }
        + &cluster_settings(s)
}

/// ` node=N nodes=M` beyond a pair (nothing for a pair).
fn cluster_settings(s: &Settings) -> String {
    if s.peers.len() < 2 {
        return String::new();
    }
    format!(" node={} nodes={}", s.node_id + 1, s.peers.len() + 1)
}

fn parse_target(text: &str) -> Result<Target, String> {
    Target::ALL
        .into_iter()
        .find(|t| t.name() == text)
        .ok_or_else(|| format!("target {text:?}: peer, local, data or nic"))
}

fn state_name(s: WireState) -> &'static str {
    match s {
        WireState::Starting => "starting",
        WireState::Passive => "passive",
        WireState::Claiming => "claiming",
        WireState::Active => "active",
        WireState::Releasing => "releasing",
        WireState::Stopped => "stopped",
    }
}

fn parse_state(text: &str) -> Result<WireState, String> {
    Ok(match text {
        "starting" => WireState::Starting,
        "passive" => WireState::Passive,
        "claiming" => WireState::Claiming,
        "active" => WireState::Active,
        "releasing" => WireState::Releasing,
        "stopped" => WireState::Stopped,
        _ => return Err(format!("heartbeat state {text:?}")),
    })
}

const FLAG_NAMES: [&str; 8] = [
    "app_ok",
    "data_ok",
    "nic_ok",
    "maintenance",
    "release_request",
    "deferring",
    "disabled",
    "restarting",
];

fn flag_values(f: Flags) -> [bool; 8] {
    [
        f.app_ok,
        f.data_ok,
        f.nic_ok,
        f.maintenance,
        f.release_request,
        f.deferring,
        f.disabled,
        f.restarting,
    ]
}

fn format_flags(f: Flags) -> String {
    let on: Vec<&str> = FLAG_NAMES
        .iter()
        .zip(flag_values(f))
        .filter_map(|(n, v)| v.then_some(*n))
        .collect();
    if on.is_empty() {
        "-".into()
    } else {
        on.join(",")
    }
}

fn parse_flags(text: &str) -> Result<Flags, String> {
    let mut f = Flags::default();
    for name in text.split(',').filter(|n| !n.is_empty() && *n != "-") {
        match name {
            "app_ok" => f.app_ok = true,
            "data_ok" => f.data_ok = true,
            "nic_ok" => f.nic_ok = true,
            "maintenance" => f.maintenance = true,
            "release_request" => f.release_request = true,
            "deferring" => f.deferring = true,
            "disabled" => f.disabled = true,
            "restarting" => f.restarting = true,
            _ => return Err(format!("flag {name:?}")),
        }
    }
    Ok(f)
}

/// `ok`, or `err REASON`.
fn format_outcome(o: &Outcome) -> String {
    match o {
        Ok(()) => "ok".into(),
        Err(why) => format!("err {why}"),
    }
}

fn parse_outcome(words: &[&str]) -> Result<Outcome, String> {
    match words.split_first() {
        Some((&"ok", [])) => Ok(Ok(())),
        Some((&"err", rest)) => Ok(Err(rest.join(" "))),
        _ => Err(format!(
            "expected ok or err REASON, found {:?}",
            words.join(" ")
        )),
    }
}

/// An input as a line, with probe start instants relative to `origin`.
pub fn format_input(input: &Input, origin: Instant) -> String {
    let since = |t: Instant| ms(t.saturating_duration_since(origin));
    match input {
        Input::Started { vip_present } => format!("started vip_present={vip_present}"),
        Input::VipChecked { holder, via_vip } => format!(
            "vip_checked holder={} {}",
            holder.as_deref().unwrap_or("none"),
            format_outcome(via_vip)
        ),
        Input::VipAdded(o) => format!("vip_added {}", format_outcome(o)),
        Input::Fenced(o) => format!("fenced {}", format_outcome(o)),
        Input::Announced(o) => format!("announced {}", format_outcome(o)),
        Input::AppStarted(o) => format!("app_started {}", format_outcome(o)),
        Input::AppStopped(o) => format!("app_stopped {}", format_outcome(o)),
        Input::VipRemoved(o) => format!("vip_removed {}", format_outcome(o)),
        Input::Probed {
            target,
            started,
            outcome,
            refused,
        } => format!(
            "probe {} started={} {}",
            target.name(),
            since(*started),
            match (outcome, refused) {
                (Err(why), true) => format!("refused {why}"),
                _ => format_outcome(outcome),
            }
        ),
        Input::HeartbeatRefused { node } => format!("heartbeat_refused node={node}"),
        Input::ProbeNotRun {
            target,
            started,
            why,
        } => format!(
            "probe_not_run {} started={} {why}",
            target.name(),
            since(*started)
        ),
        Input::Heartbeat(hb) => format!(
            "heartbeat {} node={} term={} seq={} epoch={} config={} flags={}",
            state_name(hb.state),
            hb.node_id,
            hb.term,
            hb.seq,
            hb.epoch,
            hb.config_checksum,
            format_flags(hb.flags)
        ),
        Input::Drained { remaining } => format!("drained {remaining}"),
        Input::VipMissing => "vip_missing".into(),
        Input::MaintenanceSignal(on) => {
            format!("maintenance_signal {}", if *on { "on" } else { "off" })
        }
        Input::Shutdown => "shutdown".into(),
        Input::Lease(LeaseReply::Granted { term }) => format!("lease granted term={term}"),
        Input::Lease(LeaseReply::HeldBy { holder, term }) => {
            format!("lease held_by {holder} term={term}")
        }
        Input::Lease(LeaseReply::Failed(why)) => format!("lease failed {why}"),
    }
}

/// An admin command as it appears after `admin`.
pub fn format_admin(cmd: &AdminCommand, force: bool) -> String {
    let name = match cmd {
        AdminCommand::Enable => "enable".to_owned(),
        AdminCommand::Disable => "disable".into(),
        AdminCommand::Promote => "promote".into(),
        AdminCommand::Demote => "demote".into(),
        AdminCommand::MaintenanceOn => "maintenance-on".into(),
        AdminCommand::MaintenanceOff => "maintenance-off".into(),
        AdminCommand::Refresh => "refresh".into(),
        AdminCommand::ResetFlapping => "reset-flapping".into(),
        AdminCommand::Restart => "restart".into(),
        AdminCommand::Forget { node } => format!("forget {node}"),
    };
    if force {
        format!("admin {name} force")
    } else {
        format!("admin {name}")
    }
}

fn parse_admin(words: &[&str]) -> Result<Step, String> {
    let force = words.last() == Some(&"force");
    let words = if force {
        &words[..words.len() - 1]
    } else {
        words
    };
    let cmd = match words {
        ["enable"] => AdminCommand::Enable,
        ["disable"] => AdminCommand::Disable,
        ["promote"] => AdminCommand::Promote,
        ["demote"] => AdminCommand::Demote,
        ["maintenance-on"] => AdminCommand::MaintenanceOn,
        ["maintenance-off"] => AdminCommand::MaintenanceOff,
        ["refresh"] => AdminCommand::Refresh,
        ["reset-flapping"] => AdminCommand::ResetFlapping,
        ["restart"] => AdminCommand::Restart,
        ["forget", node] => AdminCommand::Forget {
            node: (*node).to_owned(),
        },
        _ => return Err(format!("admin command {:?}", words.join(" "))),
    };
    Ok(Step::Admin { cmd, force })
}

/// `key=value` words into a lookup.
fn keyed<'a>(words: &[&'a str], key: &str) -> Option<&'a str> {
    words
        .iter()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// The optional `started=MS`, and the words after it.
fn started<'a>(
    words: &'a [&'a str],
    at: Duration,
    origin: Instant,
) -> Result<(Instant, &'a [&'a str]), String> {
    match words.first().and_then(|w| w.strip_prefix("started=")) {
        Some(t) => Ok((later(origin, duration(t)?), &words[1..])),
        None => Ok((later(origin, at), words)),
    }
}

/// Reads one step (the part after `at TIME`), for a peer whose
/// heartbeats carry `peer_id` and the settings' cluster.
pub fn parse_step(
    text: &str,
    at: Duration,
    origin: Instant,
    settings: &Settings,
) -> Result<Step, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some((&verb, rest)) = words.split_first() else {
        return Err("an empty step".into());
    };
    let input = match verb {
        "tick" => return Ok(Step::Tick),
        "complete" => return Ok(Step::Complete),
        "status" => return Ok(Step::Status),
        "admin" => return parse_admin(rest),
        "started" => Input::Started {
            vip_present: flag(keyed(rest, "vip_present").unwrap_or("false"))?,
        },
        "vip_checked" => {
            let holder = keyed(rest, "holder").filter(|h| *h != "none");
            let outcome: Vec<&str> = rest
                .iter()
                .copied()
                .filter(|w| !w.starts_with("holder="))
                .collect();
            Input::VipChecked {
                holder: holder.map(str::to_owned),
                via_vip: parse_outcome(&outcome)?,
            }
        }
        "vip_added" => Input::VipAdded(parse_outcome(rest)?),
        "fenced" => Input::Fenced(parse_outcome(rest)?),
        "announced" => Input::Announced(parse_outcome(rest)?),
        "app_started" => Input::AppStarted(parse_outcome(rest)?),
        "app_stopped" => Input::AppStopped(parse_outcome(rest)?),
        "vip_removed" => Input::VipRemoved(parse_outcome(rest)?),
        "probe" | "probe_not_run" => {
            let (&target, rest) = rest.split_first().ok_or("probe TARGET …")?;
            let target = parse_target(target)?;
            let (started, rest) = started(rest, at, origin)?;
            if let Some((&"refused", why)) = rest.split_first().filter(|_| verb == "probe") {
                Input::Probed {
                    target,
                    started,
                    outcome: Err(why.join(" ")),
                    refused: true,
                }
            } else if verb == "probe" {
                Input::Probed {
                    target,
                    started,
                    outcome: parse_outcome(rest)?,
                    refused: false,
                }
            } else {
                Input::ProbeNotRun {
                    target,
                    started,
                    why: rest.join(" "),
                }
            }
        }
        "heartbeat" => Input::Heartbeat(parse_heartbeat(rest, settings)?),
        "drained" => Input::Drained {
            remaining: rest
                .first()
                .and_then(|n| n.parse().ok())
                .ok_or("drained N")?,
        },
        "vip_missing" => Input::VipMissing,
        "heartbeat_refused" => Input::HeartbeatRefused {
            node: peer_id(rest, settings)?,
        },
        "maintenance_signal" => {
            Input::MaintenanceSignal(flag(rest.first().copied().unwrap_or(""))?)
        }
        "shutdown" => Input::Shutdown,
        "lease" => Input::Lease(parse_lease(rest)?),
        _ => return Err(format!("unknown step {verb:?}")),
    };
    Ok(Step::Input(input))
}

/// `granted term=N`, `held_by NODE term=N` or `failed REASON`.
fn parse_lease(words: &[&str]) -> Result<LeaseReply, String> {
    let term = || -> Result<u64, String> {
        keyed(words, "term")
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| "lease … term=N".to_owned())
    };
    Ok(match words {
        ["granted", ..] => LeaseReply::Granted { term: term()? },
        ["held_by", holder, ..] => LeaseReply::HeldBy {
            holder: (*holder).to_owned(),
            term: term()?,
        },
        ["failed", why @ ..] => LeaseReply::Failed(why.join(" ")),
        _ => return Err("lease granted|held_by NODE|failed REASON".into()),
    })
}

fn parse_heartbeat(words: &[&str], s: &Settings) -> Result<Heartbeat, String> {
    let (&state, rest) = words.split_first().ok_or("heartbeat STATE …")?;
    let number = |key: &str, default: u64| -> Result<u64, String> {
        keyed(rest, key).map_or(Ok(default), |v| {
            v.parse().map_err(|_| format!("{key}={v:?}"))
        })
    };
    Ok(Heartbeat {
        cluster_id: s.cluster_id,
        node_id: peer_id(rest, s)?,
        epoch: number("epoch", 1)?,
        seq: number("seq", 1)?,
        term: number("term", 0)?,
        state: parse_state(state)?,
        flags: parse_flags(keyed(rest, "flags").unwrap_or("-"))?,
        config_checksum: number("config", s.config_checksum)?,
    })
}

/// The sender of a heartbeat line: `node=ID`, else the first peer.
fn peer_id(words: &[&str], s: &Settings) -> Result<u16, String> {
    match keyed(words, "node") {
        Some(v) => v.parse().map_err(|_| format!("node={v:?}")),
        None => Ok(s.peers.first().map_or(0, |p| p.id)),
    }
}

/// Reads a whole input file: the header, the settings, the steps.
pub fn parse_file(text: &str, origin: Instant) -> Result<(String, Settings, Vec<Timed>), String> {
    let mut lines = text.lines().enumerate();
    let header = match lines.next() {
        Some((_, l)) if l.starts_with("# ") => l[2..].to_owned(),
        _ => return Err("line 1: a header comment (# what the scenario shows)".into()),
    };
    let mut settings = None;
    let mut steps = Vec::new();
    for (n, line) in lines {
        let line = line.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let place = |e: String| format!("line {}: {e}", n + 1);
        if line.starts_with("settings") {
            settings = Some(parse_settings(line).map_err(place)?);
            continue;
        }
        let s = settings
            .as_ref()
            .ok_or_else(|| place("a settings line first".into()))?;
        let rest = line
            .strip_prefix("at ")
            .ok_or_else(|| place("write: at TIME STEP".into()))?;
        let (time, step) = rest
            .split_once(' ')
            .ok_or_else(|| place("write: at TIME STEP".into()))?;
        let at = duration(time).map_err(place)?;
        match step.strip_prefix("every ") {
            Some(repeat) => steps.extend(expand(repeat, at, origin, s).map_err(place)?),
            None => steps.push(Timed {
                at,
                step: parse_step(step, at, origin, s).map_err(place)?,
            }),
        }
    }
    let settings = settings.ok_or("no settings line")?;
    // Repeated steps interleave with the others; a stable sort keeps the
    // file's order among steps at the same instant.
    steps.sort_by_key(|t| t.at);
    Ok((header, settings, steps))
}

/// `every PERIOD until END STEP`: the step at `from`, `from + PERIOD`, …
/// up to END; a repeated heartbeat's sequence number grows by one each time.
fn expand(text: &str, from: Duration, origin: Instant, s: &Settings) -> Result<Vec<Timed>, String> {
    let mut words = text.splitn(4, ' ');
    let (Some(period), Some("until"), Some(end), Some(step)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err("write: at TIME every PERIOD until END STEP".into());
    };
    let (period, end) = (duration(period)?, duration(end)?);
    if period.is_zero() {
        return Err("every 0ms".into());
    }
    let mut out = Vec::new();
    let mut at = from;
    let mut n = 0u64;
    while at <= end && out.len() < 10_000 {
        let step = match parse_step(step, at, origin, s)? {
            Step::Input(Input::Heartbeat(mut hb)) => {
                hb.seq += n;
                Step::Input(Input::Heartbeat(hb))
            }
            other => other,
        };
        out.push(Timed { at, step });
        at += period;
        n += 1;
    }
    Ok(out)
}

/// The answer of a world where every machine action succeeds (nothing
/// answers through the VIP); `None` for actions that need no answer.
pub fn success(action: &Action) -> Option<Input> {
    Some(match action {
        Action::CheckVip { .. } => Input::VipChecked {
            holder: None,
            via_vip: Err("no answer through the VIP".into()),
        },
        Action::AddVip => Input::VipAdded(Ok(())),
        Action::Announce => Input::Announced(Ok(())),
        Action::StartApp | Action::RestartApp | Action::AdoptApp => Input::AppStarted(Ok(())),
        Action::StopApp => Input::AppStopped(Ok(())),
        Action::RemoveVip => Input::VipRemoved(Ok(())),
        Action::Drain => Input::Drained { remaining: 0 },
        Action::Fence { .. } => Input::Fenced(Ok(())),
        Action::Probe(_)
        | Action::WatchPeer(_)
        | Action::SendHeartbeat(_)
        | Action::Notify(_)
        | Action::Interrupt
        | Action::Exit
        | Action::Exec { .. }
        | Action::Lease(_) => return None,
    })
}

/// An action as a line of the expected-actions file.
pub fn format_action(action: &Action) -> String {
    match action {
        Action::CheckVip { window } => format!("check_vip window={}", ms(*window)),
        Action::AddVip => "add_vip".into(),
        Action::Announce => "announce".into(),
        Action::StartApp => "start_app".into(),
        Action::RestartApp => "restart_app".into(),
        Action::StopApp => "stop_app".into(),
        Action::RemoveVip => "remove_vip".into(),
        Action::Drain => "drain".into(),
        Action::Interrupt => "interrupt".into(),
        Action::Exit => "exit".into(),
        Action::Exec { term, holding } => format!("exec term={term} holding={holding}"),
        Action::AdoptApp => "adopt_app".into(),
        Action::Probe(t) => format!("probe {}", t.name()),
        Action::WatchPeer(id) => format!("watch_peer node={id}"),
        Action::SendHeartbeat(hb) => format!(
            "heartbeat {} term={} flags={}",
            state_name(hb.state),
            hb.term,
            format_flags(hb.flags)
        ),
        Action::Notify(e) => format!("notify {} {:?}", e.kind, e.cause.to_string()),
        Action::Lease(LeaseAsk::Acquire) => "lease acquire".into(),
        Action::Lease(LeaseAsk::Renew { term }) => format!("lease renew term={term}"),
        Action::Lease(LeaseAsk::Release { term }) => format!("lease release term={term}"),
        Action::Lease(LeaseAsk::Break { holder, term }) => {
            format!("lease break holder={holder} term={term}")
        }
        Action::Fence { peer, term } => format!("fence node={peer} term={term}"),
    }
}

/// A status snapshot, one fact per line.
pub fn format_status(s: &Status, now: Instant) -> String {
    let mut out = String::new();
    let opt = |o: Option<String>| o.unwrap_or_else(|| "-".into());
    let _ = writeln!(out, "state: {} ({:?})", s.word(), s.state);
    // The watched node's line (the golden scenarios are pairs).
    let watched = s.watched();
    let _ = writeln!(
        out,
        "peer: {} (available {}, term {})",
        watched.map_or(StatusWord::Unavailable, PeerStatus::word),
        watched.is_some_and(|p| p.available),
        watched.and_then(|p| p.heartbeat).map_or(0, |h| h.term)
    );
    let holder = match s.holder {
        // Which peer, when there are several: the log names it.
        Holder::Peer(_) => "Peer".to_owned(),
        other => format!("{other:?}"),
    };
    let _ = writeln!(out, "holder: {holder}");
    let _ = writeln!(out, "term: {}", s.term);
    let _ = writeln!(out, "failure: {}", opt(s.failure().map(|c| c.to_string())));
    let _ = writeln!(out, "takeover_in: {}", opt(s.takeover_in().map(ms)));
    let _ = writeln!(
        out,
        "blocked: {}",
        opt(s.takeover_blocked.as_ref().map(ToString::to_string))
    );
    let _ = writeln!(
        out,
        "disabled: {}, maintenance: {}",
        s.disabled,
        s.maintenance || s.maintenance_signal
    );
    let recovery = match s.recovery {
        AppRecovery::Serving => "serving".to_owned(),
        AppRecovery::Restarting { attempt, fast } => format!("restarting {attempt} (fast {fast})"),
    };
    let _ = writeln!(out, "application: {recovery}");
    let _ = writeln!(
        out,
        "flapping: {} (moves {})",
        opt(s
            .flapping_since
            .map(|t| ms(now.saturating_duration_since(t)) + " ago")),
        s.recent_moves
    );
    let _ = writeln!(
        out,
        "counters: takeovers {}, releases {}, dwell delays {}",
        s.counters.takeovers, s.counters.releases, s.counters.dwell_delays
    );
    if let Some(t) = &s.last_takeover {
        let _ = writeln!(out, "last takeover: {} ({})", t.cause, ms(t.duration));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_round_trip_through_their_lines() {
        let origin = Instant::now();
        let s = default_settings();
        let at = Duration::from_millis(250);
        for input in [
            Input::Started { vip_present: true },
            Input::VipChecked {
                holder: Some("02:00:00:00:00:01".into()),
                via_vip: Err("no answer from the VIP".into()),
            },
            Input::VipChecked {
                holder: None,
                via_vip: Ok(()),
            },
            Input::AppStarted(Err("not healthy after 5s".into())),
            Input::Probed {
                target: Target::Data,
                started: origin + Duration::from_millis(200),
                outcome: Err("connect to db:5432: timed out".into()),
                refused: false,
            },
            Input::Probed {
                target: Target::Peer,
                started: origin + Duration::from_millis(200),
                outcome: Err("cannot connect: Connection refused".into()),
                refused: true,
            },
            Input::HeartbeatRefused { node: 0 },
            Input::ProbeNotRun {
                target: Target::Peer,
                started: origin + at,
                why: "Too many open files (os error 24)".into(),
            },
            Input::Heartbeat(Heartbeat {
                cluster_id: 7,
                node_id: 0,
                epoch: 5,
                seq: 9,
                term: 3,
                state: WireState::Active,
                flags: Flags {
                    app_ok: true,
                    release_request: true,
                    ..Flags::default()
                },
                config_checksum: 99,
            }),
            Input::Drained { remaining: 2 },
            Input::MaintenanceSignal(true),
            Input::Shutdown,
        ] {
            let line = format_input(&input, origin);
            let back = parse_step(&line, at, origin, &s).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(back, Step::Input(input), "{line}");
        }
    }

    #[test]
    fn settings_and_admin_round_trip() {
        let mut s = default_settings();
        s.failback = Failback::Automatic {
            hold: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(1),
        };
        s.flap_limit = 4;
        let back = parse_settings(&format_settings(&s)).unwrap();
        assert_eq!(format_settings(&back), format_settings(&s));
        for (cmd, force) in [
            (AdminCommand::Promote, true),
            (AdminCommand::Forget { node: "m1".into() }, false),
        ] {
            let line = format_admin(&cmd, force);
            let step = parse_step(&line, Duration::ZERO, Instant::now(), &s).unwrap();
            assert_eq!(step, Step::Admin { cmd, force });
        }
    }

    #[test]
    fn bad_lines_say_where() {
        let e =
            parse_file("# h\nsettings grace=1s\nat 1s frobnicate\n", Instant::now()).unwrap_err();
        assert!(e.starts_with("line 3:"), "{e}");
        assert!(parse_file("no header\n", Instant::now()).is_err());
    }
}
