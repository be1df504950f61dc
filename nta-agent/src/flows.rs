//! Flow records: what the flow table's entries become when their flow goes
//! idle or the agent stops, with the end that opened the flow as the
//! client (Suricata's and NetFlow's `toserver` direction); and the
//! [`Labels`] the payload pipeline and the alerts give flows meanwhile.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use foldhash::fast::RandomState;
use jiff::Timestamp;
use nta_common::{
    IpKey,
    flow::{FLOWS_MAX_ENTRIES, FlowKey, FlowStats, HIGH_TO_LOW, LOW_TO_HIGH},
};

use crate::payload::AppProto;

/// Why a record was written, in EVE's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Idle for the idle timeout.
    Timeout,
    /// Still going after the active timeout: the record says what came
    /// since the flow's previous one, and another will follow.
    Active,
    /// The agent stopped, or the capture ended.
    Shutdown,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Active => "active",
            Reason::Shutdown => "shutdown",
        }
    }
}

/// One flow, as exported.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRecord {
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    /// IP protocol number.
    pub proto: u8,
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub start: Timestamp,
    pub end: Timestamp,
    /// TCP flags seen from each end.
    pub tcp_flags_toserver: u8,
    pub tcp_flags_toclient: u8,
    pub reason: Reason,
    /// What its first bytes speak, if nta knows.
    pub app_proto: Option<AppProto>,
    /// The alerts raised on it, oldest first, at most [`MAX_ALERTS`].
    pub alerts: Vec<u64>,
}

impl FlowRecord {
    /// The record of `stats`, whose clock reads `clock` nanoseconds since
    /// the epoch at 0 (the capture clock is the epoch's: 0).
    pub fn of(key: &FlowKey, stats: &FlowStats, clock: i128, reason: Reason) -> Self {
        let low = (IpAddr::from(key.low), key.low_port);
        let high = (IpAddr::from(key.high), key.high_port);
        let (client, server, to_server, to_client) = if usize::from(stats.opener) == HIGH_TO_LOW {
            (high, low, HIGH_TO_LOW, LOW_TO_HIGH)
        } else {
            (low, high, LOW_TO_HIGH, HIGH_TO_LOW)
        };
        let at = |ns: u64| {
            Timestamp::from_nanosecond(clock + i128::from(ns)).unwrap_or(Timestamp::UNIX_EPOCH)
        };
        FlowRecord {
            client,
            server,
            proto: key.proto,
            pkts_toserver: stats.packets[to_server],
            pkts_toclient: stats.packets[to_client],
            bytes_toserver: stats.bytes[to_server],
            bytes_toclient: stats.bytes[to_client],
            start: at(stats.first_seen_ns),
            end: at(stats.last_seen_ns),
            tcp_flags_toserver: stats.flags_from(to_server),
            tcp_flags_toclient: stats.flags_from(to_client),
            reason,
            app_proto: None,
            alerts: Vec::new(),
        }
    }

    /// The record with what `label` says of its flow.
    pub fn labelled(self, label: Option<Label>) -> Self {
        let Some(label) = label else { return self };
        Self {
            app_proto: label.app_proto,
            alerts: label.alerts,
            ..self
        }
    }

    /// The flow table's key of the flow.
    pub fn key(&self) -> FlowKey {
        let (client, server) = (IpKey::from(self.client.0), IpKey::from(self.server.0));
        FlowKey::of(&client, self.client.1, &server, self.server.1, self.proto).0
    }

    /// Seconds from its first packet to its last.
    pub fn age(&self) -> u64 {
        u64::try_from(self.end.duration_since(self.start).as_secs()).unwrap_or(0)
    }

    /// Suricata's flow states: TCP closed once a FIN or RST was seen,
    /// established once both ends sent, else new.
    pub fn state(&self) -> &'static str {
        use nta_common::classify::tcp_flags::{FIN, RST};
        let flags = self.tcp_flags_toserver | self.tcp_flags_toclient;
        if self.proto == nta_common::maps::ip_proto::TCP && flags & (FIN | RST) != 0 {
            "closed"
        } else if self.pkts_toserver > 0 && self.pkts_toclient > 0 {
            "established"
        } else {
            "new"
        }
    }
}

/// Flows a walk picked, as they were when read.
pub type Picked = Vec<(FlowKey, FlowStats, Pick)>;

/// What a walk of the flow table does with a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Leave it: no record yet.
    Keep,
    /// Idle: write its record, remove it.
    End,
    /// Going on past the active timeout: write a record of what came
    /// since the last, leave it.
    Cut,
}

/// The idle and active timeouts, and what each long flow's records have
/// said so far, so that the next one says only what came since (as
/// NetFlow's and IPFIX's delta counts do).
#[derive(Debug)]
pub struct Timeouts {
    idle_ns: u64,
    active_ns: u64,
    reported: HashMap<FlowKey, Reported, RandomState>,
    /// Most long flows reported on: as many as the kernel's table holds.
    capacity: usize,
}

/// The counts a flow's records gave so far, and when the last was cut.
#[derive(Debug, Clone, Copy)]
struct Reported {
    packets: [u64; 2],
    bytes: [u64; 2],
    cut_ns: u64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Timeouts {
    pub fn new(idle: Duration, active: Duration) -> Self {
        Self {
            idle_ns: nanos(idle),
            active_ns: nanos(active),
            reported: HashMap::default(),
            capacity: FLOWS_MAX_ENTRIES as usize,
        }
    }

    /// For a kernel flow table of `flows` entries, not the default size.
    pub fn for_table(mut self, flows: u32) -> Self {
        self.capacity = flows as usize;
        self
    }

    /// What to do with the flow `key` at `now` (the flow table's clock).
    pub fn pick(&self, key: &FlowKey, stats: &FlowStats, now: u64) -> Pick {
        // A flow is claimed before its first packet's time is written: it
        // is starting, not idle since the clock's start.
        let last_seen = stats.last_seen_ns.max(stats.first_seen_ns);
        if now.saturating_sub(last_seen) >= self.idle_ns {
            return Pick::End;
        }
        let since = self
            .reported
            .get(key)
            .map_or(stats.first_seen_ns, |r| r.cut_ns);
        if now.saturating_sub(since) >= self.active_ns {
            Pick::Cut
        } else {
            Pick::Keep
        }
    }

    /// What a walk at `now` does with the flow `key`: ends every flow when
    /// the table is being emptied (`end`: the agent stops, the capture
    /// ended), else as [`Timeouts::pick`] says.
    pub fn pick_for(&self, key: &FlowKey, stats: &FlowStats, now: u64, end: bool) -> Pick {
        if end {
            Pick::End
        } else {
            self.pick(key, stats, now)
        }
    }

    /// The records of the flows a walk at `now` picked, in the order they
    /// began (the output is the same run after run); `clock` is the
    /// epoch's nanoseconds at the table's 0.
    pub fn records(
        &mut self,
        mut picked: Picked,
        clock: i128,
        now: u64,
        end: bool,
    ) -> Vec<FlowRecord> {
        picked.sort_unstable_by_key(|(k, f, _)| (f.first_seen_ns, *k));
        picked
            .iter()
            .filter_map(|(k, f, pick)| {
                let reason = match pick {
                    Pick::Cut => Reason::Active,
                    _ if end => Reason::Shutdown,
                    _ => Reason::Timeout,
                };
                self.record(k, f, clock, reason, now)
            })
            .collect()
    }

    /// The record of `stats` for `reason` at `now`: what came since the
    /// flow's previous record. `None` when nothing did (a flow cut by the
    /// active timeout, then idle).
    pub fn record(
        &mut self,
        key: &FlowKey,
        stats: &FlowStats,
        clock: i128,
        reason: Reason,
        now: u64,
    ) -> Option<FlowRecord> {
        let before = match reason {
            Reason::Active => self.reported.get(key).copied(),
            Reason::Timeout | Reason::Shutdown => self.reported.remove(key),
        };
        let mut part = *stats;
        if let Some(r) = before {
            for dir in 0..2 {
                part.packets[dir] = part.packets[dir].saturating_sub(r.packets[dir]);
                part.bytes[dir] = part.bytes[dir].saturating_sub(r.bytes[dir]);
            }
            part.first_seen_ns = r.cut_ns;
        }
        if reason == Reason::Active {
            if self.reported.len() >= self.capacity {
                // A flow whose entry went without ending here (a read
                // that stopped short) would stay: forget those not cut
                // for two active timeouts.
                let stale = self.active_ns.saturating_mul(2);
                self.reported
                    .retain(|_, r| now.saturating_sub(r.cut_ns) < stale);
            }
            // The entry was read after `now`: a packet counted in between
            // is in this part, so the next starts after it.
            let reported = Reported {
                packets: stats.packets,
                bytes: stats.bytes,
                cut_ns: now.max(stats.last_seen_ns),
            };
            self.reported.insert(*key, reported);
        }
        (part.packets != [0, 0]).then(|| FlowRecord::of(key, &part, clock, reason))
    }

    /// Long flows being reported on.
    pub fn len(&self) -> usize {
        self.reported.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reported.is_empty()
    }
}

/// Alert ids kept per flow: a flow an attack reuses for thousands of
/// alerts names the first ones.
pub const MAX_ALERTS: usize = 16;

/// What the agent learnt of a flow besides its counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Label {
    pub app_proto: Option<AppProto>,
    pub alerts: Vec<u64>,
}

/// Labels of the flows not yet exported, shared by the payload pipeline
/// and the alerts (which write) and the flow exporter (which takes). As
/// many as the kernel's flow table holds flows; past that an eighth are
/// forgotten, as their flows have most likely been evicted too.
#[derive(Debug, Clone)]
pub struct Labels {
    labels: Arc<Mutex<HashMap<FlowKey, Label, RandomState>>>,
    capacity: usize,
}

impl Default for Labels {
    fn default() -> Self {
        Self::for_table(FLOWS_MAX_ENTRIES)
    }
}

impl Labels {
    /// For a kernel flow table of `flows` entries.
    pub fn for_table(flows: u32) -> Self {
        Self {
            labels: Arc::default(),
            capacity: flows as usize,
        }
    }

    fn update(&self, key: FlowKey, f: impl FnOnce(&mut Label)) {
        let mut labels = self.labels.lock().unwrap_or_else(PoisonError::into_inner);
        if labels.len() >= self.capacity && !labels.contains_key(&key) {
            let drop: Vec<FlowKey> = labels.keys().take(labels.len() / 8).copied().collect();
            for k in drop {
                labels.remove(&k);
            }
        }
        f(labels.entry(key).or_default());
    }

    /// Says `key`'s flow speaks `app`; the first protocol told stays.
    pub fn set_app(&self, key: FlowKey, app: AppProto) {
        self.update(key, |l| {
            l.app_proto.get_or_insert(app);
        });
    }

    /// Adds alert `id` to `key`'s flow.
    pub fn add_alert(&self, key: FlowKey, id: u64) {
        self.update(key, |l| {
            if l.alerts.len() < MAX_ALERTS && !l.alerts.contains(&id) {
                l.alerts.push(id);
            }
        });
    }

    /// The label of `key`'s flow, for a record of a flow going on.
    pub fn get(&self, key: &FlowKey) -> Option<Label> {
        let labels = self.labels.lock().unwrap_or_else(PoisonError::into_inner);
        labels.get(key).cloned()
    }

    /// The labels of `records`' flows: kept for those that go on
    /// ([`Reason::Active`]), taken for those that ended.
    pub fn apply(&self, records: Vec<FlowRecord>) -> Vec<FlowRecord> {
        records
            .into_iter()
            .map(|r| {
                let label = match r.reason {
                    Reason::Active => self.get(&r.key()),
                    Reason::Timeout | Reason::Shutdown => self.take(&r.key()),
                };
                r.labelled(label)
            })
            .collect()
    }

    /// The label of `key`'s flow, removed: its record is being written.
    pub fn take(&self, key: &FlowKey) -> Option<Label> {
        let mut labels = self.labels.lock().unwrap_or_else(PoisonError::into_inner);
        labels.remove(key)
    }

    /// Flows labelled.
    pub fn len(&self) -> usize {
        self.labels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use nta_common::IpKey;

    use super::*;

    #[test]
    fn the_end_that_sent_first_is_the_client() {
        let server = IpKey::from_v4([10, 0, 0, 1]);
        let client = IpKey::from_v4([10, 0, 0, 9]);
        let (key, dir) = FlowKey::of(&client, 40_000, &server, 80, 6);
        assert_eq!(dir, HIGH_TO_LOW);
        let mut stats = FlowStats {
            first_seen_ns: 1_000_000_000,
            last_seen_ns: 3_500_000_000,
            opener: dir as u8,
            ..FlowStats::ZERO
        };
        stats.packets[dir] = 3;
        stats.bytes[dir] = 300;
        stats.packets[1 - dir] = 2;
        stats.bytes[1 - dir] = 2000;
        stats.tcp_flags = 0x02 << (8 * dir) | 0x12 << (8 * (1 - dir));
        let r = FlowRecord::of(&key, &stats, 0, Reason::Timeout);
        assert_eq!(r.client, (IpAddr::from([10, 0, 0, 9]), 40_000));
        assert_eq!(r.server, (IpAddr::from([10, 0, 0, 1]), 80));
        assert_eq!((r.pkts_toserver, r.bytes_toclient), (3, 2000));
        assert_eq!((r.tcp_flags_toserver, r.tcp_flags_toclient), (0x02, 0x12));
        assert_eq!(r.age(), 2);
        assert_eq!(r.state(), "established");
        assert_eq!(r.key(), key);
    }

    /// A client's TCP flow to port 443 from `first` to `last` ns, with no
    /// packet counted yet, and the client's direction.
    fn client_flow(first: u64, last: u64) -> (FlowKey, FlowStats, usize) {
        let (key, dir) = FlowKey::of(
            &IpKey::from_v4([10, 0, 0, 9]),
            40_000,
            &IpKey::from_v4([10, 0, 0, 1]),
            443,
            6,
        );
        let stats = FlowStats {
            first_seen_ns: first,
            last_seen_ns: last,
            opener: dir as u8,
            ..FlowStats::ZERO
        };
        (key, stats, dir)
    }

    #[test]
    fn a_long_flow_is_reported_in_parts_that_add_up() {
        let s = 1_000_000_000u64;
        let (key, mut stats, dir) = client_flow(10 * s, 69 * s);
        let mut t = Timeouts::new(Duration::from_secs(15), Duration::from_secs(60));
        stats.packets[dir] = 100;
        stats.bytes[dir] = 10_000;
        assert_eq!(t.pick(&key, &stats, 69 * s), Pick::Keep);
        assert_eq!(t.pick(&key, &stats, 70 * s), Pick::Cut);
        let first = t
            .record(&key, &stats, 0, Reason::Active, 70 * s)
            .expect("a record");
        assert_eq!((first.pkts_toserver, first.bytes_toserver), (100, 10_000));
        assert_eq!(first.start.as_second(), 10);
        assert_eq!(t.pick(&key, &stats, 71 * s), Pick::Keep, "cut a second ago");

        stats.packets[dir] = 130;
        stats.bytes[dir] = 13_000;
        stats.last_seen_ns = 80 * s;
        assert_eq!(t.pick(&key, &stats, 95 * s), Pick::End);
        let last = t
            .record(&key, &stats, 0, Reason::Timeout, 95 * s)
            .expect("a record");
        assert_eq!((last.pkts_toserver, last.bytes_toserver), (30, 3_000));
        assert_eq!((last.start.as_second(), last.end.as_second()), (70, 80));
        assert!(t.is_empty(), "an ended flow is forgotten");

        // Cut, then idle with nothing new: no empty record.
        t.record(&key, &stats, 0, Reason::Active, 96 * s);
        assert_eq!(t.record(&key, &stats, 0, Reason::Timeout, 120 * s), None);
    }

    /// A walk may read a flow between its claim and its first packet's
    /// time: it is starting, and kept.
    #[test]
    fn a_flow_read_as_it_starts_is_kept() {
        let s = 1_000_000_000u64;
        let (key, stats, _) = client_flow(100 * s, 0);
        let t = Timeouts::new(Duration::from_secs(15), Duration::from_secs(60));
        assert_eq!(t.pick(&key, &stats, 100 * s), Pick::Keep);
        assert_eq!(
            t.pick_for(&key, &stats, 100 * s, true),
            Pick::End,
            "at shutdown"
        );
        // A flow left in that state (a packet raced the freeing of its
        // entry) still ends once it has been idle that long.
        assert_eq!(t.pick(&key, &stats, 115 * s), Pick::End);
    }

    /// A walk takes `now`, then reads the entries: a packet counted in
    /// between ends the part after `now`, and the next part starts after
    /// it, so the parts never overlap.
    #[test]
    fn a_part_read_after_its_cut_is_not_overlapped_by_the_next() {
        let ms = 1_000_000u64;
        let (key, mut stats, dir) = client_flow(1_000 * ms, 2_031 * ms);
        let mut t = Timeouts::new(Duration::from_secs(2), Duration::from_secs(1));
        stats.packets[dir] = 21;
        let first = t
            .record(&key, &stats, 0, Reason::Active, 2_000 * ms)
            .expect("a record");
        stats.packets[dir] = 30;
        stats.last_seen_ns = 2_900 * ms;
        let second = t
            .record(&key, &stats, 0, Reason::Timeout, 5_000 * ms)
            .expect("a record");
        assert!(second.start >= first.end, "{first:?} {second:?}");
        assert_eq!(second.pkts_toserver, 9);
    }

    #[test]
    fn labels_stay_for_flows_going_on_and_go_with_their_end() {
        let (key, dir) = FlowKey::of(
            &IpKey::from_v4([10, 0, 0, 9]),
            40_000,
            &IpKey::from_v4([10, 0, 0, 1]),
            80,
            6,
        );
        let labels = Labels::default();
        labels.set_app(key, AppProto::Http);
        labels.set_app(key, AppProto::Tls);
        labels.add_alert(key, 7);
        labels.add_alert(key, 7);
        let mut stats = FlowStats {
            opener: dir as u8,
            ..FlowStats::ZERO
        };
        stats.packets[dir] = 1;
        let going = FlowRecord::of(&key, &stats, 0, Reason::Active);
        let ended = FlowRecord {
            reason: Reason::Timeout,
            ..going.clone()
        };
        let [going] = labels.apply(vec![going]).try_into().expect("one");
        assert_eq!(
            (going.app_proto, going.alerts),
            (Some(AppProto::Http), vec![7])
        );
        let [ended] = labels.apply(vec![ended]).try_into().expect("one");
        assert_eq!(ended.app_proto, Some(AppProto::Http));
        assert!(labels.is_empty());
    }
}
