//! `[witness]`: the lease authority. `url` names the backend
//! (`postgres://…` or `etcd://host:port,…`), `lease` how long a holder's
//! lease lasts without renewal, `on_loss` what the holder does when it
//! cannot renew it.

use std::time::Duration;

use super::super::check::Checker;
use super::super::locate::Seg;
use super::super::raw::RawWitness;
use super::super::{OnLoss, Witness, WitnessBackend};

const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// etcd grants leases in whole seconds, and refuses TTLs shorter than
/// about 1.5 s (its election timeout) by raising them.
const MIN_ETCD_LEASE: Duration = Duration::from_secs(2);
/// A lease renewed every quarter of its length must leave a renewal
/// round trip on a LAN enough time.
const MIN_LEASE: Duration = Duration::from_secs(1);
const DEFAULT_ETCD_PORT: u16 = 2379;

fn key(k: &'static str) -> [Seg<'static>; 2] {
    [Seg::Key("witness"), Seg::Key(k)]
}

pub(in crate::config) fn witness(ck: &mut Checker, w: RawWitness) -> Option<Witness> {
    let url = ck.required(&w.url, &key("url"))?;
    let backend = backend(ck, url.trim())?;
    let lease = ck.duration(&w.lease, &key("lease"), DEFAULT_LEASE);
    let etcd = matches!(backend, WitnessBackend::Etcd(_));
    if etcd && (lease < MIN_ETCD_LEASE || lease.subsec_nanos() != 0) {
        ck.report(
            &key("lease"),
            "an etcd lease is a whole number of seconds, at least 2s",
        );
    } else if lease < MIN_LEASE {
        ck.report(&key("lease"), "must be at least 1s");
    }
    let on_loss = match w.on_loss.as_deref().map(str::trim) {
        None | Some("release") => OnLoss::Release,
        Some("keep") => OnLoss::Keep,
        Some(other) => {
            ck.report(
                &key("on_loss"),
                format!("{other:?} is not a policy; write \"release\" or \"keep\""),
            );
            OnLoss::Release
        }
    };
    let access = super::witness_access::access(ck, &w, &backend);
    Some(Witness {
        backend,
        lease,
        on_loss,
        access,
    })
}

/// More than two nodes elect through an etcd witness: heartbeats between
/// a pair can settle who holds, among three they cannot (a node may hear
/// one peer and not the other). `on_loss = "keep"` relies on the one
/// peer's word, which a larger cluster does not have.
pub(in crate::config) fn cluster_size(ck: &mut Checker, nodes: usize, w: Option<&Witness>) {
    if nodes <= 2 {
        return;
    }
    match w {
        Some(w) if matches!(w.backend, WitnessBackend::Etcd(_)) => {
            if w.on_loss == OnLoss::Keep {
                ck.report(
                    &key("on_loss"),
                    format!("with {nodes} nodes only \"release\" is safe: \"keep\" serves on the word of one peer, and more than two nodes have several"),
                );
            }
        }
        Some(_) => ck.report(
            &key("url"),
            format!("{nodes} nodes elect through etcd: write url = \"etcd://HOST:PORT,…\" (PostgreSQL serves a pair only)"),
        ),
        None => ck.report(
            &[Seg::Key("node")],
            format!("{nodes} nodes need a [witness] with an etcd url (url = \"etcd://HOST:PORT,…\"): more than two nodes cannot elect by heartbeats alone"),
        ),
    }
}

/// The backend a URL names, or a report of what is wrong with it.
fn backend(ck: &mut Checker, url: &str) -> Option<WitnessBackend> {
    if let Some(list) = url.strip_prefix("etcd://") {
        let mut endpoints = Vec::new();
        for one in list.split(',').map(str::trim) {
            match endpoint(one) {
                Some(e) => endpoints.push(e),
                None => {
                    ck.report(
                        &key("url"),
                        format!("{one:?} is not an etcd endpoint; write HOST:PORT"),
                    );
                    return None;
                }
            }
        }
        return Some(WitnessBackend::Etcd(endpoints));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let parsed = crate::io::witness::access::postgres_config(url, &Default::default());
        return match parsed {
            Ok(_) => Some(WitnessBackend::Postgres(url.to_owned())),
            Err(e) => {
                ck.report(&key("url"), e.to_string());
                None
            }
        };
    }
    ck.report(
        &key("url"),
        format!("{url:?}: write postgres://USER@HOST/DATABASE or etcd://HOST:PORT,…"),
    );
    None
}

/// `host:port` (port 2379 when left out); `[v6]:port` for IPv6.
fn endpoint(text: &str) -> Option<String> {
    if text.is_empty() || text.contains('/') || text.contains('@') {
        return None;
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && !p.contains(']') => (h, p.parse::<u16>().ok()?),
        _ => (text, DEFAULT_ETCD_PORT),
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let valid = !bare.is_empty()
        && bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c));
    valid.then(|| format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn endpoints_get_the_default_port_and_bad_ones_are_refused() {
        assert_eq!(endpoint("192.0.2.30").as_deref(), Some("192.0.2.30:2379"));
        assert_eq!(
            endpoint("192.0.2.30:2479").as_deref(),
            Some("192.0.2.30:2479")
        );
        assert_eq!(
            endpoint("[2001:db8::30]:2379").as_deref(),
            Some("[2001:db8::30]:2379")
        );
        for bad in ["", "a/b", "user@h", "h:port", "h:99999"] {
            assert_eq!(endpoint(bad), None, "{bad}");
        }
    }
}
