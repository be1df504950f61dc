//! The kernel blocklist, run on crafted frames with BPF_PROG_TEST_RUN: which
//! sources the XDP program drops, what each entry and the global counters
//! count, and that a dropped packet leaves no trace anywhere else.
//!
//! Each test loads its own program, so every map starts empty.
//! `bench_blocklist_cost` (ignored) measures the program's time per packet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use nta_agent::{
    sensor::{BlockEntry, SensorError},
    traffic::Snapshot,
};
use nta_common::{
    BlockStats, Counter, IpKey,
    classify::DstClass,
    maps::{BLOCKLIST_MAX_ENTRIES, block_family, feature, ip_proto},
};

use crate::support::{
    self, figures,
    frames::{
        self, DST_V4, DST_V6, ETH_P_IPV4, ETH_P_IPV6, ExtHeader, Ipv4, Ipv6, SRC_V4, SRC_V6, Tcp,
        VlanTag,
    },
    xdp::{XDP_DROP, XDP_PASS, Xdp, assert_counters, growth, quiet},
};

/// A bare SYN over IPv4 and over IPv6 (see `frames::syn_v4`, `syn_v6`).
const SYN_V4_LEN: u64 = 54;
const SYN_V6_LEN: u64 = 74;

fn net(cidr: &str) -> IpNet {
    cidr.parse().expect("a CIDR")
}

fn v4(addr: &str) -> Ipv4Addr {
    addr.parse().expect("an IPv4 address")
}

fn v6(addr: &str) -> Ipv6Addr {
    addr.parse().expect("an IPv6 address")
}

fn syn_from_v4(src: &str) -> Vec<u8> {
    frames::syn_v4(v4(src), DST_V4, 40_000, 80)
}

fn syn_from_v6(src: &str) -> Vec<u8> {
    frames::syn_v6(v6(src), DST_V6, 40_000, 80)
}

/// The loaded program, its blocklist empty; without the flow table, whose
/// counters these tests do not follow (`flows.rs` checks that a blocked
/// packet makes no flow).
fn load() -> Xdp {
    let xdp = Xdp::load_with(feature::ALL & !feature::FLOWS, Some(&quiet()));
    assert_eq!(
        xdp.blocklist().list().expect("listing"),
        [],
        "fresh BLOCKLIST"
    );
    xdp
}

/// What `cidr` has dropped; it must be blocked.
#[track_caller]
fn stats(xdp: &Xdp, cidr: &str) -> (u64, u64) {
    let stats = xdp
        .blocklist()
        .get(net(cidr))
        .expect("reading BLOCKLIST")
        .unwrap_or_else(|| panic!("{cidr} is not blocked"));
    (stats.packets, stats.bytes)
}

/// What `n` dropped frames of `len` bytes add: the frame totals and the
/// blocked counters, nothing else.
fn dropped(n: u64, len: u64) -> Vec<(Counter, u64)> {
    vec![
        (Counter::Packets, n),
        (Counter::Bytes, n * len),
        (Counter::BlockedPackets, n),
        (Counter::BlockedBytes, n * len),
    ]
}

#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
}

/// What `n` passed bare SYNs add.
fn passed_syns(family: Family, n: u64) -> Vec<(Counter, u64)> {
    let (packets, bytes, len) = match family {
        Family::V4 => (Counter::Ipv4Packets, Counter::Ipv4Bytes, SYN_V4_LEN),
        Family::V6 => (Counter::Ipv6Packets, Counter::Ipv6Bytes, SYN_V6_LEN),
    };
    vec![
        (Counter::Packets, n),
        (Counter::Bytes, n * len),
        (packets, n),
        (bytes, n * len),
        (Counter::TcpPackets, n),
        (Counter::TcpBytes, n * len),
        (Counter::TcpSyn, n),
    ]
}

/// Source addresses in `SOURCES`.
fn sources(snapshot: &Snapshot) -> Vec<IpAddr> {
    snapshot.sources.keys().map(|k| IpAddr::from(*k)).collect()
}

fn key(addr: impl Into<IpAddr>) -> IpKey {
    IpKey::from(addr.into())
}

// ------------------------------------------------------------------- IPv4

#[test]
fn a_blocked_ipv4_address_is_dropped_and_counted_only_as_blocked() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load();
    xdp.block("198.18.0.1/32");
    assert_eq!(xdp.test_run(&syn_from_v4("198.18.0.1"), 5).action, XDP_DROP);
    assert_eq!(stats(&xdp, "198.18.0.1/32"), (5, 5 * SYN_V4_LEN));
    let snapshot = xdp.snapshot();
    assert_counters(&snapshot.global, &dropped(5, SYN_V4_LEN), "5 blocked SYNs");
    assert!(
        snapshot.sources.is_empty(),
        "SOURCES: {:?}",
        sources(&snapshot)
    );
    assert!(snapshot.dst_hosts.is_empty(), "DST_HOSTS");
    assert!(snapshot.syn_ports.iter().all(|n| *n == 0), "SYN_PORTS");

    // Its neighbour is not blocked, and counted as usual.
    assert_eq!(xdp.run(&syn_from_v4("198.18.0.2")), XDP_PASS);
    let snapshot = xdp.snapshot();
    let mut expected = dropped(5, SYN_V4_LEN);
    expected.extend(passed_syns(Family::V4, 1));
    assert_counters(&snapshot.global, &expected, "and one SYN passed");
    assert_eq!(sources(&snapshot), [IpAddr::V4(v4("198.18.0.2"))]);
    assert_eq!(
        snapshot.dst_hosts[&key(DST_V4)].packets[DstClass::Syn as usize],
        1
    );
    assert_eq!(snapshot.syn_ports[80], 1);
    assert_eq!(
        stats(&xdp, "198.18.0.1/32"),
        (5, 5 * SYN_V4_LEN),
        "unchanged"
    );
}

#[test]
fn a_blocked_ipv4_prefix_drops_every_address_inside_and_none_outside() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load();
    xdp.block("198.18.0.0/24");
    for inside in ["198.18.0.0", "198.18.0.1", "198.18.0.128", "198.18.0.255"] {
        assert_eq!(xdp.run(&syn_from_v4(inside)), XDP_DROP, "{inside}");
    }
    for outside in ["198.18.1.0", "198.17.255.255", "198.19.0.1"] {
        assert_eq!(xdp.run(&syn_from_v4(outside)), XDP_PASS, "{outside}");
    }
    assert_eq!(stats(&xdp, "198.18.0.0/24"), (4, 4 * SYN_V4_LEN));
    let snapshot = xdp.snapshot();
    let mut expected = dropped(4, SYN_V4_LEN);
    expected.extend(passed_syns(Family::V4, 3));
    assert_counters(&snapshot.global, &expected, "4 inside, 3 outside");
    assert_eq!(
        sources(&snapshot),
        [
            IpAddr::V4(v4("198.17.255.255")),
            IpAddr::V4(v4("198.18.1.0")),
            IpAddr::V4(v4("198.19.0.1")),
        ],
        "only the sources outside the prefix"
    );
}

#[test]
fn blocked_ipv4_is_dropped_whatever_it_carries() {
    if !support::privileged() {
        return;
    }
    // UDP, ICMP, a fragment and a cut-short TCP header: the source decides.
    let mut xdp = load();
    xdp.block("198.18.0.0/15");
    let src = SRC_V4;
    let mut cut_tcp = frames::syn_v4(src, DST_V4, 40_000, 80);
    cut_tcp.truncate(14 + 20 + 10);
    let frames = [
        frames::udp_v4(src, DST_V4, 5353, 53, &frames::dns_query()),
        frames::ping_v4(src, DST_V4),
        Ipv4::new(src, DST_V4, ip_proto::TCP)
            .fragment(false, 100)
            .frame(&[0; 16]),
        cut_tcp,
    ];
    let mut bytes = 0;
    for frame in &frames {
        assert_eq!(xdp.run(frame), XDP_DROP, "{frame:02x?}");
        bytes += frame.len() as u64;
    }
    assert_eq!(stats(&xdp, "198.18.0.0/15"), (4, bytes));
    let snapshot = xdp.snapshot();
    assert_counters(
        &snapshot.global,
        &[
            (Counter::Packets, 4),
            (Counter::Bytes, bytes),
            (Counter::BlockedPackets, 4),
            (Counter::BlockedBytes, bytes),
        ],
        "no dns, fragments or err_tcp_truncated for blocked packets",
    );
    assert!(snapshot.sources.is_empty());
}

// ------------------------------------------------------------------- IPv6

#[test]
fn blocked_ipv6_addresses_and_prefixes_are_dropped_and_others_passed() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load();
    xdp.block("2001:db8::1/128");
    xdp.block("2001:db8:1::/48");
    assert_eq!(
        xdp.test_run(&syn_from_v6("2001:db8::1"), 3).action,
        XDP_DROP
    );
    for inside in ["2001:db8:1::", "2001:db8:1:ffff:ffff:ffff:ffff:ffff"] {
        assert_eq!(xdp.run(&syn_from_v6(inside)), XDP_DROP, "{inside}");
    }
    for outside in ["2001:db8::2", "2001:db8:2::", "2001:db8:0:ffff::1"] {
        assert_eq!(xdp.run(&syn_from_v6(outside)), XDP_PASS, "{outside}");
    }
    assert_eq!(stats(&xdp, "2001:db8::1/128"), (3, 3 * SYN_V6_LEN));
    assert_eq!(stats(&xdp, "2001:db8:1::/48"), (2, 2 * SYN_V6_LEN));
    let snapshot = xdp.snapshot();
    let mut expected = dropped(5, SYN_V6_LEN);
    expected.extend(passed_syns(Family::V6, 3));
    assert_counters(&snapshot.global, &expected, "5 dropped, 3 passed");
    assert_eq!(snapshot.sources.len(), 3, "{:?}", sources(&snapshot));
    assert!(snapshot.sources.get(&key(v6("2001:db8::1"))).is_none());
    assert_eq!(
        snapshot.dst_hosts[&key(DST_V6)].packets[DstClass::All as usize],
        3
    );
}

#[test]
fn blocked_ipv6_is_dropped_even_when_its_extension_headers_cannot_be_walked() {
    if !support::privileged() {
        return;
    }
    // The source is in the fixed header: a chain longer than the program
    // walks (or cut short) must not get a blocked source through.
    let mut xdp = load();
    xdp.block("2001:db8::/32");
    let mut long_chain = Ipv6::new(SRC_V6, DST_V6, ip_proto::TCP);
    for _ in 0..6 {
        long_chain = long_chain.ext(ExtHeader::destination_options(0));
    }
    let long_chain = long_chain.frame(&Tcp::syn(40_000, 80).bytes());
    let mut cut_chain = Ipv6::new(SRC_V6, DST_V6, ip_proto::TCP)
        .ext(ExtHeader::hop_by_hop(1))
        .frame(&[]);
    cut_chain.truncate(14 + 40 + 8);
    for frame in [&long_chain, &cut_chain] {
        assert_eq!(xdp.run(frame), XDP_DROP);
    }
    let bytes = (long_chain.len() + cut_chain.len()) as u64;
    assert_eq!(stats(&xdp, "2001:db8::/32"), (2, bytes));
    assert_counters(
        &xdp.snapshot().global,
        &[
            (Counter::Packets, 2),
            (Counter::Bytes, bytes),
            (Counter::BlockedPackets, 2),
            (Counter::BlockedBytes, bytes),
        ],
        "no err_ipv6_ext_headers for blocked packets",
    );
}

// --------------------------------------------------------- IPv4 vs IPv6

#[test]
fn ipv4_sources_never_match_ipv6_entries() {
    if !support::privileged() {
        return;
    }
    // IPv4 198.18.0.1 is stored as ::ffff:198.18.0.1. IPv6 entries that
    // share its low 32 bits (NAT64, IPv4-compatible) differ in the top 96;
    // ::/0 and ::ffff:0:0/95 cover it, bit for bit, and must still not
    // apply to IPv4.
    let mut xdp = load();
    for cidr in [
        "::/0",
        "::ffff:0:0/95",
        "64:ff9b::c612:1/128",
        "::c612:1/128",
    ] {
        xdp.block(cidr);
    }
    assert_eq!(xdp.test_run(&syn_from_v4("198.18.0.1"), 2).action, XDP_PASS);
    assert_eq!(xdp.run(&syn_from_v4("0.0.0.0")), XDP_PASS);
    for (src, entry) in [
        ("64:ff9b::c612:1", "64:ff9b::c612:1/128"),
        ("::c612:1", "::c612:1/128"),
        ("2001:db8::1", "::/0"),
        ("::fffe:1:2", "::ffff:0:0/95"),
    ] {
        assert_eq!(xdp.run(&syn_from_v6(src)), XDP_DROP, "{src}");
        assert_eq!(stats(&xdp, entry), (1, SYN_V6_LEN), "{entry}");
    }
    let snapshot = xdp.snapshot();
    let mut expected = dropped(4, SYN_V6_LEN);
    expected.extend(passed_syns(Family::V4, 3));
    assert_counters(&snapshot.global, &expected, "IPv4 passed, IPv6 dropped");
    assert_eq!(
        sources(&snapshot),
        [IpAddr::V4(v4("0.0.0.0")), IpAddr::V4(v4("198.18.0.1"))]
    );
}

#[test]
fn an_ipv4_entry_wins_over_ipv6_entries_covering_the_mapped_range() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load();
    xdp.block("::/0");
    xdp.block("198.18.0.0/24");
    assert_eq!(xdp.run(&syn_from_v4("198.18.0.1")), XDP_DROP);
    assert_eq!(xdp.run(&syn_from_v4("198.19.0.1")), XDP_PASS);
    assert_eq!(stats(&xdp, "198.18.0.0/24"), (1, SYN_V4_LEN));
    assert_eq!(stats(&xdp, "::/0"), (0, 0));
}

#[test]
fn ipv6_sources_never_match_ipv4_entries() {
    if !support::privileged() {
        return;
    }
    // An IPv6 packet with an IPv4-mapped source (Linux drops those on
    // input, but XDP sees them first) looks up the IPv4 key.
    let mut xdp = load();
    xdp.block("198.18.0.0/24");
    assert_eq!(xdp.run(&syn_from_v6("::ffff:198.18.0.1")), XDP_PASS);
    assert_eq!(stats(&xdp, "198.18.0.0/24"), (0, 0));
    assert_counters(
        &xdp.snapshot().global,
        &passed_syns(Family::V6, 1),
        "counted as IPv6",
    );
}

// ------------------------------------------------------ Other frames

#[test]
fn vlan_tagged_frames_from_a_blocked_source_are_dropped() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load();
    xdp.block("198.18.0.1/32");
    xdp.block("2001:db8::1/128");
    let syn = frames::Tcp::syn(40_000, 80).bytes();
    let one_tag = frames::ethernet_tagged(
        &[VlanTag::dot1q(10)],
        ETH_P_IPV4,
        &Ipv4::new(SRC_V4, DST_V4, ip_proto::TCP).packet(&syn),
    );
    let two_tags = frames::ethernet_tagged(
        &[VlanTag::dot1ad(100), VlanTag::dot1q(10)],
        ETH_P_IPV6,
        &Ipv6::new(SRC_V6, DST_V6, ip_proto::TCP).packet(&syn),
    );
    assert_eq!(xdp.run(&one_tag), XDP_DROP);
    assert_eq!(xdp.run(&two_tags), XDP_DROP);
    assert_eq!(stats(&xdp, "198.18.0.1/32"), (1, SYN_V4_LEN + 4));
    assert_eq!(stats(&xdp, "2001:db8::1/128"), (1, SYN_V6_LEN + 8));
    let bytes = SYN_V4_LEN + 4 + SYN_V6_LEN + 8;
    assert_counters(
        &xdp.snapshot().global,
        &[
            (Counter::Packets, 2),
            (Counter::Bytes, bytes),
            (Counter::BlockedPackets, 2),
            (Counter::BlockedBytes, bytes),
        ],
        "not vlan_tagged either",
    );
}

#[test]
fn non_ip_frames_are_never_dropped() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load();
    xdp.block("0.0.0.0/0");
    xdp.block("::/0");
    // ARP carries the blocked address, but it is not an IP source.
    let arp = frames::arp_request(SRC_V4, DST_V4);
    assert_eq!(xdp.run(&arp), XDP_PASS);
    let tagged_arp = frames::ethernet_tagged(
        &[VlanTag::dot1q(7)],
        frames::ETH_P_ARP,
        &frames::arp_request_body(SRC_V4, DST_V4),
    );
    assert_eq!(xdp.run(&tagged_arp), XDP_PASS);
    let len = (arp.len() + tagged_arp.len()) as u64;
    assert_counters(
        &xdp.snapshot().global,
        &[
            (Counter::Packets, 2),
            (Counter::Bytes, len),
            (Counter::NonIpPackets, 2),
            (Counter::NonIpBytes, len),
            (Counter::VlanTagged, 1),
        ],
        "ARP",
    );
    assert_eq!(stats(&xdp, "0.0.0.0/0"), (0, 0));
}

#[test]
fn unparseable_ip_headers_are_never_dropped() {
    if !support::privileged() {
        return;
    }
    // Everything is blocked, yet a header the program cannot read has no
    // source to block by: passed and counted as the failure it is.
    let mut xdp = load();
    xdp.block("0.0.0.0/0");
    xdp.block("::/0");
    let syn = Tcp::syn(40_000, 80).bytes();
    let mut v4_cut = frames::syn_v4(SRC_V4, DST_V4, 40_000, 80);
    v4_cut.truncate(14 + 19);
    let mut v4_options_cut = Ipv4::new(SRC_V4, DST_V4, ip_proto::TCP)
        .option_words(2)
        .frame(&[]);
    v4_options_cut.truncate(14 + 24);
    let v4_ihl_4 = Ipv4::new(SRC_V4, DST_V4, ip_proto::TCP).ihl(4).frame(&syn);
    let v4_version_6 = Ipv4::new(SRC_V4, DST_V4, ip_proto::TCP)
        .version(6)
        .frame(&syn);
    let mut v6_cut = frames::syn_v6(SRC_V6, DST_V6, 40_000, 80);
    v6_cut.truncate(14 + 39);
    let v6_version_4 = Ipv6::new(SRC_V6, DST_V6, ip_proto::TCP)
        .version(4)
        .frame(&syn);
    let cases = [
        (&v4_cut, Counter::ErrIpv4Truncated, "IPv4 header cut short"),
        (
            &v4_options_cut,
            Counter::ErrIpv4Truncated,
            "IPv4 options cut short",
        ),
        (&v4_ihl_4, Counter::ErrIpv4Malformed, "IPv4 IHL 4"),
        (&v4_version_6, Counter::ErrIpv4Malformed, "IPv4 version 6"),
        (&v6_cut, Counter::ErrIpv6Truncated, "IPv6 header cut short"),
        (&v6_version_4, Counter::ErrIpv6Truncated, "IPv6 version 4"),
    ];
    for (frame, counter, what) in cases {
        let before = xdp.snapshot().global;
        assert_eq!(xdp.run(frame), XDP_PASS, "{what}");
        assert_counters(
            &growth(&before, &xdp.snapshot().global),
            &[
                (Counter::Packets, 1),
                (Counter::Bytes, frame.len() as u64),
                (counter, 1),
            ],
            what,
        );
    }
    assert_eq!(stats(&xdp, "0.0.0.0/0"), (0, 0));
    assert_eq!(stats(&xdp, "::/0"), (0, 0));
}

// ------------------------------------------------------- The entries

#[test]
fn the_longest_matching_prefix_counts_the_drop() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load();
    xdp.block("198.18.0.0/24");
    xdp.block("198.18.0.1/32");
    xdp.block("198.18.0.0/16");
    assert_eq!(xdp.test_run(&syn_from_v4("198.18.0.1"), 3).action, XDP_DROP);
    assert_eq!(xdp.test_run(&syn_from_v4("198.18.0.2"), 2).action, XDP_DROP);
    assert_eq!(xdp.run(&syn_from_v4("198.18.7.7")), XDP_DROP);
    let entry = |packets: u64, family, prefix_len| BlockStats {
        packets,
        bytes: packets * SYN_V4_LEN,
        family,
        prefix_len,
    };
    assert_eq!(
        xdp.blocklist().list().expect("listing"),
        [
            BlockEntry {
                cidr: net("198.18.0.0/16"),
                stats: entry(1, block_family::IPV4, 112),
            },
            BlockEntry {
                cidr: net("198.18.0.0/24"),
                stats: entry(2, block_family::IPV4, 120),
            },
            BlockEntry {
                cidr: net("198.18.0.1/32"),
                stats: entry(3, block_family::IPV4, 128),
            },
        ]
    );
    assert_counters(&xdp.snapshot().global, &dropped(6, SYN_V4_LEN), "6 dropped");

    // Without the /32, its address falls to the /24.
    assert!(
        xdp.blocklist()
            .remove(net("198.18.0.1/32"))
            .expect("removing")
    );
    assert_eq!(xdp.run(&syn_from_v4("198.18.0.1")), XDP_DROP);
    assert_eq!(stats(&xdp, "198.18.0.0/24"), (3, 3 * SYN_V4_LEN));
}

#[test]
fn removing_an_entry_passes_its_sources_again() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load();
    xdp.block("198.18.0.1/32");
    xdp.block("2001:db8::/64");
    assert_eq!(xdp.run(&syn_from_v4("198.18.0.1")), XDP_DROP);
    assert_eq!(xdp.run(&syn_from_v6("2001:db8::1")), XDP_DROP);
    assert!(
        xdp.blocklist()
            .remove(net("198.18.0.1/32"))
            .expect("removing")
    );
    // Host bits are cleared here too.
    assert!(
        xdp.blocklist()
            .remove(net("2001:db8::99/64"))
            .expect("removing")
    );
    assert_eq!(xdp.blocklist().list().expect("listing"), []);
    assert_eq!(xdp.run(&syn_from_v4("198.18.0.1")), XDP_PASS);
    assert_eq!(xdp.run(&syn_from_v6("2001:db8::1")), XDP_PASS);
    assert!(
        !xdp.blocklist()
            .remove(net("198.18.0.1/32"))
            .expect("removing"),
        "removing twice"
    );
    assert!(
        !xdp.blocklist()
            .remove(net("198.18.0.0/24"))
            .expect("removing"),
        "a prefix never blocked"
    );
    let snapshot = xdp.snapshot();
    let mut expected = dropped(1, SYN_V4_LEN);
    expected.extend(dropped(1, SYN_V6_LEN));
    expected.extend(passed_syns(Family::V4, 1));
    expected.extend(passed_syns(Family::V6, 1));
    assert_counters(&snapshot.global, &expected, "dropped, then passed");
    assert_eq!(snapshot.sources.len(), 2);
}

#[test]
fn blocking_again_keeps_the_counters() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load();
    xdp.block("198.18.0.0/24");
    assert_eq!(xdp.test_run(&syn_from_v4("198.18.0.9"), 4).action, XDP_DROP);
    for again in ["198.18.0.0/24", "198.18.0.77/24"] {
        assert!(
            !xdp.blocklist().insert(net(again)).expect("blocking again"),
            "{again}: not new"
        );
    }
    assert_eq!(stats(&xdp, "198.18.0.0/24"), (4, 4 * SYN_V4_LEN));
    assert_eq!(xdp.blocklist().list().expect("listing").len(), 1);
}

#[test]
fn ipv4_mapped_ipv6_prefixes_are_refused() {
    if !support::privileged() {
        return;
    }
    let xdp = load();
    xdp.block("198.18.0.0/24");
    let error = xdp
        .blocklist()
        .insert(net("::ffff:198.18.0.0/120"))
        .expect_err("an IPv4-mapped prefix");
    assert!(
        matches!(error, SensorError::BlockIpv4Mapped { ipv4, .. } if ipv4 == net("198.18.0.0/24")),
        "{error}"
    );
    // Nor may removing one remove the IPv4 entry it aliases.
    assert!(
        xdp.blocklist()
            .remove(net("::ffff:198.18.0.0/120"))
            .is_err()
    );
    assert_eq!(xdp.blocklist().list().expect("listing").len(), 1);
}

#[test]
fn a_full_blocklist_refuses_new_entries_naming_the_cidr() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load();
    let mut blocklist = xdp.blocklist();
    // 2001:db8::<i>/128, one per entry.
    let host = |i: u32| Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i));
    let host_net = |i: u32| IpNet::from(IpAddr::V6(host(i)));
    for i in 0..BLOCKLIST_MAX_ENTRIES {
        assert!(blocklist.insert(host_net(i)).expect("room left"));
    }
    let error = blocklist.insert(net("198.18.0.0/24")).expect_err("no room");
    assert!(
        matches!(error, SensorError::BlocklistFull { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the kernel blocklist is full (16384 entries): cannot block 198.18.0.0/24"
    );
    // Blocking what is there already needs no room.
    assert!(!blocklist.insert(host_net(7)).expect("already blocked"));
    assert_eq!(
        blocklist.list().expect("listing").len(),
        BLOCKLIST_MAX_ENTRIES as usize
    );
    // Nor is the program hurt: the last entry still drops.
    let last = host(BLOCKLIST_MAX_ENTRIES - 1);
    assert_eq!(xdp.run(&frames::syn_v6(last, DST_V6, 40_000, 80)), XDP_DROP);
    assert!(blocklist.remove(host_net(0)).expect("removing"));
    assert!(blocklist.insert(net("198.18.0.0/24")).expect("room again"));
}

// ------------------------------------------------------------- The cost

/// Prints (and records for `cargo xtask bench`) the program's mean time per
/// packet for a blocked source and for unblocked SYNs, with the blocklist
/// empty and with 10 001 entries. Nothing is asserted.
#[test]
#[ignore = "benchmark: the blocklist's cost per packet; cargo xtask bench runs it"]
fn bench_blocklist_cost() {
    if !support::privileged() {
        return;
    }
    const RUNS: u32 = 1_000_000;
    const ROUNDS: usize = 5;
    const ENTRIES: u32 = 10_000;
    let blocked = syn_from_v4("198.18.0.1");
    let unblocked = syn_from_v4("198.19.0.1");
    let unblocked_v6 = syn_from_v6("2001:db8:ffff::1");

    let mut xdp = load();
    let measure = |xdp: &mut Xdp, frame: &[u8], action: u32| {
        xdp.median_ns(ROUNDS, RUNS, action, |_| frame.to_vec())
    };
    let empty = measure(&mut xdp, &unblocked, XDP_PASS);
    let empty_v6 = measure(&mut xdp, &unblocked_v6, XDP_PASS);

    xdp.block("198.18.0.1/32");
    // Both families and many prefix lengths, so the trie has some depth:
    // /32s in 10.0.0.0/8, /48 to /64 prefixes in 2001:db8::/32.
    for i in 0..ENTRIES / 2 {
        let [_, a, b, c] = i.to_be_bytes();
        xdp.block(&format!("10.{a}.{b}.{c}/32"));
        xdp.block(&format!("2001:db8:{i:x}::/{}", 48 + i % 17));
    }
    let entries = xdp.blocklist().list().expect("listing").len();
    let hit = measure(&mut xdp, &blocked, XDP_DROP);
    let miss = measure(&mut xdp, &unblocked, XDP_PASS);
    let miss_v6 = measure(&mut xdp, &unblocked_v6, XDP_PASS);
    let note = format!("BPF_PROG_TEST_RUN, median of {ROUNDS} rounds of {RUNS}");
    let full = format!("{entries} entries");
    for (name, ns) in [
        ("unblocked IPv4 SYN, blocklist empty".to_owned(), empty),
        ("unblocked IPv6 SYN, blocklist empty".to_owned(), empty_v6),
        (format!("blocked IPv4 source, {full}"), hit),
        (format!("unblocked IPv4 SYN, {full}"), miss),
        (format!("unblocked IPv6 SYN, {full}"), miss_v6),
    ] {
        figures::record("XDP per packet", &name, ns, "ns", None, &note);
    }
}

/// The program skips the trie while it is empty: removing one of two
/// entries must leave the other blocking, removing the last must pass
/// everything, and blocking again must drop again.
#[test]
fn the_last_entry_removed_and_one_added_again_switch_the_lookup_off_and_on() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load();
    // Empty at load: nothing dropped.
    assert_eq!(xdp.run(&syn_from_v4("198.18.0.1")), XDP_PASS);
    xdp.block("198.18.0.1/32");
    xdp.block("198.18.0.2/32");
    assert!(
        xdp.blocklist()
            .remove(net("198.18.0.1/32"))
            .expect("removing")
    );
    assert_eq!(xdp.run(&syn_from_v4("198.18.0.1")), XDP_PASS);
    assert_eq!(
        xdp.run(&syn_from_v4("198.18.0.2")),
        XDP_DROP,
        "one entry left: still looked up"
    );
    assert!(
        xdp.blocklist()
            .remove(net("198.18.0.2/32"))
            .expect("removing")
    );
    assert_eq!(xdp.run(&syn_from_v4("198.18.0.2")), XDP_PASS);
    xdp.block("198.18.0.2/32");
    assert_eq!(
        xdp.run(&syn_from_v4("198.18.0.2")),
        XDP_DROP,
        "blocked again after the list was empty"
    );
    assert_eq!(stats(&xdp, "198.18.0.2/32"), (1, SYN_V4_LEN));
}
