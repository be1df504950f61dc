//! nta's developer tasks, run as `cargo xtask <task>` (an alias in
//! .cargo/config.toml): the one place that knows how to get a machine from a
//! fresh clone to a built, running and tested agent.

mod bench;
mod bpf_linker;
mod browser;
mod build;
mod cmd;
mod fuzz;
mod package;
mod packages;
mod paths;
mod privilege;
mod python;
mod run;
mod setup;
mod test;

use std::{ffi::OsString, process::ExitCode};

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "nta's developer tasks"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Make this machine ready to build nta: nightly Rust with rust-src, and a
    /// bpf-linker matching its LLVM. Safe to run again: it skips what is there.
    Setup {
        /// Also install what the integration tests use: Debian packages
        /// (hping3, nmap, chromium, ...), Playwright from npm for the browser
        /// test, and Python's aiosmtpd for the email tests.
        #[arg(long)]
        test_tools: bool,
    },
    /// Set up, then build the agent with its XDP program.
    Build {
        /// Optimized, into target/release.
        #[arg(long)]
        release: bool,
    },
    /// Build, then run the agent on an interface, as root (through `sudo -E`
    /// when needed). Ctrl-C stops it and detaches the program.
    Run {
        /// Interface to watch, e.g. eth0 or lo.
        #[arg(long, short)]
        iface: String,
        /// Build and run the optimized agent.
        #[arg(long)]
        release: bool,
        /// More arguments for `nta-agent run`, after `--`.
        #[arg(last = true)]
        agent_args: Vec<OsString>,
    },
    /// Measure and print the benchmark figures (XDP cost per packet, time
    /// to detect, floods, memory, store and API) as a table, and write them
    /// as JSON under target/nta-bench/ (as root).
    Bench {
        /// Also run the peers beside nta on the same attacks (installed if
        /// missing): FastNetMon on a SYN flood, scanlogd on a port scan.
        #[arg(long)]
        peers: bool,
    },
    /// Set up (with the test tools), build, then run the whole test suite as
    /// root, one test at a time.
    Test {
        /// Arguments for the test binaries, after `--`, e.g. a test-name filter.
        #[arg(last = true)]
        test_args: Vec<OsString>,
    },
    /// Set up, build the release agent, and package it as a Debian package,
    /// target/debian/nta_<version>-1_<arch>.deb: the agent, the systemd unit
    /// nta@.service (instance: the interface), /etc/nta, man pages and shell
    /// completions.
    Package,
    /// Run the libFuzzer targets in fuzz/ (cargo-fuzz, installed if
    /// missing, on nightly) for a while each, and print what they found.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        secs: u32,
        /// Targets to run (default: all): http, dns, rules, config, api_query, capture.
        targets: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.task {
        Task::Setup { test_tools } => setup::setup(test_tools).map(|()| ExitCode::SUCCESS),
        Task::Build { release } => build::build(release).map(|()| ExitCode::SUCCESS),
        Task::Run {
            iface,
            release,
            agent_args,
        } => run::run(&iface, release, &agent_args),
        Task::Test { test_args } => test::test(&test_args),
        Task::Bench { peers } => bench::bench(peers).map(|()| ExitCode::SUCCESS),
        Task::Fuzz { secs, targets } => fuzz::fuzz(secs, &targets),
        Task::Package => package::package().map(|_| ExitCode::SUCCESS),
    };
    outcome.unwrap_or_else(|error| {
        // Not anyhow's Debug form: it appends a backtrace whenever
        // RUST_BACKTRACE is set, which buries the advice.
        eprintln!("error: {error}");
        for cause in error.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        ExitCode::FAILURE
    })
}
