//! The address and link watch: a netlink socket subscribed to IPv4 and
//! IPv6 address events and link events. Any address of the group
//! disappearing from its NIC (a network restart, a DHCP renewal, an `ip
//! addr del`) becomes [`Input::VipMissing`] at once;
//! our NIC going down or losing carrier becomes a failed NIC probe at once,
//! instead of at the next probe interval.

use std::net::IpAddr;

use futures::StreamExt;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkFlags};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::constants::{RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK};
use rtnetlink::sys::{AsyncSocket, SocketAddr};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::core::{Input, Target};

/// Subscribes and forwards events about `nic` (the node's) and the group's
/// addresses on their NICs until the input channel closes.
pub async fn watch(
    nic: String,
    group: Vec<(String, Vec<IpAddr>)>,
    inputs: mpsc::UnboundedSender<Input>,
) {
    let (mut connection, _handle, mut messages) = match rtnetlink::new_connection() {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot open the netlink watch; a removed VIP is noticed only by probes");
            return;
        }
    };
    let groups = SocketAddr::new(0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR);
    if let Err(e) = connection.socket_mut().socket_mut().bind(&groups) {
        warn!(error = %e, "cannot subscribe to netlink events");
        return;
    }
    tokio::spawn(connection);
    // Interface indexes by name, learnt from link events; an address
    // event on an index not yet seen is taken as ours (the safe side).
    let mut indexes: Vec<(String, u32)> = Vec::new();
    while let Some((message, _)) = messages.next().await {
        let NetlinkPayload::InnerMessage(msg) = message.payload else {
            continue;
        };
        let input = match msg {
            RouteNetlinkMessage::DelAddress(a) => {
                let deleted = a.attributes.iter().find_map(|attr| match attr {
                    AddressAttribute::Local(ip) | AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                });
                let ours = group.iter().any(|(on, addresses)| {
                    let index = indexes.iter().find(|(n, _)| n == on).map(|(_, i)| *i);
                    index.is_none_or(|i| i == a.header.index)
                        && deleted.is_some_and(|ip| addresses.contains(&ip))
                });
                ours.then_some(Input::VipMissing)
            }
            RouteNetlinkMessage::NewLink(l) => {
                let Some(name) = l.attributes.iter().find_map(|attr| match attr {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                }) else {
                    continue;
                };
                indexes.retain(|(n, _)| *n != name);
                indexes.push((name.clone(), l.header.index));
                if name != nic {
                    continue;
                }
                let up = l.header.flags.contains(LinkFlags::Up);
                let carrier = l.header.flags.contains(LinkFlags::LowerUp);
                debug!(%nic, up, carrier, "link event");
                let outcome = crate::io::netlink::nic_usable(&nic, up, carrier);
                Some(Input::Probed {
                    target: Target::Nic,
                    started: super::now(),
                    outcome,
                    refused: false,
                })
            }
            _ => None,
        };
        if let Some(input) = input {
            if inputs.send(input).is_err() {
                return;
            }
        }
    }
}
