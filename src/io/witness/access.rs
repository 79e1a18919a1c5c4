//! How a node reaches a secured witness: TLS with the CA that signed the
//! witness's certificate (and a client certificate for etcd's
//! `--client-cert-auth`), and a user whose password is read from a file.
//! Secrets come from files that nobody but their owner may read; a file
//! that group or others can read is refused, as ssh refuses such a key.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::str::FromStr;

use super::WitnessError;
use crate::config::WitnessAccess;

/// The contents of a secret file, trimmed, if only its owner may read it.
pub fn read_secret(path: &Path) -> Result<String, WitnessError> {
    let unreadable = |source| WitnessError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    private(path, meta.permissions().mode())?;
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// `Err` if `mode` lets the group or others read or write the file.
pub fn private(path: &Path, mode: u32) -> Result<(), WitnessError> {
    if mode & 0o077 != 0 {
        return Err(WitnessError::Exposed {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

/// A PostgreSQL connection string with `sslmode=verify-full` (or
/// `verify-ca`), which tokio-postgres does not parse: the mode is taken
/// out and the connection made with TLS that verifies the chain against
/// the CA and the server's name (rustls always does both).
pub fn postgres_config(
    url: &str,
    access: &WitnessAccess,
) -> Result<(tokio_postgres::Config, bool), WitnessError> {
    let mut verify = false;
    let cleaned = strip_verify(url, &mut verify);
    let mut config = tokio_postgres::Config::from_str(&cleaned).map_err(WitnessError::Url)?;
    let required = config.get_ssl_mode() == tokio_postgres::config::SslMode::Require;
    let tls = verify || required || access.ca_file.is_some();
    if tls {
        config.ssl_mode(tokio_postgres::config::SslMode::Require);
    }
    if let Some(user) = &access.user {
        config.user(user);
    }
    if let Some(path) = &access.password_file {
        config.password(read_secret(path)?);
    }
    Ok((config, tls))
}

/// `url` without a `sslmode=verify-full` or `sslmode=verify-ca` query
/// parameter; `verify` says whether it had one.
fn strip_verify(url: &str, verify: &mut bool) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| {
            let drop = matches!(*p, "sslmode=verify-full" | "sslmode=verify-ca");
            *verify |= drop;
            !drop
        })
        .collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// The HTTP client for etcd: its CA (https), and a client certificate.
pub fn etcd_client(
    timeout: std::time::Duration,
    access: &WitnessAccess,
) -> Result<reqwest::Client, WitnessError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .no_proxy();
    if let Some(path) = &access.ca_file {
        let pem = std::fs::read(path).map_err(|source| WitnessError::Read {
            path: path.clone(),
            source,
        })?;
        for cert in
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| WitnessError::Pem {
                path: path.clone(),
                source,
            })?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let (Some(cert), Some(key)) = (&access.cert_file, &access.key_file) {
        let mut pem = std::fs::read(cert).map_err(|source| WitnessError::Read {
            path: cert.clone(),
            source,
        })?;
        pem.push(b'\n');
        pem.extend(read_secret(key)?.into_bytes());
        pem.push(b'\n');
        let identity =
            reqwest::Identity::from_pem(&pem).map_err(|source| WitnessError::Identity {
                cert: cert.clone(),
                key: key.clone(),
                source,
            })?;
        builder = builder.identity(identity);
    }
    builder.build().map_err(WitnessError::Client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_others_can_read_is_refused_with_the_fix() {
        let path = Path::new("/etc/understudy/witness-password");
        assert!(private(path, 0o100600).is_ok());
        assert!(private(path, 0o100400).is_ok());
        let err = private(path, 0o100644)
            .expect_err("group and others read it")
            .to_string();
        assert!(err.contains("mode 644"), "{err}");
        assert!(
            err.contains("chmod 600 /etc/understudy/witness-password"),
            "{err}"
        );
        assert!(private(path, 0o100660).is_err());
    }

    #[test]
    fn verify_full_is_taken_out_and_means_tls() {
        let none = WitnessAccess::default();
        let (config, tls) = postgres_config(
            "postgres://u@db.example.com/h?sslmode=verify-full&application_name=x",
            &none,
        )
        .expect("parsed");
        assert!(tls);
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert_eq!(config.get_application_name(), Some("x"));
        let (_, tls) = postgres_config("postgres://u@192.0.2.30/h", &none).expect("parsed");
        assert!(!tls);
        let mut verify = false;
        assert_eq!(
            strip_verify("postgres://h/d?sslmode=verify-ca", &mut verify),
            "postgres://h/d"
        );
        assert!(verify);
    }
}
