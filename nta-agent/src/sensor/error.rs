//! What can go wrong between the agent and the kernel, worded for the user.

use std::io;

use aya::{EbpfError, maps::MapError, programs::ProgramError};
use ipnet::IpNet;
use nta_common::maps::BLOCKLIST_MAX_ENTRIES;

use super::MIN_KERNEL;

/// A sensor failure, with what to do about it where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error(
        "this nta-agent was built without its XDP program (bpf-linker was missing at build \
         time); build it with `cargo xtask build`"
    )]
    NoProgram,

    #[error("reading the kernel version: {0}")]
    KernelVersion(String),

    #[error(
        "kernel {found} is too old: nta needs Linux {}.{} or newer (BPF links for XDP, atomic \
         map updates)", MIN_KERNEL.0, MIN_KERNEL.1
    )]
    KernelTooOld { found: String },

    #[error(
        "not permitted to load BPF programs: run nta-agent as root (or with CAP_BPF, \
         CAP_NET_ADMIN and CAP_PERFMON)"
    )]
    NotPermitted(#[source] Box<dyn std::error::Error + Send + Sync>),

    #[error(
        "missing capability {missing}: nta-agent needs CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON; \
         run it as root, or give it those three (systemd: AmbientCapabilities=CAP_BPF \
         CAP_NET_ADMIN CAP_PERFMON; by hand: setpriv --inh-caps=+bpf,+net_admin,+perfmon \
         --ambient-caps=+bpf,+net_admin,+perfmon ...)"
    )]
    MissingCapabilities { missing: String },

    #[error("no such interface: `{0}` (see `ip link` for the names)")]
    NoSuchInterface(String),

    #[error(
        "another XDP program ({program}) is attached to {iface}; detach it with \
         `ip link set dev {iface} xdp off` or watch another interface"
    )]
    OtherProgramAttached { iface: String, program: String },

    #[error("another nta-agent is already attached to {iface}; stop it first")]
    AlreadyRunning { iface: String },

    #[error("the driver of {iface} does not support native XDP; use --xdp-mode skb (or auto)")]
    NativeUnsupported {
        iface: String,
        #[source]
        source: ProgramError,
    },

    #[error("the eBPF object has no program named `{0}`")]
    MissingProgram(&'static str),

    #[error("the eBPF object has no map named `{0}`")]
    MissingMap(&'static str),

    #[error("loading the eBPF object")]
    Load(#[source] EbpfError),

    #[error("XDP program")]
    Program(#[from] ProgramError),

    #[error("watching the {0} ring buffer")]
    Ring(&'static str, #[source] std::io::Error),

    #[error("reading map {name} in batches")]
    Batch {
        name: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("map {0} is neither a hash map nor an array")]
    NotBatchReadable(&'static str),

    #[error(
        "cannot give entry {index} back to the pool of {name}: {given_back} given back of \
         {taken} taken (an entry freed twice, or not the table's)"
    )]
    PoolOverflow {
        name: &'static str,
        index: u32,
        taken: u64,
        given_back: u64,
    },

    #[error("reading map {name}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },

    #[error("the kernel blocklist is full ({BLOCKLIST_MAX_ENTRIES} entries): cannot block {cidr}")]
    BlocklistFull { cidr: IpNet },

    #[error(
        "{cidr} is an IPv4-mapped IPv6 prefix, which the kernel blocklist keeps for IPv4 \
         sources; block {ipv4} instead"
    )]
    BlockIpv4Mapped { cidr: IpNet, ipv4: IpNet },

    #[error("blocking {cidr} in the kernel blocklist")]
    Block {
        cidr: IpNet,
        #[source]
        source: MapError,
    },

    #[error("unblocking {cidr} in the kernel blocklist")]
    Unblock {
        cidr: IpNet,
        #[source]
        source: MapError,
    },
}

impl SensorError {
    pub(super) fn from_load(error: EbpfError) -> Self {
        if is_permission_error(&error) {
            Self::NotPermitted(Box::new(error))
        } else {
            Self::Load(error)
        }
    }

    pub(super) fn from_program_load(error: ProgramError) -> Self {
        if is_permission_error(&error) {
            Self::NotPermitted(Box::new(error))
        } else {
            Self::Program(error)
        }
    }
}

/// The OS error code somewhere in `error`'s chain of causes.
pub(super) fn os_error(error: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(code) = e
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
        {
            return Some(code);
        }
        current = e.source();
    }
    None
}

fn is_permission_error(error: &(dyn std::error::Error + 'static)) -> bool {
    matches!(os_error(error), Some(libc::EPERM | libc::EACCES))
}
