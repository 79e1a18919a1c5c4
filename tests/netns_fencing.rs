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

mod common;
mod witness;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{support, wait_for, ChildGuard, Topology};
use witness::{config_with_witness, Backend, Sampler, Server};

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
    let url = format!("http://192.0.2.11:{}/metrics", common::API_PORT);
    let (code, metrics) = c.t.api("GET", &url, Some(common::API_TOKEN), &[]);
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
