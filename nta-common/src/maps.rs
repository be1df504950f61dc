//! Map names, sizes, keys and values shared by the XDP program and the agent.

/// Name of the XDP program (the `#[xdp]` function) as the kernel knows it.
///
/// The agent uses it to recognise a stale copy of itself left on an interface.
pub const PROGRAM_NAME: &str = "nta";

/// Map and global names; the agent looks them up by these strings.
pub mod names {
    pub const GLOBAL: &str = "GLOBAL";
    pub const SOURCES: &str = "SOURCES";
    pub const DST_HOSTS: &str = "DST_HOSTS";
    pub const SYN_PORTS: &str = "SYN_PORTS";
    /// Load-time global: length of the per-source port-scan window, in ns.
    pub const PORT_WINDOW_NS: &str = "PORT_WINDOW_NS";
}

/// Entries in the per-source LRU map.
///
/// 65 536 sources × ~130 B ≈ 8.5 MiB of kernel memory: enough to track every
/// active host of a busy /16, and bounded, so a flood of spoofed sources only
/// evicts the least recently seen ones instead of growing without limit.
pub const SOURCES_MAX_ENTRIES: u32 = 65_536;

/// Entries in the per-destination-host LRU map: the hosts this sensor protects
/// plus whatever spoofed destinations pass by; 16 384 × ~56 B ≈ 0.9 MiB.
pub const DST_HOSTS_MAX_ENTRIES: u32 = 16_384;

/// Every TCP destination port has its own SYN counter.
pub const PORT_COUNT: usize = 65_536;
/// Ports per `SYN_PORTS` entry: 1 024 × 8 B = 8 KiB, under the 32 KiB limit
/// of a per-CPU value, so the counters need no atomics.
pub const PORTS_PER_CHUNK: usize = 1_024;
/// `SYN_PORTS` entries: the agent reads all ports in 64 lookups per tick.
pub const PORT_CHUNKS: u32 = (PORT_COUNT / PORTS_PER_CHUNK) as u32;

/// Default port-scan window: the original tool's threshold is "SYNs to more
/// than 15 ports per second".
pub const DEFAULT_PORT_WINDOW_NS: u64 = 1_000_000_000;

/// Words in the per-source port sketch (see [`SourceStats::port_bitmap`]).
pub const PORT_SKETCH_WORDS: usize = 8;
/// Bits in the per-source port sketch.
pub const PORT_SKETCH_BITS: u32 = (PORT_SKETCH_WORDS * 64) as u32;

/// Bit of the port sketch that a destination port sets.
///
/// Fibonacci hashing spreads sequential ports (what scanners send) evenly over
/// the 512 bits; the top 9 bits of the 32-bit product are the best mixed.
#[inline(always)]
pub const fn port_sketch_bit(port: u16) -> u32 {
    (port as u32).wrapping_mul(0x9E37_79B9) >> (32 - 9)
}

/// An IPv4 or IPv6 address as one map key: IPv4 is stored IPv4-mapped
/// (`::ffff:a.b.c.d`), so both families share the same maps.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct IpKey {
    pub addr: [u8; 16],
}

impl IpKey {
    /// The IPv4-mapped key for an address in network byte order.
    #[inline(always)]
    pub const fn from_v4(octets: [u8; 4]) -> Self {
        let [a, b, c, d] = octets;
        Self {
            addr: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d],
        }
    }

    /// The key for an IPv6 address in network byte order.
    #[inline(always)]
    pub const fn from_v6(octets: [u8; 16]) -> Self {
        Self { addr: octets }
    }
}

/// What the kernel knows about one source address.
///
/// Counters are updated with atomic adds because one LRU entry is shared by
/// all CPUs. Timestamps are `bpf_ktime_get_coarse_ns` (CLOCK_MONOTONIC).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SourceStats {
    pub packets: u64,
    pub bytes: u64,
    pub tcp_packets: u64,
    pub udp_packets: u64,
    pub icmp_packets: u64,
    /// TCP SYN without ACK sent by this source.
    pub syns: u64,
    /// TCP RST sent by this source.
    pub rsts: u64,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    /// Start of the current port-scan window.
    pub window_start_ns: u64,
    /// Bits set in `port_bitmap` in the current window (see below).
    pub window_ports: u32,
    /// SYNs sent in the current window.
    pub window_syns: u32,
    /// Port-scan sketch: a 512-bit linear-counting bitmap of the destination
    /// ports this source sent SYNs to in the current window.
    ///
    /// Each SYN sets bit [`port_sketch_bit`]`(dst_port)`; the first SYN to set a
    /// bit also increments `window_ports`, so the kernel knows the number of set
    /// bits without a popcount. With `z` bits still clear out of `m = 512`, the
    /// number of distinct ports is estimated as `-m·ln(z/m)` (linear counting):
    /// exact enough (±2 % at 100 ports, ±5 % at 1 000) for thresholds of 15 and
    /// 100 ports, in 64 bytes instead of an 8 KiB bitmap of all ports. The
    /// window restarts when a SYN arrives more than `PORT_WINDOW_NS` after it
    /// began.
    pub port_bitmap: [u64; PORT_SKETCH_WORDS],
}

/// What the kernel knows about one destination address: the view that still
/// sees a SYN flood whose sources are spoofed and random.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DstHostStats {
    pub packets: u64,
    pub bytes: u64,
    /// TCP SYN without ACK received.
    pub syns: u64,
    pub last_seen_ns: u64,
}

/// Value of one `SYN_PORTS` entry: SYNs to ports `i*1024 .. (i+1)*1024`.
///
/// Chunks rather than one entry per port, so the agent reads all 65 536 ports
/// with 64 system calls per tick instead of 65 536.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortSynCounts {
    pub syns: [u64; PORTS_PER_CHUNK],
}

/// Where a port's SYN counter lives: (`SYN_PORTS` index, slot in the chunk).
#[inline(always)]
pub const fn port_slot(port: u16) -> (u32, usize) {
    (
        (port as usize / PORTS_PER_CHUNK) as u32,
        port as usize % PORTS_PER_CHUNK,
    )
}
