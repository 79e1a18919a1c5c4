//! The heartbeat sockets: sends the core's heartbeats to every peer over
//! UDP (unicast) and turns received datagrams into inputs, after the MAC,
//! cluster, node and replay checks. Rejected datagrams are counted by
//! reason and logged at the 1st, 10th, 100th … of each reason, so a flood
//! cannot flood the log.
//!
//! The sockets share the heartbeat port (SO_REUSEPORT): one *connected* to
//! each peer's address and port, which sends to it, receives its
//! heartbeats, and is told by the kernel when its host answers a heartbeat
//! with ICMP port unreachable (its daemon is gone:
//! [`Input::HeartbeatRefused`]); and one unconnected, which receives
//! everything else (so that forged or
//! misdirected datagrams are still seen and counted). Heartbeats leave with
//! DSCP CS6 and socket priority 7 (TC_PRIO_CONTROL), as routing protocols'
//! do, so that a loaded link or qdisc sends them first.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{trace, warn};

use crate::core::Input;
use crate::proto::heartbeat::{Flags, Heartbeat, Reject, ReplayGuard, WireState, LEN};
use crate::proto::keyring::Keyring;

/// The heartbeat keys, shared by the sender and the receiver and replaced
/// whole by a reload (a key rotation step).
pub type SharedKeys = Arc<RwLock<Keyring>>;

/// DSCP CS6 (network control) in the IPv4 TOS byte (RFC 4594).
const TOS_CS6: u32 = 48 << 2;
/// Linux's TC_PRIO_CONTROL: the band routing daemons' packets go in.
const PRIORITY_CONTROL: u32 = 7;

/// One peer's connected socket: its heartbeat id, where it listens.
pub struct PeerSocket {
    pub id: u16,
    pub addr: SocketAddr,
    pub socket: std::net::UdpSocket,
}

/// The heartbeat port's sockets, opened before anything else runs
/// (blocking-free, not yet tied to a runtime).
pub struct Sockets {
    /// Connected to each peer: sends, and hears the peer and its kernel.
    pub peers: Vec<PeerSocket>,
    /// Everything else that arrives on the port.
    pub any: std::net::UdpSocket,
}

impl Sockets {
    /// The port's sockets: one connected to each `(id, address)` of
    /// `peers`, and the one for everything else.
    pub fn open(local: SocketAddr, peers: &[(u16, SocketAddr)]) -> io::Result<Sockets> {
        let mut connected = Vec::with_capacity(peers.len());
        for &(id, addr) in peers {
            connected.push(PeerSocket {
                id,
                addr,
                socket: connected_to(local, addr)?,
            });
        }
        Ok(Sockets {
            peers: connected,
            any: bound(local)?.into(),
        })
    }

    /// The senders' side of the peers' sockets (clones of them).
    pub fn senders(&self) -> io::Result<Vec<PeerSocket>> {
        self.peers
            .iter()
            .map(|p| {
                Ok(PeerSocket {
                    id: p.id,
                    addr: p.addr,
                    socket: p.socket.try_clone()?,
                })
            })
            .collect()
    }
}

/// A socket on `local` connected to `peer`, its heartbeats marked as
/// network control.
fn connected_to(local: SocketAddr, peer: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let connected = bound(local)?;
    connected.connect(&peer.into())?;
    // The same DSCP in the IPv6 traffic class.
    if local.is_ipv4() {
        connected.set_tos_v4(TOS_CS6)?;
    } else {
        connected.set_tclass_v6(TOS_CS6)?;
    }
    if let Err(e) = connected.set_priority(PRIORITY_CONTROL) {
        // Needs CAP_NET_ADMIN; the DSCP mark still goes out.
        warn!(error = %e, "cannot raise the heartbeat socket's priority");
    }
    Ok(connected.into())
}

/// A non-blocking UDP socket on `local` that shares it with its twins.
/// SO_REUSEPORT, not SO_REUSEADDR: only sockets of the same user may join,
/// so another local user cannot bind the port beside us and take the
/// peer's heartbeats. (A connected socket is not load-balanced within the
/// group: each peer's datagrams go to its own, the rest to the unconnected one.)
fn bound(local: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&local.into())?;
    Ok(socket)
}

#[derive(Clone)]
pub struct Wire {
    /// The connected sockets, one per peer (sending needs no runtime, so
    /// the emergency release can still say "stopped" after the loop died).
    pub peers: Arc<Vec<PeerSocket>>,
    pub keys: SharedKeys,
    /// The last heartbeat sent, from which an emergency "stopped" one is
    /// made (the core may be what failed).
    pub last: Arc<Mutex<Option<Heartbeat>>>,
}

impl Wire {
    /// Sends a heartbeat to every peer and keeps it as the last one sent.
    pub fn send(&self, hb: &Heartbeat) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(*hb);
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let bytes = hb.encode(&keys.sending().secret);
        drop(keys);
        self.send_bytes(bytes);
    }

    /// Says "stopped" with the next sequence number after the last
    /// heartbeat, so that the peer may claim at once.
    pub fn send_stopped(&self) {
        let last = *self.last.lock().unwrap_or_else(|p| p.into_inner());
        let Some(last) = last else { return };
        let stopped = Heartbeat {
            seq: last.seq + 1,
            state: WireState::Stopped,
            flags: Flags {
                app_ok: false,
                release_request: false,
                ..last.flags
            },
            ..last
        };
        self.send(&stopped);
    }

    /// Sends without blocking: a heartbeat that finds the send buffer full
    /// is dropped (the next one follows within an interval), and a
    /// refusal reported here (the kernel keeps the last ICMP error for the
    /// next call) is left to the receiver, which reads it too.
    fn send_bytes(&self, bytes: [u8; LEN]) {
        for peer in self.peers.iter() {
            if let Err(e) = peer.socket.send(&bytes) {
                trace!(error = %e, peer = %peer.addr, "heartbeat not sent");
            }
        }
    }
}

/// What a received datagram must match to be accepted.
pub struct Expect {
    pub cluster_id: u64,
    /// The peers' heartbeat ids.
    pub peer_ids: Vec<u16>,
    pub keys: SharedKeys,
}

/// Counts of rejected datagrams by reason.
#[derive(Debug, Default)]
pub struct Rejections {
    counts: HashMap<Reject, u64>,
}

impl Rejections {
    fn count(&mut self, reason: Reject, from: SocketAddr) {
        let n = self.counts.entry(reason).or_default();
        *n += 1;
        if is_power_of_ten(*n) {
            warn!(reason = %reason, %from, total = *n, "rejected heartbeat");
        }
    }
}

fn is_power_of_ten(mut n: u64) -> bool {
    while n >= 10 && n % 10 == 0 {
        n /= 10;
    }
    n == 1
}

/// Checks one datagram; `Ok` is a heartbeat the core may trust.
pub fn accept(bytes: &[u8], expect: &Expect, guard: &mut ReplayGuard) -> Result<Heartbeat, Reject> {
    let hb = {
        let keys = expect.keys.read().unwrap_or_else(|p| p.into_inner());
        Heartbeat::decode_with(bytes, keys.accepted().map(|k| k.secret.as_slice()))?
    };
    if hb.cluster_id != expect.cluster_id {
        return Err(Reject::Cluster);
    }
    if !expect.peer_ids.contains(&hb.node_id) {
        return Err(Reject::UnknownNode);
    }
    guard.check(&hb)?;
    Ok(hb)
}

/// What a socket's reader hands the checker: a datagram (its first
/// `len` bytes) and its sender, or a refusal by peer `id`'s host.
enum Received {
    Datagram {
        buf: [u8; LEN + 1],
        len: usize,
        from: SocketAddr,
    },
    Refused(u16),
}

/// Receives from every socket until the input channel closes; must run
/// in the runtime that will poll it (the sockets register there). One
/// reader per socket; one checker, so that one replay guard sees every
/// datagram whichever socket it came in on.
pub async fn receive(
    sockets: Sockets,
    expect: Expect,
    inputs: mpsc::UnboundedSender<Input>,
    metrics: Arc<crate::control::metrics::Metrics>,
) -> io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<Received>(256);
    let mut readers = Vec::new();
    for peer in sockets.peers {
        let socket = UdpSocket::from_std(peer.socket)?;
        readers.push(tokio::spawn(read(socket, Some(peer.id), tx.clone())));
    }
    readers.push(tokio::spawn(read(
        UdpSocket::from_std(sockets.any)?,
        None,
        tx,
    )));
    let mut guard = ReplayGuard::default();
    let mut rejections = Rejections::default();
    while let Some(received) = rx.recv().await {
        let input = match received {
            Received::Refused(node) => Input::HeartbeatRefused { node },
            Received::Datagram { buf, len, from } => match accept(&buf[..len], &expect, &mut guard)
            {
                Ok(hb) => {
                    metrics.heartbeat_accepted();
                    trace!(?hb, %from, "heartbeat");
                    Input::Heartbeat(hb)
                }
                Err(reason) => {
                    metrics.heartbeat_rejected(reason.name());
                    rejections.count(reason, from);
                    continue;
                }
            },
        };
        if inputs.send(input).is_err() {
            break;
        }
    }
    for reader in readers {
        reader.abort();
    }
    Ok(())
}

/// Reads one socket until the checker is gone. `peer`: the peer this
/// socket is connected to (whose host's refusals it hears).
async fn read(socket: UdpSocket, peer: Option<u16>, tx: mpsc::Sender<Received>) {
    loop {
        // One byte more than a heartbeat, so that a longer datagram is
        // seen as such instead of truncated into a valid-looking one.
        let mut buf = [0u8; LEN + 1];
        let received = match socket.recv_from(&mut buf).await {
            Ok((len, from)) => Received::Datagram { buf, len, from },
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => match peer {
                // ICMP port unreachable from the peer's host.
                Some(id) => Received::Refused(id),
                None => continue,
            },
            Err(e) => {
                warn!(error = %e, "heartbeat socket receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        if tx.send(received).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A free UDP port on loopback for the twin sockets.
    fn free_port() -> u16 {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    }

    #[test]
    fn heartbeats_leave_marked_as_network_control() {
        let port = free_port();
        let local: SocketAddr = ([127, 0, 0, 1], port).into();
        let peer: SocketAddr = ([127, 0, 0, 2], port).into();
        let sockets = Sockets::open(local, &[(1, peer)]).expect("open the heartbeat sockets");
        let sender = socket2::SockRef::from(&sockets.peers[0].socket);
        assert_eq!(sender.tos_v4().unwrap(), TOS_CS6);
        // Raising the priority above 6 needs CAP_NET_ADMIN (CI runs as root).
        if sender.priority().unwrap() != PRIORITY_CONTROL {
            // SAFETY: geteuid has no preconditions.
            assert_ne!(unsafe { libc::geteuid() }, 0, "root must get priority 7");
        }
        assert_eq!(sockets.any.local_addr().unwrap(), local);
        // Nobody else takes the port beside them (other users cannot join
        // the SO_REUSEPORT group; a plain bind is refused).
        let intruder = std::net::UdpSocket::bind(local);
        assert_eq!(
            intruder.map_err(|e| e.kind()).err(),
            Some(io::ErrorKind::AddrInUse)
        );
    }

    /// The fast path of a dead daemon on a live host, on real sockets: a
    /// heartbeat to a port nobody listens on comes back as ICMP port
    /// unreachable, which the receiver turns into `HeartbeatRefused`.
    #[tokio::test]
    async fn a_refused_heartbeat_becomes_an_input() {
        let port = free_port();
        let local: SocketAddr = ([127, 0, 0, 1], port).into();
        let peer: SocketAddr = ([127, 0, 0, 2], port).into();
        let sockets = Sockets::open(local, &[(1, peer)]).expect("open the heartbeat sockets");
        let keys = Arc::new(RwLock::new(Keyring::single(vec![7u8; 32])));
        let wire = Wire {
            peers: Arc::new(sockets.senders().unwrap()),
            keys: keys.clone(),
            last: Arc::default(),
        };
        let expect = Expect {
            cluster_id: 1,
            peer_ids: vec![1],
            keys,
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let metrics = Arc::new(crate::control::metrics::Metrics::new(
            "m1",
            "test",
            Vec::new(),
        ));
        tokio::spawn(receive(sockets, expect, tx, metrics));
        let hb = Heartbeat {
            cluster_id: 1,
            node_id: 0,
            epoch: 1,
            seq: 1,
            term: 0,
            state: WireState::Passive,
            flags: Flags::default(),
            config_checksum: 0,
        };
        wire.send(&hb);
        let input = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .expect("an input within 5 s");
        assert_eq!(input, Some(Input::HeartbeatRefused { node: 1 }));
    }

    #[test]
    fn logs_at_powers_of_ten() {
        let logged: Vec<u64> = (1..=1000u64).filter(|&n| is_power_of_ten(n)).collect();
        assert_eq!(logged, [1, 10, 100, 1000]);
    }
}
