//! One mirror run: `rsync` over `ssh` from this node to one receiver.
//!
//! The command is built in one place ([`command`]) so that check-config can
//! show it and the tests can read it. What makes it safe to run against a
//! node that serves nobody but may have written files of its own:
//!
//! - `--delay-updates`: every changed file is written aside and renamed
//!   into place at the end, so a run cut short (the link, a timeout) leaves
//!   the receiver's previous copy usable, never half a file;
//! - `--backup --backup-dir`: on the first run after a move, whatever the
//!   run replaces or deletes on the receiver goes to a dated folder there
//!   instead of being lost;
//! - `ssh` with the configured key only, in batch mode, against pinned host
//!   keys (`StrictHostKeyChecking=yes`): no password prompt, and no host
//!   key is ever accepted unseen.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::config::Mirror;

/// How long ssh waits for the receiver to answer before the run fails.
const CONNECT_TIMEOUT_SECS: u64 = 10;

/// What a run moved, from rsync's `--stats` and `--itemize-changes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Regular files sent (new or changed).
    pub files: u64,
    /// Their bytes (before compression, as rsync counts them).
    pub bytes: u64,
    /// Files the run replaced or deleted on the receiver: with a backup
    /// folder, each of them is in it.
    pub replaced: u64,
    pub took: Duration,
}

/// One mirror towards one node, as status shows it.
#[derive(Debug, Clone, Default)]
pub struct Towards {
    pub mirror: String,
    pub node: String,
    pub last_success: Option<std::time::SystemTime>,
    /// The last successful run's figures.
    pub last: Option<Transfer>,
    /// Since when the runs to this node fail, and the last error.
    pub failing_since: Option<std::time::SystemTime>,
    pub error: Option<String>,
    /// The last run with a backup folder that kept files, and how many.
    pub backup: Option<(std::path::PathBuf, u64)>,
    /// The failure was told (`mirror_failing`); its end will be too.
    pub told: bool,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("cannot run rsync: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("no end within {} (the receiver keeps its previous copy)", humantime::format_duration(*.0))]
    TimedOut(Duration),
    /// rsync's exit code and the last line it wrote to stderr.
    #[error("rsync failed ({code}): {message}")]
    Failed { code: String, message: String },
}

/// The argument list of the run of `mirror` to `user@address`; with
/// `backup`, what the run replaces or deletes goes to that folder on the
/// receiver.
pub fn command(mirror: &Mirror, address: &str, backup: Option<&Path>) -> Vec<String> {
    let mut args: Vec<String> = [
        "rsync",
        "--archive",
        "--relative",
        "--delay-updates",
        "--itemize-changes",
        "--stats",
    ]
    .map(str::to_owned)
    .to_vec();
    args.push(format!("--timeout={}", mirror.timeout.as_secs().max(1)));
    if mirror.delete {
        // After the transfer, with the delayed updates: nothing is deleted
        // from a run that does not complete.
        args.push("--delete-delay".to_owned());
    }
    if let Some(folder) = backup {
        args.push("--backup".to_owned());
        args.push(format!("--backup-dir={}", folder.display()));
    }
    for pattern in &mirror.exclude {
        args.push(format!("--exclude={pattern}"));
    }
    args.push("-e".to_owned());
    args.push(format!(
        "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={} -o ConnectTimeout={CONNECT_TIMEOUT_SECS}",
        mirror.key.display(),
        mirror.known_hosts.display()
    ));
    args.extend(mirror.paths.iter().map(|p| p.display().to_string()));
    let host = if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_owned()
    };
    args.push(format!("{}@{host}:/", mirror.user));
    args
}

/// The argument list as a shell line an administrator can paste: each
/// argument with a space or a shell character in single quotes.
pub fn shown(args: &[String]) -> String {
    let quote = |a: &String| {
        let plain = a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@[],+%".contains(c));
        if plain && !a.is_empty() {
            a.clone()
        } else {
            format!("'{}'", a.replace('\'', "'\\''"))
        }
    };
    args.iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// The dated folder a run with backups uses on the receiver.
pub fn backup_folder(mirror: &Mirror, at: std::time::SystemTime) -> std::path::PathBuf {
    let stamp = humantime::format_rfc3339_seconds(at)
        .to_string()
        .replace(':', "");
    mirror.backup_dir.join(&mirror.name).join(stamp)
}

/// Runs `args` (from [`command`]) within `limit`; the process is killed
/// when the limit passes or the run is dropped.
pub async fn run(args: &[String], limit: Duration) -> Result<Transfer, MirrorError> {
    let started = Instant::now();
    let child = tokio::process::Command::new(&args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(MirrorError::Spawn)?;
    let output = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Err(_) => return Err(MirrorError::TimedOut(limit)),
        Ok(Err(e)) => return Err(MirrorError::Spawn(e)),
        Ok(Ok(output)) => output,
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    // 24: some source files vanished while the run read them (the
    // application deleted them): the rest was copied.
    let code = output.status.code();
    if !output.status.success() && code != Some(24) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = reason(&stderr);
        return Err(MirrorError::Failed {
            code: code.map_or_else(|| output.status.to_string(), |c| format!("exit {c}")),
            message,
        });
    }
    let mut transfer = parse(&stdout);
    transfer.took = started.elapsed();
    Ok(transfer)
}

/// The line of rsync's stderr that says why: ssh's own ("Connection
/// refused", "Host key verification failed", "Permission denied") rather
/// than rsync's generic last words about the connection it lost.
fn reason(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let generic = |l: &&str| {
        l.starts_with("rsync error:") || l.starts_with("rsync: connection unexpectedly closed")
    };
    lines
        .iter()
        .find(|l| !generic(l))
        .or(lines.last())
        .map_or_else(|| "no message".to_owned(), |l| (*l).to_owned())
}

/// Reads rsync's itemized changes and statistics.
pub fn parse(out: &str) -> Transfer {
    let number = |line: &str| -> u64 {
        let value = line.split(':').nth(1).unwrap_or("");
        let digits: String = value
            .trim()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .filter(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap_or(0)
    };
    let mut t = Transfer::default();
    for line in out.lines() {
        if line.starts_with("Number of regular files transferred:") {
            t.files = number(line);
        } else if line.starts_with("Total transferred file size:") {
            t.bytes = number(line);
        } else if line.starts_with("Number of deleted files:") {
            // The statistics count every deletion; the itemized lines of
            // a remote receiver's deletions may not all reach us.
            t.replaced += number(line);
        } else if let Some(flags) = line.strip_prefix(">f") {
            // `>f+++++++++` is a new file; any other `>f` line changed one.
            if !flags.starts_with("+++") {
                t.replaced += 1;
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirror() -> Mirror {
        Mirror {
            name: "data".into(),
            paths: vec!["/srv/app/data".into(), "/etc/app/app.conf".into()],
            exclude: vec!["*.tmp".into()],
            every: Duration::from_secs(60),
            delete: true,
            key: "/etc/understudy/mirror.key".into(),
            known_hosts: "/etc/understudy/mirror.known_hosts".into(),
            user: "root".into(),
            backup_dir: "/var/lib/understudy/mirror-backups".into(),
            timeout: Duration::from_secs(600),
            final_timeout: Duration::from_secs(30),
            alert_after: Duration::from_secs(600),
        }
    }

    #[test]
    fn the_command_pins_host_keys_delays_updates_and_backs_up_when_asked() {
        let m = mirror();
        let plain = command(&m, "192.0.2.12", None);
        assert_eq!(plain[0], "rsync");
        for arg in ["--delay-updates", "--delete-delay", "--exclude=*.tmp"] {
            assert!(plain.contains(&arg.to_owned()), "{plain:?}");
        }
        let ssh = &plain[plain.iter().position(|a| a == "-e").unwrap() + 1];
        assert!(ssh.contains("StrictHostKeyChecking=yes") && ssh.contains("BatchMode=yes"));
        assert!(ssh.contains("UserKnownHostsFile=/etc/understudy/mirror.known_hosts"));
        assert_eq!(plain.last().unwrap(), "root@192.0.2.12:/");
        assert!(!plain.iter().any(|a| a.starts_with("--backup")));
        let folder = Path::new("/var/lib/understudy/mirror-backups/data/x");
        let backed = command(&m, "2001:db8::12", Some(folder));
        assert!(backed.contains(&"--backup".to_owned()));
        assert!(backed.contains(&format!("--backup-dir={}", folder.display())));
        assert_eq!(backed.last().unwrap(), "root@[2001:db8::12]:/");
    }

    #[test]
    fn the_shown_command_can_be_pasted_into_a_shell() {
        let args: Vec<String> = ["rsync", "-e", "ssh -i /k", "--exclude=*.tmp", "it's"]
            .map(str::to_owned)
            .to_vec();
        assert_eq!(
            shown(&args),
            "rsync -e 'ssh -i /k' '--exclude=*.tmp' 'it'\\''s'"
        );
    }

    #[test]
    fn stats_and_itemized_changes_are_counted() {
        let out = ">f+++++++++ srv/app/data/new.txt\n>f.st...... srv/app/data/changed.txt\n*deleting   srv/app/data/old.txt\n\nNumber of files: 12 (reg: 10, dir: 2)\nNumber of deleted files: 1 (reg: 1)\nNumber of regular files transferred: 2\nTotal file size: 1,234,567 bytes\nTotal transferred file size: 12,345 bytes\n";
        let t = parse(out);
        assert_eq!((t.files, t.bytes, t.replaced), (2, 12_345, 2));
    }

    #[test]
    fn the_reason_is_ssh_s_own_line_not_rsync_s_generic_one() {
        let stderr = "ssh: connect to host 192.0.2.12 port 22: Connection refused\r\nrsync: connection unexpectedly closed (0 bytes received so far) [sender]\nrsync error: unexplained error (code 255) at io.c(232) [sender=3.2.7]\n";
        assert_eq!(
            reason(stderr),
            "ssh: connect to host 192.0.2.12 port 22: Connection refused"
        );
        assert_eq!(
            reason("rsync error: some error\n"),
            "rsync error: some error"
        );
        assert_eq!(reason(""), "no message");
    }

    #[test]
    fn a_backup_folder_is_dated_under_the_mirrors_name() {
        let at = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let folder = backup_folder(&mirror(), at);
        assert_eq!(
            folder,
            Path::new("/var/lib/understudy/mirror-backups/data/2027-01-15T080000Z")
        );
    }
}
