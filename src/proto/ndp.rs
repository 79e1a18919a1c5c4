//! IPv6 neighbour discovery over Ethernet (RFC 4861): the unsolicited
//! neighbour advertisement that announces an address that moved (§7.2.6:
//! to all-nodes, Override set, with the target link-layer address option)
//! and the neighbour solicitation from the unspecified address that asks
//! whether another host already holds one (the IPv6 twin of the RFC 5227
//! ARP probe; RFC 4862 §5.4.2's duplicate address detection frame).
//!
//! ```text
//!  0         6         12     14                                       54
//!  +---------+---------+------+----------------------------------------+
//!  | dst MAC | src MAC |0x86dd| IPv6: version 6, payload length, next   |
//!  |         |         |      | header 58 (ICMPv6), hop limit 255, src,|
//!  |         |         |      | dst                                    |
//!  +---------+---------+------+----------------------------------------+
//!  54    55    56        58        62                      78       86
//!  +-----+-----+---------+---------+-----------------------+--------+
//!  |type |code | checksum| flags   | target address        | option |  ICMPv6
//!  |135/6|  0  |         | (R S O) |                       | 2 or 1 |
//!  +-----+-----+---------+---------+-----------------------+--------+
//! ```
//!
//! The checksum covers the IPv6 pseudo-header (RFC 8200 §8.1).

use std::net::Ipv6Addr;

use super::arp::Mac;

pub const ETHERTYPE_IPV6: u16 = 0x86dd;
const NEXT_HEADER_ICMPV6: u8 = 58;
const HOP_LIMIT: u8 = 255;
pub const TYPE_SOLICITATION: u8 = 135;
pub const TYPE_ADVERTISEMENT: u8 = 136;
const OPTION_SOURCE_LL: u8 = 1;
const OPTION_TARGET_LL: u8 = 2;
/// Advertisement flags (RFC 4861 §4.4): Router, Solicited, Override.
const FLAG_SOLICITED: u32 = 1 << 30;
const FLAG_OVERRIDE: u32 = 1 << 29;
/// Ethernet (14) + IPv6 (40) + ICMPv6 header, flags and target (24).
const HEADERS: usize = 14 + 40 + 24;

/// The all-nodes multicast group, ff02::1.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The solicited-node multicast group of `ip` (RFC 4291 §2.7.1).
pub fn solicited_node(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet address of an IPv6 multicast group (RFC 2464 §7).
pub fn multicast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    Mac([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// One neighbour solicitation or advertisement with its Ethernet and IPv6
/// headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NdpFrame {
    pub eth_dst: Mac,
    pub eth_src: Mac,
    pub ip_src: Ipv6Addr,
    pub ip_dst: Ipv6Addr,
    pub kind: Kind,
    pub target: Ipv6Addr,
    /// The link-layer address option: the source's on a solicitation, the
    /// target's on an advertisement; none on a probe (RFC 4861 §7.2.2).
    pub link_layer: Option<Mac>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Solicitation,
    Advertisement { solicited: bool, overriding: bool },
}

impl NdpFrame {
    /// "`vip` is at `mac`", to all nodes, overriding their caches.
    pub fn announce(mac: Mac, vip: Ipv6Addr) -> Self {
        NdpFrame {
            eth_dst: multicast_mac(ALL_NODES),
            eth_src: mac,
            ip_src: vip,
            ip_dst: ALL_NODES,
            kind: Kind::Advertisement {
                solicited: false,
                overriding: true,
            },
            target: vip,
            link_layer: Some(mac),
        }
    }

    /// "Does anyone hold `ip`?", from the unspecified address to its
    /// solicited-node group, without a link-layer option.
    pub fn probe(mac: Mac, ip: Ipv6Addr) -> Self {
        let group = solicited_node(ip);
        NdpFrame {
            eth_dst: multicast_mac(group),
            eth_src: mac,
            ip_src: Ipv6Addr::UNSPECIFIED,
            ip_dst: group,
            kind: Kind::Solicitation,
            target: ip,
            link_layer: None,
        }
    }

    /// Does this frame say another host holds `ip`: an advertisement for
    /// it, or a solicitation for it from the unspecified address (another
    /// host probing for it at the same time), not sent by `own`?
    pub fn claims(&self, ip: Ipv6Addr, own: Mac) -> bool {
        self.target == ip
            && self.eth_src != own
            && match self.kind {
                Kind::Advertisement { .. } => true,
                Kind::Solicitation => self.ip_src.is_unspecified(),
            }
    }

    /// The holder's MAC: the target link-layer option, else the sender.
    pub fn holder(&self) -> Mac {
        match self.kind {
            Kind::Advertisement { .. } => self.link_layer.unwrap_or(self.eth_src),
            Kind::Solicitation => self.eth_src,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut icmp = Vec::with_capacity(32);
        let (kind, flags, option) = match self.kind {
            Kind::Solicitation => (TYPE_SOLICITATION, 0, OPTION_SOURCE_LL),
            Kind::Advertisement {
                solicited,
                overriding,
            } => {
                let flags = if solicited { FLAG_SOLICITED } else { 0 }
                    | if overriding { FLAG_OVERRIDE } else { 0 };
                (TYPE_ADVERTISEMENT, flags, OPTION_TARGET_LL)
            }
        };
        icmp.extend_from_slice(&[kind, 0, 0, 0]);
        icmp.extend_from_slice(&flags.to_be_bytes());
        icmp.extend_from_slice(&self.target.octets());
        if let Some(mac) = self.link_layer {
            icmp.extend_from_slice(&[option, 1]);
            icmp.extend_from_slice(&mac.0);
        }
        let sum = checksum(self.ip_src, self.ip_dst, &icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let mut b = Vec::with_capacity(HEADERS + 8);
        b.extend_from_slice(&self.eth_dst.0);
        b.extend_from_slice(&self.eth_src.0);
        b.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        b.extend_from_slice(&[0x60, 0, 0, 0]);
        b.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
        b.extend_from_slice(&[NEXT_HEADER_ICMPV6, HOP_LIMIT]);
        b.extend_from_slice(&self.ip_src.octets());
        b.extend_from_slice(&self.ip_dst.octets());
        b.extend_from_slice(&icmp);
        b
    }

    /// A solicitation or advertisement as RFC 4861 §7.1 accepts them (hop
    /// limit 255, code 0, a valid checksum); anything else is `None`.
    /// Never panics, whatever the bytes.
    pub fn decode(b: &[u8]) -> Option<NdpFrame> {
        if b.len() < HEADERS || u16::from_be_bytes([b[12], b[13]]) != ETHERTYPE_IPV6 {
            return None;
        }
        let ip = &b[14..54];
        if ip[0] >> 4 != 6 || ip[6] != NEXT_HEADER_ICMPV6 || ip[7] != HOP_LIMIT {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        let icmp = b.get(54..54 + len)?;
        let addr = |at: &[u8]| Ipv6Addr::from(<[u8; 16]>::try_from(at).expect("16 bytes"));
        let (ip_src, ip_dst) = (addr(&ip[8..24]), addr(&ip[24..40]));
        if icmp.len() < 24 || icmp[1] != 0 || checksum(ip_src, ip_dst, icmp) != 0 {
            return None;
        }
        let flags = u32::from_be_bytes(icmp[4..8].try_into().expect("4 bytes"));
        let (kind, wanted_option) = match icmp[0] {
            TYPE_SOLICITATION => (Kind::Solicitation, OPTION_SOURCE_LL),
            TYPE_ADVERTISEMENT => (
                Kind::Advertisement {
                    solicited: flags & FLAG_SOLICITED != 0,
                    overriding: flags & FLAG_OVERRIDE != 0,
                },
                OPTION_TARGET_LL,
            ),
            _ => return None,
        };
        let mac = |at: &[u8]| Mac(<[u8; 6]>::try_from(at).expect("6 bytes"));
        Some(NdpFrame {
            eth_dst: mac(&b[0..6]),
            eth_src: mac(&b[6..12]),
            ip_src,
            ip_dst,
            kind,
            target: addr(&icmp[8..24]),
            link_layer: link_layer_option(&icmp[24..], wanted_option),
        })
    }
}

/// The first link-layer option of `kind` among `options` (each: type,
/// length in units of 8 bytes, data); a malformed list ends the search.
fn link_layer_option(mut options: &[u8], kind: u8) -> Option<Mac> {
    while options.len() >= 8 {
        let len = usize::from(options[1]) * 8;
        if len == 0 || len > options.len() {
            return None;
        }
        if options[0] == kind && len == 8 {
            return Some(Mac(options[2..8].try_into().expect("6 bytes")));
        }
        options = &options[len..];
    }
    None
}

/// The ICMPv6 checksum of `icmp` (with its checksum field as it is) over
/// the pseudo-header; 0 when `icmp` already carries a correct one.
fn checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(icmp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, NEXT_HEADER_ICMPV6]);
    add(icmp);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0x11]);
    const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);

    #[test]
    fn groups_are_derived_as_rfc_4291_and_2464_say() {
        let ip: Ipv6Addr = "2001:db8::1:2345:6789".parse().unwrap();
        assert_eq!(
            solicited_node(ip),
            "ff02::1:ff45:6789".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(multicast_mac(ALL_NODES), Mac([0x33, 0x33, 0, 0, 0, 1]));
    }

    #[test]
    fn frames_round_trip_with_a_valid_checksum() {
        for frame in [NdpFrame::announce(MAC, VIP), NdpFrame::probe(MAC, VIP)] {
            let bytes = frame.encode();
            assert_eq!(
                NdpFrame::decode(&bytes),
                Some(frame.clone()),
                "{bytes:02x?}"
            );
            let mut bad = bytes.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert_eq!(
                NdpFrame::decode(&bad),
                None,
                "a flipped bit fails the checksum"
            );
        }
        let na = NdpFrame::announce(MAC, VIP).encode();
        assert_eq!(na.len(), 86);
        assert_eq!(&na[54..56], &[136, 0]);
        assert_eq!(na[58], 0x20, "Override only");
        assert_eq!(
            NdpFrame::probe(MAC, VIP).encode().len(),
            78,
            "no option on a probe"
        );
    }

    #[test]
    fn claims_and_holder() {
        let other = Mac([0x02, 0, 0, 0, 0, 0x12]);
        let theirs = NdpFrame::announce(other, VIP);
        assert!(theirs.claims(VIP, MAC));
        assert_eq!(theirs.holder(), other);
        assert!(!NdpFrame::announce(MAC, VIP).claims(VIP, MAC), "our own");
        assert!(
            NdpFrame::probe(other, VIP).claims(VIP, MAC),
            "a simultaneous probe"
        );
        let mut resolving = NdpFrame::probe(other, VIP);
        resolving.ip_src = "2001:db8::99".parse().unwrap();
        assert!(
            !resolving.claims(VIP, MAC),
            "a host asking for the VIP does not hold it"
        );
    }

    #[test]
    fn decode_never_panics_on_short_or_odd_input() {
        let good = NdpFrame::announce(MAC, VIP).encode();
        for len in 0..good.len() {
            let _ = NdpFrame::decode(&good[..len]);
        }
        let mut long_option = good.clone();
        long_option[79] = 200;
        let _ = NdpFrame::decode(&long_option);
    }
}
