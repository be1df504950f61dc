//! What a parsed packet adds to the counters: global totals, per source,
//! per destination, per port, and the window counters whose threshold
//! crossings are signalled at once.
//!
//! One definition for the XDP program and the capture reader: both hand
//! [`packet`] a [`Packet`] and a [`State`], the program's maps (shared
//! entries updated with atomics) or the reader's memory. Written for the
//! verifier: every array index a constant or masked, no loops but bounded
//! ones, words written one by one (see [`zero_words`]).

use crate::{
    Counter, DstHostStats, IpKey, SourceStats,
    classify::{
        DstClass, NO_DST_CLASS, NO_SERVICE, NOT_A_PROBE, Probe, icmp_probe, reflection_service,
        tcp_class, tcp_flags, tcp_probe, udp_probe,
    },
    flow::{FlowKey, FlowStats, HIGH_TO_LOW, LOW_TO_HIGH},
    maps::{
        EventKind, RateClass, SERVICES, ThresholdEvent, Thresholds, feature, ip_proto, port_weight,
        sample_flow,
    },
    packet::{Family, Packet, Proto, Transport, TransportKind},
    parse::{self, Frame, Link, Network, Unparsed},
    sketch::{
        BITMAP_WORDS, HLL_REGISTERS, addr_hash, bitmap_slot, hll_raises, hll_rank, hll_split,
        host_bit, port_bit,
    },
};

/// Where the counts live, and the clock they are stamped with.
///
/// Entries are handed out as raw pointers: in the kernel, other CPUs update
/// the same source and destination entries at the same time, so no `&mut`
/// may exist; the updates that could race go through [`State::add_shared`],
/// [`State::window_add`], [`State::fetch_or`], [`State::claim`] and
/// [`State::claim_bits`]. Flow entries are shared likewise.
pub trait State {
    /// Whether a part of the counting (a `feature` bit) runs.
    fn on(&self, part: u32) -> bool;
    /// Adds to a global total (a per-CPU value in the kernel).
    fn count(&self, counter: Counter, n: u64);
    /// Nanoseconds on the clock windows are measured with.
    fn now(&self) -> u64;
    /// The number of the CPU counting the packet.
    fn cpu(&self) -> u32;
    /// The windows and thresholds; `None` only if they cannot be read.
    fn thresholds(&self) -> Option<*const Thresholds>;
    /// The source's entry, if the table has it.
    fn source(&self, key: &IpKey) -> Option<*mut SourceStats>;
    /// The source's entry, inserted (all zeros) if absent; `None` if there
    /// is no room.
    fn new_source(&self, key: &IpKey) -> Option<*mut SourceStats>;
    /// This CPU's new-source window: [start ns, sources inserted in it].
    fn new_source_window(&self) -> Option<*mut [u64; 2]>;
    /// The destination's entry, likewise.
    fn destination(&self, key: &IpKey) -> Option<*mut DstHostStats>;
    /// Counts a packet in its destination's entry: [`to_destination`],
    /// which the kernel calls through a global function, checked by the
    /// verifier once, on its own: inlined, each way the source's counting
    /// could end was another state for it to walk the destination's with.
    fn destination_packet(&self, to: &ToDestination)
    where
        Self: Sized,
    {
        to_destination(self, to);
    }
    /// Counts a SYN to `port`.
    fn syn(&self, port: u16);
    /// The flow's entry, if the table has it. It may hold another flow of
    /// the same hash (see [`FlowStats::key`]).
    fn flow(&self, key: &FlowKey) -> Option<*mut FlowStats>;
    /// The flow's entry, inserted (all zeros) if absent, as [`State::flow`];
    /// `None` if there is no room.
    fn new_flow(&self, key: &FlowKey) -> Option<*mut FlowStats>;
    /// This CPU's new-flow window: [start ns, flows inserted in it].
    fn new_flow_window(&self) -> Option<*mut [u64; 2]>;
    /// Tells the agent of a threshold crossing; false if it was lost.
    fn signal(&self, event: ThresholdEvent) -> bool;
    /// Adds `n` to a counter of a shared entry.
    ///
    /// # Safety
    /// `target` points into an entry this state handed out, still live.
    unsafe fn add_shared(target: *mut u64, n: u64);
    /// Adds `n` to a window counter of a shared entry; returns the new value.
    ///
    /// # Safety
    /// As for [`State::add_shared`].
    unsafe fn window_add(target: *mut u64, n: u64) -> u64;
    /// Sets `mask`'s bits in a word of a shared entry; returns the old word.
    ///
    /// # Safety
    /// As for [`State::add_shared`].
    unsafe fn fetch_or(target: *mut u64, mask: u64) -> u64;
    /// Sets a word of a shared entry to `value` if it is 0; true if this
    /// call did, so that exactly one CPU initialises an entry.
    ///
    /// # Safety
    /// As for [`State::add_shared`].
    unsafe fn claim(target: *mut u64, value: u64) -> bool;
    /// Sets a 32-bit word of a shared entry to `current | bits` if it still
    /// holds `current`; true if this call did, so that exactly one CPU
    /// takes a part of the word.
    ///
    /// # Safety
    /// As for [`State::add_shared`].
    unsafe fn claim_bits(target: *mut u32, current: u32, bits: u32) -> bool;
}

/// What became of a frame.
pub enum Verdict {
    /// Counted as far as it parsed; passed.
    Passed,
    /// Not parsed to its network header, for the reason counted.
    Unparsed(Counter),
    /// Its source is blocked: counted as such, to be dropped.
    Blocked,
    /// An IP packet, counted everywhere it belongs at `now`; a TCP or UDP
    /// payload is its flow direction's `payload_ordinal`-th (1 for the
    /// first; 0 without a payload or a flow entry), and `flow` says where
    /// that payload stands in its flow ([`sample_flow`] bits; 0 likewise).
    Counted {
        packet: Packet,
        now: u64,
        payload_ordinal: u64,
        flow: u8,
    },
}

/// Parses and counts one frame of `len` bytes on the wire. `blocked` says
/// whether the network header's source is blocked (and counts it so):
/// asked before anything else is counted, so that a blocked flood leaves no
/// trace in the per-source and per-destination state.
#[inline(always)]
pub fn frame<S: State, F: Frame>(
    state: &S,
    frame: &F,
    len: u64,
    blocked: impl FnOnce(&Network) -> bool,
) -> Verdict {
    state.count(Counter::Packets, 1);
    state.count(Counter::Bytes, len);
    let link = match parse::link(frame) {
        Ok(link) => link,
        Err(Unparsed(counter)) => {
            state.count(counter, 1);
            return Verdict::Unparsed(counter);
        }
    };
    ip(state, frame, &link, len, blocked)
}

/// [`frame`] past the link layer, for frames whose link header was read
/// elsewhere (a capture's cooked or loopback headers).
#[inline(always)]
pub fn ip<S: State, F: Frame>(
    state: &S,
    frame: &F,
    link: &Link,
    len: u64,
    blocked: impl FnOnce(&Network) -> bool,
) -> Verdict {
    if !parse::is_ip(link) {
        tagged(state, link);
        state.count(Counter::NonIpPackets, 1);
        state.count(Counter::NonIpBytes, len);
        return Verdict::Passed;
    }
    let network = match parse::network(frame, link) {
        Ok(network) => network,
        Err(Unparsed(counter)) => {
            // Never blocked: without a header there is no source to block.
            tagged(state, link);
            state.count(counter, 1);
            return Verdict::Unparsed(counter);
        }
    };
    if blocked(&network) {
        return Verdict::Blocked;
    }
    tagged(state, link);
    match parse::packet(frame, &network) {
        Ok(packet) => {
            let counted = self::packet(state, &packet, len);
            Verdict::Counted {
                packet,
                now: counted.now,
                payload_ordinal: counted.payload_ordinal,
                flow: counted.flow,
            }
        }
        Err(Unparsed(counter)) => {
            state.count(counter, 1);
            Verdict::Unparsed(counter)
        }
    }
}

/// Counts a frame whose VLAN tags parsed, unless it is blocked.
#[inline(always)]
fn tagged<S: State>(state: &S, link: &Link) {
    if link.vlan_tags > 0 {
        state.count(Counter::VlanTagged, 1);
    }
}

/// The count at which a threshold of `t` ("more than t") fires.
#[inline(always)]
fn crossing(t: u32) -> u64 {
    u64::from(t) + 1
}

/// What counting a packet tells its caller.
pub struct Counted {
    /// When it was seen.
    pub now: u64,
    /// See [`Verdict::Counted`].
    pub payload_ordinal: u64,
    /// See [`Verdict::Counted`].
    pub flow: u8,
}

/// Counts one parsed IP packet everywhere it belongs.
#[inline(always)]
pub fn packet<S: State>(state: &S, packet: &Packet, len: u64) -> Counted {
    totals(state, packet, len);
    let t = &packet.transport;
    // A source's UDP and ICMP rates count every such packet, later
    // fragments and cut-short headers too.
    let class = match packet.proto {
        Proto::Udp => RateClass::Udp as u32,
        Proto::Icmp => RateClass::Icmp as u32,
        Proto::Tcp | Proto::Other => NO_CLASS,
    };
    let mut seen = Seen {
        state,
        packet,
        len,
        class,
        dst_class: NO_DST_CLASS,
        probe: NOT_A_PROBE,
        service: NO_SERVICE,
        syn_port: None,
        dst_port: 0,
        now: 0,
        thresholds: None,
    };
    match t.kind {
        TransportKind::Tcp => {
            use tcp_flags::{ACK, FIN, RST, SYN};
            seen.dst_port = t.dst_port;
            let flags = t.flags;
            if flags & (SYN | ACK) == SYN {
                seen.class = RateClass::Syn as u32;
                seen.syn_port = Some(t.dst_port);
            }
            if flags & RST != 0 {
                seen.class = RateClass::Rst as u32;
            }
            if flags & (SYN | RST | FIN | ACK) == ACK && t.payload_len == 0 {
                seen.class = RateClass::BareAck as u32;
            }
            seen.dst_class = tcp_class(flags, t.payload_len);
            seen.probe = tcp_probe(flags, t.src_port, t.dst_port, t.payload_len);
        }
        TransportKind::Udp => {
            seen.dst_port = t.dst_port;
            seen.dst_class = DstClass::Udp as u32;
            seen.probe = udp_probe(t.src_port, t.dst_port);
            seen.service = reflection_service(t.src_port);
        }
        TransportKind::Opaque if packet.proto == Proto::Icmp => {
            seen.dst_class = DstClass::Icmp as u32;
            seen.probe = icmp_probe(t.flags);
        }
        TransportKind::Opaque | TransportKind::LaterFragment | TransportKind::Truncated => {}
    }

    seen.now = state.now();
    seen.thresholds = state.thresholds();
    if state.on(feature::SOURCES) {
        source(&seen);
    }
    if state.on(feature::DST_HOSTS) {
        destination(&seen);
    }
    if let Some(port) = seen.syn_port.filter(|_| state.on(feature::SYN_PORTS)) {
        state.syn(port);
    }
    let (payload_ordinal, flow) = if state.on(feature::FLOWS) {
        self::flow(&seen)
    } else {
        (0, 0)
    };
    Counted {
        now: seen.now,
        payload_ordinal,
        flow,
    }
}

/// The global totals by family, protocol, flag and parse outcome.
#[inline(always)]
fn totals<S: State>(state: &S, packet: &Packet, len: u64) {
    match packet.family {
        Family::V4 => {
            state.count(Counter::Ipv4Packets, 1);
            state.count(Counter::Ipv4Bytes, len);
        }
        Family::V6 => {
            state.count(Counter::Ipv6Packets, 1);
            state.count(Counter::Ipv6Bytes, len);
        }
    }
    let (packets, bytes) = match packet.proto {
        Proto::Tcp => (Counter::TcpPackets, Counter::TcpBytes),
        Proto::Udp => (Counter::UdpPackets, Counter::UdpBytes),
        Proto::Icmp => (Counter::IcmpPackets, Counter::IcmpBytes),
        Proto::Other => (Counter::OtherL4Packets, Counter::OtherL4Bytes),
    };
    state.count(packets, 1);
    state.count(bytes, len);
    if packet.fragment {
        state.count(Counter::Fragments, 1);
    }
    let t = &packet.transport;
    match t.kind {
        TransportKind::Tcp => {
            use tcp_flags::{ACK, FIN, RST, SYN};
            if t.flags & SYN != 0 {
                if t.flags & ACK != 0 {
                    state.count(Counter::TcpSynAck, 1);
                } else {
                    state.count(Counter::TcpSyn, 1);
                }
            }
            if t.flags & RST != 0 {
                state.count(Counter::TcpRst, 1);
            }
            if t.flags & FIN != 0 {
                state.count(Counter::TcpFin, 1);
            }
            if t.src_port == 53 || t.dst_port == 53 {
                state.count(Counter::Dns, 1);
            }
        }
        TransportKind::Udp => {
            if t.src_port == 53 || t.dst_port == 53 {
                state.count(Counter::Dns, 1);
            }
        }
        TransportKind::LaterFragment => state.count(Counter::NonFirstFragments, 1),
        TransportKind::Truncated => state.count(t.error, 1),
        TransportKind::Opaque => {}
    }
}

/// `Seen::class` of a packet in no rate class (a SYN-ACK, a data segment).
///
/// A plain integer rather than `Option<RateClass>`: LLVM folds the option
/// into a niche value and, for BPF, compared it in a way that sent `None`
/// down the first arm, and left the verifier paths it could not close.
const NO_CLASS: u32 = u32::MAX;

/// What the per-key updates need to know about the packet.
struct Seen<'a, S> {
    state: &'a S,
    packet: &'a Packet,
    len: u64,
    /// The source's `RateClass` as a number, or `NO_CLASS`.
    class: u32,
    /// The destination's `DstClass` (besides `All` and `Fragment`) as a
    /// number, or `NO_DST_CLASS`.
    dst_class: u32,
    /// A `Probe` as a number, or `NOT_A_PROBE`.
    probe: u32,
    /// Index of the reflection service the UDP source port belongs to, or
    /// `NO_SERVICE`.
    service: u32,
    syn_port: Option<u16>,
    dst_port: u16,
    now: u64,
    /// `None` only if the map lookup failed, which it cannot for index 0.
    /// Until the agent writes it, the entry is all zeros: no windows, no
    /// events (`configured == 0`).
    thresholds: Option<*const Thresholds>,
}

/// Zeroes an array of words in place, one store per word. Volatile, so
/// that LLVM does not merge neighbouring arrays into a `memset` call, which
/// for BPF becomes a byte loop the verifier walks a byte at a time.
#[inline(always)]
unsafe fn zero_words<const N: usize>(words: *mut [u64; N]) {
    for i in 0..N {
        unsafe { core::ptr::write_volatile(&raw mut (*words)[i], 0) };
    }
}

/// Copies `from` into `to` word by word, for the same reason.
#[inline(always)]
unsafe fn copy_words<const N: usize>(to: *mut [u64; N], from: *const [u64; N]) {
    for i in 0..N {
        unsafe {
            let word = core::ptr::read_volatile(&raw const (*from)[i]);
            core::ptr::write_volatile(&raw mut (*to)[i], word);
        }
    }
}

/// Copies the low 32 bits of each of `from`'s words into `to`, volatile
/// like [`copy_words`].
#[inline(always)]
unsafe fn copy_low_halves<const N: usize>(to: *mut [u32; N], from: *const [u64; N]) {
    for i in 0..N {
        unsafe {
            let word = core::ptr::read_volatile(&raw const (*from)[i]);
            core::ptr::write_volatile(&raw mut (*to)[i], word as u32);
        }
    }
}

/// Writes a table entry's key, as two words: the entry is 8-byte aligned
/// and its key first, where a copy of an `IpKey` (aligned to a byte) is
/// sixteen byte moves.
#[inline(always)]
unsafe fn set_key(target: *mut IpKey, key: &IpKey) {
    unsafe { target.cast::<[u64; 2]>().write(key.words()) };
}

/// Restarts a window that began `length` or more ago; true if it did.
/// A `now` less than `length` before the window's start is counted in it:
/// in the kernel each CPU keeps the clock for a jiffy (see the program's
/// `now`), so one CPU may be a tick behind another that just restarted the
/// window, and restarting then would move the window back and zero what
/// it had counted. A `now` further back restarts it, as a capture's clock
/// does after one frame stamped far ahead.
#[inline(always)]
fn roll(start: *mut u64, now: u64, length: u64) -> bool {
    unsafe {
        let since = now.wrapping_sub(*start);
        if since.min(since.wrapping_neg()) >= length {
            *start = now;
            return true;
        }
    }
    false
}

/// Tells the agent that `count` crossed a threshold. A full ring is counted,
/// never waited on.
#[inline(always)]
fn signal<S: State>(
    state: &S,
    kind: EventKind,
    class: u32,
    key: &IpKey,
    count: u64,
    window_start: u64,
    now: u64,
) {
    let event = ThresholdEvent {
        kind: kind as u32,
        class,
        key: *key,
        count,
        window_start_ns: window_start,
        at_ns: now,
    };
    if !state.signal(event) {
        state.count(Counter::EventsLost, 1);
    }
}

/// Sets `bit` in a bitmap; true if this call set it. A plain read first:
/// during a flood the bit is almost always set already, and the atomic
/// fetch-or that tells which CPU set it costs more than the read.
#[inline(always)]
unsafe fn set_bit<S: State>(bitmap: *mut [u64; BITMAP_WORDS], bit: u32) -> bool {
    let (word, mask) = bitmap_slot(bit);
    unsafe {
        let target = &raw mut (*bitmap)[word];
        if *target & mask != 0 {
            return false;
        }
        S::fetch_or(target, mask) & mask == 0
    }
}

#[inline(always)]
fn source<S: State>(seen: &Seen<S>) {
    let key = &seen.packet.src;
    let s = match seen.state.source(key) {
        Some(s) => s,
        None => {
            let limit = seen
                .thresholds
                .map_or(0, |t| unsafe { (*t).new_sources_per_cpu });
            if !admit(seen, seen.state.new_source_window(), limit) {
                seen.state.count(Counter::SourcesSkipped, 1);
                return;
            }
            let Some(s) = seen.state.new_source(key) else {
                seen.state.count(Counter::SourcesSkipped, 1);
                return;
            };
            s
        }
    };
    let now = seen.now;
    unsafe {
        if (*s).first_seen_ns == 0 {
            // Every CPU that finds the entry new writes the same key.
            set_key(&raw mut (*s).key, key);
            // Windows start with the source, not at boot.
            (*s).first_seen_ns = now;
            (*s).rate_window_start_ns = now;
            (*s).slow_window_start_ns = now;
            (*s).fast_window_start_ns = now;
            (*s).weighted_window_start_ns = now;
        } else if !(*s).key.same(key) {
            // Another source with the same tag (its 64-bit hash) holds the
            // entry.
            seen.state.count(Counter::SourcesSkipped, 1);
            return;
        }
        S::add_shared(&raw mut (*s).bytes, seen.len);
        (*s).last_seen_ns = now;
        (*s).last_dst = seen.packet.dst;
        (*s).last_dst_port = seen.dst_port;

        if seen.class == RateClass::Rst as u32 {
            S::add_shared(&raw mut (*s).rsts, 1);
        } else if seen.class == RateClass::BareAck as u32 {
            S::add_shared(&raw mut (*s).bare_acks, 1);
        }
        // One count a packet: its probe kind, or else its protocol (see
        // `SourceStats::other_packets`). One arm per index, a constant, so
        // the verifier checks every array access against a known offset.
        const SYN_PROBE: u32 = Probe::Syn as u32;
        const FIN_PROBE: u32 = Probe::Fin as u32;
        const ACK_PROBE: u32 = Probe::Ack as u32;
        const UDP_PROBE: u32 = Probe::Udp as u32;
        const ECHO_PROBE: u32 = Probe::Echo as u32;
        match seen.probe {
            SYN_PROBE => S::add_shared(&raw mut (*s).probes[SYN_PROBE as usize], 1),
            FIN_PROBE => S::add_shared(&raw mut (*s).probes[FIN_PROBE as usize], 1),
            ACK_PROBE => S::add_shared(&raw mut (*s).probes[ACK_PROBE as usize], 1),
            UDP_PROBE => S::add_shared(&raw mut (*s).probes[UDP_PROBE as usize], 1),
            ECHO_PROBE => S::add_shared(&raw mut (*s).probes[ECHO_PROBE as usize], 1),
            _ => match seen.packet.proto {
                Proto::Tcp => S::add_shared(&raw mut (*s).tcp_rest, 1),
                Proto::Udp => S::add_shared(&raw mut (*s).udp_rest, 1),
                Proto::Icmp => S::add_shared(&raw mut (*s).icmp_rest, 1),
                Proto::Other => S::add_shared(&raw mut (*s).other_packets, 1),
            },
        }
        let Some(t) = seen.thresholds.filter(|t| (**t).configured != 0) else {
            return;
        };
        const SYN: u32 = RateClass::Syn as u32;
        const UDP: u32 = RateClass::Udp as u32;
        const ICMP: u32 = RateClass::Icmp as u32;
        const RST: u32 = RateClass::Rst as u32;
        const BARE_ACK: u32 = RateClass::BareAck as u32;
        match seen.class {
            SYN => rate_window::<S, { SYN as usize }>(seen, s, t),
            UDP => rate_window::<S, { UDP as usize }>(seen, s, t),
            ICMP => rate_window::<S, { ICMP as usize }>(seen, s, t),
            RST => rate_window::<S, { RST as usize }>(seen, s, t),
            BARE_ACK => rate_window::<S, { BARE_ACK as usize }>(seen, s, t),
            _ => {}
        }
        if seen.probe != NOT_A_PROBE {
            probe_sketches(seen, s, t);
        }
    }
}

/// Counts the packet in the source's rate window for class `CLASS`.
#[inline(always)]
unsafe fn rate_window<S: State, const CLASS: usize>(
    seen: &Seen<S>,
    s: *mut SourceStats,
    t: *const Thresholds,
) {
    let now = seen.now;
    unsafe {
        if roll(&raw mut (*s).rate_window_start_ns, now, (*t).rate_window_ns) {
            zero_words(&raw mut (*s).window_counts);
        }
        let count = S::window_add(&raw mut (*s).window_counts[CLASS], 1);
        if count == crossing((*t).source[CLASS]) {
            let start = (*s).rate_window_start_ns;
            let key = &seen.packet.src;
            signal(
                seen.state,
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

/// Records a probe in the source's scan windows: its destination host in
/// the sweep sketch, and its port, if it has one, in the port sketch.
#[inline(always)]
unsafe fn probe_sketches<S: State>(seen: &Seen<S>, s: *mut SourceStats, t: *const Thresholds) {
    let now = seen.now;
    let key = &seen.packet.src;
    unsafe {
        if roll(&raw mut (*s).slow_window_start_ns, now, (*t).slow_window_ns) {
            zero_words(&raw mut (*s).port_bitmap);
            (*s).slow_bits = 0;
            zero_words(&raw mut (*s).host_bitmap);
            (*s).host_bits = 0;
        }
        if set_bit::<S>(&raw mut (*s).host_bitmap, host_bit(&seen.packet.dst)) {
            let hosts = S::window_add(&raw mut (*s).host_bits, 1);
            if hosts == crossing((*t).sweep_bits) {
                let start = (*s).slow_window_start_ns;
                signal(seen.state, EventKind::Sweep, 0, key, hosts, start, now);
            }
        }
        if seen.probe != Probe::Echo as u32 {
            port_sketch(seen, s, t, seen.dst_port);
        }
    }
}

/// Records a probe to `port` in the source's three port-scan windows.
#[inline(always)]
unsafe fn port_sketch<S: State>(
    seen: &Seen<S>,
    s: *mut SourceStats,
    t: *const Thresholds,
    port: u16,
) {
    let now = seen.now;
    let key = &seen.packet.src;
    unsafe {
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
        // A port is new exactly once per slow window.
        if !set_bit::<S>(&raw mut (*s).port_bitmap, port_bit(port)) {
            return;
        }
        let bits = S::window_add(&raw mut (*s).slow_bits, 1);
        if bits == crossing((*t).slow_bits) {
            let start = (*s).slow_window_start_ns;
            signal(seen.state, EventKind::ScanSlow, 0, key, bits, start, now);
        }
        let fast = S::window_add(&raw mut (*s).fast_ports, 1);
        if fast == crossing((*t).fast_ports) {
            let start = (*s).fast_window_start_ns;
            signal(seen.state, EventKind::ScanFast, 0, key, fast, start, now);
        }
        let weight = port_weight(port);
        let score = S::window_add(&raw mut (*s).weighted_score, weight);
        let limit = u64::from((*t).weighted_score);
        if score >= limit && score - weight < limit {
            let start = (*s).weighted_window_start_ns;
            signal(
                seen.state,
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
fn destination<S: State>(seen: &Seen<S>) {
    seen.state.destination_packet(&ToDestination {
        key: seen.packet.dst,
        source_hash: addr_hash(&seen.packet.src),
        len: seen.len,
        now: seen.now,
        dst_class: seen.dst_class,
        service: seen.service,
        fragment: seen.packet.fragment,
    });
}

/// What a destination's counters take of a packet: scalars, which the
/// kernel hands to a global function whole (see
/// [`State::destination_packet`]).
#[derive(Clone, Copy, Debug)]
pub struct ToDestination {
    pub key: IpKey,
    /// The source's [`addr_hash`], for the destination's sketch of sources.
    pub source_hash: u64,
    pub len: u64,
    pub now: u64,
    /// The packet's `DstClass` (besides `All` and `Fragment`) as a
    /// number, or another number for none.
    pub dst_class: u32,
    /// Index of the reflection service the UDP source port belongs to, or
    /// another number for none.
    pub service: u32,
    pub fragment: bool,
}

/// Counts a packet in its destination's entry and signals the crossings
/// of its thresholds.
#[inline(always)]
pub fn to_destination<S: State>(state: &S, to: &ToDestination) {
    let key = &to.key;
    let Some(d) = state.destination(key) else {
        state.count(Counter::DstHostsSkipped, 1);
        return;
    };
    let now = to.now;
    let t = state
        .thresholds()
        .filter(|t| unsafe { (**t).configured } != 0);
    unsafe {
        if (*d).last_seen_ns == 0 {
            // As a new source's.
            set_key(&raw mut (*d).key, key);
        } else if !(*d).key.same(key) {
            state.count(Counter::DstHostsSkipped, 1);
            return;
        }
        (*d).last_seen_ns = now;
        if let Some(t) = t
            && roll(&raw mut (*d).rate_window_start_ns, now, (*t).rate_window_ns)
        {
            // The new window counts from here: see `DstHostStats`.
            copy_words(&raw mut (*d).window_packets, &raw const (*d).packets);
            copy_words(&raw mut (*d).window_bytes, &raw const (*d).bytes);
        }
        if let Some(t) = t
            && roll(
                &raw mut (*d).burst_window_start_ns,
                now,
                (*t).burst_window_ns,
            )
        {
            copy_low_halves(&raw mut (*d).burst_packets, &raw const (*d).packets);
            copy_low_halves(&raw mut (*d).burst_bytes, &raw const (*d).bytes);
        }
        const ALL: u32 = DstClass::All as u32;
        const SYN: u32 = DstClass::Syn as u32;
        const TCP: u32 = DstClass::Tcp as u32;
        const UDP: u32 = DstClass::Udp as u32;
        const ICMP: u32 = DstClass::Icmp as u32;
        const FRAGMENT: u32 = DstClass::Fragment as u32;
        dst_class::<S, { ALL as usize }>(state, to, d, t);
        match to.dst_class {
            SYN => dst_class::<S, { SYN as usize }>(state, to, d, t),
            TCP => dst_class::<S, { TCP as usize }>(state, to, d, t),
            UDP => dst_class::<S, { UDP as usize }>(state, to, d, t),
            ICMP => dst_class::<S, { ICMP as usize }>(state, to, d, t),
            _ => {}
        }
        if to.fragment {
            dst_class::<S, { FRAGMENT as usize }>(state, to, d, t);
        }
        if to.service < SERVICES as u32 {
            let i = to.service as usize & (SERVICES - 1);
            S::add_shared(&raw mut (*d).service_packets[i], 1);
        }
        if let Some(t) = t {
            source_sketch(to, d, t);
        }
    }
}

/// Counts the packet in the destination's class `CLASS` and signals a
/// crossing of its packet or byte threshold in the rate window.
#[inline(always)]
unsafe fn dst_class<S: State, const CLASS: usize>(
    state: &S,
    to: &ToDestination,
    d: *mut DstHostStats,
    t: Option<*const Thresholds>,
) {
    unsafe {
        let packets = S::window_add(&raw mut (*d).packets[CLASS], 1);
        let bytes = S::window_add(&raw mut (*d).bytes[CLASS], to.len);
        let Some(t) = t else {
            return;
        };
        // Wrapping: another CPU may have just moved the window's base past
        // these totals; the huge difference then matches no threshold.
        let in_window = packets.wrapping_sub((*d).window_packets[CLASS]);
        let key = &to.key;
        let start = (*d).rate_window_start_ns;
        if in_window == crossing((*t).dst_packets[CLASS]) {
            signal(
                state,
                EventKind::DstPackets,
                CLASS as u32,
                key,
                in_window,
                start,
                to.now,
            );
        }
        // The one packet that takes the window's bytes past the threshold.
        let bytes_in_window = bytes.wrapping_sub((*d).window_bytes[CLASS]);
        let limit = (*t).dst_bytes[CLASS];
        if bytes_in_window > limit && bytes_in_window - to.len <= limit {
            signal(
                state,
                EventKind::DstBytes,
                CLASS as u32,
                key,
                bytes_in_window,
                start,
                to.now,
            );
        }
        // The burst window likewise, in the low halves of the counters.
        let start = (*d).burst_window_start_ns;
        let in_burst = (packets as u32).wrapping_sub((*d).burst_packets[CLASS]);
        if u64::from(in_burst) == crossing((*t).dst_burst_packets[CLASS]) {
            signal(
                state,
                EventKind::DstBurstPackets,
                CLASS as u32,
                key,
                u64::from(in_burst),
                start,
                to.now,
            );
        }
        let bytes_in_burst = (bytes as u32).wrapping_sub((*d).burst_bytes[CLASS]);
        let limit = (*t).dst_burst_bytes[CLASS];
        let len = to.len as u32;
        if bytes_in_burst > limit && bytes_in_burst.wrapping_sub(len) <= limit {
            signal(
                state,
                EventKind::DstBurstBytes,
                CLASS as u32,
                key,
                u64::from(bytes_in_burst),
                start,
                to.now,
            );
        }
    }
}

/// Offers the packet's source to the destination's HyperLogLog registers.
#[inline(always)]
unsafe fn source_sketch(to: &ToDestination, d: *mut DstHostStats, t: *const Thresholds) {
    unsafe {
        if roll(
            &raw mut (*d).sketch_window_start_ns,
            to.now,
            (*t).sketch_window_ns,
        ) {
            // As words: the registers start 8-byte aligned (see the layout
            // assertions), and 16 stores beat 128.
            zero_words(&raw mut (*d).sources as *mut [u64; HLL_REGISTERS / 8]);
        }
        let (index, rest) = hll_split(to.source_hash);
        let register = &raw mut (*d).sources[index & (HLL_REGISTERS - 1)];
        if hll_raises(*register, rest) {
            *register = hll_rank(rest);
        }
    }
}

/// Counts the packet in its flow's entry, inserting the entry if the
/// new-flow rate allows; returns its payload's ordinal in its direction
/// and where it stands in the flow (see [`Verdict::Counted`]). A fragment
/// after the first and a transport header cut short belong to no flow.
#[inline(always)]
fn flow<S: State>(seen: &Seen<S>) -> (u64, u8) {
    let p = seen.packet;
    let t = &p.transport;
    let (src_port, dst_port) = match t.kind {
        TransportKind::Tcp | TransportKind::Udp => (t.src_port, t.dst_port),
        TransportKind::Opaque => (0, 0),
        TransportKind::LaterFragment | TransportKind::Truncated => return (0, 0),
    };
    let (key, dir) = FlowKey::of(&p.src, src_port, &p.dst, dst_port, p.ip_proto);
    let f = match seen.state.flow(&key) {
        Some(f) => f,
        None => {
            let limit = seen
                .thresholds
                .map_or(0, |t| unsafe { (*t).new_flows_per_cpu });
            if !admit(seen, seen.state.new_flow_window(), limit) {
                seen.state.count(Counter::FlowsSkipped, 1);
                return (0, 0);
            }
            let Some(f) = seen.state.new_flow(&key) else {
                seen.state.count(Counter::FlowsSkipped, 1);
                return (0, 0);
            };
            f
        }
    };
    let now = seen.now;
    unsafe {
        if (*f).first_seen_ns == 0 {
            // Every CPU that finds the entry empty writes the same key; the
            // one whose claim takes it starts the flow, and counts it: two
            // CPUs may both miss the lookup and both insert.
            // The coarse clock, as everywhere: the fine one cost a new
            // flow about 100 ns (see BENCHMARKS.md), and the claim, not
            // the time, tells which CPU saw the first packet.
            (*f).key = key;
            if S::claim(&raw mut (*f).first_seen_ns, now) {
                (*f).last_seen_ns = now;
                (*f).opener = opener(t, dir);
                seen.state.count(Counter::FlowsNew, 1);
            }
        } else if !(*f).key.same(&key) {
            // Another flow with the same tag (its 64-bit hash) holds the
            // entry.
            seen.state.count(Counter::FlowsSkipped, 1);
            return (0, 0);
        }
        // Two CPUs may race here; either time is the flow's last within a
        // tick, and never before the first.
        if now > (*f).last_seen_ns {
            (*f).last_seen_ns = now;
        }
        let carries_payload =
            matches!(t.kind, TransportKind::Tcp | TransportKind::Udp) && t.payload_len > 0;
        // One call per direction, a constant index each, for the verifier.
        let cpu = seen.state.cpu();
        let ordinal = if dir == LOW_TO_HIGH {
            count_direction::<S, LOW_TO_HIGH>(f, cpu, seen.len, carries_payload)
        } else {
            count_direction::<S, HIGH_TO_LOW>(f, cpu, seen.len, carries_payload)
        };
        if p.ip_proto == ip_proto::TCP && t.kind == TransportKind::Tcp {
            // A plain read first: the flags are almost always set already.
            let bits = u64::from(t.flags) << (8 * (dir as u64 & 1));
            if (*f).tcp_flags & bits != bits {
                S::fetch_or(&raw mut (*f).tcp_flags, bits);
            }
        }
        // Only a payload is sampled: the others need not be placed.
        let standing = if carries_payload {
            standing(&*f, t, dir)
        } else {
            0
        };
        (ordinal, standing)
    }
}

/// Counts a packet of `len` bytes in direction `DIR` of the flow's entry
/// `f`, on `cpu`: with plain adds if that CPU owns the direction or is
/// the first to take it, else as another CPU (see `FlowStats`); returns
/// its payload's ordinal in that direction if it `carries_payload`, else 0.
#[inline(always)]
unsafe fn count_direction<S: State, const DIR: usize>(
    f: *mut FlowStats,
    cpu: u32,
    len: u64,
    carries_payload: bool,
) -> u64 {
    unsafe {
        let mine = FlowStats::owner_bits(cpu, DIR);
        let half = 0xffff << (16 * DIR);
        let owners = (*f).owners;
        // A half, once set, never changes while the flow lives: a CPU that
        // loses the race for it, or finds the other half just changed,
        // counts as another this time.
        let owned = mine != 0
            && (owners & half == mine
                || (owners & half == 0 && S::claim_bits(&raw mut (*f).owners, owners, mine)));
        if owned {
            (*f).packets[DIR] += 1;
            (*f).bytes[DIR] += len;
        } else {
            S::add_shared(&raw mut (*f).others_packets[DIR], 1);
            S::add_shared(&raw mut (*f).others_bytes[DIR], len);
        }
        if carries_payload {
            S::window_add(&raw mut (*f).payload_packets[DIR], 1)
        } else {
            0
        }
    }
}

/// The end that opened a flow whose first packet seen is `t`, sent in
/// direction `dir`: the sender, unless it is a SYN-ACK, whose receiver sent
/// the SYN (the SYN was missed).
#[inline(always)]
fn opener(t: &Transport, dir: usize) -> u8 {
    use tcp_flags::{ACK, SYN};
    let syn_ack = t.kind == TransportKind::Tcp && t.flags & (SYN | ACK) == SYN | ACK;
    (if syn_ack { dir ^ 1 } else { dir }) as u8
}

/// Where a packet sent in direction `dir` stands in flow `f`, counted
/// already: [`sample_flow`] bits, as Suricata's `flow` keyword reads them.
#[inline(always)]
fn standing(f: &FlowStats, t: &Transport, dir: usize) -> u8 {
    let way = if dir as u8 == f.opener {
        sample_flow::TO_SERVER
    } else {
        sample_flow::TO_CLIENT
    };
    let established = match t.kind {
        // A SYN from either end: the flow was seen from its start. Data
        // without one is a mid-stream pickup, which Suricata does not take
        // as established either.
        TransportKind::Tcp => f.tcp_flags & (u64::from(tcp_flags::SYN) * 0x0101) != 0,
        TransportKind::Udp => f.seen_from(dir ^ 1),
        _ => false,
    };
    if established {
        way | sample_flow::ESTABLISHED
    } else {
        way
    }
}

/// Whether this CPU may insert another entry in the current second, at
/// most `limit` (0: no limit) counted in `window` ([start ns, inserted]).
#[inline(always)]
fn admit<S: State>(seen: &Seen<S>, window: Option<*mut [u64; 2]>, limit: u32) -> bool {
    if limit == 0 {
        return true;
    }
    let Some(window) = window else {
        return true;
    };
    // Per CPU: plain updates cannot race.
    unsafe {
        if roll(&raw mut (*window)[0], seen.now, 1_000_000_000) {
            (*window)[1] = 0;
        }
        if (*window)[1] >= u64::from(limit) {
            return false;
        }
        (*window)[1] += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::roll;

    #[test]
    fn a_window_restarts_a_length_away_either_way() {
        let mut start = 0u64;
        // The first packet starts it.
        assert!(roll(&mut start, 5_000, 1_000));
        assert_eq!(start, 5_000);
        assert!(!roll(&mut start, 5_999, 1_000));
        assert!(roll(&mut start, 6_000, 1_000));
        // A clock a tick behind the CPU that restarted it counts in the
        // window, which stays where it is.
        assert!(!roll(&mut start, 5_100, 1_000));
        assert!(!roll(&mut start, 5_001, 1_000));
        assert_eq!(start, 6_000);
        // A capture back from a frame stamped far ahead starts afresh.
        assert!(roll(&mut start, 3_000, 1_000));
        assert_eq!(start, 3_000);
    }
}
