//! The capabilities the sensor needs, checked before anything is loaded:
//! a missing one is named, rather than surfacing as a bare EPERM from
//! whichever BPF call meets it first.
//!
//! Root has them all. A dedicated user needs exactly these three
//! (systemd's `AmbientCapabilities=`, or `setpriv --ambient-caps`):
//! `CAP_SYS_ADMIN` would also do for two of them, as the kernel's
//! `bpf_capable()` and `perfmon_capable()` accept it, but is far broader.

use std::fmt;

/// One capability: its number in the kernel's sets, its name, and what nta
/// does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    pub bit: u32,
    pub name: &'static str,
    pub needed_for: &'static str,
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.needed_for)
    }
}

pub const CAP_NET_ADMIN: Capability = Capability {
    bit: 12,
    name: "CAP_NET_ADMIN",
    needed_for: "to attach the XDP program to an interface",
};
pub const CAP_PERFMON: Capability = Capability {
    bit: 38,
    name: "CAP_PERFMON",
    needed_for: "for the verifier to accept the program's packet pointers",
};
pub const CAP_BPF: Capability = Capability {
    bit: 39,
    name: "CAP_BPF",
    needed_for: "to load the program and create its maps",
};
const CAP_SYS_ADMIN: u32 = 21;

/// Everything the sensor needs, and no more.
pub const NEEDED: [Capability; 3] = [CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON];

/// The needed capabilities missing from the effective set `effective`.
pub fn missing(effective: u64) -> Vec<Capability> {
    let has = |bit: u32| effective & (1 << bit) != 0;
    NEEDED
        .into_iter()
        .filter(|cap| {
            let stands_in = cap.bit != CAP_NET_ADMIN.bit && has(CAP_SYS_ADMIN);
            !has(cap.bit) && !stands_in
        })
        .collect()
}

/// This process's effective set, from `CapEff` in `/proc/self/status`;
/// `None` when it cannot be read (then the kernel's own refusals speak).
pub fn effective() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    effective_in(&status)
}

fn effective_in(status: &str) -> Option<u64> {
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(caps: &[u32]) -> u64 {
        caps.iter().fold(0, |set, bit| set | 1 << bit)
    }

    #[test]
    fn root_and_the_three_lack_nothing() {
        assert_eq!(missing(u64::MAX), []);
        assert_eq!(missing(set(&[12, 38, 39])), []);
    }

    #[test]
    fn each_missing_capability_is_named() {
        assert_eq!(missing(0), NEEDED);
        assert_eq!(missing(set(&[38, 39])), [CAP_NET_ADMIN]);
        assert_eq!(missing(set(&[12, 38])), [CAP_BPF]);
        assert_eq!(missing(set(&[12, 39])), [CAP_PERFMON]);
    }

    #[test]
    fn sys_admin_stands_in_for_bpf_and_perfmon_only() {
        assert_eq!(missing(set(&[CAP_SYS_ADMIN])), [CAP_NET_ADMIN]);
        assert_eq!(missing(set(&[CAP_SYS_ADMIN, 12])), []);
    }

    #[test]
    fn the_effective_set_is_read_from_proc_status() {
        let status = "Name:\tnta-agent\nCapInh:\t0000000000000000\nCapPrm:\t000000c000001000\n\
                      CapEff:\t000000c000001000\nCapBnd:\t000001ffffffffff\n";
        assert_eq!(effective_in(status), Some(set(&[12, 38, 39])));
        assert_eq!(effective_in("Name:\tx\n"), None);
        assert!(effective().is_some(), "this process's own status");
    }
}
