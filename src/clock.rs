//! Instants computed without panicking: the core's timers, the
//! application's readiness wait and a failback's drain all add a configured
//! duration to now.

use std::time::{Duration, Instant};

/// `t + d`, saturating: the latest instant the clock can represent rather
/// than a panic. Configured durations are at most 7 days, so this only
/// guards against a bug elsewhere; a deadline that saturates lies in the
/// far future, never in the past (which would fire a takeover early).
pub fn later(t: Instant, d: Duration) -> Instant {
    let mut step = d;
    loop {
        if let Some(at) = t.checked_add(step) {
            return at;
        }
        step /= 2;
        if step.is_zero() {
            return t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_saturates_instead_of_panicking() {
        let t = Instant::now();
        assert_eq!(later(t, Duration::from_secs(1)), t + Duration::from_secs(1));
        let far = later(t, Duration::MAX);
        assert!(
            far > t + Duration::from_secs(100 * 365 * 86_400),
            "far in the future, never the past"
        );
        assert!(later(far, Duration::MAX) >= far);
    }
}
