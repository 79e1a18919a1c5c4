//! One target's health as a streak counter: when its failing streak began,
//! and how many successes in a row it has had since.
//!
//! A streak is confirmed after `fall` consecutive failures and dates from
//! the first of them (stamped with the time that probe was launched, the
//! earliest moment we know it was failing); it ends only after `rise`
//! consecutive successes, so a single success in the middle of an outage
//! does not restart the grace period, and a single failed probe
//! (fall > 1) does not start one.

use std::time::Instant;

use super::input::Outcome;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No probe has answered yet.
    Unknown,
    Healthy,
    Failing,
}

/// What a probe result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    /// A failing streak began at this instant.
    StartedFailing(Instant),
    /// The target counts as healthy again (or for the first time).
    Recovered,
}

#[derive(Debug, Clone)]
pub struct Health {
    rise: u32,
    fall: u32,
    /// Failures in a row while not yet failing, and when the first began.
    failures: u32,
    first_failure: Option<Instant>,
    verdict: Verdict,
    successes: u32,
    failing_since: Option<Instant>,
    last_error: Option<String>,
    /// The last probe was refused outright (the host answered, nothing
    /// listens): a sure sign, unlike a timeout.
    refused: bool,
}

impl Health {
    /// New counts for the streaks to come (a reload); the current streak
    /// and verdict stay.
    pub fn set_counts(&mut self, rise: u32, fall: u32) {
        self.rise = rise.max(1);
        self.fall = fall.max(1);
    }

    pub fn new(rise: u32, fall: u32) -> Self {
        Health {
            rise: rise.max(1),
            fall: fall.max(1),
            failures: 0,
            first_failure: None,
            verdict: Verdict::Unknown,
            successes: 0,
            failing_since: None,
            last_error: None,
            refused: false,
        }
    }

    /// Was the last probe refused outright (and the target is failing)?
    pub fn refusing(&self) -> bool {
        self.refused && self.failing_since.is_some()
    }

    /// Records a result and whether the target refused the connection.
    pub fn record_probe(&mut self, started: Instant, outcome: &Outcome, refused: bool) -> Change {
        self.refused = refused && outcome.is_err();
        self.record(started, outcome)
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    pub fn failing_since(&self) -> Option<Instant> {
        self.failing_since
    }

    /// Why the last failing probe failed.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    pub fn record(&mut self, started: Instant, outcome: &Outcome) -> Change {
        match outcome {
            Err(reason) => {
                self.successes = 0;
                self.last_error = Some(reason.clone());
                if self.failing_since.is_some() {
                    return Change::None;
                }
                self.failures += 1;
                let first = *self.first_failure.get_or_insert(started);
                if self.failures < self.fall {
                    return Change::None;
                }
                self.failing_since = Some(first);
                self.verdict = Verdict::Failing;
                Change::StartedFailing(first)
            }
            Ok(()) => {
                self.failures = 0;
                self.first_failure = None;
                if self.failing_since.is_none() {
                    let first = self.verdict != Verdict::Healthy;
                    self.verdict = Verdict::Healthy;
                    return if first {
                        Change::Recovered
                    } else {
                        Change::None
                    };
                }
                self.successes += 1;
                if self.successes >= self.rise {
                    self.failing_since = None;
                    self.successes = 0;
                    self.verdict = Verdict::Healthy;
                    return Change::Recovered;
                }
                Change::None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn streak_needs_rise_successes_to_end() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut h = Health::new(2, 1);
        assert_eq!(
            h.record(at(0), &Err("refused".into())),
            Change::StartedFailing(at(0))
        );
        assert_eq!(h.record(at(100), &Err("refused".into())), Change::None);
        assert_eq!(h.record(at(200), &Ok(())), Change::None);
        assert_eq!(
            h.failing_since(),
            Some(at(0)),
            "one success does not end the streak"
        );
        assert_eq!(h.record(at(300), &Err("timeout".into())), Change::None);
        assert_eq!(h.failing_since(), Some(at(0)));
        assert_eq!(h.record(at(400), &Ok(())), Change::None);
        assert_eq!(h.record(at(500), &Ok(())), Change::Recovered);
        assert_eq!(h.failing_since(), None);
        assert_eq!(h.last_error(), Some("timeout"));
    }

    #[test]
    fn fall_needs_that_many_failures_and_dates_from_the_first() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut h = Health::new(1, 3);
        assert_eq!(h.record(at(0), &Err("x".into())), Change::None);
        assert_eq!(h.record(at(100), &Err("x".into())), Change::None);
        assert_eq!(
            h.record(at(200), &Ok(())),
            Change::Recovered,
            "a blip is forgotten"
        );
        assert_eq!(h.record(at(300), &Err("x".into())), Change::None);
        assert_eq!(h.record(at(400), &Err("x".into())), Change::None);
        assert_eq!(
            h.record(at(500), &Err("x".into())),
            Change::StartedFailing(at(300))
        );
        assert_eq!(h.failing_since(), Some(at(300)));
    }

    #[test]
    fn first_success_is_a_recovery_from_unknown() {
        let mut h = Health::new(3, 1);
        assert_eq!(h.record(Instant::now(), &Ok(())), Change::Recovered);
        assert_eq!(h.verdict(), Verdict::Healthy);
        assert_eq!(h.record(Instant::now(), &Ok(())), Change::None);
    }
}
