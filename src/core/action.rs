//! What the core asks the world to do. Every action that changes the
//! machine (the VIP, the application) is answered by exactly one completion
//! input, and the core never has two of them in flight: the state it is in
//! names the one it waits for, which is how the order claim → announce →
//! start and stop → release is kept.

use std::time::Duration;

use super::event::Event;
use super::input::Target;
use crate::proto::heartbeat::Heartbeat;

#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Action {
    /// Look at the VIP for `window`: ARP probe (RFC 5227) and the
    /// application through it → [`super::Input::VipChecked`]. An answer
    /// from another holder may end the look early.
    CheckVip { window: Duration },
    /// Add the VIP to our NIC (idempotent) → `VipAdded`.
    AddVip,
    /// Send gratuitous ARP for the VIP → `Announced` after the first round;
    /// the remaining rounds go on in the background until `RemoveVip`.
    /// Also sent while Active (split brain won, refresh); its completion is
    /// then ignored.
    Announce,
    /// Run the start command and wait for the application URL → `AppStarted`.
    StartApp,
    /// After `understudy restart`: if the application answers its URL it
    /// is adopted as it runs; otherwise as `StartApp` → `AppStarted`.
    AdoptApp,
    /// Run the stop command, then the start command, and wait for the
    /// application URL → `AppStarted` (a restart in place).
    RestartApp,
    /// Run the stop command → `AppStopped`.
    StopApp,
    /// Remove the VIP from our NIC (idempotent) → `VipRemoved`.
    RemoveVip,
    /// Wait until the application's established connections reach zero or
    /// the drain timeout passes → `Drained`.
    Drain,
    /// Probe a target → `Probed`. Probes run concurrently with the above.
    Probe(Target),
    /// Probe the application URL of the peer with this heartbeat id from
    /// now on (the watched peer changed; see [`super::Peers::choose`]).
    /// Carried out at once.
    WatchPeer(u16),
    /// Send this heartbeat to every peer now (not queued behind other actions).
    SendHeartbeat(Heartbeat),
    /// Tell people (mail, webhook, hooks); never waits for delivery.
    Notify(Event),
    /// Cut short the wait of the action in flight (an application start,
    /// a drain, the look at the VIP): it completes at once with an error
    /// (or, for a drain, with what is still open). Carried out by the
    /// runtime at once, not queued behind the action it interrupts.
    Interrupt,
    /// Everything is released; the daemon may exit.
    Exit,
    /// `understudy restart`: the peer was told; re-execute the binary now,
    /// handing `term` (and whether we hold the VIP) to the new process.
    /// The VIP and the application stay as they are.
    Exec { term: u64, holding: bool },
    /// Ask the witness (acquire, renew, release the lease); carried out
    /// beside the other actions, never queued behind them. Acquire and
    /// renew are answered by [`super::Input::Lease`].
    Lease(super::lease::LeaseAsk),
    /// Copy every `[[mirror]]` to the other nodes now, once, within its
    /// limit (`last`: the final pass, the application stopped) →
    /// `MirrorPassed`.
    MirrorPass { last: bool },
    /// Run the fence command against peer `peer` (its last known term:
    /// `term`) before claiming from it while it is silent; answered by
    /// [`super::Input::Fenced`].
    Fence { peer: u16, term: u64 },
}
