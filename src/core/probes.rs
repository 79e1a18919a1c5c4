//! What this node's probes say, as one part of the core: the peer's
//! application (probed by URL while this node is not Active), our own
//! application (while Active), the data service, our NIC, and the targets
//! this node could not even probe.

use super::{Health, ProbeNote, Settings, Target};

pub(super) struct Probes {
    /// The peer's application, probed by URL while we are not Active.
    pub peer_app: Health,
    /// Our own application, watched while Active.
    pub local: Health,
    /// The data service as seen from here.
    pub data: Health,
    /// Our own NIC (admin up and carrier).
    pub nic: Health,
    /// Targets this node could not even probe, and why (out of file
    /// descriptors or memory). While any is listed the node cannot judge,
    /// so it neither takes over nor asks for the VIP.
    pub not_probed: Vec<(Target, String)>,
}

impl Probes {
    /// Every verdict unknown, with the configured rise and fall.
    pub fn new(settings: &Settings) -> Probes {
        let (rise, fall) = (settings.rise, settings.fall);
        Probes {
            peer_app: Health::new(rise, fall),
            local: Health::new(rise, fall),
            data: Health::new(settings.data_rise, settings.data_fall),
            nic: Health::new(1, 1),
            not_probed: Vec::new(),
        }
    }

    /// Why our own application last failed, in its probe's words.
    pub fn local_failure(&self) -> String {
        self.local.last_error().unwrap_or("failed").to_owned()
    }

    /// `target` could not be probed at all, and why (logged the first
    /// time): nothing is learnt of it until it runs again.
    pub fn not_run(&mut self, target: Target, why: String) {
        match self.not_probed.iter_mut().find(|(t, _)| *t == target) {
            Some((_, old)) => *old = why,
            None => {
                ProbeNote::ProbeCannotRun { target, why: &why }.log();
                self.not_probed.push((target, why));
            }
        }
    }

    /// `target` was probed: if it could not be before, it can again.
    pub fn ran(&mut self, target: Target) {
        if let Some(i) = self.not_probed.iter().position(|(t, _)| *t == target) {
            ProbeNote::ProbeRunsAgain { target }.log();
            self.not_probed.remove(i);
        }
    }
}
