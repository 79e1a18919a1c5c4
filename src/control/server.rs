//! The control socket: a Unix stream socket, mode 0600, that takes one JSON
//! request per connection and answers with one JSON line. Requests are
//! handed to the event loop, which answers from the core itself; a
//! `restart` is first checked here (off the loop, which must keep
//! heartbeating while the new binary reads the configuration).

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::limits::{Limiter, CONTROL_CONNECTIONS};
use super::{Request, Response};

/// Longest request accepted, in bytes.
const MAX_REQUEST: u64 = 64 * 1024;
/// How long a connection may take to send its request, or the loop to answer.
const DEADLINE: Duration = Duration::from_secs(5);

/// Must pass before a `restart` reaches the loop: the new binary accepts
/// the configuration (`Err` says why not). Runs on a blocking thread.
pub type RestartCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Carries out a reload (given who asked) and answers; the runtime's
/// [`crate::runtime`] reloader, which reads the file off the loop.
pub type ReloadHook =
    Arc<dyn Fn(String) -> futures::future::BoxFuture<'static, Response> + Send + Sync>;

/// What the socket hands to the runtime instead of the loop.
#[derive(Clone)]
pub struct Hooks {
    pub restart: RestartCheck,
    pub reload: ReloadHook,
}

/// A request on its way to the event loop, with who asked.
pub struct ControlRequest {
    pub request: Request,
    /// "uid 0" for the socket, "token NAME" for the HTTP API.
    pub who: String,
    pub reply: oneshot::Sender<Response>,
}

/// Binds the socket (replacing a stale one, refusing one still in use)
/// and makes it readable and writable by its owner only. Anything else at
/// the path (a file, a directory, a link) is left alone and refused: a
/// typo in `control.socket` must never delete an administrator's file.
pub async fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; refusing to replace it",
                    path.display()
                ),
            ));
        }
        if UnixStream::connect(path).await.is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use by a running daemon", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    to_loop: mpsc::Sender<ControlRequest>,
    hooks: Hooks,
) {
    // SAFETY: geteuid has no preconditions.
    let own_uid = unsafe { libc::geteuid() };
    let limiter = Limiter::new(CONTROL_CONNECTIONS, CONTROL_CONNECTIONS);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!(error = %e, socket = %path.display(), "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = limiter.admit(None) else {
            debug!("control socket: all connections in use; closing a new one");
            continue;
        };
        let (to_loop, hooks) = (to_loop.clone(), hooks.clone());
        tokio::spawn(async move {
            let _slot = slot;
            // Reading the request and answering each have DEADLINE; a
            // caller that does not read its answer is cut off too.
            let handled = handle(stream, own_uid, to_loop, hooks);
            match tokio::time::timeout(DEADLINE * 3, handled).await {
                Err(_) => debug!("control connection closed at its deadline"),
                Ok(Err(e)) => debug!(error = %e, "control connection ended"),
                Ok(Ok(())) => {}
            }
        });
    }
}

async fn handle(
    stream: UnixStream,
    own_uid: u32,
    to_loop: mpsc::Sender<ControlRequest>,
    hooks: Hooks,
) -> std::io::Result<()> {
    let uid = stream.peer_cred()?.uid();
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let read = tokio::time::timeout(
        DEADLINE,
        BufReader::new(read.take(MAX_REQUEST)).read_line(&mut line),
    )
    .await;
    let response = match read {
        Err(_) => refuse("no request within 5 s"),
        Ok(Err(e)) => refuse(&format!("cannot read the request: {e}")),
        Ok(Ok(_)) if uid != 0 && uid != own_uid => {
            refuse(&format!("uid {uid} may not control understudy"))
        }
        Ok(Ok(_)) => match serde_json::from_str::<Request>(line.trim()) {
            Err(e) => refuse(&format!("bad request: {e}")),
            Ok(Request::Reload) => (hooks.reload)(format!("uid {uid}")).await,
            Ok(Request::Restart) => {
                let check = hooks.restart;
                match tokio::task::spawn_blocking(move || check()).await {
                    Ok(Ok(())) => ask_loop(&to_loop, Request::Restart, format!("uid {uid}")).await,
                    Ok(Err(why)) => {
                        info!(who = %format!("uid {uid}"), %why, "restart refused");
                        refuse(&format!("restart refused: {why}"))
                    }
                    Err(e) => refuse(&format!("restart refused: its check did not finish: {e}")),
                }
            }
            Ok(request) => ask_loop(&to_loop, request, format!("uid {uid}")).await,
        },
    };
    let mut text = serde_json::to_string(&response).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    write.write_all(text.as_bytes()).await?;
    write.shutdown().await
}

/// Hands a request to the event loop and waits for its answer.
pub async fn ask_loop(
    to_loop: &mpsc::Sender<ControlRequest>,
    request: Request,
    who: String,
) -> Response {
    let (reply, answer) = oneshot::channel();
    if to_loop
        .send(ControlRequest {
            request,
            who,
            reply,
        })
        .await
        .is_err()
    {
        return refuse("the daemon is shutting down");
    }
    match tokio::time::timeout(DEADLINE, answer).await {
        Ok(Ok(response)) => response,
        _ => refuse("the daemon did not answer in time"),
    }
}

pub fn refuse(message: &str) -> Response {
    Response {
        ok: false,
        message: message.to_owned(),
        status: None,
        not_applied: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("understudy-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn a_regular_file_at_the_socket_path_is_kept() {
        let dir = scratch("file");
        let path = dir.join("understudy.sock");
        std::fs::write(&path, "precious").unwrap();
        let err = bind(&path).await.expect_err("must refuse");
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_live_one_refused() {
        let dir = scratch("stale");
        let path = dir.join("understudy.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let live = bind(&path).await.expect("a stale socket is replaced");
        let err = bind(&path).await.expect_err("a live socket is refused");
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        drop(live);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
