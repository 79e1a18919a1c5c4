//! A live reload: the core takes new timings and policies without leaving
//! its state. What names the node and the pair (its name, role, id, the
//! peer, the cluster) and what this run is (boot epoch, the administrator's
//! settings) stay; the runtime refuses a file that changes the first kind
//! before it gets here ([`crate::config::reload`]).

use std::time::Instant;

use super::timer::Timer;
use super::{Core, Health, Settings, State};

impl Core {
    /// Applies `new`, then decides again (a shorter grace may have made a
    /// takeover due) and tells the peer at once, so that it sees the new
    /// configuration checksum without waiting an interval.
    pub fn reconfigure(&mut self, now: Instant, new: Settings) {
        let kept = &self.settings;
        let settings = Settings {
            name: kept.name.clone(),
            role: kept.role,
            node_id: kept.node_id,
            preference: kept.preference,
            peers: kept.peers.clone(),
            cluster_id: kept.cluster_id,
            epoch: kept.epoch,
            disabled: self.admin.disabled,
            maintenance: self.admin.maintenance,
            adopt: kept.adopt,
            ..new
        };
        self.probes
            .peer_app
            .set_counts(settings.rise, settings.fall);
        self.probes.local.set_counts(settings.rise, settings.fall);
        self.probes
            .data
            .set_counts(settings.data_rise, settings.data_fall);
        match (self.settings.watch_data, settings.watch_data) {
            (false, true) => self.timers.set(Timer::ProbeData, now),
            (true, false) => {
                self.timers.stop(Timer::ProbeData);
                self.probes.data = Health::new(settings.data_rise, settings.data_fall);
            }
            _ => {}
        }
        if self.state() == State::Active && settings.refresh != self.settings.refresh {
            match settings.refresh {
                Some(every) => self.timers.set(Timer::Refresh, super::later(now, every)),
                None => self.timers.stop(Timer::Refresh),
            }
        }
        self.settings = settings;
        if self.state() == State::Init {
            return;
        }
        self.decide(now);
        self.send_heartbeat(now);
    }
}
