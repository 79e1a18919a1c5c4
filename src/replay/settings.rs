//! The `settings` line: the scenarios' defaults, a line read over them,
//! and the daemon's settings written as one at its start.

use std::time::Duration;

use super::{duration, flag, ms};
use crate::config::{Failback, Role};
use crate::core::Settings;

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
        mirrors: false,
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
        "mirrors" => s.mirrors = flag(value)?,
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
        + if s.mirrors { " mirrors=true" } else { "" }
        + &cluster_settings(s)
}

/// ` node=N nodes=M` beyond a pair (nothing for a pair).
fn cluster_settings(s: &Settings) -> String {
    if s.peers.len() < 2 {
        return String::new();
    }
    format!(" node={} nodes={}", s.node_id + 1, s.peers.len() + 1)
}
