//! Time in the words administrators know from the consoles understudy
//! replaces: hours, minutes and seconds ("takeover in 2 minutes 40
//! seconds"), the largest unit first and at most two of them.
//!
//! A time *left* is rounded up at the smallest unit shown, so that the
//! countdown never promises less time than there is ([`humanize`]); an
//! *age* is rounded down, so that it never claims more ([`ago`]).

use std::time::Duration;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// "takeover in 2 minutes 40 seconds".
pub fn takeover_in(left: Duration) -> String {
    format!("takeover in {}", humanize(left))
}

/// What a node that handed the VIP over on purpose will do if nobody
/// claims it: "claimed back in 2 seconds if nobody holds it".
pub fn claim_back_in(left: Duration) -> String {
    format!("claimed back in {} if nobody holds it", humanize(left))
}

/// A time left, rounded up: "40 seconds", "2 minutes 40 seconds",
/// "1 hour 5 minutes"; under one second, "less than a second".
pub fn humanize(left: Duration) -> String {
    if left < Duration::from_secs(1) {
        return "less than a second".to_owned();
    }
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    // Round up to the smallest unit that will be shown.
    let unit = match secs {
        s if s <= HOUR => 1,
        s if s <= DAY => MINUTE,
        _ => HOUR,
    };
    two_units(secs.div_ceil(unit) * unit)
}

/// An age, rounded down: "<1 second", "3 seconds", "2 minutes 5 seconds".
pub fn ago(age: Duration) -> String {
    if age < Duration::from_secs(1) {
        return "<1 second".to_owned();
    }
    let secs = age.as_secs();
    let unit = match secs {
        s if s < HOUR => 1,
        s if s < DAY => MINUTE,
        _ => HOUR,
    };
    two_units(secs / unit * unit)
}

/// Whole seconds as the two largest units that are not zero below the
/// first ("1 hour", "1 hour 5 minutes", "3 minutes 20 seconds").
fn two_units(secs: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    let (big, big_name, small, small_name) = if secs >= DAY {
        (secs / DAY, "day", secs % DAY / HOUR, "hour")
    } else if secs >= HOUR {
        (secs / HOUR, "hour", secs % HOUR / MINUTE, "minute")
    } else if secs >= MINUTE {
        (secs / MINUTE, "minute", secs % MINUTE, "second")
    } else {
        return plural(secs, "second");
    };
    if small == 0 {
        plural(big, big_name)
    } else {
        format!("{} {}", plural(big, big_name), plural(small, small_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn time_left_is_never_shown_shorter_than_it_is() {
        assert_eq!(humanize(ms(400)), "less than a second");
        assert_eq!(humanize(s(1)), "1 second");
        assert_eq!(humanize(ms(1500)), "2 seconds");
        assert_eq!(humanize(s(40)), "40 seconds");
        assert_eq!(humanize(ms(59_001)), "1 minute");
        assert_eq!(humanize(s(60)), "1 minute");
        assert_eq!(humanize(ms(60_001)), "1 minute 1 second");
        assert_eq!(humanize(s(139)), "2 minutes 19 seconds");
        assert_eq!(humanize(ms(179_200)), "3 minutes");
        assert_eq!(humanize(s(180)), "3 minutes");
        assert_eq!(humanize(s(3599)), "59 minutes 59 seconds");
        assert_eq!(humanize(ms(3_599_500)), "1 hour");
        assert_eq!(humanize(s(3601)), "1 hour 1 minute");
        assert_eq!(humanize(s(5430)), "1 hour 31 minutes");
        assert_eq!(humanize(s(DAY)), "1 day");
        assert_eq!(humanize(s(DAY - 1)), "1 day");
        assert_eq!(humanize(s(DAY + 1)), "1 day 1 hour");
        assert_eq!(humanize(s(7 * DAY)), "7 days");
        assert_eq!(takeover_in(s(120)), "takeover in 2 minutes");
    }

    #[test]
    fn every_left_rounds_up() {
        // Whatever is shown is at least what is left.
        for tenths in (10..100_000).step_by(7) {
            let left = ms(tenths * 100);
            let shown = humanize(left);
            let secs = parse(&shown);
            assert!(
                secs as f64 >= left.as_secs_f64(),
                "{left:?} shown as {shown}"
            );
        }
    }

    /// "2 minutes 19 seconds" → 139.
    fn parse(text: &str) -> u64 {
        let words: Vec<&str> = text.split(' ').collect();
        words
            .chunks(2)
            .map(|pair| {
                let n: u64 = pair[0].parse().unwrap();
                n * match pair[1].trim_end_matches('s') {
                    "second" => 1,
                    "minute" => MINUTE,
                    "hour" => HOUR,
                    "day" => DAY,
                    other => panic!("unit {other}"),
                }
            })
            .sum()
    }

    #[test]
    fn ages_round_down() {
        assert_eq!(ago(ms(999)), "<1 second");
        assert_eq!(ago(ms(1999)), "1 second");
        assert_eq!(ago(ms(125_900)), "2 minutes 5 seconds");
        assert_eq!(ago(s(3 * HOUR + 59)), "3 hours");
        assert_eq!(ago(s(2 * DAY + 3 * HOUR + 5)), "2 days 3 hours");
    }
}
