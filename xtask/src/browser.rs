//! Playwright for the dashboard's browser test: `npm ci` in
//! `dashboard/tests`, which pins playwright-core in its lock file. It drives
//! Debian's chromium (a package), never a browser of its own download.

use std::path::Path;

use anyhow::Context as _;

use crate::{
    cmd::{Cmd, note},
    paths::workspace_root,
};

pub fn ensure() -> anyhow::Result<()> {
    let dir = workspace_root().join("dashboard/tests");
    if installed(&dir) {
        note("playwright-core: already installed");
        return Ok(());
    }
    note("playwright-core: missing");
    Cmd::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .run()
        .with_context(|| {
            format!(
                "installing playwright-core for the dashboard test; by hand: cd {} && npm ci",
                dir.display()
            )
        })?;
    note("playwright-core: installed");
    Ok(())
}

/// Whether the installed playwright-core is the locked version.
fn installed(dir: &Path) -> bool {
    let read = |path: &Path| -> Option<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    };
    let Some(lock) = read(&dir.join("package-lock.json")) else {
        return false;
    };
    let Some(have) = read(&dir.join("node_modules/playwright-core/package.json")) else {
        return false;
    };
    let wanted = &lock["packages"]["node_modules/playwright-core"]["version"];
    !wanted.is_null() && *wanted == have["version"]
}
