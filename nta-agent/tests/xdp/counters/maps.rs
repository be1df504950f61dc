//! The per-source and per-port maps: one `SOURCES` entry a source with
//! its latest destination and port, what the rate window counts, the
//! port-scan windows and their sketch of ports, and the SYN counters of
//! `SYN_PORTS`.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use nta_common::{
    Counter, IpKey, SourceStats,
    classify::{DST_CLASSES, DstClass, Probe},
    maps::{RATE_CLASSES, RateClass, Thresholds, feature, ip_proto},
    sketch::port_bit as port_sketch_bit,
};

use super::{Class, Counting, Dst, Expect, Family, Src, ip_frame, ip_frames, probes, sketch};
use crate::support::{
    self,
    frames::{self, DST_V4, DST_V6, IPPROTO_GRE, Ipv4, SRC_V4, SRC_V6, Tcp, tcp_flags},
    xdp::{Xdp, long_window_ns, pin_to_cpu, pin_to_one_cpu, quiet},
};

// --------------------------------------------------------------------- Sources

#[test]
fn last_dst_and_last_dst_port_follow_the_latest_packet() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
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
            Ipv4::new(SRC_V4, d(2), ip_proto::TCP)
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
        xdp.pass(frame);
        let s = xdp.source(src);
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
                // UDP to a lower port, the SYN, the ping and the bare ACK
                // to a lower port are probes; the SYN-ACK is not.
                probes: probes(&[(Probe::Udp, 1), (Probe::Ack, 1), (Probe::Echo, 1)]),
                window: vec![123, 443, 22],
                hosts: vec![d(1).into(), d(2).into(), d(3).into(), d(1).into()],
                ..Src::default().to(d(1), 8443)
            },
        )
        .dst_host(
            d(1),
            Dst::one(Some(DstClass::Udp), 50, src).add(Some(DstClass::Tcp), 2, 54, src),
        )
        .dst_host(
            d(2),
            Dst::syns(1, 54, src).add(None, 1, 54, src).fragments(1, 54),
        )
        .dst_host(
            d(3),
            Dst::one(Some(DstClass::Icmp), 50, src).add(None, 1, 38, src),
        )
        .dst_host(d(4), Dst::one(None, 38, src))
        .syn_port(443, 1)
        .check(&xdp.totals(), "eight packets to four destinations");

    // IPv6 the same way.
    xdp.pass(&frames::udp_v6(SRC_V6, DST_V6, 33_333, 123, &[]));
    let s = xdp.source(IpAddr::V6(SRC_V6));
    assert_eq!(
        (IpAddr::from(s.last_dst), s.last_dst_port),
        (IpAddr::V6(DST_V6), 123)
    );
    let other = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 9);
    xdp.pass(&frames::ping_v6(SRC_V6, other));
    let s = xdp.source(IpAddr::V6(SRC_V6));
    assert_eq!(
        (IpAddr::from(s.last_dst), s.last_dst_port),
        (IpAddr::V6(other), 0)
    );
}

#[test]
fn packets_in_no_class_leave_the_rate_window_alone() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    // Only SYN, UDP, ICMP, RST and bare ACK are rate classes: anything else
    // from a source must neither open its rate window nor count in it.
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
            Ipv4::new(SRC_V4, DST_V4, ip_proto::TCP)
                .fragment(false, 8)
                .frame(&Tcp::syn(40_000, 80).bytes()),
        ),
        (
            "TCP header cut short",
            frames::syn_v4(SRC_V4, DST_V4, 40_000, 80)[..40].to_vec(),
        ),
    ];
    for (what, frame) in &frames {
        xdp.pass(frame);
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
fn syns_from_many_sources_get_one_entry_each() {
    const N: u16 = 200;
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    let mut expect = Expect::nothing();
    let mut dst = Dst::default();
    for i in 0..N {
        let src = Ipv4Addr::new(198, 18, 2 + (i / 256) as u8, (i % 256) as u8);
        let port = 1000 + i;
        xdp.pass(&frames::syn_v4(src, DST_V4, 40_000, port));
        expect = expect
            .counters(&ip_frame(Family::V4, Class::Tcp, 54))
            .counters(&[(Counter::TcpSyn, 1)])
            .source(src, Src::syn(54, DST_V4, port))
            .syn_port(port, 1);
        dst = dst.add(Some(DstClass::Syn), 1, 54, src);
    }
    let counts = xdp.totals();
    assert_eq!(counts.sources.len(), usize::from(N));
    expect
        .dst_host(DST_V4, dst)
        .check(&counts, "SYNs from many sources");
}
/// Past `new_sources_per_cpu` new sources in a second, a CPU inserts no
/// more until the next: the rest are counted as skipped, and everywhere
/// but in `SOURCES`.
#[test]
fn new_sources_above_the_rate_limit_are_counted_not_inserted() {
    if !support::privileged() {
        return;
    }
    // The window is per CPU.
    pin_to_one_cpu();
    let thresholds = Thresholds {
        new_sources_per_cpu: 5,
        ..quiet()
    };
    let mut xdp = Xdp::load_with(feature::ALL, Some(&thresholds));
    let source = |i: u8| Ipv4Addr::new(198, 18, 3, i);
    for i in 0..10 {
        xdp.pass(&frames::syn_v4(source(i), DST_V4, 40_000, 80));
    }
    // A source already in the table is counted whatever the rate.
    xdp.pass(&frames::syn_v4(source(0), DST_V4, 40_001, 80));
    let held: BTreeSet<IpKey> = xdp.snapshot().sources.keys().copied().collect();
    let first: BTreeSet<IpKey> = (0..5).map(|i| IpKey::from(IpAddr::V4(source(i)))).collect();
    assert_eq!(held, first, "the first five sources, and only them");
    assert_eq!(xdp.source(source(0)).packets(), 2);
    assert_eq!(xdp.counter(Counter::SourcesSkipped), 5);
    // The skipped SYNs count everywhere else.
    assert_eq!(xdp.counter(Counter::TcpSyn), 11);
    assert_eq!(xdp.dst_host(DST_V4).packets[DstClass::Syn as usize], 11);

    // The next second, new sources are inserted again.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    xdp.pass(&frames::syn_v4(source(9), DST_V4, 40_000, 80));
    assert_eq!(xdp.source(source(9)).packets(), 1);
    assert_eq!(xdp.counter(Counter::SourcesSkipped), 5);
}

// --------------------------------------------- Port-scan windows and SYN ports

/// When each of a source's windows started: rate, slow, fast, weighted.
fn window_starts(s: &SourceStats) -> [u64; 4] {
    [
        s.rate_window_start_ns,
        s.slow_window_start_ns,
        s.fast_window_start_ns,
        s.weighted_window_start_ns,
    ]
}

#[test]
fn port_scan_window_counts_distinct_sketch_bits() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    // quiet(): windows far longer than the test, so all SYNs fall in one.
    let ports: Vec<u16> = (0..100).map(|i| 20_000 + i * 7).collect();
    for port in &ports {
        xdp.pass(&frames::syn_v4(SRC_V4, DST_V4, 40_000, *port));
    }
    let counts = xdp.totals();
    let s = counts.sources[&IpKey::from(IpAddr::V4(SRC_V4))];
    let bits: BTreeSet<u32> = ports.iter().map(|p| port_sketch_bit(*p)).collect();
    let bits = bits.len() as u64;
    // The hash spreads a run of ports as if at random: a few share a bit.
    assert!((85..100).contains(&bits), "{bits} bits for 100 ports");
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
        (
            s.window_counts[RateClass::Syn as usize],
            s.probes[Probe::Syn as usize]
        ),
        (100, 100)
    );
    assert_eq!(
        window_starts(&s),
        [s.first_seen_ns; 4],
        "one window of each kind"
    );
    Expect::syns(Family::V4, 54, SRC_V4, DST_V4, &ports).check(&counts, "100 ports");
}

#[test]
fn ports_sharing_a_sketch_bit_count_once_and_repeats_count_per_port() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    // A privileged port and an unprivileged one that hash to the same bit.
    let first = 443u16;
    let twin = (1024..=u16::MAX)
        .find(|p| port_sketch_bit(*p) == port_sketch_bit(first))
        .expect("512 bits for 65 536 ports: every bit is shared");
    let other_src = Ipv4Addr::new(198, 18, 0, 9);
    for port in [first, twin, first] {
        xdp.pass(&frames::syn_v4(SRC_V4, DST_V4, 40_000, port));
    }
    // The same ports the other way round: the port that sets the bit is the
    // one that weighs, so here the score is 1, not 3.
    for port in [twin, first] {
        xdp.pass(&frames::syn_v4(other_src, DST_V4, 40_000, port));
    }
    let counts = xdp.totals();
    let s = counts.sources[&IpKey::from(IpAddr::V4(SRC_V4))];
    assert_eq!(
        (
            s.slow_bits,
            s.fast_ports,
            s.weighted_score,
            s.probes[Probe::Syn as usize]
        ),
        (1, 1, 3, 3)
    );
    let o = counts.sources[&IpKey::from(IpAddr::V4(other_src))];
    assert_eq!(
        (
            o.slow_bits,
            o.fast_ports,
            o.weighted_score,
            o.probes[Probe::Syn as usize]
        ),
        (1, 1, 1, 2)
    );
    Expect::nothing()
        .counters(&ip_frames(5, Family::V4, Class::Tcp, 54))
        .counters(&[(Counter::TcpSyn, 5)])
        .source(SRC_V4, Src::syns(54, DST_V4, &[first, twin, first]))
        .source(other_src, Src::syns(54, DST_V4, &[twin, first]))
        .dst_host(
            DST_V4,
            Dst::syns(3, 54, SRC_V4).add(Some(DstClass::Syn), 2, 54, other_src),
        )
        .syn_port(first, 3)
        .syn_port(twin, 2)
        .check(&counts, "ports sharing a sketch bit");
}

#[test]
fn port_scan_window_restarts_when_it_has_elapsed() {
    // A zero-length window has always elapsed: each SYN starts a new one of
    // every kind, so only the last SYN is in any window.
    let Some(mut xdp) = Counting::privileged_with(&Thresholds {
        rate_window_ns: 0,
        fast_window_ns: 0,
        weighted_window_ns: 0,
        slow_window_ns: 0,
        burst_window_ns: 0,
        ..Thresholds::DISABLED
    }) else {
        return;
    };
    for port in [1u16, 2, 3] {
        xdp.pass(&frames::syn_v4(SRC_V4, DST_V4, 40_000, port));
    }
    let counts = xdp.totals();
    let s = counts.sources[&IpKey::from(IpAddr::V4(SRC_V4))];
    assert_eq!(
        window_starts(&s),
        [s.last_seen_ns; 4],
        "the last SYN opened every window"
    );
    let d = counts.dst_hosts[&IpKey::from(IpAddr::V4(DST_V4))];
    assert_eq!(
        d.rate_window_start_ns, d.last_seen_ns,
        "the last SYN opened the destination's window"
    );
    let mut window_counts = [0; RATE_CLASSES];
    window_counts[RateClass::Syn as usize] = 1;
    Expect::nothing()
        .counters(&ip_frames(3, Family::V4, Class::Tcp, 54))
        .counters(&[(Counter::TcpSyn, 3)])
        .source(
            SRC_V4,
            Src {
                window: vec![3],
                hosts: vec![DST_V4.into()],
                window_counts: Some(window_counts),
                ..Src::syns(54, DST_V4, &[1, 2, 3])
            },
        )
        .dst_host(DST_V4, {
            // The last SYN's window starts after the first two.
            let mut base = [(0, 0); DST_CLASSES];
            base[DstClass::Syn as usize] = (2, 108);
            base[DstClass::All as usize] = (2, 108);
            Dst {
                window: Some(base),
                ..Dst::syns(3, 54, SRC_V4)
            }
        })
        .syn_port(1, 1)
        .syn_port(2, 1)
        .syn_port(3, 1)
        .check(&counts, "windows of 0 ns");
}

#[test]
fn fast_and_weighted_windows_count_only_ports_new_to_the_slow_window() {
    // The fast and weighted windows restart at every SYN; the slow window,
    // and so the bitmap, lasts. A port is new only when it sets its bit, so
    // a port seen in an earlier fast window is not new in a later one.
    let long = long_window_ns();
    let Some(mut xdp) = Counting::privileged_with(&Thresholds {
        rate_window_ns: long,
        slow_window_ns: long,
        fast_window_ns: 0,
        weighted_window_ns: 0,
        ..Thresholds::DISABLED
    }) else {
        return;
    };
    let src = IpAddr::V4(SRC_V4);
    let (a, b) = (22u16, 8080u16);
    assert_ne!(port_sketch_bit(a), port_sketch_bit(b));
    let mut stats = |port: u16| {
        xdp.pass(&frames::syn_v4(SRC_V4, DST_V4, 40_000, port));
        let s = xdp.source(src);
        (s.slow_bits, s.fast_ports, s.weighted_score)
    };
    assert_eq!(stats(a), (1, 1, 3), "{a}: new");
    assert_eq!(stats(a), (1, 0, 0), "{a} again: not new");
    assert_eq!(stats(b), (2, 1, 1), "{b}: new");
    assert_eq!(stats(a), (2, 0, 0), "{a} a third time: still not new");
    let counts = xdp.totals();
    Expect::syns(Family::V4, 54, SRC_V4, DST_V4, &[a, a, b, a])
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
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    // Ports 1023/1024 straddle the first SYN_PORTS chunk boundary, and the
    // weight of a port in the weighted score.
    let ports = [0u16, 1023, 1024, 65_535];
    for port in ports {
        xdp.pass(&frames::syn_v6(SRC_V6, DST_V6, 40_000, port));
    }
    Expect::syns(Family::V6, 74, SRC_V6, DST_V6, &ports).check(&xdp.totals(), "edge ports");
}

#[test]
fn syn_ports_since_a_snapshot_sums_the_cpus_and_names_the_ports_that_grew() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    let syns = |xdp: &mut Counting, port: u16, n: u16| {
        for i in 0..n {
            xdp.pass(&frames::syn_v4(SRC_V4, DST_V4, 40_000 + i, port));
        }
    };
    pin_to_cpu(0);
    syns(&mut xdp, 22, 5);
    let before = xdp.snapshot();
    // Every CPU's copy counts: the read sums them.
    for cpu in 0..cpus {
        pin_to_cpu(cpu);
        syns(&mut xdp, 80, 3);
        syns(&mut xdp, 1023, 1);
        syns(&mut xdp, 65_535, 2);
    }
    pin_to_one_cpu();
    syns(&mut xdp, 1024, 3);
    let n = cpus as u64;
    let grown = xdp
        .sensor
        .syn_ports_since(&before.syn_ports)
        .expect("SYN_PORTS");
    // Busiest first, ties to the lower port; port 22 did not grow.
    let mut expected = vec![(80, 3 * n), (1024, 3), (65_535, 2 * n), (1023, n)];
    expected.sort_by(|(pa, a), (pb, b)| b.cmp(a).then(pa.cmp(pb)));
    assert_eq!(grown, expected, "{cpus} CPUs");
    let after = xdp.snapshot();
    assert_eq!(after.syn_ports[22], 5);
    assert_eq!(
        grown,
        nta_agent::traffic::port_growth(&before.syn_ports, &after.syn_ports),
        "the same as two snapshots' difference"
    );
    assert_eq!(
        xdp.sensor
            .syn_ports_since(&after.syn_ports)
            .expect("SYN_PORTS"),
        []
    );
}
