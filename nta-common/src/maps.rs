//! Map names, sizes, keys and values shared by the XDP program and the agent.

/// Name of the XDP program (the `#[xdp]` function) as the kernel knows it.
///
/// The agent uses it to recognise a stale copy of itself left on an interface.
pub const PROGRAM_NAME: &str = "nta";

/// Name of the load-time global holding [`feature`] bits: which parts of
/// the program run on each packet.
pub const FEATURES_GLOBAL: &str = "NTA_FEATURES";
/// The program's global holding the seed of its tables' key hash
/// (`table::hash_words`).
pub const TABLE_SEED_GLOBAL: &str = "NTA_TABLE_SEED";
/// The program's global holding the flow table's number of buckets
/// (`table::TableLayout`).
pub const FLOW_BUCKETS_GLOBAL: &str = "NTA_FLOW_BUCKETS";

/// Parts of the XDP program that can be switched off at load time.
///
/// The agent always loads [`feature::ALL`]; the benchmarks load subsets to
/// show what each part costs per packet against the bare parse-and-pass
/// ([`feature::PARSE`] alone), and what running any program at all costs
/// ([`feature::NONE`]). The value is a global in the program's read-only
/// data, which the verifier knows, so a switched-off part is pruned from
/// the program rather than skipped by a branch per packet.
pub mod feature {
    /// Parsing the headers. Without it the program passes every frame at
    /// once, which measures the cost of running a program at all.
    pub const PARSE: u32 = 1 << 6;
    /// Per-CPU totals by protocol, flag and parse failure (`GLOBAL`).
    pub const TOTALS: u32 = 1 << 0;
    /// The `BLOCKLIST` lookup, and dropping what it lists.
    pub const BLOCKLIST: u32 = 1 << 1;
    /// Per-source counters, rate windows, port sketch and their events.
    pub const SOURCES: u32 = 1 << 2;
    /// Per-destination-host counters and SYN window.
    pub const DST_HOSTS: u32 = 1 << 3;
    /// SYNs per destination port.
    pub const SYN_PORTS: u32 = 1 << 4;
    /// Payload samples for the agent's inspection.
    pub const SAMPLING: u32 = 1 << 5;
    /// The flow table.
    pub const FLOWS: u32 = 1 << 7;
    /// Everything: what the agent loads.
    pub const ALL: u32 =
        PARSE | TOTALS | BLOCKLIST | SOURCES | DST_HOSTS | SYN_PORTS | SAMPLING | FLOWS;
    /// Pass every frame at once, looking at nothing.
    pub const NONE: u32 = 0;
    /// Each part after parsing, by name, for reports.
    pub const NAMED: [(&str, u32); 7] = [
        ("totals", TOTALS),
        ("blocklist", BLOCKLIST),
        ("sources", SOURCES),
        ("dst_hosts", DST_HOSTS),
        ("syn_ports", SYN_PORTS),
        ("sampling", SAMPLING),
        ("flows", FLOWS),
    ];
}

pub use crate::classify::{DST_CLASSES, DstClass, PROBES, Probe, SERVICES};
use crate::{
    sketch::{BITMAP_WORDS, HLL_REGISTERS},
    table::hash_words,
};

/// Map and global names; the agent looks them up by these strings.
pub mod names {
    pub const GLOBAL: &str = "GLOBAL";
    pub const SOURCES: &str = "SOURCES";
    pub const SOURCE_TAGS: &str = "SOURCE_TAGS";
    pub const DST_HOSTS: &str = "DST_HOSTS";
    pub const DST_HOST_TAGS: &str = "DST_HOST_TAGS";
    pub const SYN_PORTS: &str = "SYN_PORTS";
    pub const THRESHOLDS: &str = "THRESHOLDS";
    pub const EVENTS: &str = "EVENTS";
    pub const SAMPLING: &str = "SAMPLING";
    pub const SAMPLE_PORTS: &str = "SAMPLE_PORTS";
    pub const SAMPLES: &str = "SAMPLES";
    pub const BLOCKLIST: &str = "BLOCKLIST";
    pub const BLOCKLIST_ACTIVE: &str = "BLOCKLIST_ACTIVE";
    pub const FLOWS: &str = "FLOWS";
    pub const FLOW_TAGS: &str = "FLOW_TAGS";
    pub const NEW_FLOWS: &str = "NEW_FLOWS";
    pub const POOLS: &str = "POOLS";
    pub const SOURCE_FREE: &str = "SOURCE_FREE";
    pub const DST_HOST_FREE: &str = "DST_HOST_FREE";
    pub const FLOW_FREE: &str = "FLOW_FREE";
}

/// Entries in the per-source table (`SOURCES`, see `table::TableLayout`).
///
/// 65 536 sources × 384 B = 24 MiB of kernel memory, and 8 B of way and
/// 8 B of pool ring each:
/// enough to track every active host of a busy /16, and bounded. A full
/// table turns new sources away (and counts them) until the agent frees
/// idle ones.
pub const SOURCES_MAX_ENTRIES: u32 = 65_536;

/// New sources per second and CPU above which the program stops inserting
/// them (and counts what it skipped): as many as the table holds, so that a
/// spoofed flood pays an insert for at most that many packets a second on
/// each CPU, and the rest cost a lookup that finds nothing.
pub const DEFAULT_NEW_SOURCES_PER_CPU: u32 = SOURCES_MAX_ENTRIES;

/// Entries in the per-destination-host table (`DST_HOSTS`), likewise: the
/// hosts this sensor protects plus whatever spoofed destinations pass by;
/// 16 384 × 544 B = 8.5 MiB.
pub const DST_HOSTS_MAX_ENTRIES: u32 = 16_384;

/// Every TCP destination port has its own SYN counter.
pub const PORT_COUNT: usize = 65_536;
/// Ports per `SYN_PORTS` entry: 1 024 × 8 B = 8 KiB, under the 32 KiB limit
/// of a per-CPU value, so the counters need no atomics.
pub const PORTS_PER_CHUNK: usize = 1_024;
/// `SYN_PORTS` entries: the agent reads all ports in 64 lookups per tick.
pub const PORT_CHUNKS: u32 = (PORT_COUNT / PORTS_PER_CHUNK) as u32;

/// Bytes in the threshold-event ring: 4 681 events of 48 bytes plus the
/// ring's 8-byte record header. Events are
/// rare (one per key, kind and window at most), so this absorbs bursts while
/// the agent is busy; what does not fit is counted as `events_lost`.
pub const EVENTS_RING_BYTES: u32 = 256 * 1024;

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

    /// [`IpKey::from_v4`] of the 4 bytes at `octets`, read as one word.
    ///
    /// For the parser: built from bytes, LLVM splits the key into 16
    /// single-byte values, spills each and stores them back one by one
    /// (about 100 instructions a packet for two addresses); built from
    /// words, it stays two 8-byte values.
    ///
    /// # Safety
    /// `octets` is readable for 4 bytes (any alignment).
    #[inline(always)]
    pub unsafe fn read_v4(octets: *const [u8; 4]) -> Self {
        let addr = unsafe { core::ptr::read_unaligned(octets.cast::<u32>()) };
        // Bytes 8..16 of the key, `0 0 ff ff a b c d`, as a native word.
        let mapped = if cfg!(target_endian = "little") {
            (u64::from(addr) << 32) | 0xffff_0000
        } else {
            0xffff_u64 << 32 | u64::from(addr)
        };
        Self::from_words([0, mapped])
    }

    /// [`IpKey::from_v6`] of the 16 bytes at `octets`, read as two words.
    ///
    /// # Safety
    /// `octets` is readable for 16 bytes (any alignment).
    #[inline(always)]
    pub unsafe fn read_v6(octets: *const [u8; 16]) -> Self {
        let words = octets.cast::<u64>();
        unsafe {
            Self::from_words([
                core::ptr::read_unaligned(words),
                core::ptr::read_unaligned(words.add(1)),
            ])
        }
    }

    /// The key's bytes as two words, in memory order.
    #[inline(always)]
    pub const fn words(&self) -> [u64; 2] {
        // Same size, and every bit pattern is a valid word.
        unsafe { core::mem::transmute::<[u8; 16], [u64; 2]>(self.addr) }
    }

    /// The key's hash under `seed` (see [`hash_words`]), by which the
    /// tables of sources and destinations are keyed.
    #[inline(always)]
    pub fn hash(&self, seed: u64) -> u64 {
        hash_words(&self.words(), seed)
    }

    /// Whether `other` is the same address, compared in two 8-byte moves
    /// (a derived comparison of the bytes is a `memcmp` call).
    #[inline(always)]
    pub fn same(&self, other: &IpKey) -> bool {
        let (a, b) = (self.words(), other.words());
        a[0] == b[0] && a[1] == b[1]
    }

    /// The key whose bytes are those of `words` in memory order.
    #[inline(always)]
    pub const fn from_words(words: [u64; 2]) -> Self {
        // Same size, and every bit pattern is a valid byte array.
        Self {
            addr: unsafe { core::mem::transmute::<[u64; 2], [u8; 16]>(words) },
        }
    }
}

/// What the kernel knows about one source address.
///
/// Counters are updated with atomic adds because one entry is shared by
/// all CPUs. Timestamps are `bpf_ktime_get_coarse_ns` (CLOCK_MONOTONIC, a
/// few ms of resolution). Window resets are plain stores: two CPUs may both
/// restart a window at its boundary, which can drop a packet or two from the
/// new window's count — harmless for thresholds in the tens and hundreds.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SourceStats {
    /// The source: the table is keyed by its seeded hash ([`IpKey::hash`]),
    /// and the key is kept here to tell two sources of one hash apart.
    pub key: IpKey,
    /// Packets of other IP protocols than TCP, UDP and ICMP(v6).
    ///
    /// Every packet is counted once, in one of `other_packets`,
    /// `tcp_rest`, `udp_rest`, `icmp_rest` and `probes`: the totals by
    /// protocol ([`SourceStats::tcp_packets`] and the others) are sums, so
    /// that a packet costs one locked add here, not two or three.
    pub other_packets: u64,
    pub bytes: u64,
    /// TCP packets that are no probe (see `probes`).
    pub tcp_rest: u64,
    /// UDP packets that are no probe.
    pub udp_rest: u64,
    /// ICMP and ICMPv6 packets that are no probe.
    pub icmp_rest: u64,
    /// Probes sent, by [`Probe`](crate::classify::Probe): `probes[Syn]` is
    /// every TCP SYN without ACK this source sent.
    pub probes: [u64; PROBES],
    /// TCP RST sent by this source.
    pub rsts: u64,
    /// TCP segments with only ACK set (no SYN, RST or FIN) and no payload.
    pub bare_acks: u64,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    /// Destination of this source's latest packet.
    pub last_dst: IpKey,
    /// Destination port of the latest TCP or UDP packet.
    pub last_dst_port: u16,
    pub _pad: [u8; 6],

    /// Start of the rate window (`Thresholds::rate_window_ns`).
    pub rate_window_start_ns: u64,
    /// Packets of each class in the rate window, indexed by [`RateClass`].
    pub window_counts: [u64; RATE_CLASSES],

    /// Port-scan sketch: a 512-bit linear-counting bitmap of the destination
    /// ports this source probed in the slow window.
    ///
    /// Each probe to a port sets bit [`port_bit`](crate::sketch::port_bit);
    /// the probe that sets a bit (fetch-or tells which) counts it as a new
    /// port in all three scan windows. Set bits are a lower bound on
    /// distinct ports; linear counting turns them into an estimate.
    pub port_bitmap: [u64; BITMAP_WORDS],
    /// Start of the slow window, which also clears both bitmaps.
    pub slow_window_start_ns: u64,
    /// Bits set in `port_bitmap`.
    pub slow_bits: u64,
    /// New ports in the fast window.
    pub fast_ports: u64,
    pub fast_window_start_ns: u64,
    pub weighted_window_start_ns: u64,
    /// scanlogd's score in the weighted window: each new port below 1024
    /// weighs 3, any other 1.
    pub weighted_score: u64,
    /// Sweep sketch: the destination hosts this source probed in the slow
    /// window, as [`host_bit`](crate::sketch::host_bit)s.
    pub host_bitmap: [u64; BITMAP_WORDS],
    /// Bits set in `host_bitmap`.
    pub host_bits: u64,
}

impl SourceStats {
    /// Every packet the source sent.
    pub const fn packets(&self) -> u64 {
        self.tcp_packets()
            .wrapping_add(self.udp_packets())
            .wrapping_add(self.icmp_packets())
            .wrapping_add(self.other_packets)
    }

    /// TCP packets the source sent, probes of the TCP kinds included.
    pub const fn tcp_packets(&self) -> u64 {
        self.tcp_rest
            .wrapping_add(self.probes[Probe::Syn as usize])
            .wrapping_add(self.probes[Probe::Fin as usize])
            .wrapping_add(self.probes[Probe::Ack as usize])
    }

    /// UDP packets the source sent, probes included.
    pub const fn udp_packets(&self) -> u64 {
        self.udp_rest.wrapping_add(self.probes[Probe::Udp as usize])
    }

    /// ICMP and ICMPv6 packets the source sent, echo requests included.
    pub const fn icmp_packets(&self) -> u64 {
        self.icmp_rest
            .wrapping_add(self.probes[Probe::Echo as usize])
    }

    /// A source not seen yet: a free entry of the table, as the agent
    /// leaves it.
    pub const ZERO: Self = Self {
        key: IpKey { addr: [0; 16] },
        other_packets: 0,
        bytes: 0,
        tcp_rest: 0,
        udp_rest: 0,
        icmp_rest: 0,
        probes: [0; PROBES],
        rsts: 0,
        bare_acks: 0,
        first_seen_ns: 0,
        last_seen_ns: 0,
        last_dst: IpKey { addr: [0; 16] },
        last_dst_port: 0,
        _pad: [0; 6],
        rate_window_start_ns: 0,
        window_counts: [0; RATE_CLASSES],
        port_bitmap: [0; BITMAP_WORDS],
        slow_window_start_ns: 0,
        slow_bits: 0,
        fast_ports: 0,
        fast_window_start_ns: 0,
        weighted_window_start_ns: 0,
        weighted_score: 0,
        host_bitmap: [0; BITMAP_WORDS],
        host_bits: 0,
    };
}

/// Traffic classes a single source can flood with; index into
/// [`SourceStats::window_counts`] and [`Thresholds::source`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateClass {
    /// TCP SYN without ACK.
    Syn = 0,
    Udp = 1,
    /// ICMP and ICMPv6.
    Icmp = 2,
    /// TCP RST.
    Rst = 3,
    /// TCP with only ACK set and no payload: not a data segment.
    BareAck = 4,
}

/// Number of [`RateClass`]es.
pub const RATE_CLASSES: usize = 5;

impl RateClass {
    pub const ALL: [RateClass; RATE_CLASSES] =
        [Self::Syn, Self::Udp, Self::Icmp, Self::Rst, Self::BareAck];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Syn => "syn",
            Self::Udp => "udp",
            Self::Icmp => "icmp",
            Self::Rst => "rst",
            Self::BareAck => "ack",
        }
    }
}

/// Weight of a new port in the weighted (scanlogd) score.
#[inline(always)]
pub const fn port_weight(port: u16) -> u64 {
    if port < 1024 { 3 } else { 1 }
}

/// What the kernel knows about one destination address: the view that
/// still sees a flood whose sources are spoofed and random.
///
/// Class counters are totals since the entry was created, updated with
/// atomic fetch-adds; a rate window's count is the total minus its value at
/// the window's start (`window_*`), so the total and the window cost one
/// add, not two.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DstHostStats {
    /// The destination, as [`SourceStats::key`].
    pub key: IpKey,
    /// Packets received of each [`DstClass`]; `packets[All]` is every one.
    pub packets: [u64; DST_CLASSES],
    /// Bytes of those frames, from the Ethernet header on.
    pub bytes: [u64; DST_CLASSES],
    /// `packets` and `bytes` when the rate window started.
    pub window_packets: [u64; DST_CLASSES],
    pub window_bytes: [u64; DST_CLASSES],
    pub last_seen_ns: u64,
    /// Start of the rate window.
    pub rate_window_start_ns: u64,
    /// Start of the source sketch's window, which clears it.
    pub sketch_window_start_ns: u64,
    /// UDP packets received from each reflection service's port (see
    /// [`REFLECTION_SERVICES`](crate::classify::REFLECTION_SERVICES)).
    pub service_packets: [u64; SERVICES],
    /// HyperLogLog registers of the sources seen in the sketch window (see
    /// [`hll_slot`](crate::sketch::hll_slot)). Updated without atomics: two
    /// CPUs racing on one register may keep the smaller rank, which only
    /// lowers the estimate a little.
    pub sources: [u8; HLL_REGISTERS],
    /// The low 32 bits of `packets` and `bytes` when the burst window
    /// started: a tenth of a second holds far less than 2³² of either, so
    /// wrapping differences of the low halves are its counts, at half the
    /// memory of full bases.
    pub burst_packets: [u32; DST_CLASSES],
    pub burst_bytes: [u32; DST_CLASSES],
    /// Start of the burst window (`Thresholds::burst_window_ns`).
    pub burst_window_start_ns: u64,
}

impl DstHostStats {
    /// A destination not seen yet, likewise.
    pub const ZERO: Self = Self {
        key: IpKey { addr: [0; 16] },
        packets: [0; DST_CLASSES],
        bytes: [0; DST_CLASSES],
        window_packets: [0; DST_CLASSES],
        window_bytes: [0; DST_CLASSES],
        last_seen_ns: 0,
        rate_window_start_ns: 0,
        sketch_window_start_ns: 0,
        service_packets: [0; SERVICES],
        sources: [0; HLL_REGISTERS],
        burst_packets: [0; DST_CLASSES],
        burst_bytes: [0; DST_CLASSES],
        burst_window_start_ns: 0,
    };
}

impl Default for DstHostStats {
    fn default() -> Self {
        Self::ZERO
    }
}

/// Value of the single-entry `THRESHOLDS` array: when the XDP program tells
/// the agent, through the `EVENTS` ring, that a window counter crossed a
/// threshold. The agent writes it at start (from its configuration) and may
/// rewrite it at any time; the program reads it for every packet.
///
/// A count threshold `t` fires when a counter reaches `t + 1` ("more than
/// t"); `u32::MAX` disables it. The fetch-and-add that returns exactly
/// `t + 1` is unique across CPUs, so each crossing is signalled once per
/// window.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// Window of the per-source and per-destination rate counters.
    pub rate_window_ns: u64,
    pub fast_window_ns: u64,
    pub weighted_window_ns: u64,
    pub slow_window_ns: u64,
    /// Window of the per-destination source sketch.
    pub sketch_window_ns: u64,
    /// Window of the per-destination burst counters: a tenth of the rate
    /// window, where only a flood several times a threshold crosses (see
    /// `dst_burst_packets`).
    pub burst_window_ns: u64,
    /// Per-destination bytes in the rate window, by [`DstClass`].
    pub dst_bytes: [u64; DST_CLASSES],
    /// Per-destination packets in the rate window, by [`DstClass`].
    pub dst_packets: [u32; DST_CLASSES],
    /// Per-destination packets and bytes in the burst window, by
    /// [`DstClass`]: the rate thresholds scaled to the window and
    /// multiplied by the burst allowance, so that a tenth of a second of
    /// ordinary burstiness (slow start, a client's connection burst) stays
    /// under them while a strong flood is signalled a tenth of a second in.
    pub dst_burst_packets: [u32; DST_CLASSES],
    pub dst_burst_bytes: [u32; DST_CLASSES],
    /// Per-source class counts in the rate window, indexed by [`RateClass`].
    pub source: [u32; RATE_CLASSES],
    /// Hosts set in a source's host sketch in the slow window.
    pub sweep_bits: u32,
    /// New ports in the fast window.
    pub fast_ports: u32,
    /// Weighted score: fires when it reaches this value (scanlogd's rule).
    pub weighted_score: u32,
    /// Bits set in the port sketch (the agent converts its port threshold).
    pub slow_bits: u32,
    /// 1 once the agent has written the entry; 0 (never written) turns
    /// window counting and events off.
    pub configured: u32,
    /// New flows each CPU inserts per second at most; 0: no limit.
    pub new_flows_per_cpu: u32,
    /// New sources each CPU inserts per second at most; 0: no limit.
    pub new_sources_per_cpu: u32,
}

impl Thresholds {
    /// Windows counted, nothing signalled.
    pub const DISABLED: Self = Self {
        rate_window_ns: 1_000_000_000,
        fast_window_ns: 1_000_000_000,
        weighted_window_ns: 3_000_000_000,
        slow_window_ns: 60_000_000_000,
        sketch_window_ns: 10_000_000_000,
        burst_window_ns: 100_000_000,
        dst_bytes: [u64::MAX; DST_CLASSES],
        dst_packets: [u32::MAX; DST_CLASSES],
        dst_burst_packets: [u32::MAX; DST_CLASSES],
        dst_burst_bytes: [u32::MAX; DST_CLASSES],
        source: [u32::MAX; RATE_CLASSES],
        sweep_bits: u32::MAX,
        fast_ports: u32::MAX,
        weighted_score: u32::MAX,
        slow_bits: u32::MAX,
        configured: 1,
        new_flows_per_cpu: 0,
        new_sources_per_cpu: 0,
    };
}

/// What crossed a threshold, in a [`ThresholdEvent`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A source's new ports in the fast window (`key` = source).
    ScanFast = 1,
    /// A source's weighted port score (`key` = source).
    ScanWeighted = 2,
    /// A source's distinct ports in the slow window (`key` = source).
    ScanSlow = 3,
    /// A source's packets of one class (`class`) in the rate window.
    SourceRate = 4,
    /// A destination's packets of one [`DstClass`] (`class`) in the rate
    /// window (`key` = destination).
    DstPackets = 5,
    /// A destination's bytes of one [`DstClass`] in the rate window.
    DstBytes = 6,
    /// A source's distinct destination hosts in the slow window.
    Sweep = 7,
    /// A destination's packets of one [`DstClass`] in the burst window.
    DstBurstPackets = 8,
    /// A destination's bytes of one [`DstClass`] in the burst window.
    DstBurstBytes = 9,
}

impl EventKind {
    pub const fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::ScanFast,
            2 => Self::ScanWeighted,
            3 => Self::ScanSlow,
            4 => Self::SourceRate,
            5 => Self::DstPackets,
            6 => Self::DstBytes,
            7 => Self::Sweep,
            8 => Self::DstBurstPackets,
            9 => Self::DstBurstBytes,
            _ => return None,
        })
    }

    /// About a destination's class counters (`key` = destination, `class`
    /// = a [`DstClass`]).
    pub const fn of_destination(self) -> bool {
        matches!(
            self,
            Self::DstPackets | Self::DstBytes | Self::DstBurstPackets | Self::DstBurstBytes
        )
    }

    /// A count of bytes rather than packets.
    pub const fn in_bytes(self) -> bool {
        matches!(self, Self::DstBytes | Self::DstBurstBytes)
    }

    /// Counted in the burst window rather than the rate window.
    pub const fn in_burst_window(self) -> bool {
        matches!(self, Self::DstBurstPackets | Self::DstBurstBytes)
    }
}

/// One threshold crossing, sent on the `EVENTS` ring the agent waits on.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThresholdEvent {
    /// An [`EventKind`].
    pub kind: u32,
    /// A [`RateClass`] for `SourceRate`, a [`DstClass`] for the
    /// destination kinds, else 0.
    pub class: u32,
    /// The source or destination the counter belongs to.
    pub key: IpKey,
    /// The counter's value when it crossed.
    pub count: u64,
    /// When the counter's window started and when it crossed (kernel clock).
    pub window_start_ns: u64,
    pub at_ns: u64,
}

/// Value of one `SYN_PORTS` entry: SYNs to ports `i*1024 .. (i+1)*1024`.
///
/// Chunks rather than one entry per port: 64 entries, which the agent reads
/// in one batch call.
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

// The kernel and the agent must agree on these layouts byte for byte; a
// field added without its padding would shift everything after it.
const _: () = assert!(core::mem::size_of::<SourceStats>() == 384);
const _: () = assert!(core::mem::size_of::<DstHostStats>() == 544);
// `count` writes a new entry's key as two words, at the entry's start.
const _: () = assert!(core::mem::offset_of!(SourceStats, key) == 0);
const _: () = assert!(core::mem::offset_of!(DstHostStats, key) == 0);
const _: () = assert!(core::mem::size_of::<Thresholds>() == 216);
const _: () = assert!(core::mem::size_of::<ThresholdEvent>() == 48);

/// Entries (CIDRs) in the `BLOCKLIST` trie.
///
/// Room for a published drop list (Spamhaus DROP is ~1 500 prefixes,
/// FireHOL level 1 ~4 500) several times over, plus what the agent blocks
/// itself. The trie is not preallocated: it holds ~100–200 bytes per entry,
/// counting its intermediate nodes, so ~3 MiB when full. Bounded so that a
/// runaway feed or auto-block fails with an error instead of growing kernel
/// memory; a lookup walks at most one node per prefix bit (129), whatever
/// the count.
pub const BLOCKLIST_MAX_ENTRIES: u32 = 16_384;

/// Prefix length of one address in a [`BlockKey`]: an exact lookup.
pub const ADDR_BITS: u32 = 128;

/// Prefix length of `::ffff:0:0/96`, under which [`IpKey`] stores IPv4: an
/// IPv4 `/n` is a `BlockKey` of prefix `96 + n`.
pub const IPV4_MAPPED_BITS: u32 = 96;

/// Key of the `BLOCKLIST` longest-prefix-match trie: the kernel's
/// `bpf_lpm_trie_key_u8` with a 16-byte address, in network byte order.
///
/// IPv4 CIDRs are stored IPv4-mapped, like [`IpKey`]. An IPv6 prefix of 96
/// bits or fewer can still cover `::ffff:0:0/96` (`::/0` does), so an entry
/// says in [`BlockStats::family`] which packets it applies to.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct BlockKey {
    /// Leading bits of `addr` that must match, 0..=128 (host byte order).
    pub prefix_len: u32,
    pub addr: IpKey,
}

/// `BlockStats::family`: the IP version an entry blocks.
pub mod block_family {
    pub const IPV4: u32 = 4;
    pub const IPV6: u32 = 6;
}

/// Value of one `BLOCKLIST` entry: what it dropped, and what it is.
///
/// One entry is shared by all CPUs, so the program adds atomically; the
/// agent writes an entry once, with zero counts, and never overwrites it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BlockStats {
    /// Packets dropped because of this entry (the longest matching prefix).
    pub packets: u64,
    /// Bytes of those frames, from the Ethernet header on.
    pub bytes: u64,
    /// [`block_family`]: the entry drops only packets of that IP version, so
    /// IPv6 `::/0` does not cover IPv4 sources and an IPv4 entry does not
    /// cover an IPv6 packet with an IPv4-mapped source. Any other value
    /// drops nothing.
    pub family: u32,
    /// The entry's own [`BlockKey::prefix_len`]. A lookup returns the
    /// longest match, not the key that matched: this tells the agent whether
    /// a lookup found the entry itself (kernels before 6.13 and its stable
    /// backports ignore `BPF_NOEXIST` on this map, so the agent checks
    /// before it inserts).
    pub prefix_len: u32,
}

impl BlockStats {
    /// A new entry, nothing dropped yet.
    pub const fn new(family: u32, prefix_len: u32) -> Self {
        Self {
            packets: 0,
            bytes: 0,
            family,
            prefix_len,
        }
    }
}

// The kernel checks the key size against its own layout: 4 + 16 bytes.
const _: () = assert!(core::mem::size_of::<BlockKey>() == 20);
const _: () = assert!(core::mem::size_of::<BlockStats>() == 24);

/// Most payload bytes one sample carries: an HTTP request line and its
/// headers, or a whole DNS message, fit in most cases.
pub const SAMPLE_BYTES: usize = 512;

/// Bytes in the sample ring: ~3 690 samples of 568 bytes, a second of a
/// busy web server's requests at the default rate cap, so the agent can
/// fall behind briefly without losing any.
pub const SAMPLES_RING_BYTES: u32 = 2 * 1024 * 1024;

/// IP protocol numbers (IANA): the IPv4 protocol and IPv6 next-header
/// values the program and the agent tell apart.
pub mod ip_proto {
    /// IPv6 hop-by-hop options header.
    pub const HOPOPTS: u8 = 0;
    /// ICMP (IPv4).
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 destination options header.
    pub const DSTOPTS: u8 = 60;
}

/// `SAMPLE_PORTS` flags: which transports to sample on a port (either end).
pub mod sample_port {
    pub const TCP: u8 = 1;
    pub const UDP: u8 = 2;
}

/// [`SampleHeader::flow`] bits: where a sampled payload stands in its
/// flow, as the flow's slot on the sampling CPU knows it. No bit set: the
/// packet has no flow entry (the table was full, or flows are off).
pub mod sample_flow {
    /// Sent by the end that opened the flow: its SYN's sender, the other
    /// end of a SYN-ACK seen first, else the first packet's sender.
    pub const TO_SERVER: u8 = 1;
    /// Sent by the other end.
    pub const TO_CLIENT: u8 = 2;
    /// TCP: part of the flow's handshake was seen (no mid-stream pickup);
    /// UDP: the other end has sent too.
    pub const ESTABLISHED: u8 = 4;
}

/// What was sampled, ahead of the payload bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleHeader {
    pub src: IpKey,
    pub dst: IpKey,
    pub src_port: u16,
    pub dst_port: u16,
    /// IP protocol number: [`ip_proto::TCP`] or [`ip_proto::UDP`].
    pub proto: u8,
    /// TCP flags byte (0 for UDP).
    pub tcp_flags: u8,
    /// [`sample_flow`] bits.
    pub flow: u8,
    pub _pad: u8,
    /// Payload length per the IP header (may exceed what was captured).
    pub payload_len: u32,
    /// Bytes of payload in the sample (at most `SAMPLE_BYTES`).
    pub captured: u32,
    /// TCP sequence number of the payload's first byte (0 for UDP).
    pub seq: u32,
    pub _pad2: [u8; 4],
    /// When the packet was seen (kernel clock, CLOCK_MONOTONIC).
    pub at_ns: u64,
}

/// One payload sample on the `SAMPLES` ring.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub header: SampleHeader,
    pub data: [u8; SAMPLE_BYTES],
}

/// Value of the single-entry `SAMPLING` array, written by the agent.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Sampling {
    /// 0 (never written) samples nothing.
    pub enabled: u32,
    /// Most samples per CPU per second; past it they are counted as capped.
    pub max_per_sec: u32,
    /// Sample 1 in N packets with payload on other ports; 0 is off.
    pub one_in: u32,
    /// Sample the first N payload packets of each direction of every TCP
    /// and UDP flow, on any port; 0 is off.
    pub flow_payloads: u32,
}

const _: () = assert!(core::mem::size_of::<SampleHeader>() == 64);
const _: () = assert!(core::mem::size_of::<Sample>() == 64 + SAMPLE_BYTES);
const _: () = assert!(core::mem::size_of::<Sampling>() == 16);

#[cfg(test)]
mod tests {
    use super::IpKey;

    #[test]
    fn keys_read_as_words_equal_keys_built_from_bytes() {
        // Odd offsets: the parser reads addresses wherever the frame has them.
        let bytes: [u8; 21] = core::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0xa5);
        for start in 0..=5 {
            let v4: [u8; 4] = bytes[start..start + 4].try_into().unwrap();
            let read = unsafe { IpKey::read_v4(bytes[start..].as_ptr().cast()) };
            assert_eq!(read, IpKey::from_v4(v4), "IPv4 at offset {start}");
            assert_eq!(
                &read.addr[..12],
                &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
            );
            let v6: [u8; 16] = bytes[start..start + 16].try_into().unwrap();
            let read = unsafe { IpKey::read_v6(bytes[start..].as_ptr().cast()) };
            assert_eq!(read, IpKey::from_v6(v6), "IPv6 at offset {start}");
        }
    }
}
