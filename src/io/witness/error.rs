//! Why a call to the witness failed, as one type with the error underneath
//! as its source: the access files (secrets, CA, client certificate), the
//! PostgreSQL backend's statements and tables, and etcd's gateway. Its
//! words are what status and logs show; an answer that lacks what it must
//! have is [`WitnessError::Incomplete`] or [`WitnessError::Malformed`],
//! never a default value.

use std::path::PathBuf;

use crate::io::bounded::BodyError;
use crate::io::probe::ProbeSetupError;

#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    /// A file of the witness's access settings could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A secret file others may read (refused, as ssh refuses such a key).
    #[error("{} can be read by others (mode {mode:o}): chmod 600 {}", path.display(), path.display())]
    Exposed { path: PathBuf, mode: u32 },
    #[error("not a PostgreSQL URL: {0}")]
    Url(#[source] tokio_postgres::Error),
    /// The CA file holds no usable certificate.
    #[error("{}: {source}", path.display())]
    Pem {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },
    /// The client certificate and key do not make an identity.
    #[error("{} and {}: {source}", cert.display(), key.display())]
    Identity {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot make an HTTP client for etcd: {0}")]
    Client(#[source] reqwest::Error),

    /// `shown` is the connection string without its password.
    #[error("cannot connect to {shown}: {source}")]
    Connect {
        shown: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("cannot connect to {shown}: {source}")]
    Tls {
        shown: String,
        #[source]
        source: ProbeSetupError,
    },
    #[error("{shown}: cannot {what}: {source}")]
    Statement {
        shown: String,
        what: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    /// The tables are not as understudy needs them (the words say the fix).
    #[error("{shown}: {problem}")]
    Tables { shown: String, problem: String },
    /// A column altered by hand (another type, a NULL where none belongs).
    #[error("unexpected value in column {column}: {source}")]
    Column {
        column: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A negative term read as 0 would say "nobody holds the lease".
    #[error("a negative term ({0}) in the witness's tables")]
    NegativeTerm(i64),

    /// The gateway's answer could not be read (the connection, its size,
    /// not JSON); `connect`: the connection itself failed.
    #[error("etcd {endpoint}: {path}: {source}")]
    Gateway {
        endpoint: String,
        path: &'static str,
        connect: bool,
        #[source]
        source: Answer,
    },
    /// etcd answered with an error, and its gRPC code when it gave one.
    #[error("etcd {endpoint}: {path}: {status}: {message}")]
    Refused {
        endpoint: String,
        path: &'static str,
        status: reqwest::StatusCode,
        message: String,
        code: Option<i64>,
    },
    /// Every endpoint refused the connection.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Unreachable(Vec<WitnessError>),
    /// An answer not of the shape its request has.
    #[error("etcd: {path}: a malformed answer: {source}")]
    Malformed {
        path: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// An answer of the right shape that lacks what it must have.
    #[error("etcd: {0}")]
    Incomplete(&'static str),
    #[error("etcd authenticated {0} but gave no token")]
    NoToken(String),
    /// No answer within the round (the caller's bound).
    #[error("the witness did not answer within {} ms", .0.as_millis())]
    TimedOut(std::time::Duration),
}

/// Why a gateway's answer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Answer {
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("the answer is not JSON: {0}")]
    Json(serde_json::Error),
}

impl From<reqwest::Error> for Answer {
    fn from(e: reqwest::Error) -> Self {
        Answer::Body(BodyError::Http(e))
    }
}

impl WitnessError {
    /// etcd's gRPC code, when it answered one.
    pub fn etcd_code(&self) -> Option<i64> {
        match self {
            WitnessError::Refused { code, .. } => *code,
            _ => None,
        }
    }

    /// Did the connection itself fail (the next endpoint is tried)?
    pub fn connect_failed(&self) -> bool {
        matches!(self, WitnessError::Gateway { connect: true, .. })
    }
}
