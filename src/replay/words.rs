//! One step as a line, both ways: inputs (probes, heartbeats, lease
//! answers, completions), admin commands, and the words they are made of
//! (targets, heartbeat states and flags, outcomes).

use std::time::{Duration, Instant};

use super::{duration, flag, ms, Step};
use crate::clock::later;
use crate::core::{AdminCommand, Input, LeaseReply, Outcome, Settings, Target};
use crate::proto::heartbeat::{Flags, Heartbeat, WireState};

fn parse_target(text: &str) -> Result<Target, String> {
    Target::ALL
        .into_iter()
        .find(|t| t.name() == text)
        .ok_or_else(|| format!("target {text:?}: peer, local, data or nic"))
}

pub(super) fn state_name(s: WireState) -> &'static str {
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

pub(super) fn format_flags(f: Flags) -> String {
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
        Input::MirrorPassed(o) => format!("mirror_passed {}", format_outcome(o)),
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
        "mirror_passed" => Input::MirrorPassed(parse_outcome(rest)?),
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
