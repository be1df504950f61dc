//! Runs the real XDP program on crafted frames (`BPF_PROG_TEST_RUN`) and
//! checks every counter of every map afterwards: the global table in full
//! (a counter not expected to move must still be zero), every `SOURCES` and
//! `DST_HOSTS` entry field by field, and every per-port SYN counter.
//!
//! Each test loads its own program, so the maps start at zero. The truncation
//! sweeps reuse one program and compare successive snapshots instead; each
//! truncated frame uses its own addresses, so its map entries are new.
//!
//! Every program is given windows far longer than a test and thresholds that
//! never fire ([`quiet`]), so each window counter equals its cumulative
//! counter, and the event ring, drained with every snapshot, must stay empty.
//! Threshold events are tested in `xdp_events.rs`.
//!
//! Needs root (BPF); run with `cargo test -p nta-agent --test xdp_counters`.

mod support;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use aya::{
    TestRunOptions,
    maps::{MapData, RingBuf},
    programs::{ProgramError, TestRun as _},
    sys::SyscallError,
};
use nta_agent::{
    sensor::{LoadOptions, Sensor},
    traffic::{Snapshot, totals},
};
use nta_common::{
    Counter, DstHostStats, GlobalCounters, IpKey, SourceStats,
    maps::{
        PORT_COUNT, PORT_SKETCH_WORDS, RATE_CLASSES, RateClass, ThresholdEvent, Thresholds,
        port_sketch_bit, port_weight,
    },
};
use support::frames::{
    self, DST_V4, DST_V6, ETH_HLEN, ETH_P_IPV4, ETH_P_IPV6, ExtHeader, IPPROTO_GRE, IPPROTO_ICMP,
    IPPROTO_ICMPV6, IPPROTO_NONE, IPPROTO_TCP, IPPROTO_UDP, IPV4_HLEN, IPV6_HLEN, Ipv4, Ipv6,
    SRC_V4, SRC_V6, TCP_HLEN, Tcp, VlanTag, tcp_flags,
};

use support::xdp::{XDP_PASS, coarse_now_ns, long_window_ns, quiet};

/// Every event waiting in the ring, oldest first.
fn drain(ring: &mut RingBuf<MapData>) -> Vec<ThresholdEvent> {
    let mut events = Vec::new();
    while let Some(item) = ring.next() {
        assert_eq!(item.len(), size_of::<ThresholdEvent>(), "event size");
        // SAFETY: the program writes whole `ThresholdEvent`s (size checked);
        // the ring gives no alignment guarantee beyond 8, hence unaligned.
        events.push(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<ThresholdEvent>()) });
    }
    events
}

/// The loaded program and the counters as last looked at.
struct Xdp {
    sensor: Sensor,
    events: RingBuf<MapData>,
    loaded_ns: u64,
    baseline: Snapshot,
    /// Every source's full kernel entry at the baseline (the snapshot keeps
    /// only what the agent's rules read).
    baseline_sources: HashMap<IpKey, SourceStats>,
    baseline_ns: u64,
}

impl Xdp {
    /// Loads the program with [`quiet`] thresholds.
    fn load() -> Self {
        Self::load_with(&quiet())
    }

    fn load_with(thresholds: &Thresholds) -> Self {
        let loaded_ns = coarse_now_ns();
        let mut sensor = Sensor::load(&LoadOptions::default())
            .unwrap_or_else(|e| panic!("loading the XDP program (built with bpf-linker?): {e}"));
        sensor
            .set_thresholds(thresholds)
            .expect("writing THRESHOLDS");
        let mut events = sensor.take_events().expect("the EVENTS ring");
        assert_eq!(drain(&mut events), [], "fresh EVENTS");
        let baseline = sensor.snapshot().expect("reading the maps");
        assert_eq!(baseline.global, GlobalCounters::ZERO, "fresh GLOBAL");
        assert!(baseline.sources.is_empty(), "fresh SOURCES");
        assert!(baseline.dst_hosts.is_empty(), "fresh DST_HOSTS");
        assert!(
            baseline.syn_ports.iter().all(|n| *n == 0),
            "fresh SYN_PORTS"
        );
        Self {
            sensor,
            events,
            loaded_ns,
            baseline,
            baseline_sources: HashMap::new(),
            baseline_ns: loaded_ns,
        }
    }

    /// Runs the program once on `frame`, which it must pass, unchanged.
    #[track_caller]
    fn run(&mut self, frame: &[u8]) {
        if let Err(e) = self.try_run(frame) {
            panic!("test run of a {}-byte frame failed: {e:?}", frame.len());
        }
    }

    /// Like [`Xdp::run`], but returns the kernel's refusal to run at all.
    #[track_caller]
    fn try_run(&mut self, frame: &[u8]) -> Result<(), ProgramError> {
        let mut out = vec![0u8; frame.len() + 256];
        let program = self.sensor.xdp().expect("the loaded XDP program");
        let result = program.test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ..TestRunOptions::default()
        })?;
        assert_eq!(
            result.return_value, XDP_PASS,
            "the program must pass every frame; it did not pass {frame:02x?}"
        );
        assert_eq!(
            result.data_size_out as usize,
            frame.len(),
            "frame length out"
        );
        assert_eq!(
            &out[..frame.len()],
            frame,
            "the program must not modify the frame"
        );
        Ok(())
    }

    fn snapshot(&self) -> Snapshot {
        self.sensor.snapshot().expect("reading the maps")
    }

    /// The full kernel entry of every source in `snapshot`.
    fn full_sources(&self, snapshot: &Snapshot) -> HashMap<IpKey, SourceStats> {
        snapshot
            .sources
            .keys()
            .map(|key| {
                let stats = self
                    .sensor
                    .source(IpAddr::from(*key))
                    .expect("SOURCES")
                    .expect("a source the snapshot listed");
                (*key, stats)
            })
            .collect()
    }

    /// Everything counted since the program was loaded (and the events not
    /// yet drained).
    fn totals(&mut self) -> Counts {
        let snapshot = self.snapshot();
        Counts {
            global: snapshot.global,
            sources: self.full_sources(&snapshot),
            dst_hosts: snapshot.dst_hosts,
            syn_ports: snapshot.syn_ports,
            events: drain(&mut self.events),
            since_ns: self.loaded_ns,
            until_ns: coarse_now_ns(),
        }
    }

    /// What changed since the last call (or the load): global and per-port
    /// counters as differences, map entries that are new or changed with
    /// their whole value.
    fn delta(&mut self) -> Counts {
        let after = self.snapshot();
        let after_sources = self.full_sources(&after);
        let until_ns = coarse_now_ns();
        let before = &self.baseline;
        let mut global = GlobalCounters::ZERO;
        for c in Counter::ALL {
            global.values[c as usize] = after.global.get(c) - before.global.get(c);
        }
        let counts = Counts {
            global,
            sources: changed(&after_sources, &self.baseline_sources),
            dst_hosts: changed(&after.dst_hosts, &before.dst_hosts),
            syn_ports: after
                .syn_ports
                .iter()
                .zip(&before.syn_ports)
                .map(|(now, then)| now - then)
                .collect(),
            events: drain(&mut self.events),
            since_ns: self.baseline_ns,
            until_ns,
        };
        self.baseline = after;
        self.baseline_sources = after_sources;
        self.baseline_ns = until_ns;
        counts
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

/// Loads the program, runs it once on `frame` and returns every counter.
fn run_once(frame: &[u8]) -> Counts {
    let mut xdp = Xdp::load();
    xdp.run(frame);
    xdp.totals()
}

fn is_einval(error: &ProgramError) -> bool {
    matches!(
        error,
        ProgramError::SyscallError(SyscallError { io_error, .. })
            if io_error.raw_os_error() == Some(libc::EINVAL)
    )
}

// -------------------------------------------------------------- Expectations

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
    /// SYN without ACK, and without RST (a SYN-RST is of class RST).
    syns: u64,
    rsts: u64,
    bare_acks: u64,
    /// Destination of the latest packet; every expectation must name it.
    last_dst: Option<IpAddr>,
    /// Destination port of the latest packet if it was TCP or UDP with a
    /// readable header, else 0.
    last_dst_port: u16,
    /// Destination ports of the SYNs in the current port-scan windows, in
    /// order; the sketch and the three scan counters follow from them.
    window: Vec<u16>,
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
        Self {
            syns: 1,
            window: vec![port],
            ..Self::one(Class::Tcp, len).to(dst, port)
        }
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

/// The port sketch, distinct bits, and weighted score of SYNs to `ports`
/// in one window: a port weighs only if it set its bit.
fn sketch(ports: &[u16]) -> ([u64; PORT_SKETCH_WORDS], u64, u64) {
    let mut bitmap = [0u64; PORT_SKETCH_WORDS];
    let mut bits = BTreeSet::new();
    let mut score = 0;
    for port in ports {
        let bit = port_sketch_bit(*port);
        bitmap[(bit / 64) as usize] |= 1 << (bit % 64);
        if bits.insert(bit) {
            score += port_weight(*port);
        }
    }
    (bitmap, bits.len() as u64, score)
}

/// Expected `DST_HOSTS` value, timestamps aside.
#[derive(Clone, Copy, Debug, Default)]
struct Dst {
    packets: u64,
    bytes: u64,
    syns: u64,
    /// SYNs in the rate window when a short window makes it differ from
    /// `syns`.
    window_syns: Option<u64>,
}

impl Dst {
    fn one(len: usize) -> Self {
        Self {
            packets: 1,
            bytes: len as u64,
            ..Self::default()
        }
    }

    fn syn(len: usize) -> Self {
        Self {
            syns: 1,
            ..Self::one(len)
        }
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
    let len = len as u64;
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
        (Counter::Packets, 1),
        (Counter::Bytes, len),
        (family_packets, 1),
        (family_bytes, len),
        (class_packets, 1),
        (class_bytes, len),
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
        let dst = dst.into();
        Self::nothing()
            .counters(&ip_frame(family, class, len))
            .source(src, Src::one(class, len).to(dst, 0))
            .dst_host(dst, Dst::one(len))
    }

    /// The one expected source's latest packet went to destination port
    /// `port`.
    fn dst_port(mut self, port: u16) -> Self {
        assert_eq!(self.sources.len(), 1, "dst_port needs exactly one source");
        for src in self.sources.values_mut() {
            src.last_dst_port = port;
        }
        self
    }

    /// One TCP SYN from `src` to `dst`, port `dst_port`.
    fn syn(
        family: Family,
        len: usize,
        src: impl Into<IpAddr>,
        dst: impl Into<IpAddr>,
        dst_port: u16,
    ) -> Self {
        let dst = dst.into();
        Self::nothing()
            .counters(&ip_frame(family, Class::Tcp, len))
            .counters(&[(Counter::TcpSyn, 1)])
            .source(src, Src::syn(len, dst, dst_port))
            .dst_host(dst, Dst::syn(len))
            .syn_port(dst_port, 1)
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
        assert_eq!(
            addresses(counts.sources.keys()),
            addresses(self.sources.keys()),
            "{what}: SOURCES keys"
        );
        for (key, want) in &self.sources {
            let got = counts.sources[key];
            let addr = IpAddr::from(*key);
            let (since, until) = (counts.since_ns, counts.until_ns);
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
            let last_dst = want
                .last_dst
                .unwrap_or_else(|| panic!("{what}: the expectation for {addr} has no last_dst"));
            let expected = SourceStats {
                packets: want.packets,
                bytes: want.bytes,
                tcp_packets: want.tcp,
                udp_packets: want.udp,
                icmp_packets: want.icmp,
                syns: want.syns,
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
            };
            assert_eq!(got, expected, "{what}: SOURCES[{addr}]");
        }
    }

    #[track_caller]
    fn check_dst_hosts(&self, counts: &Counts, what: &str) {
        assert_eq!(
            addresses(counts.dst_hosts.keys()),
            addresses(self.dst_hosts.keys()),
            "{what}: DST_HOSTS keys"
        );
        for (key, want) in &self.dst_hosts {
            let got = counts.dst_hosts[key];
            let addr = IpAddr::from(*key);
            let (since, until) = (counts.since_ns, counts.until_ns);
            let last = got.last_seen_ns;
            assert!(
                since <= last && last <= until,
                "{what}: DST_HOSTS[{addr}] last_seen {last} outside [{since}, {until}]"
            );
            // The rate window counts SYNs only: the first one opens it.
            check_window_start(
                got.rate_window_start_ns,
                (since, last),
                want.syns > 0,
                false,
                &format!("{what}: DST_HOSTS[{addr}] rate window"),
            );
            let expected = DstHostStats {
                packets: want.packets,
                bytes: want.bytes,
                syns: want.syns,
                last_seen_ns: last,
                rate_window_start_ns: got.rate_window_start_ns,
                window_syns: want.window_syns.unwrap_or(want.syns),
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

fn addresses<'a>(keys: impl Iterator<Item = &'a IpKey>) -> BTreeSet<IpAddr> {
    keys.map(|key| IpAddr::from(*key)).collect()
}

/// Checks the whole global table: counters listed in `expected` (summed when
/// listed twice) must have exactly those values, every other one must be 0.
#[track_caller]
fn assert_counters(global: &GlobalCounters, expected: &[(Counter, u64)], what: &str) {
    let mut want = GlobalCounters::ZERO;
    for (counter, n) in expected {
        want.values[*counter as usize] += n;
    }
    let wrong: Vec<String> = Counter::ALL
        .iter()
        .filter(|c| global.get(**c) != want.get(**c))
        .map(|c| {
            format!(
                "{}: expected {}, got {}",
                c.name(),
                want.get(*c),
                global.get(*c)
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{what}: global counters differ:\n  {}\nall counters: {}",
        wrong.join("\n  "),
        totals(global)
    );
}

// ------------------------------------------------------- Truncation sweeps

/// Addresses of the `i`-th frame of a sweep, so each one gets new entries.
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

/// Runs the program on every prefix `frame[..len]`, `len` from 0 to the whole
/// frame, and checks what each one counted.
///
/// `build(len)` makes the whole frame with the addresses of [`sweep_v4`] or
/// [`sweep_v6`]`(len)`; `expect(len)` says what its first `len` bytes count.
///
/// Prefixes shorter than an Ethernet header never reach the program: on the
/// kernels we run (checked on 6.18), `BPF_PROG_TEST_RUN` rejects XDP input
/// below `ETH_HLEN` with EINVAL, also when XDP metadata is put before it
/// through `xdp_md.data` (the packet itself must still be 14 bytes). So
/// `err_eth_truncated` cannot be reached from here; the sweep asserts the
/// refusal and that nothing was counted.
#[track_caller]
fn truncation_sweep(
    what: &str,
    build: impl Fn(usize) -> Vec<u8>,
    expect: impl Fn(usize) -> Expect,
) {
    let mut xdp = Xdp::load();
    let full_len = build(0).len();
    for len in 0..=full_len {
        let whole = build(len);
        assert_eq!(whole.len(), full_len);
        let prefix = &whole[..len];
        let case = format!("{what}, first {len} of {full_len} bytes");
        if len < ETH_HLEN {
            let error = xdp
                .try_run(prefix)
                .expect_err("the kernel runs XDP on frames shorter than ETH_HLEN");
            assert!(is_einval(&error), "{case}: expected EINVAL, got {error:?}");
            Expect::nothing().check(&xdp.delta(), &case);
        } else {
            xdp.run(prefix);
            expect(len).check(&xdp.delta(), &case);
        }
    }
}

// ============================================================== The tests

// --- frame builder sanity (no BPF needed) ---

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
    let ip = Ipv6::new(SRC_V6, DST_V6, IPPROTO_TCP)
        .ext(ExtHeader::hop_by_hop(0))
        .ext(ExtHeader::routing())
        .ext(ExtHeader::fragment(0, true))
        .ext(ExtHeader::destination_options(1));
    let packet = ip.packet(&[]);
    assert_eq!(ip.header_len(), IPV6_HLEN + 8 + 24 + 8 + 16);
    assert_eq!(packet.len(), ip.header_len());
    assert_eq!(&packet[4..6], &((8u16 + 24 + 8 + 16).to_be_bytes()));
    assert_eq!(packet[6], frames::IPPROTO_HOPOPTS);
    assert_eq!(packet[40], frames::IPPROTO_ROUTING);
    assert_eq!(packet[48], frames::IPPROTO_FRAGMENT);
    assert_eq!(packet[72], frames::IPPROTO_DSTOPTS);
    assert_eq!(packet[80], IPPROTO_TCP);
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

// --- 1, 2: a SYN in every map ---

#[test]
fn ipv4_tcp_syn_is_counted_in_every_map() {
    if !support::privileged() {
        return;
    }
    let frame = frames::syn_v4(SRC_V4, DST_V4, 40_000, 443);
    assert_eq!(frame.len(), 54);
    let counts = run_once(&frame);

    // Spelled out here once; the other tests build the same from helpers.
    assert_counters(
        &counts.global,
        &[
            (Counter::Packets, 1),
            (Counter::Bytes, 54),
            (Counter::Ipv4Packets, 1),
            (Counter::Ipv4Bytes, 54),
            (Counter::TcpPackets, 1),
            (Counter::TcpBytes, 54),
            (Counter::TcpSyn, 1),
        ],
        "IPv4 SYN",
    );

    let src = IpKey::from(IpAddr::V4(SRC_V4));
    assert_eq!(counts.sources.keys().collect::<Vec<_>>(), [&src]);
    let s = counts.sources[&src];
    assert!(s.first_seen_ns > 0);
    assert!(s.last_seen_ns >= s.first_seen_ns);
    let bit = port_sketch_bit(443);
    let mut port_bitmap = [0u64; PORT_SKETCH_WORDS];
    port_bitmap[(bit / 64) as usize] = 1 << (bit % 64);
    let mut window_counts = [0; RATE_CLASSES];
    window_counts[RateClass::Syn as usize] = 1;
    assert_eq!(
        s,
        SourceStats {
            packets: 1,
            bytes: 54,
            tcp_packets: 1,
            udp_packets: 0,
            icmp_packets: 0,
            syns: 1,
            rsts: 0,
            bare_acks: 0,
            first_seen_ns: s.first_seen_ns,
            last_seen_ns: s.last_seen_ns,
            last_dst: IpKey::from(IpAddr::V4(DST_V4)),
            last_dst_port: 443,
            _pad: [0; 6],
            // The source's first packet opens every window.
            rate_window_start_ns: s.first_seen_ns,
            window_counts,
            port_bitmap,
            slow_window_start_ns: s.first_seen_ns,
            slow_bits: 1,
            fast_ports: 1,
            fast_window_start_ns: s.first_seen_ns,
            weighted_window_start_ns: s.first_seen_ns,
            // A port below 1024 weighs 3.
            weighted_score: 3,
        }
    );
    assert_eq!(s.port_bitmap.iter().map(|w| w.count_ones()).sum::<u32>(), 1);

    let dst = IpKey::from(IpAddr::V4(DST_V4));
    assert_eq!(counts.dst_hosts.keys().collect::<Vec<_>>(), [&dst]);
    let d = counts.dst_hosts[&dst];
    assert!(d.last_seen_ns > 0);
    assert_eq!(
        d,
        DstHostStats {
            packets: 1,
            bytes: 54,
            syns: 1,
            last_seen_ns: d.last_seen_ns,
            // The SYN opens the destination's window too.
            rate_window_start_ns: d.last_seen_ns,
            window_syns: 1,
        }
    );

    assert_eq!(counts.syn_ports[443], 1);
    assert_eq!(counts.syn_ports.iter().sum::<u64>(), 1);

    // And the same through the helpers the other tests use.
    Expect::syn(Family::V4, 54, SRC_V4, DST_V4, 443).check(&counts, "IPv4 SYN");
}

#[test]
fn ipv6_tcp_syn_is_counted_in_every_map() {
    if !support::privileged() {
        return;
    }
    let frame = frames::syn_v6(SRC_V6, DST_V6, 40_000, 22);
    assert_eq!(frame.len(), 74);
    let counts = run_once(&frame);

    assert_counters(
        &counts.global,
        &[
            (Counter::Packets, 1),
            (Counter::Bytes, 74),
            (Counter::Ipv6Packets, 1),
            (Counter::Ipv6Bytes, 74),
            (Counter::TcpPackets, 1),
            (Counter::TcpBytes, 74),
            (Counter::TcpSyn, 1),
        ],
        "IPv6 SYN",
    );
    let src = IpKey::from(IpAddr::V6(SRC_V6));
    let s = counts.sources[&src];
    assert_eq!((s.packets, s.bytes, s.tcp_packets, s.syns), (1, 74, 1, 1));
    assert_eq!((s.slow_bits, s.fast_ports, s.weighted_score), (1, 1, 3));
    assert_eq!(s.window_counts[RateClass::Syn as usize], 1);
    assert_eq!(
        (IpAddr::from(s.last_dst), s.last_dst_port),
        (IpAddr::V6(DST_V6), 22)
    );
    let bit = port_sketch_bit(22);
    assert_eq!(s.port_bitmap[(bit / 64) as usize], 1 << (bit % 64));
    assert!(s.first_seen_ns > 0 && s.last_seen_ns >= s.first_seen_ns);
    assert_eq!(counts.dst_hosts[&IpKey::from(IpAddr::V6(DST_V6))].syns, 1);
    assert_eq!(counts.syn_ports[22], 1);
    assert_eq!(counts.syn_ports.iter().sum::<u64>(), 1);

    Expect::syn(Family::V6, 74, SRC_V6, DST_V6, 22).check(&counts, "IPv6 SYN");
}

// --- 3: TCP flags ---

#[test]
fn syn_ack_is_counted_as_syn_ack_and_not_as_a_syn() {
    if !support::privileged() {
        return;
    }
    let syn_ack = Tcp::new(443, 40_000, tcp_flags::SYN | tcp_flags::ACK);
    let counts = run_once(&frames::tcp_v4(DST_V4, SRC_V4, &syn_ack));
    Expect::ip_packet(Family::V4, Class::Tcp, 54, DST_V4, SRC_V4)
        .dst_port(40_000)
        .counters(&[(Counter::TcpSynAck, 1)])
        .check(&counts, "SYN-ACK");
}

#[test]
fn rst_is_counted_globally_and_for_its_source() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    xdp.run(&frames::tcp_v4(
        DST_V4,
        SRC_V4,
        &Tcp::new(443, 40_000, tcp_flags::RST),
    ));
    xdp.run(&frames::tcp_v6(
        DST_V6,
        SRC_V6,
        &Tcp::new(22, 40_001, tcp_flags::RST | tcp_flags::ACK),
    ));
    Expect::nothing()
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&ip_frame(Family::V6, Class::Tcp, 74))
        .counters(&[(Counter::TcpRst, 2)])
        .source(
            DST_V4,
            Src {
                rsts: 1,
                ..Src::one(Class::Tcp, 54).to(SRC_V4, 40_000)
            },
        )
        .source(
            DST_V6,
            Src {
                rsts: 1,
                ..Src::one(Class::Tcp, 74).to(SRC_V6, 40_001)
            },
        )
        .dst_host(SRC_V4, Dst::one(54))
        .dst_host(SRC_V6, Dst::one(74))
        .check(&xdp.totals(), "RST and RST-ACK");
}

#[test]
fn fin_is_counted() {
    if !support::privileged() {
        return;
    }
    let fin_ack = Tcp::new(40_000, 443, tcp_flags::FIN | tcp_flags::ACK);
    let counts = run_once(&frames::tcp_v4(SRC_V4, DST_V4, &fin_ack));
    Expect::ip_packet(Family::V4, Class::Tcp, 54, SRC_V4, DST_V4)
        .dst_port(443)
        .counters(&[(Counter::TcpFin, 1)])
        .check(&counts, "FIN-ACK");
}

#[test]
fn plain_ack_with_data_counts_only_as_tcp() {
    if !support::privileged() {
        return;
    }
    let segment = Tcp::new(40_000, 443, tcp_flags::PSH | tcp_flags::ACK).payload(&[0x17; 100]);
    let counts = run_once(&frames::tcp_v4(SRC_V4, DST_V4, &segment));
    // Not a bare ACK: it carries data.
    Expect::ip_packet(Family::V4, Class::Tcp, 154, SRC_V4, DST_V4)
        .dst_port(443)
        .check(&counts, "PSH-ACK");
}

#[test]
fn every_flag_of_a_christmas_tree_segment_is_counted() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    // SYN+FIN without ACK is still a SYN (and a FIN).
    xdp.run(&frames::tcp_v4(
        SRC_V4,
        DST_V4,
        &Tcp::new(1, 8080, tcp_flags::SYN | tcp_flags::FIN),
    ));
    // With ACK, SYN is a SYN-ACK; RST and FIN count on their own.
    let all = tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST | tcp_flags::FIN | tcp_flags::PSH;
    xdp.run(&frames::tcp_v4(SRC_V4, DST_V4, &Tcp::new(1, 8081, all)));
    Expect::nothing()
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&[
            (Counter::TcpSyn, 1),
            (Counter::TcpFin, 2),
            (Counter::TcpSynAck, 1),
            (Counter::TcpRst, 1),
        ])
        .source(
            SRC_V4,
            Src {
                packets: 2,
                bytes: 108,
                tcp: 2,
                syns: 1,
                rsts: 1,
                window: vec![8080],
                ..Src::default().to(DST_V4, 8081)
            },
        )
        .dst_host(
            DST_V4,
            Dst {
                packets: 2,
                bytes: 108,
                syns: 1,
                ..Dst::default()
            },
        )
        .syn_port(8080, 1)
        .check(&xdp.totals(), "SYN-FIN then SYN-ACK-RST-FIN-PSH");
}

/// One TCP segment from `src` to `dst`, port `dst_port`, that the program
/// takes for a bare ACK.
fn bare_ack(
    family: Family,
    len: usize,
    src: impl Into<IpAddr>,
    dst: impl Into<IpAddr>,
    dst_port: u16,
) -> Expect {
    let dst = dst.into();
    Expect::nothing()
        .counters(&ip_frame(family, Class::Tcp, len))
        .source(
            src,
            Src {
                bare_acks: 1,
                ..Src::one(Class::Tcp, len).to(dst, dst_port)
            },
        )
        .dst_host(dst, Dst::one(len))
}

#[test]
fn bare_ack_without_payload_counts_as_a_bare_ack() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();

    let (src, dst) = sweep_v4(1);
    xdp.run(&frames::tcp_v4(src, dst, &Tcp::ack(40_000, 443)));
    let counts = xdp.delta();
    let s = counts.sources[&IpKey::from(IpAddr::V4(src))];
    assert_eq!((s.bare_acks, s.window_counts), (1, [0, 0, 0, 0, 1]));
    assert_eq!(RateClass::BareAck as usize, 4);
    bare_ack(Family::V4, 54, src, dst, 443).check(&counts, "ACK");

    // Ethernet padding follows the IP packet: the IP length says no payload.
    let (src, dst) = sweep_v4(2);
    let padded = frames::pad_to_minimum(frames::tcp_v4(src, dst, &Tcp::ack(40_000, 443)));
    assert_eq!(padded.len(), frames::ETH_ZLEN);
    xdp.run(&padded);
    bare_ack(Family::V4, 60, src, dst, 443).check(&xdp.delta(), "ACK padded to 60 bytes");

    // Options are header, not payload: what Linux sends (timestamps).
    let (src, dst) = sweep_v4(3);
    let ack = Tcp::ack(40_000, 443).timestamps();
    assert_eq!(ack.header_len(), 32);
    xdp.run(&frames::tcp_v4(src, dst, &ack));
    bare_ack(Family::V4, 66, src, dst, 443).check(&xdp.delta(), "ACK with timestamps");

    // PSH (and URG, ECE, CWR) do not matter: only SYN, RST, FIN and ACK do.
    let (src, dst) = sweep_v4(4);
    let flags = tcp_flags::ACK | tcp_flags::PSH | 0x20 | 0x40 | 0x80;
    xdp.run(&frames::tcp_v4(src, dst, &Tcp::new(40_000, 443, flags)));
    bare_ack(Family::V4, 54, src, dst, 443).check(&xdp.delta(), "ACK-PSH-URG-ECE-CWR");

    // IPv6: the payload length covers the extension headers too.
    let (src, dst) = sweep_v6(5);
    let frame = Ipv6::new(src, dst, IPPROTO_TCP)
        .ext(ExtHeader::hop_by_hop(1))
        .frame(&Tcp::ack(40_000, 22).timestamps().bytes());
    assert_eq!(frame.len(), 14 + 40 + 16 + 32);
    xdp.run(&frame);
    bare_ack(Family::V6, 102, src, dst, 22).check(&xdp.delta(), "IPv6 ACK behind hop-by-hop");
}

#[test]
fn ack_with_payload_or_other_flags_is_not_a_bare_ack() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();

    // One byte of data is data.
    let (src, dst) = sweep_v4(1);
    xdp.run(&frames::tcp_v4(
        src,
        dst,
        &Tcp::ack(40_000, 443).payload(&[0]),
    ));
    Expect::ip_packet(Family::V4, Class::Tcp, 55, src, dst)
        .dst_port(443)
        .check(&xdp.delta(), "ACK with 1 byte");

    let (src, dst) = sweep_v4(2);
    let segment = Tcp::new(40_000, 443, tcp_flags::PSH | tcp_flags::ACK).payload(&[0x17; 100]);
    xdp.run(&frames::tcp_v4(src, dst, &segment));
    Expect::ip_packet(Family::V4, Class::Tcp, 154, src, dst)
        .dst_port(443)
        .check(&xdp.delta(), "PSH-ACK with 100 bytes");

    // The payload is what the IP header says, even when the frame holds
    // less of it (a frame cut short by a capture length).
    let (src, dst) = sweep_v4(3);
    let frame = frames::tcp_v4(src, dst, &Tcp::ack(40_000, 443).payload(&[0; 10]));
    xdp.run(&frame[..54]);
    Expect::ip_packet(Family::V4, Class::Tcp, 54, src, dst)
        .dst_port(443)
        .check(&xdp.delta(), "ACK whose 10 bytes of data are cut off");

    // ACK with FIN closes; with RST it is a RST; with SYN a SYN-ACK.
    let (src, dst) = sweep_v4(4);
    xdp.run(&frames::tcp_v4(
        src,
        dst,
        &Tcp::new(40_000, 443, tcp_flags::ACK | tcp_flags::FIN),
    ));
    Expect::ip_packet(Family::V4, Class::Tcp, 54, src, dst)
        .dst_port(443)
        .counters(&[(Counter::TcpFin, 1)])
        .check(&xdp.delta(), "FIN-ACK");
    let (src, dst) = sweep_v4(5);
    xdp.run(&frames::tcp_v4(
        src,
        dst,
        &Tcp::new(40_000, 443, tcp_flags::ACK | tcp_flags::RST),
    ));
    Expect::nothing()
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&[(Counter::TcpRst, 1)])
        .source(
            src,
            Src {
                rsts: 1,
                ..Src::one(Class::Tcp, 54).to(dst, 443)
            },
        )
        .dst_host(dst, Dst::one(54))
        .check(&xdp.delta(), "RST-ACK");
    let (src, dst) = sweep_v4(6);
    xdp.run(&frames::tcp_v4(
        src,
        dst,
        &Tcp::new(40_000, 443, tcp_flags::ACK | tcp_flags::SYN),
    ));
    Expect::ip_packet(Family::V4, Class::Tcp, 54, src, dst)
        .dst_port(443)
        .counters(&[(Counter::TcpSynAck, 1)])
        .check(&xdp.delta(), "SYN-ACK");

    // No flags at all (a null scan) is not an ACK.
    let (src, dst) = sweep_v4(7);
    xdp.run(&frames::tcp_v4(src, dst, &Tcp::new(40_000, 443, 0)));
    Expect::ip_packet(Family::V4, Class::Tcp, 54, src, dst)
        .dst_port(443)
        .check(&xdp.delta(), "no flags");

    let (src, dst) = sweep_v6(8);
    xdp.run(&frames::tcp_v6(
        src,
        dst,
        &Tcp::ack(40_000, 22).payload(&[0]),
    ));
    Expect::ip_packet(Family::V6, Class::Tcp, 75, src, dst)
        .dst_port(22)
        .check(&xdp.delta(), "IPv6 ACK with 1 byte");
}

#[test]
fn packets_in_no_class_leave_the_rate_window_alone() {
    if !support::privileged() {
        return;
    }
    // Only SYN, UDP, ICMP, RST and bare ACK are rate classes: anything else
    // from a source must neither open its rate window nor count in it.
    let mut xdp = Xdp::load();
    let data = Tcp::new(40_000, 443, tcp_flags::PSH | tcp_flags::ACK).payload(&[1; 10]);
    let frames: [(&str, Vec<u8>); 6] = [
        (
            "SYN-ACK",
            frames::tcp_v4(
                SRC_V4,
                DST_V4,
                &Tcp::new(443, 40_000, tcp_flags::SYN | tcp_flags::ACK),
            ),
        ),
        (
            "FIN-ACK",
            frames::tcp_v4(
                SRC_V4,
                DST_V4,
                &Tcp::new(443, 40_000, tcp_flags::FIN | tcp_flags::ACK),
            ),
        ),
        ("ACK with data", frames::tcp_v4(SRC_V4, DST_V4, &data)),
        (
            "GRE",
            Ipv4::new(SRC_V4, DST_V4, IPPROTO_GRE).frame(&[0, 0, 8, 0]),
        ),
        (
            "TCP later fragment",
            Ipv4::new(SRC_V4, DST_V4, IPPROTO_TCP)
                .fragment(false, 8)
                .frame(&Tcp::syn(40_000, 80).bytes()),
        ),
        (
            "TCP header cut short",
            frames::syn_v4(SRC_V4, DST_V4, 40_000, 80)[..40].to_vec(),
        ),
    ];
    for (what, frame) in &frames {
        xdp.run(frame);
        let s = xdp
            .sensor
            .source(IpAddr::V4(SRC_V4))
            .expect("SOURCES")
            .expect("the source");
        assert_eq!(
            (s.window_counts, s.rate_window_start_ns),
            ([0; RATE_CLASSES], s.first_seen_ns),
            "after {what}: window_counts [syn, udp, icmp, rst, ack] and window start"
        );
    }
    assert_eq!(xdp.totals().events, []);
}

#[test]
fn syn_rst_counts_as_a_rst_for_its_source_and_as_a_syn_elsewhere() {
    if !support::privileged() {
        return;
    }
    // SYN and RST without ACK: a SYN everywhere (the source's `syns`, the
    // global `tcp_syn`, the destination's SYNs, the per-port SYNs and the
    // port sketch), but its rate class is RST (RST wins).
    let frame = frames::tcp_v4(
        SRC_V4,
        DST_V4,
        &Tcp::new(40_000, 80, tcp_flags::SYN | tcp_flags::RST),
    );
    Expect::nothing()
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&[(Counter::TcpSyn, 1), (Counter::TcpRst, 1)])
        .source(
            SRC_V4,
            Src {
                syns: 1,
                rsts: 1,
                // Counted once in the rate windows, as the RST it also is.
                window_counts: Some([0, 0, 0, 1, 0]),
                window: vec![80],
                ..Src::one(Class::Tcp, 54).to(DST_V4, 80)
            },
        )
        .dst_host(DST_V4, Dst::syn(54))
        .syn_port(80, 1)
        .check(&run_once(&frame), "SYN-RST");
}

#[test]
fn last_dst_and_last_dst_port_follow_the_latest_packet() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    let d = |i: u8| Ipv4Addr::new(198, 19, 3, i);
    let src = IpAddr::V4(SRC_V4);
    let steps: Vec<(&str, Vec<u8>, Ipv4Addr, u16)> = vec![
        (
            "UDP",
            frames::udp_v4(SRC_V4, d(1), 33_333, 123, &[0; 8]),
            d(1),
            123,
        ),
        ("SYN", frames::syn_v4(SRC_V4, d(2), 40_000, 443), d(2), 443),
        ("ICMP: no port", frames::ping_v4(SRC_V4, d(3)), d(3), 0),
        (
            "bare ACK",
            frames::tcp_v4(SRC_V4, d(1), &Tcp::ack(40_000, 22)),
            d(1),
            22,
        ),
        (
            "GRE: no port",
            Ipv4::new(SRC_V4, d(4), IPPROTO_GRE).frame(&[0, 0, 0x08, 0x00]),
            d(4),
            0,
        ),
        (
            "later fragment: no header, no port",
            Ipv4::new(SRC_V4, d(2), IPPROTO_TCP)
                .fragment(false, 10)
                .frame(&Tcp::syn(1, 80).bytes()),
            d(2),
            0,
        ),
        (
            "UDP header cut short: no port",
            frames::udp_v4(SRC_V4, d(3), 1_000, 2_000, &[])[..38].to_vec(),
            d(3),
            0,
        ),
        (
            "SYN-ACK",
            frames::tcp_v4(
                SRC_V4,
                d(1),
                &Tcp::new(8443, 8443, tcp_flags::SYN | tcp_flags::ACK),
            ),
            d(1),
            8443,
        ),
    ];
    for (what, frame, dst, port) in &steps {
        xdp.run(frame);
        let s = xdp
            .sensor
            .source(src)
            .expect("SOURCES")
            .expect("the source");
        assert_eq!(
            (IpAddr::from(s.last_dst), s.last_dst_port),
            (IpAddr::V4(*dst), *port),
            "after {what}"
        );
    }
    let lens: Vec<usize> = steps.iter().map(|(_, frame, ..)| frame.len()).collect();
    assert_eq!(lens, [50, 54, 50, 54, 38, 54, 38, 54]);
    Expect::nothing()
        .counters(&ip_frame(Family::V4, Class::Udp, 50))
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&ip_frame(Family::V4, Class::Icmp, 50))
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&ip_frame(Family::V4, Class::Other, 38))
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&ip_frame(Family::V4, Class::Udp, 38))
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&[
            (Counter::TcpSyn, 1),
            (Counter::TcpSynAck, 1),
            (Counter::Fragments, 1),
            (Counter::NonFirstFragments, 1),
            (Counter::ErrUdpTruncated, 1),
        ])
        .source(
            SRC_V4,
            Src {
                packets: 8,
                bytes: 392,
                tcp: 4,
                udp: 2,
                icmp: 1,
                syns: 1,
                bare_acks: 1,
                window: vec![443],
                ..Src::default().to(d(1), 8443)
            },
        )
        .dst_host(
            d(1),
            Dst {
                packets: 3,
                bytes: 158,
                ..Dst::default()
            },
        )
        .dst_host(
            d(2),
            Dst {
                packets: 2,
                bytes: 108,
                syns: 1,
                ..Dst::default()
            },
        )
        .dst_host(
            d(3),
            Dst {
                packets: 2,
                bytes: 88,
                ..Dst::default()
            },
        )
        .dst_host(d(4), Dst::one(38))
        .syn_port(443, 1)
        .check(&xdp.totals(), "eight packets to four destinations");

    // IPv6 the same way.
    xdp.run(&frames::udp_v6(SRC_V6, DST_V6, 33_333, 123, &[]));
    let s = xdp.sensor.source(IpAddr::V6(SRC_V6)).unwrap().unwrap();
    assert_eq!(
        (IpAddr::from(s.last_dst), s.last_dst_port),
        (IpAddr::V6(DST_V6), 123)
    );
    let other = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 9);
    xdp.run(&frames::ping_v6(SRC_V6, other));
    let s = xdp.sensor.source(IpAddr::V6(SRC_V6)).unwrap().unwrap();
    assert_eq!(
        (IpAddr::from(s.last_dst), s.last_dst_port),
        (IpAddr::V6(other), 0)
    );
}

// --- 4: UDP and DNS ---

#[test]
fn udp_dns_query_and_response_count_as_dns() {
    if !support::privileged() {
        return;
    }
    let query = frames::dns_query();
    let len = ETH_HLEN + IPV4_HLEN + 8 + query.len();
    let mut xdp = Xdp::load();
    xdp.run(&frames::udp_v4(SRC_V4, DST_V4, 33_333, 53, &query));
    xdp.run(&frames::udp_v4(DST_V4, SRC_V4, 53, 33_333, &query));
    Expect::nothing()
        .counters(&ip_frame(Family::V4, Class::Udp, len))
        .counters(&ip_frame(Family::V4, Class::Udp, len))
        .counters(&[(Counter::Dns, 2)])
        .source(SRC_V4, Src::one(Class::Udp, len).to(DST_V4, 53))
        .source(DST_V4, Src::one(Class::Udp, len).to(SRC_V4, 33_333))
        .dst_host(DST_V4, Dst::one(len))
        .dst_host(SRC_V4, Dst::one(len))
        .check(&xdp.totals(), "DNS query and response");
}

#[test]
fn udp_dns_over_ipv6_counts_as_dns() {
    if !support::privileged() {
        return;
    }
    let query = frames::dns_query();
    let len = ETH_HLEN + IPV6_HLEN + 8 + query.len();
    let counts = run_once(&frames::udp_v6(SRC_V6, DST_V6, 33_333, 53, &query));
    Expect::ip_packet(Family::V6, Class::Udp, len, SRC_V6, DST_V6)
        .dst_port(53)
        .counters(&[(Counter::Dns, 1)])
        .check(&counts, "DNS query over IPv6");
}

#[test]
fn udp_on_other_ports_is_not_dns() {
    if !support::privileged() {
        return;
    }
    let counts = run_once(&frames::udp_v4(SRC_V4, DST_V4, 5353, 123, &[0; 48]));
    Expect::ip_packet(Family::V4, Class::Udp, 14 + 20 + 8 + 48, SRC_V4, DST_V4)
        .dst_port(123)
        .check(&counts, "NTP");
}

#[test]
fn tcp_to_port_53_counts_as_dns() {
    if !support::privileged() {
        return;
    }
    let counts = run_once(&frames::syn_v4(SRC_V4, DST_V4, 40_000, 53));
    Expect::syn(Family::V4, 54, SRC_V4, DST_V4, 53)
        .counters(&[(Counter::Dns, 1)])
        .check(&counts, "SYN to TCP 53");
}

// --- 5: ICMP and other transports ---

#[test]
fn icmp_echo_counts_as_icmp() {
    if !support::privileged() {
        return;
    }
    let echo = frames::icmpv4_echo_request(7, 1, &[0xab; 56]);
    let frame = Ipv4::new(SRC_V4, DST_V4, IPPROTO_ICMP).frame(&echo);
    assert_eq!(frame.len(), 98);
    Expect::ip_packet(Family::V4, Class::Icmp, 98, SRC_V4, DST_V4).check(&run_once(&frame), "ping");
}

#[test]
fn icmpv6_echo_counts_as_icmp() {
    if !support::privileged() {
        return;
    }
    let echo = frames::icmpv6_echo_request(7, 1, &[0xab; 56]);
    let frame = Ipv6::new(SRC_V6, DST_V6, IPPROTO_ICMPV6).frame(&echo);
    assert_eq!(frame.len(), 118);
    Expect::ip_packet(Family::V6, Class::Icmp, 118, SRC_V6, DST_V6)
        .check(&run_once(&frame), "ping6");
}

#[test]
fn icmp_numbers_of_the_other_family_are_other_transports() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    let echo = frames::icmpv4_echo_request(7, 1, &[]);
    // Protocol 58 in IPv4 and next header 1 in IPv6 are not ICMP.
    xdp.run(&Ipv4::new(SRC_V4, DST_V4, IPPROTO_ICMPV6).frame(&echo));
    xdp.run(&Ipv6::new(SRC_V6, DST_V6, IPPROTO_ICMP).frame(&echo));
    Expect::nothing()
        .counters(&ip_frame(Family::V4, Class::Other, 42))
        .counters(&ip_frame(Family::V6, Class::Other, 62))
        .source(SRC_V4, Src::one(Class::Other, 42).to(DST_V4, 0))
        .source(SRC_V6, Src::one(Class::Other, 62).to(DST_V6, 0))
        .dst_host(DST_V4, Dst::one(42))
        .dst_host(DST_V6, Dst::one(62))
        .check(&xdp.totals(), "ICMP numbers swapped");
}

#[test]
fn gre_and_no_next_header_are_other_transports() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    xdp.run(&Ipv4::new(SRC_V4, DST_V4, IPPROTO_GRE).frame(&[0, 0, 0x08, 0x00]));
    xdp.run(&Ipv6::new(SRC_V6, DST_V6, IPPROTO_NONE).frame(&[]));
    Expect::nothing()
        .counters(&ip_frame(Family::V4, Class::Other, 38))
        .counters(&ip_frame(Family::V6, Class::Other, 54))
        .source(SRC_V4, Src::one(Class::Other, 38).to(DST_V4, 0))
        .source(SRC_V6, Src::one(Class::Other, 54).to(DST_V6, 0))
        .dst_host(DST_V4, Dst::one(38))
        .dst_host(DST_V6, Dst::one(54))
        .check(&xdp.totals(), "GRE, IPv6 no next header");
}

// --- 6: VLAN tags ---

#[test]
fn dot1q_tagged_syn_is_counted_as_vlan_and_parsed() {
    if !support::privileged() {
        return;
    }
    let ip = Ipv4::new(SRC_V4, DST_V4, IPPROTO_TCP).packet(&Tcp::syn(40_000, 80).bytes());
    let frame = frames::ethernet_tagged(&[VlanTag::dot1q(42)], ETH_P_IPV4, &ip);
    assert_eq!(frame.len(), 58);
    Expect::syn(Family::V4, 58, SRC_V4, DST_V4, 80)
        .counters(&[(Counter::VlanTagged, 1)])
        .check(&run_once(&frame), "802.1Q SYN");
}

#[test]
fn qinq_tagged_syns_are_counted_as_vlan_and_parsed() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    let v4 = Ipv4::new(SRC_V4, DST_V4, IPPROTO_TCP).packet(&Tcp::syn(40_000, 80).bytes());
    let v6 = Ipv6::new(SRC_V6, DST_V6, IPPROTO_TCP).packet(&Tcp::syn(40_000, 8443).bytes());
    // 802.1ad outside 802.1Q, and two 802.1Q tags: both are two tags deep.
    let qinq = [VlanTag::dot1ad(100), VlanTag::dot1q(42)];
    let double_q = [VlanTag::dot1q(100), VlanTag::dot1q(42)];
    xdp.run(&frames::ethernet_tagged(&qinq, ETH_P_IPV4, &v4));
    xdp.run(&frames::ethernet_tagged(&double_q, ETH_P_IPV6, &v6));
    Expect::nothing()
        .counters(&ip_frame(Family::V4, Class::Tcp, 62))
        .counters(&ip_frame(Family::V6, Class::Tcp, 82))
        .counters(&[(Counter::TcpSyn, 2), (Counter::VlanTagged, 2)])
        .source(SRC_V4, Src::syn(62, DST_V4, 80))
        .source(SRC_V6, Src::syn(82, DST_V6, 8443))
        .dst_host(DST_V4, Dst::syn(62))
        .dst_host(DST_V6, Dst::syn(82))
        .syn_port(80, 1)
        .syn_port(8443, 1)
        .check(&xdp.totals(), "QinQ SYNs");
}

#[test]
fn three_vlan_tags_are_too_deep_and_not_parsed() {
    if !support::privileged() {
        return;
    }
    let ip = Ipv4::new(SRC_V4, DST_V4, IPPROTO_TCP).packet(&Tcp::syn(40_000, 80).bytes());
    let tags = [VlanTag::dot1ad(1), VlanTag::dot1q(2), VlanTag::dot1q(3)];
    let frame = frames::ethernet_tagged(&tags, ETH_P_IPV4, &ip);
    assert_eq!(frame.len(), 66);
    // An unparsed frame counts only its error: not even `vlan_tagged`.
    Expect::nothing()
        .counters(&frame_counters(66, Counter::ErrVlanTooDeep))
        .check(&run_once(&frame), "three VLAN tags");
}

/// `packets`, `bytes` and one error: what an unparsed frame adds.
fn frame_counters(len: usize, error: Counter) -> Vec<(Counter, u64)> {
    let mut counters = eth_frame(len);
    counters.push((error, 1));
    counters
}

#[test]
fn vlan_tagged_arp_is_vlan_and_non_ip() {
    if !support::privileged() {
        return;
    }
    let arp = frames::arp_request_body(SRC_V4, DST_V4);
    let frame = frames::ethernet_tagged(&[VlanTag::dot1q(7)], frames::ETH_P_ARP, &arp);
    assert_eq!(frame.len(), 46);
    Expect::nothing()
        .counters(&eth_frame(46))
        .counters(&[
            (Counter::VlanTagged, 1),
            (Counter::NonIpPackets, 1),
            (Counter::NonIpBytes, 46),
        ])
        .check(&run_once(&frame), "tagged ARP");
}

// --- 7: IPv4 header ---

#[test]
fn ipv4_options_of_every_length_are_skipped() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    for ihl in 6..=15u8 {
        let (src, dst) = sweep_v4(usize::from(ihl));
        let port = 9000 + u16::from(ihl);
        let ip = Ipv4::new(src, dst, IPPROTO_TCP).option_words(usize::from(ihl) - 5);
        // Options not skipped would be read as ports: NOPs, port 257.
        let frame = ip.frame(&Tcp::syn(40_000, port).bytes());
        let len = ETH_HLEN + usize::from(ihl) * 4 + TCP_HLEN;
        assert_eq!(frame.len(), len);
        assert_eq!(frame[ETH_HLEN] & 0x0f, ihl);
        xdp.run(&frame);
        Expect::syn(Family::V4, len, src, dst, port).check(&xdp.delta(), &format!("IHL {ihl}"));
    }
}

#[test]
fn ipv4_ihl_below_5_is_malformed() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    for ihl in 0..=4u8 {
        let frame = Ipv4::new(SRC_V4, DST_V4, IPPROTO_TCP)
            .ihl(ihl)
            .frame(&Tcp::syn(40_000, 80).bytes());
        xdp.run(&frame);
        Expect::nothing()
            .counters(&frame_counters(54, Counter::ErrIpv4Malformed))
            .check(&xdp.delta(), &format!("IHL {ihl}"));
    }
}

#[test]
fn ipv4_ethertype_with_another_version_is_malformed() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    for version in [0u8, 5, 6, 15] {
        let frame = Ipv4::new(SRC_V4, DST_V4, IPPROTO_TCP)
            .version(version)
            .frame(&Tcp::syn(40_000, 80).bytes());
        xdp.run(&frame);
        Expect::nothing()
            .counters(&frame_counters(54, Counter::ErrIpv4Malformed))
            .check(&xdp.delta(), &format!("version {version}"));
    }
    // A whole IPv6 packet behind the IPv4 ethertype is no better.
    let v6 = frames::syn_v6(SRC_V6, DST_V6, 40_000, 80);
    let mislabelled = frames::ethernet(ETH_P_IPV4, &v6[ETH_HLEN..]);
    xdp.run(&mislabelled);
    Expect::nothing()
        .counters(&frame_counters(74, Counter::ErrIpv4Malformed))
        .check(&xdp.delta(), "IPv6 packet as ethertype IPv4");
}

// --- TCP header ---

#[test]
fn tcp_options_are_skipped_and_the_syn_counted() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    // What Linux sends: data offset 10.
    let (src, dst) = sweep_v4(1);
    let syn = Tcp::syn(40_000, 443).syn_options();
    assert_eq!(syn.header_len(), 40);
    xdp.run(&frames::tcp_v4(src, dst, &syn));
    Expect::syn(Family::V4, 74, src, dst, 443).check(&xdp.delta(), "data offset 10");
    // The largest header: data offset 15, 40 bytes of options.
    let (src, dst) = sweep_v4(2);
    let syn = Tcp::syn(40_000, 444).data_offset(15).payload(&[1; 40]);
    xdp.run(&frames::tcp_v4(src, dst, &syn));
    Expect::syn(Family::V4, 94, src, dst, 444).check(&xdp.delta(), "data offset 15");
}

#[test]
fn tcp_data_offset_below_5_or_past_the_frame_is_truncated() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    for (i, offset) in [0u8, 1, 4, 6, 15].into_iter().enumerate() {
        // 20 bytes of TCP header, whatever the data offset says.
        let (src, dst) = sweep_v4(i);
        let syn = Tcp::syn(40_000, 80).data_offset(offset);
        xdp.run(&frames::tcp_v4(src, dst, &syn));
        Expect::ip_packet(Family::V4, Class::Tcp, 54, src, dst)
            .counters(&[(Counter::ErrTcpTruncated, 1)])
            .check(&xdp.delta(), &format!("data offset {offset}"));
    }
}

// --- 8: IPv6 extension headers ---

#[test]
fn ipv6_extension_headers_are_walked_to_the_tcp_header() {
    if !support::privileged() {
        return;
    }
    let ip = Ipv6::new(SRC_V6, DST_V6, IPPROTO_TCP)
        .ext(ExtHeader::hop_by_hop(0))
        .ext(ExtHeader::destination_options(2))
        .ext(ExtHeader::routing());
    let frame = ip.frame(&Tcp::syn(40_000, 993).bytes());
    let len = ETH_HLEN + IPV6_HLEN + 8 + 24 + 24 + TCP_HLEN;
    assert_eq!(frame.len(), len);
    Expect::syn(Family::V6, len, SRC_V6, DST_V6, 993).check(&run_once(&frame), "hop, dst, rt");
}

#[test]
fn ipv6_chain_of_five_extension_headers_is_walked() {
    if !support::privileged() {
        return;
    }
    // The longest chain RFC 8200 allows: every header once, destination
    // options twice; the fragment header is a first fragment.
    let ip = Ipv6::new(SRC_V6, DST_V6, IPPROTO_TCP)
        .ext(ExtHeader::hop_by_hop(0))
        .ext(ExtHeader::destination_options(0))
        .ext(ExtHeader::routing())
        .ext(ExtHeader::fragment(0, true))
        .ext(ExtHeader::destination_options(1));
    let frame = ip.frame(&Tcp::syn(40_000, 25).bytes());
    let len = ETH_HLEN + IPV6_HLEN + 8 + 8 + 24 + 8 + 16 + TCP_HLEN;
    assert_eq!(frame.len(), len);
    Expect::syn(Family::V6, len, SRC_V6, DST_V6, 25)
        .counters(&[(Counter::Fragments, 1)])
        .check(&run_once(&frame), "five extension headers");
}

#[test]
fn ipv6_chain_of_six_extension_headers_is_an_error() {
    if !support::privileged() {
        return;
    }
    let ip = Ipv6::new(SRC_V6, DST_V6, IPPROTO_TCP)
        .ext(ExtHeader::hop_by_hop(0))
        .ext(ExtHeader::destination_options(0))
        .ext(ExtHeader::routing())
        .ext(ExtHeader::fragment(0, true))
        .ext(ExtHeader::destination_options(0))
        .ext(ExtHeader::destination_options(0));
    let frame = ip.frame(&Tcp::syn(40_000, 25).bytes());
    let len = ETH_HLEN + IPV6_HLEN + 8 + 8 + 24 + 8 + 8 + 8 + TCP_HLEN;
    assert_eq!(frame.len(), len);
    Expect::nothing()
        .counters(&frame_counters(len, Counter::ErrIpv6ExtHeaders))
        .check(&run_once(&frame), "six extension headers");
}

#[test]
fn ipv6_extension_header_cut_before_its_length_is_an_error() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    // The first header has only its next-header byte.
    let ip = Ipv6::new(SRC_V6, DST_V6, IPPROTO_TCP).ext(ExtHeader::hop_by_hop(0));
    let frame = ip.frame(&Tcp::syn(40_000, 25).bytes());
    xdp.run(&frame[..ETH_HLEN + IPV6_HLEN + 1]);
    Expect::nothing()
        .counters(&frame_counters(55, Counter::ErrIpv6ExtHeaders))
        .check(&xdp.delta(), "hop-by-hop cut after 1 byte");
    // The second header is missing altogether.
    let ip = Ipv6::new(SRC_V6, DST_V6, IPPROTO_TCP)
        .ext(ExtHeader::hop_by_hop(0))
        .ext(ExtHeader::routing());
    let frame = ip.frame(&Tcp::syn(40_000, 25).bytes());
    xdp.run(&frame[..ETH_HLEN + IPV6_HLEN + 8]);
    Expect::nothing()
        .counters(&frame_counters(62, Counter::ErrIpv6ExtHeaders))
        .check(&xdp.delta(), "routing header missing");
    // A fragment header needs all of its 8 bytes.
    let ip = Ipv6::new(SRC_V6, DST_V6, IPPROTO_TCP).ext(ExtHeader::fragment(0, true));
    let frame = ip.frame(&Tcp::syn(40_000, 25).bytes());
    xdp.run(&frame[..ETH_HLEN + IPV6_HLEN + 7]);
    Expect::nothing()
        .counters(&frame_counters(61, Counter::ErrIpv6ExtHeaders))
        .check(&xdp.delta(), "fragment header cut after 7 bytes");
}

#[test]
fn ipv6_extension_header_longer_than_the_frame_is_an_error() {
    if !support::privileged() {
        return;
    }
    // A 16-byte hop-by-hop header of which the frame holds 8: the header is
    // cut short, which `err_ipv6_ext_headers` is for; it is not a TCP
    // packet with a cut header.
    let ip = Ipv6::new(SRC_V6, DST_V6, IPPROTO_TCP).ext(ExtHeader::hop_by_hop(1));
    let frame = ip.frame(&Tcp::syn(40_000, 25).bytes());
    let len = ETH_HLEN + IPV6_HLEN + 8;
    Expect::nothing()
        .counters(&frame_counters(len, Counter::ErrIpv6ExtHeaders))
        .check(
            &run_once(&frame[..len]),
            "hop-by-hop header cut after 8 of 16 bytes",
        );
}

#[test]
fn ipv6_ethertype_with_another_version_is_an_ipv6_error() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    for version in [0u8, 4, 7, 15] {
        let frame = Ipv6::new(SRC_V6, DST_V6, IPPROTO_TCP)
            .version(version)
            .frame(&Tcp::syn(40_000, 80).bytes());
        xdp.run(&frame);
        // `err_ipv6_truncated` covers a wrong version too.
        Expect::nothing()
            .counters(&frame_counters(74, Counter::ErrIpv6Truncated))
            .check(&xdp.delta(), &format!("version {version}"));
    }
}

// --- 9: fragments ---

#[test]
fn ipv4_first_fragment_is_a_fragment_and_its_syn_counts() {
    if !support::privileged() {
        return;
    }
    let syn = Tcp::syn(40_000, 80).payload(&[0; 64]);
    let frame = Ipv4::new(SRC_V4, DST_V4, IPPROTO_TCP)
        .fragment(true, 0)
        .frame(&syn.bytes());
    Expect::syn(Family::V4, 118, SRC_V4, DST_V4, 80)
        .counters(&[(Counter::Fragments, 1)])
        .check(&run_once(&frame), "first fragment");
}

#[test]
fn ipv4_later_fragments_are_counted_but_not_parsed() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    // The payload looks like a SYN to port 80, and a DNS datagram: a later
    // fragment holds no transport header, so neither may be counted.
    let fake_syn = Tcp::syn(53, 80).bytes();
    for (i, (more, offset)) in [(true, 1u16), (true, 185), (false, 370), (false, 0x1fff)]
        .into_iter()
        .enumerate()
    {
        let (src, dst) = sweep_v4(i);
        let frame = Ipv4::new(src, dst, IPPROTO_TCP)
            .fragment(more, offset)
            .frame(&fake_syn);
        xdp.run(&frame);
        Expect::ip_packet(Family::V4, Class::Tcp, 54, src, dst)
            .counters(&[(Counter::Fragments, 1), (Counter::NonFirstFragments, 1)])
            .check(&xdp.delta(), &format!("MF {more}, offset {offset}"));
    }
    let (src, dst) = sweep_v4(10);
    let frame = Ipv4::new(src, dst, IPPROTO_UDP)
        .fragment(false, 3)
        .frame(&frames::udp(53, 53, &[0; 8]));
    xdp.run(&frame);
    Expect::ip_packet(Family::V4, Class::Udp, 50, src, dst)
        .counters(&[(Counter::Fragments, 1), (Counter::NonFirstFragments, 1)])
        .check(&xdp.delta(), "UDP later fragment");
}

#[test]
fn ipv4_dont_fragment_flag_is_not_a_fragment() {
    if !support::privileged() {
        return;
    }
    let mut ip = Ipv4::new(SRC_V4, DST_V4, IPPROTO_TCP);
    ip.dont_fragment = true;
    let frame = ip.frame(&Tcp::syn(40_000, 80).bytes());
    Expect::syn(Family::V4, 54, SRC_V4, DST_V4, 80).check(&run_once(&frame), "DF set");
}

#[test]
fn ipv6_first_and_atomic_fragments_are_fragments_and_their_syns_count() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    for (i, more) in [true, false].into_iter().enumerate() {
        let (src, dst) = sweep_v6(i);
        let frame = Ipv6::new(src, dst, IPPROTO_TCP)
            .ext(ExtHeader::fragment(0, more))
            .frame(&Tcp::syn(40_000, 80).bytes());
        xdp.run(&frame);
        Expect::syn(Family::V6, 82, src, dst, 80)
            .counters(&[(Counter::Fragments, 1)])
            .check(&xdp.delta(), &format!("offset 0, M {more}"));
    }
}

#[test]
fn ipv6_later_fragments_are_counted_but_not_parsed() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    let fake_syn = Tcp::syn(53, 80).bytes();
    for (i, (more, offset)) in [(true, 1u16), (false, 181), (false, 0x1fff)]
        .into_iter()
        .enumerate()
    {
        let (src, dst) = sweep_v6(i);
        // Behind a hop-by-hop header, to show the walk reaches it.
        let frame = Ipv6::new(src, dst, IPPROTO_TCP)
            .ext(ExtHeader::hop_by_hop(0))
            .ext(ExtHeader::fragment(offset, more))
            .frame(&fake_syn);
        xdp.run(&frame);
        Expect::ip_packet(Family::V6, Class::Tcp, 90, src, dst)
            .counters(&[(Counter::Fragments, 1), (Counter::NonFirstFragments, 1)])
            .check(&xdp.delta(), &format!("M {more}, offset {offset}"));
    }
}

// --- 10: every truncation ---

#[test]
fn every_truncation_of_an_ipv4_syn_counts_exactly_one_outcome() {
    if !support::privileged() {
        return;
    }
    truncation_sweep(
        "IPv4 SYN",
        |i| {
            let (src, dst) = sweep_v4(i);
            frames::syn_v4(src, dst, 40_000, 80)
        },
        |len| {
            let (src, dst) = sweep_v4(len);
            match len {
                14..=33 => {
                    Expect::nothing().counters(&frame_counters(len, Counter::ErrIpv4Truncated))
                }
                34..=53 => Expect::ip_packet(Family::V4, Class::Tcp, len, src, dst)
                    .counters(&[(Counter::ErrTcpTruncated, 1)]),
                54 => Expect::syn(Family::V4, 54, src, dst, 80),
                _ => unreachable!("length {len}"),
            }
        },
    );
}

#[test]
fn every_truncation_of_an_ipv6_syn_counts_exactly_one_outcome() {
    if !support::privileged() {
        return;
    }
    truncation_sweep(
        "IPv6 SYN",
        |i| {
            let (src, dst) = sweep_v6(i);
            frames::syn_v6(src, dst, 40_000, 80)
        },
        |len| {
            let (src, dst) = sweep_v6(len);
            match len {
                14..=53 => {
                    Expect::nothing().counters(&frame_counters(len, Counter::ErrIpv6Truncated))
                }
                54..=73 => Expect::ip_packet(Family::V6, Class::Tcp, len, src, dst)
                    .counters(&[(Counter::ErrTcpTruncated, 1)]),
                74 => Expect::syn(Family::V6, 74, src, dst, 80),
                _ => unreachable!("length {len}"),
            }
        },
    );
}

#[test]
fn every_truncation_of_an_ipv4_syn_with_options_counts_exactly_one_outcome() {
    if !support::privileged() {
        return;
    }
    // IHL 15: the options run to byte 74; cut inside them is a cut header.
    truncation_sweep(
        "IPv4 (IHL 15) SYN",
        |i| {
            let (src, dst) = sweep_v4(i);
            Ipv4::new(src, dst, IPPROTO_TCP)
                .option_words(10)
                .frame(&Tcp::syn(40_000, 80).bytes())
        },
        |len| {
            let (src, dst) = sweep_v4(len);
            match len {
                14..=73 => {
                    Expect::nothing().counters(&frame_counters(len, Counter::ErrIpv4Truncated))
                }
                74..=93 => Expect::ip_packet(Family::V4, Class::Tcp, len, src, dst)
                    .counters(&[(Counter::ErrTcpTruncated, 1)]),
                94 => Expect::syn(Family::V4, 94, src, dst, 80),
                _ => unreachable!("length {len}"),
            }
        },
    );
}

#[test]
fn every_truncation_of_a_qinq_syn_counts_exactly_one_outcome() {
    if !support::privileged() {
        return;
    }
    truncation_sweep(
        "QinQ IPv4 SYN",
        |i| {
            let (src, dst) = sweep_v4(i);
            let ip = Ipv4::new(src, dst, IPPROTO_TCP).packet(&Tcp::syn(40_000, 80).bytes());
            frames::ethernet_tagged(&[VlanTag::dot1ad(100), VlanTag::dot1q(42)], ETH_P_IPV4, &ip)
        },
        |len| {
            let (src, dst) = sweep_v4(len);
            let vlan = [(Counter::VlanTagged, 1)];
            match len {
                // Outer tag (bytes 14..18), then inner tag (18..22) cut short.
                14..=21 => {
                    Expect::nothing().counters(&frame_counters(len, Counter::ErrVlanTruncated))
                }
                22..=41 => Expect::nothing()
                    .counters(&frame_counters(len, Counter::ErrIpv4Truncated))
                    .counters(&vlan),
                42..=61 => Expect::ip_packet(Family::V4, Class::Tcp, len, src, dst)
                    .counters(&[(Counter::ErrTcpTruncated, 1)])
                    .counters(&vlan),
                62 => Expect::syn(Family::V4, 62, src, dst, 80).counters(&vlan),
                _ => unreachable!("length {len}"),
            }
        },
    );
}

#[test]
fn every_truncation_of_a_udp_dns_query_counts_exactly_one_outcome() {
    if !support::privileged() {
        return;
    }
    let query = frames::dns_query();
    let full = ETH_HLEN + IPV4_HLEN + 8 + query.len();
    truncation_sweep(
        "IPv4 DNS query",
        |i| {
            let (src, dst) = sweep_v4(i);
            frames::udp_v4(src, dst, 33_333, 53, &query)
        },
        |len| {
            let (src, dst) = sweep_v4(len);
            match len {
                14..=33 => {
                    Expect::nothing().counters(&frame_counters(len, Counter::ErrIpv4Truncated))
                }
                34..=41 => Expect::ip_packet(Family::V4, Class::Udp, len, src, dst)
                    .counters(&[(Counter::ErrUdpTruncated, 1)]),
                // Ports are all the program reads: a cut payload is still DNS.
                _ if (42..=full).contains(&len) => {
                    Expect::ip_packet(Family::V4, Class::Udp, len, src, dst)
                        .dst_port(53)
                        .counters(&[(Counter::Dns, 1)])
                }
                _ => unreachable!("length {len}"),
            }
        },
    );
}

#[test]
fn every_truncation_of_an_icmp_echo_counts_exactly_one_outcome() {
    if !support::privileged() {
        return;
    }
    truncation_sweep(
        "ICMP echo",
        |i| {
            let (src, dst) = sweep_v4(i);
            Ipv4::new(src, dst, IPPROTO_ICMP).frame(&frames::icmpv4_echo_request(1, 2, &[7; 8]))
        },
        |len| {
            let (src, dst) = sweep_v4(len);
            match len {
                14..=33 => {
                    Expect::nothing().counters(&frame_counters(len, Counter::ErrIpv4Truncated))
                }
                34..=37 => Expect::ip_packet(Family::V4, Class::Icmp, len, src, dst)
                    .counters(&[(Counter::ErrIcmpTruncated, 1)]),
                38..=50 => Expect::ip_packet(Family::V4, Class::Icmp, len, src, dst),
                _ => unreachable!("length {len}"),
            }
        },
    );
}

#[test]
fn every_truncation_of_an_icmpv6_echo_counts_exactly_one_outcome() {
    if !support::privileged() {
        return;
    }
    truncation_sweep(
        "ICMPv6 echo",
        |i| {
            let (src, dst) = sweep_v6(i);
            Ipv6::new(src, dst, IPPROTO_ICMPV6).frame(&frames::icmpv6_echo_request(1, 2, &[7; 8]))
        },
        |len| {
            let (src, dst) = sweep_v6(len);
            match len {
                14..=53 => {
                    Expect::nothing().counters(&frame_counters(len, Counter::ErrIpv6Truncated))
                }
                54..=57 => Expect::ip_packet(Family::V6, Class::Icmp, len, src, dst)
                    .counters(&[(Counter::ErrIcmpTruncated, 1)]),
                58..=70 => Expect::ip_packet(Family::V6, Class::Icmp, len, src, dst),
                _ => unreachable!("length {len}"),
            }
        },
    );
}

#[test]
fn every_truncation_of_an_ipv6_syn_behind_a_hop_by_hop_header_counts_exactly_one_outcome() {
    if !support::privileged() {
        return;
    }
    // 16-byte hop-by-hop header at bytes 54..70, TCP at 70..90.
    truncation_sweep(
        "IPv6 hop-by-hop SYN",
        |i| {
            let (src, dst) = sweep_v6(i);
            Ipv6::new(src, dst, IPPROTO_TCP)
                .ext(ExtHeader::hop_by_hop(1))
                .frame(&Tcp::syn(40_000, 80).bytes())
        },
        |len| {
            let (src, dst) = sweep_v6(len);
            match len {
                14..=53 => {
                    Expect::nothing().counters(&frame_counters(len, Counter::ErrIpv6Truncated))
                }
                // The extension header cut short, whether before or after
                // its length byte.
                54..=69 => {
                    Expect::nothing().counters(&frame_counters(len, Counter::ErrIpv6ExtHeaders))
                }
                70..=89 => Expect::ip_packet(Family::V6, Class::Tcp, len, src, dst)
                    .counters(&[(Counter::ErrTcpTruncated, 1)]),
                90 => Expect::syn(Family::V6, 90, src, dst, 80),
                _ => unreachable!("length {len}"),
            }
        },
    );
}

// --- 11: not IP ---

#[test]
fn arp_and_other_non_ip_frames_count_as_non_ip() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    let arp = frames::arp_request(SRC_V4, DST_V4);
    assert_eq!(arp.len(), 42);
    xdp.run(&arp);
    Expect::nothing()
        .counters(&eth_frame(42))
        .counters(&[(Counter::NonIpPackets, 1), (Counter::NonIpBytes, 42)])
        .check(&xdp.delta(), "ARP");
    // LLDP, and an 802.3 frame whose type field is a length.
    for (ether_type, what) in [(0x88cc, "LLDP"), (0x0026, "802.3 length")] {
        xdp.run(&frames::ethernet(ether_type, &[0; 46]));
        Expect::nothing()
            .counters(&eth_frame(60))
            .counters(&[(Counter::NonIpPackets, 1), (Counter::NonIpBytes, 60)])
            .check(&xdp.delta(), what);
    }
    // A bare Ethernet header is the shortest frame the kernel runs.
    xdp.run(&frames::ethernet(frames::ETH_P_ARP, &[]));
    Expect::nothing()
        .counters(&eth_frame(14))
        .counters(&[(Counter::NonIpPackets, 1), (Counter::NonIpBytes, 14)])
        .check(&xdp.delta(), "bare Ethernet header");
}

// --- 12: many sources, the port sketch, the per-port counters ---

#[test]
fn syns_from_many_sources_get_one_entry_each() {
    if !support::privileged() {
        return;
    }
    const N: u16 = 200;
    let mut xdp = Xdp::load();
    let mut expect = Expect::nothing();
    for i in 0..N {
        let src = Ipv4Addr::new(198, 18, 2 + (i / 256) as u8, (i % 256) as u8);
        let port = 1000 + i;
        xdp.run(&frames::syn_v4(src, DST_V4, 40_000, port));
        expect = expect
            .counters(&ip_frame(Family::V4, Class::Tcp, 54))
            .counters(&[(Counter::TcpSyn, 1)])
            .source(src, Src::syn(54, DST_V4, port))
            .syn_port(port, 1);
    }
    let n = u64::from(N);
    let counts = xdp.totals();
    assert_eq!(counts.sources.len(), usize::from(N));
    expect
        .dst_host(
            DST_V4,
            Dst {
                packets: n,
                bytes: 54 * n,
                syns: n,
                ..Dst::default()
            },
        )
        .check(&counts, "SYNs from many sources");
}

#[test]
fn port_scan_window_counts_distinct_sketch_bits() {
    if !support::privileged() {
        return;
    }
    // quiet(): windows far longer than the test, so all SYNs fall in one.
    let mut xdp = Xdp::load();
    let ports: Vec<u16> = (0..100).map(|i| 20_000 + i * 7).collect();
    let mut expect = Expect::nothing();
    for port in &ports {
        xdp.run(&frames::syn_v4(SRC_V4, DST_V4, 40_000, *port));
        expect = expect
            .counters(&ip_frame(Family::V4, Class::Tcp, 54))
            .counters(&[(Counter::TcpSyn, 1)])
            .syn_port(*port, 1);
    }
    let counts = xdp.totals();
    let s = counts.sources[&IpKey::from(IpAddr::V4(SRC_V4))];
    let bits: BTreeSet<u32> = ports.iter().map(|p| port_sketch_bit(*p)).collect();
    let bits = bits.len() as u64;
    // Fibonacci hashing spreads an arithmetic run of ports: no two of these
    // share a bit.
    assert_eq!(bits, 100);
    // Every port is above 1023: each new bit weighs 1 in all three windows.
    assert_eq!(
        (s.slow_bits, s.fast_ports, s.weighted_score),
        (bits, bits, bits),
        "slow_bits, fast_ports, weighted_score = distinct sketch bits"
    );
    assert_eq!(
        s.port_bitmap.iter().map(|w| w.count_ones()).sum::<u32>() as u64,
        bits
    );
    assert_eq!(
        (s.window_counts[RateClass::Syn as usize], s.syns),
        (100, 100)
    );
    for start in [
        s.rate_window_start_ns,
        s.slow_window_start_ns,
        s.fast_window_start_ns,
        s.weighted_window_start_ns,
    ] {
        assert_eq!(start, s.first_seen_ns, "one window of each kind");
    }
    expect
        .source(
            SRC_V4,
            Src {
                packets: 100,
                bytes: 5400,
                tcp: 100,
                syns: 100,
                window: ports.clone(),
                ..Src::default().to(DST_V4, 20_693)
            },
        )
        .dst_host(
            DST_V4,
            Dst {
                packets: 100,
                bytes: 5400,
                syns: 100,
                ..Dst::default()
            },
        )
        .check(&counts, "100 ports");
}

#[test]
fn ports_sharing_a_sketch_bit_count_once_and_repeats_count_per_port() {
    if !support::privileged() {
        return;
    }
    // A privileged port and an unprivileged one that hash to the same bit.
    let first = 443u16;
    let twin = (1024..=u16::MAX)
        .find(|p| port_sketch_bit(*p) == port_sketch_bit(first))
        .expect("512 bits for 65 536 ports: every bit is shared");
    let other_src = Ipv4Addr::new(198, 18, 0, 9);
    let mut xdp = Xdp::load();
    for port in [first, twin, first] {
        xdp.run(&frames::syn_v4(SRC_V4, DST_V4, 40_000, port));
    }
    // The same ports the other way round: the port that sets the bit is the
    // one that weighs, so here the score is 1, not 3.
    for port in [twin, first] {
        xdp.run(&frames::syn_v4(other_src, DST_V4, 40_000, port));
    }
    let counts = xdp.totals();
    let s = counts.sources[&IpKey::from(IpAddr::V4(SRC_V4))];
    assert_eq!(
        (s.slow_bits, s.fast_ports, s.weighted_score, s.syns),
        (1, 1, 3, 3)
    );
    let o = counts.sources[&IpKey::from(IpAddr::V4(other_src))];
    assert_eq!(
        (o.slow_bits, o.fast_ports, o.weighted_score, o.syns),
        (1, 1, 1, 2)
    );
    Expect::nothing()
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&[(Counter::TcpSyn, 5)])
        .source(
            SRC_V4,
            Src {
                packets: 3,
                bytes: 162,
                tcp: 3,
                syns: 3,
                window: vec![first, twin, first],
                ..Src::default().to(DST_V4, first)
            },
        )
        .source(
            other_src,
            Src {
                packets: 2,
                bytes: 108,
                tcp: 2,
                syns: 2,
                window: vec![twin, first],
                ..Src::default().to(DST_V4, first)
            },
        )
        .dst_host(
            DST_V4,
            Dst {
                packets: 5,
                bytes: 270,
                syns: 5,
                ..Dst::default()
            },
        )
        .syn_port(first, 3)
        .syn_port(twin, 2)
        .check(&counts, "ports sharing a sketch bit");
}

#[test]
fn port_scan_window_restarts_when_it_has_elapsed() {
    if !support::privileged() {
        return;
    }
    // A zero-length window has always elapsed: each SYN starts a new one of
    // every kind, so only the last SYN is in any window.
    let mut xdp = Xdp::load_with(&Thresholds {
        rate_window_ns: 0,
        fast_window_ns: 0,
        weighted_window_ns: 0,
        slow_window_ns: 0,
        ..Thresholds::DISABLED
    });
    for port in [1u16, 2, 3] {
        xdp.run(&frames::syn_v4(SRC_V4, DST_V4, 40_000, port));
    }
    let counts = xdp.totals();
    let s = counts.sources[&IpKey::from(IpAddr::V4(SRC_V4))];
    for start in [
        s.rate_window_start_ns,
        s.slow_window_start_ns,
        s.fast_window_start_ns,
        s.weighted_window_start_ns,
    ] {
        assert_eq!(start, s.last_seen_ns, "the last SYN opened every window");
    }
    let d = counts.dst_hosts[&IpKey::from(IpAddr::V4(DST_V4))];
    assert_eq!(
        d.rate_window_start_ns, d.last_seen_ns,
        "the last SYN opened the destination's window"
    );
    let mut window_counts = [0; RATE_CLASSES];
    window_counts[RateClass::Syn as usize] = 1;
    Expect::nothing()
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&[(Counter::TcpSyn, 3)])
        .source(
            SRC_V4,
            Src {
                packets: 3,
                bytes: 162,
                tcp: 3,
                syns: 3,
                window: vec![3],
                window_counts: Some(window_counts),
                ..Src::default().to(DST_V4, 3)
            },
        )
        .dst_host(
            DST_V4,
            Dst {
                packets: 3,
                bytes: 162,
                syns: 3,
                window_syns: Some(1),
            },
        )
        .syn_port(1, 1)
        .syn_port(2, 1)
        .syn_port(3, 1)
        .check(&counts, "windows of 0 ns");
}

#[test]
fn fast_and_weighted_windows_count_only_ports_new_to_the_slow_window() {
    if !support::privileged() {
        return;
    }
    // The fast and weighted windows restart at every SYN; the slow window,
    // and so the bitmap, lasts. A port is new only when it sets its bit, so
    // a port seen in an earlier fast window is not new in a later one.
    let long = long_window_ns();
    let mut xdp = Xdp::load_with(&Thresholds {
        rate_window_ns: long,
        slow_window_ns: long,
        fast_window_ns: 0,
        weighted_window_ns: 0,
        ..Thresholds::DISABLED
    });
    let src = IpAddr::V4(SRC_V4);
    let (a, b) = (22u16, 8080u16);
    assert_ne!(port_sketch_bit(a), port_sketch_bit(b));
    let mut stats = |port: u16| {
        xdp.run(&frames::syn_v4(SRC_V4, DST_V4, 40_000, port));
        let s = xdp
            .sensor
            .source(src)
            .expect("SOURCES")
            .expect("the source");
        (s.slow_bits, s.fast_ports, s.weighted_score)
    };
    assert_eq!(stats(a), (1, 1, 3), "{a}: new");
    assert_eq!(stats(a), (1, 0, 0), "{a} again: not new");
    assert_eq!(stats(b), (2, 1, 1), "{b}: new");
    assert_eq!(stats(a), (2, 0, 0), "{a} a third time: still not new");
    let counts = xdp.totals();
    Expect::nothing()
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&ip_frame(Family::V4, Class::Tcp, 54))
        .counters(&[(Counter::TcpSyn, 4)])
        .syn_port(a, 3)
        .syn_port(b, 1)
        .dst_host(
            DST_V4,
            Dst {
                packets: 4,
                bytes: 216,
                syns: 4,
                ..Dst::default()
            },
        )
        .check_dst_hosts(&counts, "fast window of 0 ns");
    let s = counts.sources[&IpKey::from(src)];
    let (bitmap, bits, _) = sketch(&[a, b]);
    assert_eq!((s.port_bitmap, s.slow_bits), (bitmap, bits));
    assert_eq!(s.slow_window_start_ns, s.first_seen_ns, "one slow window");
    assert_eq!(
        s.fast_window_start_ns, s.last_seen_ns,
        "fast window per SYN"
    );
    assert_eq!(
        s.weighted_window_start_ns, s.last_seen_ns,
        "weighted window per SYN"
    );
    assert_eq!(counts.events, []);
}

#[test]
fn syn_ports_count_the_lowest_and_highest_ports_and_chunk_edges() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    // Ports 1023/1024 straddle the first SYN_PORTS chunk boundary, and the
    // weight of a port in the weighted score.
    let ports = [0u16, 1023, 1024, 65_535];
    let mut expect = Expect::nothing();
    for port in ports {
        xdp.run(&frames::syn_v6(SRC_V6, DST_V6, 40_000, port));
        expect = expect
            .counters(&ip_frame(Family::V6, Class::Tcp, 74))
            .counters(&[(Counter::TcpSyn, 1)])
            .syn_port(port, 1);
    }
    expect
        .source(
            SRC_V6,
            Src {
                packets: 4,
                bytes: 296,
                tcp: 4,
                syns: 4,
                window: ports.to_vec(),
                ..Src::default().to(DST_V6, 65_535)
            },
        )
        .dst_host(
            DST_V6,
            Dst {
                packets: 4,
                bytes: 296,
                syns: 4,
                ..Dst::default()
            },
        )
        .check(&xdp.totals(), "edge ports");
}

// --- 13: frames the kernel will not run ---

#[test]
fn frames_shorter_than_an_ethernet_header_are_refused_by_the_kernel() {
    if !support::privileged() {
        return;
    }
    // BPF_PROG_TEST_RUN refuses XDP input shorter than ETH_HLEN (EINVAL), so
    // the program's `err_eth_truncated` path cannot be exercised here; see
    // `truncation_sweep`. The refusal must leave every counter untouched.
    let mut xdp = Xdp::load();
    for len in 0..ETH_HLEN {
        let error = xdp
            .try_run(&vec![0xff; len])
            .expect_err("kernel ran a short frame");
        assert!(
            is_einval(&error),
            "{len} bytes: expected EINVAL, got {error:?}"
        );
    }
    Expect::nothing().check(&xdp.totals(), "short frames");
}

#[test]
fn garbage_frames_are_passed_and_counted() {
    if !support::privileged() {
        return;
    }
    // Arbitrary bytes behind every ethertype the program parses: whatever
    // they hold, the program passes the frame and counts it once.
    let mut xdp = Xdp::load();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut total_bytes = 0u64;
    let ether_types = [
        ETH_P_IPV4,
        ETH_P_IPV6,
        frames::ETH_P_8021Q,
        frames::ETH_P_8021AD,
    ];
    for i in 0..400usize {
        let len = (next() % 200) as usize;
        let payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let frame = frames::ethernet(ether_types[i % ether_types.len()], &payload);
        total_bytes += frame.len() as u64;
        xdp.run(&frame);
    }
    let counts = xdp.totals();
    assert_eq!(counts.global.get(Counter::Packets), 400);
    assert_eq!(counts.global.get(Counter::Bytes), total_bytes);
}
