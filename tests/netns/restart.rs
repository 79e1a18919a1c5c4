//! `understudy restart` on the real binary in network namespaces (needs
//! root; see tests/common): the Active node re-executes its binary five
//! times in a row while a client asks through the VIP every 20 ms. No GET
//! fails, every answer comes from m1, the daemon keeps its PID, the VIP
//! never leaves m1's NIC, the application is neither stopped nor started
//! again, the peer never counts the restarts as a failure, and no
//! descriptor leaks into the new process; then the Passive node restarts
//! and comes back Passive. A new binary
//! that refuses the configuration stops the restart before anything moves.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{wait_for, Topology, VIP};

/// What the client saw: every answer's body (None: the GET failed) and
/// every sample of who held the VIP.
struct Seen {
    answers: Vec<Option<String>>,
    holders: Vec<Vec<String>>,
    /// When the first and the last GET were sent.
    span: Option<(Instant, Instant)>,
}

/// Asks through the VIP and samples the holders every 20 ms until `stop`.
fn watch_client(t: &Topology, stop: Arc<AtomicBool>) -> thread::JoinHandle<Seen> {
    let (cl, pair) = (t.ns("cl"), t.pair());
    thread::spawn(move || {
        let mut seen = Seen {
            answers: Vec::new(),
            holders: Vec::new(),
            span: None,
        };
        // Bounded: at most 10 minutes of samples, even if `stop` never comes.
        for _ in 0..30_000 {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let sent = Instant::now();
            seen.span = Some((seen.span.map_or(sent, |(first, _)| first), sent));
            let out = Command::new("ip")
                .args(["netns", "exec", &cl, "curl", "-s", "--max-time", "0.5"])
                .arg(format!("http://{VIP}/"))
                .output()
                .expect("curl");
            seen.answers.push(
                out.status
                    .success()
                    .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()),
            );
            seen.holders.push(pair.vip_holders());
            thread::sleep(Duration::from_millis(20));
        }
        seen
    })
}

/// How many descriptors the process holds open.
fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn restart_on_the_active_node_moves_nothing() {
    restarts_move_nothing("restart", None);
}

/// The same five restarts with every CPU busy (`stress-ng --cpu 4` on two
/// cores): a re-exec then takes longer than the peer timeout (300 ms
/// here), and the peer must wait for it within its restart allowance (5 s
/// by default) instead of taking over.
#[test]
fn restart_under_load_moves_nothing() {
    let load = crate::common::ChildGuard(
        Command::new("stress-ng")
            .args(["--cpu", "4", "--timeout", "300s", "--quiet"])
            .spawn()
            .expect("stress-ng (scripts/test.sh installs it)"),
    );
    restarts_move_nothing("restart-load", Some(load));
}

/// Five restarts of the Active node, then one of the Passive node, with a
/// client asking through the VIP all along; `_load` runs beside it.
fn restarts_move_nothing(case: &str, _load: Option<crate::common::ChildGuard>) {
    let mut t = Topology::up(case);
    t.steady_pair();
    let pid = t.daemon("m1").pid();
    let app = t.app_pid("m1").expect("m1's application runs");
    let stop = Arc::new(AtomicBool::new(false));
    let client = watch_client(&t, stop.clone());
    thread::sleep(Duration::from_millis(300));
    let mut first_count = None;
    let restarts_began = Instant::now();
    // What m2 says from here on is about the restarts (its own start-up
    // is not what this test judges).
    let m2_before = t.daemon("m2").log_text().len();
    for round in 1..=5 {
        let began = Instant::now();
        let (ok, text) = t.ctl("m1", &["restart"]);
        assert!(ok, "restart {round}: {text}\n{}", t.dump_logs());
        assert!(text.contains("restarted"), "restart {round}: {text}");
        wait_for(
            &format!("restart {round} to adopt the common IP"),
            Duration::from_secs(10),
            || {
                let log = t.daemon("m1").log_text();
                (log.matches("restarted without a failover: the common IP and the application are held again").count() == round)
                    .then_some(())
            },
        );
        eprintln!(
            "RESTART {round}: command -> adopted again: {} ms",
            began.elapsed().as_millis()
        );
        assert_eq!(t.daemon("m1").pid(), pid);
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "the daemon's process is gone after restart {round}"
        );
        // Nothing the old process held leaks into the new one.
        let open = descriptors(pid);
        eprintln!("RESTART {round}: {open} open descriptors");
        match first_count {
            None => first_count = Some(open),
            // A probe's socket may be open at either count; a leak of even
            // one descriptor per restart passes this by the fifth.
            Some(first) => assert!(
                open <= first + 3,
                "descriptors grow across restarts: {first} after the first, {open} after {round}"
            ),
        }
        thread::sleep(Duration::from_millis(300));
    }
    // The Passive node restarts too: it comes back Passive, same PID.
    let m2_pid = t.daemon("m2").pid();
    let (ok, text) = t.ctl("m2", &["restart"]);
    assert!(ok, "restart on m2: {text}");
    wait_for("m2 Passive again", Duration::from_secs(10), || {
        t.passive_behind("m2", "m1")
    });
    assert_eq!(t.daemon("m2").pid(), m2_pid);
    let restarts_ended = Instant::now();
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let seen = client.join().expect("the client thread");
    let logs = t.dump_logs();
    let failed = seen.answers.iter().filter(|a| a.is_none()).count();
    let others: Vec<_> = seen
        .answers
        .iter()
        .flatten()
        .filter(|a| a.as_str() != "m1")
        .collect();
    eprintln!(
        "RESTART client: {} GETs, {failed} failed, {} answered by another node",
        seen.answers.len(),
        others.len()
    );
    // The client asked before the first restart and after the last, however
    // slowly the machine ran them.
    let (first, last) = seen.span.expect("the client sent GETs");
    assert!(
        first < restarts_began && last > restarts_ended,
        "the client's GETs did not span the restarts"
    );
    assert_eq!(failed, 0, "GETs through the VIP failed\n{logs}");
    assert!(others.is_empty(), "answers not from m1: {others:?}\n{logs}");
    crate::common::assert_m1_held_throughout(&seen.holders, "restart", &logs);
    assert_eq!(
        t.app_pid("m1"),
        Some(app),
        "the application was started again"
    );
    assert_eq!(t.stop_count("m1"), 0, "the application was stopped\n{logs}");
    let m2_log = t.daemon("m2").log_text();
    let m2 = &m2_log[m2_before.min(m2_log.len())..];
    assert!(!m2.contains("-> adding the common IP"), "m2 claimed:\n{m2}");
    assert!(!m2.contains("takeover in"), "m2 counted down:\n{m2}");
    assert!(
        !m2.contains("its host refused our heartbeat"),
        "m2 took the restart for a dead daemon:\n{m2}"
    );
}

#[test]
fn a_configuration_the_new_binary_refuses_stops_the_restart() {
    let mut t = Topology::up("restart-bad");
    t.steady_pair();
    let pid = t.daemon("m1").pid();
    let good = std::fs::read_to_string(&t.config).expect("the configuration");
    let broken: Vec<&str> = good
        .lines()
        .map(|l| {
            if l.starts_with("grace = ") {
                "grace = \"soon\""
            } else {
                l
            }
        })
        .collect();
    std::fs::write(&t.config, broken.join("\n")).unwrap();
    let (ok, text) = t.ctl("m1", &["restart"]);
    assert!(!ok, "a broken configuration was accepted: {text}");
    assert!(text.contains("refused: restart refused"), "{text}");
    assert!(
        text.contains("monitor.grace"),
        "the problem is not named: {text}"
    );
    std::fs::write(&t.config, good).unwrap();
    thread::sleep(Duration::from_millis(500));
    assert_eq!(t.daemon("m1").pid(), pid);
    assert_eq!(t.vip_holders(), ["m1"]);
    assert_eq!(t.get_vip().as_deref(), Some("m1"));
    let s = t.status("m1");
    assert_eq!(s["holder"]["node"], "m1", "{s}");
}

/// Sends `signal` to `pid` every 2 ms until `stop` (at most 10 s).
fn keep_signalling(
    pid: u32,
    signal: libc::c_int,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<u32> {
    thread::spawn(move || {
        let mut sent = 0;
        for _ in 0..5_000 {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            // SAFETY: kill only sends a signal to the daemon's own PID.
            unsafe { libc::kill(pid as libc::pid_t, signal) };
            sent += 1;
            thread::sleep(Duration::from_millis(2));
        }
        sent
    })
}

/// SIGHUP (a reload) sent all through three restarts, across the moment
/// of the exec: the daemon survives every one (the default action of a
/// SIGHUP that reached the new process before its handler would kill it).
/// Then a SIGTERM sent the instant the old process says it re-executes
/// stops the new one cleanly: exit 0, the application stopped, the VIP
/// released, and m2 takes over.
#[test]
fn signals_during_a_restart_reach_the_new_process() {
    let mut t = Topology::up("restart-sig");
    t.steady_pair();
    let pid = t.daemon("m1").pid();
    for round in 1..=3 {
        let stop = Arc::new(AtomicBool::new(false));
        let hups = keep_signalling(pid, libc::SIGHUP, stop.clone());
        thread::sleep(Duration::from_millis(50));
        let (ok, text) = t.ctl("m1", &["restart"]);
        assert!(ok, "restart {round}: {text}\n{}", t.dump_logs());
        wait_for(
            &format!("restart {round} under SIGHUPs to adopt the common IP"),
            Duration::from_secs(20),
            || {
                let log = t.daemon("m1").log_text();
                (log.matches("restarted without a failover").count() >= round).then_some(())
            },
        );
        thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::SeqCst);
        let sent = hups.join().expect("the SIGHUP thread");
        eprintln!("RESTART under SIGHUP {round}: {sent} SIGHUPs sent");
        let exited = t.daemon("m1").child.try_wait().expect("try_wait");
        assert_eq!(
            exited,
            None,
            "SIGHUP during restart {round} ended the daemon\n{}",
            t.dump_logs()
        );
        assert_eq!(t.daemon("m1").pid(), pid);
        assert_eq!(t.vip_holders(), ["m1"], "restart {round}");
    }
    // A SIGTERM into the exec.
    let before = t.daemon("m1").log_text().matches("re-executing").count();
    let log = t.daemon("m1").log.clone();
    let terminator = thread::spawn(move || {
        // Bounded: 20 s of 1 ms polls.
        for _ in 0..20_000 {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.matches("re-executing").count() > before {
                // SAFETY: kill only sends a signal to the daemon's own PID.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                return true;
            }
            thread::sleep(Duration::from_millis(1));
        }
        false
    });
    // Its answer may never come (the new process stops instead of
    // answering; the command gives up after 30 s): what follows counts.
    let _restart = crate::common::ChildGuard(
        Command::new(crate::common::bin())
            .args(["restart", "--socket"])
            .arg(t.socket("m1"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("understudy restart"),
    );
    assert!(
        terminator.join().expect("the SIGTERM thread"),
        "never saw the re-exec"
    );
    let exited = wait_for(
        "m1 to stop after the SIGTERM",
        Duration::from_secs(20),
        || t.daemon("m1").child.try_wait().ok().flatten(),
    );
    let logs = t.dump_logs();
    assert!(
        exited.success(),
        "SIGTERM during a restart: {exited}\n{logs}"
    );
    let m1 = t.daemon("m1").log_text();
    let exec_at = m1.rfind("re-executing").expect("the re-exec is logged");
    assert!(
        m1[exec_at..].contains("stopping: the application is stopped"),
        "the new process did not take the SIGTERM as a stop:\n{m1}"
    );
    // Wherever the SIGTERM fell (even while the new process was taking the
    // VIP back), the application it inherited is stopped, not left serving.
    assert!(
        t.stop_count("m1") >= 1,
        "m1's application was never stopped:\n{logs}"
    );
    wait_for(
        "m2 to take the common IP over",
        Duration::from_secs(20),
        || (t.vip_holders() == ["m2"]).then_some(()),
    );
}

/// What a person reads of the past (the last takeover, the console's
/// events) is kept across `understudy restart` and across a stop and a
/// start of the daemon; and a node that comes back after its peer took
/// over names that takeover as the last, not its own older one.
#[test]
fn the_history_survives_restarts_and_names_the_peers_takeover() {
    let mut t = Topology::up("history");
    t.steady_pair();
    let events = |t: &Topology| {
        let url = format!("http://192.0.2.11:{}/history", crate::common::API_PORT);
        let (code, body) = t.api("GET", &url, Some(crate::common::API_TOKEN), &[]);
        assert_eq!(code, 200, "GET /history on m1: {body}");
        let history: serde_json::Value = serde_json::from_str(&body).expect("history JSON");
        history["events"].as_array().cloned().unwrap_or_default()
    };
    let before = t.status("m1")["last_takeover"].clone();
    assert_eq!(before["node"], "m1", "{before}");
    let first_events = events(&t);
    assert!(
        first_events.iter().any(|e| e["kind"] == "takeover"),
        "{first_events:?}"
    );

    let (ok, text) = t.ctl("m1", &["restart"]);
    assert!(ok, "restart: {text}");
    t.wait_log(
        "m1",
        "restarted without a failover: the common IP and the application are held again",
        Duration::from_secs(10),
    );
    let after = t.status("m1")["last_takeover"].clone();
    assert_eq!(after, before.clone().with_age(&after), "after restart");
    assert_eq!(events(&t).len(), first_events.len(), "events after restart");

    // A stop: m2 takes over at once (m1's last heartbeat said "stopped").
    t.daemon("m1").signal("TERM");
    t.daemon("m1").wait_exit(Duration::from_secs(10));
    t.wait_answer("m2", Instant::now(), Duration::from_secs(10));
    t.start("m1");
    wait_for(
        "m1 to name m2's takeover as the last",
        Duration::from_secs(10),
        || {
            // The daemon answers once its socket is up.
            let (ok, text) = t.ctl("m1", &["status", "--json"]);
            let status: serde_json::Value = serde_json::from_str(&text).ok().filter(|_| ok)?;
            (status["last_takeover"]["node"] == "m2").then_some(())
        },
    );
    let kept = events(&t);
    assert!(
        kept.len() >= first_events.len()
            && kept.iter().any(|e| e["id"] == first_events[0]["id"] && e["at_ms"] == first_events[0]["at_ms"]),
        "m1's events before the stop are gone: {kept:?}"
    );
}

/// A status's last takeover with another's age (the age grows).
trait WithAge {
    fn with_age(self, other: &serde_json::Value) -> serde_json::Value;
}

impl WithAge for serde_json::Value {
    fn with_age(mut self, other: &serde_json::Value) -> serde_json::Value {
        self["at"]["age_ms"] = other["at"]["age_ms"].clone();
        self
    }
}

/// Adding a `[witness]` to a running pair the way the README says:
/// `understudy restart` on each node, the standby first. Nothing moves, no
/// GET through the common IP fails, and the holder ends holding the
/// witness's lease (real etcd).
#[test]
fn a_witness_is_added_with_restarts_and_nothing_moves() {
    let mut t = Topology::up("add-witness");
    t.steady_pair();
    let server = crate::witness::Server::start(&t, crate::witness::Backend::Etcd);
    // The very file both daemons read (the same on both), as an
    // administrator edits it in place.
    crate::witness::config_with_witness_url(&t.config, &server.url(), "release");
    let stop = Arc::new(AtomicBool::new(false));
    let client = watch_client(&t, stop.clone());
    thread::sleep(Duration::from_millis(300));
    for node in ["m2", "m1"] {
        let (ok, text) = t.ctl(node, &["restart"]);
        assert!(ok, "restart on {node}: {text}\n{}", t.dump_logs());
    }
    wait_for(
        "m1 to hold the witness's lease",
        Duration::from_secs(15),
        || {
            let witness = t.status("m1")["witness"].clone();
            (witness["holder"] == "m1" && witness["held_for_ms"].as_u64().is_some()).then_some(())
        },
    );
    wait_for("m2 Passive behind m1", Duration::from_secs(10), || {
        t.passive_behind("m2", "m1")
    });
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let seen = client.join().expect("the client thread");
    let logs = t.dump_logs();
    let failed = seen.answers.iter().filter(|a| a.is_none()).count();
    eprintln!(
        "ADD WITNESS: {} GETs through the common IP, {failed} failed",
        seen.answers.len()
    );
    assert_eq!(failed, 0, "GETs failed while the witness was added\n{logs}");
    crate::common::assert_m1_held_throughout(&seen.holders, "add-witness", &logs);
    assert_eq!(t.stop_count("m1"), 0, "the application was stopped\n{logs}");
}
