//! Flow records from the kernel's flow table, off the agent's loop: every
//! few seconds a blocking task walks the table, removes the flows idle for
//! the idle timeout and sends their records to the loop; at shutdown the
//! loop takes what is left.

use std::time::Duration;

use jiff::Timestamp;
use nta_common::flow::FlowStats;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::{MissedTickBehavior, interval},
};
use tracing::warn;

use crate::{
    flows::{FlowRecord, Reason},
    sensor::{FlowTable, SensorError, monotonic_ns},
};

/// Batches of records waiting for the loop; the exporter waits when full,
/// and the kernel table holds the flows meanwhile.
const QUEUE: usize = 64;

/// The running exporter.
pub(super) struct FlowExport {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Option<FlowTable>>,
}

/// How often the table is walked: a third of the idle timeout, so that a
/// flow's record is at most a third late, between 1 and 5 seconds.
fn period(idle: Duration) -> Duration {
    (idle / 3).clamp(Duration::from_secs(1), Duration::from_secs(5))
}

/// Starts exporting the flows of `table` idle for `idle`; their records
/// come on the returned queue.
pub(super) fn start(
    table: FlowTable,
    idle: Duration,
) -> (FlowExport, mpsc::Receiver<Vec<FlowRecord>>) {
    let (records, queue) = mpsc::channel(QUEUE);
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut table = table;
        let mut ticker = interval(period(idle));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let idle_ns = u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = &mut stopped => return Some(table),
            }
            let walked = tokio::task::spawn_blocking(move || {
                let ended = take_ended(
                    &mut table,
                    |f, now| now.saturating_sub(f.last_seen_ns) >= idle_ns,
                    Reason::Timeout,
                );
                (table, ended)
            })
            .await;
            let Ok((back, ended)) = walked else {
                return None;
            };
            table = back;
            match ended {
                Ok(batch) if batch.is_empty() => {}
                Ok(batch) => {
                    if records.send(batch).await.is_err() {
                        return Some(table);
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
    /// Stops the exporter after its current walk; its table, to take what
    /// is left.
    pub async fn stop(mut self) -> Option<FlowTable> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.ok().flatten()
    }
}

/// Removes the flows `over` picks (given the kernel clock now) and makes
/// their records, on the wall clock, in the order they began.
pub(super) fn take_ended(
    table: &mut FlowTable,
    mut over: impl FnMut(&FlowStats, u64) -> bool,
    reason: Reason,
) -> Result<Vec<FlowRecord>, SensorError> {
    let mono = monotonic_ns();
    let clock = Timestamp::now().as_nanosecond() - i128::from(mono);
    let mut ended = table.take(|f| over(f, mono))?;
    ended.sort_unstable_by_key(|(k, f)| (f.first_seen_ns, *k));
    Ok(ended
        .iter()
        .map(|(k, f)| FlowRecord::of(k, f, clock, reason))
        .collect())
}
