//! TCP: a SYN in every map, every flag and what makes a bare ACK, and the
//! header's options and data offset.

use std::net::IpAddr;

use nta_common::{
    Counter, DstHostStats, IpKey, SourceStats,
    classify::{DST_CLASSES, DstClass, PROBES, Probe},
    maps::{RATE_CLASSES, RateClass, SERVICES, ip_proto},
    sketch::{BITMAP_WORDS, HLL_REGISTERS, bitmap_slot, hll_slot, host_bit, port_bit},
};

use super::{
    Class, Counting, Dst, Expect, Family, Src, ip_frame, ip_frames, run_once, sweep_v4, sweep_v6,
};
use crate::support::{
    frames::{self, DST_V4, DST_V6, ExtHeader, Ipv6, SRC_V4, SRC_V6, Tcp, tcp_flags},
    xdp::assert_counters,
};

// ---------------------------------------------------------- A SYN in every map

#[test]
fn ipv4_tcp_syn_is_counted_in_every_map() {
    let frame = frames::syn_v4(SRC_V4, DST_V4, 40_000, 443);
    assert_eq!(frame.len(), 54);
    let Some(counts) = run_once(&frame) else {
        return;
    };

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
    let (word, mask) = bitmap_slot(port_bit(443));
    let mut port_bitmap = [0u64; BITMAP_WORDS];
    port_bitmap[word] = mask;
    let (word, mask) = bitmap_slot(host_bit(&IpKey::from(IpAddr::V4(DST_V4))));
    let mut host_bitmap = [0u64; BITMAP_WORDS];
    host_bitmap[word] = mask;
    let mut probes = [0; PROBES];
    probes[Probe::Syn as usize] = 1;
    let mut window_counts = [0; RATE_CLASSES];
    window_counts[RateClass::Syn as usize] = 1;
    assert_eq!(
        s,
        SourceStats {
            key: src,
            other_packets: 0,
            bytes: 54,
            // The SYN is counted as a probe, not again as TCP.
            tcp_rest: 0,
            udp_rest: 0,
            icmp_rest: 0,
            probes,
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
            // The SYN is a probe of the host too.
            host_bitmap,
            host_bits: 1,
        }
    );
    assert_eq!(s.port_bitmap.iter().map(|w| w.count_ones()).sum::<u32>(), 1);

    let dst = IpKey::from(IpAddr::V4(DST_V4));
    assert_eq!(counts.dst_hosts.keys().collect::<Vec<_>>(), [&dst]);
    let d = counts.dst_hosts[&dst];
    assert!(d.last_seen_ns > 0);
    let mut packets = [0; DST_CLASSES];
    packets[DstClass::Syn as usize] = 1;
    packets[DstClass::All as usize] = 1;
    let (register, rank) = hll_slot(&IpKey::from(IpAddr::V4(SRC_V4)));
    let mut sources = [0; HLL_REGISTERS];
    sources[register] = rank;
    assert_eq!(
        d,
        DstHostStats {
            key: dst,
            packets,
            bytes: packets.map(|n| n * 54),
            // The windows count from zero: their bases are zero.
            window_packets: [0; DST_CLASSES],
            window_bytes: [0; DST_CLASSES],
            last_seen_ns: d.last_seen_ns,
            // The SYN opens the destination's windows.
            rate_window_start_ns: d.last_seen_ns,
            sketch_window_start_ns: d.last_seen_ns,
            service_packets: [0; SERVICES],
            sources,
            burst_packets: [0; DST_CLASSES],
            burst_bytes: [0; DST_CLASSES],
            burst_window_start_ns: d.last_seen_ns,
        }
    );

    assert_eq!(counts.syn_ports[443], 1);
    assert_eq!(counts.syn_ports.iter().sum::<u64>(), 1);

    // And the same through the helpers the other tests use.
    Expect::syn(Family::V4, 54, SRC_V4, DST_V4, 443).check(&counts, "IPv4 SYN");
}

#[test]
fn ipv6_tcp_syn_is_counted_in_every_map() {
    let frame = frames::syn_v6(SRC_V6, DST_V6, 40_000, 22);
    assert_eq!(frame.len(), 74);
    let Some(counts) = run_once(&frame) else {
        return;
    };

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
    assert_eq!(
        (
            s.packets(),
            s.bytes,
            s.tcp_packets(),
            s.probes[Probe::Syn as usize]
        ),
        (1, 74, 1, 1)
    );
    assert_eq!((s.slow_bits, s.fast_ports, s.weighted_score), (1, 1, 3));
    assert_eq!(s.window_counts[RateClass::Syn as usize], 1);
    assert_eq!(
        (IpAddr::from(s.last_dst), s.last_dst_port),
        (IpAddr::V6(DST_V6), 22)
    );
    let (word, mask) = bitmap_slot(port_bit(22));
    assert_eq!(s.port_bitmap[word], mask);
    assert!(s.first_seen_ns > 0 && s.last_seen_ns >= s.first_seen_ns);
    assert_eq!(
        counts.dst_hosts[&IpKey::from(IpAddr::V6(DST_V6))].packets[DstClass::Syn as usize],
        1
    );
    assert_eq!(counts.syn_ports[22], 1);
    assert_eq!(counts.syn_ports.iter().sum::<u64>(), 1);

    Expect::syn(Family::V6, 74, SRC_V6, DST_V6, 22).check(&counts, "IPv6 SYN");
}

// ----------------------------------------------------------------------- Flags

#[test]
fn syn_ack_is_counted_as_syn_ack_and_not_as_a_syn() {
    let syn_ack = Tcp::new(443, 40_000, tcp_flags::SYN | tcp_flags::ACK);
    Expect::ip_packet(Family::V4, Class::Tcp, 54, DST_V4, SRC_V4)
        .dst_port(40_000)
        .counters(&[(Counter::TcpSynAck, 1)])
        .check_once(&frames::tcp_v4(DST_V4, SRC_V4, &syn_ack), "SYN-ACK");
}

#[test]
fn rst_is_counted_globally_and_for_its_source() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    xdp.pass(&frames::tcp_v4(
        DST_V4,
        SRC_V4,
        &Tcp::new(443, 40_000, tcp_flags::RST),
    ));
    xdp.pass(&frames::tcp_v6(
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
        .dst_host(SRC_V4, Dst::one(Some(DstClass::Tcp), 54, DST_V4))
        .dst_host(SRC_V6, Dst::one(Some(DstClass::Tcp), 74, DST_V6))
        .check(&xdp.totals(), "RST and RST-ACK");
}

#[test]
fn fin_is_counted() {
    let fin_ack = Tcp::new(40_000, 443, tcp_flags::FIN | tcp_flags::ACK);
    Expect::ip_packet(Family::V4, Class::Tcp, 54, SRC_V4, DST_V4)
        .dst_port(443)
        .probe(Probe::Ack, 443)
        .counters(&[(Counter::TcpFin, 1)])
        .check_once(&frames::tcp_v4(SRC_V4, DST_V4, &fin_ack), "FIN-ACK");
}

#[test]
fn plain_ack_with_data_counts_only_as_tcp() {
    let segment = Tcp::new(40_000, 443, tcp_flags::PSH | tcp_flags::ACK).payload(&[0x17; 100]);
    // Not a bare ACK: it carries data.
    Expect::ip_packet(Family::V4, Class::Tcp, 154, SRC_V4, DST_V4)
        .dst_port(443)
        .data_segment()
        .check_once(&frames::tcp_v4(SRC_V4, DST_V4, &segment), "PSH-ACK");
}

#[test]
fn every_flag_of_a_christmas_tree_segment_is_counted() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    // SYN+FIN without ACK is still a SYN (and a FIN).
    xdp.pass(&frames::tcp_v4(
        SRC_V4,
        DST_V4,
        &Tcp::new(1, 8080, tcp_flags::SYN | tcp_flags::FIN),
    ));
    // With ACK, SYN is a SYN-ACK; RST and FIN count on their own.
    let all = tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST | tcp_flags::FIN | tcp_flags::PSH;
    xdp.pass(&frames::tcp_v4(SRC_V4, DST_V4, &Tcp::new(1, 8081, all)));
    Expect::nothing()
        .counters(&ip_frames(2, Family::V4, Class::Tcp, 54))
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
                hosts: vec![DST_V4.into()],
                ..Src::default().to(DST_V4, 8081)
            },
        )
        .dst_host(
            DST_V4,
            Dst::syns(1, 54, SRC_V4).add(Some(DstClass::Tcp), 1, 54, SRC_V4),
        )
        .syn_port(8080, 1)
        .check(&xdp.totals(), "SYN-FIN then SYN-ACK-RST-FIN-PSH");
}

#[test]
fn syn_rst_counts_as_a_rst_for_its_source_and_as_a_syn_elsewhere() {
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
                hosts: vec![DST_V4.into()],
                ..Src::one(Class::Tcp, 54).to(DST_V4, 80)
            },
        )
        .dst_host(DST_V4, Dst::syns(1, 54, SRC_V4))
        .syn_port(80, 1)
        .check_once(&frame, "SYN-RST");
}

// ------------------------------------------------------------------- Bare ACKs

#[test]
fn bare_ack_without_payload_counts_as_a_bare_ack() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };

    let (src, dst) = sweep_v4(1);
    xdp.pass(&frames::tcp_v4(src, dst, &Tcp::ack(40_000, 443)));
    let counts = xdp.delta();
    let s = counts.sources[&IpKey::from(IpAddr::V4(src))];
    assert_eq!((s.bare_acks, s.window_counts), (1, [0, 0, 0, 0, 1]));
    assert_eq!(RateClass::BareAck as usize, 4);
    Expect::bare_ack(Family::V4, 54, src, dst, 443).check(&counts, "ACK");

    // Ethernet padding follows the IP packet: the IP length says no payload.
    let (src, dst) = sweep_v4(2);
    let padded = frames::pad_to_minimum(frames::tcp_v4(src, dst, &Tcp::ack(40_000, 443)));
    assert_eq!(padded.len(), frames::ETH_ZLEN);
    xdp.pass(&padded);
    Expect::bare_ack(Family::V4, 60, src, dst, 443).check(&xdp.delta(), "ACK padded to 60 bytes");

    // Options are header, not payload: what Linux sends (timestamps).
    let (src, dst) = sweep_v4(3);
    let ack = Tcp::ack(40_000, 443).timestamps();
    assert_eq!(ack.header_len(), 32);
    xdp.pass(&frames::tcp_v4(src, dst, &ack));
    Expect::bare_ack(Family::V4, 66, src, dst, 443).check(&xdp.delta(), "ACK with timestamps");

    // PSH (and URG, ECE, CWR) do not matter: only SYN, RST, FIN and ACK do.
    let (src, dst) = sweep_v4(4);
    let flags = tcp_flags::ACK | tcp_flags::PSH | 0x20 | 0x40 | 0x80;
    xdp.pass(&frames::tcp_v4(src, dst, &Tcp::new(40_000, 443, flags)));
    Expect::bare_ack(Family::V4, 54, src, dst, 443).check(&xdp.delta(), "ACK-PSH-URG-ECE-CWR");

    // IPv6: the payload length covers the extension headers too.
    let (src, dst) = sweep_v6(5);
    let frame = Ipv6::new(src, dst, ip_proto::TCP)
        .ext(ExtHeader::hop_by_hop(1))
        .frame(&Tcp::ack(40_000, 22).timestamps().bytes());
    assert_eq!(frame.len(), 14 + 40 + 16 + 32);
    xdp.pass(&frame);
    Expect::bare_ack(Family::V6, 102, src, dst, 22)
        .check(&xdp.delta(), "IPv6 ACK behind hop-by-hop");
}

#[test]
fn ack_with_payload_or_other_flags_is_not_a_bare_ack() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };

    // One byte of data is data.
    let (src, dst) = sweep_v4(1);
    xdp.pass(&frames::tcp_v4(
        src,
        dst,
        &Tcp::ack(40_000, 443).payload(&[0]),
    ));
    Expect::ip_packet(Family::V4, Class::Tcp, 55, src, dst)
        .dst_port(443)
        .data_segment()
        .check(&xdp.delta(), "ACK with 1 byte");

    let (src, dst) = sweep_v4(2);
    let segment = Tcp::new(40_000, 443, tcp_flags::PSH | tcp_flags::ACK).payload(&[0x17; 100]);
    xdp.pass(&frames::tcp_v4(src, dst, &segment));
    Expect::ip_packet(Family::V4, Class::Tcp, 154, src, dst)
        .dst_port(443)
        .data_segment()
        .check(&xdp.delta(), "PSH-ACK with 100 bytes");

    // The payload is what the IP header says, even when the frame holds
    // less of it (a frame cut short by a capture length).
    let (src, dst) = sweep_v4(3);
    let frame = frames::tcp_v4(src, dst, &Tcp::ack(40_000, 443).payload(&[0; 10]));
    xdp.pass(&frame[..54]);
    Expect::ip_packet(Family::V4, Class::Tcp, 54, src, dst)
        .dst_port(443)
        .data_segment()
        .check(&xdp.delta(), "ACK whose 10 bytes of data are cut off");

    // ACK with FIN closes; with RST it is a RST; with SYN a SYN-ACK.
    let (src, dst) = sweep_v4(4);
    xdp.pass(&frames::tcp_v4(
        src,
        dst,
        &Tcp::new(40_000, 443, tcp_flags::ACK | tcp_flags::FIN),
    ));
    Expect::ip_packet(Family::V4, Class::Tcp, 54, src, dst)
        .dst_port(443)
        .probe(Probe::Ack, 443)
        .counters(&[(Counter::TcpFin, 1)])
        .check(&xdp.delta(), "FIN-ACK");
    let (src, dst) = sweep_v4(5);
    xdp.pass(&frames::tcp_v4(
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
        .dst_host(dst, Dst::one(Some(DstClass::Tcp), 54, src))
        .check(&xdp.delta(), "RST-ACK");
    let (src, dst) = sweep_v4(6);
    xdp.pass(&frames::tcp_v4(
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
    xdp.pass(&frames::tcp_v4(src, dst, &Tcp::new(40_000, 443, 0)));
    Expect::ip_packet(Family::V4, Class::Tcp, 54, src, dst)
        .dst_port(443)
        .probe(Probe::Fin, 443)
        .check(&xdp.delta(), "no flags");

    let (src, dst) = sweep_v6(8);
    xdp.pass(&frames::tcp_v6(
        src,
        dst,
        &Tcp::ack(40_000, 22).payload(&[0]),
    ));
    Expect::ip_packet(Family::V6, Class::Tcp, 75, src, dst)
        .dst_port(22)
        .data_segment()
        .check(&xdp.delta(), "IPv6 ACK with 1 byte");
}

// ------------------------------------------------------------------ The header

#[test]
fn tcp_options_are_skipped_and_the_syn_counted() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    // What Linux sends: data offset 10.
    let (src, dst) = sweep_v4(1);
    let syn = Tcp::syn(40_000, 443).syn_options();
    assert_eq!(syn.header_len(), 40);
    xdp.pass(&frames::tcp_v4(src, dst, &syn));
    Expect::syn(Family::V4, 74, src, dst, 443).check(&xdp.delta(), "data offset 10");
    // The largest header: data offset 15, 40 bytes of options.
    let (src, dst) = sweep_v4(2);
    let syn = Tcp::syn(40_000, 444).data_offset(15).payload(&[1; 40]);
    xdp.pass(&frames::tcp_v4(src, dst, &syn));
    Expect::syn(Family::V4, 94, src, dst, 444).check(&xdp.delta(), "data offset 15");
}

#[test]
fn tcp_data_offset_below_5_or_past_the_frame_is_truncated() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    for (i, offset) in [0u8, 1, 4, 6, 15].into_iter().enumerate() {
        // 20 bytes of TCP header, whatever the data offset says.
        let (src, dst) = sweep_v4(i);
        let syn = Tcp::syn(40_000, 80).data_offset(offset);
        xdp.pass(&frames::tcp_v4(src, dst, &syn));
        Expect::ip_packet(Family::V4, Class::Tcp, 54, src, dst)
            .counters(&[(Counter::ErrTcpTruncated, 1)])
            .no_dst_class()
            .check(&xdp.delta(), &format!("data offset {offset}"));
    }
}
