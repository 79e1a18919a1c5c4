//! The heartbeat socket: sends the core's heartbeats to the peer over UDP
//! and turns received datagrams into inputs, after the MAC, cluster, node
//! and replay checks. Rejected datagrams are counted by reason and logged
//! at the 1st, 10th, 100th … of each reason, so a flood cannot flood the log.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{trace, warn};

use crate::core::Input;
use crate::proto::heartbeat::{Flags, Heartbeat, Reject, ReplayGuard, WireState, LEN};

#[derive(Clone)]
pub struct Wire {
    pub socket: Arc<UdpSocket>,
    pub peer: SocketAddr,
    pub key: Arc<Vec<u8>>,
    /// The last heartbeat sent, from which an emergency "stopped" one is
    /// made (the core may be what failed).
    pub last: Arc<Mutex<Option<Heartbeat>>>,
}

impl Wire {
    /// Sends a heartbeat and keeps it as the last one sent.
    pub fn send(&self, hb: &Heartbeat) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(*hb);
        self.send_bytes(hb.encode(&self.key));
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

    /// Sends without holding up the loop. tokio reports a fresh socket
    /// as not yet writable, so a send that would block is handed to a task
    /// that waits for the socket instead of being dropped.
    fn send_bytes(&self, bytes: [u8; LEN]) {
        match self.socket.try_send_to(&bytes, self.peer) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let (socket, peer) = (self.socket.clone(), self.peer);
                tokio::spawn(async move {
                    if let Err(e) = socket.send_to(&bytes, peer).await {
                        trace!(error = %e, %peer, "heartbeat not sent");
                    }
                });
            }
            Err(e) => trace!(error = %e, peer = %self.peer, "heartbeat not sent"),
        }
    }
}

/// What a received datagram must match to be accepted.
pub struct Expect {
    pub cluster_id: u64,
    pub peer_id: u16,
    pub key: Arc<Vec<u8>>,
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
    let hb = Heartbeat::decode(bytes, &expect.key)?;
    if hb.cluster_id != expect.cluster_id {
        return Err(Reject::Cluster);
    }
    if hb.node_id != expect.peer_id {
        return Err(Reject::UnknownNode);
    }
    guard.check(&hb)?;
    Ok(hb)
}

/// Receives until the input channel closes.
pub async fn receive(
    socket: Arc<UdpSocket>,
    expect: Expect,
    inputs: mpsc::UnboundedSender<Input>,
    metrics: Arc<crate::control::metrics::Metrics>,
) {
    let mut guard = ReplayGuard::default();
    let mut rejections = Rejections::default();
    // One byte more than a heartbeat, so that a longer datagram is seen as
    // such instead of truncated into a valid-looking one.
    let mut buf = [0u8; LEN + 1];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "heartbeat socket receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        match accept(&buf[..n], &expect, &mut guard) {
            Ok(hb) => {
                metrics.heartbeat_accepted();
                trace!(?hb, %from, "heartbeat");
                if inputs.send(Input::Heartbeat(hb)).is_err() {
                    return;
                }
            }
            Err(reason) => {
                metrics.heartbeat_rejected(reason.name());
                rejections.count(reason, from);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_at_powers_of_ten() {
        let logged: Vec<u64> = (1..=1000u64).filter(|&n| is_power_of_ten(n)).collect();
        assert_eq!(logged, [1, 10, 100, 1000]);
    }
}
