//! Unit tests of the core with a virtual clock: the grace boundary to the
//! nanosecond, the order of actions on every path, and the decisions that
//! heartbeats drive (release requests, split brain, failback, the VIP check).

use super::*;
use crate::proto::heartbeat::{Flags, Heartbeat, WireState};

pub(super) const INTERVAL: Duration = Duration::from_millis(100);
pub(super) const GRACE: Duration = Duration::from_secs(1);
pub(super) const HB: Duration = Duration::from_millis(100);
pub(super) const PEER_TIMEOUT: Duration = Duration::from_millis(300);
/// A look at the VIP made when the takeover is due already: the
/// configured window (the replay defaults' 100 ms).
pub(super) const LOOK: Action = Action::CheckVip {
    window: Duration::from_millis(100),
};

pub(super) fn settings(role: Role) -> Settings {
    // The golden scenarios' defaults: probe and heartbeat 100 ms, peer
    // timeout 300 ms, grace 1 s, no start-up window.
    let line = match role {
        Role::Primary => "settings role=primary",
        Role::Secondary => "settings role=secondary",
    };
    let mut s = crate::replay::parse_settings(line).expect("the replay defaults");
    // The peer is node 0 for either role here, so that [`hb`] speaks for
    // it whichever role the core under test has (ids are only labels).
    s.node_id = 1;
    s.peers[0].id = 0;
    assert_eq!(
        (s.interval, s.grace, s.heartbeat_interval, s.peer_timeout),
        (INTERVAL, GRACE, HB, PEER_TIMEOUT)
    );
    s
}

/// The machine-changing actions queued, without probes and heartbeats.
pub(super) fn drain(core: &mut Core) -> Vec<Action> {
    std::iter::from_fn(|| core.poll_action())
        .filter(|a| {
            !matches!(
                a,
                Action::Probe(_) | Action::SendHeartbeat(_) | Action::Notify(_)
            )
        })
        .collect()
}

fn drain_heartbeats(core: &mut Core) -> Vec<Heartbeat> {
    std::iter::from_fn(|| core.poll_action())
        .filter_map(|a| match a {
            Action::SendHeartbeat(hb) => Some(hb),
            _ => None,
        })
        .collect()
}

/// Answers every pending machine action with success until the core
/// settles; returns what it did in order.
pub(super) fn complete_all(core: &mut Core, now: Instant) -> Vec<Action> {
    complete_all_telling(core, now, &mut Vec::new())
}

/// [`complete_all`], keeping the kinds of the events the core told.
fn complete_all_telling(core: &mut Core, now: Instant, events: &mut Vec<EventKind>) -> Vec<Action> {
    let mut done = Vec::new();
    for _ in 0..32 {
        let Some(action) = core.poll_action() else {
            break;
        };
        if let Action::Notify(event) = &action {
            events.push(event.kind);
        }
        // Exits, the witness's asks and fences are answered by the test
        // itself.
        if matches!(
            action,
            Action::Exit | Action::Lease(_) | Action::Fence { .. }
        ) {
            done.push(action);
            continue;
        }
        let Some(reply) = crate::replay::success(&action) else {
            continue;
        };
        done.push(action);
        core.handle_input(now, reply);
    }
    done
}

pub(super) fn probe(core: &mut Core, target: Target, at: Instant, outcome: Outcome) {
    core.handle_input(
        at,
        Input::Probed {
            target,
            started: at,
            outcome,
            refused: false,
        },
    );
}

pub(super) fn peer_fails(core: &mut Core, at: Instant) {
    probe(core, Target::Peer, at, Err("connection refused".into()));
}

pub(super) fn hb(state: WireState, term: u64, seq: u64) -> Heartbeat {
    Heartbeat {
        cluster_id: 7,
        node_id: 0,
        epoch: 1,
        seq,
        term,
        state,
        flags: Flags {
            app_ok: state == WireState::Active,
            data_ok: true,
            nic_ok: true,
            maintenance: false,
            release_request: false,
            deferring: false,
            disabled: false,
            restarting: false,
        },
        config_checksum: 99,
    }
}

/// A node in its start-up window (300 ms) since `t0`.
fn starting(role: Role, t0: Instant, vip_present: bool) -> Core {
    let mut core = Core::new(Settings {
        startup: PEER_TIMEOUT,
        ..settings(role)
    });
    core.handle_input(t0, Input::Started { vip_present });
    assert_eq!(core.state(), State::Starting);
    core
}

/// A secondary that started at `t0`, never heard its peer, and has just
/// seen the peer's application fail at `t0`.
pub(super) fn failing_secondary(t0: Instant) -> Core {
    let mut core = Core::new(settings(Role::Secondary));
    core.handle_input(t0, Input::Started { vip_present: false });
    assert_eq!(core.state(), State::Passive);
    peer_fails(&mut core, t0);
    core
}

/// A primary that started and claimed (peer silent, VIP free).
fn active_primary(t0: Instant) -> Core {
    let mut core = Core::new(settings(Role::Primary));
    core.handle_input(t0, Input::Started { vip_present: false });
    let done = complete_all(&mut core, t0);
    assert_eq!(
        done,
        [LOOK, Action::AddVip, Action::Announce, Action::StartApp]
    );
    assert_eq!(core.state(), State::Active);
    core
}

#[test]
fn no_takeover_one_nanosecond_before_grace() {
    let t0 = Instant::now();
    let mut core = failing_secondary(t0);
    for i in 1..10 {
        let at = t0 + INTERVAL * i;
        core.handle_timeout(at);
        peer_fails(&mut core, at);
    }
    let almost = t0 + GRACE - Duration::from_nanos(1);
    core.handle_timeout(almost);
    assert!(!drain(&mut core).contains(&LOOK));
    assert_eq!(core.state(), State::Passive);
    let status = core.status(almost);
    assert_eq!(status.takeover_in(), Some(Duration::from_nanos(1)));
    assert_eq!(status.failure(), Some(FailureCause::HostOrNetwork));
}

#[test]
fn takeover_exactly_at_grace() {
    let t0 = Instant::now();
    let mut core = failing_secondary(t0);
    let _ = drain(&mut core);
    core.handle_timeout(t0 + GRACE);
    assert_eq!(core.state(), State::Checking);
    assert_eq!(drain(&mut core), [LOOK]);
}

#[test]
fn recovery_per_rise_cancels_the_countdown() {
    let t0 = Instant::now();
    let mut core = failing_secondary(t0);
    for i in 1..=2 {
        probe(&mut core, Target::Peer, t0 + INTERVAL * i, Ok(()));
    }
    assert_eq!(core.status(t0).takeover_in(), None);
    core.handle_timeout(t0 + GRACE * 2);
    assert_eq!(core.state(), State::Passive);
}

#[test]
fn takeover_order_is_check_claim_announce_start() {
    let t0 = Instant::now();
    let mut core = failing_secondary(t0);
    let _ = drain(&mut core);
    core.handle_timeout(t0 + GRACE);
    let done = complete_all(&mut core, t0 + GRACE);
    assert_eq!(
        done,
        [LOOK, Action::AddVip, Action::Announce, Action::StartApp]
    );
    assert_eq!(core.state(), State::Active);
    assert_eq!(core.status(t0).term, 1, "a claim raises the term");
}

#[test]
fn shutdown_order_is_stop_then_release_then_exit() {
    let t0 = Instant::now();
    let mut core = active_primary(t0);
    core.handle_input(t0, Input::Shutdown);
    let done = complete_all(&mut core, t0);
    assert_eq!(done, [Action::StopApp, Action::RemoveVip, Action::Exit]);
    assert_eq!(core.state(), State::Stopped);
    assert_eq!(core.poll_timeout(), None);
}

#[test]
fn the_last_heartbeat_says_stopped() {
    let t0 = Instant::now();
    let mut core = active_primary(t0);
    let _ = drain(&mut core);
    core.handle_input(t0, Input::Shutdown);
    let mut sent = Vec::new();
    for _ in 0..16 {
        let Some(action) = core.poll_action() else {
            break;
        };
        match action {
            Action::SendHeartbeat(h) => sent.push(h.state),
            Action::StopApp => core.handle_input(t0, Input::AppStopped(Ok(()))),
            Action::RemoveVip => core.handle_input(t0, Input::VipRemoved(Ok(()))),
            _ => {}
        }
    }
    assert_eq!(
        sent,
        // One heartbeat per change of what it says, not per state.
        [WireState::Releasing, WireState::Stopped]
    );
}

#[test]
fn shutdown_during_claim_finishes_the_step_then_releases() {
    let t0 = Instant::now();
    let mut core = Core::new(settings(Role::Primary));
    core.handle_input(t0, Input::Started { vip_present: false });
    core.handle_input(
        t0,
        Input::VipChecked {
            holder: None,
            via_vip: Err("refused".into()),
        },
    );
    assert_eq!(drain(&mut core), [LOOK, Action::AddVip]);
    core.handle_input(t0, Input::Shutdown);
    assert_eq!(
        drain(&mut core),
        [],
        "nothing new while AddVip is in flight"
    );
    core.handle_input(t0, Input::VipAdded(Ok(())));
    let done = complete_all(&mut core, t0);
    assert_eq!(done, [Action::RemoveVip, Action::Exit]);
}

#[test]
fn primary_yields_to_another_holder_and_drops_its_stale_vip() {
    let t0 = Instant::now();
    let mut core = Core::new(settings(Role::Primary));
    core.handle_input(t0, Input::Started { vip_present: true });
    assert_eq!(drain(&mut core), [LOOK]);
    core.handle_input(
        t0,
        Input::VipChecked {
            holder: Some("02:00:00:00:00:02".into()),
            via_vip: Ok(()),
        },
    );
    let done = complete_all(&mut core, t0);
    assert_eq!(done, [Action::StopApp, Action::RemoveVip]);
    assert_eq!(core.state(), State::Passive);
}

#[test]
fn restarted_node_drops_its_vip_when_the_peer_holds_one() {
    let t0 = Instant::now();
    let mut core = starting(Role::Secondary, t0, true);
    assert_eq!(core.state(), State::Starting);
    core.handle_input(t0, Input::Heartbeat(hb(WireState::Active, 4, 1)));
    let done = complete_all(&mut core, t0);
    assert_eq!(done, [Action::StopApp, Action::RemoveVip]);
    assert_eq!(core.state(), State::Passive);
}

#[test]
fn restarted_node_resumes_its_vip_when_nobody_else_holds_it() {
    let t0 = Instant::now();
    let mut core = starting(Role::Secondary, t0, true);
    core.handle_input(t0, Input::Heartbeat(hb(WireState::Passive, 4, 1)));
    let done = complete_all(&mut core, t0);
    assert_eq!(done, [Action::AddVip, Action::Announce, Action::StartApp]);
    assert_eq!(core.state(), State::Active);
    assert_eq!(core.status(t0).term, 5, "above the peer's term");
}

#[test]
fn failed_application_start_releases_the_vip_to_a_peer_that_can_serve() {
    let t0 = Instant::now();
    let mut core = failing_secondary(t0);
    core.handle_timeout(t0 + GRACE);
    core.handle_input(
        t0 + GRACE,
        Input::VipChecked {
            holder: None,
            via_vip: Err("x".into()),
        },
    );
    core.handle_input(t0 + GRACE, Input::VipAdded(Ok(())));
    core.handle_input(t0 + GRACE, Input::Announced(Ok(())));
    // The old holder is back and can serve (it reports Passive, healthy).
    core.handle_input(t0 + GRACE, Input::Heartbeat(hb(WireState::Passive, 1, 1)));
    let _ = drain(&mut core);
    core.handle_input(t0 + GRACE, Input::AppStarted(Err("exit status 1".into())));
    let done = complete_all(&mut core, t0 + GRACE);
    assert_eq!(done, [Action::StopApp, Action::RemoveVip]);
    assert_eq!(core.state(), State::Passive);
    assert!(
        core.status(t0 + GRACE).takeover_in() >= Some(GRACE * 2),
        "held down after its own failure, so that the peer gets its turn"
    );
}

#[test]
fn active_node_releases_after_its_own_app_fails_for_grace_to_a_peer_that_can_serve() {
    let t0 = Instant::now();
    let mut core = active_primary(t0);
    let t1 = t0 + INTERVAL;
    core.handle_timeout(t1);
    assert!(std::iter::from_fn(|| core.poll_action()).any(|a| a == Action::Probe(Target::Local)));
    probe(&mut core, Target::Local, t1, Err("refused".into()));
    core.handle_timeout(t1 + GRACE - Duration::from_nanos(1));
    assert_eq!(core.state(), State::Active);
    core.handle_input(
        t1 + GRACE - HB,
        Input::Heartbeat(hb(WireState::Passive, 0, 1)),
    );
    let _ = drain(&mut core);
    core.handle_timeout(t1 + GRACE);
    let done = complete_all(&mut core, t1 + GRACE);
    assert_eq!(done, [Action::StopApp, Action::RemoveVip]);
    assert_eq!(core.state(), State::Passive);
}

#[test]
fn active_node_releases_at_once_when_its_nic_dies() {
    let t0 = Instant::now();
    let mut core = Core::new(Settings {
        watch_nic: true,
        ..settings(Role::Primary)
    });
    probe(&mut core, Target::Nic, t0, Ok(()));
    core.handle_input(t0, Input::Started { vip_present: false });
    probe(&mut core, Target::Nic, t0, Ok(()));
    let _ = complete_all(&mut core, t0);
    assert_eq!(core.state(), State::Active);
    probe(
        &mut core,
        Target::Nic,
        t0,
        Err("NIC eth0 has no carrier".into()),
    );
    let done = complete_all(&mut core, t0);
    assert_eq!(done, [Action::StopApp, Action::RemoveVip]);
}

#[test]
fn no_takeover_without_the_data_service() {
    let t0 = Instant::now();
    let mut core = Core::new(Settings {
        watch_data: true,
        ..settings(Role::Secondary)
    });
    core.handle_input(t0, Input::Started { vip_present: false });
    core.handle_timeout(t0);
    assert!(std::iter::from_fn(|| core.poll_action()).any(|a| a == Action::Probe(Target::Data)));
    probe(&mut core, Target::Data, t0, Err("refused".into()));
    peer_fails(&mut core, t0);
    core.handle_timeout(t0 + GRACE);
    assert_eq!(core.state(), State::Passive);
    assert!(core
        .status(t0 + GRACE)
        .takeover_blocked
        .is_some_and(|b| matches!(b, Blocker::NoData(_))));
    probe(&mut core, Target::Data, t0 + GRACE, Ok(()));
    assert_eq!(
        core.state(),
        State::Passive,
        "rise = 2: one success is not enough"
    );
    probe(&mut core, Target::Data, t0 + GRACE + INTERVAL, Ok(()));
    assert_eq!(core.state(), State::Checking);
}

#[test]
fn no_takeover_while_our_own_nic_is_down() {
    let t0 = Instant::now();
    let mut core = Core::new(Settings {
        watch_nic: true,
        ..settings(Role::Secondary)
    });
    core.handle_input(t0, Input::Started { vip_present: false });
    probe(&mut core, Target::Nic, t0, Err("NIC eth0 is down".into()));
    peer_fails(&mut core, t0);
    core.handle_timeout(t0 + GRACE);
    assert_eq!(core.state(), State::Passive);
    assert!(core.status(t0 + GRACE).takeover_blocked.is_some_and(
        |b| matches!(b, Blocker::NicDown(Some(why)) if why.contains("NIC eth0 is down"))
    ));
    probe(&mut core, Target::Nic, t0 + GRACE, Ok(()));
    assert_eq!(
        core.state(),
        State::Checking,
        "the NIC is back and the peer still failing"
    );
}

#[test]
fn stale_probe_results_do_not_start_a_countdown() {
    let t0 = Instant::now();
    let mut core = Core::new(settings(Role::Secondary));
    core.handle_input(t0, Input::Started { vip_present: false });
    core.handle_input(
        t0,
        Input::Probed {
            target: Target::Peer,
            started: t0 - Duration::from_millis(1),
            outcome: Err("old".into()),
            refused: false,
        },
    );
    assert_eq!(core.status(t0).takeover_in(), None);
}

#[test]
fn inputs_out_of_place_are_ignored() {
    let t0 = Instant::now();
    let mut core = Core::new(settings(Role::Secondary));
    for input in [
        Input::VipAdded(Ok(())),
        Input::AppStopped(Ok(())),
        Input::VipChecked {
            holder: None,
            via_vip: Ok(()),
        },
        Input::VipRemoved(Err("x".into())),
        Input::VipMissing,
    ] {
        core.handle_input(t0, input);
        assert_eq!(core.state(), State::Init);
    }
    assert_eq!(drain(&mut core), []);
}

// --- heartbeats -----------------------------------------------------------

/// A Passive secondary that hears an Active primary.
fn secondary_watching_active_primary(t0: Instant) -> Core {
    let mut core = Core::new(settings(Role::Secondary));
    core.handle_input(t0, Input::Started { vip_present: false });
    core.handle_input(t0, Input::Heartbeat(hb(WireState::Active, 1, 1)));
    assert_eq!(core.state(), State::Passive);
    core
}

#[test]
fn a_live_holding_peer_is_asked_to_release_never_claimed_over() {
    let t0 = Instant::now();
    let mut core = secondary_watching_active_primary(t0);
    peer_fails(&mut core, t0);
    let mut seq = 2;
    let mut t = t0;
    while t < t0 + GRACE {
        t += HB;
        core.handle_input(t, Input::Heartbeat(hb(WireState::Active, 1, seq)));
        seq += 1;
        core.handle_timeout(t);
    }
    assert_eq!(
        core.state(),
        State::Passive,
        "never claims while the peer holds"
    );
    let sent = drain_heartbeats(&mut core);
    assert!(
        sent.last().unwrap().flags.release_request,
        "asks for the VIP"
    );
    assert_eq!(core.status(t).failure(), Some(FailureCause::WebService));
    core.handle_input(t, Input::Heartbeat(hb(WireState::Releasing, 1, seq)));
    assert_eq!(
        core.state(),
        State::Passive,
        "still holding while releasing"
    );
    core.handle_input(t, Input::Heartbeat(hb(WireState::Passive, 1, seq + 1)));
    assert_eq!(
        core.state(),
        State::Passive,
        "waits for the primary to defer"
    );
    let mut defer = hb(WireState::Passive, 1, seq + 2);
    defer.flags.deferring = true;
    core.handle_input(t, Input::Heartbeat(defer));
    assert_eq!(
        core.state(),
        State::Claiming,
        "claims on the peer's word, without a VIP check"
    );
    assert_eq!(core.status(t).term, 2);
}

#[test]
fn causes_from_the_peers_own_report() {
    let t0 = Instant::now();
    let mut core = secondary_watching_active_primary(t0);
    let mut down = hb(WireState::Active, 1, 2);
    down.flags.app_ok = false;
    core.handle_input(t0, Input::Heartbeat(down));
    assert_eq!(core.status(t0).failure(), Some(FailureCause::WebService));
    let mut data = hb(WireState::Active, 1, 3);
    data.flags.data_ok = false;
    core.handle_input(t0, Input::Heartbeat(data));
    assert_eq!(core.status(t0).failure(), Some(FailureCause::DataService));
    assert_eq!(core.status(t0).takeover_in(), Some(GRACE));
    let mut maint = hb(WireState::Active, 1, 4);
    maint.flags.maintenance = true;
    core.handle_input(t0, Input::Heartbeat(maint));
    assert_eq!(core.status(t0).failure(), Some(FailureCause::Maintenance));
    assert!(
        drain_heartbeats(&mut core)
            .last()
            .unwrap()
            .flags
            .release_request,
        "maintenance: at once"
    );
}

#[test]
fn the_active_node_releases_when_asked_by_a_peer_that_can_serve() {
    let t0 = Instant::now();
    let mut core = active_primary(t0);
    let mut ask = hb(WireState::Passive, 1, 1);
    ask.flags.release_request = true;
    ask.flags.data_ok = false;
    core.handle_input(t0, Input::Heartbeat(ask));
    assert_eq!(
        core.state(),
        State::Active,
        "a peer that cannot serve is not obeyed"
    );
    ask.flags.data_ok = true;
    ask.seq = 2;
    core.handle_input(t0, Input::Heartbeat(ask));
    let done = complete_all(&mut core, t0);
    assert_eq!(done, [Action::StopApp, Action::RemoveVip]);
    assert_eq!(core.state(), State::Passive);
    core.handle_timeout(t0 + HB);
    assert_eq!(
        core.state(),
        State::Passive,
        "held down: does not grab the VIP back"
    );
}

#[test]
fn split_brain_the_lower_rank_releases_the_higher_announces() {
    let t0 = Instant::now();
    // Primary at term 1 meets a secondary that claimed at term 2.
    let mut primary = active_primary(t0);
    let other = hb(WireState::Active, 2, 1);
    primary.handle_input(t0, Input::Heartbeat(other));
    let done = complete_all(&mut primary, t0);
    assert_eq!(done, [Action::StopApp, Action::RemoveVip]);

    // The same meeting seen from a primary with the higher term.
    let mut winner = active_primary(t0);
    let mut low = hb(WireState::Active, 0, 1);
    winner.handle_input(t0, Input::Heartbeat(low));
    assert_eq!(winner.state(), State::Active);
    assert_eq!(
        drain(&mut winner),
        [Action::Announce],
        "announces again so clients converge"
    );
    low.seq = 2;
    winner.handle_input(t0 + HB / 2, Input::Heartbeat(low));
    assert_eq!(
        drain(&mut winner),
        [],
        "at most once per heartbeat interval"
    );
    low.seq = 3;
    low.state = WireState::Passive;
    winner.handle_input(t0 + HB, Input::Heartbeat(low));
    assert_eq!(
        drain(&mut winner),
        [Action::Announce],
        "and once more when the loser lets go"
    );
}

#[test]
fn a_restarted_primary_stays_passive_under_manual_failback() {
    let t0 = Instant::now();
    let mut core = starting(Role::Primary, t0, false);
    let active = hb(WireState::Active, 3, 1);
    core.handle_input(t0, Input::Heartbeat(active));
    core.handle_timeout(t0 + PEER_TIMEOUT * 10);
    assert_eq!(core.state(), State::Passive);
}

#[test]
fn automatic_failback_hands_over_after_the_hold() {
    let t0 = Instant::now();
    let hold = Duration::from_secs(5);
    let mut core = Core::new(Settings {
        failback: Failback::Automatic {
            hold,
            drain_timeout: Duration::from_secs(1),
        },
        ..settings(Role::Secondary)
    });
    core.handle_input(t0, Input::Started { vip_present: false });
    // Nobody holds; the secondary waits grace for the primary, which
    // does not claim here (say it is held down), then claims itself.
    let mut seq = 1;
    let mut t = t0;
    while t < t0 + GRACE {
        core.handle_input(t, Input::Heartbeat(hb(WireState::Passive, 1, seq)));
        seq += 1;
        t += HB;
    }
    core.handle_timeout(t0 + GRACE);
    assert!(
        drain_heartbeats(&mut core)
            .last()
            .unwrap()
            .flags
            .release_request,
        "asks the primary"
    );
    let mut defer = hb(WireState::Passive, 1, seq);
    seq += 1;
    defer.flags.deferring = true;
    core.handle_input(t0 + GRACE, Input::Heartbeat(defer));
    let _ = complete_all(&mut core, t0 + GRACE);
    assert_eq!(core.state(), State::Active);
    let mut t = t0 + GRACE;
    while t < t0 + GRACE + hold - HB {
        t += HB;
        core.handle_input(t, Input::Heartbeat(hb(WireState::Passive, 1, seq)));
        seq += 1;
        assert_eq!(
            core.state(),
            State::Active,
            "still within the hold at {:?}",
            t - t0
        );
    }
    t += HB * 2;
    core.handle_input(t, Input::Heartbeat(hb(WireState::Passive, 1, seq)));
    assert_eq!(core.state(), State::Draining, "drains before handing back");
    let done = complete_all(&mut core, t);
    assert_eq!(done, [Action::Drain, Action::StopApp, Action::RemoveVip]);
    assert!(
        core_heartbeat(&mut core, t).flags.deferring,
        "tells the primary to claim at once"
    );
}

#[test]
fn a_silent_peer_whose_service_answers_through_the_vip_is_left_alone() {
    let t0 = Instant::now();
    let mut core = failing_secondary(t0);
    core.handle_timeout(t0 + GRACE);
    core.handle_input(
        t0 + GRACE,
        Input::VipChecked {
            holder: Some("02:00:00:00:00:01".into()),
            via_vip: Ok(()),
        },
    );
    assert_eq!(core.state(), State::Passive);
    let _ = drain(&mut core);
    core.handle_timeout(t0 + GRACE + INTERVAL / 2);
    assert_eq!(
        drain(&mut core),
        [],
        "re-checks are paced by the probe interval"
    );
    core.handle_timeout(t0 + GRACE + INTERVAL);
    assert_eq!(drain(&mut core), [LOOK]);
    core.handle_input(
        t0 + GRACE + INTERVAL,
        Input::VipChecked {
            holder: Some("02:00:00:00:00:01".into()),
            via_vip: Err("refused".into()),
        },
    );
    assert_eq!(
        core.state(),
        State::Claiming,
        "a holder whose application is dead is a conflict to end"
    );
}

#[test]
fn a_removed_vip_is_restored_and_announced() {
    let t0 = Instant::now();
    let mut core = active_primary(t0);
    core.handle_input(t0, Input::VipMissing);
    assert_eq!(core.state(), State::Restoring);
    let done = complete_all(&mut core, t0);
    assert_eq!(done, [Action::AddVip, Action::Announce]);
    assert_eq!(core.state(), State::Active);
}

#[test]
fn the_peer_becomes_unavailable_after_the_timeout() {
    let t0 = Instant::now();
    let core = secondary_watching_active_primary(t0);
    assert!(core
        .status(t0 + PEER_TIMEOUT - Duration::from_nanos(1))
        .watched()
        .is_some_and(|p| p.available));
    assert!(core.poll_timeout().unwrap() <= t0 + PEER_TIMEOUT);
    assert!(!core
        .status(t0 + PEER_TIMEOUT)
        .watched()
        .is_some_and(|p| p.available));
}

#[test]
fn an_idle_primary_defers_to_an_asking_secondary() {
    let t0 = Instant::now();
    let mut core = starting(Role::Primary, t0, false);
    let mut ask = hb(WireState::Passive, 1, 1);
    ask.flags.release_request = true;
    core.handle_input(t0, Input::Heartbeat(ask));
    assert_eq!(
        core.state(),
        State::Passive,
        "does not claim while the secondary asks"
    );
    assert!(drain_heartbeats(&mut core).last().unwrap().flags.deferring);
    ask.flags.release_request = false;
    ask.seq = 2;
    core.handle_input(t0, Input::Heartbeat(ask));
    assert_eq!(core.state(), State::Claiming, "claims once nobody asks");
}

#[test]
fn a_restarting_node_with_a_vip_says_it_holds_one() {
    let t0 = Instant::now();
    let mut core = starting(Role::Secondary, t0, true);
    assert_eq!(
        drain_heartbeats(&mut core).last().unwrap().state,
        WireState::Claiming
    );
}

#[test]
fn config_mismatch_is_noticed() {
    let t0 = Instant::now();
    let mut core = Core::new(settings(Role::Secondary));
    core.handle_input(t0, Input::Started { vip_present: false });
    let mut other = hb(WireState::Active, 1, 1);
    other.config_checksum = 1234;
    core.handle_input(t0, Input::Heartbeat(other));
    assert!(core.status(t0).config_mismatch);
}

// --- admin commands ---------------------------------------------------------

#[test]
fn a_disabled_secondary_never_takes_over() {
    let t0 = Instant::now();
    let mut core = failing_secondary(t0);
    assert_eq!(
        core.handle_admin(t0, AdminCommand::Disable, false)
            .map(|_| ()),
        Ok(())
    );
    core.handle_timeout(t0 + GRACE * 3);
    assert_eq!(core.state(), State::Passive);
    let status = core.status(t0 + GRACE * 3);
    assert_eq!(status.word(), StatusWord::Disabled);
    assert_eq!(status.takeover_in(), None);
    assert!(core
        .handle_admin(t0 + GRACE * 3, AdminCommand::Enable, false)
        .is_ok());
    assert_eq!(
        core.state(),
        State::Checking,
        "enabled again: the overdue takeover goes ahead"
    );
}

#[test]
fn unsafe_commands_are_refused_unless_forced() {
    let t0 = Instant::now();
    let mut core = active_primary(t0);
    assert_eq!(
        core.handle_admin(t0, AdminCommand::Demote, false),
        Err(Refusal::PeerUnavailable)
    );
    assert_eq!(
        core.handle_admin(t0, AdminCommand::Disable, false),
        Err(Refusal::HoldsDemoteFirst)
    );
    assert!(core
        .handle_admin(t0, AdminCommand::Forget { node: "m1".into() }, false)
        .is_err());
    assert_eq!(core.state(), State::Active, "nothing happened");
    assert!(core.handle_admin(t0, AdminCommand::Demote, true).is_ok());
    assert_eq!(core.state(), State::StoppingApp);
}

#[test]
fn demote_hands_over_and_tells_the_peer_to_claim() {
    let t0 = Instant::now();
    let mut core = active_primary(t0);
    let peer = hb(WireState::Passive, 1, 1);
    core.handle_input(t0, Input::Heartbeat(peer));
    assert!(core.handle_admin(t0, AdminCommand::Demote, false).is_ok());
    let _ = complete_all(&mut core, t0);
    assert_eq!(core.state(), State::Passive);
    let last = core_heartbeat(&mut core, t0);
    assert!(last.flags.deferring, "the peer may claim at once");
    core.handle_timeout(t0 + GRACE * 5);
    assert_eq!(core.state(), State::Passive, "does not take the VIP back");
}

#[test]
fn maintenance_hands_over_and_keeps_out_until_off() {
    let t0 = Instant::now();
    let mut core = active_primary(t0);
    let peer = hb(WireState::Passive, 1, 1);
    core.handle_input(t0, Input::Heartbeat(peer));
    assert!(core
        .handle_admin(t0, AdminCommand::MaintenanceOn, false)
        .is_ok());
    let _ = complete_all(&mut core, t0);
    let last = core_heartbeat(&mut core, t0);
    assert!(last.flags.maintenance && last.flags.deferring);
    assert_eq!(core.status(t0).word(), StatusWord::Maintenance);
    // The peer took over and then went silent: still no claim.
    core.handle_timeout(t0 + GRACE * 10);
    assert_eq!(core.state(), State::Passive);
    assert!(core
        .handle_admin(t0, AdminCommand::MaintenanceOff, false)
        .is_ok());
    assert_eq!(core.status(t0).word(), StatusWord::Passive);
}

#[test]
fn promote_asks_the_holder_then_claims() {
    let t0 = Instant::now();
    let mut core = secondary_watching_active_primary(t0);
    assert!(core.handle_admin(t0, AdminCommand::Promote, false).is_ok());
    assert!(core_heartbeat(&mut core, t0).flags.release_request);
    core.handle_input(t0, Input::Heartbeat(hb(WireState::Releasing, 1, 2)));
    let mut defer = hb(WireState::Passive, 1, 3);
    defer.flags.deferring = true;
    core.handle_input(t0, Input::Heartbeat(defer));
    let done = complete_all(&mut core, t0);
    assert_eq!(done, [Action::AddVip, Action::Announce, Action::StartApp]);
    let status = core.status(t0);
    assert_eq!(status.holder, Holder::Local);
    assert_eq!(status.counters.takeovers, 1);
    assert_eq!(
        status.last_takeover.unwrap().cause,
        Because::from(Cause::Promoted)
    );
}

/// The last heartbeat the core queued (sending one now if none is queued).
fn core_heartbeat(core: &mut Core, now: Instant) -> Heartbeat {
    let queued = drain_heartbeats(core);
    match queued.last() {
        Some(h) => *h,
        None => {
            core.handle_timeout(now + HB);
            *drain_heartbeats(core).last().expect("a heartbeat")
        }
    }
}

#[test]
fn a_takeover_is_told_with_its_cause_and_duration() {
    let t0 = Instant::now();
    let mut core = failing_secondary(t0);
    let mut events = Vec::new();
    core.handle_timeout(t0 + GRACE);
    for _ in 0..16 {
        let Some(action) = core.poll_action() else {
            break;
        };
        let at = t0 + GRACE + Duration::from_millis(10);
        match action {
            Action::Notify(e) => events.push(e),
            Action::CheckVip { .. } => core.handle_input(
                at,
                Input::VipChecked {
                    holder: None,
                    via_vip: Err("x".into()),
                },
            ),
            Action::AddVip => core.handle_input(at, Input::VipAdded(Ok(()))),
            Action::Announce => core.handle_input(at, Input::Announced(Ok(()))),
            Action::StartApp => core.handle_input(at, Input::AppStarted(Ok(()))),
            _ => {}
        }
    }
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::PeerDown), "{kinds:?}");
    let takeover = events
        .iter()
        .find(|e| e.kind == EventKind::Takeover)
        .expect("a takeover event");
    assert!(
        takeover
            .cause
            .to_string()
            .contains("network or host failure"),
        "{}",
        takeover.cause
    );
    assert_eq!(
        takeover.duration,
        Some(Duration::from_millis(10)),
        "from the decision to the application healthy"
    );
    assert_eq!(takeover.term, 1);
}

#[test]
fn the_active_node_hands_over_when_it_loses_the_data_service_and_the_peer_has_it() {
    let t0 = Instant::now();
    let mut core = Core::new(Settings {
        watch_data: true,
        ..settings(Role::Primary)
    });
    core.handle_input(t0, Input::Started { vip_present: false });
    probe(&mut core, Target::Data, t0, Ok(()));
    let _ = complete_all(&mut core, t0);
    assert_eq!(core.state(), State::Active);
    let mut peer = hb(WireState::Passive, 0, 1);
    core.handle_input(t0, Input::Heartbeat(peer));
    probe(
        &mut core,
        Target::Data,
        t0,
        Err("connection refused".into()),
    );
    peer.seq = 2;
    core.handle_input(t0 + GRACE - Duration::from_nanos(1), Input::Heartbeat(peer));
    assert_eq!(core.state(), State::Active, "not before grace");
    peer.seq = 3;
    core.handle_input(t0 + GRACE, Input::Heartbeat(peer));
    let done = complete_all(&mut core, t0 + GRACE);
    assert_eq!(done, [Action::StopApp, Action::RemoveVip]);
    assert!(
        core_heartbeat(&mut core, t0 + GRACE).flags.deferring,
        "tells the peer to claim"
    );
}

#[test]
fn automatic_failback_waits_for_the_dwell_time() {
    let t0 = Instant::now();
    let dwell = Duration::from_secs(30);
    let mut core = Core::new(Settings {
        failback: Failback::Automatic {
            hold: GRACE,
            drain_timeout: Duration::from_secs(1),
        },
        dwell,
        ..settings(Role::Secondary)
    });
    core.handle_input(t0, Input::Started { vip_present: false });
    let mut defer = hb(WireState::Passive, 1, 1);
    defer.flags.deferring = true;
    core.handle_input(t0, Input::Heartbeat(defer));
    let _ = complete_all(&mut core, t0);
    assert_eq!(core.state(), State::Active, "took over at t0");
    let mut seq = 2;
    let mut t = t0;
    while t < t0 + dwell - HB {
        t += HB;
        core.handle_input(t, Input::Heartbeat(hb(WireState::Passive, 1, seq)));
        seq += 1;
        assert_eq!(
            core.state(),
            State::Active,
            "hold passed but dwell not at {:?}",
            t - t0
        );
    }
    assert_eq!(core.status(t).counters.dwell_delays, 1);
    t += HB * 2;
    core.handle_input(t, Input::Heartbeat(hb(WireState::Passive, 1, seq)));
    assert_eq!(
        core.state(),
        State::Draining,
        "fails back after the dwell time"
    );
}

#[test]
fn the_applications_maintenance_signal_hands_over_and_is_forgotten_once_passive() {
    let t0 = Instant::now();
    let mut core = active_primary(t0);
    core.handle_input(t0, Input::MaintenanceSignal(true));
    assert_eq!(
        core.state(),
        State::StoppingApp,
        "hands over at once, no grace"
    );
    assert_eq!(core.status(t0).word(), StatusWord::Releasing);
    let _ = complete_all(&mut core, t0);
    assert_eq!(core.state(), State::Passive);
    let status = core.status(t0);
    assert!(
        !status.maintenance_signal,
        "only the Active node probes its application"
    );
    assert!(
        !status.maintenance,
        "the administrator's setting is untouched"
    );
    assert!(
        core_heartbeat(&mut core, t0).flags.deferring,
        "the peer may claim at once"
    );
}

#[test]
fn automatic_failback_never_hands_back_to_a_disabled_primary() {
    let t0 = Instant::now();
    let mut core = Core::new(Settings {
        failback: Failback::Automatic {
            hold: GRACE,
            drain_timeout: Duration::from_secs(1),
        },
        ..settings(Role::Secondary)
    });
    core.handle_input(t0, Input::Started { vip_present: false });
    let mut defer = hb(WireState::Passive, 1, 1);
    defer.flags.deferring = true;
    core.handle_input(t0, Input::Heartbeat(defer));
    let _ = complete_all(&mut core, t0);
    assert_eq!(core.state(), State::Active);
    let mut disabled = hb(WireState::Passive, 1, 2);
    disabled.flags.disabled = true;
    let mut t = t0;
    for seq in 2..40 {
        t += HB;
        disabled.seq = seq;
        core.handle_input(t, Input::Heartbeat(disabled));
    }
    assert_eq!(
        core.state(),
        State::Active,
        "a disabled primary would not claim: nobody would serve"
    );
}

/// Hardening: a node that cannot even run its probes (out of file
/// descriptors) learns nothing of its peer. It must not count that as the
/// peer failing, and must not take over or ask for the VIP meanwhile.
#[test]
fn a_probe_this_node_cannot_run_is_not_a_peer_failure() {
    let t0 = Instant::now();
    let mut core = secondary_watching_active_primary(t0);
    let _ = drain(&mut core);
    let mut at = t0;
    for i in 1..=30 {
        at = t0 + INTERVAL * i;
        core.handle_input(
            at,
            Input::Heartbeat(hb(WireState::Active, 1, 100 + u64::from(i))),
        );
        core.handle_input(
            at,
            Input::ProbeNotRun {
                target: Target::Peer,
                started: at,
                why: "Too many open files (os error 24)".into(),
            },
        );
        core.handle_timeout(at);
    }
    let status = core.status(at);
    assert_eq!(
        status.failure(),
        None,
        "no failure cause from probes that did not run"
    );
    assert_eq!(status.takeover_in(), None);
    assert!(core.takeover_blocker().is_some_and(|b| matches!(
        b,
        Blocker::CannotJudge {
            target: Target::Peer,
            ..
        }
    )));
    let beats = drain_heartbeats(&mut core);
    assert!(
        beats.iter().all(|h| !h.flags.release_request),
        "never asks for the VIP"
    );
    // The peer really fails while this node is blind: still no move, and
    // once the probe runs again the grace period counts from real failures.
    let silent = at + PEER_TIMEOUT;
    core.handle_timeout(silent);
    assert!(!drain(&mut core).contains(&LOOK));
    peer_fails(&mut core, silent);
    assert!(core.takeover_blocker().is_none());
    core.handle_timeout(silent + GRACE);
    assert_eq!(core.state(), State::Checking);
}

/// Hardening: the peer's Active heartbeat that arrives while this node
/// listens before claiming (the ARP probe window) stops the claim.
#[test]
fn a_heartbeat_from_an_active_peer_during_the_look_stops_the_claim() {
    let t0 = Instant::now();
    let mut core = failing_secondary(t0);
    core.handle_timeout(t0 + GRACE);
    assert_eq!(core.state(), State::Checking);
    assert_eq!(drain(&mut core), [LOOK]);
    let during = t0 + GRACE + Duration::from_millis(78);
    core.handle_input(during, Input::Heartbeat(hb(WireState::Active, 3, 1)));
    let answered = during + Duration::from_millis(22);
    core.handle_input(
        answered,
        Input::VipChecked {
            holder: None,
            via_vip: Err("refused".into()),
        },
    );
    assert_eq!(core.state(), State::Passive);
    assert!(!drain(&mut core).contains(&Action::AddVip));
    assert_eq!(core.status(answered).holder, Holder::Peer(0));
}

/// The same look ends in a claim when the peer stays silent.
#[test]
fn the_look_ends_in_a_claim_when_the_peer_stays_silent() {
    let t0 = Instant::now();
    let mut core = failing_secondary(t0);
    core.handle_timeout(t0 + GRACE);
    let _ = drain(&mut core);
    core.handle_input(
        t0 + GRACE + Duration::from_millis(100),
        Input::VipChecked {
            holder: None,
            via_vip: Err("refused".into()),
        },
    );
    assert_eq!(core.state(), State::Claiming);
    assert_eq!(drain(&mut core), [Action::AddVip]);
}

/// Hardening: SIGTERM while the application is starting (not yet ready)
/// interrupts the wait at once instead of waiting out `ready_timeout`,
/// then stops the application and releases the VIP.
#[test]
fn shutdown_while_the_application_starts_interrupts_the_wait() {
    let t0 = Instant::now();
    let mut core = Core::new(settings(Role::Primary));
    core.handle_input(t0, Input::Started { vip_present: false });
    for input in [
        Input::VipChecked {
            holder: None,
            via_vip: Err("refused".into()),
        },
        Input::VipAdded(Ok(())),
        Input::Announced(Ok(())),
    ] {
        core.handle_input(t0, input);
    }
    assert_eq!(core.state(), State::StartingApp);
    let _ = drain(&mut core);
    core.handle_input(t0, Input::Shutdown);
    assert_eq!(drain(&mut core), [Action::Interrupt]);
    core.handle_input(t0, Input::AppStarted(Err("interrupted".into())));
    let mut events = Vec::new();
    let done: Vec<Action> = std::iter::from_fn(|| core.poll_action())
        .filter(|a| match a {
            Action::Notify(e) => {
                events.push(e.kind);
                false
            }
            a => !matches!(a, Action::SendHeartbeat(_) | Action::Probe(_)),
        })
        .collect();
    assert_eq!(done, [Action::StopApp]);
    assert!(
        !events.contains(&EventKind::ApplicationFailed),
        "an interrupted start is not an application failure: {events:?}"
    );
    let rest = complete_all_after(&mut core, t0, Input::AppStopped(Ok(())));
    assert_eq!(rest, [Action::RemoveVip, Action::Exit]);
}

/// Completes `first`, then every action that follows it.
fn complete_all_after(core: &mut Core, now: Instant, first: Input) -> Vec<Action> {
    core.handle_input(now, first);
    complete_all(core, now)
}

/// A Passive peer's heartbeat, with its flags set by `f`.
fn passive_peer(seq: u64, f: impl FnOnce(&mut Flags)) -> Input {
    let mut h = hb(WireState::Passive, 0, seq);
    f(&mut h.flags);
    Input::Heartbeat(h)
}

/// Every action queued, heartbeats and probes left out, notifications kept.
fn drain_with_events(core: &mut Core) -> (Vec<Action>, Vec<EventKind>) {
    let mut events = Vec::new();
    let actions = std::iter::from_fn(|| core.poll_action())
        .filter(|a| match a {
            Action::Notify(e) => {
                events.push(e.kind);
                false
            }
            a => !matches!(a, Action::SendHeartbeat(_) | Action::Probe(_)),
        })
        .collect();
    (actions, events)
}

/// Hardening (a claim that cannot serve must not block a peer that can):
/// the Active node's application fails while its peer cannot serve (it
/// cannot reach the data service). The node keeps the VIP and restarts
/// the application in place with a doubling backoff, never releasing and
/// re-claiming; the moment the peer can serve, it hands over at once.
#[test]
fn own_app_failure_with_no_peer_able_restarts_in_place_then_yields_at_once() {
    let t0 = Instant::now();
    let mut core = active_primary(t0);
    let cannot_serve = |seq| passive_peer(seq, |f| f.data_ok = false);
    core.handle_input(t0, cannot_serve(1));
    let t1 = t0 + INTERVAL;
    probe(&mut core, Target::Local, t1, Err("refused".into()));
    let _ = drain(&mut core);
    let mut now = t1 + GRACE;
    core.handle_input(now - HB, cannot_serve(2));
    core.handle_timeout(now);
    let (actions, events) = drain_with_events(&mut core);
    assert_eq!(actions, [], "no release: nobody else could serve");
    assert!(events.contains(&EventKind::ApplicationFailed));
    assert_eq!(core.state(), State::Active);
    let backoff = Duration::from_millis(200);
    let mut seq = 3;
    for (attempt, wait) in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 8)] {
        let due = now + backoff * wait;
        core.handle_input(due - Duration::from_nanos(1), cannot_serve(seq));
        seq += 1;
        core.handle_timeout(due - Duration::from_nanos(1));
        assert_eq!(
            core.state(),
            State::Active,
            "restart {attempt} not before its backoff"
        );
        core.handle_timeout(due);
        assert_eq!(core.state(), State::RestartingApp, "restart {attempt}");
        assert_eq!(drain(&mut core), [Action::RestartApp]);
        core.handle_input(due, Input::AppStarted(Err("not healthy".into())));
        assert_eq!(core.state(), State::Active);
        now = due;
    }
    assert!(core.status(now).recovery.failed());
    // The peer reaches the data service again: hand over at once.
    core.handle_input(now + HB, passive_peer(seq, |_| {}));
    let done = complete_all(&mut core, now + HB);
    assert_eq!(done, [Action::StopApp, Action::RemoveVip]);
    assert_eq!(core.state(), State::Passive);
    let beat = core_heartbeat(&mut core, now + HB);
    assert!(beat.flags.deferring, "the peer is told to claim at once");
}

/// An application restarted in place that answers its first probe serves
/// again: the recovery ends (however quietly that first probe is logged).
#[test]
fn a_restarted_application_that_answers_ends_the_recovery() {
    let t0 = Instant::now();
    let mut core = active_primary(t0);
    let t1 = t0 + INTERVAL;
    probe(&mut core, Target::Local, t1, Err("refused".into()));
    core.handle_timeout(t1 + GRACE);
    let due = t1 + GRACE + Duration::from_millis(200);
    core.handle_timeout(due);
    assert_eq!(core.state(), State::RestartingApp);
    let _ = drain(&mut core);
    core.handle_input(due, Input::AppStarted(Ok(())));
    assert_eq!(core.state(), State::Active);
    assert!(core.status(due).recovery.failed(), "not yet probed");
    let later = due + INTERVAL;
    probe(&mut core, Target::Local, later, Ok(()));
    assert!(
        !core.status(later).recovery.failed(),
        "{:?}",
        core.status(later).recovery
    );
}

/// A restart under way is cut short when a peer that can serve appears.
#[test]
fn a_restart_in_flight_is_interrupted_for_a_peer_that_can_serve() {
    let t0 = Instant::now();
    let mut core = active_primary(t0);
    let t1 = t0 + INTERVAL;
    probe(&mut core, Target::Local, t1, Err("refused".into()));
    core.handle_timeout(t1 + GRACE);
    core.handle_timeout(t1 + GRACE + Duration::from_millis(200));
    assert_eq!(core.state(), State::RestartingApp);
    let _ = drain(&mut core);
    let at = t1 + GRACE + Duration::from_millis(300);
    core.handle_input(at, passive_peer(1, |_| {}));
    assert_eq!(drain(&mut core), [Action::Interrupt]);
    core.handle_input(at, Input::AppStarted(Err("interrupted".into())));
    let done = complete_all(&mut core, at);
    assert_eq!(done, [Action::StopApp, Action::RemoveVip]);
}

/// A Disabled peer cannot take over: the same restart in place, and no
/// release / re-claim churn (the issue saw it at every failure).
#[test]
fn a_disabled_peer_means_restart_in_place_not_release() {
    let t0 = Instant::now();
    let mut core = active_primary(t0);
    let disabled = |seq| {
        passive_peer(seq, |f| {
            f.disabled = true;
            f.deferring = true;
        })
    };
    core.handle_input(t0, disabled(1));
    let t1 = t0 + INTERVAL;
    probe(&mut core, Target::Local, t1, Err("refused".into()));
    core.handle_input(t1 + GRACE - HB, disabled(2));
    core.handle_timeout(t1 + GRACE);
    assert_eq!(drain(&mut core), []);
    assert_eq!(core.state(), State::Active);
    let status = core.status(t1 + GRACE);
    assert_eq!(
        status.recovery,
        AppRecovery::Restarting {
            attempt: 1,
            fast: 3
        }
    );
    assert_eq!(status.counters.releases, 0);
}

/// A claim whose application fails to start while no peer can serve
/// keeps the VIP and restarts in place (it used to release, be held down,
/// and leave nobody serving).
#[test]
fn a_failed_start_with_no_peer_able_keeps_the_vip_and_restarts() {
    let t0 = Instant::now();
    let mut core = failing_secondary(t0);
    core.handle_timeout(t0 + GRACE);
    for input in [
        Input::VipChecked {
            holder: None,
            via_vip: Err("x".into()),
        },
        Input::VipAdded(Ok(())),
        Input::Announced(Ok(())),
        Input::AppStarted(Err("exit status 1".into())),
    ] {
        core.handle_input(t0 + GRACE, input);
    }
    assert_eq!(core.state(), State::Active);
    let (actions, events) = drain_with_events(&mut core);
    assert!(!actions.contains(&Action::StopApp), "{actions:?}");
    assert!(events.contains(&EventKind::Takeover));
    assert!(events.contains(&EventKind::ApplicationFailed));
    core.handle_timeout(t0 + GRACE + Duration::from_millis(200));
    assert_eq!(core.state(), State::RestartingApp);
    core.handle_input(t0 + GRACE, Input::AppStarted(Ok(())));
    assert_eq!(core.state(), State::Active);
}

/// Hardening (no damping when both sides fail in turn): with a flap limit
/// of 2, the third automatic move stops automatic moves. The holder then
/// keeps the VIP though its peer asks for it, until the administrator
/// resets the count; then the request is honoured at once.
#[test]
fn the_flap_limit_stops_automatic_moves_until_reset() {
    let t0 = Instant::now();
    let mut core = Core::new(Settings {
        flap_limit: 2,
        ..settings(Role::Secondary)
    });
    core.handle_input(t0, Input::Started { vip_present: false });
    let mut now = t0;
    let mut events = Vec::new();
    let settle = |core: &mut Core, now: Instant, events: &mut Vec<EventKind>| {
        let _ = complete_all_telling(core, now, events);
    };
    let asks = |seq| passive_peer(seq, |f| f.release_request = true);
    // Move 1: the primary is silent and its application down: take over.
    peer_fails(&mut core, now);
    now += GRACE + PEER_TIMEOUT;
    core.handle_timeout(now);
    settle(&mut core, now, &mut events);
    assert_eq!(core.state(), State::Active);
    // Move 2: it comes back healthy and asks: hand it over.
    core.handle_input(now, asks(1));
    settle(&mut core, now, &mut events);
    assert_eq!(core.state(), State::Passive);
    // Move 3: it fails again, silent: take over; that is one too many.
    now += PEER_TIMEOUT + HB;
    core.handle_timeout(now);
    peer_fails(&mut core, now);
    now += GRACE * 3;
    core.handle_timeout(now);
    settle(&mut core, now, &mut events);
    assert_eq!(core.state(), State::Active);
    let status = core.status(now);
    assert_eq!(status.recent_moves, 3);
    assert!(status.flapping_since.is_some());
    let told = events.iter().filter(|k| **k == EventKind::Flapping).count();
    assert_eq!(told, 1, "told once: {events:?}");
    // Flapping: the holder keeps the VIP though the peer asks.
    for seq in 2..10 {
        now += HB;
        core.handle_input(now, asks(seq));
        core.handle_timeout(now);
        settle(&mut core, now, &mut events);
        assert_eq!(core.state(), State::Active, "kept while flapping");
    }
    // The administrator resets it: the next request is honoured.
    assert!(core
        .handle_admin(now, AdminCommand::ResetFlapping, false)
        .is_ok());
    assert!(core.status(now).flapping_since.is_none());
    core.handle_input(now + HB, asks(10));
    settle(&mut core, now + HB, &mut events);
    assert_eq!(core.state(), State::Passive);
}

/// The flap limit ends by itself once the moves age out of the window.
#[test]
fn flapping_ends_when_the_moves_age_out() {
    let t0 = Instant::now();
    let window = Duration::from_secs(60);
    let mut core = Core::new(Settings {
        flap_limit: 1,
        flap_window: window,
        ..settings(Role::Primary)
    });
    core.handle_input(t0, Input::Started { vip_present: false });
    let _ = complete_all(&mut core, t0);
    core.handle_input(t0, passive_peer(1, |f| f.release_request = true));
    let _ = complete_all(&mut core, t0);
    assert!(
        core.status(t0).flapping_since.is_some(),
        "claim + release > 1"
    );
    assert_eq!(core.poll_timeout().map(|t| t <= t0 + window), Some(true));
    core.handle_timeout(t0 + window);
    assert!(core.status(t0 + window).flapping_since.is_none());
}

/// Moves made by the administrator do not count towards the flap limit.
#[test]
fn admin_moves_do_not_count_towards_the_flap_limit() {
    let t0 = Instant::now();
    let mut core = Core::new(Settings {
        flap_limit: 1,
        ..settings(Role::Primary)
    });
    core.handle_input(t0, Input::Started { vip_present: false });
    let _ = complete_all(&mut core, t0);
    assert_eq!(core.status(t0).recent_moves, 1, "the start-up claim");
    for i in 0..3u64 {
        let now = t0 + HB * (i as u32 + 1);
        let seq = 10 * (i + 1);
        core.handle_input(now, passive_peer(seq, |_| {}));
        assert!(core.handle_admin(now, AdminCommand::Demote, false).is_ok());
        let _ = complete_all(&mut core, now);
        assert_eq!(core.state(), State::Passive);
        // Promote is refused while the peer claims at our word...
        core.handle_input(now, passive_peer(seq + 1, |f| f.release_request = true));
        assert!(core
            .handle_admin(now, AdminCommand::Promote, false)
            .is_err());
        // ...and once it holds, asks it to hand back.
        core.handle_input(now, Input::Heartbeat(hb(WireState::Active, 5 + i, seq + 2)));
        assert!(core.handle_admin(now, AdminCommand::Promote, false).is_ok());
        core.handle_input(now, passive_peer(seq + 3, |f| f.deferring = true));
        let _ = complete_all(&mut core, now);
        assert_eq!(core.state(), State::Active, "round {i}");
    }
    assert_eq!(core.status(t0).recent_moves, 1);
    assert!(core.status(t0).flapping_since.is_none());
}

/// Takeover speed: a secondary (grace 100 ms, shorter than the peer
/// timeout; a look window of 300 ms, `announce.probe`'s default, as long
/// as the peer timeout) watching an Active primary that was last heard at
/// `last`, and whose application stopped answering at `last` (a timeout,
/// not a refusal: a host or link that went away).
fn primary_going_silent(t0: Instant, last: Instant) -> Core {
    let mut core = Core::new(Settings {
        grace: INTERVAL,
        look_window: PEER_TIMEOUT,
        ..settings(Role::Secondary)
    });
    core.handle_input(t0, Input::Started { vip_present: false });
    let mut seq = 1;
    let mut at = t0;
    while at <= last {
        core.handle_input(at, Input::Heartbeat(hb(WireState::Active, 1, seq)));
        seq += 1;
        at += HB;
    }
    probe(&mut core, Target::Peer, last, Err("timed out".into()));
    let _ = drain(&mut core);
    core
}

fn answer(core: &mut Core, at: Instant, holder: Option<&str>, via_vip: Outcome) {
    core.handle_input(
        at,
        Input::VipChecked {
            holder: holder.map(str::to_owned),
            via_vip,
        },
    );
}

#[test]
fn the_look_runs_while_the_peer_goes_silent_and_the_claim_follows_the_timeout_at_once() {
    let t0 = Instant::now();
    let last = t0 + Duration::from_millis(500);
    let mut core = primary_going_silent(t0, last);
    // The next heartbeat is overdue by half an interval: look now, until
    // the peer timeout runs out.
    let overdue = last + HB + HB / 2;
    core.handle_timeout(overdue - Duration::from_nanos(1));
    assert_eq!(core.state(), State::Passive);
    core.handle_timeout(overdue);
    assert_eq!(core.state(), State::Checking);
    assert_eq!(
        drain(&mut core),
        [Action::CheckVip {
            window: PEER_TIMEOUT - HB - HB / 2
        }]
    );
    // The answer comes when the look ends: nobody holds the VIP.
    let due = last + PEER_TIMEOUT;
    answer(&mut core, due, None, Err("no answer".into()));
    assert_eq!(core.state(), State::Claiming, "claimed at the timeout");
    assert_eq!(drain(&mut core), [Action::AddVip]);
}

#[test]
fn an_answer_that_comes_a_little_early_waits_for_the_timeout() {
    let t0 = Instant::now();
    let last = t0 + Duration::from_millis(500);
    let mut core = primary_going_silent(t0, last);
    core.handle_timeout(last + HB * 3 / 2);
    let _ = drain(&mut core);
    let due = last + PEER_TIMEOUT;
    answer(
        &mut core,
        due - Duration::from_millis(2),
        None,
        Err("x".into()),
    );
    assert_eq!(core.state(), State::Checking);
    core.handle_timeout(due - Duration::from_nanos(1));
    assert_eq!(core.state(), State::Checking);
    core.handle_timeout(due);
    assert_eq!(core.state(), State::Claiming);
}

#[test]
fn a_holder_that_answers_in_the_last_window_stops_or_shapes_the_claim() {
    let t0 = Instant::now();
    let last = t0 + Duration::from_millis(500);
    let due = last + PEER_TIMEOUT;
    // The service answers through the VIP: no claim, keep watching.
    let mut core = primary_going_silent(t0, last);
    core.handle_timeout(last + HB * 3 / 2);
    let _ = drain(&mut core);
    answer(&mut core, due, Some("02:00:00:00:00:01"), Ok(()));
    assert_eq!(core.state(), State::Passive);
    assert!(!drain(&mut core).contains(&Action::AddVip));
    // A host answers ARP but the service does not answer through it: the
    // claim goes on as a conflict, told to the administrator.
    let mut core = primary_going_silent(t0, last);
    core.handle_timeout(last + HB * 3 / 2);
    let _ = drain(&mut core);
    answer(
        &mut core,
        due,
        Some("02:00:00:00:00:01"),
        Err("refused".into()),
    );
    assert_eq!(core.state(), State::Claiming);
    let conflict = std::iter::from_fn(|| core.poll_action())
        .any(|a| matches!(a, Action::Notify(e) if e.kind == EventKind::Conflict));
    assert!(conflict);
}

#[test]
fn a_heartbeat_during_the_look_ahead_cancels_the_claim() {
    let t0 = Instant::now();
    let last = t0 + Duration::from_millis(500);
    let mut core = primary_going_silent(t0, last);
    core.handle_timeout(last + HB * 3 / 2);
    assert_eq!(core.state(), State::Checking);
    // Late, but it came.
    let late = last + Duration::from_millis(250);
    core.handle_input(late, Input::Heartbeat(hb(WireState::Active, 1, 50)));
    answer(&mut core, last + PEER_TIMEOUT, None, Err("x".into()));
    assert_eq!(core.state(), State::Passive);
    assert!(!drain(&mut core).contains(&Action::AddVip));
}

#[test]
fn a_refused_heartbeat_makes_the_peer_gone_without_waiting_for_its_timeout() {
    let t0 = Instant::now();
    let last = t0 + Duration::from_millis(500);
    let mut core = primary_going_silent(t0, last);
    // A refusal of a heartbeat sent before the peer last spoke is stale.
    core.handle_input(last, Input::HeartbeatRefused { node: 0 });
    assert!(core.status(last).watched().is_some_and(|p| p.available));
    // Its kernel answers our next heartbeat with port unreachable.
    let sent = last + Duration::from_millis(50);
    core.handle_timeout(sent);
    assert!(drain_heartbeats(&mut core).len() == 1);
    let refused = sent + Duration::from_millis(1);
    core.handle_input(refused, Input::HeartbeatRefused { node: 0 });
    assert!(!core.status(refused).watched().is_some_and(|p| p.available));
    // The grace (100 ms from the failed probe at `last`) has passed: the
    // look starts now, the configured window.
    core.handle_timeout(last + GRACE.min(INTERVAL));
    assert_eq!(core.state(), State::Checking);
    // A heartbeat after the refusal makes it available again.
    let mut core = primary_going_silent(t0, last);
    core.handle_timeout(sent);
    core.handle_input(refused, Input::HeartbeatRefused { node: 0 });
    assert!(!core.status(refused).watched().is_some_and(|p| p.available));
    core.handle_input(refused + HB, Input::Heartbeat(hb(WireState::Active, 1, 60)));
    assert!(core
        .status(refused + HB)
        .watched()
        .is_some_and(|p| p.available));
}

#[test]
fn missed_heartbeats_and_a_refusing_application_make_the_peer_gone_early() {
    let t0 = Instant::now();
    let last = t0 + Duration::from_millis(500);
    let mut core = primary_going_silent(t0, last);
    core.handle_input(
        last + Duration::from_millis(10),
        Input::Probed {
            target: Target::Peer,
            started: last + Duration::from_millis(10),
            outcome: Err("Connection refused".into()),
            refused: true,
        },
    );
    let two_missed = last + 2 * HB;
    assert!(core
        .status(two_missed - Duration::from_nanos(1))
        .watched()
        .is_some_and(|p| p.available));
    core.handle_timeout(two_missed);
    assert!(!core
        .status(two_missed)
        .watched()
        .is_some_and(|p| p.available));
    // The look ran ahead (from 150 ms) until then: the claim follows.
    answer(&mut core, two_missed, None, Err("x".into()));
    assert_eq!(core.state(), State::Claiming);
}

/// A timer that fires a little late (tokio rounds sleeps up to the next
/// millisecond) must not stretch every heartbeat interval after it: at
/// 20 ms heartbeats a 1 ms drift per beat is 5% of the peer timeout lost.
#[test]
fn heartbeats_keep_their_schedule_when_the_timer_fires_late() {
    let t0 = Instant::now();
    let mut core = Core::new(settings(Role::Secondary));
    core.handle_input(t0, Input::Started { vip_present: false });
    let _ = drain_heartbeats(&mut core);
    let late = Duration::from_millis(1);
    let mut due = t0 + HB;
    for _ in 0..10 {
        assert_eq!(core.timers.get(Timer::Heartbeat), Some(due));
        core.handle_timeout(due + late);
        assert_eq!(drain_heartbeats(&mut core).len(), 1);
        due += HB;
    }
}

/// Runs `core` from `t0` for `span`, answering every machine action with
/// success but the VIP's addition, which the kernel refuses; returns when
/// each `AddVip` was asked, the terms heartbeats carried, and the events.
fn run_with_refused_claims(
    core: &mut Core,
    t0: Instant,
    span: Duration,
) -> (Vec<Duration>, Vec<u64>, Vec<EventKind>) {
    let (mut claims, mut terms, mut events) = (Vec::new(), Vec::new(), Vec::new());
    let mut now = t0;
    for _ in 0..100_000 {
        for _ in 0..64 {
            let Some(action) = core.poll_action() else {
                break;
            };
            match &action {
                Action::AddVip => {
                    claims.push(now - t0);
                    core.handle_input(
                        now,
                        Input::VipAdded(Err("RTNETLINK answers: Permission denied".into())),
                    );
                }
                Action::SendHeartbeat(hb) => terms.push(hb.term),
                Action::Notify(event) => events.push(event.kind),
                // The peer is gone: its application does not answer.
                Action::Probe(Target::Peer) => peer_fails(core, now),
                other => {
                    if let Some(reply) = crate::replay::success(other) {
                        core.handle_input(now, reply);
                    }
                }
            }
        }
        let next = core
            .poll_timeout()
            .unwrap_or(now + Duration::from_millis(100));
        now = next.min(t0 + span).max(now + Duration::from_millis(1));
        if now >= t0 + span {
            break;
        }
        core.handle_timeout(now);
    }
    (claims, terms, events)
}

/// A claim the kernel keeps refusing (an address of the group it will not
/// take) backs off: 1 s, 2, 4 … between claims instead of one a second;
/// the term is raised once for the streak, not per retry; the release is
/// told once; status names the streak; and the first claim after the
/// cause goes away goes through at its retry and ends the streak.
#[test]
fn a_claim_that_keeps_failing_backs_off() {
    let t0 = Instant::now();
    let mut core = failing_secondary(t0);
    let (claims, terms, events) = run_with_refused_claims(&mut core, t0, Duration::from_secs(60));
    let gaps: Vec<u64> = claims.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    assert!(
        claims.len() <= 8,
        "{} claims in 60 s: {claims:?}",
        claims.len()
    );
    assert_eq!(gaps, [1, 2, 4, 8, 16], "the waits double");
    let claimed_terms: std::collections::BTreeSet<u64> =
        terms.iter().copied().filter(|&t| t > 0).collect();
    assert_eq!(
        claimed_terms.len(),
        1,
        "one term for the streak: {claimed_terms:?}"
    );
    let releases = events.iter().filter(|k| **k == EventKind::Release).count();
    assert_eq!(releases, 1, "told once: {events:?}");
    let status = core.status(t0 + Duration::from_secs(60));
    let failed = status
        .failed_claims
        .expect("status names the failed claims");
    assert_eq!(failed.count as usize, claims.len());
    assert!(failed.why.contains("Permission denied"), "{}", failed.why);
    // The cause goes away: the next claim, at its retry, goes through.
    let at = failed.retry_at;
    core.handle_timeout(at);
    let done = complete_all(&mut core, at);
    assert!(done.contains(&Action::AddVip), "{done:?}");
    assert_eq!(core.state(), State::Active);
    assert!(core.status(at).failed_claims.is_none(), "the streak ended");
}
