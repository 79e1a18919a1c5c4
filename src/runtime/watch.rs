//! The address and link watch: a netlink socket subscribed to address and
//! link events. The VIP disappearing from our NIC (a network restart, a
//! DHCP renewal, an `ip addr del`) becomes [`Input::VipMissing`] at once;
//! our NIC going down or losing carrier becomes a failed NIC probe at once,
//! instead of at the next probe interval.

use std::net::{IpAddr, Ipv4Addr};

use futures::StreamExt;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkFlags};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::constants::{RTMGRP_IPV4_IFADDR, RTMGRP_LINK};
use rtnetlink::sys::{AsyncSocket, SocketAddr};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::core::{Input, Target};

/// Subscribes and forwards events about `nic` and `vip` until the input
/// channel closes.
pub async fn watch(nic: String, vip: Ipv4Addr, inputs: mpsc::UnboundedSender<Input>) {
    let (mut connection, _handle, mut messages) = match rtnetlink::new_connection() {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot open the netlink watch; a removed VIP is noticed only by probes");
            return;
        }
    };
    let groups = SocketAddr::new(0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR);
    if let Err(e) = connection.socket_mut().socket_mut().bind(&groups) {
        warn!(error = %e, "cannot subscribe to netlink events");
        return;
    }
    tokio::spawn(connection);
    let mut nic_index: Option<u32> = None;
    while let Some((message, _)) = messages.next().await {
        let NetlinkPayload::InnerMessage(msg) = message.payload else {
            continue;
        };
        let input = match msg {
            RouteNetlinkMessage::DelAddress(a) => {
                let ours = nic_index.is_none_or(|i| i == a.header.index);
                let is_vip = a.attributes.iter().any(|attr| {
                    matches!(attr, AddressAttribute::Local(IpAddr::V4(ip)) | AddressAttribute::Address(IpAddr::V4(ip)) if *ip == vip)
                });
                (ours && is_vip).then_some(Input::VipMissing)
            }
            RouteNetlinkMessage::NewLink(l) => {
                let named = l
                    .attributes
                    .iter()
                    .any(|attr| matches!(attr, LinkAttribute::IfName(n) if *n == nic));
                if !named {
                    continue;
                }
                nic_index = Some(l.header.index);
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
