//! The flow table: both directions of a connection in one entry, with
//! packets, bytes and TCP flags each way and the end that opened it; what
//! belongs to no flow; the new-flow rate limit, which counts what it
//! skips; and two CPUs counting at once, which lose no count and cross
//! each threshold once.

use std::{collections::HashSet, net::Ipv4Addr};

use aya::programs::TestRun as _;

use nta_common::{
    Counter, IpKey,
    classify::{DstClass, Probe},
    flow::{FlowKey, FlowStats, HIGH_TO_LOW, LOW_TO_HIGH},
    maps::{EventKind, RateClass, Thresholds, feature, ip_proto},
};

use crate::support::{
    self,
    frames::{self, DST_V4, Ipv4, SRC_V4, Tcp, tcp_flags},
    xdp::{Xdp, pin_to_cpu, pin_to_one_cpu, quiet},
};

fn load(thresholds: &Thresholds) -> Xdp {
    Xdp::load_with(feature::ALL, Some(thresholds))
}

fn flows(xdp: &Xdp) -> Vec<(FlowKey, FlowStats)> {
    xdp.sensor.flows().expect("reading FLOWS")
}

/// The key of a TCP connection from `SRC_V4`:`port` to `DST_V4`:80, and
/// the client's direction in it.
fn client_flow(port: u16) -> (FlowKey, usize) {
    FlowKey::of(
        &IpKey::from(std::net::IpAddr::from(SRC_V4)),
        port,
        &IpKey::from(std::net::IpAddr::from(DST_V4)),
        80,
        ip_proto::TCP,
    )
}

#[test]
fn a_connection_is_one_flow_counted_each_way() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(&quiet());
    let client = |tcp: Tcp| frames::tcp_v4(SRC_V4, DST_V4, &tcp);
    let server = |tcp: Tcp| frames::tcp_v4(DST_V4, SRC_V4, &tcp);
    let syn = frames::syn_v4(SRC_V4, DST_V4, 40_000, 80);
    let syn_ack = server(Tcp::new(80, 40_000, tcp_flags::SYN | tcp_flags::ACK));
    let request = client(Tcp::new(40_000, 80, tcp_flags::PSH | tcp_flags::ACK).payload(b"GET /"));
    let fin = client(Tcp::new(40_000, 80, tcp_flags::FIN | tcp_flags::ACK));
    for frame in [&syn, &syn_ack, &request, &fin] {
        xdp.pass(frame);
    }
    let all = flows(&xdp);
    assert_eq!(all.len(), 1, "{all:?}");
    let (key, f) = all[0];
    let (expected, client_dir) = client_flow(40_000);
    assert_eq!(key, expected);
    let server_dir = 1 - client_dir;
    assert_eq!(usize::from(f.opener), client_dir);
    assert_eq!(f.packets[client_dir], 3);
    assert_eq!(f.packets[server_dir], 1);
    let len = |frames: &[&Vec<u8>]| frames.iter().map(|f| f.len() as u64).sum::<u64>();
    assert_eq!(f.bytes[client_dir], len(&[&syn, &request, &fin]));
    assert_eq!(f.bytes[server_dir], len(&[&syn_ack]));
    use tcp_flags::{ACK, FIN, PSH, SYN};
    assert_eq!(f.flags_from(client_dir), SYN | ACK | PSH | FIN);
    assert_eq!(f.flags_from(server_dir), SYN | ACK);
    assert_eq!(f.payload_packets[client_dir], 1);
    assert_eq!(f.payload_packets[server_dir], 0);
    assert!(f.first_seen_ns > 0 && f.first_seen_ns <= f.last_seen_ns);
    assert_eq!(xdp.counter(Counter::FlowsNew), 1);
    assert!([LOW_TO_HIGH, HIGH_TO_LOW].contains(&client_dir));
}

/// Whether the tests that need two CPUs can run: as root, on a machine
/// with two (which CI must have).
fn two_cpus() -> bool {
    if !support::privileged() {
        return false;
    }
    if std::thread::available_parallelism().map_or(1, usize::from) < 2 {
        assert!(!support::in_ci(), "two CPUs needed");
        return false;
    }
    true
}

/// Ends every flow in the table as the exporter does, which frees their
/// entries; returns how many it ended.
fn end_every_flow(xdp: &Xdp) -> usize {
    let mut table = xdp.sensor.flow_table().expect("the flow table");
    let mut walk = table.walk(256).expect("a walk of the flow table");
    let mut ended = 0;
    while let Some(batch) = walk
        .next(|_, _| nta_agent::flows::Pick::End)
        .expect("walking the flow table")
    {
        ended += batch.len();
    }
    ended
}

/// Runs the program on `frame` `runs` times on each of CPUs 0 and 1 at
/// once, then keeps this thread on CPU 0.
fn run_on_both_cpus(xdp: &mut Xdp, frame: &[u8], runs: u32) {
    run_each_on_a_cpu(xdp, [frame, frame], runs);
}

/// Runs the program `runs` times on `frames[0]` on CPU 0 and on
/// `frames[1]` on CPU 1 at once, then keeps this thread on CPU 0.
fn run_each_on_a_cpu(xdp: &mut Xdp, frames: [&[u8]; 2], runs: u32) {
    let program = &*xdp.sensor.xdp().expect("the loaded XDP program");
    std::thread::scope(|threads| {
        for (cpu, frame) in frames.into_iter().enumerate() {
            threads.spawn(move || {
                pin_to_cpu(cpu);
                let run = program
                    .test_run(aya::TestRunOptions {
                        data_in: Some(frame),
                        repeat: runs,
                        ..Default::default()
                    })
                    .expect("test run");
                assert_eq!(run.return_value, support::xdp::XDP_PASS);
            });
        }
    });
    pin_to_one_cpu();
}

#[test]
fn a_connection_seen_on_two_cpus_is_one_flow_with_all_its_counts() {
    if !two_cpus() {
        return;
    }
    let mut xdp = load(&quiet());
    let syn = frames::syn_v4(SRC_V4, DST_V4, 40_000, 80);
    let syn_ack = frames::tcp_v4(
        DST_V4,
        SRC_V4,
        &Tcp::new(80, 40_000, tcp_flags::SYN | tcp_flags::ACK),
    );
    let data = frames::tcp_v4(
        SRC_V4,
        DST_V4,
        &Tcp::new(40_000, 80, tcp_flags::ACK).payload(b"x"),
    );
    // The client's packets on CPU 1, the server's on CPU 0, as RSS may
    // spread the two directions of a connection.
    pin_to_cpu(1);
    xdp.pass(&syn);
    pin_to_cpu(0);
    xdp.pass(&syn_ack);
    pin_to_cpu(1);
    xdp.pass(&data);
    pin_to_one_cpu();
    let all = flows(&xdp);
    assert_eq!(all.len(), 1, "{all:?}");
    let (key, f) = all[0];
    assert_eq!(f.key, key);
    let client_dir = usize::from(f.opener);
    let server_dir = 1 - client_dir;
    // The client opened it, on CPU 1; the server's reply, counted on CPU
    // 0, is in the same entry.
    assert_eq!(
        (f.packets[client_dir], f.packets[server_dir]),
        (2, 1),
        "{f:?}"
    );
    assert_eq!(f.bytes[server_dir], syn_ack.len() as u64);
    use tcp_flags::{ACK, SYN};
    assert_eq!(f.flags_from(client_dir), SYN | ACK);
    assert_eq!(f.flags_from(server_dir), SYN | ACK);
    assert_eq!(f.payload_packets[client_dir], 1);
    assert_eq!(xdp.counter(Counter::FlowsNew), 1);
    // Each direction is owned by the CPU that saw it first, so both count
    // with plain adds.
    assert_eq!(
        (f.owner(client_dir), f.owner(server_dir)),
        (Some(1), Some(0)),
        "{f:?}"
    );
}

/// Two CPUs counting one connection at the same time lose nothing: the
/// flow's entry, like the source's and the destination's, is shared; the
/// direction's owner counts with plain adds and the other CPU with locked
/// ones into fields of its own (plain adds from both lost 1 133 of these
/// 600 000 packets in one run). Both CPUs often miss the lookup and both insert:
/// the flow is still new once (counted on insert, it was twice in 18 of 40
/// runs).
#[test]
fn two_cpus_counting_one_flow_at_once_lose_nothing() {
    if !two_cpus() {
        return;
    }
    const RUNS: u32 = 300_000;
    let mut xdp = load(&quiet());
    let data = frames::tcp_v4(
        SRC_V4,
        DST_V4,
        &Tcp::new(40_000, 80, tcp_flags::PSH | tcp_flags::ACK).payload(b"x"),
    );
    run_on_both_cpus(&mut xdp, &data, RUNS);
    let all = flows(&xdp);
    assert_eq!(all.len(), 1, "{all:?}");
    let f = all[0].1;
    let dir = usize::from(f.opener);
    let sent = 2 * u64::from(RUNS);
    assert_eq!(f.packets[dir], sent, "{f:?}");
    assert_eq!(f.bytes[dir], sent * data.len() as u64);
    assert_eq!(f.payload_packets[dir], sent);
    assert_eq!(f.packets[1 - dir], 0);
    assert_eq!(xdp.counter(Counter::FlowsNew), 1);
    assert_eq!(xdp.source(SRC_V4).packets(), sent);
    assert_eq!(xdp.source(SRC_V4).bytes, sent * data.len() as u64);
    let to = xdp.dst_host(DST_V4);
    assert_eq!(
        to.packets[nta_common::classify::DstClass::All as usize],
        sent
    );
}

/// The two directions of a new flow, each on its own CPU at the same
/// instant, then each on the other's: both CPUs race for the entry and for
/// the two owners' halves of one word, then count as the other; nothing is
/// lost either way.
#[test]
fn both_directions_of_a_new_flow_on_two_cpus_at_once_lose_nothing() {
    if !two_cpus() {
        return;
    }
    const RUNS: u32 = 200_000;
    let mut xdp = load(&quiet());
    let request = frames::tcp_v4(
        SRC_V4,
        DST_V4,
        &Tcp::new(40_000, 80, tcp_flags::ACK).payload(b"request"),
    );
    let reply = frames::tcp_v4(
        DST_V4,
        SRC_V4,
        &Tcp::new(80, 40_000, tcp_flags::ACK).payload(b"a longer reply"),
    );
    run_each_on_a_cpu(&mut xdp, [&request, &reply], RUNS);
    run_each_on_a_cpu(&mut xdp, [&reply, &request], RUNS);
    let all = flows(&xdp);
    assert_eq!(all.len(), 1, "{all:?}");
    let f = all[0].1;
    let (_, client_dir) = client_flow(40_000);
    let server_dir = 1 - client_dir;
    let sent = 2 * u64::from(RUNS);
    assert_eq!(
        (f.packets[client_dir], f.packets[server_dir]),
        (sent, sent),
        "{f:?}"
    );
    assert_eq!(f.bytes[client_dir], sent * request.len() as u64);
    assert_eq!(f.bytes[server_dir], sent * reply.len() as u64);
    assert_eq!(f.payload_packets, [sent; 2]);
    assert!(
        f.owner(client_dir).is_some() && f.owner(server_dir).is_some(),
        "{f:?}"
    );
    assert_eq!(xdp.counter(Counter::FlowsNew), 1);
}

/// Two CPUs sending one source's SYNs to one destination at once cross
/// each threshold once: each window count is a fetch-add, whose result
/// tells which packet crossed.
#[test]
fn two_cpus_flooding_at_once_cross_each_threshold_once() {
    if !two_cpus() {
        return;
    }
    const RUNS: u32 = 300_000;
    // Crossed by the packet that makes RUNS + 1: most often while both
    // CPUs run.
    let mut thresholds = quiet();
    thresholds.source[RateClass::Syn as usize] = RUNS;
    thresholds.dst_packets[DstClass::Syn as usize] = RUNS;
    let mut xdp = load(&thresholds);
    let syn = frames::syn_v4(SRC_V4, DST_V4, 40_000, 80);
    run_on_both_cpus(&mut xdp, &syn, RUNS);
    let crossed = u64::from(RUNS) + 1;
    let events: Vec<_> = xdp
        .events()
        .iter()
        .map(|e| (EventKind::from_u32(e.kind), e.class, e.count))
        .collect();
    assert_eq!(
        events.iter().collect::<HashSet<_>>().len(),
        events.len(),
        "{events:?}"
    );
    assert!(
        events.contains(&(Some(EventKind::SourceRate), RateClass::Syn as u32, crossed)),
        "{events:?}"
    );
    assert!(
        events.contains(&(Some(EventKind::DstPackets), DstClass::Syn as u32, crossed)),
        "{events:?}"
    );
    // Every other threshold is disabled: these two crossings are all, so
    // neither fired again at another count.
    assert_eq!(events.len(), 2, "{events:?}");
    let sent = 2 * u64::from(RUNS);
    let s = xdp.source(SRC_V4);
    assert_eq!(s.probes[Probe::Syn as usize], sent);
    assert_eq!(s.window_counts[RateClass::Syn as usize], sent);
    assert_eq!(xdp.counter(Counter::EventsLost), 0);
}

#[test]
fn udp_and_icmp_are_flows_and_later_fragments_are_not() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(&quiet());
    xdp.pass(&frames::udp_v4(SRC_V4, DST_V4, 5353, 53, b"query"));
    xdp.pass(&frames::udp_v4(DST_V4, SRC_V4, 53, 5353, b"answer"));
    xdp.pass(&frames::ping_v4(SRC_V4, DST_V4));
    xdp.pass(
        &Ipv4::new(SRC_V4, DST_V4, ip_proto::UDP)
            .fragment(false, 3)
            .frame(&[0; 16]),
    );
    let mut all: Vec<(u8, u16, u64)> = flows(&xdp)
        .iter()
        .map(|(k, f)| {
            (
                k.proto,
                k.low_port.max(k.high_port),
                f.packets[0] + f.packets[1],
            )
        })
        .collect();
    all.sort_unstable();
    assert_eq!(all, [(ip_proto::ICMP, 0, 1), (ip_proto::UDP, 5353, 2)]);
}

#[test]
fn a_blocked_source_makes_no_flow() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(&quiet());
    xdp.block(&format!("{SRC_V4}/32"));
    assert_eq!(
        xdp.run(&frames::syn_v4(SRC_V4, DST_V4, 40_000, 80)),
        crate::support::xdp::XDP_DROP
    );
    assert_eq!(flows(&xdp), []);
    assert_eq!(xdp.counter(Counter::FlowsNew), 0);
}

/// A full table keeps the flows it holds, to write their records, and
/// counts the new ones it has no room for; once the agent has ended some,
/// new flows take their entries.
#[test]
fn a_full_flow_table_keeps_its_flows_and_counts_what_it_skips() {
    if !support::privileged() {
        return;
    }
    pin_to_one_cpu();
    let size = 1_024;
    let options = nta_agent::sensor::LoadOptions {
        flow_table_size: size,
        ..Default::default()
    };
    let mut xdp = Xdp::load_with_options(&options, Some(&quiet()));
    let key = |port: u16| client_flow(port).0;
    let flows_sent = 3_000;
    // A capture's reader holds as many as the kernel's table, and likewise
    // pushes none out for a new one.
    let reader = nta_agent::capture::Counts::new(quiet(), size);
    reader.set_time(jiff::Timestamp::now());
    for port in 0..flows_sent {
        let syn = frames::syn_v4(SRC_V4, DST_V4, 20_000 + port, 80);
        xdp.pass(&syn);
        let len = u32::try_from(syn.len()).expect("a frame's length");
        reader.frame(nta_agent::capture::Link::Ethernet, &syn, len);
    }
    let read: HashSet<FlowKey> = reader.flows().iter().map(|(k, _)| *k).collect();
    let first_ports = 20_000..20_000 + size as u16;
    assert_eq!(read, first_ports.map(key).collect());
    let reader_skipped = reader.global().get(Counter::FlowsSkipped);
    assert_eq!(reader_skipped, u64::from(flows_sent - size as u16));
    let held = flows(&xdp);
    let (new, skipped) = (
        xdp.counter(Counter::FlowsNew),
        xdp.counter(Counter::FlowsSkipped),
    );
    // Two buckets to choose from: the table fills almost to the last entry.
    assert!(
        held.len() > size as usize * 98 / 100 && held.len() <= size as usize,
        "{} flows held",
        held.len()
    );
    assert_eq!(new, held.len() as u64);
    assert_eq!(new + skipped, u64::from(flows_sent));
    // The first flows found room: nothing was pushed out.
    let held_keys: HashSet<FlowKey> = held.iter().map(|(k, _)| *k).collect();
    for port in 20_000..20_000 + 500 {
        assert!(
            held_keys.contains(&key(port)),
            "the flow from port {port} was pushed out"
        );
    }

    // The agent ends every flow: the entries go back to the pool, and new
    // flows take them; three times, so that the pool's ring of given-back
    // entries comes round more than once.
    let mut held = held.len();
    for lap in 1..=3u16 {
        assert_eq!(end_every_flow(&xdp), held, "lap {lap}");
        assert_eq!(flows(&xdp), []);
        let first_port = 20_000 + lap * 10_000;
        for port in 0..flows_sent {
            xdp.pass(&frames::syn_v4(SRC_V4, DST_V4, first_port + port, 80));
        }
        let again = flows(&xdp);
        assert!(
            again.len() > size as usize * 98 / 100,
            "lap {lap}: {}",
            again.len()
        );
        assert!(again.iter().any(|(k, _)| *k == key(first_port)));
        // Each flow in an entry of its own: none counted twice.
        assert!(
            again
                .iter()
                .all(|(_, f)| f.packets.iter().sum::<u64>() == 1)
        );
        held = again.len();
    }
}

/// Two CPUs inserting the same new flows at the same instant race for the
/// same ways: the one that loses keeps the entry it took from the pool for
/// its next insert, so a full table, emptied and filled again lap after
/// lap, keeps its whole capacity.
#[test]
fn two_cpus_inserting_the_same_flows_at_once_lose_no_entry() {
    if !two_cpus() {
        return;
    }
    let size = 1_024;
    let options = nta_agent::sensor::LoadOptions {
        flow_table_size: size,
        ..Default::default()
    };
    let mut xdp = Xdp::load_with_options(&options, Some(&quiet()));
    for lap in 0..5u16 {
        let first_port = 10_000 + lap * 5_000;
        let syns: Vec<Vec<u8>> = (0..3_000)
            .map(|i| frames::syn_v4(SRC_V4, DST_V4, first_port + i, 80))
            .collect();
        let program = &*xdp.sensor.xdp().expect("the loaded XDP program");
        let start = std::sync::Barrier::new(2);
        std::thread::scope(|threads| {
            for cpu in [0, 1] {
                let (syns, start) = (&syns, &start);
                threads.spawn(move || {
                    pin_to_cpu(cpu);
                    start.wait();
                    for syn in syns {
                        let run = program
                            .test_run(aya::TestRunOptions {
                                data_in: Some(syn),
                                repeat: 1,
                                ..Default::default()
                            })
                            .expect("test run");
                        assert_eq!(run.return_value, support::xdp::XDP_PASS);
                    }
                });
            }
        });
        pin_to_one_cpu();
        let held = flows(&xdp);
        assert!(
            held.len() > size as usize * 98 / 100 && held.len() <= size as usize,
            "lap {lap}: {} flows held",
            held.len()
        );
        assert_eq!(end_every_flow(&xdp), held.len(), "lap {lap}");
        assert_eq!(flows(&xdp), [], "lap {lap}");
    }
}

#[test]
fn new_flows_above_the_rate_limit_are_counted_not_inserted() {
    if !support::privileged() {
        return;
    }
    pin_to_one_cpu();
    let mut xdp = load(&Thresholds {
        new_flows_per_cpu: 5,
        ..quiet()
    });
    for port in 0..10 {
        xdp.pass(&frames::syn_v4(SRC_V4, DST_V4, 40_000 + port, 80));
    }
    // A flow already in the table is counted whatever the rate.
    xdp.pass(&frames::syn_v4(SRC_V4, DST_V4, 40_000, 80));
    assert_eq!(flows(&xdp).len(), 5);
    assert_eq!(xdp.counter(Counter::FlowsNew), 5);
    assert_eq!(xdp.counter(Counter::FlowsSkipped), 5);
    let total: u64 = flows(&xdp)
        .iter()
        .map(|(_, f)| f.packets[0] + f.packets[1])
        .sum();
    assert_eq!(total, 6);
}

/// A full table of sources, each with its flow: the agent reads both whole,
/// each source with its one SYN, each flow with its one packet. The table
/// of sources fills until a new source finds both its buckets full, and
/// counts those it turns away.
#[test]
fn full_tables_of_sources_and_flows_are_read_whole() {
    if !support::privileged() {
        return;
    }
    let mut xdp = load(&quiet());
    let n = nta_common::maps::SOURCES_MAX_ENTRIES;
    let sent = |i: u32| Ipv4Addr::from(0xc612_0000 | i);
    for i in 0..n {
        let frame = frames::syn_v4(sent(i), "198.19.0.1".parse().unwrap(), 40_000, 80);
        xdp.pass(&frame);
    }
    let started = std::time::Instant::now();
    let snapshot = xdp.snapshot();
    let read_sources = started.elapsed();
    let started = std::time::Instant::now();
    let all_flows = flows(&xdp);
    let read_flows = started.elapsed();
    // The exporter's walk, in place, keeping every flow.
    let started = std::time::Instant::now();
    let mut walked = 0u32;
    let mut table = xdp.sensor.flow_table().expect("the flow table");
    let mut walk = table.walk(1_024).expect("a walk of the flow table");
    while walk
        .next(|_, f| {
            walked += u32::from(f.packets.iter().sum::<u64>() == 1);
            nta_agent::flows::Pick::Keep
        })
        .expect("walking the flow table")
        .is_some()
    {}
    let walk_flows = started.elapsed();
    println!(
        "{n} sources read in {read_sources:?}, {} flows in {read_flows:?}, walked in {walk_flows:?}",
        all_flows.len()
    );
    assert_eq!(walked, n);
    // Two buckets of eight ways a source: a full table turns away about
    // one new source in twenty, and counts each.
    let held = snapshot.sources.len() as u64;
    let skipped = snapshot.global.get(Counter::SourcesSkipped);
    println!("{held} sources held, {skipped} turned away");
    assert_eq!(held + skipped, u64::from(n));
    assert!(held >= u64::from(n) / 10 * 9, "{held} of {n}");
    let range = u32::from(sent(0))..=u32::from(sent(n - 1));
    for (key, view) in &snapshot.sources {
        let std::net::IpAddr::V4(addr) = std::net::IpAddr::from(*key) else {
            panic!("{key:?} is not one of the sources");
        };
        assert!(range.contains(&u32::from(addr)), "{addr}");
        assert_eq!(view.packets, 1, "{addr}");
    }
    assert_eq!(all_flows.len(), n as usize);
    assert!(
        all_flows
            .iter()
            .all(|(_, f)| f.packets.iter().sum::<u64>() == 1)
    );
}
