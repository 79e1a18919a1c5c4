//! What a stranger on the network and a bad day can do to a real pair in
//! network namespaces (needs root; see tests/common): an API flood without
//! a token, a shutdown while the application is starting, a panic inside
//! the daemon.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{holds_for, Topology, API_PORT, API_TOKEN, GRACE};

/// A value from /proc/PID/status, in kB (VmRSS, VmHWM).
fn proc_kb(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the daemon runs");
    text.lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn flood_script() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/flood.py")
        .display()
        .to_string()
}

/// 1,100 idle connections to each node's API, from sixteen client
/// addresses, against daemons limited to 1,024 open files (the limit the
/// shipped unit once gave them). Before the connection caps this exhausted
/// the descriptors, the probes failed with "Too many open files", and the
/// pair moved the VIP back and forth. Now nothing moves, the probes never
/// fail, and the API answers again once the flood ends.
#[test]
fn an_api_flood_without_a_token_moves_nothing() {
    let mut t = Topology::up("flood");
    t.nofile = Some(1024);
    t.steady_pair();
    let pids = [t.daemon("m1").pid(), t.daemon("m2").pid()];
    let rss_before = pids.map(|p| proc_kb(p, "VmRSS:"));
    let sources: Vec<String> = (200..216).map(|i| format!("192.0.2.{i}")).collect();
    for s in &sources {
        let out = t.exec(
            "cl",
            &["ip", "addr", "add", &format!("{s}/24"), "dev", "eth0"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut floods: Vec<common::ChildGuard> = ["192.0.2.11", "192.0.2.12"]
        .iter()
        .map(|target| {
            Command::new("ip")
                .args(["netns", "exec", &t.ns("cl"), "python3", &flood_script()])
                .args([*target, &API_PORT.to_string(), "1100", "4"])
                .args(&sources)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map(common::ChildGuard)
                .expect("start the flood")
        })
        .collect();
    let began = Instant::now();
    let mut most_descriptors = [0usize; 2];
    let mut samples = 0;
    while began.elapsed() < Duration::from_secs(60) {
        for (i, pid) in pids.iter().enumerate() {
            most_descriptors[i] = most_descriptors[i].max(open_descriptors(*pid));
        }
        assert_eq!(t.vip_holders(), ["m1"], "the VIP moved during the flood");
        samples += 1;
        if floods
            .iter_mut()
            .all(|f| matches!(f.0.try_wait(), Ok(Some(_))))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let reports: Vec<serde_json::Value> = floods
        .iter_mut()
        .map(|f| {
            let mut out = String::new();
            f.0.stdout
                .take()
                .expect("the flood's output")
                .read_to_string(&mut out)
                .expect("read the flood's output");
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("flood output {e}: {out:?}"))
        })
        .collect();
    holds_for("nothing moves after the flood", GRACE, || {
        t.vip_holders() == ["m1"]
    });
    let (code, body) = t.api(
        "GET",
        &format!("http://192.0.2.11:{API_PORT}/status"),
        Some(API_TOKEN),
        &[],
    );
    assert_eq!(code, 200, "the API answers again after the flood: {body}");
    let rss_after = pids.map(|p| proc_kb(p, "VmRSS:"));
    let peak = pids.map(|p| proc_kb(p, "VmHWM:"));
    for node in ["m1", "m2"] {
        let log = t.daemon(node).log_text();
        for bad in [
            "cannot run its probe",
            "Too many open files",
            "asking it to release",
        ] {
            assert!(!log.contains(bad), "{node} logged {bad:?}");
        }
    }
    let m1 = t.status("m1");
    assert_eq!(m1["counters"]["releases"], 0, "{m1}");
    let m2 = t.status("m2");
    assert_eq!(m2["counters"]["takeovers"], 0, "{m2}");
    eprintln!(
        "flood: {samples} samples; m1 {} / m2 {}; descriptors at most m1 {} / m2 {} (limit 1024); \
         RSS kB before m1 {} / m2 {}, after m1 {} / m2 {}, peak m1 {} / m2 {}; VIP moves 0",
        reports[0],
        reports[1],
        most_descriptors[0],
        most_descriptors[1],
        rss_before[0],
        rss_before[1],
        rss_after[0],
        rss_after[1],
        peak[0],
        peak[1]
    );
    for (i, r) in reports.iter().enumerate() {
        assert!(
            r["connected"].as_u64().unwrap_or(0) >= 1000,
            "the flood connected: {r}"
        );
        assert!(
            most_descriptors[i] < 300,
            "descriptors stay bounded: {most_descriptors:?}"
        );
        assert!(
            rss_after[i] < rss_before[i] + 32 * 1024,
            "memory stays bounded: {rss_before:?} -> {rss_after:?}"
        );
    }
}
