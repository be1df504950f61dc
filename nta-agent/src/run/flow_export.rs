//! Flow records from the kernel's flow table, off the agent's loop: every
//! few seconds a blocking task walks the table, removes the flows idle for
//! the idle timeout, cuts those going on past the active timeout, and sends
//! their records to the loop in batches, as fast as the loop takes them; at
//! shutdown the loop takes what is left the same way. The same walk looks
//! up each flow new since the previous one in the rules on addresses
//! alone, and sends what they find along.

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

/// Flow records handed to the loop at a time: a full table's (131 072)
/// in 32 batches, each some 600 KiB.
pub(super) const RECORDS_PER_BATCH: usize = 4_096;

/// Batches waiting for the loop; the walk waits when full, and the kernel
/// table holds the flows it has not read meanwhile.
pub(super) const QUEUE: usize = 4;

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

/// What part of a walk found: the alerts of the rules on addresses alone,
/// and the records of the flows picked.
pub(super) struct Walked {
    pub findings: Vec<Finding>,
    pub records: Vec<FlowRecord>,
}

impl Walked {
    fn is_empty(&self) -> bool {
        self.findings.is_empty() && self.records.is_empty()
    }
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
            let to_loop = to_loop.clone();
            let walked = tokio::task::spawn_blocking(move || {
                let read = walker.records(false, |batch| to_loop.blocking_send(batch).is_ok());
                (walker, read, to_loop.is_closed())
            })
            .await;
            let Ok((back, read, closed)) = walked else {
                return None;
            };
            walker = back;
            if let Err(error) = read {
                warn!(message = "Could not read the flow table", %error);
            }
            if closed {
                return Some(walker);
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
    /// Walks the table: hands `emit` the records of the flows idle or past
    /// the active timeout (every flow at `shutdown`), on the wall clock, in
    /// batches of at most [`RECORDS_PER_BATCH`], each in the order its
    /// flows began, once those that ended are removed; with them, what the
    /// flows new since the previous walk match of the rules on addresses
    /// alone. Stops early when `emit` says no (no one takes them).
    pub(super) fn records(
        &mut self,
        shutdown: bool,
        mut emit: impl FnMut(Walked) -> bool,
    ) -> Result<(), SensorError> {
        let mono = monotonic_ns();
        let clock = Timestamp::now().as_nanosecond() - i128::from(mono);
        let now = std::time::Instant::now();
        let (timeouts, lookups) = (&mut self.timeouts, &mut self.lookups);
        lookups.start_walk(mono);
        let mut walk = self.table.walk(RECORDS_PER_BATCH)?;
        loop {
            let mut findings = Vec::new();
            let picked = walk.next(|k, f| {
                findings.extend(
                    lookups
                        .flow(k, f, now)
                        .iter()
                        .map(detect::payload::address_match),
                );
                timeouts.pick_for(k, f, mono, shutdown)
            })?;
            let done = picked.is_none();
            let records = picked.map_or_else(Vec::new, |picked| {
                timeouts.records(picked, clock, mono, shutdown)
            });
            let walked = Walked { findings, records };
            if !walked.is_empty() && !emit(walked) {
                return Ok(());
            }
            if done {
                return Ok(());
            }
        }
    }
}
