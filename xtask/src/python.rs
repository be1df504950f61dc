//! Python's aiosmtpd, the real SMTP server the email channel's tests send
//! to (`nta-agent/tests/notify/smtp_server.py`): from PyPI with pip, or
//! from Debian's packages where the system Python refuses pip (PEP 668).

use anyhow::{Context as _, bail};

use crate::{
    cmd::{Cmd, note},
    privilege::root_cmd,
};

/// The module the tests import, and how to get it: the 1.x API the
/// script uses (`authenticator`, `AuthResult`, `auth_require_tls`).
const MODULE: &str = "aiosmtpd";
const PIP_PACKAGE: &str = "aiosmtpd>=1.4,<2";
const DEBIAN_PACKAGE: &str = "python3-aiosmtpd";

pub fn ensure() -> anyhow::Result<()> {
    if which::which("python3").is_err() {
        bail!(
            "python3 is not installed (or not on PATH); the email tests need it with {MODULE}: \
             install python3 and pip, then run `python3 -m pip install '{PIP_PACKAGE}'`"
        );
    }
    if importable(MODULE) {
        note(format!("{MODULE} (python3): already installed"));
        return Ok(());
    }
    note(format!("{MODULE} (python3): missing"));

    if externally_managed() {
        // Debian's own Python: pip would refuse, and its packages are what
        // that Python is meant to get modules from.
        let by_hand = || format!("by hand: apt-get install {DEBIAN_PACKAGE}");
        root_cmd(
            "apt-get",
            &[("DEBIAN_FRONTEND", "noninteractive")],
            &[],
            "installing the email tests' SMTP server",
        )
        .with_context(by_hand)?
        .args(["install", "-y", "--no-install-recommends", DEBIAN_PACKAGE])
        .run()
        .with_context(by_hand)?;
    } else {
        Cmd::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                PIP_PACKAGE,
            ])
            .run()
            .with_context(|| {
                format!(
                    "installing {MODULE} for the email tests (the network may be refused here); \
                     by hand: python3 -m pip install '{PIP_PACKAGE}'"
                )
            })?;
    }
    if !importable(MODULE) {
        bail!(
            "{MODULE} was installed, yet `python3 -c 'import {MODULE}'` still fails: is the \
             python3 on PATH the one pip installs for? Check with `python3 -m pip --version`"
        );
    }
    note(format!("{MODULE} (python3): installed"));
    Ok(())
}

/// Whether `python3 -c 'import module'` works.
fn importable(module: &str) -> bool {
    Cmd::new("python3")
        .args(["-c", &format!("import {module}")])
        .read()
        .is_ok()
}

/// Whether python3 is a distribution's Python that refuses pip installs
/// outside a virtual environment (PEP 668's marker file).
fn externally_managed() -> bool {
    const CHECK: &str = "import os, sys, sysconfig; \
        print(sys.prefix == sys.base_prefix and \
        os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))";
    Cmd::new("python3")
        .args(["-c", CHECK])
        .read()
        .is_ok_and(|answer| answer.trim() == "True")
}
