//! What the program counts per victim and per prober, and when it says so:
//! each destination class's packet and byte thresholds, the reflection
//! services' counts and the HyperLogLog of sources per destination; every
//! kind of probe in the port sketch, the host sketch and its sweep event.

use std::net::{IpAddr, Ipv4Addr};

use nta_common::{
    IpKey,
    classify::{DST_CLASSES, DstClass, Probe, REFLECTION_SERVICES, SERVICES, reflection_service},
    maps::{EventKind, Thresholds, ip_proto},
    sketch::{HLL_REGISTERS, hll_slot, host_bit},
};

use crate::support::{
    self,
    frames::{self, Ipv4, SRC_V4, Tcp, tcp_flags},
    xdp::{Xdp, quiet},
};

fn load(thresholds: &Thresholds) -> Xdp {
    let mut xdp = Xdp::load_with(nta_common::maps::feature::ALL, Some(thresholds));
    assert_eq!(xdp.events(), [], "fresh EVENTS");
    xdp
}

/// Source number `i`.
fn src(i: usize) -> Ipv4Addr {
    let i = u16::try_from(i).expect("source index");
    Ipv4Addr::new(198, 18, 20 + (i / 256) as u8, (i % 256) as u8)
}

/// Destination number `i`.
fn dst(i: usize) -> Ipv4Addr {
    let i = u8::try_from(i).expect("destination index");
    Ipv4Addr::new(198, 19, 9, i)
}

/// A frame of `class` only (besides `All`) from `src` to `dst`.
fn frame_of(class: DstClass, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    match class {
        DstClass::Syn => frames::syn_v4(src, dst, 40_000, 80),
        // A server's RST: no payload, no SYN.
        DstClass::Tcp => frames::tcp_v4(src, dst, &Tcp::rst(80, 40_000)),
        DstClass::Udp => frames::udp_v4(src, dst, 40_000, 50_000, &[0; 8]),
        DstClass::Icmp => frames::ping_v4(src, dst),
        // A later fragment has no transport header: a fragment only.
        DstClass::Fragment => Ipv4::new(src, dst, ip_proto::UDP)
            .fragment(false, 3)
            .frame(&[0; 16]),
        DstClass::All => Ipv4::new(src, dst, frames::IPPROTO_GRE).frame(&[0, 0, 0x08, 0x00]),
    }
}

/// Destination packet thresholds of `n` for `class` only.
fn packets_only(class: DstClass, n: u32) -> Thresholds {
    let mut dst_packets = [u32::MAX; DST_CLASSES];
    dst_packets[class as usize] = n;
    Thresholds {
        dst_packets,
        ..quiet()
    }
}

#[test]
fn each_destination_class_signals_once_past_its_packet_threshold() {
    if !support::privileged() {
        return;
    }
    for class in DstClass::ALL {
        let mut xdp = load(&packets_only(class, 2));
        let victim = dst(class as usize);
        for n in 1..=5 {
            // Each from a new source: the destination's count, not a source's.
            let events = xdp.send(&frame_of(class, src(n), victim));
            let want: Vec<(EventKind, u32, IpAddr, u64)> = if n == 3 {
                vec![(EventKind::DstPackets, class as u32, victim.into(), 3)]
            } else {
                vec![]
            };
            let got: Vec<_> = events
                .iter()
                .map(|e| {
                    let kind = EventKind::from_u32(e.kind).expect("known kind");
                    (kind, e.class, IpAddr::from(e.key), e.count)
                })
                .collect();
            assert_eq!(got, want, "{} packet {n}", class.name());
        }
        let d = xdp.dst_host(IpAddr::V4(victim));
        assert_eq!(d.packets[class as usize], 5, "{}", class.name());
        assert_eq!(d.packets[DstClass::All as usize], 5, "{}", class.name());
    }
}

#[test]
fn the_all_class_counts_every_kind_of_packet() {
    let Some(mut xdp) = support::privileged().then(|| load(&packets_only(DstClass::All, 4))) else {
        return;
    };
    let victim = dst(1);
    let data = Tcp::new(40_000, 443, tcp_flags::PSH | tcp_flags::ACK).payload(&[1; 10]);
    let frames = [
        frame_of(DstClass::Syn, SRC_V4, victim),
        frame_of(DstClass::Udp, SRC_V4, victim),
        frame_of(DstClass::Icmp, SRC_V4, victim),
        // A data segment is in no class but this one.
        frames::tcp_v4(SRC_V4, victim, &data),
    ];
    for frame in &frames {
        assert_eq!(xdp.send(frame), [], "below the threshold");
    }
    let events = xdp.send(&frame_of(DstClass::All, SRC_V4, victim));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].kind, events[0].class, events[0].count),
        (EventKind::DstPackets as u32, DstClass::All as u32, 5)
    );
    let d = xdp.dst_host(IpAddr::V4(victim));
    let class_counts: Vec<u64> = DstClass::ALL
        .iter()
        .map(|c| d.packets[*c as usize])
        .collect();
    assert_eq!(
        class_counts,
        [1, 0, 1, 1, 0, 5],
        "the data segment is in All only"
    );
}

#[test]
fn a_byte_threshold_fires_on_the_packet_that_passes_it() {
    if !support::privileged() {
        return;
    }
    let mut dst_bytes = [u64::MAX; DST_CLASSES];
    dst_bytes[DstClass::Udp as usize] = 100;
    let mut xdp = load(&Thresholds {
        dst_bytes,
        ..quiet()
    });
    let victim = dst(2);
    let frame = frame_of(DstClass::Udp, SRC_V4, victim);
    assert_eq!(frame.len(), 50);
    // 50 and 100 bytes are not more than 100; 150 is, and 200 is past it.
    for (n, fires) in [(1, false), (2, false), (3, true), (4, false)] {
        let events = xdp.send(&frame);
        if fires {
            assert_eq!(events.len(), 1, "packet {n}: {events:?}");
            assert_eq!(
                (events[0].kind, events[0].class, events[0].count),
                (EventKind::DstBytes as u32, DstClass::Udp as u32, 150)
            );
        } else {
            assert_eq!(events, [], "packet {n}");
        }
    }
}

/// The burst window's thresholds of 2 packets and 100 bytes for `class`
/// only, over a burst window `window_ns` long; the rate window's off.
fn burst_only(class: DstClass, window_ns: u64) -> Thresholds {
    let mut dst_burst_packets = [u32::MAX; DST_CLASSES];
    let mut dst_burst_bytes = [u32::MAX; DST_CLASSES];
    dst_burst_packets[class as usize] = 2;
    dst_burst_bytes[class as usize] = 100;
    Thresholds {
        dst_burst_packets,
        dst_burst_bytes,
        burst_window_ns: window_ns,
        ..quiet()
    }
}

#[test]
fn each_destination_class_signals_once_past_its_burst_thresholds() {
    if !support::privileged() {
        return;
    }
    for class in DstClass::ALL {
        let mut xdp = load(&burst_only(class, support::xdp::long_window_ns()));
        let victim = dst(10 + class as usize);
        let frame = frame_of(class, SRC_V4, victim);
        let len = frame.len() as u64;
        let mut got = Vec::new();
        for n in 1..=6u64 {
            for e in xdp.send(&frame) {
                let kind = EventKind::from_u32(e.kind).expect("known kind");
                got.push((n, kind, e.class, IpAddr::from(e.key), e.count));
            }
        }
        // The packet count crosses 2 at the third packet; the bytes cross
        // 100 at the packet that takes them past it.
        let bytes_at = 100 / len + 1;
        let mut want = vec![(
            3,
            EventKind::DstBurstPackets,
            class as u32,
            victim.into(),
            3,
        )];
        want.push((
            bytes_at,
            EventKind::DstBurstBytes,
            class as u32,
            victim.into(),
            bytes_at * len,
        ));
        want.sort_by_key(|w| (w.0, w.1 as u32));
        assert_eq!(got, want, "{} ({len}-byte frames)", class.name());
        let d = xdp.dst_host(IpAddr::V4(victim));
        assert_eq!(
            d.in_burst_window(class as usize),
            (6, 6 * len),
            "{}",
            class.name()
        );
    }
}

#[test]
fn a_burst_window_that_has_elapsed_counts_afresh() {
    let Some(mut xdp) = support::privileged().then(|| load(&burst_only(DstClass::Udp, 0))) else {
        return;
    };
    // A zero-length window restarts at every packet: no burst ever holds
    // more than one, and the totals still count all of them.
    let victim = dst(20);
    for n in 1..=5 {
        let events = xdp.send(&frame_of(DstClass::Udp, SRC_V4, victim));
        assert_eq!(events, [], "packet {n}");
    }
    let d = xdp.dst_host(IpAddr::V4(victim));
    assert_eq!(d.packets[DstClass::Udp as usize], 5);
    assert_eq!(d.in_burst_window(DstClass::Udp as usize), (1, 50));
    assert_eq!(d.burst_window_start_ns, d.last_seen_ns);
}

#[test]
fn udp_from_reflection_services_is_counted_per_service() {
    let Some(mut xdp) = support::privileged().then(|| load(&quiet())) else {
        return;
    };
    let victim = dst(3);
    let sends: [(u16, u64); 4] = [(123, 3), (53, 2), (11211, 1), (40_000, 2)];
    for (port, n) in sends {
        for _ in 0..n {
            xdp.pass(&frames::udp_v4(SRC_V4, victim, port, 33_000, &[0; 8]));
        }
    }
    // TCP from port 53 is no reflection.
    xdp.pass(&frames::syn_v4(SRC_V4, victim, 53, 33_000));
    let d = xdp.dst_host(IpAddr::V4(victim));
    let mut want = [0u64; SERVICES];
    for (port, n) in &sends[..3] {
        want[reflection_service(*port) as usize] = *n;
    }
    assert_eq!(d.service_packets, want);
    let named: Vec<&str> = REFLECTION_SERVICES
        .iter()
        .zip(d.service_packets)
        .filter(|(_, n)| *n > 0)
        .map(|((_, name), _)| *name)
        .collect();
    assert_eq!(named, ["DNS", "NTP", "memcached"]);
}

#[test]
fn each_destination_keeps_the_largest_rank_its_sources_offer() {
    let Some(mut xdp) = support::privileged().then(|| load(&quiet())) else {
        return;
    };
    let victim = dst(4);
    let mut want = [0u8; HLL_REGISTERS];
    for i in 0..300 {
        xdp.pass(&frame_of(DstClass::Udp, src(i), victim));
        let (index, rank) = hll_slot(&IpKey::from(IpAddr::V4(src(i))));
        want[index] = want[index].max(rank);
    }
    let d = xdp.dst_host(IpAddr::V4(victim));
    assert_eq!(d.sources, want);
    assert!(d.sources.iter().filter(|r| **r > 0).count() > 100);
}

#[test]
fn every_probe_kind_reaches_the_port_sketch_and_replies_do_not() {
    let Some(mut xdp) = support::privileged().then(|| load(&quiet())) else {
        return;
    };
    let victim = dst(5);
    let probes = [
        (Tcp::new(40_000, 21, tcp_flags::FIN), Probe::Fin),
        (Tcp::new(40_000, 22, 0), Probe::Fin),
        (
            Tcp::new(40_000, 23, tcp_flags::FIN | tcp_flags::PSH | 0x20),
            Probe::Fin,
        ),
        (Tcp::new(40_000, 25, tcp_flags::ACK), Probe::Ack),
        (
            Tcp::new(40_000, 80, tcp_flags::FIN | tcp_flags::ACK),
            Probe::Ack,
        ),
        (Tcp::syn(40_000, 443), Probe::Syn),
    ];
    for (tcp, _) in &probes {
        xdp.pass(&frames::tcp_v4(SRC_V4, victim, tcp));
    }
    xdp.pass(&frames::udp_v4(SRC_V4, victim, 40_000, 161, &[0; 8]));
    xdp.pass(&frames::ping_v4(SRC_V4, victim));
    // Replies, from a service's port to a higher one: no probes.
    xdp.pass(&frames::tcp_v4(SRC_V4, victim, &Tcp::ack(443, 40_001)));
    xdp.pass(&frames::udp_v4(SRC_V4, victim, 53, 40_002, &[0; 8]));
    let s = xdp.source(IpAddr::V4(SRC_V4));
    let count = |p: Probe| s.probes[p as usize];
    assert_eq!(
        Probe::ALL.map(count),
        [1, 3, 2, 1, 1],
        "SYN, FIN/NULL/Xmas, ACK/Maimon, UDP, echo"
    );
    // Seven ports (the ping has none); the sketch may fold two into a bit.
    assert!((6..=7).contains(&s.slow_bits), "{}", s.slow_bits);
    assert_eq!(s.host_bits, 1, "one host probed");
}

#[test]
fn sweep_fires_once_when_a_source_probes_more_hosts_than_its_threshold() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(&Thresholds {
        sweep_bits: 3,
        ..quiet()
    });
    // Hosts whose bits differ, so each is new to the sketch.
    let mut seen = std::collections::BTreeSet::new();
    let hosts: Vec<Ipv4Addr> = (1..=250)
        .map(dst)
        .filter(|h| seen.insert(host_bit(&IpKey::from(IpAddr::V4(*h)))))
        .take(6)
        .collect();
    for (n, host) in hosts.iter().enumerate() {
        let events = xdp.send(&frames::ping_v4(SRC_V4, *host));
        if n + 1 == 4 {
            assert_eq!(events.len(), 1, "host {}: {events:?}", n + 1);
            assert_eq!(
                (events[0].kind, IpAddr::from(events[0].key), events[0].count),
                (EventKind::Sweep as u32, IpAddr::V4(SRC_V4), 4)
            );
        } else {
            assert_eq!(events, [], "host {}", n + 1);
        }
    }
    // Pinging a host again is nothing new.
    assert_eq!(xdp.send(&frames::ping_v4(SRC_V4, hosts[0])), []);
    assert_eq!(xdp.source(IpAddr::V4(SRC_V4)).host_bits, 6);
}
