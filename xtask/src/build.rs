//! `cargo xtask build`: the agent, with its XDP program.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::{
    cmd::{Cmd, note},
    paths::{self, install_bin_dir, path_with, target_dir},
    setup,
};

pub fn build(release: bool) -> anyhow::Result<()> {
    setup::setup(false)?;
    cargo_build(release)
}

/// Builds the agent, assuming setup has run.
pub fn cargo_build(release: bool) -> anyhow::Result<()> {
    let mut cargo = cargo_seeing_bpf_linker()?;
    cargo.args(["build", "-p", "nta-agent"]);
    if release {
        cargo.arg("--release");
    }
    cargo
        .run()
        .context("building nta-agent failed: see cargo's messages above")
}

/// Where `cargo_build(release)` leaves the agent.
pub fn agent_binary(release: bool) -> PathBuf {
    target_dir()
        .join(if release { "release" } else { "debug" })
        .join("nta-agent")
}

/// cargo, with the folder setup installed bpf-linker into on PATH: without
/// it the agent's build script quietly builds an empty stub program.
pub fn cargo_seeing_bpf_linker() -> anyhow::Result<Cmd> {
    let bin = install_bin_dir()?;
    let mut cargo = paths::cargo();
    if let Some(path) = path_with(&bin)? {
        note(format!("putting {} on PATH for bpf-linker", bin.display()));
        cargo.env_unshown("PATH", path);
    }
    Ok(cargo)
}
