//! Live reload and heartbeat key rotation on the real binary in network
//! namespaces (needs root; see tests/common). Each node runs its own copy
//! of the configuration, as on two real hosts. While a sampler watches who
//! holds the VIP and how old the peer's last heartbeat is (every 20 ms),
//! the test reloads changed files (through `understudy reload` and
//! SIGHUP), refused files (a bad value, a changed VIP) and a key rotation,
//! and asserts that the VIP never left m1, that no heartbeat was missed,
//! that the application was neither stopped nor started again and that
//! both daemons keep their PIDs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::common::{bin, wait_for, Topology, API_PORT, API_TOKEN, HEARTBEAT_MS, VIP};

/// The oldest peer heartbeat either node showed, and every holder sample.
struct Sampled {
    samples: usize,
    oldest_heartbeat_ms: u64,
    holders: Vec<Vec<String>>,
}

/// Samples both daemons' view of their peer's last heartbeat and the
/// VIP's holders every 20 ms until `stop` (at most 10 minutes).
fn sample(t: &Topology, stop: Arc<AtomicBool>) -> thread::JoinHandle<Sampled> {
    let sockets = [t.socket("m1"), t.socket("m2")];
    let pair = t.pair();
    thread::spawn(move || {
        let mut seen = Sampled {
            samples: 0,
            oldest_heartbeat_ms: 0,
            holders: Vec::new(),
        };
        for _ in 0..30_000 {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            for socket in &sockets {
                if let Some(age) = peer_heartbeat_age(socket) {
                    seen.oldest_heartbeat_ms = seen.oldest_heartbeat_ms.max(age);
                }
            }
            seen.holders.push(pair.vip_holders());
            seen.samples += 1;
            thread::sleep(Duration::from_millis(20));
        }
        seen
    })
}

/// How old the peer's last heartbeat is, as the daemon behind `socket` says.
fn peer_heartbeat_age(socket: &Path) -> Option<u64> {
    let out = Command::new(bin())
        .args(["status", "--json", "--socket"])
        .arg(socket)
        .output()
        .ok()?;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    status["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["local"] == false)?["last_heartbeat"]["age_ms"]
        .as_u64()
}

/// The peer's row in `node`'s status.
fn peer_row(t: &Topology, node: &str) -> serde_json::Value {
    let status = t.status(node);
    status["nodes"]
        .as_array()
        .and_then(|rows| rows.iter().find(|n| n["local"] == false).cloned())
        .unwrap_or_default()
}

/// A copy of the test configuration for `node`, reading `key`.
fn own_config(t: &Topology, node: &str, key: &Path) -> PathBuf {
    let text = std::fs::read_to_string(&t.config).expect("the configuration");
    let secret = t.dir.join("secret").display().to_string();
    let path = t.dir.join(format!("{node}.toml"));
    std::fs::write(&path, text.replace(&secret, &key.display().to_string()))
        .expect("write the node's configuration");
    path
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("the configuration");
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("rewrite the configuration");
}

/// Asserts what the sampler saw: m1 held the VIP alone throughout, and no
/// heartbeat was missed (a missed one makes the age pass two intervals).
fn assert_nothing_moved(t: &Topology, seen: &Sampled, what: &str) {
    let logs = t.dump_logs();
    eprintln!(
        "{what}: {} samples, oldest peer heartbeat seen {} ms (interval {HEARTBEAT_MS} ms)",
        seen.samples, seen.oldest_heartbeat_ms
    );
    assert!(seen.samples >= 10, "too few samples: {}", seen.samples);
    crate::common::assert_m1_held_throughout(&seen.holders, what, &logs);
    assert!(
        seen.oldest_heartbeat_ms < 2 * HEARTBEAT_MS,
        "{what}: a heartbeat was missed (a peer heartbeat {} ms old)\n{logs}",
        seen.oldest_heartbeat_ms
    );
}

#[test]
fn a_reload_applies_what_changed_and_refuses_the_rest_whole() {
    let mut t = Topology::up("reload");
    let key = t.dir.join("secret");
    let (c1, c2) = (own_config(&t, "m1", &key), own_config(&t, "m2", &key));
    t.steady_pair_with(&c1, &c2);
    let (pid1, pid2) = (t.daemon("m1").pid(), t.daemon("m2").pid());
    let app = t.app_pid("m1").expect("m1's application runs");
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample(&t, stop.clone());
    thread::sleep(Duration::from_millis(300));

    // Timings, announce settings and a new API token, on m1 alone.
    let new_token = "reloaded-token-0123456789";
    let tokens = t.dir.join("tokens-new");
    std::fs::write(&tokens, format!("ops {new_token}\n")).unwrap();
    edit(&c1, "grace = \"1000ms\"", "grace = \"1500ms\"");
    edit(&c1, "interval = \"100ms\"", "interval = \"150ms\"");
    edit(&c1, "count = 3", "count = 4");
    let old_tokens = t.dir.join("tokens").display().to_string();
    edit(&c1, &old_tokens, &tokens.display().to_string());
    let (ok, text) = t.ctl("m1", &["reload"]);
    assert!(ok, "reload on m1: {text}");
    assert!(
        text.contains("reloaded: monitor, announce, api.tokens_file"),
        "{text}"
    );
    let url = format!("http://192.0.2.11:{API_PORT}/status");
    assert_eq!(t.api("GET", &url, Some(new_token), &[]).0, 200);
    assert_eq!(t.api("GET", &url, Some(API_TOKEN), &[]).0, 401);
    // m2 runs the old file now: the drift is seen ...
    wait_for("m2 to see the drift", Duration::from_secs(3), || {
        (peer_row(&t, "m2")["config_match"] == false).then_some(())
    });
    t.wait_log(
        "m2",
        "the peer runs a different configuration",
        Duration::from_secs(3),
    );

    // ... and clears once m2 reloads the same file, on SIGHUP.
    std::fs::write(&c2, std::fs::read_to_string(&c1).unwrap()).unwrap();
    t.daemon("m2").signal("HUP");
    t.wait_log("m2", "configuration reloaded", Duration::from_secs(5));
    t.wait_log(
        "m1",
        "the peer runs the same configuration again",
        Duration::from_secs(3),
    );
    wait_for("both to run the same file", Duration::from_secs(3), || {
        (peer_row(&t, "m2")["config_match"] == true && peer_row(&t, "m1")["config_match"] == true)
            .then_some(())
    });

    // A file with a problem is refused with its place; the old one runs on.
    let good = std::fs::read_to_string(&c1).unwrap();
    edit(&c1, "grace = \"1500ms\"", "grace = \"soon\"");
    let (ok, text) = t.ctl("m1", &["reload"]);
    assert!(!ok, "a bad file was accepted: {text}");
    assert!(
        text.contains(&format!("{}:", c1.display())) && text.contains("monitor.grace"),
        "the refusal does not say where: {text}"
    );
    // A change that cannot apply live is refused whole, with the reason.
    std::fs::write(&c1, good.replace("count = 4", "count = 5")).unwrap();
    edit(&c1, &format!("vip = \"{VIP}\""), "vip = \"192.0.2.9\"");
    let (ok, text) = t.ctl("m1", &["reload"]);
    assert!(!ok, "a new VIP was accepted live: {text}");
    assert!(text.contains("cluster.vip cannot change"), "{text}");
    let log = t.daemon("m1").log_text();
    assert!(log.contains("reload refused"), "{log}");
    std::fs::write(&c1, &good).unwrap();
    let (ok, text) = t.ctl("m1", &["reload"]);
    assert!(ok && text.contains("nothing changed"), "{text}");
    assert_eq!(peer_row(&t, "m2")["config_match"], true);

    // The sampler also sees what follows the last step.
    thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    let seen = sampler.join().expect("the sampler");
    assert_nothing_moved(&t, &seen, "RELOAD");
    assert_eq!((t.daemon("m1").pid(), t.daemon("m2").pid()), (pid1, pid2));
    assert_eq!(
        t.app_pid("m1"),
        Some(app),
        "the application was started again"
    );
    assert_eq!(t.stop_count("m1"), 0, "the application was stopped");
}

#[test]
fn the_heartbeat_key_rotates_without_a_failover() {
    let mut t = Topology::up("rotate");
    let (k1, k2) = (t.dir.join("m1.key"), t.dir.join("m2.key"));
    std::fs::copy(t.dir.join("secret"), &k1).unwrap();
    std::fs::copy(t.dir.join("secret"), &k2).unwrap();
    let (c1, c2) = (own_config(&t, "m1", &k1), own_config(&t, "m2", &k2));
    t.steady_pair_with(&c1, &c2);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample(&t, stop.clone());
    let keygen = |args: &[&str], file: &Path| {
        let out = Command::new(bin())
            .arg("keygen")
            .args(args)
            .arg(file)
            .output()
            .expect("keygen");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "keygen {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let reload = |t: &Topology, node: &str, what: &str| {
        let (ok, text) = t.ctl(node, &["reload"]);
        assert!(ok, "{what}: reload on {node}: {text}");
        text
    };
    // 1. Both learn key 2; both still send with key 1.
    assert!(keygen(&["--add"], &k1).contains("added key 2"));
    std::fs::copy(&k1, &k2).unwrap();
    assert!(reload(&t, "m1", "add").contains("heartbeat keys"));
    assert!(reload(&t, "m2", "add").contains("heartbeat keys"));
    // 2. Both send with key 2, one after the other.
    keygen(&["--activate", "2"], &k1);
    reload(&t, "m1", "activate");
    thread::sleep(Duration::from_millis(500));
    std::fs::copy(&k1, &k2).unwrap();
    reload(&t, "m2", "activate");
    // 3. Key 1 goes.
    let text = std::fs::read_to_string(&k1).unwrap();
    let only_two: String = text
        .lines()
        .filter(|l| !l.starts_with("1 "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&k1, &only_two).unwrap();
    std::fs::write(&k2, &only_two).unwrap();
    reload(&t, "m1", "drop");
    reload(&t, "m2", "drop");
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let seen = sampler.join().expect("the sampler");
    for node in ["m1", "m2"] {
        let log = t.daemon(node).log_text();
        assert!(
            !log.contains("rejected heartbeat"),
            "{node} rejected a heartbeat:\n{log}"
        );
    }
    assert_nothing_moved(&t, &seen, "ROTATE");

    // The order matters, and the check above can fail: a key sent with
    // before the peer has it is rejected there.
    keygen(&["--add"], &k1);
    keygen(&["--activate", "3"], &k1);
    reload(&t, "m1", "too early");
    t.wait_log("m2", "rejected heartbeat", Duration::from_secs(3));
}

/// `understudy config push` from m1's namespace, as an administrator on m1.
fn push(t: &Topology, file: &Path) -> (bool, String) {
    let out = t.exec(
        "m1",
        &[
            bin(),
            "config",
            "push",
            &file.display().to_string(),
            "--node",
            "m1",
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_pushed_file_is_checked_written_and_applied_by_the_peer() {
    let mut t = Topology::up("push");
    let key = t.dir.join("secret");
    let (c1, c2) = (own_config(&t, "m1", &key), own_config(&t, "m2", &key));
    t.steady_pair_with(&c1, &c2);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample(&t, stop.clone());
    let before = std::fs::read_to_string(&c2).unwrap();

    // Edited on m1, reloaded there, pushed to m2: m2 writes, keeps a
    // backup, applies, and the pair agrees again.
    edit(&c1, "grace = \"1000ms\"", "grace = \"1200ms\"");
    let (ok, text) = t.ctl("m1", &["reload"]);
    assert!(ok, "{text}");
    let (ok, text) = push(&t, &c1);
    assert!(ok, "push: {text}");
    assert!(text.contains("m2: reloaded: monitor"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&c2).unwrap(),
        std::fs::read_to_string(&c1).unwrap()
    );
    let backup = PathBuf::from(format!("{}.bak", c2.display()));
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), before);
    t.wait_log("m2", "who=push from m1", Duration::from_secs(3));
    wait_for("both to run the same file", Duration::from_secs(3), || {
        (peer_row(&t, "m1")["config_match"] == true && peer_row(&t, "m2")["config_match"] == true)
            .then_some(())
    });

    // A push that cannot apply is refused whole and leaves m2's file.
    let applied = std::fs::read_to_string(&c2).unwrap();
    let moved = t.dir.join("moved-vip.toml");
    std::fs::write(
        &moved,
        applied.replace(&format!("vip = \"{VIP}\""), "vip = \"192.0.2.9\""),
    )
    .unwrap();
    let (ok, text) = push(&t, &moved);
    assert!(!ok, "a new VIP was pushed: {text}");
    assert!(
        text.contains("refused by m2") && text.contains("cluster.vip cannot change"),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&c2).unwrap(), applied);

    // Signed with a key m2 does not hold: refused before it is read.
    let other = t.dir.join("other.key");
    let out = Command::new(bin())
        .arg("keygen")
        .arg(&other)
        .output()
        .unwrap();
    assert!(out.status.success());
    let wrong = t.dir.join("wrong-key.toml");
    std::fs::write(
        &wrong,
        applied.replace(&key.display().to_string(), &other.display().to_string()),
    )
    .unwrap();
    let (ok, text) = push(&t, &wrong);
    assert!(!ok, "a push with another key was accepted: {text}");
    assert!(
        text.contains("not signed with a heartbeat key this node accepts"),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&c2).unwrap(), applied);

    // The sampler also sees what follows the last step.
    thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    let seen = sampler.join().expect("the sampler");
    assert_nothing_moved(&t, &seen, "PUSH");
}

/// `cluster.sync_config = true`: a reload on m1 pushes its file to m2,
/// which applies it; a change that needs a restart is written on both all
/// the same, and each node's status says it must restart to apply it.
#[test]
fn a_reload_with_sync_config_reaches_the_peer() {
    let mut t = Topology::up("sync-config");
    let text = std::fs::read_to_string(&t.config).unwrap().replacen(
        "[cluster]\n",
        "[cluster]\nsync_config = true\n",
        1,
    );
    let (m1, m2) = (t.dir.join("m1.toml"), t.dir.join("m2.toml"));
    std::fs::write(&m1, &text).unwrap();
    std::fs::write(&m2, &text).unwrap();
    t.steady_pair_with(&m1, &m2);

    // A live change: m2 gets the file and applies it.
    let live = text.replacen("rise = 2\n", "rise = 3\n", 1);
    assert_ne!(live, text, "the test configuration sets rise = 2");
    std::fs::write(&m1, &live).unwrap();
    let (ok, answer) = t.ctl("m1", &["reload"]);
    assert!(ok, "{answer}");
    assert!(answer.contains("synced: m2:"), "{answer}");
    assert_eq!(std::fs::read_to_string(&m2).unwrap(), live, "m2's file");
    t.wait_log("m2", "push from m1", Duration::from_secs(5));

    // A change that needs a restart: written on both, applied on neither.
    let restart = live.clone() + "\n[process]\nrt_priority = 10\n";
    std::fs::write(&m1, &restart).unwrap();
    let (ok, answer) = t.ctl("m1", &["reload"]);
    assert!(ok, "{answer}");
    assert!(answer.contains("written, not applied"), "{answer}");
    assert_eq!(std::fs::read_to_string(&m2).unwrap(), restart, "m2's file");
    let backup = t.dir.join("m2.toml.bak");
    assert_eq!(
        std::fs::read_to_string(backup).unwrap(),
        live,
        "m2's previous file"
    );
    let pending = |node: &str| t.status(node)["restart_to_apply"].clone();
    assert_eq!(pending("m1")["nodes"], serde_json::json!(["m1", "m2"]));
    assert_eq!(pending("m2")["nodes"], serde_json::json!(["m2"]));
    let (_, table) = t.ctl("m1", &["status"]);
    assert!(
        table.contains("Configuration written but not applied: restart m1, m2"),
        "{table}"
    );
}
