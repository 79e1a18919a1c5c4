//! Golden scenarios: each folder of `tests/golden/` holds `input.txt` (a
//! header saying what it shows, the settings, timestamped inputs; the
//! format is in `src/replay/`) and what the core must do with it:
//! `expect_actions.txt` (every action with its instant; heartbeats only
//! when what they say changes, probes left out) and `expect_status.txt`
//! (the status at each `status` step and at the end), and `expect_log.txt`
//! (every line the core logs at info and above, with its instant: the
//! words of each state change, countdown and refusal, pinned).
//!
//! `cargo test --test golden` runs them all and prints a diff for each
//! that differs; `GOLDEN_UPDATE=1 cargo test --test golden` rewrites the
//! expected files (read the diff in git before committing them).

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use understudy::core::{Action, Core, Input};
use understudy::replay::{self, Step};

/// What a run produced.
struct Outcome {
    actions: String,
    status: String,
    log: String,
}

/// The core's log lines as they are written, for `expect_log.txt`.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    /// The lines written since the last call, each stamped with `at`.
    fn take_at(&self, at: u128, into: &mut String) {
        let bytes = std::mem::take(&mut *self.0.lock().unwrap());
        for line in String::from_utf8_lossy(&bytes).lines() {
            into.push_str(&format!("{at}ms {}\n", line.trim_start()));
        }
    }
}

/// Runs `input` with the core's info-and-above lines captured.
fn run(input: &str) -> Result<Outcome, String> {
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("understudy::core=info")
        .with_writer(move || writer.clone())
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || run_logged(input, &buffer))
}

/// Records the core's actions, and keeps the machine actions that wait
/// for a completion.
struct Recorder {
    origin: Instant,
    actions: String,
    last_heartbeat: Option<String>,
    pending: VecDeque<Action>,
}

impl Recorder {
    fn drain(&mut self, core: &mut Core, now: Instant) {
        let at = now.saturating_duration_since(self.origin).as_millis();
        while let Some(action) = core.poll_action() {
            let line = replay::format_action(&action);
            match &action {
                Action::Probe(_) => continue,
                Action::SendHeartbeat(_) => {
                    if self.last_heartbeat.as_deref() == Some(line.as_str()) {
                        continue;
                    }
                    self.last_heartbeat = Some(line.clone());
                }
                Action::CheckVip { .. }
                | Action::AddVip
                | Action::Announce
                | Action::StartApp
                | Action::AdoptApp
                | Action::RestartApp
                | Action::StopApp
                | Action::RemoveVip
                | Action::Drain
                | Action::Fence { .. }
                | Action::MirrorPass { .. } => self.pending.push_back(action.clone()),
                Action::Notify(_)
                | Action::Interrupt
                | Action::Exit
                | Action::Exec { .. }
                | Action::WatchPeer(_)
                | Action::Lease(_) => {}
            }
            self.actions.push_str(&format!("{at}ms {line}\n"));
        }
    }
}

/// Does `input` answer the first pending action? Then it is no longer
/// pending.
fn settle_pending(pending: &mut VecDeque<Action>, input: &Input) {
    let answers = |a: &Action| {
        matches!(
            (a, input),
            (Action::CheckVip { .. }, Input::VipChecked { .. })
                | (Action::AddVip, Input::VipAdded(_))
                | (Action::Announce, Input::Announced(_))
                | (
                    Action::StartApp | Action::RestartApp | Action::AdoptApp,
                    Input::AppStarted(_)
                )
                | (Action::StopApp, Input::AppStopped(_))
                | (Action::RemoveVip, Input::VipRemoved(_))
                | (Action::Drain, Input::Drained { .. })
                | (Action::MirrorPass { .. }, Input::MirrorPassed(_))
        )
    };
    if let Some(i) = pending.iter().position(answers) {
        pending.remove(i);
    }
}

fn run_logged(input: &str, logged: &LogBuffer) -> Result<Outcome, String> {
    let origin = Instant::now();
    let mut log = String::new();
    let (_, settings, steps) = replay::parse_file(input, origin)?;
    let mut core = Core::new(settings);
    let mut rec = Recorder {
        origin,
        actions: String::new(),
        last_heartbeat: None,
        pending: VecDeque::new(),
    };
    let mut status = String::new();
    let mut now = origin;
    for timed in steps {
        let at = origin + timed.at;
        if at < now {
            return Err(format!("{:?}: steps must not go back in time", timed.at));
        }
        // Timers due before the step fire first, in order.
        while let Some(due) = core.poll_timeout().filter(|d| *d <= at) {
            now = due.max(now);
            core.handle_timeout(now);
            rec.drain(&mut core, now);
            logged.take_at(now.saturating_duration_since(origin).as_millis(), &mut log);
        }
        now = at;
        match timed.step {
            Step::Tick => {}
            Step::Status => {
                let t = timed.at.as_millis();
                status.push_str(&format!(
                    "at {t}ms\n{}\n",
                    replay::format_status(&core.status(now), now)
                ));
            }
            Step::Admin { cmd, force } => {
                let line = replay::format_admin(&cmd, force);
                let reply = match core.handle_admin(now, cmd, force) {
                    Ok(done) => format!("ok: {done}"),
                    Err(why) => format!("refused: {why}"),
                };
                rec.actions
                    .push_str(&format!("{}ms {line} -> {reply}\n", timed.at.as_millis()));
            }
            Step::Input(input) => {
                settle_pending(&mut rec.pending, &input);
                core.handle_input(now, input);
            }
            Step::Complete => {
                for _ in 0..64 {
                    rec.drain(&mut core, now);
                    let Some(action) = rec.pending.pop_front() else {
                        break;
                    };
                    if let Some(input) = replay::success(&action) {
                        core.handle_input(now, input);
                    }
                }
            }
        }
        rec.drain(&mut core, now);
        logged.take_at(timed.at.as_millis(), &mut log);
    }
    status.push_str(&format!(
        "at end\n{}",
        replay::format_status(&core.status(now), now)
    ));
    Ok(Outcome {
        actions: rec.actions,
        status,
        log,
    })
}

/// A readable line diff: `-` expected, `+` got.
fn diff(expected: &str, got: &str) -> String {
    let (e, g): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), got.lines().collect());
    let mut out = String::new();
    let mut first = None;
    for i in 0..e.len().max(g.len()) {
        if e.get(i) != g.get(i) {
            first.get_or_insert(i);
        }
    }
    let Some(start) = first else { return out };
    let from = start.saturating_sub(2);
    for i in from..(start + 12).min(e.len().max(g.len())) {
        match (e.get(i), g.get(i)) {
            (Some(a), Some(b)) if a == b => out.push_str(&format!("  {a}\n")),
            (a, b) => {
                if let Some(a) = a {
                    out.push_str(&format!("- {a}\n"));
                }
                if let Some(b) = b {
                    out.push_str(&format!("+ {b}\n"));
                }
            }
        }
    }
    out
}

fn scenarios() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/golden")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("input.txt").is_file())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn golden_scenarios() {
    let update = std::env::var_os("GOLDEN_UPDATE").is_some();
    let dirs = scenarios();
    assert!(dirs.len() >= 20, "only {} scenarios found", dirs.len());
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let input = std::fs::read_to_string(dir.join("input.txt")).unwrap();
        let got = match run(&input) {
            Ok(got) => got,
            Err(e) => {
                failures.push(format!("{name}: input.txt: {e}"));
                continue;
            }
        };
        for (file, text) in [
            ("expect_actions.txt", &got.actions),
            ("expect_status.txt", &got.status),
            ("expect_log.txt", &got.log),
        ] {
            let path = dir.join(file);
            if update {
                std::fs::write(&path, text).unwrap();
                continue;
            }
            let expected = std::fs::read_to_string(&path).unwrap_or_default();
            if &expected != text {
                failures.push(format!("{name}/{file} differs:\n{}", diff(&expected, text)));
            }
        }
    }
    eprintln!("golden: {} scenarios", dirs.len());
    assert!(
        failures.is_empty(),
        "{}\n(GOLDEN_UPDATE=1 cargo test --test golden rewrites them)",
        failures.join("\n")
    );
}

/// The runner itself: a scenario whose expectation is wrong must fail.
#[test]
fn a_changed_expectation_is_reported() {
    let dir = &scenarios()[0];
    let input = std::fs::read_to_string(dir.join("input.txt")).unwrap();
    let got = run(&input).unwrap();
    assert!(!got.actions.is_empty());
    let tampered = got.actions.replacen("ms ", "ms tampered ", 1);
    assert!(!diff(&tampered, &got.actions).is_empty());
}
