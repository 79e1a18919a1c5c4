//! The watches that tell the core at once instead of at the next probe:
//! an address of the group taken away behind the daemon's back (a network
//! restart, a DHCP renewal, an `ip addr del`) becomes
//! [`Input::VipMissing`], and our NIC going down or losing carrier becomes
//! a failed NIC probe.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::core::{Input, Target};
use crate::io::claim::Claim;

/// Both watches, each on its own task.
pub fn start(
    claim: &Claim,
    nic: &str,
    inputs: &mpsc::UnboundedSender<Input>,
) -> [JoinHandle<()>; 2] {
    [
        tokio::spawn(addresses(claim.clone(), inputs.clone())),
        tokio::spawn(self::nic(nic.to_owned(), inputs.clone())),
    ]
}

/// Forwards the claim's reports of a missing address until the input
/// channel closes.
async fn addresses(claim: Claim, inputs: mpsc::UnboundedSender<Input>) {
    if let Err(e) = claim.watch(|| inputs.send(Input::VipMissing).is_ok()).await {
        warn!(error = %e, "cannot watch the common IP; a removed address is noticed only by probes");
    }
}

/// Forwards every change of `nic`'s link as a NIC probe's outcome until
/// the input channel closes.
async fn nic(nic: String, inputs: mpsc::UnboundedSender<Input>) {
    let watched = crate::io::nic::watch(&nic, |outcome| {
        let input = Input::Probed {
            target: Target::Nic,
            started: super::now(),
            outcome: outcome.map_err(|e| e.to_string()),
            refused: false,
        };
        inputs.send(input).is_ok()
    })
    .await;
    if let Err(e) = watched {
        warn!(error = %e, "cannot watch the NIC; a NIC going down is noticed only by probes");
    }
}
