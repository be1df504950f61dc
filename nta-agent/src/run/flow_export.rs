//! Flow records from the kernel's flow table, off the agent's loop: every
//! few seconds a blocking task walks the table, removes the flows idle for
//! the idle timeout, cuts those going on past the active timeout, and sends
//! their records to the loop; at shutdown the loop takes what is left.

use std::time::Duration;

use jiff::Timestamp;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::{MissedTickBehavior, interval},
};
use tracing::warn;

use crate::{
    flows::{FlowRecord, Timeouts},
    sensor::{FlowTable, SensorError, monotonic_ns},
};

/// Batches of records waiting for the loop; the exporter waits when full,
/// and the kernel table holds the flows meanwhile.
const QUEUE: usize = 64;

/// The running exporter.
pub(super) struct FlowExport {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Option<Walker>>,
}

/// How often the table is walked: a third of the idle timeout, so that a
/// flow's record is at most a third late, between 1 and 5 seconds.
fn period(idle: Duration) -> Duration {
    (idle / 3).clamp(Duration::from_secs(1), Duration::from_secs(5))
}

/// Starts exporting the flows of `table` as `timeouts` pick them; their
/// records come on the returned queue.
pub(super) fn start(
    table: FlowTable,
    timeouts: Timeouts,
    idle: Duration,
) -> (FlowExport, mpsc::Receiver<Vec<FlowRecord>>) {
    let (to_loop, queue) = mpsc::channel(QUEUE);
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut walker = Walker { table, timeouts };
        let mut ticker = interval(period(idle));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = &mut stopped => return Some(walker),
            }
            let walked = tokio::task::spawn_blocking(move || {
                let records = walker.records(false);
                (walker, records)
            })
            .await;
            let Ok((back, records)) = walked else {
                return None;
            };
            walker = back;
            match records {
                Ok(batch) if batch.is_empty() => {}
                Ok(batch) => {
                    if to_loop.send(batch).await.is_err() {
                        return Some(walker);
                    }
                }
                Err(error) => warn!(message = "Could not read the flow table", %error),
            }
        }
    });
    (
        FlowExport {
            stop: Some(stop),
            task,
        },
        queue,
    )
}

impl FlowExport {
    /// Stops the exporter after its current walk; the table and what was
    /// reported of it, to write what is left.
    pub async fn stop(mut self) -> Option<Walker> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.ok().flatten()
    }
}

/// The flow table and the timeouts that pick its flows' records.
pub(super) struct Walker {
    table: FlowTable,
    timeouts: Timeouts,
}

impl Walker {
    /// Records of the flows idle or past the active timeout (every flow
    /// at `shutdown`), on the wall clock, in the order they began; the
    /// flows that ended removed.
    pub(super) fn records(&mut self, shutdown: bool) -> Result<Vec<FlowRecord>, SensorError> {
        let mono = monotonic_ns();
        let clock = Timestamp::now().as_nanosecond() - i128::from(mono);
        let timeouts = &mut self.timeouts;
        let picked = self
            .table
            .walk(|k, f| timeouts.pick_for(k, f, mono, shutdown))?;
        Ok(timeouts.records(picked, clock, mono, shutdown))
    }
}
