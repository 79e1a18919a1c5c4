//! The witness's policies with the real servers: every scenario runs once
//! with PostgreSQL and once with etcd, each started by the test in the
//! topology's witness namespace, with the real binary on m1 and m2 and a
//! 2 s lease (etcd's smallest). A sampler looks at both nodes' addresses
//! every 10 ms; every case asserts that two nodes never held the VIP at
//! once and prints the time to a single holder after the change (run with
//! `-- --nocapture` to see the figures).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{wait_for, Topology};
use crate::witness::{
    config_with_witness, cut_witness, partition, Backend, Sampler, Server, LEASE,
};

/// A pair serving through a witness. The server is dropped before the
/// topology, whose teardown ends whatever is left in the namespaces.
struct Case {
    server: Option<Server>,
    t: Topology,
    config: PathBuf,
}

impl Case {
    /// m1 Active with the lease, m2 watching it, and m2's status showing
    /// both nodes' rows as the witness has them.
    /// Without a backend: the pair as today, for comparison.
    fn steady(name: &str, backend: Option<Backend>, on_loss: &str) -> Case {
        let mut t = Topology::up(name);
        let server = backend.map(|b| Server::start(&t, b));
        let config = match &server {
            Some(server) => config_with_witness(&t, server, on_loss),
            None => t.config.clone(),
        };
        t.steady_pair_with(&config, &config);
        let case = Case { server, t, config };
        if case.server.is_some() {
            case.wait_for_witness_rows("m2");
            case.start_command_got_the_lease_term();
        }
        case
    }

    /// m1's start command was given the lease's term (UNDERSTUDY_TERM),
    /// the one its status and the witness show.
    fn start_command_got_the_lease_term(&self) {
        let written = std::fs::read_to_string(self.t.dir.join("m1.term")).expect("m1.term");
        let status = self.t.status("m1");
        let term = status["witness"]["term"]
            .as_u64()
            .expect("the lease's term");
        assert_eq!(written.trim(), term.to_string(), "UNDERSTUDY_TERM");
        let row = status["nodes"]
            .as_array()
            .and_then(|n| n.iter().find(|r| r["name"] == "m1"));
        assert_eq!(row.map(|r| r["term"].clone()), Some(term.into()));
        let url = format!("http://192.0.2.11:{}/metrics", crate::common::API_PORT);
        let (code, metrics) = self.t.api("GET", &url, Some(crate::common::API_TOKEN), &[]);
        assert_eq!(code, 200, "{metrics}");
        let held = metrics
            .lines()
            .find(|l| l.starts_with("understudy_lease_held{"));
        assert!(held.is_some_and(|l| l.ends_with(" 1")), "{held:?}");
    }

    /// Waits until `node`'s status shows the witness's view: the lease's
    /// holder and both nodes' last heartbeats there.
    fn wait_for_witness_rows(&self, node: &str) {
        wait_for(
            "status to show the witness's rows",
            Duration::from_secs(8),
            || {
                let s = self.t.status(node);
                let rows = s["nodes"].as_array()?;
                let seen = rows
                    .iter()
                    .all(|r| r["witness_heartbeat"]["age_ms"].is_u64());
                (seen && s["witness"]["holder"] == "m1").then_some(())
            },
        );
    }

    /// Waits until `node` alone holds the VIP.
    fn wait_for_holder(&self, node: &str, limit: Duration) {
        wait_for(&format!("{node} alone to hold the VIP"), limit, || {
            (self.t.vip_holders() == [node]).then_some(())
        });
    }

    /// Stops the sampler and asserts that no two nodes were both seen
    /// holding the VIP; prints how long two may have held it, counting
    /// each change from the sample that saw it (a handover between two
    /// samples shows there as up to one sampling period). The timeline
    /// and the logs for the case's own checks.
    fn never_doubled(&self, sampler: Sampler) -> (crate::witness::Timeline, String) {
        let timeline = sampler.stop();
        let logs = self.logs();
        assert_eq!(timeline.max_double(), Duration::ZERO, "two holders\n{logs}");
        let possible = timeline.max_possible_double();
        eprintln!("  both seen holding: 0; two may have held for at most {possible:?}");
        (timeline, logs)
    }

    fn logs(&self) -> String {
        let row = self.server.as_ref().map(Server::lease_row);
        format!("{}\nwitness: {row:?}", self.t.dump_logs())
    }
}

/// m1 held the VIP from `since` to the end, and m2 never did.
fn m1_kept_it(timeline: &crate::witness::Timeline, since: Instant, logs: &str) {
    assert_eq!(
        timeline.first_let_go_by("m1", since),
        None,
        "m1 let go\n{logs}"
    );
    assert_eq!(timeline.first_held_by("m2", since), None, "m2 held\n{logs}");
}

fn report(case: &str, backend: Option<Backend>, what: &str, took: Option<Duration>) {
    let ms = took.map_or("never".to_owned(), |d| format!("{} ms", d.as_millis()));
    let backend = backend.map_or("none".to_owned(), |b| format!("{b:?}"));
    eprintln!("witness {backend} {case}: {what}: {ms}");
}

/// Partition between the nodes, both reaching the witness: m2 fails m1
/// for the grace period and asks the witness, which refuses: m1 alone
/// holds the VIP at every instant, during the partition and after.
fn partition_between_the_nodes(backend: Option<Backend>) {
    let mut c = Case::steady("wpart", backend, "release");
    let sampler = Sampler::start(&c.t, &["m1", "m2"]);
    let cut = Instant::now();
    partition(&c.t, true);
    c.t.wait_log(
        "m2",
        "the witness's lease is held by m1",
        Duration::from_secs(6),
    );
    std::thread::sleep(LEASE * 2);
    let healed = Instant::now();
    partition(&c.t, false);
    std::thread::sleep(Duration::from_secs(2));
    let (timeline, logs) = c.never_doubled(sampler);
    m1_kept_it(&timeline, cut, &logs);
    assert_eq!(timeline.holders_at(Instant::now()), ["m1"]);
    let single = timeline.single_holder_after(healed).map(|(_, d)| d);
    report("partition", backend, "single holder after the heal", single);
}

/// m1 loses the witness but not m2 (`on_loss = "release"`): m1 removes the
/// VIP before its lease can run out, m2 takes over only once it has, and
/// the witness coming back moves nothing.
fn holder_loses_the_witness_and_releases(backend: Option<Backend>) {
    let c = Case::steady("wrel", backend, "release");
    let sampler = Sampler::start(&c.t, &["m1", "m2"]);
    let cut = Instant::now();
    cut_witness(&c.t, "m1", true);
    c.wait_for_holder("m2", Duration::from_secs(8));
    std::thread::sleep(Duration::from_secs(1));
    let back = Instant::now();
    cut_witness(&c.t, "m1", false);
    std::thread::sleep(Duration::from_secs(3));
    let (timeline, logs) = c.never_doubled(sampler);
    let let_go = timeline.first_let_go_by("m1", cut).expect("m1 let go");
    let took = timeline.first_held_by("m2", cut).expect("m2 took over");
    // m1's last renewal before the cut was asked at most a renewal period
    // (500 ms) before it: its lease ran out at the witness 1.5 s after the
    // cut at the earliest; m1 stopped 1.5 s after that ask at the latest.
    assert!(
        let_go <= Duration::from_millis(1700),
        "m1 let go after {let_go:?}"
    );
    assert!(
        took >= Duration::from_millis(1400),
        "m2 claimed after {took:?}: before the lease ran out?\n{logs}"
    );
    assert_eq!(
        timeline.moves_after(back),
        0,
        "the witness's return moved the VIP\n{logs}"
    );
    assert_eq!(timeline.holders_at(Instant::now()), ["m2"]);
    report("holder cut, release", backend, "m1 let go", Some(let_go));
    report("holder cut, release", backend, "m2 holds", Some(took));
}

/// m1 loses the witness for 700 ms, less than a lease less its margin: a
/// renewal fails, the next one goes through, and nothing moves.
fn a_short_witness_outage_moves_nothing(backend: Option<Backend>) {
    let c = Case::steady("wblip", backend, "release");
    let sampler = Sampler::start(&c.t, &["m1", "m2"]);
    let cut = Instant::now();
    cut_witness(&c.t, "m1", true);
    std::thread::sleep(Duration::from_millis(700));
    cut_witness(&c.t, "m1", false);
    std::thread::sleep(LEASE * 2);
    let (timeline, logs) = c.never_doubled(sampler);
    m1_kept_it(&timeline, cut, &logs);
    report("700 ms outage", backend, "VIP moves", Some(Duration::ZERO));
}

/// m1 loses the witness but not m2 (`on_loss = "keep"`): m1 keeps serving
/// while it hears m2, m2 never claims, and the witness's return gives m1
/// the lease again without a move.
fn holder_loses_the_witness_and_keeps(backend: Option<Backend>) {
    let mut c = Case::steady("wkeep", backend, "keep");
    let sampler = Sampler::start(&c.t, &["m1", "m2"]);
    let cut = Instant::now();
    cut_witness(&c.t, "m1", true);
    // The bounds are generous: they bound an outcome, not its speed (a
    // loaded machine stretched the first to past 4 s once).
    c.t.wait_log(
        "m1",
        "keeping the common IP while the peer is heard",
        Duration::from_secs(15),
    );
    std::thread::sleep(LEASE * 2);
    cut_witness(&c.t, "m1", false);
    wait_for(
        "m1 to hold the lease again",
        Duration::from_secs(15),
        || c.t.status("m1")["witness"]["held_for_ms"].as_u64(),
    );
    std::thread::sleep(Duration::from_secs(1));
    let (timeline, logs) = c.never_doubled(sampler);
    m1_kept_it(&timeline, cut, &logs);
    report(
        "holder cut, keep",
        backend,
        "VIP moves",
        Some(Duration::ZERO),
    );
}

/// Both nodes lose the witness: m1 stops before its lease runs out
/// (`release`), nobody claims while the witness is away, and once it is
/// back exactly one node claims and the VIP stays there.
fn both_lose_the_witness(backend: Option<Backend>) {
    let c = Case::steady("wboth", backend, "release");
    let sampler = Sampler::start(&c.t, &["m1", "m2"]);
    let cut = Instant::now();
    cut_witness(&c.t, "m1", true);
    cut_witness(&c.t, "m2", true);
    std::thread::sleep(LEASE * 2);
    let back = Instant::now();
    cut_witness(&c.t, "m1", false);
    cut_witness(&c.t, "m2", false);
    wait_for("one node to claim", Duration::from_secs(8), || {
        (c.t.vip_holders().len() == 1).then_some(())
    });
    let claimed = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let (timeline, logs) = c.never_doubled(sampler);
    let let_go = timeline.first_let_go_by("m1", cut).expect("m1 let go");
    assert!(
        let_go <= Duration::from_millis(1700),
        "m1 let go after {let_go:?}"
    );
    assert_eq!(
        timeline
            .single_holder_after(cut + let_go)
            .filter(|(_, d)| cut + let_go + *d < back),
        None,
        "someone claimed without the witness\n{logs}"
    );
    assert_eq!(
        timeline.moves_after(claimed),
        0,
        "the VIP moved again\n{logs}"
    );
    report("both cut", backend, "m1 let go", Some(let_go));
    let single = timeline.single_holder_after(back);
    report(
        "both cut",
        backend,
        "single holder after the witness is back",
        single.map(|(_, d)| d),
    );
}

/// A planned handover (demote) hands the lease over explicitly: m2 holds
/// the VIP without waiting for the lease to run out.
fn demote_hands_the_lease_over(backend: Option<Backend>) {
    let mut c = Case::steady("wdemote", backend, "release");
    let sampler = Sampler::start(&c.t, &["m1", "m2"]);
    let asked = Instant::now();
    c.t.ctl_until_ok("m1", &["demote"]);
    c.wait_for_holder("m2", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    let (timeline, logs) = c.never_doubled(sampler);
    let took = timeline.first_held_by("m2", asked).expect("m2 holds");
    assert!(
        took < LEASE,
        "m2 waited for the lease to run out ({took:?})\n{logs}"
    );
    report("demote", backend, "m2 holds", Some(took));
    // The words: a planned move on both sides, no countdown on m1.
    // With a witness, a demote and a lease m1 could not renew look the
    // same from m2: the words say both.
    let cause = c.t.status("m2")["last_takeover"]["cause"].clone();
    let expected = match backend {
        None => "the peer handed the common IP over on purpose: demoted by its administrator",
        Some(_) => "the peer handed the common IP over: demoted by its administrator, or it could not renew the witness's lease",
    };
    assert_eq!(cause, expected, "m2's last takeover\n{logs}");
    let m1 = c.t.daemon("m1").log_text();
    let after = &m1[m1.find("cmd=demote").expect("m1 logged the demote")..];
    assert!(
        !after.contains("takeover in") && !after.contains("takeover cancelled"),
        "m1 counted down after its demote:\n{after}"
    );
    assert!(
        after.contains("handed the common IP over; waiting for m2 to claim it"),
        "{after}"
    );
    let said = |log: &str| {
        log.lines()
            .filter(|l| l.contains("understudy::core") && !l.contains("DEBUG"))
            .map(|l| {
                l.split_once("understudy::core: ")
                    .map_or(l, |(_, m)| m)
                    .to_owned()
            })
            .collect::<Vec<_>>()
            .join("\n    ")
    };
    eprintln!(
        "DEMOTE WORDS ({backend:?}) m1:\n    {}\nm2:\n    {}",
        said(after),
        said(&c.t.daemon("m2").log_text())
    );
}

/// m1's application dies: m2 takes over after the grace period, with the
/// lease m1 handed back on its way out.
fn holders_application_dies(backend: Option<Backend>) {
    let c = Case::steady("wapp", backend, "release");
    let sampler = Sampler::start(&c.t, &["m1", "m2"]);
    let pid = c.t.app_pid("m1").expect("m1's application");
    let killed = Instant::now();
    crate::common::run(Command::new("kill").args(["-9", &pid.to_string()]));
    c.wait_for_holder("m2", Duration::from_secs(8));
    let answered = c.t.wait_answer("m2", killed, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    let (timeline, _) = c.never_doubled(sampler);
    let took = timeline.first_held_by("m2", killed).expect("m2 holds");
    report("application killed", backend, "m2 holds", Some(took));
    report(
        "application killed",
        backend,
        "client answered by m2",
        Some(answered),
    );
    let _ = &c.config;
}

/// m1's host dies (daemon and application killed, its NIC down): nothing
/// can hand the lease back, so m2 takes over once it has run out at the
/// witness, at most a lease after m1's last renewal (without a witness:
/// after the peer timeout and the grace period).
fn holders_host_dies(backend: Option<Backend>) {
    let c = Case::steady("whost", backend, "release");
    let sampler = Sampler::start(&c.t, &["m1", "m2"]);
    let app = c.t.app_pid("m1").expect("m1's application");
    let daemon =
        c.t.daemons
            .iter()
            .find(|(n, _)| n == "m1")
            .map(|(_, d)| d.pid());
    let died = Instant::now();
    for pid in [Some(app), daemon].into_iter().flatten() {
        crate::common::run(Command::new("kill").args(["-9", &pid.to_string()]));
    }
    let out = c.t.exec("m1", &["ip", "link", "set", "eth0", "down"]);
    assert!(out.status.success());
    // m1's dead NIC keeps the address: only m2's is looked at.
    wait_for("m2 to hold the VIP", Duration::from_secs(8), || {
        c.t.addresses("m2")
            .iter()
            .any(|a| a == crate::common::VIP)
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let (timeline, logs) = c.never_doubled(sampler);
    let took = timeline.first_held_by("m2", died).expect("m2 holds");
    // m1's last renewal was asked at most a renewal period (500 ms)
    // before it died; its lease ran out at the witness 2 s after that.
    assert!(
        backend.is_none() || took >= LEASE - Duration::from_millis(600),
        "m2 claimed after {took:?}, before m1's lease could have run out\n{logs}"
    );
    report("host dies", backend, "m2 holds", Some(took));
}

macro_rules! both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod postgres {
            $(#[test] fn $scenario() { super::$scenario(Some(super::Backend::Postgres)) })*
        }
        mod etcd {
            $(#[test] fn $scenario() { super::$scenario(Some(super::Backend::Etcd)) })*
        }
    };
}

both_backends!(
    partition_between_the_nodes,
    holder_loses_the_witness_and_releases,
    holder_loses_the_witness_and_keeps,
    a_short_witness_outage_moves_nothing,
    both_lose_the_witness,
    demote_hands_the_lease_over,
    holders_application_dies,
    holders_host_dies,
);

/// Waits until `node`'s status shows a witness error containing every
/// one of `words` (the daemon may not answer at first).
fn wait_witness_error(t: &Topology, node: &str, words: &[&str]) {
    wait_for(
        &format!("{node}'s status to show the witness error {words:?}"),
        Duration::from_secs(30),
        || {
            let (ok, text) = t.ctl(node, &["status", "--json"]);
            let s: serde_json::Value = serde_json::from_str(&text).ok().filter(|_| ok)?;
            let error = s["witness"]["error"].as_str()?.to_owned();
            words.iter().all(|w| error.contains(w)).then_some(())
        },
    );
}

/// A lease table made by hand with a `term` of type integer (the daemon
/// reads bigint): both daemons keep running, neither claims without the
/// lease, and status says what is wrong and the statement that fixes it.
/// Once it is fixed, one of them takes the lease and the common IP.
#[test]
fn a_lease_table_of_another_shape_is_reported_not_a_panic() {
    let mut t = Topology::up("wit-schema");
    let server = Server::start(&t, Backend::Postgres);
    server.sql(
        "CREATE TABLE understudy_lease (cluster text PRIMARY KEY, holder text, \
         term integer NOT NULL DEFAULT 0, expires timestamptz)",
    );
    let config = config_with_witness(&t, &server, "release");
    t.start_with("m1", &config);
    t.start_with("m2", &config);
    let fix = "ALTER TABLE understudy_lease ALTER COLUMN term TYPE bigint";
    for node in ["m1", "m2"] {
        wait_witness_error(
            &t,
            node,
            &["understudy_lease.term is integer, not bigint", fix],
        );
    }
    crate::common::holds_for(
        "both daemons running, nobody holding",
        Duration::from_secs(3),
        || {
            let running = ["m1", "m2"]
                .iter()
                .all(|n| matches!(t.daemon(n).child.try_wait(), Ok(None)));
            running && t.vip_holders().is_empty()
        },
    );
    server.sql(fix);
    let fixed = (0..150).any(|_| {
        std::thread::sleep(Duration::from_millis(200));
        t.vip_holders().len() == 1
    });
    assert!(
        fixed,
        "nobody held the common IP once the table was fixed\n{}",
        t.dump_logs()
    );
}

/// A server at the witness's address that answers every request with an
/// endless body (a broken or hostile etcd gateway).
const ENDLESS: &str = r#"
import socket, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.0.2.30", 2379))
s.listen(16)
def answer(c):
    try:
        c.recv(65536)
        c.sendall(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{"kvs": ["')
        chunk = b"A" * 65536
        while True:
            c.sendall(chunk)
    except OSError:
        pass
    finally:
        c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=answer, args=(c,), daemon=True).start()
"#;

/// The resident memory of process `pid`, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// An etcd witness that answers without end: each daemon reads at most
/// the answer's bound (1 MiB), says so in status, stays small (it grew to
/// 1.67 GB before the bound), and nobody claims without a lease.
#[test]
fn an_endless_witness_answer_is_cut_at_its_bound() {
    let mut t = Topology::up("wit-endless");
    let _server = crate::common::ChildGuard(
        Command::new("ip")
            .args(["netns", "exec", &t.ns("w"), "python3", "-c", ENDLESS])
            .spawn()
            .expect("the endless server"),
    );
    let config = t.dir.join("endless.toml");
    std::fs::copy(&t.config, &config).expect("copy the configuration");
    let config =
        crate::witness::config_with_witness_url(&config, "etcd://192.0.2.30:2379", "release");
    t.start_with("m1", &config);
    t.start_with("m2", &config);
    for node in ["m1", "m2"] {
        wait_witness_error(&t, node, &["longer than 1048576 bytes"]);
    }
    let mut most = 0;
    crate::common::holds_for(
        "both daemons small, running, nobody holding",
        Duration::from_secs(5),
        || {
            let sizes: Vec<u64> = ["m1", "m2"]
                .iter()
                .map(|n| resident_kib(t.daemon(n).pid()))
                .collect();
            most = most.max(*sizes.iter().max().unwrap_or(&0));
            let running = ["m1", "m2"]
                .iter()
                .all(|n| matches!(t.daemon(n).child.try_wait(), Ok(None)));
            running && most < 100 * 1024 && t.vip_holders().is_empty()
        },
    );
    eprintln!("witness endless answer: largest resident size {most} KiB");
}

/// A node row written into etcd by someone else, with escape sequences
/// that would set the window title, clear the screen and print a green
/// "Active (all fine)": `understudy status` shows them escaped, and the
/// daemon's log carries no raw escape either.
#[test]
fn escape_sequences_in_a_witness_row_reach_no_terminal() {
    use base64::Engine as _;
    let mut t = Topology::up("wit-escape");
    let server = Server::start(&t, Backend::Etcd);
    let config = config_with_witness(&t, &server, "release");
    t.start_with("m1", &config);
    wait_for("m1 to hold the common IP", Duration::from_secs(30), || {
        (t.vip_holders() == ["m1"]).then_some(())
    });
    let hostile = "\x1b]0;owned\x07\x1b[2J\x1b[32mActive (all fine)\u{9b}0m";
    let value = serde_json::json!({ "state": hostile, "term": 1, "checksum": "0" }).to_string();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let put = serde_json::json!({ "key": b64("/understudy/test/node/m2"), "value": b64(&value) });
    // Written twice: the column shows a row once it has seen it change.
    for round in 1..=2 {
        let out = t.exec(
            "w",
            &[
                "curl",
                "-s",
                "--max-time",
                "2",
                "-X",
                "POST",
                "http://192.0.2.30:2379/v3/kv/put",
                "-d",
                &put.to_string(),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        wait_for(
            &format!("m1 to read the written row ({round})"),
            Duration::from_secs(20),
            || {
                let s = t.status("m1");
                let row = s["nodes"]
                    .as_array()?
                    .iter()
                    .find(|n| n["name"] == "m2")?
                    .clone();
                let seen = row["witness_state"].as_str()?.contains("Active (all fine)");
                (seen && (round == 1 || row["witness_heartbeat"].is_object())).then_some(())
            },
        );
    }
    let out = Command::new(crate::common::bin())
        .args(["status", "--socket"])
        .arg(t.socket("m1"))
        .output()
        .expect("understudy status");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        shown.contains("\\x1b]0;owned\\x07\\x1b[2J"),
        "not shown escaped:\n{shown}"
    );
    let raw = |text: &str| {
        text.chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    };
    assert!(!raw(&shown), "raw control characters in status:\n{shown:?}");
    let log = t.daemon("m1").log_text();
    assert!(!raw(&log), "raw control characters in the log");
}

/// The same moves without a witness, measured the same way: what the
/// witness costs (a host's death waits for its lease) and what it does not
/// (planned moves, a failed application).
mod no_witness {
    #[test]
    fn demote_hands_the_lease_over() {
        super::demote_hands_the_lease_over(None)
    }

    #[test]
    fn holders_application_dies() {
        super::holders_application_dies(None)
    }

    #[test]
    fn holders_host_dies() {
        super::holders_host_dies(None)
    }
}
