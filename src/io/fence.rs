//! The fence command (`[fencing] fence`): run with `sh -c` before a claim
//! from a silent peer, with the peer in its environment, killed if it
//! outlives its timeout. It must exit 0 only once the peer's host is off
//! (or cut from the network the clients use).

use std::time::Instant;

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

/// Runs the fence command; `Ok` only if it exited 0 within its timeout.
pub async fn run(fence: &FenceCommand, t: &Target<'_>) -> Result<(), String> {
    let began = Instant::now();
    let vars = [
        ("UNDERSTUDY_CLUSTER", t.cluster.to_owned()),
        ("UNDERSTUDY_NODE", t.node.to_owned()),
        ("UNDERSTUDY_PEER", t.peer.to_owned()),
        ("UNDERSTUDY_PEER_ADDRESS", t.peer_address.clone()),
        ("UNDERSTUDY_TERM", t.term.to_string()),
    ];
    let (status, tail) = crate::io::shell::run(&fence.command, &vars, fence.timeout).await?;
    info!(
        peer = t.peer,
        %status,
        ms = began.elapsed().as_millis() as u64,
        output = %crate::terminal::harmless_line(&tail),
        "fence command ran"
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("{status}: {tail}"))
    }
}
