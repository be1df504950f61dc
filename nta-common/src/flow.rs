//! Flows: both directions of a conversation in one entry of `FLOWS`, keyed
//! by the normalised 5-tuple.

use crate::IpKey;

/// Index of a direction in [`FlowStats`]' per-direction arrays: from the
/// key's `low` end to its `high` end.
pub const LOW_TO_HIGH: usize = 0;
/// From the `high` end to the `low` end.
pub const HIGH_TO_LOW: usize = 1;

/// Entries in the `FLOWS` LRU map: 131 072 flows × 128 B (key and value)
/// ≈ 16 MiB of kernel memory.
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

/// What the kernel knows of one flow. Counters are updated with atomic
/// adds: all CPUs share the entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowStats {
    /// Packets and bytes by direction ([`LOW_TO_HIGH`], [`HIGH_TO_LOW`]).
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    /// TCP flags seen: from the low end in bits 0..8, from the high end in
    /// bits 8..16.
    pub tcp_flags: u64,
    /// TCP and UDP packets with a payload, by direction: the first few of
    /// each are sampled.
    pub payload_packets: [u64; 2],
    /// The direction of the flow's first packet: the end that opened it.
    pub opener: u8,
    pub _pad: [u8; 7],
}

impl FlowStats {
    pub const ZERO: Self = Self {
        packets: [0; 2],
        bytes: [0; 2],
        first_seen_ns: 0,
        last_seen_ns: 0,
        tcp_flags: 0,
        payload_packets: [0; 2],
        opener: 0,
        _pad: [0; 7],
    };

    /// TCP flags seen from the end that sent in direction `dir`.
    pub fn flags_from(&self, dir: usize) -> u8 {
        (self.tcp_flags >> (8 * (dir & 1))) as u8
    }
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 40);
const _: () = assert!(core::mem::size_of::<FlowStats>() == 80);

#[cfg(test)]
mod tests {
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
}
