//! `[witness]`'s TLS and credentials: `ca_file` (the witness is then asked
//! over TLS), `cert_file` and `key_file` (a client certificate, etcd
//! only), `user` and `password_file`. Paths are absolute; a key or
//! password file that group or others can read is refused here when it
//! is on this machine, and again by the daemon when it reads it.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::super::check::Checker;
use super::super::locate::Seg;
use super::super::raw::RawWitness;
use super::super::{WitnessAccess, WitnessBackend};

fn key(k: &'static str) -> [Seg<'static>; 2] {
    [Seg::Key("witness"), Seg::Key(k)]
}

pub(in crate::config) fn access(
    ck: &mut Checker,
    w: &RawWitness,
    backend: &WitnessBackend,
) -> WitnessAccess {
    let mut path = |name: &'static str, value: &Option<String>, secret: bool| {
        let p = PathBuf::from(value.as_deref()?.trim());
        if !p.is_absolute() {
            ck.report(
                &key(name),
                format!("{} is not an absolute path", p.display()),
            );
        } else if let Some(meta) = std::fs::metadata(&p).ok().filter(|_| secret) {
            if let Err(why) = crate::io::witness::access::private(&p, meta.permissions().mode()) {
                ck.report(&key(name), why.to_string());
            }
        }
        Some(p)
    };
    let access = WitnessAccess {
        ca_file: path("ca_file", &w.ca_file, false),
        cert_file: path("cert_file", &w.cert_file, false),
        key_file: path("key_file", &w.key_file, true),
        user: w.user.as_deref().map(str::trim).map(str::to_owned),
        password_file: path("password_file", &w.password_file, true),
    };
    if access.cert_file.is_some() != access.key_file.is_some() {
        ck.report(
            &key("key_file"),
            "cert_file and key_file go together: write both or neither",
        );
    }
    let etcd = matches!(backend, WitnessBackend::Etcd(_));
    if access.user.is_some() && access.password_file.is_none() {
        ck.report(
            &key("password_file"),
            "is required with user: the password only ever comes from a file",
        );
    } else if etcd && access.password_file.is_some() && access.user.is_none() {
        ck.report(
            &key("user"),
            "is required with password_file: the etcd user whose password it holds",
        );
    }
    if let WitnessBackend::Postgres(url) = backend {
        if access.cert_file.is_some() {
            ck.report(
                &key("cert_file"),
                "a client certificate is for etcd; give PostgreSQL a user and password_file",
            );
        }
        let parsed = crate::io::witness::access::postgres_config(url, &WitnessAccess::default());
        let in_url = parsed.is_ok_and(|(c, _)| c.get_password().is_some());
        if in_url && access.password_file.is_some() {
            ck.report(
                &key("url"),
                "has a password and password_file gives another: keep it in password_file only",
            );
        }
    }
    access
}
