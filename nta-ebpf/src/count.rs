//! Counter updates: global totals, per source, per destination, per port.

use core::intrinsics::{AtomicOrdering::Relaxed, atomic_or, atomic_xadd};

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::generated::bpf_ktime_get_coarse_ns};
use nta_common::{
    Counter, DstHostStats, GlobalCounters, IpKey, SourceStats,
    maps::{port_sketch_bit, port_slot},
};

use crate::{
    maps::{DST_HOSTS, GLOBAL, PORT_WINDOW_NS, SOURCES, SYN_PORTS},
    parse::{Family, Packet, Proto, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Transport},
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
        unsafe { (*self.0).values[counter as usize] += n }
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

#[inline(always)]
fn atomic_add(target: *mut u64, n: u64) {
    // One LRU entry is shared by all CPUs: a plain `+=` would lose updates.
    unsafe { atomic_xadd::<u64, u64, { Relaxed }>(target, n) };
}

/// What one packet contributes to per-source classes.
struct Classes {
    tcp: u64,
    udp: u64,
    icmp: u64,
    syn: bool,
    rst: bool,
}

/// Counts one parsed IP packet everywhere it belongs.
#[inline(always)]
pub fn packet(global: &Global, packet: &Packet, len: u64) {
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

    let mut classes = Classes {
        tcp: (packet.proto == Proto::Tcp) as u64,
        udp: (packet.proto == Proto::Udp) as u64,
        icmp: (packet.proto == Proto::Icmp) as u64,
        syn: false,
        rst: false,
    };
    let mut syn_port = None;
    match packet.transport {
        Transport::Tcp {
            src_port,
            dst_port,
            flags,
        } => {
            if flags & TCP_SYN != 0 {
                if flags & TCP_ACK != 0 {
                    global.add(Counter::TcpSynAck, 1);
                } else {
                    global.add(Counter::TcpSyn, 1);
                    classes.syn = true;
                    syn_port = Some(dst_port);
                }
            }
            if flags & TCP_RST != 0 {
                global.add(Counter::TcpRst, 1);
                classes.rst = true;
            }
            if flags & TCP_FIN != 0 {
                global.add(Counter::TcpFin, 1);
            }
            if src_port == 53 || dst_port == 53 {
                global.add(Counter::Dns, 1);
            }
        }
        Transport::Udp { src_port, dst_port } => {
            if src_port == 53 || dst_port == 53 {
                global.add(Counter::Dns, 1);
            }
        }
        Transport::LaterFragment => global.add(Counter::NonFirstFragments, 1),
        Transport::Truncated(counter) => global.add(counter, 1),
        Transport::Opaque => {}
    }

    let now = unsafe { bpf_ktime_get_coarse_ns() };
    source(&packet.src, len, &classes, syn_port, now);
    destination(&packet.dst, len, classes.syn, now);
    if let Some(port) = syn_port {
        let (chunk, slot) = port_slot(port);
        if let Some(ports) = SYN_PORTS.get_ptr_mut(chunk) {
            // Per-CPU value: a plain add cannot race.
            unsafe { (*ports).syns[slot] += 1 };
        }
    }
}

/// Initial values live in read-only data: building a 152-byte `SourceStats`
/// on the 512-byte BPF stack next to the parsed packet overflows it.
static NEW_SOURCE: SourceStats = SourceStats {
    packets: 0,
    bytes: 0,
    tcp_packets: 0,
    udp_packets: 0,
    icmp_packets: 0,
    syns: 0,
    rsts: 0,
    first_seen_ns: 0,
    last_seen_ns: 0,
    window_start_ns: 0,
    window_ports: 0,
    window_syns: 0,
    port_bitmap: [0; nta_common::maps::PORT_SKETCH_WORDS],
};
static NEW_DST_HOST: DstHostStats = DstHostStats {
    packets: 0,
    bytes: 0,
    syns: 0,
    last_seen_ns: 0,
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

#[inline(always)]
fn source(key: &IpKey, len: u64, classes: &Classes, syn_port: Option<u16>, now: u64) {
    let Some(s) = entry!(SOURCES, key, &NEW_SOURCE) else {
        return;
    };
    unsafe {
        if (*s).first_seen_ns == 0 {
            (*s).first_seen_ns = now;
            (*s).window_start_ns = now;
        }
        atomic_add(&raw mut (*s).packets, 1);
        atomic_add(&raw mut (*s).bytes, len);
        if classes.tcp != 0 {
            atomic_add(&raw mut (*s).tcp_packets, 1);
        }
        if classes.udp != 0 {
            atomic_add(&raw mut (*s).udp_packets, 1);
        }
        if classes.icmp != 0 {
            atomic_add(&raw mut (*s).icmp_packets, 1);
        }
        if classes.rst {
            atomic_add(&raw mut (*s).rsts, 1);
        }
        (*s).last_seen_ns = now;
        if let Some(port) = syn_port {
            atomic_add(&raw mut (*s).syns, 1);
            port_sketch(s, port, now);
        }
    }
}

/// Records a SYN to `port` in the source's port-scan window.
#[inline(always)]
unsafe fn port_sketch(s: *mut SourceStats, port: u16, now: u64) {
    unsafe {
        if now.wrapping_sub((*s).window_start_ns) >= PORT_WINDOW_NS.load() {
            // Two CPUs may both start a new window for the same source at the
            // boundary; the loser's SYN is then counted in the winner's
            // window, an error of one SYN once per window.
            (*s).window_start_ns = now;
            (*s).window_ports = 0;
            (*s).window_syns = 0;
            (*s).port_bitmap = [0; nta_common::maps::PORT_SKETCH_WORDS];
        }
        let bit = port_sketch_bit(port);
        let word = (bit >> 6) as usize & (nta_common::maps::PORT_SKETCH_WORDS - 1);
        let mask = 1u64 << (bit & 63);
        // fetch-or tells which SYN set the bit, so each bit is counted once.
        let before = atomic_or::<u64, u64, { Relaxed }>(&raw mut (*s).port_bitmap[word], mask);
        if before & mask == 0 {
            atomic_xadd::<u32, u32, { Relaxed }>(&raw mut (*s).window_ports, 1);
        }
        atomic_xadd::<u32, u32, { Relaxed }>(&raw mut (*s).window_syns, 1);
    }
}

#[inline(always)]
fn destination(key: &IpKey, len: u64, syn: bool, now: u64) {
    let Some(d) = entry!(DST_HOSTS, key, &NEW_DST_HOST) else {
        return;
    };
    unsafe {
        atomic_add(&raw mut (*d).packets, 1);
        atomic_add(&raw mut (*d).bytes, len);
        if syn {
            atomic_add(&raw mut (*d).syns, 1);
        }
        (*d).last_seen_ns = now;
    }
}
