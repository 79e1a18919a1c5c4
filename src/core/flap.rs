//! The flap limit (Pacemaker's migration-threshold with failure-timeout):
//! when the VIP has moved automatically more than `flap_limit` times within
//! `flap_window`, the pair is fighting itself (both hosts overloaded, each
//! failing its probe in turn), and each move costs the users an outage. The
//! node then stops automatic moves away from a live holder and keeps the
//! VIP where it is until the moves age out of the window or an
//! administrator resets the count. Moves the administrator makes (promote,
//! demote, maintenance, disable) and shutdowns are not counted.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct Flaps {
    /// Automatic moves within the window, oldest first.
    moves: VecDeque<Instant>,
    /// Since when there have been too many.
    since: Option<Instant>,
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
