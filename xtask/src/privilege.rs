//! Running things as root: loading XDP programs, creating network namespaces
//! and installing Debian packages all need it.

use std::ffi::OsStr;

use anyhow::bail;

use crate::cmd::Cmd;

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// What to put before a command to run it as root: nothing when we are root
/// already, else `sudo` with `sudo_flags`.
pub fn root_prefix(sudo_flags: &[&str], why: &str) -> anyhow::Result<Vec<String>> {
    if is_root() {
        return Ok(Vec::new());
    }
    if which::which("sudo").is_err() {
        bail!("{why} needs root, and sudo is not installed: run this command as root");
    }
    Ok(std::iter::once("sudo")
        .chain(sudo_flags.iter().copied())
        .map(str::to_owned)
        .collect())
}

/// `program` with `env` set, run as root, through `sudo sudo_flags` when we
/// are not root. sudo resets the environment, so the variables then go on
/// its command line, where it sets them for the program.
pub fn root_cmd(
    program: impl AsRef<OsStr>,
    env: &[(&str, &str)],
    sudo_flags: &[&str],
    why: &str,
) -> anyhow::Result<Cmd> {
    let prefix = root_prefix(sudo_flags, why)?;
    let Some((sudo, flags)) = prefix.split_first() else {
        let mut cmd = Cmd::new(program);
        for (key, value) in env {
            cmd.env(key, value);
        }
        return Ok(cmd);
    };
    let mut cmd = Cmd::new(sudo);
    cmd.args(flags)
        .args(env.iter().map(|(key, value)| format!("{key}={value}")))
        .arg(program);
    Ok(cmd)
}

/// `program`, run as root; through `sudo -E` otherwise, so that the user's
/// environment (RUST_LOG, for one) still applies.
pub fn as_root(program: impl AsRef<OsStr>, why: &str) -> anyhow::Result<Cmd> {
    root_cmd(program, &[], &["-E"], why)
}
