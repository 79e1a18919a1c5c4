//! The lease in etcd, through its v3 JSON gateway (`/v3/…`, keys and
//! values in base64, 64-bit numbers as strings): an etcd lease with
//! keep-alive, and the key `/understudy/<cluster>/lease` holding the
//! holder's name, attached to it.
//!
//! - acquire: grant a lease, then `txn(create_revision(key) == 0 →
//!   put(key, me, lease))`; the key's `create_revision` is the term. If
//!   the key exists and names us (a restarted daemon), its lease is taken
//!   back as it is.
//! - renew: keep the lease alive, then check that the key still names us
//!   with the same term (an administrator may have deleted it).
//! - release: `txn(value == me and create_revision == term → delete)`,
//!   then revoke the lease.
//!
//! Each node's row is the key `/understudy/<cluster>/node/<name>`; etcd
//! keeps no time, so a row's age is how long ago this node saw it change.
//! Endpoints are tried in order; a failed one sends the next call to the
//! next. Every answer is read into the types of [`answers`]: one without
//! what it must have is an error, never a 0 or an empty name.

mod answers;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use answers::{Done, Grant, KeepAlive, KeyValue, Range, Row, Token, Txn};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::error::Answer;
use super::{NodeRecord, NodeSeen, Seen, WitnessError};
use crate::config::WitnessAccess;
use crate::core::LeaseReply;
use crate::io::bounded::{self, BodyError};

/// etcd's gRPC code for a request whose auth token is invalid or expired
/// (`Unauthenticated`): authenticate again and retry.
const UNAUTHENTICATED: i64 = 16;

pub struct Etcd {
    endpoints: Vec<String>,
    /// The endpoint the next call goes to.
    current: usize,
    http: reqwest::Client,
    /// `https` with a `ca_file`, `http` otherwise.
    scheme: &'static str,
    /// A user and its password file (etcd's auth), and the token the
    /// last authentication gave.
    user: Option<(String, std::path::PathBuf)>,
    token: Option<String>,
    lease_key: String,
    node_prefix: String,
    node: String,
    ttl: u64,
    /// The etcd lease we hold and the term it was taken with.
    held: Option<(String, u64)>,
    /// Each row's last mod_revision and when this node saw it change.
    changes: HashMap<String, (u64, Option<Instant>)>,
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// An answer read as the type it must be.
fn decode<T: DeserializeOwned>(path: &'static str, answer: Value) -> Result<T, WitnessError> {
    serde_json::from_value(answer).map_err(|source| WitnessError::Malformed { path, source })
}

/// The holder a lease key names: never empty (an empty value would read
/// as a holder nobody is).
fn holder_of(kv: &KeyValue) -> Result<String, WitnessError> {
    match kv.value.0.as_str() {
        "" => Err(WitnessError::Incomplete(
            "the lease key names nobody (an empty value)",
        )),
        holder => Ok(holder.to_owned()),
    }
}

/// The key just after every key that starts with `prefix` (etcd's
/// `range_end` for a prefix).
fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut() {
        *last += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Etcd {
    pub fn new(
        endpoints: &[String],
        cluster: &str,
        node: &str,
        lease: Duration,
        timeout: Duration,
        access: &WitnessAccess,
    ) -> Result<Etcd, WitnessError> {
        let http = super::access::etcd_client(timeout, access)?;
        Ok(Etcd {
            endpoints: endpoints.to_vec(),
            current: 0,
            http,
            scheme: if access.ca_file.is_some() {
                "https"
            } else {
                "http"
            },
            user: access.user.clone().zip(access.password_file.clone()),
            token: None,
            lease_key: format!("/understudy/{cluster}/lease"),
            node_prefix: format!("/understudy/{cluster}/node/"),
            node: node.to_owned(),
            ttl: lease.as_secs().max(1),
            held: None,
            changes: HashMap::new(),
        })
    }

    /// Moves to the next endpoint (after a failure).
    pub fn reset(&mut self) {
        self.current = (self.current + 1) % self.endpoints.len().max(1);
    }

    /// One call to the gateway. An endpoint that refuses the connection
    /// (its member is down, its host up) is passed over at once for the
    /// next; any other failure is an error, and the next call tries the
    /// next endpoint.
    async fn call<T: DeserializeOwned>(
        &mut self,
        path: &'static str,
        body: Value,
    ) -> Result<T, WitnessError> {
        let answer = self.call_raw(path, body).await?;
        decode(path, answer)
    }

    async fn call_raw(&mut self, path: &'static str, body: Value) -> Result<Value, WitnessError> {
        if self.user.is_some() && self.token.is_none() {
            self.authenticate().await?;
        }
        match self.call_any(path, &body).await {
            // The token ran out (`--auth-token-ttl`): once more, anew.
            Err(e) if e.etcd_code() == Some(UNAUTHENTICATED) && self.user.is_some() => {
                tracing::info!("etcd's auth token ran out; authenticating again");
                self.authenticate().await?;
                self.call_any(path, &body).await
            }
            other => other,
        }
    }

    /// Asks for a token as the configured user (the password read from
    /// its file each time, so that a changed password is taken).
    async fn authenticate(&mut self) -> Result<(), WitnessError> {
        self.token = None;
        let Some((user, file)) = self.user.clone() else {
            return Ok(());
        };
        let password = super::access::read_secret(&file)?;
        let body = json!({ "name": user, "password": password });
        let path = "auth/authenticate";
        let answer = self.call_any(path, &body).await?;
        let Token { token } = decode(path, answer)?;
        if token.is_empty() {
            return Err(WitnessError::NoToken(user));
        }
        self.token = Some(token);
        Ok(())
    }

    /// Tries each endpoint in turn while connections fail; an error says
    /// etcd's gRPC code when it gave one.
    async fn call_any(&mut self, path: &'static str, body: &Value) -> Result<Value, WitnessError> {
        let mut refused = Vec::new();
        for _ in 0..self.endpoints.len().max(1) {
            match self.call_one(path, body).await {
                Err(e) if e.connect_failed() => refused.push(e),
                other => return other,
            }
        }
        Err(WitnessError::Unreachable(refused))
    }

    /// One call to the current endpoint; an error says whether the
    /// connection itself failed.
    async fn call_one(&mut self, path: &'static str, body: &Value) -> Result<Value, WitnessError> {
        let endpoint = self.endpoints[self.current % self.endpoints.len()].clone();
        let url = format!("{}://{endpoint}/v3/{path}", self.scheme);
        let result = async {
            let mut request = self.http.post(&url).json(body);
            if let Some(token) = self
                .token
                .as_deref()
                .filter(|_| path != "auth/authenticate")
            {
                request = request.header("Authorization", token);
            }
            let response = request.send().await?;
            let status = response.status();
            let bytes = bounded::body(response, bounded::WITNESS_ANSWER).await?;
            let value: Value = serde_json::from_slice(&bytes).map_err(Answer::Json)?;
            Ok::<_, Answer>((status, value))
        }
        .await;
        match result {
            Ok((status, value)) if status.is_success() => Ok(value),
            Ok((status, value)) => {
                let code = value["code"].as_i64();
                if code != Some(UNAUTHENTICATED) {
                    self.reset();
                }
                let message = value["message"].as_str().unwrap_or("no message").to_owned();
                Err(WitnessError::Refused {
                    endpoint,
                    path,
                    status,
                    message,
                    code,
                })
            }
            Err(source) => {
                self.reset();
                let connect = matches!(&source, Answer::Body(BodyError::Http(e)) if e.is_connect());
                Err(WitnessError::Gateway {
                    endpoint,
                    path,
                    connect,
                    source,
                })
            }
        }
    }

    pub async fn acquire(&mut self) -> Result<LeaseReply, WitnessError> {
        let grant: Grant = self.call("lease/grant", json!({ "TTL": self.ttl })).await?;
        if grant.id.0 == 0 {
            return Err(WitnessError::Incomplete("granted no lease (ID 0)"));
        }
        let id = grant.id.0.to_string();
        let key = b64(&self.lease_key);
        let txn = json!({
            "compare": [{"key": key, "target": "CREATE", "create_revision": "0", "result": "EQUAL"}],
            "success": [{"request_put": {"key": key, "value": b64(&self.node), "lease": id}}],
            "failure": [{"request_range": {"key": key}}],
        });
        let answer: Txn = self.call("kv/txn", txn).await?;
        if answer.succeeded {
            let term = answer.header.revision.0;
            self.held = Some((id, term));
            return Ok(LeaseReply::Granted { term });
        }
        // Not created: someone holds it. Our new lease is not needed.
        let _ = self.call_raw("lease/revoke", json!({ "ID": id })).await;
        let kv = answer
            .responses
            .into_iter()
            .find_map(|r| r.response_range)
            .and_then(|range| range.kvs.into_iter().next())
            .ok_or(WitnessError::Incomplete(
                "the lease key exists but the answer does not show it",
            ))?;
        let (holder, term) = (holder_of(&kv)?, kv.create_revision.0);
        if holder == self.node {
            // Ours from before a restart: keep its lease alive.
            if kv.lease.0 == 0 {
                return Err(WitnessError::Incomplete(
                    "the lease key names this node but no etcd lease",
                ));
            }
            self.held = Some((kv.lease.0.to_string(), term));
            return self.renew(term).await;
        }
        Ok(LeaseReply::HeldBy { holder, term })
    }

    pub async fn renew(&mut self, term: u64) -> Result<LeaseReply, WitnessError> {
        let Some((id, _)) = self.held.clone().filter(|(_, t)| *t == term) else {
            return self.holder_now().await;
        };
        let alive: KeepAlive = self.call("lease/keepalive", json!({ "ID": id })).await?;
        if alive.result.ttl.0 == 0 {
            self.held = None;
            return self.holder_now().await;
        }
        match self.holder_now().await? {
            LeaseReply::HeldBy { holder, term: t } if holder == self.node && t == term => {
                Ok(LeaseReply::Granted { term })
            }
            other => {
                self.held = None;
                Ok(other)
            }
        }
    }

    /// Who the lease key names now (as a refusal; checked by the caller).
    async fn holder_now(&mut self) -> Result<LeaseReply, WitnessError> {
        let range: Range = self
            .call("kv/range", json!({ "key": b64(&self.lease_key) }))
            .await?;
        let Some(kv) = range.kvs.first() else {
            // The one place term 0 is said: no key, so nobody holds it.
            return Ok(LeaseReply::HeldBy {
                holder: "nobody (it ran out)".to_owned(),
                term: 0,
            });
        };
        Ok(LeaseReply::HeldBy {
            holder: holder_of(kv)?,
            term: kv.create_revision.0,
        })
    }

    pub async fn release(&mut self, term: u64) -> Result<(), WitnessError> {
        let node = self.node.clone();
        self.end(&node, term).await?;
        if let Some((id, _)) = self.held.take() {
            self.call_raw("lease/revoke", json!({ "ID": id })).await?;
        }
        Ok(())
    }

    /// Ends the lease `holder` holds with `term` (a fenced holder's): the
    /// key goes, whatever etcd lease it was attached to. `Ok(false)` if
    /// the key had another holder or term (nothing was ended).
    pub async fn break_lease(&mut self, holder: &str, term: u64) -> Result<bool, WitnessError> {
        self.end(holder, term).await
    }

    /// Deletes the lease key if `holder` holds it with `term`.
    async fn end(&mut self, holder: &str, term: u64) -> Result<bool, WitnessError> {
        let key = b64(&self.lease_key);
        let txn = json!({
            "compare": [
                {"key": key, "target": "VALUE", "value": b64(holder), "result": "EQUAL"},
                {"key": key, "target": "CREATE", "create_revision": term.to_string(), "result": "EQUAL"},
            ],
            "success": [{"request_delete_range": {"key": key}}],
        });
        let answer: Txn = self.call("kv/txn", txn).await?;
        Ok(answer.succeeded)
    }

    pub async fn record_and_read(&mut self, record: &NodeRecord) -> Result<Seen, WitnessError> {
        let value = json!({
            "state": record.state,
            "term": record.term,
            "checksum": record.checksum,
        });
        let key = format!("{}{}", self.node_prefix, record.node);
        let _: Done = self
            .call(
                "kv/put",
                json!({ "key": b64(&key), "value": b64(&value.to_string()) }),
            )
            .await?;
        let rows: Range = self
            .call(
                "kv/range",
                json!({
                    "key": b64(&self.node_prefix),
                    "range_end": b64(&prefix_end(&self.node_prefix)),
                }),
            )
            .await?;
        let nodes = self.rows(&rows);
        let holder = match self.holder_now().await? {
            LeaseReply::HeldBy { term: 0, .. } => None,
            LeaseReply::HeldBy { holder, term } => Some((holder, term)),
            _ => None,
        };
        Ok(Seen { holder, nodes })
    }

    /// The node rows of a range answer, each aged by when it last changed.
    /// A row that cannot be read is shown as such (its state says why),
    /// not as a row with empty fields.
    fn rows(&mut self, range: &Range) -> Vec<NodeSeen> {
        let now = Instant::now();
        let mut nodes = Vec::new();
        for kv in &range.kvs {
            let node = kv.key.0.trim_start_matches(&self.node_prefix).to_owned();
            let row = serde_json::from_str::<Row>(&kv.value.0).unwrap_or_else(|e| Row {
                state: format!("unreadable ({e})"),
                term: 0,
                checksum: String::new(),
            });
            let revision = kv.mod_revision.0;
            let seen = self.changes.entry(node.clone()).or_insert((revision, None));
            if seen.0 != revision {
                *seen = (revision, Some(now));
            }
            nodes.push(NodeSeen {
                record: NodeRecord {
                    node: node.clone(),
                    state: row.state,
                    term: row.term,
                    checksum: row.checksum,
                },
                age: seen.1.map(|t| now.saturating_duration_since(t)),
            });
        }
        nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_just_after_its_last_key() {
        assert_eq!(prefix_end("/understudy/c/node/"), "/understudy/c/node0");
    }

    #[test]
    fn a_lease_key_with_an_empty_value_names_nobody_and_is_an_error() {
        let kv: KeyValue =
            serde_json::from_str(r#"{"key":"Zm9v","create_revision":"2","mod_revision":"2"}"#)
                .unwrap();
        let err = holder_of(&kv).unwrap_err();
        assert!(
            matches!(err, WitnessError::Incomplete(_)) && err.to_string().contains("names nobody"),
            "{err}"
        );
    }
}
