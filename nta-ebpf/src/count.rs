//! Counter updates: global totals, per source, per destination, per port,
//! and the window counters whose threshold crossings are signalled at once.

use core::intrinsics::{
    AtomicOrdering::{Relaxed, SeqCst},
    atomic_or, atomic_xadd,
};

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::generated::bpf_ktime_get_coarse_ns};
use nta_common::{
    Counter, DstHostStats, GlobalCounters, IpKey, SourceStats,
    maps::{
        EventKind, PORT_SKETCH_WORDS, RATE_CLASSES, RateClass, ThresholdEvent, Thresholds, feature,
        port_sketch_bit, port_slot, port_weight,
    },
};

use crate::{
    features,
    maps::{DST_HOSTS, EVENTS, GLOBAL, SOURCES, SYN_PORTS, THRESHOLDS},
    parse::{Family, Packet, Proto, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, TransportKind},
};

/// This CPU's global counters.
pub struct Global(*mut GlobalCounters);

impl Global {
    #[inline(always)]
    pub fn get() -> Result<Self, ()> {
        GLOBAL.get_ptr_mut(0).map(Global).ok_or(())
    }

    /// Per-CPU value: a plain add cannot race.
    #[inline(always)]
    pub fn add(&self, counter: Counter, n: u64) {
        if features::on(feature::TOTALS) {
            unsafe { (*self.0).values[counter as usize] += n }
        }
    }

    #[inline(always)]
    pub fn frame(&self, len: u64) {
        self.add(Counter::Packets, 1);
        self.add(Counter::Bytes, len);
    }

    #[inline(always)]
    pub fn non_ip(&self, len: u64) {
        self.add(Counter::NonIpPackets, 1);
        self.add(Counter::NonIpBytes, len);
    }
}

/// Adds `n` to a counter in a map entry that all CPUs share (an LRU or
/// blocklist entry), where a plain `+=` would lose updates. The old value
/// is not needed, so relaxed is right: a plain atomic add.
#[inline(always)]
pub fn atomic_add(target: *mut u64, n: u64) {
    unsafe { atomic_xadd::<u64, u64, { Relaxed }>(target, n) };
}

/// Adds `n` to a window counter and returns its new value.
///
/// Sequentially consistent on purpose: for BPF, LLVM 22 encodes a relaxed
/// fetch-and-add as a plain atomic add (no fetch flag) even when the old
/// value is used, so the program would compare garbage.
#[inline(always)]
fn window_add(target: *mut u64, n: u64) -> u64 {
    unsafe { atomic_xadd::<u64, u64, { SeqCst }>(target, n) }.wrapping_add(n)
}

/// The count at which a threshold of `t` ("more than t") fires.
#[inline(always)]
fn crossing(t: u32) -> u64 {
    u64::from(t) + 1
}

/// Counts one parsed IP packet everywhere it belongs; returns the time it
/// was seen.
#[inline(always)]
pub fn packet(global: &Global, packet: &Packet, len: u64) -> u64 {
    match packet.family {
        Family::V4 => {
            global.add(Counter::Ipv4Packets, 1);
            global.add(Counter::Ipv4Bytes, len);
        }
        Family::V6 => {
            global.add(Counter::Ipv6Packets, 1);
            global.add(Counter::Ipv6Bytes, len);
        }
    }
    let (packets, bytes) = match packet.proto {
        Proto::Tcp => (Counter::TcpPackets, Counter::TcpBytes),
        Proto::Udp => (Counter::UdpPackets, Counter::UdpBytes),
        Proto::Icmp => (Counter::IcmpPackets, Counter::IcmpBytes),
        Proto::Other => (Counter::OtherL4Packets, Counter::OtherL4Bytes),
    };
    global.add(packets, 1);
    global.add(bytes, len);
    if packet.fragment {
        global.add(Counter::Fragments, 1);
    }

    let mut class = match packet.proto {
        Proto::Udp => RateClass::Udp as u32,
        Proto::Icmp => RateClass::Icmp as u32,
        Proto::Tcp | Proto::Other => NO_CLASS,
    };
    let mut syn_port = None;
    let mut dst_port = 0;
    let t = &packet.transport;
    match t.kind {
        TransportKind::Tcp => {
            dst_port = t.dst_port;
            let flags = t.flags;
            if flags & TCP_SYN != 0 {
                if flags & TCP_ACK != 0 {
                    global.add(Counter::TcpSynAck, 1);
                } else {
                    global.add(Counter::TcpSyn, 1);
                    class = RateClass::Syn as u32;
                    syn_port = Some(t.dst_port);
                }
            }
            if flags & TCP_RST != 0 {
                global.add(Counter::TcpRst, 1);
                class = RateClass::Rst as u32;
            }
            if flags & TCP_FIN != 0 {
                global.add(Counter::TcpFin, 1);
            }
            if flags & (TCP_SYN | TCP_RST | TCP_FIN | TCP_ACK) == TCP_ACK && t.payload_len == 0 {
                class = RateClass::BareAck as u32;
            }
            if t.src_port == 53 || t.dst_port == 53 {
                global.add(Counter::Dns, 1);
            }
        }
        TransportKind::Udp => {
            dst_port = t.dst_port;
            if t.src_port == 53 || t.dst_port == 53 {
                global.add(Counter::Dns, 1);
            }
        }
        TransportKind::LaterFragment => global.add(Counter::NonFirstFragments, 1),
        TransportKind::Truncated => global.add(t.error, 1),
        TransportKind::Opaque => {}
    }

    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let thresholds = THRESHOLDS.get_ptr(0);
    let seen = Seen {
        global,
        packet,
        len,
        class,
        syn_port,
        dst_port,
        now,
        thresholds,
    };
    if features::on(feature::SOURCES) {
        source(&seen);
    }
    if features::on(feature::DST_HOSTS) {
        destination(&seen);
    }
    if let Some(port) = syn_port.filter(|_| features::on(feature::SYN_PORTS)) {
        let (chunk, slot) = port_slot(port);
        if let Some(ports) = SYN_PORTS.get_ptr_mut(chunk) {
            // Per-CPU value: a plain add cannot race.
            unsafe { (*ports).syns[slot] += 1 };
        }
    }
    now
}

/// `Seen::class` of a packet in no rate class (a SYN-ACK, a data segment).
///
/// A plain integer rather than `Option<RateClass>`: LLVM folds the option
/// into a niche value and, for BPF, compared it in a way that sent `None`
/// down the first arm, and left the verifier paths it could not close.
const NO_CLASS: u32 = u32::MAX;

/// What the per-key updates need to know about the packet.
struct Seen<'a> {
    global: &'a Global,
    packet: &'a Packet,
    len: u64,
    /// A `RateClass` as a number, or `NO_CLASS`.
    class: u32,
    syn_port: Option<u16>,
    dst_port: u16,
    now: u64,
    /// `None` only if the map lookup failed, which it cannot for index 0.
    /// Until the agent writes it, the entry is all zeros: no windows, no
    /// events (`configured == 0`).
    thresholds: Option<*const Thresholds>,
}

/// Initial values live in read-only data: building a 240-byte `SourceStats`
/// on the 512-byte BPF stack next to the parsed packet overflows it.
static NEW_SOURCE: SourceStats = SourceStats {
    packets: 0,
    bytes: 0,
    tcp_packets: 0,
    udp_packets: 0,
    icmp_packets: 0,
    syns: 0,
    rsts: 0,
    bare_acks: 0,
    first_seen_ns: 0,
    last_seen_ns: 0,
    last_dst: IpKey { addr: [0; 16] },
    last_dst_port: 0,
    _pad: [0; 6],
    rate_window_start_ns: 0,
    window_counts: [0; RATE_CLASSES],
    port_bitmap: [0; PORT_SKETCH_WORDS],
    slow_window_start_ns: 0,
    slow_bits: 0,
    fast_ports: 0,
    fast_window_start_ns: 0,
    weighted_window_start_ns: 0,
    weighted_score: 0,
};
static NEW_DST_HOST: DstHostStats = DstHostStats {
    packets: 0,
    bytes: 0,
    syns: 0,
    last_seen_ns: 0,
    rate_window_start_ns: 0,
    window_syns: 0,
};

/// Looks up `key`, inserting `initial` first if it is new. Another CPU may
/// insert the same key between the lookup and the insert: `BPF_NOEXIST` then
/// fails and the second lookup finds that CPU's entry, so no update is lost.
macro_rules! entry {
    ($map:expr, $key:expr, $initial:expr) => {
        match $map.get_ptr_mut($key) {
            Some(entry) => Some(entry),
            None => {
                let _ = $map.insert($key, $initial, BPF_NOEXIST as u64);
                $map.get_ptr_mut($key)
            }
        }
    };
}

/// Restarts a window that began `length` or more ago; true if it did.
#[inline(always)]
fn roll(start: *mut u64, now: u64, length: u64) -> bool {
    unsafe {
        if now.wrapping_sub(*start) >= length {
            *start = now;
            return true;
        }
    }
    false
}

/// Tells the agent that `count` crossed a threshold. A full ring is counted,
/// never waited on.
#[inline(always)]
fn signal(
    global: &Global,
    kind: EventKind,
    class: u32,
    key: &IpKey,
    count: u64,
    window_start: u64,
    now: u64,
) {
    match EVENTS.reserve::<ThresholdEvent>(0) {
        Some(mut entry) => {
            entry.write(ThresholdEvent {
                kind: kind as u32,
                class,
                key: *key,
                count,
                window_start_ns: window_start,
                at_ns: now,
            });
            entry.submit(0);
        }
        None => global.add(Counter::EventsLost, 1),
    }
}

#[inline(always)]
fn source(seen: &Seen) {
    let key = &seen.packet.src;
    let Some(s) = entry!(SOURCES, key, &NEW_SOURCE) else {
        return;
    };
    let now = seen.now;
    unsafe {
        if (*s).first_seen_ns == 0 {
            // Windows start with the source, not at boot.
            (*s).first_seen_ns = now;
            (*s).rate_window_start_ns = now;
            (*s).slow_window_start_ns = now;
            (*s).fast_window_start_ns = now;
            (*s).weighted_window_start_ns = now;
        }
        atomic_add(&raw mut (*s).packets, 1);
        atomic_add(&raw mut (*s).bytes, seen.len);
        match seen.packet.proto {
            Proto::Tcp => atomic_add(&raw mut (*s).tcp_packets, 1),
            Proto::Udp => atomic_add(&raw mut (*s).udp_packets, 1),
            Proto::Icmp => atomic_add(&raw mut (*s).icmp_packets, 1),
            Proto::Other => {}
        }
        (*s).last_seen_ns = now;
        (*s).last_dst = seen.packet.dst;
        (*s).last_dst_port = seen.dst_port;

        if seen.syn_port.is_some() {
            atomic_add(&raw mut (*s).syns, 1);
        }
        if seen.class == RateClass::Rst as u32 {
            atomic_add(&raw mut (*s).rsts, 1);
        } else if seen.class == RateClass::BareAck as u32 {
            atomic_add(&raw mut (*s).bare_acks, 1);
        }
        let Some(t) = seen.thresholds.filter(|t| (**t).configured != 0) else {
            return;
        };
        // One arm per class with its index a constant, so the verifier
        // checks every array access against a known offset.
        const SYN: u32 = RateClass::Syn as u32;
        const UDP: u32 = RateClass::Udp as u32;
        const ICMP: u32 = RateClass::Icmp as u32;
        const RST: u32 = RateClass::Rst as u32;
        const BARE_ACK: u32 = RateClass::BareAck as u32;
        match seen.class {
            SYN => rate_window::<{ SYN as usize }>(seen, s, t),
            UDP => rate_window::<{ UDP as usize }>(seen, s, t),
            ICMP => rate_window::<{ ICMP as usize }>(seen, s, t),
            RST => rate_window::<{ RST as usize }>(seen, s, t),
            BARE_ACK => rate_window::<{ BARE_ACK as usize }>(seen, s, t),
            _ => {}
        }
        if let Some(port) = seen.syn_port {
            port_sketch(seen, s, t, port);
        }
    }
}

/// Counts the packet in the source's rate window for class `CLASS`.
#[inline(always)]
unsafe fn rate_window<const CLASS: usize>(seen: &Seen, s: *mut SourceStats, t: *const Thresholds) {
    let now = seen.now;
    unsafe {
        if roll(&raw mut (*s).rate_window_start_ns, now, (*t).rate_window_ns) {
            (*s).window_counts = [0; RATE_CLASSES];
        }
        let count = window_add(&raw mut (*s).window_counts[CLASS], 1);
        if count == crossing((*t).source[CLASS]) {
            let start = (*s).rate_window_start_ns;
            let key = &seen.packet.src;
            signal(
                seen.global,
                EventKind::SourceRate,
                CLASS as u32,
                key,
                count,
                start,
                now,
            );
        }
    }
}

/// Records a SYN to `port` in the source's three port-scan windows.
#[inline(always)]
unsafe fn port_sketch(seen: &Seen, s: *mut SourceStats, t: *const Thresholds, port: u16) {
    let now = seen.now;
    let key = &seen.packet.src;
    unsafe {
        if roll(&raw mut (*s).slow_window_start_ns, now, (*t).slow_window_ns) {
            (*s).port_bitmap = [0; PORT_SKETCH_WORDS];
            (*s).slow_bits = 0;
        }
        if roll(&raw mut (*s).fast_window_start_ns, now, (*t).fast_window_ns) {
            (*s).fast_ports = 0;
        }
        if roll(
            &raw mut (*s).weighted_window_start_ns,
            now,
            (*t).weighted_window_ns,
        ) {
            (*s).weighted_score = 0;
        }
        let bit = port_sketch_bit(port);
        let word = (bit >> 6) as usize & (PORT_SKETCH_WORDS - 1);
        let mask = 1u64 << (bit & 63);
        // fetch-or tells which SYN set the bit: a port is new exactly once.
        let before = atomic_or::<u64, u64, { Relaxed }>(&raw mut (*s).port_bitmap[word], mask);
        if before & mask != 0 {
            return;
        }
        let bits = window_add(&raw mut (*s).slow_bits, 1);
        if bits == crossing((*t).slow_bits) {
            let start = (*s).slow_window_start_ns;
            signal(seen.global, EventKind::ScanSlow, 0, key, bits, start, now);
        }
        let fast = window_add(&raw mut (*s).fast_ports, 1);
        if fast == crossing((*t).fast_ports) {
            let start = (*s).fast_window_start_ns;
            signal(seen.global, EventKind::ScanFast, 0, key, fast, start, now);
        }
        let weight = port_weight(port);
        let score = window_add(&raw mut (*s).weighted_score, weight);
        let limit = u64::from((*t).weighted_score);
        if score >= limit && score - weight < limit {
            let start = (*s).weighted_window_start_ns;
            signal(
                seen.global,
                EventKind::ScanWeighted,
                0,
                key,
                score,
                start,
                now,
            );
        }
    }
}

#[inline(always)]
fn destination(seen: &Seen) {
    let key = &seen.packet.dst;
    let Some(d) = entry!(DST_HOSTS, key, &NEW_DST_HOST) else {
        return;
    };
    let now = seen.now;
    unsafe {
        atomic_add(&raw mut (*d).packets, 1);
        atomic_add(&raw mut (*d).bytes, seen.len);
        (*d).last_seen_ns = now;
        if seen.syn_port.is_none() {
            return;
        }
        atomic_add(&raw mut (*d).syns, 1);
        let Some(t) = seen.thresholds.filter(|t| (**t).configured != 0) else {
            return;
        };
        if roll(&raw mut (*d).rate_window_start_ns, now, (*t).rate_window_ns) {
            (*d).window_syns = 0;
        }
        let count = window_add(&raw mut (*d).window_syns, 1);
        if count == crossing((*t).dst_syns) {
            let start = (*d).rate_window_start_ns;
            signal(seen.global, EventKind::DstSyns, 0, key, count, start, now);
        }
    }
}
