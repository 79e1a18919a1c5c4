//! Words at the edge: every word the core's typed reasons become in logs,
//! the status table, notifications and the console is written here (the
//! log notes in [`log`], the countdown in [`countdown`]), and pinned by the
//! tests below. The core decides with enums; wording can
//! change here without touching a decision.

use std::fmt;

pub mod countdown;
mod log;

use crate::core::{
    AdminCommand, AppFailure, AppRecovery, Because, Blocker, Cancelled, Cause, Done, Failure,
    FailureCause, GoneSignal, LetGo, Refusal, State, StatusWord, Target,
};
use countdown::humanize;

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StatusWord::Active => "Active",
            StatusWord::Claiming => "Active (claiming)",
            StatusWord::Draining => "Active (draining)",
            StatusWord::Restarting => "Active (restarting application)",
            StatusWord::Releasing => "Active (releasing)",
            StatusWord::Passive => "Passive",
            StatusWord::Maintenance => "Maintenance",
            StatusWord::Disabled => "Disabled",
            StatusWord::Unavailable => "Unavailable",
            StatusWord::Stopped => "Stopped",
        })
    }
}

/// The state machine's own state names, for debug logs.
impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Init => "initialising",
            State::Starting => "starting (listening for the peer)",
            State::Checking => "looking at the common IP",
            State::Acquiring => "asking the witness for the lease",
            State::Passive => "Passive",
            State::Claiming => "adding the common IP",
            State::Announcing => "announcing the common IP",
            State::StartingApp => "starting the application",
            State::Active => "Active",
            State::Draining => "draining connections",
            State::Restoring => "restoring the common IP",
            State::RestartingApp => "restarting the application",
            State::Syncing => "copying the files before the handover",
            State::StoppingApp => "stopping the application",
            State::FinalSync => "copying the last changes before the handover",
            State::Releasing => "removing the common IP",
            State::Stopped => "Stopped",
        })
    }
}

/// An admin command as the administrator typed it.
impl fmt::Display for AdminCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminCommand::Enable => f.write_str("enable"),
            AdminCommand::Disable => f.write_str("disable"),
            AdminCommand::Promote => f.write_str("promote"),
            AdminCommand::Demote => f.write_str("demote"),
            AdminCommand::MaintenanceOn => f.write_str("maintenance on"),
            AdminCommand::MaintenanceOff => f.write_str("maintenance off"),
            AdminCommand::Refresh => f.write_str("refresh"),
            AdminCommand::ResetFlapping => f.write_str("reset-flapping"),
            AdminCommand::Forget { node } => write!(f, "forget {node}"),
            AdminCommand::Restart => f.write_str("restart"),
        }
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cancelled::PeerAnswers => "answers again",
            Cancelled::PeerClaims => "is taking the common IP",
            Cancelled::Disabled => "this node was disabled",
            Cancelled::Maintenance => "this node went into maintenance",
            Cancelled::Flapping => "the flap limit keeps the common IP where it is",
        })
    }
}

impl fmt::Display for FailureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureCause::HostOrNetwork => "network or host failure",
            FailureCause::WebService => "web service down",
            FailureCause::DataService => "data service down",
            FailureCause::Maintenance => "maintenance mode",
        })
    }
}

impl fmt::Display for GoneSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GoneSignal::Silent(timeout) => {
                write!(
                    f,
                    "no valid heartbeat for {}",
                    humantime::format_duration(*timeout)
                )
            }
            GoneSignal::Refused => f.write_str(
                "its host refused our heartbeat (ICMP port unreachable): its daemon is not running",
            ),
            GoneSignal::MissedAndAppRefuses { missed } => write!(
                f,
                "{missed} heartbeats missed and its application refuses connections"
            ),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(detail) => write!(f, "{}: {detail}", self.cause),
            None => write!(f, "{}", self.cause),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Peer => "peer's application",
            Target::Local => "own application",
            Target::Data => "data service",
            Target::Nic => "NIC",
        })
    }
}

impl fmt::Display for AppFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppFailure::ForGrace(why) => write!(f, "failed for the grace period: {why}"),
            AppFailure::Start(why) => write!(f, "failed to start: {why}"),
            AppFailure::Restart(why) => write!(f, "restart failed: {why}"),
        }
    }
}

/// What the node does about its own failed application.
impl fmt::Display for AppRecovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AppRecovery::Serving => f.write_str("serving"),
            AppRecovery::Restarting { attempt, fast } if !self.slow() => write!(
                f,
                "failed; no peer can take over: restarting it here (attempt {attempt} of {fast})"
            ),
            AppRecovery::Restarting { attempt, fast } => write!(
                f,
                "failed; {fast} restarts did not help: retrying (attempt {attempt}) until it serves or a peer can"
            ),
        }
    }
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let not_yet = |why: &Option<String>| why.clone().unwrap_or_else(|| "not probed yet".into());
        match self {
            Blocker::CannotJudge { target, why } => write!(
                f,
                "this node cannot judge: its probe of the {target} could not run ({why})"
            ),
            Blocker::NicDown(why) => write!(f, "this node's NIC is unusable: {}", not_yet(why)),
            Blocker::NoData(why) => {
                write!(
                    f,
                    "this node cannot reach the data service: {}",
                    not_yet(why)
                )
            }
            Blocker::Lease(refusal) => write!(f, "{refusal}"),
        }
    }
}

impl fmt::Display for crate::core::LeaseRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HeldBy { holder, term } => {
                write!(f, "the witness's lease is held by {holder} (term {term})")
            }
            Self::Unreachable(why) => write!(f, "the witness cannot be asked: {why}"),
        }
    }
}

impl fmt::Display for Because {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, cause) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{cause}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Startup => f.write_str("daemon started"),
            Cause::PeerSilent => f.write_str("start-up window passed without a heartbeat from the peer"),
            Cause::PeerHeard => f.write_str("heard from the peer"),
            Cause::NoLongerDue => f.write_str("the takeover is no longer due"),
            Cause::VipFree => f.write_str("no other host holds the common IP"),
            Cause::OtherHolder(mac) => write!(f, "another host ({mac}) answers for the common IP"),
            Cause::Conflict(mac) => write!(
                f,
                "conflict: {mac} answers ARP for the common IP but the application does not answer through it"
            ),
            Cause::ServiceUpViaVip => {
                f.write_str("the application answers through the common IP; only the peer's daemon is silent")
            }
            Cause::StaleVip => f.write_str("common IP left on the NIC by an earlier run"),
            Cause::Resume => f.write_str("resuming the common IP left on the NIC by an earlier run"),
            Cause::Adopted => f.write_str(
                "restarted without a failover: adopting the common IP and the application",
            ),
            Cause::PeerFailed(failure) => write!(f, "peer failed for the grace period: {failure}"),
            Cause::PeerFailedAndReleased(failure) => write!(
                f,
                "peer failed for the grace period: {failure}; the peer released the common IP"
            ),
            Cause::PeerFailing(failure) => write!(f, "{failure}"),
            Cause::NoHolder => f.write_str("nobody holds the common IP"),
            Cause::PeerReleased => f.write_str("the peer released the common IP at our request"),
            Cause::PeerHandedOver(why) => f.write_str(match why {
                LetGo::Demoted => "the peer handed the common IP over on purpose: demoted by its administrator",
                LetGo::DemotedOrLeaseLost => "the peer handed the common IP over: demoted by its administrator, or it could not renew the witness's lease",
                LetGo::Maintenance => "the peer handed the common IP over on purpose: maintenance mode on the peer",
                LetGo::Disabled => "the peer handed the common IP over on purpose: disabled by its administrator",
                LetGo::Failback => "automatic failback: the peer handed the common IP back to this node",
            }),
            Cause::LocalAppFailed(failure) => write!(f, "this node's application {failure}"),
            Cause::RestartingInPlace {
                failure,
                attempt,
                fast,
                wait,
            } => restarting_in_place(f, failure, (*attempt, *fast), *wait),
            Cause::NicDown(why) => write!(f, "this node's NIC failed: {why}"),
            Cause::DataLost(why) => write!(f, "this node lost the data service for the grace period ({why}); the peer reaches it"),
            Cause::ClaimFailed(why) => write!(f, "could not add the common IP: {why}"),
            Cause::FenceFailed(why) => write!(f, "could not fence the silent peer: {why}"),
            Cause::AppStartFailed(why) => write!(f, "application failed to start: {why}"),
            Cause::RestartApp { attempt } => write!(
                f,
                "the application failed and no peer can take over: restart {attempt}"
            ),
            Cause::SplitBrain { ours, theirs } => {
                write!(f, "split brain: both hold the common IP and the peer outranks us (terms {ours} vs {theirs})")
            }
            Cause::BothHold { ours, theirs } => {
                write!(f, "both nodes hold the common IP (terms {ours} and {theirs})")
            }
            // The checksums are in the log line's fields; here, words.
            Cause::ConfigDrift { peer, .. } => write!(
                f,
                "{peer} runs a different configuration file than this node (run `understudy config push` from the node whose file is right)"
            ),
            Cause::Flapping { moves, window } => write!(
                f,
                "the common IP moved {moves} times within {}; automatic moves stop until the moves age out or `understudy reset-flapping`",
                humanize(*window)
            ),
            Cause::PeerAsked => f.write_str("the peer asked for the common IP and can serve"),
            Cause::Failback => f.write_str("automatic failback: the primary is ready"),
            Cause::Disabled => f.write_str("disabled by the administrator"),
            Cause::Demoted => f.write_str("demoted by the administrator"),
            Cause::Maintenance => f.write_str("maintenance mode on"),
            Cause::MaintenanceSignal => f.write_str("the application answers its maintenance signal"),
            Cause::Promoted => f.write_str("promoted by the administrator"),
            Cause::StepDone => f.write_str("step done"),
            Cause::VipRemoved => f.write_str("the common IP was removed by something else"),
            Cause::Shutdown => f.write_str("shutdown requested"),
            Cause::LeaseLost => f.write_str(
                "the witness's lease could not be renewed in time: stopping before it runs out",
            ),
            Cause::LeaseRefused => f.write_str("the witness did not grant the lease"),
            Cause::MirrorPassFailed(why) => {
                write!(f, "the mirror pass before the handover failed: {why}")
            }
        }
    }
}

/// [`Cause::RestartingInPlace`]: the fast attempts, then the slow retries.
fn restarting_in_place(
    f: &mut fmt::Formatter<'_>,
    failure: &AppFailure,
    (attempt, fast): (u32, u32),
    wait: std::time::Duration,
) -> fmt::Result {
    if attempt <= fast {
        write!(
            f,
            "the application {failure}; no peer can take over: restarting it here in {} (attempt {attempt} of {fast})",
            humanize(wait)
        )
    } else {
        write!(
            f,
            "the application {failure}; {fast} restarts did not help: retrying every {} while the common IP stays, until it serves or a peer can",
            humanize(wait)
        )
    }
}

impl fmt::Display for Done {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Done::Enabled => f.write_str("enabled: this node may take over"),
            Done::Disabled => f.write_str("disabled: this node will not take over"),
            Done::AlreadyTakingOver => f.write_str("this node is already taking over"),
            Done::AlreadyHolding => f.write_str("this node already holds the common IP"),
            Done::Promoting => f.write_str("promoting: asking the peer to hand over"),
            Done::Demoting => f.write_str("demoting: handing the common IP over to the peer"),
            Done::MaintenanceOn => f.write_str(
                "maintenance on: this node will not hold the common IP until maintenance is off",
            ),
            Done::MaintenanceOff => f.write_str("maintenance off"),
            Done::Probing { announce: true } => {
                f.write_str("probing now; announcing the common IP again")
            }
            Done::Probing { announce: false } => f.write_str("probing now"),
            Done::FlappingReset { was: true } => {
                f.write_str("flapping reset: automatic moves resume")
            }
            Done::FlappingReset { was: false } => f.write_str("not flapping; move count reset"),
            Done::Restarting { holding: true } => f.write_str(
                "restarting: re-executing the daemon; the common IP and the application stay",
            ),
            Done::Restarting { holding: false } => {
                f.write_str("restarting: re-executing the daemon")
            }
            Done::Forgot(node) => write!(f, "forgot {node}"),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Busy(state) => write!(f, "this node is busy ({state}); try again in a moment"),
            Refusal::NotHolding => f.write_str("this node does not hold the common IP"),
            Refusal::HoldsDemoteFirst => f.write_str(
                "this node holds the common IP; demote it first (or --force to hand over and disable)",
            ),
            Refusal::PeerTakingOver => {
                f.write_str("the peer is taking over at this node's word; try again in a moment")
            }
            Refusal::PeerSilent => f.write_str(
                "the peer is silent; promoting would claim without its word (use --force)",
            ),
            Refusal::CannotServe(why) => write!(f, "this node cannot serve: {why} (use --force)"),
            Refusal::PeerUnavailable => {
                f.write_str("the peer is not available to take over (use --force)")
            }
            Refusal::PeerCannotTakeOver => f.write_str(
                "the peer cannot take over now (disabled, in maintenance, or unhealthy; use --force)",
            ),
            Refusal::CannotForgetSelf => f.write_str("a node cannot forget itself"),
            Refusal::NoSuchNode(node) => write!(f, "no node named {node:?} in the configuration"),
            Refusal::StillHeard(node) => {
                write!(f, "{node} is still sending heartbeats (use --force)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn failure(cause: FailureCause, detail: Option<&str>) -> Failure {
        Failure {
            cause,
            detail: detail.map(str::to_owned),
        }
    }

    #[test]
    fn status_words() {
        for (word, text) in [
            (StatusWord::Active, "Active"),
            (StatusWord::Claiming, "Active (claiming)"),
            (StatusWord::Draining, "Active (draining)"),
            (StatusWord::Restarting, "Active (restarting application)"),
            (StatusWord::Releasing, "Active (releasing)"),
            (StatusWord::Passive, "Passive"),
            (StatusWord::Maintenance, "Maintenance"),
            (StatusWord::Disabled, "Disabled"),
            (StatusWord::Unavailable, "Unavailable"),
            (StatusWord::Stopped, "Stopped"),
        ] {
            assert_eq!(word.to_string(), text);
        }
    }

    #[test]
    fn failure_causes_targets_and_blockers() {
        for (cause, text) in [
            (FailureCause::HostOrNetwork, "network or host failure"),
            (FailureCause::WebService, "web service down"),
            (FailureCause::DataService, "data service down"),
            (FailureCause::Maintenance, "maintenance mode"),
        ] {
            assert_eq!(cause.to_string(), text);
        }
        assert_eq!(
            failure(FailureCause::WebService, Some("HTTP status 500")).to_string(),
            "web service down: HTTP status 500"
        );
        for (target, text) in [
            (Target::Peer, "peer's application"),
            (Target::Local, "own application"),
            (Target::Data, "data service"),
            (Target::Nic, "NIC"),
        ] {
            assert_eq!(target.to_string(), text);
        }
        for (failure, text) in [
            (
                AppFailure::ForGrace("refused".into()),
                "failed for the grace period: refused",
            ),
            (
                AppFailure::Start("exit 1".into()),
                "failed to start: exit 1",
            ),
            (
                AppFailure::Restart("exit 1".into()),
                "restart failed: exit 1",
            ),
        ] {
            assert_eq!(failure.to_string(), text);
        }
        for (blocker, text) in [
            (
                Blocker::CannotJudge {
                    target: Target::Peer,
                    why: "Too many open files".into(),
                },
                "this node cannot judge: its probe of the peer's application could not run (Too many open files)",
            ),
            (Blocker::NicDown(None), "this node's NIC is unusable: not probed yet"),
            (
                Blocker::NoData(Some("refused".into())),
                "this node cannot reach the data service: refused",
            ),
        ] {
            assert_eq!(blocker.to_string(), text);
        }
    }

    #[test]
    fn gone_signals() {
        for (signal, text) in [
            (
                GoneSignal::Silent(std::time::Duration::from_millis(300)),
                "no valid heartbeat for 300ms",
            ),
            (
                GoneSignal::Refused,
                "its host refused our heartbeat (ICMP port unreachable): its daemon is not running",
            ),
            (
                GoneSignal::MissedAndAppRefuses { missed: 2 },
                "2 heartbeats missed and its application refuses connections",
            ),
        ] {
            assert_eq!(signal.to_string(), text);
        }
    }

    #[test]
    fn causes() {
        let web = failure(FailureCause::WebService, Some("refused"));
        let cases: Vec<(Cause, &str)> = vec![
            (Cause::Startup, "daemon started"),
            (Cause::PeerSilent, "start-up window passed without a heartbeat from the peer"),
            (Cause::PeerHeard, "heard from the peer"),
            (Cause::NoLongerDue, "the takeover is no longer due"),
            (Cause::VipFree, "no other host holds the common IP"),
            (Cause::OtherHolder("m".into()), "another host (m) answers for the common IP"),
            (
                Cause::Conflict("m".into()),
                "conflict: m answers ARP for the common IP but the application does not answer through it",
            ),
            (
                Cause::ServiceUpViaVip,
                "the application answers through the common IP; only the peer's daemon is silent",
            ),
            (Cause::StaleVip, "common IP left on the NIC by an earlier run"),
            (Cause::Resume, "resuming the common IP left on the NIC by an earlier run"),
            (Cause::PeerFailed(web.clone()), "peer failed for the grace period: web service down: refused"),
            (
                Cause::PeerFailedAndReleased(web.clone()),
                "peer failed for the grace period: web service down: refused; the peer released the common IP",
            ),
            (Cause::PeerFailing(web), "web service down: refused"),
            (Cause::NoHolder, "nobody holds the common IP"),
            (Cause::PeerReleased, "the peer released the common IP at our request"),
            (
                Cause::LocalAppFailed(AppFailure::ForGrace("refused".into())),
                "this node's application failed for the grace period: refused",
            ),
            (
                Cause::RestartingInPlace {
                    failure: AppFailure::Start("exit 1".into()),
                    attempt: 2,
                    fast: 3,
                    wait: Duration::from_secs(4),
                },
                "the application failed to start: exit 1; no peer can take over: restarting it here in 4 seconds (attempt 2 of 3)",
            ),
            (
                Cause::RestartingInPlace {
                    failure: AppFailure::Restart("exit 1".into()),
                    attempt: 4,
                    fast: 3,
                    wait: Duration::from_secs(16),
                },
                "the application restart failed: exit 1; 3 restarts did not help: retrying every 16 seconds while the common IP stays, until it serves or a peer can",
            ),
            (Cause::NicDown("no carrier".into()), "this node's NIC failed: no carrier"),
            (
                Cause::DataLost("refused".into()),
                "this node lost the data service for the grace period (refused); the peer reaches it",
            ),
            (Cause::ClaimFailed("EPERM".into()), "could not add the common IP: EPERM"),
            (Cause::AppStartFailed("exit 1".into()), "application failed to start: exit 1"),
            (
                Cause::RestartApp { attempt: 2 },
                "the application failed and no peer can take over: restart 2",
            ),
            (
                Cause::SplitBrain { ours: 1, theirs: 3 },
                "split brain: both hold the common IP and the peer outranks us (terms 1 vs 3)",
            ),
            (
                Cause::BothHold { ours: 1, theirs: 3 },
                "both nodes hold the common IP (terms 1 and 3)",
            ),
            (
                Cause::ConfigDrift {
                    peer: "m1".into(),
                    theirs: 0xab,
                    ours: 0xcd,
                },
                "m1 runs a different configuration file than this node (run `understudy config push` from the node whose file is right)",
            ),
            (
                Cause::Flapping {
                    moves: 7,
                    window: Duration::from_secs(600),
                },
                "the common IP moved 7 times within 10 minutes; automatic moves stop until the moves age out or `understudy reset-flapping`",
            ),
            (Cause::PeerAsked, "the peer asked for the common IP and can serve"),
            (Cause::Failback, "automatic failback: the primary is ready"),
            (Cause::Disabled, "disabled by the administrator"),
            (Cause::Demoted, "demoted by the administrator"),
            (Cause::Maintenance, "maintenance mode on"),
            (Cause::MaintenanceSignal, "the application answers its maintenance signal"),
            (Cause::Promoted, "promoted by the administrator"),
            (Cause::StepDone, "step done"),
            (Cause::VipRemoved, "the common IP was removed by something else"),
            (Cause::Shutdown, "shutdown requested"),
        ];
        for (cause, text) in cases {
            assert_eq!(cause.to_string(), text, "{cause:?}");
        }
        let chain = Because(vec![Cause::PeerSilent, Cause::VipFree]);
        assert_eq!(
            Refusal::Busy(State::Claiming).to_string(),
            "this node is busy (adding the common IP); try again in a moment"
        );
        assert_eq!(
            Refusal::CannotServe(Blocker::NoData(None)).to_string(),
            "this node cannot serve: this node cannot reach the data service: not probed yet (use --force)"
        );
        assert_eq!(Done::Forgot("m1".into()).to_string(), "forgot m1");
        for (recovery, text) in [
            (AppRecovery::Serving, "serving"),
            (
                AppRecovery::Restarting { attempt: 2, fast: 3 },
                "failed; no peer can take over: restarting it here (attempt 2 of 3)",
            ),
            (
                AppRecovery::Restarting { attempt: 4, fast: 3 },
                "failed; 3 restarts did not help: retrying (attempt 4) until it serves or a peer can",
            ),
        ] {
            assert_eq!(recovery.to_string(), text);
        }
        assert_eq!(
            chain.to_string(),
            "start-up window passed without a heartbeat from the peer; no other host holds the common IP"
        );
    }
}
