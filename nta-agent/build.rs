//! Builds the XDP program (`nta-ebpf`) for the BPF target and leaves it in
//! `OUT_DIR/nta`, where `sensor::program` embeds it.
//!
//! This is what aya-build does, plus `-C target-cpu=v3`, which aya-build
//! 0.2 cannot pass: for the default (v1) CPU, LLVM 22 emits a 32-bit atomic
//! add without its fetch flag even where the old value is used, and mis-
//! compares zero-extended subregisters — both silently wrong code. v3
//! (Linux 5.1+, well under nta's 5.15 minimum) has real 32-bit atomics and
//! jumps.
//!
//! `+allows-misaligned-mem-access` lets LLVM read a packet's addresses and
//! ports in words wherever they sit: without it, every multi-byte field of
//! a header is loaded a byte at a time. The kernel allows misaligned packet
//! loads on the architectures nta runs on, but not misaligned stack
//! accesses, which the verifier rejects at load (so a mistake cannot ship):
//! the one key with a word at an odd offset, the blocklist's, is written in
//! 4-byte stores (`nta-ebpf/src/block.rs`).
//!
//! When bpf-linker is not installed, an empty stub is written instead so
//! that `cargo check`, clippy and the unit tests work on a machine without
//! the eBPF toolchain; a binary built that way refuses to run (see
//! `sensor::program`). `cargo xtask setup` installs the toolchain.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

const EBPF_PACKAGE: &str = "nta-ebpf";
const EBPF_BINARY: &str = "nta";
const BPF_CPU: &str = "v3";

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?);
    let workspace = manifest_dir
        .parent()
        .context("nta-agent has no parent directory")?;
    println!("cargo::rerun-if-env-changed=NTA_EBPF_STUB");
    for dir in ["nta-ebpf", "nta-common"] {
        println!("cargo::rerun-if-changed={}", workspace.join(dir).display());
    }

    let linker = which::which("bpf-linker");
    let forced_stub = env::var_os("NTA_EBPF_STUB").is_some_and(|v| v == "1");
    if forced_stub || linker.is_err() {
        return stub(&out_dir);
    }
    if let Ok(path) = linker {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    build(workspace, &out_dir)
}

fn stub(out_dir: &Path) -> anyhow::Result<()> {
    // Re-run once the linker appears where `cargo xtask setup` puts it.
    if let Some(home) = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
    {
        println!(
            "cargo::rerun-if-changed={}",
            home.join("bin").join("bpf-linker").display()
        );
    }
    println!(
        "cargo::warning=bpf-linker not found: building nta-agent without its XDP program; \
         run `cargo xtask setup` (or `cargo xtask build`) for a working binary"
    );
    fs::write(out_dir.join(EBPF_BINARY), []).context("writing the eBPF stub")?;
    Ok(())
}

fn build(workspace: &Path, out_dir: &Path) -> anyhow::Result<()> {
    let endian = env::var("CARGO_CFG_TARGET_ENDIAN").context("CARGO_CFG_TARGET_ENDIAN not set")?;
    let target = match endian.as_str() {
        "little" => "bpfel-unknown-none",
        "big" => "bpfeb-unknown-none",
        other => bail!("unsupported endianness {other}"),
    };
    let arch = env::var("CARGO_CFG_TARGET_ARCH").context("CARGO_CFG_TARGET_ARCH not set")?;
    // Separate from our own target dir: cargo holds a lock on that one.
    let target_dir = out_dir.join("ebpf-target");
    let rustflags = [
        format!("--cfg=bpf_target_arch=\"{arch}\""),
        "-Cdebuginfo=2".to_owned(),
        "-Clink-arg=--btf".to_owned(),
        format!("-Ctarget-cpu={BPF_CPU}"),
        "-Ctarget-feature=+allows-misaligned-mem-access".to_owned(),
    ]
    .join("\x1f");

    let mut cmd = Command::new("rustup");
    cmd.current_dir(workspace)
        .args([
            "run",
            "nightly",
            "cargo",
            "build",
            "--package",
            EBPF_PACKAGE,
            "--bins",
        ])
        .args(["--release", "--target", target, "-Z", "build-std=core"])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags);
    // The outer build's compiler and flags are for the host, not for BPF.
    for key in [
        "RUSTC",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cmd.env_remove(key);
    }
    let output = cmd.output().context(
        "running `rustup run nightly cargo build` for the XDP program; is rustup installed?",
    )?;
    if !output.status.success() {
        for line in String::from_utf8_lossy(&output.stderr).lines() {
            println!("cargo::warning={line}");
        }
        bail!(
            "building the XDP program failed ({}); see the warnings above, or run \
             `cargo xtask setup` if the nightly toolchain or bpf-linker is missing",
            output.status
        );
    }
    let built = target_dir.join(target).join("release").join(EBPF_BINARY);
    fs::copy(&built, out_dir.join(EBPF_BINARY))
        .with_context(|| format!("copying {} into OUT_DIR", built.display()))?;
    Ok(())
}
