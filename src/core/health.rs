//! One target's health as a streak counter: when its failing streak began,
//! and how many successes in a row it has had since.
//!
//! A streak starts at the first failure (stamped with the time the failing
//! probe was launched, the earliest moment we know it was failing) and ends
//! only after `rise` consecutive successes; a single success in the middle
//! of an outage does not restart the grace period.

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
    verdict: Verdict,
    successes: u32,
    failing_since: Option<Instant>,
    last_error: Option<String>,
}

impl Health {
    pub fn new(rise: u32) -> Self {
        Health {
            rise: rise.max(1),
            verdict: Verdict::Unknown,
            successes: 0,
            failing_since: None,
            last_error: None,
        }
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
                if self.failing_since.is_none() {
                    self.failing_since = Some(started);
                    self.verdict = Verdict::Failing;
                    return Change::StartedFailing(started);
                }
                Change::None
            }
            Ok(()) => {
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
        let mut h = Health::new(2);
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
    fn first_success_is_a_recovery_from_unknown() {
        let mut h = Health::new(3);
        assert_eq!(h.record(Instant::now(), &Ok(())), Change::Recovered);
        assert_eq!(h.verdict(), Verdict::Healthy);
        assert_eq!(h.record(Instant::now(), &Ok(())), Change::None);
    }
}
