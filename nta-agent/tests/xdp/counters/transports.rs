//! The transports besides TCP: UDP and DNS (on port 53 over UDP and TCP),
//! ICMP and ICMPv6, and the protocols counted as other.

use nta_common::{Counter, maps::ip_proto};

use super::{Class, Counting, Dst, Expect, Family, Src, ip_frame, run_once};
use crate::support::{
    self,
    frames::{
        self, DST_V4, DST_V6, ETH_HLEN, IPPROTO_GRE, IPPROTO_NONE, IPV4_HLEN, IPV6_HLEN, Ipv4,
        Ipv6, SRC_V4, SRC_V6,
    },
};

// ----------------------------------------------------------------- UDP and DNS

#[test]
fn udp_dns_query_and_response_count_as_dns() {
    if !support::privileged() {
        return;
    }
    let query = frames::dns_query();
    let len = ETH_HLEN + IPV4_HLEN + 8 + query.len();
    let mut xdp = Counting::load();
    xdp.pass(&frames::udp_v4(SRC_V4, DST_V4, 33_333, 53, &query));
    xdp.pass(&frames::udp_v4(DST_V4, SRC_V4, 53, 33_333, &query));
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
// --------------------------------------------------- ICMP and other transports

#[test]
fn icmp_echo_counts_as_icmp() {
    if !support::privileged() {
        return;
    }
    let echo = frames::icmpv4_echo_request(7, 1, &[0xab; 56]);
    let frame = Ipv4::new(SRC_V4, DST_V4, ip_proto::ICMP).frame(&echo);
    assert_eq!(frame.len(), 98);
    Expect::ip_packet(Family::V4, Class::Icmp, 98, SRC_V4, DST_V4).check(&run_once(&frame), "ping");
}

#[test]
fn icmpv6_echo_counts_as_icmp() {
    if !support::privileged() {
        return;
    }
    let echo = frames::icmpv6_echo_request(7, 1, &[0xab; 56]);
    let frame = Ipv6::new(SRC_V6, DST_V6, ip_proto::ICMPV6).frame(&echo);
    assert_eq!(frame.len(), 118);
    Expect::ip_packet(Family::V6, Class::Icmp, 118, SRC_V6, DST_V6)
        .check(&run_once(&frame), "ping6");
}

#[test]
fn icmp_numbers_of_the_other_family_are_other_transports() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Counting::load();
    let echo = frames::icmpv4_echo_request(7, 1, &[]);
    // Protocol 58 in IPv4 and next header 1 in IPv6 are not ICMP.
    xdp.pass(&Ipv4::new(SRC_V4, DST_V4, ip_proto::ICMPV6).frame(&echo));
    xdp.pass(&Ipv6::new(SRC_V6, DST_V6, ip_proto::ICMP).frame(&echo));
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
    let mut xdp = Counting::load();
    xdp.pass(&Ipv4::new(SRC_V4, DST_V4, IPPROTO_GRE).frame(&[0, 0, 0x08, 0x00]));
    xdp.pass(&Ipv6::new(SRC_V6, DST_V6, IPPROTO_NONE).frame(&[]));
    Expect::nothing()
        .counters(&ip_frame(Family::V4, Class::Other, 38))
        .counters(&ip_frame(Family::V6, Class::Other, 54))
        .source(SRC_V4, Src::one(Class::Other, 38).to(DST_V4, 0))
        .source(SRC_V6, Src::one(Class::Other, 54).to(DST_V6, 0))
        .dst_host(DST_V4, Dst::one(38))
        .dst_host(DST_V6, Dst::one(54))
        .check(&xdp.totals(), "GRE, IPv6 no next header");
}
