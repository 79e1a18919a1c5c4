//! A whole input file: the header, the `settings` line and the steps,
//! with `every PERIOD until END STEP` expanded.

use std::time::{Duration, Instant};

use super::settings::parse_settings;
use super::words::parse_step;
use super::{duration, Step, Timed};
use crate::core::{Input, Settings};

/// Reads a whole input file: the header, the settings, the steps.
pub fn parse_file(text: &str, origin: Instant) -> Result<(String, Settings, Vec<Timed>), String> {
    let mut lines = text.lines().enumerate();
    let header = match lines.next() {
        Some((_, l)) if l.starts_with("# ") => l[2..].to_owned(),
        _ => return Err("line 1: a header comment (# what the scenario shows)".into()),
    };
    let mut settings = None;
    let mut steps = Vec::new();
    for (n, line) in lines {
        let line = line.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let place = |e: String| format!("line {}: {e}", n + 1);
        if line.starts_with("settings") {
            settings = Some(parse_settings(line).map_err(place)?);
            continue;
        }
        let s = settings
            .as_ref()
            .ok_or_else(|| place("a settings line first".into()))?;
        let rest = line
            .strip_prefix("at ")
            .ok_or_else(|| place("write: at TIME STEP".into()))?;
        let (time, step) = rest
            .split_once(' ')
            .ok_or_else(|| place("write: at TIME STEP".into()))?;
        let at = duration(time).map_err(place)?;
        match step.strip_prefix("every ") {
            Some(repeat) => steps.extend(expand(repeat, at, origin, s).map_err(place)?),
            None => steps.push(Timed {
                at,
                step: parse_step(step, at, origin, s).map_err(place)?,
            }),
        }
    }
    let settings = settings.ok_or("no settings line")?;
    // Repeated steps interleave with the others; a stable sort keeps the
    // file's order among steps at the same instant.
    steps.sort_by_key(|t| t.at);
    Ok((header, settings, steps))
}

/// `every PERIOD until END STEP`: the step at `from`, `from + PERIOD`, …
/// up to END; a repeated heartbeat's sequence number grows by one each time.
fn expand(text: &str, from: Duration, origin: Instant, s: &Settings) -> Result<Vec<Timed>, String> {
    let mut words = text.splitn(4, ' ');
    let (Some(period), Some("until"), Some(end), Some(step)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err("write: at TIME every PERIOD until END STEP".into());
    };
    let (period, end) = (duration(period)?, duration(end)?);
    if period.is_zero() {
        return Err("every 0ms".into());
    }
    let mut out = Vec::new();
    let mut at = from;
    let mut n = 0u64;
    while at <= end && out.len() < 10_000 {
        let step = match parse_step(step, at, origin, s)? {
            Step::Input(Input::Heartbeat(mut hb)) => {
                hb.seq += n;
                Step::Input(Input::Heartbeat(hb))
            }
            other => other,
        };
        out.push(Timed { at, step });
        at += period;
        n += 1;
    }
    Ok(out)
}
