//! The status report: one row per node, the VIP and its holder, the last
//! takeover. Built from the core's own status (no second bookkeeping) and
//! shown as JSON or as an aligned table.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::core::{Holder, Status};
use crate::words::countdown;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub cluster: String,
    /// "ADDRESS/PREFIX".
    pub vip: String,
    pub alias: Option<String>,
    /// The node that answered.
    pub local: String,
    pub nodes: Vec<NodeRow>,
    pub holder: HolderView,
    pub last_takeover: Option<TakeoverView>,
    pub counters: CountersView,
    /// Since when automatic moves have been stopped by the flap limit
    /// (null when they are not).
    #[serde(default)]
    pub flapping_since: Option<Seen>,
    /// Automatic moves of the VIP within the flap window, as this node
    /// counts them.
    #[serde(default)]
    pub recent_moves: usize,
    /// What this node is doing about its own failed application while it
    /// holds the VIP ("restarting it: attempt 2 of 3"); null when it serves.
    #[serde(default)]
    pub application_recovery: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRow {
    pub name: String,
    pub address: String,
    /// "primary" or "secondary" (configured).
    pub role: String,
    /// Active, Passive, Disabled, Maintenance, Unavailable (runtime).
    pub status: String,
    pub local: bool,
    /// The last valid heartbeat from this node (null for the local node or
    /// a node never heard).
    pub last_heartbeat: Option<Seen>,
    /// Why this node counts as failing, as judged by the local node.
    pub failing: Option<String>,
    /// Time left before the local node takes over from this one.
    pub takeover_in: Option<Countdown>,
    /// Why a due takeover is held back (local node only).
    pub blocked: Option<String>,
    pub term: Option<u64>,
    /// Does this node run the same configuration as the local one (null:
    /// unknown, or the local node itself).
    pub config_match: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    pub age_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Countdown {
    pub seconds: f64,
    /// In the users' words: "takeover in 40 seconds".
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HolderView {
    /// The node holding the VIP, or null when nobody does (as far as the
    /// local node knows).
    pub node: Option<String>,
    pub since: Option<Seen>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TakeoverView {
    pub node: String,
    pub at: Seen,
    pub cause: String,
    /// Decision to application confirmed healthy.
    pub duration_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountersView {
    pub takeovers: u64,
    pub releases: u64,
    /// Failing streaks of the peer, by cause.
    pub failures: std::collections::BTreeMap<String, u64>,
    /// Automatic failbacks held back by the dwell time.
    pub failbacks_delayed: u64,
}

/// An instant of the core's clock as wall-clock time and age.
pub fn seen(at: Instant, now: Instant, wall_now: SystemTime) -> Seen {
    let age = now.saturating_duration_since(at);
    let wall = wall_now.checked_sub(age).unwrap_or(wall_now);
    Seen {
        at: humantime::format_rfc3339_millis(wall).to_string(),
        age_ms: age.as_millis() as u64,
    }
}

pub fn build(config: &Config, me: usize, status: &Status, now: Instant) -> StatusReport {
    let wall = SystemTime::now();
    let peer = config.peer_of(me);
    let local_row = NodeRow {
        name: config.nodes[me].name.clone(),
        address: config.nodes[me].address.to_string(),
        role: config.nodes[me].role.to_string(),
        status: status.word().to_string(),
        local: true,
        last_heartbeat: None,
        failing: None,
        takeover_in: None,
        blocked: status.takeover_blocked.as_ref().map(ToString::to_string),
        term: Some(status.term),
        config_match: None,
    };
    let peer_row = NodeRow {
        name: config.nodes[peer].name.clone(),
        address: config.nodes[peer].address.to_string(),
        role: config.nodes[peer].role.to_string(),
        status: status.peer_word().to_string(),
        local: false,
        last_heartbeat: status.peer_last_seen.map(|t| seen(t, now, wall)),
        failing: status.failure.map(|c| c.to_string()),
        takeover_in: status.takeover_in.map(|left| Countdown {
            seconds: left.as_secs_f64(),
            text: countdown::takeover_in(left),
        }),
        blocked: None,
        term: status.peer_heartbeat.map(|h| h.term),
        config_match: status.peer_heartbeat.map(|_| !status.config_mismatch),
    };
    let mut nodes = vec![local_row, peer_row];
    nodes.sort_by_key(|r| config.nodes.iter().position(|n| n.name == r.name));
    StatusReport {
        cluster: config.cluster.name.clone(),
        vip: format!("{}/{}", config.cluster.vip, config.cluster.prefix_len),
        alias: config.cluster.alias.clone(),
        local: config.nodes[me].name.clone(),
        nodes,
        holder: HolderView {
            node: match status.holder {
                Holder::Local => Some(config.nodes[me].name.clone()),
                Holder::Peer => Some(config.nodes[peer].name.clone()),
                Holder::Nobody => None,
            },
            since: status.holder_since.map(|t| seen(t, now, wall)),
        },
        last_takeover: status.last_takeover.as_ref().map(|t| TakeoverView {
            node: config.nodes[me].name.clone(),
            at: seen(t.at, now, wall),
            cause: t.cause.to_string(),
            duration_ms: crate::core::millis(t.duration),
        }),
        counters: CountersView {
            takeovers: status.counters.takeovers,
            releases: status.counters.releases,
            failures: status
                .counters
                .failures
                .iter()
                .map(|(c, n)| (c.to_string(), *n))
                .collect(),
            failbacks_delayed: status.counters.dwell_delays,
        },
        flapping_since: status.flapping_since.map(|t| seen(t, now, wall)),
        recent_moves: status.recent_moves,
        application_recovery: status
            .recovery
            .failed()
            .then(|| status.recovery.to_string()),
    }
}

fn age(ms: u64) -> String {
    countdown::humanize(Duration::from_millis(ms)).replace("less than a second", "<1 second")
}

/// The table for people.
pub fn render(r: &StatusReport) -> String {
    let header = [
        "",
        "NODE",
        "ADDRESS",
        "ROLE",
        "STATUS",
        "LAST HEARTBEAT",
        "FAILING",
        "TAKEOVER",
        "TERM",
        "CONFIG",
    ];
    let rows: Vec<Vec<String>> = r
        .nodes
        .iter()
        .map(|n| {
            vec![
                if n.local { "*".into() } else { String::new() },
                n.name.clone(),
                n.address.clone(),
                n.role.clone(),
                n.status.clone(),
                n.last_heartbeat.as_ref().map_or("-".into(), |s| {
                    format!("{} ({} ago)", &s.at[11..23], age(s.age_ms))
                }),
                n.failing
                    .clone()
                    .or_else(|| n.blocked.clone().map(|b| format!("held back: {b}")))
                    .unwrap_or("-".into()),
                n.takeover_in
                    .as_ref()
                    .map_or("-".into(), |c| c.text.clone()),
                n.term.map_or("-".into(), |t| t.to_string()),
                match n.config_match {
                    Some(true) => "match".into(),
                    Some(false) => "DIFFERS".into(),
                    None => "-".into(),
                },
            ]
        })
        .collect();
    let mut table = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    table.extend(rows);
    let mut out = crate::table::aligned(&table);
    out.push('\n');
    let since = r.holder.since.as_ref().map_or(String::new(), |s| {
        format!(" since {} ({} ago)", s.at, age(s.age_ms))
    });
    match &r.holder.node {
        Some(node) => {
            let _ = writeln!(out, "VIP {} held by {node}{since}", r.vip);
        }
        None => {
            let _ = writeln!(out, "VIP {} held by nobody{since}", r.vip);
        }
    }
    if let Some(alias) = &r.alias {
        let _ = writeln!(out, "Alias {alias}");
    }
    match &r.last_takeover {
        Some(t) => {
            let _ = writeln!(
                out,
                "Last takeover: {} at {} ({} ago), {:.0} ms: {}",
                t.node,
                t.at.at,
                age(t.at.age_ms),
                t.duration_ms,
                t.cause
            );
        }
        None => out.push_str("Last takeover: none since this daemon started\n"),
    }
    if let Some(since) = &r.flapping_since {
        let _ = writeln!(
            out,
            "FLAPPING since {} ({} ago): {} automatic moves in the window; automatic moves stopped (understudy reset-flapping)",
            since.at,
            age(since.age_ms),
            r.recent_moves
        );
    }
    if let Some(words) = &r.application_recovery {
        let _ = writeln!(out, "Application: {words}");
    }
    out
}
