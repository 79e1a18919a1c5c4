//! HTTPS probes against a real TLS server on loopback (openssl s_server)
//! that demands a client certificate: the configured CA file is trusted and
//! the client certificate presented; without them the probe fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use understudy::config::{Expect, Url};
use understudy::io::probe::{Check, Prober};

use crate::pki::Pki;

/// The test CA's certificates (see [`pki`]), with the client's
/// certificate and key in one file, as the probe's `client_cert` takes
/// them.
fn certificates(dir: &Path) -> Pki {
    let pki = Pki::make(dir, "127.0.0.1");
    let pem = std::fs::read_to_string(pki.path("client.crt")).unwrap()
        + &std::fs::read_to_string(pki.path("client.key")).unwrap();
    std::fs::write(pki.path("client.pem"), pem).unwrap();
    pki
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn https_probe_with_ca_file_and_client_certificate() {
    let dir: PathBuf =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tls-probe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pki = certificates(&dir);
    let port = 56000 + (std::process::id() % 1000) as u16;
    let server = Command::new("openssl")
        .current_dir(&dir)
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            "server.crt",
            "-key",
            "server.key",
        ])
        .args(["-CAfile", "ca.crt", "-Verify", "1", "-www", "-quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let _server = Server(server);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "s_server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = Url::parse(&format!("https://127.0.0.1:{port}/")).unwrap();
    let check = Check::App(url);
    let timeout = Duration::from_secs(3);
    let ca = pki.path("ca.crt");
    let client = pki.path("client.pem");

    let full = Prober::with_identity(timeout, Some(&ca), Some(&client), Expect::default()).unwrap();
    let healthy = full.check(&check).await;
    assert!(healthy.is_ok(), "{healthy:?}");

    let no_client = Prober::new(timeout, Some(&ca), Expect::default()).unwrap();
    assert!(
        no_client.check(&check).await.is_err(),
        "the server demands a client certificate"
    );

    let no_ca = Prober::with_identity(timeout, None, Some(&client), Expect::default()).unwrap();
    let err = no_ca.check(&check).await.unwrap_err().to_string();
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("cannot connect"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
