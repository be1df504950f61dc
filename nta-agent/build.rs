//! Builds the XDP program (`nta-ebpf`) for the BPF target and leaves it in
//! `OUT_DIR/nta`, where `sensor::program` embeds it.
//!
//! When bpf-linker is not installed, an empty stub is written instead so that
//! `cargo check`, clippy and the unit tests work on a machine without the eBPF
//! toolchain; a binary built that way refuses to run (see `sensor::program`).
//! `cargo xtask setup` installs the toolchain.

use std::{env, fs, path::PathBuf};

use anyhow::{Context as _, anyhow};
use aya_build::Toolchain;

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    println!("cargo::rerun-if-env-changed=NTA_EBPF_STUB");

    let linker = which::which("bpf-linker");
    let forced_stub = env::var_os("NTA_EBPF_STUB").is_some_and(|v| v == "1");
    if forced_stub || linker.is_err() {
        // Re-run once the linker appears where `cargo xtask setup` puts it.
        if let Some(home) = env::var_os("CARGO_HOME").or_else(|| {
            env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo").into_os_string())
        }) {
            let expected = PathBuf::from(home).join("bin").join("bpf-linker");
            println!("cargo::rerun-if-changed={}", expected.display());
        }
        println!(
            "cargo::warning=bpf-linker not found: building nta-agent without its XDP program; \
             run `cargo xtask setup` (or `cargo xtask build`) for a working binary"
        );
        fs::write(out_dir.join("nta"), []).context("writing the eBPF stub")?;
        return Ok(());
    }
    if let Ok(path) = linker {
        println!("cargo::rerun-if-changed={}", path.display());
    }

    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("reading the workspace metadata")?;
    let package = metadata
        .packages
        .into_iter()
        .find(|p| p.name.as_str() == "nta-ebpf")
        .ok_or_else(|| anyhow!("nta-ebpf package not found in the workspace"))?;
    let root_dir = package
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("no parent for {}", package.manifest_path))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: package.name.as_str(),
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        Toolchain::default(),
    )
}
