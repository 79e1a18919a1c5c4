//! The status report: one row per node, the VIP and its holder, the last
//! takeover. Built from the core's own status (no second bookkeeping) and
//! shown as JSON or as an aligned table.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::core::{Holder, Status};
use crate::io::witness::WitnessView;
use crate::words::countdown;

/// A streak of failed claims, as status shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedClaimsView {
    pub count: u32,
    /// Why the last one failed.
    pub why: String,
    /// How long until the next claim may be made (0: it may now).
    pub retry_in_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub cluster: String,
    /// Every common address: "ADDRESS/PREFIX, ADDRESS/PREFIX".
    pub vip: String,
    /// The same, one entry per address (`ADDRESS/PREFIX[@NIC]`).
    #[serde(default)]
    pub vips: Vec<String>,
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
    /// Claims that failed in a row (null once one goes through).
    #[serde(default)]
    pub failed_claims: Option<FailedClaimsView>,
    /// What this node is doing about its own failed application while it
    /// holds the VIP ("restarting it: attempt 2 of 3"); null when it serves.
    #[serde(default)]
    pub application_recovery: Option<String>,
    /// Why this node's own application fails its probe while it does (its
    /// URL, or through one of the common addresses); null otherwise.
    #[serde(default)]
    pub application_failing: Option<String>,
    /// The witness's lease and view, with a `[witness]`.
    #[serde(default)]
    pub witness: Option<WitnessReport>,
    /// The watchdog, with `[fencing]`.
    #[serde(default)]
    pub watchdog: Option<WatchdogReport>,
    /// Each `[[mirror]]` towards each node this node has sent to.
    #[serde(default)]
    pub mirrors: Vec<super::mirror_report::MirrorReport>,
    /// A configuration written on this node but not applied: it needs a
    /// restart (`cluster.sync_config`).
    #[serde(default)]
    pub restart_to_apply: Option<RestartToApply>,
}

/// A file written but not applied, and the nodes known to hold it so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestartToApply {
    pub reasons: Vec<String>,
    pub nodes: Vec<String>,
}

/// The watchdog of `[fencing]` as status shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchdogReport {
    pub device: String,
    /// `automatic` or `required`.
    pub mode: String,
    pub timeout_s: u64,
    /// Open, its timer running (the host resets if it is not fed).
    pub armed: bool,
    /// Fed now: this node may hold the VIP.
    pub feeding: bool,
    pub fed_ago_ms: Option<u64>,
    /// Why it could not be armed or fed, last time it was tried.
    pub error: Option<String>,
    /// A named pipe stands in for a device (tests).
    pub stand_in: bool,
}

/// The watchdog's line under the table.
fn watchdog_line(w: &WatchdogReport) -> String {
    let state = match (w.armed, w.feeding) {
        (true, true) => {
            let ago = w
                .fed_ago_ms
                .map_or(String::new(), |ms| format!(", fed {} ago", short_age(ms)));
            format!("armed{ago}")
        }
        (true, false) => format!(
            "armed and NOT fed: the host resets within {}s unless the common IP is released",
            w.timeout_s
        ),
        (false, _) => "disarmed (armed only while this node holds the common IP)".to_owned(),
    };
    let error = w
        .error
        .as_ref()
        .map_or(String::new(), |e| format!("; last error: {e}"));
    format!(
        "Watchdog {} ({}, {}s): {state}{error}",
        w.device, w.mode, w.timeout_s
    )
}

/// The witness beside the peer's view: who holds the lease by its last
/// view, this node's own lease, and what went wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WitnessReport {
    /// `postgres://…` or `etcd://…`, without any password.
    pub backend: String,
    /// The holder and term of the lease in the witness's last view.
    pub holder: Option<String>,
    pub term: Option<u64>,
    /// How much longer this node counts its own lease as held.
    pub held_for_ms: Option<u64>,
    /// The lease ran out and this node serves on (`on_loss = "keep"`).
    pub kept: bool,
    /// Why the witness last refused this node the lease.
    pub refused: Option<String>,
    /// Why the last round with the witness failed.
    pub error: Option<String>,
    /// How old the witness's view is.
    pub view_age_ms: Option<u64>,
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
    /// Time left before this node takes over (local node only: the node
    /// that will act).
    pub takeover_in: Option<Countdown>,
    /// Why a due takeover is held back (local node only).
    pub blocked: Option<String>,
    pub term: Option<u64>,
    /// Does this node run the same configuration as the local one (null:
    /// unknown, or the local node itself).
    pub config_match: Option<bool>,
    /// The last heartbeat the witness has seen from this node (its row),
    /// with a `[witness]`.
    #[serde(default)]
    pub witness_heartbeat: Option<Seen>,
    /// The state and term that row says.
    #[serde(default)]
    pub witness_state: Option<String>,
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
    /// Decision to application confirmed healthy (null for a peer's
    /// takeover seen from here: that node's own status has it).
    pub duration_ms: Option<f64>,
}

/// The last takeover in the cluster, as the history keeps it (across
/// restarts, and a peer's seen from here).
pub fn takeover_view(t: &crate::control::history::LastTakeover) -> TakeoverView {
    let now_ms = crate::control::history::now_ms();
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(t.at_ms);
    TakeoverView {
        node: t.node.clone(),
        at: Seen {
            at: humantime::format_rfc3339_millis(at).to_string(),
            age_ms: now_ms.saturating_sub(t.at_ms),
        },
        cause: t.cause.clone(),
        duration_ms: t.duration_ms,
    }
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
    let local_row = NodeRow {
        name: config.nodes[me].name.clone(),
        address: config.nodes[me].address.to_string(),
        role: config.nodes[me].role.to_string(),
        status: status.word().to_string(),
        local: true,
        last_heartbeat: None,
        failing: None,
        takeover_in: status.takeover_in().map(|left| Countdown {
            seconds: left.as_secs_f64(),
            text: countdown_words(status, left),
        }),
        blocked: status.takeover_blocked.as_ref().map(ToString::to_string),
        term: Some(status.term),
        config_match: None,
        witness_heartbeat: None,
        witness_state: None,
    };
    let peer_rows = status.peers.iter().map(|p| {
        let node = &config.nodes[usize::from(p.id)];
        NodeRow {
            name: node.name.clone(),
            address: node.address.to_string(),
            role: node.role.to_string(),
            status: p.word().to_string(),
            local: false,
            last_heartbeat: p.last_seen.map(|t| seen(t, now, wall)),
            // What this node judges: the watched node's failure.
            failing: p.failing.map(|c| c.to_string()),
            takeover_in: None,
            blocked: None,
            term: p.heartbeat.map(|h| h.term),
            config_match: p.heartbeat.map(|h| h.config_checksum == config.checksum),
            witness_heartbeat: None,
            witness_state: None,
        }
    });
    let mut nodes: Vec<NodeRow> = std::iter::once(local_row).chain(peer_rows).collect();
    nodes.sort_by_key(|r| config.nodes.iter().position(|n| n.name == r.name));
    StatusReport {
        cluster: config.cluster.name.clone(),
        vip: config.cluster.shown(),
        vips: config.cluster.vips.iter().map(|v| v.to_string()).collect(),
        alias: config.cluster.alias.clone(),
        local: config.nodes[me].name.clone(),
        nodes,
        holder: HolderView {
            node: status
                .holder_name(&config.nodes[me].name)
                .map(str::to_owned),
            since: status.holder_since.map(|t| seen(t, now, wall)),
        },
        // The cluster's last takeover is the history's (kept across
        // restarts, a peer's too): the daemon adds it, see
        // [`takeover_view`].
        last_takeover: None,
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
        failed_claims: status.failed_claims.as_ref().map(|f| FailedClaimsView {
            count: f.count,
            why: f.why.clone(),
            retry_in_ms: f.retry_at.saturating_duration_since(now).as_millis() as u64,
        }),
        recent_moves: status.recent_moves,
        application_recovery: status
            .recovery
            .failed()
            .then(|| status.recovery.to_string()),
        application_failing: status.local_failing.clone(),
        witness: None,
        watchdog: None,
        mirrors: Vec::new(),
        restart_to_apply: None,
    }
}

/// Adds the witness: its last view of the lease, this node's own lease,
/// and each node's row (the last heartbeat the witness has seen of it).
pub fn add_witness(r: &mut StatusReport, status: &Status, view: &WitnessView, now: Instant) {
    let wall = SystemTime::now();
    let lease = status.lease.as_ref();
    let seen_view = view.seen.as_ref();
    for row in &mut r.nodes {
        let Some((seen_rows, read_at)) = seen_view else {
            break;
        };
        let Some(n) = seen_rows.nodes.iter().find(|n| n.record.node == row.name) else {
            continue;
        };
        // The row's age when read, plus the time since the read.
        row.witness_heartbeat = n.age.map(|age| {
            let at = read_at.checked_sub(age).unwrap_or(*read_at);
            seen(at, now, wall)
        });
        row.witness_state = Some(format!("{} (term {})", n.record.state, n.record.term));
    }
    r.witness = Some(WitnessReport {
        backend: view.backend.clone(),
        holder: seen_view.and_then(|(s, _)| s.holder.as_ref().map(|(h, _)| h.clone())),
        term: seen_view.and_then(|(s, _)| s.holder.as_ref().map(|(_, t)| *t)),
        held_for_ms: lease.and_then(|l| l.held_for).map(|d| d.as_millis() as u64),
        kept: lease.is_some_and(|l| l.kept),
        refused: lease.and_then(|l| l.refused.as_ref().map(ToString::to_string)),
        error: view.error.clone(),
        view_age_ms: seen_view.map(|(_, at)| now.saturating_duration_since(*at).as_millis() as u64),
    });
}

/// The witness's lines under the table.
fn witness_lines(w: &WitnessReport) -> Vec<String> {
    let holder = match (&w.holder, w.term) {
        (Some(h), Some(t)) => format!("lease held by {h} (term {t})"),
        _ => "nobody holds the lease".to_owned(),
    };
    let age = w
        .view_age_ms
        .map_or(String::new(), |ms| format!(", read {} ago", short_age(ms)));
    let mut lines = vec![format!("Witness {}: {holder}{age}", w.backend)];
    if let Some(ms) = w.held_for_ms {
        lines.push(format!(
            "This node holds the lease for {} more unless renewed",
            short_age(ms)
        ));
    }
    if w.kept {
        lines.push(
            "The lease ran out: serving on while the peer is heard (on_loss = keep)".to_owned(),
        );
    }
    if let Some(why) = &w.error {
        lines.push(format!("Witness unreachable: {why}"));
    }
    if let Some(why) = &w.refused {
        lines.push(format!("Last refusal: {why}"));
    }
    lines
}

/// One line for systemd's `STATUS=` (and `systemctl status`): "Active:
/// holding 192.0.2.10/24, term 3", "Passive: m1 holds 192.0.2.10/24;
/// takeover in 2 minutes".
pub fn one_line(config: &Config, me: usize, status: &Status) -> String {
    let vip = config.cluster.shown();
    let mut line = match status.holder {
        Holder::Local => format!("{}: holding {vip}, term {}", status.word(), status.term),
        Holder::Peer(_) => format!(
            "{}: {} holds {vip}",
            status.word(),
            status
                .holder_name(&config.nodes[me].name)
                .unwrap_or("a peer")
        ),
        Holder::Nobody => format!("{}: nobody holds {vip}", status.word()),
    };
    if let Some(left) = status.takeover_in() {
        line.push_str(&format!("; {}", countdown_words(status, left)));
    } else if let Some(blocked) = &status.takeover_blocked {
        line.push_str(&format!("; takeover held back: {blocked}"));
    }
    line
}

/// The local node's countdown in words: a takeover's, or, after it
/// handed the VIP over on purpose, the fallback of claiming it back.
fn countdown_words(status: &Status, left: Duration) -> String {
    if let Some(blocked) = &status.takeover_blocked {
        // No time: it would be a promise the hold-back does not keep.
        format!("takeover held back: {blocked}")
    } else if status.handing_over {
        format!("handed over, {}", countdown::claim_back_in(left))
    } else {
        countdown::takeover_in(left)
    }
}

fn age(ms: u64) -> String {
    countdown::ago(Duration::from_millis(ms))
}

/// The widest a status table may be for a pair (short names, IPv4
/// addresses): longer text is wrapped under the table instead.
pub const WIDTH: usize = 100;

/// The table for people: one row per node with what every node can see
/// (role, status, last heartbeat, term, configuration), then what the
/// local node judges and will do, in its own name, wrapped at [`WIDTH`].
pub fn render(r: &StatusReport) -> String {
    let mut out = node_table(r);
    out.push('\n');
    for line in judgements(r) {
        out.push_str(&wrap(&line, WIDTH));
    }
    summary(r, &mut out);
    for line in r.witness.iter().flat_map(witness_lines) {
        out.push_str(&wrap(&line, WIDTH));
    }
    for line in r.watchdog.iter().map(watchdog_line) {
        out.push_str(&wrap(&line, WIDTH));
    }
    for line in r.mirrors.iter().map(super::mirror_report::line) {
        out.push_str(&wrap(&line, WIDTH));
    }
    if let Some(p) = &r.restart_to_apply {
        let line = format!(
            "Configuration written but not applied: restart {} to apply it ({})",
            p.nodes.join(", "),
            p.reasons.join("; ")
        );
        out.push_str(&wrap(&line, WIDTH));
    }
    // Names, states and errors may come from a witness or a server.
    crate::terminal::harmless(&out).into_owned()
}

/// One row per node, aligned; the WITNESS SAW column only with a witness.
fn node_table(r: &StatusReport) -> String {
    let header = [
        "",
        "NODE",
        "ADDRESS",
        "ROLE",
        "STATUS",
        "LAST HEARTBEAT",
        "TERM",
        "CONFIG",
        "WITNESS SAW",
    ];
    let witness = r.witness.is_some();
    let rows = r.nodes.iter().map(|n| {
        let mut row = vec![
            if n.local { "*".into() } else { String::new() },
            n.name.clone(),
            n.address.clone(),
            n.role.clone(),
            n.status.clone(),
            n.last_heartbeat.as_ref().map_or("-".into(), |s| {
                format!("{} ({} ago)", &s.at[11..19], short_age(s.age_ms))
            }),
            n.term.map_or("-".into(), |t| t.to_string()),
            match n.config_match {
                Some(true) => "match".into(),
                Some(false) => "DIFFERS".into(),
                None => "-".into(),
            },
        ];
        if witness {
            row.push(n.witness_heartbeat.as_ref().map_or("-".into(), |s| {
                let state = n.witness_state.as_deref().unwrap_or("");
                format!("{} ago, {state}", short_age(s.age_ms))
            }));
        }
        row
    });
    let shown = if witness {
        header.len()
    } else {
        header.len() - 1
    };
    let mut table = vec![header[..shown]
        .iter()
        .map(|h| h.to_string())
        .collect::<Vec<_>>()];
    table.extend(rows);
    crate::table::aligned(&table)
}

/// The VIP's holder, the alias, the last takeover, flapping and the
/// application's recovery, under the table.
fn summary(r: &StatusReport, out: &mut String) {
    let since = r.holder.since.as_ref().map_or(String::new(), |s| {
        format!(" since {} ({} ago)", s.at, age(s.age_ms))
    });
    // Not heard from any holder, but the witness's lease says who may
    // hold it: one answer, not "nobody" above a lease held by m1.
    let leased = r
        .witness
        .as_ref()
        .and_then(|w| Some((w.holder.as_deref()?, w.term?)));
    let line = match (r.holder.node.as_deref(), leased) {
        (Some(holder), _) => format!("VIP {} held by {holder}{since}", r.vip),
        (None, Some((holder, term))) if holder != r.local => format!(
            "VIP {}: no holder heard{since}; the witness's lease is held by {holder} (term {term}), so {holder} may still hold it",
            r.vip
        ),
        (None, _) => format!("VIP {} held by nobody{since}", r.vip),
    };
    out.push_str(&wrap(&line, WIDTH));
    if let Some(alias) = &r.alias {
        let _ = writeln!(out, "Alias {alias}");
    }
    let last = match &r.last_takeover {
        Some(t) => format!(
            "Last takeover: {} at {} ({} ago){}: {}",
            t.node,
            t.at.at,
            age(t.at.age_ms),
            t.duration_ms
                .map_or(String::new(), |ms| format!(", {ms:.0} ms")),
            t.cause
        ),
        None => "Last takeover: none known to this node".to_owned(),
    };
    out.push_str(&wrap(&last, WIDTH));
    if let Some(since) = &r.flapping_since {
        out.push_str(&wrap(
            &format!(
                "FLAPPING since {} ({} ago): {} automatic moves in the window; automatic moves stopped (understudy reset-flapping)",
                since.at,
                age(since.age_ms),
                r.recent_moves
            ),
            WIDTH,
        ));
    }
    if let Some(f) = &r.failed_claims {
        out.push_str(&wrap(
            &format!(
                "CLAIM FAILING: {} claim(s) in a row failed (last: {}); the next in {}",
                f.count,
                f.why,
                short_age(f.retry_in_ms)
            ),
            WIDTH,
        ));
    }
    if let Some(words) = &r.application_recovery {
        out.push_str(&wrap(&format!("Application: {words}"), WIDTH));
    } else if let Some(why) = &r.application_failing {
        out.push_str(&wrap(
            &format!("Application: failing its probe: {why}"),
            WIDTH,
        ));
    }
}

/// What the local node judges of the others and what it will do, each
/// line in the local node's name (it is the one that will act).
fn judgements(r: &StatusReport) -> Vec<String> {
    let Some(me) = r.nodes.iter().find(|n| n.local) else {
        return Vec::new();
    };
    let mut lines: Vec<String> = r
        .nodes
        .iter()
        .filter_map(|n| {
            let cause = n.failing.as_ref()?;
            Some(format!(
                "{} (this node) sees {} failing: {cause}",
                me.name, n.name
            ))
        })
        .collect();
    if let Some(countdown) = me.takeover_in.as_ref().filter(|_| me.blocked.is_none()) {
        lines.push(format!("{} (this node): {}", me.name, countdown.text));
    }
    if let Some(blocked) = &me.blocked {
        lines.push(format!(
            "{} (this node): takeover due but held back: {blocked}",
            me.name
        ));
    }
    if !lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

/// An age as the table shows it: "<1s", "42s", "3m 5s", "2h 10m".
fn short_age(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0 => "<1s".to_owned(),
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `text` wrapped at word boundaries to `width` columns, continuation
/// lines indented by four spaces; every line ends in a newline.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let indent = if out.is_empty() { 0 } else { 4 };
        if !line.is_empty() && indent + line.len() + 1 + word.len() > width {
            out.push_str(&" ".repeat(indent));
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !out.is_empty() {
        out.push_str("    ");
    }
    out.push_str(&line);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, local: bool, status: &str) -> NodeRow {
        NodeRow {
            name: name.into(),
            address: format!("192.0.2.1{}", &name[1..]),
            role: if name == "m1" { "primary" } else { "secondary" }.into(),
            status: status.into(),
            local,
            last_heartbeat: (!local).then(|| Seen {
                at: "2026-12-01T19:07:04.593Z".into(),
                age_ms: 400,
            }),
            failing: None,
            takeover_in: None,
            blocked: None,
            term: Some(1),
            config_match: (!local).then_some(true),
            witness_heartbeat: None,
            witness_state: None,
        }
    }

    fn report(peer: NodeRow, me: NodeRow) -> StatusReport {
        StatusReport {
            cluster: "helpdesk".into(),
            vip: "192.0.2.10/24".into(),
            vips: vec!["192.0.2.10/24".into()],
            alias: None,
            local: me.name.clone(),
            nodes: vec![peer, me],
            holder: HolderView {
                node: Some("m1".into()),
                since: None,
            },
            last_takeover: None,
            counters: CountersView {
                takeovers: 0,
                releases: 0,
                failures: Default::default(),
                failbacks_delayed: 0,
            },
            flapping_since: None,
            failed_claims: None,
            recent_moves: 0,
            application_recovery: None,
            application_failing: None,
            witness: None,
            watchdog: None,
            mirrors: Vec::new(),
            restart_to_apply: None,
        }
    }

    #[test]
    fn the_countdown_is_the_local_nodes_and_a_pair_fits_in_100_columns() {
        let mut peer = row("m1", false, "Active (restarting application)");
        peer.failing = Some("network or host failure".into());
        let mut me = row("m2", true, "Passive");
        me.takeover_in = Some(Countdown {
            seconds: 139.2,
            text: countdown::takeover_in(Duration::from_millis(139_200)),
        });
        me.blocked = Some(format!(
            "this node cannot reach the data service: {}",
            "x ".repeat(80)
        ));
        let shown = render(&report(peer.clone(), me.clone()));
        for line in shown.lines() {
            assert!(
                line.chars().count() <= WIDTH,
                "{} columns: {line}",
                line.len()
            );
        }
        assert!(
            shown.contains("m2 (this node) sees m1 failing: network or host failure\n"),
            "{shown}"
        );
        // Held back: no time is promised, only the reason.
        assert!(!shown.contains("takeover in 2 minutes"), "{shown}");
        assert!(
            shown.contains("m2 (this node): takeover due but held back: this node cannot reach"),
            "{shown}"
        );
        me.blocked = None;
        let free = render(&report(peer.clone(), me));
        assert!(
            free.contains("m2 (this node): takeover in 2 minutes 20 seconds\n"),
            "{free}"
        );
        let m1_row = shown
            .lines()
            .find(|l| l.trim_start().starts_with("m1 "))
            .unwrap();
        assert!(m1_row.contains("19:07:04 (<1s ago)"), "{m1_row}");
        assert!(!m1_row.contains("takeover"), "{m1_row}");
    }

    #[test]
    fn wrapping_keeps_every_word_and_indents_the_rest() {
        let text = "word ".repeat(60);
        let wrapped = wrap(text.trim_end(), 30);
        assert!(wrapped.lines().all(|l| l.len() <= 30), "{wrapped}");
        assert!(wrapped.lines().skip(1).all(|l| l.starts_with("    word")));
        assert_eq!(wrapped.split_whitespace().count(), 60);
    }

    #[test]
    fn ages_in_the_table_are_short() {
        assert_eq!(short_age(999), "<1s");
        assert_eq!(short_age(42_000), "42s");
        assert_eq!(short_age(185_000), "3m 5s");
        assert_eq!(short_age(7_800_000), "2h 10m");
    }
}
