//! Time left before a takeover, in the words administrators know from the
//! consoles understudy replaces: hours when less than a day is left, minutes
//! when less than an hour, seconds when less than a minute.

use std::time::Duration;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// "takeover in 2 minutes", "takeover in 40 seconds". Whole units are
/// rounded down, except seconds, rounded up so that the countdown never
/// says 0 while time is left; under one second it says so.
pub fn takeover_in(left: Duration) -> String {
    format!("takeover in {}", humanize(left))
}

pub fn humanize(left: Duration) -> String {
    let secs = left.as_secs();
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if left < Duration::from_secs(1) {
        "less than a second".to_owned()
    } else if secs < MINUTE {
        let up = if left.subsec_nanos() > 0 {
            secs + 1
        } else {
            secs
        };
        plural(up, "second")
    } else if secs < HOUR {
        plural(secs / MINUTE, "minute")
    } else if secs < DAY {
        plural(secs / HOUR, "hour")
    } else {
        plural(secs / DAY, "day")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn each_boundary() {
        assert_eq!(humanize(Duration::from_millis(400)), "less than a second");
        assert_eq!(humanize(s(1)), "1 second");
        assert_eq!(humanize(Duration::from_millis(1500)), "2 seconds");
        assert_eq!(humanize(s(40)), "40 seconds");
        assert_eq!(humanize(s(59)), "59 seconds");
        assert_eq!(humanize(Duration::from_millis(59_999)), "60 seconds");
        assert_eq!(humanize(s(60)), "1 minute");
        assert_eq!(humanize(s(179)), "2 minutes");
        assert_eq!(humanize(s(3599)), "59 minutes");
        assert_eq!(humanize(s(3600)), "1 hour");
        assert_eq!(humanize(s(DAY - 1)), "23 hours");
        assert_eq!(humanize(s(DAY)), "1 day");
        assert_eq!(takeover_in(s(120)), "takeover in 2 minutes");
    }
}
