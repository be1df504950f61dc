//! The load-time part switches (`nta_common::maps::feature`): a part
//! switched off leaves no trace, a part switched on alone fills only its
//! own map, and the agent's default loads every part. The benchmark
//! `bench_xdp_cost_by_part` relies on this to price each part.
//!
//! Needs root (BPF): BPF_PROG_TEST_RUN on crafted frames.

use std::net::Ipv4Addr;

use nta_agent::{sensor::LoadOptions, traffic::Snapshot};
use nta_common::{Counter, GlobalCounters, maps::feature};

use crate::support::{
    self,
    frames::{self, DST_V4, SRC_V4},
    xdp::{XDP_DROP, XDP_PASS, Xdp, quiet},
};

/// Loads the program with only `parts`, runs it once on `frame`, and
/// returns its action and every counter map afterwards.
fn run_with(parts: u32, frame: &[u8]) -> (u32, Snapshot) {
    let mut xdp = Xdp::load_with(parts, Some(&quiet()));
    let action = xdp.run(frame);
    (action, xdp.snapshot())
}

/// Which maps a snapshot shows anything in, by part name.
fn touched(s: &Snapshot) -> Vec<&'static str> {
    let mut maps = Vec::new();
    if s.global != GlobalCounters::ZERO {
        maps.push("totals");
    }
    if !s.sources.is_empty() {
        maps.push("sources");
    }
    if !s.dst_hosts.is_empty() {
        maps.push("dst_hosts");
    }
    if s.syn_ports.iter().any(|n| *n > 0) {
        maps.push("syn_ports");
    }
    maps
}

#[test]
fn parse_and_pass_counts_nothing_and_each_part_alone_fills_only_its_map() {
    if !support::privileged() {
        return;
    }
    let syn = frames::syn_v4(SRC_V4, DST_V4, 40_000, 443);

    for (what, parts) in [
        ("nothing", feature::NONE),
        ("parse-and-pass", feature::PARSE),
    ] {
        let (action, stripped) = run_with(parts, &syn);
        assert_eq!(action, XDP_PASS, "{what}");
        assert_eq!(touched(&stripped), Vec::<&str>::new(), "{what}");
    }

    for (name, part) in [
        ("totals", feature::TOTALS),
        ("sources", feature::SOURCES),
        ("dst_hosts", feature::DST_HOSTS),
        ("syn_ports", feature::SYN_PORTS),
    ] {
        let (action, counts) = run_with(feature::PARSE | part, &syn);
        assert_eq!(action, XDP_PASS, "{name} alone");
        assert_eq!(touched(&counts), [name], "{name} alone");
        // Parsing is what the parts count from: without it, none counts.
        let (_, unparsed) = run_with(part, &syn);
        assert_eq!(
            touched(&unparsed),
            Vec::<&str>::new(),
            "{name} without parsing"
        );
    }
    let (_, totals) = run_with(feature::PARSE | feature::TOTALS, &syn);
    assert_eq!(totals.global.values[Counter::TcpSyn as usize], 1);
    assert_eq!(totals.global.values[Counter::Packets as usize], 1);

    let (_, everything) = run_with(LoadOptions::default().features, &syn);
    assert_eq!(
        touched(&everything),
        ["totals", "sources", "dst_hosts", "syn_ports"],
        "the default load"
    );
}

#[test]
fn a_blocked_source_passes_when_the_blocklist_is_switched_off() {
    if !support::privileged() {
        return;
    }
    let attacker = Ipv4Addr::new(203, 0, 113, 9);
    let frame = frames::syn_v4(attacker, DST_V4, 40_000, 80);
    for (parts, expected) in [
        (feature::ALL, XDP_DROP),
        (feature::ALL & !feature::BLOCKLIST, XDP_PASS),
    ] {
        let mut xdp = Xdp::load_with(parts, Some(&quiet()));
        xdp.block("203.0.113.0/24");
        assert_eq!(xdp.run(&frame), expected, "parts {parts:#x}");
    }
}

/// The verifier walks every path of the program, up to a million
/// instructions; it walks about 540 000. A change that multiplies the
/// paths (a branch whose arms it cannot merge, inside an unrolled loop)
/// can take the count past the limit at once, and the program no longer
/// loads: this keeps a margin.
#[test]
fn the_whole_program_verifies_well_inside_the_verifier_limit() {
    if !support::privileged() {
        return;
    }
    let mut xdp = Xdp::load_with(feature::ALL, Some(&quiet()));
    let info = xdp
        .sensor
        .xdp()
        .expect("the loaded program")
        .info()
        .expect("the program's info");
    let verified = info
        .verified_instruction_count()
        .expect("a kernel that reports verified instructions (5.16)");
    println!("{verified} instructions verified");
    assert!(verified > 1_000, "{verified}");
    assert!(verified < 700_000, "{verified} instructions verified");
}
