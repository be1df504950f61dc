//! The store as the agent's writes find it: whether the last write worked,
//! when to try again after one failed, and the alerts that wait meanwhile.
//!
//! Detection never waits for the disk to recover: alerts go to the live
//! feed, the log and notifications first; the store gets the latest state
//! of each alert as soon as it can be written again.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use jiff::Timestamp;
use serde::Serialize;

use super::StoreError;
use crate::alert::Alert;

/// Most alerts kept while the store cannot be written. Only the latest
/// state of each alert is kept, so a flood updated every second costs one
/// entry however long it lasts; an alert is under ~2 KB of JSON (evidence
/// keeps a few top ports and sources), so this bounds the backlog at
/// ~20 MB: hours of a busy network's incidents.
pub const BACKLOG_MAX: usize = 10_000;

/// Least time between two write attempts while the store is failing: each
/// retry reopens the file, which repairs it (a read of its tables), so it
/// must not run for every alert of a storm. Just under the default tick
/// (1 s), so that every tick retries even when it fires a little early.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(900);

/// How long a write may run before the report calls it stalled: a durable
/// commit takes milliseconds, so a second means the disk is not answering
/// (frozen, a stalled device or a hung network volume).
pub const STALLED_AFTER: Duration = Duration::from_secs(1);

/// The store's health, as `/api/stats` shows it under `store`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreHealth {
    /// Whether the last write (alerts or history) succeeded.
    pub ok: bool,
    /// Why the last write failed, while not ok.
    pub error: Option<String>,
    /// When the current run of failures began, while not ok.
    pub since: Option<Timestamp>,
    /// Writes that failed since the agent started.
    pub failed_writes: u64,
    /// Alerts waiting to be written.
    pub backlog: usize,
    /// Alert states dropped since start because the backlog was full.
    pub dropped: u64,
    /// When the write still running began, once it has run for
    /// [`STALLED_AFTER`]: the disk hangs rather than fails.
    pub stalled_since: Option<Timestamp>,
}

impl Default for StoreHealth {
    fn default() -> Self {
        Self {
            ok: true,
            error: None,
            since: None,
            failed_writes: 0,
            backlog: 0,
            dropped: 0,
            stalled_since: None,
        }
    }
}

/// Alerts not yet written, the latest state of each, oldest ids dropped
/// first past the cap: while the disk is full the newest incidents are the
/// ones an operator is looking at.
#[derive(Debug)]
pub struct Backlog {
    alerts: BTreeMap<u64, Alert>,
    cap: usize,
    dropped: u64,
}

impl Default for Backlog {
    fn default() -> Self {
        Self::with_cap(BACKLOG_MAX)
    }
}

impl Backlog {
    /// An empty backlog holding at most `cap` alerts (at least one).
    pub fn with_cap(cap: usize) -> Self {
        Self {
            alerts: BTreeMap::new(),
            cap: cap.max(1),
            dropped: 0,
        }
    }

    /// Adds alerts in the order they happened; a later state replaces an
    /// earlier one of the same id. Returns how many were dropped to stay
    /// under the cap.
    pub fn add(&mut self, alerts: impl IntoIterator<Item = Alert>) -> u64 {
        let mut dropped = 0;
        for alert in alerts {
            self.alerts.insert(alert.id, alert);
            if self.alerts.len() > self.cap {
                self.alerts.pop_first();
                dropped += 1;
            }
        }
        self.dropped += dropped;
        dropped
    }

    /// Puts back alerts taken for a write that failed. States that arrived
    /// since they were taken are newer and stay; the rest count against
    /// the cap as [`Backlog::add`]'s do. Returns how many were dropped.
    pub fn restore(&mut self, taken: impl IntoIterator<Item = Alert>) -> u64 {
        let older: Vec<Alert> = taken
            .into_iter()
            .filter(|a| !self.alerts.contains_key(&a.id))
            .collect();
        self.add(older)
    }

    /// Everything waiting, oldest id first; the backlog is left empty.
    pub fn take(&mut self) -> Vec<Alert> {
        std::mem::take(&mut self.alerts).into_values().collect()
    }

    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// Alert states dropped since the backlog was made.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// What a failed write means for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The first failure after a success: log it.
    Began,
    /// One more of a run already logged.
    Continues,
}

/// A run of failures that a successful write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub failed_writes: u64,
    pub since: Timestamp,
}

/// Write outcomes: the health report, and when the next attempt is due.
#[derive(Debug, Default)]
pub struct WriteState {
    health: StoreHealth,
    /// Failures in the current run.
    run: u64,
    last_failure: Option<Instant>,
    /// Whether the backlog dropped alerts during the current run.
    dropped_in_run: bool,
    /// The write running now, if any: when it began.
    writing: Option<(Instant, Timestamp)>,
}

impl WriteState {
    /// Whether a write may be tried at `now`: always while the store is
    /// healthy, once per [`RETRY_INTERVAL`] while it fails.
    pub fn due(&self, now: Instant) -> bool {
        self.last_failure
            .is_none_or(|at| now.saturating_duration_since(at) >= RETRY_INTERVAL)
    }

    /// Records a failed write at `at` (wall clock) / `now` (for retries).
    pub fn failed(&mut self, error: &StoreError, at: Timestamp, now: Instant) -> Failure {
        let began = self.health.ok;
        self.health.ok = false;
        self.health.error = Some(error.to_string());
        self.health.failed_writes += 1;
        if began {
            self.health.since = Some(at);
            self.run = 0;
            self.dropped_in_run = false;
        }
        self.run += 1;
        self.last_failure = Some(now);
        if began {
            Failure::Began
        } else {
            Failure::Continues
        }
    }

    /// Notes that the backlog dropped alerts; true the first time in a run
    /// of failures (log it once, not per alert).
    pub fn first_drop_of_run(&mut self) -> bool {
        !std::mem::replace(&mut self.dropped_in_run, true)
    }

    /// Notes that a write began at `now` (monotonic) / `at` (wall clock).
    pub fn began(&mut self, now: Instant, at: Timestamp) {
        self.writing = Some((now, at));
    }

    /// Notes that the write running has ended, however it went.
    pub fn ended(&mut self) {
        self.writing = None;
    }

    /// Lets the next write try at once, e.g. the last one at shutdown.
    pub fn retry_now(&mut self) {
        self.last_failure = None;
    }

    /// Records a successful write; returns the run of failures it ended.
    pub fn succeeded(&mut self) -> Option<Recovered> {
        self.last_failure = None;
        if self.health.ok {
            return None;
        }
        let since = self.health.since.take().unwrap_or_default();
        self.health.ok = true;
        self.health.error = None;
        Some(Recovered {
            failed_writes: std::mem::take(&mut self.run),
            since,
        })
    }

    /// Whether writes are going through at `now`: the store not failing,
    /// and no write running for `hung` or longer.
    pub fn keeping_up(&self, now: Instant, hung: Duration) -> bool {
        self.health.ok
            && self
                .writing
                .is_none_or(|(began, _)| now.saturating_duration_since(began) < hung)
    }

    /// The report at `now`, with the backlog's current size and drops.
    pub fn health(&self, backlog: &Backlog, now: Instant) -> StoreHealth {
        let stalled_since = self
            .writing
            .filter(|(began, _)| now.saturating_duration_since(*began) >= STALLED_AFTER)
            .map(|(_, at)| at);
        StoreHealth {
            backlog: backlog.len(),
            dropped: backlog.dropped(),
            stalled_since,
            ..self.health.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        alert::{AlertKind, fixtures},
        store::QueryError,
    };

    fn alert(id: u64, packets: u64) -> Alert {
        Alert {
            packets,
            ..fixtures::alert(id, AlertKind::Volumetric)
        }
    }

    fn failure() -> StoreError {
        QueryError::InvalidLimit { limit: 0 }.into()
    }

    #[test]
    fn the_backlog_keeps_the_latest_state_of_each_alert() {
        let mut backlog = Backlog::default();
        assert_eq!(backlog.add([alert(2, 1), alert(1, 1), alert(2, 5)]), 0);
        let taken = backlog.take();
        assert_eq!(
            taken.iter().map(|a| (a.id, a.packets)).collect::<Vec<_>>(),
            [(1, 1), (2, 5)]
        );
        assert!(backlog.is_empty());
    }

    #[test]
    fn a_failed_write_is_put_back_beneath_the_states_that_arrived_since() {
        let mut backlog = Backlog::with_cap(3);
        backlog.add([alert(1, 1), alert(2, 1)]);
        let taken = backlog.take();
        backlog.add([alert(2, 7), alert(3, 1)]);
        assert_eq!(backlog.restore(taken), 0);
        let kept: Vec<(u64, u64)> = backlog.take().iter().map(|a| (a.id, a.packets)).collect();
        assert_eq!(
            kept,
            [(1, 1), (2, 7), (3, 1)],
            "alert 2's newer state stays"
        );

        backlog.add([alert(4, 1), alert(5, 1), alert(6, 1)]);
        assert_eq!(backlog.restore([alert(1, 1)]), 1, "over the cap");
        assert_eq!(backlog.len(), 3);
        assert_eq!(backlog.dropped(), 1);
    }

    #[test]
    fn a_full_backlog_drops_the_oldest_alerts_and_counts_them() {
        let mut backlog = Backlog::with_cap(3);
        assert_eq!(backlog.add((1..=5).map(|id| alert(id, 0))), 2);
        // An update of a kept alert costs nothing.
        assert_eq!(backlog.add([alert(4, 9)]), 0);
        assert_eq!(backlog.len(), 3);
        assert_eq!(backlog.dropped(), 2);
        let ids: Vec<u64> = backlog.take().iter().map(|a| a.id).collect();
        assert_eq!(ids, [3, 4, 5]);
    }

    #[test]
    fn failures_are_reported_once_per_run_and_retried_once_per_interval() {
        let mut state = WriteState::default();
        let t0 = Instant::now();
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert!(state.due(t0));
        assert_eq!(state.succeeded(), None, "no run to end");

        assert!(state.keeping_up(t0, STALLED_AFTER));
        assert_eq!(state.failed(&failure(), at, t0), Failure::Began);
        assert!(!state.keeping_up(t0, STALLED_AFTER));
        assert!(!state.due(t0 + RETRY_INTERVAL / 2));
        assert!(state.due(t0 + RETRY_INTERVAL));
        let later = at + jiff::SignedDuration::from_secs(1);
        assert_eq!(
            state.failed(&failure(), later, t0 + RETRY_INTERVAL),
            Failure::Continues
        );

        let mut backlog = Backlog::default();
        backlog.add([alert(1, 0)]);
        let health = state.health(&backlog, t0);
        assert!(!health.ok);
        assert_eq!(health.since, Some(at), "the run began at the first failure");
        assert_eq!(health.failed_writes, 2);
        assert_eq!(health.backlog, 1);
        assert!(health.error.unwrap().contains("limit"));

        assert_eq!(
            state.succeeded(),
            Some(Recovered {
                failed_writes: 2,
                since: at
            })
        );
        assert!(state.due(t0));
        let health = state.health(&Backlog::default(), t0);
        assert!(health.ok && health.error.is_none() && health.since.is_none());
        assert_eq!(health.failed_writes, 2, "a total since start");

        assert_eq!(state.failed(&failure(), later, t0), Failure::Began);
        assert!(state.first_drop_of_run());
        assert!(!state.first_drop_of_run());
        state.retry_now();
        assert!(state.due(t0));
    }

    #[test]
    fn a_write_running_past_a_second_is_reported_stalled_from_its_start() {
        let mut state = WriteState::default();
        let t0 = Instant::now();
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let backlog = Backlog::default();
        state.began(t0, at);
        assert_eq!(
            state.health(&backlog, t0 + STALLED_AFTER / 2).stalled_since,
            None
        );
        let hung = STALLED_AFTER * 3;
        assert!(state.keeping_up(t0 + STALLED_AFTER, hung));
        let health = state.health(&backlog, t0 + STALLED_AFTER);
        assert_eq!(health.stalled_since, Some(at));
        assert!(health.ok, "slow, not failed");
        // Flow records stop waiting for it (see `StoreWriter::takes_flows`).
        assert!(!state.keeping_up(t0 + hung, hung));
        state.ended();
        assert!(state.keeping_up(t0 + STALLED_AFTER * 5, hung));
        assert_eq!(
            state.health(&backlog, t0 + STALLED_AFTER * 5).stalled_since,
            None
        );
    }

    #[test]
    fn the_report_serializes_as_documented() {
        let json = serde_json::to_value(StoreHealth::default()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "ok": true, "error": null, "since": null,
                "failed_writes": 0, "backlog": 0, "dropped": 0, "stalled_since": null
            })
        );
    }
}
