//! ARP on the wire through an AF_PACKET socket (pnet's datalink channel):
//! gratuitous ARP to announce the VIP, and the RFC 5227 probe that asks
//! whether another host already holds it.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use pnet_datalink::{Channel, DataLinkReceiver, DataLinkSender, NetworkInterface};
use tokio::task::JoinHandle;

use crate::proto::arp::{ArpFrame, Mac};

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

    fn send(&mut self, frame: &ArpFrame) -> Result<(), ArpError> {
        let bytes = frame.encode();
        match self.tx.send_to(&bytes, None) {
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

    /// One announcement round: the request form, then the reply form.
    fn announce_once(&mut self, vip: Ipv4Addr) -> Result<(), ArpError> {
        let mac = self.mac;
        self.send(&ArpFrame::announce_request(mac, vip))?;
        self.send(&ArpFrame::announce_reply(mac, vip))
    }
}

/// Sends the first gratuitous ARP round now and returns; the remaining
/// `count - 1` rounds go out every `interval` from a background task, which
/// the caller aborts when the VIP is released (an announcement for an
/// address we no longer hold would pull clients back to us).
pub async fn announce(
    nic: &str,
    vip: Ipv4Addr,
    count: u32,
    interval: Duration,
) -> Result<Option<JoinHandle<()>>, ArpError> {
    let mut wire = Wire::open(nic)?;
    wire.announce_once(vip)?;
    tracing::debug!(nic, %vip, "gratuitous ARP round 1 sent");
    if count <= 1 {
        return Ok(None);
    }
    Ok(Some(tokio::spawn(async move {
        for round in 2..=count {
            tokio::time::sleep(interval).await;
            if let Err(e) = wire.announce_once(vip) {
                tracing::warn!(error = %e, "gratuitous ARP repeat failed");
                return;
            }
            tracing::trace!(round, "gratuitous ARP round sent");
        }
    })))
}

/// Listens on `nic` until `deadline` while sending ARP probes for `ip`;
/// returns the MAC of another host that uses it, if one shows itself.
/// The deadline is absolute, so that opening the socket and starting the
/// blocking thread come out of the window instead of adding to it.
///
/// The answer is handed back before the packet socket is closed: closing
/// one waits for an RCU grace period (`synchronize_net`, about 10 ms here),
/// which would otherwise delay the claim it decides.
pub async fn probe(nic: &str, ip: Ipv4Addr, deadline: Instant) -> Result<Option<Mac>, ArpError> {
    let nic = nic.to_owned();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || match Wire::open(&nic) {
        Ok(mut wire) => {
            let _ = tx.send(listen(&mut wire, ip, deadline));
            drop(wire);
        }
        Err(e) => {
            let _ = tx.send(Err(e));
        }
    });
    rx.await
        .map_err(|_| ArpError::Task("the probe thread ended without an answer".into()))?
}

fn listen(wire: &mut Wire, ip: Ipv4Addr, deadline: Instant) -> Result<Option<Mac>, ArpError> {
    let start = Instant::now();
    let window = deadline.saturating_duration_since(start);
    let mut sent = 0;
    // At least one probe goes out, however short the window left.
    while sent == 0 || Instant::now() < deadline {
        if sent < PROBES && start.elapsed() >= window / PROBES * sent {
            wire.send(&ArpFrame::probe(wire.mac, ip))?;
            sent += 1;
        }
        match wire.rx.next() {
            Ok(bytes) => {
                if let Some(frame) = ArpFrame::decode(bytes) {
                    if frame.claims(ip, wire.mac) {
                        return Ok(Some(frame.sender_mac));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => tracing::debug!(error = %e, "packet read failed during ARP probe"),
        }
    }
    Ok(None)
}
