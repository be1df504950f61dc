//! bpf-linker, built against the very LLVM that the nightly rustc embeds.
//!
//! rustc emits LLVM bitcode for the BPF target and bpf-linker links it with
//! its own LLVM: a different major version misreads the bitcode. A prebuilt
//! bpf-linker cannot be downloaded here, and no LLVM of the right version is
//! packaged, so we build bpf-linker against the `libLLVM.so` shipped inside
//! the nightly toolchain. llvm-sys looks for `LLVM_PREFIX/lib/libLLVM.so`;
//! the toolchain only has the versioned file, hence a prefix of symlinks.
//! bpf-linker keeps that prefix as its runpath, so it lives in cargo's home,
//! next to the binary, and not in a temporary folder.

use std::{
    fs, io,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, anyhow};

use crate::{
    cmd::{Cmd, note},
    paths::{self, cargo_home, install_bin_dir},
};

/// The parts of `rustc -vV` that decide whether a bpf-linker still fits.
#[derive(Debug, PartialEq, Eq)]
struct Nightly {
    commit_hash: String,
    llvm_version: String,
}

impl Nightly {
    fn parse(version_info: &str) -> anyhow::Result<Self> {
        let field = |name: &str| {
            version_info
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(|value| value.trim().to_owned())
                .ok_or_else(|| anyhow!("`rustc -vV` printed no `{name}:` line"))
        };
        Ok(Self {
            commit_hash: field("commit-hash")?,
            llvm_version: field("LLVM version")?,
        })
    }

    fn llvm_major(&self) -> anyhow::Result<u32> {
        self.llvm_version
            .split('.')
            .next()
            .and_then(|major| major.parse().ok())
            .ok_or_else(|| anyhow!("cannot read LLVM version `{}`", self.llvm_version))
    }

    /// What the stamp holds after a successful install for this nightly.
    fn stamp(&self) -> String {
        format!(
            "commit-hash: {}\nLLVM version: {}\n",
            self.commit_hash, self.llvm_version
        )
    }
}

pub fn ensure() -> anyhow::Result<()> {
    let version_info = nightly_rustc().arg("-vV").read()?;
    let nightly = Nightly::parse(&version_info)?;
    note(format!("nightly rustc uses LLVM {}", nightly.llvm_version));

    let nta_home = cargo_home()?.join("nta");
    let stamp = nta_home.join("bpf-linker.stamp");
    let linker = install_bin_dir()?.join("bpf-linker");
    match reason_to_install(&stamp, &nightly, &linker) {
        None => note("bpf-linker: already installed for this LLVM"),
        Some(reason) => {
            note(format!("bpf-linker: installing, because {reason}"));
            install(&nightly, &nta_home, &stamp, &linker)?;
        }
    }
    warn_if_shadowed(&linker);
    Ok(())
}

/// Why bpf-linker must be (re)installed, or `None` when it is fine.
fn reason_to_install(stamp: &Path, nightly: &Nightly, linker: &Path) -> Option<String> {
    match fs::read_to_string(stamp) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Some(format!("{} does not exist yet", stamp.display()));
        }
        Err(e) => return Some(format!("{} is unreadable ({e})", stamp.display())),
        Ok(content) if content != nightly.stamp() => {
            return Some("it was built for another nightly toolchain".to_owned());
        }
        Ok(_) => {}
    }
    // The stamp cannot tell that the binary or its LLVM symlinks were removed
    // since, or that the nightly was replaced under the same version.
    match Cmd::new(linker).arg("--version").read() {
        Ok(version) => {
            note(version.trim());
            None
        }
        Err(e) => Some(format!("it does not run: {e:#}")),
    }
}

fn install(nightly: &Nightly, nta_home: &Path, stamp: &Path, linker: &Path) -> anyhow::Result<()> {
    let major = nightly.llvm_major()?;
    let prefix = llvm_prefix(nta_home, major)?;

    // A stamp must never outlive an install that failed half-way.
    match fs::remove_file(stamp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", stamp.display()));
        }
        _ => {}
    }

    let started = Instant::now();
    paths::cargo()
        .env("LLVM_PREFIX", &prefix)
        .args([
            "install",
            "bpf-linker",
            "--no-default-features",
            "--features",
        ])
        .arg(format!("llvm-{major}"))
        .arg("--force")
        // Outside the workspace, so that the project's .cargo/config.toml
        // (targets, runners, flags) cannot leak into this build.
        .current_dir(nta_home)
        .run()
        .with_context(|| {
            format!(
                "could not build bpf-linker (the network may be refused here, or the crate may \
                 not support LLVM {major} yet): run the command above by hand to see why, \
                 then `cargo xtask setup` again"
            )
        })?;
    note(format!(
        "bpf-linker: installed in {}",
        human_duration(started.elapsed())
    ));

    let version = Cmd::new(linker)
        .arg("--version")
        .read()
        .context("the bpf-linker just installed does not run")?;
    note(version.trim());
    fs::write(stamp, nightly.stamp()).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(())
}

/// Makes `<nta_home>/llvm-<major>` a prefix whose `lib/` has the nightly's
/// libLLVM under both the names llvm-sys links with and the binary loads.
fn llvm_prefix(nta_home: &Path, major: u32) -> anyhow::Result<PathBuf> {
    let sysroot = nightly_rustc().args(["--print", "sysroot"]).read()?;
    let sysroot_lib = Path::new(sysroot.trim()).join("lib");
    let soname_start = format!("libLLVM.so.{major}.");
    let soname = fs::read_dir(&sysroot_lib)
        .with_context(|| format!("listing {}", sysroot_lib.display()))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .find(|name| name.starts_with(&soname_start))
        .ok_or_else(|| {
            anyhow!(
                "the nightly toolchain has no {soname_start}* in {}: reinstall it with \
                 `rustup toolchain install nightly --profile minimal --force`",
                sysroot_lib.display()
            )
        })?;
    let target = sysroot_lib.join(&soname);

    let prefix = nta_home.join(format!("llvm-{major}"));
    let lib = prefix.join("lib");
    fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    // Links left by an older nightly point at files rustup has deleted.
    for entry in fs::read_dir(&lib).with_context(|| format!("listing {}", lib.display()))? {
        let path = entry?.path();
        if path.is_symlink() {
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    for name in ["libLLVM.so", soname.as_str()] {
        let link = lib.join(name);
        symlink(&target, &link)
            .with_context(|| format!("linking {} to {}", link.display(), target.display()))?;
    }
    note(format!(
        "LLVM prefix: {} (libLLVM.so and {soname} -> {})",
        prefix.display(),
        target.display()
    ));
    Ok(prefix)
}

/// The agent's build script takes the first bpf-linker on PATH; say so when
/// that is not the one set up here. `cargo xtask build` puts ours first.
fn warn_if_shadowed(linker: &Path) {
    let same = |found: &Path| match (found.canonicalize(), linker.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => found == linker,
    };
    match which::which("bpf-linker") {
        Ok(found) if same(&found) => {}
        Ok(found) => note(format!(
            "note: {} comes first on PATH; plain `cargo build` would use it instead of {}",
            found.display(),
            linker.display()
        )),
        Err(_) => note(format!(
            "note: {} is not on PATH; `cargo xtask build` adds it, add it yourself for plain \
             `cargo build`",
            linker.parent().unwrap_or(linker).display()
        )),
    }
}

fn nightly_rustc() -> Cmd {
    // Through `rustup run`, which works whether `rustc` on PATH is rustup's
    // proxy (which `+nightly` needs) or a toolchain's own binary.
    let mut cmd = Cmd::new("rustup");
    cmd.args(["run", "nightly", "rustc"]);
    cmd
}

fn human_duration(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs();
    if seconds < 60 {
        format!("{:.1}s", elapsed.as_secs_f64())
    } else {
        format!("{}m {:02}s", seconds / 60, seconds % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERSION_INFO: &str = "rustc 1.97.0-nightly (e50aa6fba 2026-05-19)\n\
        binary: rustc\n\
        commit-hash: e50aa6fba4e63ab34c72bf9acfd2c307c1155d1a\n\
        commit-date: 2026-05-19\n\
        host: x86_64-unknown-linux-gnu\n\
        release: 1.97.0-nightly\n\
        LLVM version: 22.1.4\n";

    #[test]
    fn reads_the_commit_and_llvm_version_from_rustc() {
        let nightly = Nightly::parse(VERSION_INFO).unwrap();
        assert_eq!(
            nightly.commit_hash,
            "e50aa6fba4e63ab34c72bf9acfd2c307c1155d1a"
        );
        assert_eq!(nightly.llvm_version, "22.1.4");
        assert_eq!(nightly.llvm_major().unwrap(), 22);
        assert_eq!(
            nightly.stamp(),
            "commit-hash: e50aa6fba4e63ab34c72bf9acfd2c307c1155d1a\nLLVM version: 22.1.4\n"
        );
    }

    #[test]
    fn complains_about_a_rustc_without_llvm() {
        let err = Nightly::parse("rustc 1.0\ncommit-hash: abc\n").unwrap_err();
        assert!(err.to_string().contains("LLVM version"), "{err}");
    }

    #[test]
    fn shows_durations_for_people() {
        assert_eq!(human_duration(Duration::from_millis(4200)), "4.2s");
        assert_eq!(human_duration(Duration::from_secs(65)), "1m 05s");
    }
}
