//! The heartbeat sockets: sends the core's heartbeats to every peer over
//! UDP (unicast) and turns received datagrams into inputs, after the MAC,
//! cluster, node, source address, freshness and replay checks.
//!
//! Freshness: each heartbeat to a peer echoes the newest boot epoch heard
//! from that peer, and a heartbeat is believed only if it echoes this
//! run's epoch, so a recording made before this run started (any run of
//! ours, any time) holds nothing back and causes nothing. The epoch of a
//! heartbeat that is authentic but not yet proven is still learned (only
//! a newer one than known), and the last heartbeat is sent again at once
//! with it, so the proof takes one round trip, not an interval. Rejected datagrams are counted by
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
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{info, trace, warn};

use crate::core::Input;
use crate::proto::heartbeat::{Flags, Heartbeat, Reject, ReplayGuard, Signed, WireState, LEN};
use crate::proto::keyring::Keyring;

/// The heartbeat keys, shared by the sender and the receiver and replaced
/// whole by a reload (a key rotation step).
pub type SharedKeys = Arc<RwLock<Keyring>>;

/// The newest boot epoch heard from each peer (by heartbeat id), which
/// every heartbeat to it echoes; shared by the receiver, which learns
/// them, and the sender.
pub type Echoes = Arc<Mutex<HashMap<u16, u64>>>;

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
    /// What each peer's heartbeats echo.
    pub echoes: Echoes,
}

impl Wire {
    /// Sends a heartbeat to every peer and keeps it as the last one sent.
    pub fn send(&self, hb: &Heartbeat) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(*hb);
        // Sends never block, so holding both locks across them is cheap
        // (no copy of the key and the echoes per heartbeat).
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let echoes = self.echoes.lock().unwrap_or_else(|p| p.into_inner());
        for peer in self.peers.iter() {
            let echo = echoes.get(&peer.id).copied().unwrap_or(0);
            send_to(peer, hb.encode(&keys.sending().secret, echo));
        }
    }

    /// Sends the last heartbeat again, with the echoes as they are now
    /// (a peer's new epoch was just learned). The same sequence number: a
    /// peer that refused the first copy as unproven did not record it.
    pub fn send_again(&self) {
        let last = *self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(last) = last {
            self.send(&last);
        }
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
}

/// Sends without blocking: a heartbeat that finds the send buffer full is
/// dropped (the next one follows within an interval), and a refusal
/// reported here (the kernel keeps the last ICMP error for the next call)
/// is left to the receiver, which reads it too.
fn send_to(peer: &PeerSocket, bytes: [u8; LEN]) {
    if let Err(e) = peer.socket.send(&bytes) {
        trace!(error = %e, peer = %peer.addr, "heartbeat not sent");
    }
}

/// What a received datagram must match to be accepted.
pub struct Expect {
    pub cluster_id: u64,
    /// The peers' heartbeat ids, each with the address its heartbeats
    /// must come from (its `[[node]] address`).
    pub peers: HashMap<u16, IpAddr>,
    pub keys: SharedKeys,
    /// This run's boot epoch, which a believed heartbeat echoes.
    pub epoch: u64,
    /// The peers' epochs as learned here, echoed by the sender.
    pub echoes: Echoes,
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
        if reason == Reject::Unproven && *n == 1 {
            // The first heartbeats after either node starts are unproven
            // until a round trip: normal, so not a warning; a recording
            // replayed at us reaches the 10th at once.
            info!(
                reason = %reason, %from,
                "heartbeat not believed yet: it does not echo this run's epoch (normal for the first heartbeats after a start)"
            );
        } else if is_power_of_ten(*n) {
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

/// What the checks made of one datagram.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `Ok`: a heartbeat the core may trust.
    pub heartbeat: Result<Heartbeat, Reject>,
    /// An authentic heartbeat from the right address told us a newer
    /// epoch of its sender than we knew (echo it now).
    pub learned: bool,
}

/// Checks one datagram from `from`, in order: MAC, cluster, sender,
/// source address; then learns the sender's epoch; then the echo of
/// ours; then the (epoch, sequence) order.
pub fn accept(bytes: &[u8], from: SocketAddr, expect: &Expect, guard: &mut ReplayGuard) -> Verdict {
    let mut learned = false;
    let heartbeat = check(bytes, from, expect, guard, &mut learned);
    Verdict { heartbeat, learned }
}

fn check(
    bytes: &[u8],
    from: SocketAddr,
    expect: &Expect,
    guard: &mut ReplayGuard,
    learned: &mut bool,
) -> Result<Heartbeat, Reject> {
    let Signed {
        heartbeat: hb,
        echo,
    } = {
        let keys = expect.keys.read().unwrap_or_else(|p| p.into_inner());
        Heartbeat::decode_with(bytes, keys.accepted().map(|k| k.secret.as_slice()))?
    };
    if hb.cluster_id != expect.cluster_id {
        return Err(Reject::Cluster);
    }
    let Some(&address) = expect.peers.get(&hb.node_id) else {
        return Err(Reject::UnknownNode);
    };
    if from.ip().to_canonical() != address.to_canonical() {
        return Err(Reject::Source);
    }
    {
        let mut echoes = expect.echoes.lock().unwrap_or_else(|p| p.into_inner());
        let known = echoes.entry(hb.node_id).or_insert(0);
        if hb.epoch > *known {
            *known = hb.epoch;
            *learned = true;
        }
    }
    if echo != expect.epoch {
        return Err(Reject::Unproven);
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
    wire: Wire,
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
            Received::Datagram { buf, len, from } => {
                let verdict = accept(&buf[..len], from, &expect, &mut guard);
                if verdict.learned {
                    wire.send_again();
                }
                match verdict.heartbeat {
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
                }
            }
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
            echoes: Echoes::default(),
        };
        let expect = Expect {
            cluster_id: 1,
            peers: HashMap::from([(1, peer.ip())]),
            keys,
            epoch: 5,
            echoes: wire.echoes.clone(),
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let metrics = Arc::new(crate::control::metrics::Metrics::new(
            "m1",
            "test",
            Vec::new(),
        ));
        tokio::spawn(receive(sockets, expect, wire.clone(), tx, metrics));
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

    const KEY: &[u8] = &[7u8; 32];
    const OUR_EPOCH: u64 = 0x1234 << 16 | 77;

    /// What the daemon expects from peer 1 at 192.0.2.11.
    fn expecting() -> Expect {
        Expect {
            cluster_id: 1,
            peers: HashMap::from([(1, IpAddr::from([192, 0, 2, 11]))]),
            keys: Arc::new(RwLock::new(Keyring::single(KEY.to_vec()))),
            epoch: OUR_EPOCH,
            echoes: Echoes::default(),
        }
    }

    fn from_peer(epoch: u64, seq: u64, state: WireState) -> Heartbeat {
        Heartbeat {
            cluster_id: 1,
            node_id: 1,
            epoch,
            seq,
            term: 1,
            state,
            flags: Flags::default(),
            config_checksum: 0,
        }
    }

    const PEER: SocketAddr =
        SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 11)), 7000);
    const CLIENT: SocketAddr =
        SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 100)), 7000);

    /// A restarted node (empty guard, new epoch) is fed a recording of
    /// its peer's heartbeats, which echo the epoch of the node's earlier
    /// run: every one is refused, from any address, "stopped" included,
    /// though the peer's epoch is learned; the peer's next heartbeat, made
    /// after it heard this run, is believed, and its replay is not.
    #[test]
    fn recordings_are_refused_after_a_restart_and_fresh_heartbeats_believed() {
        let expect = expecting();
        let mut guard = ReplayGuard::default();
        let earlier_run = OUR_EPOCH - (5 << 16);
        let peer_epoch = 0x1000 << 16 | 3;
        for (seq, state) in [(10, WireState::Active), (11, WireState::Stopped)] {
            let recorded = from_peer(peer_epoch, seq, state).encode(KEY, earlier_run);
            let v = accept(&recorded, CLIENT, &expect, &mut guard);
            assert_eq!(v.heartbeat, Err(Reject::Source), "from another address");
            let v = accept(&recorded, PEER, &expect, &mut guard);
            assert_eq!(
                v.heartbeat,
                Err(Reject::Unproven),
                "from the peer's address"
            );
        }
        assert_eq!(expect.echoes.lock().unwrap().get(&1), Some(&peer_epoch));
        let fresh = from_peer(peer_epoch, 12, WireState::Active).encode(KEY, OUR_EPOCH);
        let v = accept(&fresh, PEER, &expect, &mut guard);
        assert_eq!(
            v.heartbeat,
            Ok(from_peer(peer_epoch, 12, WireState::Active))
        );
        assert!(!v.learned, "the epoch was known already");
        let again = accept(&fresh, PEER, &expect, &mut guard);
        assert_eq!(again.heartbeat, Err(Reject::Replay));
        // An older epoch of the peer never replaces the newest known.
        let older =
            from_peer(peer_epoch - (1 << 16), 99, WireState::Stopped).encode(KEY, OUR_EPOCH);
        let v = accept(&older, PEER, &expect, &mut guard);
        assert_eq!((v.heartbeat, v.learned), (Err(Reject::Replay), false));
        assert_eq!(expect.echoes.lock().unwrap().get(&1), Some(&peer_epoch));
    }

    #[test]
    fn a_new_epoch_of_the_peer_is_learned_even_before_it_is_proven() {
        let expect = expecting();
        let mut guard = ReplayGuard::default();
        let first = from_peer(1 << 16, 1, WireState::Starting).encode(KEY, 0);
        let v = accept(&first, PEER, &expect, &mut guard);
        assert_eq!((v.heartbeat, v.learned), (Err(Reject::Unproven), true));
        let v = accept(&first, PEER, &expect, &mut guard);
        assert!(!v.learned, "learned once");
        let forged = from_peer(9 << 16, 1, WireState::Active).encode(b"another key", OUR_EPOCH);
        let v = accept(&forged, PEER, &expect, &mut guard);
        assert_eq!((v.heartbeat, v.learned), (Err(Reject::Mac), false));
    }

    #[test]
    fn logs_at_powers_of_ten() {
        let logged: Vec<u64> = (1..=1000u64).filter(|&n| is_power_of_ten(n)).collect();
        assert_eq!(logged, [1, 10, 100, 1000]);
    }
}
