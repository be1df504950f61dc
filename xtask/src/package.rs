//! `cargo xtask package`: the Debian package, `target/debian/nta_<version>-1_<arch>.deb`.
//!
//! Built with `dpkg-deb --build --root-owner-group` from a tree staged here
//! rather than with cargo-deb: dpkg-deb is on every Debian machine, where
//! cargo-deb would be one more tool to compile in CI; the tree is the
//! package, every path and mode written down in this file; and the systemd
//! unit is a template (`nta@.service`, the instance names the interface),
//! which must be neither enabled nor started on install, the opposite of
//! what cargo-deb's systemd scripts do by default. Depends comes from
//! `dpkg-shlibdeps`, as cargo-deb's `$auto` does.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context as _, bail};

use crate::{
    build::{agent_binary, cargo_build},
    cmd::{Cmd, note, step},
    packages,
    paths::{target_dir, workspace_root},
    setup,
};

/// The package's name (the binary keeps the crate's, `nta-agent`).
const NAME: &str = "nta";

/// Debian's revision of the packaging, after the upstream version.
const REVISION: &str = "1";

/// Who answers for the package, as Debian's control file requires.
const MAINTAINER: &str = "nta maintainers <maintainers@nta.invalid>";

/// Files of `packaging/debian/`, where the package installs them, and their
/// modes. The secrets file is root's only: systemd reads it for the agent.
const FILES: [(&str, &str, u32); 6] = [
    ("nta@.service", "usr/lib/systemd/system/nta@.service", 0o644),
    ("nta.toml", "etc/nta/nta.toml", 0o644),
    ("nta.env", "etc/nta/nta.env", 0o600),
    ("nta.logrotate", "etc/logrotate.d/nta", 0o644),
    ("README.Debian", "usr/share/doc/nta/README.Debian", 0o644),
    ("copyright", "usr/share/doc/nta/copyright", 0o644),
];

/// Files dpkg keeps as the administrator edited them across upgrades.
const CONFFILES: [&str; 3] = [
    "/etc/nta/nta.toml",
    "/etc/nta/nta.env",
    "/etc/logrotate.d/nta",
];

/// Maintainer scripts of `packaging/debian/`, into the control archive.
const SCRIPTS: [&str; 3] = ["postinst", "prerm", "postrm"];

/// The completion scripts `nta-agent generate completions` writes, and
/// where each shell looks for them.
const COMPLETIONS: [(&str, &str); 3] = [
    (
        "nta-agent.bash",
        "usr/share/bash-completion/completions/nta-agent",
    ),
    ("_nta-agent", "usr/share/zsh/vendor-completions/_nta-agent"),
    (
        "nta-agent.fish",
        "usr/share/fish/vendor_completions.d/nta-agent.fish",
    ),
];

/// Beyond the shared libraries: the agent runs `ip` to find and replace a
/// stale program on the interface; the unit reloads with `kill`, and
/// logrotate falls back to `pkill`.
const EXTRA_DEPENDS: &str = "iproute2, procps";

/// Sets up, builds the release agent, and packages it; returns the .deb.
pub fn package() -> anyhow::Result<PathBuf> {
    setup::setup(false)?;
    packages::ensure_packaging()?;
    let started = Instant::now();
    cargo_build(true)?;
    let deb = build_deb(&agent_binary(true))?;
    step(format!(
        "package: {} ({} KiB) in {:.0}s",
        deb.display(),
        fs::metadata(&deb).map(|m| m.len() / 1024).unwrap_or(0),
        started.elapsed().as_secs_f64()
    ));
    Ok(deb)
}

/// Packages `binary`, already built, with the files of `packaging/debian/`.
pub fn build_deb(binary: &Path) -> anyhow::Result<PathBuf> {
    let version = format!("{}-{REVISION}", env!("CARGO_PKG_VERSION"));
    let arch = Cmd::new("dpkg")
        .arg("--print-architecture")
        .read()?
        .trim()
        .to_owned();
    let out = target_dir().join("debian");
    let stem = format!("{NAME}_{version}_{arch}");
    let root = out.join(&stem);
    if root.exists() {
        fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    step(format!("staging the package in {}", root.display()));
    stage_files(&root, binary)?;
    stage_generated(&root, binary, &out.join("generated"))?;
    let control = Control {
        version: &version,
        arch: &arch,
        depends: format!("{}, {EXTRA_DEPENDS}", shlib_depends(binary, &out)?),
        installed_kib: tree_kib(&root)?,
    };
    stage_control(&root, &control)?;
    fix_dir_modes(&root)?;

    let deb = out.join(format!("{stem}.deb"));
    Cmd::new("dpkg-deb")
        .args(["--root-owner-group", "-Zxz", "--build"])
        .arg(&root)
        .arg(&deb)
        .run()
        .context("dpkg-deb could not build the package")?;
    Ok(deb)
}

/// The binary and the files of `packaging/debian/`, with their modes.
fn stage_files(root: &Path, binary: &Path) -> anyhow::Result<()> {
    let installed = root.join("usr/bin/nta-agent");
    install(binary, &installed, 0o755)?;
    // As dh_strip does: the symbol table is a quarter of the binary, and
    // nta's own errors, not backtraces, are what a user reports.
    Cmd::new("strip")
        .arg("--strip-unneeded")
        .arg(&installed)
        .run()
        .context("strip (binutils, which dpkg-dev brings) could not strip the agent")?;
    let packaging = workspace_root().join("packaging/debian");
    for (from, to, mode) in FILES {
        install(&packaging.join(from), &root.join(to), mode)?;
    }
    install(
        &workspace_root().join("nta.example.toml"),
        &root.join("usr/share/doc/nta/examples/nta.example.toml"),
        0o644,
    )
}

/// The man pages (gzipped, as Debian ships them) and shell completions,
/// written by the binary being packaged from its own clap definitions.
fn stage_generated(root: &Path, binary: &Path, generated: &Path) -> anyhow::Result<()> {
    if generated.exists() {
        fs::remove_dir_all(generated)
            .with_context(|| format!("removing {}", generated.display()))?;
    }
    let man = generated.join("man");
    Cmd::new(binary)
        .args(["generate", "man"])
        .arg(&man)
        .read()?;
    let man1 = root.join("usr/share/man/man1");
    let mut pages = 0;
    for entry in fs::read_dir(&man).with_context(|| format!("listing {}", man.display()))? {
        let page = entry?.path();
        // -n: no name or time stamp inside, so the same page gives the same bytes.
        Cmd::new("gzip").args(["-9n"]).arg(&page).read()?;
        let mut gz = page.into_os_string();
        gz.push(".gz");
        let gz = PathBuf::from(gz);
        let name = gz.file_name().context("a man page without a name")?;
        install(&gz, &man1.join(name), 0o644)?;
        pages += 1;
    }
    note(format!("{pages} man pages"));

    let completions = generated.join("completions");
    Cmd::new(binary)
        .args(["generate", "completions"])
        .arg(&completions)
        .read()?;
    for (from, to) in COMPLETIONS {
        install(&completions.join(from), &root.join(to), 0o644)?;
    }
    Ok(())
}

/// What DEBIAN/control says beyond the constants.
struct Control<'a> {
    version: &'a str,
    arch: &'a str,
    depends: String,
    installed_kib: u64,
}

impl Control<'_> {
    fn render(&self) -> String {
        format!(
            "Package: {NAME}\n\
             Version: {}\n\
             Architecture: {}\n\
             Maintainer: {MAINTAINER}\n\
             Installed-Size: {}\n\
             Depends: {}\n\
             Recommends: logrotate\n\
             Section: net\n\
             Priority: optional\n\
             Description: network traffic analyzer and intrusion detector (eBPF/XDP)\n \
             An XDP program counts every frame of a network interface in the kernel;\n \
             the agent detects port scans, sweeps, floods, reflection and DNS\n \
             tunnels, matches Suricata-style rules on sampled payloads, keeps each\n \
             attack as one incident, notifies by email, SMS or webhook, writes\n \
             Suricata's EVE JSON and serves a JSON API and a dashboard.\n \
             .\n \
             One systemd instance per interface: systemctl enable --now nta@eth0.\n",
            self.version, self.arch, self.installed_kib, self.depends
        )
    }
}

/// DEBIAN/: control, conffiles, the maintainer scripts, md5sums.
fn stage_control(root: &Path, control: &Control) -> anyhow::Result<()> {
    let debian = root.join("DEBIAN");
    write(&debian.join("control"), &control.render(), 0o644)?;
    write(
        &debian.join("conffiles"),
        &(CONFFILES.join("\n") + "\n"),
        0o644,
    )?;
    let packaging = workspace_root().join("packaging/debian");
    for script in SCRIPTS {
        install(&packaging.join(script), &debian.join(script), 0o755)?;
    }
    // md5sums of every file but the conffiles, as dh_md5sums writes it:
    // dpkg --verify and debsums read it.
    let mut files = Vec::new();
    for path in walk(root)? {
        let relative = path.strip_prefix(root)?;
        if relative.starts_with("DEBIAN") || path.is_dir() {
            continue;
        }
        let shown = relative.to_string_lossy().into_owned();
        if !CONFFILES.contains(&format!("/{shown}").as_str()) {
            files.push(shown);
        }
    }
    files.sort();
    let sums = Cmd::new("md5sum").args(&files).current_dir(root).read()?;
    write(&debian.join("md5sums"), &sums, 0o644)
}

/// `Depends` for the shared libraries `binary` links, from dpkg-shlibdeps:
/// libc, libgcc and Hyperscan (or Vectorscan) with the versions it needs.
fn shlib_depends(binary: &Path, out: &Path) -> anyhow::Result<String> {
    // dpkg-shlibdeps reads debian/control from where it runs, for the
    // package's name; a scratch folder gives it a minimal one.
    let scratch = out.join("shlibdeps");
    write(
        &scratch.join("debian/control"),
        &format!("Source: {NAME}\n\nPackage: {NAME}\nArchitecture: any\n"),
        0o644,
    )?;
    let binary = binary
        .canonicalize()
        .with_context(|| format!("{} is not there", binary.display()))?;
    let output = Cmd::new("dpkg-shlibdeps")
        .args(["-O", "-e"])
        .arg(&binary)
        .current_dir(&scratch)
        .read()
        .context("dpkg-shlibdeps could not tell the shared libraries' packages")?;
    parse_shlibdeps(&output)
}

/// The value of `shlibs:Depends=` in dpkg-shlibdeps's output.
fn parse_shlibdeps(output: &str) -> anyhow::Result<String> {
    match output
        .lines()
        .find_map(|line| line.strip_prefix("shlibs:Depends="))
    {
        Some(depends) if !depends.trim().is_empty() => Ok(depends.trim().to_owned()),
        _ => bail!("dpkg-shlibdeps printed no shlibs:Depends line: {output:?}"),
    }
}

/// Copies `from` to `to`, creating its folder, and sets `mode`.
fn install(from: &Path, to: &Path, mode: u32) -> anyhow::Result<()> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    set_mode(to, mode)
}

/// Writes `text` to `to`, creating its folder, and sets `mode`.
fn write(to: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(to, text).with_context(|| format!("writing {}", to.display()))?;
    set_mode(to, mode)
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

/// Every folder 0755, whatever the umask made them: dpkg-deb packs the
/// modes it finds.
fn fix_dir_modes(root: &Path) -> anyhow::Result<()> {
    set_mode(root, 0o755)?;
    for path in walk(root)? {
        if path.is_dir() {
            set_mode(&path, 0o755)?;
        }
    }
    Ok(())
}

/// Every path below `dir` (not following links), folders before their files.
fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        found.push(path.clone());
        if path.is_dir() && !path.is_symlink() {
            found.extend(walk(&path)?);
        }
    }
    Ok(found)
}

/// The installed size in KiB, as dpkg counts it: each file rounded up.
fn tree_kib(root: &Path) -> anyhow::Result<u64> {
    let mut kib = 0;
    for path in walk(root)? {
        let meta = fs::symlink_metadata(&path)?;
        kib += if meta.is_file() {
            meta.len().div_ceil(1024)
        } else {
            1
        };
    }
    Ok(kib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_depends_of_dpkg_shlibdeps() {
        let output =
            "shlibs:Depends=libc6 (>= 2.34), libgcc-s1 (>= 4.2), libhyperscan5 (>= 5.4.0)\n";
        assert_eq!(
            parse_shlibdeps(output).unwrap(),
            "libc6 (>= 2.34), libgcc-s1 (>= 4.2), libhyperscan5 (>= 5.4.0)"
        );
        assert!(parse_shlibdeps("").is_err());
        assert!(parse_shlibdeps("shlibs:Depends=\n").is_err());
    }

    #[test]
    fn the_control_file_has_every_field_dpkg_needs() {
        let control = Control {
            version: "0.1.0-1",
            arch: "amd64",
            depends: "libc6 (>= 2.34), iproute2".to_owned(),
            installed_kib: 12345,
        }
        .render();
        for field in [
            "Package: nta\n",
            "Version: 0.1.0-1\n",
            "Architecture: amd64\n",
            "Installed-Size: 12345\n",
            "Depends: libc6 (>= 2.34), iproute2\n",
            "Section: net\n",
        ] {
            assert!(control.contains(field), "{field:?} in {control}");
        }
        // Continuation lines start with one space; none is empty.
        for line in control
            .lines()
            .skip_while(|l| !l.starts_with("Description"))
            .skip(1)
        {
            assert!(line.starts_with(' ') && line.trim() != "", "{line:?}");
        }
    }

    #[test]
    fn every_conffile_is_installed_under_etc() {
        for conffile in CONFFILES {
            assert!(
                FILES.iter().any(|(_, to, _)| format!("/{to}") == conffile),
                "{conffile} is not among the files installed"
            );
        }
    }
}
