//! What the stricter unit allows is enough (needs root; see tests/common):
//! both daemons run with exactly the capabilities in deploy/
//! understudy-strict.conf's `CapabilityBoundingSet=` (read from the file, so
//! the test follows it) and no new privileges, as that unit runs them; the
//! pair settles, and a failed application on m1 is taken over by m2, which
//! the client then reaches through the VIP (addresses, ARP, heartbeat
//! priority and the application's port 80 all work). systemd's other
//! sandbox settings need systemd as PID 1, which this machine does not
//! have; tests/deb.rs verifies and scores the units.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::Topology;

/// The capabilities the strict unit keeps, as setpriv names them.
fn strict_capabilities() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/understudy-strict.conf");
    let text = std::fs::read_to_string(path).expect("deploy/understudy-strict.conf");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("a CapabilityBoundingSet= line");
    line.split_whitespace()
        .map(|c| c.trim_start_matches("CAP_").to_lowercase())
        .collect()
}

/// The bits of `names` in a capability mask (linux/capability.h).
fn mask(names: &[String]) -> u64 {
    names
        .iter()
        .map(|n| match n.as_str() {
            "net_bind_service" => 1 << 10,
            "net_admin" => 1 << 12,
            "net_raw" => 1 << 13,
            "ipc_lock" => 1 << 14,
            "sys_nice" => 1 << 23,
            other => panic!("add {other} to the test's table"),
        })
        .sum()
}

fn proc_status(pid: u32, field: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

#[test]
fn the_strict_units_capabilities_are_enough_for_a_takeover() {
    let caps = strict_capabilities();
    let mut t = Topology::up("sandbox");
    let bounding = format!(
        "-all,{}",
        caps.iter()
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    t.wrapper = [
        "setpriv",
        "--no-new-privs",
        "--bounding-set",
        &bounding,
        "--",
    ]
    .map(String::from)
    .to_vec();
    t.steady_pair();
    for node in ["m1", "m2"] {
        let pid = t.daemon(node).pid();
        let effective = u64::from_str_radix(&proc_status(pid, "CapEff"), 16).unwrap();
        assert_eq!(effective, mask(&caps), "{node}'s effective capabilities");
        assert_eq!(proc_status(pid, "NoNewPrivs"), "1", "{node}");
    }
    let app = t.app_pid("m1").expect("m1's application");
    let fault = Instant::now();
    crate::common::run(Command::new("kill").args(["-9", &app.to_string()]));
    let took = t.wait_answer("m2", fault, Duration::from_secs(10));
    assert_eq!(t.vip_holders(), ["m2"], "{}", t.dump_logs());
    assert_eq!(t.client_neighbour(), Some(t.mac("m2")));
    eprintln!(
        "SANDBOX capabilities {caps:?}: fault -> first answer from m2: {} ms",
        took.as_millis()
    );
}
