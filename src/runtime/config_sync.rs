//! `cluster.sync_config`: the configuration stays identical on every node
//! by itself. An accepted reload pushes the file to the other nodes
//! (signed, as `understudy config push` does), which apply it too; a
//! change that needs a restart is still written on every node (the
//! previous file kept as `.bak`), and each node's status says that it
//! must restart to apply it, and which other nodes wrote it too.

use std::sync::{Arc, Mutex};

use tracing::{info, warn};

use super::wire::SharedKeys;
use crate::config::Config;
use crate::control::push_client;
use crate::control::report::RestartToApply;

/// A file written but not applied, as status shows it: why a restart is
/// needed, and the nodes known to hold it unapplied (this one first).
pub type SharedPending = Arc<Mutex<Option<RestartToApply>>>;

/// What each peer answered to a push, in words, and the peers that wrote
/// the file without applying it (it needs their restart).
pub struct Pushed {
    pub answers: Vec<String>,
    pub unapplied: Vec<String>,
}

/// Pushes `text` to every other node of `config`, signed with this node's
/// sending key.
pub async fn push_to_peers(config: &Config, me: usize, keys: &SharedKeys, text: &str) -> Pushed {
    let key = keys
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .sending()
        .secret
        .clone();
    let mut pushed = Pushed {
        answers: Vec::new(),
        unapplied: Vec::new(),
    };
    for (peer, answer) in push_client::to_peers(config, me, &key, text).await {
        let said = match answer {
            Ok(answer) if answer.ok => {
                if answer.not_applied {
                    pushed.unapplied.push(peer.clone());
                }
                info!(%peer, answer = %answer.message, "configuration synced");
                format!("{peer}: {}", answer.message)
            }
            Ok(answer) => {
                warn!(%peer, answer = %answer.message, "configuration sync refused");
                format!("{peer}: refused: {}", answer.message)
            }
            Err(why) => {
                warn!(%peer, %why, "configuration sync failed");
                format!("{peer}: not reached: {why}")
            }
        };
        pushed.answers.push(said);
    }
    pushed
}

/// Records that this node holds a file it has not applied.
pub fn mark(pending: &SharedPending, me: &str, reasons: Vec<String>, others: Vec<String>) {
    let mut nodes = vec![me.to_owned()];
    nodes.extend(others);
    *pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(RestartToApply { reasons, nodes });
}
