//! The counting's state in the program's maps (see `nta_common::count`):
//! global totals per CPU, shared LRU entries updated with atomics, threshold
//! crossings onto the `EVENTS` ring.

use core::intrinsics::{
    AtomicOrdering::{Relaxed, SeqCst},
    atomic_cxchg, atomic_or, atomic_xadd,
};

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::generated::{bpf_jiffies64, bpf_ktime_get_coarse_ns, bpf_ktime_get_ns},
};
use nta_common::{
    Counter, DstHostStats, GlobalCounters, IpKey, SourceStats,
    count::State,
    flow::{FLOW_WAYS, FlowKey, FlowStats, FlowTableLayout, flow_tag},
    maps::{ThresholdEvent, Thresholds, port_slot},
};

use crate::{
    features,
    maps::{
        CLOCK, DST_HOSTS, EVENTS, FLOW_TAGS, FLOWS, GLOBAL, NEW_FLOWS, NEW_SOURCES,
        NTA_FLOW_BUCKETS, NTA_FLOW_SEED, SOURCES, SYN_PORTS, THRESHOLDS,
    },
};

/// This CPU's global counters.
pub struct Global(*mut GlobalCounters);

impl Global {
    #[inline(always)]
    pub fn get() -> Result<Self, ()> {
        GLOBAL.get_ptr_mut(0).map(Global).ok_or(())
    }

    /// Per-CPU value: a plain add cannot race.
    #[inline(always)]
    pub fn add(&self, counter: Counter, n: u64) {
        if features::on(nta_common::maps::feature::TOTALS) {
            unsafe { (*self.0).values[counter as usize] += n }
        }
    }
}

/// Adds `n` to a counter in a map entry that all CPUs share (an LRU or
/// blocklist entry), where a plain `+=` would lose updates. The old value
/// is not needed, so relaxed is right: a plain atomic add.
#[inline(always)]
pub fn atomic_add(target: *mut u64, n: u64) {
    unsafe { atomic_xadd::<u64, u64, { Relaxed }>(target, n) };
}

/// Initial values live in read-only data: building a 368-byte `SourceStats`
/// on the 512-byte BPF stack next to the parsed packet overflows it.
static NEW_SOURCE: SourceStats = SourceStats::ZERO;
static NEW_DST_HOST: DstHostStats = DstHostStats::ZERO;

/// Looks up `key`, inserting `initial` first if it is new. Another CPU may
/// insert the same key between the lookup and the insert: `BPF_NOEXIST` then
/// fails and the second lookup finds that CPU's entry, so no update is lost.
macro_rules! entry {
    ($map:expr, $key:expr, $initial:expr) => {
        match $map.get_ptr_mut($key) {
            Some(entry) => Some(entry),
            None => {
                let _ = $map.insert($key, $initial, BPF_NOEXIST as u64);
                $map.get_ptr_mut($key)
            }
        }
    };
}

/// The flow table's layout, as the agent loaded it.
#[inline(always)]
fn flow_table() -> FlowTableLayout {
    FlowTableLayout {
        buckets: NTA_FLOW_BUCKETS.load(),
    }
}

/// No way: past the end of the table, so that the `FLOWS` lookup fails.
const NO_WAY: u32 = u32::MAX;

/// The index of the way that holds the flow of hash `hash` in its two
/// buckets (see `FlowTableLayout`), or [`NO_WAY`]; with `take` set, a way
/// taken for it if none does: the first free way of the bucket with more
/// free ways (the first bucket if they tie), which keeps the buckets
/// level, so that a table half full turns almost no flow away.
///
/// Every way is looked at: the agent frees ways anywhere in a bucket. Two
/// CPUs inserting one flow at once see the same free ways and try the
/// same one: the one whose compare-and-swap fails finds the other's tag
/// there. (A third flow or the agent changing the two buckets between
/// their looks can part them: the flow then has two entries, each with
/// some of its packets, and two records.)
///
/// A global function, which the verifier checks once, on its own, and
/// whose result it takes as any number: inlined, each way that can end
/// the scan was another state for it to carry through the rest of the
/// program, which took it past its limit of a million instructions.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn nta_flow_way(hash: u64, take: u64) -> u32 {
    let tag = flow_tag(hash);
    let buckets = flow_table().candidates(hash);
    for bucket in buckets {
        let Some(tags) = FLOW_TAGS.get_ptr(bucket) else {
            return NO_WAY;
        };
        for way in 0..FLOW_WAYS {
            if unsafe { (*tags)[way as usize] } == tag {
                return bucket * FLOW_WAYS + way;
            }
        }
    }
    if take == 0 {
        return NO_WAY;
    }
    let free = nta_flow_free_ways(buckets[0], buckets[1]);
    let bucket = if free >> 16 > free & 0xffff {
        buckets[1]
    } else {
        buckets[0]
    };
    let Some(tags) = FLOW_TAGS.get_ptr_mut(bucket) else {
        return NO_WAY;
    };
    for way in 0..FLOW_WAYS {
        let t = unsafe { &raw mut (*tags)[way as usize] };
        if unsafe { *t == tag || (*t == 0 && (Maps::claim(t, tag) || *t == tag)) } {
            return bucket * FLOW_WAYS + way;
        }
    }
    NO_WAY
}

/// The free ways of buckets `a` (in the low 16 bits) and `b` (above). A
/// global function for the same reason, and the counts compared by the
/// caller: the verifier would otherwise carry each combination of free and
/// taken ways, 65 536 for two buckets, to the comparison.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn nta_flow_free_ways(a: u32, b: u32) -> u32 {
    let mut free = 0;
    for (bucket, unit) in [(a, 1), (b, 1 << 16)] {
        let Some(tags) = FLOW_TAGS.get_ptr(bucket) else {
            return 0;
        };
        for way in 0..FLOW_WAYS as usize {
            if unsafe { (*tags)[way] } == 0 {
                free += unit;
            }
        }
    }
    free
}

/// The program's maps, as the counting's state.
pub struct Maps<'a>(pub &'a Global);

impl State for Maps<'_> {
    #[inline(always)]
    fn on(&self, part: u32) -> bool {
        features::on(part)
    }

    #[inline(always)]
    fn count(&self, counter: Counter, n: u64) {
        self.0.add(counter, n);
    }

    /// The coarse clock, which moves only at the timer tick, as jiffies do.
    /// The verifier turns `bpf_jiffies64` into a load, where the coarse
    /// clock is a helper call: so each CPU calls it once a jiffy and keeps
    /// the value for the rest of it. The tick moves jiffies first and the
    /// clock just after, so a value read in between stands for its whole
    /// jiffy: `now` may lag the coarse clock by a jiffy, never lead it.
    #[inline(always)]
    fn now(&self) -> u64 {
        let jiffies = unsafe { bpf_jiffies64() };
        let Some(clock) = CLOCK.get_ptr_mut(0) else {
            return unsafe { bpf_ktime_get_coarse_ns() };
        };
        unsafe {
            // 0 ns: never read on this CPU (jiffies may well be 0 once,
            // five minutes after boot).
            if (*clock)[0] != jiffies || (*clock)[1] == 0 {
                (*clock)[0] = jiffies;
                (*clock)[1] = bpf_ktime_get_coarse_ns();
            }
            (*clock)[1]
        }
    }

    #[inline(always)]
    fn fine_now(&self) -> u64 {
        unsafe { bpf_ktime_get_ns() }
    }

    #[inline(always)]
    fn thresholds(&self) -> Option<*const Thresholds> {
        THRESHOLDS.get_ptr(0)
    }

    #[inline(always)]
    fn source(&self, key: &IpKey) -> Option<*mut SourceStats> {
        SOURCES.get_ptr_mut(key)
    }

    #[inline(always)]
    fn new_source(&self, key: &IpKey) -> Option<*mut SourceStats> {
        // As `entry!`: another CPU may insert it first.
        let _ = SOURCES.insert(key, &NEW_SOURCE, BPF_NOEXIST as u64);
        SOURCES.get_ptr_mut(key)
    }

    #[inline(always)]
    fn new_source_window(&self) -> Option<*mut [u64; 2]> {
        NEW_SOURCES.get_ptr_mut(0)
    }

    #[inline(always)]
    fn destination(&self, key: &IpKey) -> Option<*mut DstHostStats> {
        entry!(DST_HOSTS, key, &NEW_DST_HOST)
    }

    #[inline(always)]
    fn syn(&self, port: u16) {
        let (chunk, slot) = port_slot(port);
        if let Some(ports) = SYN_PORTS.get_ptr_mut(chunk) {
            // Per-CPU value: a plain add cannot race.
            unsafe { (*ports).syns[slot] += 1 };
        }
    }

    #[inline(always)]
    fn flow(&self, key: &FlowKey) -> Option<*mut FlowStats> {
        FLOWS.get_ptr_mut(nta_flow_way(key.hash(NTA_FLOW_SEED.load()), 0))
    }

    #[inline(always)]
    fn new_flow(&self, key: &FlowKey) -> Option<*mut FlowStats> {
        FLOWS.get_ptr_mut(nta_flow_way(key.hash(NTA_FLOW_SEED.load()), 1))
    }

    #[inline(always)]
    fn new_flow_window(&self) -> Option<*mut [u64; 2]> {
        NEW_FLOWS.get_ptr_mut(0)
    }

    /// Never waits: a full ring loses the event.
    #[inline(always)]
    fn signal(&self, event: ThresholdEvent) -> bool {
        match EVENTS.reserve::<ThresholdEvent>(0) {
            Some(mut entry) => {
                entry.write(event);
                entry.submit(0);
                true
            }
            None => false,
        }
    }

    #[inline(always)]
    unsafe fn add_shared(target: *mut u64, n: u64) {
        atomic_add(target, n);
    }

    /// Sequentially consistent on purpose: for BPF, LLVM 22 encodes a
    /// relaxed fetch-and-add as a plain atomic add (no fetch flag) even when
    /// the old value is used, so the program would compare garbage.
    #[inline(always)]
    unsafe fn window_add(target: *mut u64, n: u64) -> u64 {
        unsafe { atomic_xadd::<u64, u64, { SeqCst }>(target, n) }.wrapping_add(n)
    }

    #[inline(always)]
    unsafe fn fetch_or(target: *mut u64, mask: u64) -> u64 {
        unsafe { atomic_or::<u64, u64, { Relaxed }>(target, mask) }
    }

    #[inline(always)]
    unsafe fn claim(target: *mut u64, value: u64) -> bool {
        unsafe { atomic_cxchg::<u64, { SeqCst }, { SeqCst }>(target, 0, value).1 }
    }
}
