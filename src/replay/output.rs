//! What a scenario produces, as lines: the actions, the status
//! snapshots, and the answers of a world where every machine action
//! succeeds.

use std::fmt::Write as _;
use std::time::Instant;

use super::ms;
use super::words::{format_flags, state_name};
use crate::core::{Action, AppRecovery, Holder, Input, LeaseAsk, PeerStatus, Status, StatusWord};

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
        Action::MirrorPass { .. } => Input::MirrorPassed(Ok(())),
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
        Action::MirrorPass { last } => format!("mirror_pass last={last}"),
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
