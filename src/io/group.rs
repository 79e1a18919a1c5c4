//! The common addresses as one group on the machine: every address added
//! before the application starts and removed after it stops, never one by
//! one. A claim that cannot add one address removes the ones it added and
//! fails with the reason, so that no half group is ever left serving.

use std::net::IpAddr;

use super::netlink::{Netlink, NetlinkError};
use crate::config::{Config, Node};

/// One address of the group, on the NIC it goes on for this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub address: IpAddr,
    pub prefix_len: u8,
    pub nic: String,
}

/// The group for this node, and the netlink handle that places it.
#[derive(Clone)]
pub struct Group {
    pub placed: Vec<Placed>,
    netlink: Netlink,
}

impl Group {
    pub fn new(config: &Config, node: &Node, netlink: Netlink) -> Group {
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
        Group { placed, netlink }
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
    pub async fn add_all(&self, rollback: bool) -> Result<(), String> {
        let mut failed = None;
        for (i, p) in self.placed.iter().enumerate() {
            let Err(e) = self.add(p).await else { continue };
            let mut why = format!(
                "cannot add {}/{} on {}: {e}",
                p.address, p.prefix_len, p.nic
            );
            if !rollback {
                failed.get_or_insert(why);
                continue;
            }
            for added in &self.placed[..i] {
                if let Err(e) = self.remove(added).await {
                    why.push_str(&format!("; and cannot remove {} again: {e}", added.address));
                }
            }
            if i > 0 {
                why.push_str(&format!("; the {i} added before it were removed"));
            }
            return Err(why);
        }
        failed.map_or(Ok(()), Err)
    }

    /// Removes every address (each one tried); the first failure, if any.
    pub async fn remove_all(&self) -> Result<(), String> {
        let mut first = None;
        for p in &self.placed {
            if let Err(e) = self.remove(p).await {
                first.get_or_insert(format!("cannot remove {} from {}: {e}", p.address, p.nic));
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Is any address of the group on its NIC (an earlier run's)? A NIC
    /// that does not exist holds nothing (a claim will say it is missing).
    pub async fn any_present(&self) -> Result<bool, NetlinkError> {
        for p in &self.placed {
            let link = match self.netlink.link(&p.nic).await {
                Ok(link) => link,
                Err(NetlinkError::NoSuchLink(_)) => continue,
                Err(e) => return Err(e),
            };
            if self.netlink.has_address(link.index, p.address).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn add(&self, p: &Placed) -> Result<(), NetlinkError> {
        let link = self.netlink.link(&p.nic).await?;
        self.netlink
            .add_address(link.index, p.address, p.prefix_len)
            .await
    }

    async fn remove(&self, p: &Placed) -> Result<(), NetlinkError> {
        let link = self.netlink.link(&p.nic).await?;
        self.netlink.remove_address(link.index, p.address).await
    }
}
