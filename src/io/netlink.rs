//! Links and addresses through rtnetlink: the L2 claim adds and removes
//! the common addresses here, the NIC watch and the address watch
//! subscribe to the kernel's events here, and `iflist` reads the
//! machine's interfaces here.

use std::net::IpAddr;

use futures::TryStreamExt;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::Handle;

use crate::proto::arp::Mac;

const EEXIST: i32 = libc::EEXIST;
const EADDRNOTAVAIL: i32 = libc::EADDRNOTAVAIL;
const ENODEV: i32 = libc::ENODEV;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot open a netlink socket: {0}")]
    Socket(#[from] std::io::Error),
    #[error("no interface named {0:?}")]
    NoSuchLink(String),
    #[error("netlink: {0}")]
    Request(#[from] rtnetlink::Error),
}

/// One network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// Administratively up (`ip link set up`).
    pub admin_up: bool,
    /// The lower layer is up (cable, peer veth).
    pub carrier: bool,
    pub mac: Option<Mac>,
    pub mtu: Option<u32>,
    pub addresses: Vec<(IpAddr, u8)>,
}

/// A handle on the kernel's routing netlink; cheap to clone.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens the socket; must be called inside a tokio runtime.
    pub fn open() -> Result<Self, NetlinkError> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        Ok(Netlink { handle })
    }

    /// Every link with its addresses, ordered by index.
    pub async fn links(&self) -> Result<Vec<Link>, NetlinkError> {
        {
            let mut links: Vec<Link> = self
                .handle
                .link()
                .get()
                .execute()
                .map_ok(link_from_message)
                .try_collect()
                .await?;
            let addrs: Vec<AddressMessage> =
                self.handle.address().get().execute().try_collect().await?;
            for msg in addrs {
                if let (Some(link), Some(ip)) = (
                    links.iter_mut().find(|l| l.index == msg.header.index),
                    address_of(&msg),
                ) {
                    link.addresses.push((ip, msg.header.prefix_len));
                }
            }
            links.sort_by_key(|l| l.index);
            Ok(links)
        }
    }

    /// Every address on the machine (to find which node we are).
    pub async fn local_addresses(&self) -> Result<Vec<IpAddr>, NetlinkError> {
        let msgs: Vec<AddressMessage> = self.handle.address().get().execute().try_collect().await?;
        Ok(msgs.iter().filter_map(address_of).collect())
    }

    pub async fn link(&self, name: &str) -> Result<Link, NetlinkError> {
        let result = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute()
            .try_next()
            .await;
        match result {
            Ok(Some(msg)) => Ok(link_from_message(msg)),
            Ok(None) => Err(NetlinkError::NoSuchLink(name.to_owned())),
            Err(e) if errno(&e) == Some(ENODEV) => Err(NetlinkError::NoSuchLink(name.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    /// The address messages of the link with this index.
    async fn addresses_on(&self, index: u32) -> Result<Vec<AddressMessage>, NetlinkError> {
        Ok(self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await?)
    }

    /// Is `ip` on the link with this index?
    pub async fn has_address(&self, index: u32, ip: IpAddr) -> Result<bool, NetlinkError> {
        let msgs = self.addresses_on(index).await?;
        Ok(msgs.iter().any(|m| address_of(m) == Some(ip)))
    }

    /// Adds `ip/prefix_len` to the link; an address already there is
    /// success. An IPv6 address is added with `IFA_F_NODAD`: it is usable
    /// at once (no tentative period) and cannot fail duplicate address
    /// detection; the look before a claim is what asks whether another
    /// host holds it.
    pub async fn add_address(
        &self,
        index: u32,
        ip: IpAddr,
        prefix_len: u8,
    ) -> Result<(), NetlinkError> {
        let mut request = self.handle.address().add(index, ip, prefix_len);
        if ip.is_ipv6() {
            let message = request.message_mut();
            message.header.flags |= AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match request.execute().await {
            Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
            other => Ok(other?),
        }
    }

    /// Removes every instance of `ip` from the link (whatever its prefix);
    /// an address already gone is success.
    pub async fn remove_address(&self, index: u32, ip: IpAddr) -> Result<(), NetlinkError> {
        let msgs = self.addresses_on(index).await?;
        for msg in msgs.into_iter().filter(|m| address_of(m) == Some(ip)) {
            match self.handle.address().del(msg).execute().await {
                Err(e) if errno(&e) == Some(EADDRNOTAVAIL) => {}
                other => other?,
            }
        }
        Ok(())
    }
}

/// The kernel's link and address events (`RTMGRP_*` bits in `groups`), as
/// they come; the stream ends if the socket does.
pub fn events(
    groups: u32,
) -> Result<impl futures::Stream<Item = RouteNetlinkMessage>, NetlinkError> {
    use futures::StreamExt;
    use rtnetlink::sys::{AsyncSocket, SocketAddr};
    let (mut connection, _handle, messages) = rtnetlink::new_connection()?;
    connection
        .socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, groups))?;
    tokio::spawn(connection);
    Ok(messages.filter_map(|(message, _)| async move {
        match message.payload {
            netlink_packet_core::NetlinkPayload::InnerMessage(msg) => Some(msg),
            _ => None,
        }
    }))
}

/// Why a NIC cannot carry traffic.
#[derive(Debug, thiserror::Error)]
pub enum NicProblem {
    #[error("NIC {0} is down")]
    Down(String),
    #[error("NIC {0} has no carrier")]
    NoCarrier(String),
    /// The kernel could not be asked about it.
    #[error(transparent)]
    Kernel(#[from] NetlinkError),
}

/// Whether a NIC can carry traffic, with the reason when it cannot: up
/// administratively, with carrier.
pub fn nic_usable(nic: &str, admin_up: bool, carrier: bool) -> Result<(), NicProblem> {
    match (admin_up, carrier) {
        (true, true) => Ok(()),
        (false, _) => Err(NicProblem::Down(nic.to_owned())),
        (true, false) => Err(NicProblem::NoCarrier(nic.to_owned())),
    }
}

/// The positive errno of a netlink error reply, if it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}

fn address_of(msg: &AddressMessage) -> Option<IpAddr> {
    // IFA_LOCAL is the interface's own address on point-to-point links;
    // IFA_ADDRESS is the peer there. Prefer LOCAL, fall back to ADDRESS.
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    local.or_else(|| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })
}

fn link_from_message(msg: LinkMessage) -> Link {
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        admin_up: msg.header.flags.contains(LinkFlags::Up),
        carrier: msg.header.flags.contains(LinkFlags::LowerUp),
        mac: None,
        mtu: None,
        addresses: Vec::new(),
    };
    for attr in msg.attributes {
        match attr {
            LinkAttribute::IfName(name) => link.name = name,
            LinkAttribute::Mtu(mtu) => link.mtu = Some(mtu),
            LinkAttribute::Address(bytes) => {
                if let Ok(b) = <[u8; 6]>::try_from(bytes.as_slice()) {
                    link.mac = Some(Mac(b));
                }
            }
            _ => {}
        }
    }
    link
}
