//! The L2 claim (`claim = "l2"`, the default): the common addresses go on
//! the node's NICs through rtnetlink, gratuitous ARP and unsolicited
//! neighbour advertisements move the segment's neighbour caches to this
//! host, the RFC 5227 probe (and its IPv6 twin) asks whether another host
//! answers for them, and the kernel's address events say at once when one
//! is taken off.
//!
//! The addresses are one group: every one is added before the application
//! starts and removed after it stops, never one by one. A claim that
//! cannot add one address removes the ones it added and fails with the
//! reason, so that no half group is ever left serving.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::constants::{RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK};
use tokio::task::JoinHandle;

use super::neighbours::{self, ArpError};
use crate::config::{Config, Node};
use crate::io::netlink::{Netlink, NetlinkError};

/// Why an L2 claim's step failed, with the address and NIC it was at.
#[derive(Debug, thiserror::Error)]
pub enum L2Error {
    #[error("cannot add {address}/{prefix_len} on {nic}: {source}")]
    Add {
        address: IpAddr,
        prefix_len: u8,
        nic: String,
        source: NetlinkError,
    },
    #[error("cannot remove {address} from {nic}: {source}")]
    Remove {
        address: IpAddr,
        nic: String,
        source: NetlinkError,
    },
    /// A claim's addition failed and the addresses added before it were
    /// taken off again (`left` are those that could not be).
    #[error("{}", rolled_back(failed, *removed, left))]
    RolledBack {
        failed: Box<L2Error>,
        removed: usize,
        left: Vec<L2Error>,
    },
    #[error("cannot read the addresses on {nic}: {source}")]
    Read { nic: String, source: NetlinkError },
    #[error(transparent)]
    Wire(#[from] ArpError),
    #[error("cannot watch the addresses: {0}")]
    Watch(NetlinkError),
}

/// The words of [`L2Error::RolledBack`], as the log has always said them.
fn rolled_back(failed: &L2Error, removed: usize, left: &[L2Error]) -> String {
    let mut why = failed.to_string();
    for e in left {
        if let L2Error::Remove {
            address, source, ..
        } = e
        {
            why.push_str(&format!("; and cannot remove {address} again: {source}"));
        }
    }
    if removed > 0 {
        why.push_str(&format!("; the {removed} added before it were removed"));
    }
    why
}

/// One address of the group, on the NIC it goes on for this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub address: IpAddr,
    pub prefix_len: u8,
    pub nic: String,
}

/// The group for this node, the netlink handle that places it, and how
/// its announcements are repeated.
#[derive(Clone)]
pub struct L2 {
    pub placed: Vec<Placed>,
    netlink: Netlink,
    announce_count: u32,
    announce_interval: Duration,
}

impl L2 {
    pub fn new(config: &Config, node: &Node, netlink: Netlink) -> L2 {
        let placed = config
            .cluster
            .vips
            .iter()
            .map(|v| Placed {
                address: v.address,
                prefix_len: v.prefix_len,
                nic: v.nic_for(&node.nic).to_owned(),
            })
            .collect();
        L2 {
            placed,
            netlink,
            announce_count: config.announce.count,
            announce_interval: config.announce.interval,
        }
    }

    /// The NICs the group uses, each with its addresses, in the order of
    /// the configuration.
    pub fn by_nic(&self) -> Vec<(String, Vec<IpAddr>)> {
        let mut out: Vec<(String, Vec<IpAddr>)> = Vec::new();
        for p in &self.placed {
            match out.iter_mut().find(|(nic, _)| *nic == p.nic) {
                Some((_, addresses)) => addresses.push(p.address),
                None => out.push((p.nic.clone(), vec![p.address])),
            }
        }
        out
    }

    /// Adds every address. For a claim (`rollback`), the first failure
    /// removes the ones added and says which address failed and why; for a
    /// restore of a group already held, the others are still added and
    /// kept (removing them would take the service down for one address).
    pub async fn place(&self, rollback: bool) -> Result<(), L2Error> {
        let mut failed = None;
        for (i, p) in self.placed.iter().enumerate() {
            let Err(e) = self.add(p).await else { continue };
            if !rollback {
                failed.get_or_insert(e);
                continue;
            }
            let mut left = Vec::new();
            for added in &self.placed[..i] {
                if let Err(e) = self.remove_one(added).await {
                    left.push(e);
                }
            }
            if i == 0 {
                return Err(e);
            }
            return Err(L2Error::RolledBack {
                failed: Box::new(e),
                removed: i,
                left,
            });
        }
        failed.map_or(Ok(()), Err)
    }

    /// Removes every address (each one tried); the first failure, if any.
    pub async fn remove(&self) -> Result<(), L2Error> {
        let mut first = None;
        for p in &self.placed {
            if let Err(e) = self.remove_one(p).await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Is any address of the group on its NIC (an earlier run's)? A NIC
    /// that does not exist holds nothing (a claim will say it is missing).
    pub async fn present(&self) -> Result<bool, L2Error> {
        for p in &self.placed {
            let read = |source| L2Error::Read {
                nic: p.nic.clone(),
                source,
            };
            let link = match self.netlink.link(&p.nic).await {
                Ok(link) => link,
                Err(NetlinkError::NoSuchLink(_)) => continue,
                Err(e) => return Err(read(e)),
            };
            if self
                .netlink
                .has_address(link.index, p.address)
                .await
                .map_err(read)?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The first announcement round on every NIC of the group, now; the
    /// repeats go on in the background until the handles are aborted.
    pub async fn announce(&self) -> Result<Vec<JoinHandle<()>>, L2Error> {
        let mut repeats = Vec::new();
        for (nic, addresses) in self.by_nic() {
            let repeat =
                neighbours::announce(&nic, addresses, self.announce_count, self.announce_interval)
                    .await;
            match repeat {
                Ok(repeat) => repeats.extend(repeat),
                Err(e) => {
                    repeats.iter().for_each(JoinHandle::abort);
                    return Err(e.into());
                }
            }
        }
        Ok(repeats)
    }

    /// Probes every NIC of the group at once until `deadline`: the MAC of
    /// the first other host that answers for an address, if one does.
    pub async fn holder(&self, deadline: Instant) -> Result<Option<String>, L2Error> {
        let probes =
            self.by_nic()
                .into_iter()
                .map(|(nic, addresses)| async move {
                    neighbours::probe(&nic, addresses, deadline).await
                });
        let answers = futures::future::join_all(probes).await;
        let mut holder = Ok(None);
        for answer in answers {
            match answer {
                Ok(Some(mac)) => return Ok(Some(mac.to_string())),
                Ok(None) => {}
                Err(e) => holder = Err(e.into()),
            }
        }
        holder
    }

    /// Calls `missing` each time an address of the group is taken off its
    /// NIC, until it returns false.
    pub async fn watch(&self, mut missing: impl FnMut() -> bool) -> Result<(), L2Error> {
        let groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
        let events = crate::io::netlink::events(groups).map_err(L2Error::Watch)?;
        futures::pin_mut!(events);
        let group = self.by_nic();
        // Interface indexes by name, learnt from link events; an address
        // event on an index not yet seen is taken as ours (the safe side).
        let mut indexes: Vec<(String, u32)> = Vec::new();
        while let Some(msg) = events.next().await {
            match msg {
                RouteNetlinkMessage::NewLink(l) => {
                    let name = l.attributes.iter().find_map(|attr| match attr {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    });
                    if let Some(name) = name {
                        indexes.retain(|(n, _)| *n != name);
                        indexes.push((name, l.header.index));
                    }
                }
                RouteNetlinkMessage::DelAddress(a) => {
                    let deleted = a.attributes.iter().find_map(|attr| match attr {
                        AddressAttribute::Local(ip) | AddressAttribute::Address(ip) => Some(*ip),
                        _ => None,
                    });
                    let ours = group.iter().any(|(on, addresses)| {
                        let index = indexes.iter().find(|(n, _)| n == on).map(|(_, i)| *i);
                        index.is_none_or(|i| i == a.header.index)
                            && deleted.is_some_and(|ip| addresses.contains(&ip))
                    });
                    if ours && !missing() {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn add(&self, p: &Placed) -> Result<(), L2Error> {
        let add = async {
            let link = self.netlink.link(&p.nic).await?;
            self.netlink
                .add_address(link.index, p.address, p.prefix_len)
                .await
        };
        add.await.map_err(|source| L2Error::Add {
            address: p.address,
            prefix_len: p.prefix_len,
            nic: p.nic.clone(),
            source,
        })
    }

    async fn remove_one(&self, p: &Placed) -> Result<(), L2Error> {
        let remove = async {
            let link = self.netlink.link(&p.nic).await?;
            self.netlink.remove_address(link.index, p.address).await
        };
        remove.await.map_err(|source| L2Error::Remove {
            address: p.address,
            nic: p.nic.clone(),
            source,
        })
    }
}
