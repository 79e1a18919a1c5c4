//! What a live reload may change. A running daemon holds sockets, an
//! address and a place in the pair that some settings name; changing those
//! needs the daemons started again, so a file that changes them is refused
//! whole (never half-applied). Everything else (probe timings, grace,
//! expectations, the application's commands, announce settings, heartbeat
//! timings, failback, notifications, API tokens, heartbeat keys) applies
//! in place, without moving the VIP or restarting the application.

use super::Config;

/// The section name `compare` reports for changed notifications: a reload
/// that lists it starts a new notifier.
pub const NOTIFY: &str = "notify";

/// What a stop and start of both daemons is needed for.
const BOTH: &str = "stop both daemons and start them with the new file (the common IP moves)";
/// How a witness is added, changed or removed: a restart of each node, the
/// standby first, so that the holder's new process asks the (new) witness
/// for the lease while it keeps the VIP.
const ROLLING: &str = "run `understudy restart` on each node, the standby first (the holder keeps the common IP and asks the witness for the lease)";
/// What `understudy restart` (a re-exec that keeps the VIP) applies.
const RESTART: &str = "run `understudy restart`, which reads the file anew and keeps the common IP";

/// The witness as a reload compares it.
fn witness(c: &Config) -> String {
    match &c.witness {
        None => "none".to_owned(),
        Some(w) => format!(
            "{} lease={} on_loss={}",
            w.backend.shown(),
            humantime::format_duration(w.lease),
            w.on_loss
        ),
    }
}

/// The watchdog and the fence command as a reload compares them.
fn fencing(c: &Config) -> String {
    let watchdog = match &c.watchdog {
        None => "watchdog off".to_owned(),
        Some(w) => format!(
            "watchdog {} mode={} timeout={}",
            w.device.display(),
            w.mode,
            humantime::format_duration(w.timeout)
        ),
    };
    match &c.fence {
        None => watchdog,
        Some(f) => format!(
            "{watchdog} fence={:?} timeout={}",
            f.command,
            humantime::format_duration(f.timeout)
        ),
    }
}

/// What a change of this node's watchdog needs: the device is armed only
/// while the node holds the VIP, and a restart while holding hands the open
/// device over as it is.
const FENCING: &str = "stop this node's daemon while it does not hold the common IP (`understudy demote` first) and start it with the new file";

/// The sections `new` changes that a reload applies, or every change it
/// cannot apply and why.
pub fn compare(old: &Config, new: &Config) -> Result<Vec<&'static str>, Vec<String>> {
    let mut refused = Vec::new();
    let mut fixed = |key: &str, before: String, after: String, how: &str| {
        if before != after {
            refused.push(format!(
                "{key} cannot change while the daemon runs ({before} → {after}); {how}"
            ));
        }
    };
    fixed(
        "cluster.name",
        old.cluster.name.clone(),
        new.cluster.name.clone(),
        BOTH,
    );
    let vip = |c: &Config| c.cluster.shown();
    fixed("cluster.vip", vip(old), vip(new), BOTH);
    let names = |c: &Config| {
        c.nodes
            .iter()
            .map(|n| n.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    fixed("the nodes", names(old), names(new), BOTH);
    for (a, b) in old.nodes.iter().zip(&new.nodes) {
        let key = |k: &str| format!("node {:?}.{k}", a.name);
        fixed(&key("role"), a.role.to_string(), b.role.to_string(), BOTH);
        fixed(&key("nic"), a.nic.clone(), b.nic.clone(), BOTH);
        fixed(
            &key("address"),
            a.address.to_string(),
            b.address.to_string(),
            BOTH,
        );
    }
    fixed("[witness]", witness(old), witness(new), ROLLING);
    fixed("[fencing]", fencing(old), fencing(new), FENCING);
    let port = |c: &Config| c.heartbeat.port.to_string();
    fixed("heartbeat.port", port(old), port(new), BOTH);
    let shown = |p: &std::path::Path| p.display().to_string();
    fixed(
        "control.socket",
        shown(&old.control.socket),
        shown(&new.control.socket),
        RESTART,
    );
    fixed(
        "control.state_file",
        shown(&old.control.state_file),
        shown(&new.control.state_file),
        RESTART,
    );
    // Sections too large to show in a line: compared whole, told as edited.
    let edited = |before: String, after: String| match before == after {
        true => ("as running".to_owned(), "as running".to_owned()),
        false => ("as running".to_owned(), "edited".to_owned()),
    };
    let (before, after) = edited(format!("{:?}", old.process), format!("{:?}", new.process));
    fixed("[process]", before, after, RESTART);
    let (before, after) = edited(format!("{:?}", old.mirrors), format!("{:?}", new.mirrors));
    fixed("[[mirror]]", before, after, RESTART);
    let listener = |c: &Config| match &c.api {
        None => "no API".to_owned(),
        Some(api) if api.tls.is_some() => format!("{} with TLS", api.listen),
        Some(api) => format!("{} without TLS", api.listen),
    };
    fixed(
        "api.listen and api.tls",
        listener(old),
        listener(new),
        RESTART,
    );
    if !refused.is_empty() {
        return Err(refused);
    }
    Ok(changed_sections(old, new))
}

/// The live sections that differ, for the log and the answer.
fn changed_sections(old: &Config, new: &Config) -> Vec<&'static str> {
    let urls = |c: &Config| {
        c.nodes
            .iter()
            .map(|n| n.url.to_string())
            .collect::<Vec<_>>()
    };
    let tokens = |c: &Config| c.api.as_ref().map(|a| a.tokens_file.clone());
    let heartbeat = |c: &Config| {
        let h = &c.heartbeat;
        (
            h.interval,
            h.peer_timeout,
            h.restart_allowance,
            h.startup,
            h.secret_file.clone(),
        )
    };
    let sections = [
        (
            "monitor",
            format!("{:?}", old.monitor) != format!("{:?}", new.monitor),
        ),
        ("node URLs", urls(old) != urls(new)),
        (
            "application",
            format!("{:?}", old.application) != format!("{:?}", new.application),
        ),
        (
            "announce",
            format!("{:?}", old.announce) != format!("{:?}", new.announce),
        ),
        ("heartbeat", heartbeat(old) != heartbeat(new)),
        ("failback", old.failback != new.failback),
        (
            NOTIFY,
            format!("{:?}", old.notify) != format!("{:?}", new.notify),
        ),
        ("api.tokens_file", tokens(old) != tokens(new)),
    ];
    sections
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::validate::tests::GOOD;
    use super::*;
    use std::path::Path;

    /// A valid file with a grace to change.
    fn base() -> String {
        format!("{GOOD}\n[monitor]\ngrace = \"3m\"\n")
    }

    fn config(text: &str) -> Config {
        Config::parse(Path::new("test.toml"), text).expect("a valid configuration")
    }

    #[test]
    fn timings_apply_live() {
        let edited = base().replace("grace = \"3m\"", "grace = \"30s\"\ninterval = \"2s\"")
            + "\n[announce]\ncount = 9\n";
        assert_eq!(
            compare(&config(&base()), &config(&edited)),
            Ok(vec!["monitor", "announce"])
        );
        assert_eq!(compare(&config(&base()), &config(&base())), Ok(vec![]));
    }

    #[test]
    fn what_names_the_pair_is_refused_with_every_reason() {
        let edited = base().replace("192.0.2.10", "192.0.2.9").replace(
            "nic = \"eth0\"\naddress = \"192.0.2.12\"",
            "nic = \"eth1\"\naddress = \"192.0.2.12\"",
        ) + "\n[control]\nsocket = \"/run/other.sock\"\n";
        let refused = compare(&config(&base()), &config(&edited)).expect_err("refused");
        assert_eq!(refused.len(), 3, "{refused:#?}");
        assert!(
            refused[0].starts_with("cluster.vip cannot change"),
            "{}",
            refused[0]
        );
        assert!(
            refused[0].contains("192.0.2.10/24 → 192.0.2.9/24"),
            "{}",
            refused[0]
        );
        assert!(refused[1].starts_with("node \"m2\".nic"), "{}", refused[1]);
        assert!(refused[2].contains("understudy restart"), "{}", refused[2]);
    }

    #[test]
    fn a_watchdog_change_is_refused_with_how_to_apply_it() {
        let edited = base() + "\n[fencing]\nwatchdog = \"/dev/watchdog\"\n";
        let refused = compare(&config(&base()), &config(&edited)).expect_err("refused");
        assert!(
            refused[0].starts_with("[fencing] cannot change"),
            "{refused:?}"
        );
        assert!(refused[0].contains("understudy demote"), "{refused:?}");
    }

    #[test]
    fn adding_a_witness_is_refused_with_how_to_apply_it() {
        let edited = base() + "\n[witness]\nurl = \"etcd://192.0.2.30:2379\"\n";
        let refused = compare(&config(&base()), &config(&edited)).expect_err("refused");
        assert_eq!(refused.len(), 1, "{refused:#?}");
        assert!(
            refused[0].starts_with("[witness] cannot change")
                && refused[0].contains("none → etcd://192.0.2.30:2379 lease=10s on_loss=release"),
            "{}",
            refused[0]
        );
    }
}
