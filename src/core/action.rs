//! What the core asks the world to do. Every action that changes the
//! machine (the VIP, the application) is answered by exactly one completion
//! input, and the core never has two of them in flight: the state it is in
//! names the one it waits for, which is how the order claim → announce →
//! start and stop → release is kept.

use super::input::Target;

#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Action {
    /// Listen for another holder of the VIP (RFC 5227 probe) →
    /// [`super::Input::ArpProbed`].
    ProbeArp,
    /// Add the VIP to our NIC (idempotent) → `VipAdded`.
    AddVip,
    /// Send gratuitous ARP for the VIP → `Announced` after the first round;
    /// the remaining rounds go on in the background until `RemoveVip`.
    Announce,
    /// Run the start command and wait for the application URL → `AppStarted`.
    StartApp,
    /// Run the stop command → `AppStopped`.
    StopApp,
    /// Remove the VIP from our NIC (idempotent) → `VipRemoved`.
    RemoveVip,
    /// Probe a target → `Probed`. Probes run concurrently with the above.
    Probe(Target),
    /// Everything is released; the daemon may exit.
    Exit,
}
