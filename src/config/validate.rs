//! Raw configuration → [`Config`]: parse the TOML, read each section with
//! [`sections`](super::sections) (every problem with its line and key,
//! all sections even when an earlier one failed), then assemble. Never
//! panics on any input.

use super::check::Checker;
use super::leaves;
use super::locate::Locator;
use super::raw::RawConfig;
use super::{sections, Config, Problem};

pub fn validate(text: &str) -> Result<Config, Vec<Problem>> {
    let locator = Locator::new(text);
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(e) => {
            // A syntax error: what follows it cannot be read reliably.
            let e: toml::de::Error = e;
            let line = e.span().map(|s| locator.line_at(s.start));
            return Err(vec![Problem::new(line, "", e.message().trim().to_owned())]);
        }
    };
    let (raw, type_problems) =
        leaves::deserialize::<RawConfig>(table, &locator).map_err(|problem| vec![problem])?;
    let type_errors = type_problems.len();
    let mut ck = Checker {
        locator,
        problems: type_problems,
    };
    let (cluster, vips) = sections::cluster(&mut ck, raw.cluster.unwrap_or_default());
    let nodes = sections::nodes(&mut ck, raw.node.as_deref().unwrap_or(&[]), vips.as_deref());
    let monitor = sections::monitor(&mut ck, raw.monitor.unwrap_or_default());
    let application = sections::application(&mut ck, raw.application.unwrap_or_default());
    let announce = sections::announce(&mut ck, raw.announce.unwrap_or_default());
    let heartbeat = sections::heartbeat(&mut ck, raw.heartbeat.unwrap_or_default());
    let failback = sections::failback(&mut ck, raw.failback.unwrap_or_default());
    let control = sections::control(&mut ck, raw.control.unwrap_or_default());
    let process = sections::process(&mut ck, raw.process.unwrap_or_default());
    let notify = sections::notify(&mut ck, raw.notify.unwrap_or_default());
    let api = raw.api.and_then(|a| sections::api(&mut ck, a));
    let witness = raw.witness.and_then(|w| sections::witness(&mut ck, w));
    let node_count = raw.node.as_ref().map_or(0, Vec::len);
    sections::cluster_size(&mut ck, node_count, witness.as_ref());
    let (watchdog, fence) = raw.fencing.map_or((None, None), |f| {
        sections::fencing(&mut ck, f, witness.as_ref())
    });
    let mirrors = sections::mirrors(&mut ck, raw.mirror.as_deref().unwrap_or(&[]));
    if !ck.problems.is_empty() {
        // A value of the wrong type was left out to read the rest: it is
        // not also "required".
        let (typed, rest) = ck.problems.split_at(type_errors);
        let mut problems = typed.to_vec();
        problems.extend(
            rest.iter()
                .filter(|p| !typed.iter().any(|t| t.key == p.key))
                .cloned(),
        );
        // In the file's order, as an editor walks it; those without a line
        // (about the file as a whole) last.
        problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        return Err(problems);
    }
    let (Some(cluster), Some(nodes)) = (cluster, nodes) else {
        return Err(vec![Problem::new(None, "", "incomplete configuration")]);
    };
    Ok(Config {
        cluster,
        nodes,
        monitor,
        application,
        announce,
        heartbeat,
        failback,
        control,
        process,
        api,
        notify,
        witness,
        watchdog,
        fence,
        mirrors,
        checksum: shared_checksum(text),
    })
}

/// Sections that are each node's own: where its control socket and state
/// file are, how its process is scheduled, its host's watchdog (each
/// node's device guards that node only). They may differ between the
/// nodes without the pair running different configurations; so may where
/// each keeps its heartbeat key file (the keys themselves must agree, or
/// no heartbeat is accepted at all).
const NODE_LOCAL: [&str; 3] = ["control", "process", "fencing"];

/// The checksum announced to the peer: over what the nodes must agree on,
/// in a canonical form (sorted keys, no comments or spacing), so that a
/// comment or a node-local path does not count as drift.
fn shared_checksum(text: &str) -> u64 {
    let Ok(mut value) = text.parse::<toml::Table>() else {
        return crate::proto::heartbeat::config_checksum(text);
    };
    for section in NODE_LOCAL {
        value.remove(section);
    }
    if let Some(toml::Value::Table(heartbeat)) = value.get_mut("heartbeat") {
        heartbeat.remove("secret_file");
    }
    let canonical = toml::to_string(&value).unwrap_or_else(|_| text.to_owned());
    crate::proto::heartbeat::config_checksum(&canonical)
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::check::{
        network_or_broadcast, parse_data_service, parse_netmask, MAX_DURATION,
    };
    use super::super::raw::RawNetmask;
    use super::super::{DataService, OnLoss, Process, Role, WitnessBackend};
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_secured_witness_is_read_and_its_mistakes_named() {
        let etcd = "\n[witness]\nurl = \"etcd://192.0.2.31:2379\"\nca_file = \"/etc/u/ca.crt\"\ncert_file = \"/etc/u/c.crt\"\nkey_file = \"/etc/u/c.key\"\nuser = \"understudy\"\npassword_file = \"/etc/u/pw\"\n";
        let w = validate(&format!("{GOOD}{etcd}"))
            .expect("a secured etcd")
            .witness
            .expect("the witness");
        assert_eq!(
            w.access.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/u/ca.crt"))
        );
        assert_eq!(w.access.user.as_deref(), Some("understudy"));
        let keyless = etcd.replace("key_file = \"/etc/u/c.key\"\n", "");
        let p = problems(&format!("{GOOD}{keyless}"));
        assert_eq!(p[0].key, "witness.key_file", "{p:?}");
        let userless = etcd.replace("user = \"understudy\"\n", "");
        let p = problems(&format!("{GOOD}{userless}"));
        assert_eq!(p[0].key, "witness.user", "{p:?}");
        let relative = etcd.replace("/etc/u/ca.crt", "ca.crt");
        let p = problems(&format!("{GOOD}{relative}"));
        assert!(p[0].message.contains("not an absolute path"), "{p:?}");
        let pg = "\n[witness]\nurl = \"postgres://u:inline@192.0.2.30/db?sslmode=verify-full\"\npassword_file = \"/etc/u/pw\"\ncert_file = \"/etc/u/c.crt\"\nkey_file = \"/etc/u/c.key\"\n";
        let p = problems(&format!("{GOOD}{pg}"));
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"witness.cert_file"), "{p:?}");
        assert!(keys.contains(&"witness.url"), "{p:?}");
    }

    #[test]
    fn a_watchdog_gets_the_longest_timeout_its_lease_allows_and_bad_ones_are_named() {
        use super::super::WatchdogMode;
        let etcd = "\n[witness]\nurl = \"etcd://192.0.2.31:2379\"\n";
        let c = validate(&format!(
            "{GOOD}{etcd}\n[fencing]\nwatchdog = \"/dev/watchdog1\"\n"
        ))
        .expect("a watchdog");
        let w = c.watchdog.expect("the watchdog");
        assert_eq!(w.device, std::path::PathBuf::from("/dev/watchdog1"));
        assert_eq!(w.mode, WatchdogMode::Automatic);
        // A 10 s lease: ¾ is 7.5 s, less a 0.5 s margin, in whole seconds.
        assert_eq!(w.timeout, Duration::from_secs(7));
        let c = validate(&format!(
            "{GOOD}\n[fencing]\nwatchdog_mode = \"required\"\n"
        ))
        .expect("no witness");
        let w = c.watchdog.expect("the watchdog");
        assert_eq!(
            (w.mode, w.timeout),
            (WatchdogMode::Required, Duration::from_secs(2))
        );
        assert_eq!(w.device, std::path::PathBuf::from("/dev/watchdog"));
        let off = validate(&format!("{GOOD}\n[fencing]\nwatchdog_mode = \"off\"\n"));
        assert!(off.expect("off").watchdog.is_none());
        let p = problems(&format!(
            "{GOOD}{etcd}\n[fencing]\nwatchdog = \"/dev/watchdog\"\nwatchdog_timeout = \"8s\"\n"
        ));
        assert_eq!(p[0].key, "fencing.watchdog_timeout", "{p:?}");
        assert!(p[0].message.contains("at most 7s"), "{}", p[0].message);
        let p = problems(&format!(
            "{GOOD}\n[fencing]\nwatchdog = \"/dev/watchdog\"\nwatchdog_timeout = \"1500ms\"\n"
        ));
        assert!(p[0].message.contains("whole number of seconds"), "{p:?}");
        let p = problems(&format!("{GOOD}\n[fencing]\nwatchdog_mode = \"maybe\"\n"));
        assert_eq!(p[0].key, "fencing.watchdog_mode", "{p:?}");
        let p = problems(&format!("{GOOD}\n[fencing]\nwatchdog = \"watchdog\"\n"));
        assert_eq!(p[0].key, "fencing.watchdog", "{p:?}");
        let pg = "\n[witness]\nurl = \"postgres://u@192.0.2.30/db\"\nlease = \"1s\"\n";
        let p = problems(&format!(
            "{GOOD}{pg}\n[fencing]\nwatchdog = \"/dev/watchdog\"\n"
        ));
        assert_eq!(p[0].key, "witness.lease", "{p:?}");
        assert!(p[0].message.contains("too short for a watchdog"), "{p:?}");
        assert!(p[0].line.is_some(), "{p:?}");
    }

    #[test]
    fn the_checksum_ignores_comments_and_node_local_sections() {
        let base = shared_checksum(GOOD);
        let commented = format!("# edited on m2\n{GOOD}\n[control]\nsocket = \"/run/x.sock\"\n");
        assert_eq!(shared_checksum(&commented), base);
        let tuned = format!("{GOOD}\n[process]\nlock_memory = true\n");
        assert_eq!(shared_checksum(&tuned), base);
        let keyed = GOOD.replace("/etc/understudy/secret", "/etc/m2.key");
        assert_eq!(shared_checksum(&keyed), base);
        let changed = GOOD.replacen("helpdesk", "billing", 1);
        assert_ne!(shared_checksum(&changed), base);
    }

    pub const GOOD: &str = r#"
[cluster]
name = "helpdesk"
vip = "192.0.2.10"

[[node]]
name = "m1"
role = "primary"
nic = "eth0"
address = "192.0.2.11"
url = "http://192.0.2.11/"

[[node]]
name = "m2"
role = "secondary"
nic = "eth0"
address = "192.0.2.12"
url = "http://192.0.2.12/"

[heartbeat]
secret_file = "/etc/understudy/secret"
"#;

    fn problems(text: &str) -> Vec<Problem> {
        validate(text).expect_err("should be rejected")
    }

    #[test]
    fn a_witness_is_read_with_its_defaults_and_its_mistakes_named_with_their_line() {
        let c = validate(&format!(
            "{GOOD}\n[witness]\nurl = \"postgres://understudy:pw@192.0.2.30/helpdesk\"\n"
        ))
        .expect("a PostgreSQL witness");
        let w = c.witness.expect("the witness");
        assert_eq!(
            (w.lease, w.on_loss),
            (Duration::from_secs(10), OnLoss::Release)
        );
        assert_eq!(
            w.backend.shown(),
            "postgres://understudy:***@192.0.2.30/helpdesk"
        );
        let c = validate(&format!(
            "{GOOD}\n[witness]\nurl = \"etcd://192.0.2.30,192.0.2.31:2479\"\nlease = \"3s\"\non_loss = \"keep\"\n"
        ))
        .expect("an etcd witness");
        let w = c.witness.expect("the witness");
        assert_eq!(
            w.backend,
            WitnessBackend::Etcd(vec!["192.0.2.30:2379".into(), "192.0.2.31:2479".into()])
        );
        assert_eq!(w.on_loss, OnLoss::Keep);
        let bad = format!(
            "{GOOD}\n[witness]\nurl = \"etcd://192.0.2.30:2379\"\nlease = \"1500ms\"\non_loss = \"hope\"\n"
        );
        let p = problems(&bad);
        let line_of = |needle: &str| {
            bad.lines()
                .position(|l| l.starts_with(needle))
                .map(|i| i + 1)
        };
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(
            (p[0].key.as_str(), p[0].line),
            ("witness.lease", line_of("lease"))
        );
        assert!(
            p[0].message.contains("whole number of seconds"),
            "{}",
            p[0].message
        );
        assert_eq!(
            (p[1].key.as_str(), p[1].line),
            ("witness.on_loss", line_of("on_loss"))
        );
        let p = problems(&format!("{GOOD}\n[witness]\nurl = \"mysql://h/db\"\n"));
        assert_eq!(p[0].key, "witness.url");
        assert!(p[0].message.contains("etcd://"), "{}", p[0].message);
        let p = problems(&format!("{GOOD}\n[witness]\nlease = \"5s\"\n"));
        assert_eq!(
            (p[0].key.as_str(), p[0].message.as_str()),
            ("witness.url", "is required")
        );
    }

    #[test]
    fn heartbeats_faster_than_10ms_are_refused() {
        let p = problems(&format!("{GOOD}interval = \"5ms\"\n"));
        assert_eq!(p[0].key, "heartbeat.interval");
        assert!(p[0].message.contains("at least 10ms"), "{}", p[0].message);
        assert!(validate(&format!("{GOOD}interval = \"10ms\"\n")).is_ok());
    }

    #[test]
    fn a_short_probe_interval_brings_a_short_default_timeout() {
        let text = GOOD.replace(
            "[heartbeat]",
            "[monitor]\ninterval = \"100ms\"\ngrace = \"1s\"\n\n[heartbeat]",
        );
        let c = validate(&text).unwrap();
        assert_eq!(c.monitor.timeout, Duration::from_millis(50));
        assert_eq!(
            validate(GOOD).unwrap().monitor.timeout,
            Duration::from_secs(3)
        );
    }

    #[test]
    fn process_settings_are_off_by_default_and_checked() {
        assert_eq!(validate(GOOD).unwrap().process, Process::default());
        let c = validate(&format!(
            "{GOOD}\n[process]\nrt_priority = 50\nlock_memory = true\n"
        ))
        .unwrap();
        assert_eq!(
            (c.process.rt_priority, c.process.lock_memory),
            (Some(50), true)
        );
        let p = problems(&format!("{GOOD}\n[process]\nrt_priority = 100\n"));
        assert_eq!(p[0].key, "process.rt_priority");
    }

    #[test]
    fn good_config_gets_defaults() {
        let c = validate(GOOD).unwrap();
        assert_eq!(c.cluster.vips[0].prefix_len, 24);
        assert_eq!(c.monitor.grace, Duration::from_secs(180));
        assert_eq!(c.monitor.rise, 2);
        assert_eq!(c.nodes[1].role, Role::Secondary);
    }

    #[test]
    fn netmask_forms() {
        assert_eq!(
            parse_netmask(&RawNetmask::Text("255.255.255.0".into())),
            Ok(24)
        );
        assert_eq!(
            parse_netmask(&RawNetmask::Text("255.255.0.0".into())),
            Ok(16)
        );
        assert_eq!(parse_netmask(&RawNetmask::Text("/28".into())), Ok(28));
        assert_eq!(parse_netmask(&RawNetmask::Prefix(32)), Ok(32));
        assert!(parse_netmask(&RawNetmask::Text("255.0.255.0".into())).is_err());
        assert!(parse_netmask(&RawNetmask::Prefix(33)).is_err());
        assert!(parse_netmask(&RawNetmask::Text("0.0.0.0".into())).is_err());
    }

    #[test]
    fn every_problem_has_key_and_line() {
        let text = GOOD
            .replace("vip = \"192.0.2.10\"", "vip = \"192.0.2.300\"")
            .replace("role = \"secondary\"", "role = \"primary\"")
            .replace("url = \"http://192.0.2.12/\"", "url = \"ftp://x\"")
            + "[monitor]\ninterval = \"1s\"\ntimeout = \"2s\"\ngrace = \"soon\"\n";
        let text = text.replace(
            "[heartbeat]\nsecret_file",
            "[heartbeat]\npeer_timeout = \"1s\"\nsecret_file",
        );
        let p = problems(&text);
        let find = |key: &str| {
            p.iter()
                .find(|p| p.key == key)
                .unwrap_or_else(|| panic!("no {key} in {p:?}"))
        };
        assert_eq!(find("cluster.vip").line, Some(4));
        assert_eq!(find("node #2.url").line, Some(18));
        assert!(find("node").message.contains("exactly one"));
        assert_eq!(find("monitor.timeout").line, Some(25));
        assert_eq!(find("heartbeat.peer_timeout").line, Some(21));
        assert!(find("monitor.grace").message.contains("not a duration"));
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_located() {
        let p = problems(&GOOD.replace(
            "nic = \"eth0\"\naddress = \"192.0.2.12\"",
            "nic = \"eth0\"\nadress = \"192.0.2.12\"",
        ));
        // The misspelt key, by name with the one meant, and the key it
        // leaves missing (at the node's header, so first: line order).
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].key, "node #2.address", "{p:?}");
        assert_eq!(p[1].line, Some(17));
        assert_eq!(p[1].key, "node #2.adress");
        assert_eq!(
            p[1].message, "unknown key `adress`; did you mean `address`?",
            "{p:?}"
        );
        // A wrong type names its key, and the other sections are still read.
        let p = problems(&format!(
            "{GOOD}[announce]\ncount = \"five\"\n[failback]\nmode = \"sometimes\"\n"
        ));
        assert_eq!(p[0].line, Some(23));
        assert_eq!(p[0].key, "announce.count");
        assert!(p[0].message.contains("invalid type"), "{p:?}");
        assert_eq!(p[1].key, "failback.mode", "{p:?}");
    }

    #[test]
    fn vip_outside_subnet_is_rejected() {
        let p = problems(&GOOD.replace("address = \"192.0.2.12\"", "address = \"198.51.100.12\""));
        assert!(p[0].message.contains("not in this node's subnet"), "{p:?}");
    }

    #[test]
    fn data_service_forms() {
        assert_eq!(
            parse_data_service("tcp://db:5432"),
            Ok(DataService::Tcp("db:5432".into()))
        );
        assert!(parse_data_service("tcp://db").is_err());
        assert!(parse_data_service("https://db/health").is_ok());
        assert!(parse_data_service("postgres://understudy@db/helpdesk").is_ok());
        assert!(parse_data_service("mysql://db").is_err());
        assert_eq!(
            parse_data_service("exec:pg_isready -q"),
            Ok(DataService::Command("pg_isready -q".into()))
        );
        assert!(parse_data_service("exec: ").is_err());
    }

    #[test]
    fn notification_settings_are_checked() {
        let text = format!(
            "{GOOD}[notify]\nevents = [\"takeover\", \"tea_time\"]\n[notify.email]\nserver = \"198.51.100.25\"\nsecurity = \"plain\"\nfrom = \"a@example.com\"\nto = [\"not an address\"]\n"
        );
        let p = problems(&text);
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"notify.events"), "{p:?}");
        assert!(
            p.iter()
                .any(|p| p.key == "notify.email.security" && p.message.contains("loopback")),
            "{p:?}"
        );
        assert!(keys.contains(&"notify.email.to"), "{p:?}");
        let ok = format!(
            "{GOOD}[notify.email]\nserver = \"127.0.0.1\"\nsecurity = \"plain\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\n"
        );
        let c = validate(&ok).unwrap();
        assert_eq!(c.notify.email.unwrap().port, 25);
        assert!(
            !c.notify
                .events
                .contains(&crate::core::EventKind::ProbeFailing),
            "off by default"
        );
    }

    #[test]
    fn durations_past_the_maximum_are_refused_with_their_line() {
        for (section, key, value) in [
            ("monitor", "grace", "10000000000000000000s"),
            ("heartbeat", "peer_timeout", "10000000000000000000s"),
            ("heartbeat", "startup", "10000000000000000000s"),
            ("heartbeat", "interval", "7000000000000000000s"),
            ("application", "ready_timeout", "10000000000000000000s"),
            ("monitor", "dwell", "8d"),
        ] {
            let text = if section == "heartbeat" {
                GOOD.replace(
                    "[heartbeat]\n",
                    &format!("[heartbeat]\n{key} = \"{value}\"\n"),
                )
            } else {
                format!("{GOOD}[{section}]\n{key} = \"{value}\"\n")
            };
            let p = problems(&text);
            let hit = p
                .iter()
                .find(|p| p.key == format!("{section}.{key}"))
                .unwrap_or_else(|| panic!("{section}.{key} = {value} accepted: {p:?}"));
            assert!(hit.message.contains("too long"), "{hit:?}");
            assert!(hit.line.is_some(), "{hit:?}");
        }
        let seven_days = format!("{GOOD}[monitor]\ngrace = \"7d\"\n");
        assert_eq!(validate(&seven_days).unwrap().monitor.grace, MAX_DURATION);
    }

    #[test]
    fn a_bad_dwell_is_reported_not_read_as_zero() {
        let p = problems(&format!("{GOOD}[monitor]\ndwell = \"soon\"\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "monitor.dwell");
        assert_eq!(p[0].line, Some(23));
    }

    #[test]
    fn vip_on_the_network_or_broadcast_address_is_refused() {
        for (vip, mask, word) in [
            ("192.0.2.0", "24", "network"),
            ("192.0.2.255", "24", "broadcast"),
            ("192.0.2.15", "28", "broadcast"),
        ] {
            let text = GOOD.replace(
                "vip = \"192.0.2.10\"",
                &format!("vip = \"{vip}\"\nnetmask = {mask}"),
            );
            let p = problems(&text);
            assert!(
                p.iter().any(|p| p.key == "cluster.vip"
                    && p.message.contains(word)
                    && p.line == Some(4)),
                "{vip}/{mask}: {p:?}"
            );
        }
        assert_eq!(
            network_or_broadcast("192.0.2.10".parse().unwrap(), 24),
            None
        );
        assert_eq!(network_or_broadcast("192.0.2.0".parse().unwrap(), 31), None);
    }

    #[test]
    fn empty_control_paths_are_refused() {
        for key in ["socket", "state_file"] {
            let p = problems(&format!("{GOOD}[control]\n{key} = \"\"\n"));
            assert_eq!(p.len(), 1, "{p:?}");
            assert_eq!(p[0].key, format!("control.{key}"));
            assert_eq!(p[0].line, Some(23));
        }
    }

    fn with_vip(vip: &str) -> String {
        GOOD.replace("vip = \"192.0.2.10\"", &format!("vip = {vip}"))
    }

    #[test]
    fn a_list_of_addresses_is_one_group() {
        let c = validate(&with_vip(
            r#"["192.0.2.10/24", "2001:db8::10/64", "198.51.100.10/24@eth1"]"#,
        ))
        .expect("a dual-stack group");
        let shown: Vec<String> = c.cluster.vips.iter().map(|v| v.to_string()).collect();
        assert_eq!(
            shown,
            ["192.0.2.10/24", "2001:db8::10/64", "198.51.100.10/24@eth1"]
        );
        assert_eq!(c.cluster.vips[2].nic_for("eth0"), "eth1");
        assert_eq!(
            c.cluster.shown(),
            "192.0.2.10/24, 2001:db8::10/64, 198.51.100.10/24@eth1"
        );
        assert_eq!(
            c.cluster
                .vip_like(Some("2001:db8::11".parse().unwrap()))
                .to_string(),
            "2001:db8::10"
        );
    }

    #[test]
    fn bad_groups_are_refused_with_the_line() {
        for (vip, words) in [
            (r#"["192.0.2.10/24", "192.0.2.10/24"]"#, "listed twice"),
            (r#"["fe80::10/64"]"#, "link-local"),
            (
                r#"["192.0.2.10/24", "192.0.2.20/25"]"#,
                "different prefixes",
            ),
            (r#""2001:db8::10""#, "with its prefix"),
            (r#"["2001:db8::10/129"]"#, "1..=128"),
            (r#"["192.0.2.10"]"#, "ADDRESS/PREFIX"),
            (r#"["192.0.2.0/24"]"#, "network address"),
            (r#"["ff02::1/64"]"#, "not an address a host can serve on"),
            (r#"["192.0.2.10/24@bad/nic"]"#, "interface name"),
            ("[]", "empty"),
        ] {
            let p = problems(&with_vip(vip));
            let found = p
                .iter()
                .find(|p| p.key == "cluster.vip")
                .unwrap_or_else(|| panic!("{vip}: {p:?}"));
            assert!(found.message.contains(words), "{vip}: {found:?}");
            assert_eq!(found.line, Some(4), "{vip}");
        }
        let list = r#"["192.0.2.10/24"]"#;
        let p = problems(&with_vip(list).replace(list, &format!("{list}\nnetmask = 24")));
        assert!(p.iter().any(|p| p.key == "cluster.netmask"), "{p:?}");
    }

    /// `GOOD` with more secondaries (m3, m4 …, at .13, .14 …), each with
    /// `extra` lines, and `tail` appended.
    fn cluster(n: usize, extra: &[&str], tail: &str) -> String {
        let more: String = (3..=n)
            .map(|i| {
                let lines = extra.get(i - 3).copied().unwrap_or("");
                format!(
                    "\n[[node]]\nname = \"m{i}\"\nrole = \"secondary\"\nnic = \"eth0\"\naddress = \"192.0.2.1{i}\"\nurl = \"http://192.0.2.1{i}/\"\n{lines}"
                )
            })
            .collect();
        GOOD.replacen("\n[heartbeat]", &format!("{more}\n[heartbeat]"), 1) + tail
    }

    const ETCD: &str = "\n[witness]\nurl = \"etcd://192.0.2.31:2379\"\n";

    #[test]
    fn more_than_two_nodes_need_an_etcd_witness_and_release() {
        let p = problems(&cluster(3, &[], ""));
        assert_eq!(p[0].key, "node", "{p:?}");
        assert!(
            p[0].message.contains("need a [witness] with an etcd url"),
            "{p:?}"
        );
        let pg = "\n[witness]\nurl = \"postgres://u@192.0.2.30/db\"\n";
        let p = problems(&cluster(3, &[], pg));
        assert_eq!(p[0].key, "witness.url", "{p:?}");
        assert!(
            p[0].message.contains("PostgreSQL serves a pair only"),
            "{p:?}"
        );
        let keep = format!("{ETCD}on_loss = \"keep\"\n");
        let p = problems(&cluster(3, &[], &keep));
        assert_eq!(p[0].key, "witness.on_loss", "{p:?}");
        let c = validate(&cluster(5, &[], ETCD)).expect("five nodes with etcd");
        assert_eq!(c.nodes.len(), 5);
        // A pair may still use PostgreSQL, or no witness.
        validate(&format!("{GOOD}{pg}")).expect("a pair with PostgreSQL");
        let p = problems(&cluster(17, &[], ETCD));
        assert!(p[0].message.contains("from 2 to 16"), "{p:?}");
    }

    #[test]
    fn secondaries_are_preferred_by_priority_then_by_their_order_in_the_file() {
        let c = validate(&cluster(4, &["", "priority = 200\n"], ETCD)).expect("four nodes");
        let order: Vec<(&str, u8)> = c
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.preference))
            .collect();
        // m4 has the highest priority; m2 and m3 have none (0): file order.
        assert_eq!(order, [("m1", 0), ("m2", 2), ("m3", 3), ("m4", 1)]);
        let by_file = validate(&cluster(3, &[], ETCD)).expect("three nodes");
        let prefs: Vec<u8> = by_file.nodes.iter().map(|n| n.preference).collect();
        assert_eq!(prefs, [0, 1, 2]);
        let text = cluster(3, &["priority = 0\n"], ETCD);
        let p = problems(&text);
        assert_eq!(p[0].key, "node #3.priority", "{p:?}");
        assert!(p[0].message.contains("1 to 255"), "{p:?}");
        let line = text
            .lines()
            .position(|l| l == "priority = 0")
            .map(|i| i + 1);
        assert_eq!(p[0].line, line);
        let on_primary = GOOD.replacen(
            "role = \"primary\"\n",
            "role = \"primary\"\npriority = 9\n",
            1,
        );
        let p = problems(&on_primary);
        assert_eq!(p[0].key, "node #1.priority", "{p:?}");
    }

    #[test]
    fn nodes_may_heartbeat_over_ipv6() {
        let text = with_vip(r#"["192.0.2.10/24", "2001:db8::10/64"]"#)
            .replace("address = \"192.0.2.11\"", "address = \"2001:db8::11\"")
            .replace("address = \"192.0.2.12\"", "address = \"2001:db8::12\"");
        let c = validate(&text).expect("IPv6 node addresses");
        assert!(c.nodes[0].address.is_ipv6());
        let outside = text.replace("2001:db8::12\"", "2001:db8:1::12\"");
        let p = problems(&outside);
        assert!(
            p.iter()
                .any(|p| p.key == "node #2.address"
                    && p.message.contains("not in this node's subnet")),
            "{p:?}"
        );
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            "[",
            "node = 3",
            "[[cluster]]",
            "[cluster]\nvip = 1",
            "\u{0}",
        ] {
            assert!(validate(text).is_err());
        }
    }

    #[test]
    fn mirrors_are_read_with_their_defaults_and_bad_ones_are_named_with_their_line() {
        let mirror = "\n[[mirror]]\nname = \"data\"\npaths = [\"/srv/app/data\"]\nkey = \"/etc/u/mirror_key\"\nknown_hosts = \"/etc/u/known_hosts\"\n";
        let c = validate(&format!("{GOOD}{mirror}")).expect("a mirror");
        let m = &c.mirrors[0];
        assert_eq!(m.name, "data");
        assert_eq!(m.every, Duration::from_secs(60));
        assert!(!m.delete);
        assert_eq!(m.user, "root");
        assert_eq!(
            m.backup_dir,
            std::path::PathBuf::from("/var/lib/understudy/mirror-backups")
        );
        assert!(c.core_settings(0, 1).mirrors);
        let twice = format!("{GOOD}{mirror}{mirror}");
        let p = problems(&twice);
        assert_eq!(p[0].key, "mirror #2.name", "{p:?}");
        assert!(p[0].message.contains("names another"), "{p:?}");
        for (bad, key, says) in [
            (
                "paths = [\"/srv/app/data\"]",
                "mirror #1.paths",
                "is required",
            ),
            (
                "paths = [\"/srv/app/data\"]\nexclude = [\"\"]",
                "mirror #1.exclude",
                "empty pattern",
            ),
            (
                "paths = [\"srv/data\"]",
                "mirror #1.paths",
                "not an absolute path",
            ),
            ("paths = [\"/\"]", "mirror #1.paths", "whole file system"),
            ("paths = [\"/srv/../etc\"]", "mirror #1.paths", "'..'"),
            (
                "paths = [\"/srv/app\"]\nevery = \"10ms\"",
                "mirror #1.every",
                "at least 1s",
            ),
            (
                "paths = [\"/srv/app\"]\nuser = \"a b\"",
                "mirror #1.user",
                "not a user name",
            ),
        ] {
            let with_bad = if says == "is required" {
                mirror.replace(bad, "")
            } else {
                mirror.replace("paths = [\"/srv/app/data\"]", bad)
            };
            let text = format!("{GOOD}{with_bad}");
            let p = problems(&text);
            assert_eq!(p[0].key, key, "{bad}: {p:?}");
            assert!(p[0].message.contains(says), "{bad}: {p:?}");
            assert!(p[0].line.is_some(), "{bad}: {p:?}");
        }
    }
}
