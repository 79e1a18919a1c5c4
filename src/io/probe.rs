//! Health probes: an HTTP(S) GET of an application URL (rustls, certificates
//! verified against the system roots plus an optional CA file) checked
//! against the expected status, body and header; a TCP connect or a
//! command for a data service. A probe that cannot connect, times out, gets
//! the wrong answer, or cannot even be run fails with the reason kept (a
//! command that cannot be run is a failure, not a success as in keepalived).

use std::path::Path;
use std::time::Duration;

use std::process::Stdio;
use std::sync::Arc;

use crate::config::{DataService, Expect, Url};

/// Why a probe did not pass, with the error underneath as its source. The
/// words are what status, logs and mail show; [`ProbeError::is_local`] and
/// [`ProbeError::refused`] are the distinctions the core acts on.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The HTTP request did not get an answer; the chain's root cause is
    /// what an administrator needs ("Connection refused", "timed out").
    #[error("{kind}: {root}")]
    Request {
        kind: &'static str,
        root: String,
        #[source]
        source: reqwest::Error,
    },
    /// A data service URL answered with an error status.
    #[error("HTTP status {0}")]
    Status(reqwest::StatusCode),
    /// The application answered outside the expected statuses.
    #[error("HTTP status {status}, expected {}-{}", expected.0, expected.1)]
    UnexpectedStatus { status: u16, expected: (u16, u16) },
    #[error("no {0} header")]
    NoHeader(String),
    #[error("header {name}: {found:?}, expected {want:?}")]
    WrongHeader {
        name: String,
        found: String,
        want: String,
    },
    /// The body could not be read whole (too long, or the connection broke).
    #[error(transparent)]
    Body(crate::io::bounded::BodyError),
    #[error("body does not contain {0:?}")]
    BodyLacks(String),
    #[error("body does not match /{0}/")]
    BodyMismatch(regex::Regex),
    /// Our application answers its URL but not through this common
    /// address (it listens on one family, or on the node's address only).
    #[error("the application does not answer on the common address {address}: {source}")]
    NotOnAddress {
        address: std::net::IpAddr,
        source: Box<ProbeError>,
    },
    /// The GET through the common IP (the look before a claim) got no
    /// answer in its window.
    #[error("no answer through the common IP within {} ms", .0.as_millis())]
    ViaVipTimedOut(Duration),
    /// This node's NIC cannot carry traffic (down, no carrier), or the
    /// kernel could not say.
    #[error(transparent)]
    Nic(#[from] crate::io::netlink::NicProblem),
    /// The application says it is in maintenance (the configured signal).
    #[error("maintenance signal: {0}")]
    Maintenance(String),
    /// The command could not be started: this node's failure.
    #[error("cannot run {cmd:?}: {source}")]
    CannotRun {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the command failed: this node's failure.
    #[error("{cmd:?}: {source}")]
    CannotWait {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{cmd:?} failed: {status}")]
    CommandFailed {
        cmd: String,
        status: std::process::ExitStatus,
    },
    #[error("{cmd:?} timed out after {after:?}")]
    CommandTimedOut { cmd: String, after: Duration },
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connect to {addr}: timed out after {after:?}")]
    ConnectTimedOut { addr: String, after: Duration },
    /// `shown` is the connection string without its password.
    #[error("cannot connect to {shown}: {source}")]
    PostgresConnect {
        shown: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("{query:?} on {shown}: {source}")]
    PostgresQuery {
        query: String,
        shown: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("{shown}: no answer within {after:?}")]
    PostgresTimedOut { shown: String, after: Duration },
}

impl ProbeError {
    /// This node could not run the probe at all (out of file descriptors
    /// or memory, a command that cannot start): it says nothing about the
    /// target, only that this node cannot judge it now.
    pub fn is_local(&self) -> bool {
        match self {
            ProbeError::CannotRun { .. } | ProbeError::CannotWait { .. } => true,
            other => is_local_resource_error(other),
        }
    }

    /// The target's host refused the connection (nothing listens there):
    /// the host is up and the service is not, a sure sign.
    pub fn refused(&self) -> bool {
        chain_has_io_error(self, &|io| {
            io.kind() == std::io::ErrorKind::ConnectionRefused
        })
    }
}

/// A probe's result.
pub type ProbeResult = Result<(), ProbeError>;

/// Does this error chain hold an exhausted resource of this node: no file
/// descriptor (EMFILE, ENFILE), no memory or buffer (ENOMEM, ENOBUFS), no
/// process (EAGAIN from fork)? Such a failure is ours, not the target's.
pub fn is_local_resource_error(error: &(dyn std::error::Error + 'static)) -> bool {
    const OURS: [i32; 5] = [
        libc::EMFILE,
        libc::ENFILE,
        libc::ENOMEM,
        libc::ENOBUFS,
        libc::EAGAIN,
    ];
    chain_has_io_error(error, &|io| {
        io.raw_os_error().is_some_and(|code| OURS.contains(&code))
    })
}

/// Does an I/O error somewhere in this error chain match `wanted`?
fn chain_has_io_error(
    error: &(dyn std::error::Error + 'static),
    wanted: &dyn Fn(&std::io::Error) -> bool,
) -> bool {
    if let Some(io) = error.downcast_ref::<std::io::Error>() {
        if wanted(io) {
            return true;
        }
        // An io::Error that wraps another error hides it from `source()`.
        if let Some(inner) = io.get_ref() {
            return chain_has_io_error(inner, wanted);
        }
    }
    error
        .source()
        .is_some_and(|source| chain_has_io_error(source, wanted))
}

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
    #[error("the client certificate {path} is not a PEM certificate and key: {source}")]
    ClientCert {
        path: String,
        source: reqwest::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Something that can be probed.
#[derive(Debug, Clone)]
pub enum Check {
    /// An application URL, judged by the configured expectations.
    App(Url),
    /// A data service URL: any status below 400.
    Http(Url),
    Tcp(String),
    Command(String),
    Postgres {
        conn: String,
        query: String,
    },
}

impl From<&DataService> for Check {
    fn from(d: &DataService) -> Self {
        match d {
            DataService::Tcp(addr) => Check::Tcp(addr.clone()),
            DataService::Http(url) => Check::Http(url.clone()),
            DataService::Command(cmd) => Check::Command(cmd.clone()),
            DataService::Postgres { conn, query } => Check::Postgres {
                conn: conn.clone(),
                query: query.clone(),
            },
        }
    }
}

/// Connects and drives the connection in the background (it ends when the
/// client is dropped).
async fn pg_connect<T>(conn: &str, tls: T) -> Result<tokio_postgres::Client, tokio_postgres::Error>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = tokio_postgres::connect(conn, tls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// As [`pg_connect`], for a parsed configuration (the witness's, whose
/// password comes from a file).
pub(crate) async fn pg_connect_config<T>(
    config: &tokio_postgres::Config,
    tls: T,
) -> Result<tokio_postgres::Client, tokio_postgres::Error>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = config.connect(tls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// What an application said, when it answered.
enum Answer {
    Healthy,
    Maintenance(String),
}

/// Runs checks with one shared HTTP client.
#[derive(Clone)]
pub struct Prober {
    client: reqwest::Client,
    timeout: Duration,
    expect: Arc<Expect>,
    /// TLS for PostgreSQL connection strings that ask for it
    /// (`sslmode=require`): system roots plus the CA file.
    pg_tls: tokio_postgres_rustls::MakeRustlsConnect,
}

/// The rustls client configuration for PostgreSQL: the system's roots and
/// the configured CA file.
pub(crate) fn pg_tls(
    ca_file: Option<&Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, ProbeSetupError> {
    use rustls_pki_types::pem::PemObject;
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path).map_err(|e| {
            ProbeSetupError::CaFile {
                path: path.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            }
        })?;
        for cert in certs.flatten() {
            let _ = roots.add(cert);
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ProbeSetupError::CaFile {
        path: String::new(),
        source: std::io::Error::other(e.to_string()),
    })?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl Prober {
    /// A PostgreSQL client for `conn`, over TLS when it asks for it
    /// (`sslmode=require`), with its connection driven in the background.
    pub async fn connect_postgres(
        &self,
        conn: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        if conn.contains("sslmode=require") {
            pg_connect(conn, self.pg_tls.clone()).await
        } else {
            pg_connect(conn, tokio_postgres::NoTls).await
        }
    }

    pub fn new(
        timeout: Duration,
        ca_file: Option<&Path>,
        expect: Expect,
    ) -> Result<Self, ProbeSetupError> {
        Self::with_identity(timeout, ca_file, None, expect)
    }

    /// As [`Prober::new`], presenting a client certificate (certificate and
    /// key in one PEM file) to HTTPS servers that ask for one.
    pub fn with_identity(
        timeout: Duration,
        ca_file: Option<&Path>,
        client_cert: Option<&Path>,
        expect: Expect,
    ) -> Result<Self, ProbeSetupError> {
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
        if let Some(path) = client_cert {
            let pem = std::fs::read(path).map_err(|source| ProbeSetupError::CaFile {
                path: path.display().to_string(),
                source,
            })?;
            let identity = reqwest::Identity::from_pem(&pem).map_err(|source| {
                ProbeSetupError::ClientCert {
                    path: path.display().to_string(),
                    source,
                }
            })?;
            builder = builder.identity(identity);
        }
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
            expect: Arc::new(expect),
            pg_tls: pg_tls(ca_file)?,
        })
    }

    pub async fn check(&self, check: &Check) -> ProbeResult {
        match check {
            Check::App(url) => self.app(url).await,
            Check::Http(url) => self.http(url).await,
            Check::Tcp(addr) => self.tcp(addr).await,
            Check::Command(cmd) => self.command(cmd).await,
            Check::Postgres { conn, query } => self.postgres(conn, query).await,
        }
    }

    /// Connects to PostgreSQL and runs the query; both must finish within
    /// the probe timeout. TLS (rustls) when the connection string asks for
    /// it with `sslmode=require`, plain otherwise.
    async fn postgres(&self, conn: &str, query: &str) -> ProbeResult {
        let shown = crate::config::redact_password(conn);
        let attempt = async {
            let client = self.connect_postgres(conn).await.map_err(|source| {
                ProbeError::PostgresConnect {
                    shown: shown.clone(),
                    source,
                }
            })?;
            client
                .simple_query(query)
                .await
                .map(|_| ())
                .map_err(|source| ProbeError::PostgresQuery {
                    query: query.to_owned(),
                    shown: shown.clone(),
                    source,
                })
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(ProbeError::PostgresTimedOut {
                shown: shown.clone(),
                after: self.timeout,
            }),
        }
    }

    async fn http(&self, url: &Url) -> ProbeResult {
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
            Err(ProbeError::Status(status))
        }
    }

    /// GET the application URL and hold the answer to the expectations.
    async fn app(&self, url: &Url) -> ProbeResult {
        self.app_with_signal(url).await.0
    }

    /// The application probe, and whether the answer carried the
    /// configured maintenance signal (then the probe fails, saying so).
    pub async fn app_with_signal(&self, url: &Url) -> (ProbeResult, bool) {
        match self.app_answer(url).await {
            Ok(Answer::Healthy) => (Ok(()), false),
            Ok(Answer::Maintenance(why)) => (Err(ProbeError::Maintenance(why)), true),
            Err(why) => (Err(why), false),
        }
    }

    async fn app_answer(&self, url: &Url) -> Result<Answer, ProbeError> {
        let e = &self.expect;
        let response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(describe)?;
        let status = response.status().as_u16();
        let signal = e.maintenance.as_ref();
        if let Some(code) = signal.and_then(|m| m.status).filter(|c| *c == status) {
            return Ok(Answer::Maintenance(format!("HTTP status {code}")));
        }
        if let Some(name) = signal.and_then(|m| m.header.as_ref()) {
            if response.headers().contains_key(name.as_str()) {
                return Ok(Answer::Maintenance(format!("header {name}")));
            }
        }
        if status < e.status.0 || status > e.status.1 {
            return Err(ProbeError::UnexpectedStatus {
                status,
                expected: e.status,
            });
        }
        if let Some((name, want)) = &e.header {
            match (response.headers().get(name.as_str()), want) {
                (None, _) => return Err(ProbeError::NoHeader(name.clone())),
                (Some(v), Some(want)) if v.to_str().ok().map(str::trim) != Some(want.as_str()) => {
                    return Err(ProbeError::WrongHeader {
                        name: name.clone(),
                        found: v.to_str().unwrap_or("?").to_owned(),
                        want: want.clone(),
                    });
                }
                _ => {}
            }
        }
        let signal_body = signal.and_then(|m| m.body.as_ref());
        if e.body.is_none() && e.body_regex.is_none() && signal_body.is_none() {
            return Ok(Answer::Healthy);
        }
        let body = match crate::io::bounded::body(response, crate::io::bounded::PROBED_PAGE).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(crate::io::bounded::BodyError::Http(e)) => return Err(describe(e)),
            Err(too_long) => return Err(ProbeError::Body(too_long)),
        };
        if let Some(text) = signal_body.filter(|t| body.contains(t.as_str())) {
            return Ok(Answer::Maintenance(format!("body says {text:?}")));
        }
        if let Some(want) = &e.body {
            if !body.contains(want.as_str()) {
                return Err(ProbeError::BodyLacks(want.clone()));
            }
        }
        if let Some(re) = &e.body_regex {
            if !re.is_match(&body) {
                return Err(ProbeError::BodyMismatch(re.clone()));
            }
        }
        Ok(Answer::Healthy)
    }

    /// Runs `sh -c CMD`: exit status 0 within the timeout is healthy.
    /// A command that cannot even be started says nothing about the data
    /// service: that failure is this node's.
    async fn command(&self, cmd: &str) -> ProbeResult {
        let child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ProbeError::CannotRun {
                cmd: cmd.to_owned(),
                source,
            })?;
        let cmd = cmd.to_owned();
        match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Err(_) => Err(ProbeError::CommandTimedOut {
                cmd,
                after: self.timeout,
            }),
            Ok(Err(source)) => Err(ProbeError::CannotWait { cmd, source }),
            Ok(Ok(out)) if out.status.success() => Ok(()),
            Ok(Ok(out)) => Err(ProbeError::CommandFailed {
                cmd,
                status: out.status,
            }),
        }
    }

    async fn tcp(&self, addr: &str) -> ProbeResult {
        match tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(ProbeError::Connect {
                addr: addr.to_owned(),
                source,
            }),
            Err(_) => Err(ProbeError::ConnectTimedOut {
                addr: addr.to_owned(),
                after: self.timeout,
            }),
        }
    }
}

/// A short, readable reason from a reqwest error chain (the root cause is
/// what an administrator needs: "Connection refused", "timed out").
fn describe(e: reqwest::Error) -> ProbeError {
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
    let root = root.to_string();
    ProbeError::Request {
        kind,
        root,
        source: e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server on loopback answering `response` verbatim.
    async fn serve_once(response: &'static str) -> Url {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for _ in 0..4 {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(response.as_bytes()).await;
            }
        });
        Url::parse(&format!("http://{addr}/health")).unwrap()
    }

    fn prober(expect: Expect) -> Prober {
        Prober::new(Duration::from_secs(2), None, expect).unwrap()
    }

    const OK: &str = "HTTP/1.1 200 OK\r\nX-Health: ok\r\nContent-Length: 11\r\nConnection: close\r\n\r\nall good v2";
    const MAINT: &str =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

    #[tokio::test]
    async fn status_body_and_header_expectations() {
        let url = serve_once(OK).await;
        let healthy = prober(Expect::default())
            .check(&Check::App(url.clone()))
            .await;
        assert!(healthy.is_ok(), "{healthy:?}");
        let strict = Expect {
            status: (200, 200),
            body: Some("good".into()),
            body_regex: Some(regex::Regex::new(r"v\d").unwrap()),
            header: Some(("x-health".into(), Some("ok".into()))),
            maintenance: None,
        };
        let strict = prober(strict).check(&Check::App(url.clone())).await;
        assert!(strict.is_ok(), "{strict:?}");
        let wrong_body = Expect {
            body: Some("bad".into()),
            ..Expect::default()
        };
        let err = prober(wrong_body)
            .check(&Check::App(url.clone()))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not contain"), "{err}");
        let wrong_header = Expect {
            header: Some(("x-health".into(), Some("degraded".into()))),
            ..Expect::default()
        };
        let err = prober(wrong_header)
            .check(&Check::App(url))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected \"degraded\""), "{err}");
        let url = serve_once(MAINT).await;
        let err = prober(Expect::default())
            .check(&Check::App(url))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("503"), "{err}");
    }

    /// A closed port on a live host refuses at once: the sure sign the
    /// takeover's two-signal path relies on. A timeout is not one.
    #[tokio::test]
    async fn a_refused_connection_is_told_apart_from_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let p = prober(Expect::default());
        let url = Url::parse(&format!("http://{addr}/")).unwrap();
        let refused = p.check(&Check::App(url)).await.unwrap_err();
        assert!(refused.refused(), "{refused}");
        let tcp = p.check(&Check::Tcp(addr.to_string())).await;
        assert!(tcp.is_err_and(|f| f.refused()));
        let hung = p
            .check(&Check::Command("sleep 5".into()))
            .await
            .unwrap_err();
        assert!(!hung.refused());
    }

    #[tokio::test]
    async fn commands_healthy_failing_hung_and_missing() {
        let p = prober(Expect::default());
        let ok = p.check(&Check::Command("true".into())).await;
        assert!(ok.is_ok(), "{ok:?}");
        assert!(p
            .check(&Check::Command("exit 3".into()))
            .await
            .unwrap_err()
            .to_string()
            .contains("exit status: 3"));
        assert!(p
            .check(&Check::Command("sleep 5".into()))
            .await
            .unwrap_err()
            .to_string()
            .contains("timed out"));
        let missing = p
            .check(&Check::Command("/nonexistent/check-db".into()))
            .await;
        assert!(
            missing.is_err_and(|f| !f.is_local()),
            "a command that runs and fails says the data service failed"
        );
    }

    #[test]
    fn resource_errors_of_this_node_are_told_apart() {
        for code in [libc::EMFILE, libc::ENFILE, libc::ENOMEM] {
            let e = std::io::Error::from_raw_os_error(code);
            assert!(is_local_resource_error(&e), "{e}");
            // Wrapped, as reqwest and tokio-postgres wrap them.
            let wrapped = std::io::Error::other(e);
            assert!(is_local_resource_error(&wrapped));
        }
        for code in [libc::ECONNREFUSED, libc::EHOSTUNREACH, libc::ETIMEDOUT] {
            let e = std::io::Error::from_raw_os_error(code);
            assert!(!is_local_resource_error(&e), "{e}");
        }
    }
}
