//! The claim seam: the one way the runtime places the common addresses,
//! removes them, announces them, asks who else answers for them and
//! watches that they stay. The effects worker, the start-up reconcile,
//! the emergency release and the address watch all go through [`Claim`];
//! nothing else in the runtime knows how an address is claimed.
//!
//! [`Claim::L2`] (netlink + ARP/NDP, `claim = "l2"`) is the first kind.
//! The seam is shaped for the kinds that follow (a route for the host's
//! BGP speaker, a cloud provider's API):
//!
//! - every step is async and reports a typed error; the worker runs it
//!   off the loop, so a claim that takes seconds delays nothing else, and
//!   a step that fails (even transiently) is a failed claim the core backs
//!   off from and tries again;
//! - "who answers for the addresses" is a question with a deadline whose
//!   answer is a description of the other holder (a MAC address for L2; a
//!   next hop or an instance for the others), so it can be a query to a
//!   routing table or an API instead of a probe on the wire;
//! - an announcement is a value the worker keeps while the addresses are
//!   held and drops when they go (for a kind that has nothing to repeat,
//!   an empty one);
//! - [`Claim::watch`] reports an address taken away behind the daemon's
//!   back; a kind that cannot be told returns at once, and the probes
//!   notice instead.

mod l2;
mod neighbours;

use std::time::Instant;

use tokio::task::JoinHandle;

use super::nic::Links;
use crate::config::{Config, Node};
pub use l2::L2Error;
pub use neighbours::ArpError;

/// Why a step of a claim failed, by the kind of claim.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(transparent)]
    L2(#[from] L2Error),
}

/// How this node claims the common addresses; cheap to clone.
#[derive(Clone)]
pub enum Claim {
    /// On the node's NICs, announced with gratuitous ARP / unsolicited
    /// neighbour advertisements.
    L2(l2::L2),
}

/// The announcements of the current claim that go on in the background;
/// they stop when this is dropped (an announcement for an address no
/// longer held would pull clients back to a node that does not serve).
#[derive(Default)]
pub struct Announcement {
    repeats: Vec<JoinHandle<()>>,
}

impl Drop for Announcement {
    fn drop(&mut self) {
        for repeat in &self.repeats {
            repeat.abort();
        }
    }
}

impl Claim {
    /// The claim `config` asks of `node`.
    pub fn new(config: &Config, node: &Node, links: &Links) -> Claim {
        Claim::L2(l2::L2::new(config, node, links.netlink().clone()))
    }

    /// How many addresses the claim places (for the logs).
    pub fn addresses(&self) -> usize {
        match self {
            Claim::L2(l2) => l2.placed.len(),
        }
    }

    /// Places every address. A claim (`restore` false) that fails part-way
    /// takes off what it placed; a restore of addresses already held (one
    /// was taken away) keeps the others whatever happens.
    pub async fn place(&self, restore: bool) -> Result<(), ClaimError> {
        match self {
            Claim::L2(l2) => Ok(l2.place(!restore).await?),
        }
    }

    /// Takes every address off (each one tried); the first failure.
    pub async fn remove(&self) -> Result<(), ClaimError> {
        match self {
            Claim::L2(l2) => Ok(l2.remove().await?),
        }
    }

    /// Is any address placed here already (by an earlier run)?
    pub async fn present(&self) -> Result<bool, ClaimError> {
        match self {
            Claim::L2(l2) => Ok(l2.present().await?),
        }
    }

    /// Tells the network that this node now holds the addresses; what
    /// repeats in the background lives as long as the returned value.
    pub async fn announce(&self) -> Result<Announcement, ClaimError> {
        match self {
            Claim::L2(l2) => Ok(Announcement {
                repeats: l2.announce().await?,
            }),
        }
    }

    /// Another holder of the addresses that shows itself before
    /// `deadline`, described in words (for L2, its MAC address).
    pub async fn holder(&self, deadline: Instant) -> Result<Option<String>, ClaimError> {
        match self {
            Claim::L2(l2) => Ok(l2.holder(deadline).await?),
        }
    }

    /// Calls `missing` each time an address is taken away from this node,
    /// until it returns false.
    pub async fn watch(&self, missing: impl FnMut() -> bool) -> Result<(), ClaimError> {
        match self {
            Claim::L2(l2) => Ok(l2.watch(missing).await?),
        }
    }
}
