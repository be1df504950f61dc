//! Attaching to an interface: mode fallback, stale programs, clear errors.

use std::{fmt, process::Command};

use aya::programs::{ProgramError, Xdp, xdp::XdpLinkId};
use nta_common::maps::PROGRAM_NAME;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{SensorError, error::os_error};

/// How to attach: a mode, or the best one the interface has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Native where the driver has it, else generic (skb).
    Auto,
    /// In the driver only; an error where the driver lacks XDP.
    Native,
    /// Generic XDP only.
    Skb,
}

/// Where the program runs once attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachedMode {
    /// In the driver, before an skb is allocated.
    Native,
    /// Generic XDP, in the network stack; works on any device.
    Skb,
}

impl fmt::Display for AttachedMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Native => "native",
            Self::Skb => "skb",
        })
    }
}

/// Attaches `program` to `iface`.
///
/// `auto` tries native first and falls back to skb, with a log line, when the
/// driver lacks XDP (e.g. `lo`). A copy of nta left attached by a process
/// that died is replaced; anything else attached is reported, never removed.
pub fn attach(
    program: &mut Xdp,
    iface: &str,
    mode: XdpMode,
) -> Result<(XdpLinkId, AttachedMode), SensorError> {
    match mode {
        XdpMode::Native => attach_as(program, iface, AttachedMode::Native),
        XdpMode::Skb => attach_as(program, iface, AttachedMode::Skb),
        XdpMode::Auto => match attach_as(program, iface, AttachedMode::Native) {
            Err(SensorError::NativeUnsupported { source, .. }) => {
                info!(
                    message = "Native XDP unavailable, falling back to generic (skb) mode",
                    iface,
                    reason = %format!("{:#}", anyhow::Error::from(source)),
                );
                attach_as(program, iface, AttachedMode::Skb)
            }
            other => other,
        },
    }
}

fn attach_as(
    program: &mut Xdp,
    iface: &str,
    mode: AttachedMode,
) -> Result<(XdpLinkId, AttachedMode), SensorError> {
    let xdp_mode = match mode {
        AttachedMode::Native => aya::programs::XdpMode::Driver,
        AttachedMode::Skb => aya::programs::XdpMode::Skb,
    };
    let error = match program.attach(iface, xdp_mode) {
        Ok(link) => return Ok((link, mode)),
        Err(error) => error,
    };
    match classify(&error) {
        Failure::UnknownInterface => Err(SensorError::NoSuchInterface(iface.to_owned())),
        Failure::Busy => {
            let Some(attached) = attached_program(iface) else {
                return Err(SensorError::Program(error));
            };
            if attached.name != PROGRAM_NAME {
                return Err(SensorError::OtherProgramAttached {
                    iface: iface.to_owned(),
                    program: attached.to_string(),
                });
            }
            // Our own program. A live agent holds it through a BPF link, which
            // netlink refuses to remove; a stale one (attached through netlink
            // by a process that is gone) can be replaced.
            if !detach_with_ip(iface) {
                return Err(SensorError::AlreadyRunning {
                    iface: iface.to_owned(),
                });
            }
            warn!(
                message = "Replaced a stale nta program left on the interface",
                iface,
                program = %attached,
            );
            program
                .attach(iface, xdp_mode)
                .map(|link| (link, mode))
                .map_err(SensorError::Program)
        }
        Failure::ModeUnsupported if mode == AttachedMode::Native => {
            Err(SensorError::NativeUnsupported {
                iface: iface.to_owned(),
                source: error,
            })
        }
        Failure::ModeUnsupported | Failure::Other => Err(SensorError::Program(error)),
    }
}

enum Failure {
    UnknownInterface,
    Busy,
    ModeUnsupported,
    Other,
}

fn classify(error: &ProgramError) -> Failure {
    if matches!(error, ProgramError::UnknownInterface { .. }) {
        return Failure::UnknownInterface;
    }
    match os_error(error) {
        Some(libc::EBUSY | libc::EEXIST) => Failure::Busy,
        Some(libc::EOPNOTSUPP | libc::EINVAL) => Failure::ModeUnsupported,
        _ => Failure::Other,
    }
}

/// An XDP program attached to an interface, as `ip -d link` reports it.
#[derive(Debug, Deserialize)]
struct AttachedProgram {
    id: u32,
    #[serde(default)]
    name: String,
}

impl fmt::Display for AttachedProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "id {} `{}`", self.id, self.name)
    }
}

#[derive(Debug, Deserialize)]
struct Link {
    xdp: Option<LinkXdp>,
}

#[derive(Debug, Deserialize)]
struct LinkXdp {
    prog: Option<AttachedProgram>,
    #[serde(default)]
    attached: Vec<AttachedSlot>,
}

#[derive(Debug, Deserialize)]
struct AttachedSlot {
    prog: Option<AttachedProgram>,
}

/// The program attached to `iface`, from iproute2 (aya has no query for it).
fn attached_program(iface: &str) -> Option<AttachedProgram> {
    let output = Command::new("ip")
        .args(["-j", "-d", "link", "show", "dev", iface])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    parse_attached(&output.stdout)
}

fn parse_attached(json: &[u8]) -> Option<AttachedProgram> {
    let links: Vec<Link> = serde_json::from_slice(json).ok()?;
    let xdp = links.into_iter().next()?.xdp?;
    xdp.prog
        .or_else(|| xdp.attached.into_iter().find_map(|slot| slot.prog))
}

/// Removes whatever netlink attached to `iface`, in every mode; false if the
/// kernel refused (a BPF link owns the attachment).
fn detach_with_ip(iface: &str) -> bool {
    ["xdpgeneric", "xdpdrv"].iter().all(|mode| {
        Command::new("ip")
            .args(["link", "set", "dev", iface, mode, "off"])
            .output()
            .is_ok_and(|o| o.status.success())
    }) && attached_program(iface).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_program_from_ip_link_json() {
        let json = br#"[{"ifindex":1,"ifname":"lo","xdp":{"mode":2,"prog":{"id":42,"name":"nta","tag":"ab","jited":1}}}]"#;
        let prog = parse_attached(json).expect("program");
        assert_eq!((prog.id, prog.name.as_str()), (42, "nta"));
    }

    #[test]
    fn reads_the_program_from_the_multi_attach_form() {
        let json = br#"[{"ifname":"veth0","xdp":{"mode":4,"attached":[{"mode":2,"prog":{"id":7,"name":"xdp_fw"}}]}}]"#;
        let prog = parse_attached(json).expect("program");
        assert_eq!(prog.to_string(), "id 7 `xdp_fw`");
    }

    #[test]
    fn attached_modes_read_and_serialize_as_lowercase_words() {
        for (mode, word) in [(AttachedMode::Native, "native"), (AttachedMode::Skb, "skb")] {
            assert_eq!(mode.to_string(), word);
            assert_eq!(serde_json::to_value(mode).unwrap(), word);
        }
    }

    #[test]
    fn no_xdp_means_no_program() {
        assert!(parse_attached(br#"[{"ifname":"lo"}]"#).is_none());
        assert!(parse_attached(b"not json").is_none());
    }
}
