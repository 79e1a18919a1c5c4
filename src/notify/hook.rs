//! Hook commands: run once per event through `sh -c`, with the event's
//! fields as UNDERSTUDY_* environment variables and a time limit; the exit
//! status and the output are logged.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tracing::info;

use super::Envelope;
use crate::config::Hook;

#[derive(Clone)]
pub struct Runner {
    commands: Vec<String>,
    timeout: Duration,
}

impl Runner {
    pub fn new(c: &Hook) -> Runner {
        Runner {
            commands: c.commands.clone(),
            timeout: c.timeout,
        }
    }

    pub async fn run(&self, e: &Envelope) -> Result<(), String> {
        let mut failures = Vec::new();
        for cmd in &self.commands {
            if let Err(why) = self.run_one(cmd, e).await {
                failures.push(format!("{cmd:?}: {why}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }

    async fn run_one(&self, cmd: &str, e: &Envelope) -> Result<(), String> {
        let vars = [
            ("UNDERSTUDY_EVENT", e.event.to_owned()),
            ("UNDERSTUDY_SEVERITY", e.severity.to_owned()),
            ("UNDERSTUDY_CLUSTER", e.cluster.clone()),
            ("UNDERSTUDY_NODE", e.node.clone()),
            ("UNDERSTUDY_PEER", e.peer.clone()),
            ("UNDERSTUDY_VIP", e.vip.clone()),
            ("UNDERSTUDY_ALIAS", e.alias.clone().unwrap_or_default()),
            ("UNDERSTUDY_CAUSE", e.cause.clone()),
            ("UNDERSTUDY_TERM", e.term.to_string()),
            ("UNDERSTUDY_TIME", e.time.clone()),
            (
                "UNDERSTUDY_DURATION_MS",
                e.duration_ms.map_or(String::new(), |d| format!("{d:.1}")),
            ),
            ("UNDERSTUDY_ACTION", e.action.to_owned()),
        ];
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .envs(vars)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run: {e}"))?;
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| format!("timed out after {:?} (killed)", self.timeout))?
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = text
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        info!(command = cmd, event = e.event, status = %out.status, output = tail.join(" | "), "hook ran");
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("exit {}", out.status))
        }
    }
}
