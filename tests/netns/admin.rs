//! Operating the pair from the command line, against real daemons in
//! network namespaces (needs root; see tests/common): the status table,
//! disable, promote, demote, maintenance, and settings kept across a
//! restart.

use std::time::{Duration, Instant};

use crate::common::{holds_for, wait_for, Topology, GRACE, PEER_TIMEOUT};

fn node_status(status: &serde_json::Value, name: &str) -> String {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .map(|n| n["status"].as_str().unwrap().to_owned())
        .unwrap()
}

#[test]
fn n_status_shows_both_nodes() {
    let mut t = Topology::up("status");
    t.steady_pair();
    let s = t.status("m2");
    assert_eq!(s["local"], "m2");
    assert_eq!(node_status(&s, "m1"), "Active");
    assert_eq!(node_status(&s, "m2"), "Passive");
    assert_eq!(s["holder"]["node"], "m1");
    let m1 = &s["nodes"][0];
    assert_eq!(m1["name"], "m1");
    assert_eq!(m1["role"], "primary");
    assert_eq!(m1["config_match"], true);
    assert!(m1["last_heartbeat"]["age_ms"].as_u64().unwrap() < 1000);
    assert_eq!(s["nodes"][1]["local"], true);
    let (ok, table) = t.ctl("m1", &["status"]);
    assert!(ok, "{table}");
    let first = table.lines().next().unwrap();
    for column in [
        "NODE",
        "ADDRESS",
        "ROLE",
        "STATUS",
        "LAST HEARTBEAT",
        "TERM",
        "CONFIG",
    ] {
        assert!(first.contains(column), "{column} missing: {table}");
    }
    assert!(table.contains("VIP 192.0.2.10/24 held by m1"), "{table}");
    assert!(table.contains("Last takeover: m1"), "{table}");
}

#[test]
fn o_a_disabled_secondary_does_not_take_over_and_stays_disabled_after_restart() {
    let mut t = Topology::up("disable");
    t.steady_pair();
    let (ok, text) = t.ctl("m2", &["disable"]);
    assert!(ok, "{text}");
    assert_eq!(node_status(&t.status("m2"), "m2"), "Disabled");
    wait_for("m1 to see m2 Disabled", Duration::from_secs(2), || {
        (node_status(&t.status("m1"), "m2") == "Disabled").then_some(())
    });
    let pid = t.app_pid("m1").unwrap();
    crate::common::run(std::process::Command::new("kill").arg(pid.to_string()));
    holds_for(
        "no takeover by the disabled m2",
        GRACE * 2 + PEER_TIMEOUT,
        || !t.vip_holders().contains(&"m2".to_owned()),
    );
    // The setting survives a restart of m2's daemon.
    t.daemon("m2").signal("TERM");
    let _ = t.daemon("m2").wait_exit(Duration::from_secs(5));
    t.start("m2");
    wait_for("m2 back", Duration::from_secs(5), || {
        t.socket("m2").exists().then_some(())
    });
    wait_for("m2's status", Duration::from_secs(5), || {
        (t.ctl("m2", &["status", "--json"]).0).then_some(())
    });
    assert_eq!(node_status(&t.status("m2"), "m2"), "Disabled");
    holds_for("still no takeover", GRACE * 2, || {
        !t.vip_holders().contains(&"m2".to_owned())
    });
    let (ok, text) = t.ctl("m2", &["enable"]);
    assert!(ok, "{text}");
    assert_eq!(node_status(&t.status("m2"), "m2"), "Passive");
}

#[test]
fn p_promote_and_demote_hand_over() {
    let mut t = Topology::up("promote");
    t.steady_pair();
    let began = Instant::now();
    t.ctl_until_ok("m2", &["promote"]);
    t.wait_answer("m2", began, Duration::from_secs(3));
    wait_for("m2 the only holder", Duration::from_secs(2), || {
        (t.vip_holders() == ["m2"]).then_some(())
    });
    eprintln!(
        "PROMOTE: command -> first answer from m2: {} ms",
        began.elapsed().as_millis()
    );
    wait_for("m2 Active", Duration::from_secs(3), || {
        (node_status(&t.status("m2"), "m2") == "Active").then_some(())
    });
    let (ok, text) = t.ctl("m2", &["promote"]);
    assert!(ok && text.contains("already holds"), "{text}");
    let began = Instant::now();
    t.ctl_until_ok("m2", &["demote"]);
    t.wait_answer("m1", began, Duration::from_secs(3));
    wait_for("m1 the only holder", Duration::from_secs(2), || {
        (t.vip_holders() == ["m1"]).then_some(())
    });
    eprintln!(
        "DEMOTE: command -> first answer from m1: {} ms",
        began.elapsed().as_millis()
    );
    // Unsafe: demote m1 while m2 is disabled.
    assert!(t.ctl("m2", &["disable"]).0);
    wait_for("m1 to see m2 Disabled", Duration::from_secs(2), || {
        (node_status(&t.status("m1"), "m2") == "Disabled").then_some(())
    });
    let (ok, text) = t.ctl("m1", &["demote"]);
    assert!(!ok && text.contains("refused"), "{text}");
    assert_eq!(t.vip_holders(), ["m1"], "nothing happened");
}

#[test]
fn q_maintenance_hands_over_and_keeps_out() {
    let mut t = Topology::up("maint");
    t.steady_pair();
    t.ctl_until_ok("m1", &["maintenance", "on"]);
    wait_for("m2 to take over", Duration::from_secs(3), || {
        (t.vip_holders() == ["m2"]).then_some(())
    });
    t.wait_answer("m2", Instant::now(), Duration::from_secs(5));
    assert_eq!(node_status(&t.status("m1"), "m1"), "Maintenance");
    // m2 fails: m1 in maintenance must not take the VIP back.
    let pid = wait_for("m2's application", Duration::from_secs(3), || {
        t.app_pid("m2")
    });
    crate::common::run(std::process::Command::new("kill").arg(pid.to_string()));
    holds_for("m1 keeps out", GRACE * 2 + PEER_TIMEOUT, || {
        !t.vip_holders().contains(&"m1".to_owned())
    });
    // Nobody else can serve, so m2 keeps the VIP and restarts its
    // application in place (restart_backoff, 2 s by default).
    t.wait_log(
        "m2",
        "the application serves again",
        Duration::from_secs(10),
    );
    assert_eq!(t.vip_holders(), ["m2"]);
    // Once m1 sees m2 healthy again (else it would rightly ask for the VIP
    // the moment it leaves maintenance).
    wait_for("m1 to see m2 healthy", Duration::from_secs(5), || {
        let v = t.status("m1");
        let m2 = v["nodes"]
            .as_array()?
            .iter()
            .find(|n| n["name"] == "m2")?
            .clone();
        m2["failing"].is_null().then_some(())
    });
    let (ok, text) = t.ctl("m1", &["maintenance", "off"]);
    assert!(ok, "{text}");
    assert_eq!(node_status(&t.status("m1"), "m1"), "Passive");
    // Failback is manual: m2 (which restarted its application) keeps the VIP.
    holds_for("m2 keeps the VIP", GRACE, || t.vip_holders() == ["m2"]);
}

#[test]
fn w_the_applications_maintenance_signal_hands_over() {
    let mut t = Topology::up("maintsig");
    t.steady_pair();
    let began = Instant::now();
    std::fs::write(t.dir.join("m1.maint"), "").unwrap();
    wait_for("m2 to take over", Duration::from_secs(3), || {
        (t.vip_holders() == ["m2"]).then_some(())
    });
    eprintln!(
        "MAINTENANCE SIGNAL: 503 from m1's application -> VIP on m2: {} ms",
        began.elapsed().as_millis()
    );
    let log = t.daemon("m1").log_text();
    assert!(
        log.contains("the application answers its maintenance signal"),
        "m1 says why it handed over"
    );
    assert!(
        began.elapsed() < GRACE * 2,
        "a handover, not a failure waiting out grace"
    );
}

#[test]
fn x_automatic_failback_drains_connections_then_hands_back_with_one_holder() {
    let mut t = Topology::up("failback");
    let text = std::fs::read_to_string(&t.config).unwrap()
        + "\n[failback]\nmode = \"automatic\"\nhold = \"1s\"\ndrain_timeout = \"5s\"\n";
    let config = t.dir.join("failback.toml");
    std::fs::write(&config, text).unwrap();
    t.start_with("m1", &config);
    t.wait_log("m1", "claimed the common IP", Duration::from_secs(10));
    t.start_with("m2", &config);
    t.wait_log("m2", "peer available", Duration::from_secs(10));
    let pid = t.app_pid("m1").unwrap();
    let fault = Instant::now();
    crate::common::run(std::process::Command::new("kill").arg(pid.to_string()));
    t.wait_answer("m2", fault, Duration::from_secs(3));
    // A user keeps a connection open on m2 for 2 s.
    let script = "import socket,time; s=socket.create_connection(('192.0.2.10',80)); time.sleep(2.0); s.close()";
    let user = std::process::Command::new("ip")
        .args(["netns", "exec", &t.ns("cl"), "python3", "-c", script])
        .spawn()
        .expect("the user's connection");
    let _user = crate::common::ChildGuard(user);
    let opened = Instant::now();
    // From now until m1 serves again, there is never more than one holder.
    let mut gap_started: Option<Instant> = None;
    let mut gap = Duration::ZERO;
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let holders = t.vip_holders();
        assert!(
            holders.len() <= 1,
            "two holders during a planned handover: {holders:?}"
        );
        match (holders.as_slice(), gap_started) {
            ([], None) => gap_started = Some(Instant::now()),
            ([h], Some(g)) if h == "m1" => {
                gap = g.elapsed();
                break;
            }
            ([h], _) if h == "m1" => break,
            _ => {}
        }
        assert!(Instant::now() < deadline, "no failback within 8 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    let waited = opened.elapsed();
    let log = t.daemon("m2").log_text();
    assert!(log.contains("drain done"), "m2 drained before handing back");
    assert!(
        waited >= Duration::from_millis(1800),
        "handed back before the user's connection closed ({waited:?})"
    );
    t.wait_answer("m1", Instant::now(), Duration::from_secs(3));
    // The gap, from the daemons' own logs: m2's VIP removed -> m1's added.
    let stamp = |log: &str, what: &str| {
        let line = log.lines().rev().find(|l| l.contains(what)).expect(what);
        humantime::parse_rfc3339(line.split_whitespace().next().unwrap()).expect("a timestamp")
    };
    let removed = stamp(&log, "common IP removed");
    let added = stamp(&t.daemon("m1").log_text(), "common IP added");
    let logged_gap = added
        .duration_since(removed)
        .expect("m1 adds after m2 removes");
    eprintln!(
        "FAILBACK: user's connection closed at ~2000 ms; VIP back on m1 {} ms after it opened; \
         gap with no holder {:.1} ms (logs), {} ms (10 ms polling)",
        waited.as_millis(),
        logged_gap.as_secs_f64() * 1000.0,
        gap.as_millis()
    );
}
