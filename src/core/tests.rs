//! Unit tests of the core with a virtual clock: the grace boundary to the
//! nanosecond, and the order of actions on every path.

use super::*;

const INTERVAL: Duration = Duration::from_millis(100);
const GRACE: Duration = Duration::from_secs(1);

fn settings(role: Role) -> Settings {
    Settings {
        role,
        interval: INTERVAL,
        grace: GRACE,
        rise: 2,
        watch_data: false,
        watch_nic: false,
        probe_at_start: true,
    }
}

fn drain(core: &mut Core) -> Vec<Action> {
    std::iter::from_fn(|| core.poll_action()).collect()
}

/// Drives a core through every pending action, answering each with
/// success, until it settles; returns what it did in order.
fn complete_all(core: &mut Core, now: Instant) -> Vec<Action> {
    let mut done = Vec::new();
    for _ in 0..32 {
        let Some(action) = core.poll_action() else {
            break;
        };
        if !matches!(action, Action::Probe(_)) {
            done.push(action.clone());
        }
        let reply = match action {
            Action::ProbeArp => Input::ArpProbed { holder: None },
            Action::AddVip => Input::VipAdded(Ok(())),
            Action::Announce => Input::Announced(Ok(())),
            Action::StartApp => Input::AppStarted(Ok(())),
            Action::StopApp => Input::AppStopped(Ok(())),
            Action::RemoveVip => Input::VipRemoved(Ok(())),
            Action::Probe(_) | Action::Exit => continue,
        };
        core.handle_input(now, reply);
    }
    done
}

fn peer_fails(core: &mut Core, at: Instant) {
    core.handle_input(
        at,
        Input::Probed {
            target: Target::Peer,
            started: at,
            outcome: Err("connection refused".into()),
        },
    );
}

/// A secondary that started at `t0` and has just seen the peer fail at `t0`.
fn failing_secondary(t0: Instant) -> Core {
    let mut core = Core::new(settings(Role::Secondary));
    core.handle_input(t0, Input::Started { vip_present: false });
    assert_eq!(core.state(), State::Passive);
    core.handle_timeout(t0);
    assert_eq!(drain(&mut core), vec![Action::Probe(Target::Peer)]);
    peer_fails(&mut core, t0);
    core
}

#[test]
fn no_takeover_one_nanosecond_before_grace() {
    let t0 = Instant::now();
    let mut core = failing_secondary(t0);
    let almost = t0 + GRACE - Duration::from_nanos(1);
    for i in 1..10 {
        let at = t0 + INTERVAL * i;
        core.handle_timeout(at);
        let _ = drain(&mut core);
        peer_fails(&mut core, at);
    }
    core.handle_timeout(almost);
    assert!(!drain(&mut core).contains(&Action::AddVip));
    assert_eq!(core.state(), State::Passive);
    assert_eq!(
        core.status(almost).takeover_in,
        Some(Duration::from_nanos(1))
    );
}

#[test]
fn takeover_exactly_at_grace() {
    let t0 = Instant::now();
    let mut core = failing_secondary(t0);
    assert_eq!(core.poll_timeout(), Some(t0 + INTERVAL));
    core.handle_timeout(t0 + GRACE);
    assert_eq!(core.state(), State::Claiming);
    assert!(drain(&mut core).contains(&Action::AddVip));
}

#[test]
fn recovery_per_rise_cancels_the_countdown() {
    let t0 = Instant::now();
    let mut core = failing_secondary(t0);
    for i in 1..=2 {
        let at = t0 + INTERVAL * i;
        core.handle_input(
            at,
            Input::Probed {
                target: Target::Peer,
                started: at,
                outcome: Ok(()),
            },
        );
    }
    assert_eq!(core.status(t0).takeover_in, None);
    core.handle_timeout(t0 + GRACE * 2);
    assert_eq!(core.state(), State::Passive);
}

#[test]
fn takeover_order_is_claim_announce_start() {
    let t0 = Instant::now();
    let mut core = failing_secondary(t0);
    core.handle_timeout(t0 + GRACE);
    let done = complete_all(&mut core, t0 + GRACE);
    assert_eq!(
        done,
        vec![Action::AddVip, Action::Announce, Action::StartApp]
    );
    assert_eq!(core.state(), State::Active);
}

#[test]
fn shutdown_order_is_stop_then_release_then_exit() {
    let t0 = Instant::now();
    let mut core = Core::new(settings(Role::Primary));
    core.handle_input(t0, Input::Started { vip_present: false });
    let done = complete_all(&mut core, t0);
    assert_eq!(
        done,
        vec![
            Action::ProbeArp,
            Action::AddVip,
            Action::Announce,
            Action::StartApp
        ]
    );
    core.handle_input(t0, Input::Shutdown);
    let done = complete_all(&mut core, t0);
    assert_eq!(done, vec![Action::StopApp, Action::RemoveVip, Action::Exit]);
    assert_eq!(core.state(), State::Stopped);
    assert_eq!(core.poll_timeout(), None);
}

#[test]
fn shutdown_during_claim_finishes_the_step_then_releases() {
    let t0 = Instant::now();
    let mut core = Core::new(settings(Role::Primary));
    core.handle_input(t0, Input::Started { vip_present: false });
    core.handle_input(t0, Input::ArpProbed { holder: None });
    assert_eq!(drain(&mut core), vec![Action::ProbeArp, Action::AddVip]);
    core.handle_input(t0, Input::Shutdown);
    assert_eq!(
        drain(&mut core),
        vec![],
        "nothing new while AddVip is in flight"
    );
    core.handle_input(t0, Input::VipAdded(Ok(())));
    let done = complete_all(&mut core, t0);
    assert_eq!(done, vec![Action::RemoveVip, Action::Exit]);
}

#[test]
fn primary_yields_to_another_holder_and_drops_its_stale_vip() {
    let t0 = Instant::now();
    let mut core = Core::new(settings(Role::Primary));
    core.handle_input(t0, Input::Started { vip_present: true });
    assert_eq!(drain(&mut core), vec![Action::ProbeArp]);
    core.handle_input(
        t0,
        Input::ArpProbed {
            holder: Some("02:00:00:00:00:02".into()),
        },
    );
    let done = complete_all(&mut core, t0);
    assert_eq!(done, vec![Action::StopApp, Action::RemoveVip]);
    assert_eq!(core.state(), State::Passive);
}

#[test]
fn secondary_removes_a_vip_left_by_an_earlier_run() {
    let t0 = Instant::now();
    let mut core = Core::new(settings(Role::Secondary));
    core.handle_input(t0, Input::Started { vip_present: true });
    let done = complete_all(&mut core, t0);
    assert_eq!(done, vec![Action::StopApp, Action::RemoveVip]);
    assert_eq!(core.state(), State::Passive);
}

#[test]
fn failed_application_start_releases_the_vip() {
    let t0 = Instant::now();
    let mut core = failing_secondary(t0);
    core.handle_timeout(t0 + GRACE);
    core.handle_input(t0 + GRACE, Input::VipAdded(Ok(())));
    core.handle_input(t0 + GRACE, Input::Announced(Ok(())));
    let _ = drain(&mut core);
    core.handle_input(t0 + GRACE, Input::AppStarted(Err("exit status 1".into())));
    let done = complete_all(&mut core, t0 + GRACE);
    assert_eq!(done, vec![Action::StopApp, Action::RemoveVip]);
    assert_eq!(core.state(), State::Passive);
    assert_eq!(
        core.status(t0 + GRACE).takeover_in,
        None,
        "a fresh watch starts"
    );
}

#[test]
fn active_node_releases_after_its_own_app_fails_for_grace() {
    let t0 = Instant::now();
    let mut core = Core::new(settings(Role::Primary));
    core.handle_input(t0, Input::Started { vip_present: false });
    let _ = complete_all(&mut core, t0);
    assert_eq!(core.state(), State::Active);
    let t1 = t0 + INTERVAL;
    core.handle_timeout(t1);
    assert_eq!(drain(&mut core), vec![Action::Probe(Target::Local)]);
    core.handle_input(
        t1,
        Input::Probed {
            target: Target::Local,
            started: t1,
            outcome: Err("refused".into()),
        },
    );
    core.handle_timeout(t1 + GRACE - Duration::from_nanos(1));
    assert_eq!(core.state(), State::Active);
    let _ = drain(&mut core);
    core.handle_timeout(t1 + GRACE);
    let done = complete_all(&mut core, t1 + GRACE);
    assert_eq!(done, vec![Action::StopApp, Action::RemoveVip]);
    assert_eq!(core.state(), State::Passive);
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
    let probes = drain(&mut core);
    assert!(probes.contains(&Action::Probe(Target::Data)));
    let data = |core: &mut Core, at, outcome| {
        core.handle_input(
            at,
            Input::Probed {
                target: Target::Data,
                started: at,
                outcome,
            },
        )
    };
    data(&mut core, t0, Err("refused".into()));
    peer_fails(&mut core, t0);
    core.handle_timeout(t0 + GRACE);
    assert_eq!(core.state(), State::Passive);
    assert!(core
        .status(t0 + GRACE)
        .takeover_blocked
        .unwrap()
        .contains("data service"));
    data(&mut core, t0 + GRACE, Ok(()));
    assert_eq!(
        core.state(),
        State::Passive,
        "rise = 2: one success is not enough"
    );
    data(&mut core, t0 + GRACE + INTERVAL, Ok(()));
    assert_eq!(core.state(), State::Claiming);
}

#[test]
fn stale_probe_results_do_not_start_a_countdown() {
    let t0 = Instant::now();
    let mut core = Core::new(settings(Role::Secondary));
    core.handle_input(t0, Input::Started { vip_present: false });
    let before = t0 - Duration::from_millis(1);
    core.handle_input(
        t0,
        Input::Probed {
            target: Target::Peer,
            started: before,
            outcome: Err("old".into()),
        },
    );
    assert_eq!(core.status(t0).takeover_in, None);
}

#[test]
fn inputs_out_of_place_are_ignored() {
    let t0 = Instant::now();
    let mut core = Core::new(settings(Role::Secondary));
    for input in [
        Input::VipAdded(Ok(())),
        Input::AppStopped(Ok(())),
        Input::ArpProbed { holder: None },
        Input::VipRemoved(Err("x".into())),
    ] {
        core.handle_input(t0, input);
        assert_eq!(core.state(), State::Init);
    }
    assert_eq!(drain(&mut core), vec![]);
}

#[test]
fn no_takeover_while_our_own_nic_is_down() {
    let t0 = Instant::now();
    let mut core = Core::new(Settings {
        watch_nic: true,
        ..settings(Role::Secondary)
    });
    core.handle_input(t0, Input::Started { vip_present: false });
    core.handle_timeout(t0);
    assert!(drain(&mut core).contains(&Action::Probe(Target::Nic)));
    let nic = |core: &mut Core, at, outcome| {
        core.handle_input(
            at,
            Input::Probed {
                target: Target::Nic,
                started: at,
                outcome,
            },
        )
    };
    nic(&mut core, t0, Err("NIC eth0 is down".into()));
    peer_fails(&mut core, t0);
    core.handle_timeout(t0 + GRACE);
    assert_eq!(core.state(), State::Passive);
    assert!(core
        .status(t0 + GRACE)
        .takeover_blocked
        .unwrap()
        .contains("NIC eth0 is down"));
    nic(&mut core, t0 + GRACE, Ok(()));
    assert_eq!(
        core.state(),
        State::Claiming,
        "the NIC is back and the peer still failing"
    );
}
