//! What the witness tests share: a real PostgreSQL or etcd server started
//! in the topology's witness namespace (192.0.2.30), the configuration
//! that names it, cuts between a node and the witness, and a sampler that
//! looks at each node's addresses every 10 ms from a thread inside its
//! namespace (getifaddrs, no process per sample) and measures how long two
//! nodes held the VIP at once.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::{pg_bin, wait_for, Topology, VIP};

pub const WITNESS_ADDR: &str = "192.0.2.30";
/// etcd's smallest lease: renewed every 500 ms, held for 1.5 s after each
/// ask.
pub const LEASE: Duration = Duration::from_secs(2);
const SAMPLE: Duration = Duration::from_millis(10);
/// No sampler runs longer than this.
const SAMPLE_LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Etcd,
}

/// A witness server in the topology's `w` namespace, stopped on drop.
pub struct Server {
    pub backend: Backend,
    child: Option<Child>,
    dir: PathBuf,
    ns: String,
}

/// Runs `cmd`, panicking with `what` and its output if it fails; its
/// standard output.
pub fn ok(what: &str, cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Server {
    pub fn start(t: &Topology, backend: Backend) -> Server {
        let dir = t.dir.join(format!("witness-{backend:?}").to_lowercase());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the witness's directory");
        let ns = t.ns("w");
        let mut server = Server {
            backend,
            child: None,
            dir,
            ns,
        };
        match backend {
            Backend::Postgres => server.start_postgres(),
            Backend::Etcd => server.start_etcd(),
        }
        server
    }

    fn in_ns(&self) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]);
        cmd
    }

    /// PostgreSQL with `ssl = on` (this certificate and key), reachable
    /// from the nodes' network only over TLS with a password (SCRAM), and
    /// `understudy`'s password set to `password`.
    pub fn start_secured_postgres(t: &Topology, cert: &Path, key: &Path, password: &str) -> Server {
        let dir = t.dir.join("witness-postgres-secured");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the witness's directory");
        let mut server = Server {
            backend: Backend::Postgres,
            child: None,
            dir,
            ns: t.ns("w"),
        };
        server.start_postgres_with(Some((cert, key, password)));
        server
    }

    fn start_postgres(&mut self) {
        self.start_postgres_with(None);
    }

    fn start_postgres_with(&mut self, secured: Option<(&Path, &Path, &str)>) {
        ok(
            "chown the PostgreSQL directory",
            Command::new("chown")
                .arg("postgres:postgres")
                .arg(&self.dir),
        );
        let data = self.dir.join("data");
        ok(
            "initdb",
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .args([
                    pg_bin("initdb").to_str().unwrap(),
                    "-D",
                    data.to_str().unwrap(),
                    "-A",
                    "trust",
                    "-U",
                    "understudy",
                ]),
        );
        let hba = data.join("pg_hba.conf");
        let mut rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
        let mut opts = format!(
            "-c listen_addresses={WITNESS_ADDR} -p 5432 -k {}",
            self.dir.display()
        );
        match secured {
            None => rules.push_str("host all all 192.0.2.0/24 trust\n"),
            Some((cert, key, _)) => {
                rules.push_str("hostssl all all 192.0.2.0/24 scram-sha-256\n");
                for (from, to) in [(cert, "server.crt"), (key, "server.key")] {
                    std::fs::copy(from, data.join(to)).expect("copy the server's TLS files");
                    ok(
                        "chown",
                        Command::new("chown")
                            .arg("postgres:postgres")
                            .arg(data.join(to)),
                    );
                    ok("chmod", Command::new("chmod").arg("600").arg(data.join(to)));
                }
                opts.push_str(" -c ssl=on -c password_encryption=scram-sha-256");
            }
        }
        std::fs::write(&hba, rules).expect("write pg_hba.conf");
        let log = self.dir.join("log");
        ok(
            "pg_ctl start",
            self.in_ns()
                .args(["runuser", "-u", "postgres", "--"])
                .args([
                    pg_bin("pg_ctl").to_str().unwrap(),
                    "-D",
                    data.to_str().unwrap(),
                    "-o",
                    &opts,
                    "-l",
                    log.to_str().unwrap(),
                    "-w",
                    "start",
                ]),
        );
        // Through the local socket (trust), which the secured server
        // keeps beside its TLS-only network rule.
        let socket = self.dir.display().to_string();
        ok(
            "createdb helpdesk",
            self.in_ns()
                .args(["runuser", "-u", "postgres", "--"])
                .args([
                    pg_bin("createdb").to_str().unwrap(),
                    "-h",
                    &socket,
                    "-U",
                    "understudy",
                    "helpdesk",
                ]),
        );
        if let Some((_, _, password)) = secured {
            let sql = format!("ALTER USER understudy PASSWORD '{password}'");
            ok(
                "set understudy's password",
                self.in_ns()
                    .args(["runuser", "-u", "postgres", "--"])
                    .args([
                        pg_bin("psql").to_str().unwrap(),
                        "-h",
                        &socket,
                        "-U",
                        "understudy",
                        "-d",
                        "helpdesk",
                        "-c",
                        &sql,
                    ]),
            );
        }
    }

    fn start_etcd(&mut self) {
        let client = format!("http://{WITNESS_ADDR}:2379");
        let peer = format!("http://{WITNESS_ADDR}:2380");
        let log = std::fs::File::create(self.dir.join("log")).expect("etcd's log");
        let child = self
            .in_ns()
            .arg("etcd")
            .args(["--name", "w", "--data-dir"])
            .arg(self.dir.join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("w={peer}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start etcd (apt-get install etcd-server)");
        self.child = Some(child);
        wait_for("etcd to answer", Duration::from_secs(15), || {
            let out = self
                .in_ns()
                .args(["curl", "-sf", "--max-time", "1"])
                .arg(format!("{client}/health"))
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .contains("true")
                .then_some(())
        });
    }

    pub fn url(&self) -> String {
        match self.backend {
            Backend::Postgres => format!("postgres://understudy@{WITNESS_ADDR}/helpdesk"),
            Backend::Etcd => format!("etcd://{WITNESS_ADDR}:2379"),
        }
    }

    /// psql on the witness's database, as the daemons' user, running `sql`.
    pub fn psql(&self, sql: &str) -> Command {
        let mut cmd = self.in_ns();
        cmd.args(["runuser", "-u", "postgres", "--"])
            .arg(pg_bin("psql"))
            .args(["-h", WITNESS_ADDR, "-U", "understudy", "-d", "helpdesk"])
            .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql]);
        cmd
    }

    /// Runs `sql` on the witness's database; panics if it fails.
    pub fn sql(&self, sql: &str) {
        ok(sql, &mut self.psql(sql));
    }

    /// The lease's row or key, as the server has it (for the logs).
    pub fn lease_row(&self) -> String {
        let out = match self.backend {
            Backend::Postgres => self
                .psql("SELECT holder, term, expires > now() FROM understudy_lease")
                .output(),
            Backend::Etcd => self
                .in_ns()
                .args(["curl", "-s", "--max-time", "1", "-X", "POST"])
                .arg(format!("http://{WITNESS_ADDR}:2379/v3/kv/range"))
                // The key /understudy/test/lease, in base64.
                .args(["-d", r#"{"key": "L3VuZGVyc3R1ZHkvdGVzdC9sZWFzZQ=="}"#])
                .output(),
        };
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.backend == Backend::Postgres {
            let data = self.dir.join("data");
            let _ = self
                .in_ns()
                .args(["runuser", "-u", "postgres", "--"])
                .arg(pg_bin("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "stop"])
                .output();
        }
    }
}

/// The topology's configuration with a `[witness]` section added, and a
/// start command that also writes the term it was given to
/// `NODE.term` in the test's directory.
pub fn config_with_witness(t: &Topology, server: &Server, on_loss: &str) -> PathBuf {
    let text = std::fs::read_to_string(&t.config).expect("the configuration");
    let start = "\nstart = \"";
    assert!(
        text.contains(start),
        "the test configuration's start command"
    );
    let term_file = format!(
        "echo $UNDERSTUDY_TERM > {}/$UNDERSTUDY_NODE.term; ",
        t.dir.display()
    );
    let text = text.replacen(start, &format!("{start}{term_file}"), 1);
    let path = t.dir.join(format!("witness-{on_loss}.toml"));
    std::fs::write(&path, text).expect("write the configuration");
    config_with_witness_url(&path, &server.url(), on_loss)
}

/// `config` with a `[witness]` section for `url` added (in place).
pub fn config_with_witness_url(config: &Path, url: &str, on_loss: &str) -> PathBuf {
    let text = std::fs::read_to_string(config).expect("the configuration");
    let witness = format!(
        "\n[witness]\nurl = \"{url}\"\nlease = \"{}s\"\non_loss = \"{on_loss}\"\n",
        LEASE.as_secs()
    );
    std::fs::write(config, text + &witness).expect("write the configuration");
    config.to_path_buf()
}

/// Cuts (or restores) all traffic between `node` and the witness, both
/// ways, with blackhole routes.
pub fn cut_witness(t: &Topology, node: &str, on: bool) {
    let verb = if on { "add" } else { "del" };
    for (host, dest) in [(node, "w"), ("w", node)] {
        let dest = format!("{}/32", crate::common::address(dest));
        let out = t.exec(host, &["ip", "route", verb, "blackhole", &dest]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Cuts (or restores) traffic between m1 and m2 (the client and the
/// witness still reach both); m2 also loses the route to the VIP, so that
/// it cannot see the service through it and wants to claim.
pub fn partition(t: &Topology, on: bool) {
    let verb = if on { "add" } else { "del" };
    for (host, dest) in [
        ("m1", "192.0.2.12/32"),
        ("m2", "192.0.2.11/32"),
        ("m2", "192.0.2.10/32"),
    ] {
        let out = t.exec(host, &["ip", "route", verb, "blackhole", dest]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Whether this thread's network namespace has `vip` on an interface that
/// is up (a dead host's address on a NIC that is down serves nobody).
fn has_address(vip: std::net::Ipv4Addr) -> bool {
    let wanted = u32::from_ne_bytes(vip.octets());
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` or fails; it is freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return false;
    }
    let mut found = false;
    let mut at = list;
    while !at.is_null() {
        // SAFETY: `at` is a node of the list getifaddrs returned.
        let entry = unsafe { &*at };
        let up = entry.ifa_flags & libc::IFF_UP as u32 != 0;
        if up && !entry.ifa_addr.is_null() {
            // SAFETY: ifa_addr points at a sockaddr of its family.
            let family = unsafe { (*entry.ifa_addr).sa_family };
            if i32::from(family) == libc::AF_INET {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let sin = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in) };
                found |= sin.sin_addr.s_addr == wanted;
            }
        }
        at = entry.ifa_next;
    }
    // SAFETY: the list came from getifaddrs.
    unsafe { libc::freeifaddrs(list) };
    found
}

/// Each change of whether a node holds the VIP: the instant of the sample
/// that saw it, that of the sample before (which still saw the old
/// state), and the new state; then the instant of the last sample.
type Changes = (Vec<(Instant, Instant, bool)>, Instant);

/// Samples which nodes hold the VIP every 10 ms, one thread per node
/// inside its namespace, until [`Sampler::stop`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    threads: Vec<(String, JoinHandle<Changes>)>,
}

impl Sampler {
    pub fn start(t: &Topology, nodes: &[&str]) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let vip: std::net::Ipv4Addr = VIP.parse().unwrap();
        // Every thread has its first sample before the test goes on.
        let ready = Arc::new(Barrier::new(nodes.len() + 1));
        let threads = nodes
            .iter()
            .map(|node| {
                let path = PathBuf::from("/var/run/netns").join(t.ns(node));
                let (stop, ready) = (stop.clone(), ready.clone());
                let thread = std::thread::spawn(move || sample_in(&path, vip, &stop, &ready));
                ((*node).to_owned(), thread)
            })
            .collect();
        ready.wait();
        Sampler { stop, threads }
    }

    pub fn stop(self) -> Timeline {
        self.stop.store(true, Ordering::SeqCst);
        let nodes = self
            .threads
            .into_iter()
            .map(|(name, thread)| (name, thread.join().expect("a sampler thread")))
            .collect();
        Timeline { nodes }
    }
}

/// Each change of whether this namespace holds the VIP, with its instant.
fn sample_in(ns: &Path, vip: std::net::Ipv4Addr, stop: &AtomicBool, ready: &Barrier) -> Changes {
    let file = std::fs::File::open(ns).expect("the node's namespace");
    use std::os::fd::AsRawFd;
    // SAFETY: setns on this thread only, with a namespace file we opened.
    let entered = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(entered, 0, "setns into {}", ns.display());
    let began = Instant::now();
    let mut changes = vec![(began, began, has_address(vip))];
    let mut last = began;
    ready.wait();
    while !stop.load(Ordering::SeqCst) && began.elapsed() < SAMPLE_LIMIT {
        std::thread::sleep(SAMPLE);
        let now = Instant::now();
        let holds = has_address(vip);
        if changes.last().map(|(_, _, h)| *h) != Some(holds) {
            changes.push((now, last, holds));
        }
        last = now;
    }
    (changes, last)
}

/// What the sampler saw.
pub struct Timeline {
    nodes: Vec<(String, Changes)>,
}

impl Timeline {
    /// Every instant at which some node's holding changed, in order.
    fn instants(&self) -> Vec<Instant> {
        let mut all: Vec<Instant> = self
            .nodes
            .iter()
            .flat_map(|(_, (c, _))| c.iter().map(|(t, _, _)| *t))
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// `after`, then every change after it.
    fn instants_from(&self, after: Instant) -> Vec<Instant> {
        let mut all = vec![after];
        all.extend(self.instants().into_iter().filter(|t| *t > after));
        all
    }

    /// Who held the VIP at `at` (by each node's last sample before it).
    pub fn holders_at(&self, at: Instant) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, (changes, _))| {
                changes
                    .iter()
                    .take_while(|(t, _, _)| *t <= at)
                    .last()
                    .is_some_and(|(_, _, h)| *h)
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Each node's stretches of holding as its samples prove them: from
    /// the first sample that saw the VIP to the last one that did.
    fn surely_held(&self) -> Vec<Vec<(Instant, Instant)>> {
        self.nodes
            .iter()
            .map(|(_, (changes, last))| {
                changes
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, _, holds))| *holds)
                    .map(|(k, (at, _, _))| {
                        let end = changes.get(k + 1).map_or(*last, |(_, before, _)| *before);
                        (*at, end)
                    })
                    .collect()
            })
            .collect()
    }

    /// The longest time two nodes were both seen holding the VIP by their
    /// samples (an overlap shorter than about two sampling periods can
    /// escape this; one longer cannot).
    pub fn max_double(&self) -> Duration {
        let held = self.surely_held();
        let mut longest = Duration::ZERO;
        for (i, a) in held.iter().enumerate() {
            for b in &held[i + 1..] {
                for &(a0, a1) in a {
                    for &(b0, b1) in b {
                        let (start, end) = (a0.max(b0), a1.min(b1));
                        if start <= end {
                            longest = longest.max((end - start).max(Duration::from_nanos(1)));
                        }
                    }
                }
            }
        }
        longest
    }

    /// The longest stretch during which two or more nodes may have held
    /// the VIP: each node's change counted from the sample that saw it, so
    /// a handover between two samples shows as up to one sampling period.
    pub fn max_possible_double(&self) -> Duration {
        let instants = self.instants();
        let mut longest = Duration::ZERO;
        let mut since: Option<Instant> = None;
        for &at in &instants {
            let doubled = self.holders_at(at).len() > 1;
            match (doubled, since) {
                (true, None) => since = Some(at),
                (false, Some(s)) => {
                    longest = longest.max(at - s);
                    since = None;
                }
                _ => {}
            }
        }
        if let (Some(s), Some(last)) = (since, instants.last()) {
            longest = longest.max(*last - s).max(SAMPLE);
        }
        longest
    }

    /// The first instant at or after `after` at which exactly one node
    /// held the VIP, that node, and how long after `after` it was.
    pub fn single_holder_after(&self, after: Instant) -> Option<(String, Duration)> {
        let candidates = self.instants_from(after);
        candidates.into_iter().find_map(|at| {
            let holders = self.holders_at(at);
            (holders.len() == 1).then(|| (holders[0].clone(), at - after))
        })
    }

    /// The first instant after `after` at which `node` held the VIP.
    pub fn first_held_by(&self, node: &str, after: Instant) -> Option<Duration> {
        let candidates = self.instants_from(after);
        candidates
            .into_iter()
            .find(|at| self.holders_at(*at).iter().any(|h| h == node))
            .map(|at| at - after)
    }

    /// The first instant after `after` at which `node` no longer held it.
    pub fn first_let_go_by(&self, node: &str, after: Instant) -> Option<Duration> {
        let candidates = self.instants_from(after);
        candidates
            .into_iter()
            .find(|at| !self.holders_at(*at).iter().any(|h| h == node))
            .map(|at| at - after)
    }

    /// How many times the holder changed after `after`.
    pub fn moves_after(&self, after: Instant) -> usize {
        let mut last: Option<Vec<String>> = None;
        let mut moves = 0;
        for at in self.instants().into_iter().filter(|t| *t >= after) {
            let now = self.holders_at(at);
            if now.is_empty() {
                continue;
            }
            if last.as_ref().is_some_and(|l| *l != now) {
                moves += 1;
            }
            last = Some(now);
        }
        moves
    }
}
