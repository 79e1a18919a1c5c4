//! The witness's lease (only with a `[witness]`): only the node that holds
//! it may hold the VIP.
//!
//! The core asks ([`LeaseAsk`]) and the edge answers each acquire or renew
//! with one [`LeaseReply`]; a release is not answered. One ask is in
//! flight at a time, and the instant it was *asked* is what the lease is
//! measured from: the witness started its own count later than that, so a
//! holder that stops at `asked + lease − margin` on its own monotonic clock
//! always stops before the lease can run out at the witness, however slow
//! the reply was.
//!
//! - A claim starts in `Acquiring`; the VIP is touched only once the lease
//!   is granted. A refusal (another holder, or no witness) sends the node
//!   back to Passive and holds takeovers back until the next try.
//! - The holder renews every quarter of the lease. When the lease runs out
//!   unrenewed, `on_loss` decides: `release` fences at once (the VIP goes
//!   first, then the application stops); `keep` keeps serving while the
//!   peer is still heard, and fences as soon as it is not.
//! - A release hands the lease back once the VIP is off the NIC, so that a
//!   planned handover does not wait for the lease to run out.
//! - The lease's term is the fencing token: while it holds the lease, the
//!   node's term (heartbeats, status, events) is the lease's term.

mod rules;

use std::fmt;
use std::time::{Duration, Instant};

/// What the holder does when it cannot renew its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnLoss {
    /// Stop serving before the lease can run out anywhere (the default).
    Release,
    /// Keep serving while the peer is heard (it would ask before it took
    /// over); stop as soon as it is not.
    Keep,
}

impl fmt::Display for OnLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnLoss::Release => "release",
            OnLoss::Keep => "keep",
        })
    }
}

/// The lease's timing, from `witness.lease`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseSettings {
    pub length: Duration,
    pub on_loss: OnLoss,
}

impl LeaseSettings {
    /// How often the holder renews, and a refused node asks again.
    pub fn renew_every(&self) -> Duration {
        self.length / 4
    }

    /// How long before the lease could run out at the witness the holder
    /// stops: clock rate differences and the release itself fit in it.
    pub fn margin(&self) -> Duration {
        self.length / 4
    }

    /// How long after it was asked a granted lease counts as held here.
    pub fn held_for(&self) -> Duration {
        self.length.saturating_sub(self.margin())
    }
}

/// What the core asks of the witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAsk {
    /// Take the lease if nobody holds it (or we already do) →
    /// [`LeaseReply`].
    Acquire,
    /// Extend the lease we hold with `term` → [`LeaseReply`].
    Renew { term: u64 },
    /// Give back the lease held with `term`, if it is still ours; no reply.
    Release { term: u64 },
    /// End the lease `holder` holds with `term`, if it still does: the
    /// holder was fenced (its host is off), so the claim need not wait for
    /// the lease to run out. No reply.
    Break { holder: String, term: u64 },
}

/// The witness's answer to an acquire or a renew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseReply {
    /// The lease is ours, with this term (granted or extended).
    Granted { term: u64 },
    /// Another node holds it.
    HeldBy { holder: String, term: u64 },
    /// The witness could not be asked, or failed to answer.
    Failed(String),
}

/// Why the witness did not give us the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseRefusal {
    HeldBy { holder: String, term: u64 },
    Unreachable(String),
}

impl LeaseRefusal {
    /// The same refusal, for the log: held by the same holder and term, or
    /// unreachable for whatever error.
    pub fn same_as(&self, other: &LeaseRefusal) -> bool {
        match (self, other) {
            (LeaseRefusal::Unreachable(_), LeaseRefusal::Unreachable(_)) => true,
            (a, b) => a == b,
        }
    }
}

/// The lease as this node knows it.
#[derive(Debug, Default)]
pub struct Lease {
    /// Held with this term until this instant (asked + lease − margin).
    held: Option<(u64, Instant)>,
    /// The acquire or renew in flight, and when it was asked.
    asked: Option<Instant>,
    /// The last refusal, and when to ask again (`None` once due).
    refused: Option<(LeaseRefusal, Option<Instant>)>,
    /// The term of the last lease held, to hand back after a release.
    last_term: Option<u64>,
    /// The lease ran out while the VIP may be on our NIC: stop serving.
    lapsed: bool,
    /// Ran out, but kept (`on_loss = "keep"`, the peer is heard).
    kept: bool,
    /// A wait in flight was cut short for the fence.
    interrupted: bool,
    /// Asks in a row refused while the peer hands the lease back.
    handback_asks: u32,
}

/// What status shows of the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseStatus {
    pub term: Option<u64>,
    /// How much longer it counts as held here.
    pub held_for: Option<Duration>,
    pub refused: Option<LeaseRefusal>,
    pub kept: bool,
}
