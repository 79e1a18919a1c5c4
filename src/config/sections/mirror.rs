//! `[[mirror]]`: the application's files the holder copies to every other
//! node that is up, with rsync over SSH. Each section names its paths
//! (absolute; a directory or a file, copied to the same path on the
//! receiver), the patterns it leaves out, how often it runs, whether
//! deletions propagate, the SSH key and the pinned host keys, and where the
//! receiver keeps what a first run after a move replaces.

use std::path::PathBuf;
use std::time::Duration;

use super::super::check::Checker;
use super::super::locate::Seg;
use super::super::raw::RawMirror;
use super::super::Mirror;

const DEFAULT_EVERY: Duration = Duration::from_secs(60);
const DEFAULT_USER: &str = "root";
const DEFAULT_BACKUP_DIR: &str = "/var/lib/understudy/mirror-backups";
/// One run's limit: a first copy of a large tree takes minutes.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// The final pass of a planned move, with the application stopped: only
/// the changes since the pass before it.
const DEFAULT_FINAL_TIMEOUT: Duration = Duration::from_secs(30);
/// A mirror failing this long is told (once), and its recovery.
const DEFAULT_ALERT_AFTER: Duration = Duration::from_secs(600);

/// Every `[[mirror]]` section, checked.
pub(in crate::config) fn mirrors(ck: &mut Checker, raw: &[RawMirror]) -> Vec<Mirror> {
    let mut out: Vec<Mirror> = Vec::new();
    for (i, m) in raw.iter().enumerate() {
        let Some(mirror) = mirror(ck, i, m) else {
            continue;
        };
        if out.iter().any(|o| o.name == mirror.name) {
            ck.report(
                &[Seg::Key("mirror"), Seg::Index(i), Seg::Key("name")],
                format!(
                    "{:?} names another [[mirror]] too; names must differ",
                    mirror.name
                ),
            );
            continue;
        }
        out.push(mirror);
    }
    out
}

fn mirror(ck: &mut Checker, i: usize, m: &RawMirror) -> Option<Mirror> {
    let k = |key| [Seg::Key("mirror"), Seg::Index(i), Seg::Key(key)];
    let name = name(ck, &k("name"), m.name.as_deref());
    let paths = paths(ck, &k("paths"), m.paths.as_deref());
    let exclude = m.exclude.clone().unwrap_or_default();
    if exclude.iter().any(|p| p.trim().is_empty()) {
        ck.report(&k("exclude"), "holds an empty pattern");
    }
    let every = ck.duration(&m.every, &k("every"), DEFAULT_EVERY);
    if every < Duration::from_secs(1) {
        ck.report(&k("every"), "must be at least 1s");
    }
    let key = absolute(ck, &k("key"), m.key.as_deref(), true);
    let known_hosts = absolute(ck, &k("known_hosts"), m.known_hosts.as_deref(), true);
    let backup_dir = absolute(
        ck,
        &k("backup_dir"),
        Some(m.backup_dir.as_deref().unwrap_or(DEFAULT_BACKUP_DIR)),
        false,
    );
    let user = m.user.as_deref().unwrap_or(DEFAULT_USER).trim().to_owned();
    if !plain_word(&user) {
        ck.report(&k("user"), format!("{user:?} is not a user name"));
    }
    let timeout = ck.duration(&m.timeout, &k("timeout"), DEFAULT_TIMEOUT);
    let final_timeout = ck.duration(&m.final_timeout, &k("final_timeout"), DEFAULT_FINAL_TIMEOUT);
    for (key, value) in [("timeout", timeout), ("final_timeout", final_timeout)] {
        if value.is_zero() {
            ck.report(&k(key), "must be longer than 0s");
        }
    }
    let alert_after = ck.duration(&m.alert_after, &k("alert_after"), DEFAULT_ALERT_AFTER);
    Some(Mirror {
        name: name?,
        paths: paths?,
        exclude,
        every,
        delete: m.delete.unwrap_or(false),
        key: key?,
        known_hosts: known_hosts?,
        user,
        backup_dir: backup_dir?,
        timeout,
        final_timeout,
        alert_after,
    })
}

/// Letters, digits, `-`, `_` and `.`: safe in a folder name and a command.
fn plain_word(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(['-', '.'])
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn name(ck: &mut Checker, path: &[Seg], value: Option<&str>) -> Option<String> {
    let Some(name) = value.map(str::trim) else {
        ck.report(path, "is required");
        return None;
    };
    if !plain_word(name) {
        ck.report(
            path,
            format!("{name:?} is not a plain name; use letters, digits, '-', '_' or '.'"),
        );
        return None;
    }
    Some(name.to_owned())
}

fn paths(ck: &mut Checker, path: &[Seg], value: Option<&[String]>) -> Option<Vec<PathBuf>> {
    let Some(list) = value.filter(|l| !l.is_empty()) else {
        ck.report(
            path,
            "is required: the directories or files to copy, e.g. [\"/srv/helpdesk/data\"]",
        );
        return None;
    };
    let mut out = Vec::new();
    for text in list {
        let p = PathBuf::from(text.trim());
        let why = if !p.is_absolute() {
            Some("is not an absolute path")
        } else if p.components().count() < 2 {
            Some("is the whole file system; name the application's folders")
        } else if p
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            Some("holds '..'; write the path itself")
        } else {
            None
        };
        match why {
            Some(why) => ck.report(path, format!("{} {why}", p.display())),
            None => out.push(p),
        }
    }
    (out.len() == list.len()).then_some(out)
}

/// An absolute path; `file`: one whose permissions matter (the key).
fn absolute(ck: &mut Checker, path: &[Seg], value: Option<&str>, file: bool) -> Option<PathBuf> {
    let Some(text) = value.map(str::trim) else {
        ck.report(path, "is required");
        return None;
    };
    let p = PathBuf::from(text);
    if !p.is_absolute() {
        ck.report(path, format!("{} is not an absolute path", p.display()));
        return None;
    }
    if file && text.ends_with('/') {
        ck.report(
            path,
            format!("{} names a folder; name the file", p.display()),
        );
        return None;
    }
    // It goes into ssh's command line, which rsync splits at spaces.
    if file && text.contains(|c: char| c.is_whitespace() || "'\"\\".contains(c)) {
        ck.report(
            path,
            format!(
                "{} holds a space or a quote; use a path without them",
                p.display()
            ),
        );
        return None;
    }
    Some(p)
}
