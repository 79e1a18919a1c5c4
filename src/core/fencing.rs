//! The watchdog's schedule: until when a holder may feed it, and the
//! timeouts a lease allows.
//!
//! A holder whose daemon stops (frozen, killed, its host hung) stops
//! feeding; the device then resets the host one timeout after the last
//! feed. With a witness, the feeding stops at
//! `asked + lease − timeout − margin` for the last renewal asked at
//! `asked`, so that the reset comes at the latest `margin` before that
//! lease can end at the witness, and so before any other node can be
//! granted it: a frozen holder never serves beside a new one. The holder
//! asks again every quarter of the lease, so the feeding goes on without a
//! gap while renewals succeed as long as
//! `timeout + margin ≤ ¾ lease` ([`longest_timeout`]).
//!
//! Without a witness nothing can promise that: the peer takes over once it
//! has not heard us for its peer timeout. The holder feeds for a peer
//! timeout past each turn of its loop, so that a stopped daemon resets its
//! host about one watchdog timeout after the peer could have taken over.

use std::time::{Duration, Instant};

use super::lease::LeaseSettings;
use super::timer::later;
use super::Core;

/// What is kept between the reset and the lease's end at the witness: a
/// twentieth of the lease, at least 200 ms (the device's own slack, and
/// clocks that run at slightly different rates). A live holder that cannot
/// renew releases on its own at ¾ of the lease; the reset, the backstop,
/// comes at `lease − margin`, which leaves the release a quarter lease
/// less the margin to finish (and disarm) first.
pub fn safety_margin(lease: Duration) -> Duration {
    (lease / 20).max(Duration::from_millis(200))
}

/// The longest watchdog timeout a lease allows, in whole seconds (what
/// drivers take): `¾ lease − margin`, rounded down. Zero: the lease is
/// too short for any watchdog.
pub fn longest_timeout(lease: Duration) -> Duration {
    let room = (lease * 3 / 4).saturating_sub(safety_margin(lease));
    Duration::from_secs(room.as_secs())
}

/// Until when a lease asked at `asked` lets the holder feed a watchdog of
/// `timeout`.
fn feed_until(asked: Instant, lease: LeaseSettings, timeout: Duration) -> Instant {
    let room = lease
        .length
        .saturating_sub(timeout)
        .saturating_sub(safety_margin(lease.length));
    later(asked, room)
}

impl Core {
    /// Is this node done with the VIP: no claim under way or kept, no
    /// release unfinished (the address and the application both), and no
    /// VIP that may be on the NIC (one found at start, or kept by a
    /// restart)? The edge disarms the watchdog then.
    pub fn done_with_vip(&self) -> bool {
        !self.may_hold_vip() && !self.vip.held
    }

    /// Until when the watchdog may be fed, as of `now`; `None` while this
    /// node may not hold the VIP (or has no watchdog): then nothing feeds
    /// it, and the edge disarms it once the VIP is off the NIC.
    pub fn watchdog_feed_until(&self, now: Instant) -> Option<Instant> {
        let timeout = self.settings.watchdog?;
        if !self.may_hold_vip() {
            return None;
        }
        let Some(lease) = self.settings.witness else {
            return Some(later(now, self.settings.peer_timeout));
        };
        match self.lease_asked_at() {
            Some(asked) => Some(feed_until(asked, lease, timeout)),
            // Kept unleased (`on_loss = "keep"`) while the peer is heard:
            // as without a witness.
            None if self.lease_kept() => Some(later(now, self.settings.peer_timeout)),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_timeout_leaves_the_margin_in_three_quarters_of_the_lease() {
        let s = Duration::from_secs;
        // 10 s: ¾ is 7.5 s, less 0.5 s of margin: 7 s.
        assert_eq!(longest_timeout(s(10)), s(7));
        // 2 s: 1.5 s less 0.2 s: 1 s.
        assert_eq!(longest_timeout(s(2)), s(1));
        // 30 s: 22.5 s less 1.5 s: 21 s.
        assert_eq!(longest_timeout(s(30)), s(21));
        // 1 s leaves nothing.
        assert_eq!(longest_timeout(s(1)), Duration::ZERO);
    }

    /// The reset that follows the last feed comes at least the margin
    /// before the lease can end at the witness, and the feeding reaches
    /// the next renewal's ask.
    #[test]
    fn the_reset_comes_before_the_lease_ends_and_feeding_reaches_the_next_ask() {
        for secs in [2, 3, 5, 10, 30, 60] {
            let lease = LeaseSettings {
                length: Duration::from_secs(secs),
                on_loss: super::super::OnLoss::Release,
            };
            let timeout = longest_timeout(lease.length);
            let asked = Instant::now();
            let until = feed_until(asked, lease, timeout);
            let reset = until + timeout;
            let lease_end = asked + lease.length;
            assert!(
                reset + safety_margin(lease.length) <= lease_end,
                "{secs} s: reset {:?} after the ask",
                reset - asked
            );
            assert!(
                until >= asked + lease.renew_every(),
                "{secs} s: feeding stops {:?} after the ask",
                until - asked
            );
        }
    }
}
