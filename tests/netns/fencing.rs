//! Watchdog self-fencing with the real binary, an etcd witness (2 s
//! lease: a 1 s watchdog) and a watchdog stand-in per node
//! (`tests/support/watchdog_standin.py`): a named pipe at the path the
//! node's `[fencing] watchdog` names, read by a program that, when the
//! daemon does not feed it in time, does what a reset does to the node
//! (kills every process in its namespace, flushes its NIC's addresses).
//! This machine has no watchdog driver and cannot load softdog; the
//! device's own calls are unit-tested in `src/io/watchdog.rs`.
//!
//! A sampler looks at both nodes' addresses every 10 ms; every case that
//! moves the VIP asserts that no two nodes were ever seen holding it, and
//! prints the times (`-- --nocapture`).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{support, wait_for, ChildGuard, Topology};
use crate::witness::{config_with_witness, Backend, Sampler, Server};

/// The watchdog timeout a 2 s lease allows (¾ lease − 0.2 s, whole
/// seconds), which the stand-in is given too.
const TIMEOUT: Duration = Duration::from_secs(1);
/// No stand-in runs longer than this.
const STANDIN_LIFETIME: Duration = Duration::from_secs(300);

/// One node's watchdog stand-in, ended by its PID on drop.
struct StandIn {
    _child: ChildGuard,
    fifo: PathBuf,
    record: PathBuf,
}

impl StandIn {
    fn start(t: &Topology, node: &str, timeout: Duration) -> StandIn {
        let fifo = t.dir.join(format!("{node}.watchdog"));
        let record = t.dir.join(format!("{node}.watchdog.log"));
        let _ = std::fs::remove_file(&fifo);
        let _ = std::fs::remove_file(&record);
        let child = Command::new("python3")
            .arg(support("watchdog_standin.py"))
            .arg(&fifo)
            .arg(timeout.as_secs_f64().to_string())
            .arg(t.ns(node))
            .arg("eth0")
            .arg(&record)
            .arg(STANDIN_LIFETIME.as_secs().to_string())
            .spawn()
            .expect("start the watchdog stand-in");
        let standin = StandIn {
            _child: ChildGuard(child),
            fifo,
            record,
        };
        standin.wait_record("ready", Duration::from_secs(10));
        standin
    }

    fn record(&self) -> String {
        std::fs::read_to_string(&self.record).unwrap_or_default()
    }

    /// Waits until the record has a line with `what`.
    fn wait_record(&self, what: &str, limit: Duration) {
        wait_for(&format!("the stand-in to record {what:?}"), limit, || {
            self.record().contains(what).then_some(())
        });
    }
}

/// A pair fenced by watchdogs, m1 Active with the lease and its watchdog
/// armed, m2 watching.
struct Fenced {
    t: Topology,
    server: Option<Server>,
    standins: Vec<StandIn>,
}

impl Fenced {
    fn steady(name: &str, lease: &str) -> Fenced {
        let mut t = Topology::up(name);
        let server = Server::start(&t, Backend::Etcd);
        let shared = config_with_witness(&t, &server, "release");
        let text = std::fs::read_to_string(&shared).expect("the configuration");
        let text = text.replace("lease = \"2s\"", &format!("lease = \"{lease}\""));
        let timeout = witness_timeout(lease);
        let standins: Vec<StandIn> = ["m1", "m2"]
            .iter()
            .map(|n| StandIn::start(&t, n, timeout))
            .collect();
        let configs: Vec<PathBuf> = ["m1", "m2"]
            .iter()
            .zip(&standins)
            .map(|(node, s)| {
                let fencing = format!(
                    "\n[fencing]\nwatchdog = \"{}\"\nwatchdog_mode = \"required\"\n",
                    s.fifo.display()
                );
                let path = t.dir.join(format!("{node}-fenced.toml"));
                std::fs::write(&path, format!("{text}{fencing}")).expect("write the configuration");
                path
            })
            .collect();
        t.steady_pair_with(&configs[0], &configs[1]);
        let fenced = Fenced {
            t,
            server: Some(server),
            standins,
        };
        fenced.standins[0].wait_record("armed", Duration::from_secs(5));
        fenced
    }

    fn m1(&self) -> &StandIn {
        &self.standins[0]
    }

    fn logs(&self) -> String {
        let records: Vec<String> = self
            .standins
            .iter()
            .map(|s| format!("--- {} ---\n{}", s.record.display(), s.record()))
            .collect();
        format!("{}\n{}", self.t.dump_logs(), records.join("\n"))
    }

    fn wait_for_holder(&self, node: &str, limit: Duration) {
        wait_for(&format!("{node} alone to hold the VIP"), limit, || {
            (self.t.vip_holders() == [node]).then_some(())
        });
    }

    /// The sampler's timeline: no two holders ever seen; m1 let go before
    /// m2 took the VIP. Prints both times after `at`.
    fn handed_over_without_doubling(&self, sampler: Sampler, at: Instant, case: &str) {
        let timeline = sampler.stop();
        let logs = self.logs();
        assert_eq!(timeline.max_double(), Duration::ZERO, "two holders\n{logs}");
        let gone = timeline.first_let_go_by("m1", at);
        let taken = timeline.first_held_by("m2", at);
        eprintln!(
            "fencing {case}: m1's address gone after {gone:?}, m2 holds after {taken:?}, two may have held for at most {:?}",
            timeline.max_possible_double()
        );
        let (Some(gone), Some(taken)) = (gone, taken) else {
            panic!("m1 let go at {gone:?}, m2 took over at {taken:?}\n{logs}");
        };
        assert!(gone < taken, "m1 let go after m2 took over\n{logs}");
    }
}

impl Drop for Fenced {
    fn drop(&mut self) {
        // The witness first: the topology's teardown ends the rest.
        self.server.take();
    }
}

/// The timeout `check-config` derives from a lease given as "Ns".
fn witness_timeout(lease: &str) -> Duration {
    let secs: u64 = lease
        .trim_end_matches('s')
        .parse()
        .expect("a lease in seconds");
    understudy::core::longest_timeout(Duration::from_secs(secs))
}

/// The Active daemon frozen (SIGSTOP) for `freeze`: it stops feeding its
/// watchdog, which resets its node about one timeout later, before its
/// lease can end at the witness; m2 takes over after that. Without the
/// watchdog a 10 s freeze gave 7.98 s of two holders with this witness.
fn a_frozen_holder_is_reset_before_its_lease_ends(name: &str, freeze: Duration) {
    let mut c = Fenced::steady(name, "2s");
    assert_eq!(witness_timeout("2s"), TIMEOUT);
    let sampler = Sampler::start(&c.t, &["m1", "m2"]);
    let at = Instant::now();
    c.t.daemon("m1").signal("STOP");
    std::thread::sleep(freeze);
    c.t.daemon("m1").signal("CONT");
    c.wait_for_holder("m2", Duration::from_secs(15));
    c.m1().wait_record("reset", Duration::from_secs(5));
    c.handed_over_without_doubling(sampler, at, &format!("{freeze:?} freeze"));
}

#[test]
fn a_holder_frozen_for_2s_is_reset_before_its_lease_ends() {
    a_frozen_holder_is_reset_before_its_lease_ends("wdfz2", Duration::from_secs(2));
}

#[test]
fn a_holder_frozen_for_10s_is_reset_before_its_lease_ends() {
    a_frozen_holder_is_reset_before_its_lease_ends("wdfz10", Duration::from_secs(10));
}

/// `kill -9` of the Active daemon: the device is closed without the magic
/// V, so it runs on and resets the node; the address leaves m1 before m2
/// claims.
#[test]
fn a_killed_holder_loses_the_address_before_the_peer_claims() {
    let mut c = Fenced::steady("wdkill", "2s");
    let sampler = Sampler::start(&c.t, &["m1", "m2"]);
    let at = Instant::now();
    c.t.daemon("m1").signal("KILL");
    c.m1().wait_record("closed-armed", Duration::from_secs(5));
    c.m1().wait_record("reset", Duration::from_secs(5));
    c.wait_for_holder("m2", Duration::from_secs(15));
    c.handed_over_without_doubling(sampler, at, "kill -9");
}

/// A clean stop releases the VIP, then disarms with the magic close: no
/// reset follows. Status and metrics showed the watchdog armed and fed
/// while m1 held the VIP, and m2's disarmed.
#[test]
fn a_clean_stop_disarms_and_nothing_resets() {
    let mut c = Fenced::steady("wdstop", "2s");
    let status = c.t.status("m1");
    let wd = &status["watchdog"];
    assert_eq!(
        (
            wd["armed"].as_bool(),
            wd["feeding"].as_bool(),
            wd["mode"].as_str()
        ),
        (Some(true), Some(true), Some("required")),
        "{status:#}"
    );
    assert_eq!(status["watchdog"]["timeout_s"].as_u64(), Some(1));
    assert_eq!(c.t.status("m2")["watchdog"]["armed"].as_bool(), Some(false));
    let url = format!("http://192.0.2.11:{}/metrics", crate::common::API_PORT);
    let (code, metrics) = c.t.api("GET", &url, Some(crate::common::API_TOKEN), &[]);
    assert_eq!(code, 200, "{metrics}");
    for name in ["understudy_watchdog_armed{", "understudy_watchdog_fed{"] {
        let line = metrics.lines().find(|l| l.starts_with(name));
        assert!(line.is_some_and(|l| l.ends_with(" 1")), "{name}: {line:?}");
    }
    c.t.daemon("m1").signal("TERM");
    let exit = c.t.daemon("m1").wait_exit(Duration::from_secs(15));
    assert!(exit.success(), "m1 stopped with {exit}\n{}", c.logs());
    c.m1().wait_record("disarmed", Duration::from_secs(5));
    c.wait_for_holder("m2", Duration::from_secs(15));
    // Three timeouts more: a timer left running would have fired.
    std::thread::sleep(TIMEOUT * 3);
    let record = c.m1().record();
    assert!(!record.contains("reset"), "{record}\n{}", c.logs());
    c.standins[1].wait_record("armed", Duration::from_secs(5));
}

/// `understudy restart` while holding hands the open device to the new
/// process: it is neither closed nor left unfed long enough to fire, and
/// m1 keeps the VIP. (A 4 s lease: a 2 s watchdog, room for a re-exec.)
#[test]
fn a_restart_keeps_the_watchdog_armed_across_the_exec() {
    let mut c = Fenced::steady("wdexec", "4s");
    let sampler = Sampler::start(&c.t, &["m1", "m2"]);
    let at = Instant::now();
    let (ok, text) = c.t.ctl("m1", &["restart"]);
    assert!(ok, "{text}");
    c.t.wait_log(
        "m1",
        "watchdog taken over from before the restart",
        Duration::from_secs(10),
    );
    wait_for("m1 to be Active again", Duration::from_secs(10), || {
        (c.t.status("m1")["watchdog"]["feeding"].as_bool() == Some(true)).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let timeline = sampler.stop();
    let logs = c.logs();
    assert_eq!(
        timeline.first_let_go_by("m1", at),
        None,
        "m1 let go\n{logs}"
    );
    let record = c.m1().record();
    for wrong in ["disarmed", "closed-armed", "reset"] {
        assert!(!record.contains(wrong), "{wrong}: {record}\n{logs}");
    }
}

/// `watchdog_mode = "required"` without a device: the claim fails (and
/// backs off), nothing is added, and status says why.
#[test]
fn required_without_a_device_never_claims() {
    let mut t = Topology::up("wdreq");
    let text = std::fs::read_to_string(&t.config).expect("the configuration");
    let missing = t.dir.join("no-such-watchdog");
    let path = t.dir.join("required.toml");
    let fencing = format!(
        "\n[fencing]\nwatchdog = \"{}\"\nwatchdog_mode = \"required\"\n",
        missing.display()
    );
    std::fs::write(&path, text + &fencing).expect("write the configuration");
    t.start_with("m1", &path);
    t.wait_log(
        "m1",
        "the claim failed; backing off",
        Duration::from_secs(15),
    );
    let why = wait_for("a failed claim in status", Duration::from_secs(15), || {
        t.status("m1")["failed_claims"]["why"]
            .as_str()
            .map(str::to_owned)
    });
    assert!(why.contains("the watchdog cannot be armed"), "{why}");
    assert!(why.contains("no-such-watchdog"), "{why}");
    assert!(t.vip_holders().is_empty(), "{}", t.dump_logs());
    let (ok, text) = t.ctl("m1", &["status"]);
    assert!(ok, "{text}");
    assert!(text.contains("Watchdog "), "{text}");
}

/// A fence command for m2 that "powers m1 off" as a PDU would: every
/// process in m1's namespace killed, its addresses gone. It writes its
/// environment to `fence.env` first.
fn power_off_m1(t: &Topology) -> Option<String> {
    Some(format!(
        "env | grep ^UNDERSTUDY_ | sort > {dir}/fence.env; \
         ip netns pids {ns} | xargs -r kill -9; ip -n {ns} addr flush dev eth0",
        dir = t.dir.display(),
        ns = t.ns("m1")
    ))
}

/// Sends `signal` to every process of `node`'s host (its namespace): STOP
/// freezes the host as a hung machine is, its kernel still answering ARP
/// for the address; CONT thaws it.
fn signal_host(t: &Topology, node: &str, signal: &str) {
    let pids = Command::new("ip")
        .args(["netns", "pids", &t.ns(node)])
        .output()
        .expect("ip netns pids");
    for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), pid])
            .status();
    }
}

/// m1 and m2 with an etcd witness and a 10 s lease; m2 has `fence`
/// (given), m1 nothing to fence with.
fn fenced_by_command(
    name: &str,
    backend: Backend,
    fence: impl Fn(&Topology) -> Option<String>,
) -> (Topology, Server) {
    let mut t = Topology::up(name);
    let server = Server::start(&t, backend);
    let shared = config_with_witness(&t, &server, "release");
    let text = std::fs::read_to_string(&shared).expect("the configuration");
    let text = text.replace("lease = \"2s\"", "lease = \"10s\"");
    let m1 = t.dir.join("m1-lease10.toml");
    std::fs::write(&m1, &text).expect("write the configuration");
    let m2 = t.dir.join("m2-fence.toml");
    let fencing = fence(&t).map_or(String::new(), |command| {
        format!(
            "\n[fencing]\nfence = \"{}\"\nfence_timeout = \"10s\"\n",
            command.replace('"', "\\\"")
        )
    });
    std::fs::write(&m2, text + &fencing).expect("write the configuration");
    t.steady_pair_with(&m1, &m2);
    (t, server)
}

/// A frozen holder, fenced by m2's command: its lease is ended at the
/// witness after the fence, so m2 claims without waiting for the 10 s
/// lease to run out (it would otherwise: the witness keeps the frozen
/// holder's lease until then). The command had the peer, its address and
/// its term.
fn a_fenced_holders_lease_is_ended(name: &str, backend: Backend) {
    let (mut t, server) = fenced_by_command(name, backend, power_off_m1);
    let status = t.status("m1");
    let rows = status["nodes"].as_array().expect("the node rows");
    let row = rows.iter().find(|r| r["name"] == "m1").expect("m1's row");
    let term = row["term"].as_u64().expect("m1's term");
    let sampler = Sampler::start(&t, &["m1", "m2"]);
    let at = Instant::now();
    signal_host(&t, "m1", "STOP");
    wait_for("m2 to hold the VIP", Duration::from_secs(9), || {
        (t.vip_holders() == ["m2"]).then_some(())
    });
    let timeline = sampler.stop();
    let logs = format!("{}\nwitness: {}", t.dump_logs(), server.lease_row());
    assert_eq!(timeline.max_double(), Duration::ZERO, "two holders\n{logs}");
    let taken = timeline.first_held_by("m2", at).expect("m2 took over");
    eprintln!(
        "fence command, {backend:?}, 10 s lease: m2 holds {} ms after m1 froze",
        taken.as_millis()
    );
    assert!(
        taken < Duration::from_secs(8),
        "m2 waited {taken:?}: the lease was not ended\n{logs}"
    );
    t.wait_log(
        "m2",
        "ended the fenced holder's lease",
        Duration::from_secs(5),
    );
    let env = std::fs::read_to_string(t.dir.join("fence.env")).expect("the fence ran");
    for line in [
        "UNDERSTUDY_PEER=m1".to_owned(),
        "UNDERSTUDY_PEER_ADDRESS=192.0.2.11".to_owned(),
        format!("UNDERSTUDY_TERM={term}"),
        "UNDERSTUDY_NODE=m2".to_owned(),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} not in\n{env}");
    }
}

#[test]
fn a_fenced_holders_etcd_lease_is_ended_and_the_claim_does_not_wait_for_it() {
    a_fenced_holders_lease_is_ended("fencecmd", Backend::Etcd);
}

#[test]
fn a_fenced_holders_postgres_lease_is_ended_and_the_claim_does_not_wait_for_it() {
    a_fenced_holders_lease_is_ended("fencepg", Backend::Postgres);
}

/// A fence that fails holds the claim back: m1's host frozen (the
/// address stays on its NIC), m2's fence command fails, m2 never claims,
/// and its status says why.
#[test]
fn a_failed_fence_holds_the_claim_back_and_says_why() {
    let (mut t, _server) = fenced_by_command("fencefail", Backend::Etcd, |_| {
        Some("echo the PDU says no >&2; exit 3".into())
    });
    signal_host(&t, "m1", "STOP");
    t.wait_log("m2", "the fence command failed", Duration::from_secs(15));
    let why = wait_for(
        "m2's failed claims in status",
        Duration::from_secs(5),
        || {
            t.status("m2")["failed_claims"]["why"]
                .as_str()
                .map(str::to_owned)
        },
    );
    assert!(why.contains("the fence command failed"), "{why}");
    assert!(why.contains("the PDU says no"), "{why}");
    assert_eq!(t.vip_holders(), ["m1"], "{}", t.dump_logs());
    signal_host(&t, "m1", "CONT");
}

/// The same frozen host without a fence command, for comparison: m2 is
/// granted the lease only once the frozen holder's 10 s lease ran out,
/// and the frozen host still answers for the address meanwhile (no
/// watchdog here), so both hold it until the host is thawed.
#[test]
fn without_a_fence_the_claim_waits_for_the_frozen_holders_lease() {
    let (mut t, _server) = fenced_by_command("nofence", Backend::Etcd, |_| None);
    let at = Instant::now();
    signal_host(&t, "m1", "STOP");
    wait_for("m2 to add the VIP", Duration::from_secs(20), || {
        t.vip_holders().contains(&"m2".to_owned()).then_some(())
    });
    let taken = at.elapsed();
    eprintln!(
        "no fence command, 10 s lease: m2 holds {} ms after m1 froze",
        taken.as_millis()
    );
    signal_host(&t, "m1", "CONT");
    assert!(
        taken > Duration::from_secs(7),
        "m2 claimed after {taken:?}, before the lease could run out\n{}",
        t.dump_logs()
    );
    t.wait_log(
        "m2",
        "the witness's lease is held by m1",
        Duration::from_secs(1),
    );
}
