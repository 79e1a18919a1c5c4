//! The core in a simulated world: two, three or five nodes, a virtual
//! clock, a wire with latency, loss and partitions of any shape (each node
//! on one side or the other of a cut), applications that go up and down, daemons
//! that crash and restart, data services and NICs that fail and return,
//! and an administrator who promotes, demotes, disables, enables and puts
//! nodes in maintenance at random; half the runs use automatic failback,
//! and half a flap limit of one move (so that it trips often).
//! No tokio and no sockets: thousands of random fault schedules run in
//! seconds. After every step it checks:
//!
//! - never two VIP holders while heartbeats flow (both daemons up, no
//!   partition, no loss, and the last disturbance at least `SETTLE` ago);
//!   so a double holding after a partition heals ends within `SETTLE`
//!   (one heartbeat interval + latency + the loser's stop and remove);
//! - claim → announce → start and stop → release, always in that order;
//! - liveness: a primary whose application is down, whose host died, whose
//!   NIC is down, or which lost the data service or is in maintenance, is
//!   replaced within `LIVENESS` of the moment the secondary is up,
//!   connected, able to run its application, reaching the data service,
//!   neither Disabled nor in maintenance (and of the last admin command):
//!   twice grace, for the hold-down after a release, plus start-up window,
//!   peer timeout and one second. Under automatic failback a broken
//!   application on a Passive primary cannot be seen, so that case is left
//!   out there (see `check`), and while a node is flapping (the flap limit
//!   keeps a live holder on purpose);
//! - with a witness (a third of the runs; `on_loss` release or keep, the
//!   witness cut from either node and back at random): never two VIP
//!   holders whose daemons run, at any instant, partitions and loss
//!   included (a daemon killed with the VIP on its NIC cannot remove it,
//!   and a restarted one that finds it there keeps it until the witness
//!   answers its ask, at most a quarter lease: both are left out until
//!   `STALE` after the restart); a secondary able to serve and
//!   reaching the witness replaces a failed primary within the liveness
//!   bound plus one lease;
//! - with three or five nodes (always with an etcd-like witness, `release`):
//!   never two live VIP holders at any instant (as above), and, while the
//!   cluster is connected and some node is able to serve and reaches the
//!   witness, some node serves within the liveness bound plus one lease
//!   plus one deferral step per node (the most preferred claims first);
//! - and, implicitly, no panic for any input.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use understudy::config::{Failback, Role};
use understudy::core::{
    Action, AdminCommand, Core, Input, LeaseAsk, LeaseReply, LeaseSettings, OnLoss, Settings,
    State, Target,
};
use understudy::proto::heartbeat::Heartbeat;

const MS: Duration = Duration::from_millis(1);
const INTERVAL: Duration = Duration::from_millis(100);
const GRACE: Duration = Duration::from_millis(1000);
const HEARTBEAT: Duration = Duration::from_millis(100);
const PEER_TIMEOUT: Duration = Duration::from_millis(300);
const STARTUP: Duration = Duration::from_millis(300);
const LATENCY: Duration = Duration::from_millis(2);
/// Durations of the effects in the simulated machine.
const START_APP: Duration = Duration::from_millis(50);
const STOP_APP: Duration = Duration::from_millis(10);
const NETLINK: Duration = Duration::from_millis(1);
/// What an interrupted wait reports (as the runtime's effects worker does).
const INTERRUPTED: &str = "interrupted";
/// A grace period shorter than the peer timeout (see [`Variant`]).
const SHORT_GRACE: Duration = Duration::from_millis(100);
/// A double holding must end this soon after heartbeats flow again: one
/// heartbeat interval and the latency to hear it, the loser finishing a
/// step in flight (at most a restart in place: stop and start), then stop
/// and remove. (The search found a loser restarting its application when
/// the partition healed: 10 ms past a bound that counted a start only.)
const SETTLE: Duration = Duration::from_millis(100 + 2 + (10 + 50) + 10 + 1 + 5);
const LIVENESS: Duration = Duration::from_millis(2 * 1000 + 300 + 300 + 1000);
/// The witness's lease (etcd's smallest): renewed every 500 ms; a node that
/// cannot reach the witness gets no answer for that long.
const LEASE: Duration = Duration::from_secs(2);
const WITNESS_TIMEOUT: Duration = Duration::from_millis(500);
/// A restarted daemon that found the VIP on its NIC keeps it until the
/// witness answers (or its ask times out, cut off) and, refused, it stops
/// the application and removes the VIP.
const STALE: Duration = Duration::from_millis(500 + 2 * 2 + 10 + 1 + 5);

#[derive(Debug, Clone, Copy)]
enum Fault {
    AppDown(usize),
    AppUp(usize),
    /// Node i is cut from the others if bit i is set (the nodes whose bit
    /// is set hear each other); with two nodes, any odd mask below 3 cuts
    /// the pair.
    Partition(u8),
    Heal,
    LossOn,
    LossOff,
    /// kill -9 of the daemon only: the VIP and the application stay.
    CrashDaemon(usize),
    /// The host dies: daemon and application gone, the VIP left in the kernel.
    CrashHost(usize),
    Restart(usize),
    /// The node stops reaching the data service / reaches it again.
    DataDown(usize),
    DataUp(usize),
    /// The node's NIC goes down (or loses carrier) / comes back.
    NicDown(usize),
    NicUp(usize),
    /// The administrator runs a command on the node (never forced: a
    /// forced command may rightly make two holders).
    Admin(usize, Command),
    /// The node stops reaching the witness / reaches it again.
    WitnessCut(usize),
    WitnessBack(usize),
}

/// The admin commands the simulation issues.
#[derive(Debug, Clone, Copy)]
enum Command {
    Promote,
    Demote,
    Disable,
    Enable,
    MaintenanceOn,
    MaintenanceOff,
    /// `understudy restart`: the daemon re-executes itself, keeping what
    /// it holds.
    Restart,
}

impl Command {
    fn admin(self) -> AdminCommand {
        match self {
            Command::Promote => AdminCommand::Promote,
            Command::Demote => AdminCommand::Demote,
            Command::Disable => AdminCommand::Disable,
            Command::Enable => AdminCommand::Enable,
            Command::MaintenanceOn => AdminCommand::MaintenanceOn,
            Command::MaintenanceOff => AdminCommand::MaintenanceOff,
            Command::Restart => AdminCommand::Restart,
        }
    }
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Promote),
        Just(Command::Demote),
        Just(Command::Disable),
        Just(Command::Enable),
        Just(Command::MaintenanceOn),
        Just(Command::MaintenanceOff),
        Just(Command::Restart),
    ]
}

fn fault(nodes: usize) -> impl Strategy<Value = Fault> {
    let node = 0..nodes;
    let side = if nodes == 2 {
        Just(1u8).boxed()
    } else {
        (1u8..(1 << nodes) - 1).boxed()
    };
    prop_oneof![
        node.clone().prop_map(Fault::AppDown),
        node.clone().prop_map(Fault::AppUp),
        side.prop_map(Fault::Partition),
        Just(Fault::Heal),
        Just(Fault::LossOn),
        Just(Fault::LossOff),
        node.clone().prop_map(Fault::CrashDaemon),
        node.clone().prop_map(Fault::CrashHost),
        node.clone().prop_map(Fault::Restart),
        node.clone().prop_map(Fault::DataDown),
        node.clone().prop_map(Fault::DataUp),
        node.clone().prop_map(Fault::NicDown),
        node.clone().prop_map(Fault::NicUp),
        (node.clone(), command()).prop_map(|(i, c)| Fault::Admin(i, c)),
        node.clone().prop_map(Fault::WitnessCut),
        node.prop_map(Fault::WitnessBack),
    ]
}

/// The lease authority: one lease, its holder, term and expiry on the
/// world's clock.
#[derive(Debug)]
struct SimWitness {
    holder: Option<usize>,
    term: u64,
    expires: Option<Instant>,
    /// Node i cannot reach it.
    cut: Vec<bool>,
}

fn node_name(i: usize) -> String {
    format!("m{}", i + 1)
}

impl SimWitness {
    /// The witness's answer to node `i`'s ask, made when it arrives.
    fn answer(&mut self, i: usize, ask: &LeaseAsk, now: Instant) -> Option<LeaseReply> {
        let valid = self.expires.is_some_and(|e| now < e) && self.holder.is_some();
        let held_by = |w: &SimWitness| LeaseReply::HeldBy {
            holder: w
                .holder
                .filter(|_| valid)
                .map_or("nobody".into(), node_name),
            term: w.term,
        };
        match ask {
            LeaseAsk::Acquire => {
                if valid && self.holder != Some(i) {
                    return Some(held_by(self));
                }
                if !(valid && self.holder == Some(i)) {
                    self.term += 1;
                }
                self.holder = Some(i);
                self.expires = Some(now + LEASE);
                Some(LeaseReply::Granted { term: self.term })
            }
            &LeaseAsk::Renew { term } => {
                if self.holder == Some(i) && self.term == term {
                    self.expires = Some(now + LEASE);
                    Some(LeaseReply::Granted { term })
                } else {
                    Some(held_by(self))
                }
            }
            &LeaseAsk::Release { term } => {
                if self.holder == Some(i) && self.term == term {
                    self.holder = None;
                }
                None
            }
            // The simulation runs no fence command, so this is never asked;
            // it does what the real witnesses do.
            LeaseAsk::Break { holder, term } => {
                if self.holder.map(node_name).as_deref() == Some(holder.as_str())
                    && self.term == *term
                {
                    self.holder = None;
                }
                None
            }
        }
    }
}

struct Node {
    /// The peer whose application it probes (its core says which).
    watched: usize,
    core: Option<Core>,
    /// The host runs (its kernel answers: a heartbeat to a dead daemon on
    /// a live host comes back as ICMP port unreachable).
    host_up: bool,
    /// The kernel has the VIP on the NIC.
    vip: bool,
    app_running: bool,
    /// The application can run (false after AppDown).
    app_can_run: bool,
    /// The node reaches the data service; its NIC is up with carrier.
    data_ok: bool,
    nic_ok: bool,
    /// Effects in flight: when they complete, and the input they give.
    pending: VecDeque<(Instant, Input)>,
    /// For the order check: an announcement followed the last AddVip.
    announced: bool,
    epoch: u64,
    up_since: Instant,
    /// When the VIP last went onto the NIC, and when the last heartbeat
    /// from the other node arrived (for the speed tests).
    vip_added_at: Option<Instant>,
    heard_at: Option<Instant>,
}

struct World {
    start: Instant,
    now: Instant,
    nodes: Vec<Node>,
    wire: VecDeque<(Instant, usize, Heartbeat)>,
    /// The side of the last partition each node is on (all 0: healed).
    side: Vec<u8>,
    loss: bool,
    /// A counter for deterministic loss (every other packet).
    loss_tick: u64,
    /// When heartbeats last started flowing again (heal, loss off, restart).
    disturbed_until: Instant,
    /// Since when the primary's service has been down, if it is.
    primary_down_since: Option<Instant>,
    /// Since when the secondary has been up, connected, with an
    /// application that can run.
    secondary_able_since: Option<Instant>,
    /// More than two nodes: since when nobody serves, and since when some
    /// node could (see `check_cluster`).
    nobody_serves_since: Option<Instant>,
    someone_able_since: Option<Instant>,
    /// The last line printed with SIM_TRACE set.
    last_trace: String,
    /// The settings this run varies.
    variant: Variant,
    witness: SimWitness,
}

/// What a run varies in both nodes' settings.
#[derive(Debug, Clone, Copy)]
struct Variant {
    failback: Failback,
    /// The flap limit (0: off).
    flap_limit: u32,
    /// The grace period: the defaults' 1 s (longer than the peer timeout),
    /// or 100 ms, where a takeover after silence is due when the peer
    /// timeout runs out, so its look runs ahead while the peer goes silent.
    grace: Duration,
    /// A witness, with this policy.
    witness: Option<OnLoss>,
    /// How many nodes (more than two always with a witness).
    nodes: usize,
}

impl Default for Variant {
    fn default() -> Self {
        Variant {
            failback: Failback::Manual,
            flap_limit: 0,
            grace: GRACE,
            witness: None,
            nodes: 2,
        }
    }
}

/// Node `i` of `n`: m1 the primary, then m2, m3 … in that order of
/// preference.
fn settings(i: usize, n: usize, epoch: u64, failback: Failback) -> Settings {
    let role = if i == 0 {
        Role::Primary
    } else {
        Role::Secondary
    };
    // The golden scenarios' defaults (probe and heartbeat 100 ms, peer
    // timeout 300 ms, grace 1 s), with a start-up window and every watch on.
    let line = match role {
        Role::Primary => "settings role=primary",
        Role::Secondary => "settings role=secondary",
    };
    let defaults = understudy::replay::parse_settings(line).expect("the replay defaults");
    assert_eq!(
        (
            defaults.interval,
            defaults.grace,
            defaults.heartbeat_interval,
            defaults.peer_timeout
        ),
        (INTERVAL, GRACE, HEARTBEAT, PEER_TIMEOUT)
    );
    Settings {
        name: node_name(i),
        role,
        node_id: i as u16,
        preference: i as u8,
        peers: (0..n)
            .filter(|&j| j != i)
            .map(|j| understudy::replay::scenario_peer(j as u16))
            .collect(),
        watch_data: true,
        watch_nic: true,
        startup: STARTUP,
        failback,
        cluster_id: 1,
        config_checksum: 1,
        epoch,
        ..defaults
    }
}

impl World {
    fn new(variant: Variant) -> World {
        let start = Instant::now();
        let n = variant.nodes;
        let node = |i: usize| Node {
            watched: usize::from(i == 0),
            core: None,
            host_up: true,
            vip: false,
            app_running: false,
            app_can_run: true,
            data_ok: true,
            nic_ok: true,
            pending: VecDeque::new(),
            announced: false,
            epoch: 0,
            up_since: start,
            vip_added_at: None,
            heard_at: None,
        };
        let mut w = World {
            start,
            now: start,
            nodes: (0..n).map(node).collect(),
            wire: VecDeque::new(),
            side: vec![0; n],
            loss: false,
            loss_tick: 0,
            disturbed_until: start,
            primary_down_since: None,
            secondary_able_since: None,
            nobody_serves_since: None,
            someone_able_since: None,
            last_trace: String::new(),
            variant,
            witness: SimWitness {
                holder: None,
                term: 0,
                expires: None,
                cut: vec![false; n],
            },
        };
        for i in 0..n {
            w.boot(i);
        }
        w
    }

    fn t(&self) -> Duration {
        self.now - self.start
    }

    fn boot(&mut self, i: usize) {
        self.boot_with(i, None);
        self.disturbed_until = self.now;
    }

    /// Starts node `i`'s daemon; `adopt`: re-executed by `understudy
    /// restart` while holding the VIP with that term (not a disturbance:
    /// nothing may move).
    fn boot_with(&mut self, i: usize, adopt: Option<u64>) {
        let n = &mut self.nodes[i];
        n.epoch += 1;
        let mut core = Core::new(Settings {
            flap_limit: self.variant.flap_limit,
            grace: self.variant.grace,
            adopt,
            witness: self.variant.witness.map(|on_loss| LeaseSettings {
                length: LEASE,
                on_loss,
            }),
            ..settings(i, self.variant.nodes, n.epoch, self.variant.failback)
        });
        n.watched = usize::from(i == 0);
        core.handle_input(self.now, Input::Started { vip_present: n.vip });
        n.core = Some(core);
        n.pending.clear();
        n.up_since = self.now;
        self.pump(i);
    }

    /// Do packets flow between nodes `i` and `j` (the same side of the
    /// partition, both NICs up)?
    fn linked(&self, i: usize, j: usize) -> bool {
        self.side[i] == self.side[j] && self.nodes[i].nic_ok && self.nodes[j].nic_ok
    }

    /// Do packets flow between every two nodes?
    fn connected(&self) -> bool {
        !self.partitioned() && self.nodes.iter().all(|n| n.nic_ok)
    }

    fn partitioned(&self) -> bool {
        self.side.iter().any(|&s| s != self.side[0])
    }

    /// Takes every action the node's core queued and carries it out.
    fn pump(&mut self, i: usize) {
        loop {
            let Some(core) = self.nodes[i].core.as_mut() else {
                return;
            };
            let Some(action) = core.poll_action() else {
                return;
            };
            let input = match action {
                Action::SendHeartbeat(hb) => {
                    self.send_heartbeat(i, hb);
                    continue;
                }
                Action::Exit => {
                    self.nodes[i].core = None;
                    return;
                }
                Action::Exec { term, holding } => {
                    self.boot_with(i, holding.then_some(term));
                    return;
                }
                Action::Notify(_) => continue,
                Action::Interrupt => {
                    self.interrupt(i);
                    continue;
                }
                Action::Probe(target) => self.probe(i, target),
                Action::WatchPeer(id) => {
                    self.nodes[i].watched = usize::from(id);
                    continue;
                }
                Action::Lease(ask) => match self.ask_witness(i, &ask) {
                    Some(answer) => answer,
                    None => continue,
                },
                Action::CheckVip { window } => self.look(i, window),
                machine => self.machine_effect(i, machine),
            };
            // In completion order: a witness that does not answer must
            // not hold up the effects behind it.
            let pending = &mut self.nodes[i].pending;
            pending.push_back(input);
            pending.make_contiguous().sort_by_key(|(at, _)| *at);
        }
    }

    /// A heartbeat from node `i` reaches every other daemon it is linked
    /// to, or, where only the host runs, comes back refused (ICMP port
    /// unreachable).
    fn send_heartbeat(&mut self, i: usize, hb: Heartbeat) {
        let now = self.now;
        for other in (0..self.nodes.len()).filter(|&j| j != i) {
            self.loss_tick += 1;
            let lost = self.loss && self.loss_tick % 2 == 0;
            if !self.linked(i, other) || lost {
                continue;
            }
            let o = &self.nodes[other];
            if o.core.is_none() && o.host_up {
                // Nothing listens there: the kernel says so.
                let refused = Input::HeartbeatRefused { node: other as u16 };
                let pending = &mut self.nodes[i].pending;
                pending.push_back((now + 2 * LATENCY, refused));
                pending.make_contiguous().sort_by_key(|(at, _)| *at);
            } else if o.host_up {
                self.wire.push_back((now + LATENCY, other, hb));
            }
        }
    }

    /// Node `i` asks the witness: answered after a round trip, or, cut off,
    /// failed after the runtime's limit (the ask never arrived).
    fn ask_witness(&mut self, i: usize, ask: &LeaseAsk) -> Option<(Instant, Input)> {
        if self.witness.cut[i] {
            let failed = LeaseReply::Failed("unreachable".into());
            return (!matches!(ask, LeaseAsk::Release { .. }))
                .then(|| (self.now + WITNESS_TIMEOUT, Input::Lease(failed)));
        }
        let answer = self.witness.answer(i, ask, self.now + LATENCY)?;
        Some((self.now + 2 * LATENCY, Input::Lease(answer)))
    }

    /// A probe by node `i` of `target`, answered a millisecond later.
    fn probe(&self, i: usize, target: Target) -> (Instant, Input) {
        let watched = self.nodes[i].watched;
        let (n, o) = (&self.nodes[i], &self.nodes[watched]);
        let linked = self.linked(i, watched);
        let ok = match target {
            Target::Peer => linked && o.app_running,
            Target::Local => n.app_running && n.nic_ok,
            Target::Data => n.data_ok,
            Target::Nic => n.nic_ok,
        };
        let outcome = if ok { Ok(()) } else { Err("down".into()) };
        // A live host with nothing listening refuses at once.
        let refused = target == Target::Peer && !ok && linked && o.host_up;
        let started = self.now;
        let probed = Input::Probed {
            target,
            started,
            outcome,
            refused,
        };
        (started + MS, probed)
    }

    /// A look at the VIP by node `i` for `window`: what it sees at its
    /// start (`complete` adds what it sees at its end); a holder's answer
    /// ends it early, as the runtime's ARP probe does.
    fn look(&self, i: usize, window: Duration) -> (Instant, Input) {
        let (holder, via_vip) = self.look_at_vip(i);
        let ends = if holder.is_some() {
            self.now + 2 * LATENCY
        } else {
            self.now + window
        };
        (ends, Input::VipChecked { holder, via_vip })
    }

    /// An action that changes node `i`'s machine, checked for its order
    /// (announce after the VIP, start after the announcement, remove after
    /// the stop), and when it completes.
    fn machine_effect(&mut self, i: usize, action: Action) -> (Instant, Input) {
        let now = self.now;
        match action {
            Action::AddVip => {
                self.nodes[i].announced = false;
                (now + NETLINK, Input::VipAdded(Ok(())))
            }
            Action::Announce => {
                assert!(
                    self.nodes[i].vip || self.pending_add(i),
                    "{:?}: announce without the VIP",
                    self.t()
                );
                (now + NETLINK, Input::Announced(Ok(())))
            }
            Action::StartApp | Action::AdoptApp => {
                let n = &self.nodes[i];
                assert!(
                    n.vip && n.announced,
                    "{:?}: node {i} starts (or adopts) its app before claim+announce",
                    self.t()
                );
                // An adopted application that runs answers at once; one
                // that does not is started.
                let adopted = action == Action::AdoptApp && n.app_running;
                let took = if adopted { NETLINK } else { START_APP };
                (now + took, Input::AppStarted(Ok(())))
            }
            Action::RestartApp => {
                self.nodes[i].app_running = false;
                (now + STOP_APP + START_APP, Input::AppStarted(Ok(())))
            }
            Action::StopApp => (now + STOP_APP, Input::AppStopped(Ok(()))),
            Action::Drain => (now + NETLINK, Input::Drained { remaining: 0 }),
            Action::RemoveVip => {
                // A node whose lease is lost removes the VIP first (the
                // fence), then stops the application.
                let fenced = self.nodes[i]
                    .core
                    .as_ref()
                    .and_then(|c| c.status(now).lease)
                    .is_some_and(|l| l.term.is_none());
                assert!(
                    !self.nodes[i].app_running || fenced,
                    "{:?}: node {i} removes the VIP under a running app",
                    self.t()
                );
                (now + NETLINK, Input::VipRemoved(Ok(())))
            }
            other => panic!("{other:?} is not a machine action"),
        }
    }

    /// What a look at the VIP from node `i` sees now: a holder's ARP
    /// answer (the first other node linked to it that holds), and the
    /// application through the VIP.
    fn look_at_vip(&self, i: usize) -> (Option<String>, Result<(), String>) {
        let visible = (0..self.nodes.len()).find(|&j| {
            let o = &self.nodes[j];
            j != i && self.linked(i, j) && o.host_up && o.vip
        });
        let holder = visible.map(|j| "02:00:00:00:00:0".to_owned() + &j.to_string());
        let via = match visible {
            Some(j) if self.nodes[j].app_running => Ok(()),
            _ => Err("no answer".into()),
        };
        (holder, via)
    }

    /// The runtime cuts the wait in flight short: an application start
    /// fails at once ("interrupted"), a look at the VIP or a drain ends now.
    fn interrupt(&mut self, i: usize) {
        let now = self.now;
        let pending = &mut self.nodes[i].pending;
        for (at, input) in pending.iter_mut() {
            match input {
                Input::AppStarted(_) => {
                    *at = now;
                    *input = Input::AppStarted(Err(INTERRUPTED.into()));
                }
                Input::VipChecked { .. } | Input::Drained { .. } => *at = now,
                _ => {}
            }
        }
        pending.make_contiguous().sort_by_key(|(at, _)| *at);
    }

    fn pending_add(&self, i: usize) -> bool {
        self.nodes[i]
            .pending
            .iter()
            .any(|(_, inp)| matches!(inp, Input::VipAdded(_)))
    }

    /// Applies an effect's result to the machine, then gives the input.
    fn complete(&mut self, i: usize, input: Input) {
        let n = &mut self.nodes[i];
        let input = match input {
            Input::VipAdded(o) => {
                n.vip = true;
                n.vip_added_at = Some(self.now);
                Input::VipAdded(o)
            }
            Input::Announced(o) => {
                n.announced = true;
                Input::Announced(o)
            }
            Input::AppStarted(Err(why)) if why == INTERRUPTED => Input::AppStarted(Err(why)),
            Input::AppStarted(_) => {
                if n.app_can_run {
                    n.app_running = true;
                    Input::AppStarted(Ok(()))
                } else {
                    Input::AppStarted(Err("cannot start".into()))
                }
            }
            Input::AppStopped(o) => {
                n.app_running = false;
                Input::AppStopped(o)
            }
            Input::VipRemoved(o) => {
                n.vip = false;
                n.announced = false;
                Input::VipRemoved(o)
            }
            // A holder that answered at any time during the look is seen.
            Input::VipChecked { holder, .. } => {
                let (now_holder, via_vip) = self.look_at_vip(i);
                Input::VipChecked {
                    holder: holder.or(now_holder),
                    via_vip,
                }
            }
            other => other,
        };
        if let Some(core) = self.nodes[i].core.as_mut() {
            core.handle_input(self.now, input);
        }
        self.pump(i);
    }

    fn apply(&mut self, fault: Fault) {
        match fault {
            Fault::AppDown(i) => {
                self.nodes[i].app_can_run = false;
                self.nodes[i].app_running = false;
            }
            Fault::AppUp(i) => self.nodes[i].app_can_run = true,
            Fault::Partition(mask) => {
                for (i, side) in self.side.iter_mut().enumerate() {
                    *side = (mask >> i) & 1;
                }
            }
            Fault::Heal => {
                if self.partitioned() {
                    self.disturbed_until = self.now;
                }
                self.side.iter_mut().for_each(|s| *s = 0);
            }
            Fault::LossOn => self.loss = true,
            Fault::LossOff => {
                if self.loss {
                    self.disturbed_until = self.now;
                }
                self.loss = false;
            }
            Fault::CrashDaemon(i) => {
                self.nodes[i].core = None;
                self.nodes[i].pending.clear();
            }
            Fault::CrashHost(i) => {
                self.nodes[i].host_up = false;
                self.nodes[i].core = None;
                self.nodes[i].pending.clear();
                self.nodes[i].app_running = false;
            }
            Fault::Restart(i) => {
                if self.nodes[i].core.is_none() {
                    self.nodes[i].host_up = true;
                    self.boot(i);
                }
            }
            Fault::WitnessCut(i) => self.witness.cut[i] = true,
            Fault::WitnessBack(i) => self.witness.cut[i] = false,
            Fault::DataDown(i) => self.nodes[i].data_ok = false,
            Fault::DataUp(i) => self.nodes[i].data_ok = true,
            Fault::NicDown(i) => self.nodes[i].nic_ok = false,
            Fault::NicUp(i) => {
                if !self.nodes[i].nic_ok {
                    self.disturbed_until = self.now;
                }
                self.nodes[i].nic_ok = true;
            }
            Fault::Admin(i, command) => {
                // An administrator may move the VIP to a node that cannot
                // serve (a primary whose broken application nobody can see
                // while it is Passive): the liveness bound counts from the
                // last command.
                self.secondary_able_since = None;
                self.someone_able_since = None;
                if let Some(core) = self.nodes[i].core.as_mut() {
                    let _ = core.handle_admin(self.now, command.admin(), false);
                    self.pump(i);
                }
            }
        }
    }

    /// The next instant anything happens, and advances to it.
    fn step(&mut self, until: Instant) -> bool {
        let mut next = until;
        for n in &self.nodes {
            if let Some(core) = &n.core {
                if let Some(t) = core.poll_timeout() {
                    next = next.min(t);
                }
                if let Some((t, _)) = n.pending.front() {
                    next = next.min(*t);
                }
            }
        }
        if let Some((t, _, _)) = self.wire.front() {
            next = next.min(*t);
        }
        if next >= until {
            self.now = until;
            return false;
        }
        self.now = next.max(self.now);
        while let Some(&(t, to, hb)) = self.wire.front() {
            if t > self.now {
                break;
            }
            self.wire.pop_front();
            self.nodes[to].heard_at = Some(self.now);
            if let Some(core) = self.nodes[to].core.as_mut() {
                core.handle_input(self.now, Input::Heartbeat(hb));
                self.pump(to);
            }
        }
        for i in 0..self.nodes.len() {
            while let Some(&(t, _)) = self.nodes[i].pending.front() {
                if t > self.now {
                    break;
                }
                let (_, input) = self.nodes[i].pending.pop_front().unwrap();
                self.complete(i, input);
            }
            if let Some(core) = self.nodes[i].core.as_mut() {
                if core.poll_timeout().is_some_and(|t| t <= self.now) {
                    core.handle_timeout(self.now);
                    self.pump(i);
                }
            }
        }
        true
    }

    fn trace(&mut self) {
        if std::env::var_os("SIM_TRACE").is_none() {
            return;
        }
        let view: Vec<String> = (0..self.nodes.len())
            .map(|i| {
                format!(
                    "{:?}/vip={}/app={}",
                    self.state(i),
                    self.nodes[i].vip,
                    self.nodes[i].app_running
                )
            })
            .collect();
        let line = view.join("  ");
        if self.last_trace != line {
            eprintln!(
                "{:>8.3}s  {line}  sides={:?} loss={}",
                self.t().as_secs_f64(),
                self.side,
                self.loss
            );
            self.last_trace = line;
        }
    }

    fn check(&mut self) {
        self.trace();
        let both_up = self.nodes.iter().all(|n| n.core.is_some());
        let flowing = both_up && self.connected() && !self.loss;
        let last_up = self.nodes.iter().map(|n| n.up_since).max();
        let settled = self.now >= self.disturbed_until.max(last_up.unwrap_or(self.start)) + SETTLE;
        let holders = self.nodes.iter().filter(|n| n.vip).count();
        assert!(
            !(holders > 1 && flowing && settled),
            "{:?}: two VIP holders while heartbeats flow",
            self.t()
        );
        if self.variant.witness.is_some() {
            let now = self.now;
            let live_holders = self
                .nodes
                .iter()
                .filter(|n| n.vip && n.core.is_some() && now >= n.up_since + STALE)
                .count();
            assert!(
                live_holders < 2,
                "{:?}: two VIP holders with a witness (witness {:?})",
                self.t(),
                self.witness
            );
        }
        if self.nodes.len() > 2 {
            self.check_cluster();
            return;
        }

        // Liveness: the primary's service is down, the secondary is up,
        // connected and able to serve.
        let p = &self.nodes[0];
        let p_status = p.core.as_ref().map(|c| c.status(self.now));
        let p_out = p_status.is_some_and(|s| s.maintenance);
        // Under automatic failback a Passive primary whose application
        // cannot run looks ready (the application runs only on the Active
        // node), so the secondary hands back, the start fails, and the VIP
        // comes back: each try is bounded, but the secondary does not serve
        // throughout. Liveness is checked there only for failures the pair
        // can see: a dead host, a NIC, the data service, maintenance.
        let unseen = matches!(self.variant.failback, Failback::Automatic { .. });
        let primary_down = (!p.app_can_run && !unseen)
            || (p.core.is_none() && !p.app_running)
            || !p.nic_ok
            // Only its own daemon can tell that it lost the data service.
            || (!p.data_ok && p.core.is_some())
            || p_out;
        match (primary_down, self.primary_down_since) {
            (true, None) => self.primary_down_since = Some(self.now),
            (false, _) => self.primary_down_since = None,
            _ => {}
        }
        let s = &self.nodes[1];
        let s_status = s.core.as_ref().map(|c| c.status(self.now));
        let s_willing = s_status.is_some_and(|st| !st.disabled && !st.maintenance);
        let able = s_willing
            && s.app_can_run
            && s.data_ok
            && s.nic_ok
            && self.connected()
            && !self.loss
            && !self.witness.cut[1];
        match (able, self.secondary_able_since) {
            (true, None) => self.secondary_able_since = Some(self.now.max(self.disturbed_until)),
            (false, _) => self.secondary_able_since = None,
            _ => {}
        }
        // The flap limit keeps a live holder on purpose, even a failing one:
        // liveness gives way to it while a node counts too many moves.
        let flapping = self
            .nodes
            .iter()
            .filter_map(|n| n.core.as_ref())
            .any(|c| c.status(self.now).flapping_since.is_some());
        if flapping {
            self.secondary_able_since = None;
        }
        // With a witness, the primary's lease may have to run out first.
        let bound = LIVENESS + self.variant.witness.map_or(Duration::ZERO, |_| LEASE);
        if let (Some(down), Some(able)) = (self.primary_down_since, self.secondary_able_since) {
            if self.now >= down.max(able) + bound {
                assert!(
                    s.vip && s.app_running,
                    "{:?}: the primary is down since {:?}, the secondary able since {:?}, and it does not serve",
                    self.t(),
                    down - self.start,
                    able - self.start
                );
            }
        }
    }

    /// More than two nodes: while the cluster is connected, without loss,
    /// and some node able to serve (up, willing, its application, data
    /// service, NIC and witness fine), someone serves within the bound.
    fn check_cluster(&mut self) {
        let now = self.now;
        // A node whose daemon was killed with the VIP and its application
        // left serves on (its peers see the application answer, as in a
        // pair); only its own daemon can tell that it lost the data service.
        let serving = self.nodes.iter().any(|n| {
            let out = n.core.as_ref().is_some_and(|c| {
                let st = c.status(now);
                st.maintenance || !n.data_ok
            });
            n.vip && n.app_running && n.nic_ok && n.host_up && !out
        });
        match (serving, self.nobody_serves_since) {
            (false, None) => self.nobody_serves_since = Some(now),
            (true, _) => self.nobody_serves_since = None,
            _ => {}
        }
        let able = |i: usize| {
            let n = &self.nodes[i];
            let willing =
                n.core.as_ref().map(|c| c.status(now)).is_some_and(|st| {
                    !st.disabled && !st.maintenance && st.flapping_since.is_none()
                });
            willing && n.app_can_run && n.data_ok && n.nic_ok && !self.witness.cut[i]
        };
        let someone_able = (0..self.nodes.len()).any(able) && self.connected() && !self.loss;
        // Under automatic failback a broken application on a Passive node
        // cannot be seen (see `check`): the VIP may bounce to it and back.
        let unseen = matches!(self.variant.failback, Failback::Automatic { .. })
            && self.nodes.iter().any(|n| !n.app_can_run);
        match (someone_able && !unseen, self.someone_able_since) {
            (true, None) => self.someone_able_since = Some(now.max(self.disturbed_until)),
            (false, _) => self.someone_able_since = None,
            _ => {}
        }
        let steps = (self.nodes.len() as u32 - 1) * (INTERVAL + HEARTBEAT + LEASE / 4);
        let bound = LIVENESS + LEASE + steps;
        if let (Some(down), Some(able)) = (self.nobody_serves_since, self.someone_able_since) {
            assert!(
                now < down.max(able) + bound,
                "{:?}: nobody serves since {:?}, a node able since {:?}",
                self.t(),
                down - self.start,
                able - self.start
            );
        }
    }

    fn state(&self, i: usize) -> Option<State> {
        self.nodes[i].core.as_ref().map(Core::state)
    }
}

fn run(schedule: &[(u64, Fault)]) {
    run_with(schedule, Variant::default());
}

/// Automatic failback in the simulation: a short hold and drain.
const AUTOMATIC: Failback = Failback::Automatic {
    hold: Duration::from_millis(1000),
    drain_timeout: Duration::from_millis(200),
};

fn run_with(schedule: &[(u64, Fault)], variant: Variant) -> World {
    if std::env::var_os("SIM_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    }
    let mut w = World::new(variant);
    // Let the pair settle first.
    let settle_until = w.now + Duration::from_secs(2);
    while w.step(settle_until) {
        w.check();
    }
    assert_eq!(
        w.state(0),
        Some(State::Active),
        "the primary holds the VIP after start"
    );
    assert!(w.nodes[0].vip && !w.nodes[1].vip);
    for &(delay_ms, fault) in schedule {
        let at = w.now + Duration::from_millis(delay_ms);
        while w.step(at) {
            w.check();
        }
        if std::env::var_os("SIM_TRACE").is_some() {
            eprintln!("{:>8.3}s  fault {fault:?}", w.t().as_secs_f64());
        }
        w.apply(fault);
        w.check();
    }
    // Then let it run long enough for every bound to bite.
    let end = w.now + LIVENESS + LEASE + Duration::from_secs(1);
    while w.step(end) {
        w.check();
    }
    w
}

proptest! {
    // SIM_CASES=20000 runs a longer search.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("SIM_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(5000),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn invariants_hold_under_random_faults(
        schedule in proptest::collection::vec((0u64..2500, fault(2)), 0..10),
        automatic in any::<bool>(),
        flap_limit in prop_oneof![Just(0u32), Just(1u32)],
        short_grace in any::<bool>(),
        witness in prop_oneof![
            Just(None),
            Just(None),
            Just(Some(OnLoss::Release)),
            Just(Some(OnLoss::Keep)),
        ],
    ) {
        let variant = Variant {
            failback: if automatic { AUTOMATIC } else { Failback::Manual },
            flap_limit,
            grace: if short_grace { SHORT_GRACE } else { GRACE },
            witness,
            nodes: 2,
        };
        run_with(&schedule, variant);
    }

    #[test]
    fn invariants_hold_with_three_nodes(
        schedule in proptest::collection::vec((0u64..2500, fault(3)), 0..10),
        automatic in any::<bool>(),
        short_grace in any::<bool>(),
    ) {
        run_with(&schedule, cluster(3, automatic, short_grace));
    }

    #[test]
    fn invariants_hold_with_five_nodes(
        schedule in proptest::collection::vec((0u64..2500, fault(5)), 0..12),
        automatic in any::<bool>(),
        short_grace in any::<bool>(),
    ) {
        run_with(&schedule, cluster(5, automatic, short_grace));
    }
}

/// A cluster of `nodes` electing through the witness (`release`: with
/// more than two nodes the configuration refuses `keep`).
fn cluster(nodes: usize, automatic: bool, short_grace: bool) -> Variant {
    Variant {
        failback: if automatic {
            AUTOMATIC
        } else {
            Failback::Manual
        },
        grace: if short_grace { SHORT_GRACE } else { GRACE },
        witness: Some(OnLoss::Release),
        nodes,
        ..Variant::default()
    }
}

/// Which nodes ever added the VIP.
fn ever_held(w: &World) -> Vec<bool> {
    w.nodes.iter().map(|n| n.vip_added_at.is_some()).collect()
}

#[test]
fn three_nodes_the_most_preferred_backup_takes_over_and_only_it() {
    let w = run_with(&[(100, Fault::AppDown(0))], cluster(3, false, false));
    assert_eq!(
        ever_held(&w),
        [true, true, false],
        "m2 took over, m3 never held"
    );
    assert!(w.nodes[1].vip && w.nodes[1].app_running);
}

#[test]
fn three_nodes_a_disabled_backup_is_passed_over() {
    let w = run_with(
        &[
            (100, Fault::Admin(1, Command::Disable)),
            (500, Fault::AppDown(0)),
        ],
        cluster(3, false, false),
    );
    assert_eq!(ever_held(&w), [true, false, true], "m3 took over");
}

#[test]
fn three_nodes_one_cut_from_the_others_and_the_witness_never_holds() {
    let w = run_with(
        &[
            (100, Fault::Partition(1 << 2)),
            (0, Fault::WitnessCut(2)),
            (3000, Fault::AppDown(0)),
        ],
        cluster(3, false, false),
    );
    assert_eq!(ever_held(&w), [true, true, false], "m3 never held");
}

#[test]
fn five_nodes_two_dead_hosts_leave_the_third_in_line() {
    let w = run_with(
        &[(100, Fault::CrashHost(0)), (3000, Fault::CrashHost(1))],
        cluster(5, false, false),
    );
    assert!(w.nodes[2].vip, "m3 serves");
    assert_eq!(ever_held(&w), [true, true, true, false, false]);
}

#[test]
fn a_healed_partition_settles_on_one_holder() {
    run(&[(100, Fault::Partition(1)), (3000, Fault::Heal)]);
}

#[test]
fn the_secondary_replaces_a_dead_primary_host() {
    run(&[(100, Fault::CrashHost(0))]);
}

#[test]
fn found_loss_crash_restart() {
    use Fault::*;
    run(&[
        (1108, LossOn),
        (1387, AppUp(0)),
        (1126, CrashDaemon(1)),
        (1710, AppDown(0)),
        (1812, Restart(1)),
        (2303, Heal),
        (1839, LossOff),
        (1194, CrashDaemon(1)),
        (1448, Restart(1)),
    ]);
}

#[test]
fn found_promote_after_app_down() {
    use Fault::*;
    run(&[
        (0, AppDown(0)),
        (1018, Admin(0, Command::Promote)),
        (0, NicUp(0)),
    ]);
}

#[test]
fn found_promote_of_a_broken_primary() {
    use Fault::*;
    run(&[
        (0, AppDown(0)),
        (1115, Restart(0)),
        (428, Admin(0, Command::Promote)),
    ]);
}

#[test]
fn found_demote_to_a_broken_primary() {
    use Fault::*;
    run(&[
        (0, AppDown(0)),
        (1439, Restart(0)),
        (2032, Admin(1, Command::Demote)),
    ]);
}

/// The secondary's claim after a fault at `fault_ms` (after the pair
/// settled), with the short grace: when it added the VIP, and when it last
/// heard the primary.
fn claim_after(faults: &[Fault]) -> (Duration, Duration) {
    let schedule: Vec<(u64, Fault)> = faults.iter().map(|&f| (0, f)).collect();
    let variant = Variant {
        grace: SHORT_GRACE,
        ..Variant::default()
    };
    let w = run_with(&schedule, variant);
    let fault_at = w.start + Duration::from_secs(2);
    let s = &w.nodes[1];
    let added = s.vip_added_at.expect("the secondary claimed");
    let heard = s.heard_at.expect("the secondary heard the primary");
    assert!(heard <= fault_at && added > fault_at);
    (added - fault_at, added - heard)
}

#[test]
fn a_dead_host_is_replaced_when_its_heartbeats_run_out() {
    // The look runs while the primary goes silent: the claim follows the
    // peer timeout at once, not one look window later.
    let (_, after_heard) = claim_after(&[Fault::CrashHost(0)]);
    assert!(
        after_heard >= PEER_TIMEOUT && after_heard <= PEER_TIMEOUT + 2 * NETLINK,
        "claimed {after_heard:?} after the last heartbeat (peer timeout {PEER_TIMEOUT:?})"
    );
}

#[test]
fn a_killed_daemon_and_application_on_a_live_host_are_replaced_before_the_timeout() {
    // Its kernel refuses the next heartbeat and its application refuses
    // the next probe: no need to wait for the peer timeout.
    let (after_fault, _) = claim_after(&[Fault::CrashDaemon(0), Fault::AppDown(0)]);
    let bound = HEARTBEAT.max(INTERVAL) + SHORT_GRACE + 4 * LATENCY + 2 * NETLINK;
    assert!(
        after_fault <= bound && after_fault < PEER_TIMEOUT,
        "claimed {after_fault:?} after the kill (bound {bound:?})"
    );
}

fn with_witness(on_loss: OnLoss) -> Variant {
    Variant {
        witness: Some(on_loss),
        ..Variant::default()
    }
}

#[test]
fn with_a_witness_a_partition_never_makes_two_holders() {
    let w = run_with(
        &[(100, Fault::Partition(1)), (4000, Fault::Heal)],
        with_witness(OnLoss::Release),
    );
    assert!(
        w.nodes[0].vip && !w.nodes[1].vip,
        "the primary kept the VIP"
    );
}

#[test]
fn a_holder_cut_from_the_witness_lets_go_and_the_secondary_takes_over() {
    let w = run_with(
        &[(100, Fault::WitnessCut(0))],
        with_witness(OnLoss::Release),
    );
    assert!(
        !w.nodes[0].vip && w.nodes[1].vip,
        "the secondary holds the VIP"
    );
}

#[test]
fn a_holder_cut_from_the_witness_keeps_the_vip_with_keep() {
    let w = run_with(
        &[(100, Fault::WitnessCut(0)), (3000, Fault::WitnessBack(0))],
        with_witness(OnLoss::Keep),
    );
    assert!(
        w.nodes[0].vip && !w.nodes[1].vip,
        "the primary kept the VIP"
    );
}

#[test]
fn with_both_cut_from_the_witness_nobody_new_claims() {
    let w = run_with(
        &[(100, Fault::WitnessCut(0)), (0, Fault::WitnessCut(1))],
        with_witness(OnLoss::Release),
    );
    assert!(!w.nodes[0].vip && !w.nodes[1].vip, "nobody holds the VIP");
}

#[test]
fn found_partition_and_witness_cut() {
    run_with(
        &[(0, Fault::Partition(1)), (0, Fault::WitnessCut(0))],
        with_witness(OnLoss::Release),
    );
}

#[test]
fn found_keep_then_partition() {
    use Fault::*;
    run_with(
        &[(505, WitnessCut(0)), (707, NicUp(0)), (1693, Partition(1))],
        Variant {
            grace: SHORT_GRACE,
            ..with_witness(OnLoss::Keep)
        },
    );
}

#[test]
fn found_five_nodes_backup_cut_from_the_witness_as_the_primary_fails() {
    use Fault::*;
    run_with(
        &[(0, WitnessCut(1)), (0, AppDown(0)), (1801, LossOff)],
        cluster(5, false, true),
    );
}

#[test]
fn found_three_nodes_primary_and_first_backup_fail_together() {
    use Fault::*;
    run_with(
        &[(0, AppDown(0)), (0, AppDown(1)), (401, DataUp(0))],
        cluster(3, false, false),
    );
}

#[test]
fn found_three_nodes_first_backup_cut_from_the_witness_as_it_takes_over() {
    use Fault::*;
    run_with(
        &[(0, AppDown(0)), (116, WitnessCut(1)), (1911, Heal)],
        cluster(3, false, true),
    );
}

#[test]
fn found_three_nodes_data_lost_on_the_holder_as_a_backup_host_dies() {
    use Fault::*;
    run_with(
        &[
            (0, DataDown(0)),
            (0, NicDown(1)),
            (209, CrashHost(2)),
            (9, NicUp(1)),
            (483, NicUp(0)),
        ],
        cluster(3, false, true),
    );
}

#[test]
fn found_keep_with_loss_and_a_failed_application() {
    use Fault::*;
    run_with(
        &[(0, LossOn), (101, AppDown(0)), (358, WitnessCut(0))],
        Variant {
            flap_limit: 1,
            grace: SHORT_GRACE,
            ..with_witness(OnLoss::Keep)
        },
    );
}

#[test]
fn found_three_nodes_holder_dies_as_a_backup_restarts() {
    use Fault::*;
    run_with(
        &[
            (0, CrashHost(0)),
            (0, WitnessCut(1)),
            (0, CrashDaemon(2)),
            (0, Restart(2)),
            (401, Restart(1)),
        ],
        cluster(3, false, false),
    );
}

#[test]
fn found_split_brain_settled_after_a_restart_in_place() {
    use Fault::*;
    run(&[
        (91, WitnessCut(0)),
        (1550, Partition(1)),
        (1190, AppDown(1)),
        (1917, AppDown(0)),
        (1106, Heal),
    ]);
}

#[test]
fn found_five_nodes_primary_cut_from_the_witness_then_two_applications_fail() {
    use Fault::*;
    run_with(
        &[
            (0, WitnessCut(0)),
            (1035, NicUp(0)),
            (691, AppDown(1)),
            (1808, AppDown(0)),
        ],
        cluster(5, false, true),
    );
}

#[test]
fn found_three_nodes_primary_restarts_then_loses_witness_daemon_and_data() {
    use Fault::*;
    run_with(
        &[
            (1940, Restart(0)),
            (2474, WitnessBack(0)),
            (1071, WitnessCut(0)),
            (1019, CrashDaemon(0)),
            (400, DataDown(0)),
        ],
        cluster(3, false, false),
    );
}
