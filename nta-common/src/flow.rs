//! Flows: both directions of a conversation in one entry of `FLOWS`, keyed
//! by the normalised 5-tuple's seeded hash, shared by the CPUs.

use crate::{IpKey, table::hash_words};

/// Index of a direction in [`FlowStats`]' per-direction arrays: from the
/// key's `low` end to its `high` end.
pub const LOW_TO_HIGH: usize = 0;
/// From the `high` end to the `low` end.
pub const HIGH_TO_LOW: usize = 1;

/// Entries in the `FLOWS` map by default (`[flows] table_size`): each
/// takes its 152-byte value, its 8-byte way (`FLOW_TAGS`) and its 8-byte
/// slot of the pool's ring (`FLOW_FREE`), 21 MiB whatever the number of
/// CPUs.
pub const FLOWS_MAX_ENTRIES: u32 = 131_072;

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

    /// The key's hash under `seed` (see [`hash_words`]), by which the
    /// kernel's table is keyed: the kernel then hashes and compares 8
    /// bytes, not 40, which took about 15 ns off every packet.
    #[inline(always)]
    pub fn hash(&self, seed: u64) -> u64 {
        hash_words(&self.words(), seed)
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
/// the program's time (see BENCHMARKS.md). A new flow takes an entry from
/// the flows' pool and a free way by a compare-and-swap naming it (see
/// [`TableLayout`](crate::table::TableLayout)), then its first packet
/// starts the entry with one on `first_seen_ns`. An entry whose
/// `first_seen_ns` is 0 has no packet yet.
///
/// Each direction of a flow has an owner: the first CPU to count a packet
/// that way, named in `owners`. The owner counts into that direction's
/// `packets` and `bytes` with plain adds; any other CPU counts into
/// `others_packets` and `others_bytes` with locked ones, which a plain add
/// beside would lose. A NIC steers each direction of a connection to one
/// queue (RSS hashes the addresses and ports in order, so the two
/// directions often land on different CPUs), so nearly every packet is its
/// direction's owner's, and a locked add costs about 5 ns. Read the totals
/// through [`FlowStats::merged`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowStats {
    /// The flow: the table is keyed by its seeded hash ([`FlowKey::hash`]),
    /// and the key is kept here to tell two flows of one hash apart.
    pub key: FlowKey,
    /// Packets and bytes by direction ([`LOW_TO_HIGH`], [`HIGH_TO_LOW`]),
    /// counted by the owner (see above).
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    /// The flow's first packet and its last, on the coarse clock windows
    /// use (`State::now`).
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
    /// The owner of each direction: 1 + the number of its CPU, in the low
    /// 16 bits for [`LOW_TO_HIGH`] and the high 16 for [`HIGH_TO_LOW`]; 0
    /// until a CPU has counted a packet that way. Each half is set once,
    /// by a compare-and-swap (see [`FlowStats::owner_bits`]).
    pub owners: u32,
    /// Packets and bytes by direction counted by CPUs other than the
    /// owner: last, away from what every packet touches.
    pub others_packets: [u64; 2],
    pub others_bytes: [u64; 2],
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
        owners: 0,
        others_packets: [0; 2],
        others_bytes: [0; 2],
    };

    /// TCP flags seen from the end that sent in direction `dir`.
    pub fn flags_from(&self, dir: usize) -> u8 {
        (self.tcp_flags >> (8 * (dir & 1))) as u8
    }

    /// The CPU that owns direction `dir`, if one does.
    pub fn owner(&self, dir: usize) -> Option<u32> {
        let half = (self.owners >> (16 * (dir & 1))) & 0xffff;
        half.checked_sub(1)
    }

    /// The `owners` bits that name `cpu` as the owner of direction `dir`;
    /// 0 for a CPU whose number does not fit, which never owns.
    #[inline(always)]
    pub fn owner_bits(cpu: u32, dir: usize) -> u32 {
        let mine = cpu.wrapping_add(1);
        if mine > 0xffff {
            return 0;
        }
        mine << (16 * (dir & 1))
    }

    /// Whether any CPU has counted a packet in direction `dir`: the owner's
    /// count alone misses what other CPUs saw.
    #[inline(always)]
    pub fn seen_from(&self, dir: usize) -> bool {
        let dir = dir & 1;
        self.packets[dir] != 0 || self.others_packets[dir] != 0
    }

    /// The flow with every CPU's counts in `packets` and `bytes`.
    pub fn merged(mut self) -> Self {
        for dir in [LOW_TO_HIGH, HIGH_TO_LOW] {
            self.packets[dir] += self.others_packets[dir];
            self.bytes[dir] += self.others_bytes[dir];
        }
        self.others_packets = [0; 2];
        self.others_bytes = [0; 2];
        self
    }

    /// Whether a packet has filled the entry (an entry is inserted
    /// empty, then claimed).
    pub fn in_use(&self) -> bool {
        self.first_seen_ns != 0
    }
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 40);
const _: () = assert!(core::mem::size_of::<FlowStats>() == 152);

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    fn v4(a: u8) -> IpKey {
        IpKey::from_v4([10, 0, 0, a])
    }

    #[test]
    fn a_merged_flow_holds_the_owner_s_counts_and_the_others_in_one() {
        let f = FlowStats {
            packets: [3, 1],
            bytes: [300, 100],
            others_packets: [2, 0],
            others_bytes: [120, 0],
            owners: 2 | 1 << 16,
            ..FlowStats::ZERO
        }
        .merged();
        assert_eq!((f.packets, f.bytes), ([5, 1], [420, 100]));
        assert_eq!((f.others_packets, f.others_bytes), ([0; 2], [0; 2]));
        // Merging twice counts nothing twice.
        assert_eq!(f.merged(), f);
        assert_eq!(
            (f.owner(LOW_TO_HIGH), f.owner(HIGH_TO_LOW)),
            (Some(1), Some(0))
        );
    }

    #[test]
    fn a_direction_counted_only_by_other_cpus_is_seen() {
        let mut f = FlowStats::ZERO;
        assert!(!f.seen_from(LOW_TO_HIGH));
        f.others_packets[LOW_TO_HIGH] = 1;
        assert!(f.seen_from(LOW_TO_HIGH) && !f.seen_from(HIGH_TO_LOW));
        f.packets[HIGH_TO_LOW] = 1;
        assert!(f.seen_from(HIGH_TO_LOW));
    }

    #[test]
    fn each_direction_names_its_own_owner() {
        let mut f = FlowStats::ZERO;
        assert_eq!((f.owner(LOW_TO_HIGH), f.owner(HIGH_TO_LOW)), (None, None));
        f.owners |= FlowStats::owner_bits(3, HIGH_TO_LOW);
        assert_eq!(
            (f.owner(LOW_TO_HIGH), f.owner(HIGH_TO_LOW)),
            (None, Some(3))
        );
        f.owners |= FlowStats::owner_bits(0, LOW_TO_HIGH);
        assert_eq!(
            (f.owner(LOW_TO_HIGH), f.owner(HIGH_TO_LOW)),
            (Some(0), Some(3))
        );
        // A CPU number past 16 bits never takes a half.
        assert_eq!(FlowStats::owner_bits(0xffff, LOW_TO_HIGH), 0);
        assert_eq!(FlowStats::owner_bits(0xfffe, HIGH_TO_LOW), 0xffff << 16);
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
