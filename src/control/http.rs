//! The HTTP API (optional, `[api]`): the same status and actions as the
//! control socket, as JSON, for callers holding a bearer token from the
//! tokens file; plus `GET /metrics` for Prometheus. A request without a
//! valid token gets 401 and nothing happens. TLS (rustls) when a
//! certificate and key are configured.
//!
//! - `GET /status` → the status report (200)
//! - `POST /actions/{enable|disable|promote|demote|maintenance-on|maintenance-off|refresh|forget}`
//!   with `?force=true` and, for forget, `?node=NAME` → the answer (200 applied, 409 refused)
//! - `GET /metrics` → Prometheus/OpenMetrics text

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request as HttpRequest, Response as HttpResponse, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::metrics::Metrics;
use super::server::{ask_loop, refuse, ControlRequest};
use super::{Request, Response};

/// Named bearer tokens, read from the tokens file: one `NAME TOKEN` per
/// line, `#` comments. The name is what the logs say asked.
#[derive(Clone)]
pub struct Tokens(Vec<(String, String)>);

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
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(name), Some(token), None) if token.len() >= MIN_TOKEN => {
                    tokens.push((name.to_owned(), token.to_owned()))
                }
                _ => {
                    return Err(format!(
                        "tokens file {}:{}: write NAME TOKEN (a token of at least {MIN_TOKEN} characters)",
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
    fn check(&self, presented: &str) -> Option<&str> {
        let mut found = None;
        for (name, token) in &self.0 {
            if constant_time_eq(token.as_bytes(), presented.as_bytes()) {
                found = Some(name.as_str());
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
    tokens: Tokens,
    to_loop: mpsc::Sender<ControlRequest>,
    metrics: Arc<Metrics>,
}

pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    tokens: Tokens,
    to_loop: mpsc::Sender<ControlRequest>,
    metrics: Arc<Metrics>,
) {
    let shared = Shared {
        tokens,
        to_loop,
        metrics,
    };
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "API accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(req, shared.clone()));
            let builder = hyper::server::conn::http1::Builder::new();
            let result = match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls_stream) => {
                        builder
                            .serve_connection(TokioIo::new(tls_stream), service)
                            .await
                    }
                    Err(e) => {
                        debug!(error = %e, %from, "TLS handshake failed");
                        return;
                    }
                },
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
            };
            if let Err(e) = result {
                debug!(error = %e, %from, "API connection ended");
            }
        });
    }
}

type Reply = HttpResponse<Full<Bytes>>;

fn json(code: StatusCode, response: &Response) -> Reply {
    let body = serde_json::to_vec(response).unwrap_or_default();
    HttpResponse::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

async fn handle(req: HttpRequest<Incoming>, shared: Shared) -> Result<Reply, Infallible> {
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(name) = bearer.and_then(|t| shared.tokens.check(t.trim())) else {
        return Ok(json(
            StatusCode::UNAUTHORIZED,
            &refuse("unauthorized: a valid bearer token is required"),
        ));
    };
    let who = format!("token {name}");
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
                .body(Full::new(Bytes::from(shared.metrics.encode())))
                .unwrap_or_default());
        }
        (&Method::GET, "/status") => Request::Status,
        (&Method::POST, path) => match path.strip_prefix("/actions/") {
            Some("enable") => Request::Enable,
            Some("disable") => Request::Disable { force },
            Some("promote") => Request::Promote { force },
            Some("demote") => Request::Demote { force },
            Some("maintenance-on") => Request::MaintenanceOn { force },
            Some("maintenance-off") => Request::MaintenanceOff,
            Some("refresh") => Request::Refresh,
            Some("forget") => match param("node") {
                Some(node) => Request::Forget { node, force },
                None => {
                    return Ok(json(
                        StatusCode::BAD_REQUEST,
                        &refuse("forget needs ?node=NAME"),
                    ))
                }
            },
            _ => return Ok(json(StatusCode::NOT_FOUND, &refuse("no such action"))),
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
