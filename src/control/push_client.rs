//! The sending side of `understudy config push` (the exchange is in
//! [`crate::proto::push`]): connects to the peer's heartbeat port over TCP,
//! answers its challenge with the file and its tag, and returns the peer's
//! answer. Every step has a deadline.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::Response;
use crate::proto::push;

/// How long the whole exchange may take (the peer reloads before it answers).
const DEADLINE: Duration = Duration::from_secs(15);

/// What the push is: who sends, for which cluster, with which key.
pub struct Push<'a> {
    pub to: SocketAddr,
    pub from: &'a str,
    pub cluster_id: u64,
    pub key: &'a [u8],
    pub text: &'a str,
}

/// Pushes `text` to every other node of `config` in turn, as node `me`
/// signing with `key`: each peer's name and its answer, or why the
/// exchange failed (one that fails does not stop the others).
pub async fn to_peers(
    config: &crate::config::Config,
    me: usize,
    key: &[u8],
    text: &str,
) -> Vec<(String, Result<Response, String>)> {
    let cluster_id = crate::proto::heartbeat::cluster_id(&config.cluster.name);
    let mut answers = Vec::new();
    for peer in config.peers_of(me) {
        let push = Push {
            to: SocketAddr::new(peer.address, config.heartbeat.port),
            from: &config.nodes[me].name,
            cluster_id,
            key,
            text,
        };
        answers.push((peer.name.clone(), send(push).await));
    }
    answers
}

/// Sends the file; `Err` when the exchange itself failed (the peer's
/// refusal is an `Ok` answer with `ok: false`).
pub async fn send(p: Push<'_>) -> Result<Response, String> {
    tokio::time::timeout(DEADLINE, exchange(p))
        .await
        .map_err(|_| {
            format!(
                "the peer did not answer within {}",
                humantime::format_duration(DEADLINE)
            )
        })?
}

async fn exchange(p: Push<'_>) -> Result<Response, String> {
    let stream = TcpStream::connect(p.to)
        .await
        .map_err(|e| format!("cannot connect to the peer at {} (tcp): {e}", p.to))?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read.take((push::MAX_LINE * 64) as u64));
    let mut line = String::new();
    read.read_line(&mut line)
        .await
        .map_err(|e| format!("reading the peer's greeting: {e}"))?;
    let nonce = push::parse_challenge(&line)?;
    let tag = push::tag(p.key, p.cluster_id, &nonce, p.from, p.text.as_bytes());
    let mut request = push::request(p.from, p.text.len(), &tag).into_bytes();
    request.extend_from_slice(p.text.as_bytes());
    write
        .write_all(&request)
        .await
        .map_err(|e| format!("sending the file: {e}"))?;
    let mut answer = String::new();
    read.read_line(&mut answer)
        .await
        .map_err(|e| format!("reading the peer's answer: {e}"))?;
    serde_json::from_str(answer.trim()).map_err(|e| {
        format!(
            "the peer's answer is not understood ({e}): {:?}",
            answer.trim()
        )
    })
}
