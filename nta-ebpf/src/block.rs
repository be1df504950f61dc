//! The blocklist: IP packets whose source the agent blocked are dropped
//! here, before any counting but the frame totals.

use core::{
    mem::MaybeUninit,
    ptr::{self, NonNull},
};

use aya_ebpf::helpers::generated::bpf_map_lookup_elem;
use nta_common::{
    BlockKey, BlockStats, Counter, IpKey,
    maps::{
        ADDR_BITS,
        block_family::{IPV4, IPV6},
    },
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
    let Some(entry) = lookup(&network.src) else {
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

/// The entry with the longest prefix covering `addr`.
///
/// aya-ebpf 0.2.1's `LpmTrie::get` hands out a shared reference, but CPUs
/// add to the entry concurrently: the raw helper gives the `*mut` those
/// atomic adds need. `LpmTrie` is `repr(transparent)` over its map
/// definition, so its address is the map's.
///
/// The key is written in place, 4 bytes at a time, and never copied: its
/// address starts at offset 4, and the program is built to allow misaligned
/// accesses (for the packet's), so LLVM would otherwise move it in 8-byte
/// words there, a misaligned stack access the verifier rejects.
#[inline(always)]
fn lookup(addr: &IpKey) -> Option<*mut BlockStats> {
    let mut key = MaybeUninit::<BlockKey>::uninit();
    let to = key.as_mut_ptr().cast::<u32>();
    let from = ptr::from_ref(addr).cast::<u32>();
    let map = ptr::addr_of!(BLOCKLIST).cast_mut().cast();
    let value = unsafe {
        ptr::write_volatile(to, ADDR_BITS);
        for i in 0..4 {
            ptr::write_volatile(to.add(1 + i), ptr::read_unaligned(from.add(i)));
        }
        bpf_map_lookup_elem(map, key.as_ptr().cast())
    };
    NonNull::new(value.cast::<BlockStats>()).map(NonNull::as_ptr)
}
