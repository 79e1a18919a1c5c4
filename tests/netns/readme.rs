//! The README's "Install and deploy", "Changing the configuration",
//! "Upgrading" and "Mirroring the application's files" sections, run as a new
//! administrator would run them (needs root; see tests/common). Every shell
//! block marked `<!-- tested: HOSTS -->` is read out of README.md and run,
//! in order, on the hosts it names: `host` is this machine in the
//! repository (the build), `m1` and `m2` are fresh hosts in network
//! namespaces, each with a root shell of its own whose /etc and /usr/local
//! are overlays and /run, /var/lib and /root empty tmpfs (so that installing
//! there touches nothing outside the test). The shipped config/pair.toml is
//! installed as it is. The mirroring section starts OpenSSH's own unit on
//! both, pins the host keys, adds a `[[mirror]]` and restarts, and its
//! first copy must reach m2's own /var/lib.
//!
//! Systemd is not PID 1 here, so `systemctl` is tests/support/
//! systemctl-standin.sh, which runs the installed unit file's own
//! ExecStartPre/ExecStart/ExecReload lines; `systemd-analyze verify` runs
//! for real on the installed unit. The hosts start with an nftables input
//! policy of drop, so the README's firewall rules are what lets the pair
//! work. Then the client must reach m1 through the common IP, m2's status
//! must show the pair, the reload must apply the edited grace on both, and
//! the upgrade must keep the daemon's PID and the VIP.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use crate::common::{wait_for, Topology};

/// One tested block: where it runs and its lines.
#[derive(Debug)]
struct Block {
    hosts: Vec<String>,
    /// `PEER=` lines are set to the other node's address on each host.
    per_peer: bool,
    script: String,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tested blocks of README.md, in order.
fn tested_blocks(readme: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(spec) = line
            .strip_prefix("<!-- tested: ")
            .and_then(|s| s.strip_suffix(" -->"))
        else {
            continue;
        };
        let (hosts, note) = spec.split_once(';').unwrap_or((spec, ""));
        assert_eq!(
            lines.next(),
            Some("```sh"),
            "a tested block must follow {line:?}"
        );
        let script: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        blocks.push(Block {
            hosts: hosts.split_whitespace().map(str::to_owned).collect(),
            per_peer: note.contains("PEER="),
            script: script.join("\n"),
        });
    }
    blocks
}

/// A root shell on one test host, fed one block at a time.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    host: String,
}

const DONE: &str = "__understudy_readme_block_done__";

impl Shell {
    /// A shell in `host`'s namespace with a private mount namespace: /etc
    /// and /usr/local as overlays over the machine's (their changes go to
    /// `dir`), empty /run and /var/lib, the systemctl stand-in first on
    /// PATH, and an nftables input policy of drop.
    fn open(t: &Topology, host: &str, dir: &Path) -> Shell {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &t.ns(host),
                "unshare",
                "-m",
                "--propagation",
                "private",
            ])
            .args(["sh"])
            .current_dir(repo())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("a shell in the host's namespace");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut shell = Shell {
            child,
            stdin,
            stdout,
            host: host.to_owned(),
        };
        let d = dir.join(host);
        for sub in ["etc", "etc.work", "local", "local.work"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let setup = format!(
            "set -e\n\
             mount -t overlay overlay -o lowerdir=/etc,upperdir={d}/etc,workdir={d}/etc.work /etc\n\
             mount -t overlay overlay -o lowerdir=/usr/local,upperdir={d}/local,workdir={d}/local.work /usr/local\n\
             mount -t tmpfs tmpfs /run\n\
             mount -t tmpfs tmpfs /var/lib\n\
             mount -t tmpfs -o mode=0700 tmpfs /root\n\
             mkdir -p /etc/systemd/system /usr/local/sbin\n\
             install -m 0755 {standin} /usr/local/sbin/systemctl\n\
             nft add table inet filter\n\
             nft add chain inet filter input '{{ type filter hook input priority 0; policy drop; }}'\n\
             nft add rule inet filter input ct state established,related accept\n\
             nft add rule inet filter input iif lo accept",
            d = d.display(),
            standin = repo().join("tests/support/systemctl-standin.sh").display(),
        );
        let (ok, out) = shell.run(&setup);
        assert!(ok, "setting up {host}: {out}");
        shell
    }

    /// Runs `script` (stopping at its first failing command) and returns
    /// whether it succeeded and what it printed.
    fn run(&mut self, script: &str) -> (bool, String) {
        let env = format!(
            "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
             STANDIN_NODE={host} STANDIN_APP={app}",
            host = self.host,
            app = repo().join("tests/support/nodeapp.py").display()
        );
        // The end marker on a line of its own, even after output without
        // a final newline (curl's).
        let wrapped =
            format!("( {env}\nset -ex\n{script}\n) 2>&1; printf '\\n{DONE} %s\\n' \"$?\"\n");
        self.stdin
            .write_all(wrapped.as_bytes())
            .expect("the shell reads");
        self.stdin.flush().unwrap();
        let mut out = String::new();
        // Bounded: a block prints at most this many lines before DONE.
        for _ in 0..100_000 {
            let mut line = String::new();
            if self.stdout.read_line(&mut line).unwrap_or(0) == 0 {
                return (false, format!("{out}(the shell ended)"));
            }
            if let Some(code) = line.trim_end().strip_prefix(&format!("{DONE} ")) {
                return (code == "0", out);
            }
            out.push_str(&line);
        }
        (false, format!("{out}(too much output)"))
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.run("systemctl stop understudy");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn peer_of(host: &str) -> &'static str {
    if host == "m1" {
        "192.0.2.12"
    } else {
        "192.0.2.11"
    }
}

/// The block as it runs on `host`.
fn for_host(block: &Block, host: &str) -> String {
    if !block.per_peer {
        return block.script.clone();
    }
    block
        .script
        .lines()
        .map(|l| {
            if l.starts_with("PEER=") {
                format!("PEER={}", peer_of(host))
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the client gets from the common IP on the application's port.
fn client_get(t: &Topology) -> Option<String> {
    let out = t.exec(
        "cl",
        &["curl", "-s", "--max-time", "1", "http://192.0.2.10:8080/"],
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn the_readme_deploys_and_upgrades_a_pair() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let blocks = tested_blocks(&readme);
    assert!(
        blocks.len() >= 8,
        "only {} tested blocks in README.md",
        blocks.len()
    );
    let t = Topology::up("readme");
    let dir = std::env::temp_dir().join(format!("understudy-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut m1 = Shell::open(&t, "m1", &dir);
    let mut m2 = Shell::open(&t, "m2", &dir);
    let mut transcript = String::new();
    let upgrade = blocks
        .iter()
        .position(|b| {
            b.script.contains("understudy restart") && b.script.contains("install -m 0755")
        })
        .expect("an upgrade block");
    let reload = blocks
        .iter()
        .position(|b| b.script.contains("systemctl reload understudy"))
        .expect("a reload block");
    let mut pid_before_upgrade = None;
    for (i, block) in blocks.iter().enumerate() {
        if i == upgrade {
            pid_before_upgrade = Some(m1.run("cat /run/standin/understudy.pid").1);
        }
        for host in &block.hosts {
            let script = for_host(block, host);
            let (ok, out) = match host.as_str() {
                "host" => {
                    let out = Command::new("sh")
                        .args(["-exc", &script])
                        .current_dir(repo())
                        .output()
                        .expect("sh");
                    let text = format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                    (out.status.success(), text)
                }
                "m1" => m1.run(&script),
                "m2" => m2.run(&script),
                other => panic!("unknown host {other:?} in a tested block"),
            };
            transcript.push_str(&format!("--- on {host}:\n{script}\n{out}\n"));
            assert!(ok, "README block failed on {host}:\n{script}\n---\n{out}");
        }
        // The key is written on m1; the README copies it with scp.
        if block.script.contains("understudy keygen") {
            let key = dir.join("m1/etc/understudy/secret");
            let (ok, out) = m2.run(&format!(
                "install -m 0600 {} /etc/understudy/secret",
                key.display()
            ));
            assert!(ok, "copying the key to m2: {out}");
        }
        // The mirror's key and pinned host keys are made on m1; the README
        // copies them with scp.
        if block.script.contains("ssh-keyscan") {
            for file in ["mirror_key", "mirror_key.pub", "mirror_known_hosts"] {
                let from = dir.join("m1/etc/understudy").join(file);
                let (ok, out) = m2.run(&format!(
                    "install -m 0600 {} /etc/understudy/{file}",
                    from.display()
                ));
                assert!(ok, "copying {file} to m2: {out}");
            }
        }
        // The seed's first copy reached m2's own folder.
        if block.script.contains("understudy mirror setup m2") {
            let (_, copied) = m2.run("cat /var/lib/helpdesk/tickets.txt");
            assert!(copied.contains("ticket 1"), "m2's copy: {copied}");
        }
        // Both reloaded the edited file: each applied it, and they agree.
        if i == reload {
            for (name, shell) in [("m1", &mut m1), ("m2", &mut m2)] {
                let (_, log) = shell.run("cat /run/standin/understudy.log");
                assert!(
                    log.contains("configuration reloaded") && log.contains("changed=monitor"),
                    "{name} did not apply the reload:\n{log}"
                );
            }
            wait_for("m2 to see m1 run its file", Duration::from_secs(10), || {
                let (_, json) = m2.run("understudy status --json");
                let s: serde_json::Value = serde_json::from_str(&json[json.find('{')?..]).ok()?;
                (s["nodes"][0]["config_match"] == true).then_some(())
            });
        }
        // Both started: m1 takes the common IP, and m2 hears it (the next
        // block shows m2's status).
        if block.script.contains("systemctl enable --now understudy") && i < upgrade {
            wait_for(
                "m1 to answer on the common IP",
                Duration::from_secs(30),
                || (client_get(&t).as_deref() == Some("m1")).then_some(()),
            );
            wait_for("m2 to hear m1 Active", Duration::from_secs(30), || {
                let (_, json) = m2.run("understudy status --json");
                // After the shell's trace of the command.
                let s: serde_json::Value = serde_json::from_str(&json[json.find('{')?..]).ok()?;
                (s["nodes"][0]["status"] == "Active" && s["nodes"][0]["config_match"] == true)
                    .then_some(())
            });
        }
    }
    eprintln!("{transcript}");
    let status = transcript
        .rsplit("--- on m2:\nunderstudy status\n")
        .next()
        .unwrap();
    assert!(status.contains("VIP 192.0.2.10/24 held by m1"), "{status}");
    let row = status
        .lines()
        .find(|l| l.trim_start().starts_with("m1 "))
        .unwrap_or_default();
    assert!(
        row.contains("Active") && row.contains("match"),
        "m1's row: {row}\n{status}"
    );
    assert!(
        transcript.contains("* eth0 is the NIC whose subnet holds 192.0.2.10"),
        "{transcript}"
    );
    // The upgrade kept everything where it was.
    let pid_after = m1.run("cat /run/standin/understudy.pid").1;
    assert_eq!(pid_before_upgrade.as_deref(), Some(pid_after.as_str()));
    let (_, log) = m1.run("cat /run/standin/understudy.log");
    assert!(
        log.contains("restarted without a failover"),
        "the upgrade did not adopt:\n{log}"
    );
    assert!(
        !log.contains("common IP removed"),
        "the upgrade released:\n{log}"
    );
    assert_eq!(client_get(&t).as_deref(), Some("m1"));
    assert_eq!(t.vip_holders(), ["m1"]);
    drop(m1);
    drop(m2);
    let _ = std::fs::remove_dir_all(&dir);
}
