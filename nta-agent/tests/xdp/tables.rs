//! The tables of sources and destinations: the agent reads them in place
//! and frees what has been idle, past every window, or past the short
//! ones while a table is three quarters full.

use std::net::{IpAddr, Ipv4Addr};

use nta_agent::sensor::{Idle, monotonic_ns};
use nta_common::{
    Counter, IpKey,
    classify::DstClass,
    maps::{DST_HOSTS_MAX_ENTRIES, SOURCES_MAX_ENTRIES, Thresholds, feature},
};

use crate::support::{
    self,
    frames::{self, DST_V4, SRC_V4},
    xdp::{Xdp, quiet},
};

const SECOND: u64 = 1_000_000_000;

#[test]
fn idle_sources_and_destinations_are_freed_and_come_back_from_zero() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    let syn = frames::syn_v4(SRC_V4, DST_V4, 40_000, 80);
    xdp.pass_repeat(&syn, 3);
    let (src, dst) = (IpAddr::V4(SRC_V4), IpAddr::V4(DST_V4));
    let idle = Idle::for_thresholds(&quiet());
    let now = monotonic_ns();

    // A second short of idle: kept.
    let snapshot = xdp
        .sensor
        .snapshot_at(now + idle.after_ns - SECOND)
        .expect("a snapshot");
    assert_eq!(
        snapshot.sources.get(&IpKey::from(src)).map(|s| s.packets),
        Some(3)
    );
    assert!(xdp.sensor.source(src).expect("SOURCES").is_some());

    // Idle past it: read a last time, then freed.
    let snapshot = xdp
        .sensor
        .snapshot_at(now + idle.after_ns + SECOND)
        .expect("a snapshot");
    assert_eq!(
        snapshot.sources.get(&IpKey::from(src)).map(|s| s.packets),
        Some(3)
    );
    assert!(snapshot.dst_hosts.contains_key(&IpKey::from(dst)));
    assert_eq!(xdp.sensor.source(src).expect("SOURCES"), None);
    assert_eq!(xdp.sensor.dst_host(dst).expect("DST_HOSTS"), None);
    let snapshot = xdp.snapshot();
    assert!(snapshot.sources.is_empty(), "{:?}", snapshot.sources);
    assert!(snapshot.dst_hosts.is_empty(), "{:?}", snapshot.dst_hosts);

    // Back: counted from zero, in a way of its own again.
    xdp.pass(&syn);
    assert_eq!(xdp.source(src).packets(), 1);
    assert_eq!(xdp.dst_host(dst).packets[DstClass::All as usize], 1);
    assert_eq!(xdp.counter(Counter::SourcesSkipped), 0);
}

#[test]
fn a_table_three_quarters_full_frees_what_the_short_windows_no_longer_need() {
    if !support::privileged() {
        return;
    }
    // Windows of seconds (the rate, fast, weighted and burst windows) and
    // a minute (the slow one): under pressure, idle past the short ones
    // is enough.
    let thresholds = Thresholds::DISABLED;
    let idle = Idle::for_thresholds(&thresholds);
    assert!(idle.pressed_after_ns < idle.after_ns, "{idle:?}");
    let mut xdp = Xdp::load_with(feature::ALL, Some(&thresholds));
    let n = SOURCES_MAX_ENTRIES / 4 * 3 + 1_024;
    for i in 0..n {
        let src = Ipv4Addr::from(0xc612_0000 | i);
        xdp.pass(&frames::syn_v4(src, DST_V4, 40_000, 80));
    }
    let later = monotonic_ns() + idle.pressed_after_ns + SECOND;
    let sources = |xdp: &Xdp| xdp.sensor.snapshot_at(later).expect("a snapshot");

    // The first read finds the table full, and frees nothing: idle past
    // the short windows is not idle enough for a table with room.
    let first = sources(&xdp);
    let held = first.sources.len() as u64;
    assert_eq!(
        held + first.global.get(Counter::SourcesSkipped),
        u64::from(n)
    );
    // The next frees every source, after reading it; the one destination
    // is in a table with room, and stays.
    let second = sources(&xdp);
    assert_eq!(second.sources.len() as u64, held);
    let third = sources(&xdp);
    assert!(
        third.sources.is_empty(),
        "{} sources left",
        third.sources.len()
    );
    assert!(
        third
            .dst_hosts
            .contains_key(&IpKey::from(IpAddr::V4(DST_V4)))
    );

    // Room again: a source new to the table takes a way.
    let skipped = xdp.counter(Counter::SourcesSkipped);
    xdp.pass(&frames::syn_v4(SRC_V4, DST_V4, 40_000, 80));
    assert_eq!(xdp.source(IpAddr::V4(SRC_V4)).packets(), 1);
    assert_eq!(xdp.counter(Counter::SourcesSkipped), skipped);
}

/// Destinations come from the network as sources do: a full table of them
/// turns new ones away, and counts each packet it could not count there.
#[test]
fn a_full_table_of_destinations_counts_the_packets_it_turns_away() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load();
    let n = DST_HOSTS_MAX_ENTRIES;
    for i in 0..n {
        let dst = Ipv4Addr::from(0xc613_0000 | i);
        xdp.pass(&frames::syn_v4(SRC_V4, dst, 40_000, 80));
    }
    let snapshot = xdp.snapshot();
    let held = snapshot.dst_hosts.len() as u64;
    let skipped = snapshot.global.get(Counter::DstHostsSkipped);
    println!("{held} destinations held, {skipped} turned away");
    assert_eq!(held + skipped, u64::from(n));
    // Two buckets of eight ways a key: a full table has turned some away.
    assert!(skipped > 0, "{held} of {n} held");
    for view in snapshot.dst_hosts.values() {
        assert_eq!(view.packets[DstClass::All as usize], 1);
    }
}
