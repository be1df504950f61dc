//! Rates and top talkers from two snapshots of the kernel counters.
//!
//! Pure functions of counter values: rates come from deltas over the
//! measured time between snapshots, not from an assumed tick length.

use std::{
    collections::HashMap,
    fmt,
    net::IpAddr,
    time::{Duration, Instant},
};

use nta_common::{
    Counter, DstHostStats, GlobalCounters, IpKey, SourceStats,
    maps::{DST_CLASSES, PROBES, Probe, SERVICES},
    sketch::HLL_REGISTERS,
};

/// What the agent keeps of a source between two reads: the counters its
/// rules take deltas of and the windows they read — 152 bytes instead of
/// the kernel's 368 (the two 64-byte sketches stay in the kernel), which
/// matters with 65 536 sources in two snapshots (the agent's peak of
/// memory under a spoofed flood).
///
/// The window counts are `u32`: each counts ports or hosts new to the
/// source's 512-bit sketches (weighing at most 3 each), so they stay far
/// below 2³².
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceView {
    pub packets: u64,
    pub tcp_packets: u64,
    /// Probes sent, by [`Probe`]: `probes[Syn]` is every SYN without ACK.
    pub probes: [u64; PROBES],
    pub udp_packets: u64,
    pub icmp_packets: u64,
    pub rsts: u64,
    pub bare_acks: u64,
    pub last_dst: IpKey,
    pub last_dst_port: u16,
    pub slow_bits: u32,
    /// Bits set in the host sketch, in the slow window.
    pub host_bits: u32,
    pub fast_ports: u32,
    pub weighted_score: u32,
    pub slow_window_start_ns: u64,
    pub fast_window_start_ns: u64,
    pub weighted_window_start_ns: u64,
}

impl SourceView {
    /// Probes of one kind sent.
    pub fn probe(&self, kind: Probe) -> u64 {
        self.probes[kind as usize]
    }

    /// SYNs without ACK sent.
    pub fn syns(&self) -> u64 {
        self.probe(Probe::Syn)
    }
}

const _: () = assert!(std::mem::size_of::<SourceView>() == 152);

/// A window count as `u32`, saturating (see [`SourceView`]).
fn narrow(count: u64) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

impl From<&SourceStats> for SourceView {
    fn from(s: &SourceStats) -> Self {
        Self {
            packets: s.packets(),
            tcp_packets: s.tcp_packets(),
            probes: s.probes,
            udp_packets: s.udp_packets(),
            icmp_packets: s.icmp_packets(),
            rsts: s.rsts,
            bare_acks: s.bare_acks,
            last_dst: s.last_dst,
            last_dst_port: s.last_dst_port,
            slow_bits: narrow(s.slow_bits),
            host_bits: narrow(s.host_bits),
            slow_window_start_ns: s.slow_window_start_ns,
            fast_ports: narrow(s.fast_ports),
            fast_window_start_ns: s.fast_window_start_ns,
            weighted_score: narrow(s.weighted_score),
            weighted_window_start_ns: s.weighted_window_start_ns,
        }
    }
}

/// What the agent keeps of a destination between two reads: the totals
/// its flood rules take deltas of and the source sketch — 352 bytes instead
/// of the kernel's 472 (the window bases and timestamps are the kernel's
/// business), with 16 384 destinations in each of two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DstView {
    /// Packets and bytes received, by `DstClass`, since the entry was made.
    pub packets: [u64; DST_CLASSES],
    pub bytes: [u64; DST_CLASSES],
    /// UDP packets from each reflection service's port.
    pub service_packets: [u64; SERVICES],
    /// HyperLogLog registers of the sources in the kernel's sketch window.
    pub sources: [u8; HLL_REGISTERS],
}

const _: () = assert!(std::mem::size_of::<DstView>() == 352);

impl Default for DstView {
    fn default() -> Self {
        Self {
            packets: [0; DST_CLASSES],
            bytes: [0; DST_CLASSES],
            service_packets: [0; SERVICES],
            sources: [0; HLL_REGISTERS],
        }
    }
}

impl From<&DstHostStats> for DstView {
    fn from(d: &DstHostStats) -> Self {
        Self {
            packets: d.packets,
            bytes: d.bytes,
            service_packets: d.service_packets,
            sources: d.sources,
        }
    }
}

/// Sources by address: a sorted vector, looked up by binary search.
///
/// Two snapshots of up to 65 536 sources are alive at once; a vector holds
/// them in exactly their size (7.5 MiB each), where a `HashMap` allocates
/// twice the slots and a `BTreeMap`'s part-filled nodes half as much again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sources(Vec<(IpKey, SourceView)>);

impl Sources {
    pub fn get(&self, key: &IpKey) -> Option<&SourceView> {
        self.0
            .binary_search_by(|(k, _)| k.cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Adds or replaces one source, keeping the order.
    pub fn insert(&mut self, key: IpKey, view: SourceView) {
        match self.0.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => self.0[i].1 = view,
            Err(i) => self.0.insert(i, (key, view)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&IpKey, &SourceView)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &IpKey> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(IpKey, SourceView)> for Sources {
    fn from_iter<I: IntoIterator<Item = (IpKey, SourceView)>>(iter: I) -> Self {
        // Room for a full map up front: growing by doubling would briefly
        // hold two copies, and pages never written cost no memory.
        let mut all: Vec<(IpKey, SourceView)> =
            Vec::with_capacity(nta_common::maps::SOURCES_MAX_ENTRIES as usize);
        all.extend(iter);
        // Unstable: a stable sort allocates a buffer of half the vector
        // (5 MiB at 65 536 sources) at the agent's peak of memory.
        all.sort_unstable_by_key(|(k, _)| *k);
        // A key seen twice (the map changed under the walk): keep the read
        // with more packets, the later one, since counters only grow (if
        // the entry was evicted and re-created between the reads, either
        // is a true read of it).
        all.dedup_by(|(a, later), (b, kept)| {
            if a == b && later.packets > kept.packets {
                *kept = *later;
            }
            a == b
        });
        Sources(all)
    }
}

impl<'a> IntoIterator for &'a Sources {
    type Item = (&'a IpKey, &'a SourceView);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (IpKey, SourceView)>,
        fn(&'a (IpKey, SourceView)) -> (&'a IpKey, &'a SourceView),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

/// Every kernel counter at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub at: Instant,
    pub global: GlobalCounters,
    pub sources: Sources,
    pub dst_hosts: HashMap<IpKey, DstView>,
    /// SYNs per destination port, indexed by port.
    pub syn_ports: Vec<u64>,
}

impl Snapshot {
    /// Nothing counted yet, at `at`.
    pub fn empty(at: Instant) -> Self {
        Snapshot {
            at,
            global: GlobalCounters::ZERO,
            sources: Sources::default(),
            dst_hosts: HashMap::new(),
            syn_ports: vec![0; nta_common::maps::PORT_COUNT],
        }
    }

    /// How much the global counter `c` grew since `before`.
    pub fn grown_since(&self, before: &Snapshot, c: Counter) -> u64 {
        growth(before.global.get(c), self.global.get(c))
    }
}

/// What happened between two snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub elapsed: Duration,
    pub packets: u64,
    pub bytes: u64,
    pub syns: u64,
    pub packets_per_sec: f64,
    pub bits_per_sec: f64,
    pub syns_per_sec: f64,
    /// Source that sent the most packets in the interval, and how many.
    pub top_source: Option<(IpAddr, u64)>,
    /// Destination port that received the most SYNs in the interval, and how many.
    pub top_syn_port: Option<(u16, u64)>,
}

/// Counter growth from `before` to `after`. A counter that went backwards
/// belongs to an entry that was evicted and re-created: all of it is new.
pub fn growth(before: u64, after: u64) -> u64 {
    if after >= before {
        after - before
    } else {
        after
    }
}

/// `n` over `elapsed`, per second; nothing over no time.
pub fn per_sec(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// `part` as a fraction of `whole`, 0..=1; nothing of nothing.
pub fn share(part: u64, whole: u64) -> f64 {
    if whole > 0 {
        part as f64 / whole as f64
    } else {
        0.0
    }
}

/// The busiest `n` of a stream of counts, kept in memory for a few times
/// `n` whatever the stream's length: a spoofed flood's 65 536 sources cost
/// no more than ten. Busiest first, ties to the lower key, so reports are
/// deterministic.
#[derive(Debug, Clone)]
pub struct Busiest<T> {
    n: usize,
    kept: Vec<(T, u64)>,
    offered: u64,
}

impl<T: Copy + Ord> Busiest<T> {
    pub fn new(n: usize) -> Self {
        Self {
            n,
            kept: Vec::new(),
            offered: 0,
        }
    }

    pub fn add(&mut self, key: T, count: u64) {
        self.offered += 1;
        self.kept.push((key, count));
        if self.kept.len() >= 4 * self.n.max(1) {
            self.trim();
        }
    }

    /// How many were added.
    pub fn offered(&self) -> u64 {
        self.offered
    }

    fn trim(&mut self) {
        self.kept
            .sort_unstable_by(|(a, x), (b, y)| y.cmp(x).then(a.cmp(b)));
        self.kept.truncate(self.n);
    }

    /// The busiest, busiest first.
    pub fn into_sorted(mut self) -> Vec<(T, u64)> {
        self.trim();
        self.kept
    }
}

/// The `n` sources that sent the most packets from `before` to `after`,
/// busiest first (ties to the lower address).
pub fn source_growth(before: &Snapshot, after: &Snapshot, n: usize) -> Vec<(IpAddr, u64)> {
    let mut busiest = Busiest::new(n);
    for (key, now) in &after.sources {
        let then = before.sources.get(key).map_or(0, |s| s.packets);
        let grown = growth(then, now.packets);
        if grown > 0 {
            busiest.add(IpAddr::from(*key), grown);
        }
    }
    busiest.into_sorted()
}

/// SYN growth per destination port from `before` to `after` (counters
/// indexed by port), busiest first, ties to the lower port.
pub fn port_growth(before: &[u64], after: &[u64]) -> Vec<(u16, u64)> {
    let mut ports: Vec<(u16, u64)> = after
        .iter()
        .enumerate()
        .filter_map(|(port, &now)| {
            let n = growth(before.get(port).copied().unwrap_or(0), now);
            Some((u16::try_from(port).ok()?, n)).filter(|_| n > 0)
        })
        .collect();
    busiest_first(&mut ports);
    ports
}

/// Orders (port, count) pairs as [`port_growth`] returns them: busiest
/// first, ties to the lower port.
pub fn busiest_first(ports: &mut [(u16, u64)]) {
    ports.sort_by(|(pa, a), (pb, b)| b.cmp(a).then(pa.cmp(pb)));
}

/// Summarises the traffic between two snapshots.
pub fn summarize(before: &Snapshot, after: &Snapshot) -> Summary {
    let elapsed = after.at.saturating_duration_since(before.at);
    let packets = after.grown_since(before, Counter::Packets);
    let bytes = after.grown_since(before, Counter::Bytes);
    let syns = after.grown_since(before, Counter::TcpSyn);
    let per_sec = |n: u64| per_sec(n, elapsed);

    let top_source = source_growth(before, after, 1).first().copied();
    let top_syn_port = port_growth(&before.syn_ports, &after.syn_ports)
        .first()
        .copied();

    Summary {
        elapsed,
        packets,
        bytes,
        syns,
        packets_per_sec: per_sec(packets),
        bits_per_sec: per_sec(bytes) * 8.0,
        syns_per_sec: per_sec(syns),
        top_source,
        top_syn_port,
    }
}

/// `1234567.0` → `1.23M`: rates a person reads at a glance.
pub fn si(value: f64) -> String {
    const UNITS: [(f64, &str); 3] = [(1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (scale, unit) in UNITS {
        if value >= scale {
            return format!("{:.2}{unit}", value / scale);
        }
    }
    format!("{value:.0}")
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} pkt/s, {}bit/s, {} SYN/s ({} pkts, {} SYN in {:.2}s)",
            si(self.packets_per_sec),
            si(self.bits_per_sec),
            si(self.syns_per_sec),
            self.packets,
            self.syns,
            self.elapsed.as_secs_f64(),
        )?;
        if let Some((addr, n)) = self.top_source {
            write!(f, "; top source {addr} ({n} pkts)")?;
        }
        if let Some((port, n)) = self.top_syn_port {
            write!(f, "; top SYN port {port} ({n} SYN)")?;
        }
        Ok(())
    }
}

/// Totals since the program was loaded, one `name=value` per counter.
pub fn totals(global: &GlobalCounters) -> String {
    Counter::ALL
        .iter()
        .map(|c| format!("{}={}", c.name(), global.get(*c)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(packets: u64) -> SourceView {
        SourceView {
            packets,
            ..SourceView::default()
        }
    }

    #[test]
    fn busiest_keeps_the_top_n_of_any_stream_in_bounded_memory() {
        let mut b = Busiest::new(3);
        // 10 000 offered, in an order that puts the busiest everywhere.
        for i in 0..10_000u32 {
            let count = u64::from((i * 7919) % 10_000);
            b.add(i, count);
            assert!(b.kept.len() < 12, "at most 4 × n kept");
        }
        assert_eq!(b.offered(), 10_000);
        let top = b.into_sorted();
        let counts: Vec<u64> = top.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [9_999, 9_998, 9_997]);
        // Ties go to the lower key.
        let mut tied = Busiest::new(2);
        for key in [5, 3, 9, 1] {
            tied.add(key, 7);
        }
        assert_eq!(tied.into_sorted(), [(1, 7), (3, 7)]);
    }

    #[test]
    fn sources_are_found_whatever_order_they_came_in() {
        let a: IpAddr = "198.18.0.9".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let c: IpAddr = "10.0.0.1".parse().unwrap();
        let sources: Sources = [
            (a.into(), source(1)),
            (b.into(), source(2)),
            (c.into(), source(3)),
            (a.into(), source(4)),
        ]
        .into_iter()
        .collect();
        assert_eq!(sources.len(), 3);
        assert_eq!(
            sources.get(&a.into()).map(|s| s.packets),
            Some(4),
            "the later read, with more packets, wins"
        );
        assert_eq!(sources.get(&c.into()).map(|s| s.packets), Some(3));
        assert!(
            sources
                .get(&IpKey::from(IpAddr::from([192, 0, 2, 1])))
                .is_none()
        );
    }

    #[test]
    fn rates_use_the_measured_interval() {
        let t0 = Instant::now();
        let before = Snapshot::empty(t0);
        let mut after = Snapshot::empty(t0 + Duration::from_millis(500));
        after.global.values[Counter::Packets as usize] = 1_000;
        after.global.values[Counter::Bytes as usize] = 64_000;
        after.global.values[Counter::TcpSyn as usize] = 200;
        let s = summarize(&before, &after);
        assert_eq!((s.packets, s.bytes, s.syns), (1_000, 64_000, 200));
        assert_eq!(s.packets_per_sec, 2_000.0);
        assert_eq!(s.bits_per_sec, 1_024_000.0);
        assert_eq!(s.syns_per_sec, 400.0);
    }

    #[test]
    fn top_source_is_the_busiest_in_the_interval_not_overall() {
        let t0 = Instant::now();
        let old: IpAddr = "198.18.0.1".parse().unwrap();
        let new: IpAddr = "198.18.0.2".parse().unwrap();
        let mut before = Snapshot::empty(t0);
        before.sources.insert(old.into(), source(1_000_000));
        let mut after = Snapshot::empty(t0 + Duration::from_secs(1));
        after.sources.insert(old.into(), source(1_000_010));
        after.sources.insert(new.into(), source(50));
        assert_eq!(summarize(&before, &after).top_source, Some((new, 50)));
    }

    #[test]
    fn an_evicted_and_recreated_source_counts_from_zero() {
        let t0 = Instant::now();
        let addr: IpAddr = "2001:db8::1".parse().unwrap();
        let mut before = Snapshot::empty(t0);
        before.sources.insert(addr.into(), source(500));
        let mut after = Snapshot::empty(t0 + Duration::from_secs(1));
        after.sources.insert(addr.into(), source(7));
        assert_eq!(summarize(&before, &after).top_source, Some((addr, 7)));
    }

    #[test]
    fn top_syn_port_and_quiet_intervals() {
        let t0 = Instant::now();
        let before = Snapshot::empty(t0);
        let mut after = Snapshot::empty(t0 + Duration::from_secs(1));
        let quiet = summarize(&before, &after);
        assert_eq!((quiet.top_source, quiet.top_syn_port), (None, None));
        after.syn_ports[80] = 200;
        after.syn_ports[443] = 3;
        assert_eq!(summarize(&before, &after).top_syn_port, Some((80, 200)));
    }

    #[test]
    fn summary_line_reads_as_rates() {
        let t0 = Instant::now();
        let before = Snapshot::empty(t0);
        let mut after = Snapshot::empty(t0 + Duration::from_secs(1));
        after.global.values[Counter::Packets as usize] = 400;
        after.global.values[Counter::Bytes as usize] = 24_000;
        after.global.values[Counter::TcpSyn as usize] = 200;
        after.syn_ports[80] = 200;
        let line = summarize(&before, &after).to_string();
        assert_eq!(
            line,
            "400 pkt/s, 192.00kbit/s, 200 SYN/s (400 pkts, 200 SYN in 1.00s); top SYN port 80 (200 SYN)"
        );
    }

    #[test]
    fn totals_name_every_counter() {
        let mut g = GlobalCounters::ZERO;
        g.values[Counter::TcpSyn as usize] = 200;
        let line = totals(&g);
        assert!(line.contains("tcp_syn=200"), "{line}");
        assert_eq!(line.split(' ').count(), Counter::ALL.len());
    }
}
