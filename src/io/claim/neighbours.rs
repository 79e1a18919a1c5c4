//! The neighbours of a common address, on the wire through an AF_PACKET
//! socket (pnet's datalink channel): gratuitous ARP for IPv4 and unsolicited
//! neighbour advertisements for IPv6 announce the addresses, in the same
//! rounds; the RFC 5227 ARP probe and its IPv6 twin, a neighbour
//! solicitation from the unspecified address, ask whether another host
//! already holds one of them.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use pnet_datalink::{Channel, DataLinkReceiver, DataLinkSender, NetworkInterface};
use tokio::task::JoinHandle;

use crate::proto::arp::{ArpFrame, Mac};
use crate::proto::ndp::NdpFrame;

/// How long one blocking read waits, so the probe loop checks its deadline:
/// the look ends at most this late, and a look now ends when a takeover
/// falls due, so it is short.
const READ_SLICE: Duration = Duration::from_millis(2);
/// RFC 5227 §2.1.1 sends PROBE_NUM = 3 probes; we spread them over the
/// configured window instead of its 1–2 s spacing.
const PROBES: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum ArpError {
    #[error("no interface named {0:?}")]
    NoSuchInterface(String),
    #[error("interface {0:?} has no MAC address")]
    NoMac(String),
    #[error("cannot open a packet socket on {nic}: {source}")]
    Open { nic: String, source: std::io::Error },
    #[error("cannot send on {nic}: {source}")]
    Send { nic: String, source: std::io::Error },
    #[error("the packet-socket task failed: {0}")]
    Task(String),
}

struct Wire {
    nic: String,
    mac: Mac,
    tx: Box<dyn DataLinkSender>,
    rx: Box<dyn DataLinkReceiver>,
}

impl Wire {
    fn open(nic: &str) -> Result<Self, ArpError> {
        let iface: NetworkInterface = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == nic)
            .ok_or_else(|| ArpError::NoSuchInterface(nic.to_owned()))?;
        let mac = iface.mac.ok_or_else(|| ArpError::NoMac(nic.to_owned()))?;
        let config = pnet_datalink::Config {
            read_timeout: Some(READ_SLICE),
            promiscuous: false,
            ..Default::default()
        };
        match pnet_datalink::channel(&iface, config) {
            Ok(Channel::Ethernet(tx, rx)) => Ok(Wire {
                nic: nic.to_owned(),
                mac: Mac(mac.octets()),
                tx,
                rx,
            }),
            Ok(_) => Err(ArpError::Open {
                nic: nic.to_owned(),
                source: std::io::Error::other("not an Ethernet channel"),
            }),
            Err(source) => Err(ArpError::Open {
                nic: nic.to_owned(),
                source,
            }),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), ArpError> {
        match self.tx.send_to(bytes, None) {
            Some(Ok(())) => Ok(()),
            Some(Err(source)) => Err(ArpError::Send {
                nic: self.nic.clone(),
                source,
            }),
            None => Err(ArpError::Send {
                nic: self.nic.clone(),
                source: std::io::Error::other("no buffer"),
            }),
        }
    }

    /// One announcement round for every address: for IPv4 the request
    /// form, then the reply form; for IPv6 one advertisement.
    fn announce_once(&mut self, addresses: &[IpAddr]) -> Result<(), ArpError> {
        let mac = self.mac;
        for address in addresses {
            match *address {
                IpAddr::V4(vip) => {
                    self.send(&ArpFrame::announce_request(mac, vip).encode())?;
                    self.send(&ArpFrame::announce_reply(mac, vip).encode())?;
                }
                IpAddr::V6(vip) => self.send(&NdpFrame::announce(mac, vip).encode())?,
            }
        }
        Ok(())
    }

    /// The probe for one address: an ARP probe or a neighbour solicitation
    /// from the unspecified address.
    fn probe_once(&mut self, address: IpAddr) -> Result<(), ArpError> {
        let mac = self.mac;
        match address {
            IpAddr::V4(ip) => self.send(&ArpFrame::probe(mac, ip).encode()),
            IpAddr::V6(ip) => self.send(&NdpFrame::probe(mac, ip).encode()),
        }
    }
}

/// The MAC of another host (not `own`) this frame shows holding one of
/// `addresses`.
fn holder_in(own: Mac, bytes: &[u8], addresses: &[IpAddr]) -> Option<Mac> {
    if let Some(frame) = ArpFrame::decode(bytes) {
        return addresses
            .iter()
            .any(|a| matches!(a, IpAddr::V4(ip) if frame.claims(*ip, own)))
            .then_some(frame.sender_mac);
    }
    let frame = NdpFrame::decode(bytes)?;
    addresses
        .iter()
        .any(|a| matches!(a, IpAddr::V6(ip) if frame.claims(*ip, own)))
        .then(|| frame.holder())
}

/// Sends the first announcement round for `addresses` (all on `nic`) now
/// and returns; the remaining `count - 1` rounds go out every `interval`
/// from a background task, which the caller aborts when the VIP is released
/// (an announcement for an address we no longer hold would pull clients
/// back to us).
pub async fn announce(
    nic: &str,
    addresses: Vec<IpAddr>,
    count: u32,
    interval: Duration,
) -> Result<Option<JoinHandle<()>>, ArpError> {
    let mut wire = Wire::open(nic)?;
    wire.announce_once(&addresses)?;
    tracing::debug!(nic, addresses = ?addresses, "announcement round 1 sent");
    if count <= 1 {
        return Ok(None);
    }
    Ok(Some(tokio::spawn(async move {
        for round in 2..=count {
            tokio::time::sleep(interval).await;
            if let Err(e) = wire.announce_once(&addresses) {
                tracing::warn!(error = %e, "announcement repeat failed");
                return;
            }
            tracing::trace!(round, "announcement round sent");
        }
    })))
}

/// Listens on `nic` until `deadline` while sending probes for each of
/// `addresses`; returns the MAC of another host that uses one of them, if
/// one shows itself.
/// The deadline is absolute, so that opening the socket and starting the
/// blocking thread come out of the window instead of adding to it.
///
/// The answer is handed back before the packet socket is closed: closing
/// one waits for an RCU grace period (`synchronize_net`, about 10 ms here),
/// which would otherwise delay the claim it decides.
pub async fn probe(
    nic: &str,
    addresses: Vec<IpAddr>,
    deadline: Instant,
) -> Result<Option<Mac>, ArpError> {
    let nic = nic.to_owned();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || match Wire::open(&nic) {
        Ok(mut wire) => {
            let _ = tx.send(listen(&mut wire, &addresses, deadline));
            drop(wire);
        }
        Err(e) => {
            let _ = tx.send(Err(e));
        }
    });
    rx.await
        .map_err(|_| ArpError::Task("the probe thread ended without an answer".into()))?
}

fn listen(
    wire: &mut Wire,
    addresses: &[IpAddr],
    deadline: Instant,
) -> Result<Option<Mac>, ArpError> {
    let start = Instant::now();
    let window = deadline.saturating_duration_since(start);
    let mut sent = 0;
    // At least one probe goes out, however short the window left.
    while sent == 0 || Instant::now() < deadline {
        if sent < PROBES && start.elapsed() >= window / PROBES * sent {
            for address in addresses {
                wire.probe_once(*address)?;
            }
            sent += 1;
        }
        match wire.rx.next() {
            Ok(bytes) => {
                if let Some(holder) = holder_in(wire.mac, bytes, addresses) {
                    return Ok(Some(holder));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => tracing::debug!(error = %e, "packet read failed during ARP probe"),
        }
    }
    Ok(None)
}
