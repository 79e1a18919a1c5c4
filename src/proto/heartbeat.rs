//! The heartbeat: a fixed-size UDP datagram each node sends to its peer
//! every `heartbeat.interval`, authenticated with HMAC-SHA256.
//!
//! ```text
//!  0       1       2                               10              12
//!  +-------+-------+-------------------------------+---------------+
//!  |version| kind  |        cluster id (8)         |  node id (2)  |
//!  +-------+-------+-------------------------------+---------------+
//!  12                      20                      28                      36
//!  +-----------------------+-----------------------+-----------------------+
//!  |    boot epoch (8)     |     sequence (8)      |       term (8)        |
//!  +-----------------------+-----------------------+-----------------------+
//!  36      37      38                      46                      54
//!  +-------+-------+-----------------------+-----------------------+
//!  | state | flags | config checksum (8)   |       echo (8)        |
//!  +-------+-------+-----------------------+-----------------------+
//!  54                                                              86
//!  +---------------------------------------------------------------+
//!  |              HMAC-SHA256(key, bytes 0..54) (32)               |
//!  +---------------------------------------------------------------+
//! ```
//!
//! All integers are big-endian. `flags`: bit 0 application serving, bit 1
//! data service reachable, bit 2 NIC usable, bit 3 maintenance, bit 4
//! release request (the sender asks for the VIP), bit 5 deferring (the
//! sender holds nothing and will not claim: the receiver may), bit 6
//! disabled (the sender never takes over), bit 7 restarting (the sender's
//! daemon re-executes itself now, keeping the VIP and the application: the
//! short silence that follows is not a failure).
//!
//! The boot epoch is the sender's start time in milliseconds shifted left 16
//! bits, plus 16 random bits: it grows across restarts, so [`ReplayGuard`]
//! can refuse both an old sequence number within an epoch and any packet
//! of an earlier epoch.
//!
//! The echo is the receiver's own boot epoch, as the sender last heard it
//! (0 before it has heard the receiver). It is what makes a recording
//! worthless across the receiver's restarts: a node that has just started
//! has no memory of what it accepted before, but a heartbeat that echoes
//! its new epoch can only have been made after the sender heard this run
//! (the epoch is new, and has 16 random bits), so it is fresh; within the
//! run, the guard's (epoch, sequence) order refuses every repeat. Version 2
//! added the echo; version 1 heartbeats (78 bytes, no echo) are refused.

use std::collections::HashMap;
use std::fmt;

use hmac::{Hmac, Mac as _};
use sha2::{Digest, Sha256};

pub const VERSION: u8 = 2;
pub const KIND_HEARTBEAT: u8 = 1;
pub const LEN: usize = 86;
const BODY: usize = 54;
/// The length of a version 1 heartbeat (before the echo).
const LEN_V1: usize = 78;

/// What a node is doing, as its peer needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireState {
    /// In its start-up window, holding nothing yet.
    Starting = 0,
    /// Standby, not holding the VIP.
    Passive = 1,
    /// Adding the VIP, announcing, starting the application.
    Claiming = 2,
    /// Holding the VIP with the application serving.
    Active = 3,
    /// Stopping the application and removing the VIP.
    Releasing = 4,
    /// Released everything and leaving (graceful shutdown).
    Stopped = 5,
}

impl WireState {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0 => WireState::Starting,
            1 => WireState::Passive,
            2 => WireState::Claiming,
            3 => WireState::Active,
            4 => WireState::Releasing,
            5 => WireState::Stopped,
            _ => return None,
        })
    }

    /// May a node in this state have the VIP on its NIC?
    pub fn holding(self) -> bool {
        matches!(
            self,
            WireState::Claiming | WireState::Active | WireState::Releasing
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    /// The sender's application is serving (only meaningful when Active).
    pub app_ok: bool,
    /// The sender reaches the data service (or none is configured).
    pub data_ok: bool,
    /// The sender's NIC is up with carrier.
    pub nic_ok: bool,
    pub maintenance: bool,
    /// The sender asks for the VIP: the receiver should release it, or,
    /// when nobody holds it, let the sender claim.
    pub release_request: bool,
    /// The sender holds nothing and will not claim: the receiver may
    /// (the answer to a secondary's request, a handover, maintenance).
    pub deferring: bool,
    /// The sender's administrator disabled it: it never takes over.
    pub disabled: bool,
    /// The sender's daemon re-executes itself now (`understudy restart`),
    /// keeping what it holds; its socket may refuse a heartbeat meanwhile.
    pub restarting: bool,
}

impl Flags {
    fn to_u8(self) -> u8 {
        u8::from(self.app_ok)
            | u8::from(self.data_ok) << 1
            | u8::from(self.nic_ok) << 2
            | u8::from(self.maintenance) << 3
            | u8::from(self.release_request) << 4
            | u8::from(self.deferring) << 5
            | u8::from(self.disabled) << 6
            | u8::from(self.restarting) << 7
    }

    fn from_u8(b: u8) -> Self {
        Flags {
            app_ok: b & 1 != 0,
            data_ok: b & 2 != 0,
            nic_ok: b & 4 != 0,
            maintenance: b & 8 != 0,
            release_request: b & 16 != 0,
            deferring: b & 32 != 0,
            disabled: b & 64 != 0,
            restarting: b & 128 != 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Heartbeat {
    pub cluster_id: u64,
    pub node_id: u16,
    pub epoch: u64,
    pub seq: u64,
    pub term: u64,
    pub state: WireState,
    pub flags: Flags,
    pub config_checksum: u64,
}

/// Why a datagram was dropped; each reason is counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reject {
    /// Wrong length or an impossible field value.
    Malformed,
    /// A version this build does not speak.
    Version,
    /// The HMAC does not match (wrong key, or forged or damaged).
    Mac,
    /// Authenticated, but for another cluster.
    Cluster,
    /// Authenticated, but from a node id that is not our peer.
    UnknownNode,
    /// Authenticated, but not from the address configured for its sender.
    Source,
    /// Authenticated, but it does not echo this run's epoch: its sender
    /// had not heard this run when it was made (a recording, or the
    /// sender's first heartbeats after either side started).
    Unproven,
    /// An old sequence number, or an earlier boot epoch.
    Replay,
}

impl Reject {
    pub const ALL: [Reject; 8] = [
        Reject::Malformed,
        Reject::Version,
        Reject::Mac,
        Reject::Cluster,
        Reject::UnknownNode,
        Reject::Source,
        Reject::Unproven,
        Reject::Replay,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Reject::Malformed => "malformed",
            Reject::Version => "version",
            Reject::Mac => "bad_mac",
            Reject::Cluster => "wrong_cluster",
            Reject::UnknownNode => "unknown_node",
            Reject::Source => "wrong_source",
            Reject::Unproven => "unproven",
            Reject::Replay => "replay",
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], body: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    m.update(body);
    m
}

/// A heartbeat as received: what it says, and the receiver's epoch it
/// echoes (see the module's doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signed {
    pub heartbeat: Heartbeat,
    pub echo: u64,
}

impl Heartbeat {
    /// The datagram for one receiver, echoing `echo` (its epoch as last
    /// heard, 0 if never).
    pub fn encode(&self, key: &[u8], echo: u64) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0] = VERSION;
        b[1] = KIND_HEARTBEAT;
        b[2..10].copy_from_slice(&self.cluster_id.to_be_bytes());
        b[10..12].copy_from_slice(&self.node_id.to_be_bytes());
        b[12..20].copy_from_slice(&self.epoch.to_be_bytes());
        b[20..28].copy_from_slice(&self.seq.to_be_bytes());
        b[28..36].copy_from_slice(&self.term.to_be_bytes());
        b[36] = self.state as u8;
        b[37] = self.flags.to_u8();
        b[38..46].copy_from_slice(&self.config_checksum.to_be_bytes());
        b[46..54].copy_from_slice(&echo.to_be_bytes());
        let tag = mac(key, &b[..BODY]).finalize().into_bytes();
        b[BODY..].copy_from_slice(&tag);
        b
    }

    /// Checks length, version and MAC (in constant time), then the fields.
    /// Never panics, whatever the bytes.
    pub fn decode(b: &[u8], key: &[u8]) -> Result<Signed, Reject> {
        Heartbeat::decode_with(b, std::iter::once(key))
    }

    /// As [`Heartbeat::decode`], accepting a MAC made with any of `keys`
    /// (a key rotation in progress; see [`super::keyring`]).
    pub fn decode_with<'k>(
        b: &[u8],
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Result<Signed, Reject> {
        // An older peer's heartbeat (version 1, 78 bytes) is told apart
        // from garbage, so that the log names the upgrade.
        if b.len() == LEN_V1 && b[0] == 1 {
            return Err(Reject::Version);
        }
        if b.len() != LEN {
            return Err(Reject::Malformed);
        }
        if b[0] != VERSION {
            return Err(Reject::Version);
        }
        let signed = |key: &[u8]| mac(key, &b[..BODY]).verify_slice(&b[BODY..]).is_ok();
        if !keys.into_iter().any(signed) {
            return Err(Reject::Mac);
        }
        if b[1] != KIND_HEARTBEAT {
            return Err(Reject::Malformed);
        }
        let u64_at = |at: usize| u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let heartbeat = Heartbeat {
            cluster_id: u64_at(2),
            node_id: u16::from_be_bytes([b[10], b[11]]),
            epoch: u64_at(12),
            seq: u64_at(20),
            term: u64_at(28),
            state: WireState::from_u8(b[36]).ok_or(Reject::Malformed)?,
            flags: Flags::from_u8(b[37]),
            config_checksum: u64_at(38),
        };
        Ok(Signed {
            heartbeat,
            echo: u64_at(46),
        })
    }
}

/// First 8 bytes of SHA-256 over `parts`, as a number.
fn digest64(parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    u64::from_be_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

/// The cluster id carried in every heartbeat, derived from its name.
pub fn cluster_id(name: &str) -> u64 {
    digest64(&[b"understudy cluster\0", name.as_bytes()])
}

/// The checksum of a configuration file's text, announced to the peer.
pub fn config_checksum(text: &str) -> u64 {
    digest64(&[text.as_bytes()])
}

/// A boot epoch from the start time and 16 random bits.
pub fn boot_epoch(unix_millis: u64, random: u16) -> u64 {
    unix_millis << 16 | u64::from(random)
}

/// Remembers the newest (epoch, sequence) seen from each node.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    newest: HashMap<u16, (u64, u64)>,
}

impl ReplayGuard {
    /// Accepts a heartbeat only if it is newer than every one seen from its
    /// sender: a later epoch, or the same epoch with a higher sequence.
    pub fn check(&mut self, hb: &Heartbeat) -> Result<(), Reject> {
        let fresh = self
            .newest
            .get(&hb.node_id)
            .is_none_or(|&last| (hb.epoch, hb.seq) > last);
        if !fresh {
            return Err(Reject::Replay);
        }
        self.newest.insert(hb.node_id, (hb.epoch, hb.seq));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn sample() -> Heartbeat {
        Heartbeat {
            cluster_id: cluster_id("helpdesk"),
            node_id: 1,
            epoch: boot_epoch(1_700_000_000_000, 7),
            seq: 42,
            term: 3,
            state: WireState::Active,
            flags: Flags {
                app_ok: true,
                data_ok: true,
                nic_ok: true,
                maintenance: false,
                release_request: true,
                deferring: false,
                disabled: false,
                restarting: false,
            },
            config_checksum: config_checksum("x"),
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let hb = sample();
        let b = hb.encode(KEY, 0x0102_0304_0506_0708);
        assert_eq!(b.len(), LEN);
        assert_eq!(b[0], VERSION);
        assert_eq!(&b[46..54], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&b[10..12], &[0, 1]);
        assert_eq!(&b[20..28], &42u64.to_be_bytes());
        assert_eq!(b[36], WireState::Active as u8);
        assert_eq!(b[37], 0b10111);
        assert_eq!(
            Heartbeat::decode(&b, KEY),
            Ok(Signed {
                heartbeat: hb,
                echo: 0x0102_0304_0506_0708
            })
        );
    }

    #[test]
    fn any_accepted_key_verifies_and_no_other_does() {
        let b = sample().encode(b"the new key", 5);
        let ring: [&[u8]; 2] = [KEY, b"the new key"];
        assert_eq!(
            Heartbeat::decode_with(&b, ring).map(|s| s.heartbeat),
            Ok(sample())
        );
        let old_only: [&[u8]; 1] = [KEY];
        assert_eq!(Heartbeat::decode_with(&b, old_only), Err(Reject::Mac));
        let none: [&[u8]; 0] = [];
        assert_eq!(Heartbeat::decode_with(&b, none), Err(Reject::Mac));
    }

    #[test]
    fn wrong_key_and_tampering_fail_the_mac() {
        let b = sample().encode(KEY, 5);
        assert_eq!(Heartbeat::decode(&b, b"another key"), Err(Reject::Mac));
        for i in 2..LEN {
            let mut t = b;
            t[i] ^= 0x01;
            assert_eq!(Heartbeat::decode(&t, KEY), Err(Reject::Mac), "byte {i}");
        }
        let mut v = b;
        v[0] = 9;
        assert_eq!(Heartbeat::decode(&v, KEY), Err(Reject::Version));
        let mut older = [0u8; LEN_V1];
        older[0] = 1;
        assert_eq!(
            Heartbeat::decode(&older, KEY),
            Err(Reject::Version),
            "a version 1 heartbeat is named as such"
        );
        assert_eq!(
            Heartbeat::decode(&b[..LEN - 1], KEY),
            Err(Reject::Malformed)
        );
    }

    #[test]
    fn replay_guard_orders_by_epoch_then_sequence() {
        let mut g = ReplayGuard::default();
        let hb = sample();
        assert_eq!(g.check(&hb), Ok(()));
        assert_eq!(g.check(&hb), Err(Reject::Replay), "same packet twice");
        assert_eq!(g.check(&Heartbeat { seq: 41, ..hb }), Err(Reject::Replay));
        assert_eq!(g.check(&Heartbeat { seq: 43, ..hb }), Ok(()));
        let restarted = Heartbeat {
            epoch: hb.epoch + (1 << 16),
            seq: 1,
            ..hb
        };
        assert_eq!(
            g.check(&restarted),
            Ok(()),
            "a restart starts a later epoch"
        );
        assert_eq!(
            g.check(&Heartbeat { seq: 99, ..hb }),
            Err(Reject::Replay),
            "old epoch"
        );
        assert_eq!(g.check(&Heartbeat { node_id: 0, ..hb }), Ok(()), "per node");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = Heartbeat::decode(&bytes, KEY);
        }

        #[test]
        fn mutated_packets_are_rejected(pos in 0..LEN, bit in 0u8..8, extra in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut b = sample().encode(KEY, 9).to_vec();
            b[pos] ^= 1 << bit;
            prop_assert!(Heartbeat::decode(&b, KEY).is_err());
            let mut longer = sample().encode(KEY, 9).to_vec();
            longer.extend(extra.iter());
            if !extra.is_empty() {
                prop_assert_eq!(Heartbeat::decode(&longer, KEY), Err(Reject::Malformed));
            }
        }
    }
}
