//! The console in a real browser (needs root, chromium and chromedriver,
//! which `.ci/run` installs; see tests/common): headless chromium runs in
//! the client's namespace, driven over WebDriver by
//! tests/support/webdriver.py. A wrong token is refused; the operator's
//! token shows the server list from the rendered page; Demote, confirmed,
//! moves the common IP (the client's GET through the VIP then answers from
//! m2) and the page shows the new holder; a read-only token sees no action
//! buttons and the API refuses its actions. The page's security headers
//! are checked on the wire. A screenshot after the takeover goes to
//! target/console.png.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use crate::common::{wait_for, Topology, API_PORT, API_TOKEN};

const VIEWER_TOKEN: &str = "viewer-token-0123456789abcdef";

/// The WebDriver client, one JSON command and answer per line.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Browser {
    fn open(t: &Topology) -> Browser {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/webdriver.py");
        let profile = t.dir.join("chromium-profile");
        let mut child = Command::new("ip")
            .args(["netns", "exec", &t.ns("cl"), "python3", script, "9515"])
            .arg(&profile)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the WebDriver client");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut browser = Browser {
            child,
            stdin,
            stdout,
        };
        let ready = browser.answer();
        assert_eq!(
            ready,
            Ok(serde_json::json!("ready")),
            "the browser did not start"
        );
        browser
    }

    fn answer(&mut self) -> Result<serde_json::Value, String> {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("the WebDriver client answers");
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        if v["ok"] == true {
            Ok(v["value"].clone())
        } else {
            Err(v["value"].to_string())
        }
    }

    fn send(&mut self, cmd: serde_json::Value) -> Result<serde_json::Value, String> {
        writeln!(self.stdin, "{cmd}").expect("the WebDriver client reads");
        self.stdin.flush().unwrap();
        self.answer()
    }

    fn ok(&mut self, cmd: serde_json::Value) -> serde_json::Value {
        let what = cmd.to_string();
        self.send(cmd).unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// The element's text, or "" while it is not there.
    fn text(&mut self, css: &str) -> String {
        self.send(serde_json::json!({"op": "text", "css": css}))
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Waits (at most 15 s) for `css` to contain `contains`; on failure
    /// the panic shows the whole page's text.
    fn wait_text(&mut self, css: &str, contains: &str) -> String {
        let began = std::time::Instant::now();
        while began.elapsed() < Duration::from_secs(15) {
            let text = self.text(css);
            if text.contains(contains) {
                return text;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let page = self
            .send(serde_json::json!({"op": "script", "script": "return document.body.innerText;"}));
        panic!("{css} never said {contains:?}; the page: {page:?}");
    }

    fn login(&mut self, url: &str, token: &str) {
        self.ok(serde_json::json!({"op": "get", "url": url}));
        self.ok(serde_json::json!({"op": "script", "script": "sessionStorage.clear();"}));
        self.ok(serde_json::json!({"op": "get", "url": url}));
        self.ok(serde_json::json!({"op": "fill", "css": "#login-token", "text": token}));
        self.ok(serde_json::json!({"op": "click", "css": "#login-button"}));
    }

    /// The server list as rendered: each row's cells.
    fn rows(&mut self) -> Vec<Vec<String>> {
        let script = "return [...document.querySelectorAll('#nodes tbody tr')]\
                      .map(r => [...r.cells].map(c => c.textContent));";
        let v = self.ok(serde_json::json!({"op": "script", "script": script}));
        serde_json::from_value(v).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", serde_json::json!({"op": "quit"}));
        let _ = self.stdin.flush();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_console_logs_in_shows_the_pair_and_demotes_in_a_real_browser() {
    let mut t = Topology::up("console");
    let tokens = t.dir.join("tokens");
    let mut text = std::fs::read_to_string(&tokens).unwrap();
    text.push_str(&format!("viewer {VIEWER_TOKEN} ro\n"));
    std::fs::write(&tokens, text).unwrap();
    t.steady_pair();
    let url = format!("http://192.0.2.11:{API_PORT}/");

    // The page's defences, on the wire.
    let head = t.exec("cl", &["curl", "-s", "-D", "-", "-o", "/dev/null", &url]);
    let head = String::from_utf8_lossy(&head.stdout).to_lowercase();
    assert!(head.contains("frame-ancestors 'none'"), "{head}");
    assert!(
        head.contains("script-src 'self'") && head.contains("x-frame-options: deny"),
        "{head}"
    );
    assert!(!head.contains("set-cookie"), "{head}");

    let mut browser = Browser::open(&t);
    browser.login(&url, "wrong-token-0123456789abcdef");
    browser.wait_text("#login-error", "refused");

    browser.login(&url, API_TOKEN);
    browser.wait_text("#holder", "held by m1");
    let rows = wait_for("the server list", Duration::from_secs(10), || {
        let rows = browser.rows();
        (rows.len() == 2 && rows[1][3].contains("ago")).then_some(rows)
    });
    eprintln!("CONSOLE rows: {rows:?}");
    assert!(
        rows[0][0].starts_with("m1") && rows[0][2] == "Active",
        "{rows:?}"
    );
    assert!(
        rows[1][0].starts_with("m2") && rows[1][2] == "Passive",
        "{rows:?}"
    );
    assert_eq!(
        browser.ok(serde_json::json!({"op": "displayed", "css": "#action-demote"})),
        true
    );

    browser.ok(serde_json::json!({"op": "click", "css": "#action-demote"}));
    browser.ok(serde_json::json!({"op": "accept"}));
    browser.wait_text("#answer", "applied");
    wait_for(
        "the client to get m2 through the VIP",
        Duration::from_secs(15),
        || (t.get_vip().as_deref() == Some("m2")).then_some(()),
    );
    browser.wait_text("#holder", "held by m2");
    browser.wait_text("#events", "handover");
    wait_for(
        "the page to show m2 Active",
        Duration::from_secs(15),
        || {
            let rows = browser.rows();
            (rows.len() == 2 && rows[1][2] == "Active").then_some(())
        },
    );
    let png = concat!(env!("CARGO_TARGET_TMPDIR"), "/../console.png");
    let bytes = browser.ok(serde_json::json!({"op": "screenshot", "path": png}));
    eprintln!("CONSOLE screenshot {png}: {bytes} bytes");

    // Read-only: no buttons, and the API refuses it anyway.
    browser.login(&url, VIEWER_TOKEN);
    browser.wait_text("#session", "read-only");
    browser.wait_text("#holder", "held by m2");
    assert_eq!(
        browser.ok(serde_json::json!({"op": "displayed", "css": "#action-demote"})),
        false
    );
    let action = format!("http://192.0.2.11:{API_PORT}/actions/promote");
    let (code, body) = t.api("POST", &action, Some(VIEWER_TOKEN), &[]);
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        t.get_vip().as_deref(),
        Some("m2"),
        "the read-only call moved nothing"
    );
}

/// CPU time (user + system, clock ticks) and resident memory (kB) of `pid`.
fn usage(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = fields
        .get(11)
        .and_then(|u| u.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (ticks, rss)
}

/// What open consoles cost the daemon: each console is its stream, as the
/// page keeps it (reconnecting every 10 s), from its own address. For 10 s
/// each with none, one and ten, it prints m1's CPU and memory; it asserts
/// that every console got the status twice a second and that m2 never
/// missed one of m1's heartbeats meanwhile.
#[test]
fn what_ten_open_consoles_cost_the_daemon() {
    let mut t = Topology::up("console-cost");
    t.steady_pair();
    let pid = t.daemon("m1").pid();
    for i in 1..=10 {
        let ip = format!("192.0.2.{}/24", 100 + i);
        assert!(t
            .exec("cl", &["ip", "addr", "add", &ip, "dev", "eth0"])
            .status
            .success());
    }
    let url = format!("http://192.0.2.11:{API_PORT}/stream");
    let auth = format!("Authorization: Bearer {API_TOKEN}");
    let mut figures = Vec::new();
    for consoles in [0usize, 1, 10] {
        let (ticks_before, _) = usage(pid);
        let streams: Vec<_> = (1..=consoles)
            .map(|i| {
                let from = format!("192.0.2.{}", 100 + i);
                Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        &t.ns("cl"),
                        "curl",
                        "-sN",
                        "--max-time",
                        "10",
                    ])
                    .args(["--interface", &from, "-H", &auth, &url])
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("curl")
            })
            .collect();
        let mut oldest = 0;
        let began = std::time::Instant::now();
        while began.elapsed() < Duration::from_secs(10) {
            let status = t.status("m2");
            oldest = oldest.max(
                status["nodes"][0]["last_heartbeat"]["age_ms"]
                    .as_u64()
                    .unwrap_or(0),
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut frames = Vec::new();
        for stream in streams {
            let out = stream
                .wait_with_output()
                .expect("curl ends with its stream");
            frames.push(
                String::from_utf8_lossy(&out.stdout)
                    .matches("event: status")
                    .count(),
            );
        }
        let (ticks_after, rss) = usage(pid);
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let cpu_ms = (ticks_after - ticks_before) * 1000 / per_second;
        eprintln!(
            "CONSOLE cost, {consoles} open: m1 CPU {cpu_ms} ms in 10 s ({:.1} %), RSS {rss} kB, status frames per console {frames:?}, oldest heartbeat m2 saw {oldest} ms",
            cpu_ms as f64 / 100.0
        );
        figures.push((consoles, cpu_ms, rss));
        assert!(
            frames.iter().all(|&n| n >= 15),
            "a console got too few updates: {frames:?}"
        );
        assert!(
            oldest < 2 * crate::common::HEARTBEAT_MS,
            "m1's heartbeats slowed: {oldest} ms"
        );
    }
    assert_eq!(figures.len(), 3);
}
