//! The fence before a claim from a silent peer (`[fencing] fence`): a
//! silent peer may be frozen or cut off with the VIP still on its NIC, so
//! the administrator's command (IPMI, a hypervisor's API, a PDU) turns its
//! host off first, and the claim follows only once it says it did.
//!
//! The look at the VIP decides to claim; with a fence command the claim
//! waits in Checking for [`Input::Fenced`](super::Input::Fenced). Success:
//! with a witness, the fenced holder's lease is ended at the witness
//! ([`LeaseAsk::Break`]) so that the claim does not wait for it to run out,
//! then the claim goes on. Failure: no claim; the failure backs off as a
//! failed claim does (and counts toward the flap limit), and says why.
//! A peer that said it stopped (a clean exit) released everything and is
//! not fenced.

use std::time::Instant;

use super::lease::LeaseAsk;
use super::{Action, Cause, Core, FenceNote, Outcome, State};
use crate::proto::heartbeat::WireState;

impl Core {
    /// Claims from a silent peer: after fencing it when a fence command is
    /// configured (and it may still hold the VIP), at once otherwise.
    pub(super) fn fence_then_claim(&mut self, now: Instant, cause: Cause) {
        let stopped = self.peer().state() == Some(WireState::Stopped);
        if !self.settings.fence || stopped || self.peer_available(now) {
            self.claim(now, cause);
            return;
        }
        let (peer, term) = (self.peers.watched().info.id, self.peer().term());
        FenceNote::Fencing {
            peer: self.peer_name(),
            term,
        }
        .log();
        // The look stays, with its answer and cause (the claim's words),
        // until the fence's result decides.
        self.with_watch(|w| {
            if let Some(look) = &mut w.look {
                look.fencing = true;
            }
        });
        self.actions.push_back(Action::Fence { peer, term });
    }

    /// The fence command ended.
    pub(super) fn on_fenced(&mut self, now: Instant, outcome: Outcome) {
        let look = self
            .watch()
            .and_then(|w| w.look.clone())
            .filter(|l| l.fencing);
        let Some(look) = look.filter(|_| self.state() == State::Checking) else {
            FenceNote::Unasked.log();
            return;
        };
        // The look stays for the claim (its start and its words).
        self.with_watch(|w| {
            if let Some(look) = &mut w.look {
                look.fencing = false;
            }
        });
        // The claim the look's answer called for.
        let cause = match look.answer {
            Some((Some(mac), _)) => Cause::Conflict(mac),
            _ => Cause::VipFree,
        };
        if self.admin.shutdown {
            self.change_state(now, State::Stopped, Cause::Shutdown);
            return;
        }
        if self.peer_available(now) {
            // It spoke while the command ran: its word decides, whatever
            // the command said.
            self.change_state(now, State::Passive, Cause::PeerHeard);
            return;
        }
        match outcome {
            Ok(()) => {
                let (peer, term) = (self.peer_name().to_owned(), self.peer().term());
                FenceNote::Fenced { peer: &peer }.log();
                if self.settings.witness.is_some() && self.peer().holding() {
                    self.actions
                        .push_back(Action::Lease(LeaseAsk::Break { holder: peer, term }));
                }
                self.claim(now, cause);
            }
            Err(why) => {
                let failed = self
                    .record
                    .flaps
                    .claim_failed(now, &format!("the fence command failed: {why}"));
                let (count, wait) = (failed.count, failed.wait);
                FenceNote::Failed {
                    peer: self.peer_name(),
                    why: &why,
                    failed: count,
                    wait,
                }
                .log();
                self.record_move(now);
                self.change_state(now, State::Passive, Cause::FenceFailed(why));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::tests::{complete_all, failing_secondary, LOOK};
    use super::super::{Action, Input, State};
    use super::*;

    /// The takeover from a silent peer: the look, then the fence; nothing
    /// touches the VIP until the fence says it worked.
    fn fencing(t0: Instant) -> Core {
        let mut core = failing_secondary(t0);
        core.settings.fence = true;
        core.handle_timeout(t0 + super::super::tests::GRACE);
        let done = complete_all(&mut core, t0 + super::super::tests::GRACE);
        assert_eq!(done, [LOOK, Action::Fence { peer: 0, term: 0 }]);
        assert_eq!(core.state(), State::Checking);
        core
    }

    #[test]
    fn the_claim_waits_for_the_fence_and_follows_it() {
        let t0 = Instant::now();
        let mut core = fencing(t0);
        let at = t0 + super::super::tests::GRACE;
        core.handle_input(at, Input::Fenced(Ok(())));
        let done = complete_all(&mut core, at);
        assert_eq!(
            done[..3],
            [Action::AddVip, Action::Announce, Action::StartApp],
            "{done:?}"
        );
        assert_eq!(core.state(), State::Active);
    }

    #[test]
    fn a_failed_fence_claims_nothing_backs_off_and_says_why() {
        let t0 = Instant::now();
        let mut core = fencing(t0);
        let at = t0 + super::super::tests::GRACE;
        core.handle_input(at, Input::Fenced(Err("ipmitool: exit 1".into())));
        let done = complete_all(&mut core, at);
        assert!(!done.contains(&Action::AddVip), "{done:?}");
        assert_eq!(core.state(), State::Passive);
        let status = core.status(at);
        let failed = status.failed_claims.expect("the failure in status");
        assert!(
            failed.why.contains("the fence command failed: ipmitool"),
            "{}",
            failed.why
        );
        // The next try waits for the back-off (1 s), then fences again.
        core.handle_timeout(at + std::time::Duration::from_millis(500));
        let early = complete_all(&mut core, at + std::time::Duration::from_millis(500));
        assert!(
            !early.iter().any(|a| matches!(a, Action::Fence { .. })),
            "{early:?}"
        );
        let later = at + std::time::Duration::from_millis(1100);
        core.handle_timeout(later);
        let again = complete_all(&mut core, later);
        assert!(
            again.iter().any(|a| matches!(a, Action::Fence { .. })),
            "{again:?}"
        );
    }

    /// With a witness, the fenced holder's lease is ended before ours is
    /// asked for, so the claim does not wait for it to run out.
    #[test]
    fn with_a_witness_the_fenced_holders_lease_is_broken_first() {
        let t0 = Instant::now();
        let mut core = fencing(t0);
        core.settings.witness = Some(super::super::LeaseSettings {
            length: std::time::Duration::from_secs(2),
            on_loss: super::super::OnLoss::Release,
        });
        // The peer was heard holding with term 4 before it went silent.
        if let Some(peer) = core.peers.watched_mut() {
            peer.view.last = Some(super::super::tests::hb(WireState::Active, 4, 1));
        }
        let at = t0 + super::super::tests::GRACE;
        core.handle_input(at, Input::Fenced(Ok(())));
        let asks: Vec<Action> = std::iter::from_fn(|| core.poll_action())
            .filter(|a| matches!(a, Action::Lease(_)))
            .collect();
        assert_eq!(
            asks,
            [
                Action::Lease(LeaseAsk::Break {
                    holder: "m1".into(),
                    term: 4
                }),
                Action::Lease(LeaseAsk::Acquire),
            ]
        );
        assert_eq!(core.state(), State::Acquiring);
    }
}
