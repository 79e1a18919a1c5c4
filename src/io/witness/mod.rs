//! The witness at the edge: the lease and each node's heartbeat record in
//! PostgreSQL ([`postgres`]) or etcd ([`etcd`]). Each call is one round
//! trip or a few, returns a typed [`WitnessError`], and never panics; the caller
//! bounds it in time ([`crate::runtime::witness`]).

pub mod access;
mod error;
pub mod etcd;
pub mod postgres;

pub use error::{Answer, WitnessError};

use std::time::Duration;

use crate::config::{WitnessAccess, WitnessBackend};
use crate::core::LeaseReply;
use crate::io::probe::Prober;

/// What a node writes at every round: its row in the witness.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeRecord {
    pub node: String,
    /// The node's status word (Active, Passive, …).
    pub state: String,
    pub term: u64,
    /// The configuration checksum, in hex.
    pub checksum: String,
}

/// A node's row as the witness last had it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSeen {
    pub record: NodeRecord,
    /// How long ago the witness saw the row written: by the database's
    /// own clock (PostgreSQL), or since this node saw it change (etcd,
    /// which keeps no time); `None` until known.
    pub age: Option<Duration>,
}

/// The witness's view: who holds the lease, and every node's row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Seen {
    /// The lease's holder and term, if anyone holds it.
    pub holder: Option<(String, u64)>,
    pub nodes: Vec<NodeSeen>,
}

/// What status shows of the witness: its last view and the last error.
#[derive(Debug, Clone, Default)]
pub struct WitnessView {
    /// The backend, without any password.
    pub backend: String,
    /// The last view read, and when (this node's clock).
    pub seen: Option<(Seen, std::time::Instant)>,
    /// Why the last round failed, until one succeeds.
    pub error: Option<String>,
}

pub type SharedView = std::sync::Arc<std::sync::Mutex<WitnessView>>;

/// A connection to one witness.
pub enum Witness {
    Postgres(postgres::Postgres),
    Etcd(etcd::Etcd),
}

impl Witness {
    /// A witness for `cluster`, as `node`, with leases of `lease` (nothing
    /// is connected yet). `timeout` bounds each HTTP request to etcd.
    pub fn new(
        backend: &WitnessBackend,
        cluster: &str,
        node: &str,
        lease: Duration,
        prober: Prober,
        timeout: Duration,
        access: &WitnessAccess,
    ) -> Result<Witness, WitnessError> {
        Ok(match backend {
            WitnessBackend::Postgres(url) => Witness::Postgres(postgres::Postgres::new(
                url,
                (cluster, node),
                lease,
                prober,
                access.clone(),
            )),
            WitnessBackend::Etcd(endpoints) => Witness::Etcd(etcd::Etcd::new(
                endpoints, cluster, node, lease, timeout, access,
            )?),
        })
    }

    pub async fn acquire(&mut self) -> LeaseReply {
        let reply = match self {
            Witness::Postgres(p) => p.acquire().await,
            Witness::Etcd(e) => e.acquire().await,
        };
        reply.unwrap_or_else(|e| LeaseReply::Failed(e.to_string()))
    }

    pub async fn renew(&mut self, term: u64) -> LeaseReply {
        let reply = match self {
            Witness::Postgres(p) => p.renew(term).await,
            Witness::Etcd(e) => e.renew(term).await,
        };
        reply.unwrap_or_else(|e| LeaseReply::Failed(e.to_string()))
    }

    pub async fn release(&mut self, term: u64) -> Result<(), WitnessError> {
        match self {
            Witness::Postgres(p) => p.release(term).await,
            Witness::Etcd(e) => e.release(term).await,
        }
    }

    /// Ends a fenced holder's lease; `Ok(false)`: it was not theirs.
    pub async fn break_lease(&mut self, holder: &str, term: u64) -> Result<bool, WitnessError> {
        match self {
            Witness::Postgres(p) => p.break_lease(holder, term).await,
            Witness::Etcd(e) => e.break_lease(holder, term).await,
        }
    }

    /// Writes our row, then reads the lease and every row.
    pub async fn record_and_read(&mut self, record: &NodeRecord) -> Result<Seen, WitnessError> {
        match self {
            Witness::Postgres(p) => p.record_and_read(record).await,
            Witness::Etcd(e) => e.record_and_read(record).await,
        }
    }

    /// Forgets the connection after a failure or a timeout, so that the
    /// next call connects again.
    pub fn reset(&mut self) {
        match self {
            Witness::Postgres(p) => p.reset(),
            Witness::Etcd(e) => e.reset(),
        }
    }
}
