//! Finding a key's entry in a keyed table (see `nta_common::table`): the
//! flows, the sources and the destination hosts.

use core::{
    intrinsics::{AtomicOrdering::SeqCst, atomic_cxchg},
    ptr::read_volatile,
};

use nta_common::{
    maps::{DST_HOSTS_MAX_ENTRIES, SOURCES_MAX_ENTRIES},
    table::{PoolNext, TableLayout, WAYS, pool, tag, way, way_index, way_tag},
};

use crate::maps::{
    DST_HOST_FREE, DST_HOST_TAGS, FLOW_FREE, FLOW_TAGS, NTA_FLOW_BUCKETS, POOLS, SOURCE_FREE,
    SOURCE_TAGS, SPARE,
};

/// No entry: past the end of any table, so that the entry's lookup fails.
pub const NO_ENTRY: u32 = u32::MAX;

/// Attempts at taking an entry from a pool that other CPUs are taking
/// from at the same instant, before the insert gives up (and is counted as
/// skipped).
const TAKE_TRIES: u32 = 4;

/// The flow table's layout, as the agent loaded it.
#[inline(always)]
fn flow_table() -> TableLayout {
    TableLayout {
        buckets: NTA_FLOW_BUCKETS.load(),
    }
}

const SOURCE_TABLE: TableLayout = TableLayout::for_entries(SOURCES_MAX_ENTRIES);
const DST_HOST_TABLE: TableLayout = TableLayout::for_entries(DST_HOSTS_MAX_ENTRIES);

/// Defines, for the table whose ways are in `$tags`, whose layout is
/// `$layout` and whose pool is number `$pool` with ring `$ring`, three
/// global functions:
///
/// - `$way(hash, take)`: the entry index of the key of hash `hash`, found
///   by its tag in its two buckets, or [`NO_ENTRY`]; with `take` set, an
///   entry taken for it from the pool if none is there, and named in the
///   first free way of the bucket with more free ways (the first bucket if
///   they tie), which keeps the buckets level, so that a table half full
///   turns almost no key away. Every way is looked at: the agent frees
///   ways anywhere in a bucket. Two CPUs inserting one key at once see the
///   same free ways and try the same one: the one whose compare-and-swap
///   fails finds the other's tag there, and keeps its own entry for its
///   next insert. (A third key or the agent changing the two buckets
///   between their looks can part them: the key then has two entries, each
///   with some of its packets.)
/// - `$free(a, b)`: the free ways of buckets `a` (in the low 16 bits) and
///   `b` (above), compared by the caller.
/// - `$take()`: an entry from the pool (see `PoolCounts`), this CPU's
///   spare first, or [`NO_ENTRY`] if every entry is out.
///
/// Global functions, which the verifier checks once, on its own, and
/// whose results it takes as any number: inlined, each way that can end
/// the scan was another state for it to carry through the rest of the
/// program, which took it past its limit of a million instructions, and
/// the free-way count carried each combination of free and taken ways,
/// 65 536 for two buckets, to the comparison.
macro_rules! table {
    ($way:ident, $free:ident, $take:ident, $tags:ident, $layout:expr, $pool:expr, $ring:ident) => {
        #[unsafe(no_mangle)]
        #[inline(never)]
        pub extern "C" fn $way(hash: u64, take: u64) -> u32 {
            let tag = tag(hash);
            let buckets = $layout.candidates(hash);
            for bucket in buckets {
                let Some(tags) = $tags.get_ptr(bucket) else {
                    return NO_ENTRY;
                };
                for w in 0..WAYS {
                    let word = unsafe { (*tags)[w as usize] };
                    if way_tag(word) == tag {
                        return way_index(word);
                    }
                }
            }
            if take == 0 {
                return NO_ENTRY;
            }
            let free = $free(buckets[0], buckets[1]);
            if free == 0 {
                return NO_ENTRY;
            }
            let bucket = if free >> 16 > free & 0xffff {
                buckets[1]
            } else {
                buckets[0]
            };
            let index = $take();
            if index == NO_ENTRY {
                return NO_ENTRY;
            }
            let mut found = NO_ENTRY;
            if let Some(tags) = $tags.get_ptr_mut(bucket) {
                let word = way(tag, index);
                for w in 0..WAYS {
                    let t = unsafe { &raw mut (*tags)[w as usize] };
                    let mut now = unsafe { *t };
                    if now == 0 {
                        let (old, took) =
                            unsafe { atomic_cxchg::<u64, { SeqCst }, { SeqCst }>(t, 0, word) };
                        if took {
                            return index;
                        }
                        now = old;
                    }
                    if way_tag(now) == tag {
                        found = way_index(now);
                        break;
                    }
                }
            }
            // Unused: this CPU's next insert takes it.
            if let Some(spare) = SPARE.get_ptr_mut(0) {
                unsafe { (*spare)[$pool as usize] = index + 1 };
            }
            found
        }

        #[unsafe(no_mangle)]
        #[inline(never)]
        pub extern "C" fn $free(a: u32, b: u32) -> u32 {
            let mut free = 0;
            for (bucket, unit) in [(a, 1), (b, 1 << 16)] {
                let Some(tags) = $tags.get_ptr(bucket) else {
                    return 0;
                };
                for w in 0..WAYS as usize {
                    if unsafe { (*tags)[w] } == 0 {
                        free += unit;
                    }
                }
            }
            free
        }

        #[unsafe(no_mangle)]
        #[inline(never)]
        pub extern "C" fn $take() -> u32 {
            if let Some(spare) = SPARE.get_ptr_mut(0) {
                let spare = unsafe { &raw mut (*spare)[$pool as usize] };
                let held = unsafe { *spare };
                if held != 0 {
                    unsafe { *spare = 0 };
                    return held - 1;
                }
            }
            let Some(counts) = POOLS.get_ptr_mut($pool) else {
                return NO_ENTRY;
            };
            let entries = $layout.entries();
            for _ in 0..TAKE_TRIES {
                let taken = unsafe { read_volatile(&raw const (*counts).taken) };
                let given_back = unsafe { read_volatile(&raw const (*counts).given_back) };
                let next = PoolNext::at(taken, given_back, entries);
                if matches!(next, PoolNext::Empty) {
                    return NO_ENTRY;
                }
                let taken_at = unsafe { &raw mut (*counts).taken };
                if !unsafe {
                    atomic_cxchg::<u64, { SeqCst }, { SeqCst }>(taken_at, taken, taken + 1).1
                } {
                    continue;
                }
                // The slot only now: the agent writes a slot before the
                // count that hands it over, and BPF's compare-and-swap is
                // fully ordered, so a slot read after it is the one written
                // before the count read before it, on a CPU that would
                // otherwise let the two reads pass each other (arm64).
                return match next {
                    PoolNext::Entry(index) => index,
                    // The ring has a slot for every entry, so `slot` is in
                    // it: the count just taken is never lost here.
                    PoolNext::Slot(slot) => match $ring.get_ptr(slot) {
                        Some(at) => (unsafe { read_volatile(at) }) as u32,
                        None => NO_ENTRY,
                    },
                    PoolNext::Empty => NO_ENTRY,
                };
            }
            NO_ENTRY
        }
    };
}

table!(
    nta_flow_way,
    nta_flow_free_ways,
    nta_flow_take,
    FLOW_TAGS,
    flow_table(),
    pool::FLOWS,
    FLOW_FREE
);
table!(
    nta_source_way,
    nta_source_free_ways,
    nta_source_take,
    SOURCE_TAGS,
    SOURCE_TABLE,
    pool::SOURCES,
    SOURCE_FREE
);
table!(
    nta_dst_host_way,
    nta_dst_host_free_ways,
    nta_dst_host_take,
    DST_HOST_TAGS,
    DST_HOST_TABLE,
    pool::DST_HOSTS,
    DST_HOST_FREE
);
