//! `[[node]]`: two or more (up to [`MAX_NODES`]), one primary, unique
//! names and addresses, each address (IPv4 or IPv6) in the subnet of a
//! common address of its family; the secondaries ordered by `priority`,
//! then by their place in the file. (More than two need an etcd witness:
//! checked with `[witness]`, in [`super::cluster_size`].)

use std::collections::HashSet;
use std::net::IpAddr;

use super::super::check::{parse_http_url, Checker};
use super::super::locate::Seg;
use super::super::raw::RawNode;
use super::super::{subnet_contains, Node, Role, Vip};
use super::valid_nic_name;

/// The most nodes one cluster may have: every node heartbeats to every
/// other, and the status table lists them all.
pub const MAX_NODES: usize = 16;

/// What the nodes must not share.
#[derive(Default)]
struct Seen {
    names: HashSet<String>,
    addresses: HashSet<IpAddr>,
}

pub(in crate::config) fn nodes(
    ck: &mut Checker,
    raw: &[RawNode],
    vips: Option<&[Vip]>,
) -> Option<Vec<Node>> {
    if raw.len() < 2 || raw.len() > MAX_NODES {
        ck.report(
            &[Seg::Key("node")],
            format!(
                "from 2 to {MAX_NODES} [[node]] entries are needed (a primary and its secondaries); found {}",
                raw.len()
            ),
        );
    }
    let mut seen = Seen::default();
    let mut nodes: Vec<Node> = raw
        .iter()
        .enumerate()
        .filter_map(|(i, r)| node(ck, i, r, &mut seen, vips))
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
    let complete = nodes.len() == raw.len() && (2..=MAX_NODES).contains(&raw.len());
    let priorities: Vec<Option<u8>> = raw.iter().map(|r| priority(r.priority)).collect();
    rank_by_preference(&mut nodes, &priorities);
    complete.then_some(nodes)
}

/// A valid `priority` (1 to 255), or none.
fn priority(raw: Option<i64>) -> Option<u8> {
    raw.and_then(|p| u8::try_from(p).ok()).filter(|&p| p > 0)
}

/// Sets each node's place in the order of preference: the primary first,
/// then the secondaries by priority (higher first; none counts as 0), then
/// by their order in the file. The nodes keep their order in the file
/// (their index is their heartbeat id).
fn rank_by_preference(nodes: &mut [Node], priorities: &[Option<u8>]) {
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    let key = |i: usize| {
        let primary = nodes[i].role == Role::Primary;
        let priority = priorities.get(i).copied().flatten().unwrap_or(0);
        (!primary, std::cmp::Reverse(priority), i)
    };
    order.sort_by_key(|&i| key(i));
    for (place, i) in order.into_iter().enumerate() {
        nodes[i].preference = place as u8;
    }
}

/// Node `i`; `None` when a key it needs is missing or unusable.
fn node(
    ck: &mut Checker,
    i: usize,
    r: &RawNode,
    seen: &mut Seen,
    vips: Option<&[Vip]>,
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
        if !valid_nic_name(nic) {
            ck.report(&k("nic"), format!("{nic:?} is not a valid interface name"));
        }
    }
    let address =
        ck.required(&r.address, &k("address"))
            .and_then(|a| match a.trim().parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    ck.report(&k("address"), format!("{a:?} is not an IP address"));
                    None
                }
            });
    if let Some(address) = address {
        check_address(ck, &k("address"), address, seen, vips);
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
    check_priority(ck, &k("priority"), r, role);
    Some(Node {
        name: name?,
        role: role?,
        nic: nic?,
        address: address?,
        url: url?,
        preference: 0,
    })
}

/// `priority` orders the secondaries: 1 to 255, higher preferred; the
/// primary is always first and takes none.
fn check_priority(ck: &mut Checker, key: &[Seg], r: &RawNode, role: Option<Role>) {
    let Some(p) = r.priority else { return };
    if role == Some(Role::Primary) {
        ck.report(
            key,
            "the primary is always the most preferred node; priority orders the secondaries",
        );
    } else if priority(Some(p)).is_none() {
        ck.report(
            key,
            format!("{p} is not a priority; use 1 to 255 (higher is preferred)"),
        );
    }
}

/// Unique, not a common address, and in the subnet of the first common
/// address of its family on the node's NIC (when there is one: an IPv6
/// node may serve an IPv4-only group, heartbeating over IPv6).
fn check_address(
    ck: &mut Checker,
    key: &[Seg],
    address: IpAddr,
    seen: &mut Seen,
    vips: Option<&[Vip]>,
) {
    if !seen.addresses.insert(address) {
        ck.report(key, format!("{address} is used by another node"));
    }
    let Some(vips) = vips else { return };
    if vips.iter().any(|v| v.address == address) {
        ck.report(key, "must differ from the common IP (cluster.vip)");
        return;
    }
    let same_family = |v: &&Vip| v.nic.is_none() && v.address.is_ipv4() == address.is_ipv4();
    if let Some(vip) = vips.iter().find(same_family) {
        let prefix_len = vip.prefix_len;
        if !subnet_contains(address, prefix_len, vip.address) {
            ck.report(
                key,
                format!(
                    "the common IP {}/{prefix_len} is not in this node's subnet ({address}/{prefix_len})",
                    vip.address
                ),
            );
        }
    }
}
