//! ARP over Ethernet (RFC 826): the frames for gratuitous ARP (RFC 5227
//! §3, "ARP Announcement") and for address probes (RFC 5227 §2.1.1).
//!
//! ```text
//!  0                 6                 12     14
//!  +-----------------+-----------------+------+
//!  | destination MAC | source MAC      |0x0806|          Ethernet II
//!  +-----------------+-----------------+------+
//!  14    16    18  19  20    22          28        32          38        42
//!  +-----+-----+---+---+-----+-----------+---------+-----------+---------+
//!  |htype|ptype|hl |pl |oper | sender MAC|sender IP| target MAC|target IP|  ARP
//!  |  1  |0x800| 6 | 4 |1 / 2|           |         |           |         |
//!  +-----+-----+---+---+-----+-----------+---------+-----------+---------+
//! ```
//!
//! Frames shorter than 60 bytes are padded by the NIC driver; we build the
//! 42 meaningful bytes and accept anything at least that long.

use std::fmt;
use std::net::Ipv4Addr;

pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const FRAME_LEN: usize = 42;
const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);
    pub const ZERO: Mac = Mac([0; 6]);
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Request = 1,
    Reply = 2,
}

/// One ARP packet with its Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpFrame {
    pub eth_dst: Mac,
    pub eth_src: Mac,
    pub op: Op,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

impl ArpFrame {
    /// Gratuitous ARP, request form: "who has VIP? tell VIP", broadcast.
    /// Sender IP = target IP = VIP (RFC 5227 §3).
    pub fn announce_request(mac: Mac, vip: Ipv4Addr) -> Self {
        ArpFrame {
            eth_dst: Mac::BROADCAST,
            eth_src: mac,
            op: Op::Request,
            sender_mac: mac,
            sender_ip: vip,
            target_mac: Mac::ZERO,
            target_ip: vip,
        }
    }

    /// Gratuitous ARP, reply form: "VIP is at MAC", broadcast; some hosts
    /// and switches only learn from replies.
    pub fn announce_reply(mac: Mac, vip: Ipv4Addr) -> Self {
        ArpFrame {
            op: Op::Reply,
            target_mac: mac,
            ..Self::announce_request(mac, vip)
        }
    }

    /// ARP probe (RFC 5227 §2.1.1): sender IP 0.0.0.0 so that no host's
    /// cache is changed by the question.
    pub fn probe(mac: Mac, ip: Ipv4Addr) -> Self {
        ArpFrame {
            sender_ip: Ipv4Addr::UNSPECIFIED,
            ..Self::announce_request(mac, ip)
        }
    }

    pub fn encode(&self) -> [u8; FRAME_LEN] {
        let mut b = [0u8; FRAME_LEN];
        b[0..6].copy_from_slice(&self.eth_dst.0);
        b[6..12].copy_from_slice(&self.eth_src.0);
        b[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        b[14..16].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        b[16..18].copy_from_slice(&PTYPE_IPV4.to_be_bytes());
        b[18] = 6;
        b[19] = 4;
        b[20..22].copy_from_slice(&(self.op as u16).to_be_bytes());
        b[22..28].copy_from_slice(&self.sender_mac.0);
        b[28..32].copy_from_slice(&self.sender_ip.octets());
        b[32..38].copy_from_slice(&self.target_mac.0);
        b[38..42].copy_from_slice(&self.target_ip.octets());
        b
    }

    /// Decodes an Ethernet/IPv4 ARP frame; `None` for anything else.
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < FRAME_LEN
            || u16::from_be_bytes([b[12], b[13]]) != ETHERTYPE_ARP
            || u16::from_be_bytes([b[14], b[15]]) != HTYPE_ETHERNET
            || u16::from_be_bytes([b[16], b[17]]) != PTYPE_IPV4
            || b[18] != 6
            || b[19] != 4
        {
            return None;
        }
        let op = match u16::from_be_bytes([b[20], b[21]]) {
            1 => Op::Request,
            2 => Op::Reply,
            _ => return None,
        };
        let mac = |at: usize| Mac(b[at..at + 6].try_into().expect("6 bytes"));
        let ip = |at: usize| Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
        Some(ArpFrame {
            eth_dst: mac(0),
            eth_src: mac(6),
            op,
            sender_mac: mac(22),
            sender_ip: ip(28),
            target_mac: mac(32),
            target_ip: ip(38),
        })
    }

    /// Does this frame show another host using `ip`? (RFC 5227 §2.1.1: any
    /// ARP packet whose sender IP is the address, from another MAC.)
    pub fn claims(&self, ip: Ipv4Addr, own: Mac) -> bool {
        self.sender_ip == ip && self.sender_mac != own
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x11]);
    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

    #[test]
    fn announce_request_bytes() {
        let b = ArpFrame::announce_request(MAC, VIP).encode();
        assert_eq!(&b[0..6], &[0xff; 6]);
        assert_eq!(&b[12..22], &[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        assert_eq!(&b[28..32], &[192, 0, 2, 10]);
        assert_eq!(&b[38..42], &[192, 0, 2, 10]);
        assert_eq!(&b[32..38], &[0; 6]);
    }

    #[test]
    fn reply_and_probe_forms() {
        let r = ArpFrame::announce_reply(MAC, VIP);
        assert_eq!(r.op, Op::Reply);
        assert_eq!(r.target_mac, MAC);
        let p = ArpFrame::probe(MAC, VIP);
        assert_eq!(p.sender_ip, Ipv4Addr::UNSPECIFIED);
        assert!(!p.claims(VIP, Mac([9; 6])), "a probe claims nothing");
        assert!(r.claims(VIP, Mac([9; 6])));
        assert!(!r.claims(VIP, MAC), "our own frame is no conflict");
    }

    #[test]
    fn round_trip_and_padding() {
        let f = ArpFrame::announce_reply(MAC, VIP);
        let mut padded = f.encode().to_vec();
        padded.resize(60, 0);
        assert_eq!(ArpFrame::decode(&padded), Some(f));
        assert_eq!(ArpFrame::decode(&padded[..41]), None);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = ArpFrame::decode(&bytes);
        }
    }
}
