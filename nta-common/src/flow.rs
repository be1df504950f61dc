//! Flows: both directions of a conversation in one entry of `FLOWS`, keyed
//! by the normalised 5-tuple's seeded hash, shared by the CPUs.

use crate::IpKey;

/// Index of a direction in [`FlowStats`]' per-direction arrays: from the
/// key's `low` end to its `high` end.
pub const LOW_TO_HIGH: usize = 0;
/// From the `high` end to the `low` end.
pub const HIGH_TO_LOW: usize = 1;

/// Entries in the `FLOWS` map by default (`[flows] table_size`): each
/// takes its 120-byte value and its 8-byte tag (`FLOW_TAGS`), 16 MiB
/// whatever the number of CPUs.
pub const FLOWS_MAX_ENTRIES: u32 = 131_072;

/// Entries in a bucket of the flow table: the tags of one bucket fill one
/// 64-byte cache line, so looking a flow up in it costs one miss.
pub const FLOW_WAYS: u32 = 8;

/// Buckets in a group: the tags of a group fill a 4 KiB page, and a
/// flow's two buckets are in one group, so that looking for a flow that
/// is not there touches one page, not two. On the machine of
/// BENCHMARKS.md this measured no faster (the default table's megabyte of
/// tags stays in the TLB); it costs nothing, and a larger table may not.
pub const FLOW_GROUP_BUCKETS: u32 = 64;

/// The tags of one bucket: a `FLOW_TAGS` value.
pub type BucketTags = [u64; FLOW_WAYS as usize];

/// The flow table's layout: `FLOWS` is an array of `buckets` ×
/// [`FLOW_WAYS`] entries, `FLOW_TAGS` one of `buckets` [`BucketTags`];
/// the entry of way `w` of bucket `b` is at index `b * FLOW_WAYS + w`. A
/// flow lives in one of two buckets of one group, picked by the two
/// halves of its hash, whichever had more free ways when it came (the
/// power of two choices: a table half full turns almost no flow away,
/// where the first bucket with room lost one flow in 3 000 at that load).
///
/// Array entries, not hash-map ones: the verifier turns an array lookup
/// into a few instructions, where a hash map's costs a helper call and
/// the walk of a bucket's chain (about 30 ns a packet on the machine of
/// BENCHMARKS.md), and an insert an LRU pop under a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTableLayout {
    /// A multiple of [`FLOW_GROUP_BUCKETS`].
    pub buckets: u32,
}

impl FlowTableLayout {
    /// The layout of a table of at least `flows` entries: whole groups,
    /// one at least (512 flows).
    pub const fn for_flows(flows: u32) -> Self {
        let per_group = FLOW_GROUP_BUCKETS * FLOW_WAYS;
        let groups = flows.div_ceil(per_group);
        Self {
            buckets: if groups == 0 { 1 } else { groups } * FLOW_GROUP_BUCKETS,
        }
    }

    /// Entries in `FLOWS`.
    pub const fn entries(&self) -> u32 {
        self.buckets * FLOW_WAYS
    }

    /// The two buckets a flow of hash `hash` may live in: the first from
    /// the high half (multiply and shift maps it onto `0..buckets` without
    /// a division), the second from the low half's low bits, in the
    /// first's group.
    #[inline(always)]
    pub fn candidates(&self, hash: u64) -> [u32; 2] {
        let first = (((hash >> 32) * u64::from(self.buckets)) >> 32) as u32;
        let group = first & !(FLOW_GROUP_BUCKETS - 1);
        [first, group | (hash as u32 & (FLOW_GROUP_BUCKETS - 1))]
    }
}

/// A flow's tag in `FLOW_TAGS`: its hash, never 0, which marks a free way.
#[inline(always)]
pub const fn flow_tag(hash: u64) -> u64 {
    if hash == 0 { 1 } else { hash }
}

/// New flows per second and CPU above which the program stops inserting
/// them (and counts what it skipped), so that a flood of new flows cannot
/// flush the real ones out of the table: Katran's figure.
pub const DEFAULT_NEW_FLOWS_PER_CPU: u32 = 125_000;

/// A flow's key: the two ends, the one that sorts first (see `precedes`)
/// first, so that both directions find the same entry. Aligned to 8 bytes,
/// with no byte-array padding, so that the XDP program builds and copies it
/// in 8-byte moves rather than byte by byte (and a `memset` call).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FlowKey {
    pub low: IpKey,
    pub high: IpKey,
    pub low_port: u16,
    pub high_port: u16,
    /// IP protocol number (of the last IPv6 header).
    pub proto: u8,
    pub _pad: u8,
    pub _pad2: u16,
}

impl FlowKey {
    /// The key of a packet from `src`:`src_port` to `dst`:`dst_port`, and
    /// the index of its direction ([`LOW_TO_HIGH`] or [`HIGH_TO_LOW`]).
    #[inline(always)]
    pub fn of(src: &IpKey, src_port: u16, dst: &IpKey, dst_port: u16, proto: u8) -> (Self, usize) {
        if precedes(src, src_port, dst, dst_port) {
            let key = Self {
                low: *src,
                high: *dst,
                low_port: src_port,
                high_port: dst_port,
                proto,
                _pad: 0,
                _pad2: 0,
            };
            (key, LOW_TO_HIGH)
        } else {
            let key = Self {
                low: *dst,
                high: *src,
                low_port: dst_port,
                high_port: src_port,
                proto,
                _pad: 0,
                _pad2: 0,
            };
            (key, HIGH_TO_LOW)
        }
    }

    /// The key's hash under `seed`, by which the kernel's table is keyed:
    /// the kernel then hashes and compares 8 bytes, not 40, which took
    /// about 15 ns off every packet. The seed is drawn at random when the
    /// program is loaded, so that no one can choose flows whose hashes
    /// collide with another's; two that still do are told apart by the key
    /// kept in the entry. Each word is multiplied in, and the product's
    /// high half folded down: a multiplication carries a difference only
    /// towards the high bits, where the next word could cancel it (keys
    /// that differ in an address's last byte and a port collided one time
    /// in 256 without the fold).
    #[inline(always)]
    pub fn hash(&self, seed: u64) -> u64 {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let w = self.words();
        let mut h = seed;
        h = (h ^ w[0]).wrapping_mul(K);
        h ^= h >> 32;
        h = (h ^ w[1]).wrapping_mul(K);
        h ^= h >> 32;
        h = (h ^ w[2]).wrapping_mul(K);
        h ^= h >> 32;
        h = (h ^ w[3]).wrapping_mul(K);
        h ^= h >> 32;
        h = (h ^ w[4]).wrapping_mul(K);
        // MurmurHash3's finaliser: every bit of the input moves every bit
        // of the output, as the kernel's bucket choice wants.
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }

    /// Whether `other` is the same flow, compared in five 8-byte moves.
    #[inline(always)]
    pub fn same(&self, other: &FlowKey) -> bool {
        let (a, b) = (self.words(), other.words());
        a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4]
    }

    #[inline(always)]
    fn words(&self) -> [u64; 5] {
        // SAFETY: a `FlowKey` is 40 bytes aligned to 8, with no implicit
        // padding (its padding fields are zeroed where it is built).
        unsafe { *(self as *const Self).cast::<[u64; 5]>() }
    }
}

/// Whether end `a` sorts before (or equals) end `b`, by address then port.
/// The order only has to be the same for both directions, not numeric: the
/// addresses are compared as four native-endian words, which the program
/// loads in four moves each, where big-endian halves took a byte-by-byte
/// load and shift of all 32 bytes (~70 instructions per packet).
#[inline(always)]
fn precedes(a: &IpKey, a_port: u16, b: &IpKey, b_port: u16) -> bool {
    let (a, b) = (words(a), words(b));
    for i in 0..4 {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    a_port <= b_port
}

#[inline(always)]
fn words(key: &IpKey) -> [u32; 4] {
    let a = &key.addr;
    [
        u32::from_ne_bytes([a[0], a[1], a[2], a[3]]),
        u32::from_ne_bytes([a[4], a[5], a[6], a[7]]),
        u32::from_ne_bytes([a[8], a[9], a[10], a[11]]),
        u32::from_ne_bytes([a[12], a[13], a[14], a[15]]),
    ]
}

/// What the program counted of one flow. One entry for all CPUs, the
/// value inline: during a flood of many flows each packet's entry is a
/// cache and TLB miss, and a per-CPU value was a second one, a third of
/// the program's time (see BENCHMARKS.md). The counts are locked adds. A
/// new flow takes a free way by a compare-and-swap on its tag (see
/// [`FlowTableLayout`]), then its first packet starts the entry with one
/// on `first_seen_ns`. An entry whose `first_seen_ns` is 0 has no packet
/// yet.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowStats {
    /// The flow: the table is keyed by its seeded hash ([`FlowKey::hash`]),
    /// and the key is kept here to tell two flows of one hash apart.
    pub key: FlowKey,
    /// Packets and bytes by direction ([`LOW_TO_HIGH`], [`HIGH_TO_LOW`]).
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    /// The flow's first packet, on the fine clock (`State::fine_now`), and
    /// its last, on the coarse one but never before the first.
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    /// TCP and UDP packets with a payload, by direction: the first few of
    /// each are sampled.
    pub payload_packets: [u64; 2],
    /// TCP flags seen: from the low end in bits 0..8, from the high end in
    /// bits 8..16. A word, for the atomic or that sets them.
    pub tcp_flags: u64,
    /// The direction of the flow's first packet: the end that opened it.
    pub opener: u8,
    pub _pad: u8,
    pub _pad2: u16,
    pub _pad3: u32,
}

impl FlowStats {
    pub const ZERO: Self = Self {
        key: FlowKey {
            low: IpKey { addr: [0; 16] },
            high: IpKey { addr: [0; 16] },
            low_port: 0,
            high_port: 0,
            proto: 0,
            _pad: 0,
            _pad2: 0,
        },
        packets: [0; 2],
        bytes: [0; 2],
        first_seen_ns: 0,
        last_seen_ns: 0,
        payload_packets: [0; 2],
        tcp_flags: 0,
        opener: 0,
        _pad: 0,
        _pad2: 0,
        _pad3: 0,
    };

    /// TCP flags seen from the end that sent in direction `dir`.
    pub fn flags_from(&self, dir: usize) -> u8 {
        (self.tcp_flags >> (8 * (dir & 1))) as u8
    }

    /// Whether a packet has filled the entry (an entry is inserted
    /// empty, then claimed).
    pub fn in_use(&self) -> bool {
        self.first_seen_ns != 0
    }
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 40);
const _: () = assert!(core::mem::size_of::<FlowStats>() == 120);

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    fn v4(a: u8) -> IpKey {
        IpKey::from_v4([10, 0, 0, a])
    }

    #[test]
    fn both_directions_have_one_key_and_opposite_directions() {
        let (ab, d1) = FlowKey::of(&v4(2), 40_000, &v4(1), 80, 6);
        let (ba, d2) = FlowKey::of(&v4(1), 80, &v4(2), 40_000, 6);
        assert_eq!(ab, ba);
        assert_ne!(d1, d2);
        assert_eq!((ab.low, ab.low_port), (v4(1), 80));
        // Same address: the port decides.
        let (k, d) = FlowKey::of(&v4(1), 9, &v4(1), 8, 17);
        assert_eq!((k.low_port, k.high_port, d), (8, 9, HIGH_TO_LOW));
        // Another protocol is another flow.
        assert_ne!(FlowKey::of(&v4(1), 80, &v4(2), 1, 17).0, ba);
    }

    #[test]
    fn the_hash_depends_on_every_word_and_the_seed() {
        let (key, _) = FlowKey::of(&v4(1), 80, &v4(2), 40_000, 6);
        let seed = 0x1234_5678_9abc_def0;
        let h = key.hash(seed);
        assert_ne!(key.hash(seed ^ 1), h);
        let mut others = [key; 5];
        others[0].low = v4(3);
        others[1].low.addr[4] = 1;
        others[2].high = v4(4);
        others[3].high.addr[12] = 9;
        others[4].low_port = 81;
        for (i, other) in others.iter().enumerate() {
            assert!(!other.same(&key), "key {i}");
            assert_ne!(other.hash(seed), h, "key {i}");
        }
        let mut udp = key;
        udp.proto = 17;
        assert_ne!(udp.hash(seed), h);
        assert!(key.same(&FlowKey::of(&v4(2), 40_000, &v4(1), 80, 6).0));
    }

    #[test]
    fn a_table_is_whole_groups_and_a_flow_s_buckets_share_one() {
        assert_eq!(FlowTableLayout::for_flows(0).entries(), 512);
        assert_eq!(FlowTableLayout::for_flows(1_024).entries(), 1_024);
        assert_eq!(FlowTableLayout::for_flows(1_025).entries(), 1_536);
        assert_eq!(
            FlowTableLayout::for_flows(FLOWS_MAX_ENTRIES).entries(),
            FLOWS_MAX_ENTRIES
        );
        let layout = FlowTableLayout::for_flows(1_536);
        let per_group = FLOW_GROUP_BUCKETS;
        let mut first_of_group = [0u32; 3];
        let mut apart = 0;
        for port in 0..30_000u16 {
            let (key, _) = FlowKey::of(&v4(1), 80, &v4(2), port, 6);
            let [a, b] = layout.candidates(key.hash(7));
            assert!(a < layout.buckets && b < layout.buckets, "{a} {b}");
            assert_eq!(a / per_group, b / per_group, "port {port}: {a} {b}");
            first_of_group[(a / per_group) as usize] += 1;
            apart += u32::from(a != b);
        }
        // The groups share the flows evenly, and the two buckets are
        // nearly always two.
        for n in first_of_group {
            assert!((9_000..11_000).contains(&n), "{first_of_group:?}");
        }
        assert!(apart > 29_000, "{apart}");
    }

    #[test]
    fn keys_that_differ_in_an_address_byte_and_a_port_do_not_collide() {
        // Flows from one server port to many clients and their ports, as a
        // busy server has: the last byte of one address and a port vary.
        let server = v4(2);
        for seed in [0, 12_345, 0x0123_4567_89ab_cdef] {
            let mut hashes = std::collections::HashSet::new();
            for host in 0..=255u8 {
                for port in 0..256u16 {
                    let client = IpKey::from_v4([203, 0, 113, host]);
                    let (key, _) = FlowKey::of(&server, 53, &client, 35_000 + port, 17);
                    hashes.insert(key.hash(seed));
                }
            }
            assert_eq!(hashes.len(), 256 * 256, "seed {seed}");
        }
    }
}
