//! `cargo xtask setup`: everything a Linux machine needs to build nta, each
//! step checking first so that a second run changes nothing.

use anyhow::{Context as _, bail};

use crate::{
    bpf_linker, browser,
    cmd::{Cmd, note, step},
    packages, python,
};

pub fn setup(test_tools: bool) -> anyhow::Result<()> {
    platform()?;
    rustup()?;
    nightly()?;
    rust_src()?;
    bpf_linker::ensure()?;
    packages::ensure_build()?;
    if test_tools {
        packages::ensure()?;
        browser::ensure()?;
        python::ensure()?;
    }
    step("setup: done");
    Ok(())
}

fn platform() -> anyhow::Result<()> {
    step("platform");
    if !cfg!(target_os = "linux") {
        bail!(
            "nta needs Linux (XDP/eBPF); this is {}",
            std::env::consts::OS
        );
    }
    note("Linux: yes");
    Ok(())
}

fn rustup() -> anyhow::Result<()> {
    step("rustup");
    let path = which::which("rustup").context(
        "rustup is not installed (or not on PATH): nta builds its XDP program with a nightly \
         toolchain that rustup manages; install rustup from your distribution or from \
         https://rustup.rs, then run `cargo xtask setup` again",
    )?;
    note(format!("rustup: already installed ({})", path.display()));
    Ok(())
}

/// The eBPF program is built with nightly, for `-Z build-std=core`.
fn nightly() -> anyhow::Result<()> {
    let list = Cmd::new("rustup").args(["toolchain", "list"]).read()?;
    if let Some(name) = find_nightly(&list) {
        note(format!("nightly toolchain: already installed ({name})"));
        return Ok(());
    }
    Cmd::new("rustup")
        .args(["toolchain", "install", "nightly", "--profile", "minimal"])
        .run()
        .context(
            "could not install the nightly toolchain (the network may be refused here): run \
             `rustup toolchain install nightly --profile minimal` by hand, then \
             `cargo xtask setup` again",
        )?;
    note("nightly toolchain: installed");
    Ok(())
}

/// `-Z build-std=core` compiles core from source for the BPF target.
fn rust_src() -> anyhow::Result<()> {
    let installed = Cmd::new("rustup")
        .args(["component", "list", "--toolchain", "nightly", "--installed"])
        .read()?;
    if installed
        .lines()
        .any(|line| line.split_whitespace().next() == Some("rust-src"))
    {
        note("rust-src (nightly): already installed");
        return Ok(());
    }
    Cmd::new("rustup")
        .args(["component", "add", "rust-src", "--toolchain", "nightly"])
        .run()
        .context(
            "could not add rust-src to the nightly toolchain (the network may be refused here): \
             run `rustup component add rust-src --toolchain nightly` by hand, then \
             `cargo xtask setup` again",
        )?;
    note("rust-src (nightly): installed");
    Ok(())
}

/// The name of the undated nightly toolchain in `rustup toolchain list`'s
/// output: that is the one `+nightly` means, a dated one would not do.
fn find_nightly(list: &str) -> Option<&str> {
    list.lines()
        .filter_map(|line| line.split_whitespace().next())
        .find(|name| {
            *name == "nightly"
                || name
                    .strip_prefix("nightly-")
                    .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_undated_nightly_only() {
        let list = "stable-x86_64-unknown-linux-gnu (active, default)\n\
                    nightly-2024-05-01-x86_64-unknown-linux-gnu\n\
                    nightly-x86_64-unknown-linux-gnu\n";
        assert_eq!(find_nightly(list), Some("nightly-x86_64-unknown-linux-gnu"));
        assert_eq!(
            find_nightly("nightly-2024-05-01-x86_64-unknown-linux-gnu\n"),
            None
        );
        assert_eq!(find_nightly("no installed toolchains\n"), None);
    }
}
