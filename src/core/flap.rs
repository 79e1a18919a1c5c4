//! The flap limit (Pacemaker's migration-threshold with failure-timeout):
//! when the VIP has moved automatically more than `flap_limit` times within
//! `flap_window`, the pair is fighting itself (both hosts overloaded, each
//! failing its probe in turn), and each move costs the users an outage. The
//! node then stops automatic moves away from a live holder and keeps the
//! VIP where it is until the moves age out of the window or an
//! administrator resets the count. Moves the administrator makes (promote,
//! demote, maintenance, disable) and shutdowns are not counted.
//!
//! A claim that fails (the kernel refuses an address, a provider refuses
//! the move) counts as a move too, and backs off: the next claim waits
//! 1 s, then 2, 4 … up to [`MAX_CLAIM_BACKOFF`], so that a cause that
//! persists costs a claim a minute, not one a second; the first claim
//! that succeeds ends the streak.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct Flaps {
    /// Automatic moves within the window, oldest first.
    moves: VecDeque<Instant>,
    /// Since when there have been too many.
    since: Option<Instant>,
    /// The claims that failed in a row, if the last one did.
    failed: Option<FailedClaims>,
}

/// The first wait after a failed claim; each failure in a row doubles it.
pub const FIRST_CLAIM_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two claims that fail.
pub const MAX_CLAIM_BACKOFF: Duration = Duration::from_secs(64);

/// Claims that failed in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedClaims {
    /// How many.
    pub count: u32,
    /// Why the last one failed.
    pub why: String,
    /// No claim before this instant.
    pub retry_at: Instant,
    /// The wait that led to `retry_at`.
    pub wait: Duration,
}

/// What recording a move or the passing of time changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlapChange {
    None,
    /// The limit was just passed: stop automatic moves.
    Started,
    /// The moves aged out of the window: automatic moves again.
    Ended,
}

impl Flaps {
    /// Records an automatic move at `now`.
    pub fn record(&mut self, now: Instant, limit: u32, window: Duration) -> FlapChange {
        if limit == 0 {
            return FlapChange::None;
        }
        self.moves.push_back(now);
        self.update(now, limit, window)
    }

    /// Forgets moves older than the window and says whether that changed
    /// anything.
    pub fn update(&mut self, now: Instant, limit: u32, window: Duration) -> FlapChange {
        while self
            .moves
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            self.moves.pop_front();
        }
        let over = limit > 0 && self.moves.len() > limit as usize;
        match (self.since, over) {
            (None, true) => {
                self.since = Some(now);
                FlapChange::Started
            }
            (Some(_), false) => {
                self.since = None;
                FlapChange::Ended
            }
            _ => FlapChange::None,
        }
    }

    /// Since when automatic moves have been stopped, if they are.
    pub fn since(&self) -> Option<Instant> {
        self.since
    }

    /// Automatic moves within the window.
    pub fn count(&self) -> usize {
        self.moves.len()
    }

    /// When the oldest move leaves the window (the next instant `update`
    /// may end the flapping).
    pub fn next_expiry(&self, window: Duration) -> Option<Instant> {
        self.since?;
        self.moves.front().and_then(|t| t.checked_add(window))
    }

    /// Records a failed claim at `now` and returns the streak, with when
    /// the next claim may be made.
    pub fn claim_failed(&mut self, now: Instant, why: &str) -> &FailedClaims {
        let count = self.failed.as_ref().map_or(0, |f| f.count) + 1;
        let wait = FIRST_CLAIM_BACKOFF
            .saturating_mul(1 << (count - 1).min(16))
            .min(MAX_CLAIM_BACKOFF);
        self.failed.insert(FailedClaims {
            count,
            why: why.to_owned(),
            retry_at: now.checked_add(wait).unwrap_or(now),
            wait,
        })
    }

    /// A claim went through: the streak (if any) ends; returns how many
    /// had failed before it.
    pub fn claim_succeeded(&mut self) -> u32 {
        self.failed.take().map_or(0, |f| f.count)
    }

    /// The failed claims in a row, if the last claim failed.
    pub fn failed_claims(&self) -> Option<&FailedClaims> {
        self.failed.as_ref()
    }

    /// Until when a claim must wait after failures, if it must now.
    pub fn claim_backoff(&self, now: Instant) -> Option<Instant> {
        self.failed
            .as_ref()
            .map(|f| f.retry_at)
            .filter(|&at| now < at)
    }

    /// The administrator's reset: forget every move.
    pub fn reset(&mut self) {
        *self = Flaps::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(600);

    #[test]
    fn the_move_past_the_limit_starts_it_and_age_ends_it() {
        let t0 = Instant::now();
        let mut f = Flaps::default();
        for i in 0..3 {
            assert_eq!(
                f.record(t0 + Duration::from_secs(i), 3, WINDOW),
                FlapChange::None
            );
        }
        assert_eq!(
            f.record(t0 + Duration::from_secs(3), 3, WINDOW),
            FlapChange::Started
        );
        assert_eq!(f.since(), Some(t0 + Duration::from_secs(3)));
        assert_eq!(f.next_expiry(WINDOW), Some(t0 + WINDOW));
        let almost = t0 + WINDOW - Duration::from_nanos(1);
        assert_eq!(f.update(almost, 3, WINDOW), FlapChange::None);
        assert_eq!(f.update(t0 + WINDOW, 3, WINDOW), FlapChange::Ended);
        assert_eq!(f.count(), 3);
    }

    #[test]
    fn failed_claims_back_off_doubling_to_the_cap_and_a_success_ends_it() {
        let t0 = Instant::now();
        let mut f = Flaps::default();
        let waits: Vec<u64> = (0..9)
            .map(|i| {
                f.claim_failed(t0 + Duration::from_secs(i), "refused")
                    .wait
                    .as_secs()
            })
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 64, 64]);
        let last = t0 + Duration::from_secs(8);
        assert_eq!(f.claim_backoff(last), Some(last + MAX_CLAIM_BACKOFF));
        assert_eq!(
            f.claim_backoff(last + MAX_CLAIM_BACKOFF),
            None,
            "not after it"
        );
        assert_eq!(f.failed_claims().map(|c| c.count), Some(9));
        assert_eq!(f.claim_succeeded(), 9);
        assert_eq!(f.claim_backoff(last), None);
        assert_eq!(
            f.claim_failed(last, "again").wait,
            FIRST_CLAIM_BACKOFF,
            "a new streak"
        );
    }

    #[test]
    fn limit_zero_never_flaps_and_reset_forgets() {
        let t0 = Instant::now();
        let mut f = Flaps::default();
        for i in 0..50 {
            assert_eq!(
                f.record(t0 + Duration::from_millis(i), 0, WINDOW),
                FlapChange::None
            );
        }
        for i in 0..3 {
            let _ = f.record(t0 + Duration::from_millis(i), 2, WINDOW);
        }
        assert!(f.since().is_some());
        f.reset();
        assert_eq!((f.since(), f.count()), (None, 0));
    }
}
