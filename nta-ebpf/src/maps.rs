//! The program's maps and load-time globals; sizes come from nta-common.

use aya_ebpf::{
    Global,
    bindings::BPF_F_MMAPABLE,
    macros::map,
    maps::{Array, LpmTrie, PerCpuArray, RingBuf},
};
use nta_common::{
    BlockStats, DstHostStats, GlobalCounters, IpKey, PortSynCounts, SourceStats,
    flow::{FLOWS_MAX_ENTRIES, FlowStats},
    maps::{
        BLOCKLIST_MAX_ENTRIES, DST_HOSTS_MAX_ENTRIES, EVENTS_RING_BYTES, PORT_CHUNKS, PORT_COUNT,
        SAMPLES_RING_BYTES, SOURCES_MAX_ENTRIES, Sampling, Thresholds,
    },
    table::{BucketTags, PoolCounts, WAYS, pool},
};

/// Totals by protocol, flag and parse failure; per CPU, so no atomics.
#[map]
pub static GLOBAL: PerCpuArray<GlobalCounters> = PerCpuArray::with_max_entries(1, 0);

/// This CPU's clock: [jiffies, the coarse clock read during that jiffy]
/// (see `count::Maps::now`).
#[map]
pub static CLOCK: PerCpuArray<[u64; 2]> = PerCpuArray::with_max_entries(1, 0);

/// Per-source counters and port-scan sketch, shared by the CPUs, each
/// named by a way of `SOURCE_TAGS` and handed out by the sources' pool, as
/// the flows' (see `nta_common::table`). Keys come from the network: a
/// full table turns new sources away (counted as skipped) until the agent
/// frees idle ones, and a spoofed flood fills it at most at the new-source
/// rate.
/// Mappable: the agent reads it in place.
#[map]
pub static SOURCES: Array<SourceStats> =
    Array::with_max_entries(SOURCES_MAX_ENTRIES, BPF_F_MMAPABLE);

/// The ways of each bucket of `SOURCES`, as `FLOW_TAGS` are the flows'.
#[map]
pub static SOURCE_TAGS: Array<BucketTags> =
    Array::with_max_entries(SOURCES_MAX_ENTRIES / WAYS, BPF_F_MMAPABLE);

/// This CPU's new-source window: [start ns, sources inserted in it]. A
/// source is inserted only while the window has room
/// (`Thresholds::new_sources_per_cpu`), so that a spoofed flood costs a
/// lookup a packet, not an insert.
#[map]
pub static NEW_SOURCES: PerCpuArray<[u64; 2]> = PerCpuArray::with_max_entries(1, 0);

/// Per-destination-host counters, in a table like `SOURCES`'.
#[map]
pub static DST_HOSTS: Array<DstHostStats> =
    Array::with_max_entries(DST_HOSTS_MAX_ENTRIES, BPF_F_MMAPABLE);

/// The tags of each bucket of `DST_HOSTS`.
#[map]
pub static DST_HOST_TAGS: Array<BucketTags> =
    Array::with_max_entries(DST_HOSTS_MAX_ENTRIES / WAYS, BPF_F_MMAPABLE);

/// SYNs per TCP destination port, in 64 per-CPU chunks (see `PortSynCounts`).
#[map]
pub static SYN_PORTS: PerCpuArray<PortSynCounts> = PerCpuArray::with_max_entries(PORT_CHUNKS, 0);

/// Windows and thresholds, written by the agent (see `Thresholds`). Until it
/// does, the entry is all zeros, which the program reads as "not configured"
/// (`configured == 0`): no window counting and no events.
#[map]
pub static THRESHOLDS: Array<Thresholds> = Array::with_max_entries(1, 0);

/// Threshold crossings, for the agent to act on at once rather than at its
/// next poll.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_RING_BYTES, 0);

/// What to sample, written by the agent; all zeros (never written) samples
/// nothing.
#[map]
pub static SAMPLING: Array<Sampling> = Array::with_max_entries(1, 0);

/// Per port, which transports to sample (`sample_port` flags): one byte per
/// port, so the check is one array lookup.
#[map]
pub static SAMPLE_PORTS: Array<u8> = Array::with_max_entries(PORT_COUNT as u32, 0);

/// Payload samples for the agent's payload pipeline.
#[map]
pub static SAMPLES: RingBuf = RingBuf::with_byte_size(SAMPLES_RING_BYTES, 0);

/// This CPU's rate-cap window: [start ns, samples in it].
#[map]
pub static SAMPLE_RATE: PerCpuArray<[u64; 2]> = PerCpuArray::with_max_entries(1, 0);

/// Source prefixes to drop, written by the agent; keys are `BlockKey`s
/// (aya-ebpf's `Key<IpKey>` has the same layout). aya-ebpf adds the
/// `BPF_F_NO_PREALLOC` flag the kernel requires of an LPM trie.
#[map]
pub static BLOCKLIST: LpmTrie<IpKey, BlockStats> =
    LpmTrie::with_max_entries(BLOCKLIST_MAX_ENTRIES, 0);

/// Non-zero while `BLOCKLIST` holds an entry, written by the agent with
/// each change: looking up an empty trie costs about 10 ns a packet, and
/// nothing is blocked most of the time; reading this costs about 1.
#[map]
pub static BLOCKLIST_ACTIVE: Array<u32> = Array::with_max_entries(1, 0);

/// Flows, both directions in one entry, shared by the CPUs (see
/// `FlowStats`), each named by a way of `FLOW_TAGS` (see
/// `nta_common::table`), found there by the flow's tag. The agent sets the
/// size at load and frees an entry once it has written the flow's record,
/// giving it back to the flows' pool. A new flow that finds both its
/// buckets full is counted as skipped, as are new flows above a rate (per
/// CPU, `NEW_FLOWS`). Mappable: the agent walks it in place, reading the
/// entries its taken ways name.
#[map]
pub static FLOWS: Array<FlowStats> = Array::with_max_entries(FLOWS_MAX_ENTRIES, BPF_F_MMAPABLE);

/// The ways of each bucket of `FLOWS` (`nta_common::table::way`: a tag and
/// an entry index; 0 for a free way), a cache line each: one lookup finds a
/// bucket's eight. Mappable, so that
/// the agent frees a way with an atomic store of its own, where an update
/// of the whole bucket could undo a way another CPU just took; the tags
/// then also start on a page boundary, so that each group of buckets
/// fills one page.
#[map]
pub static FLOW_TAGS: Array<BucketTags> =
    Array::with_max_entries(FLOWS_MAX_ENTRIES / WAYS, BPF_F_MMAPABLE);

/// Buckets of the flow table, set by the agent at load with its size
/// (`FLOW_BUCKETS_GLOBAL`).
#[unsafe(no_mangle)]
pub static NTA_FLOW_BUCKETS: Global<u32> = Global::new(FLOWS_MAX_ENTRIES / WAYS);

/// The seed of the tables' key hash, drawn at random by the agent at load
/// (`TABLE_SEED_GLOBAL`).
#[unsafe(no_mangle)]
pub static NTA_TABLE_SEED: Global<u64> = Global::new(0);

/// This CPU's new-flow window: [start ns, flows inserted in it].
#[map]
pub static NEW_FLOWS: PerCpuArray<[u64; 2]> = PerCpuArray::with_max_entries(1, 0);

/// The tables' pools of free entries (`nta_common::table::PoolCounts`), by
/// `nta_common::table::pool` number. Mappable: the agent gives entries
/// back with stores of its own.
#[map]
pub static POOLS: Array<PoolCounts> = Array::with_max_entries(pool::COUNT, BPF_F_MMAPABLE);

/// The ring of entries given back to the pool of `SOURCES`. A `u64` a slot:
/// the kernel lays an array's values out 8 bytes apart, and the agent
/// writes them through its mapping.
#[map]
pub static SOURCE_FREE: Array<u64> = Array::with_max_entries(SOURCES_MAX_ENTRIES, BPF_F_MMAPABLE);

/// The ring of entries given back to the pool of `DST_HOSTS`.
#[map]
pub static DST_HOST_FREE: Array<u64> =
    Array::with_max_entries(DST_HOSTS_MAX_ENTRIES, BPF_F_MMAPABLE);

/// The ring of entries given back to the pool of `FLOWS`, sized with it.
#[map]
pub static FLOW_FREE: Array<u64> = Array::with_max_entries(FLOWS_MAX_ENTRIES, BPF_F_MMAPABLE);

/// Per CPU and by pool number, 1 + an entry taken from the pool that this
/// CPU could not use (another CPU took the way it was for), 0 if none: the
/// CPU's next insert into that table takes it, so that no entry is lost.
#[map]
pub static SPARE: PerCpuArray<[u32; pool::COUNT as usize]> = PerCpuArray::with_max_entries(1, 0);
