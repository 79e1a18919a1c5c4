//! `[process]` on the real binary in network namespaces (needs root; see
//! tests/common): the loop's thread, and only it, runs at the real-time
//! priority asked for, the application it starts does not, memory is
//! locked; and a system that refuses the priority stops the start with the
//! reason, before anything touches the network.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::Topology;

/// The pair's configuration with a `[process]` section added.
fn with_process(t: &Topology, process: &str) -> PathBuf {
    let text = std::fs::read_to_string(&t.config).expect("the test configuration");
    let path = t.dir.join("process.toml");
    std::fs::write(&path, format!("{text}\n[process]\n{process}\n")).expect("write it");
    path
}

/// Each thread of a process: (name, scheduling policy), from /proc.
fn thread_policies(pid: u32) -> Vec<(String, u32)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the process runs");
    tasks
        .filter_map(|task| {
            let dir = task.ok()?.path();
            let name = std::fs::read_to_string(dir.join("comm")).ok()?;
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            // Fields after the command name; policy is field 41 of stat.
            let rest = stat.rsplit_once(')')?.1;
            let policy = rest.split_whitespace().nth(41 - 3)?.parse().ok()?;
            Some((name.trim().to_owned(), policy))
        })
        .collect()
}

const SCHED_OTHER: u32 = 0;
const SCHED_RR: u32 = 2;

#[test]
fn the_loop_thread_alone_runs_at_real_time_priority_and_memory_is_locked() {
    let mut t = Topology::up("rtprio");
    let config = with_process(&t, "rt_priority = 10\nlock_memory = true");
    t.start_with("m1", &config);
    t.wait_log("m1", "claimed the common IP", Duration::from_secs(10));
    let log = t.daemon("m1").log_text();
    assert!(log.contains("memory locked"), "{log}");
    assert!(log.contains("real-time priority"), "{log}");
    let pid = t.daemon("m1").pid();
    let threads = thread_policies(pid);
    let rr: Vec<&str> = threads
        .iter()
        .filter(|(_, p)| *p == SCHED_RR)
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(rr, ["understudy-loop"], "{threads:?}");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let locked = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmLck");
    assert!(locked > 0, "VmLck {locked} kB");
    // The application was started by the loop's thread, and still runs
    // with the normal scheduler.
    let app = t.app_pid("m1").expect("m1's application");
    let app_policies = thread_policies(app);
    assert!(
        app_policies.iter().all(|(_, p)| *p == SCHED_OTHER),
        "{app_policies:?}"
    );
}

#[test]
fn a_refused_priority_stops_the_start_with_the_reason_and_touches_nothing() {
    let mut t = Topology::up("rtrefused");
    let config = with_process(&t, "rt_priority = 10");
    // Root without CAP_SYS_NICE (and RLIMIT_RTPRIO 0) may not use SCHED_RR.
    t.wrapper = ["setpriv", "--bounding-set", "-sys_nice", "--"]
        .map(String::from)
        .to_vec();
    t.start_with("m1", &config);
    let status = t.daemon("m1").wait_exit(Duration::from_secs(10));
    let log = t.daemon("m1").log_text();
    assert!(!status.success(), "{log}");
    assert!(log.contains("CAP_SYS_NICE"), "{log}");
    assert!(t.vip_holders().is_empty(), "{log}");
    assert!(t.app_pid("m1").is_none(), "no application was started");
}
