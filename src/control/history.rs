//! What the console shows of the past: the last hour of each node's status
//! and of who held the common IP (a sample whenever one of them changes),
//! the last events (the same as the notifications, whether or not a
//! channel sends them), and the last takeover in the cluster (this node's,
//! or a peer's seen from here). Kept by the event loop, read by the HTTP
//! API and status; the rings are small, so a node that runs for months
//! holds no more than this. It is saved to a file beside the state file
//! (see [`History::load`]) so that `understudy restart` and a restart of
//! the daemon keep it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// How far back the timeline goes.
pub const WINDOW: Duration = Duration::from_secs(3600);
/// Samples kept at most (a flapping pair changes often; the ring bounds it).
const MAX_SAMPLES: usize = 2000;
/// Events kept at most.
const MAX_EVENTS: usize = 100;

/// One moment of the pair: each node's status word, the holder, and what
/// the local node judges failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub id: u64,
    pub at_ms: u64,
    pub kind: String,
    pub cause: String,
    pub term: u64,
    pub duration_ms: Option<f64>,
}

/// The last takeover in the cluster as this node knows it: its own, with
/// its cause and duration, or a peer's, seen as the holder with a higher
/// term (its cause is in that node's own status).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastTakeover {
    pub node: String,
    pub at_ms: u64,
    pub cause: String,
    /// Decision to application healthy; known for this node's own only.
    pub duration_ms: Option<f64>,
    pub term: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct History {
    samples: VecDeque<Sample>,
    events: VecDeque<Entry>,
    next_id: u64,
    #[serde(default)]
    last_takeover: Option<LastTakeover>,
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

    /// A takeover, this node's or a peer's: kept unless an older term.
    pub fn took_over(&mut self, takeover: LastTakeover) {
        if self
            .last_takeover
            .as_ref()
            .is_none_or(|last| takeover.term >= last.term)
        {
            self.last_takeover = Some(takeover);
        }
    }

    pub fn last_takeover(&self) -> Option<&LastTakeover> {
        self.last_takeover.as_ref()
    }

    /// The history saved at `path` by an earlier run (the same daemon
    /// before `understudy restart`, or before it was stopped); an empty
    /// one when there is none or it cannot be read (said in the log: the
    /// past is lost, nothing else).
    pub fn load(path: &std::path::Path) -> History {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return History::default(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the saved history; starting without it");
                return History::default();
            }
        };
        serde_json::from_slice(&text).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "the saved history is not readable; starting without it");
            History::default()
        })
    }

    /// This history as the bytes [`History::load`] reads.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
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

    fn takeover(node: &str, term: u64) -> LastTakeover {
        LastTakeover {
            node: node.into(),
            at_ms: 1_000 * term,
            cause: format!("cause {term}"),
            duration_ms: Some(12.0),
            term,
        }
    }

    #[test]
    fn the_history_survives_a_save_and_a_load() {
        let mut history = History::default();
        history.sample(at(1, "m1"));
        history.event("takeover", "why".into(), 2, None);
        history.took_over(takeover("m1", 2));
        let path =
            std::env::temp_dir().join(format!("understudy-history-{}.json", std::process::id()));
        crate::atomic_file::replace(&path, &history.to_bytes(), 0o600).unwrap();
        let mut loaded = History::load(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(loaded.samples(), history.samples());
        assert_eq!(loaded.events_after(0).len(), 1);
        assert_eq!(loaded.last_takeover(), Some(&takeover("m1", 2)));
        // Numbering goes on where it stopped: a stream sends nothing twice.
        loaded.event("release", "why".into(), 2, None);
        assert_eq!(loaded.events_after(1).len(), 1);
    }

    #[test]
    fn a_missing_or_unreadable_file_is_an_empty_history() {
        let missing = std::env::temp_dir().join("understudy-no-such-history.json");
        assert!(History::load(&missing).last_takeover().is_none());
        let garbage =
            std::env::temp_dir().join(format!("understudy-garbage-{}.json", std::process::id()));
        std::fs::write(&garbage, b"{not json").unwrap();
        let loaded = History::load(&garbage);
        std::fs::remove_file(&garbage).unwrap();
        assert!(loaded.samples().is_empty() && loaded.last_takeover().is_none());
    }

    #[test]
    fn the_last_takeover_is_the_highest_term() {
        let mut history = History::default();
        history.took_over(takeover("m1", 3));
        history.took_over(takeover("m2", 2));
        assert_eq!(history.last_takeover().map(|t| t.node.as_str()), Some("m1"));
        history.took_over(takeover("m2", 4));
        assert_eq!(history.last_takeover().map(|t| t.node.as_str()), Some("m2"));
    }

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
