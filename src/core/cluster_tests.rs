//! More than two nodes, with a virtual clock: the watched peer follows the
//! holder, and a node behind a more preferred ready peer claims only after
//! it (one deferral step per node ahead, and, behind a silent holder, not
//! before that holder's lease has surely run out).

use super::tests::{drain, hb, probe, GRACE, HB, INTERVAL};
use super::*;
use crate::proto::heartbeat::{Heartbeat, WireState};

const LEASE: Duration = Duration::from_secs(2);

/// Node `me` (0-based) of three, m1 the primary, with a 2 s lease: the
/// golden scenarios' settings line.
fn node_of_three(me: u16) -> Settings {
    let role = if me == 0 { "primary" } else { "secondary" };
    let line = format!("settings role={role} node={} nodes=3 lease=2s", me + 1);
    let s = crate::replay::parse_settings(&line).expect("the scenario settings");
    assert_eq!(s.witness.map(|w| w.length), Some(LEASE));
    s
}

fn from(id: u16, state: WireState, term: u64, seq: u64) -> Input {
    Input::Heartbeat(Heartbeat {
        node_id: id,
        ..hb(state, term, seq)
    })
}

/// m3 watching m1 serve (term 4) and hearing m2 ready, until `until`.
fn m3_watching(t0: Instant, until: Instant) -> Core {
    let mut core = Core::new(node_of_three(2));
    core.handle_input(t0, Input::Started { vip_present: false });
    let (mut at, mut seq) = (t0, 1);
    while at <= until {
        core.handle_input(at, from(0, WireState::Active, 4, seq));
        core.handle_input(at, from(1, WireState::Passive, 0, seq));
        probe(&mut core, Target::Peer, at, Ok(()));
        core.handle_timeout(at);
        at += HB;
        seq += 1;
    }
    let _ = drain(&mut core);
    core
}

/// Does `core` look at the VIP or ask for the lease at `at`?
fn asks_at(core: &mut Core, at: Instant) -> bool {
    core.handle_timeout(at);
    std::iter::from_fn(|| core.poll_action()).any(|a| {
        matches!(
            a,
            Action::Lease(LeaseAsk::Acquire) | Action::CheckVip { .. }
        )
    })
}

#[test]
fn the_watched_peer_is_the_holder_and_follows_a_new_one() {
    let t0 = Instant::now();
    let mut core = m3_watching(t0, t0 + 3 * HB);
    let status = core.status(t0 + 3 * HB);
    assert_eq!(status.holder, Holder::Peer(0));
    assert_eq!(status.holder_name("m3"), Some("m1"));
    assert_eq!(status.peers.len(), 2);
    let at = t0 + 4 * HB;
    core.handle_input(at, from(1, WireState::Claiming, 5, 50));
    let actions: Vec<Action> = std::iter::from_fn(|| core.poll_action()).collect();
    assert!(actions.contains(&Action::WatchPeer(1)), "{actions:?}");
    let status = core.status(at);
    assert_eq!(status.holder, Holder::Peer(1), "the highest term holds");
    assert!(status.peers.iter().any(|p| p.watched && p.name == "m2"));
}

#[test]
fn behind_a_ready_peer_a_silent_holders_lease_is_left_to_it_first() {
    let t0 = Instant::now();
    let last = t0 + 5 * HB;
    let mut core = m3_watching(t0, last);
    // m1 falls silent and its application stops answering; m2 stays
    // ready. m2 (ahead) would ask at once; m3 waits until m1's lease has
    // surely run out (last heartbeat + lease + an interval + a quarter
    // lease) and one deferral step more.
    let step = INTERVAL + HB + LEASE / 4;
    let not_before = last + LEASE + HB + LEASE / 4 + step;
    let (mut at, mut seq) = (last + HB, 100);
    let mut asked = None;
    while at < not_before + GRACE {
        core.handle_input(at, from(1, WireState::Passive, 0, seq));
        probe(
            &mut core,
            Target::Peer,
            at,
            Err("connection refused".into()),
        );
        if asks_at(&mut core, at) {
            asked = Some(at);
            break;
        }
        at += Duration::from_millis(10);
        seq += 1;
    }
    let asked = asked.expect("m3 claims in the end");
    assert!(
        asked >= not_before - core.settings.look_window,
        "m3 looked at {:?}, before {:?}",
        asked - last,
        not_before - last
    );
    assert!(asked <= not_before + HB, "{:?}", asked - last);
}

/// A cold start of three: m3 hears m2 while m2 is still in its start-up
/// window; m2 is more preferred, so m3 gives it a deferral step instead of
/// asking for the lease on its word that nobody holds.
#[test]
fn a_starting_more_preferred_peer_is_waited_for() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut m3 = Core::new(Settings {
        startup: Duration::from_millis(300),
        ..node_of_three(2)
    });
    m3.handle_input(t0, Input::Started { vip_present: false });
    m3.handle_input(ms(20), from(1, WireState::Starting, 0, 1));
    for at in [40, 100, 140] {
        assert!(
            !asks_at(&mut m3, ms(at)),
            "m3 asks at {at} ms, m2 still starting"
        );
        m3.handle_input(ms(at), from(1, WireState::Starting, 0, at));
    }
}

/// A cold start of three, the backups first. m2 hears m3 (less preferred)
/// 20 ms in: it keeps listening instead of going Passive on m3's word (it
/// would then have claimed past m1, not yet heard). m1's heartbeat ends
/// m2's window, but only once m2's own NIC is judged: until then its
/// heartbeats say it is starting, not that its NIC is down.
#[test]
fn a_cold_start_waits_for_the_more_preferred_node_and_its_own_checks() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut m2 = Core::new(Settings {
        startup: Duration::from_millis(300),
        watch_nic: true,
        ..node_of_three(1)
    });
    m2.handle_input(t0, Input::Started { vip_present: false });
    m2.handle_input(ms(20), from(2, WireState::Starting, 0, 1));
    assert_eq!(
        m2.state(),
        State::Starting,
        "a less preferred node does not end the window"
    );
    m2.handle_input(ms(40), from(0, WireState::Starting, 0, 1));
    assert_eq!(m2.state(), State::Starting, "its NIC is not judged yet");
    probe(&mut m2, Target::Nic, ms(50), Ok(()));
    assert_eq!(m2.state(), State::Passive, "m1 heard and the NIC judged");
}

/// The most preferred node ends its window on any node's heartbeat, and a
/// node that heard only less preferred ones ends it with its timer (and,
/// the most preferred one heard, claims).
#[test]
fn the_most_preferred_node_ends_its_window_on_any_heartbeat() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let start = |me: u16| {
        let mut core = Core::new(Settings {
            startup: Duration::from_millis(300),
            ..node_of_three(me)
        });
        core.handle_input(t0, Input::Started { vip_present: false });
        core.handle_input(ms(20), from(2, WireState::Starting, 0, 1));
        core
    };
    assert_ne!(start(0).state(), State::Starting, "m1 hears m3");
    let mut m2 = start(1);
    assert_eq!(m2.state(), State::Starting, "m2 hears only m3");
    m2.handle_timeout(ms(300));
    assert_ne!(m2.state(), State::Starting, "the window ran out");
}

/// A cold start: m1's first probe of a peer's application fails before
/// any peer is heard (nothing serves yet). That is no failure of the
/// peer's: no "peer down", and m1's claim once m2 is heard is not a
/// takeover for a failure (it was logged as "peer failed for the grace
/// period … the peer released the common IP").
#[test]
fn a_cold_start_reports_no_peer_failure() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut m1 = Core::new(Settings {
        startup: Duration::from_millis(300),
        ..node_of_three(0)
    });
    m1.handle_input(t0, Input::Started { vip_present: false });
    probe(
        &mut m1,
        Target::Peer,
        ms(1),
        Err("connection refused".into()),
    );
    m1.handle_timeout(ms(2));
    m1.handle_input(ms(5), from(1, WireState::Starting, 0, 1));
    let actions: Vec<Action> = std::iter::from_fn(|| m1.poll_action()).collect();
    assert!(
        actions.contains(&Action::Lease(LeaseAsk::Acquire)),
        "m1 asks for the lease: {actions:?}"
    );
    let notified: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify(e) => Some(e.kind),
            _ => None,
        })
        .collect();
    assert!(
        !notified.contains(&EventKind::PeerDown),
        "notified {notified:?}"
    );
}
