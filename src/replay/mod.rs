//! The replay format: the core's inputs, settings, actions and status as
//! lines of text. The golden scenarios (`tests/golden/<scenario>/`) are
//! written in it, and the daemon logs every input in it (target
//! `understudy::replay`, at debug), so that a field incident becomes a
//! scenario: `tests/golden/log2input.py DAEMON.LOG > input.txt`.
//!
//! An input file is a header comment (what the scenario shows), one
//! `settings` line, then one step per line, at an instant since the start:
//!
//! ```text
//! # The secondary takes over from a primary whose host died.
//! settings role=secondary grace=1s
//! at 0ms started vip_present=false
//! at 100ms probe peer refused connection refused
//! at 1100ms tick
//! at 1100ms vip_checked holder=none err refused
//! at 1101ms complete
//! at 2s admin promote force
//! at 3s status
//! ```
//!
//! Before each step, every timer due by its instant fires, in order, as in
//! the daemon. `tick` only advances the clock; `complete` answers every
//! machine action still pending (and those that follow) with success;
//! `status` records a status snapshot. `#` starts a comment.
//!
//! The format in parts: [`settings`] (the `settings` line and the
//! scenarios' defaults), [`words`] (one input or admin command as a line,
//! both ways), [`file`] (a whole input file, with `every` repeats) and
//! [`output`] (actions, status snapshots and the always-succeeding world
//! the scenarios run in).

mod file;
mod output;
mod settings;
mod words;

use std::time::Duration;

use crate::core::{AdminCommand, Input};

pub use file::parse_file;
pub use output::{format_action, format_status, success};
pub use settings::{default_settings, format_settings, parse_settings, scenario_peer};
pub use words::{format_admin, format_input, parse_step};

/// One line of an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Input(Input),
    Admin { cmd: AdminCommand, force: bool },
    Tick,
    Complete,
    Status,
}

/// A step and the instant (since the start) it happens at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timed {
    pub at: Duration,
    pub step: Step,
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))
}

fn flag(text: &str) -> Result<bool, String> {
    match text {
        "true" | "on" | "yes" => Ok(true),
        "false" | "off" | "no" => Ok(false),
        _ => Err(format!("{text:?} is not true or false")),
    }
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::config::Failback;
    use crate::core::Target;
    use crate::proto::heartbeat::{Flags, Heartbeat, WireState};

    #[test]
    fn inputs_round_trip_through_their_lines() {
        let origin = Instant::now();
        let s = default_settings();
        let at = Duration::from_millis(250);
        for input in [
            Input::Started { vip_present: true },
            Input::VipChecked {
                holder: Some("02:00:00:00:00:01".into()),
                via_vip: Err("no answer from the VIP".into()),
            },
            Input::VipChecked {
                holder: None,
                via_vip: Ok(()),
            },
            Input::AppStarted(Err("not healthy after 5s".into())),
            Input::Probed {
                target: Target::Data,
                started: origin + Duration::from_millis(200),
                outcome: Err("connect to db:5432: timed out".into()),
                refused: false,
            },
            Input::Probed {
                target: Target::Peer,
                started: origin + Duration::from_millis(200),
                outcome: Err("cannot connect: Connection refused".into()),
                refused: true,
            },
            Input::HeartbeatRefused { node: 0 },
            Input::ProbeNotRun {
                target: Target::Peer,
                started: origin + at,
                why: "Too many open files (os error 24)".into(),
            },
            Input::Heartbeat(Heartbeat {
                cluster_id: 7,
                node_id: 0,
                epoch: 5,
                seq: 9,
                term: 3,
                state: WireState::Active,
                flags: Flags {
                    app_ok: true,
                    release_request: true,
                    ..Flags::default()
                },
                config_checksum: 99,
            }),
            Input::Drained { remaining: 2 },
            Input::MaintenanceSignal(true),
            Input::Shutdown,
        ] {
            let line = format_input(&input, origin);
            let back = parse_step(&line, at, origin, &s).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(back, Step::Input(input), "{line}");
        }
    }

    #[test]
    fn settings_and_admin_round_trip() {
        let mut s = default_settings();
        s.failback = Failback::Automatic {
            hold: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(1),
        };
        s.flap_limit = 4;
        let back = parse_settings(&format_settings(&s)).unwrap();
        assert_eq!(format_settings(&back), format_settings(&s));
        for (cmd, force) in [
            (AdminCommand::Promote, true),
            (AdminCommand::Forget { node: "m1".into() }, false),
        ] {
            let line = format_admin(&cmd, force);
            let step = parse_step(&line, Duration::ZERO, Instant::now(), &s).unwrap();
            assert_eq!(step, Step::Admin { cmd, force });
        }
    }

    #[test]
    fn bad_lines_say_where() {
        let e =
            parse_file("# h\nsettings grace=1s\nat 1s frobnicate\n", Instant::now()).unwrap_err();
        assert!(e.starts_with("line 3:"), "{e}");
        assert!(parse_file("no header\n", Instant::now()).is_err());
    }
}
