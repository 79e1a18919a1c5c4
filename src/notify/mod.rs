//! Notifications: mail, webhook and hook commands, each run once per event,
//! never in the way of a takeover.
//!
//! The event loop calls [`Notifier::send`], which never waits: it drops the
//! event if it was sent for the same cause within `dedup_window`, then puts
//! it on each channel's bounded queue (a full queue drops and counts it).
//! Each channel has its own worker, so a dead mail server delays neither the
//! webhook nor the hooks, and certainly not the core. Every delivery failure
//! is logged and counted in the metrics.

mod hook;
mod mail;
mod webhook;

pub use webhook::{signature, SIGNATURE_HEADER};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::config::Notify;
use crate::control::metrics::Metrics;
use crate::control::StatusReport;
use crate::core::EventKind;

/// An event with everything a person needs to read it at 3 a.m. This is
/// also the webhook's JSON body.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    pub event: &'static str,
    pub severity: &'static str,
    pub cluster: String,
    pub node: String,
    pub peer: String,
    pub vip: String,
    pub alias: Option<String>,
    pub cause: String,
    pub term: u64,
    /// RFC 3339, UTC.
    pub time: String,
    pub duration_ms: Option<f64>,
    /// What understudy did about it, in words.
    pub action: &'static str,
    /// The status table at that moment, as text.
    pub status_table: String,
    pub status: StatusReport,
}

impl Envelope {
    /// `kind` at `severity` (see [`crate::core::Event::severity`]) for
    /// `cause` (in words), at `term`, taking `took`; from
    /// `node`, whose watched peer is `peer`; with the status as a report
    /// and as its table.
    pub fn new(
        (kind, severity): (EventKind, &'static str),
        cause: &str,
        (term, took): (u64, Option<std::time::Duration>),
        (node, peer): (&str, &str),
        (status, table): (StatusReport, String),
    ) -> Envelope {
        Envelope {
            event: kind.name(),
            severity,
            cluster: status.cluster.clone(),
            node: node.to_owned(),
            peer: peer.to_owned(),
            vip: status.vip.clone(),
            alias: status.alias.clone(),
            cause: cause.to_owned(),
            term,
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            duration_ms: took.map(crate::core::millis),
            action: what_we_did(kind),
            status_table: table,
            status,
        }
    }
}

fn what_we_did(kind: EventKind) -> &'static str {
    match kind {
        EventKind::PeerDown => {
            "started the grace countdown; this node takes over if the peer stays down"
        }
        EventKind::Takeover => {
            "claimed the common IP, announced it with gratuitous ARP and started the application"
        }
        EventKind::Release => "stopped the application and removed the common IP",
        EventKind::Failback => "handed the common IP back to the primary",
        EventKind::Handover => "handed the common IP over to the peer on purpose",
        EventKind::SplitBrain => {
            "the lower-ranked node releases; the other announces the common IP again"
        }
        EventKind::Conflict => {
            "looked at the common IP before claiming it and acted as the cause says"
        }
        EventKind::ConfigDrift => "nothing: make both nodes run the same configuration file",
        EventKind::ApplicationFailed => {
            "released the common IP to a peer that can serve, or, with none, kept it and restarted the application"
        }
        EventKind::ProbeFailing => "nothing yet: the grace countdown runs",
        EventKind::ProbeRecovered => "nothing: the countdown, if any, is cancelled",
        EventKind::VipRestored => "put the common IP back on the NIC and announced it",
        EventKind::LeaseLost => {
            "removed the common IP before the lease could run out, then stopped the application (or kept serving while the peer is heard, with on_loss = keep)"
        }
        EventKind::Flapping => {
            "stopped automatic moves: the common IP stays where it is; run `understudy reset-flapping` once the cause is fixed"
        }
        EventKind::MirrorFailing => {
            "nothing: the mirror is tried again at every run; the receiver keeps its last complete copy"
        }
        EventKind::MirrorRecovered => "nothing: the mirror runs on schedule again",
        EventKind::MirrorBackup => {
            "kept every file the run replaced or deleted on the receiver, in the backup folder named"
        }
    }
}

/// One way of telling people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Channel {
    Email,
    Webhook,
    Hook,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
            Channel::Hook => "hook",
        }
    }
}

pub struct Notifier {
    events: Vec<EventKind>,
    dedup_window: std::time::Duration,
    /// When each (event, cause) was last sent.
    sent: HashMap<(EventKind, String), Instant>,
    queues: Vec<(Channel, mpsc::Sender<Arc<Envelope>>)>,
    /// The channel workers, awaited by [`Notifier::close`].
    workers: Vec<tokio::task::JoinHandle<()>>,
    metrics: Arc<Metrics>,
}

impl Notifier {
    /// Starts one worker per configured channel. Must run inside tokio.
    pub fn start(config: &Notify, metrics: Arc<Metrics>) -> Result<Notifier, String> {
        let mut notifier = Notifier {
            events: config.events.clone(),
            dedup_window: config.dedup_window,
            sent: HashMap::new(),
            queues: Vec::new(),
            workers: Vec::new(),
            metrics,
        };
        if let Some(email) = &config.email {
            let sender = mail::Mailer::new(email)?;
            notifier.add(Channel::Email, config.queue, move |e| {
                let sender = sender.clone();
                async move { sender.send(&e).await }
            });
        }
        if let Some(hook) = &config.webhook {
            let poster = webhook::Poster::new(hook)?;
            notifier.add(Channel::Webhook, config.queue, move |e| {
                let poster = poster.clone();
                async move { poster.send(&e).await }
            });
        }
        if let Some(hook) = &config.hook {
            let runner = hook::Runner::new(hook);
            notifier.add(Channel::Hook, config.queue, move |e| {
                let runner = runner.clone();
                async move { runner.run(&e).await }
            });
        }
        Ok(notifier)
    }

    /// Starts a channel's worker: it delivers the queued events one at a
    /// time and counts each outcome.
    fn add<F, Fut>(&mut self, channel: Channel, depth: usize, deliver: F)
    where
        F: Fn(Arc<Envelope>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send,
    {
        let (tx, mut rx) = mpsc::channel::<Arc<Envelope>>(depth);
        let metrics = self.metrics.clone();
        self.workers.push(tokio::spawn(async move {
            while let Some(envelope) = rx.recv().await {
                let event = envelope.event;
                match deliver(envelope).await {
                    Ok(()) => {
                        debug!(channel = channel.name(), event, "notification delivered");
                        metrics.notification(channel.name(), "sent");
                    }
                    Err(why) => {
                        warn!(channel = channel.name(), event, %why, "notification failed");
                        metrics.notification(channel.name(), "failed");
                    }
                }
            }
        }));
        self.queues.push((channel, tx));
    }

    /// Stops taking events and waits up to `within` for the ones queued
    /// (the release that ends a shutdown is worth telling); what is still
    /// undelivered then is given up, with a warning.
    pub async fn close(self, within: std::time::Duration) {
        drop(self.queues);
        let all = futures::future::join_all(self.workers);
        if tokio::time::timeout(within, all).await.is_err() {
            warn!(within = %humantime::format_duration(within), "notifications still undelivered at exit; given up");
        }
    }

    /// Is anyone listening for this kind of event?
    pub fn wants(&self, kind: EventKind) -> bool {
        !self.queues.is_empty() && self.events.contains(&kind)
    }

    /// Queues an event on every channel; never waits.
    pub fn send(&mut self, kind: EventKind, cause: &str, envelope: Envelope) {
        if !self.wants(kind) {
            return;
        }
        let now = Instant::now();
        let key = (kind, cause.to_owned());
        if self
            .sent
            .get(&key)
            .is_some_and(|t| now < crate::clock::later(*t, self.dedup_window))
        {
            debug!(
                event = kind.name(),
                cause, "already sent within the dedup window"
            );
            for (channel, _) in &self.queues {
                self.metrics.notification(channel.name(), "deduplicated");
            }
            return;
        }
        self.sent.insert(key, now);
        self.sent
            .retain(|_, t| now < crate::clock::later(*t, self.dedup_window));
        let envelope = Arc::new(envelope);
        for (channel, queue) in &self.queues {
            if queue.try_send(envelope.clone()).is_err() {
                warn!(
                    channel = channel.name(),
                    event = kind.name(),
                    "notification queue full; event dropped"
                );
                self.metrics.notification(channel.name(), "dropped");
            }
        }
    }
}

/// Retries `attempt` up to `retries` more times, waiting 0.5 s, 1 s, 2 s …
/// (at most 8 s) between tries; returns the last error.
async fn with_retries<F, Fut>(retries: u32, mut attempt: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut wait = std::time::Duration::from_millis(500);
    let mut last = String::new();
    for n in 0..=retries {
        match attempt().await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        if n < retries {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(std::time::Duration::from_secs(8));
        }
    }
    Err(format!("{last} (after {} attempts)", retries + 1))
}
