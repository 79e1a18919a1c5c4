//! A claim that keeps failing, on the real binary in network namespaces
//! (needs root; see tests/common): the group holds an IPv6 address and
//! m2's NIC has IPv6 disabled, so the kernel refuses that address every
//! time m2 claims after m1's host went silent. m2 must back off (1 s, 2,
//! 4 … between claims), keep one term for the streak, say so in status,
//! JSON and metrics, and keep its log short; before, it claimed every
//! 1.1 s with a new term each time and 8 lines a claim.

use std::time::{Duration, Instant};

use crate::common::{wait_for, Topology};

/// How long the failure is watched.
const WATCH: Duration = Duration::from_secs(40);

#[test]
fn a_claim_the_kernel_keeps_refusing_backs_off() {
    let mut t = Topology::up("claim-fail");
    let config = t.dual_stack_config();
    t.steady_pair_with(&config, &config);
    let out = t.exec(
        "m2",
        &["sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = t.daemon("m2").log_text().len();
    let out = t.exec("m1", &["ip", "link", "set", "eth0", "down"]);
    assert!(out.status.success());
    let fault = Instant::now();
    wait_for("m2's first failed claim", Duration::from_secs(10), || {
        t.daemon("m2").log_text()[before..]
            .contains("the claim failed; backing off")
            .then_some(())
    });
    std::thread::sleep(WATCH.saturating_sub(fault.elapsed()));
    let log = t.daemon("m2").log_text();
    let since = &log[before..];
    let claims = since.matches("-> adding the common IP").count();
    let lines = since
        .lines()
        .filter(|l| l.contains(" INFO ") || l.contains(" WARN ") || l.contains(" ERROR "))
        .count();
    eprintln!(
        "CLAIM FAILING over {} s: {claims} claims, {lines} log lines at INFO and above",
        WATCH.as_secs()
    );
    // Claims at about 1, 2, 4, 8, 16 and 32 s after the first: 6 or 7 in
    // 40 s (one a second without the back-off: about 36).
    assert!(
        (3..=8).contains(&claims),
        "{claims} claims in {WATCH:?}:\n{since}"
    );
    assert!(lines <= 25 * claims, "{lines} lines for {claims} claims");
    let s = t.status("m2");
    let failed = &s["failed_claims"];
    assert_eq!(failed["count"].as_u64(), Some(claims as u64), "{s}");
    assert!(
        failed["why"]
            .as_str()
            .is_some_and(|w| w.contains("2001:db8::10")),
        "the failing address is named: {s}"
    );
    // One term for the streak: every failed claim's release logged the
    // same one (the term is raised on entering the claim, after its line).
    let terms: std::collections::BTreeSet<&str> = since
        .lines()
        .filter(|l| l.contains("adding the common IP -> removing the common IP"))
        .filter_map(|l| l.rsplit("term=").next())
        .collect();
    assert_eq!(terms.len(), 1, "terms: {terms:?}");
    let url = format!("http://192.0.2.12:{}/metrics", crate::common::API_PORT);
    let (code, metrics) = t.api("GET", &url, Some(crate::common::API_TOKEN), &[]);
    assert_eq!(code, 200, "{metrics}");
    let gauge = metrics
        .lines()
        .find(|l| l.starts_with("understudy_failed_claims{"));
    assert!(
        gauge.is_some_and(|l| l.ends_with(&format!(" {claims}"))),
        "{gauge:?}"
    );
    let (_, text) = t.ctl("m2", &["status"]);
    assert!(text.contains("CLAIM FAILING"), "{text}");
}
