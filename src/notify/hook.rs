//! Hook commands: run once per event through `sh -c`, with the event's
//! fields as UNDERSTUDY_* environment variables and a time limit; the exit
//! status and the output are logged.

use std::time::Duration;

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
        let (status, tail) = crate::io::shell::run(cmd, &vars, self.timeout).await?;
        info!(command = cmd, event = e.event, %status, output = tail, "hook ran");
        if status.success() {
            Ok(())
        } else {
            Err(format!("exit {status}"))
        }
    }
}
