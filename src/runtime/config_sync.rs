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
use crate::control::push_client::{self, Push};
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
    let from = config.nodes[me].name.clone();
    let cluster_id = crate::proto::heartbeat::cluster_id(&config.cluster.name);
    let mut pushed = Pushed {
        answers: Vec::new(),
        unapplied: Vec::new(),
    };
    for peer in config.peers_of(me) {
        let push = Push {
            to: std::net::SocketAddr::new(peer.address, config.heartbeat.port),
            from: &from,
            cluster_id,
            key: &key,
            text,
        };
        let answer = match push_client::send(push).await {
            Ok(answer) if answer.ok => {
                if answer.not_applied {
                    pushed.unapplied.push(peer.name.clone());
                }
                info!(peer = %peer.name, answer = %answer.message, "configuration synced");
                format!("{}: {}", peer.name, answer.message)
            }
            Ok(answer) => {
                warn!(peer = %peer.name, answer = %answer.message, "configuration sync refused");
                format!("{}: refused: {}", peer.name, answer.message)
            }
            Err(why) => {
                warn!(peer = %peer.name, %why, "configuration sync failed");
                format!("{}: not reached: {why}", peer.name)
            }
        };
        pushed.answers.push(answer);
    }
    pushed
}

/// Records that this node holds a file it has not applied.
pub fn mark(pending: &SharedPending, me: &str, reasons: Vec<String>, others: Vec<String>) {
    let mut nodes = vec![me.to_owned()];
    nodes.extend(others);
    *pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(RestartToApply { reasons, nodes });
}
