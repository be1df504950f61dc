//! The blocklist: IP packets whose source the agent blocked are dropped
//! here, before any counting but the frame totals.

use core::ptr::{self, NonNull};

use aya_ebpf::helpers::generated::bpf_map_lookup_elem;
use nta_common::{
    BlockKey, BlockStats, Counter,
    maps::block_family::{IPV4, IPV6},
    packet::Family,
};

use crate::{
    count::{Global, atomic_add},
    maps::{BLOCKLIST, BLOCKLIST_ACTIVE},
    parse::Network,
};

/// Whether `network`'s source is blocked; if so, counts the frame of `len`
/// bytes against the entry that matched and in the global totals.
///
/// One trie lookup: the longest prefix covering the source. An entry of the
/// other IP version (IPv6 `::/0` covers every IPv4-mapped key) blocks
/// nothing here, and the packet goes on as if unlisted.
#[inline(always)]
pub fn drops(global: &Global, network: &Network, len: u64) -> bool {
    if BLOCKLIST_ACTIVE.get(0).is_none_or(|active| *active == 0) {
        return false;
    }
    let Some(entry) = lookup(&BlockKey::addr(network.src)) else {
        return false;
    };
    let family = match network.family {
        Family::V4 => IPV4,
        Family::V6 => IPV6,
    };
    unsafe {
        if (*entry).family != family {
            return false;
        }
        atomic_add(&raw mut (*entry).packets, 1);
        atomic_add(&raw mut (*entry).bytes, len);
    }
    global.add(Counter::BlockedPackets, 1);
    global.add(Counter::BlockedBytes, len);
    true
}

/// The entry with the longest prefix covering `key`.
///
/// aya-ebpf 0.2.1's `LpmTrie::get` hands out a shared reference, but CPUs
/// add to the entry concurrently: the raw helper gives the `*mut` those
/// atomic adds need. `LpmTrie` is `repr(transparent)` over its map
/// definition, so its address is the map's.
#[inline(always)]
fn lookup(key: &BlockKey) -> Option<*mut BlockStats> {
    let map = ptr::addr_of!(BLOCKLIST).cast_mut().cast();
    let value = unsafe { bpf_map_lookup_elem(map, ptr::from_ref(key).cast()) };
    NonNull::new(value.cast::<BlockStats>()).map(NonNull::as_ptr)
}
