//! The node's own network interfaces, as the daemon needs them: does the
//! NIC exist, can it carry traffic now (up, with carrier), and a watch
//! that says so the moment it goes down or loses carrier instead of at
//! the next probe. Where the common addresses go is the claim's business
//! ([`super::claim`]); this is only the links the node stands on.

use futures::StreamExt;
use netlink_packet_route::link::{LinkAttribute, LinkFlags};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::constants::RTMGRP_LINK;

use super::netlink::{Netlink, NetlinkError, NicProblem};

/// Why the machine's links cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
}

/// A handle on the machine's links; cheap to clone.
#[derive(Clone)]
pub struct Links {
    netlink: Netlink,
}

impl Links {
    /// Opens the kernel's routing socket; must be called inside a tokio
    /// runtime.
    pub fn open() -> Result<Links, LinkError> {
        Ok(Links {
            netlink: Netlink::open()?,
        })
    }

    /// The handle the L2 claim places addresses through.
    pub(crate) fn netlink(&self) -> &Netlink {
        &self.netlink
    }

    /// Fails, saying so, if there is no interface named `nic`.
    pub async fn require(&self, nic: &str) -> Result<(), LinkError> {
        self.netlink.link(nic).await?;
        Ok(())
    }

    /// Is `nic` administratively up with carrier? The reason if not.
    pub async fn usable(&self, nic: &str) -> Result<(), NicProblem> {
        let link = self.netlink.link(nic).await?;
        super::netlink::nic_usable(nic, link.admin_up, link.carrier)
    }
}

/// Calls `changed` with whether `nic` can carry traffic each time the
/// kernel reports a change of the link, until `changed` returns false.
/// Returns the reason if the kernel's events cannot be read at all.
pub async fn watch(
    nic: &str,
    mut changed: impl FnMut(Result<(), NicProblem>) -> bool,
) -> Result<(), NetlinkError> {
    let events = super::netlink::events(RTMGRP_LINK)?;
    futures::pin_mut!(events);
    while let Some(msg) = events.next().await {
        let RouteNetlinkMessage::NewLink(link) = msg else {
            continue;
        };
        let named = link.attributes.iter().any(|attr| match attr {
            LinkAttribute::IfName(name) => name == nic,
            _ => false,
        });
        if !named {
            continue;
        }
        let up = link.header.flags.contains(LinkFlags::Up);
        let carrier = link.header.flags.contains(LinkFlags::LowerUp);
        tracing::debug!(%nic, up, carrier, "link event");
        if !changed(super::netlink::nic_usable(nic, up, carrier)) {
            return Ok(());
        }
    }
    Ok(())
}
