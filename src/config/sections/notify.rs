//! `[notify]`: which events to tell, and the mail, webhook and hook
//! channels.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::super::check::{parse_http_url, Checker};
use super::super::locate::Seg;
use super::super::raw::{RawEmail, RawHook, RawNotify, RawWebhook};
use super::super::{Email, Hook, Notify, SmtpSecurity, Url, Webhook};
use crate::core::EventKind;

fn key(section: &'static str, k: &'static str) -> Vec<Seg<'static>> {
    match section {
        "" => vec![Seg::Key("notify"), Seg::Key(k)],
        s => vec![Seg::Key("notify"), Seg::Key(s), Seg::Key(k)],
    }
}

pub(in crate::config) fn notify(ck: &mut Checker, n: RawNotify) -> Notify {
    Notify {
        events: events(ck, n.events.as_deref()),
        dedup_window: ck.duration(
            &n.dedup_window,
            &key("", "dedup_window"),
            Duration::from_secs(600),
        ),
        queue: ck.count(n.queue, &key("", "queue"), 64, (1, 10_000)) as usize,
        email: n.email.and_then(|e| email(ck, e)),
        webhook: n.webhook.and_then(|w| webhook(ck, w)),
        hook: n.hook.and_then(|h| hook(ck, h)),
    }
}

/// The events named, or those on by default.
fn events(ck: &mut Checker, names: Option<&[String]>) -> Vec<EventKind> {
    let Some(names) = names else {
        return EventKind::ALL
            .into_iter()
            .filter(|e| e.on_by_default())
            .collect();
    };
    names
        .iter()
        .filter_map(|name| {
            let kind = EventKind::from_name(name);
            if kind.is_none() {
                let known: Vec<&str> = EventKind::ALL.iter().map(|e| e.name()).collect();
                ck.report(
                    &key("", "events"),
                    format!("{name:?} is not an event; known: {}", known.join(", ")),
                );
            }
            kind
        })
        .collect()
}

fn email(ck: &mut Checker, e: RawEmail) -> Option<Email> {
    let ek = |k| key("email", k);
    let server = ck.required(&e.server, &ek("server"))?;
    let security = smtp_security(ck, &e, &server);
    let default_port = match security {
        SmtpSecurity::StartTls => 587,
        SmtpSecurity::Tls => 465,
        SmtpSecurity::Plain => 25,
    };
    let port = ck.count(e.port, &ek("port"), default_port, (1, 65535)) as u16;
    let from = ck.required(&e.from, &ek("from"))?;
    let to = ck.required(&e.to, &ek("to"))?;
    for addr in std::iter::once(&from).chain(&to) {
        if addr.parse::<lettre::message::Mailbox>().is_err() {
            let which = if *addr == from { "from" } else { "to" };
            ck.report(&ek(which), format!("{addr:?} is not a mail address"));
        }
    }
    if to.is_empty() {
        ck.report(&ek("to"), "needs at least one recipient");
    }
    if e.user.is_some() != e.password_file.is_some() {
        ck.report(&ek("password_file"), "user and password_file go together");
    }
    Some(Email {
        server,
        port,
        security,
        user: e.user,
        password_file: e.password_file.map(PathBuf::from),
        from,
        to,
        timeout: ck.duration(&e.timeout, &ek("timeout"), Duration::from_secs(10)),
        retries: ck.count(e.retries, &ek("retries"), 2, (0, 10)),
    })
}

/// `security`; plain SMTP only to a loopback server unless allowed.
fn smtp_security(ck: &mut Checker, e: &RawEmail, server: &str) -> SmtpSecurity {
    let ek = |k| key("email", k);
    let security = match e.security.as_deref().unwrap_or("starttls") {
        "starttls" => SmtpSecurity::StartTls,
        "tls" => SmtpSecurity::Tls,
        "plain" => SmtpSecurity::Plain,
        other => {
            ck.report(
                &ek("security"),
                format!("{other:?}: use \"starttls\", \"tls\" or \"plain\""),
            );
            SmtpSecurity::StartTls
        }
    };
    let loopback = server == "localhost" || server.parse::<IpAddr>().is_ok_and(|a| a.is_loopback());
    if security == SmtpSecurity::Plain && !loopback && e.allow_plain != Some(true) {
        ck.report(
            &ek("security"),
            "plain SMTP sends mail (and any password) in clear; it is allowed only to a loopback server unless allow_plain = true",
        );
    }
    security
}

fn webhook(ck: &mut Checker, w: RawWebhook) -> Option<Webhook> {
    let wk = |k| key("webhook", k);
    let urls: Vec<Url> = ck
        .required(&w.urls, &wk("urls"))?
        .iter()
        .filter_map(|u| match parse_http_url(u) {
            Ok(url) => Some(url),
            Err(msg) => {
                ck.report(&wk("urls"), msg);
                None
            }
        })
        .collect();
    Some(Webhook {
        urls,
        timeout: ck.duration(&w.timeout, &wk("timeout"), Duration::from_secs(5)),
        retries: ck.count(w.retries, &wk("retries"), 3, (0, 10)),
        secret_file: w.secret_file.map(PathBuf::from),
    })
}

fn hook(ck: &mut Checker, h: RawHook) -> Option<Hook> {
    let hk = |k| key("hook", k);
    Some(Hook {
        commands: ck.required(&h.commands, &hk("commands"))?,
        timeout: ck.duration(&h.timeout, &hk("timeout"), Duration::from_secs(10)),
    })
}
