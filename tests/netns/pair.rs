//! Split-brain safety of the real pair in network namespaces (needs root;
//! see tests/common): partitions and heals, crashed daemons with and
//! without their application, wrong keys, forged and replayed heartbeats,
//! and a VIP removed under the Active node. Measured figures are printed
//! (`cargo test --test netns pair:: -- --nocapture`).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{holds_for, wait_for, Topology, GRACE, HEARTBEAT_PORT, PEER_TIMEOUT, VIP};
use understudy::proto::heartbeat::{self, Flags, Heartbeat, WireState};

/// Takeover without the peer's word: it must time out, then fail for grace.
const SILENT_TAKEOVER_LIMIT: Duration = Duration::from_secs(4);

/// Cuts (or restores) IP traffic between m1 and m2, both ways, with
/// blackhole routes; the client still reaches both. m2 also loses the
/// route to the VIP, so that it cannot see the service through it and
/// claims: the worst case, two holders.
fn partition(t: &Topology, on: bool) {
    let verb = if on { "add" } else { "del" };
    for (host, dests) in [
        ("m1", vec!["192.0.2.12/32"]),
        ("m2", vec!["192.0.2.11/32", "192.0.2.10/32"]),
    ] {
        for dest in dests {
            let out = t.exec(host, &["ip", "route", verb, "blackhole", dest]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn h_partition_then_heal_leaves_exactly_one_holder() {
    let mut t = Topology::up("partition");
    t.steady_pair();
    partition(&t, true);
    wait_for(
        "m2 to claim during the partition",
        SILENT_TAKEOVER_LIMIT,
        || (t.vip_holders() == ["m1", "m2"]).then_some(()),
    );
    assert!(
        t.daemon("m2").log_text().contains("conflict"),
        "m2 reports the conflict"
    );
    let healed = Instant::now();
    partition(&t, false);
    let overlap = wait_for(
        "a single holder after the heal",
        Duration::from_secs(3),
        || (t.vip_holders().len() == 1).then(|| healed.elapsed()),
    );
    let holder = t.vip_holders().pop().unwrap();
    assert_eq!(holder, "m2", "the later claim (higher term) keeps the VIP");
    wait_for(
        "the client's neighbour entry to follow",
        Duration::from_secs(2),
        || (t.client_neighbour() == Some(t.mac(&holder))).then_some(()),
    );
    let answered = t.wait_answer(&holder, healed, Duration::from_secs(3));
    holds_for("one holder", Duration::from_millis(500), || {
        t.vip_holders() == [holder.clone()]
    });
    assert!(t.daemon("m1").log_text().contains("split brain"));
    let m2 = t.daemon("m2").log_text();
    assert!(
        m2.contains("we outrank it and announce again")
            || m2.contains("announcing again so that clients follow"),
        "the winner announces again"
    );
    eprintln!(
        "DUAL-ACTIVE after heal: {} ms (heal -> one holder); client answered by {holder} {} ms after the heal",
        overlap.as_millis(),
        answered.as_millis()
    );
}

/// How m2's log says that m1's kernel answered a heartbeat with ICMP port
/// unreachable (its daemon is gone, its host lives).
const REFUSED: &str = "its host refused our heartbeat (ICMP port unreachable)";

#[test]
fn i_a_crashed_daemon_with_a_live_application_keeps_the_service() {
    let mut t = Topology::up("daemononly");
    t.steady_pair();
    t.daemon("m1").signal("KILL");
    let _ = t.daemon("m1").wait_exit(Duration::from_secs(5));
    // m2 sees m1 silent, but the service answers through the VIP.
    holds_for(
        "the VIP stays on m1 and answers",
        PEER_TIMEOUT + GRACE * 2,
        || t.vip_holders() == ["m1"] && t.get_vip().as_deref() == Some("m1"),
    );
    // m1's kernel refused m2's next heartbeat: m2 knew at once that only
    // the daemon was gone, and the look through the VIP kept the service.
    assert!(
        t.daemon("m2").log_text().contains(REFUSED),
        "{}",
        t.dump_logs()
    );
    t.start("m1");
    t.wait_log("m1", "resuming the common IP", Duration::from_secs(5));
    holds_for(
        "nothing moves after the restart",
        Duration::from_millis(800),
        || t.vip_holders() == ["m1"] && t.get_vip().as_deref() == Some("m1"),
    );
}

#[test]
fn j_a_crashed_host_leaving_its_vip_is_taken_over_and_cleaned_up() {
    let mut t = Topology::up("crash");
    t.steady_pair();
    let app = t.app_pid("m1").expect("m1's application");
    let fault = Instant::now();
    t.daemon("m1").signal("KILL");
    crate::common::run(Command::new("kill").args(["-9", &app.to_string()]));
    let took = t.wait_answer("m2", fault, SILENT_TAKEOVER_LIMIT);
    assert_eq!(t.client_neighbour(), Some(t.mac("m2")));
    assert_eq!(
        t.vip_holders(),
        ["m1", "m2"],
        "m1's kernel still has its stale VIP"
    );
    assert!(t.daemon("m2").log_text().contains("conflict"));
    assert!(
        t.daemon("m2").log_text().contains(REFUSED),
        "{}",
        t.dump_logs()
    );
    eprintln!(
        "TAKEOVER crashed host: fault -> first answer from m2: {} ms",
        took.as_millis()
    );
    t.start("m1");
    wait_for(
        "the restarted m1 to remove its stale VIP",
        Duration::from_secs(5),
        || (t.vip_holders() == ["m2"]).then_some(()),
    );
    assert!(t
        .daemon("m1")
        .log_text()
        .contains("left on the NIC by an earlier run"));
    holds_for("m1 stays Passive", Duration::from_millis(800), || {
        t.vip_holders() == ["m2"] && t.get_vip().as_deref() == Some("m2")
    });
}

#[test]
fn k_a_node_with_the_wrong_key_moves_nothing() {
    let mut t = Topology::up("wrongkey");
    t.start("m1");
    t.wait_answer("m1", Instant::now(), Duration::from_secs(10));
    let other = t.config_with_other_key();
    t.start_with("m2", &other);
    holds_for("VIP on m1 only", PEER_TIMEOUT + GRACE * 2, || {
        t.vip_holders() == ["m1"] && t.get_vip().as_deref() == Some("m1")
    });
    for node in ["m1", "m2"] {
        let log = t.daemon(node).log_text();
        assert!(
            log.contains("rejected heartbeat reason=bad_mac"),
            "{node} counts the bad MACs"
        );
        assert!(
            !log.contains("peer available"),
            "{node} never accepted its peer"
        );
    }
}

#[test]
fn l_forged_and_replayed_heartbeats_are_rejected() {
    let mut t = Topology::up("forged");
    t.steady_pair();
    let key = t.key();
    let m1 = "192.0.2.11";
    let forged = Heartbeat {
        cluster_id: heartbeat::cluster_id("test"),
        node_id: 1,
        epoch: 1,
        seq: 1,
        term: 99,
        state: WireState::Active,
        flags: Flags {
            app_ok: true,
            data_ok: true,
            nic_ok: true,
            maintenance: false,
            release_request: true,
            deferring: false,
            disabled: false,
            restarting: false,
        },
        config_checksum: 0,
    };
    // Garbage, a heartbeat under another key, and a well-signed one (as if
    // recorded) sent from the client's address, not m2's.
    t.send_from_client(b"not a heartbeat", m1, HEARTBEAT_PORT);
    t.send_from_client(&forged.encode(b"some other key", 0), m1, HEARTBEAT_PORT);
    t.send_from_client(&forged.encode(&key, 0), m1, HEARTBEAT_PORT);
    wait_for("m1 to count all three", Duration::from_secs(3), || {
        let log = t.daemon("m1").log_text();
        ["reason=malformed", "reason=bad_mac", "reason=wrong_source"]
            .iter()
            .all(|r| log.contains(r))
            .then_some(())
    });
    holds_for("nothing moves", GRACE, || {
        t.vip_holders() == ["m1"] && t.get_vip().as_deref() == Some("m1")
    });
}

#[test]
fn m_a_deleted_vip_is_restored_at_once() {
    let mut t = Topology::up("vipdel");
    t.steady_pair();
    let deleted = Instant::now();
    let out = t.exec(
        "m1",
        &["ip", "addr", "del", &format!("{VIP}/24"), "dev", "eth0"],
    );
    assert!(out.status.success());
    let back = wait_for("the VIP back on m1", Duration::from_secs(1), || {
        (t.vip_holders() == ["m1"]).then(|| deleted.elapsed())
    });
    assert!(t
        .daemon("m1")
        .log_text()
        .contains("removed from the NIC by something else"));
    assert_eq!(t.get_vip().as_deref(), Some("m1"));
    eprintln!(
        "VIP RESTORE: ip addr del -> VIP back: {} ms",
        back.as_millis()
    );
}
