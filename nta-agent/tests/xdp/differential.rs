//! The XDP program and the capture reader count the same: the same frames
//! (crafted ones, random and mutated ones, a capture of real attacks)
//! through the program with BPF_PROG_TEST_RUN and through `capture::Counts`
//! (the reader's counting) leave the same global totals, the same entry
//! for every source and destination, the same SYNs per port and the same
//! threshold events in the same order.
//!
//! Both run `nta_common::count` and `nta_common::parse`; what this proves
//! is that the kernel's side of the `State` (maps, atomics, the ring) and
//! the reader's (memory) agree, and that nothing on either side bypasses
//! the shared code. The clocks differ (the kernel's runs, the reader's
//! stands at the load time), so the windows are longer than the test and
//! the timestamps are left out of the comparison.

use std::{collections::BTreeMap, net::IpAddr, path::Path};

use jiff::Timestamp;
use nta_agent::capture::{CaptureReader, Counts};
use nta_common::{
    DstHostStats, GlobalCounters, IpKey, SourceStats,
    flow::{FlowKey, FlowStats},
    maps::{DST_CLASSES, RATE_CLASSES, ThresholdEvent, Thresholds, feature},
};

use super::{
    cost::repeated_classes,
    robustness::{Rng, frame},
};
use crate::support::{
    self,
    captures::capture_attacks,
    frames::ETH_HLEN,
    netns::Topology,
    xdp::{Xdp, coarse_now_ns, long_window_ns, pin_to_one_cpu, quiet},
};

const SEED: u64 = 0x6469_6666_6572_656e;
const FRAMES: usize = 100_000;

/// Windows longer than the test, thresholds low enough that the random
/// frames cross them: every kind of event is sent.
fn thresholds() -> Thresholds {
    Thresholds {
        sketch_window_ns: long_window_ns(),
        dst_bytes: [40_000; DST_CLASSES],
        dst_packets: [60; DST_CLASSES],
        dst_burst_packets: [30; DST_CLASSES],
        dst_burst_bytes: [20_000; DST_CLASSES],
        source: [25; RATE_CLASSES],
        sweep_bits: 6,
        fast_ports: 8,
        weighted_score: 40,
        slow_bits: 12,
        ..quiet()
    }
}

/// An entry with its timestamps zeroed.
fn untimed_source(mut s: SourceStats) -> SourceStats {
    s.first_seen_ns = 0;
    s.last_seen_ns = 0;
    s.rate_window_start_ns = 0;
    s.slow_window_start_ns = 0;
    s.fast_window_start_ns = 0;
    s.weighted_window_start_ns = 0;
    s
}

fn untimed_destination(mut d: DstHostStats) -> DstHostStats {
    d.last_seen_ns = 0;
    d.rate_window_start_ns = 0;
    d.sketch_window_start_ns = 0;
    d.burst_window_start_ns = 0;
    d
}

/// A flow without its timestamps and its owners, the numbers of the CPUs
/// that counted it first each way.
fn untimed_flow(mut f: FlowStats) -> FlowStats {
    f.first_seen_ns = 0;
    f.last_seen_ns = 0;
    f.owners = 0;
    f
}

/// An event without its timestamps.
fn untimed_event(e: &ThresholdEvent) -> (u32, u32, IpKey, u64) {
    (e.kind, e.class, e.key, e.count)
}

/// The two sides, fed the same frames.
struct Both {
    xdp: Xdp,
    counts: Counts,
    kernel_events: Vec<ThresholdEvent>,
    user_events: Vec<ThresholdEvent>,
    frames: u64,
}

impl Both {
    fn new() -> Self {
        // The reader is one CPU: so must the program be.
        pin_to_one_cpu();
        let thresholds = thresholds();
        let xdp = Xdp::load_with(feature::ALL, Some(&thresholds));
        let counts = Counts::new(thresholds, nta_common::flow::FLOWS_MAX_ENTRIES);
        // The reader's clock stands at the load time: later than any
        // window's start of 0, as the kernel's is.
        let now = Timestamp::from_nanosecond(i128::from(coarse_now_ns())).expect("a time");
        counts.set_time(now);
        Self {
            xdp,
            counts,
            kernel_events: Vec::new(),
            user_events: Vec::new(),
            frames: 0,
        }
    }

    /// One frame through both; frames the kernel will not run (shorter
    /// than an Ethernet header) through neither.
    fn feed(&mut self, frame: &[u8]) {
        if frame.len() < ETH_HLEN {
            return;
        }
        self.xdp.pass(frame);
        let len = u32::try_from(frame.len()).expect("a frame's length");
        self.counts
            .frame(nta_agent::capture::Link::Ethernet, frame, len);
        self.frames += 1;
        // Read as they come: the ring holds a few thousand.
        self.kernel_events.extend(self.xdp.events());
        self.user_events.extend(self.counts.take_events());
    }

    /// Asserts that both counted the same; returns what was compared.
    #[track_caller]
    fn assert_same(&self, what: &str) -> String {
        let kernel = self.xdp.snapshot();
        let user_global: GlobalCounters = self.counts.global();
        for (i, (k, u)) in kernel
            .global
            .values
            .iter()
            .zip(user_global.values.iter())
            .enumerate()
        {
            assert_eq!(k, u, "{what}: global counter {i}");
        }
        let sources = self.counts.sources();
        assert_eq!(
            kernel.sources.iter().count(),
            sources.len(),
            "{what}: sources"
        );
        for (key, user) in &sources {
            let kernel = self.xdp.source(IpAddr::from(*key));
            assert!(
                untimed_source(kernel) == untimed_source(*user),
                "{what}: source {}:\nkernel {kernel:?}\nreader {user:?}",
                IpAddr::from(*key)
            );
        }
        let destinations = self.counts.destinations();
        assert_eq!(
            kernel.dst_hosts.len(),
            destinations.len(),
            "{what}: destinations"
        );
        for (key, user) in &destinations {
            let kernel = self.xdp.dst_host(IpAddr::from(*key));
            assert!(
                untimed_destination(kernel) == untimed_destination(*user),
                "{what}: destination {}:\nkernel {kernel:?}\nreader {user:?}",
                IpAddr::from(*key)
            );
        }
        let mut kernel_flows: Vec<(FlowKey, FlowStats)> = self
            .xdp
            .sensor
            .flows()
            .expect("reading FLOWS")
            .into_iter()
            .map(|(k, f)| (k, untimed_flow(f)))
            .collect();
        let mut user_flows: Vec<(FlowKey, FlowStats)> = self
            .counts
            .flows()
            .into_iter()
            .map(|(k, f)| (k, untimed_flow(f)))
            .collect();
        kernel_flows.sort_unstable_by_key(|(k, _)| *k);
        user_flows.sort_unstable_by_key(|(k, _)| *k);
        assert_eq!(kernel_flows.len(), user_flows.len(), "{what}: flows");
        for (k, u) in kernel_flows.iter().zip(&user_flows) {
            assert!(k == u, "{what}: flow\nkernel {k:?}\nreader {u:?}");
        }
        let user_ports = self.counts.syn_ports_now();
        assert!(kernel.syn_ports == user_ports, "{what}: SYNs per port");
        let kernel_events: Vec<_> = self.kernel_events.iter().map(untimed_event).collect();
        let user_events: Vec<_> = self.user_events.iter().map(untimed_event).collect();
        assert_eq!(kernel_events.len(), user_events.len(), "{what}: events");
        for (i, (k, u)) in kernel_events.iter().zip(&user_events).enumerate() {
            assert_eq!(k, u, "{what}: event {i}");
        }
        let mut kinds = BTreeMap::<u32, usize>::new();
        for e in &self.kernel_events {
            *kinds.entry(e.kind).or_default() += 1;
        }
        format!(
            "{what}: {} frames, {} sources, {} destinations, {} flows, {} SYNs, events by kind {kinds:?}",
            self.frames,
            sources.len(),
            destinations.len(),
            user_flows.len(),
            user_ports.iter().sum::<u64>(),
        )
    }
}

#[test]
fn random_and_mutated_frames_are_counted_alike_by_the_program_and_the_reader() {
    if !support::privileged() {
        return;
    }
    let mut both = Both::new();
    // The crafted frames the benchmarks time, each past its thresholds.
    for class in repeated_classes() {
        for _ in 0..100 {
            both.feed(&class.frame);
        }
    }
    let mut rng = Rng(SEED);
    for _ in 0..FRAMES {
        both.feed(&frame(&mut rng));
    }
    let compared = both.assert_same(&format!("seed {SEED:#x}"));
    println!("{compared}");
    // The comparison means something only if the frames reach the state
    // it compares: sources, destinations, and events of most kinds.
    assert!(both.counts.sources().len() > 1000, "{compared}");
    let kinds: std::collections::BTreeSet<u32> =
        both.kernel_events.iter().map(|e| e.kind).collect();
    assert!(kinds.len() >= 6, "{compared}");
}

#[test]
fn a_capture_of_real_attacks_is_counted_alike_by_the_program_and_the_reader() {
    let tools = [
        "tcpdump", "curl", "python3", "nmap", "hping3", "dig", "pkill",
    ];
    if !support::privileged_with(&tools) {
        return;
    }
    let net = Topology::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("attacks.pcap");
    capture_attacks(&net, &net.victim_if, &file, dir.path());
    let mut both = Both::new();
    let mut capture = CaptureReader::open(&file).expect("the capture");
    while capture
        .next_frame(|f| both.feed(f.data))
        .unwrap_or_else(|e| panic!("{}: {e}", Path::new(&file).display()))
    {}
    let compared = both.assert_same("a capture of nmap, curl, dig and hping3");
    println!("{compared}");
    assert!(both.frames > 1000, "{compared}");
    assert!(!both.kernel_events.is_empty(), "{compared}");
}

/// A capture stamped with the epoch still counts a flow once and keeps its
/// destination: 0 marks an entry no packet has filled.
#[test]
fn frames_stamped_with_the_epoch_are_counted_as_any_others() {
    use nta_common::Counter;
    let counts = Counts::new(quiet(), nta_common::flow::FLOWS_MAX_ENTRIES);
    counts.set_time(Timestamp::UNIX_EPOCH);
    let syn = crate::support::frames::syn_v4(
        crate::support::frames::SRC_V4,
        crate::support::frames::DST_V4,
        40_000,
        80,
    );
    let len = u32::try_from(syn.len()).expect("a frame's length");
    for _ in 0..3 {
        counts.frame(nta_agent::capture::Link::Ethernet, &syn, len);
    }
    assert_eq!(counts.global().get(Counter::FlowsNew), 1);
    let flows = counts.flows();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].1.packets.iter().sum::<u64>(), 3);
    assert_eq!(counts.destinations().len(), 1);
    use nta_agent::source::PacketSource;
    let snapshot = counts.snapshot().expect("a snapshot");
    assert_eq!(snapshot.dst_hosts.len(), 1);
}
