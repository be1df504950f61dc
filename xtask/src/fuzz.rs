//! `cargo xtask fuzz [--secs N] [TARGET...]`: every libFuzzer target in
//! `fuzz/` (or the ones named) for N seconds each, then one line per target:
//! runs, runs per second, corpus size, and the crash artefact if any.
//!
//! The checked-in seeds (`fuzz/corpus/<target>/`) are read but never written:
//! libFuzzer adds what it finds to its first corpus folder, so that is a
//! working copy under `target/nta-fuzz/`, kept between runs so that each
//! run starts where the last one stopped. `fuzz/dict/<target>.dict`, when
//! there is one, gives libFuzzer the keywords of the target's language.

use std::{
    fs,
    io::{BufRead as _, BufReader, Write as _},
    path::Path,
    process::{Command, ExitCode, Stdio},
};

use anyhow::{Context as _, bail};

use crate::{
    cmd::{Cmd, note, step},
    paths::{install_bin_dir, target_dir, workspace_root},
};

/// Every target, in the order they run by default.
pub const TARGETS: [&str; 6] = ["http", "dns", "rules", "config", "api_query", "capture"];

/// Longest a single input may take, in seconds, before libFuzzer reports it
/// as a hang (its default is 20 minutes): every target parses a few KB, so a
/// second is already a denial of service.
const UNIT_TIMEOUT_SECS: u32 = 10;

/// What one target's run showed.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    runs: Option<u64>,
    runs_per_sec: Option<u64>,
    corpus: Option<u64>,
    /// Where libFuzzer wrote the input that crashed (or hung, or leaked).
    artifact: Option<String>,
}

pub fn fuzz(secs: u32, targets: &[String]) -> anyhow::Result<ExitCode> {
    if secs == 0 {
        bail!("--secs must be at least 1");
    }
    let targets: Vec<&str> = if targets.is_empty() {
        TARGETS.to_vec()
    } else {
        for target in targets {
            if !TARGETS.contains(&target.as_str()) {
                bail!(
                    "no fuzz target `{target}`; the targets are {}",
                    TARGETS.join(", ")
                );
            }
        }
        targets.iter().map(String::as_str).collect()
    };
    ensure_cargo_fuzz()?;
    crate::packages::ensure_build()?;
    let fuzz_dir = workspace_root().join("fuzz");
    // Build first, all targets at once, so that each run's seconds go to
    // fuzzing rather than compiling.
    nightly_cargo_fuzz(&fuzz_dir)
        .arg("build")
        .run()
        .context("building the fuzz targets; `cargo xtask setup` installs the nightly toolchain")?;

    let work = target_dir().join("nta-fuzz");
    let mut outcomes = Vec::new();
    for target in &targets {
        let corpus = work.join("corpus").join(target);
        fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
        let seeds = fuzz_dir.join("corpus").join(target);
        let log = work.join(format!("{target}.log"));
        let mut fuzzer_args = vec![
            format!("-max_total_time={secs}"),
            format!("-timeout={UNIT_TIMEOUT_SECS}"),
            "-print_final_stats=1".to_owned(),
        ];
        // Keywords of the input's language, which random bytes rarely spell.
        let dict = fuzz_dir.join("dict").join(format!("{target}.dict"));
        if dict.is_file() {
            fuzzer_args.push(format!("-dict={}", dict.display()));
        }
        // Std's `Command` rather than `Cmd`: libFuzzer reports on stderr,
        // which is read here line by line. Shown as `Cmd` would show it.
        step(format!(
            "NTA_EBPF_STUB=1 rustup run nightly cargo fuzz run {target} {} {} -- {}",
            corpus.display(),
            seeds.display(),
            fuzzer_args.join(" ")
        ));
        let mut command = Command::new("rustup");
        command
            .args(["run", "nightly", "cargo", "fuzz", "run", target])
            .arg(&corpus)
            .arg(&seeds)
            .arg("--")
            .args(&fuzzer_args)
            .env("NTA_EBPF_STUB", "1")
            .current_dir(&fuzz_dir);
        let outcome = run_target(command, &log)?;
        note(format!("full log: {}", log.display()));
        outcomes.push((*target, outcome));
    }

    step(format!("fuzzing: {secs} s per target"));
    println!(
        "{:<10} {:>12} {:>9} {:>7}  crash",
        "target", "runs", "runs/s", "corpus"
    );
    let show = |n: Option<u64>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
    for (target, o) in &outcomes {
        println!(
            "{target:<10} {:>12} {:>9} {:>7}  {}",
            show(o.runs),
            show(o.runs_per_sec),
            show(o.corpus),
            o.artifact.as_deref().unwrap_or("none")
        );
    }
    let crashed = outcomes.iter().any(|(_, o)| o.artifact.is_some());
    if crashed {
        note(
            "reproduce a crash with `cargo +nightly fuzz run TARGET ARTEFACT` in fuzz/, \
             then keep the input as a unit test of the parser it broke",
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Installs cargo-fuzz unless it is already there.
fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    step("cargo-fuzz");
    let installed = install_bin_dir()?.join("cargo-fuzz");
    if let Some(path) = which::which("cargo-fuzz")
        .ok()
        .or_else(|| installed.is_file().then_some(installed))
    {
        note(format!(
            "cargo-fuzz: already installed ({})",
            path.display()
        ));
        return Ok(());
    }
    crate::paths::cargo()
        .args(["install", "cargo-fuzz", "--locked"])
        .run()
        .context(
            "could not install cargo-fuzz (the network may be refused here): run \
             `cargo install cargo-fuzz --locked` by hand, then `cargo xtask fuzz` again",
        )?;
    note("cargo-fuzz: installed");
    Ok(())
}

/// `cargo +nightly fuzz` in `fuzz/`, written `rustup run nightly cargo fuzz`
/// so that it works whether `cargo` on PATH is rustup's proxy (which `+`
/// needs) or a toolchain's own binary.
fn nightly_cargo_fuzz(fuzz_dir: &Path) -> Cmd {
    let mut cmd = Cmd::new("rustup");
    cmd.args(["run", "nightly", "cargo", "fuzz"])
        // The library is all the targets use: no XDP program, no bpf-linker.
        .env("NTA_EBPF_STUB", "1")
        .current_dir(fuzz_dir);
    cmd
}

/// Runs one target, copying libFuzzer's stderr to `log` and to the terminal
/// (without its per-input `NEW`/`REDUCE` lines), and reads its figures.
fn run_target(mut command: Command, log: &Path) -> anyhow::Result<Outcome> {
    let mut child = command
        .stderr(Stdio::piped())
        .spawn()
        .context("starting `cargo fuzz run`")?;
    let mut file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut outcome = Outcome::default();
    if let Some(stderr) = child.stderr.take() {
        let mut err = std::io::stderr().lock();
        for line in BufReader::new(stderr).lines() {
            let line = line.context("reading libFuzzer's output")?;
            writeln!(file, "{line}").with_context(|| format!("writing {}", log.display()))?;
            outcome.read(&line);
            if !is_progress(&line) {
                let _ = writeln!(err, "{line}");
            }
        }
    }
    let status = child.wait().context("waiting for `cargo fuzz run`")?;
    if !status.success() && outcome.artifact.is_none() {
        bail!(
            "`cargo fuzz run` failed ({status}) without a crash artefact; see {}",
            log.display()
        );
    }
    Ok(outcome)
}

impl Outcome {
    /// Takes what a line of libFuzzer's output tells.
    fn read(&mut self, line: &str) {
        if let Some(n) = stat(line, "stat::number_of_executed_units:") {
            self.runs = Some(n);
        } else if let Some(n) = stat(line, "stat::average_exec_per_sec:") {
            self.runs_per_sec = Some(n);
        } else if let Some(path) = line.split("Test unit written to ").nth(1) {
            self.artifact = Some(path.trim().to_owned());
        } else if line.starts_with('#')
            && let Some(corp) = line.split(" corp: ").nth(1)
        {
            // `#123 DONE cov: 456 ft: 789 corp: 42/1234b ...`: the last
            // status line has the final corpus size.
            self.corpus = corp.split('/').next().and_then(|n| n.parse().ok());
        }
    }
}

fn stat(line: &str, name: &str) -> Option<u64> {
    line.strip_prefix(name)?.trim().parse().ok()
}

/// libFuzzer's line for each new or reduced input: thousands per run.
fn is_progress(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('#') else {
        return false;
    };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    rest.starts_with("\tNEW") || rest.starts_with("\tREDUCE")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_figures_and_artefacts() {
        let mut o = Outcome::default();
        for line in [
            "#2\tINITED cov: 10 ft: 11 corp: 3/30b exec/s: 0 rss: 40Mb",
            "#1048576\tpulse  cov: 900 ft: 2000 corp: 310/20Kb lim: 4096 exec/s: 50000",
            "#3000000\tDONE   cov: 950 ft: 2100 corp: 321/21Kb lim: 4096 exec/s: 49180",
            "stat::number_of_executed_units: 3000000",
            "stat::average_exec_per_sec:     49180",
        ] {
            o.read(line);
        }
        assert_eq!(
            o,
            Outcome {
                runs: Some(3_000_000),
                runs_per_sec: Some(49_180),
                corpus: Some(321),
                artifact: None,
            }
        );
        o.read("artifact_prefix='/w/fuzz/artifacts/dns/'; Test unit written to /w/fuzz/artifacts/dns/crash-ab12");
        assert_eq!(
            o.artifact.as_deref(),
            Some("/w/fuzz/artifacts/dns/crash-ab12")
        );
    }

    #[test]
    fn new_and_reduce_lines_are_progress() {
        assert!(is_progress("#1234\tNEW    cov: 1 ft: 1 corp: 1/1b"));
        assert!(is_progress("#9\tREDUCE cov: 1 ft: 1 corp: 1/1b"));
        assert!(!is_progress("#1048576\tpulse  cov: 900"));
        assert!(!is_progress("#3\tDONE   cov: 950"));
        assert!(!is_progress("==1234== ERROR: libFuzzer: deadly signal"));
    }
}
