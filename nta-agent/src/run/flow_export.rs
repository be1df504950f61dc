//! Flow records from the kernel's flow table, off the agent's loop: every
//! few seconds a blocking task walks the table, removes the flows idle for
//! the idle timeout, cuts those going on past the active timeout, and sends
//! their records to the loop; at shutdown the loop takes what is left. The
//! same walk looks up each flow new since the previous one in the rules on
//! addresses alone, and sends what they find along.

use std::time::Duration;

use jiff::Timestamp;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::{MissedTickBehavior, interval},
};
use tracing::warn;

use crate::{
    detect::{self, Finding},
    flows::{FlowRecord, Timeouts},
    payload::ip_only::{FlowLookups, IpOnlyRules},
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

/// What one walk found: the alerts of the rules on addresses alone, and
/// the records of the flows picked.
pub(super) struct Walked {
    pub findings: Vec<Finding>,
    pub records: Vec<FlowRecord>,
}

/// Starts exporting the flows of `table` as `timeouts` pick them, and
/// looking new flows up in `rules` (then in each set from `reloads`);
/// their records and findings come on the returned queue.
pub(super) fn start(
    table: FlowTable,
    timeouts: Timeouts,
    idle: Duration,
    rules: IpOnlyRules,
    mut reloads: mpsc::Receiver<IpOnlyRules>,
) -> (FlowExport, mpsc::Receiver<Walked>) {
    let (to_loop, queue) = mpsc::channel(QUEUE);
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut walker = Walker {
            table,
            timeouts,
            lookups: FlowLookups::new(rules),
        };
        let mut ticker = interval(period(idle));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                Some(rules) = reloads.recv() => {
                    walker.lookups.replace(rules);
                    continue;
                }
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
                Ok(batch) if batch.records.is_empty() && batch.findings.is_empty() => {}
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

/// The flow table, the timeouts that pick its flows' records, and the
/// rules new flows are looked up in.
pub(super) struct Walker {
    table: FlowTable,
    timeouts: Timeouts,
    lookups: FlowLookups,
}

impl Walker {
    /// Records of the flows idle or past the active timeout (every flow
    /// at `shutdown`), on the wall clock, in the order they began; the
    /// flows that ended removed. With them, what the flows new since the
    /// previous walk match of the rules on addresses alone.
    pub(super) fn records(&mut self, shutdown: bool) -> Result<Walked, SensorError> {
        let mono = monotonic_ns();
        let clock = Timestamp::now().as_nanosecond() - i128::from(mono);
        let now = std::time::Instant::now();
        let (timeouts, lookups) = (&mut self.timeouts, &mut self.lookups);
        lookups.start_walk(mono);
        let mut findings = Vec::new();
        let picked = self.table.walk(|k, f| {
            findings.extend(
                lookups
                    .flow(k, f, now)
                    .iter()
                    .map(detect::payload::address_match),
            );
            timeouts.pick_for(k, f, mono, shutdown)
        })?;
        Ok(Walked {
            findings,
            records: timeouts.records(picked, clock, mono, shutdown),
        })
    }
}
