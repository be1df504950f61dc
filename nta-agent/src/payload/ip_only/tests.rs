use std::time::Duration;

use nta_common::IpKey;

use super::*;
use crate::payload::rules::parse_rules;

fn index(text: &str) -> IpOnlyRules {
    let set = parse_rules(text, "t.rules");
    assert_eq!(set.errors, vec![], "{text}");
    IpOnlyRules::new(&set.rules)
}

fn at(text: &str) -> SocketAddr {
    text.parse().expect("a socket address")
}

/// The sids of `rules` matching a packet of `proto` from `src` to `dst`.
fn sids(rules: &IpOnlyRules, proto: u8, src: &str, dst: &str) -> Vec<u32> {
    rules
        .matching(proto, at(src), at(dst))
        .into_iter()
        .map(|r| rules.rules()[r].sid)
        .collect()
}

const TCP: u8 = ip_proto::TCP;

#[test]
fn listed_networks_match_by_prefix_and_unlisted_ones_do_not() {
    let rules = index(
        "alert ip [192.0.2.1,198.51.100.0/24,203.0.113.128/25] any -> $HOME_NET any (msg:\"listed\"; sid:1;)",
    );
    for src in ["192.0.2.1:1", "198.51.100.77:1", "203.0.113.200:1"] {
        assert_eq!(sids(&rules, TCP, src, "10.0.0.5:80"), [1], "{src}");
    }
    for src in ["192.0.2.2:1", "198.51.101.1:1", "203.0.113.127:1"] {
        assert_eq!(
            sids(&rules, TCP, src, "10.0.0.5:80"),
            [] as [u32; 0],
            "{src}"
        );
    }
    // The other side is checked whole: not to the home network.
    assert_eq!(
        sids(&rules, TCP, "192.0.2.1:1", "8.8.8.8:53"),
        [] as [u32; 0]
    );
}

#[test]
fn the_direction_is_kept_unless_the_rule_says_either_way() {
    let rules = index(
        "alert ip [192.0.2.1] any -> $HOME_NET any (sid:1;)\n\
         alert ip $HOME_NET any -> [198.51.100.9] any (sid:2;)\n\
         alert ip [203.0.113.5] any <> $HOME_NET any (sid:3;)",
    );
    assert_eq!(sids(&rules, TCP, "192.0.2.1:1", "10.0.0.5:80"), [1]);
    assert_eq!(
        sids(&rules, TCP, "10.0.0.5:80", "192.0.2.1:1"),
        [] as [u32; 0]
    );
    assert_eq!(sids(&rules, TCP, "10.0.0.5:1", "198.51.100.9:443"), [2]);
    assert_eq!(
        sids(&rules, TCP, "198.51.100.9:443", "10.0.0.5:1"),
        [] as [u32; 0]
    );
    assert_eq!(sids(&rules, TCP, "203.0.113.5:1", "10.0.0.5:80"), [3]);
    assert_eq!(sids(&rules, TCP, "10.0.0.5:80", "203.0.113.5:1"), [3]);
}

#[test]
fn negations_ports_protocols_and_ipv6_are_checked_whole() {
    let rules = index(
        "alert ip [198.51.100.0/24,!198.51.100.7] any -> any any (sid:1;)\n\
         alert tcp [192.0.2.0/24] any -> $HOME_NET [22,3389] (sid:2;)\n\
         alert udp [192.0.2.0/24] any -> $HOME_NET any (sid:3;)\n\
         alert icmp [2001:db8::/32] any -> any any (sid:4;)\n\
         alert ip [2001:db8:1::1] any -> [2001:db8:2::/48] any (sid:5;)",
    );
    assert_eq!(sids(&rules, TCP, "198.51.100.6:1", "1.1.1.1:1"), [1]);
    assert_eq!(
        sids(&rules, TCP, "198.51.100.7:1", "1.1.1.1:1"),
        [] as [u32; 0]
    );
    assert_eq!(sids(&rules, TCP, "192.0.2.3:1", "10.0.0.1:22"), [2]);
    assert_eq!(
        sids(&rules, TCP, "192.0.2.3:1", "10.0.0.1:80"),
        [] as [u32; 0]
    );
    assert_eq!(
        sids(&rules, ip_proto::UDP, "192.0.2.3:1", "10.0.0.1:22"),
        [3]
    );
    assert_eq!(
        sids(
            &rules,
            ip_proto::ICMPV6,
            "[2001:db8::9]:0",
            "[2001:db9::1]:0"
        ),
        [4]
    );
    assert_eq!(
        sids(&rules, TCP, "[2001:db8::9]:1", "[2001:db9::1]:1"),
        [] as [u32; 0]
    );
    assert_eq!(
        sids(&rules, TCP, "[2001:db8:1::1]:1", "[2001:db8:2:ff::1]:1"),
        [5]
    );
    assert_eq!(
        sids(&rules, TCP, "[2001:db8:1::2]:1", "[2001:db8:2:ff::1]:1"),
        [] as [u32; 0]
    );
    // An IPv4 address never hits an IPv6 network of the same bits.
    assert_eq!(
        sids(&rules, TCP, "32.1.13.184:1", "1.1.1.1:1"),
        [] as [u32; 0]
    );
}

#[test]
fn each_rule_is_indexed_by_its_narrowest_side() {
    let rules = index(
        "alert ip $HOME_NET any -> [198.51.100.9,192.0.2.0/24] any (sid:1;)\n\
         alert ip [10.1.2.3] any -> $HOME_NET any (sid:2;)",
    );
    // The list of sid 1 (257 addresses), not the home network; sid 2's
    // one address, not the home network, though it is inside it.
    let lens: Vec<u8> = rules.v4.iter().map(|p| p.len).collect();
    assert!(
        !lens.contains(&8) && !lens.contains(&12) && !lens.contains(&16),
        "{lens:?}"
    );
    assert_eq!(sids(&rules, TCP, "10.1.2.3:1", "10.9.9.9:1"), [2]);
    assert_eq!(sids(&rules, TCP, "192.168.1.1:1", "192.0.2.77:1"), [1]);
}

#[test]
fn thousands_of_networks_are_looked_up_in_a_few_probes() {
    let list: Vec<String> = (0..4000u32)
        .map(|i| format!("{}.{}.{}.0/24", 11 + i / 65_536, (i / 256) % 256, i % 256))
        .collect();
    let rules = index(
        &(0..4)
            .map(|r| {
                let part = list[r * 1000..(r + 1) * 1000].join(",");
                format!("alert ip [{part}] any -> $HOME_NET any (sid:{};)\n", r + 1)
            })
            .collect::<String>(),
    );
    assert_eq!(rules.v4.len(), 1, "one prefix length, one probe");
    assert_eq!(sids(&rules, TCP, "11.0.3.9:1", "10.0.0.1:1"), [1]);
    assert_eq!(sids(&rules, TCP, "11.15.159.9:1", "10.0.0.1:1"), [4]);
    assert_eq!(
        sids(&rules, TCP, "11.16.0.9:1", "10.0.0.1:1"),
        [] as [u32; 0]
    );
}

fn flow(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, first_seen_ns: u64) -> FlowStats {
    let (key, dir) = FlowKey::of(
        &IpKey::from_v4(src),
        sport,
        &IpKey::from_v4(dst),
        dport,
        TCP,
    );
    let mut stats = FlowStats {
        key,
        first_seen_ns,
        last_seen_ns: first_seen_ns,
        opener: dir as u8,
        ..FlowStats::ZERO
    };
    stats.packets[dir] = 1;
    stats
}

#[test]
fn a_flow_is_looked_up_once_and_thresholds_hold() {
    let set = parse_rules(
        "alert tcp [192.0.2.1,192.0.2.2] any -> $HOME_NET any (msg:\"listed\"; \
         threshold: type limit, track by_src, seconds 60, count 1; sid:7; rev:3;)",
        "t.rules",
    );
    let mut lookups = FlowLookups::new(IpOnlyRules::new(&set.rules));
    let now = Instant::now();
    let second = 1_000_000_000;
    let first = flow([192, 0, 2, 1], 40_000, [10, 0, 0, 5], 22, 10 * second);
    lookups.start_walk(11 * second);
    let found = lookups.flow(&first.key, &first, now);
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].sid, found[0].rev), (7, 3));
    assert_eq!(found[0].src, at("192.0.2.1:40000"));
    assert_eq!(found[0].dst, at("10.0.0.5:22"));
    // The next walk: the same flow is not new; another from the same
    // source is, but its threshold holds it; another source's is not held.
    lookups.start_walk(12 * second);
    assert_eq!(lookups.flow(&first.key, &first, now), []);
    let again = flow([192, 0, 2, 1], 40_001, [10, 0, 0, 5], 22, 11 * second + 5);
    assert_eq!(lookups.flow(&again.key, &again, now), []);
    let other = flow([192, 0, 2, 2], 40_000, [10, 0, 0, 5], 22, 11 * second + 5);
    assert_eq!(lookups.flow(&other.key, &other, now).len(), 1);
    // Past the window, the first source alerts again.
    let later = flow([192, 0, 2, 1], 40_002, [10, 0, 0, 5], 22, 11 * second + 9);
    let found = lookups.flow(&later.key, &later, now + Duration::from_secs(61));
    assert_eq!(found.len(), 1);
    // A flow from the home network to the listed address does not match.
    let answer = flow([10, 0, 0, 5], 22, [192, 0, 2, 2], 40_009, 11 * second + 9);
    assert_eq!(lookups.flow(&answer.key, &answer, now), []);
}

#[test]
fn a_flow_begun_as_a_walk_started_is_looked_up_by_one_walk_only() {
    let set = parse_rules("alert ip [192.0.2.1] any -> any any (sid:1;)", "t.rules");
    let mut lookups = FlowLookups::new(IpOnlyRules::new(&set.rules));
    let now = Instant::now();
    let walk = 5_000_000_000;
    // Stamped just before the walk began: seen by this walk and the next.
    let edge = flow([192, 0, 2, 1], 1, [10, 0, 0, 5], 2, walk - 1_000);
    lookups.start_walk(walk);
    assert_eq!(lookups.flow(&edge.key, &edge, now).len(), 1);
    lookups.start_walk(walk + 1_000_000_000);
    assert_eq!(lookups.flow(&edge.key, &edge, now), []);
    // One the first walk did not see (put in the table after it passed).
    let missed = flow([192, 0, 2, 1], 3, [10, 0, 0, 5], 2, walk - 2_000);
    assert_eq!(lookups.flow(&missed.key, &missed, now).len(), 1);
}
