//! Alerts by id: insert or replace, look up, list newest first.
//!
//! Alerts are stored as JSON (the same shape the API serves) so that a field
//! added to [`Alert`] with a serde default still reads old rows. Their size is
//! bounded by the detectors: evidence keeps at most
//! [`EVIDENCE_TOP_N`](crate::alert::EVIDENCE_TOP_N) ports and sources.
//!
//! Listing reads only the fields the filters need ([`AlertHead`]) and the
//! API serves the stored JSON as it is: decoding every alert of a page and
//! encoding it again was most of a request's time. So a field added to
//! [`Alert`] later must be one the API may leave out of old rows (an
//! optional one, skipped when absent), as every field added so far is.

use std::{net::IpAddr, ops::ControlFlow, sync::atomic::Ordering};

use jiff::Timestamp;
use redb::{ReadableTable, TableDefinition};
use serde::Deserialize;

use super::{QueryError, Store, StoreError};
use crate::alert::{Alert, AlertKind, AlertState};

/// Alert id → the alert as JSON.
pub(super) const ALERTS: TableDefinition<u64, &[u8]> = TableDefinition::new("alerts");

/// (kind code, alert id), one row per alert: a `kind=` query walks the
/// alerts of its kind only, so a rare kind costs no more than a common one
/// (at a million alerts, scanning for 1 in 100 000 took 6 ms a page).
/// Rebuilt when the store is opened if its row count differs from
/// [`ALERTS`]' (a store from before it, or written by such an nta since).
pub(super) const ALERTS_BY_KIND: TableDefinition<(u8, u64), ()> =
    TableDefinition::new("alerts_by_kind");

/// A kind's code in [`ALERTS_BY_KIND`]. Stored: never renumber.
const fn kind_code(kind: AlertKind) -> u8 {
    match kind {
        AlertKind::PortScan => 1,
        AlertKind::SynFlood => 2,
        AlertKind::Volumetric => 3,
        AlertKind::Signature => 4,
        AlertKind::DnsTunnel => 5,
        AlertKind::Sweep => 6,
        AlertKind::UdpFlood => 7,
        AlertKind::IcmpFlood => 8,
        AlertKind::TcpFlood => 9,
        AlertKind::FragmentFlood => 10,
        AlertKind::TrafficFlood => 11,
        AlertKind::Reflection => 12,
    }
}

/// Most alerts one query returns: keeps one API response (and the time the
/// read transaction stays open) bounded.
pub const MAX_ALERT_LIMIT: usize = 1000;

/// Rows a page may examine per alert it may return (its `limit`): a filter
/// that matches rarely then costs at most ten pages' worth of decoding per
/// request (~1 ms for a page of 100 here) instead of a scan of the whole
/// table (seconds at a million alerts). Such a page comes back short, even
/// empty, with a `next` cursor to go on from.
pub const SCAN_ROWS_PER_ALERT: usize = 10;

/// Which alerts to list and where to resume.
///
/// Alerts are listed newest first (descending id; ids increase with the time
/// an alert was opened). Every filter that is set must match:
///
/// - `kind`, `state`: equal.
/// - `src`, `dst`: the alert's address is exactly this one (an alert without
///   that address never matches).
/// - `dst_port`: the alert names this destination port, as its own
///   `dst_port` or among its evidence's busiest ports (a port scan's).
/// - `since`, `until`: the alert's active period `first_seen..=last_seen`
///   overlaps the queried period: it matches `since` if `last_seen >= since`
///   and `until` if `first_seen <= until`. An alert still open at `since`
///   therefore matches even if it started long before.
///
/// `limit` (1..=[`MAX_ALERT_LIMIT`]) caps the page; `cursor` resumes after a
/// previous page: only alerts with an id below it are listed. Pass the
/// previous page's [`AlertPage::next`]. A page examines at most
/// `limit` × [`SCAN_ROWS_PER_ALERT`] rows.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertQuery {
    pub kind: Option<AlertKind>,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub dst_port: Option<u16>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub state: Option<AlertState>,
    pub limit: usize,
    /// Exclusive upper bound on the ids listed.
    pub cursor: Option<u64>,
}

impl Default for AlertQuery {
    fn default() -> Self {
        Self {
            kind: None,
            src: None,
            dst: None,
            dst_port: None,
            since: None,
            until: None,
            state: None,
            limit: 100,
            cursor: None,
        }
    }
}

impl AlertQuery {
    /// Whether an alert passes every filter (the cursor and limit aside).
    fn matches(&self, alert: &AlertHead) -> bool {
        self.kind.is_none_or(|k| alert.kind == k)
            && self.state.is_none_or(|s| alert.state == s)
            && self.src.is_none_or(|a| alert.src == Some(a))
            && self.dst.is_none_or(|a| alert.dst == Some(a))
            && self.dst_port.is_none_or(|p| {
                alert.dst_port == Some(p) || alert.evidence.top_ports.iter().any(|c| c.value == p)
            })
            && self.since.is_none_or(|t| alert.last_seen >= t)
            && self.until.is_none_or(|t| alert.first_seen <= t)
    }
}

/// The fields of a stored alert that [`AlertQuery`] filters on. Decoding
/// only these skips the rest of the row without allocating for it.
#[derive(Debug, Deserialize)]
struct AlertHead {
    kind: AlertKind,
    state: AlertState,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    dst_port: Option<u16>,
    first_seen: Timestamp,
    last_seen: Timestamp,
    evidence: EvidenceHead,
}

#[derive(Debug, Deserialize)]
struct EvidenceHead {
    #[serde(default)]
    top_ports: Vec<PortHead>,
}

#[derive(Debug, Deserialize)]
struct PortHead {
    value: u16,
}

/// One page of alerts, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPage<T = Alert> {
    pub alerts: Vec<T>,
    /// Cursor for the next page when more alerts may match: the last
    /// returned id, or the last id examined when the page stopped at its
    /// scan bound (then it may be short, even empty). Every id at or above
    /// it has been looked at. `None` on the last page.
    pub next: Option<u64>,
}

/// A page being filled, one row (newest first) at a time.
struct Scan<'q, T, F> {
    query: &'q AlertQuery,
    max_rows: usize,
    keep: F,
    examined: usize,
    alerts: Vec<T>,
    last_examined: Option<u64>,
    last_kept: Option<u64>,
    next: Option<u64>,
}

impl<T, F: Fn(u64, &[u8]) -> Result<T, StoreError>> Scan<'_, T, F> {
    /// Looks at one row; `Break` once the page is complete.
    fn visit(
        &mut self,
        store: &Store,
        id: u64,
        json: &[u8],
    ) -> Result<ControlFlow<()>, StoreError> {
        if self.examined == self.max_rows {
            // Rows remain unexamined: the next page goes on below the last
            // one that was.
            self.next = self.last_examined;
            return Ok(ControlFlow::Break(()));
        }
        self.examined += 1;
        if !self.query.matches(&store.decode_head(id, json)?) {
            self.last_examined = Some(id);
            return Ok(ControlFlow::Continue(()));
        }
        if self.alerts.len() == self.query.limit {
            self.next = self.last_kept;
            return Ok(ControlFlow::Break(()));
        }
        self.alerts.push((self.keep)(id, json)?);
        self.last_examined = Some(id);
        self.last_kept = Some(id);
        Ok(ControlFlow::Continue(()))
    }
}

/// A stored alert as JSON, checked to be one (its filter fields decode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertJson(Vec<u8>);

impl AlertJson {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl Store {
    /// Next unused alert id. Ids increase and continue after the largest
    /// stored id across restarts; an id handed out but never stored may be
    /// handed out again after a restart, which is harmless.
    pub fn allocate_alert_id(&self) -> u64 {
        self.next_alert_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Inserts or replaces `alerts` (by id) in one transaction, committed
    /// durably: once this returns they survive a crash or `kill -9`.
    pub fn put_alerts(&self, alerts: &[Alert]) -> Result<(), StoreError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut txn = self
            .db
            .begin_write()
            .map_err(self.db_err("writing alerts"))?;
        // redb's default, stated because the guarantee above depends on it.
        txn.set_durability(redb::Durability::Immediate)
            .map_err(self.db_err("writing alerts"))?;
        {
            let mut table = txn
                .open_table(ALERTS)
                .map_err(self.db_err("writing alerts"))?;
            let mut by_kind = txn
                .open_table(ALERTS_BY_KIND)
                .map_err(self.db_err("writing alerts"))?;
            for alert in alerts {
                self.write_alert(&mut table, alert, "writing alerts")?;
                by_kind
                    .insert((kind_code(alert.kind), alert.id), ())
                    .map_err(self.db_err("writing alerts"))?;
            }
        }
        txn.commit().map_err(self.db_err("writing alerts"))?;
        // An alert stored with an id this store did not hand out (e.g. by a
        // caller that allocated elsewhere) must not be reused either.
        if let Some(max) = alerts.iter().map(|a| a.id).max() {
            self.next_alert_id
                .fetch_max(max.saturating_add(1), Ordering::Relaxed);
        }
        Ok(())
    }

    /// The alert with this id, if stored.
    pub fn alert(&self, id: u64) -> Result<Option<Alert>, StoreError> {
        self.alert_row(id, |json| self.decode_alert(id, json))
    }

    /// The alert with this id as stored, in JSON, if stored.
    pub fn alert_json(&self, id: u64) -> Result<Option<AlertJson>, StoreError> {
        self.alert_row(id, |json| {
            self.decode_head(id, json)?;
            Ok(AlertJson(json.to_vec()))
        })
    }

    /// The row of alert `id`, if stored, through `read`.
    fn alert_row<T>(
        &self,
        id: u64,
        read: impl FnOnce(&[u8]) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let table = self.read_table(ALERTS, "reading alerts")?;
        let row = table.get(id).map_err(self.db_err("reading alerts"))?;
        row.map(|v| read(v.value())).transpose()
    }

    /// One page of the alerts matching `query`, newest first; see
    /// [`AlertQuery`] for the semantics of each filter and the cursor.
    ///
    /// Walks the table backwards from the cursor and stops once it has one
    /// match more than `limit` (which tells whether another page follows),
    /// or once it has examined `limit` × [`SCAN_ROWS_PER_ALERT`] rows.
    pub fn alerts(&self, query: &AlertQuery) -> Result<AlertPage, StoreError> {
        self.alerts_scanning(
            query,
            query.limit.saturating_mul(SCAN_ROWS_PER_ALERT),
            |id, json| self.decode_alert(id, json),
        )
    }

    /// [`Store::alerts`], each alert as its stored JSON: what the API
    /// serves, without decoding and encoding each alert again.
    pub fn alerts_json(&self, query: &AlertQuery) -> Result<AlertPage<AlertJson>, StoreError> {
        self.alerts_scanning(
            query,
            query.limit.saturating_mul(SCAN_ROWS_PER_ALERT),
            |_, json| Ok(AlertJson(json.to_vec())),
        )
    }

    /// One page, examining at most `max_rows` rows; `keep` turns each
    /// matching row (id, JSON) into what the page holds.
    fn alerts_scanning<T>(
        &self,
        query: &AlertQuery,
        max_rows: usize,
        keep: impl Fn(u64, &[u8]) -> Result<T, StoreError>,
    ) -> Result<AlertPage<T>, StoreError> {
        if !(1..=MAX_ALERT_LIMIT).contains(&query.limit) {
            return Err(QueryError::InvalidLimit { limit: query.limit }.into());
        }
        let txn = self
            .db
            .begin_read()
            .map_err(self.db_err("reading alerts"))?;
        let table = txn
            .open_table(ALERTS)
            .map_err(self.db_err("reading alerts"))?;
        let mut scan = Scan {
            query,
            max_rows,
            keep,
            examined: 0,
            alerts: Vec::new(),
            last_examined: None,
            last_kept: None,
            next: None,
        };
        match query.kind {
            None => {
                let rows = match query.cursor {
                    Some(cursor) => table.range(..cursor),
                    None => table.range::<u64>(..),
                }
                .map_err(self.db_err("reading alerts"))?;
                for row in rows.rev() {
                    let (id, json) = row.map_err(self.db_err("reading alerts"))?;
                    if scan.visit(self, id.value(), json.value())?.is_break() {
                        break;
                    }
                }
            }
            Some(kind) => {
                let code = kind_code(kind);
                let index = txn
                    .open_table(ALERTS_BY_KIND)
                    .map_err(self.db_err("reading alerts"))?;
                let keys = match query.cursor {
                    Some(cursor) => index.range((code, 0)..(code, cursor)),
                    None => index.range((code, 0)..=(code, u64::MAX)),
                }
                .map_err(self.db_err("reading alerts"))?;
                for key in keys.rev() {
                    let id = key.map_err(self.db_err("reading alerts"))?.0.value().1;
                    // Every indexed id has its row; a missing one is skipped.
                    let Some(json) = table.get(id).map_err(self.db_err("reading alerts"))? else {
                        continue;
                    };
                    if scan.visit(self, id, json.value())?.is_break() {
                        break;
                    }
                }
            }
        }
        let Scan { alerts, next, .. } = scan;
        Ok(AlertPage { alerts, next })
    }

    /// Closes the alerts a previous run left open (it cannot tell when their
    /// condition ended): state `Closed`, `closed_at = at`. Returns them, so
    /// the caller can notify. Meant for startup; it reads the whole table.
    pub fn close_open_alerts(&self, at: Timestamp) -> Result<Vec<Alert>, StoreError> {
        let txn = self
            .db
            .begin_write()
            .map_err(self.db_err("closing alerts"))?;
        let mut closed = Vec::new();
        {
            let mut table = txn
                .open_table(ALERTS)
                .map_err(self.db_err("closing alerts"))?;
            for row in table.iter().map_err(self.db_err("closing alerts"))? {
                let (id, json) = row.map_err(self.db_err("closing alerts"))?;
                let mut alert = self.decode_alert(id.value(), json.value())?;
                if alert.state == AlertState::Open {
                    alert.state = AlertState::Closed;
                    alert.closed_at = Some(at);
                    closed.push(alert);
                }
            }
            for alert in &closed {
                self.write_alert(&mut table, alert, "closing alerts")?;
            }
        }
        txn.commit().map_err(self.db_err("closing alerts"))?;
        Ok(closed)
    }

    /// Builds [`ALERTS_BY_KIND`] anew unless it has a row per alert: a
    /// store from before the index has none, and one that an older nta
    /// wrote to since misses that nta's alerts. Rows that do not decode are
    /// left out of it (listing all alerts still reports them).
    pub(super) fn index_alerts_by_kind(
        &self,
        txn: &redb::WriteTransaction,
    ) -> Result<(), StoreError> {
        use redb::ReadableTableMetadata as _;
        let indexing = "indexing alerts by kind";
        let table = txn.open_table(ALERTS).map_err(self.db_err(indexing))?;
        let alerts = table.len().map_err(self.db_err(indexing))?;
        let indexed = txn
            .open_table(ALERTS_BY_KIND)
            .map_err(self.db_err(indexing))?
            .len()
            .map_err(self.db_err(indexing))?;
        if alerts == indexed {
            return Ok(());
        }
        txn.delete_table(ALERTS_BY_KIND)
            .map_err(self.db_err(indexing))?;
        let mut index = txn
            .open_table(ALERTS_BY_KIND)
            .map_err(self.db_err(indexing))?;
        for row in table.iter().map_err(self.db_err(indexing))? {
            let (id, json) = row.map_err(self.db_err(indexing))?;
            let id = id.value();
            if let Ok(head) = self.decode_head(id, json.value()) {
                index
                    .insert((kind_code(head.kind), id), ())
                    .map_err(self.db_err(indexing))?;
            }
        }
        Ok(())
    }

    /// Stores `alert` as JSON under its id, in a transaction's table.
    fn write_alert(
        &self,
        table: &mut redb::Table<'_, u64, &'static [u8]>,
        alert: &Alert,
        doing: &'static str,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_vec(alert).map_err(|source| StoreError::CorruptAlert {
            path: self.path.clone(),
            id: alert.id,
            source,
        })?;
        table
            .insert(alert.id, json.as_slice())
            .map_err(self.db_err(doing))?;
        Ok(())
    }

    fn decode_head(&self, id: u64, json: &[u8]) -> Result<AlertHead, StoreError> {
        serde_json::from_slice(json).map_err(|source| StoreError::CorruptAlert {
            path: self.path.clone(),
            id,
            source,
        })
    }

    fn decode_alert(&self, id: u64, json: &[u8]) -> Result<Alert, StoreError> {
        serde_json::from_slice(json).map_err(|source| StoreError::CorruptAlert {
            path: self.path.clone(),
            id,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{alert::fixtures, store::tests::temp_store};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn alert(id: u64, kind: AlertKind, src: &str, first: &str, last: &str) -> Alert {
        Alert {
            src: Some(src.parse().unwrap()),
            dst: Some("10.0.0.1".parse().unwrap()),
            first_seen: ts(first),
            last_seen: ts(last),
            packets: 100 * id,
            ..fixtures::alert(id, kind)
        }
    }

    /// Ten alerts, ids 1..=10, one minute apart, each lasting 30 s; even ids
    /// are port scans from .2, odd ids SYN floods from .3.
    fn ten_alerts() -> Vec<Alert> {
        (1..=10)
            .map(|id| {
                let (kind, src) = if id % 2 == 0 {
                    (AlertKind::PortScan, "198.18.0.2")
                } else {
                    (AlertKind::SynFlood, "198.18.0.3")
                };
                let first = format!("2026-01-01T00:{id:02}:00Z");
                let last = format!("2026-01-01T00:{id:02}:30Z");
                alert(id, kind, src, &first, &last)
            })
            .collect()
    }

    fn ids(page: &AlertPage) -> Vec<u64> {
        page.alerts.iter().map(|a| a.id).collect()
    }

    /// Every page of `query` from `fetch`, following the cursor: each
    /// page's ids and its `next`.
    fn pages(
        mut query: AlertQuery,
        fetch: impl Fn(&AlertQuery) -> AlertPage,
    ) -> Vec<(Vec<u64>, Option<u64>)> {
        let mut pages = Vec::new();
        loop {
            let page = fetch(&query);
            pages.push((ids(&page), page.next));
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => return pages,
            }
            assert!(pages.len() < 10, "{pages:?}");
        }
    }

    #[test]
    fn alerts_round_trip() {
        let (_dir, store) = temp_store();
        let a = alert(
            1,
            AlertKind::PortScan,
            "198.18.0.2",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:05Z",
        );
        store.put_alerts(std::slice::from_ref(&a)).unwrap();
        assert_eq!(store.alert(1).unwrap(), Some(a));
        assert_eq!(store.alert(2).unwrap(), None);
    }

    #[test]
    fn put_replaces_an_alert_with_the_same_id() {
        let (_dir, store) = temp_store();
        let mut a = alert(
            1,
            AlertKind::PortScan,
            "198.18.0.2",
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:05Z",
        );
        store.put_alerts(std::slice::from_ref(&a)).unwrap();
        a.packets = 999;
        a.last_seen = ts("2026-01-01T00:01:00Z");
        store.put_alerts(std::slice::from_ref(&a)).unwrap();
        assert_eq!(store.alert(1).unwrap(), Some(a));
        assert_eq!(
            store.alerts(&AlertQuery::default()).unwrap().alerts.len(),
            1
        );
    }

    #[test]
    fn alerts_are_listed_newest_first_and_paginate_with_the_cursor() {
        let (_dir, store) = temp_store();
        store.put_alerts(&ten_alerts()).unwrap();

        let query = AlertQuery {
            limit: 4,
            ..AlertQuery::default()
        };
        assert_eq!(
            pages(query, |q| store.alerts(q).unwrap()),
            [
                (vec![10, 9, 8, 7], Some(7)),
                (vec![6, 5, 4, 3], Some(3)),
                (vec![2, 1], None),
            ]
        );
    }

    #[test]
    fn a_page_that_exactly_exhausts_the_matches_has_no_next() {
        let (_dir, store) = temp_store();
        store.put_alerts(&ten_alerts()).unwrap();
        let page = store
            .alerts(&AlertQuery {
                limit: 10,
                ..AlertQuery::default()
            })
            .unwrap();
        assert_eq!(page.alerts.len(), 10);
        assert_eq!(page.next, None);
    }

    #[test]
    fn pagination_with_a_filter_skips_non_matching_alerts() {
        let (_dir, store) = temp_store();
        store.put_alerts(&ten_alerts()).unwrap();
        let query = AlertQuery {
            kind: Some(AlertKind::PortScan),
            limit: 3,
            ..AlertQuery::default()
        };
        assert_eq!(
            pages(query, |q| store.alerts(q).unwrap()),
            [(vec![10, 8, 6], Some(6)), (vec![4, 2], None)]
        );
    }

    #[test]
    fn a_rare_match_is_reached_through_short_pages_each_examining_a_bounded_number_of_rows() {
        let (_dir, store) = temp_store();
        let mut alerts = ten_alerts();
        let rare: IpAddr = "198.18.0.99".parse().unwrap();
        alerts[0].src = Some(rare);
        alerts[6].src = Some(rare);
        store.put_alerts(&alerts).unwrap();
        let query = AlertQuery {
            src: Some(rare),
            limit: 1,
            ..AlertQuery::default()
        };
        // Three rows a page: 10 9 8 | 7 6 5 | 4 3 2 | 1.
        let scan = |q: &AlertQuery| {
            store
                .alerts_scanning(q, 3, |id, json| store.decode_alert(id, json))
                .unwrap()
        };
        assert_eq!(
            pages(query.clone(), scan),
            [
                (vec![], Some(8)),
                (vec![7], Some(5)),
                (vec![], Some(2)),
                (vec![1], None),
            ]
        );
        // The public bound, ten rows per alert of the limit, reaches the
        // second match: the page is full and says so.
        let page = store.alerts(&query).unwrap();
        assert_eq!((ids(&page), page.next), (vec![7], Some(7)));
    }

    #[test]
    fn a_rare_kind_is_found_through_the_index_without_examining_other_kinds() {
        let (_dir, store) = temp_store();
        let mut alerts = ten_alerts();
        alerts[0].kind = AlertKind::DnsTunnel;
        alerts[6].kind = AlertKind::DnsTunnel;
        store.put_alerts(&alerts).unwrap();
        let query = AlertQuery {
            kind: Some(AlertKind::DnsTunnel),
            limit: 1,
            ..AlertQuery::default()
        };
        // Two rows examined at most: a scan of the table would stop at 10 9.
        let scan = |q: &AlertQuery| {
            store
                .alerts_scanning(q, 2, |id, json| store.decode_alert(id, json))
                .unwrap()
        };
        assert_eq!(pages(query, scan), [(vec![7], Some(7)), (vec![1], None)]);
    }

    #[test]
    fn the_kind_index_is_rebuilt_when_it_misses_alerts() {
        let (dir, store) = temp_store();
        store.put_alerts(&ten_alerts()).unwrap();
        // As a store from before the index, or written by such an nta.
        let txn = store.db.begin_write().unwrap();
        txn.delete_table(ALERTS_BY_KIND).unwrap();
        txn.open_table(ALERTS_BY_KIND)
            .unwrap()
            .insert((kind_code(AlertKind::PortScan), 10), ())
            .unwrap();
        txn.commit().unwrap();
        let kind = |store: &Store| {
            ids(&store
                .alerts(&AlertQuery {
                    kind: Some(AlertKind::SynFlood),
                    ..AlertQuery::default()
                })
                .unwrap())
        };
        assert_eq!(kind(&store), Vec::<u64>::new(), "the stale index");
        let path = store.path().to_owned();
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(kind(&store), [9, 7, 5, 3, 1]);
        drop(dir);
    }

    #[test]
    fn a_page_stopped_by_the_bound_still_returns_what_it_found() {
        let (_dir, store) = temp_store();
        store.put_alerts(&ten_alerts()).unwrap();
        let query = AlertQuery {
            src: Some("198.18.0.2".parse().unwrap()),
            limit: 5,
            ..AlertQuery::default()
        };
        let page = store
            .alerts_scanning(&query, 5, |id, json| store.decode_alert(id, json))
            .unwrap();
        assert_eq!((ids(&page), page.next), (vec![10, 8, 6], Some(6)));
        let page = store
            .alerts_scanning(&query, 6, |id, json| store.decode_alert(id, json))
            .unwrap();
        assert_eq!((ids(&page), page.next), (vec![10, 8, 6], Some(5)));
    }

    #[test]
    fn the_json_page_is_the_same_page_with_each_alert_as_stored() {
        let (_dir, store) = temp_store();
        store.put_alerts(&ten_alerts()).unwrap();
        let query = AlertQuery {
            kind: Some(AlertKind::SynFlood),
            limit: 3,
            ..AlertQuery::default()
        };
        let page = store.alerts(&query).unwrap();
        let json = store.alerts_json(&query).unwrap();
        assert_eq!(json.next, page.next);
        let decoded: Vec<Alert> = json
            .alerts
            .iter()
            .map(|a| serde_json::from_slice(a.as_bytes()).unwrap())
            .collect();
        assert_eq!(decoded, page.alerts);
        let one = store.alert_json(9).unwrap().unwrap();
        assert_eq!(one.as_bytes(), json.alerts[0].as_bytes());
        assert_eq!(store.alert_json(11).unwrap(), None);
    }

    #[test]
    fn a_row_that_is_not_an_alert_is_reported_not_served() {
        let (_dir, store) = temp_store();
        store.put_alerts(&ten_alerts()).unwrap();
        let txn = store.db.begin_write().unwrap();
        txn.open_table(ALERTS)
            .unwrap()
            .insert(11, br#"{"id": 11}"#.as_slice())
            .unwrap();
        txn.commit().unwrap();
        let error = store.alerts_json(&AlertQuery::default()).unwrap_err();
        assert!(
            matches!(error, StoreError::CorruptAlert { id: 11, .. }),
            "{error}"
        );
        assert!(matches!(
            store.alert_json(11),
            Err(StoreError::CorruptAlert { id: 11, .. })
        ));
    }

    #[test]
    fn kind_filter() {
        let (_dir, store) = temp_store();
        store.put_alerts(&ten_alerts()).unwrap();
        let page = store
            .alerts(&AlertQuery {
                kind: Some(AlertKind::SynFlood),
                ..AlertQuery::default()
            })
            .unwrap();
        assert_eq!(ids(&page), [9, 7, 5, 3, 1]);
        let none = store
            .alerts(&AlertQuery {
                kind: Some(AlertKind::Volumetric),
                ..AlertQuery::default()
            })
            .unwrap();
        assert!(none.alerts.is_empty());
    }

    #[test]
    fn src_and_dst_filters_match_exact_addresses() {
        let (_dir, store) = temp_store();
        let mut alerts = ten_alerts();
        alerts[0].dst = Some("2001:db8::1".parse().unwrap());
        alerts[1].dst = None;
        store.put_alerts(&alerts).unwrap();

        let by_src = store
            .alerts(&AlertQuery {
                src: Some("198.18.0.2".parse().unwrap()),
                ..AlertQuery::default()
            })
            .unwrap();
        assert_eq!(ids(&by_src), [10, 8, 6, 4, 2]);

        let by_dst = store
            .alerts(&AlertQuery {
                dst: Some("2001:db8::1".parse().unwrap()),
                ..AlertQuery::default()
            })
            .unwrap();
        assert_eq!(ids(&by_dst), [1]);

        let by_other_dst = store
            .alerts(&AlertQuery {
                dst: Some("10.0.0.1".parse().unwrap()),
                ..AlertQuery::default()
            })
            .unwrap();
        assert_eq!(ids(&by_other_dst), [10, 9, 8, 7, 6, 5, 4, 3]);
    }

    #[test]
    fn since_and_until_select_alerts_active_in_the_period() {
        let (_dir, store) = temp_store();
        store.put_alerts(&ten_alerts()).unwrap();

        // Alert 3 ran 00:03:00..00:03:30: still active at 00:03:15.
        let since = store
            .alerts(&AlertQuery {
                since: Some(ts("2026-01-01T00:03:15Z")),
                ..AlertQuery::default()
            })
            .unwrap();
        assert_eq!(ids(&since), [10, 9, 8, 7, 6, 5, 4, 3]);

        let until = store
            .alerts(&AlertQuery {
                until: Some(ts("2026-01-01T00:02:00Z")),
                ..AlertQuery::default()
            })
            .unwrap();
        assert_eq!(ids(&until), [2, 1]);

        let between = store
            .alerts(&AlertQuery {
                since: Some(ts("2026-01-01T00:04:45Z")),
                until: Some(ts("2026-01-01T00:06:10Z")),
                ..AlertQuery::default()
            })
            .unwrap();
        assert_eq!(ids(&between), [6, 5]);
    }

    #[test]
    fn state_filter() {
        let (_dir, store) = temp_store();
        let mut alerts = ten_alerts();
        for a in alerts.iter_mut().take(3) {
            a.state = AlertState::Closed;
        }
        store.put_alerts(&alerts).unwrap();
        let closed = store
            .alerts(&AlertQuery {
                state: Some(AlertState::Closed),
                ..AlertQuery::default()
            })
            .unwrap();
        assert_eq!(ids(&closed), [3, 2, 1]);
        let open = store
            .alerts(&AlertQuery {
                state: Some(AlertState::Open),
                ..AlertQuery::default()
            })
            .unwrap();
        assert_eq!(open.alerts.len(), 7);
    }

    #[test]
    fn limit_must_be_between_1_and_1000() {
        let (_dir, store) = temp_store();
        store.put_alerts(&ten_alerts()).unwrap();
        for limit in [0, MAX_ALERT_LIMIT + 1] {
            let err = store
                .alerts(&AlertQuery {
                    limit,
                    ..AlertQuery::default()
                })
                .expect_err("limit out of range");
            assert!(err.to_string().contains(&format!("got {limit}")), "{err}");
        }
        for limit in [1, MAX_ALERT_LIMIT] {
            let page = store
                .alerts(&AlertQuery {
                    limit,
                    ..AlertQuery::default()
                })
                .unwrap();
            assert_eq!(page.alerts.len(), limit.min(10));
        }
    }

    #[test]
    fn close_open_alerts_closes_only_open_ones() {
        let (_dir, store) = temp_store();
        let mut alerts = ten_alerts();
        alerts[0].state = AlertState::Closed;
        alerts[0].closed_at = Some(ts("2026-01-01T00:01:40Z"));
        store.put_alerts(&alerts).unwrap();
        let at = ts("2026-01-02T00:00:00Z");

        let closed = store.close_open_alerts(at).unwrap();

        assert_eq!(closed.len(), 9);
        assert!(
            closed
                .iter()
                .all(|a| a.state == AlertState::Closed && a.closed_at == Some(at))
        );
        let stored = store.alert(5).unwrap().unwrap();
        assert_eq!(stored.state, AlertState::Closed);
        assert_eq!(stored.closed_at, Some(at));
        assert_eq!(
            store.alert(1).unwrap().unwrap().closed_at,
            Some(ts("2026-01-01T00:01:40Z"))
        );
        assert!(store.close_open_alerts(at).unwrap().is_empty());
    }

    #[test]
    fn ids_increase_and_continue_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nta.redb");
        {
            let store = Store::open(&path).unwrap();
            assert_eq!(store.allocate_alert_id(), 1);
            assert_eq!(store.allocate_alert_id(), 2);
            store
                .put_alerts(&[alert(
                    2,
                    AlertKind::PortScan,
                    "198.18.0.2",
                    "2026-01-01T00:00:00Z",
                    "2026-01-01T00:00:01Z",
                )])
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.allocate_alert_id(), 3);
        assert_eq!(store.allocate_alert_id(), 4);
    }

    #[test]
    fn ids_skip_past_alerts_stored_with_larger_ids() {
        let (_dir, store) = temp_store();
        store
            .put_alerts(&[alert(
                41,
                AlertKind::PortScan,
                "198.18.0.2",
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:01Z",
            )])
            .unwrap();
        assert_eq!(store.allocate_alert_id(), 42);
    }

    /// Set in the child process of [`alerts_survive_the_process_being_killed`]:
    /// the store path it writes to before aborting.
    const KILLED_CHILD_ENV: &str = "NTA_TEST_STORE_KILLED_CHILD";

    #[test]
    fn alerts_survive_the_process_being_killed() {
        if let Some(path) = std::env::var_os(KILLED_CHILD_ENV) {
            let store = Store::open(std::path::Path::new(&path)).unwrap();
            store.put_alerts(&ten_alerts()).unwrap();
            // No destructors, no clean close of the database: what `kill -9`
            // right after `put_alerts` returns leaves behind.
            std::process::abort();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nta.redb");
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::alerts::tests::alerts_survive_the_process_being_killed",
                "--test-threads=1",
            ])
            .env(KILLED_CHILD_ENV, &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "the child should have aborted");

        let store = Store::open(&path).expect("reopen after a crash");
        let page = store.alerts(&AlertQuery::default()).unwrap();
        assert_eq!(page.alerts.len(), 10);
        assert_eq!(store.allocate_alert_id(), 11);
    }

    /// Set in the child process of
    /// [`writes_resume_once_the_file_can_grow_again`]: the store path.
    const FULL_CHILD_ENV: &str = "NTA_TEST_STORE_FULL_CHILD";

    /// Limits how large this process may make a file (RLIMIT_FSIZE); a
    /// write past it fails with EFBIG, as a write to a full disk fails
    /// with ENOSPC.
    fn limit_file_size(bytes: u64) {
        let limit = libc::rlimit {
            rlim_cur: bytes,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: plain system calls on this process's own settings.
        unsafe {
            // A write past the limit then fails instead of killing us.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
        }
    }

    /// A batch of 100 alerts from `first`.
    fn hundred(first: u64) -> Vec<Alert> {
        (first..first + 100)
            .map(|id| {
                alert(
                    id,
                    AlertKind::Volumetric,
                    "198.18.0.2",
                    "2026-01-01T00:00:00Z",
                    "2026-01-01T00:00:01Z",
                )
            })
            .collect()
    }

    #[test]
    fn writes_resume_once_the_file_can_grow_again() {
        let Some(path) = std::env::var_os(FULL_CHILD_ENV) else {
            // In a child process: the file size limit is process-wide and
            // would fail the other tests' writes.
            let dir = tempfile::tempdir().unwrap();
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "store::alerts::tests::writes_resume_once_the_file_can_grow_again",
                    "--test-threads=1",
                    "--nocapture",
                ])
                .env(FULL_CHILD_ENV, dir.path().join("nta.redb"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "child failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        };
        let store = Store::open(std::path::Path::new(&path)).unwrap();
        store.put_alerts(&hundred(1)).unwrap();
        limit_file_size(store.size_bytes());

        // Bounded: the file has a few MB of free pages at most.
        let mut next = 101;
        let error = loop {
            assert!(next < 1_000_000, "the file never had to grow");
            match store.with_recovery(|s| s.put_alerts(&hundred(next))) {
                Ok(()) => next += 100,
                Err(error) => break error,
            }
        };
        assert!(error.to_string().contains("writing alerts"), "{error}");
        // What was committed is still served.
        assert_eq!(store.alert(1).unwrap().map(|a| a.id), Some(1));
        assert_eq!(store.alert(next - 1).unwrap().map(|a| a.id), Some(next - 1));

        limit_file_size(libc::RLIM_INFINITY);
        store
            .with_recovery(|s| s.put_alerts(&hundred(next)))
            .expect("writes resume");
        for id in [1, next - 1, next, next + 99] {
            assert_eq!(store.alert(id).unwrap().map(|a| a.id), Some(id));
        }
        assert_eq!(store.allocate_alert_id(), next + 100);
    }

    #[test]
    fn alerts_survive_closing_and_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nta.redb");
        let alerts = ten_alerts();
        {
            let store = Store::open(&path).unwrap();
            store.put_alerts(&alerts).unwrap();
        }
        let store = Store::open(&path).unwrap();
        let page = store.alerts(&AlertQuery::default()).unwrap();
        let mut newest_first = alerts;
        newest_first.reverse();
        assert_eq!(page.alerts, newest_first);
    }
}
