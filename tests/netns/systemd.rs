//! The sd_notify protocol against a real `NOTIFY_SOCKET` (a Unix datagram
//! socket this test binds, as systemd would) and the real binary in network
//! namespaces (needs root; see tests/common): `READY=1` with the status line
//! once m1 holds the VIP, `WATCHDOG=1` from the loop at half of
//! `WATCHDOG_USEC`, `RELOADING=1` then `READY=1` again around `understudy
//! restart` and around `understudy reload`, and `STOPPING=1` on SIGTERM.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::common::Topology;

/// Every datagram that arrives within `period`, one string each.
fn received(socket: &UnixDatagram, period: Duration) -> Vec<String> {
    let until = Instant::now() + period;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded by `period`: each wait is at most what is left of it.
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match socket.recv(&mut buf) {
            Ok(n) => out.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => break,
        }
    }
    out
}

/// Waits (at most `limit`) for a datagram that contains `text`; returns
/// every datagram seen until then.
fn wait_for_message(socket: &UnixDatagram, text: &str, limit: Duration) -> Vec<String> {
    let until = Instant::now() + limit;
    let mut seen = Vec::new();
    while Instant::now() < until {
        let got = received(socket, Duration::from_millis(200));
        let found = got.iter().any(|m| m.contains(text));
        seen.extend(got);
        if found {
            return seen;
        }
    }
    panic!("no {text:?} within {limit:?}; got {seen:?}");
}

/// Waits for `READY=1` after `what`, which must follow a `RELOADING=1`;
/// returns the `RELOADING=1` message.
fn reloading_then_ready(socket: &UnixDatagram, what: &str) -> String {
    let seen = wait_for_message(socket, "READY=1", Duration::from_secs(10));
    let reloading = seen.iter().position(|m| m.contains("RELOADING=1"));
    let ready = seen.iter().position(|m| m.contains("READY=1"));
    match (reloading, ready) {
        (Some(r), Some(d)) if r < d => seen[r].clone(),
        _ => panic!("{what}: RELOADING=1 then READY=1 expected: {seen:?}"),
    }
}

#[test]
fn systemd_hears_ready_status_watchdog_reloading_and_stopping() {
    let mut t = Topology::up("systemd");
    let path = t.dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    t.env = vec![
        ("NOTIFY_SOCKET".into(), path.display().to_string()),
        // 200 ms: WATCHDOG=1 every 100 ms.
        ("WATCHDOG_USEC".into(), "200000".into()),
    ];
    t.start("m1");
    let seen = wait_for_message(&socket, "READY=1", Duration::from_secs(10));
    let ready = seen.iter().find(|m| m.contains("READY=1")).unwrap();
    assert!(
        ready.contains("STATUS=Active: holding 192.0.2.10/24, term 1"),
        "{ready:?}"
    );
    assert!(
        !seen
            .iter()
            .take_while(|m| !m.contains("READY=1"))
            .any(|m| m.contains("STATUS=Active:")),
        "ready before Active: {seen:?}"
    );
    let second = received(&socket, Duration::from_secs(1));
    let beats = second.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    eprintln!("SYSTEMD watchdog: {beats} WATCHDOG=1 in 1 s (WATCHDOG_USEC 200 ms)");
    assert!(
        (5..=15).contains(&beats),
        "{beats} watchdog pings: {second:?}"
    );
    let (ok, text) = t.ctl("m1", &["restart"]);
    assert!(ok, "{text}");
    let reloading = reloading_then_ready(&socket, "restart");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    // A live reload: RELOADING=1, then READY=1 again from the same process.
    let (ok, text) = t.ctl("m1", &["reload"]);
    assert!(ok, "{text}");
    reloading_then_ready(&socket, "reload");
    t.daemon("m1").signal("TERM");
    let seen = wait_for_message(&socket, "STOPPING=1", Duration::from_secs(5));
    assert!(!seen.is_empty());
    t.daemon("m1").wait_exit(Duration::from_secs(10));
}
