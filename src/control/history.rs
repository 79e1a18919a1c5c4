//! What the console shows of the past: the last hour of each node's status
//! and of who held the common IP (a sample whenever one of them changes),
//! and the last events (the same as the notifications, whether or not a
//! channel sends them). Kept by the event loop, read by the HTTP API; both
//! are small rings, so a node that runs for months holds no more than this.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// How far back the timeline goes.
pub const WINDOW: Duration = Duration::from_secs(3600);
/// Samples kept at most (a flapping pair changes often; the ring bounds it).
const MAX_SAMPLES: usize = 2000;
/// Events kept at most.
const MAX_EVENTS: usize = 100;

/// One moment of the pair: each node's status word, the holder, and what
/// the local node judges failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// (node, status) in the configuration's order.
    pub nodes: Vec<(String, String)>,
    pub holder: Option<String>,
    /// Why the peer counts as failing, as this node judges it.
    pub failing: Option<String>,
}

/// One event, numbered so that a stream sends each once.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: u64,
    pub at_ms: u64,
    pub kind: String,
    pub cause: String,
    pub term: u64,
    pub duration_ms: Option<f64>,
}

#[derive(Debug, Default)]
pub struct History {
    samples: VecDeque<Sample>,
    events: VecDeque<Entry>,
    next_id: u64,
}

pub type SharedHistory = Arc<Mutex<History>>;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl History {
    /// Records `sample` if anything but its time differs from the last.
    pub fn sample(&mut self, sample: Sample) {
        let same = self.samples.back().is_some_and(|last| {
            last.nodes == sample.nodes
                && last.holder == sample.holder
                && last.failing == sample.failing
        });
        if same {
            return;
        }
        let horizon = sample.at_ms.saturating_sub(WINDOW.as_millis() as u64);
        // Keep one sample older than the window: it says how the hour began.
        while self.samples.len() > 1 && self.samples[1].at_ms < horizon {
            self.samples.pop_front();
        }
        if self.samples.len() >= MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    pub fn event(&mut self, kind: &str, cause: String, term: u64, duration: Option<Duration>) {
        self.next_id += 1;
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(Entry {
            id: self.next_id,
            at_ms: now_ms(),
            kind: kind.to_owned(),
            cause,
            term,
            duration_ms: duration.map(crate::core::millis),
        });
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples_after(0)
    }

    /// The samples taken after `at_ms`, oldest first (by the wall clock,
    /// which may step: each is tested, no order is assumed).
    pub fn samples_after(&self, at_ms: u64) -> Vec<Sample> {
        self.samples
            .iter()
            .filter(|s| s.at_ms > at_ms)
            .cloned()
            .collect()
    }

    /// Events newer than `after` (an id), newest first.
    pub fn events_after(&self, after: u64) -> Vec<Entry> {
        self.events
            .iter()
            .rev()
            .filter(|e| e.id > after)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, holder: &str) -> Sample {
        Sample {
            at_ms: ms,
            nodes: vec![("m1".into(), "Active".into())],
            holder: Some(holder.into()),
            failing: None,
        }
    }

    #[test]
    fn only_changes_are_kept_and_the_hour_is_a_window() {
        let mut h = History::default();
        h.sample(at(1_000, "m1"));
        h.sample(at(2_000, "m1"));
        assert_eq!(h.samples().len(), 1, "no change, no sample");
        h.sample(at(3_000, "m2"));
        let late = 3_000 + WINDOW.as_millis() as u64 + 10_000;
        h.sample(at(late, "m1"));
        let kept: Vec<u64> = h.samples().iter().map(|s| s.at_ms).collect();
        assert_eq!(kept, [3_000, late], "one sample before the window stays");
        assert_eq!(h.samples_after(3_000).len(), 1);
    }

    #[test]
    fn events_are_numbered_newest_first_and_bounded() {
        let mut h = History::default();
        for i in 0..150 {
            h.event("takeover", format!("cause {i}"), 1, None);
        }
        let all = h.events_after(0);
        assert_eq!(all.len(), MAX_EVENTS);
        assert_eq!(all[0].id, 150);
        assert_eq!(h.events_after(148).len(), 2);
    }
}
