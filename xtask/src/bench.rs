//! `cargo xtask bench`: the figures behind nta's speed targets, measured,
//! printed as a table and written as JSON under `target/nta-bench/`.
//!
//! Every benchmark is a test marked `#[ignore]` whose name starts with
//! `bench_` (plus the library's `matcher_throughput`); each records its
//! figures through `tests/support/figures.rs` into the file named by
//! `NTA_BENCH_OUT`. `--peers` adds the side-by-side runs of FastNetMon and
//! scanlogd (`bench_peers_*`).

use std::{
    fs,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::{
    build::{cargo_build, cargo_seeing_bpf_linker},
    cmd::{Cmd, note, step},
    packages,
    paths::workspace_root,
    setup,
    test::cargo_test_as_root,
};

/// The peers `--peers` runs beside nta: the Debian package, the daemon it
/// ships, and the benchmark that runs it.
const PEERS: &[(&str, &str, &str)] = &[
    (
        "fastnetmon",
        "/usr/sbin/fastnetmon",
        "bench_peers_syn_flood_fastnetmon",
    ),
    (
        "scanlogd",
        "/usr/sbin/scanlogd",
        "bench_peers_port_scan_scanlogd",
    ),
];

pub fn bench(peers: bool) -> anyhow::Result<()> {
    setup::setup(true)?;
    // Benchmarks left out, and why, for the report.
    let mut skip = Vec::new();
    let mut notes = Vec::new();
    if peers {
        step("peers: FastNetMon and scanlogd");
        for &(package, binary, test) in PEERS {
            if let Err(error) = packages::ensure_daemon(package, binary) {
                let text = format!("{test} skipped: {package} cannot be installed: {error:#}");
                note(&text);
                notes.push(text);
                skip.push(test);
            }
        }
    } else {
        skip.push("bench_peers");
    }
    cargo_build(true)?;
    let dir = workspace_root().join("target").join("nta-bench");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let figures = dir.join("figures.jsonl");
    let _ = fs::remove_file(&figures);

    let mut failed = Vec::new();
    step("payload pipeline throughput (default rules + 1 000 content rules)");
    let ok = cargo_seeing_bpf_linker()?
        .env("NTA_BENCH_OUT", &figures)
        .args([
            "test",
            "--release",
            "-p",
            "nta-agent",
            "--lib",
            "matcher_throughput",
        ])
        .args(["--", "--ignored", "--nocapture", "--test-threads=1"])
        .status()?
        .success();
    if !ok {
        failed.push("payload pipeline throughput");
    }

    step("benchmarks in the kernel and in network namespaces (as root)");
    // --no-fail-fast: one benchmark failing must not keep the later test
    // binaries (the peers' among them) from running.
    let mut cargo = cargo_test_as_root(
        &["--release", "--no-fail-fast", "-p", "nta-agent", "--tests"],
        "the benchmarks",
    )?;
    cargo.env("NTA_BENCH_OUT", &figures);
    cargo.args([
        "bench_",
        "--",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for test in skip {
        cargo.args(["--skip", test]);
    }
    if !cargo.status()?.success() {
        failed.push("kernel and namespace benchmarks");
    }

    let report = report(&figures, &notes)?;
    print_table(&report["figures"]);
    for text in &notes {
        println!("note: {text}");
    }
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let text = serde_json::to_string_pretty(&report)?;
    for name in [format!("bench-{stamp}.json"), "latest.json".to_owned()] {
        let path = dir.join(name);
        fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    note(format!("report: {}", dir.join("latest.json").display()));
    if !failed.is_empty() {
        anyhow::bail!(
            "some benchmarks failed to run: {} (see their output above)",
            failed.join(", ")
        );
    }
    Ok(())
}

/// The figures recorded, with where and when they were measured, and
/// `notes` on what did not run.
fn report(figures: &Path, notes: &[String]) -> anyhow::Result<Value> {
    let text = fs::read_to_string(figures).unwrap_or_default();
    let figures: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    Ok(json!({
        "machine": machine(),
        "commit": Cmd::new("git").args(["rev-parse", "HEAD"]).read().map(|s| s.trim().to_owned()).ok(),
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "figures": figures,
        "notes": notes,
    }))
}

/// CPU, cores, memory and kernel of this machine.
fn machine() -> Value {
    let read = |path: &str| fs::read_to_string(PathBuf::from(path)).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, model)| model.trim().to_owned());
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let memory_kib: Option<u64> = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok());
    json!({
        "cpu": cpu,
        "cores": cores,
        "memory_gib": memory_kib.map(|k| (k as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
    })
}

fn print_table(figures: &Value) {
    let Some(figures) = figures.as_array() else {
        return;
    };
    println!();
    println!(
        "{:<22} {:<58} {:>16} {:<10} target",
        "group", "figure", "value", "unit"
    );
    for f in figures {
        let text = |k: &str| f[k].as_str().unwrap_or("").to_owned();
        let value = f["value"].as_f64().unwrap_or(f64::NAN);
        let target = match (f["target"].as_str(), f["met"].as_bool()) {
            (Some(t), Some(true)) => format!("{t}: met"),
            (Some(t), _) => format!("{t}: MISSED"),
            _ => String::new(),
        };
        println!(
            "{:<22} {:<58} {:>16} {:<10} {target}",
            text("group"),
            text("name"),
            format_value(value),
            text("unit"),
        );
    }
}

fn format_value(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}
