//! The role file: one word, `active` or `passive`, that the application can
//! read to know whether this node serves (an application can then run
//! read-only while Passive). Rewritten atomically whenever it changes.

use std::path::PathBuf;

use tracing::warn;

pub struct RoleFile {
    path: Option<PathBuf>,
    written: Option<&'static str>,
}

impl RoleFile {
    pub fn new(path: Option<PathBuf>) -> Self {
        RoleFile {
            path,
            written: None,
        }
    }

    /// Writes `active` while this node holds (or is taking) the VIP,
    /// `passive` otherwise; only when the word changes.
    pub fn update(&mut self, holding: bool) {
        let Some(path) = &self.path else { return };
        let word = if holding { "active" } else { "passive" };
        if self.written == Some(word) {
            return;
        }
        match crate::atomic_file::replace(path, format!("{word}\n").as_bytes(), 0o644) {
            Ok(()) => self.written = Some(word),
            Err(e) => warn!(path = %path.display(), error = %e, "cannot write the role file"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_word_on_change() {
        let path = std::env::temp_dir().join(format!("understudy-role-{}", std::process::id()));
        let mut f = RoleFile::new(Some(path.clone()));
        f.update(false);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "passive\n");
        f.update(true);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "active\n");
        let _ = std::fs::remove_file(path);
    }
}
