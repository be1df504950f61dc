//! Finding a key's way in a keyed table (see `nta_common::table`): the
//! flows, the sources and the destination hosts.

use core::intrinsics::{AtomicOrdering::SeqCst, atomic_cxchg};

use nta_common::{
    maps::{DST_HOSTS_MAX_ENTRIES, SOURCES_MAX_ENTRIES},
    table::{TableLayout, WAYS, tag},
};

use crate::maps::{DST_HOST_TAGS, FLOW_TAGS, NTA_FLOW_BUCKETS, SOURCE_TAGS};

/// No way: past the end of any table, so that the entry's lookup fails.
pub const NO_WAY: u32 = u32::MAX;

/// The flow table's layout, as the agent loaded it.
#[inline(always)]
fn flow_table() -> TableLayout {
    TableLayout {
        buckets: NTA_FLOW_BUCKETS.load(),
    }
}

const SOURCE_TABLE: TableLayout = TableLayout::for_entries(SOURCES_MAX_ENTRIES);
const DST_HOST_TABLE: TableLayout = TableLayout::for_entries(DST_HOSTS_MAX_ENTRIES);

/// Takes a free way of a bucket for `tag` by compare-and-swap: true if this
/// call took it. Two CPUs taking one way for two keys: one fails, and
/// looks on.
#[inline(always)]
fn claim(way: *mut u64, tag: u64) -> bool {
    unsafe { atomic_cxchg::<u64, { SeqCst }, { SeqCst }>(way, 0, tag).1 }
}

/// Defines, for the table whose tags are in `$tags` and whose layout is
/// `$layout`, two global functions:
///
/// - `$way(hash, take)`: the index of the way that holds the key of hash
///   `hash` in its two buckets, or [`NO_WAY`]; with `take` set, a way taken
///   for it if none does: the first free way of the bucket with more free
///   ways (the first bucket if they tie), which keeps the buckets level,
///   so that a table half full turns almost no key away. Every way is
///   looked at: the agent frees ways anywhere in a bucket. Two CPUs
///   inserting one key at once see the same free ways and try the same
///   one: the one whose compare-and-swap fails finds the other's tag
///   there. (A third key or the agent changing the two buckets between
///   their looks can part them: the key then has two entries, each with
///   some of its packets.)
/// - `$free(a, b)`: the free ways of buckets `a` (in the low 16 bits) and
///   `b` (above), compared by the caller.
///
/// Global functions, which the verifier checks once, on its own, and
/// whose results it takes as any number: inlined, each way that can end
/// the scan was another state for it to carry through the rest of the
/// program, which took it past its limit of a million instructions, and
/// the free-way count carried each combination of free and taken ways,
/// 65 536 for two buckets, to the comparison.
macro_rules! table {
    ($way:ident, $free:ident, $tags:ident, $layout:expr) => {
        #[unsafe(no_mangle)]
        #[inline(never)]
        pub extern "C" fn $way(hash: u64, take: u64) -> u32 {
            let tag = tag(hash);
            let buckets = $layout.candidates(hash);
            for bucket in buckets {
                let Some(tags) = $tags.get_ptr(bucket) else {
                    return NO_WAY;
                };
                for way in 0..WAYS {
                    if unsafe { (*tags)[way as usize] } == tag {
                        return bucket * WAYS + way;
                    }
                }
            }
            if take == 0 {
                return NO_WAY;
            }
            let free = $free(buckets[0], buckets[1]);
            let bucket = if free >> 16 > free & 0xffff {
                buckets[1]
            } else {
                buckets[0]
            };
            let Some(tags) = $tags.get_ptr_mut(bucket) else {
                return NO_WAY;
            };
            for way in 0..WAYS {
                let t = unsafe { &raw mut (*tags)[way as usize] };
                if unsafe { *t == tag || (*t == 0 && (claim(t, tag) || *t == tag)) } {
                    return bucket * WAYS + way;
                }
            }
            NO_WAY
        }

        #[unsafe(no_mangle)]
        #[inline(never)]
        pub extern "C" fn $free(a: u32, b: u32) -> u32 {
            let mut free = 0;
            for (bucket, unit) in [(a, 1), (b, 1 << 16)] {
                let Some(tags) = $tags.get_ptr(bucket) else {
                    return 0;
                };
                for way in 0..WAYS as usize {
                    if unsafe { (*tags)[way] } == 0 {
                        free += unit;
                    }
                }
            }
            free
        }
    };
}

table!(nta_flow_way, nta_flow_free_ways, FLOW_TAGS, flow_table());
table!(
    nta_source_way,
    nta_source_free_ways,
    SOURCE_TAGS,
    SOURCE_TABLE
);
table!(
    nta_dst_host_way,
    nta_dst_host_free_ways,
    DST_HOST_TAGS,
    DST_HOST_TABLE
);
