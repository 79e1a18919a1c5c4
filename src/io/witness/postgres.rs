//! The lease in PostgreSQL: one row per cluster in `understudy_lease`
//! (holder, term, expiry), changed only by conditional `UPDATE … WHERE`
//! statements that use the server's clock (`now()`), and one row per node
//! in `understudy_node`. The daemon creates both tables if they are
//! missing.
//!
//! - acquire: take the row if nobody holds it, it expired, or it is ours
//!   already; the term goes up by one unless it is ours and still valid
//!   (a restarted daemon takes back its own lease).
//! - renew: extend it if it is still ours with the same term. Nobody else
//!   can have held it in between: anyone else's acquire raises the term.
//! - release: clear the holder if it is still ours with that term.

use std::time::Duration;

use tokio_postgres::Client;

use super::{NodeRecord, NodeSeen, Seen, WitnessError};
use crate::config::WitnessAccess;
use crate::core::LeaseReply;
use crate::io::probe::Prober;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS understudy_lease (
    cluster text PRIMARY KEY,
    holder text,
    term bigint NOT NULL DEFAULT 0,
    expires timestamptz
);
CREATE TABLE IF NOT EXISTS understudy_node (
    cluster text NOT NULL,
    node text NOT NULL,
    state text NOT NULL,
    term bigint NOT NULL,
    checksum text NOT NULL,
    last_heartbeat timestamptz NOT NULL,
    PRIMARY KEY (cluster, node)
);";

/// The columns the statements below read and write, with the type
/// PostgreSQL reports for each (`information_schema.columns.data_type`).
const COLUMNS: [(&str, &str, &str); 10] = [
    ("understudy_lease", "cluster", "text"),
    ("understudy_lease", "holder", "text"),
    ("understudy_lease", "term", "bigint"),
    ("understudy_lease", "expires", "timestamp with time zone"),
    ("understudy_node", "cluster", "text"),
    ("understudy_node", "node", "text"),
    ("understudy_node", "state", "text"),
    ("understudy_node", "term", "bigint"),
    ("understudy_node", "checksum", "text"),
    (
        "understudy_node",
        "last_heartbeat",
        "timestamp with time zone",
    ),
];

const TYPES: &str = "
SELECT table_name::text, column_name::text, data_type::text
FROM information_schema.columns
WHERE table_schema = current_schema()
  AND table_name IN ('understudy_lease', 'understudy_node')";

const ACQUIRE: &str = "
UPDATE understudy_lease SET
    term = CASE WHEN holder = $2 AND expires > now() THEN term ELSE term + 1 END,
    holder = $2,
    expires = now() + make_interval(secs => $3)
WHERE cluster = $1 AND (holder IS NULL OR holder = $2 OR expires <= now())
RETURNING term";

const RENEW: &str = "
UPDATE understudy_lease SET expires = now() + make_interval(secs => $3)
WHERE cluster = $1 AND holder = $2 AND term = $4
RETURNING term";

const RELEASE: &str = "
UPDATE understudy_lease SET holder = NULL, expires = NULL
WHERE cluster = $1 AND holder = $2 AND term = $3";

const HOLDER: &str = "
SELECT holder, term FROM understudy_lease
WHERE cluster = $1 AND holder IS NOT NULL AND expires > now()";

const RECORD: &str = "
INSERT INTO understudy_node (cluster, node, state, term, checksum, last_heartbeat)
VALUES ($1, $2, $3, $4, $5, now())
ON CONFLICT (cluster, node) DO UPDATE SET
    state = EXCLUDED.state, term = EXCLUDED.term,
    checksum = EXCLUDED.checksum, last_heartbeat = now()";

/// The node rows: at most 64 (a cluster has 16 nodes at most), so that a
/// table filled by someone else cannot fill the daemon's memory.
const NODES: &str = "
SELECT node, state, term, checksum,
       extract(epoch FROM now() - last_heartbeat)::float8
FROM understudy_node WHERE cluster = $1 ORDER BY node
LIMIT 64";

pub struct Postgres {
    url: String,
    /// The URL without its password, for messages.
    shown: String,
    cluster: String,
    node: String,
    lease_secs: f64,
    prober: Prober,
    /// TLS and the password file (`[witness]`).
    access: WitnessAccess,
    client: Option<Client>,
    /// The tables and the lease row were made and checked by this
    /// process: a new connection after an outage only connects (one
    /// round trip instead of four, which a short outage under load needs),
    /// until a statement finds them missing or changed.
    prepared: bool,
}

impl Postgres {
    pub fn new(
        url: &str,
        (cluster, node): (&str, &str),
        lease: Duration,
        prober: Prober,
        access: WitnessAccess,
    ) -> Self {
        Postgres {
            url: url.to_owned(),
            shown: crate::config::redact_password(url),
            cluster: cluster.to_owned(),
            node: node.to_owned(),
            lease_secs: lease.as_secs_f64(),
            prober,
            access,
            client: None,
            prepared: false,
        }
    }

    /// Connects with TLS that verifies the server (its CA, its name) when
    /// the URL says `sslmode=verify-full` or a `ca_file` is given, and the
    /// password from its file; as the probes do otherwise.
    async fn connect(&self) -> Result<Client, WitnessError> {
        let failed = |source| WitnessError::Connect {
            shown: self.shown.clone(),
            source,
        };
        let (config, tls) = super::access::postgres_config(&self.url, &self.access)?;
        let secured = self.access.password_file.is_some() || self.access.ca_file.is_some();
        if !tls && !secured {
            return self
                .prober
                .connect_postgres(&self.url)
                .await
                .map_err(failed);
        }
        let connected = if tls {
            let connector =
                crate::io::probe::pg_tls(self.access.ca_file.as_deref()).map_err(|source| {
                    WitnessError::Tls {
                        shown: self.shown.clone(),
                        source,
                    }
                })?;
            crate::io::probe::pg_connect_config(&config, connector).await
        } else {
            crate::io::probe::pg_connect_config(&config, tokio_postgres::NoTls).await
        };
        connected.map_err(failed)
    }

    pub fn reset(&mut self) {
        self.client = None;
    }

    /// The connection, made (and the tables created) if there is none.
    async fn client(&mut self) -> Result<&Client, WitnessError> {
        let client = match self.client.take() {
            Some(client) => client,
            None if self.prepared => self.connect().await?,
            None => {
                let client = self.connect().await?;
                self.prepare(&client).await?;
                self.prepared = true;
                client
            }
        };
        Ok(self.client.insert(client))
    }

    /// Creates the tables if they are missing, checks their columns, and
    /// makes the cluster's lease row.
    async fn prepare(&self, client: &Client) -> Result<(), WitnessError> {
        // Two nodes creating the tables at once may collide; the second
        // try finds them.
        if client.batch_execute(SCHEMA).await.is_err() {
            client
                .batch_execute(SCHEMA)
                .await
                .map_err(|e| self.failed("create the tables", e))?;
        }
        let found = client
            .query(TYPES, &[])
            .await
            .map_err(|e| self.failed("read the tables' columns", e))?;
        let found = found
            .iter()
            .map(|row| Ok((cell(row, 0)?, cell(row, 1)?, cell(row, 2)?)))
            .collect::<Result<Vec<(String, String, String)>, WitnessError>>()?;
        if let Some(problem) = schema_problem(&found) {
            return Err(WitnessError::Tables {
                shown: self.shown.clone(),
                problem,
            });
        }
        client
            .execute(
                "INSERT INTO understudy_lease (cluster) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&self.cluster],
            )
            .await
            .map_err(|e| self.failed("create the lease row", e))?;
        Ok(())
    }

    fn failed(&self, what: &'static str, source: tokio_postgres::Error) -> WitnessError {
        WitnessError::Statement {
            shown: self.shown.clone(),
            what,
            source,
        }
    }

    /// Runs one statement; a failure drops the connection.
    async fn query(
        &mut self,
        what: &'static str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, WitnessError> {
        let result = self.client().await?.query(sql, params).await;
        result.map_err(|e| {
            self.client = None;
            // Tables dropped or altered behind us: make and check them
            // again on the next connection.
            use tokio_postgres::error::SqlState;
            let schema = [
                SqlState::UNDEFINED_TABLE,
                SqlState::UNDEFINED_COLUMN,
                SqlState::DATATYPE_MISMATCH,
            ];
            if e.code().is_some_and(|c| schema.contains(c)) {
                self.prepared = false;
            }
            self.failed(what, e)
        })
    }

    /// Takes the lease if it is free. The update saw the row as it was
    /// when it began: a release that committed meanwhile makes the read
    /// after it find nobody, and then the update is tried once more.
    pub async fn acquire(&mut self) -> Result<LeaseReply, WitnessError> {
        let (cluster, node, secs) = (self.cluster.clone(), self.node.clone(), self.lease_secs);
        for _ in 0..2 {
            let rows = self
                .query("acquire the lease", ACQUIRE, &[&cluster, &node, &secs])
                .await?;
            if let Some(row) = rows.first() {
                return Ok(LeaseReply::Granted {
                    term: term(cell(row, 0)?)?,
                });
            }
            let held = self.held_by().await?;
            if matches!(held, LeaseReply::HeldBy { term: 0, .. }) {
                continue;
            }
            return Ok(held);
        }
        self.held_by().await
    }

    pub async fn renew(&mut self, term_held: u64) -> Result<LeaseReply, WitnessError> {
        let (cluster, node, secs) = (self.cluster.clone(), self.node.clone(), self.lease_secs);
        let ours = i64::try_from(term_held).unwrap_or(i64::MAX);
        let rows = self
            .query("renew the lease", RENEW, &[&cluster, &node, &secs, &ours])
            .await?;
        match rows.first() {
            Some(row) => Ok(LeaseReply::Granted {
                term: term(cell(row, 0)?)?,
            }),
            None => self.held_by().await,
        }
    }

    /// Who holds the lease we did not get (or nobody, just expired).
    async fn held_by(&mut self) -> Result<LeaseReply, WitnessError> {
        let cluster = self.cluster.clone();
        let rows = self.query("read the lease", HOLDER, &[&cluster]).await?;
        Ok(match rows.first() {
            Some(row) => LeaseReply::HeldBy {
                holder: cell(row, 0)?,
                term: term(cell(row, 1)?)?,
            },
            None => LeaseReply::HeldBy {
                holder: "nobody (it changed hands)".to_owned(),
                term: 0,
            },
        })
    }

    pub async fn release(&mut self, term_held: u64) -> Result<(), WitnessError> {
        let (cluster, node) = (self.cluster.clone(), self.node.clone());
        let ours = i64::try_from(term_held).unwrap_or(i64::MAX);
        self.query("release the lease", RELEASE, &[&cluster, &node, &ours])
            .await
            .map(drop)
    }

    /// Ends the lease `holder` holds with `term` (a fenced holder's).
    /// `Ok(false)` if it had another holder or term (nothing was ended).
    pub async fn break_lease(&mut self, holder: &str, term: u64) -> Result<bool, WitnessError> {
        let cluster = self.cluster.clone();
        let theirs = i64::try_from(term).unwrap_or(i64::MAX);
        let holder = holder.to_owned();
        let ended = format!("{RELEASE} RETURNING term");
        self.query(
            "end the fenced holder's lease",
            &ended,
            &[&cluster, &holder, &theirs],
        )
        .await
        .map(|rows| !rows.is_empty())
    }

    pub async fn record_and_read(&mut self, record: &NodeRecord) -> Result<Seen, WitnessError> {
        let cluster = self.cluster.clone();
        let record_term = i64::try_from(record.term).unwrap_or(i64::MAX);
        self.query(
            "write this node's row",
            RECORD,
            &[
                &cluster,
                &record.node,
                &record.state,
                &record_term,
                &record.checksum,
            ],
        )
        .await?;
        let rows = self.query("read the nodes", NODES, &[&cluster]).await?;
        let nodes = rows
            .iter()
            .map(|row| {
                Ok(NodeSeen {
                    record: NodeRecord {
                        node: cell(row, 0)?,
                        state: cell(row, 1)?,
                        term: term(cell(row, 2)?)?,
                        checksum: cell(row, 3)?,
                    },
                    age: Duration::try_from_secs_f64(cell::<f64>(row, 4)?.max(0.0)).ok(),
                })
            })
            .collect::<Result<Vec<_>, WitnessError>>()?;
        let holder = self.query("read the lease", HOLDER, &[&cluster]).await?;
        let holder = match holder.first() {
            Some(r) => Some((cell(r, 0)?, term(cell(r, 1)?)?)),
            None => None,
        };
        Ok(Seen { holder, nodes })
    }
}

/// A term as stored: never negative (a negative one read as 0 would say
/// "nobody holds the lease"; it is an error instead).
fn term(value: i64) -> Result<u64, WitnessError> {
    u64::try_from(value).map_err(|_| WitnessError::NegativeTerm(value))
}

/// Column `at` of `row`, or an error naming it: a table altered by hand
/// (another type, a NULL where none belongs) is reported, never a panic.
fn cell<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    at: usize,
) -> Result<T, WitnessError> {
    row.try_get(at).map_err(|source| WitnessError::Column {
        column: row.columns().get(at).map_or("?", |c| c.name()).to_owned(),
        source,
    })
}

/// What is wrong with the tables as found (`(table, column, type)`
/// rows), with the statement that fixes it; `None` when they are as this
/// daemon created them.
fn schema_problem(found: &[(String, String, String)]) -> Option<String> {
    let mut problems = Vec::new();
    for (table, column, wanted) in COLUMNS {
        let has = found
            .iter()
            .find(|(t, c, _)| t == table && c == column)
            .map(|(_, _, ty)| ty.as_str());
        match has {
            Some(ty) if ty == wanted => {}
            Some(ty) => problems.push(format!(
                "column {table}.{column} is {ty}, not {wanted} (fix: ALTER TABLE {table} ALTER COLUMN {column} TYPE {wanted})"
            )),
            None => problems.push(format!(
                "table {table} has no column {column} (fix: ALTER TABLE {table} ADD COLUMN {column} {wanted}, or drop the table and let understudy create it)"
            )),
        }
    }
    (!problems.is_empty()).then(|| {
        format!(
            "the witness tables are not as understudy needs them: {}",
            problems.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_term_is_an_error_not_nobody() {
        assert!(matches!(term(7), Ok(7)));
        let err = term(-1).unwrap_err();
        assert!(
            matches!(err, WitnessError::NegativeTerm(-1))
                && err.to_string().contains("negative term (-1)"),
            "{err}"
        );
    }

    fn as_created() -> Vec<(String, String, String)> {
        COLUMNS
            .iter()
            .map(|(t, c, ty)| (t.to_string(), c.to_string(), ty.to_string()))
            .collect()
    }

    #[test]
    fn tables_as_created_pass_and_others_say_how_to_fix_them() {
        assert_eq!(schema_problem(&as_created()), None);
        let mut integer = as_created();
        integer[2].2 = "integer".into();
        let why = schema_problem(&integer).expect("a problem");
        assert!(
            why.contains("column understudy_lease.term is integer, not bigint"),
            "{why}"
        );
        assert!(
            why.contains("ALTER TABLE understudy_lease ALTER COLUMN term TYPE bigint"),
            "{why}"
        );
        let mut missing = as_created();
        missing.retain(|(t, c, _)| !(t == "understudy_node" && c == "checksum"));
        let why = schema_problem(&missing).expect("a problem");
        assert!(
            why.contains("table understudy_node has no column checksum"),
            "{why}"
        );
    }
}
