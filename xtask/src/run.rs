//! `cargo xtask run`: build, then run the agent on an interface as root.

use std::{ffi::OsString, process::ExitCode};

use crate::{
    build::{agent_binary, build},
    cmd::{exit_code, survive_sigint},
    privilege::as_root,
};

pub fn run(iface: &str, release: bool, agent_args: &[OsString]) -> anyhow::Result<ExitCode> {
    build(release)?;
    let mut agent = as_root(agent_binary(release), "attaching an XDP program")?;
    agent.args(["run", "--iface", iface]).args(agent_args);
    // The agent must see Ctrl-C to detach its program from the interface,
    // and xtask must outlive it to pass its exit code on.
    survive_sigint()?;
    Ok(exit_code(agent.status()?))
}
