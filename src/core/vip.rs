//! The common IP as this node knows it, as one part of the core: whether
//! the kernel may hold it on our NIC, who holds it and since when, and
//! whether it must be announced again once Active.

use std::time::Instant;

use super::Holder;

#[derive(Default)]
pub(super) struct VipView {
    /// The kernel may hold the VIP on our NIC (we added it, or found it).
    pub held: bool,
    /// Who holds the VIP as this node sees it, and since when.
    pub holder: Option<(Holder, Instant)>,
    /// The peer let go of the VIP while we held it (a split brain ended):
    /// announce again once Active, so that clients that the peer's kernel
    /// answered come back to us.
    pub reannounce_pending: bool,
}
