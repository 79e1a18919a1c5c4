//! Health probes: an HTTP(S) GET of an application URL (rustls, certificates
//! verified against the system roots plus an optional CA file) and a TCP
//! connect for a data service. A probe that cannot connect, times out or
//! gets an error status fails with the reason kept.

use std::path::Path;
use std::time::Duration;

use crate::config::{DataService, Url};
use crate::core::Outcome;

#[derive(Debug, thiserror::Error)]
pub enum ProbeSetupError {
    #[error("cannot read the CA file {path}: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the CA file {path} holds no usable PEM certificate: {source}")]
    CaPem {
        path: String,
        source: reqwest::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Something that can be probed.
#[derive(Debug, Clone)]
pub enum Check {
    Http(Url),
    Tcp(String),
}

impl From<&DataService> for Check {
    fn from(d: &DataService) -> Self {
        match d {
            DataService::Tcp(addr) => Check::Tcp(addr.clone()),
            DataService::Http(url) => Check::Http(url.clone()),
        }
    }
}

/// Runs checks with one shared HTTP client.
#[derive(Clone)]
pub struct Prober {
    client: reqwest::Client,
    timeout: Duration,
}

impl Prober {
    pub fn new(timeout: Duration, ca_file: Option<&Path>) -> Result<Self, ProbeSetupError> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A probe must see the application itself: no proxy from the
            // environment, no redirects, and a fresh connection each time
            // (a pooled one can outlive the process that served it).
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .user_agent(concat!("understudy/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|source| ProbeSetupError::CaFile {
                path: path.display().to_string(),
                source,
            })?;
            let cert =
                reqwest::Certificate::from_pem(&pem).map_err(|source| ProbeSetupError::CaPem {
                    path: path.display().to_string(),
                    source,
                })?;
            builder = builder.add_root_certificate(cert);
        }
        Ok(Prober {
            client: builder.build()?,
            timeout,
        })
    }

    pub async fn check(&self, check: &Check) -> Outcome {
        match check {
            Check::Http(url) => self.http(url).await,
            Check::Tcp(addr) => self.tcp(addr).await,
        }
    }

    async fn http(&self, url: &Url) -> Outcome {
        let response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(describe)?;
        let status = response.status();
        if status.as_u16() < 400 {
            Ok(())
        } else {
            Err(format!("HTTP status {status}"))
        }
    }

    async fn tcp(&self, addr: &str) -> Outcome {
        match tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("connect to {addr}: {e}")),
            Err(_) => Err(format!(
                "connect to {addr}: timed out after {:?}",
                self.timeout
            )),
        }
    }
}

/// A short, readable reason from a reqwest error chain (the root cause is
/// what an administrator needs: "Connection refused", "timed out").
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut root: &dyn std::error::Error = &e;
    while let Some(next) = root.source() {
        root = next;
    }
    format!("{kind}: {root}")
}
