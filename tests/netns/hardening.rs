//! What a stranger on the network and a bad day can do to a real pair in
//! network namespaces (needs root; see tests/common): an API flood without
//! a token, a shutdown while the application is starting, a panic inside
//! the daemon.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{holds_for, wait_for, Topology, API_PORT, API_TOKEN, GRACE};

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

/// Eight strangers' addresses each hold eight idle connections to m1's
/// API (every slot: 64), opening a new one whenever one is closed, for
/// 25 s. An operator with a valid token asks for the status 35 times
/// meanwhile: every request is served, since a connection without a
/// token that has been open a second makes room for a new one (before,
/// 0 of 35 got through).
#[test]
fn strangers_holding_every_api_connection_do_not_lock_the_operator_out() {
    let mut t = Topology::up("slowhold");
    t.steady_pair();
    let sources: Vec<String> = (200..208).map(|i| format!("192.0.2.{i}")).collect();
    t.add_client_addresses(&sources);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/slow_hold.py");
    let mut hold = crate::common::ChildGuard(
        Command::new("ip")
            .args(["netns", "exec", &t.ns("cl"), "python3"])
            .arg(&script)
            .args(["192.0.2.11", &API_PORT.to_string(), "8", "25"])
            .args(&sources)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the strangers"),
    );
    // Let them fill every slot and grow old enough to be evicted.
    std::thread::sleep(Duration::from_secs(3));
    let url = format!("http://192.0.2.11:{API_PORT}/status");
    let mut served = 0;
    for _ in 0..35 {
        let (code, _) = t.api("GET", &url, Some(API_TOKEN), &[]);
        served += usize::from(code == 200);
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut report = String::new();
    let _ = hold.0.wait();
    if let Some(mut out) = hold.0.stdout.take() {
        let _ = out.read_to_string(&mut report);
    }
    eprintln!(
        "slow hold: operator served {served} of 35; strangers {}",
        report.trim()
    );
    let strangers: serde_json::Value =
        serde_json::from_str(report.trim()).expect("the strangers' report");
    assert!(
        strangers["opened"].as_u64().is_some_and(|n| n >= 64),
        "the strangers never filled the slots: {strangers}"
    );
    assert_eq!(served, 35, "the operator was locked out");
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
    t.add_client_addresses(&sources);
    let mut floods: Vec<crate::common::ChildGuard> = ["192.0.2.11", "192.0.2.12"]
        .iter()
        .map(|target| {
            Command::new("ip")
                .args(["netns", "exec", &t.ns("cl"), "python3", &flood_script()])
                .args([*target, &API_PORT.to_string(), "1100", "4"])
                .args(&sources)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map(crate::common::ChildGuard)
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

/// A copy of the test configuration whose application start succeeds but
/// never answers, with a 30 s ready timeout.
fn config_with_a_start_that_never_gets_ready(t: &Topology) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&t.config).expect("the test configuration");
    let start = text
        .lines()
        .find(|l| l.starts_with("start = "))
        .expect("a start command")
        .to_owned();
    let text = text
        .replace(&start, "start = \"true\"")
        .replace("ready_timeout = \"5s\"", "ready_timeout = \"30s\"");
    let path = t.dir.join("never-ready.toml");
    std::fs::write(&path, text).expect("write the configuration");
    path
}

/// SIGTERM while the started application is not yet ready: the daemon
/// used to wait out `ready_timeout` (28.6 s of 30) saying nothing. Now the
/// wait is interrupted, the application stopped, the VIP removed, and the
/// peer told "stopped", so it takes over at once.
#[test]
fn sigterm_while_the_application_starts_ends_at_once() {
    let mut t = Topology::up("termstart");
    let never_ready = config_with_a_start_that_never_gets_ready(&t);
    t.start_with("m1", &never_ready);
    t.wait_log("m1", "common IP added", Duration::from_secs(10));
    t.start("m2");
    t.wait_log("m2", "peer available", Duration::from_secs(10));
    let sent = Instant::now();
    t.daemon("m1").signal("TERM");
    let status = t.daemon("m1").wait_exit(Duration::from_secs(10));
    let took = sent.elapsed();
    assert!(
        status.success(),
        "m1 exits 0 after a clean release: {status}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        !t.addresses("m1").contains(&crate::common::VIP.to_owned()),
        "the VIP is gone from m1"
    );
    assert!(t.stop_count("m1") >= 1, "the stop command ran");
    let answered = t.wait_answer("m2", sent, Duration::from_secs(10));
    let m2 = t.daemon("m2").log_text();
    assert!(m2.contains("to=Stopped"), "m2 heard m1 say stopped:\n{m2}");
    eprintln!(
        "SIGTERM during start: m1 exited in {took:?}; m2 answered {answered:?} after the signal"
    );
    replay_the_log(&t, "m1");
}

/// A field incident becomes a golden scenario: the daemon's debug log,
/// through `tests/golden/log2input.py`, replays in the core to the same end
/// (here: everything released and the daemon gone).
fn replay_the_log(t: &Topology, node: &str) {
    use understudy::core::{Action, Core};
    use understudy::replay::{self, Step};
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/log2input.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(t.dir.join(format!("{node}.log")))
        .output()
        .expect("run log2input.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let origin = std::time::Instant::now();
    let (_, settings, steps) =
        replay::parse_file(&text, origin).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(text.contains("shutdown"), "{text}");
    let mut core = Core::new(settings);
    let mut exited = false;
    for timed in steps {
        let at = origin + timed.at;
        while let Some(due) = core.poll_timeout().filter(|d| *d <= at) {
            core.handle_timeout(due);
        }
        match timed.step {
            Step::Input(input) => core.handle_input(at, input),
            Step::Admin { cmd, force } => {
                let _ = core.handle_admin(at, cmd, force);
            }
            Step::Tick | Step::Complete | Step::Status => {}
        }
        while let Some(action) = core.poll_action() {
            exited |= action == Action::Exit;
        }
    }
    assert!(
        exited,
        "the replayed core released everything and exited:\n{text}"
    );
}

/// A panic in the effects worker (after the pair is steady) and in the
/// event loop: the daemon must not stay half-alive. It stops the
/// application, removes the VIP, tells the peer "stopped" and exits
/// non-zero; the peer takes over at once.
#[test]
fn a_panic_brings_the_daemon_down_the_safe_way() {
    let mut t = Topology::up("panic");
    let failpoint = t.dir.join("m1.failpoint");
    t.env = vec![(
        "UNDERSTUDY_FAILPOINT_FILE".into(),
        failpoint.display().to_string(),
    )];
    t.start("m1");
    t.env.clear();
    wait_for("m1 to answer on the VIP", Duration::from_secs(10), || {
        (t.get_vip().as_deref() == Some("m1")).then_some(())
    });
    t.start("m2");
    wait_for("m2 to see m1 healthy", Duration::from_secs(10), || {
        let log = t.daemon("m2").log_text();
        (log.contains("peer application healthy") && log.contains("peer available")).then_some(())
    });
    // The worker panics at its next action: the announce of a refresh.
    std::fs::write(&failpoint, "effects").unwrap();
    let armed = Instant::now();
    let (_, _) = t.ctl("m1", &["refresh"]);
    let status = t.daemon("m1").wait_exit(Duration::from_secs(10));
    assert!(!status.success(), "a panic is a non-zero exit: {status}");
    let m1 = t.daemon("m1").log_text();
    assert!(m1.contains("failpoint effects hit"), "{m1}");
    assert!(m1.contains("emergency release: common IP removed"), "{m1}");
    assert!(
        !t.addresses("m1").contains(&crate::common::VIP.to_owned()),
        "the VIP is gone from m1"
    );
    assert!(t.stop_count("m1") >= 1, "the stop command ran");
    let answered = t.wait_answer("m2", armed, Duration::from_secs(10));
    eprintln!("panic in the worker: m2 answered {answered:?} after it");

    // The loop itself panics on m1's next control request, while Passive.
    t.env = vec![(
        "UNDERSTUDY_FAILPOINT_FILE".into(),
        failpoint.display().to_string(),
    )];
    std::fs::write(&failpoint, "").unwrap();
    t.start("m1");
    t.env.clear();
    wait_for("m1 to hear m2", Duration::from_secs(10), || {
        let log = t.daemon("m1").log_text();
        (log.matches("peer available").count() >= 2).then_some(())
    });
    std::fs::write(&failpoint, "loop").unwrap();
    let _ = t.ctl("m1", &["status"]);
    let status = t.daemon("m1").wait_exit(Duration::from_secs(10));
    assert!(!status.success(), "a panic is a non-zero exit: {status}");
    assert!(t.daemon("m1").log_text().contains("failpoint loop hit"));
    holds_for("m2 keeps the VIP", GRACE, || t.vip_holders() == ["m2"]);
}

/// The case: the data service is reachable only from m1, and m1's
/// application dies and cannot be started again. m2 rightly declines (it
/// cannot reach the data service). m1 used to release anyway, re-claim a
/// moment later and hold the VIP for a whole `ready_timeout`, while m2,
/// able to serve by then, waited. Now m1 keeps the VIP and restarts its
/// application in place; the moment m2 reaches the data service, m1 hands
/// over at once.
#[test]
fn a_node_that_cannot_serve_keeps_the_vip_only_until_the_peer_can() {
    let mut t = Topology::up("cannotserve");
    let dir = t.dir.display().to_string();
    let text = std::fs::read_to_string(&t.config).expect("the test configuration");
    let start = text
        .lines()
        .find(|l| l.starts_with("start = \""))
        .expect("a start command")
        .to_owned();
    let breakable = start.replacen(
        "start = \"",
        &format!("start = \"test ! -f {dir}/$UNDERSTUDY_NODE.broken && "),
        1,
    );
    // Each node reaches the data service while its own marker file exists.
    let data = format!(
        "data = \"exec:test -f {dir}/data-$(ip -o -4 addr show dev eth0 | grep -o '192.0.2.1[12]' | head -1)\"\n"
    );
    let text = text
        .replace(&start, &breakable)
        .replace("[monitor]\n", &format!("[monitor]\n{data}"))
        .replace(
            "[application]\n",
            "[application]\nrestart_backoff = \"200ms\"\n",
        );
    std::fs::write(&t.config, text).expect("write the configuration");
    std::fs::write(t.dir.join("data-192.0.2.11"), "").unwrap();
    t.steady_pair();
    t.wait_log(
        "m2",
        "data service unreachable from here",
        Duration::from_secs(5),
    );
    std::fs::write(t.dir.join("m1.broken"), "").unwrap();
    let pid = t.app_pid("m1").expect("m1's application runs");
    let _ = Command::new("kill").arg(pid.to_string()).status();
    t.wait_log("m1", "restarting it", Duration::from_secs(10));
    holds_for(
        "m1 keeps the VIP while nobody else can serve",
        GRACE * 2,
        || t.vip_holders() == ["m1"],
    );
    let m1 = t.status("m1");
    assert_eq!(
        m1["counters"]["releases"], 0,
        "no release / re-claim churn: {m1}"
    );
    assert!(
        m1["application_recovery"]
            .as_str()
            .is_some_and(|w| w.contains("restarting")),
        "status says what it does: {m1}"
    );
    let able = Instant::now();
    std::fs::write(t.dir.join("data-192.0.2.12"), "").unwrap();
    let answered = t.wait_answer("m2", able, Duration::from_secs(10));
    assert_eq!(t.vip_holders(), ["m2"]);
    eprintln!("cannot serve: m2 answered {answered:?} after it could reach the data service");
}
