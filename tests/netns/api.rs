//! The HTTP API and the Prometheus metrics of real daemons in network
//! namespaces (needs root; see tests/common): tokens, actions, TLS, and a
//! real Prometheus text parse after a takeover.

use std::time::{Duration, Instant};

use crate::common::{holds_for, wait_for, Topology, API_PORT, API_TOKEN, GRACE};

fn url(node: &str, path: &str) -> String {
    let addr = if node == "m1" {
        "192.0.2.11"
    } else {
        "192.0.2.12"
    };
    format!("http://{addr}:{API_PORT}{path}")
}

#[test]
fn r_no_token_or_a_wrong_one_gets_401_and_changes_nothing() {
    let mut t = Topology::up("apiauth");
    t.steady_pair();
    for token in [None, Some("wrong-token-0123456789"), Some("")] {
        let (code, body) = t.api("POST", &url("m1", "/actions/demote"), token, &[]);
        assert_eq!(code, 401, "{body}");
        assert!(body.contains("unauthorized"), "{body}");
        let (code, _) = t.api("GET", &url("m1", "/metrics"), token, &[]);
        assert_eq!(code, 401);
    }
    holds_for("nothing moved", GRACE, || t.vip_holders() == ["m1"]);
    let (code, body) = t.api("GET", &url("m1", "/status"), Some(API_TOKEN), &[]);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"]["holder"]["node"], "m1");
    // A refused action is a 409 with the reason.
    assert!(t.ctl("m2", &["disable"]).0);
    wait_for("m1 to see m2 Disabled", Duration::from_secs(2), || {
        let (_, body) = t.api("GET", &url("m1", "/status"), Some(API_TOKEN), &[]);
        body.contains(r#""Disabled""#).then_some(())
    });
    let (code, body) = t.api("POST", &url("m1", "/actions/demote"), Some(API_TOKEN), &[]);
    assert_eq!(code, 409, "{body}");
    assert!(t.ctl("m2", &["enable"]).0);
    wait_for("m1 to see m2 Passive", Duration::from_secs(2), || {
        let (_, body) = t.api("GET", &url("m1", "/status"), Some(API_TOKEN), &[]);
        (!body.contains(r#""Disabled""#)).then_some(())
    });
    let (code, body) = t.api("POST", &url("m1", "/actions/demote"), Some(API_TOKEN), &[]);
    assert_eq!(code, 200, "{body}");
    wait_for("m2 to take over", Duration::from_secs(3), || {
        (t.vip_holders() == ["m2"]).then_some(())
    });
    assert!(
        t.daemon("m1").log_text().contains("who=token ops"),
        "the log says who asked"
    );
}

#[test]
fn s_metrics_after_a_takeover_parse_as_prometheus_text() {
    let mut t = Topology::up("metrics");
    t.steady_pair();
    let pid = t.app_pid("m1").unwrap();
    let fault = Instant::now();
    crate::common::run(std::process::Command::new("kill").arg(pid.to_string()));
    t.wait_answer("m2", fault, Duration::from_secs(3));
    t.wait_log("m2", "claimed the common IP", Duration::from_secs(3));
    // Its own application's first probe comes one interval after the claim.
    let body = wait_for(
        "m2's local probe in the metrics",
        Duration::from_secs(3),
        || {
            let (code, body) = t.api("GET", &url("m2", "/metrics"), Some(API_TOKEN), &[]);
            assert_eq!(code, 200);
            body.contains(r#"understudy_probe_up{cluster="test",node="m2",target="local"} 1"#)
                .then_some(body)
        },
    );
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
        let sample = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no {name} {label:?} in:\n{body}"));
        match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name} is not a number"),
        }
    };
    assert_eq!(value("understudy_takeovers_total", None), 1.0);
    assert_eq!(value("understudy_state", Some(("state", "Active"))), 1.0);
    assert_eq!(value("understudy_state", Some(("state", "Passive"))), 0.0);
    assert_eq!(value("understudy_vip_holder", Some(("holder", "m2"))), 1.0);
    assert_eq!(value("understudy_vip_holder", Some(("holder", "m1"))), 0.0);
    assert_eq!(value("understudy_term", None), 2.0);
    assert_eq!(
        value("understudy_peer_available", Some(("peer", "m1"))),
        1.0
    );
    assert_eq!(value("understudy_peer_watched", Some(("peer", "m1"))), 1.0);
    assert_eq!(
        value(
            "understudy_peer_failures_total",
            Some(("cause", "web service down"))
        ),
        1.0
    );
    assert!(value("understudy_heartbeats_accepted_total", None) > 5.0);
    assert!(value("understudy_last_takeover_duration_seconds", None) > 0.0);
    assert_eq!(value("understudy_probe_up", Some(("target", "local"))), 1.0);
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "understudy_probe_duration_seconds"),
        "probe latency histogram:\n{body}"
    );
    let labelled = scrape
        .samples
        .iter()
        .find(|s| s.metric == "understudy_term")
        .unwrap();
    assert_eq!(labelled.labels.get("node"), Some("m2"));
    assert_eq!(labelled.labels.get("cluster"), Some("test"));
}

#[test]
fn t_the_api_over_tls() {
    let mut t = Topology::up("apitls");
    let (cert, key) = (t.dir.join("api.crt"), t.dir.join("api.key"));
    let out = crate::common::run(std::process::Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=192.0.2.11",
        "-addext",
        "subjectAltName=IP:192.0.2.11",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]));
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&t.config).unwrap()
        + &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        );
    let config = t.dir.join("tls.toml");
    std::fs::write(&config, text).unwrap();
    t.start_with("m1", &config);
    let https = format!("https://192.0.2.11:{API_PORT}/status");
    wait_for("the TLS API", Duration::from_secs(8), || {
        let (code, _) = t.api(
            "GET",
            &https,
            Some(API_TOKEN),
            &["--cacert", cert.to_str().unwrap()],
        );
        (code == 200).then_some(())
    });
    let (code, _) = t.api("GET", &https, None, &["--cacert", cert.to_str().unwrap()]);
    assert_eq!(code, 401);
    let (code, _) = t.api("GET", &https, Some(API_TOKEN), &[]);
    assert_eq!(code, 0, "an unknown certificate is refused by the client");
}
