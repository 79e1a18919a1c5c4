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
//!
//! Strangers must not starve an operator: a few addresses holding idle
//! connections could fill every slot. So the API's limiter evicts: when it
//! is full, a new connection takes the place of the oldest one that has not
//! shown a valid token and has been open for at least [`EVICTABLE_AFTER`]
//! (so that a stranger's burst of new connections cannot evict the
//! operator's fresh one before its request arrives). A connection that
//! showed a valid token is never evicted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Concurrent HTTP API connections, all clients together.
pub const API_CONNECTIONS: usize = 64;
/// Concurrent HTTP API connections from one client address.
pub const API_CONNECTIONS_PER_CLIENT: usize = 8;
/// Concurrent control socket connections (local root callers only).
pub const CONTROL_CONNECTIONS: usize = 16;
/// Descriptors kept for the daemon's own work (probes, netlink, the
/// application's commands, mail) beyond every listener's cap.
pub const RESERVED_DESCRIPTORS: u64 = 256;
/// How long a connection without a valid token is safe from eviction.
pub const EVICTABLE_AFTER: Duration = Duration::from_secs(1);

/// Counts open connections, in all and per client.
#[derive(Clone)]
pub struct Limiter {
    inner: Arc<Mutex<Counts>>,
    total: usize,
    per_client: usize,
    /// Evict idle strangers when full (the API), or refuse (the socket).
    evicting: bool,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
    /// Every open connection, oldest first.
    open: Vec<Open>,
    next_id: u64,
}

/// What the limiter knows of one open connection.
struct Open {
    id: u64,
    since: Instant,
    shown: Arc<AtomicBool>,
    evict: Arc<Notify>,
}

/// One connection's place; given back when dropped.
pub struct Slot {
    inner: Arc<Mutex<Counts>>,
    client: Option<IpAddr>,
    id: u64,
    /// Set once the connection showed a valid token: never evicted then.
    pub shown: Arc<AtomicBool>,
    /// Notified when a newer connection takes this one's place: close it.
    pub evicted: Arc<Notify>,
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
            evicting: false,
        }
    }

    /// When full, evict the oldest connection that has shown no valid
    /// token for [`EVICTABLE_AFTER`] instead of refusing the new one.
    pub fn evicting(self) -> Self {
        Limiter {
            evicting: true,
            ..self
        }
    }

    /// A slot for a connection from `client` (None for a Unix socket).
    pub fn admit(&self, client: Option<IpAddr>) -> Result<Slot, Refused> {
        let now = Instant::now();
        let mut counts = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ip) = client {
            if counts
                .by_client
                .get(&ip)
                .is_some_and(|&n| n >= self.per_client)
            {
                return Err(Refused::ClientFull);
            }
        }
        if counts.total >= self.total && !(self.evicting && counts.evict_one(now)) {
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
        let (id, shown, evicted) = (counts.next_id, Arc::default(), Arc::new(Notify::new()));
        counts.next_id += 1;
        counts.open.push(Open {
            id,
            since: now,
            shown: Arc::clone(&shown),
            evict: Arc::clone(&evicted),
        });
        Ok(Slot {
            inner: self.inner.clone(),
            client,
            id,
            shown,
            evicted,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Counts {
    /// Tells the oldest connection without a valid token, open for at
    /// least [`EVICTABLE_AFTER`], to close, and frees its place now.
    fn evict_one(&mut self, now: Instant) -> bool {
        let Some(at) = self.open.iter().position(|o| {
            !o.shown.load(Ordering::SeqCst)
                && now.saturating_duration_since(o.since) >= EVICTABLE_AFTER
        }) else {
            return false;
        };
        let gone = self.open.remove(at);
        gone.evict.notify_one();
        self.total = self.total.saturating_sub(1);
        true
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // An evicted connection's place was freed when it was evicted.
        if let Some(at) = counts.open.iter().position(|o| o.id == self.id) {
            counts.open.remove(at);
            counts.total = counts.total.saturating_sub(1);
        }
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

    /// Full of strangers' idle connections: a new one takes the place of
    /// the oldest stranger that has been open a second, never of one that
    /// showed a token, nor of one younger than a second.
    #[tokio::test]
    async fn when_full_the_oldest_idle_stranger_makes_room() {
        let limiter = Limiter::new(3, 3).evicting();
        let ip = |n: u8| Some(IpAddr::from([192, 0, 2, n]));
        let operator = limiter.admit(ip(1)).unwrap();
        operator.shown.store(true, Ordering::SeqCst);
        let stranger = limiter.admit(ip(2)).unwrap();
        let _young = limiter.admit(ip(3)).unwrap();
        assert_eq!(
            limiter.admit(ip(4)).err(),
            Some(Refused::Full),
            "nobody old enough"
        );
        std::thread::sleep(EVICTABLE_AFTER);
        let newcomer = limiter
            .admit(ip(4))
            .expect("the oldest stranger makes room");
        // The stranger is told to close; the operator is not.
        tokio::time::timeout(Duration::from_secs(1), stranger.evicted.notified())
            .await
            .expect("the stranger is evicted");
        assert_eq!(limiter.open(), 3);
        drop(stranger);
        assert_eq!(limiter.open(), 3, "its place was given once");
        drop(newcomer);
        assert_eq!(limiter.open(), 2);
        drop(operator);
        assert_eq!(limiter.open(), 1);
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
