//! The fence command (`[fencing] fence`): run with `sh -c` before a claim
//! from a silent peer, with the peer in its environment, killed if it
//! outlives its timeout. It must exit 0 only once the peer's host is off
//! (or cut from the network the clients use).

use std::process::Stdio;
use std::time::Instant;

use tokio::process::Command;
use tracing::info;

use crate::config::FenceCommand;

/// The peer to fence, as the command's environment names it.
pub struct Target<'a> {
    pub cluster: &'a str,
    pub node: &'a str,
    pub peer: &'a str,
    pub peer_address: String,
    /// The peer's last known term (its lease's, with a witness).
    pub term: u64,
}

/// How many of the command's last output lines an error carries.
const TAIL: usize = 5;

/// Runs the fence command; `Ok` only if it exited 0 within its timeout.
pub async fn run(fence: &FenceCommand, t: &Target<'_>) -> Result<(), String> {
    let began = Instant::now();
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(&fence.command)
        .env("UNDERSTUDY_CLUSTER", t.cluster)
        .env("UNDERSTUDY_NODE", t.node)
        .env("UNDERSTUDY_PEER", t.peer)
        .env("UNDERSTUDY_PEER_ADDRESS", &t.peer_address)
        .env("UNDERSTUDY_TERM", t.term.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let out = tokio::time::timeout(fence.timeout, child.wait_with_output())
        .await
        .map_err(|_| format!("timed out after {:?} (killed)", fence.timeout))?
        .map_err(|e| e.to_string())?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(TAIL)..].join(" | ");
    info!(
        peer = t.peer,
        status = %out.status,
        ms = began.elapsed().as_millis() as u64,
        output = %crate::terminal::harmless_line(&tail),
        "fence command ran"
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}: {tail}", out.status))
    }
}
