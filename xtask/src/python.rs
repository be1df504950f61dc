//! The Python modules the tests import: aiosmtpd, the real SMTP server the
//! email channel's tests send to (`nta-agent/tests/notify/smtp_server.py`),
//! and jsonschema, which checks EVE output against Suricata's schema
//! (`nta-agent/tests/eve.rs`). From PyPI with pip, or from Debian's
//! packages where the system Python refuses pip (PEP 668).

use anyhow::{Context as _, bail};

use crate::{
    cmd::{Cmd, note},
    privilege::root_cmd,
};

/// A module the tests import, and how to get it.
struct Module {
    name: &'static str,
    pip: &'static str,
    debian: &'static str,
    used_by: &'static str,
}

const MODULES: [Module; 2] = [
    Module {
        name: "aiosmtpd",
        // The 1.x API the script uses (`authenticator`, `AuthResult`,
        // `auth_require_tls`).
        pip: "aiosmtpd>=1.4,<2",
        debian: "python3-aiosmtpd",
        used_by: "the email tests' SMTP server",
    },
    Module {
        name: "jsonschema",
        // Draft 2020-12, which Suricata's EVE schema is written in.
        pip: "jsonschema>=4",
        debian: "python3-jsonschema",
        used_by: "the EVE tests' schema check",
    },
];

pub fn ensure() -> anyhow::Result<()> {
    if which::which("python3").is_err() {
        bail!(
            "python3 is not installed (or not on PATH); the email and EVE tests need it with \
             aiosmtpd and jsonschema: install python3 and pip, then run \
             `python3 -m pip install 'aiosmtpd>=1.4,<2' 'jsonschema>=4'`"
        );
    }
    for module in &MODULES {
        ensure_module(module)?;
    }
    Ok(())
}

fn ensure_module(m: &Module) -> anyhow::Result<()> {
    let Module {
        name,
        pip,
        debian,
        used_by,
    } = m;
    if importable(name) {
        note(format!("{name} (python3): already installed"));
        return Ok(());
    }
    note(format!("{name} (python3): missing"));

    if externally_managed() {
        // Debian's own Python: pip would refuse, and its packages are what
        // that Python is meant to get modules from.
        let by_hand = || format!("by hand: apt-get install {debian}");
        root_cmd(
            "apt-get",
            &[("DEBIAN_FRONTEND", "noninteractive")],
            &[],
            &format!("installing {used_by}"),
        )
        .with_context(by_hand)?
        .args(["install", "-y", "--no-install-recommends", debian])
        .run()
        .with_context(by_hand)?;
    } else {
        Cmd::new("python3")
            .args(["-m", "pip", "install", "--disable-pip-version-check", pip])
            .run()
            .with_context(|| {
                format!(
                    "installing {name} for {used_by} (the network may be refused here); \
                     by hand: python3 -m pip install '{pip}'"
                )
            })?;
    }
    if !importable(name) {
        bail!(
            "{name} was installed, yet `python3 -c 'import {name}'` still fails: is the \
             python3 on PATH the one pip installs for? Check with `python3 -m pip --version`"
        );
    }
    note(format!("{name} (python3): installed"));
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
