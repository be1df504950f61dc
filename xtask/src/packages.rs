//! The Debian packages the agent builds with (Hyperscan), and those the
//! integration tests drive: traffic generators and
//! scanners, the tools that set up and inspect network namespaces, and the
//! browser (and Node.js, for Playwright) that the dashboard test drives;
//! the flow collectors the IPFIX test sends to;
//! the peers `cargo xtask bench --peers` runs beside nta; and what
//! `cargo xtask package` and its checks use.

use std::{fs, path::Path, thread, time::Duration};

use anyhow::{Context as _, bail};

use crate::{
    cmd::{Cmd, note},
    privilege::{root_cmd, root_prefix},
};

const PACKAGES: &[&str] = &[
    "hping3",
    "nmap",
    "iproute2",
    "iputils-ping",
    "curl",
    // The HTTPS test's certificates, made as the README shows.
    "openssl",
    "dnsutils",
    "tcpdump",
    "bpftool",
    "chromium",
    "netsniff-ng",
    // IPFIX collectors: nfcapd and nfdump, and libfixbuf's ipfixDump.
    "nfdump",
    "libfixbuf-tools",
    // The package's checks: dpkg-shlibdeps, which `cargo xtask package`
    // runs; `man` to render its pages; `systemd-analyze verify` for its unit.
    "dpkg-dev",
    "man-db",
    "systemd",
    // A clean Debian to install the package on: debootstrap makes it,
    // systemd-nspawn boots it.
    "debootstrap",
    "systemd-container",
];

/// Installed only where no `node`/`npm` is on PATH: a machine may have a
/// newer Node.js from elsewhere (NodeSource), which Debian's would conflict
/// with.
const NODE_PACKAGES: &[(&str, &str)] = &[("node", "nodejs"), ("npm", "npm")];

/// What building the agent links: Hyperscan, the multi-pattern matcher
/// Suricata uses (Intel's on x86-64; Vectorscan, its port, elsewhere),
/// found through pkg-config.
pub fn build_packages() -> [&'static str; 2] {
    let hyperscan = if std::env::consts::ARCH == "x86_64" {
        "libhyperscan-dev"
    } else {
        "libvectorscan-dev"
    };
    ["pkg-config", hyperscan]
}

/// Installs the packages the agent builds with.
pub fn ensure_build() -> anyhow::Result<()> {
    install_missing(&build_packages(), &[], "installing the build dependencies")
}

/// What `cargo xtask package` runs beside dpkg-deb: dpkg-shlibdeps, for
/// the package's Depends.
pub fn ensure_packaging() -> anyhow::Result<()> {
    install_missing(&["dpkg-dev"], &[], "installing the packaging tools")
}

/// Daemons the integration tests start themselves, in their own
/// directories: the package and its binary.
const TEST_DAEMONS: &[(&str, &str)] = &[
    // EVE into Redis lists and streams.
    ("redis-server", "/usr/bin/redis-server"),
    // Scraping /metrics, and the shipped Grafana dashboard's queries.
    ("prometheus", "/usr/bin/prometheus"),
];

/// Installs the packages the integration tests use.
pub fn ensure() -> anyhow::Result<()> {
    install_missing(PACKAGES, NODE_PACKAGES, "installing the test tools")?;
    for &(package, binary) in TEST_DAEMONS {
        ensure_daemon(package, binary)?;
    }
    Ok(())
}

/// Installs those of `packages` not installed, and the package of each
/// `(command, package)` whose command is not on PATH.
fn install_missing(
    packages: &[&'static str],
    commands: &[(&str, &'static str)],
    why: &str,
) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for &package in packages {
        if is_installed(package) {
            note(format!("{package}: already installed"));
        } else {
            note(format!("{package}: missing"));
            missing.push(package);
        }
    }
    for &(command, package) in commands {
        if which::which(command).is_ok() {
            note(format!("{command}: already on PATH"));
        } else {
            note(format!("{command}: missing"));
            missing.push(package);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }

    let by_hand = || format!("install these packages by hand: {}", missing.join(" "));
    if which::which("apt-get").is_err() {
        bail!(
            "apt-get is not available (is this Debian or Ubuntu?): {}",
            by_hand()
        );
    }
    root_prefix(&[], why).with_context(by_hand)?;
    root_cmd("apt-get", &[], &[], why)?
        .arg("update")
        .run()
        .with_context(|| {
            format!(
                "apt-get update failed (the network may be refused here); {}",
                by_hand()
            )
        })?;
    root_cmd(
        "apt-get",
        &[("DEBIAN_FRONTEND", "noninteractive")],
        &[],
        why,
    )?
    .args(["install", "-y", "--no-install-recommends"])
    .args(&missing)
    .run()
    .with_context(|| format!("apt-get install failed; {}", by_hand()))?;
    for package in missing {
        note(format!("{package}: installed"));
    }
    Ok(())
}

/// Installs `package`, which ships the daemon `binary`, unless it is there,
/// and stops any daemon the install started: Debian's maintainer scripts
/// start the service they ship (through systemd, or through the init script
/// where no policy-rc.d forbids it), and the benchmarks start their peer
/// themselves, in a test namespace.
pub fn ensure_daemon(package: &str, binary: &str) -> anyhow::Result<()> {
    if is_installed(package) && Path::new(binary).is_file() {
        note(format!("{package}: already installed"));
        return Ok(());
    }
    note(format!("{package}: missing"));
    if which::which("apt-get").is_err() {
        bail!("apt-get is not available (is this Debian or Ubuntu?): install {package} by hand");
    }
    let name = Path::new(binary)
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{binary}: no file name"))?;
    let why = format!("installing {package}");
    let before = daemons(name, &why)?;
    root_cmd("apt-get", &[], &[], &why)?
        .arg("update")
        .run()
        .context("apt-get update failed (the network may be refused here)")?;
    let installed = root_cmd(
        "apt-get",
        &[("DEBIAN_FRONTEND", "noninteractive")],
        &[],
        &why,
    )?
    .args(["install", "-y", "--no-install-recommends", package])
    .run();
    // Even a failed install may have started it.
    stop_started(package, name, &before)?;
    installed.with_context(|| format!("apt-get install {package} failed"))?;
    note(format!("{package}: installed"));
    Ok(())
}

/// Stops the daemon `name` that an install of `package` started: its
/// systemd unit, if systemd runs, and the processes named `name` in this
/// network namespace that were not running `before`, by their ids (a
/// benchmark's own peer runs in a namespace of its own and is left alone).
fn stop_started(package: &str, name: &str, before: &[u32]) -> anyhow::Result<()> {
    let why = format!("stopping the {package} daemon its install started");
    if Path::new("/run/systemd/system").is_dir() {
        // Disabled too: it would start again at the next boot.
        let unit = format!("{package}.service");
        if let Err(error) = root_cmd("systemctl", &[], &[], &why)?
            .args(["disable", "--now", &unit])
            .run()
        {
            note(format!("{unit}: {error:#}"));
        }
    }
    for pid in daemons(name, &why)? {
        if before.contains(&pid) {
            continue;
        }
        // It may have ended by itself meanwhile: the check below says.
        match root_cmd("kill", &[], &[], &why)?.arg(pid.to_string()).run() {
            Ok(()) => note(format!(
                "{package}: stopped process {pid}, which its install started"
            )),
            Err(error) => note(format!("{package}: {error:#}")),
        }
    }
    // SIGTERM ends both; give them a moment, then say if one is left.
    for _ in 0..50 {
        let left: Vec<u32> = daemons(name, &why)?
            .into_iter()
            .filter(|pid| !before.contains(pid))
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "{name} started by the install of {package} is still running after SIGTERM: stop it by hand"
    )
}

/// The live processes named exactly `name` in xtask's own network
/// namespace (a zombie has ended, even while nobody has reaped it).
fn daemons(name: &str, why: &str) -> anyhow::Result<Vec<u32>> {
    which::which("pgrep")
        .context("pgrep (Debian's procps) is needed to find a daemon an install started")?;
    let own = std::process::id().to_string();
    // pgrep exits 1 when nothing matches, the usual case: no list, no daemon.
    let listed = root_cmd("pgrep", &[], &[], why)?
        .args(["-x", "--ns", &own, "--nslist", "net", name])
        .read()
        .unwrap_or_default();
    let zombie = |pid: &u32| {
        fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            // The state follows the command name, which is in parentheses.
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
    };
    Ok(listed
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|pid| !zombie(pid))
        .collect())
}

/// Whether dpkg knows `package` as installed; a package dpkg has never heard
/// of makes dpkg-query fail, which means "not installed" here too.
fn is_installed(package: &str) -> bool {
    Cmd::new("dpkg-query")
        .args(["-W", "-f", "${Status}", package])
        .read()
        .is_ok_and(|status| status.trim() == "install ok installed")
}
