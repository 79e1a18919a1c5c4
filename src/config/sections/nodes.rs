//! `[[node]]`: exactly two, one primary, unique names and addresses, each
//! address in the VIP's subnet.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use super::super::check::{parse_http_url, parse_v4, Checker};
use super::super::locate::Seg;
use super::super::raw::RawNode;
use super::super::{subnet_contains, Node, Role};

/// Linux limits interface names to 15 bytes (IFNAMSIZ - 1).
const MAX_NIC_NAME: usize = 15;

/// What the nodes must not share.
#[derive(Default)]
struct Seen {
    names: HashSet<String>,
    addresses: HashSet<Ipv4Addr>,
}

pub(in crate::config) fn nodes(
    ck: &mut Checker,
    raw: &[RawNode],
    vip: Option<Ipv4Addr>,
    prefix_len: u8,
) -> Option<Vec<Node>> {
    if raw.len() != 2 {
        ck.report(
            &[Seg::Key("node")],
            format!(
                "exactly two [[node]] entries are needed (a primary and a secondary); found {}",
                raw.len()
            ),
        );
    }
    let mut seen = Seen::default();
    let nodes: Vec<Node> = raw
        .iter()
        .enumerate()
        .filter_map(|(i, r)| node(ck, i, r, &mut seen, vip, prefix_len))
        .collect();
    let primaries = raw
        .iter()
        .filter(|r| r.role.as_deref() == Some("primary"))
        .count();
    if !raw.is_empty() && primaries != 1 {
        ck.report(
            &[Seg::Key("node")],
            format!("exactly one node must have role = \"primary\"; found {primaries}"),
        );
    }
    (nodes.len() == raw.len() && raw.len() == 2).then_some(nodes)
}

/// Node `i`; `None` when a key it needs is missing or unusable.
fn node(
    ck: &mut Checker,
    i: usize,
    r: &RawNode,
    seen: &mut Seen,
    vip: Option<Ipv4Addr>,
    prefix_len: u8,
) -> Option<Node> {
    let k = |key| [Seg::Key("node"), Seg::Index(i), Seg::Key(key)];
    let name = ck.required(&r.name, &k("name"));
    if let Some(name) = &name {
        if name.is_empty() {
            ck.report(&k("name"), "must not be empty");
        } else if !seen.names.insert(name.clone()) {
            ck.report(&k("name"), format!("{name:?} is used by another node"));
        }
    }
    let role = ck
        .required(&r.role, &k("role"))
        .and_then(|role| match role.as_str() {
            "primary" => Some(Role::Primary),
            "secondary" => Some(Role::Secondary),
            other => {
                ck.report(
                    &k("role"),
                    format!("{other:?} is not a role; use \"primary\" or \"secondary\""),
                );
                None
            }
        });
    let nic = ck.required(&r.nic, &k("nic"));
    if let Some(nic) = &nic {
        if nic.is_empty() || nic.len() > MAX_NIC_NAME || nic.contains(['/', ' ']) {
            ck.report(&k("nic"), format!("{nic:?} is not a valid interface name"));
        }
    }
    let address = ck
        .required(&r.address, &k("address"))
        .and_then(|a| parse_v4(ck, &a, &k("address")));
    if let Some(address) = address {
        check_address(ck, &k("address"), address, seen, vip, prefix_len);
    }
    let url = ck
        .required(&r.url, &k("url"))
        .and_then(|u| match parse_http_url(&u) {
            Ok(url) => Some(url),
            Err(msg) => {
                ck.report(&k("url"), msg);
                None
            }
        });
    Some(Node {
        name: name?,
        role: role?,
        nic: nic?,
        address: address?,
        url: url?,
    })
}

/// Unique, not the VIP, and in the VIP's subnet.
fn check_address(
    ck: &mut Checker,
    key: &[Seg],
    address: Ipv4Addr,
    seen: &mut Seen,
    vip: Option<Ipv4Addr>,
    prefix_len: u8,
) {
    if !seen.addresses.insert(address) {
        ck.report(key, format!("{address} is used by another node"));
    }
    let Some(vip) = vip else { return };
    if address == vip {
        ck.report(key, "must differ from the common IP (cluster.vip)");
    } else if !subnet_contains(IpAddr::V4(address), prefix_len, IpAddr::V4(vip)) {
        ck.report(
            key,
            format!("the common IP {vip}/{prefix_len} is not in this node's subnet ({address}/{prefix_len})"),
        );
    }
}
