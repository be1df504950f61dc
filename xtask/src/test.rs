//! `cargo xtask test`: the whole suite, as root, one test at a time.

use std::{ffi::OsString, io, path::PathBuf, process::ExitCode, time::Instant};

use anyhow::Context as _;

use crate::{
    build::{agent_binary, cargo_build, cargo_seeing_bpf_linker},
    cmd::{Cmd, exit_code, note, step, survive_sigint},
    package,
    privilege::root_prefix,
    setup,
};

/// `cargo test` with `args`, its test binaries run as root (sudo asks for
/// it `why`). Only they need root (they load XDP programs and create
/// network namespaces): cargo itself stays the user, so target/ does not
/// fill with files the user cannot overwrite.
pub fn cargo_test_as_root(args: &[&str], why: &str) -> anyhow::Result<Cmd> {
    let mut cargo = cargo_seeing_bpf_linker()?;
    cargo.arg("test").args(args);
    let sudo = root_prefix(&["-E"], why)?;
    if !sudo.is_empty() {
        let runner: Vec<String> = sudo.iter().map(|word| format!("\"{word}\"")).collect();
        cargo.arg("--config").arg(format!(
            "target.'cfg(all())'.runner = [{}]",
            runner.join(", ")
        ));
    }
    Ok(cargo)
}

pub fn test(test_args: &[OsString]) -> anyhow::Result<ExitCode> {
    setup::setup(true)?;
    cargo_build(false)?;
    let deb = if wants_package(test_args) {
        package_for_tests()
    } else {
        None
    };

    let mut cargo = cargo_test_as_root(
        &["--workspace", "--exclude", "nta-ebpf", "--no-fail-fast"],
        "the integration tests",
    )?;
    if let Some(deb) = &deb {
        cargo.env(PACKAGE_VAR, deb);
    }
    // The integration tests share interfaces, namespaces and XDP hooks.
    cargo.args(["--", "--test-threads=1"]).args(test_args);

    survive_sigint()?;
    let mut child = cargo.spawn_piped()?;
    let mut tally = Tally::default();
    if let Some(stdout) = child.stdout.take() {
        relay(stdout, io::stdout().lock(), &mut tally).context("relaying the tests' output")?;
    }
    let status = child.wait().context("waiting for cargo test")?;

    if status.success() {
        step("cargo test: every test passed");
    } else {
        step(format!(
            "cargo test failed ({status}): see its messages above"
        ));
    }
    // One line that sums up every test binary's `test result:` line.
    println!(
        "tests: {} passed, {} failed, {} skipped",
        tally.passed, tally.failed, tally.ignored
    );
    Ok(exit_code(status))
}

/// Where the package checks (`nta-agent/tests/package.rs`) find the .deb.
const PACKAGE_VAR: &str = "NTA_TEST_DEB";

/// Whether this run checks the package: the whole suite does; a run given
/// test-name filters only if one names the package checks, all called
/// `deb_*`. Building it costs a release build, minutes on two cores.
fn wants_package(test_args: &[OsString]) -> bool {
    let filters: Vec<_> = test_args
        .iter()
        .filter_map(|arg| arg.to_str())
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    filters.is_empty() || filters.iter().any(|filter| filter.contains("deb"))
}

/// Builds the release agent and the package for the package checks, or
/// says why it could not: the rest of the suite runs either way, and the
/// checks then fail, pointing here.
fn package_for_tests() -> Option<PathBuf> {
    let started = Instant::now();
    let built = cargo_build(true).and_then(|()| package::build_deb(&agent_binary(true)));
    match built {
        Ok(deb) => {
            note(format!(
                "package for the package checks: {} (release build and package: {:.0}s)",
                deb.display(),
                started.elapsed().as_secs_f64()
            ));
            Some(deb)
        }
        Err(error) => {
            step(format!(
                "packaging failed, so the package checks will fail: {error:#}"
            ));
            None
        }
    }
}

/// Copies the tests' output to ours as it comes (a test's name shows while
/// it runs, before its line ends), counting the results on the way.
fn relay(mut from: impl io::Read, mut out: impl io::Write, tally: &mut Tally) -> io::Result<()> {
    let mut buffer = [0; 8192];
    let mut line = Vec::new();
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buffer[..read])?;
        out.flush()?;
        for &byte in &buffer[..read] {
            if byte == b'\n' {
                tally.add_line(&String::from_utf8_lossy(&line));
                line.clear();
            } else {
                line.push(byte);
            }
        }
    }
    tally.add_line(&String::from_utf8_lossy(&line));
    Ok(())
}

/// Sums libtest's `test result: ok. 3 passed; 0 failed; 1 ignored; ...`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Tally {
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        let Some((_, counts)) = rest.split_once(". ") else {
            return;
        };
        for count in counts.split(';') {
            let Some((number, what)) = count.trim().split_once(' ') else {
                continue;
            };
            let Ok(number) = number.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => self.passed += number,
                "failed" => self.failed += number,
                "ignored" => self.ignored += number,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_package_for_the_whole_suite_or_a_filter_naming_it() {
        let args = |words: &[&str]| words.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(wants_package(&args(&[])));
        assert!(wants_package(&args(&["--nocapture"])));
        assert!(wants_package(&args(&["deb_unit"])));
        assert!(!wants_package(&args(&["nmap", "--nocapture"])));
    }

    #[test]
    fn sums_the_result_lines_of_every_test_binary() {
        let output = "running 2 tests\n\
            test a ... ok\n\
            test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n\
            \n\
            test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.20s\n\
            test name mentioning test result: is not counted\n";
        let mut tally = Tally::default();
        let mut copy = Vec::new();
        relay(output.as_bytes(), &mut copy, &mut tally).unwrap();
        assert_eq!(copy, output.as_bytes());
        assert_eq!(
            tally,
            Tally {
                passed: 5,
                failed: 2,
                ignored: 1
            }
        );
    }
}
