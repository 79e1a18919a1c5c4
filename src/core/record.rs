//! What happened, as one part of the core: the last takeover and failure,
//! the peer's failure in words until the takeover it caused, when the VIP
//! last moved, the flap window and the running counters. Status, metrics
//! and notifications read it; the decisions only look at the flap window
//! and when the VIP last moved.

use std::time::Instant;

use super::{flap, Counters, Failure, FailureCause, Takeover};

#[derive(Default)]
pub(super) struct Record {
    pub last_takeover: Option<Takeover>,
    pub last_failure: Option<FailureCause>,
    /// The peer's failure in words, kept until a takeover that it caused
    /// (the claim itself may be made on the peer's word that it released).
    pub peer_failure: Option<Failure>,
    /// When the VIP last moved to or from this node.
    pub last_move: Option<Instant>,
    /// When the VIP last moved automatically to or from this node, within
    /// the flap window, and since when that has been too often.
    pub flaps: flap::Flaps,
    pub counters: Counters,
}
