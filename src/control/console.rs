//! The failover console: one page, its script and its style sheet,
//! embedded in the binary and served at `/` of the HTTP API (no build
//! step, no external assets), and the live stream the page reads.
//!
//! Defences for a bearer-token API read from a browser: no cookies (the
//! page keeps the token in session storage and sends it as a header, so a
//! forged cross-site request carries no credential), a Content-Security-
//! Policy that allows only this origin's script and style and no framing
//! (`frame-ancestors 'none'`, and X-Frame-Options for older browsers), no
//! referrer, no caching, no content sniffing.

use std::convert::Infallible;
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::Response as HttpResponse;

use super::history::{now_ms, SharedHistory};
use super::server::{ask_loop, ControlRequest};
use super::Request;

const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

/// How long one stream lasts before the page reconnects (under the API's
/// connection deadline, so a console never holds a descriptor for long).
const STREAM_FOR: Duration = Duration::from_secs(10);
/// How often a stream sends the status.
const STREAM_EVERY: Duration = Duration::from_millis(500);

pub type Body = BoxBody<Bytes, Infallible>;

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's files by path; `None` for any other path.
pub fn asset(path: &str) -> Option<HttpResponse<Body>> {
    let (body, kind) = match path {
        "/" | "/index.html" => (PAGE, "text/html; charset=utf-8"),
        "/console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/console.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return None,
    };
    let response = HttpResponse::builder()
        .header("content-type", kind)
        .header("content-security-policy", CSP)
        .header("x-frame-options", "DENY")
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from_static(body.as_bytes())).boxed())
        .unwrap_or_default();
    Some(response)
}

/// `GET /stream`: server-sent events for `STREAM_FOR`: `status` (the
/// status report) every `STREAM_EVERY`, `event` for each new event (after
/// the id the page already has), `sample` for each new timeline sample.
pub fn stream(
    to_loop: tokio::sync::mpsc::Sender<ControlRequest>,
    history: SharedHistory,
    who: String,
    after_event: u64,
) -> HttpResponse<Body> {
    struct State {
        to_loop: tokio::sync::mpsc::Sender<ControlRequest>,
        history: SharedHistory,
        who: String,
        after_event: u64,
        after_sample: u64,
        ends: tokio::time::Instant,
        first: bool,
    }
    let state = State {
        to_loop,
        history,
        who,
        after_event,
        after_sample: now_ms(),
        ends: tokio::time::Instant::now() + STREAM_FOR,
        first: true,
    };
    let frames = futures::stream::unfold(state, |mut s| async move {
        if tokio::time::Instant::now() >= s.ends {
            return None;
        }
        if !s.first {
            tokio::time::sleep(STREAM_EVERY).await;
        }
        s.first = false;
        let mut text = String::new();
        let answer = ask_loop(&s.to_loop, Request::Status, s.who.clone()).await;
        if let Some(report) = answer.status {
            push(&mut text, "status", &report);
        }
        let (events, samples) = {
            let h = s.history.lock().unwrap_or_else(|p| p.into_inner());
            (
                h.events_after(s.after_event),
                h.samples_after(s.after_sample),
            )
        };
        for event in events.iter().rev() {
            s.after_event = s.after_event.max(event.id);
            push(&mut text, "event", event);
        }
        for sample in &samples {
            s.after_sample = sample.at_ms;
            push(&mut text, "sample", sample);
        }
        Some((Ok::<_, Infallible>(Frame::data(Bytes::from(text))), s))
    });
    HttpResponse::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .body(StreamBody::new(frames).boxed())
        .unwrap_or_default()
}

/// One server-sent event.
fn push(text: &mut String, kind: &str, value: &impl serde::Serialize) {
    if let Ok(json) = serde_json::to_string(value) {
        text.push_str(&format!("event: {kind}\ndata: {json}\n\n"));
    }
}
