//! `cargo xtask test`: the whole suite, as root, one test at a time.

use std::{ffi::OsString, io, process::ExitCode};

use anyhow::Context as _;

use crate::{
    build::{cargo_build, cargo_seeing_bpf_linker},
    cmd::{Cmd, exit_code, step, survive_sigint},
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

    let mut cargo = cargo_test_as_root(
        &["--workspace", "--exclude", "nta-ebpf", "--no-fail-fast"],
        "the integration tests",
    )?;
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
