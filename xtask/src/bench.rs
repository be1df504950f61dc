//! `cargo xtask bench`: the figures behind nta's speed targets, printed.
//!
//! - payload pipeline throughput: samples per second through HTTP/DNS
//!   parsing and the matcher, with the default rules plus 1 000 extra
//!   content rules (optimised build);
//! - time to detect, end to end in network namespaces: `nmap -sS -T4`,
//!   and an `hping3 --flood` (its `syn_flood` and `volumetric` alerts), ten
//!   runs each, median and worst (needs root; `NTA_DETECT_RUNS` changes the
//!   count).

use anyhow::Context as _;

use crate::{
    build::{cargo_build, cargo_seeing_bpf_linker},
    cmd::step,
    privilege::root_prefix,
    setup,
};

pub fn bench() -> anyhow::Result<()> {
    setup::setup(true)?;
    cargo_build(true)?;

    step("payload pipeline throughput (default rules + 1 000 content rules)");
    cargo_seeing_bpf_linker()?
        .args([
            "test",
            "--release",
            "-p",
            "nta-agent",
            "--lib",
            "matcher_throughput",
        ])
        .args(["--", "--ignored", "--nocapture", "--test-threads=1"])
        .run()
        .context("the throughput benchmark failed")?;

    step("time to detect, end to end (namespaces, real nmap and hping3)");
    let mut cargo = cargo_seeing_bpf_linker()?;
    cargo.args([
        "test",
        "--release",
        "-p",
        "nta-agent",
        "--test",
        "detection",
    ]);
    let sudo = root_prefix(&["-E"], "the end-to-end benchmark")?;
    if !sudo.is_empty() {
        let runner: Vec<String> = sudo.iter().map(|word| format!("\"{word}\"")).collect();
        cargo.arg("--config").arg(format!(
            "target.'cfg(all())'.runner = [{}]",
            runner.join(", ")
        ));
    }
    cargo
        .args([
            "detection_times_over_ten_runs",
            "--",
            "--ignored",
            "--nocapture",
        ])
        .arg("--test-threads=1")
        .run()
        .context("the detection-time benchmark failed")
}
