//! Mail over SMTP (lettre, rustls): STARTTLS, implicit TLS, or plain (to
//! a loopback server unless allowed). Subject and body are written for a
//! person woken up by them.

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{with_retries, Envelope};
use crate::config::{Email, SmtpSecurity};

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    retries: u32,
    /// The whole exchange's limit: lettre's own timeout does not cover a
    /// server that accepts the connection and never greets.
    timeout: std::time::Duration,
}

impl Mailer {
    pub fn new(c: &Email) -> Result<Mailer, String> {
        let builder = match c.security {
            SmtpSecurity::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.server)
            }
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.server),
            SmtpSecurity::Plain => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &c.server,
            )),
        }
        .map_err(|e| format!("mail server {}: {e}", c.server))?;
        let mut builder = builder.port(c.port).timeout(Some(c.timeout));
        if let (Some(user), Some(file)) = (&c.user, &c.password_file) {
            let password = std::fs::read_to_string(file)
                .map_err(|e| format!("mail password file {}: {e}", file.display()))?;
            builder =
                builder.credentials(Credentials::new(user.clone(), password.trim().to_owned()));
        }
        let parse = |a: &str| {
            a.parse::<Mailbox>()
                .map_err(|e| format!("mail address {a:?}: {e}"))
        };
        Ok(Mailer {
            transport: builder.build(),
            from: parse(&c.from)?,
            to: c.to.iter().map(|a| parse(a)).collect::<Result<_, _>>()?,
            retries: c.retries,
            timeout: c.timeout,
        })
    }

    pub async fn send(&self, e: &Envelope) -> Result<(), String> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(subject(e))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message.body(body(e)).map_err(|e| e.to_string())?;
        with_retries(self.retries, || async {
            match tokio::time::timeout(self.timeout, self.transport.send(message.clone())).await {
                Ok(sent) => sent.map(|_| ()).map_err(|e| e.to_string()),
                Err(_) => Err(format!(
                    "no answer from the mail server within {:?}",
                    self.timeout
                )),
            }
        })
        .await
    }
}

pub fn subject(e: &Envelope) -> String {
    let summary = match e.event {
        "takeover" => format!("{} took over {}", e.node, e.vip),
        "peer_down" => format!("{} sees {} down", e.node, e.peer),
        "release" => format!("{} released {}", e.node, e.vip),
        "handover" => format!("{} handed {} over", e.node, e.vip),
        "failback" => format!("{} handed {} back", e.node, e.vip),
        "split_brain" => format!("both nodes held {}", e.vip),
        _ => format!("{} on {}", e.event.replace('_', " "), e.node),
    };
    format!(
        "[understudy {}] {} {}: {}",
        e.cluster,
        e.severity.to_uppercase(),
        e.event,
        summary
    )
}

pub fn body(e: &Envelope) -> String {
    let duration = e
        .duration_ms
        .map_or(String::new(), |ms| format!(" ({ms:.0} ms)"));
    let alias = e
        .alias
        .as_deref()
        .map_or(String::new(), |a| format!(" ({a})"));
    format!(
        "What happened: {event} on {node}, common IP {vip}{alias}.\n\
         Why: {cause}\n\
         What understudy did: {action}{duration}.\n\
         When: {time}\n\
         Cluster: {cluster}   Node: {node}   Peer: {peer}   Term: {term}\n\
         \n\
         Status at that moment (as {node} saw it):\n\
         \n\
         {table}",
        event = e.event,
        node = e.node,
        vip = e.vip,
        cause = if e.cause.is_empty() { "-" } else { &e.cause },
        action = e.action,
        time = e.time,
        cluster = e.cluster,
        peer = e.peer,
        term = e.term,
        table = e.status_table,
    )
}
