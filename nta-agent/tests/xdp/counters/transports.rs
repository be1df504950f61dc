//! The transports besides TCP: UDP and DNS (on port 53 over UDP and TCP),
//! ICMP and ICMPv6, and the protocols counted as other.

use nta_common::{
    Counter,
    classify::{DstClass, Probe},
    maps::ip_proto,
};

use super::{Class, Counting, Dst, Expect, Family, Src, ip_frames};
use crate::support::frames::{
    self, DST_V4, DST_V6, ETH_HLEN, IPPROTO_GRE, IPPROTO_NONE, IPV4_HLEN, IPV6_HLEN, Ipv4, Ipv6,
    SRC_V4, SRC_V6,
};

// ----------------------------------------------------------------- UDP and DNS

#[test]
fn udp_dns_query_and_response_count_as_dns() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    let query = frames::dns_query();
    let len = ETH_HLEN + IPV4_HLEN + 8 + query.len();
    xdp.pass(&frames::udp_v4(SRC_V4, DST_V4, 33_333, 53, &query));
    xdp.pass(&frames::udp_v4(DST_V4, SRC_V4, 53, 33_333, &query));
    Expect::nothing()
        .counters(&ip_frames(2, Family::V4, Class::Udp, len))
        .counters(&[(Counter::Dns, 2)])
        .source(
            SRC_V4,
            Src::one(Class::Udp, len)
                .to(DST_V4, 53)
                .probe(Probe::Udp, 53),
        )
        .source(DST_V4, Src::one(Class::Udp, len).to(SRC_V4, 33_333))
        // The query goes to a lower port: a UDP probe; the answer comes
        // from DNS, a reflection service.
        .dst_host(DST_V4, Dst::one(Some(DstClass::Udp), len, SRC_V4))
        .dst_host(
            SRC_V4,
            Dst::one(Some(DstClass::Udp), len, DST_V4).service(53, 1),
        )
        .check(&xdp.totals(), "DNS query and response");
}

#[test]
fn udp_dns_over_ipv6_counts_as_dns() {
    let query = frames::dns_query();
    let len = ETH_HLEN + IPV6_HLEN + 8 + query.len();
    Expect::ip_packet(Family::V6, Class::Udp, len, SRC_V6, DST_V6)
        .dst_port(53)
        .probe(Probe::Udp, 53)
        .counters(&[(Counter::Dns, 1)])
        .check_once(
            &frames::udp_v6(SRC_V6, DST_V6, 33_333, 53, &query),
            "DNS query over IPv6",
        );
}

#[test]
fn udp_on_other_ports_is_not_dns() {
    Expect::ip_packet(Family::V4, Class::Udp, 14 + 20 + 8 + 48, SRC_V4, DST_V4)
        .dst_port(123)
        .probe(Probe::Udp, 123)
        // From mDNS's port: a reflection service's.
        .with_dst(|dst| dst.service(5353, 1))
        .check_once(&frames::udp_v4(SRC_V4, DST_V4, 5353, 123, &[0; 48]), "NTP");
}

#[test]
fn tcp_to_port_53_counts_as_dns() {
    Expect::syn(Family::V4, 54, SRC_V4, DST_V4, 53)
        .counters(&[(Counter::Dns, 1)])
        .check_once(&frames::syn_v4(SRC_V4, DST_V4, 40_000, 53), "SYN to TCP 53");
}
// --------------------------------------------------- ICMP and other transports

/// Runs an IPv4 packet from `SRC_V4` to `DST_V4`, then an IPv6 one from
/// `SRC_V6` to `DST_V6`, each with its length, through a fresh program:
/// each must count as one packet of `class`, with no port.
fn check_v4_then_v6(class: Class, v4: (Vec<u8>, usize), v6: (Vec<u8>, usize), what: &str) {
    check_v4_then_v6_with(class, v4, v6, what, |expect| expect);
}

/// [`check_v4_then_v6`], each expectation changed by `change`.
fn check_v4_then_v6_with(
    class: Class,
    v4: (Vec<u8>, usize),
    v6: (Vec<u8>, usize),
    what: &str,
    change: impl Fn(Expect) -> Expect,
) {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    xdp.pass(&v4.0);
    change(Expect::ip_packet(Family::V4, class, v4.1, SRC_V4, DST_V4)).check(&xdp.delta(), what);
    xdp.pass(&v6.0);
    change(Expect::ip_packet(Family::V6, class, v6.1, SRC_V6, DST_V6)).check(&xdp.delta(), what);
}

#[test]
fn icmp_and_icmpv6_echoes_count_as_icmp() {
    let data = [0xab; 56];
    let ping =
        Ipv4::new(SRC_V4, DST_V4, ip_proto::ICMP).frame(&frames::icmpv4_echo_request(7, 1, &data));
    let ping6 = Ipv6::new(SRC_V6, DST_V6, ip_proto::ICMPV6)
        .frame(&frames::icmpv6_echo_request(7, 1, &data));
    // An echo request is a sweep's probe of the host.
    check_v4_then_v6_with(
        Class::Icmp,
        (ping, 98),
        (ping6, 118),
        "ping, ping6",
        |expect| expect.probe(Probe::Echo, 0),
    );
}

#[test]
fn icmp_numbers_of_the_other_family_are_other_transports() {
    let echo = frames::icmpv4_echo_request(7, 1, &[]);
    // Protocol 58 in IPv4 and next header 1 in IPv6 are not ICMP.
    let v4 = Ipv4::new(SRC_V4, DST_V4, ip_proto::ICMPV6).frame(&echo);
    let v6 = Ipv6::new(SRC_V6, DST_V6, ip_proto::ICMP).frame(&echo);
    check_v4_then_v6(Class::Other, (v4, 42), (v6, 62), "ICMP numbers swapped");
}

#[test]
fn gre_and_no_next_header_are_other_transports() {
    let gre = Ipv4::new(SRC_V4, DST_V4, IPPROTO_GRE).frame(&[0, 0, 0x08, 0x00]);
    let none = Ipv6::new(SRC_V6, DST_V6, IPPROTO_NONE).frame(&[]);
    check_v4_then_v6(
        Class::Other,
        (gre, 38),
        (none, 54),
        "GRE, IPv6 no next header",
    );
}
