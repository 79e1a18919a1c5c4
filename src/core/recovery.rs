//! What the Active node does when its own application fails and no peer
//! can take over: it keeps the VIP (releasing would leave nobody serving,
//! and re-claiming would churn) and restarts the application in place:
//! `restart_attempts` times with a doubling backoff, then on at the slowest
//! of those paces (at most five minutes apart) until it serves again, so a
//! node that holds the VIP never stops trying. A peer able to serve gets
//! the VIP at once, whatever the step.

use std::time::Duration;

/// The longest wait between two restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AppRecovery {
    /// Nothing to recover: the application serves (or we hold nothing).
    #[default]
    Serving,
    /// Restart `attempt` (from 1) is scheduled or under way; past `fast`,
    /// restarts go on at the slowest pace.
    Restarting { attempt: u32, fast: u32 },
}

impl AppRecovery {
    /// The next restart after a failure.
    pub fn next(self, fast: u32) -> AppRecovery {
        let done = match self {
            AppRecovery::Serving => 0,
            AppRecovery::Restarting { attempt, .. } => attempt,
        };
        AppRecovery::Restarting {
            attempt: done.saturating_add(1),
            fast,
        }
    }

    /// Has our application failed (and not yet been seen healthy again)?
    pub fn failed(self) -> bool {
        self != AppRecovery::Serving
    }

    /// Are the fast restarts used up (the pace no longer doubles)?
    pub fn slow(self) -> bool {
        matches!(self, AppRecovery::Restarting { attempt, fast } if attempt > fast)
    }

    /// The wait before this restart: `first`, doubled for each fast
    /// attempt before it, at most five minutes.
    pub fn wait(self, first: Duration) -> Duration {
        let AppRecovery::Restarting { attempt, fast } = self else {
            return Duration::ZERO;
        };
        let doublings = attempt.saturating_sub(1).min(fast).min(20);
        first
            .checked_mul(1 << doublings)
            .unwrap_or(MAX_BACKOFF)
            .min(MAX_BACKOFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_double_then_go_on_at_the_slowest_pace() {
        let first = Duration::from_secs(2);
        let mut r = AppRecovery::Serving;
        let mut waits = Vec::new();
        for _ in 0..6 {
            r = r.next(3);
            waits.push(r.wait(first).as_secs());
        }
        assert_eq!(waits, [2, 4, 8, 16, 16, 16]);
        assert!(r.slow());
        assert!(!AppRecovery::Serving.next(3).slow());
        assert!(!AppRecovery::Serving.failed());
    }

    #[test]
    fn the_wait_is_capped() {
        let r = AppRecovery::Restarting {
            attempt: 40,
            fast: 40,
        };
        assert_eq!(r.wait(Duration::from_secs(2)), MAX_BACKOFF);
        assert_eq!(r.wait(Duration::from_secs(7 * 86_400)), MAX_BACKOFF);
    }
}
