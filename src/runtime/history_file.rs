//! The console's history (timeline, events, last takeover) saved to a file
//! beside the state file, so that `understudy restart` and a restart of
//! the daemon keep it. The loop only marks the history changed; a task
//! takes the snapshot and writes it off the loop (serialising up to an
//! hour of samples, or a slow disk, never delays a heartbeat), once for
//! any number of marks that came meanwhile. Before an exec or an exit the
//! loop writes it itself, so that the next process finds the last word.
//! Writes take turns, and an older snapshot never replaces a newer one
//! already written.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::control::history::{History, SharedHistory};

/// One snapshot of the history, numbered in the order it was taken.
type Snapshot = (u64, Vec<u8>);

/// What the loop and the writer task share.
struct Shared {
    path: PathBuf,
    history: SharedHistory,
    /// Snapshots taken so far (each one's number).
    taken: AtomicU64,
    /// The number of the snapshot last written; held while writing.
    written: Mutex<u64>,
}

pub struct HistoryFile {
    shared: Arc<Shared>,
    changed: Arc<Notify>,
}

impl HistoryFile {
    /// Where the history of the node whose state file is `state_path` is
    /// kept: `/var/lib/understudy/state.json` → `state.history.json`.
    pub fn path_for(state_path: &Path) -> PathBuf {
        state_path.with_extension("history.json")
    }

    /// The history kept beside `state_path` by the last run, and its
    /// file, whose writer task starts now (on the current runtime).
    pub fn open(state_path: &Path) -> (SharedHistory, HistoryFile) {
        let path = HistoryFile::path_for(state_path);
        let history = Arc::new(Mutex::new(History::load(&path)));
        let shared = Arc::new(Shared {
            path,
            history: history.clone(),
            taken: AtomicU64::new(0),
            written: Mutex::new(0),
        });
        let changed = Arc::new(Notify::new());
        let (task, woken) = (shared.clone(), changed.clone());
        tokio::spawn(async move {
            loop {
                woken.notified().await;
                let shared = task.clone();
                let _ = tokio::task::spawn_blocking(move || shared.write(shared.snapshot())).await;
            }
        });
        (history, HistoryFile { shared, changed })
    }

    /// The history changed: it is saved soon, off the loop.
    pub fn save_later(&self) {
        self.changed.notify_one();
    }

    /// Saves `history` (the shared one, locked by the caller) now, before
    /// an exec or an exit, after a write under way.
    pub fn save_now(&self, history: &History) {
        let snapshot = (self.shared.next_number(), history.to_bytes());
        self.shared.write(snapshot);
    }
}

impl Shared {
    /// Numbers are taken under the history's lock, so that a higher one
    /// is always the newer content.
    fn next_number(&self) -> u64 {
        self.taken.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn snapshot(&self) -> Snapshot {
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        (self.next_number(), history.to_bytes())
    }

    /// Writes `snapshot` unless a newer one is on disk already.
    fn write(&self, (number, bytes): Snapshot) {
        let mut last = self.written.lock().unwrap_or_else(|p| p.into_inner());
        if number <= *last {
            return;
        }
        match crate::atomic_file::replace(&self.path, &bytes, 0o600) {
            Ok(()) => *last = number,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot save the history")
            }
        }
    }
}
