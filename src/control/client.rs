//! The CLI's side of the control socket: one request, one answer (the
//! other client, `config push` to a peer, is [`super::push_client`]).

use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::{Request, Response};

pub async fn call(socket: &Path, request: &Request) -> Result<Response, String> {
    let stream = UnixStream::connect(socket).await.map_err(|e| {
        format!(
            "cannot reach the daemon at {}: {e} (is it running? run as root; --socket PATH)",
            socket.display()
        )
    })?;
    let (read, mut write) = stream.into_split();
    let mut text = serde_json::to_string(request).map_err(|e| e.to_string())?;
    text.push('\n');
    write
        .write_all(text.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(read)
        .read_line(&mut line)
        .await
        .map_err(|e| format!("no answer from the daemon: {e}"))?;
    serde_json::from_str(line.trim()).map_err(|e| format!("unreadable answer from the daemon: {e}"))
}
