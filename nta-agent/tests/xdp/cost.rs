//! The XDP program's time per packet, by kind of packet, with
//! BPF_PROG_TEST_RUN: the agent's thresholds and sampling are loaded, so
//! the window, event and sampling code runs as it does in production.
//!
//! Needs root (BPF). The benchmarks are ignored; run them with `cargo test
//! --release -p nta-agent --test xdp -- --test-threads=1 --ignored
//! --nocapture cost::`, or through `cargo xtask bench`.

use std::{net::Ipv4Addr, time::Duration};

use nta_agent::config::Config;
use nta_common::maps::{feature, ip_proto};

use crate::support::{
    self,
    figures::{self, Target},
    frames::{
        self, DST_V4, DST_V6, ETH_HLEN, ETH_P_IPV4, IPV4_HLEN, Ipv4, SRC_V4, SRC_V6, Tcp, VlanTag,
        tcp_flags,
    },
    usage::BpfStats,
    xdp::{XDP_DROP, XDP_PASS, Xdp, pin_to_cpu, pin_to_one_cpu},
};

const RUNS: u32 = 1_000_000;
const ROUNDS: usize = 5;
/// Rounds of the part-by-part table: its ratios compare two of its cells,
/// and on a shared 2-CPU machine five rounds left them ±15 % apart from
/// one run to the next.
const PART_ROUNDS: usize = 9;
/// Distinct sources (or ports) timed one run each, for the "new" classes.
const SINGLES: u32 = 10_001;
const GROUP: &str = "XDP cost per packet";
const TARGET_NS: f64 = 30.0;
/// A packet that inserts a new source (and its new flow), at most.
const NEW_SOURCE_TARGET_NS: f64 = 300.0;
const NEW_SOURCE_SINGLES: &str = "IPv4 SYN, new source (one run per source)";
/// Every class through the whole program, over a frame it gives up on at
/// once (the floor of running it at all) in the same round, at most.
const OVER_FLOOR: f64 = 3.5;
/// The flow table may add at most 25 % to the whole program's cost.
const FLOWS_GROWTH: f64 = 1.25;

/// Median of one run each of `frame(0)` .. `frame(SINGLES - 1)`.
fn median_of_singles(xdp: &mut Xdp, frame: impl Fn(u32) -> Vec<u8>) -> f64 {
    let mut times: Vec<Duration> = (0..SINGLES)
        .map(|i| {
            let run = xdp.test_run(&frame(i), 1);
            assert_eq!(run.action, XDP_PASS, "single run {i}");
            run.mean
        })
        .collect();
    times.sort();
    times[times.len() / 2].as_nanos() as f64
}

/// The median over rounds of `over[r] / under[r]`: two cells timed in the
/// same rounds, so that a slow spell of the machine weighs on both sides of
/// each ratio, where it would on one side of a ratio of medians.
fn median_ratio(over: &[Duration], under: &[Duration]) -> f64 {
    let mut ratios: Vec<f64> = over
        .iter()
        .zip(under)
        .map(|(o, u)| o.as_secs_f64() / u.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

/// A source in 10.0.0.0/8 (new to SOURCES), distinct for each `i` < 2^24.
fn fresh_v4(base: u32, i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000 | ((base + i) & 0x00ff_ffff))
}

/// The ethernet payload of `frame` (its IP packet).
fn ip_packet(frame: &[u8]) -> &[u8] {
    &frame[ETH_HLEN..]
}

/// A kind of packet timed by repeating one frame.
pub(crate) struct Class {
    name: &'static str,
    pub(crate) frame: Vec<u8>,
    /// What the figure's note adds to how it was measured.
    note: &'static str,
}

/// The classes whose every run is alike once the source is known.
pub(crate) fn repeated_classes() -> Vec<Class> {
    let known = frames::syn_v4(SRC_V4, DST_V4, 40_000, 80);
    let body: Vec<u8> = (0..400u32)
        .map(|i| b"GET /x HTTP/1.1\r\n"[i as usize % 17])
        .collect();
    let data = frames::tcp_v4(
        SRC_V4,
        DST_V4,
        &Tcp::new(40_000, 80, tcp_flags::PSH | tcp_flags::ACK).payload(&body),
    );
    let mut cut = Ipv4::new(SRC_V4, DST_V4, ip_proto::TCP)
        .option_words(2)
        .frame(&[]);
    cut.truncate(ETH_HLEN + IPV4_HLEN + 2);
    let class = |name, frame, note| Class { name, frame, note };
    vec![
        class("IPv4 SYN, known source", known.clone(), ""),
        class("IPv6 SYN", frames::syn_v6(SRC_V6, DST_V6, 40_000, 80), ""),
        class(
            "TCP ACK with 400-byte payload to sampled port 80",
            data,
            "the agent's default sampling (5 000/s per CPU): the first runs copy a sample, the rest meet the rate cap, and a full ring counts samples_lost",
        ),
        class(
            "UDP DNS query",
            frames::udp_v4(SRC_V4, DST_V4, 5353, 53, &frames::dns_query()),
            "port 53 is sampled for UDP too",
        ),
        class("ICMP echo request", frames::ping_v4(SRC_V4, DST_V4), ""),
        class(
            "VLAN-tagged (802.1Q) IPv4 SYN",
            frames::ethernet_tagged(&[VlanTag::dot1q(7)], ETH_P_IPV4, ip_packet(&known)),
            "",
        ),
        class(
            "truncated IPv4 header (options cut short)",
            cut,
            "counted as err_ipv4_truncated",
        ),
    ]
}

/// Prints and records the time per packet of every class of packet. The
/// target (30 ns) is reported, not asserted.
#[test]
#[ignore = "benchmark: the XDP program's time per packet by class; cargo xtask bench runs it"]
fn bench_xdp_cost_per_class() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load_as_agent(feature::ALL);
    let repeated = format!("BPF_PROG_TEST_RUN, median of {ROUNDS} rounds of {RUNS} runs");
    let mut figures: Vec<(String, f64, String)> = Vec::new();
    let mut add = |name: &str, ns: f64, note: String| figures.push((name.to_owned(), ns, note));

    // A new source: BPF_PROG_TEST_RUN repeats one frame, so only the first
    // run of each round meets an unknown source (the LRU insert); the other
    // 999 999 update it. Timed both ways: one round per new source, and one
    // run each of 10 001 new sources (single-run timings are the kernel's
    // ktime around one run, so coarser, but every one inserts).
    let ns = xdp.median_ns(ROUNDS, RUNS, XDP_PASS, |r| {
        frames::syn_v4(fresh_v4(0x10_0000, r as u32), DST_V4, 40_000, 80)
    });
    add(
        "IPv4 SYN, new source (first run of each round new)",
        ns,
        format!("{repeated}; a new source per round, so 1 run in {RUNS} inserts into SOURCES"),
    );
    let ns = median_of_singles(&mut xdp, |i| {
        frames::syn_v4(fresh_v4(0x20_0000, i), DST_V4, 40_000, 80)
    });
    add(
        NEW_SOURCE_SINGLES,
        ns,
        format!(
            "BPF_PROG_TEST_RUN, median of {SINGLES} single runs, each from a source new to SOURCES"
        ),
    );

    // Past the new-source and new-flow limits, which a spoofed flood
    // reaches within its first second: each packet then only looks its
    // source and flow up, and inserts neither.
    let mut config = Config::default();
    config.sources.new_sources_per_cpu = 1;
    config.flows.new_flows_per_cpu = 1;
    let mut limited = Xdp::load_as_agent_with(feature::ALL, &config);
    let ns = median_of_singles(&mut limited, |i| {
        frames::syn_v4(fresh_v4(0x40_0000, i), DST_V4, 40_000, 80)
    });
    drop(limited);
    add(
        "IPv4 SYN, new source past the new-source and new-flow limits (one run per source)",
        ns,
        format!(
            "BPF_PROG_TEST_RUN, median of {SINGLES} single runs, each from a source new to SOURCES, with the agent's new-source and new-flow limits at 1 a second and spent: what a spoofed flood's packet costs once they are"
        ),
    );

    // The same single runs on a source already known: what a run costs
    // alone, which the new source's figure includes.
    let known = frames::syn_v4(fresh_v4(0x20_0000, 0), DST_V4, 40_000, 80);
    let ns = median_of_singles(&mut xdp, |_| known.clone());
    add(
        "IPv4 SYN, known source (one run per packet)",
        ns,
        format!(
            "BPF_PROG_TEST_RUN, median of {SINGLES} single runs of one frame from a known source: the single runs' own cost, to set the new source's beside"
        ),
    );

    for class in repeated_classes() {
        // One run first, so that the repeated runs meet a known source.
        xdp.test_run(&class.frame, 1);
        let ns = xdp.median_ns(ROUNDS, RUNS, XDP_PASS, |_| class.frame.clone());
        let note = match class.note {
            "" => repeated.clone(),
            more => format!("{repeated}; {more}"),
        };
        add(class.name, ns, note);
    }
    // A connection's reply counted on another CPU than its opening, as a
    // NIC's RSS may steer the two directions: each direction has an owner
    // of its own, which counts without locked adds.
    if std::thread::available_parallelism().map_or(1, usize::from) >= 2 {
        let client = Ipv4Addr::new(198, 18, 7, 9);
        pin_to_cpu(1);
        xdp.test_run(&frames::syn_v4(client, DST_V4, 40_001, 80), 1);
        pin_to_one_cpu();
        let reply = frames::tcp_v4(DST_V4, client, &Tcp::ack(80, 40_001));
        xdp.test_run(&reply, 1);
        let ns = xdp.median_ns(ROUNDS, RUNS, XDP_PASS, |_| reply.clone());
        add(
            "TCP ACK of a flow opened on another CPU",
            ns,
            format!("{repeated}; the server's bare ACKs on CPU 0, its client's SYN on CPU 1"),
        );
    }
    // The kernel's BPF statistics, which the flood benchmarks take the
    // program's run time from, add two clock reads to every run they
    // count: the known source's SYN again with them on, to set those
    // figures beside.
    let known = frames::syn_v4(SRC_V4, DST_V4, 40_000, 80);
    let stats = BpfStats::on();
    let ns = xdp.median_ns(ROUNDS, RUNS, XDP_PASS, |_| known.clone());
    drop(stats);
    add(
        "IPv4 SYN, known source, with BPF statistics on",
        ns,
        format!(
            "{repeated}; what the flood benchmarks' per-frame figures (kernel BPF statistics) include beyond the program"
        ),
    );
    // A new destination port: the port sketch's bit is new only on the
    // first run, as for new sources; the single runs each set a new bit.
    let port_src = Ipv4Addr::new(198, 18, 7, 7);
    let ns = xdp.median_ns(ROUNDS, RUNS, XDP_PASS, |r| {
        frames::syn_v4(port_src, DST_V4, 40_000, 1000 + r as u16)
    });
    add(
        "SYN to a new destination port (first run of each round new)",
        ns,
        format!("{repeated}; a new port per round from one known source"),
    );
    let scan_src = Ipv4Addr::new(198, 18, 7, 8);
    let ns = median_of_singles(&mut xdp, |i| {
        frames::syn_v4(scan_src, DST_V4, 40_000, 2000 + i as u16)
    });
    add(
        "SYN to a new destination port (one run per port)",
        ns,
        format!(
            "BPF_PROG_TEST_RUN, median of {SINGLES} single runs from one source, each to a new port (crosses the agent's scan thresholds once)"
        ),
    );

    // Last, so no other class runs with a non-empty blocklist.
    let blocked_src = Ipv4Addr::new(203, 0, 113, 9);
    xdp.block("203.0.113.0/24");
    let blocked = frames::syn_v4(blocked_src, DST_V4, 40_000, 80);
    let ns = xdp.median_ns(ROUNDS, RUNS, XDP_DROP, |_| blocked.clone());
    add(
        "blocked IPv4 source (1 blocklist entry)",
        ns,
        format!("{repeated}; XDP_DROP"),
    );

    for (name, ns, note) in &figures {
        let target = if name == NEW_SOURCE_SINGLES {
            NEW_SOURCE_TARGET_NS
        } else {
            TARGET_NS
        };
        figures::record(GROUP, name, *ns, "ns", Some(Target::AtMost(target)), note);
    }
}

/// The program's parts timed one by one: every class through the program
/// stripped to parse-and-pass, then through parse-and-pass plus one part,
/// so that each part's cost per packet shows on its own. The full
/// program's figures are `bench_xdp_cost_per_class`'s.
#[test]
#[ignore = "benchmark: the XDP program's cost part by part; cargo xtask bench runs it"]
fn bench_xdp_cost_by_part() {
    if !support::privileged() {
        return;
    }
    let classes = repeated_classes();
    // Parse-and-pass first: the parts' columns are measured against it.
    let mut loads: Vec<(&str, u32)> = vec![("parse-and-pass", feature::PARSE)];
    loads.extend(
        feature::NAMED
            .iter()
            .map(|(name, part)| (*name, feature::PARSE | part)),
    );
    // The flow table's share of the whole (see `FLOWS_GROWTH`).
    loads.push(("all but flows", feature::ALL & !feature::FLOWS));
    loads.push(("everything", feature::ALL));
    loads.push(("pass at once", feature::NONE));

    // Every load at once, and the rounds interleaved (each round runs every
    // load on every class): a slow spell of the machine then lands in one
    // round of every cell, not in all rounds of one load, which would show
    // as a part costing less than nothing.
    let mut programs: Vec<Xdp> = loads.iter().map(|(_, p)| Xdp::load_as_agent(*p)).collect();
    for xdp in &mut programs {
        for class in &classes {
            xdp.test_run(&class.frame, 1);
        }
    }
    let mut rounds = vec![vec![Vec::with_capacity(PART_ROUNDS); classes.len()]; loads.len()];
    for _ in 0..PART_ROUNDS {
        for (l, xdp) in programs.iter_mut().enumerate() {
            for (c, class) in classes.iter().enumerate() {
                let run = xdp.test_run(&class.frame, RUNS);
                assert_eq!(run.action, XDP_PASS, "{} with {}", class.name, loads[l].0);
                rounds[l][c].push(run.mean);
            }
        }
    }
    let full = loads.len() - 2;
    let without_flows = loads.len() - 3;
    // The flow table's share: the two loads run one after the other in
    // each round.
    let flow_growth: Vec<f64> = (0..classes.len())
        .map(|c| median_ratio(&rounds[full][c], &rounds[without_flows][c]))
        .collect();
    // Every class over the floor, a frame cut short in its IPv4 header,
    // both through the whole program.
    let floor_class = classes
        .iter()
        .position(|c| c.name.starts_with("truncated"))
        .expect("the truncated class");
    let over_floor: Vec<f64> = (0..classes.len())
        .map(|c| median_ratio(&rounds[full][c], &rounds[full][floor_class]))
        .collect();
    // times[load][class]: the median round, in ns.
    let times: Vec<Vec<f64>> = rounds
        .into_iter()
        .map(|cells| {
            cells
                .into_iter()
                .map(|mut cell| {
                    cell.sort();
                    cell[PART_ROUNDS / 2].as_nanos() as f64
                })
                .collect()
        })
        .collect();

    println!("ns per packet; a part's column is parse-and-pass plus that part alone");
    print!("{:<50}", "class");
    for (name, _) in &loads {
        print!(" {name:>14}");
    }
    println!();
    for (c, class) in classes.iter().enumerate() {
        print!("{:<50}", class.name);
        for row in &times {
            print!(" {:>14.1}", row[c]);
        }
        println!();
    }

    let repeated = format!("BPF_PROG_TEST_RUN, median of {PART_ROUNDS} rounds of {RUNS} runs");
    for (c, class) in classes.iter().enumerate() {
        figures::record(
            GROUP,
            &format!("parse-and-pass only: {}", class.name),
            times[0][c],
            "ns",
            Some(Target::AtMost(TARGET_NS)),
            &format!("{repeated}; the program loaded with every part but parsing switched off"),
        );
    }
    // Each part's cost on the class it works hardest for.
    let syn = 0;
    let payload = classes
        .iter()
        .position(|c| c.name.starts_with("TCP ACK with"))
        .expect("the payload class");
    for (l, (name, parts)) in loads.iter().enumerate() {
        if [
            feature::PARSE,
            feature::ALL & !feature::FLOWS,
            feature::ALL,
            feature::NONE,
        ]
        .contains(parts)
        {
            continue;
        }
        let c = if parts & feature::SAMPLING != 0 {
            payload
        } else {
            syn
        };
        figures::record(
            GROUP,
            &format!("cost of {name}, on {}", classes[c].name),
            times[l][c] - times[0][c],
            "ns",
            None,
            &format!("{repeated}; parse-and-pass plus {name} alone, less parse-and-pass"),
        );
    }
    let floor = loads.len() - 1;
    figures::record(
        GROUP,
        "a program that passes at once (the harness's floor)",
        times[floor][syn],
        "ns",
        None,
        &format!(
            "{repeated}; every part switched off, parsing too: what running any XDP program costs under BPF_PROG_TEST_RUN"
        ),
    );
    // The truncated class is the floor, and has no flow.
    for (c, class) in classes.iter().enumerate() {
        if c == floor_class {
            continue;
        }
        figures::record(
            GROUP,
            &format!("the whole program with flows over without: {}", class.name),
            flow_growth[c],
            "×",
            Some(Target::AtMost(FLOWS_GROWTH)),
            &format!(
                "BPF_PROG_TEST_RUN, {PART_ROUNDS} rounds of {RUNS} runs; every part over every part but the flow table, the median of the rounds' ratios"
            ),
        );
        figures::record(
            GROUP,
            &format!("the whole program over the floor: {}", class.name),
            over_floor[c],
            "×",
            Some(Target::AtMost(OVER_FLOOR)),
            &format!(
                "BPF_PROG_TEST_RUN, {PART_ROUNDS} rounds of {RUNS} runs; every part, this class over a frame cut short in its IPv4 header (counted and passed at once), the median of the rounds' ratios"
            ),
        );
    }
    // A switch that changed nothing would show as equal times.
    assert!(
        times[full][syn] > times[0][syn],
        "the full program ({:.1} ns) is no slower than parse-and-pass ({:.1} ns) on a SYN: \
         the feature switch has no effect",
        times[full][syn],
        times[0][syn]
    );
}
