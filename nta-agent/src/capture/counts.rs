//! The XDP program's counting (`nta_common::count`) over a capture's frames,
//! in memory: the same global totals, per-source and per-destination
//! entries (as many as the kernel's maps hold, least recently used evicted
//! first), SYNs per port, and threshold crossings queued for the reader to
//! act on at once. A [`PacketSource`] whose clock is the capture's.

use std::{
    cell::{Cell, RefCell, UnsafeCell},
    convert::Infallible,
    net::IpAddr,
    num::NonZeroUsize,
    time::{Duration, Instant},
};

use jiff::Timestamp;
use lru::LruCache;
use nta_common::{
    Counter, DstHostStats, GlobalCounters, IpKey, SourceStats,
    count::{self, State, Verdict},
    maps::{DST_HOSTS_MAX_ENTRIES, PORT_COUNT, SOURCES_MAX_ENTRIES, ThresholdEvent, Thresholds},
    parse::Bytes,
};

use super::{Link, link::ip_link};
use crate::{
    source::{Dropped, PacketSource, SourceTime},
    traffic::{DstView, Snapshot, SourceView},
};

/// Counters kept in memory, updated as the kernel updates its maps.
///
/// Each map sits in its own cell: [`State`] hands out raw pointers into
/// entries (the kernel's CPUs share them), and a pointer into one map stays
/// valid while another is updated. Entries live on the heap of their LRU
/// list, so a pointer is valid until that map's next insertion, which
/// `nta_common::count` never makes while it holds one.
pub struct Counts {
    global: UnsafeCell<GlobalCounters>,
    sources: UnsafeCell<LruCache<IpKey, SourceStats>>,
    destinations: UnsafeCell<LruCache<IpKey, DstHostStats>>,
    syn_ports: UnsafeCell<Vec<u64>>,
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
    /// Nothing counted; crossings of `thresholds` are queued.
    pub fn new(thresholds: Thresholds) -> Self {
        let size = |n: u32| NonZeroUsize::new(n as usize).unwrap_or(NonZeroUsize::MIN);
        Self {
            global: UnsafeCell::new(GlobalCounters::ZERO),
            sources: UnsafeCell::new(LruCache::new(size(SOURCES_MAX_ENTRIES))),
            destinations: UnsafeCell::new(LruCache::new(size(DST_HOSTS_MAX_ENTRIES))),
            syn_ports: UnsafeCell::new(vec![0; PORT_COUNT]),
            thresholds,
            events: RefCell::new(Vec::new()),
            now_ns: Cell::new(0),
            wall: Cell::new(Timestamp::UNIX_EPOCH),
            origin: Cell::new(None),
        }
    }

    /// Sets the clock to a frame's time.
    pub fn set_time(&self, ts: Timestamp) {
        let ns = u64::try_from(ts.as_nanosecond()).unwrap_or(0);
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
        sources.iter().map(|(k, s)| (*k, *s)).collect()
    }

    /// Every destination's entry, likewise.
    pub fn destinations(&self) -> Vec<(IpKey, DstHostStats)> {
        // SAFETY: as for `sources`.
        let destinations = unsafe { &*self.destinations.get() };
        destinations.iter().map(|(k, d)| (*k, *d)).collect()
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
        let (origin_ns, origin) = self.origin.get().unwrap_or((0, Instant::now()));
        origin + Duration::from_nanos(self.now_ns.get().saturating_sub(origin_ns))
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

    fn thresholds(&self) -> Option<*const Thresholds> {
        Some(&raw const self.thresholds)
    }

    fn source(&self, key: &IpKey) -> Option<*mut SourceStats> {
        // SAFETY: the borrow ends here; the entry is on the list's heap.
        let sources = unsafe { &mut *self.sources.get() };
        Some(sources.get_or_insert_mut(*key, || SourceStats::ZERO) as *mut _)
    }

    fn destination(&self, key: &IpKey) -> Option<*mut DstHostStats> {
        // SAFETY: as for `source`.
        let destinations = unsafe { &mut *self.destinations.get() };
        Some(destinations.get_or_insert_mut(*key, || DstHostStats::ZERO) as *mut _)
    }

    fn syn(&self, port: u16) {
        // SAFETY: one thread; no other reference to the array is held.
        let ports = unsafe { &mut *self.syn_ports.get() };
        ports[usize::from(port)] += 1;
    }

    fn signal(&self, event: ThresholdEvent) -> bool {
        self.events.borrow_mut().push(event);
        true
    }

    fn add_shared(target: *mut u64, n: u64) {
        // SAFETY: `target` points into a live entry (see `Counts`).
        unsafe { *target = (*target).wrapping_add(n) }
    }

    fn window_add(target: *mut u64, n: u64) -> u64 {
        // SAFETY: as for `add_shared`.
        unsafe {
            *target = (*target).wrapping_add(n);
            *target
        }
    }

    fn fetch_or(target: *mut u64, mask: u64) -> u64 {
        // SAFETY: as for `add_shared`.
        unsafe {
            let old = *target;
            *target = old | mask;
            old
        }
    }
}

impl PacketSource for Counts {
    type Error = Infallible;

    fn snapshot(&self) -> Result<Snapshot, Infallible> {
        // SAFETY: shared reads; nothing is counted while they last.
        let (sources, destinations) = unsafe { (&*self.sources.get(), &*self.destinations.get()) };
        Ok(Snapshot {
            at: self.instant(),
            global: self.global(),
            sources: sources
                .iter()
                .map(|(k, s)| (*k, SourceView::from(s)))
                .collect(),
            dst_hosts: destinations
                .iter()
                .map(|(k, d)| (*k, DstView::from(d)))
                .collect(),
            syn_ports: self.syn_ports()?,
        })
    }

    fn source(&self, addr: IpAddr) -> Result<Option<SourceView>, Infallible> {
        // SAFETY: as for `snapshot`.
        let sources = unsafe { &*self.sources.get() };
        Ok(sources.peek(&IpKey::from(addr)).map(SourceView::from))
    }

    fn destination(&self, addr: IpAddr) -> Result<Option<DstHostStats>, Infallible> {
        // SAFETY: as for `snapshot`.
        let destinations = unsafe { &*self.destinations.get() };
        Ok(destinations.peek(&IpKey::from(addr)).copied())
    }

    fn syn_ports(&self) -> Result<Vec<u64>, Infallible> {
        Ok(self.syn_ports_now())
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
