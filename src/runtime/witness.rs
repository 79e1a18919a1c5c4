//! The witness task (only with a `[witness]`): carries out the core's
//! lease asks one at a time, each within a quarter of the lease, and
//! answers acquires and renewals as [`Input::Lease`]; between them, every
//! quarter lease, writes this node's row and reads the witness's view for
//! status. It runs on the main runtime, beside the loop, so that a slow
//! database never delays a heartbeat; it ends when the loop drops its
//! side, after the asks still queued (the last release).

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::RuntimeError;
use crate::config::Config;
use crate::core::{Input, LeaseAsk, LeaseReply, StatusWord};
use crate::io::probe::Prober;
use crate::io::witness::{NodeRecord, SharedView, Witness, WitnessError, WitnessView};

/// The loop's side of the task.
pub struct WitnessLink {
    asks: mpsc::UnboundedSender<LeaseAsk>,
    record: watch::Sender<NodeRecord>,
    /// What the row says now.
    said: std::cell::Cell<Option<(StatusWord, u64, u64)>>,
    pub view: SharedView,
}

impl WitnessLink {
    pub fn ask(&self, ask: LeaseAsk) {
        // The task lives as long as this sender.
        let _ = self.asks.send(ask);
    }

    /// What this node's next row says (written at the next round). Called
    /// on every turn of the loop: the row's text is made only when what
    /// it says changed.
    pub fn set_record(&self, state: StatusWord, term: u64, checksum: u64) {
        let said = (state, term, checksum);
        if self.said.replace(Some(said)) == Some(said) {
            return;
        }
        self.record.send_modify(|row| {
            row.state = state.to_string();
            row.term = term;
            row.checksum = format!("{checksum:016x}");
        });
    }
}

/// Starts the task for node `me`: its link and handle, or neither
/// without a witness.
pub fn start(
    config: &Config,
    me: usize,
    prober: &Prober,
    inputs: &mpsc::UnboundedSender<Input>,
) -> Result<(Option<WitnessLink>, Option<JoinHandle<()>>), RuntimeError> {
    let Some(w) = &config.witness else {
        return Ok((None, None));
    };
    let round = w.lease / 4;
    let node = &config.nodes[me].name;
    let witness = Witness::new(
        &w.backend,
        &config.cluster.name,
        node,
        w.lease,
        prober.clone(),
        round,
        &w.access,
    )
    .map_err(RuntimeError::Witness)?;
    let (asks, asks_rx) = mpsc::unbounded_channel();
    let (record, record_rx) = watch::channel(NodeRecord {
        node: node.clone(),
        ..NodeRecord::default()
    });
    let view = SharedView::new(Mutex::new(WitnessView {
        backend: w.backend.shown(),
        ..WitnessView::default()
    }));
    info!(witness = %w.backend.shown(), lease = %humantime::format_duration(w.lease), on_loss = %w.on_loss, "witness configured");
    let task = Task {
        witness,
        round,
        view: view.clone(),
        inputs: inputs.clone(),
    };
    let handle = tokio::spawn(task.run(asks_rx, record_rx));
    let link = WitnessLink {
        asks,
        record,
        said: std::cell::Cell::new(None),
        view,
    };
    Ok((Some(link), Some(handle)))
}

struct Task {
    witness: Witness,
    /// A quarter lease: the limit of each call, and the record's period.
    round: Duration,
    view: SharedView,
    inputs: mpsc::UnboundedSender<Input>,
}

impl Task {
    async fn run(
        mut self,
        mut asks: mpsc::UnboundedReceiver<LeaseAsk>,
        record: watch::Receiver<NodeRecord>,
    ) {
        let mut tick = tokio::time::interval(self.round);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                ask = asks.recv() => match ask {
                    Some(ask) => self.carry_out(ask).await,
                    None => break,
                },
                _ = tick.tick() => {
                    let mine = record.borrow().clone();
                    self.record(&mine).await;
                }
            }
        }
    }

    /// One ask, within the round; acquires and renewals are answered.
    async fn carry_out(&mut self, ask: LeaseAsk) {
        let limit = self.round;
        let late = || WitnessError::TimedOut(limit);
        match ask {
            LeaseAsk::Acquire | LeaseAsk::Renew { .. } => {
                let call = async {
                    match ask {
                        LeaseAsk::Renew { term } => self.witness.renew(term).await,
                        _ => self.witness.acquire().await,
                    }
                };
                let reply = tokio::time::timeout(limit, call)
                    .await
                    .unwrap_or_else(|_| LeaseReply::Failed(late().to_string()));
                if matches!(reply, LeaseReply::Failed(_)) {
                    self.witness.reset();
                }
                let _ = self.inputs.send(Input::Lease(reply));
            }
            LeaseAsk::Break { holder, term } => {
                let result = tokio::time::timeout(limit, self.witness.break_lease(&holder, term))
                    .await
                    .unwrap_or_else(|_| Err(late()));
                match result {
                    Ok(true) => info!(%holder, term, "ended the fenced holder's lease"),
                    Ok(false) => {
                        info!(%holder, term, "the fenced holder's lease was not there to end")
                    }
                    Err(why) => {
                        self.witness.reset();
                        warn!(%holder, term, %why, "could not end the fenced holder's lease; the claim waits for it to run out");
                    }
                }
            }
            LeaseAsk::Release { term } => {
                let result = tokio::time::timeout(limit, self.witness.release(term))
                    .await
                    .unwrap_or_else(|_| Err(late()));
                match result {
                    Ok(()) => info!(term, "handed the witness's lease back"),
                    Err(why) => {
                        self.witness.reset();
                        warn!(term, %why, "could not hand the lease back; it runs out by itself");
                    }
                }
            }
        }
    }

    /// Writes our row and reads the witness's view, within the round.
    async fn record(&mut self, mine: &NodeRecord) {
        if mine.state.is_empty() {
            return;
        }
        let limit = self.round;
        let result = tokio::time::timeout(limit, self.witness.record_and_read(mine))
            .await
            .unwrap_or_else(|_| Err(WitnessError::TimedOut(limit)))
            .map_err(|e| e.to_string());
        let mut view = self.view.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(seen) => {
                view.seen = Some((seen, std::time::Instant::now()));
                view.error = None;
            }
            Err(why) => {
                self.witness.reset();
                if view.error.as_ref() != Some(&why) {
                    warn!(%why, "cannot write this node's row to the witness");
                }
                view.error = Some(why);
            }
        }
    }
}
