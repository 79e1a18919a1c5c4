//! The application supervisor: runs the configured start and stop commands
//! through `sh -c` in their own process group, each with a time limit, and
//! confirms a started application by probing its URL.
//!
//! Command output is read line by line into the daemon's log (target
//! `understudy::app`) for as long as anything writes it: an application
//! started in the background keeps the pipe, and the reader stays until it
//! closes, so the application never meets a closed pipe (SIGPIPE). The
//! last lines go into the error when a command fails.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use tokio::process::Command;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::probe::{Check, Prober};

/// A command's or a readiness wait's result: `Err` carries the reason.
pub type Outcome = Result<(), String>;

/// How often a starting application's URL is polled.
const READY_POLL: Duration = Duration::from_millis(50);

pub struct Supervisor {
    pub start: Option<String>,
    pub stop: Option<String>,
    pub timeout: Duration,
    pub ready_timeout: Duration,
    /// The local application URL that must answer after a start.
    pub health: Check,
    pub prober: Prober,
    /// Exposed to the commands as UNDERSTUDY_* variables.
    pub env: Vec<(String, String)>,
    /// The node's term when the command was asked for (UNDERSTUDY_TERM).
    pub term: u64,
    /// Process group of the last start command, killed if a stop times out.
    started_group: Option<i32>,
}

impl Supervisor {
    /// A reload's commands, limits and URL; the process group of the
    /// running application's start command is kept, so that a stop that
    /// times out still kills it.
    pub fn reconfigure(&mut self, fresh: Supervisor) {
        *self = Supervisor {
            started_group: self.started_group,
            ..fresh
        };
    }

    pub fn new(
        start: Option<String>,
        stop: Option<String>,
        timeout: Duration,
        ready_timeout: Duration,
        health: Check,
        prober: Prober,
        env: Vec<(String, String)>,
    ) -> Self {
        Supervisor {
            start,
            stop,
            timeout,
            ready_timeout,
            health,
            prober,
            env,
            term: 0,
            started_group: None,
        }
    }

    /// Runs the start command, then waits until the application answers.
    pub async fn start(&mut self) -> Outcome {
        if let Some(cmd) = self.start.clone() {
            let group = self.run("start", &cmd, "active").await?;
            self.started_group = Some(group);
        }
        self.wait_ready().await
    }

    /// After `understudy restart`: an application that answers its URL is
    /// adopted as it runs (never started twice); one that does not is
    /// started as after a claim.
    pub async fn adopt(&mut self) -> Outcome {
        match self.prober.check(&self.health).await {
            Ok(()) => Ok(()),
            Err(why) => {
                warn!(%why, "the application does not answer after the restart; starting it");
                self.start().await
            }
        }
    }

    /// Runs the stop command; if it hangs past its limit, kills its process
    /// group and the start command's.
    pub async fn stop(&mut self) -> Outcome {
        let Some(cmd) = self.stop.clone() else {
            return Ok(());
        };
        let result = self.run("stop", &cmd, "passive").await;
        if result.is_err() {
            if let Some(group) = self.started_group.take() {
                kill_group(group);
            }
        }
        result.map(|_| ())
    }

    async fn wait_ready(&self) -> Outcome {
        let deadline: Instant =
            crate::clock::later(Instant::now().into_std(), self.ready_timeout).into();
        loop {
            let outcome = self.prober.check(&self.health).await;
            match outcome {
                Ok(()) => return Ok(()),
                Err(why) if Instant::now() + READY_POLL >= deadline => {
                    return Err(format!(
                        "not healthy after {}: {why}",
                        humantime::format_duration(self.ready_timeout)
                    ));
                }
                Err(_) => tokio::time::sleep(READY_POLL).await,
            }
        }
    }

    /// Runs one command; returns its process group id. `state` is what the
    /// node becomes (UNDERSTUDY_STATE: active or passive).
    async fn run(&self, what: &str, cmd: &str, state: &str) -> Result<i32, String> {
        let began = Instant::now();
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("UNDERSTUDY_STATE", state)
            .env("UNDERSTUDY_TERM", self.term.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("{what} command could not be run: {e}"))?;
        let group = child.id().map_or(0, |id| id as i32);
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(read_lines(out, what.to_owned(), tail.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(read_lines(err, what.to_owned(), tail.clone()));
        }
        let last_lines = || async {
            // Let the readers catch up with what the command wrote last.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let lines = tail
                .lock()
                .map(|t| t.iter().cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            if lines.is_empty() {
                String::new()
            } else {
                format!("; last output: {}", lines.join(" | "))
            }
        };
        match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(Ok(status)) if status.success() => {
                // The effect's own line (application start/stop) says it at info.
                debug!(
                    what,
                    ms = began.elapsed().as_millis() as u64,
                    "command done"
                );
                Ok(group)
            }
            Ok(Ok(status)) => Err(format!(
                "{what} command failed: {status}{}",
                last_lines().await
            )),
            Ok(Err(e)) => Err(format!("{what} command: {e}")),
            Err(_) => {
                warn!(what, timeout = %humantime::format_duration(self.timeout), "command timed out; killing its process group");
                kill_group(group);
                let _ = child.wait().await;
                Err(format!(
                    "{what} command timed out after {:?}{}",
                    self.timeout,
                    last_lines().await
                ))
            }
        }
    }
}

/// How many output lines are kept for error messages.
const TAIL: usize = 10;

/// Logs each line a command (or what it left running) writes, keeping the
/// last few, until the pipe closes.
async fn read_lines(
    pipe: impl AsyncRead + Unpin,
    what: String,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        info!(target: "understudy::app", command = %what, "{line}");
        if let Ok(mut t) = tail.lock() {
            if t.len() == TAIL {
                t.pop_front();
            }
            t.push_back(line);
        }
    }
}

fn kill_group(group: i32) {
    if group > 1 {
        // SAFETY: killpg only sends a signal; a group that is gone gives ESRCH.
        unsafe {
            libc::killpg(group, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Expect, Url};

    fn supervisor(start: &str, stop: &str) -> Supervisor {
        let prober = Prober::new(Duration::from_millis(200), None, Expect::default()).unwrap();
        Supervisor::new(
            Some(start.into()),
            Some(stop.into()),
            Duration::from_secs(2),
            Duration::from_millis(300),
            // Nothing listens on this loopback port: the ready check fails.
            Check::App(Url::parse("http://127.0.0.1:9/").unwrap()),
            prober,
            vec![("UNDERSTUDY_NODE".into(), "m1".into())],
        )
    }

    #[tokio::test]
    async fn a_failed_start_reports_its_exit_status_and_last_output() {
        let mut s = supervisor("echo starting; echo 'port 80 in use' >&2; exit 3", "true");
        let err = s.start().await.unwrap_err();
        assert!(err.contains("exit status: 3"), "{err}");
        assert!(err.contains("port 80 in use"), "{err}");
    }

    #[tokio::test]
    async fn commands_know_what_the_node_becomes() {
        let mut s = supervisor(
            r#"test "$UNDERSTUDY_STATE" = active && test "$UNDERSTUDY_NODE" = m1 && test "$UNDERSTUDY_TERM" = 7"#,
            r#"test "$UNDERSTUDY_STATE" = passive && test "$UNDERSTUDY_TERM" = 7"#,
        );
        s.term = 7;
        let err = s.start().await.unwrap_err();
        assert!(
            err.contains("not healthy"),
            "the start command itself passed: {err}"
        );
        assert_eq!(s.stop().await, Ok(()));
    }

    #[tokio::test]
    async fn a_hung_stop_is_killed_at_its_limit() {
        let mut s = supervisor("true", "sleep 30");
        s.timeout = Duration::from_millis(200);
        let began = std::time::Instant::now();
        let err = s.stop().await.unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        assert!(began.elapsed() < Duration::from_secs(5));
    }
}
