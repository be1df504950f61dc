//! Traffic history: every tick's counter deltas, summed per second and per
//! minute, read back as per-second rates.
//!
//! Two resolutions because they are kept for different times (see
//! [`Retention`]): per-second rows for the last hour cost ~1 MB, per-minute
//! rows for 30 days ~12 MB, per-second rows for 30 days would cost ~700 MB.

use std::{sync::atomic::Ordering, time::Duration};

use jiff::Timestamp;
use nta_common::{Counter, GlobalCounters, counters::COUNTER_COUNT};
use redb::{ReadableTable, TableDefinition};
use serde::Serialize;

use super::{META, QueryError, Store, StoreError};

/// Unix second → that second's counter deltas, see [`encode`].
pub(super) const HISTORY_SEC: TableDefinition<i64, &[u8]> = TableDefinition::new("history_sec");
/// Unix second of a minute's start → that minute's counter deltas.
pub(super) const HISTORY_MIN: TableDefinition<i64, &[u8]> = TableDefinition::new("history_min");
/// Key in the meta table of the per-second floor (see `Store::sec_floor`).
pub(super) const SEC_FLOOR_KEY: &str = "history_sec_floor";

/// Most points one history query returns: a chart does not need more, and
/// it bounds the work (and response size) of one request.
pub const MAX_HISTORY_POINTS: u64 = 10_000;

const SECS_PER_MIN: i64 = 60;

/// What one history series measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// A kernel counter, as a rate per second.
    Counter(Counter),
    /// `bytes` × 8, per second.
    Bits,
}

impl Metric {
    /// Every accepted name: the counter names, then the aliases.
    pub fn names() -> Vec<&'static str> {
        Counter::ALL
            .iter()
            .map(|c| c.name())
            .chain(["syn", "bits"])
            .collect()
    }

    fn value(self, row: &[u64; COUNTER_COUNT]) -> f64 {
        match self {
            Self::Counter(c) => row[c as usize] as f64,
            Self::Bits => row[Counter::Bytes as usize] as f64 * 8.0,
        }
    }
}

/// A metric name that is none of [`Metric::names`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metric `{name}` (expected one of {})", Metric::names().join(", "))]
pub struct UnknownMetric {
    /// The name as given.
    pub name: String,
}

impl std::str::FromStr for Metric {
    type Err = UnknownMetric;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "syn" => Ok(Self::Counter(Counter::TcpSyn)),
            "bits" => Ok(Self::Bits),
            _ => Counter::ALL
                .into_iter()
                .find(|c| c.name() == name)
                .map(Self::Counter)
                .ok_or_else(|| UnknownMetric {
                    name: name.to_owned(),
                }),
        }
    }
}

/// One series to read: `metric` between `since` and `until` (inclusive), in
/// buckets of `step_secs` seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    /// What to read.
    pub metric: Metric,
    pub since: Timestamp,
    pub until: Timestamp,
    pub step_secs: u64,
}

/// One bucket of a series: its start and the metric's mean rate per second.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryPoint {
    pub t: Timestamp,
    pub value: f64,
}

/// How long history is kept at each resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub seconds: Duration,
    pub minutes: Duration,
    /// Flow records.
    pub flows: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            seconds: Duration::from_secs(3600),
            minutes: Duration::from_secs(30 * 24 * 3600),
            flows: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Which table answers a query, and the bucket width it can give.
enum Resolution {
    Second { step: i64 },
    Minute { step: i64 },
}

impl Store {
    /// Adds one tick's counter deltas to the per-second row of `at`
    /// (truncated to the second) and to the row of its minute.
    ///
    /// Committed durably like alerts: a non-durable commit in redb keeps the
    /// pages it frees until the next durable one, so the file would grow
    /// between alert writes; one small fsync per tick is cheap.
    pub fn record_history(&self, at: Timestamp, deltas: &GlobalCounters) -> Result<(), StoreError> {
        let sec = at.as_second();
        let minute = sec.div_euclid(SECS_PER_MIN) * SECS_PER_MIN;
        let txn = self
            .db
            .begin_write()
            .map_err(self.db_err("writing history"))?;
        for (table, key) in [(HISTORY_SEC, sec), (HISTORY_MIN, minute)] {
            let mut table = txn
                .open_table(table)
                .map_err(self.db_err("writing history"))?;
            let mut row = match table.get(key).map_err(self.db_err("writing history"))? {
                Some(bytes) => decode(bytes.value()),
                None => [0; COUNTER_COUNT],
            };
            for (sum, delta) in row.iter_mut().zip(deltas.values) {
                *sum = sum.saturating_add(delta);
            }
            table
                .insert(key, encode(&row).as_slice())
                .map_err(self.db_err("writing history"))?;
        }
        txn.commit().map_err(self.db_err("writing history"))
    }

    /// The bucket width, in seconds, [`Store::history`] uses for `query`: its
    /// `step_secs` when the per-second table covers the range, else rounded
    /// up to whole minutes.
    pub fn history_step(&self, query: &HistoryQuery) -> u64 {
        match self.resolution(query) {
            Resolution::Second { step } | Resolution::Minute { step } => step.unsigned_abs(),
        }
    }

    /// `query.metric` from `since` to `until` as per-second rates.
    ///
    /// Buckets start at multiples of the step since the Unix epoch (so the
    /// first may start before `since`); each point is the bucket's sum
    /// divided by the step. Buckets without any stored row (the agent was not
    /// running) are left out rather than reported as zero traffic.
    ///
    /// Per-second rows answer when the step is under a minute and the range
    /// starts after the last prune of that table; otherwise per-minute rows
    /// answer, with the step rounded up to whole minutes (see
    /// [`Store::history_step`]).
    pub fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryPoint>, StoreError> {
        if query.step_secs == 0 {
            return Err(QueryError::ZeroStep.into());
        }
        if query.until < query.since {
            return Err(QueryError::UntilBeforeSince {
                since: query.since,
                until: query.until,
            }
            .into());
        }
        let (table, step, first_key) = match self.resolution(query) {
            Resolution::Second { step } => (HISTORY_SEC, step, query.since.as_second()),
            Resolution::Minute { step } => (
                HISTORY_MIN,
                step,
                query.since.as_second().div_euclid(SECS_PER_MIN) * SECS_PER_MIN,
            ),
        };
        let last_key = query.until.as_second();
        let buckets = (last_key.div_euclid(step) - first_key.div_euclid(step)).unsigned_abs() + 1;
        if buckets > MAX_HISTORY_POINTS {
            return Err(QueryError::TooManyPoints {
                points: buckets,
                step_secs: step.unsigned_abs(),
            }
            .into());
        }

        let table = self.read_table(table, "reading history")?;
        let mut points = Vec::new();
        // (bucket start, sum) of the bucket being filled; rows come in key order.
        let mut current: Option<(i64, f64)> = None;
        for row in table
            .range(first_key..=last_key)
            .map_err(self.db_err("reading history"))?
        {
            let (key, bytes) = row.map_err(self.db_err("reading history"))?;
            let bucket = key.value().div_euclid(step) * step;
            let value = query.metric.value(&decode(bytes.value()));
            match &mut current {
                Some((start, sum)) if *start == bucket => *sum += value,
                _ => {
                    points.extend(current.and_then(|(t, sum)| point(t, sum, step)));
                    current = Some((bucket, value));
                }
            }
        }
        points.extend(current.and_then(|(t, sum)| point(t, sum, step)));
        Ok(points)
    }

    /// Deletes per-second rows older than `retention.seconds` and per-minute
    /// rows older than `retention.minutes` (by the row's start time), counted
    /// back from `now`.
    pub fn prune(&self, now: Timestamp, retention: &Retention) -> Result<(), StoreError> {
        let now = now.as_second();
        let cutoff =
            |keep: Duration| now.saturating_sub(i64::try_from(keep.as_secs()).unwrap_or(i64::MAX));
        let sec_cutoff = cutoff(retention.seconds);
        let min_cutoff = cutoff(retention.minutes);
        let floor = sec_cutoff.max(self.sec_floor.load(Ordering::Relaxed));
        let txn = self
            .db
            .begin_write()
            .map_err(self.db_err("pruning history"))?;
        txn.open_table(HISTORY_SEC)
            .map_err(self.db_err("pruning history"))?
            .retain_in(..sec_cutoff, |_, _| false)
            .map_err(self.db_err("pruning history"))?;
        txn.open_table(HISTORY_MIN)
            .map_err(self.db_err("pruning history"))?
            .retain_in(..min_cutoff, |_, _| false)
            .map_err(self.db_err("pruning history"))?;
        txn.open_table(META)
            .map_err(self.db_err("pruning history"))?
            .insert(SEC_FLOOR_KEY, u64::try_from(floor).unwrap_or(0))
            .map_err(self.db_err("pruning history"))?;
        txn.commit().map_err(self.db_err("pruning history"))?;
        self.sec_floor.store(floor, Ordering::Relaxed);
        Ok(())
    }

    fn resolution(&self, query: &HistoryQuery) -> Resolution {
        let step = i64::try_from(query.step_secs.max(1)).unwrap_or(i64::MAX);
        let floor = self.sec_floor.load(Ordering::Relaxed);
        if step < SECS_PER_MIN && query.since.as_second() >= floor {
            Resolution::Second { step }
        } else {
            let minutes = step.saturating_add(SECS_PER_MIN - 1) / SECS_PER_MIN;
            Resolution::Minute {
                step: minutes.saturating_mul(SECS_PER_MIN),
            }
        }
    }
}

fn point(t: i64, sum: f64, step: i64) -> Option<HistoryPoint> {
    Some(HistoryPoint {
        t: Timestamp::from_second(t).ok()?,
        value: sum / step as f64,
    })
}

/// Counter values in [`Counter`] index order, little-endian `u64`s.
fn encode(row: &[u64; COUNTER_COUNT]) -> Vec<u8> {
    row.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Reads a row written by [`encode`]. Tolerates other lengths: a row from a
/// build with fewer counters reads the missing ones as zero, extra ones are
/// ignored, so adding a counter at the end does not need a new schema.
fn decode(bytes: &[u8]) -> [u64; COUNTER_COUNT] {
    let mut row = [0; COUNTER_COUNT];
    for (value, chunk) in row.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut le = [0; 8];
        le.copy_from_slice(chunk);
        *value = u64::from_le_bytes(le);
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::temp_store;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn deltas(pairs: &[(Counter, u64)]) -> GlobalCounters {
        let mut c = GlobalCounters::ZERO;
        for &(counter, v) in pairs {
            c.values[counter as usize] = v;
        }
        c
    }

    fn query(metric: &str, since: &str, until: &str, step_secs: u64) -> HistoryQuery {
        HistoryQuery {
            metric: metric.parse().unwrap(),
            since: ts(since),
            until: ts(until),
            step_secs,
        }
    }

    fn values(points: &[HistoryPoint]) -> Vec<f64> {
        points.iter().map(|p| p.value).collect()
    }

    #[test]
    fn two_records_in_the_same_second_add_up() {
        let (_dir, store) = temp_store();
        store
            .record_history(
                ts("2026-01-01T00:00:10.1Z"),
                &deltas(&[(Counter::Packets, 5)]),
            )
            .unwrap();
        store
            .record_history(
                ts("2026-01-01T00:00:10.9Z"),
                &deltas(&[(Counter::Packets, 7)]),
            )
            .unwrap();
        let points = store
            .history(&query(
                "packets",
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:59Z",
                1,
            ))
            .unwrap();
        assert_eq!(
            points,
            [HistoryPoint {
                t: ts("2026-01-01T00:00:10Z"),
                value: 12.0
            }]
        );
    }

    #[test]
    fn seconds_roll_up_into_their_minute() {
        let (_dir, store) = temp_store();
        for (t, n) in [
            ("2026-01-01T00:00:05Z", 60),
            ("2026-01-01T00:00:59Z", 60),
            ("2026-01-01T00:01:00Z", 600),
        ] {
            store
                .record_history(ts(t), &deltas(&[(Counter::Packets, n)]))
                .unwrap();
        }
        let points = store
            .history(&query(
                "packets",
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:01:59Z",
                60,
            ))
            .unwrap();
        assert_eq!(
            points,
            [
                HistoryPoint {
                    t: ts("2026-01-01T00:00:00Z"),
                    value: 2.0
                },
                HistoryPoint {
                    t: ts("2026-01-01T00:01:00Z"),
                    value: 10.0
                },
            ]
        );
    }

    #[test]
    fn history_gives_rates_per_second_over_each_step() {
        let (_dir, store) = temp_store();
        for s in 0..20 {
            let t = Timestamp::from_second(ts("2026-01-01T00:00:00Z").as_second() + s).unwrap();
            store
                .record_history(
                    t,
                    &deltas(&[(Counter::Packets, s as u64), (Counter::Bytes, 100)]),
                )
                .unwrap();
        }
        let q = query(
            "packets",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:19Z",
            10,
        );
        assert_eq!(store.history_step(&q), 10);
        let points = store.history(&q).unwrap();
        // 0+1+…+9 = 45 and 10+…+19 = 145, over 10 s each.
        assert_eq!(values(&points), [4.5, 14.5]);
        assert_eq!(points[1].t, ts("2026-01-01T00:00:10Z"));

        let bits = store
            .history(&query(
                "bits",
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:19Z",
                5,
            ))
            .unwrap();
        assert_eq!(values(&bits), [800.0; 4]);
    }

    #[test]
    fn syn_is_an_alias_for_tcp_syn() {
        let (_dir, store) = temp_store();
        store
            .record_history(ts("2026-01-01T00:00:00Z"), &deltas(&[(Counter::TcpSyn, 3)]))
            .unwrap();
        let q = |m| query(m, "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", 1);
        assert_eq!(
            store.history(&q("syn")).unwrap(),
            store.history(&q("tcp_syn")).unwrap()
        );
        assert_eq!(values(&store.history(&q("syn")).unwrap()), [3.0]);
    }

    #[test]
    fn unknown_metric_is_an_error_naming_it() {
        let err = "pakets".parse::<Metric>().expect_err("unknown metric");
        let msg = err.to_string();
        assert!(msg.contains("`pakets`") && msg.contains("packets"), "{msg}");
    }

    #[test]
    fn invalid_ranges_and_steps_are_refused() {
        let (_dir, store) = temp_store();
        let zero_step = query("packets", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", 0);
        assert!(matches!(
            store.history(&zero_step),
            Err(StoreError::Query(QueryError::ZeroStep))
        ));

        let backwards = query("packets", "2026-01-01T00:00:02Z", "2026-01-01T00:00:01Z", 1);
        assert!(matches!(
            store.history(&backwards),
            Err(StoreError::Query(QueryError::UntilBeforeSince { .. }))
        ));

        let three_hours_by_second =
            query("packets", "2026-01-01T00:00:00Z", "2026-01-01T03:00:00Z", 1);
        assert!(matches!(
            store.history(&three_hours_by_second),
            Err(StoreError::Query(QueryError::TooManyPoints {
                points: 10_801,
                step_secs: 1
            }))
        ));
    }

    #[test]
    fn ranges_before_the_pruned_seconds_are_answered_per_minute() {
        let (_dir, store) = temp_store();
        let now = ts("2026-01-01T02:00:00Z");
        store
            .record_history(
                ts("2026-01-01T00:30:10Z"),
                &deltas(&[(Counter::Packets, 120)]),
            )
            .unwrap();
        store.prune(now, &Retention::default()).unwrap();

        let old = query("packets", "2026-01-01T00:30:00Z", "2026-01-01T00:31:00Z", 1);
        assert_eq!(store.history_step(&old), 60);
        assert_eq!(values(&store.history(&old).unwrap()), [2.0]);

        let recent = query("packets", "2026-01-01T01:30:00Z", "2026-01-01T01:31:00Z", 1);
        assert_eq!(store.history_step(&recent), 1);
        assert_eq!(
            store.history_step(&query(
                "packets",
                "2026-01-01T01:30:00Z",
                "2026-01-01T01:31:00Z",
                90
            )),
            120
        );
    }

    #[test]
    fn prune_deletes_only_rows_older_than_retention() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nta.redb");
        let store = Store::open(&path).unwrap();
        let now = ts("2026-02-01T00:00:00Z");
        let retention = Retention {
            seconds: Duration::from_secs(3600),
            minutes: Duration::from_secs(24 * 3600),
            ..Retention::default()
        };
        for t in [
            "2026-01-30T00:00:00Z", // older than both
            "2026-01-31T12:00:00Z", // minutes kept, seconds pruned
            "2026-01-31T23:30:00Z", // both kept
        ] {
            store
                .record_history(ts(t), &deltas(&[(Counter::Packets, 60)]))
                .unwrap();
        }

        store.prune(now, &retention).unwrap();

        let rows = |table| {
            let txn = store.db.begin_read().unwrap();
            let t = txn.open_table(table).unwrap();
            t.iter()
                .unwrap()
                .map(|r| Timestamp::from_second(r.unwrap().0.value()).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(rows(HISTORY_SEC), [ts("2026-01-31T23:30:00Z")]);
        assert_eq!(
            rows(HISTORY_MIN),
            [ts("2026-01-31T12:00:00Z"), ts("2026-01-31T23:30:00Z")]
        );

        // The per-second floor survives a restart.
        drop(store);
        let store = Store::open(&path).unwrap();
        let q = query("packets", "2026-01-31T12:00:00Z", "2026-01-31T12:01:00Z", 1);
        assert_eq!(store.history_step(&q), 60);
        assert_eq!(values(&store.history(&q).unwrap()), [1.0]);
    }

    #[test]
    fn rows_of_another_width_decode_with_zeros() {
        let short = encode(&[7; COUNTER_COUNT])[..16].to_vec();
        let row = decode(&short);
        assert_eq!(&row[..2], &[7, 7]);
        assert!(row[2..].iter().all(|&v| v == 0));
    }
}
