//! Clusters of three and five nodes electing through a real three-member
//! etcd cluster (Debian's `etcd-server`, one member in each of the
//! namespaces e1, e2 and e3, started by the test), with the real binary on
//! every node and a 2 s lease. A sampler looks at every node's addresses
//! every 10 ms; every case asserts that no two nodes were ever seen holding
//! the VIP at once, and which node took over (run with `-- --nocapture`
//! for the figures).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{address, wait_for, Topology, PEER_TIMEOUT};
use crate::witness::{Sampler, Timeline, LEASE};

/// The etcd members: host, address.
const MEMBERS: [(&str, &str); 3] = [
    ("e1", "192.0.2.31"),
    ("e2", "192.0.2.32"),
    ("e3", "192.0.2.33"),
];

/// A three-member etcd cluster, its members killed on drop.
struct Etcd {
    members: Vec<(String, Child)>,
}

impl Etcd {
    fn start(t: &Topology) -> Etcd {
        let cluster: Vec<String> = MEMBERS
            .iter()
            .map(|(name, ip)| format!("{name}=http://{ip}:2380"))
            .collect();
        let cluster = cluster.join(",");
        let members = MEMBERS
            .iter()
            .map(|(name, ip)| {
                let dir = t.dir.join(format!("etcd-{name}"));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("etcd's directory");
                let log = std::fs::File::create(dir.join("log")).expect("etcd's log");
                let (client, peer) = (format!("http://{ip}:2379"), format!("http://{ip}:2380"));
                let child = Command::new("ip")
                    .args(["netns", "exec", &t.ns(name), "etcd", "--name", name])
                    .arg("--data-dir")
                    .arg(dir.join("data"))
                    .args(["--listen-client-urls", &client])
                    .args(["--advertise-client-urls", &client])
                    .args(["--listen-peer-urls", &peer])
                    .args(["--initial-advertise-peer-urls", &peer])
                    .args(["--initial-cluster", &cluster])
                    .args(["--initial-cluster-state", "new"])
                    .args(["--initial-cluster-token", &t.prefix])
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().expect("clone the log handle"))
                    .stderr(log)
                    .spawn()
                    .expect("start etcd (apt-get install etcd-server)");
                ((*name).to_owned(), child)
            })
            .collect();
        let etcd = Etcd { members };
        for (name, _) in MEMBERS {
            wait_for(
                &format!("etcd member {name} to be healthy"),
                Duration::from_secs(20),
                || etcd.get(t, name, "health").contains("true").then_some(()),
            );
        }
        etcd
    }

    /// A GET of `path` on member `name`'s client port (empty on failure).
    fn get(&self, t: &Topology, name: &str, path: &str) -> String {
        let url = format!("http://{}:2379/{path}", address(name));
        let out = t.exec(name, &["curl", "-s", "--max-time", "1", &url]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The member that leads the cluster now.
    fn leader(&self, t: &Topology) -> String {
        wait_for("etcd to have a leader", Duration::from_secs(10), || {
            MEMBERS.iter().find_map(|(name, ip)| {
                let url = format!("http://{ip}:2379/v3/maintenance/status");
                let out = t.exec(
                    name,
                    &[
                        "curl",
                        "-s",
                        "--max-time",
                        "1",
                        "-X",
                        "POST",
                        "-d",
                        "{}",
                        &url,
                    ],
                );
                let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
                let me = status["header"]["member_id"].as_str()?;
                (status["leader"].as_str() == Some(me)).then(|| (*name).to_owned())
            })
        })
    }

    /// Kills member `name` (kill -9).
    fn kill(&mut self, name: &str) {
        if let Some((_, child)) = self.members.iter_mut().find(|(n, _)| n == name) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url() -> String {
        let list: Vec<String> = MEMBERS.iter().map(|(_, ip)| format!("{ip}:2379")).collect();
        format!("etcd://{}", list.join(","))
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for (_, child) in &mut self.members {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The test configuration for nodes m1…m`n` (m1 the primary, the others
/// preferred in their order) electing through the etcd cluster.
fn cluster_config(t: &Topology, n: usize, lease: Duration) -> PathBuf {
    let text = std::fs::read_to_string(&t.config).expect("the configuration");
    let monitor = "\n[monitor]";
    assert!(text.contains(monitor), "the test configuration's [monitor]");
    let extra: String = (3..=n)
        .map(|i| {
            let name = format!("m{i}");
            let ip = address(&name);
            format!(
                "\n[[node]]\nname = \"{name}\"\nrole = \"secondary\"\nnic = \"eth0\"\naddress = \"{ip}\"\nurl = \"http://{ip}/\"\n"
            )
        })
        .collect();
    let text = text.replacen(monitor, &format!("{extra}{monitor}"), 1);
    let witness = format!(
        "\n[witness]\nurl = \"{}\"\nlease = \"{}s\"\n",
        Etcd::url(),
        lease.as_secs()
    );
    let path = t.dir.join(format!("cluster-{n}.toml"));
    std::fs::write(&path, text + &witness).expect("write the configuration");
    path
}

/// A cluster serving through etcd. The etcd members are killed before
/// the topology's teardown ends whatever is left in the namespaces.
struct Cluster {
    etcd: Etcd,
    t: Topology,
    nodes: Vec<String>,
}

impl Cluster {
    /// m1 Active with the lease, every other node watching it, and every
    /// node's status listing all the others with a recent heartbeat.
    fn steady(name: &str, n: usize) -> Cluster {
        Cluster::steady_with(name, n, LEASE)
    }

    /// [`Cluster::steady`] with a lease of this length.
    fn steady_with(name: &str, n: usize, lease: Duration) -> Cluster {
        let mut t = Topology::up_cluster(name);
        let etcd = Etcd::start(&t);
        let config = cluster_config(&t, n, lease);
        let check = crate::common::run(
            Command::new(crate::common::bin())
                .args(["check-config", "--node", "m1"])
                .arg(&config),
        );
        assert!(check.status.success(), "{check:?}");
        let nodes: Vec<String> = (1..=n).map(|i| format!("m{i}")).collect();
        t.start_with("m1", &config);
        t.wait_log("m1", "claimed the common IP", Duration::from_secs(10));
        wait_for("m1 to answer on the VIP", Duration::from_secs(10), || {
            (t.get_vip().as_deref() == Some("m1")).then_some(())
        });
        for node in &nodes[1..] {
            t.start_with(node, &config);
        }
        for node in &nodes[1..] {
            wait_for(
                &format!("{node} to hear m1 and see it healthy"),
                Duration::from_secs(10),
                || {
                    let log = t.daemon(node).log_text();
                    log.contains("peer application healthy").then_some(())
                },
            );
        }
        let c = Cluster { etcd, t, nodes };
        for node in &c.nodes {
            c.wait_all_heard(node);
        }
        c
    }

    /// Waits until `node`'s status lists every node, each other one heard
    /// (a last heartbeat under a second old), m1 holding.
    fn wait_all_heard(&self, node: &str) {
        wait_for(
            &format!("{node}'s status to list every node heard"),
            Duration::from_secs(10),
            || {
                let s = self.t.status(node);
                let rows = s["nodes"].as_array()?;
                let heard = rows.iter().filter(|r| r["local"] == false).all(|r| {
                    r["last_heartbeat"]["age_ms"]
                        .as_u64()
                        .is_some_and(|ms| ms < 1000)
                });
                let listed = rows.len() == self.nodes.len();
                (listed && heard && s["holder"]["node"] == "m1").then_some(())
            },
        );
    }

    fn sampler(&self) -> Sampler {
        let names: Vec<&str> = self.nodes.iter().map(String::as_str).collect();
        Sampler::start(&self.t, &names)
    }

    /// Waits until `node` holds the VIP on its NIC.
    fn wait_for_holder(&self, node: &str, limit: Duration) {
        wait_for(&format!("{node} to hold the VIP"), limit, || {
            self.t
                .addresses(node)
                .iter()
                .any(|a| a == crate::common::VIP)
                .then_some(())
        });
    }

    /// Stops the sampler and asserts that no two nodes were both seen
    /// holding the VIP; prints how long two may have held it.
    fn never_doubled(&self, sampler: Sampler) -> (Timeline, String) {
        let timeline = sampler.stop();
        let logs = self.t.dump_logs();
        assert_eq!(timeline.max_double(), Duration::ZERO, "two holders\n{logs}");
        let possible = timeline.max_possible_double();
        eprintln!("  both seen holding: 0; two may have held for at most {possible:?}");
        (timeline, logs)
    }

    /// With every node sampled: `fault` at an instant, then `node` holds
    /// the VIP within `limit` (`then` runs at once, given the instant),
    /// a second more to settle; no two holders were seen, only `node`
    /// took over, and the time to it is reported as `case` with `nodes`.
    fn takes_over<T>(
        &self,
        case: &str,
        fault: impl FnOnce(&Cluster),
        node: &str,
        limit: Duration,
        then: impl FnOnce(&Cluster, Instant) -> T,
    ) -> T {
        let sampler = self.sampler();
        let at = Instant::now();
        fault(self);
        self.wait_for_holder(node, limit);
        let result = then(self, at);
        std::thread::sleep(Duration::from_secs(1));
        let (timeline, logs) = self.never_doubled(sampler);
        self.only_took_over(&timeline, at, node, &logs);
        let what = format!("{node} holds");
        report(
            self.nodes.len(),
            case,
            &what,
            timeline.first_held_by(node, at),
        );
        result
    }

    /// Only `expected` of the nodes held the VIP after `since` (m1 aside).
    fn only_took_over(&self, timeline: &Timeline, since: Instant, expected: &str, logs: &str) {
        for node in self.nodes.iter().filter(|n| *n != "m1" && *n != expected) {
            assert_eq!(
                timeline.first_held_by(node, since),
                None,
                "{node} held the VIP\n{logs}"
            );
        }
    }

    /// Kills `node`'s application (kill -9).
    fn kill_app(&self, node: &str) {
        let pid = self.t.app_pid(node).expect("the application's PID");
        crate::common::run(Command::new("kill").args(["-9", &pid.to_string()]));
    }

    /// Kills `node`'s host: its daemon and application, its NIC down.
    fn kill_host(&self, node: &str) {
        let app = self.t.app_pid(node);
        let daemon = self.t.daemons.iter().find(|(n, _)| n == node);
        for pid in [app, daemon.map(|(_, d)| d.pid())].into_iter().flatten() {
            crate::common::run(Command::new("kill").args(["-9", &pid.to_string()]));
        }
        let out = self.t.exec(node, &["ip", "link", "set", "eth0", "down"]);
        assert!(out.status.success());
    }

    /// Cuts (or restores) every path between `node` and every other node
    /// and etcd member, both ways, with blackhole routes; the client still
    /// reaches it. It also loses its route to the VIP, so that it cannot
    /// see the service through it and wants to claim.
    fn isolate(&self, node: &str, on: bool) {
        let verb = if on { "add" } else { "del" };
        let vip = format!("{}/32", crate::common::VIP);
        let out = self.t.exec(node, &["ip", "route", verb, "blackhole", &vip]);
        assert!(out.status.success(), "{out:?}");
        let others = self.nodes.iter().map(String::as_str).filter(|n| *n != node);
        for other in others.chain(MEMBERS.iter().map(|(n, _)| *n)) {
            for (host, dest) in [(node, address(other)), (other, address(node))] {
                let dest = format!("{dest}/32");
                let out = self
                    .t
                    .exec(host, &["ip", "route", verb, "blackhole", &dest]);
                assert!(out.status.success(), "{out:?}");
            }
        }
    }
}

fn report(nodes: usize, case: &str, what: &str, took: Option<Duration>) {
    let ms = took.map_or("never".to_owned(), |d| format!("{} ms", d.as_millis()));
    eprintln!("cluster of {nodes} {case}: {what}: {ms}");
}

/// The holder's application dies: the most preferred healthy backup (m2)
/// takes over, and only it.
#[test]
fn three_nodes_holders_application_dies_the_first_backup_takes_over() {
    let c = Cluster::steady("c3app", 3);
    let kill = |c: &Cluster| c.kill_app("m1");
    let answer = |c: &Cluster, killed| c.t.wait_answer("m2", killed, Duration::from_secs(5));
    let answered = c.takes_over(
        "application killed",
        kill,
        "m2",
        Duration::from_secs(8),
        answer,
    );
    report(
        3,
        "application killed",
        "client answered by m2",
        Some(answered),
    );
}

/// The holder's host dies: nothing hands the lease back, so m2 takes over
/// once it ran out at etcd, and only m2.
#[test]
fn three_nodes_holders_host_dies_the_first_backup_takes_over() {
    let c = Cluster::steady("c3host", 3);
    let kill = |c: &Cluster| c.kill_host("m1");
    c.takes_over("host dies", kill, "m2", Duration::from_secs(10), |_, _| ());
}

/// m3 is cut from etcd and from the other nodes (not from the client):
/// it cannot see m1's application, fails it for the grace period, and
/// asks etcd, which it cannot reach: it never holds the VIP, and m1 keeps
/// it throughout, during the cut and after it heals.
#[test]
fn three_nodes_one_cut_from_etcd_and_the_others_never_holds() {
    let mut c = Cluster::steady("c3cut", 3);
    let sampler = c.sampler();
    let cut = Instant::now();
    c.isolate("m3", true);
    c.t.wait_log("m3", "the witness cannot be asked", Duration::from_secs(8));
    std::thread::sleep(LEASE * 2);
    c.isolate("m3", false);
    c.wait_all_heard("m3");
    std::thread::sleep(Duration::from_secs(1));
    let (timeline, logs) = c.never_doubled(sampler);
    assert_eq!(
        timeline.first_let_go_by("m1", cut),
        None,
        "m1 let go\n{logs}"
    );
    c.only_took_over(&timeline, cut, "m1", &logs);
    report(
        3,
        "one node cut off",
        "m3 holds",
        timeline.first_held_by("m3", cut),
    );
}

/// The etcd leader is killed: the members left elect another (etcd's
/// election timeout is 1 s), the holder renews through them, and the VIP
/// does not move. At the default lease (10 s: renewals every 2.5 s, each
/// given 2.5 s); with the tests' 2 s lease an election can outlast the
/// holder's 1.5 s and make it let go (see the README).
#[test]
fn three_nodes_an_etcd_member_dies_and_nothing_moves() {
    let default_lease = Duration::from_secs(10);
    let mut c = Cluster::steady_with("c3etcd", 3, default_lease);
    let leader = c.etcd.leader(&c.t);
    let sampler = c.sampler();
    let killed = Instant::now();
    c.etcd.kill(&leader);
    std::thread::sleep(default_lease);
    let new_leader = c.etcd.leader(&c.t);
    assert_ne!(new_leader, leader, "a new leader");
    c.wait_all_heard("m2");
    let (timeline, logs) = c.never_doubled(sampler);
    assert_eq!(
        timeline.first_let_go_by("m1", killed),
        None,
        "m1 let go\n{logs}"
    );
    assert_eq!(timeline.moves_after(killed), 0, "the VIP moved\n{logs}");
    eprintln!("cluster of 3: etcd leader {leader} killed, {new_leader} leads: no move");
}

/// The first backup is disabled: when the holder's application dies, the
/// next one (m3) takes over, and m2 never holds.
#[test]
fn three_nodes_a_disabled_backup_is_passed_over() {
    let c = Cluster::steady("c3dis", 3);
    c.t.ctl_until_ok("m2", &["disable"]);
    wait_for("m1 to see m2 disabled", Duration::from_secs(5), || {
        let s = c.t.status("m1");
        let rows = s["nodes"].as_array()?;
        rows.iter()
            .any(|r| r["name"] == "m2" && r["status"] == "Disabled")
            .then_some(())
    });
    let kill = |c: &Cluster| c.kill_app("m1");
    let case = "m2 disabled, application killed";
    c.takes_over(case, kill, "m3", Duration::from_secs(10), |_, _| ());
}

/// Status per node: a change at a node that is not the watched one (m3
/// disabled, while m2 watches the holder m1) reaches m2's console timeline
/// (`GET /history`) and its metrics (`understudy_peer_status{peer="m3"}`)
/// with m3's next heartbeat, not when something at m1 changes next.
#[test]
fn three_nodes_a_change_at_an_unwatched_node_reaches_the_timeline_and_metrics() {
    let c = Cluster::steady("c3tl", 3);
    let api = |path: &str| {
        let url = format!("http://{}:{}{path}", address("m2"), crate::common::API_PORT);
        let (code, body) = c.t.api("GET", &url, Some(crate::common::API_TOKEN), &[]);
        assert_eq!(code, 200, "GET {path} on m2: {body}");
        body
    };
    let m3_in_last_sample = |word: &str| {
        let history: serde_json::Value = serde_json::from_str(&api("/history")).ok()?;
        let last = history["samples"].as_array()?.last()?.clone();
        let nodes = last["nodes"].as_array()?;
        nodes
            .iter()
            .any(|n| n[0] == "m3" && n[1] == word)
            .then_some(last)
    };
    let metric = |body: &str, series: &str| {
        body.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    };
    let series = |peer: &str, name: &str, extra: &str| {
        format!(r#"understudy_{name}{{cluster="test",node="m2",peer="{peer}"{extra}}}"#)
    };
    let before = m3_in_last_sample("Passive").expect("m3 Passive in m2's last sample");
    let metrics = api("/metrics");
    assert_eq!(
        metric(&metrics, &series("m1", "peer_watched", "")).as_deref(),
        Some("1"),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, &series("m3", "peer_watched", "")).as_deref(),
        Some("0"),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, &series("m3", "peer_available", "")).as_deref(),
        Some("1"),
        "{metrics}"
    );
    let disabled = series("m3", "peer_status", r#",status="Disabled""#);
    assert_eq!(
        metric(&metrics, &disabled).as_deref(),
        Some("0"),
        "{metrics}"
    );

    let asked = Instant::now();
    c.t.ctl_until_ok("m3", &["disable"]);
    let sample = wait_for(
        "m2's timeline to show m3 disabled",
        Duration::from_secs(5),
        || m3_in_last_sample("Disabled"),
    );
    let timeline = asked.elapsed();
    wait_for(
        "m2's metrics to show m3 disabled",
        Duration::from_secs(5),
        || (metric(&api("/metrics"), &disabled).as_deref() == Some("1")).then_some(()),
    );
    let metrics = asked.elapsed();
    assert_eq!(sample["holder"], "m1", "{sample}");
    assert!(
        sample["at_ms"].as_u64() > before["at_ms"].as_u64(),
        "{sample} after {before}"
    );
    eprintln!(
        "UNWATCHED NODE: m3 disabled; m2's timeline showed it after {} ms, its metrics after {} ms (both measured from the command, through curl)",
        timeline.as_millis(),
        metrics.as_millis()
    );
}

/// Five nodes: the holder's host dies, then the new holder's: each time the
/// most preferred node left takes over, and only it.
#[test]
fn five_nodes_two_hosts_die_in_turn_and_the_next_in_line_takes_over() {
    let c = Cluster::steady("c5host", 5);
    let sampler = c.sampler();
    let died = Instant::now();
    c.kill_host("m1");
    c.wait_for_holder("m2", Duration::from_secs(10));
    let second = Instant::now();
    c.kill_host("m2");
    c.wait_for_holder("m3", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));
    let (timeline, logs) = c.never_doubled(sampler);
    for node in ["m4", "m5"] {
        assert_eq!(
            timeline.first_held_by(node, died),
            None,
            "{node} held\n{logs}"
        );
    }
    let m3_first = timeline.first_held_by("m3", died).expect("m3 holds");
    assert!(m3_first >= second - died, "m3 held before m2 died\n{logs}");
    report(
        5,
        "host dies",
        "m2 holds",
        timeline.first_held_by("m2", died),
    );
    report(
        5,
        "second host dies",
        "m3 holds",
        timeline.first_held_by("m3", second),
    );
}

/// Twenty cold starts of three nodes, the backups started first (the
/// worst order: each hears the other backup before the primary): m1 takes
/// the common IP every time, and neither backup asks for the lease or
/// logs a failure for the grace period (in 8 of 60 starts a backup used
/// to ask 18–77 ms after it started, having heard only the other backup).
/// "At once" is within the start-up window: the test's window is 3 s, as
/// an administrator whose hosts boot together would set it, because on a
/// loaded machine starting the three processes one after the other can
/// take longer than the 300 ms default (a backup that heard no more
/// preferred node for its whole window claims, as it should).
#[test]
fn three_nodes_started_at_once_elect_the_primary_every_time() {
    let mut t = Topology::up_cluster("cold");
    let _etcd = Etcd::start(&t);
    let config = cluster_config(&t, 3, LEASE);
    let text = std::fs::read_to_string(&config).expect("the cluster configuration");
    let window = format!("startup = \"{}ms\"", PEER_TIMEOUT.as_millis());
    assert!(text.contains(&window), "the start-up window line");
    let config = t.dir.join("cold.toml");
    std::fs::write(&config, text.replace(&window, "startup = \"3s\""))
        .expect("write the configuration");
    let nodes = ["m3", "m2", "m1"];
    let log_len = |t: &Topology, node: &str| {
        std::fs::read_to_string(t.dir.join(format!("{node}.log"))).map_or(0, |l| l.len())
    };
    for round in 1..=20 {
        let marks: Vec<usize> = nodes.iter().map(|n| log_len(&t, n)).collect();
        for node in nodes {
            t.start_with(node, &config);
        }
        let held = (0..1000).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            t.vip_holders() == ["m1"]
        });
        let mut tails = || {
            nodes
                .iter()
                .zip(&marks)
                .map(|(n, mark)| {
                    let log = t.daemon(n).log_text();
                    let lines: Vec<&str> = log[(*mark).min(log.len())..]
                        .lines()
                        .filter(|l| !l.contains(" DEBUG "))
                        .collect();
                    format!(
                        "--- {n} ---\n{}",
                        lines[lines.len().saturating_sub(30)..].join("\n")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert!(
            held,
            "start {round}: m1 never held the VIP in 20 s\n{}",
            tails()
        );
        for (node, mark) in nodes.iter().zip(&marks).filter(|(n, _)| **n != "m1") {
            let log = t.daemon(node).log_text();
            let since = &log[(*mark).min(log.len())..];
            for wrong in [
                "asking the witness for the lease",
                "failed for the grace period",
            ] {
                assert!(
                    !since.contains(wrong),
                    "start {round}: {node} logged {wrong:?}:\n{since}"
                );
            }
        }
        for node in nodes {
            t.daemon(node).signal("TERM");
        }
        for node in nodes {
            let status = t.daemon(node).wait_exit(Duration::from_secs(10));
            assert!(
                status.success(),
                "start {round}: {node} stopped with {status}"
            );
        }
    }
}
