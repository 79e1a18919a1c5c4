//! Notifications from real daemons in network namespaces (needs root and
//! Python's aiosmtpd; see tests/common): a takeover produces exactly one
//! mail, one webhook call and one hook run per event, and a mail server
//! that never answers does not slow the takeover down.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{wait_for, ChildGuard, Topology, API_PORT, API_TOKEN};

const WEBHOOK_SECRET: &str = "webhook-secret-0123456789";
const SMTP_PORT: u16 = 2525;
const STALLED_SMTP_PORT: u16 = 2526;
const WEBHOOK_PORT: u16 = 8088;

fn support(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(file)
}

/// Starts a sink script in the client namespace and waits for it to be ready.
fn sink(t: &Topology, script: &str, port: u16, out: &Path, extra: &[&str]) -> ChildGuard {
    let child = Command::new("ip")
        .args(["netns", "exec", &t.ns("cl"), "python3"])
        .arg(support(script))
        .args(["192.0.2.100", &port.to_string()])
        .arg(out)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the sink");
    wait_for(&format!("{script} ready"), Duration::from_secs(10), || {
        std::fs::read_to_string(out)
            .ok()
            .filter(|s| s.contains("ready"))
            .map(|_| ())
    });
    ChildGuard(child)
}

/// The test configuration plus notifications to the sinks.
fn with_notify(t: &Topology, smtp_port: u16) -> PathBuf {
    let dir = t.dir.display();
    std::fs::write(t.dir.join("webhook-secret"), WEBHOOK_SECRET).unwrap();
    let text = std::fs::read_to_string(&t.config).unwrap()
        + &format!(
            r#"
[notify]
dedup_window = "10m"

[notify.email]
server = "192.0.2.100"
port = {smtp_port}
security = "plain"
allow_plain = true
from = "understudy@example.com"
to = ["ops@example.com", "oncall@example.com"]
timeout = "1s"
retries = 0

[notify.webhook]
urls = ["http://192.0.2.100:{WEBHOOK_PORT}/hook"]
timeout = "2s"
retries = 2
secret_file = "{dir}/webhook-secret"

[notify.hook]
commands = ["env | grep ^UNDERSTUDY_ | sort > {dir}/hook-$UNDERSTUDY_NODE-$UNDERSTUDY_EVENT-$$.env"]
timeout = "5s"
"#
        );
    let path = t.dir.join("notify.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("ready").is_none())
        .collect()
}

fn start_pair_with(t: &mut Topology, config: &Path) {
    t.start_with("m1", config);
    t.wait_log("m1", "claimed the common IP", Duration::from_secs(10));
    t.wait_answer("m1", Instant::now(), Duration::from_secs(10));
    t.start_with("m2", config);
    wait_for("m2 to hear m1", Duration::from_secs(10), || {
        let log = t.daemon("m2").log_text();
        (log.contains("peer available") && log.contains("peer application healthy")).then_some(())
    });
}

fn kill_m1_app(t: &Topology) -> Instant {
    let pid = t.app_pid("m1").expect("m1's application");
    let fault = Instant::now();
    crate::common::run(Command::new("kill").arg(pid.to_string()));
    fault
}

/// "claimed the common IP; application healthy ms=…" of m2's last takeover.
fn claim_ms(t: &mut Topology) -> f64 {
    let log = t.daemon("m2").log_text();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("claimed the common IP"))
        .expect("a claim");
    let ms = line
        .split("ms=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    ms.parse().unwrap()
}

#[test]
fn u_a_takeover_is_told_once_by_mail_webhook_and_hook() {
    let mut t = Topology::up("notify");
    let (mails, hooks) = (t.dir.join("mail.jsonl"), t.dir.join("webhook.jsonl"));
    let _smtp = sink(&t, "smtp_sink.py", SMTP_PORT, &mails, &[]);
    let _web = sink(&t, "webhook_sink.py", WEBHOOK_PORT, &hooks, &[]);
    let config = with_notify(&t, SMTP_PORT);
    start_pair_with(&mut t, &config);
    let fault = kill_m1_app(&t);
    t.wait_answer("m2", fault, Duration::from_secs(3));
    let takeover_mail = |m: &serde_json::Value| {
        let data = m["data"].as_str().unwrap_or("");
        data.contains("Subject: [understudy test] CRITICAL takeover: m2 took over")
    };
    wait_for("the takeover mail", Duration::from_secs(5), || {
        json_lines(&mails).iter().any(takeover_mail).then_some(())
    });
    wait_for(
        "the takeover webhook and hook",
        Duration::from_secs(5),
        || {
            let posted = json_lines(&hooks).iter().any(|h| {
                h["body"]
                    .as_str()
                    .unwrap_or("")
                    .contains(r#""event":"takeover""#)
            });
            let ran = std::fs::read_dir(&t.dir).unwrap().flatten().any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("hook-m2-takeover-")
            });
            (posted && ran).then_some(())
        },
    );
    // Let any duplicate arrive before counting.
    std::thread::sleep(Duration::from_millis(1500));

    let all_mail = json_lines(&mails);
    let mail: Vec<_> = all_mail.iter().filter(|m| takeover_mail(m)).collect();
    assert_eq!(mail.len(), 1, "exactly one takeover mail");
    let mail = mail[0];
    assert_eq!(mail["mail_from"], "understudy@example.com");
    assert_eq!(
        mail["rcpt_tos"],
        serde_json::json!(["ops@example.com", "oncall@example.com"])
    );
    let data = mail["data"].as_str().unwrap();
    for expected in [
        "What happened: takeover on m2",
        "Why: ",
        "What understudy did: claimed the common IP",
        "Cluster: test",
        "NODE",
        "VIP 192.0.2.10/24",
    ] {
        assert!(
            data.contains(expected),
            "{expected:?} missing from the mail:\n{data}"
        );
    }
    // m2 also reported m1 down, once.
    let peer_down = all_mail
        .iter()
        .filter(|m| {
            m["data"]
                .as_str()
                .unwrap_or("")
                .contains("CRITICAL peer_down: m2 sees m1 down")
        })
        .count();
    assert_eq!(peer_down, 1);

    let posts: Vec<_> = json_lines(&hooks)
        .into_iter()
        .filter(|h| {
            let body = h["body"].as_str().unwrap_or("");
            body.contains(r#""event":"takeover""#) && body.contains(r#""node":"m2""#)
        })
        .collect();
    assert_eq!(posts.len(), 1, "exactly one takeover webhook call from m2");
    let body = posts[0]["body"].as_str().unwrap();
    let expected = understudy::notify::signature(WEBHOOK_SECRET.as_bytes(), body.as_bytes());
    assert_eq!(
        posts[0]["headers"][understudy::notify::SIGNATURE_HEADER],
        expected.as_str()
    );
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["node"], "m2");
    assert_eq!(v["peer"], "m1");
    assert_eq!(v["cluster"], "test");
    assert_eq!(v["vip"], "192.0.2.10/24");
    assert_eq!(v["severity"], "critical");
    assert!(v["duration_ms"].as_f64().unwrap() > 0.0);
    assert!(
        v["cause"].as_str().unwrap().contains("web service down"),
        "{v}"
    );
    assert_eq!(v["status"]["holder"]["node"], "m2");

    let runs: Vec<_> = std::fs::read_dir(&t.dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("hook-m2-takeover-")
        })
        .collect();
    assert_eq!(runs.len(), 1, "exactly one hook run for the takeover");
    let env = std::fs::read_to_string(runs[0].path()).unwrap();
    for expected in [
        "UNDERSTUDY_EVENT=takeover",
        "UNDERSTUDY_NODE=m2",
        "UNDERSTUDY_PEER=m1",
        "UNDERSTUDY_VIP=192.0.2.10/24",
        "UNDERSTUDY_CAUSE=peer failed for the grace period: web service down",
        "UNDERSTUDY_CLUSTER=test",
    ] {
        assert!(
            env.contains(expected),
            "{expected:?} missing from the hook's environment:\n{env}"
        );
    }
}

#[test]
fn v_a_dead_mail_server_does_not_slow_the_takeover() {
    // Without notifications.
    let mut plain = Topology::up("nomail");
    plain.steady_pair();
    let fault = kill_m1_app(&plain);
    let seen_plain = plain.wait_answer("m2", fault, Duration::from_secs(3));
    wait_for("m2 Active", Duration::from_secs(3), || {
        plain
            .daemon("m2")
            .log_text()
            .contains("claimed the common IP")
            .then_some(())
    });
    let claim_plain = claim_ms(&mut plain);
    drop(plain);

    // With a mail server that accepts and never answers.
    let mut t = Topology::up("deadmail");
    let (stalled, hooks) = (t.dir.join("stalled.jsonl"), t.dir.join("webhook.jsonl"));
    let _smtp = sink(
        &t,
        "smtp_sink.py",
        STALLED_SMTP_PORT,
        &stalled,
        &["--stall"],
    );
    let _web = sink(&t, "webhook_sink.py", WEBHOOK_PORT, &hooks, &[]);
    let config = with_notify(&t, STALLED_SMTP_PORT);
    start_pair_with(&mut t, &config);
    let fault = kill_m1_app(&t);
    let seen_dead = t.wait_answer("m2", fault, Duration::from_secs(3));
    t.wait_log("m2", "claimed the common IP", Duration::from_secs(3));
    let claim_dead = claim_ms(&mut t);
    eprintln!(
        "DEAD MAIL SERVER: claim (decision -> application healthy) {claim_dead} ms vs {claim_plain} ms without notifications; \
         fault -> first answer {} ms vs {} ms",
        seen_dead.as_millis(),
        seen_plain.as_millis()
    );
    // The claim does not wait for mail (its time limit is 1 s): the same
    // within the start-up jitter of the test application (Python, 100-200
    // ms, more on a loaded machine), well under the mail's limit.
    assert!(
        claim_dead < claim_plain + 500.0,
        "{claim_dead} ms vs {claim_plain} ms"
    );
    // The webhook still got through, and the mail failure is counted.
    wait_for(
        "the webhook despite the dead mail server",
        Duration::from_secs(5),
        || {
            json_lines(&hooks)
                .iter()
                .any(|h| {
                    h["body"]
                        .as_str()
                        .unwrap_or("")
                        .contains(r#""event":"takeover""#)
                })
                .then_some(())
        },
    );
    wait_for(
        "the mail failure in the metrics",
        Duration::from_secs(6),
        || {
            let (_, body) = t.api(
                "GET",
                &format!("http://192.0.2.12:{API_PORT}/metrics"),
                Some(API_TOKEN),
                &[],
            );
            body.lines()
                .any(|l| {
                    l.starts_with("understudy_notifications_total")
                        && l.contains(r#"channel="email""#)
                        && l.contains(r#"outcome="failed""#)
                })
                .then_some(())
        },
    );
    assert!(t.daemon("m2").log_text().contains("notification failed"));
}
