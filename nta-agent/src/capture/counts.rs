//! The XDP program's counting (`nta_common::count`) over a capture's frames,
//! in memory: the same global totals, per-source and per-destination
//! entries (as many as the kernel's tables hold, a new key turned away
//! while they are full, idle ones freed as each snapshot reads them, as the
//! agent frees the kernel's), SYNs per port, and threshold crossings
//! queued for the reader to act on at once. A [`PacketSource`] whose clock
//! is the capture's.

use std::{
    cell::{Cell, RefCell, UnsafeCell},
    convert::Infallible,
    net::IpAddr,
    time::{Duration, Instant},
};

use std::collections::HashMap;

use jiff::Timestamp;
use nta_common::{
    Counter, DstHostStats, GlobalCounters, IpKey, SourceStats,
    count::{self, State, Verdict},
    flow::{FlowKey, FlowStats},
    maps::{DST_HOSTS_MAX_ENTRIES, PORT_COUNT, SOURCES_MAX_ENTRIES, ThresholdEvent, Thresholds},
    parse::Bytes,
    table::TableLayout,
};

use super::{Link, link::ip_link};
use crate::{
    flows::{Pick, Picked},
    idle::Idle,
    source::{Dropped, PacketSource, SourceTime},
    traffic::{DstView, Snapshot, SourceView, port_growth},
};

/// Counters kept in memory, updated as the kernel updates its maps.
///
/// Each map sits in its own cell: [`State`] hands out raw pointers into
/// entries (the kernel's CPUs share them), and a pointer into one map stays
/// valid while another is updated. Entries are boxed, so a pointer is valid
/// until its entry is removed, which only a snapshot or a walk of the flows
/// does, between frames.
pub struct Counts {
    global: UnsafeCell<GlobalCounters>,
    sources: UnsafeCell<Entries<SourceStats>>,
    destinations: UnsafeCell<Entries<DstHostStats>>,
    flows: UnsafeCell<Entries<FlowStats, FlowKey>>,
    /// The reader is one CPU: one new-flow window.
    new_flows: UnsafeCell<[u64; 2]>,
    /// The new-source window, as the program's `NEW_SOURCES`.
    new_sources: UnsafeCell<[u64; 2]>,
    syn_ports: UnsafeCell<Vec<u64>>,
    /// When a snapshot frees idle sources and destinations.
    idle: Idle,
    thresholds: Thresholds,
    events: RefCell<Vec<ThresholdEvent>>,
    /// The capture's clock: the current frame's time, in nanoseconds since
    /// the epoch (the counters' clock) and as a timestamp.
    now_ns: Cell<u64>,
    wall: Cell<Timestamp>,
    /// `Instant`s for snapshots: the first frame's time is `origin`.
    origin: Cell<Option<(u64, Instant)>>,
}

impl Counts {
    /// Nothing counted; crossings of `thresholds` are queued; at most
    /// `flows` flows are held, as in the kernel's table of that size.
    pub fn new(thresholds: Thresholds, flows: u32) -> Self {
        let capacity = |entries| TableLayout::for_entries(entries).entries();
        Self {
            global: UnsafeCell::new(GlobalCounters::ZERO),
            sources: UnsafeCell::new(Entries::new(capacity(SOURCES_MAX_ENTRIES))),
            destinations: UnsafeCell::new(Entries::new(capacity(DST_HOSTS_MAX_ENTRIES))),
            flows: UnsafeCell::new(Entries::new(capacity(flows))),
            idle: Idle::for_thresholds(&thresholds),
            new_flows: UnsafeCell::new([0; 2]),
            new_sources: UnsafeCell::new([0; 2]),
            syn_ports: UnsafeCell::new(vec![0; PORT_COUNT]),
            thresholds,
            events: RefCell::new(Vec::new()),
            now_ns: Cell::new(0),
            wall: Cell::new(Timestamp::UNIX_EPOCH),
            origin: Cell::new(None),
        }
    }

    /// Sets the clock to a frame's time: never 0, which marks an entry no
    /// packet has filled yet (the kernel's clock never reads 0), though a
    /// capture's frames may be stamped with the epoch.
    pub fn set_time(&self, ts: Timestamp) {
        let ns = u64::try_from(ts.as_nanosecond()).unwrap_or(0).max(1);
        self.now_ns.set(ns);
        self.wall.set(ts);
        if self.origin.get().is_none() {
            self.origin.set(Some((ns, Instant::now())));
        }
    }

    /// Counts one frame of `link` type, `wire_len` bytes long on the wire,
    /// of which `data` was captured, as the XDP program would have.
    pub fn frame(&self, link: Link, data: &[u8], wire_len: u32) -> Verdict {
        let bytes = Bytes(data);
        let len = u64::from(wire_len);
        let never = |_: &_| false;
        if link == Link::Ethernet {
            return count::frame(self, &bytes, len, never);
        }
        self.count(Counter::Packets, 1);
        self.count(Counter::Bytes, len);
        count::ip(self, &bytes, &ip_link(link, data), len, never)
    }

    /// The threshold crossings since the last call, oldest first.
    pub fn take_events(&self) -> Vec<ThresholdEvent> {
        std::mem::take(&mut *self.events.borrow_mut())
    }

    /// Every source's entry, as the kernel's map would hold it.
    pub fn sources(&self) -> Vec<(IpKey, SourceStats)> {
        // SAFETY: a shared read; nothing is counted while it lasts.
        let sources = unsafe { &*self.sources.get() };
        sources.map.iter().map(|(k, s)| (*k, **s)).collect()
    }

    /// Every destination's entry, likewise.
    pub fn destinations(&self) -> Vec<(IpKey, DstHostStats)> {
        // SAFETY: as for `sources`.
        let destinations = unsafe { &*self.destinations.get() };
        destinations.map.iter().map(|(k, d)| (*k, **d)).collect()
    }

    /// Every flow's entry, likewise.
    pub fn flows(&self) -> Vec<(FlowKey, FlowStats)> {
        // SAFETY: as for `sources`.
        let flows = unsafe { &*self.flows.get() };
        flows.map.iter().map(|(k, f)| (*k, **f)).collect()
    }

    /// The flows `pick` ends or cuts, and those it ends removed: what the
    /// agent does with the kernel's flow table.
    pub fn walk_flows(&self, mut pick: impl FnMut(&FlowKey, &FlowStats) -> Pick) -> Picked {
        // SAFETY: as for `sources`, and no pointer into the flows is held
        // between `State` calls.
        let flows = unsafe { &mut *self.flows.get() };
        let mut picked = Vec::new();
        flows.map.retain(|k, f| match pick(k, f) {
            Pick::Keep => true,
            p => {
                picked.push((*k, **f, p));
                p != Pick::End
            }
        });
        picked
    }

    /// SYNs per destination port, indexed by port.
    pub fn syn_ports_now(&self) -> Vec<u64> {
        // SAFETY: as for `sources`.
        unsafe { (*self.syn_ports.get()).clone() }
    }

    pub fn global(&self) -> GlobalCounters {
        // SAFETY: no pointer into the totals outlives a `State` call.
        unsafe { *self.global.get() }
    }

    /// The capture clock as an `Instant`, for what keeps time that way.
    pub fn instant(&self) -> Instant {
        let (origin_ns, origin) = self.origin.get().unwrap_or_else(|| (0, Instant::now()));
        origin + Duration::from_nanos(self.now_ns.get().saturating_sub(origin_ns))
    }
}

/// Entries of one table, at most as many as the kernel's holds: a full one
/// turns new keys away, as the kernel's does, until idle ones are freed.
struct Entries<V, K = IpKey> {
    /// Keyed by addresses from the network: foldhash's per-process random
    /// seed keeps collisions unpredictable, at a fraction of SipHash's cost.
    map: HashMap<K, Box<V>, foldhash::fast::RandomState>,
    max: usize,
}

/// When an entry was last counted: what frees the idle sources and
/// destinations (flows end through [`Counts::walk_flows`]).
trait LastSeen {
    fn last_seen(&self) -> u64;
}

impl LastSeen for SourceStats {
    fn last_seen(&self) -> u64 {
        self.last_seen_ns
    }
}

impl LastSeen for DstHostStats {
    fn last_seen(&self) -> u64 {
        self.last_seen_ns
    }
}

impl<V, K: Copy + Eq + std::hash::Hash> Entries<V, K> {
    fn new(max: u32) -> Self {
        Self {
            map: HashMap::default(),
            max: max as usize,
        }
    }

    /// The entry of `key`, inserted as `new` if absent; `None` if it is
    /// absent and the table full.
    fn entry(&mut self, key: &K, new: V) -> Option<*mut V> {
        if !self.map.contains_key(key) && self.map.len() >= self.max {
            return None;
        }
        Some(&raw mut **self.map.entry(*key).or_insert_with(|| Box::new(new)))
    }
}

impl<V: LastSeen, K: Copy + Eq + std::hash::Hash> Entries<V, K> {
    /// Frees the entries idle at `now_ns` for as long as `idle` says of a
    /// table this full.
    fn free_idle(&mut self, now_ns: u64, idle: &Idle) {
        let after = idle.after_for(self.map.len(), self.max);
        self.map
            .retain(|_, v| now_ns.saturating_sub(v.last_seen()) < after);
    }
}

impl State for Counts {
    /// Every part: the switches are for timing the kernel's.
    fn on(&self, _part: u32) -> bool {
        true
    }

    fn count(&self, counter: Counter, n: u64) {
        // SAFETY: one thread; no reference into the totals is held.
        unsafe { (*self.global.get()).values[counter as usize] += n }
    }

    fn now(&self) -> u64 {
        self.now_ns.get()
    }

    /// One thread: one CPU.
    fn cpu(&self) -> u32 {
        0
    }

    fn thresholds(&self) -> Option<*const Thresholds> {
        Some(&raw const self.thresholds)
    }

    fn source(&self, key: &IpKey) -> Option<*mut SourceStats> {
        // SAFETY: the borrow ends here; the entry is on the list's heap.
        let sources = unsafe { &mut *self.sources.get() };
        sources.map.get_mut(key).map(|s| &raw mut **s)
    }

    fn new_source(&self, key: &IpKey) -> Option<*mut SourceStats> {
        // SAFETY: as for `source`.
        let sources = unsafe { &mut *self.sources.get() };
        sources.entry(key, SourceStats::ZERO)
    }

    fn new_source_window(&self) -> Option<*mut [u64; 2]> {
        Some(self.new_sources.get())
    }

    fn destination(&self, key: &IpKey) -> Option<*mut DstHostStats> {
        // SAFETY: as for `source`.
        let destinations = unsafe { &mut *self.destinations.get() };
        destinations.entry(key, DstHostStats::ZERO)
    }

    fn syn(&self, port: u16) {
        // SAFETY: one thread; no other reference to the array is held.
        let ports = unsafe { &mut *self.syn_ports.get() };
        ports[usize::from(port)] += 1;
    }

    fn flow(&self, key: &FlowKey) -> Option<*mut FlowStats> {
        // SAFETY: as for `source`.
        let flows = unsafe { &mut *self.flows.get() };
        flows.map.get_mut(key).map(|f| &raw mut **f)
    }

    fn new_flow(&self, key: &FlowKey) -> Option<*mut FlowStats> {
        // SAFETY: as for `source`.
        let flows = unsafe { &mut *self.flows.get() };
        flows.entry(key, FlowStats::ZERO)
    }

    fn new_flow_window(&self) -> Option<*mut [u64; 2]> {
        Some(self.new_flows.get())
    }

    fn signal(&self, event: ThresholdEvent) -> bool {
        self.events.borrow_mut().push(event);
        true
    }

    unsafe fn add_shared(target: *mut u64, n: u64) {
        // SAFETY: `target` points into a live entry (see `Counts`).
        unsafe { *target = (*target).wrapping_add(n) }
    }

    unsafe fn window_add(target: *mut u64, n: u64) -> u64 {
        // SAFETY: as for `add_shared`.
        unsafe {
            *target = (*target).wrapping_add(n);
            *target
        }
    }

    unsafe fn fetch_or(target: *mut u64, mask: u64) -> u64 {
        // SAFETY: as for `add_shared`.
        unsafe {
            let old = *target;
            *target = old | mask;
            old
        }
    }

    unsafe fn claim(target: *mut u64, value: u64) -> bool {
        // SAFETY: as for `add_shared`.
        unsafe {
            if *target != 0 {
                return false;
            }
            *target = value;
        }
        true
    }

    unsafe fn claim_bits(target: *mut u32, current: u32, bits: u32) -> bool {
        // SAFETY: as for `add_shared`.
        unsafe {
            if *target != current {
                return false;
            }
            *target = current | bits;
        }
        true
    }
}

impl PacketSource for Counts {
    type Error = Infallible;

    /// Every entry, then those idle long enough freed, as the agent reads
    /// and frees the kernel's tables.
    fn snapshot(&self) -> Result<Snapshot, Infallible> {
        // SAFETY: nothing is counted while this lasts, and no pointer into
        // the tables is held between frames.
        let (sources, destinations) =
            unsafe { (&mut *self.sources.get(), &mut *self.destinations.get()) };
        let snapshot = Snapshot {
            at: self.instant(),
            global: self.global(),
            sources: sources
                .map
                .iter()
                .map(|(k, s)| (*k, SourceView::from(&**s)))
                .collect(),
            dst_hosts: destinations
                .map
                .iter()
                .map(|(k, d)| (*k, DstView::from(&**d)))
                .collect(),
            syn_ports: self.syn_ports_now(),
        };
        let now = self.now_ns.get();
        sources.free_idle(now, &self.idle);
        destinations.free_idle(now, &self.idle);
        Ok(snapshot)
    }

    fn source(&self, addr: IpAddr) -> Result<Option<SourceView>, Infallible> {
        // SAFETY: as for `snapshot`.
        let sources = unsafe { &*self.sources.get() };
        Ok(sources
            .map
            .get(&IpKey::from(addr))
            .map(|s| SourceView::from(&**s)))
    }

    fn destination(&self, addr: IpAddr) -> Result<Option<DstHostStats>, Infallible> {
        // SAFETY: as for `snapshot`.
        let destinations = unsafe { &*self.destinations.get() };
        Ok(destinations.map.get(&IpKey::from(addr)).map(|d| **d))
    }

    fn syn_ports_since(&self, before: &[u64]) -> Result<Vec<(u16, u64)>, Infallible> {
        // SAFETY: as for `snapshot`.
        let now = unsafe { &*self.syn_ports.get() };
        Ok(port_growth(before, now))
    }

    fn dropped(&self) -> Dropped {
        Dropped::default()
    }

    fn now(&self) -> SourceTime {
        SourceTime {
            wall: self.wall.get(),
            mono_ns: self.now_ns.get(),
        }
    }
}
