//! The counting's state in the program's maps (see `nta_common::count`):
//! global totals per CPU, shared table entries updated with atomics, threshold
//! crossings onto the `EVENTS` ring.

use core::intrinsics::{
    AtomicOrdering::{Relaxed, SeqCst},
    atomic_cxchg, atomic_or, atomic_xadd,
};

use aya_ebpf::helpers::generated::{
    bpf_get_smp_processor_id, bpf_jiffies64, bpf_ktime_get_coarse_ns,
};
use nta_common::{
    Counter, DstHostStats, GlobalCounters, IpKey, SourceStats,
    count::{State, ToDestination, to_destination},
    flow::{FlowKey, FlowStats},
    maps::{ThresholdEvent, Thresholds, port_slot},
};

use crate::{
    features,
    maps::{
        CLOCK, DST_HOSTS, EVENTS, FLOWS, GLOBAL, NEW_FLOWS, NEW_SOURCES, NTA_TABLE_SEED, SOURCES,
        SYN_PORTS, THRESHOLDS,
    },
    table::{nta_dst_host_way, nta_flow_way, nta_source_way},
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

/// Adds `n` to a counter in a map entry that all CPUs share (a table or
/// blocklist entry), where a plain `+=` would lose updates. The old value
/// is not needed, so relaxed is right: a plain atomic add.
#[inline(always)]
pub fn atomic_add(target: *mut u64, n: u64) {
    unsafe { atomic_xadd::<u64, u64, { Relaxed }>(target, n) };
}

/// Counts a packet in its destination's entry (`count::to_destination`),
/// handed over as `Maps::destination_packet` packs it. A global function:
/// see `State::destination_packet`.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn nta_count_destination(
    key0: u64,
    key1: u64,
    source_hash: u64,
    packed: u64,
    now: u64,
) -> u32 {
    let Ok(global) = Global::get() else {
        return 0;
    };
    let to = ToDestination {
        key: IpKey::from_words([key0, key1]),
        source_hash,
        len: packed & 0xffff_ffff,
        now,
        dst_class: (packed >> 32) as u32 & 0xff,
        service: (packed >> 40) as u32 & 0xff,
        fragment: (packed >> 48) & 1 != 0,
    };
    to_destination(&Maps(&global), &to);
    1
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

    /// Inlined by the verifier on x86-64: a per-CPU load.
    #[inline(always)]
    fn cpu(&self) -> u32 {
        unsafe { bpf_get_smp_processor_id() }
    }

    #[inline(always)]
    fn thresholds(&self) -> Option<*const Thresholds> {
        THRESHOLDS.get_ptr(0)
    }

    #[inline(always)]
    fn source(&self, key: &IpKey) -> Option<*mut SourceStats> {
        SOURCES.get_ptr_mut(nta_source_way(key.hash(NTA_TABLE_SEED.load()), 0))
    }

    #[inline(always)]
    fn new_source(&self, key: &IpKey) -> Option<*mut SourceStats> {
        SOURCES.get_ptr_mut(nta_source_way(key.hash(NTA_TABLE_SEED.load()), 1))
    }

    #[inline(always)]
    fn new_source_window(&self) -> Option<*mut [u64; 2]> {
        NEW_SOURCES.get_ptr_mut(0)
    }

    #[inline(always)]
    fn destination(&self, key: &IpKey) -> Option<*mut DstHostStats> {
        DST_HOSTS.get_ptr_mut(nta_dst_host_way(key.hash(NTA_TABLE_SEED.load()), 1))
    }

    /// Through [`nta_count_destination`], in five registers: the class
    /// and service numbers in a byte each (those that name none become
    /// 0xff, which still names none), the length in 32 bits.
    #[inline(always)]
    fn destination_packet(&self, to: &ToDestination) {
        let [key0, key1] = to.key.words();
        let packed = (to.len & 0xffff_ffff)
            | u64::from(to.dst_class & 0xff) << 32
            | u64::from(to.service & 0xff) << 40
            | u64::from(to.fragment) << 48;
        nta_count_destination(key0, key1, to.source_hash, packed, to.now);
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
        FLOWS.get_ptr_mut(nta_flow_way(key.hash(NTA_TABLE_SEED.load()), 0))
    }

    #[inline(always)]
    fn new_flow(&self, key: &FlowKey) -> Option<*mut FlowStats> {
        FLOWS.get_ptr_mut(nta_flow_way(key.hash(NTA_TABLE_SEED.load()), 1))
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

    #[inline(always)]
    unsafe fn claim_bits(target: *mut u32, current: u32, bits: u32) -> bool {
        unsafe { atomic_cxchg::<u32, { SeqCst }, { SeqCst }>(target, current, current | bits).1 }
    }
}
