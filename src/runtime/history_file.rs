//! The console's history (timeline, events, last takeover) saved to a file
//! beside the state file, so that `understudy restart` and a restart of
//! the daemon keep it. The loop hands over a snapshot after each change and
//! a task writes the newest one off the loop (a slow disk never delays a
//! heartbeat); before an exec or an exit the loop writes it itself, so
//! that the next process finds the last word. Writes take turns, and an
//! older snapshot never replaces a newer one already written.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::control::history::{History, SharedHistory};

/// One snapshot of the history, numbered in the order it was taken.
type Snapshot = (u64, Vec<u8>);

pub struct HistoryFile {
    path: PathBuf,
    newest: watch::Sender<Option<Snapshot>>,
    taken: AtomicU64,
    /// The number of the snapshot last written; held while writing.
    written: Arc<Mutex<u64>>,
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
        (history, HistoryFile::start(path))
    }

    /// Starts the writer task (on the current runtime).
    fn start(path: PathBuf) -> HistoryFile {
        let (newest, mut changed) = watch::channel(None::<Snapshot>);
        let written = Arc::new(Mutex::new(0));
        let (at, turn) = (path.clone(), written.clone());
        tokio::spawn(async move {
            while changed.changed().await.is_ok() {
                let Some(snapshot) = changed.borrow_and_update().clone() else {
                    continue;
                };
                let (at, turn) = (at.clone(), turn.clone());
                let _ = tokio::task::spawn_blocking(move || write(&at, &turn, snapshot)).await;
            }
        });
        HistoryFile {
            path,
            newest,
            taken: AtomicU64::new(0),
            written,
        }
    }

    fn snapshot(&self, history: &History) -> Snapshot {
        (
            self.taken.fetch_add(1, Ordering::SeqCst) + 1,
            history.to_bytes(),
        )
    }

    /// Saves `history` soon, off the loop (only the newest snapshot is
    /// written when several come quickly).
    pub fn save_later(&self, history: &History) {
        self.newest.send_replace(Some(self.snapshot(history)));
    }

    /// Saves `history` now (before an exec or an exit), after a write
    /// under way.
    pub fn save_now(&self, history: &History) {
        write(&self.path, &self.written, self.snapshot(history));
    }
}

/// Writes `snapshot` unless a newer one is on disk already.
fn write(path: &Path, written: &Mutex<u64>, (number, bytes): Snapshot) {
    let mut last = written.lock().unwrap_or_else(|p| p.into_inner());
    if number <= *last {
        return;
    }
    match crate::atomic_file::replace(path, &bytes, 0o600) {
        Ok(()) => *last = number,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot save the history")
        }
    }
}
