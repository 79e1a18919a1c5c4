//! Connection limits for the HTTP API and the control socket.
//!
//! Anyone who can reach the API port can open connections before showing a
//! token. Without limits, idle connections pile up until the daemon runs
//! out of file descriptors, and then its own probes fail ("Too many open
//! files") and it misjudges a healthy peer. So every listener takes a
//! [`Slot`] per connection: a fixed number in all and, for the API, a
//! smaller number per client address, so that one client cannot shut the
//! others out. A connection that finds no slot is closed at once. Each
//! connection also has a deadline (see the listeners), which bounds both the
//! descriptors and the memory a flood can hold.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Concurrent HTTP API connections, all clients together.
pub const API_CONNECTIONS: usize = 64;
/// Concurrent HTTP API connections from one client address.
pub const API_CONNECTIONS_PER_CLIENT: usize = 8;
/// Concurrent control socket connections (local root callers only).
pub const CONTROL_CONNECTIONS: usize = 16;
/// Descriptors kept for the daemon's own work (probes, netlink, the
/// application's commands, mail) beyond every listener's cap.
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// Counts open connections, in all and per client.
#[derive(Clone)]
pub struct Limiter {
    inner: Arc<Mutex<Counts>>,
    total: usize,
    per_client: usize,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// One connection's place; given back when dropped.
pub struct Slot {
    inner: Arc<Mutex<Counts>>,
    client: Option<IpAddr>,
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Full,
    ClientFull,
}

impl Limiter {
    pub fn new(total: usize, per_client: usize) -> Self {
        Limiter {
            inner: Arc::default(),
            total,
            per_client,
        }
    }

    /// A slot for a connection from `client` (None for a Unix socket).
    pub fn admit(&self, client: Option<IpAddr>) -> Result<Slot, Refused> {
        let mut counts = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if counts.total >= self.total {
            return Err(Refused::Full);
        }
        if let Some(ip) = client {
            let n = counts.by_client.entry(ip).or_default();
            if *n >= self.per_client {
                return Err(Refused::ClientFull);
            }
            *n += 1;
        }
        counts.total += 1;
        Ok(Slot {
            inner: self.inner.clone(),
            client,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(ip) = self.client {
            if let Some(n) = counts.by_client.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    // Forget the client so the map cannot grow with the
                    // number of addresses that ever connected.
                    counts.by_client.remove(&ip);
                }
            }
        }
    }
}

/// Raises this process's soft limit on open files to its hard limit, and
/// returns the limit in force. The default soft limit (1,024) is too low
/// for a daemon that serves an API while it probes; systemd's unit sets
/// `LimitNOFILE` too.
pub fn raise_descriptor_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we pass and nothing else.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Ok(raised.rlim_cur);
        }
    }
    Ok(limit.rlim_cur)
}

/// The descriptors every listener together may hold at most.
pub fn listener_descriptors() -> u64 {
    (API_CONNECTIONS + CONTROL_CONNECTIONS) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_in_all_and_per_client_and_slots_come_back() {
        let limiter = Limiter::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = limiter.admit(Some(a)).unwrap();
        let _a2 = limiter.admit(Some(a)).unwrap();
        assert_eq!(limiter.admit(Some(a)).err(), Some(Refused::ClientFull));
        let _b1 = limiter.admit(Some(b)).unwrap();
        assert_eq!(limiter.admit(Some(b)).err(), Some(Refused::Full));
        assert_eq!(limiter.open(), 3);
        drop(a1);
        assert_eq!(limiter.open(), 2);
        assert!(limiter.admit(Some(b)).is_ok());
    }

    #[test]
    fn the_soft_descriptor_limit_is_raised_to_the_hard_one() {
        let got = raise_descriptor_limit().unwrap();
        let mut now = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) }, 0);
        assert_eq!(got, now.rlim_cur);
        assert_eq!(now.rlim_cur, now.rlim_max);
    }
}
