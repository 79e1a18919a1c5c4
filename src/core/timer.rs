//! The core's timers: a small table of deadlines, not spawned tasks. The
//! runtime sleeps until [`Timers::next`] and calls `handle_timeout`.

use std::time::Instant;

pub use crate::clock::later;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Launch the next probe of the peer's application.
    ProbePeer,
    /// Launch the next probe of our own application.
    ProbeLocal,
    /// Launch the next probe of the data service.
    ProbeData,
    /// Launch the next check of our own NIC.
    ProbeNic,
    /// Send the next heartbeat.
    Heartbeat,
    /// The start-up window ends.
    Startup,
    /// A decision may change then (a grace period ends, the peer times
    /// out, a failback hold is over).
    Decide,
    /// Our own application will have failed for the whole grace period.
    SelfRelease,
    /// Periodic gratuitous ARP while Active.
    Refresh,
    /// Restart our failed application in place (after a backoff).
    RestartApp,
    /// Renew the witness's lease.
    LeaseRenew,
    /// The lease ends here unless renewed (asked + lease − margin).
    LeaseEnds,
}

const ALL: [Timer; 12] = [
    Timer::ProbePeer,
    Timer::ProbeLocal,
    Timer::ProbeData,
    Timer::ProbeNic,
    Timer::Heartbeat,
    Timer::Startup,
    Timer::Decide,
    Timer::SelfRelease,
    Timer::Refresh,
    Timer::RestartApp,
    Timer::LeaseRenew,
    Timer::LeaseEnds,
];

#[derive(Debug, Default, Clone)]
pub struct Timers {
    deadlines: [Option<Instant>; ALL.len()],
}

impl Timers {
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer as usize] = Some(at);
    }

    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize]
    }

    pub fn stop_all(&mut self) {
        self.deadlines = [None; ALL.len()];
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms and returns every timer due at `now`, in table order.
    pub fn take_expired(&mut self, now: Instant) -> Vec<Timer> {
        ALL.into_iter()
            .filter(|&t| {
                let due = self.get(t).is_some_and(|at| at <= now);
                if due {
                    self.stop(t);
                }
                due
            })
            .collect()
    }
}
