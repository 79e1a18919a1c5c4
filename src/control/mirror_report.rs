//! The mirrors as status shows them: one entry per mirror and receiving
//! node (last success and its age, what the last run moved, how long it
//! took, the last error and since when, the last backup folder), and the
//! lines under the status table.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::io::mirror::Towards;

/// One mirror towards one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MirrorReport {
    pub mirror: String,
    pub node: String,
    /// RFC 3339, UTC; null before the first success.
    pub last_success: Option<String>,
    pub last_success_age_s: Option<u64>,
    pub files: Option<u64>,
    pub bytes: Option<u64>,
    pub duration_ms: Option<u64>,
    pub error: Option<String>,
    pub failing_for_s: Option<u64>,
    /// The last run that kept replaced files: its folder on the receiver,
    /// and how many files it holds.
    pub backup: Option<String>,
    pub backed_up_files: Option<u64>,
}

pub fn reports(state: &[Towards]) -> Vec<MirrorReport> {
    let now = SystemTime::now();
    let age = |t: SystemTime| now.duration_since(t).unwrap_or_default().as_secs();
    state
        .iter()
        .map(|t| MirrorReport {
            mirror: t.mirror.clone(),
            node: t.node.clone(),
            last_success: t
                .last_success
                .map(|at| humantime::format_rfc3339_seconds(at).to_string()),
            last_success_age_s: t.last_success.map(age),
            files: t.last.map(|l| l.files),
            bytes: t.last.map(|l| l.bytes),
            duration_ms: t.last.map(|l| l.took.as_millis() as u64),
            error: t.error.clone(),
            failing_for_s: t.failing_since.map(age),
            backup: t.backup.as_ref().map(|(p, _)| p.display().to_string()),
            backed_up_files: t.backup.as_ref().map(|(_, n)| *n),
        })
        .collect()
}

/// One line per mirror and node, under the table.
pub fn line(m: &MirrorReport) -> String {
    let mut line = format!("Mirror {} to {}: ", m.mirror, m.node);
    match (&m.last_success_age_s, &m.error) {
        (_, Some(error)) => line.push_str(&format!(
            "failing for {}s: {error}",
            m.failing_for_s.unwrap_or(0)
        )),
        (Some(age), None) => line.push_str(&format!(
            "ok {age}s ago ({} files, {} bytes in {} ms)",
            m.files.unwrap_or(0),
            m.bytes.unwrap_or(0),
            m.duration_ms.unwrap_or(0)
        )),
        (None, None) => line.push_str("not run yet"),
    }
    if let (Some(folder), Some(n)) = (&m.backup, m.backed_up_files) {
        line.push_str(&format!("; {n} replaced file(s) kept in {folder} there"));
    }
    line
}
