//! Flow records: kept for `flow_retention`, listed newest first with
//! filters, by host through an index of both ends.

use std::{net::IpAddr, ops::ControlFlow, sync::atomic::Ordering, time::Duration};

use jiff::Timestamp;
use nta_common::IpKey;
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::flows::FlowRecord;

/// Id → the flow as JSON. Ids grow with the time flows are written.
pub(super) const FLOWS: TableDefinition<u64, &[u8]> = TableDefinition::new("flows");
/// (end, in seconds, id): what pruning walks.
pub(super) const FLOWS_BY_END: TableDefinition<(i64, u64), ()> =
    TableDefinition::new("flows_by_end");
/// (an end's address, id), for both ends: what `host=` walks.
pub(super) const FLOWS_BY_HOST: TableDefinition<(u128, u64), ()> =
    TableDefinition::new("flows_by_host");

/// Most flows one page lists.
pub const MAX_FLOW_LIMIT: usize = 1000;
/// Rows a page may examine per flow it lists, so that a filter that
/// matches little cannot make one request walk the whole table.
const SCAN_ROWS_PER_FLOW: usize = 100;

/// A stored flow, with the names EVE's flow events and NetFlow users know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredFlow {
    pub id: u64,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dst_port: u16,
    /// IP protocol number.
    pub proto: u8,
    /// The application protocol, once nta tells it by content.
    pub app_proto: Option<String>,
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub start: Timestamp,
    pub end: Timestamp,
    pub tcp_flags_toserver: u8,
    pub tcp_flags_toclient: u8,
    pub state: String,
    pub reason: String,
    /// Ids of the alerts raised on it.
    #[serde(default)]
    pub alerts: Vec<u64>,
}

impl StoredFlow {
    fn of(id: u64, r: &FlowRecord) -> Self {
        StoredFlow {
            id,
            src_ip: r.client.0,
            src_port: r.client.1,
            dest_ip: r.server.0,
            dst_port: r.server.1,
            proto: r.proto,
            app_proto: r.app_proto.map(|a| a.name().to_owned()),
            pkts_toserver: r.pkts_toserver,
            pkts_toclient: r.pkts_toclient,
            bytes_toserver: r.bytes_toserver,
            bytes_toclient: r.bytes_toclient,
            start: r.start,
            end: r.end,
            tcp_flags_toserver: r.tcp_flags_toserver,
            tcp_flags_toclient: r.tcp_flags_toclient,
            state: r.state().to_owned(),
            reason: r.reason.name().to_owned(),
            alerts: r.alerts.clone(),
        }
    }
}

/// Filters of `GET /api/flows`.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowQuery {
    /// Either end.
    pub host: Option<IpAddr>,
    /// Either end's port.
    pub port: Option<u16>,
    pub proto: Option<u8>,
    pub app_proto: Option<String>,
    /// Flows that were still going at `since` or began later.
    pub since: Option<Timestamp>,
    /// Flows that began by `until`.
    pub until: Option<Timestamp>,
    pub limit: usize,
    /// Exclusive upper bound on the ids listed.
    pub cursor: Option<u64>,
}

impl Default for FlowQuery {
    fn default() -> Self {
        Self {
            host: None,
            port: None,
            proto: None,
            app_proto: None,
            since: None,
            until: None,
            limit: 100,
            cursor: None,
        }
    }
}

impl FlowQuery {
    fn matches(&self, f: &StoredFlow) -> bool {
        // An IPv4-mapped address is the IPv4 host the flows name.
        let host = self.host.map(|h| h.to_canonical());
        host.is_none_or(|h| f.src_ip == h || f.dest_ip == h)
            && self.port.is_none_or(|p| f.src_port == p || f.dst_port == p)
            && self.proto.is_none_or(|p| f.proto == p)
            && self
                .app_proto
                .as_ref()
                .is_none_or(|a| f.app_proto.as_ref() == Some(a))
            && self.since.is_none_or(|s| f.end >= s)
            && self.until.is_none_or(|u| f.start <= u)
    }
}

/// One page of flows, newest first, and the cursor of the next.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowPage {
    pub flows: Vec<StoredFlow>,
    pub next: Option<u64>,
}

pub(super) fn host_key(addr: IpAddr) -> u128 {
    u128::from_be_bytes(IpKey::from(addr).addr)
}

impl Store {
    /// Stores `records`, each under a new id, in one transaction.
    pub fn put_flows(&self, records: &[FlowRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let doing = "writing flows";
        let txn = self.db.begin_write().map_err(self.db_err(doing))?;
        self.note_longest_flow(&txn, records)?;
        {
            let mut flows = txn.open_table(FLOWS).map_err(self.db_err(doing))?;
            let mut by_end = txn.open_table(FLOWS_BY_END).map_err(self.db_err(doing))?;
            let mut by_host = txn.open_table(FLOWS_BY_HOST).map_err(self.db_err(doing))?;
            for r in records {
                let id = self.next_flow_id.fetch_add(1, Ordering::Relaxed);
                let flow = StoredFlow::of(id, r);
                let json = serde_json::to_vec(&flow).map_err(|source| StoreError::CorruptFlow {
                    path: self.path.clone(),
                    id,
                    source,
                })?;
                flows
                    .insert(id, json.as_slice())
                    .map_err(self.db_err(doing))?;
                by_end
                    .insert((flow.end.as_second(), id), ())
                    .map_err(self.db_err(doing))?;
                for host in [flow.src_ip, flow.dest_ip] {
                    by_host
                        .insert((host_key(host), id), ())
                        .map_err(self.db_err(doing))?;
                }
            }
        }
        txn.commit().map_err(self.db_err(doing))
    }

    /// One page of the flows matching `query`, newest first. Walks the
    /// table (or, with `host`, its index) back from the cursor and stops
    /// with one match more than `limit`, or after `limit` ×
    /// [`SCAN_ROWS_PER_FLOW`] rows.
    pub fn flows(&self, query: &FlowQuery) -> Result<FlowPage, StoreError> {
        let limit = query.limit.clamp(1, MAX_FLOW_LIMIT);
        let max_rows = limit.saturating_mul(SCAN_ROWS_PER_FLOW);
        let doing = "reading flows";
        let txn = self.db.begin_read().map_err(self.db_err(doing))?;
        let table = txn.open_table(FLOWS).map_err(self.db_err(doing))?;
        let mut page = FlowPage {
            flows: Vec::new(),
            next: None,
        };
        let mut examined = 0;
        let mut visit = |id: u64, json: &[u8]| -> Result<ControlFlow<()>, StoreError> {
            examined += 1;
            let flow: StoredFlow =
                serde_json::from_slice(json).map_err(|source| StoreError::CorruptFlow {
                    path: self.path.clone(),
                    id,
                    source,
                })?;
            if query.matches(&flow) {
                if page.flows.len() == limit {
                    page.next = page.flows.last().map(|f| f.id);
                    return Ok(ControlFlow::Break(()));
                }
                page.flows.push(flow);
            }
            if examined >= max_rows {
                // Cut short: the next page goes on from here.
                page.next = Some(id);
                return Ok(ControlFlow::Break(()));
            }
            Ok(ControlFlow::Continue(()))
        };
        let cursor = query.cursor.unwrap_or(u64::MAX);
        match query.host {
            None => {
                for row in table.range(..cursor).map_err(self.db_err(doing))?.rev() {
                    let (id, json) = row.map_err(self.db_err(doing))?;
                    if visit(id.value(), json.value())?.is_break() {
                        break;
                    }
                }
            }
            Some(host) => {
                let index = txn.open_table(FLOWS_BY_HOST).map_err(self.db_err(doing))?;
                let key = host_key(host.to_canonical());
                for row in index
                    .range((key, 0)..(key, cursor))
                    .map_err(self.db_err(doing))?
                    .rev()
                {
                    let id = row.map_err(self.db_err(doing))?.0.value().1;
                    let Some(json) = table.get(id).map_err(self.db_err(doing))? else {
                        continue;
                    };
                    if visit(id, json.value())?.is_break() {
                        break;
                    }
                }
            }
        }
        Ok(page)
    }

    /// Deletes the flows that ended more than `keep` before `now`.
    pub fn prune_flows(&self, now: Timestamp, keep: Duration) -> Result<(), StoreError> {
        let cutoff = now
            .as_second()
            .saturating_sub(i64::try_from(keep.as_secs()).unwrap_or(i64::MAX));
        let doing = "pruning flows";
        let txn = self.db.begin_write().map_err(self.db_err(doing))?;
        {
            let mut by_end = txn.open_table(FLOWS_BY_END).map_err(self.db_err(doing))?;
            let mut flows = txn.open_table(FLOWS).map_err(self.db_err(doing))?;
            let mut by_host = txn.open_table(FLOWS_BY_HOST).map_err(self.db_err(doing))?;
            let mut old = Vec::new();
            for row in by_end
                .range((i64::MIN, 0)..(cutoff, 0))
                .map_err(self.db_err(doing))?
            {
                old.push(row.map_err(self.db_err(doing))?.0.value().1);
            }
            by_end
                .retain_in((i64::MIN, 0)..(cutoff, 0), |_, _| false)
                .map_err(self.db_err(doing))?;
            for id in old {
                let removed = flows.remove(id).map_err(self.db_err(doing))?;
                let Some(json) = removed else { continue };
                if let Ok(flow) = serde_json::from_slice::<StoredFlow>(json.value()) {
                    for host in [flow.src_ip, flow.dest_ip] {
                        by_host
                            .remove((host_key(host), id))
                            .map_err(self.db_err(doing))?;
                    }
                }
            }
        }
        txn.commit().map_err(self.db_err(doing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::Reason;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("a timestamp")
    }

    fn record(client: [u8; 4], port: u16, proto: u8, start: &str, end: &str) -> FlowRecord {
        FlowRecord {
            client: (IpAddr::from(client), 40_000),
            server: (IpAddr::from([10, 0, 0, 1]), port),
            proto,
            pkts_toserver: 3,
            pkts_toclient: 2,
            bytes_toserver: 300,
            bytes_toclient: 2000,
            start: ts(start),
            end: ts(end),
            tcp_flags_toserver: 0x02,
            tcp_flags_toclient: 0x12,
            reason: Reason::Timeout,
            app_proto: (proto == 6).then_some(crate::payload::AppProto::Http),
            alerts: Vec::new(),
        }
    }

    fn ids(store: &Store, query: FlowQuery) -> Vec<u64> {
        store
            .flows(&query)
            .expect("listing")
            .flows
            .iter()
            .map(|f| f.id)
            .collect()
    }

    #[test]
    fn flows_are_stored_listed_filtered_paged_and_pruned() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("nta.redb")).expect("store");
        store
            .put_flows(&[
                record(
                    [10, 0, 0, 7],
                    80,
                    6,
                    "2026-01-01T00:00:00Z",
                    "2026-01-01T00:00:10Z",
                ),
                record(
                    [10, 0, 0, 8],
                    53,
                    17,
                    "2026-01-01T00:01:00Z",
                    "2026-01-01T00:01:01Z",
                ),
                record(
                    [10, 0, 0, 7],
                    443,
                    6,
                    "2026-01-02T00:00:00Z",
                    "2026-01-02T00:05:00Z",
                ),
            ])
            .expect("writing");
        let q = FlowQuery::default;
        assert_eq!(ids(&store, q()), [3, 2, 1]);
        let first = &store.flows(&q()).expect("listing").flows[2];
        assert_eq!(first.src_ip, IpAddr::from([10, 0, 0, 7]));
        assert_eq!((first.dst_port, first.pkts_toclient), (80, 2));
        assert_eq!(first.state, "established");
        let host = |a: [u8; 4]| FlowQuery {
            host: Some(IpAddr::from(a)),
            ..q()
        };
        // Either end: the server is in all three.
        assert_eq!(ids(&store, host([10, 0, 0, 1])), [3, 2, 1]);
        assert_eq!(ids(&store, host([10, 0, 0, 7])), [3, 1]);
        assert_eq!(ids(&store, host([10, 0, 0, 9])), Vec::<u64>::new());
        let mapped = FlowQuery {
            host: Some("::ffff:10.0.0.7".parse().expect("an address")),
            ..q()
        };
        assert_eq!(ids(&store, mapped), [3, 1], "IPv4-mapped is the IPv4 host");
        let port = |p| FlowQuery {
            port: Some(p),
            ..q()
        };
        assert_eq!(ids(&store, port(53)), [2]);
        assert_eq!(ids(&store, port(40_000)), [3, 2, 1]);
        let udp = FlowQuery {
            proto: Some(17),
            ..q()
        };
        assert_eq!(ids(&store, udp), [2]);
        let window = FlowQuery {
            since: Some(ts("2026-01-01T00:00:30Z")),
            until: Some(ts("2026-01-01T12:00:00Z")),
            ..q()
        };
        assert_eq!(ids(&store, window), [2]);
        // Pages: the cursor goes on where the last page ended.
        let page = store
            .flows(&FlowQuery { limit: 2, ..q() })
            .expect("listing");
        assert_eq!(page.flows.len(), 2);
        assert_eq!(page.next, Some(2));
        let rest = FlowQuery {
            cursor: page.next,
            limit: 2,
            ..host([10, 0, 0, 1])
        };
        assert_eq!(ids(&store, rest), [1]);
        // Ids go on after a restart.
        drop(store);
        let store = Store::open(&dir.path().join("nta.redb")).expect("reopening");
        store
            .put_flows(&[record(
                [10, 0, 0, 9],
                22,
                6,
                "2026-01-03T00:00:00Z",
                "2026-01-03T00:00:01Z",
            )])
            .expect("writing");
        assert_eq!(ids(&store, host([10, 0, 0, 9])), [4]);
        // Pruning: a week kept, from the 8th.
        store
            .prune_flows(ts("2026-01-09T00:00:30Z"), Duration::from_secs(7 * 86_400))
            .expect("pruning");
        assert_eq!(ids(&store, q()), [4, 3]);
        assert_eq!(ids(&store, host([10, 0, 0, 8])), Vec::<u64>::new());
    }
}
