//! Random and mutated frames through the real XDP program with
//! BPF_PROG_TEST_RUN: every one is passed (or dropped, if its source is in
//! the blocklist), and the global counters stay consistent.

use std::net::{Ipv4Addr, Ipv6Addr};

use nta_agent::traffic::totals;
use nta_common::{
    Counter, GlobalCounters,
    maps::{feature, ip_proto},
};

use crate::support::{
    self,
    frames::{
        self, DST_V4, DST_V6, ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IPV4,
        ETH_P_IPV6, ExtHeader, IPPROTO_GRE, IPPROTO_NONE, Ipv4, Ipv6, Tcp, VlanTag,
    },
    xdp::{XDP_DROP, XDP_PASS, Xdp, is_einval},
};

const SEED: u64 = 0x6e74_615f_726f_6275;
const FRAMES: usize = 200_000;
const MAX_FRAME: usize = 1514;

/// Blocked: sources in these prefixes, which the generator uses now and then.
const BLOCKED_V4: &str = "203.0.113.0/24";
const BLOCKED_V6: &str = "2001:db8:bad::/48";

/// xorshift64*: small, deterministic, good enough to pick mutations.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

fn v4_source(rng: &mut Rng) -> Ipv4Addr {
    match rng.below(4) {
        0 => Ipv4Addr::new(203, 0, 113, rng.next() as u8),
        1 => frames::SRC_V4,
        _ => Ipv4Addr::from(rng.next() as u32),
    }
}

fn v6_source(rng: &mut Rng) -> Ipv6Addr {
    match rng.below(4) {
        0 => Ipv6Addr::from((0x2001_0db8_0badu128 << 80) | u128::from(rng.next() as u32)),
        1 => frames::SRC_V6,
        2 => Ipv6Addr::from(
            0xffff_0000_0000u128 | u128::from(0xcb00_7100u32 | rng.next() as u8 as u32),
        ),
        _ => Ipv6Addr::from(u128::from(rng.next()) << 64 | u128::from(rng.next())),
    }
}

fn transport(rng: &mut Rng, icmp: u8) -> (u8, Vec<u8>) {
    let len = rng.below(4) * rng.below(200);
    let payload = rng.bytes(len);
    match rng.below(6) {
        0 => (
            ip_proto::TCP,
            Tcp::syn(rng.next() as u16, rng.next() as u16).bytes(),
        ),
        1 => {
            let flags = rng.next() as u8;
            let mut tcp = Tcp::new(rng.next() as u16, rng.pick(&[53, 80, 443]), flags);
            if rng.chance(3) {
                tcp = tcp.data_offset(rng.below(16) as u8);
            }
            (ip_proto::TCP, tcp.payload(&payload).bytes())
        }
        2 => (
            ip_proto::UDP,
            frames::udp(rng.next() as u16, rng.pick(&[53, 123, 5353]), &payload),
        ),
        3 => (icmp, frames::icmpv4_echo_request(1, 1, &payload)),
        4 => (rng.pick(&[IPPROTO_GRE, IPPROTO_NONE, 132, 50]), payload),
        _ => (rng.next() as u8, payload),
    }
}

fn ext_header(rng: &mut Rng) -> ExtHeader {
    match rng.below(4) {
        0 => ExtHeader::hop_by_hop(rng.below(3) as u8),
        1 => ExtHeader::destination_options(rng.below(3) as u8),
        2 => ExtHeader::routing(),
        _ => ExtHeader::fragment(
            if rng.chance(2) {
                0
            } else {
                rng.next() as u16 & 0x1fff
            },
            rng.chance(2),
        ),
    }
}

/// A well-formed IP packet (no Ethernet header), then maybe mutated.
fn ip_packet(rng: &mut Rng) -> (u16, Vec<u8>) {
    if rng.chance(2) {
        let (proto, l4) = transport(rng, ip_proto::ICMP);
        let mut ip = Ipv4::new(v4_source(rng), DST_V4, proto);
        if rng.chance(4) {
            ip = ip.option_words(rng.below(11));
        }
        if rng.chance(5) {
            ip = ip.fragment(
                rng.chance(2),
                if rng.chance(2) {
                    0
                } else {
                    rng.next() as u16 & 0x1fff
                },
            );
        }
        let mut packet = ip.packet(&l4);
        if rng.chance(4) {
            // IHL: anything from 0 to 15.
            packet[0] = (packet[0] & 0xf0) | rng.below(16) as u8;
        }
        if rng.chance(4) {
            // Total length: anything.
            packet[2] = rng.next() as u8;
            packet[3] = rng.next() as u8;
        }
        if rng.chance(20) {
            packet[0] = (rng.below(16) as u8) << 4 | (packet[0] & 0x0f);
        }
        (ETH_P_IPV4, packet)
    } else {
        let (proto, l4) = transport(rng, ip_proto::ICMPV6);
        let mut ip = Ipv6::new(v6_source(rng), DST_V6, proto);
        for _ in 0..rng.below(8) {
            ip = ip.ext(ext_header(rng));
        }
        let mut packet = ip.packet(&l4);
        if rng.chance(4) {
            packet[4] = rng.next() as u8;
            packet[5] = rng.next() as u8;
        }
        if rng.chance(4) {
            // A next-header anywhere in the chain, or an extension length.
            let at = 6.max(rng.below(packet.len().min(120)));
            let any = rng.next() as u8;
            packet[at] = rng.pick(&[0, 43, 44, 60, 6, 17, 58, any]);
        }
        if rng.chance(20) {
            packet[0] = (rng.below(16) as u8) << 4 | (packet[0] & 0x0f);
        }
        (ETH_P_IPV6, packet)
    }
}

fn tags(rng: &mut Rng) -> Vec<VlanTag> {
    let n = match rng.below(8) {
        0 => 1,
        1 => 2,
        2 => 3,
        _ => 0,
    };
    (0..n)
        .map(|_| {
            if rng.chance(2) {
                VlanTag::dot1q(rng.next() as u16)
            } else {
                VlanTag::dot1ad(rng.next() as u16)
            }
        })
        .collect()
}

/// One test frame, at most [`MAX_FRAME`] bytes.
pub(crate) fn frame(rng: &mut Rng) -> Vec<u8> {
    let mut frame = match rng.below(10) {
        // Random bytes of any length.
        0 => {
            let len = rng.below(MAX_FRAME + 1);
            rng.bytes(len)
        }
        // A random EtherType (weighted to the parsed ones), random payload.
        1 | 2 => {
            let any = rng.next() as u16;
            let ether_type = rng.pick(&[
                ETH_P_IPV4,
                ETH_P_IPV6,
                ETH_P_8021Q,
                ETH_P_8021AD,
                ETH_P_ARP,
                any,
            ]);
            let tags = tags(rng);
            let len = rng.below(MAX_FRAME - ETH_HLEN - 4 * tags.len() + 1);
            frames::ethernet_tagged(&tags, ether_type, &rng.bytes(len))
        }
        // A (mutated) IP packet, tagged or not.
        _ => {
            let (ether_type, packet) = ip_packet(rng);
            let tags = tags(rng);
            frames::ethernet_tagged(&tags, ether_type, &packet)
        }
    };
    if rng.chance(3) {
        frame.truncate(rng.below(frame.len() + 1));
    }
    if rng.chance(10) && !frame.is_empty() {
        let at = rng.below(frame.len());
        frame[at] ^= 1 << rng.below(8);
    }
    frame.truncate(MAX_FRAME);
    frame
}

// ------------------------------------------------------------------ Model

/// What the program's parse up to the blocklist makes of a frame (see
/// nta-ebpf/src/main.rs `try_nta` and parse.rs `link`, `network`,
/// `ipv6_packet`), mirrored here byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// `parse::link` failed: counted under that error only.
    LinkError(Counter),
    /// Not IP: non_ip_packets.
    NonIp,
    /// `parse::network` failed: that error.
    NetworkError(Counter),
    Blocked,
    /// Counted as IPv4.
    Ipv4,
    /// IPv6: counted as such, or err_ipv6_ext_headers if its chain fails.
    Ipv6 {
        ext_error: bool,
    },
}

fn be16(frame: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([frame[at], frame[at + 1]])
}

fn fate(frame: &[u8]) -> (Fate, bool) {
    let len = frame.len();
    assert!(len >= ETH_HLEN);
    let mut ether_type = be16(frame, 12);
    let mut offset = ETH_HLEN;
    let mut tags = 0;
    for _ in 0..2 {
        if ether_type != ETH_P_8021Q && ether_type != ETH_P_8021AD {
            break;
        }
        if offset + 4 > len {
            return (Fate::LinkError(Counter::ErrVlanTruncated), false);
        }
        ether_type = be16(frame, offset + 2);
        offset += 4;
        tags += 1;
    }
    if ether_type == ETH_P_8021Q || ether_type == ETH_P_8021AD {
        return (Fate::LinkError(Counter::ErrVlanTooDeep), false);
    }
    let tagged = tags > 0;
    let ip = &frame[offset..];
    match ether_type {
        ETH_P_IPV4 => {
            if ip.len() < 20 {
                return (Fate::NetworkError(Counter::ErrIpv4Truncated), tagged);
            }
            let header_len = usize::from(ip[0] & 0x0f) * 4;
            if ip[0] >> 4 != 4 || header_len < 20 {
                return (Fate::NetworkError(Counter::ErrIpv4Malformed), tagged);
            }
            if header_len > ip.len() {
                return (Fate::NetworkError(Counter::ErrIpv4Truncated), tagged);
            }
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            if src.octets()[..3] == [203, 0, 113] {
                return (Fate::Blocked, false);
            }
            (Fate::Ipv4, tagged)
        }
        ETH_P_IPV6 => {
            if ip.len() < 40 || ip[0] >> 4 != 6 {
                return (Fate::NetworkError(Counter::ErrIpv6Truncated), tagged);
            }
            if ip[8..14] == [0x20, 0x01, 0x0d, 0xb8, 0x0b, 0xad] {
                return (Fate::Blocked, false);
            }
            (
                Fate::Ipv6 {
                    ext_error: ipv6_chain_fails(ip),
                },
                tagged,
            )
        }
        _ => (Fate::NonIp, tagged),
    }
}

/// `parse::ipv6_packet`'s walk: at most 5 extension headers, each whole in
/// the frame; a later fragment ends it.
fn ipv6_chain_fails(ip: &[u8]) -> bool {
    let mut next = ip[6];
    let mut offset = 40;
    let mut walked = 0;
    while walked < 5 {
        match next {
            0 | 43 | 60 => {
                if offset + 2 > ip.len() {
                    return true;
                }
                let ext_len = (usize::from(ip[offset + 1]) + 1) * 8;
                if offset + ext_len > ip.len() {
                    return true;
                }
                next = ip[offset];
                offset += ext_len;
            }
            ip_proto::FRAGMENT => {
                if offset + 8 > ip.len() {
                    return true;
                }
                next = ip[offset];
                let later = be16(ip, offset + 2) >> 3 != 0;
                offset += 8;
                if later {
                    break;
                }
            }
            _ => break,
        }
        walked += 1;
    }
    walked == 5 && matches!(next, 0 | 43 | 44 | 60)
}

// ------------------------------------------------------------------- Test

/// The program as the agent loads it (default thresholds and sampling),
/// with [`BLOCKED_V4`] and [`BLOCKED_V6`] blocked.
fn load() -> Xdp {
    let xdp = Xdp::load_as_agent(feature::ALL);
    for cidr in [BLOCKED_V4, BLOCKED_V6] {
        xdp.block(cidr);
    }
    xdp
}

/// What the model says the counters before the transport layer must be.
#[derive(Default)]
struct Expected {
    run: u64,
    bytes: u64,
    refused: u64,
    counters: Vec<(Counter, u64)>,
}

impl Expected {
    fn add(&mut self, counter: Counter, n: u64) {
        self.counters.push((counter, n));
    }

    /// One packet of `len` bytes on a pair of packet and byte counters.
    fn packet(&mut self, (packets, bytes): (Counter, Counter), len: u64) {
        self.add(packets, 1);
        self.add(bytes, len);
    }

    fn global(&self) -> GlobalCounters {
        let mut g = GlobalCounters::ZERO;
        for (c, n) in &self.counters {
            g.values[*c as usize] += n;
        }
        g
    }
}

#[test]
fn random_and_mutated_frames_are_passed_and_counted_consistently() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load();
    let mut rng = Rng(SEED);
    let mut expected = Expected::default();
    let mut ipv6_or_ext_error = 0u64;
    let started = std::time::Instant::now();
    for i in 0..FRAMES {
        let frame = frame(&mut rng);
        let case = || format!("frame {i} of seed {SEED:#x}: {frame:02x?}");
        let result = xdp.try_run(&frame, 1);
        if frame.len() < ETH_HLEN {
            // BPF_PROG_TEST_RUN refuses XDP input below ETH_HLEN.
            let error = result.expect_err("the kernel ran a frame shorter than ETH_HLEN");
            assert!(is_einval(&error), "{}: {error:?}", case());
            expected.refused += 1;
            continue;
        }
        let result = result.unwrap_or_else(|e| panic!("{}: test run failed: {e:?}", case()));
        let len = frame.len() as u64;
        expected.run += 1;
        expected.bytes += len;
        let (fate, tagged) = fate(&frame);
        let want = if fate == Fate::Blocked {
            XDP_DROP
        } else {
            XDP_PASS
        };
        assert_eq!(result.action, want, "{}: {fate:?}", case());
        if tagged {
            expected.add(Counter::VlanTagged, 1);
        }
        match fate {
            Fate::LinkError(c) | Fate::NetworkError(c) => expected.add(c, 1),
            Fate::NonIp => expected.packet((Counter::NonIpPackets, Counter::NonIpBytes), len),
            Fate::Blocked => expected.packet((Counter::BlockedPackets, Counter::BlockedBytes), len),
            Fate::Ipv4 => expected.packet((Counter::Ipv4Packets, Counter::Ipv4Bytes), len),
            Fate::Ipv6 { ext_error } => {
                ipv6_or_ext_error += 1;
                if ext_error {
                    expected.add(Counter::ErrIpv6ExtHeaders, 1);
                } else {
                    expected.packet((Counter::Ipv6Packets, Counter::Ipv6Bytes), len);
                }
            }
        }
    }
    let elapsed = started.elapsed();
    let g = xdp.snapshot().global;
    let c = |counter: Counter| g.get(counter);
    let all = totals(&g);
    let ctx = format!("seed {SEED:#x}, {FRAMES} frames; counters: {all}");
    eprintln!(
        "{FRAMES} frames ({} run, {} refused by the kernel) in {elapsed:.1?}; {all}",
        expected.run, expected.refused
    );

    // Every frame the kernel ran, and nothing else.
    assert_eq!(c(Counter::Packets), expected.run, "packets; {ctx}");
    assert_eq!(c(Counter::Bytes), expected.bytes, "bytes; {ctx}");
    assert_eq!(c(Counter::ErrEthTruncated), 0, "never reached; {ctx}");
    // The generator reaches every path it is meant to.
    for counter in [
        Counter::BlockedPackets,
        Counter::VlanTagged,
        Counter::ErrVlanTruncated,
        Counter::ErrVlanTooDeep,
        Counter::ErrIpv4Truncated,
        Counter::ErrIpv4Malformed,
        Counter::ErrIpv6Truncated,
        Counter::ErrIpv6ExtHeaders,
        Counter::ErrTcpTruncated,
        Counter::ErrUdpTruncated,
        Counter::ErrIcmpTruncated,
        Counter::NonFirstFragments,
        Counter::SamplesTaken,
    ] {
        assert!(c(counter) > 0, "no {} at all; {ctx}", counter.name());
    }

    // Up to the blocklist, the program's fate of each frame is the model's.
    let want = expected.global();
    for counter in [
        Counter::ErrVlanTruncated,
        Counter::ErrVlanTooDeep,
        Counter::NonIpPackets,
        Counter::NonIpBytes,
        Counter::ErrIpv4Truncated,
        Counter::ErrIpv4Malformed,
        Counter::ErrIpv6Truncated,
        Counter::BlockedPackets,
        Counter::BlockedBytes,
        Counter::Ipv4Packets,
        Counter::Ipv4Bytes,
        Counter::Ipv6Packets,
        Counter::Ipv6Bytes,
        Counter::ErrIpv6ExtHeaders,
        Counter::VlanTagged,
    ] {
        assert_eq!(c(counter), want.get(counter), "{}; {ctx}", counter.name());
    }
    assert_eq!(
        c(Counter::Ipv6Packets) + c(Counter::ErrIpv6ExtHeaders),
        ipv6_or_ext_error
    );

    // The identity try_nta guarantees: every frame ends in exactly one of
    // a link error (err_eth_truncated, err_vlan_truncated,
    // err_vlan_too_deep), non_ip_packets, a network-header error
    // (err_ipv4_truncated, err_ipv4_malformed, err_ipv6_truncated),
    // blocked_packets, err_ipv6_ext_headers (parse::packet failed), or
    // ipv4_packets / ipv6_packets (count::packet). Transport errors come
    // after the IP counters, so they are not in this sum.
    let frame_fates = c(Counter::ErrEthTruncated)
        + c(Counter::ErrVlanTruncated)
        + c(Counter::ErrVlanTooDeep)
        + c(Counter::NonIpPackets)
        + c(Counter::ErrIpv4Truncated)
        + c(Counter::ErrIpv4Malformed)
        + c(Counter::ErrIpv6Truncated)
        + c(Counter::BlockedPackets)
        + c(Counter::ErrIpv6ExtHeaders)
        + c(Counter::Ipv4Packets)
        + c(Counter::Ipv6Packets);
    assert_eq!(c(Counter::Packets), frame_fates, "packets partition; {ctx}");
    // Bytes are split only for the counted classes; the error counters
    // count packets.
    assert!(
        c(Counter::Bytes)
            >= c(Counter::NonIpBytes)
                + c(Counter::BlockedBytes)
                + c(Counter::Ipv4Bytes)
                + c(Counter::Ipv6Bytes),
        "bytes; {ctx}"
    );

    // count::packet puts every IP packet it counts in exactly one transport
    // class, bytes too.
    let ip = c(Counter::Ipv4Packets) + c(Counter::Ipv6Packets);
    let ip_bytes = c(Counter::Ipv4Bytes) + c(Counter::Ipv6Bytes);
    let classes = [
        (Counter::TcpPackets, Counter::TcpBytes),
        (Counter::UdpPackets, Counter::UdpBytes),
        (Counter::IcmpPackets, Counter::IcmpBytes),
        (Counter::OtherL4Packets, Counter::OtherL4Bytes),
    ];
    let class_packets: u64 = classes.iter().map(|(packets, _)| c(*packets)).sum();
    let class_bytes: u64 = classes.iter().map(|(_, bytes)| c(*bytes)).sum();
    assert_eq!(ip, class_packets, "transport classes; {ctx}");
    assert_eq!(ip_bytes, class_bytes, "transport bytes; {ctx}");
    // ...and in at most one of: a later fragment, a cut transport header
    // (of its own protocol), or a parsed header.
    let tcp_err = c(Counter::ErrTcpTruncated);
    let udp_err = c(Counter::ErrUdpTruncated);
    assert!(
        c(Counter::NonFirstFragments) + tcp_err + udp_err + c(Counter::ErrIcmpTruncated) <= ip,
        "transport fates; {ctx}"
    );
    assert!(tcp_err <= c(Counter::TcpPackets), "{ctx}");
    assert!(udp_err <= c(Counter::UdpPackets), "{ctx}");
    assert!(
        c(Counter::ErrIcmpTruncated) <= c(Counter::IcmpPackets),
        "{ctx}"
    );
    assert!(
        c(Counter::NonFirstFragments) <= c(Counter::Fragments),
        "{ctx}"
    );
    assert!(c(Counter::Fragments) <= ip, "{ctx}");
    // Flags and ports are read only from a parsed TCP (UDP) header: SYN
    // is SYN or SYN-ACK, never both.
    let parsed_tcp = c(Counter::TcpPackets) - tcp_err;
    assert!(
        c(Counter::TcpSyn) + c(Counter::TcpSynAck) <= parsed_tcp,
        "{ctx}"
    );
    assert!(c(Counter::TcpRst) <= parsed_tcp, "{ctx}");
    assert!(c(Counter::TcpFin) <= parsed_tcp, "{ctx}");
    assert!(
        c(Counter::Dns) <= parsed_tcp + c(Counter::UdpPackets) - udp_err,
        "{ctx}"
    );
    // Samples are taken (or capped, or lost) once at most per counted
    // TCP or UDP packet.
    assert!(
        c(Counter::SamplesTaken) + c(Counter::SamplesCapped) + c(Counter::SamplesLost)
            <= parsed_tcp + c(Counter::UdpPackets) - udp_err,
        "{ctx}"
    );
}
