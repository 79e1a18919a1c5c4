//! Replacing a file so that a reader sees the old one or the new one,
//! never half of either, and a crash right after leaves the new one: a
//! temporary file beside it (same directory, so the rename stays on one
//! file system), created with the mode the file must have, written,
//! synced, then renamed over it. Used for every file the daemon writes
//! (the key file, a pushed configuration, the state file, the role file).
//! A failure at any step (a full disk, a rename refused) removes the
//! temporary file: nothing half-written is left beside the real one.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes`, mode `mode`.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = write_then_rename(&tmp, path, bytes, mode);
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn write_then_rename(tmp: &Path, path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(tmp)?;
    // A temporary file left by an earlier attempt keeps its mode: set it.
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_replaced_whole_with_its_mode() {
        let dir = std::env::temp_dir().join(format!("understudy-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("heartbeat.key");
        std::fs::write(&path, "old").unwrap();
        replace(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!dir.join("heartbeat.key.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A step that fails (here the rename, onto a directory; on a full
    /// disk the write) leaves no temporary file and the old file as it was.
    #[test]
    fn a_failed_replace_leaves_nothing_behind() {
        let dir =
            std::env::temp_dir().join(format!("understudy-atomic-fail-{}", std::process::id()));
        let target = dir.join("understudy.toml");
        std::fs::create_dir_all(target.join("in-the-way")).unwrap();
        assert!(replace(&target, b"new", 0o644).is_err());
        assert!(
            !dir.join("understudy.toml.tmp").exists(),
            "the temporary file is left"
        );
        assert!(target.join("in-the-way").is_dir());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
