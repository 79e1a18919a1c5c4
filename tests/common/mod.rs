//! Test harness for the real binary in network namespaces.
//!
//! Each test builds its own topology with `tests/support/topology.sh`: a
//! bridge namespace and four hosts (m1, m2, a client, cl, and w for a
//! witness's database) on
//! 192.0.2.0/24, named after this process and the test so that runs never
//! collide. Everything is torn down on drop: daemons and applications are
//! ended by their own PIDs, then the namespaces are deleted. Namespaces left
//! by a run that died are removed when the next run starts.
//!
//! These tests need root. Without it they fail (they never skip): CI runs
//! as root and must exercise them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

pub const VIP: &str = "192.0.2.10";
/// The IPv6 address of the dual-stack group ([`Topology::dual_stack_config`]).
pub const VIP6: &str = "2001:db8::10";
pub const INTERVAL_MS: u64 = 100;
pub const GRACE: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(20);

/// One topology at a time: the cases measure timings, and two sets of
/// daemons on two cores would disturb each other.
static SERIAL: Mutex<()> = Mutex::new(());
static CLEAN_STALE: Once = Once::new();

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_understudy")
}

pub fn support(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(file)
}

/// Runs a command and returns its output; panics with the command line and
/// its stderr if it cannot be run.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    out
}

/// Runs `cmd`, which must succeed; its standard output.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The IPv4 addresses on eth0 in namespace `ns`.
fn addresses_in(ns: &str) -> Vec<String> {
    let out = run(Command::new("ip").args(["-n", ns, "-j", "-4", "addr", "show", "dev", "eth0"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v[0]["addr_info"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["local"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The pair's hosts by name and namespace (see [`Topology::pair`]).
pub struct Pair([(String, String); 2]);

impl Pair {
    /// The nodes whose eth0 holds the VIP.
    pub fn vip_holders(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, ns)| addresses_in(ns).iter().any(|a| a == VIP))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// Asserts that every sample of the holders is m1 alone: the VIP never
/// left it and was never doubled.
pub fn assert_m1_held_throughout(holders: &[Vec<String>], what: &str, logs: &str) {
    let others: Vec<_> = holders.iter().filter(|h| *h != &["m1"]).collect();
    assert!(
        others.is_empty(),
        "{what}: the VIP left m1 or was doubled: {others:?}\n{logs}"
    );
}

/// Polls `f` every 20 ms until it returns `Some`, or panics after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// Checks `f` every 20 ms for `period`; panics the first time it fails.
pub fn holds_for(what: &str, period: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < period {
        assert!(f(), "{what} stopped holding after {:?}", start.elapsed());
        std::thread::sleep(POLL);
    }
}

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the network-namespace tests need root (CI runs them as root); run `sudo cargo test`"
    );
}

/// Deletes namespaces of earlier runs whose process is gone.
fn clean_stale() {
    let list = run_ok(Command::new("ip").args(["netns", "list"]));
    let mut prefixes: Vec<String> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|name| {
            let rest = name.strip_prefix("ust")?;
            let (pid, _) = rest.split_once('-')?;
            let pid: u32 = pid.parse().ok()?;
            let alive = Path::new(&format!("/proc/{pid}")).exists();
            let (prefix, _) = name.rsplit_once('-')?;
            (!alive).then(|| prefix.to_owned())
        })
        .collect();
    prefixes.dedup();
    for prefix in prefixes {
        let _ = run(Command::new(support("topology.sh")).args(["down", &prefix]));
    }
}

/// A child process killed (by its PID) on drop.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running daemon, killed on drop if the test has not stopped it.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        run_ok(Command::new("kill").args([&format!("-{sig}"), &self.pid().to_string()]));
    }

    /// Waits for the daemon to exit; panics after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        wait_for("the daemon to exit", limit, || {
            self.child.try_wait().ok().flatten()
        })
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub struct Topology {
    pub prefix: String,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub daemons: Vec<(String, Daemon)>,
    /// Start daemons with this open-file limit (soft and hard), as the
    /// shipped unit's 1,024 once did; None keeps the test's own.
    pub nofile: Option<u64>,
    /// A command the daemons started from now on run under (`setpriv …`).
    pub wrapper: Vec<String>,
    /// Extra environment for the daemons started from now on.
    pub env: Vec<(String, String)>,
    _serial: MutexGuard<'static, ()>,
}

impl Topology {
    /// Builds the namespaces for test `case` and writes its configuration.
    pub fn up(case: &str) -> Topology {
        Topology::up_with(case, &[])
    }

    /// [`Topology::up`] with hosts m3 to m5 and e1 to e3 too (clusters of
    /// more than two nodes, an etcd cluster); the configuration is still
    /// the pair's.
    pub fn up_cluster(case: &str) -> Topology {
        Topology::up_with(case, &["cluster"])
    }

    fn up_with(case: &str, form: &[&str]) -> Topology {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        require_root();
        CLEAN_STALE.call_once(clean_stale);
        let prefix = format!("ust{}-{case}", std::process::id());
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(&prefix);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test directory");
        run_ok(
            Command::new(support("topology.sh"))
                .args(["up", &prefix])
                .args(form),
        );
        let config = dir.join("pair.toml");
        std::fs::write(&config, pair_config(&dir, &dir.join("secret")))
            .expect("write the configuration");
        run_ok(Command::new(bin()).arg("keygen").arg(dir.join("secret")));
        std::fs::write(
            dir.join("tokens"),
            format!("# name token\nops {API_TOKEN}\n"),
        )
        .expect("write the tokens file");
        Topology {
            prefix,
            dir,
            config,
            daemons: Vec::new(),
            nofile: None,
            wrapper: Vec::new(),
            env: Vec::new(),
            _serial: serial,
        }
    }

    pub fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    /// Runs a command inside a host's namespace.
    pub fn exec(&self, host: &str, args: &[&str]) -> Output {
        run(Command::new("ip")
            .args(["netns", "exec", &self.ns(host)])
            .args(args))
    }

    /// Starts `understudy run` for `node` in its namespace, logging to a file.
    pub fn start(&mut self, node: &str) {
        let config = self.config.clone();
        self.start_with(node, &config);
    }

    /// Writes a copy of the configuration that reads another heartbeat key
    /// (a node configured with the wrong key); returns its path.
    pub fn config_with_other_key(&self) -> PathBuf {
        let key = self.dir.join("other-secret");
        run_ok(Command::new(bin()).arg("keygen").arg(&key));
        let path = self.dir.join("other-key.toml");
        std::fs::write(&path, pair_config(&self.dir, &key)).expect("write the configuration");
        path
    }

    /// The control socket of `node`'s daemon.
    pub fn socket(&self, node: &str) -> PathBuf {
        self.dir.join(format!("{node}.sock"))
    }

    /// Runs an admin subcommand against `node`'s daemon, e.g.
    /// `ctl("m2", &["disable"])`; returns (success, stdout + stderr).
    pub fn ctl(&self, node: &str, args: &[&str]) -> (bool, String) {
        let out = run(Command::new(bin())
            .args(args)
            .arg("--socket")
            .arg(self.socket(node)));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Like [`Topology::ctl`], retrying for up to 3 s while the command is
    /// refused: right after start a node's first heartbeats say its NIC and
    /// data service are not yet known, and a refused command changes nothing.
    pub fn ctl_until_ok(&self, node: &str, args: &[&str]) -> String {
        wait_for(
            &format!("{args:?} on {node} to be accepted"),
            Duration::from_secs(3),
            || {
                let (ok, text) = self.ctl(node, args);
                ok.then_some(text)
            },
        )
    }

    /// `status --json` of `node`'s daemon.
    pub fn status(&self, node: &str) -> serde_json::Value {
        let (ok, text) = self.ctl(node, &["status", "--json"]);
        assert!(ok, "status failed: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("status JSON: {e}: {text}"))
    }

    /// The heartbeat key the test configuration uses.
    pub fn key(&self) -> Vec<u8> {
        let keys = understudy::config::read_keys(&self.dir.join("secret")).expect("the test key");
        keys.sending().secret.clone()
    }

    /// Starts `understudy run --config CONFIG` for `node`.
    pub fn start_with(&mut self, node: &str, config: &Path) {
        let log = self.dir.join(format!("{node}.log"));
        // Append: a restarted daemon's log follows its predecessor's.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("create the daemon log");
        self.daemons.retain(|(n, _)| n != node);
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.ns(node)]);
        if let Some(n) = self.nofile {
            command
                .arg("prlimit")
                .arg(format!("--nofile={n}:{n}"))
                .arg("--");
        }
        command.args(&self.wrapper);
        let child = command
            .args([bin(), "run", "--config"])
            .arg(config)
            .arg("--socket")
            .arg(self.socket(node))
            .arg("--state-file")
            .arg(self.dir.join(format!("{node}.state.json")))
            .env(
                "UNDERSTUDY_LOG",
                "info,understudy=debug,netlink_packet_route=error",
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone the log handle"))
            .stderr(file)
            .spawn()
            .expect("start the daemon");
        self.daemons.push((node.to_owned(), Daemon { child, log }));
    }

    /// Waits until `node`'s log contains `text`.
    pub fn wait_log(&mut self, node: &str, text: &str, limit: Duration) {
        let what = format!("{node}'s log to say {text:?}");
        wait_for(&what, limit, || {
            self.daemon(node).log_text().contains(text).then_some(())
        });
    }

    pub fn daemon(&mut self, node: &str) -> &mut Daemon {
        &mut self
            .daemons
            .iter_mut()
            .find(|(n, _)| n == node)
            .unwrap_or_else(|| panic!("no daemon {node}"))
            .1
    }

    /// The body of GET http://VIP/ from the client, if it answered.
    pub fn get_vip(&self) -> Option<String> {
        let out = self.exec(
            "cl",
            &["curl", "-s", "--max-time", "0.3", &format!("http://{VIP}/")],
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The body of GET http://[VIP6]/ from the client, if it answered.
    pub fn get_vip6(&self) -> Option<String> {
        let url = format!("http://[{VIP6}]/");
        let out = self.exec("cl", &["curl", "-6", "-s", "--max-time", "0.3", &url]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The nodes whose eth0 holds the IPv6 VIP.
    pub fn vip6_holders(&self) -> Vec<String> {
        ["m1", "m2"]
            .into_iter()
            .filter(|h| self.addresses6(h).iter().any(|(a, _)| a == VIP6))
            .map(str::to_owned)
            .collect()
    }

    /// The IPv6 addresses on a host's eth0 with their flags
    /// (`tentative`, `dadfailed`, `nodad`, …).
    pub fn addresses6(&self, host: &str) -> Vec<(String, Vec<String>)> {
        let out = self.exec(host, &["ip", "-j", "-6", "addr", "show", "dev", "eth0"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let flags = ["tentative", "dadfailed", "nodad", "optimistic"];
        v[0]["addr_info"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| {
                        let local = i["local"].as_str()?.to_owned();
                        let set = flags
                            .iter()
                            .filter(|f| i[**f] == true)
                            .map(|f| f.to_string())
                            .collect();
                        Some((local, set))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The MAC in the client's IPv6 neighbour entry for the IPv6 VIP.
    pub fn client_neighbour6(&self) -> Option<String> {
        let out = self.exec("cl", &["ip", "-j", "-6", "neigh", "show", VIP6]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v[0]["lladdr"].as_str().map(str::to_owned)
    }

    /// A copy of the configuration whose common IP is the dual-stack group
    /// `["192.0.2.10/24", "2001:db8::10/64"]`; returns its path.
    pub fn dual_stack_config(&self) -> PathBuf {
        let text = std::fs::read_to_string(&self.config).expect("the configuration");
        let single = format!("vip = \"{VIP}\"\nnetmask = \"255.255.255.0\"");
        assert!(
            text.contains(&single),
            "the test configuration's VIP lines changed"
        );
        let path = self.dir.join("dual-stack.toml");
        let group = format!("vip = [\"{VIP}/24\", \"{VIP6}/64\"]");
        std::fs::write(&path, text.replace(&single, &group)).expect("write the configuration");
        path
    }

    /// The nodes whose eth0 holds the VIP.
    pub fn vip_holders(&self) -> Vec<String> {
        self.pair().vip_holders()
    }

    /// The IPv4 addresses on a host's eth0.
    pub fn addresses(&self, host: &str) -> Vec<String> {
        addresses_in(&self.ns(host))
    }

    /// With the client holding a common address and serving through it,
    /// starts m1 on `config`: m1 finds the holder (its log names the
    /// client's MAC), sees the service answer through the VIP, and keeps
    /// out for a grace period (`holders` lists the nodes holding the
    /// address the client holds).
    pub fn assert_m1_keeps_out(
        &mut self,
        config: &Path,
        holders: impl Fn(&Topology) -> Vec<String>,
    ) {
        self.start_with("m1", config);
        self.wait_log(
            "m1",
            "answers through the common IP",
            Duration::from_secs(5),
        );
        let mac = self.mac("cl");
        assert!(
            self.daemon("m1").log_text().contains(&mac),
            "names the holder's MAC\n{}",
            self.dump_logs()
        );
        holds_for("m1 keeps out", GRACE, || holders(self).is_empty());
    }

    /// m1's and m2's namespaces, for a thread that samples them while the
    /// test goes on with the topology.
    pub fn pair(&self) -> Pair {
        Pair(["m1", "m2"].map(|h| (h.to_owned(), self.ns(h))))
    }

    pub fn mac(&self, host: &str) -> String {
        let out = self.exec(host, &["ip", "-j", "link", "show", "dev", "eth0"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j link");
        v[0]["address"].as_str().expect("a MAC").to_owned()
    }

    /// The MAC in the client's neighbour entry for the VIP.
    pub fn client_neighbour(&self) -> Option<String> {
        let out = self.exec("cl", &["ip", "-j", "neigh", "show", VIP]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v[0]["lladdr"].as_str().map(str::to_owned)
    }

    /// PID of `node`'s application, from the file it writes.
    pub fn app_pid(&self, node: &str) -> Option<u32> {
        std::fs::read_to_string(self.dir.join(format!("{node}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The stop command appends a line to this file each time it runs.
    pub fn stop_count(&self, node: &str) -> usize {
        std::fs::read_to_string(self.dir.join(format!("{node}.stops")))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// Starts m1, waits until it is Active (its application confirmed
    /// healthy) and the client gets "m1" through the VIP, then starts m2 and
    /// waits until it sees m1 healthy: the steady state every failover case
    /// begins from.
    pub fn steady_pair(&mut self) {
        let config = self.config.clone();
        self.steady_pair_with(&config, &config);
    }

    /// [`Topology::steady_pair`] with a configuration file for each node.
    pub fn steady_pair_with(&mut self, m1: &Path, m2: &Path) {
        self.start_with("m1", m1);
        self.wait_log("m1", "claimed the common IP", Duration::from_secs(10));
        wait_for("m1 to answer on the VIP", Duration::from_secs(10), || {
            (self.get_vip().as_deref() == Some("m1")).then_some(())
        });
        self.start_with("m2", m2);
        wait_for(
            "m2 to hear m1 and see it healthy",
            Duration::from_secs(10),
            || {
                let log = self.daemon("m2").log_text();
                (log.contains("peer application healthy") && log.contains("peer available"))
                    .then_some(())
            },
        );
        self.wait_log("m1", "peer available", Duration::from_secs(10));
    }

    /// Waits for the client to get `node` through the VIP; returns how long
    /// it took from `since`.
    pub fn wait_answer(&self, node: &str, since: Instant, limit: Duration) -> Duration {
        wait_for(&format!("{node} to answer on the VIP"), limit, || {
            (self.get_vip().as_deref() == Some(node)).then(|| since.elapsed())
        })
    }

    /// Runs the test application as `host` in its namespace (outside any
    /// daemon); it is killed when the returned child is dropped.
    pub fn spawn_app(&self, host: &str) -> ChildGuard {
        let pidfile = self.dir.join(format!("{host}.pid"));
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(host), "python3"])
            .arg(support("nodeapp.py"))
            .args([host, "80"])
            .arg(&pidfile)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the test application");
        wait_for("the application's PID file", Duration::from_secs(5), || {
            pidfile.exists().then_some(())
        });
        ChildGuard(child)
    }

    /// Adds `addresses` (each /24) to the client's eth0, as more hosts
    /// on the segment.
    pub fn add_client_addresses(&self, addresses: &[String]) {
        for a in addresses {
            let out = self.exec(
                "cl",
                &["ip", "addr", "add", &format!("{a}/24"), "dev", "eth0"],
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// `node` is Passive with `holder` holding the VIP, by its status
    /// (None while its daemon does not answer yet).
    pub fn passive_behind(&self, node: &str, holder: &str) -> Option<()> {
        let (ok, text) = self.ctl(node, &["status", "--json"]);
        let s: serde_json::Value = serde_json::from_str(&text).ok().filter(|_| ok)?;
        let me = s["nodes"]
            .as_array()?
            .iter()
            .find(|n| n["local"] == true)?
            .clone();
        (me["status"] == "Passive" && s["holder"]["node"] == holder).then_some(())
    }

    /// Sends a UDP datagram from the client namespace to `to`.
    pub fn send_from_client(&self, bytes: &[u8], to: &str, port: u16) {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let script = "import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); \
                      s.sendto(bytes.fromhex(sys.argv[1]),(sys.argv[2],int(sys.argv[3])))";
        let out = self.exec(
            "cl",
            &["python3", "-c", script, &hex, to, &port.to_string()],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// An HTTP request from the client namespace: (status code, body).
    pub fn api(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        extra: &[&str],
    ) -> (u16, String) {
        let mut args = vec![
            "curl",
            "-s",
            "--max-time",
            "3",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
        ];
        let header;
        if let Some(token) = token {
            header = format!("Authorization: Bearer {token}");
            args.extend(["-H", header.as_str()]);
        }
        args.extend(extra);
        args.push(url);
        let out = self.exec("cl", &args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }

    pub fn dump_logs(&self) -> String {
        self.daemons
            .iter()
            .map(|(n, d)| format!("--- {n} ---\n{}", d.log_text()))
            .collect()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.dump_logs());
        }
        self.daemons.clear();
        for node in ["m1", "m2", "m3", "m4", "m5"] {
            if let Some(pid) = self.app_pid(node) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        let _ = Command::new(support("topology.sh"))
            .args(["down", &self.prefix])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A host's address in the topology (tests/support/topology.sh).
pub fn address(host: &str) -> &'static str {
    match host {
        "m1" => "192.0.2.11",
        "m2" => "192.0.2.12",
        "m3" => "192.0.2.13",
        "m4" => "192.0.2.14",
        "m5" => "192.0.2.15",
        "w" => "192.0.2.30",
        "e1" => "192.0.2.31",
        "e2" => "192.0.2.32",
        "e3" => "192.0.2.33",
        "cl" => "192.0.2.100",
        other => panic!("no host {other}"),
    }
}

/// The heartbeat port of the test configuration.
pub const HEARTBEAT_PORT: u16 = 7046;
pub const API_PORT: u16 = 7047;
/// The bearer token the test configuration's API accepts (name "ops").
pub const API_TOKEN: &str = "test-token-0123456789abcdef";
pub const HEARTBEAT_MS: u64 = 100;
pub const PEER_TIMEOUT: Duration = Duration::from_millis(300);

/// The pair's configuration with test timings (probe and heartbeat interval
/// 100 ms, peer timeout 300 ms, grace 1 s) and an application that answers
/// its node name on port 80.
fn pair_config(dir: &Path, secret: &Path) -> String {
    let app = support("nodeapp.py");
    let dir = dir.display();
    format!(
        r#"# Written by the namespace tests.
[cluster]
name = "test"
vip = "{VIP}"
netmask = "255.255.255.0"

[[node]]
name = "m1"
role = "primary"
nic = "eth0"
address = "192.0.2.11"
url = "http://192.0.2.11/"

[[node]]
name = "m2"
role = "secondary"
nic = "eth0"
address = "192.0.2.12"
url = "http://192.0.2.12/"

[monitor]
interval = "{INTERVAL_MS}ms"
timeout = "80ms"
grace = "{grace}ms"
rise = 2
maintenance_status = 503

[application]
start = "python3 {app} $UNDERSTUDY_NODE 80 {dir}/$UNDERSTUDY_NODE.pid {dir}/$UNDERSTUDY_NODE.maint >/dev/null 2>&1 &"
stop = "kill $(cat {dir}/$UNDERSTUDY_NODE.pid 2>/dev/null) 2>/dev/null; echo stopped >> {dir}/$UNDERSTUDY_NODE.stops"
timeout = "5s"
ready_timeout = "5s"

[announce]
count = 3
interval = "200ms"
probe = "100ms"

[heartbeat]
port = {HEARTBEAT_PORT}
interval = "{HEARTBEAT_MS}ms"
peer_timeout = "{peer_timeout}ms"
startup = "{peer_timeout}ms"
secret_file = "{secret}"

[api]
listen = "0.0.0.0:{API_PORT}"
tokens_file = "{tokens}"
"#,
        app = app.display(),
        grace = GRACE.as_millis(),
        peer_timeout = PEER_TIMEOUT.as_millis(),
        secret = secret.display(),
        tokens = format_args!("{dir}/tokens"),
    )
}

/// A PostgreSQL server program from Debian's postgresql package (the
/// newest version installed).
pub fn pg_bin(tool: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries (apt-get install postgresql)")
        .flatten()
        .map(|e| e.path().join("bin").join(tool))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("no {tool} under /usr/lib/postgresql"))
}
