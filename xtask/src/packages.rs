//! The Debian packages the integration tests drive: traffic generators and
//! scanners, the tools that set up and inspect network namespaces, and the
//! browser (and Node.js, for Playwright) that the dashboard test drives.

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
    "dnsutils",
    "tcpdump",
    "bpftool",
    "chromium",
    "netsniff-ng",
];

/// Installed only where no `node`/`npm` is on PATH: a machine may have a
/// newer Node.js from elsewhere (NodeSource), which Debian's would conflict
/// with.
const NODE_PACKAGES: &[(&str, &str)] = &[("node", "nodejs"), ("npm", "npm")];

pub fn ensure() -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for &package in PACKAGES {
        if is_installed(package) {
            note(format!("{package}: already installed"));
        } else {
            note(format!("{package}: missing"));
            missing.push(package);
        }
    }
    for &(command, package) in NODE_PACKAGES {
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
    let why = "installing the test tools";
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

/// Whether dpkg knows `package` as installed; a package dpkg has never heard
/// of makes dpkg-query fail, which means "not installed" here too.
fn is_installed(package: &str) -> bool {
    Cmd::new("dpkg-query")
        .args(["-W", "-f", "${Status}", package])
        .read()
        .is_ok_and(|status| status.trim() == "install ok installed")
}
