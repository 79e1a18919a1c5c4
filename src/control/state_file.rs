//! The administrator's settings that survive a restart (Disabled,
//! maintenance), kept as a small JSON file written atomically.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persisted {
    pub disabled: bool,
    pub maintenance: bool,
}

/// Reads the file; a missing file means the defaults. A file that cannot
/// be parsed is an error: silently enabling a node its administrator
/// disabled would be worse than not starting.
pub fn load(path: &Path) -> Result<Persisted, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            serde_json::from_str(&text).map_err(|e| format!("state file {}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Persisted::default()),
        Err(e) => Err(format!("state file {}: {e}", path.display())),
    }
}

/// Writes through a temporary file and a rename, so a crash leaves the old
/// or the new contents, never half of one.
pub fn save(path: &Path, state: Persisted) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("state file {}: {e}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let text = serde_json::to_string(&state).map_err(|e| e.to_string())?;
    crate::atomic_file::replace(path, (text + "\n").as_bytes(), 0o644).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_missing_and_corrupt() {
        let dir = std::env::temp_dir().join(format!("understudy-state-{}", std::process::id()));
        let path = dir.join("state.json");
        assert_eq!(load(&path), Ok(Persisted::default()));
        let s = Persisted {
            disabled: true,
            maintenance: false,
        };
        save(&path, s).unwrap();
        assert_eq!(load(&path), Ok(s));
        std::fs::write(&path, "{not json").unwrap();
        assert!(load(&path).unwrap_err().contains("state file"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
