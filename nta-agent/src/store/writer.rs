//! The store writer: one task that commits alert states and traffic
//! history, so that detection never waits for the disk.
//!
//! The detection loop hands alerts and history over and goes on; the writer
//! commits whatever has gathered in one transaction, so a storm's alerts
//! cost one durable commit per write rather than one each. While the store
//! fails, everything waits in bounded memory and a write is retried once per
//! [`RETRY_INTERVAL`]. A disk that hangs (a frozen or stalled filesystem)
//! holds up this task alone: alerts still reach the log, the live feed and
//! notifications at once.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use jiff::Timestamp;
use nta_common::GlobalCounters;
use tokio::{sync::Notify, task::JoinHandle};
use tracing::{info, warn};

use super::{
    Retention, Store, StoreError, StoreHealth,
    health::{BACKLOG_MAX, Backlog, Failure, RETRY_INTERVAL, WriteState},
};
use crate::{
    alert::Alert,
    flows::FlowRecord,
    timings::{self, Timings},
};

/// Where the writer publishes the store's health (the live view, which
/// `/api/stats` and `/metrics` serve).
pub type HealthReport = Box<dyn Fn(StoreHealth) + Send + Sync>;

/// Ticks of history kept while the store cannot be written: an hour at
/// the default 1 s interval, 320 bytes each (~1.2 MB). Older ones go first.
pub const HISTORY_QUEUE_MAX: usize = 3_600;

/// Flow records waiting for the store at most: a few minutes of a busy
/// link's flows.
pub const FLOW_QUEUE_MAX: usize = 100_000;

/// How long a write may run before flow records stop waiting for the
/// store: a round of tens of thousands of records takes a while on a slow
/// disk, and only a hung one should be given up on.
pub const FLOWS_WAIT_HUNG: Duration = Duration::from_secs(5);

/// How often a failing writer looks whether its retry is due.
const RETRY_POLL: Duration = Duration::from_millis(100);

/// The handle the detection loop writes through.
pub struct StoreWriter {
    shared: Arc<Shared>,
    task: JoinHandle<usize>,
}

struct Shared {
    pending: Mutex<Pending>,
    /// Something to write, or shutdown.
    wake: Notify,
    store: Arc<Store>,
    report: HealthReport,
    timings: Timings,
}

/// What waits for the writer, and how its writes went.
#[derive(Default)]
struct Pending {
    backlog: Backlog,
    history: VecDeque<(Timestamp, GlobalCounters)>,
    flows: VecDeque<FlowRecord>,
    prune: Option<Retention>,
    writes: WriteState,
    closing: bool,
}

impl Pending {
    /// Puts back what a failed round did not write, ahead of what queued
    /// since (it is older); past the cap, the oldest ticks go.
    fn put_back(
        &mut self,
        history: Vec<(Timestamp, GlobalCounters)>,
        flows: Vec<FlowRecord>,
        prune: Option<Retention>,
    ) {
        for tick in history.into_iter().rev() {
            if self.history.len() < HISTORY_QUEUE_MAX {
                self.history.push_front(tick);
            }
        }
        for record in flows.into_iter().rev() {
            if self.flows.len() < FLOW_QUEUE_MAX {
                self.flows.push_front(record);
            }
        }
        if self.prune.is_none() {
            self.prune = prune;
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes the store's health to `/api/stats` and `/metrics`.
    fn report(&self, pending: &Pending) {
        (self.report)(pending.writes.health(&pending.backlog, Instant::now()));
    }
}

impl StoreWriter {
    /// Starts the writer on `store`, publishing its health through
    /// `report` and the time of its writes to `timings`.
    pub fn start(store: Arc<Store>, report: HealthReport, timings: Timings) -> Self {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
            store,
            report,
            timings,
        });
        let task = tokio::spawn(write_loop(shared.clone()));
        Self { shared, task }
    }

    /// Queues the latest states of `alerts`; never waits.
    pub fn alerts(&self, alerts: Vec<Alert>) {
        if alerts.is_empty() {
            return;
        }
        let mut pending = self.shared.lock();
        let dropped = pending.backlog.add(alerts);
        if dropped > 0 && pending.writes.first_drop_of_run() {
            warn!(
                message = "Store backlog full: dropping the oldest unwritten alerts",
                cap = BACKLOG_MAX,
            );
        }
        self.shared.report(&pending);
        drop(pending);
        self.shared.wake.notify_one();
    }

    /// Queues one tick's counter growth; never waits.
    pub fn history(&self, at: Timestamp, deltas: GlobalCounters) {
        let mut pending = self.shared.lock();
        if pending.history.len() == HISTORY_QUEUE_MAX {
            pending.history.pop_front();
        }
        pending.history.push_back((at, deltas));
        // Once a tick, so a write that hangs shows as stalled even when no
        // alert arrives.
        self.shared.report(&pending);
        drop(pending);
        self.shared.wake.notify_one();
    }

    /// Whether more flow records should be queued now: fewer than `ahead`
    /// wait, or the store fails or a write has run for [`FLOWS_WAIT_HUNG`],
    /// and the oldest records are to go past [`FLOW_QUEUE_MAX`] rather
    /// than hold up the other outputs.
    pub fn takes_flows(&self, ahead: usize) -> bool {
        let pending = self.shared.lock();
        pending.flows.len() < ahead || !pending.writes.keeping_up(Instant::now(), FLOWS_WAIT_HUNG)
    }

    /// Queues flow records; never waits. Past [`FLOW_QUEUE_MAX`] waiting
    /// (a store failing for long), the oldest go, and a line says so.
    pub fn flows(&self, records: &[FlowRecord]) {
        if records.is_empty() {
            return;
        }
        let mut pending = self.shared.lock();
        let mut dropped = 0;
        for r in records {
            if pending.flows.len() == FLOW_QUEUE_MAX {
                pending.flows.pop_front();
                dropped += 1;
            }
            pending.flows.push_back(r.clone());
        }
        if dropped > 0 && pending.writes.first_drop_of_run() {
            warn!(
                message = "Store backlog full: dropping the oldest unwritten flow records",
                cap = FLOW_QUEUE_MAX,
            );
        }
        drop(pending);
        self.shared.wake.notify_one();
    }

    /// Asks for old history to be pruned at the next write.
    pub fn prune(&self, retention: &Retention) {
        self.shared.lock().prune = Some(retention.clone());
        self.shared.wake.notify_one();
    }

    /// Writes what is left, trying once more at once even if the store is
    /// failing, and stops; gives up after `limit` (a hung disk). Returns
    /// the alerts that could not be written.
    pub async fn close(self, limit: Duration) -> usize {
        {
            let mut pending = self.shared.lock();
            pending.closing = true;
            pending.writes.retry_now();
        }
        self.shared.wake.notify_one();
        match tokio::time::timeout(limit, self.task).await {
            Ok(Ok(lost)) => lost,
            Ok(Err(error)) => {
                warn!(message = "Store writer panicked", error = %error);
                self.shared.lock().backlog.len()
            }
            Err(_) => {
                let lost = self.shared.lock().backlog.len();
                warn!(
                    message = "The store did not finish writing in time; giving up",
                    limit = %humantime::format_duration(limit),
                    waiting = lost,
                );
                lost
            }
        }
    }
}

/// What one round of the writer takes from [`Pending`].
struct Round {
    alerts: Vec<Alert>,
    history: Vec<(Timestamp, GlobalCounters)>,
    flows: Vec<FlowRecord>,
    prune: Option<Retention>,
    closing: bool,
}

/// Waits for work (or, while the store fails, for the next retry), writes
/// it, and reports; after a shutdown request, one last round. Returns the
/// alerts left unwritten.
async fn write_loop(shared: Arc<Shared>) -> usize {
    loop {
        let (round, waiting) = {
            let mut pending = shared.lock();
            let has_work = !pending.backlog.is_empty()
                || !pending.history.is_empty()
                || !pending.flows.is_empty()
                || pending.prune.is_some();
            if pending.closing || (has_work && pending.writes.due(Instant::now())) {
                pending.writes.began(Instant::now(), Timestamp::now());
                let round = Round {
                    alerts: pending.backlog.take(),
                    history: pending.history.drain(..).collect(),
                    flows: pending.flows.drain(..).collect(),
                    prune: pending.prune.take(),
                    closing: pending.closing,
                };
                (Some(round), has_work)
            } else {
                (None, has_work)
            }
        };
        let Some(round) = round else {
            let woken = shared.wake.notified();
            if waiting {
                // Failing, and the retry not yet due: look again soon.
                let _ = tokio::time::timeout(RETRY_POLL, woken).await;
            } else {
                woken.await;
            }
            continue;
        };
        let closing = round.closing;
        write_round(&shared, round).await;
        {
            let mut pending = shared.lock();
            pending.writes.ended();
            shared.report(&pending);
        }
        if closing {
            let pending = shared.lock();
            if !pending.backlog.is_empty() {
                warn!(
                    message = "Alerts not written: the store still fails",
                    lost = pending.backlog.len()
                );
            }
            return pending.backlog.len();
        }
    }
}

/// Commits one round: the alerts in one transaction, then the history in
/// order, then the flow records, then a prune; what fails goes back to
/// wait.
async fn write_round(shared: &Shared, round: Round) {
    let store = shared.store.clone();
    let Round {
        alerts,
        history,
        flows,
        prune,
        ..
    } = round;
    if !alerts.is_empty() {
        let start = Instant::now();
        let written = blocking(&store, move |store| {
            // With recovery: a handle that an I/O error left failed is
            // reopened before the write and again after one.
            match store.with_recovery(|store| store.put_alerts(&alerts)) {
                Ok(()) => Ok(alerts.len()),
                Err(error) => Err((error, alerts)),
            }
        })
        .await;
        timings::observe(&shared.timings.store, &timings::STORE_ALERTS, start);
        let mut pending = shared.lock();
        match written {
            Some(Ok(written)) => succeeded(&mut pending, written),
            Some(Err((error, alerts))) => {
                pending.backlog.restore(alerts);
                let waiting = pending.backlog.len();
                failed(&mut pending, &error, "alerts", waiting);
            }
            None => {}
        }
        shared.report(&pending);
        if !pending.writes.due(Instant::now()) {
            // Failed: the history and flows wait for the next retry too.
            pending.put_back(history, flows, prune);
            return;
        }
    }

    if !history.is_empty() {
        let start = Instant::now();
        let written = blocking(&store, move |store| {
            let mut done = 0;
            let outcome = store.with_recovery(|store| {
                for (at, deltas) in &history[done..] {
                    store.record_history(*at, deltas)?;
                    done += 1;
                }
                Ok(())
            });
            outcome.map_err(|error| (error, history[done..].to_vec()))
        })
        .await;
        timings::observe(&shared.timings.store, &timings::STORE_HISTORY, start);
        let mut pending = shared.lock();
        match written {
            Some(Ok(())) => succeeded(&mut pending, 0),
            Some(Err((error, left))) => {
                pending.put_back(left, Vec::new(), None);
                let waiting = pending.backlog.len();
                failed(&mut pending, &error, "history", waiting);
            }
            None => {}
        }
        shared.report(&pending);
        if !pending.writes.due(Instant::now()) {
            pending.put_back(Vec::new(), flows, prune);
            return;
        }
    }

    if !flows.is_empty() && !write_flows(shared, &store, flows, &prune).await {
        return;
    }

    if let Some(retention) = prune {
        let pruned = blocking(&store, move |store| {
            store.with_recovery(|store| {
                store.prune(Timestamp::now(), &retention)?;
                store.prune_flows(Timestamp::now(), retention.flows)
            })
        })
        .await;
        if let Some(Err(error)) = pruned {
            warn!(message = "Failed to prune history", %error);
        }
    }
}

/// Commits flow records; false if that failed (they wait, with `prune`,
/// for the next retry).
async fn write_flows(
    shared: &Shared,
    store: &Arc<Store>,
    flows: Vec<FlowRecord>,
    prune: &Option<Retention>,
) -> bool {
    let written = blocking(store, move |store| {
        store
            .with_recovery(|store| store.put_flows(&flows))
            .map_err(|error| (error, flows))
    })
    .await;
    let Some(Err((error, flows))) = written else {
        return true;
    };
    let mut pending = shared.lock();
    pending.put_back(Vec::new(), flows, prune.clone());
    let waiting = pending.backlog.len();
    failed(&mut pending, &error, "flows", waiting);
    shared.report(&pending);
    false
}

/// Runs `write` on the blocking pool; `None` if it panicked, which is
/// logged.
async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    write: impl FnOnce(&Store) -> T + Send + 'static,
) -> Option<T> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || write(&store)).await {
        Ok(outcome) => Some(outcome),
        Err(error) => {
            warn!(message = "Store writer panicked", %error);
            None
        }
    }
}

fn succeeded(pending: &mut Pending, alerts: usize) {
    if let Some(run) = pending.writes.succeeded() {
        info!(
            message = "Store writable again",
            failed_writes = run.failed_writes,
            failing_since = %run.since,
            alerts_written = alerts,
            alerts_dropped = pending.backlog.dropped(),
        );
    }
}

/// Logs the first failure of a run; the rest show in `/api/stats`.
fn failed(pending: &mut Pending, error: &StoreError, what: &'static str, waiting: usize) {
    if pending
        .writes
        .failed(error, Timestamp::now(), Instant::now())
        == Failure::Began
    {
        warn!(
            message = "Failed to write to the store; detection goes on, alerts wait in memory and are written when it recovers",
            writing = what,
            %error,
            waiting,
            retry_every = %humantime::format_duration(RETRY_INTERVAL),
        );
    }
}
