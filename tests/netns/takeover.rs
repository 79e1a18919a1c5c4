//! The real binary in network namespaces: what a client sees during
//! steady state, takeovers, and shutdown (needs root; see tests/common).
//!
//! Timings are those of the test configuration: probe interval 100 ms,
//! grace 1 s. Each takeover case prints its measured time from fault to the
//! first answer from m2 at the client.

use std::time::{Duration, Instant};

use crate::common::{holds_for, wait_for, Topology, GRACE, VIP};

/// A takeover must be complete within grace + 1 s of the fault.
const TAKEOVER_LIMIT: Duration = Duration::from_millis(GRACE.as_millis() as u64 + 1000);

#[test]
fn a_steady_state_vip_on_the_primary_only() {
    let mut t = Topology::up("steady");
    t.steady_pair();
    // Past a whole grace period with both daemons up, nothing moves.
    holds_for(
        "VIP on m1 only, client gets m1",
        GRACE + Duration::from_millis(500),
        || t.vip_holders() == ["m1"] && t.get_vip().as_deref() == Some("m1"),
    );
    assert_eq!(t.client_neighbour(), Some(t.mac("m1")));
}

/// Checks the end state of a takeover by m2 and reports its time.
fn assert_taken_over_by_m2(t: &Topology, fault: Instant, case: &str) {
    let answered = t.wait_answer("m2", fault, TAKEOVER_LIMIT);
    wait_for(
        "the VIP on m2 only",
        TAKEOVER_LIMIT.saturating_sub(fault.elapsed()),
        || (t.vip_holders() == ["m2"]).then_some(()),
    );
    assert_eq!(
        t.client_neighbour(),
        Some(t.mac("m2")),
        "client's neighbour entry for {VIP}"
    );
    assert_eq!(t.get_vip().as_deref(), Some("m2"));
    eprintln!(
        "TAKEOVER {case}: fault -> first answer from m2 at the client: {} ms",
        answered.as_millis()
    );
}

#[test]
fn b_primary_application_stops_secondary_takes_over() {
    let mut t = Topology::up("appstop");
    t.steady_pair();
    let pid = t.app_pid("m1").expect("m1's application runs");
    let fault = Instant::now();
    crate::common::run(std::process::Command::new("kill").arg(pid.to_string()));
    assert_taken_over_by_m2(&t, fault, "application stopped");
    // m1 releases for its own failure or at m2's request, whichever
    // comes first; both are the same moment give or take a heartbeat.
    let log = t.daemon("m1").log_text();
    assert!(
        log.contains("this node's application failed for the grace period")
            || log.contains("the peer asked for the common IP"),
        "m1 released for a reason it states"
    );
}

#[test]
fn c_primary_link_down_secondary_takes_over() {
    let mut t = Topology::up("linkdown");
    t.steady_pair();
    let fault = Instant::now();
    let out = t.exec("m1", &["ip", "link", "set", "eth0", "down"]);
    assert!(out.status.success());
    assert_taken_over_by_m2(&t, fault, "link down");
}

#[test]
fn d_sigterm_stops_the_application_and_removes_the_vip() {
    let mut t = Topology::up("sigterm");
    t.steady_pair();
    assert_eq!(t.stop_count("m1"), 0);
    t.daemon("m1").signal("TERM");
    let status = t.daemon("m1").wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    assert_eq!(t.stop_count("m1"), 1, "the stop command ran once");
    assert!(
        !t.addresses("m1").iter().any(|a| a == VIP),
        "VIP gone from m1's NIC"
    );
    assert!(
        t.app_pid("m1").is_none(),
        "the application removed its PID file on exit"
    );
}

#[test]
fn f_restarted_secondary_removes_a_stale_vip_while_the_primary_holds() {
    let mut t = Topology::up("stale");
    t.start("m1");
    t.wait_answer("m1", Instant::now(), Duration::from_secs(10));
    // As if an earlier run of m2 had died holding the VIP.
    let out = t.exec(
        "m2",
        &["ip", "addr", "add", &format!("{VIP}/24"), "dev", "eth0"],
    );
    assert!(out.status.success());
    t.start("m2");
    wait_for("m2 to drop the stale VIP", Duration::from_secs(5), || {
        (t.vip_holders() == ["m1"]).then_some(())
    });
    assert!(t
        .daemon("m2")
        .log_text()
        .contains("left on the NIC by an earlier run"));
}

#[test]
fn g_primary_keeps_out_while_another_host_serves_the_vip() {
    let mut t = Topology::up("holder");
    // Another host holds the VIP and serves the application through it.
    let out = t.exec(
        "cl",
        &["ip", "addr", "add", &format!("{VIP}/24"), "dev", "eth0"],
    );
    assert!(out.status.success());
    let app = t.spawn_app("cl");
    let config = t.config.clone();
    t.assert_m1_keeps_out(&config, Topology::vip_holders);
    drop(app);
}

#[test]
fn e_iflist_in_a_namespace() {
    let t = Topology::up("iflist");
    let out = t.exec("m1", &[crate::common::bin(), "iflist", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let names: Vec<&str> = v["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lo", "eth0"]);
    let eth0 = &v["interfaces"][1];
    assert_eq!(eth0["admin"], "up");
    assert_eq!(eth0["carrier"], true);
    assert_eq!(eth0["mac"].as_str(), Some(t.mac("m1").as_str()));
    let v4: Vec<_> = eth0["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| format!("{}/{}", a["address"].as_str().unwrap(), a["prefix"]))
        .collect();
    assert_eq!(v4, ["192.0.2.11/24"]);

    let out = t.exec(
        "m1",
        &[crate::common::bin(), "iflist", "--json", "--for", VIP],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["for"]["nic"], "eth0");
    assert_eq!(v["interfaces"][1]["holds_for"], true);
    assert_eq!(v["interfaces"][0]["holds_for"], false);

    let out = t.exec(
        "m1",
        &[crate::common::bin(), "iflist", "--for", "203.0.113.5"],
    );
    assert!(!out.status.success(), "no NIC holds it: non-zero exit");
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("no interface has a subnet that holds 203.0.113.5"));
}
