//! A secured witness with the real servers: etcd over TLS with client
//! certificates (`--client-cert-auth`) and auth enabled (a user whose role
//! may touch `/understudy/` only; JWT tokens that run out after 1 s, so
//! that the daemons authenticate again and again), and PostgreSQL with
//! `ssl = on`, `hostssl … scram-sha-256` only, `sslmode=verify-full` and
//! a password file. The certificates come from a CA the test makes with
//! openssl. Each case brings the pair up through the secured witness,
//! checks that m1 holds the lease, and that a takeover goes through it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{wait_for, Topology};
use crate::pki::Pki;
use crate::witness::{config_with_witness_url, WITNESS_ADDR};

/// The test's CA and certificates (see [`pki`]), and the key pair etcd
/// signs its JWT tokens with.
fn make_pki(dir: &Path) -> Pki {
    let pki = Pki::make(dir, WITNESS_ADDR);
    let p = |f: &str| pki.shown(f);
    crate::pki::openssl(
        "the JWT signing key",
        &["genrsa", "-out", &p("jwt.key"), "2048"],
    );
    crate::pki::openssl(
        "the JWT public key",
        &[
            "rsa",
            "-in",
            &p("jwt.key"),
            "-pubout",
            "-out",
            &p("jwt.pub"),
        ],
    );
    pki.private("jwt.key");
    pki
}

/// A secret file of mode 0600.
fn secret(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).expect("write the secret");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
    path.to_owned()
}

/// etcd over TLS with client certificates, auth on; killed on drop.
struct SecuredEtcd {
    child: Child,
    url: String,
}

impl Drop for SecuredEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SecuredEtcd {
    fn start(t: &Topology, pki: &Pki) -> SecuredEtcd {
        let dir = t.dir.join("etcd-secured");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("etcd's directory");
        let url = format!("https://{WITNESS_ADDR}:2379");
        let peer = format!("http://{WITNESS_ADDR}:2380");
        let p = |f: &str| pki.shown(f);
        let jwt = format!(
            "jwt,pub-key={},priv-key={},sign-method=RS256,ttl=1s",
            p("jwt.pub"),
            p("jwt.key")
        );
        let log = std::fs::File::create(dir.join("log")).expect("etcd's log");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &t.ns("w"),
                "etcd",
                "--name",
                "w",
                "--data-dir",
            ])
            .arg(dir.join("data"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("w={peer}")])
            .args([
                "--cert-file",
                &p("server.crt"),
                "--key-file",
                &p("server.key"),
            ])
            .args(["--client-cert-auth", "--trusted-ca-file", &p("ca.crt")])
            .args(["--auth-token", &jwt])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start etcd (apt-get install etcd-server)");
        let etcd = SecuredEtcd { child, url };
        wait_for("etcd to answer over TLS", Duration::from_secs(15), || {
            etcd.curl(t, pki, "health", None)
                .contains("true")
                .then_some(())
        });
        etcd.enable_auth(t, pki);
        etcd
    }

    /// One request through the JSON gateway, with the client certificate.
    fn curl(&self, t: &Topology, pki: &Pki, path: &str, body: Option<&str>) -> String {
        let p = |f: &str| pki.shown(f);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &t.ns("w"), "curl", "-s", "--max-time", "2"])
            .args([
                "--cacert",
                &p("ca.crt"),
                "--cert",
                &p("client.crt"),
                "--key",
                &p("client.key"),
            ]);
        let url = if path == "health" {
            format!("{}/health", self.url)
        } else {
            format!("{}/v3/{path}", self.url)
        };
        if let Some(body) = body {
            cmd.args(["-X", "POST", "-d", body]);
        }
        let out = cmd.arg(url).output().expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// root (to enable auth at all), and a user `understudy` whose role
    /// reads and writes `/understudy/` and nothing else.
    fn enable_auth(&self, t: &Topology, pki: &Pki) {
        let b64 = |s: &str| {
            use std::io::Write;
            let mut child = Command::new("base64")
                .arg("-w0")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("base64");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(s.as_bytes())
                .expect("write");
            String::from_utf8(child.wait_with_output().expect("base64").stdout).expect("text")
        };
        let steps = [
            (
                "auth/user/add",
                r#"{"name":"root","password":"rootpw"}"#.to_owned(),
            ),
            (
                "auth/user/grant",
                r#"{"user":"root","role":"root"}"#.to_owned(),
            ),
            ("auth/role/add", r#"{"name":"understudy"}"#.to_owned()),
            (
                "auth/role/grant",
                format!(
                    r#"{{"name":"understudy","perm":{{"permType":"READWRITE","key":"{}","range_end":"{}"}}}}"#,
                    b64("/understudy/"),
                    b64("/understudy0")
                ),
            ),
            (
                "auth/user/add",
                r#"{"name":"understudy","password":"s3cret"}"#.to_owned(),
            ),
            (
                "auth/user/grant",
                r#"{"user":"understudy","role":"understudy"}"#.to_owned(),
            ),
            ("auth/enable", "{}".to_owned()),
        ];
        for (path, body) in steps {
            let answer = self.curl(t, pki, path, Some(&body));
            assert!(answer.contains("header"), "{path}: {answer}");
        }
        let refused = self.curl(t, pki, "kv/range", Some(r#"{"key":"Zm9v"}"#));
        assert!(
            refused.contains("user name is empty"),
            "auth is not on: {refused}"
        );
    }
}

/// The test's configuration with a `[witness]` for `url` and `extra`
/// lines in it.
fn config(t: &Topology, url: &str, extra: &str) -> PathBuf {
    let path = t.dir.join("secured.toml");
    std::fs::copy(&t.config, &path).expect("copy the configuration");
    config_with_witness_url(&path, url, "release");
    let text = std::fs::read_to_string(&path).expect("the configuration");
    std::fs::write(&path, format!("{text}{extra}")).expect("write the configuration");
    path
}

/// m1 holds the lease as the witness has it; then m1's application stops
/// and m2 takes over through the witness (a new term).
fn serves_and_fails_over(t: &mut Topology) {
    t.steady_pair_with(&t.dir.join("secured.toml"), &t.dir.join("secured.toml"));
    let term = wait_for(
        "m1's status to show its lease",
        Duration::from_secs(10),
        || {
            let s = t.status("m1");
            (s["witness"]["holder"] == "m1")
                .then(|| s["witness"]["term"].as_u64())
                .flatten()
        },
    );
    let app = t.dir.join("m1.pid");
    let pid = std::fs::read_to_string(&app).expect("m1's application pid");
    let _ = Command::new("kill").arg(pid.trim()).status();
    wait_for("m2 to hold the VIP", Duration::from_secs(20), || {
        (t.vip_holders() == ["m2"]).then_some(())
    });
    let m2 = wait_for(
        "m2's status to show its lease",
        Duration::from_secs(10),
        || {
            let s = t.status("m2");
            (s["witness"]["holder"] == "m2")
                .then(|| s["witness"]["term"].as_u64())
                .flatten()
        },
    );
    assert!(
        m2 > term,
        "m2's term {m2} after m1's {term}\n{}",
        t.dump_logs()
    );
}

#[test]
fn etcd_over_tls_with_client_certificates_and_auth() {
    let mut t = Topology::up("wsecetcd");
    let pki = make_pki(&t.dir.join("pki"));
    let etcd = SecuredEtcd::start(&t, &pki);
    let password = secret(&t.dir.join("etcd-password"), "s3cret\n");
    let extra = format!(
        "ca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\nuser = \"understudy\"\npassword_file = \"{}\"\n",
        pki.path("ca.crt").display(),
        pki.path("client.crt").display(),
        pki.path("client.key").display(),
        password.display()
    );
    let path = config(&t, &format!("etcd://{WITNESS_ADDR}:2379"), &extra);
    let check = Command::new(env!("CARGO_BIN_EXE_understudy"))
        .args(["check-config", path.to_str().unwrap(), "--node", "m1"])
        .output()
        .expect("check-config");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    serves_and_fails_over(&mut t);
    // JWT tokens live 1 s: m2, now renewing the lease every few hundred
    // milliseconds, finds its token expired and authenticates again (how
    // soon depends on when it first authenticated, so it is waited for).
    t.wait_log(
        "m2",
        "etcd's auth token ran out; authenticating again",
        Duration::from_secs(10),
    );
    assert_eq!(t.vip_holders(), ["m2"], "{}", t.dump_logs());
    drop(etcd);
}

#[test]
fn a_password_file_others_can_read_is_refused() {
    let t = Topology::up("wsecmode");
    let password = t.dir.join("loose-password");
    std::fs::write(&password, "s3cret").expect("write");
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let extra = format!(
        "user = \"understudy\"\npassword_file = \"{}\"\n",
        password.display()
    );
    let path = config(&t, &format!("etcd://{WITNESS_ADDR}:2379"), &extra);
    let check = Command::new(env!("CARGO_BIN_EXE_understudy"))
        .args(["check-config", path.to_str().unwrap(), "--node", "m1"])
        .output()
        .expect("check-config");
    let text = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(!check.status.success(), "{text}");
    assert!(text.contains("witness.password_file"), "{text}");
    assert!(text.contains("chmod 600"), "{text}");
}

/// PostgreSQL with `ssl = on`, only `hostssl … scram-sha-256` from the
/// nodes' network, `sslmode=verify-full` against the test's CA, and the
/// password from a file.
#[test]
fn postgres_with_verify_full_and_a_password_file() {
    let mut t = Topology::up("wsecpg");
    let pki = make_pki(&t.dir.join("pki"));
    let server = crate::witness::Server::start_secured_postgres(
        &t,
        &pki.path("server.crt"),
        &pki.path("server.key"),
        "s3cret",
    );
    let password = secret(&t.dir.join("pg-password"), "s3cret\n");
    let extra = format!(
        "ca_file = \"{}\"\npassword_file = \"{}\"\n",
        pki.path("ca.crt").display(),
        password.display()
    );
    let url = format!("postgres://understudy@{WITNESS_ADDR}/helpdesk?sslmode=verify-full");
    config(&t, &url, &extra);
    serves_and_fails_over(&mut t);
    drop(server);
}
