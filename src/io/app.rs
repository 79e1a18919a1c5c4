//! The application supervisor: runs the configured start and stop commands
//! through `sh -c` in their own process group, each with a time limit, and
//! confirms a started application by probing its URL.
//!
//! Command output goes to the daemon's own stdout/stderr (the journal under
//! systemd): an application started in the background keeps those open, and
//! a pipe we later closed would kill it with SIGPIPE.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::time::Instant;
use tracing::{info, warn};

use super::probe::{Check, Prober};
use crate::core::Outcome;

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
    /// Process group of the last start command, killed if a stop times out.
    started_group: Option<i32>,
}

impl Supervisor {
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
            started_group: None,
        }
    }

    /// Runs the start command, then waits until the application answers.
    pub async fn start(&mut self) -> Outcome {
        if let Some(cmd) = self.start.clone() {
            let group = self.run("start", &cmd).await?;
            self.started_group = Some(group);
        }
        self.wait_ready().await
    }

    /// Runs the stop command; if it hangs past its limit, kills its process
    /// group and the start command's.
    pub async fn stop(&mut self) -> Outcome {
        let Some(cmd) = self.stop.clone() else {
            return Ok(());
        };
        let result = self.run("stop", &cmd).await;
        if result.is_err() {
            if let Some(group) = self.started_group.take() {
                kill_group(group);
            }
        }
        result.map(|_| ())
    }

    async fn wait_ready(&self) -> Outcome {
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            let outcome = self.prober.check(&self.health).await;
            match outcome {
                Ok(()) => return Ok(()),
                Err(why) if Instant::now() + READY_POLL >= deadline => {
                    return Err(format!("not healthy after {:?}: {why}", self.ready_timeout));
                }
                Err(_) => tokio::time::sleep(READY_POLL).await,
            }
        }
    }

    /// Runs one command; returns its process group id.
    async fn run(&self, what: &str, cmd: &str) -> Result<i32, String> {
        let began = Instant::now();
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("{what} command could not be run: {e}"))?;
        let group = child.id().map_or(0, |id| id as i32);
        match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(Ok(status)) if status.success() => {
                info!(
                    what,
                    ms = began.elapsed().as_millis() as u64,
                    "command done"
                );
                Ok(group)
            }
            Ok(Ok(status)) => Err(format!("{what} command failed: {status}")),
            Ok(Err(e)) => Err(format!("{what} command: {e}")),
            Err(_) => {
                warn!(what, ?self.timeout, "command timed out; killing its process group");
                kill_group(group);
                let _ = child.wait().await;
                Err(format!("{what} command timed out after {:?}", self.timeout))
            }
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
