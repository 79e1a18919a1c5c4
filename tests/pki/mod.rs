//! A certificate authority for the TLS tests, made with openssl: a CA, a
//! server certificate for one IP address (usable as a client's too: etcd's
//! JSON gateway connects to its own gRPC port with it) and a client
//! certificate without a CN (etcd refuses, through the gateway, every
//! request whose client certificate carries one). The keys are of mode
//! 0600, as the daemon demands of a key file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Pki {
    dir: PathBuf,
}

/// Runs openssl with `args`; panics with its output, saying `what`, if
/// it fails.
pub fn openssl(what: &str, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{what}: openssl: {e}"));
    assert!(
        out.status.success(),
        "{what}: openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    /// Makes the CA and both certificates in `dir`, the server's for
    /// `server_ip`.
    pub fn make(dir: &Path, server_ip: &str) -> Pki {
        std::fs::create_dir_all(dir).expect("the PKI directory");
        let pki = Pki {
            dir: dir.to_owned(),
        };
        let p = |f: &str| pki.shown(f);
        openssl(
            "the CA",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=understudy test CA",
                "-keyout",
                &p("ca.key"),
                "-out",
                &p("ca.crt"),
            ],
        );
        // Extensions make version 3 certificates, the only ones rustls
        // takes.
        for (name, subject, ext) in [
            (
                "server",
                "/CN=server".to_owned(),
                format!("subjectAltName=IP:{server_ip}\nextendedKeyUsage=serverAuth,clientAuth"),
            ),
            (
                "client",
                "/O=understudy".to_owned(),
                "extendedKeyUsage=clientAuth".to_owned(),
            ),
        ] {
            std::fs::write(pki.path(&format!("{name}.ext")), ext).expect("the extensions");
            openssl(
                "a key and request",
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    &subject,
                    "-keyout",
                    &p(&format!("{name}.key")),
                    "-out",
                    &p(&format!("{name}.csr")),
                ],
            );
            openssl(
                "a certificate",
                &[
                    "x509",
                    "-req",
                    "-days",
                    "2",
                    "-in",
                    &p(&format!("{name}.csr")),
                    "-CA",
                    &p("ca.crt"),
                    "-CAkey",
                    &p("ca.key"),
                    "-CAcreateserial",
                    "-out",
                    &p(&format!("{name}.crt")),
                    "-extfile",
                    &p(&format!("{name}.ext")),
                ],
            );
            pki.private(&format!("{name}.key"));
        }
        pki
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The path of `file` as an argument.
    pub fn shown(&self, file: &str) -> String {
        self.path(file).display().to_string()
    }

    /// Makes `file` readable by its owner only.
    pub fn private(&self, file: &str) {
        std::fs::set_permissions(self.path(file), std::fs::Permissions::from_mode(0o600))
            .expect("chmod 600");
    }
}
