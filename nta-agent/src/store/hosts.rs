//! Stored flows added up by host: one host's traffic over a period
//! ([`Store::host_traffic`]: totals, a time series, its peers and ports)
//! and the hosts that moved the most ([`Store::top_hosts`]).
//!
//! Both read the flows overlapping the period, as `GET /api/flows` lists
//! them (still going at `since`, begun by `until`), and count each flow
//! whole. Both stop after a bounded number of flows and say so
//! (`truncated`): a host with millions of flows must not hold a request,
//! nor the read transaction, for seconds.

use std::{collections::HashMap, net::IpAddr, ops::ControlFlow, str::FromStr};

use jiff::Timestamp;
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::{
    META, Store, StoreError,
    flows::{FLOWS, FLOWS_BY_END, FLOWS_BY_HOST, host_key},
};
use crate::flows::FlowRecord;

/// Most buckets in a host's time series: one point per 3 pixels of a
/// 360-pixel-wide phone chart, and a small answer.
pub const MAX_SERIES_BUCKETS: i64 = 120;
/// Most flows one aggregation reads, so that a request's time is bounded
/// whatever the store holds: 120-140 ms at this bound in a release build
/// on the 2-CPU test machine (`bench_host_and_top_read_a_bounded_number_of_flows`).
pub const MAX_FLOWS_SCANNED: usize = 100_000;
/// Peers and ports listed for a host: the busiest, as ntopng shows them.
pub const HOST_TOP_N: usize = 10;
/// Most hosts `GET /api/top` lists.
pub const MAX_TOP_LIMIT: usize = 1000;
/// Key in `nta_meta` of the longest flow stored, in whole seconds (rounded
/// up): how far past `until` a flow that began by `until` may have ended,
/// which bounds what [`Store::top_hosts`] walks of the end index. Never
/// lowered by pruning, so it may be larger than needed, never smaller.
const LONGEST_FLOW_KEY: &str = "flows_longest_secs";

/// Bucket widths a series may use, in seconds: round ones, so that a
/// chart's points fall on whole minutes and hours.
const NICE_STEPS: [i64; 19] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
    604_800,
];

/// What [`Store::host_traffic`] adds up.
#[derive(Debug, Clone, PartialEq)]
pub struct HostQuery {
    pub host: IpAddr,
    pub since: Timestamp,
    pub until: Timestamp,
    /// Flows of the host read at most, newest first.
    pub max_scanned: usize,
}

/// One host's traffic over a period, from the flows it took part in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostTraffic {
    pub host: IpAddr,
    pub since: Timestamp,
    pub until: Timestamp,
    /// Bytes and packets the host received and sent, over whole flows.
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub pkts_in: u64,
    pub pkts_out: u64,
    /// Flows that overlap the period.
    pub flows: u64,
    /// Seconds per bucket of `series`.
    pub step: i64,
    /// Bytes per bucket, each flow's spread evenly over its lifetime and
    /// only the part inside the period counted, so a flow that began
    /// before `since` adds less here than to the totals.
    pub series: Vec<Bucket>,
    /// The busiest other ends, by bytes both ways.
    pub peers: Vec<Peer>,
    /// The busiest services: each flow's server port, whichever end the
    /// host was.
    pub ports: Vec<PortUse>,
    /// Flows of the host read (in the period or not).
    pub scanned: u64,
    /// The host has older flows that were not read: the figures cover its
    /// newest `scanned` flows only.
    pub truncated: bool,
}

/// Bytes in one bucket of a series, starting at `t`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    pub t: Timestamp,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// One of a host's peers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Peer {
    pub ip: IpAddr,
    pub bytes: u64,
    pub flows: u64,
}

/// One service port of a host's flows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortUse {
    pub port: u16,
    /// IP protocol number.
    pub proto: u8,
    pub bytes: u64,
    pub flows: u64,
}

/// What top talkers are ranked by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TopBy {
    Bytes,
    Flows,
    Pkts,
}

impl FromStr for TopBy {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        match value {
            "bytes" => Ok(Self::Bytes),
            "flows" => Ok(Self::Flows),
            "pkts" | "packets" => Ok(Self::Pkts),
            _ => Err(format!("by must be bytes, flows or pkts, got `{value}`")),
        }
    }
}

/// What [`Store::top_hosts`] ranks.
#[derive(Debug, Clone, PartialEq)]
pub struct TopQuery {
    pub since: Timestamp,
    pub until: Timestamp,
    pub by: TopBy,
    /// Hosts listed, 1..=[`MAX_TOP_LIMIT`].
    pub limit: usize,
    /// Flows read at most, latest ending first.
    pub max_scanned: usize,
}

/// The hosts that moved the most over a period; both ends of a flow count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopHosts {
    pub since: Timestamp,
    pub until: Timestamp,
    pub by: TopBy,
    pub hosts: Vec<HostTotals>,
    /// Flows that overlap the period.
    pub flows: u64,
    /// Flows read.
    pub scanned: u64,
    /// Flows that ended earlier were not read: the ranking covers the
    /// latest `scanned` flows only.
    pub truncated: bool,
}

/// One host's totals in [`TopHosts`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostTotals {
    pub ip: IpAddr,
    pub bytes: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub pkts: u64,
    pub pkts_in: u64,
    pub pkts_out: u64,
    pub flows: u64,
}

/// The fields of a stored flow the aggregations read: decoding only these
/// skips the strings, the slow part of a row.
#[derive(Debug, Deserialize)]
struct FlowHead {
    src_ip: IpAddr,
    dest_ip: IpAddr,
    dst_port: u16,
    proto: u8,
    pkts_toserver: u64,
    pkts_toclient: u64,
    bytes_toserver: u64,
    bytes_toclient: u64,
    start: Timestamp,
    end: Timestamp,
}

impl FlowHead {
    fn overlaps(&self, since: Timestamp, until: Timestamp) -> bool {
        self.end >= since && self.start <= until
    }

    /// (bytes, packets) `host` received and sent in this flow; a host at
    /// both ends (a flow to itself) counts as the client.
    fn seen_by(&self, host: IpAddr) -> Directions {
        let to_server = (self.bytes_toserver, self.pkts_toserver);
        let to_client = (self.bytes_toclient, self.pkts_toclient);
        if self.src_ip == host {
            Directions {
                inbound: to_client,
                outbound: to_server,
            }
        } else {
            Directions {
                inbound: to_server,
                outbound: to_client,
            }
        }
    }

    fn bytes(&self) -> u64 {
        self.bytes_toserver.saturating_add(self.bytes_toclient)
    }
}

/// (bytes, packets) each way, from one host's side.
struct Directions {
    inbound: (u64, u64),
    outbound: (u64, u64),
}

/// Seconds since the epoch, with the milliseconds, for spreading bytes.
fn seconds(t: Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

/// A period cut into buckets of `step` seconds aligned on multiples of it,
/// with the bytes each way spread into them.
struct Series {
    since: f64,
    until: f64,
    /// Start of the first bucket, in seconds.
    origin: i64,
    step: i64,
    bytes_in: Vec<f64>,
    bytes_out: Vec<f64>,
}

impl Series {
    fn new(since: Timestamp, until: Timestamp) -> Self {
        let (first, last) = (since.as_second(), until.as_second());
        let count = |step: i64| last.div_euclid(step) - first.div_euclid(step) + 1;
        let step = NICE_STEPS
            .into_iter()
            .find(|&step| count(step) <= MAX_SERIES_BUCKETS)
            // Beyond weeks a round step no longer matters.
            .unwrap_or_else(|| ((last - first) / (MAX_SERIES_BUCKETS - 2)).max(1) + 1);
        let buckets = usize::try_from(count(step)).unwrap_or(0);
        Series {
            since: seconds(since),
            until: seconds(until),
            origin: first.div_euclid(step) * step,
            step,
            bytes_in: vec![0.0; buckets],
            bytes_out: vec![0.0; buckets],
        }
    }

    /// The bucket holding second `at`, which lies in the period.
    fn index(&self, at: f64) -> usize {
        let bucket = (at.floor() as i64 - self.origin).div_euclid(self.step);
        usize::try_from(bucket)
            .unwrap_or(0)
            .min(self.bytes_in.len().saturating_sub(1))
    }

    /// Spreads a flow's bytes evenly over its lifetime, keeping the part
    /// inside the period.
    fn add(&mut self, flow: &FlowHead, seen: &Directions) {
        let (start, end) = (seconds(flow.start), seconds(flow.end));
        let (from, to) = (start.max(self.since), end.min(self.until));
        if to < from || self.bytes_in.is_empty() {
            return;
        }
        let lifetime = end - start;
        for i in self.index(from)..=self.index(to) {
            let share = if lifetime > 0.0 {
                let bucket_start = (self.origin + i as i64 * self.step) as f64;
                let bucket_end = bucket_start + self.step as f64;
                (to.min(bucket_end) - from.max(bucket_start)).max(0.0) / lifetime
            } else {
                1.0
            };
            self.bytes_in[i] += seen.inbound.0 as f64 * share;
            self.bytes_out[i] += seen.outbound.0 as f64 * share;
        }
    }

    fn buckets(self, fallback: Timestamp) -> Vec<Bucket> {
        self.bytes_in
            .iter()
            .zip(&self.bytes_out)
            .enumerate()
            .map(|(i, (bytes_in, bytes_out))| Bucket {
                t: Timestamp::from_second(self.origin + i as i64 * self.step).unwrap_or(fallback),
                bytes_in: bytes_in.round() as u64,
                bytes_out: bytes_out.round() as u64,
            })
            .collect()
    }
}

/// (bytes, flows) per key.
type Tally<K> = HashMap<K, (u64, u64)>;

fn tally<K: std::hash::Hash + Eq>(map: &mut Tally<K>, key: K, bytes: u64) {
    let entry = map.entry(key).or_default();
    entry.0 = entry.0.saturating_add(bytes);
    entry.1 += 1;
}

/// The `n` largest entries by `rank`, largest first, ties in key order
/// (a stable answer for equal hosts).
fn busiest<K: Ord, V>(
    entries: impl Iterator<Item = (K, V)>,
    n: usize,
    rank: impl Fn(&V) -> u64,
) -> Vec<(K, V)> {
    let mut all: Vec<(K, V)> = entries.collect();
    let order = |a: &(K, V), b: &(K, V)| rank(&b.1).cmp(&rank(&a.1)).then_with(|| a.0.cmp(&b.0));
    if all.len() > n && n > 0 {
        all.select_nth_unstable_by(n - 1, order);
        all.truncate(n);
    }
    all.sort_unstable_by(order);
    all.truncate(n);
    all
}

/// A host's sums while its flows are read.
struct HostSums {
    traffic: HostTraffic,
    series: Series,
    peers: Tally<IpAddr>,
    ports: Tally<(u8, u16)>,
}

impl HostSums {
    fn new(host: IpAddr, since: Timestamp, until: Timestamp) -> Self {
        let series = Series::new(since, until);
        HostSums {
            traffic: HostTraffic {
                host,
                since,
                until,
                bytes_in: 0,
                bytes_out: 0,
                pkts_in: 0,
                pkts_out: 0,
                flows: 0,
                step: series.step,
                series: Vec::new(),
                peers: Vec::new(),
                ports: Vec::new(),
                scanned: 0,
                truncated: false,
            },
            series,
            peers: HashMap::new(),
            ports: HashMap::new(),
        }
    }

    fn add(&mut self, flow: &FlowHead) {
        let host = self.traffic.host;
        let seen = flow.seen_by(host);
        let t = &mut self.traffic;
        t.bytes_in = t.bytes_in.saturating_add(seen.inbound.0);
        t.pkts_in = t.pkts_in.saturating_add(seen.inbound.1);
        t.bytes_out = t.bytes_out.saturating_add(seen.outbound.0);
        t.pkts_out = t.pkts_out.saturating_add(seen.outbound.1);
        t.flows += 1;
        self.series.add(flow, &seen);
        let peer = if flow.src_ip == host {
            flow.dest_ip
        } else {
            flow.src_ip
        };
        tally(&mut self.peers, peer, flow.bytes());
        tally(&mut self.ports, (flow.proto, flow.dst_port), flow.bytes());
    }

    fn finish(self, scanned: u64, truncated: bool) -> HostTraffic {
        let HostSums {
            mut traffic,
            series,
            peers,
            ports,
        } = self;
        traffic.series = series.buckets(traffic.since);
        traffic.peers = busiest(peers.into_iter(), HOST_TOP_N, |v| v.0)
            .into_iter()
            .map(|(ip, (bytes, flows))| Peer { ip, bytes, flows })
            .collect();
        traffic.ports = busiest(ports.into_iter(), HOST_TOP_N, |v| v.0)
            .into_iter()
            .map(|((proto, port), (bytes, flows))| PortUse {
                port,
                proto,
                bytes,
                flows,
            })
            .collect();
        traffic.scanned = scanned;
        traffic.truncated = truncated;
        traffic
    }
}

/// Every host's totals while flows are read.
#[derive(Default)]
struct TopSums {
    hosts: HashMap<IpAddr, HostTotals>,
    flows: u64,
}

impl TopSums {
    fn add(&mut self, flow: &FlowHead) {
        self.flows += 1;
        let ends = if flow.src_ip == flow.dest_ip {
            &[flow.src_ip][..]
        } else {
            &[flow.src_ip, flow.dest_ip][..]
        };
        for &ip in ends {
            let seen = flow.seen_by(ip);
            let h = self.hosts.entry(ip).or_insert_with(|| HostTotals {
                ip,
                bytes: 0,
                bytes_in: 0,
                bytes_out: 0,
                pkts: 0,
                pkts_in: 0,
                pkts_out: 0,
                flows: 0,
            });
            h.bytes_in = h.bytes_in.saturating_add(seen.inbound.0);
            h.pkts_in = h.pkts_in.saturating_add(seen.inbound.1);
            h.bytes_out = h.bytes_out.saturating_add(seen.outbound.0);
            h.pkts_out = h.pkts_out.saturating_add(seen.outbound.1);
            h.bytes = h.bytes_in.saturating_add(h.bytes_out);
            h.pkts = h.pkts_in.saturating_add(h.pkts_out);
            h.flows += 1;
        }
    }

    fn finish(self, query: &TopQuery, scanned: u64, truncated: bool) -> TopHosts {
        let rank = |h: &HostTotals| match query.by {
            TopBy::Bytes => h.bytes,
            TopBy::Flows => h.flows,
            TopBy::Pkts => h.pkts,
        };
        let limit = query.limit.clamp(1, MAX_TOP_LIMIT);
        TopHosts {
            since: query.since,
            until: query.until,
            by: query.by,
            hosts: busiest(self.hosts.into_iter(), limit, rank)
                .into_iter()
                .map(|(_, h)| h)
                .collect(),
            flows: self.flows,
            scanned,
            truncated,
        }
    }
}

/// Reads flows by id, newest first, until `max` are read: `Break` says
/// that more remained.
struct Reader<'t> {
    table: &'t redb::ReadOnlyTable<u64, &'static [u8]>,
    max: usize,
    scanned: u64,
    truncated: bool,
}

impl Reader<'_> {
    /// Flow `id`, if it is still stored; `Break` once `max` were read.
    fn read(
        &mut self,
        store: &Store,
        id: u64,
    ) -> Result<ControlFlow<(), Option<FlowHead>>, StoreError> {
        if self.scanned >= self.max as u64 {
            self.truncated = true;
            return Ok(ControlFlow::Break(()));
        }
        self.scanned += 1;
        let doing = "reading flows";
        let Some(json) = self.table.get(id).map_err(store.db_err(doing))? else {
            return Ok(ControlFlow::Continue(None));
        };
        let flow =
            serde_json::from_slice(json.value()).map_err(|source| StoreError::CorruptFlow {
                path: store.path.clone(),
                id,
                source,
            })?;
        Ok(ControlFlow::Continue(Some(flow)))
    }

    /// Hands `add` each flow of `ids` that overlaps `period`, until `max`
    /// were read.
    fn sum_overlapping(
        &mut self,
        store: &Store,
        ids: impl Iterator<Item = Result<u64, StoreError>>,
        (since, until): (Timestamp, Timestamp),
        mut add: impl FnMut(&FlowHead),
    ) -> Result<(), StoreError> {
        for id in ids {
            match self.read(store, id?)? {
                ControlFlow::Break(()) => break,
                ControlFlow::Continue(Some(flow)) if flow.overlaps(since, until) => add(&flow),
                ControlFlow::Continue(_) => {}
            }
        }
        Ok(())
    }
}

impl Store {
    /// `query.host`'s traffic over the period, from its flows, newest
    /// first through the index of both ends, reading at most
    /// `query.max_scanned` of them.
    pub fn host_traffic(&self, query: &HostQuery) -> Result<HostTraffic, StoreError> {
        let doing = "reading a host's flows";
        // An IPv4-mapped address is the IPv4 host the flows name.
        let host = query.host.to_canonical();
        let txn = self.db.begin_read().map_err(self.db_err(doing))?;
        let table = txn.open_table(FLOWS).map_err(self.db_err(doing))?;
        let index = txn.open_table(FLOWS_BY_HOST).map_err(self.db_err(doing))?;
        let key = host_key(host);
        let mut sums = HostSums::new(host, query.since, query.until);
        let mut reader = Reader {
            table: &table,
            max: query.max_scanned,
            scanned: 0,
            truncated: false,
        };
        let ids = index
            .range((key, 0)..=(key, u64::MAX))
            .map_err(self.db_err(doing))?
            .rev()
            .map(|row| Ok(row.map_err(self.db_err(doing))?.0.value().1));
        reader.sum_overlapping(self, ids, (query.since, query.until), |f| sums.add(f))?;
        Ok(sums.finish(reader.scanned, reader.truncated))
    }

    /// The hosts that moved the most over the period, both ends of each
    /// flow counted. Walks the end-time index back from the last end a
    /// flow begun by `until` can have, reading at most
    /// `query.max_scanned` flows.
    pub fn top_hosts(&self, query: &TopQuery) -> Result<TopHosts, StoreError> {
        let doing = "reading flows for top hosts";
        let txn = self.db.begin_read().map_err(self.db_err(doing))?;
        let table = txn.open_table(FLOWS).map_err(self.db_err(doing))?;
        let by_end = txn.open_table(FLOWS_BY_END).map_err(self.db_err(doing))?;
        let longest = txn
            .open_table(META)
            .map_err(self.db_err(doing))?
            .get(LONGEST_FLOW_KEY)
            .map_err(self.db_err(doing))?
            .map(|v| v.value());
        let last_end = longest.map_or(i64::MAX, |secs| {
            query
                .until
                .as_second()
                .saturating_add(i64::try_from(secs).unwrap_or(i64::MAX))
        });
        let mut sums = TopSums::default();
        let mut reader = Reader {
            table: &table,
            max: query.max_scanned,
            scanned: 0,
            truncated: false,
        };
        let ids = by_end
            .range((query.since.as_second(), 0)..=(last_end, u64::MAX))
            .map_err(self.db_err(doing))?
            .rev()
            .map(|row| Ok(row.map_err(self.db_err(doing))?.0.value().1));
        reader.sum_overlapping(self, ids, (query.since, query.until), |f| sums.add(f))?;
        Ok(sums.finish(query, reader.scanned, reader.truncated))
    }

    /// Keeps [`LONGEST_FLOW_KEY`] at least as long as any flow in
    /// `records`. Runs before the flows are written: a store that already
    /// holds flows but no key (written before the key existed) gets
    /// `u64::MAX`, "unknown", and top hosts then walk every later end.
    pub(super) fn note_longest_flow(
        &self,
        txn: &WriteTransaction,
        records: &[FlowRecord],
    ) -> Result<(), StoreError> {
        use redb::ReadableTableMetadata as _;
        let doing = "writing flows";
        let Some(longest) = records
            .iter()
            .map(|r| {
                let lifetime = r.end.duration_since(r.start);
                u64::try_from(lifetime.as_secs()).unwrap_or(0)
                    + u64::from(lifetime.subsec_nanos() > 0)
            })
            .max()
        else {
            return Ok(());
        };
        let had_flows = txn
            .open_table(FLOWS)
            .map_err(self.db_err(doing))?
            .len()
            .map_err(self.db_err(doing))?
            > 0;
        let mut meta = txn.open_table(META).map_err(self.db_err(doing))?;
        let known = meta
            .get(LONGEST_FLOW_KEY)
            .map_err(self.db_err(doing))?
            .map(|v| v.value());
        let longest = match known {
            Some(known) => known.max(longest),
            None if had_flows => u64::MAX,
            None => longest,
        };
        if known != Some(longest) {
            meta.insert(LONGEST_FLOW_KEY, longest)
                .map_err(self.db_err(doing))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{flows::Reason, store::tests::temp_store};

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("a timestamp")
    }

    /// A time of 2026-01-01 (`hh:mm:ss`), or any time in full.
    fn at(time: &str) -> Timestamp {
        if time.contains('T') {
            ts(time)
        } else {
            ts(&format!("2026-01-01T{time}Z"))
        }
    }

    /// A flow from `client` to `server` (`addr:port`, IPv6 in brackets)
    /// between two times (see [`at`]), with 3 and 2 packets of `bytes`
    /// each way.
    fn flow(
        client: &str,
        server: &str,
        proto: u8,
        times: (&str, &str),
        bytes: (u64, u64),
    ) -> FlowRecord {
        let end = |s: &str| -> (IpAddr, u16) {
            let addr: std::net::SocketAddr = s.parse().expect("addr:port");
            (addr.ip(), addr.port())
        };
        FlowRecord {
            client: end(client),
            server: end(server),
            proto,
            pkts_toserver: 3,
            pkts_toclient: 2,
            bytes_toserver: bytes.0,
            bytes_toclient: bytes.1,
            start: at(times.0),
            end: at(times.1),
            tcp_flags_toserver: 0,
            tcp_flags_toclient: 0,
            reason: Reason::Timeout,
            app_proto: None,
            alerts: Vec::new(),
        }
    }

    fn host(store: &Store, ip: &str, since: &str, until: &str) -> HostTraffic {
        store
            .host_traffic(&HostQuery {
                host: ip.parse().expect("an address"),
                since: at(since),
                until: at(until),
                max_scanned: MAX_FLOWS_SCANNED,
            })
            .expect("host traffic")
    }

    const SERVER: &str = "10.0.0.1";

    /// A web server's hour: two clients, and a DNS query of its own.
    fn server_hour() -> Vec<FlowRecord> {
        vec![
            flow(
                "10.0.0.7:40000",
                "10.0.0.1:80",
                6,
                ("00:00:00", "00:00:10"),
                (300, 2000),
            ),
            flow(
                "10.0.0.1:50000",
                "10.0.0.9:53",
                17,
                ("00:01:00", "00:01:01"),
                (300, 2000),
            ),
            flow(
                "10.0.0.7:40001",
                "10.0.0.1:443",
                6,
                ("00:30:00", "00:30:00"),
                (300, 2000),
            ),
            // Late that day: outside the hour.
            flow(
                "10.0.0.8:40002",
                "10.0.0.1:22",
                6,
                ("23:59:59", "23:59:59"),
                (1, 1),
            ),
        ]
    }

    #[test]
    fn a_hosts_traffic_is_added_up_from_its_flows_either_end() {
        let (_dir, store) = temp_store();
        store.put_flows(&server_hour()).expect("writing");
        let t = host(&store, SERVER, "00:00:00", "01:00:00");
        assert_eq!(t.flows, 3);
        // Served 300 in and 2000 out twice; asked 300 out and got 2000 in.
        assert_eq!((t.bytes_in, t.bytes_out), (2600, 4300));
        assert_eq!((t.pkts_in, t.pkts_out), (3 + 2 + 3, 2 + 3 + 2));
        let peers: Vec<_> = t
            .peers
            .iter()
            .map(|p| (p.ip.to_string(), p.bytes, p.flows))
            .collect();
        assert_eq!(
            peers,
            [("10.0.0.7".into(), 4600, 2), ("10.0.0.9".into(), 2300, 1)]
        );
        // Equal bytes: in (proto, port) order.
        let ports: Vec<_> = t.ports.iter().map(|p| (p.proto, p.port, p.flows)).collect();
        assert_eq!(ports, [(6, 80, 1), (6, 443, 1), (17, 53, 1)]);
        assert_eq!((t.scanned, t.truncated), (4, false));
        // A client sees the same flow the other way round.
        let client = host(&store, "10.0.0.7", "00:00:00", "01:00:00");
        assert_eq!(
            (client.bytes_in, client.bytes_out, client.flows),
            (4000, 600, 2)
        );
        assert_eq!(client.ports.len(), 2);
        let nobody = host(&store, "10.0.0.99", "00:00:00", "01:00:00");
        assert_eq!(
            (nobody.flows, nobody.scanned, nobody.peers.len()),
            (0, 0, 0)
        );
    }

    #[test]
    fn a_series_has_round_buckets_and_spreads_each_flow_over_its_lifetime() {
        let (_dir, store) = temp_store();
        store
            .put_flows(&[
                // 120 s, 1200 bytes in: 30 s in the first minute, 60 in
                // the second, 30 in the third.
                flow(
                    "10.0.0.7:40000",
                    "10.0.0.1:80",
                    6,
                    ("00:00:30", "00:02:30"),
                    (1200, 0),
                ),
                // Began an hour before the period, 1 byte/s out: its
                // last minute goes into the first bucket.
                flow(
                    "10.0.0.7:40001",
                    "10.0.0.1:81",
                    6,
                    ("2025-12-31T23:00:00Z", "00:01:00"),
                    (0, 3660),
                ),
                flow(
                    "10.0.0.7:40002",
                    "10.0.0.1:82",
                    6,
                    ("00:00:00", "00:00:00"),
                    (0, 7),
                ),
            ])
            .expect("writing");
        let t = host(&store, SERVER, "00:00:00", "01:00:00");
        // An hour in 60 s buckets: 61 with the one `until` starts.
        assert_eq!((t.step, t.series.len()), (60, 61));
        assert!(t.series.len() <= MAX_SERIES_BUCKETS as usize);
        assert_eq!(t.series[0].t, at("00:00:00"));
        assert_eq!(t.series[60].t, at("01:00:00"));
        let inbound: Vec<u64> = t.series.iter().take(4).map(|b| b.bytes_in).collect();
        assert_eq!(inbound, [300, 600, 300, 0]);
        assert_eq!(t.series[0].bytes_out, 60 + 7);
        assert_eq!((t.flows, t.bytes_out), (3, 3660 + 7));
        // A period that starts in the middle of the long flow: only its
        // part inside goes into the series, all of it into the totals.
        let late = host(&store, SERVER, "00:01:30", "00:05:00");
        assert_eq!(late.bytes_in, 1200);
        let series_in: u64 = late.series.iter().map(|b| b.bytes_in).sum();
        assert_eq!(series_in, 600);
        // A day in 900 s buckets, a week in hours, a year in weeks.
        for (until, step) in [
            ("2026-01-02", 900),
            ("2026-01-08", 7200),
            ("2027-01-01", 86_400 * 7),
        ] {
            let t = store
                .host_traffic(&HostQuery {
                    host: SERVER.parse().expect("address"),
                    since: ts("2026-01-01T00:00:00Z"),
                    until: ts(&format!("{until}T00:00:00Z")),
                    max_scanned: 10,
                })
                .expect("host traffic");
            assert_eq!(t.step, step, "{until}");
            assert!(t.series.len() <= MAX_SERIES_BUCKETS as usize, "{until}");
        }
    }

    #[test]
    fn ipv6_hosts_and_ipv4_mapped_addresses() {
        let (_dir, store) = temp_store();
        store
            .put_flows(&[
                flow(
                    "[2001:db8::7]:40000",
                    "[2001:db8::1]:443",
                    6,
                    ("00:00:00", "00:00:05"),
                    (10, 20),
                ),
                flow(
                    "10.0.0.7:40000",
                    "10.0.0.1:80",
                    6,
                    ("00:00:00", "00:00:05"),
                    (30, 40),
                ),
            ])
            .expect("writing");
        let v6 = host(&store, "2001:db8::1", "00:00:00", "00:10:00");
        assert_eq!((v6.flows, v6.bytes_in, v6.bytes_out), (1, 10, 20));
        assert_eq!(
            v6.peers[0].ip,
            "2001:db8::7".parse::<IpAddr>().expect("address")
        );
        let mapped = host(&store, "::ffff:10.0.0.1", "00:00:00", "00:10:00");
        assert_eq!(mapped.host, "10.0.0.1".parse::<IpAddr>().expect("address"));
        assert_eq!((mapped.flows, mapped.bytes_in), (1, 30));
    }

    #[test]
    fn a_host_with_more_flows_than_the_bound_is_read_newest_first_and_said_to_be_truncated() {
        let (_dir, store) = temp_store();
        let flows: Vec<_> = (0..10u16)
            .map(|i| {
                let client = format!("10.0.0.7:{}", 40_000 + i);
                let time = format!("00:00:{:02}", i);
                flow(&client, "10.0.0.1:80", 6, (&time, &time), (u64::from(i), 0))
            })
            .collect();
        store.put_flows(&flows).expect("writing");
        let t = store
            .host_traffic(&HostQuery {
                host: SERVER.parse().expect("address"),
                since: at("00:00:00"),
                until: at("01:00:00"),
                max_scanned: 3,
            })
            .expect("host traffic");
        assert_eq!((t.scanned, t.truncated, t.flows), (3, true, 3));
        // The newest three: 9, 8 and 7 bytes.
        assert_eq!(t.bytes_in, 24);
        // Exactly as many as the bound: all read, nothing left.
        let all = store
            .host_traffic(&HostQuery {
                host: SERVER.parse().expect("address"),
                since: at("00:00:00"),
                until: at("01:00:00"),
                max_scanned: 10,
            })
            .expect("host traffic");
        assert_eq!((all.scanned, all.truncated, all.bytes_in), (10, false, 45));
    }

    fn top(store: &Store, by: TopBy, limit: usize, max_scanned: usize) -> TopHosts {
        store
            .top_hosts(&TopQuery {
                since: at("00:00:00"),
                until: at("01:00:00"),
                by,
                limit,
                max_scanned,
            })
            .expect("top hosts")
    }

    fn ranked(top: &TopHosts) -> Vec<(String, u64)> {
        top.hosts
            .iter()
            .map(|h| {
                let value = match top.by {
                    TopBy::Bytes => h.bytes,
                    TopBy::Flows => h.flows,
                    TopBy::Pkts => h.pkts,
                };
                (h.ip.to_string(), value)
            })
            .collect()
    }

    #[test]
    fn top_talkers_count_both_ends_by_bytes_flows_or_packets() {
        let (_dir, store) = temp_store();
        store.put_flows(&server_hour()).expect("writing");
        let by_bytes = top(&store, TopBy::Bytes, 10, MAX_FLOWS_SCANNED);
        assert_eq!(
            ranked(&by_bytes),
            [
                ("10.0.0.1".into(), 6900),
                ("10.0.0.7".into(), 4600),
                ("10.0.0.9".into(), 2300)
            ]
        );
        assert_eq!((by_bytes.flows, by_bytes.truncated), (3, false));
        let server = &by_bytes.hosts[0];
        assert_eq!((server.bytes_in, server.bytes_out), (2600, 4300));
        assert_eq!((server.pkts_in, server.pkts_out, server.flows), (8, 7, 3));
        let by_flows = top(&store, TopBy::Flows, 2, MAX_FLOWS_SCANNED);
        assert_eq!(
            ranked(&by_flows),
            [("10.0.0.1".into(), 3), ("10.0.0.7".into(), 2)]
        );
        let by_pkts = top(&store, TopBy::Pkts, 10, MAX_FLOWS_SCANNED);
        assert_eq!(by_pkts.hosts[2].pkts, 5);
        // Bounded: the flows that ended last, and said so.
        let bounded = top(&store, TopBy::Bytes, 10, 1);
        assert_eq!(
            (bounded.scanned, bounded.truncated, bounded.flows),
            (1, true, 1)
        );
        assert_eq!(
            ranked(&bounded),
            [("10.0.0.1".into(), 2300), ("10.0.0.7".into(), 2300)]
        );
    }

    #[test]
    fn top_talkers_include_a_flow_that_began_in_the_period_and_ended_long_after() {
        let (_dir, store) = temp_store();
        store
            .put_flows(&[flow(
                "10.0.0.7:40000",
                "10.0.0.1:22",
                6,
                ("00:59:00", "23:00:00"),
                (5, 5),
            )])
            .expect("writing");
        // Many short flows ending after the period: read only as far as
        // the longest flow stored reaches.
        let later: Vec<_> = (0..20u16)
            .map(|i| {
                flow(
                    &format!("10.0.0.8:{}", 40_000 + i),
                    "10.0.0.1:80",
                    6,
                    ("23:30:00", "23:30:00"),
                    (1, 1),
                )
            })
            .collect();
        store.put_flows(&later).expect("writing");
        let t = top(&store, TopBy::Bytes, 10, MAX_FLOWS_SCANNED);
        assert_eq!(
            ranked(&t),
            [("10.0.0.1".into(), 10), ("10.0.0.7".into(), 10)]
        );
        assert_eq!(t.flows, 1);
        // Nothing else stored ended between the period and the long flow's
        // end, so the walk read the long flow and the period's flows only.
        assert_eq!(t.scanned, 1);
    }

    #[test]
    fn a_store_with_flows_from_before_the_longest_flow_was_kept_walks_every_later_end() {
        let (_dir, store) = temp_store();
        store
            .put_flows(&[flow(
                "10.0.0.7:40000",
                "10.0.0.1:22",
                6,
                ("00:59:00", "23:00:00"),
                (5, 5),
            )])
            .expect("writing");
        // As a store written before the key existed.
        let txn = store.db.begin_write().expect("write");
        txn.open_table(META)
            .expect("meta")
            .remove(LONGEST_FLOW_KEY)
            .expect("remove");
        txn.commit().expect("commit");
        store
            .put_flows(&[flow(
                "10.0.0.8:40000",
                "10.0.0.1:80",
                6,
                ("00:10:00", "00:10:01"),
                (1, 1),
            )])
            .expect("writing");
        let t = top(&store, TopBy::Flows, 10, MAX_FLOWS_SCANNED);
        assert_eq!(t.flows, 2);
    }

    #[test]
    fn ranking_names_parse() {
        assert_eq!("bytes".parse(), Ok(TopBy::Bytes));
        assert_eq!("pkts".parse(), Ok(TopBy::Pkts));
        assert_eq!("packets".parse(), Ok(TopBy::Pkts));
        assert_eq!("flows".parse(), Ok(TopBy::Flows));
        assert!(
            "Bytes"
                .parse::<TopBy>()
                .unwrap_err()
                .contains("bytes, flows or pkts")
        );
    }
}
