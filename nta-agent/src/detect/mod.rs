//! Detectors: pure functions of kernel counters and threshold events that
//! say whether an attack's condition holds, and the incident table that turns
//! those findings into alerts with a life (opened, updated, closed).
//!
//! No I/O here: the run loop reads the kernel and the clock and passes them
//! in, so every rule is unit-tested without a kernel.

mod engine;
pub mod flood;
pub mod hll;
mod incidents;
pub mod payload;
pub mod port_scan;
pub mod probes;
mod scans;
pub mod sketch;
pub mod sweep;
pub mod syn_flood;
pub mod thresholds;
mod victims;
pub mod volumetric;

use std::net::IpAddr;

use nta_common::{IpKey, flow::FlowKey, maps::ip_proto};

pub use engine::{Detector, EventContext, Tick};
pub use incidents::Incidents;

use crate::alert::{AlertKind, Evidence};

/// Where a new incident gets its alert id (the store allocates them, so
/// that ids stay unique across restarts).
pub type NextId<'a> = &'a mut dyn FnMut() -> u64;

/// What an incident is about: the same attack keeps the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A source (port scans, sweeps).
    Source(IpAddr),
    /// A source flooding with one traffic class (`RateClass::name()`).
    SourceClass(IpAddr, &'static str),
    /// A destination host (SYN floods, floods of every class, reflection).
    DstHost(IpAddr),
    /// A destination port across hosts (SYN floods spread over many hosts).
    DstPort(u16),
    /// One rule (sid) matching one source's payloads.
    Signature(IpAddr, u32),
    /// One source tunnelling through one domain (the domain's hash: the
    /// alert carries the name).
    DnsTunnel(IpAddr, u64),
}

/// Identity of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IncidentKey {
    pub kind: AlertKind,
    pub subject: Subject,
}

/// A detector's verdict that its condition holds now.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub key: IncidentKey,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub dst_port: Option<u16>,
    /// How much of the condition there is now, in `evidence.unit`: packets
    /// per second for floods, a count of distinct ports for scans and of
    /// subdomains for DNS tunnels, 1 for a signature match.
    pub measure: f64,
    /// How far past its threshold the condition is (measure / threshold, or
    /// the largest such ratio over several rules).
    pub ratio: f64,
    /// Packets attributed to the incident since the previous finding.
    pub packets: u64,
    pub message: String,
    pub evidence: Evidence,
}

impl Finding {
    /// The flow a payload finding was made on: its two ends, ports and
    /// transport; `None` for findings of counts (floods, scans).
    pub fn flow(&self) -> Option<FlowKey> {
        let proto = match self.evidence.class.as_deref()? {
            "tcp" => ip_proto::TCP,
            "udp" => ip_proto::UDP,
            _ => return None,
        };
        let (src, dst) = (IpKey::from(self.src?), IpKey::from(self.dst?));
        let (src_port, dst_port) = (self.evidence.src_port?, self.dst_port?);
        Some(FlowKey::of(&src, src_port, &dst, dst_port, proto).0)
    }
}
