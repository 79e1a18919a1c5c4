//! Mutated configuration files (10,000 per run; `FUZZ_CASES=N` for more)
//! through everything `check-config` and the daemon's start-up do with a
//! file before touching the network: parse and validate, report problems
//! with their lines, find the local node, build the core's settings, start
//! the core and run its first timers and status. Any panic fails the test;
//! so does a problem without a line when the mutation left the file valid
//! TOML with the key in place (checked loosely: every problem has a key or
//! a line).

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use understudy::config::Config;
use understudy::control::report;
use understudy::core::{Core, Input};

/// The shipped example (every key, commented) and a file with every
/// optional section filled in.
fn bases() -> [String; 2] {
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/pair.toml"))
            .expect("the shipped example");
    let full = r#"[cluster]
name = "helpdesk"
vip = "192.0.2.10"
netmask = 24
alias = "https://helpdesk.example.com"

[[node]]
name = "m1"
role = "primary"
nic = "eth0"
address = "192.0.2.11"
url = "https://192.0.2.11:8443/health"

[[node]]
name = "m2"
role = "secondary"
nic = "eth1"
address = "192.0.2.12"
url = "http://192.0.2.12:8080/"

[monitor]
interval = "200ms"
timeout = "100ms"
grace = "1s"
rise = 3
fall = 2
data = "postgres://understudy@192.0.2.30/helpdesk"
data_interval = "1s"
data_timeout = "500ms"
expect_status = "200-299"
expect_body = "ok"
expect_header = "X-Health: ok"
maintenance_status = 503
dwell = "10m"
flap_limit = 4
flap_window = "30m"

[application]
start = "systemctl start helpdesk"
stop = "systemctl stop helpdesk"
timeout = "20s"
ready_timeout = "40s"
restart_attempts = 2
restart_backoff = "1s"
role_file = "/run/helpdesk/role"

[announce]
count = 3
interval = "1s"
probe = "200ms"
refresh = "30s"

[heartbeat]
port = 7046
interval = "100ms"
peer_timeout = "300ms"
startup = "1s"
secret_file = "/etc/understudy/secret"

[failback]
mode = "automatic"
hold = "5m"
drain_timeout = "20s"

[control]
socket = "/run/understudy/understudy.sock"
state_file = "/var/lib/understudy/state.json"

[api]
listen = "192.0.2.11:7047"
tokens_file = "/etc/understudy/tokens"

[notify]
events = ["takeover", "release", "flapping"]
dedup_window = "10m"

[notify.webhook]
urls = ["https://hooks.example.com/understudy"]
"#
    .to_owned();
    [example, full]
}

/// Values that have broken parsers before, or could.
const VALUES: &[&str] = &[
    "\"10000000000000000000s\"",
    "\"7000000000000000000s\"",
    "\"18446744073709551615ms\"",
    "\"8d\"",
    "\"7d\"",
    "\"0s\"",
    "\"-1s\"",
    "\"soon\"",
    "\"\"",
    "\" \"",
    "9223372036854775807",
    "-9223372036854775808",
    "-1",
    "0",
    "65536",
    "4294967296",
    "1e308",
    "nan",
    "true",
    "[]",
    "[1, \"a\"]",
    "{}",
    "{ a = 1 }",
    "\"192.0.2.0\"",
    "\"192.0.2.255\"",
    "\"255.255.255.255\"",
    "\"0.0.0.0\"",
    "\"::1\"",
    "\"2001:db8::10/64\"",
    "\"192.0.2.10/33\"",
    "\"/32\"",
    "\"255.0.255.0\"",
    "\"primary\"",
    "\"secondary\"",
    "\"automatic\"",
    "\"http://\"",
    "\"https://[::1]:99999/\"",
    "\"tcp://:0\"",
    "\"exec:\"",
    "\"postgres://\"",
    "\"\\u0000\"",
    "\"ééé\"",
    "\"a\\nb\"",
    "\"x-------------------------------------------------------------------y\"",
];

/// One edit of a file, chosen by the strategy below.
#[derive(Debug, Clone)]
enum Edit {
    /// Replace the value of line `line` (if it has `key = value`).
    Value {
        line: usize,
        value: usize,
    },
    Delete {
        line: usize,
    },
    Duplicate {
        line: usize,
    },
    Swap {
        a: usize,
        b: usize,
    },
    /// Cut the file at this fraction of its length.
    Truncate {
        per_mille: usize,
    },
    /// Insert `key = value` after line `line`.
    Insert {
        line: usize,
        key: usize,
        value: usize,
    },
    /// Flip one byte to another ASCII character.
    Byte {
        at: usize,
        to: u8,
    },
}

/// Keys that exist somewhere in the contract, and some that do not.
const KEYS: &[&str] = &[
    "grace",
    "interval",
    "timeout",
    "peer_timeout",
    "startup",
    "dwell",
    "flap_limit",
    "flap_window",
    "ready_timeout",
    "restart_attempts",
    "restart_backoff",
    "vip",
    "netmask",
    "address",
    "url",
    "nic",
    "role",
    "name",
    "port",
    "count",
    "probe",
    "refresh",
    "hold",
    "drain_timeout",
    "socket",
    "state_file",
    "listen",
    "data",
    "rise",
    "fall",
    "nonsense",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (0..200usize, 0..VALUES.len()).prop_map(|(line, value)| Edit::Value { line, value }),
        1 => (0..200usize).prop_map(|line| Edit::Delete { line }),
        1 => (0..200usize).prop_map(|line| Edit::Duplicate { line }),
        1 => (0..200usize, 0..200usize).prop_map(|(a, b)| Edit::Swap { a, b }),
        1 => (0..1000usize).prop_map(|per_mille| Edit::Truncate { per_mille }),
        2 => (0..200usize, 0..KEYS.len(), 0..VALUES.len())
            .prop_map(|(line, key, value)| Edit::Insert { line, key, value }),
        1 => (0..20_000usize, 32u8..127).prop_map(|(at, to)| Edit::Byte { at, to }),
    ]
}

fn apply(text: &str, edit: &Edit) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        return text.to_owned();
    }
    let n = lines.len();
    match *edit {
        Edit::Value { line, value } => {
            let l = &mut lines[line % n];
            if let Some((key, _)) = l.split_once('=') {
                *l = format!("{key}= {}", VALUES[value]);
            }
        }
        Edit::Delete { line } => {
            lines.remove(line % n);
        }
        Edit::Duplicate { line } => {
            let l = lines[line % n].clone();
            lines.insert(line % n, l);
        }
        Edit::Swap { a, b } => lines.swap(a % n, b % n),
        Edit::Truncate { per_mille } => {
            let mut cut = text.len() * per_mille / 1000;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            return text[..cut].to_owned();
        }
        Edit::Insert { line, key, value } => {
            lines.insert(line % n, format!("{} = {}", KEYS[key], VALUES[value]));
        }
        Edit::Byte { at, to } => {
            let mut bytes = text.as_bytes().to_vec();
            let i = at % bytes.len().max(1);
            if bytes.get(i).is_some_and(u8::is_ascii) {
                bytes[i] = to;
            }
            return String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned());
        }
    }
    lines.join("\n") + "\n"
}

/// What check-config and `run` do with the text before the network;
/// true when the file was valid and the core started.
fn start_up(text: &str) -> bool {
    let path = Path::new("/etc/understudy/understudy.toml");
    let config = match Config::parse(path, text) {
        Ok(config) => config,
        Err(problems) => {
            let shown = problems.to_string();
            assert!(!shown.is_empty());
            for p in &problems.list {
                assert!(
                    p.line.is_some() || !p.key.is_empty() || !p.message.is_empty(),
                    "an empty problem: {p:?}"
                );
            }
            return false;
        }
    };
    let addresses: Vec<IpAddr> = config.nodes.iter().map(|n| n.address).collect();
    for (i, node) in config.nodes.iter().enumerate() {
        let me = config
            .identify(Some(&node.name), &addresses[i..=i])
            .expect("a configured node identifies itself");
        assert_eq!(me, i);
        let _ = Config::locate_node_key(text, me, "nic");
        let t0 = Instant::now();
        let mut core = Core::new(config.core_settings(me, 1));
        core.handle_input(
            t0,
            Input::Started {
                vip_present: i == 0,
            },
        );
        for later in [
            Duration::ZERO,
            Duration::from_millis(1),
            config.heartbeat.startup,
            config.monitor.grace,
            config.monitor.grace * 3,
            Duration::from_secs(8 * 24 * 3600),
        ] {
            let now = t0 + later;
            core.handle_timeout(now);
            while core.poll_action().is_some() {}
            let _ = core.poll_timeout();
            let status = core.status(now);
            let shown = report::render(&report::build(&config, me, &status, now));
            assert!(shown.contains("VIP"));
        }
    }
    true
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// Files that passed validation and reached the core, of those tried.
static STARTED: AtomicUsize = AtomicUsize::new(0);
static TRIED: AtomicUsize = AtomicUsize::new(0);

#[test]
fn mutated_configurations_never_panic() {
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let strategy = (0..2usize, proptest::collection::vec(edit(), 1..6));
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&strategy, |(base, edits)| {
        let mut text = bases()[base].clone();
        for e in &edits {
            text = apply(&text, e);
        }
        TRIED.fetch_add(1, Ordering::Relaxed);
        if start_up(&text) {
            STARTED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (tried, started) = (
        TRIED.load(Ordering::Relaxed),
        STARTED.load(Ordering::Relaxed),
    );
    eprintln!(
        "config fuzz: {tried} mutated files, {started} valid and started in the core, no panic"
    );
    assert!(tried >= cases() as usize);
    assert!(
        started > tried / 20,
        "the mutations must also reach the core"
    );
}

/// The unmutated bases are valid: the mutations start from files that
/// reach the core, so the start-up path is really exercised.
#[test]
fn the_bases_are_valid_and_start() {
    for text in bases() {
        let config = Config::parse(Path::new("base.toml"), &text).unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(config.nodes.len(), 2);
        assert!(start_up(&text));
    }
}
