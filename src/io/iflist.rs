//! `understudy iflist`: the machine's interfaces as an aligned table or as
//! JSON, with the NIC whose subnet holds a given IP marked.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Serialize;

use super::netlink::Link;
use crate::config::subnet_contains;

/// One interface in the JSON output (the shape is documented in the README).
#[derive(Debug, Serialize)]
pub struct InterfaceView {
    pub index: u32,
    pub name: String,
    /// "up" or "down" (administrative state).
    pub admin: &'static str,
    pub carrier: bool,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    pub addresses: Vec<AddressView>,
    /// Present with `--for IP`: whether this NIC's subnet holds that IP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holds_for: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct AddressView {
    /// "inet" or "inet6".
    pub family: &'static str,
    pub address: IpAddr,
    pub prefix: u8,
}

#[derive(Debug, Serialize)]
pub struct IfList {
    pub interfaces: Vec<InterfaceView>,
    /// With `--for IP`: the IP asked about and the NIC chosen (null if none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#for: Option<ForView>,
}

#[derive(Debug, Serialize)]
pub struct ForView {
    pub ip: IpAddr,
    pub nic: Option<String>,
}

/// The first NIC that is up and has an address whose subnet holds `ip`
/// (the loopback's host routes aside).
pub fn nic_for(links: &[Link], ip: IpAddr) -> Option<&Link> {
    let holds = |l: &&Link| {
        l.addresses
            .iter()
            .any(|&(a, p)| !a.is_loopback() && subnet_contains(a, p, ip))
    };
    links
        .iter()
        .filter(holds)
        .max_by_key(|l| (l.admin_up && l.carrier, std::cmp::Reverse(l.index)))
}

pub fn build(links: &[Link], for_ip: Option<IpAddr>) -> IfList {
    let chosen = for_ip.and_then(|ip| nic_for(links, ip)).map(|l| l.index);
    IfList {
        interfaces: links
            .iter()
            .map(|l| InterfaceView {
                index: l.index,
                name: l.name.clone(),
                admin: if l.admin_up { "up" } else { "down" },
                carrier: l.carrier,
                mac: l.mac.map(|m| m.to_string()),
                mtu: l.mtu,
                addresses: l
                    .addresses
                    .iter()
                    .map(|&(address, prefix)| AddressView {
                        family: if address.is_ipv4() { "inet" } else { "inet6" },
                        address,
                        prefix,
                    })
                    .collect(),
                holds_for: for_ip.map(|_| chosen == Some(l.index)),
            })
            .collect(),
        r#for: for_ip.map(|ip| ForView {
            ip,
            nic: chosen
                .and_then(|i| links.iter().find(|l| l.index == i))
                .map(|l| l.name.clone()),
        }),
    }
}

/// The aligned table for people.
pub fn render_table(list: &IfList) -> String {
    let header = [
        "",
        "INDEX",
        "NAME",
        "ADMIN",
        "CARRIER",
        "MAC",
        "MTU",
        "ADDRESSES",
    ];
    let rows: Vec<[String; 8]> = list
        .interfaces
        .iter()
        .map(|i| {
            [
                if i.holds_for == Some(true) {
                    "*".into()
                } else {
                    String::new()
                },
                i.index.to_string(),
                i.name.clone(),
                i.admin.to_owned(),
                if i.carrier { "yes".into() } else { "no".into() },
                i.mac.clone().unwrap_or_else(|| "-".into()),
                i.mtu.map_or("-".into(), |m| m.to_string()),
                if i.addresses.is_empty() {
                    "-".into()
                } else {
                    let shown: Vec<String> = i
                        .addresses
                        .iter()
                        .map(|a| format!("{}/{}", a.address, a.prefix))
                        .collect();
                    shown.join(", ")
                },
            ]
        })
        .collect();
    let mut table = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    table.extend(rows.into_iter().map(Vec::from));
    let mut out = crate::table::aligned(&table);
    if let Some(f) = &list.r#for {
        match &f.nic {
            Some(nic) => {
                let _ = writeln!(out, "\n* {nic} is the NIC whose subnet holds {}", f.ip);
            }
            None => {
                let _ = writeln!(out, "\nno interface has a subnet that holds {}", f.ip);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::arp::Mac;

    fn links() -> Vec<Link> {
        vec![
            Link {
                index: 1,
                name: "lo".into(),
                admin_up: true,
                carrier: true,
                mac: Some(Mac([0; 6])),
                mtu: Some(65536),
                addresses: vec![("127.0.0.1".parse().unwrap(), 8)],
            },
            Link {
                index: 2,
                name: "eth0".into(),
                admin_up: true,
                carrier: true,
                mac: Some(Mac([2, 0, 0, 0, 0, 1])),
                mtu: Some(1500),
                addresses: vec![
                    ("192.0.2.11".parse().unwrap(), 24),
                    ("2001:db8::1".parse().unwrap(), 64),
                ],
            },
        ]
    }

    #[test]
    fn picks_the_nic_whose_subnet_holds_the_ip() {
        let l = links();
        assert_eq!(
            nic_for(&l, "192.0.2.10".parse().unwrap()).map(|l| l.index),
            Some(2)
        );
        assert_eq!(
            nic_for(&l, "2001:db8::99".parse().unwrap()).map(|l| l.index),
            Some(2)
        );
        assert_eq!(nic_for(&l, "198.51.100.1".parse().unwrap()), None);
        assert_eq!(nic_for(&l, "127.0.0.5".parse().unwrap()), None);
    }

    #[test]
    fn table_is_aligned_and_marks_the_choice() {
        let list = build(&links(), Some("192.0.2.10".parse().unwrap()));
        let text = render_table(&list);
        let lines: Vec<&str> = text.lines().collect();
        let col = lines[0].find("NAME").unwrap();
        assert_eq!(lines[1].find("lo"), Some(col));
        assert_eq!(lines[2].find("eth0"), Some(col));
        assert!(lines[2].starts_with('*'));
        assert!(text.contains("eth0 is the NIC whose subnet holds 192.0.2.10"));
        let none = render_table(&build(&links(), Some("203.0.113.1".parse().unwrap())));
        assert!(none.contains("no interface has a subnet that holds 203.0.113.1"));
    }
}
