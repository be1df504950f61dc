//! Runs the real XDP program on crafted frames (`BPF_PROG_TEST_RUN`) and
//! checks every counter of every map afterwards: the global table in full
//! (a counter not expected to move must still be zero), every `SOURCES` and
//! `DST_HOSTS` entry field by field, and every per-port SYN counter. One
//! module a layer; this one holds what they check with ([`Expect`]).
//!
//! Each test loads its own program, so the maps start at zero. Tests that
//! run many frames through one program compare successive snapshots
//! instead ([`Counting::delta`]); each such frame uses its own addresses
//! ([`sweep_v4`], [`sweep_v6`]), so its map entries are new.
//!
//! Every program is given windows far longer than a test and thresholds that
//! never fire ([`quiet`]), so each window counter equals its cumulative
//! counter, and the event ring, drained with every snapshot, must stay empty.
//! Threshold events are tested in `events`.

mod ip;
mod link;
mod maps;
mod tcp;
mod transports;
mod truncation;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    ops::{Deref, DerefMut},
};

use nta_agent::traffic::Snapshot;
use nta_common::{
    Counter, DstHostStats, GlobalCounters, IpKey, SourceStats,
    classify::{DST_CLASSES, DstClass, PROBES, Probe, SERVICES, reflection_service},
    maps::{
        PORT_COUNT, RATE_CLASSES, RateClass, ThresholdEvent, Thresholds, feature, ip_proto,
        port_weight,
    },
    sketch::{BITMAP_WORDS, HLL_REGISTERS, bitmap_slot, hll_slot, host_bit, port_bit},
};

use crate::support::{
    self,
    frames::{
        self, DST_V4, DST_V6, ETH_HLEN, ETH_P_IPV4, ETH_P_IPV6, ExtHeader, IPV4_HLEN, IPV6_HLEN,
        Ipv6, SRC_V4, SRC_V6, VlanTag, tcp_flags,
    },
    xdp::{Xdp, assert_counters, coarse_now_ns, growth, quiet},
};

/// The loaded program and the counters as last looked at.
struct Counting {
    xdp: Xdp,
    baseline: Snapshot,
    /// Every source's full kernel entry at the baseline (the snapshot keeps
    /// only what the agent's rules read).
    baseline_sources: HashMap<IpKey, SourceStats>,
    /// Likewise every destination's.
    baseline_dst_hosts: HashMap<IpKey, DstHostStats>,
    baseline_ns: u64,
}

impl Counting {
    /// Loads the program with [`quiet`] thresholds.
    fn load() -> Self {
        Self::load_with(&quiet())
    }

    /// [`Counting::load`], if this test may use BPF (see
    /// [`support::privileged`]); `None` tells the test to return.
    fn privileged() -> Option<Self> {
        Self::privileged_with(&quiet())
    }

    /// [`Counting::load_with`], if this test may use BPF.
    fn privileged_with(thresholds: &Thresholds) -> Option<Self> {
        support::privileged().then(|| Self::load_with(thresholds))
    }

    /// Every part but the flow table, which has its own suite (`flows.rs`)
    /// and its own comparison with the reader (`differential.rs`).
    fn load_with(thresholds: &Thresholds) -> Self {
        let mut xdp = Xdp::load_with(feature::ALL & !feature::FLOWS, Some(thresholds));
        assert_eq!(xdp.events(), [], "fresh EVENTS");
        let baseline = xdp.snapshot();
        assert_eq!(baseline.global, GlobalCounters::ZERO, "fresh GLOBAL");
        assert!(baseline.sources.is_empty(), "fresh SOURCES");
        assert!(baseline.dst_hosts.is_empty(), "fresh DST_HOSTS");
        assert!(
            baseline.syn_ports.iter().all(|n| *n == 0),
            "fresh SYN_PORTS"
        );
        let baseline_ns = xdp.loaded_ns;
        Self {
            xdp,
            baseline,
            baseline_sources: HashMap::new(),
            baseline_dst_hosts: HashMap::new(),
            baseline_ns,
        }
    }

    /// The full kernel entry of every source in `snapshot`.
    fn full_sources(&self, snapshot: &Snapshot) -> HashMap<IpKey, SourceStats> {
        snapshot
            .sources
            .keys()
            .map(|key| (*key, self.source(IpAddr::from(*key))))
            .collect()
    }

    /// The full kernel entry of every destination in `snapshot`.
    fn full_dst_hosts(&self, snapshot: &Snapshot) -> HashMap<IpKey, DstHostStats> {
        snapshot
            .dst_hosts
            .keys()
            .map(|key| (*key, self.dst_host(IpAddr::from(*key))))
            .collect()
    }

    /// Everything counted since the program was loaded (and the events not
    /// yet drained).
    fn totals(&mut self) -> Counts {
        let snapshot = self.snapshot();
        Counts {
            global: snapshot.global,
            sources: self.full_sources(&snapshot),
            dst_hosts: self.full_dst_hosts(&snapshot),
            syn_ports: snapshot.syn_ports,
            events: self.xdp.events(),
            since_ns: self.xdp.loaded_ns,
            until_ns: coarse_now_ns(),
        }
    }

    /// What changed since the last call (or the load): global and per-port
    /// counters as differences, map entries that are new or changed with
    /// their whole value.
    fn delta(&mut self) -> Counts {
        let after = self.snapshot();
        let after_sources = self.full_sources(&after);
        let after_dst_hosts = self.full_dst_hosts(&after);
        let until_ns = coarse_now_ns();
        let before = &self.baseline;
        let counts = Counts {
            global: growth(&before.global, &after.global),
            sources: changed(&after_sources, &self.baseline_sources),
            dst_hosts: changed(&after_dst_hosts, &self.baseline_dst_hosts),
            syn_ports: after
                .syn_ports
                .iter()
                .zip(&before.syn_ports)
                .map(|(now, then)| now - then)
                .collect(),
            events: self.xdp.events(),
            since_ns: self.baseline_ns,
            until_ns,
        };
        self.baseline = after;
        self.baseline_sources = after_sources;
        self.baseline_dst_hosts = after_dst_hosts;
        self.baseline_ns = until_ns;
        counts
    }
}

impl Deref for Counting {
    type Target = Xdp;

    fn deref(&self) -> &Xdp {
        &self.xdp
    }
}

impl DerefMut for Counting {
    fn deref_mut(&mut self) -> &mut Xdp {
        &mut self.xdp
    }
}

/// Entries of `now` that are not in `then`, or differ from it.
fn changed<V: Copy + PartialEq>(
    now: &HashMap<IpKey, V>,
    then: &HashMap<IpKey, V>,
) -> HashMap<IpKey, V> {
    now.iter()
        .filter(|(key, value)| then.get(*key) != Some(*value))
        .map(|(key, value)| (*key, *value))
        .collect()
}

/// Counter values to check, and the time span their timestamps must fall in.
struct Counts {
    global: GlobalCounters,
    sources: HashMap<IpKey, SourceStats>,
    dst_hosts: HashMap<IpKey, DstHostStats>,
    syn_ports: Vec<u64>,
    /// Threshold events sent in the span.
    events: Vec<ThresholdEvent>,
    since_ns: u64,
    until_ns: u64,
}

/// Loads the program, runs it once on `frame` and returns every counter;
/// `None` if this test may not use BPF (see [`Counting::privileged`]).
fn run_once(frame: &[u8]) -> Option<Counts> {
    let mut xdp = Counting::privileged()?;
    xdp.pass(frame);
    Some(xdp.totals())
}

/// Expected `SOURCES` value, timestamps aside.
///
/// The window fields follow from the rest under [`quiet`]'s long windows:
/// `window_counts` are the class counters (`syns`, `udp`, `icmp`, `rsts`,
/// `bare_acks`), and the sketch, `slow_bits`, `fast_ports` and
/// `weighted_score` follow from `window`.
#[derive(Clone, Debug, Default)]
struct Src {
    packets: u64,
    bytes: u64,
    tcp: u64,
    udp: u64,
    icmp: u64,
    /// SYN without ACK, and without RST (a SYN-RST is of class RST): the
    /// SYN probes.
    syns: u64,
    /// Probes of the other kinds, by [`Probe`]; the `Syn` slot stays 0
    /// (`syns` holds it).
    probes: [u64; PROBES],
    rsts: u64,
    bare_acks: u64,
    /// Destination of the latest packet; every expectation must name it.
    last_dst: Option<IpAddr>,
    /// Destination port of the latest packet if it was TCP or UDP with a
    /// readable header, else 0.
    last_dst_port: u16,
    /// Destination ports of the probes in the current port-scan windows, in
    /// order; the port sketch and the three scan counters follow from them.
    window: Vec<u16>,
    /// Destination hosts of the probes in the slow window; the host sketch
    /// follows from them.
    hosts: Vec<IpAddr>,
    /// The rate-window counts by [`RateClass`], when a short window makes
    /// them differ from the class counters.
    window_counts: Option<[u64; RATE_CLASSES]>,
}

impl Src {
    /// One packet of `len` bytes of `class`, not a SYN, RST or bare ACK.
    fn one(class: Class, len: usize) -> Self {
        Self {
            packets: 1,
            bytes: len as u64,
            tcp: u64::from(class == Class::Tcp),
            udp: u64::from(class == Class::Udp),
            icmp: u64::from(class == Class::Icmp),
            ..Self::default()
        }
    }

    /// One SYN of `len` bytes to `dst`, `port`.
    fn syn(len: usize, dst: impl Into<IpAddr>, port: u16) -> Self {
        Self::syns(len, dst, &[port])
    }

    /// SYNs of `len` bytes each to `dst`, one to each of `ports` in order.
    fn syns(len: usize, dst: impl Into<IpAddr>, ports: &[u16]) -> Self {
        let n = ports.len() as u64;
        let last_port = *ports.last().expect("at least one port");
        let dst = dst.into();
        Self {
            packets: n,
            bytes: n * len as u64,
            tcp: n,
            syns: n,
            window: ports.to_vec(),
            hosts: vec![dst; ports.len()],
            ..Self::default().to(dst, last_port)
        }
    }

    /// Also a probe of `kind` to the latest destination, on `port` if the
    /// kind has one.
    fn probe(mut self, kind: Probe, port: u16) -> Self {
        assert_ne!(kind, Probe::Syn, "SYN probes are `syns`");
        self.probes[kind as usize] += 1;
        self.hosts
            .push(self.last_dst.expect("a probe's destination is the latest"));
        if kind.has_port() {
            self.window.push(port);
        }
        self
    }

    /// The probes as the program counts them.
    fn all_probes(&self) -> [u64; PROBES] {
        let mut probes = self.probes;
        probes[Probe::Syn as usize] = self.syns;
        probes
    }

    /// The latest packet went to `dst`, `port` (0 if it had no port).
    fn to(self, dst: impl Into<IpAddr>, port: u16) -> Self {
        Self {
            last_dst: Some(dst.into()),
            last_dst_port: port,
            ..self
        }
    }

    /// `window_counts` as the program must have them.
    fn window_counts(&self) -> [u64; RATE_CLASSES] {
        self.window_counts.unwrap_or_else(|| {
            let mut counts = [0; RATE_CLASSES];
            for (class, n) in [
                (RateClass::Syn, self.syns),
                (RateClass::Udp, self.udp),
                (RateClass::Icmp, self.icmp),
                (RateClass::Rst, self.rsts),
                (RateClass::BareAck, self.bare_acks),
            ] {
                counts[class as usize] = n;
            }
            counts
        })
    }
}

/// `Src::probes` with these counts.
fn probes(counts: &[(Probe, u64)]) -> [u64; PROBES] {
    let mut probes = [0; PROBES];
    for (kind, n) in counts {
        probes[*kind as usize] += n;
    }
    probes
}

/// The port sketch, distinct bits, and weighted score of probes to `ports`
/// in one window: a port weighs only if it set its bit.
fn sketch(ports: &[u16]) -> ([u64; BITMAP_WORDS], u64, u64) {
    let mut bitmap = [0u64; BITMAP_WORDS];
    let mut bits = BTreeSet::new();
    let mut score = 0;
    for port in ports {
        let bit = port_bit(*port);
        let (word, mask) = bitmap_slot(bit);
        bitmap[word] |= mask;
        if bits.insert(bit) {
            score += port_weight(*port);
        }
    }
    (bitmap, bits.len() as u64, score)
}

/// The host sketch and its distinct bits for probes to `hosts`.
fn host_sketch(hosts: &[IpAddr]) -> ([u64; BITMAP_WORDS], u64) {
    let mut bitmap = [0u64; BITMAP_WORDS];
    let mut bits = BTreeSet::new();
    for host in hosts {
        let bit = host_bit(&IpKey::from(*host));
        let (word, mask) = bitmap_slot(bit);
        bitmap[word] |= mask;
        bits.insert(bit);
    }
    (bitmap, bits.len() as u64)
}

/// HyperLogLog registers after `sources`.
fn source_registers(sources: &[IpAddr]) -> [u8; HLL_REGISTERS] {
    let mut registers = [0u8; HLL_REGISTERS];
    for source in sources {
        let (index, rank) = hll_slot(&IpKey::from(*source));
        registers[index] = registers[index].max(rank);
    }
    registers
}

/// Expected `DST_HOSTS` value, timestamps aside.
#[derive(Clone, Debug, Default)]
struct Dst {
    /// Packets and bytes by [`DstClass`]; every packet is in `All`.
    classes: [(u64, u64); DST_CLASSES],
    /// UDP packets by reflection service.
    services: [u64; SERVICES],
    /// Sources in the order their packets came; the registers follow.
    sources: Vec<IpAddr>,
    /// The classes' values at the rate window's start, when a short window
    /// makes them differ from zero.
    window: Option<[(u64, u64); DST_CLASSES]>,
}

impl Dst {
    /// One packet of `len` bytes from `src`, in `class` besides `All`.
    fn one(class: Option<DstClass>, len: usize, src: impl Into<IpAddr>) -> Self {
        Self::default().add(class, 1, len, src)
    }

    /// `n` SYNs of `len` bytes each from `src`.
    fn syns(n: u64, len: usize, src: impl Into<IpAddr>) -> Self {
        Self::default().add(Some(DstClass::Syn), n, len, src)
    }

    /// `n` more packets of `len` bytes from `src`, in `class` and `All`.
    fn add(mut self, class: Option<DstClass>, n: u64, len: usize, src: impl Into<IpAddr>) -> Self {
        let bytes = n * len as u64;
        for c in class.into_iter().chain([DstClass::All]) {
            self.classes[c as usize].0 += n;
            self.classes[c as usize].1 += bytes;
        }
        let src = src.into();
        self.sources.extend((0..n).map(|_| src));
        self
    }

    /// The packets were also fragments.
    fn fragments(mut self, n: u64, len: usize) -> Self {
        let class = &mut self.classes[DstClass::Fragment as usize];
        class.0 += n;
        class.1 += n * len as u64;
        self
    }

    /// `n` of the packets came from reflection service port `port`.
    fn service(mut self, port: u16, n: u64) -> Self {
        let i = reflection_service(port);
        assert!(
            (i as usize) < SERVICES,
            "port {port} is no reflection service"
        );
        self.services[i as usize] += n;
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

/// Transport class, as the program derives it from the IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Tcp,
    Udp,
    Icmp,
    Other,
}

/// `packets` and `bytes`: what every frame adds.
fn eth_frame(len: usize) -> Vec<(Counter, u64)> {
    vec![(Counter::Packets, 1), (Counter::Bytes, len as u64)]
}

/// What one parsed IP frame adds: `packets`, `bytes`, its family's and its
/// transport class's packets and bytes.
fn ip_frame(family: Family, class: Class, len: usize) -> Vec<(Counter, u64)> {
    ip_frames(1, family, class, len)
}

/// What `n` parsed IP frames of `len` bytes each add.
fn ip_frames(n: u64, family: Family, class: Class, len: usize) -> Vec<(Counter, u64)> {
    let bytes = n * len as u64;
    let (family_packets, family_bytes) = match family {
        Family::V4 => (Counter::Ipv4Packets, Counter::Ipv4Bytes),
        Family::V6 => (Counter::Ipv6Packets, Counter::Ipv6Bytes),
    };
    let (class_packets, class_bytes) = match class {
        Class::Tcp => (Counter::TcpPackets, Counter::TcpBytes),
        Class::Udp => (Counter::UdpPackets, Counter::UdpBytes),
        Class::Icmp => (Counter::IcmpPackets, Counter::IcmpBytes),
        Class::Other => (Counter::OtherL4Packets, Counter::OtherL4Bytes),
    };
    vec![
        (Counter::Packets, n),
        (Counter::Bytes, bytes),
        (family_packets, n),
        (family_bytes, bytes),
        (class_packets, n),
        (class_bytes, bytes),
    ]
}

/// Every counter of every map; anything not listed must be zero or absent.
#[derive(Default)]
struct Expect {
    counters: Vec<(Counter, u64)>,
    sources: BTreeMap<IpKey, Src>,
    dst_hosts: BTreeMap<IpKey, Dst>,
    syn_ports: BTreeMap<u16, u64>,
}

impl Expect {
    /// Nothing counted at all.
    fn nothing() -> Self {
        Self::default()
    }

    /// An unparsed frame of `len` bytes: `packets`, `bytes` and `error`.
    fn error(len: usize, error: Counter) -> Self {
        Self::nothing()
            .counters(&eth_frame(len))
            .counters(&[(error, 1)])
    }

    /// Adds to global counters (a counter listed twice adds up).
    fn counters(mut self, counters: &[(Counter, u64)]) -> Self {
        self.counters.extend_from_slice(counters);
        self
    }

    fn source(mut self, addr: impl Into<IpAddr>, src: Src) -> Self {
        let previous = self.sources.insert(IpKey::from(addr.into()), src);
        assert!(previous.is_none(), "source expected twice");
        self
    }

    fn dst_host(mut self, addr: impl Into<IpAddr>, dst: Dst) -> Self {
        let previous = self.dst_hosts.insert(IpKey::from(addr.into()), dst);
        assert!(previous.is_none(), "destination expected twice");
        self
    }

    fn syn_port(mut self, port: u16, syns: u64) -> Self {
        *self.syn_ports.entry(port).or_default() += syns;
        self
    }

    /// One parsed IP packet from `src` to `dst` that is not a SYN, RST or
    /// bare ACK, and has no port (see [`Expect::dst_port`]).
    fn ip_packet(
        family: Family,
        class: Class,
        len: usize,
        src: impl Into<IpAddr>,
        dst: impl Into<IpAddr>,
    ) -> Self {
        let (src, dst) = (src.into(), dst.into());
        let dst_class = match class {
            Class::Tcp => Some(DstClass::Tcp),
            Class::Udp => Some(DstClass::Udp),
            Class::Icmp => Some(DstClass::Icmp),
            Class::Other => None,
        };
        Self::nothing()
            .counters(&ip_frame(family, class, len))
            .source(src, Src::one(class, len).to(dst, 0))
            .dst_host(dst, Dst::one(dst_class, len, src))
    }

    /// The one expected source's latest packet went to destination port
    /// `port`.
    fn dst_port(self, port: u16) -> Self {
        self.with_source(|src| src.last_dst_port = port)
    }

    /// The one expected source also sent a probe of `kind` on `port`.
    fn probe(self, kind: Probe, port: u16) -> Self {
        self.with_source(|src| *src = std::mem::take(src).probe(kind, port))
    }

    /// The one expected destination, changed by `change`.
    fn with_dst(mut self, change: impl FnOnce(Dst) -> Dst) -> Self {
        assert_eq!(self.dst_hosts.len(), 1, "expected exactly one destination");
        let dst = self.dst_hosts.values_mut().next().expect("one destination");
        *dst = change(std::mem::take(dst));
        self
    }

    /// The one expected destination's packet was a data segment: in no
    /// class but `All`.
    fn data_segment(self) -> Self {
        self.no_dst_class()
    }

    /// The one expected destination's packet had no readable transport
    /// header (a later fragment, a header cut short): no transport class.
    fn no_dst_class(self) -> Self {
        self.with_dst(|mut dst| {
            for class in [DstClass::Syn, DstClass::Tcp, DstClass::Udp, DstClass::Icmp] {
                dst.classes[class as usize] = (0, 0);
            }
            dst
        })
    }

    /// The one expected destination's packet, `len` bytes, was a fragment.
    fn fragment(self, len: usize) -> Self {
        self.with_dst(|dst| dst.fragments(1, len))
    }

    /// A fragment after the first: a fragment with no transport class.
    fn later_fragment(self, len: usize) -> Self {
        self.no_dst_class().fragment(len)
    }

    /// The one expected source, changed by `change`.
    fn with_source(mut self, change: impl FnOnce(&mut Src)) -> Self {
        assert_eq!(self.sources.len(), 1, "expected exactly one source");
        change(self.sources.values_mut().next().expect("one source"));
        self
    }

    /// One TCP segment from `src` to `dst`, port `dst_port`, that the program
    /// takes for a bare ACK.
    fn bare_ack(
        family: Family,
        len: usize,
        src: impl Into<IpAddr>,
        dst: impl Into<IpAddr>,
        dst_port: u16,
    ) -> Self {
        // From a higher port to a lower one: also an ACK probe.
        Self::ip_packet(family, Class::Tcp, len, src, dst)
            .with_source(|src| {
                src.last_dst_port = dst_port;
                src.bare_acks = 1;
            })
            .probe(Probe::Ack, dst_port)
    }

    /// One TCP SYN from `src` to `dst`, port `dst_port`.
    fn syn(
        family: Family,
        len: usize,
        src: impl Into<IpAddr>,
        dst: impl Into<IpAddr>,
        dst_port: u16,
    ) -> Self {
        Self::syns(family, len, src, dst, &[dst_port])
    }

    /// TCP SYNs of `len` bytes from `src` to `dst`, one to each of `ports`
    /// in order.
    fn syns(
        family: Family,
        len: usize,
        src: impl Into<IpAddr>,
        dst: impl Into<IpAddr>,
        ports: &[u16],
    ) -> Self {
        let (src, dst) = (src.into(), dst.into());
        let n = ports.len() as u64;
        let mut expect = Self::nothing()
            .counters(&ip_frames(n, family, Class::Tcp, len))
            .counters(&[(Counter::TcpSyn, n)])
            .source(src, Src::syns(len, dst, ports))
            .dst_host(dst, Dst::syns(n, len, src));
        for port in ports {
            expect = expect.syn_port(*port, 1);
        }
        expect
    }

    /// Runs the program once on `frame` ([`run_once`]) and checks what it
    /// counted, if this test may use BPF.
    #[track_caller]
    fn check_once(&self, frame: &[u8], what: &str) {
        if let Some(counts) = run_once(frame) {
            self.check(&counts, what);
        }
    }

    /// Checks `counts` against this expectation; `what` names the case.
    #[track_caller]
    fn check(&self, counts: &Counts, what: &str) {
        assert_counters(&counts.global, &self.counters, what);
        self.check_sources(counts, what);
        self.check_dst_hosts(counts, what);
        let syn_ports: BTreeMap<u16, u64> = counts
            .syn_ports
            .iter()
            .enumerate()
            .filter(|(_, n)| **n != 0)
            .map(|(port, n)| (port as u16, *n))
            .collect();
        assert_eq!(
            counts.syn_ports.len(),
            PORT_COUNT,
            "{what}: SYN_PORTS length"
        );
        assert_eq!(syn_ports, self.syn_ports, "{what}: SYN_PORTS (port → SYNs)");
        assert_eq!(counts.events, [], "{what}: no threshold may fire");
    }

    #[track_caller]
    fn check_sources(&self, counts: &Counts, what: &str) {
        let (since, until) = (counts.since_ns, counts.until_ns);
        for (addr, want, got) in entries(&counts.sources, &self.sources, "SOURCES", what) {
            let (first, last) = (got.first_seen_ns, got.last_seen_ns);
            assert!(
                since <= first && first <= last && last <= until,
                "{what}: SOURCES[{addr}] first_seen {first}, last_seen {last} out of order \
                 or outside [{since}, {until}]"
            );
            // A new source's windows start with it (not at boot), and these
            // tests' windows are too long to restart.
            check_window_start(
                got.rate_window_start_ns,
                (first, last),
                true,
                true,
                &format!("{what}: SOURCES[{addr}] rate window"),
            );
            let scan_starts = [
                got.slow_window_start_ns,
                got.fast_window_start_ns,
                got.weighted_window_start_ns,
            ];
            for start in scan_starts {
                check_window_start(
                    start,
                    (first, last),
                    true,
                    true,
                    &format!("{what}: SOURCES[{addr}] port-scan windows {scan_starts:?}"),
                );
            }
            assert!(
                scan_starts.iter().all(|s| *s == scan_starts[0]),
                "{what}: SOURCES[{addr}] the first packet opens all three port-scan windows: \
                 {scan_starts:?}"
            );
            let (port_bitmap, bits, weighted_score) = sketch(&want.window);
            let (host_bitmap, host_bits) = host_sketch(&want.hosts);
            let last_dst = want
                .last_dst
                .unwrap_or_else(|| panic!("{what}: the expectation for {addr} has no last_dst"));
            // Each packet in one count: its probe kind, or its protocol.
            let probes = want.all_probes();
            let probe = |kind: Probe| probes[kind as usize];
            let expected = SourceStats {
                key: IpKey::from(addr),
                other_packets: want.packets - want.tcp - want.udp - want.icmp,
                bytes: want.bytes,
                tcp_rest: want.tcp - probe(Probe::Syn) - probe(Probe::Fin) - probe(Probe::Ack),
                udp_rest: want.udp - probe(Probe::Udp),
                icmp_rest: want.icmp - probe(Probe::Echo),
                probes,
                rsts: want.rsts,
                bare_acks: want.bare_acks,
                first_seen_ns: first,
                last_seen_ns: last,
                last_dst: IpKey::from(last_dst),
                last_dst_port: want.last_dst_port,
                _pad: [0; 6],
                rate_window_start_ns: got.rate_window_start_ns,
                window_counts: want.window_counts(),
                port_bitmap,
                slow_window_start_ns: got.slow_window_start_ns,
                slow_bits: bits,
                fast_ports: bits,
                fast_window_start_ns: got.fast_window_start_ns,
                weighted_window_start_ns: got.weighted_window_start_ns,
                weighted_score,
                host_bitmap,
                host_bits,
            };
            assert_eq!(got, expected, "{what}: SOURCES[{addr}]");
        }
    }

    #[track_caller]
    fn check_dst_hosts(&self, counts: &Counts, what: &str) {
        let (since, until) = (counts.since_ns, counts.until_ns);
        for (addr, want, got) in entries(&counts.dst_hosts, &self.dst_hosts, "DST_HOSTS", what) {
            let last = got.last_seen_ns;
            assert!(
                since <= last && last <= until,
                "{what}: DST_HOSTS[{addr}] last_seen {last} outside [{since}, {until}]"
            );
            // Under the tests' long windows, the first packet opens both.
            for (start, window) in [
                (got.rate_window_start_ns, "rate"),
                (got.burst_window_start_ns, "burst"),
                (got.sketch_window_start_ns, "source sketch"),
            ] {
                check_window_start(
                    start,
                    (since, last),
                    true,
                    false,
                    &format!("{what}: DST_HOSTS[{addr}] {window} window"),
                );
            }
            let base = want.window.unwrap_or_default();
            let expected = DstHostStats {
                key: IpKey::from(addr),
                packets: want.classes.map(|(packets, _)| packets),
                bytes: want.classes.map(|(_, bytes)| bytes),
                window_packets: base.map(|(packets, _)| packets),
                window_bytes: base.map(|(_, bytes)| bytes),
                last_seen_ns: last,
                rate_window_start_ns: got.rate_window_start_ns,
                sketch_window_start_ns: got.sketch_window_start_ns,
                service_packets: want.services,
                sources: source_registers(&want.sources),
                // The tests' burst windows are as long as their rate
                // windows: the same bases, in their low halves.
                burst_packets: base.map(|(packets, _)| packets as u32),
                burst_bytes: base.map(|(_, bytes)| bytes as u32),
                burst_window_start_ns: got.burst_window_start_ns,
            };
            assert_eq!(got, expected, "{what}: DST_HOSTS[{addr}]");
        }
    }
}

/// Checks a window's start: 0 while nothing it counts was seen, else within
/// `span` (first and last packet), and at the first packet if that one was
/// counted in the window (`opened_by_first`).
#[track_caller]
fn check_window_start(
    start: u64,
    span: (u64, u64),
    opened: bool,
    opened_by_first: bool,
    what: &str,
) {
    let (first, last) = span;
    if !opened {
        assert_eq!(start, 0, "{what}: never opened, must start at 0");
    } else if opened_by_first {
        assert_eq!(start, first, "{what}: opened by the first packet");
    } else {
        assert!(
            first <= start && start <= last,
            "{what}: start {start} outside [{first}, {last}]"
        );
    }
}

/// Checks that `got`, the entries of map `map`, has the addresses of `want`
/// and no others; then each expected entry, with its address and the entry
/// the map holds.
#[track_caller]
fn entries<'a, W, G: Copy>(
    got: &'a HashMap<IpKey, G>,
    want: &'a BTreeMap<IpKey, W>,
    map: &str,
    what: &str,
) -> impl Iterator<Item = (IpAddr, &'a W, G)> {
    assert_eq!(
        addresses(got.keys()),
        addresses(want.keys()),
        "{what}: {map} keys"
    );
    want.iter()
        .map(|(key, want)| (IpAddr::from(*key), want, got[key]))
}

fn addresses<'a>(keys: impl Iterator<Item = &'a IpKey>) -> BTreeSet<IpAddr> {
    keys.map(|key| IpAddr::from(*key)).collect()
}

/// Addresses of the `i`-th frame of many run through one program, so that
/// each one gets new entries.
fn sweep_v4(i: usize) -> (Ipv4Addr, Ipv4Addr) {
    let i = u8::try_from(i).expect("sweep index");
    (Ipv4Addr::new(198, 18, 1, i), Ipv4Addr::new(198, 19, 1, i))
}

fn sweep_v6(i: usize) -> (Ipv6Addr, Ipv6Addr) {
    let i = u16::try_from(i).expect("sweep index");
    (
        Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i),
        Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, i),
    )
}

// ---------------------------------------- The frame builders the tests rely on

#[test]
fn frames_bare_ipv4_syn_is_54_bytes_with_a_valid_header_checksum() {
    let frame = frames::syn_v4(SRC_V4, DST_V4, 40_000, 80);
    assert_eq!(frame.len(), 54);
    assert_eq!(&frame[12..14], &ETH_P_IPV4.to_be_bytes());
    assert_eq!(frame[ETH_HLEN], 0x45);
    assert_eq!(
        frames::internet_checksum(&frame[ETH_HLEN..ETH_HLEN + IPV4_HLEN]),
        0
    );
    let tcp = &frame[ETH_HLEN + IPV4_HLEN..];
    assert_eq!(&tcp[0..4], &[0x9c, 0x40, 0x00, 0x50]);
    assert_eq!(tcp[12], 0x50);
    assert_eq!(tcp[13], tcp_flags::SYN);
}

#[test]
fn frames_ipv6_extension_headers_chain_their_next_header_bytes() {
    let ip = Ipv6::new(SRC_V6, DST_V6, ip_proto::TCP)
        .ext(ExtHeader::hop_by_hop(0))
        .ext(ExtHeader::routing())
        .ext(ExtHeader::fragment(0, true))
        .ext(ExtHeader::destination_options(1));
    let packet = ip.packet(&[]);
    assert_eq!(ip.header_len(), IPV6_HLEN + 8 + 24 + 8 + 16);
    assert_eq!(packet.len(), ip.header_len());
    assert_eq!(&packet[4..6], &((8u16 + 24 + 8 + 16).to_be_bytes()));
    assert_eq!(packet[6], ip_proto::HOPOPTS);
    assert_eq!(packet[40], ip_proto::ROUTING);
    assert_eq!(packet[48], ip_proto::FRAGMENT);
    assert_eq!(packet[72], ip_proto::DSTOPTS);
    assert_eq!(packet[80], ip_proto::TCP);
    assert_eq!(packet[81], 1, "Hdr Ext Len of the destination options");
}

#[test]
fn frames_vlan_tags_come_outermost_first() {
    let frame = frames::ethernet_tagged(
        &[VlanTag::dot1ad(100), VlanTag::dot1q(200)],
        ETH_P_IPV6,
        &[],
    );
    assert_eq!(frame.len(), ETH_HLEN + 8);
    assert_eq!(
        &frame[12..],
        &[0x88, 0xa8, 0x00, 100, 0x81, 0x00, 0x00, 200, 0x86, 0xdd]
    );
}
