//! The tools every section's check uses: [`Checker`] collects problems,
//! each with its line and key, while values are read (so that every
//! problem in a file is reported at once); and the parsers of the value
//! forms (durations, addresses, netmasks, URLs, status ranges, data
//! services). Never panics on any input.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::locate::{Locator, Seg};
use super::raw::RawNetmask;
use super::{DataService, Problem, Url};

/// The longest duration any key accepts: seven days. Longer values mean a
/// typo, and every instant the core computes (`now + grace × 2`) must stay
/// far from overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Collects problems while reading values, each tagged with its place.
pub(super) struct Checker {
    pub(super) locator: Locator,
    pub(super) problems: Vec<Problem>,
}

impl Checker {
    pub(super) fn report(&mut self, path: &[Seg], message: impl Into<String>) {
        let line = self.locator.line(path);
        self.problems
            .push(Problem::new(line, key_name(path), message));
    }

    pub(super) fn required<T: Clone>(&mut self, value: &Option<T>, path: &[Seg]) -> Option<T> {
        if value.is_none() {
            self.report(path, "is required");
        }
        value.clone()
    }

    pub(super) fn duration(
        &mut self,
        value: &Option<String>,
        path: &[Seg],
        default: Duration,
    ) -> Duration {
        let Some(text) = value else { return default };
        match humantime::parse_duration(text.trim()) {
            Ok(d) if d > MAX_DURATION => {
                self.report(
                    path,
                    format!("{text:?} is too long; the longest accepted is 7 days (\"7d\")"),
                );
                default
            }
            Ok(d) => d,
            // humantime's own message lists months and years, which are
            // never accepted here: name only what is.
            Err(_) => {
                self.report(
                    path,
                    format!(
                        "{text:?} is not a duration; write a number and a unit (ms, s, m, h or d), e.g. \"200ms\", \"10s\", \"3m\", at most 7 days"
                    ),
                );
                default
            }
        }
    }

    pub(super) fn count(
        &mut self,
        value: Option<i64>,
        path: &[Seg],
        default: u32,
        range: (u32, u32),
    ) -> u32 {
        let Some(n) = value else { return default };
        if n < i64::from(range.0) || n > i64::from(range.1) {
            self.report(
                path,
                format!("{n} is out of range (allowed {}..={})", range.0, range.1),
            );
            return default;
        }
        n as u32
    }
}

/// Readable key for a path: `cluster.vip`, `node #2.url`.
pub(super) fn key_name(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!(" #{}", i + 1)),
        }
    }
    out
}

/// Is `ip` the network or broadcast address of its /`prefix_len` subnet?
/// (/31 and /32 have neither: RFC 3021.)
pub(super) fn network_or_broadcast(ip: Ipv4Addr, prefix_len: u8) -> Option<&'static str> {
    if prefix_len >= 31 {
        return None;
    }
    let host_bits = u32::MAX >> prefix_len;
    match u32::from(ip) & host_bits {
        0 => Some("network"),
        h if h == host_bits => Some("broadcast"),
        _ => None,
    }
}

/// Accepts `24`, `"24"`, `"/24"` and `"255.255.255.0"`.
pub(super) fn parse_netmask(raw: &RawNetmask) -> Result<u8, String> {
    let prefix = |n: i64| {
        if (1..=32).contains(&n) {
            Ok(n as u8)
        } else {
            Err(format!("prefix length {n} is out of range (1..=32)"))
        }
    };
    match raw {
        RawNetmask::Prefix(n) => prefix(*n),
        RawNetmask::Text(t) => {
            let t = t.trim().trim_start_matches('/');
            if let Ok(n) = t.parse::<i64>() {
                return prefix(n);
            }
            let mask: Ipv4Addr = t.parse().map_err(|_| {
                format!("{t:?} is neither a netmask (255.255.255.0) nor a prefix length (24)")
            })?;
            let bits = u32::from(mask);
            let len = bits.leading_ones();
            if bits.checked_shl(len).unwrap_or(0) != 0 || len == 0 {
                return Err(format!("{t} is not a contiguous netmask"));
            }
            Ok(len as u8)
        }
    }
}

pub(super) fn parse_http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "{text:?} must be an http:// or https:// URL with a host"
        ));
    }
    Ok(url)
}

/// `200`, `"200"` or `"200-299"`.
pub(super) fn parse_status_range(raw: &super::raw::RawStatus) -> Result<(u16, u16), String> {
    let code = |n: i64| {
        if (100..=599).contains(&n) {
            Ok(n as u16)
        } else {
            Err(format!("{n} is not an HTTP status (100..=599)"))
        }
    };
    match raw {
        super::raw::RawStatus::Code(n) => code(*n).map(|c| (c, c)),
        super::raw::RawStatus::Text(t) => {
            let parse = |s: &str| {
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("{t:?}: write 200 or \"200-299\""))
            };
            match t.split_once('-') {
                Some((lo, hi)) => {
                    let (lo, hi) = (code(parse(lo)?)?, code(parse(hi)?)?);
                    if lo > hi {
                        return Err(format!("{t:?}: the range is empty"));
                    }
                    Ok((lo, hi))
                }
                None => code(parse(t)?).map(|c| (c, c)),
            }
        }
    }
}

pub(super) fn parse_data_service(text: &str) -> Result<DataService, String> {
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        let url =
            Url::parse(text).map_err(|e| format!("{text:?} is not a PostgreSQL URL ({e})"))?;
        if url.host().is_none() {
            return Err(format!(
                "{text:?}: write postgres://USER@HOST[:PORT]/DATABASE"
            ));
        }
        return Ok(DataService::Postgres {
            conn: text.to_owned(),
            query: String::new(),
        });
    }
    if let Some(cmd) = text.strip_prefix("exec:") {
        if cmd.trim().is_empty() {
            return Err(format!("{text:?}: write exec:COMMAND"));
        }
        return Ok(DataService::Command(cmd.trim().to_owned()));
    }
    if let Some(rest) = text.strip_prefix("tcp://") {
        let rest = rest.trim_end_matches('/');
        let ok = rest.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !ok {
            return Err(format!("{text:?}: write tcp://HOST:PORT"));
        }
        return Ok(DataService::Tcp(rest.to_owned()));
    }
    if text.starts_with("http://") || text.starts_with("https://") {
        return parse_http_url(text).map(DataService::Http);
    }
    Err(format!(
        "{text:?}: the data service must be tcp://HOST:PORT or an http(s):// URL"
    ))
}
