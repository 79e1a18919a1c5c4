//! `[[mirror]]` with real parts: an OpenSSH server started by the test in
//! each node's namespace (Debian's openssh-server), real rsync, and each
//! node with its own copy of the application's folder at the same path (a
//! private mount namespace per node, `tests/support/mount_view.sh`), as two
//! machines have. What is checked is what lands in each node's folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{support, wait_for, ChildGuard, Topology};

/// The mirror's schedule in these tests.
const EVERY: &str = "1s";

struct Mirrored {
    t: Topology,
    /// The path the configuration mirrors (each node sees its own copy).
    app: PathBuf,
    sshd: Vec<(String, ChildGuard)>,
    config: PathBuf,
}

impl Mirrored {
    fn up(case: &str) -> Mirrored {
        let t = Topology::up(case);
        let dir = t.dir.clone();
        let app = dir.join("app");
        for d in [
            &app,
            &dir.join("m1-app"),
            &dir.join("m2-app"),
            &dir.join("backups"),
        ] {
            std::fs::create_dir_all(d).expect("create a test folder");
        }
        keygen(&dir.join("mirror_key"));
        let mut known = String::new();
        for (node, address) in [("m1", "192.0.2.11"), ("m2", "192.0.2.12")] {
            let host_key = dir.join(format!("{node}_host_key"));
            keygen(&host_key);
            let public = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
            known.push_str(&format!("{address} {public}"));
            std::fs::write(
                dir.join(format!("{node}_sshd_config")),
                format!(
                    "Port 22\nListenAddress {address}\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n",
                    host_key.display(),
                    dir.join(format!("{node}_sshd.pid")).display(),
                    dir.join("mirror_key.pub").display(),
                ),
            )
            .unwrap();
        }
        std::fs::write(dir.join("known_hosts"), known).unwrap();
        let mirror = format!(
            "\n[[mirror]]\nname = \"data\"\npaths = [\"{}\"]\nexclude = [\"*.tmp\"]\nevery = \"{EVERY}\"\ndelete = true\nkey = \"{}\"\nknown_hosts = \"{}\"\nbackup_dir = \"{}\"\nalert_after = \"2s\"\n",
            app.display(),
            dir.join("mirror_key").display(),
            dir.join("known_hosts").display(),
            dir.join("backups").display(),
        );
        let text = std::fs::read_to_string(&t.config).unwrap() + &mirror;
        let config = dir.join("mirror.toml");
        std::fs::write(&config, text).unwrap();
        let mut m = Mirrored {
            t,
            app,
            sshd: Vec::new(),
            config,
        };
        m.start_sshd("m1");
        m.start_sshd("m2");
        m
    }

    fn view(&self, node: &str) -> PathBuf {
        self.t.dir.join(format!("{node}-app"))
    }

    /// The wrapper that gives `node` its own copy of the folder.
    fn wrapper(&self, node: &str) -> Vec<String> {
        vec![
            support("mount_view.sh").display().to_string(),
            self.view(node).display().to_string(),
            self.app.display().to_string(),
        ]
    }

    fn start_sshd(&mut self, node: &str) {
        std::fs::create_dir_all("/run/sshd").expect("sshd's privilege separation folder");
        let config = self.t.dir.join(format!("{node}_sshd_config"));
        let log = std::fs::File::create(self.t.dir.join(format!("{node}_sshd.log"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.t.ns(node)])
            .args(self.wrapper(node))
            .args(["/usr/sbin/sshd", "-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start sshd (Debian's openssh-server)");
        self.sshd.retain(|(n, _)| n != node);
        self.sshd.push((node.to_owned(), ChildGuard(child)));
        let address = if node == "m1" {
            "192.0.2.11"
        } else {
            "192.0.2.12"
        };
        wait_for(
            &format!("{node}'s sshd to listen"),
            Duration::from_secs(10),
            || {
                let out = self
                    .t
                    .exec(node, &["ss", "-Htln", &format!("src {address}:22")]);
                (!String::from_utf8_lossy(&out.stdout).trim().is_empty()).then_some(())
            },
        );
    }

    fn stop_sshd(&mut self, node: &str) {
        self.sshd.retain(|(n, _)| n != node);
    }

    fn start(&mut self, node: &str) {
        self.t.wrapper = self.wrapper(node);
        let config = self.config.clone();
        self.t.start_with(node, &config);
    }

    fn write(&self, node: &str, name: &str, text: &str) {
        std::fs::write(self.view(node).join(name), text).expect("write a file in a node's copy");
    }

    fn read(&self, node: &str, name: &str) -> Option<String> {
        std::fs::read_to_string(self.view(node).join(name)).ok()
    }

    fn wait_file(&self, node: &str, name: &str, text: &str, limit: Duration) {
        wait_for(&format!("{name} = {text:?} on {node}"), limit, || {
            (self.read(node, name).as_deref() == Some(text)).then_some(())
        });
    }

    fn mirror_status(&self, node: &str) -> serde_json::Value {
        self.t.status(node)["mirrors"].clone()
    }
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen (Debian's openssh-client)");
    assert!(out.status.success(), "ssh-keygen: {out:?}");
}

/// The holder sends, the standby never does; after a takeover the new
/// holder sends to the old one when it returns, and what that first run
/// replaces there is kept in a dated backup folder; a receiver whose sshd
/// is stopped is reported failing and keeps its copy.
#[test]
fn the_holders_files_reach_the_standby_and_turn_with_the_holder() {
    let mut m = Mirrored::up("mirror");
    m.write("m1", "orders.txt", "order 1\n");
    m.write("m1", "scratch.tmp", "left out\n");
    m.start("m1");
    m.t.wait_log("m1", "claimed the common IP", Duration::from_secs(10));
    m.start("m2");
    m.t.wait_log("m2", "peer available", Duration::from_secs(10));

    // The holder's files reach the standby within the schedule.
    m.wait_file("m2", "orders.txt", "order 1\n", Duration::from_secs(10));
    assert_eq!(m.read("m2", "scratch.tmp"), None, "excluded");
    m.write("m1", "orders.txt", "order 1\norder 2\n");
    m.wait_file(
        "m2",
        "orders.txt",
        "order 1\norder 2\n",
        Duration::from_secs(5),
    );

    // The standby sends nothing.
    m.write(
        "m2",
        "standby-only.txt",
        "written on m2 while it stood by\n",
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        m.read("m1", "standby-only.txt"),
        None,
        "the standby never sends"
    );
    let status = m.mirror_status("m1");
    let row = &status[0];
    assert_eq!(row["node"], "m2", "{status}");
    assert!(
        row["last_success"].is_string() && row["error"].is_null(),
        "{status}"
    );
    assert!(m.mirror_status("m2").as_array().is_none_or(Vec::is_empty));
    let url = format!("http://192.0.2.11:{}/metrics", crate::common::API_PORT);
    let (code, metrics) = m.t.api("GET", &url, Some(crate::common::API_TOKEN), &[]);
    assert_eq!(code, 200, "{metrics}");
    let ok_line = metrics
        .lines()
        .find(|l| l.starts_with("understudy_mirror_ok{") && l.contains("mirror=\"data\""))
        .unwrap_or_default();
    assert!(
        ok_line.contains("peer=\"m2\"") && ok_line.ends_with(" 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("understudy_mirror_last_success_timestamp_seconds{"),
        "{metrics}"
    );
    let (ok, text) = m.t.ctl("m1", &["mirror", "status"]);
    assert!(ok && text.contains("Mirror data to m2: ok"), "{text}");
    let (ok, text) = m.t.ctl("m2", &["mirror", "now"]);
    assert!(!ok && text.contains("only the holder sends"), "{text}");
    let (ok, text) = m.t.ctl("m1", &["mirror", "now", "nosuch"]);
    assert!(!ok && text.contains("no mirror named"), "{text}");
    m.write("m1", "now.txt", "sent now\n");
    let (ok, text) = m.t.ctl("m1", &["mirror", "now", "data"]);
    assert!(ok, "{text}");
    m.wait_file("m2", "now.txt", "sent now\n", Duration::from_secs(5));

    // A receiver that cannot be reached is reported, and keeps its copy
    // (a run already connected when sshd stops may still finish: the
    // change comes once the failure is reported).
    m.stop_sshd("m2");
    wait_for(
        "m1 to report the mirror failing",
        Duration::from_secs(10),
        || {
            m.mirror_status("m1")[0]["error"]
                .as_str()
                .map(str::to_owned)
        },
    );
    m.write("m1", "orders.txt", "order 1\norder 2\norder 3\n");
    m.t.wait_log("m1", "mirror_failing", Duration::from_secs(10));
    assert_eq!(
        m.read("m2", "orders.txt").as_deref(),
        Some("order 1\norder 2\n")
    );
    m.start_sshd("m2");
    m.wait_file(
        "m2",
        "orders.txt",
        "order 1\norder 2\norder 3\n",
        Duration::from_secs(10),
    );

    // A takeover: m2 holds, and writes; m1, stopped, wrote something of its
    // own that the mirror never saw.
    m.t.daemon("m1").signal("TERM");
    m.t.daemon("m1").wait_exit(Duration::from_secs(10));
    m.t.wait_log("m2", "claimed the common IP", Duration::from_secs(15));
    m.write(
        "m2",
        "orders.txt",
        "order 1\norder 2\norder 3\norder 4 (on m2)\n",
    );
    m.write(
        "m1",
        "orders.txt",
        "order 1\norder 2\norder 3\nunmirrored on m1\n",
    );
    m.write("m1", "m1-only.txt", "m1's own\n");

    // m1 returns: m2 sends to it, keeping what it replaces.
    m.start("m1");
    m.wait_file(
        "m1",
        "orders.txt",
        "order 1\norder 2\norder 3\norder 4 (on m2)\n",
        Duration::from_secs(15),
    );
    assert_eq!(m.read("m1", "m1-only.txt"), None, "delete = true");
    let kept = backed_up(&m.t.dir.join("backups/data"), &m.app);
    assert!(
        kept.iter()
            .any(|(name, text)| name == "orders.txt" && text.contains("unmirrored on m1")),
        "m1's own write is in the backup folder: {kept:?}"
    );
    assert!(
        kept.iter().any(|(name, _)| name == "m1-only.txt"),
        "{kept:?}"
    );
    // The run ends (and status says so) just after its last rename.
    wait_for(
        "m2's status to name the backup",
        Duration::from_secs(5),
        || {
            m.mirror_status("m2")[0]["backup"]
                .as_str()
                .map(str::to_owned)
        },
    );
    m.t.wait_log("m2", "mirror_backup", Duration::from_secs(5));

    // A demote carries a file written just before it: the final pass runs
    // with the application stopped, before the common IP goes.
    m.t.wait_log("m1", "peer application healthy", Duration::from_secs(10));
    m.write("m2", "last-write.txt", "written just before the demote\n");
    let (ok, text) = m.t.ctl("m2", &["demote"]);
    assert!(ok, "demote: {text}");
    m.t.wait_answer("m1", std::time::Instant::now(), Duration::from_secs(15));
    assert_eq!(
        m.read("m1", "last-write.txt").as_deref(),
        Some("written just before the demote\n"),
        "the new holder has the last write when it claims"
    );
    m.t.wait_log("m2", "final mirror pass done", Duration::from_secs(1));
}

/// check-config on a node shows the command each mirror runs, and finds
/// a missing host key.
#[test]
fn check_config_shows_the_mirror_command() {
    let m = Mirrored::up("mirror-check");
    let config = m.config.display().to_string();
    let out =
        m.t.exec("m1", &[crate::common::bin(), "check-config", &config]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("mirror data to m2: rsync --archive --relative --delay-updates")
            && text.contains("StrictHostKeyChecking=yes")
            && text.contains("root@192.0.2.12:/"),
        "{text}"
    );
    std::fs::write(m.t.dir.join("known_hosts"), "").unwrap();
    let out =
        m.t.exec("m1", &[crate::common::bin(), "check-config", &config]);
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("has no host key for m2 (192.0.2.12)"),
        "{text}"
    );
}

/// Every file under the dated folders of `backups`, by its name, with its
/// text (the folders hold the mirrored path, `app`, beneath them).
fn backed_up(backups: &Path, app: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for run in std::fs::read_dir(backups).into_iter().flatten().flatten() {
        let folder = run.path().join(app.strip_prefix("/").unwrap_or(app));
        for file in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(file.path()).unwrap_or_default();
            found.push((file.file_name().to_string_lossy().into_owned(), text));
        }
    }
    found
}
