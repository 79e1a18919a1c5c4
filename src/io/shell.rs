//! One administrator's command through `sh -c`, with variables in its
//! environment and a time limit: what the notification hooks and the
//! fence command share. The command is killed when the limit passes.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::Command;

/// How many of the command's last output lines are kept.
const TAIL: usize = 5;

/// Runs `cmd` with `vars` set; its exit status and its last output lines
/// (stdout, then stderr) joined with " | ". `Err` if it could not run or
/// outlived `timeout`.
pub async fn run(
    cmd: &str,
    vars: &[(&str, String)],
    timeout: Duration,
) -> Result<(ExitStatus, String), String> {
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run: {e}"))?;
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| format!("timed out after {timeout:?} (killed)"))?
        .map_err(|e| e.to_string())?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text.lines().collect();
    Ok((
        out.status,
        lines[lines.len().saturating_sub(TAIL)..].join(" | "),
    ))
}
