//! The receiving side of `understudy config push` (the exchange is in
//! [`crate::proto::push`]): a TCP listener on this node's heartbeat port
//! that talks only to the peer's address, one push at a time. A push whose
//! tag no key of ours made, from another node, or too large is refused
//! before its file is read as a configuration; an authentic one goes to
//! the reloader, which checks it as a reload would, writes it (keeping the
//! previous file as `.bak`) and applies it, or refuses it whole.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use super::reload::Reloader;
use super::wire::SharedKeys;
use crate::control::server::refuse;
use crate::proto::push;

/// How long the sender may take to send its request.
const READ_DEADLINE: Duration = Duration::from_secs(5);

/// Who may push, and how a push is checked and applied.
pub struct Receiver {
    /// Every peer's address and name: any of them may push.
    pub peers: Vec<(IpAddr, String)>,
    pub cluster_id: u64,
    pub keys: SharedKeys,
    pub reloader: Arc<Reloader>,
}

impl Receiver {
    pub async fn serve(self, listener: TcpListener) {
        loop {
            let (stream, from) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "config push: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some((_, name)) = self.peers.iter().find(|(a, _)| *a == from.ip()) else {
                debug!(%from, "config push: not a peer's address; closed");
                continue;
            };
            // One at a time: a push reloads, and two would race.
            if let Err(e) = self.handle(stream, name).await {
                debug!(error = %e, "config push: connection ended");
            }
        }
    }

    async fn handle(&self, stream: TcpStream, peer: &str) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut nonce = [0u8; 32];
        if getrandom::getrandom(&mut nonce).is_err() {
            return Ok(());
        }
        write.write_all(push::challenge(&nonce).as_bytes()).await?;
        let received = tokio::time::timeout(READ_DEADLINE, self.receive(read, &nonce, peer)).await;
        let answer = match received {
            Err(_) => refuse("no complete push within 5 s"),
            Ok(Err(why)) => {
                warn!(%peer, %why, "config push refused");
                refuse(&format!("push refused: {why}"))
            }
            Ok(Ok(text)) => {
                info!(%peer, bytes = text.len(), "config push received");
                let who = format!("push from {peer}");
                self.reloader.clone().push(text, who).await
            }
        };
        let mut line = serde_json::to_string(&answer).unwrap_or_else(|_| "{}".into());
        line.push('\n');
        write.write_all(line.as_bytes()).await?;
        write.shutdown().await
    }

    /// Reads and authenticates one push; its file as text.
    async fn receive(
        &self,
        read: tokio::net::tcp::OwnedReadHalf,
        nonce: &push::Nonce,
        peer: &str,
    ) -> Result<String, String> {
        let mut read = BufReader::new(read.take((push::MAX_LINE + push::MAX_FILE) as u64));
        let mut line = String::new();
        let mut head = (&mut read).take(push::MAX_LINE as u64);
        head.read_line(&mut line)
            .await
            .map_err(|e| format!("cannot read the request: {e}"))?;
        let (from, len, tag) = push::parse_request(&line)?;
        if from != peer {
            return Err(format!("it names {from:?}, not the peer {peer:?}"));
        }
        let mut body = vec![0u8; len];
        read.read_exact(&mut body)
            .await
            .map_err(|e| format!("the file ended early: {e}"))?;
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
        let accepted = keys.accepted().map(|k| k.secret.as_slice());
        if !push::verify(accepted, self.cluster_id, nonce, &from, &body, &tag) {
            return Err("it is not signed with a heartbeat key this node accepts".into());
        }
        String::from_utf8(body).map_err(|_| "the file is not UTF-8 text".into())
    }
}
