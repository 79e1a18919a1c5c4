//! A dual-stack group, `["192.0.2.10/24", "2001:db8::10/64"]`, on the real
//! binary in network namespaces (needs root; see tests/common). After an
//! application fault and after a link-down on m1, m2 takes the whole
//! group: the client's IPv4 and IPv6 neighbour entries both point at m2's
//! MAC, `curl -6` through the IPv6 VIP answers from m2, m1 keeps neither
//! address, and no address is ever left tentative or dadfailed (they are
//! added with IFA_F_NODAD). The client polls both addresses every 20 ms
//! and the test prints when each first answered from m2.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{wait_for, Topology, VIP, VIP6};

/// A claim, a look and an application start, with room for a slow machine.
const LIMIT: Duration = Duration::from_secs(15);

/// The pair on the dual-stack group, m1 serving both addresses.
fn steady_dual_stack(case: &str) -> Topology {
    let mut t = Topology::up(case);
    let config = t.dual_stack_config();
    t.steady_pair_with(&config, &config);
    wait_for("m1 to answer on the IPv6 VIP", LIMIT, || {
        (t.get_vip6().as_deref() == Some("m1")).then_some(())
    });
    // Both neighbour entries exist now (an unsolicited advertisement only
    // updates an entry, as RFC 4861 §7.2.5 says), and point at m1.
    assert_eq!(t.client_neighbour(), Some(t.mac("m1")));
    assert_eq!(t.client_neighbour6(), Some(t.mac("m1")));
    assert_clean(&t, "m1");
    t
}

/// The IPv6 VIP, where `host` has it, is neither tentative nor failed
/// duplicate detection (the host's link-local address runs its own
/// detection after the link comes up, which is the kernel's business).
fn assert_clean(t: &Topology, host: &str) {
    for (address, flags) in t.addresses6(host).into_iter().filter(|(a, _)| a == VIP6) {
        assert!(
            !flags.iter().any(|f| f == "tentative" || f == "dadfailed"),
            "{host}: {address} is {flags:?}"
        );
    }
}

/// Polls both VIPs every 20 ms until each answers from m2; when each did.
fn first_answers_from_m2(t: &Topology, fault: Instant) -> (Duration, Duration) {
    let (mut v4, mut v6) = (None, None);
    while v4.is_none() || v6.is_none() {
        assert!(
            fault.elapsed() < LIMIT,
            "no takeover of both addresses\n{}",
            t.dump_logs()
        );
        if v4.is_none() && t.get_vip().as_deref() == Some("m2") {
            v4 = Some(fault.elapsed());
        }
        if v6.is_none() && t.get_vip6().as_deref() == Some("m2") {
            v6 = Some(fault.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (v4.unwrap(), v6.unwrap())
}

/// m2 holds the whole group, the client's entries point at it, m1 holds
/// nothing.
fn assert_group_on_m2(t: &Topology, case: &str, (v4, v6): (Duration, Duration)) {
    wait_for("m1 to let go of both addresses", LIMIT, || {
        (t.vip_holders() == ["m2"] && t.vip6_holders() == ["m2"]).then_some(())
    });
    assert_eq!(t.client_neighbour(), Some(t.mac("m2")), "{VIP}");
    assert_eq!(t.client_neighbour6(), Some(t.mac("m2")), "{VIP6}");
    assert_eq!(t.get_vip6().as_deref(), Some("m2"));
    assert_clean(t, "m2");
    assert_clean(t, "m1");
    eprintln!(
        "DUAL-STACK {case}: fault -> first answer from m2: IPv4 {} ms, IPv6 {} ms",
        v4.as_millis(),
        v6.as_millis()
    );
}

#[test]
fn a_dual_stack_group_moves_whole_after_an_application_fault() {
    let t = steady_dual_stack("dual-app");
    let app = t.app_pid("m1").expect("m1's application");
    let fault = Instant::now();
    crate::common::run(Command::new("kill").arg(app.to_string()));
    let answers = first_answers_from_m2(&t, fault);
    assert_group_on_m2(&t, "application stopped", answers);
    let status = t.status("m2");
    assert_eq!(
        status["vips"],
        serde_json::json!([format!("{VIP}/24"), format!("{VIP6}/64")])
    );
    assert_eq!(status["vip"], format!("{VIP}/24, {VIP6}/64"));
}

/// An application that listens on IPv4 only, with an IPv6 address in the
/// group: it answers its node's IPv4 URL, but nothing answers on the IPv6
/// common address, so it is not "healthy": the probe through that address
/// fails and status and the log say so in words.
#[test]
fn an_ipv4_only_application_is_not_healthy_on_a_dual_stack_group() {
    let mut t = Topology::up("dual-v4-app");
    let dual = t.dual_stack_config();
    let text = std::fs::read_to_string(&dual).unwrap();
    let v4_only = text.replace("start = \"python3", "start = \"NODEAPP_IPV4_ONLY=1 python3");
    assert_ne!(
        text, v4_only,
        "the test configuration's start command changed"
    );
    std::fs::write(&dual, v4_only).unwrap();
    t.start_with("m1", &dual);
    t.wait_log("m1", "claimed the common IP", LIMIT);
    // IPv4 answers, IPv6 is refused: what a client sees.
    assert_eq!(t.get_vip().as_deref(), Some("m1"));
    assert_eq!(
        t.get_vip6(),
        None,
        "the IPv4-only application answered on IPv6"
    );
    let words = format!("the application does not answer on the common address {VIP6}");
    t.wait_log("m1", &words, LIMIT);
    let (ok, status) = t.ctl("m1", &["status"]);
    assert!(ok, "{status}");
    eprintln!("IPV4-ONLY APPLICATION, m1's status:\n{status}");
    assert!(
        status.contains(&words) && !status.contains("application healthy"),
        "status:\n{status}"
    );
}

#[test]
fn a_dual_stack_group_moves_whole_after_a_link_down() {
    let t = steady_dual_stack("dual-link");
    let fault = Instant::now();
    assert!(t
        .exec("m1", &["ip", "link", "set", "eth0", "down"])
        .status
        .success());
    let answers = first_answers_from_m2(&t, fault);
    // m1's link is down, so only its daemon can say what it holds.
    wait_for("m1 to release the group", LIMIT, || {
        let ours = t.addresses("m1").iter().any(|a| a == VIP)
            || t.addresses6("m1").iter().any(|(a, _)| a == VIP6);
        (!ours).then_some(())
    });
    assert_group_on_m2(&t, "link down", answers);
}

/// The kernel's own frames, captured on m1's eth0 while it runs duplicate
/// address detection (a solicitation from the unspecified address, with
/// RFC 7527's nonce turned off) and, after a MAC change with
/// `ndisc_notify` on, announces its addresses (unsolicited advertisements,
/// Override set): understudy's probe and announcement must be the same
/// bytes.
#[test]
fn the_probe_and_the_announcement_are_the_kernels_own_frames() {
    use std::io::{BufRead, BufReader};
    use understudy::proto::arp::Mac;
    use understudy::proto::ndp::NdpFrame;

    let t = Topology::up("ndp");
    // The kernel ORs the "all" setting with the interface's.
    for sysctl in ["enhanced_dad=0", "ndisc_notify=1"] {
        for scope in ["all", "eth0"] {
            let key = format!("net.ipv6.conf.{scope}.{sysctl}");
            let set = t.exec("m1", &["sysctl", "-qw", &key]);
            assert!(set.status.success(), "{key}");
        }
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/capture_ndp.py");
    let mut capture = Command::new("ip")
        .args(["netns", "exec", &t.ns("m1"), "python3", script, "eth0", "4"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the capture");
    let mut lines = BufReader::new(capture.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
    let parse_mac = |text: &str| {
        let bytes: Vec<u8> = text
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        Mac(bytes.try_into().unwrap())
    };
    let before = parse_mac(&t.mac("m1"));
    let probed: std::net::Ipv6Addr = "2001:db8::77".parse().unwrap();
    assert!(t
        .exec(
            "m1",
            &["ip", "addr", "add", "2001:db8::77/64", "dev", "eth0"]
        )
        .status
        .success());
    // Duplicate address detection takes a second; then the new MAC.
    std::thread::sleep(Duration::from_millis(1500));
    let after = Mac([0x02, 0, 0, 0, 0, 0x77]);
    assert!(t
        .exec(
            "m1",
            &[
                "ip",
                "link",
                "set",
                "dev",
                "eth0",
                "address",
                &after.to_string()
            ]
        )
        .status
        .success());
    let frames: Vec<Vec<u8>> = lines
        .map_while(Result::ok)
        .filter_map(|hex| {
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
                .collect()
        })
        .collect();
    let _ = capture.wait();
    let ours_probe = NdpFrame::probe(before, probed).encode();
    let ours_announce = NdpFrame::announce(after, probed).encode();
    let shown: Vec<String> = frames.iter().map(|f| format!("{f:02x?}")).collect();
    assert!(
        frames.contains(&ours_probe),
        "the kernel's solicitation for {probed} differs from ours {ours_probe:02x?}:\n{}",
        shown.join("\n")
    );
    assert!(
        frames.contains(&ours_announce),
        "the kernel's advertisement for {probed} differs from ours {ours_announce:02x?}:\n{}",
        shown.join("\n")
    );
    for frame in &frames {
        assert!(
            NdpFrame::decode(frame).is_some(),
            "our decoder refuses a kernel frame {frame:02x?}"
        );
    }
}

/// A group m1 cannot wholly add (its third address names a NIC m1 does
/// not have): every claim removes the addresses it added and fails with
/// the reason, so the client never reaches a half-claimed group, and m1
/// never holds an address of it for longer than the claim takes.
#[test]
fn a_claim_that_cannot_add_one_address_removes_the_others() {
    let mut t = Topology::up("dual-partial");
    let config = t.dual_stack_config();
    let text = std::fs::read_to_string(&config).unwrap();
    let partial = t.dir.join("partial.toml");
    let group = format!("vip = [\"{VIP}/24\", \"{VIP6}/64\"]");
    let with_missing = format!("vip = [\"{VIP}/24\", \"{VIP6}/64\", \"198.51.100.10/24@eth9\"]");
    std::fs::write(&partial, text.replace(&group, &with_missing)).unwrap();
    // check-config on the node says so first, with the line.
    let bin = crate::common::bin();
    let checked = t.exec(
        "m1",
        &[
            bin,
            "check-config",
            &partial.display().to_string(),
            "--node",
            "m1",
        ],
    );
    let said = String::from_utf8_lossy(&checked.stderr).into_owned();
    assert!(!checked.status.success(), "{said}");
    assert!(
        said.contains(":4: cluster.vip: 198.51.100.10/24@eth9: no interface named \"eth9\""),
        "{said}"
    );
    let outside = t.dir.join("outside.toml");
    let far = format!("vip = [\"{VIP}/24\", \"2001:db8:1::10/64\"]");
    std::fs::write(&outside, text.replace(&group, &far)).unwrap();
    let checked = t.exec(
        "m1",
        &[
            bin,
            "check-config",
            &outside.display().to_string(),
            "--node",
            "m1",
        ],
    );
    let said = String::from_utf8_lossy(&checked.stderr).into_owned();
    assert!(
        said.contains("2001:db8:1::10/64: outside every subnet of eth0"),
        "{said}"
    );
    let listed = t.exec("m1", &[bin, "iflist", "--for", VIP6]);
    let table = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.status.success() && table.contains("* eth0"),
        "{table}"
    );
    t.start_with("m1", &partial);
    t.wait_log(
        "m1",
        "cannot add 198.51.100.10/24 on eth9",
        Duration::from_secs(10),
    );
    let log = t.daemon("m1").log_text();
    assert!(log.contains("the 2 added before it were removed"), "{log}");
    // For two seconds m1 holds neither address for more than a moment
    // (sampled every 20 ms), and no GET through either ever answers.
    let began = Instant::now();
    let (mut samples, mut held) = (0, 0);
    while began.elapsed() < Duration::from_secs(2) {
        if !t.vip_holders().is_empty() || !t.vip6_holders().is_empty() {
            held += 1;
        }
        samples += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..3 {
        assert_eq!(
            t.get_vip(),
            None,
            "a half-claimed group answered\n{}",
            t.dump_logs()
        );
        assert_eq!(t.get_vip6(), None, "a half-claimed group answered");
    }
    let claims = t
        .daemon("m1")
        .log_text()
        .matches("cannot add 198.51.100.10/24")
        .count();
    eprintln!(
        "PARTIAL: {claims} failed claims, {held} of {samples} samples saw an address mid-claim"
    );
    assert!(
        held * 10 <= samples,
        "m1 held addresses in {held} of {samples} samples"
    );
}

/// `config` with the nodes on their IPv6 addresses (2001:db8::11 and ::12),
/// addresses and application URLs both.
fn ipv6_nodes(config: &str) -> String {
    let mut text = config.to_owned();
    for n in ["11", "12"] {
        text = text
            .replace(
                &format!("address = \"192.0.2.{n}\""),
                &format!("address = \"2001:db8::{n}\""),
            )
            .replace(
                &format!("url = \"http://192.0.2.{n}/\""),
                &format!("url = \"http://[2001:db8::{n}]/\""),
            );
    }
    text
}

/// Node addresses may be IPv6: heartbeats, the peer's probes and the
/// claim all run over it, and the pair takes over as over IPv4.
#[test]
fn a_pair_heartbeats_over_ipv6() {
    let mut t = Topology::up("dual-hb6");
    let text = ipv6_nodes(&std::fs::read_to_string(t.dual_stack_config()).unwrap());
    let config = t.dir.join("heartbeats6.toml");
    std::fs::write(&config, text).unwrap();
    t.steady_pair_with(&config, &config);
    let row = t.status("m2")["nodes"][0].clone();
    assert_eq!(row["address"], "2001:db8::11");
    assert!(row["last_heartbeat"]["age_ms"].as_u64().is_some(), "{row}");
    let app = t.app_pid("m1").expect("m1's application");
    let fault = Instant::now();
    crate::common::run(Command::new("kill").arg(app.to_string()));
    let answers = first_answers_from_m2(&t, fault);
    assert_group_on_m2(&t, "heartbeats over IPv6", answers);
}

/// The IPv6 address deleted from the holder's NIC (as a network restart
/// or an administrator would) is added back at once and announced, and is
/// not left tentative.
#[test]
fn a_deleted_ipv6_address_is_restored() {
    let t = steady_dual_stack("dual-restore");
    let deleted = Instant::now();
    let gone = t.exec(
        "m1",
        &[
            "ip",
            "-6",
            "addr",
            "del",
            &format!("{VIP6}/64"),
            "dev",
            "eth0",
        ],
    );
    assert!(gone.status.success());
    wait_for("the IPv6 VIP back on m1", LIMIT, || {
        (t.vip6_holders() == ["m1"]).then_some(())
    });
    let back = deleted.elapsed();
    assert_clean(&t, "m1");
    assert_eq!(t.vip_holders(), ["m1"], "the IPv4 address stayed");
    wait_for("the client through the IPv6 VIP", LIMIT, || {
        (t.get_vip6().as_deref() == Some("m1")).then_some(())
    });
    eprintln!(
        "DUAL-STACK ip -6 addr del: delete -> VIP back: {} ms",
        back.as_millis()
    );
}

/// The IPv6 look before a claim: another host (the client) holds the IPv6
/// VIP and serves through it; m1, starting alone on an IPv6-only group,
/// finds it with a neighbour solicitation from the unspecified address
/// (its neighbour advertisement names the holder's MAC), sees the service
/// answer through the VIP, and keeps out.
#[test]
fn the_primary_keeps_out_while_another_host_holds_the_ipv6_vip() {
    let mut t = Topology::up("dual-holder");
    let held = t.exec(
        "cl",
        &[
            "ip",
            "addr",
            "add",
            &format!("{VIP6}/64"),
            "dev",
            "eth0",
            "nodad",
        ],
    );
    assert!(held.status.success());
    let app = t.spawn_app("cl");
    let text = ipv6_nodes(&std::fs::read_to_string(t.dual_stack_config()).unwrap()).replace(
        &format!("vip = [\"{VIP}/24\", \"{VIP6}/64\"]"),
        &format!("vip = [\"{VIP6}/64\"]"),
    );
    let config = t.dir.join("ipv6-only.toml");
    std::fs::write(&config, text).unwrap();
    t.assert_m1_keeps_out(&config, Topology::vip6_holders);
    drop(app);
}
