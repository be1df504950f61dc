//! The program's maps and load-time globals; sizes come from nta-common.

use aya_ebpf::{
    Global,
    macros::map,
    maps::{LruHashMap, PerCpuArray},
};
use nta_common::{
    DstHostStats, GlobalCounters, IpKey, PortSynCounts, SourceStats,
    maps::{DEFAULT_PORT_WINDOW_NS, DST_HOSTS_MAX_ENTRIES, PORT_CHUNKS, SOURCES_MAX_ENTRIES},
};

/// Totals by protocol, flag and parse failure; per CPU, so no atomics.
#[map]
pub static GLOBAL: PerCpuArray<GlobalCounters> = PerCpuArray::with_max_entries(1, 0);

/// Per-source counters and port-scan sketch. LRU: keys come from the network,
/// so a spoofed-source flood evicts old entries instead of failing inserts.
#[map]
pub static SOURCES: LruHashMap<IpKey, SourceStats> =
    LruHashMap::with_max_entries(SOURCES_MAX_ENTRIES, 0);

/// Per-destination-host counters, LRU for the same reason.
#[map]
pub static DST_HOSTS: LruHashMap<IpKey, DstHostStats> =
    LruHashMap::with_max_entries(DST_HOSTS_MAX_ENTRIES, 0);

/// SYNs per TCP destination port, in 64 per-CPU chunks (see `PortSynCounts`).
#[map]
pub static SYN_PORTS: PerCpuArray<PortSynCounts> = PerCpuArray::with_max_entries(PORT_CHUNKS, 0);

/// Length of the per-source port-scan window in ns; set by the agent at load.
#[unsafe(no_mangle)]
pub static PORT_WINDOW_NS: Global<u64> = Global::new(DEFAULT_PORT_WINDOW_NS);
