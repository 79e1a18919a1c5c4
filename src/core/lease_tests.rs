//! The lease logic with a virtual clock: a claim waits for the lease, a
//! refusal leaves the VIP alone, the holder stops at asked + lease −
//! margin however late a renewal is answered or however far the clock
//! steps, `on_loss` decides, and planned moves hand the lease back.

use super::tests::{complete_all, drain, hb, settings, GRACE, LOOK};
use super::*;
use crate::proto::heartbeat::WireState;

/// Lease 2 s: renewed every 500 ms, held here for 1.5 s after each ask.
const LEASE: Duration = Duration::from_secs(2);
const RENEW: Duration = Duration::from_millis(500);
const HELD: Duration = Duration::from_millis(1500);

fn with_lease(role: Role, on_loss: OnLoss) -> Settings {
    Settings {
        witness: Some(LeaseSettings {
            length: LEASE,
            on_loss,
        }),
        ..settings(role)
    }
}

fn granted(term: u64) -> Input {
    Input::Lease(LeaseReply::Granted { term })
}

/// A primary alone that looked at the VIP and now asks for the lease.
fn acquiring_primary(t0: Instant, on_loss: OnLoss) -> Core {
    let mut core = Core::new(with_lease(Role::Primary, on_loss));
    core.handle_input(t0, Input::Started { vip_present: false });
    let done = complete_all(&mut core, t0);
    assert_eq!(done, [LOOK, Action::Lease(LeaseAsk::Acquire)]);
    assert_eq!(core.state(), State::Acquiring);
    core
}

/// A primary that got the lease (term 7) at `t0` and is Active.
fn holding_primary(t0: Instant, on_loss: OnLoss) -> Core {
    let mut core = acquiring_primary(t0, on_loss);
    core.handle_input(t0, granted(7));
    let done = complete_all(&mut core, t0);
    assert_eq!(done, [Action::AddVip, Action::Announce, Action::StartApp]);
    assert_eq!(core.state(), State::Active);
    core
}

/// The renewal due at `at` goes out; returns nothing else it did.
fn renewal_asked(core: &mut Core, at: Instant) {
    core.handle_timeout(at);
    let done = drain(core);
    assert_eq!(
        done,
        [Action::Lease(LeaseAsk::Renew { term: 7 })],
        "at {at:?}"
    );
}

/// The fence's order: the VIP first, the lease handed back, then the
/// application stops.
fn assert_fenced(done: &[Action]) {
    assert_eq!(
        done,
        [
            Action::RemoveVip,
            Action::Lease(LeaseAsk::Release { term: 7 }),
            Action::StopApp
        ]
    );
}

/// From `from` to past `until`, every `step`: a heartbeat from the peer,
/// the timers, and every ask of the witness failing; the VIP must stay.
/// Returns the last instant and heartbeat number.
fn kept_while_heard(
    core: &mut Core,
    (t0, from): (Instant, Instant),
    until: Instant,
    step: Duration,
) -> (Instant, u64) {
    let (mut at, mut seq) = (from, 1);
    while at < until {
        at += step;
        seq += 1;
        core.handle_input(at, Input::Heartbeat(hb(WireState::Passive, 0, seq)));
        core.handle_timeout(at);
        for action in drain(core) {
            assert_ne!(action, Action::RemoveVip, "kept at {:?}", at - t0);
            if matches!(action, Action::Lease(_)) {
                core.handle_input(at, Input::Lease(LeaseReply::Failed("down".into())));
            }
        }
    }
    (at, seq)
}

#[test]
fn a_claim_waits_for_the_lease_and_serves_with_its_term() {
    let t0 = Instant::now();
    let mut core = acquiring_primary(t0, OnLoss::Release);
    assert_eq!(core.status(t0).state.wire(), WireState::Passive);
    core.handle_input(t0 + Duration::from_millis(3), granted(7));
    complete_all(&mut core, t0);
    assert_eq!(core.state(), State::Active);
    let status = core.status(t0);
    assert_eq!(status.term, 7, "the lease's term is the node's term");
    assert_eq!(status.lease.and_then(|l| l.term), Some(7));
}

#[test]
fn a_refused_lease_leaves_the_vip_alone_and_asks_again_a_quarter_lease_later() {
    let t0 = Instant::now();
    let mut core = acquiring_primary(t0, OnLoss::Release);
    let refusal = LeaseReply::HeldBy {
        holder: "m2".into(),
        term: 4,
    };
    core.handle_input(t0, Input::Lease(refusal));
    assert_eq!(core.state(), State::Passive);
    assert!(drain(&mut core).is_empty(), "no VIP is added");
    let blocked = core.status(t0).takeover_blocked.map(|b| b.to_string());
    assert_eq!(
        blocked.as_deref(),
        Some("the witness's lease is held by m2 (term 4)")
    );
    // The peer's application fails all along (it is not there): the next
    // ask comes when the takeover is due again, never before the retry.
    let mut at = t0;
    let mut next_ask = None;
    while at < t0 + GRACE * 3 && next_ask.is_none() {
        at += Duration::from_millis(100);
        super::tests::peer_fails(&mut core, at);
        core.handle_timeout(at);
        let done = complete_all(&mut core, at);
        assert!(!done.contains(&Action::AddVip), "no VIP without the lease");
        if done.contains(&Action::Lease(LeaseAsk::Acquire)) {
            next_ask = Some(at);
        }
    }
    let next_ask = next_ask.expect("asked again");
    assert!(next_ask >= t0 + RENEW, "{:?}", next_ask - t0);
}

#[test]
fn the_holder_renews_every_quarter_and_fences_at_asked_plus_lease_minus_margin() {
    let t0 = Instant::now();
    let mut core = holding_primary(t0, OnLoss::Release);
    renewal_asked(&mut core, t0 + RENEW);
    // A slow renewal: answered 1.2 s after it was asked. It counts from
    // when it was asked, not from when the answer came.
    let asked = t0 + RENEW;
    core.handle_input(asked + Duration::from_millis(1200), granted(7));
    assert_eq!(core.status(asked).lease.and_then(|l| l.term), Some(7));
    // The next renewal was due while the slow one was out: it goes now.
    let again = asked + Duration::from_millis(1200);
    renewal_asked(&mut core, again);
    // Nothing answers any more. One nanosecond before the end: serving.
    let end = asked + HELD;
    core.handle_timeout(end - Duration::from_nanos(1));
    assert_eq!(core.state(), State::Active);
    assert!(drain(&mut core).is_empty());
    core.handle_timeout(end);
    let done = complete_all(&mut core, end);
    assert_eq!(
        done,
        [
            Action::RemoveVip,
            Action::Lease(LeaseAsk::Release { term: 7 }),
            Action::StopApp,
        ],
        "the VIP goes first, the lease is handed back, then the application stops"
    );
    assert_eq!(core.state(), State::Passive);
}

#[test]
fn a_clock_step_past_the_end_fences_at_once_and_a_late_grant_does_not_count() {
    let t0 = Instant::now();
    let mut core = holding_primary(t0, OnLoss::Release);
    renewal_asked(&mut core, t0 + RENEW);
    // The machine was suspended: the next instant it sees is 10 s later.
    let woke = t0 + Duration::from_secs(10);
    core.handle_input(woke, granted(7));
    assert_eq!(
        core.status(woke).lease.and_then(|l| l.term),
        None,
        "a grant answered after the lease would have ended is not a lease"
    );
    core.handle_timeout(woke);
    let done = complete_all(&mut core, woke);
    assert_eq!(done[0], Action::RemoveVip, "{done:?}");
    assert_eq!(core.state(), State::Passive);
}

#[test]
fn a_lease_found_taken_fences_at_once() {
    let t0 = Instant::now();
    let mut core = holding_primary(t0, OnLoss::Keep);
    renewal_asked(&mut core, t0 + RENEW);
    let taken = LeaseReply::HeldBy {
        holder: "m2".into(),
        term: 8,
    };
    core.handle_input(t0 + RENEW, Input::Lease(taken));
    let done = complete_all(&mut core, t0 + RENEW);
    assert_fenced(&done);
}

#[test]
fn on_loss_keep_serves_on_while_the_peer_is_heard_and_fences_once_it_is_not() {
    let t0 = Instant::now();
    let mut core = holding_primary(t0, OnLoss::Keep);
    renewal_asked(&mut core, t0 + RENEW);
    let cut = LeaseReply::Failed("connection refused".into());
    core.handle_input(t0 + RENEW, Input::Lease(cut));
    // Heartbeats go on every 100 ms past the lease's end.
    let end = t0 + RENEW + HELD;
    let step = Duration::from_millis(100);
    let (at, _) = kept_while_heard(&mut core, (t0, t0 + RENEW), end + 5 * step, step);
    assert_eq!(core.state(), State::Active);
    assert!(core.status(at).lease.is_some_and(|l| l.kept));
    // The peer falls silent: past its timeout, the VIP goes.
    let silent = at + Duration::from_millis(300);
    core.handle_timeout(silent);
    let done = complete_all(&mut core, silent);
    assert_fenced(&done);
}

#[test]
fn a_witness_back_while_kept_gives_the_lease_again_without_a_move() {
    let t0 = Instant::now();
    let mut core = holding_primary(t0, OnLoss::Keep);
    renewal_asked(&mut core, t0 + RENEW);
    core.handle_input(t0 + RENEW, Input::Lease(LeaseReply::Failed("down".into())));
    // The witness stays down past the lease's end: every ask fails, the
    // peer's heartbeats keep coming.
    let end = t0 + RENEW + HELD;
    let step = Duration::from_millis(50);
    let (at, seq) = kept_while_heard(&mut core, (t0, t0 + RENEW), end + 4 * step, step);
    assert!(core.status(at).lease.is_some_and(|l| l.kept));
    // The witness is back: the next ask takes the lease again.
    let asked = (0..20)
        .find_map(|k| {
            let when = at + Duration::from_millis(50 * k);
            core.handle_input(when, Input::Heartbeat(hb(WireState::Passive, 0, seq + k)));
            core.handle_timeout(when);
            drain(&mut core)
                .contains(&Action::Lease(LeaseAsk::Acquire))
                .then_some(when)
        })
        .expect("asks for the lease again within a quarter lease");
    core.handle_input(asked, granted(9));
    assert_eq!(core.state(), State::Active);
    assert_eq!(core.status(asked).term, 9, "serves on with the new term");
    assert!(!drain(&mut core).contains(&Action::RemoveVip), "no move");
}

#[test]
fn a_demote_hands_the_lease_back_once_the_vip_is_off() {
    let t0 = Instant::now();
    let mut core = holding_primary(t0, OnLoss::Release);
    core.handle_input(t0, Input::Heartbeat(hb(WireState::Passive, 0, 2)));
    drain(&mut core);
    core.handle_admin(t0, AdminCommand::Demote, false)
        .expect("a demote with a ready peer");
    let done = complete_all(&mut core, t0);
    assert_eq!(
        done,
        [
            Action::StopApp,
            Action::RemoveVip,
            Action::Lease(LeaseAsk::Release { term: 7 })
        ]
    );
}

#[test]
fn with_the_witness_unreachable_nobody_new_claims() {
    let t0 = Instant::now();
    let mut core = Core::new(with_lease(Role::Secondary, OnLoss::Release));
    core.handle_input(t0, Input::Started { vip_present: false });
    // The peer was never heard and fails for the grace period.
    let mut at = t0;
    let mut asks = 0;
    while at < t0 + GRACE * 4 {
        super::tests::peer_fails(&mut core, at);
        core.handle_timeout(at);
        for action in complete_all(&mut core, at) {
            assert_ne!(action, Action::AddVip, "claimed without a lease");
            if action == Action::Lease(LeaseAsk::Acquire) {
                asks += 1;
                let down = LeaseReply::Failed("no route to host".into());
                core.handle_input(at, Input::Lease(down));
            }
        }
        at += Duration::from_millis(100);
    }
    assert!(asks >= 2, "asked again while refused ({asks})");
    assert_ne!(core.state().wire(), WireState::Claiming);
    assert_ne!(core.state().wire(), WireState::Active);
}

#[test]
fn no_witness_claims_as_before() {
    let t0 = Instant::now();
    let mut core = Core::new(settings(Role::Primary));
    core.handle_input(t0, Input::Started { vip_present: false });
    let done = complete_all(&mut core, t0);
    assert!(!done.iter().any(|a| matches!(a, Action::Lease(_))));
    assert!(core.status(t0).lease.is_none());
}

#[test]
fn a_lease_the_peer_is_handing_back_is_asked_for_again_within_milliseconds() {
    let t0 = Instant::now();
    let mut core = Core::new(with_lease(Role::Secondary, OnLoss::Release));
    core.handle_input(t0, Input::Started { vip_present: false });
    core.handle_input(t0, Input::Heartbeat(hb(WireState::Active, 7, 1)));
    drain(&mut core);
    // m1 hands over on purpose: Passive, and it defers to us.
    let mut handing = hb(WireState::Passive, 7, 2);
    handing.flags.deferring = true;
    let at = t0 + Duration::from_millis(100);
    core.handle_input(at, Input::Heartbeat(handing));
    assert_eq!(drain(&mut core), [Action::Lease(LeaseAsk::Acquire)]);
    // Our ask reached the witness before m1's release did.
    let early = LeaseReply::HeldBy {
        holder: "m1".into(),
        term: 7,
    };
    core.handle_input(at, Input::Lease(early));
    assert_eq!(core.state(), State::Passive);
    core.handle_timeout(at + Duration::from_millis(10));
    assert_eq!(
        drain(&mut core),
        [Action::Lease(LeaseAsk::Acquire)],
        "asked again 10 ms later, not a quarter lease later"
    );
    core.handle_input(at + Duration::from_millis(12), granted(8));
    let done = complete_all(&mut core, at);
    assert_eq!(done, [Action::AddVip, Action::Announce, Action::StartApp]);
}

#[test]
fn a_failed_renewal_is_tried_again_and_a_short_outage_costs_nothing() {
    let t0 = Instant::now();
    let mut core = holding_primary(t0, OnLoss::Release);
    renewal_asked(&mut core, t0 + RENEW);
    let failed_at = t0 + RENEW + Duration::from_millis(500);
    core.handle_input(
        failed_at,
        Input::Lease(LeaseReply::Failed("timed out".into())),
    );
    // Asked again half a renewal period later, and granted.
    renewal_asked(&mut core, failed_at + RENEW / 2);
    core.handle_input(failed_at + RENEW / 2, granted(7));
    let later_still = t0 + RENEW + HELD + Duration::from_millis(100);
    core.handle_timeout(later_still);
    assert_eq!(core.state(), State::Active, "the outage cost the lease");
    assert!(!drain(&mut core).contains(&Action::RemoveVip));
}

/// The watchdog is fed only while the lease is confirmed: from the grant
/// until `asked + lease − timeout − margin` (2 s lease, 1 s watchdog,
/// 0.2 s margin: 0.8 s after the ask), moved on by each renewal, and not
/// at all once the node holds nothing.
#[test]
fn the_watchdog_is_fed_until_the_last_renewal_allows() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut core = Core::new(Settings {
        watchdog: Some(Duration::from_secs(1)),
        ..with_lease(Role::Primary, OnLoss::Release)
    });
    core.handle_input(t0, Input::Started { vip_present: false });
    assert_eq!(core.watchdog_feed_until(t0), None, "looking, not holding");
    let _ = complete_all(&mut core, t0);
    assert_eq!(core.state(), State::Acquiring);
    assert_eq!(core.watchdog_feed_until(t0), None, "no lease yet");
    core.handle_input(t0, granted(7));
    let _ = complete_all(&mut core, t0);
    assert_eq!(core.watchdog_feed_until(t0), Some(ms(800)));
    renewal_asked(&mut core, ms(500));
    core.handle_input(ms(510), granted(7));
    assert_eq!(core.watchdog_feed_until(ms(510)), Some(ms(1300)));
    // Renewals fail from here: the deadline stays, and passes before the
    // lease could end at the witness (2.5 s) by the timeout and margin.
    renewal_asked(&mut core, ms(1000));
    core.handle_input(ms(1010), Input::Lease(LeaseReply::Failed("down".into())));
    assert_eq!(core.watchdog_feed_until(ms(1010)), Some(ms(1300)));
    // The lease held here ends (the last good ask + 1.5 s): the node
    // fences itself, and once released holds nothing to feed for.
    core.handle_timeout(ms(2000));
    let _ = complete_all(&mut core, ms(2000));
    assert_eq!(core.state(), State::Passive);
    assert_eq!(core.watchdog_feed_until(ms(2000)), None);
    // Without a watchdog there is nothing to feed.
    let plain = holding_primary(t0, OnLoss::Release);
    assert_eq!(plain.watchdog_feed_until(t0), None);
}
