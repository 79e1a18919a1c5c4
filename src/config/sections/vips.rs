//! `cluster.vip`: one IPv4 address (with `cluster.netmask`), or a list of
//! `"ADDRESS/PREFIX"` entries, IPv4 and IPv6 mixed, each optionally
//! `"ADDRESS/PREFIX@NIC"` when it goes on another NIC than the node's. The
//! addresses are one group: they move together.

use std::net::IpAddr;

use super::super::check::{network_or_broadcast, parse_netmask, Checker};
use super::super::locate::Seg;
use super::super::raw::{RawNetmask, RawVip};
use super::super::{subnet_contains, Vip};
use super::valid_nic_name;

const DEFAULT_PREFIX: u8 = 24;

/// The group, or `None` when the key is missing or an entry is unusable
/// (each problem reported with the key's line).
pub(super) fn vips(
    ck: &mut Checker,
    raw: Option<&RawVip>,
    netmask: Option<&RawNetmask>,
) -> Option<Vec<Vip>> {
    let key = [Seg::Key("cluster"), Seg::Key("vip")];
    let entries = match raw {
        None => {
            ck.report(&key, "required");
            return None;
        }
        Some(RawVip::One(text)) if !text.contains('/') => {
            return single(ck, text, netmask).map(|v| vec![v]);
        }
        Some(RawVip::One(text)) => vec![text.clone()],
        Some(RawVip::Many(list)) => list.clone(),
    };
    if netmask.is_some() {
        ck.report(
            &[Seg::Key("cluster"), Seg::Key("netmask")],
            "applies only to a single address; give each entry of cluster.vip its /PREFIX",
        );
    }
    if entries.is_empty() {
        ck.report(
            &key,
            "the list is empty; give at least one \"ADDRESS/PREFIX\"",
        );
        return None;
    }
    let parsed: Vec<Option<Vip>> = entries.iter().map(|e| entry(ck, e)).collect();
    let group: Vec<Vip> = parsed.into_iter().flatten().collect();
    if group.len() != entries.len() {
        return None;
    }
    together(ck, &group).then_some(group)
}

/// The single-address form: IPv4, its prefix from `cluster.netmask`.
fn single(ck: &mut Checker, text: &str, netmask: Option<&RawNetmask>) -> Option<Vip> {
    let (key, mask_key) = (
        [Seg::Key("cluster"), Seg::Key("vip")],
        [Seg::Key("cluster"), Seg::Key("netmask")],
    );
    let prefix_len = match netmask {
        None => DEFAULT_PREFIX,
        Some(mask) => parse_netmask(mask).unwrap_or_else(|msg| {
            ck.report(&mask_key, msg);
            DEFAULT_PREFIX
        }),
    };
    match text.trim().parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => {
            ck.report(
                &key,
                format!("{text:?}: write an IPv6 address with its prefix, in a list: vip = [\"{text}/64\"]"),
            );
            None
        }
        Ok(address) => usable(ck, address, prefix_len).then_some(Vip {
            address,
            prefix_len,
            nic: None,
        }),
        Err(_) => {
            ck.report(&key, format!("{text:?} is not an IPv4 address"));
            None
        }
    }
}

/// `ADDRESS/PREFIX[@NIC]`.
fn entry(ck: &mut Checker, text: &str) -> Option<Vip> {
    let key = [Seg::Key("cluster"), Seg::Key("vip")];
    let (spec, nic) = match text.split_once('@') {
        Some((spec, nic)) => (spec, Some(nic.to_owned())),
        None => (text, None),
    };
    if let Some(nic) = &nic {
        if !valid_nic_name(nic) {
            ck.report(
                &key,
                format!("{text:?}: {nic:?} is not a valid interface name"),
            );
            return None;
        }
    }
    let Some((address, prefix)) = spec.split_once('/') else {
        ck.report(
            &key,
            format!("{text:?}: write \"ADDRESS/PREFIX\" (\"192.0.2.10/24\", \"2001:db8::10/64\")"),
        );
        return None;
    };
    let Ok(address) = address.trim().parse::<IpAddr>() else {
        ck.report(&key, format!("{text:?}: {address:?} is not an IP address"));
        return None;
    };
    let most = if address.is_ipv4() { 32 } else { 128 };
    let prefix_len = match prefix.trim().parse::<u8>() {
        Ok(p) if (1..=most).contains(&p) => p,
        _ => {
            ck.report(&key, format!("{text:?}: the prefix must be 1..={most}"));
            return None;
        }
    };
    usable(ck, address, prefix_len).then_some(Vip {
        address,
        prefix_len,
        nic,
    })
}

/// An address a host can hold and move: not loopback, multicast,
/// unspecified, an IPv4 network or broadcast address, or IPv6 link-local
/// (which every link has its own of, and which no client reaches by name).
fn usable(ck: &mut Checker, address: IpAddr, prefix_len: u8) -> bool {
    let key = [Seg::Key("cluster"), Seg::Key("vip")];
    let why = match address {
        a if a.is_loopback() || a.is_multicast() || a.is_unspecified() => {
            Some(format!("{a} is not an address a host can serve on"))
        }
        IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => Some(format!(
            "{a} is link-local; a common IP must be global or unique-local"
        )),
        IpAddr::V4(a) => network_or_broadcast(a, prefix_len).map(|which| {
            format!("{a} is the {which} address of {a}/{prefix_len}; hosts cannot use it")
        }),
        IpAddr::V6(_) => None,
    };
    if let Some(why) = &why {
        ck.report(&key, why.clone());
    }
    why.is_none()
}

/// No address twice, and one prefix per subnet: two entries in the same
/// subnet with different prefixes would leave the kernel's routes to
/// chance.
fn together(ck: &mut Checker, group: &[Vip]) -> bool {
    let key = [Seg::Key("cluster"), Seg::Key("vip")];
    let mut fine = true;
    for (i, a) in group.iter().enumerate() {
        for b in &group[..i] {
            if a.address == b.address {
                ck.report(&key, format!("{} is listed twice", a.address));
                fine = false;
            } else if a.prefix_len != b.prefix_len
                && subnet_contains(a.address, a.prefix_len.min(b.prefix_len), b.address)
                && a.nic == b.nic
            {
                ck.report(
                    &key,
                    format!(
                        "{}/{} and {}/{} are in one subnet with different prefixes",
                        b.address, b.prefix_len, a.address, a.prefix_len
                    ),
                );
                fine = false;
            }
        }
    }
    fine
}
