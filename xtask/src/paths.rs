//! Where things are: the workspace, cargo's home, the build's output.

use std::{
    env,
    ffi::OsString,
    path::{Path, PathBuf},
};

use anyhow::Context as _;

use crate::cmd::Cmd;

/// The workspace root, where every cargo command runs so that `cargo xtask`
/// works from any folder of the repository.
pub fn workspace_root() -> PathBuf {
    // Read at run time first: `cargo run` sets it, and it stays right if the
    // checkout moved since xtask was compiled.
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(manifest_dir)
}

/// `$CARGO_HOME`, or `~/.cargo` as cargo itself defaults to.
pub fn cargo_home() -> anyhow::Result<PathBuf> {
    if let Some(home) = env::var_os("CARGO_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    let home = env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("neither CARGO_HOME nor HOME is set: set CARGO_HOME to cargo's folder")?;
    Ok(PathBuf::from(home).join(".cargo"))
}

/// Where `cargo install` puts binaries.
pub fn install_bin_dir() -> anyhow::Result<PathBuf> {
    let root = match env::var_os("CARGO_INSTALL_ROOT").filter(|r| !r.is_empty()) {
        Some(root) => PathBuf::from(root),
        None => cargo_home()?,
    };
    Ok(root.join("bin"))
}

/// The folder holding `debug/` and `release/`.
pub fn target_dir() -> PathBuf {
    let root = workspace_root();
    ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR"]
        .into_iter()
        .find_map(|key| env::var_os(key).filter(|d| !d.is_empty()))
        .map(|dir| root.join(dir))
        .unwrap_or_else(|| root.join("target"))
}

/// `cargo`, the same toolchain's as the one running xtask, in the workspace.
pub fn cargo() -> Cmd {
    // `cargo run` names its own binary in CARGO; the rustup proxy on PATH
    // would pick the same toolchain, but needs PATH, which sudo may reset.
    let program = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Cmd::shown_as(program, "cargo");
    cmd.current_dir(workspace_root());
    cmd
}

/// PATH with `dir` in front, or `None` when PATH already has it.
pub fn path_with(dir: &Path) -> anyhow::Result<Option<OsString>> {
    let path = env::var_os("PATH").unwrap_or_default();
    if env::split_paths(&path).any(|entry| entry == dir) {
        return Ok(None);
    }
    let joined = env::join_paths(std::iter::once(dir.to_path_buf()).chain(env::split_paths(&path)))
        .with_context(|| format!("{} cannot be put on PATH", dir.display()))?;
    Ok(Some(joined))
}
