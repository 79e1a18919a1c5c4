//! The HTTP API (optional, `[api]`): the same status and actions as the
//! control socket, as JSON, for callers holding a bearer token from the
//! tokens file; plus `GET /metrics` for Prometheus. A request without a
//! valid token gets 401 and nothing happens. TLS (rustls) when a
//! certificate and key are configured.
//!
//! - `GET /status` → the status report (200)
//! - `POST /actions/{enable|disable|promote|demote|maintenance-on|maintenance-off|refresh|reset-flapping|forget}`
//!   with `?force=true` and, for forget, `?node=NAME` → the answer (200 applied, 409 refused)
//! - `GET /metrics` → Prometheus/OpenMetrics text
//! - `GET /` (and `/console.js`, `/console.css`) → the console
//!   ([`super::console`]), without a token; `GET /whoami`, `/history` and
//!   `/stream` (server-sent events) → what the console reads
//!
//! A read-only token (`NAME TOKEN ro`) may read everything and is refused
//! every action (403).

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request as HttpRequest, Response as HttpResponse, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use http_body_util::BodyExt;

use super::console::{self, Body};
use super::history::SharedHistory;
use super::limits::{Limiter, Refused, API_CONNECTIONS, API_CONNECTIONS_PER_CLIENT};
use super::metrics::Metrics;
use super::server::{ask_loop, refuse, ControlRequest};
use super::Request;

/// Named bearer tokens, read from the tokens file: one `NAME TOKEN` per
/// line, or `NAME TOKEN ro` for a read-only one (status, metrics, the
/// console's view; every action refused); `#` comments. The name is what
/// the logs say asked.
#[derive(Clone)]
pub struct Tokens(Vec<Token>);

#[derive(Clone)]
struct Token {
    name: String,
    secret: String,
    read_only: bool,
}

/// Who a valid token says is calling.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Caller {
    pub name: String,
    pub read_only: bool,
}

/// The tokens the API checks, replaced whole by a reload.
pub type SharedTokens = Arc<std::sync::RwLock<Tokens>>;

/// Tokens shorter than this are refused: they could be guessed.
const MIN_TOKEN: usize = 16;

impl Tokens {
    pub fn load(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("tokens file {}: {e}", path.display()))?;
        let mut tokens = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let token = match words.as_slice() {
                [name, secret] => Some((name, secret, false)),
                [name, secret, "ro"] => Some((name, secret, true)),
                _ => None,
            };
            match token {
                Some((name, secret, read_only)) if secret.len() >= MIN_TOKEN => {
                    tokens.push(Token {
                        name: (*name).to_owned(),
                        secret: (*secret).to_owned(),
                        read_only,
                    })
                }
                _ => {
                    return Err(format!(
                        "tokens file {}:{}: write NAME TOKEN, or NAME TOKEN ro for a read-only one (a token of at least {MIN_TOKEN} characters)",
                        path.display(),
                        n + 1
                    ))
                }
            }
        }
        if tokens.is_empty() {
            return Err(format!("tokens file {} holds no token", path.display()));
        }
        Ok(Tokens(tokens))
    }

    /// The name of the token presented, if it is one of ours. Compares
    /// every token in constant time so that timing tells nothing.
    fn check(&self, presented: &str) -> Option<Caller> {
        let mut found = None;
        for token in &self.0 {
            if constant_time_eq(token.secret.as_bytes(), presented.as_bytes()) {
                found = Some(Caller {
                    name: token.name.clone(),
                    read_only: token.read_only,
                });
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Builds the TLS acceptor from PEM files.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("TLS certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("TLS certificate {}: {e}", cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("TLS key {}: {e}", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[derive(Clone)]
struct Shared {
    tokens: SharedTokens,
    to_loop: mpsc::Sender<ControlRequest>,
    metrics: Arc<Metrics>,
    history: SharedHistory,
}

pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    tokens: SharedTokens,
    to_loop: mpsc::Sender<ControlRequest>,
    metrics: Arc<Metrics>,
    history: SharedHistory,
) {
    let shared = Shared {
        tokens,
        to_loop,
        metrics,
        history,
    };
    let limiter = Limiter::new(API_CONNECTIONS, API_CONNECTIONS_PER_CLIENT).evicting();
    let mut refusals = RefusalLog::default();
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "API accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let slot = match limiter.admit(Some(from.ip())) {
            Ok(slot) => slot,
            Err(why) => {
                // Closed at once: a flood must not hold descriptors.
                drop(stream);
                refusals.note(why, from);
                continue;
            }
        };
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let shown = slot.shown.clone();
            let served =
                tokio::time::timeout(CONNECTION_DEADLINE, serve_one(stream, tls, shared, shown));
            tokio::select! {
                served = served => match served {
                    Err(_) => debug!(%from, "API connection closed at its deadline"),
                    Ok(Err(e)) => debug!(error = %e, %from, "API connection ended"),
                    Ok(Ok(())) => {}
                },
                () = slot.evicted.notified() => {
                    debug!(%from, "API connection without a token closed to make room");
                }
            }
            drop(slot);
        });
    }
}

/// How long a client has to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest an API connection may stay open, idle or not: every answer
/// comes within a few seconds, so a longer one only holds a descriptor.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(15);

/// One connection: the TLS handshake (if any) and its requests.
async fn serve_one(
    stream: tokio::net::TcpStream,
    tls: Option<TlsAcceptor>,
    shared: Shared,
    shown: Arc<std::sync::atomic::AtomicBool>,
) -> Result<(), String> {
    let service = hyper::service::service_fn(move |req| handle(req, shared.clone(), shown.clone()));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_REQUEST_BUFFER);
    match tls {
        Some(acceptor) => {
            let tls_stream = tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream))
                .await
                .map_err(|_| "TLS handshake timed out".to_owned())?
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
            builder
                .serve_connection(TokioIo::new(tls_stream), service)
                .await
        }
        None => {
            builder
                .serve_connection(TokioIo::new(stream), service)
                .await
        }
    }
    .map_err(|e| e.to_string())
}

/// The largest request head buffered for one connection (hyper's minimum
/// is 8 KiB); requests carry no body the API reads.
const MAX_REQUEST_BUFFER: usize = 16 * 1024;

/// Logs refused connections at most once per interval, with the count, so
/// that a flood cannot flood the log as well.
#[derive(Default)]
struct RefusalLog {
    since_last: u64,
    last: Option<std::time::Instant>,
}

impl RefusalLog {
    const EVERY: Duration = Duration::from_secs(10);

    fn note(&mut self, why: Refused, from: std::net::SocketAddr) {
        self.since_last += 1;
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Self::EVERY)
        {
            return;
        }
        let limit = match why {
            Refused::Full => "all connections in use",
            Refused::ClientFull => "too many connections from one client",
        };
        warn!(%from, refused = self.since_last, %limit, "API connections refused");
        self.since_last = 0;
        self.last = Some(now);
    }
}

type Reply = HttpResponse<Body>;

fn json(code: StatusCode, response: &impl serde::Serialize) -> Reply {
    let body = serde_json::to_vec(response).unwrap_or_default();
    HttpResponse::builder()
        .status(code)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap_or_default()
}

/// The request a `POST /actions/…` path asks for, or the status
/// code and words that refuse it (no such action, or `forget` without
/// `?node=NAME`).
fn action(
    path: &str,
    force: bool,
    node: Option<String>,
) -> Result<Request, (StatusCode, &'static str)> {
    Ok(match path.strip_prefix("/actions/") {
        Some("enable") => Request::Enable,
        Some("disable") => Request::Disable { force },
        Some("promote") => Request::Promote { force },
        Some("demote") => Request::Demote { force },
        Some("maintenance-on") => Request::MaintenanceOn { force },
        Some("maintenance-off") => Request::MaintenanceOff,
        Some("refresh") => Request::Refresh,
        Some("reset-flapping") => Request::ResetFlapping,
        Some("forget") => match node {
            Some(node) => Request::Forget { node, force },
            None => return Err((StatusCode::BAD_REQUEST, "forget needs ?node=NAME")),
        },
        _ => return Err((StatusCode::NOT_FOUND, "no such action")),
    })
}

/// One request. `shown` is set once the connection shows a valid token
/// (it is then never evicted to make room, see [`super::limits`]).
async fn handle(
    req: HttpRequest<Incoming>,
    shared: Shared,
    shown: Arc<std::sync::atomic::AtomicBool>,
) -> Result<Reply, Infallible> {
    // The console's page, script and style hold no data: no token needed.
    if req.method() == Method::GET {
        if let Some(page) = console::asset(req.uri().path()) {
            return Ok(page);
        }
    }
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let name = bearer.and_then(|t| {
        let tokens = shared.tokens.read().unwrap_or_else(|p| p.into_inner());
        tokens.check(t.trim())
    });
    let Some(caller) = name else {
        return Ok(json(
            StatusCode::UNAUTHORIZED,
            &refuse("unauthorized: a valid bearer token is required"),
        ));
    };
    shown.store(true, std::sync::atomic::Ordering::SeqCst);
    let who = format!("token {}", caller.name);
    let query = req.uri().query().unwrap_or("");
    let param = |key: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_owned())
    };
    let force = param("force").is_some_and(|v| v == "true" || v == "1");
    let request = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            return Ok(HttpResponse::builder()
                .header(
                    "content-type",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
                .body(Full::new(Bytes::from(shared.metrics.encode())).boxed())
                .unwrap_or_default());
        }
        (&Method::GET, "/status") => Request::Status,
        (&Method::GET, "/whoami") => return Ok(json(StatusCode::OK, &caller)),
        (&Method::GET, "/history") => return Ok(history(&shared.history)),
        (&Method::GET, "/stream") => {
            let after = param("after").and_then(|v| v.parse().ok()).unwrap_or(0);
            return Ok(console::stream(
                shared.to_loop.clone(),
                shared.history.clone(),
                who,
                after,
            ));
        }
        (&Method::POST, _) if caller.read_only => {
            return Ok(json(
                StatusCode::FORBIDDEN,
                &refuse("forbidden: a read-only token may not act"),
            ))
        }
        (&Method::POST, path) => match action(path, force, param("node")) {
            Ok(request) => request,
            Err((code, why)) => return Ok(json(code, &refuse(why))),
        },
        _ => return Ok(json(StatusCode::NOT_FOUND, &refuse("no such endpoint"))),
    };
    let response = ask_loop(&shared.to_loop, request, who).await;
    let code = if response.ok {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok(json(code, &response))
}

/// `GET /history`: the timeline's samples (oldest first) and the events
/// (newest first).
fn history(history: &SharedHistory) -> Reply {
    let h = history.lock().unwrap_or_else(|p| p.into_inner());
    let body = serde_json::json!({ "samples": h.samples(), "events": h.events_after(0) });
    drop(h);
    json(StatusCode::OK, &body)
}
