//! Prometheus metrics (prometheus-client). Gauges and totals that the core
//! owns are copied from its status after every event, so they never
//! disagree with `understudy status`; probe latencies and heartbeat
//! counts are recorded by the runtime as they happen.

use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::core::{State, Status, StatusWord, Target, Verdict};

type Labels = Vec<(String, String)>;

fn label(key: &str, value: &str) -> Labels {
    vec![(key.to_owned(), value.to_owned())]
}

/// The words a peer's heartbeats can give it.
const PEER_WORDS: [StatusWord; 7] = [
    StatusWord::Active,
    StatusWord::Claiming,
    StatusWord::Releasing,
    StatusWord::Passive,
    StatusWord::Maintenance,
    StatusWord::Disabled,
    StatusWord::Unavailable,
];

const STATES: [State; 14] = [
    State::Init,
    State::Starting,
    State::Checking,
    State::Acquiring,
    State::Passive,
    State::Claiming,
    State::Announcing,
    State::StartingApp,
    State::Active,
    State::Draining,
    State::Restoring,
    State::StoppingApp,
    State::Releasing,
    State::Stopped,
];

pub struct Metrics {
    registry: Registry,
    state: Family<Labels, Gauge>,
    term: Gauge,
    holder: Family<Labels, Gauge>,
    /// Every common address, 1 while this node holds the group.
    addresses: Family<Labels, Gauge>,
    address_list: Vec<String>,
    /// By peer: 1 while its heartbeats arrive.
    peer_available: Family<Labels, Gauge>,
    /// By peer and status word: 1 for the word it has now.
    peer_status: Family<Labels, Gauge>,
    /// By peer: 1 for the node this one watches.
    peer_watched: Family<Labels, Gauge>,
    config_match: Gauge,
    probe_up: Family<Labels, Gauge>,
    probe_seconds: Family<Labels, Histogram>,
    failures: Family<Labels, Counter>,
    takeovers: Counter,
    releases: Counter,
    last_takeover_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    takeover_pending: Gauge,
    takeover_in_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    heartbeats_accepted: Counter,
    heartbeats_rejected: Family<Labels, Counter>,
    notifications: Family<Labels, Counter>,
    dwell_delays: Counter,
    lease_held: Gauge,
    lease_left_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Claims that failed in a row (0 once one goes through).
    failed_claims: Gauge,
    watchdog_armed: Gauge,
    watchdog_fed: Gauge,
    /// By mirror and receiving node: 1 while its last run succeeded, the
    /// time of the last success, and what the last success moved.
    mirror_ok: Family<Labels, Gauge>,
    mirror_last_success: Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    mirror_bytes: Family<Labels, Gauge>,
}

impl Metrics {
    /// `addresses`: the group, as `ADDRESS/PREFIX`.
    pub fn new(node: &str, cluster: &str, addresses: Vec<String>) -> Self {
        let registry = Registry::with_prefix_and_labels(
            "understudy",
            [
                ("cluster".into(), cluster.to_owned().into()),
                ("node".into(), node.to_owned().into()),
            ]
            .into_iter(),
        );
        let mut m = Metrics {
            registry,
            state: Family::default(),
            term: Gauge::default(),
            holder: Family::default(),
            addresses: Family::default(),
            address_list: addresses,
            peer_available: Family::default(),
            peer_status: Family::default(),
            peer_watched: Family::default(),
            config_match: Gauge::default(),
            probe_up: Family::default(),
            probe_seconds: Family::new_with_constructor(|| {
                Histogram::new(
                    [
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    ]
                    .into_iter(),
                )
            }),
            failures: Family::default(),
            takeovers: Counter::default(),
            releases: Counter::default(),
            last_takeover_seconds: Gauge::default(),
            takeover_pending: Gauge::default(),
            takeover_in_seconds: Gauge::default(),
            heartbeats_accepted: Counter::default(),
            heartbeats_rejected: Family::default(),
            notifications: Family::default(),
            dwell_delays: Counter::default(),
            lease_held: Gauge::default(),
            lease_left_seconds: Gauge::default(),
            failed_claims: Gauge::default(),
            watchdog_armed: Gauge::default(),
            watchdog_fed: Gauge::default(),
            mirror_ok: Family::default(),
            mirror_last_success: Family::default(),
            mirror_bytes: Family::default(),
        };
        m.register();
        m
    }

    /// Names and describes every metric in the registry.
    /// Registers every metric, in the order `/metrics` lists them.
    fn register(&mut self) {
        self.register_node();
        self.register_peer();
        self.register_mirrors();
        self.register_moves();
        self.register_traffic();
    }

    /// This node: its state, term and lease, and who holds the VIP.
    fn register_node(&mut self) {
        let r = &mut self.registry;
        r.register(
            "state",
            "1 for the node's current state",
            self.state.clone(),
        );
        r.register("term", "The node's term", self.term.clone());
        r.register(
            "failed_claims",
            "Claims of the common IP that failed in a row (0 once one goes through)",
            self.failed_claims.clone(),
        );
        r.register(
            "watchdog_armed",
            "1 while the watchdog of [fencing] is armed (the host resets if it is not fed), 0 otherwise",
            self.watchdog_armed.clone(),
        );
        r.register(
            "watchdog_fed",
            "1 while the watchdog is fed (this node may hold the common IP), 0 otherwise",
            self.watchdog_fed.clone(),
        );
        r.register(
            "lease_held",
            "1 while this node holds the witness's lease, 0 otherwise (and without a witness)",
            self.lease_held.clone(),
        );
        r.register(
            "lease_left_seconds",
            "How much longer this node counts its lease as held unless renewed (0 without one)",
            self.lease_left_seconds.clone(),
        );
        r.register(
            "vip_holder",
            "1 for the node holding the VIP, as this node knows",
            self.holder.clone(),
        );
        r.register(
            "vip_address",
            "1 for each common address while this node holds the group, else 0",
            self.addresses.clone(),
        );
    }

    /// The peer as this node sees it, and the probes.
    fn register_peer(&mut self) {
        let r = &mut self.registry;
        r.register(
            "peer_available",
            "1 while valid heartbeats arrive from the peer, by peer",
            self.peer_available.clone(),
        );
        r.register(
            "peer_status",
            "1 for each peer's current status word (from its heartbeats), by peer",
            self.peer_status.clone(),
        );
        r.register(
            "peer_watched",
            "1 for the peer this node watches (the holder, or the one it would take over from)",
            self.peer_watched.clone(),
        );
        r.register(
            "config_match",
            "1 if the peer announces the same configuration",
            self.config_match.clone(),
        );
        r.register(
            "probe_up",
            "1 healthy, 0 failing, -1 not known yet",
            self.probe_up.clone(),
        );
        r.register(
            "probe_duration_seconds",
            "Time one probe took",
            self.probe_seconds.clone(),
        );
        r.register(
            "peer_failures",
            "Failing streaks of the peer by cause",
            self.failures.clone(),
        );
    }

    /// Takeovers and releases, and the countdown to the next.
    fn register_moves(&mut self) {
        let r = &mut self.registry;
        r.register(
            "takeovers",
            "Takeovers by this node",
            self.takeovers.clone(),
        );
        r.register("releases", "Releases by this node", self.releases.clone());
        r.register(
            "last_takeover_duration_seconds",
            "Decision to application healthy, last takeover",
            self.last_takeover_seconds.clone(),
        );
        r.register(
            "takeover_pending",
            "1 while counting down to a takeover",
            self.takeover_pending.clone(),
        );
        r.register(
            "takeover_in_seconds",
            "Time left before the takeover",
            self.takeover_in_seconds.clone(),
        );
    }

    /// Heartbeats and notifications that went by, and failbacks held back.
    fn register_traffic(&mut self) {
        let r = &mut self.registry;
        r.register(
            "heartbeats_accepted",
            "Valid heartbeats received",
            self.heartbeats_accepted.clone(),
        );
        r.register(
            "heartbeats_rejected",
            "Datagrams dropped, by reason",
            self.heartbeats_rejected.clone(),
        );
        r.register(
            "notifications",
            "Notifications by channel and outcome (sent, failed, dropped, deduplicated)",
            self.notifications.clone(),
        );
        r.register(
            "failbacks_delayed",
            "Automatic failbacks held back by the dwell time (flapping)",
            self.dwell_delays.clone(),
        );
    }

    fn register_mirrors(&mut self) {
        let r = &mut self.registry;
        r.register(
            "mirror_ok",
            "1 while the last run of a mirror to a node succeeded, by mirror and peer",
            self.mirror_ok.clone(),
        );
        r.register(
            "mirror_last_success_timestamp_seconds",
            "When a mirror last reached a node (Unix time), by mirror and peer",
            self.mirror_last_success.clone(),
        );
        r.register(
            "mirror_last_bytes",
            "What the last successful run of a mirror to a node moved, in bytes",
            self.mirror_bytes.clone(),
        );
    }

    /// Each mirror towards each node, as the mirror task last saw it.
    pub fn mirrors(&self, state: &[crate::io::mirror::Towards]) {
        for t in state {
            let labels = vec![
                ("mirror".to_owned(), t.mirror.clone()),
                ("peer".to_owned(), t.node.clone()),
            ];
            self.mirror_ok
                .get_or_create(&labels)
                .set(i64::from(t.error.is_none() && t.last_success.is_some()));
            if let Some(at) = t.last_success {
                let unix = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                self.mirror_last_success
                    .get_or_create(&labels)
                    .set(unix.as_secs_f64());
            }
            if let Some(last) = t.last {
                self.mirror_bytes
                    .get_or_create(&labels)
                    .set(i64::try_from(last.bytes).unwrap_or(i64::MAX));
            }
        }
    }

    /// The watchdog's state (armed, fed), with `[fencing]`.
    pub fn watchdog(&self, armed: bool, fed: bool) {
        self.watchdog_armed.set(i64::from(armed));
        self.watchdog_fed.set(i64::from(fed));
    }

    /// Copies the core's view in.
    pub fn update(&self, status: &Status, local: &str) {
        for state in STATES {
            let on = i64::from(state == status.state);
            self.state
                .get_or_create(&label("state", &state.to_string()))
                .set(on);
        }
        self.term.set(status.term as i64);
        self.failed_claims.set(
            status
                .failed_claims
                .as_ref()
                .map_or(0, |f| i64::from(f.count)),
        );
        let left = status.lease.as_ref().and_then(|l| l.held_for);
        self.lease_held.set(i64::from(left.is_some()));
        self.lease_left_seconds
            .set(left.map_or(0.0, |d| d.as_secs_f64()));
        let holder = status.holder_name(local);
        let peers = status.peers.iter().map(|p| p.name.as_str());
        for node in std::iter::once(local).chain(peers) {
            self.holder
                .get_or_create(&label("holder", node))
                .set(i64::from(holder == Some(node)));
        }
        for address in &self.address_list {
            self.addresses
                .get_or_create(&label("address", address))
                .set(i64::from(holder == Some(local)));
        }
        self.update_peers(status);
        self.config_match.set(i64::from(!status.config_mismatch));
        for (target, verdict) in &status.probes {
            let value = match verdict {
                Verdict::Healthy => 1,
                Verdict::Failing => 0,
                Verdict::Unknown => -1,
            };
            self.probe_up
                .get_or_create(&label("target", target.name()))
                .set(value);
        }
        for (cause, n) in &status.counters.failures {
            let c = self
                .failures
                .get_or_create(&label("cause", &cause.to_string()));
            c.inner().store(*n, Ordering::Relaxed);
        }
        self.takeovers
            .inner()
            .store(status.counters.takeovers, Ordering::Relaxed);
        self.releases
            .inner()
            .store(status.counters.releases, Ordering::Relaxed);
        if let Some(t) = &status.last_takeover {
            self.last_takeover_seconds.set(t.duration.as_secs_f64());
        }
        self.takeover_pending
            .set(i64::from(status.takeover_in().is_some()));
        self.takeover_in_seconds
            .set(status.takeover_in().map_or(0.0, |d| d.as_secs_f64()));
    }

    /// Every other node as this node hears it, one series each.
    fn update_peers(&self, status: &Status) {
        for peer in &status.peers {
            let by_peer = label("peer", &peer.name);
            self.peer_available
                .get_or_create(&by_peer)
                .set(i64::from(peer.available));
            self.peer_watched
                .get_or_create(&by_peer)
                .set(i64::from(peer.watched));
            let word = peer.word();
            for shown in PEER_WORDS {
                let labels = vec![
                    ("peer".to_owned(), peer.name.clone()),
                    ("status".to_owned(), shown.to_string()),
                ];
                self.peer_status
                    .get_or_create(&labels)
                    .set(i64::from(word == shown));
            }
        }
    }

    pub fn probe_took(&self, target: Target, took: Duration) {
        self.probe_seconds
            .get_or_create(&label("target", target.name()))
            .observe(took.as_secs_f64());
    }

    pub fn heartbeat_accepted(&self) {
        self.heartbeats_accepted.inc();
    }

    pub fn heartbeat_rejected(&self, reason: &str) {
        self.heartbeats_rejected
            .get_or_create(&label("reason", reason))
            .inc();
    }

    pub fn notification(&self, channel: &str, outcome: &str) {
        let labels = vec![
            ("channel".to_owned(), channel.to_owned()),
            ("outcome".to_owned(), outcome.to_owned()),
        ];
        self.notifications.get_or_create(&labels).inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_registered_metrics_with_labels() {
        let m = Metrics::new("m1", "helpdesk", vec!["192.0.2.10/24".into()]);
        m.heartbeat_rejected("bad_mac");
        m.probe_took(Target::Peer, Duration::from_millis(3));
        let text = m.encode();
        assert!(text.contains(r#"understudy_heartbeats_rejected_total{cluster="helpdesk",node="m1",reason="bad_mac"} 1"#), "{text}");
        assert!(
            text.contains("understudy_probe_duration_seconds_bucket"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
