//! The network layer: the IPv4 header (options, IHL, version), the walk
//! through IPv6 extension headers, and fragments of both.

use nta_common::{Counter, maps::ip_proto};

use super::{Class, Counting, Expect, Family, sweep_v4, sweep_v6};
use crate::support::frames::{
    self, DST_V4, DST_V6, ETH_HLEN, ETH_P_IPV4, ExtHeader, IPV6_HLEN, Ipv4, Ipv6, SRC_V4, SRC_V6,
    TCP_HLEN, Tcp,
};

// ----------------------------------------------------------------- IPv4 header

#[test]
fn ipv4_options_of_every_length_are_skipped() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    for ihl in 6..=15u8 {
        let (src, dst) = sweep_v4(usize::from(ihl));
        let port = 9000 + u16::from(ihl);
        let ip = Ipv4::new(src, dst, ip_proto::TCP).option_words(usize::from(ihl) - 5);
        // Options not skipped would be read as ports: NOPs, port 257.
        let frame = ip.frame(&Tcp::syn(40_000, port).bytes());
        let len = ETH_HLEN + usize::from(ihl) * 4 + TCP_HLEN;
        assert_eq!(frame.len(), len);
        assert_eq!(frame[ETH_HLEN] & 0x0f, ihl);
        xdp.pass(&frame);
        Expect::syn(Family::V4, len, src, dst, port).check(&xdp.delta(), &format!("IHL {ihl}"));
    }
}

#[test]
fn ipv4_ihl_below_5_is_malformed() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    for ihl in 0..=4u8 {
        let frame = Ipv4::new(SRC_V4, DST_V4, ip_proto::TCP)
            .ihl(ihl)
            .frame(&Tcp::syn(40_000, 80).bytes());
        xdp.pass(&frame);
        Expect::error(54, Counter::ErrIpv4Malformed).check(&xdp.delta(), &format!("IHL {ihl}"));
    }
}

#[test]
fn ipv4_ethertype_with_another_version_is_malformed() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    for version in [0u8, 5, 6, 15] {
        let frame = Ipv4::new(SRC_V4, DST_V4, ip_proto::TCP)
            .version(version)
            .frame(&Tcp::syn(40_000, 80).bytes());
        xdp.pass(&frame);
        Expect::error(54, Counter::ErrIpv4Malformed)
            .check(&xdp.delta(), &format!("version {version}"));
    }
    // A whole IPv6 packet behind the IPv4 ethertype is no better.
    let v6 = frames::syn_v6(SRC_V6, DST_V6, 40_000, 80);
    let mislabelled = frames::ethernet(ETH_P_IPV4, &v6[ETH_HLEN..]);
    xdp.pass(&mislabelled);
    Expect::error(74, Counter::ErrIpv4Malformed)
        .check(&xdp.delta(), "IPv6 packet as ethertype IPv4");
}

// ------------------------------------------------------ IPv6 extension headers

#[test]
fn ipv6_extension_headers_are_walked_to_the_tcp_header() {
    let ip = Ipv6::new(SRC_V6, DST_V6, ip_proto::TCP)
        .ext(ExtHeader::hop_by_hop(0))
        .ext(ExtHeader::destination_options(2))
        .ext(ExtHeader::routing());
    let frame = ip.frame(&Tcp::syn(40_000, 993).bytes());
    let len = ETH_HLEN + IPV6_HLEN + 8 + 24 + 24 + TCP_HLEN;
    assert_eq!(frame.len(), len);
    Expect::syn(Family::V6, len, SRC_V6, DST_V6, 993).check_once(&frame, "hop, dst, rt");
}

#[test]
fn ipv6_chain_of_five_extension_headers_is_walked() {
    // The longest chain RFC 8200 allows: every header once, destination
    // options twice; the fragment header is a first fragment.
    let ip = Ipv6::new(SRC_V6, DST_V6, ip_proto::TCP)
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
        .fragment(len)
        .check_once(&frame, "five extension headers");
}

#[test]
fn ipv6_chain_of_six_extension_headers_is_an_error() {
    let ip = Ipv6::new(SRC_V6, DST_V6, ip_proto::TCP)
        .ext(ExtHeader::hop_by_hop(0))
        .ext(ExtHeader::destination_options(0))
        .ext(ExtHeader::routing())
        .ext(ExtHeader::fragment(0, true))
        .ext(ExtHeader::destination_options(0))
        .ext(ExtHeader::destination_options(0));
    let frame = ip.frame(&Tcp::syn(40_000, 25).bytes());
    let len = ETH_HLEN + IPV6_HLEN + 8 + 8 + 24 + 8 + 8 + 8 + TCP_HLEN;
    assert_eq!(frame.len(), len);
    Expect::error(len, Counter::ErrIpv6ExtHeaders).check_once(&frame, "six extension headers");
}

#[test]
fn ipv6_extension_header_cut_before_its_length_is_an_error() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    // The first header has only its next-header byte.
    let ip = Ipv6::new(SRC_V6, DST_V6, ip_proto::TCP).ext(ExtHeader::hop_by_hop(0));
    let frame = ip.frame(&Tcp::syn(40_000, 25).bytes());
    xdp.pass(&frame[..ETH_HLEN + IPV6_HLEN + 1]);
    Expect::error(55, Counter::ErrIpv6ExtHeaders)
        .check(&xdp.delta(), "hop-by-hop cut after 1 byte");
    // The second header is missing altogether.
    let ip = Ipv6::new(SRC_V6, DST_V6, ip_proto::TCP)
        .ext(ExtHeader::hop_by_hop(0))
        .ext(ExtHeader::routing());
    let frame = ip.frame(&Tcp::syn(40_000, 25).bytes());
    xdp.pass(&frame[..ETH_HLEN + IPV6_HLEN + 8]);
    Expect::error(62, Counter::ErrIpv6ExtHeaders).check(&xdp.delta(), "routing header missing");
    // A fragment header needs all of its 8 bytes.
    let ip = Ipv6::new(SRC_V6, DST_V6, ip_proto::TCP).ext(ExtHeader::fragment(0, true));
    let frame = ip.frame(&Tcp::syn(40_000, 25).bytes());
    xdp.pass(&frame[..ETH_HLEN + IPV6_HLEN + 7]);
    Expect::error(61, Counter::ErrIpv6ExtHeaders)
        .check(&xdp.delta(), "fragment header cut after 7 bytes");
}

#[test]
fn ipv6_extension_header_longer_than_the_frame_is_an_error() {
    // A 16-byte hop-by-hop header of which the frame holds 8: the header is
    // cut short, which `err_ipv6_ext_headers` is for; it is not a TCP
    // packet with a cut header.
    let ip = Ipv6::new(SRC_V6, DST_V6, ip_proto::TCP).ext(ExtHeader::hop_by_hop(1));
    let frame = ip.frame(&Tcp::syn(40_000, 25).bytes());
    let len = ETH_HLEN + IPV6_HLEN + 8;
    Expect::error(len, Counter::ErrIpv6ExtHeaders)
        .check_once(&frame[..len], "hop-by-hop header cut after 8 of 16 bytes");
}

#[test]
fn ipv6_ethertype_with_another_version_is_an_ipv6_error() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    for version in [0u8, 4, 7, 15] {
        let frame = Ipv6::new(SRC_V6, DST_V6, ip_proto::TCP)
            .version(version)
            .frame(&Tcp::syn(40_000, 80).bytes());
        xdp.pass(&frame);
        // `err_ipv6_truncated` covers a wrong version too.
        Expect::error(74, Counter::ErrIpv6Truncated)
            .check(&xdp.delta(), &format!("version {version}"));
    }
}

// ------------------------------------------------------------------- Fragments

#[test]
fn ipv4_first_fragment_is_a_fragment_and_its_syn_counts() {
    let syn = Tcp::syn(40_000, 80).payload(&[0; 64]);
    let frame = Ipv4::new(SRC_V4, DST_V4, ip_proto::TCP)
        .fragment(true, 0)
        .frame(&syn.bytes());
    Expect::syn(Family::V4, 118, SRC_V4, DST_V4, 80)
        .counters(&[(Counter::Fragments, 1)])
        .fragment(118)
        .check_once(&frame, "first fragment");
}

#[test]
fn ipv4_later_fragments_are_counted_but_not_parsed() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    // The payload looks like a SYN to port 80, and a DNS datagram: a later
    // fragment holds no transport header, so neither may be counted.
    let fake_syn = Tcp::syn(53, 80).bytes();
    for (i, (more, offset)) in [(true, 1u16), (true, 185), (false, 370), (false, 0x1fff)]
        .into_iter()
        .enumerate()
    {
        let (src, dst) = sweep_v4(i);
        let frame = Ipv4::new(src, dst, ip_proto::TCP)
            .fragment(more, offset)
            .frame(&fake_syn);
        xdp.pass(&frame);
        Expect::ip_packet(Family::V4, Class::Tcp, 54, src, dst)
            .counters(&[(Counter::Fragments, 1), (Counter::NonFirstFragments, 1)])
            .later_fragment(54)
            .check(&xdp.delta(), &format!("MF {more}, offset {offset}"));
    }
    let (src, dst) = sweep_v4(10);
    let frame = Ipv4::new(src, dst, ip_proto::UDP)
        .fragment(false, 3)
        .frame(&frames::udp(53, 53, &[0; 8]));
    xdp.pass(&frame);
    Expect::ip_packet(Family::V4, Class::Udp, 50, src, dst)
        .counters(&[(Counter::Fragments, 1), (Counter::NonFirstFragments, 1)])
        .later_fragment(50)
        .check(&xdp.delta(), "UDP later fragment");
}

#[test]
fn ipv4_dont_fragment_flag_is_not_a_fragment() {
    let mut ip = Ipv4::new(SRC_V4, DST_V4, ip_proto::TCP);
    ip.dont_fragment = true;
    let frame = ip.frame(&Tcp::syn(40_000, 80).bytes());
    Expect::syn(Family::V4, 54, SRC_V4, DST_V4, 80).check_once(&frame, "DF set");
}

#[test]
fn ipv6_first_and_atomic_fragments_are_fragments_and_their_syns_count() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    for (i, more) in [true, false].into_iter().enumerate() {
        let (src, dst) = sweep_v6(i);
        let frame = Ipv6::new(src, dst, ip_proto::TCP)
            .ext(ExtHeader::fragment(0, more))
            .frame(&Tcp::syn(40_000, 80).bytes());
        xdp.pass(&frame);
        Expect::syn(Family::V6, 82, src, dst, 80)
            .counters(&[(Counter::Fragments, 1)])
            .fragment(82)
            .check(&xdp.delta(), &format!("offset 0, M {more}"));
    }
}

#[test]
fn ipv6_later_fragments_are_counted_but_not_parsed() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    let fake_syn = Tcp::syn(53, 80).bytes();
    for (i, (more, offset)) in [(true, 1u16), (false, 181), (false, 0x1fff)]
        .into_iter()
        .enumerate()
    {
        let (src, dst) = sweep_v6(i);
        // Behind a hop-by-hop header, to show the walk reaches it.
        let frame = Ipv6::new(src, dst, ip_proto::TCP)
            .ext(ExtHeader::hop_by_hop(0))
            .ext(ExtHeader::fragment(offset, more))
            .frame(&fake_syn);
        xdp.pass(&frame);
        Expect::ip_packet(Family::V6, Class::Tcp, 90, src, dst)
            .counters(&[(Counter::Fragments, 1), (Counter::NonFirstFragments, 1)])
            .later_fragment(90)
            .check(&xdp.delta(), &format!("M {more}, offset {offset}"));
    }
}
