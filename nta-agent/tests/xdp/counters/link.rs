//! The link layer: VLAN tags, frames that are not IP, and frames the
//! kernel will not run or that hold garbage.

use nta_common::{Counter, maps::ip_proto};

use super::{Class, Counting, Dst, Expect, Family, Src, eth_frame, ip_frame};
use crate::support::{
    frames::{
        self, DST_V4, DST_V6, ETH_HLEN, ETH_P_IPV4, ETH_P_IPV6, Ipv4, Ipv6, SRC_V4, SRC_V6, Tcp,
        VlanTag,
    },
    xdp::is_einval,
};

// ------------------------------------------------------------------- VLAN tags

#[test]
fn dot1q_tagged_syn_is_counted_as_vlan_and_parsed() {
    let ip = Ipv4::new(SRC_V4, DST_V4, ip_proto::TCP).packet(&Tcp::syn(40_000, 80).bytes());
    let frame = frames::ethernet_tagged(&[VlanTag::dot1q(42)], ETH_P_IPV4, &ip);
    assert_eq!(frame.len(), 58);
    Expect::syn(Family::V4, 58, SRC_V4, DST_V4, 80)
        .counters(&[(Counter::VlanTagged, 1)])
        .check_once(&frame, "802.1Q SYN");
}

#[test]
fn qinq_tagged_syns_are_counted_as_vlan_and_parsed() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    let v4 = Ipv4::new(SRC_V4, DST_V4, ip_proto::TCP).packet(&Tcp::syn(40_000, 80).bytes());
    let v6 = Ipv6::new(SRC_V6, DST_V6, ip_proto::TCP).packet(&Tcp::syn(40_000, 8443).bytes());
    // 802.1ad outside 802.1Q, and two 802.1Q tags: both are two tags deep.
    let qinq = [VlanTag::dot1ad(100), VlanTag::dot1q(42)];
    let double_q = [VlanTag::dot1q(100), VlanTag::dot1q(42)];
    xdp.pass(&frames::ethernet_tagged(&qinq, ETH_P_IPV4, &v4));
    xdp.pass(&frames::ethernet_tagged(&double_q, ETH_P_IPV6, &v6));
    Expect::nothing()
        .counters(&ip_frame(Family::V4, Class::Tcp, 62))
        .counters(&ip_frame(Family::V6, Class::Tcp, 82))
        .counters(&[(Counter::TcpSyn, 2), (Counter::VlanTagged, 2)])
        .source(SRC_V4, Src::syn(62, DST_V4, 80))
        .source(SRC_V6, Src::syn(82, DST_V6, 8443))
        .dst_host(DST_V4, Dst::syns(1, 62, SRC_V4))
        .dst_host(DST_V6, Dst::syns(1, 82, SRC_V6))
        .syn_port(80, 1)
        .syn_port(8443, 1)
        .check(&xdp.totals(), "QinQ SYNs");
}

#[test]
fn three_vlan_tags_are_too_deep_and_not_parsed() {
    let ip = Ipv4::new(SRC_V4, DST_V4, ip_proto::TCP).packet(&Tcp::syn(40_000, 80).bytes());
    let tags = [VlanTag::dot1ad(1), VlanTag::dot1q(2), VlanTag::dot1q(3)];
    let frame = frames::ethernet_tagged(&tags, ETH_P_IPV4, &ip);
    assert_eq!(frame.len(), 66);
    // An unparsed frame counts only its error: not even `vlan_tagged`.
    Expect::error(66, Counter::ErrVlanTooDeep).check_once(&frame, "three VLAN tags");
}

#[test]
fn vlan_tagged_arp_is_vlan_and_non_ip() {
    let arp = frames::arp_request_body(SRC_V4, DST_V4);
    let frame = frames::ethernet_tagged(&[VlanTag::dot1q(7)], frames::ETH_P_ARP, &arp);
    assert_eq!(frame.len(), 46);
    Expect::nothing()
        .counters(&eth_frame(46))
        .counters(&[
            (Counter::VlanTagged, 1),
            (Counter::NonIpPackets, 1),
            (Counter::NonIpBytes, 46),
        ])
        .check_once(&frame, "tagged ARP");
}

// ---------------------------------------------------------------------- Not IP

#[test]
fn arp_and_other_non_ip_frames_count_as_non_ip() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    let arp = frames::arp_request(SRC_V4, DST_V4);
    assert_eq!(arp.len(), 42);
    xdp.pass(&arp);
    Expect::nothing()
        .counters(&eth_frame(42))
        .counters(&[(Counter::NonIpPackets, 1), (Counter::NonIpBytes, 42)])
        .check(&xdp.delta(), "ARP");
    // LLDP, and an 802.3 frame whose type field is a length.
    for (ether_type, what) in [(0x88cc, "LLDP"), (0x0026, "802.3 length")] {
        xdp.pass(&frames::ethernet(ether_type, &[0; 46]));
        Expect::nothing()
            .counters(&eth_frame(60))
            .counters(&[(Counter::NonIpPackets, 1), (Counter::NonIpBytes, 60)])
            .check(&xdp.delta(), what);
    }
    // A bare Ethernet header is the shortest frame the kernel runs.
    xdp.pass(&frames::ethernet(frames::ETH_P_ARP, &[]));
    Expect::nothing()
        .counters(&eth_frame(14))
        .counters(&[(Counter::NonIpPackets, 1), (Counter::NonIpBytes, 14)])
        .check(&xdp.delta(), "bare Ethernet header");
}

// ---------------------------------------- Frames too short to run, and garbage

#[test]
fn frames_shorter_than_an_ethernet_header_are_refused_by_the_kernel() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    // BPF_PROG_TEST_RUN refuses XDP input shorter than ETH_HLEN (EINVAL), so
    // the program's `err_eth_truncated` path cannot be exercised here; see
    // `truncation`. The refusal must leave every counter untouched.
    for len in 0..ETH_HLEN {
        let error = xdp
            .try_run(&vec![0xff; len], 1)
            .expect_err("kernel ran a short frame");
        assert!(
            is_einval(&error),
            "{len} bytes: expected EINVAL, got {error:?}"
        );
    }
    Expect::nothing().check(&xdp.totals(), "short frames");
}

#[test]
fn garbage_frames_are_passed_and_counted() {
    let Some(mut xdp) = Counting::privileged() else {
        return;
    };
    // Arbitrary bytes behind every ethertype the program parses: whatever
    // they hold, the program passes the frame and counts it once.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut total_bytes = 0u64;
    let ether_types = [
        ETH_P_IPV4,
        ETH_P_IPV6,
        frames::ETH_P_8021Q,
        frames::ETH_P_8021AD,
    ];
    for i in 0..400usize {
        let len = (next() % 200) as usize;
        let payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let frame = frames::ethernet(ether_types[i % ether_types.len()], &payload);
        total_bytes += frame.len() as u64;
        xdp.pass(&frame);
    }
    let counts = xdp.totals();
    assert_eq!(counts.global.get(Counter::Packets), 400);
    assert_eq!(counts.global.get(Counter::Bytes), total_bytes);
}
