//! Recorded heartbeats replayed by a stranger on the segment (needs root;
//! see tests/common): heartbeats of m1 are captured off the wire in m2's
//! namespace, as anyone on the segment could, then sent again from the
//! client's namespace, with the client's own address and with m1's
//! (spoofed through a raw socket), while m2 restarts. A restarted node
//! remembers nothing it accepted, so only the echo of its new boot epoch
//! tells it a heartbeat is fresh: the recordings must neither hold it back
//! (m1's host is gone) nor make it claim (m1 is healthy and says nothing
//! but what the recording said: "stopped").

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{address, holds_for, support, wait_for, ChildGuard, Topology, HEARTBEAT_PORT};

/// Captures m1's heartbeats to m2 for `seconds`, in m2's namespace.
fn capture(t: &Topology, seconds: f64, file: &std::path::Path) -> ChildGuard {
    ChildGuard(
        Command::new("ip")
            .args(["netns", "exec", &t.ns("m2"), "python3"])
            .arg(support("heartbeats.py"))
            .args([
                "capture",
                "eth0",
                address("m1"),
                &HEARTBEAT_PORT.to_string(),
            ])
            .arg(seconds.to_string())
            .arg(file)
            .spawn()
            .expect("the capture"),
    )
}

/// Replays `file` to m2 from the client's namespace, as `src`, every
/// `gap` seconds for `seconds`.
fn replay(t: &Topology, file: &std::path::Path, src: &str, seconds: f64, gap: f64) -> ChildGuard {
    ChildGuard(
        Command::new("ip")
            .args(["netns", "exec", &t.ns("cl"), "python3"])
            .arg(support("heartbeats.py"))
            .arg("replay")
            .arg(file)
            .args([src, address("m2"), &HEARTBEAT_PORT.to_string()])
            .args([seconds.to_string(), gap.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .expect("the replay"),
    )
}

/// The recorded heartbeats, one hex line each.
fn recorded(file: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Stops `node`'s daemon with SIGTERM and waits for it to exit.
fn stop(t: &mut Topology, node: &str) {
    t.daemon(node).signal("TERM");
    let status = t.daemon(node).wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{node} stopped with {status}");
}

/// m1's host goes silent (its link down: no heartbeat, no ICMP), m2
/// restarts, and an 8 s recording of m1's heartbeats is replayed to it,
/// in order and at their own pace, from m1's address and from the
/// client's. m2 must take over within its start-up window and grace (1 s)
/// and a few heartbeats, while the replay still runs (before, it stayed
/// Passive for as long as the recording lasted).
#[test]
fn recordings_do_not_hold_back_a_restarted_secondary() {
    let mut t = Topology::up("replay-hold");
    t.steady_pair();
    let file = t.dir.join("recorded.hex");
    let mut c = capture(&t, 8.0, &file);
    c.0.wait().expect("the capture ends");
    let lines = recorded(&file);
    assert!(
        lines.len() >= 40,
        "too few heartbeats recorded: {}",
        lines.len()
    );
    stop(&mut t, "m2");
    let out = t.exec("m1", &["ip", "link", "set", "eth0", "down"]);
    assert!(out.status.success());
    let gap = crate::common::HEARTBEAT_MS as f64 / 1000.0;
    let mut spoofed = replay(&t, &file, address("m1"), 12.0, gap);
    let mut stranger = replay(&t, &file, address("cl"), 12.0, gap);
    let started = Instant::now();
    t.start("m2");
    let took = wait_for(
        "m2 to hold the common IP during the replay",
        Duration::from_secs(5),
        || (t.vip_holders() == ["m2"]).then(|| started.elapsed()),
    );
    let replaying =
        matches!(spoofed.0.try_wait(), Ok(None)) && matches!(stranger.0.try_wait(), Ok(None));
    assert!(replaying, "the replay had ended before m2 claimed");
    eprintln!(
        "REPLAY hold: m2 started -> holds the VIP during the replay: {} ms",
        took.as_millis()
    );
    let log = t.daemon("m2").log_text();
    for reason in ["reason=unproven", "reason=wrong_source"] {
        assert!(log.contains(reason), "m2 did not count {reason}:\n{log}");
    }
}

/// m1's "stopped" heartbeat, recorded as m1 stopped once, is replayed
/// every 2 ms from m1's own address into m2's restart while m1 serves (so
/// that it is the first heartbeat the new m2 hears): m2 must not claim,
/// m1 keeps the common IP (before, m2 claimed at once and m1's
/// application was stopped).
#[test]
fn a_recorded_stop_replayed_into_a_restart_moves_nothing() {
    let mut t = Topology::up("replay-stop");
    t.steady_pair();
    let file = t.dir.join("recorded.hex");
    let mut c = capture(&t, 3.0, &file);
    std::thread::sleep(Duration::from_millis(500));
    stop(&mut t, "m1");
    c.0.wait().expect("the capture ends");
    let lines = recorded(&file);
    // Byte 36 is the state; 5 is "stopped".
    let stops: Vec<&String> = lines
        .iter()
        .filter(|l| l.get(72..74) == Some("05"))
        .collect();
    assert!(
        !stops.is_empty(),
        "no stopped heartbeat recorded among {}",
        lines.len()
    );
    let stop_file = t.dir.join("stopped.hex");
    std::fs::write(&stop_file, format!("{}\n", stops[0])).expect("write the stop");
    // Back to the steady pair, m1 holding (the logs are appended to, so
    // the pair's start is awaited through status, not the logs).
    stop(&mut t, "m2");
    t.start("m1");
    wait_for(
        "m1 to hold the common IP again",
        Duration::from_secs(10),
        || (t.vip_holders() == ["m1"] && t.get_vip().as_deref() == Some("m1")).then_some(()),
    );
    t.start("m2");
    wait_for("m2 Passive behind m1", Duration::from_secs(10), || {
        t.passive_behind("m2", "m1")
    });
    let before = t.daemon("m2").log_text().len();
    stop(&mut t, "m2");
    let _spoofed = replay(&t, &stop_file, address("m1"), 6.0, 0.002);
    t.start("m2");
    holds_for(
        "m1 alone holding through m2's restart and the replay",
        Duration::from_secs(5),
        || t.vip_holders() == ["m1"],
    );
    assert_eq!(t.get_vip().as_deref(), Some("m1"));
    let log = t.daemon("m2").log_text();
    let since = &log[before.min(log.len())..];
    assert!(
        !since.contains("-> adding the common IP"),
        "m2 claimed:\n{since}"
    );
    assert!(
        since.contains("reason=unproven"),
        "m2 did not see the replay:\n{since}"
    );
}
