//! Runs the real XDP program on crafted frames (`BPF_PROG_TEST_RUN`) and
//! checks the threshold events it sends on the `EVENTS` ring: which counter
//! crossed, for which key, at which count, exactly once per window, and what
//! a full ring does.
//!
//! `BPF_PROG_TEST_RUN` runs the program synchronously, so a frame's events
//! are in the ring when the run returns; each test drains the ring after
//! every frame and checks what that frame sent. Tests that need windows to
//! last use windows far longer than a test ([`quiet`]); tests of restarting
//! windows use zero-length windows, which restart at every packet whatever
//! the clock says, so nothing here depends on timing except the one test
//! that sleeps past a window on purpose.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use nta_common::{
    Counter, DstHostStats, SourceStats,
    classify::{DST_CLASSES, DstClass, Probe},
    maps::{
        EVENTS_RING_BYTES, EventKind, RATE_CLASSES, RateClass, ThresholdEvent, Thresholds, feature,
        ip_proto, port_weight,
    },
    sketch::port_bit as port_sketch_bit,
};

use crate::support::{
    self,
    frames::{self, DST_V4, DST_V6, IPPROTO_GRE, Ipv4, SRC_V4, SRC_V6, Tcp},
    xdp::{Xdp, long_window_ns, quiet, zero_windows},
};

/// Zero-length windows and zero thresholds: every counted packet signals.
fn every_packet() -> Thresholds {
    Thresholds {
        rate_window_ns: 0,
        fast_window_ns: 0,
        weighted_window_ns: 0,
        slow_window_ns: 0,
        sketch_window_ns: 0,
        burst_window_ns: 0,
        source: [0; RATE_CLASSES],
        // The destination classes and sweeps have tests of their own.
        dst_packets: syns_only(0),
        dst_bytes: [u64::MAX; DST_CLASSES],
        dst_burst_packets: [u32::MAX; DST_CLASSES],
        dst_burst_bytes: [u32::MAX; DST_CLASSES],
        sweep_bits: u32::MAX,
        fast_ports: 0,
        weighted_score: 0,
        slow_bits: 0,
        configured: 1,
        new_flows_per_cpu: 0,
        new_sources_per_cpu: 0,
    }
}

/// What a test compares of an event; [`Xdp::events`] checks the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ev {
    kind: EventKind,
    class: u32,
    key: IpAddr,
    count: u64,
}

fn ev(kind: EventKind, key: impl Into<IpAddr>, count: u64) -> Ev {
    Ev {
        kind,
        class: 0,
        key: key.into(),
        count,
    }
}

fn rate(class: RateClass, key: impl Into<IpAddr>, count: u64) -> Ev {
    Ev {
        class: class as u32,
        ..ev(EventKind::SourceRate, key, count)
    }
}

fn summary(event: &ThresholdEvent) -> Ev {
    Ev {
        kind: EventKind::from_u32(event.kind)
            .unwrap_or_else(|| panic!("unknown event kind in {event:?}")),
        class: event.class,
        key: IpAddr::from(event.key),
        count: event.count,
    }
}

fn summaries(events: &[ThresholdEvent]) -> Vec<Ev> {
    events.iter().map(summary).collect()
}

/// Loads the program and writes `thresholds`, or leaves `THRESHOLDS` as
/// the kernel creates it (all zeros) for `None`.
fn load(thresholds: Option<&Thresholds>) -> Xdp {
    let mut xdp = Xdp::load_with(feature::ALL, thresholds);
    assert_eq!(xdp.events(), [], "fresh EVENTS");
    xdp
}

/// Checks that `event`, sent by the packet just run from `src`, carries that
/// packet's time and the start of the window it counted in.
#[track_caller]
fn sent_by_last_packet(event: &ThresholdEvent, s: &SourceStats, window_start_ns: u64) {
    assert_eq!(event.at_ns, s.last_seen_ns, "at_ns of {event:?}");
    assert_eq!(
        event.window_start_ns, window_start_ns,
        "window_start_ns of {event:?}"
    );
}

// ------------------------------------------------------------------ Frames

/// Source number `i` of a test that needs many.
fn src_v4(i: usize) -> Ipv4Addr {
    let i = u16::try_from(i).expect("source index");
    Ipv4Addr::new(198, 18, 10 + (i / 256) as u8, (i % 256) as u8)
}

fn src_v6(i: usize) -> Ipv6Addr {
    let i = u16::try_from(i).expect("source index");
    Ipv6Addr::new(0x2001, 0xdb8, 10, 0, 0, 0, 0, i)
}

/// A frame of `class` from `src` to `dst` (of the same family).
fn frame_of(class: RateClass, src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let tcp = |tcp: &Tcp| match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => frames::tcp_v4(s, d, tcp),
        (IpAddr::V6(s), IpAddr::V6(d)) => frames::tcp_v6(s, d, tcp),
        _ => panic!("mixed families"),
    };
    match (class, src, dst) {
        (RateClass::Syn, ..) => tcp(&Tcp::syn(40_000, 80)),
        (RateClass::Rst, ..) => tcp(&Tcp::rst(80, 40_000)),
        // A server's ACK and a datagram to a higher port: no probes, so
        // they signal only their rate.
        (RateClass::BareAck, ..) => tcp(&Tcp::ack(80, 40_000)),
        (RateClass::Udp, IpAddr::V4(s), IpAddr::V4(d)) => {
            frames::udp_v4(s, d, 40_000, 50_000, &[0; 8])
        }
        (RateClass::Udp, IpAddr::V6(s), IpAddr::V6(d)) => {
            frames::udp_v6(s, d, 40_000, 50_000, &[0; 8])
        }
        (RateClass::Icmp, IpAddr::V4(s), IpAddr::V4(d)) => frames::ping_v4(s, d),
        (RateClass::Icmp, IpAddr::V6(s), IpAddr::V6(d)) => frames::ping_v6(s, d),
        _ => panic!("mixed families"),
    }
}

/// The first `n` of `candidates` whose sketch bits differ from each other's:
/// each of them is a new port to the sketch.
fn distinct_bit_ports(candidates: impl IntoIterator<Item = u16>, n: usize) -> Vec<u16> {
    let mut bits = BTreeSet::new();
    let ports: Vec<u16> = candidates
        .into_iter()
        .filter(|port| bits.insert(port_sketch_bit(*port)))
        .take(n)
        .collect();
    assert_eq!(ports.len(), n, "not enough ports with distinct bits");
    ports
}

/// Another port with the same sketch bit as `port`, at or above `from`.
fn twin(port: u16, from: u16) -> u16 {
    (from..=u16::MAX)
        .find(|p| *p != port && port_sketch_bit(*p) == port_sketch_bit(port))
        .expect("every bit is shared by ~128 ports")
}

// ============================================================== The tests

#[test]
fn zero_thresholds_signal_every_counted_packet() {
    if !support::privileged() {
        return;
    }
    // Zero-length windows restart at every packet they count, and a count
    // threshold of 0 is passed by a count of 1. The weighted score is the
    // exception: it fires when a new port lifts it from below the threshold
    // to at least it, and nothing is below 0.
    let mut xdp = load(Some(&every_packet()));
    let (src, dst) = (IpAddr::V4(SRC_V4), IpAddr::V4(DST_V4));
    for round in 0..3 {
        let syn = xdp.send(&frames::syn_v4(SRC_V4, DST_V4, 40_000, 443));
        assert_eq!(
            summaries(&syn),
            [
                rate(RateClass::Syn, src, 1),
                ev(EventKind::ScanSlow, src, 1),
                ev(EventKind::ScanFast, src, 1),
                ev(EventKind::DstPackets, dst, 1),
            ],
            "SYN, round {round}: the same port is new each time, as the bitmap restarts"
        );
        let s = xdp.source(src);
        assert!(
            syn.iter()
                .all(|e| e.at_ns == s.last_seen_ns && e.window_start_ns == s.last_seen_ns)
        );
        for class in [
            RateClass::Udp,
            RateClass::Icmp,
            RateClass::Rst,
            RateClass::BareAck,
        ] {
            assert_eq!(
                summaries(&xdp.send(&frame_of(class, src, dst))),
                [rate(class, src, 1)],
                "{}, round {round}",
                class.name()
            );
        }
    }
    // Packets in no class send nothing.
    let psh_ack = Tcp::new(40_000, 443, frames::tcp_flags::PSH | frames::tcp_flags::ACK);
    let syn_ack = Tcp::new(443, 40_000, frames::tcp_flags::SYN | frames::tcp_flags::ACK);
    let nothing: [(&str, Vec<u8>); 5] = [
        (
            "ACK with data",
            frames::tcp_v4(SRC_V4, DST_V4, &psh_ack.payload(&[1; 10])),
        ),
        ("SYN-ACK", frames::tcp_v4(SRC_V4, DST_V4, &syn_ack)),
        (
            "GRE",
            Ipv4::new(SRC_V4, DST_V4, IPPROTO_GRE).frame(&[0, 0, 8, 0]),
        ),
        (
            "TCP header cut short",
            frames::syn_v4(SRC_V4, DST_V4, 40_000, 80)[..40].to_vec(),
        ),
        (
            "TCP later fragment",
            Ipv4::new(SRC_V4, DST_V4, ip_proto::TCP)
                .fragment(false, 8)
                .frame(&Tcp::syn(40_000, 80).bytes()),
        ),
    ];
    for (what, frame) in nothing {
        assert_eq!(xdp.send(&frame), [], "{what}");
    }
    assert_eq!(xdp.counter(Counter::EventsLost), 0);
}

#[test]
fn disabled_thresholds_signal_nothing() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(Some(&Thresholds::DISABLED));
    let (src, dst) = (IpAddr::V4(SRC_V4), IpAddr::V4(DST_V4));
    for port in 0..200u16 {
        xdp.pass(&frames::syn_v4(SRC_V4, DST_V4, 40_000, port));
    }
    for class in RateClass::ALL {
        for _ in 0..50 {
            xdp.pass(&frame_of(class, src, dst));
        }
    }
    assert_eq!(xdp.events(), []);
    let s = xdp.source(src);
    assert_eq!(s.probes[Probe::Syn as usize], 250);
    assert_eq!(xdp.counter(Counter::EventsLost), 0);
}

#[test]
fn source_rate_fires_once_when_a_class_passes_its_threshold() {
    if !support::privileged() {
        return;
    }
    // Threshold 5 for every class: the 6th packet of a class sends one
    // event, the 7th to the 20th none. Each (family, class) has its own
    // source, so their windows are apart.
    let mut xdp = load(Some(&Thresholds {
        source: [5; RATE_CLASSES],
        ..quiet()
    }));
    let mut i = 0;
    for family in ["IPv4", "IPv6"] {
        for class in RateClass::ALL {
            i += 1;
            let (src, dst) = match family {
                "IPv4" => (IpAddr::V4(src_v4(i)), IpAddr::V4(DST_V4)),
                _ => (IpAddr::V6(src_v6(i)), IpAddr::V6(DST_V6)),
            };
            let frame = frame_of(class, src, dst);
            for n in 1..=20u32 {
                let events = xdp.send(&frame);
                let what = format!("{family} {} #{n}", class.name());
                if n == 6 {
                    assert_eq!(summaries(&events), [rate(class, src, 6)], "{what}");
                    let s = xdp.source(src);
                    sent_by_last_packet(&events[0], &s, s.rate_window_start_ns);
                    assert_eq!(
                        s.rate_window_start_ns, s.first_seen_ns,
                        "{what}: one window"
                    );
                } else {
                    assert_eq!(summaries(&events), [], "{what}");
                }
            }
            let mut counts = [0; RATE_CLASSES];
            counts[class as usize] = 20;
            assert_eq!(
                xdp.source(src).window_counts,
                counts,
                "{family} {}",
                class.name()
            );
        }
    }
    assert_eq!(xdp.counter(Counter::EventsLost), 0);
}

#[test]
fn source_rate_classes_are_counted_apart() {
    if !support::privileged() {
        return;
    }
    // One source sends the five classes in turn: each class crosses its
    // own threshold on its own 6th packet, in round 6.
    let mut xdp = load(Some(&Thresholds {
        source: [5; RATE_CLASSES],
        ..quiet()
    }));
    let (src, dst) = (IpAddr::V4(SRC_V4), IpAddr::V4(DST_V4));
    for round in 1..=20u32 {
        for class in RateClass::ALL {
            let events = summaries(&xdp.send(&frame_of(class, src, dst)));
            let want = if round == 6 {
                vec![rate(class, src, 6)]
            } else {
                vec![]
            };
            assert_eq!(events, want, "round {round}, {}", class.name());
        }
    }
    assert_eq!(xdp.source(src).window_counts, [20; RATE_CLASSES]);

    // A threshold of 0 means "more than 0": the first packet passes it; a
    // class with u32::MAX never fires.
    let mut xdp = load(Some(&Thresholds {
        source: [0, u32::MAX, 0, u32::MAX, 0],
        ..quiet()
    }));
    for round in 1..=3u32 {
        for class in RateClass::ALL {
            let events = summaries(&xdp.send(&frame_of(class, src, dst)));
            let fires = round == 1
                && matches!(class, RateClass::Syn | RateClass::Icmp | RateClass::BareAck);
            let want = if fires {
                vec![rate(class, src, 1)]
            } else {
                vec![]
            };
            assert_eq!(
                events,
                want,
                "threshold 0 or MAX, round {round}, {}",
                class.name()
            );
        }
    }
}

#[test]
fn dst_syns_fires_once_when_a_destination_gets_more_syns_than_its_threshold() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(Some(&Thresholds {
        dst_packets: syns_only(3),
        ..quiet()
    }));
    for (family, dst) in [("IPv4", IpAddr::V4(DST_V4)), ("IPv6", IpAddr::V6(DST_V6))] {
        for n in 1..=10u32 {
            let (src, other) = match dst {
                IpAddr::V4(_) => (IpAddr::V4(src_v4(n as usize)), IpAddr::V4(SRC_V4)),
                IpAddr::V6(_) => (IpAddr::V6(src_v6(n as usize)), IpAddr::V6(SRC_V6)),
            };
            // Other traffic to the destination counts no SYN.
            for class in [
                RateClass::Udp,
                RateClass::Rst,
                RateClass::BareAck,
                RateClass::Icmp,
            ] {
                assert_eq!(
                    xdp.send(&frame_of(class, other, dst)),
                    [],
                    "{family} {}",
                    class.name()
                );
            }
            let events = xdp.send(&frame_of(RateClass::Syn, src, dst));
            let what = format!("{family} SYN #{n}, from {src}");
            if n == 4 {
                assert_eq!(
                    summaries(&events),
                    [ev(EventKind::DstPackets, dst, 4)],
                    "{what}"
                );
                let d = xdp.dst_host(dst);
                assert_eq!(events[0].at_ns, d.last_seen_ns, "{what}");
                assert_eq!(events[0].window_start_ns, d.rate_window_start_ns, "{what}");
            } else {
                assert_eq!(summaries(&events), [], "{what}");
            }
        }
        let d = xdp.dst_host(dst);
        assert_eq!(
            (d.packets[DstClass::Syn as usize], window_syns(&d)),
            (10, 10),
            "{family}"
        );
    }
}

#[test]
fn scan_fast_fires_once_at_the_sixteenth_new_port() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(Some(&Thresholds {
        fast_ports: 15,
        ..quiet()
    }));
    let src = IpAddr::V4(SRC_V4);
    let ports = distinct_bit_ports(2_000.., 30);
    let syn = |port| frames::syn_v4(SRC_V4, DST_V4, 40_000, port);
    // The same port again and again is one port.
    for _ in 0..20 {
        assert_eq!(xdp.send(&syn(ports[0])), []);
    }
    assert_eq!(xdp.source(src).fast_ports, 1);
    for (i, port) in ports.iter().enumerate().skip(1) {
        let events = xdp.send(&syn(*port));
        if i == 15 {
            assert_eq!(
                summaries(&events),
                [ev(EventKind::ScanFast, src, 16)],
                "port {port}"
            );
            let s = xdp.source(src);
            sent_by_last_packet(&events[0], &s, s.fast_window_start_ns);
        } else {
            assert_eq!(events, [], "new port #{}: {port}", i + 1);
        }
        // A repeat, and another port with the same sketch bit, are not new.
        assert_eq!(xdp.send(&syn(*port)), [], "{port} again");
        assert_eq!(xdp.send(&syn(twin(*port, 1024))), [], "twin of {port}");
    }
    let s = xdp.source(src);
    assert_eq!((s.fast_ports, s.slow_bits), (30, 30));
}

#[test]
fn scan_weighted_fires_when_the_score_reaches_its_threshold() {
    if !support::privileged() {
        return;
    }
    // scanlogd's rule: fires when the score reaches 21 (7 privileged ports
    // at 3, or 21 others at 1), once, whatever it jumps to.
    let mut xdp = load(Some(&Thresholds {
        weighted_score: 21,
        ..quiet()
    }));
    let low = distinct_bit_ports(1..1024, 10);
    let high = distinct_bit_ports(30_000.., 25);
    assert!(low.iter().all(|p| port_weight(*p) == 3));
    assert!(high.iter().all(|p| port_weight(*p) == 1));
    let cases: [(&str, Vec<u16>, usize, u32); 3] = [
        // What, the ports in order, which one crosses, and the score then.
        ("7 privileged ports", low.clone(), 6, 21),
        ("21 high ports", high.clone(), 20, 21),
        (
            "20 high ports, then privileged ones: 20 to 23",
            high[..20].iter().chain(&low[..5]).copied().collect(),
            20,
            23,
        ),
    ];
    for (i, (what, ports, crossing, score)) in cases.into_iter().enumerate() {
        let src = src_v4(i);
        let syn = |port| frames::syn_v4(src, DST_V4, 40_000, port);
        let mut expected_score = 0;
        for (j, port) in ports.iter().enumerate() {
            let events = xdp.send(&syn(*port));
            expected_score += port_weight(*port);
            let s = xdp.source(src);
            assert_eq!(s.weighted_score, expected_score, "{what}: after {port}");
            if j == crossing {
                assert_eq!(
                    summaries(&events),
                    [ev(EventKind::ScanWeighted, src, u64::from(score))],
                    "{what}: {port}"
                );
                sent_by_last_packet(&events[0], &s, s.weighted_window_start_ns);
            } else {
                assert_eq!(events, [], "{what}: port #{} ({port})", j + 1);
            }
            // A repeated port weighs nothing more.
            assert_eq!(xdp.send(&syn(*port)), [], "{what}: {port} again");
            assert_eq!(
                xdp.source(src).weighted_score,
                expected_score,
                "{what}: {port} again"
            );
        }
    }
}

#[test]
fn scan_slow_fires_once_at_the_tenth_new_bit() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(Some(&Thresholds {
        slow_bits: 9,
        ..quiet()
    }));
    let src = IpAddr::V6(SRC_V6);
    let ports = distinct_bit_ports((1..=65_535).rev(), 20);
    let syn = |port| frames::syn_v6(SRC_V6, DST_V6, 40_000, port);
    for (i, port) in ports.iter().enumerate() {
        let events = xdp.send(&syn(*port));
        if i == 9 {
            assert_eq!(
                summaries(&events),
                [ev(EventKind::ScanSlow, src, 10)],
                "port {port}"
            );
            let s = xdp.source(src);
            sent_by_last_packet(&events[0], &s, s.slow_window_start_ns);
        } else {
            assert_eq!(events, [], "new bit #{}: {port}", i + 1);
        }
        assert_eq!(xdp.send(&syn(*port)), [], "{port} again");
        assert_eq!(xdp.send(&syn(twin(*port, 0))), [], "twin of {port}");
    }
    assert_eq!(xdp.source(src).slow_bits, 20);
}

#[test]
fn thresholds_crossed_by_one_syn_send_one_event_each_in_program_order() {
    if !support::privileged() {
        return;
    }
    // Ten SYNs to ten high ports with distinct bits: the tenth passes every
    // threshold at once. The weighted score *reaches* its threshold (10).
    let mut xdp = load(Some(&Thresholds {
        source: [9; RATE_CLASSES],
        dst_packets: syns_only(9),
        fast_ports: 9,
        weighted_score: 10,
        slow_bits: 9,
        ..quiet()
    }));
    let (src, dst) = (IpAddr::V4(SRC_V4), IpAddr::V4(DST_V4));
    let ports = distinct_bit_ports(5_000.., 15);
    for (i, port) in ports.iter().enumerate() {
        let events = xdp.send(&frames::syn_v4(SRC_V4, DST_V4, 40_000, *port));
        if i != 9 {
            assert_eq!(events, [], "SYN #{}", i + 1);
            continue;
        }
        assert_eq!(
            summaries(&events),
            [
                rate(RateClass::Syn, src, 10),
                ev(EventKind::ScanSlow, src, 10),
                ev(EventKind::ScanFast, src, 10),
                ev(EventKind::ScanWeighted, src, 10),
                ev(EventKind::DstPackets, dst, 10),
            ]
        );
        let (s, d) = (xdp.source(src), xdp.dst_host(dst));
        sent_by_last_packet(&events[0], &s, s.rate_window_start_ns);
        sent_by_last_packet(&events[1], &s, s.slow_window_start_ns);
        sent_by_last_packet(&events[2], &s, s.fast_window_start_ns);
        sent_by_last_packet(&events[3], &s, s.weighted_window_start_ns);
        assert_eq!(
            (events[4].at_ns, events[4].window_start_ns),
            (d.last_seen_ns, d.rate_window_start_ns)
        );
    }
}

#[test]
fn zero_length_windows_restart_at_every_packet() {
    if !support::privileged() {
        return;
    }
    let (src, dst) = (IpAddr::V4(SRC_V4), IpAddr::V4(DST_V4));
    let syn = |port| frames::syn_v4(SRC_V4, DST_V4, 40_000, port);

    // Rate window: a count never exceeds 1, so threshold 0 fires at every
    // packet and threshold 1 never. Any class restarts the window for all.
    let mut xdp = load(Some(&Thresholds {
        source: [0, 1, 1, 1, 1],
        dst_packets: syns_only(0),
        ..zero_windows()
    }));
    for n in 1..=5 {
        assert_eq!(
            summaries(&xdp.send(&syn(80))),
            [
                rate(RateClass::Syn, src, 1),
                ev(EventKind::DstPackets, dst, 1)
            ],
            "SYN #{n}"
        );
        for class in [
            RateClass::Udp,
            RateClass::Icmp,
            RateClass::Rst,
            RateClass::BareAck,
        ] {
            assert_eq!(
                xdp.send(&frame_of(class, src, dst)),
                [],
                "{} #{n}",
                class.name()
            );
        }
    }
    let s = xdp.source(src);
    assert_eq!(
        s.window_counts,
        [0, 0, 0, 0, 1],
        "the last packet, a bare ACK, restarted it"
    );
    assert_eq!(s.rate_window_start_ns, s.last_seen_ns);
    // Every packet restarts the destination's window too: the SYN is no
    // longer in it.
    assert_eq!(window_syns(&xdp.dst_host(dst)), 0);

    // Slow window: the bitmap restarts too, so the same port is new again.
    let mut xdp = load(Some(&Thresholds {
        slow_bits: 0,
        ..zero_windows()
    }));
    for n in 1..=5 {
        assert_eq!(
            summaries(&xdp.send(&syn(443))),
            [ev(EventKind::ScanSlow, src, 1)],
            "#{n}"
        );
    }

    // Fast window restarting under a lasting slow window: only ports new to
    // the bitmap count, so a repeated port never fires again.
    let long = long_window_ns();
    assert_ne!(port_sketch_bit(22), port_sketch_bit(8080));
    let mut xdp = load(Some(&Thresholds {
        fast_ports: 0,
        slow_window_ns: long,
        ..zero_windows()
    }));
    for (port, fires) in [
        (22, true),
        (22, false),
        (8080, true),
        (22, false),
        (8080, false),
    ] {
        let want = if fires {
            vec![ev(EventKind::ScanFast, src, 1)]
        } else {
            vec![]
        };
        assert_eq!(summaries(&xdp.send(&syn(port))), want, "port {port}");
    }

    // Weighted window restarting, threshold 3: one new privileged port
    // reaches it, one new high port (1) does not, a repeat adds nothing.
    let mut xdp = load(Some(&Thresholds {
        weighted_score: 3,
        slow_window_ns: long,
        ..zero_windows()
    }));
    let ports = distinct_bit_ports([22, 25, 80, 8080, 8443, 9000], 6);
    for (port, fires) in [
        (ports[0], true),
        (ports[0], false),
        (ports[3], false),
        (ports[1], true),
        (ports[4], false),
        (ports[2], true),
        (ports[5], false),
    ] {
        let want = if fires {
            vec![ev(EventKind::ScanWeighted, src, 3)]
        } else {
            vec![]
        };
        assert_eq!(summaries(&xdp.send(&syn(port))), want, "port {port}");
    }
}

#[test]
fn a_window_that_elapses_lets_its_threshold_fire_again() {
    if !support::privileged() {
        return;
    }
    // The one test that waits: a 300 ms rate window. Each burst of 12 SYNs
    // takes well under a millisecond, so it falls in one window; the sleep
    // ends that window. The coarse clock moves in ticks of a few ms.
    const WINDOW_NS: u64 = 300_000_000;
    let mut xdp = load(Some(&Thresholds {
        source: [5, u32::MAX, u32::MAX, u32::MAX, u32::MAX],
        dst_packets: syns_only(5),
        rate_window_ns: WINDOW_NS,
        ..quiet()
    }));
    let (src, dst) = (IpAddr::V4(SRC_V4), IpAddr::V4(DST_V4));
    let frame = frames::syn_v4(SRC_V4, DST_V4, 40_000, 80);
    let mut starts = Vec::new();
    for burst in 0..3 {
        let mut events = Vec::new();
        for _ in 0..12 {
            events.extend(xdp.send(&frame));
        }
        let s = xdp.source(src);
        assert_eq!(
            s.window_counts[RateClass::Syn as usize],
            12,
            "burst {burst}: one window"
        );
        assert_eq!(
            summaries(&events),
            [
                rate(RateClass::Syn, src, 6),
                ev(EventKind::DstPackets, dst, 6)
            ],
            "burst {burst}"
        );
        assert_eq!(events[0].window_start_ns, s.rate_window_start_ns);
        starts.push(s.rate_window_start_ns);
        std::thread::sleep(Duration::from_nanos(WINDOW_NS) + Duration::from_millis(50));
    }
    assert!(
        starts.windows(2).all(|w| w[1] >= w[0] + WINDOW_NS),
        "each burst opened a new window: {starts:?}"
    );
}

#[test]
fn a_full_ring_counts_lost_events() {
    if !support::privileged() {
        return;
    }
    // Each record takes an 8-byte header plus the event, 8-byte aligned;
    // the kernel reserves while the records fit in `EVENTS_RING_BYTES - 1`.
    let record = (size_of::<ThresholdEvent>() + 8).next_multiple_of(8);
    let capacity = (EVENTS_RING_BYTES as usize - 1) / record;
    assert_eq!((record, capacity), (56, 4_681));
    const RUNS: u32 = 20_000;

    // Zero thresholds: one SourceRate event per UDP datagram.
    let mut xdp = load(Some(&every_packet()));
    let (src, dst) = (IpAddr::V4(SRC_V4), IpAddr::V4(DST_V4));
    xdp.pass_repeat(&frame_of(RateClass::Udp, src, dst), RUNS);
    let events = xdp.events();
    let lost = xdp.counter(Counter::EventsLost);
    assert_eq!(events.len(), capacity, "events that fit");
    assert_eq!(
        lost,
        u64::from(RUNS) - capacity as u64,
        "the rest is counted as lost"
    );
    assert!(
        summaries(&events)
            .iter()
            .all(|e| *e == rate(RateClass::Udp, src, 1))
    );
    assert!(
        events.windows(2).all(|w| w[0].at_ns <= w[1].at_ns),
        "oldest first"
    );
    assert_eq!(
        xdp.source(src).udp_packets(),
        u64::from(RUNS),
        "counting goes on"
    );

    // Drained, the ring takes events again. A SYN sends four, in this order.
    let per_syn = [
        rate(RateClass::Syn, src, 1),
        ev(EventKind::ScanSlow, src, 1),
        ev(EventKind::ScanFast, src, 1),
        ev(EventKind::DstPackets, dst, 1),
    ];
    let syn = frames::syn_v4(SRC_V4, DST_V4, 40_000, 80);
    assert_eq!(summaries(&xdp.send(&syn)), per_syn);
    assert_eq!(
        xdp.counter(Counter::EventsLost),
        lost,
        "nothing lost with room"
    );

    xdp.pass_repeat(&syn, RUNS);
    let events = summaries(&xdp.events());
    assert_eq!(events.len(), capacity);
    for (i, event) in events.iter().enumerate() {
        assert_eq!(*event, per_syn[i % 4], "event {i}");
    }
    assert_eq!(
        xdp.counter(Counter::EventsLost) - lost,
        4 * u64::from(RUNS) - capacity as u64,
        "read + lost = 4 signals per SYN"
    );
    let s = xdp.source(src);
    assert_eq!(
        (s.probes[Probe::Syn as usize], s.slow_bits, s.fast_ports),
        (u64::from(RUNS) + 1, 1, 1)
    );
}

#[test]
fn unwritten_thresholds_count_no_windows_and_signal_nothing() {
    if !support::privileged() {
        return;
    }
    // Until the agent writes THRESHOLDS its entry is all zeros: the program
    // still counts every packet, but no window and no event.
    let mut xdp = load(None);
    let (src, dst) = (IpAddr::V4(SRC_V4), IpAddr::V4(DST_V4));
    let mut events = xdp.send(&frames::syn_v4(SRC_V4, DST_V4, 40_000, 443));
    for class in RateClass::ALL {
        events.extend(xdp.send(&frame_of(class, src, dst)));
    }
    assert_eq!(summaries(&events), []);
    let s = xdp.source(src);
    assert_eq!(
        s.probes[Probe::Syn as usize],
        2,
        "the SYN and the Syn-class frame"
    );
    assert_eq!(s.window_counts, [0; RATE_CLASSES]);
    assert_eq!((s.slow_bits, s.fast_ports, s.weighted_score), (0, 0, 0));
    assert_eq!(s.port_bitmap, [0; nta_common::sketch::BITMAP_WORDS]);
    assert_eq!(xdp.counter(Counter::EventsLost), 0);
}

/// Destination thresholds with only the SYN class's packet count set.
fn syns_only(syns: u32) -> [u32; DST_CLASSES] {
    let mut packets = [u32::MAX; DST_CLASSES];
    packets[DstClass::Syn as usize] = syns;
    packets
}

/// SYNs in a destination's current rate window.
fn window_syns(d: &DstHostStats) -> u64 {
    let syn = DstClass::Syn as usize;
    d.packets[syn] - d.window_packets[syn]
}
